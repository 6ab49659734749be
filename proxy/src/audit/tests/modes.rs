//! Pseudonyms and the field rules of each mode.

use clap::ValueEnum;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::audit::{
    IDENTITY_FIELDS, Mode, PRIVATE_FIELDS, SENTINEL, is_pseudonym, pseudonym, redact, redact_event,
};

fn red(e: &Event, mode: Mode) -> Value {
    redact_event(e, mode, b"").unwrap()
}

fn p(v: &str) -> String {
    pseudonym(v, b"")
}

/// Every field of `plain` as `mode` must leave it, recursively.
fn check(plain: &Value, got: &Value, private: bool, salt: &[u8]) {
    match (plain, got) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<_> = a.keys().collect();
            let kb: Vec<_> = b.keys().collect();
            assert_eq!(ka, kb, "same keys in the same order");
            for (k, pv) in a {
                let gv = &b[k];
                if IDENTITY_FIELDS.contains(&k.as_str())
                    && let Value::String(ps) = pv
                {
                    assert_eq!(gv, &json!(pseudonym(ps, salt)), "{k}");
                    assert_ne!(gv, pv, "{k} must change");
                } else if private && PRIVATE_FIELDS.contains(&k.as_str()) && !pv.is_null() {
                    assert_eq!(gv, &json!(SENTINEL), "{k}");
                } else {
                    check(pv, gv, private, salt);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len());
            a.iter()
                .zip(b)
                .for_each(|(x, y)| check(x, y, private, salt));
        }
        _ => assert_eq!(plain, got),
    }
}

#[test]
fn pseudonym_is_prefix_and_12_hex_of_salted_sha256() {
    let want = format!("redacted_{}", &hex::encode(Sha256::digest(b"alice"))[..12]);
    assert_eq!(p("alice"), want);
    assert_eq!(p("alice").len(), "redacted_".len() + 12);
    let salted = format!(
        "redacted_{}",
        &hex::encode(Sha256::digest(b"pepperalice"))[..12]
    );
    assert_eq!(pseudonym("alice", b"pepper"), salted);
    assert_ne!(
        pseudonym("alice", b"pepper"),
        p("alice"),
        "salt changes pseudonyms"
    );
    assert_ne!(p("alice"), p("bob"));
    assert_eq!(p("alice"), p("alice"), "deterministic");
    assert!(is_pseudonym(&p("")));
}

#[test]
fn pseudonym_is_idempotent() {
    for salt in [&b""[..], b"pepper"] {
        let once = pseudonym("alice", salt);
        assert_eq!(pseudonym(&once, salt), once);
        assert_eq!(pseudonym(&once, b"another salt"), once);
    }
    // A forget (empty salt) followed by a no-salt export: the same bytes.
    let forgotten = p("alice");
    assert_eq!(p(&forgotten), p("alice"));
    // Only the exact shape counts as a pseudonym.
    for not in [
        "redacted_",
        "redacted_0123456789a",
        "redacted_0123456789abc",
        "redacted_0123456789AB",
        "redacted_0123456789ag",
        "Redacted_0123456789ab",
    ] {
        assert!(!is_pseudonym(not), "{not}");
        assert_ne!(p(not), not);
    }
    assert!(is_pseudonym("redacted_0123456789ab"));
}

#[test]
fn modes_have_the_spec_names() {
    let names: Vec<_> = Mode::value_variants()
        .iter()
        .map(|m| {
            let v = m.to_possible_value().unwrap();
            assert_eq!(v.get_name(), m.as_str());
            assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
            v.get_name().to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "passthrough",
            "pseudonymize",
            "redact_private",
            "aggregate_only"
        ]
    );
    assert_eq!(
        <Mode as ValueEnum>::from_str("redact_private", false),
        Ok(Mode::RedactPrivate)
    );
    assert!(<Mode as ValueEnum>::from_str("redact-private", false).is_err());
}

