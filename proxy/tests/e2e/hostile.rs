//! Hostile plugins (infinite loop, trap, memory bomb, panic) never take the
//! proxy down, and no client can switch a plugin off for everyone else:
//! input-blamed failures and pool exhaustion are not counted, a breaker
//! opens only on a plugin that fails for most callers, and it probes its
//! way back.

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

[[plugin]]
name = "hostile-panic"
fail_mode = "closed"
crash_budget = 1000
"#;

/// The four hostile routers share one chain; with the default 5 ms budget a
/// busy machine would defer the later ones without calling them, and these
/// tests are about what happens when they are called.
fn hostile_stack() -> Stack {
    Stack::start(Options {
        plugins: &[
            "test_hostile_spin.wasm",
            "test_hostile_trap.wasm",
            "test_hostile_alloc.wasm",
            "test_hostile_panic.wasm",
        ],
        policy: Some(POLICY),
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    })
}

fn body() -> serde_json::Value {
    json!({"model": "base", "messages": [{"role": "user", "content": "hi"}]})
}

fn chat(stack: &Stack, hostile: Option<&str>) -> Resp {
    match hostile {
        Some(h) => stack.post(OPENAI, &body(), &[("x-hostile", h)]),
        None => stack.post(OPENAI, &body(), &[]),
    }
}

fn calls(stack: &Stack, plugin: &str, result: &str) -> f64 {
    metric(
        &stack.metrics(),
        &format!("sluice_plugin_calls_total{{plugin=\"{plugin}\",result=\"{result}\"}}"),
    )
}

/// A client-facing message: short, names the request, and carries nothing
/// of the guest (backtrace, wasm offsets, paths).
#[track_caller]
fn assert_public(message: &str, request_id: &str) {
    assert!(message.contains(request_id), "{message}");
    for leak in ["wasm", "0x", "backtrace", "unreachable", ".rs", "/"] {
        assert!(!message.contains(leak), "{leak:?} leaked: {message}");
    }
    assert!(message.len() < 200, "{message}");
}

#[test]
fn infinite_loop_ends_at_its_deadline_and_fails_open() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("spin"));
    assert_eq!(r.status, 200, "fail-open serves the request: {}", r.text());
    assert_eq!(r.header("x-sluice-model"), Some("base"));
    // The call ran to its own 20 ms deadline and the request went on.
    assert!(eventually(Duration::from_secs(5), || calls(
        &stack,
        "hostile-spin",
        "timeout"
    ) == 1.0));
    assert!(stack.proxy.is_running());
}

#[test]
fn trap_fails_closed_with_a_short_error_in_the_callers_shape() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("trap"));
    let e = openai_error(&r, 503, "plugin_failed", "service_unavailable_error");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("hostile-trap"), "{message}");
    assert_public(message, r.header("x-request-id").unwrap());
    let a = stack.post(
        ANTHROPIC,
        &json!({"model": "base", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-hostile", "trap")],
    );
    let v = anthropic_error(&a, 503, "overloaded_error");
    assert_public(
        v["error"]["message"].as_str().unwrap(),
        v["request_id"].as_str().unwrap(),
    );
    // The detail is for operators: in the log and /admin/plugins.
    let p = stack.plugin_state("hostile-trap").unwrap();
    assert!(p["last_error"].as_str().unwrap().contains("wasm"), "{p}");
    // The trapped instance is discarded; the plugin keeps working.
    assert_eq!(chat(&stack, None).status, 200);
    assert!(stack.proxy.is_running());
}

#[test]
fn memory_bomb_stops_at_the_cap() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("alloc"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eventually(Duration::from_secs(5), || calls(
        &stack,
        "hostile-alloc",
        "error"
    ) == 1.0));
    let p = stack.plugin_state("hostile-alloc").unwrap();
    assert!(
        p["last_error"].as_str().unwrap().contains("memory cap"),
        "{p}"
    );
    assert!(stack.proxy.is_running());
}

