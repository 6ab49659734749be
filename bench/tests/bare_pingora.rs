//! Drives the real `bare-pingora` binary with the load generator, in front
//! of a tiny in-process upstream, so the harness is checked without a
//! `sluice` binary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_bench::loadgen::{self, RunConfig};
use sluice_bench::procs::{Procs, TempDir, free_addr};
use sluice_bench::wire::encode_request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const JSON: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[]}"#;

/// Answers every request with `JSON`, alternating `Content-Length` and
/// chunked framing so both reader paths are crossed through pingora.
async fn upstream(listener: TcpListener) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(serve_conn(conn));
    }
}

async fn serve_conn(mut conn: TcpStream) {
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    let mut n_served = 0u64;
    loop {
        // Read one request: head, then Content-Length bytes of body.
        let (head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = req.parse(&buf) {
                let cl = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .map(|h| {
                        std::str::from_utf8(h.value)
                            .unwrap()
                            .parse::<usize>()
                            .unwrap()
                    })
                    .unwrap_or(0);
                break (len, cl);
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        while buf.len() < head_len + body_len {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        buf.drain(..head_len + body_len);

        let resp = if n_served.is_multiple_of(2) {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{JSON}",
                JSON.len()
            )
        } else {
            let (a, b) = JSON.split_at(10);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        };
        n_served += 1;
        if conn.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[test]
fn loadgen_through_bare_pingora_has_no_errors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let up_listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let up: SocketAddr = up_listener.local_addr().unwrap();
    rt.spawn(upstream(up_listener));

    let tmp = TempDir::new("sluice-bench-test").unwrap();
    let mut procs = Procs::new(tmp.path().to_path_buf());
    let listen = free_addr().unwrap();
    let id = procs
        .spawn(
            "bare-pingora",
            Path::new(env!("CARGO_BIN_EXE_bare-pingora")),
            &[
                "--listen".into(),
                listen.to_string(),
                "--upstream".into(),
                up.to_string(),
            ],
        )
        .unwrap();
    procs.wait_tcp(id, listen, Duration::from_secs(30)).unwrap();

    let request: Arc<[u8]> = encode_request(
        "POST",
        &listen.to_string(),
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        br#"{"model":"mock:gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}"#,
    )
    .into();

    for concurrency in [1, 8] {
        let cfg = RunConfig {
            concurrency,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(400),
            request_timeout: Duration::from_secs(5),
        };
        let result = rt.block_on(loadgen::run(listen, Arc::clone(&request), &cfg));
        assert_eq!(result.errors, 0, "errors: {:?}", result.error_samples);
        assert!(result.completed > 10, "only {} requests", result.completed);
        assert_eq!(result.latencies_ns.len() as u64, result.completed);
    }

    // A dead target is reported as errors, not as a hang or a panic.
    drop(procs);
    let cfg = RunConfig {
        concurrency: 2,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(100),
        request_timeout: Duration::from_secs(1),
    };
    let result = rt.block_on(loadgen::run(listen, request, &cfg));
    assert_eq!(result.completed, 0);
    assert!(result.errors > 0);
}
