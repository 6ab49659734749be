//! Every way a request fails, in both error envelopes, with the right
//! status: intake refusals, routing misses, provider errors passed through
//! or re-enveloped, timeouts, refused connections, mid-stream failures and
//! translator refusals.

use serde_json::{Value, json};

use crate::harness::*;

const TRANSLATOR: &str = "translator_openai_anthropic.wasm";

fn openai_chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

fn anthropic_chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 64,
           "messages": [{"role": "user", "content": "hello there"}]})
}

#[test]
fn malformed_and_incomplete_requests_are_400_in_both_envelopes() {
    let stack = Stack::start(Options::default());
    let json_ct = ("content-type", "application/json");

    // Not JSON, not an object, trailing garbage, duplicate keys.
    for raw in [
        &b"{not json"[..],
        b"[1, 2]",
        b"{\"model\": \"mock:m\"} trailing",
        b"{\"model\": \"a\", \"model\": \"b\", \"messages\": []}",
    ] {
        let r = stack.post_raw(OPENAI, raw, &[json_ct]);
        openai_error(&r, 400, "invalid_request_error", "invalid_request_error");
        let r = stack.post_raw(ANTHROPIC, raw, &[json_ct, AV]);
        anthropic_error(&r, 400, "invalid_request_error");
    }
    // An empty body.
    let r = stack.post_raw(OPENAI, b"", &[json_ct]);
    openai_error(&r, 400, "invalid_request_error", "invalid_request_error");

    // Missing or empty required fields name the field in `param`.
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (
            json!({"model": "", "messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (json!({"model": "mock:gpt-4o-mini"}), "messages"),
        (
            json!({"model": "mock:gpt-4o-mini", "messages": []}),
            "messages",
        ),
        (
            json!({"model": "mock:gpt-4o-mini", "messages": "hi"}),
            "messages",
        ),
        (
            json!({"model": 5, "messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (
            json!({"model": "mock:gpt-4o-mini", "stream": "yes",
                   "messages": [{"role": "user", "content": "hi"}]}),
            "stream",
        ),
    ];
    for (body, param) in &cases {
        let r = stack.post(OPENAI, body, &[]);
        let e = openai_error(&r, 400, "invalid_request_error", "invalid_request_error");
        assert_eq!(e["param"], *param, "{body}");
        let mut body = body.clone();
        body["max_tokens"] = json!(16);
        let r = stack.post(ANTHROPIC, &body, &[AV]);
        anthropic_error(&r, 400, "invalid_request_error");
    }

    // Anthropic requires max_tokens ≥ 1; OpenAI does not require it.
    let mut body = anthropic_chat("mock:claude-sonnet-4-6");
    body.as_object_mut().unwrap().remove("max_tokens");
    let v = anthropic_error(
        &stack.post(ANTHROPIC, &body, &[AV]),
        400,
        "invalid_request_error",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens"),
        "{v}"
    );
    body["max_tokens"] = json!(0);
    anthropic_error(
        &stack.post(ANTHROPIC, &body, &[AV]),
        400,
        "invalid_request_error",
    );
    let r = stack.post(OPENAI, &openai_chat("mock:gpt-4o-mini"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn unknown_models_are_404_model_not_found() {
    let stack = Stack::start(Options {
        no_default_provider: true,
        ..Options::default()
    });
    // An unknown provider prefix, and a bare name whose shape default
    // (`openai:` / `anthropic:`) is not configured.
    for model in ["nope:gpt-4o", "gpt-4o"] {
        let r = stack.post(OPENAI, &openai_chat(model), &[]);
        let e = openai_error(&r, 404, "model_not_found", "invalid_request_error");
        assert_eq!(e["param"], "model");
        assert!(e["message"].as_str().unwrap().contains(model), "{e}");
    }
    for model in ["nope:claude", "claude-sonnet-4-6"] {
        let r = stack.post(ANTHROPIC, &anthropic_chat(model), &[AV]);
        anthropic_error(&r, 404, "not_found_error");
    }
    // Known providers still answer.
    let r = stack.post(OPENAI, &openai_chat("mock:gpt-4o-mini"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn oversized_bodies_are_413() {
    let stack = Stack::start(Options {
        config: "\n[limits]\nmax_body_bytes = 1000\n",
        ..Options::default()
    });
    let big = "word ".repeat(400);
    let mut body = openai_chat("mock:gpt-4o-mini");
    body["messages"][0]["content"] = json!(big);
    let r = stack.post(OPENAI, &body, &[]);
    openai_error(&r, 413, "request_too_large", "invalid_request_error");
    let mut body = anthropic_chat("mock:claude-sonnet-4-6");
    body["messages"][0]["content"] = json!(big);
    let r = stack.post(ANTHROPIC, &body, &[AV]);
    anthropic_error(&r, 413, "request_too_large");
    // Just under the limit is fine.
    let r = stack.post(OPENAI, &openai_chat("mock:gpt-4o-mini"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn wrong_media_type_method_and_path() {
    let stack = Stack::start(Options::default());
    let body = serde_json::to_vec(&openai_chat("mock:gpt-4o-mini")).unwrap();

    // 415: not JSON by content type.
    let r = stack.post_raw(OPENAI, &body, &[("content-type", "text/plain")]);
    let e = openai_error(&r, 415, "unsupported_media_type", "invalid_request_error");
    assert!(e["message"].as_str().unwrap().contains("text/plain"));
    let body_a = serde_json::to_vec(&anthropic_chat("mock:claude-sonnet-4-6")).unwrap();
    let r = stack.post_raw(
        ANTHROPIC,
        &body_a,
        &[("content-type", "application/x-www-form-urlencoded"), AV],
    );
    anthropic_error(&r, 415, "invalid_request_error");
    // `+json` and parameters are fine.
    let r = stack.post_raw(
        OPENAI,
        &body,
        &[("content-type", "application/json; charset=utf-8")],
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // 405: the chat paths take POST only, answered in the path's shape.
    for method in ["GET", "PUT", "DELETE"] {
        let r = raw_request(method, &format!("{}{OPENAI}", stack.base), None, &[]);
        openai_error(&r, 405, "method_not_allowed", "invalid_request_error");
        let r = raw_request(method, &format!("{}{ANTHROPIC}", stack.base), None, &[]);
        anthropic_error(&r, 405, "invalid_request_error");
    }

    // 404: unknown paths; Anthropic-looking clients get Anthropic's envelope.
    let r = stack.post_raw("/v1/nope", &body, &[("content-type", "application/json")]);
    let e = openai_error(&r, 404, "not_found", "invalid_request_error");
    assert!(e["message"].as_str().unwrap().contains("/v1/nope"));
    let r = stack.post_raw("/v2/messages", &body_a, &[AV]);
    anthropic_error(&r, 404, "not_found_error");
    let r = raw_request(
        "GET",
        &format!("{}/", stack.base),
        None,
        &[("x-api-key", "k")],
    );
    anthropic_error(&r, 404, "not_found_error");
}

#[test]
fn upstream_errors_pass_through_on_same_shape_routes() {
    // A provider that refuses the gateway's credential is taken out of
    // routing at once (the availability breaker): 401 gets providers of
    // its own.
    let stack = Stack::start(Options {
        config: r#"
[[providers]]
name = "m401"
kind = "mock"
base_url = "http://127.0.0.1:{mock_port}/v1"

[[providers]]
name = "a401"
kind = "mock"
base_url = "http://127.0.0.1:{mock_port}/v1"
"#,
        ..Options::default()
    });
    for status in [400u16, 401, 404, 429, 500, 503] {
        let s = status.to_string();
        let h = [("x-mock-error", s.as_str())];
        let (oa, an) = if status == 401 {
            ("m401", "a401")
        } else {
            ("mock", "mock")
        };
        // The provider's body and status, untouched.
        let r = stack.post(OPENAI, &openai_chat(&format!("{oa}:gpt-4o-mini")), &h);
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(
            v["error"]["message"],
            format!("mock injected error {status}"),
            "{v}"
        );
        assert!(v["error"].get("param").is_some(), "{v}");
        assert_eq!(r.header("x-sluice-provider"), Some(oa));
        if status == 429 {
            assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
            assert_eq!(r.header("retry-after"), Some("1"));
        }

        let r = stack.post(
            ANTHROPIC,
            &anthropic_chat(&format!("{an}:claude-sonnet-4-6")),
            &[h[0], AV],
        );
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["request_id"], "req_mock", "the provider's own body: {v}");
        assert_eq!(
            v["error"]["message"],
            format!("mock injected error {status}")
        );
        if status == 429 {
            assert_eq!(v["error"]["type"], "rate_limit_error");
            assert_eq!(r.header("retry-after"), Some("1"));
        }
    }
    // Anthropic's own overloaded status.
    let r = stack.post(
        ANTHROPIC,
        &anthropic_chat("mock:claude-sonnet-4-6"),
        &[("x-mock-error", "529"), AV],
    );
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    // Streaming requests that fail before the stream starts get a plain
    // error response too.
    let mut body = openai_chat("mock:gpt-4o-mini");
    body["stream"] = json!(true);
    let r = stack.post(OPENAI, &body, &[("x-mock-error", "500")]);
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["message"], "mock injected error 500");
}

#[test]
fn translated_upstream_errors_are_re_enveloped_for_the_client() {
    // No request the translator produces is one the mock refuses with a 400
    // (it checks only that `model` and `messages` exist, which the
    // translator always writes), and control headers never reach
    // non-mock providers. So reach the mock through a base URL whose path it
    // has no route for: `/v1?` + `/messages` asks for `/v1`, and the mock
    // answers 404 with an OpenAI-shaped body, whatever the provider's kind.
    let stack = Stack::start(Options {
        plugins: &[TRANSLATOR],
        config: r#"
[[providers]]
name = "ant404"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}/v1?"

[[providers]]
name = "oai404"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{mock_port}/v1?"
"#,
        ..Options::default()
    });
    let r = stack.post(OPENAI, &openai_chat("ant404:claude-sonnet-4-6"), &[]);
    let e = openai_error(&r, 404, "model_not_found", "invalid_request_error");
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("ant404") && msg.contains("mock has no route"),
        "{e}"
    );
    assert_eq!(r.header("x-sluice-provider"), Some("ant404"));

    let r = stack.post(ANTHROPIC, &anthropic_chat("oai404:gpt-4o-mini"), &[AV]);
    let v = anthropic_error(&r, 404, "not_found_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mock has no route"),
        "{v}"
    );
    // A streaming request fails the same way, before any stream starts.
    let mut body = openai_chat("ant404:claude-sonnet-4-6");
    body["stream"] = json!(true);
    let r = stack.post(OPENAI, &body, &[]);
    openai_error(&r, 404, "model_not_found", "invalid_request_error");
}

#[test]
fn upstream_timeouts_are_504_and_refused_connections_502() {
    let closed = free_port();
    let config = format!(
        r#"
[[providers]]
name = "slow"
kind = "mock"
base_url = "http://127.0.0.1:{{mock_port}}/v1"
timeouts = {{ first_byte_ms = 200, idle_ms = 300 }}

[[providers]]
name = "slow2"
kind = "mock"
base_url = "http://127.0.0.1:{{mock_port}}/v1"
timeouts = {{ first_byte_ms = 200, idle_ms = 300 }}

[[providers]]
name = "slow3"
kind = "mock"
base_url = "http://127.0.0.1:{{mock_port}}/v1"
timeouts = {{ first_byte_ms = 200, idle_ms = 300 }}

[[providers]]
name = "dead"
kind = "mock"
base_url = "http://127.0.0.1:{closed}/v1"
timeouts = {{ connect_ms = 500 }}
"#
    );
    let stack = Stack::start(Options {
        config: &config,
        ..Options::default()
    });
    let slow = [("x-mock-latency-ms", "2000")];
    // Two timeouts within 30 s take a provider out of routing (the
    // availability breaker), so each case below has a provider of its own.
    let r = stack.post(OPENAI, &openai_chat("slow:gpt-4o-mini"), &slow);
    let e = openai_error(&r, 504, "upstream_timeout", "server_error");
    assert!(e["message"].as_str().unwrap().contains("slow"), "{e}");
    let r = stack.post(
        ANTHROPIC,
        &anthropic_chat("slow2:claude-sonnet-4-6"),
        &[slow[0], AV],
    );
    anthropic_error(&r, 504, "timeout_error");
    // Streaming requests time out on the head the same way.
    let mut stream = openai_chat("slow3:gpt-4o-mini");
    stream["stream"] = json!(true);
    let r = stack.post(OPENAI, &stream, &slow);
    openai_error(&r, 504, "upstream_timeout", "server_error");
    // Fast enough is fine.
    let r = stack.post(
        OPENAI,
        &openai_chat("slow3:gpt-4o-mini"),
        &[("x-mock-latency-ms", "10")],
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Idle between stream chunks: the head went out, so the failure is the
    // stream's last event, in the client's format.
    let mut body = openai_chat("slow:gpt-4o-mini");
    body["stream"] = json!(true);
    let r = stack.post(OPENAI, &body, &[("x-mock-chunk-delay-ms", "1500")]);
    assert_eq!(r.status, 200);
    let events = r.events();
    let (name, last) = events.last().expect("events").clone();
    assert_eq!(name, None);
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["error"]["code"], "upstream_timeout", "{v}");
    assert!(!r.text().contains("[DONE]"));

    // Nothing listens on the dead provider's port.
    let r = stack.post(OPENAI, &openai_chat("dead:gpt-4o-mini"), &[]);
    let e = openai_error(&r, 502, "upstream_unavailable", "server_error");
    assert!(e["message"].as_str().unwrap().contains("dead"), "{e}");
    // Errors after routing still name the upstream that was tried.
    assert_eq!(r.header("x-sluice-provider"), Some("dead"));
    assert_eq!(r.header("x-sluice-model"), Some("gpt-4o-mini"));
    let r = stack.post(ANTHROPIC, &anthropic_chat("dead:claude"), &[AV]);
    anthropic_error(&r, 502, "api_error");
    let r = stack.post(OPENAI, &body.clone(), &[]);
    assert_eq!(r.status, 200, "other providers unaffected");
}

/// A streaming request to `path` with `headers`, read whole. A hung stream
/// fails through the client's own 30 s timeout (status 0), not a clock.
fn stream_to(stack: &Stack, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
    let r = stack.post(path, body, headers);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    );
    // Chunked, so a cut stream is visible at the HTTP level too.
    assert_eq!(
        r.header("transfer-encoding"),
        Some("chunked"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("content-length"), None);
    r
}

#[test]
fn mid_stream_failures_end_with_an_error_event_in_the_client_format() {
    let stack = Stack::start(Options::default());
    let mut o = openai_chat("mock:gpt-4o-mini");
    o["stream"] = json!(true);
    o["messages"][0]["content"] = json!("one two three four five six seven eight");
    let mut a = anthropic_chat("mock:claude-sonnet-4-6");
    a["stream"] = json!(true);
    a["messages"] = o["messages"].clone();

    for fault in ["midstream", "drop", "truncate"] {
        let h = [("x-mock-error", fault)];
        // OpenAI: some content, then `data: {"error":…}` and no [DONE].
        let r = stream_to(&stack, OPENAI, &o, &h);
        let text = r.text();
        assert!(!text.contains("event:"), "{text}");
        assert!(!text.contains("[DONE]"), "{fault}: {text}");
        let events = r.events();
        assert!(events.len() >= 2, "{fault}: {text}");
        let first: Value = serde_json::from_str(&events[0].1).unwrap();
        assert_eq!(first["model"], "mock:gpt-4o-mini");
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        let (_, last) = events.last().unwrap();
        let v: Value = serde_json::from_str(last).unwrap();
        let e = v["error"]
            .as_object()
            .unwrap_or_else(|| panic!("{fault}: {text}"));
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(e["type"].is_string(), "{v}");
        if fault != "midstream" {
            assert_eq!(v["error"]["code"], "upstream_error", "{v}");
            assert_eq!(v["error"]["type"], "server_error", "{v}");
        }
        // Only the last event is the error.
        for (_, d) in &events[..events.len() - 1] {
            assert!(!d.contains("\"error\""), "{fault}: {text}");
        }

        // Anthropic: `event: error` with the error envelope, no message_stop.
        let r = stream_to(&stack, ANTHROPIC, &a, &[h[0], AV]);
        let text = r.text();
        let events = r.events();
        assert!(
            events.iter().all(|(n, _)| n.is_some()),
            "every event named: {text}"
        );
        assert_eq!(events[0].0.as_deref(), Some("message_start"), "{text}");
        assert!(
            !events
                .iter()
                .any(|(n, _)| n.as_deref() == Some("message_stop")),
            "{fault}: {text}"
        );
        let (name, last) = events.last().unwrap();
        assert_eq!(name.as_deref(), Some("error"), "{fault}: {text}");
        let v: Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        let ty = v["error"]["type"].as_str().unwrap();
        match fault {
            "midstream" => assert_eq!(ty, "overloaded_error", "{v}"),
            _ => assert_eq!(ty, "api_error", "{v}"),
        }
    }
    // The proxy is fine afterwards.
    let r = stack.post(OPENAI, &openai_chat("mock:gpt-4o-mini"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn translator_refusals_and_absence() {
    let stack = Stack::start(Options {
        plugins: &[TRANSLATOR],
        ..Options::default()
    });
    let mut body = openai_chat("ant:claude-sonnet-4-6");
    body["n"] = json!(2);
    let r = stack.post(OPENAI, &body, &[]);
    let e = openai_error(&r, 400, "invalid_request_error", "invalid_request_error");
    assert_eq!(e["param"], "n", "{e}");
    // n = 1 is fine.
    body["n"] = json!(1);
    assert_eq!(stack.post(OPENAI, &body, &[]).status, 200);

    for extra in [json!({"logprobs": true}), json!({"top_logprobs": 2})] {
        let mut body = openai_chat("ant:claude-sonnet-4-6");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = stack.post(OPENAI, &body, &[]);
        let e = openai_error(&r, 400, "unsupported_parameter", "invalid_request_error");
        assert_eq!(e["param"], "logprobs", "{e}");
    }
    // Same-shape routes carry n and logprobs to the provider as sent.
    let mut body = openai_chat("mock:gpt-4o-mini");
    body["n"] = json!(2);
    body["logprobs"] = json!(true);
    assert_eq!(stack.post(OPENAI, &body, &[]).status, 200);

    // A → O refusals come back in the Anthropic envelope: more than four
    // stop sequences have no OpenAI form.
    let mut body = anthropic_chat("oai:gpt-4o-mini");
    body["stop_sequences"] = json!(["a", "b", "c", "d", "e"]);
    let r = stack.post(ANTHROPIC, &body, &[AV]);
    anthropic_error(&r, 400, "invalid_request_error");
    // Bad tool-call arguments cannot become an Anthropic `input`.
    let body = json!({"model": "ant:claude-sonnet-4-6", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "f", "arguments": "{not json"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"}]});
    let r = stack.post(OPENAI, &body, &[]);
    let e = openai_error(&r, 400, "invalid_request_error", "invalid_request_error");
    assert_eq!(
        e["param"], "messages[1].tool_calls[0].function.arguments",
        "{e}"
    );
}

#[test]
fn missing_translator_is_503_translator_unavailable() {
    let stack = Stack::start(Options::default());
    let r = stack.post(OPENAI, &openai_chat("ant:claude-sonnet-4-6"), &[]);
    let e = openai_error(
        &r,
        503,
        "translator_unavailable",
        "service_unavailable_error",
    );
    assert!(e["message"].as_str().unwrap().contains("openai->anthropic"));
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = stack.post(ANTHROPIC, &anthropic_chat("oai:gpt-4o-mini"), &[AV]);
    let v = anthropic_error(&r, 503, "overloaded_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic->openai")
    );
}
