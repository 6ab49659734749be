//! The routing chain end to end: each native slot deciding (and every slot
//! reporting its verdict in `route.decided`), a team moved to a cheaper
//! model as its budget drains, the availability breaker tripping per model
//! and provider-wide for each error class, fallback across candidates and
//! shapes with no failed client request, auto-clear through the injectable
//! clock, the pattern slot learning from outcomes, and hot reload of the
//! routing policy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(20);

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
}

fn routing_stack(policy: &str, extra_config: &str, auth: bool, files: &[(&str, &str)]) -> Stack {
    let mut all = vec![("routing.toml", policy)];
    all.extend_from_slice(files);
    let config =
        format!("[routing]\ndefault_provider = \"mock\"\nclock_control = true\n{extra_config}");
    Stack::start(Options {
        config: Box::leak(config.into_boxed_str()),
        no_default_provider: true,
        auth,
        policy_files: Box::leak(all.into_boxed_slice()),
        ..Options::default()
    })
}

/// The `route.decided` event of a request, once committed.
fn decided(stack: &Stack, request_id: &str) -> Value {
    let mut found = Value::Null;
    assert!(
        eventually(WAIT, || {
            let events = stack
                .admin_get("/admin/events?type=route.decided&limit=100000")
                .json();
            if let Some(e) = events["events"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["payload"]["request_id"] == request_id)
            {
                found = e["payload"].clone();
                return true;
            }
            false
        }),
        "no route.decided for {request_id}"
    );
    found
}

