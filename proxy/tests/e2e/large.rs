//! Bodies near `limits.max_body_bytes` translate in both directions under
//! the default limits, and a burst of them leaves the translator healthy
//! for everyone.

use serde_json::{Value, json};

use crate::harness::*;

/// A request of `blocks` tiny text blocks: the shape that costs a
/// JSON-tree translator the most memory per byte.
fn blocks(blocks: usize) -> Vec<Value> {
    (0..blocks)
        .map(|i| json!({"type": "text", "text": format!("w{}", i % 10)}))
        .collect()
}

/// Anthropic client to the OpenAI-only provider, and the other way round.
fn anthropic_to_openai(n: usize) -> Value {
    json!({"model": "oai:gpt-4o-mini", "max_tokens": 20,
           "messages": [{"role": "user", "content": blocks(n)}]})
}

fn openai_to_anthropic(n: usize) -> Value {
    json!({"model": "ant:claude-x", "max_tokens": 20,
           "messages": [{"role": "user", "content": blocks(n)}]})
}

fn translator_stack() -> Stack {
    Stack::start(Options {
        plugins: &["translator_openai_anthropic.wasm"],
        ..Options::default()
    })
}

#[track_caller]
fn assert_translated(stack: &Stack, r: &Resp, shape: &str) {
    if r.status != 200 {
        let log = stack.proxy.log_text();
        let why: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
        panic!("{}: {}\n{}", r.status, r.text(), why.join("\n"));
    }
    let v = r.json();
    let text = match shape {
        "anthropic" => v["content"][0]["text"].as_str(),
        _ => v["choices"][0]["message"]["content"].as_str(),
    };
    assert!(text.unwrap().starts_with("Mock reply to: w0 w1 w2"), "{v}");
}

#[test]
fn bodies_near_the_limit_translate_in_both_directions() {
    let stack = translator_stack();
    // 120k blocks is the 3.7 MB body of the report; 310k is ~9.9 MB, just
    // under the default 10 MiB limit.
    for n in [120_000, 310_000] {
        let a = anthropic_to_openai(n);
        let bytes = serde_json::to_vec(&a).unwrap().len();
        assert!(bytes < 10 << 20, "{bytes}");
        let r = stack.post(ANTHROPIC, &a, &[AV]);
        assert_translated(&stack, &r, "anthropic");
        let r = stack.post(OPENAI, &openai_to_anthropic(n), &[]);
        assert_translated(&stack, &r, "openai");
    }
    let m = stack.metrics();
    let calls = |r: &str| {
        metric(
            &m,
            &format!("sluice_plugin_calls_total{{plugin=\"openai-anthropic\",result=\"{r}\"}}"),
        )
    };
    assert_eq!(
        calls("error") + calls("timeout") + calls("rejected_input"),
        0.0,
        "{m}"
    );
}

#[test]
fn eight_large_translated_requests_then_a_small_one_all_succeed() {
    let stack = translator_stack();
    let big = anthropic_to_openai(120_000);
    std::thread::scope(|s| {
        let all: Vec<_> = (0..8)
            .map(|_| s.spawn(|| stack.post(ANTHROPIC, &big, &[AV])))
            .collect();
        for t in all {
            assert_translated(&stack, &t.join().unwrap(), "anthropic");
        }
    });
    let small = json!({"model": "oai:gpt-4o-mini", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "small"}]});
    let r = stack.post(ANTHROPIC, &small, &[AV]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["content"][0]["text"], "Mock reply to: small");
    let p = stack.plugin_state("openai-anthropic").unwrap();
    assert_eq!(p["state"], "loaded", "{p}");
    assert_eq!(p["breaker"]["failures_in_window"], 0, "{p}");
}
