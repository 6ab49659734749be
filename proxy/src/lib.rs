//! Sluice: a WebAssembly-pluggable edge gateway for LLM APIs, on pingora.
//!
//! The binary (`sluice serve`) accepts OpenAI- and Anthropic-shaped requests
//! and runs each through the stages of [`pipeline`]: read and parse, route
//! (router plugins), redact, attempt (translator plugins, the provider), and
//! relay the answer whole or streamed. Serving state lives in one
//! [`state::Snapshot`] swapped atomically on reload; [`plugins`] is the
//! WebAssembly host, which knows nothing of serving.

pub mod admin;
pub mod api;
pub mod audit;
pub mod backup;
pub mod budget;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod evaluation;
pub mod events;
pub mod fsutil;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod mock;
pub mod money;
pub mod ops;
pub mod pipeline;
pub mod plugins;
pub mod pricing;
pub mod providers;
pub mod ratelimit;
pub mod routing;
pub mod run;
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
pub mod versioning;
