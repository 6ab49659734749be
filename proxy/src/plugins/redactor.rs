//! Calling redactor plugins: request bodies, whole responses, and streams
//! that hold one instance for their whole life.

use std::sync::Arc;

use super::PluginError;
use super::bindings::{Rejection, SseEvent};
use super::plugin::{Exports, Held, Plugin};

pub use super::bindings::redactor::exports::sluice::plugin::redaction::{
    RedactContext, RedactedRequest,
};

/// A redaction the plugin answered: its result, or its refusal.
pub type Redacted<T> = Result<T, Rejection>;

fn redaction(
    exports: &Exports,
) -> &super::bindings::redactor::exports::sluice::plugin::redaction::Guest {
    match exports {
        Exports::Redactor(r) => r.sluice_plugin_redaction(),
        _ => unreachable!("only redactor plugins redact"),
    }
}

impl Plugin {
    pub async fn redact_request(
        &self,
        ctx: &RedactContext,
        body: &str,
    ) -> Result<Redacted<RedactedRequest>, PluginError> {
        one_call!(self, body.len(), |w| redaction(&w.exports)
            .call_redact_request(&mut w.store, ctx, body))
    }

    pub async fn redact_response(
        &self,
        ctx: &RedactContext,
        state: Option<&str>,
        body: &str,
    ) -> Result<Redacted<Option<String>>, PluginError> {
        one_call!(self, body.len(), |w| redaction(&w.exports)
            .call_redact_response(&mut w.store, ctx, state, body))
    }

    pub async fn open_redaction(
        self: &Arc<Self>,
        ctx: &RedactContext,
        state: Option<&str>,
    ) -> Result<StreamRedaction, PluginError> {
        Ok(StreamRedaction(open_held!(self, |w| redaction(&w.exports)
            .stream_redactor()
            .call_constructor(&mut w.store, ctx, state))))
    }
}

/// One response stream being redacted on one instance.
pub struct StreamRedaction(Held);

impl StreamRedaction {
    pub fn plugin(&self) -> &Plugin {
        &self.0.plugin
    }

    pub async fn push(&mut self, event: &SseEvent) -> Result<Redacted<Vec<SseEvent>>, PluginError> {
        held_call!(self.0, event.data.len(), |w, res| redaction(&w.exports)
            .stream_redactor()
            .call_push(&mut w.store, res, event))
    }

    pub async fn finish(mut self) -> Result<Redacted<Vec<SseEvent>>, PluginError> {
        let out = held_call!(self.0, 0, |w, res| redaction(&w.exports)
            .stream_redactor()
            .call_finish(&mut w.store, res))?;
        self.0.close().await;
        Ok(out)
    }
}
