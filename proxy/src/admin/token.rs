//! The admin API's bearer token and the file that tells the CLI where a
//! running proxy's admin listener is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::fsutil;

pub const TOKEN_FILE: &str = "admin.token";
pub const ADDR_FILE: &str = "admin.addr";

pub fn token_path(config: &Config) -> PathBuf {
    config
        .auth
        .admin_token_file
        .clone()
        .unwrap_or_else(|| config.data.dir.join(TOKEN_FILE))
}

/// The configured token file, or `<data-dir>/admin.token`, created with a
/// random token (mode 0600) on first start.
pub fn load_or_create(config: &Config) -> Result<String, String> {
    let path = token_path(config);
    let shown = path.display();
    match read(&path) {
        Ok(Some(t)) => return Ok(t),
        Ok(None) if config.auth.admin_token_file.is_some() => {
            return Err(format!("auth.admin_token_file {shown} does not exist"));
        }
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random source: {e}"))?;
    let token = hex::encode(bytes);
    fsutil::write_private(&path, format!("{token}\n").as_bytes())
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    tracing::info!(file = %shown, "admin token created");
    Ok(token)
}

/// The token in `path`, if the file exists. It must be ours and private.
pub fn read(path: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    match fsutil::check_private_file(path) {
        Ok(false) => return Ok(None),
        Ok(true) => {}
        Err(e) => return Err(format!("admin token file {shown} {e}")),
    }
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "admin token file {shown} is readable by others (mode {:o}); chmod 600 it",
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let token = text.trim().to_owned();
    if token.len() < 16 || token.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "admin token in {shown} must be at least 16 visible ASCII characters"
        ));
    }
    Ok(Some(token))
}

/// Whether an `Authorization` header value carries `token`.
pub fn authorized(header: Option<&[u8]>, token: &str) -> bool {
    let Some(h) = header else { return false };
    let h = h.trim_ascii();
    let Some(v) = h
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case(b"bearer "))
        .map(|_| &h[7..])
    else {
        return false;
    };
    let v = v.trim_ascii();
    v.len() == token.len() && bool::from(v.ct_eq(token.as_bytes()))
}

/// Tell the CLI where this proxy's admin API listens.
pub fn record_address(data_dir: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let path = data_dir.join(ADDR_FILE);
    let tmp = data_dir.join(format!(".{ADDR_FILE}.tmp"));
    fsutil::write_private(&tmp, format!("{addr} {}\n", std::process::id()).as_bytes())?;
    std::fs::rename(tmp, path)
}

/// The recorded admin address, if any.
pub fn recorded_address(data_dir: &Path) -> Option<SocketAddr> {
    recorded(data_dir).map(|r| r.0)
}

/// The recorded admin address and the pid of the proxy that wrote it.
pub fn recorded(data_dir: &Path) -> Option<(SocketAddr, u32)> {
    let text = std::fs::read_to_string(data_dir.join(ADDR_FILE)).ok()?;
    let mut parts = text.split_whitespace();
    let addr = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    Some((addr, pid))
}
