//! The trace store on the admin plane, and the operations the CLI runs
//! through a running proxy (which holds the redb files):
//!
//! | route | does |
//! |---|---|
//! | `GET /admin/traces?type=&gateway_key=&user=&team=&since=&until=&limit=` | events in time order |
//! | `POST /admin/traces/purge` `{"days": 90, "dry_run": false}` | retention purge, one `trace.swept` |
//! | `POST /admin/backup` `{"dest": "/path/new-dir"}` | consistent copy of the redb files |
//! | `POST /admin/audit/export` [`ExportRequest`] | `sluice audit export` through the proxy |

use serde::Deserialize;
use serde_json::{Value, json};

use super::analytics::Window;
use crate::events::index::{self, Query};
use crate::events::retention;
use crate::http::app::query_param;
use crate::state::Gateway;

/// Default retention, in days.
pub const DEFAULT_DAYS: u64 = 90;

fn bad(message: impl Into<String>) -> (u16, Value) {
    (
        400,
        json!({"error": {"message": message.into(), "type": "invalid_request_error", "param": null, "code": "invalid_request"}}),
    )
}

fn failed(e: String) -> (u16, Value) {
    (
        500,
        json!({"error": {"message": e, "type": "server_error", "param": null, "code": "trace_store_error"}}),
    )
}

pub async fn handle(
    gw: &Gateway,
    method: &str,
    path: &str,
    q: Option<&str>,
    body: &[u8],
) -> Option<(u16, Value)> {
    Some(match (method, path) {
        ("GET", "/admin/traces") => list(gw, q),
        ("POST", "/admin/traces/purge") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Req {
                days: Option<u64>,
                #[serde(default)]
                dry_run: bool,
            }
            match serde_json::from_slice::<Req>(body) {
                Ok(r) => match purge(gw, r.days.unwrap_or(DEFAULT_DAYS), r.dry_run).await {
                    Ok(v) => (200, v),
                    Err(e) => bad(e),
                },
                Err(e) => bad(format!("expected {{\"days\": N, \"dry_run\": bool}}: {e}")),
            }
        }
        ("POST", "/admin/backup") => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Req {
                dest: std::path::PathBuf,
            }
            match serde_json::from_slice::<Req>(body) {
                Ok(r) => {
                    let events = gw.events.path().to_owned();
                    let keys = gw.config.data.dir.join("keys.redb");
                    match crate::backup::backup(
                        &[
                            ("events.redb", gw.events.db(), &events),
                            ("keys.redb", gw.keys.db(), &keys),
                        ],
                        &r.dest,
                    ) {
                        Ok(m) => (200, json!(m)),
                        Err(e) => bad(e),
                    }
                }
                Err(e) => bad(format!("expected {{\"dest\": \"/a/new/directory\"}}: {e}")),
            }
        }
        ("POST", "/admin/audit/export") => match serde_json::from_slice::<ExportRequest>(body) {
            Ok(r) => {
                let db = gw.events.clone();
                // Writing a large file is blocking work.
                match tokio::task::spawn_blocking(move || audit_export(db.db(), &r)).await {
                    Ok(Ok(summary)) => (200, json!(summary)),
                    Ok(Err(e)) => bad(e),
                    Err(e) => failed(e.to_string()),
                }
            }
            Err(e) => bad(format!("invalid export request: {e}")),
        },
        _ => return None,
    })
}

/// What `sluice audit export` asks for; the same through the admin API
/// and on the files.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    pub dest: std::path::PathBuf,
    pub format: String,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Empty: the audit event types.
    #[serde(default)]
    pub event_types: Vec<String>,
    pub redaction: String,
    pub salt: Option<String>,
}

