//! Provider availability breaker: which (provider, model) candidates the
//! router should skip for now.
//!
//! - A model is unavailable after [`MODEL_FAILURES`] failures within
//!   [`MODEL_WINDOW_MS`]. Server errors, rate limits, network and auth
//!   errors all count; client errors are the request's fault, so they are
//!   [`Outcome::Neutral`] and neither count nor clear.
//! - The whole provider is unavailable after [`NETWORK_FAILURES`] network
//!   errors (connect errors and timeouts) within [`NETWORK_WINDOW_MS`] on any
//!   of its models, at once on an auth error (the key is bad for every
//!   model), or when [`MODELS_FOR_PROVIDER`] distinct models became
//!   unavailable within [`MODELS_WINDOW_MS`] (the trouble is not the model).
//! - An entry clears on its own [`AUTO_CLEAR_MS`] after the last failure that
//!   touched it, so a provider nobody tries any more is retried eventually.
//!   A provider-wide entry clearing also forgets the evidence behind it.
//! - A success clears that model and the provider-wide state: the provider
//!   answered.
//!
//! Time is passed in (`now_ms`, Unix ms) so the rules are testable without
//! sleeping. Auto-clear is lazy; the [`Change::Cleared`] it causes is handed
//! out by the next [`Breaker::record`] (or [`Breaker::sweep`]) on the
//! provider, so gauges driven by changes never miss one.
//!
//! Hot path: a provider with nothing recorded costs one atomic load; its
//! mutex (one per provider, never a global one) is only taken once it has
//! had trouble.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Failures of one model within [`MODEL_WINDOW_MS`] that make it unavailable.
pub const MODEL_FAILURES: usize = 5;
pub const MODEL_WINDOW_MS: u64 = 120_000;
/// Network errors on one provider within [`NETWORK_WINDOW_MS`] that make the
/// whole provider unavailable.
pub const NETWORK_FAILURES: usize = 2;
pub const NETWORK_WINDOW_MS: u64 = 30_000;
/// Distinct models of one provider becoming unavailable within
/// [`MODELS_WINDOW_MS`] that make the whole provider unavailable.
pub const MODELS_FOR_PROVIDER: usize = 3;
pub const MODELS_WINDOW_MS: u64 = 120_000;
/// An entry clears this long after the last failure that touched it.
pub const AUTO_CLEAR_MS: u64 = 300_000;
/// Models tracked per provider, so clients naming random models cannot grow
/// memory; beyond it the least recently touched model without an entry goes.
pub const MAX_MODELS_PER_PROVIDER: usize = 1024;

pub const REASON_MODEL_FAILURES: &str = "model_failures";
pub const REASON_NETWORK_ERRORS: &str = "network_errors";
pub const REASON_AUTH_ERROR: &str = "auth_error";
pub const REASON_MODELS_UNAVAILABLE: &str = "models_unavailable";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Connection errors and timeouts.
    Network,
    /// 401/403 from the provider.
    Auth,
    /// 429.
    RateLimited,
    /// 5xx.
    Server,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Auth => "auth",
            Self::RateLimited => "rate_limited",
            Self::Server => "server",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(ErrorClass),
    /// Client errors (4xx other than 401/403/429).
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Model,
    Provider,
}

/// Why a candidate cannot be tried now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub scope: Scope,
    /// One of the `REASON_*` constants.
    pub reason: &'static str,
    pub since_ms: u64,
    pub clears_at_ms: u64,
}

/// A state change, for the caller to log and to set its gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    ModelDown {
        provider: String,
        model: String,
        reason: &'static str,
    },
    ProviderDown {
        provider: String,
        reason: &'static str,
    },
    /// `model: None` is the provider-wide entry.
    Cleared {
        provider: String,
        model: Option<String>,
    },
}

/// One current entry, for `GET /admin/routing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub provider: String,
    /// `None` = provider-wide.
    pub model: Option<String>,
    pub reason: &'static str,
    pub since_ms: u64,
    pub last_attempt_ms: u64,
    pub clears_at_ms: u64,
    /// Failures recorded against the entry: those that tripped it, then one
    /// per failure while it stands.
    pub recent_failures: u32,
}

pub struct Breaker {
    /// Built once in `new` and never mutated, so lookups need no lock.
    slots: HashMap<String, Slot>,
}

struct Slot {
    /// Mirrors `!state.is_empty()`, stored under the lock, so the common
    /// untroubled case reads this alone.
    has_state: AtomicBool,
    state: Mutex<ProviderState>,
}

