//! Budgets end to end: nobody spends past a cap, with 256 concurrent
//! requests (half streamed) on one key and with user and team caps shared
//! by several keys; spend carries over a restart and a kill -9; costs are
//! the pricing arithmetic exactly; rate limits refuse a burst.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

/// mock:gpt-4o-mini at $0.15 / $0.60 per 1M tokens, in units of 1e-8 USD
/// per token: 15 and 60.
fn cost_units(input: u64, output: u64) -> u64 {
    input * 15 + output * 60
}

fn budget_stack(budgets: &str, config: &str) -> Stack {
    let pricing = shipped_pricing();
    let files: Vec<(&str, &str)> = vec![
        ("pricing.toml", pricing.as_str()),
        ("budgets.toml", budgets),
    ];
    // Leaked for the 'a of Options: one small string per test.
    let files: &'static [(&'static str, &'static str)] = Box::leak(
        files
            .into_iter()
            .map(|(a, b)| (a, &*Box::leak(b.to_owned().into_boxed_str())))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let config: &'static str = Box::leak(config.to_owned().into_boxed_str());
    Stack::start(Options {
        auth: true,
        policy_files: files,
        config,
        ..Options::default()
    })
}

/// What one request cost, from its own usage report; `None` if refused.
#[derive(Debug)]
enum Outcome {
    Served { input: u64, output: u64 },
    Refused,
}

/// One request as a client sends it: `kind` 0 = whole OpenAI, 1 = streamed
/// OpenAI (usage asked for), 2 = streamed Anthropic, 3 = whole Anthropic.
fn spend(base: &str, secret: &str, kind: usize, max_tokens: Option<u64>, output: u64) -> Outcome {
    let out = output.to_string();
    let auth = format!("Bearer {secret}");
    let mut h: Vec<(&str, &str)> = vec![("authorization", &auth), ("x-mock-output-tokens", &out)];
    let anthropic = kind >= 2;
    let mut body =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "spend it"}]});
    let path = if anthropic {
        h.push(AV);
        body["model"] = json!("mock:gpt-4o-mini");
        body["max_tokens"] = json!(max_tokens.unwrap_or(4096));
        ANTHROPIC
    } else {
        body["model"] = json!("mock:gpt-4o-mini");
        if let Some(m) = max_tokens {
            body["max_tokens"] = json!(m);
        }
        OPENAI
    };
    let streamed = kind == 1 || kind == 2;
    if streamed {
        body["stream"] = json!(true);
        if !anthropic {
            body["stream_options"] = json!({"include_usage": true});
        }
    }
    let r = request(&format!("{base}{path}"), Some(&body), &h);
    if r.status == 429 {
        let v = r.json();
        let code = if anthropic {
            &v["error"]["type"]
        } else {
            &v["error"]["code"]
        };
        assert!(
            code == "quota_exceeded" || code == "rate_limit_error",
            "{v}"
        );
        if !anthropic {
            assert_eq!(v["error"]["type"], "rate_limit_error");
        }
        assert!(r.header("retry-after").is_some());
        return Outcome::Refused;
    }
    assert_eq!(r.status, 200, "{}", r.text());
    if !streamed {
        let v = r.json();
        let u = &v["usage"];
        return if anthropic {
            Outcome::Served {
                input: u["input_tokens"].as_u64().unwrap(),
                output: u["output_tokens"].as_u64().unwrap(),
            }
        } else {
            Outcome::Served {
                input: u["prompt_tokens"].as_u64().unwrap(),
                output: u["completion_tokens"].as_u64().unwrap(),
            }
        };
    }
    let (mut input, mut output) = (None, None);
    for (_, data) in r.events() {
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        if anthropic {
            if let Some(n) = v["message"]["usage"]["input_tokens"].as_u64() {
                input = Some(n);
            }
            if v["type"] == "message_delta" {
                output = v["usage"]["output_tokens"].as_u64();
            }
        } else if let Some(u) = v["usage"].as_object() {
            input = u["prompt_tokens"].as_u64();
            output = u["completion_tokens"].as_u64();
        }
    }
    Outcome::Served {
        input: input.expect("stream usage"),
        output: output.expect("stream usage"),
    }
}

