//! `/api/auth/keys`: Grafana's legacy org API keys.

use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

async fn add_key(
    app: &TestApp,
    name: &str,
    role: &str,
    ttl: Option<i64>,
) -> (u16, serde_json::Value) {
    let mut body = json!({"name": name, "role": role});
    if let Some(t) = ttl {
        body["secondsToLive"] = json!(t);
    }
    send(app.admin(Method::POST, "/api/auth/keys").json(&body)).await
}

#[tokio::test]
async fn keys_have_grafanas_format_and_authenticate() {
    let app = TestApp::spawn().await;
    let (s, k) = add_key(&app, "mykey", "Admin", None).await;
    assert_eq!(s, 200, "{k}");
    assert_eq!(k["name"], "mykey");
    let key = k["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("eyJrIjoi"), "{key}");
    let decoded: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&key)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(decoded["n"], "mykey");
    assert_eq!(decoded["id"], 1);
    let secret = decoded["k"].as_str().unwrap();
    assert_eq!(secret.len(), 32);
    assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    // Bearer and Basic api_key:<key>.
    let (s, me) = send(app.req(Method::GET, "/api/auth/keys").bearer_auth(&key)).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me[0]["name"], "mykey");
    assert_eq!(me[0]["role"], "Admin");
    assert!(me[0].get("expiration").is_none());
    let (s, me) = send(
        app.req(Method::GET, "/api/user")
            .basic_auth("api_key", Some(&key)),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(me["isGrafanaAdmin"], false);
    // The secret is not stored: the database never holds it.
    let list = app.services.store.clone();
    let stored = list
        .api_keys(tollgate::domain::OrgId(1), None)
        .await
        .unwrap();
    assert_ne!(stored[0].hash.to_vec(), secret.as_bytes().to_vec());
}

#[tokio::test]
async fn an_api_key_never_reaches_the_admin_api() {
    let app = TestApp::spawn().await;
    let (_, k) = add_key(&app, "admin-role-key", "Admin", None).await;
    let key = k["key"].as_str().unwrap();
    let (s, b) = send(
        app.req(Method::POST, "/api/admin/users")
            .bearer_auth(key)
            .json(&json!({"login": "k", "password": "kkkk"})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["title"], "Access denied");
    for path in [
        "/api/admin/users/1/auth-tokens",
        "/api/users",
        "/api/users/1",
    ] {
        let (s, _) = send(app.req(Method::GET, path).bearer_auth(key)).await;
        assert_eq!(s, 403, "{path}");
    }
}

#[tokio::test]
async fn expired_unknown_and_deleted_keys_get_401() {
    let app = TestApp::spawn().await;
    let (_, k) = add_key(&app, "short", "Viewer", Some(1)).await;
    let key = k["key"].as_str().unwrap().to_string();
    let (s, _) = send(app.req(Method::GET, "/api/user").bearer_auth(&key)).await;
    assert_eq!(s, 200);
    let (_, listed) = send(app.admin(Method::GET, "/api/auth/keys")).await;
    assert!(listed[0]["expiration"].as_str().unwrap().ends_with('Z'));
    app.clock.advance(Duration::from_millis(2100));
    let (s, b) = send(app.req(Method::GET, "/api/user").bearer_auth(&key)).await;
    assert_eq!((s, message(&b)), (401, "Expired API key"));
    let (_, listed) = send(app.admin(Method::GET, "/api/auth/keys")).await;
    assert_eq!(listed, json!([]), "expired keys are hidden by default");
    let (_, listed) = send(app.admin(Method::GET, "/api/auth/keys?includeExpired=true")).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let forged = base64::engine::general_purpose::STANDARD
        .encode(r#"{"k":"XvbIgw77BaFg5KblOhmJDJa7o2X44HsE","n":"mykey","id":1}"#);
    for bad in [forged.as_str(), "not-base64!", "eyJrIjoi"] {
        let (s, b) = send(app.req(Method::GET, "/api/user").bearer_auth(bad)).await;
        assert_eq!((s, message(&b)), (401, "invalid API key"), "{bad}");
    }

    let (_, k) = add_key(&app, "gone", "Viewer", None).await;
    let key = k["key"].as_str().unwrap().to_string();
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/auth/keys/{}", k["id"]))).await;
    assert_eq!((s, message(&b)), (200, "API key deleted"));
    let (s, _) = send(app.req(Method::GET, "/api/user").bearer_auth(&key)).await;
    assert_eq!(s, 401);
    let (s, _) = send(app.admin(Method::DELETE, &format!("/api/auth/keys/{}", k["id"]))).await;
    assert_eq!(s, 404);
    let (s, _) = send(app.admin(Method::DELETE, "/api/auth/keys/abc")).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn key_validation_and_permissions() {
    let app = TestApp::spawn_with(&[("auth", "api_key_max_seconds_to_live", "3600")]).await;
    let (s, b) = add_key(&app, "k", "Boss", Some(60)).await;
    assert_eq!((s, message(&b)), (400, "Invalid role specified"));
    let (s, _) = add_key(&app, " ", "Viewer", Some(60)).await;
    assert_eq!(s, 400);
    let (s, b) = add_key(&app, "k", "Viewer", Some(7200)).await;
    assert_eq!(
        (s, message(&b)),
        (
            400,
            "Number of seconds before expiration is greater than the global limit"
        )
    );
    let (s, _) = add_key(&app, "k", "Viewer", None).await;
    assert_eq!(s, 400, "a limit requires a lifetime");
    let (s, _) = add_key(&app, "k", "viewer", Some(60)).await;
    assert_eq!(s, 200);
    let (s, b) = add_key(&app, "k", "Viewer", Some(60)).await;
    assert_eq!(
        (s, message(&b)),
        (409, "API Key Organization ID And Name Must Be Unique")
    );
    app.create_user("zoe", "zoepass").await;
    let (s, _) = send(
        app.as_user(Method::POST, "/api/auth/keys", "zoe", "zoepass")
            .json(&json!({"name": "z", "role": "Viewer"})),
    )
    .await;
    assert_eq!(s, 403, "a Viewer may not create keys");
    let (s, _) = send(app.as_user(Method::GET, "/api/auth/keys", "zoe", "zoepass")).await;
    assert_eq!(s, 403);
    let (s, _) = send(app.req(Method::GET, "/api/auth/keys")).await;
    assert_eq!(s, 401);
}
