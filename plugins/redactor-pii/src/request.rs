//! Redacting a request body in one of the three modes.

use crate::config::{Config, Mode};
use crate::kind::{Kind, KindSet};
use crate::placeholder;
use crate::pseudonyms::Pseudonyms;
use crate::scan;
use crate::walk::{self, Site};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// The request to send instead, and the state for the response side.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Redacted {
    /// `None`: nothing matched, the original bytes go out.
    pub body: Option<String>,
    pub state: Option<String>,
}

/// A refusal, as the host's `rejection` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub fn redact(config: &Config, body: &str) -> Result<Redacted, Refusal> {
    if config.kinds.is_empty() {
        return Ok(Redacted::default());
    }
    let mut doc: Value = serde_json::from_str(body).map_err(|e| Refusal {
        status: 400,
        code: "invalid_request_body".into(),
        message: format!("the request body is not JSON: {e}"),
    })?;
    match config.mode {
        Mode::Block => {
            let mut found = BTreeSet::new();
            rewrite(&mut doc, config.kinds, true, &mut |kind, _| {
                found.insert(kind.name());
                String::new()
            });
            if found.is_empty() {
                return Ok(Redacted::default());
            }
            // Never the value: the message goes back to the client and into
            // logs.
            let names: Vec<&str> = found.into_iter().collect();
            Err(Refusal {
                status: 403,
                code: "pii_blocked".into(),
                message: format!("request refused: it contains {}", names.join(", ")),
            })
        }
        Mode::Mask => {
            let changed = rewrite(&mut doc, config.kinds, true, &mut |kind, _| {
                format!("[REDACTED:{}]", kind.name())
            });
            Ok(Redacted {
                body: changed.then(|| doc.to_string()),
                state: None,
            })
        }
        Mode::Pseudonymize => {
            let mut reserved = HashSet::new();
            walk::strings(&mut doc, &mut |site, s| {
                if scanned(site, s) {
                    placeholder::literals_in(s, &mut reserved);
                }
                false
            });
            let mut names = Pseudonyms::new(reserved);
            let changed = rewrite(&mut doc, config.kinds, true, &mut |kind, original| {
                names.placeholder(kind, original).to_owned()
            });
            Ok(Redacted {
                body: changed.then(|| doc.to_string()),
                state: names.into_state(),
            })
        }
    }
}

/// Replaces every match in the scanned strings of `doc` by what `replace`
/// gives for it, in document order; returns whether anything matched.
/// `outer`: `doc` is the request itself, whose `model` is not user text.
fn rewrite(
    doc: &mut Value,
    kinds: KindSet,
    outer: bool,
    replace: &mut dyn FnMut(Kind, &str) -> String,
) -> bool {
    walk::strings(doc, &mut |site, s| {
        if (outer && site.top_level && site.key == Some("model")) || !scanned(site, s) {
            return false;
        }
        if site.is_tool_arguments()
            && let Some(changed) = rewrite_json_text(s, kinds, replace)
        {
            return changed;
        }
        let matches = scan::find(s, kinds);
        if matches.is_empty() {
            return false;
        }
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        for m in matches {
            out.push_str(&s[copied..m.start]);
            out.push_str(&replace(m.kind, &s[m.start..m.end]));
            copied = m.end;
        }
        out.push_str(&s[copied..]);
        *s = out;
        true
    })
}

/// Tool-call arguments are JSON text: their strings are scanned decoded,
/// so an original is the value the tool sees, newlines and all, and the
/// arguments stay JSON. `None`: the text is not a JSON object or array,
/// and is scanned as text instead.
fn rewrite_json_text(
    s: &mut String,
    kinds: KindSet,
    replace: &mut dyn FnMut(Kind, &str) -> String,
) -> Option<bool> {
    let mut inner = match serde_json::from_str::<Value>(s) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
        _ => return None,
    };
    let changed = rewrite(&mut inner, kinds, false, replace);
    if changed {
        *s = inner.to_string();
    }
    Some(changed)
}

