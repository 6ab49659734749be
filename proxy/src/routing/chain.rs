//! The routing chain: slots in order, the first that chooses wins, every
//! slot that ran reports a verdict. A choice is expanded through the
//! registry (equivalents by health, then fallbacks) and filtered by the
//! availability breaker; a choice left with nothing to try is
//! `unavailable` and the chain goes on.
//!
//! The chain has a budget (`routing.toml` `budget_ms`, 5 ms): the native
//! slots cost microseconds and always run; a plugin slot that would start
//! past the budget, or a router still running when it ends, is `deferred`
//! (`budget_exceeded`). A router call cut off that way finishes on its own
//! task, bounded by its own deadline, so its warm instance is not lost
//! and a slow plugin still meets its own breaker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;

use super::health::Health;
use super::patterns::{Fingerprint, PatternStore};
use super::policy::{RoutingPolicy, When};
use super::{Candidate, Canonical, Route, RouteError, Skipped, Slot, SlotReport, Verdict};
use crate::api::validate_model;
use crate::budget::{BudgetPolicy, Budgets};
use crate::keys::GatewayKey;
use crate::metrics;
use crate::money::Usd;
use crate::plugins::{FailMode, Plugin, PluginError, RequestFacts, RouterDecision, RouterSlot};
use crate::providers::Providers;

/// The header a delegated sub-request names its tier in (slot 5).
pub const DELEGATION_HEADER: &str = "x-sluice-delegation-tier";

/// What the chain knows of the request.
pub struct Request<'a> {
    pub canonical: &'a Canonical,
    pub client_model: &'a str,
    pub key: Option<&'a GatewayKey>,
    pub headers: &'a HeaderMap,
    pub estimated_input_tokens: u64,
    pub has_tools: bool,
    pub stream: bool,
    pub fingerprint: Fingerprint,
}

/// What the chain decides with.
pub struct Env<'a> {
    pub policy: &'a RoutingPolicy,
    pub providers: &'a Providers,
    pub routers: &'a [Arc<Plugin>],
    pub budgets: &'a dyn Budgets,
    pub caps: &'a BudgetPolicy,
    pub health: &'a Health,
    pub patterns: &'a PatternStore,
    pub default_provider: Option<&'a str>,
    pub now_ms: u64,
}

struct Chain<'e, 'r> {
    env: &'e Env<'e>,
    req: &'r Request<'r>,
    started: Instant,
    reports: Vec<SlotReport>,
    skipped: Vec<Skipped>,
}

/// Run the chain. `facts` builds the plugins' view of the request; it is
/// called only if a router runs.
pub async fn decide(
    env: &Env<'_>,
    req: &Request<'_>,
    mut facts: impl FnMut() -> Arc<RequestFacts>,
) -> Result<Route, RouteError> {
    let mut chain = Chain {
        env,
        req,
        started: Instant::now(),
        reports: Vec::with_capacity(8),
        skipped: Vec::new(),
    };
    for slot in Slot::ALL {
        let t = Instant::now();
        let chosen = match slot {
            Slot::First | Slot::Custom => chain.plugins(slot, &mut facts).await?,
            _ => {
                let (verdict, reason, chosen) = chain.native(slot);
                chain.report(slot, None, verdict, reason, t);
                chosen
            }
        };
        if let Some((candidates, plugin, reason)) = chosen {
            return Ok(Route {
                candidates,
                decided_by: slot,
                plugin,
                reason,
                elapsed: chain.started.elapsed(),
                chain: chain.reports,
                skipped: chain.skipped,
                policy_version: env.policy.version.clone(),
            });
        }
    }
    if chain
        .reports
        .iter()
        .any(|r| r.verdict == Verdict::Unavailable)
    {
        return Err(RouteError::NoneAvailable {
            skipped: chain.skipped,
        });
    }
    Err(RouteError::NoProvider {
        model: req.client_model.to_owned(),
        provider: req.canonical.provider.clone(),
    })
}

