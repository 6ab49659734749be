//! A small closed-loop HTTP/1.1 load generator.
//!
//! Each client owns one keep-alive connection and sends the next request as
//! soon as the previous response is complete, so concurrency 1 measures
//! latency and concurrency N measures throughput at N requests in flight.
//! It is meant to run on a current-thread tokio runtime: on a 2-core
//! machine the client must leave the other core to the system under test,
//! and one thread is plenty to drive a proxy that adds tens of µs.
//!
//! Every loop is bounded: a run ends at `warmup + duration`, each request
//! and each connect has its own timeout, and a failed connect backs off
//! before retrying.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::wire::{Response, ResponseReader, WireError};

/// Pause after a failed connect, so a dead target costs little CPU and the
/// error count stays meaningful instead of exploding.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Parameters of one run against one target.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub concurrency: usize,
    /// Traffic sent before measuring: fills the proxy's upstream pool and
    /// warms caches; its successes are not counted, its errors are.
    pub warmup: Duration,
    pub duration: Duration,
    /// Upper bound on one request (connect excluded); a slower one is an
    /// error.
    pub request_timeout: Duration,
}

/// Outcome of one run, merged over all clients.
#[derive(Debug, Default)]
pub struct RunResult {
    /// Successful requests completed inside the measuring window.
    pub completed: u64,
    /// Successful requests over the whole run, warmup included: the
    /// denominator of CPU time sampled around the whole run.
    pub served: u64,
    /// Failed requests and connects over the whole run, warmup included:
    /// any failure is a failure.
    pub errors: u64,
    /// The first few distinct error messages, for the report.
    pub error_samples: Vec<String>,
    /// Latency of each measured request, in nanoseconds.
    pub latencies_ns: Vec<u64>,
    /// Length of the measuring window.
    pub window: Duration,
}

/// Distinct error messages kept per run.
const MAX_ERROR_SAMPLES: usize = 3;

impl RunResult {
    pub fn requests_per_sec(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.completed as f64 / secs
        } else {
            0.0
        }
    }

    fn record_error(&mut self, msg: String) {
        self.errors += 1;
        if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
            self.error_samples.push(msg);
        }
    }

    fn merge(&mut self, other: RunResult) {
        self.completed += other.completed;
        self.served += other.served;
        self.errors += other.errors;
        for msg in other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES && !self.error_samples.contains(&msg) {
                self.error_samples.push(msg);
            }
        }
        self.latencies_ns.extend(other.latencies_ns);
    }
}

/// Why a single exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    Write(std::io::Error),
    Read(WireError),
    Timeout,
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Write(e) => write!(f, "write failed: {e}"),
            ExchangeError::Read(e) => write!(f, "{e}"),
            ExchangeError::Timeout => f.write_str("request timed out"),
        }
    }
}

/// The open connection in `slot`, connecting first when there is none. A
/// failed connect goes to `on_error`, backs off briefly (never past `end`)
/// and yields `None`, so the caller's loop tries again.
pub async fn connected(
    slot: &mut Option<Connection>,
    addr: SocketAddr,
    timeout: Duration,
    keep_body: bool,
    end: Instant,
    on_error: impl FnOnce(String),
) -> Option<&mut Connection> {
    if slot.is_none() {
        match Connection::connect(addr, timeout, keep_body).await {
            Ok(c) => *slot = Some(c),
            Err(e) => {
                on_error(format!("connect: {e}"));
                let backoff = CONNECT_BACKOFF.min(end.saturating_duration_since(Instant::now()));
                tokio::time::sleep(backoff).await;
                return None;
            }
        }
    }
    slot.as_mut()
}

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    reader: ResponseReader,
}

impl Connection {
    /// Connects with `TCP_NODELAY` set: without it a small request can sit
    /// in the kernel waiting for a delayed ACK (see ARCHITECTURE.md,
    /// "Lessons from measuring peers here").
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
        keep_body: bool,
    ) -> std::io::Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            reader: ResponseReader::new(keep_body),
        })
    }

    /// Sends pre-encoded request bytes and reads the whole response.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Response, ExchangeError> {
        let io = async {
            self.stream
                .write_all(request)
                .await
                .map_err(ExchangeError::Write)?;
            self.reader
                .read_response(&mut self.stream)
                .await
                .map_err(ExchangeError::Read)
        };
        tokio::time::timeout(timeout, io)
            .await
            .unwrap_or(Err(ExchangeError::Timeout))
    }
}

/// Sends one request on a fresh connection and returns the response with its
/// body: used to check a target before loading it, and to show what it said
/// when it says something unexpected.
pub async fn probe(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<Response, String> {
    let mut conn = Connection::connect(addr, timeout, true)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    conn.exchange(request, timeout)
        .await
        .map_err(|e| e.to_string())
}

/// A response counts as a success only if it is a 200 with a non-empty,
/// completely read body (the reader already enforced the framing).
fn check(resp: &Response) -> Result<(), String> {
    if resp.status != 200 {
        return Err(format!("status {}", resp.status));
    }
    if resp.body_len == 0 {
        return Err("empty body".to_string());
    }
    Ok(())
}

/// Runs `cfg.concurrency` closed-loop clients against `addr` and merges
/// their results. Must be called inside a tokio runtime.
pub async fn run(addr: SocketAddr, request: Arc<[u8]>, cfg: &RunConfig) -> RunResult {
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;

    let mut clients = JoinSet::new();
    for _ in 0..cfg.concurrency {
        let request = Arc::clone(&request);
        let cfg = cfg.clone();
        clients.spawn(async move { client_loop(addr, &request, &cfg, measure_from, end).await });
    }

    let mut total = RunResult {
        window: cfg.duration,
        ..RunResult::default()
    };
    while let Some(joined) = clients.join_next().await {
        match joined {
            Ok(part) => total.merge(part),
            Err(e) => total.record_error(format!("client task failed: {e}")),
        }
    }
    total
}

/// One client: a connection, reopened after close or error, until `end`.
async fn client_loop(
    addr: SocketAddr,
    request: &[u8],
    cfg: &RunConfig,
    measure_from: Instant,
    end: Instant,
) -> RunResult {
    let mut result = RunResult::default();
    // Pre-size for a plausible rate so pushes do not reallocate mid-run.
    if cfg.concurrency == 1 {
        result.latencies_ns.reserve(200_000);
    }
    let mut conn: Option<Connection> = None;

    while Instant::now() < end {
        let Some(c) = connected(&mut conn, addr, cfg.request_timeout, false, end, |e| {
            result.record_error(e)
        })
        .await
        else {
            continue;
        };

        let sent = Instant::now();
        let outcome = c.exchange(request, cfg.request_timeout).await;
        let done = Instant::now();
        match outcome {
            Ok(resp) => {
                if resp.must_close {
                    conn = None;
                }
                match check(&resp) {
                    Ok(()) => {
                        result.served += 1;
                        // Only exchanges entirely inside the window count,
                        // so throughput is not inflated by warmup traffic.
                        if sent >= measure_from && done <= end {
                            result.completed += 1;
                            result
                                .latencies_ns
                                .push(done.duration_since(sent).as_nanos() as u64);
                        }
                    }
                    Err(msg) => result.record_error(msg),
                }
            }
            Err(e) => {
                // The connection state is unknown after a failure: reopen.
                conn = None;
                result.record_error(e.to_string());
            }
        }
    }
    result
}
