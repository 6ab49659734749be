//! The exchange with the provider: a client that leaves stops it, a reader
//! that stalls is cut off, a pooled connection the provider dropped is
//! retried on a fresh one, and a stream cut short is told apart from a
//! finished one by its last event.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::*;

fn abandoned(stack: &Stack, stage: &str) -> f64 {
    metric(
        &stack.metrics(),
        &format!("sluice_requests_abandoned_total{{stage=\"{stage}\"}}"),
    )
}

fn raw_post(stack: &Stack, body: &str, extra_headers: &str) -> TcpStream {
    let mut sock = TcpStream::connect(("127.0.0.1", stack.proxy_port)).unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).unwrap();
    sock
}

#[test]
fn a_client_that_leaves_while_the_provider_thinks_stops_the_exchange() {
    let stack = Stack::start(Options::default());
    let body = json!({"model": "mock:base", "messages": [{"role": "user", "content": "slow"}]})
        .to_string();
    let sock = raw_post(&stack, &body, "x-mock-latency-ms: 10000\r\n");
    let started = Instant::now();
    sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(sock);
    assert!(
        eventually(Duration::from_secs(5), || abandoned(&stack, "waiting")
            == 1.0),
        "{}",
        stack.proxy.log_text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not after the provider's 10 s"
    );
    assert!(stack.proxy.log_text().contains("client went away"));
    // Everyone else is served as before.
    let r = stack.post(
        OPENAI,
        &json!({"model": "mock:base", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_stream_reader_that_stops_reading_is_cut_off() {
    let stack = Stack::start(Options {
        config: "[limits]\nclient_write_timeout_ms = 500\n",
        ..Options::default()
    });
    // A reply of 300k words is tens of MB of events: more than loopback
    // socket buffers hold.
    let words = vec!["w"; 300_000].join(" ");
    let body = json!({"model": "mock:base", "stream": true,
        "messages": [{"role": "user", "content": words}]})
    .to_string();
    let mut sock = raw_post(&stack, &body, "");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = [0u8; 64];
    let n = sock.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    // ... and never read again.
    assert!(
        eventually(Duration::from_secs(30), || abandoned(&stack, "writing")
            >= 1.0),
        "{}",
        stack.proxy.log_text()
    );
    let r = stack.post(
        OPENAI,
        &json!({"model": "mock:base", "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    );
    assert_eq!(r.status, 200);
    drop(sock);
}

#[test]
fn a_pooled_connection_the_provider_dropped_is_retried_on_a_fresh_one() {
    let stack = Stack::start(Options::default());
    let body = json!({"model": "mock:base", "messages": [{"role": "user", "content": "hi"}]});
    // The first request leaves a kept-alive connection in the pool.
    assert_eq!(stack.post(OPENAI, &body, &[]).status, 200);
    // The provider reads the next request on it and closes without a byte
    // of answer; the request is sent again on a new connection.
    let r = stack.post(OPENAI, &body, &[("x-mock-hangup-once", "t1")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Mock reply to: hi"
    );
    let mock_log = stack.mock.log_text();
    assert_eq!(mock_log.matches("mock hanging up").count(), 1, "{mock_log}");
}

#[test]
fn a_stream_cut_short_is_reported_even_when_its_text_names_the_end_markers() {
    let stack = Stack::start(Options::default());
    let text = "[DONE] message_stop error ".repeat(6);
    let cut = [("x-mock-error", "truncate")];
    let o = stack.post(
        OPENAI,
        &json!({"model": "mock:base", "stream": true, "messages": [{"role": "user", "content": text}]}),
        &cut,
    );
    assert_eq!(o.status, 200);
    let events = o.events();
    let last = &events.last().unwrap().1;
    assert!(last.contains("ended the stream early"), "{events:?}");
    // The cut came after text that a substring check would take for an end.
    assert!(
        events.iter().any(|(_, d)| d.contains("\"[DONE] \"")),
        "{events:?}"
    );
    let a = stack.post(
        ANTHROPIC,
        &json!({"model": "mock:base", "stream": true, "max_tokens": 100,
                "messages": [{"role": "user", "content": text}]}),
        &[AV, cut[0]],
    );
    let events = a.events();
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"), "{events:?}");
    assert!(data.contains("ended the stream early"), "{data}");
}
