//! Security hardening seen from outside: response headers on every kind of page, file
//! modes of the data folder, lookalike logins, the last Grafana Admin's lockout guards.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

async fn headers_of(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap) {
    let resp = app.req(Method::GET, path).send().await.unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} in {h:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for (path, status, kind) in [
        ("/", 200, "ui"),
        ("/app.js", 200, "ui"),
        ("/api/health", 200, "api"),
        ("/api/users", 401, "api"),
        ("/api/nothing-here", 404, "api"),
        ("/openapi.json", 200, "api"),
        ("/swagger/", 200, "swagger"),
    ] {
        let (s, h) = headers_of(&app, path).await;
        assert_eq!(s, status, "{path}");
        assert_eq!(header(&h, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&h, "referrer-policy"), "same-origin", "{path}");
        let csp = header(&h, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"));
        match kind {
            "ui" => assert_eq!(
                script_src,
                Some("script-src 'self'"),
                "no inline scripts: {csp}"
            ),
            "api" => assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}"),
            _ => assert!(script_src.is_some_and(|s| s.contains("'self'")), "{csp}"),
        }
    }
    // Errors produced outside the handlers (a wrong method) carry them as well.
    let resp = app
        .admin(Method::PATCH, "/api/health")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(header(resp.headers(), "x-frame-options"), "DENY");
}
