//! Child processes of a benchmark run: spawning, readiness, teardown.
//!
//! Every child is owned by a [`Procs`] guard that kills and reaps it (and
//! its own children) when dropped, so an error anywhere in the runner (or
//! a panic) never leaves a proxy or mock listening behind. Output goes to
//! a log file per child rather than a pipe, so a chatty child can never
//! block on a full pipe nobody reads, and the tail of the log can be
//! quoted in errors.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::BenchError;

/// Lines of a child's log quoted when it fails.
const LOG_TAIL_LINES: usize = 20;
/// Pause between readiness attempts.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Bound on one readiness attempt (connect or health request).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// Asks the kernel for a free loopback port. The port is released before
/// the child binds it, so another process could take it in between; on a
/// benchmark machine that race is rare and shows up as a clear bind error.
///
/// The kernel may hand the same port out again once it is released, and
/// the stack asks for many before any child binds one: seen giving one
/// sluice the same port for its data plane and its admin listener (both
/// bound, with `SO_REUSEPORT`, and the load went to the admin side). So a
/// port is never returned twice by one bench run.
pub fn free_port() -> Result<u16, BenchError> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    // Refused ones stay bound until a new port is found.
    let mut refused = Vec::new();
    for _ in 0..1000 {
        let listener = TcpListener::bind("127.0.0.1:0")
            .map_err(|e| BenchError::new(format!("cannot bind 127.0.0.1:0: {e}")))?;
        let port = listener.local_addr()?.port();
        if given.insert(port) {
            return Ok(port);
        }
        refused.push(listener);
    }
    Err(BenchError::new(
        "the kernel keeps handing out ports this run already uses",
    ))
}

/// Returns a loopback address on a free port.
pub fn free_addr() -> Result<SocketAddr, BenchError> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// A directory removed (with its contents) when dropped, unless kept.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self, BenchError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path)
            .map_err(|e| BenchError::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(TempDir { path, keep: false })
    }

    /// Leaves the directory in place on drop (to read the logs after a
    /// failed run).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates (and returns) a subdirectory.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, BenchError> {
        let p = self.path.join(name);
        fs::create_dir_all(&p)
            .map_err(|e| BenchError::new(format!("cannot create {}: {e}", p.display())))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// One spawned child with its name and log file.
struct Managed {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Owns all children of a run; kills them in reverse start order on drop.
pub struct Procs {
    children: Vec<Managed>,
    log_dir: PathBuf,
}

/// Handle to a child inside [`Procs`].
#[derive(Debug, Clone, Copy)]
pub struct ProcId(usize);

impl Procs {
    pub fn new(log_dir: PathBuf) -> Self {
        Procs {
            children: Vec::new(),
            log_dir,
        }
    }

    /// Starts `program args…` with stdout and stderr sent to `<name>.log`.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
    ) -> Result<ProcId, BenchError> {
        self.spawn_with_env(name, program, args, &[])
    }

    /// [`Procs::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<ProcId, BenchError> {
        let log = self.log_dir.join(format!("{name}.log"));
        let out = File::create(&log)
            .map_err(|e| BenchError::new(format!("cannot create {}: {e}", log.display())))?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                BenchError::new(format!("{name}: cannot start {}: {e}", program.display()))
            })?;
        self.children.push(Managed {
            name: name.to_string(),
            child,
            log,
        });
        Ok(ProcId(self.children.len() - 1))
    }

    /// The child's process id.
    pub fn pid(&self, id: ProcId) -> u32 {
        self.children[id.0].child.id()
    }

    /// Waits until the child accepts TCP connections on `addr`.
    pub fn wait_tcp(
        &mut self,
        id: ProcId,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<(), BenchError> {
        self.wait_until(id, timeout, &format!("accepting TCP on {addr}"), || {
            TcpStream::connect_timeout(&addr, ATTEMPT_TIMEOUT).is_ok()
        })
    }

    /// Waits until `GET http://addr{path}` answers 200.
    pub fn wait_http_ok(
        &mut self,
        id: ProcId,
        addr: SocketAddr,
        path: &str,
        timeout: Duration,
    ) -> Result<(), BenchError> {
        self.wait_until(
            id,
            timeout,
            &format!("GET http://{addr}{path} -> 200"),
            || http_get_status(addr, path) == Some(200),
        )
    }

    /// Polls `ready` until it holds, the child exits, or `timeout` passes;
    /// the last two are errors quoting the child's log tail.
    fn wait_until(
        &mut self,
        id: ProcId,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return Ok(());
            }
            let m = &mut self.children[id.0];
            if let Some(status) = m.child.try_wait()? {
                return Err(BenchError::new(format!(
                    "{} exited ({status}) before {what}; last log lines ({}):\n{}",
                    m.name,
                    m.log.display(),
                    log_tail(&m.log)
                )));
            }
            if Instant::now() >= deadline {
                return Err(BenchError::new(format!(
                    "{} not ready after {:?} (waiting for {what}); last log lines ({}):\n{}",
                    m.name,
                    timeout,
                    m.log.display(),
                    log_tail(&m.log)
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Fails if any child has exited: a proxy that died mid-run would make
    /// its figures meaningless.
    pub fn check_alive(&mut self) -> Result<(), BenchError> {
        for m in &mut self.children {
            if let Some(status) = m.child.try_wait()? {
                return Err(BenchError::new(format!(
                    "{} exited unexpectedly ({status}); last log lines ({}):\n{}",
                    m.name,
                    m.log.display(),
                    log_tail(&m.log)
                )));
            }
        }
        Ok(())
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        // SIGKILL: nothing of a benchmark child's state is worth a graceful
        // shutdown, and it cannot be ignored or hang. Grandchildren (nginx's
        // workers) would outlive their master and keep its port, so they
        // are listed first and killed with it.
        for m in self.children.iter_mut().rev() {
            let descendants = crate::cpu::tree(m.child.id());
            let _ = m.child.kill();
            for pid in descendants.into_iter().skip(1) {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill has no memory-safety preconditions; a
                    // pid that is already gone yields ESRCH, ignored.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            let _ = m.child.wait();
        }
    }
}

/// The last lines of a log file, or a note that it could not be read.
fn log_tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            if tail.is_empty() {
                "  (empty)".to_string()
            } else {
                tail.iter().map(|l| format!("  {l}\n")).collect()
            }
        }
        Err(e) => format!("  (cannot read log: {e})"),
    }
}

/// One blocking `GET` with `Connection: close`; the status code, or `None`
/// on any failure (the caller retries until its deadline).
fn http_get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, ATTEMPT_TIMEOUT).ok()?;
    s.set_read_timeout(Some(ATTEMPT_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(ATTEMPT_TIMEOUT)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    // The status line fits in the first read of any sane server; 12 bytes
    // ("HTTP/1.1 200") is all we need.
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut head[n..]) {
            Ok(0) | Err(_) => return None,
            Ok(k) => n += k,
        }
    }
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split(' ').nth(1)?.get(..3)?.parse().ok()
}
