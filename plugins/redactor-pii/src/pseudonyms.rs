//! Assigning placeholders to the values of one request.
//!
//! Numbers count per kind in order of first occurrence, so a conversation
//! that grows turn by turn keeps the placeholders of its first turns. A
//! number whose placeholder the client already wrote is skipped, so the
//! model never sees one placeholder standing for two things.

use crate::kind::Kind;
use crate::placeholder;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub struct Pseudonyms {
    /// Placeholder-shaped strings already in the client's text.
    reserved: HashSet<String>,
    by_value: HashMap<(Kind, String), usize>,
    /// Last number given per kind.
    counters: [u32; Kind::ALL.len()],
    /// `(placeholder, original)` in order of assignment.
    entries: Vec<(String, String)>,
}

impl Pseudonyms {
    pub fn new(reserved: HashSet<String>) -> Self {
        Self {
            reserved,
            ..Self::default()
        }
    }

    /// The placeholder of `original`, the same one each time it recurs.
    pub fn placeholder(&mut self, kind: Kind, original: &str) -> &str {
        let key = (kind, original.to_owned());
        let index = match self.by_value.get(&key) {
            Some(&i) => i,
            None => {
                let counter = &mut self.counters[kind as usize];
                let name = loop {
                    *counter += 1;
                    let name = placeholder::format(kind, *counter);
                    if !self.reserved.contains(&name) {
                        break name;
                    }
                };
                self.entries.push((name, key.1.clone()));
                self.by_value.insert(key, self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        &self.entries[index].0
    }

    /// The state handed to the response side: a JSON object from
    /// placeholder to original, or `None` when nothing was replaced.
    pub fn into_state(self) -> Option<String> {
        if self.entries.is_empty() {
            return None;
        }
        let map: serde_json::Map<String, serde_json::Value> = self
            .entries
            .into_iter()
            .map(|(p, o)| (p, serde_json::Value::String(o)))
            .collect();
        Some(serde_json::Value::Object(map).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_count_per_kind_and_repeat_for_the_same_value() {
        let mut p = Pseudonyms::default();
        assert_eq!(p.placeholder(Kind::Email, "a@x.io"), "[EMAIL_1]");
        assert_eq!(p.placeholder(Kind::Phone, "+1 555"), "[PHONE_1]");
        assert_eq!(p.placeholder(Kind::Email, "b@x.io"), "[EMAIL_2]");
        assert_eq!(p.placeholder(Kind::Email, "a@x.io"), "[EMAIL_1]");
        assert_eq!(
            p.into_state().unwrap(),
            r#"{"[EMAIL_1]":"a@x.io","[PHONE_1]":"+1 555","[EMAIL_2]":"b@x.io"}"#
        );
    }

    #[test]
    fn reserved_placeholders_are_skipped() {
        let reserved = ["[EMAIL_1]".to_owned(), "[EMAIL_3]".to_owned()].into();
        let mut p = Pseudonyms::new(reserved);
        assert_eq!(p.placeholder(Kind::Email, "a@x.io"), "[EMAIL_2]");
        assert_eq!(p.placeholder(Kind::Email, "b@x.io"), "[EMAIL_4]");
    }

    #[test]
    fn nothing_replaced_is_no_state() {
        assert_eq!(Pseudonyms::default().into_state(), None);
    }
}
