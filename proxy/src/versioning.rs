//! API versioning of Sluice's own routes (admin, health, metrics, models).
//!
//! Provider-shape paths (`/v1/chat/completions`, `/v1/messages`) are frozen
//! by the upstream SDKs and never versioned. Own routes read an optional
//! `Sluice-API-Version` request header (default: the current version) and
//! answer 410 for a version below the minimum, past its sunset date, or newer
//! than the current one. Every own response carries
//! `Sluice-API-Versions-Supported`, and a deprecated version also gets
//! `Deprecation: true` and an RFC 8594 `Sunset` date.

use serde::Deserialize;
use serde_json::json;

pub const VERSION_HEADER: &str = "sluice-api-version";
pub const SUPPORTED_HEADER: &str = "sluice-api-versions-supported";

/// The version this build speaks.
pub const CURRENT: Version = Version(1, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16, pub u16);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let (major, minor) = s.trim().split_once('.').unwrap_or((s.trim(), "0"));
        Some(Version(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// `[api]` in sluice.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Oldest version still served.
    pub min_supported: String,
    /// Older versions still served with a sunset date (`YYYY-MM-DD`, UTC;
    /// the sunset day itself is still served).
    pub deprecated: Vec<Deprecated>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deprecated {
    pub version: String,
    pub sunset: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            min_supported: CURRENT.to_string(),
            deprecated: Vec::new(),
        }
    }
}

/// Resolved, validated versioning policy.
#[derive(Debug, Clone)]
pub struct Versions {
    min: Version,
    /// (version, sunset as days since the Unix epoch, sunset as text).
    deprecated: Vec<(Version, i64, String)>,
}

