//! Basic auth: Grafana-format hashes, re-hashing, unknown logins, disabled users.

use reqwest::Method;

use tollgate::crypto::{PasswordHash, PasswordScheme};
use tollgate::domain::UserId;

use crate::helpers::*;

#[tokio::test]
async fn grafana_hashes_verify_and_are_upgraded() {
    let app = TestApp::spawn().await;
    let id = app.create_user("migrated", "irrelevant").await;
    let store = app.services.store.clone();
    // Grafana's test vector: password "secret", salt "pepper".
    let grafana = PasswordHash::from_grafana(
        "3ad31dc57a7452c442f259cfff7aa61f2a6cea88ee634724ae146e221ae4e01c56c8bcbb3552310acd2fd746a396d2f99bf8",
        "pepper",
    )
    .unwrap();
    store.set_password(UserId(id), grafana, 0).await.unwrap();
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "migrated", "Secret")).await;
    assert_eq!(s, 401);
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "migrated", "secret")).await;
    assert_eq!(s, 200);
    let upgraded = store
        .user(UserId(id))
        .await
        .unwrap()
        .unwrap()
        .password
        .unwrap();
    assert_eq!(upgraded.scheme, PasswordScheme::Pbkdf2Sha256);
    assert_eq!(upgraded.iterations, 1000);
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "migrated", "secret")).await;
    assert_eq!(s, 200, "still signs in after the upgrade");
}

#[tokio::test]
async fn email_signs_in_too_and_unknown_logins_are_refused_alike() {
    let app = TestApp::spawn().await;
    app.create_user("mona", "monapw").await;
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "mona@example.org", "monapw")).await;
    assert_eq!(s, 200);
    let (s1, b1) = send(app.as_user(Method::GET, "/api/user", "nobody", "monapw")).await;
    let (s2, b2) = send(app.as_user(Method::GET, "/api/user", "mona", "wrong")).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2, "unknown login and wrong password look the same");
}

#[tokio::test]
async fn malformed_headers_and_disabled_basic_auth() {
    let app = TestApp::spawn().await;
    let (s, b) = send(
        app.req(Method::GET, "/api/user")
            .header("authorization", "Basic !!!"),
    )
    .await;
    assert_eq!((s, message(&b)), (401, "Invalid Basic Auth Header"));
    let (s, b) = send(
        app.req(Method::GET, "/api/user")
            .header("authorization", "Digest x"),
    )
    .await;
    assert_eq!((s, message(&b)), (401, "Unauthorized"));
    let off = TestApp::spawn_with(&[("auth.basic", "enabled", "false")]).await;
    let (s, _) = send(off.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn last_seen_is_recorded() {
    let app = TestApp::spawn().await;
    let id = app.create_user("nina", "ninapw").await;
    let before = app
        .services
        .store
        .user(UserId(id))
        .await
        .unwrap()
        .unwrap()
        .last_seen_at;
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "nina", "ninapw")).await;
    assert_eq!(s, 200);
    let after = app
        .services
        .store
        .user(UserId(id))
        .await
        .unwrap()
        .unwrap()
        .last_seen_at;
    // A new user has never been seen; the first request records the server's time.
    assert_eq!(before, None);
    let now = app.services.clock.now();
    assert!(
        after.is_some_and(|t| (now - 5..=now).contains(&t)),
        "{after:?}"
    );
}
