//! Streamed responses, provider events → client events (WIRE.md §2, §6, §8).
//!
//! Each direction is a small state machine fed one provider event at a time.
//! Both answer `finish()` when the provider stream has ended, so that a
//! client is never left waiting for an end that will not come.

mod to_anthropic;
mod to_openai;

pub use to_anthropic::OpenAiToAnthropic;
pub use to_openai::AnthropicToOpenAi;

use crate::error::Failure;
use serde_json::Value;

/// The literal data of OpenAI's last event.
pub const DONE: &str = "[DONE]";

/// One server-sent event: the `event:` line, if any, and the joined data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    /// An OpenAI event: OpenAI streams never carry an `event:` line.
    pub fn openai(data: &Value) -> Self {
        Self {
            event: None,
            data: data.to_string(),
        }
    }

    /// OpenAI's closing `data: [DONE]`.
    pub fn done() -> Self {
        Self {
            event: None,
            data: DONE.into(),
        }
    }

    /// An Anthropic event, named after its `type` as the Anthropic SDKs
    /// require (they skip events without an `event:` line).
    pub fn anthropic(data: &Value) -> Self {
        Self {
            event: data["type"].as_str().map(str::to_owned),
            data: data.to_string(),
        }
    }
}

/// The JSON payload of a provider event, or a 502.
fn parse(event: &Event) -> Result<Value, Failure> {
    serde_json::from_str(&event.data)
        .map_err(|e| Failure::bad_upstream(format!("provider stream event is not valid JSON: {e}")))
}

/// The message clients see when the provider stream stops mid-answer.
const TRUNCATED: &str = "the provider stream ended before the response was complete";
