//! `/api/admin/users*`: every documented status, bad input and auth.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn create_user_succeeds_and_is_readable() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.admin(Method::POST, "/api/admin/users").json(&json!({
        "name": "Alice", "email": "alice@example.org", "login": "alice", "password": "alicepw1"
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(message(&body), "User created");
    let id = body["id"].as_u64().unwrap();
    let uid = body["uid"].as_str().unwrap().to_string();
    assert_eq!(uid.len(), 14);
    let (status, user) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(user["login"], "alice");
    assert_eq!(user["email"], "alice@example.org");
    assert_eq!(user["name"], "Alice");
    assert_eq!(user["isGrafanaAdmin"], false);
    assert_eq!(user["orgId"], 1);
    let (_, by_uid) = send(app.admin(Method::GET, &format!("/api/users/{uid}"))).await;
    assert_eq!(by_uid["id"].as_u64(), Some(id));
    // The new user signs in with Basic auth and is a Viewer of org 1.
    let (status, me) = send(app.as_user(Method::GET, "/api/user", "alice", "alicepw1")).await;
    assert_eq!(status, 200);
    assert_eq!(me["login"], "alice");
}

#[tokio::test]
async fn create_user_keys_match_case_insensitively() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.admin(Method::POST, "/api/admin/users").json(&json!({
        "Name": "Bob", "Email": "bob@example.org", "Login": "bob", "Password": "bobpass1", "OrgId": 1
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, user) = send(app.admin(
        Method::GET,
        "/api/users/lookup?loginOrEmail=bob@example.org",
    ))
    .await;
    assert_eq!(user["login"], "bob");
    assert_eq!(user["name"], "Bob");
}

#[tokio::test]
async fn create_user_login_defaults_to_email_and_email_to_login() {
    let app = TestApp::spawn().await;
    let (s1, _) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"email": "only@example.org", "password": "pass1"})),
    )
    .await;
    let (s2, _) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "onlylogin", "password": "pass1"})),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    let (_, a) = send(app.admin(
        Method::GET,
        "/api/users/lookup?loginOrEmail=only@example.org",
    ))
    .await;
    assert_eq!(a["login"], "only@example.org");
    let (_, b) = send(app.admin(Method::GET, "/api/users/lookup?loginOrEmail=onlylogin")).await;
    assert_eq!(b["email"], "onlylogin");
}

#[tokio::test]
async fn create_user_duplicates_get_412_case_insensitively() {
    let app = TestApp::spawn().await;
    app.create_user("carol", "carolpw").await;
    for body in [
        json!({"login": "CAROL", "email": "other@example.org", "password": "pass1"}),
        json!({"login": "other", "email": "Carol@Example.org", "password": "pass1"}),
    ] {
        let (status, resp) = send(app.admin(Method::POST, "/api/admin/users").json(&body)).await;
        assert_eq!(status, 412, "{resp}");
        assert_eq!(
            message(&resp),
            format!(
                "User with email '{}' or username '{}' already exists",
                body["email"].as_str().unwrap(),
                body["login"].as_str().unwrap()
            )
        );
    }
}

#[tokio::test]
async fn create_user_bad_input_gets_400() {
    let app = TestApp::spawn().await;
    let cases: Vec<(RequestBody, &str)> = vec![
        (RequestBody::Json(json!({"login": "x"})), "bad request data"),
        // Required: an empty password fails Grafana's binding before any rule.
        (
            RequestBody::Json(json!({"login": "x", "password": ""})),
            "bad request data",
        ),
        (
            RequestBody::Json(json!({"login": "x", "password": "abc"})),
            "Password is missing or too short",
        ),
        (
            RequestBody::Json(json!({"password": "abcdef"})),
            "Validation error, need specify either username or email",
        ),
        (
            RequestBody::Json(json!({"login": "  ", "email": " ", "password": "abcdef"})),
            "Validation error, need specify either username or email",
        ),
        (
            RequestBody::Json(json!({"login": "x", "email": "not-an-email", "password": "abcdef"})),
            "invalid email address 'not-an-email'",
        ),
        (
            RequestBody::Json(json!({"login": "x", "password": "abcdef", "orgId": 99})),
            "organization not found",
        ),
        (RequestBody::Json(json!([1, 2])), "bad request data"),
        (
            RequestBody::Json(json!({"login": 5, "password": "abcdef"})),
            "bad request data",
        ),
        (
            RequestBody::Raw("application/json", "{not json"),
            "bad request data",
        ),
        (
            RequestBody::Raw("text/plain", "{\"login\":\"x\",\"password\":\"abcdef\"}"),
            "bad request data",
        ),
        (
            RequestBody::NoContentType("{\"login\":\"x\",\"password\":\"abcdef\"}"),
            "bad request data",
        ),
    ];
    for (body, expected) in cases {
        let req = body.apply(app.admin(Method::POST, "/api/admin/users"));
        let (status, resp) = send(req).await;
        assert_eq!(status, 400, "{body:?}: {resp}");
        assert_eq!(message(&resp), expected, "{body:?}");
    }
}

