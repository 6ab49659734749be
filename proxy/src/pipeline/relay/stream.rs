//! A streamed response: open every stage before the head goes out (so a
//! stage that cannot start still gets a proper error status), then relay
//! chunk by chunk. Failures after the head become a final error event in
//! the client's stream format, never a hang and never a fake clean end.

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use super::super::Failure;
use super::super::attempt::{Exchange, count_upstream_error};
use super::super::failure::stream_event;
use super::super::redact::Redaction;
use super::super::stages::{StreamPlan, StreamStages};
use crate::http::sse::SseParser;
use crate::pipeline::RequestCtx;
use crate::plugins::bindings::SseEvent;
use crate::state::Gateway;

pub async fn relay(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    exchange: &mut Exchange,
) -> Result<(), Failure> {
    let result = relay_events(gw, session, ctx, exchange).await;
    if let Err(Failure::ClientGone { .. }) = &result {
        // A no-op when the provider's stream had already ended.
        exchange.call.cancel();
    }
    result
}

async fn relay_events(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    exchange: &mut Exchange,
) -> Result<(), Failure> {
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let provider_model = ctx.upstream().map_or("", |u| u.1);
    let plan = StreamPlan {
        client: req.shape,
        provider_shape: exchange.upstream_shape,
        provider: &exchange.provider.name,
        client_model: &req.model,
        provider_model,
        translation: exchange.translation.as_ref(),
        redactors: exchange
            .redaction
            .passes
            .iter()
            .rev()
            .map(|(p, s)| (p, s.as_deref()))
            .collect(),
        redact_ctx: Redaction::context(ctx),
        max_event_bytes: gw.config.limits.max_response_bytes,
        strip_usage: exchange.strip_usage,
    };
    let mut stages = StreamStages::open(plan).await?;

    let mut h = ResponseHeader::build(200, Some(6))?;
    h.insert_header("content-type", "text/event-stream")?;
    h.insert_header("cache-control", "no-cache")?;
    // Chunked framing on HTTP/1.1: without a length pingora otherwise
    // delimits the body by closing the connection, so a client could not
    // tell a stream cut short from a finished one, nor reuse the
    // connection. (HTTP/2 drops the header; HTTP/1.0 cannot chunk.)
    if session.req_header().version == http::Version::HTTP_11 {
        h.insert_header("transfer-encoding", "chunked")?;
    }
    ctx.stamp().apply(&mut h);
    session.write_response_header(Box::new(h), false).await?;

    // A parser of its own until the provider's first whole event, for
    // time to first token (the stages' parser may be bypassed).
    let mut first: Option<(SseParser, Vec<SseEvent>)> = exchange
        .call
        .awaits_first_event()
        .then(|| (SseParser::default(), Vec::new()));
    loop {
        let chunk = match exchange.upstream.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => {
                exchange.call.finish();
                break;
            }
            Err(e) => {
                exchange.call.finish();
                count_upstream_error(&exchange.provider.name, e.class());
                ctx.usage = stages.usage();
                return end_with(session, ctx, Failure::Upstream(e)).await;
            }
        };
        if let Some((parser, events)) = &mut first {
            parser.push(&chunk, events);
            if !events.is_empty() {
                exchange.call.first_event();
                first = None;
            }
        }
        let pushed = stages.push(chunk).await;
        // Known after every chunk, so a client that leaves mid-stream is
        // still charged what the provider reported.
        ctx.usage = stages.usage();
        match pushed {
            Ok(out) if out.is_empty() => {}
            Ok(out) => {
                ctx.capture(&out);
                session.write_response_body(Some(out), false).await?
            }
            Err(failure) => return end_with(session, ctx, failure).await,
        }
    }
    ctx.usage = stages.usage();
    match stages.finish(&ctx.request_id).await {
        Ok(tail) => {
            ctx.capture(&tail);
            session.write_response_body(Some(tail), true).await?
        }
        Err(failure) => return end_with(session, ctx, failure).await,
    }
    Ok(())
}

/// End a stream whose head went out with `failure` as its last event.
async fn end_with(
    session: &mut Session,
    ctx: &RequestCtx,
    failure: Failure,
) -> Result<(), Failure> {
    if let Failure::ClientGone { .. } = failure {
        return Err(failure);
    }
    tracing::warn!(request_id = %ctx.request_id, "stream ended early: {failure:?}");
    let ev = stream_event(&failure, ctx.shape, &ctx.request_id);
    session
        .write_response_body(Some(Bytes::from(ev)), true)
        .await?;
    Ok(())
}
