//! The WebAssembly plugin host.
//!
//! Every policy decision point is a component exporting one of the worlds in
//! `wit/` (`sluice:plugin@0.2.0`). [`PluginEngine`] owns the one wasmtime
//! engine; [`load_plugins`] turns a directory of `.wasm` files plus the
//! policy bindings into a [`PluginSet`]; each [`Plugin`] runs calls
//! asynchronously on warm pooled instances under a per-call budget, behind a
//! circuit breaker. The host knows nothing of snapshots or serving.

/// One call on a pooled (or fresh) instance of `$plugin`, budgeted for
/// `$input` bytes: `$call` is the guest call, written against the instance
/// `$w`. Evaluates to the settled result.
macro_rules! one_call {
    ($plugin:expr, $input:expr, |$w:ident| $call:expr) => {{
        let mut call = $plugin.begin($input).await?;
        let budget = call.budget;
        let $w = call.warm();
        let r = $crate::plugins::limits::metered(&$w.clock, &budget, $call).await;
        call.settle(r)
    }};
}

/// Construct a guest resource for one stream on an instance of `$plugin`
/// (an `Arc<Plugin>`) and hold both (`Held`): `$call` is the constructor
/// call, written against the instance `$w`.
macro_rules! open_held {
    ($plugin:expr, |$w:ident| $call:expr) => {{
        let mut call = $plugin.begin(0).await?;
        let budget = call.budget;
        let $w = call.warm();
        let r = $crate::plugins::limits::metered(&$w.clock, &budget, $call).await;
        let (resource, warm) = call.settle_keep(r)?;
        $crate::plugins::plugin::Held {
            plugin: $plugin.clone(),
            warm: Some(warm),
            resource,
        }
    }};
}

/// One more call on the instance a stream holds in `$held` (a `Held`):
/// `$call` is written against the instance `$w` and the guest resource
/// `$res`. A failure drops the instance.
macro_rules! held_call {
    ($held:expr, $input:expr, |$w:ident, $res:ident| $call:expr) => {{
        let held = &mut $held;
        let $res = held.resource;
        let Some($w) = held.warm.as_mut() else {
            return Err($crate::plugins::PluginError::Trap(
                "this stream's plugin failed earlier".into(),
            ));
        };
        let call = held.plugin.step($w, $input);
        let r = $crate::plugins::limits::metered(&$w.clock, &call.budget, $call).await;
        let r = call.settle_step(r);
        if r.is_err() {
            held.warm = None;
        }
        r
    }};
}

mod abi;
pub mod bindings;
mod context;
mod engine;
mod epoch;
pub mod evaluator;
mod facts;
mod health;
mod limits;
mod loader;
mod output;
mod plugin;
pub mod policy;
pub mod redactor;
mod router;
mod state;
pub mod translator;

use std::future::Future;

pub use abi::ABI;
pub use bindings::{ApiShape, PluginKind};
pub use engine::{DEFAULT_MAX_INSTANCES, PluginEngine};
pub use facts::{Caller, ExchangeFacts, RequestFacts, Tier, Tokens, is_credential};
pub use health::HealthReport;
pub use limits::BLAME_INPUT_BYTES;
pub use loader::{FileStatus, PluginSet, describe_file, load_plugins};
pub use output::{escape_capped, escape_line};
pub use plugin::{Plugin, PluginMeta};
pub use policy::{Binding, FailMode, Policies, RouterSlot};
pub use router::RouterDecision;

/// Why a plugin could not be loaded or did not answer. The `Display` form
/// is for logs and `/admin/plugins`; clients get [`PluginError::public`].
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
    /// The breaker is open: the plugin failed for most callers recently.
    #[error("disabled by its breaker after repeated failures; next probe in {retry_after} s")]
    Disabled { retry_after: u64 },
    /// Every instance is in use (streams hold them): back-pressure, never
    /// the plugin's fault.
    #[error("all plugin instances are busy")]
    Busy,
    /// The call ran out of memory or time on an input large enough to be
    /// blamed for it; never the plugin's fault.
    #[error("input of {input_bytes} bytes is too large for it: {detail}")]
    InputTooLarge { input_bytes: usize, detail: String },
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
            Self::Disabled { .. } => "disabled",
            Self::Busy => "busy",
            Self::InputTooLarge { .. } => "rejected_input",
            _ => "error",
        }
    }

    /// What a client may be told: no guest backtrace, path or address.
    pub fn public(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "did not answer in time",
            Self::Disabled { .. } => "is temporarily disabled after repeated failures",
            Self::Busy => "is at capacity",
            Self::InputTooLarge { .. } => "cannot process a request this large",
            Self::Engine(_) | Self::Invalid(_) | Self::Instantiate(_) | Self::Trap(_) => "failed",
        }
    }
}

/// Run `f` to completion from synchronous code (loading, validation, CLI):
/// on the current runtime when called from one of its blocking threads,
/// else on a small runtime of its own. Never call it on a worker thread.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(f),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds")
            .block_on(f),
    }
}

impl From<ApiShape> for crate::api::Shape {
    fn from(s: ApiShape) -> Self {
        match s {
            ApiShape::Openai => Self::OpenAi,
            ApiShape::Anthropic => Self::Anthropic,
        }
    }
}

impl From<crate::api::Shape> for ApiShape {
    fn from(s: crate::api::Shape) -> Self {
        match s {
            crate::api::Shape::OpenAi => Self::Openai,
            crate::api::Shape::Anthropic => Self::Anthropic,
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
