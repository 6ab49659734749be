//! IP addresses: IPv4 dotted quads and IPv6 (full or `::`-compressed).
//!
//! IPv4: four octets 0–255, not part of a longer dotted or digit run
//! (`1.2.3.4.5`, version strings). IPv6: a maximal run of hex digits,
//! colons and dots with at least two colons, parsed by the standard
//! library; runs are skipped whole, so the work is linear.

use super::Match;
use super::chars::{continues_number_after, glued_after, glued_before, is_word};
use crate::kind::Kind;
use std::net::Ipv6Addr;

/// Longest textual IPv6 address (`ffff:…:255.255.255.255`).
const V6_MAX: usize = 45;

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    v4(b, out);
    v6(text, out);
}

// The loops below index bytes directly rather than chaining iterator
// adaptors: they run once per byte of every scanned string, and unoptimised
// (test) builds are several times slower with the adaptors.

fn v4(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let starts = i == 0 || !(is_word(b[i - 1]) || b[i - 1] == b'.');
        if let Some(end) = starts.then(|| quad(b, i)).flatten() {
            out.push(Match {
                start: i,
                end,
                kind: Kind::IpAddress,
            });
            i = end;
        } else {
            // No quad starts inside a digit run.
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
}

/// The end of a dotted quad at `i`.
fn quad(b: &[u8], mut i: usize) -> Option<usize> {
    for octet in 0..4 {
        if octet > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut value = 0u32;
        let mut digits = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            value = value * 10 + u32::from(b[i] - b'0');
            digits += 1;
            i += 1;
            if digits > 3 {
                return None;
            }
        }
        if digits == 0 || value > 255 {
            return None;
        }
    }
    (!glued_after(b, i) && !continues_number_after(b, i)).then_some(i)
}

fn is_v6(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

fn v6(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_hexdigit() || b[i] == b':') {
            i += 1;
            continue;
        }
        let start = i;
        let mut colons = 0;
        while i < b.len() && is_v6(b[i]) {
            colons += usize::from(b[i] == b':');
            i += 1;
        }
        let free = colons >= 2 && !glued_before(b, start) && !glued_after(b, i);
        if free && let Some(end) = address(text, start, i) {
            out.push(Match {
                start,
                end,
                kind: Kind::IpAddress,
            });
        }
    }
}

/// The end of an IPv6 address that is the run `start..end`, less trailing
/// punctuation (`fe80::1.` or `::1:` ending a sentence).
fn address(text: &str, start: usize, mut end: usize) -> Option<usize> {
    let b = text.as_bytes();
    while end > start && b[end - 1] == b'.' {
        end -= 1;
    }
    if end - start >= 2 && b[end - 1] == b':' && b[end - 2] != b':' {
        end -= 1;
    }
    let run = &text[start..end];
    if run.len() > V6_MAX || run.bytes().filter(|&c| c == b':').count() < 2 {
        return None;
    }
    run.parse::<Ipv6Addr>().ok()?;
    // `::`, `a::b` and the like are more often code than addresses.
    let groups = run.split(':').filter(|g| !g.is_empty()).count();
    let has_digit = run.bytes().any(|c| c.is_ascii_digit());
    (has_digit || groups >= 3).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|m| &text[m.start..m.end]).collect()
    }

    #[test]
    fn v4_addresses() {
        assert_eq!(ips("host 10.0.0.1."), ["10.0.0.1"]);
        assert_eq!(ips("255.255.255.255:8080"), ["255.255.255.255"]);
        assert_eq!(ips("(192.168.1.20)"), ["192.168.1.20"]);
    }

    #[test]
    fn v6_addresses() {
        assert_eq!(ips("at fe80::1, ok"), ["fe80::1"]);
        assert_eq!(ips("::1"), ["::1"]);
        assert_eq!(
            ips("2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
            ["2001:0db8:85a3:0000:0000:8a2e:0370:7334"]
        );
        assert_eq!(ips("2001:db8::8a2e:370:7334."), ["2001:db8::8a2e:370:7334"]);
        // The embedded IPv4 matches too; the longer span absorbs it.
        assert_eq!(ips("[::ffff:192.0.2.1]"), ["192.0.2.1", "::ffff:192.0.2.1"]);
    }

    #[test]
    fn near_misses() {
        assert!(ips("999.1.1.1").is_empty());
        assert!(ips("1.2.3.256").is_empty());
        assert!(ips("v1.2.3 and v1.2.3.4 and 1.2.3").is_empty());
        assert!(ips("1.2.3.4.5").is_empty());
        assert!(ips("x1.2.3.4 1.2.3.4y 01234.1.1.1").is_empty());
        assert!(ips("12:30:45 and 00:1a:2b:3c:4d:5e").is_empty());
        assert!(ips("a :: b, std::vec, dead::beef, fe80::1g").is_empty());
    }
}
