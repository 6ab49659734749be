//! Prometheus metrics. One registry for the process; the hot path holds
//! pre-resolved label children, so recording is an atomic add.

use std::sync::OnceLock;

use prometheus::core::Collector;
use prometheus::{
    Counter, CounterVec, Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Every registered family's name, children or not.
    names: Vec<String>,
    pub plugin_calls: IntCounterVec,
    pub plugin_call_duration: HistogramVec,
    pub plugin_reloads: IntCounterVec,
    pub plugins_loaded: IntGauge,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub guest_log_lines: IntCounterVec,
    pub abandoned: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub key_cost: CounterVec,
    pub keys_active: IntGauge,
    pub keys_revoked: IntGauge,
    pub quota_used_ratio: GaugeVec,
    pub quota_refusals: IntCounterVec,
    pub ratelimit_requests: IntCounterVec,
    pub events_written: IntCounter,
    pub events_dropped: IntCounter,
    pub events_lost: IntCounter,
    pub events_backpressure: IntCounter,
    pub events_queued: IntGauge,
    pub event_commit_duration: Histogram,
    pub tokens: IntCounterVec,
    pub unpriced_calls: IntCounter,
    pub routing_decision_latency: Histogram,
    pub routing_decisions: IntCounterVec,
    pub llm_call_errors: IntCounterVec,
    pub provider_available: IntGaugeVec,
    pub pattern_matches: IntCounterVec,
    /// One provider attempt, from send to the end of its response.
    pub llm_call_duration: HistogramVec,
    /// A streamed attempt, from send to the provider's first SSE event.
    pub llm_time_to_first_token: HistogramVec,
    /// Size of the event database file (`events.redb`).
    pub trace_store_bytes: IntGauge,
    pub evals_total: IntCounterVec,
    pub eval_score: HistogramVec,
    pub eval_queue_depth: IntGauge,
    pub judge_cost_usd: Counter,
    pub redactions_total: IntCounterVec,
}

/// Per-plugin children of the plugin metrics, resolved once at load.
pub struct PluginMetrics {
    pub ok: IntCounter,
    pub error: IntCounter,
    pub timeout: IntCounter,
    /// Refused by an open breaker.
    pub disabled: IntCounter,
    /// No instance free in time (back-pressure, not the plugin's fault).
    pub busy: IntCounter,
    /// Ran out on an input too large for it (the input's fault).
    pub rejected_input: IntCounter,
    pub duration: Histogram,
}

/// Per-plugin children of `sluice_plugin_log_lines_total`.
pub struct LogMetrics {
    pub logged: IntCounter,
    pub dropped: IntCounter,
}

