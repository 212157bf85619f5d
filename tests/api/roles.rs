//! Custom roles through the API: create, read, optimistic updates, delete; assignments that
//! apply on the next request; basic-role grants; no privilege escalation; the explanation
//! of where a permission comes from.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{message, send, TestApp};

async fn create_role(app: &TestApp, body: Value) -> (u16, Value) {
    send(
        app.admin(Method::POST, "/api/access-control/roles")
            .json(&body),
    )
    .await
}

async fn assign(app: &TestApp, user: u64, role: &str) -> (u16, Value) {
    send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{user}/roles"),
        )
        .json(&json!({"roleUid": role, "global": true})),
    )
    .await
}

#[tokio::test]
async fn role_crud_with_validation_and_versions() {
    let app = TestApp::spawn().await;
    let (s, r) = create_role(
        &app,
        json!({"uid": "saml-enabled-reader", "name": "custom:saml:enabled", "version": 1, "global": true,
               "permissions": [{"action": "settings:read", "scope": "settings:auth.saml:enabled"}]}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["permissions"][0]["scope"], "settings:auth.saml:enabled");
    let (s, got) =
        send(app.admin(Method::GET, "/api/access-control/roles/saml-enabled-reader")).await;
    assert_eq!(
        (s, got["name"].as_str()),
        (200, Some("custom:saml:enabled"))
    );
    let (_, all) = send(app.admin(Method::GET, "/api/access-control/roles")).await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"custom:saml:enabled") && names.contains(&"fixed:users:writer"),
        "{names:?}"
    );

    // Refusals.
    let (s, v) = create_role(&app, json!({"name": "custom:x", "permissions": [{"action": "users:fly"}, {"action": "users:read"}, {"action": "dreams:read"}]})).await;
    assert_eq!(
        (s, message(&v)),
        (400, "unknown action(s): users:fly, dreams:read")
    );
    let (s, _) = create_role(&app, json!({"name": "fixed:mine", "permissions": []})).await;
    assert_eq!(s, 400);
    let (s, _) = create_role(
        &app,
        json!({"name": "custom:saml:enabled", "permissions": []}),
    )
    .await;
    assert_eq!(s, 409);
    // Both spellings of a renamed action.
    let (s, v) = create_role(
        &app,
        json!({"name": "custom:pw", "permissions": [
        {"action": "users.password:update", "scope": "global.users:*"},
        {"action": "users.password:write", "scope": "global.users:*"}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Optimistic concurrency.
    let update = |version: i64| {
        app.admin(Method::PUT, "/api/access-control/roles/saml-enabled-reader")
            .json(&json!({
            "name": "custom:saml:enabled", "version": version, "global": true,
            "permissions": [{"action": "settings:read", "scope": "settings:auth.saml:*"}]}))
    };
    let (s, v) = send(update(2)).await;
    assert_eq!((s, v["version"].as_i64()), (200, Some(2)));
    let (s, v) = send(update(2)).await;
    assert_eq!(s, 409, "a stale version: {v}");
    // Fixed roles are read-only.
    let (s, _) = send(app.admin(
        Method::DELETE,
        "/api/access-control/roles/fixed_users_writer",
    ))
    .await;
    assert_eq!(s, 400);
    let (s, v) = send(app.admin(
        Method::DELETE,
        "/api/access-control/roles/saml-enabled-reader",
    ))
    .await;
    assert_eq!((s, message(&v)), (200, "Role deleted"));
    let (s, _) =
        send(app.admin(Method::GET, "/api/access-control/roles/saml-enabled-reader")).await;
    assert_eq!(s, 404);
    // Callers without roles:write.
    app.create_user("nobody", "nobody-pw-1").await;
    let (s, v) = send(
        app.as_user(
            Method::POST,
            "/api/access-control/roles",
            "nobody",
            "nobody-pw-1",
        )
        .json(&json!({"name": "custom:y", "permissions": []})),
    )
    .await;
    assert_eq!(s, 403);
    assert!(message(&v).contains("roles:write"), "{v}");
}

#[tokio::test]
async fn an_assignment_applies_on_the_next_request() {
    let app = TestApp::spawn().await;
    let u = app.create_user("saml-ops", "saml-ops-pw").await;
    let get = || {
        send(app.as_user(
            Method::GET,
            "/api/admin/settings",
            "saml-ops",
            "saml-ops-pw",
        ))
    };
    assert_eq!(get().await.0, 403);
    create_role(
        &app,
        json!({"uid": "one-key", "name": "custom:one-key", "global": true,
        "permissions": [{"action": "settings:read", "scope": "settings:auth.saml:enabled"}]}),
    )
    .await;
    let (s, v) = assign(&app, u, "one-key").await;
    assert_eq!((s, message(&v)), (200, "Role added to the user."));
    let (s, v) = get().await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"auth.saml": {"enabled": "false"}}),
        "exactly one key"
    );
    // A rename keeps the assignment (it is held by id).
    let (s, v) = send(
        app.admin(Method::PUT, &format!("/api/users/{u}"))
            .json(&json!({
        "login": "saml-ops-renamed", "email": "saml-ops@example.org", "name": "SAML ops"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let get = || {
        send(app.as_user(
            Method::GET,
            "/api/admin/settings",
            "saml-ops-renamed",
            "saml-ops-pw",
        ))
    };
    assert_eq!(get().await.0, 200, "still assigned after the rename");
    let (_, roles) =
        send(app.admin(Method::GET, &format!("/api/access-control/users/{u}/roles"))).await;
    assert_eq!(roles[0]["uid"], "one-key");
    // Explained.
    let (s, perms) = send(app.admin(
        Method::GET,
        &format!("/api/access-control/users/{u}/permissions"),
    ))
    .await;
    assert_eq!(s, 200);
    assert!(
        perms
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["action"] == "settings:read" && p["role"] == "custom:one-key"),
        "{perms}"
    );
    let (s, v) = send(app.admin(
        Method::DELETE,
        &format!("/api/access-control/users/{u}/roles/one-key"),
    ))
    .await;
    assert_eq!((s, message(&v)), (200, "Role removed from user."));
    assert_eq!(get().await.0, 403);
    // A basic-role grant reaches every Viewer.
    let (s, _) = send(
        app.admin(Method::POST, "/api/access-control/builtin-roles")
            .json(&json!({"roleUid": "one-key", "builtinRole": "Viewer", "global": true})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(get().await.0, 200);
    let (_, grants) = send(app.admin(Method::GET, "/api/access-control/builtin-roles")).await;
    assert_eq!(grants["Viewer"][0]["uid"], "one-key");
}

#[tokio::test]
async fn no_escalation_through_assignment() {
    let app = TestApp::spawn().await;
    let delegate = app.create_user("delegate", "delegate-pw").await;
    let target = app.create_user("target", "target-pw-1").await;
    // The delegate may assign roles, but holds no users:delete.
    create_role(
        &app,
        json!({"uid": "assigner", "name": "custom:assigner", "global": true, "permissions": [
        {"action": "users.roles:add", "scope": "global.users:*"},
        {"action": "users.roles:read", "scope": "global.users:*"}]}),
    )
    .await;
    create_role(
        &app,
        json!({"uid": "deleter", "name": "custom:deleter", "global": true, "permissions": [
        {"action": "users:delete", "scope": "global.users:*"}]}),
    )
    .await;
    create_role(
        &app,
        json!({"uid": "reader", "name": "custom:reader", "global": true, "permissions": [
        {"action": "users.roles:read", "scope": "global.users:*"}]}),
    )
    .await;
    assert_eq!(assign(&app, delegate, "assigner").await.0, 200);
    let as_delegate = |role: &str| {
        app.as_user(
            Method::POST,
            &format!("/api/access-control/users/{target}/roles"),
            "delegate",
            "delegate-pw",
        )
        .json(&json!({"roleUid": role}))
    };
    let (s, v) = send(as_delegate("deleter")).await;
    assert_eq!(s, 403, "{v}");
    assert!(
        message(&v).contains("users:delete"),
        "the 403 names the missing permission: {v}"
    );
    assert!(v["accessErrorId"].is_string());
    // A role whose permissions the delegate holds is fine.
    let (s, v) = send(as_delegate("reader")).await;
    assert_eq!(s, 200, "{v}");
    // Nor can it create a role with more than it holds.
    let (s, _) = send(app.as_user(Method::POST, "/api/access-control/roles", "delegate", "delegate-pw")
        .json(&json!({"name": "custom:sneaky", "permissions": [{"action": "users:delete", "scope": "global.users:*"}]}))).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn reading_a_users_permissions_is_grafanas_action() {
    let app = TestApp::spawn().await;
    let target = app.create_user("target", "target-pw-1").await;
    let reader = app.create_user("perm-reader", "perm-reader-pw").await;
    app.create_user("outsider", "outsider-pw").await;
    let explain = |login: &str, pw: &str| {
        send(app.as_user(
            Method::GET,
            &format!("/api/access-control/users/{target}/permissions"),
            login,
            pw,
        ))
    };
    let (s, v) = explain("outsider", "outsider-pw").await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(
        message(&v),
        "You'll need additional permissions to perform this action. Permissions needed: users.roles:read"
    );
    // Grantable through the API, in Grafana's spelling and scope and in the older one.
    let (s, v) = create_role(
        &app,
        json!({"uid": "perm-reader", "name": "custom:perm-reader", "global": true, "permissions": [
        {"action": "users.permissions:read", "scope": "users:*"},
        {"action": "users.permissions:list", "scope": "users:*"}]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(assign(&app, reader, "perm-reader").await.0, 200);
    let (s, v) = explain("perm-reader", "perm-reader-pw").await;
    assert_eq!(s, 200, "{v}");
}
