//! The audit log (issue 21): each kind of change recorded with its actor, action, target
//! and field names, in the same transaction as the change; sign-ins, failed sign-ins (the
//! login as an HMAC) and denials; no event for a failed write; paging and filters; RBAC on
//! the query; no secret in any event or export; the JSON-lines file; retention; the chain
//! verified and a modified, removed or reordered event named by `tollgate audit verify`;
//! SIGKILL during writes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::datasources::ds_body;
use crate::helpers::{binary, message, output_text, send, ServerProcess, TestApp, ADMIN, ADMIN_PW};

/// The newest events (at most `limit`) matching a query string.
async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let (s, v) = send(app.admin(Method::GET, &format!("/api/admin/audit?{query}"))).await;
    assert_eq!(s, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

async fn newest(app: &TestApp) -> Value {
    events(app, "limit=1").await.remove(0)
}

async fn count(app: &TestApp) -> usize {
    events(app, "limit=1000").await.len()
}

fn fields(e: &Value) -> Vec<&str> {
    e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

/// (action, target kind, target id, method, route, status) of an event.
fn summary(e: &Value) -> (String, String, String, String, String, u64) {
    (
        e["action"].as_str().unwrap().to_string(),
        e["target"]["kind"].as_str().unwrap().to_string(),
        e["target"]["id"].as_str().unwrap().to_string(),
        e["method"].as_str().unwrap().to_string(),
        e["route"].as_str().unwrap().to_string(),
        e["status"].as_u64().unwrap(),
    )
}

fn s(v: &str) -> String {
    v.to_string()
}

/// One change and the event it must leave.
async fn change_and_event(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (Value, Value) {
    let before = count(app).await;
    let mut req = app
        .admin(method.clone(), path)
        .header("x-request-id", "req-under-test");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let (status, answer) = send(req).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    assert_eq!(
        count(app).await,
        before + 1,
        "{method} {path}: exactly one new event"
    );
    let e = newest(app).await;
    assert_eq!(e["requestId"], "req-under-test", "{e}");
    assert_eq!(e["actor"]["login"], ADMIN);
    assert_eq!(e["actor"]["userId"], 1);
    assert_eq!(e["actor"]["authMethod"], "basic");
    assert_eq!(e["client"], "127.0.0.1");
    (answer, e)
}

#[tokio::test]
async fn each_kind_of_change_is_recorded_with_actor_action_target_and_fields() {
    let app = TestApp::spawn().await;
    // A user: created, password, profile, permissions, disabled, enabled, sessions revoked.
    let (u, e) = change_and_event(
        &app,
        Method::POST,
        "/api/admin/users",
        Some(json!({"name": "Ann", "login": "ann", "email": "ann@example.com", "password": "ann-password-1"})),
    )
    .await;
    let id = u["id"].as_u64().unwrap().to_string();
    assert_eq!(
        summary(&e),
        (
            s("users:create"),
            s("user"),
            id.clone(),
            s("POST"),
            s("/api/admin/users"),
            200
        )
    );
    assert_eq!(fields(&e), ["email", "login", "name", "password"]);
    // (method, path, body, action, route, field names)
    type Step<'a> = (
        Method,
        String,
        Option<Value>,
        &'a str,
        &'a str,
        Vec<&'a str>,
    );
    let steps: Vec<Step> = vec![
        (
            Method::PUT,
            format!("/api/admin/users/{id}/password"),
            Some(json!({"password": "ann-password-2"})),
            "users.password:update",
            "/api/admin/users/:id/password",
            vec!["password"],
        ),
        (
            Method::PUT,
            format!("/api/users/{id}"),
            Some(json!({"name": "Ann B", "email": "annb@example.com", "login": "ann"})),
            "users:write",
            "/api/users/:id",
            vec!["email", "login", "name"],
        ),
        (
            Method::PUT,
            format!("/api/admin/users/{id}/permissions"),
            Some(json!({"isGrafanaAdmin": true})),
            "users.permissions:update",
            "/api/admin/users/:id/permissions",
            vec!["isGrafanaAdmin"],
        ),
        (
            Method::POST,
            format!("/api/admin/users/{id}/disable"),
            None,
            "users:disable",
            "/api/admin/users/:id/disable",
            vec![],
        ),
        (
            Method::POST,
            format!("/api/admin/users/{id}/enable"),
            None,
            "users:enable",
            "/api/admin/users/:id/enable",
            vec![],
        ),
    ];
    for (method, path, body, action, route, want_fields) in steps {
        let (_, e) = change_and_event(&app, method.clone(), &path, body).await;
        let got = summary(&e);
        assert_eq!(
            (
                got.0.as_str(),
                got.1.as_str(),
                got.2.as_str(),
                got.4.as_str()
            ),
            (action, "user", id.as_str(), route),
            "{method} {path}: {e}"
        );
        assert_eq!(fields(&e), want_fields, "{path}");
    }
    // An org, a datasource, a service account and its token, an API key, a role.
    let (o, e) = change_and_event(
        &app,
        Method::POST,
        "/api/orgs",
        Some(json!({"name": "Audited"})),
    )
    .await;
    assert_eq!(e["action"], "orgs:create");
    assert_eq!(
        (e["target"]["kind"].as_str(), e["target"]["id"].as_str()),
        (
            Some("org"),
            o["orgId"].as_u64().map(|n| n.to_string()).as_deref()
        )
    );
    let (d, e) = change_and_event(
        &app,
        Method::POST,
        "/api/datasources",
        Some(ds_body("Prom", "ds-password-1")),
    )
    .await;
    assert_eq!(e["action"], "datasources:create");
    assert_eq!(
        e["target"]["id"],
        d["datasource"]["id"].as_u64().unwrap().to_string()
    );
    assert!(fields(&e).contains(&"secureJsonData"), "{e}");
    let (sa, e) = change_and_event(
        &app,
        Method::POST,
        "/api/serviceaccounts",
        Some(json!({"name": "shipper", "role": "Viewer"})),
    )
    .await;
    assert_eq!(e["action"], "serviceaccounts:create");
    let sa_id = sa["id"].as_u64().unwrap();
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        &format!("/api/serviceaccounts/{sa_id}/tokens"),
        Some(json!({"name": "t1"})),
    )
    .await;
    assert_eq!(e["action"], "serviceaccounts:write");
    assert_eq!(
        e["route"],
        "/api/serviceaccounts/:service_account_id/tokens"
    );
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        "/api/auth/keys",
        Some(json!({"name": "k1", "role": "Viewer"})),
    )
    .await;
    assert_eq!(e["route"], "/api/auth/keys");
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        "/api/access-control/roles",
        Some(json!({"name": "custom:audit", "displayName": "Audit reader", "permissions": [{"action": "audit:read"}]})),
    )
    .await;
    assert_eq!(e["action"], "roles:write");
    // Settings, data keys, re-encryption, provisioning: Grafana-Admin operations.
    let (_, e) = change_and_event(
        &app,
        Method::PUT,
        "/api/admin/settings",
        Some(json!({"updates": {"auth.saml": {"enabled": "true"}}})),
    )
    .await;
    assert_eq!(e["action"], "settings:write");
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        "/api/admin/encryption/rotate-data-keys",
        None,
    )
    .await;
    assert_eq!(e["route"], "/api/admin/encryption/rotate-data-keys");
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        "/api/admin/encryption/reencrypt-secrets",
        None,
    )
    .await;
    assert_eq!(e["route"], "/api/admin/encryption/reencrypt-secrets");
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        "/api/admin/provisioning/datasources/reload",
        None,
    )
    .await;
    assert_eq!(e["action"], "provisioning:reload");
    // Sessions revoked for a user, then deleted.
    let (_, e) = change_and_event(
        &app,
        Method::POST,
        &format!("/api/admin/users/{id}/logout"),
        None,
    )
    .await;
    assert_eq!(e["route"], "/api/admin/users/:id/logout");
    let (_, e) = change_and_event(
        &app,
        Method::DELETE,
        &format!("/api/admin/users/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (e["action"].as_str(), e["target"]["id"].as_str()),
        (Some("users:delete"), Some(id.as_str()))
    );
    let (s, v) = send(app.admin(Method::GET, "/api/admin/audit/verify")).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
}

