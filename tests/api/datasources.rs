//! `/api/datasources*`: CRUD, secure fields write-only, errors and permissions.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

pub fn ds_body(name: &str, password: &str) -> serde_json::Value {
    json!({
        "name": name, "type": "prometheus", "access": "proxy", "url": "http://prom:9090",
        "basicAuth": true, "basicAuthUser": "scraper", "jsonData": {"httpMethod": "POST"},
        "secureJsonData": {"basicAuthPassword": password, "httpHeaderValue1": format!("Bearer {password}")}
    })
}

#[tokio::test]
async fn datasource_crud_with_write_only_secrets() {
    let app = TestApp::spawn().await;
    let (s, b) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body("Prom", "s3cret-pw")),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Datasource added"), "{b}");
    let id = b["id"].as_i64().unwrap();
    let ds = &b["datasource"];
    assert_eq!(
        ds["secureJsonFields"],
        json!({"basicAuthPassword": true, "httpHeaderValue1": true})
    );
    assert!(
        !b.to_string().contains("s3cret-pw"),
        "secrets are write-only"
    );
    assert_eq!(ds["jsonData"]["httpMethod"], "POST");
    let uid = ds["uid"].as_str().unwrap().to_string();

    for path in [
        format!("/api/datasources/{id}"),
        format!("/api/datasources/uid/{uid}"),
        "/api/datasources/name/Prom".into(),
    ] {
        let (s, got) = send(app.admin(Method::GET, &path)).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(got["name"], "Prom");
        assert!(!got.to_string().contains("s3cret-pw"));
    }
    let (_, list) = send(app.admin(Method::GET, "/api/datasources")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["typeName"], "prometheus");

    // The service decrypts what it stored.
    let record = app
        .services
        .datasources
        .get(&tollgate::domain::Principal::system(), id as u64)
        .await
        .unwrap();
    let secrets = app
        .services
        .datasources
        .secure_json_data(&record)
        .await
        .unwrap();
    assert_eq!(secrets["basicAuthPassword"].as_str(), "s3cret-pw");

    // Update keeps secure fields not given, bumps the version, refuses stale versions.
    let mut upd = json!({"name": "Prom", "type": "prometheus", "url": "http://prom2:9090", "version": 1,
                         "secureJsonData": {"basicAuthPassword": "new-pw"}});
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/datasources/{id}"))
            .json(&upd),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Datasource updated"), "{b}");
    assert_eq!(b["datasource"]["version"], 2);
    assert_eq!(
        b["datasource"]["secureJsonFields"]["httpHeaderValue1"],
        true
    );
    let record = app
        .services
        .datasources
        .get(&tollgate::domain::Principal::system(), id as u64)
        .await
        .unwrap();
    let secrets = app
        .services
        .datasources
        .secure_json_data(&record)
        .await
        .unwrap();
    assert_eq!(secrets["basicAuthPassword"].as_str(), "new-pw");
    assert_eq!(secrets["httpHeaderValue1"].as_str(), "Bearer s3cret-pw");
    let (s, _) = send(
        app.admin(Method::PUT, &format!("/api/datasources/{id}"))
            .json(&upd),
    )
    .await;
    assert_eq!(s, 409, "stale version");
    upd["version"] = json!(2);
    upd["uid"] = json!("other-uid");
    let (s, _) = send(
        app.admin(Method::PUT, &format!("/api/datasources/{id}"))
            .json(&upd),
    )
    .await;
    assert_eq!(s, 400, "uid cannot change");

    // Errors.
    let (s, b) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body("prom", "x")),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (409, "Data source with the same name already exists")
    );
    let (s, _) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&json!({"name": "x", "type": "t", "jsonData": [1]})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, b) = send(app.admin(Method::GET, "/api/datasources/999")).await;
    assert_eq!((s, message(&b)), (404, "Data source not found"));
    let (s, _) = send(app.admin(Method::GET, "/api/datasources/uid/nope")).await;
    assert_eq!(s, 404);

    // Delete by id, uid and name.
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/datasources/{id}"))).await;
    assert_eq!((s, message(&b)), (200, "Data source deleted"));
    let (_, b) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body("ByUid", "p")),
    )
    .await;
    let (s, d) = send(app.admin(
        Method::DELETE,
        &format!(
            "/api/datasources/uid/{}",
            b["datasource"]["uid"].as_str().unwrap()
        ),
    ))
    .await;
    assert_eq!((s, d["id"].clone()), (200, b["id"].clone()));
    send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body("ByName", "p")),
    )
    .await;
    let (s, _) = send(app.admin(Method::DELETE, "/api/datasources/name/ByName")).await;
    assert_eq!(s, 200);
    let (s, _) = send(app.admin(Method::DELETE, "/api/datasources/name/ByName")).await;
    assert_eq!(s, 404);
    assert_eq!(app.services.store.counts().await.unwrap().datasources, 0);
}

#[tokio::test]
async fn viewers_may_not_read_or_write_datasources() {
    let app = TestApp::spawn().await;
    app.create_user("viewer", "viewerpw").await;
    send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body("D", "p")),
    )
    .await;
    let (s, _) = send(app.as_user(Method::GET, "/api/datasources", "viewer", "viewerpw")).await;
    assert_eq!(s, 403);
    let (s, _) = send(
        app.as_user(Method::POST, "/api/datasources", "viewer", "viewerpw")
            .json(&ds_body("E", "p")),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(app.req(Method::GET, "/api/datasources")).await;
    assert_eq!(s, 401);
}
