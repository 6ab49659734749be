//! `GET /v1/models`: the configured models, in the caller's shape.

use bytes::Bytes;
use pingora_proxy::Session;
use serde_json::json;

use crate::chat::Failure;
use crate::respond::{Stamp, write_full};
use crate::snapshot::Gateway;

pub async fn serve(gw: &Gateway, session: &mut Session, request_id: &str) -> Result<(), Failure> {
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
    let stamp = Stamp {
        request_id,
        provider: None,
        model: None,
    };
    let body = Bytes::from(serde_json::to_vec(&body).expect("JSON value serializes"));
    write_full(session, 200, "application/json", body, &stamp, &[]).await?;
    Ok(())
}
