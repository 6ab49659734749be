//! What every plugin store carries: a WASI context that grants nothing (no
//! files, no network, no environment) and sends stdout/stderr to the log,
//! the resource limiter, the handle table of `context`, and the identity
//! the `host` interface reports.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::host::{Host, LogLevel};
use super::limits::Limiter;
use super::output::{GuestLog, GuestOutput, Source};

pub struct HostState {
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: Limiter,
    config: Arc<str>,
    log: Arc<GuestLog>,
    started: Instant,
}

impl HostState {
    pub fn new(log: Arc<GuestLog>, config: Arc<str>, memory_cap: usize) -> Self {
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::new(log.clone(), Source::Stdout))
            .stderr(GuestOutput::new(log.clone(), Source::Stderr))
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(memory_cap),
            config,
            log,
            started: Instant::now(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        };
        // One log call is one line, whatever it contains.
        self.log.line(Source::Log(level), message.as_bytes());
    }

    fn now_unix_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn monotonic_ns(&mut self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn config(&mut self) -> String {
        self.config.to_string()
    }
}
