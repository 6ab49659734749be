//! The data-plane request path: intake, routing, translation and the owned
//! upstream exchange, streaming included.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use http::Method;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::config::ProviderKind;
use crate::echo::ModelEcho;
use crate::intake::{ApiError, ChatRequest, Shape};
use crate::metrics;
use crate::plugins::Plugin;
use crate::plugins::translator::{StreamTranslation, TranslateContext, TranslateError};
use crate::providers::{Provider, Upstream, UpstreamRequest};
use crate::respond::{Stamp, write_error, write_full};
use crate::routing::{self, Route};
use crate::server::RequestCtx;
use crate::snapshot::{Gateway, Snapshot};
use crate::sse::{SseParser, write_event};

/// Serve one data-plane request. Never fails: errors are answered in the
/// client's envelope, and a client that went away is simply left.
pub async fn serve(gw: &Gateway, session: &mut Session, ctx: &mut RequestCtx) {
    ctx.request_id = request_id(session);
    let method = session.req_header().method.clone();
    let path = session.req_header().uri.path().to_owned();
    let shape = match path.as_str() {
        "/v1/chat/completions" => Some(Shape::OpenAi),
        "/v1/messages" => Some(Shape::Anthropic),
        _ => None,
    };
    let result = match (shape, &method) {
        // Pre-flight: own routes answer with their version negotiation.
        (_, &Method::OPTIONS) => {
            crate::models::preflight(gw, session, &ctx.request_id, shape.is_some()).await
        }
        (Some(shape), &Method::POST) => {
            ctx.route = shape_route(shape);
            chat(gw, session, ctx, shape).await
        }
        (Some(shape), _) => Err(Failure::Api(
            shape,
            ApiError::new(
                405,
                "method_not_allowed",
                format!("{path} accepts POST only"),
            ),
        )),
        (None, _) if path == "/v1/models" && method == Method::GET => {
            ctx.route = "models";
            crate::models::serve(gw, session, &ctx.request_id).await
        }
        (None, _) => Err(Failure::Api(
            guess_shape(session),
            ApiError::not_found(format!("no route for {method} {path}")),
        )),
    };
    match result {
        Ok(()) => {}
        Err(Failure::Api(shape, err)) => {
            let stamp = Stamp {
                request_id: &ctx.request_id,
                provider: ctx.upstream.as_ref().map(|u| u.0.as_str()),
                model: ctx.upstream.as_ref().map(|u| u.1.as_str()),
            };
            if session.response_written().is_none() {
                let _ = write_error(session, shape, &err, &stamp).await;
            }
        }
        Err(Failure::Downstream(e)) => {
            tracing::debug!(request_id = %ctx.request_id, "client went away: {e}");
        }
    }
}

/// Refuse a request beyond the in-flight limit: 503 and `Retry-After`.
pub async fn overloaded(session: &mut Session, ctx: &mut RequestCtx, limit: usize) {
    ctx.request_id = request_id(session);
    ctx.route = "overloaded";
    let err = ApiError::new(
        503,
        "server_is_overloaded",
        format!("more than {limit} requests in flight; retry shortly"),
    );
    let stamp = Stamp {
        request_id: &ctx.request_id,
        provider: None,
        model: None,
    };
    let _ = write_error(session, guess_shape(session), &err, &stamp).await;
}

/// How a request ended early.
pub enum Failure {
    /// Answer with this error, in this shape, if no head was sent yet.
    Api(Shape, ApiError),
    /// Writing to the client failed; nothing more can be said.
    Downstream(Box<pingora_error::Error>),
}

impl From<Box<pingora_error::Error>> for Failure {
    fn from(e: Box<pingora_error::Error>) -> Self {
        Failure::Downstream(e)
    }
}

fn shape_route(shape: Shape) -> &'static str {
    match shape {
        Shape::OpenAi => "chat_completions",
        Shape::Anthropic => "messages",
    }
}

/// The envelope a client reads errors in: Anthropic for `/v1/messages` and
/// for clients that send `anthropic-version` or `x-api-key`, else OpenAI.
fn guess_shape(session: &Session) -> Shape {
    let h = &session.req_header().headers;
    if session.req_header().uri.path() == "/v1/messages"
        || h.contains_key("anthropic-version")
        || h.contains_key("x-api-key")
    {
        Shape::Anthropic
    } else {
        Shape::OpenAi
    }
}

