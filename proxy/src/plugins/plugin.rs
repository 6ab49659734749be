//! One loaded component bound by policy: its warm instance pool, limits,
//! crash budget and metrics.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use wasmtime::component::InstancePre;
use wasmtime::{Store, StoreLimitsBuilder, Trap};

use super::PluginError;
use super::bindings::{PluginInfo, PluginKind, evaluator, redactor, router, translator};
use super::engine::{EPOCH_TICK, PluginEngine};
use super::health::Health;
use super::policy::Binding;
use super::state::HostState;
use crate::metrics::{self, PluginMetrics};

/// What is known about a component once it compiled and answered
/// `describe()`. Shared between plugins that bind the same file.
pub struct PluginMeta {
    pub file: PathBuf,
    pub sha256: String,
    pub info: PluginInfo,
    pub(super) pre: KindPre,
}

/// The pre-linked component for its world.
#[derive(Clone)]
pub(super) enum KindPre {
    Router(router::RouterPre<HostState>),
    Translator(translator::TranslatorPre<HostState>),
    Redactor(redactor::RedactorPre<HostState>),
    Evaluator(evaluator::EvaluatorPre<HostState>),
}

/// An instantiated component's exports.
pub(super) enum Exports {
    Router(router::Router),
    Translator(translator::Translator),
    Redactor(redactor::Redactor),
    Evaluator(evaluator::Evaluator),
}

/// A live instance with its store. Dropped, never reused, once a call on it
/// fails: a trap may leave guest state half-updated.
pub struct Warm {
    pub(super) store: Store<HostState>,
    pub(super) exports: Exports,
}

impl KindPre {
    /// Which world `pre` exports; the first that type-checks.
    pub(super) fn detect(pre: InstancePre<HostState>) -> Result<Self, PluginError> {
        if let Ok(p) = router::RouterPre::new(pre.clone()) {
            return Ok(Self::Router(p));
        }
        if let Ok(p) = translator::TranslatorPre::new(pre.clone()) {
            return Ok(Self::Translator(p));
        }
        if let Ok(p) = redactor::RedactorPre::new(pre.clone()) {
            return Ok(Self::Redactor(p));
        }
        if let Ok(p) = evaluator::EvaluatorPre::new(pre) {
            return Ok(Self::Evaluator(p));
        }
        Err(PluginError::Invalid(
            "exports none of the sluice:plugin@0.1.0 worlds (router, translator, redactor, \
             evaluator)"
                .into(),
        ))
    }

    pub(super) fn kind(&self) -> PluginKind {
        match self {
            Self::Router(_) => PluginKind::Router,
            Self::Translator(_) => PluginKind::Translator,
            Self::Redactor(_) => PluginKind::Redactor,
            Self::Evaluator(_) => PluginKind::Evaluator,
        }
    }

    pub(super) fn instantiate(
        &self,
        name: Arc<str>,
        binding: &Binding,
    ) -> Result<Warm, PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(binding.memory_bytes)
            .instances(16)
            .tables(16)
            .memories(8)
            .trap_on_grow_failure(true)
            .build();
        let engine = match self {
            Self::Router(p) => p.engine(),
            Self::Translator(p) => p.engine(),
            Self::Redactor(p) => p.engine(),
            Self::Evaluator(p) => p.engine(),
        };
        let mut store = Store::new(engine, HostState::new(name, binding.config.clone(), limits));
        store.limiter(|s| &mut s.limits);
        // Instantiation runs the guest's start code: bound it like a call.
        store.set_epoch_deadline(deadline_ticks(binding));
        let exports = match self {
            Self::Router(p) => p.instantiate(&mut store).map(Exports::Router),
            Self::Translator(p) => p.instantiate(&mut store).map(Exports::Translator),
            Self::Redactor(p) => p.instantiate(&mut store).map(Exports::Redactor),
            Self::Evaluator(p) => p.instantiate(&mut store).map(Exports::Evaluator),
        }
        .map_err(|e| PluginError::Instantiate(format!("{e:#}")))?;
        Ok(Warm { store, exports })
    }
}

fn deadline_ticks(binding: &Binding) -> u64 {
    // +1: the ticker may advance right after we read the epoch.
    (binding.deadline.as_micros() / EPOCH_TICK.as_micros()) as u64 + 1
}

