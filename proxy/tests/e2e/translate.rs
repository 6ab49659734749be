//! The four client/provider shape combinations, whole and streamed, over
//! HTTP: text, model echo, routing headers, stop reasons, usage, tool calls
//! across two turns, images, stop sequences, length limits, and the stream
//! framing WIRE.md §2 and §6 require.

use serde_json::{Value, json};

use crate::harness::*;

const TRANSLATOR: &str = "translator_openai_anthropic.wasm";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Client {
    OpenAi,
    Anthropic,
}

/// One client-shape → provider-shape combination.
#[derive(Clone, Copy, Debug)]
struct Combo {
    client: Client,
    /// The raw model string the client sends (and must see echoed).
    model: &'static str,
    provider: &'static str,
    upstream_model: &'static str,
    /// Whether control headers reach the mock (mock-kind providers only).
    mock_kind: bool,
}

const OO: Combo = Combo {
    client: Client::OpenAi,
    model: "mock:gpt-4o-mini",
    provider: "mock",
    upstream_model: "gpt-4o-mini",
    mock_kind: true,
};
const OA: Combo = Combo {
    client: Client::OpenAi,
    model: "ant:claude-sonnet-4-6",
    provider: "ant",
    upstream_model: "claude-sonnet-4-6",
    mock_kind: false,
};
const AO: Combo = Combo {
    client: Client::Anthropic,
    model: "oai:gpt-4o-mini",
    provider: "oai",
    upstream_model: "gpt-4o-mini",
    mock_kind: false,
};
const AA: Combo = Combo {
    client: Client::Anthropic,
    model: "mock:claude-sonnet-4-6",
    provider: "mock",
    upstream_model: "claude-sonnet-4-6",
    mock_kind: true,
};
const ALL: [Combo; 4] = [OO, OA, AO, AA];

fn stack() -> Stack {
    Stack::start(Options {
        plugins: &[TRANSLATOR],
        ..Options::default()
    })
}

impl Combo {
    fn path(&self) -> &'static str {
        match self.client {
            Client::OpenAi => "/v1/chat/completions",
            Client::Anthropic => "/v1/messages",
        }
    }

    /// A request body: `messages` plus `extra` fields; Anthropic requests
    /// get a `max_tokens` unless `extra` sets one.
    fn body(&self, messages: Value, stream: bool, extra: Value) -> Value {
        let mut b = json!({"model": self.model, "messages": messages});
        if self.client == Client::Anthropic {
            b["max_tokens"] = json!(256);
        }
        if stream {
            b["stream"] = json!(true);
            if self.client == Client::OpenAi {
                b["stream_options"] = json!({"include_usage": true});
            }
        }
        for (k, v) in extra.as_object().into_iter().flatten() {
            b[k] = v.clone();
        }
        b
    }

    fn send(&self, stack: &Stack, body: &Value, headers: &[(&str, &str)]) -> Reply {
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if self.client == Client::Anthropic {
            h.push(("anthropic-version", "2023-06-01"));
        }
        let r = stack.post(self.path(), body, &h);
        assert_eq!(r.status, 200, "{self:?}: {}", r.text());
        assert_eq!(
            r.header("x-sluice-provider"),
            Some(self.provider),
            "{self:?}"
        );
        assert_eq!(
            r.header("x-sluice-model"),
            Some(self.upstream_model),
            "{self:?}"
        );
        assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
        let stream = body["stream"] == true;
        let ct = r.header("content-type").unwrap_or_default();
        if stream {
            assert!(ct.starts_with("text/event-stream"), "{self:?}: {ct}");
            assert_eq!(r.header("transfer-encoding"), Some("chunked"), "{self:?}");
            match self.client {
                Client::OpenAi => openai_stream(&r.text(), self.model),
                Client::Anthropic => anthropic_stream(&r.text(), self.model),
            }
        } else {
            assert!(ct.starts_with("application/json"), "{self:?}: {ct}");
            match self.client {
                Client::OpenAi => openai_whole(&r.json(), self.model),
                Client::Anthropic => anthropic_whole(&r.json(), self.model),
            }
        }
    }

    /// The finish reason a client of this shape reads for a plain stop, a
    /// length cut and a tool call.
    fn stop(&self) -> &'static str {
        match self.client {
            Client::OpenAi => "stop",
            Client::Anthropic => "end_turn",
        }
    }
    fn length(&self) -> &'static str {
        match self.client {
            Client::OpenAi => "length",
            Client::Anthropic => "max_tokens",
        }
    }
    fn tool_use(&self) -> &'static str {
        match self.client {
            Client::OpenAi => "tool_calls",
            Client::Anthropic => "tool_use",
        }
    }
}

