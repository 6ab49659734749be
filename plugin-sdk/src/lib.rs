//! Write Sluice plugins in Rust.
//!
//! A plugin is a WASI 0.2 component that exports one of the worlds in
//! `wit/`. Enable the feature named after the world (`router`, `translator`,
//! `redactor`, `evaluator`), implement its `Guest` trait and export it:
//!
//! ```ignore
//! use sluice_plugin_sdk::router::*;
//!
//! struct Pin;
//!
//! impl Guest for Pin {
//!     fn describe() -> PluginInfo {
//!         plugin_info("pin-to-mock", "0.1.0", "Send every request to the mock")
//!     }
//! }
//!
//! impl Routing for Pin {
//!     fn route(request: Request) -> Decision {
//!         Decision::to("mock", &request.model(), "pinned")
//!     }
//! }
//!
//! export_router!(Pin);
//! ```
//!
//! The request is a resource read through getters (`model()`,
//! `header(name)`, `tool_names()`, `key_id()`, …): a plugin pays only for
//! what it reads.
//!
//! Build with `cargo build --release --target wasm32-wasip2` and drop the
//! `.wasm` into the proxy's plugins directory.

extern crate self as sluice_plugin_sdk;

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// Helpers every world gets: logging through the host and the binding's
/// config. Each world's bindings carry their own copy of the shared WIT
/// interfaces, so the helpers are stamped into each world module.
macro_rules! world_helpers {
    ($kind:ident) => {
        pub use self::sluice::plugin::host::{self, LogLevel};
        pub use self::sluice::plugin::types::PluginKind;

        /// A `plugin-info` with this world's kind, order 0 and no
        /// capabilities; adjust the fields that matter.
        pub fn plugin_info(name: &str, version: &str, description: &str) -> PluginInfo {
            PluginInfo {
                name: name.into(),
                version: version.into(),
                kind: PluginKind::$kind,
                description: description.into(),
                default_order: 0,
                capabilities: Vec::new(),
                config_schema: None,
            }
        }

        /// Log a line through the proxy, tagged with this plugin's name.
        pub fn log(level: LogLevel, message: &str) {
            host::log(level, message);
        }

        /// The binding's config, parsed once per instance (the host keeps it
        /// constant for an instance's life). Invalid JSON reads as `null`.
        pub fn config() -> &'static serde_json::Value {
            static CONFIG: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
            CONFIG.get_or_init(|| serde_json::from_str(&host::config()).unwrap_or_default())
        }
    };
}

/// The `router` world: routing slots and predicates.
#[cfg(feature = "router")]
pub mod router {
    wit_bindgen::generate!({
        path: "../wit",
        world: "router",
        pub_export_macro: true,
        export_macro_name: "__export_router_raw",
        default_bindings_module: "sluice_plugin_sdk::router",
        runtime_path: "sluice_plugin_sdk::__private::wit_bindgen::rt",
    });

    pub use self::exports::sluice::plugin::routing::{Decision, Guest as Routing, RoutePlan};
    pub use self::sluice::plugin::context::Request;
    pub use self::sluice::plugin::types::{ApiShape, CustomerTier, Rejection, Target};
    world_helpers!(Router);
    pub use crate::export_router;

    impl Decision {
        /// Route to `provider`/`model`, giving `reason` for traces.
        pub fn to(provider: &str, model: &str, reason: &str) -> Self {
            Self::to_any(&[(provider, model)], reason)
        }

        /// Route to the first of `candidates` that answers; the rest are
        /// fallbacks, tried in order.
        pub fn to_any(candidates: &[(&str, &str)], reason: &str) -> Self {
            Decision::Route(RoutePlan {
                candidates: candidates
                    .iter()
                    .map(|(provider, model)| Target {
                        provider: (*provider).into(),
                        model: (*model).into(),
                    })
                    .collect(),
                reason: reason.into(),
            })
        }

        /// Refuse with an HTTP status, a machine code and a message.
        pub fn reject(status: u16, code: &str, message: &str) -> Self {
            Decision::Reject(Rejection {
                status,
                code: code.into(),
                message: message.into(),
            })
        }
    }
}

