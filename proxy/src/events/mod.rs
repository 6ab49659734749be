//! The event log (`events.redb`): the request path hands events and usage
//! records to a bounded queue and goes on; one writer thread commits them
//! in batches (group commit: one transaction, one fsync, for everything
//! that queued while the last one was written, and at most one commit per
//! [`COMMIT_EVERY`] under load). The writer runs at idle CPU priority
//! while it keeps up, so its commits do not preempt request work
//! (`priority`).
//!
//! Audit events, usage records and holds are evidence: when the queue is
//! full their sender waits (back-pressure) instead of losing them. Other
//! events are dropped and counted. Recording never fails a call: a commit
//! that keeps failing is logged and counted, and the request is answered.

pub mod index;
mod priority;
pub mod retention;
pub mod store;
mod types;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::Database;
use tokio::sync::{mpsc, oneshot};

pub use store::EventFilter;
pub use types::{
    AUDIT_TYPES, ChainStep, Event, EventBody, HoldRecord, LlmCall, PolicyResult, SCHEMA, Scopes,
    Sensitivity, Signal, Spend, Tried, UsageRecord,
};

use crate::clock;
use crate::metrics;

/// Queue length between the request path and the writer.
pub const QUEUE: usize = 65_536;
/// Most entries committed in one transaction.
const MAX_BATCH: usize = 8_192;
/// Shortest time between two commits while entries keep coming. A commit
/// costs its fsync and the rewrite of every page it touched, whether it
/// carries one entry or a thousand; waiting this long under load turns
/// hundreds of small commits a second into a hundred larger ones. An idle
/// log still commits its first entry at once, and a flush never waits.
const COMMIT_EVERY: Duration = Duration::from_millis(10);
/// How often the store's size gauge is refreshed (a `stat` per commit
/// would be wasted work).
const SIZE_EVERY: Duration = Duration::from_secs(1);

// Nearly every message is an entry; boxing them would add an allocation
// per request to spare the rare flush a few hundred bytes.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Entry(store::Entry),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<Msg>,
    writer: Arc<priority::WriterPriority>,
    db: Arc<Database>,
    path: Arc<Path>,
}

/// What startup restores from the log.
pub struct Restored {
    pub spend: std::collections::HashMap<String, Spend>,
    pub holds: Vec<HoldRecord>,
}

impl EventLog {
    /// Open `path` (0600) and start its writer thread.
    pub fn open(path: &Path) -> Result<(EventLog, Restored), String> {
        let db = Arc::new(crate::store::open(path)?);
        store::init(&db)?;
        let now = clock::now_ms();
        let pruned = store::prune_holds(&db, now)?;
        if pruned > 0 {
            tracing::info!(
                pruned,
                "expired reservation holds left by an earlier run released"
            );
        }
        let restored = Restored {
            spend: store::current_spend(&db, now)?,
            holds: store::open_holds(&db, now)?,
        };
        if !restored.holds.is_empty() {
            tracing::warn!(
                holds = restored.holds.len(),
                "reservations of calls in flight when the last run ended still count until they expire"
            );
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer_db = db.clone();
        let file = path.to_owned();
        let writer = Arc::new(priority::WriterPriority::default());
        let priority = writer.clone();
        std::thread::Builder::new()
            .name("sluice-events".into())
            .spawn(move || write_loop(&writer_db, &file, rx, &priority))
            .map_err(|e| format!("cannot start the event writer: {e}"))?;
        Ok((
            EventLog {
                tx,
                writer,
                db,
                path: path.into(),
            },
            restored,
        ))
    }

    /// For reads (admin queries); redb readers never wait on the writer.
    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record an event: audit events wait for room, others are dropped
    /// (and counted) when the queue is full.
    pub async fn emit(&self, body: EventBody) {
        let audit = body.is_audit();
        let msg = Msg::Entry(store::Entry::Event(body, clock::now_ms()));
        if audit {
            self.send(msg).await;
        } else if self.tx.try_send(msg).is_err() {
            metrics::get().events_dropped.inc();
        } else {
            self.queued();
        }
    }

    /// `emit` from a thread outside the runtime (a reload): waits for room.
    pub fn emit_blocking(&self, body: EventBody) {
        let msg = Msg::Entry(store::Entry::Event(body, clock::now_ms()));
        if self.tx.blocking_send(msg).is_err() {
            metrics::get().events_dropped.inc();
        }
    }

    pub async fn usage(&self, rec: UsageRecord) {
        self.send(Msg::Entry(store::Entry::Usage(rec))).await;
    }

    pub async fn hold(&self, hold: HoldRecord) {
        self.send(Msg::Entry(store::Entry::Hold(hold))).await;
    }

    pub async fn release(&self, call_id: String) {
        self.send(Msg::Entry(store::Entry::Release(call_id))).await;
    }

    /// Wait until everything recorded so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.writer.raise();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn send(&self, msg: Msg) {
        let m = metrics::get();
        match self.tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                m.events_backpressure.inc();
                let _ = self.tx.send(msg).await;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => m.events_dropped.inc(),
        }
        self.queued();
    }

    /// After every enqueue: the gauge, and a writer starved behind it
    /// raised.
    fn queued(&self) {
        let queued = QUEUE - self.tx.capacity();
        metrics::get().events_queued.set(queued as i64);
        self.writer.queued(queued, clock::now_ms());
    }
}

