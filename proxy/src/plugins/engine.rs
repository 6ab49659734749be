//! The wasmtime engines plugins run on, their `Linker`s, the instance
//! budget shared by all plugins, and the on-disk cache of compiled
//! components. Their epochs advance on the shared ticker (`epoch.rs`).
//!
//! Two engines: a component that uses component-model async (jco's QuickJS
//! output does, for `task.cancel`) needs wasmtime's concurrency support,
//! which routes every call through its task bookkeeping (measured: a warm
//! router call 3.3 → 4.5 µs, a translated SSE event 8.1 → 10.2 µs). Such
//! components run on the concurrent engine; every other runs on the plain
//! one and does not pay for it.
//!
//! Guest calls are async (`call_async` on a fiber): a guest that computes
//! yields its worker back to tokio every epoch tick instead of holding it
//! for its whole deadline, WASI's async host functions (stdout, clocks)
//! run without blocking a runtime, and a call whose client went away is
//! dropped mid-flight. See docs/ARCHITECTURE.md for why this won over a
//! dedicated thread pool.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::PluginError;
use super::bindings;
use super::limits::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_PLUGIN_MEMORY, MAX_TABLES};
use super::state::HostState;

/// Live component instances across all plugins (warm pools, streams in
/// flight) by default. Bounds what a flood of concurrent streams can pin;
/// `[plugins] max_instances` changes it.
pub const DEFAULT_MAX_INSTANCES: u32 = 1024;
/// Instances kept back for loading and validating components, so a reload
/// works while traffic holds every other instance.
const RESERVED_INSTANCES: u32 = 16;
/// How long a call waits for an instance when all are in use before the
/// request is answered 503 with `Retry-After`.
pub const INSTANCE_WAIT: Duration = Duration::from_secs(2);

/// Fiber stack per call in flight, and how deep guest wasm may go inside
/// it. Python's interpreter recurses deeply; the rest is host headroom.
const ASYNC_STACK: usize = 2 << 20;
const MAX_WASM_STACK: usize = 1 << 20;

/// Shared by every plugin of every snapshot. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

/// An engine and the host functions linked for it.
struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    /// Part of every cache file name: artifacts from another wasmtime build
    /// or another engine configuration are never even opened.
    compat: u64,
}

struct Inner {
    plain: Runtime,
    /// For components that use component-model async. Few and seldom
    /// hot, so its instances are allocated on demand, not from a pool.
    concurrent: Runtime,
    cache_dir: Option<PathBuf>,
    /// Warm instances kept per plugin: enough for every worker thread to have
    /// one in hand while another finishes a stream.
    pool_size: usize,
    /// One permit per live instance. Waiting here is the back-pressure when
    /// streams hold every instance.
    instances: Arc<Semaphore>,
}

