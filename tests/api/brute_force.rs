//! Brute-force protection through real HTTP: failures count against the account whatever
//! the spelling of the login, per (account, client address) and per address across all
//! logins; strangers never lock the owner out from another address; the window follows the
//! service clock; `X-Forwarded-For` counts only behind a trusted proxy.
//!
//! Each client below binds its own loopback address (127.0.0.x), so the server sees
//! distinct peers.

use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::json;

use crate::helpers::{send, TestApp, ADMIN, ADMIN_PW};

/// `POST /login` from `client` (optionally with an `X-Forwarded-For`); the status.
async fn login(app: &TestApp, client: &Client, user: &str, pw: &str, xff: Option<&str>) -> u16 {
    let mut req = client
        .post(app.url("/login"))
        .json(&json!({"user": user, "password": pw}));
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    send(req).await.0
}

/// `GET /api/user` with Basic credentials from `client`; the status.
async fn basic(app: &TestApp, client: &Client, user: &str, pw: &str) -> u16 {
    send(client.get(app.url("/api/user")).basic_auth(user, Some(pw)))
        .await
        .0
}

#[tokio::test]
async fn failures_count_against_the_account_whatever_the_spelling() {
    let app = TestApp::spawn().await;
    app.create_user("alice", "alicepass").await;
    let stranger = app.client_from("127.0.0.11");
    // Five failures under five spellings of one account (login, email, any case).
    for spelling in [
        "alice",
        "alice@example.org",
        "ALICE",
        "Alice@Example.ORG",
        " aLiCe ",
    ] {
        assert_eq!(login(&app, &stranger, spelling, "wrong", None).await, 401);
    }
    // The account is blocked from that address under every spelling, /login and Basic.
    for spelling in ["alice", "ALICE@EXAMPLE.ORG"] {
        assert_eq!(
            login(&app, &stranger, spelling, "alicepass", None).await,
            401,
            "{spelling} from the stranger's address"
        );
    }
    assert_eq!(
        basic(&app, &stranger, "alice@example.org", "alicepass").await,
        401
    );
    // The owner, elsewhere, is not.
    let owner = app.client_from("127.0.0.12");
    assert_eq!(login(&app, &owner, "alice", "alicepass", None).await, 200);
    assert_eq!(
        basic(&app, &owner, "alice@example.org", "alicepass").await,
        200
    );
}

#[tokio::test]
async fn an_address_is_blocked_after_failures_across_logins() {
    // The default: 50 failures from one address in five minutes.
    let app = TestApp::spawn().await;
    app.create_user("bob", "bobpass").await;
    let a = app.client_from("127.0.0.21");
    // Unknown logins count too; none of them reaches the per-account limit.
    for i in 0..49 {
        let who = format!("nobody{}", i % 10);
        assert_eq!(login(&app, &a, &who, "x", None).await, 401);
    }
    // One short of the limit: a right password still works, and does not reset the count.
    assert_eq!(login(&app, &a, "bob", "bobpass", None).await, 200);
    assert_eq!(login(&app, &a, "bob", "wrong", None).await, 401);
    // The 50th failure blocks the address for every login, right passwords included.
    assert_eq!(login(&app, &a, "bob", "bobpass", None).await, 401);
    assert_eq!(basic(&app, &a, ADMIN, ADMIN_PW).await, 401);
    // Other addresses are not affected.
    let b = app.client_from("127.0.0.22");
    assert_eq!(basic(&app, &b, ADMIN, ADMIN_PW).await, 200);
    assert_eq!(login(&app, &b, "bob", "bobpass", None).await, 200);
    // The window is five minutes of the service clock, not of the wall clock.
    app.clock.advance(Duration::from_secs(299));
    assert_eq!(login(&app, &a, "bob", "bobpass", None).await, 401);
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(login(&app, &a, "bob", "bobpass", None).await, 200);
}

