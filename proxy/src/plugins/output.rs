//! What guests write (stdout, stderr, `host.log`) goes to the proxy's log:
//! one line per guest line, tagged with the plugin's name, control
//! characters escaped (a guest cannot forge log lines), each line capped,
//! and every plugin rate-limited so a guest printing in a loop cannot flood
//! the log or slow the worker.
//!
//! wasmtime-wasi's own stdout streams block on a runtime to write, which
//! panics on a pingora worker; this sink never blocks: a write formats and
//! hands the line to `tracing`, or counts it as dropped.

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::metrics::{self, LogMetrics};

/// Longest line kept, in bytes of guest output; the rest is cut and the cut
/// counted. Bounds what one `print` of a huge string costs the log.
pub const MAX_LINE_BYTES: usize = 1024;
/// Sustained lines per second per plugin, and the burst allowed above it.
/// A guest printing on every call at thousands of requests per second is
/// summarised instead of logged line by line.
const LINES_PER_SECOND: f64 = 20.0;
const BURST_LINES: f64 = 100.0;
/// What one `check-write` permits; guests split larger writes.
const WRITE_PERMIT: usize = 64 << 10;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Stdout,
    Stderr,
    Log(tracing::Level),
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Stdout => "stdout",
            Source::Stderr => "stderr",
            Source::Log(_) => "log",
        }
    }
}

/// One plugin's log budget, shared by all its instances.
pub struct GuestLog {
    plugin: Arc<str>,
    bucket: Mutex<Bucket>,
    metrics: LogMetrics,
}

struct Bucket {
    tokens: f64,
    last: Instant,
    /// Lines dropped since the last one logged.
    suppressed: u64,
}

impl GuestLog {
    pub fn new(plugin: Arc<str>) -> Arc<Self> {
        Self::with_metrics(plugin.clone(), metrics::get().guest_log(&plugin))
    }

    /// For instances that validate a component before its name is known:
    /// logged, but counted nowhere.
    pub fn unnamed() -> Arc<Self> {
        let detached = || prometheus::IntCounter::new("unregistered", "-").expect("valid name");
        Self::with_metrics(
            Arc::from("(loading)"),
            LogMetrics {
                logged: detached(),
                dropped: detached(),
            },
        )
    }

    fn with_metrics(plugin: Arc<str>, metrics: LogMetrics) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            plugin,
            bucket: Mutex::new(Bucket {
                tokens: BURST_LINES,
                last: Instant::now(),
                suppressed: 0,
            }),
        })
    }

    /// Log one guest line (without its newline), if the budget allows.
    /// Blank lines are skipped.
    pub fn line(&self, source: Source, raw: &[u8]) {
        if raw.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let suppressed = {
            let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(b.last).as_secs_f64() * LINES_PER_SECOND;
            b.tokens = (b.tokens + refill).min(BURST_LINES);
            b.last = now;
            if b.tokens < 1.0 {
                b.suppressed += 1;
                drop(b);
                self.metrics.dropped.inc();
                return;
            }
            b.tokens -= 1.0;
            std::mem::take(&mut b.suppressed)
        };
        self.metrics.logged.inc();
        let text = escape_line(raw);
        let plugin = &*self.plugin;
        let stream = source.as_str();
        match source {
            Source::Stdout | Source::Log(tracing::Level::INFO) => {
                tracing::info!(plugin, stream, suppressed, "{text}")
            }
            Source::Stderr | Source::Log(tracing::Level::WARN) => {
                tracing::warn!(plugin, stream, suppressed, "{text}")
            }
            Source::Log(tracing::Level::ERROR) => {
                tracing::error!(plugin, stream, suppressed, "{text}")
            }
            Source::Log(tracing::Level::DEBUG) => {
                tracing::debug!(plugin, stream, suppressed, "{text}")
            }
            Source::Log(_) => tracing::trace!(plugin, stream, suppressed, "{text}"),
        }
    }
}

