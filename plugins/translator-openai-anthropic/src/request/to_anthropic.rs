//! OpenAI Chat Completions request → Anthropic Messages request.

use super::{Upstream, as_object, messages, non_empty_str};
use crate::error::Failure;
use serde_json::{Map, Value, json};

/// `max_tokens` is required by Anthropic; used when the client gives no limit.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic caps `temperature` at 1 where OpenAI allows up to 2.
const MAX_TEMPERATURE: f64 = 1.0;

const IMAGE_MEDIA_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Translates an OpenAI request body into an Anthropic one for `upstream`.
pub fn openai_to_anthropic(body: &Value, upstream: &Upstream) -> Result<Value, Failure> {
    as_object(body)?;
    reject_unrepresentable(body)?;
    let conversation = convert_messages(messages(body)?)?;

    let mut out = Map::new();
    out.insert("model".into(), upstream.model.into());
    if !conversation.system.is_empty() {
        out.insert("system".into(), Value::Array(conversation.system));
    }
    out.insert("messages".into(), conversation.messages);
    out.insert("max_tokens".into(), max_tokens(body)?.into());
    copy_sampling(body, &mut out);
    if let Some(stop) = stop_sequences(&body["stop"])? {
        out.insert("stop_sequences".into(), stop);
    }
    convert_tools(body, &mut out)?;
    if let Some(user) = non_empty_str(&body["safety_identifier"]).or(non_empty_str(&body["user"])) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(format) = output_format(&body["response_format"])? {
        out.insert("output_config".into(), json!({"format": format}));
    }
    // OpenAI history carries no signed thinking blocks, which Anthropic
    // needs to continue a thinking conversation; so never ask for thinking.
    out.insert("thinking".into(), json!({"type": "disabled"}));
    if upstream.stream {
        out.insert("stream".into(), true.into());
    }
    Ok(Value::Object(out))
}

/// Rejects parameters whose meaning would be silently lost (WIRE.md §8).
fn reject_unrepresentable(body: &Value) -> Result<(), Failure> {
    match &body["n"] {
        Value::Null => {}
        n if n.as_u64() == Some(1) => {}
        _ => {
            return Err(Failure::invalid_request(
                "n > 1 is not supported by the Anthropic provider; send one request per choice",
                Some("n"),
            ));
        }
    }
    if body["logprobs"] == true || !body["top_logprobs"].is_null() {
        return Err(Failure::unsupported(
            "logprobs are not available from the Anthropic provider",
            "logprobs",
        ));
    }
    Ok(())
}

/// `max_completion_tokens` ?? `max_tokens` ?? the default.
fn max_tokens(body: &Value) -> Result<u64, Failure> {
    for field in ["max_completion_tokens", "max_tokens"] {
        match &body[field] {
            Value::Null => continue,
            value => {
                return value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                    Failure::invalid_request(
                        format!("`{field}` must be a positive integer"),
                        Some(field),
                    )
                });
            }
        }
    }
    Ok(DEFAULT_MAX_TOKENS)
}

fn copy_sampling(body: &Value, out: &mut Map<String, Value>) {
    if let Some(t) = body["temperature"].as_f64() {
        let value = if t > MAX_TEMPERATURE {
            json!(MAX_TEMPERATURE)
        } else {
            body["temperature"].clone()
        };
        out.insert("temperature".into(), value);
    }
    if body["top_p"].is_number() {
        out.insert("top_p".into(), body["top_p"].clone());
    }
}

/// `stop` (a string or a list) as `stop_sequences`; empty strings are
/// dropped because they would stop generation at once.
fn stop_sequences(stop: &Value) -> Result<Option<Value>, Failure> {
    let list: Vec<&Value> = match stop {
        Value::Null => return Ok(None),
        Value::String(_) => vec![stop],
        Value::Array(items) => items.iter().collect(),
        _ => return Err(bad_stop()),
    };
    let mut sequences = Vec::with_capacity(list.len());
    for item in list {
        let s = item.as_str().ok_or_else(bad_stop)?;
        if !s.is_empty() {
            sequences.push(Value::from(s));
        }
    }
    Ok((!sequences.is_empty()).then_some(Value::Array(sequences)))
}

fn bad_stop() -> Failure {
    Failure::invalid_request("`stop` must be a string or a list of strings", Some("stop"))
}

/// `response_format` as Anthropic `output_config.format`. Only a JSON schema
/// has an Anthropic equivalent; JSON mode without a schema does not.
fn output_format(format: &Value) -> Result<Option<Value>, Failure> {
    match format["type"].as_str() {
        None if format.is_null() => Ok(None),
        Some("text") => Ok(None),
        Some("json_schema") => {
            let schema = &format["json_schema"]["schema"];
            if !schema.is_object() {
                return Err(Failure::invalid_request(
                    "`response_format.json_schema.schema` must be an object",
                    Some("response_format"),
                ));
            }
            Ok(Some(json!({"type": "json_schema", "schema": schema})))
        }
        _ => Err(Failure::unsupported(
            "only `text` and `json_schema` response formats can be sent to the Anthropic provider",
            "response_format",
        )),
    }
}

