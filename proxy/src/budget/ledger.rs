//! The embedded budget store: one small account per scope, each behind its
//! own mutex, found through a sharded map. A reservation locks the (at most
//! five) accounts of its scopes in scope order, so two reservations never
//! wait on each other in a cycle and no lock is global.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rust_decimal::Decimal;

use super::{Alert, Ask, Budgets, Exceeded, Held, Remaining, Scoped, Unit, Usage, Warning, Window};
use crate::clock;
use crate::events::{HoldRecord, Spend};
use crate::money::Usd;

const SHARDS: usize = 16;

/// Spent, held and alerted in one window.
#[derive(Debug, Default, Clone)]
struct Win {
    id: u32,
    spent_usd: Usd,
    spent_tokens: u64,
    held_usd: Usd,
    held_tokens: u64,
}

impl Win {
    fn roll(&mut self, id: u32) {
        if self.id != id {
            *self = Win {
                id,
                ..Win::default()
            };
        }
    }

    fn usage(&self) -> Usage {
        Usage {
            spent_usd: self.spent_usd,
            held_usd: self.held_usd,
            spent_tokens: self.spent_tokens,
            held_tokens: self.held_tokens,
        }
    }
}

/// A hold restored from the log after a restart: it counts until it expires.
#[derive(Debug, Clone)]
struct Recovered {
    expires_ms: u64,
    usd: Usd,
    tokens: u64,
    day: u32,
    month: u32,
}

#[derive(Debug, Default)]
struct Account {
    day: Win,
    month: Win,
    recovered: Vec<Recovered>,
}

impl Account {
    fn roll(&mut self, now_ms: u64) {
        let (d, m) = (clock::day_of(now_ms), clock::month_of(now_ms));
        if !self.recovered.is_empty() {
            let (day, month) = (&mut self.day, &mut self.month);
            self.recovered.retain(|r| {
                if r.expires_ms > now_ms {
                    return true;
                }
                unhold(day, month, r.day, r.month, r.usd, r.tokens);
                false
            });
        }
        self.day.roll(d);
        self.month.roll(m);
    }
}

fn unhold(day: &mut Win, month: &mut Win, d: u32, m: u32, usd: Usd, tokens: u64) {
    for (w, id) in [(day, d), (month, m)] {
        if w.id == id {
            w.held_usd = Usd((w.held_usd.0 - usd.0).max(Decimal::ZERO));
            w.held_tokens = w.held_tokens.saturating_sub(tokens);
        }
    }
}

type Shard = Mutex<HashMap<String, Arc<Mutex<Account>>>>;

pub struct Ledger {
    shards: Vec<Shard>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding an account cannot leave it half-updated in a
    // way worse than losing the update; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ledger {
    /// A ledger starting from committed spend and open holds.
    pub fn restore(spend: &HashMap<String, Spend>, holds: &[HoldRecord], now_ms: u64) -> Ledger {
        let ledger = Ledger {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        };
        let (d, m) = (clock::day_of(now_ms), clock::month_of(now_ms));
        for (key, s) in spend {
            let Some((scope, window)) = key.rsplit_once('|') else {
                continue;
            };
            let account = ledger.account(scope);
            let mut a = lock(&account);
            let (win, id) = match window.as_bytes().first() {
                Some(b'd') => (&mut a.day, d),
                Some(b'm') => (&mut a.month, m),
                _ => continue,
            };
            if window[1..].parse() == Ok(id) {
                win.id = id;
                win.spent_usd = s.usd;
                win.spent_tokens = s.tokens;
            }
        }
        for h in holds {
            for scope in &h.scopes.0 {
                let account = ledger.account(scope);
                let mut guard = lock(&account);
                let a = &mut *guard;
                a.roll(now_ms);
                for (w, id) in [(&mut a.day, h.day), (&mut a.month, h.month)] {
                    if w.id == id {
                        w.held_usd += h.usd;
                        w.held_tokens += h.tokens;
                    }
                }
                a.recovered.push(Recovered {
                    expires_ms: h.expires_ms,
                    usd: h.usd,
                    tokens: h.tokens,
                    day: h.day,
                    month: h.month,
                });
            }
        }
        ledger
    }

    fn account(&self, scope: &str) -> Arc<Mutex<Account>> {
        let shard = &self.shards[shard_of(scope)];
        let mut map = lock(shard);
        if let Some(a) = map.get(scope) {
            return a.clone();
        }
        let a = Arc::new(Mutex::new(Account::default()));
        map.insert(scope.to_owned(), a.clone());
        a
    }
}

fn shard_of(s: &str) -> usize {
    // FNV-1a: cheap and good enough to spread scope ids.
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h as usize % SHARDS
}

