//! The WIT `redactor` world: adapts its types to the crate's modules.

use crate::config::{Config, Misconfigured, SCHEMA};
use crate::request::{self, Refusal};
use crate::restore;
use crate::stream::{self, Restorer, Shape};
use crate::vault::Vault;
use sluice_plugin_sdk::redactor::*;
use std::cell::RefCell;
use std::sync::OnceLock;

struct Pii;

impl Guest for Pii {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "pii-redactor",
            env!("CARGO_PKG_VERSION"),
            "Pseudonymize, mask or block PII and secrets in requests; restore them in answers",
        );
        info.default_order = 100;
        info.config_schema = Some(SCHEMA.into());
        info
    }
}

impl Redaction for Pii {
    type StreamRedactor = Stream;

    fn redact_request(_ctx: RedactContext, body: String) -> Result<RedactedRequest, Rejection> {
        let config = settings()?;
        let r = request::redact(config, &body).map_err(rejection)?;
        Ok(RedactedRequest {
            body: r.body,
            state: r.state,
        })
    }

    fn redact_response(
        _ctx: RedactContext,
        state: Option<String>,
        body: String,
    ) -> Result<Option<String>, Rejection> {
        settings()?;
        Ok(vault(state).and_then(|v| restore::response(&body, &v)))
    }
}

/// A stream with no map passes through untouched; a misconfigured
/// instance refuses every event (the WIT constructor cannot fail).
struct Stream(Result<Option<RefCell<Restorer>>, Rejection>);

impl GuestStreamRedactor for Stream {
    fn new(ctx: RedactContext, state: Option<String>) -> Self {
        let shape = match ctx.shape {
            ApiShape::Openai => Shape::OpenAi,
            ApiShape::Anthropic => Shape::Anthropic,
        };
        Stream(settings().map(|_| vault(state).map(|v| RefCell::new(Restorer::new(shape, v)))))
    }

    fn push(&self, event: SseEvent) -> Result<Vec<SseEvent>, Rejection> {
        let Some(restorer) = self.0.as_ref().map_err(Clone::clone)? else {
            return Ok(vec![event]);
        };
        let event = stream::Event {
            event: event.event,
            data: event.data,
        };
        Ok(wit_events(restorer.borrow_mut().push(event)))
    }

    fn finish(&self) -> Result<Vec<SseEvent>, Rejection> {
        match self.0.as_ref().map_err(Clone::clone)? {
            Some(restorer) => Ok(wit_events(restorer.borrow_mut().finish())),
            None => Ok(Vec::new()),
        }
    }
}

/// The binding's config, parsed once per instance.
fn settings() -> Result<&'static Config, Rejection> {
    static SETTINGS: OnceLock<Result<Config, Misconfigured>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| Config::from_json(config()))
        .as_ref()
        .map_err(|Misconfigured(why)| Rejection {
            status: 500,
            code: "redactor_misconfigured".into(),
            message: why.clone(),
        })
}

/// The map of this exchange. A state this plugin did not write (another
/// version's, across a reload) restores nothing: the client then sees
/// placeholders, never anyone's originals.
fn vault(state: Option<String>) -> Option<Vault> {
    match Vault::from_state(&state?) {
        Ok(v) => Some(v),
        Err(e) => {
            log(
                LogLevel::Warn,
                &format!("unreadable redaction state: {}", e.0),
            );
            None
        }
    }
}

fn rejection(r: Refusal) -> Rejection {
    Rejection {
        status: r.status,
        code: r.code,
        message: r.message,
    }
}

fn wit_events(events: Vec<stream::Event>) -> Vec<SseEvent> {
    events
        .into_iter()
        .map(|e| SseEvent {
            event: e.event,
            data: e.data,
        })
        .collect()
}

export_redactor!(Pii);
