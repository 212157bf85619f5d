//! The signed-in user's own routes (`PUT /api/user`, `PUT /api/user/password`,
//! `GET /api/user/orgs|teams`, `POST /api/user/using/:id`) and the user-scoped admin routes
//! `GET /api/users/:id/orgs|teams` and `POST /api/users/:id/using/:orgId`: Grafana's
//! bodies, statuses and messages, who may call them, and what they change.
//!
//! There is no org API yet: the extra orgs and memberships these tests need are written
//! through the store the server runs on.

use reqwest::Method;
use serde_json::{json, Value};
use tollgate::domain::{OrgId, OrgRole, UserId};
use tollgate::store::ProfileChange;

use crate::helpers::*;

const ONLY_FOR_USERS: &str = "Endpoint only available for users";

async fn add_org(app: &TestApp, id: u64, name: &str) {
    app.services
        .store
        .ensure_org(OrgId(id), name, 0)
        .await
        .unwrap();
}

async fn set_orgs(app: &TestApp, user: u64, orgs: &[(u64, OrgRole)]) {
    let orgs: Vec<(OrgId, OrgRole)> = orgs.iter().map(|(o, r)| (OrgId(*o), *r)).collect();
    app.services
        .store
        .set_memberships(UserId(user), &orgs, 0)
        .await
        .unwrap();
}

async fn make_ldap_user(app: &TestApp, user: u64) {
    let change = ProfileChange {
        auth_module: Some("ldap".into()),
        ..ProfileChange::default()
    };
    app.services
        .store
        .update_profile(UserId(user), &change, 0)
        .await
        .unwrap();
}

/// A legacy API key with the Admin org role.
async fn api_key(app: &TestApp) -> String {
    let (s, k) = send(
        app.admin(Method::POST, "/api/auth/keys")
            .json(&json!({"name": "k", "role": "Admin"})),
    )
    .await;
    assert_eq!(s, 200, "{k}");
    k["key"].as_str().unwrap().to_string()
}

/// A service-account token (the account is an org Admin).
async fn sa_token(app: &TestApp) -> String {
    let (s, sa) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "bot", "role": "Admin"})),
    )
    .await;
    assert_eq!(s, 201, "{sa}");
    let (s, t) = send(
        app.admin(
            Method::POST,
            &format!("/api/serviceaccounts/{}/tokens", sa["id"]),
        )
        .json(&json!({"name": "t"})),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    t["key"].as_str().unwrap().to_string()
}

async fn me(app: &TestApp, login: &str, pw: &str) -> Value {
    let (s, me) = send(app.as_user(Method::GET, "/api/user", login, pw)).await;
    assert_eq!(s, 200, "{login}: {me}");
    me
}

