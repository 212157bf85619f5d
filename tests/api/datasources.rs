//! `/api/datasources*`: CRUD, secure fields write-only, errors and permissions.

use reqwest::Method;
use serde_json::{json, Value};

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
    let mut upd = json!({"name": "Prom", "type": "prometheus", "access": "proxy", "url": "http://prom2:9090", "version": 1,
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
    // A higher version than the stored one wins (Grafana: stored <= version).
    upd["version"] = json!(9);
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/datasources/{id}"))
            .json(&upd),
    )
    .await;
    assert_eq!((s, &b["datasource"]["version"]), (200, &json!(3)), "{b}");
    upd["version"] = json!(2);
    let (s, _) = send(
        app.admin(Method::PUT, &format!("/api/datasources/{id}"))
            .json(&upd),
    )
    .await;
    assert_eq!(s, 409, "below the stored version");
    upd["version"] = json!(3);
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

/// Creates a datasource through the API; returns (id, uid).
pub async fn add(app: &TestApp, name: &str) -> (i64, String) {
    let (s, b) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body(name, "pw")),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    (
        b["id"].as_i64().unwrap(),
        b["datasource"]["uid"].as_str().unwrap().to_string(),
    )
}

/// A provisioned (read-only) datasource, as the provisioning service writes it.
async fn add_read_only(app: &TestApp, name: &str) -> String {
    let input = tollgate::service::datasources::DataSourceInput {
        name: name.into(),
        ds_type: "prometheus".into(),
        url: "http://prom:9090".into(),
        read_only: true,
        ..Default::default()
    };
    app.services
        .datasources
        .provision(tollgate::domain::OrgId(1), input)
        .await
        .unwrap();
    let (s, b) = send(app.admin(Method::GET, &format!("/api/datasources/name/{name}"))).await;
    assert_eq!((s, &b["readOnly"]), (200, &json!(true)), "{b}");
    b["uid"].as_str().unwrap().to_string()
}

