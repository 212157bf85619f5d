//! Request observation, the outermost layer: the `X-Request-Id` (the client's, when it sent
//! a sane one, else a new one) on every response, one log line per request, and Grafana's
//! request metrics labelled by route template. Also `GET /metrics` itself.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use poem::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use poem::PathPattern;
use poem::{Endpoint, Request, Response};

use crate::api::error::{error_response, ErrorBody};
use crate::api::middleware::{self, Front, Routed};
use crate::api::routes::RouteTable;
use crate::domain::audit::AuditEntry;
use crate::service::metrics::{self, HttpLabels};
use crate::service::Services;

pub const REQUEST_ID: &str = "x-request-id";
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);

pub struct Observe {
    front: Front,
    services: Arc<Services>,
    routes: &'static RouteTable,
}

/// The outermost layer, one for everything a response gets on its way out (fewer nested
/// layers, less moving of request futures): the request id, the audit scope, Grafana's
/// error bodies, the security headers, the metrics and the log line.
pub fn observe(front: Front, services: Arc<Services>, routes: &'static RouteTable) -> Observe {
    Observe {
        front,
        services,
        routes,
    }
}

/// A request method as a metric label: the standard methods by name, any other as `OTHER`
/// (a client may send any token as a method; each would otherwise start a series of its
/// own, held for the life of the process).
fn method_label(method: &Method) -> Cow<'static, str> {
    const KNOWN: [&str; 9] = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    let m = method.as_str();
    Cow::Borrowed(KNOWN.iter().find(|k| **k == m).copied().unwrap_or("OTHER"))
}

