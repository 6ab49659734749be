//! A plugin's circuit breaker.
//!
//! Closed: calls run; failures are counted in a window. The breaker opens
//! when the window holds at least `crash_budget` failures *and* failures are
//! at least half of its calls: a plugin that fails for everyone is switched
//! off quickly, while one client's poison requests cannot outvote the
//! healthy traffic of everyone else. Open: calls are refused (the binding's
//! fail mode decides what the request gets) until the cooldown ends.
//! Half-open: one probe call runs; success closes the breaker, failure
//! opens it again with twice the cooldown (up to [`MAX_COOLDOWN`]).
//!
//! Failures the input is to blame for (see `limits`) and pool exhaustion
//! are never recorded here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Longest a breaker stays open before its next probe.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Whether a call may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Run,
    /// This call is the half-open probe: report its outcome.
    Probe,
    Refuse,
}

pub struct Health {
    budget: u32,
    base_cooldown: Duration,
    /// Mirrors `state != Closed`, so the happy path reads one atomic.
    tripped: AtomicBool,
    /// The counting window, lock-free: a successful call only adds.
    epoch: Instant,
    window_start_ms: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    /// State transitions and the last error; taken on failures only.
    inner: Mutex<Inner>,
}

struct Inner {
    state: BreakerState,
    open_until: Instant,
    cooldown: Duration,
    probing: bool,
    trips: u32,
    last_error: Option<String>,
}

/// A breaker's state, for `/admin/plugins`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthReport {
    pub state: &'static str,
    pub trips: u32,
    /// Seconds until the next probe, while open.
    pub retry_in_seconds: Option<u64>,
    pub failures_in_window: u32,
    pub calls_in_window: u32,
}

