//! Parsing a chat request once, in one linear pass, into what the gateway
//! decides on. The body itself is kept as received: every field the gateway
//! does not rewrite reaches a same-shape provider byte for byte, and a
//! rewritten `model` is spliced into its original place.
//!
//! Nothing here is worse than linear in the body: duplicate keys are found
//! with a hash set, arrays are counted without collecting their elements,
//! and nesting is bounded before any plugin sees the body.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{ApiError, Shape};

/// Longest `model` accepted, in bytes.
pub const MAX_MODEL_BYTES: usize = 256;
/// Deepest nesting of arrays and objects accepted. Below serde_json's own
/// limit (128), so a guest parsing the body with it never hits that first.
pub const MAX_NESTING: usize = 100;
/// Tool names kept for plugins; the rest are counted only.
const MAX_TOOL_NAMES: usize = 256;

/// What the gateway needs to know about a chat request, and the request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub shape: Shape,
    /// The body exactly as received.
    pub body: Bytes,
    /// The model string exactly as the client sent it (validated).
    pub model: String,
    /// Where the `model` value (quotes included) sits in `body`.
    model_span: Range<usize>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    pub message_count: u32,
    pub tool_count: u32,
    /// Names of the first tools offered.
    pub tool_names: Vec<String>,
    /// `max_tokens` or `max_completion_tokens` (the larger if both).
    pub max_output_tokens: Option<u64>,
    /// OpenAI `n`: choices generated, each up to the output bound.
    pub choices: u64,
    /// Image, document, file and audio parts in the messages and system.
    pub media_parts: u64,
    /// Text bytes in messages, system and tools, divided by four.
    pub estimated_input_tokens: u64,
}

/// What the one pass collects.
#[derive(Default)]
struct Fields<'a> {
    /// The key being read, to name it when its value is invalid.
    current: Option<Cow<'a, str>>,
    model: Option<(&'a RawValue, Cow<'a, str>)>,
    stream: Option<bool>,
    include_usage: bool,
    messages: Option<Counted>,
    system: Measure,
    tools: Option<Tools>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    n: Option<u64>,
}

impl ChatRequest {
    /// Parse and check the fields every request of `shape` must have.
    pub fn parse(shape: Shape, body: Bytes) -> Result<Self, ApiError> {
        if body.is_empty() {
            return Err(ApiError::bad_request("request body is empty"));
        }
        if nesting_exceeds(&body, MAX_NESTING) {
            return Err(ApiError::bad_request(format!(
                "request body nests arrays and objects deeper than {MAX_NESTING} levels"
            )));
        }
        let mut fields = Fields::default();
        let mut de = serde_json::Deserializer::from_slice(&body);
        let parsed = de
            .deserialize_map(FieldsVisitor(&mut fields))
            .and_then(|()| de.end());
        if let Err(e) = parsed {
            let mut err = ApiError::bad_request(match &fields.current {
                Some(k) => format!("invalid `{k}`: {e}"),
                None => format!("request body is not a valid JSON object: {e}"),
            });
            if let Some(k) = &fields.current {
                err = err.with_param(k.as_ref());
            }
            return Err(err);
        }
        let (raw_model, model) = fields.model.take().ok_or_else(|| missing("model"))?;
        validate_model(&model)?;
        let model_span = span_in(&body, raw_model.get());
        let model = model.into_owned();
        let messages = fields.messages.ok_or_else(|| missing("messages"))?;
        if messages.count == 0 {
            return Err(
                ApiError::bad_request("`messages` must have at least one entry")
                    .with_param("messages"),
            );
        }
        if shape == Shape::OpenAi {
            for (name, v) in [
                ("max_tokens", fields.max_tokens),
                ("max_completion_tokens", fields.max_completion_tokens),
            ] {
                if v == Some(0) {
                    return Err(
                        ApiError::bad_request(format!("`{name}` must be at least 1"))
                            .with_param(name),
                    );
                }
            }
        }
        if shape == Shape::Anthropic {
            match fields.max_tokens {
                None => return Err(missing("max_tokens")),
                Some(0) => {
                    return Err(ApiError::bad_request("`max_tokens` must be at least 1")
                        .with_param("max_tokens"));
                }
                Some(_) => {}
            }
        }
        let choices = match fields.n {
            None => 1,
            Some(n @ 1..=128) => n,
            Some(_) => {
                return Err(ApiError::bad_request("`n` must be between 1 and 128").with_param("n"));
            }
        };
        let tools = fields.tools.unwrap_or_default();
        let text = messages.text + fields.system.text + tools.text;
        Ok(Self {
            shape,
            model,
            model_span,
            stream: fields.stream.unwrap_or(false),
            include_usage: fields.include_usage,
            message_count: clamp_u32(messages.count),
            tool_count: clamp_u32(tools.count),
            tool_names: tools.names,
            // Both set: the larger bounds what a provider may generate.
            max_output_tokens: fields.max_tokens.max(fields.max_completion_tokens),
            choices,
            media_parts: messages.media + fields.system.media,
            estimated_input_tokens: text.div_ceil(4),
            body,
        })
    }

