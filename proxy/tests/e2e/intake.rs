//! Intake that is linear and bounded: every input gets an answer in the
//! caller's envelope, fast, whatever its shape or pace.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;

use crate::harness::*;

#[test]
fn a_model_with_control_characters_or_too_long_is_400_in_both_envelopes() {
    let stack = Stack::start(Options::default());
    let long = "m".repeat(2 << 20);
    for model in [
        "gpt\nx",
        "gpt\r\nx-injected: 1",
        "a\u{0}b",
        "tab\there",
        "\u{7f}",
        &long,
    ] {
        let r = stack.post(
            OPENAI,
            &json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            &[],
        );
        let e = openai_error(&r, 400, "invalid_request_error", "invalid_request_error");
        assert_eq!(e["param"], "model", "{e}");
        assert!(r.header("x-sluice-model").is_none());
        assert!(r.header("x-injected").is_none());
        let a = stack.post(
            ANTHROPIC,
            &json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
            &[AV],
        );
        let v = anthropic_error(&a, 400, "invalid_request_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("model"));
        // Nothing of a 2 MB model is echoed back.
        assert!(a.body.len() < 1000 && r.body.len() < 1000);
    }
}

/// A body of `n` bytes or so: `prefix`, then `unit` repeated, then `suffix`.
fn body_of(n: usize, prefix: &str, unit: &str, suffix: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(n + 64);
    b.extend_from_slice(prefix.as_bytes());
    let mut i = 0;
    while b.len() + unit.len() + suffix.len() + 16 < n {
        b.extend_from_slice(unit.replace("{i}", &i.to_string()).as_bytes());
        i += 1;
    }
    b.extend_from_slice(suffix.as_bytes());
    b
}

#[test]
fn ten_mib_of_keys_or_of_tiny_elements_is_answered_in_milliseconds() {
    let stack = Stack::start(Options::default());
    let limit = 10 << 20;
    // ~800k distinct top-level keys, then a missing `messages`: the whole
    // object must be read (and checked for duplicates) to say so.
    let keys = body_of(limit, r#"{"model":"mock:base""#, r#","k{i}":0"#, "}");
    // ~2.6M tiny array elements in `messages`, and no `model`.
    let elements = body_of(limit, r#"{"messages":["#, "{},", "{}]}");
    for (what, body, param) in [
        ("keys", &keys, "messages"),
        ("elements", &elements, "model"),
    ] {
        for (path, headers) in [(OPENAI, vec![]), (ANTHROPIC, vec![AV])] {
            let mut h = vec![("content-type", "application/json")];
            h.extend(headers);
            let started = Instant::now();
            let r = stack.post_raw(path, body, &h);
            let took = started.elapsed();
            assert_eq!(r.status, 400, "{what}: {}", r.text());
            assert!(r.text().contains(param), "{what}: {}", r.text());
            eprintln!(
                "{what} on {path}: {} bytes answered in {took:?}",
                body.len()
            );
            assert!(took < Duration::from_secs(2), "{what}: {took:?}");
        }
    }
    assert_eq!(stack.admin_get("/healthz").status, 200);
}

#[test]
fn duplicate_keys_are_refused_in_linear_time() {
    let stack = Stack::start(Options::default());
    let mut body = body_of(4 << 20, "{", r#""k{i}":0,"#, "");
    body.extend_from_slice(br#""k7":1,"model":"mock:base","messages":[{}]}"#);
    let started = Instant::now();
    let r = stack.post_raw(OPENAI, &body, &[("content-type", "application/json")]);
    assert!(started.elapsed() < Duration::from_secs(2));
    let e = openai_error(&r, 400, "invalid_request_error", "invalid_request_error");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("duplicate field `k7`"),
        "{e}"
    );
}

/// Connect, send `head`, and return the socket.
fn open(stack: &Stack, head: &str) -> TcpStream {
    let mut sock = TcpStream::connect(("127.0.0.1", stack.proxy_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sock.write_all(head.as_bytes()).unwrap();
    sock
}

/// Read until `needle` appears (or the peer closes).
fn read_until(sock: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Everything the proxy sends until it closes the connection.
fn read_to_close(sock: &mut TcpStream) -> String {
    let mut got = Vec::new();
    sock.read_to_end(&mut got)
        .expect("the proxy closes the connection");
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let stack = Stack::start(Options::default());
    let body =
        json!({"model": "mock:base", "messages": [{"role": "user", "content": "after continue"}]})
            .to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut sock = open(&stack, &head);
    let started = Instant::now();
    let interim = read_until(&mut sock, "\r\n\r\n");
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "curl waits 1 s otherwise"
    );
    sock.write_all(body.as_bytes()).unwrap();
    let rest = read_until(&mut sock, "after continue");
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");
    assert!(rest.contains("Mock reply to: after continue"), "{rest}");

    // A declared size over the limit is refused at once, without a 100.
    let head = "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 99999999\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n";
    let mut sock = open(&stack, head);
    let answer = read_until(&mut sock, "request_too_large");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains("\"type\":\"error\""),
        "Anthropic envelope: {answer}"
    );
}

#[test]
fn a_body_dripped_slower_than_its_deadline_gets_408() {
    let stack = Stack::start(Options {
        // Each gap (100 ms) is well inside the read timeout; the whole body
        // is not inside the total deadline.
        config: "[limits]\nbody_read_timeout_ms = 5000\nbody_deadline_ms = 700\n",
        ..Options::default()
    });
    let body = json!({"model": "mock:base", "messages": [{"role": "user", "content": "drip"}]})
        .to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut sock = open(&stack, &head);
    let started = Instant::now();
    let mut answered = String::new();
    sock.set_nonblocking(true).unwrap();
    for b in body.bytes() {
        if sock.write_all(&[b]).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.read(&mut buf)
            && n > 0
        {
            answered = String::from_utf8_lossy(&buf[..n]).into_owned();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    sock.set_nonblocking(false).unwrap();
    if answered.is_empty() {
        answered = read_until(&mut sock, "request_timeout");
    }
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(answered.contains("request_timeout"), "{answered}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_http2_body_that_never_ends_gets_408_at_its_deadline() {
    let tc = TestCert::new(&["localhost"]);
    let stack = Stack::start(Options {
        args: &["--tls-cert", &tc.cert, "--tls-key", &tc.key],
        config: "[limits]\nbody_deadline_ms = 700\n",
        ..Options::default()
    });
    let config = tc.client_config(&[b"h2"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let (status, body) = rt.block_on(async {
        let mut client = h2_connect(stack.proxy_port, config).await;
        let req = http::Request::builder()
            .method("POST")
            .uri("https://localhost/v1/chat/completions")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let (resp, mut send) = client.send_request(req, false).unwrap();
        // Part of the body, then nothing, ever.
        send.send_data(Bytes::from_static(br#"{"model":"mock:base","#), false)
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), resp)
            .await
            .expect("an answer, not a hang")
            .unwrap();
        let status = resp.status().as_u16();
        let mut recv = resp.into_body();
        let mut out = Vec::new();
        while let Some(Ok(chunk)) = recv.data().await {
            out.extend_from_slice(&chunk);
        }
        drop(send);
        (status, out)
    });
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("request_timeout"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn pipelined_requests_are_each_answered_in_order() {
    let stack = Stack::start(Options::default());
    let chat = |word: &str| {
        let body = json!({"model": "mock:base", "messages": [{"role": "user", "content": word}]})
            .to_string();
        format!(
            "POST {OPENAI} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // Three requests in one write, the last closing the connection; one
    // refused (no model) in the middle does not stop the next.
    let bad = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    let last = chat("third").replacen("Host: x\r\n", "Host: x\r\nconnection: close\r\n", 1);
    let mut sock = open(&stack, &format!("{}{bad}{last}", chat("first")));
    let got = read_to_close(&mut sock);
    let statuses: Vec<&str> = got
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &got[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "400", "200"], "{got}");
    let first = got.find("Mock reply to: first").expect("first answer");
    let third = got.find("Mock reply to: third").expect("third answer");
    assert!(first < third);
}

#[test]
fn a_malformed_chunked_body_is_400_without_internal_detail() {
    let stack = Stack::start(Options::default());
    let mut sock = open(
        &stack,
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    );
    let got = read_to_close(&mut sock);
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.contains("\"invalid_request_error\""), "{got}");
    assert!(got.contains("malformed chunked"), "{got}");
    assert!(
        !got.contains("InvalidChunk") && !got.contains("context:"),
        "{got}"
    );
}

#[test]
fn a_model_beyond_ascii_is_served_but_never_echoed_in_a_header() {
    let stack = Stack::start(Options::default());
    for model in ["mock:a\u{202e}b", "mock:\u{feff}x", "mock:caf\u{e9}"] {
        let r = stack.post(
            OPENAI,
            &json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("x-sluice-model").is_none(), "{model:?}");
        assert_eq!(r.json()["model"], model);
    }
    let r = stack.post(
        OPENAI,
        &json!({"model": "mock:plain-1", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    );
    assert_eq!(r.header("x-sluice-model"), Some("plain-1"));
}

#[test]
fn a_body_refused_unread_closes_the_connection_instead_of_draining_it() {
    let stack = Stack::start(Options::default());
    // 413 from Content-Length alone: the 20 MiB are never sent, and Sluice
    // must not wait for them.
    let mut sock = open(
        &stack,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 20971520\r\n\r\n{\"model\":",
    );
    let started = Instant::now();
    let got = read_to_close(&mut sock);
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // A request that was read whole keeps its connection.
    let body =
        json!({"model": "mock:base", "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let mut sock = open(
        &stack,
        &format!(
            "POST {OPENAI} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    let got = read_until(&mut sock, "Mock reply to: hi");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        !got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
}
