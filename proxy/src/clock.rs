//! Wall-clock time as the ledger sees it: Unix milliseconds, UTC windows,
//! RFC 3339 for people, and the durations operators type (`30m`, `7d`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Time as the availability breaker and the pattern store see it: the
/// system clock plus an offset that only moves forward. Tests move it
/// through the admin API (`[routing] clock_control`) to see a breaker
/// clear without waiting five minutes.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: std::sync::atomic::AtomicU64,
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        now_ms() + self.offset_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Move time forward by `ms`; returns the new offset.
    pub fn advance(&self, ms: u64) -> u64 {
        self.offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed)
            + ms
    }
}

/// The UTC day a timestamp falls in (days since the epoch).
pub fn day_of(ms: u64) -> u32 {
    (ms / 86_400_000) as u32
}

/// The UTC month a timestamp falls in, as `year * 12 + month0`.
pub fn month_of(ms: u64) -> u32 {
    let t = datetime(ms);
    t.year() as u32 * 12 + (u8::from(t.month()) as u32 - 1)
}

/// When the UTC day and month of `ms` end, in ms: for `Retry-After`.
pub fn day_end(ms: u64) -> u64 {
    (day_of(ms) as u64 + 1) * 86_400_000
}

pub fn month_end(ms: u64) -> u64 {
    let t = datetime(ms);
    let (y, m) = match t.month() {
        time::Month::December => (t.year() + 1, time::Month::January),
        m => (t.year(), m.next()),
    };
    let first = time::Date::from_calendar_date(y, m, 1).expect("valid first of month");
    (first.midnight().assume_utc().unix_timestamp() as u64) * 1000
}

fn datetime(ms: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// `2026-12-02T03:19:31.123Z`.
pub fn rfc3339(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

/// An instant as operators write it: RFC 3339 (`2026-12-01T10:00:00Z`), a
/// UTC date (`2026-12-01`, its midnight), or Unix milliseconds.
pub fn parse_instant(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse().map_err(|_| format!("{s:?} is out of range"));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| {
            format!(
                "{s:?}: expected RFC 3339 (2026-12-01T10:00:00Z), a date (2026-12-01) or Unix ms"
            )
        })?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("{s:?} is before 1970"))
}

/// A duration as operators write it: a positive whole number and a unit,
/// `s`, `m`, `h`, `d` or `w` (`30m`, `24h`, `7d`, `2w`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| {
        format!("duration {s:?}: expected a number and a unit, like 30m, 24h, 7d, 2w")
    })?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "duration {s:?}: the unit must be s, m, h, d or w (like 30m, 24h, 7d, 2w)"
            ));
        }
    };
    if n == 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    n.checked_mul(secs)
        .filter(|&t| t <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn durations_as_operators_write_them() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(1_209_600)
        );
        for bad in ["", "5", "m", "0h", "-1h", "1.5h", "3y", "99999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_as_operators_write_them() {
        assert_eq!(parse_instant("1798761600000").unwrap(), 1_798_761_600_000);
        assert_eq!(parse_instant("2027-01-01").unwrap(), 1_798_761_600_000);
        assert_eq!(
            parse_instant("2027-01-01T01:00:00+01:00").unwrap(),
            1_798_761_600_000
        );
        for bad in ["", "yesterday", "2027-13-01", "1969-12-31T00:00:00Z"] {
            assert!(parse_instant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn utc_windows() {
        // 2026-12-31T23:59:59Z and one second later.
        let a = 1_798_761_599_000;
        let b = a + 1000;
        assert_eq!(day_of(b), day_of(a) + 1);
        assert_eq!(month_of(b), month_of(a) + 1);
        assert_eq!(month_end(a), b);
        assert_eq!(day_end(a), b);
        assert_eq!(rfc3339(b), "2027-01-01T00:00:00.000Z");
    }
}
