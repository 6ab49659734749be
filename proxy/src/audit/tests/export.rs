//! Export files: formats, windows, refusal, determinism, the summary.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use crate::audit::{CSV_HEADER, Format, Mode, Summary, Window, export, pseudonym, redact_event};

fn all() -> Window {
    Window::default()
}

fn run(events: &[Event], dest: &Path, format: Format, mode: Mode, window: Window) -> Summary {
    export(
        events.iter().cloned().map(Ok),
        dest,
        format,
        mode,
        b"",
        window,
    )
    .unwrap()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// RFC 4180 records (for checking what the writer quoted).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && row.is_empty(),
        "ends with a newline"
    );
    rows
}

#[test]
fn jsonl_is_one_compact_redacted_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample();
    for mode in [Mode::Passthrough, Mode::Pseudonymize, Mode::RedactPrivate] {
        let dest = dir.path().join(format!("{}.jsonl", mode.as_str()));
        let s = run(&events, &dest, Format::Jsonl, mode, all());
        let want: String = events
            .iter()
            .map(|e| serde_json::to_string(&redact_event(e, mode, b"").unwrap()).unwrap() + "\n")
            .collect();
        let got = read(&dest);
        assert_eq!(got, want);
        assert_eq!(s.bytes, got.len() as u64);
        assert_eq!(s.events, events.len() as u64);
        assert_eq!((s.oldest_id, s.newest_id), (Some(1), Some(11)));
    }
    let plain = read(&dir.path().join("passthrough.jsonl"));
    let first = plain.lines().next().unwrap();
    assert_eq!(first, serde_json::to_string(&events[0]).unwrap());
}

#[test]
fn csv_columns_and_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out.csv");
    let events = sample();
    run(&events, &dest, Format::Csv, Mode::Pseudonymize, all());
    let text = read(&dest);
    assert!(text.starts_with(&format!("{CSV_HEADER}\n")));
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), events.len() + 1);
    assert_eq!(rows[0].join(","), CSV_HEADER);
    let p = |v: &str| pseudonym(v, b"");
    // request.completed, id 10.
    let r = &rows[10];
    assert_eq!(r[0], "10");
    assert_eq!(r[1], (T0 + 10_000).to_string());
    assert_eq!(r[2], "2027-01-01T00:00:10.000Z");
    assert_eq!(r[3], "request.completed");
    assert_eq!(r[4], "1");
    assert_eq!(r[5], "pseudonymous");
    assert_eq!(r[6], p("gk_alpha"));
    assert_eq!(r[7], p("alice"));
    assert_eq!(r[8], "", "null team");
    let payload: Value = serde_json::from_str(&r[9]).unwrap();
    let want = redact_event(&events[9], Mode::Pseudonymize, b"").unwrap();
    assert_eq!(r[9], serde_json::to_string(&want["payload"]).unwrap());
    assert_eq!(payload["request_id"], p("req-1"));
    // gateway.key_issued has key_id, not gateway_key_id: that column is empty.
    assert_eq!(rows[1][6], "");
    assert_eq!(rows[1][7], p("alice"));
    for row in &rows {
        assert_eq!(row.len(), 10);
    }
}

#[test]
fn csv_quotes_commas_quotes_and_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("q.csv");
    let mut body = request_completed();
    if let EventBody::RequestCompleted {
        user_id, team_id, ..
    } = &mut body
    {
        *user_id = Some(s("o'brien, \"jr\"\nline2\r\nline3"));
        *team_id = Some(s("plain"));
    }
    let events = [ev(1, body), ev(2, eval_failed()), ev(3, route_decided())];
    run(&events, &dest, Format::Csv, Mode::Passthrough, all());
    let text = read(&dest);
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[1][7], "o'brien, \"jr\"\nline2\r\nline3");
    assert!(
        text.contains("\"o'brien, \"\"jr\"\"\nline2\r\nline3\""),
        "{text}"
    );
    assert_eq!(rows[1][8], "plain");
    assert!(text.contains(",plain,"), "an unquoted plain field");
    for (row, e) in rows[1..].iter().zip(&events) {
        let plain = serde_json::to_value(e).unwrap();
        assert_eq!(row[9], serde_json::to_string(&plain["payload"]).unwrap());
    }
    // The payload cell, with its commas and quotes, is quoted.
    let payload =
        serde_json::to_string(&serde_json::to_value(&events[2]).unwrap()["payload"]).unwrap();
    assert!(text.contains(&format!("\"{}\"\n", payload.replace('"', "\"\""))));

    let mut buf = Vec::new();
    for f in ["a", "a,b", "say \"hi\"", "x\ny", "x\ry", ""] {
        crate::audit::export::write_field(&mut buf, f).unwrap();
        buf.push(b'|');
    }
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "a|\"a,b\"|\"say \"\"hi\"\"\"|\"x\ny\"|\"x\ry\"||"
    );
}

