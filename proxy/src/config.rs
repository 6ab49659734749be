//! `sluice.toml`: every field has a default, unknown fields are an error that
//! names the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub data: DataConfig,
    pub plugins: PluginsConfig,
    pub providers: Vec<ProviderConfig>,
    pub routing: RoutingConfig,
    pub limits: LimitsConfig,
    pub api: crate::versioning::ApiConfig,
    pub auth: AuthConfig,
    pub rate_limits: crate::ratelimit::RateLimitConfig,
    pub log: LogConfig,
    pub evaluation: crate::evaluation::EvalConfig,
    pub traces: TracesConfig,
}

/// `[traces]`: the trace store's retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// Days kept by the purge (audit events are always kept).
    pub retention_days: u64,
    /// Purge once a day while running (off by default: run `sluice
    /// traces purge` from cron instead, or turn this on).
    pub purge_daily: bool,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            retention_days: 90,
            purge_daily: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line). The environment
    /// variable `SLUICE_LOG_FORMAT`, when set, wins.
    pub format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, the
    /// event's fields (`message`, `request_id`, …) and the current span.
    Json,
}

impl LogFormat {
    /// `text` or `json`, as in the config file.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Data-plane requests need a gateway key (`Authorization: Bearer` or
    /// `x-api-key`). Off, requests without a valid one are served unkeyed
    /// (a valid key is still attributed and capped).
    pub required: bool,
    /// File holding the admin API's bearer token. Default:
    /// `<data.dir>/admin.token`, created (0600) on first start.
    pub admin_token_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            required: true,
            admin_token_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Data-plane listener.
    pub listen: SocketAddr,
    /// Admin listener (health, metrics, plugins, reload).
    pub admin_listen: SocketAddr,
    /// Worker threads for the data plane; 0 = one per core.
    pub threads: usize,
    /// On SIGTERM, how long in-flight requests (long streams included) get
    /// to finish before the process exits; SIGINT exits at once.
    pub shutdown_grace_seconds: u64,
    /// PEM certificate and key for in-process TLS; both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9090).into(),
            threads: 0,
            shutdown_grace_seconds: 30,
            tls_cert: None,
            tls_key: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Where redb files and the compiled-plugin cache live.
    pub dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: "./data".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Every `*.wasm` here is loaded; changes are picked up while running.
    pub dir: PathBuf,
    /// Policy files (`*.toml`) binding plugins to order, config and limits.
    pub policies_dir: PathBuf,
    /// Quiet period after a file change before reloading, in milliseconds.
    pub debounce_ms: u64,
    /// Whether to watch the directories at all (SIGHUP and `POST
    /// /admin/reload` always work).
    pub watch: bool,
    /// Live plugin instances across all plugins (warm ones and those held
    /// by streams). When all are taken a call waits up to 2 s, then the
    /// request gets 503 with `Retry-After`.
    pub max_instances: u32,
    /// Compiled components (native code), kept private (0700) and keyed by
    /// the component's sha256 and the engine build; several proxies may
    /// share one. Default: `<data.dir>/plugin-cache`.
    pub cache_dir: Option<PathBuf>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: "./plugins.d".into(),
            policies_dir: "./policies".into(),
            debounce_ms: 200,
            watch: true,
            max_instances: crate::plugins::DEFAULT_MAX_INSTANCES,
            cache_dir: None,
        }
    }
}

/// API shape a provider speaks, derived from its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    OpenaiCompatible,
    /// Sluice's own mock: answers both shapes, so nothing is translated.
    Mock,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name used in `provider:model` and by routers.
    pub name: String,
    pub kind: ProviderKind,
    /// `https://api.openai.com/v1`-style base; the API path is appended.
    /// Defaults per kind (OpenAI and Anthropic public endpoints).
    pub base_url: Option<String>,
    /// Name of the environment variable holding the provider credential.
    pub api_key_env: Option<String>,
    /// File (mode 0600) holding the provider credential.
    pub api_key_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust for this provider instead of
    /// the platform's roots (a private CA, a test upstream).
    pub ca_file: Option<PathBuf>,
    /// Models listed by `GET /v1/models` as `name:model`.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub timeouts: TimeoutConfig,
}

