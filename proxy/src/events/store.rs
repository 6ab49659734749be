//! `events.redb`: the tables, one batch commit, and the reads the admin
//! plane and startup need.

use std::collections::{HashMap, HashSet};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::types::{Event, EventBody, HoldRecord, LlmCall, Spend, UsageRecord};
use crate::clock;
use crate::store::{decode, encode_into, err};

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

/// The spend window a [`SPEND`] row adds up; its key is spelled only when
/// the row is read or written, once per batch, not once per record.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Window {
    Day(u32),
    Month(u32),
}

impl Window {
    fn key(self, scope: &str) -> String {
        match self {
            Window::Day(d) => format!("{scope}|d{d}"),
            Window::Month(m) => format!("{scope}|m{m}"),
        }
    }
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
    let mut rows: HashMap<(&str, Window), Spend> = HashMap::new();
    // A hold whose call settles in this same batch would be inserted and
    // removed by one transaction: neither is written. Under load that is
    // nearly every hold (a call is shorter than a commit interval); a batch
    // without holds builds nothing here.
    let held: HashSet<&str> = batch
        .iter()
        .filter_map(|e| match e {
            Entry::Hold(h) => Some(h.call_id.as_str()),
            _ => None,
        })
        .collect();
    let cancelled: HashSet<&str> = batch
        .iter()
        .filter_map(|e| match e {
            Entry::Usage(rec) => Some(rec.call_id.as_str()),
            Entry::Release(call_id) => Some(call_id.as_str()),
            _ => None,
        })
        .filter(|id| held.contains(id))
        .collect();
    let mut buf = Vec::with_capacity(512);
    let mut append = |buf: &mut Vec<u8>, body: &EventBody, ts_ms: u64| -> Result<(), String> {
        // Field by field, the encoding of an `Event`.
        let bytes = encode_into(
            buf,
            &(
                next_event,
                ts_ms,
                super::types::SCHEMA,
                body.sensitivity(),
                body,
            ),
        );
        events.insert(next_event, bytes).map_err(err)?;
        idx.insert(next_event, ts_ms, body)?;
        next_event += 1;
        Ok(())
    };
    for entry in batch {
        match entry {
            Entry::Event(body, ts_ms) => append(&mut buf, body, *ts_ms)?,
            Entry::Hold(h) if cancelled.contains(h.call_id.as_str()) => {}
            Entry::Hold(h) => {
                holds
                    .insert(h.call_id.as_str(), encode_into(&mut buf, h))
                    .map_err(err)?;
            }
            Entry::Release(call_id) => {
                if !cancelled.contains(call_id.as_str()) {
                    holds.remove(call_id.as_str()).map_err(err)?;
                }
            }
            Entry::Usage(rec) => {
                if !cancelled.contains(rec.call_id.as_str()) {
                    holds.remove(rec.call_id.as_str()).map_err(err)?;
                }
                // Idempotent: a call_id already recorded is not counted twice.
                // Insert first and put a rare earlier record back, rather
                // than look every record up before inserting it.
                let earlier = usage
                    .insert(rec.call_id.as_str(), encode_into(&mut buf, rec))
                    .map_err(err)?
                    .map(|v| v.value().to_vec());
                if let Some(earlier) = earlier {
                    usage
                        .insert(rec.call_id.as_str(), earlier.as_slice())
                        .map_err(err)?;
                    continue;
                }
                seq.insert(next_usage, rec.call_id.as_str()).map_err(err)?;
                next_usage += 1;
                if let Some(call) = LlmCall::from_usage(rec) {
                    let body = if (200..300).contains(&rec.status) {
                        EventBody::LlmCallCompleted(call)
                    } else {
                        EventBody::LlmCallFailed(call)
                    };
                    append(&mut buf, &body, rec.ts_ms)?;
                }
                let (day, month) = (clock::day_of(rec.ts_ms), clock::month_of(rec.ts_ms));
                for scope in &rec.scopes.0 {
                    for window in [Window::Day(day), Window::Month(month)] {
                        let row = match rows.entry((scope.as_str(), window)) {
                            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                            std::collections::hash_map::Entry::Vacant(v) => {
                                let old = spend
                                    .get(window.key(scope).as_str())
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
    for ((scope, window), v) in rows {
        spend
            .insert(window.key(scope).as_str(), encode_into(&mut buf, &v))
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
    // The keys' suffixes, spelled by the one place that spells keys.
    let (d, m) = (
        Window::Day(clock::day_of(now_ms)).key(""),
        Window::Month(clock::month_of(now_ms)).key(""),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Scopes;
    use crate::money::Usd;

    fn hold(call_id: &str) -> HoldRecord {
        let now = clock::now_ms();
        HoldRecord {
            call_id: call_id.into(),
            scopes: Scopes(vec!["key:k".into()]),
            usd: Usd(rust_decimal::Decimal::ONE),
            tokens: 10,
            day: clock::day_of(now),
            month: clock::month_of(now),
            expires_ms: now + 60_000,
        }
    }

    fn usage(call_id: &str) -> UsageRecord {
        UsageRecord {
            call_id: call_id.into(),
            request_id: format!("req-{call_id}"),
            ts_ms: clock::now_ms(),
            schema: crate::events::SCHEMA,
            gateway_key_id: Some("k".into()),
            user_id: None,
            team_id: None,
            workspace: None,
            inbound_shape: "openai".into(),
            provider: Some("mock".into()),
            model: Some("mock:m".into()),
            input_tokens: 1,
            output_tokens: 2,
            cached_input_tokens: 0,
            cost_usd: Usd(rust_decimal::Decimal::ONE),
            pricing_version: None,
            unpriced: false,
            usage_estimated: false,
            streamed: false,
            status: 200,
            latency_ms: 1,
            policy_result: crate::events::PolicyResult::Allowed,
            error_code: None,
            scopes: Scopes(vec!["key:k".into()]),
        }
    }

    fn open_hold_ids(db: &Database) -> Vec<String> {
        let mut ids: Vec<_> = open_holds(db, clock::now_ms())
            .unwrap()
            .into_iter()
            .map(|h| h.call_id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn holds_settled_in_their_own_batch_are_never_written_and_others_are() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(&dir.path().join("events.redb")).unwrap();
        init(&db).unwrap();
        commit(
            &db,
            &[
                Entry::Hold(hold("settled")),
                Entry::Hold(hold("released")),
                Entry::Hold(hold("open")),
                Entry::Usage(usage("settled")),
                Entry::Release("released".into()),
            ],
        )
        .unwrap();
        assert_eq!(open_hold_ids(&db), ["open"]);
        // The call settled with its hold still counts, once.
        let spend = current_spend(&db, clock::now_ms()).unwrap();
        let day = Window::Day(clock::day_of(clock::now_ms())).key("key:k");
        assert_eq!(spend[&day].calls, 1);
        // A hold from an earlier batch is removed when its call settles.
        commit(&db, &[Entry::Usage(usage("open"))]).unwrap();
        assert!(open_hold_ids(&db).is_empty());
        assert_eq!(current_spend(&db, clock::now_ms()).unwrap()[&day].calls, 2);
    }

    #[test]
    fn a_call_recorded_again_keeps_its_first_record_and_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(&dir.path().join("events.redb")).unwrap();
        init(&db).unwrap();
        let mut again = usage("c");
        again.output_tokens = 999;
        commit(
            &db,
            &[Entry::Usage(usage("c")), Entry::Usage(again.clone())],
        )
        .unwrap();
        commit(&db, &[Entry::Usage(again)]).unwrap();
        let records = super::usage(&db, 0, 10).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].1.output_tokens, 2);
        let day = Window::Day(clock::day_of(clock::now_ms())).key("key:k");
        let spend = current_spend(&db, clock::now_ms()).unwrap();
        assert_eq!((spend[&day].calls, spend[&day].tokens), (1, 3));
        let calls = events(
            &db,
            &EventFilter {
                types: vec!["llm.call_completed".into()],
                after: 0,
                limit: 10,
            },
        )
        .unwrap();
        assert_eq!(calls.len(), 1);
    }
}
