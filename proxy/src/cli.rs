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