/// Whether a string may carry user text. Binary payloads (images, audio,
/// files as base64), opaque provider tokens (thinking signatures,
/// encrypted reasoning) and thinking text are left alone: scanning
/// megabytes of base64 finds "phone numbers" by chance, and changing
/// signed content breaks the request.
fn scanned(site: &Site, value: &str) -> bool {
    let binary_member = match site.key {
        Some("signature" | "encrypted_content" | "file_data") => true,
        Some("data") => {
            matches!(site.parent_type, Some("base64" | "redacted_thinking"))
                || site.parent_key == Some("input_audio")
        }
        _ => false,
    };
    !binary_member && !site.is_thinking() && !is_base64_data_url(value)
}

/// `data:<type>;base64,…`.
fn is_base64_data_url(value: &str) -> bool {
    let Some(rest) = value.strip_prefix("data:") else {
        return false;
    };
    let head = &rest.as_bytes()[..rest.len().min(256)];
    let comma = head.iter().position(|&c| c == b',');
    comma.is_some_and(|c| head[..c].ends_with(b";base64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(mode: Mode) -> Config {
        Config {
            mode,
            kinds: KindSet::all(),
        }
    }

    fn redact_json(mode: Mode, body: &Value) -> Result<(Option<Value>, Option<Value>), Refusal> {
        let r = redact(&with(mode), &body.to_string())?;
        let parse = |s: String| serde_json::from_str::<Value>(&s).unwrap();
        Ok((r.body.map(parse), r.state.map(parse)))
    }

    fn chat(text: &str) -> Value {
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]})
    }

    #[test]
    fn nothing_found_keeps_the_body() {
        for mode in [Mode::Pseudonymize, Mode::Mask, Mode::Block] {
            assert_eq!(redact_json(mode, &chat("hello")), Ok((None, None)));
        }
    }

    #[test]
    fn mask_is_irreversible() {
        let (body, state) = redact_json(
            Mode::Mask,
            &chat("mail bob@example.com or +44 20 7946 0958"),
        )
        .unwrap();
        assert_eq!(
            body.unwrap()["messages"][0]["content"],
            "mail [REDACTED:email] or [REDACTED:phone]"
        );
        assert_eq!(state, None);
    }

    #[test]
    fn pseudonymize_numbers_per_kind_in_order() {
        let body = json!({"model": "bob@example.com", "system": "I am ann@example.com",
        "messages": [
            {"role": "user", "content": "mail bob@example.com, card 4111 1111 1111 1111"},
            {"role": "user", "content": [{"type": "text", "text": "again bob@example.com and 5500-0000-0000-0004 ann@example.com"}]}
        ]});
        let (body, state) = redact_json(Mode::Pseudonymize, &body).unwrap();
        let body = body.unwrap();
        assert_eq!(body["model"], "bob@example.com", "model is not scanned");
        assert_eq!(body["system"], "I am [EMAIL_1]");
        assert_eq!(
            body["messages"][0]["content"],
            "mail [EMAIL_2], card [CREDIT_CARD_1]"
        );
        assert_eq!(
            body["messages"][1]["content"][0]["text"],
            "again [EMAIL_2] and [CREDIT_CARD_2] [EMAIL_1]"
        );
        assert_eq!(
            state.unwrap(),
            json!({"[EMAIL_1]": "ann@example.com", "[EMAIL_2]": "bob@example.com",
                   "[CREDIT_CARD_1]": "4111 1111 1111 1111", "[CREDIT_CARD_2]": "5500-0000-0000-0004"})
        );
    }

    #[test]
    fn a_growing_conversation_keeps_its_placeholders() {
        let turn1 = chat("I am bob@example.com");
        let mut turn2 = turn1.clone();
        turn2["messages"].as_array_mut().unwrap().extend([
            json!({"role": "assistant", "content": "Hi bob@example.com"}),
            json!({"role": "user", "content": "and ann@example.com?"}),
        ]);
        let (b1, s1) = redact_json(Mode::Pseudonymize, &turn1).unwrap();
        let (b2, s2) = redact_json(Mode::Pseudonymize, &turn2).unwrap();
        assert_eq!(
            b1.unwrap()["messages"][0],
            b2.as_ref().unwrap()["messages"][0]
        );
        assert_eq!(b2.unwrap()["messages"][2]["content"], "and [EMAIL_2]?");
        assert_eq!(s1.unwrap()["[EMAIL_1]"], s2.unwrap()["[EMAIL_1]"]);
    }

    #[test]
    fn clients_own_placeholders_are_not_reused() {
        let (body, state) = redact_json(
            Mode::Pseudonymize,
            &chat("[EMAIL_1] is a template; mine is bob@example.com"),
        )
        .unwrap();
        assert_eq!(
            body.unwrap()["messages"][0]["content"],
            "[EMAIL_1] is a template; mine is [EMAIL_2]"
        );
        assert_eq!(state.unwrap(), json!({"[EMAIL_2]": "bob@example.com"}));
    }

    #[test]
    fn block_names_kinds_never_values() {
        let err = redact_json(
            Mode::Block,
            &chat("bob@example.com 4111111111111111 a@b.io"),
        )
        .unwrap_err();
        assert_eq!(err.status, 403);
        assert_eq!(err.code, "pii_blocked");
        assert_eq!(
            err.message,
            "request refused: it contains credit_card, email"
        );
        assert!(!err.message.contains("bob"));
    }

    #[test]
    fn escaped_private_keys_and_tool_arguments() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----";
        let args = json!({"key": key, "to": "bob@example.com"}).to_string();
        let body = json!({"model": "m", "messages": [
            {"role": "user", "content": format!("here:\n{key}\n")},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "save", "arguments": args}}]}
        ]});
        let (body, state) = redact_json(Mode::Pseudonymize, &body).unwrap();
        let body = body.unwrap();
        assert_eq!(body["messages"][0]["content"], "here:\n[PRIVATE_KEY_1]\n");
        let args = body["messages"][1]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap();
        let args: Value = serde_json::from_str(args).unwrap();
        assert_eq!(args, json!({"key": "[PRIVATE_KEY_1]", "to": "[EMAIL_1]"}));
        assert_eq!(state.unwrap()["[PRIVATE_KEY_1]"], key);
        // Arguments cut short (not JSON) are scanned as text.
        let body = json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"to\": \"bob@example.com"}}]}]});
        let (body, _) = redact_json(Mode::Mask, &body).unwrap();
        assert_eq!(
            body.unwrap()["messages"][0]["tool_calls"][0]["function"]["arguments"],
            "{\"to\": \"[REDACTED:email]"
        );
    }

    #[test]
    fn binary_payloads_and_signatures_are_not_scanned() {
        let b64 = "+4915112345678/AKIAIOSFODNN7EXAMPLE/";
        let body = json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{b64}")}},
            {"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}},
            {"type": "thinking", "thinking": "call bob@example.com", "signature": b64},
            {"type": "redacted_thinking", "data": b64}
        ]}]});
        assert_eq!(redact_json(Mode::Block, &body), Ok((None, None)));
    }

    #[test]
    fn only_configured_kinds() {
        let config = Config {
            mode: Mode::Mask,
            kinds: [Kind::Phone].into_iter().collect(),
        };
        let r = redact(
            &config,
            &chat("bob@example.com +44 20 7946 0958").to_string(),
        )
        .unwrap();
        assert!(r.body.unwrap().contains("bob@example.com [REDACTED:phone]"));
        let none = Config {
            mode: Mode::Block,
            kinds: KindSet::default(),
        };
        assert_eq!(redact(&none, "not even json"), Ok(Redacted::default()));
    }
}
