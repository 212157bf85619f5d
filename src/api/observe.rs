//! Request observation, the outermost layer: the `X-Request-Id` (the client's, when it sent
//! a sane one, else a new one) on every response, one log line per request, and Grafana's
//! request metrics labelled by route template. Also `GET /metrics` itself.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderValue, Method, StatusCode};
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::error::{error_response, ErrorBody};
use crate::api::middleware::{self, AllowTable};
use crate::domain::audit::AuditEntry;
use crate::service::metrics::{self, HttpLabels};
use crate::service::Services;

pub const REQUEST_ID: &str = "x-request-id";

pub struct Observe<E> {
    inner: E,
    services: Arc<Services>,
    templates: RouteTemplates,
    allow: AllowTable,
}

/// The outermost layer, one for everything a response gets on its way out (fewer nested
/// layers, less moving of request futures): the request id, the audit scope, Grafana's
/// error bodies, the security headers, the metrics and the log line.
pub fn observe<E: Endpoint>(
    inner: E,
    services: Arc<Services>,
    templates: RouteTemplates,
    allow: AllowTable,
) -> Observe<E> {
    Observe {
        inner,
        services,
        templates,
        allow,
    }
}

/// Grafana's `handler` label for poem's matched pattern: poem-openapi registers
/// `/api/users/:param0`; the label is the document's template with its names,
/// `/api/users/:id`. One hash lookup per request.
/// A template's segments (`None` for a parameter) and its label.
type Template = (Vec<Option<String>>, Arc<str>);

#[derive(Default)]
pub struct RouteTemplates {
    by_pattern: std::collections::HashMap<String, Arc<str>>,
    /// Every template split in segments (`None` for a parameter), by segment count, to
    /// name the route of a change before it is routed (its audit entry needs it).
    segments: std::collections::HashMap<usize, Vec<Template>>,
    /// The success status each operation documents (`DELETE /api/licensing/token`: 202):
    /// what the audit event of a committed change says, written before the answer exists.
    /// By route, then method.
    success: std::collections::HashMap<Arc<str>, Vec<(String, u16)>>,
}

impl RouteTemplates {
    pub fn from_spec(spec_json: &str) -> Self {
        let mut map = std::collections::HashMap::new();
        let mut segments: std::collections::HashMap<usize, Vec<Template>> = Default::default();
        let mut success = std::collections::HashMap::new();
        let doc: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        for (path, ops) in doc
            .get("paths")
            .and_then(|p| p.as_object())
            .into_iter()
            .flat_map(|p| p.iter())
        {
            let (mut poem, mut label, mut n) = (String::new(), String::new(), 0);
            for seg in path.split('/').skip(1) {
                match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        poem.push_str(&format!("/:param{n}"));
                        label.push_str(&format!("/:{name}"));
                        n += 1;
                    }
                    None => {
                        poem.push('/');
                        poem.push_str(seg);
                        label.push('/');
                        label.push_str(seg);
                    }
                }
            }
            let label: Arc<str> = label.into();
            for (method, op) in ops.as_object().into_iter().flatten() {
                let ok = op
                    .get("responses")
                    .and_then(|r| r.as_object())
                    .into_iter()
                    .flat_map(|r| r.keys())
                    .filter_map(|code| code.parse::<u16>().ok())
                    .filter(|code| (200..300).contains(code))
                    .min();
                if let Some(code) = ok {
                    success
                        .entry(label.clone())
                        .or_insert_with(Vec::new)
                        .push((method.to_ascii_uppercase(), code));
                }
            }
            let segs: Vec<Option<String>> = path
                .split('/')
                .skip(1)
                .map(|seg| (!seg.starts_with('{')).then(|| seg.to_string()))
                .collect();
            segments
                .entry(segs.len())
                .or_default()
                .push((segs, label.clone()));
            // Routes mounted with `Route::at` outside `/api` (`/login`, `/healthz`) see the
            // mount point prefixed to the inner pattern.
            if !path.starts_with("/api/") {
                map.insert(format!("{poem}{poem}"), label.clone());
            }
            map.insert(poem, label);
        }
        Self {
            by_pattern: map,
            segments,
            success,
        }
    }

    /// The success status `method` on `route` documents (200 when it documents none).
    pub fn success_status(&self, method: &str, route: &str) -> u16 {
        self.success
            .get(route)
            .and_then(|by_method| by_method.iter().find(|(m, _)| m == method))
            .map_or(200, |(_, code)| *code)
    }

    /// The template a path matches (the one with the most fixed segments), and the target
    /// its last parameter names: (`/api/admin/users/:id`, `user`, `7`) for
    /// `/api/admin/users/7/password`.
    pub fn match_path(&self, path: &str) -> Option<(Arc<str>, String, String)> {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        let (segs, label) = self
            .segments
            .get(&parts.len())?
            .iter()
            .filter(|(segs, _)| {
                segs.iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
            })
            .max_by_key(|(segs, _)| segs.iter().filter(|s| s.is_some()).count())?;
        let last_param = segs.iter().rposition(Option::is_none);
        let (kind, id) = match last_param {
            Some(i) => {
                let kind = i
                    .checked_sub(1)
                    .and_then(|k| segs[k].as_deref())
                    .unwrap_or("");
                (
                    kind.strip_suffix('s').unwrap_or(kind).to_string(),
                    parts[i].to_string(),
                )
            }
            None => (String::new(), String::new()),
        };
        Some((label.clone(), kind, id))
    }

    fn label(&self, resp: &Response) -> String {
        match resp.data::<PathPattern>() {
            Some(p) => self
                .by_pattern
                .get(p.0.as_ref())
                .map_or_else(|| p.0.to_string(), |l| l.to_string()),
            None => "unknown".to_string(),
        }
    }
}

