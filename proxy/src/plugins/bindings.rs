//! Host-side bindings of the WIT worlds in `wit/`.
//!
//! Every world's exports are called asynchronously (see `engine`). The
//! router world generates the shared `types`, `host` and `context`
//! interfaces; the other worlds reuse them, so the host implements each
//! once. `context` resources are the host's own types (`context.rs`).

/// The host side of a `request` handle: the facts one call may read.
pub struct RequestHandle(pub std::sync::Arc<crate::plugins::facts::RequestFacts>);
/// The host side of an `exchange` handle.
pub struct ExchangeHandle(pub std::sync::Arc<crate::plugins::facts::ExchangeFacts>);

pub mod router {
    pub use super::{ExchangeHandle, RequestHandle};

    wasmtime::component::bindgen!({
        path: "../wit",
        world: "router",
        exports: { default: async },
        with: {
            "sluice:plugin/context.request": RequestHandle,
            "sluice:plugin/context.exchange": ExchangeHandle,
        },
    });
}

pub mod translator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "translator",
        exports: { default: async },
        with: {
            "sluice:plugin/types": crate::plugins::bindings::router::sluice::plugin::types,
            "sluice:plugin/host": crate::plugins::bindings::router::sluice::plugin::host,
        },
    });
}

pub mod redactor {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "redactor",
        exports: { default: async },
        with: {
            "sluice:plugin/types": crate::plugins::bindings::router::sluice::plugin::types,
            "sluice:plugin/host": crate::plugins::bindings::router::sluice::plugin::host,
        },
    });
}

pub mod evaluator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "evaluator",
        exports: { default: async },
        with: {
            "sluice:plugin/types": crate::plugins::bindings::router::sluice::plugin::types,
            "sluice:plugin/host": crate::plugins::bindings::router::sluice::plugin::host,
            "sluice:plugin/context": crate::plugins::bindings::router::sluice::plugin::context,
        },
    });
}

pub use router::sluice::plugin::types::{
    ApiShape, CustomerTier, PluginInfo, PluginKind, Rejection, SseEvent, Target, Usage,
};
pub use router::sluice::plugin::{context, host};

#[cfg(test)]
impl SseEvent {
    /// An event for unit tests.
    pub fn new(event: Option<&str>, data: &str) -> Self {
        Self {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }
}
