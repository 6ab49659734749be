//! Scores finished exchanges with cheap heuristics on the assistant's answer
//! (rubric `heuristic`, version 2).
//!
//! The answer is read from the response body: OpenAI `chat.completion`
//! `choices[0].message.content` and the choices' `tool_calls`, or the
//! Anthropic message's `text` blocks joined and its `tool_use` blocks. For
//! a stream the host's assembled text is used, and truncation and tool
//! calls are read from the events.
//!
//! The score starts at 1.0 and is multiplied by 0.4 for an empty answer (no
//! text and no valid tool call), 0.5 for a refusal ("I can't", "I cannot",
//! "I'm unable", "I am unable", "I won't" opening the answer or a sentence),
//! 0.8 for a truncated one (`finish_reason` `length` / `stop_reason`
//! `max_tokens`), 0.3 when any tool call is invalid (arguments not a JSON
//! object, or a tool the request did not offer) and 0.2 when an OpenAI
//! request's `response_format` asked for JSON and the text is not; an HTTP
//! status of 400 or more scores 0. The signals, in their fixed order, are
//! listed at [`score::SIGNALS`].
//!
//! The scoring lives in [`score`] and [`stream`], testable natively; the
//! `component` module only adapts the WIT types to it.

pub mod score;
pub mod stream;

#[cfg(test)]
mod fixtures;

// The WIT export symbols are not valid in a native linker version script;
// the glue exists for components only (see translator-openai-anthropic).
#[cfg(target_arch = "wasm32")]
mod component;