/// Send `n` requests at once, spread over `secrets` and the four kinds;
/// returns the outcomes.
fn storm(
    s: &Stack,
    secrets: &[String],
    n: usize,
    max_tokens: impl Fn(usize) -> Option<u64>,
    output: u64,
) -> Vec<(usize, Outcome)> {
    let base = Arc::new(s.base.clone());
    let gate = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (base, gate, secret) = (
                base.clone(),
                gate.clone(),
                secrets[i % secrets.len()].clone(),
            );
            let m = max_tokens(i);
            std::thread::spawn(move || {
                gate.wait();
                (i, spend(&base, &secret, i % 4, m, output))
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn served_units(outcomes: &[(usize, Outcome)], pick: impl Fn(usize) -> bool) -> u64 {
    outcomes
        .iter()
        .filter(|(i, _)| pick(*i))
        .map(|(_, o)| match o {
            Outcome::Served { input, output } => cost_units(*input, *output),
            Outcome::Refused => 0,
        })
        .sum()
}

/// `usd` as units of 1e-8.
fn units(usd: &str) -> u64 {
    let (whole, frac) = usd.split_once('.').unwrap_or((usd, ""));
    let frac = format!("{frac:0<8}");
    whole.parse::<u64>().unwrap() * 100_000_000 + frac[..8].parse::<u64>().unwrap()
}

fn spent(s: &Stack, scope: &str) -> (u64, u64) {
    let v = s.admin_get(&format!("/admin/budgets/{scope}")).json();
    (
        units(v["daily"]["spent_usd"].as_str().unwrap()),
        units(v["daily"]["held_usd"].as_str().unwrap()),
    )
}

fn record_units(records: &[Value], scope: &str) -> u64 {
    records
        .iter()
        .filter(|r| r["scopes"].as_array().unwrap().iter().any(|x| x == scope))
        .map(|r| units(r["cost_usd"].as_str().unwrap()))
        .sum()
}

#[test]
fn no_overspend_with_256_concurrent_requests_half_streamed_on_one_key() {
    let s = budget_stack("", "");
    // $0.01 is 1,000,000 units; a full answer of 2000 tokens costs ~120,000.
    let (id, secret) = s.issue_key(&json!({"daily_cap_usd": "0.01"}));
    // Half the clients set no max_tokens, the others one far beyond the cap.
    let outcomes = storm(
        &s,
        std::slice::from_ref(&secret),
        256,
        |i| if i % 8 < 4 { None } else { Some(100_000) },
        2000,
    );
    let served = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Served { .. }))
        .count();
    let refused = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Refused))
        .count();
    assert_eq!(served + refused, 256);
    // How many are served depends on how the holds interleave (each in
    // flight holds its worst case); that some are and the rest refused
    // does not.
    assert!(
        served >= 1 && refused > 0,
        "served {served}, refused {refused}"
    );
    let total = served_units(&outcomes, |_| true);
    eprintln!(
        "256 on one key: {served} served, {refused} refused, {total} of 1,000,000 units spent"
    );
    assert!(total <= 1_000_000, "spent {total} units of a 1,000,000 cap");
    // The ledger, the usage records and the responses agree to the unit.
    let key_scope = format!("key:{id}");
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .len()
        == 256));
    let (ledger, held) = spent(&s, &key_scope);
    assert_eq!(held, 0, "every hold settled or released");
    assert_eq!(ledger, total);
    assert_eq!(record_units(&s.usage_records(), &key_scope), total);
    let blocked = s
        .usage_records()
        .iter()
        .filter(|r| r["policy_result"] == "blocked")
        .count();
    assert_eq!(blocked, refused);
    // The refusals are audit events.
    let ev = s
        .admin_get("/admin/events?type=gateway.quota_exceeded&limit=1000")
        .json();
    assert_eq!(ev["events"].as_array().unwrap().len(), refused);
    let alerts = || {
        s.admin_get("/admin/events?type=quota.alert").json()["events"]
            .as_array()
            .unwrap()
            .clone()
    };
    // Thresholds are alerted when settled spend crosses them; how far
    // spend gets depends on how the holds interleave.
    let levels: Vec<Value> = alerts()
        .iter()
        .map(|a| a["payload"]["level"].clone())
        .collect();
    assert_eq!(
        levels.contains(&json!("warning")),
        total >= 800_000,
        "{levels:?} at {total}"
    );
    if total >= 950_000 {
        assert!(levels.contains(&json!("critical")), "{levels:?} at {total}");
    }
}

