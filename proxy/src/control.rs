//! The CLI's way to keys and events. redb lets one process open a file,
//! so when a proxy runs on the data dir (it records its admin address in
//! `<data-dir>/admin.addr`) the CLI asks its admin API, with the token from
//! `<data-dir>/admin.token`; when none runs it opens the files itself and
//! runs the same key routes ([`crate::keys::api`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use crate::admin::token;
use crate::cli::{EventsArgs, Format, IssueArgs, KeysArgs, KeysCommand, StateArgs};
use crate::config::Config;
use crate::events::{self, EventFilter};
use crate::keys::{self, Keys};

pub(crate) struct Target {
    pub data_dir: PathBuf,
    pub token_file: PathBuf,
}

pub(crate) fn target(s: &StateArgs) -> Result<Target, String> {
    let mut config = match &s.config {
        Some(p) => Config::load(p, true),
        None => Config::load(Path::new("sluice.toml"), false),
    }
    .map_err(|e| e.to_string())?;
    if let Some(d) = &s.data_dir {
        config.data.dir = d.clone();
    }
    Ok(Target {
        token_file: token::token_path(&config),
        data_dir: config.data.dir,
    })
}

/// A running proxy's admin API, if the data dir names one that answers
/// as the process that recorded it (a stale address may now belong to
/// another proxy, or to anything else).
pub(crate) fn running(t: &Target) -> Option<SocketAddr> {
    let (addr, pid) = token::recorded(&t.data_dir)?;
    let (status, v) = http_with(
        addr,
        None,
        "GET",
        "/readyz",
        &Value::Null,
        Duration::from_secs(2),
    )
    .ok()?;
    let ours = std::fs::canonicalize(&t.data_dir).ok();
    let same_dir = ours.is_some() && v["data_dir"].as_str().map(std::path::PathBuf::from) == ours;
    (status == 200 && v["pid"].as_u64() == Some(pid as u64) && same_dir).then_some(addr)
}

/// The token of the proxy found running at `addr`.
pub(crate) fn admin_token(t: &Target, addr: SocketAddr) -> Result<String, String> {
    token::read(&t.token_file)?.ok_or_else(|| {
        format!(
            "a proxy runs at {addr} but its admin token file {} is missing",
            t.token_file.display()
        )
    })
}