/// What an own route answers a request's version with.
#[derive(Debug, Clone, PartialEq)]
pub enum Negotiated {
    /// Serve; these headers go on the response.
    Serve(Vec<(&'static str, String)>),
    /// Refuse with this status and JSON body (headers included).
    Refuse(u16, serde_json::Value, Vec<(&'static str, String)>),
}

impl Versions {
    pub fn from_config(c: &ApiConfig) -> Result<Versions, String> {
        let min = Version::parse(&c.min_supported).ok_or_else(|| {
            format!(
                "api.min_supported {:?} is not a version like 1.0",
                c.min_supported
            )
        })?;
        if min > CURRENT {
            return Err(format!(
                "api.min_supported {min} is newer than the current version {CURRENT}"
            ));
        }
        let mut deprecated = Vec::new();
        for d in &c.deprecated {
            let v = Version::parse(&d.version).ok_or_else(|| {
                format!("api.deprecated version {:?} is not a version", d.version)
            })?;
            let day = parse_date(&d.sunset)
                .ok_or_else(|| format!("api.deprecated sunset {:?} is not YYYY-MM-DD", d.sunset))?;
            deprecated.push((v, day, d.sunset.clone()));
        }
        Ok(Versions { min, deprecated })
    }

    /// The versions served on `today`, oldest first.
    fn supported(&self, today: i64) -> String {
        let mut v: Vec<Version> = self
            .deprecated
            .iter()
            .filter(|(v, sunset, _)| *v >= self.min && today <= *sunset)
            .map(|d| d.0)
            .collect();
        v.push(CURRENT);
        v.sort();
        v.dedup();
        v.iter()
            .map(Version::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Decide for a request carrying `requested` (the header value), on UTC
    /// day `today` (days since the Unix epoch).
    pub fn negotiate(&self, requested: Option<&str>, today: i64) -> Negotiated {
        let mut headers = vec![(SUPPORTED_HEADER, self.supported(today))];
        let Some(raw) = requested else {
            headers.push((VERSION_HEADER, CURRENT.to_string()));
            return Negotiated::Serve(headers);
        };
        let refuse = |reason: &str, message: String, headers| {
            let body = json!({"error": {
                "code": "version_unsupported",
                "requested": raw,
                "min_supported": self.min.to_string(),
                "current": CURRENT.to_string(),
                "reason": reason,
                "message": message,
                "type": "invalid_request_error",
            }});
            Negotiated::Refuse(410, body, headers)
        };
        let Some(v) = Version::parse(raw) else {
            return refuse(
                "invalid",
                format!("Sluice-API-Version {raw:?} is not a version like 1.0"),
                headers,
            );
        };
        if v < self.min {
            return refuse(
                "below_min",
                format!(
                    "API version {v} is below the minimum supported {}",
                    self.min
                ),
                headers,
            );
        }
        if v > CURRENT {
            return refuse(
                "above_current",
                format!("API version {v} is newer than the current {CURRENT}"),
                headers,
            );
        }
        if let Some((_, sunset, text)) = self.deprecated.iter().find(|d| d.0 == v) {
            if today > *sunset {
                return refuse(
                    "past_sunset",
                    format!("API version {v} was sunset on {text}"),
                    headers,
                );
            }
            headers.push(("deprecation", "true".into()));
            headers.push(("sunset", http_date(*sunset)));
        } else if v != CURRENT {
            return refuse(
                "below_min",
                format!("API version {v} is not served; use {CURRENT}"),
                headers,
            );
        }
        headers.push((VERSION_HEADER, v.to_string()));
        Negotiated::Serve(headers)
    }
}

/// Negotiated headers as the `(&str, &str)` pairs response writers take.
pub fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    headers.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Today, as days since the Unix epoch (UTC).
pub fn today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs / 86_400) as i64
}

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Howard Hinnant's days-from-civil algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// IMF-fixdate at midnight UTC of `day`, as RFC 8594 wants for `Sunset`.
fn http_date(day: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(day);
    format!(
        "{}, {d:02} {} {y} 00:00:00 GMT",
        DAYS[day.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize]
    )
}

#[cfg(test)]
mod test {
    use super::*;

    fn versions() -> Versions {
        Versions::from_config(&ApiConfig {
            min_supported: "0.8".into(),
            deprecated: vec![
                Deprecated {
                    version: "0.9".into(),
                    sunset: "2027-06-01".into(),
                },
                Deprecated {
                    version: "0.8".into(),
                    sunset: "2026-01-01".into(),
                },
            ],
        })
        .unwrap()
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(
            http_date(parse_date("2027-06-01").unwrap()),
            "Tue, 01 Jun 2027 00:00:00 GMT"
        );
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn negotiates() {
        let v = versions();
        let today = parse_date("2026-11-23").unwrap();
        let Negotiated::Serve(h) = v.negotiate(None, today) else {
            panic!()
        };
        assert!(h.contains(&(VERSION_HEADER, "1.0".into())));
        assert!(
            h.contains(&(SUPPORTED_HEADER, "0.9, 1.0".into())),
            "0.8 is past its sunset"
        );
        let Negotiated::Serve(h) = v.negotiate(Some("0.9"), today) else {
            panic!()
        };
        assert!(h.contains(&("sunset", "Tue, 01 Jun 2027 00:00:00 GMT".into())));
        let Negotiated::Refuse(410, body, _) = v.negotiate(Some("0.8"), today) else {
            panic!()
        };
        assert_eq!(body["error"]["reason"], "past_sunset");
        let Negotiated::Refuse(410, body, _) = v.negotiate(Some("0.5"), today) else {
            panic!()
        };
        assert_eq!(body["error"]["reason"], "below_min");
        let Negotiated::Refuse(410, body, _) = v.negotiate(Some("2.0"), today) else {
            panic!()
        };
        assert_eq!(body["error"]["reason"], "above_current");
        // The sunset day itself is still served.
        let Negotiated::Serve(_) = v.negotiate(Some("0.9"), parse_date("2027-06-01").unwrap())
        else {
            panic!()
        };
    }
}
