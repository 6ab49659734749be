//! Turning raw runs into the two tables.
//!
//! Absolute figures vary from machine to machine and run to run; ratios
//! against baselines measured in the same run are what the goals are
//! stated in, so both are printed.

use std::fmt::Write;

use crate::loadgen::RunResult;
use crate::rss::Rss;
use crate::stack::Role;
use crate::stream::StreamRunResult;

/// Latency percentiles of one run, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub samples: usize,
}

impl Latency {
    /// Nearest-rank percentiles over all samples (exact, no histogram
    /// buckets: a run at concurrency 1 yields at most a few 100k samples).
    pub fn from_samples(samples_ns: &mut [u64]) -> Self {
        samples_ns.sort_unstable();
        let us = |q| percentile(samples_ns, q) as f64 / 1000.0;
        Latency {
            p50_us: us(0.50),
            p90_us: us(0.90),
            p99_us: us(0.99),
            samples: samples_ns.len(),
        }
    }
}

/// Nearest-rank percentile of sorted data; 0 for no data.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// CPU time over the throughput run, per request served.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuPerRequest {
    /// The target's process (tree).
    pub target_us: f64,
    /// The load generator (this process).
    pub client_us: f64,
}

impl CpuPerRequest {
    /// From on-CPU ns deltas and the requests served meanwhile.
    pub fn new(target_ns: u64, client_ns: u64, served: u64) -> Option<Self> {
        (served > 0).then(|| CpuPerRequest {
            target_us: target_ns as f64 / served as f64 / 1000.0,
            client_us: client_ns as f64 / served as f64 / 1000.0,
        })
    }
}

/// Of one target's rounds, the one with the median CPU per request (a row
/// from one run, so its columns agree), with every round's errors.
pub fn median_round(mut rounds: Vec<TargetReport>) -> TargetReport {
    let errors: u64 = rounds.iter().map(|r| r.errors).sum();
    let samples: Vec<String> = rounds
        .iter()
        .flat_map(|r| r.error_samples.iter().cloned())
        .collect();
    rounds.sort_by(|a, b| cpu_of(a).total_cmp(&cpu_of(b)));
    let mut median = rounds.swap_remove(rounds.len() / 2);
    median.errors = errors;
    median.error_samples = samples;
    median
}

/// `name: min / median / max` CPU µs per request over its rounds.
pub fn cpu_spread(rounds: &[TargetReport]) -> Option<String> {
    let mut cpu: Vec<f64> = rounds
        .iter()
        .filter_map(|r| r.cpu.map(|c| c.target_us))
        .collect();
    cpu.sort_by(f64::total_cmp);
    let (first, last) = (cpu.first()?, cpu.last()?);
    Some(format!(
        "{:<28} {first:7.1} / {:7.1} / {last:7.1}",
        rounds[0].name,
        cpu[cpu.len() / 2]
    ))
}

fn cpu_of(r: &TargetReport) -> f64 {
    r.cpu.map_or(f64::MAX, |c| c.target_us)
}

/// Figures for one target of the non-streamed matrix.
#[derive(Debug, Clone)]
pub struct TargetReport {
    pub name: String,
    pub role: Role,
    /// At concurrency 1.
    pub latency: Latency,
    /// At the throughput concurrency.
    pub rps: f64,
    pub cpu: Option<CpuPerRequest>,
    /// After the throughput run; the peak is since its start.
    pub rss: Option<Rss>,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl TargetReport {
    pub fn new(
        name: &str,
        role: Role,
        mut latency_run: RunResult,
        throughput_run: RunResult,
    ) -> Self {
        let latency = Latency::from_samples(&mut latency_run.latencies_ns);
        let rps = throughput_run.requests_per_sec();
        let mut r = TargetReport {
            name: name.to_string(),
            role,
            latency,
            rps,
            cpu: None,
            rss: None,
            errors: 0,
            error_samples: Vec::new(),
        };
        r.add_errors(latency_run.errors, latency_run.error_samples);
        r.add_errors(throughput_run.errors, throughput_run.error_samples);
        r
    }

    pub fn add_errors(&mut self, n: u64, samples: Vec<String>) {
        self.errors += n;
        for s in samples {
            if !self.error_samples.contains(&s) {
                self.error_samples.push(s);
            }
        }
    }

    /// One error per message.
    pub fn add_errors_from(&mut self, messages: Vec<String>) {
        self.add_errors(messages.len() as u64, messages);
    }

    /// Usable in a comparison: no errors and some samples.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.latency.samples > 0 && self.rps > 0.0
    }
}

