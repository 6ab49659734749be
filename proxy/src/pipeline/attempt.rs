//! The attempt stage: for one candidate, translate the request to the
//! provider's shape, send it, and wait for the response head. An attempt
//! returns the upstream outcome before anything is written to the client,
//! so a caller can still try another candidate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora_proxy::Session;

use super::Failure;
use super::redact::Redaction;
use crate::api::{ApiError, Shape, splice_string, top_level_model_span};
use crate::config::ProviderKind;
use crate::metrics;
use crate::pipeline::RequestCtx;
use crate::plugins::translator::TranslateContext;
use crate::plugins::{Plugin, PluginKind};
use crate::providers::{Provider, Upstream, UpstreamRequest};
use crate::routing::Candidate;

/// One provider call, as recorded in the request context.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    /// The shape the provider was spoken to in.
    pub shape: Shape,
    /// The response status, once a head arrived.
    pub status: Option<u16>,
    /// `network`, `timeout`, … when no head arrived.
    pub error_class: Option<&'static str>,
    /// Until the head arrived, or the attempt failed.
    pub elapsed: Duration,
    /// The request may have reached the provider (it was sent, or the
    /// connection broke after sending): it may be billed.
    pub delivered: bool,
}

impl Attempt {
    /// `provider:model`, the canonical id of what was called.
    pub fn id(&self) -> String {
        format!("{}:{}", self.provider, self.model)
    }

    /// What became of it: the status, or the error class.
    pub fn outcome(&self) -> String {
        match (self.status, self.error_class) {
            (Some(s), _) => s.to_string(),
            (None, Some(c)) => c.to_owned(),
            (None, None) => "failed".into(),
        }
    }
}

/// A response head from the provider and what relaying it needs.
pub struct Exchange {
    pub upstream: Upstream,
    pub provider: Arc<Provider>,
    pub upstream_shape: Shape,
    /// Set when the provider speaks another shape than the client.
    pub translation: Option<(Arc<Plugin>, TranslateContext)>,
    pub redaction: Redaction,
    /// Sluice asked an OpenAI-shape provider for stream usage the client
    /// did not ask for: its usage chunk is not relayed.
    pub strip_usage: bool,
    /// Times the call for `sluice_llm_call_duration_seconds` and, on a
    /// stream, `sluice_llm_time_to_first_token_seconds`.
    pub call: CallTimer,
}

/// Times one provider call from the moment it was sent. The duration is
/// observed once: at the end of the response (`finish`: the whole body
/// read, the stream's end), or when the exchange is dropped unread (an
/// error passed through, a failed candidate the fallback moved past). A
/// call whose client left is not observed (`cancel`): how long the
/// provider would have taken is unknown.
pub struct CallTimer {
    started: Instant,
    duration: Option<prometheus::Histogram>,
    first_token: Option<prometheus::Histogram>,
}

impl CallTimer {
    fn new(started: Instant, provider: &str, model: &str, stream: bool) -> Self {
        let m = metrics::get();
        Self {
            started,
            duration: Some(m.llm_call_duration.with_label_values(&[provider, model])),
            first_token: stream.then(|| {
                m.llm_time_to_first_token
                    .with_label_values(&[provider, model])
            }),
        }
    }

    /// The provider's first SSE event arrived (observed once).
    pub fn first_event(&mut self) {
        if let Some(h) = self.first_token.take() {
            h.observe(self.started.elapsed().as_secs_f64());
        }
    }

    /// Whether the first event is still awaited.
    pub fn awaits_first_event(&self) -> bool {
        self.first_token.is_some()
    }

    /// The response ended: observe the call's duration (once).
    pub fn finish(&mut self) {
        self.first_token = None;
        if let Some(h) = self.duration.take() {
            h.observe(self.started.elapsed().as_secs_f64());
        }
    }

    /// The client left before the response ended: observe nothing.
    pub fn cancel(&mut self) {
        self.first_token = None;
        self.duration = None;
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.finish();
    }
}

