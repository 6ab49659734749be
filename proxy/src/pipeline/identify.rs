//! The identify stage: who is calling. A gateway key comes as
//! `Authorization: Bearer <secret>` or `x-api-key: <secret>`; it is hashed
//! and looked up in the in-memory index (no disk, no write). Refusals are
//! 401 in the caller's envelope, recorded as `gateway.auth_failed` with a
//! short hash prefix, never the secret.

use pingora_proxy::Session;
use serde_json::json;

use super::{Failure, RequestCtx};
use crate::api::ApiError;
use crate::clock;
use crate::events::EventBody;
use crate::keys::{self, GatewayKey, Refusal};
use crate::metrics;
use crate::plugins::{Caller, Tier};
use crate::state::Gateway;

/// The secret a request presents, if any.
fn credential(session: &Session) -> Option<&str> {
    let h = &session.req_header().headers;
    if let Some(v) = h.get("authorization").and_then(|v| v.to_str().ok()) {
        let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v, ""));
        if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
            return Some(rest.trim());
        }
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

pub async fn caller(gw: &Gateway, session: &Session, ctx: &mut RequestCtx) -> Result<(), Failure> {
    let Some(secret) = credential(session) else {
        if !gw.config.auth.required {
            return Ok(());
        }
        refused(gw, ctx, "missing", None, None).await;
        return Err(ApiError::new(
            401,
            "missing_api_key",
            "no gateway key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`",
        )
        .into());
    };
    let hash = keys::hash_secret(secret);
    let prefix = hex::encode(&hash[..4]);
    let now = clock::now_ms();
    let found = gw.keys.index().authenticate(&hash, now);
    // With keys optional, SDKs still send something as their API key: what
    // is not a valid gateway key is served unkeyed.
    if found.is_err() && !gw.config.auth.required {
        return Ok(());
    }
    match found {
        Ok(key) => {
            ctx.caller = Some(Caller {
                key_id: key.id.clone(),
                user_id: key.user_id.clone(),
                team_id: key.team_id.clone(),
                workspace: key.workspace.clone(),
                tier: key.customer_tier.map(|t| match t {
                    keys::CustomerTier::Trial => Tier::Trial,
                    keys::CustomerTier::Paid => Tier::Paid,
                    keys::CustomerTier::Internal => Tier::Internal,
                }),
            });
            ctx.key = Some(key);
            Ok(())
        }
        Err(Refusal::Invalid) => {
            refused(gw, ctx, "invalid", Some(prefix), None).await;
            Err(ApiError::new(401, "invalid_api_key", "the gateway key is not valid").into())
        }
        Err(Refusal::Revoked(key)) => {
            let at = key.revoked_at_ms();
            Err(ended(
                gw,
                ctx,
                prefix,
                &key,
                ("key_revoked", "has been revoked", "revoked_at"),
                at,
            )
            .await)
        }
        Err(Refusal::Expired(key)) => {
            let at = key.expires_ms;
            Err(ended(
                gw,
                ctx,
                prefix,
                &key,
                ("key_expired", "has expired", "expired_at"),
                at,
            )
            .await)
        }
    }
}

/// A known key that may no longer be used: 401 naming it and since when.
async fn ended(
    gw: &Gateway,
    ctx: &RequestCtx,
    prefix: String,
    key: &GatewayKey,
    (code, what, field): (&'static str, &str, &'static str),
    at_ms: Option<u64>,
) -> Failure {
    refused(
        gw,
        ctx,
        "revoked-or-expired",
        Some(prefix),
        Some(key.id.clone()),
    )
    .await;
    ApiError::new(401, code, format!("gateway key {} {what}", key.id))
        .with_field("key_id", key.id.clone())
        .with_field(field, json!(at_ms.map(clock::rfc3339)))
        .into()
}

async fn refused(
    gw: &Gateway,
    ctx: &RequestCtx,
    reason: &'static str,
    token_hash_prefix: Option<String>,
    gateway_key_id: Option<String>,
) {
    metrics::get()
        .auth_failures
        .with_label_values(&[reason])
        .inc();
    gw.events
        .emit(EventBody::AuthFailed {
            reason: reason.to_owned(),
            inbound_shape: ctx.shape.as_str().to_owned(),
            token_hash_prefix,
            gateway_key_id,
        })
        .await;
}
