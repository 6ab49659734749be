//! Restoring placeholders in a streamed answer, event by event.
//!
//! Text arrives in deltas, and a placeholder may be cut anywhere between
//! two of them. Each text stream has a [`carry::Carry`] that holds back a
//! tail that may still become a placeholder of the map, and releases it
//! with the next delta of that stream, or in a synthetic delta event just
//! before the stream ends (see each shape's module).
//!
//! An event whose text is held back whole is still sent, with empty text,
//! so the client sees the events it would have seen. Events this module
//! does not understand pass unchanged and release nothing, so text is
//! never reordered.

mod anthropic;
mod carry;
mod openai;

use crate::vault::Vault;

/// One server-sent event, as the host's `sse-event`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

/// The API shape of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    OpenAi,
    Anthropic,
}

/// One stream being restored.
pub struct Restorer {
    vault: Vault,
    shape: ShapeState,
}

enum ShapeState {
    OpenAi(openai::OpenAiStream),
    Anthropic(anthropic::AnthropicStream),
}

impl Restorer {
    pub fn new(shape: Shape, vault: Vault) -> Self {
        let shape = match shape {
            Shape::OpenAi => ShapeState::OpenAi(openai::OpenAiStream::default()),
            Shape::Anthropic => ShapeState::Anthropic(anthropic::AnthropicStream::default()),
        };
        Self { vault, shape }
    }

    /// The events to send for `event`, in order.
    pub fn push(&mut self, event: Event) -> Vec<Event> {
        match &mut self.shape {
            ShapeState::OpenAi(s) => s.push(event, &self.vault),
            ShapeState::Anthropic(s) => s.push(event, &self.vault),
        }
    }

    /// Whatever is still held, as synthetic delta events.
    pub fn finish(&mut self) -> Vec<Event> {
        match &mut self.shape {
            ShapeState::OpenAi(s) => s.flush_all(),
            ShapeState::Anthropic(s) => s.flush_all(),
        }
    }
}

/// Whether an event's JSON text may hold (the start of) a placeholder: a
/// `[` before an upper-case letter, or ending a string (`…["`), or escaped.
/// When nothing is held, an event without one needs no parsing.
fn may_start_placeholder(data: &str) -> bool {
    let b = data.as_bytes();
    b.windows(2)
        .any(|w| w[0] == b'[' && (w[1].is_ascii_uppercase() || w[1] == b'"'))
        || data.contains("\\u005b")
        || data.contains("\\u005B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_starts_in_json_text() {
        assert!(may_start_placeholder(r#"{"t":"a [EMAIL_1]"}"#));
        assert!(may_start_placeholder(r#"{"t":"a ["}"#));
        assert!(may_start_placeholder(r#"{"t":"\u005bEMAIL_1]"}"#));
        assert!(!may_start_placeholder(
            r#"{"choices":[{"delta":{"content":"hi"}}]}"#
        ));
        assert!(!may_start_placeholder("[1, 2]"));
    }
}
