//! Keeps PII and secrets from reaching an LLM provider.
//!
//! The request body is parsed as JSON and every string value (not keys,
//! not the top-level `model`, not binary payloads) is scanned, decoded, for
//! the kinds in [`kind::Kind`]. Depending on the configured
//! [`config::Mode`] a match is replaced by a stable placeholder restored
//! in the answer, masked for good, or makes the request refused.
//!
//! - [`scan`]: hand-written, linear scanners, one module per kind family.
//! - [`request`]: the three modes over a request body.
//! - [`pseudonyms`], [`placeholder`], [`vault`]: placeholders, the state
//!   handed to the response side and read back from it.
//! - [`restore`]: whole responses; [`stream`]: streamed ones, with
//!   placeholders split anywhere across events.
//!
//! All of it compiles natively and is tested there; the `component`
//! module only adapts the WIT types to it.

pub mod config;
pub mod kind;
pub mod placeholder;
pub mod pseudonyms;
pub mod request;
pub mod restore;
pub mod scan;
pub mod stream;
pub mod vault;
pub mod walk;

// The WIT export symbols are not valid in a native linker version script;
// the glue exists for components only (like translator-openai-anthropic).
#[cfg(target_arch = "wasm32")]
mod component;
