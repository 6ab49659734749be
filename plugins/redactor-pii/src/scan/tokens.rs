//! API keys and tokens recognised by their prefix: AWS access key ids,
//! JWTs, OpenAI and Anthropic keys, Google API keys, GitHub tokens.
//!
//! A token starts where the byte before is no word character (`xAKIA…` is
//! not a key). Variable-length bodies take their whole run, so they end
//! where their character class ends; fixed-length ones must not be followed
//! by a word character. A failed candidate either read a bounded number of
//! bytes, or (a JWT) lets the scan skip the run it read, so the work is
//! linear.

use super::Match;
use super::chars::{glued_after, glued_before, is_token, run};
use crate::kind::Kind;

const OPENAI_MIN: usize = 20;
const ANTHROPIC_MIN: usize = 20;
const AWS_LEN: usize = 16;
const GCP_LEN: usize = 35;
const GITHUB_LEN: usize = 36;
const GITHUB_PAT_MIN: usize = 22;
const JWT_PART_MIN: usize = 8;

/// A candidate's outcome: a match, or how far the scan may skip.
enum Found {
    Token(Kind, usize),
    Skip(usize),
}

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // The byte after a failed JWT candidate's run is `.` or a non-token
        // byte, so no position is tried twice.
        let found = if glued_before(b, i) {
            None
        } else {
            token_at(b, i)
        };
        match found {
            Some(Found::Token(kind, end)) => {
                out.push(Match {
                    start: i,
                    end,
                    kind,
                });
                i = end;
            }
            Some(Found::Skip(to)) => i = to.max(i + 1),
            None => i += 1,
        }
    }
}

fn token_at(b: &[u8], i: usize) -> Option<Found> {
    let rest = &b[i..];
    let token = |kind, end: Option<usize>| end.map(|e| Found::Token(kind, e));
    match rest.first()? {
        b'A' if rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA") => token(
            Kind::AwsAccessKey,
            exact(b, i + 4, AWS_LEN, |c| {
                c.is_ascii_uppercase() || c.is_ascii_digit()
            }),
        ),
        b'A' if rest.starts_with(b"AIza") => {
            token(Kind::GcpApiKey, exact(b, i + 4, GCP_LEN, is_token))
        }
        b'e' if rest.starts_with(b"eyJ") => Some(jwt(b, i)),
        b's' if rest.starts_with(b"sk-ant-") => token(
            Kind::AnthropicKey,
            at_least(b, i + 7, ANTHROPIC_MIN, is_token),
        ),
        b's' if rest.starts_with(b"sk-proj-") => {
            token(Kind::OpenaiKey, at_least(b, i + 8, OPENAI_MIN, is_token))
        }
        b's' if rest.starts_with(b"sk-") => {
            token(Kind::OpenaiKey, at_least(b, i + 3, OPENAI_MIN, is_token))
        }
        b'g' if rest.starts_with(b"github_pat_") => token(
            Kind::GithubToken,
            at_least(b, i + 11, GITHUB_PAT_MIN, |c| {
                c.is_ascii_alphanumeric() || c == b'_'
            }),
        ),
        b'g' if rest.len() >= 4
            && rest.starts_with(b"gh")
            && matches!(rest[2], b'p' | b'o' | b'u' | b's' | b'r')
            && rest[3] == b'_' =>
        {
            token(
                Kind::GithubToken,
                exact(b, i + 4, GITHUB_LEN, |c| c.is_ascii_alphanumeric()),
            )
        }
        _ => None,
    }
}

/// Exactly `len` bytes of `class` from `i`, then no word character.
fn exact(b: &[u8], i: usize, len: usize, class: impl Fn(u8) -> bool) -> Option<usize> {
    let body = b
        .get(i..)?
        .iter()
        .take(len)
        .take_while(|&&c| class(c))
        .count();
    let end = i + body;
    (body == len && !glued_after(b, end)).then_some(end)
}

/// At least `min` bytes of `class` from `i`: the whole run.
fn at_least(b: &[u8], i: usize, min: usize, class: impl Fn(u8) -> bool) -> Option<usize> {
    let body = run(b, i, class);
    (body >= min).then_some(i + body)
}