#[test]
fn passthrough_is_plain_serialization() {
    for e in sample() {
        let plain = serde_json::to_string(&e).unwrap();
        assert_eq!(
            serde_json::to_string(&red(&e, Mode::Passthrough)).unwrap(),
            plain
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(redact(v.clone(), Mode::Passthrough, b"salt"), v);
    }
}

#[test]
fn serialized_shape_is_as_documented() {
    let e = ev(1, key_issued());
    let s = serde_json::to_string(&red(&e, Mode::Passthrough)).unwrap();
    assert!(
        s.starts_with(&format!(
            "{{\"id\":1,\"ts_ms\":{},\"schema\":1,\"sensitivity\":\"pseudonymous\",\"type\":\"gateway.key_issued\",\"payload\":{{\"key_id\":\"gk_alpha\"",
            T0 + 1000
        )),
        "{s}"
    );
}

#[test]
fn pseudonymize_follows_the_rules_on_every_event() {
    for salt in [&b""[..], b"pepper"] {
        for e in sample() {
            let plain = serde_json::to_value(&e).unwrap();
            check(
                &plain,
                &redact_event(&e, Mode::Pseudonymize, salt).unwrap(),
                false,
                salt,
            );
            check(
                &plain,
                &redact_event(&e, Mode::RedactPrivate, salt).unwrap(),
                true,
                salt,
            );
        }
    }
}

#[test]
fn pseudonymize_field_by_field() {
    let m = Mode::Pseudonymize;
    let k = red(&ev(1, key_issued()), m);
    assert_eq!(k["id"], 1);
    assert_eq!(k["type"], "gateway.key_issued");
    assert_eq!(k["sensitivity"], "pseudonymous");
    let pl = &k["payload"];
    assert_eq!(pl["key_id"], p("gk_alpha"));
    assert_eq!(pl["user_id"], p("alice"));
    assert_eq!(pl["team_id"], Value::Null, "null stays null");
    assert_eq!(pl["workspace"], p("ws-main"));
    assert_eq!(pl["rotated_from"], p("gk_old"));
    assert_eq!(pl["customer_tier"], "pro");

    let r = red(&ev(2, key_rotated()), m);
    assert_eq!(r["payload"]["key_id"], p("gk_alpha"));
    assert_eq!(r["payload"]["new_key_id"], p("gk_beta"));
    assert_eq!(
        r["payload"]["grace_period_until"],
        "2027-01-02T00:00:00.000Z"
    );

    let a = red(&ev(3, auth_failed()), m);
    assert_eq!(a["payload"]["gateway_key_id"], Value::Null);
    assert_eq!(a["payload"]["reason"], "invalid", "private text kept");
    assert_eq!(a["payload"]["token_hash_prefix"], "deadbeef");

    let q = red(&ev(4, quota_exceeded()), m);
    assert_eq!(q["payload"]["identity"], p("alice"));
    assert_eq!(q["payload"]["gateway_key_id"], p("gk_alpha"));
    assert_eq!(q["payload"]["scope"], "user");

    let d = red(&ev(5, route_decided()), m);
    assert_eq!(d["payload"]["request_id"], p("req-1"));
    assert_eq!(d["payload"]["reason"], "matched \"summarize, briefly\"");
    assert_eq!(d["payload"]["chain"][0]["reason"], "prompt said: hello");
    assert_eq!(d["payload"]["tried"][0]["model"], "openai:gpt-4o");

    let c = red(
        &ev(
            6,
            EventBody::LlmCallCompleted(call("req-1", "call-1", None, "0.01", 1, 2, 3)),
        ),
        m,
    );
    let cp = &c["payload"];
    assert_eq!(cp["request_id"], p("req-1"));
    assert_eq!(cp["call_id"], p("call-1"));
    assert_eq!(cp["gateway_key_id"], p("gk_alpha"));
    assert_eq!(cp["user_id"], Value::Null);
    assert_eq!(cp["team_id"], p("team-red"));
    assert_eq!(cp["cost_usd"], "0.01");
    assert_eq!(cp["input_tokens"], 1);

    let f = red(&ev(7, eval_failed()), m);
    assert_eq!(f["sensitivity"], "private");
    assert_eq!(f["payload"]["subject_id"], p("req-1"));
    assert_eq!(f["payload"]["eval_id"], "ev-1");
    assert!(
        f["payload"]["error_message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
}

#[test]
fn nested_identities_and_odd_values() {
    let v = json!({"id": 9, "type": "x", "payload": {
        "chain": [{"user_id": "u1", "reason": "r", "n": 1}, {"team_id": null}],
        "deep": {"tried": [{"key_id": "k1"}], "call_id": 7},
        "request_id": ["not", "a", "string"],
        "error": null,
        "reason": 5,
        "user": "alice",
    }});
    let ps = redact(v.clone(), Mode::Pseudonymize, b"");
    assert_eq!(ps["payload"]["chain"][0]["user_id"], p("u1"));
    assert_eq!(ps["payload"]["chain"][0]["reason"], "r");
    assert_eq!(ps["payload"]["chain"][1]["team_id"], Value::Null);
    assert_eq!(ps["payload"]["deep"]["tried"][0]["key_id"], p("k1"));
    assert_eq!(ps["payload"]["deep"]["call_id"], 7, "non-strings untouched");
    assert_eq!(ps["payload"]["request_id"], json!(["not", "a", "string"]));
    assert_eq!(ps["payload"]["user"], "alice", "only the listed names");

    let rp = redact(v, Mode::RedactPrivate, b"");
    assert_eq!(
        rp["payload"]["chain"][0]["reason"], SENTINEL,
        "nested text too"
    );
    assert_eq!(rp["payload"]["error"], Value::Null, "null stays null");
    assert_eq!(rp["payload"]["reason"], SENTINEL);
    assert_eq!(rp["payload"]["chain"][0]["user_id"], p("u1"));
}

#[test]
fn redact_private_is_pseudonymize_plus_sentinels() {
    let m = Mode::RedactPrivate;
    let f = red(&ev(7, eval_failed()), m);
    assert_eq!(f["payload"]["error_message"], SENTINEL);
    assert_eq!(f["payload"]["subject_id"], p("req-1"));
    assert_eq!(f["payload"]["evaluator"], "llm_judge");

    let d = red(&ev(5, route_decided()), m);
    assert_eq!(d["payload"]["reason"], SENTINEL);
    assert_eq!(d["payload"]["chain"][0]["reason"], SENTINEL);
    assert_eq!(d["payload"]["chain"][0]["verdict"], "chose");
    assert_eq!(d["payload"]["gateway_key_id"], p("gk_alpha"));

    let i = red(&ev(11, policy_invalid()), m);
    assert_eq!(i["payload"]["error"], SENTINEL);
    assert_eq!(i["payload"]["kept_version"], "v2");

    let a = red(&ev(3, auth_failed()), m);
    assert_eq!(a["payload"]["reason"], SENTINEL);
    assert_eq!(a["payload"]["gateway_key_id"], Value::Null);

    // Everything but the private fields as under pseudonymize.
    for e in sample() {
        let mut ps = red(&e, Mode::Pseudonymize);
        let rp = red(&e, m);
        if let Some(Value::Object(o)) = ps.get_mut("payload") {
            for k in PRIVATE_FIELDS {
                if o.get(*k).is_some_and(|v| !v.is_null()) {
                    o.insert((*k).to_owned(), json!(SENTINEL));
                }
            }
            if let Some(Value::Array(ch)) = o.get_mut("chain") {
                ch.iter_mut().for_each(|c| c["reason"] = json!(SENTINEL));
            }
        }
        assert_eq!(ps, rp);
    }
}

#[test]
fn inputs_are_not_changed() {
    let e = ev(1, key_issued());
    let before = serde_json::to_string(&e).unwrap();
    let _ = red(&e, Mode::RedactPrivate);
    assert_eq!(serde_json::to_string(&e).unwrap(), before);
}
