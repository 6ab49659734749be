//! Model normalization, once per request: an explicit `provider:model`
//! passes through, a bare name gets the inbound shape's provider prefix.

use crate::intake::Shape;

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
}

/// Normalize the model a client of `shape` asked for.
pub fn normalize(model: &str, shape: Shape) -> Canonical {
    match model.split_once(':') {
        Some((provider, rest)) if !provider.is_empty() && !rest.is_empty() => Canonical {
            provider: provider.to_owned(),
            model: rest.to_owned(),
        },
        _ => Canonical {
            provider: shape.as_str().to_owned(),
            model: model.to_owned(),
        },
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn prefixes_bare_names_by_shape() {
        assert_eq!(
            normalize("gpt-4o-mini", Shape::OpenAi).id(),
            "openai:gpt-4o-mini"
        );
        assert_eq!(
            normalize("claude-sonnet-4-6", Shape::Anthropic).id(),
            "anthropic:claude-sonnet-4-6"
        );
        assert_eq!(
            normalize("mock:gpt-4o", Shape::Anthropic).id(),
            "mock:gpt-4o"
        );
    }
}
