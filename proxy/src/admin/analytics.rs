//! "Who spent what, on which model, and was it any good": sums over the
//! usage records (the evidence the ledger is built from) and the
//! evaluation events, in a time window. Every answer names the pricing
//! version in effect.
//!
//! | route | answers |
//! |---|---|
//! | `GET /analytics/cost?group_by=model\|gateway_key\|user\|team` | cost, calls, tokens per group |
//! | `GET /analytics/by_key` | per key, split by inbound shape |
//! | `GET /analytics/by_user` | per user |
//! | `GET /analytics/by_team` | per team, with its users by cost |
//! | `GET /analytics/quality` | evaluation scores per model (latest eval of a request wins) |
//! | `GET /analytics/savings` | what routing saved, both sides priced under the current table |
//!
//! All take `since` and `until` (RFC 3339, a date, or Unix ms; `since <=
//! ts < until`). Groups are sorted by cost, largest first; records with no
//! value for the grouping field land in one `null` group.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::events::index::{self, Query};
use crate::events::{EventBody, UsageRecord, store};
use crate::money::Usd;
use crate::pricing::Usage;
use crate::state::Gateway;

/// A window as given in the query.
pub struct Window {
    pub since_ms: Option<u64>,
    pub until_ms: Option<u64>,
}

impl Window {
    pub fn parse(q: Option<&str>) -> Result<Window, String> {
        let at = |name| {
            crate::http::app::query_param(q, name)
                .map(|v| crate::clock::parse_instant(&v).map_err(|e| format!("{name}: {e}")))
                .transpose()
        };
        Ok(Window {
            since_ms: at("since")?,
            until_ms: at("until")?,
        })
    }

    fn holds(&self, ts: u64) -> bool {
        self.since_ms.is_none_or(|s| ts >= s) && self.until_ms.is_none_or(|u| ts < u)
    }

    fn json(&self) -> Value {
        json!({
            "since": self.since_ms.map(crate::clock::rfc3339),
            "until": self.until_ms.map(crate::clock::rfc3339),
        })
    }
}

/// Sums of one group.
#[derive(Default, Clone)]
struct Totals {
    cost: Usd,
    /// Provider calls (refusals before any call are not).
    calls: u64,
    records: u64,
    input_tokens: u64,
    output_tokens: u64,
    users: BTreeSet<String>,
}

impl Totals {
    fn add(&mut self, r: &UsageRecord) {
        self.cost += r.cost_usd;
        self.calls += u64::from(r.provider.is_some());
        self.records += 1;
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        if let Some(u) = &r.user_id {
            self.users.insert(u.clone());
        }
    }

    fn json(&self) -> Value {
        json!({
            "cost_usd": self.cost,
            "calls": self.calls,
            "records": self.records,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "tokens": self.input_tokens + self.output_tokens,
        })
    }
}

fn usage_in(gw: &Gateway, w: &Window) -> Result<Vec<UsageRecord>, String> {
    let mut out = Vec::new();
    store::each_usage(gw.events.db(), |r| {
        if w.holds(r.ts_ms) {
            out.push(r);
        }
    })?;
    Ok(out)
}

/// Groups sorted by cost (largest first), then by name; `null` last on ties.
fn sorted(groups: &BTreeMap<Option<String>, Totals>) -> Vec<(&Option<String>, &Totals)> {
    let mut v: Vec<_> = groups.iter().collect();
    v.sort_by(|a, b| b.1.cost.cmp(&a.1.cost).then_with(|| a.0.cmp(b.0)));
    v
}

fn group_field(r: &UsageRecord, by: &str) -> Option<String> {
    match by {
        "model" => r.model.clone(),
        "gateway_key" => r.gateway_key_id.clone(),
        "user" => r.user_id.clone(),
        "team" => r.team_id.clone(),
        _ => None,
    }
}

fn grouped(records: &[UsageRecord], by: &str) -> BTreeMap<Option<String>, Totals> {
    grouped_by(records, |r| group_field(r, by))
}