/// The client's `x-request-id` when it is sane, else a fresh one.
fn request_id(session: &Session) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static BASE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    if let Some(v) = session.req_header().headers.get("x-request-id")
        && let Ok(s) = v.to_str()
        && !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return s.to_owned();
    }
    let base = *BASE.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
    });
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "req_{:016x}",
        base.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    )
}

async fn chat(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    shape: Shape,
) -> Result<(), Failure> {
    let api = |e: ApiError| Failure::Api(shape, e);
    let snapshot = gw.snapshot();
    check_content_type(session).map_err(api)?;
    session.set_read_timeout(Some(std::time::Duration::from_millis(
        gw.config.limits.body_read_timeout_ms,
    )));
    let bytes = read_body(session, gw.config.limits.max_body_bytes)
        .await
        .map_err(api)?;
    let req = ChatRequest::parse(shape, &bytes).map_err(api)?;
    let route = routing::route(
        &snapshot,
        &req,
        &session.req_header().headers,
        &ctx.request_id,
        bytes.len(),
        gw.config.routing.default_provider.as_deref(),
        &gw.config.routing.aliases,
    )
    .map_err(api)?;
    let provider = snapshot
        .providers
        .get(&route.provider)
        .cloned()
        .ok_or_else(|| {
            api(ApiError::new(
                502,
                "unknown_provider",
                format!(
                    "{} chose provider {:?}, which is not configured",
                    route.decided_by, route.provider
                ),
            ))
        })?;
    ctx.upstream = Some((provider.name.clone(), route.model.clone()));
    let upstream_shape = provider.shape_for(shape);
    let exchange = Exchange {
        gw,
        snapshot: &snapshot,
        ctx,
        client: shape,
        upstream_shape,
        provider: &provider,
        route: &route,
        client_model: &req.model,
        stream: req.stream,
        include_usage: req.include_usage,
    };
    let translator = if upstream_shape == shape {
        None
    } else {
        Some(exchange.translator().map_err(api)?)
    };
    let body = match &translator {
        None if route.model == req.model => bytes.clone(),
        None => Bytes::from(req.body.with_field("model", &json_string(&route.model))),
        Some(t) => exchange.translate_request(t, &bytes).map_err(api)?,
    };
    exchange.run(session, body, translator).await
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("serializing a string cannot fail")
}

fn check_content_type(session: &Session) -> Result<(), ApiError> {
    match session.req_header().headers.get("content-type") {
        None => Ok(()),
        Some(v) => {
            let v = v.to_str().unwrap_or_default().to_ascii_lowercase();
            if v.starts_with("application/json") || v.ends_with("+json") {
                Ok(())
            } else {
                Err(ApiError::new(
                    415,
                    "unsupported_media_type",
                    format!("content-type must be application/json, not {v:?}"),
                ))
            }
        }
    }
}

