//! Caps above the key (`policies/budgets.toml`): the deployment's billing
//! tier, and caps per workspace, team and user. Hot-reloaded.
//!
//! ```toml
//! tier = "free"                 # free | pro | enterprise; unset: no tier cap
//! [tiers.free]                  # defaults: free $0.17/day, $5.00/month
//! daily_usd = "0.17"
//! monthly_usd = "5.00"
//! [teams.ml]
//! daily_usd = "20"
//! daily_tokens = 2000000
//! [users.alice]
//! monthly_usd = "50"
//! [workspaces.acme]
//! monthly_usd = "500"
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::keys::{Amount, Caps, check_id};
use crate::money::Usd;

pub const FILE: &str = "budgets.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    tier: Option<String>,
    #[serde(default)]
    tiers: HashMap<String, RawCaps>,
    #[serde(default)]
    workspaces: HashMap<String, RawCaps>,
    #[serde(default)]
    teams: HashMap<String, RawCaps>,
    #[serde(default)]
    users: HashMap<String, RawCaps>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaps {
    daily_usd: Option<Amount>,
    monthly_usd: Option<Amount>,
    daily_tokens: Option<u64>,
    monthly_tokens: Option<u64>,
}

/// Caps by scope, resolved and validated.
#[derive(Debug, Clone, Default)]
pub struct BudgetPolicy {
    /// The deployment's billing tier and its caps.
    pub tier: Option<(String, Caps)>,
    pub workspaces: HashMap<String, Caps>,
    pub teams: HashMap<String, Caps>,
    pub users: HashMap<String, Caps>,
}

/// The seed's tiers: free is capped, pro and enterprise are not at the
/// tier level (their keys, users and teams still are).
fn default_tiers() -> HashMap<String, Caps> {
    let usd = |s: &str| Some(Usd::parse_positive(s).expect("valid literal"));
    HashMap::from([
        (
            "free".to_owned(),
            Caps {
                daily_usd: usd("0.17"),
                monthly_usd: usd("5.00"),
                ..Caps::default()
            },
        ),
        ("pro".to_owned(), Caps::default()),
        ("enterprise".to_owned(), Caps::default()),
    ])
}

impl BudgetPolicy {
    pub fn any_caps(&self) -> bool {
        self.tier.as_ref().is_some_and(|t| t.1.any())
            || [&self.workspaces, &self.teams, &self.users]
                .iter()
                .any(|m| m.values().any(Caps::any))
    }

    pub fn load(dir: &Path) -> Result<BudgetPolicy, String> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => Self::parse(&t).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BudgetPolicy::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn parse(text: &str) -> Result<BudgetPolicy, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let section = |name: &str, raw: HashMap<String, RawCaps>, lower: bool| {
            raw.into_iter()
                .map(|(id, c)| {
                    check_id(name, &id, lower)?;
                    Ok((id.clone(), caps(&format!("{name}s.{id}"), c)?))
                })
                .collect::<Result<HashMap<_, _>, String>>()
        };
        let mut tiers = default_tiers();
        for (name, c) in f.tiers {
            let resolved = caps(&format!("tiers.{name}"), c)?;
            tiers.insert(name, resolved);
        }
        let tier = match f.tier {
            None => None,
            Some(t) => {
                let caps = tiers.remove(&t).ok_or_else(|| {
                    format!(
                        "tier {t:?} is not defined (free, pro, enterprise or a [tiers.{t}] table)"
                    )
                })?;
                Some((t, caps))
            }
        };
        Ok(BudgetPolicy {
            tier,
            workspaces: section("workspace", f.workspaces, false)?,
            teams: section("team", f.teams, true)?,
            users: section("user", f.users, false)?,
        })
    }
}

fn caps(at: &str, c: RawCaps) -> Result<Caps, String> {
    let usd = |a: Option<Amount>, f: &str| {
        a.map(|a| a.usd().map_err(|e| format!("{at}.{f}: {e}")))
            .transpose()
    };
    let tokens = |n: Option<u64>, f: &str| match n {
        Some(0) => Err(format!("{at}.{f} must be greater than zero")),
        n => Ok(n),
    };
    Ok(Caps {
        daily_usd: usd(c.daily_usd, "daily_usd")?,
        monthly_usd: usd(c.monthly_usd, "monthly_usd")?,
        daily_tokens: tokens(c.daily_tokens, "daily_tokens")?,
        monthly_tokens: tokens(c.monthly_tokens, "monthly_tokens")?,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn free_tier_defaults_and_overrides() {
        let p = BudgetPolicy::parse("tier = \"free\"\n").unwrap();
        let (name, caps) = p.tier.unwrap();
        assert_eq!(name, "free");
        assert_eq!(caps.daily_usd.unwrap().to_string(), "0.17");
        assert_eq!(caps.monthly_usd.unwrap().to_string(), "5");
        let p = BudgetPolicy::parse("tier = \"pro\"\n[teams.ml]\ndaily_usd = \"2.5\"\n").unwrap();
        assert!(!p.tier.unwrap().1.any());
        assert_eq!(p.teams["ml"].daily_usd.unwrap().to_string(), "2.5");
        for bad in [
            "tier = \"gold\"",
            "[teams.ML]\ndaily_usd=\"1\"",
            "[users.a]\ndaily_usd=\"-1\"",
            "[users.a]\nweekly_usd=\"1\"",
        ] {
            assert!(BudgetPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
