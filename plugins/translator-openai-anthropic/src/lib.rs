//! Translates between OpenAI Chat Completions and Anthropic Messages, both
//! ways, streams included (WIRE.md §8).
//!
//! The translation itself lives in plain modules working on
//! `serde_json::Value`, testable natively through [`translate`]; the
//! `component` module only adapts the WIT types to it.

pub mod error;
pub mod mapping;
pub mod request;
pub mod response;
pub mod stream;
pub mod translate;

// The WIT export symbols (`sluice:plugin/translation@0.1.0#…`) are not
// valid in a native linker version script, so the native cdylib used by
// `cargo test` would fail to link; the glue exists for components only.
#[cfg(target_arch = "wasm32")]
mod component;