fn total(records: &[UsageRecord]) -> Totals {
    let mut t = Totals::default();
    records.iter().for_each(|r| t.add(r));
    t
}

pub fn cost(gw: &Gateway, w: &Window, group_by: &str) -> Result<Value, String> {
    if !matches!(group_by, "model" | "gateway_key" | "user" | "team") {
        return Err(format!(
            "group_by must be model, gateway_key, user or team, not {group_by:?}"
        ));
    }
    let records = usage_in(gw, w)?;
    let groups = grouped(&records, group_by);
    let rows: Vec<Value> = sorted(&groups)
        .into_iter()
        .map(|(k, t)| {
            let mut v = t.json();
            v["group"] = json!(k);
            v
        })
        .collect();
    Ok(json!({
        "group_by": group_by,
        "window": w.json(),
        "total": total(&records).json(),
        "groups": rows,
    }))
}

pub fn by_key(gw: &Gateway, w: &Window) -> Result<Value, String> {
    let records = usage_in(gw, w)?;
    let groups = grouped(&records, "gateway_key");
    let keys: Vec<Value> = sorted(&groups)
        .into_iter()
        .map(|(k, t)| {
            let mine: Vec<UsageRecord> = records
                .iter()
                .filter(|r| &r.gateway_key_id == k)
                .cloned()
                .collect();
            let shapes: serde_json::Map<String, Value> =
                grouped_by(&mine, |r| Some(r.inbound_shape.clone()))
                    .iter()
                    .map(|(s, t)| (s.clone().unwrap_or_default(), t.json()))
                    .collect();
            let mut v = t.json();
            v["gateway_key_id"] = json!(k);
            v["by_inbound_shape"] = Value::Object(shapes);
            v
        })
        .collect();
    Ok(json!({"window": w.json(), "total": total(&records).json(), "keys": keys}))
}

fn grouped_by(
    records: &[UsageRecord],
    f: impl Fn(&UsageRecord) -> Option<String>,
) -> BTreeMap<Option<String>, Totals> {
    let mut groups: BTreeMap<Option<String>, Totals> = BTreeMap::new();
    for r in records {
        groups.entry(f(r)).or_default().add(r);
    }
    groups
}

pub fn by_user(gw: &Gateway, w: &Window) -> Result<Value, String> {
    let records = usage_in(gw, w)?;
    let groups = grouped(&records, "user");
    let users: Vec<Value> = sorted(&groups)
        .into_iter()
        .map(|(k, t)| {
            let mut v = t.json();
            v["user_id"] = json!(k);
            v
        })
        .collect();
    Ok(json!({"window": w.json(), "total": total(&records).json(), "users": users}))
}

pub fn by_team(gw: &Gateway, w: &Window) -> Result<Value, String> {
    let records = usage_in(gw, w)?;
    let groups = grouped(&records, "team");
    let teams: Vec<Value> = sorted(&groups)
        .into_iter()
        .map(|(team, t)| {
            let mine: Vec<UsageRecord> = records
                .iter()
                .filter(|r| &r.team_id == team)
                .cloned()
                .collect();
            let users = grouped(&mine, "user");
            let by_user: Vec<Value> = sorted(&users)
                .into_iter()
                .map(|(u, t)| {
                    let mut v = t.json();
                    v["user_id"] = json!(u);
                    v
                })
                .collect();
            let mut v = t.json();
            v["team_id"] = json!(team);
            v["users"] = json!(t.users.len());
            v["by_user"] = json!(by_user);
            v
        })
        .collect();
    Ok(json!({"window": w.json(), "total": total(&records).json(), "teams": teams}))
}

