//! What the stream and response tests share: a pseudonymized request, its
//! map, and an answer that uses every placeholder of it.

#![allow(dead_code)]

use redactor_pii::config::Config;
use redactor_pii::request;
use redactor_pii::vault::Vault;
use serde_json::{Value, json};
use std::sync::OnceLock;

pub const KEY: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n+x/yZ==\n-----END RSA PRIVATE KEY-----";
pub const EMAIL: &str = "jürgen@bücher.de";
pub const CARD: &str = "4111 1111 1111 1111";
pub const PHONE: &str = "+44 20 7946 0958";
pub const IBAN: &str = "DE89 3704 0044 0532 0130 00";

/// The map of [`pseudonymized`], made once.
pub fn vault() -> Vault {
    static VAULT: OnceLock<Vault> = OnceLock::new();
    VAULT.get_or_init(|| pseudonymized().1).clone()
}

/// A request mentioning several values, pseudonymized with the defaults.
pub fn pseudonymized() -> (Value, Vault) {
    let body = json!({"model": "m", "messages": [{"role": "user", "content":
        format!("I am {EMAIL}, card {CARD}, phone {PHONE}, iban {IBAN}, key:\n{KEY}\n")}]});
    let r = request::redact(&Config::default(), &body.to_string()).unwrap();
    let state = r.state.expect("values were found");
    let sent: Value = serde_json::from_str(&r.body.unwrap()).unwrap();
    (sent, Vault::from_state(&state).unwrap())
}

/// An answer using every placeholder (and one the map does not know), and
/// what the client must read instead.
pub fn answer() -> (String, String) {
    let text = "Grüße [EMAIL_1]! Card [CREDIT_CARD_1] — phone [PHONE_1][IBAN_1]. \
                Keep [PRIVATE_KEY_1] safe; [EMAIL_9] is not yours. [EMAIL_1]";
    let want = text
        .replace("[EMAIL_1]", EMAIL)
        .replace("[CREDIT_CARD_1]", CARD)
        .replace("[PHONE_1]", PHONE)
        .replace("[IBAN_1]", IBAN)
        .replace("[PRIVATE_KEY_1]", KEY);
    (text.to_owned(), want)
}

/// Tool-call arguments (JSON text) using placeholders, and the value the
/// restored arguments must parse to.
pub fn arguments() -> (String, Value) {
    let args = r#"{"to":"[EMAIL_1]","key":"[PRIVATE_KEY_1]","note":"[CREDIT_CARD_1] ok"}"#;
    let want = json!({"to": EMAIL, "key": KEY, "note": format!("{CARD} ok")});
    (args.to_owned(), want)
}

/// Every char boundary of `s`, ends included.
pub fn boundaries(s: &str) -> Vec<usize> {
    (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect()
}

/// `s` cut at `cuts` (sorted boundaries).
pub fn pieces<'a>(s: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts {
        out.push(&s[from..c]);
        from = c;
    }
    out.push(&s[from..]);
    out
}

/// Every way to cut `s` at a char boundary into two pieces; then every
/// way to cut it twice within one placeholder, or within placeholders that
/// touch (`[PHONE_1][IBAN_1]`), edges included. Two cuts in separate
/// placeholders each behave like a two-piece case (the carry is empty
/// between them), and all pairs would make the suite quadratic in the
/// whole text.
pub fn splits(s: &str) -> Vec<Vec<&str>> {
    let b = boundaries(s);
    let mut out: Vec<Vec<&str>> = b.iter().map(|&c| pieces(s, &[c])).collect();
    for (start, end) in clusters(s) {
        let hot: Vec<usize> = b
            .iter()
            .copied()
            .filter(|c| (start..=end).contains(c))
            .collect();
        for (i, &x) in hot.iter().enumerate() {
            for &y in &hot[i..] {
                out.push(pieces(s, &[x, y]));
            }
        }
    }
    out
}

/// `[…]` spans of `s` (an unclosed one runs to the end), touching ones
/// merged.
fn clusters(s: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut from = 0;
    while let Some(open) = s[from..].find('[').map(|o| from + o) {
        let end = s[open..].find(']').map_or(s.len(), |c| open + c + 1);
        match out.last_mut() {
            Some(last) if open <= last.1 => last.1 = last.1.max(end),
            _ => out.push((open, end)),
        }
        from = open + 1;
    }
    out
}
