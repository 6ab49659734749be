//! Every way a request can fail, and the one function that turns each into
//! the status and envelope the client sees. Clients get a short message
//! naming the request id; guest backtraces, file paths and transport
//! detail go to the log (and `/admin/plugins`) only.

use pingora_proxy::Session;

use crate::api::{ApiError, Shape};
use crate::http::respond::write_error;
use crate::metrics;
use crate::pipeline::RequestCtx;
use crate::plugins::translator::TranslateError;
use crate::plugins::{PluginError, PluginKind};
use crate::providers::UpstreamError;
use crate::routing::RouteError;

/// How a stage ended a request early.
#[derive(Debug)]
pub enum Failure {
    /// Already in client terms (bad input, own routes, refusals).
    Api(ApiError),
    Route(RouteError),
    /// A plugin on the path failed; what the client sees depends on its
    /// kind and the kind of failure.
    Plugin {
        plugin: String,
        kind: PluginKind,
        error: PluginError,
    },
    /// A translator refused the request or response (its own verdict).
    Translate(TranslateError),
    Upstream(UpstreamError),
    /// The client went away (or stopped reading): there is nobody to
    /// answer. `waiting` while Sluice waited on the provider, `writing`
    /// while it wrote the response.
    ClientGone {
        stage: &'static str,
        detail: String,
    },
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<RouteError> for Failure {
    fn from(e: RouteError) -> Self {
        Failure::Route(e)
    }
}

impl From<UpstreamError> for Failure {
    fn from(e: UpstreamError) -> Self {
        Failure::Upstream(e)
    }
}

impl From<Box<pingora_error::Error>> for Failure {
    fn from(e: Box<pingora_error::Error>) -> Self {
        Failure::ClientGone {
            stage: "writing",
            detail: e.to_string(),
        }
    }
}

impl Failure {
    pub fn plugin(plugin: &str, kind: PluginKind, error: PluginError) -> Self {
        Failure::Plugin {
            plugin: plugin.to_owned(),
            kind,
            error,
        }
    }

    /// What the client is told; `None` when nobody is listening.
    pub fn to_api_error(&self, request_id: &str) -> Option<ApiError> {
        let within = |what: String| format!("{what} (request {request_id})");
        Some(match self {
            Failure::Api(e) => e.clone(),
            Failure::ClientGone { .. } => return None,
            Failure::Translate(e) => {
                let status = if (400..=599).contains(&e.status) {
                    e.status
                } else {
                    400
                };
                let mut err = ApiError::new(status, e.code.clone(), e.message.clone());
                err.param = e.param.clone();
                err
            }
            Failure::Route(RouteError::Rejected {
                plugin,
                status,
                code,
                message,
            }) => {
                let status = if (400..=599).contains(status) {
                    *status
                } else {
                    403
                };
                ApiError::new(status, code.clone(), format!("{message} (router {plugin})"))
            }
            Failure::Route(RouteError::PluginFailed { plugin, error }) => {
                plugin_error(plugin, PluginKind::Router, error, &within)
            }
            Failure::Route(RouteError::InvalidChoice { plugin, .. }) => ApiError::new(
                502,
                "plugin_failed",
                within(format!(
                    "router plugin {plugin} chose a target that cannot be served"
                )),
            ),
            Failure::Route(RouteError::NoProvider { model, provider }) => ApiError::new(
                404,
                "model_not_found",
                format!(
                    "no provider serves model {model:?}: no router decided, no provider is \
                     named {provider:?} and no routing.default_provider is set"
                ),
            )
            .with_param("model"),
            Failure::Route(RouteError::NoneAvailable { skipped }) => ApiError::new(
                503,
                "no_model_available",
                format!(
                    "no model available; tried: {}",
                    skipped
                        .iter()
                        .map(|s| format!("{} ({})", s.model, s.reason))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_retry_after(1),
            Failure::Plugin {
                plugin,
                kind,
                error,
            } => plugin_error(plugin, *kind, error, &within),
            Failure::Upstream(e) => {
                let (status, code, message) = match e {
                    UpstreamError::Timeout { provider, phase } => (
                        504,
                        "upstream_timeout",
                        format!("provider {provider} timed out {phase}"),
                    ),
                    UpstreamError::Connect { provider, .. } => (
                        502,
                        "upstream_unavailable",
                        format!("cannot connect to provider {provider}"),
                    ),
                    UpstreamError::Io { provider, .. } => (
                        502,
                        "upstream_error",
                        format!("the connection to provider {provider} failed"),
                    ),
                    UpstreamError::TooLarge { provider, limit } => (
                        502,
                        "upstream_error",
                        format!("provider {provider} sent a response larger than {limit} bytes"),
                    ),
                };
                ApiError::new(status, code, within(message))
            }
        })
    }
}

fn plugin_error(
    plugin: &str,
    kind: PluginKind,
    error: &PluginError,
    within: &dyn Fn(String) -> String,
) -> ApiError {
    let what = format!("{} plugin {plugin} {}", kind.as_str(), error.public());
    match error {
        PluginError::InputTooLarge { .. } => ApiError::new(413, "request_too_large", within(what)),
        PluginError::Busy => {
            ApiError::new(503, "plugin_busy", within(format!("{what}; retry shortly")))
                .with_retry_after(1)
        }
        PluginError::Disabled { retry_after } => {
            ApiError::new(503, "plugin_unavailable", within(what)).with_retry_after(*retry_after)
        }
        _ => match kind {
            PluginKind::Translator => ApiError::new(502, "translator_failed", within(what)),
            _ => ApiError::new(503, "plugin_failed", within(what)),
        },
    }
}

/// Answer `failure` in the client's envelope, unless a response already
/// began (then the relay has ended the stream itself) or nobody listens.
pub async fn answer(session: &mut Session, ctx: &RequestCtx, failure: Failure) {
    if let Failure::ClientGone { stage, detail } = &failure {
        metrics::get().abandoned.with_label_values(&[stage]).inc();
        tracing::info!(request_id = %ctx.request_id, stage, "client went away; its upstream exchange was dropped: {detail}");
        return;
    }
    if let Failure::Upstream(e) = &failure {
        tracing::warn!(request_id = %ctx.request_id, "upstream failed: {e}");
    }
    let Some(err) = failure.to_api_error(&ctx.request_id) else {
        return;
    };
    // A `100 Continue` does not count: the final answer is still owed.
    if session
        .response_written()
        .is_some_and(|h| !h.status.is_informational())
    {
        return;
    }
    let stamp = ctx.stamp();
    if write_error(session, ctx.shape, &err, &stamp).await.is_err() {
        tracing::debug!(request_id = %ctx.request_id, "client went away before the error was sent");
    }
}

/// The error as the last event of a stream in `shape`'s format.
pub fn stream_event(failure: &Failure, shape: Shape, request_id: &str) -> Vec<u8> {
    failure
        .to_api_error(request_id)
        .map(|e| e.stream_event(shape, request_id))
        .unwrap_or_default()
}
