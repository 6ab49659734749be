//! The LLM judge: asks a configured model, through Sluice's own data
//! plane, to score an answer. Its calls are ordinary requests (priced,
//! recorded, under the judge key's caps) marked with a secret header so
//! they are not evaluated in turn. Spend is capped per session and per UTC
//! day (the seed's $0.10 and $1.00); past a cap the judge is skipped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Job;
use crate::money::Usd;
use crate::pricing::Usage;
use crate::state::Gateway;

/// Bumped with the prompt: a new version starts a new score series.
pub const RUBRIC_VERSION: u32 = 1;
/// The header marking the judge's own calls.
pub const HEADER: &str = "x-sluice-judge";
/// Most of the question and answer shown to the judge, in characters.
const SHOWN: usize = 8_000;
/// Distinct sessions tracked per day; beyond, new sessions are judged
/// against the daily cap only.
const SESSIONS: usize = 100_000;

const PROMPT: &str = "You grade answers of an AI assistant. Reply with one JSON object and \
nothing else: {\"score\": <number from 0 to 1>, \"rationale\": \"<one sentence>\"}. \
1 means correct, complete and helpful; 0 means wrong, empty or a refusal.";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// The model to ask, as a client would name it (`openai:gpt-4o-mini`).
    pub model: String,
    /// Heuristic scores below this are escalated to the judge.
    #[serde(default = "escalate_below")]
    pub escalate_below: f64,
    /// USD, a decimal string.
    #[serde(default = "session_cap")]
    pub session_cap_usd: rust_decimal::Decimal,
    #[serde(default = "daily_cap")]
    pub daily_cap_usd: rust_decimal::Decimal,
    /// Environment variable holding the gateway key the judge calls with
    /// (needed when `auth.required`).
    pub api_key_env: Option<String>,
    #[serde(default = "timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "max_tokens")]
    pub max_tokens: u64,
}

fn escalate_below() -> f64 {
    0.7
}
fn session_cap() -> rust_decimal::Decimal {
    rust_decimal::Decimal::new(10, 2)
}
fn daily_cap() -> rust_decimal::Decimal {
    rust_decimal::Decimal::new(100, 2)
}
fn timeout_ms() -> u64 {
    30_000
}
fn max_tokens() -> u64 {
    256
}

impl JudgeConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.model.is_empty() {
            return Err("evaluation.judge.model must name a model".into());
        }
        if !(0.0..=1.0).contains(&self.escalate_below) {
            return Err("evaluation.judge.escalate_below must be within 0 and 1".into());
        }
        Ok(())
    }
}

/// A judge's score and what it cost.
pub struct Judged {
    pub score: f64,
    pub confidence: f64,
    pub cost: Usd,
}

#[derive(Default)]
struct Spend {
    day: u32,
    total: Usd,
    sessions: HashMap<String, Usd>,
}

pub struct Judge {
    pub config: Option<JudgeConfig>,
    /// A per-process secret: only the judge's own calls carry it.
    secret: String,
    spend: Mutex<Spend>,
}

impl Judge {
    pub fn new(config: Option<JudgeConfig>) -> Judge {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("the OS has a random source");
        Judge {
            config,
            secret: hex::encode(b),
            spend: Mutex::new(Spend::default()),
        }
    }

    pub fn is_own(&self, header: Option<&str>) -> bool {
        header.is_some_and(|h| {
            subtle::ConstantTimeEq::ct_eq(h.as_bytes(), self.secret.as_bytes()).into()
        })
    }

    /// Whether the caps leave room for another call of `session`.
    fn room(&self, c: &JudgeConfig, session: &str) -> bool {
        let mut s = self.spend.lock().expect("not poisoned");
        let today = crate::clock::day_of(crate::clock::now_ms());
        if s.day != today {
            *s = Spend {
                day: today,
                ..Default::default()
            };
        }
        s.total.0 < c.daily_cap_usd
            && s.sessions
                .get(session)
                .is_none_or(|u| u.0 < c.session_cap_usd)
    }

    fn charge(&self, session: &str, cost: Usd) {
        let mut s = self.spend.lock().expect("not poisoned");
        s.total += cost;
        if s.sessions.len() < SESSIONS || s.sessions.contains_key(session) {
            *s.sessions.entry(session.to_owned()).or_default() += cost;
        }
    }

