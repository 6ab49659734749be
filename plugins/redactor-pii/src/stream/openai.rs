//! OpenAI Chat Completions chunks.
//!
//! Text streams: each choice's `delta.content`, and each tool call's
//! `delta.tool_calls[].function.arguments` (JSON text, so originals go
//! back JSON-escaped). Held text is released by the next delta of its
//! stream; by the chunk that carries the choice's `finish_reason` (in its
//! delta when it has the field, else in a synthetic chunk just before it);
//! before `[DONE]`, before an `error` chunk, and at the end.

use super::Event;
use super::carry::Carry;
use super::may_start_placeholder;
use crate::restore::Escape;
use crate::vault::Vault;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A text stream within a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Content,
    Tool(u64),
}

#[derive(Default)]
pub struct OpenAiStream {
    /// Only streams holding something are here.
    carries: BTreeMap<(u64, Slot), Carry>,
    /// `id`, `object`, `created`, `model` of the last chunk parsed, for
    /// synthetic chunks.
    meta: Map<String, Value>,
}

impl OpenAiStream {
    pub fn push(&mut self, event: Event, vault: &Vault) -> Vec<Event> {
        if event.data.trim() == "[DONE]" {
            let mut out = self.flush_all();
            out.push(event);
            return out;
        }
        if self.carries.is_empty() && !may_start_placeholder(&event.data) {
            return vec![event];
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(&event.data) else {
            return vec![event];
        };
        self.remember_meta(&chunk);
        let mut out = Vec::new();
        if chunk.contains_key("error") {
            out = self.flush_all();
        }
        let mut changed = false;
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for (pos, choice) in choices.iter_mut().enumerate() {
                let index = choice
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64);
                let last = choice.get("finish_reason").is_some_and(|r| !r.is_null());
                if let Some(delta) = choice.get_mut("delta") {
                    changed |= self.delta(index, delta, last, vault);
                }
                if last {
                    out.extend(self.flush_choice(index));
                }
            }
        }
        out.push(if changed {
            Event {
                event: event.event,
                data: Value::Object(chunk).to_string(),
            }
        } else {
            event
        });
        out
    }

    /// Every held text, as synthetic chunks.
    pub fn flush_all(&mut self) -> Vec<Event> {
        let carries = std::mem::take(&mut self.carries);
        carries
            .into_iter()
            .map(|((index, slot), mut carry)| self.synthetic(index, slot, carry.take()))
            .collect()
    }

    fn remember_meta(&mut self, chunk: &Map<String, Value>) {
        for key in ["id", "object", "created", "model"] {
            if let Some(v) = chunk.get(key) {
                self.meta.insert(key.to_owned(), v.clone());
            }
        }
    }

    /// Restores one choice's delta; `last`: the choice finishes in this
    /// chunk, so nothing of what is in it may be held back.
    fn delta(&mut self, index: u64, delta: &mut Value, last: bool, vault: &Vault) -> bool {
        let mut changed = false;
        if let Some(Value::String(text)) = delta.get_mut("content") {
            changed |= self.feed((index, Slot::Content), Escape::Plain, text, last, vault);
        }
        if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
            for (pos, call) in calls.iter_mut().enumerate() {
                let tool = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64);
                let args = call
                    .get_mut("function")
                    .and_then(|f| f.get_mut("arguments"));
                if let Some(Value::String(text)) = args {
                    let key = (index, Slot::Tool(tool));
                    changed |= self.feed(key, Escape::Json, text, last, vault);
                }
            }
        }
        changed
    }

    fn feed(
        &mut self,
        key: (u64, Slot),
        escape: Escape,
        text: &mut String,
        last: bool,
        vault: &Vault,
    ) -> bool {
        let mut carry = self
            .carries
            .remove(&key)
            .unwrap_or_else(|| Carry::new(escape));
        let out = if last {
            carry.feed_last(text, vault)
        } else {
            carry.feed(text, vault)
        };
        if carry.is_holding() {
            self.carries.insert(key, carry);
        }
        let changed = out != *text;
        *text = out;
        changed
    }

    /// The held text of one choice's streams that this chunk did not
    /// release, as synthetic chunks.
    fn flush_choice(&mut self, index: u64) -> Vec<Event> {
        let keys: Vec<(u64, Slot)> = self
            .carries
            .range((index, Slot::Content)..=(index, Slot::Tool(u64::MAX)))
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|key| {
                let mut carry = self.carries.remove(&key)?;
                Some(self.synthetic(key.0, key.1, carry.take()))
            })
            .collect()
    }

    fn synthetic(&self, index: u64, slot: Slot, text: String) -> Event {
        let delta = match slot {
            Slot::Content => json!({"content": text}),
            Slot::Tool(tool) => {
                json!({"tool_calls": [{"index": tool, "function": {"arguments": text}}]})
            }
        };
        let mut chunk = self.meta.clone();
        chunk.insert(
            "choices".into(),
            json!([{"index": index, "delta": delta, "finish_reason": null}]),
        );
        Event {
            event: None,
            data: Value::Object(chunk).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_state(r#"{"[EMAIL_1]":"a@x.io"}"#).unwrap()
    }

    fn chunk(delta: Value, finish: Value) -> Event {
        Event {
            event: None,
            data: json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string(),
        }
    }

    fn content(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn finish_reason_releases_into_its_own_delta_or_a_synthetic_chunk() {
        let v = vault();
        let mut s = OpenAiStream::default();
        assert_eq!(
            content(&s.push(chunk(json!({"content": "to [EMAIL"}), Value::Null), &v)),
            ["to "]
        );
        assert_eq!(
            content(&s.push(chunk(json!({"content": "_1] [EM"}), json!("stop")), &v)),
            ["a@x.io [EM"]
        );
        assert_eq!(
            content(&s.push(chunk(json!({"content": "[EMAIL_"}), Value::Null), &v)),
            [""]
        );
        let out = s.push(chunk(json!({}), json!("stop")), &v);
        assert_eq!(content(&out), ["[EMAIL_", "-"]);
        let synthetic: Value = serde_json::from_str(&out[0].data).unwrap();
        assert_eq!(synthetic["id"], "c1");
        assert_eq!(synthetic["created"], 7);
        assert_eq!(synthetic["choices"][0]["finish_reason"], Value::Null);
    }

    #[test]
    fn unrelated_events_pass_unchanged_without_releasing() {
        let v = vault();
        let mut s = OpenAiStream::default();
        s.push(chunk(json!({"content": "[EM"}), Value::Null), &v);
        let odd = Event {
            event: None,
            data: "not json".into(),
        };
        assert_eq!(s.push(odd.clone(), &v), [odd]);
        let usage = Event {
            event: None,
            data: r#"{"id":"c1","choices":[],"usage":{"total_tokens":3}}"#.into(),
        };
        assert_eq!(s.push(usage.clone(), &v), [usage]);
        let done = Event {
            event: None,
            data: "[DONE]".into(),
        };
        let out = s.push(done.clone(), &v);
        assert_eq!(content(&out)[0], "[EM");
        assert_eq!(out[1], done);
        assert!(s.flush_all().is_empty());
    }
}
