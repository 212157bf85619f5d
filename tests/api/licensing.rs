//! The Licensing API: token validation with each reason, the sources and their one rule,
//! every endpoint's statuses, renewal against a real `tollgate license-issuer` process
//! (up, down, revoked), automatic renewal, seats, and the air-gapped CLI round trip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use tollgate::crypto::jws::SigningKey;
use tollgate::domain::license::LicenseClaims;

use crate::helpers::{binary, free_port, message, send, wait_healthy, TestApp, ADMIN_PW};

const ROOT: &str = "http://tollgate.test/";
const DAY: i64 = 86_400;

fn now() -> i64 {
    tollgate::domain::time::system_now()
}

pub(crate) fn claims(lid: &str) -> LicenseClaims {
    let t = now();
    LicenseClaims {
        jti: format!("jti-{lid}"),
        iss: "test-issuer".into(),
        sub: ROOT.into(),
        iat: t,
        exp: t + 10 * DAY,
        nbf: t - DAY,
        lexp: t + 365 * DAY,
        lid: lid.into(),
        included_users: 3,
        lic_exp_warn_days: 30,
        tok_exp_warn_days: 2,
        update_days: 1,
        prod: vec!["grafana-enterprise".into()],
        company: "ACME".into(),
        ..Default::default()
    }
}

pub(crate) fn sign(key: &SigningKey, c: &LicenseClaims) -> String {
    key.sign(&serde_json::to_vec(c).unwrap())
}

pub(crate) struct Licensed {
    pub app: TestApp,
    pub key: SigningKey,
}

/// A server that trusts `key`, with `root_url` = [`ROOT`].
async fn licensed_with(key: SigningKey, extra: &[(&str, &str, &str)]) -> Licensed {
    let keys = key.public().to_config();
    let mut overrides = vec![
        ("server", "root_url", ROOT),
        ("enterprise", "license_issuer_keys", keys.as_str()),
    ];
    overrides.extend_from_slice(extra);
    Licensed {
        app: TestApp::spawn_with(&overrides).await,
        key,
    }
}

pub(crate) async fn licensed() -> Licensed {
    licensed_with(SigningKey::generate().unwrap(), &[]).await
}

pub(crate) async fn upload(app: &TestApp, token: &str) -> (u16, Value) {
    send(
        app.admin(Method::POST, "/api/licensing/token")
            .json(&json!({ "token": token })),
    )
    .await
}

async fn check(app: &TestApp) -> bool {
    let (s, v) = send(app.admin(Method::GET, "/api/licensing/check")).await;
    assert_eq!(s, 200);
    v.as_bool().expect("a bare boolean")
}

