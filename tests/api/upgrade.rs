//! Upgrades keep data: a data folder written by an older tollgate opens with this build
//! with every record intact, and opens again (a migration on open must be idempotent).
//!
//! The fixture `tests/fixtures/upgrade-v1/` was written over HTTP by a debug build of commit
//! f711a7f (see its `make.sh`): `data/` is the sled folder, `expected.json` holds the
//! credentials (passwords, a session cookie, an API key, a service-account token, the
//! license token, the secret_key) and GET snapshots of every record as the old binary
//! served them. The test never opens the committed folder in place: it copies it into a
//! temp dir first. Its provisioning folder is an empty temp dir, so provisioned dashboards,
//! notifiers and plugin settings are read from the database, not re-provisioned.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{json, Map, Value};

use crate::helpers::{message, send, session_token, TestApp, CHROME_UA};

pub(crate) fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade-v1")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
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

pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("expected.json: {key} is not a string in {v}"))
}

pub(crate) fn n(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("expected.json: {key} is not a number in {v}"))
}

/// A copy of the fixture, and the configuration it was written with.
pub(crate) struct Fixture {
    pub(crate) e: Value,
    pub(crate) data: PathBuf,
    pub(crate) overrides: Vec<(String, String, String)>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let e = expected();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        copy_dir(&fixture().join("data"), &data);
        let provisioning = dir.path().join("provisioning-empty");
        std::fs::create_dir_all(&provisioning).unwrap();
        let c = &e["config"];
        let overrides = [
            ("security", "secret_key", s(c, "security.secret_key")),
            (
                "security",
                "password_hash_iterations",
                s(c, "security.password_hash_iterations"),
            ),
            ("server", "root_url", s(c, "server.root_url")),
            (
                "enterprise",
                "license_issuer_keys",
                s(c, "enterprise.license_issuer_keys"),
            ),
            ("enterprise", "auto_refresh_license", "false"),
            // The committed session must not age out: these are only the limits of this
            // test's server, the session row is the fixture's.
            ("auth", "login_maximum_lifetime_duration", "36500d"),
            ("auth", "login_maximum_inactive_lifetime_duration", "36500d"),
            ("paths", "provisioning", &provisioning.to_string_lossy()),
        ]
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
        Self {
            e,
            data,
            overrides,
            _dir: dir,
        }
    }

    pub(crate) async fn spawn(&self) -> TestApp {
        TestApp::spawn_in(&self.data, &self.settings(&[])).await
    }

    /// The fixture's settings and `extra` ones.
    pub(crate) fn settings<'a>(
        &'a self,
        extra: &[(&'a str, &'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str, &'a str)> {
        self.overrides
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .chain(extra.iter().copied())
            .collect()
    }

    fn user(&self, name: &str) -> &Value {
        &self.e["users"][name]
    }
}

pub(crate) async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = send(app.admin(Method::GET, path)).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Fixed roles granted to basic roles after the fixture was written.
const FIXED_ROLES_SINCE_FIXTURE: &[&str] = &[
    "fixed:datasources.id:reader",
    "fixed:organization:reader",
    "fixed:organization:writer",
    "fixed:organization:maintainer",
    "fixed:org.users:reader",
    "fixed:org.users:writer",
];

/// Removes what depends on the clock or on this test's own requests, not on stored data.
pub(crate) fn normalize(path: &str, v: &mut Value) {
    const VOLATILE: &[&str] = &[
        // "Never seen" is rendered as now minus ten years; the age is relative to now.
        "lastSeenAt",
        "lastSeenAtAge",
        // Relative to now.
        "daysLeft",
        "secondsUntilExpiration",
    ];
    match v {
        Value::Object(map) => {
            for key in VOLATILE {
                map.remove(*key);
            }
            if path == "/api/admin/stats" {
                // Activity windows are recomputed from last-seen times at start-up.
                map.retain(|k, _| {
                    !(k.starts_with("daily") || k.starts_with("monthly"))
                        && (!k.starts_with("active") || k == "activeSessions")
                });
            }
            if path == "/api/admin/usage-report-preview" {
                // The stored part: counters and the install's usage id (not the build's
                // version, OS or architecture).
                map.retain(|k, _| {
                    matches!(k.as_str(), "metrics" | "usageStatsId" | "hasValidLicense")
                });
                if let Some(Value::Object(metrics)) = map.get_mut("metrics") {
                    metrics.retain(|k, _| {
                        !(k.contains("daily_active")
                            || k.contains("monthly_active")
                            || (k.contains(".active_") && k != "stats.active_sessions.count"))
                    });
                }
            }
            for value in map.values_mut() {
                normalize(path, value);
            }
        }
        Value::Array(items) => {
            if path.ends_with("/permissions") {
                // The fixed-role catalog is code, not data: roles added to a basic role
                // since the fixture was written explain new permissions, not changed ones.
                items.retain(|i| {
                    !i["role"].as_str().is_some_and(|r| {
                        FIXED_ROLES_SINCE_FIXTURE
                            .iter()
                            .any(|f| r.starts_with(&format!("{f} ")))
                    })
                });
            }
            items.iter_mut().for_each(|i| normalize(path, i))
        }
        _ => {}
    }
}

