//! Responses echo the model string the client sent, even when the provider
//! was asked for another name (`mock:gpt-4o` → `gpt-4o`, or a router's
//! choice). When the names match, bodies and streams pass untouched.

use bytes::Bytes;

use crate::intake::{RequestBody, Shape};
use crate::plugins::bindings::SseEvent;

pub struct ModelEcho<'a> {
    shape: Shape,
    client_model: &'a str,
    rewrites: bool,
}

impl<'a> ModelEcho<'a> {
    pub fn new(shape: Shape, client_model: &'a str, upstream_model: &str) -> Self {
        Self {
            shape,
            client_model,
            rewrites: client_model != upstream_model,
        }
    }

    /// Whether anything needs rewriting at all.
    pub fn rewrites(&self) -> bool {
        self.rewrites
    }

    /// A whole response body: top-level `model` in both shapes.
    pub fn whole(&self, body: Bytes) -> Bytes {
        if !self.rewrites {
            return body;
        }
        self.replace_top_level(&body).map_or(body, Bytes::from)
    }

    /// One stream event: every OpenAI chunk names the model; Anthropic names
    /// it once, in `message_start.message`.
    pub fn event(&self, mut ev: SseEvent) -> SseEvent {
        if !self.rewrites {
            return ev;
        }
        match self.shape {
            Shape::OpenAi if ev.data != "[DONE]" => {
                if let Some(out) = self.replace_top_level(ev.data.as_bytes()) {
                    ev.data = String::from_utf8(out).unwrap_or(ev.data);
                }
            }
            Shape::Anthropic if ev.event.as_deref() == Some("message_start") => {
                if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&ev.data)
                    && let Some(m) = v.get_mut("message").and_then(|m| m.get_mut("model"))
                {
                    *m = self.client_model.into();
                    ev.data = v.to_string();
                }
            }
            _ => {}
        }
        ev
    }

    fn replace_top_level(&self, json: &[u8]) -> Option<Vec<u8>> {
        let body = RequestBody::parse(json).ok()?;
        body.get("model")?;
        let model = serde_json::to_string(self.client_model).ok()?;
        Some(body.with_field("model", &model))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rewrites_only_when_names_differ() {
        let e = ModelEcho::new(Shape::OpenAi, "mock:gpt", "gpt");
        let out = e.whole(Bytes::from_static(br#"{"id":"x","model":"gpt"}"#));
        assert_eq!(&out[..], br#"{"id":"x","model":"mock:gpt"}"#);
        let same = ModelEcho::new(Shape::OpenAi, "gpt", "gpt");
        assert!(!same.rewrites());
        let a = ModelEcho::new(Shape::Anthropic, "mock:c", "c");
        let ev = a.event(SseEvent {
            event: Some("message_start".into()),
            data: r#"{"type":"message_start","message":{"model":"c"}}"#.into(),
        });
        assert!(ev.data.contains(r#""model":"mock:c""#), "{}", ev.data);
    }
}
