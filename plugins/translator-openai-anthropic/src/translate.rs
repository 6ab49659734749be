//! The plugin's three entry points on plain Rust types: which way to
//! translate, and text in, text out. `lib.rs` only adapts the WIT types.

use crate::error::Failure;
use crate::request::{self, Upstream};
use crate::response;
use crate::stream::{AnthropicToOpenAi, Event, OpenAiToAnthropic};
use serde_json::Value;

/// The wire shape of an API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    OpenAi,
    Anthropic,
}

/// What a translation call knows about its exchange (WIT `translate-context`).
#[derive(Debug, Clone)]
pub struct Context {
    /// Shape the client speaks.
    pub client: Shape,
    /// Shape the provider speaks.
    pub provider: Shape,
    /// The model to name in the provider request.
    pub provider_model: String,
    /// The model the client asked for; responses echo it.
    pub client_model: String,
    pub stream: bool,
    /// For OpenAI clients: whether they asked for the final usage chunk.
    pub include_usage: bool,
}

impl Context {
    /// The client shape, once the pair is known to be one this plugin
    /// translates.
    fn client_shape(&self) -> Result<Shape, Failure> {
        if self.client == self.provider {
            return Err(Failure::unsupported_pair(format!(
                "openai-anthropic translates between OpenAI and Anthropic, not {:?} to {:?}",
                self.client, self.provider
            )));
        }
        Ok(self.client)
    }
}

/// A client request body as the provider request body.
pub fn translate_request(ctx: &Context, body: &str) -> Result<String, Failure> {
    let client = ctx.client_shape()?;
    let body: Value = serde_json::from_str(body).map_err(|e| {
        Failure::invalid_request(format!("request body is not valid JSON: {e}"), None)
    })?;
    let upstream = Upstream {
        model: &ctx.provider_model,
        stream: ctx.stream,
    };
    let out = match client {
        Shape::OpenAi => request::openai_to_anthropic(&body, &upstream)?,
        Shape::Anthropic => request::anthropic_to_openai(&body, &upstream)?,
    };
    Ok(out.to_string())
}

/// A provider response body as the client response body. `created` is the
/// Unix time in seconds, stamped on OpenAI completions.
pub fn translate_response(ctx: &Context, body: &str, created: u64) -> Result<String, Failure> {
    let client = ctx.client_shape()?;
    let body: Value = serde_json::from_str(body)
        .map_err(|e| Failure::bad_upstream(format!("provider response is not valid JSON: {e}")))?;
    let out = match client {
        Shape::OpenAi => response::anthropic_to_openai(&body, &ctx.client_model, created)?,
        Shape::Anthropic => response::openai_to_anthropic(&body, &ctx.client_model)?,
    };
    Ok(out.to_string())
}

/// One streamed response, provider events in, client events out.
#[derive(Debug)]
pub enum StreamTranslator {
    /// Anthropic provider, OpenAI client.
    ToOpenAi(AnthropicToOpenAi),
    /// OpenAI provider, Anthropic client.
    ToAnthropic(OpenAiToAnthropic),
}

impl StreamTranslator {
    /// `created` is the Unix time in seconds, stamped on OpenAI chunks.
    pub fn new(ctx: &Context, created: u64) -> Result<Self, Failure> {
        Ok(match ctx.client_shape()? {
            Shape::OpenAi => Self::ToOpenAi(AnthropicToOpenAi::new(
                &ctx.client_model,
                created,
                ctx.include_usage,
            )),
            Shape::Anthropic => Self::ToAnthropic(OpenAiToAnthropic::new(&ctx.client_model)),
        })
    }

    pub fn push(&mut self, event: &Event) -> Result<Vec<Event>, Failure> {
        match self {
            Self::ToOpenAi(t) => t.push(event),
            Self::ToAnthropic(t) => t.push(event),
        }
    }

    pub fn finish(&mut self) -> Vec<Event> {
        match self {
            Self::ToOpenAi(t) => t.finish(),
            Self::ToAnthropic(t) => t.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(client: Shape, provider: Shape) -> Context {
        Context {
            client,
            provider,
            provider_model: "p".into(),
            client_model: "c".into(),
            stream: false,
            include_usage: false,
        }
    }

    #[test]
    fn same_shape_is_refused() {
        let ctx = ctx(Shape::OpenAi, Shape::OpenAi);
        assert_eq!(
            translate_request(&ctx, "{}").unwrap_err().code,
            "unsupported_translation"
        );
        assert!(StreamTranslator::new(&ctx, 0).is_err());
    }

    #[test]
    fn unparsable_bodies_fail_by_side() {
        let ctx = ctx(Shape::OpenAi, Shape::Anthropic);
        assert_eq!(translate_request(&ctx, "nope").unwrap_err().status, 400);
        assert_eq!(translate_response(&ctx, "nope", 0).unwrap_err().status, 502);
    }
}
