//! "A 2xx on a write means it is on disk": SIGKILL right after each acknowledged write,
//! restart, and find everything; concurrent writers share flushes.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn acknowledged_users_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let client = reqwest::Client::new();
    let mut created = Vec::new();
    for round in 0..4 {
        let server = ServerProcess::start(&data, &[]).await;
        // A burst of concurrent creates, then SIGKILL right after the last 2xx.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let c = client.clone();
            let url = format!("{}/api/admin/users", server.base);
            let login = format!("durable-{round}-{i}");
            tasks.push(tokio::spawn(async move {
                let r = c
                    .post(url)
                    .basic_auth(ADMIN, Some(ADMIN_PW))
                    .json(&json!({"login": login, "password": "durablepw"}))
                    .send()
                    .await
                    .unwrap();
                (login, r.status().as_u16())
            }));
        }
        for t in tasks {
            let (login, status) = t.await.unwrap();
            assert_eq!(status, 200);
            created.push(login);
        }
        server.kill();
    }
    let server = ServerProcess::start(&data, &[]).await;
    for login in &created {
        let r = client
            .get(format!(
                "{}/api/users/lookup?loginOrEmail={login}",
                server.base
            ))
            .basic_auth(ADMIN, Some(ADMIN_PW))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{login} was acknowledged but lost");
    }
}

/// Concurrent writes share flushes. The writes are permission changes of 40 users created
/// first: creations hash a password each before writing, which spreads their arrival at
/// the store over the hashing (down to one flush each under CI's load), and that is not
/// what this checks.
#[tokio::test]
async fn concurrent_writes_share_flushes() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let r = app
            .admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": format!("gc{i}"), "password": "gcpass1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let before = app.services.store.flush_count();
    let mut tasks = Vec::new();
    for id in ids {
        let req = app
            .admin(Method::PUT, &format!("/api/admin/users/{id}/permissions"))
            .json(&json!({"isGrafanaAdmin": true}));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let flushes = app.services.store.flush_count() - before;
    assert!(
        (1..40).contains(&flushes),
        "40 writes took {flushes} flushes"
    );
}
