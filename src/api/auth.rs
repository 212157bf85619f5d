//! The security scheme: one extractor, [`Auth`], that authenticates the request and yields
//! the [`Principal`]. It documents each way in as an alternative requirement (Basic, Bearer
//! API key, the session cookie) and answers Grafana's 401 bodies itself. Order, as Grafana:
//! API key (Bearer), Basic (where `api_key:<key>` is an API key too), session cookie.
//!
//! Cookie-authenticated requests that change state must come from the server's own origin
//! (CSRF); a rotated session token is handed back through [`SessionRenewal`].

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use parking_lot::Mutex;
use poem::http::Method;
use poem::Request;
use poem_openapi::registry::{MetaSecurityScheme, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};

use crate::api::error::into_poem;
use crate::config::Settings;
use crate::domain::{AuthKind, OrgId, Principal};
use crate::error::AppError;
use crate::service::auth::Authenticated;
use crate::service::Services;
use crate::store::UserRecord;

pub const BASIC: &str = "basic";
pub const BEARER: &str = "bearer";
pub const SESSION: &str = "session";

/// The authenticated caller, and the user row authentication already read (so handlers
/// about the caller need not read it again).
pub struct Auth(pub Principal, pub Option<Arc<UserRecord>>);

/// Where the auth extractor leaves a rotated session token for the cookie middleware.
#[derive(Clone, Default)]
pub struct SessionRenewal(pub Arc<Mutex<Option<String>>>);

fn scheme(
    ty: &'static str,
    scheme: Option<&'static str>,
    description: &'static str,
) -> MetaSecurityScheme {
    MetaSecurityScheme {
        ty,
        description: Some(description),
        name: None,
        key_in: None,
        scheme,
        bearer_format: None,
        flows: None,
        openid_connect_url: None,
    }
}

pub fn services(req: &Request) -> Result<&Arc<Services>, AppError> {
    req.data::<Arc<Services>>()
        .ok_or_else(|| AppError::internal("Internal Server Error", "services missing from request"))
}

/// The client's address, decided here and nowhere else: the socket peer, unless the peer is
/// one of `[security] trusted_proxies`; then `X-Forwarded-For` is read from the right (the
/// hop the trusted proxy appended) and the first address that is not itself a trusted proxy
/// is the client. Entries a client wrote further left are never reached, so a client cannot
/// choose its own address. None when the peer is not an IP socket.
pub fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    let trusted = req
        .data::<Arc<Services>>()
        .map(|s| &s.settings.trusted_proxies);
    client_addr(req, trusted)
}

/// [`client_ip`] as an address, with the trusted proxies given (for layers outside the one
/// that attaches the services to the request).
pub fn client_addr(
    req: &Request,
    trusted: Option<&crate::config::TrustedProxies>,
) -> Option<std::net::IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip())?;
    let client = match trusted {
        Some(trusted) if !trusted.is_empty() => forwarded_client(req, peer, trusted),
        _ => peer,
    };
    Some(crate::config::canonical_ip(client))
}

/// The client behind trusted proxies, per `X-Forwarded-For` (every header line, in order).
fn forwarded_client(
    req: &Request,
    peer: std::net::IpAddr,
    trusted: &crate::config::TrustedProxies,
) -> std::net::IpAddr {
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        if !trusted.contains(client) {
            break;
        }
        // A malformed hop ends the walk: the last trusted hop is the best we know.
        let ip = hop
            .parse::<std::net::IpAddr>()
            .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()));
        match ip {
            Ok(ip) => client = ip,
            Err(_) => break,
        }
    }
    client
}

/// The value of the first cookie named `name` (quotes and spaces trimmed) in the request's
/// `Cookie` headers, none when it is absent or empty. A header with bytes outside visible
/// ASCII, space and tab is skipped whole. Scanned as bytes: every session-cookie request
/// reads it.
pub fn cookie_value<'r>(req: &'r Request, name: &str) -> Option<Cow<'r, str>> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .filter(|v| v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)))
        .flat_map(|v| v.split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((&pair[..eq], &pair[eq + 1..]))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| {
            let start = v.iter().position(|&b| b != b'"').unwrap_or(v.len());
            let end = v.iter().rposition(|&b| b != b'"').map_or(start, |e| e + 1);
            // Borrowed: the bytes were checked to be visible ASCII above.
            String::from_utf8_lossy(&v[start..end])
        })
        .filter(|v| !v.is_empty())
}

/// `host:port` of a URL or of a Host header value, with the scheme's default port.
fn authority(value: &str, default_scheme: &str) -> Option<String> {
    let (scheme, rest) = match value.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => (default_scheme.to_string(), value),
    };
    let host_port = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    if host_port.is_empty() {
        return None;
    }
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()) && !host_port.ends_with(']'));
    let default_port = if scheme == "https" { 443 } else { 80 };
    let hp = host_port.to_ascii_lowercase();
    Some(if has_port {
        hp
    } else {
        format!("{hp}:{default_port}")
    })
}

