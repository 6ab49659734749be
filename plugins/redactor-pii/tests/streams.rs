//! Streamed answers: placeholders split across events at every char
//! boundary, in both API shapes, in text and in tool-call arguments, with
//! every way held text is released (finish_reason, [DONE], block stop,
//! finish()).

mod common;

use common::{answer, arguments, splits, vault};
use redactor_pii::stream::{Event, Restorer, Shape};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The answer texts to stream: a whole one, and one cut short in the
/// middle of a placeholder (the model ran out of tokens), which must come
/// out as it went in.
fn texts() -> Vec<(String, String)> {
    let cut = "Bye [EMAIL_1] [PHONE_".to_owned();
    let cut_want = format!("Bye {} [PHONE_", common::EMAIL);
    vec![answer(), (cut, cut_want)]
}

fn run(shape: Shape, events: Vec<Event>, finish: bool) -> Vec<Event> {
    let mut r = Restorer::new(shape, vault());
    let mut out = Vec::new();
    for e in events {
        out.extend(r.push(e));
    }
    let tail = r.finish();
    if !finish {
        assert!(tail.is_empty(), "everything was released before the end");
    }
    out.extend(tail);
    out
}

// ---- OpenAI ---------------------------------------------------------------

fn oa(delta: Value, finish: Value) -> Event {
    Event {
        event: None,
        data: json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string(),
    }
}

fn done() -> Event {
    Event {
        event: None,
        data: "[DONE]".into(),
    }
}

/// What an OpenAI client assembles: text per choice, arguments per tool
/// call. Checks every event is JSON, nothing follows `[DONE]`, and no text
/// of a choice follows its `finish_reason`.
#[derive(Default, Debug)]
struct OpenAiClient {
    content: BTreeMap<u64, String>,
    args: BTreeMap<(u64, u64), String>,
    finished: BTreeSet<u64>,
    done: bool,
}

fn read_openai(events: &[Event]) -> OpenAiClient {
    let mut c = OpenAiClient::default();
    for e in events {
        assert!(!c.done, "event after [DONE]: {e:?}");
        assert_eq!(e.event, None);
        if e.data == "[DONE]" {
            c.done = true;
            continue;
        }
        let v: Value = serde_json::from_str(&e.data).expect("every chunk is JSON");
        for choice in v["choices"].as_array().expect("choices") {
            let i = choice["index"].as_u64().unwrap();
            let delta = &choice["delta"];
            let text = delta["content"].as_str().unwrap_or("");
            let calls = delta["tool_calls"].as_array().cloned().unwrap_or_default();
            let has_text = !text.is_empty()
                || calls
                    .iter()
                    .any(|t| !t["function"]["arguments"].as_str().unwrap_or("").is_empty());
            assert!(
                !(c.finished.contains(&i) && has_text),
                "text after finish_reason: {e:?}"
            );
            c.content.entry(i).or_default().push_str(text);
            for t in calls {
                let k = (i, t["index"].as_u64().unwrap());
                let a = t["function"]["arguments"].as_str().unwrap_or("");
                c.args.entry(k).or_default().push_str(a);
            }
            if !choice["finish_reason"].is_null() {
                c.finished.insert(i);
            }
        }
    }
    c
}

/// A content stream: role chunk, one chunk per piece (the last piece in the
/// finish chunk when `last_in_finish`), usage-only chunk, [DONE].
fn openai_content(pieces: &[&str], last_in_finish: bool, end: bool) -> Vec<Event> {
    let mut out = vec![oa(json!({"role": "assistant", "content": ""}), Value::Null)];
    let (body, last) = match (last_in_finish, pieces.split_last()) {
        (true, Some((last, body))) => (body, Some(*last)),
        _ => (pieces, None),
    };
    out.extend(body.iter().map(|p| oa(json!({"content": p}), Value::Null)));
    if end {
        let delta = last.map_or(json!({}), |l| json!({"content": l}));
        out.push(oa(delta, json!("stop")));
        out.push(Event {
            event: None,
            data: json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 1}})
            .to_string(),
        });
        out.push(done());
    }
    out
}

