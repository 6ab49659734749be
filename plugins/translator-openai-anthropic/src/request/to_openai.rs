//! Anthropic Messages request → OpenAI Chat Completions request.
//!
//! Everything Anthropic-only is dropped: `thinking` (OpenAI has no field for
//! it), `cache_control` (OpenAI caches prefixes itself and rejects unknown
//! fields) and `top_k`.

use super::{Upstream, as_object, messages, non_empty_str};
use crate::error::Failure;
use serde_json::{Map, Value, json};

/// OpenAI accepts at most this many stop strings.
const MAX_STOP: usize = 4;

/// Translates an Anthropic request body into an OpenAI one for `upstream`.
pub fn anthropic_to_openai(body: &Value, upstream: &Upstream) -> Result<Value, Failure> {
    as_object(body)?;
    let mut out = Map::new();
    out.insert("model".into(), upstream.model.into());
    out.insert("messages".into(), convert_messages(body)?.into());
    if let Some(max) = body["max_tokens"].as_u64() {
        out.insert("max_completion_tokens".into(), max.into());
    }
    for field in ["temperature", "top_p"] {
        if body[field].is_number() {
            out.insert(field.into(), body[field].clone());
        }
    }
    if let Some(stop) = stop(&body["stop_sequences"])? {
        out.insert("stop".into(), stop);
    }
    convert_tools(body, &mut out)?;
    if let Some(user) = non_empty_str(&body["metadata"]["user_id"]) {
        out.insert("user".into(), user.into());
    }
    if let Some(format) = response_format(&body["output_config"]["format"]) {
        out.insert("response_format".into(), format);
    }
    if upstream.stream {
        out.insert("stream".into(), true.into());
        // Usage arrives only in the final chunk, and only when asked for;
        // the Anthropic client needs it in `message_delta`.
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(out))
}

fn stop(sequences: &Value) -> Result<Option<Value>, Failure> {
    let Some(list) = sequences.as_array().filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    if list.len() > MAX_STOP {
        return Err(Failure::invalid_request(
            format!("the OpenAI provider accepts at most {MAX_STOP} stop sequences"),
            Some("stop_sequences"),
        ));
    }
    Ok(Some(Value::Array(list.clone())))
}

/// Structured output: Anthropic's `output_config.format` JSON schema as an
/// OpenAI `json_schema` response format (which requires a name).
fn response_format(format: &Value) -> Option<Value> {
    (format["type"] == "json_schema").then(|| {
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": format["schema"]}})
    })
}

fn convert_tools(body: &Value, out: &mut Map<String, Value>) -> Result<(), Failure> {
    let Some(tools) = body["tools"].as_array().filter(|t| !t.is_empty()) else {
        return Ok(());
    };
    let converted = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| convert_tool(tool, i))
        .collect::<Result<Vec<_>, _>>()?;
    out.insert("tools".into(), Value::Array(converted));

    let choice = &body["tool_choice"];
    if let Some(mapped) = tool_choice(choice)? {
        out.insert("tool_choice".into(), mapped);
    }
    if choice["disable_parallel_tool_use"] == true {
        out.insert("parallel_tool_calls".into(), false.into());
    }
    Ok(())
}

/// A client tool as an OpenAI function. Server tools (web search, code
/// execution…) run inside Anthropic and have no OpenAI counterpart.
fn convert_tool(tool: &Value, i: usize) -> Result<Value, Failure> {
    let param = format!("tools[{i}]");
    if !matches!(tool["type"].as_str(), None | Some("custom")) {
        return Err(Failure::unsupported(
            format!(
                "server tool {} cannot be sent to the OpenAI provider",
                tool["type"]
            ),
            &param,
        ));
    }
    let name = non_empty_str(&tool["name"])
        .ok_or_else(|| Failure::invalid_request("a tool needs a name", Some(&param)))?;
    let parameters = match &tool["input_schema"] {
        Value::Null => json!({"type": "object", "properties": {}}),
        schema => schema.clone(),
    };
    let mut function = json!({"name": name, "parameters": parameters});
    if let Some(description) = tool["description"].as_str() {
        function["description"] = description.into();
    }
    Ok(json!({"type": "function", "function": function}))
}