#[derive(Default)]
struct ProviderState {
    down: Option<Down>,
    /// Recent network errors, at most [`NETWORK_FAILURES`].
    network: VecDeque<u64>,
    /// Recent model downs as (when, model), one per model, at most
    /// [`MODELS_FOR_PROVIDER`]: enough to tell whether that many are recent.
    models_down: VecDeque<(u64, String)>,
    models: HashMap<String, ModelState>,
    /// Auto-clears applied by `check`/`entries`, which cannot return them.
    pending: Vec<Change>,
    /// No time-driven change can happen before this (a lower bound), so most
    /// calls skip the pass over all models.
    next_deadline_ms: u64,
}

#[derive(Default)]
struct ModelState {
    down: Option<Down>,
    /// Recent failures, at most [`MODEL_FAILURES`].
    failures: VecDeque<u64>,
    last_touched_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Down {
    reason: &'static str,
    since_ms: u64,
    last_attempt_ms: u64,
    failures: u32,
}

impl Down {
    fn new(reason: &'static str, now_ms: u64, failures: usize) -> Self {
        Self {
            reason,
            since_ms: now_ms,
            last_attempt_ms: now_ms,
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
        }
    }

    fn clears_at(&self) -> u64 {
        self.last_attempt_ms.saturating_add(AUTO_CLEAR_MS)
    }

    fn expired(&self, now_ms: u64) -> bool {
        now_ms >= self.clears_at()
    }

    fn touch(&mut self, now_ms: u64) {
        // Workers' clocks are read at slightly different moments; never
        // move the deadline back.
        self.last_attempt_ms = self.last_attempt_ms.max(now_ms);
        self.failures = self.failures.saturating_add(1);
    }

    fn unavailable(&self, scope: Scope) -> Unavailable {
        Unavailable {
            scope,
            reason: self.reason,
            since_ms: self.since_ms,
            clears_at_ms: self.clears_at(),
        }
    }

    fn entry(&self, provider: &str, model: Option<&str>) -> Entry {
        Entry {
            provider: provider.to_owned(),
            model: model.map(str::to_owned),
            reason: self.reason,
            since_ms: self.since_ms,
            last_attempt_ms: self.last_attempt_ms,
            clears_at_ms: self.clears_at(),
            recent_failures: self.failures,
        }
    }
}

/// An event exactly `window_ms` old has slid out. Tolerates timestamps out
/// of order (concurrent workers).
fn in_window(t: u64, now_ms: u64, window_ms: u64) -> bool {
    now_ms.saturating_sub(t) < window_ms
}

fn trim(q: &mut VecDeque<u64>, now_ms: u64, window_ms: u64) {
    q.retain(|&t| in_window(t, now_ms, window_ms));
}

/// Only the newest `cap` matter: the question is whether `cap` are recent.
fn push_event(q: &mut VecDeque<u64>, now_ms: u64, window_ms: u64, cap: usize) {
    q.push_back(now_ms);
    while q.len() > cap {
        q.pop_front();
    }
    trim(q, now_ms, window_ms);
}

fn oldest_expiry(q: &VecDeque<u64>, window_ms: u64) -> u64 {
    q.iter()
        .min()
        .map_or(u64::MAX, |t| t.saturating_add(window_ms))
}

impl ProviderState {
    fn is_empty(&self) -> bool {
        self.down.is_none()
            && self.network.is_empty()
            && self.models_down.is_empty()
            && self.models.is_empty()
            && self.pending.is_empty()
    }

    fn lower_deadline(&mut self, deadline_ms: u64) {
        self.next_deadline_ms = self.next_deadline_ms.min(deadline_ms);
    }

    fn auto_clear(&mut self, provider: &str, now_ms: u64) {
        if now_ms < self.next_deadline_ms {
            return;
        }
        if self.down.is_some_and(|d| d.expired(now_ms)) {
            self.down = None;
            self.network.clear();
            self.models_down.clear();
            self.pending.push(Change::Cleared {
                provider: provider.to_owned(),
                model: None,
            });
        }
        trim(&mut self.network, now_ms, NETWORK_WINDOW_MS);
        self.models_down
            .retain(|(t, _)| in_window(*t, now_ms, MODELS_WINDOW_MS));
        let pending = &mut self.pending;
        self.models.retain(|name, m| {
            if m.down.is_some_and(|d| d.expired(now_ms)) {
                m.down = None;
                m.failures.clear();
                pending.push(Change::Cleared {
                    provider: provider.to_owned(),
                    model: Some(name.clone()),
                });
            }
            trim(&mut m.failures, now_ms, MODEL_WINDOW_MS);
            m.down.is_some() || !m.failures.is_empty()
        });
        self.next_deadline_ms = self.exact_deadline();
    }

