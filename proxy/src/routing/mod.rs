//! Deciding where a request goes: model normalization, then the seven-slot
//! chain (`chain`), whose decision is an ordered list of candidates the
//! pipeline tries in turn. Routing knows nothing of HTTP: it returns a
//! [`Route`] (candidates, the chain's verdicts) or a [`RouteError`].

pub mod breaker;
mod chain;
pub mod health;
mod model;
pub mod patterns;
mod policy;

use std::time::Duration;

use serde::Serialize;

use crate::plugins::PluginError;

pub use chain::{Env, Request, decide};
pub use health::Health;
pub use model::{Canonical, OPT_OUT, normalize};
pub use patterns::PatternStore;
pub use policy::{FILE as POLICY_FILE, RoutingPolicy};

/// A provider and the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub provider: String,
    /// The model to name upstream (no provider prefix).
    pub model: String,
}

impl Candidate {
    /// `provider:model`, the canonical id.
    pub fn id(&self) -> String {
        format!("{}:{}", self.provider, self.model)
    }
}

/// The slots of the chain, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// Router plugins bound with `slot = "first"`.
    First,
    PerMessageOverride,
    PolicyPin,
    Rules,
    PatternRecommendation,
    DelegateRequest,
    Custom,
    GlobalDefault,
}

impl Slot {
    pub const ALL: [Slot; 8] = [
        Slot::First,
        Slot::PerMessageOverride,
        Slot::PolicyPin,
        Slot::Rules,
        Slot::PatternRecommendation,
        Slot::DelegateRequest,
        Slot::Custom,
        Slot::GlobalDefault,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::First => "first",
            Slot::PerMessageOverride => "per_message_override",
            Slot::PolicyPin => "policy_pin",
            Slot::Rules => "rules",
            Slot::PatternRecommendation => "pattern_recommendation",
            Slot::DelegateRequest => "delegate_request",
            Slot::Custom => "custom",
            Slot::GlobalDefault => "global_default",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Chose,
    NotApplicable,
    /// The slot did not get to decide (the chain's budget ran out).
    Deferred,
    /// It chose, but nothing it chose can be tried now.
    Unavailable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Chose => "chose",
            Verdict::NotApplicable => "not_applicable",
            Verdict::Deferred => "deferred",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// What one slot (or one router plugin in a plugin slot) said.
#[derive(Debug, Clone, Serialize)]
pub struct SlotReport {
    pub slot: Slot,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
    pub latency_us: u64,
}

/// A candidate left out of the list, and why (`provider_unavailable`, …).
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub model: String,
    pub reason: &'static str,
}

/// Where a request will be sent, and why.
#[derive(Debug, Clone)]
pub struct Route {
    /// Best first; never empty. Later entries are fallbacks.
    pub candidates: Vec<Candidate>,
    pub decided_by: Slot,
    /// The router plugin that decided, in a plugin slot.
    pub plugin: Option<String>,
    pub reason: String,
    /// Every slot that ran, in order.
    pub chain: Vec<SlotReport>,
    pub skipped: Vec<Skipped>,
    pub elapsed: Duration,
    pub policy_version: String,
}

impl Route {
    pub fn primary(&self) -> &Candidate {
        &self.candidates[0]
    }
}

/// Why no route was found.
#[derive(Debug)]
pub enum RouteError {
    /// A router refused the request.
    Rejected {
        plugin: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A router failed and its failure stops the request (fail-closed,
    /// busy, or the input was to blame).
    PluginFailed { plugin: String, error: PluginError },
    /// A router chose something that cannot be served.
    InvalidChoice { plugin: String, detail: String },
    /// Nobody serves this model.
    NoProvider { model: String, provider: String },
    /// Slots chose, but every model they chose is unavailable.
    NoneAvailable { skipped: Vec<Skipped> },
}
