//! Gateway keys end to end: issue, use, rotate, revoke, sweep, through the
//! CLI (with the proxy running and without) and the admin API; the 401 and
//! 403 bodies in both envelopes; the audit trail in the event log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn chat(s: &Stack, path: &str, auth: &[(&str, &str)]) -> Resp {
    let body = if path == ANTHROPIC {
        json!({"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    } else {
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    };
    let mut h = auth.to_vec();
    if path == ANTHROPIC {
        h.push(AV);
    }
    s.post(path, &body, &h)
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

fn events(s: &Stack, types: &str) -> Vec<Value> {
    s.admin_get(&format!("/admin/events?type={types}")).json()["events"]
        .as_array()
        .unwrap()
        .clone()
}

fn keyed() -> Stack {
    let pricing: &'static str = Box::leak(shipped_pricing().into_boxed_str());
    let files: &'static [(&'static str, &'static str)] =
        Box::leak(Box::new([("pricing.toml", pricing)]));
    Stack::start(Options {
        auth: true,
        policy_files: files,
        ..Options::default()
    })
}

#[test]
fn missing_unknown_and_revoked_keys_get_the_spec_bodies_in_both_envelopes() {
    let s = keyed();
    // Missing.
    let e = openai_error(
        &chat(&s, OPENAI, &[]),
        401,
        "missing_api_key",
        "invalid_request_error",
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    anthropic_error(&chat(&s, ANTHROPIC, &[]), 401, "authentication_error");
    // Unknown, by either header.
    openai_error(
        &chat(&s, OPENAI, &[("authorization", "Bearer sk-sluice-nope")]),
        401,
        "invalid_api_key",
        "invalid_request_error",
    );
    anthropic_error(
        &chat(&s, ANTHROPIC, &[("x-api-key", "sk-sluice-nope")]),
        401,
        "authentication_error",
    );
    // Revoked: code, key id and time, both envelopes.
    let (id, secret) = s.issue_key(&json!({"user_id": "alice"}));
    assert_eq!(
        chat(&s, OPENAI, &[("authorization", &bearer(&secret))]).status,
        200
    );
    assert_eq!(
        s.admin_post(&format!("/admin/keys/{id}/revoke")).status,
        200
    );
    let r = chat(&s, OPENAI, &[("authorization", &bearer(&secret))]);
    let e = openai_error(&r, 401, "key_revoked", "invalid_request_error");
    assert_eq!(e["key_id"], id.as_str());
    assert!(e["revoked_at"].as_str().unwrap().ends_with('Z'));
    let a = anthropic_error(
        &chat(&s, ANTHROPIC, &[("x-api-key", &secret)]),
        401,
        "authentication_error",
    );
    assert_eq!(a["error"]["key_id"], id.as_str());
    // Every refusal is an audit event with a hash prefix, never the secret.
    assert!(eventually(Duration::from_secs(5), || events(
        &s,
        "gateway.auth_failed"
    )
    .len()
        == 6));
    let failed = events(&s, "gateway.auth_failed");
    let reasons: Vec<&str> = failed
        .iter()
        .map(|e| e["payload"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "missing",
            "missing",
            "invalid",
            "invalid",
            "revoked-or-expired",
            "revoked-or-expired"
        ]
    );
    let revoked = &failed[4]["payload"];
    assert_eq!(revoked["gateway_key_id"], id.as_str());
    assert_eq!(revoked["token_hash_prefix"].as_str().unwrap().len(), 8);
    assert_eq!(failed[4]["sensitivity"], "pseudonymous");
    let all = s.admin_get("/admin/events").text();
    assert!(
        !all.contains(&secret),
        "the secret never reaches the event log"
    );
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sluice_gateway_auth_failures_total{reason=\"invalid\"}"),
        2.0
    );
    assert_eq!(
        metric(&m, "sluice_gateway_auth_failures_total{reason=\"missing\"}"),
        2.0
    );
    assert_eq!(metric(&m, "sluice_gateway_keys_revoked"), 1.0);
}

#[test]
fn a_model_outside_the_allowed_list_is_403_in_both_envelopes() {
    let s = keyed();
    let (_, secret) = s.issue_key(&json!({"allowed_models": ["mock:gpt-*"]}));
    assert_eq!(
        chat(&s, OPENAI, &[("authorization", &bearer(&secret))]).status,
        200
    );
    let r = chat(&s, ANTHROPIC, &[("x-api-key", &secret)]);
    anthropic_error(&r, 403, "permission_error");
    assert!(r.text().contains("claude-sonnet-4-6"), "{}", r.text());
    let body =
        json!({"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "hi"}]});
    let r = s.post(OPENAI, &body, &[("authorization", &bearer(&secret))]);
    openai_error(&r, 403, "model_not_allowed", "permission_error");
}

#[test]
fn admin_routes_need_the_token_health_and_metrics_do_not() {
    let s = keyed();
    for path in [
        "/admin/keys",
        "/admin/plugins",
        "/admin/pricing",
        "/admin/events",
    ] {
        let r = raw_request("GET", &format!("{}{path}", s.admin), None, &[]);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()["error"]["code"], "admin_unauthorized");
        let r = raw_request(
            "GET",
            &format!("{}{path}", s.admin),
            None,
            &[("authorization", "Bearer wrong-token-0123456789")],
        );
        assert_eq!(r.status, 401, "{path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            raw_request("GET", &format!("{}{path}", s.admin), None, &[]).status,
            200,
            "{path}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = |f: &str| {
        std::fs::metadata(s.data_dir().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for f in ["admin.token", "keys.redb", "events.redb"] {
        assert_eq!(mode(f), 0o600, "{f}");
    }
}

#[test]
fn lifecycle_through_the_cli_with_and_without_a_running_proxy() {
    let mut s = keyed();
    // With the proxy running: the CLI goes through its admin API.
    let (ok, out, err) = s.cli(&[
        "keys",
        "issue",
        "--user",
        "alice",
        "--team",
        "ml",
        "--daily-cap-usd",
        "0.50",
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let issued: Value = serde_json::from_str(&out).unwrap();
    let (old_id, old) = (
        issued["id"].as_str().unwrap().to_owned(),
        issued["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(issued["daily_cap_usd"], "0.5");
    assert!(
        issued.get("workspace").is_none(),
        "unset optionals are omitted: {issued}"
    );
    assert_eq!(
        chat(&s, OPENAI, &[("authorization", &bearer(&old))]).status,
        200
    );

    // Rotate: both valid during grace, metadata inherited.
    let (ok, out, err) = s.cli(&[
        "keys",
        "rotate",
        &old_id,
        "--grace-period",
        "3s",
        "--format",
        "json",
    ]);
    assert!(ok, "{err}");
    let rotated: Value = serde_json::from_str(&out).unwrap();
    let (new_id, new) = (
        rotated["id"].as_str().unwrap().to_owned(),
        rotated["secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(rotated["user_id"], "alice");
    assert_eq!(rotated["team_id"], "ml");
    assert_eq!(rotated["daily_cap_usd"], "0.5");
    assert_eq!(rotated["rotated_from"], old_id.as_str());
    assert_eq!(
        chat(&s, OPENAI, &[("authorization", &bearer(&old))]).status,
        200
    );
    assert_eq!(chat(&s, ANTHROPIC, &[("x-api-key", &new)]).status, 200);
    // The old key fails once its grace period is over; the new one works.
    assert!(eventually(Duration::from_secs(10), || chat(
        &s,
        OPENAI,
        &[("authorization", &bearer(&old))]
    )
    .status
        == 401));
    let r = chat(&s, OPENAI, &[("authorization", &bearer(&old))]);
    openai_error(&r, 401, "key_revoked", "invalid_request_error");
    assert_eq!(
        chat(&s, OPENAI, &[("authorization", &bearer(&new))]).status,
        200
    );
    // A rotated-away key cannot be rotated again.
    let (ok, _, err) = s.cli(&["keys", "rotate", &old_id]);
    assert!(!ok && err.contains("revoked"), "{err}");
    // Sweep records the end of the grace period once.
    let (ok, out, _) = s.cli(&["keys", "sweep", "--format", "json"]);
    assert!(ok);
    let swept: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(swept["swept"][0]["id"], old_id.as_str());
    assert_eq!(swept["swept"][0]["revoked_reason"], "grace_period_expired");
    let (_, out, _) = s.cli(&["keys", "sweep", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["swept"],
        json!([])
    );

    // Revoke: refused at once.
    let (ok, _, err) = s.cli(&["keys", "revoke", &new_id]);
    assert!(ok, "{err}");
    openai_error(
        &chat(&s, OPENAI, &[("authorization", &bearer(&new))]),
        401,
        "key_revoked",
        "invalid_request_error",
    );

    // A data dir held by a proxy whose admin API does not answer: a clear
    // message, nothing touched.
    let addr_file = s.data_dir().join("admin.addr");
    let recorded = std::fs::read_to_string(&addr_file).unwrap();
    std::fs::write(&addr_file, "127.0.0.1:1 1\n").unwrap();
    let (ok, _, err) = s.cli(&["keys", "list"]);
    assert!(!ok);
    assert!(
        err.contains("held by another process") && err.contains("no admin API answers"),
        "{err}"
    );
    std::fs::write(&addr_file, recorded).unwrap();

    // Without a proxy: the CLI works on the files, and the next start sees it.
    s.kill();
    let (ok, out, err) = s.cli(&["keys", "issue", "--user", "bob", "--format", "json"]);
    assert!(ok, "{err}");
    let offline: Value = serde_json::from_str(&out).unwrap();
    let (ok, out, _) = s.cli(&["keys", "list", "--format", "json"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let states: Vec<(&str, &str)> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            (old_id.as_str(), "revoked"),
            (new_id.as_str(), "revoked"),
            (offline["id"].as_str().unwrap(), "active")
        ]
    );
    let (ok, text, _) = s.cli(&["keys", "list"]);
    assert!(ok && text.contains("bob"), "{text}");
    let (ok, out, _) = s.cli(&["events", "--type", "gateway.key_issued", "--format", "json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    s.restart();
    let secret = offline["secret"].as_str().unwrap();
    assert_eq!(
        chat(&s, OPENAI, &[("authorization", &bearer(secret))]).status,
        200
    );

    // The whole audit trail, in order.
    let trail: Vec<String> = events(
        &s,
        "gateway.key_issued,gateway.key_rotated,gateway.key_revoked",
    )
    .iter()
    .map(|e| {
        let reason = e["payload"]["reason"]
            .as_str()
            .map(|r| format!(":{r}"))
            .unwrap_or_default();
        format!("{}{reason}", e["type"].as_str().unwrap())
    })
    .collect();
    assert_eq!(
        trail,
        [
            "gateway.key_issued",
            "gateway.key_issued",
            "gateway.key_rotated",
            "gateway.key_revoked:grace_period_expired",
            "gateway.key_revoked:admin_revoke",
            "gateway.key_issued",
        ]
    );
}

#[test]
fn the_cli_explains_bad_input_and_the_admin_api_refuses_it() {
    let s = keyed();
    for (args, says) in [
        (vec!["keys", "issue", "--team", "ML"], "team_id"),
        (
            vec!["keys", "issue", "--daily-cap-usd=-1"],
            "greater than zero",
        ),
        (vec!["keys", "issue", "--daily-cap-usd", "abc"], "decimal"),
        (vec!["keys", "issue", "--expires-in", "3y"], "unit"),
        (vec!["keys", "show", "key_nope"], "no key"),
        (vec!["keys", "rotate", "key_nope"], "no key"),
    ] {
        let (ok, _, err) = s.cli(&args);
        assert!(!ok, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let r = s.admin_post_json("/admin/keys", br#"{"user_id": "a", "colour": "red"}"#);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("colour"), "{}", r.text());
    let r = s.admin_post_json("/admin/keys", b"{not json");
    assert_eq!(r.status, 400);
}
