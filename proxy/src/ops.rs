//! The CLI's trace-store operations: retention, audit export, a user's
//! export and forget, backup and restore. Like `sluice keys`, each goes
//! through the admin API of the proxy running on the data dir (it holds
//! the redb files), or works on the files when none runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::admin::traces::{self, ExportRequest};
use crate::cli::{
    AuditCommand, Format, OutputArgs, StateArgs, TracesArgs, TracesCommand, UsersArgs, UsersCommand,
};
use crate::control::{Target, admin_token, busy, fail, http_with, running, target};
use crate::events::{self, index, retention};

/// Long operations (a backup, an export of millions of events).
const SLOW: Duration = Duration::from_secs(600);

/// The running proxy's answer to one admin call, or `None` when none runs.
fn via_proxy(t: &Target, method: &str, path: &str, body: &Value) -> Option<Result<Value, String>> {
    let addr = running(t)?;
    Some(admin_token(t, addr).and_then(|tok| {
        let (status, v) = http_with(addr, Some(&tok), method, path, body, SLOW)?;
        if status >= 400 {
            return Err(v["error"]["message"]
                .as_str()
                .map_or(v.to_string(), str::to_owned));
        }
        Ok(v)
    }))
}

fn events_db(t: &Target) -> Result<redb::Database, String> {
    let path = t.data_dir.join("events.redb");
    if !path.exists() {
        return Err(format!("no event log at {}", path.display()));
    }
    let db = crate::store::open(&path).map_err(|e| busy(t, e))?;
    events::store::init(&db)?;
    Ok(db)
}

/// Paths are resolved here: the proxy's working directory is not ours.
fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn print(out: &OutputArgs, v: &Value, text: impl FnOnce(&Value)) {
    match out.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        Format::Text => text(v),
    }
}

