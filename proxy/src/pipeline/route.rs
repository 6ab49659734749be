//! The route stage: normalize the model, then let the routing chain pick
//! the ordered candidates.

use std::sync::Arc;

use pingora_proxy::Session;

use super::Failure;
use crate::metrics;
use crate::pipeline::RequestCtx;
use crate::plugins::RequestFacts;
use crate::routing::patterns::{Features, Fingerprint};
use crate::routing::{self, Canonical, Env, normalize};
use crate::state::Gateway;

/// The header a client names its workload in, for the pattern slot.
pub const TASK_HEADER: &str = "x-sluice-task";

pub async fn decide(gw: &Gateway, session: &Session, ctx: &mut RequestCtx) -> Result<(), Failure> {
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let canonical = normalize(&req.model, req.shape, &gw.config.routing.aliases, |p| {
        snapshot.providers.get(p).is_some()
    });
    let headers = &session.req_header().headers;
    let key = ctx.key.as_deref();
    let fingerprint = Fingerprint::of(&Features {
        shape: req.shape.as_str(),
        stream: req.stream,
        tools: &req.tool_names,
        estimated_input_tokens: req.estimated_input_tokens,
        messages: req.message_count,
        tier: key.and_then(|k| k.customer_tier.map(|t| t.as_str())),
        team: key.and_then(|k| k.team_id.as_deref()),
        task: headers.get(TASK_HEADER).and_then(|v| v.to_str().ok()),
    });
    let env = Env {
        policy: &snapshot.routing,
        providers: &snapshot.providers,
        routers: &snapshot.plugins.routers,
        budgets: gw.budgets.as_ref(),
        caps: &snapshot.budgets,
        health: &gw.health,
        patterns: &gw.patterns,
        default_provider: gw.config.routing.default_provider.as_deref(),
        now_ms: gw.clock.now_ms(),
    };
    let request = routing::Request {
        canonical: &canonical,
        client_model: &req.model,
        key,
        headers,
        estimated_input_tokens: req.estimated_input_tokens,
        has_tools: req.tool_count > 0,
        stream: req.stream,
        fingerprint,
    };
    let mut built = None;
    let route = routing::decide(&env, &request, || {
        built
            .get_or_insert_with(|| facts(session, ctx, &canonical))
            .clone()
    })
    .await;
    ctx.facts = built;
    ctx.fingerprint = Some(fingerprint);
    ctx.requested_model = Some(canonical.id());
    if evaluated(gw, &snapshot, session, ctx) {
        ctx.answer = Some(bytes::BytesMut::new());
        if ctx.facts.is_none() {
            ctx.facts = Some(facts(session, ctx, &canonical));
        }
    }
    let m = metrics::get();
    match &route {
        Ok(r) => {
            m.routing_decision_latency.observe(r.elapsed.as_secs_f64());
            m.routing_decisions
                .with_label_values(&[r.decided_by.as_str()])
                .inc();
        }
        Err(_) => m.routing_decisions.with_label_values(&["none"]).inc(),
    }
    ctx.decision = Some(route?);
    Ok(())
}

/// Whether this request's answer is to be scored: something evaluates,
/// it is in the sample, and it is not the judge's own call.
fn evaluated(
    gw: &Gateway,
    snapshot: &crate::state::Snapshot,
    session: &Session,
    ctx: &RequestCtx,
) -> bool {
    let ev = &gw.evaluation;
    (!snapshot.plugins.evaluators.is_empty() || ev.judges())
        && ev.wanted()
        && !ev.is_judge_call(
            session
                .req_header()
                .headers
                .get(crate::evaluation::JUDGE_HEADER)
                .and_then(|v| v.to_str().ok()),
        )
        && ev.sampled(&ctx.request_id)
}

/// The request as plugins see it.
pub fn facts(session: &Session, ctx: &RequestCtx, canonical: &Canonical) -> Arc<RequestFacts> {
    let req = ctx.request.as_ref().expect("the parse stage ran");
    Arc::new(RequestFacts {
        request_id: ctx.request_id.clone(),
        inbound_shape: req.shape,
        model: req.model.clone(),
        canonical_model: canonical.id(),
        stream: req.stream,
        headers: RequestFacts::visible_headers(&session.req_header().headers),
        message_count: req.message_count,
        body: req.body.clone(),
        estimated_input_tokens: req.estimated_input_tokens,
        max_output_tokens: req.max_output_tokens,
        tool_names: req.tool_names.clone(),
        caller: ctx.caller.clone(),
        candidates: vec![(canonical.provider.clone(), canonical.model.clone())],
    })
}
