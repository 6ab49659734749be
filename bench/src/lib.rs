//! End-to-end load benchmark for Sluice.
//!
//! The `sluice-bench` binary measures the gateway as users run it beside
//! nginx and a bare pingora pass-through, against one upstream, in one
//! run: added latency at concurrency 1, throughput at concurrency 32, CPU
//! time per request and peak memory of each proxy, for Sluice with
//! nothing on, each feature alone (keys and budget, a WASM router, the
//! translator, the PII redactor) and everything together; then time to
//! first byte and per-chunk cost of an SSE stream; then the goals.
//!
//! The pieces are usable on their own (the integration test drives
//! `bare-pingora` with them):
//! - [`wire`]: pre-encoded requests and a minimal HTTP/1.1 response reader;
//! - [`loadgen`]: closed-loop keep-alive clients on one tokio thread;
//! - [`procs`]: child processes with readiness checks and a kill-on-drop guard;
//! - [`cpu`], [`rss`]: on-CPU time and resident memory from `/proc`;
//! - [`nginx`]: the static upstream's and the reference proxy's configs;
//! - [`variants`]: the Sluice configurations measured;
//! - [`payloads`]: upstream answers, request bodies, the answer check;
//! - [`stack`]: the processes under test, started and torn down together;
//! - [`measure`]: one target's probe, runs, CPU, memory and plugin check;
//! - [`stream`]: the streaming scenario (TTFB, total, validated SSE);
//! - [`metrics`]: plugin call counts from a gateway's `/metrics`;
//! - [`report`], [`goals`]: the tables and the goals block.

pub mod cpu;
pub mod goals;
pub mod loadgen;
pub mod measure;
pub mod metrics;
pub mod nginx;
pub mod payloads;
pub mod procs;
pub mod report;
pub mod rss;
pub mod stack;
pub mod stream;
pub mod variants;
pub mod wire;

use std::fmt;

/// A benchmark setup or run failure, with a message meant for a human.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    pub fn new(msg: impl Into<String>) -> Self {
        BenchError(msg.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<std::io::Error> for BenchError {
    fn from(e: std::io::Error) -> Self {
        BenchError(format!("i/o error: {e}"))
    }
}