    fn exact_deadline(&self) -> u64 {
        let mut d = self.down.map_or(u64::MAX, |d| d.clears_at());
        d = d.min(oldest_expiry(&self.network, NETWORK_WINDOW_MS));
        if let Some(t) = self.models_down.iter().map(|(t, _)| *t).min() {
            d = d.min(t.saturating_add(MODELS_WINDOW_MS));
        }
        for m in self.models.values() {
            if let Some(down) = m.down {
                d = d.min(down.clears_at());
            }
            d = d.min(oldest_expiry(&m.failures, MODEL_WINDOW_MS));
        }
        d
    }

    fn provider_down(
        &mut self,
        provider: &str,
        reason: &'static str,
        now_ms: u64,
        failures: usize,
        out: &mut Vec<Change>,
    ) {
        if self.down.is_some() {
            return;
        }
        let down = Down::new(reason, now_ms, failures);
        self.lower_deadline(down.clears_at());
        self.down = Some(down);
        out.push(Change::ProviderDown {
            provider: provider.to_owned(),
            reason,
        });
    }

    /// `None` when the model cannot be tracked: the table is full of models
    /// that are down, which must not be forgotten.
    fn model_slot(&mut self, model: &str, now_ms: u64) -> Option<&mut ModelState> {
        if !self.models.contains_key(model) {
            if self.models.len() >= MAX_MODELS_PER_PROVIDER {
                let victim = self
                    .models
                    .iter()
                    .filter(|(_, m)| m.down.is_none())
                    .min_by_key(|(_, m)| m.last_touched_ms)
                    .map(|(name, _)| name.clone())?;
                self.models.remove(&victim);
            }
            self.models.insert(model.to_owned(), ModelState::default());
        }
        let m = self.models.get_mut(model)?;
        m.last_touched_ms = m.last_touched_ms.max(now_ms);
        Some(m)
    }

    /// Returns whether the model just went down.
    fn model_failure(
        &mut self,
        provider: &str,
        model: &str,
        now_ms: u64,
        out: &mut Vec<Change>,
    ) -> bool {
        let Some(m) = self.model_slot(model, now_ms) else {
            return false;
        };
        push_event(&mut m.failures, now_ms, MODEL_WINDOW_MS, MODEL_FAILURES);
        let tripped = match &mut m.down {
            Some(down) => {
                down.touch(now_ms);
                false
            }
            None if m.failures.len() >= MODEL_FAILURES => {
                m.down = Some(Down::new(REASON_MODEL_FAILURES, now_ms, m.failures.len()));
                true
            }
            None => false,
        };
        self.lower_deadline(now_ms.saturating_add(MODEL_WINDOW_MS));
        if tripped {
            self.lower_deadline(now_ms.saturating_add(AUTO_CLEAR_MS));
            out.push(Change::ModelDown {
                provider: provider.to_owned(),
                model: model.to_owned(),
                reason: REASON_MODEL_FAILURES,
            });
        }
        tripped
    }

    fn note_model_down(&mut self, provider: &str, model: &str, now_ms: u64, out: &mut Vec<Change>) {
        self.models_down
            .retain(|(t, m)| m != model && in_window(*t, now_ms, MODELS_WINDOW_MS));
        self.models_down.push_back((now_ms, model.to_owned()));
        while self.models_down.len() > MODELS_FOR_PROVIDER {
            self.models_down.pop_front();
        }
        self.lower_deadline(now_ms.saturating_add(MODELS_WINDOW_MS));
        if self.models_down.len() >= MODELS_FOR_PROVIDER {
            self.provider_down(provider, REASON_MODELS_UNAVAILABLE, now_ms, 1, out);
        }
    }

    fn record_failure(
        &mut self,
        provider: &str,
        model: &str,
        class: ErrorClass,
        now_ms: u64,
        out: &mut Vec<Change>,
    ) {
        if let Some(down) = &mut self.down {
            down.touch(now_ms);
        }
        if self.model_failure(provider, model, now_ms, out) {
            self.note_model_down(provider, model, now_ms, out);
        }
        match class {
            ErrorClass::Network => {
                push_event(
                    &mut self.network,
                    now_ms,
                    NETWORK_WINDOW_MS,
                    NETWORK_FAILURES,
                );
                self.lower_deadline(now_ms.saturating_add(NETWORK_WINDOW_MS));
                if self.network.len() >= NETWORK_FAILURES {
                    let n = self.network.len();
                    self.provider_down(provider, REASON_NETWORK_ERRORS, now_ms, n, out);
                }
            }
            ErrorClass::Auth => self.provider_down(provider, REASON_AUTH_ERROR, now_ms, 1, out),
            ErrorClass::RateLimited | ErrorClass::Server => {}
        }
    }

