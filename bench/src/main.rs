//! `sluice-bench`: end-to-end latency and throughput of Sluice against its
//! baselines (direct to the mock, bare pingora), measured in one run.
//!
//! Run from the workspace root after `cargo build --release -p sluice -p
//! sluice-bench` and `make plugins` (router and translator components):
//!
//! ```text
//! target/release/sluice-bench --duration 5 --warmup 1
//! ```
//!
//! Exit status: 0 if every request succeeded, 1 if any failed, 2 if the
//! stack could not be started or died.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sluice_bench::BenchError;
use sluice_bench::loadgen::{self, RunConfig};
use sluice_bench::report::{self, Baselines, StreamReport, TargetReport};
use sluice_bench::stack::{Stack, StackConfig, Target};
use sluice_bench::stream;
use sluice_bench::wire::encode_request;

/// The request every target gets: a small OpenAI-shaped chat completion.
const BODY: &str = r#"{"model":"mock:gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}"#;
const PATH: &str = "/v1/chat/completions";
/// Words of the streaming scenario's prompt; the mock streams its reply
/// ("Mock reply to: " + the prompt) one chunk per word.
const STREAM_PROMPT_WORDS: usize = 60;

#[derive(Parser, Debug)]
#[command(about = "End-to-end load benchmark: direct mock vs bare pingora vs sluice")]
struct Cli {
    /// The sluice binary (also serves the mock provider).
    #[arg(long, default_value = "target/release/sluice")]
    sluice: PathBuf,
    /// The bare pingora baseline binary.
    #[arg(long, default_value = "target/release/bare-pingora")]
    bare: PathBuf,
    /// The router plugin component loaded by the second sluice instance.
    #[arg(long, default_value = "target/plugins/router_header.wasm")]
    plugin: PathBuf,
    /// The OpenAI/Anthropic translator component loaded by the third
    /// sluice instance (streaming scenario).
    #[arg(
        long,
        default_value = "target/plugins/translator_openai_anthropic.wasm"
    )]
    translator: PathBuf,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds of traffic before each scenario.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Clients (= connections) for the throughput scenario.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Worker threads of bare-pingora; 0 = one per core, which is also
    /// sluice's default. Keep the two equal for a fair throughput ratio.
    #[arg(long, default_value_t = 0)]
    bare_threads: usize,
    /// Sent as `authorization: Bearer KEY` to every target, if sluice
    /// requires a client key.
    #[arg(long)]
    api_key: Option<String>,
    /// Per-request timeout in milliseconds (a slower request is an error).
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Seconds to wait for each process to become ready.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,
    /// Only measure the mock and bare pingora (checks the harness when no
    /// real sluice gateway is available; `--sluice` still serves the mock).
    #[arg(long)]
    skip_sluice: bool,
}

