//! The route stage: normalize the model, then let the routing chain pick
//! the ordered candidates.

use std::sync::Arc;

use pingora_proxy::Session;

use super::Failure;
use crate::pipeline::RequestCtx;
use crate::plugins::RequestFacts;
use crate::routing::{self, Canonical, normalize};
use crate::state::Gateway;

pub async fn decide(gw: &Gateway, session: &Session, ctx: &mut RequestCtx) -> Result<(), Failure> {
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let canonical = normalize(&req.model, req.shape, &gw.config.routing.aliases, |p| {
        snapshot.providers.get(p).is_some()
    });
    let mut built = None;
    let route = routing::route(
        &snapshot.plugins.routers,
        &snapshot.providers,
        &canonical,
        &req.model,
        gw.config.routing.default_provider.as_deref(),
        || {
            let f = facts(session, ctx, &canonical);
            built = Some(f.clone());
            f
        },
    )
    .await;
    ctx.facts = built;
    ctx.decision = Some(route?);
    Ok(())
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
