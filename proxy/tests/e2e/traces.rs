//! The trace store end to end: a day of mixed traffic in the store and
//! in analytics, deterministic audit exports in every redaction mode, GDPR
//! export and forget, retention, backup and restore.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::harness::*;

const PRICING: &str = r#"version = "t1"
[models."mock:gpt-4o-mini"]
input_per_mtok = "1.00"
output_per_mtok = "2.00"
[models."mock:claude-sonnet-4-6"]
input_per_mtok = "3.00"
output_per_mtok = "15.00"
"#;

/// Clients choose nothing: every request lands on the default model, so
/// asking for sonnet is a saving.
const ROUTING: &str = r#"transparent = false
[[rule]]
name = "sonnet-to-mini"
when = { model = "mock:claude-sonnet-4-6" }
route = ["mock:gpt-4o-mini"]
"#;

fn stack() -> Stack {
    Stack::start(Options {
        auth: true,
        policy_files: &[("pricing.toml", PRICING), ("routing.toml", ROUTING)],
        ..Options::default()
    })
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, got {v}"))
        .parse()
        .unwrap()
}

fn traces(s: &Stack, q: &str) -> Vec<Value> {
    let r = s.admin_get(&format!("/admin/traces?limit=100000&{q}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["events"].as_array().unwrap().clone()
}

fn chat(s: &Stack, secret: &str, anthropic: bool, stream: bool, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {secret}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    if anthropic {
        h.push(AV);
        let body = json!({"model": "mock:claude-sonnet-4-6", "max_tokens": 64, "stream": stream,
                          "messages": [{"role": "user", "content": "tell me about rivers"}]});
        s.post(ANTHROPIC, &body, &h)
    } else {
        let body = json!({"model": "mock:claude-sonnet-4-6", "stream": stream,
                          "messages": [{"role": "user", "content": "tell me about lakes"}]});
        s.post(OPENAI, &body, &h)
    }
}

/// A mixed day: two users in a team, one without; both shapes, streamed
/// and whole, a provider failure and an unknown key. Returns the number
/// of parsed requests.
fn traffic(s: &Stack) -> (String, String, String, usize) {
    let (alice, a) = s.issue_key(&json!({"user_id": "alice", "team_id": "ml"}));
    let (bob, b) = s.issue_key(&json!({"user_id": "bob", "team_id": "ml"}));
    let (carol, c) = s.issue_key(&json!({"user_id": "carol"}));
    let mut n = 0;
    for (secret, times) in [(&a, 3), (&b, 2), (&c, 1)] {
        for i in 0..times {
            let r = chat(s, secret, i % 2 == 1, i == 2, &[]);
            assert_eq!(r.status, 200, "{}", r.text());
            n += 1;
        }
    }
    let r = chat(s, &b, false, false, &[("x-mock-error", "500")]);
    assert!(r.status >= 500, "{}", r.text());
    n += 1;
    let r = chat(s, "sk-sluice-unknown", false, false, &[]);
    assert_eq!(r.status, 401);
    let _ = (&alice, &bob, &carol);
    (alice, bob, carol, n)
}

fn wait_requests(s: &Stack, n: usize) {
    assert!(
        eventually(Duration::from_secs(10), || traces(
            s,
            "type=request.completed"
        )
        .len()
            >= n),
        "request.completed events: {}",
        traces(s, "type=request.completed").len()
    );
}

#[test]
fn a_day_of_traffic_lands_in_the_trace_store_and_analytics_add_up() {
    let s = stack();
    let (alice, _bob, carol, n) = traffic(&s);
    wait_requests(&s, n);
    // The refused request is the last one sent; its audit event may land in
    // the writer's next batch.
    assert!(eventually(Duration::from_secs(10), || !traces(
        &s,
        "type=gateway.auth_failed"
    )
    .is_empty()));
    let records = s.usage_records();
    let total: Decimal = records.iter().map(|r| dec(&r["cost_usd"])).sum();
    assert!(total > Decimal::ZERO);

    // Every kind of event is there, reachable by type, key, user and team.
    let all = traces(&s, "");
    let types: BTreeMap<String, usize> = all.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e["type"].as_str().unwrap().to_owned()).or_default() += 1;
        m
    });
    for t in [
        "gateway.key_issued",
        "gateway.auth_failed",
        "route.decided",
        "request.completed",
        "llm.call_completed",
        "llm.call_failed",
    ] {
        assert!(types.contains_key(t), "{t} missing from {types:?}");
    }
    assert_eq!(types["request.completed"], n);
    let by_user = traces(&s, "user=alice");
    assert!(by_user.len() >= 4, "{by_user:?}");
    assert!(by_user.iter().all(|e| e.to_string().contains("\"alice\"")));
    let by_key = traces(&s, &format!("gateway_key={carol}"));
    assert!(by_key.iter().all(|e| e.to_string().contains(&carol)));
    assert!(!by_key.is_empty());
    let team = traces(&s, "team=ml&type=llm.call_completed");
    assert_eq!(team.len(), 5, "alice 3 + bob 2 answered calls");
    // Time order.
    let ts: Vec<u64> = all.iter().map(|e| e["ts_ms"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));

    // Analytics equal the sum of the per-request costs, in every grouping.
    for group in ["model", "gateway_key", "user", "team"] {
        let v = s
            .admin_get(&format!("/analytics/cost?group_by={group}"))
            .json();
        assert_eq!(v["pricing_version"], "t1", "{v}");
        assert_eq!(dec(&v["total"]["cost_usd"]), total, "{group}: {v}");
        let sum: Decimal = v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| dec(&g["cost_usd"]))
            .sum();
        assert_eq!(sum, total, "{group}: {v}");
    }
    let teams = s.admin_get("/analytics/by_team").json();
    let ml = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["team_id"] == "ml")
        .unwrap()
        .clone();
    assert_eq!(ml["users"], 2, "{ml}");
    let by_user: Vec<Decimal> = ml["by_user"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| dec(&u["cost_usd"]))
        .collect();
    assert!(by_user.windows(2).all(|w| w[0] >= w[1]), "sorted by cost");
    assert!(
        teams["teams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["team_id"].is_null()),
        "carol has no team: the null bucket"
    );
    let keys = s.admin_get("/analytics/by_key").json();
    let a = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["gateway_key_id"] == alice.as_str())
        .unwrap()
        .clone();
    assert!(
        a["by_inbound_shape"]["openai"]["calls"].as_u64() >= Some(1),
        "{a}"
    );
    assert!(
        a["by_inbound_shape"]["anthropic"]["calls"].as_u64() >= Some(1),
        "{a}"
    );
    let users = s.admin_get("/analytics/by_user").json();
    assert_eq!(dec(&users["total"]["cost_usd"]), total);

    // Savings: every request asked for sonnet and was served the mini.
    let sv = s.admin_get("/analytics/savings").json();
    assert_eq!(sv["pricing_version"], "t1");
    assert!(sv["requests_rerouted"].as_u64().unwrap() >= 6, "{sv}");
    assert_eq!(dec(&sv["actual_cost_usd"]), total, "{sv}");
    assert!(dec(&sv["savings_usd"]) > Decimal::ZERO, "{sv}");

    // Bad input gets a clear answer.
    let r = s.admin_get("/analytics/cost?group_by=planet");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.admin_get("/analytics/cost?since=yesterday");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("RFC 3339"), "{}", r.text());
    // A window in the future holds nothing.
    let v = s.admin_get("/analytics/cost?since=2999-01-01").json();
    assert_eq!(v["groups"], json!([]));
    assert!(metric(&s.metrics(), "sluice_trace_store_bytes") > 0.0);
}

