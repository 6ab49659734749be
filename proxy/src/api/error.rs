//! Errors as clients see them: a status and the envelope of their API shape.
//!
//! OpenAI: `{"error":{"message","type","param","code"}}`.
//! Anthropic: `{"type":"error","error":{"type","message"},"request_id"}`.

use std::borrow::Cow;

use serde_json::json;

use super::Shape;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// Machine-readable code (OpenAI `code`); Anthropic's envelope has no
    /// code, so there it only shapes the message.
    pub code: Cow<'static, str>,
    pub message: String,
    /// The request field to blame (OpenAI `param`).
    pub param: Option<String>,
    /// Seconds for `Retry-After`; 429 and 503 get at least 1.
    pub retry_after: Option<u64>,
    /// More fields of the error object (`key_id`, `scope`, `limit_usd`…),
    /// in both envelopes.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            param: None,
            retry_after: None,
            fields: Vec::new(),
        }
    }

    pub fn with_field(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// `Retry-After` for this error, if it has one.
    pub fn retry_after(&self) -> Option<u64> {
        match self.status {
            429 | 503 => Some(self.retry_after.unwrap_or(1).max(1)),
            _ => self.retry_after,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// The OpenAI `type` for this status.
    fn openai_type(&self) -> &'static str {
        match self.status {
            400 | 401 | 404 | 405 | 408 | 409 | 410 | 413 | 415 | 422 => "invalid_request_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            503 => "service_unavailable_error",
            _ => "server_error",
        }
    }

    /// The Anthropic `error.type` for this status.
    fn anthropic_type(&self) -> &'static str {
        match self.status {
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 | 529 => "overloaded_error",
            504 => "timeout_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        }
    }

    /// The JSON body in `shape`'s envelope.
    pub fn body(&self, shape: Shape, request_id: &str) -> Vec<u8> {
        let mut v = match shape {
            Shape::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.openai_type(),
                    "param": self.param,
                    "code": self.code,
                }
            }),
            Shape::Anthropic => json!({
                "type": "error",
                "error": {"type": self.anthropic_type(), "message": self.message},
                "request_id": request_id,
            }),
        };
        if let Some(obj) = v["error"].as_object_mut() {
            for (k, val) in &self.fields {
                obj.insert((*k).to_owned(), val.clone());
            }
        }
        serde_json::to_vec(&v).expect("serializing a JSON value cannot fail")
    }

    /// The error as the last event of a stream in `shape`'s format, for
    /// failures after the response head went out.
    pub fn stream_event(&self, shape: Shape, request_id: &str) -> Vec<u8> {
        let body = self.body(shape, request_id);
        let mut out = Vec::with_capacity(body.len() + 32);
        if shape == Shape::Anthropic {
            out.extend_from_slice(b"event: error\n");
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\n\n");
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn envelopes() {
        let e = ApiError::new(413, "request_too_large", "too big").with_param("messages");
        let o: serde_json::Value = serde_json::from_slice(&e.body(Shape::OpenAi, "r1")).unwrap();
        assert_eq!(o["error"]["type"], "invalid_request_error");
        assert_eq!(o["error"]["code"], "request_too_large");
        assert_eq!(o["error"]["param"], "messages");
        let a: serde_json::Value = serde_json::from_slice(&e.body(Shape::Anthropic, "r1")).unwrap();
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "request_too_large");
        assert_eq!(a["request_id"], "r1");
    }
}
