//! Hand-written scanners for e-mail addresses and API-key-like tokens.
//!
//! The input is JSON text (a request or response body, or one SSE event's
//! `data`), scanned as plain text: a match is replaced in place, so the rest
//! of the bytes are kept exactly. Matches are cut on character boundaries,
//! never start inside a JSON escape (`\n`, `\u00e9`) and never include a
//! `\` or `"`; the replacements contain neither, so a valid JSON text stays
//! valid.

use serde_json::Value;

/// What to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub emails: bool,
    pub api_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            emails: true,
            api_keys: true,
        }
    }
}

impl Options {
    /// From a binding's config: `{"emails": bool, "api_keys": bool}`, each
    /// `true` unless given as `false`. Anything else is ignored.
    pub fn from_config(config: &Value) -> Self {
        let flag = |name: &str| config.get(name).and_then(Value::as_bool).unwrap_or(true);
        Self {
            emails: flag("emails"),
            api_keys: flag("api_keys"),
        }
    }
}

pub const EMAIL: &str = "[REDACTED:email]";
pub const API_KEY: &str = "[REDACTED:api_key]";

/// Minimum length of the token after `sk-`.
const SK_MIN: usize = 16;
/// Exact length of an AWS access key id after `AKIA`.
const AKIA_LEN: usize = 16;

/// `text` with every match replaced, or `None` when nothing matched.
pub fn redact(text: &str, opts: Options) -> Option<String> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    if opts.api_keys {
        find_api_keys(b, &mut spans);
    }
    if opts.emails {
        find_emails(text, &mut spans);
    }
    if spans.is_empty() {
        return None;
    }
    // Leftmost first; of two starting together, the longer. A span that
    // overlaps one already taken is dropped.
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for s in spans {
        if s.start < pos {
            continue;
        }
        out.push_str(&text[pos..s.start]);
        out.push_str(s.label);
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

#[derive(Debug)]
struct Span {
    start: usize,
    end: usize,
    label: &'static str,
}

/// Characters of a key token: `[A-Za-z0-9_-]`.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Whether byte `i` follows an odd run of backslashes, i.e. is the letter of
/// a JSON escape such as `\n`.
fn after_backslash(b: &[u8], i: usize) -> bool {
    let run = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
    run % 2 == 1
}

/// Whether byte `i` belongs to a JSON escape: the letter after `\`, or one
/// of the four hex digits of `\uXXXX`.
fn in_escape(b: &[u8], i: usize) -> bool {
    if after_backslash(b, i) {
        return true;
    }
    (1..=4).any(|k| {
        i >= k
            && b[i - k] == b'u'
            && after_backslash(b, i - k)
            && b[i - k + 1..=i].iter().all(u8::is_ascii_hexdigit)
    })
}

/// Whether a token may start at `i`: the byte before it is no token
/// character, or is part of a JSON escape (`\nsk-…` starts a token).
fn token_starts(b: &[u8], i: usize) -> bool {
    i == 0 || !is_token(b[i - 1]) || in_escape(b, i - 1)
}

/// `sk-` (which covers `sk-ant-`) followed by at least 16 `[A-Za-z0-9_-]`,
/// the whole run taken; `AKIA` followed by exactly 16 `[A-Z0-9]` and no
/// further letter or digit.
fn find_api_keys(b: &[u8], spans: &mut Vec<Span>) {
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"sk-") && token_starts(b, i) {
            let run = b[i + 3..].iter().take_while(|&&c| is_token(c)).count();
            if run >= SK_MIN {
                let end = i + 3 + run;
                spans.push(Span {
                    start: i,
                    end,
                    label: API_KEY,
                });
                i = end;
                continue;
            }
        } else if b[i..].starts_with(b"AKIA") && token_starts(b, i) {
            let body = &b[i + 4..];
            let run = body
                .iter()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                .count();
            let next_ok = body
                .get(AKIA_LEN)
                .is_none_or(|c| !c.is_ascii_alphanumeric());
            if run == AKIA_LEN && next_ok {
                let end = i + 4 + AKIA_LEN;
                spans.push(Span {
                    start: i,
                    end,
                    label: API_KEY,
                });
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// A local-part character: `[A-Za-z0-9._%+-]`, or any non-ASCII letter or
/// digit (internationalized addresses; on the safe side, this also takes in
/// letters of a script written without spaces, e.g. `日本語bob@…`).
fn is_local(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '.' | '_' | '%' | '+' | '-')
        || (!c.is_ascii() && c.is_alphanumeric())
}

fn is_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-') || (!c.is_ascii() && c.is_alphanumeric())
}

/// `local@domain.tld`: a non-empty local part (not starting with `.`), the
/// domain dot-separated labels ending in a top-level label of two or more
/// letters. Trailing `.` or `-` (end of a sentence) are not part of the
/// address.
fn find_emails(text: &str, spans: &mut Vec<Span>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'@' {
            i += 1;
            continue;
        }
        let mut start = i;
        while let Some(c) = text[..start].chars().next_back() {
            let at = start - c.len_utf8();
            if !is_local(c) || in_escape(b, at) {
                break;
            }
            start = at;
        }
        while start < i && b[start] == b'.' {
            start += 1;
        }
        let domain: usize = text[i + 1..]
            .chars()
            .take_while(|&c| is_domain(c))
            .map(char::len_utf8)
            .sum();
        let mut end = i + 1 + domain;
        while end > i + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        if start < i && valid_domain(&text[i + 1..end]) {
            spans.push(Span {
                start,
                end,
                label: EMAIL,
            });
            i = end;
        } else {
            i += 1;
        }
    }
}