#[test]
fn empty_window_gives_empty_jsonl_and_header_only_csv() {
    let dir = tempfile::tempdir().unwrap();
    let events = sample();
    let none = Window {
        since_ms: Some(T0 + 100_000),
        until_ms: None,
    };
    let j = dir.path().join("e.jsonl");
    let s = run(&events, &j, Format::Jsonl, Mode::Pseudonymize, none);
    assert_eq!(std::fs::read(&j).unwrap(), b"");
    assert_eq!(
        (s.events, s.bytes, s.oldest_id, s.newest_id),
        (0, 0, None, None)
    );
    let c = dir.path().join("e.csv");
    let s = run(&[], &c, Format::Csv, Mode::RedactPrivate, all());
    assert_eq!(read(&c), format!("{CSV_HEADER}\n"));
    assert_eq!(s.bytes, CSV_HEADER.len() as u64 + 1);
    let a = dir.path().join("e.agg");
    run(&events, &a, Format::Csv, Mode::AggregateOnly, none);
    let v: Value = serde_json::from_str(&read(&a)).unwrap();
    assert_eq!(v["events"], 0);
}

#[test]
fn window_is_since_inclusive_until_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("w.jsonl");
    let w = Window {
        since_ms: Some(T0 + 3000),
        until_ms: Some(T0 + 6000),
    };
    let s = run(&sample(), &dest, Format::Jsonl, Mode::Passthrough, w);
    let ids: Vec<u64> = read(&dest)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [3, 4, 5]);
    assert_eq!((s.events, s.oldest_id, s.newest_id), (3, Some(3), Some(5)));
    assert_eq!(s.since.as_deref(), Some("2027-01-01T00:00:03.000Z"));
    assert_eq!(s.until.as_deref(), Some("2027-01-01T00:00:06.000Z"));
    let inverted = Window {
        since_ms: Some(T0 + 2),
        until_ms: Some(T0 + 1),
    };
    let d2 = dir.path().join("inv.jsonl");
    assert!(
        export(
            std::iter::empty(),
            &d2,
            Format::Jsonl,
            Mode::Passthrough,
            b"",
            inverted
        )
        .is_err()
    );
    assert!(!d2.exists());
}

#[test]
fn aggregate_only_writes_one_object_whatever_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let (j, c) = (dir.path().join("a.jsonl"), dir.path().join("a.csv"));
    let s = run(&sample(), &j, Format::Jsonl, Mode::AggregateOnly, all());
    run(&sample(), &c, Format::Csv, Mode::AggregateOnly, all());
    let text = read(&j);
    assert_eq!(text, read(&c));
    assert_eq!(text.matches('\n').count(), 1);
    assert!(text.ends_with("}\n"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["mode"], "aggregate_only");
    assert_eq!(v["events"], 11);
    assert_eq!(v["cost_usd"]["sum"], "0.0125");
    assert!(!text.contains("alice") && !text.contains(&pseudonym("alice", b"")));
    assert_eq!(
        (s.events, s.oldest_id, s.newest_id),
        (11, Some(1), Some(11))
    );
    assert_eq!(s.bytes, text.len() as u64);
}

#[test]
fn refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("taken.jsonl");
    std::fs::write(&dest, "keep me").unwrap();
    let err = export(
        sample().into_iter().map(Ok),
        &dest,
        Format::Jsonl,
        Mode::Passthrough,
        b"",
        all(),
    )
    .unwrap_err();
    assert!(
        err.ends_with("already exists; refusing to overwrite"),
        "{err}"
    );
    assert_eq!(read(&dest), "keep me");
    assert_eq!(names(dir.path()), ["taken.jsonl"], "no temporary file left");
    // A dangling symlink counts as existing too.
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
    assert!(run_err(&link).contains("refusing to overwrite"));
    assert!(!dir.path().join("nowhere").exists());
}

