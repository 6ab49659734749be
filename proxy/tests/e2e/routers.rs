//! The custom routing slot in each language: the tier router written in
//! Rust, Python and JavaScript makes the same decision, each hot-loaded
//! into one running proxy and removed again; a router that overruns the
//! chain's 5 ms budget is deferred and the request still succeeds.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(60);

fn auto(text: &str) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": text}]})
}

fn loaded(stack: &Stack, name: &str) -> bool {
    stack
        .plugin_state(name)
        .is_some_and(|p| p["state"] == "loaded")
}

#[test]
fn the_same_decision_from_rust_python_and_javascript_slots_hot_loaded() {
    let stack = Stack::start(Options {
        auth: true,
        ..Options::default()
    });
    let (_, trial) = stack.issue_key(&json!({"user_id": "t", "customer_tier": "trial"}));
    let (_, paid) = stack.issue_key(&json!({"user_id": "p", "customer_tier": "paid"}));
    let (trial, paid) = (format!("Bearer {trial}"), format!("Bearer {paid}"));
    // ~3000 estimated tokens: past the routers' 2000.
    let long = "word ".repeat(2400);
    for (file, name) in [
        ("router_tier.wasm", "tier-router-rust"),
        ("router_tier_python.wasm", "tier-router-python"),
        ("router_tier_js.wasm", "tier-router-js"),
    ] {
        // Before: nobody in the custom slot, the default serves `auto`.
        let r = stack.post(OPENAI, &auto("hi"), &[("authorization", &trial)]);
        assert_eq!(
            (r.status, r.header("x-sluice-routed-by")),
            (200, Some("global_default")),
            "{name}: {}",
            r.text()
        );
        stack.install(file, file);
        assert!(
            eventually(WAIT, || loaded(&stack, name)),
            "{name} never loaded"
        );
        for (key, text, model) in [
            (&trial, "hi", Some("gpt-4o-mini")),
            (&paid, long.as_str(), Some("claude-sonnet-4-6")),
            (&paid, "hi", None),
        ] {
            let r = stack.post(OPENAI, &auto(text), &[("authorization", key)]);
            assert_eq!(r.status, 200, "{name}: {}", r.text());
            match model {
                Some(m) => {
                    assert_eq!(r.header("x-sluice-routed-by"), Some("custom"), "{name}");
                    assert_eq!(r.header("x-sluice-model"), Some(m), "{name}");
                    assert_eq!(r.header("x-sluice-provider"), Some("mock"), "{name}");
                }
                // It abstained: the default decided.
                None => assert_eq!(
                    r.header("x-sluice-routed-by"),
                    Some("global_default"),
                    "{name}"
                ),
            }
            assert_eq!(r.json()["model"], "auto", "the client's model is echoed");
        }
        std::fs::remove_file(stack.plugins_dir.join(file)).unwrap();
        assert!(
            eventually(WAIT, || stack.plugin_state(name).is_none()),
            "{name} never unloaded"
        );
    }
}

#[test]
fn a_slot_that_overruns_the_chain_budget_is_deferred_and_the_request_succeeds() {
    let stack = Stack::start(Options {
        plugins: &["test_hostile_spin.wasm", "router_tier.wasm"],
        ..Options::default()
    });
    let spin = [("x-hostile", "spin")];
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let r = stack.post(OPENAI, &auto("hi"), &spin);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-sluice-routed-by"), Some("global_default"));
        // Deferred at the budget, not at the plugin's 50 ms deadline.
        assert!(started.elapsed() < Duration::from_secs(2));
        let id = r.header("x-request-id").unwrap().to_owned();
        let mut chain = Value::Null;
        assert!(eventually(WAIT, || {
            let ev = stack
                .admin_get("/admin/events?type=route.decided&limit=100000")
                .json();
            ev["events"].as_array().unwrap().iter().any(|e| {
                let hit = e["payload"]["request_id"] == id.as_str();
                if hit {
                    chain = e["payload"]["chain"].clone();
                }
                hit
            })
        }));
        let custom: Vec<&Value> = chain
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["slot"] == "custom")
            .collect();
        assert!(
            custom.iter().any(|s| s["plugin"] == "hostile-spin"
                && s["verdict"] == "deferred"
                && s["reason"] == "budget_exceeded"),
            "{chain}"
        );
    }
    // Without the trigger the spinner abstains and the tier router decides
    // within the budget.
    let r = stack.post(OPENAI, &auto(&"word ".repeat(2400)), &[]);
    assert_eq!(
        r.header("x-sluice-routed-by"),
        Some("custom"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("x-sluice-model"), Some("claude-sonnet-4-6"));
}