/// The whole request body, refusing more than `limit` bytes (413) before
/// reading it when `Content-Length` already says so.
async fn read_body(session: &mut Session, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "request_too_large",
            format!("request body exceeds the {limit}-byte limit"),
        )
    };
    let declared = session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Most bodies arrive in one piece: keep that piece as is, copy only when
    // a second one follows.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    loop {
        let chunk = session.read_request_body().await.map_err(|e| {
            if e.etype() == &pingora_error::ErrorType::ReadTimedout {
                ApiError::new(408, "request_timeout", "timed out reading the request body")
            } else {
                ApiError::bad_request(format!("cannot read request body: {e}"))
            }
        })?;
        let Some(chunk) = chunk else { break };
        let held = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if held + chunk.len() > limit {
            return Err(too_large());
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            prev => {
                if buf.is_empty() {
                    buf.reserve(declared.unwrap_or(0).min(limit).max(2 * chunk.len()));
                }
                if let Some(p) = prev {
                    buf.extend_from_slice(&p);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    let body = first.unwrap_or_else(|| buf.freeze());
    if body.is_empty() {
        return Err(ApiError::bad_request("request body is empty"));
    }
    Ok(body)
}

/// One routed request on its way to a provider and back.
struct Exchange<'a> {
    gw: &'a Gateway,
    snapshot: &'a Arc<Snapshot>,
    ctx: &'a RequestCtx,
    client: Shape,
    upstream_shape: Shape,
    provider: &'a Arc<Provider>,
    route: &'a Route,
    client_model: &'a str,
    stream: bool,
    include_usage: bool,
}

impl Exchange<'_> {
    fn stamp(&self) -> Stamp<'_> {
        Stamp {
            request_id: &self.ctx.request_id,
            provider: Some(&self.provider.name),
            model: Some(&self.route.model),
        }
    }

    fn translate_ctx(&self) -> TranslateContext {
        TranslateContext {
            client: self.client.into(),
            provider: self.upstream_shape.into(),
            provider_model: self.route.model.clone(),
            client_model: self.client_model.to_owned(),
            stream: self.stream,
            include_usage: self.include_usage,
        }
    }

    fn translator(&self) -> Result<Arc<Plugin>, ApiError> {
        self.snapshot
            .plugins
            .translators
            .get(&(self.client, self.upstream_shape))
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    503,
                    "translator_unavailable",
                    format!(
                        "provider {} speaks {} and no translator plugin for {}->{} is loaded",
                        self.provider.name,
                        self.upstream_shape.as_str(),
                        self.client.as_str(),
                        self.upstream_shape.as_str()
                    ),
                )
            })
    }

    fn translate_request(&self, t: &Plugin, body: &[u8]) -> Result<Bytes, ApiError> {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("request body is not UTF-8"))?;
        match t.translate_request(&self.translate_ctx(), text) {
            Ok(Ok(out)) => Ok(Bytes::from(out)),
            Ok(Err(e)) => Err(translate_error(e)),
            Err(e) => Err(ApiError::new(
                502,
                "translator_failed",
                format!("translator {} failed: {e}", t.name()),
            )),
        }
    }

    async fn run(
        &self,
        session: &mut Session,
        body: Bytes,
        translator: Option<Arc<Plugin>>,
    ) -> Result<(), Failure> {
        let api = |e: ApiError| Failure::Api(self.client, e);
        let forwarded = forwarded_headers(session, self.client, self.upstream_shape, self.provider);
        let headers: Vec<(&str, &str)> = forwarded.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let request = UpstreamRequest {
            endpoint: self.upstream_shape.endpoint(),
            body,
            headers: &headers,
            request_id: &self.ctx.request_id,
            stream: self.stream,
        };
        let mut upstream = self
            .gw_providers()
            .send(self.provider, request)
            .await
            .map_err(|e| {
                self.count_upstream_error(e.class());
                api(e.to_api_error())
            })?;
        let status = upstream.status();
        let is_sse = upstream
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let result = if status >= 400 {
            self.relay_error(session, &mut upstream, status).await
        } else if is_sse {
            self.relay_stream(session, &mut upstream, translator).await
        } else {
            self.relay_whole(session, &mut upstream, status, translator)
                .await
        };
        upstream.release(self.gw_providers()).await;
        result
    }

    fn gw_providers(&self) -> &crate::providers::Providers {
        &self.snapshot.providers
    }

    fn count_upstream_error(&self, class: &str) {
        metrics::get()
            .upstream_errors
            .with_label_values(&[&self.provider.name, class])
            .inc();
    }

    /// A provider error, kept as is for same-shape clients and re-enveloped
    /// (status and upstream message kept) for the others.
    async fn relay_error(
        &self,
        session: &mut Session,
        upstream: &mut Upstream,
        status: u16,
    ) -> Result<(), Failure> {
        self.count_upstream_error(if status >= 500 { "server" } else { "client" });
        let body = upstream
            .read_all(self.gw.config.limits.max_response_bytes)
            .await
            .unwrap_or_default();
        if self.client == self.upstream_shape {
            let ct = upstream
                .header("content-type")
                .unwrap_or("application/json")
                .to_owned();
            let retry = upstream.header("retry-after").map(str::to_owned);
            let extra: Vec<(&str, &str)> =
                retry.iter().map(|r| ("retry-after", r.as_str())).collect();
            write_full(session, status, &ct, body, &self.stamp(), &extra).await?;
            return Ok(());
        }
        let err = upstream_error(&self.provider.name, status, &body);
        write_error(session, self.client, &err, &self.stamp()).await?;
        Ok(())
    }

    async fn relay_whole(
        &self,
        session: &mut Session,
        upstream: &mut Upstream,
        status: u16,
        translator: Option<Arc<Plugin>>,
    ) -> Result<(), Failure> {
        let api = |e: ApiError| Failure::Api(self.client, e);
        let body = upstream
            .read_all(self.gw.config.limits.max_response_bytes)
            .await
            .map_err(|e| {
                self.count_upstream_error(e.class());
                api(e.to_api_error())
            })?;
        let body = match translator {
            Some(t) => {
                let text = std::str::from_utf8(&body).map_err(|_| {
                    api(ApiError::new(
                        502,
                        "upstream_error",
                        "provider response is not UTF-8",
                    ))
                })?;
                match t.translate_response(&self.translate_ctx(), text) {
                    Ok(Ok(out)) => Bytes::from(out),
                    Ok(Err(e)) => return Err(api(translate_error(e))),
                    Err(e) => {
                        return Err(api(ApiError::new(
                            502,
                            "translator_failed",
                            format!("translator {} failed: {e}", t.name()),
                        )));
                    }
                }
            }
            None => ModelEcho::new(self.client, self.client_model, &self.route.model).whole(body),
        };
        write_full(
            session,
            status,
            "application/json",
            body,
            &self.stamp(),
            &[],
        )
        .await?;
        Ok(())
    }

    async fn relay_stream(
        &self,
        session: &mut Session,
        upstream: &mut Upstream,
        translator: Option<Arc<Plugin>>,
    ) -> Result<(), Failure> {
        let mut translation = match &translator {
            Some(t) => Some(t.open_stream(&self.translate_ctx()).map_err(|e| {
                Failure::Api(
                    self.client,
                    ApiError::new(
                        502,
                        "translator_failed",
                        format!("translator {} failed: {e}", t.name()),
                    ),
                )
            })?),
            None => None,
        };
        let mut h = ResponseHeader::build(200, Some(6))?;
        h.insert_header("content-type", "text/event-stream")?;
        h.insert_header("cache-control", "no-cache")?;
        // Chunked framing on HTTP/1.1: without a length pingora otherwise
        // delimits the body by closing the connection, so a client could
        // not tell a stream cut short from a finished one, nor reuse the
        // connection. (HTTP/2 drops the header; HTTP/1.0 cannot chunk.)
        if session.req_header().version == http::Version::HTTP_11 {
            h.insert_header("transfer-encoding", "chunked")?;
        }
        self.stamp().apply(&mut h)?;
        session.write_response_header(Box::new(h), false).await?;

        let echo = ModelEcho::new(self.client, self.client_model, &self.route.model);
        let mut relay = StreamRelay {
            parser: SseParser::default(),
            events: Vec::new(),
            out: Vec::new(),
            echo,
            tail: Vec::with_capacity(2 * TAIL),
        };
        loop {
            let chunk = match upstream.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    self.count_upstream_error(e.class());
                    let ev = e
                        .to_api_error()
                        .stream_event(self.client, &self.ctx.request_id);
                    session
                        .write_response_body(Some(Bytes::from(ev)), true)
                        .await?;
                    return Ok(());
                }
            };
            let out = match &mut translation {
                None if !relay.echo.rewrites() => chunk,
                None => relay.echo_chunk(&chunk),
                Some(t) => match relay.translate_chunk(t, &chunk) {
                    Ok(b) => b,
                    Err(err) => {
                        let ev = err.stream_event(self.client, &self.ctx.request_id);
                        session
                            .write_response_body(Some(Bytes::from(ev)), true)
                            .await?;
                        return Ok(());
                    }
                },
            };
            if !out.is_empty() {
                relay.note_tail(&out);
                session.write_response_body(Some(out), false).await?;
            }
        }
        let tail = match translation {
            None => {
                let mut tail = relay.finish_echo().to_vec();
                relay.note_tail(&tail);
                if !relay.ended_properly() {
                    // The provider closed a stream without its final event:
                    // say so rather than let it pass as complete.
                    let err = ApiError::new(
                        502,
                        "upstream_error",
                        format!("provider {} ended the stream early", self.provider.name),
                    );
                    tail.extend(err.stream_event(self.client, &self.ctx.request_id));
                }
                Bytes::from(tail)
            }
            Some(t) => match relay.finish_translation(t) {
                Ok(b) => b,
                Err(err) => Bytes::from(err.stream_event(self.client, &self.ctx.request_id)),
            },
        };
        session.write_response_body(Some(tail), true).await?;
        Ok(())
    }
}