fn seconds(what: &str, s: f64) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| *d <= Duration::from_secs(3600))
        .ok_or_else(|| BenchError::new(format!("--{what} must be between 0 and 3600 seconds")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("sluice-bench: {errors} request(s) failed");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("sluice-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the whole benchmark; returns the total error count.
fn run(cli: &Cli) -> Result<u64, BenchError> {
    let duration = seconds("duration", cli.duration)?;
    let warmup = seconds("warmup", cli.warmup)?;
    if duration.is_zero() || cli.concurrency == 0 {
        return Err(BenchError::new(
            "--duration and --concurrency must be positive",
        ));
    }
    let bare_threads = match cli.bare_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let request_timeout = Duration::from_millis(cli.request_timeout_ms.max(1));

    let mut stack = Stack::start(&StackConfig {
        sluice: cli.sluice.clone(),
        bare: cli.bare.clone(),
        plugin: cli.plugin.clone(),
        translator: cli.translator.clone(),
        bare_threads,
        with_sluice: !cli.skip_sluice,
        ready_timeout: Duration::from_secs(cli.ready_timeout),
    })?;

    // One OS thread for every client: the machine has 2 cores and the
    // system under test needs them more than the load generator does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    println!(
        "sluice-bench: load generator = 1 tokio current-thread runtime (one OS thread), \
         keep-alive HTTP/1.1, TCP_NODELAY; warmup {warmup:?} + {duration:?} per scenario; \
         bare-pingora threads = {}; scratch dir {}",
        bare_threads,
        stack.dir().display()
    );
    println!("request: POST {PATH} ({} body bytes)\n", BODY.len());

    let latency_cfg = RunConfig {
        concurrency: 1,
        warmup,
        duration,
        request_timeout,
    };
    let throughput_cfg = RunConfig {
        concurrency: cli.concurrency,
        ..latency_cfg.clone()
    };

    let mut reports = Vec::new();
    for target in stack.targets.clone() {
        let request = build_request(&target, cli.api_key.as_deref());
        let probe_errors = rt.block_on(probe(&target, &request, request_timeout));
        eprintln!("measuring {} at {} ...", target.name, target.addr);
        let lat = rt.block_on(loadgen::run(
            target.addr,
            Arc::clone(&request),
            &latency_cfg,
        ));
        let thr = rt.block_on(loadgen::run(
            target.addr,
            Arc::clone(&request),
            &throughput_cfg,
        ));
        stack.check_alive()?;
        let mut r = TargetReport::new(&target.name, lat, thr);
        r.errors += probe_errors;
        reports.push(r);
    }

    let base = Baselines {
        direct: &reports[0],
        bare: &reports[1],
    };
    println!("{}", report::render(&reports, &base, cli.concurrency));
    if let Some(with_router) = reports.get(3) {
        print!("{}", report::render_targets(with_router, &base));
    }
    if let (Some(plain), Some(keyed)) = (reports.get(2), reports.get(4)) {
        println!(
            "keys + budget (auth, reservation, settlement; both record usage): {:+.1} µs p50 at c=1, \
             {:.1}% of the unkeyed rps at c={}\n",
            keyed.latency.p50_us - plain.latency.p50_us,
            100.0 * keyed.rps / plain.rps.max(1e-9),
            cli.concurrency
        );
    }
    let mut errors: u64 = reports.iter().map(|r| r.errors).sum();

    errors += run_streams(cli, &mut stack, &rt, &latency_cfg)?;

    if errors > 0 {
        stack.keep_dir();
        println!("logs kept for inspection in {}/logs", stack.dir().display());
    }
    Ok(errors)
}

/// The streaming scenario: one OpenAI-shaped streaming request per target
/// at concurrency 1; prints its table and returns its error count.
fn run_streams(
    cli: &Cli,
    stack: &mut Stack,
    rt: &tokio::runtime::Runtime,
    cfg: &RunConfig,
) -> Result<u64, BenchError> {
    let prompt = stream::prompt(STREAM_PROMPT_WORDS);
    let expected = stream::expected_reply(&prompt);
    let chunks = stream::content_chunks(&expected);
    let direct = stack.targets[0].clone();
    // Passthrough and translation go through the same instance, so the
    // difference between them is the translation alone; passthrough via
    // the no-plugin instance shows what merely loading the translator costs.
    let mut cases = vec![("direct (mock) gpt-4o-mini", direct, "gpt-4o-mini")];
    if let Some(plain) = stack.targets.get(2) {
        cases.push((
            "no plugin: mock:gpt-4o-mini",
            plain.clone(),
            "mock:gpt-4o-mini",
        ));
    }
    if let Some(t) = stack.translator.clone() {
        cases.push((
            "passthrough: mock:gpt-4o-mini",
            t.clone(),
            "mock:gpt-4o-mini",
        ));
        cases.push(("translated: ant:claude-x", t, "ant:claude-x"));
    }

    println!(
        "\nstreaming: POST {PATH} stream=true, {STREAM_PROMPT_WORDS}-word prompt, reply streamed \
         as {chunks} content chunks (+ role, finish, [DONE]); via \"sluice + translator\" unless noted"
    );
    let mut reports = Vec::new();
    for (label, target, model) in cases {
        let body = stream::chat_body(model, &prompt);
        let request = build_request_with(&target, cli.api_key.as_deref(), &body);
        eprintln!("streaming {label} at {} ...", target.addr);
        let run = rt.block_on(stream::run(target.addr, &request, &expected, cfg));
        stack.check_alive()?;
        reports.push(StreamReport::new(label, run));
    }
    println!("{}", report::render_stream(&reports));
    let find = |prefix: &str| reports.iter().find(|r| r.name.starts_with(prefix));
    if let (Some(d), Some(p), Some(t)) = (find("direct"), find("passthrough"), find("translated")) {
        print!(
            "{}",
            report::render_stream_added("translated over passthrough", t, p, chunks)
        );
        print!(
            "{}",
            report::render_stream_added("passthrough over direct", p, d, chunks)
        );
    }
    Ok(reports.iter().map(|r| r.errors).sum())
}

fn build_request(target: &Target, api_key: Option<&str>) -> Arc<[u8]> {
    build_request_with(target, api_key, BODY)
}

fn build_request_with(target: &Target, api_key: Option<&str>, body: &str) -> Arc<[u8]> {
    let auth = target
        .api_key
        .as_deref()
        .or(api_key)
        .map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = auth.as_deref() {
        headers.push(("authorization", a));
    }
    encode_request(
        "POST",
        &target.addr.to_string(),
        PATH,
        &headers,
        body.as_bytes(),
    )
    .into()
}

/// One request before loading a target, so a misconfigured target is
/// explained by what it answered rather than only by an error count.
/// Returns 1 if it failed (counted as an error), else 0.
async fn probe(target: &Target, request: &[u8], timeout: Duration) -> u64 {
    match loadgen::probe(target.addr, request, timeout).await {
        Ok(resp) if resp.status == 200 && resp.body_len > 0 => 0,
        Ok(resp) => {
            let body = resp.body.unwrap_or_default();
            let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            eprintln!(
                "WARNING: {} answered the probe with status {} ({} body bytes): {shown}",
                target.name, resp.status, resp.body_len
            );
            1
        }
        Err(e) => {
            eprintln!("WARNING: probe of {} failed: {e}", target.name);
            1
        }
    }
}
