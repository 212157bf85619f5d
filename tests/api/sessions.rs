//! Sign-in sessions: cookies, logout, revocation, lifetimes, rotation with its grace
//! window, CSRF, and the auth-token endpoints of the admin and user APIs.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_sets_a_hardened_cookie_and_logout_revokes_it() {
    let app = TestApp::spawn().await;
    let resp = app
        .req(Method::POST, "/login")
        .json(&json!({"user": ADMIN, "password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("grafana_session="), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"));
    let token = session_token(&resp).unwrap();
    assert_eq!(token.len(), 32);
    let (s, body) = parse(resp).await;
    assert_eq!((s, message(&body)), (200, "Logged in"));
    let (s, me) = send(app.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!((s, me["login"].as_str()), (200, Some("admin")));
    // Sign in by email too.
    app.login("admin@localhost", ADMIN_PW).await;

    let resp = app
        .with_session(Method::GET, "/logout", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/login");
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let (s, b) = send(app.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!((s, message(&b)), (401, "Token revoked"));
}

#[tokio::test]
async fn cookie_attributes_follow_security_settings() {
    let app = TestApp::spawn_with(&[
        ("security", "cookie_secure", "true"),
        ("security", "cookie_samesite", "strict"),
        ("auth", "login_cookie_name", "tg_session"),
    ])
    .await;
    let resp = app
        .req(Method::POST, "/login")
        .json(&json!({"user": ADMIN, "password": ADMIN_PW}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("tg_session="), "{cookie}");
    assert!(
        cookie.contains("SameSite=Strict") && cookie.contains("Secure"),
        "{cookie}"
    );
    let token = cookie
        .trim_start_matches("tg_session=")
        .split(';')
        .next()
        .unwrap();
    let (s, _) = send(
        app.req(Method::GET, "/api/user")
            .header("cookie", format!("tg_session={token}")),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn login_errors() {
    let app = TestApp::spawn().await;
    let (s, b) = send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": ADMIN, "password": "nope"})),
    )
    .await;
    assert_eq!((s, message(&b)), (401, "Invalid username or password"));
    let (s, b) = send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": "ghost", "password": "nope"})),
    )
    .await;
    assert_eq!((s, message(&b)), (401, "Invalid username or password"));
    let (s, b) = send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": ADMIN})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"));
    let (s, _) = send(app.req(Method::POST, "/login").body("user=admin")).await;
    assert_eq!(s, 400);
    let (s, _) = send(
        app.req(Method::GET, "/api/user")
            .header("cookie", "grafana_session=0123456789abcdef0123456789abcdef"),
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn sessions_expire_after_inactivity_and_lifetime() {
    let app =
        TestApp::spawn_with(&[("auth", "login_maximum_inactive_lifetime_duration", "1s")]).await;
    let token = app.login(ADMIN, ADMIN_PW).await;
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!(s, 200);
    app.clock.advance(Duration::from_millis(2100));
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!(s, 401, "inactive for longer than the lifetime");

    let app = TestApp::spawn_with(&[("auth", "login_maximum_lifetime_duration", "2s")]).await;
    let token = app.login(ADMIN, ADMIN_PW).await;
    app.clock.advance(Duration::from_millis(1100));
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!(s, 200, "active and within the lifetime");
    app.clock.advance(Duration::from_millis(1500));
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!(s, 401, "older than the maximum lifetime");
}

#[tokio::test]
async fn tokens_rotate_and_the_previous_token_has_a_grace_window() {
    let app = TestApp::spawn_with(&[
        ("auth", "token_rotation_interval_minutes", "1s"),
        ("auth", "token_rotation_grace_period", "2s"),
    ])
    .await;
    let first = app.login(ADMIN, ADMIN_PW).await;
    let resp = app
        .with_session(Method::GET, "/api/user", &first)
        .send()
        .await
        .unwrap();
    assert!(
        session_token(&resp).is_none(),
        "no rotation before the interval"
    );
    app.clock.advance(Duration::from_millis(1100));
    let resp = app
        .with_session(Method::GET, "/api/user", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let second = session_token(&resp).expect("rotated token in Set-Cookie");
    assert_ne!(first, second);
    // A request already in flight with the old token still succeeds...
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &first)).await;
    assert_eq!(s, 200, "grace window");
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &second)).await;
    assert_eq!(s, 200);
    // ...but not after the grace window.
    app.clock.advance(Duration::from_millis(2200));
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &first)).await;
    assert_eq!(s, 401, "the old token expires after the grace window");
    // Still one session, listed once.
    let (_, tokens) = send(app.admin(Method::GET, "/api/admin/users/1/auth-tokens")).await;
    assert_eq!(tokens.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn csrf_applies_to_cookie_writes_only() {
    let app = TestApp::spawn().await;
    let token = app.login(ADMIN, ADMIN_PW).await;
    let body = |login: &str| json!({"login": login, "password": "csrfpw"});
    let (s, b) = send(
        app.with_session(Method::POST, "/api/admin/users", &token)
            .json(&body("a")),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (403, "origin not allowed"),
        "no Origin, no Referer"
    );
    let (s, _) = send(
        app.with_session(Method::POST, "/api/admin/users", &token)
            .header("origin", "https://evil.example")
            .json(&body("a")),
    )
    .await;
    assert_eq!(s, 403, "foreign origin");
    let (s, _) = send(
        app.with_session(Method::POST, "/api/admin/users", &token)
            .header("referer", "http://evil.example/localhost:3000/")
            .json(&body("a")),
    )
    .await;
    assert_eq!(s, 403, "foreign referer");
    let (s, _) = send(
        app.with_session_same_origin(Method::POST, "/api/admin/users", &token)
            .json(&body("a")),
    )
    .await;
    assert_eq!(s, 200, "root_url origin");
    let (s, _) = send(
        app.with_session(Method::POST, "/api/admin/users", &token)
            .header("referer", "http://localhost:3000/admin/users")
            .json(&body("b")),
    )
    .await;
    assert_eq!(s, 200, "root_url referer");
    let host = app.base.trim_start_matches("http://").to_string();
    let (s, _) = send(
        app.with_session(Method::POST, "/api/admin/users", &token)
            .header("origin", format!("http://{host}"))
            .json(&body("c")),
    )
    .await;
    assert_eq!(s, 200, "the Host the browser addressed");
    // Reads are not subject to CSRF; Basic writes are not either.
    let (s, _) = send(app.with_session(Method::GET, "/api/users", &token)).await;
    assert_eq!(s, 200);
    let (s, _) = send(app.admin(Method::POST, "/api/admin/users").json(&body("d"))).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn admin_lists_sessions_with_parsed_user_agents() {
    let app = TestApp::spawn().await;
    let id = app.create_user("sam", "sampass").await;
    let sam = app.login("sam", "sampass").await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let (s, tokens) =
        send(app.admin(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    assert_eq!(s, 200);
    let t = &tokens[0];
    let keys: Vec<&String> = t.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "isActive",
            "clientIp",
            "device",
            "os",
            "osVersion",
            "browser",
            "browserVersion",
            "authModule",
            "createdAt",
            "seenAt"
        ]
    );
    assert_eq!(t["browser"], "Chrome");
    assert_eq!(t["browserVersion"], "120.0");
    assert_eq!(t["os"], "Linux");
    assert_eq!(t["device"], "Other");
    assert_eq!(t["clientIp"], "127.0.0.1");
    assert_eq!(t["isActive"], false);
    assert!(t["createdAt"].as_str().unwrap().ends_with('Z'));
    // isActive marks the caller's own session.
    let (_, own) =
        send(app.with_session(Method::GET, "/api/admin/users/1/auth-tokens", &admin)).await;
    assert_eq!(own[0]["isActive"], true);
    let (_, mine) = send(app.with_session(Method::GET, "/api/user/auth-tokens", &sam)).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["isActive"], true);
    // Errors.
    let (s, _) = send(app.admin(Method::GET, "/api/admin/users/999/auth-tokens")).await;
    assert_eq!(s, 404);
    let (s, _) = send(app.as_user(
        Method::GET,
        "/api/admin/users/1/auth-tokens",
        "sam",
        "sampass",
    ))
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(app.req(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn revoke_one_session() {
    let app = TestApp::spawn().await;
    let id = app.create_user("tia", "tiapass").await;
    let other = app.create_user("uma", "umapass").await;
    let tia = app.login("tia", "tiapass").await;
    let uma = app.login("uma", "umapass").await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let (_, tokens) =
        send(app.admin(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    let tia_token = tokens[0]["id"].as_i64().unwrap();
    let (_, tokens) = send(app.admin(
        Method::GET,
        &format!("/api/admin/users/{other}/auth-tokens"),
    ))
    .await;
    let uma_token = tokens[0]["id"].as_i64().unwrap();
    let (_, tokens) = send(app.admin(Method::GET, "/api/admin/users/1/auth-tokens")).await;
    let admin_token = tokens[0]["id"].as_i64().unwrap();

    let revoke = |user: u64, token: i64| {
        app.with_session_same_origin(
            Method::POST,
            &format!("/api/admin/users/{user}/revoke-auth-token"),
            &admin,
        )
        .json(&json!({"authTokenId": token}))
    };
    let (s, b) = send(revoke(id, uma_token)).await;
    assert_eq!(
        (s, message(&b)),
        (404, "User auth token not found"),
        "another user's token"
    );
    let (s, b) = send(revoke(1, admin_token)).await;
    assert_eq!(
        (s, message(&b)),
        (400, "Cannot revoke active user auth token")
    );
    let (s, b) = send(revoke(999, tia_token)).await;
    assert_eq!((s, message(&b)), (404, "User not found"));
    let (s, b) = send(revoke(id, tia_token)).await;
    assert_eq!((s, message(&b)), (200, "User auth token revoked"));
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &tia)).await;
    assert_eq!(s, 401, "a revoked session's next request");
    let (s, _) = send(revoke(id, tia_token)).await;
    assert_eq!(s, 404, "already revoked");
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &uma)).await;
    assert_eq!(s, 200, "other sessions are untouched");
    let (s, b) = send(
        app.admin(
            Method::POST,
            &format!("/api/admin/users/{id}/revoke-auth-token"),
        )
        .json(&json!({"authTokenId": "x"})),
    )
    .await;
    assert_eq!((s, message(&b)), (400, "bad request data"));
    // A missing id reads as 0 (Go's zero value): no such token.
    let (s, b) = send(
        app.admin(
            Method::POST,
            &format!("/api/admin/users/{id}/revoke-auth-token"),
        )
        .json(&json!({})),
    )
    .await;
    assert_eq!((s, message(&b)), (404, "User auth token not found"));

    // A user revokes their own other session, not the current one.
    let uma2 = app.login("uma", "umapass").await;
    let (_, mine) = send(app.with_session(Method::GET, "/api/user/auth-tokens", &uma2)).await;
    let current = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["isActive"] == true)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, _) = send(
        app.with_session_same_origin(Method::POST, "/api/user/revoke-auth-token", &uma2)
            .json(&json!({"authTokenId": current})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        app.with_session_same_origin(Method::POST, "/api/user/revoke-auth-token", &uma2)
            .json(&json!({"authTokenId": uma_token})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(app.with_session(Method::GET, "/api/user", &uma)).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn logout_user_everywhere() {
    let app = TestApp::spawn().await;
    let id = app.create_user("vic", "vicpass").await;
    let a = app.login("vic", "vicpass").await;
    let b = app.login("vic", "vicpass").await;
    let (s, body) = send(app.admin(Method::POST, "/api/admin/users/1/logout")).await;
    assert_eq!((s, message(&body)), (400, "You cannot logout yourself"));
    let (s, body) = send(app.admin(Method::POST, "/api/admin/users/999/logout")).await;
    assert_eq!((s, message(&body)), (404, "User not found"));
    let (s, _) =
        send(app.as_user(Method::POST, "/api/admin/users/1/logout", "vic", "vicpass")).await;
    assert_eq!(s, 403);
    let (s, body) = send(app.admin(Method::POST, &format!("/api/admin/users/{id}/logout"))).await;
    assert_eq!((s, message(&body)), (200, "User logged out"));
    for t in [a, b] {
        let (s, _) = send(app.with_session(Method::GET, "/api/user", &t)).await;
        assert_eq!(s, 401);
    }
    let (_, list) =
        send(app.admin(Method::GET, &format!("/api/admin/users/{id}/auth-tokens"))).await;
    assert_eq!(list, json!([]));
}

/// Each of the three revokes the user's sessions (Grafana's `RevokeAllUserTokens`), not
/// merely makes them unusable for now: the old cookie answers "Token revoked" and stays
/// dead after the user is enabled again, and after a user with the same login is created
/// again; the revoked session is no longer listed.
#[tokio::test]
async fn password_change_disable_and_delete_end_sessions() {
    let app = TestApp::spawn().await;
    for (i, action) in ["password", "disable", "delete"].iter().enumerate() {
        let login = format!("w{i}");
        let id = app.create_user(&login, "wpass1").await;
        let token = app.login(&login, "wpass1").await;
        let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
        assert_eq!(s, 200, "{action}: the session works before");
        let (req, done) = match *action {
            "password" => (
                app.admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
                    .json(&json!({"password": "wpass2"})),
                "User password updated",
            ),
            "disable" => (
                app.admin(Method::POST, &format!("/api/admin/users/{id}/disable")),
                "User disabled",
            ),
            _ => (
                app.admin(Method::DELETE, &format!("/api/admin/users/{id}")),
                "User deleted",
            ),
        };
        let (s, b) = send(req).await;
        assert_eq!((s, message(&b)), (200, done), "{action}");
        let (s, b) = send(app.with_session(Method::GET, "/api/user", &token)).await;
        assert_eq!(
            (s, message(&b)),
            (401, "Token revoked"),
            "session after {action}"
        );
        // Undo what made the session unusable: the session itself must stay revoked.
        let user = match *action {
            "disable" => {
                let (s, b) =
                    send(app.admin(Method::POST, &format!("/api/admin/users/{id}/enable"))).await;
                assert_eq!((s, message(&b)), (200, "User enabled"));
                id
            }
            "delete" => {
                let again = app.create_user(&login, "wpass1").await;
                assert_ne!(again, id, "a new user, not the deleted row");
                again
            }
            _ => id,
        };
        let (s, b) = send(app.with_session(Method::GET, "/api/user", &token)).await;
        assert_eq!(
            (s, message(&b)),
            (401, "Token revoked"),
            "the old cookie after {action} and undoing it"
        );
        let (s, list) =
            send(app.admin(Method::GET, &format!("/api/admin/users/{user}/auth-tokens"))).await;
        assert_eq!((s, list), (200, json!([])), "{action}: nothing listed");
        // The user (or the new one) signs in again with a fresh session.
        let password = if *action == "password" {
            "wpass2"
        } else {
            "wpass1"
        };
        let fresh = app.login(&login, password).await;
        let (s, me) = send(app.with_session(Method::GET, "/api/user", &fresh)).await;
        assert_eq!((s, me["id"].as_u64()), (200, Some(user)), "{action}");
    }
}

#[tokio::test]
async fn brute_force_blocks_a_login_per_address_only() {
    let app = TestApp::spawn().await;
    app.create_user("xena", "xenapass").await;
    for _ in 0..5 {
        let (s, _) = send(
            app.req(Method::POST, "/login")
                .json(&json!({"user": "xena", "password": "wrong"})),
        )
        .await;
        assert_eq!(s, 401);
    }
    // Blocked from this address: the right password answers like a wrong one.
    let (s, b) = send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": "xena", "password": "xenapass"})),
    )
    .await;
    assert_eq!((s, message(&b)), (401, "Invalid username or password"));
    let (s, b) = send(app.as_user(Method::GET, "/api/user", "XENA", "xenapass")).await;
    assert_eq!(
        (s, message(&b)),
        (401, "invalid username or password"),
        "Basic is blocked too"
    );
    // The same login from another address still works.
    let other = app.client_from("127.0.0.2");
    let resp = other
        .post(app.url("/login"))
        .json(&json!({"user": "xena", "password": "xenapass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (s, _) = send(
        other
            .get(app.url("/api/user"))
            .basic_auth("xena", Some("xenapass")),
    )
    .await;
    assert_eq!(s, 200);
    // Other logins from the blocked address are not affected.
    let (s, _) = send(app.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn basic_failures_count_and_protection_can_be_disabled() {
    let app = TestApp::spawn().await;
    app.create_user("yuri", "yuripass").await;
    for _ in 0..5 {
        send(app.as_user(Method::GET, "/api/user", "yuri", "bad")).await;
    }
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "yuri", "yuripass")).await;
    assert_eq!(s, 401);

    let off =
        TestApp::spawn_with(&[("security", "disable_brute_force_login_protection", "true")]).await;
    off.create_user("yuri", "yuripass").await;
    for _ in 0..8 {
        send(off.as_user(Method::GET, "/api/user", "yuri", "bad")).await;
    }
    let (s, _) = send(off.as_user(Method::GET, "/api/user", "yuri", "yuripass")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn session_and_key_counters_follow_writes() {
    let app = TestApp::spawn().await;
    let store = app.services.store.clone();
    let t1 = app.login(ADMIN, ADMIN_PW).await;
    app.login(ADMIN, ADMIN_PW).await;
    assert_eq!(store.active_session_count().await.unwrap(), 2);
    app.with_session(Method::GET, "/logout", &t1)
        .send()
        .await
        .unwrap();
    assert_eq!(store.active_session_count().await.unwrap(), 1);
    let (_, k) = send(
        app.admin(Method::POST, "/api/auth/keys")
            .json(&json!({"name": "c", "role": "Viewer"})),
    )
    .await;
    assert_eq!(store.counts().await.unwrap().api_keys, 1);
    send(app.admin(Method::DELETE, &format!("/api/auth/keys/{}", k["id"]))).await;
    assert_eq!(store.counts().await.unwrap().api_keys, 0);
}