#[tokio::test]
async fn update_own_profile() {
    let app = TestApp::spawn().await;
    let id = app.create_user("kim", "kimpw1").await;
    app.create_user("lee", "leepw1").await;
    let put = |login: &str, pw: &str, body: Value| {
        app.as_user(Method::PUT, "/api/user", login, pw).json(&body)
    };

    let (s, b) = send(put(
        "kim",
        "kimpw1",
        json!({"name": "Kim K", "email": " kim2@example.org ", "login": " kimk ", "theme": "dark"}),
    ))
    .await;
    assert_eq!((s, b), (200, json!({"message": "User updated"})));
    let u = me(&app, "kimk", "kimpw1").await;
    assert_eq!(
        (&u["id"], &u["name"], &u["email"], &u["login"], &u["theme"]),
        (
            &json!(id),
            &json!("Kim K"),
            &json!("kim2@example.org"),
            &json!("kimk"),
            &json!("dark")
        ),
        "trimmed login and email"
    );
    // The old login no longer signs in, even though it was just used (and cached).
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "kim", "kimpw1")).await;
    assert_eq!(s, 401, "the old login");

    // No login: the login becomes the email; empty fields keep their value.
    let (s, b) = send(put("kimk", "kimpw1", json!({"email": "kim3@example.org"}))).await;
    assert_eq!((s, message(&b)), (200, "User updated"));
    let u = me(&app, "kim3@example.org", "kimpw1").await;
    assert_eq!(
        (&u["login"], &u["email"], &u["name"], &u["theme"]),
        (
            &json!("kim3@example.org"),
            &json!("kim3@example.org"),
            &json!("Kim K"),
            &json!("dark")
        )
    );
    let login = "kim3@example.org";

    // Neither login nor email (a name alone is not enough, as in Grafana).
    for body in [
        json!({"name": "Only Name"}),
        json!({}),
        json!({"login": "  ", "email": " "}),
    ] {
        let (s, b) = send(put(login, "kimpw1", body.clone())).await;
        assert_eq!(
            (s, b),
            (
                400,
                errutil(
                    "Need to specify either username or email",
                    "user.empty-username-and-email"
                )
            ),
            "Grafana's errutil body: {body}"
        );
    }
    assert_eq!(
        me(&app, login, "kimpw1").await["name"],
        "Kim K",
        "unchanged"
    );

    // Taken login or email (any case): Grafana's case-insensitive login conflict.
    for body in [
        json!({"login": "LEE"}),
        json!({"login": "kimk", "email": "Lee@Example.org"}),
    ] {
        let (s, b) = send(put(login, "kimpw1", body.clone())).await;
        assert_eq!(
            (s, message(&b)),
            (409, "Update would result in user login conflict"),
            "{body}"
        );
    }
    assert_eq!(me(&app, login, "kimpw1").await["login"], login, "unchanged");

    // Bad input.
    let (s, b) = send(put(
        login,
        "kimpw1",
        json!({"login": "kimk", "email": "bad"}),
    ))
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "Invalid email address"),
        "an invalid email"
    );
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/user", login, "kimpw1")
            .body("{\"login\": \"x\"}"),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "bad request data"),
        "no JSON content type"
    );
    let (s, b) = send(put(login, "kimpw1", json!({"login": 5}))).await;
    assert_eq!((s, message(&b)), (400, "bad request data"), "a number");

    let (s, _) = send(
        app.req(Method::PUT, "/api/user")
            .json(&json!({"login": "x"})),
    )
    .await;
    assert_eq!(s, 401, "no credentials");
}

#[tokio::test]
async fn change_own_password() {
    let app = TestApp::spawn().await;
    app.create_user("pat", "patpass1").await;
    let kept = app.login("pat", "patpass1").await;
    let other = app.login("pat", "patpass1").await;
    let change = |body: Value| {
        app.with_session_same_origin(Method::PUT, "/api/user/password", &kept)
            .json(&body)
    };

    for body in [
        json!({"oldPassword": "wrong", "newPassword": "newpass1", "confirmNew": "newpass1"}),
        json!({"newPassword": "newpass1"}),
        json!({"oldPassword": "", "newPassword": "newpass1"}),
    ] {
        let (s, b) = send(change(body.clone())).await;
        assert_eq!(
            (s, b),
            (
                400,
                errutil("Invalid old password", "user.password-missmatch")
            ),
            "Grafana >= 11: 400 errutil (401 before): {body}"
        );
    }
    for body in [
        json!({"oldPassword": "patpass1", "newPassword": "abc"}),
        json!({"oldPassword": "patpass1"}),
    ] {
        let (s, b) = send(change(body.clone())).await;
        assert_eq!(
            (s, b),
            (
                400,
                errutil(
                    "New password is too short",
                    "password.password-policy-too-short"
                )
            ),
            "{body}"
        );
    }
    let (s, b) = send(
        app.with_session_same_origin(Method::PUT, "/api/user/password", &kept)
            .body("oldPassword=patpass1"),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "pat", "patpass1")).await;
    assert_eq!(s, 200, "every refusal kept the password");

    // confirmNew is accepted and ignored, as Grafana's server does.
    let (s, b) = send(change(
        json!({"oldPassword": "patpass1", "newPassword": "newpass1", "confirmNew": "something else"}),
    ))
    .await;
    assert_eq!((s, b), (200, json!({"message": "User password changed"})));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "pat", "patpass1")).await;
    assert_eq!(
        s, 401,
        "the old password (cached a moment ago) stops working"
    );
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "pat", "newpass1")).await;
    assert_eq!(s, 200, "the new one works");
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &kept)).await;
    assert_eq!(s, 200, "the session the change came with stays");
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &other)).await;
    assert_eq!(s, 401, "every other session ends");

    // Through Basic auth: no session to keep, every session ends.
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/user/password", "pat", "newpass1")
            .json(&json!({"oldPassword": "newpass1", "newPassword": "newpass2"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "User password changed"));
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &kept)).await;
    assert_eq!(s, 401);

    let (s, _) = send(
        app.req(Method::PUT, "/api/user/password")
            .json(&json!({"oldPassword": "a", "newPassword": "bbbbbb"})),
    )
    .await;
    assert_eq!(s, 401, "no credentials");
}