/// CSRF: the Origin (or, without it, the Referer) must be the server's own: the host of
/// `root_url` or the Host the browser addressed.
fn same_origin(req: &Request, settings: &Settings) -> bool {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && *v != "null")
    };
    let Some(source) = header(poem::http::header::ORIGIN).or(header(poem::http::header::REFERER))
    else {
        return false;
    };
    let Some(source) = authority(source, "http") else {
        return false;
    };
    let scheme = if settings.is_https() { "https" } else { "http" };
    let own = authority(&settings.root_url, scheme);
    let host = header(poem::http::header::HOST).and_then(|h| authority(h, scheme));
    own.as_deref() == Some(source.as_str()) || host.as_deref() == Some(source.as_str())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A service-account token: the account's own permissions (its org role and the roles
/// assigned to it), never Grafana Admin.
async fn service_account(services: &Services, token: &str) -> Result<Authenticated, AppError> {
    let user = services.service_accounts.authenticate(token).await?;
    Ok(Authenticated {
        principal: services
            .auth
            .principal_for(&user, AuthKind::ServiceAccount, None)
            .await,
        user: Some(user),
        new_session_token: None,
    })
}

/// Authenticates a request by the first credential it carries, in the org
/// `X-Grafana-Org-Id` names when it names one (400 "Invalid X-Grafana-Org-Id header" when
/// it is not a number, as Grafana answers).
pub async fn authenticate(req: &Request) -> Result<Authenticated, AppError> {
    let org = match req.headers().get("x-grafana-org-id") {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()) {
            Some(n) if n > 0 => Some(OrgId(n as u64)),
            Some(_) => None,
            None => {
                return Err(AppError::bad_request("Invalid X-Grafana-Org-Id header"));
            }
        },
    };
    let mut authenticated = authenticate_credentials(req).await?;
    if let Some(org) = org {
        services(req)?
            .auth
            .select_org(&mut authenticated, org)
            .await;
    }
    Ok(authenticated)
}

async fn authenticate_credentials(req: &Request) -> Result<Authenticated, AppError> {
    let services = services(req)?;
    if let Some(header) = req.headers().get(poem::http::header::AUTHORIZATION) {
        let header = header
            .to_str()
            .map_err(|_| AppError::Unauthorized("Invalid Basic Auth Header".into()))?;
        let (kind, value) = header.split_once(' ').unwrap_or((header, ""));
        let value = value.trim();
        if kind.eq_ignore_ascii_case("bearer") {
            if value.starts_with("glsa_") {
                return service_account(services, value).await;
            }
            return services.auth.api_key(value).await.map(Authenticated::from);
        }
        if kind.eq_ignore_ascii_case("basic") {
            let (login, password) = decode_basic(value)
                .ok_or_else(|| AppError::Unauthorized("Invalid Basic Auth Header".into()))?;
            if login == "api_key" && password.starts_with("glsa_") {
                return service_account(services, &password).await;
            }
            return services.auth.basic(&login, &password, client_ip(req)).await;
        }
        return Err(AppError::Unauthorized("Unauthorized".into()));
    }
    let settings = &services.settings;
    if let Some(token) = cookie_value(req, &settings.login_cookie_name) {
        let authenticated = services.auth.session(&token).await?;
        if changes_state(req.method()) && !same_origin(req, settings) {
            return Err(AppError::Forbidden("origin not allowed".into()));
        }
        let mut authenticated = authenticated;
        if let (Some(new), Some(slot)) = (
            authenticated.new_session_token.take(),
            req.extensions().get::<SessionRenewal>(),
        ) {
            *slot.0.lock() = Some(new);
        }
        return Ok(authenticated);
    }
    Err(AppError::Unauthorized("Unauthorized".into()))
}

/// `base64(login:password)`; the password may contain `:`.
pub fn decode_basic(value: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    // The decoded text becomes the login: one copy (the password's) instead of two.
    let mut login = String::from_utf8(bytes).ok()?;
    let colon = login.find(':')?;
    let password = login[colon + 1..].to_string();
    login.truncate(colon);
    Some((login, password))
}

impl<'a> ApiExtractor<'a> for Auth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            BASIC,
            scheme(
                "http",
                Some("basic"),
                "A user's login (or email) and password; `api_key` and an API key also work.",
            ),
        );
        registry.create_security_scheme(
            BEARER,
            scheme("http", Some("bearer"), "An API key (`eyJrIjoi...`)."),
        );
        registry.create_security_scheme(
            SESSION,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The session cookie set by `POST /login` (named by `[auth] login_cookie_name`).",
                ),
                name: Some("grafana_session"),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BASIC, BEARER, SESSION]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut poem::RequestBody,
        _opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match authenticate(req).await {
            Ok(a) => {
                note_actor(&a.principal);
                Ok(Auth(a.principal, a.user))
            }
            Err(e) => {
                note_failed_credentials(req);
                Err(into_poem(e))
            }
        }
    }
}

/// The audit event's actor: who authenticated, and how (the token's id was noted by the
/// service that checked it).
fn note_actor(p: &Principal) {
    crate::domain::audit::update(|e| {
        e.actor.user_id = p.user_id.map(|u| u.0);
        e.actor.login.clone_from(&p.login);
        auth_method(p.kind).clone_into(&mut e.actor.auth_method);
    });
}