impl Warm {
    pub(super) fn describe(&mut self) -> wasmtime::Result<PluginInfo> {
        match &self.exports {
            Exports::Router(b) => b.call_describe(&mut self.store),
            Exports::Translator(b) => b.call_describe(&mut self.store),
            Exports::Redactor(b) => b.call_describe(&mut self.store),
            Exports::Evaluator(b) => b.call_describe(&mut self.store),
        }
    }
}

/// A component bound by policy, ready to call from the request path.
pub struct Plugin {
    pub meta: Arc<PluginMeta>,
    pub binding: Binding,
    name: Arc<str>,
    pool: ArrayQueue<Warm>,
    pub(super) health: Health,
    metrics: PluginMetrics,
}

impl Plugin {
    pub(super) fn new(engine: &PluginEngine, meta: Arc<PluginMeta>, binding: Binding) -> Self {
        let name: Arc<str> = Arc::from(meta.info.name.as_str());
        Self {
            pool: ArrayQueue::new(engine.pool_size()),
            health: Health::new(binding.crash_budget),
            metrics: metrics::get().plugin(&name),
            name,
            meta,
            binding,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> PluginKind {
        self.meta.info.kind
    }

    /// Order among plugins of its kind: the binding's, else the plugin's.
    pub fn order(&self) -> i32 {
        self.binding.order.unwrap_or(self.meta.info.default_order)
    }

    pub fn is_disabled(&self) -> bool {
        self.health.is_disabled()
    }

    pub fn last_error(&self) -> Option<String> {
        self.health.last_error()
    }

    /// Create one fresh instance and discard it: what a call pays on top of
    /// a warm one when the pool is empty. For benchmarks and diagnostics.
    pub fn instantiate_cold(&self) -> Result<(), PluginError> {
        self.meta
            .pre
            .instantiate(self.name.clone(), &self.binding)
            .map(drop)
    }

    /// Take a warm instance, or make one when the pool is empty.
    pub(super) fn checkout(&self) -> Result<Warm, PluginError> {
        if self.health.is_disabled() {
            self.metrics.disabled.inc();
            return Err(PluginError::Disabled);
        }
        match self.pool.pop() {
            Some(w) => Ok(w),
            None => self
                .meta
                .pre
                .instantiate(self.name.clone(), &self.binding)
                .inspect_err(|e| self.failed(e)),
        }
    }

    /// Give `warm` a fresh deadline for work outside `call_on` (destructors).
    pub(super) fn arm_deadline(&self, warm: &mut Warm) {
        warm.store.set_epoch_deadline(deadline_ticks(&self.binding));
    }

    /// Return a healthy instance; beyond the pool's capacity it is dropped.
    pub(super) fn checkin(&self, warm: Warm) {
        let _ = self.pool.push(warm);
    }

    /// Run `f` on `warm` under the binding's deadline, recording the outcome.
    /// On error the caller must drop `warm`.
    pub(super) fn call_on<R>(
        &self,
        warm: &mut Warm,
        f: impl FnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let started = Instant::now();
        warm.store.set_epoch_deadline(deadline_ticks(&self.binding));
        let result = f(warm);
        self.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(v) => {
                self.metrics.ok.inc();
                Ok(v)
            }
            Err(e) => {
                let err = match e.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) => {
                        PluginError::Timeout(self.binding.deadline.as_millis() as u64)
                    }
                    _ => PluginError::Trap(format!("{e:#}")),
                };
                self.failed(&err);
                Err(err)
            }
        }
    }

    /// One call on a pooled instance.
    pub(super) fn invoke<R>(
        &self,
        f: impl FnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let mut warm = self.checkout()?;
        let r = self.call_on(&mut warm, f)?;
        self.checkin(warm);
        Ok(r)
    }

    fn failed(&self, err: &PluginError) {
        match err {
            PluginError::Timeout(_) => self.metrics.timeout.inc(),
            _ => self.metrics.error.inc(),
        }
        tracing::warn!(plugin = %self.name, fail_mode = ?self.binding.fail_mode, "plugin failed: {err}");
        if self.health.record_failure(&err.to_string()) {
            tracing::error!(
                plugin = %self.name,
                budget = self.binding.crash_budget,
                "plugin disabled: crash budget spent; it stays off until its file or policy changes"
            );
        }
    }
}
