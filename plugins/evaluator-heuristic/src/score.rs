//! The heuristic rubric, on plain strings and `serde_json::Value`.
//!
//! Version 2 of rubric `heuristic`. The score starts at 1.0 and is
//! multiplied by one factor per rule that fires:
//!
//! | rule                 | factor | signal                          |
//! |----------------------|--------|---------------------------------|
//! | empty answer         | 0.4    | `empty`                         |
//! | refusal              | 0.5    | `refusal`                       |
//! | truncated            | 0.8    | `truncated`                     |
//! | invalid tool call(s) | 0.3    | `tool_calls_invalid` (a count)  |
//! | JSON asked, not JSON | 0.2    | `json_invalid`                  |
//!
//! and an HTTP status of 400 or more scores 0 (`error`). The signals come
//! in the fixed order of [`SIGNALS`]: version 1's five first, version 2's
//! appended, so the first five mean what they meant in version 1.

use serde_json::Value;

use crate::stream;

pub const RUBRIC_ID: &str = "heuristic";
/// 2 adds tool-call validity, JSON validity for `response_format`, and
/// reads truncation and tool calls from streams.
pub const RUBRIC_VERSION: u32 = 2;
/// Heuristics are cheap and rough: never fully sure.
pub const CONFIDENCE: f64 = 0.6;

const EMPTY_FACTOR: f64 = 0.4;
const REFUSAL_FACTOR: f64 = 0.5;
const TRUNCATED_FACTOR: f64 = 0.8;
/// Applied once however many tool calls are invalid.
const TOOL_CALL_INVALID_FACTOR: f64 = 0.3;
const JSON_INVALID_FACTOR: f64 = 0.2;

/// The names of the signals of every [`Outcome`], in their order:
///
/// 1. `error`: 1.0 when the status was 400 or more, else 0.0.
/// 2. `empty`: 1.0 when the answer has no text (only white space) and no
///    valid tool call.
/// 3. `refusal`: 1.0 when the text opens with, or has a sentence opening
///    with, a refusal ([`is_refusal`]).
/// 4. `truncated`: 1.0 when the provider stopped at the token limit
///    (`finish_reason` `length` / `stop_reason` `max_tokens`).
/// 5. `length_chars`: characters in the answer's text.
/// 6. `tool_calls`: tool calls in the answer.
/// 7. `tool_calls_invalid`: those whose arguments are not a JSON object or
///    whose name is not one of the tools the request offered (when it
///    offered any).
/// 8. `json_invalid`: 1.0 when the OpenAI request asked for JSON
///    (`response_format` `json_object` / `json_schema`) and the text is not
///    (for `json_object`, not a JSON object). Not checked when the text is
///    blank: `empty` covers that, and a turn of tool calls has no content.
pub const SIGNALS: [&str; 8] = [
    "error",
    "empty",
    "refusal",
    "truncated",
    "length_chars",
    "tool_calls",
    "tool_calls_invalid",
    "json_invalid",
];

/// Openings that make a sentence a refusal, lower case; `'` also matches
/// the typographic `’`.
const REFUSALS: &[&str] = &[
    "i can't",
    "i cannot",
    "i'm unable",
    "i am unable",
    "i won't",
];

/// The wire shape of the request and response bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    OpenAi,
    Anthropic,
}

/// A score in [0, 1] and the signals behind it, named and ordered as
/// [`SIGNALS`].
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub score: f64,
    pub signals: Vec<(&'static str, f64)>,
}

impl Outcome {
    pub fn signal(&self, name: &str) -> Option<f64> {
        self.signals.iter().find(|(n, _)| *n == name).map(|s| s.1)
    }
}

/// The assistant's answer: its text, whether the provider cut it short and
/// the tools it called.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub truncated: bool,
    pub tool_calls: Vec<ToolCall>,
}

/// One tool call of an answer.
#[derive(Debug, PartialEq)]
pub struct ToolCall {
    /// Empty when the call names no tool.
    pub name: String,
    /// The arguments, when they are JSON at all (OpenAI sends them as JSON
    /// text; a missing or non-text `arguments` is `None`).
    pub arguments: Option<Value>,
}