/// The first report with `role`.
pub fn find(reports: &[TargetReport], role: Role) -> Option<&TargetReport> {
    reports.iter().find(|r| r.role == role)
}

/// `value / base`, if both exist and the base is positive.
pub fn ratio(value: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => Some(v / b),
        _ => None,
    }
}

fn cell(v: Option<f64>, precision: usize, width: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.precision$}"),
        None => format!("{:>width$}", "-"),
    }
}

/// Renders the non-streamed matrix.
pub fn render_matrix(reports: &[TargetReport], concurrency: usize) -> String {
    let direct = find(reports, Role::Direct);
    let nginx = find(reports, Role::Nginx);
    let bare = find(reports, Role::Bare);
    let rps = |r: Option<&TargetReport>| r.map(|r| r.rps);
    let cpu = |r: Option<&TargetReport>| r.and_then(|r| r.cpu).map(|c| c.target_us);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>7} {:>7} {:>7} {:>9} {:>6} {:>6} {:>8} {:>6} {:>6} {:>7} {:>8} {:>6}",
        "target",
        "+p50",
        "+p90",
        "+p99",
        format!("rps c={concurrency}"),
        "×nginx",
        "×bare",
        "CPU µs/r",
        "×nginx",
        "×bare",
        "RSS MB",
        "client µs",
        "errors"
    );
    let _ = writeln!(
        out,
        "{}",
        "-".repeat(26 + 7 * 3 + 9 + 6 * 2 + 8 + 6 * 2 + 7 + 9 + 6 + 12)
    );
    for r in reports {
        let added = |f: fn(&Latency) -> f64| {
            direct
                .filter(|d| r.role != Role::Direct && d.latency.samples > 0)
                .map(|d| f(&r.latency) - f(&d.latency))
        };
        let own_cpu = r.cpu.map(|c| c.target_us);
        let _ = writeln!(
            out,
            "{:<26} {} {} {} {:>9.0} {} {} {} {} {} {} {} {:>6}",
            r.name,
            cell(added(|l| l.p50_us), 1, 7),
            cell(added(|l| l.p90_us), 1, 7),
            cell(added(|l| l.p99_us), 1, 7),
            r.rps,
            cell(ratio(Some(r.rps), rps(nginx)), 2, 6),
            cell(ratio(Some(r.rps), rps(bare)), 2, 6),
            cell(own_cpu, 1, 8),
            cell(ratio(own_cpu, cpu(nginx)), 2, 6),
            cell(ratio(own_cpu, cpu(bare)), 2, 6),
            cell(r.rss.map(|m| m.peak_mib()), 1, 7),
            cell(r.cpu.map(|c| c.client_us), 1, 9),
            r.errors
        );
    }
    if let Some(d) = direct {
        let _ = writeln!(
            out,
            "\n+p50/+p90/+p99: µs added over \"{}\" at concurrency 1 (its own: p50 {:.1}, p90 {:.1}, p99 {:.1} µs).",
            d.name, d.latency.p50_us, d.latency.p90_us, d.latency.p99_us
        );
    }
    let _ = writeln!(
        out,
        "rps at concurrency {concurrency}; ×nginx/×bare: ratio to the nginx proxy / bare pingora row.\n\
         CPU µs/r: on-CPU time of the target's processes (all threads; nginx: master + workers; the\n\
         direct row: the upstream itself) over the c={concurrency} run, per request served; client µs: the\n\
         load generator's own. RSS MB: peak resident set during the c={concurrency} run (VmHWM, reset at its\n\
         start; nginx: sum of its workers)."
    );
    write_errors(
        &mut out,
        reports
            .iter()
            .map(|r| (&r.name, r.errors, &r.error_samples)),
    );
    out
}