#[derive(Debug)]
pub enum RequestBody {
    Json(serde_json::Value),
    Raw(&'static str, &'static str),
    NoContentType(&'static str),
}

impl RequestBody {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::Json(v) => req.json(v),
            Self::Raw(ct, body) => req.header("content-type", *ct).body(*body),
            Self::NoContentType(body) => req.body(*body),
        }
    }
}

#[tokio::test]
async fn a_ten_megabyte_body_gets_413() {
    let app = TestApp::spawn().await;
    let big = format!(
        "{{\"login\":\"x\",\"password\":\"{}\"}}",
        "a".repeat(10 << 20)
    );
    let (status, body) = send(
        app.admin(Method::POST, "/api/admin/users")
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(!message(&body).is_empty());
}

#[tokio::test]
async fn admin_endpoints_require_credentials_and_permissions() {
    let app = TestApp::spawn().await;
    let id = app.create_user("viewer", "viewerpw").await;
    let target = format!("/api/admin/users/{id}");
    let endpoints: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (
            Method::POST,
            "/api/admin/users".into(),
            Some(json!({"login": "z", "password": "zzzz"})),
        ),
        (
            Method::PUT,
            format!("{target}/password"),
            Some(json!({"password": "newpass"})),
        ),
        (
            Method::PUT,
            format!("{target}/permissions"),
            Some(json!({"isGrafanaAdmin": true})),
        ),
        (Method::DELETE, target.clone(), None),
        (Method::POST, format!("{target}/disable"), None),
        (Method::POST, format!("{target}/enable"), None),
    ];
    for (method, path, body) in endpoints {
        let with_body = |r: reqwest::RequestBuilder| match &body {
            Some(b) => r.json(b),
            None => r,
        };
        let (s, b) = send(with_body(app.req(method.clone(), &path))).await;
        assert_eq!((s, message(&b)), (401, "Unauthorized"), "{method} {path}");
        let (s, b) = send(with_body(app.as_user(
            method.clone(),
            &path,
            ADMIN,
            "wrong",
        )))
        .await;
        assert_eq!(
            (s, message(&b)),
            (401, "invalid username or password"),
            "{method} {path}"
        );
        let (s, b) = send(with_body(app.as_user(
            method.clone(),
            &path,
            "viewer",
            "viewerpw",
        )))
        .await;
        assert_eq!(s, 403, "{method} {path}: {b}");
        assert_eq!(b["title"], "Access denied");
        assert!(b["accessErrorId"].as_str().unwrap().starts_with("ACE"));
        assert!(message(&b).starts_with(
            "You'll need additional permissions to perform this action. Permissions needed: "
        ));
    }
}

