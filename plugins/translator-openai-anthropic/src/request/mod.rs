//! Request bodies, client shape → provider shape (WIRE.md §1, §4, §8).
//!
//! Unknown fields are dropped: each API rejects fields it does not know, and
//! a field of one API means nothing to the other.

mod to_anthropic;
mod to_openai;

pub use to_anthropic::{DEFAULT_MAX_TOKENS, anthropic_tool_id, openai_to_anthropic};
pub use to_openai::anthropic_to_openai;

use crate::error::Failure;
use serde_json::{Map, Value};

/// What the provider request must say regardless of the client body.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    /// The model to name in the provider request.
    pub model: &'a str,
    /// Whether the exchange streams; the host decides, not the body.
    pub stream: bool,
}

/// The body as a JSON object, or a 400 naming the problem.
fn as_object(body: &Value) -> Result<&Map<String, Value>, Failure> {
    body.as_object()
        .ok_or_else(|| Failure::invalid_request("request body must be a JSON object", None))
}

/// The `messages` array, or a 400 if it is missing or not an array.
fn messages(body: &Value) -> Result<&Vec<Value>, Failure> {
    body["messages"]
        .as_array()
        .ok_or_else(|| Failure::invalid_request("`messages` must be an array", Some("messages")))
}

/// A field as a string when it is one and not empty.
fn non_empty_str(value: &Value) -> Option<&str> {
    value.as_str().filter(|s| !s.is_empty())
}
