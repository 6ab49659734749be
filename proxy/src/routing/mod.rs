//! Deciding where a request goes: model normalization, then the router
//! plugins, then the `provider:model` name itself, then the default.

mod model;

use crate::intake::{ApiError, ChatRequest};
use crate::plugins::{RouterDecision, RouterHeader, RouterRequest, run_routers};
use crate::snapshot::Snapshot;

pub use model::{Canonical, OPT_OUT, normalize};

/// Where a request will be sent, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub provider: String,
    /// The model to name upstream (no provider prefix).
    pub model: String,
    /// Who decided: a router plugin's name, `model-prefix` or `default`.
    pub decided_by: String,
}

/// Headers routers never see.
const HIDDEN_HEADERS: [&str; 3] = ["authorization", "x-api-key", "cookie"];

/// Run the routing chain for `req`.
pub fn route(
    snapshot: &Snapshot,
    req: &ChatRequest<'_>,
    headers: &http::HeaderMap,
    request_id: &str,
    body_bytes: usize,
    default_provider: Option<&str>,
    aliases: &std::collections::HashMap<String, String>,
) -> Result<Route, ApiError> {
    let canonical = normalize(&req.model, req.shape, aliases, |p| {
        snapshot.providers.get(p).is_some()
    });
    let routers = &snapshot.plugins.routers;
    if !routers.is_empty() {
        let view = RouterRequest {
            request_id: request_id.to_owned(),
            inbound_shape: req.shape.into(),
            model: req.model.to_string(),
            canonical_model: canonical.id(),
            stream: req.stream,
            headers: headers
                .iter()
                .filter(|(n, _)| !HIDDEN_HEADERS.contains(&n.as_str()))
                .filter_map(|(n, v)| {
                    Some(RouterHeader {
                        name: n.as_str().to_owned(),
                        value: v.to_str().ok()?.to_owned(),
                    })
                })
                .collect(),
            message_count: req.message_count,
            has_tools: req.has_tools,
            body_bytes: body_bytes.min(u32::MAX as usize) as u32,
            key_id: None,
            user_id: None,
            team_id: None,
        };
        match run_routers(routers, &view) {
            Ok(Some(RouterDecision::Route {
                provider,
                model,
                plugin,
                ..
            })) => {
                return Ok(Route {
                    provider,
                    model,
                    decided_by: plugin,
                });
            }
            Ok(Some(RouterDecision::Reject {
                status,
                code,
                message,
                plugin,
            })) => {
                let status = if (400..=599).contains(&status) {
                    status
                } else {
                    403
                };
                return Err(ApiError::new(
                    status,
                    code,
                    format!("{message} (router {plugin})"),
                ));
            }
            Ok(None) => {}
            Err((plugin, e)) => {
                return Err(ApiError::new(
                    503,
                    "plugin_failed",
                    format!("router plugin {plugin} failed and is fail-closed: {e}"),
                ));
            }
        }
    }
    if snapshot.providers.get(&canonical.provider).is_some() {
        return Ok(Route {
            provider: canonical.provider,
            model: canonical.model,
            decided_by: "model-prefix".into(),
        });
    }
    if let Some(default) = default_provider {
        return Ok(Route {
            provider: default.to_owned(),
            model: canonical.model,
            decided_by: "default".into(),
        });
    }
    Err(ApiError::new(
        404,
        "model_not_found",
        format!(
            "no provider serves model {:?}: no router decided, no provider is named {:?} and \
             no routing.default_provider is set",
            req.model, canonical.provider
        ),
    )
    .with_param("model"))
}
