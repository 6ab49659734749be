//! `policies/routing.toml`: what the routing chain's native slots decide
//! with. Hot-reloaded; a file that does not parse or names what is not
//! configured is refused as a whole and the last good policy keeps serving.
//!
//! ```toml
//! budget_ms = 5                  # the whole chain's budget
//! transparent = true             # slot 1: the client's model wins
//! managed_aliases = ["auto"]     # model names Sluice chooses for
//! default_model = "mock:gpt-4o-mini"   # slot 7 for a managed alias
//! max_attempts = 3               # candidates tried per request
//!
//! [[pin]]                        # slot 2, first match wins
//! team = "interns"
//! model = "mock:gpt-4o-mini"     # what they get
//! allow = ["mock:gpt-4o"]        # what they may still ask for by name
//!
//! [[rule]]                       # slot 3, first match wins
//! name = "research-saves"
//! when = { team = "research", team_budget_remaining_lt = "1.00" }
//! route = ["mock:gpt-4o-mini"]
//!
//! [models."mock:gpt-4o"]         # the registry
//! equivalents = ["oai:gpt-4o"]   # the same model elsewhere: healthiest, fastest first
//! fallbacks = ["ant:claude-sonnet-4-6"]
//!
//! [delegation]                   # slot 5: x-sluice-delegation-tier
//! small = "mock:gpt-4o-mini"
//!
//! [pattern]                      # slot 4
//! enabled = true
//! cost_weight = 0.05
//! min_confidence = 0.05
//! min_sample_size = 5
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::Candidate;
use super::patterns::PatternConfig;
use crate::keys::{Amount, GatewayKey};
use crate::money::Usd;

pub const FILE: &str = "routing.toml";

/// Beyond this a chain is not a routing decision any more.
const MAX_BUDGET_MS: u64 = 1_000;
const MAX_ATTEMPTS: u32 = 10;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    budget_ms: Option<u64>,
    transparent: Option<bool>,
    managed_aliases: Option<Vec<String>>,
    default_model: Option<String>,
    max_attempts: Option<u32>,
    #[serde(default)]
    pin: Vec<RawPin>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    models: HashMap<String, RawEntry>,
    #[serde(default)]
    delegation: HashMap<String, String>,
    pattern: Option<RawPattern>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawWho {
    key: Option<String>,
    user: Option<String>,
    team: Option<String>,
    workspace: Option<String>,
    tier: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPin {
    #[serde(flatten)]
    who: RawWho,
    model: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    transparent: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    when: RawWhen,
    route: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(flatten)]
    who: RawWho,
    model: Option<String>,
    #[serde(default)]
    header: HashMap<String, String>,
    min_estimated_tokens: Option<u64>,
    max_estimated_tokens: Option<u64>,
    has_tools: Option<bool>,
    stream: Option<bool>,
    cost_today_exceeds_usd: Option<Amount>,
    user_cost_today_exceeds_usd: Option<Amount>,
    team_cost_today_exceeds_usd: Option<Amount>,
    team_cost_month_exceeds_usd: Option<Amount>,
    team_budget_remaining_lt: Option<Amount>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default)]
    equivalents: Vec<String>,
    #[serde(default)]
    fallbacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPattern {
    enabled: Option<bool>,
    cost_weight: Option<f64>,
    min_confidence: Option<f64>,
    min_sample_size: Option<u32>,
    min_eval_confidence: Option<f64>,
    neighbors: Option<usize>,
    min_similarity: Option<f64>,
}

/// Who a pin or rule is about; every field set must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Who {
    pub key: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub workspace: Option<String>,
    pub tier: Option<String>,
}

impl Who {
    pub fn matches(&self, key: Option<&GatewayKey>) -> bool {
        let field = |want: &Option<String>, have: Option<&str>| match want {
            None => true,
            Some(w) => have == Some(w.as_str()),
        };
        field(&self.key, key.map(|k| k.id.as_str()))
            && field(&self.user, key.and_then(|k| k.user_id.as_deref()))
            && field(&self.team, key.and_then(|k| k.team_id.as_deref()))
            && field(&self.workspace, key.and_then(|k| k.workspace.as_deref()))
            && field(
                &self.tier,
                key.and_then(|k| k.customer_tier.map(|t| t.as_str())),
            )
    }
}

