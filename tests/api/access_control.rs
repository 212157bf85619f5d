//! The access-control routes Grafana Enterprise clients call besides role CRUD: the RBAC
//! status, setting all of a user's roles at once, a role's assignments, removing a role, and
//! delegating role management (`permissions:type:delegate`) without escalation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{message, send, TestApp};

fn denied(v: &Value, action: &str) -> bool {
    message(v)
        == format!(
            "You'll need additional permissions to perform this action. Permissions needed: {action}"
        )
        && v["accessErrorId"].is_string()
        && v["title"] == "Access denied"
}

async fn create_role(app: &TestApp, uid: &str, permissions: Value) {
    let (s, v) = send(app.admin(Method::POST, "/api/access-control/roles").json(
        &json!({"uid": uid, "name": format!("custom:{uid}"), "global": true,
                          "permissions": permissions}),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
}

async fn assign(app: &TestApp, user: u64, role: &str) {
    let (s, v) = send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{user}/roles"),
        )
        .json(&json!({"roleUid": role})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// The uids of the user's custom roles, sorted.
async fn roles_of(app: &TestApp, user: u64) -> Vec<String> {
    let (s, v) = send(app.admin(
        Method::GET,
        &format!("/api/access-control/users/{user}/roles"),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let mut uids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uid"].as_str().unwrap().to_string())
        .collect();
    uids.sort();
    uids
}

#[tokio::test]
async fn status_says_rbac_is_on_to_those_allowed_to_ask() {
    let app = TestApp::spawn().await;
    let (s, v) = send(app.admin(Method::GET, "/api/access-control/status")).await;
    assert_eq!((s, v), (200, json!({"enabled": true})));
    let (s, _) = send(app.req(Method::GET, "/api/access-control/status")).await;
    assert_eq!(s, 401);
    let u = app.create_user("asker", "asker-pw-1").await;
    let ask = || {
        send(app.as_user(
            Method::GET,
            "/api/access-control/status",
            "asker",
            "asker-pw-1",
        ))
    };
    let (s, v) = ask().await;
    assert!(s == 403 && denied(&v, "status:accesscontrol"), "{s} {v}");
    create_role(
        &app,
        "status-reader",
        json!([{"action": "status:accesscontrol", "scope": "services:accesscontrol"}]),
    )
    .await;
    assign(&app, u, "status-reader").await;
    let (s, v) = ask().await;
    assert_eq!((s, v), (200, json!({"enabled": true})));
}

#[tokio::test]
async fn set_user_roles_replaces_them_all() {
    let app = TestApp::spawn().await;
    let u = app.create_user("ops", "ops-pw-1").await;
    create_role(
        &app,
        "saml-reader",
        json!([{"action": "settings:read", "scope": "settings:auth.saml:*"}]),
    )
    .await;
    create_role(
        &app,
        "stats-reader",
        json!([{"action": "server.stats:read", "scope": ""}]),
    )
    .await;
    create_role(
        &app,
        "user-reader",
        json!([{"action": "users:read", "scope": "global.users:*"}]),
    )
    .await;
    assign(&app, u, "saml-reader").await;
    let set = |body: Value| {
        send(
            app.admin(Method::PUT, &format!("/api/access-control/users/{u}/roles"))
                .json(&body),
        )
    };
    let settings = || send(app.as_user(Method::GET, "/api/admin/settings", "ops", "ops-pw-1"));
    let stats = || send(app.as_user(Method::GET, "/api/admin/stats", "ops", "ops-pw-1"));
    assert_eq!(settings().await.0, 200);
    assert_eq!(stats().await.0, 403);

    let (s, v) = set(json!({"roleUids": ["stats-reader", "user-reader", "stats-reader"]})).await;
    assert_eq!(
        (s, v),
        (200, json!({"message": "User roles have been updated."}))
    );
    assert_eq!(roles_of(&app, u).await, ["stats-reader", "user-reader"]);
    // It applies to the next request.
    assert_eq!(settings().await.0, 403);
    assert_eq!(stats().await.0, 200);

    // includeHidden as a query parameter (grafana_api_sdk) or a body field (the docs).
    let (s, v) = send(
        app.admin(
            Method::PUT,
            &format!("/api/access-control/users/{u}/roles?includeHidden=true"),
        )
        .json(&json!({"roleUids": ["saml-reader"], "global": true, "includeHidden": true})),
    )
    .await;
    assert_eq!((s, message(&v)), (200, "User roles have been updated."));
    assert_eq!(roles_of(&app, u).await, ["saml-reader"]);

    // An unknown role: 404, and nothing changes.
    let (s, v) = set(json!({"roleUids": ["stats-reader", "no-such-role"]})).await;
    assert_eq!((s, message(&v)), (404, "Role not found"));
    assert_eq!(roles_of(&app, u).await, ["saml-reader"]);
    // An unknown user.
    let (s, v) = send(
        app.admin(Method::PUT, "/api/access-control/users/9999/roles")
            .json(&json!({"roleUids": []})),
    )
    .await;
    assert_eq!((s, message(&v)), (404, "user not found"));
    // Bad input.
    for bad in [json!({}), json!({"roleUids": "saml-reader"}), json!([1])] {
        let (s, v) = set(bad.clone()).await;
        assert_eq!((s, message(&v)), (400, "bad request data"), "{bad}");
    }
    let (s, v) = send(
        app.admin(Method::PUT, "/api/access-control/users/abc/roles")
            .json(&json!({"roleUids": []})),
    )
    .await;
    assert_eq!((s, message(&v)), (400, "bad request data"));
    let (s, _) = send(
        app.req(Method::PUT, &format!("/api/access-control/users/{u}/roles"))
            .json(&json!({"roleUids": []})),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(roles_of(&app, u).await, ["saml-reader"]);

    // An empty set removes every custom role.
    let (s, _) = set(json!({"roleUids": []})).await;
    assert_eq!(s, 200);
    assert!(roles_of(&app, u).await.is_empty());
    assert_eq!(settings().await.0, 403);
}

#[tokio::test]
async fn set_user_roles_needs_add_and_remove_and_no_escalation() {
    let app = TestApp::spawn().await;
    let target = app.create_user("target", "target-pw-1").await;
    let adder = app.create_user("adder", "adder-pw-1").await;
    let manager = app.create_user("manager", "manager-pw-1").await;
    create_role(
        &app,
        "stats-reader",
        json!([{"action": "server.stats:read", "scope": ""}]),
    )
    .await;
    create_role(
        &app,
        "deleter",
        json!([{"action": "users:delete", "scope": "global.users:*"}]),
    )
    .await;
    // Grafana's delegation grants: users.roles:add/remove on permissions:type:delegate.
    create_role(
        &app,
        "adds-only",
        json!([{"action": "users.roles:add", "scope": "permissions:type:delegate"},
               {"action": "server.stats:read", "scope": ""}]),
    )
    .await;
    create_role(
        &app,
        "role-manager",
        json!([{"action": "users.roles:add", "scope": "permissions:type:delegate"},
               {"action": "users.roles:remove", "scope": "permissions:type:delegate"},
               {"action": "server.stats:read", "scope": ""}]),
    )
    .await;
    assign(&app, adder, "adds-only").await;
    assign(&app, manager, "role-manager").await;
    let set_as = |login: &'static str, pw: &'static str, uids: Value| {
        send(
            app.as_user(
                Method::PUT,
                &format!("/api/access-control/users/{target}/roles"),
                login,
                pw,
            )
            .json(&json!({ "roleUids": uids })),
        )
    };
    let (s, v) = set_as("target", "target-pw-1", json!(["stats-reader"])).await;
    assert!(s == 403 && denied(&v, "users.roles:add"), "{s} {v}");
    let (s, v) = set_as("adder", "adder-pw-1", json!(["stats-reader"])).await;
    assert!(s == 403 && denied(&v, "users.roles:remove"), "{s} {v}");
    let (s, v) = set_as("manager", "manager-pw-1", json!(["stats-reader"])).await;
    assert_eq!((s, message(&v)), (200, "User roles have been updated."));
    assert_eq!(roles_of(&app, target).await, ["stats-reader"]);
    // No handing out what one does not hold...
    let (s, v) = set_as(
        "manager",
        "manager-pw-1",
        json!(["stats-reader", "deleter"]),
    )
    .await;
    assert!(s == 403 && denied(&v, "users:delete"), "{s} {v}");
    assert_eq!(roles_of(&app, target).await, ["stats-reader"]);
    // ...nor taking it away.
    assign(&app, target, "deleter").await;
    let (s, v) = set_as("manager", "manager-pw-1", json!(["stats-reader"])).await;
    assert!(s == 403 && denied(&v, "users:delete"), "{s} {v}");
    assert_eq!(roles_of(&app, target).await, ["deleter", "stats-reader"]);
    let (s, v) = send(app.as_user(
        Method::DELETE,
        &format!("/api/access-control/users/{target}/roles/deleter"),
        "manager",
        "manager-pw-1",
    ))
    .await;
    assert!(s == 403 && denied(&v, "users:delete"), "{s} {v}");
    // Unchanged roles need no delegation: keeping `deleter` and dropping `stats-reader` is
    // within the manager's reach.
    let (s, v) = set_as("manager", "manager-pw-1", json!(["deleter"])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(roles_of(&app, target).await, ["deleter"]);
}

#[tokio::test]
async fn role_assignments_list_users_and_service_accounts() {
    let app = TestApp::spawn().await;
    let a = app.create_user("ada", "ada-pw-1").await;
    let b = app.create_user("bob", "bob-pw-1").await;
    let (s, v) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "robot", "role": "Viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let sa = v["id"].as_u64().unwrap();
    create_role(
        &app,
        "stats-reader",
        json!([{"action": "server.stats:read", "scope": ""}]),
    )
    .await;
    create_role(&app, "unused", json!([])).await;
    for id in [b, sa, a] {
        assign(&app, id, "stats-reader").await;
    }
    let get = |uid: &str| {
        send(app.admin(
            Method::GET,
            &format!("/api/access-control/roles/{uid}/assignments"),
        ))
    };
    let (s, v) = get("stats-reader").await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"role_uid": "stats-reader", "service_accounts": [sa], "teams": [], "users": [a, b]})
        )
    );
    let (s, v) = get("unused").await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"role_uid": "unused", "service_accounts": [], "teams": [], "users": []})
        )
    );
    // Fixed roles are held through basic roles only.
    let (s, v) = get("fixed_users_writer").await;
    assert_eq!((s, &v["users"]), (200, &json!([])), "{v}");
    let (s, v) = get("no-such-role").await;
    assert_eq!((s, message(&v)), (404, "Role not found"));
    // Removing an assignment shows.
    let (s, v) = send(app.admin(
        Method::DELETE,
        &format!("/api/access-control/users/{b}/roles/stats-reader"),
    ))
    .await;
    assert_eq!((s, v), (200, json!({"message": "Role removed from user."})));
    let (_, v) = get("stats-reader").await;
    assert_eq!(v["users"], json!([a]));

    // users.roles:read on users:id:* (Grafana's scope).
    let (s, _) = send(app.req(Method::GET, "/api/access-control/roles/unused/assignments")).await;
    assert_eq!(s, 401);
    let read = |login: &'static str, pw: &'static str| {
        send(app.as_user(
            Method::GET,
            "/api/access-control/roles/unused/assignments",
            login,
            pw,
        ))
    };
    let (s, v) = read("ada", "ada-pw-1").await;
    assert!(s == 403 && denied(&v, "users.roles:read"), "{s} {v}");
    create_role(
        &app,
        "one-user-roles",
        json!([{"action": "users.roles:read", "scope": format!("users:id:{a}")}]),
    )
    .await;
    assign(&app, a, "one-user-roles").await;
    let (s, v) = read("ada", "ada-pw-1").await;
    assert!(
        s == 403 && denied(&v, "users.roles:read"),
        "one user is not all: {s} {v}"
    );
    create_role(
        &app,
        "roles-reader",
        json!([{"action": "users.roles:read", "scope": "users:*"}]),
    )
    .await;
    assign(&app, b, "roles-reader").await;
    let (s, v) = read("bob", "bob-pw-1").await;
    assert_eq!((s, &v["role_uid"]), (200, &json!("unused")), "{v}");
}

