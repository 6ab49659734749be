//! Reading a request body under three bounds: its size (413, refused from
//! `Content-Length` before a byte is read), the gap between two reads, and
//! a total deadline (408). pingora's own read timeout covers only the gap,
//! and only on HTTP/1; the total deadline also holds on HTTP/2 and against
//! a client that drips a byte just often enough.
//!
//! `Expect: 100-continue` is answered once the declared size is known to be
//! acceptable, so a client waiting for it does not stall.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora_proxy::Session;

use crate::api::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// Longest wait for the next piece (HTTP/1).
    pub read_gap: Duration,
    /// Longest time for the whole body.
    pub total: Duration,
}

pub async fn read_body(session: &mut Session, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "request_too_large",
            format!("request body exceeds the {}-byte limit", limits.max_bytes),
        )
    };
    let headers = &session.req_header().headers;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes) {
        return Err(too_large());
    }
    let expects_continue = headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if expects_continue {
        session.write_continue_response().await.map_err(|e| {
            ApiError::bad_request(format!("cannot answer Expect: 100-continue: {e}"))
        })?;
    }
    session.set_read_timeout(Some(limits.read_gap));
    let read = read_all(session, limits.max_bytes, declared);
    match tokio::time::timeout(limits.total, read).await {
        Ok(Ok(Some(body))) => Ok(body),
        Ok(Ok(None)) => Err(too_large()),
        Ok(Err(e)) if e.etype() == &pingora_error::ErrorType::ReadTimedout => Err(timed_out()),
        Ok(Err(e)) => Err(unreadable(&e)),
        Err(_) => Err(timed_out()),
    }
}

/// A body pingora could not read. The client gets what it did wrong, not
/// pingora's error chain; the detail goes to the debug log.
fn unreadable(e: &pingora_error::Error) -> ApiError {
    use pingora_error::ErrorType;
    tracing::debug!("cannot read request body: {e}");
    let what = match e.etype() {
        // pingora's `INVALID_CHUNK`, which it does not export.
        ErrorType::Custom("InvalidChunk") => {
            "malformed chunked transfer encoding in the request body"
        }
        ErrorType::ConnectionClosed => "the connection closed before the request body was complete",
        ErrorType::InvalidHTTPHeader => "malformed request framing",
        _ => "the request body could not be read",
    };
    ApiError::bad_request(what)
}

fn timed_out() -> ApiError {
    ApiError::new(408, "request_timeout", "timed out reading the request body")
}

/// The whole body, or `None` past `limit`. Most bodies arrive in one piece:
/// keep that piece as is and copy only when a second one follows.
async fn read_all(
    session: &mut Session,
    limit: usize,
    declared: Option<usize>,
) -> pingora_error::Result<Option<Bytes>> {
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        let held = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if held + chunk.len() > limit {
            return Ok(None);
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            prev => {
                if buf.is_empty() {
                    buf.reserve(declared.unwrap_or(0).min(limit).max(2 * chunk.len()));
                }
                if let Some(p) = prev {
                    buf.extend_from_slice(&p);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(Some(first.unwrap_or_else(|| buf.freeze())))
}
