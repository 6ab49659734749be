//! Mappings shared by whole responses and streams: stop reasons and token
//! usage (WIRE.md §8).

use serde_json::{Value, json};

/// Anthropic `stop_reason` → OpenAI `finish_reason`. Unknown (newer) reasons
/// read as a normal stop rather than failing an otherwise good answer.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Token counts in Anthropic's terms, where `input` is only the uncached
/// part of the prompt.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
    pub output: u64,
}

impl Usage {
    /// Reads an Anthropic `usage` object; absent fields count as 0.
    pub fn from_anthropic(usage: &Value) -> Self {
        let mut parsed = Self::default();
        parsed.update_from_anthropic(usage);
        parsed
    }

    /// Overwrites the fields `usage` carries. `message_delta.usage` is
    /// cumulative, so a present field replaces the earlier value.
    pub fn update_from_anthropic(&mut self, usage: &Value) {
        let fields = [
            ("input_tokens", &mut self.input),
            ("cache_creation_input_tokens", &mut self.cache_creation),
            ("cache_read_input_tokens", &mut self.cache_read),
            ("output_tokens", &mut self.output),
        ];
        for (name, slot) in fields {
            if let Some(n) = usage[name].as_u64() {
                *slot = n;
            }
        }
    }

    /// Reads an OpenAI `usage` object. OpenAI's `prompt_tokens` includes
    /// cached and cache-written tokens, so both are taken out of `input`.
    pub fn from_openai(usage: &Value) -> Self {
        let details = &usage["prompt_tokens_details"];
        let prompt = usage["prompt_tokens"].as_u64().unwrap_or(0);
        let cache_read = details["cached_tokens"].as_u64().unwrap_or(0);
        let cache_creation = details["cache_write_tokens"].as_u64().unwrap_or(0);
        Self {
            input: prompt.saturating_sub(cache_read + cache_creation),
            cache_creation,
            cache_read,
            output: usage["completion_tokens"].as_u64().unwrap_or(0),
        }
    }

    /// The whole prompt, cached parts included.
    pub fn prompt(&self) -> u64 {
        self.input + self.cache_creation + self.cache_read
    }

    pub fn to_openai(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt(),
            "completion_tokens": self.output,
            "total_tokens": self.prompt() + self.output,
            "prompt_tokens_details": {
                "cached_tokens": self.cache_read,
                "cache_write_tokens": self.cache_creation,
            },
        })
    }

    pub fn to_anthropic(&self) -> Value {
        json!({
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output,
        })
    }
}

/// OpenAI tool-call `arguments` (JSON text) as an Anthropic `input` object.
/// Calls of tools without parameters may carry empty arguments; anything
/// that is not a JSON object is refused (`None`).
pub fn tool_arguments(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(json!({}));
    }
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_map_both_ways() {
        for (a, o) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(a), o);
            assert_eq!(stop_reason(o), a);
        }
        assert_eq!(finish_reason("stop_sequence"), "stop");
        assert_eq!(finish_reason("pause_turn"), "stop");
        assert_eq!(finish_reason("model_context_window_exceeded"), "length");
        assert_eq!(stop_reason("function_call"), "tool_use");
    }

    #[test]
    fn usage_round_trips_with_cache() {
        let a = json!({"input_tokens": 12, "cache_creation_input_tokens": 100,
                       "cache_read_input_tokens": 1800, "output_tokens": 45});
        let usage = Usage::from_anthropic(&a);
        let o = usage.to_openai();
        assert_eq!(o["prompt_tokens"], 1912);
        assert_eq!(o["total_tokens"], 1957);
        assert_eq!(Usage::from_openai(&o), usage);
        assert_eq!(usage.to_anthropic(), a);
    }

    #[test]
    fn delta_usage_overwrites_only_present_fields() {
        let mut usage = Usage::from_anthropic(&json!({"input_tokens": 472, "output_tokens": 1}));
        usage.update_from_anthropic(&json!({"output_tokens": 41}));
        assert_eq!((usage.input, usage.output), (472, 41));
    }

    #[test]
    fn openai_usage_never_goes_negative() {
        let o = json!({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}});
        assert_eq!(Usage::from_openai(&o).input, 0);
    }
}
