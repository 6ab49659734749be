//! All serving state in one immutable [`Snapshot`] behind an `ArcSwap`.
//!
//! A request loads the current snapshot once at intake and keeps that `Arc`
//! until it ends, so a reload never changes the rules under a request or a
//! stream in flight; old plugins are dropped with the last request using
//! them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::budget::{BudgetPolicy, Budgets, Ledger};
use crate::config::Config;
use crate::events::EventLog;
use crate::keys::Keys;
use crate::metrics;
use crate::plugins::{PluginEngine, PluginSet, Policies, load_plugins};
use crate::pricing::Pricing;
use crate::providers::Providers;
use crate::ratelimit::RateLimiter;
use crate::routing::{Health, PatternStore, RoutingPolicy};

pub mod watcher;

pub struct Snapshot {
    pub generation: u64,
    pub providers: Arc<Providers>,
    pub plugins: PluginSet,
    pub policies: Policies,
    pub pricing: Arc<Pricing>,
    pub budgets: Arc<BudgetPolicy>,
    pub routing: Arc<RoutingPolicy>,
    pub loaded_at: SystemTime,
}

impl Snapshot {
    /// Whether the operator named a model (priced, or in the routing
    /// registry): only those are metric labels, and only their failures
    /// count towards a provider-wide outage.
    pub fn names_model(&self, id: &str) -> bool {
        self.pricing.price(id).is_some() || self.routing.models.contains_key(id)
    }
}

/// The gateway's shared state: configuration, the plugin engine and the
/// current snapshot.
pub struct Gateway {
    pub config: Arc<Config>,
    /// Versioning of Sluice's own routes, resolved from `[api]`.
    pub versions: crate::versioning::Versions,
    pub engine: PluginEngine,
    pub keys: Keys,
    pub events: EventLog,
    pub budgets: Box<dyn Budgets>,
    pub limiter: Option<RateLimiter>,
    /// The availability breaker and provider latencies: they outlive
    /// reloads, as providers do.
    pub health: Health,
    pub patterns: PatternStore,
    /// The queue of answers to score, off the request path.
    pub evaluation: crate::evaluation::Evaluation,
    pub clock: crate::clock::Clock,
    /// The admin API's bearer token.
    pub admin_token: String,
    current: ArcSwap<Snapshot>,
    /// Reloads run one at a time, each building on the last.
    reload_lock: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    last_reload: ArcSwap<ReloadReport>,
}

/// What a reload did, for `POST /admin/reload`, `/admin/plugins` and logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadReport {
    pub generation: u64,
    pub cause: String,
    pub ok: bool,
    pub errors: Vec<String>,
    pub plugins: usize,
    pub policy_version: String,
}

impl Gateway {
    /// Load providers, policies and plugins; fails only on configuration
    /// errors. Plugin files that fail to load are reported, not fatal.
    pub fn new(
        config: Config,
        engine: PluginEngine,
        admin_token: String,
    ) -> Result<Arc<Self>, String> {
        let providers = Arc::new(Providers::from_config(&config.providers)?);
        let policies = Policies::load(&config.plugins.policies_dir)?;
        let pricing = Arc::new(Pricing::load(&config.plugins.policies_dir)?);
        let budget_policy = Arc::new(BudgetPolicy::load(&config.plugins.policies_dir)?);
        let routing = Arc::new(RoutingPolicy::load(&config.plugins.policies_dir, &|p| {
            providers.get(p).is_some()
        })?);
        let health = Health::new(providers.names());
        let patterns = PatternStore::new(routing.pattern.clone());
        let data = &config.data.dir;
        let keys = Keys::open(&data.join("keys.redb"))?;
        let (events, restored) = EventLog::open(&data.join("events.redb"))?;
        let budgets = Box::new(Ledger::restore(
            &restored.spend,
            &restored.holds,
            crate::clock::now_ms(),
        ));
        let plugins = load_plugins(&engine, &config.plugins.dir, &policies, None);
        let report = report(1, "startup", &plugins, &policies, Vec::new());
        log_report(&report);
        let snapshot = Snapshot {
            generation: 1,
            providers,
            plugins,
            policies,
            pricing,
            budgets: budget_policy,
            routing,
            loaded_at: SystemTime::now(),
        };
        metrics::get()
            .plugins_loaded
            .set(snapshot.plugins.all.len() as i64);
        let versions = crate::versioning::Versions::from_config(&config.api)?;
        config.evaluation.validate()?;
        let evaluation = crate::evaluation::Evaluation::new(config.evaluation.clone());
        Ok(Arc::new(Self {
            versions,
            limiter: RateLimiter::new(&config.rate_limits),
            config: Arc::new(config),
            engine,
            keys,
            events,
            budgets,
            health,
            patterns,
            evaluation,
            clock: crate::clock::Clock::default(),
            admin_token,
            current: ArcSwap::from_pointee(snapshot),
            reload_lock: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(1),
            last_reload: ArcSwap::from_pointee(report),
        }))
    }

