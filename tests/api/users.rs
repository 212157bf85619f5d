//! `/api/users*` and `/api/user`: reads, paging and lookups.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

/// A hit's avatar: `/avatar/` and 32 hex digits (a hash of the lower-cased email).
fn assert_avatar(url: &serde_json::Value) {
    let url = url.as_str().unwrap_or_default();
    let hash = url.strip_prefix("/avatar/").unwrap_or_default();
    assert!(
        hash.len() == 32 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "{url}"
    );
}

#[tokio::test]
async fn search_pages_like_grafana() {
    let app = TestApp::spawn().await;
    let mut ids = std::collections::HashMap::new();
    for name in ["zed", "amy", "ben", "cat"] {
        ids.insert(name, app.create_user(name, "password1").await);
    }
    let (s, page) = send(app.admin(Method::GET, "/api/users/search?perpage=2&page=1")).await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            page["totalCount"].as_i64(),
            page["page"].as_i64(),
            page["perPage"].as_i64()
        ),
        (Some(5), Some(1), Some(2))
    );
    let logins = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(logins(&page["users"]), ["admin", "amy"]);
    let admin = &page["users"][0];
    assert_eq!(
        (
            admin["id"].as_i64(),
            admin["email"].as_str(),
            admin["isAdmin"].as_bool()
        ),
        (Some(1), Some("admin@localhost"), Some(true))
    );
    let (_, page3) = send(app.admin(Method::GET, "/api/users/search?perpage=2&page=3")).await;
    assert_eq!(logins(&page3["users"]), ["zed"]);
    assert_eq!(
        (page3["totalCount"].as_i64(), page3["page"].as_i64()),
        (Some(5), Some(3))
    );
    let (_, q) = send(app.admin(Method::GET, "/api/users/search?query=BE")).await;
    assert_eq!(q["totalCount"], 1);
    assert_eq!(logins(&q["users"]), ["ben"]);
    assert_eq!(q["users"][0]["id"].as_u64(), Some(ids["ben"]));
    // GET /api/users is the bare list; a page past the end is empty.
    let (s, list) = send(app.admin(Method::GET, "/api/users?perpage=3&page=2")).await;
    assert_eq!(s, 200);
    assert_eq!(logins(&list), ["cat", "zed"]);
    let (_, empty) = send(app.admin(Method::GET, "/api/users?perpage=3&page=9")).await;
    assert_eq!(empty, json!([]));
    // Every field of a hit, with its value.
    let hit = &list[0];
    let (_, cat) = send(app.admin(Method::GET, &format!("/api/users/{}", ids["cat"]))).await;
    let keys: Vec<&String> = hit.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
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
            "isProvisioned"
        ]
    );
    assert_eq!(hit["id"].as_u64(), Some(ids["cat"]));
    assert_eq!(hit["uid"], cat["uid"]);
    assert_eq!(hit["uid"].as_str().map(str::len), Some(14), "{hit}");
    assert_eq!(
        (
            hit["name"].as_str(),
            hit["login"].as_str(),
            hit["email"].as_str()
        ),
        (Some("cat"), Some("cat"), Some("cat@example.org"))
    );
    assert_avatar(&hit["avatarUrl"]);
    assert_eq!(hit["avatarUrl"], cat["avatarUrl"]);
    assert_ne!(hit["avatarUrl"], list[1]["avatarUrl"], "one per email");
    assert_eq!(
        (
            hit["isAdmin"].as_bool(),
            hit["isDisabled"].as_bool(),
            hit["isProvisioned"].as_bool()
        ),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!(hit["authLabels"], json!([]));
    // Never seen: Grafana's "ten years ago".
    assert_eq!(hit["lastSeenAtAge"], "10y", "{hit}");
    let seen = hit["lastSeenAt"].as_str().unwrap();
    assert!(seen.ends_with('Z') && seen.len() == 20, "{seen}");
    // Disabled shows.
    let (s, _) = send(app.admin(
        Method::POST,
        &format!("/api/admin/users/{}/disable", ids["cat"]),
    ))
    .await;
    assert_eq!(s, 200);
    let (_, list) = send(app.admin(Method::GET, "/api/users?perpage=3&page=2")).await;
    assert_eq!(list[0]["isDisabled"], true);
    let (s, b) = send(app.admin(Method::GET, "/api/users?page=abc")).await;
    assert_eq!(s, 400, "{b}");
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
    // Kim's credential is verified, and cached under the login "kim".
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "kim", "kimpw1")).await;
    assert_eq!(s, 200);
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/users/{id}"))
            .json(&json!({"name": "Kim K", "login": "kimk"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "User updated"));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "kim", "kimpw1")).await;
    assert_eq!(
        s, 401,
        "the old login stops signing in at once, cached or not"
    );
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(
        (u["name"].as_str(), u["login"].as_str()),
        (Some("Kim K"), Some("kimk"))
    );
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "kimk", "kimpw1")).await;
    assert_eq!(s, 200, "the new login signs in");
    // A taken login or email, in any case: Grafana's case-insensitive login conflict.
    for body in [json!({"login": "LEE"}), json!({"email": "Lee@Example.org"})] {
        let (s, b) = send(
            app.admin(Method::PUT, &format!("/api/users/{id}"))
                .json(&body),
        )
        .await;
        assert_eq!(
            (s, message(&b)),
            (409, "Update would result in user login conflict"),
            "{body}"
        );
    }
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/users/{id}"))
            .json(&json!({"email": "bad"})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "Invalid email address"));
    let (s, b) = send(
        app.admin(Method::PUT, "/api/users/abc")
            .json(&json!({"name": "x"})),
    )
    .await;
    // Grafana 11 reads a non-numeric id as a uid: none such.
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/users/{id}"))
            .body("{\"name\": \"x\"}"),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"));
    // None of the refused updates changed anything.
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(
        (u["name"].as_str(), u["login"].as_str(), u["email"].as_str()),
        (Some("Kim K"), Some("kimk"), Some("kim@example.org"))
    );
}