/// Slot 2: what a caller is pinned to, and what it may still ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    pub who: Who,
    pub model: Option<Candidate>,
    /// Model patterns (`provider:model`, a bare name, `prefix*`) slot 1
    /// still takes literally for this caller.
    pub allow: Vec<String>,
    /// Whether slot 1 takes the caller's model at all (outside `allow`).
    pub transparent: bool,
}

/// Slot 3.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub when: When,
    pub route: Vec<Candidate>,
}

/// A rule's predicates; all that are set must hold. Spend predicates on a
/// caller without that scope (no team, no key) are false.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct When {
    pub who: Who,
    pub model: Option<String>,
    /// Lower-case header name and the value it must have (`*`: present).
    pub headers: Vec<(String, String)>,
    pub min_estimated_tokens: Option<u64>,
    pub max_estimated_tokens: Option<u64>,
    pub has_tools: Option<bool>,
    pub stream: Option<bool>,
    pub cost_today_exceeds_usd: Option<Usd>,
    pub user_cost_today_exceeds_usd: Option<Usd>,
    pub team_cost_today_exceeds_usd: Option<Usd>,
    pub team_cost_month_exceeds_usd: Option<Usd>,
    pub team_budget_remaining_lt: Option<Usd>,
}

/// A model's place in the registry: where else it is served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub equivalents: Vec<Candidate>,
    pub fallbacks: Vec<Candidate>,
}

#[derive(Debug, Clone)]
pub struct RoutingPolicy {
    /// Short sha256 of the file (`default` without one), stamped on
    /// every decision.
    pub version: String,
    pub budget: Duration,
    pub transparent: bool,
    pub managed_aliases: Vec<String>,
    pub default_model: Option<Candidate>,
    pub max_attempts: u32,
    pub pins: Vec<Pin>,
    pub rules: Vec<Rule>,
    pub models: HashMap<String, Entry>,
    pub delegation: HashMap<String, Candidate>,
    pub pattern: PatternConfig,
}

impl Default for RoutingPolicy {
    fn default() -> Self {
        Self {
            version: "default".into(),
            budget: Duration::from_millis(5),
            transparent: true,
            managed_aliases: vec!["auto".into()],
            default_model: None,
            max_attempts: 3,
            pins: Vec::new(),
            rules: Vec::new(),
            models: HashMap::new(),
            delegation: HashMap::new(),
            pattern: PatternConfig::default(),
        }
    }
}