type Chosen = Option<(Vec<Candidate>, Option<String>, String)>;

impl Chain<'_, '_> {
    fn report(
        &mut self,
        slot: Slot,
        plugin: Option<String>,
        verdict: Verdict,
        reason: String,
        since: Instant,
    ) {
        self.reports.push(SlotReport {
            slot,
            plugin,
            verdict,
            reason,
            latency_us: since.elapsed().as_micros() as u64,
        });
    }

    fn remaining(&self) -> Duration {
        self.env
            .policy
            .budget
            .saturating_sub(self.started.elapsed())
    }

    /// A native slot: its verdict, reason, and what it chose.
    fn native(&mut self, slot: Slot) -> (Verdict, String, Chosen) {
        let na = |why: &str| (Verdict::NotApplicable, why.to_owned(), None);
        let policy = self.env.policy;
        let req = self.req;
        let picked: Result<(Vec<Candidate>, String), &str> = match slot {
            Slot::PerMessageOverride => self.client_model(),
            Slot::PolicyPin => match policy.pin_for(req.key) {
                None => Err("no_pin"),
                Some(p) => match &p.model {
                    None => Err("pin_names_no_model"),
                    Some(m) => Ok((vec![m.clone()], "pinned by routing policy".into())),
                },
            },
            Slot::Rules => match policy.rules.iter().find(|r| self.holds(&r.when)) {
                None if policy.rules.is_empty() => Err("no_rules"),
                None => Err("no_rule_matched"),
                Some(r) => Ok((r.route.clone(), format!("rule {}", r.name))),
            },
            Slot::PatternRecommendation => return self.pattern(),
            Slot::DelegateRequest => match req.headers.get(DELEGATION_HEADER).map(|v| v.to_str()) {
                None => Err("not_delegated"),
                Some(Err(_)) => Err("unknown_delegation_tier"),
                Some(Ok(tier)) => match policy.delegation.get(tier.trim()) {
                    None => Err("unknown_delegation_tier"),
                    Some(m) => Ok((vec![m.clone()], format!("delegation tier {}", tier.trim()))),
                },
            },
            Slot::GlobalDefault => self.global_default(),
            Slot::First | Slot::Custom => unreachable!("plugin slots run routers"),
        };
        match picked {
            Err(why) => na(why),
            Ok((targets, reason)) => self.offer(targets, reason),
        }
    }

