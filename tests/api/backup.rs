//! Online backup and restore: `POST /api/admin/backup` under concurrent writes, then
//! `tollgate restore` (the real binary) into a new folder, and a server on it answers the
//! reads the original answered at backup time, secrets included. A corrupted file, a wrong
//! secret key and a non-empty folder are refused with clear messages and nothing written;
//! only Grafana Admins may take a backup; `tollgate backup` against a running server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{json, Value};

use crate::datasources::ds_body;
use crate::helpers::{binary, message, output_text as text, send, TestApp, ADMIN, ADMIN_PW};
use crate::upgrade::{get, normalize};

const KEY: &str = "backup-test-secret-key-0123456789abcdef";

fn overrides() -> [(&'static str, &'static str, &'static str); 1] {
    [("security", "secret_key", KEY)]
}

/// `tollgate restore --in FILE` with a config naming `data` and `key`.
fn restore(file: &Path, data: &Path, key: &str) -> Output {
    let config = data.with_extension("ini");
    std::fs::write(
        &config,
        format!(
            "[paths]\ndata = {}\n\n[security]\nsecret_key = {key}\n",
            data.display()
        ),
    )
    .unwrap();
    Command::new(binary())
        .args(["restore", "--in"])
        .arg(file)
        .arg("--config")
        .arg(&config)
        .output()
        .expect("tollgate restore runs")
}

async fn take_backup(app: &TestApp) -> Vec<u8> {
    let resp = app
        .admin(Method::POST, "/api/admin/backup")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let body = resp.bytes().await.unwrap().to_vec();
    assert!(body.starts_with(b"TOLLGATE-BACKUP\n"));
    body
}

/// Writes `bytes` and restores them into a new folder under `dir`; the restored server.
async fn restored(dir: &Path, name: &str, bytes: &[u8]) -> TestApp {
    let file = dir.join(format!("{name}.backup"));
    std::fs::write(&file, bytes).unwrap();
    let data = dir.join(name);
    let out = restore(&file, &data, KEY);
    assert!(out.status.success(), "{}", text(&out));
    TestApp::spawn_in(&data, &overrides()).await
}

async fn logins(app: &TestApp) -> Vec<String> {
    let users = get(app, "/api/users?perpage=1000").await;
    let mut l: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].as_str().unwrap().to_string())
        .collect();
    l.sort();
    l
}

/// The reads a restored server must answer as the original did.
const READS: &[&str] = &[
    "/api/users?perpage=1000",
    "/api/users/search?perpage=1000",
    "/api/orgs",
    "/api/orgs/2/users",
    "/api/org/users",
    "/api/datasources",
    "/api/datasources/uid/backup-prom",
    "/api/admin/stats",
    "/api/serviceaccounts/search",
    "/api/access-control/roles",
];

async fn same_reads(original: &TestApp, copy: &TestApp) {
    for path in READS {
        let mut a = get(original, path).await;
        let mut b = get(copy, path).await;
        normalize(path, &mut a);
        normalize(path, &mut b);
        assert_eq!(a, b, "GET {path} differs on the restored server");
    }
}

/// The datasource's secrets decrypt on `app` (the API and the service).
async fn secrets_open(app: &TestApp) {
    let (s, report) = send(app.admin(Method::POST, "/api/admin/encryption/verify-secrets")).await;
    assert_eq!(s, 200, "{report}");
    let p = tollgate::domain::Principal::system();
    let record = app
        .services
        .datasources
        .get_by_uid(&p, "backup-prom")
        .await
        .unwrap();
    let plain = app
        .services
        .datasources
        .secure_json_data(&record)
        .await
        .unwrap();
    assert_eq!(plain["basicAuthPassword"].as_str(), "backup-s3cret");
}

