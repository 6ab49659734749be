//! Guests from the toolchains plugin authors use: a Python router
//! (componentize-py) that prints on every call, a JavaScript router (jco,
//! QuickJS backend, default flags), and a Rust guest that floods its
//! output. Each decides requests or is survived, its output reaches the
//! log safely, and credentials never reach any of them.

use serde_json::json;

use crate::harness::*;

fn guests_stack() -> Stack {
    Stack::start(Options {
        plugins: &["router_python.wasm", "router_js.wasm"],
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    })
}

fn openai(lang: &str) -> (serde_json::Value, [(&'static str, String); 1]) {
    (
        json!({"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}),
        [("x-route-lang", lang.to_owned())],
    )
}

#[test]
fn python_and_javascript_routers_decide_requests_in_both_shapes() {
    let stack = guests_stack();
    for (lang, model) in [
        ("python", "from-python"),
        ("js", "from-js"),
        ("none", "gpt-x"),
    ] {
        let (body, [(k, v)]) = openai(lang);
        let r = stack.post(OPENAI, &body, &[(k, &v)]);
        assert_eq!(r.status, 200, "{lang}: {}", r.text());
        assert_eq!(r.header("x-sluice-model"), Some(model), "{lang}");
        assert_eq!(r.json()["model"], "gpt-x", "the client's model is echoed");
        let a = stack.post(
            ANTHROPIC,
            &json!({"model": "claude-x", "max_tokens": 20,
                    "messages": [{"role": "user", "content": "hi"}]}),
            &[AV, (k, &v)],
        );
        assert_eq!(a.status, 200, "{lang}: {}", a.text());
        let expected = if lang == "none" { "claude-x" } else { model };
        assert_eq!(a.header("x-sluice-model"), Some(expected), "{lang}");
    }
    // The Python guest printed on every call and the JS guest logged
    // through the host; both reached the log, tagged.
    let log = stack.proxy.log_text();
    let printed = log
        .lines()
        .filter(|l| l.contains("python router saw") && l.contains("stream=\"stdout\""))
        .count();
    assert!(printed >= 6, "{log}");
    assert!(log.lines().any(|l| l.contains("js router saw")
        && l.contains("plugin=\"js-router\"")
        && l.contains("stream=\"log\"")));
}

#[test]
fn a_printing_guest_serves_concurrent_load_without_a_failure() {
    let stack = guests_stack();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let stack = &stack;
                s.spawn(move || {
                    let lang = if i % 2 == 0 { "python" } else { "js" };
                    for _ in 0..15 {
                        let (body, [(k, v)]) = openai(lang);
                        let r = stack.post(OPENAI, &body, &[(k, &v)]);
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    });
    let m = stack.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"python-router\",result=\"error\"}"
        ),
        0.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "sluice_plugin_calls_total{plugin=\"python-router\",result=\"ok\"}"
        ) >= 120.0
    );
}

#[test]
fn credentials_never_reach_plugins_or_the_log() {
    let stack = guests_stack();
    let secrets = [
        ("authorization", "Bearer sk-secret-authorization"),
        ("proxy-authorization", "Basic secret-proxy-authorization"),
        ("x-api-key", "secret-x-api-key"),
        ("api-key", "secret-api-key"),
        ("x-goog-api-key", "secret-goog-key"),
        ("cookie", "session=secret-cookie"),
    ];
    let (body, [(k, v)]) = openai("python");
    let mut headers: Vec<(&str, &str)> = secrets.to_vec();
    headers.push((k, &v));
    headers.push(("x-visible", "yes"));
    let r = stack.post(OPENAI, &body, &headers);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(eventually(STATE_WAIT, || stack
        .proxy
        .log_text()
        .contains("x-visible")));
    let log = stack.proxy.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("python router saw") && l.contains("x-visible"))
        .unwrap();
    for (name, value) in secrets {
        assert!(
            !line.contains(&format!("{name},")) && !line.ends_with(name),
            "{name} in {line}"
        );
        assert!(!log.contains(value), "{value} reached the log");
    }
}

#[test]
fn a_flood_of_guest_output_is_escaped_capped_and_rate_limited() {
    let mut stack = Stack::start(Options {
        plugins: &["test_hostile_print.wasm"],
        ..Options::default()
    });
    let body = json!({"model": "base", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..5 {
        let r = stack.post(OPENAI, &body, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let m = stack.metrics();
    let logged = metric(
        &m,
        "sluice_plugin_log_lines_total{plugin=\"hostile-print\",result=\"logged\"}",
    );
    let dropped = metric(
        &m,
        "sluice_plugin_log_lines_total{plugin=\"hostile-print\",result=\"dropped\"}",
    );
    assert!((100.0..200.0).contains(&logged), "{logged}");
    assert!(dropped > 1000.0, "{dropped}");
    let log = stack.proxy.log_text();
    for line in log
        .lines()
        .filter(|l| l.contains("plugin=\"hostile-print\""))
    {
        assert!(
            line.len() < 1400,
            "an uncapped line of {} bytes",
            line.len()
        );
        assert!(!line.contains('\u{1b}'), "a raw escape sequence: {line}");
    }
    // The 1 MB line appears once, cut, and its escape sequence escaped.
    let cut: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("(cut at 1024 bytes)"))
        .collect();
    assert!(!cut.is_empty() && cut.len() <= 5, "{}", cut.len());
    assert!(log.contains("\\u{1b}[31mred"));
    // A newline inside one host.log call cannot start a forged record.
    assert!(
        log.lines()
            .any(|l| l.contains("one\\nINFO forged log entry"))
    );
    assert!(!log.lines().any(|l| l.starts_with("INFO forged")));
    assert!(stack.proxy.is_running());
}
