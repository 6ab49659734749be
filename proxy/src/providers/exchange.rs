//! One request/response exchange with a provider over a pooled connection.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pingora_core::protocols::http::client::HttpSession;
use pingora_http::RequestHeader;
use tokio::time::Instant;

use super::{Provider, Providers};
use crate::config::ProviderKind;
use crate::intake::ApiError;

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

/// Why an exchange failed. Every variant maps to a client-facing error.
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
    /// `error_class` label: network problems and timeouts are NETWORK.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Connect { .. } | Self::Io { .. } => "network",
            Self::Timeout { .. } => "timeout",
            Self::TooLarge { .. } => "response_too_large",
        }
    }

    pub fn to_api_error(&self) -> ApiError {
        let (status, code) = match self {
            Self::Timeout { .. } => (504, "upstream_timeout"),
            Self::Connect { .. } => (502, "upstream_unavailable"),
            Self::Io { .. } | Self::TooLarge { .. } => (502, "upstream_error"),
        };
        ApiError::new(status, code, self.to_string())
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
    /// Connect (retrying a failed connect once: nothing was sent yet), send
    /// the request and wait for the response head.
    pub async fn send(
        &self,
        provider: &Arc<Provider>,
        req: UpstreamRequest<'_>,
    ) -> Result<Upstream, UpstreamError> {
        let started = Instant::now();
        let deadline = started + provider.timeouts.total;
        let mut session = match self.connector.get_http_session(&provider.peer).await {
            Ok((s, _)) => s,
            Err(first) => {
                tracing::debug!(provider = %provider.name, "connect failed, retrying once: {first}");
                self.connector
                    .get_http_session(&provider.peer)
                    .await
                    .map_err(|e| UpstreamError::Connect {
                        provider: provider.name.clone(),
                        detail: e.to_string(),
                    })?
                    .0
            }
        };
        let header = build_header(provider, &req).map_err(|e| io(provider, e))?;
        let write = async {
            session.write_request_header(Box::new(header)).await?;
            session.write_request_body(req.body, true).await?;
            session.finish_request_body().await
        };
        write.await.map_err(|e| io(provider, e))?;

        session.set_read_timeout(Some(provider.timeouts.first_byte));
        match tokio::time::timeout_at(deadline, session.read_response_header()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.etype() == &pingora_error::ErrorType::ReadTimedout => {
                return Err(timeout(provider, "waiting for the response"));
            }
            Ok(Err(e)) => return Err(io(provider, e)),
            Err(_) => return Err(timeout(provider, "waiting for the response")),
        }
        session.set_read_timeout(Some(provider.timeouts.idle));
        Ok(Upstream {
            session,
            provider: provider.clone(),
            deadline,
        })
    }
}

fn build_header(
    provider: &Provider,
    req: &UpstreamRequest<'_>,
) -> pingora_error::Result<RequestHeader> {
    let path = format!("{}{}", provider.base_path, req.endpoint);
    let mut h = RequestHeader::build("POST", path.as_bytes(), Some(8))?;
    h.insert_header("host", &provider.authority)?;
    h.insert_header("content-type", "application/json")?;
    h.insert_header("content-length", req.body.len())?;
    h.insert_header("x-request-id", req.request_id)?;
    if req.stream {
        h.insert_header("accept", "text/event-stream")?;
    }
    if let Some(key) = &provider.credential {
        match provider.kind {
            ProviderKind::Anthropic => h.insert_header("x-api-key", key.expose())?,
            _ => h.insert_header("authorization", format!("Bearer {}", key.expose()))?,
        }
    }
    if provider.kind == ProviderKind::Anthropic {
        h.insert_header("anthropic-version", "2023-06-01")?;
    }
    for (name, value) in req.headers {
        h.insert_header(name.to_string(), *value)?;
    }
    Ok(h)
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
        self.session
            .response_header()
            .map_or(502, |h| h.status.as_u16())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.session
            .response_header()?
            .headers
            .get(name)?
            .to_str()
            .ok()
    }

    pub fn provider(&self) -> &Arc<Provider> {
        &self.provider
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        match tokio::time::timeout_at(self.deadline, self.session.read_response_body()).await {
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
                return Err(UpstreamError::TooLarge {
                    provider: self.provider.name.clone(),
                    limit,
                });
            }
        }
        // A body that arrived in one piece is passed on without a copy.
        Ok(match first {
            Some(f) if f.len() <= limit => f,
            Some(_) => {
                return Err(UpstreamError::TooLarge {
                    provider: self.provider.name.clone(),
                    limit,
                });
            }
            None => buf.freeze(),
        })
    }

    /// Return the connection to the pool when the response was read to its
    /// end; otherwise it is closed.
    pub async fn release(self, providers: &Providers) {
        let mut session = self.session;
        if session.response_done() {
            providers
                .connector
                .release_http_session(session, &self.provider.peer, None)
                .await;
        } else {
            session.shutdown().await;
        }
    }
}
