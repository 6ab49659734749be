//! OpenAI chat completion chunks → Anthropic stream events.

use super::{DONE, Event, TRUNCATED, parse};
use crate::error::{Failure, openai_error, openai_to_anthropic_error};
use crate::mapping::{Usage, stop_reason};
use serde_json::{Value, json};

/// The content block currently open on the Anthropic side. Anthropic blocks
/// may not interleave, so at most one is open at a time.
#[derive(Debug)]
enum Open {
    Text { index: u64 },
    Tool { index: u64, call: u64, id: String },
}

/// Translates one OpenAI stream for an Anthropic client.
#[derive(Debug)]
pub struct OpenAiToAnthropic {
    model: String,
    /// `message_start` has been sent.
    started: bool,
    /// Index of the next Anthropic content block.
    next_index: u64,
    open: Option<Open>,
    /// OpenAI tool call indexes whose blocks have been opened.
    seen_calls: Vec<u64>,
    /// Set by the chunk carrying `finish_reason`.
    stop_reason: Option<&'static str>,
    /// The model sent refusal text, which Anthropic reports as a stop
    /// reason while OpenAI usually still finishes with `stop`.
    refused: bool,
    usage: Usage,
    /// `message_stop` or an error has been sent; nothing may follow.
    ended: bool,
}

impl OpenAiToAnthropic {
    pub fn new(client_model: &str) -> Self {
        Self {
            model: client_model.into(),
            started: false,
            next_index: 0,
            open: None,
            seen_calls: Vec::new(),
            stop_reason: None,
            refused: false,
            usage: Usage::default(),
            ended: false,
        }
    }

    /// The events one OpenAI chunk (or `[DONE]`) turns into.
    pub fn push(&mut self, event: &Event) -> Result<Vec<Event>, Failure> {
        let mut out = Vec::new();
        if self.ended {
            return Ok(out);
        }
        if event.data.trim() == DONE {
            self.end(&mut out);
            return Ok(out);
        }
        let chunk = parse(event)?;
        if let Some(error) = openai_error(&chunk) {
            self.fail(error, &mut out);
            return Ok(out);
        }
        self.ensure_started(chunk["id"].as_str(), &mut out);
        if chunk["usage"].is_object() {
            self.usage = Usage::from_openai(&chunk["usage"]);
        }
        // Requests are refused when n > 1, so only choice 0 exists.
        if let Some(choice) = chunk["choices"].get(0) {
            self.choice(choice, &mut out)?;
        }
        Ok(out)
    }

