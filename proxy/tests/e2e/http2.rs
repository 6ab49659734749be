//! HTTP/2 over the in-process TLS listener, negotiated by ALPN: a whole
//! response and a stream, as an h2 client sees them.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::harness::*;

/// Send one POST over a fresh h2 connection; returns status and body.
async fn h2_post(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    body: Value,
) -> (u16, Vec<u8>) {
    let mut client = h2_connect(port, config).await;
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (resp, mut send) = client.send_request(req, false).unwrap();
    send.send_data(Bytes::from(serde_json::to_vec(&body).unwrap()), true)
        .unwrap();
    let resp = resp.await.unwrap();
    let status = resp.status().as_u16();
    let mut recv = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.unwrap();
        recv.flow_control().release_capacity(chunk.len()).unwrap();
        out.extend_from_slice(&chunk);
    }
    (status, out)
}

#[test]
fn chat_and_streams_work_over_http2() {
    let tc = TestCert::new(&["localhost"]);
    let stack = Stack::start(Options {
        args: &["--tls-cert", &tc.cert, "--tls-key", &tc.key],
        ..Options::default()
    });
    let config = tc.client_config(&[b"h2"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let body =
        json!({"model": "mock:gpt-4o-mini", "messages": [{"role": "user", "content": "over h2"}]});
    let (status, out) = rt.block_on(h2_post(
        stack.proxy_port,
        config.clone(),
        "/v1/chat/completions",
        body,
    ));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Mock reply to: over h2"
    );

    let body = json!({"model": "mock:claude", "max_tokens": 50, "stream": true,
        "messages": [{"role": "user", "content": "streamed over h2"}]});
    let (status, out) = rt.block_on(h2_post(stack.proxy_port, config, "/v1/messages", body));
    assert_eq!(status, 200);
    let events = parse_sse(&out);
    assert_eq!(events.first().unwrap().0.as_deref(), Some("message_start"));
    assert_eq!(events.last().unwrap().0.as_deref(), Some("message_stop"));
    let text: String = events
        .iter()
        .filter(|(e, _)| e.as_deref() == Some("content_block_delta"))
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["delta"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "Mock reply to: streamed over h2");
}
