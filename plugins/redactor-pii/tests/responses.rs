//! Whole responses: a request is pseudonymized, the provider answers with
//! the placeholders, and the client gets the originals back.

mod common;

use common::{CARD, EMAIL, KEY, pseudonymized, vault};
use redactor_pii::restore;
use serde_json::{Value, json};

#[test]
fn the_provider_sees_placeholders_only() {
    let (sent, _) = pseudonymized();
    let text = sent["messages"][0]["content"].as_str().unwrap();
    assert_eq!(
        text,
        "I am [EMAIL_1], card [CREDIT_CARD_1], phone [PHONE_1], iban [IBAN_1], key:\n[PRIVATE_KEY_1]\n"
    );
}

#[test]
fn openai_response_with_tool_call_arguments() {
    let args = json!({"to": "[EMAIL_1]", "key": "[PRIVATE_KEY_1]"}).to_string();
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Saving [EMAIL_1]'s card [CREDIT_CARD_1]; [EMAIL_7] stays.",
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "save", "arguments": args}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5}});
    let out: Value =
        serde_json::from_str(&restore::response(&body.to_string(), &vault()).unwrap()).unwrap();
    let message = &out["choices"][0]["message"];
    assert_eq!(
        message["content"],
        format!("Saving {EMAIL}'s card {CARD}; [EMAIL_7] stays.")
    );
    let args = message["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    let args: Value = serde_json::from_str(args).expect("arguments stay JSON");
    assert_eq!(args, json!({"to": EMAIL, "key": KEY}));
    assert!(args["key"].as_str().unwrap().contains("-----\nMIIE"));
    // Everything else is kept, in order.
    assert_eq!(out["usage"], body["usage"]);
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["id", "object", "created", "model", "choices", "usage"]
    );
}

#[test]
fn anthropic_response_with_tool_use_input() {
    let body = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "Use [EMAIL_1].", "signature": "c2ln"},
            {"type": "text", "text": "Key [PRIVATE_KEY_1] for [EMAIL_1]"},
            {"type": "tool_use", "id": "toolu_1", "name": "save",
             "input": {"key": "[PRIVATE_KEY_1]", "cards": ["[CREDIT_CARD_1]"]}}
        ],
        "stop_reason": "tool_use"});
    let out: Value =
        serde_json::from_str(&restore::response(&body.to_string(), &vault()).unwrap()).unwrap();
    // Thinking is signed: left as the provider wrote it.
    assert_eq!(out["content"][0], body["content"][0]);
    assert_eq!(out["content"][1]["text"], format!("Key {KEY} for {EMAIL}"));
    assert_eq!(
        out["content"][2]["input"],
        json!({"key": KEY, "cards": [CARD]})
    );
}

#[test]
fn nothing_to_restore_keeps_the_body() {
    let v = vault();
    let body =
        json!({"choices": [{"message": {"content": "no placeholders, [EMAIL_7] is not ours"}}]});
    assert_eq!(restore::response(&body.to_string(), &v), None);
    assert_eq!(restore::response("not json [EMAIL_1]", &v), None);
}

#[test]
fn state_round_trips_through_the_host() {
    // The state is a compact JSON object from placeholder to original.
    let body = json!({"model": "m", "messages": [{"role": "user", "content": format!("{EMAIL} {EMAIL} {CARD}")}]});
    let r = redactor_pii::request::redact(&Default::default(), &body.to_string()).unwrap();
    let state = r.state.unwrap();
    let parsed: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(parsed, json!({"[EMAIL_1]": EMAIL, "[CREDIT_CARD_1]": CARD}));
    assert_eq!(state, parsed.to_string(), "compact");
    let vault = redactor_pii::vault::Vault::from_state(&state).unwrap();
    assert_eq!(vault.original("[EMAIL_1]"), Some(EMAIL));
    let sent: Value = serde_json::from_str(&r.body.unwrap()).unwrap();
    assert_eq!(
        sent["messages"][0]["content"],
        "[EMAIL_1] [EMAIL_1] [CREDIT_CARD_1]"
    );
}

#[test]
fn only_tool_call_arguments_are_json_text() {
    // A tool input field that happens to be called `arguments` is plain
    // text: the original goes back as is, newlines and all.
    let body = json!({"content": [{"type": "tool_use", "id": "t", "name": "run",
        "input": {"arguments": "[PRIVATE_KEY_1]"}}]});
    let out: Value =
        serde_json::from_str(&restore::response(&body.to_string(), &vault()).unwrap()).unwrap();
    assert_eq!(out["content"][0]["input"]["arguments"], KEY);
}