fn write_loop(
    db: &Database,
    file: &Path,
    mut rx: mpsc::Receiver<Msg>,
    priority: &priority::WriterPriority,
) {
    priority.start(clock::now_ms());
    let m = metrics::get();
    let size = || std::fs::metadata(file).map_or(0, |f| f.len() as i64);
    m.trace_store_bytes.set(size());
    let mut last_commit = Instant::now() - COMMIT_EVERY;
    let mut last_size = Instant::now();
    let mut entries = Vec::new();
    let mut waiters = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry(e) => entries.push(e),
                Msg::Flush(w) => waiters.push(w),
            }
            if entries.len() < MAX_BATCH {
                next = rx.try_recv().ok();
                if next.is_none() && waiters.is_empty() {
                    // Under load, let the batch fill up to the commit
                    // interval instead of committing what one wake-up saw.
                    let since = last_commit.elapsed();
                    if since < COMMIT_EVERY {
                        std::thread::sleep(COMMIT_EVERY - since);
                        next = rx.try_recv().ok();
                    }
                }
            }
        }
        if !entries.is_empty() {
            let n = entries.len();
            priority.backlog(n + rx.len());
            let started = Instant::now();
            match commit_with_retry(db, &entries) {
                Ok(()) => m.events_written.inc_by(n as u64),
                Err(e) => {
                    m.events_lost.inc_by(n as u64);
                    tracing::error!(entries = n, "event log commit failed, entries lost: {e}");
                }
            }
            last_commit = Instant::now();
            m.event_commit_duration
                .observe(started.elapsed().as_secs_f64());
            if last_size.elapsed() >= SIZE_EVERY {
                m.trace_store_bytes.set(size());
                last_size = last_commit;
            }
            entries.clear();
        }
        m.events_queued.set(rx.len() as i64);
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
        // Lowered only now: a flush's waiters are answered first.
        priority.committed(rx.len(), clock::now_ms());
    }
}

/// A failed commit is tried twice more (a transient I/O error, a full disk
/// freed meanwhile) before its entries are given up.
fn commit_with_retry(db: &Database, entries: &[store::Entry]) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..3 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50 << attempt));
        }
        match store::commit(db, entries) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Write events synchronously, for the CLI working on the files directly.
pub fn append_now(path: &Path, bodies: Vec<EventBody>) -> Result<(), String> {
    let db = crate::store::open(path)?;
    store::init(&db)?;
    let now = clock::now_ms();
    let entries: Vec<_> = bodies
        .into_iter()
        .map(|b| store::Entry::Event(b, now))
        .collect();
    store::commit(&db, &entries)
}
