//! In-process TLS for the data plane (rustls, HTTP/2 via ALPN).

use std::path::Path;

use pingora_core::apps::HttpServerApp;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::services::listening::Service;

pub fn add_tls_listener<A: HttpServerApp + Send + Sync + 'static>(
    service: &mut Service<A>,
    addr: &str,
    cert: &Path,
    key: &Path,
) -> Result<(), String> {
    for f in [cert, key] {
        if !f.is_file() {
            return Err(format!("TLS file {} does not exist", f.display()));
        }
    }
    let mut settings =
        TlsSettings::intermediate(&cert.display().to_string(), &key.display().to_string())
            .map_err(|e| format!("cannot load TLS certificate/key: {e}"))?;
    settings.enable_h2();
    service.add_tls_with_settings(addr, None, settings);
    Ok(())
}
