//! Test-only router that traps once its trigger header is present.

use sluice_plugin_sdk::router::*;

struct Trap;

impl Guest for Trap {
    fn describe() -> PluginInfo {
        plugin_info("hostile-trap", "0.1.0", "Traps on x-hostile: trap")
    }

    fn route(request: RequestView) -> Decision {
        if request.header("x-hostile") == Some("trap") {
            std::process::abort();
        }
        Decision::Abstain
    }
}

export_router!(Trap);
