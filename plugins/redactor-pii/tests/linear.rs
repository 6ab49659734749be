//! Pathological inputs: a megabyte of what each scanner keys on must be
//! handled in linear time. The bound is generous (debug builds) and on the
//! thread's CPU time, so a busy machine does not fail it; a quadratic
//! scanner would take minutes on these inputs. The tests take turns, so
//! they do not slow each other down either.

use redactor_pii::config::Config;
use redactor_pii::kind::KindSet;
use redactor_pii::request;
use redactor_pii::restore::{self, Escape};
use redactor_pii::scan;
use redactor_pii::stream::{Event, Restorer, Shape};
use redactor_pii::vault::Vault;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

const MB: usize = 1 << 20;
const BOUND: Duration = Duration::from_secs(2);

fn repeat(unit: &str) -> String {
    unit.repeat(MB / unit.len())
}

static TURNS: Mutex<()> = Mutex::new(());

fn cpu_time() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn timed(what: &str, f: impl FnOnce()) {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let start = cpu_time();
    f();
    let took = cpu_time() - start;
    assert!(took < BOUND, "{what}: {took:?}");
}

fn scans_in_time(unit: &str) {
    let text = repeat(unit);
    timed(unit, || {
        scan::find(&text, KindSet::all());
    });
}

#[test]
fn email_triggers() {
    for unit in ["@", "a@", "a.", "a@b.", "@a.b", "a.b@c-"] {
        scans_in_time(unit);
    }
}

#[test]
fn digit_triggers() {
    for unit in [
        "1",
        "1 ",
        "1-",
        "+1",
        "+1 ",
        "1111 ",
        "12 ",
        "(1) ",
        "1.",
        "1.1.1.1.",
        "4111 1111 1111 1112 ",
    ] {
        scans_in_time(unit);
    }
}

#[test]
fn address_and_iban_triggers() {
    for unit in [
        ":",
        "1:",
        "a:",
        "::",
        "fe80::",
        "DE89 ",
        "DE89",
        "AB12 CD34 ",
    ] {
        scans_in_time(unit);
    }
}

#[test]
fn token_triggers() {
    for unit in [
        "AKIA",
        "ASIA-",
        "AIza",
        "eyJ",
        "eyJ-",
        "eyJaaaaaaaa.",
        "eyJaaaaaaaa.eyJ",
        "sk-",
        "-sk-ant-",
        "ghp_",
        "github_pat_",
        "gh",
    ] {
        scans_in_time(unit);
    }
}

#[test]
fn private_key_triggers() {
    for unit in [
        "-----BEGIN",
        "-----BEGIN ",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n",
        "-----END PRIVATE KEY-----",
        "-",
    ] {
        scans_in_time(unit);
    }
    // Headers with one footer at the very end.
    let text = format!(
        "{}-----END PRIVATE KEY-----",
        repeat("-----BEGIN PRIVATE KEY-----\n")
    );
    timed("headers then a footer", || {
        scan::find(&text, KindSet::all());
    });
}

#[test]
fn whole_requests_with_many_matches() {
    let text = repeat("bob@example.com 4111 1111 1111 1111 +44 20 7946 0958 ");
    let body = json!({"model": "m", "messages": [{"role": "user", "content": text}]}).to_string();
    timed("pseudonymize a megabyte of matches", || {
        let r = request::redact(&Config::default(), &body).unwrap();
        assert!(r.state.is_some());
    });
}

fn vault() -> Vault {
    Vault::from_state(r#"{"[EMAIL_1]":"a@x.io","[CREDIT_CARD_12]":"4111 1111 1111 1111"}"#).unwrap()
}

#[test]
fn restoring_placeholder_lookalikes() {
    let v = vault();
    for unit in ["[", "[EMAIL_", "[EMAIL_1", "[EMAIL_1]", "[[CREDIT_CARD_1"] {
        let text = repeat(unit);
        timed(unit, || {
            restore::restore(&text, &v, Escape::Json);
        });
    }
}

#[test]
fn streaming_large_and_many_deltas() {
    let chunk = |t: &str| Event {
        event: None,
        data: json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]})
        .to_string(),
    };
    let big = chunk(&repeat("[EMAIL_"));
    timed("one megabyte delta", || {
        let mut r = Restorer::new(Shape::OpenAi, vault());
        r.push(big);
        r.finish();
    });
    // A thousand deltas that each keep a prefix held: the carry never
    // grows past the longest placeholder.
    let small: Vec<Event> = (0..1000).map(|_| chunk("x [CREDIT_CARD_1")).collect();
    timed("a thousand held prefixes", || {
        let mut r = Restorer::new(Shape::OpenAi, vault());
        for e in small {
            r.push(e);
        }
        r.finish();
    });
}
