//! The trace store's secondary tables: every event is reachable by time,
//! and by type, gateway key, user and team within a time range, without
//! scanning the log.
//!
//! Keys are flat bytes compared as integers or with one `memcmp`: redb's
//! tuple keys allocate on every insert and parse lengths on every compare,
//! and the writer inserts several index keys per request.

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::store::EVENTS;
use super::types::{Event, EventBody};
use crate::store::{decode, err};

/// [`time_key`] of every event.
pub const BY_TIME: TableDefinition<u128, ()> = TableDefinition::new("idx_time");
/// [`SubjectKey`]s: the event's type, gateway key, user, team.
pub const BY_TYPE: TableDefinition<&[u8], ()> = TableDefinition::new("idx_type");
pub const BY_KEY: TableDefinition<&[u8], ()> = TableDefinition::new("idx_key");
pub const BY_USER: TableDefinition<&[u8], ()> = TableDefinition::new("idx_user");
pub const BY_TEAM: TableDefinition<&[u8], ()> = TableDefinition::new("idx_team");
/// The tuple-keyed tables of earlier releases start with this; they are
/// dropped and their events indexed again.
const LEGACY_PREFIX: &str = "events_by_";

/// `ts_ms` then `id`, as one integer: time order, ties by id.
pub fn time_key(ts_ms: u64, id: u64) -> u128 {
    (u128::from(ts_ms) << 64) | u128::from(id)
}

/// `(ts_ms, id)` of a [`time_key`].
pub fn time_of(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}

/// `[subject length: u16 BE][subject][ts_ms BE][id BE]`, built in one
/// reused buffer. The length prefix keeps one subject's keys contiguous
/// and apart from every other subject's, big-endian keeps them in time
/// order under byte comparison.
#[derive(Default)]
pub struct SubjectKey(Vec<u8>);

impl SubjectKey {
    pub fn of(&mut self, subject: &str, ts_ms: u64, id: u64) -> &[u8] {
        // Stored subjects are checked ids (at most 200 bytes) and type
        // names; the cap only keeps the length prefix true for a query's
        // longer subject, which then matches nothing stored.
        let s = &subject.as_bytes()[..subject.len().min(usize::from(u16::MAX))];
        self.0.clear();
        self.0.extend_from_slice(&(s.len() as u16).to_be_bytes());
        self.0.extend_from_slice(s);
        self.0.extend_from_slice(&ts_ms.to_be_bytes());
        self.0.extend_from_slice(&id.to_be_bytes());
        &self.0
    }

    /// `(ts_ms, id)` of a key [`SubjectKey::of`] built.
    pub fn time_of(key: &[u8]) -> (u64, u64) {
        let n = key.len();
        let word = |at: usize| u64::from_be_bytes(key[at..at + 8].try_into().expect("8 bytes"));
        (word(n - 16), word(n - 8))
    }
}

