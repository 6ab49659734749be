//! Event-writer throughput: usage records pushed from request-like tasks
//! through the queue to the one writer thread, committed in group commits
//! (fsync included), until all are durable. Prints records per second.
//! Target: 50,000/s on the 2-core machine (10× the seed's reference of
//! ~4,800 events/s end to end).

use std::time::Instant;

use sluice::events::{EventLog, PolicyResult, Scopes, UsageRecord};
use sluice::money::Usd;

fn record(i: u64) -> UsageRecord {
    UsageRecord {
        call_id: format!("req_{i:016x}:0"),
        request_id: format!("req_{i:016x}"),
        ts_ms: sluice::clock::now_ms(),
        schema: sluice::events::SCHEMA,
        gateway_key_id: Some(format!("key_{:016x}", i % 64)),
        user_id: Some(format!("user{}", i % 16)),
        team_id: Some("ml".into()),
        workspace: None,
        inbound_shape: "openai".into(),
        provider: Some("mock".into()),
        model: Some("mock:gpt-4o-mini".into()),
        input_tokens: 12,
        output_tokens: 40,
        cached_input_tokens: 0,
        cost_usd: Usd::parse_positive("0.0000258").unwrap(),
        pricing_version: Some("2026-12-01".into()),
        unpriced: false,
        usage_estimated: false,
        streamed: i.is_multiple_of(2),
        status: 200,
        latency_ms: 3,
        policy_result: PolicyResult::Allowed,
        error_code: None,
        scopes: Scopes(vec![
            "team:ml".into(),
            format!("user:user{}", i % 16),
            format!("key:key_{:016x}", i % 64),
        ]),
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = EventLog::open(&dir.path().join("events.redb")).unwrap();
    for (round, n) in [(1, 20_000u64), (2, 200_000), (3, 200_000)] {
        let start = round * 10_000_000;
        let log = log.clone();
        let elapsed = rt.block_on(async move {
            let t = Instant::now();
            // 32 producers, like 32 concurrent requests settling.
            let tasks: Vec<_> = (0..32u64)
                .map(|p| {
                    let log = log.clone();
                    tokio::spawn(async move {
                        let mut i = start + p;
                        while i < start + n {
                            log.usage(record(i)).await;
                            i += 32;
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            log.flush().await;
            t.elapsed()
        });
        let rate = n as f64 / elapsed.as_secs_f64();
        let label = if round == 1 { "warm-up" } else { "measured" };
        println!(
            "event log ({label}): {n} usage records (3 spend rows each) committed in {:.0} ms: {:.0} records/s",
            elapsed.as_secs_f64() * 1000.0,
            rate
        );
    }
    let m = sluice::metrics::get();
    println!(
        "commits: {} entries written, {} waited for room in the queue",
        m.events_written.get(),
        m.events_backpressure.get()
    );
}
