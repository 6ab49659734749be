//! `aggregate_only`: counters over the exported events and nothing of any
//! one event. Memory is the counters plus the distinct-id sets.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// The event type whose payloads carry cost, tokens and latency.
const CALL_COMPLETED: &str = "llm.call_completed";

/// Which distinct-id set an identity field counts toward; identity fields
/// not named here (`workspace`, `identity`, `call_id`) are not counted.
fn set_of(field: &str) -> Option<usize> {
    match field {
        "key_id" | "new_key_id" | "rotated_from" | "gateway_key_id" => Some(KEYS),
        "user_id" => Some(USERS),
        "team_id" => Some(TEAMS),
        // `subject_id` is the request an evaluation is about.
        "request_id" | "subject_id" => Some(REQUESTS),
        _ => None,
    }
}

const KEYS: usize = 0;
const USERS: usize = 1;
const TEAMS: usize = 2;
const REQUESTS: usize = 3;

/// Running min, max and sum.
#[derive(Debug, Default)]
struct Range<T> {
    sum: T,
    min: Option<T>,
    max: Option<T>,
}

impl<T: Copy + Ord> Range<T> {
    fn see(&mut self, v: T) {
        self.min = Some(self.min.map_or(v, |m| m.min(v)));
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
    }
}

/// The summary `aggregate_only` writes, built one serialized event at a
/// time.
#[derive(Debug, Default)]
pub struct Aggregate {
    events: u64,
    by_type: BTreeMap<String, u64>,
    distinct: [HashSet<String>; 4],
    cost: Range<Decimal>,
    input_tokens: u64,
    output_tokens: u64,
    latency: Range<u64>,
}

impl Aggregate {
    pub fn new() -> Aggregate {
        Aggregate::default()
    }

    /// Count one serialized event (`{"id":…,"type":…,"payload":{…}}`).
    pub fn add(&mut self, ev: &Value) -> Result<(), String> {
        let id = ev.get("id").and_then(Value::as_u64).unwrap_or(0);
        let ty = ev
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("event {id}: no type"))?;
        self.events += 1;
        *self.by_type.entry(ty.to_owned()).or_insert(0) += 1;
        let payload = ev.get("payload").unwrap_or(&Value::Null);
        self.collect_ids(payload);
        if ty == CALL_COMPLETED {
            self.add_call(payload)
                .map_err(|e| format!("event {id} ({ty}): {e}"))?;
        }
        Ok(())
    }

    fn collect_ids(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                for (k, field) in map {
                    if let (Some(set), Value::String(s)) = (set_of(k), field) {
                        if !self.distinct[set].contains(s.as_str()) {
                            self.distinct[set].insert(s.clone());
                        }
                    } else {
                        self.collect_ids(field);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.collect_ids(i)),
            _ => {}
        }
    }

    fn add_call(&mut self, p: &Value) -> Result<(), String> {
        let cost = p
            .get("cost_usd")
            .and_then(Value::as_str)
            .and_then(|s| Decimal::from_str(s).ok())
            .ok_or("cost_usd is not a decimal string")?
            .normalize();
        let num = |name: &str| {
            p.get(name)
                .and_then(Value::as_u64)
                .ok_or(format!("{name} is not a whole number"))
        };
        let (input, output, latency) = (
            num("input_tokens")?,
            num("output_tokens")?,
            num("latency_ms")?,
        );
        self.cost.sum = self
            .cost
            .sum
            .checked_add(cost)
            .ok_or("the sum of cost_usd overflows")?;
        self.cost.see(cost);
        self.input_tokens = self.input_tokens.saturating_add(input);
        self.output_tokens = self.output_tokens.saturating_add(output);
        self.latency.sum = self.latency.sum.saturating_add(latency);
        self.latency.see(latency);
        Ok(())
    }

    /// The summary; keys in a fixed order, types sorted.
    pub fn to_json(&self) -> Value {
        let usd = |d: Decimal| Value::String(d.normalize().to_string());
        let by_type: Map<String, Value> = self
            .by_type
            .iter()
            .map(|(t, n)| (t.clone(), Value::from(*n)))
            .collect();
        json!({
            "mode": "aggregate_only",
            "events": self.events,
            "by_type": by_type,
            "distinct_gateway_keys": self.distinct[KEYS].len(),
            "distinct_users": self.distinct[USERS].len(),
            "distinct_teams": self.distinct[TEAMS].len(),
            "distinct_requests": self.distinct[REQUESTS].len(),
            "cost_usd": {
                "sum": usd(self.cost.sum),
                "min": self.cost.min.map(usd),
                "max": self.cost.max.map(usd),
            },
            "tokens": {
                "input": self.input_tokens,
                "output": self.output_tokens,
            },
            "latency_ms": {
                "sum": self.latency.sum,
                "min": self.latency.min,
                "max": self.latency.max,
            },
        })
    }
}
