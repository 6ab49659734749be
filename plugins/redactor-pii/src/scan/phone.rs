//! Phone numbers: international (`+` and 8–15 digits) and national forms
//! (10–15 digits with at least one separator).
//!
//! A number is read as a run of digit groups joined by one or two
//! separators (space, `-`, `.`, `(`, `)`), e.g. `+1 (555) 123-4567`. A run
//! is read once and the scan resumes after it, so the work is linear; a run
//! too long for one number (`555-123-4567 555-987-6543`) is cut into
//! numbers at its single spaces.
//!
//! National forms are a heuristic: dates (`2024-01-15 10:30`), decimals
//! (`3.14159265358`) and dotted quads are not numbers.

use super::Match;
use super::chars::{continues_number_before, glued_after, glued_before};
use crate::kind::Kind;

const INTL_DIGITS: (usize, usize) = (8, 15);
const NATIONAL_DIGITS: (usize, usize) = (10, 15);

fn is_separator(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
}

/// One run of digits: `start..end` in the text.
#[derive(Clone, Copy, Debug)]
struct Group {
    start: usize,
    end: usize,
}

impl Group {
    fn digits(self) -> usize {
        self.end - self.start
    }
}

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut groups = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
        // A run is judged from its first byte only and then skipped whole,
        // so a glued start (`x555-123-4567`) cannot turn into a number that
        // starts inside it.
        if c == b'+' && next_digit {
            let end = read_groups(b, i + 1, &mut groups);
            // Fewer bytes than the fewest digits cannot be a number.
            if end - i > INTL_DIGITS.0 && !glued_before(b, i) {
                international(b, i, &groups, out);
            }
            i = end;
        } else if c.is_ascii_digit() || (c == b'(' && next_digit) {
            let first = if c == b'(' { i + 1 } else { i };
            let end = read_groups(b, first, &mut groups);
            if end - first >= NATIONAL_DIGITS.0
                && !glued_before(b, i)
                && !continues_number_before(b, i)
            {
                national(b, i, &groups, out);
            }
            i = end;
        } else {
            i += 1;
        }
    }
}

/// Reads digit groups from `i` (a digit) into `groups`; returns the end of
/// the last group. (Plain loops: this runs over every digit scanned, and
/// iterator adaptors are slow in unoptimised builds.)
fn read_groups(b: &[u8], mut i: usize, groups: &mut Vec<Group>) -> usize {
    groups.clear();
    loop {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        groups.push(Group { start, end: i });
        let mut seps = 0;
        while seps < 3 && i + seps < b.len() && is_separator(b[i + seps]) {
            seps += 1;
        }
        let joined = (1..=2).contains(&seps) && b.get(i + seps).is_some_and(u8::is_ascii_digit);
        if !joined {
            return i;
        }
        i += seps;
    }
}

fn digits(groups: &[Group]) -> usize {
    groups.iter().map(|g| g.digits()).sum()
}

/// `+` at `plus`: the whole run when it fits, else its longest prefix of
/// whole groups that does (the rest is another number or not one).
fn international(b: &[u8], plus: usize, groups: &[Group], out: &mut Vec<Match>) {
    let (min, max) = INTL_DIGITS;
    let mut total = 0;
    let mut take = 0;
    for g in groups {
        if total + g.digits() > max {
            break;
        }
        total += g.digits();
        take += 1;
    }
    let end = match take {
        0 => return,
        n => groups[n - 1].end,
    };
    let whole = take == groups.len();
    if total >= min && !(whole && glued_after(b, end)) {
        out.push(Match {
            start: plus,
            end,
            kind: Kind::Phone,
        });
    }
}

