//! Visiting every string value of a JSON document (object keys are not
//! visited), in document order, with what is known about where it sits.
//!
//! Recursion is bounded by serde_json's parser (128 levels); the host
//! refuses requests nested deeper than 100 before any plugin sees them.

use serde_json::Value;

/// Where a string value sits.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// The member name it sits under; an array's elements sit under the
    /// array's (`"stop": ["x"]` gives `x` the key `stop`).
    pub key: Option<&'a str>,
    /// The member name of the object that holds it (arrays in between are
    /// transparent), e.g. `input_audio` for `{"input_audio": {"data": …}}`.
    pub parent_key: Option<&'a str>,
    /// The `type` member of the object that holds it, when it is a string.
    pub parent_type: Option<&'a str>,
    /// Whether it is a member of the top-level object.
    pub top_level: bool,
}

impl Site<'_> {
    /// OpenAI tool-call arguments (`function.arguments`, and the older
    /// `function_call.arguments`): JSON text inside a string. A tool's own
    /// input field that happens to be called `arguments` is not.
    pub fn is_tool_arguments(&self) -> bool {
        self.key == Some("arguments")
            && matches!(self.parent_key, Some("function" | "function_call"))
    }
}

impl Site<'_> {
    /// Anthropic thinking text: the provider's own, signed. Changing it (a
    /// restored original, or a placeholder put back) fails the signature
    /// check when the client sends the block back, and it holds nothing
    /// the provider has not seen: it is neither scanned nor restored.
    pub fn is_thinking(&self) -> bool {
        self.key == Some("thinking") && self.parent_type == Some("thinking")
    }
}

/// Calls `f` on every string value; `f` may change it and says whether it
/// did. Returns whether anything changed.
pub fn strings(value: &mut Value, f: &mut dyn FnMut(&Site, &mut String) -> bool) -> bool {
    visit(value, None, None, true, f)
}

fn visit(
    value: &mut Value,
    key: Option<&str>,
    parent_key: Option<&str>,
    top: bool,
    f: &mut dyn FnMut(&Site, &mut String) -> bool,
) -> bool {
    match value {
        Value::String(s) => {
            let site = Site {
                key,
                parent_key,
                parent_type: None,
                top_level: false,
            };
            f(&site, s)
        }
        Value::Array(items) => {
            let mut changed = false;
            for item in items {
                changed |= visit(item, key, parent_key, false, f);
            }
            changed
        }
        Value::Object(members) => {
            // Known before the members are borrowed mutably; a `type` is
            // short, so the copy is cheap.
            let parent_type = match members.get("type") {
                Some(Value::String(t)) => Some(t.clone()),
                _ => None,
            };
            let mut changed = false;
            for (name, member) in members.iter_mut() {
                changed |= match member {
                    Value::String(s) => {
                        let site = Site {
                            key: Some(name),
                            parent_key: key,
                            parent_type: parent_type.as_deref(),
                            top_level: top,
                        };
                        f(&site, s)
                    }
                    _ => visit(member, Some(name), key, false, f),
                };
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn visits_values_in_order_with_their_site() {
        let mut v = json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "input_audio", "input_audio": {"data": "AAA"}}
            ]}],
            "stop": ["x", "y"]
        });
        let mut seen = Vec::new();
        strings(&mut v, &mut |site, s| {
            seen.push(format!(
                "{}:{}:{}:{}:{}",
                site.key.unwrap_or("-"),
                site.parent_key.unwrap_or("-"),
                site.parent_type.unwrap_or("-"),
                site.top_level,
                s
            ));
            false
        });
        assert_eq!(
            seen,
            [
                "model:-:-:true:m",
                "role:messages:-:false:user",
                "type:content:text:false:text",
                "text:content:text:false:hi",
                "type:content:input_audio:false:input_audio",
                "data:input_audio:-:false:AAA",
                "stop:-:-:false:x",
                "stop:-:-:false:y",
            ]
        );
    }

    #[test]
    fn changes_are_kept_and_reported() {
        let mut v = json!({"a": ["x", {"b": "x"}], "c": "y"});
        let changed = strings(&mut v, &mut |_, s| {
            if s == "x" {
                *s = "z".into();
                true
            } else {
                false
            }
        });
        assert!(changed);
        assert_eq!(v, json!({"a": ["z", {"b": "z"}], "c": "y"}));
        assert!(!strings(&mut v, &mut |_, _| false));
    }
}
