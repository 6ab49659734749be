//! Host-side bindings of the WIT worlds in `wit/`.
//!
//! Every world's exports are called asynchronously (see `engine`). The
//! router world generates the shared `types`, `host` and `context`
//! interfaces; the other worlds reuse them, so the host implements each
//! once. `context` resources are the host's own types (`context.rs`).

pub mod router {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "router",
        exports: { default: async },
        with: {
            "sluice:plugin/context.request": crate::plugins::context::RequestHandle,
            "sluice:plugin/context.exchange": crate::plugins::context::ExchangeHandle,
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
