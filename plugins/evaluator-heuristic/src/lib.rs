//! Scores finished exchanges with cheap heuristics on the assistant's answer.
//!
//! The answer is read from the response body: OpenAI `chat.completion`
//! `choices[0].message.content`, or Anthropic message `content[*].text`
//! joined. The score starts at 1.0 and is multiplied by 0.4 for an empty
//! answer, 0.5 for a refusal ("I can't", "I cannot", "I'm unable", "I am
//! unable", "I won't" opening the answer or a sentence) and 0.8 for a
//! truncated one (`finish_reason` `length` / `stop_reason` `max_tokens`); an
//! HTTP status of 400 or more scores 0.
//!
//! The scoring lives in [`score`], testable natively; the `component`
//! module only adapts the WIT types to it.

pub mod score;

// The WIT export symbols are not valid in a native linker version script;
// the glue exists for components only (see translator-openai-anthropic).
#[cfg(target_arch = "wasm32")]
mod component;