/// Every GET snapshot the old binary served, served again the same (volatile fields aside).
async fn snapshots_match(app: &TestApp, e: &Value) {
    let snapshots = e["snapshots"].as_object().unwrap();
    assert!(snapshots.len() > 20, "the fixture has its snapshots");
    let mut diffs = Vec::new();
    for (path, old) in snapshots {
        let mut now = match path.split_once('#') {
            // A section of a larger document: only that section is compared.
            Some((p, section)) => json!({ section: get(app, p).await[section].clone() }),
            None => get(app, path).await,
        };
        let mut old = old.clone();
        normalize(path, &mut old);
        normalize(path, &mut now);
        if old != now {
            diffs.push(format!("GET {path}\n  old: {old}\n  new: {now}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} record(s) read back differently after the upgrade:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

pub(crate) async fn users_are_intact(app: &TestApp, f: &Fixture) {
    for name in ["ada", "gary", "dora", "rhea", "paul"] {
        let u = f.user(name);
        for key in [s(u, "login"), s(u, "email")] {
            let got = get(
                app,
                &format!("/api/users/lookup?loginOrEmail={}", urlencode(key)),
            )
            .await;
            assert_eq!(got["id"].as_u64(), Some(n(u, "id")), "{name} by {key}");
            for field in ["login", "name", "email", "isGrafanaAdmin", "isDisabled"] {
                assert_eq!(got[field], u[field], "{name}.{field}");
            }
            if let Some(theme) = u.get("theme") {
                assert_eq!(&got["theme"], theme, "{name}.theme");
            }
        }
    }
    let (status, hits) = send(app.admin(Method::GET, "/api/users/search?perpage=100")).await;
    assert_eq!(
        (status, hits["totalCount"].as_u64()),
        (200, Some(6)),
        "{hits}"
    );
}

pub(crate) async fn passwords_work(app: &TestApp, f: &Fixture) {
    for name in ["admin", "ada", "gary", "rhea", "paul"] {
        let u = f.user(name);
        let (status, me) =
            send(app.as_user(Method::GET, "/api/user", s(u, "login"), s(u, "password"))).await;
        assert_eq!(status, 200, "{name} signs in with the old password: {me}");
        assert_eq!(me["id"].as_u64(), Some(n(u, "id")));
        assert_eq!(me["isGrafanaAdmin"], u["isGrafanaAdmin"], "{name}");
    }
    let ada = f.user("ada");
    assert_eq!(
        s(
            &get(app, "/api/users/lookup?loginOrEmail=ada").await,
            "theme"
        ),
        "light"
    );
    let (status, _) =
        send(app.as_user(Method::GET, "/api/user", "ada", s(ada, "old_password"))).await;
    assert_eq!(
        status, 401,
        "the password ada had before her change is refused"
    );
    let dora = f.user("dora");
    let (status, _) =
        send(app.as_user(Method::GET, "/api/user", "dora", s(dora, "password"))).await;
    assert_eq!(status, 401, "the disabled user stays disabled");
    // Grafana Admin flags: gary was promoted, paul promoted then demoted.
    let (status, _) = send(app.as_user(
        Method::GET,
        "/api/admin/encryption/status",
        "gary",
        s(f.user("gary"), "password"),
    ))
    .await;
    assert_eq!(status, 200, "gary is still a Grafana Admin");
    let (status, _) = send(app.as_user(
        Method::GET,
        "/api/admin/encryption/status",
        "paul",
        s(f.user("paul"), "password"),
    ))
    .await;
    assert_eq!(status, 403, "paul is not a Grafana Admin any more");
}

fn urlencode(s: &str) -> String {
    s.replace('@', "%40").replace('+', "%2B")
}

/// The session cookie authenticates; returns the token to use from now on (the fixture's
/// token is rotated on first use when it is older than the rotation interval).
pub(crate) async fn session_works(app: &TestApp, f: &Fixture) -> String {
    let active = &f.e["sessions"]["active"];
    let token = s(active, "cookie");
    let resp = app
        .with_session(Method::GET, "/api/user", token)
        .header("user-agent", CHROME_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the fixture's session cookie signs in");
    let rotated = session_token(&resp);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["login"], "ada");
    let token = rotated.unwrap_or_else(|| token.to_string());
    let (status, sessions) =
        send(app.with_session(Method::GET, "/api/user/auth-tokens", &token)).await;
    assert_eq!(status, 200, "{sessions}");
    let mine: Vec<&Value> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["isActive"] == true)
        .collect();
    assert_eq!(mine.len(), 1, "{sessions}");
    assert_eq!(mine[0]["id"].as_u64(), Some(n(active, "id")));
    assert_eq!(mine[0]["browser"], "Chrome");
    assert_eq!(
        sessions.as_array().unwrap().len(),
        1,
        "the revoked session is not listed: {sessions}"
    );
    let revoked = &f.e["sessions"]["revoked"];
    let (status, body) =
        send(app.with_session(Method::GET, "/api/user", s(revoked, "cookie"))).await;
    assert_eq!(
        (status, message(&body)),
        (401, "Token revoked"),
        "the revoked session stays revoked"
    );
    token
}

pub(crate) async fn api_key_and_token_work(app: &TestApp, f: &Fixture) {
    let key = s(&f.e["api_key"], "key");
    let (status, hits) = send(app.req(Method::GET, "/api/search").bearer_auth(key)).await;
    assert_eq!(status, 200, "the API key authenticates: {hits}");
    assert!(
        hits.to_string().contains("upgrade-fixture-latency"),
        "{hits}"
    );
    let (status, _) = send(
        app.req(Method::GET, "/api/search")
            .basic_auth("api_key", Some(key)),
    )
    .await;
    assert_eq!(status, 200, "Basic api_key:<key>");
    let (status, _) = send(app.req(Method::GET, "/api/admin/settings").bearer_auth(key)).await;
    assert_eq!(status, 403, "an API key still never reaches /api/admin");

    let sa = &f.e["service_account"];
    let token = s(&sa["token"], "key");
    // The account's custom role (assigned by id) grants exactly the auth.saml settings.
    let (status, settings) = send(
        app.req(Method::GET, "/api/admin/settings")
            .bearer_auth(token),
    )
    .await;
    assert_eq!(
        status, 200,
        "the service-account token authenticates: {settings}"
    );
    assert_eq!(
        settings.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["auth.saml"]
    );
    assert_eq!(settings["auth.saml"]["enabled"], "true");
    let (status, _) = send(
        app.req(Method::GET, "/api/admin/settings")
            .basic_auth("api_key", Some(token)),
    )
    .await;
    assert_eq!(status, 200, "Basic api_key:<glsa token>");
    let (_, tokens) = send(app.admin(
        Method::GET,
        &format!("/api/serviceaccounts/{}/tokens", n(sa, "id")),
    ))
    .await;
    assert_eq!(tokens[0]["name"], s(&sa["token"], "name"));
    assert!(
        tokens[0]["lastUsedAt"].is_string(),
        "use is recorded: {tokens}"
    );
}

/// `added`: secrets this test stored since the fixture was opened.
pub(crate) async fn secrets_decrypt(app: &TestApp, f: &Fixture, added: u64) {
    let p = tollgate::domain::Principal::system();
    for (name, ds) in f.e["datasources"].as_object().unwrap() {
        let uid = s(ds, "uid");
        let got = get(app, &format!("/api/datasources/uid/{uid}")).await;
        let secure = ds["secure"].as_object().unwrap();
        let fields: Map<String, Value> = secure.keys().map(|k| (k.clone(), json!(true))).collect();
        assert_eq!(got["secureJsonFields"], Value::Object(fields), "{name}");
        let record = app.services.datasources.get_by_uid(&p, uid).await.unwrap();
        let plain = app
            .services
            .datasources
            .secure_json_data(&record)
            .await
            .unwrap();
        assert_eq!(plain.len(), secure.len(), "{name}");
        for (field, value) in secure {
            assert_eq!(
                Some(plain[field].as_str()),
                value.as_str(),
                "{name}.{field} decrypts to what was stored"
            );
        }
    }
    assert_eq!(
        get(app, "/api/datasources/uid/upgrade-fixture-pg").await["jsonData"],
        json!({"sslmode": "require", "postgresVersion": 1500, "maxOpenConns": 7, "timescaledb": true})
    );
    // Every secret (datasources, auth.saml, the notifier, the app plugin) decrypts.
    let (status, report) =
        send(app.admin(Method::POST, "/api/admin/encryption/verify-secrets")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["failed"], json!([]), "{report}");
    assert_eq!(
        report["checked"].as_u64(),
        Some(n(&f.e["encryption"]["verify"], "checked") + added),
        "{report}"
    );
    // Both data keys, each still referenced.
    let st = get(app, "/api/admin/encryption/status").await;
    let keys = st["dataKeys"].as_array().unwrap();
    let states: Vec<(&str, bool)> = keys
        .iter()
        .map(|k| {
            (
                k["state"].as_str().unwrap(),
                k["references"].as_u64() > Some(0),
            )
        })
        .collect();
    assert_eq!(states, [("retired", true), ("active", true)], "{st}");
    assert_eq!(
        st["activeDataKeyId"],
        f.e["encryption"]["status"]["activeDataKeyId"]
    );
}

pub(crate) async fn settings_license_roles_provisioning(app: &TestApp, f: &Fixture) {
    // The auth.saml override, its secret decrypted.
    let verbose = get(app, "/api/admin/settings-verbose").await;
    for (key, value) in f.e["settings"]["auth.saml"].as_object().unwrap() {
        assert_eq!(verbose["auth.saml"][key]["source"], "database", "{key}");
        let effective = app.services.settings_admin.effective();
        assert_eq!(
            effective.get("auth.saml", key),
            value.as_str(),
            "auth.saml {key}"
        );
    }
    // The uploaded license is the one in effect.
    let lic = &f.e["license"];
    let (status, check) = send(app.admin(Method::GET, "/api/licensing/check")).await;
    assert_eq!((status, check), (200, json!(true)));
    let st = get(app, "/api/licensing/status").await;
    assert_eq!(
        (
            st["state"].as_str(),
            st["source"].as_str(),
            st["licenseId"].as_str(),
            st["company"].as_str()
        ),
        (
            Some("valid"),
            Some("database"),
            Some(s(lic, "lid")),
            Some(s(lic, "company"))
        ),
        "{st}"
    );
    let token = get(app, "/api/licensing/token").await;
    let payload = s(lic, "token").split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    for (k, v) in claims.as_object().unwrap() {
        assert_eq!(&token[k], v, "license claim {k}");
    }
    // Roles and their assignments take effect.
    let role = &f.e["roles"]["user_role"];
    let got = get(
        app,
        &format!("/api/access-control/roles/{}", s(role, "uid")),
    )
    .await;
    assert_eq!(got["version"].as_u64(), Some(n(role, "version")));
    for id in role["assigned_to"].as_array().unwrap() {
        let roles = get(app, &format!("/api/access-control/users/{id}/roles")).await;
        assert_eq!(roles[0]["uid"], role["uid"], "assigned to {id}");
    }
    let rhea = f.user("rhea");
    let (status, v) = send(app.as_user(
        Method::GET,
        "/api/admin/settings",
        "rhea",
        s(rhea, "password"),
    ))
    .await;
    assert_eq!(
        status, 200,
        "rhea's role grants settings:read on auth.saml: {v}"
    );
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["auth.saml"]
    );
    let basic = &f.e["roles"]["basic_role"];
    let grants = get(app, "/api/access-control/builtin-roles").await;
    assert_eq!(grants[s(basic, "builtin_role")][0]["uid"], basic["uid"]);
    let (status, _) = send(app.as_user(
        Method::GET,
        "/api/admin/stats",
        "paul",
        s(f.user("paul"), "password"),
    ))
    .await;
    assert_eq!(status, 200, "the Viewer basic role's custom grant applies");
    // Provisioned objects, read from the database (the provisioning folder is empty).
    let pv = &f.e["provisioning"];
    let d = get(
        app,
        &format!("/api/dashboards/uid/{}", s(pv, "dashboard_uid")),
    )
    .await;
    assert_eq!(d["meta"]["folderUid"], pv["folder_uid"]);
    assert_eq!(d["meta"]["provisioned"], true);
    let alerts = get(app, "/api/alerts").await;
    assert_eq!(alerts[0]["id"].as_u64(), Some(n(pv, "alert_id")));
    assert_eq!(alerts[0]["state"], "paused", "the pause survived");
    let channels = get(app, "/api/alert-notifications").await;
    assert_eq!(channels[0]["uid"], pv["notifier"]["uid"]);
    assert_eq!(channels[0]["secureFields"], json!({"url": true}));
    let plugin = get(
        app,
        &format!("/api/plugins/{}/settings", s(&pv["plugin"], "id")),
    )
    .await;
    assert_eq!(plugin["secureJsonFields"], json!({"onCallApiToken": true}));
}

/// Writes after the upgrade: the uniqueness indexes came along, new rows get fresh ids.
pub(crate) async fn writes_work(app: &TestApp, f: &Fixture) -> u64 {
    let (status, body) = send(app.admin(Method::POST, "/api/admin/users").json(&json!({
        "login": "ADA", "email": "someone-else@example.org", "password": "another-pw-1"
    })))
    .await;
    assert_eq!(
        status, 412,
        "ada's login is still taken (case-insensitively): {body}"
    );
    let (status, body) = send(app.admin(Method::POST, "/api/admin/users").json(&json!({
        "login": "ada2", "email": "Ada.Lovelace@example.org", "password": "another-pw-1"
    })))
    .await;
    assert_eq!(status, 412, "ada's email is still taken: {body}");
    let (status, body) = send(app.admin(Method::POST, "/api/datasources").json(&json!({
        "name": "Upgrade Fixture Postgres", "type": "postgres"
    })))
    .await;
    assert_eq!(
        (status, message(&body)),
        (409, "Data source with the same name already exists"),
        "the datasource name is still taken"
    );
    let (status, body) = send(app.admin(Method::POST, "/api/admin/users").json(&json!({
        "login": "after-upgrade", "email": "after@example.org", "password": "after-upgrade-pw"
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_u64().unwrap();
    let highest = ["ada", "gary", "dora", "rhea", "paul"]
        .iter()
        .map(|u| n(f.user(u), "id"))
        .chain([n(&f.e["service_account"], "id")])
        .max()
        .unwrap();
    assert!(
        id > highest,
        "a new user gets a fresh id ({id} > {highest})"
    );
    let (status, body) = send(app.admin(Method::POST, "/api/datasources").json(&json!({
        "name": "After upgrade", "type": "loki", "url": "http://loki:3100",
        "basicAuth": true, "basicAuthUser": "u",
        "secureJsonData": {"basicAuthPassword": "after-upgrade-secret"}
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    let uid = body["datasource"]["uid"].as_str().unwrap();
    let p = tollgate::domain::Principal::system();
    let record = app.services.datasources.get_by_uid(&p, uid).await.unwrap();
    assert_eq!(
        app.services
            .datasources
            .secure_json_data(&record)
            .await
            .unwrap()["basicAuthPassword"]
            .as_str(),
        "after-upgrade-secret"
    );
    id
}

#[tokio::test]
async fn a_data_folder_from_f711a7f_opens_with_every_record_intact() {
    let f = Fixture::new();
    let app = f.spawn().await;
    // First, before any request of this test changes a last-used time or a counter.
    snapshots_match(&app, &f.e).await;
    users_are_intact(&app, &f).await;
    passwords_work(&app, &f).await;
    let session = session_works(&app, &f).await;
    api_key_and_token_work(&app, &f).await;
    secrets_decrypt(&app, &f, 0).await;
    settings_license_roles_provisioning(&app, &f).await;
    let new_user = writes_work(&app, &f).await;
    app.stop().await;

    // Open the same (now upgraded) folder again: a migration on open must be idempotent.
    let app = f.spawn().await;
    let (status, me) = send(app.with_session(Method::GET, "/api/user", &session)).await;
    assert_eq!((status, me["login"].as_str()), (200, Some("ada")), "{me}");
    let ada = f.user("ada");
    let (status, _) = send(app.as_user(Method::GET, "/api/user", "ada", s(ada, "password"))).await;
    assert_eq!(status, 200);
    for path in [
        format!("/api/users/{}", n(ada, "id")),
        format!(
            "/api/datasources/uid/{}",
            s(&f.e["datasources"]["postgres"], "uid")
        ),
        "/api/alerts".into(),
        "/api/alert-notifications".into(),
        format!(
            "/api/access-control/users/{}/roles",
            n(f.user("rhea"), "id")
        ),
        "/api/licensing/token".into(),
    ] {
        let mut old = f.e["snapshots"][&path].clone();
        assert!(!old.is_null(), "snapshot {path}");
        let mut now = get(&app, &path).await;
        normalize(&path, &mut old);
        normalize(&path, &mut now);
        assert_eq!(now, old, "GET {path} after the second start");
    }
    secrets_decrypt(&app, &f, 1).await;
    let (status, _) = send(
        app.req(Method::GET, "/api/admin/settings")
            .bearer_auth(s(&f.e["service_account"]["token"], "key")),
    )
    .await;
    assert_eq!(status, 200);
    let (status, u) = send(app.admin(Method::GET, &format!("/api/users/{new_user}"))).await;
    assert_eq!((status, u["login"].as_str()), (200, Some("after-upgrade")));
    app.stop().await;
}
