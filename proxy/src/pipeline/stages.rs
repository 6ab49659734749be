//! The stream stage list. A provider's stream is parsed into events once;
//! each event then passes, in order, usage capture (on the provider's own
//! event), the translator, the redactors, the model echo, and the end check
//! (on what the client gets). When no stage rewrites anything the
//! provider's bytes go out as received, and the observers still see every
//! event.

use std::sync::Arc;

use bytes::Bytes;

use super::Failure;
use super::redact::{refused, skippable};
use super::usage::{Usage, UsageCapture};
use crate::api::{ApiError, ModelEcho, Shape};
use crate::http::sse::{SseParser, write_event};
use crate::plugins::bindings::SseEvent;
use crate::plugins::redactor::{RedactContext, StreamRedaction};
use crate::plugins::translator::{StreamTranslation, TranslateContext};
use crate::plugins::{Plugin, PluginKind};
use crate::providers::UpstreamError;

pub struct StreamStages {
    client: Shape,
    provider: String,
    parser: SseParser,
    events: Vec<SseEvent>,
    usage: UsageCapture,
    translator: Option<StreamTranslation>,
    redactors: Vec<StreamRedaction>,
    echo: ModelEcho,
    ends: EndCheck,
    /// Bytes a single event may reach before the stream is refused.
    max_event_bytes: usize,
    /// Drop the provider's usage-only chunk: Sluice asked for it, the
    /// client did not.
    strip_usage: bool,
    out: Vec<u8>,
}

/// What a stream needs to open its stages.
pub struct StreamPlan<'a> {
    pub client: Shape,
    pub provider_shape: Shape,
    pub provider: &'a str,
    pub client_model: &'a str,
    pub provider_model: &'a str,
    pub translation: Option<&'a (Arc<Plugin>, TranslateContext)>,
    /// Redactors in the order the response passes them, with their state.
    pub redactors: Vec<(&'a Arc<Plugin>, Option<&'a str>)>,
    pub redact_ctx: RedactContext,
    pub max_event_bytes: usize,
    pub strip_usage: bool,
}

impl StreamStages {
    pub async fn open(plan: StreamPlan<'_>) -> Result<Self, Failure> {
        let translator = match plan.translation {
            Some((t, tctx)) => Some(
                t.open_stream(tctx)
                    .await
                    .map_err(|e| Failure::plugin(t.name(), PluginKind::Translator, e))?,
            ),
            None => None,
        };
        let mut redactors = Vec::with_capacity(plan.redactors.len());
        for (plugin, state) in plan.redactors {
            match plugin.open_redaction(&plan.redact_ctx, state).await {
                Ok(r) => redactors.push(r),
                Err(e) if skippable(plugin, &e) => {}
                Err(e) => return Err(Failure::plugin(plugin.name(), PluginKind::Redactor, e)),
            }
        }
        Ok(Self {
            client: plan.client,
            provider: plan.provider.to_owned(),
            parser: SseParser::default(),
            events: Vec::new(),
            usage: UsageCapture::new(plan.provider_shape),
            echo: ModelEcho::new(plan.client, plan.client_model, plan.provider_model),
            translator,
            redactors,
            ends: EndCheck::default(),
            max_event_bytes: plan.max_event_bytes,
            strip_usage: plan.strip_usage,
            out: Vec::new(),
        })
    }

    fn rewrites(&self) -> bool {
        self.translator.is_some()
            || !self.redactors.is_empty()
            || self.echo.rewrites()
            || self.strip_usage
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage.usage()
    }

    /// One chunk from the provider; returns the bytes to send the client.
    pub async fn push(&mut self, chunk: Bytes) -> Result<Bytes, Failure> {
        self.parser.push(&chunk, &mut self.events);
        if self.parser.pending() > self.max_event_bytes {
            return Err(Failure::Upstream(UpstreamError::TooLarge {
                provider: self.provider.clone(),
                limit: self.max_event_bytes,
            }));
        }
        if !self.rewrites() {
            for ev in self.events.drain(..) {
                self.usage.observe(&ev);
                self.ends.observe(self.client, &ev);
            }
            return Ok(chunk);
        }
        let events = std::mem::take(&mut self.events);
        self.run(events).await?;
        Ok(self.take_out())
    }

    /// Provider events through every stage, in order.
    async fn run(&mut self, events: Vec<SseEvent>) -> Result<(), Failure> {
        for ev in events {
            self.usage.observe(&ev);
            if self.strip_usage && is_usage_only(&ev) {
                continue;
            }
            let batch = match &mut self.translator {
                Some(t) => translate(t, &ev).await?,
                None => vec![ev],
            };
            self.after_translation(batch).await?;
        }
        Ok(())
    }