impl RoutingPolicy {
    /// Read `dir/routing.toml`; a missing file is the default policy.
    pub fn load(dir: &Path, is_provider: &dyn Fn(&str) -> bool) -> Result<RoutingPolicy, String> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            // A parse error can quote a whole line of the file: keep it short
            // for the log and the audit event.
            Ok(text) => Self::parse(&text, is_provider).map_err(|e| {
                let e: String = e.chars().take(1000).collect();
                format!("{FILE}: {e}")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str, is_provider: &dyn Fn(&str) -> bool) -> Result<RoutingPolicy, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let d = RoutingPolicy::default();
        let target = |what: &str, s: &str| -> Result<Candidate, String> {
            let (provider, model) = s
                .split_once(':')
                .filter(|(p, m)| !p.is_empty() && !m.is_empty())
                .ok_or_else(|| format!("{what}: {s:?} must be provider:model"))?;
            if !is_provider(provider) {
                return Err(format!(
                    "{what}: {s:?} names provider {provider:?}, which is not configured"
                ));
            }
            crate::api::validate_model(model)
                .map_err(|e| format!("{what}: {s:?}: {}", e.message))?;
            Ok(Candidate {
                provider: provider.to_owned(),
                model: model.to_owned(),
            })
        };
        let targets = |what: &str, list: &[String]| -> Result<Vec<Candidate>, String> {
            list.iter().map(|s| target(what, s)).collect()
        };
        let budget_ms = file.budget_ms.unwrap_or(5);
        if !(1..=MAX_BUDGET_MS).contains(&budget_ms) {
            return Err(format!("budget_ms must be 1..={MAX_BUDGET_MS}"));
        }
        let max_attempts = file.max_attempts.unwrap_or(d.max_attempts);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err(format!("max_attempts must be 1..={MAX_ATTEMPTS}"));
        }
        let mut pins = Vec::new();
        for (i, p) in file.pin.into_iter().enumerate() {
            let what = format!("pin {}", i + 1);
            let who = who(&what, p.who)?;
            if who == Who::default() {
                return Err(format!(
                    "{what}: names no key, user, team, workspace or tier"
                ));
            }
            let model = p.model.map(|m| target(&what, &m)).transpose()?;
            pins.push(Pin {
                transparent: p.transparent.unwrap_or(model.is_none()),
                who,
                model,
                allow: p.allow,
            });
        }
        let mut rules = Vec::new();
        for r in file.rule {
            let what = format!("rule {:?}", r.name);
            if r.route.is_empty() {
                return Err(format!("{what}: route names no model"));
            }
            rules.push(Rule {
                when: when(&what, r.when)?,
                route: targets(&what, &r.route)?,
                name: r.name,
            });
        }
        let mut models = HashMap::new();
        for (id, e) in file.models {
            let what = format!("models.{id:?}");
            let me = target(&what, &id)?;
            let entry = Entry {
                equivalents: targets(&what, &e.equivalents)?,
                fallbacks: targets(&what, &e.fallbacks)?,
            };
            if entry.equivalents.contains(&me) || entry.fallbacks.contains(&me) {
                return Err(format!("{what} lists itself"));
            }
            models.insert(me.id(), entry);
        }
        let mut delegation = HashMap::new();
        for (tier, m) in file.delegation {
            let t = target(&format!("delegation.{tier}"), &m)?;
            delegation.insert(tier, t);
        }
        let pattern = match file.pattern {
            None => d.pattern.clone(),
            Some(p) => pattern(p)?,
        };
        Ok(RoutingPolicy {
            version: short_sha256(text.as_bytes()),
            budget: Duration::from_millis(budget_ms),
            transparent: file.transparent.unwrap_or(true),
            managed_aliases: file.managed_aliases.unwrap_or(d.managed_aliases),
            default_model: file
                .default_model
                .map(|m| target("default_model", &m))
                .transpose()?,
            max_attempts,
            pins,
            rules,
            models,
            delegation,
            pattern,
        })
    }

    /// The first pin that applies to this caller.
    pub fn pin_for(&self, key: Option<&GatewayKey>) -> Option<&Pin> {
        self.pins.iter().find(|p| p.who.matches(key))
    }
}

/// The policy version: the first 12 hex digits of the file's sha256.
fn short_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..6])
}

fn who(what: &str, raw: RawWho) -> Result<Who, String> {
    if let Some(t) = &raw.tier
        && !["trial", "paid", "internal"].contains(&t.as_str())
    {
        return Err(format!("{what}: tier {t:?} is not trial, paid or internal"));
    }
    Ok(Who {
        key: raw.key,
        user: raw.user,
        team: raw.team,
        workspace: raw.workspace,
        tier: raw.tier,
    })
}

/// An amount a spend predicate compares with; zero is allowed (any spend).
fn threshold(what: &str, field: &str, a: Option<Amount>) -> Result<Option<Usd>, String> {
    let Some(a) = a else { return Ok(None) };
    let text = match &a {
        Amount::Text(s) => s.trim().to_owned(),
        Amount::Number(n) => n.to_string(),
    };
    let zero = text.bytes().all(|b| b == b'0' || b == b'.') && text.bytes().any(|b| b == b'0');
    if zero {
        return Ok(Some(Usd::ZERO));
    }
    a.usd()
        .map(Some)
        .map_err(|e| format!("{what}: {field}: {e}"))
}

