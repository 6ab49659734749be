//! The official OpenAI and Anthropic Python SDKs as real clients: the checks
//! in proxy/tests/sdk/check_sdks.py, run against a live stack with the
//! translator loaded, same-shape (`mock:`) and crossed (`ant:` / `oai:`).

use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// Fewest checks the script must pass: chat, stream, tools and streamed
/// tools, for two SDKs on two routes each.
const MIN_PASSES: usize = 16;

#[test]
fn official_python_sdks_work_against_the_proxy() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let python = repo.join("target/pyenv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `make sdk-env` (make test does) to create the venv with the \
         pinned openai and anthropic SDKs",
        python.display()
    );
    let script = repo.join("proxy/tests/sdk/check_sdks.py");

    let stack = Stack::start(Options {
        plugins: &["translator_openai_anthropic.wasm"],
        // `nope:x` must be a 404, not a trip to the default provider.
        no_default_provider: true,
        ..Options::default()
    });
    let out = Command::new(&python)
        .arg(&script)
        .env("SLUICE_BASE_URL", &stack.base)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run check_sdks.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let passes = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    let report = format!(
        "check_sdks.py exited with {}\n--- stdout\n{stdout}--- stderr\n{stderr}--- proxy log\n{}",
        out.status,
        stack.proxy.log_text()
    );
    assert!(
        out.status.success(),
        "{report}\n(an ImportError means the venv lacks the pinned SDKs: run `make sdk-env`)"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert_eq!(summary, format!("{passes} passed, 0 failed"), "{report}");
    assert!(
        passes >= MIN_PASSES,
        "only {passes} checks passed, want at least {MIN_PASSES}\n{report}"
    );
    eprint!("{stdout}");
}