#[tokio::test]
async fn sign_ins_failures_and_denials_are_recorded_and_failed_writes_are_not() {
    let app = TestApp::spawn().await;
    app.create_user("viewer", "viewer-password").await;
    // A form sign-in: the session it creates is the event.
    app.login("viewer", "viewer-password").await;
    let signed_in = newest(&app).await;
    let e = &signed_in;
    assert_eq!(
        (
            e["action"].as_str(),
            e["actor"]["login"].as_str(),
            e["actor"]["authMethod"].as_str(),
            e["route"].as_str(),
            e["status"].as_u64()
        ),
        (
            Some("auth:login"),
            Some("viewer"),
            Some("form"),
            Some("/login"),
            Some(200)
        )
    );
    // A failed form sign-in: 401, the login tried kept only as its HMAC.
    let (s, _) = send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": "mallory-typed-this", "password": "nope"})),
    )
    .await;
    assert_eq!(s, 401);
    let e = newest(&app).await;
    let (s, h) = send(
        app.admin(Method::POST, "/api/admin/audit/hmac")
            .json(&json!({"value": "mallory-typed-this"})),
    )
    .await;
    assert_eq!(s, 200);
    let hmac = h["hmac"].as_str().unwrap();
    assert!(
        hmac.starts_with("hmac-sha256:") && hmac.len() == 12 + 64,
        "{hmac}"
    );
    assert_eq!(
        (
            e["action"].as_str(),
            e["actor"]["login"].as_str(),
            e["status"].as_u64()
        ),
        (Some("auth:login"), Some(hmac), Some(401))
    );
    assert!(!e.to_string().contains("mallory-typed-this"));
    // The HMAC finds it.
    let found = events(&app, &format!("login={}", urlencode(hmac))).await;
    assert_eq!(found.len(), 1);
    // A failed Basic sign-in on an API route.
    let (s, _) = send(app.as_user(Method::GET, "/api/org", "viewer", "wrong-password")).await;
    assert_eq!(s, 401);
    let e = newest(&app).await;
    assert_eq!(
        (
            e["actor"]["authMethod"].as_str(),
            e["status"].as_u64(),
            e["route"].as_str()
        ),
        (Some("basic"), Some(401), Some("/api/org"))
    );
    assert!(e["actor"]["login"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    // A read's event is timed when it is recorded: not the epoch, not before the sign-in's.
    let (read_time, login_time) = (
        e["time"].as_str().unwrap(),
        signed_in["time"].as_str().unwrap(),
    );
    assert!(
        !read_time.starts_with("1970") && read_time >= login_time,
        "{read_time} {login_time}"
    );
    // A denial: a Viewer may not create users.
    let (s, _) = send(
        app.as_user(
            Method::POST,
            "/api/admin/users",
            "viewer",
            "viewer-password",
        )
        .json(&json!({"login": "x", "password": "xxxxxxxx1"})),
    )
    .await;
    assert_eq!(s, 403);
    let e = newest(&app).await;
    assert_eq!(
        (
            e["actor"]["login"].as_str(),
            e["action"].as_str(),
            e["status"].as_u64()
        ),
        (Some("viewer"), Some("users:create"), Some(403))
    );
    // A write that fails (409, 404, 400) leaves no event.
    let before = count(&app).await;
    for (method, path, body) in [
        (
            Method::POST,
            "/api/admin/users",
            json!({"login": "viewer", "password": "another-pw-1"}),
        ),
        (
            Method::PUT,
            "/api/admin/users/999/password",
            json!({"password": "another-pw-1"}),
        ),
        (Method::POST, "/api/orgs", json!({"name": ""})),
    ] {
        let (s, v) = send(app.admin(method.clone(), path).json(&body)).await;
        assert!(s >= 400 && s != 401 && s != 403, "{method} {path}: {s} {v}");
    }
    assert_eq!(count(&app).await, before, "failed writes left no event");
    // A request with no credentials at all is asked to sign in, not refused: no event. A
    // dead session cookie is a refused credential: an event.
    let (s, _) = send(app.req(Method::GET, "/api/org")).await;
    assert_eq!(s, 401);
    assert_eq!(count(&app).await, before, "an anonymous 401 left no event");
    let (s, _) = send(app.with_session(Method::GET, "/api/org", "not-a-session")).await;
    assert_eq!(s, 401);
    let e = newest(&app).await;
    assert_eq!(
        (e["actor"]["authMethod"].as_str(), e["status"].as_u64()),
        (Some("session"), Some(401))
    );
    // Failure filter.
    let failures = events(&app, "result=failure").await;
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(failures
        .iter()
        .all(|e| e["status"].as_u64().unwrap() >= 400));
}

fn urlencode(v: &str) -> String {
    v.replace(':', "%3A")
}

#[tokio::test]
async fn paging_and_filters() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            app.create_user(&format!("pager{i}"), "pager-password")
                .await,
        );
    }
    // Newest first, every event exactly once through the cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let q = match cursor {
            Some(c) => format!("limit=3&action=users:create&before={c}"),
            None => "limit=3&action=users:create".to_string(),
        };
        let (s, v) = send(app.admin(Method::GET, &format!("/api/admin/audit?{q}"))).await;
        assert_eq!(s, 200, "{v}");
        for e in v["events"].as_array().unwrap() {
            seen.push(e["target"]["id"].as_str().unwrap().parse::<u64>().unwrap());
        }
        match v["nextCursor"].as_u64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    // Each filter.
    let one = ids[2].to_string();
    let e = events(&app, &format!("targetKind=user&targetId={one}")).await;
    assert_eq!(e.len(), 1);
    assert_eq!(events(&app, "userId=1&action=users:*").await.len(), 7);
    assert_eq!(events(&app, "login=admin&result=success").await.len(), 7);
    assert_eq!(events(&app, "status=404").await.len(), 0);
    let t = e[0]["time"].as_str().unwrap().to_string();
    assert!(!events(&app, &format!("from={}", urlencode(&t)))
        .await
        .is_empty());
    assert!(events(&app, "to=0").await.is_empty());
    // Bad filters: 400 (the document types and patterns every filter, so a client knows
    // before it asks).
    for q in [
        "userId=x",
        "result=maybe",
        "from=yesterday",
        "to=2026-13-01T00:00:00Z",
        "limit=-1",
    ] {
        let (s, v) = send(app.admin(Method::GET, &format!("/api/admin/audit?{q}"))).await;
        assert_eq!((s, message(&v)), (400, "bad request data"), "{q}");
    }
}

