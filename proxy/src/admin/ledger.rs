//! Read-only views of money: the price table, budget usage of a scope, the
//! event log and the usage records.
//!
//! | route | shows |
//! |---|---|
//! | `GET /admin/pricing` | the price table in effect and its version |
//! | `GET /admin/budgets/{kind:identity}` | spent and held today and this month |
//! | `GET /admin/events?type=a,b&after=ID&limit=N` | events in commit order |
//! | `GET /admin/usage?after=POS&limit=N` | usage records in commit order |

use serde_json::{Value, json};

use crate::budget::Usage;
use crate::clock;
use crate::events::{EventFilter, store};
use crate::state::Gateway;

fn query<'a>(q: Option<&'a str>, name: &str) -> Option<&'a str> {
    q?.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn number(q: Option<&str>, name: &str, default: u64) -> u64 {
    query(q, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "spent_usd": u.spent_usd, "held_usd": u.held_usd,
        "spent_tokens": u.spent_tokens, "held_tokens": u.held_tokens,
    })
}

fn failed(e: String) -> (u16, Value) {
    (
        500,
        json!({"error": {"message": e, "type": "server_error", "param": null, "code": "event_log_error"}}),
    )
}

pub fn handle(gw: &Gateway, method: &str, path: &str, q: Option<&str>) -> Option<(u16, Value)> {
    if method != "GET" {
        return None;
    }
    if path == "/admin/pricing" {
        return Some((200, gw.snapshot().pricing.to_json()));
    }
    if let Some(scope) = path.strip_prefix("/admin/budgets/") {
        // A rotated key spends under the first key of its chain.
        let counted = match scope.strip_prefix("key:").map(|id| gw.keys.get(id)) {
            Some(Ok(k)) => format!("key:{}", k.budget_id),
            _ => scope.to_owned(),
        };
        let r = gw.budgets.remaining(&counted, clock::now_ms());
        return Some((
            200,
            json!({"scope": scope, "counted_as": counted, "daily": usage_json(&r.daily), "monthly": usage_json(&r.monthly)}),
        ));
    }
    let limit = number(q, "limit", 1000).clamp(1, 100_000) as usize;
    let after = number(q, "after", 0);
    match path {
        "/admin/events" => {
            let filter = EventFilter {
                types: crate::http::app::list_param(q, "type"),
                after,
                limit,
            };
            Some(match store::events(gw.events.db(), &filter) {
                Ok(events) => (200, json!({"events": events})),
                Err(e) => failed(e),
            })
        }
        "/admin/usage" => Some(match store::usage(gw.events.db(), after, limit) {
            Ok(rows) => {
                let next = rows.last().map_or(after, |r| r.0);
                let records: Vec<_> = rows.into_iter().map(|r| r.1).collect();
                (200, json!({"records": records, "next": next}))
            }
            Err(e) => failed(e),
        }),
        _ => None,
    }
}
