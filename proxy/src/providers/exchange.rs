//! One request/response exchange with a provider over a pooled HTTP/1.1
//! connection.
//!
//! Retries are limited to what cannot have reached the provider: a failed
//! connect, and a pooled connection the provider had already closed (the
//! request dies before any response byte, which pingora marks as retryable
//! for reused connections only). Once a response byte arrived, nothing is
//! retried here: an LLM call is not idempotent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pingora_core::protocols::Stream;
use pingora_core::protocols::http::v1::client::HttpSession;
use pingora_core::upstreams::peer::Peer;
use pingora_error::RetryType;
use pingora_http::RequestHeader;
use tokio::time::Instant;

use super::{Provider, Providers};

/// What to send upstream.
pub struct UpstreamRequest<'a> {
    /// Endpoint below the provider's base path, e.g. `/chat/completions`.
    pub endpoint: &'static str,
    pub body: Bytes,
    /// Extra headers (`anthropic-version`, `anthropic-beta`, mock controls).
    pub headers: &'a [(&'a str, &'a str)],
    pub request_id: &'a str,
    pub stream: bool,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to provider {provider}: {detail}")]
    Connect { provider: String, detail: String },
    #[error("provider {provider} timed out {phase}")]
    Timeout {
        provider: String,
        phase: &'static str,
    },
    #[error("provider {provider} failed: {detail}")]
    Io { provider: String, detail: String },
    #[error("provider {provider} sent a response larger than {limit} bytes")]
    TooLarge { provider: String, limit: usize },
}

impl UpstreamError {
    /// Whether the request may have reached the provider (which may then
    /// bill for it): everything but a failed connect.
    pub fn may_have_reached(&self) -> bool {
        !matches!(self, Self::Connect { .. })
    }

    /// `error_class` label: network problems and timeouts are NETWORK.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Connect { .. } | Self::Io { .. } => "network",
            Self::Timeout { .. } => "timeout",
            Self::TooLarge { .. } => "response_too_large",
        }
    }
}

/// A response whose head has arrived; the body is read with [`chunk`].
///
/// [`chunk`]: Upstream::chunk
pub struct Upstream {
    session: HttpSession,
    provider: Arc<Provider>,
    deadline: Instant,
}

impl Providers {
    /// Connect, send the request and wait for the response head.
    pub async fn send(
        &self,
        provider: &Arc<Provider>,
        req: UpstreamRequest<'_>,
    ) -> Result<Upstream, UpstreamError> {
        let deadline = Instant::now() + provider.timeouts.total;
        let (stream, reused) = match self.transport.reused_stream(&provider.peer).await {
            Some(s) => (s, true),
            None => match self.new_stream(provider).await {
                Ok(s) => (s, false),
                Err(first) => {
                    tracing::debug!(provider = %provider.name, "connect failed, retrying once: {first}");
                    let s = self
                        .new_stream(provider)
                        .await
                        .map_err(|e| connect_error(provider, e))?;
                    (s, false)
                }
            },
        };
        let session = HttpSession::new_with_options(stream, &provider.peer);
        match exchange(session, provider, &req, deadline).await {
            Ok(session) => Ok(Upstream {
                session,
                provider: provider.clone(),
                deadline,
            }),
            Err(Failed { mut error, retry }) => {
                error.retry.decide_reuse(reused);
                if !(retry && reused && error.retry.retry()) {
                    return Err(classify(provider, &error));
                }
                tracing::debug!(provider = %provider.name, "pooled connection was stale, retrying on a fresh one: {error}");
                let fresh = self
                    .new_stream(provider)
                    .await
                    .map_err(|e| connect_error(provider, e))?;
                let session = HttpSession::new_with_options(fresh, &provider.peer);
                exchange(session, provider, &req, deadline)
                    .await
                    .map(|session| Upstream {
                        session,
                        provider: provider.clone(),
                        deadline,
                    })
                    .map_err(|f| classify(provider, &f.error))
            }
        }
    }

    /// A new connection to `provider`. Boxed: connecting (and the TLS
    /// handshake) is an 8 KiB future, and unboxed it would make every
    /// future of the request path that awaits this one that much larger,
    /// to be copied at every level, although most requests reuse a pooled
    /// connection and never run it.
    fn new_stream<'a>(
        &'a self,
        provider: &'a Provider,
    ) -> Pin<Box<impl Future<Output = pingora_error::Result<Stream>> + 'a>> {
        Box::pin(self.transport.new_stream(&provider.peer))
    }
}

/// An exchange that failed, and whether it failed before the request could
/// have been acted on.
struct Failed {
    error: Box<pingora_error::Error>,
    retry: bool,
}

