//! Routes a request to the provider named in a request header.
//!
//! Config: `{"header": "x-sluice-route", "allow": ["mock", "openai"]}`. The
//! header value is `provider` or `provider:model`. A provider outside
//! `allow` (when given) is rejected with 403; no header abstains.

use sluice_plugin_sdk::router::*;

struct HeaderRoute;

impl Guest for HeaderRoute {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "header-route",
            env!("CARGO_PKG_VERSION"),
            "Route to the provider named in a request header",
        );
        info.default_order = 50;
        info
    }
}

impl Routing for HeaderRoute {
    fn route(request: Request) -> Decision {
        let header = config()["header"].as_str().unwrap_or("x-sluice-route");
        let Some(value) = request.header(header) else {
            return Decision::Abstain;
        };
        let model = request.model();
        let (provider, model) = value.split_once(':').unwrap_or((&value, &model));
        if let Some(allow) = config()["allow"].as_array()
            && !allow.iter().any(|p| p.as_str() == Some(provider))
        {
            return Decision::reject(
                403,
                "provider_not_allowed",
                &format!("provider {provider:?} named by {header} is not allowed"),
            );
        }
        Decision::to(provider, model, &format!("header {header}"))
    }
}

export_router!(HeaderRoute);