#[test]
fn a_panicking_rust_guest_is_logged_and_handled_per_fail_mode() {
    let mut stack = hostile_stack();
    let r = chat(&stack, Some("panic"));
    let e = openai_error(&r, 503, "plugin_failed", "service_unavailable_error");
    assert_public(
        e["message"].as_str().unwrap(),
        r.header("x-request-id").unwrap(),
    );
    let id = r.header("x-request-id").unwrap().to_owned();
    // Rust's panic hook wrote the message to stderr; the host logged it,
    // tagged with the plugin.
    assert!(
        eventually(STATE_WAIT, || stack.proxy.log_text().lines().any(|l| {
            l.contains(&format!("hostile-panic was told to panic by request {id}"))
                && l.contains("plugin=\"hostile-panic\"")
                && l.contains("stream=\"stderr\"")
        })),
        "{}",
        stack.proxy.log_text()
    );
    assert_eq!(chat(&stack, None).status, 200);
    assert!(stack.proxy.is_running());
}

#[test]
fn one_clients_poison_requests_do_not_switch_a_plugin_off_for_others() {
    let mut stack = hostile_stack();
    // Everyone else's traffic first, then one client that makes the
    // plugin spin on every request, far past its crash budget of 3.
    for _ in 0..40 {
        assert_eq!(chat(&stack, None).status, 200);
    }
    std::thread::scope(|s| {
        let attacker = s.spawn(|| {
            for _ in 0..12 {
                assert_eq!(chat(&stack, Some("spin")).status, 200);
            }
        });
        for _ in 0..30 {
            let r = chat(&stack, None);
            assert_eq!(r.status, 200, "{}", r.text());
        }
        attacker.join().unwrap();
    });
    assert!(eventually(Duration::from_secs(5), || calls(
        &stack,
        "hostile-spin",
        "timeout"
    ) == 12.0));
    let p = stack.plugin_state("hostile-spin").unwrap();
    assert_eq!(p["state"], "loaded", "{p}");
    assert_eq!(p["breaker"]["state"], "closed", "{p}");
    // It is still called for everyone.
    let ok = calls(&stack, "hostile-spin", "ok");
    assert_eq!(chat(&stack, None).status, 200);
    assert_eq!(calls(&stack, "hostile-spin", "ok"), ok + 1.0);
    assert_eq!(calls(&stack, "hostile-spin", "disabled"), 0.0);
    assert!(stack.proxy.is_running());
}

#[test]
fn a_plugin_failing_for_everyone_is_switched_off_then_probed_back() {
    let policy = r#"
[[plugin]]
name = "hostile-trap"
fail_mode = "open"
crash_budget = 3
cooldown_seconds = 1
"#;
    let stack = Stack::start(Options {
        plugins: &["test_hostile_trap.wasm"],
        policy: Some(policy),
        ..Options::default()
    });
    // Every caller makes it trap: three failures open the breaker.
    for _ in 0..3 {
        assert_eq!(chat(&stack, Some("trap")).status, 200, "fail-open");
    }
    let p = stack.plugin_state("hostile-trap").unwrap();
    assert_eq!(p["state"], "disabled", "{p}");
    assert_eq!(p["breaker"]["trips"], 1, "{p}");
    // Open: not even called.
    assert_eq!(chat(&stack, Some("trap")).status, 200);
    assert_eq!(calls(&stack, "hostile-trap", "error"), 3.0);
    assert!(calls(&stack, "hostile-trap", "disabled") >= 1.0);

    // After the cooldown one probe runs; it fails, so the breaker opens
    // again for twice as long.
    assert!(eventually(Duration::from_secs(5), || {
        chat(&stack, Some("trap"));
        calls(&stack, "hostile-trap", "error") == 4.0
    }));
    let p = stack.plugin_state("hostile-trap").unwrap();
    assert_eq!(p["breaker"]["trips"], 2, "{p}");
    assert_eq!(p["state"], "disabled", "{p}");

    // Once it behaves, the next probe closes the breaker.
    assert!(eventually(Duration::from_secs(8), || {
        chat(&stack, None);
        calls(&stack, "hostile-trap", "ok") >= 1.0
    }));
    let p = stack.plugin_state("hostile-trap").unwrap();
    assert_eq!(p["state"], "loaded", "{p}");
    assert_eq!(p["breaker"]["state"], "closed", "{p}");
    let ok = calls(&stack, "hostile-trap", "ok");
    assert_eq!(chat(&stack, None).status, 200);
    assert_eq!(calls(&stack, "hostile-trap", "ok"), ok + 1.0);
}

