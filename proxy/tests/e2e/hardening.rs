//! In-process TLS with HTTP/2 by ALPN, API versioning of Sluice's own
//! routes, slow clients and the in-flight limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::harness::*;

fn chat_body() -> serde_json::Value {
    json!({"model": "base", "messages": [{"role": "user", "content": "hello"}]})
}

#[test]
fn tls_listener_serves_http1_and_offers_h2() {
    let tc = TestCert::new(&["localhost", "127.0.0.1"]);
    let stack = Stack::start(Options {
        args: &["--tls-cert", &tc.cert, "--tls-key", &tc.key],
        ..Options::default()
    });
    assert!(stack.base.starts_with("https://"));

    // A client that trusts only the generated certificate.
    let der = tc.der.clone();
    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![
        ureq::tls::Certificate::from_der(&der).to_owned(),
    ]));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let body = serde_json::to_vec(&chat_body()).unwrap();
    let r = send(
        &agent,
        "POST",
        &format!("{}/v1/chat/completions", stack.base),
        Some(&body),
        &[("content-type", "application/json")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Mock reply to: hello"
    );

    // A client that trusts nothing in particular fails verification.
    let r = raw_request(
        "POST",
        &format!("{}/v1/chat/completions", stack.base),
        Some(&body),
        &[],
    );
    assert_eq!(
        r.status, 0,
        "an unverifiable certificate must not be accepted"
    );

    // ALPN offers HTTP/2.
    let config = tc.client_config(&[b"h2", b"http/1.1"]);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", stack.proxy_port)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn tls_needs_both_files() {
    let out = std::process::Command::new(SLUICE)
        .args(["serve", "--tls-cert", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

const API: &str = r#"
[api]
min_supported = "0.8"
deprecated = [
  { version = "0.9", sunset = "2999-01-01" },
  { version = "0.8", sunset = "2001-01-01" },
]
"#;

#[test]
fn own_routes_negotiate_api_versions() {
    let stack = Stack::start(Options {
        config: API,
        ..Options::default()
    });
    let get = |url: String, version: Option<&str>| match version {
        Some(v) => raw_request("GET", &url, None, &[("sluice-api-version", v)]),
        None => raw_request("GET", &url, None, &[]),
    };
    for url in [
        format!("{}/healthz", stack.admin),
        format!("{}/v1/models", stack.base),
    ] {
        let r = get(url.clone(), None);
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.header("sluice-api-versions-supported"), Some("0.9, 1.0"));
        assert_eq!(r.header("sluice-api-version"), Some("1.0"));

        let r = get(url.clone(), Some("0.9"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("deprecation"), Some("true"));
        assert_eq!(r.header("sunset"), Some("Tue, 01 Jan 2999 00:00:00 GMT"));

        for (v, reason) in [
            ("0.8", "past_sunset"),
            ("0.5", "below_min"),
            ("7.0", "above_current"),
        ] {
            let r = get(url.clone(), Some(v));
            assert_eq!(r.status, 410, "{url} {v}");
            let e = r.json();
            assert_eq!(e["error"]["code"], "version_unsupported");
            assert_eq!(e["error"]["reason"], reason);
            assert_eq!(e["error"]["requested"], v);
            assert_eq!(e["error"]["current"], "1.0");
            assert_eq!(e["error"]["min_supported"], "0.8");
            assert!(r.header("sluice-api-versions-supported").is_some());
        }
        let r = raw_request("OPTIONS", &url, None, &[]);
        assert_eq!(r.status, 204);
        assert_eq!(r.header("sluice-api-versions-supported"), Some("0.9, 1.0"));
    }

    // Provider-shape paths are frozen by the SDKs: never versioned.
    let r = stack.post(
        "/v1/chat/completions",
        &chat_body(),
        &[("sluice-api-version", "0.1")],
    );
    assert_eq!(r.status, 200);
    assert!(r.header("sluice-api-versions-supported").is_none());
    let r = raw_request("OPTIONS", &format!("{}/v1/messages", stack.base), None, &[]);
    assert_eq!(r.status, 204);
    assert!(r.header("sluice-api-versions-supported").is_none());
}

#[test]
fn models_list_in_both_shapes() {
    let stack = Stack::start(Options::default());
    let r = raw_request("GET", &format!("{}/v1/models", stack.base), None, &[]);
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["mock:gpt-4o-mini", "mock:claude-sonnet-4-6"]);
    assert_eq!(r.json()["object"], "list");
    let r = raw_request(
        "GET",
        &format!("{}/v1/models", stack.base),
        None,
        &[("anthropic-version", "2023-06-01")],
    );
    let v = r.json();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
    assert_eq!(v["last_id"], "mock:claude-sonnet-4-6");
}

#[test]
fn slow_body_gets_408_and_the_worker_is_freed() {
    let stack = Stack::start(Options {
        config: "[limits]\nbody_read_timeout_ms = 300\n",
        ..Options::default()
    });
    let mut sock = TcpStream::connect(("127.0.0.1", stack.proxy_port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    sock.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":",
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = sock.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    // The client's fault, typed as such in both envelopes.
    assert!(text.contains("\"invalid_request_error\""), "{text}");
    assert_eq!(
        stack.post("/v1/chat/completions", &chat_body(), &[]).status,
        200
    );
}

#[test]
fn requests_beyond_the_in_flight_limit_get_503() {
    let stack = Arc::new(Stack::start(Options {
        config: "[limits]\nmax_connections = 2\n",
        ..Options::default()
    }));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let stack = stack.clone();
            std::thread::spawn(move || {
                stack.post(
                    "/v1/chat/completions",
                    &chat_body(),
                    &[("x-mock-latency-ms", "400")],
                )
            })
        })
        .collect();
    let results: Vec<Resp> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Resp> = results.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok + refused.len(), 6);
    assert!(
        ok >= 2 && !refused.is_empty(),
        "ok {ok}, refused {}",
        refused.len()
    );
    for r in refused {
        assert_eq!(r.json()["error"]["code"], "server_is_overloaded");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // Slots are released: a later request passes.
    assert_eq!(
        stack.post("/v1/chat/completions", &chat_body(), &[]).status,
        200
    );
}

#[test]
fn aliases_opt_out_and_prefixes_normalize_models() {
    let stack = Stack::start(Options {
        config: "[routing.aliases]\nfast = \"mock:gpt-4o-mini\"\n",
        ..Options::default()
    });
    let served = |model: &str| {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        let r = stack.post("/v1/chat/completions", &body, &[]);
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.json()["model"], model, "the raw model string is echoed");
        (
            r.header("x-sluice-provider").unwrap().to_owned(),
            r.header("x-sluice-model").unwrap().to_owned(),
        )
    };
    assert_eq!(served("fast"), ("mock".into(), "gpt-4o-mini".into()));
    assert_eq!(
        served("sluice://mock/llama3:8b"),
        ("mock".into(), "llama3:8b".into())
    );
    assert_eq!(served("mock:gpt-4o"), ("mock".into(), "gpt-4o".into()));
    // Bare names become openai:…; with no such provider the default serves.
    assert_eq!(served("llama3:8b"), ("mock".into(), "llama3:8b".into()));
}

#[test]
fn https_providers_are_verified_against_their_ca_and_name() {
    let tc = TestCert::new(&["localhost"]);
    let config = format!(
        r#"
[[providers]]
name = "secure"
kind = "mock"
base_url = "https://localhost:{{mock_port}}/v1"
ca_file = "{}"

[[providers]]
name = "untrusted"
kind = "mock"
base_url = "https://localhost:{{mock_port}}/v1"
"#,
        tc.cert
    );
    let stack = Stack::start(Options {
        config: &config,
        mock_args: &["--tls-cert", &tc.cert, "--tls-key", &tc.key],
        ..Options::default()
    });
    let body = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "over tls"}]});
    // First, while no verified connection sits in the pool (pingora pools
    // by address and SNI): the platform roots do not know this certificate,
    // so the request is refused, not sent.
    let r = stack.post("/v1/chat/completions", &body("untrusted:gpt-4o-mini"), &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_unavailable");
    for _ in 0..3 {
        // Repeated to go through a pooled (reused) TLS connection too.
        let r = stack.post("/v1/chat/completions", &body("secure:gpt-4o-mini"), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            "Mock reply to: over tls"
        );
    }
}

fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(token.as_bytes())[..6])
}

#[test]
fn provider_credentials_replace_the_clients_key_upstream() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("anthropic.key");
    std::fs::write(&key_file, "sk-ant-provider-secret\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        r#"
[[providers]]
name = "keyed-openai"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{{mock_port}}/v1"
api_key_env = "SLUICE_TEST_PROVIDER_KEY"

[[providers]]
name = "keyed-anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:{{mock_port}}/v1"
api_key_file = "{}"
"#,
        key_file.display()
    );
    let stack = Stack::start(Options {
        config: &config,
        env: &[("SLUICE_TEST_PROVIDER_KEY", "sk-provider-secret")],
        ..Options::default()
    });
    let client = [
        ("authorization", "Bearer sk-client-key"),
        ("x-api-key", "sk-client-key"),
    ];
    let r = stack.post(
        "/v1/chat/completions",
        &json!({"model": "keyed-openai:m",
        "messages": [{"role": "user", "content": "hi"}]}),
        &client,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = stack.post(
        "/v1/messages",
        &json!({"model": "keyed-anthropic:m", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]}),
        &client,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = stack.post("/v1/chat/completions", &chat_body(), &client);
    assert_eq!(r.status, 200, "{}", r.text());

    let log = stack.mock.log_text();
    let seen = |fp: &str| log.matches(fp).count();
    assert_eq!(
        seen(&fingerprint("sk-client-key")),
        0,
        "the client's key reached the provider:\n{log}"
    );
    assert_eq!(seen(&fingerprint("sk-provider-secret")), 1, "{log}");
    assert_eq!(seen(&fingerprint("sk-ant-provider-secret")), 1, "{log}");
    let proxy_log = stack.proxy.log_text();
    assert!(!proxy_log.contains("sk-provider-secret") && !proxy_log.contains("sk-ant-provider"));
}

