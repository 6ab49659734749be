//! The client-facing API shapes: parsing a request once, error envelopes,
//! and echoing the client's model string back.

mod echo;
mod error;
mod parse;

pub use echo::ModelEcho;
pub use error::ApiError;
pub use parse::{
    ChatRequest, MAX_MODEL_BYTES, MAX_NESTING, set_limits, splice_string, top_level_model_span,
    validate_model,
};

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

    /// The shape a data-plane path speaks, if it is a chat endpoint.
    pub fn of_path(path: &str) -> Option<Shape> {
        match path {
            "/v1/chat/completions" => Some(Shape::OpenAi),
            "/v1/messages" => Some(Shape::Anthropic),
            _ => None,
        }
    }

    /// The envelope a client reads errors in when the path does not say:
    /// Anthropic for clients that send `anthropic-version` or `x-api-key`,
    /// else OpenAI.
    pub fn guess(path: &str, headers: &http::HeaderMap) -> Shape {
        Shape::of_path(path).unwrap_or(
            if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") {
                Shape::Anthropic
            } else {
                Shape::OpenAi
            },
        )
    }
}