/// Figures for one target of the streaming scenario.
#[derive(Debug, Clone)]
pub struct StreamReport {
    pub name: String,
    pub role: Role,
    /// Request written → first response body byte.
    pub ttfb: Latency,
    /// Request written → end of the stream.
    pub total: Latency,
    /// First body byte → end of the stream: how spread out the body
    /// arrived (short after a late first byte = buffered, then a burst).
    pub body_span: Latency,
    /// Fewest and most `data:` events in one stream.
    pub events: Option<(usize, usize)>,
    pub errors: u64,
    pub error_samples: Vec<String>,
}

impl StreamReport {
    pub fn new(name: &str, role: Role, mut run: StreamRunResult) -> Self {
        let mut span: Vec<u64> = run
            .total_ns
            .iter()
            .zip(&run.ttfb_ns)
            .map(|(total, ttfb)| total.saturating_sub(*ttfb))
            .collect();
        StreamReport {
            name: name.to_string(),
            role,
            body_span: Latency::from_samples(&mut span),
            ttfb: Latency::from_samples(&mut run.ttfb_ns),
            total: Latency::from_samples(&mut run.total_ns),
            events: run.events,
            errors: run.errors,
            error_samples: run.error_samples,
        }
    }

    /// Usable as a term of a difference: no errors and some samples.
    pub fn is_clean(&self) -> bool {
        self.errors == 0 && self.total.samples > 0
    }
}

/// Renders the streaming table.
pub fn render_stream(reports: &[StreamReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>9} {:>9} {:>10} {:>10} {:>9} {:>7} {:>8} {:>6}",
        "stream",
        "TTFB p50",
        "TTFB p99",
        "total p50",
        "total p99",
        "span p50",
        "events",
        "streams",
        "errors"
    );
    let _ = writeln!(out, "{}", "-".repeat(40 + 9 * 3 + 10 * 2 + 7 + 8 + 6 + 8));
    for r in reports {
        let events = match r.events {
            Some((lo, hi)) if lo == hi => lo.to_string(),
            Some((lo, hi)) => format!("{lo}-{hi}"),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:>9.1} {:>9.1} {:>10.1} {:>10.1} {:>9.1} {:>7} {:>8} {:>6}",
            r.name,
            r.ttfb.p50_us,
            r.ttfb.p99_us,
            r.total.p50_us,
            r.total.p99_us,
            r.body_span.p50_us,
            events,
            r.total.samples,
            r.errors
        );
    }
    let _ = writeln!(
        out,
        "\nTTFB: request written -> first response body byte; total: -> end of stream; \
         span: first body byte -> end of stream\n(µs, concurrency 1, keep-alive); events: \
         `data:` lines received per stream. A span much shorter than the others' means the\n\
         chunks were held and then sent in a burst: the per-chunk figures then measure \
         batched, not streamed, chunks."
    );
    write_errors(
        &mut out,
        reports
            .iter()
            .map(|r| (&r.name, r.errors, &r.error_samples)),
    );
    out
}

/// What `over` adds to `base`: at the first byte (p50) and per upstream
/// content chunk over the whole stream (p50 totals); `None` unless both
/// are clean.
pub fn stream_added(over: &StreamReport, base: &StreamReport, chunks: usize) -> Option<(f64, f64)> {
    (over.is_clean() && base.is_clean()).then(|| {
        (
            over.ttfb.p50_us - base.ttfb.p50_us,
            (over.total.p50_us - base.total.p50_us) / chunks.max(1) as f64,
        )
    })
}

/// One derived line of [`stream_added`].
pub fn render_stream_added(
    what: &str,
    over: &StreamReport,
    base: &StreamReport,
    chunks: usize,
) -> String {
    match stream_added(over, base, chunks) {
        Some((ttfb, per_chunk)) => format!(
            "{what}: added TTFB p50 {ttfb:+.1} µs; added per chunk {per_chunk:+.2} µs \
             ({chunks} content chunks, from total p50)\n"
        ),
        None => format!("{what}: not evaluated (errors or no samples)\n"),
    }
}