fn export(s: &Stack, name: &str, flags: &[&str]) -> (bool, String, Vec<u8>) {
    let dest = s.dir.path().join(name);
    let mut args = vec!["audit", "export", dest.to_str().unwrap()];
    args.extend_from_slice(flags);
    let (ok, out, err) = s.cli(&args);
    let bytes = std::fs::read(&dest).unwrap_or_default();
    (ok, format!("{out}{err}"), bytes)
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn audit_exports_are_byte_identical_and_each_mode_holds_field_by_field() {
    let s = stack();
    let (alice, _, _, n) = traffic(&s);
    wait_requests(&s, n);
    let all = [
        "--event-type",
        "gateway.key_issued",
        "--event-type",
        "gateway.auth_failed",
        "--event-type",
        "llm.call_completed",
        "--event-type",
        "route.decided",
    ];

    // Passthrough, twice: the same bytes.
    let (ok, out, a) = export(&s, "a.jsonl", &all);
    assert!(ok, "{out}");
    let (_, _, b) = export(&s, "b.jsonl", &all);
    assert_eq!(a, b);
    assert!(out.lines().any(|l| l.starts_with("events")), "{out}");
    let plain = lines(&a);
    assert!(plain.iter().any(|e| e["payload"]["user_id"] == "alice"));
    // Refuses to overwrite.
    let dest = s.dir.path().join("a.jsonl");
    let (ok, _, err) = s.cli(&["audit", "export", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("exists"), "{err}");

    // Pseudonymize: no identity survives, null stays null, the same id
    // gives the same pseudonym.
    let (ok, out, p) = export(
        &s,
        "p.jsonl",
        &[&all[..], &["--redaction", "pseudonymize"]].concat(),
    );
    assert!(ok, "{out}");
    let text = String::from_utf8_lossy(&p);
    assert!(
        !text.contains("\"alice\"") && !text.contains(&alice),
        "{text}"
    );
    let ps = lines(&p);
    assert_eq!(ps.len(), plain.len());
    for (e, q) in plain.iter().zip(&ps) {
        for f in [
            "user_id",
            "team_id",
            "gateway_key_id",
            "key_id",
            "request_id",
        ] {
            match &e["payload"][f] {
                Value::String(v) => {
                    let got = q["payload"][f].as_str().unwrap();
                    assert!(
                        got.starts_with("redacted_") && got.len() == 21,
                        "{f}: {got}"
                    );
                    assert_ne!(got, v);
                }
                Value::Null => assert!(q["payload"][f].is_null(), "{f} stays null"),
                _ => {}
            }
        }
        assert_eq!(e["type"], q["type"]);
        assert_eq!(e["id"], q["id"]);
    }
    let alice_p: Vec<&str> = plain
        .iter()
        .zip(&ps)
        .filter(|(e, _)| e["payload"]["user_id"] == "alice")
        .map(|(_, q)| q["payload"]["user_id"].as_str().unwrap())
        .collect();
    assert!(alice_p.windows(2).all(|w| w[0] == w[1]) && !alice_p.is_empty());
    // A salt changes every pseudonym.
    let (_, _, salted) = export(
        &s,
        "salted.jsonl",
        &[
            &all[..],
            &["--redaction", "pseudonymize", "--salt", "s3cret"],
        ]
        .concat(),
    );
    assert_ne!(lines(&salted)[0]["payload"], ps[0]["payload"]);

    // redact_private: pseudonyms plus sentinels for free text.
    let (_, _, rp) = export(
        &s,
        "rp.jsonl",
        &[&all[..], &["--redaction", "redact_private"]].concat(),
    );
    let rp = lines(&rp);
    let auth = rp
        .iter()
        .find(|e| e["type"] == "gateway.auth_failed")
        .unwrap();
    assert_eq!(auth["payload"]["reason"], "[redacted]");
    let route = rp.iter().find(|e| e["type"] == "route.decided").unwrap();
    assert_eq!(route["payload"]["reason"], "[redacted]");
    assert!(
        route["payload"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("redacted_")
    );

    // aggregate_only: one object; its sums match the calls.
    let (_, _, agg) = export(
        &s,
        "agg.json",
        &[&all[..], &["--redaction", "aggregate_only"]].concat(),
    );
    let agg: Value = serde_json::from_slice(&agg).unwrap();
    assert_eq!(
        agg["events"].as_u64().unwrap() as usize,
        plain.len(),
        "{agg}"
    );
    let calls: Decimal = plain
        .iter()
        .filter(|e| e["type"] == "llm.call_completed")
        .map(|e| dec(&e["payload"]["cost_usd"]))
        .sum();
    assert_eq!(dec(&agg["cost_usd"]["sum"]), calls, "{agg}");
    assert_eq!(agg["distinct_users"], 3, "{agg}");

    // CSV: a header and one row per event; an empty window is header only.
    let (_, _, csv) = export(&s, "a.csv", &[&all[..], &["--format", "csv"]].concat());
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.starts_with("id,ts_ms,timestamp,type,schema,sensitivity,"));
    let (_, _, empty) = export(&s, "e.csv", &["--format", "csv", "--until", "1970-01-02"]);
    assert_eq!(String::from_utf8(empty).unwrap().lines().count(), 1);
    let (ok, _, empty) = export(&s, "e.jsonl", &["--until", "1970-01-02"]);
    assert!(ok && empty.is_empty());
    // The default is the audit trail only.
    let (_, _, audit) = export(&s, "audit.jsonl", &[]);
    assert!(lines(&audit).iter().all(|e| e["type"] != "route.decided"));
    let (ok, _, _) = export(&s, "bad.jsonl", &["--redaction", "everything"]);
    assert!(!ok);
}

#[test]
fn forget_then_export_shows_only_pseudonyms_and_is_idempotent() {
    let s = stack();
    let (_, _, _, n) = traffic(&s);
    wait_requests(&s, n);
    let r = s.admin_get("/analytics/user/alice/export");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"alice.jsonl\"")
    );
    let rows: usize = r.header("x-sluice-row-count").unwrap().parse().unwrap();
    assert!(rows >= 4);
    assert_eq!(r.text().lines().count(), rows);
    assert!(r.text().lines().all(|l| l.contains("\"alice\"")));
    // Unknown user: 200, nothing. A bad id: 400 in the envelope.
    let r = s.admin_get("/analytics/user/nobody/export");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("x-sluice-row-count"), Some("0"));
    let r = s.admin_get("/analytics/user/al%20ice/export");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "invalid_user_id");

    // CLI without --confirm: a dry run, exit 2, nothing changed.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["users", "forget", "alice", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("would pseudonymize"));
    assert_eq!(
        s.admin_get("/analytics/user/alice/export")
            .header("x-sluice-row-count")
            .unwrap(),
        rows.to_string(),
        "a dry run changed nothing"
    );

    let r = s.admin_post("/analytics/user/alice/forget");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(
        v["pseudonymized_rows"].as_u64().unwrap() > rows as u64,
        "{v}"
    );
    let pseudonym = v["pseudonym"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("redacted_"));
    // Gone under the id, there under the pseudonym, nowhere in plain text.
    let r = s.admin_get("/analytics/user/alice/export");
    assert_eq!(r.header("x-sluice-row-count"), Some("0"));
    let r = s.admin_get(&format!("/analytics/user/{pseudonym}/export"));
    assert!(r.text().lines().count() > rows);
    let left: Vec<Value> = traces(&s, "")
        .into_iter()
        .filter(|e| e.to_string().contains("\"alice\""))
        .collect();
    assert!(left.is_empty(), "alice left in {left:?}");
    let records = s.usage_records();
    assert!(records.iter().all(|r| r["user_id"] != "alice"));
    // Idempotent.
    let again = s.admin_post("/analytics/user/alice/forget").json();
    assert_eq!(again["pseudonymized_rows"], 0, "{again}");
    assert_eq!(again["pseudonym"], pseudonym.as_str());
    let audit = traces(&s, "type=analytics.user_forgotten");
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["payload"]["pseudonym"], pseudonym.as_str());
    assert!(!traces(&s, "type=analytics.user_exported").is_empty());
    // Analytics see the pseudonym.
    let users = s.admin_get("/analytics/by_user").json();
    assert!(users.to_string().contains(&pseudonym));
    assert!(!users.to_string().contains("\"alice\""));
}

