//! The `aggregate_only` summary.

use serde_json::json;

use super::*;
use crate::audit::Aggregate;

fn summary(events: &[Event]) -> String {
    let mut a = Aggregate::new();
    for e in events {
        a.add(&serde_json::to_value(e).unwrap()).unwrap();
    }
    serde_json::to_string(&a.to_json()).unwrap()
}

#[test]
fn aggregate_counts_sums_and_distinct_ids() {
    let want = concat!(
        r#"{"mode":"aggregate_only","events":11,"by_type":{"#,
        r#""eval.failed":1,"gateway.auth_failed":1,"gateway.key_issued":1,"#,
        r#""gateway.key_rotated":1,"gateway.quota_exceeded":1,"llm.call_completed":2,"#,
        r#""llm.call_failed":1,"request.completed":1,"route.decided":1,"#,
        r#""routing.policy_invalid":1},"#,
        r#""distinct_gateway_keys":3,"distinct_users":2,"distinct_teams":1,"#,
        r#""distinct_requests":2,"#,
        r#""cost_usd":{"sum":"0.0125","min":"0.0025","max":"0.01"},"#,
        r#""tokens":{"input":1500,"output":700},"#,
        r#""latency_ms":{"sum":1100,"min":300,"max":800}}"#,
    );
    assert_eq!(summary(&sample()), want);
    // The order events come in changes nothing.
    let mut rev = sample();
    rev.reverse();
    assert_eq!(summary(&rev), want);
}

#[test]
fn aggregate_of_nothing() {
    assert_eq!(
        summary(&[]),
        concat!(
            r#"{"mode":"aggregate_only","events":0,"by_type":{},"#,
            r#""distinct_gateway_keys":0,"distinct_users":0,"distinct_teams":0,"#,
            r#""distinct_requests":0,"cost_usd":{"sum":"0","min":null,"max":null},"#,
            r#""tokens":{"input":0,"output":0},"latency_ms":{"sum":0,"min":null,"max":null}}"#,
        )
    );
}

#[test]
fn aggregate_money_is_exact_and_normalized() {
    let call = |cost: &str, ms: u64| {
        json!({"id": 1, "type": "llm.call_completed", "payload": {
            "cost_usd": cost, "input_tokens": 1, "output_tokens": 2, "latency_ms": ms,
        }})
    };
    let mut a = Aggregate::new();
    a.add(&call("0.010", 5)).unwrap();
    a.add(&call("0.01", 5)).unwrap();
    a.add(&call("0.1", 7)).unwrap();
    a.add(&call("0.2", 7)).unwrap();
    let v = a.to_json();
    // 0.1 + 0.2 is 0.3 exactly, not 0.30000000000000004.
    assert_eq!(
        v["cost_usd"],
        json!({"sum": "0.32", "min": "0.01", "max": "0.2"})
    );
    assert_eq!(v["tokens"], json!({"input": 4, "output": 8}));
    assert_eq!(v["latency_ms"], json!({"sum": 24, "min": 5, "max": 7}));
    assert_eq!(v["by_type"], json!({"llm.call_completed": 4}));

    let mut bad = Aggregate::new();
    assert!(bad.add(&call("lots", 1)).is_err());
    assert!(
        bad.add(&json!({"id": 2, "payload": {}})).is_err(),
        "no type"
    );
}

#[test]
fn aggregate_counts_ids_anywhere_in_payloads() {
    let mut a = Aggregate::new();
    let v = json!({"id": 1, "type": "x", "payload": {
        "chain": [{"user_id": "u1"}, {"user_id": "u2"}, {"user_id": null}],
        "nested": {"team_id": "t1", "key_id": "k1"},
        "gateway_key_id": "k1",
        "subject_id": "r1",
        "request_id": "r2",
        "workspace": "w",
    }});
    a.add(&v).unwrap();
    a.add(&v).unwrap();
    let s = a.to_json();
    assert_eq!(s["events"], 2);
    assert_eq!(s["distinct_gateway_keys"], 1);
    assert_eq!(s["distinct_users"], 2);
    assert_eq!(s["distinct_teams"], 1);
    assert_eq!(s["distinct_requests"], 2);
    assert_eq!(s["cost_usd"]["min"], serde_json::Value::Null);
}
