//! The writer's CPU priority: it gives way to request work while it keeps
//! up, and competes for the CPU once it falls behind.
//!
//! A commit is a burst of CPU (about a millisecond for a batch of a hundred
//! requests). On a machine with few cores that burst preempts the worker
//! serving the next request, which is where the tail latency of a lightly
//! loaded gateway came from. Under `SCHED_IDLE` the writer runs only on a
//! core nothing else wants; when the queue grows past [`BEHIND`] (the
//! cores are saturated and the writer is starved) it returns to normal
//! priority until it is back under [`CAUGHT_UP`], so the queue never fills
//! because of its priority.
//!
//! Leaving `SCHED_IDLE` needs `CAP_SYS_NICE` or an `RLIMIT_NICE` allowing
//! nice 0. Without either the writer could never come back, so it is only
//! lowered after a throwaway thread proved the way back works.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Queued entries above which the writer is behind.
pub const BEHIND: usize = 8_192;
/// Queued entries below which it has caught up.
pub const CAUGHT_UP: usize = 1_024;

/// The writer thread's priority, shared with the senders: a starved idle
/// writer cannot notice it is behind, so whoever queues past [`BEHIND`]
/// raises it.
#[derive(Default)]
pub struct WriterPriority {
    /// Mirrors `state.idle`, read by every send past [`BEHIND`] without
    /// taking the lock.
    idle: AtomicBool,
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
    pub fn start(&self) {
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
        if set_idle(st.tid, true) {
            st.idle = true;
            self.idle.store(true, Ordering::Relaxed);
        }
    }

    /// Follow the queue: normal priority when behind, idle once caught up.
    pub fn adjust(&self, queued: usize) {
        if queued > BEHIND && !self.idle.load(Ordering::Relaxed) {
            return;
        }
        let mut st = self.lock();
        if st.tid == 0 {
            return;
        }
        if let Some(idle) = next(st.idle, queued)
            && set_idle(st.tid, idle)
        {
            st.idle = idle;
            self.idle.store(idle, Ordering::Relaxed);
        }
    }

    #[cfg(test)]
    pub fn is_idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The priority to switch to, if any: the hysteresis between [`BEHIND`]
/// and [`CAUGHT_UP`] keeps a queue hovering near one bound from flipping it
/// on every commit.
fn next(idle: bool, queued: usize) -> Option<bool> {
    match idle {
        true if queued > BEHIND => Some(false),
        false if queued < CAUGHT_UP => Some(true),
        _ => None,
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

    #[test]
    fn hysteresis_flips_only_past_its_bounds() {
        assert_eq!(next(true, 0), None);
        assert_eq!(next(true, BEHIND), None);
        assert_eq!(next(true, BEHIND + 1), Some(false));
        assert_eq!(next(false, CAUGHT_UP), None);
        assert_eq!(next(false, BEHIND + 1), None);
        assert_eq!(next(false, CAUGHT_UP - 1), Some(true));
    }

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
                p.start();
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
            // Raised from this thread, as a sender would.
            p.adjust(BEHIND + 1);
            assert!(!p.is_idle());
            assert_eq!(policy(), libc::SCHED_OTHER);
            p.adjust(CAUGHT_UP);
            assert_eq!(policy(), libc::SCHED_OTHER, "inside the hysteresis");
            p.adjust(0);
            assert_eq!(policy(), libc::SCHED_IDLE);
        }
        done.send(()).unwrap();
        writer.join().unwrap();
    }
}
