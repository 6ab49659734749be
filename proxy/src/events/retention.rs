//! Keeping the trace store bounded and people forgettable: the retention
//! purge (audit events exempt) and the GDPR forget (a user's id replaced
//! by its pseudonym in every event, usage record and spend row).
//!
//! Both run in write transactions of their own; the event writer waits for
//! them like for any other writer, the request path never does.

use redb::{Database, ReadableTable, WriteTransaction};
use serde::Serialize;

use super::index::{self, BY_TIME, Indexes};
use super::store::{EVENTS, SPEND, USAGE};
use super::types::{AUDIT_TYPES, Event, EventBody, Spend, UsageRecord};
use crate::clock;
use crate::store::{decode, encode, err};

/// Events deleted per transaction, so a large purge never holds the
/// writer for long.
const CHUNK: usize = 10_000;

/// What a purge found and did (the payload of `trace.swept`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Purge {
    pub cutoff: String,
    /// Events strictly older than the cutoff.
    pub rows_eligible: u64,
    /// Of those, audit events, which are kept.
    pub rows_audit_exempt: u64,
    /// Deleted (in a dry run: that would be).
    pub rows_deleted: u64,
    /// The oldest event left afterwards.
    pub oldest_kept_timestamp: Option<String>,
    pub dry_run: bool,
    pub swept_at: String,
}

impl Purge {
    pub fn event(&self) -> EventBody {
        EventBody::TraceSwept {
            cutoff: self.cutoff.clone(),
            rows_eligible: self.rows_eligible,
            rows_audit_exempt: self.rows_audit_exempt,
            rows_deleted: self.rows_deleted,
            oldest_kept_timestamp: self.oldest_kept_timestamp.clone(),
            dry_run: self.dry_run,
            swept_at: self.swept_at.clone(),
        }
    }
}

/// Delete non-audit events with `ts < cutoff_ms`; a dry run only counts.
pub fn purge(db: &Database, cutoff_ms: u64, dry_run: bool, now_ms: u64) -> Result<Purge, String> {
    let mut out = Purge {
        cutoff: clock::rfc3339(cutoff_ms),
        rows_eligible: 0,
        rows_audit_exempt: 0,
        rows_deleted: 0,
        oldest_kept_timestamp: None,
        dry_run,
        swept_at: clock::rfc3339(now_ms),
    };
    // The oldest kept is the oldest audit event below the cutoff, else the
    // first event at or after it.
    let mut oldest_kept: Option<u64> = None;
    let mut resume = (0u64, 0u64);
    loop {
        let tx = db.begin_write().map_err(err)?;
        let (done, next) =
            purge_chunk(&tx, resume, cutoff_ms, dry_run, &mut out, &mut oldest_kept)?;
        if dry_run {
            tx.abort().map_err(err)?;
        } else {
            tx.commit().map_err(err)?;
        }
        if done {
            break;
        }
        resume = next;
    }
    if oldest_kept.is_none() {
        let tx = redb::ReadableDatabase::begin_read(db).map_err(err)?;
        let t = tx.open_table(BY_TIME).map_err(err)?;
        oldest_kept = t
            .range(index::time_key(cutoff_ms, 0)..)
            .map_err(err)?
            .next()
            .transpose()
            .map_err(err)?
            .map(|(k, _)| index::time_of(k.value()).0);
    }
    out.oldest_kept_timestamp = oldest_kept.map(clock::rfc3339);
    Ok(out)
}

/// One chunk from `from` on; whether the purge is done, and where the next
/// chunk starts.
fn purge_chunk(
    tx: &WriteTransaction,
    from: (u64, u64),
    cutoff_ms: u64,
    dry_run: bool,
    out: &mut Purge,
    oldest_kept: &mut Option<u64>,
) -> Result<(bool, (u64, u64)), String> {
    let mut events = tx.open_table(EVENTS).map_err(err)?;
    let mut doomed = Vec::new();
    let mut last = None;
    {
        let time = tx.open_table(BY_TIME).map_err(err)?;
        let (lo, hi) = (
            index::time_key(from.0, from.1),
            index::time_key(cutoff_ms, 0),
        );
        for row in time.range(lo..hi).map_err(err)? {
            let (ts, id) = index::time_of(row.map_err(err)?.0.value());
            last = Some((ts, id));
            let Some(v) = events.get(id).map_err(err)? else {
                continue;
            };
            let ev: Event = decode(v.value())?;
            out.rows_eligible += 1;
            if AUDIT_TYPES.contains(&ev.body.type_name()) {
                out.rows_audit_exempt += 1;
                oldest_kept.get_or_insert(ts);
            } else {
                out.rows_deleted += 1;
                doomed.push(ev);
            }
            if doomed.len() >= CHUNK {
                break;
            }
        }
    }
    if !dry_run {
        let mut idx = Indexes::open(tx)?;
        for ev in &doomed {
            events.remove(ev.id).map_err(err)?;
            idx.remove(ev.id, ev.ts_ms, &ev.body)?;
        }
    }
    let done = doomed.len() < CHUNK;
    // In a dry run nothing was removed: the next chunk starts past `last`.
    let next = last.map_or(from, |(ts, id)| (ts, id + 1));
    Ok((done, next))
}

