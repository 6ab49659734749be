//! Rate limits (off by default): token buckets per client address (checked
//! first, so requests without a valid key are throttled too) and per
//! gateway key (requests and tokens per minute, keyed on the sha256 of the
//! secret). Capacity equals the per-minute refill. State is a bounded LRU
//! per bucket kind, so a flood of distinct keys or addresses cannot grow
//! it. Tokens are taken on admission for the input estimate and the output
//! bound (at most a full bucket), and trued up to the reported usage once
//! the call ends (a bucket may go into debt, which later requests wait out).

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Instant;

use lru::LruCache;
use serde::Deserialize;

use crate::metrics;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Requests per minute per gateway key.
    pub key_rpm: u32,
    /// Tokens (input estimate + max output) per minute per key; 0: off.
    pub key_tpm: u32,
    /// Requests per minute per client address.
    pub ip_rpm: u32,
    /// Peers whose `X-Forwarded-For` is believed (addresses or CIDRs);
    /// from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Buckets kept per kind (least recently used ones are forgotten).
    pub max_entries: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            key_rpm: 60,
            key_tpm: 0,
            ip_rpm: 1000,
            trusted_proxies: Vec::new(),
            max_entries: 1000,
        }
    }
}

impl RateLimitConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.key_rpm == 0 || self.ip_rpm == 0 || self.max_entries == 0 {
            return Err("rate_limits.key_rpm, ip_rpm and max_entries must be positive".into());
        }
        for p in &self.trusted_proxies {
            Cidr::parse(p)?;
        }
        Ok(())
    }
}

/// An address block, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("rate_limits.trusted_proxies: {s:?} is not an address or CIDR block");
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, len) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        if self.bits == 0 {
            return true;
        }
        let shift = len - self.bits as u32;
        (a >> shift) == (b >> shift)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    /// Level after refilling at `per_minute` up to capacity `per_minute`.
    fn refill(&mut self, per_minute: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * per_minute / 60.0).min(per_minute);
        self.at = now;
    }
}

/// Which bucket refused, and when to come back.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttled {
    /// `key`, `key_tokens` or `ip`.
    pub scope: &'static str,
    pub retry_after_seconds: u64,
}

struct Kind<K: std::hash::Hash + Eq> {
    name: &'static str,
    per_minute: f64,
    buckets: Mutex<LruCache<K, Bucket>>,
}

impl<K: std::hash::Hash + Eq + Clone> Kind<K> {
    fn new(name: &'static str, per_minute: u32, entries: usize) -> Self {
        Kind {
            name,
            per_minute: per_minute as f64,
            buckets: Mutex::new(LruCache::new(
                NonZeroUsize::new(entries).expect("validated positive"),
            )),
        }
    }

    /// Take `cost` now, or say how many seconds until it can be taken.
    /// A cost above capacity waits for a full bucket (and then takes it
    /// all), so no request is refused forever.
    fn take(&self, key: K, cost: f64, now: Instant) -> Result<(), u64> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.get_or_insert_mut(key, || Bucket {
            level: self.per_minute,
            at: now,
        });
        b.refill(self.per_minute, now);
        let cost = cost.min(self.per_minute);
        let ok = b.level >= cost;
        counted(self.name, ok);
        if ok {
            b.level -= cost;
            return Ok(());
        }
        let need = cost - b.level;
        Err(((need * 60.0 / self.per_minute).ceil() as u64).max(1))
    }

    /// Adjust by `delta` after the fact: a refund up to capacity, or debt
    /// (down to ten buckets' worth below empty).
    fn adjust(&self, key: K, delta: f64, now: Instant) {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = map.get_mut(&key) {
            b.refill(self.per_minute, now);
            b.level = (b.level + delta).clamp(-10.0 * self.per_minute, self.per_minute);
        }
    }
}

pub struct RateLimiter {
    keys: Kind<[u8; 32]>,
    key_tokens: Option<Kind<[u8; 32]>>,
    ips: Kind<IpAddr>,
    trusted: Vec<Cidr>,
}

fn counted(bucket: &str, ok: bool) {
    metrics::get()
        .ratelimit_requests
        .with_label_values(&[bucket, if ok { "allowed" } else { "limited" }])
        .inc();
}

