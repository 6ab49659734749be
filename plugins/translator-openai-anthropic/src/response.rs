//! Whole (non-streamed) response bodies, provider shape → client shape
//! (WIRE.md §2, §5, §8). Error envelopes are rewritten into the client's
//! envelope so the client's SDK can read them.

use crate::error::{
    Failure, anthropic_error, anthropic_to_openai_error, openai_error, openai_to_anthropic_error,
};
use crate::mapping::{Usage, finish_reason, stop_reason};
use serde_json::{Value, json};

/// An Anthropic message (or error) as an OpenAI chat completion (or error).
/// `created` is the Unix time in seconds to stamp on the completion.
pub fn anthropic_to_openai(
    body: &Value,
    client_model: &str,
    created: u64,
) -> Result<Value, Failure> {
    if let Some(error) = anthropic_error(body) {
        return Ok(anthropic_to_openai_error(error));
    }
    let content = body["content"]
        .as_array()
        .ok_or_else(|| Failure::bad_upstream("Anthropic response has no `content` list"))?;
    let id = body["id"]
        .as_str()
        .ok_or_else(|| Failure::bad_upstream("Anthropic response has no `id`"))?;

    let mut text = String::new();
    let mut calls = Vec::new();
    for block in content {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            // Thinking has no OpenAI field; server-tool blocks cannot occur
            // because server tools are refused in the request.
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    let reason = body["stop_reason"].as_str().unwrap_or("end_turn");
    Ok(json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(reason),
        }],
        "usage": Usage::from_anthropic(&body["usage"]).to_openai(),
    }))
}

/// An OpenAI chat completion (or error) as an Anthropic message (or error).
pub fn openai_to_anthropic(body: &Value, client_model: &str) -> Result<Value, Failure> {
    if let Some(error) = openai_error(body) {
        return Ok(openai_to_anthropic_error(error));
    }
    let choice = &body["choices"][0];
    let message = &choice["message"];
    if !message.is_object() {
        return Err(Failure::bad_upstream(
            "OpenAI response has no `choices[0].message`",
        ));
    }
    let id = body["id"]
        .as_str()
        .ok_or_else(|| Failure::bad_upstream("OpenAI response has no `id`"))?;

    let mut content = text_blocks(&message["content"]);
    let refusal = message["refusal"].as_str().filter(|r| !r.is_empty());
    if let Some(refusal) = refusal {
        content.push(json!({"type": "text", "text": refusal}));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        content.push(tool_use(call)?);
    }
    let reason = match refusal {
        Some(_) => "refusal",
        None => stop_reason(choice["finish_reason"].as_str().unwrap_or("stop")),
    };
    Ok(json!({
        "id": format!("msg_{id}"),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": Usage::from_openai(&body["usage"]).to_anthropic(),
    }))
}

/// Message content as text blocks: OpenAI sends a string, some compatible
/// servers a list of text parts. Empty text is left out.
fn text_blocks(content: &Value) -> Vec<Value> {
    let texts: Vec<&str> = match content {
        Value::String(text) => vec![text.as_str()],
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => Vec::new(),
    };
    texts
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|t| json!({"type": "text", "text": t}))
        .collect()
}

/// A tool call as a `tool_use` block. Anthropic clients expect `input` to be
/// an object, so arguments that are not one make the response unreadable.
fn tool_use(call: &Value) -> Result<Value, Failure> {
    let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
    let input = crate::mapping::tool_arguments(arguments).ok_or_else(|| {
        Failure::bad_upstream(format!(
            "OpenAI tool call {} has arguments that are not a JSON object",
            call["id"]
        ))
    })?;
    Ok(json!({
        "type": "tool_use",
        "id": call["id"],
        "name": call["function"]["name"],
        "input": input,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_becomes_text_and_refusal_stop() {
        let body = json!({"id": "c1", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": null, "refusal": "I can't."}}]});
        let out = openai_to_anthropic(&body, "m").unwrap();
        assert_eq!(out["stop_reason"], "refusal");
        assert_eq!(out["content"][0]["text"], "I can't.");
    }

    #[test]
    fn missing_choices_is_a_bad_upstream() {
        let err = openai_to_anthropic(&json!({"id": "c"}), "m").unwrap_err();
        assert_eq!(err.status, 502);
        let err = anthropic_to_openai(&json!({"id": "m"}), "m", 0).unwrap_err();
        assert_eq!(err.status, 502);
    }

    #[test]
    fn thinking_is_dropped() {
        let body = json!({"id": "msg_1", "type": "message", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Hi"}], "stop_reason": "end_turn", "usage": {}});
        let out = anthropic_to_openai(&body, "m", 7).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi");
    }
}
