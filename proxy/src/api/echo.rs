//! Responses echo the model string the client sent, even when the provider
//! was asked for another name (`mock:gpt-4o` → `gpt-4o`, or a router's
//! choice). When the names match, bodies and streams pass untouched.

use bytes::Bytes;

use super::{Shape, splice_string, top_level_model_span};

pub struct ModelEcho {
    shape: Shape,
    client_model: String,
    rewrites: bool,
}

impl ModelEcho {
    pub fn new(shape: Shape, client_model: &str, upstream_model: &str) -> Self {
        Self {
            shape,
            client_model: client_model.to_owned(),
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
        match top_level_model_span(&body) {
            Some(span) => splice_string(&body, span, &self.client_model),
            None => body,
        }
    }

    /// One stream event (its `event:` name and `data`): every OpenAI chunk
    /// names the model; Anthropic names it once, in `message_start.message`.
    /// Returns whether it changed.
    pub fn event(&self, name: Option<&str>, data: &mut String) -> bool {
        if !self.rewrites {
            return false;
        }
        match self.shape {
            Shape::OpenAi if data != "[DONE]" => match top_level_model_span(data.as_bytes()) {
                Some(span) => {
                    let out = splice_string(data.as_bytes(), span, &self.client_model);
                    *data = String::from_utf8(out.to_vec()).unwrap_or_default();
                    true
                }
                None => false,
            },
            Shape::Anthropic if name == Some("message_start") => {
                if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(data)
                    && let Some(m) = v.get_mut("message").and_then(|m| m.get_mut("model"))
                {
                    *m = self.client_model.as_str().into();
                    *data = v.to_string();
                    return true;
                }
                false
            }
            _ => false,
        }
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
        let mut data = String::from(r#"{"type":"message_start","message":{"model":"c"}}"#);
        assert!(a.event(Some("message_start"), &mut data));
        assert!(data.contains(r#""model":"mock:c""#), "{data}");
    }
}