/// A response, whole or streamed, reduced to what tests compare.
#[derive(Debug, Default)]
struct Reply {
    text: String,
    /// (id, name, parsed arguments)
    tools: Vec<(String, String, Value)>,
    finish: String,
    /// Anthropic `stop_sequence`, when the client is Anthropic.
    stop_sequence: Option<String>,
    /// The whole prompt, cached included.
    prompt: u64,
    completion: u64,
    cached: u64,
}

fn openai_usage(reply: &mut Reply, u: &Value) {
    let prompt = u["prompt_tokens"].as_u64().expect("prompt_tokens");
    let completion = u["completion_tokens"].as_u64().expect("completion_tokens");
    assert_eq!(u["total_tokens"].as_u64(), Some(prompt + completion), "{u}");
    reply.prompt = prompt;
    reply.completion = completion;
    reply.cached = u["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
}

fn anthropic_usage(reply: &mut Reply, u: &Value) {
    let input = u["input_tokens"].as_u64().expect("input_tokens");
    let creation = u["cache_creation_input_tokens"].as_u64().unwrap_or(0);
    let read = u["cache_read_input_tokens"].as_u64().unwrap_or(0);
    reply.prompt = input + creation + read;
    reply.cached = read;
    reply.completion = u["output_tokens"].as_u64().expect("output_tokens");
}

fn openai_whole(v: &Value, model: &str) -> Reply {
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["model"], model, "the client's model is echoed: {v}");
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let choices = v["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 1, "{v}");
    let m = &choices[0]["message"];
    assert_eq!(m["role"], "assistant", "{v}");
    let mut reply = Reply {
        text: m["content"].as_str().unwrap_or_default().to_owned(),
        finish: choices[0]["finish_reason"].as_str().unwrap().to_owned(),
        ..Reply::default()
    };
    for c in m["tool_calls"].as_array().into_iter().flatten() {
        assert_eq!(c["type"], "function", "{v}");
        let args = c["function"]["arguments"]
            .as_str()
            .expect("arguments string");
        reply.tools.push((
            c["id"].as_str().unwrap().to_owned(),
            c["function"]["name"].as_str().unwrap().to_owned(),
            serde_json::from_str(args).expect("arguments are JSON"),
        ));
    }
    if !reply.tools.is_empty() {
        assert!(m["content"].is_null(), "content null with tool calls: {v}");
    }
    openai_usage(&mut reply, &v["usage"]);
    reply
}

fn anthropic_whole(v: &Value, model: &str) -> Reply {
    assert_eq!(v["type"], "message", "{v}");
    assert_eq!(v["role"], "assistant", "{v}");
    assert_eq!(v["model"], model, "the client's model is echoed: {v}");
    assert!(v["id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let mut reply = Reply {
        finish: v["stop_reason"].as_str().unwrap().to_owned(),
        stop_sequence: v["stop_sequence"].as_str().map(str::to_owned),
        ..Reply::default()
    };
    for b in v["content"].as_array().expect("content") {
        match b["type"].as_str() {
            Some("text") => reply.text.push_str(b["text"].as_str().unwrap()),
            Some("tool_use") => {
                assert!(b["input"].is_object(), "{v}");
                reply.tools.push((
                    b["id"].as_str().unwrap().to_owned(),
                    b["name"].as_str().unwrap().to_owned(),
                    b["input"].clone(),
                ));
            }
            other => panic!("unexpected block {other:?}: {v}"),
        }
    }
    anthropic_usage(&mut reply, &v["usage"]);
    reply
}

/// The raw body as SSE blocks, each its lines.
fn blocks(text: &str) -> Vec<Vec<&str>> {
    assert!(
        text.ends_with("\n\n"),
        "stream ends with a blank line: {text:?}"
    );
    text.split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|b| b.lines().collect())
        .collect()
}

/// Checks WIRE.md §2 framing and order, and accumulates the reply the way
/// the OpenAI SDK does.
fn openai_stream(text: &str, model: &str) -> Reply {
    let blocks = blocks(text);
    let mut chunks = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(b.len(), 1, "one data line per event, no event: line: {b:?}");
        let data = b[0].strip_prefix("data: ").expect("data: line");
        if data == "[DONE]" {
            assert_eq!(i, blocks.len() - 1, "[DONE] is last:\n{text}");
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("chunk is JSON");
        assert!(v.get("error").is_none(), "error chunk:\n{text}");
        chunks.push(v);
    }
    assert_eq!(
        blocks.last().map(|b| b[0]),
        Some("data: [DONE]"),
        "ends with [DONE]:\n{text}"
    );
    assert!(!chunks.is_empty());
    let id = chunks[0]["id"].clone();
    let mut reply = Reply::default();
    let mut finish_at = None;
    let mut usage_at = None;
    // Tool calls by index: (id, name, arguments).
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert_eq!(c["id"], id, "chunks share the id: {c}");
        assert_eq!(
            c["model"], model,
            "every chunk echoes the client's model: {c}"
        );
        let choices = c["choices"].as_array().expect("choices");
        if choices.is_empty() {
            assert!(c["usage"].is_object(), "{c}");
            assert!(usage_at.is_none(), "one usage chunk");
            usage_at = Some(i);
            openai_usage(&mut reply, &c["usage"]);
            continue;
        }
        assert!(c["usage"].is_null(), "usage null on content chunks: {c}");
        let delta = &choices[0]["delta"];
        if i == 0 {
            assert_eq!(delta["role"], "assistant", "role first: {c}");
        } else {
            assert!(delta.get("role").is_none(), "role only once: {c}");
        }
        reply
            .text
            .push_str(delta["content"].as_str().unwrap_or_default());
        for t in delta["tool_calls"].as_array().into_iter().flatten() {
            let k = t["index"].as_u64().expect("tool index") as usize;
            if k == calls.len() {
                assert_eq!(t["type"], "function", "{c}");
                assert_eq!(t["function"]["arguments"], "", "first fragment: {c}");
                calls.push((
                    t["id"].as_str().expect("id on first fragment").to_owned(),
                    t["function"]["name"]
                        .as_str()
                        .expect("name on first fragment")
                        .to_owned(),
                    String::new(),
                ));
            } else {
                assert!(k < calls.len(), "tool indexes in order: {c}");
                assert!(t.get("id").is_none(), "id never resent: {c}");
                assert!(
                    t["function"].get("name").is_none(),
                    "name never resent: {c}"
                );
                calls[k]
                    .2
                    .push_str(t["function"]["arguments"].as_str().unwrap());
            }
        }
        if let Some(f) = choices[0]["finish_reason"].as_str() {
            assert!(finish_at.is_none(), "one finish_reason:\n{text}");
            assert_eq!(delta, &json!({}), "finish chunk has an empty delta: {c}");
            finish_at = Some(i);
            reply.finish = f.to_owned();
        } else {
            assert!(
                finish_at.is_none(),
                "nothing after the finish chunk but usage"
            );
        }
    }
    let finish_at = finish_at.expect("a finish_reason chunk");
    let usage_at = usage_at.expect("a usage chunk (include_usage)");
    assert!(
        usage_at > finish_at && usage_at == chunks.len() - 1,
        "{text}"
    );
    for (id, name, args) in calls {
        reply.tools.push((
            id,
            name,
            serde_json::from_str(&args).expect("arguments JSON"),
        ));
    }
    reply
}

