//! Payment card numbers: 13–19 digits, optionally grouped by single spaces
//! or dashes, that pass the Luhn check.
//!
//! Grouped numbers have groups of 3–6 digits (4-4-4-4, Amex 4-6-5, 4-4-4-4-3):
//! without that rule a table of single digits would yield a "card" in one
//! window out of ten. A run of groups is read once; windows of whole groups
//! are tried from each group, at most six of them (19 digits / 3), so the
//! work stays linear.

use super::Match;
use super::chars::{continues_number_after, continues_number_before, glued_after, glued_before};
use crate::kind::Kind;

const DIGITS: std::ops::RangeInclusive<usize> = 13..=19;
const GROUP: std::ops::RangeInclusive<usize> = 3..=6;

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let end = read_groups(b, i, &mut groups);
        if end - i < *DIGITS.start() {
            i = end;
            continue;
        }
        let free_start = !glued_before(b, i) && !continues_number_before(b, i);
        let free_end = !glued_after(b, end) && !continues_number_after(b, end);
        windows(b, &groups, free_start, free_end, out);
        i = end;
    }
}

/// Digit groups from `i` joined by exactly one space or dash.
fn read_groups(b: &[u8], mut i: usize, groups: &mut Vec<(usize, usize)>) -> usize {
    groups.clear();
    loop {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        groups.push((start, i));
        let joined =
            matches!(b.get(i), Some(b' ' | b'-')) && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if !joined {
            return i;
        }
        i += 1;
    }
}

/// Card numbers among `groups`, leftmost first and longest at each start.
/// `free_start` / `free_end`: the run itself is not glued to a word or a
/// longer number on that side. (Plain loops: this runs once per digit
/// group scanned.)
fn windows(
    b: &[u8],
    groups: &[(usize, usize)],
    free_start: bool,
    free_end: bool,
    out: &mut Vec<Match>,
) {
    let n = groups.len();
    // The window `g..=h` may be cut out of the run: its sides are either
    // inside the run (next to a separator) or free.
    let usable = |g: usize, h: usize| (g > 0 || free_start) && (h + 1 < n || free_end);
    let mut g = 0;
    while g < n {
        let len = groups[g].1 - groups[g].0;
        let mut found = None;
        if DIGITS.contains(&len) {
            if usable(g, g) && luhn(b, &groups[g..=g]) {
                found = Some(g);
            }
        } else if GROUP.contains(&len) {
            // Grouped windows from `g`, longest first.
            let mut ends = [0usize; 8];
            let mut count = 0;
            let mut sum = 0;
            let mut h = g;
            while h < n {
                let l = groups[h].1 - groups[h].0;
                if !GROUP.contains(&l) || sum + l > *DIGITS.end() {
                    break;
                }
                sum += l;
                if h > g && DIGITS.contains(&sum) {
                    ends[count] = h;
                    count += 1;
                }
                h += 1;
            }
            found = ends[..count]
                .iter()
                .rev()
                .copied()
                .find(|&h| usable(g, h) && luhn(b, &groups[g..=h]));
        }
        match found {
            Some(h) => {
                out.push(Match {
                    start: groups[g].0,
                    end: groups[h].1,
                    kind: Kind::CreditCard,
                });
                g = h + 1;
            }
            None => g += 1,
        }
    }
}

/// The Luhn check over the digits of `groups`.
fn luhn(b: &[u8], groups: &[(usize, usize)]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &(start, end) in groups.iter().rev() {
        for &c in b[start..end].iter().rev() {
            let mut d = u32::from(c - b'0');
            if double {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
            double = !double;
        }
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|m| &text[m.start..m.end]).collect()
    }

    #[test]
    fn luhn_valid_numbers() {
        assert_eq!(cards("4111111111111111"), ["4111111111111111"]);
        assert_eq!(cards("card 4111 1111 1111 1111."), ["4111 1111 1111 1111"]);
        assert_eq!(cards("5500-0000-0000-0004"), ["5500-0000-0000-0004"]);
        assert_eq!(cards("amex 3782 822463 10005"), ["3782 822463 10005"]);
        assert_eq!(cards("4222222222222"), ["4222222222222"], "13 digits");
        // Expiry after the number: the groups that make a card.
        assert_eq!(cards("4111 1111 1111 1111 12 25"), ["4111 1111 1111 1111"]);
        assert_eq!(
            cards("4111 1111 1111 1111 5500 0000 0000 0004"),
            ["4111 1111 1111 1111", "5500 0000 0000 0004"]
        );
    }

    #[test]
    fn near_misses() {
        assert!(cards("4111111111111112").is_empty(), "Luhn");
        assert!(cards("4111 1111 1111 1112").is_empty(), "Luhn");
        assert!(cards("411111111111").is_empty(), "12 digits");
        assert!(cards("41111111111111111111").is_empty(), "20 digits");
        assert!(cards("x4111111111111111").is_empty(), "glued");
        assert!(cards("4111111111111111y").is_empty(), "glued");
        assert!(cards("1.4111111111111111").is_empty(), "decimal");
        assert!(cards("4111  1111  1111  1111").is_empty(), "double spaces");
        assert!(
            cards("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1").is_empty(),
            "single digits"
        );
    }
}
