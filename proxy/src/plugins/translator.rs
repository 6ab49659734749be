//! Calling translator plugins: whole bodies, and streams that hold one
//! instance for their whole life.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use super::PluginError;
use super::bindings::SseEvent;
use super::plugin::{Exports, Plugin, Warm};

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
    pub fn translate_request(
        &self,
        ctx: &TranslateContext,
        body: &str,
    ) -> Result<Translated<String>, PluginError> {
        self.invoke(|w| translation(&w.exports).call_translate_request(&mut w.store, ctx, body))
    }

    /// Provider-shape response body → client-shape response body.
    pub fn translate_response(
        &self,
        ctx: &TranslateContext,
        body: &str,
    ) -> Result<Translated<String>, PluginError> {
        self.invoke(|w| translation(&w.exports).call_translate_response(&mut w.store, ctx, body))
    }

    /// Start translating one response stream. The stream keeps this plugin
    /// (and so the snapshot's version of it) alive until it ends.
    pub fn open_stream(
        self: &Arc<Self>,
        ctx: &TranslateContext,
    ) -> Result<StreamTranslation, PluginError> {
        let mut warm = self.checkout()?;
        let resource = self.call_on(&mut warm, |w| {
            translation(&w.exports)
                .stream_translator()
                .call_constructor(&mut w.store, ctx)
        })?;
        Ok(StreamTranslation {
            plugin: self.clone(),
            warm: Some(warm),
            resource,
        })
    }
}

/// One response stream being translated on one instance.
pub struct StreamTranslation {
    plugin: Arc<Plugin>,
    /// `None` once a call failed: the instance is dropped, never reused.
    warm: Option<Warm>,
    resource: ResourceAny,
}

impl StreamTranslation {
    /// Feed one upstream event; returns the events to send the client.
    pub fn push(&mut self, event: &SseEvent) -> Result<Translated<Vec<SseEvent>>, PluginError> {
        let resource = self.resource;
        self.call(|w| {
            translation(&w.exports)
                .stream_translator()
                .call_push(&mut w.store, resource, event)
        })
    }

    /// The upstream stream ended: flush what is still owed to the client and
    /// return the instance to its pool.
    pub fn finish(mut self) -> Result<Vec<SseEvent>, PluginError> {
        let resource = self.resource;
        let out = self.call(|w| {
            translation(&w.exports)
                .stream_translator()
                .call_finish(&mut w.store, resource)
        })?;
        self.release();
        Ok(out)
    }

    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Warm) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let Some(warm) = self.warm.as_mut() else {
            return Err(PluginError::Trap("stream translator already failed".into()));
        };
        let r = self.plugin.call_on(warm, f);
        if r.is_err() {
            self.warm = None;
        }
        r
    }

    /// Drop the guest resource and give the instance back.
    fn release(&mut self) {
        if let Some(mut warm) = self.warm.take() {
            self.plugin.arm_deadline(&mut warm);
            if self.resource.resource_drop(&mut warm.store).is_ok() {
                self.plugin.checkin(warm);
            }
        }
    }
}

impl Drop for StreamTranslation {
    /// A stream abandoned midway (client gone, upstream failed) still frees
    /// its guest resource so the instance can serve again.
    fn drop(&mut self) {
        self.release();
    }
}