/// Checks WIRE.md §6 framing and order, and accumulates the reply the way
/// the Anthropic SDK does.
fn anthropic_stream(text: &str, model: &str) -> Reply {
    let mut events: Vec<(String, Value)> = Vec::new();
    for b in blocks(text) {
        assert_eq!(b.len(), 2, "event: and data: lines: {b:?}");
        let name = b[0].strip_prefix("event: ").expect("event: line first");
        let data = b[1].strip_prefix("data: ").expect("data: line");
        assert_ne!(data, "[DONE]", "no [DONE] in Anthropic streams");
        let v: Value = serde_json::from_str(data).expect("event data is JSON");
        assert_eq!(v["type"], name, "event name matches the data type");
        assert_ne!(name, "error", "error event:\n{text}");
        if name != "ping" {
            events.push((name.to_owned(), v));
        }
    }
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        &["message_delta", "message_stop"],
        "{names:?}"
    );
    let start = &events[0].1["message"];
    assert_eq!(
        start["model"], model,
        "message_start echoes the model: {start}"
    );
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["content"], json!([]));
    let mut reply = Reply::default();
    let mut usage = start["usage"].clone();
    // Content blocks: start, deltas, stop, indexes 0, 1, … never interleaved.
    let mut next_index = 0;
    let mut open: Option<(u64, String)> = None;
    let mut tool: Option<(String, String, String)> = None;
    for (name, v) in &events[1..events.len() - 2] {
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none(), "blocks do not interleave: {names:?}");
                assert_eq!(v["index"], next_index, "{v}");
                let block = &v["content_block"];
                let ty = block["type"].as_str().unwrap().to_owned();
                match ty.as_str() {
                    "text" => assert_eq!(block["text"], "", "{v}"),
                    "tool_use" => {
                        assert_eq!(block["input"], json!({}), "{v}");
                        tool = Some((
                            block["id"].as_str().unwrap().to_owned(),
                            block["name"].as_str().unwrap().to_owned(),
                            String::new(),
                        ));
                    }
                    other => panic!("unexpected block {other}"),
                }
                open = Some((next_index, ty));
                next_index += 1;
            }
            "content_block_delta" => {
                let (index, ty) = open.as_ref().expect("delta inside a block");
                assert_eq!(v["index"], *index, "{v}");
                let d = &v["delta"];
                match (ty.as_str(), d["type"].as_str()) {
                    ("text", Some("text_delta")) => {
                        reply.text.push_str(d["text"].as_str().unwrap())
                    }
                    ("tool_use", Some("input_json_delta")) => tool
                        .as_mut()
                        .unwrap()
                        .2
                        .push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("delta {other:?} in a {ty} block"),
                }
            }
            "content_block_stop" => {
                let (index, ty) = open.take().expect("stop of an open block");
                assert_eq!(v["index"], index, "{v}");
                if ty == "tool_use" {
                    let (id, name, json) = tool.take().unwrap();
                    let input = if json.is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(&json).expect("input JSON")
                    };
                    reply.tools.push((id, name, input));
                }
            }
            other => panic!("unexpected event {other}: {names:?}"),
        }
    }
    assert!(open.is_none(), "every block stopped");
    let delta = &events[events.len() - 2].1;
    reply.finish = delta["delta"]["stop_reason"].as_str().unwrap().to_owned();
    reply.stop_sequence = delta["delta"]["stop_sequence"].as_str().map(str::to_owned);
    // message_delta.usage is cumulative and overwrites.
    for (k, v) in delta["usage"].as_object().expect("message_delta usage") {
        usage[k] = v.clone();
    }
    anthropic_usage(&mut reply, &usage);
    reply
}

