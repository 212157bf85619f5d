//! Request observation, the outermost layer: the `X-Request-Id` (the client's, when it sent
//! a sane one, else a new one) on every response, one log line per request, and Grafana's
//! request metrics labelled by route template. Also `GET /metrics` itself.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderValue, StatusCode};
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::api::error::{error_response, ErrorBody};
use crate::service::metrics::{self, HttpLabels};
use crate::service::Services;

pub const REQUEST_ID: &str = "x-request-id";

pub struct Observe<E> {
    inner: E,
    services: Arc<Services>,
    templates: RouteTemplates,
}

pub fn observe<E: Endpoint>(
    inner: E,
    services: Arc<Services>,
    templates: RouteTemplates,
) -> Observe<E> {
    Observe {
        inner,
        services,
        templates,
    }
}

/// Grafana's `handler` label for poem's matched pattern: poem-openapi registers
/// `/api/users/:param0`; the label is the document's template with its names,
/// `/api/users/:id`. One hash lookup per request.
#[derive(Default)]
pub struct RouteTemplates(std::collections::HashMap<String, Arc<str>>);

impl RouteTemplates {
    pub fn from_spec(spec_json: &str) -> Self {
        let mut map = std::collections::HashMap::new();
        let doc: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        for path in doc
            .get("paths")
            .and_then(|p| p.as_object())
            .into_iter()
            .flat_map(|p| p.keys())
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
            // Routes mounted with `Route::at` outside `/api` (`/login`, `/healthz`) see the
            // mount point prefixed to the inner pattern.
            if !path.starts_with("/api/") {
                map.insert(format!("{poem}{poem}"), label.clone());
            }
            map.insert(poem, label);
        }
        Self(map)
    }

    fn label(&self, resp: &Response) -> String {
        match resp.data::<PathPattern>() {
            Some(p) => self
                .0
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
        .map_or_else(
            || crate::crypto::random::hex(&crate::crypto::random::bytes::<8>()),
            str::to_string,
        )
}

impl<E: Endpoint> Endpoint for Observe<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let started = Instant::now();
        let _in_flight = self.services.requests.start();
        let id = request_id(&req);
        let method = req.method().to_string();
        let mut resp = match self.inner.call(req).await {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        };
        let elapsed = started.elapsed();
        let labels = HttpLabels {
            handler: self.templates.label(&resp),
            status_code: resp.status().as_u16(),
            method,
        };
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