#[tokio::test]
async fn strong_password_policy_applies_to_own_changes() {
    let app = TestApp::spawn_with(&[("auth.basic", "password_policy", "true")]).await;
    let (s, b) =
        send(app.admin(Method::POST, "/api/admin/users").json(
            &json!({"login": "sam", "email": "sam@example.org", "password": "Str0ng!Passw0rd"}),
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/user/password", "sam", "Str0ng!Passw0rd")
            .json(&json!({"oldPassword": "Str0ng!Passw0rd", "newPassword": "weakpassword"})),
    )
    .await;
    assert_eq!(
        (s, b),
        (
            400,
            errutil(
                "New password doesn't comply with the password policy",
                "password.password-policy-infringe"
            )
        )
    );
}

/// Grafana's errutil error body (no trace: `traceID` is "").
fn errutil(message: &str, id: &str) -> Value {
    json!({"message": message, "messageId": id, "statusCode": 400, "traceID": ""})
}

#[tokio::test]
async fn external_users_keep_their_profile_and_password() {
    let app = TestApp::spawn().await;
    let id = app.create_user("dir", "dirpass1").await;
    make_ldap_user(&app, id).await;
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/user", "dir", "dirpass1")
            .json(&json!({"login": "dir2", "name": "Other"})),
    )
    .await;
    assert_eq!((s, message(&b)), (403, "Cannot update external User"));
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/user/password", "dir", "dirpass1")
            .json(&json!({"oldPassword": "dirpass1", "newPassword": "newpass1"})),
    )
    .await;
    assert_eq!((s, message(&b)), (403, "Cannot update external User"));
    let u = me(&app, "dir", "dirpass1").await;
    assert_eq!((&u["login"], &u["name"]), (&json!("dir"), &json!("dir")));
}

#[tokio::test]
async fn api_keys_and_service_accounts_are_not_users() {
    let app = TestApp::spawn().await;
    let key = api_key(&app).await;
    let token = sa_token(&app).await;
    let routes = [
        (
            Method::PUT,
            "/api/user",
            Some(json!({"login": "x", "email": "x@example.org"})),
        ),
        (
            Method::PUT,
            "/api/user/password",
            Some(json!({"oldPassword": "a", "newPassword": "bbbbbb"})),
        ),
        (Method::GET, "/api/user/orgs", None),
        (Method::GET, "/api/user/teams", None),
        (Method::POST, "/api/user/using/1", Some(json!({}))),
    ];
    for (method, path, body) in routes {
        for (who, credential) in [("API key", &key), ("service-account token", &token)] {
            let mut req = app.req(method.clone(), path).bearer_auth(credential);
            if let Some(body) = &body {
                req = req.json(body);
            }
            let (s, b) = send(req).await;
            assert_eq!(
                (s, b),
                (403, json!({"message": ONLY_FOR_USERS})),
                "{who}: {method} {path}"
            );
        }
        let mut req = app.req(method.clone(), path);
        if let Some(body) = &body {
            req = req.json(body);
        }
        let (s, _) = send(req).await;
        assert_eq!(s, 401, "no credentials: {method} {path}");
    }
}