fn valid_domain(d: &str) -> bool {
    let mut labels = d.split('.');
    let Some(tld) = labels.next_back() else {
        return false;
    };
    let mut rest = labels.peekable();
    rest.peek().is_some()
        && tld.chars().count() >= 2
        && tld.chars().all(char::is_alphabetic)
        && rest.all(|l| !l.is_empty() && !l.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(text: &str) -> Option<String> {
        redact(text, Options::default())
    }

    fn r(text: &str) -> String {
        all(text).unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn nothing_to_redact_is_unchanged() {
        assert_eq!(all(""), None);
        assert_eq!(all("hello world, no secrets @ here"), None);
        assert_eq!(all(r#"{"model":"gpt-4o","messages":[]}"#), None);
        assert_eq!(all("user@localhost is not an address"), None);
        assert_eq!(all("a@b.c has a one-letter tld"), None);
    }

    #[test]
    fn emails_are_redacted_anywhere_including_the_end() {
        assert_eq!(r("mail bob@example.com now"), "mail [REDACTED:email] now");
        assert_eq!(r("bob@example.com"), "[REDACTED:email]");
        assert_eq!(
            r("write to first.last+tag@mail.example.co.uk"),
            "write to [REDACTED:email]"
        );
        assert_eq!(
            r("end of sentence: a_b@x-y.org."),
            "end of sentence: [REDACTED:email]."
        );
        assert_eq!(
            r("two: a@b.io,c@d.io"),
            "two: [REDACTED:email],[REDACTED:email]"
        );
    }

    #[test]
    fn sk_keys_need_sixteen_characters() {
        let exact = format!("key sk-{} end", "a".repeat(16));
        assert_eq!(r(&exact), "key [REDACTED:api_key] end");
        let short = format!("key sk-{} end", "a".repeat(15));
        assert_eq!(all(&short), None);
        assert_eq!(
            r("sk-ant-api03-AbCdEf_0123456789-xyz."),
            "[REDACTED:api_key]."
        );
        // `sk-` inside a word is not a key.
        assert_eq!(all("risk-assessment-framework-2024"), None);
    }

    #[test]
    fn aws_access_keys_are_exactly_sixteen_after_akia() {
        assert_eq!(r("id=AKIAIOSFODNN7EXAMPLE;"), "id=[REDACTED:api_key];");
        assert_eq!(all("AKIAIOSFODNN7EXAMPL"), None, "15 characters");
        assert_eq!(all("AKIAIOSFODNN7EXAMPLEX"), None, "17 characters");
        assert_eq!(all("AKIAiosfodnn7example"), None, "lower case");
        assert_eq!(all("XAKIAIOSFODNN7EXAMPLE"), None, "inside a word");
    }

    #[test]
    fn non_ascii_text_around_matches_is_kept() {
        assert_eq!(
            r("Grüße an jürgen@example.de — Schlüssel: sk-ÄÖÜ sk-0123456789abcdefXYZ…"),
            "Grüße an [REDACTED:email] — Schlüssel: sk-ÄÖÜ [REDACTED:api_key]…"
        );
        assert_eq!(r("メール：bob@example.jp。"), "メール：[REDACTED:email]。");
        // Internationalized addresses are taken whole, never half-redacted.
        assert_eq!(r("an jürgen@bücher.de."), "an [REDACTED:email].");
    }

    #[test]
    fn overlapping_matches_take_the_leftmost_longest() {
        // A key that is also the local part of an address: one replacement.
        let text = "sk-0123456789abcdef0123@example.com";
        assert_eq!(r(text), "[REDACTED:email]");
        let keys_only = Options {
            emails: false,
            api_keys: true,
        };
        assert_eq!(
            redact(text, keys_only).unwrap(),
            "[REDACTED:api_key]@example.com"
        );
        // Adjacent matches are both replaced.
        assert_eq!(
            r("AKIAIOSFODNN7EXAMPLE sk-aaaaaaaaaaaaaaaaaaaa a@b.io"),
            "[REDACTED:api_key] [REDACTED:api_key] [REDACTED:email]"
        );
    }

    #[test]
    fn json_escapes_are_never_broken() {
        let body = json!({"messages": [{"role": "user",
            "content": "line\nbob@example.com\tsk-0123456789abcdefgh\n\u{e9}al@ex.com \"x@y.io\""}]});
        // serde_json writes é raw; force the \u form too.
        let text = body.to_string().replace('é', "\\u00e9");
        let out = all(&text).unwrap();
        let v: Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(
            v["messages"][0]["content"],
            "line\n[REDACTED:email]\t[REDACTED:api_key]\n\u{e9}[REDACTED:email] \"[REDACTED:email]\""
        );
        // An escaped backslash followed by `n` is text, not an escape.
        assert_eq!(r(r"C:\\new@example.com"), r"C:\\[REDACTED:email]");
    }

    #[test]
    fn stream_events_are_redacted_one_by_one() {
        // What the stream redactor does with each event's `data`.
        let chunk = |t: &str| json!({"choices": [{"delta": {"content": t}}]}).to_string();
        let whole = chunk("mail bob@example.com");
        let out = all(&whole).unwrap();
        assert!(out.contains("[REDACTED:email]") && serde_json::from_str::<Value>(&out).is_ok());
        assert_eq!(all("[DONE]"), None);
        // Known limit: an address split across two events is not caught.
        assert_eq!(all(&chunk("mail bob@exa")), None);
        assert_eq!(all(&chunk("mple.com")), None);
    }

    #[test]
    fn config_toggles_each_scanner() {
        assert_eq!(Options::from_config(&Value::Null), Options::default());
        let o = Options::from_config(&json!({"emails": false}));
        assert_eq!((o.emails, o.api_keys), (false, true));
        let o = Options::from_config(&json!({"api_keys": false, "emails": "no"}));
        assert_eq!((o.emails, o.api_keys), (true, false));
        let text = "a@b.io sk-0123456789abcdefgh";
        assert_eq!(
            redact(text, o).unwrap(),
            "[REDACTED:email] sk-0123456789abcdefgh"
        );
        let none = Options {
            emails: false,
            api_keys: false,
        };
        assert_eq!(redact(text, none), None);
    }
}
