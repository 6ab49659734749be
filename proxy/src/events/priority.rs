//! The writer's CPU priority: it gives way to request work while it keeps
//! up, and competes for the CPU once it falls behind.
//!
//! A commit is a burst of CPU (about a millisecond for a batch of a hundred
//! requests). On a machine with few cores that burst preempts the worker
//! serving the next request, which is where the tail latency of a lightly
//! loaded gateway came from. Under `SCHED_IDLE` the writer runs only on a
//! core nothing else wants. When the cores are saturated it is starved, so
//! it returns to normal priority once the queue grows past [`BEHIND`] or
//! its last commit is older than [`STALE_MS`] (a busy CPU with little
//! traffic: slow guests), or someone waits for a flush; it is lowered
//! again after a commit leaves fewer than [`CAUGHT_UP`] queued. The queue
//! never fills, and nothing waits longer than about [`STALE_MS`] to be
//! committed, because of its priority.
//!
//! Leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` allowing
//! nice 0. Without either the writer could never come back, so it is only
//! lowered after a throwaway thread proved the way back works.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Queued entries above which the writer is behind.
pub const BEHIND: usize = 8_192;
/// Queued entries below which it has caught up.
pub const CAUGHT_UP: usize = 1_024;
/// How long an entry may wait for a starved writer before it is raised.
pub const STALE_MS: u64 = 100;

/// The writer thread's priority, shared with the senders: a starved idle
/// writer cannot notice it is behind, so whoever queues behind it raises
/// it.
#[derive(Default)]
pub struct WriterPriority {
    /// Mirrors `state.idle`, read by every send without taking the lock.
    idle: AtomicBool,
    /// Since when entries have waited, as far as anyone can tell: set by
    /// each commit and by the send that finds the queue empty (ms since
    /// the epoch).
    waiting_since_ms: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The writer's thread id; 0 until it started.
    tid: i32,
    idle: bool,
}

impl WriterPriority {
    /// On the writer thread, once: lower it if it could be raised again.
    pub fn start(&self, now_ms: u64) {
        self.waiting_since_ms.store(now_ms, Ordering::Relaxed);
        let reversible = std::thread::spawn(|| set_idle(0, true) && set_idle(0, false))
            .join()
            .unwrap_or(false);
        if !reversible {
            tracing::debug!(
                "event writer keeps normal priority: this process may not leave SCHED_IDLE"
            );
            return;
        }
        let mut st = self.lock();
        st.tid = current_tid();
        self.switch(&mut st, true);
    }

    /// A sender queued behind the writer: raise it if it is idle and
    /// behind or stale.
    pub fn queued(&self, queued: usize, now_ms: u64) {
        if queued == 1 {
            // The first entry after the writer caught up: nothing waited
            // before it, however long ago the last commit was.
            self.waiting_since_ms.store(now_ms, Ordering::Relaxed);
        }
        if self.idle.load(Ordering::Relaxed)
            && (queued > BEHIND
                || now_ms.saturating_sub(self.waiting_since_ms.load(Ordering::Relaxed)) > STALE_MS)
        {
            self.raise();
        }
    }

    /// The writer is about to commit with `queued` entries waiting: it is
    /// running, so only a large backlog raises it, to get through it.
    pub fn backlog(&self, queued: usize) {
        if queued > BEHIND && self.idle.load(Ordering::Relaxed) {
            self.raise();
        }
    }

    /// Someone waits for the writer (a flush): it must not be starved.
    pub fn raise(&self) {
        let mut st = self.lock();
        if st.idle {
            self.switch(&mut st, false);
        }
    }

    /// The writer committed, leaving `queued` behind: idle again once it
    /// caught up.
    pub fn committed(&self, queued: usize, now_ms: u64) {
        self.waiting_since_ms.store(now_ms, Ordering::Relaxed);
        if queued < CAUGHT_UP && !self.idle.load(Ordering::Relaxed) {
            let mut st = self.lock();
            if !st.idle {
                self.switch(&mut st, true);
            }
        }
    }

    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    fn switch(&self, st: &mut State, idle: bool) {
        if st.tid != 0 && set_idle(st.tid, idle) {
            st.idle = idle;
            self.idle.store(idle, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(target_os = "linux")]
fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// Set thread `tid` (0: the calling one) to `SCHED_IDLE` or back.
#[cfg(target_os = "linux")]
fn set_idle(tid: i32, idle: bool) -> bool {
    let policy = if idle {
        libc::SCHED_IDLE
    } else {
        libc::SCHED_OTHER
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `tid` is 0 or a thread of this process; `param` outlives
    // the call.
    unsafe { libc::sched_setscheduler(tid, policy, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn current_tid() -> i32 {
    0
}

#[cfg(not(target_os = "linux"))]
fn set_idle(_tid: i32, _idle: bool) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_writer_starts_idle_and_any_sender_raises_it_when_behind() {
        use std::sync::Arc;
        let p = Arc::new(WriterPriority::default());
        let (ready, started) = std::sync::mpsc::channel();
        let (done, finish) = std::sync::mpsc::channel::<()>();
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || {
                p.start(0);
                ready.send(current_tid()).unwrap();
                finish.recv().unwrap();
            })
        };
        let tid = started.recv().unwrap();
        // SAFETY: `tid` is a live thread of this process.
        let policy = || unsafe { libc::sched_getscheduler(tid) };
        if !p.is_idle() {
            // Unprivileged, without RLIMIT_NICE: never lowered.
            assert_eq!(policy(), libc::SCHED_OTHER);
        } else {
            assert_eq!(policy(), libc::SCHED_IDLE);
            // Senders raise it: behind...
            p.queued(BEHIND, 0);
            assert!(p.is_idle(), "not behind yet");
            p.queued(BEHIND + 1, 0);
            assert_eq!(policy(), libc::SCHED_OTHER);
            p.committed(CAUGHT_UP, 0);
            assert_eq!(policy(), libc::SCHED_OTHER, "not caught up yet");
            p.committed(0, 0);
            assert_eq!(policy(), libc::SCHED_IDLE);
            // ... or stale: an entry waited too long ...
            p.queued(1, 1_000);
            p.queued(2, 1_000 + STALE_MS);
            assert!(p.is_idle(), "not stale yet");
            p.queued(3, 1_001 + STALE_MS);
            assert_eq!(policy(), libc::SCHED_OTHER);
            p.committed(0, 1_001 + STALE_MS);
            assert_eq!(policy(), libc::SCHED_IDLE);
            // The writer itself, about to commit, only for a large backlog.
            p.backlog(BEHIND);
            assert!(p.is_idle());
            p.backlog(BEHIND + 1);
            assert_eq!(policy(), libc::SCHED_OTHER);
            p.committed(0, 1_001 + STALE_MS);
            // (the first entry after a quiet hour has not waited)
            p.queued(1, 3_600_000);
            assert!(p.is_idle());
            // ... and so does a flush.
            p.raise();
            assert_eq!(policy(), libc::SCHED_OTHER);
        }
        done.send(()).unwrap();
        writer.join().unwrap();
    }
}