/// `tools`, `tool_choice` and `parallel_tool_calls`. Without tools the
/// choice means nothing, and Anthropic would reject it.
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
    if let Some(choice) = tool_choice(body)? {
        out.insert("tool_choice".into(), choice);
    }
    Ok(())
}

fn convert_tool(tool: &Value, i: usize) -> Result<Value, Failure> {
    let param = format!("tools[{i}]");
    if tool["type"] != "function" {
        return Err(Failure::unsupported(
            "only function tools can be sent to the Anthropic provider",
            &param,
        ));
    }
    let function = &tool["function"];
    let name = non_empty_str(&function["name"]).ok_or_else(|| {
        Failure::invalid_request(
            "a function tool needs a name",
            Some(&format!("{param}.function.name")),
        )
    })?;
    let schema = match &function["parameters"] {
        Value::Null => json!({"type": "object", "properties": {}}),
        parameters => parameters.clone(),
    };
    let mut out = json!({"name": name, "input_schema": schema});
    if let Some(description) = function["description"].as_str() {
        out["description"] = description.into();
    }
    Ok(out)
}

fn tool_choice(body: &Value) -> Result<Option<Value>, Failure> {
    let choice = &body["tool_choice"];
    let serial = body["parallel_tool_calls"] == false;
    let mut out = match choice {
        Value::Null if !serial => return Ok(None),
        Value::Null => json!({"type": "auto"}),
        Value::String(mode) => match mode.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => return Ok(Some(json!({"type": "none"}))),
            _ => return Err(bad_tool_choice()),
        },
        Value::Object(_) if choice["type"] == "function" => {
            let name = non_empty_str(&choice["function"]["name"]).ok_or_else(bad_tool_choice)?;
            json!({"type": "tool", "name": name})
        }
        Value::Object(_) if choice["type"] == "allowed_tools" => {
            return Err(Failure::unsupported(
                "`allowed_tools` tool choice is not supported by the Anthropic provider",
                "tool_choice",
            ));
        }
        _ => return Err(bad_tool_choice()),
    };
    if serial {
        out["disable_parallel_tool_use"] = true.into();
    }
    Ok(Some(out))
}

fn bad_tool_choice() -> Failure {
    Failure::invalid_request("unrecognised `tool_choice`", Some("tool_choice"))
}

/// Anthropic tool ids must match `[A-Za-z0-9_-]+`. Other ids are rewritten
/// deterministically, so a call and its result still agree, with a hash of
/// the original so that two ids never collapse into one.
pub fn anthropic_tool_id(id: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(allowed) {
        return id.to_owned();
    }
    let cleaned: String = id
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    format!("{cleaned}_{:08x}", fnv1a(id.as_bytes()))
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// The Anthropic `system` blocks and `messages` of a conversation.
struct Conversation {
    system: Vec<Value>,
    messages: Value,
}

fn convert_messages(messages: &[Value]) -> Result<Conversation, Failure> {
    let mut system = Vec::new();
    let mut turns = Turns::default();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        match message["role"].as_str() {
            Some("system" | "developer") => system.extend(text_blocks(&message["content"], &at)?),
            Some("user") => turns.push("user", user_blocks(&message["content"], &at)?),
            Some("assistant") => turns.push("assistant", assistant_blocks(message, &at)?),
            Some("tool") => turns.push_tool_result(tool_result(message, &at)?),
            Some("function") => {
                return Err(Failure::unsupported(
                    "deprecated `function` messages are not supported; use `tool` messages",
                    &format!("{at}.role"),
                ));
            }
            _ => {
                return Err(Failure::invalid_request(
                    "unknown message role",
                    Some(&format!("{at}.role")),
                ));
            }
        }
    }
    Ok(Conversation {
        system,
        messages: turns.into_messages(),
    })
}

/// Anthropic turns under construction. Consecutive messages of one role
/// become one turn, which is how `tool` messages and the `user` message
/// after them end up in a single user turn.
#[derive(Default)]
struct Turns(Vec<(&'static str, Vec<Value>)>);

impl Turns {
    fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => self.0.push((role, blocks)),
        }
    }

    /// Adds a `tool_result`, keeping the results ahead of any other content
    /// of the user turn, as Anthropic requires.
    fn push_tool_result(&mut self, block: Value) {
        match self.0.last_mut() {
            Some(("user", blocks)) => {
                let at = blocks
                    .iter()
                    .take_while(|b| b["type"] == "tool_result")
                    .count();
                blocks.insert(at, block);
            }
            _ => self.0.push(("user", vec![block])),
        }
    }

    fn into_messages(self) -> Value {
        self.0
            .into_iter()
            .map(|(role, blocks)| json!({"role": role, "content": compact(blocks)}))
            .collect()
    }
}