impl ToolCall {
    /// Whether the call names a tool (one of `offered`, unless that is
    /// empty) and its arguments are a JSON object.
    pub fn is_valid(&self, offered: &[String]) -> bool {
        !self.name.is_empty()
            && (offered.is_empty() || offered.contains(&self.name))
            && matches!(self.arguments, Some(Value::Object(_)))
    }
}

/// What the request asked of the answer.
#[derive(Debug, Default, PartialEq)]
pub struct Request {
    /// Names of the tools offered, in order; empty when none were.
    pub tools: Vec<String>,
    /// The JSON the answer's text must be, from OpenAI `response_format`.
    pub json: Option<JsonFormat>,
}

/// What `response_format` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonFormat {
    /// `json_object`: a JSON object.
    Object,
    /// `json_schema`: JSON (the schema itself is not checked).
    Any,
}

impl JsonFormat {
    pub fn accepts(self, text: &str) -> bool {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => self == JsonFormat::Any || v.is_object(),
            Err(_) => false,
        }
    }
}

/// A finished exchange, as the host describes it.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// The client's API shape, which the request body and a whole response
    /// body are in.
    pub shape: Shape,
    pub status: u16,
    pub streamed: bool,
    /// The client's request body (JSON text).
    pub request_body: &'a str,
    /// The response body, or for a stream its SSE events as text.
    pub response_body: &'a str,
    /// The text assembled from a stream's deltas; unused when not streamed.
    pub answer_text: &'a str,
}

/// Score one exchange. A status of 400 or more scores 0 without reading
/// anything else (the body is an error envelope, not an answer). A whole
/// response body that is not a response of `shape` is an error; a stream's
/// events are read leniently (see [`stream::extract`]), as is the request
/// (one that is not JSON asks nothing).
pub fn evaluate_exchange(x: &Exchange) -> Result<Outcome, String> {
    if x.status >= 400 {
        return Ok(error_outcome());
    }
    let answer = if x.streamed {
        stream::extract(x.answer_text, x.response_body)
    } else {
        extract(x.shape, x.response_body)?
    };
    Ok(score(&answer, &request(x.shape, x.request_body)))
}

/// Score a whole response body for a request that offered no tools and
/// asked for no JSON.
pub fn evaluate(shape: Shape, status: u16, body: &str) -> Result<Outcome, String> {
    evaluate_exchange(&Exchange {
        shape,
        status,
        streamed: false,
        request_body: "",
        response_body: body,
        answer_text: "",
    })
}

/// The outcome of an exchange that failed: score 0, `error` 1.0, every
/// other signal 0.0.
pub fn error_outcome() -> Outcome {
    Outcome {
        score: 0.0,
        signals: SIGNALS
            .iter()
            .map(|&n| (n, if n == "error" { 1.0 } else { 0.0 }))
            .collect(),
    }
}

/// Score an answer to `request`.
pub fn score(answer: &Answer, request: &Request) -> Outcome {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let calls = answer.tool_calls.len();
    let invalid = answer
        .tool_calls
        .iter()
        .filter(|c| !c.is_valid(&request.tools))
        .count();
    let blank = answer.text.trim().is_empty();
    let empty = blank && invalid == calls;
    let refusal = !blank && is_refusal(&answer.text);
    let json_invalid = !blank && request.json.is_some_and(|f| !f.accepts(&answer.text));
    let mut score = 1.0;
    for (fired, factor) in [
        (empty, EMPTY_FACTOR),
        (refusal, REFUSAL_FACTOR),
        (answer.truncated, TRUNCATED_FACTOR),
        (invalid > 0, TOOL_CALL_INVALID_FACTOR),
        (json_invalid, JSON_INVALID_FACTOR),
    ] {
        if fired {
            score *= factor;
        }
    }
    let values = [
        0.0,
        flag(empty),
        flag(refusal),
        flag(answer.truncated),
        answer.text.chars().count() as f64,
        calls as f64,
        invalid as f64,
        flag(json_invalid),
    ];
    Outcome {
        score: f64::clamp(score, 0.0, 1.0),
        signals: SIGNALS.into_iter().zip(values).collect(),
    }
}

