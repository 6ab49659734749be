//! What the event log holds: typed, versioned events with a sensitivity
//! tier, and one usage record per provider call.

use bincode::{Decode, Encode};
use serde::Serialize;

use crate::money::Usd;

/// Version of the stored shapes below; bumped with any change to them.
pub const SCHEMA: u16 = 1;

/// Who may see an event's fields (the traces issue's export modes act on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Content people wrote or read (prompts, answers).
    Private,
    /// What a user chose to share about themselves.
    UserControlled,
    /// Identities (key, user, team ids) and what they did.
    Pseudonymous,
    /// Counts and sums only.
    Aggregatable,
}

/// One event as stored.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
pub struct Event {
    /// Assigned by the writer, increasing in commit order.
    pub id: u64,
    pub ts_ms: u64,
    pub schema: u16,
    pub sensitivity: Sensitivity,
    #[serde(flatten)]
    pub body: EventBody,
}

/// The event types and their payloads.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
#[serde(tag = "type", content = "payload")]
pub enum EventBody {
    #[serde(rename = "gateway.key_issued")]
    KeyIssued {
        key_id: String,
        user_id: Option<String>,
        team_id: Option<String>,
        workspace: Option<String>,
        customer_tier: Option<String>,
        /// The key this one replaces, when issued by a rotation.
        rotated_from: Option<String>,
    },
    #[serde(rename = "gateway.key_rotated")]
    KeyRotated {
        key_id: String,
        new_key_id: String,
        grace_period_until: String,
    },
    #[serde(rename = "gateway.key_revoked")]
    KeyRevoked {
        key_id: String,
        /// `admin_revoke`, `grace_period_expired` or `rotated`.
        reason: String,
    },
    #[serde(rename = "gateway.auth_failed")]
    AuthFailed {
        /// `missing`, `invalid` or `revoked-or-expired`.
        reason: String,
        inbound_shape: String,
        /// 8 hex digits of the token's sha256, never the token.
        token_hash_prefix: Option<String>,
        gateway_key_id: Option<String>,
    },
    #[serde(rename = "gateway.quota_exceeded")]
    QuotaExceeded {
        scope: String,
        identity: String,
        window: String,
        unit: String,
        current: String,
        limit: String,
        inbound_shape: String,
        gateway_key_id: Option<String>,
    },
    #[serde(rename = "quota.alert")]
    QuotaAlert {
        scope: String,
        identity: String,
        window: String,
        unit: String,
        /// `warning` (80 %) or `critical` (95 %).
        level: String,
        used: String,
        limit: String,
    },
    #[serde(rename = "route.decided")]
    RouteDecided {
        request_id: String,
        gateway_key_id: Option<String>,
        inbound_shape: String,
        /// The model string the client sent.
        client_model: String,
        /// The canonical id that answered; none when nothing could.
        chosen_model: Option<String>,
        decided_by: String,
        reason: String,
        chain: Vec<ChainStep>,
        /// Provider calls made, in order.
        tried: Vec<Tried>,
        /// Candidates left out before any call (`provider_unavailable`, …).
        skipped: Vec<Tried>,
        elapsed_us: u64,
        policy_version: String,
    },
    #[serde(rename = "routing.policy_invalid")]
    RoutingPolicyInvalid {
        error: String,
        /// The version that keeps serving.
        kept_version: String,
    },
    // New variants go last: stored events are decoded by variant index.
    /// One client request on a provider path, however it ended.
    #[serde(rename = "request.completed")]
    RequestCompleted {
        request_id: String,
        gateway_key_id: Option<String>,
        user_id: Option<String>,
        team_id: Option<String>,
        inbound_shape: String,
        client_model: String,
        /// The client's model, normalized (what savings are measured against).
        requested_model: Option<String>,
        /// The canonical id that answered.
        model: Option<String>,
        status: u16,
        streamed: bool,
        latency_ms: u64,
        cost_usd: Usd,
        input_tokens: u64,
        output_tokens: u64,
        /// Provider calls made.
        attempts: u32,
        error_code: Option<String>,
    },
    /// A provider call that answered 2xx (derived from its usage record
    /// when that is committed: one send per call on the request path).
    #[serde(rename = "llm.call_completed")]
    LlmCallCompleted(LlmCall),
    /// A provider call that failed: connect, timeout, an error status.
    #[serde(rename = "llm.call_failed")]
    LlmCallFailed(LlmCall),
    #[serde(rename = "eval.started")]
    EvalStarted {
        eval_id: String,
        /// The request evaluated.
        subject_id: String,
        evaluator: String,
    },
    #[serde(rename = "eval.completed")]
    EvalCompleted {
        eval_id: String,
        subject_id: String,
        evaluator: String,
        gateway_key_id: Option<String>,
        user_id: Option<String>,
        team_id: Option<String>,
        model: String,
        /// In [0, 1].
        score: f64,
        confidence: f64,
        judge_cost_usd: Usd,
        rubric_id: String,
        rubric_version: u32,
        signals: Vec<Signal>,
    },
    #[serde(rename = "eval.failed")]
    EvalFailed {
        eval_id: String,
        subject_id: String,
        evaluator: String,
        error_message: String,
    },
    /// One applied retention purge.
    #[serde(rename = "trace.swept")]
    TraceSwept {
        /// Events older than this (strictly) were eligible, RFC 3339.
        cutoff: String,
        rows_eligible: u64,
        rows_audit_exempt: u64,
        rows_deleted: u64,
        oldest_kept_timestamp: Option<String>,
        dry_run: bool,
        swept_at: String,
    },
    /// A data subject's export. The id is kept as its pseudonym: an
    /// export of a forgotten user must not bring the id back.
    #[serde(rename = "analytics.user_exported")]
    UserExported { pseudonym: String, rows: u64 },
    #[serde(rename = "analytics.user_forgotten")]
    UserForgotten {
        /// What the user's id became everywhere; the id itself is not kept.
        pseudonym: String,
        pseudonymized_rows: u64,
    },
}