/// Events `days` old, written while the proxy is stopped.
fn old_events(s: &Stack, days: u64, audit: usize, other: usize) {
    use sluice::events::{EventBody, store};
    let db = sluice::store::open(&s.data_dir().join("events.redb")).unwrap();
    store::init(&db).unwrap();
    let ts = sluice::clock::now_ms() - days * 86_400_000;
    let mut batch = Vec::new();
    for i in 0..audit {
        batch.push(store::Entry::Event(
            EventBody::KeyRevoked {
                key_id: format!("key_old{i}"),
                reason: "admin_revoke".into(),
            },
            ts + i as u64,
        ));
    }
    for i in 0..other {
        batch.push(store::Entry::Event(
            EventBody::EvalFailed {
                eval_id: format!("e{i}"),
                subject_id: format!("r{i}"),
                evaluator: "x".into(),
                error_message: "old".into(),
            },
            ts + i as u64,
        ));
    }
    store::commit(&db, &batch).unwrap();
}

#[test]
fn purge_dry_run_counts_equal_the_applied_ones_and_audit_events_survive() {
    let mut s = stack();
    s.kill();
    old_events(&s, 200, 3, 40);
    old_events(&s, 100, 1, 10);
    s.restart();
    let (ok, out, err) = s.cli(&["traces", "purge", "--days", "0"]);
    assert!(!ok && err.contains("at least 1"), "{out}{err}");

    let (ok, dry, err) = s.cli(&[
        "traces",
        "purge",
        "--days",
        "150",
        "--dry-run",
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let dry: Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(
        (
            dry["rows_eligible"].as_u64(),
            dry["rows_audit_exempt"].as_u64(),
            dry["rows_deleted"].as_u64()
        ),
        (Some(43), Some(3), Some(40)),
        "{dry}"
    );
    assert!(
        traces(&s, "type=trace.swept").is_empty(),
        "a dry run records nothing"
    );
    let (ok, applied, err) = s.cli(&["traces", "purge", "--days", "150", "--format", "json"]);
    assert!(ok, "{err}");
    let applied: Value = serde_json::from_str(&applied).unwrap();
    for f in [
        "rows_eligible",
        "rows_audit_exempt",
        "rows_deleted",
        "cutoff",
    ] {
        if f != "cutoff" {
            assert_eq!(dry[f], applied[f], "{f}");
        }
    }
    assert_eq!(applied["dry_run"], false);
    let swept = traces(&s, "type=trace.swept");
    assert_eq!(swept.len(), 1, "exactly one trace.swept");
    assert_eq!(swept[0]["payload"]["rows_deleted"], 40);
    assert_eq!(
        traces(&s, "type=gateway.key_revoked").len(),
        4,
        "audit kept"
    );
    assert_eq!(
        traces(&s, "type=eval.failed").len(),
        10,
        "the 100-day-old ones stay"
    );
    // Applying again deletes nothing more; the sweep's own record stays.
    let (_, again, _) = s.cli(&["traces", "purge", "--days", "150", "--format", "json"]);
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["rows_deleted"], 0);
    assert_eq!(traces(&s, "type=trace.swept").len(), 2);
}

#[test]
fn backup_while_running_then_restore_round_trips() {
    let mut s = stack();
    let (_, _, _, n) = traffic(&s);
    wait_requests(&s, n);
    let before = traces(&s, "");
    let dest = s.dir.path().join("backup1");
    let (ok, out, err) = s.cli(&["backup", dest.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("events.redb") && out.contains("keys.redb"),
        "{out}"
    );
    let (ok, _, err) = s.cli(&["backup", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("already exists"), "{err}");
    // Restoring under a running proxy is refused.
    let (ok, _, err) = s.cli(&["restore", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("stop"), "{err}");

    // More traffic after the backup, then back to the backup.
    chat(
        &s,
        &s.issue_key(&json!({"user_id": "dave"})).1,
        false,
        false,
        &[],
    );
    s.kill();
    let (ok, out, err) = s.cli(&["restore", dest.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    s.restart();
    let after = traces(&s, "");
    assert_eq!(
        after.iter().map(|e| e["id"].clone()).collect::<Vec<_>>(),
        before.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()
    );
    assert!(
        !after
            .to_vec()
            .iter()
            .any(|e| e.to_string().contains("dave"))
    );
    // A damaged backup is refused, naming the file.
    std::fs::write(dest.join("events.redb"), b"garbage").unwrap();
    s.kill();
    let (ok, _, err) = s.cli(&["restore", dest.to_str().unwrap()]);
    assert!(!ok && err.contains("damaged"), "{err}");
}

/// A burst that saturates the machine: the writer, idle-priority while it
/// keeps up, is raised when it falls behind, and every record lands.
#[test]
fn a_saturating_burst_is_committed_whole() {
    const CLIENTS: usize = 32;
    const EACH: usize = 40;
    let s = Stack::start(Options::default());
    let body =
        json!({"model": "mock:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (s, body) = (&s, &body);
                scope.spawn(move || {
                    for _ in 0..EACH {
                        let r = s.post("/v1/chat/completions", body, &[]);
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    let n = CLIENTS * EACH;
    assert!(
        eventually(Duration::from_secs(30), || s.usage_records().len() >= n),
        "usage records: {} of {n}",
        s.usage_records().len()
    );
    assert_eq!(s.usage_records().len(), n);
    wait_requests(&s, n);
    assert_eq!(traces(&s, "type=request.completed").len(), n);
    assert_eq!(traces(&s, "type=llm.call_completed").len(), n);
    let m = s.metrics();
    assert_eq!(metric(&m, "sluice_events_dropped_total"), 0.0, "{m}");
}
