//! What every response gets on its way out (applied by the outermost layer,
//! [`Observe`](crate::api::observe::Observe)): every error the framework produces on its own
//! (unknown route, wrong method, unparsable path or query, missing credentials) becomes
//! Grafana's JSON body, a 405 carries the `Allow` header listing the methods the path does
//! support, and the security headers are set. Also the first split of every request
//! ([`Front`]).

use std::sync::Arc;

use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::http::{header, HeaderName, HeaderValue, StatusCode};
use poem::{Request, Response};

use crate::api::auth::SessionRenewal;

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

/// A handler's future, boxed once: the outermost layer's own future then holds a pointer
/// rather than every level's state (hyper moves that future whole on every request).
pub type Handling<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = poem::Result<Response>> + Send + 'a>>;

/// The first split of every request, and what API requests get on their way in and out:
/// - API paths (`/api` and below, and the top-level `/login`, `/logout`, `/healthz`,
///   `/readyz`) go straight to the API endpoint, the rest (the document, metrics, Swagger
///   UI, the admin UI) through `other`, a router. A prefix test instead of a router level
///   in front of the API spares each API request that level's URI rewrite, pattern
///   bookkeeping and boxed future.
/// - An API path may end in one slash, as Grafana's router allows (grafana-client creates
///   service accounts with `POST /api/serviceaccounts/`).
/// - A rotated session token goes back as `Set-Cookie`: a request with cookies gets a
///   [`SessionRenewal`] slot that the auth extractor fills.
pub struct Front {
    api: poem::Route,
    other: BoxEndpoint<'static>,
    services: Arc<crate::service::Services>,
}

/// A request on its way to its handler (see [`Front::route`]).
pub struct Routed<'a> {
    pub handling: Handling<'a>,
    pub renewal: Option<SessionRenewal>,
}

impl Front {
    pub fn new(
        api: poem::Route,
        other: BoxEndpoint<'static>,
        services: Arc<crate::service::Services>,
    ) -> Self {
        Self {
            api,
            other,
            services,
        }
    }

    /// Picks the endpoint and starts its handling; [`Front::finish`] completes the answer.
    pub fn route(&self, mut req: Request) -> Routed<'_> {
        if !is_api_path(req.uri().path()) {
            return Routed {
                handling: DynEndpoint::call(&*self.other, req),
                renewal: None,
            };
        }
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
        // Only a session cookie can be renewed: requests without cookies get no slot.
        let renewal = req.headers().contains_key(header::COOKIE).then(|| {
            let slot = SessionRenewal::default();
            req.extensions_mut().insert(slot.clone());
            slot
        });
        // What poem-openapi's query parameters are read from (its own endpoint, which
        // `api::router` replaces, adds it to every request).
        let query = match req.uri().query() {
            Some(q) if !q.is_empty() => req.params().unwrap_or_default(),
            _ => Vec::new(),
        };
        req.extensions_mut()
            .insert(poem_openapi::__private::UrlQuery(query));
        Routed {
            handling: Box::pin(poem::Endpoint::call(&self.api, req)),
            renewal,
        }
    }

    /// A renewed session's cookie on the answer.
    pub fn finish(&self, resp: &mut Response, renewal: Option<SessionRenewal>) {
        let Some(token) = renewal.and_then(|s| s.0.lock().take()) else {
            return;
        };
        let cookie = crate::api::auth::session_cookie(&self.services.settings, &token);
        if let Ok(v) = cookie.parse() {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// Whether `path` is served by the API endpoint (see [`Front`]).
pub fn is_api_path(path: &str) -> bool {
    path.strip_prefix("/api")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        || matches!(path, "/login" | "/logout" | "/healthz" | "/readyz")
}

/// The UI's policy: scripts and styles from the server only (style attributes allowed: the
/// UI sets a few), no plugins, no framing, requests to the server only.
const UI_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'",
);
/// Swagger UI's page is generated with its script inline.
const SWAGGER_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
);
/// API answers are data, never documents to render.
const API_CSP: HeaderValue = HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'");

/// The security headers of every response: a Content-Security-Policy per kind of page
/// ([`csp_for`] the request's path), `X-Frame-Options: DENY`, `Referrer-Policy:
/// same-origin`, `X-Content-Type-Options: nosniff`. Set by the outermost layer, so errors
/// carry them too.
pub fn security_headers(resp: &mut Response, csp: HeaderValue) {
    // Names made once (a `&str` name is parsed again on every insert).
    const CSP: HeaderName = HeaderName::from_static("content-security-policy");
    const FRAME: HeaderName = HeaderName::from_static("x-frame-options");
    const REFERRER: HeaderName = HeaderName::from_static("referrer-policy");
    const NOSNIFF: HeaderName = HeaderName::from_static("x-content-type-options");
    let h = resp.headers_mut();
    // Values made once too: `from_static` checks its text byte by byte when it runs.
    const DENY: HeaderValue = HeaderValue::from_static("DENY");
    const SAME_ORIGIN: HeaderValue = HeaderValue::from_static("same-origin");
    const NOSNIFF_VALUE: HeaderValue = HeaderValue::from_static("nosniff");
    h.insert(CSP, csp);
    h.insert(FRAME, DENY);
    h.insert(REFERRER, SAME_ORIGIN);
    h.insert(NOSNIFF, NOSNIFF_VALUE);
}

pub fn csp_for(path: &str) -> HeaderValue {
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

#[cfg(test)]
mod tests {
    use super::is_api_path;

    #[test]
    fn api_paths_are_api_and_its_top_level_routes_only() {
        for p in [
            "/api",
            "/api/",
            "/api/health",
            "/api/users/1",
            "/login",
            "/logout",
        ] {
            assert!(is_api_path(p), "{p}");
        }
        for p in ["/healthz", "/readyz"] {
            assert!(is_api_path(p), "{p}");
        }
        for p in [
            "/",
            "/apis",
            "/apix/health",
            "/login/x",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(!is_api_path(p), "{p}");
        }
        assert!(!is_api_path("/swagger/"));
    }
}
