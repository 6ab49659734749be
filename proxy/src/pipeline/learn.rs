//! After a routed request is answered: the `route.decided` event with the
//! whole chain and what became of each candidate, and the outcome the
//! pattern slot learns from.

use rust_decimal::prelude::ToPrimitive;

use crate::evaluation::Job;
use crate::events::{ChainStep, EventBody, Tried};
use crate::money::Usd;
use crate::pipeline::RequestCtx;
use crate::plugins::{ExchangeFacts, Tokens};
use crate::routing::patterns::Outcome;
use crate::state::Gateway;

pub async fn learn(gw: &Gateway, status: u16, cost: Usd, ctx: &RequestCtx) {
    completed(gw, status, cost, ctx).await;
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
        let outcome = Outcome {
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
        };
        // A sampled answer is learnt from once its score is known.
        if let Err(outcome) = evaluate(gw, status, cost, ctx, a, outcome) {
            gw.patterns.record(outcome);
        }
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

/// `request.completed`: one per parsed request on a provider path, however
/// it ended.
async fn completed(gw: &Gateway, status: u16, cost: Usd, ctx: &RequestCtx) {
    let Some(req) = &ctx.request else { return };
    let key = ctx.key.as_deref();
    let answered = ctx
        .attempts
        .last()
        .filter(|a| a.status.is_some_and(|s| s < 400));
    let usage = ctx.usage.unwrap_or_default();
    gw.events
        .emit(EventBody::RequestCompleted {
            request_id: ctx.request_id.clone(),
            gateway_key_id: key.map(|k| k.id.clone()),
            user_id: key.and_then(|k| k.user_id.clone()),
            team_id: key.and_then(|k| k.team_id.clone()),
            inbound_shape: ctx.shape.as_str().to_owned(),
            client_model: req.model.clone(),
            requested_model: ctx.requested_model.clone(),
            model: answered.map(|a| a.id()),
            status,
            streamed: req.stream,
            latency_ms: ctx.started.elapsed().as_millis() as u64,
            cost_usd: cost,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            attempts: ctx.attempts.len() as u32,
            error_code: ctx.error_code(status),
        })
        .await;
}

/// Hand an answered, sampled request to the evaluators; the outcome back
/// when it is not evaluated.
fn evaluate(
    gw: &Gateway,
    status: u16,
    cost: Usd,
    ctx: &RequestCtx,
    a: &crate::pipeline::Attempt,
    outcome: Outcome,
) -> Result<(), Outcome> {
    let (Some(answer), Some(request), Some(req)) = (&ctx.answer, &ctx.facts, &ctx.request) else {
        return Err(outcome);
    };
    if status >= 400 {
        return Err(outcome);
    }
    let body = answer.clone().freeze();
    let key = ctx.key.as_deref();
    let facts = ExchangeFacts {
        request: request.clone(),
        provider: a.provider.clone(),
        model: a.id(),
        status,
        latency_ms: ctx.started.elapsed().as_millis() as u64,
        answer_text: crate::evaluation::answer_text(ctx.shape, req.stream, &body),
        response_body: body,
        usage: ctx.usage.map(|u| Tokens {
            input: u.input_tokens,
            output: u.output_tokens,
            cached_input: u.cached_input_tokens,
        }),
        cost_usd: Some(cost.0.to_string()),
    };
    let session = request
        .headers
        .iter()
        .find(|(n, _)| n == "x-sluice-session")
        .map(|(_, v)| v.clone())
        .or_else(|| key.map(|k| k.id.clone()))
        .unwrap_or_default();
    gw.evaluation
        .submit(Job {
            facts: std::sync::Arc::new(facts),
            shape: ctx.shape,
            key: key.map(|k| k.id.clone()),
            user: key.and_then(|k| k.user_id.clone()),
            team: key.and_then(|k| k.team_id.clone()),
            session: session.chars().take(200).collect(),
            outcome: Some(outcome),
        })
        .map_err(|job| job.outcome.expect("given above"))
}