async fn status(app: &TestApp) -> Value {
    let (s, v) = send(app.admin(Method::GET, "/api/licensing/status")).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn delete(app: &TestApp, instance: &str) -> (u16, Value) {
    send(
        app.admin(Method::DELETE, "/api/licensing/token")
            .json(&json!({ "instance": instance })),
    )
    .await
}

#[tokio::test]
async fn a_valid_token_is_stored_and_checked() {
    let l = licensed().await;
    assert!(!check(&l.app).await);
    let (s, v) = send(l.app.admin(Method::GET, "/api/licensing/token")).await;
    assert_eq!((s, message(&v)), (404, "No license token found"));
    let (s, v) = upload(&l.app, &sign(&l.key, &claims("1"))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lid"], "1");
    assert_eq!(v["company"], "ACME");
    assert_eq!(v["included_users"], 3);
    assert_eq!(v["status"], 1);
    assert!(check(&l.app).await);
    let (s, v) = send(l.app.admin(Method::GET, "/api/licensing/token")).await;
    assert_eq!((s, v["jti"].as_str()), (200, Some("jti-1")));
    let st = status(&l.app).await;
    assert_eq!(
        (st["state"].as_str(), st["source"].as_str()),
        (Some("valid"), Some("database"))
    );
    let days = st["licenseExpiry"]["daysLeft"].as_i64().unwrap();
    assert!((364..=365).contains(&days), "{st}");
    assert_eq!(st["licenseExpiry"]["warning"], false);
    // The token survives a restart (the 200 meant it was flushed).
    let (dir, data) = l.app.stop().await;
    let keys = l.key.public().to_config();
    let again = TestApp::spawn_in(
        &data,
        &[
            ("server", "root_url", ROOT),
            ("enterprise", "license_issuer_keys", keys.as_str()),
        ],
    )
    .await;
    assert!(check(&again).await);
    drop(dir);
}

#[tokio::test]
async fn each_invalid_token_is_refused_with_its_reason() {
    let l = licensed().await;
    let key = &l.key;
    let t = now();
    let impostor = {
        // Another key that claims the trusted key's kid.
        let other = SigningKey::generate().unwrap();
        let good = sign(key, &claims("x"));
        let forged = sign(&other, &claims("x"));
        let head = good.split('.').next().unwrap().to_string();
        let rest: Vec<&str> = forged.split('.').collect();
        format!("{head}.{}.{}", rest[1], rest[2])
    };
    let unknown_kid = sign(&SigningKey::generate().unwrap(), &claims("x"));
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid)),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("x")).unwrap())
    );
    let cases: Vec<(String, &str)> = vec![
        (impostor, "invalid token signature"),
        (alg_none, "unsupported signing algorithm 'none'"),
        (unknown_kid, "token signed by unknown key"),
        (
            sign(key, &LicenseClaims { sub: "https://other.example/".into(), ..claims("x") }),
            "instance URL 'http://tollgate.test/' does not match licensed URL 'https://other.example/'",
        ),
        (
            sign(key, &LicenseClaims { nbf: t + DAY, ..claims("x") }),
            "license issue date is",
        ),
        (
            sign(key, &LicenseClaims { lexp: t - DAY, ..claims("x") }),
            "license expired at",
        ),
        (
            sign(key, &LicenseClaims { exp: t - 60, ..claims("x") }),
            "license token expired at",
        ),
        ("not-a-token".into(), "malformed token"),
        (String::new(), "token is required"),
        // RFC 7515 4.1.11: an unknown critical extension invalidates a signed token.
        (
            key.sign_with_header(
                &format!(r#"{{"alg":"EdDSA","kid":"{}","crit":["exp-ext"],"exp-ext":1}}"#, key.kid),
                &serde_json::to_vec(&claims("x")).unwrap(),
            ),
            "token requires unsupported critical header extension(s): exp-ext",
        ),
        (
            key.sign_with_header(
                &format!(r#"{{"alg":"EdDSA","kid":"{}","crit":[]}}"#, key.kid),
                &serde_json::to_vec(&claims("x")).unwrap(),
            ),
            "malformed token: crit must be a non-empty list",
        ),
        (
            sign(key, &LicenseClaims { included_users: -5, ..claims("x") }),
            "malformed token: claim included_users = -5 is out of range",
        ),
        (
            sign(key, &LicenseClaims { update_days: 1_000_000, ..claims("x") }),
            "malformed token: claim update_days = 1000000 is out of range",
        ),
    ];
    for (token, reason) in cases {
        let (s, v) = upload(&l.app, &token).await;
        assert_eq!(s, 400, "{reason}: {v}");
        assert!(message(&v).starts_with(reason), "{reason}: {v}");
    }
    assert!(!check(&l.app).await, "nothing was stored");
    assert_eq!(status(&l.app).await["state"], "missing");
    // Wrong body shapes.
    let (s, _) = send(
        l.app
            .admin(Method::POST, "/api/licensing/token")
            .json(&json!({"token": 5})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(l.app.admin(Method::POST, "/api/licensing/token").body("{}")).await;
    assert_eq!(s, 400, "no content type");
}

#[tokio::test]
async fn subject_globs_match_root_url() {
    let l = licensed().await;
    let c = LicenseClaims {
        sub: "http://*.test/".into(),
        ..claims("g")
    };
    let (s, v) = upload(&l.app, &sign(&l.key, &c)).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn sources_file_text_and_database() {
    let key = SigningKey::generate().unwrap();
    let file_token = sign(&key, &claims("from-file"));
    let text_token = sign(&key, &claims("from-text"));

    // File only (the default path, <data>/license.jwt).
    let l = licensed_with(SigningKey::from_pem(&key.to_pem()).unwrap(), &[]).await;
    assert_eq!(status(&l.app).await["state"], "missing");
    std::fs::write(l.app.data.join("license.jwt"), format!("{file_token}\n")).unwrap();
    let st = status(&l.app).await;
    assert_eq!(
        (st["state"].as_str(), st["source"].as_str()),
        (Some("valid"), Some("file"))
    );
    assert_eq!(st["licenseId"], "from-file");
    assert!(check(&l.app).await, "the file counts at once");

    // The database wins over a different file, and the status shows both.
    let db_token = sign(&key, &claims("from-db"));
    assert_eq!(upload(&l.app, &db_token).await.0, 200);
    let st = status(&l.app).await;
    assert_eq!(
        (st["source"].as_str(), st["licenseId"].as_str()),
        (Some("database"), Some("from-db"))
    );
    let sources: Vec<(&str, &str)> = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["source"].as_str().unwrap(),
                s["licenseId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(sources, [("database", "from-db"), ("file", "from-file")]);

    // Removing it falls back to the file, and the status says so.
    assert_eq!(delete(&l.app, ROOT).await.0, 202);
    let st = status(&l.app).await;
    assert_eq!(
        (st["source"].as_str(), st["licenseId"].as_str()),
        (Some("file"), Some("from-file"))
    );
    assert!(check(&l.app).await);

    // A broken file is reported with its reason, not ignored.
    std::fs::write(l.app.data.join("license.jwt"), "garbage").unwrap();
    let st = status(&l.app).await;
    assert_eq!(
        (st["state"].as_str(), st["source"].as_str()),
        (Some("invalid"), Some("file"))
    );
    assert!(
        st["reason"]
            .as_str()
            .unwrap()
            .starts_with("malformed token"),
        "{st}"
    );
    assert!(!check(&l.app).await, "a broken file is no license");

    // Back to a valid token, then removed: each counts from the next request.
    std::fs::write(l.app.data.join("license.jwt"), &file_token).unwrap();
    assert!(check(&l.app).await);
    std::fs::remove_file(l.app.data.join("license.jwt")).unwrap();
    assert!(!check(&l.app).await);
    assert_eq!(status(&l.app).await["state"], "missing");

    // Text only.
    let t = licensed_with(key, &[("enterprise", "license_text", text_token.as_str())]).await;
    let st = status(&t.app).await;
    assert_eq!(
        (st["source"].as_str(), st["licenseId"].as_str()),
        (Some("config"), Some("from-text"))
    );
    assert!(check(&t.app).await);
}

#[tokio::test]
async fn a_custom_license_path() {
    let key = SigningKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my.jwt");
    std::fs::write(&path, sign(&key, &claims("custom"))).unwrap();
    let p = path.to_string_lossy().to_string();
    let l = licensed_with(key, &[("enterprise", "license_path", p.as_str())]).await;
    assert_eq!(status(&l.app).await["licenseId"], "custom");
}

#[tokio::test]
async fn delete_statuses() {
    let l = licensed().await;
    assert_eq!(upload(&l.app, &sign(&l.key, &claims("1"))).await.0, 200);
    let (s, v) = delete(&l.app, "http://elsewhere.test/").await;
    assert_eq!((s, message(&v)), (422, "incorrect instance name provided"));
    assert!(check(&l.app).await, "kept after the 422");
    let (s, v) = delete(&l.app, "http://tollgate.test").await;
    assert_eq!((s, v), (202, json!({})));
    assert!(!check(&l.app).await);
    let (s, v) = delete(&l.app, ROOT).await;
    assert_eq!((s, v), (202, json!({})), "202 again when there is nothing");
    let (s, _) = send(
        l.app
            .admin(Method::DELETE, "/api/licensing/token")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 400, "instance is required");
}

#[tokio::test]
async fn permissions_and_authentication() {
    let l = licensed().await;
    let app = &l.app;
    app.create_user("viewer", "viewer-pw").await;
    // No credentials.
    for (m, p) in [
        (Method::GET, "/api/licensing/check"),
        (Method::GET, "/api/licensing/token"),
        (Method::GET, "/api/licensing/status"),
        (Method::GET, "/api/licensing/refresh-stats"),
    ] {
        assert_eq!(send(app.req(m, p)).await.0, 401, "{p}");
    }
    // check: any authenticated caller, API keys included.
    let (s, v) =
        send(app.as_user(Method::GET, "/api/licensing/check", "viewer", "viewer-pw")).await;
    assert_eq!((s, v), (200, json!(false)));
    let (_, k) = send(
        app.admin(Method::POST, "/api/auth/keys")
            .json(&json!({"name": "ci", "role": "Viewer"})),
    )
    .await;
    let key = k["key"].as_str().unwrap();
    let (s, v) = send(
        app.req(Method::GET, "/api/licensing/check")
            .bearer_auth(key),
    )
    .await;
    assert_eq!((s, v), (200, json!(false)));
    // Everything else needs the licensing permissions (Grafana Admins).
    let token = sign(&l.key, &claims("1"));
    for (m, p, body) in [
        (Method::GET, "/api/licensing/token", None),
        (Method::GET, "/api/licensing/status", None),
        (Method::GET, "/api/licensing/refresh-stats", None),
        (Method::GET, "/api/licensing/renew-request", None),
        (
            Method::POST,
            "/api/licensing/token",
            Some(json!({ "token": token })),
        ),
        (Method::POST, "/api/licensing/token/renew", Some(json!({}))),
        (
            Method::DELETE,
            "/api/licensing/token",
            Some(json!({ "instance": ROOT })),
        ),
    ] {
        let mut r = app.as_user(m, p, "viewer", "viewer-pw");
        if let Some(b) = body {
            r = r.json(&b);
        }
        let (s, v) = send(r).await;
        assert_eq!(s, 403, "{p}: {v}");
        assert!(message(&v).contains("licensing"), "{p}: {v}");
    }
    assert!(!check(app).await, "the viewer stored nothing");
}

#[tokio::test]
async fn refresh_stats_and_seats_follow_users() {
    let l = licensed().await;
    let app = &l.app;
    assert_eq!(upload(app, &sign(&l.key, &claims("1"))).await.0, 200);
    let (s, v) = send(app.admin(Method::GET, "/api/licensing/refresh-stats")).await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"active_admins_and_editors": 1, "active_viewers": 0, "active_users": 1})
    );
    let seats = |v: &Value| {
        (
            v["seats"]["users"].as_i64().unwrap(),
            v["seats"]["viewers"].as_i64().unwrap(),
            v["seats"]["includedUsers"].as_i64().unwrap(),
            v["seats"]["overLimit"].as_bool().unwrap(),
        )
    };
    assert_eq!(seats(&status(app).await), (1, 0, 3, false));
    let a = app.create_user("a", "a-password").await;
    app.create_user("b", "b-password").await;
    app.create_user("c", "c-password").await;
    assert_eq!(seats(&status(app).await), (4, 3, 3, true));
    let (s, _) = send(app.admin(Method::DELETE, &format!("/api/admin/users/{a}"))).await;
    assert_eq!(s, 200);
    assert_eq!(seats(&status(app).await), (3, 2, 3, false));
    // The users who signed in count as active once recounted.
    send(app.as_user(Method::GET, "/api/user", "b", "b-password")).await;
    let (_, v) = send(app.admin(Method::GET, "/api/licensing/refresh-stats")).await;
    assert_eq!(v["active_viewers"], 1);
    assert_eq!(v["active_users"], 2);
}

#[tokio::test]
async fn usage_report_sees_the_license() {
    let l = licensed().await;
    assert_eq!(upload(&l.app, &sign(&l.key, &claims("1"))).await.0, 200);
    let (_, r) = send(l.app.admin(Method::GET, "/api/admin/usage-report-preview")).await;
    assert_eq!(r["hasValidLicense"], true);
    assert_eq!(r["metrics"]["stats.valid_license.count"], 1);
}

/// A `tollgate license-issuer` child process.
struct IssuerProcess {
    child: Child,
    url: String,
}

impl IssuerProcess {
    async fn start(key: &Path, config: Option<&Path>) -> Self {
        let port = free_port();
        let mut cmd = Command::new(binary());
        cmd.arg("license-issuer")
            .arg("--key")
            .arg(key)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let issuer = Self {
            child: cmd.spawn().expect("issuer starts"),
            url: format!("http://127.0.0.1:{port}"),
        };
        wait_healthy(&issuer.url).await;
        issuer
    }

    fn renew_url(&self) -> String {
        format!("{}/api/licenses/renew", self.url)
    }
}

impl Drop for IssuerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tollgate(args: &[&str]) -> String {
    let out = Command::new(binary()).args(args).output().expect("runs");
    assert!(
        out.status.success(),
        "tollgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tollgate license keygen`: the key file and the `license_issuer_keys` value.
fn keygen(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("issuer.key");
    let out = tollgate(&["license", "keygen", "--out", path.to_str().unwrap()]);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("license_issuer_keys = "))
        .expect("keygen prints the config line")
        .to_string();
    (path, line)
}

fn issue(key: &Path, lid: &str) -> String {
    tollgate(&[
        "license",
        "issue",
        "--key",
        key.to_str().unwrap(),
        "--sub",
        ROOT,
        "--company",
        "ACME",
        "--license-days",
        "365",
        "--token-days",
        "10",
        "--included-users",
        "5",
        "--lid",
        lid,
    ])
    .trim()
    .to_string()
}

async fn app_renewing_from(keys: &str, url: &str, auto: bool) -> TestApp {
    TestApp::spawn_with(&[
        ("server", "root_url", ROOT),
        ("enterprise", "license_issuer_keys", keys),
        ("enterprise", "license_url", url),
        (
            "enterprise",
            "auto_refresh_license",
            if auto { "true" } else { "false" },
        ),
    ])
    .await
}

#[tokio::test]
async fn renewal_against_a_real_issuer_up_down_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let (key, keys) = keygen(dir.path());
    // keygen never overwrites a key.
    let again = Command::new(binary())
        .args(["license", "keygen", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());

    let issuer = IssuerProcess::start(&key, None).await;
    let app = app_renewing_from(&keys, &issuer.renew_url(), false).await;
    let (s, v) = send(
        app.admin(Method::POST, "/api/licensing/token/renew")
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        (s, message(&v)),
        (404, "No license token to renew: upload one first")
    );

    let first = issue(&key, "42");
    let (s, old) = upload(&app, &first).await;
    assert_eq!(s, 200, "{old}");
    let (s, new) = send(
        app.admin(Method::POST, "/api/licensing/token/renew")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 200, "{new}");
    assert_ne!(new["jti"], old["jti"]);
    assert_eq!(
        (new["lid"].as_str(), new["lexp"].as_i64()),
        (Some("42"), old["lexp"].as_i64())
    );
    assert!(new["exp"].as_i64() > old["exp"].as_i64(), "{old} -> {new}");
    let (_, current) = send(app.admin(Method::GET, "/api/licensing/token")).await;
    assert_eq!(current["jti"], new["jti"], "the renewed token is in effect");
    let st = status(&app).await;
    assert_eq!(st["lastRenewal"]["ok"], true);
    assert_eq!(st["lastRenewal"]["trigger"], "manual");

    // The issuer goes down: an error that says so; the current token stays.
    drop(issuer);
    let (s, v) = send(
        app.admin(Method::POST, "/api/licensing/token/renew")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 502, "{v}");
    assert!(
        message(&v).starts_with("license issuer unreachable at"),
        "{v}"
    );
    assert!(check(&app).await);
    let (_, current) = send(app.admin(Method::GET, "/api/licensing/token")).await;
    assert_eq!(current["jti"], new["jti"]);
    let st = status(&app).await;
    assert_eq!(st["lastRenewal"]["ok"], false);
    assert!(
        st["lastRenewal"]["error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{st}"
    );

    // Back up, with license 42 revoked in its config: refused, with the issuer's reason.
    let config = dir.path().join("issuer.ini");
    std::fs::write(
        &config,
        "[issuer]\nrevoked_lids = 41, 42\ntoken_days = 20\n",
    )
    .unwrap();
    let issuer = IssuerProcess::start(&key, Some(&config)).await;
    let app2 = app_renewing_from(&keys, &issuer.renew_url(), false).await;
    assert_eq!(upload(&app2, &first).await.0, 200);
    let (s, v) = send(
        app2.admin(Method::POST, "/api/licensing/token/renew")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(
        message(&v),
        "license issuer refused the renewal (403): license 42 is revoked"
    );
    assert!(check(&app2).await, "the current token is kept");
    // Another license from the same issuer renews, for token_days from the config.
    let (s, _) = upload(&app2, &issue(&key, "43")).await;
    assert_eq!(s, 200);
    let (s, v) = send(
        app2.admin(Method::POST, "/api/licensing/token/renew")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["exp"].as_i64().unwrap() - v["iat"].as_i64().unwrap(),
        20 * DAY
    );
}

#[tokio::test]
async fn renewal_without_an_issuer_configured() {
    let l = licensed().await;
    assert_eq!(upload(&l.app, &sign(&l.key, &claims("1"))).await.0, 200);
    let (s, v) = send(
        l.app
            .admin(Method::POST, "/api/licensing/token/renew")
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(message(&v).contains("license_url"), "{v}");
    let st = status(&l.app).await;
    assert_eq!(st["autoRefresh"], false);
    assert_eq!(
        st["lastRenewal"]["ok"], false,
        "the attempt is recorded: {st}"
    );
}

#[tokio::test]
async fn automatic_renewal_when_the_token_is_update_days_old() {
    let dir = tempfile::tempdir().unwrap();
    let (key, keys) = keygen(dir.path());
    let issuer = IssuerProcess::start(&key, None).await;
    let signing = SigningKey::from_pem(&std::fs::read_to_string(&key).unwrap()).unwrap();
    // A token issued two days ago, to be renewed daily: due at start-up.
    let old = LicenseClaims {
        iat: now() - 2 * DAY,
        ..claims("auto")
    };
    let app = app_renewing_from(&keys, &issuer.renew_url(), true).await;
    std::fs::write(app.data.join("license.jwt"), sign(&signing, &old)).unwrap();
    let mut st = Value::Null;
    // The server's first housekeeping round may have run before the file existed; the
    // next is a minute away, so run the same check the job runs.
    for _ in 0..100 {
        app.services.licensing.auto_renew_tick().await;
        st = status(&app).await;
        if st["lastRenewal"]["ok"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(st["lastRenewal"]["trigger"], "automatic", "{st}");
    assert_eq!(st["lastRenewal"]["ok"], true, "{st}");
    assert_eq!(
        st["source"], "database",
        "the renewed token is stored and wins"
    );
    assert!(st["nextRenewalAt"].is_string());
    // Renewed: not due again, so another tick does nothing.
    let before = st["lastRenewal"]["at"].clone();
    app.services.licensing.auto_renew_tick().await;
    assert_eq!(status(&app).await["lastRenewal"]["at"], before);
}

#[tokio::test]
async fn air_gapped_renewal_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let (key, keys) = keygen(dir.path());
    let app = app_renewing_from(&keys, "", false).await;
    let first = issue(&key, "7");
    assert_eq!(upload(&app, &first).await.0, 200);
    let (s, req) = send(app.admin(Method::GET, "/api/licensing/renew-request")).await;
    assert_eq!(s, 200);
    assert_eq!(req["token"], first);
    assert_eq!(req["instance"], ROOT);
    let file = dir.path().join("renew.json");
    std::fs::write(&file, req.to_string()).unwrap();
    let token = tollgate(&[
        "license",
        "renew",
        "--key",
        key.to_str().unwrap(),
        "--request",
        file.to_str().unwrap(),
    ]);
    let (s, v) = upload(&app, token.trim()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lid"], "7");
    assert_ne!(token.trim(), first);

    // The same from the stopped server's data folder (`tollgate license renew-request`).
    let (dir2, data) = app.stop().await;
    let out = Command::new(binary())
        .args(["license", "renew-request"])
        .env("GF_PATHS_DATA", &data)
        .env("GF_SECURITY_ADMIN_PASSWORD", ADMIN_PW)
        .env("GF_SERVER_ROOT_URL", ROOT)
        .env("GF_ENTERPRISE_LICENSE_ISSUER_KEYS", &keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(req["token"].as_str(), Some(token.trim()));
    drop(dir2);
}
