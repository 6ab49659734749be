//! IBANs: a country code, two check digits and 11–30 letters or digits,
//! written together or in groups of four, that pass the mod-97 check.
//!
//! Upper case only: lower-case runs of this shape are mostly identifiers,
//! and the check alone lets one in 97 of them through. Each candidate reads
//! at most 34 characters (plus spaces), so the work is linear.

use super::Match;
use super::chars::{glued_after, glued_before};
use crate::kind::Kind;

const LEN: std::ops::RangeInclusive<usize> = 15..=34;

fn is_bban(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 4 <= b.len() {
        let head = &b[i..i + 4];
        let starts = head[0].is_ascii_uppercase()
            && head[1].is_ascii_uppercase()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit()
            && !glued_before(b, i);
        match starts.then(|| iban_at(b, i)).flatten() {
            Some(end) => {
                out.push(Match {
                    start: i,
                    end,
                    kind: Kind::Iban,
                });
                i = end;
            }
            None => i += 1,
        }
    }
}

/// The end of an IBAN starting at `i`, if one does.
fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i + 4) == Some(&b' ') {
        return grouped(b, i);
    }
    let mut end = i + 4;
    let mut rem = 0;
    while end < b.len() && end - i <= *LEN.end() && is_bban(b[end]) {
        rem = mod97(rem, b[end]);
        end += 1;
    }
    let len = end - i;
    (LEN.contains(&len) && !glued_after(b, end) && checks(rem, &b[i..i + 4])).then_some(end)
}

/// `CCdd dddd dddd …`: groups of four after single spaces, the last of one
/// to four. The longest prefix of whole groups that passes the check wins,
/// so a word after the IBAN (`BE68 5390 0754 7034 AND`) is not taken in.
/// The check is carried along the groups, so each candidate end costs
/// four more steps, not a new pass.
fn grouped(b: &[u8], i: usize) -> Option<usize> {
    let mut best = None;
    let mut rem = 0;
    let mut pos = i + 4;
    let mut chars = 4;
    while b.get(pos) == Some(&b' ') {
        let mut end = pos + 1;
        while end < b.len() && end - pos <= 4 && is_bban(b[end]) {
            end += 1;
        }
        let group = end - pos - 1;
        if group == 0 || chars + group > *LEN.end() || glued_after(b, end) {
            break;
        }
        for &c in &b[pos + 1..end] {
            rem = mod97(rem, c);
        }
        chars += group;
        if LEN.contains(&chars) && checks(rem, &b[i..i + 4]) {
            best = Some(end);
        }
        pos = end;
        if group < 4 {
            break;
        }
    }
    best
}

/// ISO 13616: the number made of the characters after the first four,
/// then the first four, letters read as 10–35, is 1 mod 97. `rem` is the
/// remainder of the part after the first four.
fn checks(rem: u32, head: &[u8]) -> bool {
    head.iter().fold(rem, |r, &c| mod97(r, c)) == 1
}

fn mod97(rem: u32, c: u8) -> u32 {
    if c.is_ascii_digit() {
        (rem * 10 + u32::from(c - b'0')) % 97
    } else {
        (rem * 100 + u32::from(c - b'A') + 10) % 97
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ibans(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|m| &text[m.start..m.end]).collect()
    }

    #[test]
    fn valid_ibans() {
        assert_eq!(
            ibans("pay DE89 3704 0044 0532 0130 00."),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(ibans("DE89370400440532013000"), ["DE89370400440532013000"]);
        assert_eq!(ibans("GB82WEST12345698765432,"), ["GB82WEST12345698765432"]);
        assert_eq!(
            ibans("BE68 5390 0754 7034 AND MORE"),
            ["BE68 5390 0754 7034"]
        );
        assert_eq!(ibans("NL91 ABNA 0417 1643 00"), ["NL91 ABNA 0417 1643 00"]);
    }

    #[test]
    fn near_misses() {
        assert!(ibans("DE88 3704 0044 0532 0130 00").is_empty(), "checksum");
        assert!(ibans("DE88370400440532013000").is_empty(), "checksum");
        assert!(ibans("xDE89370400440532013000").is_empty(), "glued");
        assert!(ibans("DE89370400440532013000x").is_empty(), "glued");
        assert!(ibans("de89370400440532013000").is_empty(), "lower case");
        assert!(ibans("DE8937040044").is_empty(), "short");
    }
}
