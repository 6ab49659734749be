//! Test-only router that writes without restraint on every call: one 1 MB
//! line with control characters to stderr, a log line that tries to forge
//! an entry, and a few hundred lines to stdout. The host must log
//! them capped, escaped and rate-limited, and serve the request.

use std::io::Write;

use sluice_plugin_sdk::router::*;

struct Print;

impl Guest for Print {
    fn describe() -> PluginInfo {
        plugin_info(
            "hostile-print",
            "0.1.0",
            "Floods stdout and stderr on every call",
        )
    }
}

impl Routing for Print {
    fn route(request: Request) -> Decision {
        let id = request.request_id();
        let mut huge = String::from("\u{1b}[31mred\r\nFAKE level=ERROR forged=1\n");
        huge.push_str(&"x".repeat(1 << 20));
        let _ = std::io::stderr().write_all(huge.as_bytes());
        log(LogLevel::Info, "one\nINFO forged log entry");
        for i in 0..300 {
            println!("chatty line {i} for {id}");
        }
        Decision::Abstain
    }
}

export_router!(Print);
