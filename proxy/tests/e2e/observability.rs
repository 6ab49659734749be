//! Observability: the shipped alert rules and Grafana dashboard name only
//! metric families Sluice registers; provider calls are timed (whole and
//! streamed, time to first token) with operator-named model labels; logs
//! can be JSON.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const ALERTS: [&str; 4] = [
    "SluiceLlmLatencyP99High",
    "SluiceErrorRateHigh",
    "SluiceAuthFailuresHigh",
    "SluiceKeyCostHigh",
];

const ROWS: [&str; 8] = [
    "Traffic & latency",
    "Errors",
    "Routing",
    "Plugins",
    "Auth & cost",
    "Quotas & keys",
    "Storage",
    "Evaluation",
];

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// Every `sluice_…` identifier in a PromQL expression, in order.
fn metric_names(expr: &str) -> Vec<String> {
    let b = expr.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("sluice_") {
        let start = i + at;
        let mut end = start + "sluice_".len();
        while end < b.len()
            && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == b'_')
        {
            end += 1;
        }
        // Part of a longer identifier (`my_sluice_x`, a recording rule's
        // `job:sluice_x`) is not a metric of ours.
        if start == 0 || !ident(b[start - 1]) {
            out.push(expr[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// The family a series name belongs to: itself, or a histogram's
/// `_bucket`/`_sum`/`_count` series.
fn family_of<'a>(name: &'a str, families: &BTreeSet<String>) -> Option<&'a str> {
    if families.contains(name) {
        return Some(name);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find(|base| families.contains(*base))
}

/// `expr:` values of a Prometheus rule file, inline or block scalars
/// (`expr: |`), without a YAML parser.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        i += 1;
        let Some(value) = trimmed.strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with('|') && !value.starts_with('>') {
            out.push(value.trim_matches(|c| c == '"' || c == '\'').to_owned());
            continue;
        }
        let mut block = String::new();
        while i < lines.len() {
            let l = lines[i];
            let t = l.trim_start();
            if !t.is_empty() && l.len() - t.len() <= indent {
                break;
            }
            block.push_str(t);
            block.push('\n');
            i += 1;
        }
        out.push(block);
    }
    out
}

/// `alert:` names of a rule file.
fn alert_names(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| {
            let t = l.trim_start().trim_start_matches("- ");
            Some(t.strip_prefix("alert:")?.trim().to_owned())
        })
        .collect()
}

/// Every `expr` (panel targets) and variable query of a dashboard.
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

fn promtool() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
}

