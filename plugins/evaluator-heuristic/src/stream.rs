//! Reading a streamed answer from its server-sent events.
//!
//! The host hands a stream's events over as text (`data: {...}` lines,
//! Anthropic's with `event:` lines too) and its text already assembled.
//! What is left to read from the events is whether the provider stopped at
//! the token limit and which tools it called. A translator may stand
//! between the provider's shape and the client's, so rather than trust
//! either, each event is read by what it looks like: an OpenAI
//! `chat.completion.chunk` has `choices`, an Anthropic event a `type`.

use serde_json::Value;

use crate::score::{Answer, ToolCall};

/// The answer of a stream: `text` as the host assembled it, truncation and
/// tool calls from `events`. Events that are not JSON (`[DONE]`, a stream
/// cut mid-event) are skipped, so a damaged stream loses what it lost
/// rather than failing the evaluation.
///
/// OpenAI: truncated when choice 0 has `finish_reason` `length`; tool calls
/// are assembled from `delta.tool_calls[]` by choice and `index`
/// (`function.name` and `function.arguments` fragments concatenated).
/// Anthropic: truncated when `message_delta` has `delta.stop_reason`
/// `max_tokens`; a tool call is a `content_block_start` of type `tool_use`
/// (its `name`), its input the `input_json_delta.partial_json` fragments of
/// that block index concatenated (none at all: the start block's `input`).
pub fn extract(text: &str, events: &str) -> Answer {
    let mut truncated = false;
    let mut openai: Vec<OpenAiCall> = Vec::new();
    let mut anthropic: Vec<AnthropicCall> = Vec::new();
    for event in parse(events) {
        if let Some(choices) = event["choices"].as_array() {
            for choice in choices {
                let index = choice["index"].as_u64().unwrap_or(0);
                if index == 0 && choice["finish_reason"] == "length" {
                    truncated = true;
                }
                for delta in choice["delta"]["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    openai_delta(&mut openai, index, delta);
                }
            }
            continue;
        }
        match event["type"].as_str() {
            Some("content_block_start") if event["content_block"]["type"] == "tool_use" => {
                let block = &event["content_block"];
                anthropic.push(AnthropicCall {
                    index: event["index"].as_u64(),
                    name: block["name"].as_str().unwrap_or_default().to_owned(),
                    input: block.get("input").cloned(),
                    partial: String::new(),
                });
            }
            Some("content_block_delta") if event["delta"]["type"] == "input_json_delta" => {
                let index = event["index"].as_u64();
                // The latest block of that index: indices are not reused
                // within a message, but a repeated start must not merge.
                if let Some(call) = anthropic.iter_mut().rev().find(|c| c.index == index)
                    && let Some(part) = event["delta"]["partial_json"].as_str()
                {
                    call.partial.push_str(part);
                }
            }
            Some("message_delta") if event["delta"]["stop_reason"] == "max_tokens" => {
                truncated = true;
            }
            _ => {}
        }
    }
    let tool_calls = openai
        .into_iter()
        .map(|c| ToolCall {
            name: c.name,
            arguments: serde_json::from_str(&c.arguments).ok(),
        })
        .chain(anthropic.into_iter().map(|c| ToolCall {
            name: c.name,
            arguments: if c.partial.trim().is_empty() {
                c.input
            } else {
                serde_json::from_str(&c.partial).ok()
            },
        }))
        .collect();
    Answer {
        text: text.to_owned(),
        truncated,
        tool_calls,
    }
}

/// An OpenAI tool call being assembled.
struct OpenAiCall {
    choice: u64,
    key: Key,
    name: String,
    arguments: String,
}

/// How deltas find their call: by `index`, as OpenAI sends it, or, from
/// providers that leave it out, by `id` (a delta with neither continues the
/// choice's latest call).
#[derive(PartialEq)]
enum Key {
    Index(u64),
    Id(String),
}

fn openai_delta(calls: &mut Vec<OpenAiCall>, choice: u64, delta: &Value) {
    let key = match (delta["index"].as_u64(), delta["id"].as_str()) {
        (Some(i), _) => Some(Key::Index(i)),
        (None, Some(id)) => Some(Key::Id(id.to_owned())),
        (None, None) => None,
    };
    let found = match &key {
        Some(k) => calls
            .iter()
            .rposition(|c| c.choice == choice && c.key == *k),
        None => calls.iter().rposition(|c| c.choice == choice),
    };
    let at = match (found, key) {
        (Some(at), _) => at,
        (None, key) => {
            calls.push(OpenAiCall {
                choice,
                key: key.unwrap_or(Key::Index(0)),
                name: String::new(),
                arguments: String::new(),
            });
            calls.len() - 1
        }
    };
    let call = &mut calls[at];
    if let Some(name) = delta["function"]["name"].as_str() {
        call.name.push_str(name);
    }
    if let Some(arguments) = delta["function"]["arguments"].as_str() {
        call.arguments.push_str(arguments);
    }
}

