//! A provider's error: kept as is for same-shape clients, re-enveloped
//! (status and the provider's message kept) for the others.

use pingora_proxy::Session;

use super::super::Failure;
use super::super::attempt::{Exchange, count_upstream_error};
use crate::api::ApiError;
use crate::http::respond::{write_error, write_full};
use crate::pipeline::RequestCtx;
use crate::state::Gateway;

pub async fn relay(
    gw: &Gateway,
    session: &mut Session,
    ctx: &RequestCtx,
    exchange: &mut Exchange,
    status: u16,
) -> Result<(), Failure> {
    let provider = exchange.provider.name.clone();
    count_upstream_error(&provider, if status >= 500 { "server" } else { "client" });
    let body = exchange
        .upstream
        .read_all(gw.config.limits.max_response_bytes)
        .await
        .unwrap_or_default();
    if ctx.shape == exchange.upstream_shape {
        let ct = exchange
            .upstream
            .header("content-type")
            .unwrap_or("application/json")
            .to_owned();
        let retry = exchange.upstream.header("retry-after").map(str::to_owned);
        let extra: Vec<(&str, &str)> = retry.iter().map(|r| ("retry-after", r.as_str())).collect();
        write_full(session, status, &ct, body, &ctx.stamp(), &extra).await?;
        return Ok(());
    }
    let err = upstream_error(&provider, status, &body);
    write_error(session, ctx.shape, &err, &ctx.stamp()).await?;
    Ok(())
}

/// A provider's error body re-enveloped: its status and message are kept.
fn upstream_error(provider: &str, status: u16, body: &[u8]) -> ApiError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .map(|m| m.chars().take(1000).collect::<String>())
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    let code = e["code"]
        .as_str()
        .or_else(|| e["type"].as_str())
        .unwrap_or("upstream_error")
        .to_owned();
    ApiError::new(status, code, format!("provider {provider}: {message}"))
}