fn run_promtool(promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alerts_and_dashboard_name_only_registered_families() {
    let names = sluice::metrics::family_names();
    let families: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(families.len(), names.len(), "a family registered twice");
    for f in [
        "sluice_llm_call_duration_seconds",
        "sluice_llm_time_to_first_token_seconds",
        "sluice_llm_tokens_total",
        "sluice_trace_store_bytes",
        "sluice_event_commit_duration_seconds",
        "sluice_evals_total",
        "sluice_eval_score",
        "sluice_eval_queue_depth",
        "sluice_eval_judge_cost_usd_total",
        "sluice_redactions_total",
        // Vec families without a child yet are still families.
        "sluice_quota_refusals_total",
    ] {
        assert!(families.contains(f), "{f} is not registered");
    }

    let alerts = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let found = alert_names(&alerts);
    for a in ALERTS {
        assert!(found.iter().any(|f| f == a), "alert {a} missing: {found:?}");
    }
    let rule_exprs = rule_exprs(&alerts);
    assert_eq!(rule_exprs.len(), ALERTS.len(), "{rule_exprs:?}");

    let text = std::fs::read_to_string(deploy("grafana/sluice.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).unwrap();
    assert!(
        text.contains("${DS_PROMETHEUS}") && dash["__inputs"][0]["name"] == "DS_PROMETHEUS",
        "the dashboard asks for its Prometheus data source"
    );
    let panels = dash["panels"].as_array().unwrap();
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for r in ROWS {
        assert!(rows.contains(&r), "row {r:?} missing: {rows:?}");
    }
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let targets = p["targets"].as_array().map_or(0, |t| {
            t.iter().filter(|t| t["expr"].as_str().is_some()).count()
        });
        assert!(targets > 0, "panel {} has no query", p["title"]);
    }
    let mut dash_exprs = Vec::new();
    dashboard_exprs(&dash, &mut dash_exprs);

    let mut used = BTreeSet::new();
    for (source, expr) in rule_exprs
        .iter()
        .map(|e| ("alerts.yml", e))
        .chain(dash_exprs.iter().map(|e| ("sluice.json", e)))
    {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{source}: {expr} names no sluice metric");
        for n in names {
            let family = family_of(&n, &families).unwrap_or_else(|| {
                panic!("{source}: {n} is not a Sluice metric family (in {expr})")
            });
            used.insert(family.to_owned());
        }
    }
    // The new families are on the dashboard.
    for f in [
        "sluice_llm_call_duration_seconds",
        "sluice_llm_time_to_first_token_seconds",
        "sluice_trace_store_bytes",
        "sluice_evals_total",
        "sluice_eval_score",
        "sluice_redactions_total",
    ] {
        assert!(used.contains(f), "{f} is on no panel");
    }

    let Some(promtool) = promtool() else {
        println!("promtool is not on PATH: skipping promtool check/test rules");
        return;
    };
    run_promtool(
        &promtool,
        &[
            "check",
            "rules",
            deploy("prometheus/alerts.yml").to_str().unwrap(),
        ],
    );
    run_promtool(
        &promtool,
        &[
            "test",
            "rules",
            deploy("prometheus/alerts_test.yml").to_str().unwrap(),
        ],
    );
    // The dashboard's queries parse as PromQL once Grafana's variables are
    // filled in (as recording rules, which promtool checks).
    let rules: Vec<Value> = dash_exprs
        .iter()
        .filter(|e| !e.starts_with("label_values("))
        .enumerate()
        .map(|(i, e)| {
            json!({
                "record": format!("dashboard:expr{i}"),
                "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*"),
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-rules.yml");
    // JSON is YAML.
    std::fs::write(
        &file,
        json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string(),
    )
    .unwrap();
    run_promtool(&promtool, &["check", "rules", file.to_str().unwrap()]);
}

#[test]
fn the_expression_scanner_finds_series_and_skips_lookalikes() {
    assert_eq!(
        metric_names(r#"sum(rate(sluice_a_bucket{le="30"}[5m])) / job:sluice_b + sluice_c"#),
        ["sluice_a_bucket", "sluice_c"]
    );
    let fams: BTreeSet<String> = ["sluice_a".to_owned()].into();
    assert_eq!(family_of("sluice_a_bucket", &fams), Some("sluice_a"));
    assert_eq!(family_of("sluice_a_total", &fams), None);
    let yaml = "rules:\n  - alert: X\n    expr: |\n      a\n      > 1\n    for: 5m\n  - alert: Y\n    expr: b > 2\n";
    assert_eq!(rule_exprs(yaml), ["a\n> 1\n", "b > 2"]);
    assert_eq!(alert_names(yaml), ["X", "Y"]);
}

/// Every family the live `/metrics` exposes, from its `# TYPE` lines.
fn exposed_families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| Some(l.strip_prefix("# TYPE ")?.split(' ').next()?.to_owned()))
        .collect()
}

fn priced_stack(config: &str, env: &'static [(&'static str, &'static str)]) -> Stack {
    let pricing: &'static str = Box::leak(shipped_pricing().into_boxed_str());
    let files: &'static [(&'static str, &'static str)] =
        Box::leak(Box::new([("pricing.toml", pricing)]));
    let config: &'static str = Box::leak(config.to_owned().into_boxed_str());
    Stack::start(Options {
        policy_files: files,
        config,
        env,
        ..Options::default()
    })
}

#[test]
fn provider_calls_are_timed_whole_streamed_and_failed() {
    let stack = priced_stack("", &[]);
    let whole = json!({"model": "mock:gpt-4o-mini",
                       "messages": [{"role": "user", "content": "hi"}]});
    let slow = [("x-mock-latency-ms", "300")];
    let r = stack.post(OPENAI, &whole, &slow);
    assert_eq!(r.status, 200, "{}", r.text());
    let mut streamed = whole.clone();
    streamed["stream"] = json!(true);
    let r = stack.post(OPENAI, &streamed, &slow);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());
    // An error passed through is still a timed call.
    let r = stack.post(OPENAI, &whole, &[("x-mock-error", "400")]);
    assert_eq!(r.status, 400, "{}", r.text());
    // A model the operator did not name is labelled "other".
    let unnamed = json!({"model": "mock:made-up-model-7",
                         "messages": [{"role": "user", "content": "hi"}]});
    let r = stack.post(OPENAI, &unnamed, &[]);
    assert_eq!(r.status, 200, "{}", r.text());

    let named = r#"{model="gpt-4o-mini",provider="mock"}"#;
    let m = stack.metrics();
    let count = |family: &str, labels: &str| metric(&m, &format!("{family}_count{labels}"));
    assert_eq!(
        count("sluice_llm_call_duration_seconds", named),
        3.0,
        "whole, streamed and the 400:\n{m}"
    );
    assert!(
        metric(&m, &format!("sluice_llm_call_duration_seconds_sum{named}")) >= 0.6,
        "two calls of 300 ms at least:\n{m}"
    );
    assert_eq!(
        count("sluice_llm_time_to_first_token_seconds", named),
        1.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            &format!("sluice_llm_time_to_first_token_seconds_sum{named}")
        ) >= 0.3,
        "{m}"
    );
    assert_eq!(
        count(
            "sluice_llm_call_duration_seconds",
            r#"{model="other",provider="mock"}"#
        ),
        1.0,
        "{m}"
    );
    assert!(
        !m.contains("made-up-model-7"),
        "a client minted a label:\n{m}"
    );
    // The bucket bounds are the spec's.
    assert!(
        m.contains(r#"sluice_llm_call_duration_seconds_bucket{model="gpt-4o-mini",provider="mock",le="30"}"#),
        "{m}"
    );
    assert!(
        m.contains(r#"sluice_llm_time_to_first_token_seconds_bucket{model="gpt-4o-mini",provider="mock",le="0.05"}"#),
        "{m}"
    );
    // family_names() covers everything the endpoint serves.
    let families: BTreeSet<String> = sluice::metrics::family_names().into_iter().collect();
    let exposed = exposed_families(&m);
    assert!(
        exposed.is_subset(&families),
        "served but not in family_names(): {:?}",
        exposed.difference(&families).collect::<Vec<_>>()
    );
}

/// A provider on a port nothing listens on: its calls fail with a logged,
/// request-scoped upstream error.
const DEAD_PROVIDER: &str = "[[providers]]\nname = \"dead\"\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

fn failing_request(stack: &Stack) -> String {
    let body = json!({"model": "dead:gpt-4o-mini",
                      "messages": [{"role": "user", "content": "hi"}]});
    let r = stack.post(OPENAI, &body, &[("x-request-id", "obs-log-1")]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        eventually(Duration::from_secs(10), || stack
            .proxy
            .log_text()
            .contains("obs-log-1")),
        "{}",
        stack.proxy.log_text()
    );
    stack.proxy.log_text()
}

#[test]
fn logs_are_json_when_the_config_says_so() {
    let config = format!("[log]\nformat = \"json\"\n{DEAD_PROVIDER}");
    let stack = priced_stack(&config, &[]);
    let log = failing_request(&stack);
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    let failed = lines
        .iter()
        .find(|l| l["request_id"] == "obs-log-1")
        .unwrap_or_else(|| panic!("no line with the request id:\n{log}"));
    assert_eq!(failed["level"], "WARN", "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains("upstream"),
        "{failed}"
    );
    // The failed call is timed too, under the provider that failed.
    assert_eq!(
        metric(
            &stack.metrics(),
            r#"sluice_llm_call_duration_seconds_count{model="other",provider="dead"}"#
        ),
        1.0
    );
}

#[test]
fn sluice_log_format_in_the_environment_wins_over_the_config() {
    let config = format!("[log]\nformat = \"json\"\n{DEAD_PROVIDER}");
    let stack = priced_stack(&config, &[("SLUICE_LOG_FORMAT", "text")]);
    let log = failing_request(&stack);
    let line = log.lines().find(|l| l.contains("obs-log-1")).unwrap();
    assert!(!line.trim_start().starts_with('{'), "{line}");
    assert!(
        line.contains("WARN") && line.contains("request_id"),
        "{line}"
    );
}