pub fn auth_method(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::Basic => "basic",
        AuthKind::Session => "session",
        AuthKind::ApiKey => "api_key",
        AuthKind::ServiceAccount => "service_account",
        AuthKind::System => "system",
    }
}

/// A refused credential: the audit event names the method, and the login tried only as its
/// HMAC (it may be a password typed in the wrong box).
fn note_failed_credentials(req: &Request) {
    let Some(value) = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        let cookie = services(req)
            .ok()
            .and_then(|s| cookie_value(req, &s.settings.login_cookie_name));
        if cookie.is_some() {
            crate::domain::audit::update(|e| e.actor.auth_method = "session".into());
        }
        return;
    };
    let (kind, value) = value.split_once(' ').unwrap_or((value, ""));
    let login = if kind.eq_ignore_ascii_case("basic") {
        decode_basic(value.trim()).map(|(login, _)| login)
    } else {
        None
    };
    let identifier = match (&login, services(req)) {
        (Some(l), Ok(s)) if l != "api_key" => s.audit.identifier(l),
        _ => String::new(),
    };
    let method = match (kind.to_ascii_lowercase().as_str(), login.as_deref()) {
        ("basic", Some("api_key")) | ("bearer", _) => "token",
        ("basic", _) => "basic",
        _ => "",
    };
    crate::domain::audit::update(|e| {
        e.actor.login = identifier;
        e.actor.auth_method = method.into();
    });
}

/// `Set-Cookie` for a session token, per `[auth]` and `[security]` settings.
pub fn session_cookie(settings: &Settings, token: &str) -> String {
    cookie(settings, token, settings.login_max_lifetime.as_secs())
}

/// `Set-Cookie` that deletes the session cookie.
pub fn expired_session_cookie(settings: &Settings) -> String {
    cookie(settings, "", 0)
}

fn cookie(settings: &Settings, value: &str, max_age: u64) -> String {
    let mut c = format!(
        "{}={}; Path=/; Max-Age={}; HttpOnly",
        settings.login_cookie_name, value, max_age
    );
    match settings.cookie_samesite.as_str() {
        "strict" => c.push_str("; SameSite=Strict"),
        "none" => c.push_str("; SameSite=None"),
        "disabled" => {}
        _ => c.push_str("; SameSite=Lax"),
    }
    if settings.cookie_secure || settings.is_https() || settings.cookie_samesite == "none" {
        c.push_str("; Secure");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn cookies_are_read_as_the_string_parser_read_them() {
        // The parser this one replaced, kept as the reference.
        fn reference(headers: &[&[u8]], name: &str) -> Option<String> {
            headers
                .iter()
                .filter_map(|v| std::str::from_utf8(v).ok())
                .filter(|v| v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim_matches('"').to_string())
                .filter(|v| !v.is_empty())
        }
        let cases: &[&[&[u8]]] = &[
            &[b"grafana_session=abc"],
            &[b"a=1; grafana_session=abc; b=2"],
            &[b"  grafana_session = abc"],
            &[b"grafana_session=\"abc\""],
            &[b"grafana_session=\"a\"b\""],
            &[b"grafana_session=\"\""],
            &[b"grafana_session=; grafana_session=second"],
            &[b"grafana_session=a=b=c;"],
            &[b";;\tgrafana_session=tabbed\t;"],
            &[b"other=1", b"grafana_session=in-the-second-header"],
            &[b"grafana_session=caf\xc3\xa9", b"grafana_session=ascii"],
            &[b"GRAFANA_SESSION=upper"],
            &[b"grafana_session"],
            &[b""],
            &[],
        ];
        for headers in cases {
            let mut req = Request::builder();
            for h in *headers {
                req = req.header(
                    poem::http::header::COOKIE,
                    poem::http::HeaderValue::from_bytes(h).unwrap(),
                );
            }
            let req = req.finish();
            assert_eq!(
                cookie_value(&req, "grafana_session").map(Cow::into_owned),
                reference(headers, "grafana_session"),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let pair = |l: &str, p: &str| Some((l.to_string(), p.to_string()));
        assert_eq!(decode_basic(&enc("admin:pw")), pair("admin", "pw"));
        assert_eq!(decode_basic(&enc("admin:p:w:")), pair("admin", "p:w:"));
        assert_eq!(decode_basic(&enc(":pw")), pair("", "pw"));
        assert_eq!(decode_basic(&enc("émile:")), pair("émile", ""));
        assert_eq!(decode_basic(&enc("no-colon")), None);
        assert_eq!(decode_basic("not base64!"), None);
    }

    #[test]
    fn authorities_normalize_default_ports() {
        assert_eq!(
            authority("http://localhost:3000/", "http").as_deref(),
            Some("localhost:3000")
        );
        assert_eq!(
            authority("https://Example.org/a", "http").as_deref(),
            Some("example.org:443")
        );
        assert_eq!(
            authority("example.org", "http").as_deref(),
            Some("example.org:80")
        );
        assert_eq!(
            authority("http://[::1]:8080", "http").as_deref(),
            Some("[::1]:8080")
        );
    }
}