async fn exchange(
    mut session: HttpSession,
    provider: &Provider,
    req: &UpstreamRequest<'_>,
    deadline: Instant,
) -> Result<HttpSession, Failed> {
    let header = build_header(provider, req).map_err(|error| Failed {
        error,
        retry: false,
    })?;
    session.write_timeout = Some(provider.timeouts.first_byte);
    let write = async {
        session.write_request_header(Box::new(header)).await?;
        session.write_body(&req.body).await?;
        session.finish_body().await
    };
    if let Err(mut error) = write.await {
        // Nothing was read: a write that fails on a pooled connection the
        // provider closed is safe to repeat.
        error.retry = RetryType::ReusedOnly;
        return Err(Failed { error, retry: true });
    }
    session.read_timeout = Some(provider.timeouts.first_byte);
    let read = async {
        loop {
            session.read_response().await?;
            // Skip informational heads (100 Continue and the like).
            if session.get_status().is_some_and(|s| !s.is_informational()) {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(Failed { error, retry: true }),
        Err(_) => {
            return Err(Failed {
                error: pingora_error::Error::explain(
                    pingora_error::ErrorType::ReadTimedout,
                    "total deadline",
                ),
                retry: false,
            });
        }
    }
    session.read_timeout = Some(provider.timeouts.idle);
    Ok(session)
}

fn classify(provider: &Provider, e: &pingora_error::Error) -> UpstreamError {
    if e.etype() == &pingora_error::ErrorType::ReadTimedout
        || e.etype() == &pingora_error::ErrorType::WriteTimedout
    {
        timeout(provider, "waiting for the response")
    } else {
        io(provider, e)
    }
}

fn build_header(
    provider: &Provider,
    req: &UpstreamRequest<'_>,
) -> pingora_error::Result<RequestHeader> {
    let path = format!("{}{}", provider.base_path, req.endpoint);
    // No case map: header names go out lowercase (standard ones titled),
    // which HTTP/1.1 treats alike, and each insert skips a name copy.
    let mut h = RequestHeader::build_no_case("POST", path.as_bytes(), Some(8))?;
    for (name, value) in &provider.fixed_headers {
        h.insert_header(*name, value.clone())?;
    }
    h.insert_header("content-type", "application/json")?;
    h.insert_header("content-length", req.body.len())?;
    h.insert_header("x-request-id", req.request_id)?;
    if req.stream {
        h.insert_header("accept", "text/event-stream")?;
    }
    for (name, value) in req.headers {
        h.insert_header(name.to_string(), *value)?;
    }
    Ok(h)
}

fn connect_error(provider: &Provider, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Connect {
        provider: provider.name.clone(),
        detail: e.to_string(),
    }
}

fn io(provider: &Provider, e: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Io {
        provider: provider.name.clone(),
        detail: e.to_string(),
    }
}

fn timeout(provider: &Provider, phase: &'static str) -> UpstreamError {
    UpstreamError::Timeout {
        provider: provider.name.clone(),
        phase,
    }
}

impl Upstream {
    pub fn status(&self) -> u16 {
        self.session.get_status().map_or(502, |s| s.as_u16())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.session.get_header(name)?.to_str().ok()
    }

    pub fn is_sse(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    }

    pub fn provider(&self) -> &Arc<Provider> {
        &self.provider
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        match tokio::time::timeout_at(self.deadline, self.session.read_body_bytes()).await {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(e)) if e.etype() == &pingora_error::ErrorType::ReadTimedout => {
                Err(timeout(&self.provider, "between response chunks"))
            }
            Ok(Err(e)) => Err(io(&self.provider, e)),
            Err(_) => Err(timeout(&self.provider, "before the response completed")),
        }
    }

    /// The whole body, refusing more than `limit` bytes.
    pub async fn read_all(&mut self, limit: usize) -> Result<Bytes, UpstreamError> {
        let provider = self.provider.name.clone();
        let too_large = || UpstreamError::TooLarge {
            provider: provider.clone(),
            limit,
        };
        let mut first: Option<Bytes> = None;
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            if first.is_none() && buf.is_empty() {
                first = Some(chunk);
                continue;
            }
            if let Some(f) = first.take() {
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&chunk);
            if buf.len() > limit {
                return Err(too_large());
            }
        }
        // A body that arrived in one piece is passed on without a copy.
        match first {
            Some(f) if f.len() > limit => Err(too_large()),
            Some(f) => Ok(f),
            None => Ok(buf.freeze()),
        }
    }

    /// Return the connection to the pool when the response was read to its
    /// end; otherwise it is closed.
    pub async fn release(self, providers: &Providers) {
        let mut session = self.session;
        if !session.is_body_done() {
            session.shutdown().await;
            return;
        }
        session.respect_keepalive();
        if let Some(stream) = session.reuse().await {
            providers
                .transport
                .release_stream(stream, self.provider.peer.reuse_hash(), None);
        }
    }
}