/// A global custom role with these permissions, assigned to `user`.
pub async fn grant(app: &TestApp, user: u64, uid: &str, permissions: Value) {
    let (s, v) = send(app.admin(Method::POST, "/api/access-control/roles").json(
        &json!({"uid": uid, "name": format!("custom:{uid}"), "global": true,
                          "permissions": permissions}),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{user}/roles"),
        )
        .json(&json!({"roleUid": uid})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// A service account with org role None and a token for it.
async fn none_role_token(app: &TestApp) -> (u64, String) {
    let (s, v) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "no-role", "role": "None"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let sa = v["id"].as_u64().unwrap();
    let (s, v) = send(
        app.admin(Method::POST, &format!("/api/serviceaccounts/{sa}/tokens"))
            .json(&json!({"name": "t"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (sa, v["key"].as_str().unwrap().to_string())
}

pub fn denied(v: &Value, action: &str) -> bool {
    message(v)
        == format!(
            "You'll need additional permissions to perform this action. Permissions needed: {action}"
        )
        && v["accessErrorId"].is_string()
}

#[tokio::test]
async fn datasource_id_by_name() {
    let app = TestApp::spawn().await;
    let (id, _) = add(&app, "Prom main").await;
    add(&app, "Other").await;
    let (s, v) = send(app.admin(Method::GET, "/api/datasources/id/Prom%20main")).await;
    assert_eq!((s, v), (200, json!({"id": id})));
    let (s, v) = send(app.admin(Method::GET, "/api/datasources/id/prom")).await;
    assert_eq!((s, message(&v)), (404, "Data source not found"), "{v}");
    let (s, _) = send(app.req(Method::GET, "/api/datasources/id/Other")).await;
    assert_eq!(s, 401);

    // Every basic role holds datasources.id:read: a Viewer, who may not read the datasource
    // itself, may read its id.
    app.create_user("viewer", "viewer-pw-1").await;
    let (s, v) = send(app.as_user(
        Method::GET,
        "/api/datasources/id/Prom%20main",
        "viewer",
        "viewer-pw-1",
    ))
    .await;
    assert_eq!((s, v), (200, json!({"id": id})));
    let (s, _) = send(app.as_user(
        Method::GET,
        "/api/datasources/name/Prom%20main",
        "viewer",
        "viewer-pw-1",
    ))
    .await;
    assert_eq!(s, 403);

    // Org role None: no basic role, so no datasources.id:read, until a role grants it.
    let (sa, key) = none_role_token(&app).await;
    let by_token = || {
        send(
            app.req(Method::GET, "/api/datasources/id/Prom%20main")
                .bearer_auth(&key),
        )
    };
    let (s, v) = by_token().await;
    assert_eq!(s, 403, "{v}");
    assert!(denied(&v, "datasources.id:read"), "{v}");
    grant(
        &app,
        sa,
        "id-reader",
        json!([{"action": "datasources.id:read", "scope": "datasources:*"}]),
    )
    .await;
    let (s, v) = by_token().await;
    assert_eq!((s, v), (200, json!({"id": id})));
}

#[tokio::test]
async fn update_datasource_by_uid() {
    let app = TestApp::spawn().await;
    let (id, uid) = add(&app, "Prom").await;
    let (_, other_uid) = add(&app, "Taken").await;
    let path = format!("/api/datasources/uid/{uid}");
    let body = |name: &str, version: i64| {
        json!({"name": name, "type": "prometheus", "access": "proxy", "url": "http://prom2:9090",
               "jsonData": {"httpMethod": "GET"}, "version": version,
               "secureJsonData": {"basicAuthPassword": "new-pw"}})
    };

    let (s, v) = send(app.admin(Method::PUT, &path).json(&body("Prom 2", 1))).await;
    assert_eq!(s, 200, "{v}");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["datasource", "id", "message", "name"]);
    assert_eq!(
        (&v["id"], message(&v), &v["name"]),
        (&json!(id), "Datasource updated", &json!("Prom 2"))
    );
    let ds = &v["datasource"];
    assert_eq!(
        (&ds["uid"], &ds["url"], &ds["version"]),
        (&json!(uid), &json!("http://prom2:9090"), &json!(2))
    );
    assert_eq!(ds["jsonData"], json!({"httpMethod": "GET"}));
    // Secure fields given replace, others are kept.
    assert_eq!(
        ds["secureJsonFields"],
        json!({"basicAuthPassword": true, "httpHeaderValue1": true})
    );
    let (_, got) = send(app.admin(Method::GET, &format!("/api/datasources/{id}"))).await;
    assert_eq!(got["name"], "Prom 2");
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

    // Version: the one read works once; a stale one is refused.
    let (s, v) = send(app.admin(Method::PUT, &path).json(&body("Prom 2", 1))).await;
    assert_eq!(
        (s, message(&v)),
        (
            409,
            "Datasource has already been updated by someone else. Please reload and try again"
        )
    );
    // Another datasource's name.
    let (s, v) = send(app.admin(Method::PUT, &path).json(&body("Taken", 2))).await;
    assert_eq!(
        (s, message(&v)),
        (
            409,
            "Failed to update datasource: data source with the same name already exists"
        )
    );
    // Unknown uid.
    let (s, v) = send(
        app.admin(Method::PUT, "/api/datasources/uid/no-such-uid")
            .json(&body("X", 0)),
    )
    .await;
    assert_eq!((s, message(&v)), (404, "Data source not found"));

    // Bad input: Grafana's required fields, its URL validation, then not JSON.
    for missing in ["name", "type", "access"] {
        let mut b = body("Prom 3", 0);
        b.as_object_mut().unwrap().remove(missing);
        let (s, v) = send(app.admin(Method::PUT, &path).json(&b)).await;
        assert_eq!((s, message(&v)), (400, "bad request data"), "{missing}");
        b[missing] = json!("");
        let (s, v) = send(app.admin(Method::PUT, &path).json(&b)).await;
        assert_eq!(
            (s, message(&v)),
            (400, "bad request data"),
            "empty {missing}"
        );
    }
    for url in [
        "",
        "   ",
        "http://prom host:9090",
        "http://prom:90x0",
        "://prom:9090",
        "http://[::1:9090",
        "http://prom:9090/%zz",
        "1http://prom",
    ] {
        let mut b = body("Prom 3", 0);
        b["url"] = json!(url);
        let (s, v) = send(app.admin(Method::PUT, &path).json(&b)).await;
        assert_eq!(
            (s, message(&v)),
            (400, "Validation error, invalid URL"),
            "{url:?}"
        );
    }
    // The URL is checked before the lookup, as in Grafana.
    let mut b = body("X", 0);
    b["url"] = json!("");
    let (s, v) = send(
        app.admin(Method::PUT, "/api/datasources/uid/no-such-uid")
            .json(&b),
    )
    .await;
    assert_eq!((s, message(&v)), (400, "Validation error, invalid URL"));
    // URLs Go's parser takes (no scheme gets http://; an empty URL for a type that needs none).
    for (ds_type, url) in [
        ("prometheus", "prom:9090"),
        ("prometheus", "https://user:p%40ss@[::1]:9090/api?q=%zz"),
        ("testdata", ""),
    ] {
        let mut b = body("Prom 3", 0);
        b["type"] = json!(ds_type);
        b["url"] = json!(url);
        let (s, v) = send(app.admin(Method::PUT, &path).json(&b)).await;
        assert_eq!(s, 200, "{url:?}: {v}");
    }
    let (s, v) = send(
        app.admin(Method::PUT, &path)
            .header("Content-Type", "text/plain")
            .body(body("Prom 3", 0).to_string()),
    )
    .await;
    assert_eq!((s, message(&v)), (400, "bad request data"));
    // The same rules on PUT by id, which shares the update.
    let (s, v) = send(
        app.admin(Method::PUT, &format!("/api/datasources/{id}"))
            .json(&json!({"name": "Prom 3", "type": "prometheus", "url": "http://p:1"})),
    )
    .await;
    assert_eq!((s, message(&v)), (400, "bad request data"));

    // A provisioned datasource is read-only.
    let ro = add_read_only(&app, "Provisioned").await;
    let (s, v) = send(
        app.admin(Method::PUT, &format!("/api/datasources/uid/{ro}"))
            .json(&body("Provisioned", 0)),
    )
    .await;
    assert_eq!(
        (s, message(&v)),
        (403, "Cannot update read-only data source")
    );

    // RBAC: datasources:write on the datasource's uid.
    let (s, _) = send(app.req(Method::PUT, &path).json(&body("Prom 4", 0))).await;
    assert_eq!(s, 401);
    app.create_user("viewer", "viewer-pw-1").await;
    let (s, v) = send(
        app.as_user(Method::PUT, &path, "viewer", "viewer-pw-1")
            .json(&body("Prom 4", 0)),
    )
    .await;
    assert!(s == 403 && denied(&v, "datasources:write"), "{s} {v}");
    let writer = app.create_user("writer", "writer-pw-1").await;
    grant(
        &app,
        writer,
        "one-ds-writer",
        json!([{"action": "datasources:write", "scope": format!("datasources:uid:{uid}")}]),
    )
    .await;
    let (s, v) = send(
        app.as_user(Method::PUT, &path, "writer", "writer-pw-1")
            .json(&body("Prom 4", 0)),
    )
    .await;
    assert_eq!((s, &v["name"]), (200, &json!("Prom 4")), "{v}");
    let (s, v) = send(
        app.as_user(
            Method::PUT,
            &format!("/api/datasources/uid/{other_uid}"),
            "writer",
            "writer-pw-1",
        )
        .json(&body("Taken", 0)),
    )
    .await;
    assert!(s == 403 && denied(&v, "datasources:write"), "{s} {v}");
}

#[tokio::test]
async fn delete_datasource_by_name() {
    let app = TestApp::spawn().await;
    let (id, _) = add(&app, "Doomed one").await;
    let (s, v) = send(app.admin(Method::DELETE, "/api/datasources/name/Doomed%20one")).await;
    assert_eq!(
        (s, v),
        (200, json!({"id": id, "message": "Data source deleted"}))
    );
    let (s, v) = send(app.admin(Method::DELETE, "/api/datasources/name/Doomed%20one")).await;
    assert_eq!((s, message(&v)), (404, "Data source not found"));
    // An empty name never reaches the by-name route: with the trailing slash dropped (as
    // Grafana's router does) the path is `DELETE /api/datasources/:id` with id "name", a 400
    // in Grafana too ("id is invalid" there).
    let (s, _) = send(app.admin(Method::DELETE, "/api/datasources/name/")).await;
    assert_eq!(s, 400);

    let ro = add_read_only(&app, "Provisioned").await;
    let (s, v) = send(app.admin(Method::DELETE, "/api/datasources/name/Provisioned")).await;
    assert_eq!(
        (s, message(&v)),
        (403, "Cannot delete read-only data source")
    );
    let (s, _) = send(app.admin(Method::GET, &format!("/api/datasources/uid/{ro}"))).await;
    assert_eq!(s, 200, "still there");

    // RBAC: datasources:delete on the datasource.
    let (id, uid) = add(&app, "Target").await;
    add(&app, "Bystander").await;
    let (s, _) = send(app.req(Method::DELETE, "/api/datasources/name/Target")).await;
    assert_eq!(s, 401);
    app.create_user("viewer", "viewer-pw-1").await;
    let (s, v) = send(app.as_user(
        Method::DELETE,
        "/api/datasources/name/Target",
        "viewer",
        "viewer-pw-1",
    ))
    .await;
    assert!(s == 403 && denied(&v, "datasources:delete"), "{s} {v}");
    let deleter = app.create_user("deleter", "deleter-pw-1").await;
    grant(
        &app,
        deleter,
        "one-ds-deleter",
        json!([{"action": "datasources:delete", "scope": format!("datasources:uid:{uid}")}]),
    )
    .await;
    let (s, v) = send(app.as_user(
        Method::DELETE,
        "/api/datasources/name/Bystander",
        "deleter",
        "deleter-pw-1",
    ))
    .await;
    assert!(s == 403 && denied(&v, "datasources:delete"), "{s} {v}");
    let (s, v) = send(app.as_user(
        Method::DELETE,
        "/api/datasources/name/Target",
        "deleter",
        "deleter-pw-1",
    ))
    .await;
    assert_eq!(
        (s, v),
        (200, json!({"id": id, "message": "Data source deleted"}))
    );
}

#[tokio::test]
async fn create_validates_a_given_url() {
    let app = TestApp::spawn().await;
    let mut b = ds_body("Bad", "p");
    b["url"] = json!("http://prom host:9090");
    let (s, v) = send(app.admin(Method::POST, "/api/datasources").json(&b)).await;
    assert_eq!((s, message(&v)), (400, "Validation error, invalid URL"));
    // No URL on create is Grafana's choice to allow.
    b["url"] = json!("");
    let (s, v) = send(app.admin(Method::POST, "/api/datasources").json(&b)).await;
    assert_eq!(s, 200, "{v}");
}
