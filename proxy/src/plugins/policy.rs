//! Plugin bindings read from the policies directory: order, config, limits
//! and fail mode per plugin. A plugin with no binding runs with defaults.
//!
//! ```toml
//! [[plugin]]
//! name = "model-prefix"      # the name the component's describe() gives
//! order = 10                 # lower runs first; default: the plugin's own
//! fail_mode = "closed"       # open (default) | closed
//! deadline_ms = 5
//! memory_limit_mib = 16
//! crash_budget = 5           # failures within a minute that open its breaker
//! cooldown_seconds = 30      # how long an open breaker waits before a probe
//! enabled = true
//! slot = "custom"            # routers: custom (slot 6, default) | first (before slot 1)
//! config = { rules = [{ prefix = "claude-", provider = "anthropic" }] }
//! # Redactors only: where the binding applies (empty: everywhere). A
//! # request must match every list given.
//! keys = ["key_…"]           # gateway key ids
//! teams = ["ml"]             # team ids of the caller's key
//! users = ["alice"]
//! models = ["openai:*"]      # the route: canonical provider:model, `*` suffix for a prefix
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// What happens to a request when its plugin fails (trap, deadline, memory
/// cap, breaker open). Failures the request's own input is to blame for are
/// answered 413 whatever the mode, and pool exhaustion 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Skip the plugin (it abstains), log and count.
    Open,
    /// Refuse the request with 503 `plugin_failed`.
    Closed,
}

/// Where in the routing chain a router runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterSlot {
    /// Before every native slot: it can override even the client's model.
    First,
    /// Slot 6, after the native slots that decide by policy.
    #[default]
    Custom,
}

/// Default per-call deadline. Routers are budgeted in microseconds; 50 ms is
/// far beyond any honest plugin and short enough that a runaway one does not
/// stall a worker noticeably.
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(50);
/// Default linear-memory cap per instance.
pub const DEFAULT_MEMORY_MIB: u32 = 64;
/// Failures within the breaker's window (a minute) that open it, provided
/// they are at least half of the calls in it.
pub const DEFAULT_CRASH_BUDGET: u32 = 5;
/// How long an open breaker refuses calls before letting one probe through;
/// doubled after each failed probe, up to five minutes.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingFile {
    #[serde(default)]
    plugin: Vec<RawBinding>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    name: String,
    order: Option<i32>,
    #[serde(default = "default_fail_mode")]
    fail_mode: FailMode,
    deadline_ms: Option<u64>,
    memory_limit_mib: Option<u32>,
    crash_budget: Option<u32>,
    cooldown_seconds: Option<u64>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    slot: RouterSlot,
    config: Option<toml::Value>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
}

/// Where a binding applies; every list given must match, an empty one
/// matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub keys: Vec<String>,
    pub teams: Vec<String>,
    pub users: Vec<String>,
    /// Canonical `provider:model` ids, or prefixes ending in `*`.
    pub models: Vec<String>,
}

impl Scope {
    pub fn is_everywhere(&self) -> bool {
        self.keys.is_empty()
            && self.teams.is_empty()
            && self.users.is_empty()
            && self.models.is_empty()
    }

    /// Whether a request by `caller` routed to `model` is in scope.
    pub fn applies(&self, caller: Option<&super::Caller>, model: &str) -> bool {
        fn any(list: &[String], v: Option<&str>) -> bool {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        }
        any(&self.keys, caller.map(|c| c.key_id.as_str()))
            && any(&self.teams, caller.and_then(|c| c.team_id.as_deref()))
            && any(&self.users, caller.and_then(|c| c.user_id.as_deref()))
            && (self.models.is_empty()
                || self.models.iter().any(|m| match m.strip_suffix('*') {
                    Some(prefix) => model.starts_with(prefix),
                    None => m == model,
                }))
    }
}

fn default_fail_mode() -> FailMode {
    FailMode::Open
}

fn yes() -> bool {
    true
}

/// How one plugin is bound: resolved, validated, ready to use.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub order: Option<i32>,
    pub fail_mode: FailMode,
    pub deadline: Duration,
    pub memory_bytes: usize,
    pub crash_budget: u32,
    pub cooldown: Duration,
    pub enabled: bool,
    pub slot: RouterSlot,
    /// JSON text handed to the plugin through `host.config()`.
    pub config: Arc<str>,
    /// Redactors: the requests the binding applies to.
    pub scope: Scope,
}

impl Binding {
    /// What one call on `input_bytes` of input may use.
    pub fn budget(&self, input_bytes: usize) -> super::limits::CallBudget {
        super::limits::CallBudget::for_input(self.memory_bytes, self.deadline, input_bytes)
    }
}

