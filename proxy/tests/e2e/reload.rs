//! Hot loading, swapping and unloading of plugins in a running proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

fn chat(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn served_model(stack: &Stack) -> String {
    let r = stack.post("/v1/chat/completions", &chat("base"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-sluice-model").unwrap().to_owned()
}

#[test]
fn dropped_in_router_takes_effect_without_restart() {
    let mut stack = Stack::start(Options {
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    });
    let pid = stack.admin_get("/readyz").json()["pid"].as_u64().unwrap();
    assert_eq!(served_model(&stack), "base");

    let dropped = Instant::now();
    stack.install("test_router_versioned.wasm", "router.wasm");
    assert!(
        eventually(Duration::from_secs(2), || served_model(&stack) == "v1"),
        "requests did not follow the dropped-in router within 2 s"
    );
    eprintln!("router effective after {:?}", dropped.elapsed());

    assert!(stack.proxy.is_running());
    let ready = stack.admin_get("/readyz").json();
    assert_eq!(ready["pid"].as_u64().unwrap(), pid, "same process");
    assert!(ready["generation"].as_u64().unwrap() >= 2);
    let p = stack.plugin_state("versioned").expect("listed");
    assert_eq!(p["state"], "loaded");
    assert_eq!(p["kind"], "router");
    assert_eq!(p["version"], "1.0.0");
    assert_eq!(p["sha256"].as_str().unwrap().len(), 64);

    // Removing the file unloads it: gone from the list, and requests no
    // longer see it.
    std::fs::remove_file(stack.plugins_dir.join("router.wasm")).unwrap();
    assert!(eventually(Duration::from_secs(2), || stack
        .plugin_state("versioned")
        .is_none()));
    assert_eq!(served_model(&stack), "base");
}

#[test]
fn swap_under_concurrent_load_loses_nothing() {
    let stack = Arc::new(Stack::start(Options {
        plugins: &[],
        args: &[],
        // Streams long enough to straddle the swap.
        mock_args: &["--chunk-delay-ms", "15"],
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    }));
    stack.install("test_router_versioned.wasm", "router.wasm");
    assert!(eventually(Duration::from_secs(5), || served_model(&stack) == "v1"));

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let (v1, v2) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let streams_done = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..10 {
        let (stack, stop, failures) = (stack.clone(), stop.clone(), failures.clone());
        let (v1, v2, streams_done) = (v1.clone(), v2.clone(), streams_done.clone());
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let model = if i % 2 == 0 {
                    let r = stack.post("/v1/chat/completions", &chat("base"), &[]);
                    if r.status != 200 || r.json()["choices"][0]["message"]["content"].is_null() {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {} {}", r.status, r.text());
                        continue;
                    }
                    r.header("x-sluice-model").unwrap_or_default().to_owned()
                } else {
                    let mut models = Vec::new();
                    let mut done = false;
                    let body = json!({"model": "base", "stream": true,
                        "messages": [{"role": "user", "content": "one two three four five six"}]});
                    let Streamed { status, clean, .. } = stream_events(
                        &format!("{}/v1/chat/completions", stack.base),
                        &body,
                        &[],
                        |_, data| {
                            if data == "[DONE]" {
                                done = true;
                            } else if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                                models.push(v["model"].as_str().unwrap_or_default().to_owned());
                            }
                        },
                    );
                    if status != 200 || !clean || !done {
                        failures.fetch_add(1, Ordering::Relaxed);
                        eprintln!("stream failed: status {status} clean {clean} done {done}");
                        continue;
                    }
                    // The client's model string is echoed on every chunk.
                    assert!(models.iter().all(|m| m == "base"), "{models:?}");
                    streams_done.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                match model.as_str() {
                    "v1" => v1.fetch_add(1, Ordering::Relaxed),
                    "v2" => v2.fetch_add(1, Ordering::Relaxed),
                    other => panic!("unexpected model {other}"),
                };
            }
        }));
    }
    // Swap once load is flowing and streams are in flight, and keep the
    // load on until the new version has served plenty.
    assert!(eventually(Duration::from_secs(10), || v1
        .load(Ordering::Relaxed)
        > 50
        && streams_done.load(Ordering::Relaxed) >= 2));
    stack.install("test_router_versioned_v2.wasm", "router.wasm");
    assert!(eventually(Duration::from_secs(5), || v2
        .load(Ordering::Relaxed)
        > 50));
    let streams_at_swap = streams_done.load(Ordering::Relaxed);
    assert!(eventually(Duration::from_secs(10), || streams_done
        .load(Ordering::Relaxed)
        >= streams_at_swap + 3));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (n1, n2) = (v1.load(Ordering::Relaxed), v2.load(Ordering::Relaxed));
    eprintln!(
        "v1 {n1}, v2 {n2}, streams {}",
        streams_done.load(Ordering::Relaxed)
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed requests during the swap"
    );
    assert!(n1 > 0 && n2 > 0, "both versions observed: v1 {n1}, v2 {n2}");
    assert!(streams_done.load(Ordering::Relaxed) >= 5);
    assert_eq!(stack.plugin_state("versioned").unwrap()["version"], "2.0.0");
}

