//! A whole response: read it (dropping the exchange if the client leaves),
//! translate it or echo the client's model, pass the response redactors,
//! write it with `Content-Length`.

use bytes::Bytes;
use pingora_proxy::Session;

use super::super::Failure;
use super::super::attempt::{Exchange, client_gone, count_upstream_error};
use super::super::redact::{Redaction, refused, skippable};
use super::super::usage;
use crate::api::{ApiError, ModelEcho};
use crate::http::respond::write_full;
use crate::pipeline::RequestCtx;
use crate::plugins::{PluginError, PluginKind};
use crate::state::Gateway;

pub async fn relay(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    exchange: &mut Exchange,
    status: u16,
) -> Result<(), Failure> {
    let limit = gw.config.limits.max_response_bytes;
    let read = tokio::select! {
        r = exchange.upstream.read_all(limit) => r,
        why = client_gone(session) => {
            exchange.call.cancel();
            return Err(Failure::ClientGone {
                stage: "waiting",
                detail: why,
            });
        }
    };
    // The provider's part ends with its body (read, or failed to).
    exchange.call.finish();
    let body = read.inspect_err(|e| count_upstream_error(&exchange.provider.name, e.class()))?;
    ctx.usage = usage::from_body(&body);
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let body = match &exchange.translation {
        Some((t, tctx)) => {
            let text = std::str::from_utf8(&body).map_err(|_| {
                ApiError::new(502, "upstream_error", "provider response is not UTF-8")
            })?;
            match t.translate_response(tctx, text).await {
                Ok(Ok(out)) => Bytes::from(out),
                Ok(Err(e)) => return Err(Failure::Translate(e)),
                // Not the client's fault: the provider's answer is too big.
                Err(PluginError::InputTooLarge { .. }) => {
                    return Err(Failure::Api(ApiError::new(
                        502,
                        "upstream_error",
                        format!(
                            "the response of provider {} is too large for translator {} \
                             (request {})",
                            exchange.provider.name,
                            t.name(),
                            ctx.request_id
                        ),
                    )));
                }
                Err(e) => return Err(Failure::plugin(t.name(), PluginKind::Translator, e)),
            }
        }
        None => {
            let model = ctx.upstream().map_or("", |u| u.1);
            ModelEcho::new(req.shape, &req.model, model).whole(body)
        }
    };
    let body = redact(ctx, &exchange.redaction, body).await?;
    ctx.capture(&body);
    write_full(session, status, "application/json", body, &ctx.stamp(), &[]).await?;
    Ok(())
}

/// The response redactors, in reverse order of the request's.
async fn redact(ctx: &RequestCtx, redaction: &Redaction, body: Bytes) -> Result<Bytes, Failure> {
    if redaction.passes.is_empty() {
        return Ok(body);
    }
    let rctx = Redaction::context(ctx);
    let mut text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(502, "upstream_error", "response is not UTF-8"))?;
    for (plugin, state) in redaction.passes.iter().rev() {
        match plugin.redact_response(&rctx, state.as_deref(), &text).await {
            Ok(Ok(Some(out))) => text = out,
            Ok(Ok(None)) => {}
            Ok(Err(rejection)) => return Err(refused(plugin.name(), rejection)),
            Err(e) if skippable(plugin, &e) => {}
            Err(e) => return Err(Failure::plugin(plugin.name(), PluginKind::Redactor, e)),
        }
    }
    Ok(Bytes::from(text))
}
