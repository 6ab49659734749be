//! The trace store's secondary tables: every event is reachable by time,
//! and by type, gateway key, user and team within a time range, without
//! scanning the log. Each is a set of `(subject, ts_ms, id)` keys.

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::store::EVENTS;
use super::types::{Event, EventBody};
use crate::store::{decode, err};

/// `(ts_ms, id)` of every event.
pub const BY_TIME: TableDefinition<(u64, u64), ()> = TableDefinition::new("events_by_time");
pub const BY_TYPE: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("events_by_type");
pub const BY_KEY: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("events_by_key");
pub const BY_USER: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("events_by_user");
pub const BY_TEAM: TableDefinition<(&str, u64, u64), ()> = TableDefinition::new("events_by_team");

/// The index tables of one write transaction.
pub struct Indexes<'t> {
    time: redb::Table<'t, (u64, u64), ()>,
    by: [redb::Table<'t, (&'static str, u64, u64), ()>; 4],
}

impl<'t> Indexes<'t> {
    pub fn open(tx: &'t WriteTransaction) -> Result<Self, String> {
        Ok(Self {
            time: tx.open_table(BY_TIME).map_err(err)?,
            by: [
                tx.open_table(BY_TYPE).map_err(err)?,
                tx.open_table(BY_KEY).map_err(err)?,
                tx.open_table(BY_USER).map_err(err)?,
                tx.open_table(BY_TEAM).map_err(err)?,
            ],
        })
    }

    pub fn insert(&mut self, id: u64, ts: u64, body: &EventBody) -> Result<(), String> {
        self.time.insert((ts, id), ()).map_err(err)?;
        for (table, subject) in self.by.iter_mut().zip(subjects(body)) {
            if let Some(s) = subject {
                table.insert((s, ts, id), ()).map_err(err)?;
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, id: u64, ts: u64, body: &EventBody) -> Result<(), String> {
        self.time.remove((ts, id)).map_err(err)?;
        for (table, subject) in self.by.iter_mut().zip(subjects(body)) {
            if let Some(s) = subject {
                table.remove((s, ts, id)).map_err(err)?;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> Result<bool, String> {
        self.time.is_empty().map_err(err)
    }
}

/// Type, key, user, team: the order of [`Indexes::by`].
fn subjects(body: &EventBody) -> [Option<&str>; 4] {
    let (key, user, team) = body.subjects();
    [Some(body.type_name()), key, user, team]
}

/// Index an event log written before the secondary tables existed.
pub fn backfill(tx: &WriteTransaction) -> Result<u64, String> {
    let events = tx.open_table(EVENTS).map_err(err)?;
    let mut idx = Indexes::open(tx)?;
    if !idx.is_empty()? || events.is_empty().map_err(err)? {
        return Ok(0);
    }
    let mut n = 0;
    for row in events.iter().map_err(err)? {
        let (_, v) = row.map_err(err)?;
        let ev: Event = decode(v.value())?;
        idx.insert(ev.id, ev.ts_ms, &ev.body)?;
        n += 1;
    }
    Ok(n)
}

/// Which events a scan returns; time bounds are `since <= ts < until`.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
    /// Any of these types (empty: all).
    pub types: Vec<String>,
    /// At most one of these three is used: user, else key, else team.
    pub gateway_key: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
}

/// Events in time order (ties by id), read from one snapshot of the log:
/// what is committed meanwhile is not seen, nothing is held in memory.
pub struct Scan {
    events: redb::ReadOnlyTable<u64, &'static [u8]>,
    ids: Box<dyn Iterator<Item = Result<(u64, u64), String>> + Send>,
    types: Vec<String>,
}

impl Iterator for Scan {
    type Item = Result<Event, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (_, id) = match self.ids.next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let ev = match self.events.get(id) {
                Ok(Some(v)) => decode::<Event>(v.value()),
                Ok(None) => continue,
                Err(e) => Err(err(e)),
            };
            match ev {
                Ok(ev)
                    if !self.types.is_empty()
                        && !self.types.iter().any(|t| t == ev.body.type_name()) =>
                {
                    continue;
                }
                other => return Some(other),
            }
        }
    }
}

pub fn scan(db: &Database, q: &Query) -> Result<Scan, String> {
    scan_in(&db.begin_read().map_err(err)?, q)
}

/// A scan of the snapshot `tx` reads: two scans of one snapshot see the
/// same events.
pub fn scan_in(tx: &redb::ReadTransaction, q: &Query) -> Result<Scan, String> {
    let events = tx.open_table(EVENTS).map_err(err)?;
    let since = q.since_ms.unwrap_or(0);
    let until = q.until_ms.unwrap_or(u64::MAX);
    // One subject at a time (user, else key, else team) picks the table;
    // types are then filtered per event.
    let subject = [
        (BY_USER, &q.user),
        (BY_KEY, &q.gateway_key),
        (BY_TEAM, &q.team),
    ]
    .into_iter()
    .find_map(|(t, s)| s.clone().map(|s| (t, s)))
    .or_else(|| match q.types.as_slice() {
        [one] => Some((BY_TYPE, one.clone())),
        _ => None,
    });
    let ids: Box<dyn Iterator<Item = Result<(u64, u64), String>> + Send> = match subject {
        Some((table, s)) => {
            let t = tx.open_table(table).map_err(err)?;
            let lo = (s.as_str(), since, 0u64);
            let hi = (s.as_str(), until, 0u64);
            let range = t.range(lo..hi).map_err(err)?;
            Box::new(range.map(|r| {
                r.map_err(err).map(|(k, _)| {
                    let (_, ts, id) = k.value();
                    (ts, id)
                })
            }))
        }
        None => {
            let t = tx.open_table(BY_TIME).map_err(err)?;
            let range = t.range((since, 0)..(until, 0)).map_err(err)?;
            Box::new(range.map(|r| r.map_err(err).map(|(k, _)| k.value())))
        }
    };
    Ok(Scan {
        events,
        ids,
        types: q.types.clone(),
    })
}
