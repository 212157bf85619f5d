//! Routing and transport: JSON errors for unknown routes, `Allow` on 405, health, the
//! frontend settings, Swagger UI and the embedded UI.

use reqwest::Method;

use crate::helpers::*;

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let app = TestApp::spawn().await;
    let (s, b) = send(app.admin(Method::GET, "/api/nope")).await;
    assert_eq!((s, message(&b)), (404, "Not found"));
    let resp = app
        .admin(Method::PATCH, "/api/admin/users/1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "DELETE");
    let resp = app
        .admin(Method::GET, "/api/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

/// `HEAD` is its path's `GET` without the body (credentials and permissions checked alike);
/// on a path without a `GET` it is 405 like any other missing method.
#[tokio::test]
async fn head_is_get_without_the_body() {
    let app = TestApp::spawn().await;
    let resp = app
        .admin(Method::HEAD, "/api/users/1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert!(resp.headers().contains_key("x-request-id"));
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = app.req(Method::HEAD, "/api/users/1").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = app
        .admin(Method::HEAD, "/api/admin/users")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn health_and_frontend_settings_need_no_credentials() {
    let app = TestApp::spawn().await;
    let (s, h) = send(app.req(Method::GET, "/api/health")).await;
    assert_eq!(s, 200);
    assert_eq!(h["database"], "ok");
    let keys: Vec<&String> = h.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["commit", "database", "version"]);
    let (s, f) = send(app.req(Method::GET, "/api/frontend/settings")).await;
    assert_eq!(s, 200);
    assert!(f["buildInfo"]["version"].as_str().unwrap().contains('.'));
    assert_eq!(f["buildInfo"]["edition"], "Enterprise");
}

#[tokio::test]
async fn swagger_document_and_ui_are_served() {
    let app = TestApp::spawn().await;
    let (s, doc) = send(app.req(Method::GET, "/openapi.json")).await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/api/admin/users"]["post"]["operationId"] == "adminCreateUser");
    let swagger = app.req(Method::GET, "/swagger/").send().await.unwrap();
    assert_eq!(swagger.status(), 200);
    assert!(swagger.text().await.unwrap().contains("swagger"));
    let index = app.req(Method::GET, "/").send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.text().await.unwrap().contains("tollgate"));
}