    /// Slot 1: the client's own model, in transparent mode.
    fn client_model(&self) -> Result<(Vec<Candidate>, String), &'static str> {
        let policy = self.env.policy;
        let req = self.req;
        if policy.managed_aliases.iter().any(|a| a == req.client_model) {
            return Err("managed_alias");
        }
        let c = Candidate {
            provider: req.canonical.provider.clone(),
            model: req.canonical.model.clone(),
        };
        let transparent = policy.transparent
            && policy
                .pin_for(req.key)
                .is_none_or(|p| p.transparent || p.allow.iter().any(|a| model_matches(a, &c)));
        if !transparent {
            return Err("transparency_off");
        }
        if self.env.providers.get(&c.provider).is_none() {
            return Err("provider_not_configured");
        }
        Ok((vec![c], "the client's model".into()))
    }

    fn global_default(&self) -> Result<(Vec<Candidate>, String), &'static str> {
        let policy = self.env.policy;
        let req = self.req;
        if policy.managed_aliases.iter().any(|a| a == req.client_model)
            && let Some(m) = &policy.default_model
        {
            return Ok((vec![m.clone()], "routing.toml default_model".into()));
        }
        if self.env.providers.get(&req.canonical.provider).is_some() {
            let reason = format!("model names provider {}", req.canonical.provider);
            let c = Candidate {
                provider: req.canonical.provider.clone(),
                model: req.canonical.model.clone(),
            };
            return Ok((vec![c], reason));
        }
        match self.env.default_provider {
            Some(p) => Ok((
                vec![Candidate {
                    provider: p.to_owned(),
                    model: req.canonical.model.clone(),
                }],
                "routing.default_provider".into(),
            )),
            None => Err("no_default"),
        }
    }

    fn pattern(&mut self) -> (Verdict, String, Chosen) {
        let cfg = &self.env.policy.pattern;
        if !cfg.enabled {
            return (Verdict::NotApplicable, "disabled".into(), None);
        }
        // Learned outcomes choose only where the client left the choice to
        // Sluice; a model it named is not second-guessed.
        if !matches!(
            self.client_model(),
            Err("managed_alias" | "transparency_off")
        ) {
            return (Verdict::NotApplicable, "client_chose_model".into(), None);
        }
        if self.remaining().is_zero() {
            return (Verdict::Deferred, "budget_exceeded".into(), None);
        }
        let now = self.env.now_ms;
        let key = self.req.key;
        let allowed = |id: &str| {
            id.split_once(':').is_some_and(|(p, m)| {
                self.env.providers.get(p).is_some()
                    && self.env.health.breaker.check(p, m, now).is_none()
                    && key.is_none_or(|k| k.allows_model(p, m))
            })
        };
        let rec = self
            .env
            .patterns
            .recommend(&self.req.fingerprint, &allowed, now);
        let m = metrics::get();
        match rec {
            Err(gate) => {
                m.pattern_matches.with_label_values(&[gate.as_str()]).inc();
                (Verdict::NotApplicable, gate.as_str().to_owned(), None)
            }
            Ok(r) => {
                m.pattern_matches.with_label_values(&["recommended"]).inc();
                let Some((provider, model)) = r.model.split_once(':') else {
                    return (Verdict::NotApplicable, "invalid_model".into(), None);
                };
                let target = Candidate {
                    provider: provider.to_owned(),
                    model: model.to_owned(),
                };
                self.offer(
                    vec![target],
                    format!(
                        "pattern: score {:.3}, confidence {:.3}, {} samples",
                        r.score, r.confidence, r.sample_size
                    ),
                )
            }
        }
    }

    /// A slot chose `targets`: expand them through the registry and keep
    /// what can be tried now.
    fn offer(&mut self, targets: Vec<Candidate>, reason: String) -> (Verdict, String, Chosen) {
        let out = self.expand(targets);
        if out.is_empty() {
            (Verdict::Unavailable, "provider_unavailable".into(), None)
        } else {
            (Verdict::Chose, reason.clone(), Some((out, None, reason)))
        }
    }

    /// Each target with its equivalents (healthiest and fastest first), then
    /// the fallbacks; without what is unavailable, unknown or, past the
    /// first, not allowed for the key.
    fn expand(&mut self, targets: Vec<Candidate>) -> Vec<Candidate> {
        let env = self.env;
        let mut ordered: Vec<Candidate> = Vec::with_capacity(targets.len());
        let mut fallbacks = Vec::new();
        for t in targets {
            let entry = env.policy.models.get(&t.id());
            let mut group = vec![t];
            if let Some(e) = entry {
                group.extend(e.equivalents.iter().cloned());
                fallbacks.extend(e.fallbacks.iter().cloned());
                // Stable: untried and equally fast keep the policy's order.
                group.sort_by_key(|c| env.health.latency_us(&c.provider));
            }
            ordered.extend(group);
        }
        ordered.extend(fallbacks);
        let mut out: Vec<Candidate> = Vec::with_capacity(ordered.len());
        for (i, c) in ordered.into_iter().enumerate() {
            if out.contains(&c) {
                continue;
            }
            let why = if env.providers.get(&c.provider).is_none() {
                Some("provider_not_configured")
            } else if env
                .health
                .breaker
                .check(&c.provider, &c.model, env.now_ms)
                .is_some()
            {
                Some("provider_unavailable")
            } else if i > 0
                && self
                    .req
                    .key
                    .is_some_and(|k| !k.allows_model(&c.provider, &c.model))
            {
                Some("model_not_allowed")
            } else {
                None
            };
            match why {
                Some(reason) => {
                    let model = c.id();
                    if !self.skipped.iter().any(|s| s.model == model) {
                        self.skipped.push(Skipped { model, reason });
                    }
                }
                None => out.push(c),
            }
        }
        out
    }

    /// Whether a rule's predicates all hold.
    fn holds(&self, w: &When) -> bool {
        let req = self.req;
        if !w.who.matches(req.key) {
            return false;
        }
        let c = Candidate {
            provider: req.canonical.provider.clone(),
            model: req.canonical.model.clone(),
        };
        if let Some(m) = &w.model
            && !(model_matches(m, &c) || glob(m, req.client_model))
        {
            return false;
        }
        for (name, want) in &w.headers {
            let have = req.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            match have {
                None => return false,
                Some(v) if want != "*" && v != want => return false,
                _ => {}
            }
        }
        let t = req.estimated_input_tokens;
        if w.min_estimated_tokens.is_some_and(|lo| t < lo)
            || w.max_estimated_tokens.is_some_and(|hi| t > hi)
            || w.has_tools.is_some_and(|h| h != req.has_tools)
            || w.stream.is_some_and(|s| s != req.stream)
        {
            return false;
        }
        self.spend_holds(w)
    }

    /// The spend predicates, read from the ledger (in memory). Unknown
    /// scopes and absent caps make a predicate false, as in the seed.
    fn spend_holds(&self, w: &When) -> bool {
        let key = self.req.key;
        // The ledger's windows are on the system clock, not routing's.
        let now = crate::clock::now_ms();
        let spent = |scope: Option<String>, monthly: bool| -> Option<Usd> {
            let r = self.env.budgets.remaining(&scope?, now);
            Some(if monthly {
                r.monthly.spent_usd
            } else {
                r.daily.spent_usd
            })
        };
        let key_scope = key.map(|k| format!("key:{}", k.budget_id));
        let user_scope = key.and_then(|k| k.user_id.as_ref().map(|u| format!("user:{u}")));
        let team = key.and_then(|k| k.team_id.as_deref());
        let team_scope = team.map(|t| format!("team:{t}"));
        let exceeds = |limit: Option<Usd>, scope: &Option<String>, monthly: bool| {
            limit.is_none_or(|l| spent(scope.clone(), monthly).is_some_and(|s| s > l))
        };
        if !exceeds(w.cost_today_exceeds_usd, &key_scope, false)
            || !exceeds(w.user_cost_today_exceeds_usd, &user_scope, false)
            || !exceeds(w.team_cost_today_exceeds_usd, &team_scope, false)
            || !exceeds(w.team_cost_month_exceeds_usd, &team_scope, true)
        {
            return false;
        }
        if let Some(limit) = w.team_budget_remaining_lt {
            let Some((team, scope)) = team.zip(team_scope) else {
                return false;
            };
            let Some(caps) = self.env.caps.teams.get(team) else {
                return false;
            };
            let r = self.env.budgets.remaining(&scope, now);
            let left = |cap: Option<Usd>, u: crate::budget::Usage| {
                cap.map(|c| {
                    let used = u.spent_usd + u.held_usd;
                    if used >= c { Usd::ZERO } else { c - used }
                })
            };
            let tightest = [
                left(caps.daily_usd, r.daily),
                left(caps.monthly_usd, r.monthly),
            ]
            .into_iter()
            .flatten()
            .min();
            if tightest.is_none_or(|t| t >= limit) {
                return false;
            }
        }
        true
    }

    /// A plugin slot: its routers in policy order, each with what is left
    /// of the budget.
    async fn plugins(
        &mut self,
        slot: Slot,
        facts: &mut impl FnMut() -> Arc<RequestFacts>,
    ) -> Result<Chosen, RouteError> {
        let want = match slot {
            Slot::First => RouterSlot::First,
            _ => RouterSlot::Custom,
        };
        let routers: Vec<&Arc<Plugin>> = self
            .env
            .routers
            .iter()
            .filter(|p| p.binding.slot == want)
            .collect();
        if routers.is_empty() {
            if slot == Slot::Custom {
                self.report(
                    slot,
                    None,
                    Verdict::NotApplicable,
                    "no_routers".into(),
                    Instant::now(),
                );
            }
            return Ok(None);
        }
        let facts = facts();
        for plugin in routers {
            let t = Instant::now();
            let name = || Some(plugin.name().to_owned());
            let left = self.remaining();
            if left.is_zero() {
                self.report(slot, name(), Verdict::Deferred, "budget_exceeded".into(), t);
                continue;
            }
            let decision = match within(left, plugin.clone(), facts.clone()).await {
                None => {
                    self.report(slot, name(), Verdict::Deferred, "budget_exceeded".into(), t);
                    continue;
                }
                Some(Err(error)) => {
                    if stops_request(plugin, &error) {
                        return Err(RouteError::PluginFailed {
                            plugin: plugin.name().to_owned(),
                            error,
                        });
                    }
                    self.report(
                        slot,
                        name(),
                        Verdict::NotApplicable,
                        "plugin_failed".into(),
                        t,
                    );
                    continue;
                }
                Some(Ok(d)) => d,
            };
            match decision {
                RouterDecision::Abstain => {
                    self.report(slot, name(), Verdict::NotApplicable, "abstained".into(), t);
                }
                RouterDecision::Reject {
                    status,
                    code,
                    message,
                } => {
                    return Err(RouteError::Rejected {
                        plugin: plugin.name().to_owned(),
                        status,
                        code,
                        message,
                    });
                }
                RouterDecision::Route { candidates, reason } => {
                    let targets = candidates
                        .into_iter()
                        .map(|(provider, model)| {
                            check_choice(plugin, self.env.providers, provider, model)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let (verdict, why, chosen) = self.offer(targets, reason);
                    self.report(slot, name(), verdict, why, t);
                    if let Some((c, _, r)) = chosen {
                        return Ok(Some((c, name(), r)));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// Ask a router, waiting at most `left`. A call cut off is left to finish
/// on its own task (bounded by the plugin's deadline) rather than dropped:
/// dropping it would discard its instance, and a router that is merely
/// cold would then never get warm.
async fn within(
    left: Duration,
    plugin: Arc<Plugin>,
    facts: Arc<RequestFacts>,
) -> Option<Result<RouterDecision, PluginError>> {
    let mut call = Box::pin(async move { plugin.route(&facts).await });
    tokio::select! {
        biased;
        r = &mut call => Some(r),
        _ = tokio::time::sleep(left) => {
            tokio::spawn(async move {
                let _ = call.await;
            });
            None
        }
    }
}

/// `pattern` against a candidate: `provider:model`, a bare model name, or
/// a `prefix*` of either.
fn model_matches(pattern: &str, c: &Candidate) -> bool {
    glob(pattern, &c.id()) || glob(pattern, &c.model)
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => s.starts_with(prefix),
        None => pattern == s,
    }
}

/// Whether a router's failure ends the request instead of skipping it:
/// fail-closed bindings, and failures that are nobody's fault but load or
/// the input (answered 503 or 413 whatever the mode).
fn stops_request(plugin: &Plugin, error: &PluginError) -> bool {
    matches!(error, PluginError::Busy | PluginError::InputTooLarge { .. })
        || plugin.binding.fail_mode == FailMode::Closed
}

fn check_choice(
    plugin: &Plugin,
    providers: &Providers,
    provider: String,
    model: String,
) -> Result<Candidate, RouteError> {
    let invalid = |detail: String| RouteError::InvalidChoice {
        plugin: plugin.name().to_owned(),
        detail,
    };
    if providers.get(&provider).is_none() {
        return Err(invalid(format!(
            "chose provider {provider:?}, which is not configured"
        )));
    }
    if validate_model(&model).is_err() {
        return Err(invalid(format!("chose an invalid model name {model:?}")));
    }
    Ok(Candidate { provider, model })
}
