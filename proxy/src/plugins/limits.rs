//! What one plugin call may use, and who is to blame when it runs out.
//!
//! A binding sets a base deadline and memory cap, sized for the plugin's
//! ordinary work. A call on a large input gets more of both, in proportion
//! to the input, so any body the gateway accepts (`limits.max_body_bytes`)
//! can be translated; the base still catches a plugin that misbehaves on
//! small inputs. When a call on a large input runs out anyway, the input is
//! to blame: the client gets 413 and the plugin is not held responsible,
//! so no client can trip a plugin's breaker for everyone else by sending
//! big bodies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, UpdateDeadline};

/// Upper bound on any one plugin memory, whatever a policy asks for: the
/// pooling allocator reserves slots of this size up front (virtual address
/// space only).
pub const MAX_PLUGIN_MEMORY: usize = 512 << 20;

/// Extra memory a call gets per byte of input. A JSON document parsed into
/// a `serde_json::Value` tree, rebuilt in another shape and serialized
/// again peaks near 40 times its size for bodies of many tiny blocks (the
/// translator component, measured); the cap of any one memory still bounds
/// it.
const MEMORY_PER_INPUT_BYTE: usize = 48;
/// Extra run time a call gets per MiB of input: nearly three times what the
/// translator component needs for a pathological body of tiny text blocks
/// (~150 ms per MiB here, a fresh instance growing its memory included).
const TIME_PER_INPUT_MIB: Duration = Duration::from_millis(400);
/// A call also ends when this many times its run-time budget has passed on
/// the wall clock (plus a second): the backstop for a guest that waits on
/// a clock instead of computing, and for extreme CPU contention.
const WALL_FACTOR: u32 = 4;
const WALL_SLACK: Duration = Duration::from_secs(1);
/// The most a call is charged for the time before its first tick, which is
/// timed on the wall clock: two ticks (the ticker itself may be late).
const WALL_PHASE_MAX: Duration = Duration::from_millis(2);
/// Inputs at least this large are blamed for running out of memory or
/// time. Below it, the plugin is: no honest plugin needs more than its
/// base budget for a small input.
pub const BLAME_INPUT_BYTES: usize = 64 << 10;

/// Limits for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    pub memory_bytes: usize,
    /// Time the guest may spend running (not waiting for the worker while
    /// other requests run: a guest yields every epoch tick).
    pub deadline: Duration,
    /// Bytes of input the call is given (0 when it has none).
    pub input_bytes: usize,
}

impl CallBudget {
    /// A binding's base limits, grown for `input_bytes` of input.
    pub fn for_input(base_memory: usize, base_deadline: Duration, input_bytes: usize) -> Self {
        let extra_memory = input_bytes.saturating_mul(MEMORY_PER_INPUT_BYTE);
        let extra_time = TIME_PER_INPUT_MIB.mul_f64(input_bytes as f64 / (1 << 20) as f64);
        Self {
            memory_bytes: base_memory
                .saturating_add(extra_memory)
                .min(MAX_PLUGIN_MEMORY),
            deadline: base_deadline + extra_time,
            input_bytes,
        }
    }

    /// Whether running out of this budget is the input's fault.
    pub fn blames_input(&self) -> bool {
        self.input_bytes >= BLAME_INPUT_BYTES
    }

    /// The wall-clock backstop of this call.
    pub fn wall_limit(&self) -> Duration {
        self.deadline * WALL_FACTOR + WALL_SLACK
    }
}

/// How long the guest of one store has been running in the current call.
/// The time is taken per poll of the call's future (a guest runs only
/// while its fiber is polled), so waiting for a busy worker is not
/// charged; the epoch callback reads it every tick.
///
/// A slice is timed on the wall clock (a vDSO read) until the call has run
/// for a tick; after that on the thread's CPU clock (a system call, ~0.7 µs
/// here, negligible against a slice of a millisecond), so a long call is
/// not charged for the time the OS gave the core to someone else.
pub struct CallClock {
    origin: Instant,
    used_ns: AtomicU64,
    /// When the running slice began, on its clock (0: not running).
    slice_ns: AtomicU64,
    /// Whether slices are timed on the thread's CPU clock.
    cpu: AtomicBool,
    slice_on_cpu: AtomicBool,
    budget_ns: AtomicU64,
}

fn thread_cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to; this clock exists on
    // every Linux since 2.6.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    (t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64).max(1)
}

