//! Test-only router that loops forever when triggered (`x-hostile: spin`,
//! or on every call with config `{"always": true}`), so the host's
//! deadline must stop it.

use sluice_plugin_sdk::router::*;

struct Spin;

impl Guest for Spin {
    fn describe() -> PluginInfo {
        plugin_info("hostile-spin", "0.1.0", "Loops forever on x-hostile: spin")
    }
}

impl Routing for Spin {
    fn route(request: Request) -> Decision {
        if config()["always"] == true || request.header("x-hostile").as_deref() == Some("spin") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Decision::Abstain
    }
}

export_router!(Spin);