#[tokio::test]
async fn strangers_never_lock_the_owner_out() {
    let app = TestApp::spawn_with(&[("security", "brute_force_max_attempts_per_ip", "10")]).await;
    app.create_user("carol", "carolpass").await;
    let spellings = ["carol", "CAROL", "carol@example.org"];
    // Strangers at two addresses exhaust both the pair and the address allowances.
    for ip in ["127.0.0.31", "127.0.0.32"] {
        let c = app.client_from(ip);
        for i in 0..10 {
            assert_eq!(login(&app, &c, spellings[i % 3], "guess", None).await, 401);
        }
        assert_eq!(
            login(&app, &c, "carol", "carolpass", None).await,
            401,
            "{ip}"
        );
    }
    // The owner signs in from her own address, under any spelling, both ways.
    let owner = app.client_from("127.0.0.33");
    assert_eq!(
        login(&app, &owner, "carol@example.org", "carolpass", None).await,
        200
    );
    assert_eq!(basic(&app, &owner, "Carol", "carolpass").await, 200);
    // The strangers' addresses recover once the window has passed on the service clock.
    app.clock.advance(Duration::from_secs(301));
    let c = app.client_from("127.0.0.31");
    assert_eq!(login(&app, &c, "carol", "carolpass", None).await, 200);
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    let id = app.create_user("dave", "davepass").await;
    let a = app.client_from("127.0.0.41");
    // A fresh X-Forwarded-For on every try does not make a fresh client.
    for i in 0..5 {
        let xff = format!("10.9.0.{i}");
        assert_eq!(login(&app, &a, "dave", "wrong", Some(&xff)).await, 401);
    }
    assert_eq!(
        login(&app, &a, "dave", "davepass", Some("10.9.0.99")).await,
        401
    );
    // The session records the peer, not the header.
    let b = app.client_from("127.0.0.42");
    assert_eq!(
        login(&app, &b, "dave", "davepass", Some("10.9.9.9")).await,
        200
    );
    let (_, tokens) =
        send(app.admin(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    assert_eq!(tokens[0]["clientIp"], "127.0.0.42");

    // Behind a trusted proxy, the header names the client.
    let app =
        TestApp::spawn_with(&[("security", "trusted_proxies", "127.0.0.51, 10.0.0.0/8")]).await;
    let id = app.create_user("erin", "erinpass").await;
    let proxy = app.client_from("127.0.0.51");
    for _ in 0..5 {
        assert_eq!(
            login(&app, &proxy, "erin", "wrong", Some("203.0.113.7")).await,
            401
        );
    }
    // That client is blocked; another client behind the same proxy is not.
    assert_eq!(
        login(&app, &proxy, "erin", "erinpass", Some("203.0.113.7")).await,
        401
    );
    // A client cannot choose its address: what it wrote left of the hop the trusted
    // proxies appended is never read (10.0.0.9 is a trusted inner proxy).
    assert_eq!(
        login(
            &app,
            &proxy,
            "erin",
            "erinpass",
            Some("203.0.113.99, 203.0.113.7, 10.0.0.9")
        )
        .await,
        401
    );
    assert_eq!(
        login(&app, &proxy, "erin", "erinpass", Some("203.0.113.8")).await,
        200
    );
    let (_, tokens) =
        send(app.admin(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    assert_eq!(tokens[0]["clientIp"], "203.0.113.8");
    // A peer that is not a trusted proxy is its own client, whatever it sends.
    let other = app.client_from("127.0.0.52");
    for i in 0..5 {
        let xff = format!("203.0.113.{}", 20 + i);
        assert_eq!(login(&app, &other, "erin", "wrong", Some(&xff)).await, 401);
    }
    assert_eq!(
        login(&app, &other, "erin", "erinpass", Some("203.0.113.8")).await,
        401
    );
    assert_eq!(
        login(&app, &proxy, "erin", "erinpass", Some("203.0.113.8")).await,
        200
    );
}

#[tokio::test]
async fn an_administrators_password_reset_lifts_the_users_block() {
    let app = TestApp::spawn().await;
    let dora = app.create_user("dora", "dorapass1").await;
    let client = app.client_from("127.0.0.21");
    for _ in 0..5 {
        assert_eq!(login(&app, &client, "dora", "wrong", None).await, 401);
    }
    assert_eq!(
        basic(&app, &client, "dora", "dorapass1").await,
        401,
        "blocked"
    );
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{dora}/password"))
            .json(&json!({"password": "dorapass2"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(login(&app, &client, "dora", "dorapass2", None).await, 200);
    assert_eq!(basic(&app, &client, "dora", "dorapass2").await, 200);
}
