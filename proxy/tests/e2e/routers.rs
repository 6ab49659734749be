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

/// The custom slot's steps in the `route.decided` event of a request.
fn custom_steps(stack: &Stack, request_id: &str) -> Vec<Value> {
    let mut chain = Value::Null;
    assert!(
        eventually(WAIT, || {
            let ev = stack
                .admin_get("/admin/events?type=route.decided&limit=100000")
                .json();
            ev["events"].as_array().unwrap().iter().any(|e| {
                let hit = e["payload"]["request_id"] == request_id;
                if hit {
                    chain = e["payload"]["chain"].clone();
                }
                hit
            })
        }),
        "no route.decided for {request_id}"
    );
    let steps = chain.as_array().unwrap().iter();
    steps.filter(|s| s["slot"] == "custom").cloned().collect()
}

fn deferred_at_budget(steps: &[Value], plugin: &str) -> bool {
    steps.iter().any(|s| {
        s["plugin"] == plugin && s["verdict"] == "deferred" && s["reason"] == "budget_exceeded"
    })
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
        // Its first calls may instantiate it cold, which for an 18 MB
        // componentize-py component can take longer than the chain's 5 ms
        // budget: such a call is deferred (the default answers, 200) and
        // finishes on its own, leaving a warm instance. Nothing else may
        // keep the router from deciding.
        assert!(
            eventually(WAIT, || {
                let r = stack.post(OPENAI, &auto("hi"), &[("authorization", &trial)]);
                assert_eq!(r.status, 200, "{name}: {}", r.text());
                if r.header("x-sluice-routed-by") == Some("custom") {
                    return true;
                }
                let steps = custom_steps(&stack, r.header("x-request-id").unwrap());
                assert!(deferred_at_budget(&steps, name), "{name}: {steps:?}");
                false
            }),
            "{name} never decided within the chain's budget"
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
        let steps = custom_steps(&stack, r.header("x-request-id").unwrap());
        assert!(deferred_at_budget(&steps, "hostile-spin"), "{steps:?}");
    }
    // Each spin call went on in the background until its own 50 ms
    // deadline; once they are over (they compete for the two workers),
    // without the trigger the spinner abstains and the tier router decides
    // within the budget.
    let timeouts = r#"sluice_plugin_calls_total{plugin="hostile-spin",result="timeout"}"#;
    assert!(eventually(WAIT, || metric(&stack.metrics(), timeouts) >= 3.0));
    let r = stack.post(OPENAI, &auto(&"word ".repeat(2400)), &[]);
    assert_eq!(
        r.header("x-sluice-routed-by"),
        Some("custom"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("x-sluice-model"), Some("claude-sonnet-4-6"));
}