    /// The judge's score, `None` when a cap leaves no room.
    pub async fn score(&self, gw: &Gateway, job: &Job) -> Result<Option<Judged>, String> {
        let Some(c) = &self.config else {
            return Ok(None);
        };
        if !self.room(c, &job.session) {
            return Ok(None);
        }
        let question = last_user_text(&job.facts.request.body);
        let answer = &job.facts.answer_text;
        let body = json!({
            "model": c.model,
            "max_tokens": c.max_tokens,
            "messages": [
                {"role": "system", "content": PROMPT},
                {"role": "user", "content": format!(
                    "Question:\n{}\n\nAnswer:\n{}",
                    cut(&question), cut(answer)
                )},
            ],
        });
        let key = c.api_key_env.as_deref().and_then(|v| std::env::var(v).ok());
        let (status, reply) = post(
            gw.config.server.listen,
            &body.to_string(),
            key.as_deref(),
            &self.secret,
            Duration::from_millis(c.timeout_ms),
        )
        .await?;
        if status != 200 {
            let why = reply["error"]["message"].as_str().unwrap_or("no message");
            return Err(format!("the judge model answered {status}: {why}"));
        }
        let usage = Usage {
            input_tokens: reply["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: reply["usage"]["completion_tokens"].as_u64().unwrap_or(0),
            ..Default::default()
        };
        let priced = crate::routing::normalize(
            &c.model,
            crate::api::Shape::OpenAi,
            &gw.config.routing.aliases,
            |p| gw.snapshot().providers.get(p).is_some(),
        )
        .id();
        let cost = gw
            .snapshot()
            .pricing
            .price(&priced)
            .map_or(Usd::ZERO, |p| p.cost(&usage));
        self.charge(&job.session, cost);
        let text = reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default();
        let score = parse_score(text)
            .ok_or_else(|| format!("the judge's reply holds no score: {}", cut_short(text)))?;
        Ok(Some(Judged {
            score,
            // A model's grade is a better signal than the heuristics.
            confidence: 0.8,
            cost,
        }))
    }
}

fn cut(s: &str) -> String {
    s.chars().take(SHOWN).collect()
}

fn cut_short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// The text of the last user message of a request body (either shape).
fn last_user_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let Some(last) = v["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    else {
        return String::new();
    };
    match &last["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The `score` of the first JSON object in `text`, within [0, 1].
pub fn parse_score(text: &str) -> Option<f64> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let v: Value = serde_json::from_str(text.get(start..=end)?).ok()?;
    let s = v["score"].as_f64()?;
    (s.is_finite() && (0.0..=1.0).contains(&s)).then_some(s)
}

/// One plain HTTP/1.0 request to the data plane on loopback.
async fn post(
    listen: std::net::SocketAddr,
    body: &str,
    key: Option<&str>,
    secret: &str,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let call = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach the data plane at {addr}: {e}"))?;
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        let head = format!(
            "POST /v1/chat/completions HTTP/1.0\r\nHost: {addr}\r\n{auth}{HEADER}: {secret}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.take(4 << 20)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or("the data plane sent no complete response")?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("the judge did not answer within {timeout:?}"))?
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn scores_from_replies() {
        assert_eq!(
            parse_score(r#"{"score": 0.85, "rationale": "ok"}"#),
            Some(0.85)
        );
        assert_eq!(parse_score("Sure! {\"score\":1}"), Some(1.0));
        assert_eq!(parse_score(r#"{"score": 7}"#), None);
        assert_eq!(parse_score("no json"), None);
    }

    #[test]
    fn caps_per_session_and_day() {
        let c = JudgeConfig {
            model: "m".into(),
            escalate_below: 0.7,
            session_cap_usd: rust_decimal::Decimal::new(10, 2),
            daily_cap_usd: rust_decimal::Decimal::new(20, 2),
            api_key_env: None,
            timeout_ms: 1,
            max_tokens: 1,
        };
        let j = Judge::new(Some(c.clone()));
        let cent = Usd(rust_decimal::Decimal::new(6, 2));
        assert!(j.room(&c, "a"));
        j.charge("a", cent);
        assert!(j.room(&c, "a"));
        j.charge("a", cent);
        assert!(!j.room(&c, "a"), "past $0.10 for session a");
        assert!(j.room(&c, "b"));
        j.charge("b", cent);
        j.charge("c", cent);
        assert!(!j.room(&c, "d"), "past $0.20 for the day");
        assert!(!j.is_own(Some("guess")) && j.is_own(Some(&j.secret.clone())));
    }
}