fn print_fields(v: &Value) {
    for (k, val) in v.as_object().into_iter().flatten() {
        let shown = match val {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("{k:<24} {shown}");
    }
}

pub fn traces(args: TracesArgs) -> ExitCode {
    let t = match target(&args.state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let TracesCommand::Purge { days, dry_run } = args.command;
    if let Err(e) = traces::check_days(days) {
        eprintln!("sluice: {e}");
        return ExitCode::from(2);
    }
    let body = json!({"days": days, "dry_run": dry_run});
    let result = via_proxy(&t, "POST", "/admin/traces/purge", &body).unwrap_or_else(|| {
        let db = events_db(&t)?;
        let now = crate::clock::now_ms();
        let p = retention::purge(&db, now.saturating_sub(days * 86_400_000), dry_run, now)?;
        if !dry_run {
            events::store::commit(&db, &[events::store::Entry::Event(p.event(), now)])?;
        }
        Ok(json!(p))
    });
    match result {
        Ok(v) => {
            print(&args.output, &v, print_fields);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn audit(cmd: AuditCommand) -> ExitCode {
    let AuditCommand::Export(a) = cmd;
    let t = match target(&a.state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    use clap::ValueEnum;
    let name = |v: &dyn Fn() -> Option<clap::builder::PossibleValue>| {
        v().map(|p| p.get_name().to_owned()).unwrap_or_default()
    };
    let req = ExportRequest {
        dest: absolute(&a.dest),
        format: name(&|| a.export_format.to_possible_value()),
        since: a.since.clone(),
        until: a.until.clone(),
        event_types: a.event_types.clone(),
        redaction: name(&|| a.redaction.to_possible_value()),
        salt: a.salt.clone(),
    };
    if req.dest.exists() {
        return fail(format!(
            "{} already exists; refusing to overwrite",
            req.dest.display()
        ));
    }
    let body = serde_json::to_value(&req).expect("an export request serializes");
    let result = via_proxy(&t, "POST", "/admin/audit/export", &body).unwrap_or_else(|| {
        let db = events_db(&t)?;
        traces::audit_export(&db, &req).map(|s| json!(s))
    });
    match result {
        Ok(v) => {
            print_fields(&v);
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub fn users(args: UsersArgs) -> ExitCode {
    let t = match target(&args.state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let id = match &args.command {
        UsersCommand::Export { id, .. } | UsersCommand::Forget { id, .. } => id,
    };
    if !crate::admin::gdpr::valid_user_id(id) {
        eprintln!("sluice: user id must match ^[A-Za-z0-9_-]{{1,200}}$");
        return ExitCode::from(2);
    }
    match &args.command {
        UsersCommand::Export { id, out } => match export_user(&t, id, out.as_deref()) {
            Ok(rows) => {
                eprintln!("{rows} event(s) exported");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        UsersCommand::Forget { id, confirm } => {
            let dry = !confirm;
            let path = format!("/analytics/user/{id}/forget?dry_run={dry}");
            let result = via_proxy(&t, "POST", &path, &Value::Null).unwrap_or_else(|| {
                let db = events_db(&t)?;
                let pseudonym = crate::audit::pseudonym(id, b"");
                let n = retention::forget(&db, id, &pseudonym, dry)?;
                if !dry {
                    let ev = events::EventBody::UserForgotten {
                        pseudonym: pseudonym.clone(),
                        pseudonymized_rows: n.rows(),
                    };
                    let now = crate::clock::now_ms();
                    events::store::commit(&db, &[events::store::Entry::Event(ev, now)])?;
                }
                Ok(crate::admin::gdpr::forget_report(&pseudonym, &n, dry))
            });
            match result {
                Ok(v) => {
                    print(&args.output, &v, |v| {
                        let rows = v["pseudonymized_rows"].as_u64().unwrap_or(0);
                        if dry {
                            println!(
                                "dry run: this would pseudonymize {rows} row(s) ({} events, {} usage records, {} spend rows) as {}; run again with --confirm",
                                v["events"],
                                v["usage_records"],
                                v["spend_rows"],
                                v["pseudonym"].as_str().unwrap_or("?")
                            );
                        } else {
                            println!(
                                "pseudonymized {rows} row(s) as {}",
                                v["pseudonym"].as_str().unwrap_or("?")
                            );
                        }
                    });
                    if dry {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// Stream the user's events to `out` (or stdout); the row count.
fn export_user(t: &Target, id: &str, out: Option<&Path>) -> Result<u64, String> {
    let mut sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let rows = match running(t) {
        Some(addr) => {
            let tok = admin_token(t, addr)?;
            // HTTP/1.0: the body ends with the connection, no chunking to
            // undo, and it is copied through without being held.
            let mut s = std::net::TcpStream::connect(addr)
                .map_err(|e| format!("cannot reach the admin API at {addr}: {e}"))?;
            s.set_read_timeout(Some(SLOW)).ok();
            write!(
                s,
                "GET /analytics/user/{id}/export HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {tok}\r\n\r\n"
            )
            .map_err(|e| e.to_string())?;
            let mut r = BufReader::new(s);
            let mut line = String::new();
            r.read_line(&mut line).map_err(|e| e.to_string())?;
            let status: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut rows = 0;
            loop {
                line.clear();
                if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line
                    .to_ascii_lowercase()
                    .strip_prefix("x-sluice-row-count:")
                {
                    rows = v.trim().parse().unwrap_or(0);
                }
            }
            if status != 200 {
                let mut body = String::new();
                r.read_to_string(&mut body).ok();
                return Err(format!("the admin API answered {status}: {body}"));
            }
            std::io::copy(&mut r, &mut sink).map_err(|e| e.to_string())?;
            rows
        }
        None => {
            let db = events_db(t)?;
            let q = index::Query {
                user: Some(id.to_owned()),
                ..Default::default()
            };
            let mut rows = 0;
            for ev in index::scan(&db, &q)? {
                let line = serde_json::to_string(&ev?).map_err(|e| e.to_string())?;
                writeln!(sink, "{line}").map_err(|e| e.to_string())?;
                rows += 1;
            }
            let ev = events::EventBody::UserExported {
                pseudonym: crate::audit::pseudonym(id, b""),
                rows,
            };
            events::store::commit(
                &db,
                &[events::store::Entry::Event(ev, crate::clock::now_ms())],
            )?;
            rows
        }
    };
    sink.flush().map_err(|e| e.to_string())?;
    Ok(rows)
}

pub fn backup(dest: &Path, state: &StateArgs, out: &OutputArgs) -> ExitCode {
    let t = match target(state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let dest = absolute(dest);
    let result =
        via_proxy(&t, "POST", "/admin/backup", &json!({"dest": dest})).unwrap_or_else(|| {
            let (events_path, keys_path) =
                (t.data_dir.join("events.redb"), t.data_dir.join("keys.redb"));
            let ev = events_db(&t)?;
            let keys = crate::keys::Keys::open(&keys_path).map_err(|e| busy(&t, e))?;
            crate::backup::backup(
                &[
                    ("events.redb", &ev, &events_path),
                    ("keys.redb", keys.db(), &keys_path),
                ],
                &dest,
            )
            .map(|m| json!(m))
        });
    report(out, result, &format!("backed up into {}", dest.display()))
}

pub fn restore(src: &Path, state: &StateArgs, out: &OutputArgs) -> ExitCode {
    let t = match target(state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    if running(&t).is_some() {
        return fail(format!(
            "a proxy runs on {}: stop it before restoring",
            t.data_dir.display()
        ));
    }
    let result = crate::backup::restore(src, &t.data_dir).map(|m| json!(m));
    report(
        out,
        result,
        &format!("restored into {}", t.data_dir.display()),
    )
}

fn report(out: &OutputArgs, result: Result<Value, String>, done: &str) -> ExitCode {
    match result {
        Ok(v) => {
            print(out, &v, |v| {
                println!("{done}");
                for f in v["files"].as_array().into_iter().flatten() {
                    println!(
                        "  {:<12} schema {}  {} bytes  sha256 {}",
                        f["name"].as_str().unwrap_or("?"),
                        f["schema"],
                        f["bytes"],
                        f["sha256"].as_str().unwrap_or("?")
                    );
                }
            });
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
