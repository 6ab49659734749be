//! Bodies and streams for the unit tests.

use serde_json::{Value, json};

use crate::score::{self, Exchange, Outcome, Shape};

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// An OpenAI `chat.completion` with one choice.
pub fn openai(content: Value, finish: &str) -> String {
    openai_message(json!({"role": "assistant", "content": content}), finish)
}

pub fn openai_message(message: Value, finish: &str) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
    .to_string()
}

/// An OpenAI tool call; `arguments` is sent as given (normally JSON text).
pub fn openai_call(name: &str, arguments: Value) -> Value {
    json!({"id": format!("call_{name}"), "type": "function",
        "function": {"name": name, "arguments": arguments}})
}

/// An OpenAI answer of `content` and `calls`.
pub fn openai_tools(content: Value, calls: Vec<Value>) -> String {
    openai_message(
        json!({"role": "assistant", "content": content, "tool_calls": calls}),
        "tool_calls",
    )
}

/// An Anthropic message of text blocks.
pub fn anthropic(texts: &[&str], stop: &str) -> String {
    let content: Vec<Value> = texts
        .iter()
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    anthropic_blocks(content, stop)
}

pub fn anthropic_blocks(content: Vec<Value>, stop: &str) -> String {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": content, "stop_reason": stop})
    .to_string()
}

pub fn tool_use(name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": format!("toolu_{name}"), "name": name, "input": input})
}

/// An OpenAI request offering function tools `tools`, with `extra` fields
/// merged in (e.g. `response_format`).
pub fn openai_request(tools: &[&str], extra: Value) -> String {
    let mut v = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    if !tools.is_empty() {
        v["tools"] = tools
            .iter()
            .map(|n| json!({"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}))
            .collect();
    }
    if let Value::Object(extra) = extra {
        v.as_object_mut().unwrap().extend(extra);
    }
    v.to_string()
}

pub fn json_object() -> Value {
    json!({"response_format": {"type": "json_object"}})
}

pub fn json_schema() -> Value {
    json!({"response_format": {"type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}}}})
}

/// An Anthropic request offering tools `tools`.
pub fn anthropic_request(tools: &[&str]) -> String {
    let mut v = json!({"model": "claude", "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}]});
    if !tools.is_empty() {
        v["tools"] = tools
            .iter()
            .map(|n| json!({"name": n, "input_schema": {"type": "object"}}))
            .collect();
    }
    v.to_string()
}

/// OpenAI `chat.completion.chunk` events as SSE text, ending in `[DONE]`.
pub fn openai_stream(deltas: &[(Value, Option<&str>)]) -> String {
    let mut out = String::new();
    for (delta, finish) in deltas {
        let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

/// The deltas of a streamed OpenAI answer: the role, `text` in pieces,
/// then `finish`.
pub fn openai_text_stream(text: &[&str], finish: &str) -> String {
    let mut deltas = vec![(json!({"role": "assistant", "content": ""}), None)];
    deltas.extend(text.iter().map(|t| (json!({"content": t}), None)));
    deltas.push((json!({}), Some(finish)));
    openai_stream(&deltas)
}

/// A tool-call delta: `id`/`name` when given, and an arguments fragment.
pub fn openai_call_delta(index: u64, name: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(name) = name {
        call["id"] = json!(format!("call_{index}"));
        call["type"] = json!("function");
        call["function"]["name"] = json!(name);
    }
    json!({"tool_calls": [call]})
}

/// Anthropic events as SSE text, each with its `event:` line.
pub fn anthropic_stream(events: &[Value]) -> String {
    let mut all = vec![json!({"type": "message_start", "message": {"id": "msg_1",
        "type": "message", "role": "assistant", "content": [], "stop_reason": null}})];
    all.extend(events.iter().cloned());
    all.push(json!({"type": "message_stop"}));
    all.iter()
        .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap()))
        .collect()
}

pub fn text_block(index: u64, text: &str) -> Vec<Value> {
    vec![
        json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text}}),
        json!({"type": "content_block_stop", "index": index}),
    ]
}

/// A streamed `tool_use` block whose input arrives in `parts`.
pub fn tool_use_block(index: u64, name: &str, parts: &[&str]) -> Vec<Value> {
    let mut out = vec![json!({"type": "content_block_start", "index": index,
        "content_block": {"type": "tool_use", "id": format!("toolu_{index}"),
            "name": name, "input": {}}})];
    out.extend(parts.iter().map(|p| {
        json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": p}})
    }));
    out.push(json!({"type": "content_block_stop", "index": index}));
    out
}

pub fn message_delta(stop: &str) -> Value {
    json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}})
}

/// Score a whole exchange.
pub fn whole(shape: Shape, request: &str, response: &str) -> Outcome {
    score::evaluate_exchange(&Exchange {
        shape,
        status: 200,
        streamed: false,
        request_body: request,
        response_body: response,
        answer_text: "",
    })
    .unwrap()
}

/// Score a streamed exchange.
pub fn streamed(shape: Shape, request: &str, events: &str, text: &str) -> Outcome {
    score::evaluate_exchange(&Exchange {
        shape,
        status: 200,
        streamed: true,
        request_body: request,
        response_body: events,
        answer_text: text,
    })
    .unwrap()
}