#[tokio::test]
async fn own_orgs_teams_and_switching_the_current_org() {
    let app = TestApp::spawn().await;
    let pat = app.create_user("pat", "patpass1").await;
    app.create_user("bob", "bobpass1").await;
    add_org(&app, 2, "beta org").await;
    add_org(&app, 3, "Alpha Org").await;
    set_orgs(
        &app,
        pat,
        &[
            (1, OrgRole::Viewer),
            (2, OrgRole::Admin),
            (3, OrgRole::Editor),
        ],
    )
    .await;

    let (s, orgs) = send(app.as_user(Method::GET, "/api/user/orgs", "pat", "patpass1")).await;
    assert_eq!(s, 200);
    assert_eq!(
        orgs,
        json!([
            {"orgId": 3, "name": "Alpha Org", "role": "Editor"},
            {"orgId": 2, "name": "beta org", "role": "Admin"},
            {"orgId": 1, "name": "Main Org.", "role": "Viewer"},
        ]),
        "sorted by name, case-insensitively"
    );
    let (s, orgs) = send(app.as_user(Method::GET, "/api/user/orgs", "bob", "bobpass1")).await;
    assert_eq!(
        (s, orgs),
        (
            200,
            json!([{"orgId": 1, "name": "Main Org.", "role": "Viewer"}])
        )
    );
    let (s, teams) = send(app.as_user(Method::GET, "/api/user/teams", "pat", "patpass1")).await;
    assert_eq!((s, teams), (200, json!([])));

    // Switch: the body is ignored (clients send `{}`); the next request acts in the org.
    assert_eq!(me(&app, "pat", "patpass1").await["orgId"], 1);
    let (s, b) = send(
        app.as_user(Method::POST, "/api/user/using/2", "pat", "patpass1")
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        (s, b),
        (200, json!({"message": "Active organization changed"}))
    );
    assert_eq!(me(&app, "pat", "patpass1").await["orgId"], 2);
    let session = app.login("pat", "patpass1").await;
    let (s, b) =
        send(app.with_session_same_origin(Method::POST, "/api/user/using/3", &session)).await;
    assert_eq!((s, message(&b)), (200, "Active organization changed"));
    let (_, u) = send(app.with_session(Method::GET, "/api/user", &session)).await;
    assert_eq!(u["orgId"], 3, "a session follows the switch too");

    // Not a member (or no such org): 401, as Grafana (not 403); nothing changes.
    for (login, pw, path) in [
        ("bob", "bobpass1", "/api/user/using/2"),
        ("pat", "patpass1", "/api/user/using/9"),
        ("pat", "patpass1", "/api/user/using/0"),
        ("pat", "patpass1", "/api/user/using/-1"),
    ] {
        let (s, b) = send(app.as_user(Method::POST, path, login, pw)).await;
        assert_eq!(
            (s, b),
            (401, json!({"message": "Not a valid organization"})),
            "{login} {path}"
        );
    }
    assert_eq!(me(&app, "pat", "patpass1").await["orgId"], 3);
    assert_eq!(me(&app, "bob", "bobpass1").await["orgId"], 1);
    for path in [
        "/api/user/using/abc",
        "/api/user/using/1.5",
        "/api/user/using/99999999999999999999",
    ] {
        let (s, b) = send(app.as_user(Method::POST, path, "pat", "patpass1")).await;
        assert_eq!((s, message(&b)), (400, "id is invalid"), "{path}");
    }
}

#[tokio::test]
async fn a_users_orgs_and_teams_need_users_read() {
    let app = TestApp::spawn().await;
    let pat = app.create_user("pat", "patpass1").await;
    let bob = app.create_user("bob", "bobpass1").await;
    add_org(&app, 2, "Second").await;
    set_orgs(&app, pat, &[(2, OrgRole::Editor), (1, OrgRole::Admin)]).await;
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{pat}"))).await;
    let uid = u["uid"].as_str().unwrap().to_string();
    let expected = json!([
        {"orgId": 1, "name": "Main Org.", "role": "Admin"},
        {"orgId": 2, "name": "Second", "role": "Editor"},
    ]);

    // A Grafana Admin: by id or uid; an unknown id has no orgs, an unknown uid is 404.
    for id in [pat.to_string(), uid.clone()] {
        let (s, orgs) = send(app.admin(Method::GET, &format!("/api/users/{id}/orgs"))).await;
        assert_eq!((s, &orgs), (200, &expected), "{id}");
        let (s, teams) = send(app.admin(Method::GET, &format!("/api/users/{id}/teams"))).await;
        assert_eq!((s, teams), (200, json!([])), "{id}");
    }
    let (s, orgs) = send(app.admin(Method::GET, "/api/users/999/orgs")).await;
    assert_eq!((s, orgs), (200, json!([])));
    for path in [
        "/api/users/no-such-uid/orgs",
        "/api/users/no-such-uid/teams",
    ] {
        let (s, b) = send(app.admin(Method::GET, path)).await;
        assert_eq!((s, message(&b)), (404, "User not found"), "{path}");
    }

    // A plain user, even about themselves, and an org-Admin API key: RBAC denial.
    let key = api_key(&app).await;
    for id in [pat, bob] {
        for list in ["orgs", "teams"] {
            let path = format!("/api/users/{id}/{list}");
            let (s, b) = send(app.as_user(Method::GET, &path, "bob", "bobpass1")).await;
            assert_eq!(s, 403, "{path}: {b}");
            assert_eq!(
                message(&b),
                "You'll need additional permissions to perform this action. Permissions needed: users:read"
            );
            assert_eq!(b["title"], "Access denied");
            let (s, _) = send(app.req(Method::GET, &path).bearer_auth(&key)).await;
            assert_eq!(s, 403, "API key: {path}");
            let (s, _) = send(app.req(Method::GET, &path)).await;
            assert_eq!(s, 401, "no credentials: {path}");
        }
    }
    let (s, _) = send(app.as_user(
        Method::GET,
        "/api/users/no-such-uid/orgs",
        "bob",
        "bobpass1",
    ))
    .await;
    assert_eq!(s, 403, "denied before the uid is looked up");

    // `users:read` on one user reads that user's orgs only.
    let (s, r) = send(app.admin(Method::POST, "/api/access-control/roles").json(&json!({
        "uid": "read-pat", "name": "custom:read:pat", "global": true,
        "permissions": [{"action": "users:read", "scope": format!("global.users:id:{pat}")}],
    })))
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{bob}/roles"),
        )
        .json(&json!({"roleUid": "read-pat", "global": true})),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, orgs) = send(app.as_user(
        Method::GET,
        &format!("/api/users/{pat}/orgs"),
        "bob",
        "bobpass1",
    ))
    .await;
    assert_eq!((s, orgs), (200, expected));
    let (s, _) = send(app.as_user(
        Method::GET,
        &format!("/api/users/{bob}/orgs"),
        "bob",
        "bobpass1",
    ))
    .await;
    assert_eq!(s, 403, "not on another user");
}

