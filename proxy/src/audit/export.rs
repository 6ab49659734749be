//! Writing an export: JSONL or CSV rows (or the `aggregate_only` summary)
//! to a new private file, never over an existing one.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

use super::{Aggregate, Mode, redact};
use crate::clock;
use crate::events::Event;

/// The first line of a CSV export.
pub const CSV_HEADER: &str =
    "id,ts_ms,timestamp,type,schema,sensitivity,gateway_key_id,user_id,team_id,payload";

/// The id columns of a CSV row: top-level payload fields of these names.
const CSV_ID_COLUMNS: [&str; 3] = ["gateway_key_id", "user_id", "team_id"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One compact JSON object per line.
    Jsonl,
    /// RFC 4180 with a header; the payload as one JSON cell.
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// Which events to export by time: `since_ms <= ts_ms < until_ms`, an
/// absent end unbounded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Window {
    pub fn contains(&self, ts_ms: u64) -> bool {
        self.since_ms.is_none_or(|s| ts_ms >= s) && self.until_ms.is_none_or(|u| ts_ms < u)
    }
}

/// What an export wrote. Only what was asked and what was written: no
/// clock reading, nothing random.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub destination: String,
    pub format: Format,
    pub mode: Mode,
    pub events: u64,
    /// The window as given, RFC 3339.
    pub since: Option<String>,
    pub until: Option<String>,
    pub oldest_id: Option<u64>,
    pub newest_id: Option<u64>,
    pub bytes: u64,
}

impl Summary {
    /// One `key: value` per line.
    pub fn render(&self) -> String {
        let id = |v: Option<u64>| v.map_or("none".to_owned(), |n| n.to_string());
        let window = match (&self.since, &self.until) {
            (None, None) => "all".to_owned(),
            (Some(s), None) => format!("since {s}"),
            (None, Some(u)) => format!("until {u}"),
            (Some(s), Some(u)) => format!("since {s} until {u}"),
        };
        format!(
            "destination: {}\nformat: {}\nredaction: {}\nevents: {}\nwindow: {window}\n\
             oldest event id: {}\nnewest event id: {}\nbytes: {}\n",
            self.destination,
            self.format.as_str(),
            self.mode.as_str(),
            self.events,
            id(self.oldest_id),
            id(self.newest_id),
            self.bytes,
        )
    }
}

/// Export the events within `window` to the new file `dest`.
///
/// Refuses when `dest` exists. The rows go to a temporary file (0600) in
/// the same directory, which is then hard-linked to `dest` (failing, not
/// replacing, if `dest` appeared meanwhile) and removed: `dest` never holds
/// a partial export. Events are streamed; nothing grows with their number
/// but the distinct-id sets of `aggregate_only`.
pub fn export(
    events: impl Iterator<Item = Result<Event, String>>,
    dest: &Path,
    format: Format,
    mode: Mode,
    salt: &[u8],
    window: Window,
) -> Result<Summary, String> {
    if let (Some(s), Some(u)) = (window.since_ms, window.until_ms)
        && s > u
    {
        return Err(format!(
            "the window starts ({}) after it ends ({})",
            clock::rfc3339(s),
            clock::rfc3339(u)
        ));
    }
    let shown = dest.display();
    if std::fs::symlink_metadata(dest).is_ok() {
        return Err(format!("{shown} already exists; refusing to overwrite"));
    }
    let name = dest
        .file_name()
        .ok_or_else(|| format!("{shown} does not name a file"))?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::fsutil::create_private_dir(&dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(temp_name(name));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("creating {}: {e}", tmp.display()))?;

    let written = write_all(events, file, format, mode, salt, window).and_then(|w| {
        std::fs::hard_link(&tmp, dest).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{shown} already exists; refusing to overwrite")
            }
            _ => format!("linking {} to {shown}: {e}", tmp.display()),
        })?;
        Ok(w)
    });
    let _ = std::fs::remove_file(&tmp);
    let w = written?;
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Summary {
        destination: shown.to_string(),
        format,
        mode,
        events: w.events,
        since: window.since_ms.map(clock::rfc3339),
        until: window.until_ms.map(clock::rfc3339),
        oldest_id: w.oldest,
        newest_id: w.newest,
        bytes: w.bytes,
    })
}

