//! Micro benchmarks of the plugin host: one call on a warm pooled router
//! instance, one cold instantiation, and one SSE event through the
//! translator's stream resource. Run with `make bench` (after `make
//! plugins`).

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use sluice::plugins::bindings::{ApiShape, SseEvent};
use sluice::plugins::translator::TranslateContext;
use sluice::plugins::{Plugin, PluginEngine, Policies, RequestFacts, load_plugins};

fn plugins_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    assert!(dir.is_dir(), "run `make plugins` first");
    dir
}

fn load(file: &str) -> Arc<Plugin> {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(plugins_dir().join(file), tmp.path().join(file)).unwrap();
    let engine = PluginEngine::new(None).unwrap();
    let set = load_plugins(&engine, tmp.path(), &Policies::default(), None);
    assert!(set.errors().next().is_none(), "{:?}", set.files);
    set.all[0].clone()
}

/// Plugin calls are async (they run on a fiber); the benchmarks drive them
/// on a current-thread runtime, as one pingora worker would.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn request() -> Arc<RequestFacts> {
    Arc::new(RequestFacts {
        request_id: "req_0123456789abcdef".into(),
        inbound_shape: sluice::api::Shape::OpenAi,
        model: "gpt-4o-mini".into(),
        canonical_model: "openai:gpt-4o-mini".into(),
        stream: false,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "OpenAI/Python 1.0".into()),
            ("x-sluice-route".into(), "mock:gpt-4o-mini".into()),
        ],
        message_count: 3,
        body: bytes::Bytes::from_static(b"{}"),
        estimated_input_tokens: 250,
        max_output_tokens: None,
        tool_names: Vec::new(),
        caller: None,
        candidates: vec![("openai".into(), "gpt-4o-mini".into())],
    })
}

fn router(c: &mut Criterion) {
    let rt = runtime();
    let plugin = load("router_header.wasm");
    let req = request();
    rt.block_on(plugin.route(&req)).unwrap();
    c.bench_function("router call (warm instance)", |b| {
        b.iter(|| rt.block_on(plugin.route(&req)).unwrap())
    });
    c.bench_function("router instantiation (cold)", |b| {
        b.iter(|| rt.block_on(plugin.instantiate_cold()).unwrap())
    });
}

fn translator(c: &mut Criterion) {
    let plugin = load("translator_openai_anthropic.wasm");
    let ctx = TranslateContext {
        client: ApiShape::Openai,
        provider: ApiShape::Anthropic,
        provider_model: "claude-sonnet-4-6".into(),
        client_model: "gpt-4o-mini".into(),
        stream: true,
        include_usage: true,
    };
    let start = SseEvent {
        event: Some("message_start".into()),
        data: r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#.into(),
    };
    let block = SseEvent {
        event: Some("content_block_start".into()),
        data:
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
                .into(),
    };
    let delta = SseEvent {
        event: Some("content_block_delta".into()),
        data: r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, world "}}"#.into(),
    };
    let rt = runtime();
    let mut stream = rt.block_on(plugin.open_stream(&ctx)).unwrap();
    rt.block_on(stream.push(&start)).unwrap().unwrap();
    rt.block_on(stream.push(&block)).unwrap().unwrap();
    c.bench_function(
        "SSE text delta through translator (anthropic->openai)",
        |b| b.iter(|| rt.block_on(stream.push(&delta)).unwrap().unwrap()),
    );
}

criterion_group!(benches, router, translator);
criterion_main!(benches);