fn build() -> Metrics {
    let registry = Registry::new();
    let plugin_calls = IntCounterVec::new(
        Opts::new("sluice_plugin_calls_total", "Plugin calls by outcome"),
        &["plugin", "result"],
    )
    .unwrap();
    let plugin_call_duration = HistogramVec::new(
        HistogramOpts::new(
            "sluice_plugin_call_duration_seconds",
            "Time for one plugin call, instance checkout included",
        )
        .buckets(vec![
            1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1,
        ]),
        &["plugin"],
    )
    .unwrap();
    let plugin_reloads = IntCounterVec::new(
        Opts::new(
            "sluice_plugin_reloads_total",
            "Plugin and policy reloads by result",
        ),
        &["result"],
    )
    .unwrap();
    let plugins_loaded =
        IntGauge::new("sluice_plugins_loaded", "Plugins in the serving snapshot").unwrap();
    let requests = IntCounterVec::new(
        Opts::new(
            "sluice_requests_total",
            "Data-plane requests by route and status",
        ),
        &["route", "status"],
    )
    .unwrap();
    let request_duration = HistogramVec::new(
        HistogramOpts::new(
            "sluice_request_duration_seconds",
            "Data-plane request latency, to the last byte sent",
        )
        .buckets(vec![
            1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0,
        ]),
        &["route"],
    )
    .unwrap();
    let upstream_errors = IntCounterVec::new(
        Opts::new(
            "sluice_upstream_errors_total",
            "Failed upstream exchanges by provider and error class",
        ),
        &["provider", "error_class"],
    )
    .unwrap();
    let guest_log_lines = IntCounterVec::new(
        Opts::new(
            "sluice_plugin_log_lines_total",
            "Lines plugins wrote (stdout, stderr, host.log): logged, or dropped by the rate limit",
        ),
        &["plugin", "result"],
    )
    .unwrap();
    let abandoned = IntCounterVec::new(
        Opts::new(
            "sluice_requests_abandoned_total",
            "Requests whose client went away or stopped reading, by stage (waiting: on the provider; writing: the response)",
        ),
        &["stage"],
    )
    .unwrap();
    let counter = |name: &str, help: &str, labels: &[&str]| {
        IntCounterVec::new(Opts::new(name, help), labels).unwrap()
    };
    let auth_failures = counter(
        "sluice_gateway_auth_failures_total",
        "Data-plane requests refused for their credential, by reason (missing, invalid, revoked-or-expired)",
        &["reason"],
    );
    let key_cost = CounterVec::new(
        Opts::new(
            "sluice_gateway_key_cost_usd_total",
            "Settled provider cost by gateway key (\"null\": unkeyed); the ledger holds the exact decimals",
        ),
        &["gateway_key_id"],
    )
    .unwrap();
    let keys_active = IntGauge::new(
        "sluice_gateway_keys_active",
        "Gateway keys that authenticate now (grace included)",
    )
    .unwrap();
    let keys_revoked = IntGauge::new(
        "sluice_gateway_keys_revoked",
        "Gateway keys revoked or expired",
    )
    .unwrap();
    let quota_used_ratio = GaugeVec::new(
        Opts::new(
            "sluice_quota_used_ratio",
            "Settled spend over cap, the highest of a scope's windows and units",
        ),
        &["scope"],
    )
    .unwrap();
    let quota_refusals = counter(
        "sluice_quota_refusals_total",
        "Requests refused before any provider spend because a cap would be exceeded",
        &["scope", "unit"],
    );
    let ratelimit_requests = counter(
        "sluice_ratelimit_requests_total",
        "Rate-limit checks by bucket (key, key_tokens, ip) and result (allowed, limited)",
        &["bucket", "result"],
    );
    let events_written =
        IntCounter::new("sluice_events_written_total", "Event log entries committed").unwrap();
    let events_dropped = IntCounter::new(
        "sluice_events_dropped_total",
        "Non-audit events dropped because the event log queue was full",
    )
    .unwrap();
    let events_lost = IntCounter::new(
        "sluice_events_lost_total",
        "Event log entries whose commit failed three times",
    )
    .unwrap();
    let events_backpressure = IntCounter::new(
        "sluice_events_backpressure_total",
        "Audit events and usage records that waited for room in a full queue",
    )
    .unwrap();
    let events_queued = IntGauge::new(
        "sluice_events_queue_depth",
        "Entries waiting for the event writer",
    )
    .unwrap();
    let event_commit_duration = Histogram::with_opts(
        HistogramOpts::new(
            "sluice_event_commit_duration_seconds",
            "One group commit of the event log (fsync included)",
        )
        .buckets(vec![
            1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
        ]),
    )
    .unwrap();
    let tokens = counter(
        "sluice_llm_tokens_total",
        "Tokens providers reported, by direction (input, output, cached_input)",
        &["direction"],
    );
    // No model label: the model part of a name is the client's to choose.
    // Which models they were is in the usage records (`unpriced: true`).
    let unpriced_calls = IntCounter::new(
        "sluice_unpriced_calls_total",
        "Calls served for a model the price table does not list (counted at zero cost)",
    )
    .unwrap();
    let routing_decision_latency = Histogram::with_opts(
        HistogramOpts::new(
            "sluice_routing_decision_latency_seconds",
            "Time the routing chain took to decide one request",
        )
        .buckets(vec![
            1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        ]),
    )
    .unwrap();
    let routing_decisions = counter(
        "sluice_routing_decisions_total",
        "Routing decisions by the slot that decided",
        &["slot"],
    );
    // Models are labelled only when the price table or the routing
    // registry names them (else "other"): a client may name any model.
    let llm_call_errors = counter(
        "sluice_llm_call_errors_total",
        "Failed provider calls by provider, model and error class (network, auth, rate_limited, server)",
        &["provider", "model", "error_class"],
    );
    let provider_available = IntGaugeVec::new(
        Opts::new(
            "sluice_provider_available",
            "1 while the availability breaker lets a provider and model be tried, 0 while it is unavailable (model \"*\": the whole provider)",
        ),
        &["provider", "model"],
    )
    .unwrap();
    let pattern_matches = counter(
        "sluice_pattern_matches_total",
        "Pattern slot lookups by result (recommended, or the gate that turned it off)",
        &["result"],
    );
    // Models are labelled as in `sluice_llm_call_errors_total`: operator-
    // named ones only, else "other".
    let llm_call_duration = HistogramVec::new(
        HistogramOpts::new(
            "sluice_llm_call_duration_seconds",
            "One provider attempt, from sending the request to the end of the response (whole body read, or stream end)",
        )
        .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0]),
        &["provider", "model"],
    )
    .unwrap();
    let llm_time_to_first_token = HistogramVec::new(
        HistogramOpts::new(
            "sluice_llm_time_to_first_token_seconds",
            "A streamed provider attempt, from sending the request to the provider's first SSE event",
        )
        .buckets(vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
        ]),
        &["provider", "model"],
    )
    .unwrap();
    let trace_store_bytes = IntGauge::new(
        "sluice_trace_store_bytes",
        "Size of the event database file on disk",
    )
    .unwrap();
    let evals_total = counter(
        "sluice_evals_total",
        "Evaluations by evaluator and result (completed, failed, skipped)",
        &["evaluator", "result"],
    );
    let eval_score = HistogramVec::new(
        HistogramOpts::new(
            "sluice_eval_score",
            "Scores of completed evaluations, in [0, 1]",
        )
        .buckets(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        &["evaluator"],
    )
    .unwrap();
    let eval_queue_depth = IntGauge::new(
        "sluice_eval_queue_depth",
        "Exchanges waiting for an evaluator",
    )
    .unwrap();
    let judge_cost_usd = Counter::new(
        "sluice_eval_judge_cost_usd_total",
        "Provider cost of LLM-judge evaluations; the ledger holds the exact decimals",
    )
    .unwrap();
    let redactions_total = counter(
        "sluice_redactions_total",
        "Redactor passes by plugin and outcome",
        &["plugin", "outcome"],
    );
    let mut names = Vec::new();
    for c in [
        Box::new(plugin_calls.clone()) as Box<dyn Collector>,
        Box::new(llm_call_duration.clone()),
        Box::new(llm_time_to_first_token.clone()),
        Box::new(trace_store_bytes.clone()),
        Box::new(evals_total.clone()),
        Box::new(eval_score.clone()),
        Box::new(eval_queue_depth.clone()),
        Box::new(judge_cost_usd.clone()),
        Box::new(redactions_total.clone()),
        Box::new(routing_decision_latency.clone()),
        Box::new(routing_decisions.clone()),
        Box::new(llm_call_errors.clone()),
        Box::new(provider_available.clone()),
        Box::new(pattern_matches.clone()),
        Box::new(auth_failures.clone()),
        Box::new(key_cost.clone()),
        Box::new(keys_active.clone()),
        Box::new(keys_revoked.clone()),
        Box::new(quota_used_ratio.clone()),
        Box::new(quota_refusals.clone()),
        Box::new(ratelimit_requests.clone()),
        Box::new(events_written.clone()),
        Box::new(events_dropped.clone()),
        Box::new(events_lost.clone()),
        Box::new(events_backpressure.clone()),
        Box::new(events_queued.clone()),
        Box::new(event_commit_duration.clone()),
        Box::new(tokens.clone()),
        Box::new(unpriced_calls.clone()),
        Box::new(plugin_call_duration.clone()),
        Box::new(plugin_reloads.clone()),
        Box::new(plugins_loaded.clone()),
        Box::new(requests.clone()),
        Box::new(request_duration.clone()),
        Box::new(upstream_errors.clone()),
        Box::new(guest_log_lines.clone()),
        Box::new(abandoned.clone()),
    ] {
        names.extend(c.desc().iter().map(|d| d.fq_name.clone()));
        registry.register(c).unwrap();
    }
    Metrics {
        registry,
        names,
        plugin_calls,
        plugin_call_duration,
        plugin_reloads,
        plugins_loaded,
        requests,
        request_duration,
        upstream_errors,
        guest_log_lines,
        abandoned,
        auth_failures,
        key_cost,
        keys_active,
        keys_revoked,
        quota_used_ratio,
        quota_refusals,
        ratelimit_requests,
        events_written,
        events_dropped,
        events_lost,
        events_backpressure,
        events_queued,
        event_commit_duration,
        tokens,
        unpriced_calls,
        routing_decision_latency,
        routing_decisions,
        llm_call_errors,
        provider_available,
        pattern_matches,
        llm_call_duration,
        llm_time_to_first_token,
        trace_store_bytes,
        evals_total,
        eval_score,
        eval_queue_depth,
        judge_cost_usd,
        redactions_total,
    }
}

