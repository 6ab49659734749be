//! The admin listener: health, metrics, plugin state and reload, keys,
//! pricing, budgets and the event log. Everything but `/healthz`, `/readyz`
//! and `/metrics` needs `Authorization: Bearer <admin token>`.

pub mod analytics;
pub mod gdpr;
mod ledger;
mod routing;
pub mod token;
pub mod traces;

use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::protocols::http::ServerSession;
use serde_json::json;

use crate::http::app::{Handler, read_body, respond};
use crate::metrics;
use crate::state::Gateway;
use crate::versioning::{Negotiated, VERSION_HEADER, borrowed, today};

pub struct Admin {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl Handler for Admin {
    async fn handle(&self, session: &mut ServerSession) -> pingora_error::Result<()> {
        let method = session.req_header().method.as_str().to_owned();
        let path = session.req_header().uri.path().to_owned();
        // Admin bodies are small JSON documents.
        let body = match read_body(session, 64 << 10).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                let body = json!({"error": {"message": "admin request bodies are limited to 64 KiB", "type": "invalid_request_error", "param": null, "code": "request_too_large"}});
                return json_response(session, 413, &body, &[]).await;
            }
            Err(e) => return Err(e),
        };
        let requested = session
            .req_header()
            .headers
            .get(VERSION_HEADER)
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        let headers = match self
            .gateway
            .versions
            .negotiate(requested.as_deref(), today())
        {
            Negotiated::Serve(h) => h,
            Negotiated::Refuse(status, body, h) => {
                return json_response(session, status, &body, &h).await;
            }
        };
        let h = &headers;
        let open =
            matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") || method == "OPTIONS";
        if !open
            && !token::authorized(
                session
                    .req_header()
                    .headers
                    .get("authorization")
                    .map(|v| v.as_bytes()),
                &self.gateway.admin_token,
            )
        {
            let body = json!({"error": {"message": "admin routes need `Authorization: Bearer <token>`; the token is in <data-dir>/admin.token", "type": "authentication_error", "param": null, "code": "admin_unauthorized"}});
            return json_response(session, 401, &body, h).await;
        }
        if let Some(reply) = crate::keys::api::handle(&self.gateway.keys, &method, &path, &body) {
            // Key changes are rare: their audit events are committed before
            // the caller hears back.
            if !reply.events.is_empty() {
                for ev in reply.events {
                    self.gateway.events.emit(ev).await;
                }
                self.gateway.events.flush().await;
            }
            return json_response(session, reply.status, &reply.body, h).await;
        }
        if let Some((status, body)) = ledger::handle(
            &self.gateway,
            &method,
            &path,
            session.req_header().uri.query(),
        ) {
            return json_response(session, status, &body, h).await;
        }
        if let Some((status, body)) = routing::handle(&self.gateway, &method, &path, &body) {
            return json_response(session, status, &body, h).await;
        }
        let query = session.req_header().uri.query().map(str::to_owned);
        if let Some((status, body)) =
            traces::handle(&self.gateway, &method, &path, query.as_deref(), &body).await
        {
            return json_response(session, status, &body, h).await;
        }
        if path.starts_with("/analytics/") {
            return self
                .analytics(session, &method, &path, query.as_deref(), h)
                .await;
        }
        match (method.as_str(), path.as_str()) {
            ("OPTIONS", _) => respond(session, 204, "text/plain", "", &borrowed(h)).await,
            ("GET", "/healthz") => json_response(session, 200, &json!({"status": "ok"}), h).await,
            ("GET", "/readyz") => {
                let s = self.gateway.snapshot();
                let data_dir = std::fs::canonicalize(&self.gateway.config.data.dir).ok();
                let body = json!({"status": "ready", "generation": s.generation, "pid": std::process::id(), "data_dir": data_dir});
                json_response(session, 200, &body, h).await
            }
            ("GET", "/metrics") => {
                let text = metrics::get().render();
                respond(
                    session,
                    200,
                    "text/plain; version=0.0.4",
                    text,
                    &borrowed(h),
                )
                .await
            }
            ("GET", "/admin/plugins") => json_response(session, 200, &self.plugins(), h).await,
            ("POST", "/admin/reload") => {
                let report = self.gateway.reload("admin").await;
                let status = if report.ok { 200 } else { 422 };
                json_response(session, status, &json!(&*report), h).await
            }
            _ => not_found(session, &method, &path, h).await,
        }
    }
}

