//! Calling router plugins.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::PluginError;
use super::bindings::RequestHandle;
use super::bindings::router::exports::sluice::plugin::routing::Decision;
use super::facts::RequestFacts;
use super::limits::metered;
use super::plugin::{Exports, Plugin};

/// What a router decided, in host types.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterDecision {
    Abstain,
    Route {
        /// (provider, model), best first; never empty.
        candidates: Vec<(String, String)>,
        reason: String,
    },
    Reject {
        status: u16,
        code: String,
        message: String,
    },
}

impl Plugin {
    /// Ask this router about one request.
    pub async fn route(&self, facts: &Arc<RequestFacts>) -> Result<RouterDecision, PluginError> {
        // Routers get the request through getters; their budget does not
        // grow with the body (`body()` copies it into the guest's own cap).
        let mut call = self.begin(0).await?;
        let budget = call.budget;
        let w = call.warm();
        let handle = match w.store.data_mut().lend_request(facts) {
            Ok(h) => h,
            Err(e) => return call.settle(Err(e)),
        };
        let rep = handle.rep();
        let Exports::Router(router) = &w.exports else {
            unreachable!("only router plugins are asked to route")
        };
        let routing = router.sluice_plugin_routing();
        let r = metered(&w.clock, &budget, routing.call_route(&mut w.store, handle)).await;
        // A guest that kept its handle past the call loses it here.
        let _ = w
            .store
            .data_mut()
            .table
            .delete(Resource::<RequestHandle>::new_own(rep));
        let decision = call.settle(r)?;
        Ok(match decision {
            Decision::Abstain => RouterDecision::Abstain,
            Decision::Route(plan) if plan.candidates.is_empty() => {
                return Err(PluginError::Trap(
                    "route() returned a route with no candidates".into(),
                ));
            }
            Decision::Route(plan) => RouterDecision::Route {
                candidates: plan
                    .candidates
                    .into_iter()
                    .map(|t| (t.provider, t.model))
                    .collect(),
                reason: plan.reason,
            },
            Decision::Reject(r) => RouterDecision::Reject {
                status: r.status,
                code: r.code,
                message: r.message,
            },
        })
    }
}
