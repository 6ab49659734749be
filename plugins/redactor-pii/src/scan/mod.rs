//! Finding sensitive values in decoded text.
//!
//! Every scanner is hand-written and linear in its input: a failed attempt
//! never makes a later one re-read the same bytes more than a bounded number
//! of times (each module says how). Matches are byte ranges on character
//! boundaries: every scanner starts and ends a match next to ASCII bytes,
//! which are never part of a multi-byte character.

mod card;
mod chars;
mod email;
mod iban;
mod ip;
mod phone;
mod private_key;
mod tokens;

use crate::kind::{Kind, KindSet};

/// One value found: `text[start..end]` is a `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

impl Match {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

const TOKENS: &[Kind] = &[
    Kind::Jwt,
    Kind::AwsAccessKey,
    Kind::AnthropicKey,
    Kind::OpenaiKey,
    Kind::GcpApiKey,
    Kind::GithubToken,
];

/// The values of `kinds` in `text`, left to right, none overlapping.
///
/// Overlapping matches are merged into one span rather than one of them
/// chosen: choosing would leave the rest of the other visible (a key that
/// is the local part of an address would leave `@example.com`). The merged
/// span is named after its longest member.
pub fn find(text: &str, kinds: KindSet) -> Vec<Match> {
    let mut found = Vec::new();
    if kinds.contains(Kind::PrivateKey) {
        private_key::find(text, &mut found);
    }
    if kinds.any_of(TOKENS) {
        tokens::find(text, &mut found);
    }
    if kinds.contains(Kind::Email) {
        email::find(text, &mut found);
    }
    if kinds.contains(Kind::Iban) {
        iban::find(text, &mut found);
    }
    if kinds.contains(Kind::CreditCard) {
        card::find(text, &mut found);
    }
    if kinds.contains(Kind::IpAddress) {
        ip::find(text, &mut found);
    }
    if kinds.contains(Kind::Phone) {
        phone::find(text, &mut found);
    }
    found.retain(|m| kinds.contains(m.kind));
    merge(found)
}

fn merge(mut found: Vec<Match>) -> Vec<Match> {
    found.sort_unstable_by_key(|m| (m.start, m.kind));
    let mut out: Vec<Match> = Vec::with_capacity(found.len());
    // The longest member of the span being built names it.
    let mut longest = 0;
    for m in found {
        match out.last_mut() {
            Some(last) if m.start < last.end => {
                if m.len() > longest {
                    longest = m.len();
                    last.kind = m.kind;
                }
                last.end = last.end.max(m.end);
            }
            _ => {
                longest = m.len();
                out.push(m);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_in(text: &str) -> Vec<(Kind, &str)> {
        find(text, KindSet::all())
            .into_iter()
            .map(|m| (m.kind, &text[m.start..m.end]))
            .collect()
    }

    #[test]
    fn every_kind_is_found_in_one_text() {
        let text = "mail bob@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, \
                    iban DE89 3704 0044 0532 0130 00, host 10.0.0.1 or fe80::1, \
                    AKIAIOSFODNN7EXAMPLE, eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl, \
                    sk-proj-abcdefghijklmnopqrstuvwx sk-ant-api03-abcdefghijklmnopqrst \
                    AIzaSyA-1234567890abcdefghijklmnopqrstu ghp_abcdefghijklmnopqrstuvwxyz0123456789 \
                    -----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----";
        let found: Vec<Kind> = kinds_in(text).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            found,
            vec![
                Kind::Email,
                Kind::Phone,
                Kind::CreditCard,
                Kind::Iban,
                Kind::IpAddress,
                Kind::IpAddress,
                Kind::AwsAccessKey,
                Kind::Jwt,
                Kind::OpenaiKey,
                Kind::AnthropicKey,
                Kind::GcpApiKey,
                Kind::GithubToken,
                Kind::PrivateKey,
            ]
        );
    }

    #[test]
    fn overlaps_merge_into_the_longest_kind() {
        let text = "x sk-abcdefghijklmnopqrstuvwxyz@example.com y";
        assert_eq!(
            kinds_in(text),
            vec![(Kind::Email, "sk-abcdefghijklmnopqrstuvwxyz@example.com")]
        );
        // An IP address is also a national phone form; equal spans take the
        // more specific kind.
        assert_eq!(
            kinds_in("at 192.168.100.200 now"),
            vec![(Kind::IpAddress, "192.168.100.200")]
        );
    }

    #[test]
    fn disabled_kinds_neither_match_nor_shadow() {
        let text = "sk-abcdefghijklmnopqrstuvwxyz@example.com";
        let keys: KindSet = [Kind::OpenaiKey].into_iter().collect();
        let found = find(text, keys);
        assert_eq!(found.len(), 1);
        assert_eq!(
            &text[found[0].start..found[0].end],
            "sk-abcdefghijklmnopqrstuvwxyz"
        );
        assert!(find(text, KindSet::default()).is_empty());
    }
}
