//! Prometheus metrics. One registry for the process; the hot path holds
//! pre-resolved label children, so recording is an atomic add.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub plugin_calls: IntCounterVec,
    pub plugin_call_duration: HistogramVec,
    pub plugin_reloads: IntCounterVec,
    pub plugins_loaded: IntGauge,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_errors: IntCounterVec,
    pub guest_log_lines: IntCounterVec,
    pub abandoned: IntCounterVec,
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
    for c in [
        Box::new(plugin_calls.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(plugin_call_duration.clone()),
        Box::new(plugin_reloads.clone()),
        Box::new(plugins_loaded.clone()),
        Box::new(requests.clone()),
        Box::new(request_duration.clone()),
        Box::new(upstream_errors.clone()),
        Box::new(guest_log_lines.clone()),
        Box::new(abandoned.clone()),
    ] {
        registry.register(c).unwrap();
    }
    Metrics {
        registry,
        plugin_calls,
        plugin_call_duration,
        plugin_reloads,
        plugins_loaded,
        requests,
        request_duration,
        upstream_errors,
        guest_log_lines,
        abandoned,
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
