//! Anthropic Messages events.
//!
//! Text streams: each content block's deltas, keyed by `index`:
//! `text_delta.text` and `input_json_delta.partial_json` (JSON text, so
//! originals go back JSON-escaped). Thinking deltas pass unchanged: the
//! thinking is signed (see `walk::Site::is_thinking`). Held text is released by the next delta of its block, or
//! in a synthetic `content_block_delta` just before the block's
//! `content_block_stop`; before `message_delta`, `message_stop` or `error`
//! (a block left open), and at the end. `message_start` and
//! `content_block_start` carry whole values and are restored in place.

use super::Event;
use super::carry::Carry;
use super::may_start_placeholder;
use crate::restore::{Escape, restore_value};
use crate::vault::Vault;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The kind of a block's deltas: its `delta.type`, the field with the
/// text, and how originals are written into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delta {
    Text,
    InputJson,
}

impl Delta {
    fn from_type(t: &str) -> Option<Delta> {
        match t {
            "text_delta" => Some(Delta::Text),
            "input_json_delta" => Some(Delta::InputJson),
            _ => None,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Delta::Text => "text_delta",
            Delta::InputJson => "input_json_delta",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Delta::Text => "text",
            Delta::InputJson => "partial_json",
        }
    }

    fn escape(self) -> Escape {
        match self {
            Delta::InputJson => Escape::Json,
            Delta::Text => Escape::Plain,
        }
    }
}

#[derive(Default)]
pub struct AnthropicStream {
    /// Only blocks holding something are here.
    carries: BTreeMap<u64, (Delta, Carry)>,
}

impl AnthropicStream {
    pub fn push(&mut self, event: Event, vault: &Vault) -> Vec<Event> {
        if self.carries.is_empty() && !may_start_placeholder(&event.data) {
            return vec![event];
        }
        let Ok(mut data @ Value::Object(_)) = serde_json::from_str::<Value>(&event.data) else {
            return vec![event];
        };
        let kind = match data.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => event.event.clone().unwrap_or_default(),
        };
        let index = data.get("index").and_then(Value::as_u64);
        let (mut out, changed) = match (kind.as_str(), index) {
            ("content_block_delta", Some(index)) => self.delta(index, &mut data, vault),
            ("content_block_stop", Some(index)) => (self.flush_block(index), false),
            ("message_delta" | "message_stop" | "error", _) => (self.flush_all(), false),
            ("message_start" | "content_block_start", _) => {
                (Vec::new(), restore_value(&mut data, vault))
            }
            _ => (Vec::new(), false),
        };
        out.push(if changed {
            Event {
                event: event.event,
                data: data.to_string(),
            }
        } else {
            event
        });
        out
    }

    /// Every held text, as synthetic deltas, in block order.
    pub fn flush_all(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.carries)
            .into_iter()
            .map(|(index, (kind, mut carry))| synthetic(index, kind, carry.take()))
            .collect()
    }

    fn flush_block(&mut self, index: u64) -> Vec<Event> {
        self.carries
            .remove(&index)
            .map(|(kind, mut carry)| synthetic(index, kind, carry.take()))
            .into_iter()
            .collect()
    }

    /// Restores one delta; returns the events to send before it and
    /// whether it changed.
    fn delta(&mut self, index: u64, data: &mut Value, vault: &Vault) -> (Vec<Event>, bool) {
        let Some(delta) = data.get_mut("delta") else {
            return (Vec::new(), false);
        };
        let Some(kind) = delta
            .get("type")
            .and_then(Value::as_str)
            .and_then(Delta::from_type)
        else {
            return (Vec::new(), false);
        };
        let Some(Value::String(text)) = delta.get_mut(kind.field()) else {
            return (Vec::new(), false);
        };
        // A block does not change its delta type; if one did, what it held
        // belongs to the old type and goes out first.
        let mut before = Vec::new();
        let mut carry = match self.carries.remove(&index) {
            Some((held_kind, carry)) if held_kind == kind => carry,
            Some((held_kind, mut carry)) => {
                before.push(synthetic(index, held_kind, carry.take()));
                Carry::new(kind.escape())
            }
            None => Carry::new(kind.escape()),
        };
        let out = carry.feed(text, vault);
        if carry.is_holding() {
            self.carries.insert(index, (kind, carry));
        }
        let changed = out != *text;
        *text = out;
        (before, changed)
    }
}

fn synthetic(index: u64, kind: Delta, text: String) -> Event {
    let mut delta = serde_json::Map::new();
    delta.insert("type".into(), kind.type_name().into());
    delta.insert(kind.field().into(), text.into());
    Event {
        event: Some("content_block_delta".into()),
        data: json!({"type": "content_block_delta", "index": index, "delta": delta}).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_state(r#"{"[EMAIL_1]":"a@x.io"}"#).unwrap()
    }

    fn ev(name: &str, data: Value) -> Event {
        Event {
            event: Some(name.into()),
            data: data.to_string(),
        }
    }

    fn text_delta(index: u64, text: &str) -> Event {
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index,
                   "delta": {"type": "text_delta", "text": text}}),
        )
    }

    #[test]
    fn block_stop_releases_with_a_synthetic_delta_first() {
        let v = vault();
        let mut s = AnthropicStream::default();
        let out = s.push(text_delta(0, "to [EMAIL_"), &v);
        assert!(out[0].data.contains(r#""text":"to ""#));
        let ping = ev("ping", json!({"type": "ping"}));
        assert_eq!(s.push(ping.clone(), &v), [ping]);
        let stop = ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        );
        let out = s.push(stop.clone(), &v);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].event.as_deref(), Some("content_block_delta"));
        let d: Value = serde_json::from_str(&out[0].data).unwrap();
        assert_eq!(
            d,
            json!({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": "[EMAIL_"}})
        );
        assert_eq!(out[1], stop);
    }

    #[test]
    fn starts_are_restored_in_place() {
        let v = vault();
        let mut s = AnthropicStream::default();
        let start = ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
                   "content_block": {"type": "tool_use", "id": "t", "name": "mail", "input": {"to": "[EMAIL_1]"}}}),
        );
        let out = s.push(start, &v);
        let d: Value = serde_json::from_str(&out[0].data).unwrap();
        assert_eq!(d["content_block"]["input"]["to"], "a@x.io");
    }
}
