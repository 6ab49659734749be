//! Writing whole responses to a downstream session. Nothing a client sent
//! can make these fail: header values derived from requests are checked
//! and left out when they would not be valid.

use bytes::Bytes;
use http::HeaderValue;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::api::{ApiError, Shape};

/// Response headers every data-plane answer carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamp<'a> {
    pub request_id: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    /// How close a warned caller is to a cap (`x-sluice-quota-warning`).
    pub quota: Option<&'a str>,
    /// The routing slot that decided (`x-sluice-routed-by`).
    pub routed_by: Option<&'a str>,
}

impl Stamp<'_> {
    pub fn apply(&self, h: &mut ResponseHeader) {
        let pairs = [
            ("x-request-id", Some(self.request_id)),
            ("x-sluice-provider", self.provider),
            ("x-sluice-model", self.model),
            ("x-sluice-quota-warning", self.quota),
            ("x-sluice-routed-by", self.routed_by),
        ];
        for (name, value) in pairs {
            if let Some(v) = value.and_then(header_value) {
                let _ = h.insert_header(name, v);
            }
        }
    }
}

/// `v` as a header value when it is visible ASCII. Values derived from a
/// request (a model name) may hold anything a JSON string can, and bytes
/// beyond ASCII (bidi overrides, line separators) are left out rather than
/// sent raw in a header.
fn header_value(v: &str) -> Option<HeaderValue> {
    if v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        HeaderValue::from_str(v).ok()
    } else {
        None
    }
}

/// A response head with `Content-Type` and the stamp.
pub fn head(
    status: u16,
    content_type: &str,
    stamp: &Stamp<'_>,
) -> pingora_error::Result<ResponseHeader> {
    // No case map (see `providers::exchange::build_header`).
    let mut h = ResponseHeader::build_no_case(status, Some(8))?;
    h.insert_header("content-type", content_type)?;
    stamp.apply(&mut h);
    Ok(h)
}

/// Head and body in one go, with `Content-Length`.
pub async fn write_full(
    session: &mut Session,
    status: u16,
    content_type: &str,
    body: Bytes,
    stamp: &Stamp<'_>,
    extra: &[(&str, &str)],
) -> pingora_error::Result<()> {
    let mut h = head(status, content_type, stamp)?;
    h.insert_header("content-length", body.len())?;
    for (k, v) in extra {
        if let Some(v) = header_value(v) {
            h.insert_header(k.to_string(), v)?;
        }
    }
    let empty = body.is_empty();
    session.write_response_header(Box::new(h), empty).await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// An error in the client's envelope, with `Retry-After` where it has one.
pub async fn write_error(
    session: &mut Session,
    shape: Shape,
    err: &ApiError,
    stamp: &Stamp<'_>,
) -> pingora_error::Result<()> {
    let body = Bytes::from(err.body(shape, stamp.request_id));
    let retry = err.retry_after().map(|s| s.to_string());
    let extra: Vec<(&str, &str)> = retry.iter().map(|r| ("retry-after", r.as_str())).collect();
    write_full(session, err.status, "application/json", body, stamp, &extra).await
}
