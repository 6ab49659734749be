//! Test-only router that panics with a message when triggered
//! (`x-hostile: panic`): Rust's panic hook writes the message to stderr
//! (which the host logs) and the guest then traps.

use sluice_plugin_sdk::router::*;

struct Panic;

impl Guest for Panic {
    fn describe() -> PluginInfo {
        plugin_info("hostile-panic", "0.1.0", "Panics on x-hostile: panic")
    }
}

impl Routing for Panic {
    fn route(request: Request) -> Decision {
        if request.header("x-hostile").as_deref() == Some("panic") {
            panic!(
                "hostile-panic was told to panic by request {}",
                request.request_id()
            );
        }
        Decision::Abstain
    }
}

export_router!(Panic);