/// Upstream timeouts, in milliseconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    pub connect_ms: u64,
    /// Until the response head arrives.
    pub first_byte_ms: u64,
    /// Between two body chunks of a response.
    pub idle_ms: u64,
    /// The whole exchange.
    pub total_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect_ms: 5_000,
            first_byte_ms: 120_000,
            idle_ms: 60_000,
            total_ms: 600_000,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Provider for models no router and no `provider:` prefix resolves
    /// (the global default slot).
    pub default_provider: Option<String>,
    /// Registry aliases: `fast = "mock:gpt-4o-mini"`.
    pub aliases: std::collections::HashMap<String, String>,
    /// Let `POST /admin/routing/clock` move the availability breaker's
    /// clock forward. For tests only: off, the route does not exist.
    pub clock_control: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Largest upstream response body buffered for translation, in bytes.
    pub max_response_bytes: usize,
    /// Requests served at once on the data plane; beyond it new requests
    /// get 503 with `Retry-After` instead of queueing without bound.
    pub max_connections: usize,
    /// A client that sends its body slower than this (between two reads)
    /// gets 408: a slowloris cannot hold a worker.
    pub body_read_timeout_ms: u64,
    /// The whole body must arrive within this (408 beyond), however it is
    /// dripped, on HTTP/1 and HTTP/2 alike.
    pub body_deadline_ms: u64,
    /// A client that accepts no bytes for this long while Sluice writes to
    /// it (a stalled stream reader) is disconnected.
    pub client_write_timeout_ms: u64,
}

impl LimitsConfig {
    pub fn body_limits(&self) -> crate::http::body::BodyLimits {
        crate::http::body::BodyLimits {
            max_bytes: self.max_body_bytes,
            read_gap: std::time::Duration::from_millis(self.body_read_timeout_ms),
            total: std::time::Duration::from_millis(self.body_deadline_ms),
        }
    }

    pub fn client_write_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.client_write_timeout_ms)
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 << 20,
            max_response_bytes: 64 << 20,
            max_connections: 1000,
            body_read_timeout_ms: 30_000,
            body_deadline_ms: 60_000,
            client_write_timeout_ms: 30_000,
        }
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Read `path`; a missing file is only an error when `required`.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for p in &self.providers {
            if p.name.is_empty() || p.name.contains(':') {
                return Err(ConfigError::Invalid(format!(
                    "provider name {:?} must be non-empty and contain no ':'",
                    p.name
                )));
            }
            if !names.insert(p.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "provider {:?} is defined twice",
                    p.name
                )));
            }
            if p.kind == ProviderKind::Mock && p.base_url.is_none() {
                return Err(ConfigError::Invalid(format!(
                    "provider {:?} of kind mock needs a base_url",
                    p.name
                )));
            }
        }
        if let Some(d) = &self.routing.default_provider
            && !names.contains(d.as_str())
        {
            return Err(ConfigError::Invalid(format!(
                "routing.default_provider {d:?} is not a configured provider"
            )));
        }
        crate::versioning::Versions::from_config(&self.api).map_err(ConfigError::Invalid)?;
        let l = &self.limits;
        if l.max_connections == 0
            || l.body_read_timeout_ms == 0
            || l.body_deadline_ms == 0
            || l.client_write_timeout_ms == 0
        {
            return Err(ConfigError::Invalid(
                "limits.max_connections, body_read_timeout_ms, body_deadline_ms and \
                 client_write_timeout_ms must be positive"
                    .into(),
            ));
        }
        for (alias, target) in &self.routing.aliases {
            match target.split_once(':') {
                Some((p, m)) if names.contains(p) && !m.is_empty() => {}
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "routing.aliases.{alias} = {target:?} must be provider:model with a configured provider"
                    )));
                }
            }
        }
        if !(1..=100_000).contains(&self.plugins.max_instances) {
            return Err(ConfigError::Invalid(
                "plugins.max_instances must be 1..=100000".into(),
            ));
        }
        self.rate_limits.validate().map_err(ConfigError::Invalid)?;
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "server.tls_cert and server.tls_key go together: give both or neither".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn unknown_field_is_named() {
        let err = toml::from_str::<Config>("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn defaults_fill_everything() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.server.admin_listen.to_string(), "127.0.0.1:9090");
        assert!(c.providers.is_empty());
    }

    #[test]
    fn duplicate_provider_rejected() {
        let c: Config = toml::from_str(
            "[[providers]]\nname='a'\nkind='openai'\n[[providers]]\nname='a'\nkind='anthropic'\n",
        )
        .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn log_format_is_text_unless_json() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.log.format, LogFormat::Text);
        let c: Config = toml::from_str("[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(c.log.format, LogFormat::Json);
        assert!(toml::from_str::<Config>("[log]\nformat = \"xml\"\n").is_err());
        assert_eq!(LogFormat::parse(" JSON "), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("logfmt"), None);
    }
}