impl Default for Binding {
    fn default() -> Self {
        Self {
            order: None,
            fail_mode: FailMode::Open,
            deadline: DEFAULT_DEADLINE,
            memory_bytes: (DEFAULT_MEMORY_MIB as usize) << 20,
            crash_budget: DEFAULT_CRASH_BUDGET,
            cooldown: DEFAULT_COOLDOWN,
            enabled: true,
            slot: RouterSlot::Custom,
            config: Arc::from("{}"),
            scope: Scope::default(),
        }
    }
}

/// Policy files in the same directory that other subsystems own.
pub const NOT_BINDINGS: &[&str] = &["pricing.toml", "budgets.toml", "routing.toml"];

/// All bindings, by plugin name, plus a short hash identifying the policy
/// files they came from.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    pub bindings: HashMap<String, Binding>,
    pub version: String,
}

impl Policies {
    /// Read every `*.toml` in `dir` but [`NOT_BINDINGS`] (a missing dir
    /// means no policies).
    pub fn load(dir: &Path) -> Result<Policies, String> {
        let mut files = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| NOT_BINDINGS.iter().any(|b| n == *b))
                })
                .collect::<Vec<_>>(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
        };
        files.sort();
        let mut hasher = sha2::Sha256::default();
        let mut bindings = HashMap::new();
        for path in files {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            sha2::Digest::update(&mut hasher, text.as_bytes());
            let file: BindingFile =
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for raw in file.plugin {
                let name = raw.name.clone();
                let binding = resolve(raw).map_err(|e| format!("{}: {e}", path.display()))?;
                if bindings.insert(name.clone(), binding).is_some() {
                    return Err(format!(
                        "{}: plugin {name:?} is bound more than once",
                        path.display()
                    ));
                }
            }
        }
        let digest = sha2::Digest::finalize(hasher);
        Ok(Policies {
            bindings,
            version: hex::encode(&digest[..6]),
        })
    }

    pub fn binding(&self, plugin: &str) -> Binding {
        self.bindings.get(plugin).cloned().unwrap_or_default()
    }
}

fn resolve(raw: RawBinding) -> Result<Binding, String> {
    let defaults = Binding::default();
    let memory_mib = raw.memory_limit_mib.unwrap_or(DEFAULT_MEMORY_MIB);
    let memory_bytes = (memory_mib as usize) << 20;
    if memory_mib == 0 || memory_bytes > super::limits::MAX_PLUGIN_MEMORY {
        return Err(format!(
            "plugin {:?}: memory_limit_mib must be 1..={}",
            raw.name,
            super::limits::MAX_PLUGIN_MEMORY >> 20
        ));
    }
    let deadline = raw
        .deadline_ms
        .map_or(defaults.deadline, Duration::from_millis);
    if deadline.is_zero() || deadline > Duration::from_secs(10) {
        return Err(format!(
            "plugin {:?}: deadline_ms must be 1..=10000",
            raw.name
        ));
    }
    let config = match raw.config {
        Some(v) => serde_json::to_string(&v).map_err(|e| e.to_string())?,
        None => "{}".into(),
    };
    Ok(Binding {
        order: raw.order,
        fail_mode: raw.fail_mode,
        deadline,
        memory_bytes,
        crash_budget: raw.crash_budget.unwrap_or(DEFAULT_CRASH_BUDGET).max(1),
        cooldown: raw
            .cooldown_seconds
            .map_or(DEFAULT_COOLDOWN, |s| Duration::from_secs(s.min(3600))),
        enabled: raw.enabled,
        slot: raw.slot,
        config: config.into(),
        scope: Scope {
            keys: raw.keys,
            teams: raw.teams,
            users: raw.users,
            models: raw.models,
        },
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_binding_and_config_as_json() {
        let f: BindingFile = toml::from_str(
            "[[plugin]]\nname='x'\nfail_mode='closed'\ndeadline_ms=7\nconfig={a=[1,2]}\n",
        )
        .unwrap();
        let b = resolve(f.plugin[0].clone()).unwrap();
        assert_eq!(b.fail_mode, FailMode::Closed);
        assert_eq!(b.deadline, Duration::from_millis(7));
        assert_eq!(&*b.config, r#"{"a":[1,2]}"#);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_limits() {
        assert!(toml::from_str::<BindingFile>("[[plugin]]\nname='x'\nfail='open'\n").is_err());
        let f: BindingFile = toml::from_str("[[plugin]]\nname='x'\nmemory_limit_mib=0\n").unwrap();
        assert!(resolve(f.plugin[0].clone()).is_err());
    }
}
