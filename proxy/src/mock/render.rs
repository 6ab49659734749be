//! Dressing a [`Plan`] as an OpenAI or Anthropic response or stream.

use serde_json::{Value, json};

use super::plan::{Finish, Plan};
use crate::api::Shape;

/// A fixed timestamp keeps the mock's output reproducible.
const CREATED: u64 = 1_767_225_600;

fn openai_finish(f: &Finish) -> &'static str {
    match f {
        Finish::Stop | Finish::StopSequence(_) => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

fn anthropic_stop(f: &Finish) -> (&'static str, Value) {
    match f {
        Finish::Stop => ("end_turn", Value::Null),
        Finish::StopSequence(s) => ("stop_sequence", json!(s)),
        Finish::Length => ("max_tokens", Value::Null),
        Finish::ToolUse => ("tool_use", Value::Null),
    }
}

fn openai_usage(p: &Plan) -> Value {
    json!({
        "prompt_tokens": p.input_tokens + p.cached_tokens,
        "completion_tokens": p.output_tokens,
        "total_tokens": p.input_tokens + p.cached_tokens + p.output_tokens,
        "prompt_tokens_details": {"cached_tokens": p.cached_tokens},
    })
}

fn anthropic_usage(p: &Plan) -> Value {
    json!({
        "input_tokens": p.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": p.cached_tokens,
        "output_tokens": p.output_tokens,
    })
}

pub fn whole(shape: Shape, p: &Plan, id: &str) -> Value {
    match shape {
        Shape::OpenAi => {
            let mut message = json!({"role": "assistant", "content": null, "refusal": null});
            if let Some(t) = &p.tool {
                message["tool_calls"] = json!([{
                    "id": t.id, "type": "function",
                    "function": {"name": t.name, "arguments": t.input.to_string()},
                }]);
            } else {
                message["content"] = json!(p.text);
            }
            json!({
                "id": format!("chatcmpl-{id}"), "object": "chat.completion", "created": CREATED,
                "model": p.model,
                "choices": [{"index": 0, "message": message, "logprobs": null,
                             "finish_reason": openai_finish(&p.finish)}],
                "usage": openai_usage(p),
            })
        }
        Shape::Anthropic => {
            let mut content = Vec::new();
            if !p.text.is_empty() {
                content.push(json!({"type": "text", "text": p.text}));
            }
            if let Some(t) = &p.tool {
                content.push(json!({"type": "tool_use", "id": t.id.replace("call_", "toolu_"), "name": t.name, "input": t.input}));
            }
            let (stop_reason, stop_sequence) = anthropic_stop(&p.finish);
            json!({
                "id": format!("msg_{id}"), "type": "message", "role": "assistant",
                "model": p.model, "content": content,
                "stop_reason": stop_reason, "stop_sequence": stop_sequence,
                "usage": anthropic_usage(p),
            })
        }
    }
}

/// The text split into stream pieces: one word (with its space) each.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        cur.push(ch);
        if ch == ' ' {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Tool arguments streamed in two pieces, as providers split them.
fn halves(args: &str) -> [String; 2] {
    let mid = args
        .char_indices()
        .nth(args.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    [args[..mid].to_owned(), args[mid..].to_owned()]
}

/// The stream as wire-ready SSE frames.
pub fn stream(shape: Shape, p: &Plan, id: &str, include_usage: bool) -> Vec<String> {
    match shape {
        Shape::OpenAi => openai_stream(p, id, include_usage),
        Shape::Anthropic => anthropic_stream(p, id),
    }
}

fn openai_stream(p: &Plan, id: &str, include_usage: bool) -> Vec<String> {
    let usage_field = if include_usage {
        Some(Value::Null)
    } else {
        None
    };
    let chunk = |delta: Value, finish: Value| {
        let mut c = json!({
            "id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk", "created": CREATED,
            "model": p.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if let Some(u) = &usage_field {
            c["usage"] = u.clone();
        }
        format!("data: {c}\n\n")
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in pieces(&p.text) {
        out.push(chunk(json!({"content": piece}), Value::Null));
    }
    if let Some(t) = &p.tool {
        out.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": t.id, "type": "function",
                                    "function": {"name": t.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for part in halves(&t.input.to_string()) {
            out.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                Value::Null,
            ));
        }
    }
    out.push(chunk(json!({}), json!(openai_finish(&p.finish))));
    if include_usage {
        let c = json!({
            "id": format!("chatcmpl-{id}"), "object": "chat.completion.chunk", "created": CREATED,
            "model": p.model, "choices": [], "usage": openai_usage(p),
        });
        out.push(format!("data: {c}\n\n"));
    }
    out.push("data: [DONE]\n\n".to_owned());
    out
}

fn anthropic_stream(p: &Plan, id: &str) -> Vec<String> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut out = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": format!("msg_{id}"), "type": "message", "role": "assistant", "model": p.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": p.input_tokens, "cache_creation_input_tokens": 0,
                          "cache_read_input_tokens": p.cached_tokens, "output_tokens": 1}}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    let mut index = 0;
    if !p.text.is_empty() {
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        ));
        for piece in pieces(&p.text) {
            out.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        out.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Some(t) = &p.tool {
        out.push(ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block":
                   {"type": "tool_use", "id": t.id.replace("call_", "toolu_"), "name": t.name, "input": {}}}),
        ));
        for part in halves(&t.input.to_string()) {
            out.push(ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        out.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    let (stop_reason, stop_sequence) = anthropic_stop(&p.finish);
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
               "usage": {"output_tokens": p.output_tokens, "input_tokens": p.input_tokens,
                         "cache_read_input_tokens": p.cached_tokens, "cache_creation_input_tokens": 0}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

/// A provider-shaped error body.
pub fn error(shape: Shape, status: u16, message: &str) -> Value {
    match shape {
        Shape::OpenAi => {
            let (ty, code) = match status {
                400 => ("invalid_request_error", Value::Null),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                _ => ("server_error", Value::Null),
            };
            json!({"error": {"message": message, "type": ty, "param": null, "code": code}})
        }
        Shape::Anthropic => {
            let ty = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": ty, "message": message}, "request_id": "req_mock"})
        }
    }
}
