//! End-to-end load benchmark for Sluice.
//!
//! The `sluice-bench` binary starts a zero-latency mock provider, a bare
//! pingora pass-through (`bare-pingora`, the throughput baseline) and three
//! Sluice instances (without plugins, with one router plugin, and with the
//! OpenAI/Anthropic translator), then measures latency at concurrency 1 and
//! throughput at concurrency 32 against the first two, plus the mock
//! directly (the latency baseline), and prints the figures as ratios
//! against those baselines. A streaming scenario then compares the time to
//! first byte and per-chunk cost of an SSE stream direct from the mock,
//! passed through unchanged, and translated from Anthropic to OpenAI.
//!
//! The pieces are usable on their own (the integration test drives
//! `bare-pingora` with them):
//! - [`wire`]: pre-encoded requests and a minimal HTTP/1.1 response reader;
//! - [`loadgen`]: closed-loop keep-alive clients on one tokio thread;
//! - [`procs`]: child processes with readiness checks and a kill-on-drop guard;
//! - [`report`]: percentiles and the comparison table;
//! - [`stack`]: the processes under test, started and torn down together;
//! - [`stream`]: the streaming scenario (TTFB, total, validated SSE).

pub mod loadgen;
pub mod procs;
pub mod report;
pub mod stack;
pub mod stream;
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
