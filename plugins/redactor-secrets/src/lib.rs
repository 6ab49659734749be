//! Redacts secrets and e-mail addresses in request and response bodies.
//!
//! E-mail addresses become `[REDACTED:email]`; API-key-like tokens (`sk-…`
//! and `sk-ant-…` with at least 16 more `[A-Za-z0-9_-]`, AWS access key ids
//! `AKIA` + 16 upper-case letters or digits) become `[REDACTED:api_key]`.
//! Replacement happens inside the JSON text, so everything else keeps its
//! bytes; a body with no match is reported unchanged.
//!
//! Config: `{"emails": true, "api_keys": true}`, both default `true`.
//!
//! Streams are redacted event by event: each event's `data` on its own.
//! Known limit: a secret split across two events (e.g. an address streamed
//! as `bob@exa` then `mple.com`) is not caught.
//!
//! The scanning lives in [`scan`], testable natively; the `component`
//! module only adapts the WIT types to it.

pub mod scan;

// The WIT export symbols are not valid in a native linker version script;
// the glue exists for components only (see translator-openai-anthropic).
#[cfg(target_arch = "wasm32")]
mod component;
