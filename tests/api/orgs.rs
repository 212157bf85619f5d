//! The org API (`/api/orgs*`, `/api/org*`): Grafana's bodies, statuses and messages, the
//! last org admin rule, and who may call each route (Grafana Admin: everything; org Admin:
//! its own org and members; Viewer: reading its own org).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const DENIED_PREFIX: &str =
    "You'll need additional permissions to perform this action. Permissions needed: ";

fn denied(status: u16, body: &Value, action: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(message(body), format!("{DENIED_PREFIX}{action}"), "{body}");
    assert_eq!(body["title"], "Access denied", "{body}");
}

/// Creates an org as the Grafana Admin; its id.
async fn create_org(app: &TestApp, name: &str) -> u64 {
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({ "name": name })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["orgId"].as_u64().unwrap()
}

#[tokio::test]
async fn create_search_get_and_rename_orgs() {
    let app = TestApp::spawn().await;
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Blue Org"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"message": "Organization created", "orgId": 2}));
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Blue Org"})),
    )
    .await;
    assert_eq!((s, message(&b)), (409, "Organization name taken"), "{b}");
    for bad in [json!({}), json!({"name": ""}), json!({"name": 5})] {
        let (s, b) = send(app.admin(Method::POST, "/api/orgs").json(&bad)).await;
        assert_eq!((s, message(&b)), (400, "bad request data"), "{bad}: {b}");
    }
    create_org(&app, "alpha").await;

    // The creator is the new org's Admin; its current org did not move.
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/2/users")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b[0]["login"].as_str(), b[0]["role"].as_str()),
        (Some("admin"), Some("Admin"))
    );
    let (_, b) = send(app.admin(Method::GET, "/api/org")).await;
    assert_eq!(b["id"], 1, "{b}");

    let (s, b) = send(app.admin(Method::GET, "/api/orgs")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b,
        json!([{"id": 2, "name": "Blue Org"}, {"id": 1, "name": "Main Org."}, {"id": 3, "name": "alpha"}]),
        "ordered by name"
    );
    let (_, b) = send(app.admin(Method::GET, "/api/orgs?query=bl")).await;
    assert_eq!(
        b,
        json!([{"id": 2, "name": "Blue Org"}]),
        "prefix, any case"
    );
    let (_, b) = send(app.admin(Method::GET, "/api/orgs?name=alpha")).await;
    assert_eq!(b, json!([{"id": 3, "name": "alpha"}]), "exact name");
    let (_, b) = send(app.admin(Method::GET, "/api/orgs?name=Alpha")).await;
    assert_eq!(b, json!([]));
    let (_, b) = send(app.admin(Method::GET, "/api/orgs?perpage=1&page=1")).await;
    assert_eq!(
        b,
        json!([{"id": 1, "name": "Main Org."}]),
        "page counts from 0"
    );

    let empty = json!({"address1": "", "address2": "", "city": "", "zipCode": "", "state": "", "country": ""});
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/2")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"id": 2, "name": "Blue Org", "address": empty}));
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/99")).await;
    assert_eq!((s, message(&b)), (404, "Organization not found"), "{b}");
    for path in ["/api/orgs/name/Blue%20Org", "/api/orgs/name/Blue%20Org/"] {
        let (s, b) = send(app.admin(Method::GET, path)).await;
        assert_eq!(s, 200, "{path}: {b}");
        assert_eq!(b["id"], 2, "{path}: {b}");
    }
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/name/blue%20org")).await;
    assert_eq!(
        (s, message(&b)),
        (404, "Organization not found"),
        "exact: {b}"
    );
    let (_, b) = send(app.admin(Method::GET, "/api/org")).await;
    assert_eq!(b, json!({"id": 1, "name": "Main Org.", "address": empty}));

    let (s, b) = send(
        app.admin(Method::PUT, "/api/orgs/2")
            .json(&json!({"name": "alpha"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "Organization name taken"),
        "400 on rename: {b}"
    );
    let (s, b) = send(app.admin(Method::PUT, "/api/orgs/2").json(&json!({}))).await;
    assert_eq!((s, message(&b)), (400, "bad request data"), "{b}");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/orgs/2")
            .json(&json!({"name": "Navy"})),
    )
    .await;
    assert_eq!((s, b), (200, json!({"message": "Organization updated"})));
    let (_, b) = send(app.admin(Method::GET, "/api/orgs/2")).await;
    assert_eq!(b["name"], "Navy");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/org")
            .json(&json!({"name": "Main"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Organization updated"), "{b}");
    let (_, b) = send(app.admin(Method::GET, "/api/orgs/name/Main")).await;
    assert_eq!(b["id"], 1, "{b}");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/orgs/99")
            .json(&json!({"name": "X"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (500, "Failed to update organization"),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/abc")).await;
    assert_eq!(
        (s, message(&b)),
        (403, DENIED_PREFIX),
        "unparsable orgId: {b}"
    );
}

#[tokio::test]
async fn members_add_change_and_remove() {
    let app = TestApp::spawn().await;
    let org = create_org(&app, "Blue").await;
    let bob = app.create_user("bob", "bob-pass-1").await;
    let path = format!("/api/orgs/{org}/users");

    let (s, b) = send(
        app.admin(Method::POST, &path)
            .json(&json!({"loginOrEmail": "bob", "role": "editor"})),
    )
    .await;
    assert_eq!(
        (s, b),
        (
            200,
            json!({"message": "User added to organization", "userId": bob})
        )
    );
    let (s, b) = send(
        app.admin(Method::POST, &path)
            .json(&json!({"loginOrEmail": "bob@example.org", "role": "Viewer"})),
    )
    .await;
    assert_eq!(
        (s, b),
        (
            409,
            json!({"message": "User is already member of this organization", "userId": bob})
        )
    );
    let (s, b) = send(
        app.admin(Method::POST, &path)
            .json(&json!({"loginOrEmail": "nobody", "role": "Viewer"})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "User not found"), "{b}");
    for bad in [
        json!({"loginOrEmail": "bob", "role": "ADMIN"}),
        json!({"loginOrEmail": "bob"}),
        json!({"role": "Viewer"}),
    ] {
        let (s, b) = send(app.admin(Method::POST, &path).json(&bad)).await;
        assert_eq!((s, message(&b)), (400, "bad request data"), "{bad}: {b}");
    }
    let (_, me) = send(app.as_user(Method::GET, "/api/user", "bob", "bob-pass-1")).await;
    assert_eq!(me["orgId"], 1, "a valid current org stays: {me}");

    let (s, b) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(s, 200, "{b}");
    let rows: Vec<(String, String)> = b
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["login"].as_str().unwrap().into(),
                r["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("admin".to_string(), "Admin".to_string()),
            ("bob".into(), "Editor".into())
        ]
    );
    let row = &b[1];
    assert_eq!(
        (row["orgId"].as_u64(), row["userId"].as_u64()),
        (Some(org), Some(bob))
    );
    assert_eq!(row["email"], "bob@example.org");
    assert!(row["avatarUrl"].as_str().unwrap().starts_with("/avatar/"));
    assert!(
        row["lastSeenAt"].is_string() && row["lastSeenAtAge"].is_string(),
        "{row}"
    );
    assert_eq!(
        (row["isDisabled"].clone(), row["authLabels"].clone()),
        (json!(false), json!([]))
    );

    // The last org admin rule.
    let admin_row = format!("{path}/1");
    let (s, b) = send(
        app.admin(Method::PATCH, &admin_row)
            .json(&json!({"role": "Viewer"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (
            400,
            "Cannot change role so that there is no organization admin left"
        ),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::DELETE, &admin_row)).await;
    assert_eq!(
        (s, message(&b)),
        (400, "Cannot remove last organization admin"),
        "{b}"
    );
    let (s, b) = send(
        app.admin(Method::PATCH, &format!("{path}/{bob}"))
            .json(&json!({"role": "Admin"})),
    )
    .await;
    assert_eq!(
        (s, b),
        (200, json!({"message": "Organization user updated"}))
    );
    let (s, b) = send(
        app.admin(Method::PATCH, &admin_row)
            .json(&json!({"role": "Viewer"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (200, "Organization user updated"),
        "another Admin: {b}"
    );
    let (s, b) = send(app.admin(Method::DELETE, &format!("{path}/{bob}"))).await;
    assert_eq!(
        (s, message(&b)),
        (400, "Cannot remove last organization admin"),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::DELETE, &admin_row)).await;
    assert_eq!(
        (s, b),
        (200, json!({"message": "User removed from organization"}))
    );
    let (_, b) = send(app.admin(Method::GET, &path)).await;
    assert_eq!(b.as_array().unwrap().len(), 1, "{b}");
    let (s, b) = send(app.admin(Method::DELETE, &admin_row)).await;
    assert_eq!(
        (s, message(&b)),
        (200, "User removed from organization"),
        "not a member: {b}"
    );

    let (s, b) = send(
        app.admin(Method::PATCH, &format!("{path}/abc"))
            .json(&json!({"role": "Viewer"})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "userId is invalid"), "{b}");
    let (s, b) = send(
        app.admin(Method::PATCH, &format!("{path}/{bob}"))
            .json(&json!({"role": "boss"})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"), "{b}");
    let (s, b) = send(
        app.admin(Method::PATCH, &admin_row)
            .json(&json!({"role": "Viewer"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (500, "Failed update org user"),
        "not a member: {b}"
    );
    // A user that does not exist: 404, not a server error (schemathesis found the 500).
    for method in [Method::PATCH, Method::DELETE] {
        let (s, b) = send(
            app.admin(method.clone(), "/api/org/users/0")
                .json(&json!({"role": "Viewer"})),
        )
        .await;
        assert_eq!((s, message(&b)), (404, "User not found"), "{method}: {b}");
    }
}

#[tokio::test]
async fn current_org_member_routes() {
    let app = TestApp::spawn().await;
    let dave = app.create_user("dave", "dave-pass-1").await;
    let row = format!("/api/org/users/{dave}");
    // A second org keeps dave when he leaves the main one.
    let blue = create_org(&app, "Blue").await;
    let (s, b) = send(
        app.admin(Method::POST, &format!("/api/orgs/{blue}/users"))
            .json(&json!({"loginOrEmail": "dave", "role": "Viewer"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::GET, "/api/org/users")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b.as_array().unwrap().len(), 2, "admin and dave: {b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "dave", "role": "Editor"})),
    )
    .await;
    assert_eq!((s, b["userId"].as_u64()), (409, Some(dave)), "{b}");
    let (s, b) = send(
        app.admin(Method::PATCH, &row)
            .json(&json!({"role": "Editor"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Organization user updated"), "{b}");
    let (s, b) = send(app.admin(Method::DELETE, &row)).await;
    assert_eq!(
        (s, message(&b)),
        (200, "User removed from organization"),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::GET, &format!("/api/users/{dave}"))).await;
    assert_eq!(s, 200, "the user stays: {b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "dave", "role": ""})),
    )
    .await;
    assert_eq!((s, b["userId"].as_u64()), (200, Some(dave)), "{b}");
    let (_, b) = send(app.admin(Method::GET, "/api/org/users")).await;
    let d = b
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["login"] == "dave")
        .unwrap()
        .clone();
    assert_eq!(d["role"], "Viewer", "an empty role is Viewer");
}

#[tokio::test]
async fn viewer_reads_its_own_org_only() {
    let app = TestApp::spawn().await;
    let blue = create_org(&app, "Blue").await;
    app.create_user("bob", "bob-pass-1").await;
    let dave = app.create_user("dave", "dave-pass-1").await;
    let bob = |m: Method, p: &str| app.as_user(m, p, "bob", "bob-pass-1");

    let (s, b) = send(bob(Method::GET, "/api/org")).await;
    assert_eq!((s, b["id"].as_u64()), (200, Some(1)), "{b}");
    let (s, b) = send(bob(Method::GET, "/api/orgs/1")).await;
    assert_eq!(s, 200, "a member's org: {b}");
    let (s, b) = send(bob(Method::GET, &format!("/api/orgs/{blue}"))).await;
    denied(s, &b, "orgs:read");
    let (s, b) = send(bob(Method::GET, "/api/orgs")).await;
    denied(s, &b, "orgs:read");
    let (s, b) = send(bob(Method::GET, "/api/orgs/name/Blue")).await;
    denied(s, &b, "orgs:read");
    let (s, b) = send(bob(Method::POST, "/api/orgs").json(&json!({"name": "Mine"}))).await;
    denied(s, &b, "orgs:create");
    let (s, b) = send(bob(Method::PUT, "/api/org").json(&json!({"name": "Mine"}))).await;
    denied(s, &b, "orgs:write");
    let (s, b) = send(bob(Method::GET, "/api/org/users")).await;
    denied(s, &b, "org.users:read");
    let (s, b) = send(
        bob(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "dave", "role": "Viewer"})),
    )
    .await;
    denied(s, &b, "org.users:add");
    let (s, b) = send(
        bob(Method::PATCH, &format!("/api/org/users/{dave}")).json(&json!({"role": "Editor"})),
    )
    .await;
    denied(s, &b, "org.users:write");
    let (s, b) = send(bob(Method::DELETE, &format!("/api/org/users/{dave}"))).await;
    denied(s, &b, "org.users:remove");
}

#[tokio::test]
async fn org_admin_manages_its_own_org_only() {
    let app = TestApp::spawn().await;
    let blue = create_org(&app, "Blue").await;
    let carol = app.create_user("carol", "carol-pass-1").await;
    let dave = app.create_user("dave", "dave-pass-1").await;
    let (s, b) = send(
        app.admin(Method::PATCH, &format!("/api/org/users/{carol}"))
            .json(&json!({"role": "Admin"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let carol = |m: Method, p: &str| app.as_user(m, p, "carol", "carol-pass-1");

    let (s, b) = send(carol(Method::PUT, "/api/org").json(&json!({"name": "Carol's"}))).await;
    assert_eq!((s, message(&b)), (200, "Organization updated"), "{b}");
    let (s, b) = send(carol(Method::GET, "/api/org/users")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        carol(Method::PATCH, &format!("/api/orgs/1/users/{dave}")).json(&json!({"role": "Editor"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Organization user updated"), "{b}");
    let (s, b) = send(carol(Method::POST, "/api/orgs").json(&json!({"name": "Mine"}))).await;
    denied(s, &b, "orgs:create");
    let (s, b) = send(carol(Method::GET, "/api/orgs")).await;
    denied(s, &b, "orgs:read");
    let (s, b) =
        send(carol(Method::PUT, &format!("/api/orgs/{blue}")).json(&json!({"name": "X"}))).await;
    denied(s, &b, "orgs:write");
    let (s, b) = send(carol(Method::GET, &format!("/api/orgs/{blue}/users"))).await;
    denied(s, &b, "org.users:read");
    let (s, b) = send(
        carol(Method::POST, &format!("/api/orgs/{blue}/users"))
            .json(&json!({"loginOrEmail": "carol", "role": "Admin"})),
    )
    .await;
    denied(s, &b, "org.users:add");
}

#[tokio::test]
async fn allow_org_create_lets_users_create_orgs() {
    let app = TestApp::spawn_with(&[("users", "allow_org_create", "true")]).await;
    app.create_user("bob", "bob-pass-1").await;
    let bob = |m: Method, p: &str| app.as_user(m, p, "bob", "bob-pass-1");
    let (s, b) = send(bob(Method::POST, "/api/orgs").json(&json!({"name": "Bob's"}))).await;
    assert_eq!((s, message(&b)), (200, "Organization created"), "{b}");
    let org = b["orgId"].as_u64().unwrap();
    // The creator administers its new org (evaluated in that org, not its current one).
    let (s, b) =
        send(bob(Method::PUT, &format!("/api/orgs/{org}")).json(&json!({"name": "Bob's 2"}))).await;
    assert_eq!((s, message(&b)), (200, "Organization updated"), "{b}");
    let (s, b) = send(bob(Method::GET, &format!("/api/orgs/{org}/users"))).await;
    assert_eq!((s, b[0]["role"].as_str()), (200, Some("Admin")), "{b}");
    let (s, b) = send(bob(Method::PUT, "/api/org").json(&json!({"name": "Mine"}))).await;
    denied(s, &b, "orgs:write");
}

/// A caller allowed to add members (a custom role) may not grant more than its own role.
#[tokio::test]
async fn no_role_above_the_callers_own() {
    let app = TestApp::spawn().await;
    let bob = app.create_user("bob", "bob-pass-1").await;
    app.create_user("dave", "dave-pass-1").await;
    let (s, b) = send(
        app.admin(Method::POST, "/api/access-control/roles")
            .json(&json!({
                "uid": "member-mgr", "name": "custom:member-mgr", "global": true,
                "permissions": [
                    {"action": "org.users:remove", "scope": "users:*"},
                    {"action": "org.users:add", "scope": "users:*"},
                    {"action": "org.users:write", "scope": "users:*"},
                ]
            })),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{bob}/roles"),
        )
        .json(&json!({"roleUid": "member-mgr"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let bob = |m: Method, p: &str| app.as_user(m, p, "bob", "bob-pass-1");
    // (The /api/orgs route: the current-org one would delete dave, left without an org.)
    let (s, b) = send(bob(Method::DELETE, "/api/orgs/1/users/3")).await;
    assert_eq!(
        (s, message(&b)),
        (200, "User removed from organization"),
        "{b}"
    );
    let (s, b) = send(
        bob(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "dave", "role": "Editor"})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (403, "Cannot assign a role higher than user's role"),
        "{b}"
    );
    let (s, b) = send(
        bob(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "dave", "role": "Viewer"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "User added to organization"), "{b}");
    let (s, b) = send(bob(Method::PATCH, "/api/org/users/3").json(&json!({"role": "Admin"}))).await;
    assert_eq!(
        (s, message(&b)),
        (403, "Cannot assign a role higher than user's role"),
        "{b}"
    );
}

/// Switches the admin's current org.
async fn admin_use(app: &TestApp, org: u64) {
    let (s, b) = send(app.admin(Method::POST, &format!("/api/user/using/{org}"))).await;
    assert_eq!(
        (s, message(&b)),
        (200, "Active organization changed"),
        "{b}"
    );
}

async fn datasource_count(app: &TestApp) -> u64 {
    let (s, b) = send(app.admin(Method::GET, "/api/admin/stats")).await;
    assert_eq!(s, 200, "{b}");
    b["datasources"].as_u64().unwrap()
}

#[tokio::test]
async fn delete_org_takes_its_content_and_keeps_its_users() {
    let app = TestApp::spawn().await;
    delete_org_scenario(&app).await;
}

/// The same on PostgreSQL, and a second node sees the outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_org_on_postgres() {
    let cluster = crate::postgres::TestCluster::start();
    let db = cluster.create_database().await;
    let url = cluster.url(&db);
    let overrides = [
        ("database", "type", "postgres"),
        ("database", "url", url.as_str()),
        (
            "security",
            "secret_key",
            "orgs-delete-shared-secret-0123456789",
        ),
    ];
    let a = TestApp::spawn_with(&overrides).await;
    let b = TestApp::spawn_with(&overrides).await;
    delete_org_scenario(&a).await;
    let start = std::time::Instant::now();
    loop {
        let (_, orgs) = send(b.admin(Method::GET, "/api/orgs")).await;
        let (_, me) = send(b.as_user(Method::GET, "/api/user", "bob", "bob-pass-1")).await;
        if orgs == json!([{"id": 1, "name": "Main Org."}]) && me["orgId"] == 1 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "node b: {orgs} {me}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn delete_org_scenario(app: &TestApp) {
    let blue = create_org(app, "Blue").await;
    let bob = app.create_user("bob", "bob-pass-1").await;
    let carl = app.create_user("carl", "carl-pass-1").await;
    let carol = app.create_user("carol", "carol-pass-1").await;
    let (s, b) = send(
        app.admin(Method::PATCH, &format!("/api/org/users/{carol}"))
            .json(&json!({"role": "Admin"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    for (login, role) in [("bob", "Editor"), ("carl", "Viewer")] {
        let (s, b) = send(
            app.admin(Method::POST, &format!("/api/orgs/{blue}/users"))
                .json(&json!({"loginOrEmail": login, "role": role})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }
    // bob works in Blue; carl belongs to Blue only.
    let (s, b) = send(app.as_user(
        Method::POST,
        &format!("/api/user/using/{blue}"),
        "bob",
        "bob-pass-1",
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/orgs/1/users/{carl}"))).await;
    assert_eq!(s, 200, "{b}");
    // A datasource with a secret in Blue.
    admin_use(app, blue).await;
    let (s, b) = send(app.admin(Method::POST, "/api/datasources").json(&json!({
        "name": "Metrics", "type": "prometheus", "access": "proxy", "url": "http://prom:9090",
        "basicAuth": true, "basicAuthUser": "u", "secureJsonData": {"basicAuthPassword": "pw"}
    })))
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/orgs/{blue}"))).await;
    assert_eq!(
        (s, b),
        (
            400,
            json!({"message": "Can not delete org for current user"})
        )
    );
    admin_use(app, 1).await;
    assert_eq!(datasource_count(app).await, 1);

    // Who may not: an Editor of the org, an org Admin of another org.
    let (s, b) = send(app.as_user(
        Method::DELETE,
        &format!("/api/orgs/{blue}"),
        "bob",
        "bob-pass-1",
    ))
    .await;
    denied(s, &b, "orgs:delete");
    let (s, b) = send(app.as_user(
        Method::DELETE,
        &format!("/api/orgs/{blue}"),
        "carol",
        "carol-pass-1",
    ))
    .await;
    denied(s, &b, "orgs:delete");
    let (s, b) = send(app.as_user(Method::DELETE, "/api/orgs/abc", "carol", "carol-pass-1")).await;
    assert_eq!((s, message(&b)), (403, DENIED_PREFIX), "{b}");

    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/orgs/{blue}"))).await;
    assert_eq!((s, b), (200, json!({"message": "Organization deleted"})));

    let (s, b) = send(app.admin(Method::GET, &format!("/api/orgs/{blue}"))).await;
    assert_eq!((s, message(&b)), (404, "Organization not found"), "{b}");
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/orgs/{blue}"))).await;
    assert_eq!(
        (s, b),
        (
            404,
            json!({"message": "Failed to delete organization. ID not found"})
        )
    );
    let (s, b) = send(app.admin(Method::DELETE, "/api/orgs/99")).await;
    assert_eq!(s, 404, "{b}");
    let (_, b) = send(app.admin(Method::GET, "/api/orgs")).await;
    assert_eq!(b, json!([{"id": 1, "name": "Main Org."}]));
    assert_eq!(datasource_count(app).await, 0, "the datasource went");

    // Users stay: bob moved to his other org; carl has none and keeps the deleted one.
    let (s, me) = send(app.as_user(Method::GET, "/api/user", "bob", "bob-pass-1")).await;
    assert_eq!((s, me["orgId"].as_u64()), (200, Some(1)), "{me}");
    let (s, me) = send(app.as_user(Method::GET, "/api/user", "carl", "carl-pass-1")).await;
    assert_eq!((s, me["id"].as_u64()), (200, Some(carl)), "{me}");
    let (s, orgs) = send(app.as_user(Method::GET, "/api/user/orgs", "carl", "carl-pass-1")).await;
    assert_eq!((s, orgs), (200, json!([])));
    let (s, b) = send(app.admin(Method::GET, &format!("/api/users/{bob}"))).await;
    assert_eq!(s, 200, "{b}");
    // carl can be added to an org again, which becomes his current one.
    let (s, b) = send(
        app.admin(Method::POST, "/api/org/users")
            .json(&json!({"loginOrEmail": "carl", "role": "Viewer"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, me) = send(app.as_user(Method::GET, "/api/user", "carl", "carl-pass-1")).await;
    assert_eq!(me["orgId"], 1, "{me}");
}

#[tokio::test]
async fn org_address_is_stored_and_shown() {
    let app = TestApp::spawn().await;
    let blue = create_org(&app, "Blue").await;
    app.create_user("bob", "bob-pass-1").await;
    let carol = app.create_user("carol", "carol-pass-1").await;
    let (s, b) = send(
        app.admin(Method::PATCH, &format!("/api/org/users/{carol}"))
            .json(&json!({"role": "Admin"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    let (s, b) = send(app.admin(Method::PUT, "/api/org/address").json(&json!({
        "address1": "1 Main St", "address2": "Floor 2", "city": "Springfield",
        "zipcode": "12345", "state": "IL", "country": "US"
    })))
    .await;
    assert_eq!((s, b), (200, json!({"message": "Address updated"})));
    let main = json!({"id": 1, "name": "Main Org.", "address": {
        "address1": "1 Main St", "address2": "Floor 2", "city": "Springfield",
        "zipCode": "12345", "state": "IL", "country": "US"
    }});
    for path in ["/api/org", "/api/orgs/1", "/api/orgs/name/Main%20Org."] {
        let (s, b) = send(app.admin(Method::GET, path)).await;
        assert_eq!((s, &b), (200, &main), "{path}");
    }
    // Any key case; every field is replaced (missing ones by "").
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/orgs/{blue}/address"))
            .json(&json!({"ZipCode": "999", "city": "Shelbyville"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Address updated"), "{b}");
    let (_, b) = send(app.admin(Method::GET, &format!("/api/orgs/{blue}"))).await;
    assert_eq!(
        b["address"],
        json!({"address1": "", "address2": "", "city": "Shelbyville", "zipCode": "999", "state": "", "country": ""})
    );
    // Grafana does not check that the org exists.
    let (s, b) = send(
        app.admin(Method::PUT, "/api/orgs/99/address")
            .json(&json!({"city": "Nowhere"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Address updated"), "{b}");
    // Bad bodies.
    let (s, b) = send(
        app.admin(Method::PUT, "/api/org/address")
            .json(&json!({"city": 5})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"), "{b}");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/org/address")
            .header("Content-Type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"), "{b}");

    // RBAC: orgs:write. A Viewer may not; an org Admin may in its own org only.
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/org/address", "bob", "bob-pass-1")
            .json(&json!({"city": "X"})),
    )
    .await;
    denied(s, &b, "orgs:write");
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/org/address", "carol", "carol-pass-1")
            .json(&json!({"city": "Carolton"})),
    )
    .await;
    assert_eq!((s, message(&b)), (200, "Address updated"), "{b}");
    let (s, b) = send(
        app.as_user(
            Method::PUT,
            &format!("/api/orgs/{blue}/address"),
            "carol",
            "carol-pass-1",
        )
        .json(&json!({"city": "X"})),
    )
    .await;
    denied(s, &b, "orgs:write");

    // Durable: the address survives a restart.
    let (dir, data) = app.stop().await;
    let app = TestApp::spawn_in(&data, &[]).await;
    let (_, b) = send(app.admin(Method::GET, "/api/org")).await;
    assert_eq!(b["address"]["city"], "Carolton", "{b}");
    drop(dir);
}

#[tokio::test]
async fn org_users_search_and_lookup() {
    let app = TestApp::spawn().await;
    let blue = create_org(&app, "Blue").await;
    let ann = app.create_user("ann", "ann-pass-1").await;
    let bob = app.create_user("bob", "bob-pass-1").await;
    app.create_user("bobby", "bobby-pass-1").await;
    let carol = app.create_user("carol", "carol-pass-1").await;
    let (s, b) = send(
        app.admin(Method::PATCH, &format!("/api/org/users/{carol}"))
            .json(&json!({"role": "Admin"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");

    let (s, b) = send(app.admin(
        Method::GET,
        "/api/org/users/search?query=BOB&perpage=1&page=1",
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (&b["totalCount"], &b["page"], &b["perPage"]),
        (&json!(2), &json!(1), &json!(1)),
        "{b}"
    );
    assert_eq!(b["orgUsers"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(
        (
            &b["orgUsers"][0]["login"],
            &b["orgUsers"][0]["userId"],
            &b["orgUsers"][0]["orgId"]
        ),
        (&json!("bob"), &json!(bob), &json!(1)),
        "{b}"
    );
    let (_, b) = send(app.admin(
        Method::GET,
        "/api/org/users/search?query=bob&perpage=1&page=2",
    ))
    .await;
    assert_eq!(
        b["orgUsers"][0]["login"], "bobby",
        "pages count from 1: {b}"
    );
    let (_, b) = send(app.admin(
        Method::GET,
        "/api/org/users/search?query=bob&perpage=1&page=3",
    ))
    .await;
    assert_eq!(
        (&b["orgUsers"], &b["totalCount"]),
        (&json!([]), &json!(2)),
        "{b}"
    );
    // `GET /api/org/users` filters by `query` and caps at `limit` (Grafana's current-org
    // list); `/api/orgs/:orgId/users` takes neither.
    let logins = |b: &serde_json::Value| -> Vec<String> {
        b.as_array()
            .unwrap()
            .iter()
            .map(|u| u["login"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, b) = send(app.admin(Method::GET, "/api/org/users?query=BOB")).await;
    assert_eq!(
        (s, logins(&b)),
        (200, vec!["bob".into(), "bobby".into()]),
        "{b}"
    );
    let (_, b) = send(app.admin(Method::GET, "/api/org/users?query=bob&limit=1")).await;
    assert_eq!(logins(&b), vec!["bob".to_string()], "{b}");
    let (_, b) = send(app.admin(Method::GET, "/api/org/users?limit=0")).await;
    assert_eq!(logins(&b).len(), 5, "limit 0: all; {b}");
    let (_, b) = send(app.admin(Method::GET, "/api/orgs/1/users?query=bob&limit=1")).await;
    assert_eq!(logins(&b).len(), 5, "ignored on the org route: {b}");
    let (_, b) = send(app.admin(Method::GET, "/api/org/users/search?page=0&perpage=0")).await;
    assert_eq!(
        (&b["page"], &b["perPage"], &b["totalCount"]),
        (&json!(1), &json!(1000), &json!(5)),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::GET, "/api/org/users/search?page=x")).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/1/users/search?query=ann")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (&b["totalCount"], &b["orgUsers"][0]["userId"]),
        (&json!(1), &json!(ann)),
        "{b}"
    );
    let (_, b) = send(app.admin(Method::GET, &format!("/api/orgs/{blue}/users/search"))).await;
    assert_eq!(b["totalCount"], 1, "only the creator: {b}");

    let (s, b) = send(app.admin(Method::GET, "/api/org/users/lookup?query=bo&limit=1")).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b.as_array().unwrap().len(), 1, "{b}");
    assert_eq!(
        (&b[0]["userId"], &b[0]["login"]),
        (&json!(bob), &json!("bob")),
        "{b}"
    );
    assert!(
        b[0]["avatarUrl"].as_str().unwrap().starts_with("/avatar/"),
        "{b}"
    );
    assert!(b[0]["uid"].is_string(), "{b}");
    let (_, b) = send(app.admin(Method::GET, "/api/org/users/lookup")).await;
    assert_eq!(b.as_array().unwrap().len(), 5, "{b}");

    // RBAC: org.users:read. A Viewer may not; an org Admin may in its own org only.
    for path in [
        "/api/org/users/search",
        "/api/org/users/lookup",
        "/api/orgs/1/users/search",
    ] {
        let (s, b) = send(app.as_user(Method::GET, path, "bob", "bob-pass-1")).await;
        denied(s, &b, "org.users:read");
        let (s, b) = send(app.as_user(Method::GET, path, "carol", "carol-pass-1")).await;
        assert_eq!(s, 200, "{path}: {b}");
    }
    let (s, b) = send(app.as_user(
        Method::GET,
        &format!("/api/orgs/{blue}/users/search"),
        "carol",
        "carol-pass-1",
    ))
    .await;
    denied(s, &b, "org.users:read");
    let (s, b) = send(app.admin(Method::GET, "/api/orgs/x/users/search")).await;
    assert_eq!((s, message(&b)), (403, DENIED_PREFIX), "{b}");
}

#[tokio::test]
async fn removing_a_users_last_org_deletes_it_on_the_current_org_route_only() {
    let app = TestApp::spawn().await;
    let dave = app.create_user("dave", "dave-pass-1").await;
    let erin = app.create_user("erin", "erin-pass-1").await;
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/org/users/{dave}"))).await;
    assert_eq!((s, b), (200, json!({"message": "User deleted"})));
    let (s, b) = send(app.admin(Method::GET, &format!("/api/users/{dave}"))).await;
    assert_eq!((s, message(&b)), (404, "User not found"), "{b}");
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "dave", "dave-pass-1")).await;
    assert_eq!(s, 401, "dave cannot sign in any more");

    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/orgs/1/users/{erin}"))).await;
    assert_eq!(
        (s, b),
        (200, json!({"message": "User removed from organization"}))
    );
    let (s, b) = send(app.admin(Method::GET, &format!("/api/users/{erin}"))).await;
    assert_eq!(s, 200, "kept without an org: {b}");

    let (s, b) = send(app.admin(Method::DELETE, "/api/org/users/abc")).await;
    assert_eq!((s, message(&b)), (400, "userId is invalid"), "{b}");
    // The last admin rule comes first.
    let (s, b) = send(app.admin(Method::DELETE, "/api/org/users/1")).await;
    assert_eq!(
        (s, message(&b)),
        (400, "Cannot remove last organization admin"),
        "{b}"
    );
}

/// An org that does not exist (or no longer does) is a 404 for its member routes, not an
/// empty list or a 500.
#[tokio::test]
async fn member_routes_of_a_missing_org_answer_404() {
    let app = TestApp::spawn().await;
    let gone = create_org(&app, "Gone").await;
    let (s, b) = send(app.admin(Method::DELETE, &format!("/api/orgs/{gone}"))).await;
    assert_eq!(s, 200, "{b}");
    for path in [
        format!("/api/orgs/{gone}/users"),
        format!("/api/orgs/{gone}/users/search"),
        "/api/orgs/627/users".to_string(),
    ] {
        let (s, b) = send(app.admin(Method::GET, &path)).await;
        assert_eq!(
            (s, message(&b)),
            (404, "Organization not found"),
            "{path}: {b}"
        );
    }
    let (s, b) = send(app.admin(Method::DELETE, "/api/orgs/627/users/1")).await;
    assert_eq!((s, message(&b)), (404, "Organization not found"), "{b}");
}