fn tool_choice(choice: &Value) -> Result<Option<Value>, Failure> {
    let mapped = match choice["type"].as_str() {
        None if choice.is_null() => return Ok(None),
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = non_empty_str(&choice["name"]).ok_or_else(bad_tool_choice)?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => return Err(bad_tool_choice()),
    };
    Ok(Some(mapped))
}

fn bad_tool_choice() -> Failure {
    Failure::invalid_request("unrecognised `tool_choice`", Some("tool_choice"))
}

/// The leading system message followed by every turn.
fn convert_messages(body: &Value) -> Result<Vec<Value>, Failure> {
    let mut out = Vec::new();
    if let Some(system) = system_text(&body["system"])? {
        out.push(json!({"role": "system", "content": system}));
    }
    for (i, message) in messages(body)?.iter().enumerate() {
        let at = format!("messages[{i}]");
        match message["role"].as_str() {
            Some("user") => user_messages(&message["content"], &at, &mut out)?,
            Some("assistant") => out.extend(assistant_message(&message["content"], &at)?),
            _ => {
                return Err(Failure::invalid_request(
                    "role must be `user` or `assistant`",
                    Some(&format!("{at}.role")),
                ));
            }
        }
    }
    Ok(out)
}

/// `system` as one string; blocks are joined by blank lines, the usual
/// separator between system prompt sections.
fn system_text(system: &Value) -> Result<Option<String>, Failure> {
    match system {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone()).filter(|t| !t.is_empty())),
        Value::Array(blocks) => {
            let texts = blocks
                .iter()
                .map(|b| b["text"].as_str().filter(|_| b["type"] == "text"))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Failure::invalid_request("system blocks must be text", Some("system"))
                })?;
            Ok(Some(texts.join("\n\n")).filter(|t| !t.is_empty()))
        }
        _ => Err(Failure::invalid_request(
            "`system` must be a string or a list of text blocks",
            Some("system"),
        )),
    }
}

/// A user turn: one `tool` message per `tool_result` (first, as OpenAI
/// wants results right after the calls), then a `user` message with the
/// rest of the content, including any images lifted out of tool results.
fn user_messages(content: &Value, at: &str, out: &mut Vec<Value>) -> Result<(), Failure> {
    let blocks = match content {
        Value::String(text) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Value::Array(blocks) => blocks,
        _ => return Err(bad_content(at)),
    };
    let mut parts = Vec::new();
    let mut lifted_images = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let param = format!("{at}.content[{j}]");
        match block["type"].as_str() {
            Some("tool_result") => out.push(tool_message(block, &param, &mut lifted_images)?),
            Some("text") => parts.push(text_part(block)),
            Some("image") => parts.push(image_part(&block["source"], &param)?),
            _ => return Err(unsupported_block(block, &param)),
        }
    }
    parts.extend(lifted_images);
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": compact(parts)}));
    }
    Ok(())
}

fn bad_content(at: &str) -> Failure {
    Failure::invalid_request(
        "`content` must be a string or a list of blocks",
        Some(&format!("{at}.content")),
    )
}

fn unsupported_block(block: &Value, param: &str) -> Failure {
    Failure::unsupported(
        format!(
            "content block type {} cannot be sent to the OpenAI provider",
            block["type"]
        ),
        param,
    )
}

fn text_part(block: &Value) -> Value {
    json!({"type": "text", "text": block["text"]})
}

/// A lone text part is sent as a plain string.
fn compact(mut parts: Vec<Value>) -> Value {
    if parts.len() == 1 && parts[0]["type"] == "text" {
        parts.swap_remove(0)["text"].take()
    } else {
        Value::Array(parts)
    }
}