impl PluginEngine {
    /// Build the engines and register them with the epoch ticker. `cache_dir` holds
    /// compiled artifacts (loaded as native code, so it must be private to
    /// this user); `None` disables the cache (tools, tests).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        Self::with_instances(cache_dir, DEFAULT_MAX_INSTANCES)
    }

    /// [`new`](Self::new) with room for `max_instances` live instances.
    pub fn with_instances(
        cache_dir: Option<PathBuf>,
        max_instances: u32,
    ) -> Result<Self, PluginError> {
        let slots = max_instances.max(1) + RESERVED_INSTANCES;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 4)
            .total_tables(slots * 8)
            .total_stacks(slots)
            .max_core_instances_per_component(MAX_CORE_INSTANCES as u32)
            .max_memories_per_component(MAX_MEMORIES as u32)
            .max_tables_per_component(MAX_TABLES as u32)
            .max_memory_size(MAX_PLUGIN_MEMORY);

        let plain = Runtime::new(InstanceAllocationStrategy::Pooling(pool), false)?;
        let concurrent = Runtime::new(InstanceAllocationStrategy::OnDemand, true)?;
        if let Some(dir) = &cache_dir {
            crate::fsutil::ensure_private_dir(dir)
                .map_err(|e| PluginError::Engine(format!("plugin cache {}: {e}", dir.display())))?;
        }
        let inner = Arc::new(Inner {
            plain,
            concurrent,
            cache_dir,
            pool_size: std::thread::available_parallelism()
                .map_or(4, |n| n.get() * 2)
                .max(4),
            instances: Arc::new(Semaphore::new(max_instances.max(1) as usize)),
        });
        super::epoch::register(&inner.plain.engine);
        super::epoch::register(&inner.concurrent.engine);
        Ok(Self { inner })
    }

    pub fn pool_size(&self) -> usize {
        self.inner.pool_size
    }

    /// The linker of the engine `component` was compiled for.
    pub fn linker_for(&self, component: &Component) -> &Linker<HostState> {
        let plain = &self.inner.plain;
        if Engine::same(component.engine(), &plain.engine) {
            &plain.linker
        } else {
            &self.inner.concurrent.linker
        }
    }

    /// A permit if one is free now, for work that may simply be skipped.
    pub fn try_instance_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.instances.clone().try_acquire_owned().ok()
    }

    /// A permit for one more live instance, waiting up to [`INSTANCE_WAIT`]
    /// when every instance is in use.
    pub async fn instance_permit(&self) -> Result<OwnedSemaphorePermit, PluginError> {
        if let Some(p) = self.try_instance_permit() {
            return Ok(p);
        }
        let sem = self.inner.instances.clone();
        match tokio::time::timeout(INSTANCE_WAIT, sem.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(PluginError::Busy),
        }
    }

    /// Compile `bytes` (whose sha256 is `sha256`), or load the artifact a
    /// previous compile left in the cache. Slow (milliseconds to seconds):
    /// call it off the request path.
    ///
    /// A component that the plain engine refuses (it fails validation
    /// early, before any code is generated) is tried on the concurrent one.
    pub fn compile(&self, bytes: &[u8], sha256: &str) -> Result<Component, PluginError> {
        let (plain, concurrent) = (&self.inner.plain, &self.inner.concurrent);
        let cache_path = |rt: &Runtime| {
            self.inner
                .cache_dir
                .as_ref()
                .map(|dir| dir.join(format!("{sha256}-{:016x}.cwasm", rt.compat)))
        };
        for rt in [plain, concurrent] {
            if let Some(path) = cache_path(rt)
                && let Some(component) = load_cached(&rt.engine, &path)
            {
                return Ok(component);
            }
        }
        let (rt, component) = match Component::new(&plain.engine, bytes) {
            Ok(c) => (plain, c),
            Err(_) => (
                concurrent,
                Component::new(&concurrent.engine, bytes).map_err(PluginError::invalid)?,
            ),
        };
        if let Some(path) = cache_path(rt)
            && let Err(e) = store_cached(&path, &component)
        {
            tracing::warn!(path = %path.display(), "cannot cache compiled plugin: {e}");
        }
        Ok(component)
    }
}

impl Runtime {
    fn new(allocation: InstanceAllocationStrategy, concurrency: bool) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .concurrency_support(concurrency)
            .epoch_interruption(true)
            .async_stack_size(ASYNC_STACK)
            .max_wasm_stack(MAX_WASM_STACK)
            .cranelift_opt_level(OptLevel::Speed)
            .allocation_strategy(allocation);
        let engine = Engine::new(&config).map_err(PluginError::engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(PluginError::engine)?;
        bindings::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(PluginError::engine)?;
        bindings::context::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(PluginError::engine)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            engine,
            linker,
            compat: hasher.finish(),
        })
    }
}

fn load_cached(engine: &Engine, path: &Path) -> Option<Component> {
    match crate::fsutil::check_private_file(path) {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), "refusing cached plugin artifact: {e}; recompiling");
            let _ = std::fs::remove_file(path);
            return None;
        }
    }
    // SAFETY: the artifact is native code. It is loaded only from the
    // cache directory, which is checked to be this user's and private
    // (0700) at startup, and only when the file itself is this user's
    // and not writable by others (checked just above); the name carries
    // the engine's compatibility hash, and wasmtime still checks the
    // header and engine settings and refuses a mismatch, in which case
    // we recompile.
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), "discarding stale plugin cache: {e}");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

fn store_cached(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    crate::fsutil::write_private(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod test {
    use super::*;

    fn compile(engine: &PluginEngine, file: &str) -> Component {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/plugins")
            .join(file);
        let bytes = std::fs::read(&path).expect("`make plugins` builds the plugins first");
        engine.compile(&bytes, file).unwrap()
    }

    #[test]
    fn only_components_that_use_async_builtins_run_on_the_concurrent_engine() {
        let engine = PluginEngine::with_instances(None, 4).unwrap();
        let plain = &engine.inner.plain.engine;
        for file in ["router_header.wasm", "translator_openai_anthropic.wasm"] {
            assert!(
                Engine::same(compile(&engine, file).engine(), plain),
                "{file}"
            );
        }
        let js = compile(&engine, "router_js.wasm");
        assert!(Engine::same(js.engine(), &engine.inner.concurrent.engine));
        assert!(engine.linker_for(&js).instantiate_pre(&js).is_ok());
        assert!(
            PluginEngine::new(None)
                .unwrap()
                .compile(b"\0asm junk", "x")
                .is_err()
        );
    }
}
