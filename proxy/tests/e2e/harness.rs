//! Boots the real `sluice` binary and the mock provider on ephemeral
//! loopback ports, each test with its own directories, and drives them over
//! HTTP as a client would.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Where `make plugins` leaves the components.
pub fn plugin(file: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/plugins")
        .join(file);
    assert!(
        p.is_file(),
        "{} is missing: run `make plugins` (make test does) first",
        p.display()
    );
    p
}

/// Every stack compiles the same components: they share one cache of
/// compiled artifacts (an 18 MB Python component takes seconds), unless the
/// test's own config sets `[plugins]`.
fn shared_cache(config: &str) -> String {
    if config.contains("[plugins]") {
        return String::new();
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-plugin-cache");
    format!("[plugins]\ncache_dir = \"{}\"\n", dir.display())
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str], log: PathBuf, env: &[(&str, &str)]) -> Proc {
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(SLUICE)
        .args(args)
        .env("SLUICE_LOG", "info")
        .envs(env.iter().copied())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sluice");
    Proc { child, log }
}

/// How to start a stack.
#[derive(Default)]
pub struct Options<'a> {
    /// Component files (from target/plugins) present at start.
    pub plugins: &'a [&'a str],
    /// A policy file's text, written as policies/test.toml.
    pub policy: Option<&'a str>,
    /// Extra sluice.toml text appended to the base config; `{mock_port}`
    /// in it is replaced by the mock provider's port.
    pub config: &'a str,
    /// Leave `routing.default_provider` unset, so unknown models are 404.
    pub no_default_provider: bool,
    /// Extra `serve` flags.
    pub args: &'a [&'a str],
    /// Mock provider flags.
    pub mock_args: &'a [&'a str],
    /// Extra environment for the proxy process.
    pub env: &'a [(&'a str, &'a str)],
    /// Keep the product default (a gateway key required). Off, tests of
    /// other features send no key.
    pub auth: bool,
    /// Files written into the policies dir before start (name, text).
    pub policy_files: &'a [(&'a str, &'a str)],
}

/// The repository's shipped price table.
pub fn shipped_pricing() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/pricing.toml"))
        .unwrap()
}

/// A running mock provider and proxy.
pub struct Stack {
    // Held for their `Drop` (the temp dir and the mock process) even when
    // no test reads them.
    #[allow(dead_code)]
    pub dir: tempfile::TempDir,
    #[allow(dead_code)]
    pub mock: Proc,
    pub proxy: Proc,
    pub base: String,
    pub admin: String,
    pub plugins_dir: PathBuf,
    pub policies_dir: PathBuf,
    #[allow(dead_code)]
    pub mock_port: u16,
    pub proxy_port: u16,
    /// How the proxy was started, to start it again.
    argv: Vec<String>,
    env: Vec<(String, String)>,
    starts: u32,
}

