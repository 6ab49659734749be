//! A gateway key as stored, what issuing one takes, and how it is shown.

use bincode::{Decode, Encode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::clock::rfc3339;
use crate::money::Usd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerTier {
    Trial,
    Paid,
    Internal,
}

impl CustomerTier {
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerTier::Trial => "trial",
            CustomerTier::Paid => "paid",
            CustomerTier::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "trial" => Ok(CustomerTier::Trial),
            "paid" => Ok(CustomerTier::Paid),
            "internal" => Ok(CustomerTier::Internal),
            _ => Err(format!(
                "customer tier {s:?} must be trial, paid or internal"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// Spending caps; unset means no cap at this scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Caps {
    pub daily_usd: Option<Usd>,
    pub monthly_usd: Option<Usd>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
}

impl Caps {
    pub fn any(&self) -> bool {
        self.daily_usd.is_some()
            || self.monthly_usd.is_some()
            || self.daily_tokens.is_some()
            || self.monthly_tokens.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct GatewayKey {
    pub id: String,
    /// sha256 of the secret; the secret itself is never stored.
    pub hash: [u8; 32],
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub workspace: Option<String>,
    pub customer_tier: Option<CustomerTier>,
    pub status: KeyStatus,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
    pub revoked_reason: Option<String>,
    /// Set on a rotated key: it stays valid until then.
    pub grace_period_until_ms: Option<u64>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    /// The id spend is counted under: the first key of a rotation chain,
    /// so a rotation does not hand out a fresh budget.
    pub budget_id: String,
    pub caps: Caps,
    /// `provider:model` or bare model names; a trailing `*` matches a
    /// prefix. Empty: every model.
    pub allowed_models: Vec<String>,
}

/// Whether a key may be used at `now`, and if not why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Active,
    /// Rotated; valid until its grace period ends.
    Grace,
    Revoked,
    Expired,
}

impl GatewayKey {
    pub fn standing(&self, now_ms: u64) -> Standing {
        if self.status == KeyStatus::Revoked {
            return Standing::Revoked;
        }
        if let Some(g) = self.grace_period_until_ms {
            return if now_ms < g {
                Standing::Grace
            } else {
                Standing::Revoked
            };
        }
        if self.expires_ms.is_some_and(|e| now_ms >= e) {
            return Standing::Expired;
        }
        Standing::Active
    }

    /// When it stopped being valid, for a revoked or expired key.
    pub fn revoked_at_ms(&self) -> Option<u64> {
        self.revoked_ms.or(self.grace_period_until_ms)
    }

    pub fn allows_model(&self, provider: &str, model: &str) -> bool {
        self.allowed_models.is_empty()
            || self.allowed_models.iter().any(|p| {
                let id = format!("{provider}:{model}");
                match p.strip_suffix('*') {
                    Some(prefix) => id.starts_with(prefix) || model.starts_with(prefix),
                    None => p == &id || p == model,
                }
            })
    }

    /// The key as shown by `keys show` and the admin API; unset fields are
    /// left out, times are RFC 3339, money is a decimal string.
    pub fn to_json(&self, now_ms: u64) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                m.insert(k.to_owned(), v);
            }
        };
        put("id", json!(self.id));
        put("user_id", json!(self.user_id));
        put("team_id", json!(self.team_id));
        put("workspace", json!(self.workspace));
        put(
            "customer_tier",
            json!(self.customer_tier.map(|t| t.as_str())),
        );
        put(
            "status",
            json!(match self.status {
                KeyStatus::Active => "active",
                KeyStatus::Revoked => "revoked",
            }),
        );
        put(
            "state",
            json!(match self.standing(now_ms) {
                Standing::Active => "active",
                Standing::Grace => "grace",
                Standing::Revoked => "revoked",
                Standing::Expired => "expired",
            }),
        );
        put("created", json!(rfc3339(self.created_ms)));
        put("expires", json!(self.expires_ms.map(rfc3339)));
        put("revoked_at", json!(self.revoked_ms.map(rfc3339)));
        put("revoked_reason", json!(self.revoked_reason));
        put(
            "grace_period_until",
            json!(self.grace_period_until_ms.map(rfc3339)),
        );
        put("rotated_from", json!(self.rotated_from));
        put("rotated_to", json!(self.rotated_to));
        if self.budget_id != self.id {
            put("budget_id", json!(self.budget_id));
        }
        put("daily_cap_usd", json!(self.caps.daily_usd));
        put("monthly_cap_usd", json!(self.caps.monthly_usd));
        put("daily_token_cap", json!(self.caps.daily_tokens));
        put("monthly_token_cap", json!(self.caps.monthly_tokens));
        if !self.allowed_models.is_empty() {
            put("allowed_models", json!(self.allowed_models));
        }
        put("token_hash_prefix", json!(hex::encode(&self.hash[..4])));
        Value::Object(m)
    }
}

/// What `keys issue` takes (CLI flags or the admin API's JSON body).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueSpec {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub workspace: Option<String>,
    pub customer_tier: Option<String>,
    /// A duration (`30d`); the key expires that long after issue.
    pub expires_in: Option<String>,
    pub daily_cap_usd: Option<Amount>,
    pub monthly_cap_usd: Option<Amount>,
    pub daily_token_cap: Option<u64>,
    pub monthly_token_cap: Option<u64>,
    #[serde(default)]
    pub allowed_models: Vec<String>,
}

/// A USD amount as a decimal string, or a JSON number written the same way.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Amount {
    Text(String),
    Number(serde_json::Number),
}

impl Amount {
    pub fn usd(&self) -> Result<Usd, String> {
        match self {
            Amount::Text(s) => Usd::parse_positive(s),
            Amount::Number(n) => Usd::parse_positive(&n.to_string()),
        }
    }
}

/// Identities are ids, not text: `[A-Za-z0-9_-]`, 1 to 200 characters
/// (team ids lower-case, as the spec has them).
pub fn check_id(what: &str, v: &str, lower_only: bool) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 200
        && v.bytes().all(|b| {
            b.is_ascii_digit()
                || b.is_ascii_lowercase()
                || b == b'_'
                || b == b'-'
                || (!lower_only && b.is_ascii_uppercase())
        });
    if ok {
        Ok(())
    } else if lower_only {
        Err(format!(
            "{what} {v:?} must be 1-200 characters of a-z, 0-9, '_' and '-'"
        ))
    } else {
        Err(format!(
            "{what} {v:?} must be 1-200 characters of A-Z, a-z, 0-9, '_' and '-'"
        ))
    }
}
