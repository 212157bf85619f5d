//! Settings (redaction, RBAC filtering, runtime updates), stats and the usage report.

use reqwest::Method;
use serde_json::{json, Value};
use tollgate::domain::Action;

use crate::helpers::*;

/// Grants permissions the way an operator would: a custom role made and assigned by the
/// admin through the API.
async fn grant(app: &TestApp, user: u64, perms: &[(Action, &str)]) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let uid = format!("grant-{user}-{n}");
    let permissions: Vec<_> = perms
        .iter()
        .map(|(a, s)| json!({"action": a.as_str(), "scope": s}))
        .collect();
    let (s, v) = send(
        app.admin(Method::POST, "/api/access-control/roles")
            .json(&json!({
                "uid": uid, "name": format!("custom:{uid}"), "permissions": permissions,
            })),
    )
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

/// Two users who may read some settings: "saml" (all of `auth.saml`) and "one" (only
/// `auth.saml.enabled`); the id of "one".
async fn saml_readers(app: &TestApp) -> u64 {
    let saml = app.create_user("saml", "samlpass").await;
    let one = app.create_user("one", "onepass").await;
    let scopes = [
        (saml, "settings:auth.saml:*"),
        (one, "settings:auth.saml:enabled"),
    ];
    for (user, scope) in scopes {
        grant(app, user, &[(Action::SettingsRead, scope)]).await;
    }
    one
}

#[tokio::test]
async fn settings_are_merged_and_redacted_like_grafana() {
    let app = TestApp::spawn_with(&[
        ("database", "url", "mysql://grafana:hunter2@db:3306/grafana"),
        ("auth.github", "client_secret", "gh-secret"),
        ("users", "password_hint", "a hint"),
    ])
    .await;
    let (s, all) = send(app.admin(Method::GET, "/api/admin/settings")).await;
    assert_eq!(s, 200);
    assert_eq!(all["DEFAULT"]["app_mode"], "production");
    assert_eq!(all["server"]["http_port"], "0", "every value is a string");
    assert_eq!(all["security"]["admin_password"], "*********");
    assert_eq!(
        all["security"]["secret_key"], "",
        "empty values are never masked"
    );
    assert_eq!(all["security"]["previous_secret_keys"], "");
    assert_eq!(all["auth.github"]["client_secret"], "*********");
    assert_eq!(
        all["users"]["password_hint"], "*********",
        "the section is part of the tested name"
    );
    assert_eq!(
        all["database"]["url"],
        "mysql://grafana:xxxxx@db:3306/grafana"
    );
    assert_eq!(all["security"]["admin_user"], "admin");
    assert!(!all.to_string().contains(ADMIN_PW));
    let (_, verbose) = send(app.admin(Method::GET, "/api/admin/settings-verbose")).await;
    assert_eq!(
        verbose["server"]["domain"],
        json!({"value": "localhost", "source": "default"})
    );
    assert_eq!(verbose["security"]["admin_password"]["source"], "file");
    assert_eq!(verbose["security"]["admin_password"]["value"], "*********");
}

#[tokio::test]
async fn settings_reads_are_filtered_by_scope() {
    let app = TestApp::spawn().await;
    let all = app.create_user("all", "allpass").await;
    app.create_user("none", "nonepass").await;
    grant(&app, all, &[(Action::SettingsRead, "settings:*")]).await;
    saml_readers(&app).await;
    let (_, v) = send(app.as_user(Method::GET, "/api/admin/settings", "all", "allpass")).await;
    assert!(v.as_object().unwrap().len() > 10);
    let (_, v) = send(app.as_user(Method::GET, "/api/admin/settings", "saml", "samlpass")).await;
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["auth.saml"]
    );
    assert!(v["auth.saml"].as_object().unwrap().len() > 3);
    let (_, v) = send(app.as_user(Method::GET, "/api/admin/settings", "one", "onepass")).await;
    assert_eq!(v, json!({"auth.saml": {"enabled": "false"}}));
    let (s, b) = send(app.as_user(Method::GET, "/api/admin/settings", "none", "nonepass")).await;
    assert_eq!(s, 403);
    assert!(message(&b).ends_with("Permissions needed: settings:read"));
}