/// Per-stream buffers, reused across chunks.
struct StreamRelay<'a> {
    parser: SseParser,
    events: Vec<crate::plugins::bindings::SseEvent>,
    out: Vec<u8>,
    echo: ModelEcho<'a>,
    /// The last bytes sent, to tell a finished stream from a cut one.
    tail: Vec<u8>,
}

/// Enough of a stream's end to hold its final event marker.
const TAIL: usize = 48;

impl StreamRelay<'_> {
    fn note_tail(&mut self, bytes: &[u8]) {
        let keep = bytes.len().min(TAIL);
        self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        let excess = self.tail.len().saturating_sub(TAIL);
        self.tail.drain(..excess);
    }

    /// A same-shape stream ends with OpenAI's `[DONE]`, Anthropic's
    /// `message_stop`, or an error event.
    fn ended_properly(&self) -> bool {
        let tail = String::from_utf8_lossy(&self.tail);
        tail.contains("[DONE]") || tail.contains("message_stop") || tail.contains("error")
    }

    fn take_out(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }

    fn echo_chunk(&mut self, chunk: &[u8]) -> Bytes {
        self.parser.push(chunk, &mut self.events);
        for ev in self.events.drain(..) {
            write_event(&self.echo.event(ev), &mut self.out);
        }
        self.take_out()
    }

    fn finish_echo(&mut self) -> Bytes {
        self.parser.finish(&mut self.events);
        for ev in self.events.drain(..) {
            write_event(&self.echo.event(ev), &mut self.out);
        }
        self.take_out()
    }

    fn translate_chunk(
        &mut self,
        t: &mut StreamTranslation,
        chunk: &[u8],
    ) -> Result<Bytes, ApiError> {
        self.parser.push(chunk, &mut self.events);
        self.translate_pending(t)?;
        Ok(self.take_out())
    }

    fn translate_pending(&mut self, t: &mut StreamTranslation) -> Result<(), ApiError> {
        for ev in std::mem::take(&mut self.events) {
            match t.push(&ev) {
                Ok(Ok(events)) => events.iter().for_each(|e| write_event(e, &mut self.out)),
                Ok(Err(e)) => return Err(translate_error(e)),
                Err(e) => {
                    return Err(ApiError::new(
                        502,
                        "translator_failed",
                        format!("stream translator failed: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn finish_translation(&mut self, mut t: StreamTranslation) -> Result<Bytes, ApiError> {
        self.parser.finish(&mut self.events);
        self.translate_pending(&mut t)?;
        let tail = t.finish().map_err(|e| {
            ApiError::new(
                502,
                "translator_failed",
                format!("stream translator failed: {e}"),
            )
        })?;
        tail.iter().for_each(|e| write_event(e, &mut self.out));
        Ok(self.take_out())
    }
}

fn translate_error(e: TranslateError) -> ApiError {
    let status = if (400..=599).contains(&e.status) {
        e.status
    } else {
        400
    };
    let mut err = ApiError::new(status, e.code, e.message);
    err.param = e.param;
    err
}

/// A provider's error body re-enveloped: its status and message are kept.
fn upstream_error(provider: &str, status: u16, body: &[u8]) -> ApiError {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let e = &v["error"];
    let message = e["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned());
    let code = e["code"]
        .as_str()
        .or_else(|| e["type"].as_str())
        .unwrap_or("upstream_error")
        .to_owned();
    ApiError::new(status, code, format!("provider {provider}: {message}"))
}

/// Client headers a provider may see: never credentials.
fn forwarded_headers(
    session: &Session,
    client: Shape,
    upstream: Shape,
    provider: &Provider,
) -> Vec<(&'static str, String)> {
    let h = &session.req_header().headers;
    let mut out = Vec::new();
    let mut copy = |name: &'static str| {
        if let Some(v) = h.get(name).and_then(|v| v.to_str().ok()) {
            out.push((name, v.to_owned()));
        }
    };
    if client == Shape::Anthropic && upstream == Shape::Anthropic {
        copy("anthropic-beta");
        copy("anthropic-version");
    }
    if provider.kind == ProviderKind::Mock {
        for name in crate::mock::CONTROL_HEADERS {
            copy(name);
        }
    }
    out
}
