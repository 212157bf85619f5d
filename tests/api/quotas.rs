//! Quotas (`[quota]`): Grafana's routes for org and user limits, their bodies and messages,
//! who may call them, and the checks on creation ("<service> Quota reached").

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const DENIED_PREFIX: &str =
    "You'll need additional permissions to perform this action. Permissions needed: ";

fn denied(status: u16, body: &Value, action: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(message(body), format!("{DENIED_PREFIX}{action}"), "{body}");
}

fn enabled(
    extra: &[(&'static str, &'static str, &'static str)],
) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = vec![("quota", "enabled", "true")];
    v.extend_from_slice(extra);
    v
}

/// The list as `target -> (limit, used)`, checking the owner key on every entry.
fn by_target(body: &Value, owner_key: &str, owner: u64) -> Vec<(String, i64, i64)> {
    let mut out: Vec<_> = body
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|q| {
            assert_eq!(q[owner_key].as_u64(), Some(owner), "{q}");
            let other = if owner_key == "org_id" {
                "user_id"
            } else {
                "org_id"
            };
            assert!(q.get(other).is_none(), "{q}");
            (
                q["target"].as_str().unwrap().to_string(),
                q["limit"].as_i64().unwrap(),
                q["used"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `PUT` a limit as the Grafana Admin; the status and body.
async fn put_limit(app: &TestApp, path: &str, limit: i64) -> (u16, Value) {
    send(
        app.admin(Method::PUT, path)
            .json(&json!({ "limit": limit })),
    )
    .await
}

fn entry<'a>(list: &'a [(String, i64, i64)], target: &str) -> &'a (String, i64, i64) {
    list.iter()
        .find(|(t, _, _)| t == target)
        .unwrap_or_else(|| panic!("no {target} in {list:?}"))
}

#[tokio::test]
async fn disabled_quotas_answer_grafanas_errutil_403_and_block_nothing() {
    let app = TestApp::spawn_with(&[("quota", "global_user", "0")]).await;
    let disabled = json!({
        "message": "Quotas not enabled",
        "messageId": "quota.disabled",
        "statusCode": 403,
        "traceID": ""
    });
    for path in [
        "/api/org/quotas",
        "/api/orgs/1/quotas",
        "/api/admin/users/1/quotas",
    ] {
        let (s, b) = send(app.admin(Method::GET, path)).await;
        assert_eq!((s, &b), (403, &disabled), "{path}");
    }
    let (s, b) = put_limit(&app, "/api/orgs/1/quotas/data_source", 1).await;
    assert_eq!((s, &b), (403, &disabled));
    // A limit of 0 refuses everything, but only once quotas are enabled.
    app.create_user("bob", "bob-pass-1").await;
}

#[tokio::test]
async fn org_quotas_list_and_change() {
    let app = TestApp::spawn_with(&enabled(&[("quota", "org_api_key", "7")])).await;
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/1/quotas")).await;
    assert_eq!(s, 200, "{b}");
    let list = by_target(&b, "org_id", 1);
    assert_eq!(
        list,
        vec![
            ("alert_rule".into(), 100, 0),
            ("api_key".into(), 7, 0),
            ("dashboard".into(), 100, 0),
            ("data_source".into(), 10, 0),
            ("org_user".into(), 10, 1),
        ],
        "[quota] defaults, one override from the file, the admin as the one member"
    );

    let (s, b) = send(
        app.admin(Method::PUT, "/api/orgs/1/quotas/data_source")
            .json(&json!({"limit": 3, "target": "ignored"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Organization quota updated"), "{b}");
    let (s, b) = send(app.admin(Method::GET, "/api/org/quotas")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(entry(&by_target(&b, "org_id", 1), "data_source").1, 3);

    let (s, b) = put_limit(&app, "/api/orgs/1/quotas/nonsense", 3).await;
    assert_eq!((s, message(&b)), (404, "Invalid quota target"), "{b}");
    let (s, b) = put_limit(&app, "/api/orgs/1/quotas/user", 3).await;
    assert_eq!(
        (s, message(&b)),
        (404, "Invalid quota target"),
        "a global target: {b}"
    );
    let (s, b) = put_limit(&app, "/api/orgs/99/quotas/data_source", 3).await;
    assert_eq!((s, message(&b)), (404, "Organization not found"), "{b}");
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/99/quotas")).await;
    assert_eq!((s, message(&b)), (404, "Organization not found"), "{b}");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/orgs/1/quotas/data_source")
            .json(&json!({"limit": "many"})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let (s, _) = send(app.req(Method::GET, "/api/orgs/1/quotas")).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn user_quotas_list_and_change() {
    let app = TestApp::spawn_with(&enabled(&[])).await;
    let bob = app.create_user("bob", "bob-pass-1").await;
    let (s, b) = send(app.admin(Method::GET, &format!("/api/admin/users/{bob}/quotas"))).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!([{"user_id": bob, "target": "org_user", "limit": 10, "used": 1}])
    );

    let (s, b) = send(
        app.admin(
            Method::PUT,
            &format!("/api/admin/users/{bob}/quotas/org_user"),
        )
        .json(&json!({"limit": 2})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (200, "Organization quota updated"),
        "Grafana's text: {b}"
    );
    let (s, b) = send(app.as_user(Method::GET, "/api/user/quotas", "bob", "bob-pass-1")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!([{"user_id": bob, "target": "org_user", "limit": 2, "used": 1}])
    );

    let (s, b) = send(
        app.admin(
            Method::PUT,
            &format!("/api/admin/users/{bob}/quotas/dashboard"),
        )
        .json(&json!({"limit": 2})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "Invalid quota target"), "{b}");
    let (s, b) = send(app.admin(Method::GET, "/api/admin/users/999/quotas")).await;
    assert_eq!((s, message(&b)), (404, "User not found"), "{b}");
    let (s, b) = put_limit(&app, "/api/admin/users/999/quotas/org_user", 2).await;
    assert_eq!((s, message(&b)), (404, "User not found"), "{b}");
}

#[tokio::test]
async fn who_may_read_and_change_quotas() {
    let app = TestApp::spawn_with(&enabled(&[])).await;
    let bob = app.create_user("bob", "bob-pass-1").await;
    let bob_req = |m: Method, p: &str| app.as_user(m, p, "bob", "bob-pass-1");
    // A Viewer reads its own org's quotas (fixed:organization:reader), nothing else.
    let (s, b) = send(bob_req(Method::GET, "/api/org/quotas")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(bob_req(Method::GET, "/api/orgs/1/quotas")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) =
        send(bob_req(Method::PUT, "/api/orgs/1/quotas/data_source").json(&json!({"limit": 1})))
            .await;
    denied(s, &b, "orgs.quotas:write");
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Two"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(bob_req(Method::GET, "/api/orgs/2/quotas")).await;
    denied(s, &b, "orgs.quotas:read");
    let (s, b) = send(bob_req(
        Method::GET,
        &format!("/api/admin/users/{bob}/quotas"),
    ))
    .await;
    denied(s, &b, "users.quotas:list");
    let (s, b) = send(
        bob_req(
            Method::PUT,
            &format!("/api/admin/users/{bob}/quotas/org_user"),
        )
        .json(&json!({"limit": 50})),
    )
    .await;
    denied(s, &b, "users.quotas:update");
}

#[tokio::test]
async fn creations_stop_at_their_limits() {
    let app = TestApp::spawn_with(&enabled(&[
        ("quota", "global_user", "2"),
        ("quota", "org_data_source", "1"),
        ("quota", "org_api_key", "1"),
        ("quota", "global_org", "2"),
    ]))
    .await;
    // Users: the admin and bob; then the limit.
    app.create_user("bob", "bob-pass-1").await;
    let (s, b) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "carol", "password": "carol-pass-1"})),
    )
    .await;
    assert_eq!((s, message(&b)), (403, "user Quota reached"), "{b}");
    // The permission check comes first: a Viewer is denied, not told about quotas.
    let (s, b) = send(
        app.as_user(Method::POST, "/api/admin/users", "bob", "bob-pass-1")
            .json(&json!({"login": "carol", "password": "carol-pass-1"})),
    )
    .await;
    denied(s, &b, "users:create");
    // Service accounts count against the user service, as creations of users.
    let (s, b) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "robot"})),
    )
    .await;
    assert_eq!((s, message(&b)), (403, "user Quota reached"), "{b}");

    // Data sources: one per org; a stored limit for the org lifts it.
    let ds = |name: &str| json!({"name": name, "type": "prometheus", "url": "http://p:9090", "access": "proxy"});
    let (s, b) = send(app.admin(Method::POST, "/api/datasources").json(&ds("one"))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::POST, "/api/datasources").json(&ds("two"))).await;
    assert_eq!((s, message(&b)), (403, "data_source Quota reached"), "{b}");
    let (s, b) = put_limit(&app, "/api/orgs/1/quotas/data_source", 2).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::POST, "/api/datasources").json(&ds("two"))).await;
    assert_eq!(s, 200, "a stored org limit wins over [quota]: {b}");

    // API keys: one per org.
    let key = |name: &str| json!({"name": name, "role": "Viewer"});
    let (s, b) = send(app.admin(Method::POST, "/api/auth/keys").json(&key("k1"))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::POST, "/api/auth/keys").json(&key("k2"))).await;
    assert_eq!((s, message(&b)), (403, "api_key Quota reached"), "{b}");

    // Orgs: the main org and one more.
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Two"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Three"})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).ends_with("Quota reached"), "{b}");
}

