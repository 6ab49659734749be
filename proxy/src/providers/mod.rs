//! Upstream providers: where they are, how to authenticate, and the owned
//! upstream exchange (see docs/ARCHITECTURE.md: pingora picks a peer before
//! it sees the body, so Sluice drives the upstream itself).

mod credential;
mod exchange;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use pingora_core::connectors::TransportConnector;
use pingora_core::upstreams::peer::HttpPeer;

use crate::api::Shape;
use crate::config::{ProviderConfig, ProviderKind, TimeoutConfig};

pub use credential::Credential;
pub use exchange::{Upstream, UpstreamError, UpstreamRequest};

/// One configured provider, ready to connect to.
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    peer: HttpPeer,
    /// Path prefix the API endpoint is appended to, e.g. `/v1`.
    base_path: String,
    /// Headers every request to this provider carries (`Host`, the
    /// credential, the API version), built once at load: a request clones
    /// shared values instead of validating and copying them again.
    fixed_headers: Vec<(&'static str, HeaderValue)>,
    pub timeouts: Timeouts,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl From<&TimeoutConfig> for Timeouts {
    fn from(t: &TimeoutConfig) -> Self {
        Self {
            connect: Duration::from_millis(t.connect_ms),
            first_byte: Duration::from_millis(t.first_byte_ms),
            idle: Duration::from_millis(t.idle_ms),
            total: Duration::from_millis(t.total_ms),
        }
    }
}

impl Provider {
    pub fn from_config(c: &ProviderConfig) -> Result<Self, String> {
        let default_base = match c.kind {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com/v1"),
            ProviderKind::OpenaiCompatible | ProviderKind::Mock => None,
        };
        let base =
            c.base_url.as_deref().or(default_base).ok_or_else(|| {
                format!("provider {:?}: base_url is required for this kind", c.name)
            })?;
        let url = BaseUrl::parse(base).map_err(|e| format!("provider {:?}: {e}", c.name))?;
        let addr = (url.host.as_str(), url.port);
        let resolved = std::net::ToSocketAddrs::to_socket_addrs(&addr)
            .map_err(|e| format!("provider {:?}: cannot resolve {}: {e}", c.name, url.host))?
            .next()
            .ok_or_else(|| format!("provider {:?}: {} has no address", c.name, url.host))?;
        let timeouts = Timeouts::from(&c.timeouts);
        let mut peer = HttpPeer::new(resolved, url.tls, url.host.clone());
        peer.options.connection_timeout = Some(timeouts.connect);
        peer.options.idle_timeout = Some(Duration::from_secs(90));
        if let Some(ca) = &c.ca_file {
            peer.options.ca = Some(load_ca(ca).map_err(|e| format!("provider {:?}: {e}", c.name))?);
        }
        let credential = Credential::load(c).map_err(|e| format!("provider {:?}: {e}", c.name))?;
        let authority = if url.port == url.default_port() {
            url.host.clone()
        } else {
            format!("{}:{}", url.host, url.port)
        };
        let fixed_headers = fixed_headers(c.kind, &authority, credential.as_ref())
            .map_err(|e| format!("provider {:?}: {e}", c.name))?;
        Ok(Self {
            name: c.name.clone(),
            kind: c.kind,
            peer,
            base_path: url.path,
            fixed_headers,
            timeouts,
        })
    }

    /// The shape this provider speaks to a client of `client` shape. The
    /// mock answers every shape natively.
    pub fn shape_for(&self, client: Shape) -> Shape {
        match self.kind {
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => Shape::OpenAi,
            ProviderKind::Anthropic => Shape::Anthropic,
            ProviderKind::Mock => client,
        }
    }
}

/// `Host`, the credential in the header the provider's API reads it from
/// (marked sensitive: never compressed into an HPACK table, never logged),
/// and Anthropic's API version.
fn fixed_headers(
    kind: ProviderKind,
    authority: &str,
    credential: Option<&Credential>,
) -> Result<Vec<(&'static str, HeaderValue)>, String> {
    let value = |v: &str, what: &str| {
        HeaderValue::from_str(v)
            .map_err(|_| format!("the {what} holds bytes a header cannot carry"))
    };
    let mut out = vec![("host", value(authority, "host")?)];
    if let Some(key) = credential {
        let (name, mut v) = match kind {
            ProviderKind::Anthropic => ("x-api-key", value(key.expose(), "credential")?),
            _ => (
                "authorization",
                value(&format!("Bearer {}", key.expose()), "credential")?,
            ),
        };
        v.set_sensitive(true);
        out.push((name, v));
    }
    if kind == ProviderKind::Anthropic {
        out.push(("anthropic-version", HeaderValue::from_static("2023-06-01")));
    }
    Ok(out)
}

/// All providers of a configuration and the connection pool they share.
pub struct Providers {
    by_name: HashMap<String, Arc<Provider>>,
    /// TCP/TLS connections, pooled per peer. Providers speak HTTP/1.1.
    transport: TransportConnector,
}

impl Providers {
    pub fn from_config(configs: &[ProviderConfig]) -> Result<Self, String> {
        let mut by_name = HashMap::new();
        for c in configs {
            by_name.insert(c.name.clone(), Arc::new(Provider::from_config(c)?));
        }
        Ok(Self {
            by_name,
            transport: TransportConnector::new(None),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The certificates of a PEM file, as pingora's per-peer trust store.
fn load_ca(path: &std::path::Path) -> Result<Arc<pingora_core::protocols::tls::CaType>, String> {
    use pingora_core::utils::tls::{WrappedX509, parse_x509};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<WrappedX509> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
        .map(|c| {
            let der = c.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            // pingora's parser panics on malformed DER: contain that here, at
            // load time, so a bad file is a config error.
            let raw = der.to_vec();
            std::panic::catch_unwind(move || WrappedX509::new(raw, parse_x509))
                .map_err(|_| format!("malformed certificate in {}", path.display()))
        })
        .collect::<Result<_, String>>()?;
    if certs.is_empty() {
        return Err(format!("no certificates in {}", path.display()));
    }
    Ok(Arc::from(certs.into_boxed_slice()))
}

/// The parts of a provider base URL Sluice uses.
#[derive(Debug, PartialEq)]
struct BaseUrl {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

impl BaseUrl {
    fn parse(s: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "base_url {s:?} must start with http:// or https://"
            ));
        };
        let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("base_url {s:?} has an invalid port"))?,
            ),
            _ => (hostport, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("base_url {s:?} has no host"));
        }
        Ok(Self {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    fn default_port(&self) -> u16 {
        if self.tls { 443 } else { 80 }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_base_urls() {
        assert_eq!(
            BaseUrl::parse("https://api.openai.com/v1/").unwrap(),
            BaseUrl {
                tls: true,
                host: "api.openai.com".into(),
                port: 443,
                path: "/v1".into()
            }
        );
        let u = BaseUrl::parse("http://127.0.0.1:8089").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (false, 8089, ""));
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("http://x:notaport/").is_err());
    }
}
