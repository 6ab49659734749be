//! Starting the commands: configuration, listeners, services.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;

use crate::admin::Admin;
use crate::cli::{MockArgs, PluginsCommand, ServeArgs};
use crate::config::{Config, LogFormat};
use crate::http::app::App;
use crate::mock::MockProvider;
use crate::plugins::{PluginEngine, Policies, describe_file, load_plugins};
use crate::server::Sluice;
use crate::state::Gateway;
use crate::state::watcher::Reloader;

type LogLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Switches the log format once the configuration is known (tracing starts
/// before it is read).
static LOG_LAYER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<LogLayer, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

/// `SLUICE_LOG_FORMAT`: `Ok(None)` when unset, `Err` with the bad value.
fn env_log_format() -> Result<Option<LogFormat>, String> {
    match std::env::var("SLUICE_LOG_FORMAT") {
        Err(_) => Ok(None),
        Ok(v) => LogFormat::parse(&v).map(Some).ok_or(v),
    }
}

fn log_layer(format: LogFormat) -> LogLayer {
    use tracing_subscriber::Layer;
    match format {
        // Colours only on a terminal: a log file or journald gets plain text.
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
        // Event fields at the top level (`message`, `request_id`, …), the
        // current span (when one is entered) under `span`.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    }
}

pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // pingora_proxy logs at ERROR each client that closes or stalls a
    // connection before a request head: anyone could flood the log with
    // idle sockets. Sluice answers every request itself (request_filter),
    // so nothing else of pingora_proxy's is worth the default log.
    // pingora_core::server says when a graceful shutdown starts and ends.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,pingora_core=warn,pingora_core::server=info,pingora_proxy=off",
        )
    });
    let env = env_log_format();
    let format = env.clone().ok().flatten().unwrap_or_default();
    let (layer, handle) = tracing_subscriber::reload::Layer::new(log_layer(format));
    if tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init()
        .is_ok()
    {
        let _ = LOG_LAYER.set(handle);
    }
    if let Err(v) = env {
        tracing::warn!("SLUICE_LOG_FORMAT={v:?} is neither \"text\" nor \"json\": logging text");
    }
}

/// Log in `[log] format` from now on, unless a valid `SLUICE_LOG_FORMAT`
/// chose.
/// Called once, before any span exists: the JSON format reads the fields
/// its own layer recorded on the current span.
fn apply_log_format(config: LogFormat) {
    if matches!(env_log_format(), Ok(Some(_))) || config == LogFormat::default() {
        return;
    }
    if let Some(handle) = LOG_LAYER.get() {
        let _ = handle.reload(log_layer(config));
    }
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("sluice: {msg}");
    ExitCode::FAILURE
}

/// The configuration `serve` runs with: file, then flags.
fn serve_config(args: &ServeArgs) -> Result<Config, String> {
    let (path, required) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("sluice.toml"), false),
    };
    let mut c = Config::load(&path, required).map_err(|e| e.to_string())?;
    if let Some(v) = args.listen {
        c.server.listen = v;
    }
    if let Some(v) = args.admin_listen {
        c.server.admin_listen = v;
    }
    if let Some(v) = &args.plugins_dir {
        c.plugins.dir = v.clone();
    }
    if let Some(v) = &args.policies_dir {
        c.plugins.policies_dir = v.clone();
    }
    if let Some(v) = &args.data_dir {
        c.data.dir = v.clone();
    }
    if let Some(v) = args.threads {
        c.server.threads = v;
    }
    if args.tls.tls_cert.is_some() {
        c.server.tls_cert = args.tls.tls_cert.clone();
        c.server.tls_key = args.tls.tls_key.clone();
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

fn threads(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }
}

