//! What the host knows about a request or a finished exchange, in host
//! types: built once per request by the pipeline, read by plugins through
//! `context` handles.

use std::sync::Arc;

use bytes::Bytes;

use crate::api::Shape;

/// Request headers no plugin ever reads: credentials of the client.
pub const CREDENTIAL_HEADERS: [&str; 9] = [
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "set-cookie",
    "x-amz-security-token",
    // The LLM judge's per-process secret.
    "x-sluice-judge",
];

/// Whether a header may be shown to plugins (and logs).
pub fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// The commercial tier of a caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Trial,
    Paid,
    Internal,
}

/// Tokens of one provider call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached_input: u64,
}

/// Who is calling, once keys exist.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub key_id: String,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub workspace: Option<String>,
    pub tier: Option<Tier>,
}

/// A request as plugins see it.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub request_id: String,
    pub inbound_shape: Shape,
    pub model: String,
    pub canonical_model: String,
    pub stream: bool,
    /// Lower-case names; credentials already removed.
    pub headers: Vec<(String, String)>,
    pub message_count: u32,
    pub body: Bytes,
    pub estimated_input_tokens: u64,
    pub max_output_tokens: Option<u64>,
    pub tool_names: Vec<String>,
    pub caller: Option<Caller>,
    /// (provider, model), in the order they would be tried.
    pub candidates: Vec<(String, String)>,
}

impl RequestFacts {
    /// Keep the headers plugins may read, as (lower-case name, value).
    pub fn visible_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .filter(|(n, _)| !is_credential(n.as_str()))
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect()
    }
}

/// A finished exchange as evaluators see it.
#[derive(Debug, Clone)]
pub struct ExchangeFacts {
    pub request: Arc<RequestFacts>,
    pub provider: String,
    pub model: String,
    pub status: u16,
    pub latency_ms: u64,
    pub response_body: Bytes,
    pub answer_text: String,
    pub usage: Option<Tokens>,
    pub cost_usd: Option<String>,
}