    /// What is still owed once the provider stream has ended without
    /// `[DONE]`: the end of the message if its finish reason had arrived,
    /// an error otherwise, so that a cut-off answer is never mistaken for a
    /// whole one.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if self.stop_reason.is_some() {
            self.end(&mut out);
        } else {
            self.fail(
                &json!({"type": "server_error", "message": TRUNCATED}),
                &mut out,
            );
        }
        out
    }

    fn ensure_started(&mut self, chunk_id: Option<&str>, out: &mut Vec<Event>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(Event::anthropic(&json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_{}", chunk_id.unwrap_or("unknown")),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                // OpenAI reports usage only at the end; it goes out in
                // `message_delta`.
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        })));
    }

    fn choice(&mut self, choice: &Value, out: &mut Vec<Event>) -> Result<(), Failure> {
        let delta = &choice["delta"];
        if let Some(text) = non_empty(&delta["content"]) {
            self.text(text, out);
        }
        if let Some(refusal) = non_empty(&delta["refusal"]) {
            self.refused = true;
            self.text(refusal, out);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.tool_call(call, out)?;
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.close_block(out);
            self.stop_reason = Some(if self.refused {
                "refusal"
            } else {
                stop_reason(reason)
            });
        }
        Ok(())
    }

    fn text(&mut self, text: &str, out: &mut Vec<Event>) {
        let index = match self.open {
            Some(Open::Text { index }) => index,
            _ => {
                let index = self.open_block(json!({"type": "text", "text": ""}), out);
                self.open = Some(Open::Text { index });
                index
            }
        };
        out.push(Event::anthropic(&json!({
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        })));
    }

    /// A tool call fragment. A new OpenAI index (or a new id, as some
    /// compatible servers reuse index 0) opens a new `tool_use` block.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<Event>) -> Result<(), Failure> {
        let call_index = call["index"].as_u64().unwrap_or(0);
        let id = call["id"].as_str().filter(|id| !id.is_empty());
        let index = match &self.open {
            Some(Open::Tool {
                index,
                call,
                id: open_id,
            }) if *call == call_index && id.is_none_or(|id| id == open_id) => *index,
            _ => self.start_tool(call_index, id, &call["function"]["name"], out)?,
        };
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        if !arguments.is_empty() {
            out.push(Event::anthropic(&json!({
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": arguments},
            })));
        }
        Ok(())
    }

    fn start_tool(
        &mut self,
        call: u64,
        id: Option<&str>,
        name: &Value,
        out: &mut Vec<Event>,
    ) -> Result<u64, Failure> {
        // A fragment without an id for a call already closed would need
        // its block reopened, which Anthropic streams cannot express.
        if id.is_none() && self.seen_calls.contains(&call) {
            return Err(Failure::bad_upstream(format!(
                "OpenAI stream interleaves tool call {call} with other content"
            )));
        }
        self.seen_calls.push(call);
        let id = id.map_or_else(|| format!("call_{call}"), str::to_owned);
        let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
        let index = self.open_block(block, out);
        self.open = Some(Open::Tool { index, call, id });
        Ok(index)
    }

    /// Closes the open block and starts `block` at the next index.
    fn open_block(&mut self, block: Value, out: &mut Vec<Event>) -> u64 {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        out.push(Event::anthropic(&json!({
            "type": "content_block_start",
            "index": index,
            "content_block": block,
        })));
        index
    }

    fn close_block(&mut self, out: &mut Vec<Event>) {
        let index = match self.open.take() {
            Some(Open::Text { index } | Open::Tool { index, .. }) => index,
            None => return,
        };
        out.push(Event::anthropic(
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }

    /// `message_delta` with the stop reason and the usage, then
    /// `message_stop`.
    fn end(&mut self, out: &mut Vec<Event>) {
        self.ensure_started(None, out);
        self.close_block(out);
        out.push(Event::anthropic(&json!({
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": self.usage.to_anthropic(),
        })));
        out.push(Event::anthropic(&json!({"type": "message_stop"})));
        self.ended = true;
    }

    /// An `error` event, after which the stream closes.
    fn fail(&mut self, error: &Value, out: &mut Vec<Event>) {
        out.push(Event::anthropic(&openai_to_anthropic_error(error)));
        self.ended = true;
    }
}

fn non_empty(text: &Value) -> Option<&str> {
    text.as_str().filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(delta: Value) -> Event {
        Event::openai(
            &json!({"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]}),
        )
    }

    fn types(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.event.as_deref().unwrap()).collect()
    }

    #[test]
    fn reused_index_with_new_id_opens_a_new_block() {
        let mut t = OpenAiToAnthropic::new("m");
        let first = json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]});
        let second = json!({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]});
        t.push(&chunk(first)).unwrap();
        let out = t.push(&chunk(second)).unwrap();
        assert_eq!(
            types(&out),
            [
                "content_block_stop",
                "content_block_start",
                "content_block_delta"
            ]
        );
    }

    #[test]
    fn reopening_a_closed_call_is_a_bad_upstream() {
        let mut t = OpenAiToAnthropic::new("m");
        t.push(&chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}),
        ))
        .unwrap();
        t.push(&chunk(json!({"content": "x"}))).unwrap();
        let late = chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}));
        assert_eq!(t.push(&late).unwrap_err().status, 502);
    }

    #[test]
    fn refusal_text_makes_a_refusal_stop() {
        let mut t = OpenAiToAnthropic::new("m");
        t.push(&chunk(json!({"refusal": "I can't help with that."})))
            .unwrap();
        let finish =
            json!({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        t.push(&Event::openai(&finish)).unwrap();
        let out = t.push(&Event::done()).unwrap();
        let delta: Value = serde_json::from_str(&out[0].data).unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "refusal");
    }

    #[test]
    fn done_without_chunks_still_makes_a_whole_message() {
        let mut t = OpenAiToAnthropic::new("m");
        let out = t.push(&Event::done()).unwrap();
        assert_eq!(
            types(&out),
            ["message_start", "message_delta", "message_stop"]
        );
        assert!(t.finish().is_empty());
    }
}