/// An Anthropic `tool_use` block being assembled.
struct AnthropicCall {
    index: Option<u64>,
    name: String,
    input: Option<Value>,
    partial: String,
}

/// The JSON `data` of each event in an SSE text. An event's `data:` lines
/// are joined with line breaks and it ends at a blank line; when the joined
/// data is not JSON each of its lines is tried alone, for events written
/// without blank lines between them. `event:`, `id:`, `retry:` and comment
/// lines are skipped.
pub fn parse(sse: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut lines: Vec<&str> = Vec::new();
    for line in sse.lines() {
        if line.is_empty() {
            flush(&mut lines, &mut out);
        } else if let Some(data) = line.strip_prefix("data:") {
            lines.push(data.strip_prefix(' ').unwrap_or(data));
        }
    }
    flush(&mut lines, &mut out);
    out
}

fn flush(lines: &mut Vec<&str>, out: &mut Vec<Value>) {
    if lines.is_empty() {
        return;
    }
    if let Ok(v) = serde_json::from_str(&lines.join("\n")) {
        out.push(v);
    } else if lines.len() > 1 {
        out.extend(lines.iter().filter_map(|l| serde_json::from_str(l).ok()));
    }
    lines.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;
    use crate::score::Shape;
    use serde_json::json;

    /// Version 1 scored a stream's text alone; a stream that is not cut
    /// short and calls no tools scores the same (values from version 1).
    #[test]
    fn version_1_stream_cases_keep_their_scores() {
        let request = openai_request(&["f"], json!({"stream": true}));
        for (text, v1_score, v1_signals) in [
            ("Paris.", 1.0, [0.0, 0.0, 0.0, 0.0, 6.0]),
            ("I can't", 0.5, [0.0, 0.0, 1.0, 0.0, 7.0]),
            ("", 0.4, [0.0, 1.0, 0.0, 0.0, 0.0]),
            ("Sure. I won't", 0.5, [0.0, 0.0, 1.0, 0.0, 13.0]),
        ] {
            let events = [
                openai_text_stream(&[text], "stop"),
                anthropic_stream(&[text_block(0, text), vec![message_delta("end_turn")]].concat()),
                String::new(),
            ];
            for (shape, events) in [
                (Shape::OpenAi, &events[0]),
                (Shape::Anthropic, &events[1]),
                (Shape::OpenAi, &events[2]),
            ] {
                let o = streamed(shape, &request, events, text);
                assert!(close(o.score, v1_score), "{text:?}: {o:?}");
                let values: Vec<f64> = o.signals.iter().map(|s| s.1).collect();
                assert_eq!(values[..5], v1_signals, "{text:?}");
                assert_eq!(values[5..], [0.0, 0.0, 0.0], "{text:?}");
            }
        }
    }

    #[test]
    fn openai_stream_truncation() {
        let events = openai_text_stream(&["Once ", "upon"], "length");
        let o = streamed(Shape::OpenAi, "", &events, "Once upon");
        assert!(close(o.score, 0.8), "{o:?}");
        assert_eq!(o.signal("truncated"), Some(1.0));
        let events = openai_text_stream(&["Once ", "upon"], "stop");
        assert_eq!(streamed(Shape::OpenAi, "", &events, "Once upon").score, 1.0);
    }

    #[test]
    fn anthropic_stream_truncation() {
        let events = anthropic_stream(
            &[
                text_block(0, "Once upon"),
                vec![message_delta("max_tokens")],
            ]
            .concat(),
        );
        let o = streamed(Shape::Anthropic, "", &events, "Once upon");
        assert!(close(o.score, 0.8), "{o:?}");
        assert_eq!(o.signal("truncated"), Some(1.0));
        // A refusal cut short compounds, as in a whole response.
        let o = streamed(Shape::Anthropic, "", &events, "I won't");
        assert!(close(o.score, 0.4));
    }

    #[test]
    fn openai_stream_tool_calls_are_assembled_by_index() {
        let request = openai_request(&["get_weather", "get_time"], json!({}));
        // Two calls, their fragments interleaved.
        let events = openai_stream(&[
            (json!({"role": "assistant", "content": null}), None),
            (openai_call_delta(0, Some("get_weather"), ""), None),
            (openai_call_delta(0, None, "{\"ci"), None),
            (openai_call_delta(1, Some("get_time"), "{\"tz\":"), None),
            (openai_call_delta(0, None, "ty\": \"Paris\"}"), None),
            (openai_call_delta(1, None, " \"CET\"}"), None),
            (json!({}), Some("tool_calls")),
        ]);
        let answer = extract("", &events);
        assert_eq!(
            answer.tool_calls,
            [
                ToolCall {
                    name: "get_weather".into(),
                    arguments: Some(json!({"city": "Paris"})),
                },
                ToolCall {
                    name: "get_time".into(),
                    arguments: Some(json!({"tz": "CET"})),
                },
            ]
        );
        let o = streamed(Shape::OpenAi, &request, &events, "");
        assert_eq!(o.score, 1.0, "{o:?}");
        assert_eq!(o.signal("tool_calls"), Some(2.0));
        assert_eq!(o.signal("empty"), Some(0.0));
    }

    #[test]
    fn openai_stream_invalid_tool_calls() {
        let request = openai_request(&["get_weather"], json!({}));
        // Arguments cut off by the token limit: invalid and truncated.
        let events = openai_stream(&[
            (
                openai_call_delta(0, Some("get_weather"), "{\"city\": \"Pa"),
                None,
            ),
            (json!({}), Some("length")),
        ]);
        let o = streamed(Shape::OpenAi, &request, &events, "");
        assert!(close(o.score, 0.4 * 0.8 * 0.3), "{o:?}");
        assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
        assert_eq!(o.signal("truncated"), Some(1.0));
        // A tool that was not offered, beside a valid one, with text.
        let events = openai_stream(&[
            (json!({"content": "Checking."}), None),
            (openai_call_delta(0, Some("get_weather"), "{}"), None),
            (openai_call_delta(1, Some("launch"), "{}"), None),
            (json!({}), Some("tool_calls")),
        ]);
        let o = streamed(Shape::OpenAi, &request, &events, "Checking.");
        assert!(close(o.score, 0.3), "{o:?}");
        assert_eq!(o.signal("tool_calls"), Some(2.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
        // Arguments that are JSON but not an object.
        let events = openai_stream(&[(openai_call_delta(0, Some("get_weather"), "[]"), None)]);
        assert!(close(
            streamed(Shape::OpenAi, &request, &events, "ok").score,
            0.3
        ));
    }

    #[test]
    fn openai_stream_calls_without_index_are_keyed_by_id() {
        let chunk = |call: Value| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
            )
        };
        let events = [
            chunk(json!({"id": "a", "function": {"name": "f", "arguments": "{\"x\":1}"}})),
            chunk(json!({"id": "b", "function": {"name": "g", "arguments": "{"}})),
            chunk(json!({"function": {"arguments": "}"}})),
        ]
        .concat();
        let calls = extract("", &events).tool_calls;
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, Some(json!({"x": 1})));
        assert_eq!(calls[1].name, "g");
        assert_eq!(calls[1].arguments, Some(json!({})));
    }

    #[test]
    fn anthropic_stream_tool_use_is_assembled_by_block_index() {
        let request = anthropic_request(&["get_weather", "ping"]);
        let events = anthropic_stream(
            &[
                text_block(0, "Checking."),
                tool_use_block(1, "get_weather", &["", "{\"city\"", ": \"Paris\"}"]),
                // No input at all: the start block's `{}`.
                tool_use_block(2, "ping", &[]),
                vec![message_delta("tool_use")],
            ]
            .concat(),
        );
        let answer = extract("Checking.", &events);
        assert_eq!(
            answer.tool_calls,
            [
                ToolCall {
                    name: "get_weather".into(),
                    arguments: Some(json!({"city": "Paris"})),
                },
                ToolCall {
                    name: "ping".into(),
                    arguments: Some(json!({})),
                },
            ]
        );
        let o = streamed(Shape::Anthropic, &request, &events, "Checking.");
        assert_eq!(o.score, 1.0, "{o:?}");
        assert_eq!(o.signal("tool_calls"), Some(2.0));
        // Tool calls only, no text: not empty.
        let events = anthropic_stream(&tool_use_block(0, "ping", &["{}"]));
        let o = streamed(Shape::Anthropic, &request, &events, "");
        assert_eq!(o.score, 1.0, "{o:?}");
        assert_eq!(o.signal("empty"), Some(0.0));
    }

    #[test]
    fn anthropic_stream_invalid_tool_use() {
        let request = anthropic_request(&["get_weather"]);
        // Input cut short by the token limit.
        let events = anthropic_stream(
            &[
                tool_use_block(0, "get_weather", &["{\"city\": "]),
                vec![message_delta("max_tokens")],
            ]
            .concat(),
        );
        let o = streamed(Shape::Anthropic, &request, &events, "");
        assert!(close(o.score, 0.4 * 0.8 * 0.3), "{o:?}");
        assert_eq!(o.signal("tool_calls_invalid"), Some(1.0));
        // Two invalid (a tool not offered, input not an object): one factor.
        let events = anthropic_stream(
            &[
                text_block(0, "Sure."),
                tool_use_block(1, "format_disk", &["{}"]),
                tool_use_block(2, "get_weather", &["\"Paris\""]),
                vec![message_delta("tool_use")],
            ]
            .concat(),
        );
        let o = streamed(Shape::Anthropic, &request, &events, "Sure.");
        assert!(close(o.score, 0.3), "{o:?}");
        assert_eq!(o.signal("tool_calls"), Some(2.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(2.0));
    }

    #[test]
    fn streamed_json_validity_reads_the_assembled_text() {
        let request = openai_request(&[], json_object());
        let events = openai_text_stream(&["{\"a\":", " 1}"], "stop");
        assert_eq!(
            streamed(Shape::OpenAi, &request, &events, "{\"a\": 1}").score,
            1.0
        );
        let events = openai_text_stream(&["Here: ", "{}"], "stop");
        let o = streamed(Shape::OpenAi, &request, &events, "Here: {}");
        assert!(close(o.score, 0.2), "{o:?}");
        assert_eq!(o.signal("json_invalid"), Some(1.0));
        let request = openai_request(&[], json_schema());
        let events = openai_text_stream(&["[1,", "2]"], "stop");
        assert_eq!(
            streamed(Shape::OpenAi, &request, &events, "[1,2]").score,
            1.0
        );
        // Cut short mid-object.
        let events = openai_text_stream(&["{\"a\":"], "length");
        let o = streamed(Shape::OpenAi, &request, &events, "{\"a\":");
        assert!(close(o.score, 0.8 * 0.2), "{o:?}");
        // Anthropic: no response_format to honour.
        let events = anthropic_stream(&text_block(0, "prose"));
        let o = streamed(Shape::Anthropic, &anthropic_request(&[]), &events, "prose");
        assert_eq!(o.score, 1.0);
    }

    #[test]
    fn provider_events_in_the_other_shape_are_read() {
        // An OpenAI client served by Anthropic through a translator: the
        // events are Anthropic's.
        let request = openai_request(&["get_weather"], json!({}));
        let events = anthropic_stream(
            &[
                tool_use_block(0, "get_weather", &["{\"city\":", "\"Rome\"}"]),
                vec![message_delta("max_tokens")],
            ]
            .concat(),
        );
        let o = streamed(Shape::OpenAi, &request, &events, "");
        assert_eq!(o.signal("tool_calls"), Some(1.0));
        assert_eq!(o.signal("tool_calls_invalid"), Some(0.0));
        assert!(close(o.score, 0.8), "{o:?}");
        // And the reverse.
        let events = openai_stream(&[
            (openai_call_delta(0, Some("nope"), "{}"), None),
            (json!({}), Some("length")),
        ]);
        let o = streamed(
            Shape::Anthropic,
            &anthropic_request(&["get_weather"]),
            &events,
            "x",
        );
        assert!(close(o.score, 0.8 * 0.3), "{o:?}");
    }

    #[test]
    fn sse_text_is_read_leniently() {
        // CRLF, comments, `id:`, no space after `data:`, multi-line data,
        // events without blank lines between them, a cut-off last event.
        let sse = concat!(
            ": keep-alive\r\n\r\n",
            "id: 1\r\nevent: message_delta\r\ndata:{\"type\":\"message_delta\",\r\n",
            "data: \"delta\":{\"stop_reason\":\"max_tokens\"}}\r\n\r\n",
            "data: {\"n\":1}\ndata: {\"n\":2}\n\n",
            "data: [DONE]\n\n",
            "data: {\"n\":",
        );
        assert_eq!(
            parse(sse),
            [
                json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}}),
                json!({"n": 1}),
                json!({"n": 2}),
            ]
        );
        assert!(extract("", sse).truncated);
        for junk in ["", "not sse at all", "data: {\"choices\": 7}\n\n", "<html>"] {
            assert_eq!(
                extract("t", junk),
                Answer {
                    text: "t".into(),
                    ..Answer::default()
                }
            );
        }
    }

    #[test]
    fn an_error_status_on_a_stream_scores_zero() {
        let o = crate::score::evaluate_exchange(&crate::score::Exchange {
            shape: Shape::Anthropic,
            status: 529,
            streamed: true,
            request_body: &anthropic_request(&[]),
            response_body: "event: error\ndata: {\"type\":\"error\"}\n\n",
            answer_text: "partial",
        })
        .unwrap();
        assert_eq!(o.score, 0.0);
        assert_eq!(o.signal("error"), Some(1.0));
        assert_eq!(o.signal("length_chars"), Some(0.0));
    }
}
