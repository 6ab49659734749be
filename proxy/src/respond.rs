//! Writing whole responses to a downstream session.

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::intake::{ApiError, Shape};

/// Response headers every data-plane answer carries.
pub struct Stamp<'a> {
    pub request_id: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
}

impl Stamp<'_> {
    pub fn apply(&self, h: &mut ResponseHeader) -> pingora_error::Result<()> {
        h.insert_header("x-request-id", self.request_id)?;
        if let Some(p) = self.provider {
            h.insert_header("x-sluice-provider", p)?;
        }
        if let Some(m) = self.model {
            h.insert_header("x-sluice-model", m)?;
        }
        Ok(())
    }
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
    let mut h = ResponseHeader::build(status, Some(6))?;
    h.insert_header("content-type", content_type)?;
    h.insert_header("content-length", body.len())?;
    stamp.apply(&mut h)?;
    for (k, v) in extra {
        h.insert_header(k.to_string(), *v)?;
    }
    let empty = body.is_empty();
    session.write_response_header(Box::new(h), empty).await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// An error in the client's envelope.
pub async fn write_error(
    session: &mut Session,
    shape: Shape,
    err: &ApiError,
    stamp: &Stamp<'_>,
) -> pingora_error::Result<()> {
    let body = Bytes::from(err.body(shape, stamp.request_id));
    let retry_after;
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if err.status == 503 || err.status == 429 {
        retry_after = "1".to_string();
        extra.push(("retry-after", &retry_after));
    }
    write_full(session, err.status, "application/json", body, stamp, &extra).await
}