/// One `ERRORS in …` line per target that had any.
fn write_errors<'a>(
    out: &mut String,
    reports: impl Iterator<Item = (&'a String, u64, &'a Vec<String>)>,
) {
    for (name, errors, samples) in reports.filter(|r| r.1 > 0) {
        let _ = writeln!(out, "ERRORS in {name}: {errors} ({})", samples.join("; "));
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;
    use crate::variants::Variant;

    pub fn target(name: &str, role: Role, p50: f64, rps: f64, cpu: f64) -> TargetReport {
        TargetReport {
            name: name.into(),
            role,
            latency: Latency {
                p50_us: p50,
                p90_us: p50 * 1.5,
                p99_us: p50 * 2.0,
                samples: 1,
            },
            rps,
            cpu: Some(CpuPerRequest {
                target_us: cpu,
                client_us: 10.0,
            }),
            rss: Some(Rss {
                peak_kib: 40 * 1024,
                now_kib: 30 * 1024,
            }),
            errors: 0,
            error_samples: vec![],
        }
    }

    pub fn stream(name: &str, role: Role, ttfb: f64, total: f64) -> StreamReport {
        let lat = |v: f64| Latency {
            p50_us: v,
            p90_us: v,
            p99_us: v * 2.0,
            samples: 10,
        };
        StreamReport {
            name: name.into(),
            role,
            ttfb: lat(ttfb),
            total: lat(total),
            body_span: Latency::default(),
            events: Some((66, 66)),
            errors: 0,
            error_samples: vec![],
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let data: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&data, 0.50), 50);
        assert_eq!(percentile(&data, 0.90), 90);
        assert_eq!(percentile(&data, 0.99), 99);
        assert_eq!(percentile(&data, 1.0), 100);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn cpu_per_request_needs_requests() {
        let c = CpuPerRequest::new(50_000_000, 10_000_000, 1000).unwrap();
        assert_eq!((c.target_us, c.client_us), (50.0, 10.0));
        assert_eq!(CpuPerRequest::new(1, 1, 0), None);
    }

    #[test]
    fn matrix_shows_added_latency_ratios_and_errors() {
        let mut sluice = target(
            "sluice",
            Role::Sluice(Variant::NothingOn),
            60.0,
            20_000.0,
            50.0,
        );
        sluice.add_errors(2, vec!["status 502".into()]);
        let reports = vec![
            target("direct", Role::Direct, 20.0, 50_000.0, 5.0),
            target("nginx", Role::Nginx, 40.0, 40_000.0, 20.0),
            target("bare", Role::Bare, 45.0, 25_000.0, 40.0),
            sluice,
        ];
        let table = render_matrix(&reports, 32);
        let row = table.lines().find(|l| l.starts_with("sluice ")).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "sluice", "40.0", "60.0", "80.0", "20000", "0.50", "0.80", "50.0", "2.50", "1.25",
                "40.0", "10.0", "2"
            ]
        );
        let direct = table.lines().find(|l| l.starts_with("direct ")).unwrap();
        assert!(direct.split_whitespace().nth(1) == Some("-"), "{direct}");
        assert!(
            table.contains("ERRORS in sluice: 2 (status 502)"),
            "{table}"
        );
        assert!(table.contains("its own: p50 20.0, p90 30.0, p99 40.0 µs"));
        let lone = render_matrix(&reports[3..], 32);
        let cols: Vec<&str> = lone.lines().nth(2).unwrap().split_whitespace().collect();
        assert_eq!(cols[1..7], ["-", "-", "-", "20000", "-", "-"], "{lone}");
    }

    #[test]
    fn stream_table_and_added_cost_per_chunk() {
        let pass = stream("passthrough", Role::Direct, 100.0, 400.0);
        let trans = stream(
            "translated",
            Role::Sluice(Variant::Everything),
            150.0,
            526.0,
        );
        let table = render_stream(&[pass.clone(), trans.clone()]);
        assert!(table.contains("     66 "), "{table}");
        let line = render_stream_added("translated over passthrough", &trans, &pass, 63);
        assert!(line.contains("added TTFB p50 +50.0 µs"), "{line}");
        assert!(
            line.contains("added per chunk +2.00 µs (63 content chunks"),
            "{line}"
        );
        let mut bad = trans.clone();
        bad.errors = 1;
        bad.error_samples = vec!["content mismatch".into()];
        assert!(render_stream_added("x", &bad, &pass, 63).contains("not evaluated"));
        assert!(render_stream(&[bad]).contains("ERRORS in translated: 1 (content mismatch)"));
    }
}
