//! The pingora `ProxyHttp` implementation: phases only. Each phase's doc
//! says when it runs and what its result means; the work is in `pipeline`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::{ProxyHttp, Session};

use crate::metrics;
use crate::pipeline::{self, RequestCtx};
use crate::state::Gateway;

/// The data plane.
pub struct Sluice {
    pub gateway: Arc<Gateway>,
    /// Requests being served now, against `limits.max_connections`.
    in_flight: AtomicUsize,
}

impl Sluice {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self {
            gateway,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Take an in-flight slot, or `None` when the limit is reached.
    fn admit(&self) -> Option<Slot<'_>> {
        let slot = Slot(&self.in_flight);
        let limit = self.gateway.config.limits.max_connections;
        (self.in_flight.fetch_add(1, Ordering::Relaxed) < limit).then_some(slot)
    }
}

/// Holds one in-flight slot; released when the request ends, however.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl ProxyHttp for Sluice {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    /// Runs once the request head is read. Sluice owns the whole exchange
    /// here (pingora picks a peer before it sees the body, and the body
    /// decides the provider): the pipeline reads and parses the body,
    /// routes, talks to the provider and relays the answer. Returns
    /// `Ok(true)` ("response sent") always, so pingora's upstream phases
    /// never run.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        // Requests a client pipelined behind this one are answered in turn
        // (RFC 9112 §9.3.2); pingora's default drops them with the
        // connection after this response.
        session.as_downstream_mut().set_pipelining_enabled(true);
        match self.admit() {
            Some(_slot) => pipeline::serve(&self.gateway, session, ctx).await,
            None => {
                let limit = self.gateway.config.limits.max_connections;
                pipeline::refuse_overloaded(session, ctx, limit).await;
            }
        }
        Ok(true)
    }

    /// Never reached: `request_filter` answers every request.
    async fn upstream_peer(&self, _: &mut Session, _: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "sluice answers every request in request_filter",
        )
    }

    /// Runs last for every request, whatever happened: request metrics.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |h| h.status.as_u16());
        let m = metrics::get();
        m.requests
            .with_label_values(&[ctx.route, metrics::status_label(status)])
            .inc();
        m.request_duration
            .with_label_values(&[ctx.route])
            .observe(ctx.started.elapsed().as_secs_f64());
        if let Some(u) = &ctx.usage {
            tracing::debug!(request_id = %ctx.request_id, input = u.input_tokens, output = u.output_tokens, cached = u.cached_input_tokens, "usage");
        }
    }
}