/// What a forget touched.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Forgotten {
    pub events: u64,
    pub usage_records: u64,
    pub spend_rows: u64,
}

impl Forgotten {
    pub fn rows(&self) -> u64 {
        self.events + self.usage_records + self.spend_rows
    }
}

/// Replace `user` by `pseudonym` in place; a dry run only counts. Running
/// it again finds nothing left to change.
pub fn forget(
    db: &Database,
    user: &str,
    pseudonym: &str,
    dry_run: bool,
) -> Result<Forgotten, String> {
    let tx = db.begin_write().map_err(err)?;
    let mut n = Forgotten::default();
    {
        let mut events = tx.open_table(EVENTS).map_err(err)?;
        let keys = index::user_events(&tx, user)?;
        let mut idx = Indexes::open(&tx)?;
        for (_, id) in keys {
            let Some(v) = events.get(id).map_err(err)? else {
                continue;
            };
            let mut ev: Event = decode(v.value())?;
            drop(v);
            let before = ev.body.clone();
            if !ev.body.replace_user(user, pseudonym) {
                continue;
            }
            n.events += 1;
            if !dry_run {
                idx.remove(ev.id, ev.ts_ms, &before)?;
                idx.insert(ev.id, ev.ts_ms, &ev.body)?;
                let bytes = encode(&(ev.id, ev.ts_ms, ev.schema, ev.sensitivity, &ev.body));
                events.insert(ev.id, bytes.as_slice()).map_err(err)?;
            }
        }
        let scope = format!("user:{user}");
        let renamed = format!("user:{pseudonym}");
        let mut usage = tx.open_table(USAGE).map_err(err)?;
        let mut changed: Vec<UsageRecord> = Vec::new();
        for row in usage.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            let mut rec: UsageRecord = decode(v.value())?;
            let mut hit = false;
            if rec.user_id.as_deref() == Some(user) {
                rec.user_id = Some(pseudonym.to_owned());
                hit = true;
            }
            for s in &mut rec.scopes.0 {
                if *s == scope {
                    s.clone_from(&renamed);
                    hit = true;
                }
            }
            if hit {
                changed.push(rec);
            }
        }
        n.usage_records = changed.len() as u64;
        if !dry_run {
            for rec in &changed {
                usage
                    .insert(rec.call_id.as_str(), encode(rec).as_slice())
                    .map_err(err)?;
            }
        }
        let mut spend = tx.open_table(SPEND).map_err(err)?;
        let prefix = format!("{scope}|");
        let rows: Vec<(String, Vec<u8>)> = spend
            .range(prefix.as_str()..)
            .map_err(err)?
            .map_while(|r| {
                let (k, v) = r.ok()?;
                let k = k.value().to_owned();
                k.starts_with(&prefix).then(|| (k, v.value().to_vec()))
            })
            .collect();
        n.spend_rows = rows.len() as u64;
        if !dry_run {
            for (k, v) in rows {
                spend.remove(k.as_str()).map_err(err)?;
                // A user forgotten before may already have a row here.
                let to = format!("{renamed}|{}", &k[prefix.len()..]);
                let mut row: Spend = decode(&v)?;
                if let Some(old) = spend.get(to.as_str()).map_err(err)? {
                    let old: Spend = decode(old.value())?;
                    row.usd += old.usd;
                    row.tokens += old.tokens;
                    row.calls += old.calls;
                }
                spend
                    .insert(to.as_str(), encode(&row).as_slice())
                    .map_err(err)?;
            }
        }
    }
    if dry_run {
        tx.abort().map_err(err)?;
    } else {
        tx.commit().map_err(err)?;
    }
    Ok(n)
}
