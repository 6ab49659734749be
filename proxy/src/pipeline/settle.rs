//! Settlement, once a request is answered: the call's cost from the
//! provider's own usage report (or, when there is none for a call that may
//! have been billed, the reserved worst case), charged to the ledger in place of the hold, and
//! one usage record per call in the event log.

use crate::budget::scope_ids;
use crate::clock;
use crate::events::{EventBody, PolicyResult, UsageRecord};
use crate::metrics;
use crate::money::Usd;
use crate::pipeline::RequestCtx;
use crate::state::Gateway;

pub async fn settle(gw: &Gateway, status: u16, ctx: &mut RequestCtx) {
    let attempt = ctx.attempts.last();
    if attempt.is_none() && ctx.blocked.is_none() {
        // Nothing was called and nothing refused by policy (bad input,
        // own routes): not a call.
        if let Some(h) = ctx.held.take() {
            gw.budgets.release(&h);
            gw.events.release(h.call_id).await;
        }
        super::learn::learn(gw, status, Usd::ZERO, ctx).await;
        return;
    }
    let snapshot = ctx.snapshot.clone();
    let model = super::limit::priced_id(ctx);
    let price = match (&snapshot, &model) {
        (Some(s), Some(m)) => s.pricing.price(m),
        _ => None,
    };
    // Without a usage report, a call the provider answered (a stream cut
    // short) or the client abandoned after sending may have cost up to the
    // bound, and that is what is charged. Provider-side failures before a
    // head (timeouts, broken connections) and error statuses are not: an
    // outage must not use up every key's day.
    let billable = attempt.is_some_and(|a| {
        a.delivered
            && match a.status {
                Some(s) => s < 400,
                None => a.error_class == Some("client_gone"),
            }
    });
    let (usage, estimated) = match (ctx.usage, billable) {
        (Some(u), _) => (u, false),
        (None, true) => (
            crate::pipeline::Usage {
                input_tokens: ctx.held.as_ref().map_or(0, |h| h.input_tokens),
                output_tokens: ctx.held.as_ref().map_or(0, |h| h.tokens - h.input_tokens),
                ..Default::default()
            },
            true,
        ),
        (None, false) => (crate::pipeline::Usage::default(), false),
    };
    let cost = match (estimated, &ctx.held, price) {
        (true, Some(h), _) => h.usd,
        (_, _, Some(p)) => p.cost(&usage),
        _ => Usd::ZERO,
    };
    let tokens = usage.input_tokens + usage.output_tokens;
    if let (Some(limiter), Some(k)) = (&gw.limiter, &ctx.key) {
        limiter.settle_tokens(&k.hash, ctx.rate_tokens, tokens);
    }
    let now = clock::now_ms();
    let scopes = match ctx.held.take() {
        Some(h) => {
            let alerts = gw.budgets.settle(&h, cost, tokens, now);
            for a in alerts {
                gw.events
                    .emit(EventBody::QuotaAlert {
                        scope: a.scope.kind.as_str().to_owned(),
                        identity: a.scope.identity.clone(),
                        window: a.window.as_str().to_owned(),
                        unit: a.unit.as_str().to_owned(),
                        level: a.level.to_owned(),
                        used: a.used,
                        limit: a.limit,
                    })
                    .await;
            }
            scope_ids(&h.scopes)
        }
        None => Default::default(),
    };
    let m = metrics::get();
    let key_id = ctx.key.as_ref().map(|k| k.id.clone());
    if !cost.0.is_zero() {
        use rust_decimal::prelude::ToPrimitive;
        m.key_cost
            .with_label_values(&[key_id.as_deref().unwrap_or("null")])
            .inc_by(cost.0.to_f64().unwrap_or(0.0));
    }
    if let Some(u) = ctx.usage {
        m.tokens
            .with_label_values(&["input"])
            .inc_by(u.input_tokens);
        m.tokens
            .with_label_values(&["output"])
            .inc_by(u.output_tokens);
        m.tokens
            .with_label_values(&["cached_input"])
            .inc_by(u.cached_input_tokens);
    }
    let key = ctx.key.as_deref();
    let req = ctx.request.as_ref();
    let error_code = ctx.error_code(status);
    // Candidates that failed before the one that answered were provider
    // calls too: each leaves its record, at no cost.
    let failed = ctx.attempts.len().saturating_sub(1);
    for (i, a) in ctx.attempts[..failed].iter().enumerate() {
        gw.events
            .usage(UsageRecord {
                call_id: format!("{}:{i}", ctx.request_id),
                request_id: ctx.request_id.clone(),
                ts_ms: now,
                schema: crate::events::SCHEMA,
                gateway_key_id: key_id.clone(),
                user_id: key.and_then(|k| k.user_id.clone()),
                team_id: key.and_then(|k| k.team_id.clone()),
                workspace: key.and_then(|k| k.workspace.clone()),
                inbound_shape: ctx.shape.as_str().to_owned(),
                provider: Some(a.provider.clone()),
                model: Some(a.id()),
                input_tokens: 0,
                output_tokens: 0,
                cached_input_tokens: 0,
                cost_usd: Usd::ZERO,
                pricing_version: snapshot.as_ref().map(|s| s.pricing.version.clone()),
                unpriced: false,
                usage_estimated: false,
                streamed: req.is_some_and(|r| r.stream),
                status: a.status.unwrap_or(0),
                latency_ms: a.elapsed.as_millis() as u64,
                policy_result: ctx.policy_result,
                error_code: a
                    .error_class
                    .map(str::to_owned)
                    .or_else(|| a.status.map(|s| format!("http_{s}"))),
                scopes: Default::default(),
            })
            .await;
    }
    let rec = UsageRecord {
        call_id: format!(
            "{}:{}",
            ctx.request_id,
            ctx.attempts.len().saturating_sub(1)
        ),
        request_id: ctx.request_id.clone(),
        ts_ms: now,
        schema: crate::events::SCHEMA,
        gateway_key_id: key_id,
        user_id: key.and_then(|k| k.user_id.clone()),
        team_id: key.and_then(|k| k.team_id.clone()),
        workspace: key.and_then(|k| k.workspace.clone()),
        inbound_shape: ctx.shape.as_str().to_owned(),
        provider: attempt.map(|a| a.provider.clone()),
        model,
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cached_input_tokens: usage.cached_input_tokens,
        cost_usd: cost,
        pricing_version: snapshot.as_ref().map(|s| s.pricing.version.clone()),
        unpriced: price.is_none(),
        usage_estimated: estimated,
        streamed: req.is_some_and(|r| r.stream),
        status,
        latency_ms: ctx.started.elapsed().as_millis() as u64,
        policy_result: if ctx.blocked.is_some() {
            PolicyResult::Blocked
        } else {
            ctx.policy_result
        },
        error_code,
        scopes,
    };
    gw.events.usage(rec).await;
    super::learn::learn(gw, status, cost, ctx).await;
}