/// The `translator` world: API-shape translation, streams included.
#[cfg(feature = "translator")]
pub mod translator {
    wit_bindgen::generate!({
        path: "../wit",
        world: "translator",
        pub_export_macro: true,
        export_macro_name: "__export_translator_raw",
        default_bindings_module: "sluice_plugin_sdk::translator",
        runtime_path: "sluice_plugin_sdk::__private::wit_bindgen::rt",
    });

    pub use self::exports::sluice::plugin::translation::{
        Guest as Translation, GuestStreamTranslator, StreamTranslator, TranslateContext,
        TranslateError,
    };
    pub use self::sluice::plugin::types::{ApiShape, SseEvent};
    world_helpers!(Translator);
    pub use crate::export_translator;
}

/// The `redactor` world: request, response and stream rewriting.
#[cfg(feature = "redactor")]
pub mod redactor {
    wit_bindgen::generate!({
        path: "../wit",
        world: "redactor",
        pub_export_macro: true,
        export_macro_name: "__export_redactor_raw",
        default_bindings_module: "sluice_plugin_sdk::redactor",
        runtime_path: "sluice_plugin_sdk::__private::wit_bindgen::rt",
    });

    pub use self::exports::sluice::plugin::redaction::{
        Guest as Redaction, GuestStreamRedactor, RedactContext, RedactedRequest, StreamRedactor,
    };
    pub use self::sluice::plugin::types::{ApiShape, Rejection, SseEvent};
    world_helpers!(Redactor);
    pub use crate::export_redactor;
}

/// The `evaluator` world: scoring finished exchanges, off the request path.
#[cfg(feature = "evaluator")]
pub mod evaluator {
    wit_bindgen::generate!({
        path: "../wit",
        world: "evaluator",
        pub_export_macro: true,
        export_macro_name: "__export_evaluator_raw",
        default_bindings_module: "sluice_plugin_sdk::evaluator",
        runtime_path: "sluice_plugin_sdk::__private::wit_bindgen::rt",
    });

    pub use self::exports::sluice::plugin::evaluation::{Guest as Evaluation, Signal, Verdict};
    pub use self::sluice::plugin::context::Exchange;
    pub use self::sluice::plugin::types::{ApiShape, Usage};
    world_helpers!(Evaluator);
    pub use crate::export_evaluator;
}

/// Export a type implementing the `router` world (`Guest` and `Routing`).
/// Expands to nothing off WebAssembly, so the crate's native unit tests
/// link: interface export names contain `:`, which native linkers reject.
#[cfg(feature = "router")]
#[macro_export]
macro_rules! export_router {
    ($t:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::router::__export_router_raw!($t);
        // Natively the type is exported nowhere; this keeps it (and what
        // its impls use) from reading as dead code in unit-test builds.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = $t;
        };
    };
}

/// Export a type implementing the `translator` world (see `export_router!`).
#[cfg(feature = "translator")]
#[macro_export]
macro_rules! export_translator {
    ($t:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::translator::__export_translator_raw!($t);
        // Natively the type is exported nowhere; this keeps it (and what
        // its impls use) from reading as dead code in unit-test builds.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = $t;
        };
    };
}

/// Export a type implementing the `redactor` world (see `export_router!`).
#[cfg(feature = "redactor")]
#[macro_export]
macro_rules! export_redactor {
    ($t:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::redactor::__export_redactor_raw!($t);
        // Natively the type is exported nowhere; this keeps it (and what
        // its impls use) from reading as dead code in unit-test builds.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = $t;
        };
    };
}

/// Export a type implementing the `evaluator` world (see `export_router!`).
#[cfg(feature = "evaluator")]
#[macro_export]
macro_rules! export_evaluator {
    ($t:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::evaluator::__export_evaluator_raw!($t);
        // Natively the type is exported nowhere; this keeps it (and what
        // its impls use) from reading as dead code in unit-test builds.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = || {
            let _ = $t;
        };
    };
}