impl CallClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            used_ns: AtomicU64::new(0),
            slice_ns: AtomicU64::new(0),
            cpu: AtomicBool::new(false),
            slice_on_cpu: AtomicBool::new(false),
            budget_ns: AtomicU64::new(0),
        })
    }

    fn wall_ns(&self) -> u64 {
        (self.origin.elapsed().as_nanos() as u64).max(1)
    }

    fn now_on(&self, cpu: bool) -> u64 {
        if cpu { thread_cpu_ns() } else { self.wall_ns() }
    }

    /// Start a call with `budget` of run time.
    pub fn arm(&self, budget: Duration) {
        self.used_ns.store(0, Ordering::Relaxed);
        self.cpu.store(false, Ordering::Relaxed);
        self.budget_ns
            .store(budget.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Whether the call has used up its run time, as [`on_tick`] sees it
    /// (and with the same effect on the clock).
    ///
    /// [`on_tick`]: Self::on_tick
    #[cfg(test)]
    pub fn exhausted(&self) -> bool {
        self.tick_used_ns() > self.budget_ns.load(Ordering::Relaxed)
    }

    /// The epoch callback's answer, once per tick of running, inside a
    /// slice (from the first on, slices are timed on the CPU clock): past the call's run time,
    /// interrupt; otherwise yield the worker so other requests run while
    /// this guest computes. A call that has run for less than a tick (the
    /// tick just happened to land in it) goes on: yielding would put it
    /// behind every ready request on a busy worker, and a router sent back
    /// there misses the routing chain's budget for no fault of its own.
    pub fn on_tick(&self) -> UpdateDeadline {
        let used = self.tick_used_ns();
        if used > self.budget_ns.load(Ordering::Relaxed) {
            UpdateDeadline::Interrupt
        } else if used < super::epoch::EPOCH_TICK.as_nanos() as u64 {
            UpdateDeadline::Continue(1)
        } else {
            UpdateDeadline::Yield(1)
        }
    }

    /// Run time so far, read once per tick; the first tick moves the call
    /// onto the CPU clock.
    fn tick_used_ns(&self) -> u64 {
        if !self.cpu.swap(true, Ordering::Relaxed) {
            self.leave_wall_clock();
        }
        let slice = self.slice_ns.load(Ordering::Relaxed);
        let running = if slice == 0 {
            0
        } else {
            let on_cpu = self.slice_on_cpu.load(Ordering::Relaxed);
            self.now_on(on_cpu).saturating_sub(slice)
        };
        self.used_ns.load(Ordering::Relaxed) + running
    }

    /// The first tick of a call: what ran so far was timed on the wall
    /// clock, which also counts any time the OS took the core away (a
    /// compile or another process on a busy machine: seen to fail a 5 ms
    /// router). Charge at most `WALL_PHASE_MAX` for it and move the running
    /// slice onto the CPU clock. (Until now every slice began on the wall
    /// clock: `begin_slice` follows `cpu`, which was still false.)
    fn leave_wall_clock(&self) {
        let slice = self.slice_ns.load(Ordering::Relaxed);
        let running = if slice == 0 {
            0
        } else {
            self.wall_ns().saturating_sub(slice)
        };
        let wall_phase = self.used_ns.load(Ordering::Relaxed) + running;
        self.used_ns.store(
            wall_phase.min(WALL_PHASE_MAX.as_nanos() as u64),
            Ordering::Relaxed,
        );
        if slice != 0 {
            self.slice_on_cpu.store(true, Ordering::Relaxed);
            self.slice_ns.store(thread_cpu_ns(), Ordering::Relaxed);
        }
    }

    fn begin_slice(&self) {
        let cpu = self.cpu.load(Ordering::Relaxed);
        self.slice_on_cpu.store(cpu, Ordering::Relaxed);
        self.slice_ns.store(self.now_on(cpu), Ordering::Relaxed);
    }

    fn end_slice(&self) {
        let start = self.slice_ns.swap(0, Ordering::Relaxed);
        let on_cpu = self.slice_on_cpu.load(Ordering::Relaxed);
        self.used_ns
            .fetch_add(self.now_on(on_cpu).saturating_sub(start), Ordering::Relaxed);
    }
}

/// The call's wall-clock backstop ran out.
#[derive(Debug, thiserror::Error)]
#[error("still not done after {0:?} on the wall clock")]
pub struct WallLimitReached(pub Duration);

/// Run the guest call `fut`, charging its run time to `clock` and ending it
/// at `budget`'s wall-clock backstop. The backstop's timer is only set once
/// the call has to wait (it yielded or awaits a host future): most calls
/// finish in their first poll and never pay for one.
///
/// Guest code runs only in here: while any call is inside, the epoch
/// ticker runs (see `epoch.rs`).
pub async fn metered<T>(
    clock: &CallClock,
    budget: &CallBudget,
    fut: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let _running = super::epoch::running();
    let mut fut = std::pin::pin!(fut);
    let wall = budget.wall_limit();
    let started = Instant::now();
    let mut backstop: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        clock.begin_slice();
        let r = fut.as_mut().poll(cx);
        clock.end_slice();
        if r.is_ready() {
            return r;
        }
        let timer = backstop
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until((started + wall).into())));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(WallLimitReached(wall).into())),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A linear memory or table grew past the call's cap.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {limit} bytes reached (wanted {wanted})")]
pub struct MemoryCapReached {
    pub limit: usize,
    pub wanted: usize,
}

