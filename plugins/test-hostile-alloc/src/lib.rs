//! Test-only router that allocates without bound when triggered
//! (`x-hostile: alloc`), so the host's memory cap must stop it.

use sluice_plugin_sdk::router::*;

struct Alloc;

impl Guest for Alloc {
    fn describe() -> PluginInfo {
        plugin_info(
            "hostile-alloc",
            "0.1.0",
            "Allocates forever on x-hostile: alloc",
        )
    }
}

impl Routing for Alloc {
    fn route(request: Request) -> Decision {
        if request.header("x-hostile").as_deref() == Some("alloc") {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Decision::Abstain
    }
}

export_router!(Alloc);
