//! What routing knows of providers from the calls themselves: the
//! availability breaker and each provider's latency to its first byte.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::breaker::{Breaker, Change, Outcome};

pub struct Health {
    pub breaker: Breaker,
    /// EWMA of the time to the response head, µs; 0 = never measured.
    latency: HashMap<String, AtomicU64>,
}

/// Weight of the newest sample, 1/8: a few slow calls move it, one does
/// not.
const EWMA_SHIFT: u32 = 3;

impl Health {
    pub fn new<'a>(providers: impl Iterator<Item = &'a str>) -> Self {
        let names: Vec<&str> = providers.collect();
        Self {
            breaker: Breaker::new(names.iter().copied()),
            latency: names
                .iter()
                .map(|p| (p.to_string(), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// One attempt's outcome: the breaker's transitions, and the latency of
    /// a provider that answered.
    pub fn record(
        &self,
        provider: &str,
        model: &str,
        outcome: Outcome,
        elapsed: Duration,
        now_ms: u64,
    ) -> Vec<Change> {
        if outcome == Outcome::Success
            && let Some(l) = self.latency.get(provider)
        {
            let sample = elapsed.as_micros().min(u64::MAX as u128) as u64;
            // A lost update under a race only drops one sample.
            let old = l.load(Ordering::Relaxed);
            let new = if old == 0 {
                sample.max(1)
            } else {
                old - (old >> EWMA_SHIFT) + (sample >> EWMA_SHIFT)
            };
            l.store(new.max(1), Ordering::Relaxed);
        }
        self.breaker.record(provider, model, outcome, now_ms)
    }

    /// The provider's EWMA latency in µs, 0 when never measured.
    pub fn latency_us(&self, provider: &str) -> u64 {
        self.latency
            .get(provider)
            .map_or(0, |l| l.load(Ordering::Relaxed))
    }
}

/// A breaker change, in the log and in `sluice_provider_available`.
/// `named(id)` says whether a model may be a label value (else `other`).
pub fn publish(change: &Change, named: &dyn Fn(&str) -> bool) {
    let set = |provider: &str, label: &str, v: i64| {
        crate::metrics::get()
            .provider_available
            .with_label_values(&[provider, label])
            .set(v);
    };
    // Only a provider-wide change writes `*`: a client's model named `*`
    // is just another model the operator did not name.
    let model_gauge = |provider: &str, model: &str, v: i64| {
        let named = named(&format!("{provider}:{model}"));
        set(provider, if named { model } else { "other" }, v);
    };
    match change {
        Change::ModelDown {
            provider,
            model,
            reason,
        } => {
            tracing::warn!(
                provider,
                model,
                reason,
                "model unavailable: routing around it"
            );
            model_gauge(provider, model, 0);
        }
        Change::ProviderDown { provider, reason } => {
            tracing::warn!(provider, reason, "provider unavailable: routing around it");
            set(provider, "*", 0);
        }
        Change::Cleared { provider, model } => {
            tracing::info!(
                provider,
                model = model.as_deref().unwrap_or("*"),
                "available again"
            );
            match model {
                Some(m) => model_gauge(provider, m, 1),
                None => set(provider, "*", 1),
            }
        }
    }
}