/// What a request body of `shape` asks of the answer: the tools it offers
/// (`tools[].function.name` for OpenAI, `tools[].name` for Anthropic; the
/// other form is accepted too) and, for OpenAI, the `response_format`. A
/// body that is not JSON asks nothing.
pub fn request(shape: Shape, body: &str) -> Request {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Request::default();
    };
    let tools = v["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().or(t["name"].as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let json = match shape {
        Shape::OpenAi => match v["response_format"]["type"].as_str() {
            Some("json_object") => Some(JsonFormat::Object),
            Some("json_schema") => Some(JsonFormat::Any),
            _ => None,
        },
        // Anthropic Messages has no `response_format`.
        Shape::Anthropic => None,
    };
    Request { tools, json }
}

/// The answer in a whole response body of `shape`: the text of OpenAI
/// `choices[0].message.content` (a string or a list of text parts) and the
/// `tool_calls` of every choice, or the Anthropic `text` blocks joined and
/// its `tool_use` blocks.
pub fn extract(shape: Shape, body: &str) -> Result<Answer, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("response body is not JSON: {e}"))?;
    match shape {
        Shape::OpenAi => {
            let choices = v["choices"]
                .as_array()
                .ok_or("response body is not an OpenAI chat.completion: no `choices`")?;
            let Some(choice) = choices.first() else {
                return Ok(Answer::default());
            };
            // `content` is a string, null (tool calls only) or, from some
            // providers, a list of text parts.
            let content = &choice["message"]["content"];
            let text = match content {
                Value::String(s) => s.clone(),
                Value::Array(parts) => join_text(parts),
                _ => String::new(),
            };
            let tool_calls = choices
                .iter()
                .filter_map(|c| c["message"]["tool_calls"].as_array())
                .flatten()
                .map(|call| ToolCall {
                    name: call["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: call["function"]["arguments"]
                        .as_str()
                        .and_then(|a| serde_json::from_str(a).ok()),
                })
                .collect();
            Ok(Answer {
                text,
                truncated: choice["finish_reason"] == "length",
                tool_calls,
            })
        }
        Shape::Anthropic => {
            let blocks = v["content"]
                .as_array()
                .ok_or("response body is not an Anthropic message: no `content`")?;
            let tool_calls = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| ToolCall {
                    name: b["name"].as_str().unwrap_or_default().to_owned(),
                    arguments: b.get("input").cloned(),
                })
                .collect();
            Ok(Answer {
                text: join_text(blocks),
                truncated: v["stop_reason"] == "max_tokens",
                tool_calls,
            })
        }
    }
}

/// The `text` of every block that has one, joined.
fn join_text(blocks: &[Value]) -> String {
    blocks.iter().filter_map(|b| b["text"].as_str()).collect()
}