    /// The provider's stream ended: flush every stage and, when the client
    /// would otherwise get a stream without its final event, end it with an
    /// error event.
    pub async fn finish(mut self, request_id: &str) -> Result<Bytes, Failure> {
        let mut events = Vec::new();
        self.parser.finish(&mut events);
        self.run(events).await?;
        if let Some(t) = self.translator.take() {
            let name = t.plugin().name().to_owned();
            let tail = t
                .finish()
                .await
                .map_err(|e| Failure::plugin(&name, PluginKind::Translator, e))?;
            self.after_translation(tail).await?;
        }
        while !self.redactors.is_empty() {
            let r = self.redactors.remove(0);
            let plugin = r.plugin().name().to_owned();
            match r.finish().await {
                Ok(Ok(tail)) => self.after_translation(tail).await?,
                Ok(Err(rejection)) => return Err(refused(&plugin, rejection)),
                Err(e) => return Err(Failure::plugin(&plugin, PluginKind::Redactor, e)),
            }
        }
        let mut tail = self.take_out().to_vec();
        if !self.ends.ended() {
            let err = ApiError::new(
                502,
                "upstream_error",
                format!(
                    "provider {} ended the stream early (request {request_id})",
                    self.provider
                ),
            );
            tail.extend(err.stream_event(self.client, request_id));
        }
        Ok(Bytes::from(tail))
    }

    /// Pass client-shape events through the redactors,
    /// then the echo, the end check and out.
    async fn after_translation(&mut self, batch: Vec<SseEvent>) -> Result<(), Failure> {
        let mut batch = batch;
        let mut i = 0;
        while i < self.redactors.len() {
            let mut next = Vec::with_capacity(batch.len());
            let mut failed = None;
            for ev in &batch {
                match self.redactors[i].push(ev).await {
                    Ok(Ok(evs)) => next.extend(evs),
                    Ok(Err(rejection)) => {
                        return Err(refused(self.redactors[i].plugin().name(), rejection));
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                let r = &self.redactors[i];
                if !skippable(r.plugin(), &e) {
                    return Err(Failure::plugin(r.plugin().name(), PluginKind::Redactor, e));
                }
                // Fail-open: this redactor is out for the rest of the stream.
                self.redactors.remove(i);
                continue;
            }
            batch = next;
            i += 1;
        }
        let echo = self.translator.is_none();
        for mut ev in batch {
            if echo {
                self.echo.event(ev.event.as_deref(), &mut ev.data);
            }
            self.ends.observe(self.client, &ev);
            write_event(&ev, &mut self.out);
        }
        Ok(())
    }

    fn take_out(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.out))
    }
}

/// OpenAI's last chunk when usage is asked for: no choices, only usage.
fn is_usage_only(ev: &SseEvent) -> bool {
    ev.data.contains("\"choices\":[]") && ev.data.contains("\"usage\"")
}

async fn translate(t: &mut StreamTranslation, ev: &SseEvent) -> Result<Vec<SseEvent>, Failure> {
    match t.push(ev).await {
        Ok(Ok(events)) => Ok(events),
        Ok(Err(e)) => Err(Failure::Translate(e)),
        Err(e) => Err(Failure::plugin(
            t.plugin().name(),
            PluginKind::Translator,
            e,
        )),
    }
}

/// Whether the last event the client got ends its stream: OpenAI's
/// `[DONE]`, Anthropic's `message_stop`, or an error event in either.
#[derive(Default)]
struct EndCheck {
    last_was_final: bool,
}

impl EndCheck {
    fn observe(&mut self, shape: Shape, ev: &SseEvent) {
        self.last_was_final = match shape {
            Shape::OpenAi => ev.data == "[DONE]" || is_error_event(&ev.data),
            Shape::Anthropic => matches!(ev.event.as_deref(), Some("message_stop" | "error")),
        };
    }

    fn ended(&self) -> bool {
        self.last_was_final
    }
}

/// An OpenAI stream's error event: a JSON object whose first key is `error`.
fn is_error_event(data: &str) -> bool {
    data.trim_start()
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with("\"error\""))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_last_event_decides_whether_a_stream_ended() {
        let mut e = EndCheck::default();
        e.observe(Shape::OpenAi, &SseEvent::new(None, "[DONE]"));
        assert!(e.ended());
        // A chunk that merely mentions the marker does not end it.
        e.observe(
            Shape::OpenAi,
            &SseEvent::new(
                None,
                r#"{"choices":[{"delta":{"content":"[DONE] error message_stop"}}]}"#,
            ),
        );
        assert!(!e.ended());
        e.observe(
            Shape::OpenAi,
            &SseEvent::new(None, r#"{"error":{"message":"x"}}"#),
        );
        assert!(e.ended());
        let mut a = EndCheck::default();
        a.observe(Shape::Anthropic, &SseEvent::new(Some("message_stop"), "{}"));
        assert!(a.ended());
        a.observe(
            Shape::Anthropic,
            &SseEvent::new(Some("ping"), r#"{"type":"message_stop"}"#),
        );
        assert!(!a.ended());
    }
}