impl Stack {
    pub fn start(opts: Options<'_>) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let plugins_dir = dir.path().join("plugins");
        let policies_dir = dir.path().join("policies");
        std::fs::create_dir_all(&plugins_dir).unwrap();
        std::fs::create_dir_all(&policies_dir).unwrap();
        for p in opts.plugins {
            std::fs::copy(plugin(p), plugins_dir.join(p)).unwrap();
        }
        if let Some(policy) = opts.policy {
            std::fs::write(policies_dir.join("test.toml"), policy).unwrap();
        }
        for (name, text) in opts.policy_files {
            std::fs::write(policies_dir.join(name), text).unwrap();
        }
        let (mock, mock_port) = start_mock(dir.path(), opts.mock_args);
        let auth = if opts.auth || opts.config.contains("[auth]") {
            ""
        } else {
            "[auth]\nrequired = false\n"
        };
        let routing = if opts.no_default_provider {
            ""
        } else {
            "[routing]\ndefault_provider = \"mock\"\n"
        };
        let config = format!(
            r#"{routing}
{auth}
{cache}
[[providers]]
name = "mock"
kind = "mock"
base_url = "http://127.0.0.1:{mock_port}/v1"
models = ["gpt-4o-mini", "claude-sonnet-4-6"]

[[providers]]
name = "oai"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{mock_port}/v1"

[[providers]]
name = "ant"
kind = "anthropic"
base_url = "http://127.0.0.1:{mock_port}/v1"
{}
"#,
            opts.config.replace("{mock_port}", &mock_port.to_string()),
            cache = shared_cache(opts.config),
        );
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).unwrap();
        // A port can be taken between probing and binding: retry a few times.
        for attempt in 0.. {
            let proxy_port = free_port();
            let admin_port = free_port();
            let mut args = vec![
                "serve".to_string(),
                "--config".into(),
                config_path.display().to_string(),
                "--listen".into(),
                format!("127.0.0.1:{proxy_port}"),
                "--admin-listen".into(),
                format!("127.0.0.1:{admin_port}"),
                "--plugins-dir".into(),
                plugins_dir.display().to_string(),
                "--policies-dir".into(),
                policies_dir.display().to_string(),
                "--data-dir".into(),
                dir.path().join("data").display().to_string(),
                "--threads".into(),
                "2".into(),
            ];
            args.extend(opts.args.iter().map(|s| s.to_string()));
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut proxy = spawn(
                &argv,
                dir.path().join(format!("proxy{attempt}.log")),
                opts.env,
            );
            let admin = format!("http://127.0.0.1:{admin_port}");
            if wait_healthy(&mut proxy, &admin) && serves_data_plane(&opts, proxy_port) {
                let scheme = if opts.args.contains(&"--tls-cert") {
                    "https"
                } else {
                    "http"
                };
                return Stack {
                    base: format!("{scheme}://127.0.0.1:{proxy_port}"),
                    admin,
                    dir,
                    mock,
                    proxy,
                    plugins_dir,
                    policies_dir,
                    mock_port,
                    proxy_port,
                    argv: args,
                    env: opts
                        .env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    starts: 1,
                };
            }
            assert!(attempt < 3, "proxy did not start:\n{}", proxy.log_text());
        }
        unreachable!()
    }

    pub fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        request(&format!("{}{path}", self.base), Some(body), headers)
    }

    pub fn post_raw(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
        raw_request("POST", &format!("{}{path}", self.base), Some(body), headers)
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stop the proxy at once (SIGKILL: nothing flushed, nothing cleaned).
    pub fn kill(&mut self) {
        let _ = self.proxy.child.kill();
        let _ = self.proxy.child.wait();
    }

    /// Start the proxy again on the same ports, directories and data.
    pub fn restart(&mut self) {
        self.kill();
        let argv: Vec<&str> = self.argv.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.starts += 1;
        let log = self
            .dir
            .path()
            .join(format!("proxy-restart{}.log", self.starts));
        self.proxy = spawn(&argv, log, &env);
        assert!(
            wait_healthy(&mut self.proxy, &self.admin),
            "proxy did not restart:\n{}",
            self.proxy.log_text()
        );
    }

    /// Run `sluice <args> --data-dir <data>`; (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(SLUICE)
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .env("SLUICE_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Issue a key through the admin API; returns (id, secret).
    pub fn issue_key(&self, spec: &Value) -> (String, String) {
        let r = self.admin_post_json("/admin/keys", spec.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.text());
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The usage records committed so far.
    pub fn usage_records(&self) -> Vec<Value> {
        self.admin_get("/admin/usage?limit=100000").json()["records"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The admin API's bearer token, as the proxy created it.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/admin.token"))
            .expect("the proxy writes its admin token at start")
            .trim()
            .to_owned()
    }

    pub fn admin_get(&self, path: &str) -> Resp {
        let auth = format!("Bearer {}", self.admin_token());
        raw_request(
            "GET",
            &format!("{}{path}", self.admin),
            None,
            &[("authorization", &auth)],
        )
    }

    pub fn admin_post(&self, path: &str) -> Resp {
        self.admin_post_json(path, b"")
    }

    pub fn admin_post_json(&self, path: &str, body: &[u8]) -> Resp {
        let auth = format!("Bearer {}", self.admin_token());
        raw_request(
            "POST",
            &format!("{}{path}", self.admin),
            Some(body),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
        )
    }

    pub fn plugins(&self) -> Value {
        self.admin_get("/admin/plugins").json()
    }

    pub fn plugin_state(&self, name: &str) -> Option<Value> {
        self.plugins()["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
    }

    pub fn metrics(&self) -> String {
        self.admin_get("/metrics").text()
    }

    /// Copy a component into the plugins dir the way an operator would: write
    /// it aside, then rename over the target.
    pub fn install(&self, component: &str, as_name: &str) {
        let tmp = self.plugins_dir.join(format!(".{as_name}.tmp"));
        std::fs::copy(plugin(component), &tmp).unwrap();
        std::fs::rename(&tmp, self.plugins_dir.join(as_name)).unwrap();
    }
}

/// Value of a metric sample line, e.g. `sluice_plugin_reloads_total{result="error"}`.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn start_mock(dir: &Path, extra: &[&str]) -> (Proc, u16) {
    for attempt in 0..4 {
        let port = free_port();
        if let Some(mock) = mock_on(dir, port, extra, &format!("mock{attempt}.log")) {
            return (mock, port);
        }
    }
    panic!("mock provider did not start");
}

/// A mock provider on `port`, once it accepts connections.
fn mock_on(dir: &Path, port: u16, extra: &[&str], log: &str) -> Option<Proc> {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["mock-provider", "--listen", &listen, "--threads", "1"];
    args.extend_from_slice(extra);
    let mut mock = spawn(&args, dir.join(log), &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && mock.is_running() {
        if std::net::TcpStream::connect(&listen).is_ok() {
            return Some(mock);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn wait_healthy(proxy: &mut Proc, admin: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !proxy.is_running() {
            return false;
        }
        if raw_request("GET", &format!("{admin}/healthz"), None, &[]).status == 200 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Whether the data-plane port answers as this proxy (another process
/// could have taken the port between probing and binding).
fn serves_data_plane(opts: &Options<'_>, port: u16) -> bool {
    if opts.args.contains(&"--tls-cert") {
        return std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    }
    let r = raw_request(
        "GET",
        &format!("http://127.0.0.1:{port}/v1/models"),
        None,
        &[],
    );
    r.status == 200 && r.header("sluice-api-versions-supported").is_some()
}

/// Poll `f` until it holds, for at most `timeout`; returns whether it did.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `f` holds every time it is polled for `window`: for asserting
/// that something does *not* happen (a watcher that is off, a breaker that
/// stays closed).
pub fn stays(window: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        if !f() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as SSE events: (event name, data).
    pub fn events(&self) -> Vec<(Option<String>, String)> {
        parse_sse(&self.body)
    }
}

/// The text an OpenAI stream chunk adds (`choices[0].delta.content`).
pub fn openai_delta(data: &str) -> Option<String> {
    let v: Value = serde_json::from_str(data).ok()?;
    Some(v["choices"][0]["delta"]["content"].as_str()?.to_owned())
}

pub fn parse_sse(body: &[u8]) -> Vec<(Option<String>, String)> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut event = None;
        let mut data: Option<String> = None;
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                event = Some(v.to_owned());
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(match data {
                    Some(d) => format!("{d}\n{v}"),
                    None => v.to_owned(),
                });
            }
        }
        if let Some(d) = data {
            out.push((event, d));
        }
    }
    out
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn request(url: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    let mut h: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    raw_request("POST", url, bytes.as_deref(), &h)
}

/// One HTTP exchange; a transport failure reads as status 0.
pub fn raw_request(method: &str, url: &str, body: Option<&[u8]>, headers: &[(&str, &str)]) -> Resp {
    thread_local! {
        static AGENT: ureq::Agent = agent();
    }
    AGENT.with(|agent| send(agent, method, url, body, headers))
}

pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let result = match body {
        Some(b) => agent.run(req.body(b.to_vec()).unwrap()),
        None => agent.run(req.body(()).unwrap()),
    };
    match result {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let headers = header_pairs(r.headers());
            let mut body = Vec::new();
            let _ = r
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .reader()
                .read_to_end(&mut body);
            Resp {
                status,
                headers,
                body,
            }
        }
        Err(e) => Resp {
            status: 0,
            headers: Vec::new(),
            body: e.to_string().into_bytes(),
        },
    }
}

fn header_pairs(h: &ureq::http::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect()
}

/// How a streamed response went.
#[derive(Debug)]
pub struct Streamed {
    pub status: u16,
    /// Whether the body ended without a transport error.
    pub clean: bool,
    pub headers: Vec<(String, String)>,
}

impl Streamed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read a streamed response event by event, handing each to `f` as it
/// arrives.
pub fn stream_events(
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
    mut f: impl FnMut(&str, &str),
) -> Streamed {
    let agent = agent();
    let mut req = ureq::http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = match agent.run(req.body(serde_json::to_vec(body).unwrap()).unwrap()) {
        Ok(r) => r,
        Err(_) => {
            return Streamed {
                status: 0,
                clean: false,
                headers: Vec::new(),
            };
        }
    };
    let mut out = Streamed {
        status: resp.status().as_u16(),
        clean: true,
        headers: header_pairs(resp.headers()),
    };
    let reader = BufReader::new(resp.body_mut().as_reader());
    let mut event = String::new();
    for line in reader.lines() {
        let Ok(line) = line else {
            out.clean = false;
            return out;
        };
        if let Some(v) = line.strip_prefix("event: ") {
            event = v.to_owned();
        } else if let Some(v) = line.strip_prefix("data: ") {
            f(&event, v);
            event.clear();
        }
    }
    out
}

/// Paths of the two chat endpoints and the header Anthropic clients send.
/// Policy files for tests about what a router decides, not about the 5 ms
/// routing budget: on a loaded machine a router call (a cold instance, or
/// a Python guest descheduled mid-call) can pass 5 ms and be deferred,
/// and then the default answers.
pub const ROUTING_BUDGET_1S: &[(&str, &str)] = &[("routing.toml", "budget_ms = 1000\n")];

/// How long a test waits for the proxy to reach a state it can observe (a
/// reload applied, a line logged). `eventually` returns as soon as it
/// does, so a generous bound costs nothing when the test passes; 3 s was
/// seen to run out for a reload on a CI-like box with both cores busy.
pub const STATE_WAIT: Duration = Duration::from_secs(10);

pub const OPENAI: &str = "/v1/chat/completions";
pub const ANTHROPIC: &str = "/v1/messages";
pub const AV: (&str, &str) = ("anthropic-version", "2023-06-01");

/// The JSON body of `r`, which must have `status` and say it is JSON.
#[track_caller]
fn json_with_status(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    r.json()
}

/// An OpenAI envelope (WIRE.md §3) with this status, code and `type`;
/// returns the `error` object.
#[track_caller]
pub fn openai_error(r: &Resp, status: u16, code: &str, ty: &str) -> Value {
    let v = json_with_status(r, status);
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 1, "only `error` at the top: {v}");
    let e = &v["error"];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["message", "type", "param", "code"] {
        assert!(keys.contains(&k), "`{k}` in {v}");
    }
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["param"].is_null() || e["param"].is_string(), "{v}");
    assert_eq!(e["code"], code, "{v}");
    assert_eq!(e["type"], ty, "{v}");
    e.clone()
}

/// An Anthropic envelope (WIRE.md §7) with this status and `error.type`;
/// returns the whole body.
#[track_caller]
pub fn anthropic_error(r: &Resp, status: u16, ty: &str) -> Value {
    let v = json_with_status(r, status);
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], ty, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(v["request_id"].is_string(), "{v}");
    v
}

/// An HTTP/2 client connection over TLS (ALPN h2) to the proxy on `port`.
pub async fn h2_connect(
    port: u16,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// A self-signed certificate for `names`, written to a private temp dir.
pub struct TestCert {
    _dir: tempfile::TempDir,
    /// PEM file paths, as command-line arguments.
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

impl TestCert {
    pub fn new(names: &[&str]) -> TestCert {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let ck = rcgen::generate_simple_self_signed(names).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        TestCert {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            der: ck.cert.der().to_vec(),
            _dir: dir,
        }
    }

    /// A rustls client config that trusts this certificate only and offers
    /// `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> std::sync::Arc<rustls::ClientConfig> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        std::sync::Arc::new(config)
    }

    /// A rustls root store that trusts this certificate only.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.der.clone()))
            .unwrap();
        roots
    }
}
