//! Anthropic stream events → OpenAI chat completion chunks.

use super::{Event, TRUNCATED, parse};
use crate::error::{Failure, anthropic_to_openai_error};
use crate::mapping::{Usage, finish_reason};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Translates one Anthropic stream for an OpenAI client.
#[derive(Debug)]
pub struct AnthropicToOpenAi {
    /// `chatcmpl-<Anthropic message id>`, shared by every chunk.
    id: String,
    model: String,
    created: u64,
    /// Whether the client asked for the final usage chunk.
    include_usage: bool,
    /// The role chunk has been sent.
    started: bool,
    /// Anthropic block index → OpenAI tool call index. OpenAI numbers tool
    /// calls 0, 1, … while Anthropic numbers every block.
    tool_slots: HashMap<u64, u64>,
    usage: Usage,
    /// The `finish_reason` chunk has been sent.
    finished: bool,
    /// `[DONE]` or an error has been sent; nothing may follow.
    ended: bool,
}

impl AnthropicToOpenAi {
    /// `created` is the Unix time in seconds to stamp on every chunk.
    pub fn new(client_model: &str, created: u64, include_usage: bool) -> Self {
        Self {
            id: "chatcmpl-unknown".into(),
            model: client_model.into(),
            created,
            include_usage,
            started: false,
            tool_slots: HashMap::new(),
            usage: Usage::default(),
            finished: false,
            ended: false,
        }
    }

    /// The chunks one Anthropic event turns into.
    pub fn push(&mut self, event: &Event) -> Result<Vec<Event>, Failure> {
        if self.ended {
            return Ok(Vec::new());
        }
        let data = parse(event)?;
        let kind = data["type"].as_str().or(event.event.as_deref());
        let mut out = Vec::new();
        match kind.unwrap_or_default() {
            "message_start" => self.message_start(&data["message"], &mut out),
            "content_block_start" => {
                self.block_start(&data["index"], &data["content_block"], &mut out)
            }
            "content_block_delta" => self.block_delta(&data["index"], &data["delta"], &mut out),
            "message_delta" => self.message_delta(&data, &mut out),
            "message_stop" => self.end(&mut out),
            "error" => self.fail(&data["error"], &mut out),
            // ping, content_block_stop and unknown future events carry
            // nothing an OpenAI client can use.
            _ => {}
        }
        Ok(out)
    }

    /// What is still owed once the provider stream has ended: the end of
    /// the stream if the answer was complete, an error otherwise, so that
    /// a cut-off answer is never mistaken for a whole one.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if self.finished {
            self.end(&mut out);
        } else {
            self.fail(
                &json!({"type": "api_error", "message": TRUNCATED}),
                &mut out,
            );
        }
        out
    }

    fn message_start(&mut self, message: &Value, out: &mut Vec<Event>) {
        if let Some(id) = message["id"].as_str() {
            self.id = format!("chatcmpl-{id}");
        }
        self.usage.update_from_anthropic(&message["usage"]);
        self.ensure_started(out);
    }

    /// Sends the role chunk if it has not gone out yet. The role is sent
    /// once only: the OpenAI SDK would concatenate a repeated one.
    fn ensure_started(&mut self, out: &mut Vec<Event>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn block_start(&mut self, index: &Value, block: &Value, out: &mut Vec<Event>) {
        self.ensure_started(out);
        match block["type"].as_str() {
            Some("text") => self.content(&block["text"], out),
            Some("tool_use") => {
                let slot = self.tool_slots.len() as u64;
                self.tool_slots
                    .insert(index.as_u64().unwrap_or(u64::MAX), slot);
                let call = json!({
                    "index": slot,
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": ""},
                });
                out.push(self.chunk(json!({"tool_calls": [call]}), None));
            }
            // Thinking has no OpenAI field.
            _ => {}
        }
    }

    fn block_delta(&mut self, index: &Value, delta: &Value, out: &mut Vec<Event>) {
        self.ensure_started(out);
        match delta["type"].as_str() {
            Some("text_delta") => self.content(&delta["text"], out),
            Some("input_json_delta") => {
                let partial = delta["partial_json"].as_str().unwrap_or_default();
                let slot = index.as_u64().and_then(|i| self.tool_slots.get(&i));
                if let (false, Some(slot)) = (partial.is_empty(), slot) {
                    let call = json!({"index": slot, "function": {"arguments": partial}});
                    out.push(self.chunk(json!({"tool_calls": [call]}), None));
                }
            }
            // thinking, signature and citation deltas have no OpenAI field.
            _ => {}
        }
    }

    fn content(&self, text: &Value, out: &mut Vec<Event>) {
        if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
            out.push(self.chunk(json!({"content": text}), None));
        }
    }

    fn message_delta(&mut self, data: &Value, out: &mut Vec<Event>) {
        self.usage.update_from_anthropic(&data["usage"]);
        if self.finished {
            return;
        }
        self.ensure_started(out);
        let reason = data["delta"]["stop_reason"].as_str().unwrap_or("end_turn");
        self.finished = true;
        out.push(self.chunk(json!({}), Some(finish_reason(reason))));
    }

    /// The close of the stream: the finish chunk if the provider never sent
    /// one, the usage chunk if asked for, then `[DONE]`.
    fn end(&mut self, out: &mut Vec<Event>) {
        if !self.finished {
            self.message_delta(&json!({"delta": {"stop_reason": "end_turn"}}), out);
        }
        if self.include_usage {
            out.push(Event::openai(&json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage.to_openai(),
            })));
        }
        out.push(Event::done());
        self.ended = true;
    }

    /// An error chunk, after which the stream closes without `[DONE]`.
    fn fail(&mut self, error: &Value, out: &mut Vec<Event>) {
        out.push(Event::openai(&anthropic_to_openai_error(error)));
        self.ended = true;
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Event {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        });
        // With `include_usage`, every chunk but the last carries usage null.
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        Event::openai(&chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: Value) -> Event {
        Event::anthropic(&data)
    }

    fn datas(events: &[Event]) -> Vec<Value> {
        events
            .iter()
            .map(|e| serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone())))
            .collect()
    }

    #[test]
    fn events_after_the_end_are_ignored() {
        let mut t = AnthropicToOpenAi::new("m", 1, false);
        t.push(&event(json!({"type": "message_stop"}))).unwrap();
        assert!(t.push(&event(json!({"type": "ping"}))).unwrap().is_empty());
        assert!(t.finish().is_empty());
    }

    #[test]
    fn empty_json_fragments_are_skipped() {
        let mut t = AnthropicToOpenAi::new("m", 1, false);
        t.push(&event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}})))
            .unwrap();
        let out = t
            .push(&event(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ""}})))
            .unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn bad_json_is_a_bad_upstream() {
        let mut t = AnthropicToOpenAi::new("m", 1, false);
        let bad = Event {
            event: Some("message_start".into()),
            data: "{".into(),
        };
        assert_eq!(t.push(&bad).unwrap_err().status, 502);
    }

    #[test]
    fn empty_stream_ends_with_an_error() {
        let mut t = AnthropicToOpenAi::new("m", 1, true);
        let out = datas(&t.finish());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["error"]["type"], "server_error");
    }
}
