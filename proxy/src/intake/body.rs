//! Parsing a chat request once, shallowly: the top-level object is split
//! into borrowed raw fields, and only the few the gateway decides on are
//! decoded. Everything else is carried through byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ApiError, Shape};

/// The top-level fields of a JSON object, in order, values unparsed.
pub struct RequestBody<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RequestBody<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApiError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let fields = de
            .deserialize_map(FieldsVisitor)
            .and_then(|f| de.end().map(|()| f))
            .map_err(|e| {
                ApiError::bad_request(format!("request body is not a valid JSON object: {e}"))
            })?;
        Ok(Self { fields })
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Decode one field; `None` when absent or JSON `null`.
    pub fn decode<T: Deserialize<'a>>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|e| {
                ApiError::bad_request(format!("invalid `{key}`: {e}")).with_param(key)
            }),
        }
    }

    /// Re-emit the object with `key` set to the JSON text `value` (appended
    /// when absent). Other fields keep their exact bytes.
    pub fn with_field(&self, key: &str, value: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.fields
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + value.len()
                + key.len()
                + 8,
        );
        out.push(b'{');
        let mut replaced = false;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, k.as_ref()).expect("writing to a Vec cannot fail");
            out.push(b':');
            if k == key {
                out.extend_from_slice(value.as_bytes());
                replaced = true;
            } else {
                out.extend_from_slice(v.get().as_bytes());
            }
        }
        if !replaced {
            if !self.fields.is_empty() {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key).expect("writing to a Vec cannot fail");
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        }
        out.push(b'}');
        out
    }
}

struct FieldsVisitor;

/// A key that borrows from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v: &'de RawValue = map.next_value()?;
            if fields.iter().any(|(seen, _): &(Cow<str>, _)| *seen == k) {
                return Err(de::Error::custom(format!("duplicate field `{k}`")));
            }
            fields.push((k, v));
        }
        Ok(fields)
    }
}

/// What the gateway needs to know about a chat request.
pub struct ChatRequest<'a> {
    pub shape: Shape,
    pub body: RequestBody<'a>,
    /// The model string exactly as the client sent it.
    pub model: Cow<'a, str>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    pub message_count: u32,
    pub has_tools: bool,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

impl<'a> ChatRequest<'a> {
    /// Parse and check the fields every request of `shape` must have.
    pub fn parse(shape: Shape, bytes: &'a [u8]) -> Result<Self, ApiError> {
        let body = RequestBody::parse(bytes)?;
        let model: Cow<'a, str> = body.decode("model")?.ok_or_else(|| missing("model"))?;
        if model.trim().is_empty() {
            return Err(ApiError::bad_request("`model` must not be empty").with_param("model"));
        }
        let messages: Vec<&'a RawValue> = body
            .decode("messages")?
            .ok_or_else(|| missing("messages"))?;
        if messages.is_empty() {
            return Err(
                ApiError::bad_request("`messages` must have at least one entry")
                    .with_param("messages"),
            );
        }
        if shape == Shape::Anthropic {
            let max_tokens: u64 = body
                .decode("max_tokens")?
                .ok_or_else(|| missing("max_tokens"))?;
            if max_tokens == 0 {
                return Err(ApiError::bad_request("`max_tokens` must be at least 1")
                    .with_param("max_tokens"));
            }
        }
        let stream = body.decode::<bool>("stream")?.unwrap_or(false);
        let include_usage = body
            .decode::<StreamOptions>("stream_options")?
            .is_some_and(|o| o.include_usage);
        let has_tools = body
            .decode::<Vec<&'a RawValue>>("tools")?
            .is_some_and(|t| !t.is_empty());
        Ok(Self {
            shape,
            body,
            model,
            stream,
            include_usage,
            message_count: messages.len().min(u32::MAX as usize) as u32,
            has_tools,
        })
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_request(format!("`{field}` is required")).with_param(field)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn keeps_unknown_fields_byte_for_byte() {
        let raw =
            br#"{"model":"a","x":{"deep": [1, 2 ]},"messages":[{"role":"user","content":"hi"}]}"#;
        let req = ChatRequest::parse(Shape::OpenAi, raw).unwrap();
        assert_eq!(req.model, "a");
        let out = req.body.with_field("model", "\"b\"");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"model":"b","x":{"deep": [1, 2 ]},"messages":[{"role":"user","content":"hi"}]}"#
        );
    }

    #[test]
    fn validates_required_fields_per_shape() {
        let e = ChatRequest::parse(Shape::OpenAi, br#"{"messages":[{}]}"#)
            .err()
            .unwrap();
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = ChatRequest::parse(Shape::Anthropic, br#"{"model":"m","messages":[{}]}"#)
            .err()
            .unwrap();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = ChatRequest::parse(Shape::OpenAi, b"[1]").err().unwrap();
        assert_eq!(e.status, 400);
        let e = ChatRequest::parse(Shape::OpenAi, br#"{"model":"a","model":"b"}"#)
            .err()
            .unwrap();
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn escaped_keys_are_decoded() {
        let body = RequestBody::parse(br#"{"mo\u0064el":"x"}"#).unwrap();
        assert_eq!(
            body.decode::<String>("model").unwrap().as_deref(),
            Some("x")
        );
    }
}