/// The caps of one window.
fn caps_of(s: &Scoped, w: Window) -> (Option<Usd>, Option<u64>) {
    match w {
        Window::Daily => (s.caps.daily_usd, s.caps.daily_tokens),
        Window::Monthly => (s.caps.monthly_usd, s.caps.monthly_tokens),
    }
}

fn window_end(w: Window, now_ms: u64) -> u64 {
    match w {
        Window::Daily => clock::day_end(now_ms),
        Window::Monthly => clock::month_end(now_ms),
    }
}

fn ratio(used: Decimal, cap: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    (used / cap).to_f64().unwrap_or(1.0)
}

/// Thresholds (80 % warning, 95 % critical) that spending moved past:
/// each is crossed once per window, also across restarts (the spend before
/// is restored).
fn crossed(before: (Usd, u64), w: &Win, s: &Scoped, window: Window) -> Vec<Alert> {
    let (usd_cap, tok_cap) = caps_of(s, window);
    let mut out = Vec::new();
    let mut check = |was: Decimal, now: Decimal, cap: Decimal, unit: Unit| {
        for (level, t) in [
            ("warning", Decimal::new(80, 2)),
            ("critical", Decimal::new(95, 2)),
        ] {
            let line = cap * t;
            if was < line && now >= line {
                out.push(Alert {
                    scope: s.clone(),
                    window,
                    unit,
                    level,
                    used: now.normalize().to_string(),
                    limit: cap.normalize().to_string(),
                });
            }
        }
    };
    if let Some(cap) = usd_cap {
        check(before.0.0, w.spent_usd.0, cap.0, Unit::Usd);
    }
    if let Some(cap) = tok_cap {
        check(
            Decimal::from(before.1),
            Decimal::from(w.spent_tokens),
            Decimal::from(cap),
            Unit::Tokens,
        );
    }
    out
}

impl Budgets for Ledger {
    fn reserve(&self, ask: &Ask<'_>, now_ms: u64) -> Result<Held, Exceeded> {
        let accounts: Vec<_> = ask.scopes.iter().map(|s| self.account(&s.id())).collect();
        let mut guards: Vec<_> = accounts.iter().map(|a| lock(a)).collect();
        for g in guards.iter_mut() {
            g.roll(now_ms);
        }
        // The tightest USD and token headroom, and whose it is.
        let mut usd_room: Option<(Decimal, usize, Window)> = None;
        let mut tok_room: Option<(i128, usize, Window)> = None;
        for (i, (s, g)) in ask.scopes.iter().zip(&guards).enumerate() {
            for (w, window) in [(&g.day, Window::Daily), (&g.month, Window::Monthly)] {
                let (usd_cap, tok_cap) = caps_of(s, window);
                if let Some(cap) = usd_cap {
                    let room = cap.0 - w.spent_usd.0 - w.held_usd.0;
                    if usd_room.is_none_or(|(r, _, _)| room < r) {
                        usd_room = Some((room, i, window));
                    }
                }
                if let Some(cap) = tok_cap {
                    let room = cap as i128 - (w.spent_tokens + w.held_tokens) as i128;
                    if tok_room.is_none_or(|(r, _, _)| room < r) {
                        tok_room = Some((room, i, window));
                    }
                }
            }
        }
        let exceeded = |i: usize, window: Window, unit: Unit| {
            let s = &ask.scopes[i];
            let w = match window {
                Window::Daily => &guards[i].day,
                Window::Monthly => &guards[i].month,
            };
            let (usd_cap, tok_cap) = caps_of(s, window);
            let (current, limit) = match unit {
                Unit::Usd => (
                    (w.spent_usd + w.held_usd).to_string(),
                    usd_cap.map(|c| c.to_string()).unwrap_or_default(),
                ),
                Unit::Tokens => (
                    (w.spent_tokens + w.held_tokens).to_string(),
                    tok_cap.map(|c| c.to_string()).unwrap_or_default(),
                ),
            };
            Exceeded {
                scope: s.kind,
                identity: s.identity.clone(),
                window,
                unit,
                current,
                limit,
                resets_ms: window_end(window, now_ms),
            }
        };
        // Budget before tokens (seed 003 §15).
        let choices = ask.choices.max(1);
        let mut output = ask.max_output;
        if let Some((room, i, window)) = usd_room {
            let price = ask
                .price
                .expect("a USD cap needs a price; the caller checks");
            let affordable = if room > Decimal::ZERO {
                price.output_affordable(Usd(room), ask.input_tokens)
            } else {
                0
            };
            let per_choice = affordable / choices;
            if per_choice == 0 {
                return Err(exceeded(i, window, Unit::Usd));
            }
            output = output.min(per_choice);
        }
        if let Some((room, i, window)) = tok_room {
            let per_choice = (room - ask.input_tokens as i128).max(0) as u64 / choices;
            if per_choice == 0 {
                return Err(exceeded(i, window, Unit::Tokens));
            }
            output = output.min(per_choice);
        }
        let total_output = output.saturating_mul(choices);
        let usd = ask
            .price
            .map_or(Usd::ZERO, |p| p.worst_case(ask.input_tokens, total_output));
        let tokens = ask.input_tokens.saturating_add(total_output);
        // Past 80 %: what is settled and held by others, before this
        // call's own worst case (which may take all that is left).
        let mut warning: Option<Warning> = None;
        for (s, g) in ask.scopes.iter().zip(guards.iter_mut()) {
            let g = &mut **g;
            for (w, window) in [(&mut g.day, Window::Daily), (&mut g.month, Window::Monthly)] {
                let (usd_cap, tok_cap) = caps_of(s, window);
                let ratios = [
                    usd_cap.map(|c| (ratio((w.spent_usd + w.held_usd).0, c.0), Unit::Usd)),
                    tok_cap.map(|c| {
                        (
                            (w.spent_tokens + w.held_tokens) as f64 / c as f64,
                            Unit::Tokens,
                        )
                    }),
                ];
                for (r, unit) in ratios.into_iter().flatten() {
                    if r > 0.8 && warning.as_ref().is_none_or(|x| r > x.used_ratio) {
                        warning = Some(Warning {
                            scope: s.id(),
                            window,
                            unit,
                            used_ratio: r,
                        });
                    }
                }
                w.held_usd += usd;
                w.held_tokens += tokens;
            }
        }
        Ok(Held {
            call_id: ask.call_id.to_owned(),
            scopes: ask.scopes.to_vec(),
            usd,
            tokens,
            output_tokens: output,
            input_tokens: ask.input_tokens,
            day: clock::day_of(now_ms),
            month: clock::month_of(now_ms),
            warning,
        })
    }