fn run_err(dest: &Path) -> String {
    export(
        std::iter::empty(),
        dest,
        Format::Csv,
        Mode::Passthrough,
        b"",
        all(),
    )
    .unwrap_err()
}

#[test]
fn read_error_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.jsonl");
    let events = vec![Ok(ev(1, key_issued())), Err(s("disk on fire"))];
    let err = export(
        events.into_iter(),
        &dest,
        Format::Jsonl,
        Mode::Passthrough,
        b"",
        all(),
    )
    .unwrap_err();
    assert!(err.contains("disk on fire"), "{err}");
    assert!(names(dir.path()).is_empty());
}

#[test]
fn creates_parents_and_writes_0600() {
    let dir = tempfile::tempdir().unwrap();
    let dest: PathBuf = dir.path().join("a/b/c/out.jsonl");
    run(&sample(), &dest, Format::Jsonl, Mode::Pseudonymize, all());
    let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(names(&dir.path().join("a/b/c")), ["out.jsonl"]);
}

#[test]
fn output_is_byte_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Jsonl, Format::Csv] {
        for mode in [
            Mode::Passthrough,
            Mode::Pseudonymize,
            Mode::RedactPrivate,
            Mode::AggregateOnly,
        ] {
            let name = |n: u8| {
                dir.path()
                    .join(format!("{}-{}-{n}", mode.as_str(), format.as_str()))
            };
            let (a, b) = (name(1), name(2));
            let sa = run(&sample(), &a, format, mode, all());
            let sb = run(&sample(), &b, format, mode, all());
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
            assert_eq!((sa.events, sa.bytes), (sb.events, sb.bytes));
        }
    }
}

#[test]
fn salt_changes_pseudonyms_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let events = sample();
    export(
        events.iter().cloned().map(Ok),
        &a,
        Format::Jsonl,
        Mode::Pseudonymize,
        b"",
        all(),
    )
    .unwrap();
    export(
        events.iter().cloned().map(Ok),
        &b,
        Format::Jsonl,
        Mode::Pseudonymize,
        b"s1",
        all(),
    )
    .unwrap();
    let (ta, tb) = (read(&a), read(&b));
    assert_ne!(ta, tb);
    assert!(ta.contains(&pseudonym("alice", b"")));
    assert!(tb.contains(&pseudonym("alice", b"s1")));
    assert!(!ta.contains("\"alice\"") && !tb.contains("\"alice\""));
}

#[test]
fn summary_renders_and_serializes() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("s.csv");
    let w = Window {
        since_ms: Some(T0),
        until_ms: None,
    };
    let s = run(&sample(), &dest, Format::Csv, Mode::RedactPrivate, w);
    let bytes = std::fs::metadata(&dest).unwrap().len();
    assert_eq!(s.bytes, bytes);
    assert_eq!(
        s.render(),
        format!(
            "destination: {}\nformat: csv\nredaction: redact_private\nevents: 11\n\
             window: since 2027-01-01T00:00:00.000Z\noldest event id: 1\n\
             newest event id: 11\nbytes: {bytes}\n",
            dest.display()
        )
    );
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({
            "destination": dest.display().to_string(),
            "format": "csv",
            "mode": "redact_private",
            "events": 11,
            "since": "2027-01-01T00:00:00.000Z",
            "until": null,
            "oldest_id": 1,
            "newest_id": 11,
            "bytes": bytes,
        })
    );
    let empty = run(
        &[],
        &dir.path().join("e.jsonl"),
        Format::Jsonl,
        Mode::Passthrough,
        all(),
    );
    let text = empty.render();
    assert!(
        text.contains("\nwindow: all\noldest event id: none\nnewest event id: none\nbytes: 0\n"),
        "{text}"
    );
}

#[test]
fn a_destination_created_meanwhile_is_not_clobbered() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("race.jsonl");
    let d = dest.clone();
    let events = sample().into_iter().enumerate().map(move |(i, e)| {
        if i == 3 {
            std::fs::write(&d, "someone else's").unwrap();
        }
        Ok(e)
    });
    let err = export(events, &dest, Format::Jsonl, Mode::Passthrough, b"", all()).unwrap_err();
    assert!(
        err.ends_with("already exists; refusing to overwrite"),
        "{err}"
    );
    assert_eq!(read(&dest), "someone else's");
    assert_eq!(names(dir.path()), ["race.jsonl"], "no temporary file left");
}