/// A client's request id is kept when it is 1 to 128 visible ASCII characters.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(new_request_id, str::to_string)
}

/// A fresh request id: a random per-process prefix and a counter (unique, and no system
/// call per request; it correlates log lines and events, it guards nothing).
fn new_request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let prefix = *PREFIX.get_or_init(|| u32::from_be_bytes(crate::crypto::random::bytes::<4>()));
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix:08x}{n:08x}")
}

impl<E: Endpoint> Endpoint for Observe<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let _in_flight = self.services.requests.start();
        let id = request_id(&req);
        let method = req.method().clone();
        let csp = middleware::csp_for(req.uri().path());
        // For the `Allow` header of a 405 and the log of a 500 (a shared-bytes clone).
        let uri = req.uri().clone();
        let (result, audited) = if self.services.audit.enabled() {
            let armed = changes_state(&req);
            let (entry, client) = self.audit_entry(&req, &id, method.as_str(), armed);
            let inner = &self.inner;
            crate::domain::audit::scope(entry, armed, async move {
                let result = inner.call(req).await.map(IntoResponse::into_response);
                let written = crate::domain::audit::written();
                let entry = crate::domain::audit::current();
                (result, Some((armed, written, entry, client)))
            })
            .await
        } else {
            let result = self.inner.call(req).await.map(IntoResponse::into_response);
            (result, None)
        };
        let mut resp = result.unwrap_or_else(|e| {
            middleware::grafana_error(e, uri.path(), method == Method::HEAD, &self.allow)
        });
        middleware::security_headers(&mut resp, csp);
        let elapsed = started.elapsed();
        let labels = HttpLabels {
            handler: self.templates.label(&resp),
            status_code: resp.status().as_u16(),
            method: method.as_str().to_string(),
        };
        if let Some((armed, written, Some(mut entry), client)) = audited {
            if !armed {
                // A read's entry is completed only now, if it is recorded at all.
                client.fill(&mut entry, &id, method.as_str());
            }
            self.finish_audit(armed, written, entry, &labels).await;
        }
        self.services
            .requests
            .observe(&labels, elapsed.as_secs_f64());
        tracing::info!(
            target: "tollgate::request",
            method = %labels.method,
            handler = %labels.handler,
            status = labels.status_code,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = %id,
            "request"
        );
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        Ok(resp)
    }
}

/// Who sent a request, kept cheaply (an address, a shared header value) until an audit
/// entry needs it as text.
struct Client {
    addr: Option<std::net::IpAddr>,
    user_agent: Option<HeaderValue>,
}

impl Client {
    fn of(req: &Request, services: &Services) -> Self {
        Self {
            addr: crate::api::auth::client_addr(req, Some(&services.settings.trusted_proxies)),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
        }
    }

    fn fill(&self, entry: &mut AuditEntry, request_id: &str, method: &str) {
        entry.client = self.addr.map(|a| a.to_string()).unwrap_or_default();
        entry.user_agent = self
            .user_agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect())
            .unwrap_or_default();
        request_id.clone_into(&mut entry.request_id);
        method.clone_into(&mut entry.method);
    }
}

