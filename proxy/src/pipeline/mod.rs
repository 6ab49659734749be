//! The data-plane request path as stages. Each stage takes the request
//! context and either continues or ends the request with a [`Failure`];
//! only relays write to the client, and [`failure::answer`] turns every
//! failure into the client's envelope. The order, on pingora's phases, is
//! charted in docs/ARCHITECTURE.md:
//!
//! ```text
//! request_filter ─ admit ─ identify ─ read ─ parse ─ route ─ limit ─ redact
//!                ─ fallback (attempt: translate → send → head; next candidate) ─ relay (whole | stream | error)
//!                ─ settle (ledger, usage record)
//! logging        ─ metrics
//! ```

mod attempt;
mod ctx;
mod failure;
mod fallback;
mod identify;
mod intake;
mod learn;
mod limit;
mod own_routes;
mod redact;
mod relay;
mod route;
mod settle;
mod stages;
mod usage;

use http::Method;
use pingora_proxy::Session;

pub use attempt::Attempt;
pub use ctx::RequestCtx;
pub use failure::Failure;
pub use usage::Usage;

use crate::api::{ApiError, Shape};
use crate::http::request_id::request_id;
use crate::state::Gateway;

/// Serve one data-plane request. Never fails: errors are answered in the
/// client's envelope, and a client that went away is simply left.
pub async fn serve(gw: &Gateway, session: &mut Session, ctx: &mut RequestCtx) {
    use tracing::Instrument;
    begin(session, ctx);
    // Every line logged for this request, plugin ones included, carries
    // its id.
    let span = tracing::info_span!("request", request_id = %ctx.request_id);
    async {
        ctx.snapshot = Some(gw.snapshot());
        if let Err(failure) = dispatch(gw, session, ctx).await {
            failure::answer(session, ctx, failure).await;
        }
        let status = session.response_written().map_or(0, |h| h.status.as_u16());
        settle::settle(gw, status, ctx).await;
    }
    .instrument(span)
    .await
}

/// Refuse a request beyond the in-flight limit: 503 and `Retry-After`.
pub async fn refuse_overloaded(session: &mut Session, ctx: &mut RequestCtx, limit: usize) {
    begin(session, ctx);
    ctx.route = "overloaded";
    let err = ApiError::new(
        503,
        "server_is_overloaded",
        format!("more than {limit} requests in flight; retry shortly"),
    );
    failure::answer(session, ctx, Failure::Api(err)).await;
}

/// The request id and the envelope errors will use, before anything else.
fn begin(session: &Session, ctx: &mut RequestCtx) {
    let req = session.req_header();
    ctx.request_id = request_id(&req.headers);
    ctx.shape = Shape::guess(req.uri.path(), &req.headers);
}

/// Admission by path and method: own routes, or a chat request.
async fn dispatch(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(), Failure> {
    let method = session.req_header().method.clone();
    let path = session.req_header().uri.path().to_owned();
    let shape = Shape::of_path(&path);
    match (shape, &method) {
        (_, &Method::OPTIONS) => own_routes::preflight(gw, session, ctx, shape.is_some()).await,
        (Some(shape), &Method::POST) => chat(gw, session, ctx, shape).await,
        (Some(_), _) => Err(ApiError::new(
            405,
            "method_not_allowed",
            format!("{path} accepts POST only"),
        )
        .into()),
        (None, &Method::GET) if path == "/v1/models" => {
            ctx.route = "models";
            own_routes::models(gw, session, ctx).await
        }
        (None, _) => {
            let path = path.chars().take(200).collect::<String>();
            Err(ApiError::not_found(format!("no route for {method} {path:?}")).into())
        }
    }
}

/// A chat request, stage by stage.
async fn chat(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    shape: Shape,
) -> Result<(), Failure> {
    ctx.route = match shape {
        Shape::OpenAi => "chat_completions",
        Shape::Anthropic => "messages",
    };
    session.set_write_timeout(Some(gw.config.limits.client_write_timeout()));
    // Before the body is read: a caller without a valid key costs no more
    // than its request head.
    limit::admit_address(gw, session, ctx)?;
    identify::caller(gw, session, ctx).await?;
    intake::read_and_parse(gw, session, ctx, shape).await?;
    route::decide(gw, session, ctx).await?;
    limit::admit(gw, ctx).await?;
    let redaction = redact::request(ctx).await?;
    let exchange = fallback::attempts(gw, session, ctx, redaction).await?;
    relay::respond(gw, session, ctx, exchange).await
}
