//! Measuring one target: the probe, the runs, and what the target's own
//! processes spent on them.
//!
//! Non-streamed: a probe whose answer must be a whole OpenAI completion,
//! latency at concurrency 1, then throughput at concurrency N with the
//! target's CPU time and the load generator's sampled around the run and
//! the target's peak memory reset at its start. Afterwards a Sluice
//! target must show, in its own metrics, that each of its plugins ran on
//! every request. Any failure is counted as an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::loadgen::{self, RunConfig};
use crate::report::{CpuPerRequest, StreamReport, TargetReport};
use crate::stack::Target;
use crate::wire::encode_request;
use crate::{cpu, metrics, payloads, rss, stream};

/// The path every target is asked on (the OpenAI shape).
pub const PATH: &str = "/v1/chat/completions";

/// The runs of the non-streamed matrix.
#[derive(Debug, Clone)]
pub struct Runs {
    pub latency: RunConfig,
    pub throughput: RunConfig,
}

/// The pre-encoded request for `target` with `body`.
pub fn request(target: &Target, body: &str) -> Arc<[u8]> {
    let auth = target.api_key.as_deref().map(|k| format!("Bearer {k}"));
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

/// Measures one target of the non-streamed matrix.
pub async fn matrix_target(target: &Target, runs: &Runs) -> TargetReport {
    let body = payloads::chat_body(target.model());
    let req = request(target, &body);
    let probe = probe(target, &req, runs.latency.request_timeout).await;

    let lat = loadgen::run(target.addr, Arc::clone(&req), &runs.latency).await;
    let served_before = lat.served;

    let memory_pids = if target.memory_in_workers {
        cpu::children(target.pid)
    } else {
        vec![target.pid]
    };
    // Without the reset the peak would be the process's lifetime peak
    // (plugin compilation at startup); it is still printed, as such.
    let reset = memory_pids.iter().all(|p| rss::reset_peak(*p).is_ok());
    let (cpu0, self0) = (cpu::tree_ns(target.pid), cpu::self_ns());
    let thr = loadgen::run(target.addr, Arc::clone(&req), &runs.throughput).await;
    let (cpu1, self1) = (cpu::tree_ns(target.pid), cpu::self_ns());
    let served = thr.served;

    let mut r = TargetReport::new(&target.name, target.role, lat, thr);
    r.cpu = CpuPerRequest::new(
        cpu1.saturating_sub(cpu0),
        self1.saturating_sub(self0),
        served,
    );
    r.rss = rss::sum(&memory_pids);
    if !reset {
        eprintln!(
            "note: could not reset the peak RSS of {}: its RSS MB is the lifetime peak",
            target.name
        );
    }
    if let Err(e) = probe {
        r.add_errors(1, vec![e]);
    }
    let total = served_before + served + 1;
    r.add_errors_from(check_plugins(target, total, runs.latency.request_timeout).await);
    r
}

/// Measures one target of the streaming scenario.
pub async fn stream_target(
    target: &Target,
    prompt: &str,
    expected: &str,
    cfg: &RunConfig,
) -> StreamReport {
    let body = stream::chat_body(stream_model(target), prompt);
    let req = request(target, &body);
    let run = stream::run(target.addr, &req, expected, cfg).await;
    let served = run.served;
    let mut r = StreamReport::new(&target.name, target.role, run);
    for e in check_plugins(target, served, cfg.request_timeout).await {
        r.errors += 1;
        r.error_samples.push(e);
    }
    r
}

/// The direct and pass-through targets stream from the mock by a plain
/// model name; a Sluice target asks for its variant's model.
fn stream_model(target: &Target) -> &'static str {
    match target.role {
        crate::stack::Role::Sluice(v) => v.model(),
        _ => "gpt-4o-mini",
    }
}

/// One request before loading a target, so a misconfigured target is
/// explained by what it answered rather than only by an error count.
async fn probe(target: &Target, request: &[u8], timeout: Duration) -> Result<(), String> {
    let resp = loadgen::probe(target.addr, request, timeout)
        .await
        .map_err(|e| format!("probe failed: {e}"))?;
    let body = resp.body.unwrap_or_default();
    let checked = if resp.status == 200 {
        payloads::check_completion(&body)
    } else {
        Err(format!("status {}", resp.status))
    };
    checked.map_err(|e| {
        let shown = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        eprintln!("WARNING: {} answered the probe: {e}: {shown}", target.name);
        format!("probe: {e}")
    })
}

/// Errors if a plugin of `target` did not answer `requests` calls or
/// failed any (empty for targets without plugins).
async fn check_plugins(target: &Target, requests: u64, timeout: Duration) -> Vec<String> {
    let (Some(admin), false) = (target.admin, target.components().is_empty()) else {
        return Vec::new();
    };
    let text = match get(admin, "/metrics", timeout).await {
        Ok(t) => t,
        Err(e) => return vec![format!("GET /metrics: {e}")],
    };
    target
        .components()
        .iter()
        .filter_map(|c| metrics::check_plugin(&text, c.plugin_name(), c.min_calls(requests)).err())
        .collect()
}

async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, String> {
    let req = encode_request("GET", &addr.to_string(), path, &[], b"");
    let resp = loadgen::probe(addr, &req, timeout).await?;
    if resp.status != 200 {
        return Err(format!("status {}", resp.status));
    }
    Ok(String::from_utf8_lossy(&resp.body.unwrap_or_default()).into_owned())
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::stack::Role;
    use crate::variants::Variant;

    fn target(role: Role, key: Option<&str>) -> Target {
        Target {
            name: "t".into(),
            role,
            addr: "127.0.0.1:8080".parse().unwrap(),
            api_key: key.map(str::to_owned),
            pid: 1,
            memory_in_workers: false,
            admin: None,
        }
    }

    #[test]
    fn requests_carry_the_key_only_where_one_is_needed() {
        let keyed = request(
            &target(Role::Sluice(Variant::Everything), Some("sk-1")),
            "{}",
        );
        let text = String::from_utf8_lossy(&keyed);
        assert!(text.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
        assert!(text.contains("authorization: Bearer sk-1\r\n"));
        let plain = request(&target(Role::Bare, None), "{}");
        assert!(!String::from_utf8_lossy(&plain).contains("authorization"));
    }

    #[test]
    fn baselines_stream_a_plain_model_and_sluice_its_variants() {
        assert_eq!(stream_model(&target(Role::Nginx, None)), "gpt-4o-mini");
        assert_eq!(
            stream_model(&target(Role::Sluice(Variant::Everything), None)),
            "claude-x"
        );
    }
}
