//! After a routed request is answered: the `route.decided` event with the
//! whole chain and what became of each candidate, and the outcome the
//! pattern slot learns from.

use rust_decimal::prelude::ToPrimitive;

use crate::events::{ChainStep, EventBody, Tried};
use crate::money::Usd;
use crate::pipeline::RequestCtx;
use crate::routing::patterns::Outcome;
use crate::state::Gateway;

pub async fn learn(gw: &Gateway, status: u16, cost: Usd, ctx: &RequestCtx) {
    let Some(route) = &ctx.decision else { return };
    let answered = ctx.attempts.last().filter(|a| a.status.is_some());
    let chosen_model = answered
        .filter(|a| a.status.is_some_and(|s| s < 400))
        .map(|a| a.id());
    if let (Some(fp), Some(a)) = (ctx.fingerprint, answered)
        && a.error_class != Some("client_gone")
    {
        // A call the provider answered; what the client got decides
        // success (a stream cut midway is not one).
        gw.patterns.record(Outcome {
            fingerprint: fp,
            model: a.id(),
            success: if status < 400 && ctx.usage.is_some() {
                1.0
            } else {
                0.0
            },
            eval_confidence: None,
            cost_nanousd: (cost.0 * rust_decimal::Decimal::from(1_000_000_000u64))
                .to_u64()
                .unwrap_or(0),
            ts_ms: gw.clock.now_ms(),
        });
    }
    let chain = route
        .chain
        .iter()
        .map(|r| ChainStep {
            slot: r.slot.as_str().to_owned(),
            plugin: r.plugin.clone(),
            verdict: r.verdict.as_str().to_owned(),
            reason: r.reason.clone(),
            latency_us: r.latency_us,
        })
        .collect();
    let tried = ctx
        .attempts
        .iter()
        .map(|a| Tried {
            model: a.id(),
            outcome: a.outcome(),
        })
        .collect();
    let skipped = route
        .skipped
        .iter()
        .map(|s| Tried {
            model: s.model.clone(),
            outcome: s.reason.to_owned(),
        })
        .collect();
    gw.events
        .emit(EventBody::RouteDecided {
            request_id: ctx.request_id.clone(),
            gateway_key_id: ctx.key.as_ref().map(|k| k.id.clone()),
            inbound_shape: ctx.shape.as_str().to_owned(),
            client_model: ctx
                .request
                .as_ref()
                .map(|r| r.model.clone())
                .unwrap_or_default(),
            chosen_model,
            decided_by: route.decided_by.as_str().to_owned(),
            reason: route.reason.clone(),
            chain,
            tried,
            skipped,
            elapsed_us: route.elapsed.as_micros() as u64,
            policy_version: route.policy_version.clone(),
        })
        .await;
}