fn pingora_server(threads: usize, grace: u64, data_dir: Option<&Path>) -> Server {
    let mut conf = ServerConf {
        threads,
        // pingora waits the whole grace period on SIGTERM (its default is
        // five minutes, sized for graceful upgrades): bound it.
        grace_period_seconds: Some(grace),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    if let Some(dir) = data_dir {
        conf.pid_file = dir.join("sluice.pid").display().to_string();
        conf.upgrade_sock = dir.join("sluice-upgrade.sock").display().to_string();
    }
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    server
}

pub fn serve(args: ServeArgs) -> ExitCode {
    let config = match serve_config(&args) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    apply_log_format(config.log.format);
    for addr in [config.server.listen, config.server.admin_listen] {
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "listening on a non-loopback address: anyone who can reach it can use it");
        }
    }
    // pingora retries a busy address forever, with the admin listener up
    // and healthy meanwhile: find out now and say so.
    for addr in [config.server.listen, config.server.admin_listen] {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            return fail(format!("cannot listen on {addr}: {e}"));
        }
    }
    if let Err(e) = crate::fsutil::create_private_dir(&config.data.dir) {
        return fail(format!(
            "cannot create data dir {}: {e}",
            config.data.dir.display()
        ));
    }
    for dir in [&config.plugins.dir, &config.plugins.policies_dir] {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return fail(format!("cannot create {}: {e}", dir.display()));
        }
    }
    let engine = match PluginEngine::with_instances(
        Some(
            config
                .plugins
                .cache_dir
                .clone()
                .unwrap_or_else(|| config.data.dir.join("plugin-cache")),
        ),
        config.plugins.max_instances,
    ) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let admin_token = match crate::admin::token::load_or_create(&config) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let gateway = match Gateway::new(config.clone(), engine, admin_token) {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    if !config.auth.required {
        tracing::warn!("auth.required = false: requests without a gateway key are served, unkeyed");
    }
    if let Err(e) =
        crate::admin::token::record_address(&config.data.dir, config.server.admin_listen)
    {
        return fail(format!(
            "cannot record the admin address in {}: {e}",
            config.data.dir.display()
        ));
    }
    let mut server = pingora_server(
        threads(config.server.threads),
        config.server.shutdown_grace_seconds,
        Some(&config.data.dir),
    );

    let mut proxy =
        pingora_proxy::http_proxy_service(&server.configuration, Sluice::new(gateway.clone()));
    let listen = config.server.listen.to_string();
    match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => {
            if let Err(e) = crate::tls::add_tls_listener(&mut proxy, &listen, cert, key) {
                return fail(e);
            }
        }
        _ => proxy.add_tcp(&listen),
    }
    let mut admin = Service::new(
        "sluice admin".into(),
        App(Admin {
            gateway: gateway.clone(),
        }),
    );
    admin.add_tcp(&config.server.admin_listen.to_string());
    let reloader = background_service(
        "sluice reloader",
        Reloader {
            gateway: gateway.clone(),
            dirs: vec![
                config.plugins.dir.clone(),
                config.plugins.policies_dir.clone(),
            ],
            debounce: Duration::from_millis(config.plugins.debounce_ms),
            watch: config.plugins.watch,
        },
    );
    let evaluator = background_service(
        "sluice evaluator",
        crate::evaluation::Evaluator {
            gateway: gateway.clone(),
        },
    );
    let retention = background_service(
        "sluice retention",
        crate::admin::traces::RetentionSchedule {
            gateway: gateway.clone(),
        },
    );
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(reloader);
    server.add_service(evaluator);
    server.add_service(retention);
    tracing::info!(
        listen = %config.server.listen,
        admin = %config.server.admin_listen,
        plugins = %config.plugins.dir.display(),
        "sluice serving"
    );
    server.run_forever()
}

pub fn mock_provider(args: MockArgs) -> ExitCode {
    let mut server = pingora_server(threads(args.threads.unwrap_or(0)), 0, None);
    let mock = MockProvider::new(
        Duration::from_millis(args.latency_ms),
        Duration::from_millis(args.chunk_delay_ms),
    );
    let mut service = Service::new("sluice mock provider".into(), App(mock));
    match (&args.tls.tls_cert, &args.tls.tls_key) {
        (Some(cert), Some(key)) => {
            if let Err(e) =
                crate::tls::add_tls_listener(&mut service, &args.listen.to_string(), cert, key)
            {
                return fail(e);
            }
        }
        _ => service.add_tcp(&args.listen.to_string()),
    }
    server.add_service(service);
    tracing::info!(listen = %args.listen, "mock provider serving");
    server.run_forever()
}

pub fn plugins(cmd: PluginsCommand) -> ExitCode {
    let engine = match PluginEngine::new(None) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    match cmd {
        PluginsCommand::Check { files } => {
            let mut failed = false;
            for file in files {
                match describe_file(&engine, &file) {
                    Ok(meta) => {
                        let i = &meta.info;
                        println!(
                            "{}: ok\n  kind: {}\n  name: {}\n  version: {}\n  description: {}\n  default order: {}\n  capabilities: {}\n  sha256: {}",
                            file.display(),
                            i.kind.as_str(),
                            i.name,
                            i.version,
                            i.description,
                            i.default_order,
                            if i.capabilities.is_empty() {
                                "-".into()
                            } else {
                                i.capabilities.join(", ")
                            },
                            meta.sha256
                        );
                    }
                    Err(e) => {
                        failed = true;
                        println!("{}: invalid\n  error: {e}", file.display());
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        PluginsCommand::List {
            plugins_dir,
            policies_dir,
        } => {
            let policies = match Policies::load(&policies_dir) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let set = load_plugins(&engine, &plugins_dir, &policies, None);
            for p in &set.all {
                println!(
                    "{:<24} {:<10} {:<10} order {:<5} {}",
                    p.name(),
                    p.meta.info.version,
                    p.kind().as_str(),
                    p.order(),
                    p.meta.file.display()
                );
            }
            for f in set.errors() {
                println!("{}: {}", f.file, f.error.as_deref().unwrap_or_default());
            }
            if set.errors().next().is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
