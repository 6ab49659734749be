//! `sluice mock-provider`: a deterministic OpenAI- and Anthropic-shaped
//! upstream for demos, tests and benchmarks.
//!
//! Request headers steer it (the proxy forwards them to `mock` providers):
//! - `x-mock-error: <status>` answers that status with a provider error body;
//!   `midstream` sends part of a stream then an error event; `drop` cuts
//!   the connection mid-stream; `truncate` ends the stream early but cleanly
//!   (no final events); `garbage` answers 200 with invalid JSON.
//! - `x-mock-latency-ms`, `x-mock-chunk-delay-ms` override the flags.
//! - `x-mock-cached-tokens: N` reports N cached prompt tokens in usage.
//! - `x-mock-output-tokens: N` answers N words (one token each), cut by
//!   `max_tokens` like a real provider, and reports that usage.
//! - `x-mock-hangup-once: TOKEN` closes the connection without answering
//!   the first request that carries TOKEN (a provider that dropped a
//!   kept-alive connection), and serves the ones after it.

mod plan;
mod render;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::protocols::http::ServerSession;
use pingora_http::ResponseHeader;
use serde_json::json;

use crate::api::Shape;
use crate::http::app::{Handler, read_body, respond};

pub use plan::{Finish, Plan, plan};

/// Headers the proxy passes through to `mock` providers.
pub const CONTROL_HEADERS: [&str; 7] = [
    "x-mock-error",
    "x-mock-fail-model",
    "x-mock-latency-ms",
    "x-mock-chunk-delay-ms",
    "x-mock-cached-tokens",
    "x-mock-output-tokens",
    "x-mock-hangup-once",
];

pub struct MockProvider {
    pub latency: Duration,
    pub chunk_delay: Duration,
    seq: AtomicU64,
    hung_up: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl MockProvider {
    pub fn new(latency: Duration, chunk_delay: Duration) -> Self {
        Self {
            latency,
            chunk_delay,
            seq: AtomicU64::new(0),
            hung_up: Default::default(),
        }
    }
}

fn header<'a>(s: &'a ServerSession, name: &str) -> Option<&'a str> {
    s.req_header().headers.get(name)?.to_str().ok()
}

/// Log which credential the request carried, as a fingerprint (first 12
/// hex of sha256, never the secret), so tests can check what the proxy
/// forwards.
fn log_credential(s: &ServerSession) {
    use sha2::{Digest, Sha256};
    for name in ["authorization", "x-api-key"] {
        if let Some(v) = header(s, name) {
            let token = v.strip_prefix("Bearer ").unwrap_or(v);
            let fp = hex::encode(&Sha256::digest(token.as_bytes())[..6]);
            tracing::info!(header = name, fingerprint = %fp, "mock request credential");
        }
    }
}

/// `x-mock-fail-model: gpt-4o=503,claude-x=hangup`: the fault injected for
/// the model the request names (a status, `hangup` to drop the connection
/// before answering, `slow` to answer after 30 s). Each attempt of a
/// fallback carries the header, so one request can fail for one model and
/// be served by the next.
fn model_fault<'a>(spec: Option<&'a str>, model: &serde_json::Value) -> Option<&'a str> {
    let model = model.as_str()?;
    spec?.split(',').find_map(|kv| {
        kv.trim()
            .split_once('=')
            .filter(|(m, _)| *m == model)
            .map(|(_, f)| f)
    })
}

fn millis(s: &ServerSession, name: &str, default: Duration) -> Duration {
    header(s, name)
        .and_then(|v| v.parse().ok())
        .map_or(default, Duration::from_millis)
}