#[test]
fn failures_a_large_input_is_to_blame_for_are_413_and_not_counted() {
    let stack = Stack::start(Options {
        plugins: &["test_hostile_translator.wasm"],
        policy: Some("[[plugin]]\nname = \"hostile-translator\"\ncrash_budget = 2\n"),
        ..Options::default()
    });
    let filler = "word ".repeat(20_000);
    let big_openai = json!({"model": "ant:claude-x",
        "messages": [{"role": "user", "content": filler}]});
    let big_anthropic = json!({"model": "oai:gpt-4o-mini", "max_tokens": 10,
        "messages": [{"role": "user", "content": filler}]});
    for _ in 0..4 {
        let r = stack.post(OPENAI, &big_openai, &[]);
        let e = openai_error(&r, 413, "request_too_large", "invalid_request_error");
        assert_public(
            e["message"].as_str().unwrap(),
            r.header("x-request-id").unwrap(),
        );
        let a = stack.post(ANTHROPIC, &big_anthropic, &[AV]);
        anthropic_error(&a, 413, "request_too_large");
    }
    assert_eq!(calls(&stack, "hostile-translator", "rejected_input"), 8.0);
    assert_eq!(calls(&stack, "hostile-translator", "error"), 0.0);
    let p = stack.plugin_state("hostile-translator").unwrap();
    assert_eq!(p["breaker"]["state"], "closed", "{p}");
    // Small requests still translate.
    let small = json!({"model": "ant:claude-x", "messages": [{"role": "user", "content": "hi"}]});
    let r = stack.post(OPENAI, &small, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["choices"][0]["message"]["content"], "translated");
    // The same failure on a small input is the plugin's: counted.
    let poisoned = json!({"model": "ant:claude-x",
        "messages": [{"role": "user", "content": "ALLOC_FOREVER"}]});
    let r = stack.post(OPENAI, &poisoned, &[]);
    openai_error(&r, 502, "translator_failed", "server_error");
    // Its memory cap or, on a busy machine, its deadline: either way, its own.
    let own = calls(&stack, "hostile-translator", "error")
        + calls(&stack, "hostile-translator", "timeout");
    assert_eq!(own, 1.0);
}

#[test]
fn instance_exhaustion_is_503_with_retry_after_never_a_plugin_failure() {
    let stack = Stack::start(Options {
        plugins: &["translator_openai_anthropic.wasm"],
        config: "[plugins]\nmax_instances = 2\n",
        mock_args: &["--chunk-delay-ms", "100"],
        ..Options::default()
    });
    let url = format!("{}{OPENAI}", stack.base);
    // 50 words at 100 ms a chunk: streams far longer than the 2 s a call
    // waits for an instance.
    let words = vec!["word"; 50].join(" ");
    let long = json!({"model": "ant:claude-x", "stream": true,
        "messages": [{"role": "user", "content": words}]});
    let small = json!({"model": "ant:claude-x", "messages": [{"role": "user", "content": "hi"}]});
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        // Two translated streams hold both instances for seconds.
        let streams: Vec<_> = (0..2)
            .map(|_| {
                let (url, long, started) = (&url, &long, started.clone());
                s.spawn(move || {
                    let mut first = true;
                    let st = stream_events(url, long, &[], |_, _| {
                        if first {
                            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            first = false;
                        }
                    });
                    assert_eq!((st.status, st.clean), (200, true));
                })
            })
            .collect();
        assert!(eventually(Duration::from_secs(10), || {
            started.load(std::sync::atomic::Ordering::SeqCst) == 2
        }));
        let r = stack.post(OPENAI, &small, &[]);
        let e = openai_error(&r, 503, "plugin_busy", "service_unavailable_error");
        assert!(e["message"].as_str().unwrap().contains("capacity"), "{e}");
        assert_eq!(r.header("retry-after"), Some("1"));
        for t in streams {
            t.join().unwrap();
        }
    });
    // Back-pressure, not a failure: the plugin is healthy and serves again.
    assert!(calls(&stack, "openai-anthropic", "busy") >= 1.0);
    assert_eq!(calls(&stack, "openai-anthropic", "error"), 0.0);
    assert_eq!(stack.post(OPENAI, &small, &[]).status, 200);
    let p = stack.plugin_state("openai-anthropic").unwrap();
    assert_eq!(p["breaker"]["state"], "closed", "{p}");
}