#[test]
fn user_and_team_caps_hold_across_several_keys() {
    let s = budget_stack(
        "[teams.ml]\ndaily_usd = \"0.004\"\n[users.bob]\ndaily_usd = \"0.0025\"\n",
        "",
    );
    let keys: Vec<(String, String)> = [("bob", "ml"), ("bob", "ml"), ("carol", "ml")]
        .iter()
        .map(|(u, t)| s.issue_key(&json!({"user_id": u, "team_id": t})))
        .collect();
    let secrets: Vec<String> = keys.iter().map(|k| k.1.clone()).collect();
    let outcomes = storm(&s, &secrets, 96, |_| None, 1500);
    let team = served_units(&outcomes, |_| true);
    let bob = served_units(&outcomes, |i| i % 3 != 2);
    eprintln!("three keys, one team: team spent {team} of 400,000 units, bob {bob} of 250,000");
    assert!(team <= 400_000, "team spent {team} of 400,000");
    assert!(bob <= 250_000, "bob spent {bob} of 250,000");
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .len()
        == 96));
    assert_eq!(spent(&s, "team:ml").0, team);
    assert_eq!(spent(&s, "user:bob").0, bob);
    assert!(
        s.admin_get("/admin/events?type=gateway.quota_exceeded")
            .text()
            .contains("\"team\"")
            || s.admin_get("/admin/events?type=gateway.quota_exceeded")
                .text()
                .contains("\"user\"")
    );
}

#[test]
fn spend_and_caps_carry_over_a_restart_and_a_kill_9_loses_no_settled_spend() {
    let mut s = budget_stack("", "");
    let (id, secret) = s.issue_key(&json!({"daily_cap_usd": "0.002"}));
    let scope = format!("key:{id}");
    for kind in 0..4 {
        assert!(matches!(
            spend(&s.base, &secret, kind, Some(500), 500),
            Outcome::Served { .. }
        ));
    }
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .len()
        == 4));
    let before = spent(&s, &scope).0;
    assert!(before > 0);
    s.restart();
    assert_eq!(spent(&s, &scope).0, before, "spend survives a restart");

    // Load in flight, then kill -9.
    let base = s.base.clone();
    let load: Vec<_> = (0..32)
        .map(|i| {
            let (base, secret) = (base.clone(), secret.clone());
            std::thread::spawn(move || {
                let auth = format!("Bearer {secret}");
                let body = json!({"model": "mock:gpt-4o-mini", "stream": true, "max_tokens": 200,
                                  "messages": [{"role": "user", "content": "slow"}]});
                let delay = if i % 2 == 0 { "20" } else { "0" };
                request(
                    &format!("{base}{OPENAI}"),
                    Some(&body),
                    &[
                        ("authorization", &auth),
                        ("x-mock-output-tokens", "200"),
                        ("x-mock-chunk-delay-ms", delay),
                    ],
                )
            })
        })
        .collect();
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .len()
        > 4));
    s.kill();
    for h in load {
        let _ = h.join();
    }
    s.restart();
    let records = s.usage_records();
    assert!(records.len() > 4);
    let (ledger, held) = spent(&s, &scope);
    assert_eq!(
        ledger,
        record_units(&records, &scope),
        "the ledger is the records' sum"
    );
    assert!(ledger >= before, "nothing settled before the kill is lost");
    // Calls cut by the kill keep their hold until it expires, so the cap
    // still counts them; what is spent never passes it.
    assert!(ledger + held <= 200_000, "spent {ledger} + held {held}");
    let _ = spend(&s.base, &secret, 0, Some(100_000), 100_000);
    let (after, held_after) = spent(&s, &scope);
    assert!(
        after <= 200_000 && held_after <= held,
        "spent {after}, held {held_after}"
    );
}