/// One admin request over loopback HTTP/1.1.
pub(crate) fn http(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<(u16, Value), String> {
    http_with(
        addr,
        Some(token),
        method,
        path,
        body,
        Duration::from_secs(15),
    )
}

pub(crate) fn http_with(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let mut s = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(5)))
        .map_err(|e| format!("cannot reach the admin API at {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(&body))
        .map_err(|e| format!("admin API at {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("the admin API at {addr} did not answer within {timeout:?}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("admin API at {addr} sent no complete response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("admin API at {addr} sent no status"))?;
    let value = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    Ok((status, value))
}

/// Run a key route through the running proxy, else on the files.
fn call(t: &Target, method: &str, path: &str, body: &Value) -> Result<(u16, Value), String> {
    if let Some(addr) = running(t) {
        return http(addr, &admin_token(t, addr)?, method, path, body);
    }
    if !t.data_dir.is_dir() {
        // Issuing before the first start sets the data dir up; anything
        // else in a dir that does not exist is a mistake worth naming.
        if (method, path) != ("POST", "/admin/keys") {
            return Err(format!(
                "data dir {} does not exist (give --data-dir or --config)",
                t.data_dir.display()
            ));
        }
        crate::fsutil::create_private_dir(&t.data_dir)
            .map_err(|e| format!("cannot create {}: {e}", t.data_dir.display()))?;
    }
    let keys = Keys::open(&t.data_dir.join("keys.redb")).map_err(|e| busy(t, e))?;
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let reply = keys::api::handle(&keys, method, path, &bytes)
        .ok_or_else(|| format!("no key route {method} {path}"))?;
    if !reply.events.is_empty() {
        events::append_now(&t.data_dir.join("events.redb"), reply.events)
            .map_err(|e| busy(t, e))?;
    }
    Ok((reply.status, reply.body))
}

pub(crate) fn busy(t: &Target, e: String) -> String {
    if crate::store::is_busy(&e) {
        let addr = token::recorded_address(&t.data_dir)
            .map_or("no address recorded".to_owned(), |a| a.to_string());
        format!(
            "{e}\nThe data dir {} is in use, but no admin API answers ({addr}). Is the proxy \
             still starting, or was it started with another data dir?",
            t.data_dir.display()
        )
    } else {
        e
    }
}

pub(crate) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sluice: {msg}");
    ExitCode::FAILURE
}

fn issue_body(a: &IssueArgs) -> Value {
    let mut v = json!({
        "user_id": a.user_id, "team_id": a.team_id, "workspace": a.workspace,
        "customer_tier": a.customer_tier, "daily_cap_usd": a.daily_cap_usd,
        "monthly_cap_usd": a.monthly_cap_usd, "daily_token_cap": a.daily_token_cap,
        "monthly_token_cap": a.monthly_token_cap, "expires_in": a.expires_in,
        "allowed_models": a.allowed_models,
    });
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    v
}

pub fn keys(args: KeysArgs) -> ExitCode {
    let t = match target(&args.state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let (method, path, body) = match &args.command {
        KeysCommand::Issue(a) => ("POST", "/admin/keys".to_owned(), issue_body(a)),
        KeysCommand::List => ("GET", "/admin/keys".to_owned(), Value::Null),
        KeysCommand::Show { id } => ("GET", format!("/admin/keys/{id}"), Value::Null),
        KeysCommand::Rotate { id, grace_period } => (
            "POST",
            format!("/admin/keys/{id}/rotate"),
            json!({"grace_period": grace_period}),
        ),
        KeysCommand::Revoke { id } => ("POST", format!("/admin/keys/{id}/revoke"), Value::Null),
        KeysCommand::Sweep => ("POST", "/admin/keys/sweep".to_owned(), Value::Null),
    };
    if path.contains(['?', '#', ' ']) {
        return fail("a key id has no spaces, '?' or '#'");
    }
    let (status, v) = match call(&t, method, &path, &body) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if status >= 400 {
        let msg = v["error"]["message"]
            .as_str()
            .map_or(v.to_string(), str::to_owned);
        return fail(msg);
    }
    match args.output.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Format::Text => print_keys(&args.command, &v),
    }
    ExitCode::SUCCESS
}

fn print_key(v: &Value) {
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            if k == "secret" || k == "rotated" {
                continue;
            }
            let shown = match val {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            println!("{k:<20} {shown}");
        }
    }
}

fn print_keys(cmd: &KeysCommand, v: &Value) {
    match cmd {
        KeysCommand::List => {
            println!(
                "{:<22} {:<8} {:<16} {:<16} {:<12} {:<12}",
                "ID", "STATE", "USER", "TEAM", "DAILY_USD", "MONTHLY_USD"
            );
            for k in v["keys"].as_array().into_iter().flatten() {
                let s = |f: &str| k[f].as_str().unwrap_or("-").to_owned();
                println!(
                    "{:<22} {:<8} {:<16} {:<16} {:<12} {:<12}",
                    s("id"),
                    s("state"),
                    s("user_id"),
                    s("team_id"),
                    s("daily_cap_usd"),
                    s("monthly_cap_usd")
                );
            }
        }
        KeysCommand::Sweep => {
            let swept = v["swept"].as_array().map_or(0, Vec::len);
            println!("{swept} key(s) past their grace period revoked");
            for k in v["swept"].as_array().into_iter().flatten() {
                println!("  {}", k["id"].as_str().unwrap_or("?"));
            }
        }
        KeysCommand::Issue(_) | KeysCommand::Rotate { .. } => {
            print_key(v);
            if let Some(old) = v["rotated"].as_object() {
                println!(
                    "{:<20} {} (valid until {})",
                    "rotated",
                    old.get("id").and_then(Value::as_str).unwrap_or("?"),
                    old.get("grace_period_until")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                );
            }
            println!(
                "\nsecret (shown once, store it now):\n{}",
                v["secret"].as_str().unwrap_or("")
            );
        }
        _ => print_key(v),
    }
}

pub fn events(args: EventsArgs) -> ExitCode {
    let t = match target(&args.state) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let list = if let Some(addr) = running(&t) {
        let token = match admin_token(&t, addr) {
            Ok(tok) => tok,
            Err(e) => return fail(e),
        };
        let path = format!(
            "/admin/events?after={}&limit={}{}",
            args.after,
            args.limit,
            if args.types.is_empty() {
                String::new()
            } else {
                format!("&type={}", args.types.join(","))
            }
        );
        match http(addr, &token, "GET", &path, &Value::Null) {
            Ok((200, v)) => v["events"].clone(),
            Ok((_, v)) => return fail(v),
            Err(e) => return fail(e),
        }
    } else {
        let db = match crate::store::open(&t.data_dir.join("events.redb")) {
            Ok(db) => db,
            Err(e) => return fail(busy(&t, e)),
        };
        if let Err(e) = events::store::init(&db) {
            return fail(e);
        }
        let filter = EventFilter {
            types: args.types.clone(),
            after: args.after,
            limit: args.limit,
        };
        match events::store::events(&db, &filter) {
            Ok(evs) => json!(evs),
            Err(e) => return fail(e),
        }
    };
    match args.output.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        ),
        Format::Text => {
            for e in list.as_array().into_iter().flatten() {
                println!(
                    "{:>6} {} {:<24} {}",
                    e["id"],
                    crate::clock::rfc3339(e["ts_ms"].as_u64().unwrap_or(0)),
                    e["type"].as_str().unwrap_or("?"),
                    e["payload"]
                );
            }
        }
    }
    ExitCode::SUCCESS
}
