//! Request ids: the client's `x-request-id` when it is sane, else a fresh
//! one, unique across restarts (ids are names, not secrets).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest client-supplied id kept.
const MAX_LEN: usize = 128;

pub fn request_id(headers: &http::HeaderMap) -> String {
    if let Some(v) = headers.get("x-request-id")
        && let Ok(s) = v.to_str()
        && !s.is_empty()
        && s.len() <= MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return s.to_owned();
    }
    fresh()
}

/// Ids increase: from the start time in nanoseconds, one per request. They
/// key the usage table, and keys that only ever append keep each commit to
/// the B-tree's last leaves instead of a page per record.
fn fresh() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    static BASE: OnceLock<u64> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
    });
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("req_{:016x}", base.wrapping_add(n))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        let mut h = http::HeaderMap::new();
        h.insert("x-request-id", "abc-1".parse().unwrap());
        assert_eq!(request_id(&h), "abc-1");
        h.insert("x-request-id", "a b".parse().unwrap());
        assert!(request_id(&h).starts_with("req_"));
        let (a, b) = (request_id(&h), request_id(&h));
        assert!(a < b, "fresh ids increase: {a} then {b}");
    }
}