/// `eyJ…` `.` `eyJ…` `.` signature, each part at least eight base64url
/// characters. Every start inside the first part's run would share its
/// end and fail the same way, so a failure skips that run.
fn jwt(b: &[u8], i: usize) -> Found {
    let header = run(b, i, is_token);
    let skip = Found::Skip(i + header);
    let part = |at: usize, prefixed: bool| {
        let len = run(b, at, is_token);
        let ok = len >= JWT_PART_MIN && (!prefixed || b[at..].starts_with(b"eyJ"));
        ok.then_some(at + len)
    };
    if header < JWT_PART_MIN || b.get(i + header) != Some(&b'.') {
        return skip;
    }
    let Some(payload_end) = part(i + header + 1, true) else {
        return skip;
    };
    if b.get(payload_end) != Some(&b'.') {
        return skip;
    }
    match part(payload_end + 1, false) {
        Some(end) => Found::Token(Kind::Jwt, end),
        None => skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(Kind, &str)> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter()
            .map(|m| (m.kind, &text[m.start..m.end]))
            .collect()
    }

    fn one(text: &str) -> Option<Kind> {
        match tokens(text).as_slice() {
            [] => None,
            [(k, _)] => Some(*k),
            more => panic!("{more:?}"),
        }
    }

    #[test]
    fn aws_access_keys() {
        assert_eq!(
            tokens("id=AKIAIOSFODNN7EXAMPLE;"),
            [(Kind::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE")]
        );
        assert_eq!(one("ASIAIOSFODNN7EXAMPLE"), Some(Kind::AwsAccessKey));
        assert_eq!(one("AKIAIOSFODNN7EXAMPL"), None, "15");
        assert_eq!(one("AKIAIOSFODNN7EXAMPLEX"), None, "17");
        assert_eq!(one("AKIAiosfodnn7example"), None, "lower case");
        assert_eq!(one("xAKIAIOSFODNN7EXAMPLE"), None, "glued");
    }

    #[test]
    fn jwts() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(tokens(&format!("Bearer {jwt}.")), [(Kind::Jwt, jwt)]);
        assert_eq!(one("eyJhbGciOi.eyJzdWIiOi.short"), None, "short signature");
        assert_eq!(one("eyJhbGciOi.notapayload.c2lnbmF0dXJl"), None);
        assert_eq!(one("xeyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl"), None, "glued");
    }

    #[test]
    fn openai_and_anthropic_keys() {
        let k = "sk-abcdefghij0123456789";
        assert_eq!(tokens(k), [(Kind::OpenaiKey, k)]);
        assert_eq!(
            one("sk-proj-abcdefghij0123456789_-XY"),
            Some(Kind::OpenaiKey)
        );
        assert_eq!(
            one("sk-ant-api03-abcdefghij0123456789"),
            Some(Kind::AnthropicKey)
        );
        assert_eq!(one("sk-ant-short"), None, "never an OpenAI key");
        assert_eq!(one("sk-abc"), None);
        assert_eq!(one("sk-proj-abc"), None);
        assert_eq!(one("risk-assessment-framework-2024-final"), None);
    }

    #[test]
    fn google_and_github() {
        let gcp = format!("AIza{}", "Sy-_0123456789abcdefghijklmnopqrstu");
        assert_eq!(one(&gcp), Some(Kind::GcpApiKey));
        assert_eq!(one(&gcp[..gcp.len() - 1]), None, "34");
        assert_eq!(one(&format!("{gcp}x")), None, "36");
        let ghp = format!("ghp_{}", "a".repeat(36));
        assert_eq!(one(&ghp), Some(Kind::GithubToken));
        assert_eq!(
            one(&format!("gho_{}", "B".repeat(36))),
            Some(Kind::GithubToken)
        );
        assert_eq!(one(&format!("ghx_{}", "a".repeat(36))), None);
        assert_eq!(one(&format!("ghp_{}", "a".repeat(35))), None);
        assert_eq!(
            one(&format!("github_pat_{}", "A1_b".repeat(6))),
            Some(Kind::GithubToken)
        );
        assert_eq!(one("github_pat_short"), None);
    }
}
