//! The one wasmtime `Engine` every plugin runs on, its `Linker`, the epoch
//! ticker that enforces deadlines, and the on-disk cache of compiled
//! components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::PluginError;
use super::state::HostState;

/// How often the epoch advances. Plugin deadlines are whole ticks, so this is
/// their resolution; waking 1000 times a second costs nothing measurable.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Upper bound on any one plugin memory, whatever a policy asks for: the
/// pooling allocator reserves slots of this size up front.
pub const MAX_PLUGIN_MEMORY: usize = 512 << 20;

/// Live component instances across all plugins (warm pools, streams in
/// flight, validation). Bounds what a flood of concurrent streams can pin.
const MAX_INSTANCES: u32 = 1024;

/// Shared by every plugin of every snapshot. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    /// Part of every cache file name: artifacts from another wasmtime build
    /// or another engine configuration are never even opened.
    compat: u64,
    /// Warm instances kept per plugin: enough for every worker thread to have
    /// one in hand while another finishes a stream.
    pool_size: usize,
}

impl PluginEngine {
    /// Build the engine and start its epoch ticker. `cache_dir` holds
    /// compiled artifacts; `None` disables the cache (tools, tests).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES * 4)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 2)
            .max_memory_size(MAX_PLUGIN_MEMORY);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(PluginError::engine)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(PluginError::engine)?;
        super::bindings::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(PluginError::engine)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hasher.finish();

        if let Some(dir) = &cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                PluginError::Engine(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let inner = Arc::new(Inner {
            engine,
            linker,
            cache_dir,
            compat,
            pool_size: std::thread::available_parallelism()
                .map_or(4, |n| n.get() * 2)
                .max(4),
        });
        spawn_ticker(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn pool_size(&self) -> usize {
        self.inner.pool_size
    }

    pub fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Compile `bytes` (whose sha256 is `sha256`), or load the artifact a
    /// previous compile left in the cache. Slow (milliseconds to seconds):
    /// call it off the request path.
    pub fn compile(&self, bytes: &[u8], sha256: &str) -> Result<Component, PluginError> {
        let cached = self
            .inner
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{sha256}-{:016x}.cwasm", self.inner.compat)));
        if let Some(path) = &cached
            && let Some(component) = self.load_cached(path)
        {
            return Ok(component);
        }
        let component = Component::new(&self.inner.engine, bytes).map_err(PluginError::invalid)?;
        if let Some(path) = &cached
            && let Err(e) = store_cached(path, &component)
        {
            tracing::warn!(path = %path.display(), "cannot cache compiled plugin: {e}");
        }
        Ok(component)
    }

    fn load_cached(&self, path: &Path) -> Option<Component> {
        if !path.exists() {
            return None;
        }
        // SAFETY: the file is one this process (or an earlier one of the same
        // build, per the compatibility hash in its name) wrote into the data
        // dir, which is created private to the proxy's user; wasmtime still
        // checks the artifact's header and engine settings and refuses a
        // mismatch, in which case we recompile.
        match unsafe { Component::deserialize_file(&self.inner.engine, path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), "discarding stale plugin cache: {e}");
                let _ = std::fs::remove_file(path);
                None
            }
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

/// One thread advances the epoch for every store; it ends when the engine is
/// dropped.
fn spawn_ticker(inner: Weak<Inner>) {
    std::thread::Builder::new()
        .name("sluice-epoch".into())
        .spawn(move || {
            while let Some(inner) = inner.upgrade() {
                inner.engine.increment_epoch();
                drop(inner);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn epoch ticker thread");
}
