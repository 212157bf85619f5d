//! What every response gets on its way out (applied by the outermost layer,
//! [`Observe`](crate::api::observe::Observe)): every error the framework produces on its own
//! (unknown route, wrong method, unparsable path or query, missing credentials) becomes
//! Grafana's JSON body, a 405 carries the `Allow` header listing the methods the path does
//! support, and the security headers are set. Also the `/api` layer ([`ApiRequests`]).

use std::sync::Arc;

use poem::http::{header, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::error::{error_response, ErrorBody};
use crate::api::routes::RouteTable;

fn canonical(status: StatusCode) -> (u16, &'static str) {
    match status.as_u16() {
        400 | 415 | 422 => (400, crate::api::body::BAD_REQUEST_DATA),
        401 => (401, "Unauthorized"),
        403 => (403, "Permission denied"),
        404 => (404, "Not found"),
        405 => (405, "Method not allowed"),
        411 | 413 => (413, "Request body too large"),
        s if s >= 500 => (500, "Internal Server Error"),
        s => (s, "bad request data"),
    }
}

/// A framework error (unknown route, wrong method, unparsable path or query, missing
/// credentials) as Grafana's JSON body; a 405 carries `Allow`. `path` is the request's.
pub fn grafana_error(err: poem::Error, path: &str, is_head: bool, routes: &RouteTable) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let method_not_allowed = err.is::<poem::error::MethodNotAllowedError>();
    let (status, msg) = canonical(err.status());
    if status >= 500 {
        tracing::error!(error = %err, path, "unhandled error");
    }
    let mut resp = error_response(status, &ErrorBody::message(msg));
    if method_not_allowed {
        if let Some(allow) = routes.allowed(path) {
            if let Ok(v) = allow.parse() {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
    }
    if is_head {
        resp.set_body(());
    }
    resp
}

/// The `/api` layer: accepts paths with one trailing slash, as Grafana's router does
/// (grafana-client creates service accounts with `POST /api/serviceaccounts/`), and hands a
/// rotated session token back as `Set-Cookie` (the auth extractor fills the
/// [`SessionRenewal`](crate::api::auth::SessionRenewal) slot put in each request).
pub struct ApiRequests<E> {
    inner: E,
    services: Arc<crate::service::Services>,
}

pub fn api_requests<E: Endpoint>(
    inner: E,
    services: Arc<crate::service::Services>,
) -> ApiRequests<E> {
    ApiRequests { inner, services }
}

impl<E: Endpoint> Endpoint for ApiRequests<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let path = req.uri().path();
        if path.len() > "/api/".len() && path.ends_with('/') {
            let trimmed = path.trim_end_matches('/').to_string();
            let new = match req.uri().query() {
                Some(q) => format!("{trimmed}?{q}"),
                None => trimmed,
            };
            if let Ok(uri) = new.parse() {
                *req.uri_mut() = uri;
            }
        }
        let slot = crate::api::auth::SessionRenewal::default();
        req.extensions_mut().insert(slot.clone());
        let mut resp = self.inner.call(req).await?.into_response();
        let renewed = slot.0.lock().take();
        if let Some(token) = renewed {
            let cookie = crate::api::auth::session_cookie(&self.services.settings, &token);
            if let Ok(v) = cookie.parse() {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        Ok(resp)
    }
}

/// The UI's policy: scripts and styles from the server only (style attributes allowed: the
/// UI sets a few), no plugins, no framing, requests to the server only.
const UI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";
/// Swagger UI's page is generated with its script inline.
const SWAGGER_CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
/// API answers are data, never documents to render.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// The security headers of every response: a Content-Security-Policy per kind of page
/// ([`csp_for`] the request's path), `X-Frame-Options: DENY`, `Referrer-Policy:
/// same-origin`, `X-Content-Type-Options: nosniff`. Set by the outermost layer, so errors
/// carry them too.
pub fn security_headers(resp: &mut Response, csp: &'static str) {
    use poem::http::{HeaderName, HeaderValue};
    // Names made once (a `&str` name is parsed again on every insert).
    const CSP: HeaderName = HeaderName::from_static("content-security-policy");
    const FRAME: HeaderName = HeaderName::from_static("x-frame-options");
    const REFERRER: HeaderName = HeaderName::from_static("referrer-policy");
    const NOSNIFF: HeaderName = HeaderName::from_static("x-content-type-options");
    let h = resp.headers_mut();
    h.insert(CSP, HeaderValue::from_static(csp));
    h.insert(FRAME, HeaderValue::from_static("DENY"));
    h.insert(REFERRER, HeaderValue::from_static("same-origin"));
    h.insert(NOSNIFF, HeaderValue::from_static("nosniff"));
}

pub fn csp_for(path: &str) -> &'static str {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|r| r.starts_with('/'))
    };
    if under("/swagger") {
        SWAGGER_CSP
    } else if under("/api") || path == "/openapi.json" || path == "/login" || path == "/logout" {
        API_CSP
    } else {
        UI_CSP
    }
}