/// `raw` as one printable line: invalid UTF-8 replaced, control characters
/// (newlines included) escaped, at most [`MAX_LINE_BYTES`] of input kept.
pub fn escape_line(raw: &[u8]) -> String {
    escape_capped(raw, MAX_LINE_BYTES)
}

/// [`escape_line`] with another cap: for guest-influenced text in the host's
/// own log lines (trap messages carry the guest's function names).
pub fn escape_capped(raw: &[u8], max: usize) -> String {
    let (kept, cut) = if raw.len() > max {
        (&raw[..max], raw.len() - max)
    } else {
        (raw, 0)
    };
    let lossy = String::from_utf8_lossy(kept);
    let mut out = String::with_capacity(lossy.len() + 16);
    for c in lossy.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut > 0 {
        let _ = write!(out, "… (cut at {max} bytes)");
    }
    out
}

/// A guest's stdout or stderr, for one instance: buffers a partial line and
/// logs whole ones.
#[derive(Clone)]
pub struct GuestOutput {
    log: Arc<GuestLog>,
    source: Source,
}

impl GuestOutput {
    pub fn new(log: Arc<GuestLog>, source: Source) -> Self {
        Self { log, source }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineWriter::new(self.clone()))
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter::new(self.clone()))
    }
}

/// Splits writes into lines. A line longer than the cap is logged, cut, as
/// soon as it reaches the cap and the rest of it is discarded, so a guest
/// can make the host neither buffer nor log without bound.
struct LineWriter {
    out: GuestOutput,
    partial: Vec<u8>,
    /// Inside an overlong line already logged: drop bytes until its end.
    skipping: bool,
}

impl LineWriter {
    fn new(out: GuestOutput) -> Self {
        Self {
            out,
            partial: Vec::new(),
            skipping: false,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let nl = bytes.iter().position(|&b| b == b'\n');
            let (line, rest, ends) = match nl {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.skipping {
                let room = (MAX_LINE_BYTES + 1).saturating_sub(self.partial.len());
                self.partial
                    .extend_from_slice(&line[..line.len().min(room)]);
                if self.partial.len() > MAX_LINE_BYTES {
                    self.emit();
                    self.skipping = true;
                } else if ends {
                    self.emit();
                }
            }
            if ends {
                self.skipping = false;
            }
        }
    }

    fn emit(&mut self) {
        if !self.partial.is_empty() {
            self.out.log.line(self.out.source, strip_cr(&self.partial));
            self.partial.clear();
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().emit();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn escapes_controls_and_caps_length() {
        assert_eq!(escape_line(b"a\tb\x1b[31m"), "a\\tb\\u{1b}[31m");
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let line = escape_line(&long);
        assert!(line.ends_with("(cut at 1024 bytes)"), "{line}");
        assert_eq!(escape_line(b"\xff ok"), "\u{fffd} ok");
    }

    #[test]
    fn splits_lines_and_bounds_the_partial_buffer() {
        let log = GuestLog::new(Arc::from("t"));
        let mut w = LineWriter::new(GuestOutput::new(log.clone(), Source::Stdout));
        w.push(b"one\ntw");
        assert_eq!(w.partial, b"tw");
        w.push(b"o\n");
        assert!(w.partial.is_empty());
        w.push(&vec![b'y'; 5 * MAX_LINE_BYTES]);
        assert!(w.partial.is_empty() && w.skipping);
        w.push(b"yyy\nnext\n");
        // one, two, the overlong line once (cut), next.
        assert_eq!(log.metrics.logged.get(), 4);
    }

    #[test]
    fn rate_limits_per_plugin() {
        let log = GuestLog::new(Arc::from("flood"));
        for _ in 0..1000 {
            log.line(Source::Stdout, b"spam");
        }
        let logged = log.metrics.logged.get();
        assert!((100..=110).contains(&logged), "{logged}");
        assert_eq!(log.metrics.dropped.get(), 1000 - logged);
    }
}
