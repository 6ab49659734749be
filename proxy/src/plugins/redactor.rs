//! Calling redactor plugins: request bodies, whole responses, and streams
//! that hold one instance for their whole life.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use super::PluginError;
use super::bindings::{Rejection, SseEvent};
use super::limits::metered;
use super::plugin::{Exports, Plugin, Warm};

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
        let mut call = self.begin(body.len()).await?;
        let budget = call.budget;
        let w = call.warm();
        let r = metered(
            &w.clock,
            &budget,
            redaction(&w.exports).call_redact_request(&mut w.store, ctx, body),
        )
        .await;
        call.settle(r)
    }

    pub async fn redact_response(
        &self,
        ctx: &RedactContext,
        state: Option<&str>,
        body: &str,
    ) -> Result<Redacted<Option<String>>, PluginError> {
        let mut call = self.begin(body.len()).await?;
        let budget = call.budget;
        let w = call.warm();
        let r = metered(
            &w.clock,
            &budget,
            redaction(&w.exports).call_redact_response(&mut w.store, ctx, state, body),
        )
        .await;
        call.settle(r)
    }

    pub async fn open_redaction(
        self: &Arc<Self>,
        ctx: &RedactContext,
        state: Option<&str>,
    ) -> Result<StreamRedaction, PluginError> {
        let mut call = self.begin(0).await?;
        let budget = call.budget;
        let w = call.warm();
        let r = metered(
            &w.clock,
            &budget,
            redaction(&w.exports)
                .stream_redactor()
                .call_constructor(&mut w.store, ctx, state),
        )
        .await;
        let (resource, warm) = call.settle_keep(r)?;
        Ok(StreamRedaction {
            plugin: self.clone(),
            warm: Some(warm),
            resource,
        })
    }
}

/// One response stream being redacted on one instance.
pub struct StreamRedaction {
    plugin: Arc<Plugin>,
    warm: Option<Warm>,
    resource: ResourceAny,
}

impl StreamRedaction {
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    pub async fn push(&mut self, event: &SseEvent) -> Result<Redacted<Vec<SseEvent>>, PluginError> {
        let Some(warm) = self.warm.as_mut() else {
            return Err(PluginError::Trap("stream redactor already failed".into()));
        };
        let call = self.plugin.step(warm, event.data.len());
        let r = metered(
            &warm.clock,
            &call.budget,
            redaction(&warm.exports).stream_redactor().call_push(
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

    pub async fn finish(mut self) -> Result<Redacted<Vec<SseEvent>>, PluginError> {
        let Some(mut warm) = self.warm.take() else {
            return Err(PluginError::Trap("stream redactor already failed".into()));
        };
        let call = self.plugin.step(&mut warm, 0);
        let r = metered(
            &warm.clock,
            &call.budget,
            redaction(&warm.exports)
                .stream_redactor()
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
