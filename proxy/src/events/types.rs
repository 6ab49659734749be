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
        }
    }

    pub fn sensitivity(&self) -> Sensitivity {
        Sensitivity::Pseudonymous
    }

    /// Audit events are never dropped: a full queue makes their sender wait.
    pub fn is_audit(&self) -> bool {
        AUDIT_TYPES.contains(&self.type_name())
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
