//! Deciding where a request goes: model normalization, then the router
//! plugins in policy order, then the `provider:model` name itself, then the
//! default provider. Routing knows nothing of HTTP: it returns a [`Route`]
//! (ordered candidates and who chose them) or a [`RouteError`].

mod model;

use std::sync::Arc;

use crate::api::validate_model;
use crate::plugins::{FailMode, Plugin, PluginError, RequestFacts, RouterDecision};
use crate::providers::Providers;

pub use model::{Canonical, OPT_OUT, normalize};

/// A provider and the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub provider: String,
    /// The model to name upstream (no provider prefix).
    pub model: String,
}

/// Where a request will be sent, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Best first; never empty. Later entries are fallbacks.
    pub candidates: Vec<Candidate>,
    /// Who decided: a router plugin's name, `model-prefix` or `default`.
    pub decided_by: String,
    pub reason: String,
}

impl Route {
    pub fn primary(&self) -> &Candidate {
        &self.candidates[0]
    }
}

/// Why no route was found.
#[derive(Debug)]
pub enum RouteError {
    /// A router refused the request.
    Rejected {
        plugin: String,
        status: u16,
        code: String,
        message: String,
    },
    /// A router failed and its failure stops the request (fail-closed,
    /// busy, or the input was to blame).
    PluginFailed { plugin: String, error: PluginError },
    /// A router chose something that cannot be served.
    InvalidChoice { plugin: String, detail: String },
    /// Nobody serves this model.
    NoProvider { model: String, provider: String },
}

/// Run the routing chain. `facts` builds the plugins' view of the request;
/// it is called only if a router runs.
pub async fn route(
    routers: &[Arc<Plugin>],
    providers: &Providers,
    canonical: &Canonical,
    client_model: &str,
    default_provider: Option<&str>,
    facts: impl FnOnce() -> Arc<RequestFacts>,
) -> Result<Route, RouteError> {
    if !routers.is_empty() {
        let facts = facts();
        for plugin in routers {
            let decision = match plugin.route(&facts).await {
                Ok(d) => d,
                Err(error) => {
                    if stops_request(plugin, &error) {
                        return Err(RouteError::PluginFailed {
                            plugin: plugin.name().to_owned(),
                            error,
                        });
                    }
                    continue;
                }
            };
            match decision {
                RouterDecision::Abstain => {}
                RouterDecision::Route { candidates, reason } => {
                    let candidates = candidates
                        .into_iter()
                        .map(|(provider, model)| check_choice(plugin, providers, provider, model))
                        .collect::<Result<Vec<_>, _>>()?;
                    return Ok(Route {
                        candidates,
                        decided_by: plugin.name().to_owned(),
                        reason,
                    });
                }
                RouterDecision::Reject {
                    status,
                    code,
                    message,
                } => {
                    return Err(RouteError::Rejected {
                        plugin: plugin.name().to_owned(),
                        status,
                        code,
                        message,
                    });
                }
            }
        }
    }
    let candidate = |provider: &str| Candidate {
        provider: provider.to_owned(),
        model: canonical.model.clone(),
    };
    if providers.get(&canonical.provider).is_some() {
        return Ok(Route {
            candidates: vec![candidate(&canonical.provider)],
            decided_by: "model-prefix".into(),
            reason: format!("model names provider {}", canonical.provider),
        });
    }
    if let Some(default) = default_provider {
        return Ok(Route {
            candidates: vec![candidate(default)],
            decided_by: "default".into(),
            reason: "routing.default_provider".into(),
        });
    }
    Err(RouteError::NoProvider {
        model: client_model.to_owned(),
        provider: canonical.provider.clone(),
    })
}

/// Whether a router's failure ends the request instead of skipping it:
/// fail-closed bindings, and failures that are nobody's fault but load or
/// the input (answered 503 or 413 whatever the mode).
fn stops_request(plugin: &Plugin, error: &PluginError) -> bool {
    matches!(error, PluginError::Busy | PluginError::InputTooLarge { .. })
        || plugin.binding.fail_mode == FailMode::Closed
}

fn check_choice(
    plugin: &Plugin,
    providers: &Providers,
    provider: String,
    model: String,
) -> Result<Candidate, RouteError> {
    let invalid = |detail: String| RouteError::InvalidChoice {
        plugin: plugin.name().to_owned(),
        detail,
    };
    if providers.get(&provider).is_none() {
        return Err(invalid(format!(
            "chose provider {provider:?}, which is not configured"
        )));
    }
    if validate_model(&model).is_err() {
        return Err(invalid(format!("chose an invalid model name {model:?}")));
    }
    Ok(Candidate { provider, model })
}
