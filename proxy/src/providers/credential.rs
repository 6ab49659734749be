//! Provider credentials: read once at load from an environment variable or a
//! private file, sent only upstream, never logged.

use std::fmt;

use crate::config::ProviderConfig;

/// A secret that prints as `Credential(****)`.
#[derive(Clone)]
pub struct Credential(String);

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(****)")
    }
}

impl Credential {
    pub fn load(c: &ProviderConfig) -> Result<Option<Self>, String> {
        if let Some(var) = &c.api_key_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(Self(v.trim().to_owned()))),
                _ => Err(format!("environment variable {var} is unset or empty")),
            };
        }
        if let Some(path) = &c.api_key_file {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(format!(
                    "{} is readable by others; chmod 600 it",
                    path.display()
                ));
            }
            let v = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if v.trim().is_empty() {
                return Err(format!("{} is empty", path.display()));
            }
            return Ok(Some(Self(v.trim().to_owned())));
        }
        Ok(None)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}
