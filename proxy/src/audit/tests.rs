//! Fixtures shared by the audit tests: one event of most types.

mod aggregate;
mod export;
mod modes;

use std::str::FromStr;

use rust_decimal::Decimal;

use crate::events::{ChainStep, Event, EventBody, LlmCall, SCHEMA, Tried};
use crate::money::Usd;

/// 2027-01-01T00:00:00.000Z.
pub const T0: u64 = 1_798_761_600_000;

pub fn ev(id: u64, body: EventBody) -> Event {
    Event {
        id,
        ts_ms: T0 + id * 1000,
        schema: SCHEMA,
        sensitivity: body.sensitivity(),
        body,
    }
}

pub fn usd(s: &str) -> Usd {
    Usd(Decimal::from_str(s).unwrap())
}

pub fn s(v: &str) -> String {
    v.to_owned()
}

pub fn key_issued() -> EventBody {
    EventBody::KeyIssued {
        key_id: s("gk_alpha"),
        user_id: Some(s("alice")),
        team_id: None,
        workspace: Some(s("ws-main")),
        customer_tier: Some(s("pro")),
        rotated_from: Some(s("gk_old")),
    }
}

pub fn key_rotated() -> EventBody {
    EventBody::KeyRotated {
        key_id: s("gk_alpha"),
        new_key_id: s("gk_beta"),
        grace_period_until: s("2027-01-02T00:00:00.000Z"),
    }
}

pub fn auth_failed() -> EventBody {
    EventBody::AuthFailed {
        reason: s("invalid"),
        inbound_shape: s("openai"),
        token_hash_prefix: Some(s("deadbeef")),
        gateway_key_id: None,
    }
}

pub fn quota_exceeded() -> EventBody {
    EventBody::QuotaExceeded {
        scope: s("user"),
        identity: s("alice"),
        window: s("day"),
        unit: s("usd"),
        current: s("1.25"),
        limit: s("1.00"),
        inbound_shape: s("anthropic"),
        gateway_key_id: Some(s("gk_alpha")),
    }
}

pub fn route_decided() -> EventBody {
    EventBody::RouteDecided {
        request_id: s("req-1"),
        gateway_key_id: Some(s("gk_alpha")),
        inbound_shape: s("openai"),
        client_model: s("auto"),
        chosen_model: Some(s("openai:gpt-4o")),
        decided_by: s("pattern"),
        reason: s("matched \"summarize, briefly\""),
        chain: vec![ChainStep {
            slot: s("pattern"),
            plugin: Some(s("pattern.wasm")),
            verdict: s("chose"),
            reason: s("prompt said: hello"),
            latency_us: 42,
        }],
        tried: vec![Tried {
            model: s("openai:gpt-4o"),
            outcome: s("200"),
        }],
        skipped: vec![],
        elapsed_us: 120,
        policy_version: s("v3"),
    }
}

pub fn call(
    req: &str,
    call: &str,
    user: Option<&str>,
    cost: &str,
    tin: u64,
    tout: u64,
    ms: u64,
) -> LlmCall {
    LlmCall {
        request_id: s(req),
        call_id: s(call),
        gateway_key_id: Some(s("gk_alpha")),
        user_id: user.map(s),
        team_id: Some(s("team-red")),
        inbound_shape: s("openai"),
        provider: s("openai"),
        model: s("gpt-4o"),
        status: 200,
        input_tokens: tin,
        output_tokens: tout,
        cached_input_tokens: 0,
        cost_usd: usd(cost),
        pricing_version: Some(s("2026-01-17")),
        latency_ms: ms,
        streamed: false,
        error_code: None,
    }
}

pub fn eval_failed() -> EventBody {
    EventBody::EvalFailed {
        eval_id: s("ev-1"),
        subject_id: s("req-1"),
        evaluator: s("llm_judge"),
        error_message: s("judge quoted: \"the answer, line 1\nline 2\""),
    }
}

pub fn request_completed() -> EventBody {
    EventBody::RequestCompleted {
        request_id: s("req-1"),
        gateway_key_id: Some(s("gk_alpha")),
        user_id: Some(s("alice")),
        team_id: None,
        inbound_shape: s("openai"),
        client_model: s("auto"),
        requested_model: Some(s("auto")),
        model: Some(s("openai:gpt-4o")),
        status: 200,
        streamed: true,
        latency_ms: 900,
        cost_usd: usd("0.0125"),
        input_tokens: 1500,
        output_tokens: 700,
        attempts: 1,
        error_code: None,
    }
}

pub fn policy_invalid() -> EventBody {
    EventBody::RoutingPolicyInvalid {
        error: s("line 3: unknown slot \"x\""),
        kept_version: s("v2"),
    }
}

/// Eleven events, ids 1..=11, one second apart.
pub fn sample() -> Vec<Event> {
    let bodies = vec![
        key_issued(),
        key_rotated(),
        auth_failed(),
        quota_exceeded(),
        route_decided(),
        EventBody::LlmCallCompleted(call(
            "req-1",
            "call-1",
            Some("alice"),
            "0.010",
            1000,
            500,
            800,
        )),
        EventBody::LlmCallCompleted(call(
            "req-2",
            "call-2",
            Some("bob"),
            "0.0025",
            500,
            200,
            300,
        )),
        EventBody::LlmCallFailed(call("req-2", "call-3", None, "0", 10, 0, 5000)),
        eval_failed(),
        request_completed(),
        policy_invalid(),
    ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, b)| ev(i as u64 + 1, b))
        .collect()
}