#[test]
fn cost_of_a_whole_and_a_streamed_request_is_the_pricing_arithmetic_exactly() {
    let s = budget_stack("", "");
    let (_, secret) = s.issue_key(&json!({"daily_cap_usd": "1"}));
    let auth = format!("Bearer {secret}");
    let h = [
        ("authorization", auth.as_str()),
        ("x-mock-output-tokens", "7"),
    ];
    // "one two three": 3 words + 1 message = 4 input tokens to the mock.
    let body = json!({"model": "mock:gpt-4o-mini", "messages": [{"role": "user", "content": "one two three"}]});
    let r = s.post(OPENAI, &body, &h);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["usage"]["completion_tokens"], 7);
    // A stream whose client asked for no usage: Sluice asks for it and
    // hides the extra chunk.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = s.post(OPENAI, &streamed, &h);
    assert_eq!(r.status, 200);
    assert!(
        !r.text().contains("\"prompt_tokens\""),
        "the usage chunk is stripped: {}",
        r.text()
    );
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    // Anthropic, streamed, at Sonnet 4's $3 / $15.
    let a = json!({"model": "claude-sonnet-4-6", "max_tokens": 50, "stream": true,
                   "messages": [{"role": "user", "content": "one two three"}]});
    let mut ah = h.to_vec();
    ah.push(AV);
    assert_eq!(s.post(ANTHROPIC, &a, &ah).status, 200);
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .len()
        == 3));
    let costs: Vec<(String, String, bool)> = s
        .usage_records()
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_owned(),
                r["cost_usd"].as_str().unwrap().to_owned(),
                r["streamed"].as_bool().unwrap(),
            )
        })
        .collect();
    // 4 × 0.15e-6 + 7 × 0.60e-6 = 0.0000048; 4 × 3e-6 + 7 × 15e-6 = 0.000117.
    assert_eq!(
        costs,
        [
            ("mock:gpt-4o-mini".to_owned(), "0.0000048".to_owned(), false),
            ("mock:gpt-4o-mini".to_owned(), "0.0000048".to_owned(), true),
            (
                "mock:claude-sonnet-4-6".to_owned(),
                "0.000117".to_owned(),
                true
            ),
        ]
    );
    let r = &s.usage_records()[0];
    assert_eq!(r["pricing_version"], "2026-12-01");
    assert_eq!(r["input_tokens"], 4);
    assert_eq!(r["output_tokens"], 7);
    assert_eq!(r["policy_result"], "allowed");
}

#[test]
fn an_unpriced_model_is_refused_under_a_cap_and_flagged_without_one() {
    let s = budget_stack("", "");
    let (_, capped) = s.issue_key(&json!({"monthly_cap_usd": "5"}));
    let (_, free) = s.issue_key(&json!({}));
    let body =
        json!({"model": "mock:unlisted-model", "messages": [{"role": "user", "content": "hi"}]});
    let r = s.post(
        OPENAI,
        &body,
        &[("authorization", &format!("Bearer {capped}"))],
    );
    let e = openai_error(&r, 403, "model_not_priced", "permission_error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("mock:unlisted-model")
    );
    let r = s.post(
        OPENAI,
        &body,
        &[("authorization", &format!("Bearer {free}"))],
    );
    assert_eq!(r.status, 200);
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .iter()
        .any(|r| r["unpriced"] == true)));
    assert_eq!(metric(&s.metrics(), "sluice_unpriced_calls_total"), 1.0);
    let rec = s
        .usage_records()
        .into_iter()
        .find(|r| r["unpriced"] == true)
        .unwrap();
    assert_eq!(rec["model"], "mock:unlisted-model");
    assert_eq!(rec["cost_usd"], "0");
    let p = s.admin_get("/admin/pricing").json();
    assert_eq!(p["version"], "2026-12-01");
    assert_eq!(p["models"]["openai:gpt-4o-mini"]["input_per_mtok"], "0.15");
}

