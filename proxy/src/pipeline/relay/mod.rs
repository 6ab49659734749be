//! Relays: the only stages that write to the client. A provider's answer
//! is relayed whole, as a stream, or as an error.

mod error;
mod stream;
mod whole;

use pingora_proxy::Session;

use super::Failure;
use super::attempt::Exchange;
use crate::pipeline::RequestCtx;
use crate::state::Gateway;

pub async fn respond(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut exchange: Exchange,
) -> Result<(), Failure> {
    let status = exchange.upstream.status();
    let result = if status >= 400 {
        error::relay(gw, session, ctx, &mut exchange, status).await
    } else if exchange.upstream.is_sse() {
        // Boxed: the stream relay is the largest future of the request
        // path, and every request's future would otherwise be that large.
        Box::pin(stream::relay(gw, session, ctx, &mut exchange)).await
    } else {
        whole::relay(gw, session, ctx, &mut exchange, status).await
    };
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    exchange.upstream.release(&snapshot.providers).await;
    result
}
