//! The placeholder → original map of one exchange, read back from the
//! state the request side handed over.

use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Vault {
    originals: HashMap<String, String>,
    /// The placeholders, sorted, to answer "could this grow into one?"
    /// with a binary search instead of a walk over all of them.
    sorted: Vec<String>,
    longest: usize,
}

/// A state that is not one this plugin wrote.
#[derive(Debug, PartialEq, Eq)]
pub struct BadState(pub String);

impl Vault {
    pub fn from_state(state: &str) -> Result<Vault, BadState> {
        let map: HashMap<String, String> =
            serde_json::from_str(state).map_err(|e| BadState(e.to_string()))?;
        if let Some(p) = map.keys().find(|p| !is_placeholder(p)) {
            return Err(BadState(format!("{p:?} is not a placeholder")));
        }
        let mut sorted: Vec<String> = map.keys().cloned().collect();
        sorted.sort_unstable();
        Ok(Vault {
            longest: sorted.iter().map(String::len).max().unwrap_or(0),
            originals: map,
            sorted,
        })
    }

    pub fn original(&self, placeholder: &str) -> Option<&str> {
        self.originals.get(placeholder).map(String::as_str)
    }

    /// Length in bytes of the longest placeholder.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// Whether `text` is a proper prefix of a placeholder in the map, i.e.
    /// more text could still make it one.
    pub fn may_become(&self, text: &str) -> bool {
        if text.is_empty() {
            return false;
        }
        let at = self.sorted.partition_point(|p| p.as_str() < text);
        self.sorted
            .get(at)
            .is_some_and(|p| p.len() > text.len() && p.starts_with(text))
    }
}

/// What the carry and the restore rely on: `[` only first, `]` only last.
fn is_placeholder(p: &str) -> bool {
    let inner = p.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
    inner.is_some_and(|i| !i.is_empty() && !i.contains(['[', ']']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_state(r#"{"[EMAIL_1]":"a@x.io","[EMAIL_12]":"b@x.io","[PHONE_1]":"+1"}"#)
            .unwrap()
    }

    #[test]
    fn lookups() {
        let v = vault();
        assert_eq!(v.original("[EMAIL_12]"), Some("b@x.io"));
        assert_eq!(v.original("[EMAIL_2]"), None);
        assert_eq!(v.longest(), "[EMAIL_12]".len());
    }

    #[test]
    fn prefixes_that_may_still_become_placeholders() {
        let v = vault();
        for p in ["[", "[E", "[EMAIL_", "[EMAIL_1", "[P", "[PHONE_1"] {
            assert!(v.may_become(p), "{p}");
        }
        for p in ["", "[EMAIL_1]", "[EMAIL_2", "[X", "EMAIL", "[PHONE_1]"] {
            assert!(!v.may_become(p), "{p}");
        }
    }

    #[test]
    fn foreign_state_is_refused() {
        assert!(Vault::from_state("not json").is_err());
        assert!(Vault::from_state(r#"{"EMAIL_1":"a"}"#).is_err());
        assert!(Vault::from_state(r#"{"[A]B]":"a"}"#).is_err());
        assert!(Vault::from_state(r#"{"[A]":1}"#).is_err());
    }
}
