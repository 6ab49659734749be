//! Byte classes and the "not glued to a word" rule shared by the scanners.
//!
//! Word characters are ASCII letters, digits and `_`. A non-ASCII letter
//! next to a match does not glue it: erring towards a match is the safe
//! side for a redactor.

pub fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the byte before `i` is a word character.
pub fn glued_before(b: &[u8], i: usize) -> bool {
    i > 0 && is_word(b[i - 1])
}

/// Whether the byte at `end` (just past a match) is a word character.
pub fn glued_after(b: &[u8], end: usize) -> bool {
    b.get(end).is_some_and(|&c| is_word(c))
}

/// Whether `i` continues a decimal number: a digit before it, or a `.`
/// that itself follows a digit (`3.14` must not yield `14`).
pub fn continues_number_before(b: &[u8], i: usize) -> bool {
    match i.checked_sub(1).map(|j| b[j]) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.') => i >= 2 && b[i - 2].is_ascii_digit(),
        _ => false,
    }
}

/// Whether a number continues at `end`: a digit, or a `.` followed by one.
pub fn continues_number_after(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.') => b.get(end + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// `[A-Za-z0-9_-]`: the body of most API keys, and base64url.
pub fn is_token(b: u8) -> bool {
    is_word(b) || b == b'-'
}

/// Length of the run of bytes satisfying `pred` from `i`.
pub fn run(b: &[u8], i: usize, pred: impl Fn(u8) -> bool) -> usize {
    b.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| pred(c)).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_and_runs() {
        let b = b"xAKIA 3.14 _a";
        assert!(glued_before(b, 1));
        assert!(!glued_before(b, 0));
        assert!(!glued_before(b, 6));
        assert!(glued_after(b, 0));
        assert!(!glued_after(b, 5));
        assert!(!glued_after(b, b.len()));
        assert!(continues_number_before(b, 8));
        assert!(!continues_number_before(b, 6));
        assert!(continues_number_after(b, 7));
        assert!(!continues_number_after(b, 10));
        assert_eq!(run(b, 1, |c| c.is_ascii_uppercase()), 4);
        assert_eq!(run(b, 99, |_| true), 0);
    }
}
