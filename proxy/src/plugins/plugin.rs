//! One loaded component bound by policy: its warm instance pool, call
//! budgets, breaker and metrics. The kind-specific calls live in `router`,
//! `translator`, `redactor` and `evaluator`; they all go through
//! [`Plugin::begin`] and [`Call::settle`] (or, for streams, [`Plugin::step`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_queue::ArrayQueue;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::InstancePre;
use wasmtime::{Store, Trap};

use super::PluginError;
use super::bindings::{PluginInfo, PluginKind, evaluator, redactor, router, translator};
use super::engine::PluginEngine;
use super::health::{Admit, Health, HealthReport};
use super::limits::{CallBudget, CallClock, MemoryCapReached, WallLimitReached, metered};
use super::output::{GuestLog, escape_capped};

/// How much of a failure's detail (a guest backtrace) the log and
/// `/admin/plugins` keep, escaped: function names in it are the guest's.
const LOGGED_ERROR_BYTES: usize = 4096;
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
/// failed or was abandoned midway: guest state may be half-updated.
pub struct Warm {
    pub(super) store: Store<HostState>,
    pub(super) exports: Exports,
    /// The store's run-time clock, outside the store so a call can be
    /// metered while it borrows the store.
    pub(super) clock: Arc<CallClock>,
    /// Its share of the engine's instance budget; `None` for validation
    /// instances, which come out of the reserve.
    _permit: Option<OwnedSemaphorePermit>,
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
            "exports none of the sluice:plugin@0.2.0 worlds (router, translator, redactor, \
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

