//! The costs the traces issue adds: the PII redactor per request (with and
//! without PII) and per SSE chunk of a pseudonymized stream, and trace
//! store writes (events per second through one group commit, secondary
//! tables included). Run with `make bench` (after `make plugins`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::events::{EventBody, store};
use sluice::plugins::bindings::{ApiShape, SseEvent};
use sluice::plugins::redactor::RedactContext;
use sluice::plugins::{Plugin, PluginEngine, Policies, load_plugins};

fn pii() -> Arc<Plugin> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    assert!(dir.is_dir(), "run `make plugins` first");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("redactor_pii.wasm"), tmp.path().join("p.wasm")).unwrap();
    let engine = PluginEngine::new(None).unwrap();
    let set = load_plugins(&engine, tmp.path(), &Policies::default(), None);
    assert!(set.errors().next().is_none(), "{:?}", set.files);
    set.all[0].clone()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn body(text: &str) -> String {
    serde_json::json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a helpful assistant for our support desk."},
        {"role": "user", "content": text},
    ]})
    .to_string()
}

fn redactor(c: &mut Criterion) {
    let rt = runtime();
    let plugin = pii();
    let ctx = RedactContext {
        shape: ApiShape::Openai,
        request_id: "req_0123456789abcdef".into(),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
    };
    let clean = body("Summarise the attached meeting notes in three bullet points, please.");
    let dirty = body(
        "Mail alice@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, \
         key AKIAIOSFODNN7EXAMPLE.",
    );
    c.bench_function("pii redactor: request without PII", |b| {
        b.iter(|| {
            rt.block_on(plugin.redact_request(&ctx, &clean))
                .unwrap()
                .unwrap()
        })
    });
    c.bench_function("pii redactor: request with 4 values (pseudonymize)", |b| {
        b.iter(|| {
            rt.block_on(plugin.redact_request(&ctx, &dirty))
                .unwrap()
                .unwrap()
        })
    });
    let state = rt
        .block_on(plugin.redact_request(&ctx, &dirty))
        .unwrap()
        .unwrap()
        .state;
    let mut stream = rt
        .block_on(plugin.open_redaction(&ctx, state.as_deref()))
        .unwrap();
    let chunk = SseEvent {
        event: None,
        data: r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"reach [EMAIL_1] by "},"finish_reason":null}]}"#.into(),
    };
    c.bench_function("pii redactor: SSE chunk restored (pseudonymize)", |b| {
        b.iter(|| rt.block_on(stream.push(&chunk)).unwrap().unwrap())
    });
}

fn trace_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = sluice::store::open(&dir.path().join("events.redb")).unwrap();
    store::init(&db).unwrap();
    const BATCH: u64 = 1000;
    let mut g = c.benchmark_group("trace store");
    g.throughput(Throughput::Elements(BATCH));
    let mut n = 0u64;
    g.bench_function("commit 1000 request.completed (indexed)", |b| {
        b.iter(|| {
            let now = sluice::clock::now_ms();
            let batch: Vec<_> = (0..BATCH)
                .map(|i| {
                    n += 1;
                    store::Entry::Event(
                        EventBody::RequestCompleted {
                            request_id: format!("req_{n}"),
                            gateway_key_id: Some(format!("key_{}", i % 50)),
                            user_id: Some(format!("user_{}", i % 200)),
                            team_id: Some(format!("team_{}", i % 10)),
                            inbound_shape: "openai".into(),
                            client_model: "gpt-4o-mini".into(),
                            requested_model: Some("openai:gpt-4o-mini".into()),
                            model: Some("openai:gpt-4o-mini".into()),
                            status: 200,
                            streamed: false,
                            latency_ms: 12,
                            cost_usd: sluice::money::Usd::ZERO,
                            input_tokens: 100,
                            output_tokens: 50,
                            attempts: 1,
                            error_code: None,
                        },
                        now,
                    )
                })
                .collect();
            store::commit(&db, &batch).unwrap();
        })
    });
    g.finish();
    // The seed's figure: a backup of 100k events in under 5 s.
    let started = Instant::now();
    let dest = dir.path().join("backup");
    sluice::backup::backup(
        &[("events.redb", &db, &dir.path().join("events.redb"))],
        &dest,
    )
    .unwrap();
    let bytes = std::fs::metadata(dir.path().join("events.redb"))
        .unwrap()
        .len();
    println!(
        "backup of {n} events ({:.1} MiB): {:?}",
        bytes as f64 / (1 << 20) as f64,
        started.elapsed()
    );
}

criterion_group!(benches, redactor, trace_store);
criterion_main!(benches);