fn hello() -> Value {
    json!([{"role": "user", "content": "hello there"}])
}

#[test]
fn text_model_echo_finish_and_usage_in_all_four_combinations() {
    let stack = stack();
    for combo in ALL {
        for stream in [false, true] {
            let r = combo.send(&stack, &combo.body(hello(), stream, json!({})), &[]);
            let what = format!("{combo:?} stream={stream}");
            assert_eq!(r.text, "Mock reply to: hello there", "{what}");
            assert!(r.tools.is_empty(), "{what}");
            assert_eq!(r.finish, combo.stop(), "{what}");
            // The mock counts words: 2 + one per message in, 5 words out.
            assert_eq!(
                (r.prompt, r.completion, r.cached),
                (3, 5, 0),
                "usage {what}"
            );
            assert_eq!(r.stop_sequence, None, "{what}");
        }
    }
}

#[test]
fn cached_tokens_reported_by_the_mock_reach_the_client() {
    let stack = stack();
    for combo in [OO, AA] {
        assert!(combo.mock_kind);
        for stream in [false, true] {
            let r = combo.send(
                &stack,
                &combo.body(hello(), stream, json!({})),
                &[("x-mock-cached-tokens", "7")],
            );
            // Prompt = uncached 3 + cached 7 in both shapes' terms.
            assert_eq!(
                (r.prompt, r.completion, r.cached),
                (10, 5, 7),
                "{combo:?} stream={stream}"
            );
        }
    }
    // Control headers are never forwarded to non-mock providers.
    for combo in [OA, AO] {
        assert!(!combo.mock_kind);
        let r = combo.send(
            &stack,
            &combo.body(hello(), false, json!({})),
            &[("x-mock-cached-tokens", "7")],
        );
        assert_eq!((r.prompt, r.cached), (3, 0), "{combo:?}");
    }
}