    /// A fresh instance under `binding`'s base limits. Instantiation runs
    /// the guest's start code, so it is bounded like a call.
    pub(super) async fn instantiate(
        &self,
        log: Arc<GuestLog>,
        binding: &Binding,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Warm, PluginError> {
        let engine = match self {
            Self::Router(p) => p.engine(),
            Self::Translator(p) => p.engine(),
            Self::Redactor(p) => p.engine(),
            Self::Evaluator(p) => p.engine(),
        };
        let mut store = Store::new(
            engine,
            HostState::new(log, binding.config.clone(), binding.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| Ok(ctx.data().limiter.clock.on_tick()));
        let clock = store.data().limiter.clock.clone();
        let budget = binding.budget(0);
        clock.arm(budget.deadline);
        store.set_epoch_deadline(1);
        let exports = match self {
            Self::Router(p) => metered(&clock, &budget, p.instantiate_async(&mut store))
                .await
                .map(Exports::Router),
            Self::Translator(p) => metered(&clock, &budget, p.instantiate_async(&mut store))
                .await
                .map(Exports::Translator),
            Self::Redactor(p) => metered(&clock, &budget, p.instantiate_async(&mut store))
                .await
                .map(Exports::Redactor),
            Self::Evaluator(p) => metered(&clock, &budget, p.instantiate_async(&mut store))
                .await
                .map(Exports::Evaluator),
        }
        .map_err(|e| {
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                .is_some()
            {
                PluginError::Busy
            } else {
                PluginError::Instantiate(format!("{e:#}"))
            }
        })?;
        Ok(Warm {
            store,
            exports,
            clock,
            _permit: permit,
        })
    }
}

impl Warm {
    pub(super) async fn describe(&mut self, binding: &Binding) -> wasmtime::Result<PluginInfo> {
        let budget = binding.budget(0);
        self.arm(&budget);
        let clock = &self.clock;
        match &self.exports {
            Exports::Router(b) => metered(clock, &budget, b.call_describe(&mut self.store)).await,
            Exports::Translator(b) => {
                metered(clock, &budget, b.call_describe(&mut self.store)).await
            }
            Exports::Redactor(b) => metered(clock, &budget, b.call_describe(&mut self.store)).await,
            Exports::Evaluator(b) => {
                metered(clock, &budget, b.call_describe(&mut self.store)).await
            }
        }
    }

    /// Give the next call `budget`.
    fn arm(&mut self, budget: &CallBudget) {
        let limiter = &mut self.store.data_mut().limiter;
        limiter.memory_cap = budget.memory_bytes.max(limiter.memory_used);
        self.clock.arm(budget.deadline);
        self.store.set_epoch_deadline(1);
    }
}

/// A component bound by policy, ready to call from the request path.
pub struct Plugin {
    pub meta: Arc<PluginMeta>,
    pub binding: Binding,
    name: Arc<str>,
    engine: PluginEngine,
    pool: ArrayQueue<Warm>,
    health: Health,
    log: Arc<GuestLog>,
    metrics: PluginMetrics,
}

/// One admitted call: the instance it runs on and what it may use. Dropping
/// it unsettled (the request was abandoned) discards the instance and
/// frees a half-open probe for the next caller.
pub(super) struct Call<'p> {
    plugin: &'p Plugin,
    admit: Admit,
    pub(super) budget: CallBudget,
    started: Instant,
    pub(super) warm: Option<Warm>,
}

impl Plugin {
    pub(super) fn new(engine: &PluginEngine, meta: Arc<PluginMeta>, binding: Binding) -> Self {
        let name: Arc<str> = Arc::from(meta.info.name.as_str());
        Self {
            pool: ArrayQueue::new(engine.pool_size()),
            health: Health::new(binding.crash_budget, binding.cooldown),
            metrics: metrics::get().plugin(&name),
            log: GuestLog::new(name.clone()),
            engine: engine.clone(),
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

    /// Whether the breaker refuses calls right now.
    pub fn is_open(&self) -> bool {
        self.health.is_open()
    }

    pub fn health(&self) -> HealthReport {
        self.health.report()
    }

    pub fn last_error(&self) -> Option<String> {
        self.health.last_error()
    }

    /// Create one fresh instance and discard it: what a call pays on top of
    /// a warm one when the pool is empty. For benchmarks and diagnostics.
    pub async fn instantiate_cold(&self) -> Result<(), PluginError> {
        self.fresh(None).await.map(drop)
    }

    /// A new instance under this plugin's binding, holding `permit`.
    async fn fresh(&self, permit: Option<OwnedSemaphorePermit>) -> Result<Warm, PluginError> {
        self.meta
            .pre
            .instantiate(self.log.clone(), &self.binding, permit)
            .await
    }

    /// Put one instance in the pool, so the first call after a load does not
    /// pay instantiation (milliseconds for Python and JavaScript guests,
    /// more than a routing slot's budget). The loader calls it, off the
    /// request path; skipped when every instance permit is taken.
    pub(super) async fn prewarm(&self) {
        let Some(permit) = self.engine.try_instance_permit() else {
            return;
        };
        match self.fresh(Some(permit)).await {
            Ok(warm) => self.checkin(warm),
            Err(e) => tracing::debug!(plugin = %self.name, "no warm instance at load: {e}"),
        }
    }

    /// Admit a call on `input_bytes` of input and give it an instance.
    pub(super) async fn begin(&self, input_bytes: usize) -> Result<Call<'_>, PluginError> {
        let admit = self.health.admit();
        if admit == Admit::Refuse {
            self.metrics.disabled.inc();
            return Err(PluginError::Disabled {
                retry_after: self.health.retry_after_seconds(),
            });
        }
        let mut call = Call {
            plugin: self,
            admit,
            budget: self.binding.budget(input_bytes),
            started: Instant::now(),
            warm: None,
        };
        let mut warm = match self.pool.pop() {
            Some(w) => w,
            None => {
                let permit = self.engine.instance_permit().await.inspect_err(|_| {
                    self.metrics.busy.inc();
                })?;
                match self.fresh(Some(permit)).await {
                    Ok(w) => w,
                    Err(PluginError::Busy) => {
                        self.metrics.busy.inc();
                        return Err(PluginError::Busy);
                    }
                    Err(e) => return Err(call.fail(e)),
                }
            }
        };
        warm.arm(&call.budget);
        call.warm = Some(warm);
        Ok(call)
    }

    /// Run one more call on an instance a stream holds (already admitted):
    /// arm it for `input_bytes`, and after the call record its outcome.
    pub(super) fn step(&self, warm: &mut Warm, input_bytes: usize) -> Call<'_> {
        let budget = self.binding.budget(input_bytes);
        warm.arm(&budget);
        Call {
            plugin: self,
            admit: Admit::Run,
            budget,
            started: Instant::now(),
            warm: None,
        }
    }

    /// Return a healthy instance. Beyond the pool's capacity, or grown past
    /// its binding's base memory for one large input, it is dropped.
    fn checkin(&self, warm: Warm) {
        if warm.store.data().limiter.memory_used <= self.binding.memory_bytes {
            let _ = self.pool.push(warm);
        }
    }
}

/// A guest resource (a stream translator or redactor) and the instance it
/// lives on, held for the life of one stream. Dropped midway (client gone,
/// upstream failed), the instance goes with it.
pub(super) struct Held {
    pub(super) plugin: Arc<Plugin>,
    /// `None` once a call failed: the instance is dropped, never reused.
    pub(super) warm: Option<Warm>,
    pub(super) resource: wasmtime::component::ResourceAny,
}

impl Held {
    /// The stream ended well: drop the guest resource and give the
    /// instance back to the pool.
    pub(super) async fn close(&mut self) {
        if let Some(mut warm) = self.warm.take() {
            // The guest's destructor runs here: bounded like any call.
            let budget = self.plugin.binding.budget(0);
            warm.arm(&budget);
            let drop = self.resource.resource_drop_async(&mut warm.store);
            if metered(&warm.clock, &budget, drop).await.is_ok() {
                self.plugin.checkin(warm);
            }
        }
    }
}

impl Call<'_> {
    pub(super) fn warm(&mut self) -> &mut Warm {
        self.warm.as_mut().expect("a begun call holds an instance")
    }

