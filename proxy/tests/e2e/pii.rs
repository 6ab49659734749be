//! The PII and secret redactor in front of the mock (which answers "Mock
//! reply to: <what it received>"): the provider sees no value of any kind,
//! the client gets the originals back whole and streamed, `block` refuses
//! naming the kind, and a binding scoped to a team leaves others alone.

use serde_json::{Value, json};

use crate::harness::*;

/// One value of every kind, as a user might paste them.
const VALUES: &[(&str, &str)] = &[
    ("email", "alice.smith@example.com"),
    ("phone", "+44 20 7946 0958"),
    ("credit_card", "4111 1111 1111 1111"),
    ("iban", "GB82WEST12345698765432"),
    ("ip_address", "192.168.10.77"),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("openai_key", "sk-proj-abcdefghijklmnopqrstuvwx1234"),
    ("anthropic_key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
    ("gcp_api_key", "AIzaSyD-abcdefghijklmnopqrstuvwxyz12345"),
    ("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
];

fn prompt() -> String {
    VALUES
        .iter()
        .map(|(k, v)| format!("{k} is {v} ."))
        .collect::<Vec<_>>()
        .join(" ")
}

fn stack(config: &str, scope: &str) -> Stack {
    let policy = format!(
        "[[plugin]]\nname = \"pii-redactor\"\nfail_mode = \"closed\"\nconfig = {config}\n{scope}"
    );
    Stack::start(Options {
        plugins: &["redactor_pii.wasm", "translator_openai_anthropic.wasm"],
        policy: Some(Box::leak(policy.into_boxed_str())),
        ..Options::default()
    })
}

fn whole(s: &Stack, text: &str, extra: &[(&str, &str)], stop: Option<&str>) -> String {
    let mut body = json!({"model": "mock:base", "messages": [{"role": "user", "content": text}]});
    if let Some(stop) = stop {
        body["stop"] = json!([stop]);
    }
    let r = s.post(OPENAI, &body, extra);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn streamed(s: &Stack, path: &str, model: &str, text: &str) -> String {
    let body = json!({"model": model, "max_tokens": 4000, "stream": true,
                      "messages": [{"role": "user", "content": text}]});
    let r = s.post(path, &body, &[AV]);
    assert_eq!(r.status, 200, "{}", r.text());
    let events = r.events();
    events
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .or(v["delta"]["text"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn masked_values_never_reach_the_provider() {
    let s = stack("{ mode = \"mask\" }", "");
    let reply = whole(&s, &prompt(), &[], None);
    for (kind, value) in VALUES {
        assert!(
            !reply.contains(value),
            "{kind} reached the provider: {reply}"
        );
    }
    assert!(
        reply.contains("[REDACTED:email]") && reply.contains("[REDACTED:credit_card]"),
        "{reply}"
    );
}

#[test]
fn pseudonymized_values_come_back_to_the_client_whole_and_streamed() {
    let s = stack("{ mode = \"pseudonymize\" }", "");
    let p = prompt();
    // The client reads its own words back ...
    assert_eq!(whole(&s, &p, &[], None), format!("Mock reply to: {p}"));
    for (path, model) in [
        (OPENAI, "mock:base"),
        (ANTHROPIC, "mock:base"),
        (OPENAI, "ant:claude-x"),
    ] {
        assert_eq!(
            streamed(&s, path, model, &p).trim(),
            format!("Mock reply to: {p}"),
            "{path} {model}"
        );
    }
    // ... while the provider saw placeholders: a stop sequence inside one
    // cuts the echo there.
    let cut = whole(&s, "write to bob@example.org now", &[], Some("_1]"));
    assert_eq!(cut, "Mock reply to: write to [EMAIL");
}

#[test]
fn block_refuses_naming_the_kind_never_the_value() {
    let s = stack("{ mode = \"block\" }", "");
    let r = s.post(
        OPENAI,
        &json!({"model": "mock:base", "messages": [{"role": "user", "content": "card 4111 1111 1111 1111"}]}),
        &[],
    );
    let e = openai_error(&r, 403, "pii_blocked", "permission_error");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("credit_card") && !msg.contains("4111"),
        "{msg}"
    );
    let r = s.post(
        ANTHROPIC,
        &json!({"model": "mock:base", "max_tokens": 10, "messages": [{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]}),
        &[AV],
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("AKIA"));
    // Nothing to block: served.
    assert_eq!(whole(&s, "hello", &[], None), "Mock reply to: hello");
}

#[test]
fn a_binding_scoped_to_a_team_leaves_other_callers_alone() {
    let s = stack("{ mode = \"mask\" }", "teams = [\"support\"]\n");
    let (_, support) = s.issue_key(&json!({"user_id": "sam", "team_id": "support"}));
    let (_, other) = s.issue_key(&json!({"user_id": "oli", "team_id": "ml"}));
    let text = "mail bob@example.org";
    let a = format!("Bearer {support}");
    let b = format!("Bearer {other}");
    assert_eq!(
        whole(&s, text, &[("authorization", &a)], None),
        "Mock reply to: mail [REDACTED:email]"
    );
    assert_eq!(
        whole(&s, text, &[("authorization", &b)], None),
        "Mock reply to: mail bob@example.org"
    );
}