/// A national form starting at `start` (a digit, or `(` before one).
fn national(b: &[u8], start: usize, groups: &[Group], out: &mut Vec<Match>) {
    let (min, max) = NATIONAL_DIGITS;
    let total = digits(groups);
    if total < min {
        return;
    }
    if total <= max {
        if plausible(b, groups, true) {
            out.push(Match {
                start,
                end: groups[groups.len() - 1].end,
                kind: Kind::Phone,
            });
        }
        return;
    }
    // Several numbers in one run, e.g. `555-123-4567 555-987-6543`: cut at
    // single spaces, and keep the pieces that are numbers with separators
    // of their own. A run grouped by spaces only (`4111 1111 1111 1112`,
    // a card that fails its check) is one long number, not a list.
    let mut from = 0;
    for to in 1..=groups.len() {
        let cut = to == groups.len() || &b[groups[to - 1].end..groups[to].start] == b" ";
        if !cut {
            continue;
        }
        let piece = &groups[from..to];
        if piece.len() >= 2
            && (min..=max).contains(&digits(piece))
            && plausible(b, piece, to == groups.len())
        {
            let first = if from == 0 { start } else { piece[0].start };
            out.push(Match {
                start: first,
                end: piece[piece.len() - 1].end,
                kind: Kind::Phone,
            });
        }
        from = to;
    }
}

/// What tells a national number from other digit runs. `last`: the
/// window ends the run, so what follows it is checked too.
fn plausible(b: &[u8], groups: &[Group], last: bool) -> bool {
    let end = groups[groups.len() - 1].end;
    let joiner = |k: usize| &b[groups[k].end..groups[k + 1].start];
    let sizes: Vec<usize> = groups.iter().take(4).map(|g| g.digits()).collect();
    let same_joiner = |a: usize, c: usize| {
        let j = joiner(a);
        j.len() == 1 && matches!(j[0], b'-' | b'.') && j == joiner(c)
    };
    let date = groups.len() >= 3
        && (sizes[..3] == [4, 2, 2] || sizes[..3] == [2, 2, 4])
        && same_joiner(0, 1);
    let decimal = groups.len() == 2 && joiner(0) == b".";
    let dotted_quad =
        groups.len() == 4 && sizes.iter().all(|&n| n <= 3) && (0..3).all(|k| joiner(k) == b".");
    groups.len() >= 2
        && groups.iter().all(|g| g.digits() >= 2)
        && !date
        && !decimal
        && !dotted_quad
        && !(last && (glued_after(b, end) || b.get(end) == Some(&b':')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phones(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|m| &text[m.start..m.end]).collect()
    }

    #[test]
    fn international_forms() {
        assert_eq!(phones("call +1 (555) 123-4567."), ["+1 (555) 123-4567"]);
        assert_eq!(phones("+44 20 7946 0958"), ["+44 20 7946 0958"]);
        assert_eq!(phones("tel:+4915112345678;"), ["+4915112345678"]);
        assert_eq!(phones("+33.1.23.45.67.89"), ["+33.1.23.45.67.89"]);
        // Longer than 15 digits: the groups that fit.
        assert_eq!(phones("+49 30 1234 5678 9012"), ["+49 30 1234 5678"]);
    }

    #[test]
    fn national_forms() {
        assert_eq!(phones("(555) 123-4567"), ["(555) 123-4567"]);
        assert_eq!(phones("ring 030 1234 5678!"), ["030 1234 5678"]);
        assert_eq!(phones("01 23 45 67 89"), ["01 23 45 67 89"]);
        assert_eq!(
            phones("555-123-4567 555-987-6543"),
            ["555-123-4567", "555-987-6543"]
        );
    }

    #[test]
    fn near_misses() {
        assert!(phones("+1234567").is_empty(), "7 digits");
        assert!(phones("+1234567890123456").is_empty(), "one 16-digit group");
        assert!(phones("5551234567").is_empty(), "no separator");
        assert!(phones("555-1234").is_empty(), "too short");
        assert!(phones("x555-123-4567 555-123-4567y").is_empty(), "glued");
        assert!(phones("id+4915112345678").is_empty(), "glued plus");
        assert!(phones("2024-01-15 10:30 and 15.01.2024 1030").is_empty());
        assert!(phones("pi is 3.14159265358979").is_empty());
        assert!(phones("192.168.100.200").is_empty());
        assert!(phones("v1.2.3 and 1.2.3.4").is_empty());
        assert!(phones("1 2 3 4 5 6 7 8 9 0 1 2").is_empty());
        assert!(
            phones("4111 1111 1111 1112").is_empty(),
            "a card, not a phone"
        );
    }
}