#[tokio::test]
async fn reading_the_log_needs_audit_read() {
    let app = TestApp::spawn().await;
    app.create_user("plain", "plain-password").await;
    for path in ["/api/admin/audit", "/api/admin/audit/verify"] {
        let (s, _) = send(app.as_user(Method::GET, path, "plain", "plain-password")).await;
        assert_eq!(s, 403, "{path}");
        let (s, _) = send(app.req(Method::GET, path)).await;
        assert_eq!(s, 401, "{path}");
    }
    // A service account granted a role with audit:read ships the log.
    let (_, role) =
        send(app.admin(Method::POST, "/api/access-control/roles").json(
            &json!({"name": "custom:audit-reader", "permissions": [{"action": "audit:read"}]}),
        ))
        .await;
    let role_uid = role["uid"].as_str().unwrap().to_string();
    let (_, sa) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "shipper", "role": "None"})),
    )
    .await;
    let sa_id = sa["id"].as_u64().unwrap();
    let (_, tok) = send(
        app.admin(
            Method::POST,
            &format!("/api/serviceaccounts/{sa_id}/tokens"),
        )
        .json(&json!({"name": "ship"})),
    )
    .await;
    let token = tok["key"].as_str().unwrap().to_string();
    let read = || async {
        send(
            app.req(Method::GET, "/api/admin/audit?limit=5")
                .bearer_auth(&token),
        )
        .await
    };
    assert_eq!(read().await.0, 403);
    let denied = newest(&app).await;
    assert_eq!(
        (
            denied["actor"]["serviceAccountId"].as_u64(),
            denied["actor"]["authMethod"].as_str(),
            denied["status"].as_u64()
        ),
        (Some(sa_id), Some("service_account"), Some(403))
    );
    assert!(denied["actor"]["tokenId"].as_u64().is_some());
    let (s, v) = send(
        app.admin(
            Method::POST,
            &format!("/api/access-control/users/{sa_id}/roles"),
        )
        .json(&json!({"roleUid": role_uid, "global": true})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = read().await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["events"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn no_secret_value_reaches_an_event_or_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("audit-logs");
    let logs_s = logs.to_string_lossy().to_string();
    let app = TestApp::spawn_with(&[
        ("auditing", "loggers", "file"),
        ("auditing.logs.file", "path", &logs_s),
    ])
    .await;
    let marker = "SECRET-MARKER-4f1c";
    let mut secrets = vec![marker.to_string()];
    let (s, _) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "m1", "password": format!("{marker}-password")})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body("Marked", &format!("{marker}-ds"))),
    )
    .await;
    assert_eq!(s, 200);
    let (_, key) = send(
        app.admin(Method::POST, "/api/auth/keys")
            .json(&json!({"name": "marked-key", "role": "Admin"})),
    )
    .await;
    secrets.push(key["key"].as_str().unwrap().to_string());
    // The key itself authenticates a change; a wrong password is tried.
    let (s, _) = send(
        app.req(Method::POST, "/api/datasources")
            .bearer_auth(key["key"].as_str().unwrap())
            .json(&ds_body("Marked2", &format!("{marker}-ds2"))),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(app.as_user(Method::GET, "/api/org", ADMIN, &format!("{marker}-typo"))).await;
    assert_eq!(s, 401);
    let all = events(&app, "limit=1000").await;
    assert!(all.len() >= 5);
    let text = serde_json::to_string(&all).unwrap();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret} in the events");
    }
    assert!(!text.contains(ADMIN_PW));
    // The exported file: the same events, one JSON object per line, no secret.
    let file = logs.join("audit.log");
    let head = all[0]["seq"].as_u64().unwrap();
    let exported = wait_for_line(&file, head).await;
    for secret in &secrets {
        assert!(
            !exported.contains(secret.as_str()),
            "{secret} in the export"
        );
    }
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let last = lines.last().unwrap();
    assert_eq!(last, &all[0], "the line and the API say the same");
}