#[test]
fn openai_content_split_anywhere() {
    for (text, want) in texts() {
        for pieces in splits(&text) {
            // The last piece in the finish chunk matters for the last
            // cut only; two pieces cover it.
            let variants: &[bool] = if pieces.len() == 2 {
                &[false, true]
            } else {
                &[false]
            };
            for &last_in_finish in variants {
                let out = run(
                    Shape::OpenAi,
                    openai_content(&pieces, last_in_finish, true),
                    false,
                );
                let c = read_openai(&out);
                assert_eq!(
                    c.content[&0], want,
                    "{pieces:?} last_in_finish={last_in_finish}"
                );
                assert!(c.done && c.finished.contains(&0));
            }
        }
    }
}

#[test]
fn openai_stream_cut_short_is_released_by_finish() {
    for (text, want) in texts() {
        for pieces in splits(&text) {
            let out = run(Shape::OpenAi, openai_content(&pieces, false, false), true);
            assert_eq!(read_openai(&out).content[&0], want, "{pieces:?}");
        }
    }
}

fn tool_chunk(tool: u64, head: bool, args: &str) -> Value {
    let mut call = json!({"index": tool, "function": {"arguments": args}});
    if head {
        call["id"] = json!(format!("call_{tool}"));
        call["type"] = json!("function");
        call["function"]["name"] = json!("save");
    }
    json!({"tool_calls": [call]})
}

#[test]
fn openai_tool_arguments_split_anywhere_stay_json() {
    let (args, want) = arguments();
    let (text, text_want) = answer();
    for pieces in splits(&args) {
        // Some text first, then two tool calls: the first split, the
        // second whole.
        let mut events = vec![
            oa(json!({"role": "assistant", "content": text}), Value::Null),
            oa(tool_chunk(0, true, ""), Value::Null),
        ];
        events.extend(
            pieces
                .iter()
                .map(|p| oa(tool_chunk(0, false, p), Value::Null)),
        );
        events.push(oa(tool_chunk(1, true, &args), Value::Null));
        events.push(oa(json!({}), json!("tool_calls")));
        events.push(done());
        let c = read_openai(&run(Shape::OpenAi, events, false));
        assert_eq!(c.content[&0], text_want);
        for tool in [0, 1] {
            let got: Value = serde_json::from_str(&c.args[&(0, tool)])
                .unwrap_or_else(|e| panic!("{pieces:?}: {e}: {}", c.args[&(0, tool)]));
            assert_eq!(got, want, "{pieces:?}");
        }
    }
}

#[test]
fn openai_held_arguments_are_released_at_finish_reason() {
    // Arguments cut short right after a placeholder prefix.
    let v = vault();
    let mut r = Restorer::new(Shape::OpenAi, v);
    let mut out = Vec::new();
    out.extend(r.push(oa(
        tool_chunk(0, true, r#"{"to":"[EMAIL_1]","x":"[EMAIL"#),
        Value::Null,
    )));
    out.extend(r.push(oa(json!({}), json!("length"))));
    out.extend(r.push(done()));
    let c = read_openai(&out);
    assert_eq!(
        c.args[&(0, 0)],
        format!(r#"{{"to":"{}","x":"[EMAIL"#, common::EMAIL)
    );
    // The synthetic chunk copies the last chunk's identity.
    let synthetic: Value = serde_json::from_str(&out[1].data).unwrap();
    assert_eq!(synthetic["id"], "chatcmpl-1");
    assert_eq!(synthetic["object"], "chat.completion.chunk");
    assert_eq!(synthetic["model"], "gpt-4o");
    assert_eq!(synthetic["created"], 1);
}

#[test]
fn openai_choices_are_separate_streams() {
    let v = vault();
    let mut r = Restorer::new(Shape::OpenAi, v);
    let chunk = |i: u64, content: &str, finish: Value| Event {
        event: None,
        data: json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": i, "delta": {"content": content}, "finish_reason": finish}]})
        .to_string(),
    };
    let mut out = Vec::new();
    out.extend(r.push(chunk(0, "a [EMAI", Value::Null)));
    out.extend(r.push(chunk(1, "b [IBAN", Value::Null)));
    out.extend(r.push(chunk(0, "L_1]", json!("stop"))));
    out.extend(r.push(chunk(1, "_1] c [", Value::Null)));
    out.extend(r.push(done()));
    let c = read_openai(&out);
    assert_eq!(c.content[&0], format!("a {}", common::EMAIL));
    assert_eq!(c.content[&1], format!("b {} c [", common::IBAN));
}

// ---- Anthropic ------------------------------------------------------------

fn an(name: &str, data: Value) -> Event {
    Event {
        event: Some(name.into()),
        data: data.to_string(),
    }
}

fn block_delta(index: u64, kind: &str, field: &str, text: &str) -> Event {
    an(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index,
               "delta": {"type": kind, field: text}}),
    )
}