/// Turn 1 with the tool forced; turn 2 hands the result back.
fn tool_turns(combo: Combo, stack: &Stack, stream: bool) {
    let what = format!("{combo:?} stream={stream}");
    let user = json!({"role": "user", "content": "Weather in Paris?"});
    let (tools, forced, auto) = match combo.client {
        Client::OpenAi => (
            json!([{"type": "function", "function": {"name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                               "required": ["city"]}}}]),
            json!({"type": "function", "function": {"name": "get_weather"}}),
            json!("auto"),
        ),
        Client::Anthropic => (
            json!([{"name": "get_weather", "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}]),
            json!({"type": "tool", "name": "get_weather"}),
            json!({"type": "auto"}),
        ),
    };
    let r = combo.send(
        stack,
        &combo.body(
            json!([user]),
            stream,
            json!({"tools": tools, "tool_choice": forced}),
        ),
        &[],
    );
    assert_eq!(r.finish, combo.tool_use(), "{what}");
    assert_eq!(r.text, "", "{what}");
    assert_eq!(r.tools.len(), 1, "{what}");
    let (id, name, args) = r.tools[0].clone();
    assert_eq!(name, "get_weather", "{what}");
    assert_eq!(args, json!({"city": "Paris"}), "{what}");
    assert!(!id.is_empty());
    assert_eq!(r.completion, 8, "{what}");

    let history = match combo.client {
        Client::OpenAi => json!([user,
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": name, "arguments": args.to_string()}}]},
            {"role": "tool", "tool_call_id": id, "content": "18C and sunny"}]),
        Client::Anthropic => json!([user,
            {"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": name, "input": args}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "18C and sunny"}]}]),
    };
    let r = combo.send(
        stack,
        &combo.body(
            history,
            stream,
            json!({"tools": tools, "tool_choice": auto}),
        ),
        &[],
    );
    assert_eq!(r.text, "Tool result received: 18C and sunny", "{what}");
    assert!(r.tools.is_empty(), "{what}");
    assert_eq!(r.finish, combo.stop(), "{what}");
}

#[test]
fn tool_calls_across_two_turns_in_all_four_combinations() {
    let stack = stack();
    for combo in ALL {
        tool_turns(combo, &stack, false);
    }
}

#[test]
fn streamed_tool_calls_across_two_turns_in_all_four_combinations() {
    let stack = stack();
    for combo in ALL {
        tool_turns(combo, &stack, true);
    }
}

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

#[test]
fn images_cross_between_shapes() {
    let stack = stack();
    // An OpenAI data: URL part reaches the Anthropic side as an image.
    for stream in [false, true] {
        let messages = json!([{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}"), "detail": "high"}}]}]);
        let r = OA.send(&stack, &OA.body(messages, stream, json!({})), &[]);
        assert_eq!(r.text, "Mock reply to: what is this [images: 1]");
        assert_eq!(r.finish, "stop");
    }
    // An Anthropic base64 image reaches the OpenAI side.
    for stream in [false, true] {
        let messages = json!([{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "describe it"}]}]);
        let r = AO.send(&stack, &AO.body(messages, stream, json!({})), &[]);
        assert_eq!(r.text, "Mock reply to: describe it [images: 1]");
        assert_eq!(r.finish, "end_turn");
    }
    // Same-shape routes carry images untouched.
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}]}]);
    let r = OO.send(&stack, &OO.body(messages, false, json!({})), &[]);
    assert_eq!(r.text, "Mock reply to: what is this [images: 1]");
    let messages = json!([{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "describe it"}]}]);
    let r = AA.send(&stack, &AA.body(messages, true, json!({})), &[]);
    assert_eq!(r.text, "Mock reply to: describe it [images: 1]");
}

