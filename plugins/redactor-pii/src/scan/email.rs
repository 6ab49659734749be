//! E-mail addresses: `local@domain.tld`.
//!
//! Linear: the scan jumps from `@` to `@`. The local part is read backwards
//! and the domain forwards, and neither class contains `@`, so each byte is
//! read at most twice (once as a domain, once as the next local part).
//! The loops index bytes rather than chain iterator adaptors: they run over
//! every byte near an `@`, and unoptimised (test) builds pay for adaptors.

use super::Match;
use crate::kind::Kind;

/// `[A-Za-z0-9._%+-]`; non-ASCII letters and digits are taken too
/// (internationalized addresses are taken whole rather than
/// half-redacted).
fn is_local_ascii(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain_ascii(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    // No local part reaches back over a previous match or `@`.
    let mut floor = 0;
    let mut from = 0;
    while let Some(off) = b[from..].iter().position(|&c| c == b'@') {
        let at = from + off;
        let start = local_start(text, floor, at);
        let end = if start < at {
            domain_end(text, at + 1)
        } else {
            at + 1
        };
        if start < at && valid_domain(&text[at + 1..end]) {
            out.push(Match {
                start,
                end,
                kind: Kind::Email,
            });
            floor = end;
            from = end;
        } else {
            floor = at + 1;
            from = at + 1;
        }
    }
}

/// Where the local part before the `@` at `at` starts (`at` if empty).
/// ASCII is tested byte by byte; only non-ASCII text is decoded.
fn local_start(text: &str, floor: usize, at: usize) -> usize {
    let b = text.as_bytes();
    let mut start = at;
    while start > floor {
        let c = b[start - 1];
        if c.is_ascii() {
            if !is_local_ascii(c) {
                break;
            }
            start -= 1;
            continue;
        }
        match text[..start].chars().next_back() {
            Some(ch) if ch.is_alphanumeric() => start -= ch.len_utf8(),
            _ => break,
        }
    }
    // A sentence may run into the address: the local part cannot start
    // with `.`.
    while start < at && b[start] == b'.' {
        start += 1;
    }
    start
}

/// Where the domain starting at `from` ends, less a trailing `.` or `-`
/// (the end of a sentence, not of the address).
fn domain_end(text: &str, from: usize) -> usize {
    let b = text.as_bytes();
    let mut end = from;
    while end < b.len() {
        let c = b[end];
        if c.is_ascii() {
            if !is_domain_ascii(c) {
                break;
            }
            end += 1;
            continue;
        }
        match text[end..].chars().next() {
            Some(ch) if ch.is_alphanumeric() => end += ch.len_utf8(),
            _ => break,
        }
    }
    while end > from && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    end
}

/// Two or more dot-separated labels, none empty or starting with `-`, the
/// last of two or more letters.
fn valid_domain(domain: &str) -> bool {
    if !domain.contains('.') {
        return false;
    }
    let mut labels = domain.rsplit('.');
    let Some(tld) = labels.next() else {
        return false;
    };
    let mut seen = 0;
    for label in labels {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return false;
        }
        seen += 1;
    }
    seen > 0 && tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|m| &text[m.start..m.end]).collect()
    }

    #[test]
    fn addresses() {
        assert_eq!(emails("mail bob@example.com now"), ["bob@example.com"]);
        assert_eq!(
            emails("first.last+tag@mail.example.co.uk."),
            ["first.last+tag@mail.example.co.uk"]
        );
        assert_eq!(emails("a@b.io,c@d.io"), ["a@b.io", "c@d.io"]);
        assert_eq!(emails("an jürgen@bücher.de."), ["jürgen@bücher.de"]);
        assert_eq!(emails("<x_y@z-w.org>"), ["x_y@z-w.org"]);
    }

    #[test]
    fn near_misses() {
        assert!(emails("user@localhost").is_empty());
        assert!(emails("a@b.c").is_empty());
        assert!(emails("@example.com").is_empty());
        assert!(emails("x@-bad.com y@a..com z@1.23").is_empty());
        assert!(emails("@@@ a@@b.com").is_empty());
    }
}
