//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Sluice: a WebAssembly-pluggable edge gateway for LLM APIs.
///
/// Clients point their OpenAI or Anthropic SDK at Sluice; every policy point
/// (routing, translation, redaction, evaluation) is a WASM component that
/// can be dropped into the plugins directory while traffic flows.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (data plane and admin listener).
    Serve(ServeArgs),
    /// Run the built-in mock LLM provider (OpenAI and Anthropic shapes).
    MockProvider(MockArgs),
    /// Inspect plugin components.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Issue, list, rotate and revoke gateway keys. Goes through the admin
    /// API of the proxy running on the data dir, or works on the files
    /// directly when none runs.
    Keys(KeysArgs),
    /// Read the event log (audit events: key lifecycle, auth failures,
    /// quota refusals and alerts).
    Events(EventsArgs),
    /// Trace store retention.
    Traces(TracesArgs),
    /// Export the audit trail (or any event types) to a file, optionally
    /// pseudonymized or reduced to aggregates, byte-deterministically.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// A data subject's rights: export everything about a user, or forget
    /// them (their id replaced by a pseudonym everywhere).
    Users(UsersArgs),
    /// Copy the state (events.redb, keys.redb) into a new directory, with
    /// a manifest; works while the proxy runs.
    Backup {
        /// A directory that does not exist yet.
        dest: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Put a backup's files into the data dir (the proxy must be stopped);
    /// refuses a backup whose schema this build cannot read.
    Restore {
        /// A directory written by `sluice backup`.
        src: PathBuf,
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Args)]
pub struct TracesArgs {
    #[command(subcommand)]
    pub command: TracesCommand,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum TracesCommand {
    /// Delete events strictly older than N days; audit events are kept.
    /// An applied purge records one `trace.swept` event with its counts.
    Purge {
        /// Retention in days (at least 1).
        #[arg(long, default_value_t = 90)]
        days: u64,
        /// Count what would be deleted; delete nothing, record nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write events to DEST (refuses to overwrite). Default: the audit
    /// event types. Output is byte-identical for the same events and flags.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// The file to write; must not exist.
    pub dest: PathBuf,
    /// jsonl (one event per line) or csv.
    #[arg(long = "format", value_enum, default_value = "jsonl")]
    pub export_format: crate::audit::Format,
    /// Only events at or after this instant (RFC 3339, a date, or Unix ms).
    #[arg(long)]
    pub since: Option<String>,
    /// Only events before this instant.
    #[arg(long)]
    pub until: Option<String>,
    /// Only these event types; repeatable [default: the audit types].
    #[arg(long = "event-type")]
    pub event_types: Vec<String>,
    /// passthrough, pseudonymize (identities → redacted_<sha256[:12]>),
    /// redact_private (also free text → a sentinel) or aggregate_only (one
    /// summary object).
    #[arg(long, value_enum, default_value = "passthrough")]
    pub redaction: crate::audit::Mode,
    /// Salt for pseudonyms (breaks correlation with other exports).
    #[arg(long, env = "SLUICE_AUDIT_SALT", hide_env_values = true)]
    pub salt: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Every event about the user, as JSONL (to stdout, or --out).
    Export {
        id: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replace the user's id by its pseudonym in every event, usage record
    /// and spend row. Without --confirm: a dry run that counts and exits 2.
    Forget {
        id: String,
        #[arg(long)]
        confirm: bool,
    },
}

/// Where the CLI finds the state: the data dir (and through it a running
/// proxy's admin API).
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Data directory of the proxy [default: from --config, else ./data].
    #[arg(long, env = "SLUICE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file, to find the data dir and admin token file.
    #[arg(long, short, env = "SLUICE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// How the CLI prints what it did.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key; its secret is printed once and never stored.
    Issue(IssueArgs),
    /// List every key (secrets are never shown).
    List,
    /// Show one key.
    Show { id: String },
    /// Issue a successor with the same metadata; the old key keeps working
    /// for the grace period, then is refused.
    Rotate {
        id: String,
        /// How long the old key stays valid: 30m, 24h, 7d, 2w.
        #[arg(long, default_value = "24h")]
        grace_period: String,
    },
    /// Revoke a key: refused from now on.
    Revoke { id: String },
    /// Mark rotated keys whose grace period ended as revoked (idempotent).
    Sweep,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    #[arg(long = "user")]
    pub user_id: Option<String>,
    /// Team id: a-z, 0-9, '_' and '-'.
    #[arg(long = "team")]
    pub team_id: Option<String>,
    #[arg(long)]
    pub workspace: Option<String>,
    /// trial, paid or internal.
    #[arg(long)]
    pub customer_tier: Option<String>,
    /// Daily cap in USD (a decimal, like 0.50), UTC days.
    #[arg(long)]
    pub daily_cap_usd: Option<String>,
    /// Monthly cap in USD, UTC months.
    #[arg(long)]
    pub monthly_cap_usd: Option<String>,
    /// Daily cap in tokens (input + output).
    #[arg(long)]
    pub daily_token_cap: Option<u64>,
    #[arg(long)]
    pub monthly_token_cap: Option<u64>,
    /// A model the key may use (`provider:model`, a bare name, or a prefix
    /// ending in `*`); repeat for more. Default: any.
    #[arg(long = "allow-model")]
    pub allowed_models: Vec<String>,
    /// The key expires this long after issue: 30m, 24h, 7d, 2w.
    #[arg(long)]
    pub expires_in: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only these event types (e.g. gateway.key_revoked); repeatable.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only events after this id.
    #[arg(long, default_value_t = 0)]
    pub after: u64,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file; missing is fine unless given explicitly.
    #[arg(long, short, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data-plane address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin address: /healthz, /metrics, /admin/* [default: 127.0.0.1:9090].
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Directory of plugin components (*.wasm) [default: ./plugins.d].
    #[arg(long)]
    pub plugins_dir: Option<PathBuf>,
    /// Directory of policy files (*.toml) [default: ./policies].
    #[arg(long)]
    pub policies_dir: Option<PathBuf>,
    /// Directory for redb files and the compiled-plugin cache [default: ./data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Data-plane worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// In-process TLS (rustls; HTTP/2 offered by ALPN).
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    pub listen: SocketAddr,
    /// Delay before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Delay between stream chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub chunk_delay_ms: u64,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Validate components and print what their describe() says.
    Check {
        /// Component files (.wasm).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Load a plugins directory as `serve` would and list the result.
    List {
        #[arg(long, default_value = "./plugins.d")]
        plugins_dir: PathBuf,
        #[arg(long, default_value = "./policies")]
        policies_dir: PathBuf,
    },
}
