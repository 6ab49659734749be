//! The WIT `translator` world: adapts its types to [`crate::translate`].

use crate::translate::{self, Context, Shape};
use crate::{error, stream};
use sluice_plugin_sdk::translator::*;
use std::cell::RefCell;

struct OpenAiAnthropic;

impl Guest for OpenAiAnthropic {
    fn describe() -> PluginInfo {
        let mut info = plugin_info(
            "openai-anthropic",
            env!("CARGO_PKG_VERSION"),
            "Translate between OpenAI Chat Completions and Anthropic Messages",
        );
        info.default_order = 100;
        info.capabilities = vec!["openai->anthropic".into(), "anthropic->openai".into()];
        info
    }
}

impl Translation for OpenAiAnthropic {
    type StreamTranslator = Stream;

    fn translate_request(ctx: TranslateContext, body: String) -> Result<String, TranslateError> {
        translate::translate_request(&context(ctx), &body).map_err(wit_error)
    }

    fn translate_response(ctx: TranslateContext, body: String) -> Result<String, TranslateError> {
        translate::translate_response(&context(ctx), &body, now_unix_secs()).map_err(wit_error)
    }
}

/// A stream translator, or why it cannot be one: the WIT constructor cannot
/// fail, so an unsupported pair is reported by the first `push`.
struct Stream(RefCell<Result<translate::StreamTranslator, error::Failure>>);

impl GuestStreamTranslator for Stream {
    fn new(ctx: TranslateContext) -> Self {
        Self(RefCell::new(translate::StreamTranslator::new(
            &context(ctx),
            now_unix_secs(),
        )))
    }

    fn push(&self, event: SseEvent) -> Result<Vec<SseEvent>, TranslateError> {
        match &mut *self.0.borrow_mut() {
            Ok(translator) => translator
                .push(&stream::Event {
                    event: event.event,
                    data: event.data,
                })
                .map(wit_events)
                .map_err(wit_error),
            Err(failure) => Err(wit_error(failure.clone())),
        }
    }

    fn finish(&self) -> Vec<SseEvent> {
        match &mut *self.0.borrow_mut() {
            Ok(translator) => wit_events(translator.finish()),
            Err(_) => Vec::new(),
        }
    }
}

fn context(ctx: TranslateContext) -> Context {
    Context {
        client: shape(ctx.client),
        provider: shape(ctx.provider),
        provider_model: ctx.provider_model,
        client_model: ctx.client_model,
        stream: ctx.stream,
        include_usage: ctx.include_usage,
    }
}

fn shape(shape: ApiShape) -> Shape {
    match shape {
        ApiShape::Openai => Shape::OpenAi,
        ApiShape::Anthropic => Shape::Anthropic,
    }
}

fn wit_error(failure: error::Failure) -> TranslateError {
    TranslateError {
        status: failure.status,
        code: failure.code,
        message: failure.message,
        param: failure.param,
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

fn now_unix_secs() -> u64 {
    host::now_unix_ms() / 1000
}

export_translator!(OpenAiAnthropic);