/// Issue 17: a Grafana Admin could not create a role that delegates role management,
/// because the check wanted `users.roles:add` on `permissions:type:delegate` and the admin
/// held it only on `global.users:*`. As in Grafana, role managers now hold role management
/// on the delegate scope, and may hand it on.
#[tokio::test]
async fn a_grafana_admin_delegates_role_management() {
    let app = TestApp::spawn().await;
    let delegate = app.create_user("delegate", "delegate-pw-1").await;
    let target = app.create_user("target", "target-pw-1").await;
    let (s, v) = send(app.admin(Method::POST, "/api/access-control/roles").json(
        &json!({"uid": "delegator", "name": "custom:delegator", "global": true,
                "permissions": [
                    {"action": "users.roles:add", "scope": "permissions:type:delegate"},
                    {"action": "users.roles:remove", "scope": "permissions:type:delegate"},
                    {"action": "roles:write", "scope": "permissions:type:delegate"},
                    {"action": "roles:delete", "scope": "permissions:type:delegate"},
                    {"action": "users.roles:read", "scope": "users:*"},
                    {"action": "users:read", "scope": "global.users:*"}]}),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["permissions"][0],
        json!({"action": "users.roles:add", "scope": "permissions:type:delegate"})
    );
    assign(&app, delegate, "delegator").await;
    create_role(
        &app,
        "user-reader",
        json!([{"action": "users:read", "scope": "global.users:*"}]),
    )
    .await;
    create_role(
        &app,
        "deleter",
        json!([{"action": "users:delete", "scope": "global.users:*"}]),
    )
    .await;
    let as_delegate =
        |method: Method, path: &str| app.as_user(method, path, "delegate", "delegate-pw-1");
    let add = |role: &str| {
        send(
            as_delegate(
                Method::POST,
                &format!("/api/access-control/users/{target}/roles"),
            )
            .json(&json!({ "roleUid": role })),
        )
    };
    // The delegate assigns what it holds, and only that.
    let (s, v) = add("user-reader").await;
    assert_eq!((s, message(&v)), (200, "Role added to the user."));
    let (s, v) = add("deleter").await;
    assert!(s == 403 && denied(&v, "users:delete"), "{s} {v}");
    let (s, v) = send(as_delegate(
        Method::DELETE,
        &format!("/api/access-control/users/{target}/roles/user-reader"),
    ))
    .await;
    assert_eq!((s, message(&v)), (200, "Role removed from user."));
    // It creates roles within its own permissions, delegation included...
    let (s, v) = send(
        as_delegate(Method::POST, "/api/access-control/roles").json(&json!({
            "uid": "sub-delegator", "name": "custom:sub-delegator", "permissions": [
                {"action": "users.roles:add", "scope": "permissions:type:delegate"},
                {"action": "users:read", "scope": "global.users:*"}]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // ...and no more.
    let (s, v) = send(
        as_delegate(Method::POST, "/api/access-control/roles").json(&json!({
            "name": "custom:sneaky", "permissions": [
                {"action": "users:delete", "scope": "global.users:*"}]})),
    )
    .await;
    assert!(s == 403 && denied(&v, "users:delete"), "{s} {v}");
    let (s, v) = send(
        as_delegate(Method::POST, "/api/access-control/roles").json(&json!({
            "name": "custom:sneaky", "permissions": [
                {"action": "roles:read", "scope": "permissions:type:delegate"}]})),
    )
    .await;
    assert!(s == 403 && denied(&v, "roles:read"), "{s} {v}");
    // Deleting a role is delegated too: not one holding what the delegate lacks.
    let (s, v) = send(as_delegate(
        Method::DELETE,
        "/api/access-control/roles/deleter",
    ))
    .await;
    assert!(s == 403 && denied(&v, "users:delete"), "{s} {v}");
    let (s, v) = send(as_delegate(
        Method::DELETE,
        "/api/access-control/roles/sub-delegator",
    ))
    .await;
    assert_eq!((s, message(&v)), (200, "Role deleted"));
    // A user with none of it is refused at the door.
    let (s, v) = send(
        app.as_user(
            Method::POST,
            &format!("/api/access-control/users/{delegate}/roles"),
            "target",
            "target-pw-1",
        )
        .json(&json!({"roleUid": "user-reader"})),
    )
    .await;
    assert!(s == 403 && denied(&v, "users.roles:add"), "{s} {v}");
}
