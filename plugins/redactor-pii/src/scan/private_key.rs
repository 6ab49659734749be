//! PEM private keys: `-----BEGIN [A-Z ]*PRIVATE KEY-----` through the
//! matching `-----END … PRIVATE KEY-----`, newlines included.
//!
//! A header without a footer (a key cut short by a paste) still takes the
//! base64 lines that follow it: half a key is still a secret.
//!
//! Linear: headers and footers are found with substring search, and the
//! footer search only moves forward. Once it found nothing, no later header
//! can have a footer either, so it is not repeated.

use super::Match;
use crate::kind::Kind;

const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const LABEL_TAIL: &[u8] = b"PRIVATE KEY";
const DASHES: &[u8] = b"-----";

pub fn find(text: &str, out: &mut Vec<Match>) {
    let b = text.as_bytes();
    let mut pos = 0;
    // Where the footer search stands, and whether it ran out.
    let mut footers = Footers {
        from: 0,
        exhausted: false,
    };
    while let Some(off) = text[pos..].find(BEGIN) {
        let start = pos + off;
        let label = start + BEGIN.len();
        let header_end = match label_end(b, label) {
            Ok(end) => end,
            Err(next) => {
                pos = next;
                continue;
            }
        };
        let end = footers
            .next(text, header_end)
            .unwrap_or_else(|| base64_lines(b, header_end));
        out.push(Match {
            start,
            end,
            kind: Kind::PrivateKey,
        });
        pos = end;
    }
}

/// After `-----BEGIN ` or `-----END ` at `label`: a `[A-Z ]*PRIVATE KEY`
/// label and five dashes. `Ok(end of the dashes)`, or `Err(where to
/// resume)`, past the label run just read.
fn label_end(b: &[u8], label: usize) -> Result<usize, usize> {
    let run = b[label..]
        .iter()
        .take_while(|&&c| c.is_ascii_uppercase() || c == b' ')
        .count();
    let after = label + run;
    if b[label..after].ends_with(LABEL_TAIL) && b[after..].starts_with(DASHES) {
        Ok(after + DASHES.len())
    } else {
        Err(after)
    }
}

struct Footers {
    from: usize,
    exhausted: bool,
}

impl Footers {
    /// The end of the first valid footer at or after `at`.
    fn next(&mut self, text: &str, at: usize) -> Option<usize> {
        let b = text.as_bytes();
        self.from = self.from.max(at);
        while !self.exhausted {
            let Some(off) = text[self.from..].find(END) else {
                self.exhausted = true;
                break;
            };
            let label = self.from + off + END.len();
            match label_end(b, label) {
                Ok(end) => {
                    self.from = end;
                    return Some(end);
                }
                Err(next) => self.from = next,
            }
        }
        None
    }
}

/// The end of the base64 lines after a header with no footer: whole lines
/// of `[A-Za-z0-9+/=]`, stopping before the first line that is not one.
fn base64_lines(b: &[u8], header_end: usize) -> usize {
    let mut end = header_end;
    let mut pos = header_end;
    loop {
        let newline = match b.get(pos..) {
            Some([b'\r', b'\n', ..]) => 2,
            Some([b'\n', ..]) => 1,
            _ => return end,
        };
        let line_start = pos + newline;
        let len = b[line_start..]
            .iter()
            .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
            .count();
        let line_end = line_start + len;
        let whole = matches!(b.get(line_end), None | Some(b'\r' | b'\n'));
        if len == 0 || !whole {
            return end;
        }
        end = line_end;
        pos = line_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|m| &text[m.start..m.end]).collect()
    }

    const RSA: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK==\n-----END RSA PRIVATE KEY-----";

    #[test]
    fn whole_blocks() {
        assert_eq!(keys(&format!("key:\n{RSA}\nthanks")), [RSA]);
        let plain = "-----BEGIN PRIVATE KEY-----\r\nMIIB\r\n-----END PRIVATE KEY-----";
        assert_eq!(keys(plain), [plain]);
        let two = format!("{RSA} and {RSA}");
        assert_eq!(keys(&two), [RSA, RSA]);
        let openssh =
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(keys(openssh), [openssh]);
    }

    #[test]
    fn a_key_cut_short_keeps_its_base64_lines() {
        let cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\nIOaB/+x=\nThanks!";
        assert_eq!(
            keys(cut),
            ["-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\nIOaB/+x="]
        );
    }

    #[test]
    fn not_private_keys() {
        assert!(keys("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").is_empty());
        assert!(keys("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----").is_empty());
        assert!(keys("-----BEGIN PRIVATE KEY----").is_empty());
        assert!(keys("-----BEGIN private KEY-----").is_empty());
    }
}
