//! Redaction modes and the field rules they apply to a serialized event.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::events::Event;

/// Fields naming who (a key, user, team, workspace, quota identity) or
/// which request or call an event is about. `pseudonymize` and
/// `redact_private` replace their string values with [`pseudonym`]s
/// wherever they occur in a payload, nested objects and arrays included.
pub const IDENTITY_FIELDS: &[&str] = &[
    "key_id",
    "new_key_id",
    "rotated_from",
    "gateway_key_id",
    "user_id",
    "team_id",
    "workspace",
    "identity",
    "request_id",
    "subject_id",
    "call_id",
];

/// Free text that may quote what people wrote or read (an evaluator's
/// error, a plugin's reason). `redact_private` replaces non-null values
/// with [`SENTINEL`] wherever they occur in a payload.
pub const PRIVATE_FIELDS: &[&str] = &["error_message", "reason", "error"];

/// What a private text field becomes under `redact_private`.
pub const SENTINEL: &str = "[redacted]";

const PREFIX: &str = "redacted_";
const HEX_LEN: usize = 12;

/// How an export treats what events say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Events as stored.
    #[value(name = "passthrough")]
    Passthrough,
    /// Identities become `redacted_<sha256[:12]>`.
    #[value(name = "pseudonymize")]
    Pseudonymize,
    /// `pseudonymize`, and private text becomes a sentinel.
    #[value(name = "redact_private")]
    RedactPrivate,
    /// No events: one summary of counts and sums.
    #[value(name = "aggregate_only")]
    AggregateOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Passthrough => "passthrough",
            Mode::Pseudonymize => "pseudonymize",
            Mode::RedactPrivate => "redact_private",
            Mode::AggregateOnly => "aggregate_only",
        }
    }
}

/// Whether `value` already is a pseudonym: `redacted_` and 12 lowercase
/// hex digits.
pub fn is_pseudonym(value: &str) -> bool {
    value.strip_prefix(PREFIX).is_some_and(|h| {
        h.len() == HEX_LEN && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// `redacted_` and the first 12 hex digits of sha256(salt ‖ value). A
/// pseudonym is returned unchanged, so pseudonymizing twice (an export of
/// rows a GDPR forget already pseudonymized) changes nothing.
pub fn pseudonym(value: &str, salt: &[u8]) -> String {
    if is_pseudonym(value) {
        return value.to_owned();
    }
    let mut h = Sha256::new();
    h.update(salt);
    h.update(value.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(PREFIX.len() + HEX_LEN);
    out.push_str(PREFIX);
    out.push_str(&hex::encode(&digest[..HEX_LEN / 2]));
    out
}

/// A serialized event (`{"id":…,"type":…,"payload":{…}}`) under `mode`.
/// Only the payload is rewritten; `passthrough` returns the event as is.
/// `aggregate_only` has no per-event form and is treated as the strictest
/// per-event mode, `redact_private`.
pub fn redact(mut event: Value, mode: Mode, salt: &[u8]) -> Value {
    let private = match mode {
        Mode::Passthrough => return event,
        Mode::Pseudonymize => false,
        Mode::RedactPrivate | Mode::AggregateOnly => true,
    };
    if let Some(payload) = event.get_mut("payload") {
        walk(payload, private, salt);
    }
    event
}

/// `ev` serialized, then redacted under `mode`; `ev` is not changed.
pub fn redact_event(ev: &Event, mode: Mode, salt: &[u8]) -> Result<Value, String> {
    let v = serde_json::to_value(ev).map_err(|e| format!("event {}: {e}", ev.id))?;
    Ok(redact(v, mode, salt))
}

fn walk(v: &mut Value, private: bool, salt: &[u8]) {
    match v {
        Value::Object(map) => {
            for (k, field) in map.iter_mut() {
                let k = k.as_str();
                if IDENTITY_FIELDS.contains(&k)
                    && let Value::String(s) = field
                {
                    *s = pseudonym(s, salt);
                } else if private && PRIVATE_FIELDS.contains(&k) && !field.is_null() {
                    *field = Value::String(SENTINEL.to_owned());
                } else {
                    walk(field, private, salt);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, private, salt)),
        _ => {}
    }
}
