//! `events.redb`: the tables, one batch commit, and the reads the admin
//! plane and startup need.

use std::collections::HashMap;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::types::{Event, EventBody, HoldRecord, LlmCall, Spend, UsageRecord};
use crate::clock;
use crate::store::{decode, encode, err};

/// Event id → event.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// call_id → usage record (the idempotency key).
pub const USAGE: TableDefinition<&str, &[u8]> = TableDefinition::new("usage");
/// Commit order → call_id.
pub const USAGE_SEQ: TableDefinition<u64, &str> = TableDefinition::new("usage_seq");
/// `scope|d<day>` or `scope|m<month>` → spend, updated with each record.
pub const SPEND: TableDefinition<&str, &[u8]> = TableDefinition::new("spend");
/// call_id → an open reservation's hold.
pub const HOLDS: TableDefinition<&str, &[u8]> = TableDefinition::new("holds");
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// What the writer commits.
pub enum Entry {
    Event(super::types::EventBody, u64),
    Usage(UsageRecord),
    Hold(HoldRecord),
    /// A hold given back without a call (the request failed first).
    Release(String),
}

pub fn day_key(scope: &str, day: u32) -> String {
    format!("{scope}|d{day}")
}

pub fn month_key(scope: &str, month: u32) -> String {
    format!("{scope}|m{month}")
}

/// Create the tables so readers never find them missing.
pub fn init(db: &Database) -> Result<(), String> {
    let tx = db.begin_write().map_err(err)?;
    {
        tx.open_table(EVENTS).map_err(err)?;
        tx.open_table(USAGE).map_err(err)?;
        tx.open_table(USAGE_SEQ).map_err(err)?;
        tx.open_table(SPEND).map_err(err)?;
        tx.open_table(HOLDS).map_err(err)?;
        let indexed = super::index::backfill(&tx)?;
        if indexed > 0 {
            tracing::info!(
                indexed,
                "event log indexed by time, type, key, user and team"
            );
        }
        let mut meta = tx.open_table(META).map_err(err)?;
        let schema = meta.get("schema").map_err(err)?.map(|v| v.value());
        match schema {
            None => {
                meta.insert("schema", super::types::SCHEMA as u64)
                    .map_err(err)?;
            }
            Some(v) if v == super::types::SCHEMA as u64 => {}
            Some(v) => {
                return Err(format!(
                    "events.redb has schema {v}; this sluice reads schema {}",
                    super::types::SCHEMA
                ));
            }
        }
    }
    tx.commit().map_err(err)
}

/// Write one batch in one transaction.
pub fn commit(db: &Database, batch: &[Entry]) -> Result<(), String> {
    let tx = db.begin_write().map_err(err)?;
    write(&tx, batch)?;
    tx.commit().map_err(err)
}

fn write(tx: &WriteTransaction, batch: &[Entry]) -> Result<(), String> {
    let mut events = tx.open_table(EVENTS).map_err(err)?;
    let mut usage = tx.open_table(USAGE).map_err(err)?;
    let mut seq = tx.open_table(USAGE_SEQ).map_err(err)?;
    let mut spend = tx.open_table(SPEND).map_err(err)?;
    let mut holds = tx.open_table(HOLDS).map_err(err)?;
    let mut meta = tx.open_table(META).map_err(err)?;
    let mut idx = super::index::Indexes::open(tx)?;
    let mut next_event = meta
        .get("next_event")
        .map_err(err)?
        .map_or(1, |v| v.value());
    let mut next_usage = meta
        .get("next_usage")
        .map_err(err)?
        .map_or(1, |v| v.value());
    // Spend rows touched by this batch, read once and written once.
    let mut rows: HashMap<String, Spend> = HashMap::new();
    let mut append = |body: &EventBody, ts_ms: u64| -> Result<(), String> {
        // Field by field, the encoding of an `Event`.
        let bytes = encode(&(
            next_event,
            ts_ms,
            super::types::SCHEMA,
            body.sensitivity(),
            body,
        ));
        events.insert(next_event, bytes.as_slice()).map_err(err)?;
        idx.insert(next_event, ts_ms, body)?;
        next_event += 1;
        Ok(())
    };
    for entry in batch {
        match entry {
            Entry::Event(body, ts_ms) => append(body, *ts_ms)?,
            Entry::Hold(h) => {
                holds
                    .insert(h.call_id.as_str(), encode(h).as_slice())
                    .map_err(err)?;
            }
            Entry::Release(call_id) => {
                holds.remove(call_id.as_str()).map_err(err)?;
            }
            Entry::Usage(rec) => {
                holds.remove(rec.call_id.as_str()).map_err(err)?;
                // Idempotent: a call_id already recorded is not counted twice.
                if usage.get(rec.call_id.as_str()).map_err(err)?.is_some() {
                    continue;
                }
                usage
                    .insert(rec.call_id.as_str(), encode(rec).as_slice())
                    .map_err(err)?;
                seq.insert(next_usage, rec.call_id.as_str()).map_err(err)?;
                next_usage += 1;
                if let Some(call) = LlmCall::from_usage(rec) {
                    let body = if (200..300).contains(&rec.status) {
                        EventBody::LlmCallCompleted(call)
                    } else {
                        EventBody::LlmCallFailed(call)
                    };
                    append(&body, rec.ts_ms)?;
                }
                let (day, month) = (clock::day_of(rec.ts_ms), clock::month_of(rec.ts_ms));
                for scope in &rec.scopes.0 {
                    for key in [day_key(scope, day), month_key(scope, month)] {
                        let row = match rows.entry(key) {
                            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                            std::collections::hash_map::Entry::Vacant(v) => {
                                let old = spend
                                    .get(v.key().as_str())
                                    .map_err(err)?
                                    .map(|g| decode::<Spend>(g.value()))
                                    .transpose()?
                                    .unwrap_or_default();
                                v.insert(old)
                            }
                        };
                        row.usd += rec.cost_usd;
                        row.tokens += rec.tokens();
                        row.calls += 1;
                    }
                }
            }
        }
    }
    for (k, v) in rows {
        spend
            .insert(k.as_str(), encode(&v).as_slice())
            .map_err(err)?;
    }
    meta.insert("next_event", next_event).map_err(err)?;
    meta.insert("next_usage", next_usage).map_err(err)?;
    Ok(())
}

