//! The WIT `redactor` world: adapts its types to [`crate::scan`].

use crate::scan::{self, Options};
use sluice_plugin_sdk::redactor::*;

const CONFIG_SCHEMA: &str = r#"{"type":"object","properties":{"emails":{"type":"boolean","default":true},"api_keys":{"type":"boolean","default":true}}}"#;

struct Secrets;

impl Guest for Secrets {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "secret-redactor",
            env!("CARGO_PKG_VERSION"),
            "Redact API keys and e-mail addresses in bodies and streams",
        );
        info.default_order = 100;
        info.config_schema = Some(CONFIG_SCHEMA.into());
        info
    }
}

impl Redaction for Secrets {
    type StreamRedactor = Stream;

    fn redact_request(_ctx: RedactContext, body: String) -> Result<RedactedRequest, Rejection> {
        Ok(RedactedRequest {
            body: scan::redact(&body, options()),
            state: None,
        })
    }

    fn redact_response(
        _ctx: RedactContext,
        _state: Option<String>,
        body: String,
    ) -> Result<Option<String>, Rejection> {
        Ok(scan::redact(&body, options()))
    }
}

/// Redacts each event's `data` on its own and holds nothing back.
struct Stream;

impl GuestStreamRedactor for Stream {
    fn new(_ctx: RedactContext, _state: Option<String>) -> Self {
        Stream
    }

    fn push(&self, mut event: SseEvent) -> Result<Vec<SseEvent>, Rejection> {
        if let Some(data) = scan::redact(&event.data, options()) {
            event.data = data;
        }
        Ok(vec![event])
    }

    fn finish(&self) -> Result<Vec<SseEvent>, Rejection> {
        Ok(Vec::new())
    }
}

fn options() -> Options {
    Options::from_config(config())
}

export_redactor!(Secrets);