async fn fill(app: &TestApp) {
    let (s, b) = send(
        app.admin(Method::POST, "/api/orgs")
            .json(&json!({"name": "Blue"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let mut ds = ds_body("Backup Prom", "backup-s3cret");
    ds["uid"] = json!("backup-prom");
    let (s, b) = send(app.admin(Method::POST, "/api/datasources").json(&ds)).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(Method::POST, "/api/serviceaccounts")
            .json(&json!({"name": "robot", "role": "Editor"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    app.create_user("before-backup", "pw-before-backup").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_writes_restores_to_the_same_answers() {
    let app = TestApp::spawn_with(&overrides()).await;
    fill(&app).await;
    let dir = tempfile::tempdir().unwrap();

    // Four writers create users while the backup is taken.
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base) = (app.client.clone(), app.base.clone());
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..30 {
                let login = format!("w{w}-{i}");
                let r = client
                    .post(format!("{base}/api/admin/users"))
                    .basic_auth(ADMIN, Some(ADMIN_PW))
                    .json(&json!({"login": login, "email": format!("{login}@x.org"), "password": "pw-writer-1"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                acked.push((login, std::time::Instant::now()));
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let sent = std::time::Instant::now();
    let during = take_backup(&app).await;
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }

    assert!(
        acked.iter().any(|(_, at)| *at > sent) && acked.iter().any(|(_, at)| *at < sent),
        "the backup ran while the writers wrote"
    );

    let copy = restored(dir.path(), "during", &during).await;
    let restored_logins = logins(&copy).await;
    let all = logins(&app).await;
    for l in &restored_logins {
        assert!(all.contains(l), "{l} was never created");
    }
    for (login, at) in &acked {
        if *at < sent {
            assert!(
                restored_logins.contains(login),
                "{login} was acknowledged before the backup was asked for"
            );
        }
    }
    assert!(restored_logins.contains(&"before-backup".to_string()));
    // One point in time: the stored counters agree with the rows.
    let stats = get(&copy, "/api/admin/stats").await;
    assert_eq!(
        stats["users"].as_u64().unwrap() as usize,
        restored_logins.len(),
        "{stats}"
    );
    secrets_open(&copy).await;
    copy.stop().await;

    // Quiet now: a backup restores to exactly the same answers.
    let after = take_backup(&app).await;
    let copy = restored(dir.path(), "after", &after).await;
    same_reads(&app, &copy).await;
    secrets_open(&copy).await;
    // The restored server signs in with the old passwords and takes writes.
    let (s, _) = send(copy.as_user(Method::GET, "/api/user", "w0-0", "pw-writer-1")).await;
    assert_eq!(s, 200);
    copy.create_user("after-restore", "pw-after-restore").await;
    copy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_wrong_keys_and_full_folders_are_refused() {
    let app = TestApp::spawn_with(&overrides()).await;
    fill(&app).await;
    let bytes = take_backup(&app).await;
    let dir = tempfile::tempdir().unwrap();

    // One flipped byte anywhere: refused before anything is written.
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    let file = dir.path().join("corrupt.backup");
    std::fs::write(&file, &bad).unwrap();
    let data = dir.path().join("corrupt");
    let out = restore(&file, &data, KEY);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("checksum does not match"), "{err}");
    assert!(!data.exists(), "nothing written");

    // The wrong secret key: the message names the setting; nothing is written.
    let file = dir.path().join("good.backup");
    std::fs::write(&file, &bytes).unwrap();
    let data = dir.path().join("wrong-key");
    let out = restore(&file, &data, "not-the-key-that-made-this-backup");
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[security] secret_key"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!data.exists(), "nothing written");

    // A folder that holds anything is not a restore target.
    let data = dir.path().join("full");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("keep.txt"), "mine").unwrap();
    let out = restore(&file, &data, KEY);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 1);

    // Not a backup at all.
    let file = dir.path().join("text.backup");
    std::fs::write(&file, "hello").unwrap();
    let out = restore(&file, &dir.path().join("text"), KEY);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a tollgate backup file"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn only_grafana_admins_take_backups() {
    let app = TestApp::spawn_with(&overrides()).await;
    app.create_user("viewer", "viewer-pw-1").await;
    let (s, b) =
        send(app.as_user(Method::POST, "/api/admin/backup", "viewer", "viewer-pw-1")).await;
    assert_eq!(s, 403, "{b}");
    assert!(message(&b).contains("server.backup:create"), "{b}");
    let (s, _) = send(app.req(Method::POST, "/api/admin/backup")).await;
    assert_eq!(s, 401);
    // An org admin is no Grafana Admin.
    let (s, b) = send(
        app.admin(Method::PATCH, "/api/org/users/2")
            .json(&json!({"role": "Admin"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) =
        send(app.as_user(Method::POST, "/api/admin/backup", "viewer", "viewer-pw-1")).await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_backup_against_a_running_server() {
    let app = TestApp::spawn_with(&overrides()).await;
    fill(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{ADMIN_PW}\n")).unwrap();
    let out_file: PathBuf = dir.path().join("cli.backup");
    let run = |user: &str| {
        Command::new(binary())
            .args(["backup", "--out"])
            .arg(&out_file)
            .args(["--url", &app.base, "--user", user, "--password-file"])
            .arg(&pw)
            .env_remove("TOLLGATE_BACKUP_TOKEN")
            .output()
            .expect("tollgate backup runs")
    };
    let out = run("nobody");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{}",
        text(&out)
    );
    assert!(!out_file.exists());

    let out = run(ADMIN);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("users: 3"),
        "{}",
        text(&out)
    );
    let out2 = run(ADMIN);
    assert!(
        !out2.status.success(),
        "an existing file is never overwritten"
    );

    let bytes = std::fs::read(&out_file).unwrap();
    let copy = restored(dir.path(), "from-cli", &bytes).await;
    same_reads(&app, &copy).await;
    secrets_open(&copy).await;
    let _: Value = get(&copy, "/api/health").await;
    copy.stop().await;
}