/// Which events to read.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub types: Vec<String>,
    /// Only events with a larger id.
    pub after: u64,
    pub limit: usize,
}

pub fn events(db: &Database, f: &EventFilter) -> Result<Vec<Event>, String> {
    let tx = db.begin_read().map_err(err)?;
    let table = tx.open_table(EVENTS).map_err(err)?;
    let mut out = Vec::new();
    for row in table.range(f.after + 1..).map_err(err)? {
        let (_, v) = row.map_err(err)?;
        let ev: Event = decode(v.value())?;
        if f.types.is_empty() || f.types.iter().any(|t| t == ev.body.type_name()) {
            out.push(ev);
            if out.len() >= f.limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Usage records in commit order, after `after` (a position), at most `limit`.
pub fn usage(db: &Database, after: u64, limit: usize) -> Result<Vec<(u64, UsageRecord)>, String> {
    let tx = db.begin_read().map_err(err)?;
    let seq = tx.open_table(USAGE_SEQ).map_err(err)?;
    let usage = tx.open_table(USAGE).map_err(err)?;
    let mut out = Vec::new();
    for row in seq.range(after + 1..).map_err(err)? {
        let (pos, id) = row.map_err(err)?;
        if let Some(v) = usage.get(id.value()).map_err(err)? {
            out.push((pos.value(), decode(v.value())?));
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Every usage record, in commit order, from one snapshot.
pub fn each_usage(db: &Database, mut f: impl FnMut(UsageRecord)) -> Result<(), String> {
    let tx = db.begin_read().map_err(err)?;
    let seq = tx.open_table(USAGE_SEQ).map_err(err)?;
    let usage = tx.open_table(USAGE).map_err(err)?;
    for row in seq.iter().map_err(err)? {
        let (_, id) = row.map_err(err)?;
        if let Some(v) = usage.get(id.value()).map_err(err)? {
            f(decode(v.value())?);
        }
    }
    Ok(())
}

/// Committed spend of every scope in the windows containing `now_ms`.
pub fn current_spend(db: &Database, now_ms: u64) -> Result<HashMap<String, Spend>, String> {
    let (d, m) = (
        format!("|d{}", clock::day_of(now_ms)),
        format!("|m{}", clock::month_of(now_ms)),
    );
    let tx = db.begin_read().map_err(err)?;
    let table = tx.open_table(SPEND).map_err(err)?;
    let mut out = HashMap::new();
    for row in table.iter().map_err(err)? {
        let (k, v) = row.map_err(err)?;
        let k = k.value();
        if k.ends_with(&d) || k.ends_with(&m) {
            out.insert(k.to_owned(), decode(v.value())?);
        }
    }
    Ok(out)
}

/// Holds of reservations a crash left open, not yet expired.
pub fn open_holds(db: &Database, now_ms: u64) -> Result<Vec<HoldRecord>, String> {
    let tx = db.begin_read().map_err(err)?;
    let table = tx.open_table(HOLDS).map_err(err)?;
    let mut out = Vec::new();
    for row in table.iter().map_err(err)? {
        let (_, v) = row.map_err(err)?;
        let h: HoldRecord = decode(v.value())?;
        if h.expires_ms > now_ms {
            out.push(h);
        }
    }
    Ok(out)
}

/// Drop expired holds (at startup: they no longer count).
pub fn prune_holds(db: &Database, now_ms: u64) -> Result<usize, String> {
    let tx = db.begin_write().map_err(err)?;
    let n;
    {
        let mut table = tx.open_table(HOLDS).map_err(err)?;
        let expired: Vec<String> = table
            .iter()
            .map_err(err)?
            .filter_map(|r| r.ok())
            .filter_map(|(k, v)| {
                let h: HoldRecord = decode(v.value()).ok()?;
                (h.expires_ms <= now_ms).then(|| k.value().to_owned())
            })
            .collect();
        n = expired.len();
        for k in expired {
            table.remove(k.as_str()).map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    Ok(n)
}
