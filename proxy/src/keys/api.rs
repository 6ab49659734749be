//! The key routes of the admin API, as one function over a [`Keys`], so
//! the admin listener and the CLI (when no proxy holds the files) run the
//! very same code.
//!
//! | route | does |
//! |---|---|
//! | `GET /admin/keys` | list |
//! | `POST /admin/keys` | issue (JSON body: [`IssueSpec`]); the secret is in this answer only |
//! | `GET /admin/keys/{id}` | show |
//! | `POST /admin/keys/{id}/rotate` | rotate (`{"grace_period": "24h"}`) |
//! | `POST /admin/keys/{id}/revoke` | revoke |
//! | `POST /admin/keys/sweep` | revoke rotated keys whose grace ended |

use serde::Deserialize;
use serde_json::{Value, json};

use super::{DEFAULT_GRACE, IssueSpec, Issued, KeyError, Keys};
use crate::clock;
use crate::events::EventBody;

pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Audit events the change produced, for the caller to record.
    pub events: Vec<EventBody>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateSpec {
    grace_period: Option<String>,
}

fn ok(status: u16, body: Value, events: Vec<EventBody>) -> Reply {
    Reply {
        status,
        body,
        events,
    }
}

fn error(status: u16, code: &str, message: String) -> Reply {
    ok(
        status,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}),
        Vec::new(),
    )
}

fn failed(e: KeyError) -> Reply {
    let code = match &e {
        KeyError::Invalid(_) => "invalid_request",
        KeyError::NotFound(_) => "key_not_found",
        KeyError::Conflict(_) => "conflict",
        KeyError::Store(_) => "keystore_error",
    };
    error(e.status(), code, e.to_string())
}

fn parse<'a, T: Deserialize<'a> + Default>(body: &'a [u8]) -> Result<T, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| error(400, "invalid_request", format!("invalid JSON body: {e}")))
}

/// The new key with its secret (shown once).
fn issued(i: &Issued) -> Value {
    let mut v = i.key.to_json(clock::now_ms());
    v["secret"] = json!(i.secret);
    v
}

/// Serve `method path` if it is a key route.
pub fn handle(keys: &Keys, method: &str, path: &str, body: &[u8]) -> Option<Reply> {
    let rest = path.strip_prefix("/admin/keys")?;
    let now = clock::now_ms();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let reply = match (method, segments.as_slice()) {
        ("GET", []) => match keys.list() {
            Ok(list) => ok(
                200,
                json!({"keys": list.iter().map(|k| k.to_json(now)).collect::<Vec<_>>()}),
                Vec::new(),
            ),
            Err(e) => failed(e),
        },
        ("POST", []) => match parse::<IssueSpec>(body) {
            Ok(spec) => match keys.issue(&spec) {
                Ok((i, events)) => ok(201, issued(&i), events),
                Err(e) => failed(e),
            },
            Err(r) => r,
        },
        ("POST", ["sweep"]) => match keys.sweep() {
            Ok((swept, events)) => ok(
                200,
                json!({"swept": swept.iter().map(|k| k.to_json(now)).collect::<Vec<_>>()}),
                events,
            ),
            Err(e) => failed(e),
        },
        ("GET", [id]) => match keys.get(id) {
            Ok(k) => ok(200, k.to_json(now), Vec::new()),
            Err(e) => failed(e),
        },
        ("POST", [id, "rotate"]) => match parse::<RotateSpec>(body) {
            Ok(spec) => {
                let grace = match spec.grace_period.as_deref().map(clock::parse_duration) {
                    None => Ok(DEFAULT_GRACE),
                    Some(r) => r,
                };
                match grace {
                    Err(e) => error(400, "invalid_request", e),
                    Ok(grace) => match keys.rotate(id, grace) {
                        Ok((i, events)) => {
                            let old = keys.get(id).map(|k| k.to_json(now)).unwrap_or(Value::Null);
                            let mut v = issued(&i);
                            v["rotated"] = old;
                            ok(201, v, events)
                        }
                        Err(e) => failed(e),
                    },
                }
            }
            Err(r) => r,
        },
        ("POST", [id, "revoke"]) => match keys.revoke(id) {
            Ok((k, events)) => ok(200, k.to_json(now), events),
            Err(e) => failed(e),
        },
        _ => error(
            404,
            "not_found",
            format!("no key route for {method} {path}"),
        ),
    };
    Some(reply)
}