/// A client's request id is kept when it is 1 to 128 visible ASCII characters.
/// Kept as the header value it arrived in (no copy: it shares the request's buffer), which
/// the answer returns.
fn request_id(req: &Request) -> HeaderValue {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A request id as text (always visible ASCII: see [`request_id`]).
fn id_text(id: &HeaderValue) -> &str {
    id.to_str().unwrap_or_default()
}

/// A fresh request id: a random per-thread prefix and the thread's own counter (unique in
/// practice, no system call and no counter shared by every request; it correlates log
/// lines and events, it guards nothing).
fn new_request_id() -> HeaderValue {
    thread_local! {
        static NEXT: std::cell::Cell<(u32, u32)> = std::cell::Cell::new((
            u32::from_be_bytes(crate::crypto::random::bytes::<4>()),
            0,
        ));
    }
    let (prefix, n) = NEXT.with(|next| {
        let (prefix, n) = next.get();
        next.set((prefix, n.wrapping_add(1)));
        (prefix, n)
    });
    let text = hex16((u64::from(prefix) << 32) | u64::from(n));
    // The string's buffer becomes the header's, uncopied.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text.into_bytes()))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// `v` as 16 lowercase hex digits (`format!` costs more than the rest of the id).
fn hex16(v: u64) -> String {
    crate::crypto::random::hex(&v.to_be_bytes())
}

impl Endpoint for Observe {
    type Output = Response;

    // Not an `async fn`: everything that reads the request runs here, before the future
    // exists, and the request moves on into the handler's (boxed) future. The returned
    // future, which hyper moves into its connection state per request, so holds no copy of
    // the 472-byte `Request` (an `async fn` holds two: its argument and the local it is
    // moved into).
    fn call(
        &self,
        mut req: Request,
    ) -> impl std::future::Future<Output = poem::Result<Response>> + Send {
        let started = Instant::now();
        let in_flight = self.services.requests.start();
        // What every handler and the auth extractor read the services from.
        req.extensions_mut().insert(self.services.clone());
        let id = request_id(&req);
        let method = req.method().clone();
        let csp = middleware::csp_for(req.uri().path());
        // For the `Allow` header of a 405 and the log of a 500 (a shared-bytes clone).
        let uri = req.uri().clone();
        let audit = self.services.audit.enabled().then(|| {
            let armed = changes_state(&req);
            let (entry, client) = self.audit_entry(&req, id_text(&id), method.as_str(), armed);
            (armed, entry, client)
        });
        // Routing starts the handler's (boxed) future; it runs when polled, inside the
        // audit scope.
        let Routed { handling, renewal } = self.front.route(req);
        async move {
            let _in_flight = in_flight;
            let (result, audited) = match audit {
                Some((armed, entry, client)) => {
                    crate::domain::audit::scope(entry, armed, async move {
                        let result = handling.await;
                        let written = crate::domain::audit::written();
                        let entry = crate::domain::audit::take_entry();
                        (result, Some((armed, written, entry, client)))
                    })
                    .await
                }
                None => (handling.await, None),
            };
            let result = result.map(|mut resp| {
                self.front.finish(&mut resp, renewal);
                resp
            });
            let mut resp = result.unwrap_or_else(|e| {
                middleware::grafana_error(e, uri.path(), method == Method::HEAD, self.routes)
            });
            middleware::security_headers(&mut resp, csp);
            let elapsed = started.elapsed();
            let labels = HttpLabels {
                handler: resp
                    .data::<PathPattern>()
                    .map_or(Cow::Borrowed("unknown"), |p| self.routes.label(&p.0)),
                status_code: resp.status().as_u16(),
                method: method_label(&method),
            };
            if let Some((armed, written, Some(entry), client)) = audited {
                let fill = (!armed).then_some((&client, id_text(&id)));
                if let Some(event) = self.finish_audit(armed, written, entry, fill, &labels) {
                    // Boxed: rare, and the request's future stays small without it.
                    Box::pin(self.services.audit.record(event)).await;
                }
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
                request_id = id_text(&id),
                "request"
            );
            resp.headers_mut().insert(REQUEST_ID_HEADER, id);
            Ok(resp)
        }
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
        entry.client = self.addr.map(ip_text).unwrap_or_default();
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

/// An address as `Display` writes it; IPv4 without the formatting machinery (every
/// audited request writes one).
fn ip_text(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(digits.format(octet));
            }
            out
        }
        v6 => v6.to_string(),
    }
}

/// Whether a request changes state: every method but GET, HEAD and OPTIONS, and
/// Grafana's `GET /logout` (it revokes the session).
fn changes_state(req: &Request) -> bool {
    use poem::http::Method;
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.uri().path() == "/logout"
}

impl Observe {
    /// What the request's audit event says before the handler runs; auth, the permission
    /// check and the body reader add the actor, the action and the field names. A change's
    /// entry is complete here (the store writes it with the change); a read's is completed
    /// from the [`Client`] after routing, and only if it is denied (its time too: the audit
    /// service times an entry without one, so a read reads no clock for an event it will
    /// not record).
    fn audit_entry(
        &self,
        req: &Request,
        request_id: &str,
        method: &str,
        armed: bool,
    ) -> (AuditEntry, Client) {
        let client = Client::of(req, &self.services);
        let mut entry = crate::domain::audit::blank_entry();
        if armed {
            entry.at = self.services.clock.now_ms();
            if let Some(m) = self.routes.match_path(method, req.uri().path()) {
                entry.status = m.success;
                m.route.clone_into(&mut entry.route);
                entry.target_kind = m.target_kind;
                entry.target_id = m.target_id;
            } else {
                entry.status = 200;
            }
            client.fill(&mut entry, request_id, method);
        }
        (entry, client)
    }

    /// After the answer: a denial (401, 403) and a change that wrote nothing to the store
    /// get an event of their own (returned, to be recorded); a change that committed
    /// already has one. `unfilled`: a read's client and request id, written into its entry
    /// only if it is recorded.
    fn finish_audit(
        &self,
        armed: bool,
        written: bool,
        mut entry: AuditEntry,
        unfilled: Option<(&Client, &str)>,
        labels: &HttpLabels,
    ) -> Option<AuditEntry> {
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
            crate::domain::audit::recycle(entry);
            return None;
        }
        // A read's entry is completed only now that it is recorded.
        if let Some((client, request_id)) = unfilled {
            client.fill(&mut entry, request_id, &labels.method);
        }
        entry.status = status;
        if entry.route.is_empty() {
            labels.handler.as_ref().clone_into(&mut entry.route);
        }
        Some(entry)
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn addresses_read_as_display_writes_them() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "192.168.0.9",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = a.parse().expect("an address");
            assert_eq!(super::ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn request_ids_are_sixteen_hex_digits() {
        for v in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(super::hex16(v), format!("{v:016x}"));
        }
        let (a, b) = (super::new_request_id(), super::new_request_id());
        assert_ne!(a, b);
        assert_eq!(super::id_text(&a).len(), 16);
        assert!(super::id_text(&a).bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn request_ids_from_many_threads_do_not_repeat() {
        let ids: Vec<String> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .map(|_| super::id_text(&super::new_request_id()).to_string())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        });
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), 8000);
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn methods_outside_the_standard_ones_share_one_label() {
        use poem::http::Method;
        assert_eq!(super::method_label(&Method::GET), "GET");
        assert_eq!(super::method_label(&Method::DELETE), "DELETE");
        for odd in ["PROPFIND", "X1", "get"] {
            let m = Method::from_bytes(odd.as_bytes()).unwrap_or(Method::GET);
            assert_eq!(super::method_label(&m), "OTHER", "{odd}");
        }
    }
}
