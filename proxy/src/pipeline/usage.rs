//! Usage capture: the tokens a provider reports, read from its response in
//! its own shape (before any translation), whole or streamed.

use serde::Deserialize;

use crate::api::Shape;
use crate::plugins::bindings::SseEvent;
pub use crate::pricing::Usage;

#[derive(Deserialize, Default)]
struct Counts {
    // OpenAI
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    // Anthropic
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Details {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WithUsage {
    usage: Option<Counts>,
    /// Anthropic `message_start` carries it on the message.
    message: Option<Box<WithUsage>>,
}

impl Counts {
    /// Fold these counts into `u`: fields the event has replace those of
    /// earlier events (Anthropic reports input at the start, output at the
    /// end).
    fn apply(&self, u: &mut Usage) {
        // OpenAI's prompt tokens include cached ones; Anthropic's input
        // tokens exclude cache reads and writes, which are added here.
        if let Some(n) = self.prompt_tokens {
            u.input_tokens = n;
        } else if let Some(n) = self.input_tokens {
            u.input_tokens = n
                + self.cache_read_input_tokens.unwrap_or(0)
                + self.cache_creation_input_tokens.unwrap_or(0);
        }
        if let Some(n) = self.cache_creation_input_tokens {
            u.cache_write_tokens = n;
        }
        if let Some(n) = self.completion_tokens.or(self.output_tokens) {
            u.output_tokens = n;
        }
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.cache_read_input_tokens);
        if let Some(n) = cached {
            u.cached_input_tokens = n;
        }
    }
}

fn counts(json: &[u8]) -> Option<Counts> {
    let v: WithUsage = serde_json::from_slice(json).ok()?;
    v.usage.or_else(|| v.message.and_then(|m| m.usage))
}

/// Usage in a whole provider response body.
pub fn from_body(body: &[u8]) -> Option<Usage> {
    let c = counts(body)?;
    let mut u = Usage::default();
    c.apply(&mut u);
    Some(u)
}

/// Watches a provider's stream for usage.
pub struct UsageCapture {
    shape: Shape,
    usage: Option<Usage>,
    /// The provider's final report went by (OpenAI's usage chunk,
    /// Anthropic's `message_delta`): what was seen before is partial.
    complete: bool,
}

impl UsageCapture {
    pub fn new(provider_shape: Shape) -> Self {
        Self {
            shape: provider_shape,
            usage: None,
            complete: false,
        }
    }

    pub fn observe(&mut self, ev: &SseEvent) {
        let carries = match self.shape {
            Shape::OpenAi => ev.data.contains("\"usage\""),
            Shape::Anthropic => {
                matches!(ev.event.as_deref(), Some("message_start" | "message_delta"))
            }
        };
        if carries && let Some(c) = counts(ev.data.as_bytes()) {
            c.apply(self.usage.get_or_insert_with(Usage::default));
            self.complete |= match self.shape {
                Shape::OpenAi => c.completion_tokens.is_some(),
                Shape::Anthropic => ev.event.as_deref() == Some("message_delta"),
            };
        }
    }

    /// The usage the provider reported, once it reported all of it.
    pub fn usage(&self) -> Option<Usage> {
        self.usage.filter(|_| self.complete)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn reads_both_shapes() {
        let o = from_body(
            br#"{"usage":{"prompt_tokens":5,"completion_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        );
        assert_eq!(
            o,
            Some(Usage {
                input_tokens: 5,
                output_tokens: 7,
                cached_input_tokens: 2,
                cache_write_tokens: 0,
            })
        );
        let mut a = UsageCapture::new(Shape::Anthropic);
        a.observe(&SseEvent::new(
            Some("message_start"),
            r#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#,
        ));
        a.observe(&SseEvent::new(
            Some("content_block_delta"),
            r#"{"usage":{"output_tokens":99}}"#,
        ));
        a.observe(&SseEvent::new(
            Some("message_delta"),
            r#"{"type":"message_delta","usage":{"output_tokens":4}}"#,
        ));
        assert_eq!(
            a.usage(),
            Some(Usage {
                input_tokens: 9,
                output_tokens: 4,
                cached_input_tokens: 0,
                cache_write_tokens: 0,
            })
        );
    }
}