/// What an Anthropic client assembles: text and JSON per block. Checks
/// every event is JSON and named after its type, no delta follows its
/// block's stop, and nothing follows `message_stop`.
#[derive(Default, Debug)]
struct AnthropicClient {
    text: BTreeMap<u64, String>,
    json: BTreeMap<u64, String>,
    stopped: BTreeSet<u64>,
    message_stopped: bool,
}

fn read_anthropic(events: &[Event]) -> AnthropicClient {
    let mut c = AnthropicClient::default();
    for e in events {
        assert!(!c.message_stopped, "event after message_stop: {e:?}");
        let v: Value = serde_json::from_str(&e.data).expect("every event is JSON");
        assert_eq!(e.event.as_deref(), v["type"].as_str());
        let index = v["index"].as_u64();
        match v["type"].as_str().unwrap() {
            "content_block_delta" => {
                let i = index.unwrap();
                assert!(!c.stopped.contains(&i), "delta after stop: {e:?}");
                let d = &v["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => c
                        .text
                        .entry(i)
                        .or_default()
                        .push_str(d["text"].as_str().unwrap()),
                    "input_json_delta" => c
                        .json
                        .entry(i)
                        .or_default()
                        .push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("{other}"),
                }
            }
            "content_block_stop" => {
                c.stopped.insert(index.unwrap());
            }
            "message_stop" => c.message_stopped = true,
            _ => {}
        }
    }
    c
}