impl Health {
    pub fn new(budget: u32, cooldown: Duration) -> Self {
        let now = Instant::now();
        Self {
            budget: budget.max(1),
            base_cooldown: cooldown,
            tripped: AtomicBool::new(false),
            epoch: now,
            window_start_ms: AtomicU64::new(0),
            calls: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                open_until: now,
                cooldown,
                probing: false,
                trips: 0,
                last_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask before a call.
    #[inline]
    pub fn admit(&self) -> Admit {
        if !self.tripped.load(Ordering::Acquire) {
            return Admit::Run;
        }
        self.admit_slow(Instant::now())
    }

    fn admit_slow(&self, now: Instant) -> Admit {
        let mut s = self.lock();
        match s.state {
            BreakerState::Closed => Admit::Run,
            BreakerState::Open if now >= s.open_until => {
                s.state = BreakerState::HalfOpen;
                s.probing = true;
                Admit::Probe
            }
            BreakerState::HalfOpen if !s.probing => {
                s.probing = true;
                Admit::Probe
            }
            BreakerState::Open | BreakerState::HalfOpen => Admit::Refuse,
        }
    }

    /// A call the breaker admitted succeeded.
    pub fn record_success(&self, admit: Admit) {
        if admit == Admit::Probe {
            let mut s = self.lock();
            s.state = BreakerState::Closed;
            s.probing = false;
            s.cooldown = self.base_cooldown;
            self.reset_window(self.now_ms());
            self.tripped.store(false, Ordering::Release);
            return;
        }
        self.roll_window();
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A call the breaker admitted failed by the plugin's fault. Returns
    /// true when this failure opened the breaker.
    pub fn record_failure(&self, admit: Admit, error: &str) -> bool {
        let now = Instant::now();
        let mut s = self.lock();
        s.last_error = Some(error.to_owned());
        if admit == Admit::Probe {
            s.cooldown = (s.cooldown * 2).min(MAX_COOLDOWN);
            self.open(&mut s, now);
            return true;
        }
        self.roll_window();
        let calls = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if s.state == BreakerState::Closed && failures >= self.budget && 2 * failures >= calls {
            self.open(&mut s, now);
            return true;
        }
        false
    }

    /// A probe that ended without a verdict (the client went away, the
    /// input was to blame): let the next call probe instead.
    pub fn release_probe(&self, admit: Admit) {
        if admit == Admit::Probe {
            self.lock().probing = false;
        }
    }

    fn open(&self, s: &mut Inner, now: Instant) {
        s.state = BreakerState::Open;
        s.probing = false;
        s.open_until = now + s.cooldown;
        s.trips += 1;
        self.tripped.store(true, Ordering::Release);
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Start a new window once the current one is over. Racing rolls only
    /// lose a count or two.
    fn roll_window(&self) {
        let now = self.now_ms();
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now.saturating_sub(start) > WINDOW.as_millis() as u64
            && self
                .window_start_ms
                .compare_exchange(start, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.calls.store(0, Ordering::Relaxed);
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    fn reset_window(&self, now_ms: u64) {
        self.window_start_ms.store(now_ms, Ordering::Relaxed);
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
    }

    pub fn is_open(&self) -> bool {
        self.tripped.load(Ordering::Acquire) && self.lock().state == BreakerState::Open
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Seconds a refused caller should wait before retrying.
    pub fn retry_after_seconds(&self) -> u64 {
        let s = self.lock();
        s.open_until
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1)
    }

    pub fn report(&self) -> HealthReport {
        let s = self.lock();
        let now = Instant::now();
        HealthReport {
            state: s.state.as_str(),
            trips: s.trips,
            retry_in_seconds: (s.state == BreakerState::Open)
                .then(|| s.open_until.saturating_duration_since(now).as_secs()),
            failures_in_window: self.failures.load(Ordering::Relaxed),
            calls_in_window: self.calls.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn opens_when_failures_dominate_then_probes() {
        let h = Health::new(3, Duration::from_millis(0));
        assert_eq!(h.admit(), Admit::Run);
        assert!(!h.record_failure(Admit::Run, "a"));
        assert!(!h.record_failure(Admit::Run, "b"));
        assert!(h.record_failure(Admit::Run, "c"));
        assert_eq!(h.report().state, "open");
        // Cooldown 0: the next call is the probe, the one after waits.
        assert_eq!(h.admit(), Admit::Probe);
        assert_eq!(h.admit(), Admit::Refuse);
        h.record_success(Admit::Probe);
        assert_eq!(h.admit(), Admit::Run);
        assert_eq!(h.report().state, "closed");
        assert_eq!(h.last_error().as_deref(), Some("c"));
    }

    #[test]
    fn a_minority_of_failures_never_opens_it() {
        let h = Health::new(3, Duration::from_secs(30));
        for i in 0..100 {
            h.record_success(Admit::Run);
            if i % 3 == 0 {
                assert!(!h.record_failure(Admit::Run, "poison"));
            }
        }
        assert_eq!(h.admit(), Admit::Run);
    }

    #[test]
    fn a_failed_probe_doubles_the_cooldown() {
        let h = Health::new(1, Duration::from_secs(10));
        assert!(h.record_failure(Admit::Run, "x"));
        assert_eq!(h.admit(), Admit::Refuse);
        assert!(h.retry_after_seconds() >= 9);
        // Force the probe by expiring the cooldown.
        h.lock().open_until = Instant::now();
        assert_eq!(h.admit(), Admit::Probe);
        assert!(h.record_failure(Admit::Probe, "y"));
        assert!(h.retry_after_seconds() >= 19, "{}", h.retry_after_seconds());
        assert_eq!(h.report().trips, 2);
    }

    #[test]
    fn an_abandoned_probe_lets_another_call_probe() {
        let h = Health::new(1, Duration::from_millis(0));
        h.record_failure(Admit::Run, "x");
        assert_eq!(h.admit(), Admit::Probe);
        h.release_probe(Admit::Probe);
        assert_eq!(h.admit(), Admit::Probe);
    }
}
