//! Sluice: a WebAssembly-pluggable edge gateway for LLM APIs, on pingora.
//!
//! The binary (`sluice serve`) accepts OpenAI- and Anthropic-shaped requests,
//! routes each through router plugins, translates between API shapes with
//! translator plugins, and streams the provider's answer back. Serving state
//! lives in one [`snapshot::Snapshot`] swapped atomically on reload.

pub mod admin;
pub mod chat;
pub mod cli;
pub mod config;
pub mod echo;
pub mod fsutil;
pub mod httpapp;
pub mod intake;
pub mod metrics;
pub mod mock;
pub mod models;
pub mod plugins;
pub mod providers;
pub mod respond;
pub mod routing;
pub mod run;
pub mod server;
pub mod snapshot;
pub mod sse;
pub mod tls;
pub mod versioning;
