//! Rate limits (off by default): token buckets per gateway key (requests
//! and tokens per minute, keyed on the sha256 of the secret) and per client
//! IP. Capacity equals the per-minute refill. State is a bounded LRU per
//! bucket kind, so a flood of distinct keys or addresses cannot grow it.
//! Both buckets must pass; nothing is taken from either unless both do.

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

    /// Seconds until `cost` is available, 0 if it is now.
    fn wait(&self, b: &mut Bucket, cost: f64, now: Instant) -> u64 {
        b.refill(self.per_minute, now);
        if b.level >= cost {
            return 0;
        }
        // A cost above capacity can never be met: say a minute.
        let need = (cost.min(self.per_minute) - b.level).max(0.0);
        ((need * 60.0 / self.per_minute).ceil() as u64).max(1)
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

    /// Take one request (and `tokens`) from the key's buckets and one from
    /// the address's, or refuse without taking anything.
    pub fn admit(&self, key: Option<&[u8; 32]>, ip: IpAddr, tokens: u64) -> Result<(), Throttled> {
        let now = Instant::now();
        let full = |per_minute: f64| Bucket {
            level: per_minute,
            at: now,
        };
        let mut keys = self.keys.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut key_tokens = self
            .key_tokens
            .as_ref()
            .map(|k| k.buckets.lock().unwrap_or_else(|p| p.into_inner()));
        let mut ips = self.ips.buckets.lock().unwrap_or_else(|p| p.into_inner());

        let mut kb = key.map(|h| *keys.get_or_insert(*h, || full(self.keys.per_minute)));
        let mut tb = match (key, &self.key_tokens, key_tokens.as_mut()) {
            (Some(h), Some(kind), Some(map)) => {
                Some(*map.get_or_insert(*h, || full(kind.per_minute)))
            }
            _ => None,
        };
        let mut ib = *ips.get_or_insert(ip, || full(self.ips.per_minute));

        let mut refusal = None;
        if let Some(b) = kb.as_mut() {
            let wait = self.keys.wait(b, 1.0, now);
            counted(self.keys.name, wait == 0);
            if wait > 0 {
                refusal = Some((self.keys.name, wait));
            }
        }
        if let (Some(b), Some(kind)) = (tb.as_mut(), &self.key_tokens) {
            let wait = kind.wait(b, tokens as f64, now);
            counted(kind.name, wait == 0);
            if wait > 0 && refusal.is_none() {
                refusal = Some((kind.name, wait));
            }
        }
        let wait = self.ips.wait(&mut ib, 1.0, now);
        counted(self.ips.name, wait == 0);
        if wait > 0 && refusal.is_none() {
            refusal = Some((self.ips.name, wait));
        }
        // Refilled levels are kept either way; tokens only taken on success.
        let ok = refusal.is_none();
        if let (Some(h), Some(mut b)) = (key, kb) {
            if ok {
                b.level -= 1.0;
            }
            keys.put(*h, b);
        }
        if let (Some(h), Some(mut b), Some(map)) = (key, tb, key_tokens.as_mut()) {
            if ok {
                b.level -= tokens as f64;
            }
            map.put(*h, b);
        }
        if ok {
            ib.level -= 1.0;
        }
        ips.put(ip, ib);
        match refusal {
            None => Ok(()),
            Some((scope, retry_after_seconds)) => Err(Throttled {
                scope,
                retry_after_seconds,
            }),
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
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        for _ in 0..3 {
            l.admit(Some(&a), ip, 0).unwrap();
        }
        let t = l.admit(Some(&a), ip, 0).unwrap_err();
        assert_eq!(t.scope, "key");
        assert_eq!(t.retry_after_seconds, 20, "one request per 20 s at 3 RPM");
        l.admit(Some(&b), ip, 0).unwrap();
    }

    #[test]
    fn refused_by_one_bucket_takes_nothing_from_the_other() {
        let l = limiter(1000, 1);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        l.admit(Some(&[1; 32]), ip, 0).unwrap();
        assert_eq!(l.admit(Some(&[1; 32]), ip, 0).unwrap_err().scope, "ip");
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