impl RateLimiter {
    pub fn new(c: &RateLimitConfig) -> Option<RateLimiter> {
        if !c.enabled {
            return None;
        }
        Some(RateLimiter {
            keys: Kind::new("key", c.key_rpm, c.max_entries),
            key_tokens: (c.key_tpm > 0).then(|| Kind::new("key_tokens", c.key_tpm, c.max_entries)),
            ips: Kind::new("ip", c.ip_rpm, c.max_entries),
            trusted: c
                .trusted_proxies
                .iter()
                .filter_map(|p| Cidr::parse(p).ok())
                .collect(),
        })
    }

    /// The client's address: the peer, or for a trusted peer the nearest
    /// untrusted address in `X-Forwarded-For`.
    /// `forwarded_for`: every `X-Forwarded-For` line, joined in order.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusted.iter().any(|c| c.contains(peer)) {
            return peer;
        }
        let Some(xff) = forwarded_for else {
            return peer;
        };
        let mut ip = peer;
        for hop in xff.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(a) => {
                    ip = a;
                    if !self.trusted.iter().any(|c| c.contains(a)) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        ip
    }

    /// One request from the address's bucket.
    pub fn admit_ip(&self, ip: IpAddr) -> Result<(), Throttled> {
        self.ips
            .take(ip, 1.0, Instant::now())
            .map_err(|wait| Throttled {
                scope: self.ips.name,
                retry_after_seconds: wait,
            })
    }

    /// One request, and when tokens are limited `tokens` (input estimate
    /// plus output bound, at most a full bucket), from the key's buckets.
    /// Returns the tokens taken, for [`RateLimiter::settle_tokens`].
    pub fn admit_key(&self, key: &[u8; 32], tokens: u64) -> Result<u64, Throttled> {
        let now = Instant::now();
        let refused = |scope, wait| Throttled {
            scope,
            retry_after_seconds: wait,
        };
        self.keys
            .take(*key, 1.0, now)
            .map_err(|w| refused(self.keys.name, w))?;
        let Some(t) = &self.key_tokens else {
            return Ok(0);
        };
        let taken = (tokens as f64).min(t.per_minute);
        t.take(*key, taken, now).map_err(|w| refused(t.name, w))?;
        Ok(taken as u64)
    }

    /// True the key's token bucket up once a call's usage is known:
    /// `taken` at admission, `used` in fact.
    pub fn settle_tokens(&self, key: &[u8; 32], taken: u64, used: u64) {
        if let Some(t) = &self.key_tokens {
            t.adjust(*key, taken as f64 - used as f64, Instant::now());
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn limiter(key_rpm: u32, ip_rpm: u32) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            enabled: true,
            key_rpm,
            ip_rpm,
            trusted_proxies: vec!["10.0.0.0/8".into()],
            max_entries: 2,
            ..RateLimitConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn a_burst_beyond_capacity_is_refused_with_a_wait_and_others_pass() {
        let l = limiter(3, 1000);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        for _ in 0..3 {
            l.admit_key(&a, 0).unwrap();
        }
        let t = l.admit_key(&a, 0).unwrap_err();
        assert_eq!(t.scope, "key");
        assert_eq!(t.retry_after_seconds, 20, "one request per 20 s at 3 RPM");
        l.admit_key(&b, 0).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        l.admit_ip(ip).unwrap();
    }

    #[test]
    fn tokens_are_taken_for_input_then_output_and_never_refuse_forever() {
        let l = RateLimiter::new(&RateLimitConfig {
            enabled: true,
            key_tpm: 1000,
            ..RateLimitConfig::default()
        })
        .unwrap();
        let k = [7u8; 32];
        // Beyond capacity: waits for a full bucket, then passes.
        l.admit_key(&k, 5000).unwrap();
        let t = l.admit_key(&k, 10).unwrap_err();
        assert_eq!(t.scope, "key_tokens");
        let k2 = [8u8; 32];
        let taken = l.admit_key(&k2, 100).unwrap();
        l.settle_tokens(&k2, taken, 2000);
        // 900 left minus 1900 more used: in debt by 1000.
        assert!(l.admit_key(&k2, 1).unwrap_err().retry_after_seconds >= 60);
        // A bound of a whole bucket admits one call at a time.
        let k3 = [9u8; 32];
        assert_eq!(l.admit_key(&k3, 16_384).unwrap(), 1000);
        assert!(l.admit_key(&k3, 16_384).is_err());
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let l = limiter(1, 1);
        let peer: IpAddr = "10.1.2.3".parse().unwrap();
        let outside: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            l.client_ip(peer, Some("198.51.100.1, 10.9.9.9")),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(l.client_ip(outside, Some("198.51.100.1")), outside);
        assert!(
            RateLimitConfig {
                trusted_proxies: vec!["10.0.0.0/33".into()],
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
