//! `/api/users*` and `/api/user`: reads, paging and lookups.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn search_pages_like_grafana() {
    let app = TestApp::spawn().await;
    for name in ["zed", "amy", "ben", "cat"] {
        app.create_user(name, "password1").await;
    }
    let (s, page) = send(app.admin(Method::GET, "/api/users/search?perpage=2&page=1")).await;
    assert_eq!(s, 200);
    assert_eq!(page["totalCount"], 5);
    assert_eq!(page["page"], 1);
    assert_eq!(page["perPage"], 2);
    let logins: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap())
        .collect();
    assert_eq!(logins, ["admin", "amy"]);
    let (_, page3) = send(app.admin(Method::GET, "/api/users/search?perpage=2&page=3")).await;
    assert_eq!(page3["users"].as_array().unwrap().len(), 1);
    let (_, q) = send(app.admin(Method::GET, "/api/users/search?query=BE")).await;
    assert_eq!(q["totalCount"], 1);
    assert_eq!(q["users"][0]["login"], "ben");
    // GET /api/users is the bare list; a page past the end is empty.
    let (s, list) = send(app.admin(Method::GET, "/api/users?perpage=3&page=2")).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (_, empty) = send(app.admin(Method::GET, "/api/users?perpage=3&page=9")).await;
    assert_eq!(empty, json!([]));
    let hit = &list[0];
    for key in [
        "id",
        "uid",
        "name",
        "login",
        "email",
        "avatarUrl",
        "isAdmin",
        "isDisabled",
        "lastSeenAt",
        "lastSeenAtAge",
        "authLabels",
    ] {
        assert!(hit.get(key).is_some(), "missing {key} in {hit}");
    }
    let (s, _) = send(app.admin(Method::GET, "/api/users?page=abc")).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn reads_need_users_read() {
    let app = TestApp::spawn().await;
    let id = app.create_user("viewer", "viewerpw").await;
    for path in [
        "/api/users",
        "/api/users/search",
        "/api/users/lookup?loginOrEmail=admin",
        "/api/users/1",
    ] {
        let (s, b) = send(app.as_user(Method::GET, path, "viewer", "viewerpw")).await;
        assert_eq!(s, 403, "{path}: {b}");
        let (s, _) = send(app.req(Method::GET, path)).await;
        assert_eq!(s, 401, "{path}");
    }
    // Everyone reads themselves through /api/user.
    let (s, me) = send(app.as_user(Method::GET, "/api/user", "viewer", "viewerpw")).await;
    assert_eq!(s, 200);
    assert_eq!(me["id"].as_u64(), Some(id));
    assert_eq!(me["isGrafanaAdmin"], false);
}

#[tokio::test]
async fn lookup_by_login_or_email_and_not_found() {
    let app = TestApp::spawn().await;
    app.create_user("jane", "janepw").await;
    let (s, u) = send(app.admin(Method::GET, "/api/users/lookup?loginOrEmail=JANE")).await;
    assert_eq!((s, u["login"].as_str()), (200, Some("jane")));
    let (s, u) = send(app.admin(
        Method::GET,
        "/api/users/lookup?loginOrEmail=jane@example.org",
    ))
    .await;
    assert_eq!((s, u["login"].as_str()), (200, Some("jane")));
    let (s, b) = send(app.admin(Method::GET, "/api/users/lookup?loginOrEmail=nobody")).await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(app.admin(Method::GET, "/api/users/999")).await;
    assert_eq!((s, message(&b)), (404, "User not found"));
}

#[tokio::test]
async fn update_user_profile() {
    let app = TestApp::spawn().await;
    let id = app.create_user("kim", "kimpw1").await;
    app.create_user("lee", "leepw1").await;
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/users/{id}"))
            .json(&json!({"name": "Kim K", "login": "kimk"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "User updated"));
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(
        (u["name"].as_str(), u["login"].as_str()),
        (Some("Kim K"), Some("kimk"))
    );
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "kimk", "kimpw1")).await;
    assert_eq!(s, 200, "the new login signs in");
    let (s, _) = send(
        app.admin(Method::PUT, &format!("/api/users/{id}"))
            .json(&json!({"login": "LEE"})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, _) = send(
        app.admin(Method::PUT, &format!("/api/users/{id}"))
            .json(&json!({"email": "bad"})),
    )
    .await;
    assert_eq!(s, 400);
}