/// The store's resource limiter: the memory cap of the current call, and
/// the largest memory the instance has grown to (an instance that grew
/// beyond its binding's base cap for one large input is not kept warm).
pub struct Limiter {
    pub memory_cap: usize,
    pub memory_used: usize,
    /// Run time of the current call, checked on every epoch tick.
    pub clock: Arc<CallClock>,
}

impl Limiter {
    pub fn new(memory_cap: usize) -> Self {
        Self {
            memory_cap,
            memory_used: 0,
            clock: CallClock::new(),
        }
    }
}

/// Instances, tables and memories one component may create: the Python
/// and JavaScript toolchains compose a handful of core modules.
pub const MAX_CORE_INSTANCES: usize = 64;
pub const MAX_TABLES: usize = 64;
pub const MAX_MEMORIES: usize = 16;
/// Elements in one table: bounds what a guest can make the host allocate.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            return Err(MemoryCapReached {
                limit: self.memory_cap,
                wanted: desired,
            }
            .into());
        }
        self.memory_used = self.memory_used.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(MemoryCapReached {
                limit: MAX_TABLE_ELEMENTS,
                wanted: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::plugins::policy::Binding;

    #[tokio::test]
    async fn only_running_time_is_charged() {
        let clock = CallClock::new();
        let budget = CallBudget {
            memory_bytes: 0,
            deadline: Duration::from_millis(20),
            input_bytes: 0,
        };
        clock.arm(budget.deadline);
        // Waiting (pending, not running) for longer than the budget is free.
        let r = metered(&clock, &budget, async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(7)
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert!(!clock.exhausted());
        // Running is charged, as the epoch callback sees it every tick.
        clock.arm(budget.deadline);
        let r = metered(&clock, &budget, async {
            let mut ticks = 0;
            while !clock.exhausted() && ticks < 100 {
                spin(Duration::from_millis(1));
                ticks += 1;
            }
            Ok(ticks)
        })
        .await;
        let ticks = r.unwrap();
        assert!(
            (19..100).contains(&ticks),
            "interrupted after {ticks} ms of 20"
        );
    }

    #[tokio::test]
    async fn the_wall_clock_backstop_ends_a_sleeper() {
        let clock = CallClock::new();
        let budget = CallBudget {
            memory_bytes: 0,
            deadline: Duration::from_millis(1),
            input_bytes: 0,
        };
        let r: wasmtime::Result<()> = metered(&clock, &budget, std::future::pending()).await;
        assert!(r.unwrap_err().downcast_ref::<WallLimitReached>().is_some());
    }

    #[test]
    fn budget_grows_with_input_and_stays_capped() {
        let b = Binding::default();
        let small = CallBudget::for_input(b.memory_bytes, b.deadline, 100);
        assert_eq!(
            small.memory_bytes,
            b.memory_bytes + 100 * MEMORY_PER_INPUT_BYTE
        );
        assert!(!small.blames_input());
        let ten_mib = CallBudget::for_input(b.memory_bytes, b.deadline, 10 << 20);
        assert!(ten_mib.memory_bytes >= 240 << 20);
        assert!(ten_mib.deadline >= b.deadline + Duration::from_secs(4));
        assert!(ten_mib.wall_limit() > ten_mib.deadline * 4);
        assert!(ten_mib.blames_input());
        let huge = CallBudget::for_input(b.memory_bytes, b.deadline, 1 << 30);
        assert_eq!(huge.memory_bytes, MAX_PLUGIN_MEMORY);
    }

    /// Compute for `d` of this thread's CPU time (not wall time: a busy
    /// machine must not make the tests flaky).
    fn spin(d: Duration) {
        let until = thread_cpu_ns() + d.as_nanos() as u64;
        while thread_cpu_ns() < until {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn time_the_os_took_before_the_first_tick_is_not_charged() {
        let clock = CallClock::new();
        clock.arm(Duration::from_millis(5));
        clock.begin_slice();
        // Descheduled: the wall clock runs, the thread's CPU clock does not.
        std::thread::sleep(Duration::from_millis(30));
        assert!(!clock.exhausted(), "preemption was charged as run time");
        spin(Duration::from_millis(8));
        assert!(
            clock.exhausted(),
            "computing past the budget was not caught"
        );
        clock.end_slice();
    }

    #[test]
    fn run_time_across_slices_adds_up_on_the_cpu_clock() {
        let clock = CallClock::new();
        clock.arm(Duration::from_millis(6));
        clock.begin_slice();
        spin(Duration::from_millis(1));
        assert!(!clock.exhausted());
        clock.end_slice();
        // Waiting between slices (a yield, a host future) costs nothing.
        std::thread::sleep(Duration::from_millis(20));
        clock.begin_slice();
        assert!(!clock.exhausted());
        spin(Duration::from_millis(7));
        assert!(clock.exhausted());
        clock.end_slice();
    }
}
