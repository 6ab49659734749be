//! The carry buffer of one text stream (a choice's content, a tool call's
//! arguments, a content block): holds back a tail that may still grow into
//! a placeholder, so a placeholder split across events is restored whole.

use crate::restore::{Escape, restore_into};
use crate::vault::Vault;

#[derive(Debug)]
pub struct Carry {
    held: String,
    escape: Escape,
}

impl Carry {
    pub fn new(escape: Escape) -> Self {
        Self {
            held: String::new(),
            escape,
        }
    }

    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// The text to send for `delta`: what was held, then `delta`, restored,
    /// less a tail that may still become a placeholder (held for the next
    /// delta). Work is proportional to the delta plus the held tail.
    pub fn feed(&mut self, delta: &str, vault: &Vault) -> String {
        let text = self.joined(delta);
        let keep = hold_point(&text, vault);
        let mut out = String::with_capacity(text.len());
        restore_into(&text[..keep], vault, self.escape, &mut out);
        self.held = text[keep..].to_owned();
        out
    }

    /// Like `feed`, for the stream's last delta: nothing is held back.
    pub fn feed_last(&mut self, delta: &str, vault: &Vault) -> String {
        let text = self.joined(delta);
        let mut out = String::with_capacity(text.len());
        restore_into(&text, vault, self.escape, &mut out);
        out
    }

    /// What is held, as is: it never became a placeholder.
    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    fn joined(&mut self, delta: &str) -> String {
        let mut text = std::mem::take(&mut self.held);
        text.push_str(delta);
        text
    }
}

/// Where the tail to hold starts (`text.len()` when there is none). A
/// placeholder has `[` only first, so only the last `[` can start a prefix
/// of one, and only if it is closer to the end than the longest one.
fn hold_point(text: &str, vault: &Vault) -> usize {
    let b = text.as_bytes();
    let lo = b.len().saturating_sub(vault.longest().saturating_sub(1));
    match b[lo..].iter().rposition(|&c| c == b'[') {
        Some(p) if vault.may_become(&text[lo + p..]) => lo + p,
        _ => b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_state(r#"{"[EMAIL_1]":"a@x.io","[EMAIL_12]":"b@x.io"}"#).unwrap()
    }

    #[test]
    fn holds_only_what_may_become_a_placeholder() {
        let v = vault();
        let mut c = Carry::new(Escape::Plain);
        assert_eq!(c.feed("hi [EM", &v), "hi ");
        assert!(c.is_holding());
        assert_eq!(c.feed("AIL_1", &v), "");
        assert_eq!(c.feed("2] and [", &v), "b@x.io and ");
        assert_eq!(c.feed("EMAIL_1] [x", &v), "a@x.io [x");
        assert!(!c.is_holding());
        assert_eq!(c.feed("[EMAIL_1", &v), "");
        assert_eq!(c.feed_last("", &v), "[EMAIL_1");
        assert_eq!(c.feed("[EMAIL_", &v), "");
        assert_eq!(c.take(), "[EMAIL_");
        assert!(!c.is_holding());
    }

    #[test]
    fn a_placeholder_prefix_far_from_the_end_is_not_held() {
        let v = vault();
        let mut c = Carry::new(Escape::Plain);
        assert_eq!(
            c.feed("[EMAIL_1 is not closed", &v),
            "[EMAIL_1 is not closed"
        );
        assert_eq!(c.feed("[[", &v), "[");
        assert_eq!(c.take(), "[");
    }
}
