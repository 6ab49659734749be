//! Host-side bindings of the WIT worlds in `wit/`.
//!
//! The router world generates the shared `types` and `host` interfaces; the
//! other worlds reuse them so the host implements `host` once.

pub mod router {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "router",
    });
}

pub mod translator {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "translator",
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
        with: {
            "sluice:plugin/types": crate::plugins::bindings::router::sluice::plugin::types,
            "sluice:plugin/host": crate::plugins::bindings::router::sluice::plugin::host,
        },
    });
}

pub use router::sluice::plugin::host;
pub use router::sluice::plugin::types::{ApiShape, PluginInfo, PluginKind, SseEvent};
