//! Redactors on the request path: what they rewrite never reaches the
//! provider, whole or streamed, same shape or translated.

use serde_json::json;

use crate::harness::*;

#[test]
fn a_request_redactor_keeps_secrets_from_the_provider() {
    let stack = Stack::start(Options {
        plugins: &["redactor_pii.wasm", "translator_openai_anthropic.wasm"],
        policy: Some("[[plugin]]\nname = \"pii-redactor\"\nconfig = { mode = \"mask\" }\n"),
        ..Options::default()
    });
    let secret = "alice@example.com";
    let prompt = format!("mail {secret} please");
    // The mock answers "Mock reply to: <prompt as it received it>".
    for model in ["mock:base", "ant:claude-x"] {
        let r = stack.post(
            OPENAI,
            &json!({"model": model, "messages": [{"role": "user", "content": prompt}]}),
            &[],
        );
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let reply = r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            reply, "Mock reply to: mail [REDACTED:email] please",
            "{model}"
        );
        let s = stack.post(
            ANTHROPIC,
            &json!({"model": model, "max_tokens": 50, "stream": true,
                    "messages": [{"role": "user", "content": prompt}]}),
            &[AV],
        );
        assert_eq!(s.status, 200, "{model}");
        let text: String = s
            .events()
            .iter()
            .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
            .map(|(_, d)| {
                serde_json::from_str::<serde_json::Value>(d).unwrap()["delta"]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            text, "Mock reply to: mail [REDACTED:email] please",
            "{model}"
        );
        assert_eq!(
            s.events().last().unwrap().0.as_deref(),
            Some("message_stop")
        );
    }
    let m = stack.metrics();
    assert!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"pii-redactor\",result=\"ok\"}"
        ) >= 4.0,
        "{m}"
    );
}