/// Whether a request changes state: every method but GET, HEAD and OPTIONS, and
/// Grafana's `GET /logout` (it revokes the session).
fn changes_state(req: &Request) -> bool {
    use poem::http::Method;
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == "/logout"
}

impl<E> Observe<E> {
    /// What the request's audit event says before the handler runs; auth, the permission
    /// check and the body reader add the actor, the action and the field names. A change's
    /// entry is complete here (the store writes it with the change); a read's is completed
    /// from the [`Client`] after routing, and only if it is denied.
    fn audit_entry(
        &self,
        req: &Request,
        request_id: &str,
        method: &str,
        armed: bool,
    ) -> (AuditEntry, Client) {
        let client = Client::of(req, &self.services);
        let mut entry = AuditEntry {
            at: self.services.clock.now_ms(),
            ..AuditEntry::default()
        };
        if armed {
            if let Some((route, kind, id)) = self.templates.match_path(req.uri().path()) {
                entry.status = self.templates.success_status(method, &route);
                entry.route = route.to_string();
                entry.target_kind = kind;
                entry.target_id = id;
            } else {
                entry.status = 200;
            }
            client.fill(&mut entry, request_id, method);
        }
        (entry, client)
    }

    /// After the answer: a denial (401, 403) and a change that wrote nothing to the store
    /// get an event of their own; a change that committed already has one.
    async fn finish_audit(
        &self,
        armed: bool,
        written: bool,
        mut entry: AuditEntry,
        labels: &HttpLabels,
    ) {
        let status = labels.status_code;
        // A 401 to a request that carried no credentials at all is "sign in first", not a
        // refused identity: not recorded (every signed-out page load would be one).
        let anonymous = status == 401 && entry.actor.auth_method.is_empty();
        let denied = (status == 401 && !anonymous) || status == 403;
        let unrecorded_change = armed && !written && (200..300).contains(&status);
        if written {
            self.services.audit.changed();
        }
        if !(denied || unrecorded_change) {
            return;
        }
        entry.status = status;
        if entry.route.is_empty() {
            entry.route.clone_from(&labels.handler);
        }
        self.services.audit.record(entry).await;
    }
}

/// `GET /metrics`: 404 when `[metrics] enabled = false`; Basic auth when configured.
pub async fn metrics_endpoint(services: &Services, req: &Request) -> Response {
    let m = &services.settings.metrics;
    if !m.enabled {
        return error_response(404, &ErrorBody::message("Not found"));
    }
    if let Some((user, password)) = &m.basic_auth {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(crate::api::auth::decode_basic);
        let ok = given.is_some_and(|(u, p)| {
            crate::crypto::ct_eq(u.as_bytes(), user.as_bytes())
                & crate::crypto::ct_eq(p.as_bytes(), password.as_bytes())
        });
        if !ok {
            return Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"Authorization Required\"",
                )
                .body("Unauthorized");
        }
    }
    match metrics::scrape(services).await {
        Ok(text) => Response::builder()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "metrics scrape failed");
            error_response(500, &ErrorBody::message("Internal Server Error"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::RouteTemplates;

    const SPEC: &str = r#"{"paths": {
        "/api/users/{id}": {}, "/api/users/search": {}, "/login": {},
        "/api/admin/users/{id}/password": {}, "/api/orgs/{org_id}/users/{user_id}": {}
    }}"#;

    fn matched(path: &str) -> Option<(String, String, String)> {
        RouteTemplates::from_spec(SPEC)
            .match_path(path)
            .map(|(r, k, i)| (r.to_string(), k, i))
    }

    #[test]
    fn a_path_names_its_template_and_target() {
        let m = |r: &str, k: &str, i: &str| Some((r.to_string(), k.to_string(), i.to_string()));
        assert_eq!(matched("/api/users/7"), m("/api/users/:id", "user", "7"));
        // A fixed segment wins over a parameter.
        assert_eq!(matched("/api/users/search"), m("/api/users/search", "", ""));
        assert_eq!(
            matched("/api/admin/users/3/password"),
            m("/api/admin/users/:id/password", "user", "3")
        );
        // The last parameter is the target.
        assert_eq!(
            matched("/api/orgs/2/users/9"),
            m("/api/orgs/:org_id/users/:user_id", "user", "9")
        );
        assert_eq!(matched("/login"), m("/login", "", ""));
        assert_eq!(matched("/api/users/7/"), m("/api/users/:id", "user", "7"));
        assert_eq!(matched("/api/nothing/here"), None);
    }
}
