//! The data subject's rights on the admin plane:
//!
//! - `GET /analytics/user/{id}/export[?since=&until=]`: every event about
//!   the user, streamed as JSONL from one snapshot of the log (constant
//!   memory), with `Content-Disposition` and the row count in
//!   `x-sluice-row-count`; an unknown user is a 200 with no rows.
//!   Recorded as `analytics.user_exported`.
//! - `POST /analytics/user/{id}/forget[?dry_run=true]`: the id replaced by
//!   its pseudonym in every event, usage record and spend row; idempotent.
//!   Recorded as `analytics.user_forgotten` (which keeps only the
//!   pseudonym).

use bytes::{BufMut, BytesMut};
use pingora_core::protocols::http::ServerSession;
use pingora_http::ResponseHeader;
use redb::ReadableDatabase;
use serde_json::{Value, json};

use crate::events::EventBody;
use crate::events::index::{self, Query};
use crate::events::retention::{self, Forgotten};
use crate::state::Gateway;

/// `^[A-Za-z0-9_-]{1,200}$`: ids are echoed in a header and a file name.
pub fn valid_user_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

pub fn invalid_user_id(id: &str) -> Value {
    let shown: String = id.chars().take(64).collect();
    json!({"error": {"message": format!("user id {shown:?} must match ^[A-Za-z0-9_-]{{1,200}}$"), "type": "invalid_request_error", "param": "user_id", "code": "invalid_user_id"}})
}

/// Stream the export; `Err` only for a broken connection.
pub async fn export(
    gw: &Gateway,
    session: &mut ServerSession,
    user: &str,
    window: &super::analytics::Window,
    headers: &[(&'static str, String)],
) -> pingora_error::Result<Result<u64, String>> {
    let q = Query {
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        user: Some(user.to_owned()),
        ..Default::default()
    };
    let scans = gw
        .events
        .db()
        .begin_read()
        .map_err(|e| e.to_string())
        .and_then(|tx| {
            let count = index::scan_in(&tx, &q)?.count() as u64;
            Ok((count, index::scan_in(&tx, &q)?))
        });
    let (rows, scan) = match scans {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let mut h = ResponseHeader::build(200, Some(6))?;
    h.insert_header("content-type", "application/x-ndjson")?;
    h.insert_header(
        "content-disposition",
        format!("attachment; filename=\"{user}.jsonl\""),
    )?;
    h.insert_header("x-sluice-row-count", rows.to_string())?;
    if rows == 0 {
        h.insert_header("content-length", "0")?;
    } else if session.req_header().version == http::Version::HTTP_11 {
        h.insert_header("transfer-encoding", "chunked")?;
    }
    for (k, v) in headers {
        h.insert_header(*k, v.as_str())?;
    }
    session.write_response_header(Box::new(h)).await?;
    let mut buf = BytesMut::with_capacity(64 << 10);
    for ev in scan {
        let line = match ev.and_then(|e| serde_json::to_vec(&e).map_err(|e| e.to_string())) {
            Ok(l) => l,
            // Headers are out: a broken log ends the stream short of the
            // row count, which the client can see.
            Err(e) => {
                tracing::error!(user, "user export cut short: {e}");
                break;
            }
        };
        buf.put_slice(&line);
        buf.put_u8(b'\n');
        if buf.len() >= 60 << 10 {
            session
                .write_response_body(buf.split().freeze(), false)
                .await?;
        }
    }
    session
        .write_response_body(buf.split().freeze(), true)
        .await?;
    gw.events
        .emit(EventBody::UserExported {
            pseudonym: crate::audit::pseudonym(user, b""),
            rows,
        })
        .await;
    Ok(Ok(rows))
}

/// Forget `user`; a dry run only counts and records nothing.
pub async fn forget(gw: &Gateway, user: &str, dry_run: bool) -> Result<Value, String> {
    let pseudonym = crate::audit::pseudonym(user, b"");
    let db = gw.events.db();
    let n: Forgotten = retention::forget(db, user, &pseudonym, dry_run)?;
    if !dry_run {
        gw.events
            .emit(EventBody::UserForgotten {
                pseudonym: pseudonym.clone(),
                pseudonymized_rows: n.rows(),
            })
            .await;
        gw.events.flush().await;
    }
    Ok(forget_report(&pseudonym, &n, dry_run))
}

pub fn forget_report(pseudonym: &str, n: &Forgotten, dry_run: bool) -> Value {
    json!({
        "pseudonym": pseudonym,
        "dry_run": dry_run,
        "pseudonymized_rows": n.rows(),
        "events": n.events,
        "usage_records": n.usage_records,
        "spend_rows": n.spend_rows,
    })
}
