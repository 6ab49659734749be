//! Budgets: caps at tier ≥ workspace ≥ team ≥ user ≥ key, per UTC day and
//! month, in USD and tokens. Before a provider call the worst case is
//! **reserved** atomically across every scope the call is charged to; on
//! completion the actual cost is settled and the rest released. Counters
//! start from the committed usage records (the event log's spend rows), so
//! spend survives a restart; metrics are never read back.
//!
//! [`Budgets`] is the seam for a shared store (Valkey) later; [`Ledger`]
//! is the embedded one.

mod ledger;
mod policy;

pub use ledger::Ledger;
pub use policy::{BudgetPolicy, FILE};

use crate::events::Scopes;
use crate::keys::Caps;
use crate::money::Usd;
use crate::pricing::Price;

/// Kinds of scope, in the order caps apply and locks are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKind {
    Tier,
    Workspace,
    Team,
    User,
    Key,
}

impl ScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Tier => "tier",
            ScopeKind::Workspace => "workspace",
            ScopeKind::Team => "team",
            ScopeKind::User => "user",
            ScopeKind::Key => "key",
        }
    }
}

/// One scope a call is charged to, with its caps.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoped {
    pub kind: ScopeKind,
    pub identity: String,
    pub caps: Caps,
}

impl Scoped {
    /// `kind:identity`, the ledger's key.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.identity)
    }
}

pub fn scope_ids(scopes: &[Scoped]) -> Scopes {
    Scopes(scopes.iter().map(Scoped::id).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Daily,
    Monthly,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Daily => "daily",
            Window::Monthly => "monthly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Usd,
    Tokens,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Usd => "usd",
            Unit::Tokens => "tokens",
        }
    }
}

/// What a call asks to reserve.
pub struct Ask<'a> {
    pub call_id: &'a str,
    /// Tier first, key last.
    pub scopes: &'a [Scoped],
    /// An upper bound of the input tokens.
    pub input_tokens: u64,
    /// `None`: unpriced (only allowed when no scope caps USD).
    pub price: Option<&'a Price>,
    /// The client's max output tokens, or the model's when it set none.
    pub max_output: u64,
    /// Choices generated (OpenAI `n`), each up to the output bound.
    pub choices: u64,
}

/// A cap that a call would break.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    pub scope: ScopeKind,
    pub identity: String,
    pub window: Window,
    pub unit: Unit,
    /// Spent plus held, in the unit (a decimal string for USD).
    pub current: String,
    pub limit: String,
    /// When the window resets, in Unix ms.
    pub resets_ms: u64,
}

/// A scope past 80 % after this reservation.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub scope: String,
    pub window: Window,
    pub unit: Unit,
    pub used_ratio: f64,
}

/// Money and tokens held for one call.
#[derive(Debug, Clone)]
pub struct Held {
    pub call_id: String,
    pub scopes: Vec<Scoped>,
    pub usd: Usd,
    pub tokens: u64,
    /// The output bound per choice the reservation covers: the upstream's
    /// max tokens.
    pub output_tokens: u64,
    /// Input tokens the reservation covers.
    pub input_tokens: u64,
    pub day: u32,
    pub month: u32,
    pub warning: Option<Warning>,
}

/// A threshold crossed (80 % warning, 95 % critical), once per window.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub scope: Scoped,
    pub window: Window,
    pub unit: Unit,
    pub level: &'static str,
    pub used: String,
    pub limit: String,
}

/// Spent and held in one window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub spent_usd: Usd,
    pub held_usd: Usd,
    pub spent_tokens: u64,
    pub held_tokens: u64,
}

/// What a scope has used today and this month (for routing predicates
/// and `GET /admin/budgets`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Remaining {
    pub daily: Usage,
    pub monthly: Usage,
}

pub trait Budgets: Send + Sync {
    /// Hold the worst case of `ask` in every scope, or say which cap it
    /// would break. All scopes or none.
    fn reserve(&self, ask: &Ask<'_>, now_ms: u64) -> Result<Held, Exceeded>;
    /// Replace the hold by what the call actually cost.
    fn settle(&self, held: &Held, usd: Usd, tokens: u64, now_ms: u64) -> Vec<Alert>;
    /// Give the hold back (the call was never made or failed).
    fn release(&self, held: &Held);
    /// What `scope_id` (`kind:identity`) has used in the current windows.
    fn remaining(&self, scope_id: &str, now_ms: u64) -> Remaining;
}
