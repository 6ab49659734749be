//! The system under test: mock provider, bare pingora and three Sluices
//! (no plugin, one router plugin, and the OpenAI/Anthropic translator with
//! an Anthropic-kind provider for the streaming scenario).
//!
//! Everything listens on free 127.0.0.1 ports and lives in one temporary
//! directory (config, plugin dirs, data dirs, logs). Dropping the [`Stack`]
//! kills the children before the directory is removed.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::BenchError;
use crate::procs::{Procs, TempDir, free_addr};

/// Paths and knobs for starting the stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub sluice: PathBuf,
    pub bare: PathBuf,
    pub plugin: PathBuf,
    /// The translator component loaded by the third sluice instance.
    pub translator: PathBuf,
    pub bare_threads: usize,
    /// When false only the mock and bare pingora are started (for checking
    /// the harness before a `sluice` binary exists).
    pub with_sluice: bool,
    pub ready_timeout: Duration,
}

/// A running target the load generator can be pointed at.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    /// A gateway key this target requires (sent as a bearer token).
    pub api_key: Option<String>,
}

/// Running processes plus their scratch directory. Field order matters:
/// `procs` is dropped (children killed) before `tmp` is removed.
pub struct Stack {
    procs: Procs,
    tmp: TempDir,
    /// Measured by the latency and throughput scenarios.
    pub targets: Vec<Target>,
    /// The sluice instance with the translator (streaming scenario only);
    /// `None` without sluice.
    pub translator: Option<Target>,
}

/// The provider section Sluice needs to reach the mock.
fn sluice_config(mock: SocketAddr) -> String {
    format!("[[providers]]\nname = \"mock\"\nkind = \"mock\"\nbase_url = \"http://{mock}\"\n")
}

/// The baselines serve without gateway keys (the state before keys and
/// budgets existed, but for the usage record every call still leaves).
fn unkeyed(config: String) -> String {
    format!("[auth]\nrequired = false\n\n{config}")
}

/// A price for the benchmark's model, so a capped key can use it.
const PRICING: &str = "version = \"bench\"\n[models.\"mock:gpt-4o-mini\"]\ninput_per_mtok = \"0.15\"\noutput_per_mtok = \"0.60\"\n";

/// [`sluice_config`] plus the same mock seen as an Anthropic provider, so
/// an OpenAI client asking for `ant:MODEL` is translated.
fn sluice_translator_config(mock: SocketAddr) -> String {
    format!(
        "{}\n[[providers]]\nname = \"ant\"\nkind = \"anthropic\"\nbase_url = \"http://{mock}/v1\"\n",
        sluice_config(mock)
    )
}

/// Copies a plugin component into a fresh plugins dir `name`.
fn plugins_dir(tmp: &TempDir, name: &str, component: &Path) -> Result<PathBuf, BenchError> {
    let dir = tmp.subdir(name)?;
    let file_name = component
        .file_name()
        .ok_or_else(|| BenchError::new(format!("{} has no file name", component.display())))?;
    fs::copy(component, dir.join(file_name))?;
    Ok(dir)
}

fn require_file(what: &str, path: &Path) -> Result<(), BenchError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(BenchError::new(format!(
            "{what} not found at {} (build it first, or pass its path)",
            path.display()
        )))
    }
}

impl Stack {
    /// Starts every process and waits until each is ready.
    pub fn start(cfg: &StackConfig) -> Result<Stack, BenchError> {
        require_file("bare-pingora binary", &cfg.bare)?;
        if cfg.with_sluice {
            require_file("sluice binary", &cfg.sluice)?;
            require_file("router plugin", &cfg.plugin)?;
            require_file("translator plugin", &cfg.translator)?;
        } else {
            // The mock provider is a sluice subcommand too.
            require_file("sluice binary (serves the mock provider)", &cfg.sluice)?;
        }

        let mut tmp = TempDir::new("sluice-bench")?;
        let mut procs = Procs::new(tmp.subdir("logs")?);
        let mut targets = Vec::new();
        match launch(cfg, &tmp, &mut procs, &mut targets) {
            Ok(translator) => Ok(Stack {
                procs,
                tmp,
                targets,
                translator,
            }),
            Err(e) => {
                // The error quotes a log path: keep the directory so it can
                // be read. `procs` is dropped (children killed) on return.
                tmp.keep();
                Err(e)
            }
        }
    }

    /// Fails if any process of the stack has died.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        self.procs.check_alive()
    }

    /// Where the children's logs and data live (removed on drop unless
    /// [`Stack::keep_dir`] was called).
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Keeps the scratch directory, logs included, after the stack stops.
    pub fn keep_dir(&mut self) {
        self.tmp.keep();
    }
}

