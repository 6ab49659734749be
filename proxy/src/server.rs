//! The pingora `ProxyHttp` implementation: phases only, delegating to
//! `chat`, `routing`, `providers` and `plugins`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_proxy::{ProxyHttp, Session};

use crate::chat;
use crate::metrics;
use crate::snapshot::Gateway;

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
}

/// Holds one in-flight slot; released when the request ends, however.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Per-request state, from intake to logging.
pub struct RequestCtx {
    pub started: Instant,
    /// Metric label for the route served.
    pub route: &'static str,
    pub request_id: String,
    /// Provider and model once routed, for the response headers of errors
    /// that happen after routing.
    pub upstream: Option<(String, String)>,
}

#[async_trait]
impl ProxyHttp for Sluice {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: "unknown",
            request_id: String::new(),
            upstream: None,
        }
    }

    /// Runs once the request head is read. Sluice owns the whole exchange
    /// here: it reads and parses the body, routes, talks to the provider and
    /// streams the answer back, so it always returns `Ok(true)` ("response
    /// sent") and pingora's own upstream phases never run.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let limit = self.gateway.config.limits.max_connections;
        let slot = Slot(&self.in_flight);
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= limit {
            chat::overloaded(session, ctx, limit).await;
        } else {
            chat::serve(&self.gateway, session, ctx).await;
        }
        drop(slot);
        Ok(true)
    }

    /// Never reached: `request_filter` answers every request.
    async fn upstream_peer(&self, _: &mut Session, _: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        Error::e_explain(
            ErrorType::InternalError,
            "sluice answers every request in request_filter",
        )
    }

    /// Runs last for every request, whatever happened.
    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |h| h.status.as_u16());
        let m = metrics::get();
        m.requests
            .with_label_values(&[ctx.route, status_label(status)])
            .inc();
        m.request_duration
            .with_label_values(&[ctx.route])
            .observe(ctx.started.elapsed().as_secs_f64());
    }
}

/// Static labels, so recording allocates nothing.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        410 => "410",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        0 => "none",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
