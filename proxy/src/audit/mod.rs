//! Audit export: the event log written to a file (JSONL or CSV) under a
//! redaction mode, byte for byte the same for the same events.
//!
//! - [`modes`]: the redaction modes, the identity and private-text field
//!   lists, and [`pseudonym`] (`redacted_` + 12 hex digits of sha256).
//! - [`aggregate`]: the `aggregate_only` summary (counters, no rows).
//! - [`export`]: the file writer (refuses to overwrite, 0600, written to a
//!   temporary file and linked into place) and its [`Summary`].

pub mod aggregate;
pub mod export;
pub mod modes;

pub use aggregate::Aggregate;
pub use export::{CSV_HEADER, Format, Summary, Window, export};
pub use modes::{
    IDENTITY_FIELDS, Mode, PRIVATE_FIELDS, SENTINEL, is_pseudonym, pseudonym, redact, redact_event,
};

#[cfg(test)]
mod tests;