    /// The snapshot to serve one request with.
    #[inline]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn last_reload(&self) -> Arc<ReloadReport> {
        self.last_reload.load_full()
    }

    /// Re-read policies and plugins, validate, and swap the result in.
    /// Compiling happens on a blocking thread, never on a request worker.
    pub async fn reload(self: &Arc<Self>, cause: &str) -> Arc<ReloadReport> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let this = self.clone();
        let cause = cause.to_owned();
        let built = tokio::task::spawn_blocking(move || this.rebuild(&cause)).await;
        let report = match built {
            Ok(report) => report,
            Err(e) => ReloadReport {
                cause: "reload task".into(),
                errors: vec![format!("reload task failed: {e}")],
                ..ReloadReport::default()
            },
        };
        metrics::get()
            .plugin_reloads
            .with_label_values(&[if report.ok { "ok" } else { "error" }])
            .inc();
        let report = Arc::new(report);
        self.last_reload.store(report.clone());
        report
    }

    fn rebuild(&self, cause: &str) -> ReloadReport {
        let previous = self.snapshot();
        let mut errors = Vec::new();
        let policies = match Policies::load(&self.config.plugins.policies_dir) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!("policies rejected, last good ones kept: {e}"));
                previous.policies.clone()
            }
        };
        let dir = &self.config.plugins.policies_dir;
        let pricing = match Pricing::load(dir) {
            Ok(p) => Arc::new(p),
            Err(e) => {
                errors.push(format!("pricing rejected, last good table kept: {e}"));
                previous.pricing.clone()
            }
        };
        let budgets = match BudgetPolicy::load(dir) {
            // Caps end only by an explicit edit: a vanished file keeps them.
            Ok(_) if previous.budgets.any_caps() && !dir.join(crate::budget::FILE).exists() => {
                errors.push(
                    "budgets.toml was removed: its caps are kept; write an empty budgets.toml \
                     to remove them"
                        .into(),
                );
                previous.budgets.clone()
            }
            Ok(b) => {
                if previous.budgets.any_caps() && !b.any_caps() {
                    tracing::warn!("budgets.toml now sets no caps: only key caps apply");
                }
                Arc::new(b)
            }
            Err(e) => {
                errors.push(format!("budgets rejected, last good caps kept: {e}"));
                previous.budgets.clone()
            }
        };
        let routing = match RoutingPolicy::load(dir, &|p| previous.providers.get(p).is_some()) {
            Ok(r) => {
                self.patterns.set_config(r.pattern.clone());
                Arc::new(r)
            }
            Err(e) => {
                let kept = previous.routing.version.clone();
                errors.push(format!("routing policy rejected, version {kept} kept: {e}"));
                self.events
                    .emit_blocking(crate::events::EventBody::RoutingPolicyInvalid {
                        error: e,
                        kept_version: kept,
                    });
                previous.routing.clone()
            }
        };
        let plugins = load_plugins(
            &self.engine,
            &self.config.plugins.dir,
            &policies,
            Some(&previous.plugins),
        );
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let report = report(generation, cause, &plugins, &policies, errors);
        log_report(&report);
        metrics::get().plugins_loaded.set(plugins.all.len() as i64);
        self.current.store(Arc::new(Snapshot {
            generation,
            providers: previous.providers.clone(),
            plugins,
            policies,
            pricing,
            budgets,
            routing,
            loaded_at: SystemTime::now(),
        }));
        report
    }
}

fn report(
    generation: u64,
    cause: &str,
    plugins: &PluginSet,
    policies: &Policies,
    mut errors: Vec<String>,
) -> ReloadReport {
    errors.extend(
        plugins
            .errors()
            .map(|f| format!("{}: {}", f.file, f.error.as_deref().unwrap_or_default())),
    );
    ReloadReport {
        generation,
        cause: cause.to_owned(),
        ok: errors.is_empty(),
        errors,
        plugins: plugins.all.len(),
        policy_version: policies.version.clone(),
    }
}

fn log_report(r: &ReloadReport) {
    let names = r.plugins;
    if r.ok {
        tracing::info!(generation = r.generation, cause = %r.cause, plugins = names, policy = %r.policy_version, "snapshot loaded");
    } else {
        tracing::warn!(generation = r.generation, cause = %r.cause, plugins = names, errors = ?r.errors, "snapshot loaded with errors; failed files keep their last good version");
    }
}
