//! Provisioning from files (tests/fixtures/provisioning, copied per test so files can
//! change): every kind at start-up, reloads, deletions, broken files that change nothing and
//! name the file and line, dashboard polling and pruning, a provisioned role that takes
//! effect at once, encrypted secrets, and legacy alerts with pause-all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::encryption::files_contain;
use crate::helpers::{message, send, TestApp};

const PG_PASSWORD: &str = "pg-fixture-secret-93f1";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provisioning")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct Provisioned {
    app: TestApp,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Provisioned {
    fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.file(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{rel} has no {from:?}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }

    async fn reload(&self, kind: &str) -> (u16, Value) {
        send(self.app.admin(
            Method::POST,
            &format!("/api/admin/provisioning/{kind}/reload"),
        ))
        .await
    }

    /// A reload that must work: Grafana's status and message for the kind.
    async fn reloaded(&self, kind: &str) {
        let want = match kind {
            "dashboards" => (200, "Dashboards config reloaded"),
            "datasources" => (200, "Datasources config reloaded"),
            "plugins" => (200, "Plugins config reloaded"),
            "notifications" => (200, "Notifications config reloaded"),
            _ => (202, "Accesscontrol config reloaded"),
        };
        let (s, v) = self.reload(kind).await;
        assert_eq!((s, message(&v)), want, "{kind} reload: {v}");
    }

    /// A reload that must fail: 500 naming the file (and the problem).
    async fn refused(&self, kind: &str, needle: &str) -> String {
        let (s, v) = self.reload(kind).await;
        assert_eq!(s, 500, "{kind} reload: {v}");
        let m = message(&v).to_string();
        assert!(m.contains(needle), "{kind} reload: {m} (want {needle:?})");
        m
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        send(self.app.admin(Method::GET, path)).await
    }
}

async fn provisioned() -> Provisioned {
    // The fixtures reference these; every test sets the same values.
    std::env::set_var("PG_PASSWORD", PG_PASSWORD);
    std::env::set_var("ONCALL_TOKEN", "oncall-fixture-token");
    std::env::set_var("SLACK_WEBHOOK", "https://hooks.slack.example/fixture");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("provisioning");
    copy_dir(&fixtures(), &root);
    let p = root.to_string_lossy().to_string();
    let app = TestApp::spawn_with(&[("paths", "provisioning", p.as_str())]).await;
    Provisioned {
        app,
        root,
        _dir: dir,
    }
}

#[tokio::test]
async fn every_kind_is_provisioned_at_start_up() {
    let p = provisioned().await;
    // Datasources: read-only, secrets encrypted.
    let (s, ds) = p.get("/api/datasources/name/Postgres").await;
    assert_eq!(s, 200, "{ds}");
    assert_eq!(ds["readOnly"], true);
    assert_eq!(ds["secureJsonFields"]["password"], true);
    assert_eq!(ds["jsonData"]["sslmode"], "disable");
    assert_eq!(p.get("/api/datasources/uid/prometheus-main").await.0, 200);
    assert!(
        files_contain(&p.app.data, PG_PASSWORD.as_bytes()).is_empty(),
        "the datasource password is encrypted on disk"
    );
    // Dashboards, folders, tags, alerts.
    let (s, d) = p.get("/api/dashboards/uid/api-latency").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["dashboard"]["title"], "API latency");
    assert_eq!(d["meta"]["provisioned"], true);
    assert_eq!(d["meta"]["folderTitle"], "Services");
    let (_, folders) = p.get("/api/folders").await;
    assert_eq!(folders[0]["title"], "Services");
    let (_, hits) = p.get("/api/search?tag=infra").await;
    let titles: Vec<&str> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Node overview"]);
    let (_, alerts) = p.get("/api/alerts").await;
    assert_eq!(alerts.as_array().unwrap().len(), 2, "{alerts}");
    let (_, stats) = p.get("/api/admin/stats").await;
    assert_eq!(
        (
            stats["dashboards"].as_i64(),
            stats["alerts"].as_i64(),
            stats["datasources"].as_i64()
        ),
        (Some(2), Some(2), Some(2))
    );
    // Plugins.
    let (s, plugin) = p.get("/api/plugins/grafana-oncall-app/settings").await;
    assert_eq!(s, 200, "{plugin}");
    assert_eq!(plugin["enabled"], true);
    assert_eq!(plugin["jsonData"]["stackId"], 5);
    assert_eq!(plugin["secureJsonFields"]["onCallApiToken"], true);
    assert!(files_contain(&p.app.data, b"oncall-fixture-token").is_empty());
    // Notification channels.
    let (_, channels) = p.get("/api/alert-notifications").await;
    let names: Vec<&str> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ops email", "Ops Slack"]);
    assert_eq!(channels[1]["secureFields"]["url"], true);
    assert!(
        channels[1]["settings"].get("url").is_none(),
        "secure settings are not answered"
    );
    // Roles.
    let (s, role) = p.get("/api/access-control/roles/custom-saml-reader").await;
    assert_eq!(s, 200, "{role}");
    assert_eq!(
        role["permissions"],
        json!([{"action": "settings:read", "scope": "settings:auth.saml:*"}])
    );
    // Status, per kind and file.
    let (_, status) = p.get("/api/admin/provisioning/status").await;
    for kind in [
        "datasources",
        "dashboards",
        "plugins",
        "notifications",
        "accesscontrol",
    ] {
        assert_eq!(status[kind]["ok"], true, "{kind}: {status}");
    }
    assert!(
        status["dashboards"]["files"].as_array().unwrap().len() >= 3,
        "{status}"
    );
}

