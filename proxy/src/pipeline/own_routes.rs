//! Sluice's own routes on the data plane: `GET /v1/models` (the configured
//! models, in the caller's shape) and `OPTIONS`, with version negotiation.

use bytes::Bytes;
use pingora_proxy::Session;
use serde_json::json;

use super::Failure;
use crate::http::respond::write_full;
use crate::pipeline::RequestCtx;
use crate::state::Gateway;
use crate::versioning::{Negotiated, VERSION_HEADER, borrowed, today};

pub async fn models(gw: &Gateway, session: &mut Session, ctx: &RequestCtx) -> Result<(), Failure> {
    let stamp = ctx.stamp();
    let headers = match negotiate(gw, session) {
        Negotiated::Serve(h) => h,
        Negotiated::Refuse(status, body, h) => {
            let body = Bytes::from(serde_json::to_vec(&body).expect("JSON value serializes"));
            write_full(
                session,
                status,
                "application/json",
                body,
                &stamp,
                &borrowed(&h),
            )
            .await?;
            return Ok(());
        }
    };
    let anthropic = session
        .req_header()
        .headers
        .contains_key("anthropic-version");
    let ids: Vec<(String, &str)> = gw
        .config
        .providers
        .iter()
        .flat_map(|p| {
            p.models
                .iter()
                .map(move |m| (format!("{}:{m}", p.name), p.name.as_str()))
        })
        .collect();
    let body = if anthropic {
        json!({
            "data": ids.iter().map(|(id, _)| json!({
                "type": "model", "id": id, "display_name": id,
                "created_at": "1970-01-01T00:00:00Z",
            })).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": ids.first().map(|(id, _)| id),
            "last_id": ids.last().map(|(id, _)| id),
        })
    } else {
        json!({
            "object": "list",
            "data": ids.iter().map(|(id, owner)| json!({
                "id": id, "object": "model", "created": 0, "owned_by": owner,
            })).collect::<Vec<_>>(),
        })
    };
    let body = Bytes::from(serde_json::to_vec(&body).expect("JSON value serializes"));
    write_full(
        session,
        200,
        "application/json",
        body,
        &stamp,
        &borrowed(&headers),
    )
    .await?;
    Ok(())
}

fn negotiate(gw: &Gateway, session: &Session) -> Negotiated {
    let requested = session
        .req_header()
        .headers
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("?"));
    gw.versions.negotiate(requested, today())
}

/// `OPTIONS` on any data-plane path: 204. Own routes add their version
/// negotiation headers; provider-shape paths are not versioned.
pub async fn preflight(
    gw: &Gateway,
    session: &mut Session,
    ctx: &RequestCtx,
    provider_shape: bool,
) -> Result<(), Failure> {
    let stamp = ctx.stamp();
    let headers = match negotiate(gw, session) {
        Negotiated::Serve(h) | Negotiated::Refuse(_, _, h) if !provider_shape => h,
        _ => Vec::new(),
    };
    let mut extra = borrowed(&headers);
    extra.push(("allow", "GET, POST, OPTIONS"));
    write_full(session, 204, "text/plain", Bytes::new(), &stamp, &extra).await?;
    Ok(())
}
