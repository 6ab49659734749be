//! Running the router plugins of a snapshot over one request.

use std::sync::Arc;

use super::PluginError;
use super::bindings::router::sluice::plugin::routing::{Decision, RequestView};
use super::plugin::{Exports, Plugin};
use super::policy::FailMode;

pub use super::bindings::router::sluice::plugin::routing::RequestView as RouterRequest;
pub use super::bindings::router::sluice::plugin::types::Header as RouterHeader;

/// What the routers decided.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterDecision {
    Route {
        provider: String,
        model: String,
        reason: String,
        plugin: String,
    },
    Reject {
        status: u16,
        code: String,
        message: String,
        plugin: String,
    },
}

/// The result of the router chain: a decision, no opinion, or a failure of a
/// fail-closed plugin that must refuse the request.
pub type RouteOutcome = Result<Option<RouterDecision>, (String, PluginError)>;

impl Plugin {
    /// Ask this router about `request`.
    pub fn route(&self, request: &RequestView) -> Result<Decision, PluginError> {
        self.invoke(|w| match &w.exports {
            Exports::Router(r) => r.call_route(&mut w.store, request),
            _ => unreachable!("only router plugins are asked to route"),
        })
    }
}

/// Run `routers` in order; the first that does not abstain decides. A failing
/// plugin abstains when fail-open and ends the chain when fail-closed.
pub fn run_routers(routers: &[Arc<Plugin>], request: &RequestView) -> RouteOutcome {
    for plugin in routers {
        match plugin.route(request) {
            Ok(Decision::Abstain) => {}
            Ok(Decision::Route(t)) => {
                return Ok(Some(RouterDecision::Route {
                    provider: t.provider,
                    model: t.model,
                    reason: t.reason,
                    plugin: plugin.name().to_owned(),
                }));
            }
            Ok(Decision::Reject(r)) => {
                return Ok(Some(RouterDecision::Reject {
                    status: r.status,
                    code: r.code,
                    message: r.message,
                    plugin: plugin.name().to_owned(),
                }));
            }
            Err(e) => match plugin.binding.fail_mode {
                FailMode::Open => {}
                FailMode::Closed => return Err((plugin.name().to_owned(), e)),
            },
        }
    }
    Ok(None)
}