    /// The body with `model` set to `model`, every other byte kept.
    pub fn with_model(&self, model: &str) -> Bytes {
        if model == self.model {
            return self.body.clone();
        }
        splice_string(&self.body, self.model_span.clone(), model)
    }
}

/// `body` with its output bound set to `max_tokens` (replacing the
/// client's `max_completion_tokens` or `max_tokens` when it set one, else
/// as `field`) and, when `include_usage`, OpenAI stream usage asked for.
/// Only called when the budget or usage capture needs it: the body is
/// re-serialized (key order kept).
pub fn set_limits(
    body: &Bytes,
    shape: Shape,
    max_tokens: Option<u64>,
    field: &str,
    include_usage: bool,
) -> Result<Bytes, ApiError> {
    // A body that cannot be re-encoded (a number beyond f64 in a field the
    // gateway never reads) must not slip past its bound: refused.
    let mut map = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
        .map_err(|e| {
            ApiError::bad_request(format!("the request cannot be bounded to its budget: {e}"))
        })?;
    if let Some(n) = max_tokens {
        let present: Vec<&str> = ["max_tokens", "max_completion_tokens"]
            .into_iter()
            .filter(|k| shape == Shape::OpenAi || *k == "max_tokens")
            .filter(|k| map.contains_key(*k))
            .collect();
        let keys = if present.is_empty() {
            vec![field]
        } else {
            present
        };
        for key in keys {
            map.insert(key.to_owned(), n.into());
        }
    }
    if include_usage {
        let opts = map
            .entry("stream_options")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !opts.is_object() {
            *opts = serde_json::Value::Object(Default::default());
        }
        opts["include_usage"] = true.into();
    }
    Ok(Bytes::from(
        serde_json::to_vec(&map).expect("a JSON map serializes"),
    ))
}