/// A provider call as the trace store keeps it.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
pub struct LlmCall {
    pub request_id: String,
    pub call_id: String,
    pub gateway_key_id: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub inbound_shape: String,
    pub provider: String,
    pub model: String,
    pub status: u16,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub cost_usd: Usd,
    pub pricing_version: Option<String>,
    pub latency_ms: u64,
    pub streamed: bool,
    pub error_code: Option<String>,
}

impl LlmCall {
    /// The call a usage record describes; none for a refusal before any.
    pub fn from_usage(r: &UsageRecord) -> Option<LlmCall> {
        let provider = r.provider.clone()?;
        Some(LlmCall {
            request_id: r.request_id.clone(),
            call_id: r.call_id.clone(),
            gateway_key_id: r.gateway_key_id.clone(),
            user_id: r.user_id.clone(),
            team_id: r.team_id.clone(),
            inbound_shape: r.inbound_shape.clone(),
            provider,
            model: r.model.clone().unwrap_or_default(),
            status: r.status,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cached_input_tokens: r.cached_input_tokens,
            cost_usd: r.cost_usd,
            pricing_version: r.pricing_version.clone(),
            latency_ms: r.latency_ms,
            streamed: r.streamed,
            error_code: r.error_code.clone(),
        })
    }
}

/// One named signal of an evaluation.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
pub struct Signal {
    pub name: String,
    pub value: f64,
}

/// One slot's verdict in `route.decided`.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
pub struct ChainStep {
    pub slot: String,
    pub plugin: Option<String>,
    /// `chose`, `not_applicable`, `deferred` or `unavailable`.
    pub verdict: String,
    /// Why; for `unavailable` the validation failure (`provider_unavailable`).
    pub reason: String,
    pub latency_us: u64,
}

