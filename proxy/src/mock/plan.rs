//! What the mock answers, decided from the request alone, the same way for
//! both API shapes: an echo of the last user turn, or a tool call when the
//! request requires one, cut by `max_tokens` and stop sequences.

use serde_json::{Map, Value, json};

use crate::api::Shape;

/// The mock's answer, before it is dressed in an API shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub model: String,
    pub text: String,
    pub tool: Option<ToolCall>,
    pub finish: Finish,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Stop,
    Length,
    ToolUse,
    StopSequence(String),
}

/// Whitespace-separated words: the mock's notion of a token.
fn tokens(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// `output_tokens`: answer with exactly that many words (before
/// `max_tokens` cuts them), the `x-mock-output-tokens` header.
pub fn plan(
    shape: Shape,
    req: &Value,
    seq: u64,
    cached_tokens: u64,
    output_tokens: Option<u64>,
) -> Plan {
    let model = req["model"].as_str().unwrap_or("mock").to_owned();
    let messages = req["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let input_tokens = tokens(&all_text(&req["system"]))
        + messages
            .iter()
            .map(|m| tokens(&all_text(&m["content"])))
            .sum::<u64>()
        + messages.len() as u64;
    let last = messages.last();

    if let Some(tool) = required_tool(shape, req) {
        let input = example_input(&tool.1);
        return Plan {
            model,
            text: String::new(),
            tool: Some(ToolCall {
                id: format!("call_mock{seq}"),
                name: tool.0,
                input,
            }),
            finish: Finish::ToolUse,
            input_tokens,
            output_tokens: 8,
            cached_tokens,
        };
    }

    // A grader for the LLM-judge evaluator: a fixed verdict in the JSON
    // the judge asks for.
    if model.starts_with("judge") {
        let text = r#"{"score": 0.85, "rationale": "mock judge"}"#.to_owned();
        return Plan {
            model,
            output_tokens: tokens(&text),
            text,
            tool: None,
            finish: Finish::Stop,
            input_tokens,
            cached_tokens,
        };
    }

    let images = messages
        .iter()
        .map(|m| count_images(&m["content"]))
        .sum::<usize>();
    let mut text = match last.and_then(|m| tool_result_text(shape, m)) {
        _ if output_tokens.is_some() => {
            let n = output_tokens.unwrap_or(0).min(1 << 20) as usize;
            (0..n)
                .map(|i| if i % 2 == 0 { "lorem" } else { "ipsum" })
                .collect::<Vec<_>>()
                .join(" ")
        }
        Some(result) => format!("Tool result received: {result}"),
        None => {
            let said = last.map(|m| all_text(&m["content"])).unwrap_or_default();
            format!("Mock reply to: {}", said.trim())
        }
    };
    if images > 0 && output_tokens.is_none() {
        text.push_str(&format!(" [images: {images}]"));
    }

    let mut finish = Finish::Stop;
    for stop in stop_sequences(shape, req) {
        if let Some(at) = text.find(&stop) {
            text.truncate(at);
            finish = Finish::StopSequence(stop);
            break;
        }
    }
    let max = match shape {
        Shape::OpenAi => req["max_completion_tokens"]
            .as_u64()
            .or(req["max_tokens"].as_u64()),
        Shape::Anthropic => req["max_tokens"].as_u64(),
    };
    if let Some(max) = max
        && tokens(&text) > max
    {
        text = text
            .split_whitespace()
            .take(max as usize)
            .collect::<Vec<_>>()
            .join(" ");
        finish = Finish::Length;
    }
    Plan {
        model,
        output_tokens: tokens(&text),
        text,
        tool: None,
        finish,
        input_tokens,
        cached_tokens,
    }
}

/// All text in a content value: a string, or the `text` of its parts.
fn all_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn count_images(content: &Value) -> usize {
    content.as_array().map_or(0, |parts| {
        parts
            .iter()
            .filter(|p| matches!(p["type"].as_str(), Some("image_url" | "image")))
            .count()
    })
}

/// When the last message hands back a tool result, its text.
fn tool_result_text(shape: Shape, last: &Value) -> Option<String> {
    match shape {
        Shape::OpenAi if last["role"] == "tool" => Some(all_text(&last["content"])),
        Shape::Anthropic => last["content"]
            .as_array()?
            .iter()
            .find_map(|b| (b["type"] == "tool_result").then(|| all_text(&b["content"]))),
        _ => None,
    }
}

fn stop_sequences(shape: Shape, req: &Value) -> Vec<String> {
    let v = match shape {
        Shape::OpenAi => &req["stop"],
        Shape::Anthropic => &req["stop_sequences"],
    };
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The tool the request forces (name, input schema), if it forces one.
fn required_tool(shape: Shape, req: &Value) -> Option<(String, Value)> {
    let tools: Vec<(String, Value)> = req["tools"]
        .as_array()?
        .iter()
        .filter_map(|t| match shape {
            Shape::OpenAi => Some((
                t["function"]["name"].as_str()?.to_owned(),
                t["function"]["parameters"].clone(),
            )),
            Shape::Anthropic => Some((t["name"].as_str()?.to_owned(), t["input_schema"].clone())),
        })
        .collect();
    let choice = &req["tool_choice"];
    let named = match shape {
        Shape::OpenAi => choice["function"]["name"].as_str(),
        Shape::Anthropic if choice["type"] == "tool" => choice["name"].as_str(),
        Shape::Anthropic => None,
    };
    if let Some(name) = named {
        return tools.into_iter().find(|t| t.0 == name);
    }
    let required = match shape {
        Shape::OpenAi => choice == "required",
        Shape::Anthropic => choice["type"] == "any",
    };
    if required {
        tools.into_iter().next()
    } else {
        None
    }
}

/// A value that satisfies the simple JSON Schemas tests use.
fn example_input(schema: &Value) -> Value {
    let mut out = Map::new();
    if let Some(props) = schema["properties"].as_object() {
        for (name, prop) in props {
            let v = match prop["type"].as_str() {
                Some("string") => json!(if name.contains("city") {
                    "Paris"
                } else {
                    "mock"
                }),
                Some("integer" | "number") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => Value::Null,
            };
            out.insert(name.clone(), v);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn echoes_and_cuts() {
        let req = json!({"model":"m","messages":[{"role":"user","content":"one two three"}],"max_tokens":3});
        let p = plan(Shape::OpenAi, &req, 1, 0, None);
        assert_eq!(p.text, "Mock reply to:");
        assert_eq!(p.finish, Finish::Length);
        let req = json!({"model":"m","max_tokens":50,"stop_sequences":["two"],"messages":[{"role":"user","content":"one two"}]});
        let p = plan(Shape::Anthropic, &req, 1, 0, None);
        assert_eq!(p.text, "Mock reply to: one ");
        assert_eq!(p.finish, Finish::StopSequence("two".into()));
    }

    #[test]
    fn forced_tool_calls() {
        let req = json!({"model":"m","messages":[{"role":"user","content":"weather?"}],
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
            "tool_choice":"required"});
        let p = plan(Shape::OpenAi, &req, 7, 0, None);
        let t = p.tool.unwrap();
        assert_eq!(
            (t.name.as_str(), t.input.clone()),
            ("get_weather", json!({"city":"Paris"}))
        );
        assert_eq!(p.finish, Finish::ToolUse);
        let auto = json!({"model":"m","messages":[{"role":"user","content":"x"}],
            "tools":[{"name":"t","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"},"max_tokens":9});
        assert!(plan(Shape::Anthropic, &auto, 1, 0, None).tool.is_none());
    }
}