#[test]
fn stream_in_flight_finishes_on_the_router_it_started_with() {
    let stack = Stack::start(Options {
        plugins: &["test_router_versioned.wasm"],
        mock_args: &["--chunk-delay-ms", "60"],
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    });
    let url = format!("{}/v1/chat/completions", stack.base);
    let body = json!({"model": "base", "stream": true,
        "messages": [{"role": "user", "content": "a b c d e f g h i j"}]});
    let mut swapped = false;
    let mut text = String::new();
    let mut done = false;
    let stream = stream_events(&url, &body, &[], |_, data| {
        if !swapped {
            // First chunk seen: the stream is in flight. Swap now, and wait
            // until new requests see v2 while this stream is still open.
            std::fs::remove_file(stack.plugins_dir.join("test_router_versioned.wasm")).unwrap();
            stack.install("test_router_versioned_v2.wasm", "router.wasm");
            assert!(eventually(STATE_WAIT, || served_model(&stack) == "v2"));
            swapped = true;
        }
        done |= data == "[DONE]";
        text.push_str(&openai_delta(data).unwrap_or_default());
    });
    assert_eq!((stream.status, stream.clean, done), (200, true, true));
    // The stream was routed by v1 and finished after v2 took over.
    assert_eq!(stream.header("x-sluice-model"), Some("v1"));
    assert_eq!(text, "Mock reply to: a b c d e f g h i j");
    assert_eq!(served_model(&stack), "v2");
}

#[test]
fn stream_in_flight_finishes_on_the_translator_it_started_with() {
    let stack = Stack::start(Options {
        plugins: &["translator_openai_anthropic.wasm"],
        mock_args: &["--chunk-delay-ms", "60"],
        ..Options::default()
    });
    let url = format!("{}/v1/chat/completions", stack.base);
    // `ant` speaks only Anthropic: the stream goes through the translator.
    let body = json!({"model": "ant:claude-x", "stream": true,
        "messages": [{"role": "user", "content": "a b c d e f g h i j"}]});
    let small = json!({"model": "ant:claude-x",
        "messages": [{"role": "user", "content": "hi"}]});
    let mut removed = false;
    let mut text = String::new();
    let mut done = false;
    let stream = stream_events(&url, &body, &[], |_, data| {
        if !removed {
            std::fs::remove_file(stack.plugins_dir.join("translator_openai_anthropic.wasm"))
                .unwrap();
            // New requests lose the translator while this stream keeps it.
            assert!(eventually(STATE_WAIT, || {
                stack.post("/v1/chat/completions", &small, &[]).status == 503
            }));
            removed = true;
        }
        done |= data == "[DONE]";
        text.push_str(&openai_delta(data).unwrap_or_default());
    });
    assert!(removed);
    assert_eq!((stream.status, stream.clean, done), (200, true, true));
    assert_eq!(text, "Mock reply to: a b c d e f g h i j");
    let r = stack.post("/v1/chat/completions", &small, &[]);
    assert_eq!(r.json()["error"]["code"], "translator_unavailable");
}

