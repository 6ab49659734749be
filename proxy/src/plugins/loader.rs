//! Turning the plugins directory and the policy bindings into a
//! [`PluginSet`], keeping the last good version of any file that fails.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::PluginError;
use super::bindings::PluginKind;
use super::engine::PluginEngine;
use super::output::GuestLog;
use super::plugin::{KindPre, Plugin, PluginMeta};
use super::policy::{Binding, Policies};
use crate::api::Shape;

/// Everything the plugins directory yielded, as one snapshot sees it.
#[derive(Default)]
pub struct PluginSet {
    /// Every loaded plugin, by file name order.
    pub all: Vec<Arc<Plugin>>,
    /// Enabled routers, in run order.
    pub routers: Vec<Arc<Plugin>>,
    /// Enabled redactors, in run order.
    pub redactors: Vec<Arc<Plugin>>,
    /// Translator per (client shape, provider shape).
    pub translators: HashMap<(Shape, Shape), Arc<Plugin>>,
    /// Enabled evaluators, in run order (off the request path).
    pub evaluators: Vec<Arc<Plugin>>,
    /// What happened to each file at the last reload.
    pub files: Vec<FileStatus>,
}

/// One file's fate, for `/admin/plugins` and the logs.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub file: String,
    pub sha256: String,
    /// `loaded`, `failed` (never loaded) or `stale` (the new bytes failed; the
    /// last good version keeps serving).
    pub state: &'static str,
    pub error: Option<String>,
}

impl PluginSet {
    pub fn errors(&self) -> impl Iterator<Item = &FileStatus> {
        self.files.iter().filter(|f| f.error.is_some())
    }
}

/// Compile and validate one component and read what it says it is.
pub fn describe_file(engine: &PluginEngine, path: &Path) -> Result<PluginMeta, PluginError> {
    let bytes = std::fs::read(path)
        .map_err(|e| PluginError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    load_meta(engine, path, &bytes, sha256)
}

fn load_meta(
    engine: &PluginEngine,
    path: &Path,
    bytes: &[u8],
    sha256: String,
) -> Result<PluginMeta, PluginError> {
    let component = engine.compile(bytes, &sha256)?;
    if let Some(advice) = super::abi::explain_old_abi(&component) {
        return Err(PluginError::Invalid(advice));
    }
    let pre = engine
        .linker_for(&component)
        .instantiate_pre(&component)
        .map_err(|e| PluginError::Invalid(format!("imports the host cannot satisfy: {e:#}")))?;
    let pre = KindPre::detect(pre)?;
    let info = super::block_on(async {
        let mut warm = pre
            .instantiate(GuestLog::unnamed(), &Binding::default(), None)
            .await?;
        warm.describe(&Binding::default())
            .await
            .map_err(|e| PluginError::Invalid(format!("describe() failed: {e:#}")))
    })?;
    if info.kind != pre.kind() {
        return Err(PluginError::Invalid(format!(
            "describe() says kind {} but the component exports the {} world",
            info.kind.as_str(),
            pre.kind().as_str()
        )));
    }
    if info.name.is_empty()
        || info.name.len() > 64
        || !info
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(PluginError::Invalid(format!(
            "describe() must give a name of 1 to 64 characters from [A-Za-z0-9._-], not {:?}",
            info.name
        )));
    }
    Ok(PluginMeta {
        file: path.to_owned(),
        sha256,
        info,
        pre,
    })
}

