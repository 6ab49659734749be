//! The per-request context pingora carries from phase to phase (`type CTX`):
//! everything the stages learn about one request, from intake to logging.

use std::sync::Arc;
use std::time::Instant;

use super::{Attempt, Usage};
use crate::api::{ChatRequest, Shape};
use crate::plugins::{Caller, RequestFacts};
use crate::routing::Route;
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
    /// Who is calling (the keys issue fills it).
    pub caller: Option<Caller>,
    /// Where routing sent the request, and why.
    pub decision: Option<Route>,
    /// Provider calls made for this request, in order.
    pub attempts: Vec<Attempt>,
    /// Tokens the provider reported.
    pub usage: Option<Usage>,
}

impl RequestCtx {
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
            decision: None,
            attempts: Vec::new(),
            usage: None,
        }
    }

    /// Provider and model of the attempt being answered, for the headers of
    /// every response after routing.
    pub fn upstream(&self) -> Option<(&str, &str)> {
        self.attempts
            .last()
            .map(|a| (a.provider.as_str(), a.model.as_str()))
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