#[test]
fn invalid_and_wrong_world_components_are_rejected_and_last_good_keeps_serving() {
    let stack = Stack::start(Options {
        plugins: &["test_router_versioned.wasm"],
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    });
    assert_eq!(served_model(&stack), "v1");
    let errors_before = metric(
        &stack.metrics(),
        "sluice_plugin_reloads_total{result=\"error\"}",
    );

    // Garbage where the good router was: it keeps serving, marked stale.
    std::fs::write(
        stack.plugins_dir.join("test_router_versioned.wasm"),
        b"\0asm garbage",
    )
    .unwrap();
    assert!(eventually(STATE_WAIT, || {
        stack
            .plugin_state("versioned")
            .is_some_and(|p| p["state"] == "stale")
    }));
    let p = stack.plugin_state("versioned").unwrap();
    assert!(
        p["last_error"].as_str().unwrap().contains("not a valid"),
        "{p}"
    );
    assert_eq!(served_model(&stack), "v1");

    // A valid component of no Sluice world, and plain junk, never load.
    stack.install("test-not-a-plugin.wasm", "command.wasm");
    std::fs::write(stack.plugins_dir.join("junk.wasm"), b"hello").unwrap();
    assert!(
        eventually(STATE_WAIT, || {
            let v = stack.plugins();
            let failed: Vec<_> = v["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["state"] == "failed")
                .map(|p| p["last_error"].as_str().unwrap_or_default().to_owned())
                .collect();
            failed.len() == 2
                && failed
                    .iter()
                    .any(|e| e.contains("exports none of the sluice:plugin"))
        }),
        "{}",
        stack.plugins()
    );
    assert_eq!(served_model(&stack), "v1");
    assert!(
        metric(
            &stack.metrics(),
            "sluice_plugin_reloads_total{result=\"error\"}"
        ) > errors_before
    );

    // An explicit reload reports the errors.
    let r = stack.admin_post("/admin/reload");
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["ok"], false);
    assert!(stack.admin_get("/healthz").status == 200);
}

#[test]
fn sighup_and_admin_reload_pick_up_changes_when_watching_is_off() {
    let stack = Stack::start(Options {
        config: "[plugins]\nwatch = false\n",
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    });
    stack.install("test_router_versioned.wasm", "router.wasm");
    // A watcher would reload within its 200 ms debounce; none does.
    assert!(
        stays(Duration::from_millis(600), || stack.plugins()["generation"]
            == 1),
        "nothing watches the directory"
    );
    assert_eq!(served_model(&stack), "base");

    let r = stack.admin_post("/admin/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ok"], true);
    assert_eq!(served_model(&stack), "v1");

    stack.install("test_router_versioned_v2.wasm", "router.wasm");
    let pid = stack.proxy.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(eventually(STATE_WAIT, || served_model(&stack) == "v2"));
}