/// The index tables of one write transaction.
pub struct Indexes<'t> {
    time: redb::Table<'t, u128, ()>,
    by: [redb::Table<'t, &'static [u8], ()>; 4],
    key: SubjectKey,
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
            key: SubjectKey::default(),
        })
    }

    pub fn insert(&mut self, id: u64, ts: u64, body: &EventBody) -> Result<(), String> {
        self.time.insert(time_key(ts, id), ()).map_err(err)?;
        for (table, subject) in self.by.iter_mut().zip(subjects(body)) {
            if let Some(s) = subject {
                table.insert(self.key.of(s, ts, id), ()).map_err(err)?;
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, id: u64, ts: u64, body: &EventBody) -> Result<(), String> {
        self.time.remove(time_key(ts, id)).map_err(err)?;
        for (table, subject) in self.by.iter_mut().zip(subjects(body)) {
            if let Some(s) = subject {
                table.remove(self.key.of(s, ts, id)).map_err(err)?;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> Result<bool, String> {
        self.time.is_empty().map_err(err)
    }
}

/// Types written for every call: each is about half the log, so a time
/// scan filtered by type reads at most about twice what it returns, and
/// indexing them would cost the writer two inserts per request.
const PER_CALL_TYPES: [&str; 2] = ["request.completed", "llm.call_completed"];

/// Whether [`BY_TYPE`] holds events of type `t`.
fn type_indexed(t: &str) -> bool {
    !PER_CALL_TYPES.contains(&t)
}

/// Type, key, user, team: the order of [`Indexes::by`].
fn subjects(body: &EventBody) -> [Option<&str>; 4] {
    let (key, user, team) = body.subjects();
    let t = body.type_name();
    [type_indexed(t).then_some(t), key, user, team]
}

/// `(ts_ms, id)` of every event that names `user`.
pub fn user_events(tx: &WriteTransaction, user: &str) -> Result<Vec<(u64, u64)>, String> {
    let t = tx.open_table(BY_USER).map_err(err)?;
    let (mut lo, mut hi) = (SubjectKey::default(), SubjectKey::default());
    t.range(lo.of(user, 0, 0)..=hi.of(user, u64::MAX, u64::MAX))
        .map_err(err)?
        .map(|r| r.map_err(err).map(|(k, _)| SubjectKey::time_of(k.value())))
        .collect()
}

/// Index an event log whose secondary tables are missing: written before
/// they existed, or by a release whose key layout was different.
pub fn backfill(tx: &WriteTransaction) -> Result<u64, String> {
    let legacy: Vec<_> = tx
        .list_tables()
        .map_err(err)?
        .filter(|t| redb::TableHandle::name(t).starts_with(LEGACY_PREFIX))
        .collect();
    for t in legacy {
        tx.delete_table(t).map_err(err)?;
    }
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
        [one] if type_indexed(one) => Some((BY_TYPE, one.clone())),
        _ => None,
    });
    let ids: Box<dyn Iterator<Item = Result<(u64, u64), String>> + Send> = match subject {
        Some((table, s)) => {
            let t = tx.open_table(table).map_err(err)?;
            let (mut lo, mut hi) = (SubjectKey::default(), SubjectKey::default());
            let range = t
                .range(lo.of(&s, since, 0)..hi.of(&s, until, 0))
                .map_err(err)?;
            Box::new(range.map(|r| r.map_err(err).map(|(k, _)| SubjectKey::time_of(k.value()))))
        }
        None => {
            let t = tx.open_table(BY_TIME).map_err(err)?;
            let range = t
                .range(time_key(since, 0)..time_key(until, 0))
                .map_err(err)?;
            Box::new(range.map(|r| r.map_err(err).map(|(k, _)| time_of(k.value()))))
        }
    };
    Ok(Scan {
        events,
        ids,
        types: q.types.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::store::{self, Entry};

    fn completed(key: &str, user: Option<&str>) -> EventBody {
        EventBody::RequestCompleted {
            request_id: "r".into(),
            gateway_key_id: Some(key.into()),
            user_id: user.map(Into::into),
            team_id: None,
            inbound_shape: "openai".into(),
            client_model: "m".into(),
            requested_model: None,
            model: None,
            status: 200,
            streamed: false,
            latency_ms: 1,
            cost_usd: crate::money::Usd::ZERO,
            input_tokens: 1,
            output_tokens: 1,
            attempts: 1,
            error_code: None,
        }
    }

    fn revoked(key: &str) -> EventBody {
        EventBody::KeyRevoked {
            key_id: key.into(),
            reason: "admin_revoke".into(),
        }
    }

    fn db() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(&dir.path().join("events.redb")).unwrap();
        store::init(&db).unwrap();
        (dir, db)
    }

    fn ts_of(db: &Database, q: Query) -> Vec<u64> {
        scan(db, &q).unwrap().map(|e| e.unwrap().ts_ms).collect()
    }

    #[test]
    fn a_subject_never_sees_the_events_of_a_longer_one_it_prefixes() {
        let (_d, db) = db();
        let batch: Vec<Entry> = [("k", 10), ("k2", 11), ("k", 12), ("ké", 13), ("", 14)]
            .into_iter()
            .map(|(k, ts)| Entry::Event(completed(k, None), ts))
            .collect();
        store::commit(&db, &batch).unwrap();
        let by_key = |k: &str, since, until| {
            ts_of(
                &db,
                Query {
                    gateway_key: Some(k.into()),
                    since_ms: since,
                    until_ms: until,
                    ..Query::default()
                },
            )
        };
        assert_eq!(by_key("k", None, None), [10, 12]);
        assert_eq!(by_key("k2", None, None), [11]);
        assert_eq!(by_key("ké", None, None), [13]);
        assert_eq!(by_key("", None, None), [14]);
        // since is inclusive, until exclusive.
        assert_eq!(by_key("k", Some(12), None), [12]);
        assert_eq!(by_key("k", Some(10), Some(12)), [10]);
    }

    #[test]
    fn per_call_types_are_found_without_a_type_index_and_others_with_one() {
        let (_d, db) = db();
        store::commit(
            &db,
            &[
                Entry::Event(completed("a", Some("u")), 1),
                Entry::Event(revoked("a"), 2),
                Entry::Event(completed("b", None), 3),
            ],
        )
        .unwrap();
        let of_type = |t: &str| {
            ts_of(
                &db,
                Query {
                    types: vec![t.into()],
                    ..Query::default()
                },
            )
        };
        assert_eq!(of_type("request.completed"), [1, 3]);
        assert_eq!(of_type("gateway.key_revoked"), [2]);
        let tx = db.begin_read().unwrap();
        assert_eq!(tx.open_table(BY_TYPE).unwrap().len().unwrap(), 1);
        let w = db.begin_write().unwrap();
        assert_eq!(user_events(&w, "u").unwrap(), [(1, 1)]);
        w.abort().unwrap();
    }

    #[test]
    fn a_log_indexed_by_an_earlier_layout_is_indexed_again_on_open() {
        let (dir, db) = db();
        store::commit(&db, &[Entry::Event(revoked("a"), 5)]).unwrap();
        let legacy: TableDefinition<(u64, u64), ()> = TableDefinition::new("events_by_time");
        let tx = db.begin_write().unwrap();
        tx.delete_table(BY_TIME).unwrap();
        tx.delete_table(BY_TYPE).unwrap();
        tx.delete_table(BY_KEY).unwrap();
        tx.open_table(legacy).unwrap().insert((5, 1), ()).unwrap();
        tx.commit().unwrap();
        drop(db);

        let db = crate::store::open(&dir.path().join("events.redb")).unwrap();
        store::init(&db).unwrap();
        let tx = db.begin_read().unwrap();
        let names: Vec<String> = tx
            .list_tables()
            .unwrap()
            .map(|t| redb::TableHandle::name(&t).to_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(LEGACY_PREFIX)),
            "{names:?}"
        );
        let q = Query {
            gateway_key: Some("a".into()),
            ..Query::default()
        };
        assert_eq!(ts_of(&db, q), [5]);
        assert_eq!(ts_of(&db, Query::default()), [5]);
    }

    #[test]
    fn time_keys_order_by_time_then_id() {
        assert!(time_key(1, u64::MAX) < time_key(2, 0));
        assert_eq!(time_of(time_key(7, 9)), (7, 9));
        let mut k = SubjectKey::default();
        assert_eq!(SubjectKey::time_of(k.of("key", 7, 9)), (7, 9));
    }
}
