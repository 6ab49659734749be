//! Routes a request by the prefix of the model the client asked for.
//!
//! Config: `{"rules": [{"prefix": "claude-", "provider": "anthropic"}, ...]}`;
//! a rule may also give `"model"` to replace the requested model, and
//! `"fallbacks": [{"provider": "...", "model": "..."}]` to try next when the
//! first choice fails. The first matching prefix wins; no match abstains.

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
}

impl Routing for ModelPrefix {
    fn route(request: Request) -> Decision {
        let model = request.model();
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
            if model.starts_with(prefix) {
                let chosen = rule["model"].as_str().unwrap_or(&model);
                let mut candidates = vec![(provider, chosen)];
                for f in rule["fallbacks"].as_array().into_iter().flatten() {
                    if let Some(p) = f["provider"].as_str() {
                        candidates.push((p, f["model"].as_str().unwrap_or(chosen)));
                    }
                }
                return Decision::to_any(&candidates, &format!("model prefix {prefix:?}"));
            }
        }
        Decision::Abstain
    }
}

export_router!(ModelPrefix);