/// `body` with the JSON value at `span` replaced by the string `value`.
pub fn splice_string(body: &[u8], span: Range<usize>, value: &str) -> Bytes {
    let json = serde_json::to_string(value).expect("serializing a string cannot fail");
    let mut out = BytesMut::with_capacity(body.len() + json.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    out.freeze()
}

/// Where the top-level `model` value of a JSON object sits, if it has one
/// (for echoing the client's model in a provider's response).
pub fn top_level_model_span(json: &[u8]) -> Option<Range<usize>> {
    struct Finder<'a>(&'a [u8]);
    impl<'de> Visitor<'de> for Finder<'de> {
        type Value = Option<Range<usize>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut found = None;
            while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                if key == "model" && found.is_none() {
                    let raw: &'de RawValue = map.next_value()?;
                    found = Some(span_in(self.0, raw.get()));
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    de.deserialize_map(Finder(json)).ok().flatten()
}

/// The byte range of `inner`, a slice borrowed from `outer`.
fn span_in(outer: &[u8], inner: &str) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

/// A `model` is 1 to [`MAX_MODEL_BYTES`] bytes of printable text: it is
/// echoed in a response header and in logs.
pub fn validate_model(model: &str) -> Result<(), ApiError> {
    let fail = |why: &str| Err(ApiError::bad_request(format!("`model` {why}")).with_param("model"));
    if model.trim().is_empty() {
        return fail("must not be empty");
    }
    if model.len() > MAX_MODEL_BYTES {
        return fail(&format!("must be at most {MAX_MODEL_BYTES} bytes"));
    }
    if model.chars().any(char::is_control) {
        return fail("must not contain control characters");
    }
    Ok(())
}

fn missing(field: &str) -> ApiError {
    ApiError::bad_request(format!("`{field}` is required")).with_param(field)
}

fn clamp_u32(n: u64) -> u32 {
    n.min(u64::from(u32::MAX)) as u32
}

/// Whether arrays and objects in `json` nest deeper than `max`. One pass,
/// strings skipped; malformed input is left to the parser.
fn nesting_exceeds(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The top-level object: known fields decoded as they stream by, the rest
/// skipped, every key checked for duplicates.
struct FieldsVisitor<'f, 'a>(&'f mut Fields<'a>);

/// Keys seen so far: a short list for ordinary requests, a hash set once a
/// body has many keys.
enum Seen<'a> {
    Few(Vec<Cow<'a, str>>),
    Many(HashSet<Cow<'a, str>>),
}

impl<'a> Seen<'a> {
    const FEW: usize = 16;

    /// False when `key` was seen before.
    fn insert(&mut self, key: Cow<'a, str>) -> bool {
        match self {
            Seen::Few(v) if v.contains(&key) => false,
            Seen::Few(v) if v.len() < Self::FEW => {
                v.push(key);
                true
            }
            Seen::Few(v) => {
                let mut set: HashSet<Cow<'a, str>> = v.drain(..).collect();
                set.insert(key);
                *self = Seen::Many(set);
                true
            }
            Seen::Many(s) => s.insert(key),
        }
    }
}

impl<'de> Visitor<'de> for FieldsVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let f = self.0;
        let mut seen = Seen::Few(Vec::with_capacity(Seen::FEW));
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            f.current = Some(key.clone());
            match key.as_ref() {
                "model" => {
                    let raw: &'de RawValue = map.next_value()?;
                    let s: Cow<'de, str> = serde_json::from_str(raw.get())
                        .map_err(|_| de::Error::custom("expected a string"))?;
                    f.model = Some((raw, s));
                }
                "stream" => f.stream = map.next_value()?,
                "stream_options" => {
                    #[derive(Deserialize)]
                    struct StreamOptions {
                        #[serde(default)]
                        include_usage: bool,
                    }
                    let o: Option<StreamOptions> = map.next_value()?;
                    f.include_usage = o.is_some_and(|o| o.include_usage);
                }
                "messages" => f.messages = map.next_value_seed(CountSeq)?,
                "system" => f.system = map.next_value_seed(TextBytes)?,
                "tools" => f.tools = map.next_value_seed(ToolsSeed)?,
                "max_tokens" => f.max_tokens = map.next_value()?,
                "max_completion_tokens" => f.max_completion_tokens = map.next_value()?,
                "n" => f.n = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            f.current = None;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body unless it holds escapes. (serde's
/// own `Cow<str>` always allocates: three allocations per key made a body
/// of 800k keys take 0.85 s.)
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor).map(Key)
    }
}

/// Elements of an array, counted, and the text bytes in them.
#[derive(Debug, Default, Clone, Copy)]
struct Counted {
    count: u64,
    text: u64,
    media: u64,
}

/// Content parts a provider bills by what they hold, not by their bytes
/// (an image URL, a PDF).
const MEDIA_TYPES: &[&str] = &[
    "image_url",
    "image",
    "input_image",
    "document",
    "file",
    "input_file",
    "input_audio",
    "audio",
];

/// The bytes of the strings in a value, and its media parts.
#[derive(Debug, Default, Clone, Copy)]
struct Measure {
    text: u64,
    media: u64,
}

impl std::ops::AddAssign for Measure {
    fn add_assign(&mut self, o: Measure) {
        self.text += o.text;
        self.media += o.media;
    }
}

struct CountSeq;

impl<'de> DeserializeSeed<'de> for CountSeq {
    type Value = Option<Counted>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for CountSeq {
    type Value = Option<Counted>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut c = Counted::default();
        while let Some(m) = seq.next_element_seed(TextBytes)? {
            c.count += 1;
            c.text += m.text;
            c.media += m.media;
        }
        Ok(Some(c))
    }
}

/// Any JSON value, reduced to the bytes of the strings in it and the media
/// parts (objects whose `type` is one of [`MEDIA_TYPES`]).
#[derive(Clone, Copy)]
struct TextBytes;

impl<'de> DeserializeSeed<'de> for TextBytes {
    type Value = Measure;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Measure, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextBytes {
    type Value = Measure;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Measure, E> {
        Ok(Measure::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Measure, E> {
        Ok(Measure::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Measure, E> {
        Ok(Measure::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Measure, E> {
        Ok(Measure::default())
    }
    fn visit_unit<E>(self) -> Result<Measure, E> {
        Ok(Measure::default())
    }
    fn visit_none<E>(self) -> Result<Measure, E> {
        Ok(Measure::default())
    }
    fn visit_str<E>(self, s: &str) -> Result<Measure, E> {
        Ok(Measure {
            text: s.len() as u64,
            media: 0,
        })
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Measure, S::Error> {
        let mut n = Measure::default();
        while let Some(t) = seq.next_element_seed(self)? {
            n += t;
        }
        Ok(n)
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Measure, M::Error> {
        let mut n = Measure::default();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if k == "type" {
                let v: &'de RawValue = map.next_value()?;
                // Decoded: an escaped name (`image\u005furl`) is the same type.
                let tag = serde_json::from_str::<Key<'de>>(v.get()).ok();
                n.text += v.get().len() as u64;
                if tag.is_some_and(|Key(t)| MEDIA_TYPES.contains(&t.as_ref())) {
                    n.media += 1;
                }
            } else {
                n += map.next_value_seed(self)?;
            }
        }
        Ok(n)
    }
}

/// The `tools` array: counted, names of the first ones kept, text measured.
#[derive(Debug, Default)]
struct Tools {
    count: u64,
    names: Vec<String>,
    text: u64,
}

struct ToolsSeed;

impl<'de> DeserializeSeed<'de> for ToolsSeed {
    type Value = Option<Tools>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ToolsSeed {
    type Value = Option<Tools>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of tools")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let mut tools = Tools::default();
        while let Some((name, text)) = seq.next_element_seed(ToolSeed)? {
            tools.count += 1;
            tools.text += text;
            if let Some(name) = name
                && tools.names.len() < MAX_TOOL_NAMES
            {
                tools.names.push(name);
            }
        }
        Ok(Some(tools))
    }
}

/// One tool: OpenAI `{"type":"function","function":{"name":…}}` or
/// Anthropic `{"name":…}`.
struct ToolSeed;

impl<'de> DeserializeSeed<'de> for ToolSeed {
    type Value = (Option<String>, u64);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ToolSeed {
    type Value = (Option<String>, u64);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tool object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut name = None;
        let mut text = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "name" => {
                    let n: Cow<'de, str> = map.next_value()?;
                    text += n.len() as u64;
                    name = Some(n.into_owned());
                }
                "function" => {
                    let (n, t) = map.next_value_seed(ToolSeed)?;
                    text += t;
                    name = name.or(n);
                }
                _ => text += map.next_value_seed(TextBytes)?.text,
            }
        }
        Ok((name, text))
    }
}

#[cfg(test)]
mod test {
    #[test]
    fn limits_replace_every_bound_the_client_set_and_add_usage() {
        let body = Bytes::from_static(
            br#"{"model":"m","max_tokens":9000,"max_completion_tokens":50,"stream":true,"stream_options":{"x":1},"messages":[{"role":"user","content":"hi"}]}"#,
        );
        let r = ChatRequest::parse(Shape::OpenAi, body.clone()).unwrap();
        assert_eq!(r.max_output_tokens, Some(9000), "the larger bound counts");
        let out = set_limits(&body, Shape::OpenAi, Some(7), "max_tokens", true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (
                v["max_tokens"].as_u64(),
                v["max_completion_tokens"].as_u64()
            ),
            (Some(7), Some(7))
        );
        assert_eq!(
            v["stream_options"],
            serde_json::json!({"x": 1, "include_usage": true})
        );
        let plain =
            Bytes::from_static(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#);
        let out = set_limits(
            &plain,
            Shape::OpenAi,
            Some(5),
            "max_completion_tokens",
            false,
        )
        .unwrap();
        assert!(
            std::str::from_utf8(&out)
                .unwrap()
                .ends_with(r#""max_completion_tokens":5}"#)
        );
        // A body that cannot be re-encoded is refused, never sent unbounded.
        let huge = Bytes::from_static(
            br#"{"model":"m","x":1e999,"messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert!(set_limits(&huge, Shape::OpenAi, Some(5), "max_tokens", false).is_err());
    }

    #[test]
    fn media_parts_are_counted_wherever_and_however_they_are_written() {
        let body = Bytes::from_static(
            br#"{"model":"m","system":[{"type":"document","source":{}}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image\u005furl","image_url":{"url":"https://x"}}]},{"role":"tool","content":[{"type":"image","source":{}}]}]}"#,
        );
        assert_eq!(
            ChatRequest::parse(Shape::OpenAi, body).unwrap().media_parts,
            3
        );
    }

    #[test]
    fn n_is_bounded() {
        let parse = |n: &str| {
            let b =
                format!(r#"{{"model":"m","n":{n},"messages":[{{"role":"user","content":"hi"}}]}}"#);
            ChatRequest::parse(Shape::OpenAi, Bytes::from(b))
        };
        assert_eq!(parse("4").unwrap().choices, 4);
        assert!(parse("0").is_err());
        assert!(parse("129").is_err());
        assert!(parse("-1").is_err());
    }

    use super::*;

    fn parse(shape: Shape, body: &'static [u8]) -> Result<ChatRequest, ApiError> {
        ChatRequest::parse(shape, Bytes::from_static(body))
    }

    #[test]
    fn rewrites_model_in_place_and_keeps_every_other_byte() {
        let raw =
            br#"{"x":{"deep": [1, 2 ]},"model" : "a","messages":[{"role":"user","content":"hi"}]}"#;
        let req = parse(Shape::OpenAi, raw).unwrap();
        assert_eq!(req.model, "a");
        assert_eq!(
            std::str::from_utf8(&req.with_model("b\"c")).unwrap(),
            r#"{"x":{"deep": [1, 2 ]},"model" : "b\"c","messages":[{"role":"user","content":"hi"}]}"#
        );
        assert_eq!(req.with_model("a"), req.body);
    }

    #[test]
    fn collects_what_routing_needs() {
        let req = parse(
            Shape::OpenAi,
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
                "max_completion_tokens":7,"messages":[{"role":"user","content":"12345678"}],
                "tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#,
        )
        .unwrap();
        assert!(req.stream && req.include_usage);
        assert_eq!(req.message_count, 1);
        assert_eq!(req.max_output_tokens, Some(7));
        assert_eq!(req.tool_names, ["get_weather"]);
        // "user" + "12345678" + "function" + "get_weather" = 31 bytes.
        assert_eq!(req.estimated_input_tokens, 8);
    }

    #[test]
    fn validates_required_fields_per_shape() {
        let e = parse(Shape::OpenAi, br#"{"messages":[{}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = parse(Shape::Anthropic, br#"{"model":"m","messages":[{}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = parse(Shape::OpenAi, b"[1]").unwrap_err();
        assert_eq!(e.status, 400);
        let e = parse(Shape::OpenAi, br#"{"model":"a","model":"b"}"#).unwrap_err();
        assert!(e.message.contains("duplicate"), "{}", e.message);
        let e = parse(Shape::OpenAi, br#"{"model":"a","messages":{}}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        let e = parse(Shape::OpenAi, br#"{"model":7,"messages":[{}]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn model_must_be_short_and_printable() {
        for bad in [
            &br#"{"model":"a\nb","messages":[{}]}"#[..],
            br#"{"model":"a\u0000","messages":[{}]}"#,
            br#"{"model":"  ","messages":[{}]}"#,
        ] {
            let e = ChatRequest::parse(Shape::OpenAi, Bytes::from_static(bad)).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("model"), "{e:?}");
        }
        let long = format!(r#"{{"model":"{}","messages":[{{}}]}}"#, "m".repeat(257));
        let e = ChatRequest::parse(Shape::OpenAi, Bytes::from(long)).unwrap_err();
        assert!(e.message.contains("256"), "{}", e.message);
    }

    #[test]
    fn escaped_keys_are_decoded_and_deep_nesting_refused() {
        let req = parse(Shape::OpenAi, br#"{"mo\u0064el":"x","messages":[1]}"#).unwrap();
        assert_eq!(req.model, "x");
        let deep = format!(
            r#"{{"model":"x","messages":[1],"junk":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let e = ChatRequest::parse(Shape::OpenAi, Bytes::from(deep)).unwrap_err();
        assert!(e.message.contains("deeper"), "{}", e.message);
        // Brackets inside strings do not count.
        let quoted = format!(r#"{{"model":"x","messages":["{}"]}}"#, "[".repeat(500));
        assert!(ChatRequest::parse(Shape::OpenAi, Bytes::from(quoted)).is_ok());
    }

    #[test]
    fn many_keys_and_many_elements_parse_in_linear_time() {
        let mut body = String::from(r#"{"model":"x","messages":["#);
        body.push_str(&"{},".repeat(1_000_000));
        body.push_str("{}]");
        for i in 0..200_000 {
            body.push_str(&format!(",\"k{i}\":0"));
        }
        body.push('}');
        let started = std::time::Instant::now();
        let req = ChatRequest::parse(Shape::OpenAi, Bytes::from(body)).unwrap();
        assert_eq!(req.message_count, 1_000_001);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn finds_the_top_level_model_of_a_response() {
        let body = br#"{"id":"x","choices":[{"model":"inner"}],"model":"gpt"}"#;
        let span = top_level_model_span(body).unwrap();
        assert_eq!(&body[span.clone()], br#""gpt""#);
        assert_eq!(
            &splice_string(body, span, "mock:gpt")[..],
            br#"{"id":"x","choices":[{"model":"inner"}],"model":"mock:gpt"}"#
        );
        assert!(top_level_model_span(b"{not json").is_none());
    }
}
