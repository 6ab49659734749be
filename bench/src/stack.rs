//! The processes under test, started together and torn down together.
//!
//! Non-streamed targets share one upstream: a static nginx (or, without
//! nginx, the sluice mock provider). In front of it: the reference nginx
//! proxy, bare pingora, and one `sluice serve` per [`Variant`]. The
//! streamed targets (direct, nginx, bare pingora, sluice nothing on and
//! everything on) sit in front of the sluice mock provider, which streams
//! one SSE chunk per word.
//!
//! Everything listens on free 127.0.0.1 ports and lives in one temporary
//! directory (configs, nginx prefixes, plugin and data dirs, logs).
//! Dropping the [`Stack`] kills the children (and theirs) before the
//! directory is removed.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::BenchError;
use crate::nginx::{self, Instance, ProxyServer};
use crate::procs::{ProcId, Procs, TempDir, free_addr};
use crate::variants::{Component, UPSTREAM_KEY_ENV, Variant};

/// Paths and knobs for starting the stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub sluice: PathBuf,
    pub bare: PathBuf,
    /// `None`: no nginx rows, and the mock is the upstream of everything.
    pub nginx: Option<PathBuf>,
    pub router: PathBuf,
    pub translator: PathBuf,
    pub redactor: PathBuf,
    pub evaluator: PathBuf,
    /// Worker threads (pingora, sluice) and worker processes (nginx proxy).
    pub threads: usize,
    pub ready_timeout: Duration,
}

/// What a target is, for finding baselines among the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Direct,
    Nginx,
    Bare,
    Sluice(Variant),
}

/// A running target the load generator can be pointed at.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub role: Role,
    pub addr: SocketAddr,
    /// A gateway key this target requires (sent as a bearer token).
    pub api_key: Option<String>,
    /// The process whose CPU time and memory are measured.
    pub pid: u32,
    /// Its memory is that of its worker processes (nginx's master only
    /// forks and waits).
    pub memory_in_workers: bool,
    /// Sluice's admin listener, for `/metrics`.
    pub admin: Option<SocketAddr>,
}

impl Target {
    /// The model this target's client asks for.
    pub fn model(&self) -> &'static str {
        match self.role {
            Role::Sluice(v) => v.model(),
            _ => Variant::NothingOn.model(),
        }
    }

    /// The plugins that must have run on each of its requests.
    pub fn components(&self) -> &'static [Component] {
        match self.role {
            Role::Sluice(v) => v.components(),
            _ => &[],
        }
    }
}

/// Running processes plus their scratch directory. Field order matters:
/// `procs` is dropped (children killed) before `tmp` is removed.
pub struct Stack {
    procs: Procs,
    tmp: TempDir,
    /// The upstream of the non-streamed targets, for the report.
    pub upstream: String,
    /// `nginx/1.22.1`, if nginx runs.
    pub nginx_version: Option<String>,
    /// Measured by the latency, throughput, CPU and memory scenario.
    pub matrix: Vec<Target>,
    /// Measured by the streaming scenario.
    pub streams: Vec<Target>,
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
        require_file("sluice binary", &cfg.sluice)?;
        require_file("bare-pingora binary", &cfg.bare)?;
        require_file("router plugin", &cfg.router)?;
        require_file("translator plugin", &cfg.translator)?;
        require_file("redactor plugin", &cfg.redactor)?;
        require_file("evaluator plugin", &cfg.evaluator)?;

