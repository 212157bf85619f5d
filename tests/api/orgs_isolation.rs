//! Two organizations holding objects with the same identifiers stay separate: the same
//! datasource name (and uid), the same dashboard uid, the same custom role uid. Grafana
//! keys each of these per org (unique indexes on (org_id, name) / (org_id, uid) for
//! datasources, `dashboard_org_id_uid` for dashboards, `role_org_id_uid` and
//! `role_org_id_name` for roles), so both orgs may use the same value.
//!
//! The isolation test reaches a second org through Grafana's `[users] auto_assign_org =
//! false` (a new user gets a new org of their own, as its Admin), as it did before the org
//! API existed; the last test uses the org API and `X-Grafana-Org-Id`.
//! So: a first start creates the admin in org 1 (Main Org.); a restart with
//! `auto_assign_org = false` creates `org2-admin`, whose new org is org 2; the objects of
//! both orgs come from provisioning files (which carry `orgId`), reloaded through the
//! admin API once org 2 exists. The admin (org 1) and `org2-admin` (org 2) then read
//! through the ordinary read APIs, each seeing its own org's object and not the other's.

use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{message, send, TestApp, ADMIN, ADMIN_PW};

const ORG2_LOGIN: &str = "org2-admin";
const ORG2_PW: &str = "org2-admin-pw";

struct TwoOrgs {
    app: TestApp,
    _dir: tempfile::TempDir,
}

/// Who reads: the admin acts in org 1, `org2-admin` in org 2.
#[derive(Clone, Copy, Debug)]
enum Org {
    One,
    Two,
}

impl TwoOrgs {
    async fn get(&self, org: Org, path: &str) -> (u16, Value) {
        let (login, pw) = match org {
            Org::One => (ADMIN, ADMIN_PW),
            Org::Two => (ORG2_LOGIN, ORG2_PW),
        };
        send(self.app.as_user(Method::GET, path, login, pw)).await
    }