/// Scores per model from `eval.completed`; a request evaluated more than
/// once counts with its latest evaluation per evaluator.
pub fn quality(gw: &Gateway, w: &Window) -> Result<Value, String> {
    let q = Query {
        since_ms: w.since_ms,
        until_ms: w.until_ms,
        types: vec!["eval.completed".into()],
        ..Default::default()
    };
    // (subject, evaluator) → (model, score, rubric); later events replace.
    let mut latest: HashMap<(String, String), (String, f64, String)> = HashMap::new();
    for ev in index::scan(gw.events.db(), &q)? {
        if let EventBody::EvalCompleted {
            subject_id,
            evaluator,
            model,
            score,
            rubric_id,
            rubric_version,
            ..
        } = ev?.body
        {
            latest.insert(
                (subject_id, evaluator),
                (model, score, format!("{rubric_id}@{rubric_version}")),
            );
        }
    }
    #[derive(Default)]
    struct Scores {
        n: u64,
        sum: f64,
        min: f64,
        max: f64,
        rubrics: BTreeSet<String>,
    }
    let mut by_model: BTreeMap<String, Scores> = BTreeMap::new();
    let mut all = Scores::default();
    for (model, score, rubric) in latest.into_values() {
        for s in [by_model.entry(model).or_default(), &mut all] {
            if s.n == 0 {
                (s.min, s.max) = (score, score);
            }
            s.n += 1;
            s.sum += score;
            s.min = s.min.min(score);
            s.max = s.max.max(score);
            s.rubrics.insert(rubric.clone());
        }
    }
    let render = |s: &Scores| {
        json!({
            "evaluations": s.n,
            "mean_score": (s.n > 0).then(|| s.sum / s.n as f64),
            "min_score": (s.n > 0).then_some(s.min),
            "max_score": (s.n > 0).then_some(s.max),
            "rubrics": s.rubrics,
        })
    };
    let models: Vec<Value> = by_model
        .iter()
        .map(|(m, s)| {
            let mut v = render(s);
            v["model"] = json!(m);
            v
        })
        .collect();
    Ok(json!({"window": w.json(), "overall": render(&all), "models": models}))
}

/// For requests routed away from the model the client asked for: what the
/// asked-for model would have cost for the same tokens, against what was
/// paid, both under the current price table (so a price change moves both
/// sides alike).
pub fn savings(gw: &Gateway, w: &Window) -> Result<Value, String> {
    let snapshot = gw.snapshot();
    let pricing = &snapshot.pricing;
    let q = Query {
        since_ms: w.since_ms,
        until_ms: w.until_ms,
        types: vec!["request.completed".into()],
        ..Default::default()
    };
    let (mut requested, mut actual) = (Usd::ZERO, Usd::ZERO);
    let (mut rerouted, mut unpriced) = (0u64, 0u64);
    let mut pairs: BTreeMap<(String, String), (u64, Usd, Usd)> = BTreeMap::new();
    for ev in index::scan(gw.events.db(), &q)? {
        let EventBody::RequestCompleted {
            requested_model: Some(asked),
            model: Some(served),
            input_tokens,
            output_tokens,
            ..
        } = ev?.body
        else {
            continue;
        };
        if asked == served {
            continue;
        }
        rerouted += 1;
        let u = Usage {
            input_tokens,
            output_tokens,
            ..Default::default()
        };
        let (Some(pa), Some(ps)) = (pricing.price(&asked), pricing.price(&served)) else {
            unpriced += 1;
            continue;
        };
        let (a, s) = (pa.cost(&u), ps.cost(&u));
        requested += a;
        actual += s;
        let e = pairs
            .entry((asked, served))
            .or_insert((0, Usd::ZERO, Usd::ZERO));
        e.0 += 1;
        e.1 += a;
        e.2 += s;
    }
    let by_pair: Vec<Value> = pairs
        .into_iter()
        .map(|((asked, served), (n, a, s))| {
            json!({"requested_model": asked, "served_model": served, "requests": n,
                   "requested_cost_usd": a, "actual_cost_usd": s, "savings_usd": Usd(a.0 - s.0)})
        })
        .collect();
    Ok(json!({
        "window": w.json(),
        "requests_rerouted": rerouted,
        "requests_unpriced": unpriced,
        "requested_cost_usd": requested,
        "actual_cost_usd": actual,
        "savings_usd": Usd(requested.0 - actual.0),
        "by_model_pair": by_pair,
    }))
}
