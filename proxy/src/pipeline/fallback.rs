//! Trying the route's candidates in turn. An attempt returns before any
//! byte reaches the client, so a connect error, timeout, broken
//! connection, 5xx, 429, or the provider refusing the gateway's own
//! credential (401, 403) moves on to the next candidate with the body
//! still in hand (translated anew when the next provider speaks another
//! shape), re-reserving the budget at the next model's price, up to the
//! policy's `max_attempts`. Every outcome feeds the availability breaker.

use pingora_proxy::Session;

use super::attempt::{self, Exchange};
use super::redact::Redaction;
use super::{Failure, RequestCtx, limit};
use crate::api::ApiError;
use crate::metrics;
use crate::providers::UpstreamError;
use crate::routing::breaker::{ErrorClass, Outcome};
use crate::routing::{Candidate, Skipped};
use crate::state::Gateway;

pub async fn attempts(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    redaction: Redaction,
) -> Result<Exchange, Failure> {
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    let route = ctx.decision.as_ref().expect("the route stage ran");
    let candidates: Vec<Candidate> = route
        .candidates
        .iter()
        .take(snapshot.routing.max_attempts as usize)
        .cloned()
        .collect();
    let last = candidates.len() - 1;
    for (i, candidate) in candidates.iter().enumerate() {
        if i > 0 {
            // Earlier attempts of this request (or others) may have
            // tripped the breaker for this one meanwhile.
            let now = gw.clock.now_ms();
            if gw
                .health
                .breaker
                .check(&candidate.provider, &candidate.model, now)
                .is_some()
            {
                skip(ctx, candidate, "provider_unavailable");
                continue;
            }
            ctx.candidate = i;
            // A fallback the caller's budget or the price table refuses is
            // skipped, not the end of the request: the next may fit.
            let (policy_result, blocked) = (ctx.policy_result, ctx.blocked);
            if limit::rebudget(gw, ctx).await.is_err() {
                let why = ctx.blocked.unwrap_or("refused");
                (ctx.policy_result, ctx.blocked) = (policy_result, blocked);
                skip(ctx, candidate, why);
                continue;
            }
        }
        let result = attempt::run(session, ctx, redaction.clone(), candidate).await;
        let elapsed = ctx.attempts.last().map(|a| a.elapsed).unwrap_or_default();
        match result {
            Ok(exchange) => {
                let status = exchange.upstream.status();
                record(gw, ctx, candidate, of_status(status), elapsed);
                if !retried(status) {
                    return Ok(exchange);
                }
                if i == last {
                    if i == 0 {
                        // Nothing else to try: the provider's own answer.
                        return Ok(exchange);
                    }
                    exchange.upstream.release(&snapshot.providers).await;
                    break;
                }
                exchange.upstream.release(&snapshot.providers).await;
            }
            Err(Failure::Upstream(e)) => {
                let outcome = match e {
                    UpstreamError::TooLarge { .. } => Outcome::Neutral,
                    // A long generation can outwait the head timeout: the
                    // client chose it, so it counts against the model only,
                    // never the whole provider.
                    UpstreamError::Timeout { .. } => Outcome::Failure(ErrorClass::Server),
                    _ => Outcome::Failure(ErrorClass::Network),
                };
                record(gw, ctx, candidate, outcome, elapsed);
                if (i == 0 && i == last) || matches!(e, UpstreamError::TooLarge { .. }) {
                    return Err(Failure::Upstream(e));
                }
            }
            Err(other) => return Err(other),
        }
    }
    Err(none_left(ctx))
}

/// The 503 once every candidate failed or was unavailable, naming each.
fn none_left(ctx: &RequestCtx) -> Failure {
    let mut tried: Vec<String> = ctx
        .attempts
        .iter()
        .map(|a| format!("{} ({})", a.id(), a.outcome()))
        .collect();
    if let Some(route) = &ctx.decision {
        tried.extend(
            route
                .skipped
                .iter()
                .map(|s| format!("{} ({})", s.model, s.reason)),
        );
    }
    ApiError::new(
        503,
        "no_model_available",
        format!("no model available; tried: {}", tried.join(", ")),
    )
    .with_retry_after(1)
    .into()
}

fn skip(ctx: &mut RequestCtx, c: &Candidate, reason: &'static str) {
    if let Some(route) = ctx.decision.as_mut() {
        route.skipped.push(Skipped {
            model: c.id(),
            reason,
        });
    }
}

/// Statuses that say the provider, not the request, failed: the next
/// candidate may serve it. 401 and 403 are the gateway's own credential
/// being refused, which another provider does not share.
fn retried(status: u16) -> bool {
    matches!(status, 401 | 403 | 429) || status >= 500
}

/// What a response status says about the provider.
pub fn of_status(status: u16) -> Outcome {
    match status {
        // The gateway's credential refused: the whole provider. A 403 can
        // be one model the account may not use, which a client chooses:
        // it does not count against the provider.
        401 => Outcome::Failure(ErrorClass::Auth),
        429 => Outcome::Failure(ErrorClass::RateLimited),
        s if s >= 500 => Outcome::Failure(ErrorClass::Server),
        s if s >= 400 => Outcome::Neutral,
        _ => Outcome::Success,
    }
}

/// Feed the breaker and the error metric; log and publish its changes.
fn record(
    gw: &Gateway,
    ctx: &RequestCtx,
    c: &Candidate,
    outcome: Outcome,
    elapsed: std::time::Duration,
) {
    let now = gw.clock.now_ms();
    let snapshot = ctx
        .snapshot
        .as_ref()
        .expect("serve loads the snapshot first");
    if let Outcome::Failure(class) = outcome {
        metrics::get()
            .llm_call_errors
            .with_label_values(&[&c.provider, model_label(snapshot, c), class.as_str()])
            .inc();
    }
    // Per-model failures count only for models the operator named: a
    // client inventing failing model names must not add up to "three
    // models down" and take the provider from everyone.
    let outcome = match outcome {
        Outcome::Failure(ErrorClass::Server | ErrorClass::RateLimited)
            if !snapshot.names_model(&c.id()) =>
        {
            Outcome::Neutral
        }
        o => o,
    };
    for change in gw
        .health
        .record(&c.provider, &c.model, outcome, elapsed, now)
    {
        crate::routing::health::publish(&change, &|id| snapshot.names_model(id));
    }
}

fn model_label<'a>(snapshot: &crate::state::Snapshot, c: &'a Candidate) -> &'a str {
    // Only models the operator named are label values: clients cannot
    // mint them.
    if snapshot.names_model(&c.id()) {
        &c.model
    } else {
        "other"
    }
}
