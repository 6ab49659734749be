//! The WebAssembly plugin host.
//!
//! Every policy decision point is a component exporting one of the worlds in
//! `wit/`. [`PluginEngine`] owns the one wasmtime engine; [`load_plugins`]
//! turns a directory of `.wasm` files plus the policy bindings into a
//! [`PluginSet`] that a snapshot holds; [`Plugin::invoke`] runs one call on a
//! warm pooled instance under the binding's deadline and memory cap.

pub mod bindings;
mod engine;
mod health;
mod loader;
mod plugin;
pub mod policy;
mod router;
mod state;
pub mod translator;
pub mod watcher;

pub use bindings::{ApiShape, PluginKind};
pub use engine::PluginEngine;
pub use loader::{FileStatus, PluginSet, describe_file, load_plugins};
pub use plugin::{Plugin, PluginMeta};
pub use policy::{Binding, FailMode, Policies};
pub use router::{RouteOutcome, RouterDecision, RouterHeader, RouterRequest, run_routers};

/// Why a plugin could not be loaded or did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    #[error("plugin engine: {0}")]
    Engine(String),
    #[error("not a valid Sluice plugin component: {0}")]
    Invalid(String),
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    #[error("exceeded its {0} ms deadline")]
    Timeout(u64),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("disabled after repeated failures")]
    Disabled,
}

impl PluginError {
    fn engine(e: impl std::fmt::Display) -> Self {
        Self::Engine(format!("{e:#}"))
    }

    fn invalid(e: impl std::fmt::Display) -> Self {
        Self::Invalid(format!("{e:#}"))
    }

    /// Label for `sluice_plugin_calls_total{result}`.
    pub fn result_label(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Disabled => "disabled",
            _ => "error",
        }
    }
}

impl From<ApiShape> for crate::intake::Shape {
    fn from(s: ApiShape) -> Self {
        match s {
            ApiShape::Openai => Self::OpenAi,
            ApiShape::Anthropic => Self::Anthropic,
        }
    }
}

impl From<crate::intake::Shape> for ApiShape {
    fn from(s: crate::intake::Shape) -> Self {
        match s {
            crate::intake::Shape::OpenAi => Self::Openai,
            crate::intake::Shape::Anthropic => Self::Anthropic,
        }
    }
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Router => "router",
            Self::Redactor => "redactor",
            Self::Translator => "translator",
            Self::Evaluator => "evaluator",
        }
    }
}
