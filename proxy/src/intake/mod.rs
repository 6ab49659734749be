//! The client-facing API shapes: request parsing and error envelopes.

mod body;
mod error;

pub use body::{ChatRequest, RequestBody};
pub use error::ApiError;

/// The API shape a client speaks; errors answer in the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl Shape {
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::OpenAi => "openai",
            Shape::Anthropic => "anthropic",
        }
    }

    /// Path of the chat endpoint below a provider's versioned base URL.
    pub fn endpoint(self) -> &'static str {
        match self {
            Shape::OpenAi => "/chat/completions",
            Shape::Anthropic => "/messages",
        }
    }
}
