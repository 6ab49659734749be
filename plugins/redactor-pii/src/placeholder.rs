//! The placeholder syntax: `[<KIND>_<n>]`, e.g. `[EMAIL_1]`, `[CREDIT_CARD_2]`.
//!
//! Placeholders are plain ASCII with no character JSON escapes, so they read
//! the same in a JSON text as in decoded text. Only the first character is
//! `[` and only the last is `]`, which the stream carry relies on.

use crate::kind::Kind;
use std::collections::HashSet;

/// The longest placeholder body looked at when reading literal ones
/// (`AWS_ACCESS_KEY_` plus a ten-digit number, with room to spare).
const BODY_MAX: usize = 32;

pub fn format(kind: Kind, n: u32) -> String {
    format!("[{}_{n}]", kind.label())
}

/// Adds to `out` every placeholder-shaped string in `text`, known kind or
/// not in the map: a client's own `[EMAIL_1]` must not be confused with
/// one of ours. Each `[` reads at most `BODY_MAX` bytes.
pub fn literals_in(text: &str, out: &mut HashSet<String>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(off) = b[from..].iter().position(|&c| c == b'[') {
        let open = from + off;
        let body = b[open + 1..]
            .iter()
            .take(BODY_MAX)
            .take_while(|&&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
            .count();
        let close = open + 1 + body;
        if b.get(close) == Some(&b']') && is_body(&text[open + 1..close]) {
            out.insert(text[open..=close].to_owned());
        }
        from = open + 1;
    }
}

/// `LABEL_n` for a known kind label and a number without leading zeros.
fn is_body(body: &str) -> bool {
    let Some((label, n)) = body.rsplit_once('_') else {
        return false;
    };
    !n.is_empty()
        && !n.starts_with('0')
        && n.bytes().all(|c| c.is_ascii_digit())
        && Kind::ALL.iter().any(|k| k.label() == label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format(Kind::Email, 1), "[EMAIL_1]");
        assert_eq!(format(Kind::CreditCard, 12), "[CREDIT_CARD_12]");
    }

    #[test]
    fn finds_literal_placeholders() {
        let mut out = HashSet::new();
        literals_in(
            "see [EMAIL_1], [[PHONE_22]] [IP_ADDRESS_3 [NAME_1] [EMAIL_01] [EMAIL_] [email_1]",
            &mut out,
        );
        let mut got: Vec<_> = out.into_iter().collect();
        got.sort();
        assert_eq!(got, ["[EMAIL_1]", "[PHONE_22]"]);
    }
}
