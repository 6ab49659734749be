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
}

/// Per-plugin children of the plugin metrics, resolved once at load.
pub struct PluginMetrics {
    pub ok: IntCounter,
    pub error: IntCounter,
    pub timeout: IntCounter,
    pub disabled: IntCounter,
    pub duration: Histogram,
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
    for c in [
        Box::new(plugin_calls.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(plugin_call_duration.clone()),
        Box::new(plugin_reloads.clone()),
        Box::new(plugins_loaded.clone()),
        Box::new(requests.clone()),
        Box::new(request_duration.clone()),
        Box::new(upstream_errors.clone()),
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
            duration: self.plugin_call_duration.with_label_values(&[name]),
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
