//! A small pingora HTTP application shape for Sluice's own listeners (admin,
//! mock provider): read a request, let a handler write the whole response,
//! keep the connection alive.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora_core::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use pingora_http::ResponseHeader;

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Answer one request; the response must be complete when this returns.
    async fn handle(&self, session: &mut ServerSession) -> pingora_error::Result<()>;
}

pub struct App<H>(pub H);

#[async_trait]
impl<H: Handler> HttpServerApp for App<H> {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !matches!(http.read_request().await, Ok(true)) {
            return None;
        }
        http.set_keepalive(if *shutdown.borrow() { None } else { Some(60) });
        http.set_pipelining_enabled(true);
        if let Err(e) = self.0.handle(&mut http).await {
            tracing::debug!("{}: {e}", http.request_summary());
            return None;
        }
        let persistent = HttpPersistentSettings::for_session(&http);
        http.finish()
            .await
            .ok()
            .flatten()
            .map(|s| ReusedHttpStream::from_reusable_stream(s, persistent))
    }
}

/// The request body, whole, up to `limit` bytes (`None` beyond).
pub async fn read_body(
    session: &mut ServerSession,
    limit: usize,
) -> pingora_error::Result<Option<Bytes>> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = session.read_request_body().await? {
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// Write a whole response with `Content-Length`.
pub async fn respond(
    session: &mut ServerSession,
    status: u16,
    content_type: &str,
    body: impl Into<Bytes>,
    extra: &[(&str, &str)],
) -> pingora_error::Result<()> {
    let body = body.into();
    let mut h = ResponseHeader::build(status, Some(4 + extra.len()))?;
    h.insert_header("content-type", content_type)?;
    h.insert_header("content-length", body.len())?;
    for (k, v) in extra {
        h.insert_header(k.to_string(), *v)?;
    }
    session.write_response_header(Box::new(h)).await?;
    if !body.is_empty() {
        session.write_response_body(body, true).await?;
    }
    Ok(())
}

/// The value of `name` in a query string, percent-decoded (`+` is a
/// space); none when absent or not UTF-8 once decoded.
pub fn query_param(q: Option<&str>, name: &str) -> Option<String> {
    let raw = q?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?;
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A comma-separated query value as a list (`type=a,b`); empty when absent.
pub fn list_param(q: Option<&str>, name: &str) -> Vec<String> {
    query_param(q, name)
        .map(|t| {
            t.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
