//! `tollgate migrate --to postgres`: the real binary copies the upgrade fixture's sled folder
//! (written by an older release, every record kind; see `upgrade.rs`) into a PostgreSQL
//! database, refuses a target that holds data unless `--force`, and a server on the
//! database then answers what a server on the sled folder answers: the same reads, the
//! old passwords, session, keys and tokens, secrets that decrypt, fresh ids after the
//! copied ones.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;

use crate::helpers::{binary, output_text as text, TestApp};
use crate::postgres::TestCluster;
use crate::upgrade::{
    api_key_and_token_work, get, normalize, passwords_work, secrets_decrypt, session_works,
    settings_license_roles_provisioning, users_are_intact, writes_work, Fixture,
};

fn migrate(config: &Path, force: bool) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(["migrate", "--to", "postgres", "--config"])
        .arg(config);
    if force {
        cmd.arg("--force");
    }
    cmd.output().expect("tollgate migrate runs")
}

/// GET on both servers, volatile fields aside; `path#section` compares one section.
async fn same_answer(sled: &TestApp, pg: &TestApp, path: &str) -> Option<String> {
    let (p, section) = match path.split_once('#') {
        Some((p, section)) => (p, Some(section)),
        None => (path, None),
    };
    let mut answers = Vec::new();
    for app in [sled, pg] {
        let body = get(app, p).await;
        let mut v = match section {
            Some(section) => json!({ section: body[section].clone() }),
            None => body,
        };
        normalize(p, &mut v);
        answers.push(v);
    }
    (answers[0] != answers[1]).then(|| {
        format!(
            "GET {path}\n  sled:       {}\n  PostgreSQL: {}",
            answers[0], answers[1]
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_the_upgrade_fixture_into_postgres() {
    let f = Fixture::new();
    let cluster = TestCluster::start();
    let db = cluster.create_database().await;
    let url = cluster.url(&db);
    let config = f.data.with_file_name("migrate.ini");
    std::fs::write(
        &config,
        format!(
            "[paths]\ndata = {}\n\n[database]\ntype = postgres\nurl = {url}\n",
            f.data.display()
        ),
    )
    .unwrap();

    let out = migrate(&config, false);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("copied and verified"), "{}", text(&out));
    let users = f.e["users"].as_object().unwrap().len() + 1; // and the service account
    assert!(
        stdout.lines().any(|l| l == format!("users: {users}")),
        "{}",
        text(&out)
    );
    assert!(!stdout.contains("left out"), "the fixture has no orphans");

    // The target now holds data: a second run is refused and changes nothing; --force
    // replaces the content (a row only the target held is gone).
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(cluster.options(&db))
        .await
        .unwrap();
    sqlx::query("INSERT INTO meta (key, value) VALUES ('only-in-target', '\\x00')")
        .execute(&pool)
        .await
        .unwrap();
    let junk = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM meta WHERE key = 'only-in-target'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let out = migrate(&config, false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{}",
        text(&out)
    );
    assert_eq!(junk().await, 1, "a refused run changes nothing");
    let out = migrate(&config, true);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("copied and verified"),
        "{}",
        text(&out)
    );
    assert_eq!(junk().await, 0, "--force replaced the content");
    pool.close().await;

    // A server on the sled copy and one on the database answer the same.
    let sled = f.spawn().await;
    let pg = TestApp::spawn_with(
        &f.settings(&[("database", "type", "postgres"), ("database", "url", &url)]),
    )
    .await;
    assert_eq!(pg.services.store.backend(), "postgres");
    let mut paths: Vec<String> = f.e["snapshots"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    paths.extend(
        [
            // Users, orgs and roles.
            "/api/users/lookup?loginOrEmail=ada",
            // The license as served.
            "/api/licensing/status",
            "/api/licensing/check",
            // The settings section the override lives in.
            "/api/admin/settings#auth.saml",
        ]
        .map(String::from),
    );
    let mut diffs = Vec::new();
    for path in &paths {
        if let Some(d) = same_answer(&sled, &pg, path).await {
            diffs.push(d);
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} reads answer differently on PostgreSQL:\n{}",
        diffs.len(),
        paths.len(),
        diffs.join("\n")
    );
    // The copied datasource lists its secure fields; the data keys are the same two.
    let ds: Value = get(&pg, "/api/datasources/uid/upgrade-fixture-pg").await;
    assert!(
        ds["secureJsonFields"]
            .as_object()
            .is_some_and(|o| !o.is_empty()),
        "{ds}"
    );
    sled.stop().await;

    // Everything the upgrade test checks on the sled folder holds on the database.
    users_are_intact(&pg, &f).await;
    passwords_work(&pg, &f).await;
    session_works(&pg, &f).await;
    api_key_and_token_work(&pg, &f).await;
    secrets_decrypt(&pg, &f, 0).await;
    settings_license_roles_provisioning(&pg, &f).await;
    writes_work(&pg, &f).await;
    pg.stop().await;
}
