//! The limit stage, after routing (the price depends on the model chosen):
//! in the precedence of seed 003 §15, budget caps first (USD, then tokens),
//! then rate limits, then the warning past 80 %. A call that passes holds
//! its worst case in every scope it is charged to until it is settled.

use std::net::IpAddr;

use pingora_proxy::Session;
use serde_json::json;

use super::{Failure, RequestCtx};
use crate::api::ApiError;
use crate::budget::{Ask, BudgetPolicy, Exceeded, ScopeKind, Scoped, Unit, scope_ids};
use crate::clock;
use crate::events::{EventBody, HoldRecord, PolicyResult};
use crate::keys::GatewayKey;
use crate::metrics;
use crate::pricing::DEFAULT_MAX_OUTPUT;
use crate::state::Gateway;

/// How long a hold outlives a crash: no provider call runs longer.
const HOLD_TTL_MS: u64 = 15 * 60 * 1000;
/// Input tokens an image, document, file or audio part may cost whatever
/// its bytes: above what providers bill for the largest image today
/// (~37k tokens on gpt-4o-mini), for a document a few dozen pages.
pub const MEDIA_PART_TOKENS: u64 = 100_000;

/// The scopes a call is charged to, tier first and key last.
pub fn scopes(key: Option<&GatewayKey>, policy: &BudgetPolicy) -> Vec<Scoped> {
    let mut out = Vec::with_capacity(5);
    if let Some((tier, caps)) = &policy.tier {
        out.push(Scoped {
            kind: ScopeKind::Tier,
            identity: tier.clone(),
            caps: caps.clone(),
        });
    }
    let Some(key) = key else { return out };
    for (kind, identity, caps) in [
        (ScopeKind::Workspace, &key.workspace, &policy.workspaces),
        (ScopeKind::Team, &key.team_id, &policy.teams),
        (ScopeKind::User, &key.user_id, &policy.users),
    ] {
        if let Some(id) = identity {
            out.push(Scoped {
                kind,
                identity: id.clone(),
                caps: caps.get(id).cloned().unwrap_or_default(),
            });
        }
    }
    out.push(Scoped {
        kind: ScopeKind::Key,
        identity: key.budget_id.clone(),
        caps: key.caps.clone(),
    });
    out
}

/// The `provider:model` a call is priced under: the candidate being tried.
pub fn priced_id(ctx: &RequestCtx) -> Option<String> {
    let c = ctx.decision.as_ref()?.candidates.get(ctx.candidate)?;
    Some(c.id())
}

/// Admit the request for its first candidate.
pub async fn admit(gw: &Gateway, ctx: &mut RequestCtx) -> Result<(), Failure> {
    reserve(gw, ctx, true).await
}

/// Before a fallback: give back the last candidate's hold and reserve at
/// this one's price (a fallback may cost more, or be refused by a cap).
pub async fn rebudget(gw: &Gateway, ctx: &mut RequestCtx) -> Result<(), Failure> {
    if let Some(h) = ctx.held.take() {
        gw.budgets.release(&h);
        gw.events.release(h.call_id).await;
    }
    ctx.max_tokens = None;
    reserve(gw, ctx, false).await
}

async fn reserve(gw: &Gateway, ctx: &mut RequestCtx, first: bool) -> Result<(), Failure> {
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let model_id = priced_id(ctx).expect("the route stage ran");
    let key = ctx.key.clone();
    if let Some(k) = &key {
        let c = &ctx.decision.as_ref().expect("routed").candidates[ctx.candidate];
        if !k.allows_model(&c.provider, &c.model) {
            ctx.blocked = Some("model_not_allowed");
            return Err(ApiError::new(
                403,
                "model_not_allowed",
                format!("gateway key {} may not use model {model_id}", k.id),
            )
            .with_param("model")
            .into());
        }
    }
    let scopes = scopes(key.as_deref(), &snapshot.budgets);
    let capped = scopes.iter().any(|s| s.caps.any());
    let price = snapshot.pricing.price(&model_id);
    if price.is_none() {
        if capped {
            ctx.blocked = Some("model_not_priced");
            return Err(ApiError::new(
                403,
                "model_not_priced",
                format!(
                    "model {model_id} has no price in pricing.toml (version {}), and this \
                     caller's spending is capped",
                    snapshot.pricing.version
                ),
            )
            .with_param("model")
            .into());
        }
        metrics::get().unpriced_calls.inc();
        tracing::debug!(request_id = %ctx.request_id, model = %model_id, "model has no price; served at zero cost");
    }
    // Every text token is at least one byte of the body; media parts are
    // billed by what they hold and get a fixed allowance each.
    let input =
        (req.body.len() as u64).saturating_add(req.media_parts.saturating_mul(MEDIA_PART_TOKENS));
    let model_max = price
        .and_then(|p| p.max_output_tokens)
        .unwrap_or(DEFAULT_MAX_OUTPUT);
    let max_output = req.max_output_tokens.unwrap_or(model_max);
    // The call this hold is for: the attempt about to be made.
    let call_id = format!("{}:{}", ctx.request_id, ctx.attempts.len());
    let now = clock::now_ms();
    let held = match gw.budgets.reserve(
        &Ask {
            call_id: &call_id,
            scopes: &scopes,
            input_tokens: input,
            price,
            max_output,
            choices: req.choices,
        },
        now,
    ) {
        Ok(h) => h,
        Err(e) => return Err(exceeded(gw, ctx, e).await),
    };
    if let (true, Some(limiter), Some(k)) = (first, &gw.limiter, &key) {
        // Tokens per minute: the input now, the output once it is known.
        let bound = req
            .estimated_input_tokens
            .saturating_add(held.output_tokens.saturating_mul(req.choices));
        match limiter.admit_key(&k.hash, bound) {
            Ok(taken) => ctx.rate_tokens = taken,
            Err(t) => {
                gw.budgets.release(&held);
                return Err(throttled(ctx, t));
            }
        }
    }
    // The provider must stop where the budget does: bound its output when
    // a cap made the reservation smaller than asked, or when the client
    // set no bound and a cap applies.
    if capped && (req.max_output_tokens.is_none() || held.output_tokens < max_output) {
        ctx.max_tokens = Some(held.output_tokens);
    }
    if let Some(w) = &held.warning {
        ctx.policy_result = PolicyResult::Warned;
        ctx.quota_warning = Some(format!(
            "{} {} {} {:.0}% used",
            w.scope,
            w.window.as_str(),
            w.unit.as_str(),
            (w.used_ratio * 100.0).min(100.0)
        ));
    }
    if !held.scopes.is_empty() {
        gw.events
            .hold(HoldRecord {
                call_id: held.call_id.clone(),
                scopes: scope_ids(&held.scopes),
                usd: held.usd,
                tokens: held.tokens,
                day: held.day,
                month: held.month,
                expires_ms: now + HOLD_TTL_MS,
            })
            .await;
    }
    ctx.held = Some(held);
    Ok(())
}