    fn record_success(&mut self, provider: &str, model: &str, out: &mut Vec<Change>) {
        if let Some(m) = self.models.remove(model)
            && m.down.is_some()
        {
            out.push(Change::Cleared {
                provider: provider.to_owned(),
                model: Some(model.to_owned()),
            });
        }
        if self.down.take().is_some() {
            out.push(Change::Cleared {
                provider: provider.to_owned(),
                model: None,
            });
        }
        self.network.clear();
        self.models_down.clear();
    }
}

impl Slot {
    fn quiet(&self) -> bool {
        !self.has_state.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, ProviderState> {
        // The state stays consistent between statements; a panic elsewhere
        // must not take routing down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called with the lock held, so the last store reflects the last state.
    fn sync(&self, st: &ProviderState) {
        self.has_state.store(!st.is_empty(), Ordering::Release);
    }
}

impl Breaker {
    /// `providers`: the configured provider names (fixed for the process
    /// life). Unknown names in later calls are ignored (check → `None`,
    /// record → no-op).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(providers: I) -> Self {
        let slots = providers
            .into_iter()
            .map(|p| {
                let slot = Slot {
                    has_state: AtomicBool::new(false),
                    state: Mutex::new(ProviderState::default()),
                };
                (p.into(), slot)
            })
            .collect();
        Self { slots }
    }

    /// Whether (provider, model) may be tried now (`None`: yes). Lazily
    /// applies auto-clear. A provider-wide entry wins over a model one.
    pub fn check(&self, provider: &str, model: &str, now_ms: u64) -> Option<Unavailable> {
        let slot = self.slots.get(provider)?;
        if slot.quiet() {
            return None;
        }
        let mut st = slot.lock();
        st.auto_clear(provider, now_ms);
        let found = match &st.down {
            Some(down) => Some(down.unavailable(Scope::Provider)),
            None => st
                .models
                .get(model)
                .and_then(|m| m.down.as_ref())
                .map(|down| down.unavailable(Scope::Model)),
        };
        slot.sync(&st);
        found
    }

    /// Records one attempt's outcome; returns the transitions it caused,
    /// auto-clears first (possibly several, e.g. a model down that also
    /// takes the provider down).
    pub fn record(
        &self,
        provider: &str,
        model: &str,
        outcome: Outcome,
        now_ms: u64,
    ) -> Vec<Change> {
        let Some(slot) = self.slots.get(provider) else {
            return Vec::new();
        };
        match outcome {
            Outcome::Neutral => return Vec::new(),
            Outcome::Success if slot.quiet() => return Vec::new(),
            Outcome::Success | Outcome::Failure(_) => {}
        }
        let mut st = slot.lock();
        st.auto_clear(provider, now_ms);
        let mut out = std::mem::take(&mut st.pending);
        match outcome {
            Outcome::Success => st.record_success(provider, model, &mut out),
            Outcome::Failure(class) => st.record_failure(provider, model, class, now_ms, &mut out),
            Outcome::Neutral => {}
        }
        slot.sync(&st);
        out
    }

    /// Applies auto-clear everywhere and returns every [`Change::Cleared`]
    /// not handed out yet; for a periodic task, so gauges of a provider
    /// nobody tries any more still come down.
    pub fn sweep(&self, now_ms: u64) -> Vec<Change> {
        let mut out = Vec::new();
        for (name, slot) in &self.slots {
            if slot.quiet() {
                continue;
            }
            let mut st = slot.lock();
            st.auto_clear(name, now_ms);
            out.append(&mut st.pending);
            slot.sync(&st);
        }
        out
    }

    /// Every current entry, sorted by provider then model (provider-wide
    /// first). Applies auto-clear first; cleared entries are omitted.
    pub fn entries(&self, now_ms: u64) -> Vec<Entry> {
        let mut out = Vec::new();
        for (name, slot) in &self.slots {
            if slot.quiet() {
                continue;
            }
            let mut st = slot.lock();
            st.auto_clear(name, now_ms);
            if let Some(down) = &st.down {
                out.push(down.entry(name, None));
            }
            for (model, m) in &st.models {
                if let Some(down) = &m.down {
                    out.push(down.entry(name, Some(model)));
                }
            }
            slot.sync(&st);
        }
        out.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::sync::Arc;

    const SERVER: Outcome = Outcome::Failure(ErrorClass::Server);
    const NETWORK: Outcome = Outcome::Failure(ErrorClass::Network);
    const AUTH: Outcome = Outcome::Failure(ErrorClass::Auth);
    const RATE: Outcome = Outcome::Failure(ErrorClass::RateLimited);

    fn breaker() -> Breaker {
        Breaker::new(["openai", "anthropic"])
    }

    fn model_down(model: &str) -> Change {
        Change::ModelDown {
            provider: "openai".into(),
            model: model.into(),
            reason: REASON_MODEL_FAILURES,
        }
    }

    fn provider_down(reason: &'static str) -> Change {
        Change::ProviderDown {
            provider: "openai".into(),
            reason,
        }
    }

    fn cleared(model: Option<&str>) -> Change {
        Change::Cleared {
            provider: "openai".into(),
            model: model.map(str::to_owned),
        }
    }

    /// Trips `model` with five server errors ending at `t`.
    fn trip(b: &Breaker, model: &str, t: u64) -> Vec<Change> {
        for i in 0..4 {
            assert!(b.record("openai", model, SERVER, t - 4 + i).is_empty());
        }
        b.record("openai", model, SERVER, t)
    }

    fn has_state(b: &Breaker, provider: &str) -> bool {
        !b.slots[provider].quiet()
    }

    #[test]
    fn error_class_names() {
        assert_eq!(ErrorClass::Network.as_str(), "network");
        assert_eq!(ErrorClass::Auth.as_str(), "auth");
        assert_eq!(ErrorClass::RateLimited.as_str(), "rate_limited");
        assert_eq!(ErrorClass::Server.as_str(), "server");
    }

    #[test]
    fn breaker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Breaker>();
    }

    #[test]
    fn fifth_failure_takes_the_model_down() {
        let b = breaker();
        for t in 0..4 {
            assert!(b.record("openai", "gpt", SERVER, t * 1000).is_empty());
            assert_eq!(b.check("openai", "gpt", t * 1000), None);
        }
        assert_eq!(
            b.record("openai", "gpt", SERVER, 4000),
            vec![model_down("gpt")]
        );
        assert_eq!(
            b.check("openai", "gpt", 4001),
            Some(Unavailable {
                scope: Scope::Model,
                reason: REASON_MODEL_FAILURES,
                since_ms: 4000,
                clears_at_ms: 4000 + AUTO_CLEAR_MS,
            })
        );
        assert_eq!(b.check("openai", "other", 4001), None);
        assert_eq!(b.check("anthropic", "gpt", 4001), None);
        // Already down: no second transition.
        assert!(b.record("openai", "gpt", SERVER, 5000).is_empty());
    }

    #[test]
    fn rate_limits_and_network_errors_count_toward_the_model() {
        let b = breaker();
        b.record("openai", "gpt", RATE, 0);
        b.record("openai", "gpt", RATE, 1);
        b.record("openai", "gpt", SERVER, 2);
        b.record("openai", "gpt", NETWORK, 3);
        // Far enough from the first network error to stay model-level.
        assert_eq!(
            b.record("openai", "gpt", RATE, 40_000),
            vec![model_down("gpt")]
        );
    }

    #[test]
    fn old_failures_slide_out() {
        let b = breaker();
        for t in 0..4 {
            b.record("openai", "gpt", SERVER, t);
        }
        // The first failure is exactly 2 min old: out.
        assert!(
            b.record("openai", "gpt", SERVER, MODEL_WINDOW_MS)
                .is_empty()
        );
        assert_eq!(b.check("openai", "gpt", MODEL_WINDOW_MS), None);
        // Four in the window now (t=1..3 and 120 s): one more trips it.
        assert_eq!(
            b.record("openai", "gpt", SERVER, MODEL_WINDOW_MS),
            vec![model_down("gpt")]
        );
    }

    #[test]
    fn two_network_errors_within_30s_take_the_provider_down() {
        let b = breaker();
        assert!(b.record("openai", "a", NETWORK, 0).is_empty());
        assert_eq!(
            b.record("openai", "b", NETWORK, 29_000),
            vec![provider_down(REASON_NETWORK_ERRORS)]
        );
        let u = b.check("openai", "c", 29_001).expect("provider down");
        assert_eq!(u.scope, Scope::Provider);
        assert_eq!(u.reason, REASON_NETWORK_ERRORS);
        assert_eq!(u.since_ms, 29_000);
        assert_eq!(b.check("anthropic", "c", 29_001), None);
    }

    #[test]
    fn network_errors_31s_apart_do_not() {
        let b = breaker();
        assert!(b.record("openai", "a", NETWORK, 0).is_empty());
        assert!(b.record("openai", "b", NETWORK, 31_000).is_empty());
        assert_eq!(b.check("openai", "c", 31_001), None);
        assert_eq!(b.check("openai", "a", 31_001), None);
    }

    #[test]
    fn auth_error_takes_the_provider_down_at_once() {
        let b = breaker();
        assert_eq!(
            b.record("openai", "a", AUTH, 10),
            vec![provider_down(REASON_AUTH_ERROR)]
        );
        let u = b.check("openai", "z", 11).expect("provider down");
        assert_eq!(u.scope, Scope::Provider);
        assert_eq!(u.reason, REASON_AUTH_ERROR);
        assert_eq!(u.clears_at_ms, 10 + AUTO_CLEAR_MS);
        assert!(b.record("openai", "b", AUTH, 12).is_empty());
    }

    #[test]
    fn three_models_down_within_2min_take_the_provider_down() {
        let b = breaker();
        assert_eq!(trip(&b, "a", 10), vec![model_down("a")]);
        assert_eq!(trip(&b, "b", 60_000), vec![model_down("b")]);
        assert_eq!(
            trip(&b, "c", 119_000),
            vec![model_down("c"), provider_down(REASON_MODELS_UNAVAILABLE)]
        );
        let u = b.check("openai", "d", 119_001).expect("provider down");
        assert_eq!(u.scope, Scope::Provider);
        assert_eq!(u.reason, REASON_MODELS_UNAVAILABLE);
    }

    #[test]
    fn three_models_down_over_more_than_2min_do_not() {
        let b = breaker();
        trip(&b, "a", 10);
        trip(&b, "b", 60_000);
        assert_eq!(
            trip(&b, "c", 10 + MODELS_WINDOW_MS + 1_000),
            vec![model_down("c")]
        );
        assert_eq!(b.check("openai", "d", 200_000), None);
        // The models themselves are still down.
        assert_eq!(b.check("openai", "a", 200_000).unwrap().scope, Scope::Model);
    }

    #[test]
    fn model_entry_auto_clears_after_5min_without_attempts() {
        let b = breaker();
        trip(&b, "gpt", 1_000);
        let clear = 1_000 + AUTO_CLEAR_MS;
        assert!(b.check("openai", "gpt", clear - 1).is_some());
        assert_eq!(b.check("openai", "gpt", clear), None);
        assert!(b.entries(clear).is_empty());
        // The lazy clear is handed out by the next record.
        assert_eq!(
            b.record("openai", "gpt", Outcome::Success, clear),
            vec![cleared(Some("gpt"))]
        );
        assert!(!has_state(&b, "openai"));
    }

    #[test]
    fn a_failure_on_the_entry_pushes_the_clear_out() {
        let b = breaker();
        trip(&b, "gpt", 1_000);
        assert!(b.record("openai", "gpt", SERVER, 200_000).is_empty());
        let u = b
            .check("openai", "gpt", 1_000 + AUTO_CLEAR_MS)
            .expect("still down");
        assert_eq!(u.since_ms, 1_000);
        assert_eq!(u.clears_at_ms, 200_000 + AUTO_CLEAR_MS);
        assert!(
            b.check("openai", "gpt", 200_000 + AUTO_CLEAR_MS - 1)
                .is_some()
        );
        assert_eq!(b.check("openai", "gpt", 200_000 + AUTO_CLEAR_MS), None);
    }

    #[test]
    fn provider_entry_auto_clears_and_forgets_its_evidence() {
        let b = breaker();
        b.record("openai", "a", AUTH, 0);
        // Any model's failure touches the provider-wide entry.
        b.record("openai", "x", SERVER, 100_000);
        assert!(b.check("openai", "a", AUTO_CLEAR_MS).is_some());
        let clear = 100_000 + AUTO_CLEAR_MS;
        assert!(b.check("openai", "a", clear - 1).is_some());
        assert_eq!(b.check("openai", "a", clear), None);
        assert_eq!(b.sweep(clear), vec![cleared(None)]);
        assert!(b.sweep(clear).is_empty());
        assert!(!has_state(&b, "openai"));

        // Network window and recent model downs are forgotten too.
        b.record("openai", "a", NETWORK, 0);
        b.record("openai", "b", NETWORK, 1);
        trip(&b, "m1", 10);
        trip(&b, "m2", 20);
        let t = 20 + AUTO_CLEAR_MS;
        let changes = b.sweep(t);
        assert_eq!(changes.len(), 3);
        assert!(changes.contains(&cleared(None)));
        let st = b.slots["openai"].lock();
        assert!(st.network.is_empty() && st.models_down.is_empty() && st.down.is_none());
    }

    #[test]
    fn success_clears_the_model_and_the_provider() {
        let b = breaker();
        trip(&b, "a", 10);
        b.record("openai", "x", NETWORK, 20);
        b.record("openai", "y", NETWORK, 30);
        assert!(b.check("openai", "b", 31).is_some());
        assert_eq!(
            b.record("openai", "a", Outcome::Success, 40),
            vec![cleared(Some("a")), cleared(None)]
        );
        assert_eq!(b.check("openai", "a", 41), None);
        assert_eq!(b.check("openai", "b", 41), None);
        // The network window went with it: one more error is not two.
        assert!(b.record("openai", "x", NETWORK, 50).is_empty());
    }

    #[test]
    fn success_clears_the_failure_window() {
        let b = breaker();
        for t in 0..4 {
            b.record("openai", "a", SERVER, t);
        }
        b.record("openai", "a", Outcome::Success, 5);
        assert!(b.record("openai", "a", SERVER, 6).is_empty());
        assert_eq!(b.check("openai", "a", 7), None);
    }

    #[test]
    fn success_on_another_model_keeps_a_model_entry() {
        let b = breaker();
        trip(&b, "a", 10);
        b.record("openai", "x", AUTH, 20);
        assert_eq!(
            b.record("openai", "b", Outcome::Success, 30),
            vec![cleared(None)]
        );
        assert_eq!(b.check("openai", "a", 31).unwrap().scope, Scope::Model);
        assert_eq!(b.check("openai", "b", 31), None);
    }

    #[test]
    fn neutral_does_nothing() {
        let b = breaker();
        assert!(b.record("openai", "a", Outcome::Neutral, 0).is_empty());
        assert!(!has_state(&b, "openai"));
        for t in 0..4 {
            b.record("openai", "a", SERVER, t);
        }
        for t in 4..20 {
            assert!(b.record("openai", "a", Outcome::Neutral, t).is_empty());
        }
        assert_eq!(b.check("openai", "a", 20), None);
        assert_eq!(b.record("openai", "a", SERVER, 21), vec![model_down("a")]);
        // Neither clears nor touches the entry.
        b.record("openai", "a", Outcome::Neutral, 100_000);
        let u = b.check("openai", "a", 100_001).expect("still down");
        assert_eq!(u.clears_at_ms, 21 + AUTO_CLEAR_MS);
    }

    #[test]
    fn unknown_provider_is_ignored() {
        let b = breaker();
        for t in 0..10 {
            assert!(b.record("nope", "a", AUTH, t).is_empty());
            assert!(b.record("nope", "a", SERVER, t).is_empty());
        }
        assert_eq!(b.check("nope", "a", 10), None);
        assert!(b.entries(10).is_empty());
        assert!(b.sweep(10).is_empty());
    }

    #[test]
    fn no_state_fast_path() {
        let b = breaker();
        assert_eq!(b.check("openai", "a", 0), None);
        assert!(b.record("openai", "a", Outcome::Success, 0).is_empty());
        assert!(b.entries(0).is_empty());
        assert!(!has_state(&b, "openai"));
        // While the flag is clear the mutex is never taken: hold it and
        // show the calls still return.
        let b = Arc::new(b);
        let guard = b.slots["openai"].state.lock().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let b2 = Arc::clone(&b);
        std::thread::spawn(move || {
            let quiet = b2.check("openai", "a", 1).is_none()
                && b2.record("openai", "a", Outcome::Success, 1).is_empty()
                && b2.record("openai", "a", Outcome::Neutral, 1).is_empty()
                && b2.entries(1).is_empty();
            tx.send(quiet).unwrap();
        });
        let quiet = rx.recv_timeout(std::time::Duration::from_secs(10));
        drop(guard);
        assert_eq!(quiet, Ok(true));

        b.record("openai", "a", SERVER, 2);
        assert!(has_state(&b, "openai"));
        b.record("openai", "a", Outcome::Success, 3);
        assert!(!has_state(&b, "openai"));
        // A lone failure slides out and the provider goes quiet again.
        b.record("openai", "a", SERVER, 4);
        assert_eq!(b.check("openai", "a", 4 + MODEL_WINDOW_MS), None);
        assert!(!has_state(&b, "openai"));
    }

    #[test]
    fn entries_report_model_and_provider_entries() {
        let b = breaker();
        trip(&b, "gpt", 100);
        b.record("openai", "gpt", SERVER, 200);
        b.record("anthropic", "claude", AUTH, 300);
        assert_eq!(
            b.entries(400),
            vec![
                Entry {
                    provider: "anthropic".into(),
                    model: None,
                    reason: REASON_AUTH_ERROR,
                    since_ms: 300,
                    last_attempt_ms: 300,
                    clears_at_ms: 300 + AUTO_CLEAR_MS,
                    recent_failures: 1,
                },
                Entry {
                    provider: "openai".into(),
                    model: Some("gpt".into()),
                    reason: REASON_MODEL_FAILURES,
                    since_ms: 100,
                    last_attempt_ms: 200,
                    clears_at_ms: 200 + AUTO_CLEAR_MS,
                    recent_failures: 6,
                },
            ]
        );
        assert_eq!(b.entries(200 + AUTO_CLEAR_MS).len(), 1);
        assert!(b.entries(300 + AUTO_CLEAR_MS).is_empty());
    }

    #[test]
    fn windows_and_model_table_stay_bounded() {
        let b = breaker();
        trip(&b, "keep", 10);
        for i in 0..100 {
            b.record("openai", "keep", SERVER, 20 + i);
            b.record("openai", "keep", NETWORK, 20 + i);
        }
        for i in 0..(MAX_MODELS_PER_PROVIDER as u64 * 3) {
            b.record("openai", &format!("random-{i}"), RATE, 200 + i);
        }
        {
            let st = b.slots["openai"].lock();
            assert!(st.models.len() <= MAX_MODELS_PER_PROVIDER);
            assert!(st.network.len() <= NETWORK_FAILURES);
            assert!(st.models_down.len() <= MODELS_FOR_PROVIDER);
            assert!(
                st.models
                    .values()
                    .all(|m| m.failures.len() <= MODEL_FAILURES)
            );
        }
        // The model that is down was not evicted.
        assert_eq!(
            b.check("openai", "keep", 10_000).unwrap().reason,
            REASON_NETWORK_ERRORS
        );
        b.record("openai", "other", Outcome::Success, 10_001);
        assert_eq!(
            b.check("openai", "keep", 10_002).unwrap().scope,
            Scope::Model
        );
    }

    #[test]
    fn recovers_from_a_poisoned_lock() {
        let b = Arc::new(breaker());
        b.record("openai", "a", SERVER, 0);
        let b2 = Arc::clone(&b);
        let _ = std::thread::spawn(move || {
            let _guard = b2.slots["openai"].lock();
            panic!("poison");
        })
        .join();
        assert!(b.slots["openai"].state.is_poisoned());
        for t in 1..5 {
            b.record("openai", "a", SERVER, t);
        }
        assert!(b.check("openai", "a", 5).is_some());
    }

    #[test]
    fn many_threads() {
        let b = Arc::new(breaker());
        let threads: Vec<_> = (0..8u64)
            .map(|i| {
                let b = Arc::clone(&b);
                std::thread::spawn(move || {
                    let model = format!("m{i}");
                    let mut changes = Vec::new();
                    for n in 0..1_000u64 {
                        let t = 1_000 + n;
                        assert!(b.check("anthropic", &model, t).is_none());
                        b.record("anthropic", &model, Outcome::Success, t);
                        b.record("anthropic", &model, Outcome::Neutral, t);
                        changes.extend(b.record("openai", &model, SERVER, t));
                        let _ = b.check("openai", &model, t);
                        let _ = b.entries(t);
                    }
                    changes
                })
            })
            .collect();
        let changes: Vec<Change> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let downs = |want: fn(&Change) -> bool| changes.iter().filter(|c| want(c)).count();
        assert_eq!(downs(|c| matches!(c, Change::ModelDown { .. })), 8);
        assert_eq!(downs(|c| matches!(c, Change::ProviderDown { .. })), 1);
        assert_eq!(downs(|c| matches!(c, Change::Cleared { .. })), 0);
        assert_eq!(b.entries(3_000).len(), 9);
        assert!(!has_state(&b, "anthropic"));
    }
}
