//! Basic auth: Grafana-format hashes, re-hashing, unknown logins, disabled users.

use std::time::Duration;

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
        .clone()
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

/// Password sign-ins so far (the activity series' days), successful and refused, read from
/// the store so that reading them verifies no password.
async fn sign_in_counts(app: &TestApp) -> (u64, u64) {
    let buckets = app.services.store.activity_series(0, 0).await.unwrap();
    buckets
        .iter()
        .filter(|b| b.span == tollgate::store::SeriesSpan::Day)
        .fold((0, 0), |(ok, failed), b| {
            (ok + b.counts.sign_ins, failed + b.counts.failed_sign_ins)
        })
}

async fn sign_ins(app: &TestApp) -> u64 {
    sign_in_counts(app).await.0
}

/// `n` Basic requests as `herd` at once; their statuses. A minute at most: a request left
/// waiting for a verification that never ends fails the test instead of hanging it.
async fn burst(app: &TestApp, n: usize, password: &str) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            tokio::spawn(send(app.as_user(
                Method::GET,
                "/api/user",
                "herd",
                password,
            )))
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let answered = tokio::time::timeout(Duration::from_secs(60), t).await;
        statuses.push(answered.expect("every request is answered").unwrap().0);
    }
    statuses
}

/// When a cached credential expires under load, the requests in flight with it share one
/// verification: the first verifies, the others wait for it and then read its entry.
/// (Before, each ran its own PBKDF2: 16 verifications here, seconds of CPU at the default
/// cost for every client with many connections, every `basic_auth_cache_seconds`.) An
/// entry in the last tenth of its life is renewed by one request while the others go on
/// using it. The cost is high enough that each verification outlasts the burst's arrival.
#[tokio::test]
async fn an_expiring_credential_is_verified_once_by_concurrent_requests() {
    let app = TestApp::spawn_with(&[
        ("security", "basic_auth_cache_seconds", "100"),
        ("security", "password_hash_iterations", "200000"),
    ])
    .await;
    app.create_user("herd", "herd-pw").await;
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "herd", "herd-pw")).await;
    assert_eq!(s, 200);
    let warm = sign_ins(&app).await;

    // Expired: one verification for the whole burst.
    app.clock.advance(Duration::from_secs(101));
    assert_eq!(burst(&app, 16, "herd-pw").await, [200; 16]);
    assert_eq!(
        sign_ins(&app).await,
        warm + 1,
        "one verification for 16 requests"
    );

    // In its last tenth: one request renews it, the others are answered from it.
    app.clock.advance(Duration::from_secs(95));
    assert_eq!(burst(&app, 16, "herd-pw").await, [200; 16]);
    assert_eq!(
        sign_ins(&app).await,
        warm + 2,
        "one renewal for 16 requests"
    );
    // Past the first entry's end, the renewed one answers.
    app.clock.advance(Duration::from_secs(10));
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "herd", "herd-pw")).await;
    assert_eq!(s, 200);
    assert_eq!(
        sign_ins(&app).await,
        warm + 2,
        "answered by the renewed entry"
    );

    // A wrong password is cached by no one: every request of a burst is refused and
    // counts as a failed sign-in, the second burst's without waiting for one another.
    // (That each refusal costs a full verification is tests/api/timing.rs's to show.)
    let (_, failed) = sign_in_counts(&app).await;
    assert_eq!(burst(&app, 4, "wrong").await, [401; 4]);
    assert_eq!(burst(&app, 4, "wrong").await, [401; 4]);
    assert_eq!(sign_in_counts(&app).await, (warm + 2, failed + 8));
}