/// A lone plain text block is sent as a string, the form most requests use.
fn compact(mut blocks: Vec<Value>) -> Value {
    let plain_text = blocks.len() == 1
        && blocks[0]["type"] == "text"
        && blocks[0].as_object().is_some_and(|b| b.len() == 2);
    if plain_text {
        blocks.swap_remove(0)["text"].take()
    } else {
        Value::Array(blocks)
    }
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// Text content (a string or text parts) as text blocks. Empty text is
/// skipped because Anthropic rejects empty text blocks.
fn text_blocks(content: &Value, at: &str) -> Result<Vec<Value>, Failure> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) => Ok(non_empty_text(text)),
        Value::Array(parts) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if part["type"] != "text" {
                    return Err(Failure::unsupported(
                        "only text parts are allowed here",
                        &format!("{at}.content[{j}]"),
                    ));
                }
                blocks.extend(non_empty_text(part["text"].as_str().unwrap_or_default()));
            }
            Ok(blocks)
        }
        _ => Err(bad_content(at)),
    }
}

fn non_empty_text(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![text_block(text)]
    }
}

fn bad_content(at: &str) -> Failure {
    Failure::invalid_request(
        "`content` must be a string or a list of parts",
        Some(&format!("{at}.content")),
    )
}

fn user_blocks(content: &Value, at: &str) -> Result<Vec<Value>, Failure> {
    let Value::Array(parts) = content else {
        return text_blocks(content, at);
    };
    let mut blocks = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let param = format!("{at}.content[{j}]");
        match part["type"].as_str() {
            Some("text") => {
                blocks.extend(non_empty_text(part["text"].as_str().unwrap_or_default()))
            }
            Some("image_url") => blocks.push(image_block(&part["image_url"], &param)?),
            _ => {
                return Err(Failure::unsupported(
                    "only text and image parts can be sent to the Anthropic provider",
                    &param,
                ));
            }
        }
    }
    Ok(blocks)
}

/// An `image_url` part as an Anthropic image block: a `data:` URL becomes a
/// base64 source, an http(s) URL a url source. `detail` has no equivalent.
fn image_block(image_url: &Value, param: &str) -> Result<Value, Failure> {
    let url = image_url["url"]
        .as_str()
        .or(image_url.as_str())
        .ok_or_else(|| Failure::invalid_request("an image part needs a url", Some(param)))?;
    let source = if let Some(rest) = url.strip_prefix("data:") {
        base64_source(rest, param)?
    } else if url.starts_with("https://") || url.starts_with("http://") {
        json!({"type": "url", "url": url})
    } else {
        return Err(Failure::invalid_request(
            "image urls must be http(s) or base64 data: URLs",
            Some(param),
        ));
    };
    Ok(json!({"type": "image", "source": source}))
}

/// The part of a `data:` URL after the scheme, e.g. `image/png;base64,iVBO…`.
fn base64_source(rest: &str, param: &str) -> Result<Value, Failure> {
    let (media_type, data) = rest
        .split_once(',')
        .and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)))
        .ok_or_else(|| {
            Failure::invalid_request("image data: URLs must be base64-encoded", Some(param))
        })?;
    if !IMAGE_MEDIA_TYPES.contains(&media_type) {
        return Err(Failure::invalid_request(
            format!("image type {media_type:?} is not supported; use jpeg, png, gif or webp"),
            Some(param),
        ));
    }
    Ok(json!({"type": "base64", "media_type": media_type, "data": data}))
}

/// An assistant message: its text (and refusal) first, then its tool calls.
fn assistant_blocks(message: &Value, at: &str) -> Result<Vec<Value>, Failure> {
    let mut blocks = match &message["content"] {
        Value::Array(parts) => assistant_parts(parts, at)?,
        content => text_blocks(content, at)?,
    };
    if let Some(refusal) = non_empty_str(&message["refusal"]) {
        blocks.push(text_block(refusal));
    }
    if let Some(calls) = message["tool_calls"].as_array() {
        for (j, call) in calls.iter().enumerate() {
            blocks.push(tool_use(call, &format!("{at}.tool_calls[{j}]"))?);
        }
    }
    Ok(blocks)
}