pub async fn run(
    session: &mut Session,
    ctx: &mut RequestCtx,
    redaction: Redaction,
    candidate: &Candidate,
) -> Result<Exchange, Failure> {
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let provider = snapshot
        .providers
        .get(&candidate.provider)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                502,
                "unknown_provider",
                format!("provider {:?} is not configured", candidate.provider),
            )
        })?;
    let client = req.shape;
    let upstream_shape = provider.shape_for(client);
    let client_body = redaction.body.clone().unwrap_or_else(|| req.body.clone());
    // Cost comes from the provider's report: a same-shape OpenAI stream
    // must ask for it.
    let strip_usage = req.stream
        && !req.include_usage
        && client == Shape::OpenAi
        && upstream_shape == Shape::OpenAi;
    let client_body = if strip_usage || ctx.max_tokens.is_some() {
        let field = match provider.kind {
            ProviderKind::Openai => "max_completion_tokens",
            _ => "max_tokens",
        };
        crate::api::set_limits(&client_body, client, ctx.max_tokens, field, strip_usage)?
    } else {
        client_body
    };
    let (body, translation) = if upstream_shape == client {
        (with_model(req, &client_body, &candidate.model), None)
    } else {
        let translator = snapshot
            .plugins
            .translators
            .get(&(client, upstream_shape))
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    503,
                    "translator_unavailable",
                    format!(
                        "provider {} speaks {} and no translator plugin for {}->{} is loaded",
                        provider.name,
                        upstream_shape.as_str(),
                        client.as_str(),
                        upstream_shape.as_str()
                    ),
                )
            })?;
        let tctx = TranslateContext {
            client: client.into(),
            provider: upstream_shape.into(),
            provider_model: candidate.model.clone(),
            client_model: req.model.clone(),
            stream: req.stream,
            include_usage: req.include_usage,
        };
        let text = std::str::from_utf8(&client_body).expect("a parsed body is UTF-8");
        let out = match translator.translate_request(&tctx, text).await {
            Ok(Ok(out)) => Bytes::from(out),
            Ok(Err(e)) => return Err(Failure::Translate(e)),
            Err(e) => {
                return Err(Failure::plugin(
                    translator.name(),
                    PluginKind::Translator,
                    e,
                ));
            }
        };
        (out, Some((translator, tctx)))
    };

    let forwarded = forwarded_headers(session, client, upstream_shape, &provider);
    let headers: Vec<(&str, &str)> = forwarded.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let request = UpstreamRequest {
        endpoint: upstream_shape.endpoint(),
        body,
        headers: &headers,
        request_id: &ctx.request_id,
        stream: req.stream,
    };
    let started = Instant::now();
    let mut attempt = Attempt {
        provider: provider.name.clone(),
        model: candidate.model.clone(),
        shape: upstream_shape,
        status: None,
        error_class: None,
        elapsed: Duration::ZERO,
        delivered: true,
    };
    // Waiting on the provider while the client is gone would only spend
    // its money: the upstream exchange is dropped as soon as it leaves.
    let sent = tokio::select! {
        r = snapshot.providers.send(&provider, request) => r,
        why = client_gone(session) => {
            attempt.error_class = Some("client_gone");
            attempt.elapsed = started.elapsed();
            ctx.attempts.push(attempt);
            return Err(Failure::ClientGone {
                stage: "waiting",
                detail: why,
            });
        }
    };
    attempt.elapsed = started.elapsed();
    let model = model_label(&snapshot, candidate);
    match sent {
        Ok(upstream) => {
            attempt.status = Some(upstream.status());
            ctx.attempts.push(attempt);
            let call = CallTimer::new(started, &provider.name, model, req.stream);
            Ok(Exchange {
                upstream,
                provider,
                upstream_shape,
                translation,
                redaction,
                strip_usage,
                call,
            })
        }
        Err(e) => {
            // No response: the call ended when it failed (a timeout
            // counts its whole wait).
            metrics::get()
                .llm_call_duration
                .with_label_values(&[&provider.name, model])
                .observe(attempt.elapsed.as_secs_f64());
            count_upstream_error(&provider.name, e.class());
            attempt.error_class = Some(e.class());
            attempt.delivered = e.may_have_reached();
            ctx.attempts.push(attempt);
            Err(Failure::Upstream(e))
        }
    }
}

/// The model as a metric label: only models the operator named (priced,
/// or in the routing registry), else "other", so clients cannot mint
/// label values.
fn model_label<'a>(snapshot: &crate::state::Snapshot, c: &'a Candidate) -> &'a str {
    if snapshot.names_model(&c.id()) {
        &c.model
    } else {
        "other"
    }
}

/// `body` with its model set to the provider-side name (untouched when it
/// already is).
fn with_model(req: &crate::api::ChatRequest, body: &Bytes, model: &str) -> Bytes {
    if body == &req.body {
        return req.with_model(model);
    }
    match top_level_model_span(body) {
        Some(span) => splice_string(body, span, model),
        None => body.clone(),
    }
}

/// Resolves when the client closed its side or reset the stream.
pub async fn client_gone(session: &mut Session) -> String {
    match session.read_body_or_idle(true).await {
        Err(e) => e.to_string(),
        Ok(_) => "the client sent data after its request".into(),
    }
}

pub fn count_upstream_error(provider: &str, class: &str) {
    metrics::get()
        .upstream_errors
        .with_label_values(&[provider, class])
        .inc();
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