/// Whether the answer, or one of its sentences, opens with a refusal phrase.
/// A sentence opens at the start of the text, after `.`, `!` or `?`
/// followed by white space, and after a line break; leading white space and
/// Markdown/quote marks (`*`, `_`, `>`, `"`, `“`) are skipped.
pub fn is_refusal(text: &str) -> bool {
    let norm: String = text
        .chars()
        .map(|c| match c {
            '\u{2019}' => '\'',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    let mut at_start = true;
    let mut after_stop = false;
    for (i, c) in norm.char_indices() {
        if at_start {
            if c.is_whitespace() || matches!(c, '*' | '_' | '>' | '"' | '“') {
                continue;
            }
            at_start = false;
            if opens_with_refusal(&norm[i..]) {
                return true;
            }
        }
        if c == '\n' || (after_stop && c.is_whitespace()) {
            at_start = true;
        }
        after_stop = matches!(c, '.' | '!' | '?');
    }
    false
}

fn opens_with_refusal(s: &str) -> bool {
    REFUSALS.iter().any(|p| {
        s.starts_with(p)
            && !s[p.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use serde_json::json;

    #[test]
    fn a_plain_answer_scores_one() {
        let o = evaluate(Shape::OpenAi, 200, &openai(json!("Paris."), "stop")).unwrap();
        assert_eq!(o.score, 1.0);
        assert_eq!(
            o.signals,
            vec![
                ("error", 0.0),
                ("empty", 0.0),
                ("refusal", 0.0),
                ("truncated", 0.0),
                ("length_chars", 6.0),
                ("tool_calls", 0.0),
                ("tool_calls_invalid", 0.0),
                ("json_invalid", 0.0),
            ]
        );
    }

    #[test]
    fn empty_answers_are_penalised() {
        for body in [
            openai(json!(""), "stop"),
            openai(json!("  \n "), "stop"),
            openai(Value::Null, "tool_calls"),
            json!({"choices": []}).to_string(),
            anthropic(&[], "end_turn"),
        ] {
            let shape = if body.contains("\"type\"") {
                Shape::Anthropic
            } else {
                Shape::OpenAi
            };
            let o = evaluate(shape, 200, &body).unwrap();
            assert!(close(o.score, 0.4), "{body}: {o:?}");
            assert_eq!(o.signal("empty"), Some(1.0));
            assert_eq!(o.signal("refusal"), Some(0.0));
        }
    }

    #[test]
    fn refusals_at_the_start_of_the_answer_or_a_sentence() {
        for text in [
            "I can't help with that.",
            "i CANNOT do this",
            "Sure thing. I'm unable to browse, though.",
            "Let me think!  I am unable to answer",
            "First line\nI won't do that",
            "**I can’t** share that.",
        ] {
            assert!(is_refusal(text), "{text}");
        }
        let o = evaluate(
            Shape::OpenAi,
            200,
            &openai(json!("I cannot do that."), "stop"),
        )
        .unwrap();
        assert!(close(o.score, 0.5));
        assert_eq!(o.signal("refusal"), Some(1.0));
    }

    #[test]
    fn refusal_phrases_mid_sentence_do_not_count() {
        for text in [
            "You said I can't win, but you can.",
            "If I cannot find it, I will ask.",
            "Mr. Smith says that I won't go",
            "I cannotate is not a word",
            "The value is 3.I can't",
            "I canned the soup.",
        ] {
            assert!(!is_refusal(text), "{text}");
        }
    }

    #[test]
    fn truncation_by_shape() {
        let o = evaluate(Shape::OpenAi, 200, &openai(json!("Once upon"), "length")).unwrap();
        assert!(close(o.score, 0.8));
        assert_eq!(o.signal("truncated"), Some(1.0));
        let o = evaluate(
            Shape::Anthropic,
            200,
            &anthropic(&["Once ", "upon"], "max_tokens"),
        )
        .unwrap();
        assert!(close(o.score, 0.8));
        assert_eq!(o.signal("length_chars"), Some(9.0));
        // A refusal cut short compounds.
        let o = evaluate(
            Shape::Anthropic,
            200,
            &anthropic(&["I won't"], "max_tokens"),
        )
        .unwrap();
        assert!(close(o.score, 0.4));
        // "max_tokens" means nothing in an OpenAI body.
        let o = evaluate(Shape::OpenAi, 200, &openai(json!("x"), "max_tokens")).unwrap();
        assert_eq!(o.score, 1.0);
    }

    #[test]
    fn anthropic_text_blocks_are_joined_and_others_skipped() {
        let body = json!({"type": "message", "content": [
            {"type": "text", "text": "Grüße, "},
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            {"type": "text", "text": "日本"}], "stop_reason": "end_turn"})
        .to_string();
        let a = extract(Shape::Anthropic, &body).unwrap();
        assert_eq!(a.text, "Grüße, 日本");
        let o = evaluate(Shape::Anthropic, 200, &body).unwrap();
        assert_eq!(o.signal("length_chars"), Some(9.0), "characters, not bytes");
    }

    #[test]
    fn error_status_scores_zero_whatever_the_body() {
        for status in [400, 429, 503] {
            let o = evaluate(Shape::OpenAi, status, "<html>bad gateway</html>").unwrap();
            assert_eq!(o.score, 0.0);
            assert_eq!(o.signal("error"), Some(1.0));
        }
        let o = evaluate(Shape::OpenAi, 399, &openai(json!("ok"), "stop")).unwrap();
        assert_eq!(o.signal("error"), Some(0.0));
    }

    #[test]
    fn unparseable_or_wrong_shape_bodies_are_errors() {
        assert!(evaluate(Shape::OpenAi, 200, "not json").is_err());
        assert!(evaluate(Shape::OpenAi, 200, "").is_err());
        let e = evaluate(Shape::OpenAi, 200, &anthropic(&["hi"], "end_turn")).unwrap_err();
        assert!(e.contains("choices"), "{e}");
        let e = evaluate(Shape::Anthropic, 200, &openai(json!("hi"), "stop")).unwrap_err();
        assert!(e.contains("content"), "{e}");
    }

    /// Version 1's cases, scored as version 1 scored them (values from the
    /// version 1 code): the same score and the same first five signals, and
    /// the new signals at zero. Requests that ask nothing of the answer, or
    /// offer tools the answer does not call, change nothing.
    #[test]
    fn version_1_cases_keep_their_scores() {
        let plain = openai_request(&[], json!({}));
        let tools = openai_request(&["get_weather"], json!({}));
        let a_tools = anthropic_request(&["get_weather"]);
        let o = Shape::OpenAi;
        let a = Shape::Anthropic;
        let cases: Vec<(Shape, &str, String, f64, [f64; 5])> = vec![
            (
                o,
                &plain,
                openai(json!("Paris."), "stop"),
                1.0,
                [0.0, 0.0, 0.0, 0.0, 6.0],
            ),
            (
                o,
                &tools,
                openai(json!("Paris."), "stop"),
                1.0,
                [0.0, 0.0, 0.0, 0.0, 6.0],
            ),
            (
                o,
                &plain,
                openai(json!(""), "stop"),
                0.4,
                [0.0, 1.0, 0.0, 0.0, 0.0],
            ),
            (
                o,
                &plain,
                openai(json!("  \n "), "stop"),
                0.4,
                [0.0, 1.0, 0.0, 0.0, 4.0],
            ),
            (
                o,
                &tools,
                openai(Value::Null, "tool_calls"),
                0.4,
                [0.0, 1.0, 0.0, 0.0, 0.0],
            ),
            (
                o,
                &plain,
                json!({"choices": []}).to_string(),
                0.4,
                [0.0, 1.0, 0.0, 0.0, 0.0],
            ),
            (
                a,
                &a_tools,
                anthropic(&[], "end_turn"),
                0.4,
                [0.0, 1.0, 0.0, 0.0, 0.0],
            ),
            (
                o,
                &plain,
                openai(json!("I cannot do that."), "stop"),
                0.5,
                [0.0, 0.0, 1.0, 0.0, 17.0],
            ),
            (
                o,
                &plain,
                openai(json!("Once upon"), "length"),
                0.8,
                [0.0, 0.0, 0.0, 1.0, 9.0],
            ),
            (
                a,
                &a_tools,
                anthropic(&["Once ", "upon"], "max_tokens"),
                0.8,
                [0.0, 0.0, 0.0, 1.0, 9.0],
            ),
            (
                a,
                "",
                anthropic(&["I won't"], "max_tokens"),
                0.4,
                [0.0, 0.0, 1.0, 1.0, 7.0],
            ),
            (
                o,
                &plain,
                openai(json!("x"), "max_tokens"),
                1.0,
                [0.0, 0.0, 0.0, 0.0, 1.0],
            ),
            (
                o,
                &plain,
                openai(json!([{"type": "text", "text": "Hi"}]), "stop"),
                1.0,
                [0.0, 0.0, 0.0, 0.0, 2.0],
            ),
        ];
        for (shape, request, response, v1_score, v1_signals) in cases {
            let out = whole(shape, request, &response);
            assert!(close(out.score, v1_score), "{response}: {out:?}");
            let values: Vec<f64> = out.signals.iter().map(|s| s.1).collect();
            assert_eq!(values[..5], v1_signals, "{response}");
            assert_eq!(values[5..], [0.0, 0.0, 0.0], "{response}");
        }
        // An error, whatever the request.
        let out = evaluate_exchange(&Exchange {
            shape: o,
            status: 503,
            streamed: true,
            request_body: &openai_request(&["f"], json_object()),
            response_body: "",
            answer_text: "",
        })
        .unwrap();
        assert_eq!(out.score, 0.0);
        let values: Vec<f64> = out.signals.iter().map(|s| s.1).collect();
        assert_eq!(values, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_version_is_2_and_the_signals_keep_their_order() {
        assert_eq!(RUBRIC_ID, "heuristic");
        assert_eq!(RUBRIC_VERSION, 2);
        let outcomes = [
            error_outcome(),
            whole(Shape::OpenAi, "", &openai(json!("ok"), "stop")),
            whole(
                Shape::OpenAi,
                &openai_request(&["f"], json_object()),
                &openai_tools(json!("nope"), vec![openai_call("g", json!("{"))]),
            ),
            whole(Shape::Anthropic, "", &anthropic(&["I can't"], "max_tokens")),
        ];
        for o in outcomes {
            let names: Vec<&str> = o.signals.iter().map(|s| s.0).collect();
            assert_eq!(names, SIGNALS);
        }
        // Version 1's five first, in version 1's order.
        assert_eq!(
            SIGNALS[..5],
            ["error", "empty", "refusal", "truncated", "length_chars"]
        );
    }

    #[test]
    fn valid_openai_tool_calls_score_one_and_are_not_empty() {
        let request = openai_request(&["get_weather", "get_time"], json!({}));
        let response = openai_tools(
            Value::Null,
            vec![
                openai_call("get_weather", json!(r#"{"city": "Paris"}"#)),
                openai_call("get_time", json!("{}")),
            ],
        );
        let o = whole(Shape::OpenAi, &request, &response);
        assert_eq!(o.score, 1.0, "{o:?}");
        assert_eq!(o.signal("empty"), Some(0.0));
        assert_eq!(o.signal("tool_calls"), Some(2.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(0.0));
        assert_eq!(o.signal("length_chars"), Some(0.0));
        // With text alongside.
        let response = openai_tools(
            json!("Let me check."),
            vec![openai_call("get_weather", json!(r#"{"city":"Oslo"}"#))],
        );
        assert_eq!(whole(Shape::OpenAi, &request, &response).score, 1.0);
    }

    #[test]
    fn openai_arguments_must_be_json_object_text() {
        let request = openai_request(&["f"], json!({}));
        for arguments in [
            json!(r#"{"a": "#), // cut short
            json!("not json"),
            json!(""),
            json!("[1, 2]"), // JSON, not an object
            json!("\"{}\""), // a string holding an object
            json!({"a": 1}), // an object, not JSON text
            Value::Null,
        ] {
            let response = openai_tools(
                json!("Calling f."),
                vec![openai_call("f", arguments.clone())],
            );
            let o = whole(Shape::OpenAi, &request, &response);
            assert!(close(o.score, 0.3), "{arguments}: {o:?}");
            assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
            assert_eq!(o.signal("tool_calls"), Some(1.0));
        }
        // A call without `function` at all.
        let response = openai_tools(json!("x"), vec![json!({"id": "c", "type": "function"})]);
        assert!(close(whole(Shape::OpenAi, &request, &response).score, 0.3));
    }

    #[test]
    fn tool_names_must_be_offered_when_any_were() {
        let response = openai_tools(json!("x"), vec![openai_call("delete_all", json!("{}"))]);
        let o = whole(
            Shape::OpenAi,
            &openai_request(&["f", "g"], json!({})),
            &response,
        );
        assert!(close(o.score, 0.3), "{o:?}");
        assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
        // No tools offered (or a request that is not JSON): any name goes.
        for request in [
            openai_request(&[], json!({})),
            json!({"tools": []}).to_string(),
            "".into(),
            "{".into(),
        ] {
            let o = whole(Shape::OpenAi, &request, &response);
            assert_eq!(o.score, 1.0, "{request}");
        }
        // But a call must name something.
        let nameless = openai_tools(json!("x"), vec![openai_call("", json!("{}"))]);
        assert!(close(whole(Shape::OpenAi, "", &nameless).score, 0.3));
    }

    #[test]
    fn invalid_tool_calls_cost_one_factor_however_many() {
        let request = openai_request(&["f"], json!({}));
        let response = openai_tools(
            json!("Calling."),
            vec![
                openai_call("f", json!("{")),
                openai_call("f", json!(r#"{"ok": true}"#)),
                openai_call("g", json!("{}")),
                openai_call("f", json!("1")),
            ],
        );
        let o = whole(Shape::OpenAi, &request, &response);
        assert!(close(o.score, 0.3), "{o:?}");
        assert_eq!(o.signal("tool_calls"), Some(4.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(3.0));
        assert_eq!(o.signal("empty"), Some(0.0), "one call is valid");
    }

    #[test]
    fn only_invalid_tool_calls_and_no_text_is_also_empty() {
        let request = openai_request(&["f"], json!({}));
        let response = openai_tools(Value::Null, vec![openai_call("f", json!("{"))]);
        let o = whole(Shape::OpenAi, &request, &response);
        assert!(close(o.score, 0.4 * 0.3), "{o:?}");
        assert_eq!(o.signal("empty"), Some(1.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
    }

    #[test]
    fn tool_calls_of_every_openai_choice_count() {
        let request = openai_request(&["f"], json!({}));
        let response = json!({"choices": [
            {"index": 0, "message": {"content": null,
                "tool_calls": [openai_call("f", json!("{}"))]}, "finish_reason": "tool_calls"},
            {"index": 1, "message": {"content": null,
                "tool_calls": [openai_call("f", json!("{"))]}, "finish_reason": "tool_calls"}]})
        .to_string();
        let o = whole(Shape::OpenAi, &request, &response);
        assert_eq!(o.signal("tool_calls"), Some(2.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
        assert!(close(o.score, 0.3));
    }

    #[test]
    fn anthropic_tool_use_blocks_are_checked() {
        let request = anthropic_request(&["get_weather"]);
        // Valid, with and without text.
        for content in [
            vec![tool_use("get_weather", json!({"city": "Paris"}))],
            vec![
                json!({"type": "text", "text": "Checking."}),
                tool_use("get_weather", json!({})),
            ],
        ] {
            let o = whole(
                Shape::Anthropic,
                &request,
                &anthropic_blocks(content, "tool_use"),
            );
            assert_eq!(o.score, 1.0, "{o:?}");
            assert_eq!(o.signal("tool_calls"), Some(1.0));
            assert_eq!(o.signal("empty"), Some(0.0));
        }
        // Input not an object, or missing; a tool not offered.
        for block in [
            tool_use("get_weather", json!("{\"city\": \"Paris\"}")),
            tool_use("get_weather", json!([1])),
            json!({"type": "tool_use", "id": "t", "name": "get_weather"}),
            tool_use("rm_rf", json!({})),
        ] {
            let body = anthropic_blocks(
                vec![json!({"type": "text", "text": "Checking."}), block.clone()],
                "tool_use",
            );
            let o = whole(Shape::Anthropic, &request, &body);
            assert!(close(o.score, 0.3), "{block}: {o:?}");
            assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
        }
        // Any name when none were offered.
        let body = anthropic_blocks(vec![tool_use("rm_rf", json!({}))], "tool_use");
        assert_eq!(
            whole(Shape::Anthropic, &anthropic_request(&[]), &body).score,
            1.0
        );
    }

    #[test]
    fn request_tools_in_either_form() {
        let openai = openai_request(&["a", "b"], json!({}));
        assert_eq!(request(Shape::OpenAi, &openai).tools, ["a", "b"]);
        assert_eq!(
            request(Shape::Anthropic, &anthropic_request(&["c"])).tools,
            ["c"]
        );
        assert_eq!(
            request(Shape::OpenAi, &anthropic_request(&["c"])).tools,
            ["c"]
        );
        assert_eq!(request(Shape::Anthropic, &openai).tools, ["a", "b"]);
        assert_eq!(request(Shape::OpenAi, "not json"), Request::default());
    }

    #[test]
    fn json_object_format_needs_a_json_object() {
        let request = openai_request(&[], json_object());
        assert_eq!(
            whole(
                Shape::OpenAi,
                &request,
                &openai(json!(r#" {"a": [1]} "#), "stop")
            )
            .score,
            1.0
        );
        for text in [
            "[1, 2]",
            "42",
            "\"text\"",
            "Sure! {\"a\": 1}",
            "```json\n{\"a\": 1}\n```",
            "{\"a\": ",
        ] {
            let o = whole(Shape::OpenAi, &request, &openai(json!(text), "stop"));
            assert!(close(o.score, 0.2), "{text}: {o:?}");
            assert_eq!(o.signal("json_invalid"), Some(1.0));
        }
    }

    #[test]
    fn json_schema_format_needs_json() {
        let request = openai_request(&[], json_schema());
        for text in [r#"{"a": 1}"#, "[1, 2]", "null"] {
            let o = whole(Shape::OpenAi, &request, &openai(json!(text), "stop"));
            assert_eq!(o.score, 1.0, "{text}");
            assert_eq!(o.signal("json_invalid"), Some(0.0));
        }
        let o = whole(
            Shape::OpenAi,
            &request,
            &openai(json!("The answer is 4."), "stop"),
        );
        assert!(close(o.score, 0.2));
        assert_eq!(o.signal("json_invalid"), Some(1.0));
    }

    #[test]
    fn json_is_checked_only_when_asked_and_not_for_anthropic() {
        let prose = openai(json!("Plain prose."), "stop");
        for request in [
            openai_request(&[], json!({"response_format": {"type": "text"}})),
            openai_request(&[], json!({})),
        ] {
            assert_eq!(whole(Shape::OpenAi, &request, &prose).score, 1.0);
        }
        let mut request: Value = serde_json::from_str(&anthropic_request(&[])).unwrap();
        request["response_format"] = json!({"type": "json_object"});
        let o = whole(
            Shape::Anthropic,
            &request.to_string(),
            &anthropic(&["Prose."], "end_turn"),
        );
        assert_eq!(o.score, 1.0);
        assert_eq!(o.signal("json_invalid"), Some(0.0));
    }

    #[test]
    fn json_rules_compound_with_the_others_and_skip_blank_text() {
        let request = openai_request(&["f"], json_object());
        // A refusal that is not JSON.
        let o = whole(
            Shape::OpenAi,
            &request,
            &openai(json!("I can't do that."), "stop"),
        );
        assert!(close(o.score, 0.5 * 0.2), "{o:?}");
        // Cut short mid-object.
        let o = whole(
            Shape::OpenAi,
            &request,
            &openai(json!("{\"a\": [1, "), "length"),
        );
        assert!(close(o.score, 0.8 * 0.2), "{o:?}");
        // Blank: empty, not also invalid JSON.
        let o = whole(Shape::OpenAi, &request, &openai(json!(""), "stop"));
        assert!(close(o.score, 0.4), "{o:?}");
        assert_eq!(o.signal("json_invalid"), Some(0.0));
        // A turn of tool calls has no content to be JSON.
        let calls = openai_tools(Value::Null, vec![openai_call("f", json!("{}"))]);
        assert_eq!(whole(Shape::OpenAi, &request, &calls).score, 1.0);
        // Invalid tool call, non-JSON text, truncated: each factor once.
        let all = openai_message(
            json!({"content": "oops", "tool_calls": [openai_call("g", json!("{"))]}),
            "length",
        );
        let o = whole(Shape::OpenAi, &request, &all);
        assert!(close(o.score, 0.8 * 0.3 * 0.2), "{o:?}");
    }
}
