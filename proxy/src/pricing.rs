//! The price table (`policies/pricing.toml`): USD per million tokens by
//! canonical `provider:model`, exact decimals, looked up strictly (no
//! fuzzy matching: an unknown id is unpriced). Hot-reloaded with the other
//! policy files; every call records the version it was priced under.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::money::Usd;

/// Tokens of one provider call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cache reads and writes included.
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of the input, read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Of the input, written to the prompt cache (Anthropic).
    pub cache_write_tokens: u64,
}

pub const FILE: &str = "pricing.toml";
/// Output tokens assumed for a model whose entry gives no maximum, when
/// Sluice has to bound a request the client left unbounded.
pub const DEFAULT_MAX_OUTPUT: u64 = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    #[serde(default)]
    models: BTreeMap<String, RawPrice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input_per_mtok: Option<String>,
    output_per_mtok: Option<String>,
    cache_read_per_mtok: Option<String>,
    cache_write_per_mtok: Option<String>,
    max_output_tokens: Option<u64>,
    /// Priced exactly as another entry (a provider serving a vendor's model).
    same_as: Option<String>,
}

/// USD per million tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    pub input: Decimal,
    pub output: Decimal,
    pub cache_read: Option<Decimal>,
    pub cache_write: Option<Decimal>,
    pub max_output_tokens: Option<u64>,
    pub same_as: Option<String>,
}

const MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

impl Price {
    /// Exact cost of `u`: cached reads and cache writes at their own
    /// rates when the table gives them, else at the input rate.
    pub fn cost(&self, u: &Usage) -> Usd {
        let cached = u.cached_input_tokens.min(u.input_tokens);
        let written = u.cache_write_tokens.min(u.input_tokens - cached);
        let plain = u.input_tokens - cached - written;
        let total = Decimal::from(plain) * self.input
            + Decimal::from(cached) * self.cache_read.unwrap_or(self.input)
            + Decimal::from(written) * self.cache_write.unwrap_or(self.input)
            + Decimal::from(u.output_tokens) * self.output;
        Usd((total / MILLION).normalize())
    }

    /// The most `input` tokens and `output` tokens could cost.
    pub fn worst_case(&self, input: u64, output: u64) -> Usd {
        let rate = [self.cache_write, self.cache_read]
            .into_iter()
            .flatten()
            .fold(self.input, Decimal::max);
        Usd(
            ((Decimal::from(input) * rate + Decimal::from(output) * self.output) / MILLION)
                .normalize(),
        )
    }

    /// Output tokens `usd` buys after `input` tokens, at worst.
    pub fn output_affordable(&self, usd: Usd, input: u64) -> u64 {
        let left = usd.0 - self.worst_case(input, 0).0;
        if left <= Decimal::ZERO {
            return 0;
        }
        if self.output.is_zero() {
            return u64::MAX;
        }
        let n = (left * MILLION / self.output).floor();
        u64::try_from(n.mantissa() / 10i128.pow(n.scale())).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Pricing {
    pub version: String,
    models: HashMap<String, Price>,
}

impl Pricing {
    /// Read `dir/pricing.toml`; no file means an empty table.
    pub fn load(dir: &Path) -> Result<Pricing, String> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Pricing {
                    version: "none".into(),
                    models: HashMap::new(),
                });
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Pricing, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.version.trim().is_empty() {
            return Err("version must not be empty".into());
        }
        let rate = |id: &str, field: &str, v: &Option<String>| -> Result<Option<Decimal>, String> {
            v.as_deref()
                .map(|s| {
                    Decimal::from_str(s.trim())
                        .ok()
                        .filter(|d| *d >= Decimal::ZERO)
                        .ok_or_else(|| {
                            format!(
                                "models.{id:?}.{field} = {s:?} is not a non-negative decimal string"
                            )
                        })
                })
                .transpose()
        };
        let mut models = HashMap::new();
        for (id, raw) in &file.models {
            if !id.contains(':') {
                return Err(format!(
                    "model {id:?} must be a canonical provider:model id"
                ));
            }
            let price = match &raw.same_as {
                Some(target) => {
                    if raw.input_per_mtok.is_some() || raw.output_per_mtok.is_some() {
                        return Err(format!("models.{id:?}: give same_as or prices, not both"));
                    }
                    let t = file
                        .models
                        .get(target)
                        .filter(|t| t.same_as.is_none())
                        .ok_or_else(|| {
                            format!("models.{id:?}.same_as = {target:?} names no priced entry")
                        })?;
                    if raw.max_output_tokens == Some(0) {
                        return Err(format!(
                            "models.{id:?}.max_output_tokens must be at least 1"
                        ));
                    }
                    Price {
                        same_as: Some(target.clone()),
                        max_output_tokens: raw.max_output_tokens.or(t.max_output_tokens),
                        ..price_of(target, t, &rate)?
                    }
                }
                None => price_of(id, raw, &rate)?,
            };
            models.insert(id.clone(), price);
        }
        Ok(Pricing {
            version: file.version,
            models,
        })
    }

    /// The price of canonical id `provider:model`, exactly.
    pub fn price(&self, id: &str) -> Option<&Price> {
        self.models.get(id)
    }

