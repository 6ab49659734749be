//! Test-only router that loops forever once its trigger header is present,
//! so the host's deadline must stop it.

use sluice_plugin_sdk::router::*;

struct Spin;

impl Guest for Spin {
    fn describe() -> PluginInfo {
        plugin_info("hostile-spin", "0.1.0", "Loops forever on x-hostile: spin")
    }

    fn route(request: RequestView) -> Decision {
        if request.header("x-hostile") == Some("spin") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Decision::Abstain
    }
}

export_router!(Spin);
