//! The routing view: the policy in effect, the availability breaker's
//! entries with when each clears, provider latencies and the pattern
//! store.
//!
//! | route | does |
//! |---|---|
//! | `GET /admin/routing` | policy, breaker, latencies, patterns |
//! | `POST /admin/routing/clock` `{"advance_ms": N}` | moves routing's clock (only with `[routing] clock_control`) |

use serde_json::{Value, json};

use crate::clock;
use crate::routing::Slot;
use crate::state::Gateway;

pub fn handle(gw: &Gateway, method: &str, path: &str, body: &[u8]) -> Option<(u16, Value)> {
    match (method, path) {
        ("GET", "/admin/routing") => Some((200, view(gw))),
        ("POST", "/admin/routing/clock") if gw.config.routing.clock_control => {
            let advance = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v["advance_ms"].as_u64());
            Some(match advance {
                Some(ms) => {
                    let offset = gw.clock.advance(ms);
                    (
                        200,
                        json!({"offset_ms": offset, "now": clock::rfc3339(gw.clock.now_ms())}),
                    )
                }
                None => (
                    400,
                    json!({"error": {"message": "body must be {\"advance_ms\": N}", "type": "invalid_request_error", "param": "advance_ms", "code": "invalid_request"}}),
                ),
            })
        }
        _ => None,
    }
}

fn view(gw: &Gateway) -> Value {
    let snapshot = gw.snapshot();
    let now = gw.clock.now_ms();
    // Entries that cleared since the last call are published here too, so
    // the gauges of a provider nobody tries any more come back.
    for change in gw.health.breaker.sweep(now) {
        crate::routing::health::publish(&change, &|id| snapshot.names_model(id));
    }
    let p = &snapshot.routing;
    let unavailable: Vec<Value> = gw
        .health
        .breaker
        .entries(now)
        .into_iter()
        .map(|e| {
            let scope = if e.model.is_none() {
                "provider"
            } else {
                "model"
            };
            json!({
                "provider": e.provider,
                "model": e.model.unwrap_or_else(|| "*".into()),
                "scope": scope,
                "reason": e.reason,
                "since": clock::rfc3339(e.since_ms),
                "last_attempt": clock::rfc3339(e.last_attempt_ms),
                "clears_at": clock::rfc3339(e.clears_at_ms),
                "clears_in_seconds": e.clears_at_ms.saturating_sub(now).div_ceil(1000),
                "recent_failures": e.recent_failures,
            })
        })
        .collect();
    let mut providers: Vec<Value> = snapshot
        .providers
        .names()
        .map(|name| json!({"name": name, "latency_ewma_ms": gw.health.latency_us(name) as f64 / 1000.0}))
        .collect();
    providers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let stats = gw.patterns.stats();
    json!({
        "policy_version": p.version,
        "budget_ms": p.budget.as_secs_f64() * 1000.0,
        "transparent": p.transparent,
        "managed_aliases": p.managed_aliases,
        "default_model": p.default_model.as_ref().map(|c| c.id()),
        "max_attempts": p.max_attempts,
        "slots": Slot::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "pins": p.pins.len(),
        "rules": p.rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
        "registry": p.models.iter().map(|(id, e)| (id.clone(), json!({
            "equivalents": e.equivalents.iter().map(|c| c.id()).collect::<Vec<_>>(),
            "fallbacks": e.fallbacks.iter().map(|c| c.id()).collect::<Vec<_>>(),
        }))).collect::<serde_json::Map<_, _>>(),
        "delegation": p.delegation.iter().map(|(t, c)| (t.clone(), json!(c.id()))).collect::<serde_json::Map<_, _>>(),
        "routers": snapshot.plugins.routers.iter().map(|r| json!({"name": r.name(), "slot": r.binding.slot})).collect::<Vec<_>>(),
        "unavailable": unavailable,
        "providers": providers,
        "patterns": {
            "enabled": p.pattern.enabled,
            "cost_weight": p.pattern.cost_weight,
            "min_confidence": p.pattern.min_confidence,
            "min_sample_size": p.pattern.min_sample_size,
            "rows": stats.rows,
            "recorded": stats.recorded,
            "dropped": stats.dropped,
            "evicted": stats.evicted,
        },
        "now": clock::rfc3339(now),
    })
}