/// Starts each process in turn, waiting for it to be ready, and records
/// the targets to measure; returns the translator instance, if started.
fn launch(
    cfg: &StackConfig,
    tmp: &TempDir,
    procs: &mut Procs,
    targets: &mut Vec<Target>,
) -> Result<Option<Target>, BenchError> {
    let mock = free_addr()?;
    let id = procs.spawn(
        "mock-provider",
        &cfg.sluice,
        &["mock-provider".into(), "--listen".into(), mock.to_string()],
    )?;
    procs.wait_tcp(id, mock, cfg.ready_timeout)?;
    targets.push(Target {
        name: "direct (mock)".into(),
        addr: mock,
        api_key: None,
    });

    let bare = free_addr()?;
    let id = procs.spawn(
        "bare-pingora",
        &cfg.bare,
        &[
            "--listen".into(),
            bare.to_string(),
            "--upstream".into(),
            mock.to_string(),
            "--threads".into(),
            cfg.bare_threads.to_string(),
        ],
    )?;
    procs.wait_tcp(id, bare, cfg.ready_timeout)?;
    targets.push(Target {
        name: "bare pingora".into(),
        addr: bare,
        api_key: None,
    });

    if !cfg.with_sluice {
        return Ok(None);
    }
    let config = tmp.path().join("sluice.toml");
    fs::write(&config, unkeyed(sluice_config(mock)))?;
    let keyed_config = tmp.path().join("sluice-keyed.toml");
    fs::write(&keyed_config, sluice_config(mock))?;
    let translator_config = tmp.path().join("sluice-translator.toml");
    fs::write(&translator_config, unkeyed(sluice_translator_config(mock)))?;
    let policies = tmp.subdir("policies-empty")?;
    let priced = tmp.subdir("policies-priced")?;
    fs::write(priced.join("pricing.toml"), PRICING)?;
    // A key with caps far above what the run spends: every request is
    // authenticated, reserved, settled and recorded, none refused.
    let keyed_data = tmp.subdir("data-sluice-keyed")?;
    let key = issue_key(&cfg.sluice, &keyed_data)?;
    let no_plugins = tmp.subdir("plugins-empty")?;
    let one_router = plugins_dir(tmp, "plugins-router", &cfg.plugin)?;
    let translator = plugins_dir(tmp, "plugins-translator", &cfg.translator)?;

    let mut started = Vec::new();
    for (name, label, config, plugins, policies, key) in [
        (
            "sluice",
            "sluice (no plugin)",
            &config,
            no_plugins.clone(),
            &policies,
            None,
        ),
        (
            "sluice-router",
            "sluice + 1 router",
            &config,
            one_router,
            &policies,
            None,
        ),
        (
            "sluice-keyed",
            "sluice + key + budget",
            &keyed_config,
            no_plugins,
            &priced,
            Some(key.clone()),
        ),
        (
            "sluice-translator",
            "sluice + translator",
            &translator_config,
            translator,
            &policies,
            None,
        ),
    ] {
        let listen = free_addr()?;
        let admin = free_addr()?;
        let data = tmp.subdir(&format!("data-{name}"))?;
        let args = [
            "serve".to_string(),
            "--config".into(),
            config.display().to_string(),
            "--listen".into(),
            listen.to_string(),
            "--admin-listen".into(),
            admin.to_string(),
            "--plugins-dir".into(),
            plugins.display().to_string(),
            "--policies-dir".into(),
            policies.display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        let id = procs.spawn(name, &cfg.sluice, &args)?;
        procs.wait_tcp(id, listen, cfg.ready_timeout)?;
        procs.wait_http_ok(id, admin, "/healthz", cfg.ready_timeout)?;
        started.push(Target {
            name: label.into(),
            addr: listen,
            api_key: key,
        });
    }
    let translator = started.pop();
    targets.extend(started);
    Ok(translator)
}

/// Issue a gateway key with caps no run reaches, before the proxy holds
/// the data dir; returns its secret.
fn issue_key(sluice: &Path, data: &Path) -> Result<String, BenchError> {
    let out = std::process::Command::new(sluice)
        .args([
            "keys",
            "issue",
            "--user",
            "bench",
            "--daily-cap-usd",
            "1000000",
            "--format",
            "json",
        ])
        .arg("--data-dir")
        .arg(data)
        .output()?;
    if !out.status.success() {
        return Err(BenchError::new(format!(
            "sluice keys issue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| BenchError::new(format!("sluice keys issue printed no JSON: {e}")))?;
    v["secret"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::new("sluice keys issue printed no secret"))
}

#[cfg(test)]
mod test {
    #[test]
    fn config_points_the_mock_provider_at_the_mock() {
        let cfg = super::sluice_config("127.0.0.1:4321".parse().unwrap());
        let parsed: Vec<&str> = cfg.lines().collect();
        assert_eq!(
            parsed,
            [
                "[[providers]]",
                "name = \"mock\"",
                "kind = \"mock\"",
                "base_url = \"http://127.0.0.1:4321\""
            ]
        );
    }

    #[test]
    fn translator_config_adds_an_anthropic_view_of_the_mock() {
        let cfg = super::sluice_translator_config("127.0.0.1:4321".parse().unwrap());
        assert!(cfg.starts_with(&super::sluice_config("127.0.0.1:4321".parse().unwrap())));
        assert!(cfg.ends_with(
            "[[providers]]\nname = \"ant\"\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:4321/v1\"\n"
        ));
    }
}