        let mut tmp = TempDir::new("sluice-bench")?;
        let procs = Procs::new(tmp.subdir("logs")?);
        let mut l = Launcher {
            cfg,
            tmp: &tmp,
            procs,
        };
        match l.launch() {
            Ok((upstream, nginx_version, matrix, streams)) => Ok(Stack {
                procs: l.procs,
                tmp,
                upstream,
                nginx_version,
                matrix,
                streams,
            }),
            Err(e) => {
                // The error quotes a log path: keep the directory so it can
                // be read. `l.procs` is dropped (children killed) on return.
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

type Launched = (String, Option<String>, Vec<Target>, Vec<Target>);

struct Launcher<'a> {
    cfg: &'a StackConfig,
    tmp: &'a TempDir,
    procs: Procs,
}

impl Launcher<'_> {
    /// Starts each process in turn, waiting for it to be ready.
    fn launch(&mut self) -> Result<Launched, BenchError> {
        let cfg = self.cfg;
        let mock = free_addr()?;
        let id = self.procs.spawn(
            "mock-provider",
            &cfg.sluice,
            &["mock-provider".into(), "--listen".into(), mock.to_string()],
        )?;
        self.procs.wait_tcp(id, mock, cfg.ready_timeout)?;
        let mock_pid = self.procs.pid(id);

        let mut matrix = Vec::new();
        let mut streams = vec![plain("direct (mock)", Role::Direct, mock, mock_pid, false)];
        let (upstream, upstream_desc, nginx_version) = match &cfg.nginx {
            Some(bin) => {
                let version = nginx::version(bin).unwrap_or_else(|| "nginx".into());
                let up = free_addr()?;
                let inst = self.nginx_instance("nginx-upstream", 1)?;
                let conf = nginx::static_upstream_conf(&inst, up);
                let (pid, _) = self.start_nginx("nginx-upstream", bin, &inst, &conf, up)?;
                matrix.push(plain(
                    "direct (nginx upstream)",
                    Role::Direct,
                    up,
                    pid,
                    true,
                ));

                let front = free_addr()?;
                let front_stream = free_addr()?;
                let inst = self.nginx_instance("nginx-proxy", cfg.threads)?;
                let servers = [
                    ProxyServer {
                        listen: front,
                        upstream: up,
                        streaming: false,
                    },
                    ProxyServer {
                        listen: front_stream,
                        upstream: mock,
                        streaming: true,
                    },
                ];
                let conf = nginx::proxy_conf(&inst, &servers);
                let (pid, id) = self.start_nginx("nginx-proxy", bin, &inst, &conf, front)?;
                self.procs.wait_tcp(id, front_stream, cfg.ready_timeout)?;
                matrix.push(plain("nginx proxy", Role::Nginx, front, pid, true));
                streams.push(plain("nginx proxy", Role::Nginx, front_stream, pid, true));
                let desc = format!("{version} serving fixed JSON with `return 200` (1 worker)");
                (up, desc, Some(version))
            }
            None => {
                let direct = plain(
                    "direct (mock upstream)",
                    Role::Direct,
                    mock,
                    mock_pid,
                    false,
                );
                matrix.push(direct);
                (mock, "sluice mock-provider (nginx not found)".into(), None)
            }
        };

        let (addr, pid) = self.start_bare("bare-pingora", upstream)?;
        matrix.push(plain("bare pingora", Role::Bare, addr, pid, false));
        let (addr, pid) = self.start_bare("bare-pingora-stream", mock)?;
        streams.push(plain("bare pingora", Role::Bare, addr, pid, false));

        for v in Variant::ALL {
            matrix.push(self.start_sluice(v, v.slug(), upstream)?);
        }
        for v in [Variant::NothingOn, Variant::Everything] {
            let mut t = self.start_sluice(v, &format!("stream-{}", v.slug()), mock)?;
            if v == Variant::Everything {
                t.name = "sluice everything (translator+redactor)".into();
            }
            streams.push(t);
        }
        Ok((upstream_desc, nginx_version, matrix, streams))
    }

    fn nginx_instance(&self, name: &str, workers: usize) -> Result<Instance, BenchError> {
        Ok(Instance {
            dir: self.tmp.subdir(name)?,
            workers,
            as_root: nginx::running_as_root(),
        })
    }

    fn start_nginx(
        &mut self,
        name: &str,
        bin: &Path,
        inst: &Instance,
        conf: &str,
        addr: SocketAddr,
    ) -> Result<(u32, ProcId), BenchError> {
        let path = inst.dir.join("nginx.conf");
        fs::write(&path, conf)?;
        let id = self.procs.spawn(name, bin, &nginx::args(inst, &path))?;
        self.procs.wait_tcp(id, addr, self.cfg.ready_timeout)?;
        Ok((self.procs.pid(id), id))
    }

    fn start_bare(
        &mut self,
        name: &str,
        upstream: SocketAddr,
    ) -> Result<(SocketAddr, u32), BenchError> {
        let addr = free_addr()?;
        let id = self.procs.spawn(
            name,
            &self.cfg.bare,
            &[
                "--listen".into(),
                addr.to_string(),
                "--upstream".into(),
                upstream.to_string(),
                "--threads".into(),
                self.cfg.threads.to_string(),
            ],
        )?;
        self.procs.wait_tcp(id, addr, self.cfg.ready_timeout)?;
        Ok((addr, self.procs.pid(id)))
    }

    fn component_path(&self, c: Component) -> &Path {
        match c {
            Component::Router => &self.cfg.router,
            Component::Translator => &self.cfg.translator,
            Component::Redactor => &self.cfg.redactor,
            Component::Evaluator => &self.cfg.evaluator,
        }
    }

    /// One `sluice serve` with `v`'s config, policies and plugins.
    fn start_sluice(
        &mut self,
        v: Variant,
        slug: &str,
        upstream: SocketAddr,
    ) -> Result<Target, BenchError> {
        let tmp = self.tmp;
        let config = tmp.path().join(format!("sluice-{slug}.toml"));
        fs::write(
            &config,
            v.config(upstream, &tmp.path().join("plugin-cache")),
        )?;
        let policies = tmp.subdir(&format!("policies-{slug}"))?;
        for (name, text) in v.policies() {
            fs::write(policies.join(name), text)?;
        }
        let plugins = tmp.subdir(&format!("plugins-{slug}"))?;
        for c in v.components() {
            let src = self.component_path(*c);
            let file = src
                .file_name()
                .ok_or_else(|| BenchError::new(format!("{} has no file name", src.display())))?;
            fs::copy(src, plugins.join(file))?;
        }
        let data = tmp.subdir(&format!("data-{slug}"))?;
        // A key with caps far above what the run spends: every request is
        // authenticated, reserved, settled and recorded, none refused.
        let api_key = if v.keyed() {
            Some(issue_key(&self.cfg.sluice, &data)?)
        } else {
            None
        };
        let listen = free_addr()?;
        let admin = free_addr()?;
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
            "--threads".into(),
            self.cfg.threads.to_string(),
        ];
        let name = format!("sluice-{slug}");
        let env = [(UPSTREAM_KEY_ENV, "sk-bench-upstream-credential")];
        let id = self
            .procs
            .spawn_with_env(&name, &self.cfg.sluice, &args, &env)?;
        self.procs.wait_tcp(id, listen, self.cfg.ready_timeout)?;
        self.procs
            .wait_http_ok(id, admin, "/healthz", self.cfg.ready_timeout)?;
        Ok(Target {
            name: v.label().into(),
            role: Role::Sluice(v),
            addr: listen,
            api_key,
            pid: self.procs.pid(id),
            memory_in_workers: false,
            admin: Some(admin),
        })
    }
}

fn plain(name: &str, role: Role, addr: SocketAddr, pid: u32, workers: bool) -> Target {
    Target {
        name: name.into(),
        role,
        addr,
        api_key: None,
        pid,
        memory_in_workers: workers,
        admin: None,
    }
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