/// Build the plugin set for `dir`. Files whose bytes and binding did not
/// change keep their `Plugin` (warm pool, crash budget) from `previous`; a
/// file that fails keeps its previous version, if any, and is reported.
pub fn load_plugins(
    engine: &PluginEngine,
    dir: &Path,
    policies: &Policies,
    previous: Option<&PluginSet>,
) -> PluginSet {
    let mut set = PluginSet::default();
    let prev_by_file: HashMap<&Path, &Arc<Plugin>> = previous
        .map(|p| {
            p.all
                .iter()
                .map(|pl| (pl.meta.file.as_path(), pl))
                .collect()
        })
        .unwrap_or_default();
    let mut names = HashSet::new();

    for path in wasm_files(dir, &mut set.files) {
        let prev = prev_by_file.get(path.as_path()).copied();
        let (plugin, status) = load_one(engine, &path, policies, prev);
        if let Some(plugin) = plugin {
            if names.insert(plugin.name().to_owned()) {
                set.all.push(plugin);
            } else {
                set.files.push(FileStatus {
                    error: Some(format!(
                        "another file already provides a plugin named {:?}",
                        plugin.name()
                    )),
                    state: "failed",
                    ..status
                });
                continue;
            }
        }
        set.files.push(status);
    }

    for plugin in &set.all {
        if !plugin.binding.enabled {
            continue;
        }
        match plugin.kind() {
            PluginKind::Router => set.routers.push(plugin.clone()),
            PluginKind::Translator => {
                for cap in &plugin.meta.info.capabilities {
                    if let Some(pair) = parse_direction(cap) {
                        let slot = set
                            .translators
                            .entry(pair)
                            .or_insert_with(|| plugin.clone());
                        if plugin.order() < slot.order() {
                            *slot = plugin.clone();
                        }
                    }
                }
            }
            PluginKind::Redactor => set.redactors.push(plugin.clone()),
            PluginKind::Evaluator => set.evaluators.push(plugin.clone()),
        }
    }
    let by_order = |a: &Arc<Plugin>, b: &Arc<Plugin>| {
        a.order()
            .cmp(&b.order())
            .then_with(|| a.name().cmp(b.name()))
    };
    set.routers.sort_by(by_order);
    set.redactors.sort_by(by_order);
    set.evaluators.sort_by(by_order);
    set
}

fn load_one(
    engine: &PluginEngine,
    path: &Path,
    policies: &Policies,
    prev: Option<&Arc<Plugin>>,
) -> (Option<Arc<Plugin>>, FileStatus) {
    let file = path.display().to_string();
    let loaded = std::fs::read(path)
        .map_err(|e| PluginError::Invalid(format!("cannot read: {e}")))
        .and_then(|bytes| {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            match prev {
                Some(p) if p.meta.sha256 == sha256 => Ok(p.meta.clone()),
                _ => load_meta(engine, path, &bytes, sha256).map(Arc::new),
            }
        });
    match loaded {
        Ok(meta) => {
            let binding = policies.binding(&meta.info.name);
            let plugin = match prev {
                Some(p) if Arc::ptr_eq(&p.meta, &meta) && p.binding == binding => p.clone(),
                _ => {
                    let plugin = Arc::new(Plugin::new(engine, meta.clone(), binding));
                    if plugin.binding.enabled {
                        super::block_on(plugin.prewarm());
                    }
                    plugin
                }
            };
            let status = FileStatus {
                file,
                sha256: meta.sha256.clone(),
                state: "loaded",
                error: None,
            };
            (Some(plugin), status)
        }
        Err(err) => {
            tracing::error!(file, "plugin rejected: {err}");
            let status = FileStatus {
                file,
                sha256: prev.map(|p| p.meta.sha256.clone()).unwrap_or_default(),
                state: if prev.is_some() { "stale" } else { "failed" },
                error: Some(err.to_string()),
            };
            (prev.cloned(), status)
        }
    }
}

fn wasm_files(dir: &Path, files: &mut Vec<FileStatus>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            files.push(FileStatus {
                file: dir.display().to_string(),
                sha256: String::new(),
                state: "failed",
                error: Some(format!("cannot read plugins directory: {e}")),
            });
            Vec::new()
        }
    };
    paths.sort();
    paths
}

/// `"openai->anthropic"` → (client OpenAI, provider Anthropic).
fn parse_direction(cap: &str) -> Option<(Shape, Shape)> {
    let shape = |s: &str| match s.trim() {
        "openai" => Some(Shape::OpenAi),
        "anthropic" => Some(Shape::Anthropic),
        _ => None,
    };
    let (from, to) = cap.split_once("->")?;
    Some((shape(from)?, shape(to)?))
}