#[test]
fn stop_sequences_cut_the_reply() {
    let stack = stack();
    for combo in ALL {
        for stream in [false, true] {
            let what = format!("{combo:?} stream={stream}");
            let extra = match combo.client {
                Client::OpenAi => json!({"stop": ["there", "never"]}),
                Client::Anthropic => json!({"stop_sequences": ["there", "never"]}),
            };
            let r = combo.send(&stack, &combo.body(hello(), stream, extra), &[]);
            assert_eq!(r.text, "Mock reply to: hello ", "{what}");
            assert_eq!(r.completion, 4, "{what}");
            match (combo.client, combo.mock_kind) {
                (Client::OpenAi, _) => assert_eq!(r.finish, "stop", "{what}"),
                // A → A keeps the matched string.
                (Client::Anthropic, true) => {
                    assert_eq!(r.finish, "stop_sequence", "{what}");
                    assert_eq!(r.stop_sequence.as_deref(), Some("there"), "{what}");
                }
                // OpenAI does not say which string matched (WIRE.md §8: lost).
                (Client::Anthropic, false) => {
                    assert_eq!(r.finish, "end_turn", "{what}");
                    assert_eq!(r.stop_sequence, None, "{what}");
                }
            }
        }
    }
    // A single string `stop` works too.
    let r = OA.send(
        &stack,
        &OA.body(hello(), false, json!({"stop": "hello"})),
        &[],
    );
    assert_eq!(r.text, "Mock reply to: ");
}

#[test]
fn max_tokens_cuts_the_reply_with_length_or_max_tokens() {
    let stack = stack();
    for combo in ALL {
        for stream in [false, true] {
            let what = format!("{combo:?} stream={stream}");
            let r = combo.send(
                &stack,
                &combo.body(hello(), stream, json!({"max_tokens": 2})),
                &[],
            );
            assert_eq!(r.text, "Mock reply", "{what}");
            assert_eq!(r.finish, combo.length(), "{what}");
            assert_eq!(r.completion, 2, "{what}");
        }
    }
    // OpenAI's max_completion_tokens wins over max_tokens.
    for combo in [OO, OA] {
        let r = combo.send(
            &stack,
            &combo.body(
                hello(),
                false,
                json!({"max_tokens": 50, "max_completion_tokens": 3}),
            ),
            &[],
        );
        assert_eq!(r.text, "Mock reply to:", "{combo:?}");
        assert_eq!(r.finish, "length", "{combo:?}");
    }
}

#[test]
fn system_prompts_and_multi_turn_history_translate() {
    let stack = stack();
    // The mock counts system words into the prompt: "Be brief." = 2 words.
    for combo in ALL {
        let (messages, extra) = match combo.client {
            Client::OpenAi => (
                json!([{"role": "system", "content": "Be brief."},
                       {"role": "user", "content": "hi"},
                       {"role": "assistant", "content": "Hello!"},
                       {"role": "user", "content": "hello there"}]),
                json!({}),
            ),
            Client::Anthropic => (
                json!([{"role": "user", "content": "hi"},
                       {"role": "assistant", "content": "Hello!"},
                       {"role": "user", "content": "hello there"}]),
                json!({"system": "Be brief."}),
            ),
        };
        let r = combo.send(&stack, &combo.body(messages, false, extra), &[]);
        assert_eq!(r.text, "Mock reply to: hello there", "{combo:?}");
        // Words: system 2 (+1 as a message when it stays an OpenAI message),
        // hi 1, Hello! 1, hello there 2, plus one per message.
        let expected = match (combo.client, combo.mock_kind) {
            (Client::OpenAi, true) => 2 + 1 + 1 + 2 + 4,
            // O → A: system leaves `messages`.
            (Client::OpenAi, false) => 2 + 1 + 1 + 2 + 3,
            // A → O: system becomes a leading message.
            (Client::Anthropic, false) => 2 + 1 + 1 + 2 + 4,
            (Client::Anthropic, true) => 2 + 1 + 1 + 2 + 3,
        };
        assert_eq!(r.prompt, expected, "{combo:?}");
    }
}

