//! The per-request context pingora carries from phase to phase (`type CTX`):
//! everything the stages learn about one request, from intake to logging.

use std::sync::Arc;
use std::time::Instant;

use super::{Attempt, Usage};
use crate::api::{ChatRequest, Shape};
use crate::budget::Held;
use crate::events::PolicyResult;
use crate::keys::GatewayKey;
use crate::plugins::{Caller, RequestFacts};
use crate::routing::Route;
use crate::routing::patterns::Fingerprint;
use crate::state::Snapshot;

pub struct RequestCtx {
    pub started: Instant,
    /// Metric label of the route served.
    pub route: &'static str,
    pub request_id: String,
    /// The envelope errors are answered in.
    pub shape: Shape,
    /// The serving state this request runs on, start to end.
    pub snapshot: Option<Arc<Snapshot>>,
    pub request: Option<ChatRequest>,
    /// The request as plugins see it, built once when a plugin first needs it.
    pub facts: Option<Arc<RequestFacts>>,
    /// Who is calling, as plugins see it.
    pub caller: Option<Caller>,
    /// The gateway key the request authenticated with.
    pub key: Option<Arc<GatewayKey>>,
    /// Money and tokens reserved for the provider call.
    pub held: Option<Held>,
    /// The upstream's max output tokens, when the budget sets it.
    pub max_tokens: Option<u64>,
    pub policy_result: PolicyResult,
    /// `x-sluice-quota-warning` for a caller past 80 % of a cap.
    pub quota_warning: Option<String>,
    /// Tokens the key's rate-limit bucket gave this call at admission.
    pub rate_tokens: u64,
    /// Why the request was refused before any provider call, if it was.
    pub blocked: Option<&'static str>,
    /// The client's model, normalized (`openai:gpt-4o`).
    pub requested_model: Option<String>,
    /// Where routing sent the request, and why.
    pub decision: Option<Route>,
    /// Index in `decision.candidates` of the candidate being tried.
    pub candidate: usize,
    /// The request's fingerprint for the pattern slot.
    pub fingerprint: Option<Fingerprint>,
    /// Provider calls made for this request, in order.
    pub attempts: Vec<Attempt>,
    /// Tokens the provider reported.
    pub usage: Option<Usage>,
    /// What the client received, kept for an evaluator when the request
    /// is in the evaluation sample (at most [`ANSWER_CAP`] bytes).
    pub answer: Option<bytes::BytesMut>,
}

/// Most of an answer kept for evaluation; beyond, the evaluator sees the
/// beginning.
pub const ANSWER_CAP: usize = 1 << 20;

impl RequestCtx {
    /// Keep `bytes` sent to the client, when this request is evaluated.
    pub fn capture(&mut self, bytes: &[u8]) {
        if let Some(a) = &mut self.answer {
            let room = ANSWER_CAP.saturating_sub(a.len());
            a.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            route: "unknown",
            request_id: String::new(),
            shape: Shape::OpenAi,
            snapshot: None,
            request: None,
            facts: None,
            caller: None,
            key: None,
            held: None,
            max_tokens: None,
            policy_result: PolicyResult::Allowed,
            quota_warning: None,
            blocked: None,
            rate_tokens: 0,
            requested_model: None,
            decision: None,
            candidate: 0,
            fingerprint: None,
            attempts: Vec::new(),
            usage: None,
            answer: None,
        }
    }

    /// Why the request failed, for its records: the policy refusal, the
    /// last attempt's error class, or the status.
    pub fn error_code(&self, status: u16) -> Option<String> {
        self.blocked
            .map(str::to_owned)
            .or_else(|| {
                self.attempts
                    .last()
                    .and_then(|a| a.error_class.map(str::to_owned))
            })
            .or_else(|| (status >= 400).then(|| format!("http_{status}")))
    }

    /// Provider and model of the attempt being answered, for the headers of
    /// every response after routing.
    pub fn upstream(&self) -> Option<(&str, &str)> {
        self.attempts
            .last()
            .map(|a| (a.provider.as_str(), a.model.as_str()))
    }
}

impl RequestCtx {
    /// The headers every response to this request carries.
    pub fn stamp(&self) -> crate::http::respond::Stamp<'_> {
        let (provider, model) = self.upstream().unzip();
        crate::http::respond::Stamp {
            request_id: &self.request_id,
            provider,
            model,
            quota: self.quota_warning.as_deref(),
            routed_by: self.decision.as_ref().map(|d| d.decided_by.as_str()),
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
