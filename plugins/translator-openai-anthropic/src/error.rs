//! Translation failures and the mapping between the two APIs' error
//! envelopes (WIRE.md §3 and §7).

use serde_json::{Value, json};
use std::fmt;

/// Why a body or event could not be translated. The host reports it to the
/// client in the client's own error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status: 400 for a request the other API cannot express, 502 for
    /// an upstream answer that cannot be read.
    pub status: u16,
    /// Machine-readable code, e.g. `"unsupported_parameter"`.
    pub code: String,
    pub message: String,
    /// The request field to blame, when there is one.
    pub param: Option<String>,
}

impl Failure {
    /// 400: the request is malformed or breaks a rule of the target API.
    pub fn invalid_request(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::new(400, "invalid_request_error", message, param)
    }

    /// 400: the request uses a feature the target API does not have.
    pub fn unsupported(message: impl Into<String>, param: &str) -> Self {
        Self::new(400, "unsupported_parameter", message, Some(param))
    }

    /// 502: the provider answered with something we cannot read.
    pub fn bad_upstream(message: impl Into<String>) -> Self {
        Self::new(502, "bad_upstream_response", message, None)
    }

    /// 500: the host asked for a direction this plugin does not handle.
    pub fn unsupported_pair(message: impl Into<String>) -> Self {
        Self::new(500, "unsupported_translation", message, None)
    }

    fn new(status: u16, code: &str, message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        if let Some(param) = &self.param {
            write!(f, " (param {param})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// The `error` object of an Anthropic error envelope or `error` stream event
/// (`{"type":"error","error":{...}}`), if `body` is one.
pub fn anthropic_error(body: &Value) -> Option<&Value> {
    (body["type"] == "error").then(|| &body["error"])
}

/// The `error` object of an OpenAI error envelope or mid-stream error chunk
/// (`{"error":{...}}`), if `body` is one.
pub fn openai_error(body: &Value) -> Option<&Value> {
    body.get("error").filter(|e| e.is_object())
}

/// An Anthropic `error` object rewritten as an OpenAI envelope. Type and code
/// follow WIRE.md §3, so OpenAI clients see the same kind of failure.
pub fn anthropic_to_openai_error(error: &Value) -> Value {
    let (kind, code) = match error["type"].as_str().unwrap_or_default() {
        "invalid_request_error" => ("invalid_request_error", None),
        "authentication_error" => ("invalid_request_error", Some("invalid_api_key")),
        "permission_error" => ("request_forbidden", None),
        "not_found_error" => ("invalid_request_error", Some("not_found")),
        "request_too_large" => ("invalid_request_error", Some("request_too_large")),
        "rate_limit_error" => ("requests", Some("rate_limit_exceeded")),
        "billing_error" => ("insufficient_quota", Some("insufficient_quota")),
        "overloaded_error" => ("server_error", Some("server_is_overloaded")),
        _ => ("server_error", None),
    };
    json!({"error": {
        "message": message_of(error),
        "type": kind,
        "param": null,
        "code": code,
    }})
}

/// An OpenAI `error` object rewritten as an Anthropic envelope (§7 types).
pub fn openai_to_anthropic_error(error: &Value) -> Value {
    json!({"type": "error", "error": {
        "type": anthropic_error_type(error),
        "message": message_of(error),
    }})
}

/// The Anthropic error type closest to an OpenAI error. The code is more
/// specific than the type, so it is consulted first.
fn anthropic_error_type(error: &Value) -> &'static str {
    let code = error["code"].as_str().unwrap_or_default();
    let kind = error["type"].as_str().unwrap_or_default();
    match (code, kind) {
        ("invalid_api_key", _) => "authentication_error",
        ("rate_limit_exceeded", _) | (_, "requests" | "tokens") => "rate_limit_error",
        ("insufficient_quota", _) | (_, "insufficient_quota") => "billing_error",
        ("model_not_found", _) => "not_found_error",
        ("server_is_overloaded", _) | (_, "service_unavailable_error") => "overloaded_error",
        (_, "request_forbidden") => "permission_error",
        (_, "invalid_request_error") => "invalid_request_error",
        _ => "api_error",
    }
}

fn message_of(error: &Value) -> String {
    match &error["message"] {
        Value::String(message) => message.clone(),
        Value::Null => "upstream error".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_round_trips() {
        let a = json!({"type": "overloaded_error", "message": "Overloaded"});
        let o = anthropic_to_openai_error(&a);
        assert_eq!(o["error"]["code"], "server_is_overloaded");
        let back = openai_to_anthropic_error(&o["error"]);
        assert_eq!(back["error"], a);
    }

    #[test]
    fn unknown_openai_error_is_api_error() {
        let a = openai_to_anthropic_error(&json!({"message": "boom"}));
        assert_eq!(
            a,
            json!({"type":"error","error":{"type":"api_error","message":"boom"}})
        );
    }

    #[test]
    fn envelopes_are_recognised() {
        assert!(anthropic_error(&json!({"type":"error","error":{}})).is_some());
        assert!(anthropic_error(&json!({"type":"message"})).is_none());
        assert!(openai_error(&json!({"error":{"message":"x"}})).is_some());
        assert!(openai_error(&json!({"id":"chatcmpl-1"})).is_none());
    }

    #[test]
    fn display_names_the_param() {
        let f = Failure::invalid_request("n must be 1", Some("n"));
        assert_eq!(
            f.to_string(),
            "400 invalid_request_error: n must be 1 (param n)"
        );
    }
}
