//! Envelope encryption end to end: rotation, re-encryption, status, KEK change, the
//! usage cap, on-disk secrecy and a crash during re-encryption.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::json;

use crate::datasources::ds_body;
use crate::helpers::*;

async fn add_ds(app: &TestApp, name: &str, pw: &str) -> u64 {
    let (s, b) = send(
        app.admin(Method::POST, "/api/datasources")
            .json(&ds_body(name, pw)),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    b["id"].as_u64().unwrap()
}

/// Every datasource's secrets, decrypted by the server's own service.
async fn all_secrets(app: &TestApp) -> BTreeMap<String, String> {
    let p = tollgate::domain::Principal::system();
    let mut out = BTreeMap::new();
    for ds in app.services.datasources.list(&p).await.unwrap() {
        for (field, value) in app
            .services
            .datasources
            .secure_json_data(&ds)
            .await
            .unwrap()
        {
            out.insert(format!("{}/{field}", ds.name), value.to_string());
        }
    }
    out
}

#[tokio::test]
async fn rotate_then_reencrypt_leaves_the_old_key_unreferenced() {
    let app = TestApp::spawn().await;
    for i in 0..3 {
        add_ds(&app, &format!("before{i}"), &format!("pw-before-{i}")).await;
    }
    let (s, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    assert_eq!(s, 200);
    let first = st["activeDataKeyId"].as_i64().unwrap();
    assert_eq!(st["dataKeys"][0]["references"], 6);

    let resp = app
        .admin(Method::POST, "/api/admin/encryption/rotate-data-keys")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.text().await.unwrap(), "");
    for i in 0..2 {
        add_ds(&app, &format!("after{i}"), &format!("pw-after-{i}")).await;
    }
    let secrets = all_secrets(&app).await;
    assert_eq!(secrets.len(), 10);
    assert_eq!(
        secrets["before1/basicAuthPassword"], "pw-before-1",
        "old secrets still decrypt"
    );
    let (_, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    let old = st["dataKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == first)
        .unwrap()
        .clone();
    assert_eq!(
        (old["state"].as_str(), old["references"].as_i64()),
        (Some("retired"), Some(6))
    );
    assert!(old["retired"].is_string());

    let resp = app
        .admin(Method::POST, "/api/admin/encryption/reencrypt-secrets")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        resp.text().await.unwrap(),
        "Secrets re-encrypted successfully"
    );
    let (_, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    let old = st["dataKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == first)
        .unwrap()
        .clone();
    assert_eq!(old["references"], 0, "{st}");
    assert_eq!(old["state"], "destroyed");
    assert_eq!(st["reencryption"]["updated"], 6);
    assert_eq!(st["reencryption"]["processed"], 10);
    assert_eq!(
        all_secrets(&app).await,
        secrets,
        "every secret decrypts after re-encryption"
    );
    let (s, v) = send(app.admin(Method::POST, "/api/admin/encryption/verify-secrets")).await;
    assert_eq!(
        (
            s,
            v["checked"].as_i64(),
            v["failed"].as_array().unwrap().len()
        ),
        (200, Some(10), 0)
    );
    let resp = app
        .admin(Method::POST, "/api/admin/encryption/rollback-secrets")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.text().await.unwrap()),
        (200, "Secrets rolled back successfully".into())
    );
}

#[tokio::test]
async fn encryption_endpoints_are_for_grafana_admins_only() {
    let app = TestApp::spawn().await;
    app.create_user("olga", "olgapass").await;
    let (_, k) = send(
        app.admin(Method::POST, "/api/auth/keys")
            .json(&json!({"name": "k", "role": "Admin"})),
    )
    .await;
    let key = k["key"].as_str().unwrap().to_string();
    for (method, path) in [
        (Method::POST, "/api/admin/encryption/rotate-data-keys"),
        (Method::POST, "/api/admin/encryption/reencrypt-data-keys"),
        (Method::POST, "/api/admin/encryption/reencrypt-secrets"),
        (Method::POST, "/api/admin/encryption/rollback-secrets"),
        (Method::POST, "/api/admin/encryption/verify-secrets"),
        (Method::GET, "/api/admin/encryption/status"),
    ] {
        let (s, b) = send(app.as_user(method.clone(), path, "olga", "olgapass")).await;
        assert_eq!((s, message(&b)), (403, "Permission denied"), "{path}");
        let (s, b) = send(app.req(method.clone(), path).bearer_auth(&key)).await;
        assert_eq!(
            (s, message(&b)),
            (403, "Permission denied"),
            "API key on {path}"
        );
        let (s, _) = send(app.req(method, path)).await;
        assert_eq!(s, 401);
    }
}

/// A data key seals at most `data_key_max_encryptions` secrets: with a cap of 5, ten
/// secrets (five datasources, two secure fields each) fill exactly two keys, the first
/// retired with its five, the second active with the other five; an eleventh secret
/// makes a third key.
#[tokio::test]
async fn usage_cap_rotates_automatically() {
    let app =
        TestApp::spawn_with(&[("security.encryption", "data_key_max_encryptions", "5")]).await;
    let keys = |st: &serde_json::Value| -> Vec<(String, i64)> {
        st["dataKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["state"].as_str().unwrap().to_string(),
                    k["references"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    for i in 0..5 {
        add_ds(&app, &format!("cap{i}"), "pw").await;
    }
    let (_, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    assert_eq!(
        keys(&st),
        [("retired".to_string(), 5), ("active".to_string(), 5)],
        "10 encryptions with a cap of 5: {st}"
    );
    assert_eq!(st["activeDataKeyId"], st["dataKeys"][1]["id"]);
    assert_eq!(all_secrets(&app).await.len(), 10);
    // One more secret (a datasource with one secure field) needs a third key.
    let (s, b) = send(app.admin(Method::POST, "/api/datasources").json(&json!({
        "name": "cap-extra", "type": "prometheus", "access": "proxy", "url": "http://p:9090",
        "secureJsonData": {"httpHeaderValue1": "Bearer x"}
    })))
    .await;
    assert_eq!(s, 200, "{b}");
    let (_, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    assert_eq!(
        keys(&st),
        [
            ("retired".to_string(), 5),
            ("retired".to_string(), 5),
            ("active".to_string(), 1)
        ],
        "{st}"
    );
    assert_eq!(all_secrets(&app).await.len(), 11);
}

pub fn files_contain(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_contain(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn secrets_never_reach_disk_in_clear() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let password = "Kn0wn-Plaintext-Password-7781";
    add_ds(&app, "secretive", password).await;
    let (_dir, data) = app.stop().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(password);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(password);
    for needle in [password.to_string(), b64, b64url] {
        let hits = files_contain(&data, needle.as_bytes());
        assert!(hits.is_empty(), "{needle} found in {hits:?}");
    }
    // The test can fail: the name, which is not secret, is on disk.
    assert!(!files_contain(&data, b"secretive").is_empty());
}

#[tokio::test]
async fn secret_key_change_without_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_a = (
        "security",
        "secret_key",
        "first-secret-key-aaaaaaaaaaaaaaaa",
    );
    let app = TestApp::spawn_in(&data, &[key_a]).await;
    add_ds(&app, "kek", "kek-pw").await;
    let before = all_secrets(&app).await;
    app.stop().await;

    // New key, old one kept as previous: everything decrypts; re-wrap.
    let both = [
        (
            "security",
            "secret_key",
            "second-secret-key-bbbbbbbbbbbbbbb",
        ),
        (
            "security",
            "previous_secret_keys",
            "first-secret-key-aaaaaaaaaaaaaaaa",
        ),
    ];
    let app = TestApp::spawn_in(&data, &both).await;
    assert_eq!(all_secrets(&app).await, before);
    let resp = app
        .admin(Method::POST, "/api/admin/encryption/reencrypt-data-keys")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "Data encryption keys re-encrypted successfully"
    );
    let (_, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    let kek = st["kekId"].clone();
    assert!(
        st["dataKeys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kekId"] == kek),
        "{st}"
    );
    app.stop().await;

    // The old key is gone: still fine.
    let app = TestApp::spawn_in(&data, &[both[0]]).await;
    assert_eq!(all_secrets(&app).await, before);
    app.stop().await;

    // A wrong key is refused at start-up with a message that says so.
    let settings = settings_for(
        &data,
        &[(
            "security",
            "secret_key",
            "wrong-secret-key-ccccccccccccccccc",
        )],
    );
    let err = tollgate::app::App::build(settings)
        .await
        .err()
        .expect("a wrong key must be refused");
    assert!(err.to_string().contains("cannot open"), "{err}");
    // So is Grafana's published default.
    let settings = settings_for(&data, &[("security", "secret_key", "SW2YcwTIb9zpOOhoPsMm")]);
    assert!(tollgate::app::App::build(settings).await.is_err());
}

#[tokio::test]
async fn sigkill_during_reencryption_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let secret = (
        "security",
        "secret_key",
        "crash-test-secret-key-dddddddddddd",
    );
    // Seed a few thousand secrets in-process, then release the database.
    let expected: BTreeMap<String, String> = {
        let app = TestApp::spawn_in(&data, &[secret]).await;
        let services = app.services.clone();
        let mut tasks = Vec::new();
        for i in 0..1500 {
            let s = services.clone();
            tasks.push(tokio::spawn(async move {
                let input = tollgate::service::datasources::DataSourceInput {
                    name: format!("crash{i}"),
                    ds_type: "loki".into(),
                    secure_json_data: [
                        ("password".to_string(), format!("pw-{i}")),
                        ("token".to_string(), format!("tok-{i}")),
                    ]
                    .into(),
                    ..Default::default()
                };
                s.datasources
                    .create(&tollgate::domain::Principal::system(), input)
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        services.secrets.rotate().await.unwrap();
        let expected = all_secrets(&app).await;
        drop(services);
        app.stop().await;
        expected
    };
    assert_eq!(expected.len(), 3000);

    let server = ServerProcess::start(&data, &[("GF_SECURITY_SECRET_KEY", secret.2)]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/admin/encryption/reencrypt-secrets", server.base);
    let job = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .post(url)
                .basic_auth(ADMIN, Some(ADMIN_PW))
                .send()
                .await
        }
    });
    // SIGKILL as soon as the status shows a first batch committed (and not the last), so
    // the kill lands between batches, not before the job starts or after it ends.
    let status = format!("{}/api/admin/encryption/status", server.base);
    let mut seen = None;
    for _ in 0..2000 {
        let (_, st) = send(client.get(&status).basic_auth(ADMIN, Some(ADMIN_PW))).await;
        let r = &st["reencryption"];
        let processed = r["processed"].as_u64().unwrap_or(0);
        if processed > 0 {
            seen = Some((processed, r["total"].as_u64()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    server.kill();
    let _ = job.await;
    let (processed, total) = seen.expect("the job committed a first batch");
    assert_eq!(total, Some(3000));
    assert!(processed < 3000, "killed before the end: {processed}");

    // The kill interrupted the job mid-way: its cursor is stored, and the retired key
    // still seals some secrets but no longer all of them. Read before any restart, which
    // would resume the job.
    {
        let services = tollgate::service::Services::open(settings_for(&data, &[secret]))
            .await
            .unwrap();
        assert!(
            services.secrets.interrupted_job().await.unwrap(),
            "a re-encryption cursor is stored"
        );
        let (deks, active, _) = services.secrets.status().await.unwrap();
        let on_active: u64 = deks
            .iter()
            .filter(|d| d.id == active)
            .map(|d| d.references)
            .sum();
        let on_retired: u64 = deks
            .iter()
            .filter(|d| d.id != active)
            .map(|d| d.references)
            .sum();
        assert_eq!(on_active + on_retired, 3000);
        assert!(
            on_active > 0 && on_retired > 0,
            "interrupted mid-way: {on_active} re-encrypted, {on_retired} not yet"
        );
    }

    // Restart: an interrupted job resumes on its own; run it again to be sure it finishes.
    let app = TestApp::spawn_in(&data, &[secret]).await;
    let resp = app
        .admin(Method::POST, "/api/admin/encryption/reencrypt-secrets")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        all_secrets(&app).await,
        expected,
        "every secret decrypts to its original value"
    );
    let (_, st) = send(app.admin(Method::GET, "/api/admin/encryption/status")).await;
    let active = st["activeDataKeyId"].clone();
    for k in st["dataKeys"].as_array().unwrap() {
        if k["id"] != active {
            assert_eq!(k["references"], 0, "{st}");
        } else {
            assert_eq!(k["references"], 3000, "{st}");
        }
    }
    assert!(!app.services.secrets.interrupted_job().await.unwrap());
}
