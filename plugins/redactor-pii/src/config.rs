//! The binding's config: `{"mode": "pseudonymize"|"mask"|"block", "kinds": [...]}`.

use crate::kind::{Kind, KindSet};
use serde_json::Value;

/// What happens to a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Replace by a stable placeholder and restore it in the answer.
    #[default]
    Pseudonymize,
    /// Replace by `[REDACTED:<kind>]`, for good.
    Mask,
    /// Refuse the request.
    Block,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub mode: Mode,
    pub kinds: KindSet,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            kinds: KindSet::all(),
        }
    }
}

/// Why a config cannot be used, naming the offending value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misconfigured(pub String);

pub const SCHEMA: &str = concat!(
    r#"{"type":"object","additionalProperties":false,"properties":{"#,
    r#""mode":{"enum":["pseudonymize","mask","block"],"default":"pseudonymize"},"#,
    r#""kinds":{"type":"array","uniqueItems":true,"items":{"enum":["#,
    r#""email","phone","credit_card","iban","ip_address","aws_access_key","jwt","#,
    r#""openai_key","anthropic_key","gcp_api_key","github_token","private_key"]}}}}"#
);

impl Config {
    /// Parses a binding's config. `null` (no or unreadable config) gives
    /// the defaults. Unknown fields are refused too: a misspelt `"mdoe":
    /// "block"` must not quietly fall back to another mode.
    pub fn from_json(config: &Value) -> Result<Config, Misconfigured> {
        let mut out = Config::default();
        let fields = match config {
            Value::Null => return Ok(out),
            Value::Object(fields) => fields,
            other => return Err(bad(format!("config must be an object, not {other}"))),
        };
        for (key, value) in fields {
            match key.as_str() {
                "mode" => out.mode = mode(value)?,
                "kinds" => out.kinds = kinds(value)?,
                _ => return Err(bad(format!("unknown config field `{key}`"))),
            }
        }
        Ok(out)
    }
}

fn mode(value: &Value) -> Result<Mode, Misconfigured> {
    match value.as_str() {
        Some("pseudonymize") => Ok(Mode::Pseudonymize),
        Some("mask") => Ok(Mode::Mask),
        Some("block") => Ok(Mode::Block),
        _ => Err(bad(format!(
            "unknown mode {value} (expected pseudonymize, mask or block)"
        ))),
    }
}

fn kinds(value: &Value) -> Result<KindSet, Misconfigured> {
    let Value::Array(items) = value else {
        return Err(bad(format!("`kinds` must be a list of names, not {value}")));
    };
    items
        .iter()
        .map(|item| {
            item.as_str()
                .and_then(Kind::from_name)
                .ok_or_else(|| bad(format!("unknown kind {item}")))
        })
        .collect()
}

fn bad(why: String) -> Misconfigured {
    Misconfigured(format!("pii-redactor is misconfigured: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_pseudonymize_everything() {
        assert_eq!(Config::from_json(&Value::Null), Ok(Config::default()));
        assert_eq!(Config::from_json(&json!({})), Ok(Config::default()));
        assert_eq!(Config::default().kinds, KindSet::all());
    }

    #[test]
    fn mode_and_kinds_are_read() {
        let c = Config::from_json(&json!({"mode": "block", "kinds": ["email", "iban"]})).unwrap();
        assert_eq!(c.mode, Mode::Block);
        assert_eq!(
            c.kinds.iter().collect::<Vec<_>>(),
            vec![Kind::Email, Kind::Iban]
        );
        let c = Config::from_json(&json!({"mode": "mask"})).unwrap();
        assert_eq!((c.mode, c.kinds), (Mode::Mask, KindSet::all()));
        let c = Config::from_json(&json!({"kinds": []})).unwrap();
        assert!(c.kinds.is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        let err = |v: Value| Config::from_json(&v).unwrap_err().0;
        assert!(err(json!({"mode": "scramble"})).contains("\"scramble\""));
        assert!(err(json!({"kinds": ["email", "ssn"]})).contains("\"ssn\""));
        assert!(err(json!({"kinds": "email"})).contains("list"));
        assert!(err(json!({"mdoe": "block"})).contains("`mdoe`"));
        assert!(err(json!([1])).contains("object"));
    }

    #[test]
    fn schema_is_json_and_lists_every_kind() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let listed = &schema["properties"]["kinds"]["items"]["enum"];
        for k in Kind::ALL {
            assert!(
                listed.as_array().unwrap().contains(&json!(k.name())),
                "{k:?}"
            );
        }
    }
}