fn assistant_parts(parts: &[Value], at: &str) -> Result<Vec<Value>, Failure> {
    let mut blocks = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let text = match part["type"].as_str() {
            Some("text") => &part["text"],
            Some("refusal") => &part["refusal"],
            _ => {
                return Err(Failure::unsupported(
                    "assistant content may only hold text and refusal parts",
                    &format!("{at}.content[{j}]"),
                ));
            }
        };
        blocks.extend(non_empty_text(text.as_str().unwrap_or_default()));
    }
    Ok(blocks)
}

/// A tool call as a `tool_use` block; `arguments` must be a JSON object.
fn tool_use(call: &Value, at: &str) -> Result<Value, Failure> {
    if call["type"] != "function" {
        return Err(Failure::unsupported(
            "only function tool calls can be sent to the Anthropic provider",
            at,
        ));
    }
    let function = &call["function"];
    let param = format!("{at}.function.arguments");
    let arguments = function["arguments"].as_str().unwrap_or_default();
    // Calls of tools without parameters may carry empty arguments.
    let input = crate::mapping::tool_arguments(arguments).ok_or_else(|| {
        Failure::invalid_request("tool call arguments must be a JSON object", Some(&param))
    })?;
    Ok(json!({
        "type": "tool_use",
        "id": anthropic_tool_id(call["id"].as_str().unwrap_or_default()),
        "name": function["name"],
        "input": input,
    }))
}

fn tool_result(message: &Value, at: &str) -> Result<Value, Failure> {
    let id = message["tool_call_id"].as_str().ok_or_else(|| {
        Failure::invalid_request(
            "tool messages need a `tool_call_id`",
            Some(&format!("{at}.tool_call_id")),
        )
    })?;
    let mut block = json!({"type": "tool_result", "tool_use_id": anthropic_tool_id(id)});
    // Empty content is left out rather than sent as an empty text block.
    match &message["content"] {
        Value::String(text) if !text.is_empty() => block["content"] = text.as_str().into(),
        Value::String(_) | Value::Null => {}
        content => {
            let blocks = text_blocks(content, at)?;
            if !blocks.is_empty() {
                block["content"] = Value::Array(blocks);
            }
        }
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> Result<Value, Failure> {
        openai_to_anthropic(
            &body,
            &Upstream {
                model: "claude",
                stream: false,
            },
        )
    }

    #[test]
    fn tool_ids_outside_the_alphabet_are_rewritten_stably() {
        assert_eq!(anthropic_tool_id("call_1-A"), "call_1-A");
        let rewritten = anthropic_tool_id("call.1");
        assert!(rewritten.starts_with("call_1_"));
        assert_eq!(rewritten, anthropic_tool_id("call.1"));
        assert_ne!(rewritten, anthropic_tool_id("call:1"));
    }

    #[test]
    fn tool_result_goes_ahead_of_earlier_user_text() {
        let mut turns = Turns::default();
        turns.push("user", vec![text_block("hi")]);
        turns.push_tool_result(json!({"type": "tool_result", "tool_use_id": "a"}));
        let messages = turns.into_messages();
        assert_eq!(messages[0]["content"][0]["type"], "tool_result");
        assert_eq!(messages[0]["content"][1]["type"], "text");
    }

    #[test]
    fn temperature_is_clamped_and_kept_when_in_range() {
        let hot = translate(json!({"model": "m", "messages": [], "temperature": 1.7})).unwrap();
        assert_eq!(hot["temperature"], 1.0);
        let cool = translate(json!({"model": "m", "messages": [], "temperature": 0.3})).unwrap();
        assert_eq!(cool["temperature"], 0.3);
    }

    #[test]
    fn max_tokens_prefers_max_completion_tokens() {
        let both = json!({"messages": [], "max_tokens": 10, "max_completion_tokens": 20});
        assert_eq!(translate(both).unwrap()["max_tokens"], 20);
        let none = json!({"messages": []});
        assert_eq!(translate(none).unwrap()["max_tokens"], DEFAULT_MAX_TOKENS);
        let bad = json!({"messages": [], "max_tokens": "many"});
        assert_eq!(
            translate(bad).unwrap_err().param.as_deref(),
            Some("max_tokens")
        );
    }

    #[test]
    fn empty_arguments_mean_no_input() {
        let call =
            json!({"id": "c", "type": "function", "function": {"name": "now", "arguments": ""}});
        assert_eq!(tool_use(&call, "m").unwrap()["input"], json!({}));
    }

    #[test]
    fn non_object_arguments_are_rejected() {
        let call =
            json!({"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}});
        let err = tool_use(&call, "messages[1].tool_calls[0]").unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            err.param.as_deref(),
            Some("messages[1].tool_calls[0].function.arguments")
        );
    }

    #[test]
    fn n_of_one_is_accepted() {
        assert!(translate(json!({"messages": [], "n": 1})).is_ok());
    }

    #[test]
    fn non_object_body_is_rejected() {
        assert_eq!(translate(json!([1])).unwrap_err().status, 400);
    }
}