#[test]
fn a_readable_by_others_key_file_is_refused_at_startup() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("k");
    std::fs::write(&key_file, "secret").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = keys.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "[[providers]]\nname = \"p\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key_file = \"{}\"\n",
            key_file.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(SLUICE)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--data-dir"])
        .arg(keys.path().join("data"))
        .args(["--plugins-dir"])
        .arg(keys.path().join("p"))
        .args(["--policies-dir"])
        .arg(keys.path().join("q"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish_then_exits() {
    let mut stack = Stack::start(Options {
        config: "[server]\nshutdown_grace_seconds = 2\n",
        mock_args: &["--chunk-delay-ms", "40"],
        ..Options::default()
    });
    let url = format!("{}/v1/chat/completions", stack.base);
    let body = json!({"model": "base", "stream": true,
        "messages": [{"role": "user", "content": "a b c d e f g h"}]});
    let pid = stack.proxy.pid().to_string();
    let mut signalled = false;
    let mut done = false;
    let Streamed { status, clean, .. } = stream_events(&url, &body, &[], |_, data| {
        if !signalled {
            let kill = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status();
            assert!(kill.unwrap().success());
            signalled = true;
        }
        done |= data == "[DONE]";
    });
    assert_eq!(
        (status, clean, done),
        (200, true, true),
        "the stream finished"
    );
    assert!(
        eventually(Duration::from_secs(30), || !stack.proxy.is_running()),
        "the proxy exits after its grace period"
    );
}

#[test]
fn a_body_sent_in_several_chunks_is_reassembled_and_still_capped() {
    let stack = Stack::start(Options {
        config: "[limits]\nmax_body_bytes = 200\n",
        ..Options::default()
    });
    let send_chunked = |parts: &[&str]| {
        let mut sock = TcpStream::connect(("127.0.0.1", stack.proxy_port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut req = String::from(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        );
        for p in parts {
            req.push_str(&format!("{:x}\r\n{p}\r\n", p.len()));
        }
        req.push_str("0\r\n\r\n");
        sock.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let _ = sock.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    let ok = send_chunked(&[
        r#"{"model":"base","#,
        r#""messages":[{"role":"user","#,
        r#""content":"in three parts"}]}"#,
    ]);
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("Mock reply to: in three parts"), "{ok}");
    let big = "x".repeat(250);
    let too_big = send_chunked(&[r#"{"model":"base","pad":""#, &big, r#""}"#]);
    assert!(too_big.starts_with("HTTP/1.1 413"), "{too_big}");
}

#[test]
fn a_compiled_plugin_cache_open_to_others_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = format!("[plugins]\ncache_dir = \"{}\"\n", dir.display());
    let stack = Stack::start(Options {
        plugins: &["test_router_versioned.wasm"],
        config: &config,
        policy_files: ROUTING_BUDGET_1S,
        ..Options::default()
    });
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let r = stack.post("/v1/chat/completions", &chat_body(), &[]);
    assert_eq!(r.header("x-sluice-model"), Some("v1"));
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "cwasm") {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }
}
