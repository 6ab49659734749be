//! Calling translator plugins: whole bodies, and streams that hold one
//! instance for their whole life.

use std::sync::Arc;

use super::PluginError;
use super::bindings::SseEvent;
use super::plugin::{Exports, Held, Plugin};

pub use super::bindings::translator::exports::sluice::plugin::translation::{
    TranslateContext, TranslateError,
};

/// A translation the plugin answered: the body, or its refusal.
pub type Translated<T> = Result<T, TranslateError>;

fn translation(
    exports: &Exports,
) -> &super::bindings::translator::exports::sluice::plugin::translation::Guest {
    match exports {
        Exports::Translator(t) => t.sluice_plugin_translation(),
        _ => unreachable!("only translator plugins translate"),
    }
}

impl Plugin {
    /// Client-shape request body → provider-shape request body.
    pub async fn translate_request(
        &self,
        ctx: &TranslateContext,
        body: &str,
    ) -> Result<Translated<String>, PluginError> {
        one_call!(self, body.len(), |w| translation(&w.exports)
            .call_translate_request(&mut w.store, ctx, body))
    }

    /// Provider-shape response body → client-shape response body.
    pub async fn translate_response(
        &self,
        ctx: &TranslateContext,
        body: &str,
    ) -> Result<Translated<String>, PluginError> {
        one_call!(self, body.len(), |w| translation(&w.exports)
            .call_translate_response(&mut w.store, ctx, body))
    }

    /// Start translating one response stream. The stream keeps this plugin
    /// (and so the snapshot's version of it) and one instance until it ends.
    pub async fn open_stream(
        self: &Arc<Self>,
        ctx: &TranslateContext,
    ) -> Result<StreamTranslation, PluginError> {
        Ok(StreamTranslation(open_held!(self, |w| translation(
            &w.exports
        )
        .stream_translator()
        .call_constructor(&mut w.store, ctx))))
    }
}

/// One response stream being translated on one instance.
pub struct StreamTranslation(Held);

impl StreamTranslation {
    pub fn plugin(&self) -> &Plugin {
        &self.0.plugin
    }

    /// Feed one upstream event; returns the events to send the client.
    pub async fn push(
        &mut self,
        event: &SseEvent,
    ) -> Result<Translated<Vec<SseEvent>>, PluginError> {
        held_call!(self.0, event.data.len(), |w, res| translation(&w.exports)
            .stream_translator()
            .call_push(&mut w.store, res, event))
    }

    /// The upstream stream ended: flush what is still owed to the client and
    /// return the instance to its pool.
    pub async fn finish(mut self) -> Result<Vec<SseEvent>, PluginError> {
        let out = held_call!(self.0, 0, |w, res| translation(&w.exports)
            .stream_translator()
            .call_finish(&mut w.store, res))?;
        self.0.close().await;
        Ok(out)
    }
}
