//! Calling translator plugins: whole bodies, and streams that hold one
//! instance for their whole life.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use super::PluginError;
use super::bindings::SseEvent;
use super::limits::metered;
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
    pub async fn translate_request(
        &self,
        ctx: &TranslateContext,
        body: &str,
    ) -> Result<Translated<String>, PluginError> {
        let mut call = self.begin(body.len()).await?;
        let budget = call.budget;
        let w = call.warm();
        let r = metered(
            &w.clock,
            &budget,
            translation(&w.exports).call_translate_request(&mut w.store, ctx, body),
        )
        .await;
        call.settle(r)
    }

    /// Provider-shape response body → client-shape response body.
    pub async fn translate_response(
        &self,
        ctx: &TranslateContext,
        body: &str,
    ) -> Result<Translated<String>, PluginError> {
        let mut call = self.begin(body.len()).await?;
        let budget = call.budget;
        let w = call.warm();
        let r = metered(
            &w.clock,
            &budget,
            translation(&w.exports).call_translate_response(&mut w.store, ctx, body),
        )
        .await;
        call.settle(r)
    }

    /// Start translating one response stream. The stream keeps this plugin
    /// (and so the snapshot's version of it) and one instance until it ends.
    pub async fn open_stream(
        self: &Arc<Self>,
        ctx: &TranslateContext,
    ) -> Result<StreamTranslation, PluginError> {
        let mut call = self.begin(0).await?;
        let budget = call.budget;
        let w = call.warm();
        let r = metered(
            &w.clock,
            &budget,
            translation(&w.exports)
                .stream_translator()
                .call_constructor(&mut w.store, ctx),
        )
        .await;
        let (resource, warm) = call.settle_keep(r)?;
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
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Feed one upstream event; returns the events to send the client.
    pub async fn push(
        &mut self,
        event: &SseEvent,
    ) -> Result<Translated<Vec<SseEvent>>, PluginError> {
        let Some(warm) = self.warm.as_mut() else {
            return Err(PluginError::Trap("stream translator already failed".into()));
        };
        let call = self.plugin.step(warm, event.data.len());
        let r = metered(
            &warm.clock,
            &call.budget,
            translation(&warm.exports).stream_translator().call_push(
                &mut warm.store,
                self.resource,
                event,
            ),
        )
        .await;
        let r = call.settle_step(r);
        if r.is_err() {
            self.warm = None;
        }
        r
    }

    /// The upstream stream ended: flush what is still owed to the client and
    /// return the instance to its pool.
    pub async fn finish(mut self) -> Result<Vec<SseEvent>, PluginError> {
        let Some(mut warm) = self.warm.take() else {
            return Err(PluginError::Trap("stream translator already failed".into()));
        };
        let call = self.plugin.step(&mut warm, 0);
        let r = metered(
            &warm.clock,
            &call.budget,
            translation(&warm.exports)
                .stream_translator()
                .call_finish(&mut warm.store, self.resource),
        )
        .await;
        let out = call.settle_step(r)?;
        self.plugin.arm_base(&mut warm);
        if self
            .resource
            .resource_drop_async(&mut warm.store)
            .await
            .is_ok()
        {
            self.plugin.release(warm);
        }
        Ok(out)
    }
}
