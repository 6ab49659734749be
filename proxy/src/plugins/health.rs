//! A plugin's crash budget: too many failures within a window disable it
//! until it is reloaded.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use super::policy::CRASH_WINDOW;

pub struct Health {
    budget: u32,
    /// Failures counted since `window_start_ms`.
    failures: AtomicU32,
    window_start_ms: AtomicU64,
    disabled: AtomicBool,
    /// Only written on failure, so the lock is off the happy path.
    last_error: Mutex<Option<String>>,
    epoch: Instant,
}

impl Health {
    pub fn new(budget: u32) -> Self {
        Self {
            budget,
            failures: AtomicU32::new(0),
            window_start_ms: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
            last_error: Mutex::new(None),
            epoch: Instant::now(),
        }
    }

    #[inline]
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Count a failure; returns true when this one exhausted the budget.
    pub fn record_failure(&self, error: &str) -> bool {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_owned());
        let now = self.epoch.elapsed().as_millis() as u64;
        let start = self.window_start_ms.load(Ordering::Relaxed);
        let count = if now.saturating_sub(start) > CRASH_WINDOW.as_millis() as u64 {
            // A new window; racing resets only lose a count or two.
            self.window_start_ms.store(now, Ordering::Relaxed);
            self.failures.store(1, Ordering::Relaxed);
            1
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed) + 1
        };
        count >= self.budget && !self.disabled.swap(true, Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn disables_once_budget_spent() {
        let h = Health::new(3);
        assert!(!h.record_failure("a"));
        assert!(!h.record_failure("b"));
        assert!(h.record_failure("c"));
        assert!(h.is_disabled());
        assert!(!h.record_failure("d"), "reports the transition once");
        assert_eq!(h.last_error().as_deref(), Some("d"));
    }
}