/// Polls the export file until it holds the event `seq` (the exporter runs beside the
/// requests; a deadline, not a sleep, bounds the wait).
async fn wait_for_line(file: &Path, seq: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if text.contains(&format!("{{\"seq\":{seq},")) || text.contains(&format!("\"seq\":{seq}}}"))
        {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event {seq} not exported: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn retention_prunes_by_count_and_age_and_the_chain_still_verifies() {
    let app = TestApp::spawn_with(&[("auditing", "max_events", "4")]).await;
    for i in 0..6 {
        app.create_user(&format!("r{i}"), "retention-pw").await;
    }
    assert_eq!(count(&app).await, 6);
    assert_eq!(app.services.audit.prune().await.unwrap(), 3);
    let left = events(&app, "limit=100").await;
    // The three newest, plus the pruning's own event: at most max_events.
    assert_eq!(left.len(), 4);
    assert_eq!(
        (left[0]["action"].as_str(), left[0]["target"]["id"].as_str()),
        (Some("audit:prune"), Some("3"))
    );
    assert_eq!(
        left[1]["target"]["id"],
        left[3]["target"]["id"]
            .as_str()
            .map(|id| (id.parse::<u64>().unwrap() + 2).to_string())
            .unwrap()
    );
    let (s, v) = send(app.admin(Method::GET, "/api/admin/audit/verify")).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    // Nothing more to prune: nothing happens.
    assert_eq!(app.services.audit.prune().await.unwrap(), 0);
    assert_eq!(count(&app).await, 4);
    let (dir, data) = app.stop().await;
    // By age: a server whose clock moved three days on keeps only what is newer.
    let app = TestApp::spawn_in(&data, &[("auditing", "max_days", "2")]).await;
    let _keep = dir;
    app.create_user("fresh", "retention-pw").await;
    app.clock.advance(Duration::from_secs(3 * 86_400));
    app.create_user("fresher", "retention-pw").await;
    let removed = app.services.audit.prune().await.unwrap();
    assert_eq!(removed, 5, "the four kept before and the first new one");
    let left = events(&app, "limit=100").await;
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[1]["target"]["kind"], "user");
    let (s, v) = send(app.admin(Method::GET, "/api/admin/audit/verify")).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
}

/// `tollgate audit verify --config` with the server stopped.
fn verify_offline(data: &Path) -> (bool, String) {
    let config = data.with_extension("ini");
    std::fs::write(&config, format!("[paths]\ndata = {}\n", data.display())).unwrap();
    let out = Command::new(binary())
        .args(["audit", "verify", "--config"])
        .arg(&config)
        .output()
        .expect("tollgate audit verify runs");
    (out.status.success(), output_text(&out))
}

/// Opens the stopped server's sled store directly and changes its audit tree.
fn tamper(data: &Path, f: impl FnOnce(&sled::Tree)) {
    let db = sled::open(data.join("tollgate.db")).unwrap();
    let tree = db.open_tree("audit").unwrap();
    f(&tree);
    db.flush().unwrap();
}

fn event_key(seq: u64) -> Vec<u8> {
    let mut k = b"e".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

// Multi-threaded: the CLI asks this process's server while the test waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_modified_removed_or_reordered_event() {
    use tollgate::domain::audit::AuditEvent;
    use tollgate::store::codec;

    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.create_user(&format!("v{i}"), "verify-password").await;
    }
    // While the server runs: over HTTP.
    let pw = app.data.with_extension("pw");
    std::fs::write(&pw, ADMIN_PW).unwrap();
    let out = Command::new(binary())
        .args([
            "audit",
            "verify",
            "--url",
            &app.base,
            "--user",
            ADMIN,
            "--password-file",
        ])
        .arg(&pw)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("5 events verified"),
        "{}",
        output_text(&out)
    );
    let (dir, data) = app.stop().await;
    let _keep = dir;
    let (ok, text) = verify_offline(&data);
    assert!(
        ok && text.contains("audit chain intact: 5 events verified"),
        "{text}"
    );
    let original = {
        let db = sled::open(data.join("tollgate.db")).unwrap();
        let t = db.open_tree("audit").unwrap();
        (1..=5)
            .map(|n| t.get(event_key(n)).unwrap().unwrap().to_vec())
            .collect::<Vec<_>>()
    };
    let restore = |data: &Path| {
        let original = original.clone();
        tamper(data, move |t| {
            for (i, v) in original.iter().enumerate() {
                t.insert(event_key(i as u64 + 1), v.clone()).unwrap();
            }
        })
    };
    // Modified: event 3 names another target.
    tamper(&data, |t| {
        let mut e: AuditEvent = codec::decode(&t.get(event_key(3)).unwrap().unwrap()).unwrap();
        e.entry.target_id = "999".into();
        t.insert(event_key(3), codec::encode(&e).unwrap()).unwrap();
    });
    let (ok, text) = verify_offline(&data);
    assert!(!ok && text.contains("audit event 3 was modified"), "{text}");
    restore(&data);
    assert!(verify_offline(&data).0);
    // Removed: event 2 is gone.
    tamper(&data, |t| {
        t.remove(event_key(2)).unwrap();
    });
    let (ok, text) = verify_offline(&data);
    assert!(!ok && text.contains("audit event 2 was removed"), "{text}");
    restore(&data);
    // Reordered: events 3 and 4 swapped places.
    tamper(&data, |t| {
        let (a, b) = (
            t.get(event_key(3)).unwrap().unwrap(),
            t.get(event_key(4)).unwrap().unwrap(),
        );
        t.insert(event_key(3), b).unwrap();
        t.insert(event_key(4), a).unwrap();
    });
    let (ok, text) = verify_offline(&data);
    assert!(
        !ok && text.contains("audit event 3 is out of order"),
        "{text}"
    );
    restore(&data);
    // The newest cut off.
    tamper(&data, |t| {
        t.remove(event_key(5)).unwrap();
    });
    let (ok, text) = verify_offline(&data);
    assert!(!ok && text.contains("audit event 5 was removed"), "{text}");
}

