//! Model normalization, once per request, before routing:
//! 1. a registry alias (`[routing.aliases]`) resolves to its canonical id;
//! 2. the opt-out form `sluice://provider/model` is taken verbatim (for model
//!    names that themselves contain `:`, like Ollama's `llama3:8b`);
//! 3. `provider:model` with a configured provider passes through;
//! 4. anything else is a bare name and gets the inbound shape's provider
//!    prefix (`openai:` or `anthropic:`).

use std::collections::HashMap;

use crate::api::Shape;

/// The scheme of the opt-out form.
pub const OPT_OUT: &str = "sluice://";

/// A model id split into provider and provider-side model name.
#[derive(Debug, Clone, PartialEq)]
pub struct Canonical {
    pub provider: String,
    pub model: String,
}

impl Canonical {
    /// `provider:model`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.provider, self.model)
    }

    fn split(s: &str) -> Option<Canonical> {
        let (provider, model) = s.split_once(':')?;
        (!provider.is_empty() && !model.is_empty()).then(|| Canonical {
            provider: provider.to_owned(),
            model: model.to_owned(),
        })
    }
}

/// Normalize the model a client of `shape` asked for.
pub fn normalize(
    model: &str,
    shape: Shape,
    aliases: &HashMap<String, String>,
    is_provider: impl Fn(&str) -> bool,
) -> Canonical {
    if let Some(target) = aliases.get(model)
        && let Some(c) = Canonical::split(target)
    {
        return c;
    }
    if let Some(rest) = model.strip_prefix(OPT_OUT)
        && let Some((provider, name)) = rest.split_once('/')
        && !provider.is_empty()
        && !name.is_empty()
    {
        return Canonical {
            provider: provider.to_owned(),
            model: name.to_owned(),
        };
    }
    match Canonical::split(model) {
        Some(c) if is_provider(&c.provider) => c,
        _ => Canonical {
            provider: shape.as_str().to_owned(),
            model: model.to_owned(),
        },
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn norm(model: &str, shape: Shape) -> String {
        let aliases = HashMap::from([("fast".to_string(), "mock:gpt-4o-mini".to_string())]);
        normalize(model, shape, &aliases, |p| {
            ["mock", "openai", "ollama"].contains(&p)
        })
        .id()
    }

    #[test]
    fn normalization_rules_in_order() {
        assert_eq!(norm("fast", Shape::Anthropic), "mock:gpt-4o-mini");
        assert_eq!(
            norm("sluice://ollama/llama3:8b", Shape::OpenAi),
            "ollama:llama3:8b"
        );
        assert_eq!(norm("mock:gpt-4o", Shape::Anthropic), "mock:gpt-4o");
        assert_eq!(norm("gpt-4o-mini", Shape::OpenAi), "openai:gpt-4o-mini");
        assert_eq!(
            norm("claude-sonnet-4-6", Shape::Anthropic),
            "anthropic:claude-sonnet-4-6"
        );
        // A colon that names no provider is part of a bare name.
        assert_eq!(norm("llama3:8b", Shape::OpenAi), "openai:llama3:8b");
    }
}