/// The client's address, for its rate-limit bucket: the peer, or the
/// nearest untrusted hop of `X-Forwarded-For` behind trusted proxies.
fn client_ip(limiter: &crate::ratelimit::RateLimiter, session: &Session) -> IpAddr {
    let peer = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map_or(IpAddr::from([127, 0, 0, 1]), |a| a.ip());
    // Every line: a proxy may add its own after the client's.
    let lines: Vec<&str> = session
        .req_header()
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let xff = lines.join(",");
    limiter.client_ip(peer, (!lines.is_empty()).then_some(xff.as_str()))
}

/// The per-address bucket, before anything else: a flood of requests
/// without a valid key is throttled too, before it writes audit events.
pub fn admit_address(gw: &Gateway, session: &Session, ctx: &mut RequestCtx) -> Result<(), Failure> {
    let Some(limiter) = &gw.limiter else {
        return Ok(());
    };
    limiter
        .admit_ip(client_ip(limiter, session))
        .map_err(|t| throttled(ctx, t))
}

fn throttled(ctx: &mut RequestCtx, t: crate::ratelimit::Throttled) -> Failure {
    ctx.blocked = Some("rate_limit_exceeded");
    ApiError::new(
        429,
        "rate_limit_exceeded",
        format!(
            "rate limit of the {} bucket reached; retry in {} s",
            t.scope, t.retry_after_seconds
        ),
    )
    .with_field("scope", t.scope)
    .with_field("retry_after_seconds", t.retry_after_seconds)
    .with_retry_after(t.retry_after_seconds)
    .into()
}

async fn exceeded(gw: &Gateway, ctx: &mut RequestCtx, e: Exceeded) -> Failure {
    ctx.blocked = Some("quota_exceeded");
    ctx.policy_result = PolicyResult::Blocked;
    metrics::get()
        .quota_refusals
        .with_label_values(&[e.scope.as_str(), e.unit.as_str()])
        .inc();
    gw.events
        .emit(EventBody::QuotaExceeded {
            scope: e.scope.as_str().to_owned(),
            identity: e.identity.clone(),
            window: e.window.as_str().to_owned(),
            unit: e.unit.as_str().to_owned(),
            current: e.current.clone(),
            limit: e.limit.clone(),
            inbound_shape: ctx.shape.as_str().to_owned(),
            gateway_key_id: ctx.key.as_ref().map(|k| k.id.clone()),
        })
        .await;
    let retry = e.resets_ms.saturating_sub(clock::now_ms()).div_ceil(1000);
    let (what, limit_field, current_field) = match e.unit {
        Unit::Usd => ("USD", "limit_usd", "current_usd"),
        Unit::Tokens => ("tokens", "limit_tokens", "current_tokens"),
    };
    let mut err = ApiError::new(
        429,
        "quota_exceeded",
        format!(
            "{} budget of {} {}: {} of {} {what} spent or reserved; this request could exceed it",
            e.window.as_str(),
            e.scope.as_str(),
            e.identity,
            e.current,
            e.limit
        ),
    )
    .with_field("identity", e.identity)
    .with_field("scope", e.scope.as_str())
    .with_field("window", e.window.as_str())
    .with_field(limit_field, e.limit)
    .with_field(current_field, e.current)
    .with_retry_after(retry);
    if e.unit == Unit::Tokens {
        err = err.with_field("unit", json!("tokens"));
    }
    Failure::Api(err)
}
