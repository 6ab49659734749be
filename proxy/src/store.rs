//! redb files the proxy owns: created private (0600), one process at a
//! time, with an error that says what to do when another holds the file.

use std::path::Path;

use redb::Database;

/// redb's page cache per file. Its default (1 GiB) lets the event log,
/// which only grows, pull a proxy's resident set towards a gigabyte under
/// sustained load; the request path only appends and reads back little,
/// so a small cache costs it nothing measurable and the OS page cache
/// still serves what falls out.
const CACHE_BYTES: usize = 16 << 20;

/// Open (or create) the redb file at `path`, mode 0600.
pub fn open(path: &Path) -> Result<Database, String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let shown = path.display();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot make {shown} private: {e}"))?;
    }
    let opened = Database::builder().set_cache_size(CACHE_BYTES).create(path);
    opened.map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => format!(
            "{shown} is held by another process (a running proxy?); only one process may open it"
        ),
        e => format!("cannot open {shown}: {e}"),
    })
}

/// Whether an `open` error means another process holds the file.
pub fn is_busy(error: &str) -> bool {
    error.contains("held by another process")
}

/// bincode's standard configuration, for every record we store.
pub fn encode<T: bincode::Encode>(v: &T) -> Vec<u8> {
    bincode::encode_to_vec(v, bincode::config::standard()).expect("encoding to a Vec cannot fail")
}

/// [`encode`] into `buf`, replacing what it held: a writer encoding
/// record after record reuses one allocation.
pub fn encode_into<'b, T: bincode::Encode>(buf: &'b mut Vec<u8>, v: &T) -> &'b [u8] {
    buf.clear();
    bincode::encode_into_std_write(v, buf, bincode::config::standard())
        .expect("encoding to a Vec cannot fail");
    buf
}

pub fn decode<T: bincode::Decode<()>>(bytes: &[u8]) -> Result<T, String> {
    bincode::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| format!("undecodable record: {e}"))
}

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