/// Filtered views are remembered per set of scopes: each caller still sees exactly its own
/// settings, callers taking turns do not see each other's, and a change of the settings or
/// of a caller's scopes is seen on the next read.
#[tokio::test]
async fn scoped_settings_views_follow_changes() {
    let app = TestApp::spawn().await;
    let one = saml_readers(&app).await;
    let read = |login: &'static str, pw: &'static str| {
        let req = app.as_user(Method::GET, "/api/admin/settings", login, pw);
        async move {
            let (s, v): (u16, Value) = send(req).await;
            assert_eq!(s, 200, "{v}");
            v
        }
    };
    for _ in 0..2 {
        assert_eq!(
            read("one", "onepass").await,
            json!({"auth.saml": {"enabled": "false"}})
        );
        let v = read("saml", "samlpass").await;
        assert_eq!(v["auth.saml"]["enabled"], "false");
        assert!(v["auth.saml"].as_object().unwrap().len() > 3);
        let (_, all) = send(app.admin(Method::GET, "/api/admin/settings")).await;
        assert!(all.as_object().unwrap().len() > 10);
    }
    let (s, _) = send(
        app.admin(Method::PUT, "/api/admin/settings")
            .json(&json!({"updates": {"auth.saml": {"enabled": "true"}}})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        read("one", "onepass").await,
        json!({"auth.saml": {"enabled": "true"}})
    );
    assert_eq!(
        read("saml", "samlpass").await["auth.saml"]["enabled"],
        "true"
    );
    grant(
        &app,
        one,
        &[(Action::SettingsRead, "settings:auth.saml:single_logout")],
    )
    .await;
    assert_eq!(
        read("one", "onepass").await,
        json!({"auth.saml": {"enabled": "true", "single_logout": "false"}})
    );
}

#[tokio::test]
async fn runtime_updates_override_and_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file_layer = [("auth.saml", "single_logout", "true")];
    let app = TestApp::spawn_in(&data, &file_layer).await;
    // The full view is rendered once and reused: a read before each change must not be
    // what a read after it sees.
    let saml = |app: &TestApp| {
        let req = app.admin(Method::GET, "/api/admin/settings");
        async move {
            let (s, v): (u16, Value) = send(req).await;
            assert_eq!(s, 200);
            v["auth.saml"].clone()
        }
    };
    assert_eq!(saml(&app).await["single_logout"], "true");
    assert_eq!(saml(&app).await["enabled"], "false");
    let body = json!({
        "updates": {"auth.saml": {"enabled": "true", "single_logout": "false", "private_key": "-----BEGIN PRIVATE KEY-----SamlKey123"}},
    });
    let (s, b) = send(app.admin(Method::PUT, "/api/admin/settings").json(&body)).await;
    assert_eq!((s, message(&b)), (200, "Settings updated"));
    let after = saml(&app).await;
    assert_eq!(
        (
            &after["enabled"],
            &after["single_logout"],
            &after["private_key"]
        ),
        (&json!("true"), &json!("false"), &json!("*********"))
    );
    let (_, v) = send(app.admin(Method::GET, "/api/admin/settings-verbose")).await;
    assert_eq!(
        v["auth.saml"]["enabled"],
        json!({"value": "true", "source": "database"})
    );
    assert_eq!(
        v["auth.saml"]["single_logout"],
        json!({"value": "false", "source": "database"})
    );
    assert_eq!(
        v["auth.saml"]["private_key"],
        json!({"value": "*********", "source": "database"})
    );
    // Removal falls back to the file layer, then to the default.
    let (s, _) = send(
        app.admin(Method::PUT, "/api/admin/settings")
            .json(&json!({"removals": {"auth.saml": ["single_logout", "enabled"]}})),
    )
    .await;
    assert_eq!(s, 200);
    let after = saml(&app).await;
    assert_eq!(
        (&after["enabled"], &after["single_logout"]),
        (&json!("false"), &json!("true"))
    );
    let (_, v) = send(app.admin(Method::GET, "/api/admin/settings-verbose")).await;
    assert_eq!(
        v["auth.saml"]["single_logout"],
        json!({"value": "true", "source": "file"})
    );
    assert_eq!(
        v["auth.saml"]["enabled"],
        json!({"value": "false", "source": "default"})
    );
    app.stop().await;
    // The secret is on disk only encrypted, and survives a restart.
    let hits = crate::encryption::files_contain(&data, b"SamlKey123");
    assert!(hits.is_empty(), "{hits:?}");
    let app = TestApp::spawn_in(&data, &file_layer).await;
    assert_eq!(
        app.services
            .settings_admin
            .effective()
            .get("auth.saml", "private_key"),
        Some("-----BEGIN PRIVATE KEY-----SamlKey123")
    );
}