#[tokio::test]
async fn org_members_and_orgs_per_user_are_limited() {
    let app = TestApp::spawn_with(&enabled(&[("quota", "org_user", "2")])).await;
    app.create_user("bob", "bob-pass-1").await;
    app.create_user("carol", "carol-pass-1").await;
    // The main org holds admin, bob and carol (auto-assigned): over its limit of 2.
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Two"})),
    )
    .await;
    assert_eq!(
        s, 403,
        "the caller's current org is full, as Grafana checks: {b}"
    );
    assert_eq!(message(&b), "org Quota reached");
    let (s, b) = put_limit(&app, "/api/orgs/1/quotas/org_user", -1).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Two"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    // The admin now belongs to two orgs; with one org per user it can create no more.
    let (s, b) = put_limit(&app, "/api/admin/users/1/quotas/org_user", 2).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Three"})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).ends_with("Quota reached"), "{b}");

    // Adding members to the current org: limited by the org's own members.
    let (s, b) = put_limit(&app, "/api/orgs/1/quotas/org_user", 3).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = put_limit(&app, "/api/admin/users/1/quotas/org_user", 10).await;
    assert_eq!(s, 200, "{b}");
    app.create_user("dave", "dave-pass-1").await;
    let (s, b) = send(app.admin(Method::DELETE, "/api/org/users/4")).await;
    assert!(s == 200, "dave leaves the main org: {b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "dave", "role": "Viewer"})),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).ends_with("Quota reached"), "{b}");
}

#[tokio::test]
async fn only_the_current_org_route_checks_the_quota_when_adding_a_member() {
    let app = TestApp::spawn_with(&enabled(&[
        ("quota", "org_user", "2"),
        ("users", "auto_assign_org", "false"),
    ]))
    .await;
    app.create_user("bob", "bob-pass-1").await;
    app.create_user("carol", "carol-pass-1").await;
    let add = |path: &'static str, login: &'static str| {
        send(
            app.admin(Method::POST, path)
                .json(&json!({"loginOrEmail": login, "role": "Viewer"})),
        )
    };
    let (s, b) = add("/api/org/users", "bob").await;
    assert_eq!(s, 200, "admin alone in org 1: {b}");
    // Org 1 now holds its 2 members: Grafana's quota middleware refuses the current-org
    // route, and only it.
    let (s, b) = add("/api/org/users", "carol").await;
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).ends_with("Quota reached"), "{b}");
    let (s, b) = add("/api/orgs/1/users", "carol").await;
    assert_eq!(s, 200, "no quota check on /api/orgs/:orgId/users: {b}");
}
