//! `sluice-bench`: Sluice as users run it, beside nginx and bare pingora,
//! against one upstream, measured in one run.
//!
//! Run from the workspace root after `cargo build --release -p sluice -p
//! sluice-bench` and `make plugins` (router, translator and redactor
//! components); `make bench` does all of it, installing nginx if missing:
//!
//! ```text
//! target/release/sluice-bench --duration 5 --warmup 1
//! ```
//!
//! Exit status: 0 if every request succeeded, 1 if any failed, 2 if the
//! stack could not be started or died. Goals not met do not change it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sluice_bench::loadgen::RunConfig;
use sluice_bench::measure::{self, PATH, Runs};
use sluice_bench::report::{self, StreamReport, TargetReport};
use sluice_bench::stack::{Role, Stack, StackConfig};
use sluice_bench::variants::Variant;
use sluice_bench::{BenchError, goals, nginx, payloads, stream};

/// Words of the streaming scenario's prompt; the mock streams its reply
/// ("Mock reply to: " + the prompt) one chunk per word.
const STREAM_PROMPT_WORDS: usize = 60;

#[derive(Parser, Debug)]
#[command(about = "End-to-end load benchmark: sluice beside nginx and bare pingora")]
struct Cli {
    /// The sluice binary (also serves the mock provider).
    #[arg(long, default_value = "target/release/sluice")]
    sluice: PathBuf,
    /// The bare pingora baseline binary.
    #[arg(long, default_value = "target/release/bare-pingora")]
    bare: PathBuf,
    /// The nginx binary; default: `nginx` on PATH, else /usr/sbin/nginx.
    /// Without one the nginx rows are skipped and the mock is the upstream.
    #[arg(long)]
    nginx: Option<PathBuf>,
    /// The router component of the routing variants.
    #[arg(long, default_value = "target/plugins/router_model_prefix.wasm")]
    router: PathBuf,
    /// The OpenAI/Anthropic translator component.
    #[arg(
        long,
        default_value = "target/plugins/translator_openai_anthropic.wasm"
    )]
    translator: PathBuf,
    /// The PII redactor component.
    #[arg(long, default_value = "target/plugins/redactor_pii.wasm")]
    redactor: PathBuf,
    /// The heuristic evaluator component.
    #[arg(long, default_value = "target/plugins/evaluator_heuristic.wasm")]
    evaluator: PathBuf,
    /// Measured seconds per run (each target has a c=1 and a c=N run;
    /// each stream one).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds of traffic before each run.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Times every target of the matrix is measured, round-robin (each
    /// round visits all targets once). A row is the round with the median
    /// CPU per request; the spread is printed under the table. On a
    /// shared or virtual machine one run per target is at the mercy of
    /// whatever the host did meanwhile; rounds spread that over all rows.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Clients (= connections) for the throughput run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Worker threads of bare pingora and sluice, worker processes of the
    /// nginx proxy; 0 = one per core. The same for all, so each proxy gets
    /// the same CPU budget.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Per-request timeout in milliseconds (a slower request is an error).
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Seconds to wait for each process to become ready.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,
    /// Start the stack, print every target (address, pid, key) and keep it
    /// up until Enter is pressed (or stdin closes), measuring nothing: for
    /// profiling one target by hand with wrk, perf or strace.
    #[arg(long)]
    hold: bool,
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
    if duration.is_zero() || cli.concurrency == 0 || cli.rounds == 0 {
        return Err(BenchError::new(
            "--duration, --concurrency and --rounds must be positive",
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if cli.threads == 0 { cores } else { cli.threads };
    let request_timeout = Duration::from_millis(cli.request_timeout_ms.max(1));
    let nginx_bin = nginx::find(cli.nginx.as_deref())?;
    if nginx_bin.is_none() {
        println!(
            "nginx not found (neither on PATH nor /usr/sbin/nginx; `make bench` installs it, \
             --nginx PATH points at one): the nginx rows are skipped and the sluice mock \
             provider is the upstream of every table.\n"
        );
    }

    let mut stack = Stack::start(&StackConfig {
        sluice: cli.sluice.clone(),
        bare: cli.bare.clone(),
        nginx: nginx_bin,
        router: cli.router.clone(),
        translator: cli.translator.clone(),
        redactor: cli.redactor.clone(),
        evaluator: cli.evaluator.clone(),
        threads,
        ready_timeout: Duration::from_secs(cli.ready_timeout),
    })?;

    if cli.hold {
        return hold(&stack);
    }

    // One OS thread for every client: the machine has few cores and the
    // system under test needs them more than the load generator does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    println!(
        "sluice-bench: {cores} cores, shared by the load generator (1 tokio current-thread runtime, \
         one OS thread; keep-alive HTTP/1.1, TCP_NODELAY), the proxy under test and the upstream.\n\
         Each proxy runs {threads} worker threads (nginx: {threads} worker processes). \
         Warmup {warmup:?} + {duration:?} per run. Scratch dir {}.\n",
        stack.dir().display()
    );

    let runs = Runs {
        latency: RunConfig {
            concurrency: 1,
            warmup,
            duration,
            request_timeout,
        },
        throughput: RunConfig {
            concurrency: cli.concurrency,
            warmup,
            duration,
            request_timeout,
        },
    };
    let matrix = run_matrix(&mut stack, &rt, &runs, cli.rounds)?;
    let (streams, chunks) = run_streams(&mut stack, &rt, &runs.latency)?;

    print!(
        "{}",
        goals::render(&goals::evaluate(&matrix, &streams, chunks))
    );

    let errors = matrix.iter().map(|r| r.errors).sum::<u64>()
        + streams.iter().map(|r| r.errors).sum::<u64>();
    if errors > 0 {
        stack.keep_dir();
        println!(
            "\nlogs kept for inspection in {}/logs",
            stack.dir().display()
        );
    }
    Ok(errors)
}

fn hold(stack: &Stack) -> Result<u64, BenchError> {
    println!("upstream: {}", stack.upstream);
    for (scenario, targets) in [("matrix", &stack.matrix), ("streams", &stack.streams)] {
        for t in targets {
            let key = t.api_key.as_deref().unwrap_or("-");
            let admin = t.admin.map_or("-".into(), |a| a.to_string());
            println!(
                "{scenario:<8} {:<40} {} pid {} admin {admin} model {} key {key}",
                t.name,
                t.addr,
                t.pid,
                t.model()
            );
        }
    }
    println!("scratch dir {}; press Enter to stop", stack.dir().display());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(0)
}

/// The non-streamed matrix: every target `rounds` times, one table.
fn run_matrix(
    stack: &mut Stack,
    rt: &tokio::runtime::Runtime,
    runs: &Runs,
    rounds: usize,
) -> Result<Vec<TargetReport>, BenchError> {
    let targets = stack.matrix.clone();
    let mut measured: Vec<Vec<TargetReport>> = vec![Vec::new(); targets.len()];
    for round in 1..=rounds {
        for (target, reports) in targets.iter().zip(&mut measured) {
            eprintln!(
                "round {round}/{rounds}: measuring {} at {} ...",
                target.name, target.addr
            );
            reports.push(rt.block_on(measure::matrix_target(target, runs)));
            stack.check_alive()?;
        }
    }
    let spreads: Vec<String> = measured
        .iter()
        .filter_map(|r| report::cpu_spread(r))
        .collect();
    let reports: Vec<TargetReport> = measured.into_iter().map(report::median_round).collect();
    println!(
        "non-streamed: POST {PATH}, {} body bytes, one email address in the prompt\n\
         upstream (every row): {}\n",
        payloads::chat_body(Variant::NothingOn.model()).len(),
        stack.upstream
    );
    print!(
        "{}",
        report::render_matrix(&reports, runs.throughput.concurrency)
    );
    println!(
        "\nsluice rows (each its own `sluice serve`, providers of kind openai and anthropic):"
    );
    for v in Variant::ALL {
        println!("  {:<26} {}", v.label(), v.describe());
    }
    if rounds > 1 {
        println!("\nCPU µs/r over {rounds} rounds (min / median / max):");
        for line in spreads {
            println!("  {line}");
        }
    }
    println!();
    Ok(reports)
}

/// The streaming scenario at concurrency 1; returns its reports and the
/// number of content chunks per stream.
fn run_streams(
    stack: &mut Stack,
    rt: &tokio::runtime::Runtime,
    cfg: &RunConfig,
) -> Result<(Vec<StreamReport>, usize), BenchError> {
    let prompt = stream::prompt(STREAM_PROMPT_WORDS);
    let expected = stream::expected_reply(&prompt);
    let chunks = stream::content_chunks(&expected);
    let mut reports = Vec::new();
    for target in stack.streams.clone() {
        eprintln!("streaming {} at {} ...", target.name, target.addr);
        reports.push(rt.block_on(measure::stream_target(&target, &prompt, &expected, cfg)));
        stack.check_alive()?;
    }
    println!(
        "streamed: POST {PATH} stream=true, {STREAM_PROMPT_WORDS}-word prompt ending in an email \
         address, reply streamed as {chunks} content chunks (+ role, finish, [DONE])\n\
         upstream (every row): sluice mock-provider, one SSE chunk per word\n"
    );
    print!("{}", report::render_stream(&reports));
    let find = |role| reports.iter().find(|r| r.role == role);
    let direct = find(Role::Direct);
    let none = find(Role::Sluice(Variant::NothingOn));
    let all = find(Role::Sluice(Variant::Everything));
    println!();
    for (what, over, base) in [
        ("translator+redactor over direct", all, direct),
        ("translator+redactor over sluice nothing on", all, none),
        ("sluice nothing on over direct", none, direct),
        ("nginx over direct", find(Role::Nginx), direct),
        ("bare pingora over direct", find(Role::Bare), direct),
    ] {
        if let (Some(o), Some(b)) = (over, base) {
            print!("{}", report::render_stream_added(what, o, b, chunks));
        }
    }
    println!();
    Ok((reports, chunks))
}
