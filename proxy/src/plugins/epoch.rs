//! The epoch ticker: one thread advances the epoch of every engine while a
//! guest runs, so deadlines are checked and computing guests yield, and
//! sleeps (parked, no wake-ups at all) while none does.
//!
//! An always-on 1 ms ticker woke every idle gateway 1000 times a second;
//! under load it is the same thread doing the same work, so parking costs
//! nothing there. Guest code only runs inside [`running`]'s guard (every
//! call goes through `limits::metered`), which is what makes parking safe:
//! a guest that spins is inside a guard, so the ticker is awake to stop it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::{Engine, EngineWeak};

/// How often the epoch advances while a guest runs. Guests yield and
/// deadlines are checked once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

struct Ticker {
    /// Guest calls in flight, across all engines.
    running: AtomicUsize,
    /// Set by the ticker thread just before it parks.
    parked: AtomicBool,
    thread: Thread,
    /// Ticks so far (for tests and diagnostics).
    ticks: AtomicU64,
    /// Engines whose epoch it advances; dropped ones are pruned.
    engines: Mutex<Vec<EngineWeak>>,
}

static TICKER: OnceLock<Ticker> = OnceLock::new();

fn ticker() -> &'static Ticker {
    TICKER.get_or_init(|| {
        let thread = std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(|| tick_loop(ticker()))
            .expect("spawn epoch ticker thread")
            .thread()
            .clone();
        Ticker {
            running: AtomicUsize::new(0),
            parked: AtomicBool::new(false),
            thread,
            ticks: AtomicU64::new(0),
            engines: Mutex::new(Vec::new()),
        }
    })
}

/// Advance `engine`'s epoch whenever a guest runs, for as long as it lives.
pub fn register(engine: &Engine) {
    ticker()
        .engines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(engine.weak());
}

/// Held while guest code may run; the first one in wakes the ticker.
#[must_use]
pub struct Running(&'static Ticker);

pub fn running() -> Running {
    let t = ticker();
    // Paired with `wait_for_guest`: the ticker publishes `parked` before
    // its last look at `running`, so either it sees this call or this call
    // sees it parked and wakes it.
    if t.running.fetch_add(1, SeqCst) == 0 && t.parked.swap(false, SeqCst) {
        t.thread.unpark();
    }
    Running(t)
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, SeqCst);
    }
}

fn tick_loop(t: &'static Ticker) {
    loop {
        wait_for_guest(t);
        // Sleep first: a call that began just now gets a whole tick before
        // its first check, so a short call never yields on a fresh tick.
        std::thread::sleep(EPOCH_TICK);
        let mut engines = t.engines.lock().unwrap_or_else(|e| e.into_inner());
        engines.retain(|weak| match weak.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        });
        drop(engines);
        t.ticks.fetch_add(1, SeqCst);
    }
}

fn wait_for_guest(t: &Ticker) {
    while t.running.load(SeqCst) == 0 {
        t.parked.store(true, SeqCst);
        if t.running.load(SeqCst) == 0 {
            std::thread::park();
        }
        t.parked.store(false, SeqCst);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::time::Instant;

    fn until(what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    // Needs a process of its own (nextest's default): a guest running in
    // another test would keep the ticker awake.
    #[test]
    fn the_ticker_runs_only_while_a_guest_may_run() {
        let t = ticker();
        let guard = running();
        let ticks = t.ticks.load(SeqCst);
        until("ticks while a guest runs", || {
            t.ticks.load(SeqCst) >= ticks + 3
        });
        drop(guard);
        until("parks once none runs", || t.parked.load(SeqCst));
        let parked_at = t.ticks.load(SeqCst);
        let guard = running();
        until("wakes for the next guest", || {
            t.ticks.load(SeqCst) > parked_at
        });
        drop(guard);
    }
}