    /// The table as `GET /admin/pricing` shows it.
    pub fn to_json(&self) -> Value {
        let mut ids: Vec<&String> = self.models.keys().collect();
        ids.sort();
        let models: serde_json::Map<String, Value> = ids
            .into_iter()
            .map(|id| {
                let p = &self.models[id];
                let mut v = json!({
                    "input_per_mtok": p.input.to_string(),
                    "output_per_mtok": p.output.to_string(),
                });
                if let Some(c) = p.cache_read {
                    v["cache_read_per_mtok"] = json!(c.to_string());
                }
                if let Some(c) = p.cache_write {
                    v["cache_write_per_mtok"] = json!(c.to_string());
                }
                if let Some(n) = p.max_output_tokens {
                    v["max_output_tokens"] = json!(n);
                }
                if let Some(s) = &p.same_as {
                    v["same_as"] = json!(s);
                }
                (id.clone(), v)
            })
            .collect();
        json!({"version": self.version, "unit": "USD per 1M tokens", "models": models})
    }
}

type Rate<'a> = dyn Fn(&str, &str, &Option<String>) -> Result<Option<Decimal>, String> + 'a;

fn price_of(id: &str, raw: &RawPrice, rate: &Rate<'_>) -> Result<Price, String> {
    if raw.max_output_tokens == Some(0) {
        return Err(format!(
            "models.{id:?}.max_output_tokens must be at least 1"
        ));
    }
    let need = |field: &str, v: &Option<String>| {
        rate(id, field, v)?.ok_or_else(|| format!("models.{id:?} needs {field}"))
    };
    Ok(Price {
        input: need("input_per_mtok", &raw.input_per_mtok)?,
        output: need("output_per_mtok", &raw.output_per_mtok)?,
        cache_read: rate(id, "cache_read_per_mtok", &raw.cache_read_per_mtok)?,
        cache_write: rate(id, "cache_write_per_mtok", &raw.cache_write_per_mtok)?,
        max_output_tokens: raw.max_output_tokens,
        same_as: None,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    const TABLE: &str = r#"
version = "2026-12-01"
[models."openai:gpt-4o-mini"]
input_per_mtok = "0.15"
output_per_mtok = "0.60"
cache_read_per_mtok = "0.075"
[models."anthropic:claude-sonnet-4"]
input_per_mtok = "3"
output_per_mtok = "15"
[models."anthropic:claude-opus-4"]
input_per_mtok = "15"
output_per_mtok = "75"
[models."mock:gpt-4o-mini"]
same_as = "openai:gpt-4o-mini"
"#;

    fn usage(i: u64, o: u64, c: u64) -> Usage {
        Usage {
            input_tokens: i,
            output_tokens: o,
            cached_input_tokens: c,
            cache_write_tokens: 0,
        }
    }

    #[test]
    fn the_seed_check_table_exactly() {
        let p = Pricing::parse(TABLE).unwrap();
        // 1000 in / 500 out: 1.05¢ on claude-sonnet-4, 5.25¢ on claude-opus-4.
        let s = p.price("anthropic:claude-sonnet-4").unwrap();
        assert_eq!(s.cost(&usage(1000, 500, 0)).to_string(), "0.0105");
        let o = p.price("anthropic:claude-opus-4").unwrap();
        assert_eq!(o.cost(&usage(1000, 500, 0)).to_string(), "0.0525");
        let m = p.price("mock:gpt-4o-mini").unwrap();
        // 300 uncached at 0.15, 100 cached at 0.075, 7 out at 0.60, per 1M.
        assert_eq!(m.cost(&usage(400, 7, 100)).to_string(), "0.0000567");
        assert!(p.price("openai:gpt-4o").is_none(), "strict lookup");
    }

    #[test]
    fn affordable_output_never_overshoots() {
        let p = Pricing::parse(TABLE).unwrap();
        let s = p.price("anthropic:claude-sonnet-4").unwrap();
        let budget = Usd::parse_positive("0.01").unwrap();
        let n = s.output_affordable(budget, 100);
        assert!(s.worst_case(100, n) <= budget);
        assert!(s.worst_case(100, n + 1) > budget);
    }

    #[test]
    fn bad_tables_are_refused_with_the_field() {
        for (bad, what) in [
            (
                "version = \"v\"\n[models.\"x\"]\ninput_per_mtok=\"1\"\noutput_per_mtok=\"1\"",
                "canonical",
            ),
            (
                "version = \"v\"\n[models.\"a:b\"]\ninput_per_mtok=\"-1\"\noutput_per_mtok=\"1\"",
                "input_per_mtok",
            ),
            (
                "version = \"v\"\n[models.\"a:b\"]\ninput_per_mtok=1\noutput_per_mtok=\"1\"",
                "input_per_mtok",
            ),
            (
                "version = \"v\"\n[models.\"a:b\"]\nsame_as=\"c:d\"",
                "same_as",
            ),
            (
                "[models.\"a:b\"]\ninput_per_mtok=\"1\"\noutput_per_mtok=\"1\"",
                "version",
            ),
        ] {
            let e = Pricing::parse(bad).unwrap_err();
            assert!(e.contains(what), "{e}");
        }
    }
}