fn when(what: &str, raw: RawWhen) -> Result<When, String> {
    let mut headers: Vec<(String, String)> = raw
        .header
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    headers.sort();
    if let (Some(lo), Some(hi)) = (raw.min_estimated_tokens, raw.max_estimated_tokens)
        && lo > hi
    {
        return Err(format!(
            "{what}: min_estimated_tokens is above max_estimated_tokens"
        ));
    }
    Ok(When {
        who: who(what, raw.who)?,
        model: raw.model,
        headers,
        min_estimated_tokens: raw.min_estimated_tokens,
        max_estimated_tokens: raw.max_estimated_tokens,
        has_tools: raw.has_tools,
        stream: raw.stream,
        cost_today_exceeds_usd: threshold(
            what,
            "cost_today_exceeds_usd",
            raw.cost_today_exceeds_usd,
        )?,
        user_cost_today_exceeds_usd: threshold(
            what,
            "user_cost_today_exceeds_usd",
            raw.user_cost_today_exceeds_usd,
        )?,
        team_cost_today_exceeds_usd: threshold(
            what,
            "team_cost_today_exceeds_usd",
            raw.team_cost_today_exceeds_usd,
        )?,
        team_cost_month_exceeds_usd: threshold(
            what,
            "team_cost_month_exceeds_usd",
            raw.team_cost_month_exceeds_usd,
        )?,
        team_budget_remaining_lt: threshold(
            what,
            "team_budget_remaining_lt",
            raw.team_budget_remaining_lt,
        )?,
    })
}

fn pattern(p: RawPattern) -> Result<PatternConfig, String> {
    let d = PatternConfig::default();
    let unit = |field: &str, v: Option<f64>, default: f64| -> Result<f64, String> {
        match v {
            None => Ok(default),
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
            Some(_) => Err(format!("pattern.{field} must be within 0..=1")),
        }
    };
    let min_sample_size = p.min_sample_size.unwrap_or(d.min_sample_size);
    if min_sample_size == 0 {
        return Err("pattern.min_sample_size must be at least 1".into());
    }
    let neighbors = p.neighbors.unwrap_or(d.neighbors);
    if !(1..=256).contains(&neighbors) {
        return Err("pattern.neighbors must be 1..=256".into());
    }
    Ok(PatternConfig {
        enabled: p.enabled.unwrap_or(d.enabled),
        cost_weight: unit("cost_weight", p.cost_weight, d.cost_weight)?,
        min_confidence: unit("min_confidence", p.min_confidence, d.min_confidence)?,
        min_sample_size,
        min_eval_confidence: unit(
            "min_eval_confidence",
            p.min_eval_confidence,
            d.min_eval_confidence,
        )?,
        neighbors,
        min_similarity: unit("min_similarity", p.min_similarity, d.min_similarity)?,
        ..d
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse(text: &str) -> Result<RoutingPolicy, String> {
        RoutingPolicy::parse(text, &|p| ["mock", "oai", "ant"].contains(&p))
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("policy.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```toml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let p = parse(&doc).unwrap();
        assert_eq!(p.budget, Duration::from_millis(5));
        assert_eq!(p.pins.len(), 1);
        assert!(
            !p.pins[0].transparent,
            "a pinned model turns transparency off"
        );
        assert_eq!(
            p.rules[0].when.team_budget_remaining_lt,
            Some(Usd::parse_positive("1").unwrap())
        );
        assert_eq!(
            p.models["mock:gpt-4o"].fallbacks[0].id(),
            "ant:claude-sonnet-4-6"
        );
        assert_eq!(p.delegation["small"].id(), "mock:gpt-4o-mini");
        assert_eq!(p.version.len(), 12);
    }

    #[test]
    fn refuses_what_cannot_be_served() {
        for (text, why) in [
            (
                "[[rule]]\nname='x'\nroute=['nowhere:m']\n",
                "not configured",
            ),
            ("[[rule]]\nname='x'\nroute=[]\n", "names no model"),
            ("[[rule]]\nname='x'\nroute=['gpt']\n", "provider:model"),
            ("[[pin]]\nmodel='mock:m'\n", "names no key"),
            ("[[pin]]\ntier='gold'\nmodel='mock:m'\n", "is not trial"),
            ("budget_ms=0\n", "budget_ms"),
            ("bogus=1\n", "unknown field"),
            ("[models.'mock:a']\nfallbacks=['mock:a']\n", "lists itself"),
            ("[pattern]\ncost_weight=2.0\n", "cost_weight"),
            (
                "[[rule]]\nname='x'\nwhen={team_budget_remaining_lt='-1'}\nroute=['mock:a']\n",
                "greater than zero",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn zero_is_a_valid_spend_threshold() {
        let p = parse("[[rule]]\nname='x'\nwhen={cost_today_exceeds_usd='0'}\nroute=['mock:a']\n")
            .unwrap();
        assert_eq!(p.rules[0].when.cost_today_exceeds_usd, Some(Usd::ZERO));
    }
}