/// SIGKILL during a burst of audited writes: after restart every acknowledged creation has
/// its event, no event names a user that does not exist, and the chain verifies.
#[tokio::test]
async fn sigkill_during_writes_keeps_changes_and_events_together() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for round in 0..2 {
        let server = ServerProcess::start(&data, &[]).await;
        let client = reqwest::Client::new();
        let base = server.base.clone();
        let mut writers = Vec::new();
        for w in 0..8 {
            let (client, base) = (client.clone(), base.clone());
            writers.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    let r = client
                        .post(format!("{base}/api/admin/users"))
                        .basic_auth(ADMIN, Some(ADMIN_PW))
                        .json(&json!({"login": format!("k{round}-{w}-{i}"), "password": "killed-pw-1"}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let v: Value = r.json().await.unwrap_or_default();
                            if let Some(id) = v["id"].as_u64() {
                                acked.push(id);
                            }
                        }
                        _ => break,
                    }
                }
                acked
            }));
        }
        // Kill once a few writes were acknowledged.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = send(
                client
                    .get(format!(
                        "{base}/api/admin/audit?limit=40&action=users:create"
                    ))
                    .basic_auth(ADMIN, Some(ADMIN_PW)),
            )
            .await;
            if v["events"].as_array().map_or(0, Vec::len) >= 40 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "writes too slow");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.kill();
        let mut acked = Vec::new();
        for w in writers {
            acked.extend(w.await.unwrap());
        }
        let app = TestApp::spawn_in(&data, &[]).await;
        let created: Vec<Value> = events(&app, "limit=1000&action=users:create")
            .await
            .into_iter()
            .collect();
        let recorded: std::collections::BTreeSet<u64> = created
            .iter()
            .map(|e| e["target"]["id"].as_str().unwrap().parse().unwrap())
            .collect();
        for id in &acked {
            assert!(
                recorded.contains(id),
                "round {round}: user {id} acknowledged, no event"
            );
        }
        for id in &recorded {
            let (s, _) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
            assert_eq!(
                s, 200,
                "round {round}: an event names user {id}, who does not exist"
            );
        }
        let (s, v) = send(app.admin(Method::GET, "/api/admin/audit/verify")).await;
        assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
        app.stop().await;
    }
}