#[tokio::test]
async fn password_change_takes_effect_at_once() {
    let app = TestApp::spawn().await;
    let id = app.create_user("dave", "oldpass").await;
    // Warm the credential cache with the old password.
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "dave", "oldpass")).await;
    assert_eq!(s, 200);
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({"password": "newpass"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "User password updated"));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "dave", "oldpass")).await;
    assert_eq!(s, 401, "the cached old password must stop working");
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "dave", "newpass")).await;
    assert_eq!(s, 200);
    // Errors.
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({"password": "abc"})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "New password is too short"));
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({"password": ""})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"), "required");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/admin/users/999/password")
            .json(&json!({"password": "abcdef"})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(
        app.admin(Method::PUT, "/api/admin/users/not-a-user/password")
            .json(&json!({"password": "abcdef"})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"));
}

#[tokio::test]
async fn strong_password_policy_is_enforced() {
    let app = TestApp::spawn_with(&[("auth.basic", "password_policy", "true")]).await;
    let (s, b) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "p", "password": "weakpassword"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "New password doesn't comply with the password policy")
    );
    let (s, _) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "p", "password": "Str0ng-Passw0rd!"})),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn grafana_admin_flag_and_last_admin_protection() {
    let app = TestApp::spawn().await;
    let (s, b) = send(
        app.admin(Method::PUT, "/api/admin/users/1/permissions")
            .json(&json!({"isGrafanaAdmin": false})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "cannot remove last grafana admin"));
    // The flag is not required (Grafana): absent means false.
    let (s, b) = send(
        app.admin(Method::PUT, "/api/admin/users/1/permissions")
            .json(&json!({})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "cannot remove last grafana admin"));
    let id = app.create_user("erin", "erinpw").await;
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{id}/permissions"))
            .json(&json!({"IsGrafanaAdmin": true})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "User permissions updated"));
    // Erin is now a Grafana Admin and can create users.
    let (s, _) = send(
        app.as_user(Method::POST, "/api/admin/users", "erin", "erinpw")
            .json(&json!({"login": "f", "password": "ffff"})),
    )
    .await;
    assert_eq!(s, 200);
    // With two admins, the first may be demoted.
    let (s, _) = send(
        app.as_user(
            Method::PUT,
            "/api/admin/users/1/permissions",
            "erin",
            "erinpw",
        )
        .json(&json!({"isGrafanaAdmin": false})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "g", "password": "gggg"})),
    )
    .await;
    assert_eq!(s, 403, "a demoted admin loses the admin API");
    let (s, b) = send(
        app.as_user(
            Method::PUT,
            "/api/admin/users/999/permissions",
            "erin",
            "erinpw",
        )
        .json(&json!({"isGrafanaAdmin": true})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(
        app.as_user(
            Method::PUT,
            &format!("/api/admin/users/{id}/permissions"),
            "erin",
            "erinpw",
        )
        .json(&json!({"isGrafanaAdmin": "yes"})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"));
}

#[tokio::test]
async fn delete_user_and_its_credentials() {
    let app = TestApp::spawn().await;
    let id = app.create_user("frank", "frankpw").await;
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "frank", "frankpw")).await;
    assert_eq!(s, 200);
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/admin/users/{id}"))).await;
    assert_eq!((s, message(&b)), (200, "User deleted"));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "frank", "frankpw")).await;
    assert_eq!(
        s, 401,
        "a deleted user's cached credentials must stop working"
    );
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/admin/users/{id}"))).await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(app.admin(Method::DELETE, "/api/admin/users/1")).await;
    assert_eq!((s, message(&b)), (400, "cannot remove last grafana admin"));
    // The login is free again.
    app.create_user("frank", "frankpw2").await;
}

#[tokio::test]
async fn disable_and_enable() {
    let app = TestApp::spawn().await;
    let id = app.create_user("gina", "ginapw").await;
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "gina", "ginapw")).await;
    assert_eq!(s, 200);
    let (s, b) = send(app.admin(Method::POST, &format!("/api/admin/users/{id}/disable"))).await;
    assert_eq!((s, message(&b)), (200, "User disabled"));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "gina", "ginapw")).await;
    assert_eq!(s, 401, "a disabled user is refused");
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(u["isDisabled"], true);
    let (s, b) = send(app.admin(Method::POST, &format!("/api/admin/users/{id}/enable"))).await;
    assert_eq!((s, message(&b)), (200, "User enabled"));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "gina", "ginapw")).await;
    assert_eq!(s, 200);
    let (s, b) = send(app.admin(Method::POST, "/api/admin/users/4242/disable")).await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(app.admin(Method::POST, "/api/admin/users/4242/enable")).await;
    assert_eq!((s, message(&b)), (404, "User not found"));
}

#[tokio::test]
async fn auto_assign_org_off_creates_an_org_per_user() {
    let app = TestApp::spawn_with(&[("users", "auto_assign_org", "false")]).await;
    let id = app.create_user("henry", "henrypw").await;
    let (_, u) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_ne!(u["orgId"], 1, "{u}");
    // OrgId is ignored when auto_assign_org is off, as in Grafana.
    let (s, _) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "i", "password": "iiii", "orgId": 77})),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn auto_assign_org_role_applies() {
    let app = TestApp::spawn_with(&[("users", "auto_assign_org_role", "Editor")]).await;
    let id = app.create_user("ivy", "ivypw").await;
    let user = app.services.store.clone();
    let row = user
        .user(tollgate::domain::UserId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.role_in(tollgate::domain::OrgId(1)),
        Some(tollgate::domain::OrgRole::Editor)
    );
}