/// Static status labels, so recording allocates nothing.
pub fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        410 => "410",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "none",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(build)
}

/// The fully-qualified name of every registered family, vec families
/// without children included (a histogram is one family: its `_bucket`,
/// `_sum` and `_count` series are not listed). Dashboards and alert rules
/// are checked against this list.
pub fn family_names() -> Vec<String> {
    get().names.clone()
}

impl Metrics {
    pub fn plugin(&self, name: &str) -> PluginMetrics {
        let c = |result| self.plugin_calls.with_label_values(&[name, result]);
        PluginMetrics {
            ok: c("ok"),
            error: c("error"),
            timeout: c("timeout"),
            disabled: c("disabled"),
            busy: c("busy"),
            rejected_input: c("rejected_input"),
            duration: self.plugin_call_duration.with_label_values(&[name]),
        }
    }

    pub fn guest_log(&self, plugin: &str) -> LogMetrics {
        let c = |result| self.guest_log_lines.with_label_values(&[plugin, result]);
        LogMetrics {
            logged: c("logged"),
            dropped: c("dropped"),
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8192);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics to a Vec cannot fail");
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn family_names_lists_every_family_children_or_not() {
        let names = family_names();
        let m = get();
        for n in &names {
            assert!(n.starts_with("sluice_"), "{n}");
        }
        // A vec family without children is not gathered, but is listed.
        assert!(names.iter().any(|n| n == "sluice_redactions_total"));
        m.redactions_total
            .with_label_values(&["p", "rewritten"])
            .inc();
        let gathered: Vec<String> = m
            .registry
            .gather()
            .iter()
            .map(|f| f.get_name().to_owned())
            .collect();
        for g in &gathered {
            assert!(names.contains(g), "{g} gathered but not listed");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