/// License upload and removal, a user's sign-out, and a session revoked by an admin: each
/// one event with its actor, action and route; a removal with nothing to remove records the
/// request (it answered 2xx) but no store change.
#[tokio::test]
async fn license_changes_and_sign_outs_are_recorded() {
    use crate::licensing::{claims, licensed, sign, upload};
    let l = licensed().await;
    let app = &l.app;
    let (s, v) = upload(app, &sign(&l.key, &claims("1"))).await;
    assert_eq!(s, 200, "{v}");
    let e = newest(app).await;
    assert_eq!(
        (
            e["route"].as_str(),
            e["method"].as_str(),
            e["status"].as_u64()
        ),
        (Some("/api/licensing/token"), Some("POST"), Some(200))
    );
    assert!(
        e["action"].as_str().unwrap().starts_with("licensing"),
        "{e}"
    );
    assert_eq!(fields(&e), ["token"]);
    let before = count(app).await;
    let (s, _) = send(
        app.admin(Method::DELETE, "/api/licensing/token")
            .json(&json!({"instance": "http://tollgate.test/"})),
    )
    .await;
    assert_eq!(s, 202);
    assert_eq!(count(app).await, before + 1);
    let e = newest(app).await;
    assert_eq!(
        (
            e["route"].as_str(),
            e["method"].as_str(),
            e["status"].as_u64()
        ),
        (Some("/api/licensing/token"), Some("DELETE"), Some(202))
    );
    // A sign-out (GET /logout revokes the session): recorded as the user's.
    app.create_user("leaver", "leaver-password").await;
    let token = app.login("leaver", "leaver-password").await;
    let before = count(app).await;
    let resp = app
        .with_session(Method::GET, "/logout", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(count(app).await, before + 1);
    let e = newest(app).await;
    assert_eq!(
        (
            e["route"].as_str(),
            e["method"].as_str(),
            e["actor"]["login"].as_str(),
            e["action"].as_str(),
            e["target"]["kind"].as_str()
        ),
        (
            Some("/logout"),
            Some("GET"),
            Some("leaver"),
            Some("auth:logout"),
            Some("user")
        ),
        "{e}"
    );
}

/// The event's client is the address auth decides on: behind a trusted proxy, the one the
/// proxy appended to `X-Forwarded-For`, for a change (written with it) as for a denied read
/// (completed after routing); any other peer is its own client.
#[tokio::test]
async fn events_name_the_client_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(&[("security", "trusted_proxies", "127.0.0.51")]).await;
    app.create_user("fred", "fred-password").await;
    let id = app.create_user("gina", "gina-password").await;
    let proxy = app.client_from("127.0.0.51");
    let (s, _) = send(
        proxy
            .put(app.url(&format!("/api/admin/users/{id}/permissions")))
            .basic_auth(ADMIN, Some(ADMIN_PW))
            .header("x-forwarded-for", "203.0.113.5")
            .header("user-agent", "proxy-test/1")
            .json(&json!({"isGrafanaAdmin": true})),
    )
    .await;
    assert_eq!(s, 200);
    let e = newest(&app).await;
    assert_eq!(
        (&e["route"], &e["client"], &e["userAgent"]),
        (
            &json!("/api/admin/users/:id/permissions"),
            &json!("203.0.113.5"),
            &json!("proxy-test/1")
        ),
        "{e}"
    );
    let (s, _) = send(
        proxy
            .get(app.url("/api/admin/users/1/auth-tokens"))
            .basic_auth("fred", Some("fred-password"))
            .header("x-forwarded-for", "203.0.113.6")
            .header("x-request-id", "denied-read"),
    )
    .await;
    assert_eq!(s, 403);
    let e = newest(&app).await;
    assert_eq!(
        (&e["status"], &e["client"], &e["requestId"], &e["method"]),
        (
            &json!(403),
            &json!("203.0.113.6"),
            &json!("denied-read"),
            &json!("GET")
        ),
        "{e}"
    );
    let other = app.client_from("127.0.0.52");
    let (s, _) = send(
        other
            .get(app.url("/api/admin/users/1/auth-tokens"))
            .basic_auth("fred", Some("fred-password"))
            .header("x-forwarded-for", "203.0.113.7"),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(newest(&app).await["client"], "127.0.0.52");
}