    fn settle(&self, held: &Held, usd: Usd, tokens: u64, now_ms: u64) -> Vec<Alert> {
        let m = crate::metrics::get();
        let mut alerts = Vec::new();
        for s in &held.scopes {
            let account = self.account(&s.id());
            let mut a = lock(&account);
            a.roll(now_ms);
            let Account { day, month, .. } = &mut *a;
            unhold(day, month, held.day, held.month, held.usd, held.tokens);
            let mut max_ratio: Option<f64> = None;
            for (w, window) in [(day, Window::Daily), (month, Window::Monthly)] {
                let before = (w.spent_usd, w.spent_tokens);
                w.spent_usd += usd;
                w.spent_tokens += tokens;
                alerts.extend(crossed(before, w, s, window));
                let (usd_cap, tok_cap) = caps_of(s, window);
                for r in [
                    usd_cap.map(|c| ratio(w.spent_usd.0, c.0)),
                    tok_cap.map(|c| w.spent_tokens as f64 / c as f64),
                ]
                .into_iter()
                .flatten()
                {
                    max_ratio = Some(max_ratio.map_or(r, |x: f64| x.max(r)));
                }
            }
            if let Some(r) = max_ratio {
                m.quota_used_ratio.with_label_values(&[&s.id()]).set(r);
            }
        }
        alerts
    }

    fn release(&self, held: &Held) {
        for s in &held.scopes {
            let account = self.account(&s.id());
            let mut a = lock(&account);
            let Account { day, month, .. } = &mut *a;
            unhold(day, month, held.day, held.month, held.usd, held.tokens);
        }
    }

    fn remaining(&self, scope_id: &str, now_ms: u64) -> Remaining {
        // A lookup creates nothing: any string may be asked about.
        let found = lock(&self.shards[shard_of(scope_id)])
            .get(scope_id)
            .cloned();
        let Some(account) = found else {
            return Remaining::default();
        };
        let mut a = lock(&account);
        a.roll(now_ms);
        Remaining {
            daily: a.day.usage(),
            monthly: a.month.usage(),
        }
    }
}

#[cfg(test)]
mod test {
    use super::super::ScopeKind;
    use super::*;
    use crate::keys::Caps;
    use crate::pricing::Pricing;

    fn pricing() -> Pricing {
        Pricing::parse(
            "version='t'\n[models.\"m:x\"]\ninput_per_mtok=\"1000000\"\noutput_per_mtok=\"1000000\"\n",
        )
        .unwrap()
    }

    fn scope(kind: ScopeKind, id: &str, daily: &str) -> Scoped {
        Scoped {
            kind,
            identity: id.into(),
            caps: Caps {
                daily_usd: Some(Usd::parse_positive(daily).unwrap()),
                ..Caps::default()
            },
        }
    }

