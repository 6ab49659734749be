//! The performance goals of issue 11, checked against one run.
//!
//! Informational: the exit status reflects errors only, because figures on
//! a shared 2-core machine move between runs. A goal whose inputs are
//! missing or came from a run with errors is "not evaluated" rather than
//! met vacuously.

use std::fmt::Write;

use crate::report::{StreamReport, TargetReport, find, ratio, stream_added};
use crate::stack::Role;
use crate::variants::Variant;

/// One goal and what this run measured for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub text: &'static str,
    /// The figure, or why there is none.
    pub measured: String,
    /// `None`: not evaluated.
    pub met: Option<bool>,
}

fn goal(text: &'static str, figure: Option<(f64, String)>, met: impl Fn(f64) -> bool) -> Goal {
    match figure {
        Some((v, measured)) => Goal {
            text,
            measured,
            met: Some(met(v)),
        },
        None => Goal {
            text,
            measured: "not evaluated (missing, or errors in its runs)".into(),
            met: None,
        },
    }
}

/// Evaluates every goal; `chunks` is the streamed reply's content chunks.
pub fn evaluate(matrix: &[TargetReport], streams: &[StreamReport], chunks: usize) -> Vec<Goal> {
    let clean = |role| find(matrix, role).filter(|r| r.is_clean());
    let all = clean(Role::Sluice(Variant::Everything));
    let none = clean(Role::Sluice(Variant::NothingOn));
    let bare = clean(Role::Bare);
    let nginx = clean(Role::Nginx);
    let direct = clean(Role::Direct);
    let cpu = |r: Option<&TargetReport>| r.and_then(|r| r.cpu).map(|c| c.target_us);
    let cpu_ratio = |r: Option<&TargetReport>| {
        ratio(cpu(r), cpu(bare)).map(|x| {
            let (a, b) = (cpu(r).unwrap_or(0.0), cpu(bare).unwrap_or(0.0));
            (x, format!("{x:.2}× ({a:.1} vs {b:.1} µs/request)"))
        })
    };
    let stream = |role| streams.iter().find(|s| s.role == role);
    let streamed = match (
        stream(Role::Sluice(Variant::Everything)),
        stream(Role::Direct),
    ) {
        (Some(a), Some(d)) => stream_added(a, d, chunks),
        _ => None,
    };

    vec![
        goal(
            "CPU/request, everything on ≤ 1.3× bare pingora",
            cpu_ratio(all),
            |x| x <= 1.3,
        ),
        goal(
            "CPU/request, nothing on ≤ 1.05× bare pingora",
            cpu_ratio(none),
            |x| x <= 1.05,
        ),
        goal(
            "rps at c=32, everything on ≥ 0.4× nginx",
            ratio(all.map(|r| r.rps), nginx.map(|r| r.rps)).map(|x| {
                let (a, n) = (all.map_or(0.0, |r| r.rps), nginx.map_or(0.0, |r| r.rps));
                (x, format!("{x:.2}× ({a:.0} vs {n:.0} rps)"))
            }),
            |x| x >= 0.4,
        ),
        goal(
            "added p50 at c=1, everything on ≤ 40 µs",
            all.zip(direct).map(|(a, d)| {
                let v = a.latency.p50_us - d.latency.p50_us;
                (v, format!("{v:.1} µs"))
            }),
            |v| v <= 40.0,
        ),
        goal(
            "p99 ≤ 2× p50 at c=1, everything on (total latency)",
            all.filter(|a| a.latency.p50_us > 0.0).map(|a| {
                let x = a.latency.p99_us / a.latency.p50_us;
                (
                    x,
                    format!(
                        "{x:.2}× (p99 {:.1} / p50 {:.1} µs)",
                        a.latency.p99_us, a.latency.p50_us
                    ),
                )
            }),
            |x| x <= 2.0,
        ),
        goal(
            "streamed: per-SSE-chunk added through translator+redactor ≤ 2 µs (over direct)",
            streamed.map(|(_, c)| (c, format!("{c:+.2} µs"))),
            |c| c <= 2.0,
        ),
        goal(
            "streamed: TTFB added through translator+redactor ≤ 50 µs (over direct)",
            streamed.map(|(t, _)| (t, format!("{t:+.1} µs"))),
            |t| t <= 50.0,
        ),
        goal(
            "peak RSS under load, everything on ≤ 64 MB",
            all.and_then(|a| a.rss).map(|m| {
                let mb = m.peak_mib();
                (mb, format!("{mb:.1} MB"))
            }),
            |mb| mb <= 64.0,
        ),
    ]
}

/// The goals block.
pub fn render(goals: &[Goal]) -> String {
    let mut out =
        String::from("goals (informational; the exit status reflects request errors only):\n");
    for g in goals {
        let verdict = match g.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "-",
        };
        let _ = writeln!(out, "  {:<80} {:>8}  {}", g.text, verdict, g.measured);
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::report::test::{stream, target};

    fn matrix() -> Vec<TargetReport> {
        vec![
            target("direct", Role::Direct, 20.0, 50_000.0, 5.0),
            target("nginx", Role::Nginx, 40.0, 40_000.0, 20.0),
            target("bare", Role::Bare, 45.0, 25_000.0, 40.0),
            target(
                "none",
                Role::Sluice(Variant::NothingOn),
                50.0,
                24_000.0,
                41.0,
            ),
            target(
                "all",
                Role::Sluice(Variant::Everything),
                70.0,
                12_000.0,
                60.0,
            ),
        ]
    }

    #[test]
    fn goals_compare_against_the_right_baselines() {
        let streams = [
            stream("direct", Role::Direct, 100.0, 400.0),
            stream("all", Role::Sluice(Variant::Everything), 130.0, 463.0),
        ];
        let g = evaluate(&matrix(), &streams, 63);
        let by = |prefix: &str| g.iter().find(|g| g.text.starts_with(prefix)).unwrap();
        let all_cpu = by("CPU/request, everything");
        assert_eq!(all_cpu.met, Some(false));
        assert_eq!(all_cpu.measured, "1.50× (60.0 vs 40.0 µs/request)");
        assert_eq!(by("CPU/request, nothing").met, Some(true));
        assert_eq!(by("rps").measured, "0.30× (12000 vs 40000 rps)");
        assert_eq!(by("added p50").measured, "50.0 µs");
        assert_eq!(by("p99").met, Some(true));
        assert_eq!(by("streamed: per-SSE").measured, "+1.00 µs");
        assert_eq!(by("streamed: TTFB").met, Some(true));
        assert_eq!(by("peak RSS").met, Some(true));
        let text = render(&g);
        assert!(text.contains("NOT MET") && text.contains("met"));
    }

    #[test]
    fn runs_with_errors_are_not_evaluated() {
        let mut m = matrix();
        m[4].add_errors(1, vec!["status 500".into()]);
        let g = evaluate(&m, &[], 63);
        assert!(
            g.iter()
                .all(|g| g.met.is_none() || g.text.contains("nothing on"))
        );
        assert!(render(&g).contains("not evaluated"));
    }
}