#[tokio::test]
async fn rejected_updates_store_nothing() {
    let app = TestApp::spawn().await;
    let (s, b) = send(app.admin(Method::PUT, "/api/admin/settings").json(
        &json!({"updates": {"auth.saml": {"enabled": "true"}, "server": {"http_port": "1"}}}),
    ))
    .await;
    assert_eq!(s, 400);
    assert!(message(&b).contains("'server'"), "{b}");
    let (s, _) = send(
        app.admin(Method::PUT, "/api/admin/settings")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        app.admin(Method::PUT, "/api/admin/settings")
            .json(&json!({"updates": {}, "removals": {}})),
    )
    .await;
    assert_eq!(s, 400);
    let partial = app.create_user("partial", "partialpw").await;
    grant(
        &app,
        partial,
        &[
            (Action::SettingsWrite, "settings:auth.saml:enabled"),
            (Action::SettingsRead, "settings:*"),
        ],
    )
    .await;
    let (s, b) = send(
        app.as_user(Method::PUT, "/api/admin/settings", "partial", "partialpw")
            .json(&json!({"updates": {"auth.saml": {"enabled": "true", "single_logout": "true"}}})),
    )
    .await;
    assert_eq!(s, 403);
    assert!(message(&b).contains("settings:write"));
    let (_, v) = send(app.admin(Method::GET, "/api/admin/settings")).await;
    assert_eq!(v["auth.saml"]["enabled"], "false", "nothing stored");
    let (s, _) = send(
        app.as_user(Method::PUT, "/api/admin/settings", "partial", "partialpw")
            .json(&json!({"updates": {"auth.saml": {"enabled": "true"}}})),
    )
    .await;
    assert_eq!(s, 200, "the one key it may write");
    let (s, _) = send(
        app.req(Method::PUT, "/api/admin/settings")
            .json(&json!({"updates": {"auth.saml": {"enabled": "true"}}})),
    )
    .await;
    assert_eq!(s, 401);
}

/// What the stats answer. How much they cost as users grow is a wall-clock figure, so it is
/// measured by `make bench` (`bench/run.sh`, `run_stats`: `GET /api/admin/stats` with 10 and
/// with 100,000 users, next to the poem ceiling), not asserted here: a timing ratio on a
/// shared machine fails on load, not on a regression.
#[tokio::test]
async fn stats_follow_writes() {
    let app = TestApp::spawn().await;
    let (s, st) = send(app.admin(Method::GET, "/api/admin/stats")).await;
    assert_eq!(s, 200);
    let keys: Vec<&String> = st.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "orgs",
            "dashboards",
            "snapshots",
            "tags",
            "datasources",
            "playlists",
            "stars",
            "alerts",
            "users",
            "admins",
            "editors",
            "viewers",
            "activeUsers",
            "activeAdmins",
            "activeEditors",
            "activeViewers",
            "activeSessions",
            "dailyActiveUsers",
            "dailyActiveAdmins",
            "dailyActiveEditors",
            "dailyActiveViewers",
            "dailyActiveSessions",
            "monthlyActiveUsers",
            "activeDevices"
        ]
    );
    assert_eq!(
        (
            st["users"].as_i64(),
            st["admins"].as_i64(),
            st["viewers"].as_i64()
        ),
        (Some(1), Some(1), Some(0))
    );
    let a = app.create_user("s1", "s1pass").await;
    app.create_user("s2", "s2pass").await;
    app.login("s1", "s1pass").await;
    send(
        app.admin(Method::POST, "/api/datasources")
            .json(&crate::datasources::ds_body("d", "p")),
    )
    .await;
    app.services.stats.refresh().await.unwrap();
    let (_, st) = send(app.admin(Method::GET, "/api/admin/stats")).await;
    assert_eq!(
        (
            st["users"].as_i64(),
            st["viewers"].as_i64(),
            st["datasources"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(st["activeSessions"], 1);
    assert_eq!(st["dailyActiveSessions"], 1);
    assert!(st["activeUsers"].as_i64().unwrap() >= 2, "{st}");
    send(app.admin(Method::DELETE, &format!("/api/admin/users/{a}"))).await;
    let (_, st) = send(app.admin(Method::GET, "/api/admin/stats")).await;
    assert_eq!(
        (
            st["users"].as_i64(),
            st["viewers"].as_i64(),
            st["activeSessions"].as_i64()
        ),
        (Some(2), Some(1), Some(0))
    );
    let viewer = app.create_user("v", "vpass").await;
    let _ = viewer;
    let (s, _) = send(app.as_user(Method::GET, "/api/admin/stats", "v", "vpass")).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn usage_report_preview() {
    let app = TestApp::spawn().await;
    let (s, r) = send(app.admin(Method::GET, "/api/admin/usage-report-preview")).await;
    assert_eq!(s, 200);
    assert_eq!(r["version"], "11_3_0");
    assert_eq!(r["edition"], "enterprise");
    assert_eq!(r["metrics"]["stats.users.count"], 1);
    assert_eq!(r["metrics"]["stats.valid_license.count"], 0);
    let id = r["usageStatsId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    let (_, again) = send(app.admin(Method::GET, "/api/admin/usage-report-preview")).await;
    assert_eq!(again["usageStatsId"], id, "created once");
    app.create_user("u", "upass1").await;
    let (s, _) = send(app.as_user(
        Method::GET,
        "/api/admin/usage-report-preview",
        "u",
        "upass1",
    ))
    .await;
    assert_eq!(s, 403);
}
