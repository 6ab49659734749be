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

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;

use super::engine::MAX_PLUGIN_MEMORY;
use super::policy::Binding;

/// Extra memory a call gets per byte of input: a JSON document parsed into
/// a tree and serialized again takes several times its size in a guest.
const MEMORY_PER_INPUT_BYTE: usize = 24;
/// Extra time a call gets per MiB of input (about ten times what the
/// translator component needs on this machine's class of CPU).
const TIME_PER_INPUT_MIB: Duration = Duration::from_millis(40);
/// Inputs at least this large are blamed for running out of memory or
/// time. Below it, the plugin is: no honest plugin needs more than its
/// base budget for a small input.
pub const BLAME_INPUT_BYTES: usize = 64 << 10;

/// Limits for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    pub memory_bytes: usize,
    pub deadline: Duration,
    /// Bytes of input the call is given (0 when it has none).
    pub input_bytes: usize,
}

impl CallBudget {
    /// The binding's base limits, grown for `input_bytes` of input.
    pub fn for_input(binding: &Binding, input_bytes: usize) -> Self {
        let extra_memory = input_bytes.saturating_mul(MEMORY_PER_INPUT_BYTE);
        let extra_time = TIME_PER_INPUT_MIB.mul_f64(input_bytes as f64 / (1 << 20) as f64);
        Self {
            memory_bytes: binding
                .memory_bytes
                .saturating_add(extra_memory)
                .min(MAX_PLUGIN_MEMORY),
            deadline: binding.deadline + extra_time,
            input_bytes,
        }
    }

    /// Whether running out of this budget is the input's fault.
    pub fn blames_input(&self) -> bool {
        self.input_bytes >= BLAME_INPUT_BYTES
    }
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
    /// When the current call must end; checked on every epoch tick.
    pub deadline: Instant,
}

impl Limiter {
    pub fn new(memory_cap: usize) -> Self {
        Self {
            memory_cap,
            memory_used: 0,
            deadline: Instant::now(),
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

    #[test]
    fn budget_grows_with_input_and_stays_capped() {
        let b = Binding::default();
        let small = CallBudget::for_input(&b, 100);
        assert_eq!(small.memory_bytes, b.memory_bytes + 2400);
        assert!(!small.blames_input());
        let ten_mib = CallBudget::for_input(&b, 10 << 20);
        assert!(ten_mib.memory_bytes >= 240 << 20);
        assert!(ten_mib.deadline >= b.deadline + Duration::from_millis(400));
        assert!(ten_mib.blames_input());
        let huge = CallBudget::for_input(&b, 1 << 30);
        assert_eq!(huge.memory_bytes, MAX_PLUGIN_MEMORY);
    }
}
