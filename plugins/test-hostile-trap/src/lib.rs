//! Test-only router that traps when triggered (`x-hostile: trap`, or on
//! every call with config `{"always": true}`).

use sluice_plugin_sdk::router::*;

struct Trap;

impl Guest for Trap {
    fn describe() -> PluginInfo {
        plugin_info("hostile-trap", "0.1.0", "Traps on x-hostile: trap")
    }
}

impl Routing for Trap {
    fn route(request: Request) -> Decision {
        if config()["always"] == true || request.header("x-hostile").as_deref() == Some("trap") {
            std::process::abort();
        }
        Decision::Abstain
    }
}

export_router!(Trap);