/// `.<name>.tmp-<pid>-<n>`: unique among this process's exports too.
fn temp_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut s = std::ffi::OsString::from(".");
    s.push(name);
    s.push(format!(".tmp-{}-{n}", std::process::id()));
    s
}

/// What went into the file.
struct Written {
    events: u64,
    oldest: Option<u64>,
    newest: Option<u64>,
    bytes: u64,
}

fn write_all(
    events: impl Iterator<Item = Result<Event, String>>,
    file: File,
    format: Format,
    mode: Mode,
    salt: &[u8],
    window: Window,
) -> Result<Written, String> {
    let io = |e: std::io::Error| format!("writing the export: {e}");
    let mut out = Counting {
        inner: BufWriter::with_capacity(64 * 1024, file),
        bytes: 0,
    };
    let mut w = Written {
        events: 0,
        oldest: None,
        newest: None,
        bytes: 0,
    };
    let mut agg = (mode == Mode::AggregateOnly).then(Aggregate::new);
    if agg.is_none() && format == Format::Csv {
        writeln!(out, "{CSV_HEADER}").map_err(io)?;
    }
    for ev in events {
        let ev = ev.map_err(|e| format!("reading events: {e}"))?;
        if !window.contains(ev.ts_ms) {
            continue;
        }
        w.events += 1;
        w.oldest = Some(w.oldest.map_or(ev.id, |o| o.min(ev.id)));
        w.newest = Some(w.newest.map_or(ev.id, |n| n.max(ev.id)));
        let v = serde_json::to_value(&ev).map_err(|e| format!("event {}: {e}", ev.id))?;
        match (&mut agg, format) {
            (Some(a), _) => a.add(&v)?,
            (None, Format::Jsonl) => {
                serde_json::to_writer(&mut out, &redact(v, mode, salt))
                    .map_err(|e| format!("writing the export: {e}"))?;
                out.write_all(b"\n").map_err(io)?;
            }
            (None, Format::Csv) => write_csv_row(&mut out, &redact(v, mode, salt)).map_err(io)?,
        }
    }
    if let Some(a) = agg {
        serde_json::to_writer(&mut out, &a.to_json())
            .map_err(|e| format!("writing the export: {e}"))?;
        out.write_all(b"\n").map_err(io)?;
    }
    out.flush().map_err(io)?;
    w.bytes = out.bytes;
    let file = out.inner.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(w)
}

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One CSV row of a redacted serialized event.
fn write_csv_row(out: &mut impl Write, v: &Value) -> std::io::Result<()> {
    let top = |k: &str| cell(v.get(k));
    let payload = v.get("payload").unwrap_or(&Value::Null);
    let ts = v.get("ts_ms").and_then(Value::as_u64);
    let mut cells = vec![
        top("id"),
        top("ts_ms"),
        ts.map(clock::rfc3339).unwrap_or_default(),
        top("type"),
        top("schema"),
        top("sensitivity"),
    ];
    cells.extend(CSV_ID_COLUMNS.iter().map(|k| cell(payload.get(*k))));
    cells.push(payload.to_string());
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_field(out, c)?;
    }
    out.write_all(b"\n")
}

/// A JSON value as a CSV cell: strings bare, null empty, the rest as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// RFC 4180: quote a field holding a comma, a quote, CR or LF, doubling
/// its quotes.
pub(crate) fn write_field(out: &mut impl Write, field: &str) -> std::io::Result<()> {
    if field.contains([',', '"', '\r', '\n']) {
        out.write_all(b"\"")?;
        out.write_all(field.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(field.as_bytes())
    }
}
