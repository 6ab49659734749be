//! Test-only router, built twice: without features it is version 1.0.0, with
//! `--features v2` version 2.0.0. Each version routes to the model `v1` or
//! `v2` on provider `mock`, so a client can tell which one served it.

use sluice_plugin_sdk::router::*;

const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.0"
} else {
    "1.0.0"
};
const MODEL: &str = if cfg!(feature = "v2") { "v2" } else { "v1" };

struct Versioned;

impl Guest for Versioned {
    fn describe() -> PluginInfo {
        plugin_info(
            "versioned",
            VERSION,
            "Routes to mock:v1 or mock:v2 by build",
        )
    }
}

impl Routing for Versioned {
    fn route(_request: Request) -> Decision {
        Decision::to("mock", MODEL, VERSION)
    }
}

export_router!(Versioned);