#[async_trait]
impl Handler for MockProvider {
    async fn handle(&self, s: &mut ServerSession) -> pingora_error::Result<()> {
        let path = s.req_header().uri.path().to_owned();
        let method = s.req_header().method.as_str().to_owned();
        let shape = if path.ends_with("/chat/completions") {
            Shape::OpenAi
        } else if path.ends_with("/messages") {
            Shape::Anthropic
        } else if path.ends_with("/models") && method == "GET" {
            let body = json!({"object": "list", "data": [{"id": "mock-1", "object": "model", "created": 0, "owned_by": "mock"}]});
            return respond(s, 200, "application/json", body.to_string(), &[]).await;
        } else {
            let _ = s.drain_request_body().await;
            let body = render::error(Shape::OpenAi, 404, &format!("mock has no route {path}"));
            return respond(s, 404, "application/json", body.to_string(), &[]).await;
        };
        let Some(body) = read_body(s, 64 << 20).await? else {
            let body = render::error(shape, 413, "request too large for the mock");
            return respond(s, 413, "application/json", body.to_string(), &[]).await;
        };
        log_credential(s);
        if let Some(token) = header(s, "x-mock-hangup-once")
            && self
                .hung_up
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(token.to_owned())
        {
            tracing::info!(token, "mock hanging up without an answer");
            return pingora_error::Error::e_explain(
                pingora_error::ErrorType::InternalError,
                "mock hanging up as asked",
            );
        }
        let latency = millis(s, "x-mock-latency-ms", self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let fault = header(s, "x-mock-error").map(str::to_owned);
        if let Some(status) = fault.as_deref().and_then(|f| f.parse::<u16>().ok()) {
            let body = render::error(shape, status, &format!("mock injected error {status}"));
            let extra: &[(&str, &str)] = if status == 429 {
                &[("retry-after", "1")]
            } else {
                &[]
            };
            return respond(s, status, "application/json", body.to_string(), extra).await;
        }
        if fault.as_deref() == Some("garbage") {
            return respond(s, 200, "application/json", "{not json", &[]).await;
        }
        let req: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let body =
                    render::error(shape, 400, &format!("mock cannot parse the request: {e}"));
                return respond(s, 400, "application/json", body.to_string(), &[]).await;
            }
        };
        if !req["messages"].is_array() || !req["model"].is_string() {
            let body = render::error(shape, 400, "model and messages are required");
            return respond(s, 400, "application/json", body.to_string(), &[]).await;
        }
        if let Some(status) = req["model"]
            .as_str()
            .and_then(|m| m.strip_prefix("mock-fail-"))
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u16>().ok())
            .filter(|s| (400..=599).contains(s))
        {
            // A model named `mock-fail-503…` always fails so: the fault
            // reaches the mock through any provider kind, no header needed.
            let body = render::error(shape, status, &format!("mock model fails with {status}"));
            return respond(s, status, "application/json", body.to_string(), &[]).await;
        }
        if let Some(fault) = model_fault(header(s, "x-mock-fail-model"), &req["model"]) {
            match fault.parse::<u16>() {
                Ok(status) => {
                    let body =
                        render::error(shape, status, &format!("mock injected error {status}"));
                    return respond(s, status, "application/json", body.to_string(), &[]).await;
                }
                Err(_) if fault == "slow" => tokio::time::sleep(Duration::from_secs(30)).await,
                Err(_) => {
                    return pingora_error::Error::e_explain(
                        pingora_error::ErrorType::InternalError,
                        "mock hanging up on this model as asked",
                    );
                }
            }
        }
        let cached = header(s, "x-mock-cached-tokens")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("mock{n}");
        let output = header(s, "x-mock-output-tokens").and_then(|v| v.parse().ok());
        let plan = plan(shape, &req, n, cached, output);
        if req["stream"] == true {
            let include_usage = req["stream_options"]["include_usage"] == true;
            let delay = millis(s, "x-mock-chunk-delay-ms", self.chunk_delay);
            return self
                .stream(s, shape, &plan, &id, include_usage, delay, fault.as_deref())
                .await;
        }
        let body = render::whole(shape, &plan, &id);
        respond(s, 200, "application/json", body.to_string(), &[]).await
    }
}

impl MockProvider {
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        s: &mut ServerSession,
        shape: Shape,
        plan: &Plan,
        id: &str,
        include_usage: bool,
        delay: Duration,
        fault: Option<&str>,
    ) -> pingora_error::Result<()> {
        let mut h = ResponseHeader::build(200, Some(4))?;
        h.insert_header("content-type", "text/event-stream")?;
        h.insert_header("cache-control", "no-cache")?;
        // Chunked, as real providers stream: without it the body is
        // delimited by the connection closing, and `x-mock-error: drop`
        // would read as a clean end of stream rather than a cut.
        h.insert_header("transfer-encoding", "chunked")?;
        s.write_response_header(Box::new(h)).await?;
        let frames = render::stream(shape, plan, id, include_usage);
        let cut = frames.len() / 2;
        for (i, frame) in frames.into_iter().enumerate() {
            if i == cut {
                match fault {
                    Some("midstream") => {
                        let err = render::error(shape, 529, "Overloaded");
                        let frame = match shape {
                            Shape::OpenAi => format!("data: {err}\n\n"),
                            Shape::Anthropic => format!("event: error\ndata: {err}\n\n"),
                        };
                        s.write_response_body(Bytes::from(frame), false).await?;
                        return s.write_response_body(Bytes::new(), true).await;
                    }
                    // A clean end of the HTTP body that lacks the stream's
                    // final events: only the proxy can notice.
                    Some("truncate") => return s.write_response_body(Bytes::new(), true).await,
                    Some("drop") => {
                        return pingora_error::Error::e_explain(
                            pingora_error::ErrorType::InternalError,
                            "mock dropping the connection as asked",
                        );
                    }
                    _ => {}
                }
            }
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            s.write_response_body(Bytes::from(frame), false).await?;
        }
        s.write_response_body(Bytes::new(), true).await
    }
}