#[test]
fn a_burst_past_the_rate_limit_is_429_with_retry_after_and_other_keys_pass() {
    let s = budget_stack("", "[rate_limits]\nenabled = true\nkey_rpm = 5\n");
    let (_, a) = s.issue_key(&json!({}));
    let (_, b) = s.issue_key(&json!({}));
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let auth_a = format!("Bearer {a}");
    let statuses: Vec<u16> = (0..8)
        .map(|_| s.post(OPENAI, &body, &[("authorization", &auth_a)]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    let r = s.post(OPENAI, &body, &[("authorization", &auth_a)]);
    let e = openai_error(&r, 429, "rate_limit_exceeded", "rate_limit_error");
    assert_eq!(e["scope"], "key");
    let wait = e["retry_after_seconds"].as_u64().unwrap();
    assert!(
        (1..=12).contains(&wait),
        "5 RPM refills one request per 12 s: {wait}"
    );
    assert_eq!(r.header("retry-after"), Some(wait.to_string().as_str()));
    let ab = json!({"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    anthropic_error(
        &s.post(ANTHROPIC, &ab, &[("x-api-key", &a), AV]),
        429,
        "rate_limit_error",
    );
    assert_eq!(
        s.post(OPENAI, &body, &[("authorization", &format!("Bearer {b}"))])
            .status,
        200
    );
    let m = s.metrics();
    assert!(
        metric(
            &m,
            "sluice_ratelimit_requests_total{bucket=\"key\",result=\"limited\"}"
        ) >= 4.0
    );
}

#[test]
fn caps_reload_while_serving_and_a_broken_budgets_file_keeps_the_last_good_caps() {
    let s = budget_stack(
        "[users.alice]\ndaily_usd = \"1\"\n",
        "[plugins]\nwatch = false\n",
    );
    let (_, secret) = s.issue_key(&json!({"user_id": "alice"}));
    assert!(matches!(
        spend(&s.base, &secret, 0, Some(100), 100),
        Outcome::Served { .. }
    ));
    // A broken file: refused, reported, the old caps keep serving.
    std::fs::write(
        s.policies_dir.join("budgets.toml"),
        "[users.alice]\ndaily_usd = \"-1\"\n",
    )
    .unwrap();
    let r = s.admin_post("/admin/reload");
    assert_eq!(r.status, 422);
    assert!(r.text().contains("budgets rejected"), "{}", r.text());
    assert!(matches!(
        spend(&s.base, &secret, 0, Some(100), 100),
        Outcome::Served { .. }
    ));
    // A lower cap applies to the next request, no restart.
    std::fs::write(
        s.policies_dir.join("budgets.toml"),
        "[users.alice]\ndaily_usd = \"0.00001\"\n",
    )
    .unwrap();
    assert_eq!(s.admin_post("/admin/reload").status, 200);
    let auth = format!("Bearer {secret}");
    let body = json!({"model": "mock:gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
    let r = s.post(OPENAI, &body, &[("authorization", &auth)]);
    let e = openai_error(&r, 429, "quota_exceeded", "rate_limit_error");
    assert_eq!(
        (
            e["scope"].as_str(),
            e["identity"].as_str(),
            e["limit_usd"].as_str()
        ),
        (Some("user"), Some("alice"), Some("0.00001"))
    );
    // A removed file keeps its caps (only an explicit edit ends them).
    std::fs::remove_file(s.policies_dir.join("budgets.toml")).unwrap();
    let r = s.admin_post("/admin/reload");
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("budgets.toml was removed"),
        "{}",
        r.text()
    );
    assert_eq!(
        s.post(OPENAI, &body, &[("authorization", &auth)]).status,
        429
    );
    std::fs::write(s.policies_dir.join("budgets.toml"), "").unwrap();
    assert_eq!(s.admin_post("/admin/reload").status, 200);
    assert_eq!(
        s.post(OPENAI, &body, &[("authorization", &auth)]).status,
        200
    );
    // The same pricing file, broken, keeps its table too.
    std::fs::write(s.policies_dir.join("pricing.toml"), "version = 3").unwrap();
    assert_eq!(s.admin_post("/admin/reload").status, 422);
    assert_eq!(
        s.admin_get("/admin/pricing").json()["version"],
        "2026-12-01"
    );
}

#[test]
fn a_client_gone_before_the_answer_is_charged_the_worst_case() {
    use std::io::Write;
    let s = budget_stack("", "");
    let (id, secret) = s.issue_key(&json!({"daily_cap_usd": "0.01"}));
    let body = json!({"model": "mock:gpt-4o-mini", "max_tokens": 1000,
                      "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.proxy_port)).unwrap();
    write!(
        c,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {secret}\r\nx-mock-latency-ms: 3000\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Gone once the provider has the request, before it answers.
    assert!(eventually(Duration::from_secs(5), || spent(
        &s,
        &format!("key:{id}")
    )
    .1 > 0));
    drop(c);
    assert!(eventually(Duration::from_secs(10), || s
        .usage_records()
        .len()
        == 1));
    let r = &s.usage_records()[0];
    assert_eq!(r["error_code"], "client_gone");
    assert_eq!(r["usage_estimated"], true);
    assert_eq!(
        r["output_tokens"], 1000,
        "the whole output bound is charged"
    );
    let (ledger, held) = spent(&s, &format!("key:{id}"));
    assert_eq!((ledger, held), (units(r["cost_usd"].as_str().unwrap()), 0));
    assert!(ledger >= cost_units(0, 1000));
}

#[test]
fn a_rotation_shares_its_predecessors_budget() {
    let s = budget_stack("", "");
    let (id, old) = s.issue_key(&json!({"daily_cap_usd": "0.0005"}));
    let r = s.admin_post_json(
        &format!("/admin/keys/{id}/rotate"),
        br#"{"grace_period": "1h"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let new = r.json()["secret"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["budget_id"], id.as_str());
    // Spend the cap with the old secret, then the new one is refused too.
    let mut served = 0;
    while matches!(spend(&s.base, &old, 0, None, 400), Outcome::Served { .. }) {
        served += 1;
        assert!(served < 50, "the cap never bound");
    }
    assert!(matches!(
        spend(&s.base, &new, 0, None, 400),
        Outcome::Refused
    ));
    assert!(spent(&s, &format!("key:{id}")).0 <= 50_000);
}

#[test]
fn the_address_limit_throttles_bad_keys_and_token_limits_never_lock_a_key_out() {
    let s = budget_stack(
        "",
        "[rate_limits]\nenabled = true\nip_rpm = 4\nkey_tpm = 1000\n",
    );
    let body =
        json!({"model": "mock:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let bad: Vec<u16> = (0..6)
        .map(|_| {
            s.post(
                OPENAI,
                &body,
                &[("authorization", "Bearer sk-sluice-wrong")],
            )
            .status
        })
        .collect();
    assert_eq!(bad, [401, 401, 401, 401, 429, 429]);
    let s = budget_stack("", "[rate_limits]\nenabled = true\nkey_tpm = 1000\n");
    let (_, secret) = s.issue_key(&json!({}));
    // No max_tokens (the model allows 16384): admitted on its input.
    let r = s.post(
        OPENAI,
        &body,
        &[
            ("authorization", &format!("Bearer {secret}")),
            ("x-mock-output-tokens", "1500"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // 1500 output tokens put the minute's 1000 in debt: the next waits.
    let r = s.post(
        OPENAI,
        &body,
        &[("authorization", &format!("Bearer {secret}"))],
    );
    let e = openai_error(&r, 429, "rate_limit_exceeded", "rate_limit_error");
    assert_eq!(e["scope"], "key_tokens");
    assert!(e["retry_after_seconds"].as_u64().unwrap() >= 30);
}

#[test]
fn every_forwarded_for_line_counts_behind_a_trusted_proxy() {
    let s = budget_stack(
        "",
        "[rate_limits]\nenabled = true\nip_rpm = 2\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let (_, secret) = s.issue_key(&json!({}));
    let auth = format!("Bearer {secret}");
    let body =
        json!({"model": "mock:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    // A client forging the first line changes nothing: the proxy's line
    // (the last) names it.
    let statuses: Vec<u16> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        .iter()
        .map(|forged| {
            s.post(
                OPENAI,
                &body,
                &[
                    ("authorization", &auth),
                    ("x-forwarded-for", forged),
                    ("x-forwarded-for", "198.51.100.7"),
                ],
            )
            .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    // Another client behind the same proxy has its own bucket.
    assert_eq!(
        s.post(
            OPENAI,
            &body,
            &[
                ("authorization", &auth),
                ("x-forwarded-for", "198.51.100.8")
            ]
        )
        .status,
        200
    );
}