pub fn audit_export(
    db: &redb::Database,
    r: &ExportRequest,
) -> Result<crate::audit::Summary, String> {
    use clap::ValueEnum;
    let format = crate::audit::Format::from_str(&r.format, false)
        .map_err(|_| format!("format must be jsonl or csv, not {:?}", r.format))?;
    let mode = crate::audit::Mode::from_str(&r.redaction, false).map_err(|_| {
        format!(
            "redaction must be passthrough, pseudonymize, redact_private or aggregate_only, not {:?}",
            r.redaction
        )
    })?;
    let at = |v: &Option<String>, name: &str| {
        v.as_deref()
            .map(|s| crate::clock::parse_instant(s).map_err(|e| format!("--{name}: {e}")))
            .transpose()
    };
    let window = crate::audit::Window {
        since_ms: at(&r.since, "since")?,
        until_ms: at(&r.until, "until")?,
    };
    let types = if r.event_types.is_empty() {
        crate::events::AUDIT_TYPES
            .iter()
            .map(|t| t.to_string())
            .collect()
    } else {
        r.event_types.clone()
    };
    let q = Query {
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        types,
        ..Default::default()
    };
    let events = index::scan(db, &q)?;
    let salt = r.salt.as_deref().unwrap_or("").as_bytes();
    crate::audit::export(events, &r.dest, format, mode, salt, window)
}

/// `days` must be at least 1: a zero-day purge would delete the traces of
/// requests still in flight.
pub fn check_days(days: u64) -> Result<(), String> {
    if days == 0 {
        return Err("days must be at least 1 (0 would delete every trace)".into());
    }
    if days > 36_500 {
        return Err("days must be at most 36500".into());
    }
    Ok(())
}

/// Purge and, when applied, record exactly one `trace.swept`.
pub async fn purge(gw: &Gateway, days: u64, dry_run: bool) -> Result<Value, String> {
    check_days(days)?;
    let now = crate::clock::now_ms();
    let cutoff = now.saturating_sub(days * 86_400_000);
    // Everything emitted before the purge is in the log before it looks.
    gw.events.flush().await;
    let db = gw.events.db();
    let p = retention::purge(db, cutoff, dry_run, now)?;
    if !dry_run {
        gw.events.emit(p.event()).await;
        gw.events.flush().await;
    }
    Ok(json!(p))
}

fn list(gw: &Gateway, q: Option<&str>) -> (u16, Value) {
    let w = match Window::parse(q) {
        Ok(w) => w,
        Err(e) => return bad(e),
    };
    let limit = query_param(q, "limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000usize)
        .clamp(1, 100_000);
    let query = Query {
        since_ms: w.since_ms,
        until_ms: w.until_ms,
        types: crate::http::app::list_param(q, "type"),
        gateway_key: query_param(q, "gateway_key"),
        user: query_param(q, "user"),
        team: query_param(q, "team"),
    };
    let scan = match index::scan(gw.events.db(), &query) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    match scan.take(limit).collect::<Result<Vec<_>, _>>() {
        Ok(events) => (200, json!({"events": events})),
        Err(e) => failed(e),
    }
}

/// `[traces] purge_daily`: the purge once a day, the first a minute after
/// start (not at once: a restart loop must not purge in a loop).
pub struct RetentionSchedule {
    pub gateway: std::sync::Arc<Gateway>,
}

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for RetentionSchedule {
    async fn start(&self, mut shutdown: pingora_core::server::ShutdownWatch) {
        let cfg = &self.gateway.config.traces;
        if !cfg.purge_daily {
            return;
        }
        let mut wait = std::time::Duration::from_secs(60);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            match purge(&self.gateway, cfg.retention_days, false).await {
                Ok(v) => tracing::info!(
                    deleted = v["rows_deleted"].as_u64(),
                    kept_audit = v["rows_audit_exempt"].as_u64(),
                    "trace store purged (retention {} days)",
                    cfg.retention_days
                ),
                Err(e) => tracing::error!("scheduled trace purge failed: {e}"),
            }
            wait = std::time::Duration::from_secs(86_400);
        }
    }
}