    async fn reload(&self, kind: &str) -> (u16, Value) {
        send(self.app.admin(
            Method::POST,
            &format!("/api/admin/provisioning/{kind}/reload"),
        ))
        .await
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Org 1 with the admin, org 2 with `org2-admin` (its Admin), provisioning from `files`.
async fn two_orgs(files: &[(&str, &str)]) -> TwoOrgs {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("provisioning");
    for (rel, text) in files {
        write(&root, rel, text);
    }
    let data = dir.path().join("data");
    // First start: org 1 and the admin in it.
    TestApp::spawn_in(&data, &[]).await.stop().await;
    // Restart: new users get an org of their own.
    let p = root.to_string_lossy().to_string();
    let app = TestApp::spawn_in(
        &data,
        &[
            ("paths", "provisioning", p.as_str()),
            ("users", "auto_assign_org", "false"),
        ],
    )
    .await;
    app.create_user(ORG2_LOGIN, ORG2_PW).await;
    let orgs = TwoOrgs { app, _dir: dir };
    let (s, me) = orgs.get(Org::Two, "/api/user").await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["orgId"], 2, "org2-admin's org is org 2: {me}");
    let (_, me) = orgs.get(Org::One, "/api/user").await;
    assert_eq!(me["orgId"], 1, "the admin's org is org 1: {me}");
    orgs
}

fn titles(hits: &Value) -> Vec<String> {
    hits.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h["title"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Collects every broken expectation, so one run reports all of them.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    fn finish(self, test: &str) {
        assert!(
            self.0.is_empty(),
            "{test}: {} isolation failures:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

const DATASOURCES: &str = "apiVersion: 1
datasources:
  - name: Metrics
    type: prometheus
    uid: metrics
    access: proxy
    orgId: 1
    url: http://org-one:9090
  - name: Metrics
    type: prometheus
    uid: metrics
    access: proxy
    orgId: 2
    url: http://org-two:9090
";

#[tokio::test]
async fn the_same_datasource_name_and_uid_in_two_orgs_stay_separate() {
    let orgs = two_orgs(&[("datasources/metrics.yaml", DATASOURCES)]).await;
    let (s, v) = orgs.reload("datasources").await;
    let mut c = Checks::default();
    c.expect(s == 200, format!("datasources reload: {s} {v}"));
    let mut ids = Vec::new();
    for (org, url, other) in [
        (Org::One, "http://org-one:9090", "http://org-two:9090"),
        (Org::Two, "http://org-two:9090", "http://org-one:9090"),
    ] {
        let (s, ds) = orgs.get(org, "/api/datasources/name/Metrics").await;
        c.expect(
            s == 200 && ds["url"] == url,
            format!("{org:?} by name: {s} {ds}"),
        );
        ids.push(ds["id"].as_i64());
        let (s, ds) = orgs.get(org, "/api/datasources/uid/metrics").await;
        c.expect(
            s == 200 && ds["url"] == url,
            format!("{org:?} by uid: {s} {ds}"),
        );
        let (s, list) = orgs.get(org, "/api/datasources").await;
        let urls: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["url"].as_str()).collect())
            .unwrap_or_default();
        c.expect(
            s == 200 && urls == [url],
            format!("{org:?} lists exactly its own Metrics ({url}), not {other}: {list}"),
        );
    }
    // Each org's numeric id is invisible from the other org.
    if let [Some(one), Some(two)] = ids[..] {
        c.expect(
            one != two,
            format!("both orgs answer the same row (id {one})"),
        );
        let (s, v) = orgs.get(Org::One, &format!("/api/datasources/{two}")).await;
        c.expect(
            s == 404,
            format!("org 1 reads org 2's datasource {two}: {s} {v}"),
        );
        let (s, v) = orgs.get(Org::Two, &format!("/api/datasources/{one}")).await;
        c.expect(
            s == 404,
            format!("org 2 reads org 1's datasource {one}: {s} {v}"),
        );
    }
    c.finish("datasources");
}

const DASHBOARD_PROVIDERS: &str = "apiVersion: 1
providers:
  - name: org-one
    orgId: 1
    type: file
    options:
      path: dash-one
  - name: org-two
    orgId: 2
    type: file
    options:
      path: dash-two
";

fn board(title: &str) -> String {
    format!(
        r#"{{"uid": "shared-board", "title": "{title}", "tags": [], "panels": [], "schemaVersion": 39}}"#
    )
}

#[tokio::test]
async fn the_same_dashboard_uid_in_two_orgs_stays_separate() {
    let one = board("Org one board");
    let two = board("Org two board");
    let orgs = two_orgs(&[
        ("dashboards/providers.yaml", DASHBOARD_PROVIDERS),
        ("dash-one/board.json", one.as_str()),
        ("dash-two/board.json", two.as_str()),
    ])
    .await;
    let (s, v) = orgs.reload("dashboards").await;
    let mut c = Checks::default();
    c.expect(s == 200, format!("dashboards reload: {s} {v}"));
    for (org, mine, theirs) in [
        (Org::One, "Org one board", "Org two board"),
        (Org::Two, "Org two board", "Org one board"),
    ] {
        let (s, d) = orgs.get(org, "/api/dashboards/uid/shared-board").await;
        c.expect(
            s == 200 && d["dashboard"]["title"] == mine,
            format!("{org:?} reads shared-board: {s} {d}"),
        );
        let (s, hits) = orgs.get(org, "/api/search?query=board").await;
        let found = titles(&hits);
        c.expect(
            s == 200 && found.iter().any(|t| t == mine) && !found.iter().any(|t| t == theirs),
            format!("{org:?} searches: {found:?} (want {mine:?}, not {theirs:?})"),
        );
    }
    c.finish("dashboards");
}

const ROLES: &str = "apiVersion: 1
roles:
  - name: \"custom:org-one:reader\"
    uid: shared-role
    description: \"org one's role\"
    version: 1
    orgId: 1
    permissions:
      - action: \"datasources:read\"
        scope: \"datasources:*\"
  - name: \"custom:org-two:reader\"
    uid: shared-role
    description: \"org two's role\"
    version: 1
    orgId: 2
    permissions:
      - action: \"folders:read\"
        scope: \"folders:*\"
";

/// Reading roles needs `roles:read`, which only Grafana Admins hold by default, so
/// `org2-admin` is made a Grafana Admin (still acting in org 2). In Grafana the role
/// reads are per org: `GET /api/access-control/roles[/:uid]` answers the caller's
/// current org's roles and the global ones.
#[tokio::test]
async fn the_same_role_uid_in_two_orgs_stays_separate() {
    let orgs = two_orgs(&[("access-control/roles.yaml", ROLES)]).await;
    let (_, me) = orgs.get(Org::Two, "/api/user").await;
    let id = me["id"].as_u64().unwrap();
    let (s, v) = send(
        orgs.app
            .admin(Method::PUT, &format!("/api/admin/users/{id}/permissions"))
            .json(&serde_json::json!({"isGrafanaAdmin": true})),
    )
    .await;
    assert_eq!(s, 200, "org2-admin becomes a Grafana Admin: {v}");
    let (s, v) = orgs.reload("access-control").await;
    let mut c = Checks::default();
    c.expect((200..300).contains(&s), format!("roles reload: {s} {v}"));
    for (org, mine, theirs) in [
        (Org::One, "custom:org-one:reader", "custom:org-two:reader"),
        (Org::Two, "custom:org-two:reader", "custom:org-one:reader"),
    ] {
        let (s, r) = orgs.get(org, "/api/access-control/roles/shared-role").await;
        c.expect(
            s == 200 && r["name"] == mine,
            format!("{org:?} reads shared-role: {s} {r}"),
        );
        let (s, list) = orgs.get(org, "/api/access-control/roles").await;
        let names: Vec<&str> = list
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        c.expect(
            s == 200 && names.contains(&mine) && !names.contains(&theirs),
            format!(
                "{org:?} lists its own {mine:?} and not {theirs:?}: has mine {}, has theirs {}",
                names.contains(&mine),
                names.contains(&theirs)
            ),
        );
    }
    c.finish("roles");
}

/// `X-Grafana-Org-Id` picks the org of one request for a signed-in user (Grafana's
/// header): the user's role there applies, none when not a member; a bad value is a 400.
#[tokio::test]
async fn the_org_header_selects_the_org_of_one_request() {
    let app = TestApp::spawn().await;
    let (s, b) = send(
        app.admin(reqwest::Method::POST, "/api/orgs")
            .json(&serde_json::json!({"name": "Second"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let ds = serde_json::json!({"name": "in-two", "type": "prometheus", "url": "http://p:9090", "access": "proxy"});
    let (s, b) = send(
        app.admin(reqwest::Method::POST, "/api/datasources")
            .header("X-Grafana-Org-Id", "2")
            .json(&ds),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(reqwest::Method::GET, "/api/datasources/name/in-two")
            .header("X-Grafana-Org-Id", "2"),
    )
    .await;
    assert_eq!((s, b["orgId"].as_u64()), (200, Some(2)), "{b}");
    let (s, b) = send(app.admin(reqwest::Method::GET, "/api/datasources/name/in-two")).await;
    assert_eq!(s, 404, "the current org is still 1: {b}");
    let (s, b) = send(
        app.admin(reqwest::Method::GET, "/api/org")
            .header("X-Grafana-Org-Id", "2"),
    )
    .await;
    assert_eq!((s, b["name"].as_str()), (200, Some("Second")), "{b}");

    // A member of org 1 only has no role in org 2.
    app.create_user("bob", "bob-pass-1").await;
    let (s, b) = send(
        app.as_user(reqwest::Method::GET, "/api/org", "bob", "bob-pass-1")
            .header("X-Grafana-Org-Id", "2"),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = send(
        app.admin(reqwest::Method::GET, "/api/org")
            .header("X-Grafana-Org-Id", "two"),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "Invalid X-Grafana-Org-Id header"),
        "{b}"
    );
}

const EDITOR_DATASOURCES: &str = "apiVersion: 1
datasources:
  - name: One DS
    type: prometheus
    uid: org-one-ds
    access: proxy
    orgId: 1
    url: http://org-one:9090
  - name: Two DS
    type: prometheus
    uid: org-two-ds
    access: proxy
    orgId: 2
    url: http://org-two:9090
";

fn board_with_uid(uid: &str, title: &str) -> String {
    format!(
        r#"{{"uid": "{uid}", "title": "{title}", "tags": [], "panels": [], "schemaVersion": 39}}"#
    )
}

/// An Editor of org 2 (and of no other org) reads its own org's datasource and dashboard,
/// and none of org 1's: by id, uid or name Grafana answers 404 "Data source not found" /
/// "Dashboard not found" (the lookups are keyed by the caller's org, after the
/// permission check, which the Editor passes), searches by id or uid find nothing, and
/// naming org 1 in `X-Grafana-Org-Id` gives the Editor no role there: 403.
#[tokio::test]
async fn an_org_two_editor_reads_nothing_of_org_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("provisioning");
    write(&root, "datasources/ds.yaml", EDITOR_DATASOURCES);
    write(&root, "dashboards/providers.yaml", DASHBOARD_PROVIDERS);
    write(
        &root,
        "dash-one/board.json",
        &board_with_uid("org-one-board", "One board"),
    );
    write(
        &root,
        "dash-two/board.json",
        &board_with_uid("org-two-board", "Two board"),
    );
    let p = root.to_string_lossy().to_string();
    let app = TestApp::spawn_with(&[("paths", "provisioning", p.as_str())]).await;
    let admin = |method: Method, path: &str| app.admin(method, path);

    // Org 2, and an Editor who belongs to it only.
    let (s, v) = send(admin(Method::POST, "/api/orgs").json(&json!({"name": "Second"}))).await;
    assert_eq!((s, v["orgId"].as_u64()), (200, Some(2)), "{v}");
    let ed = app.create_user("ed2", "ed2-pass-1").await;
    let (s, v) = send(
        admin(Method::POST, "/api/orgs/2/users")
            .json(&json!({"loginOrEmail": "ed2", "role": "Editor"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(admin(Method::POST, &format!("/api/users/{ed}/using/2"))).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(admin(Method::DELETE, &format!("/api/orgs/1/users/{ed}"))).await;
    assert_eq!(s, 200, "{v}");
    let get = |path: &str| send(app.as_user(Method::GET, path, "ed2", "ed2-pass-1"));
    let (_, orgs) = get("/api/user/orgs").await;
    assert_eq!(
        orgs,
        json!([{"orgId": 2, "name": "Second", "role": "Editor"}])
    );

    // Both orgs' objects, now that org 2 exists.
    for (kind, done) in [
        ("datasources", "Datasources config reloaded"),
        ("dashboards", "Dashboards config reloaded"),
    ] {
        let (s, v) = send(admin(
            Method::POST,
            &format!("/api/admin/provisioning/{kind}/reload"),
        ))
        .await;
        assert_eq!((s, message(&v)), (200, done), "{kind}");
    }
    let (s, one_ds) = send(admin(Method::GET, "/api/datasources/uid/org-one-ds")).await;
    assert_eq!(s, 200, "{one_ds}");
    let one_ds_id = one_ds["id"].as_i64().unwrap();
    let (s, one_hits) = send(admin(
        Method::GET,
        "/api/search?dashboardUIDs=org-one-board",
    ))
    .await;
    assert_eq!((s, titles(&one_hits)), (200, vec!["One board".to_string()]));
    let one_board_id = one_hits[0]["id"].as_i64().unwrap();

    // The Editor reads its own org's objects (so the 404s below are not a missing permission).
    let (s, two_ds) = get("/api/datasources/uid/org-two-ds").await;
    assert_eq!((s, two_ds["orgId"].as_i64()), (200, Some(2)), "{two_ds}");
    let two_ds_id = two_ds["id"].as_i64().unwrap();
    assert_ne!(one_ds_id, two_ds_id);
    for path in [
        format!("/api/datasources/{two_ds_id}"),
        "/api/datasources/name/Two%20DS".to_string(),
    ] {
        let (s, v) = get(&path).await;
        assert_eq!(
            (s, v["uid"].as_str()),
            (200, Some("org-two-ds")),
            "{path}: {v}"
        );
    }
    let (s, d) = get("/api/dashboards/uid/org-two-board").await;
    assert_eq!(
        (s, d["dashboard"]["title"].as_str()),
        (200, Some("Two board")),
        "{d}"
    );
    let two_board_id = d["dashboard"]["id"].as_i64().unwrap();
    assert_ne!(
        one_board_id, two_board_id,
        "dashboard ids are unique across orgs"
    );
    let (s, hits) = get(&format!("/api/search?dashboardIds={two_board_id}")).await;
    assert_eq!((s, titles(&hits)), (200, vec!["Two board".to_string()]));

    // Nothing of org 1, by id, uid or name.
    for path in [
        format!("/api/datasources/{one_ds_id}"),
        "/api/datasources/uid/org-one-ds".to_string(),
        "/api/datasources/name/One%20DS".to_string(),
        "/api/datasources/id/One%20DS".to_string(),
    ] {
        let (s, v) = get(&path).await;
        assert_eq!(
            (s, message(&v)),
            (404, "Data source not found"),
            "{path}: {v}"
        );
    }
    let (s, v) = get("/api/dashboards/uid/org-one-board").await;
    assert_eq!((s, message(&v)), (404, "Dashboard not found"), "{v}");
    for path in [
        format!("/api/search?dashboardIds={one_board_id}"),
        "/api/search?dashboardUIDs=org-one-board".to_string(),
        "/api/search?query=One".to_string(),
    ] {
        let (s, v) = get(&path).await;
        assert_eq!((s, v), (200, json!([])), "{path}");
    }
    let (s, list) = get("/api/datasources").await;
    let uids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["uid"].as_str())
        .collect();
    assert_eq!((s, uids), (200, vec!["org-two-ds"]), "{list}");
    let (s, hits) = get("/api/search").await;
    assert_eq!((s, titles(&hits)), (200, vec!["Two board".to_string()]));

    // Naming org 1 in the header: no role there.
    for (path, action) in [
        (format!("/api/datasources/{one_ds_id}"), "datasources:read"),
        (
            "/api/datasources/uid/org-one-ds".to_string(),
            "datasources:read",
        ),
        (
            "/api/dashboards/uid/org-one-board".to_string(),
            "dashboards:read",
        ),
    ] {
        let (s, v) = send(
            app.as_user(Method::GET, &path, "ed2", "ed2-pass-1")
                .header("X-Grafana-Org-Id", "1"),
        )
        .await;
        assert!(
            s == 403 && crate::datasources::denied(&v, action),
            "{path} in org 1: {s} {v}"
        );
    }
}
