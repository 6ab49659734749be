//! The read and parse stages: a JSON body, bounded in size and time, parsed
//! once into the request the later stages decide on.

use pingora_proxy::Session;

use super::Failure;
use crate::api::{ApiError, ChatRequest, Shape};
use crate::http::body::read_body;
use crate::pipeline::RequestCtx;
use crate::state::Gateway;

pub async fn read_and_parse(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    shape: Shape,
) -> Result<(), Failure> {
    check_content_type(session)?;
    let body = read_body(session, gw.config.limits.body_limits()).await?;
    ctx.request = Some(ChatRequest::parse(shape, body)?);
    Ok(())
}

fn check_content_type(session: &Session) -> Result<(), ApiError> {
    let Some(v) = session.req_header().headers.get("content-type") else {
        return Ok(());
    };
    let v = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
    let essence = v.split(';').next().unwrap_or_default().trim();
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    let shown: String = v.chars().take(100).collect();
    Err(ApiError::new(
        415,
        "unsupported_media_type",
        format!("content-type must be application/json, not {shown:?}"),
    ))
}
