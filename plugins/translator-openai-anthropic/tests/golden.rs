//! Golden cases: every `tests/golden/<case>.json` runs through the pure
//! translation entry points and is compared as JSON values.
//!
//! A case is an object with
//! - `ctx`: `client`/`provider` (`"openai"`/`"anthropic"`), `provider_model`,
//!   `client_model`, optional `stream` and `include_usage` (default false);
//! - `kind`: `"request"`, `"response"` or `"stream"`;
//! - `input`: the body, or for a stream a list of `{"event", "data"}` events
//!   (`data` a JSON value, or a string sent verbatim such as `"[DONE]"`);
//! - either `expected` (a body, or the events the pushes return) or
//!   `expected_error` (`status`, `code`, optional `param`);
//! - for streams, `expected_finish`: the events `finish()` returns
//!   (default none).
//!
//! `created` (Unix seconds) is fixed at 1767225600.
//!
//! Case names say what is translated: `req_o2a_*` an OpenAI request into an
//! Anthropic one, `resp_a2o_*` / `stream_a2o_*` an Anthropic response or
//! stream into OpenAI's shape, and so on.

use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};
use translator_openai_anthropic::error::Failure;
use translator_openai_anthropic::stream::Event;
use translator_openai_anthropic::translate::{
    Context, Shape, StreamTranslator, translate_request, translate_response,
};

const CREATED: u64 = 1_767_225_600;

#[test]
fn golden_cases() {
    let cases = case_files();
    assert!(!cases.is_empty(), "no golden cases found");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|path| run_case(path).err().map(|e| format!("{}: {e}", name(path))))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("tests/golden exists")
        .map(|entry| entry.expect("readable dir entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let case: Value = serde_json::from_str(&text).map_err(|e| format!("bad case file: {e}"))?;
    let ctx = context(&case["ctx"])?;
    match case["kind"].as_str() {
        Some("request") => check_body(&case, translate_request(&ctx, &case["input"].to_string())),
        Some("response") => check_body(
            &case,
            translate_response(&ctx, &case["input"].to_string(), CREATED),
        ),
        Some("stream") => check_stream(&case, &ctx),
        other => Err(format!("unknown kind {other:?}")),
    }
}

fn context(ctx: &Value) -> Result<Context, String> {
    let shape = |field: &str| match ctx[field].as_str() {
        Some("openai") => Ok(Shape::OpenAi),
        Some("anthropic") => Ok(Shape::Anthropic),
        other => Err(format!("ctx.{field} is {other:?}")),
    };
    Ok(Context {
        client: shape("client")?,
        provider: shape("provider")?,
        provider_model: ctx["provider_model"].as_str().unwrap_or_default().into(),
        client_model: ctx["client_model"].as_str().unwrap_or_default().into(),
        stream: ctx["stream"] == true,
        include_usage: ctx["include_usage"] == true,
    })
}

fn check_body(case: &Value, result: Result<String, Failure>) -> Result<(), String> {
    match result {
        Ok(body) => {
            let actual: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            compare("body", &case["expected"], &actual)
        }
        Err(failure) => check_error(case, &failure),
    }
}

fn check_error(case: &Value, failure: &Failure) -> Result<(), String> {
    let expected = &case["expected_error"];
    if expected.is_null() {
        return Err(format!("unexpected error: {failure}"));
    }
    let actual = json!({"status": failure.status, "code": failure.code, "param": failure.param});
    let mut wanted = expected.clone();
    if wanted.get("param").is_none() {
        wanted["param"] = Value::Null;
    }
    compare("error", &wanted, &actual)
}

fn check_stream(case: &Value, ctx: &Context) -> Result<(), String> {
    let mut translator = StreamTranslator::new(ctx, CREATED).map_err(|e| e.to_string())?;
    let inputs = case["input"]
        .as_array()
        .ok_or("stream input must be a list")?;
    let mut pushed = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match translator.push(&provider_event(input)) {
            Ok(events) => pushed.extend(events),
            Err(failure) => {
                return check_error(case, &failure).map_err(|e| format!("push {i}: {e}"));
            }
        }
    }
    compare("pushed events", &case["expected"], &events_json(&pushed))?;
    let finished = translator.finish();
    let expected_finish = match &case["expected_finish"] {
        Value::Null => json!([]),
        events => events.clone(),
    };
    compare("finish events", &expected_finish, &events_json(&finished))
}

fn provider_event(input: &Value) -> Event {
    Event {
        event: input["event"].as_str().map(str::to_owned),
        data: match &input["data"] {
            Value::String(raw) => raw.clone(),
            data => data.to_string(),
        },
    }
}

/// Events as JSON for comparison; data that is not JSON (`[DONE]`) stays a
/// string.
fn events_json(events: &[Event]) -> Value {
    events
        .iter()
        .map(|e| {
            let data =
                serde_json::from_str(&e.data).unwrap_or_else(|_| Value::String(e.data.clone()));
            json!({"event": e.event, "data": data})
        })
        .collect()
}

fn compare(what: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "{what} differs\n  expected: {}\n  actual:   {}",
        pretty(expected),
        pretty(actual)
    ))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value)
        .unwrap()
        .replace('\n', "\n  ")
}