    /// Record the outcome of the guest call `result`: on success the
    /// instance goes back to the pool (unless `keep` hands it to a stream);
    /// on failure it is dropped and the failure blamed on the input or
    /// counted against the plugin.
    pub(super) fn settle<R>(mut self, result: wasmtime::Result<R>) -> Result<R, PluginError> {
        self.observe();
        match result {
            Ok(v) => {
                self.succeeded();
                if let Some(w) = self.warm.take() {
                    self.plugin.checkin(w);
                }
                Ok(v)
            }
            Err(e) => {
                self.warm = None;
                let err = self.classify(&e);
                Err(self.fail(err))
            }
        }
    }

    /// Like [`settle`](Self::settle), but hand the instance back instead of
    /// pooling it (a stream keeps it for its next call).
    pub(super) fn settle_keep<R>(
        mut self,
        result: wasmtime::Result<R>,
    ) -> Result<(R, Warm), PluginError> {
        self.observe();
        match result {
            Ok(v) => {
                self.succeeded();
                let w = self.warm.take().expect("a begun call holds an instance");
                Ok((v, w))
            }
            Err(e) => {
                self.warm = None;
                let err = self.classify(&e);
                Err(self.fail(err))
            }
        }
    }

    /// Outcome of a [`Plugin::step`] call on a stream's instance; on error
    /// the caller must drop that instance.
    pub(super) fn settle_step<R>(mut self, result: wasmtime::Result<R>) -> Result<R, PluginError> {
        self.observe();
        match result {
            Ok(v) => {
                self.succeeded();
                Ok(v)
            }
            Err(e) => {
                let err = self.classify(&e);
                Err(self.fail(err))
            }
        }
    }

    fn observe(&self) {
        self.plugin
            .metrics
            .duration
            .observe(self.started.elapsed().as_secs_f64());
    }

    fn succeeded(&mut self) {
        self.plugin.metrics.ok.inc();
        self.plugin.health.record_success(self.admit);
        self.admit = Admit::Run;
    }

    fn classify(&self, e: &wasmtime::Error) -> PluginError {
        let out_of_time = matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
            || e.downcast_ref::<WallLimitReached>().is_some();
        let limit = if out_of_time {
            Some(format!(
                "exceeded its {} ms deadline",
                self.budget.deadline.as_millis()
            ))
        } else {
            e.downcast_ref::<MemoryCapReached>().map(|m| m.to_string())
        };
        match limit {
            Some(detail) if self.budget.blames_input() => PluginError::InputTooLarge {
                input_bytes: self.budget.input_bytes,
                detail,
            },
            Some(_) if e.downcast_ref::<MemoryCapReached>().is_some() => {
                PluginError::Trap(format!("{e:#}"))
            }
            Some(_) => PluginError::Timeout(self.budget.deadline.as_millis() as u64),
            None => PluginError::Trap(format!("{e:#}")),
        }
    }

    /// Count `err` against the plugin unless the input is to blame, log it
    /// in full (clients only get a short message), and return it.
    fn fail(&mut self, err: PluginError) -> PluginError {
        let p = self.plugin;
        match &err {
            PluginError::InputTooLarge { .. } => {
                p.metrics.rejected_input.inc();
                p.health.release_probe(self.admit);
                tracing::warn!(plugin = %p.name, "plugin call ran out on a large input, blamed on the input: {}", escape_capped(err.to_string().as_bytes(), LOGGED_ERROR_BYTES));
            }
            _ => {
                match err {
                    PluginError::Timeout(_) => p.metrics.timeout.inc(),
                    _ => p.metrics.error.inc(),
                }
                let detail = escape_capped(err.to_string().as_bytes(), LOGGED_ERROR_BYTES);
                tracing::warn!(plugin = %p.name, fail_mode = ?p.binding.fail_mode, "plugin failed: {detail}");
                if p.health.record_failure(self.admit, &detail) {
                    tracing::error!(
                        plugin = %p.name,
                        retry_in_s = p.health.retry_after_seconds(),
                        "plugin breaker opened: calls are refused until a probe succeeds"
                    );
                }
            }
        }
        self.admit = Admit::Run;
        err
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        // Still holding the probe: the call never settled.
        self.plugin.health.release_probe(self.admit);
    }
}
