//! Putting originals back in place of placeholders.

use crate::vault::Vault;
use crate::walk::{self, Site};
use serde_json::Value;

/// How an original is written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// As is: the text is what the client reads.
    Plain,
    /// JSON-escaped, without quotes: the text is itself JSON (tool-call
    /// arguments), and the placeholder sat inside one of its strings.
    Json,
}

impl Escape {
    pub fn for_site(site: &Site) -> Escape {
        if site.is_tool_arguments() {
            Escape::Json
        } else {
            Escape::Plain
        }
    }
}

/// Appends `text` to `out` with every placeholder of `vault` replaced by
/// its original; returns whether there was one. Each `[` reads at most the
/// longest placeholder's length, and stops at the next `[` (placeholders
/// hold none), so the work is linear.
pub fn restore_into(text: &str, vault: &Vault, escape: Escape, out: &mut String) -> bool {
    let b = text.as_bytes();
    let mut copied = 0;
    let mut from = 0;
    let mut any = false;
    while let Some(off) = b[from..].iter().position(|&c| c == b'[') {
        let open = from + off;
        let limit = b.len().min(open + vault.longest());
        let mut close = None;
        let mut j = open + 1;
        while j < limit {
            match b[j] {
                b']' => {
                    close = Some(j);
                    break;
                }
                b'[' => break,
                _ => j += 1,
            }
        }
        if let Some(original) = close.and_then(|c| vault.original(&text[open..=c])) {
            out.push_str(&text[copied..open]);
            push_escaped(original, escape, out);
            copied = close.map_or(open, |c| c + 1);
            from = copied;
            any = true;
        } else {
            from = open + 1;
        }
    }
    out.push_str(&text[copied..]);
    any
}

/// `text` with its placeholders restored, or `None` when it has none.
pub fn restore(text: &str, vault: &Vault, escape: Escape) -> Option<String> {
    if !text.contains('[') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    restore_into(text, vault, escape, &mut out).then_some(out)
}

fn push_escaped(original: &str, escape: Escape, out: &mut String) {
    match escape {
        Escape::Plain => out.push_str(original),
        Escape::Json => {
            let quoted = Value::String(original.to_owned()).to_string();
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
    }
}

/// Restores every string value of a JSON document but thinking text (see
/// [`Site::is_thinking`]); returns whether any changed.
pub fn restore_value(value: &mut Value, vault: &Vault) -> bool {
    walk::strings(value, &mut |site, s| {
        if site.is_thinking() {
            return false;
        }
        match restore(s, vault, Escape::for_site(site)) {
            Some(restored) => {
                *s = restored;
                true
            }
            None => false,
        }
    })
}

/// A whole response body with its placeholders restored, or `None` when
/// it has none (or is not JSON: it then goes to the client as it came).
pub fn response(body: &str, vault: &Vault) -> Option<String> {
    let mut doc: Value = serde_json::from_str(body).ok()?;
    restore_value(&mut doc, vault).then(|| doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::from_state(
            r#"{"[EMAIL_1]":"a@x.io","[PRIVATE_KEY_1]":"-----BEGIN\n\"k\"\n-----END"}"#,
        )
        .unwrap()
    }

    #[test]
    fn restores_known_placeholders_only() {
        let v = vault();
        assert_eq!(
            restore(
                "to [EMAIL_1], [[EMAIL_1]] not [EMAIL_2] [EMAIL_1",
                &v,
                Escape::Plain
            )
            .unwrap(),
            "to a@x.io, [a@x.io] not [EMAIL_2] [EMAIL_1"
        );
        assert_eq!(restore("nothing [EMAIL_2] here", &v, Escape::Plain), None);
        assert_eq!(restore("no brackets", &v, Escape::Plain), None);
    }

    #[test]
    fn json_escape_keeps_json_text_valid() {
        let v = vault();
        let args = restore(r#"{"key":"[PRIVATE_KEY_1]"}"#, &v, Escape::Json).unwrap();
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed["key"], "-----BEGIN\n\"k\"\n-----END");
    }
}