#[test]
fn unknown_fields_pass_on_same_shape_routes_and_are_dropped_when_translating() {
    let stack = stack();
    for combo in ALL {
        for stream in [false, true] {
            let extra = json!({
                "x_vendor_extension": {"deep": [1, 2, {"k": null}]},
                "service_tier": "auto",
                "metadata": {"user_id": "u-1"},
                "temperature": 1.5,
                "top_p": 0.9,
            });
            let r = combo.send(&stack, &combo.body(hello(), stream, extra), &[]);
            assert_eq!(r.text, "Mock reply to: hello there", "{combo:?}");
        }
    }
    // Same-shape bodies are forwarded byte for byte apart from the model:
    // odd spacing and key order survive (the mock would reject invalid JSON).
    let raw = br#"{ "messages" : [ {"role":"user","content":"hello there"} ] , "zz_unknown" : [1,2,3], "model":"mock:gpt-4o-mini" }"#;
    let r = stack.post_raw(
        "/v1/chat/completions",
        raw,
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "mock:gpt-4o-mini");
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Mock reply to: hello there"
    );
}

#[test]
fn model_names_without_rewrite_are_echoed_as_sent() {
    // A bare name goes to the default provider (mock) under the same name.
    let stack = stack();
    let r = stack.post(
        "/v1/chat/completions",
        &json!({"model": "gpt-4o-mini", "messages": hello()}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "gpt-4o-mini");
    assert_eq!(r.header("x-sluice-provider"), Some("mock"));
    assert_eq!(r.header("x-sluice-model"), Some("gpt-4o-mini"));
}

#[test]
fn stream_in_flight_survives_translator_removal_and_requests_recover_after_reinstall() {
    let stack = Stack::start(Options {
        plugins: &[TRANSLATOR],
        // The `ant:` provider gets no control headers, so slow the mock.
        mock_args: &["--chunk-delay-ms", "40"],
        ..Options::default()
    });
    let url = format!("{}/v1/chat/completions", stack.base);
    let words = "one two three four five six seven eight nine ten";
    let body = OA.body(json!([{"role": "user", "content": words}]), true, json!({}));
    let mut removed = false;
    let mut text = String::new();
    let mut done = false;
    let mut finish = None;
    let mut after_removal = 0;
    let Streamed { status, clean, .. } = stream_events(&url, &body, &[], |event, data| {
        assert!(event.is_empty(), "no event: lines for OpenAI clients");
        if !removed {
            std::fs::remove_file(stack.plugins_dir.join(TRANSLATOR)).unwrap();
            removed = true;
        } else {
            after_removal += 1;
        }
        if data == "[DONE]" {
            done = true;
            return;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        assert!(v.get("error").is_none(), "{v}");
        assert_eq!(v["model"], OA.model);
        if let Some(c) = v["choices"].get(0) {
            text.push_str(c["delta"]["content"].as_str().unwrap_or_default());
            if let Some(f) = c["finish_reason"].as_str() {
                finish = Some(f.to_owned());
            }
        }
    });
    assert_eq!((status, clean, done), (200, true, true));
    assert_eq!(text, format!("Mock reply to: {words}"));
    assert_eq!(finish.as_deref(), Some("stop"));
    assert!(after_removal >= 10, "the stream straddled the removal");

    // New translated requests fail in the client's envelope…
    let fails = |r: &Resp| r.status == 503;
    assert!(
        eventually(STATE_WAIT, || fails(&stack.post(
            OA.path(),
            &OA.body(hello(), false, json!({})),
            &[]
        ))),
        "translated requests still served after the translator was removed"
    );
    let r = stack.post(OA.path(), &OA.body(hello(), false, json!({})), &[]);
    assert_eq!(r.status, 503);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "translator_unavailable", "{e}");
    assert_eq!(e["type"], "service_unavailable_error", "{e}");
    assert!(e["message"].as_str().unwrap().contains("openai->anthropic"));
    let r = stack.post(
        AO.path(),
        &AO.body(hello(), false, json!({})),
        &[("anthropic-version", "2023-06-01")],
    );
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "overloaded_error", "{v}");
    // …while same-shape routes keep working.
    let r = OO.send(&stack, &OO.body(hello(), false, json!({})), &[]);
    assert_eq!(r.text, "Mock reply to: hello there");

    // Putting the file back brings translation back.
    stack.install(TRANSLATOR, TRANSLATOR);
    assert!(eventually(STATE_WAIT, || stack
        .post(OA.path(), &OA.body(hello(), false, json!({})), &[])
        .status
        == 200));
    for combo in [OA, AO] {
        for stream in [false, true] {
            let r = combo.send(&stack, &combo.body(hello(), stream, json!({})), &[]);
            assert_eq!(r.text, "Mock reply to: hello there");
        }
    }
}