fn verdict(event: &Value, slot: &str) -> (String, String) {
    let step = event["chain"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"] == slot)
        .unwrap_or_else(|| panic!("no {slot} in {event}"));
    (
        step["verdict"].as_str().unwrap().to_owned(),
        step["reason"].as_str().unwrap().to_owned(),
    )
}

fn routed(r: &Resp) -> (u16, String, String) {
    (
        r.status,
        r.header("x-sluice-routed-by")
            .unwrap_or_default()
            .to_owned(),
        r.header("x-sluice-model").unwrap_or_default().to_owned(),
    )
}

const SLOTS: &str = r#"
managed_aliases = ["auto"]
default_model = "mock:default-model"

[[pin]]
team = "interns"
model = "mock:pinned-model"

[[rule]]
name = "cheap-header"
when = { header = { x-route-rule = "cheap" } }
route = ["mock:rule-model"]

[[rule]]
name = "tools"
when = { has_tools = true, min_estimated_tokens = 1 }
route = ["mock:tool-model"]

[delegation]
small = "mock:delegated-model"
"#;

#[test]
fn each_native_slot_decides_and_every_slot_reports_a_verdict() {
    let stack = routing_stack(SLOTS, "", true, &[]);
    let (_, plain) = stack.issue_key(&json!({"user_id": "u1"}));
    let (_, intern) = stack.issue_key(&json!({"user_id": "u2", "team_id": "interns"}));
    let bearer = |k: &str| format!("Bearer {k}");
    let (p, i) = (bearer(&plain), bearer(&intern));

    // 1: the client's model, transparently.
    let r = stack.post(OPENAI, &chat("mock:explicit"), &[("authorization", &p)]);
    assert_eq!(
        routed(&r),
        (200, "per_message_override".into(), "explicit".into()),
        "{}",
        r.text()
    );
    let e = decided(&stack, r.header("x-request-id").unwrap());
    assert_eq!(e["chosen_model"], "mock:explicit");
    assert_eq!(e["decided_by"], "per_message_override");
    assert_eq!(e["policy_version"].as_str().unwrap().len(), 12);

    // 2: a pinned team gets its model whatever it asks for.
    let r = stack.post(OPENAI, &chat("mock:explicit"), &[("authorization", &i)]);
    assert_eq!(
        routed(&r),
        (200, "policy_pin".into(), "pinned-model".into()),
        "{}",
        r.text()
    );
    let e = decided(&stack, r.header("x-request-id").unwrap());
    assert_eq!(
        verdict(&e, "per_message_override"),
        ("not_applicable".into(), "transparency_off".into())
    );
    assert_eq!(
        r.json()["model"],
        "mock:explicit",
        "the client's model is echoed"
    );

    // 3: rules, by header and by the request's content.
    let r = stack.post(
        OPENAI,
        &chat("auto"),
        &[("authorization", &p), ("x-route-rule", "cheap")],
    );
    assert_eq!(
        routed(&r),
        (200, "rules".into(), "rule-model".into()),
        "{}",
        r.text()
    );
    let tools = json!({"model": "auto", "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]});
    let r = stack.post(OPENAI, &tools, &[("authorization", &p)]);
    assert_eq!(
        routed(&r),
        (200, "rules".into(), "tool-model".into()),
        "{}",
        r.text()
    );

    // 5: a delegated sub-request gets its tier's model.
    let r = stack.post(
        ANTHROPIC,
        &chat("auto"),
        &[
            ("authorization", &p),
            AV,
            ("x-sluice-delegation-tier", "small"),
        ],
    );
    assert_eq!(
        routed(&r),
        (200, "delegate_request".into(), "delegated-model".into()),
        "{}",
        r.text()
    );

    // 7: the default, with every slot before it reporting why it passed.
    let r = stack.post(OPENAI, &chat("auto"), &[("authorization", &p)]);
    assert_eq!(
        routed(&r),
        (200, "global_default".into(), "default-model".into()),
        "{}",
        r.text()
    );
    let e = decided(&stack, r.header("x-request-id").unwrap());
    let slots: Vec<&str> = e["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["slot"].as_str().unwrap())
        .collect();
    assert_eq!(
        slots,
        [
            "per_message_override",
            "policy_pin",
            "rules",
            "pattern_recommendation",
            "delegate_request",
            "custom",
            "global_default"
        ]
    );
    assert_eq!(
        verdict(&e, "per_message_override"),
        ("not_applicable".into(), "managed_alias".into())
    );
    assert_eq!(
        verdict(&e, "policy_pin"),
        ("not_applicable".into(), "no_pin".into())
    );
    assert_eq!(
        verdict(&e, "rules"),
        ("not_applicable".into(), "no_rule_matched".into())
    );
    assert_eq!(
        verdict(&e, "delegate_request"),
        ("not_applicable".into(), "not_delegated".into())
    );
    assert_eq!(
        verdict(&e, "custom"),
        ("not_applicable".into(), "no_routers".into())
    );
    assert_eq!(verdict(&e, "global_default").0, "chose");
    assert!(e["elapsed_us"].as_u64().unwrap() < 5_000, "{e}");

    let m = stack.metrics();
    for slot in [
        "per_message_override",
        "policy_pin",
        "rules",
        "delegate_request",
        "global_default",
    ] {
        assert!(
            metric(
                &m,
                &format!("sluice_routing_decisions_total{{slot=\"{slot}\"}}")
            ) >= 1.0,
            "{slot}"
        );
    }
    assert!(metric(&m, "sluice_routing_decision_latency_seconds_count") >= 6.0);
}

#[test]
fn a_team_moves_to_a_cheaper_model_as_its_budget_drains() {
    // $1 per 1k output tokens on the big model; 100 output tokens a call
    // spend ~$0.10 of the team's $1.00 day.
    let pricing = r#"version = "t"
[models."mock:big"]
input_per_mtok = "1000"
output_per_mtok = "1000"
max_output_tokens = 150
[models."mock:small"]
input_per_mtok = "1"
output_per_mtok = "1"
"#;
    let policy = r#"
default_model = "mock:big"
[[rule]]
name = "research-saves"
when = { team = "research", team_budget_remaining_lt = "0.50" }
route = ["mock:small"]
"#;
    let budgets = "[teams.research]\ndaily_usd = \"1.00\"\n";
    let stack = routing_stack(
        policy,
        "",
        true,
        &[("pricing.toml", pricing), ("budgets.toml", budgets)],
    );
    let (_, key) = stack.issue_key(&json!({"user_id": "r1", "team_id": "research"}));
    let auth = format!("Bearer {key}");
    let mut models = Vec::new();
    for _ in 0..12 {
        let r = stack.post(
            OPENAI,
            &json!({"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
            &[("authorization", &auth), ("x-mock-output-tokens", "100")],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        models.push(r.header("x-sluice-model").unwrap().to_owned());
    }
    let first_small = models
        .iter()
        .position(|m| m == "small")
        .expect("switched to small");
    assert!(first_small >= 4, "{models:?}");
    assert!(
        models[..first_small].iter().all(|m| m == "big"),
        "{models:?}"
    );
    assert!(
        models[first_small..].iter().all(|m| m == "small"),
        "{models:?}"
    );
    let spent: f64 = stack.admin_get("/admin/budgets/team:research").json()["daily"]["spent_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(spent > 0.5 && spent < 1.0, "{spent}");
}

const FALLBACK: &str = r#"
[models."mock:primary"]
fallbacks = ["mock:backup"]
[models."ant:mock-fail-529"]
fallbacks = ["oai:gpt-4o-mini"]
[models."dead:m"]
fallbacks = ["mock:m"]
[models."slowp:s"]
fallbacks = ["mock:m"]
"#;

const CROSS_SHAPE: &str = r#"
[models."ant:mock-fail-529"]
fallbacks = ["oai:gpt-4o-mini"]
"#;

const EXTRA_PROVIDERS: &str = r#"
[[providers]]
name = "dead"
kind = "mock"
base_url = "http://127.0.0.1:9/v1"
timeouts = { connect_ms = 500 }

[[providers]]
name = "slowp"
kind = "mock"
base_url = "http://127.0.0.1:{mock_port}/v1"
timeouts = { first_byte_ms = 300 }

[[providers]]
name = "mock2"
kind = "mock"
base_url = "http://127.0.0.1:{mock_port}/v1"

[[providers]]
name = "mock3"
kind = "mock"
base_url = "http://127.0.0.1:{mock_port}/v1"
"#;

fn unavailable(stack: &Stack) -> Vec<Value> {
    stack.admin_get("/admin/routing").json()["unavailable"]
        .as_array()
        .unwrap()
        .clone()
}

fn entry(stack: &Stack, provider: &str, model: &str) -> Option<Value> {
    unavailable(stack)
        .into_iter()
        .find(|e| e["provider"] == provider && e["model"] == model)
}

#[test]
fn a_failing_model_trips_after_five_failures_and_clears_by_the_clock_with_no_failed_request() {
    let stack = routing_stack(FALLBACK, EXTRA_PROVIDERS, false, &[]);
    let fail = [("x-mock-fail-model", "primary=503")];
    for i in 0..5 {
        let r = stack.post(OPENAI, &chat("mock:primary"), &fail);
        assert_eq!(
            r.status,
            200,
            "request {i} is served by the fallback: {}",
            r.text()
        );
        assert_eq!(r.header("x-sluice-model"), Some("backup"));
    }
    let e = entry(&stack, "mock", "primary").expect("mock:primary unavailable after 5 failures");
    assert_eq!(e["reason"], "model_failures");
    assert_eq!(e["scope"], "model");
    assert!(e["clears_in_seconds"].as_u64().unwrap() > 290, "{e}");
    // Now it is not even tried: the chain skips it.
    let r = stack.post(OPENAI, &chat("mock:primary"), &fail);
    assert_eq!(
        (r.status, r.header("x-sluice-model")),
        (200, Some("backup"))
    );
    let ev = decided(&stack, r.header("x-request-id").unwrap());
    assert_eq!(ev["tried"].as_array().unwrap().len(), 1, "{ev}");
    assert_eq!(ev["skipped"][0]["model"], "mock:primary");
    assert_eq!(ev["skipped"][0]["outcome"], "provider_unavailable");
    let m = stack.metrics();
    // Models the registry names are labelled; others would be "other".
    assert_eq!(
        metric(
            &m,
            r#"sluice_llm_call_errors_total{error_class="server",model="primary",provider="mock"}"#
        ),
        5.0
    );
    assert_eq!(
        metric(
            &m,
            r#"sluice_provider_available{model="primary",provider="mock"}"#
        ),
        0.0
    );

    // No attempts for 5 minutes (of the injectable clock): it clears.
    let r = stack.admin_post_json("/admin/routing/clock", br#"{"advance_ms": 299000}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        entry(&stack, "mock", "primary").is_some(),
        "still down at 4:59"
    );
    stack.admin_post_json("/admin/routing/clock", br#"{"advance_ms": 1000}"#);
    assert!(
        entry(&stack, "mock", "primary").is_none(),
        "cleared at 5:00"
    );
    let r = stack.post(OPENAI, &chat("mock:primary"), &[]);
    assert_eq!(
        (r.status, r.header("x-sluice-model")),
        (200, Some("primary"))
    );
}

#[test]
fn network_errors_take_the_provider_down_after_two_timeouts_only_the_model() {
    let stack = routing_stack(FALLBACK, EXTRA_PROVIDERS, false, &[]);
    for _ in 0..2 {
        let r = stack.post(OPENAI, &chat("dead:m"), &[]);
        assert_eq!(
            (r.status, r.header("x-sluice-provider")),
            (200, Some("mock")),
            "{}",
            r.text()
        );
    }
    let e = entry(&stack, "dead", "*").expect("dead is down provider-wide");
    assert_eq!(
        (e["scope"].as_str(), e["reason"].as_str()),
        (Some("provider"), Some("network_errors"))
    );
    // Any model of it is now unavailable: with no fallback, a 503 naming it.
    let r = stack.post(OPENAI, &chat("dead:other"), &[]);
    let err = openai_error(&r, 503, "no_model_available", "service_unavailable_error");
    assert_eq!(
        err["message"],
        "no model available; tried: dead:other (provider_unavailable)"
    );

    // Timeouts are network errors too; the fallback answers in time.
    for _ in 0..2 {
        let r = stack.post(OPENAI, &chat("slowp:s"), &[("x-mock-fail-model", "s=slow")]);
        assert_eq!(
            (r.status, r.header("x-sluice-provider")),
            (200, Some("mock")),
            "{}",
            r.text()
        );
    }
    // A timeout waiting for the head counts against the model only: a
    // client's long generation must not take the provider from everyone.
    assert!(
        entry(&stack, "slowp", "*").is_none(),
        "{:?}",
        unavailable(&stack)
    );
}

#[test]
fn an_auth_error_takes_the_provider_down_at_once_and_three_models_down_do_too() {
    let policy = r#"
[models."mock2:a"]
fallbacks = ["mock:ok"]
[models."mock3:x"]
fallbacks = ["mock:ok"]
[models."mock3:y"]
fallbacks = ["mock:ok"]
[models."mock3:z"]
fallbacks = ["mock:ok"]
"#;
    let stack = routing_stack(policy, EXTRA_PROVIDERS, false, &[]);
    // mock2 refuses the gateway's credential once: down provider-wide, and
    // the client is served by the fallback.
    let r = stack.post(OPENAI, &chat("mock2:a"), &[("x-mock-fail-model", "a=401")]);
    assert_eq!(
        (r.status, r.header("x-sluice-provider")),
        (200, Some("mock")),
        "{}",
        r.text()
    );
    let e = entry(&stack, "mock2", "*").expect("auth error: provider-wide");
    assert_eq!(e["reason"], "auth_error");
    let m = stack.metrics();
    assert_eq!(
        metric(
            &m,
            r#"sluice_provider_available{model="*",provider="mock2"}"#
        ),
        0.0
    );

    // Three models of mock3 down within two minutes: the whole provider.
    for model in ["x", "y", "z"] {
        for _ in 0..5 {
            let r = stack.post(
                OPENAI,
                &chat(&format!("mock3:{model}")),
                &[("x-mock-fail-model", &format!("{model}=500"))],
            );
            assert_eq!(
                (r.status, r.header("x-sluice-model")),
                (200, Some("ok")),
                "{}",
                r.text()
            );
        }
    }
    let e = entry(&stack, "mock3", "*").expect("three models down: provider-wide");
    assert_eq!(e["reason"], "models_unavailable");
}

#[test]
fn fallback_crosses_api_shapes_before_any_byte_is_sent() {
    let stack = Stack::start(Options {
        plugins: &["translator_openai_anthropic.wasm"],
        config: "[routing]\ndefault_provider = \"mock\"\n",
        no_default_provider: true,
        policy_files: &[("routing.toml", CROSS_SHAPE)],
        ..Options::default()
    });
    // An Anthropic client: the Anthropic provider fails, the OpenAI-shape
    // one answers, translated back.
    let r = stack.post(ANTHROPIC, &chat("ant:mock-fail-529"), &[AV]);
    assert_eq!(
        (r.status, r.header("x-sluice-provider")),
        (200, Some("oai")),
        "{}",
        r.text()
    );
    assert_eq!(r.json()["type"], "message");
    // Streamed, from an OpenAI client: translated to Anthropic for the
    // first attempt, sent as is to the second.
    let mut body = chat("ant:mock-fail-529");
    body["stream"] = json!(true);
    let r = stack.post(OPENAI, &body, &[]);
    assert_eq!(
        (r.status, r.header("x-sluice-provider")),
        (200, Some("oai")),
        "{}",
        r.text()
    );
    let events = r.events();
    assert_eq!(events.last().unwrap().1, "[DONE]");
    // Records are committed off the request path: wait for both.
    let mut failed = Vec::new();
    assert!(
        eventually(WAIT, || {
            failed = stack
                .usage_records()
                .into_iter()
                .filter(|r| r["model"] == "ant:mock-fail-529")
                .collect();
            failed.len() == 2
        }),
        "each failed attempt leaves its record: {failed:?}"
    );
    assert!(
        failed
            .iter()
            .all(|r| r["status"] == 529 && r["cost_usd"] == "0")
    );
}

#[test]
fn the_pattern_slot_recommends_what_worked_for_similar_requests() {
    let policy = r#"
default_model = "mock:gpt-4o"
[pattern]
min_sample_size = 5
"#;
    let stack = routing_stack(policy, "", false, &[]);
    let task = ("x-sluice-task", "summarize");
    // Four failures of one model (below the breaker's five), four
    // successes of another, on requests of the same workload.
    for _ in 0..4 {
        let r = stack.post(
            OPENAI,
            &chat("mock:gpt-4o"),
            &[task, ("x-mock-fail-model", "gpt-4o=500")],
        );
        assert_eq!(r.status, 500);
        let r = stack.post(OPENAI, &chat("mock:gpt-4o-mini"), &[task]);
        assert_eq!(r.status, 200);
    }
    assert!(eventually(WAIT, || {
        stack.admin_get("/admin/routing").json()["patterns"]["recorded"] == 8
    }));
    // Recorded outcomes are published within 50 ms: wait for the slot.
    let mut r = stack.post(OPENAI, &chat("auto"), &[task]);
    assert!(eventually(WAIT, || {
        r = stack.post(OPENAI, &chat("auto"), &[task]);
        r.header("x-sluice-routed-by") == Some("pattern_recommendation")
    }));
    assert_eq!(
        routed(&r),
        (200, "pattern_recommendation".into(), "gpt-4o-mini".into())
    );
    let e = decided(&stack, r.header("x-request-id").unwrap());
    let (v, reason) = verdict(&e, "pattern_recommendation");
    assert_eq!(v, "chose");
    assert!(reason.starts_with("pattern: score"), "{reason}");
    // Another workload has no history: the default decides.
    let r = stack.post(OPENAI, &chat("auto"), &[("x-sluice-task", "translate")]);
    assert_eq!(routed(&r), (200, "global_default".into(), "gpt-4o".into()));
    let e = decided(&stack, r.header("x-request-id").unwrap());
    assert_eq!(
        verdict(&e, "pattern_recommendation"),
        ("not_applicable".into(), "empty_cluster".into())
    );
    assert!(
        metric(
            &stack.metrics(),
            r#"sluice_pattern_matches_total{result="recommended"}"#
        ) >= 1.0
    );
}

#[test]
fn an_invalid_routing_policy_is_refused_and_the_last_good_one_keeps_serving() {
    let stack = routing_stack("default_model = \"mock:one\"\n", "", false, &[]);
    let version = stack.admin_get("/admin/routing").json()["policy_version"].clone();
    let path = stack.dir.path().join("policies/routing.toml");
    std::fs::write(&path, "default_model = \"nowhere:two\"\n").unwrap();
    let r = stack.admin_post("/admin/reload");
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("not configured"), "{}", r.text());
    assert_eq!(
        stack.admin_get("/admin/routing").json()["policy_version"],
        version
    );
    let r = stack.post(OPENAI, &chat("auto"), &[]);
    assert_eq!(r.header("x-sluice-model"), Some("one"));
    assert!(eventually(WAIT, || {
        let ev = stack
            .admin_get("/admin/events?type=routing.policy_invalid")
            .json();
        ev["events"].as_array().is_some_and(|e| {
            e.iter().any(|e| {
                e["payload"]["kept_version"] == version
                    && e["payload"]["error"].as_str().unwrap().contains("nowhere")
            })
        })
    }));
    std::fs::write(&path, "default_model = \"mock:two\"\n").unwrap();
    assert!(eventually(WAIT, || stack
        .admin_get("/admin/routing")
        .json()["policy_version"]
        != version));
    let r = stack.post(OPENAI, &chat("auto"), &[]);
    assert_eq!(r.header("x-sluice-model"), Some("two"));
    let e = decided(&stack, r.header("x-request-id").unwrap());
    assert_eq!(
        e["policy_version"],
        stack.admin_get("/admin/routing").json()["policy_version"]
    );
}
