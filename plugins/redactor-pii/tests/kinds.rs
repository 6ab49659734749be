//! Each kind through a whole request, masked, and near misses of each
//! left alone.

use redactor_pii::config::{Config, Mode};
use redactor_pii::kind::KindSet;
use redactor_pii::request;
use serde_json::{Value, json};

fn masked(text: &str) -> String {
    let config = Config {
        mode: Mode::Mask,
        kinds: KindSet::all(),
    };
    let body = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
    match request::redact(&config, &body.to_string()).unwrap().body {
        Some(b) => {
            let v: Value = serde_json::from_str(&b).unwrap();
            v["messages"][0]["content"].as_str().unwrap().to_owned()
        }
        None => text.to_owned(),
    }
}

#[test]
fn each_kind_is_masked() {
    let cases = [
        ("write bob.smith@example.org", "write [REDACTED:email]"),
        ("call +1 (555) 123-4567", "call [REDACTED:phone]"),
        ("call (555) 123-4567", "call [REDACTED:phone]"),
        ("card 4111-1111-1111-1111", "card [REDACTED:credit_card]"),
        ("iban GB82 WEST 1234 5698 7654 32", "iban [REDACTED:iban]"),
        ("at 203.0.113.9", "at [REDACTED:ip_address]"),
        ("at 2001:db8::1", "at [REDACTED:ip_address]"),
        ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_access_key]"),
        (
            "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnop",
            "t=[REDACTED:jwt]",
        ),
        ("sk-proj-0123456789abcdefghijABCD", "[REDACTED:openai_key]"),
        (
            "sk-ant-api03-0123456789abcdefghij",
            "[REDACTED:anthropic_key]",
        ),
        (
            "AIzaSyD-0123456789abcdefghijklmnopqrstu",
            "[REDACTED:gcp_api_key]",
        ),
        (
            "ghs_0123456789abcdefghijklmnopqrstuvwxyz",
            "[REDACTED:github_token]",
        ),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghij",
            "[REDACTED:github_token]",
        ),
        (
            "k:\n-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
            "k:\n[REDACTED:private_key]\n",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(masked(text), want, "{text}");
    }
}

#[test]
fn near_misses_are_kept() {
    for text in [
        "card 4111 1111 1111 1112",
        "number 1234567890123456",
        "iban DE88 3704 0044 0532 0130 00",
        "addr 999.1.1.1 and 1.2.3.4.5",
        "release v1.2.3, build 10.4.1",
        "key sk-abc and sk-ant-short",
        "time 2024-01-15 10:30:00",
        "xAKIAIOSFODNN7EXAMPLE",
        "no @ here, user@localhost",
        "std::vec::Vec and a::b",
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
    ] {
        assert_eq!(masked(text), text);
    }
}

#[test]
fn an_anthropic_key_is_not_an_openai_key() {
    assert_eq!(
        masked("sk-ant-api03-0123456789abcdefghij sk-0123456789abcdefghijkl"),
        "[REDACTED:anthropic_key] [REDACTED:openai_key]"
    );
}