fn image_part(source: &Value, param: &str) -> Result<Value, Failure> {
    let url = match source["type"].as_str() {
        Some("base64") => format!(
            "data:{};base64,{}",
            source["media_type"].as_str().unwrap_or_default(),
            source["data"].as_str().unwrap_or_default()
        ),
        Some("url") => source["url"].as_str().unwrap_or_default().to_owned(),
        _ => {
            return Err(Failure::unsupported(
                "only base64 and url image sources can be sent to the OpenAI provider",
                param,
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A `tool_result` as a `tool` message with string content. OpenAI tool
/// messages cannot hold images, so those are handed back to go into the
/// user message that follows.
fn tool_message(block: &Value, param: &str, images: &mut Vec<Value>) -> Result<Value, Failure> {
    let text = match &block["content"] {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(inner) => {
            let mut texts = Vec::new();
            for (k, item) in inner.iter().enumerate() {
                let inner_param = format!("{param}.content[{k}]");
                match item["type"].as_str() {
                    Some("text") => texts.push(item["text"].as_str().unwrap_or_default()),
                    Some("image") => images.push(image_part(&item["source"], &inner_param)?),
                    _ => return Err(unsupported_block(item, &inner_param)),
                }
            }
            texts.join("\n")
        }
        _ => return Err(bad_content(param)),
    };
    let content = if block["is_error"] == true {
        format!("Error: {text}")
    } else {
        text
    };
    Ok(json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}))
}

/// An assistant turn: text joined into `content`, `tool_use` blocks as
/// `tool_calls`; thinking is dropped. `None` if nothing is left.
fn assistant_message(content: &Value, at: &str) -> Result<Option<Value>, Failure> {
    let blocks = match content {
        Value::String(text) => return Ok(Some(json!({"role": "assistant", "content": text}))),
        Value::Array(blocks) => blocks,
        _ => return Err(bad_content(at)),
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(tool_call(block)),
            Some("thinking" | "redacted_thinking") => {}
            _ => return Err(unsupported_block(block, &format!("{at}.content[{j}]"))),
        }
    }
    if text.is_empty() && calls.is_empty() {
        return Ok(None);
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        if text.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    Ok(Some(message))
}

fn tool_call(block: &Value) -> Value {
    json!({
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": block["input"].to_string()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Result<Value, Failure> {
        anthropic_to_openai(
            &body,
            &Upstream {
                model: "gpt",
                stream: false,
            },
        )
    }

    #[test]
    fn thinking_only_assistant_turn_is_dropped() {
        let body = json!({"max_tokens": 5, "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
        ]});
        assert_eq!(
            translate(body).unwrap()["messages"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn images_in_tool_results_move_to_the_user_message() {
        let image = json!({"type": "image", "source": {"type": "url", "url": "https://x/a.png"}});
        let body = json!({"max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "ok"}, image]},
        ]}]});
        let messages = translate(body).unwrap()["messages"].clone();
        assert_eq!(
            messages[0],
            json!({"role": "tool", "tool_call_id": "t", "content": "ok"})
        );
        assert_eq!(
            messages[1]["content"][0]["image_url"]["url"],
            "https://x/a.png"
        );
    }

    #[test]
    fn thinking_and_top_k_are_dropped() {
        let body = json!({"max_tokens": 2048, "top_k": 5, "messages": [],
                          "thinking": {"type": "enabled", "budget_tokens": 1024}});
        let out = translate(body).unwrap();
        assert!(out.get("thinking").is_none() && out.get("top_k").is_none());
    }

    #[test]
    fn document_blocks_are_unsupported() {
        let body = json!({"max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "data": "x", "media_type": "text/plain"}},
        ]}]});
        let err = translate(body).unwrap_err();
        assert_eq!(
            (err.status, err.param.as_deref()),
            (400, Some("messages[0].content[0]"))
        );
    }

    #[test]
    fn output_config_schema_becomes_response_format() {
        let schema = json!({"type": "object", "properties": {}});
        let body = json!({"max_tokens": 5, "messages": [],
                          "output_config": {"format": {"type": "json_schema", "schema": schema}}});
        let out = translate(body).unwrap();
        assert_eq!(out["response_format"]["json_schema"]["schema"], schema);
    }
}
