//! The redact stage: request redactors in policy order rewrite (or refuse)
//! the client-shape body before it is translated and sent. What each leaves
//! in `state` goes with the exchange to the response side, where the same
//! redactors run in reverse order (`relay`).

use std::sync::Arc;

use bytes::Bytes;

use super::Failure;
use crate::api::{ApiError, ChatRequest};
use crate::pipeline::RequestCtx;
use crate::plugins::redactor::RedactContext;
use crate::plugins::{FailMode, Plugin, PluginError, PluginKind};

/// The request after redaction, and the redactors the response must pass.
#[derive(Default, Clone)]
pub struct Redaction {
    /// The body to send instead of the client's (client shape).
    pub body: Option<Bytes>,
    /// Each redactor that ran, with the state it handed over, in run order.
    pub passes: Vec<(Arc<Plugin>, Option<String>)>,
}

impl Redaction {
    pub fn context(ctx: &RequestCtx) -> RedactContext {
        let primary = ctx.decision.as_ref().map(|d| d.primary());
        RedactContext {
            shape: ctx.shape.into(),
            request_id: ctx.request_id.clone(),
            provider: primary.map(|c| c.provider.clone()).unwrap_or_default(),
            model: primary.map(|c| c.model.clone()).unwrap_or_default(),
        }
    }
}

pub async fn request(ctx: &RequestCtx) -> Result<Redaction, Failure> {
    let snapshot = ctx
        .snapshot
        .clone()
        .expect("serve loads the snapshot first");
    let mut out = Redaction::default();
    if snapshot.plugins.redactors.is_empty() {
        return Ok(out);
    }
    let req = ctx.request.as_ref().expect("the parse stage ran");
    let rctx = Redaction::context(ctx);
    let routed = ctx
        .decision
        .as_ref()
        .map(|d| d.primary().id())
        .unwrap_or_default();
    let mut body: Option<String> = None;
    let in_scope = snapshot
        .plugins
        .redactors
        .iter()
        .filter(|p| p.binding.scope.applies(ctx.caller.as_ref(), &routed));
    for plugin in in_scope {
        let text = match &body {
            Some(b) => b.as_str(),
            None => std::str::from_utf8(&req.body).expect("a parsed body is UTF-8"),
        };
        match plugin.redact_request(&rctx, text).await {
            Ok(Ok(r)) => {
                if let Some(b) = r.body {
                    body = Some(b);
                }
                out.passes.push((plugin.clone(), r.state));
            }
            Ok(Err(rejection)) => return Err(refused(plugin.name(), rejection)),
            Err(e) if skippable(plugin, &e) => out.passes.push((plugin.clone(), None)),
            Err(e) => return Err(Failure::plugin(plugin.name(), PluginKind::Redactor, e)),
        }
    }
    if let Some(b) = body {
        // A redactor must leave a request the gateway would accept.
        let checked = ChatRequest::parse(req.shape, Bytes::from(b)).map_err(|e| {
            Failure::plugin(
                "redaction",
                PluginKind::Redactor,
                PluginError::Trap(format!(
                    "a redactor produced an invalid request: {}",
                    e.message
                )),
            )
        })?;
        out.body = Some(checked.body);
    }
    Ok(out)
}

/// A refusal by the redactor named `plugin`, in client terms.
pub fn refused(plugin: &str, r: crate::plugins::bindings::Rejection) -> Failure {
    let status = if (400..=599).contains(&r.status) {
        r.status
    } else {
        403
    };
    Failure::Api(ApiError::new(
        status,
        r.code,
        format!("{} (redactor {plugin})", r.message),
    ))
}

/// A failing redactor is skipped only when fail-open, and never for load
/// or input reasons (those are answered 503 / 413).
pub fn skippable(plugin: &Plugin, e: &PluginError) -> bool {
    plugin.binding.fail_mode == FailMode::Open
        && !matches!(e, PluginError::Busy | PluginError::InputTooLarge { .. })
}
