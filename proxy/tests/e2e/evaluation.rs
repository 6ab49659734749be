//! Evaluators off the request path: the heuristic component scores every
//! sampled answer, the LLM judge (a model called through Sluice itself)
//! the ones it is unsure of; scores land as events and in quality
//! analytics.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

fn events(s: &Stack, ty: &str) -> Vec<Value> {
    s.admin_get(&format!("/admin/traces?type={ty}&limit=10000"))
        .json()["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn scores_appear_as_events_and_in_quality_and_the_judge_takes_the_doubtful_ones() {
    let s = Stack::start(Options {
        plugins: &["evaluator_heuristic.wasm"],
        config: "[evaluation]\nsample_rate = 1.0\n[evaluation.judge]\nmodel = \"mock:judge-1\"\n",
        ..Options::default()
    });
    let ask = |extra: &[(&str, &str)], stream: bool| {
        let body = json!({"model": "mock:gpt-4o-mini", "stream": stream,
                          "messages": [{"role": "user", "content": "what is a river?"}]});
        let r = s.post(OPENAI, &body, extra);
        assert_eq!(r.status, 200, "{}", r.text());
    };
    for _ in 0..3 {
        ask(&[], false);
    }
    ask(&[], true);
    // An empty answer: the heuristic scores it low, the judge is asked.
    ask(&[("x-mock-output-tokens", "0")], false);
    assert!(
        eventually(Duration::from_secs(20), || {
            events(&s, "eval.completed")
                .iter()
                .filter(|e| e["payload"]["evaluator"] == "heuristic-judge")
                .count()
                >= 5
                && events(&s, "eval.completed")
                    .iter()
                    .any(|e| e["payload"]["evaluator"] == "llm-judge")
        }),
        "evals: {:?}\nlog:\n{}",
        events(&s, "eval.completed"),
        s.proxy.log_text()
    );
    let evals = events(&s, "eval.completed");
    for e in &evals {
        let p = &e["payload"];
        let score = p["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{p}");
        assert_eq!(p["model"], "mock:gpt-4o-mini");
        assert!(p["rubric_version"].as_u64().is_some());
    }
    let judged: Vec<&Value> = evals
        .iter()
        .filter(|e| e["payload"]["evaluator"] == "llm-judge")
        .collect();
    assert_eq!(
        judged.len(),
        1,
        "only the empty answer is escalated: {evals:?}"
    );
    assert_eq!(judged[0]["payload"]["score"], 0.85);
    let low = evals
        .iter()
        .find(|e| {
            e["payload"]["subject_id"] == judged[0]["payload"]["subject_id"]
                && e["payload"]["evaluator"] == "heuristic-judge"
        })
        .unwrap();
    assert!(low["payload"]["score"].as_f64().unwrap() < 0.7, "{low}");
    assert!(!events(&s, "eval.started").is_empty());
    // The judge's own call went through Sluice and was not evaluated.
    let calls = events(&s, "llm.call_completed");
    assert!(
        calls
            .iter()
            .any(|c| c["payload"]["model"] == "mock:judge-1"),
        "{calls:?}"
    );
    assert!(
        evals
            .iter()
            .all(|e| e["payload"]["model"] != "mock:judge-1")
    );

    let q = s.admin_get("/analytics/quality").json();
    let m = q["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "mock:gpt-4o-mini")
        .unwrap()
        .clone();
    assert_eq!(m["evaluations"], 6, "{q}");
    assert!(q["pricing_version"].is_string());
    let text = s.metrics();
    assert!(
        metric(
            &text,
            "sluice_evals_total{evaluator=\"heuristic-judge\",result=\"completed\"}"
        ) >= 5.0
    );
    // A client cannot switch evaluation off by claiming to be the judge.
    ask(&[("x-sluice-judge", "guess")], false);
    assert!(eventually(Duration::from_secs(10), || events(
        &s,
        "eval.completed"
    )
    .iter()
    .filter(|e| e["payload"]["evaluator"] == "heuristic-judge")
    .count()
        >= 6));
}