fn anthropic_stream(text: &[&str], json: &[&str], end: bool) -> Vec<Event> {
    let mut out = vec![
        an(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1",
            "type": "message", "role": "assistant", "content": [], "model": "claude"}}),
        ),
        an(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        an("ping", json!({"type": "ping"})),
    ];
    out.extend(text.iter().map(|t| block_delta(0, "text_delta", "text", t)));
    if !end {
        return out;
    }
    out.push(an(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(an(
        "content_block_start",
        json!({"type": "content_block_start", "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "save", "input": {}}}),
    ));
    out.extend(
        json.iter()
            .map(|j| block_delta(1, "input_json_delta", "partial_json", j)),
    );
    out.push(an(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 1}),
    ));
    out.push(an(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
    ));
    out.push(an("message_stop", json!({"type": "message_stop"})));
    out
}

#[test]
fn anthropic_text_split_anywhere() {
    let (args, args_want) = arguments();
    for (text, want) in texts() {
        for pieces in splits(&text) {
            let out = run(
                Shape::Anthropic,
                anthropic_stream(&pieces, &[&args], true),
                false,
            );
            let c = read_anthropic(&out);
            assert_eq!(c.text[&0], want, "{pieces:?}");
            assert_eq!(
                serde_json::from_str::<Value>(&c.json[&1]).unwrap(),
                args_want
            );
            assert!(c.message_stopped);
        }
    }
}

#[test]
fn anthropic_input_json_split_anywhere_stays_json() {
    let (args, want) = arguments();
    let (text, text_want) = answer();
    let cut = format!("{} [CREDIT_CARD", &args[..args.len() - 2]);
    for pieces in splits(&args) {
        let c = read_anthropic(&run(
            Shape::Anthropic,
            anthropic_stream(&[&text], &pieces, true),
            false,
        ));
        assert_eq!(c.text[&0], text_want);
        let got: Value = serde_json::from_str(&c.json[&1])
            .unwrap_or_else(|e| panic!("{pieces:?}: {e}: {}", c.json[&1]));
        assert_eq!(got, want, "{pieces:?}");
    }
    // Partial JSON cut inside a placeholder comes out as it went in; the
    // placeholders before it are restored JSON-escaped.
    let quoted_key = json!(common::KEY).to_string();
    let cut_want = cut
        .replace("[EMAIL_1]", common::EMAIL)
        .replace("[PRIVATE_KEY_1]", quoted_key.trim_matches('"'))
        .replace("[CREDIT_CARD_1]", common::CARD);
    assert!(cut_want.contains(r"-----\nMIIE") && cut_want.ends_with(" [CREDIT_CARD"));
    for pieces in splits(&cut) {
        let events = anthropic_stream(&[&text], &pieces, true);
        let c = read_anthropic(&run(Shape::Anthropic, events, false));
        assert_eq!(c.json[&1], cut_want, "{pieces:?}");
    }
}

#[test]
fn anthropic_stream_cut_short_is_released_by_finish() {
    for (text, want) in texts() {
        for pieces in splits(&text) {
            let out = run(
                Shape::Anthropic,
                anthropic_stream(&pieces, &[], false),
                true,
            );
            assert_eq!(read_anthropic(&out).text[&0], want, "{pieces:?}");
        }
    }
}

#[test]
fn anthropic_message_stop_releases_an_unclosed_block() {
    let mut r = Restorer::new(Shape::Anthropic, vault());
    let mut out = Vec::new();
    out.extend(r.push(block_delta(0, "text_delta", "text", "x [EMAIL_")));
    out.extend(r.push(an("message_stop", json!({"type": "message_stop"}))));
    assert!(r.finish().is_empty());
    let c = read_anthropic(&out);
    assert_eq!(c.text[&0], "x [EMAIL_");
    assert_eq!(out.last().unwrap().event.as_deref(), Some("message_stop"));
}

#[test]
fn unknown_events_pass_through_byte_for_byte() {
    let mut r = Restorer::new(Shape::Anthropic, vault());
    r.push(block_delta(0, "text_delta", "text", "[EMAIL_"));
    for e in [
        an("ping", json!({"type": "ping"})),
        an("mystery", json!({"type": "mystery", "text": "[EMAIL_1]"})),
        Event {
            event: Some("content_block_delta".into()),
            data: "{not json".into(),
        },
        block_delta(0, "signature_delta", "signature", "c2ln"),
        block_delta(2, "thinking_delta", "thinking", "[EMAIL_1]"),
    ] {
        assert_eq!(r.push(e.clone()), [e]);
    }
    let out = r.finish();
    assert_eq!(read_anthropic(&out).text[&0], "[EMAIL_");
}

#[test]
fn events_without_placeholders_are_not_rewritten() {
    // Bytes, key order and number formats of untouched events survive.
    let odd = r#"{"id":"x","object":"chat.completion.chunk","created":1.0e3,"choices":[{"index":0,"delta":{"content":"plain"},"finish_reason":null}]}"#;
    let mut r = Restorer::new(Shape::OpenAi, vault());
    let e = Event {
        event: None,
        data: odd.into(),
    };
    assert_eq!(r.push(e.clone()), [e]);
}