#[tokio::test]
async fn switching_another_users_org_needs_users_write() {
    let app = TestApp::spawn().await;
    let pat = app.create_user("pat", "patpass1").await;
    let bob = app.create_user("bob", "bobpass1").await;
    add_org(&app, 2, "Second").await;
    set_orgs(&app, pat, &[(1, OrgRole::Viewer), (2, OrgRole::Editor)]).await;
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{pat}"))).await;
    let uid = u["uid"].as_str().unwrap().to_string();

    let (s, b) = send(
        app.admin(Method::POST, &format!("/api/users/{pat}/using/2"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        (s, b),
        (200, json!({"message": "Active organization changed"}))
    );
    assert_eq!(me(&app, "pat", "patpass1").await["orgId"], 2);
    let (s, _) = send(app.admin(Method::POST, &format!("/api/users/{uid}/using/1"))).await;
    assert_eq!(s, 200, "by uid");
    assert_eq!(me(&app, "pat", "patpass1").await["orgId"], 1);

    for (path, status, msg) in [
        (
            format!("/api/users/{bob}/using/2"),
            401,
            "Not a valid organization",
        ),
        (
            format!("/api/users/{pat}/using/9"),
            401,
            "Not a valid organization",
        ),
        (
            "/api/users/999/using/1".to_string(),
            401,
            "Not a valid organization",
        ),
        (
            format!("/api/users/{pat}/using/abc"),
            400,
            "orgId is invalid",
        ),
        (
            "/api/users/no-such-uid/using/1".to_string(),
            404,
            "User not found",
        ),
    ] {
        let (s, b) = send(app.admin(Method::POST, &path)).await;
        assert_eq!((s, message(&b)), (status, msg), "{path}");
    }
    assert_eq!(me(&app, "bob", "bobpass1").await["orgId"], 1);

    let key = api_key(&app).await;
    for path in [
        format!("/api/users/{pat}/using/2"),
        format!("/api/users/{bob}/using/1"),
    ] {
        let (s, b) = send(app.as_user(Method::POST, &path, "bob", "bobpass1")).await;
        assert_eq!(s, 403, "{path}");
        assert_eq!(
            message(&b),
            "You'll need additional permissions to perform this action. Permissions needed: users:write"
        );
        let (s, _) = send(app.req(Method::POST, &path).bearer_auth(&key)).await;
        assert_eq!(s, 403, "API key: {path}");
        let (s, _) = send(app.req(Method::POST, &path)).await;
        assert_eq!(s, 401, "no credentials: {path}");
    }
    assert_eq!(me(&app, "pat", "patpass1").await["orgId"], 1, "unchanged");
}