/// A candidate in `route.decided`: what became of it.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
pub struct Tried {
    pub model: String,
    /// A status (`"200"`, `"503"`), an error class, or why it was skipped.
    pub outcome: String,
}

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::KeyIssued { .. } => "gateway.key_issued",
            EventBody::KeyRotated { .. } => "gateway.key_rotated",
            EventBody::KeyRevoked { .. } => "gateway.key_revoked",
            EventBody::AuthFailed { .. } => "gateway.auth_failed",
            EventBody::QuotaExceeded { .. } => "gateway.quota_exceeded",
            EventBody::QuotaAlert { .. } => "quota.alert",
            EventBody::RouteDecided { .. } => "route.decided",
            EventBody::RoutingPolicyInvalid { .. } => "routing.policy_invalid",
            EventBody::RequestCompleted { .. } => "request.completed",
            EventBody::LlmCallCompleted(_) => "llm.call_completed",
            EventBody::LlmCallFailed(_) => "llm.call_failed",
            EventBody::EvalStarted { .. } => "eval.started",
            EventBody::EvalCompleted { .. } => "eval.completed",
            EventBody::EvalFailed { .. } => "eval.failed",
            EventBody::TraceSwept { .. } => "trace.swept",
            EventBody::UserExported { .. } => "analytics.user_exported",
            EventBody::UserForgotten { .. } => "analytics.user_forgotten",
        }
    }

    pub fn sensitivity(&self) -> Sensitivity {
        match self {
            // Evaluator failures may quote the answer.
            EventBody::EvalFailed { .. } => Sensitivity::Private,
            EventBody::TraceSwept { .. } => Sensitivity::Aggregatable,
            _ => Sensitivity::Pseudonymous,
        }
    }

    /// The gateway key, user and team an event is about, for the
    /// secondary tables.
    pub fn subjects(&self) -> (Option<&str>, Option<&str>, Option<&str>) {
        fn s(v: &Option<String>) -> Option<&str> {
            v.as_deref()
        }
        match self {
            EventBody::KeyIssued {
                key_id,
                user_id,
                team_id,
                ..
            } => (Some(key_id), s(user_id), s(team_id)),
            EventBody::KeyRotated { key_id, .. } | EventBody::KeyRevoked { key_id, .. } => {
                (Some(key_id), None, None)
            }
            EventBody::AuthFailed { gateway_key_id, .. }
            | EventBody::RouteDecided { gateway_key_id, .. } => (s(gateway_key_id), None, None),
            EventBody::RequestCompleted {
                gateway_key_id,
                user_id,
                team_id,
                ..
            }
            | EventBody::EvalCompleted {
                gateway_key_id,
                user_id,
                team_id,
                ..
            } => (s(gateway_key_id), s(user_id), s(team_id)),
            EventBody::LlmCallCompleted(c) | EventBody::LlmCallFailed(c) => {
                (s(&c.gateway_key_id), s(&c.user_id), s(&c.team_id))
            }
            EventBody::UserExported { pseudonym, .. } => (None, Some(pseudonym), None),
            EventBody::QuotaExceeded {
                scope,
                identity,
                gateway_key_id,
                ..
            } => {
                let (user, team) = scope_subject(scope, identity);
                (s(gateway_key_id), user, team)
            }
            EventBody::QuotaAlert {
                scope, identity, ..
            } => {
                let (user, team) = scope_subject(scope, identity);
                (None, user, team)
            }
            _ => (None, None, None),
        }
    }

    /// Replace the user id `user` by `with` wherever this event names it;
    /// whether anything changed.
    pub fn replace_user(&mut self, user: &str, with: &str) -> bool {
        let mut changed = false;
        let mut swap = |v: &mut String| {
            if v == user {
                *v = with.to_owned();
                changed = true;
            }
        };
        match self {
            EventBody::KeyIssued {
                user_id: Some(u), ..
            }
            | EventBody::RequestCompleted {
                user_id: Some(u), ..
            }
            | EventBody::EvalCompleted {
                user_id: Some(u), ..
            } => swap(u),
            EventBody::LlmCallCompleted(c) | EventBody::LlmCallFailed(c) => {
                if let Some(u) = &mut c.user_id {
                    swap(u)
                }
            }
            EventBody::QuotaExceeded {
                scope, identity, ..
            }
            | EventBody::QuotaAlert {
                scope, identity, ..
            } if scope == "user" => swap(identity),
            _ => {}
        }
        changed
    }

    /// Audit events are never dropped: a full queue makes their sender wait.
    pub fn is_audit(&self) -> bool {
        AUDIT_TYPES.contains(&self.type_name())
    }
}

/// A quota scope's identity as a user or team subject.
fn scope_subject<'a>(scope: &str, identity: &'a str) -> (Option<&'a str>, Option<&'a str>) {
    match scope {
        "user" => (Some(identity), None),
        "team" => (None, Some(identity)),
        _ => (None, None),
    }
}

/// The audit subset of event types (retention exempts them).
pub const AUDIT_TYPES: &[&str] = &[
    "gateway.key_issued",
    "gateway.key_rotated",
    "gateway.key_revoked",
    "gateway.auth_failed",
    "gateway.quota_exceeded",
    "quota.alert",
    "routing.policy_invalid",
    "trace.swept",
    "analytics.user_exported",
    "analytics.user_forgotten",
];

/// What enforcement decided for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyResult {
    Allowed,
    Warned,
    Blocked,
}

/// The budget scopes a call is charged to, as `kind:identity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct Scopes(pub Vec<String>);

/// One provider call (or one refusal before any), keyed by `call_id`.
#[derive(Debug, Clone, Encode, Decode, Serialize)]
pub struct UsageRecord {
    pub call_id: String,
    pub request_id: String,
    pub ts_ms: u64,
    pub schema: u16,
    pub gateway_key_id: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub workspace: Option<String>,
    pub inbound_shape: String,
    pub provider: Option<String>,
    /// `provider:model` as priced.
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub cost_usd: Usd,
    pub pricing_version: Option<String>,
    /// No price for the model: served at zero cost, flagged.
    pub unpriced: bool,
    /// The provider reported no usage (a cut stream): charged the reserved
    /// worst case.
    pub usage_estimated: bool,
    pub streamed: bool,
    pub status: u16,
    pub latency_ms: u64,
    pub policy_result: PolicyResult,
    pub error_code: Option<String>,
    /// Where the cost is counted.
    pub scopes: Scopes,
}

impl UsageRecord {
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A reservation's hold, written so that a crash does not forget money a
/// provider may be spending: it counts until it expires or is settled.
#[derive(Debug, Clone, Encode, Decode)]
pub struct HoldRecord {
    pub call_id: String,
    pub scopes: Scopes,
    pub usd: Usd,
    pub tokens: u64,
    pub day: u32,
    pub month: u32,
    pub expires_ms: u64,
}

/// Spend of one scope in one window, as committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode)]
pub struct Spend {
    pub usd: Usd,
    pub tokens: u64,
    pub calls: u64,
}
