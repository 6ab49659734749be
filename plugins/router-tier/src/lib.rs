//! The tier router in Rust (plugin-sdk; `make plugins` builds it for
//! wasm32-wasip2). The same decision is written in Python
//! (plugins/router-tier-python) and JavaScript (plugins/router-tier-js):
//!
//! 1. a trial-tier caller goes to `small`;
//! 2. a prompt of `long_prompt_tokens` or more goes to `large`;
//! 3. anything else abstains.
//!
//! Config (defaults shown): `{"small": "mock:gpt-4o-mini", "large":
//! "mock:claude-sonnet-4-6", "long_prompt_tokens": 2000}`. A malformed value
//! falls back to its default: a router must not fail on its config.

use sluice_plugin_sdk::router::*;

struct Tier;

impl Guest for Tier {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "tier-router-rust",
            env!("CARGO_PKG_VERSION"),
            "Trial tier to a small model, long prompts to a large one",
        );
        info.default_order = 60;
        info
    }
}

/// `provider:model` from the config, or the default.
fn target(key: &str, default: &'static str) -> (String, String) {
    let text = config()[key].as_str().unwrap_or(default);
    let (p, m) = text
        .split_once(':')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
        .unwrap_or_else(|| {
            default
                .split_once(':')
                .expect("defaults are provider:model")
        });
    (p.to_owned(), m.to_owned())
}

impl Routing for Tier {
    fn route(request: Request) -> Decision {
        if request.tier() == Some(CustomerTier::Trial) {
            let (p, m) = target("small", "mock:gpt-4o-mini");
            return Decision::to(&p, &m, "trial tier");
        }
        let long = config()["long_prompt_tokens"].as_u64().unwrap_or(2000);
        let tokens = request.estimated_input_tokens();
        if tokens >= long {
            let (p, m) = target("large", "mock:claude-sonnet-4-6");
            return Decision::to(&p, &m, &format!("long prompt: {tokens} tokens"));
        }
        Decision::Abstain
    }
}

export_router!(Tier);