#[tokio::test]
async fn reloads_apply_changes_and_deletions() {
    let p = provisioned().await;
    p.edit(
        "datasources/datasources.yaml",
        "http://prometheus:9090",
        "http://prom2:9090",
    );
    p.reloaded("datasources").await;
    assert_eq!(
        p.get("/api/datasources/name/Prometheus").await.1["url"],
        "http://prom2:9090"
    );
    // deleteDatasources removes (a second file, so the first still defines Postgres).
    std::fs::write(
        p.file("datasources/zz-cleanup.yaml"),
        "apiVersion: 1\ndeleteDatasources:\n  - name: Prometheus\n    orgId: 1\n",
    )
    .unwrap();
    std::fs::write(
        p.file("datasources/datasources.yaml"),
        std::fs::read_to_string(p.file("datasources/datasources.yaml"))
            .unwrap()
            .replace("name: Prometheus", "name: Prometheus 2")
            .replace("uid: prometheus-main", "uid: prometheus-two"),
    )
    .unwrap();
    p.reloaded("datasources").await;
    assert_eq!(p.get("/api/datasources/name/Prometheus").await.0, 404);
    assert_eq!(p.get("/api/datasources/name/Prometheus%202").await.0, 200);
    assert_eq!(p.get("/api/datasources/name/Postgres").await.0, 200);

    p.edit("plugins/apps.yaml", "stackId: 5", "stackId: 6");
    p.reloaded("plugins").await;
    assert_eq!(
        p.get("/api/plugins/grafana-oncall-app/settings").await.1["jsonData"]["stackId"],
        6
    );

    p.edit(
        "notifiers/notifiers.yaml",
        "ops@example.com",
        "oncall@example.com",
    );
    p.reloaded("notifications").await;
    let (_, channels) = p.get("/api/alert-notifications").await;
    assert_eq!(channels[0]["settings"]["addresses"], "oncall@example.com");
    std::fs::write(
        p.file("notifiers/notifiers.yaml"),
        "apiVersion: 1\ndelete_notifiers:\n  - name: Ops Slack\n    org_id: 1\n",
    )
    .unwrap();
    p.reloaded("notifications").await;
    let (_, channels) = p.get("/api/alert-notifications").await;
    assert_eq!(channels.as_array().unwrap().len(), 1, "{channels}");
    assert_eq!(channels[0]["name"], "Ops email", "{channels}");

    std::fs::write(
        p.file("access-control/roles.yaml"),
        "apiVersion: 1\ndeleteRoles:\n  - uid: custom-users-reader\n",
    )
    .unwrap();
    p.reloaded("access-control").await;
    assert_eq!(
        p.get("/api/access-control/roles/custom-users-reader")
            .await
            .0,
        404
    );
    assert_eq!(
        p.get("/api/access-control/roles/custom-saml-reader")
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_broken_file_changes_nothing_and_names_file_and_line() {
    let p = provisioned().await;
    let before = p.get("/api/datasources/name/Prometheus").await.1;
    let cases = [
        ("bad yaml", "apiVersion: 1\ndatasources:\n  - name: X\n   type: prometheus\n"),
        ("missing name", "apiVersion: 1\ndatasources:\n  - type: prometheus\n    url: http://x\n"),
        ("wrong type", "apiVersion: 1\ndatasources:\n  - name: X\n    type: prometheus\n    isDefault: [1, 2]\n"),
    ];
    for (what, text) in cases {
        // A second file that would change Prometheus: not applied either.
        p.edit(
            "datasources/datasources.yaml",
            "http://prometheus:9090",
            "http://changed:1",
        );
        std::fs::write(p.file("datasources/zz-broken.yaml"), text).unwrap();
        let (s, v) = p.reload("datasources").await;
        assert_eq!(s, 500, "{what}: {v}");
        let m = message(&v);
        assert!(m.contains("zz-broken.yaml:"), "{what}: {m}");
        assert!(
            m.split("zz-broken.yaml:")
                .nth(1)
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())),
            "{what}: a line number follows the file: {m}"
        );
        assert_eq!(
            p.get("/api/datasources/name/Prometheus").await.1["url"],
            before["url"],
            "{what}"
        );
        p.edit(
            "datasources/datasources.yaml",
            "http://changed:1",
            "http://prometheus:9090",
        );
        let (_, status) = p.get("/api/admin/provisioning/status").await;
        assert_eq!(status["datasources"]["ok"], false);
        assert!(status["datasources"]["error"]
            .as_str()
            .unwrap()
            .contains("zz-broken.yaml"));
    }
    // A name defined twice is caught before anything is written.
    p.edit(
        "datasources/datasources.yaml",
        "http://prometheus:9090",
        "http://changed:1",
    );
    std::fs::write(
        p.file("datasources/zz-broken.yaml"),
        "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    type: prometheus\n",
    )
    .unwrap();
    let (s, v) = p.reload("datasources").await;
    assert_eq!(s, 500);
    assert!(
        message(&v).contains("'Prometheus' is also defined in"),
        "{v}"
    );
    assert_eq!(
        p.get("/api/datasources/name/Prometheus").await.1["url"],
        before["url"]
    );
    p.edit(
        "datasources/datasources.yaml",
        "http://changed:1",
        "http://prometheus:9090",
    );
    // Fixed: the reload works again, and applies the pending change.
    std::fs::remove_file(p.file("datasources/zz-broken.yaml")).unwrap();
    p.edit(
        "datasources/datasources.yaml",
        "http://prometheus:9090",
        "http://fixed:9090",
    );
    p.reloaded("datasources").await;
    assert_eq!(
        p.get("/api/datasources/name/Prometheus").await.1["url"],
        "http://fixed:9090"
    );
    let (_, status) = p.get("/api/admin/provisioning/status").await;
    assert_eq!(
        (
            status["datasources"]["ok"].as_bool(),
            status["datasources"]["error"].as_str()
        ),
        (Some(true), Some("")),
        "{status}"
    );
    // Bad dashboard JSON names its line too.
    std::fs::write(
        p.file("dashboards-json/broken.json"),
        "{\n  \"title\": \"x\",\n  oops\n}",
    )
    .unwrap();
    p.refused("dashboards", "broken.json:3").await;
    assert_eq!(p.get("/api/dashboards/uid/api-latency").await.0, 200);
}

