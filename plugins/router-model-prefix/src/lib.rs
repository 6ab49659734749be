//! Routes a request by the prefix of the model the client asked for.
//!
//! Config: `{"rules": [{"prefix": "claude-", "provider": "anthropic"}, ...]}`;
//! a rule may also give `"model"` to replace the requested model. The first
//! matching prefix wins; no match abstains.

use sluice_plugin_sdk::router::*;

struct ModelPrefix;

impl Guest for ModelPrefix {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "model-prefix",
            env!("CARGO_PKG_VERSION"),
            "Route by model-name prefix",
        );
        info.default_order = 100;
        info
    }

    fn route(request: RequestView) -> Decision {
        let rules = config()["rules"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for rule in rules {
            let (Some(prefix), Some(provider)) =
                (rule["prefix"].as_str(), rule["provider"].as_str())
            else {
                continue;
            };
            if request.model.starts_with(prefix) {
                let model = rule["model"].as_str().unwrap_or(&request.model);
                return Decision::to(provider, model, &format!("model prefix {prefix:?}"));
            }
        }
        Decision::Abstain
    }
}

export_router!(ModelPrefix);
