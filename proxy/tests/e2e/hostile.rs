//! Hostile plugins (infinite loop, trap, memory bomb) never take the proxy
//! down: each is handled per its fail mode and a repeat offender is disabled.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

const POLICY: &str = r#"
[[plugin]]
name = "hostile-spin"
fail_mode = "open"
deadline_ms = 20
crash_budget = 3

[[plugin]]
name = "hostile-trap"
fail_mode = "closed"
crash_budget = 1000

[[plugin]]
name = "hostile-alloc"
fail_mode = "open"
memory_limit_mib = 8
crash_budget = 1000
"#;

fn hostile_stack() -> Stack {
    Stack::start(Options {
        plugins: &[
            "test_hostile_spin.wasm",
            "test_hostile_trap.wasm",
            "test_hostile_alloc.wasm",
        ],
        policy: Some(POLICY),
        ..Options::default()
    })
}

fn chat(stack: &Stack, hostile: Option<&str>) -> Resp {
    let body = json!({"model": "mock:base", "messages": [{"role": "user", "content": "hi"}]});
    match hostile {
        Some(h) => stack.post("/v1/chat/completions", &body, &[("x-hostile", h)]),
        None => stack.post("/v1/chat/completions", &body, &[]),
    }
}

#[test]
fn infinite_loop_ends_at_its_deadline_and_fails_open() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("spin"));
    assert_eq!(r.status, 200, "fail-open serves the request: {}", r.text());
    assert_eq!(r.header("x-sluice-model"), Some("base"));
    let m = stack.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"hostile-spin\",result=\"timeout\"}"
        ),
        1.0,
        "{m}"
    );
    assert!(stack.proxy.is_running());
}

#[test]
fn trap_fails_closed_with_a_clear_error_in_the_callers_shape() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("trap"));
    assert_eq!(r.status, 503);
    let e = r.json();
    assert_eq!(e["error"]["code"], "plugin_failed");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hostile-trap")
    );
    let a = stack.post(
        "/v1/messages",
        &json!({"model": "mock:base", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-hostile", "trap")],
    );
    assert_eq!(a.status, 503);
    assert_eq!(a.json()["type"], "error");
    assert_eq!(a.json()["error"]["type"], "overloaded_error");
    // The trapped instance is discarded; the plugin keeps working.
    assert_eq!(chat(&stack, None).status, 200);
    assert!(stack.proxy.is_running());
}

#[test]
fn memory_bomb_stops_at_the_cap() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("alloc"));
    assert_eq!(r.status, 200, "{}", r.text());
    let m = stack.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"hostile-alloc\",result=\"error\"}"
        ),
        1.0,
        "{m}"
    );
    let p = stack.plugin_state("hostile-alloc").unwrap();
    assert!(
        p["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{p}"
    );
    assert!(stack.proxy.is_running());
}

#[test]
fn other_requests_are_unaffected_and_a_repeat_offender_is_disabled() {
    let mut stack = hostile_stack();
    std::thread::scope(|s| {
        let bad = s.spawn(|| {
            for _ in 0..3 {
                assert_eq!(chat(&stack, Some("spin")).status, 200);
                assert_eq!(chat(&stack, Some("alloc")).status, 200);
                assert_eq!(chat(&stack, Some("trap")).status, 503);
            }
        });
        for _ in 0..30 {
            let r = chat(&stack, None);
            assert_eq!(r.status, 200, "{}", r.text());
        }
        bad.join().unwrap();
    });
    assert!(eventually(Duration::from_secs(2), || {
        stack
            .plugin_state("hostile-spin")
            .is_some_and(|p| p["state"] == "disabled")
    }));
    // Disabled: not even called any more.
    let r = chat(&stack, Some("spin"));
    assert_eq!(r.status, 200);
    let m = stack.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"hostile-spin\",result=\"timeout\"}"
        ),
        3.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"hostile-spin\",result=\"disabled\"}"
        ) >= 1.0
    );
    assert_eq!(stack.admin_get("/healthz").status, 200);
    assert!(stack.proxy.is_running());
}