#[test]
fn policy_binds_config_and_a_bad_policy_keeps_the_last_good_one() {
    let policy = r#"
[[plugin]]
name = "model-prefix"
config = { rules = [{ prefix = "fast-", provider = "mock", model = "gpt-4o-mini" }] }
"#;
    let stack = Stack::start(Options {
        plugins: &["router_model_prefix.wasm"],
        policy: Some(policy),
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    });
    let r = stack.post("/v1/chat/completions", &chat("fast-anything"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-sluice-model"), Some("gpt-4o-mini"));
    assert_eq!(
        r.json()["model"],
        "fast-anything",
        "the client's model is echoed"
    );

    std::fs::write(
        stack.policies_dir.join("test.toml"),
        "[[plugin]]\nnme = 1\n",
    )
    .unwrap();
    assert!(eventually(STATE_WAIT, || {
        stack.plugins()["last_reload"]["errors"]
            .to_string()
            .contains("policies rejected")
    }));
    let r = stack.post("/v1/chat/completions", &chat("fast-anything"), &[]);
    assert_eq!(r.header("x-sluice-model"), Some("gpt-4o-mini"));
}

#[test]
fn plugins_check_cli_describes_components() {
    let out = std::process::Command::new(SLUICE)
        .args(["plugins", "check"])
        .arg(plugin("router_header.wasm"))
        .arg(plugin("translator_openai_anthropic.wasm"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("kind: router") && text.contains("name: header-route"),
        "{text}"
    );
    assert!(
        text.contains("kind: translator") && text.contains("openai->anthropic"),
        "{text}"
    );

    let out = std::process::Command::new(SLUICE)
        .args(["plugins", "check"])
        .arg(plugin("test-not-a-plugin.wasm"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("invalid"));
}

#[test]
fn redactor_and_evaluator_worlds_load() {
    let out = std::process::Command::new(SLUICE)
        .args(["plugins", "check"])
        .arg(plugin("redactor_pii.wasm"))
        .arg(plugin("evaluator_heuristic.wasm"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("kind: redactor") && text.contains("name: pii-redactor"),
        "{text}"
    );
    assert!(
        text.contains("kind: evaluator") && text.contains("name: heuristic-judge"),
        "{text}"
    );

    let stack = Stack::start(Options {
        plugins: &["redactor_pii.wasm", "evaluator_heuristic.wasm"],
        ..Options::default()
    });
    for (name, kind) in [
        ("pii-redactor", "redactor"),
        ("heuristic-judge", "evaluator"),
    ] {
        let p = stack
            .plugin_state(name)
            .unwrap_or_else(|| panic!("{name} not listed: {}", stack.plugins()));
        assert_eq!(p["state"], "loaded", "{p}");
        assert_eq!(p["kind"], kind, "{p}");
        assert!(p["version"].is_string(), "{p}");
    }

    // Not on the request path yet: requests are served as before.
    let body = json!({"model": "base",
        "messages": [{"role": "user", "content": "mail bob@example.com"}]});
    let r = stack.post("/v1/chat/completions", &body, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["choices"][0]["message"]["content"].is_string(),
        "{}",
        r.text()
    );
    let mut done = false;
    let Streamed { status, clean, .. } = stream_events(
        &format!("{}/v1/chat/completions", stack.base),
        &json!({"model": "base", "stream": true,
            "messages": [{"role": "user", "content": "hello"}]}),
        &[],
        |_, data| done |= data == "[DONE]",
    );
    assert_eq!((status, clean, done), (200, true, true));
}

#[test]
fn a_hundred_reloads_under_load_fail_no_request() {
    let stack = Arc::new(Stack::start(Options {
        plugins: &["test_router_versioned.wasm"],
        config: "[plugins]\nwatch = false\n",
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stack, stop, ok, failed) =
                (stack.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = stack.post("/v1/chat/completions", &chat("base"), &[]);
                    let model = r.header("x-sluice-model").unwrap_or_default();
                    if r.status == 200 && (model == "v1" || model == "v2") {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {} {}", r.status, r.text());
                    }
                }
            })
        })
        .collect();
    for i in 0..100 {
        let version = if i % 2 == 0 {
            "test_router_versioned_v2.wasm"
        } else {
            "test_router_versioned.wasm"
        };
        stack.install(version, "test_router_versioned.wasm");
        let r = stack.admin_post("/admin/reload");
        assert_eq!(r.status, 200, "reload {i}: {}", r.text());
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    eprintln!("{} requests across 100 reloads", ok.load(Ordering::Relaxed));
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(ok.load(Ordering::Relaxed) > 100);
    assert_eq!(stack.plugins()["generation"], 101);
}