async fn eventually(p: &Provisioned, path: &str, want: u16) -> bool {
    for _ in 0..100 {
        if p.get(path).await.0 == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn dashboards_are_polled_reloaded_safely_and_pruned() {
    let p = provisioned().await;
    let new = json!({"uid": "polled", "title": "Polled", "tags": [], "panels": []});
    std::fs::write(p.file("dashboards-json/polled.json"), new.to_string()).unwrap();
    assert!(
        eventually(&p, "/api/dashboards/uid/polled", 200).await,
        "a new file appears within updateIntervalSeconds without a reload"
    );
    // Concurrent reloads while the poller runs: each one works, and together they leave
    // exactly what one reload leaves (no duplicate, no new id, no version bump).
    let before = dashboards_state(&p).await;
    assert_eq!(
        before
            .iter()
            .map(|(uid, title, _, _)| (uid.as_str(), title.as_str()))
            .collect::<Vec<_>>(),
        [
            ("api-latency", "API latency"),
            ("node-overview", "Node overview"),
            ("polled", "Polled")
        ]
    );
    let (a, b, c) = tokio::join!(
        p.reload("dashboards"),
        p.reload("dashboards"),
        p.reload("dashboards")
    );
    for (s, v) in [a, b, c] {
        assert_eq!((s, message(&v)), (200, "Dashboards config reloaded"));
    }
    assert_eq!(
        dashboards_state(&p).await,
        before,
        "after concurrent reloads"
    );
    let (_, stats) = p.get("/api/admin/stats").await;
    assert_eq!(stats["dashboards"], 3);
    let (_, folders) = p.get("/api/folders").await;
    assert_eq!(folders.as_array().map(Vec::len), Some(1), "{folders}");
    let (_, status) = p.get("/api/admin/provisioning/status").await;
    let run = &status["dashboards"];
    assert_eq!(
        (run["ok"].as_bool(), run["error"].as_str()),
        (Some(true), Some("")),
        "{status}"
    );
    // Without prune, a deleted file's dashboard stays (Grafana's behaviour) ...
    std::fs::remove_file(p.file("dashboards-json/polled.json")).unwrap();
    p.reloaded("dashboards").await;
    assert_eq!(p.get("/api/dashboards/uid/polled").await.0, 200);
    assert_eq!(dashboards_state(&p).await, before);
    // ... with `prune: true` it goes.
    p.edit(
        "dashboards/dashboards.yaml",
        "allowUiUpdates: false",
        "allowUiUpdates: false\n    prune: true",
    );
    p.reloaded("dashboards").await;
    assert_eq!(p.get("/api/dashboards/uid/polled").await.0, 404);
    assert_eq!(p.get("/api/dashboards/uid/api-latency").await.0, 200);
    assert_eq!(dashboards_state(&p).await, before[..2]);
    let (_, stats) = p.get("/api/admin/stats").await;
    assert_eq!(stats["dashboards"], 2);
}

/// Every dashboard of org 1 as (uid, title, id, version), by title.
async fn dashboards_state(p: &Provisioned) -> Vec<(String, String, i64, i64)> {
    let (s, hits) = p.get("/api/search?type=dash-db").await;
    assert_eq!(s, 200, "{hits}");
    let mut out = Vec::new();
    for h in hits.as_array().unwrap() {
        let uid = h["uid"].as_str().unwrap().to_string();
        let (s, d) = p.get(&format!("/api/dashboards/uid/{uid}")).await;
        assert_eq!(s, 200, "{d}");
        out.push((
            uid,
            h["title"].as_str().unwrap().to_string(),
            h["id"].as_i64().unwrap(),
            d["meta"]["version"].as_i64().unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn a_provisioned_role_takes_effect_at_once() {
    let p = provisioned().await;
    p.app.create_user("saml-viewer", "viewer-pw-1").await;
    // The fixture grants custom:saml:reader to Viewers: only the auth.saml section.
    let (s, v) = send(p.app.as_user(
        Method::GET,
        "/api/admin/settings",
        "saml-viewer",
        "viewer-pw-1",
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let sections: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(sections, ["auth.saml"]);
    // Removing the assignment takes effect at the reload.
    p.edit(
        "access-control/roles.yaml",
        "    builtInRoles:\n      - name: Viewer\n",
        "",
    );
    p.edit(
        "access-control/roles.yaml",
        "version: 1\n    global: true\n    permissions:\n      - action: \"settings:read\"",
        "version: 2\n    global: true\n    permissions:\n      - action: \"settings:read\"",
    );
    // The message grafana-api-sdk checks (Grafana Enterprise's body is not public).
    p.reloaded("access-control").await;
    let (s, _) = send(p.app.as_user(
        Method::GET,
        "/api/admin/settings",
        "saml-viewer",
        "viewer-pw-1",
    ))
    .await;
    assert_eq!(s, 403);
    // A role assigned to a user by login.
    p.app.create_user("auditor", "auditor-pw-1").await;
    p.reloaded("access-control").await;
    let (s, _) = send(
        p.app
            .as_user(Method::GET, "/api/users", "auditor", "auditor-pw-1"),
    )
    .await;
    assert_eq!(s, 200);
    // An unknown action is a reload error naming the file and the action; nothing changes.
    p.edit(
        "access-control/roles.yaml",
        "version: 1\n    global: true\n    permissions:\n      - action: \"users:read\"",
        "version: 2\n    global: true\n    permissions:\n      - action: \"users:reed\"",
    );
    let m = p.refused("access-control", "roles.yaml:").await;
    assert!(m.contains("users:reed"), "{m}");
    let (s, _) = send(
        p.app
            .as_user(Method::GET, "/api/users", "auditor", "auditor-pw-1"),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn reload_permissions() {
    let p = provisioned().await;
    p.app.create_user("plain", "plain-pw-1").await;
    for kind in [
        "dashboards",
        "datasources",
        "plugins",
        "notifications",
        "access-control",
    ] {
        let (s, v) = send(p.app.as_user(
            Method::POST,
            &format!("/api/admin/provisioning/{kind}/reload"),
            "plain",
            "plain-pw-1",
        ))
        .await;
        assert_eq!(s, 403, "{kind}: {v}");
        let (s, _) = send(p.app.req(
            Method::POST,
            &format!("/api/admin/provisioning/{kind}/reload"),
        ))
        .await;
        assert_eq!(s, 401);
    }
}

#[tokio::test]
async fn legacy_alerts_pause_all_and_survive_reload() {
    let p = provisioned().await;
    let (s, v) = send(
        p.app
            .admin(Method::POST, "/api/admin/pause-all-alerts")
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"alertsAffected": 2, "message": "alerts paused", "state": "paused"})
    );
    let (_, paused) = p.get("/api/alerts?state=paused").await;
    assert_eq!(paused.as_array().unwrap().len(), 2);
    // A dashboard reload (with a changed file) keeps the pause.
    p.edit(
        "dashboards-json/api-latency.json",
        "\"API latency\"",
        "\"API latency v2\"",
    );
    p.reloaded("dashboards").await;
    assert_eq!(
        p.get("/api/dashboards/uid/api-latency").await.1["dashboard"]["title"],
        "API latency v2"
    );
    let (_, paused) = p.get("/api/alerts?state=paused").await;
    assert_eq!(paused.as_array().unwrap().len(), 2, "{paused}");
    let (s, v) = send(
        p.app
            .admin(Method::POST, "/api/admin/pause-all-alerts")
            .json(&json!({"paused": false})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"alertsAffected": 2, "message": "alerts un paused", "state": "pending"})
    );
    // One alert.
    let id = p.get("/api/alerts").await.1[0]["id"].as_i64().unwrap();
    let (s, v) = send(
        p.app
            .admin(Method::POST, &format!("/api/alerts/{id}/pause"))
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("paused")));
    let (s, _) = send(
        p.app
            .admin(Method::POST, "/api/alerts/999/pause")
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!(s, 404);
    // Grafana Admins only; bad bodies.
    p.app.create_user("editorish", "editor-pw-1").await;
    let (s, v) = send(
        p.app
            .as_user(
                Method::POST,
                "/api/admin/pause-all-alerts",
                "editorish",
                "editor-pw-1",
            )
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!((s, message(&v)), (403, "Permission denied"));
    let (s, _) = send(
        p.app
            .admin(Method::POST, "/api/admin/pause-all-alerts")
            .json(&json!({"paused": "yes"})),
    )
    .await;
    assert_eq!(s, 400);
    let (_, stats) = p.get("/api/admin/stats").await;
    assert_eq!(stats["alerts"], 2);
}
