//! File helpers for state the proxy owns.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Create or truncate `path` with mode 0600 and write `bytes`.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Create `dir` (and parents) private to this user.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Make `dir` a directory only this user can use: create it 0700, or
/// tighten an existing one of ours to 0700. A directory owned by someone
/// else is refused: what it holds could have been planted.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other("is not a directory"));
    }
    if meta.uid() != euid() {
        return Err(std::io::Error::other(format!(
            "is owned by uid {}, not by this user (uid {}); refusing to load native code from it",
            meta.uid(),
            euid()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "private directory was accessible to others; setting it to 0700"
        );
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Whether `path` exists as a regular file this user owns that nobody else
/// can write; `Err` when it exists but is not.
pub fn check_private_file(path: &Path) -> std::io::Result<bool> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !meta.is_file() {
        return Err(std::io::Error::other("is not a regular file"));
    }
    if meta.uid() != euid() {
        return Err(std::io::Error::other(format!(
            "is owned by uid {}",
            meta.uid()
        )));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(std::io::Error::other("is writable by others"));
    }
    Ok(true)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn private_dir_is_created_and_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        ensure_private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_file_writable_by_others_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("a.cwasm");
        assert!(!check_private_file(&f).unwrap());
        write_private(&f, b"x").unwrap();
        assert!(check_private_file(&f).unwrap());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(check_private_file(&f).is_err());
    }
}