    #[test]
    fn reservations_never_exceed_the_tightest_cap_and_settle_exactly() {
        // $1 per token: a cap of $10 is ten tokens.
        let p = pricing();
        let price = p.price("m:x").unwrap();
        let ledger = Ledger::restore(&HashMap::new(), &[], clock::now_ms());
        let scopes = [
            scope(ScopeKind::User, "u", "100"),
            scope(ScopeKind::Key, "k", "10"),
        ];
        let now = clock::now_ms();
        let ask = |max| Ask {
            call_id: "c",
            scopes: &scopes,
            input_tokens: 2,
            price: Some(price),
            max_output: max,
            choices: 1,
        };
        let a = ledger.reserve(&ask(1000), now).unwrap();
        assert_eq!(a.output_tokens, 8, "bounded by what the key affords");
        assert_eq!(a.usd.to_string(), "10");
        let e = ledger.reserve(&ask(1), now).unwrap_err();
        assert_eq!(
            (e.scope, e.unit, e.current.as_str()),
            (ScopeKind::Key, Unit::Usd, "10")
        );
        // Settling 3 tokens leaves 7.
        let alerts = ledger.settle(&a, Usd(Decimal::from(3)), 3, now);
        assert!(alerts.is_empty());
        let b = ledger.reserve(&ask(1000), now).unwrap();
        assert_eq!(b.output_tokens, 5);
        assert!(
            b.warning.is_none(),
            "30 % used; its own hold does not count"
        );
        ledger.release(&b);
        let r = ledger.remaining("key:k", now);
        assert_eq!(r.daily.spent_usd.to_string(), "3");
        assert_eq!(r.daily.held_usd, Usd::ZERO);
        assert_eq!(
            ledger.remaining("user:u", now).daily.spent_usd.to_string(),
            "3"
        );
        // Past 80 % and 95 %: two alerts, once.
        let c = ledger.reserve(&ask(1000), now).unwrap();
        let alerts = ledger.settle(&c, Usd(Decimal::from(7)), 7, now);
        assert_eq!(
            alerts.iter().map(|a| a.level).collect::<Vec<_>>(),
            ["warning", "critical"]
        );
        assert!(ledger.reserve(&ask(1), now).is_err());
        // Past 80 % settled, a reservation is warned.
        let other = [scope(ScopeKind::Key, "k2", "10")];
        let ask2 = Ask {
            scopes: &other,
            input_tokens: 0,
            ..ask(1)
        };
        let d = ledger.reserve(&ask2, now).unwrap();
        ledger.settle(&d, Usd(Decimal::new(85, 1)), 8, now);
        let w = ledger.reserve(&ask2, now).unwrap().warning.unwrap();
        assert_eq!((w.scope.as_str(), w.unit), ("key:k2", Unit::Usd));
        assert!((w.used_ratio - 0.85).abs() < 1e-9);
        // n choices multiply the output: each gets a share.
        let third = [scope(ScopeKind::Key, "k3", "10")];
        let n3 = Ask {
            scopes: &third,
            input_tokens: 1,
            choices: 3,
            ..ask(1000)
        };
        let h = ledger.reserve(&n3, now).unwrap();
        assert_eq!(
            (h.output_tokens, h.tokens, h.usd.to_string().as_str()),
            (3, 10, "10")
        );
    }

    #[test]
    fn restored_spend_and_holds_count() {
        let now = clock::now_ms();
        let (d, m) = (clock::day_of(now), clock::month_of(now));
        let spend = HashMap::from([(
            format!("key:k|d{d}"),
            Spend {
                usd: Usd(Decimal::from(6)),
                tokens: 6,
                calls: 1,
            },
        )]);
        let hold = HoldRecord {
            call_id: "x".into(),
            scopes: crate::events::Scopes(vec!["key:k".into()]),
            usd: Usd(Decimal::from(3)),
            tokens: 3,
            day: d,
            month: m,
            expires_ms: now + 1000,
        };
        let ledger = Ledger::restore(&spend, &[hold], now);
        let p = pricing();
        let scopes = [scope(ScopeKind::Key, "k", "10")];
        let ask = Ask {
            call_id: "c",
            scopes: &scopes,
            input_tokens: 0,
            price: p.price("m:x"),
            max_output: 100,
            choices: 1,
        };
        assert_eq!(ledger.reserve(&ask, now).unwrap().output_tokens, 1);
        // Once the recovered hold expires its money is free again; the new
        // reservation's dollar is still held.
        let later = now + 2000;
        assert_eq!(
            ledger.remaining("key:k", later).daily.held_usd.to_string(),
            "1"
        );
    }
}