impl Admin {
    /// `/analytics/*`: loopback callers only, whatever the admin listener
    /// binds to (these answer questions about people).
    async fn analytics(
        &self,
        session: &mut ServerSession,
        method: &str,
        path: &str,
        q: Option<&str>,
        h: &[(&'static str, String)],
    ) -> pingora_error::Result<()> {
        let loopback = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .is_some_and(|a| a.ip().is_loopback());
        if !loopback {
            let body = json!({"error": {"message": "analytics routes answer loopback callers only", "type": "permission_error", "param": null, "code": "loopback_only"}});
            return json_response(session, 403, &body, h).await;
        }
        let gw = &self.gateway;
        let window = match analytics::Window::parse(q) {
            Ok(w) => w,
            Err(e) => return json_response(session, 400, &invalid(e), h).await,
        };
        if let Some(rest) = path.strip_prefix("/analytics/user/") {
            let (user, action) = rest.rsplit_once('/').unwrap_or((rest, ""));
            if !gdpr::valid_user_id(user) {
                return json_response(session, 400, &gdpr::invalid_user_id(user), h).await;
            }
            return match (method, action) {
                ("GET", "export") => match gdpr::export(gw, session, user, &window, h).await? {
                    Ok(_) => Ok(()),
                    Err(e) => json_response(session, 500, &store_error(e), h).await,
                },
                ("POST", "forget") => {
                    let dry =
                        crate::http::app::query_param(q, "dry_run").as_deref() == Some("true");
                    match gdpr::forget(gw, user, dry).await {
                        Ok(v) => json_response(session, 200, &v, h).await,
                        Err(e) => json_response(session, 500, &store_error(e), h).await,
                    }
                }
                _ => not_found(session, method, path, h).await,
            };
        }
        if method != "GET" {
            return not_found(session, method, path, h).await;
        }
        let answer = match path {
            "/analytics/cost" => analytics::cost(
                gw,
                &window,
                &crate::http::app::query_param(q, "group_by").unwrap_or_else(|| "model".into()),
            )
            .map_err(|e| (400, e)),
            "/analytics/by_key" => analytics::by_key(gw, &window).map_err(|e| (500, e)),
            "/analytics/by_user" => analytics::by_user(gw, &window).map_err(|e| (500, e)),
            "/analytics/by_team" => analytics::by_team(gw, &window).map_err(|e| (500, e)),
            "/analytics/quality" => analytics::quality(gw, &window).map_err(|e| (500, e)),
            "/analytics/savings" => analytics::savings(gw, &window).map_err(|e| (500, e)),
            _ => return not_found(session, method, path, h).await,
        };
        match answer {
            Ok(mut v) => {
                v["pricing_version"] = json!(gw.snapshot().pricing.version);
                json_response(session, 200, &v, h).await
            }
            Err((400, e)) => json_response(session, 400, &invalid(e), h).await,
            Err((_, e)) => json_response(session, 500, &store_error(e), h).await,
        }
    }

    fn plugins(&self) -> serde_json::Value {
        let snapshot = self.gateway.snapshot();
        let set = &snapshot.plugins;
        let mut plugins: Vec<serde_json::Value> = set
            .all
            .iter()
            .map(|p| {
                let file = p.meta.file.display().to_string();
                let status = set.files.iter().find(|f| f.file == file);
                let health = p.health();
                // An open breaker shows as `disabled` until its probe;
                // `half_open` while the probe runs.
                let state = match health.state {
                    _ if !p.binding.enabled => "unbound",
                    "open" => "disabled",
                    "half_open" => "half_open",
                    _ => status.map_or("loaded", |s| s.state),
                };
                let last_error = status
                    .and_then(|s| s.error.clone())
                    .or_else(|| p.last_error());
                json!({
                    "name": p.name(),
                    "version": p.meta.info.version,
                    "kind": p.kind().as_str(),
                    "description": p.meta.info.description,
                    "capabilities": p.meta.info.capabilities,
                    "file": file,
                    "sha256": p.meta.sha256,
                    "state": state,
                    "last_error": last_error,
                    "order": p.order(),
                    "fail_mode": p.binding.fail_mode,
                    "deadline_ms": p.binding.deadline.as_millis() as u64,
                    "memory_limit_bytes": p.binding.memory_bytes,
                    "breaker": health,
                })
            })
            .collect();
        // Files that never loaded have no plugin to show, only their error.
        for f in set.files.iter().filter(|f| f.state == "failed") {
            plugins.push(json!({
                "name": null, "version": null, "kind": null, "file": f.file,
                "sha256": f.sha256, "state": f.state, "last_error": f.error,
            }));
        }
        json!({
            "generation": snapshot.generation,
            "policy_version": snapshot.policies.version,
            "last_reload": &*self.gateway.last_reload(),
            "plugins": plugins,
        })
    }
}

fn invalid(message: String) -> serde_json::Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": "invalid_request"}})
}

fn store_error(message: String) -> serde_json::Value {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": "trace_store_error"}})
}

async fn not_found(
    session: &mut ServerSession,
    method: &str,
    path: &str,
    h: &[(&'static str, String)],
) -> pingora_error::Result<()> {
    let body = json!({"error": {"message": format!("no admin route for {method} {path}"), "type": "invalid_request_error", "param": null, "code": "not_found"}});
    json_response(session, 404, &body, h).await
}

async fn json_response(
    session: &mut ServerSession,
    status: u16,
    body: &serde_json::Value,
    headers: &[(&'static str, String)],
) -> pingora_error::Result<()> {
    let bytes = serde_json::to_vec_pretty(body).expect("JSON value serializes");
    respond(
        session,
        status,
        "application/json",
        bytes,
        &borrowed(headers),
    )
    .await
}
