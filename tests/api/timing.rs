//! No timing oracle at sign-in: through real HTTP, a wrong password (for a user whose hash
//! was made before `password_hash_iterations` was raised, so it is cheaper to check), an
//! unknown login and an attempt blocked by brute-force protection take the same time
//! within noise. The three kinds are interleaved, so load on the machine hits them alike,
//! and compared by their medians.

use std::time::{Duration, Instant};

use reqwest::{Client, Method};
use serde_json::json;

use crate::helpers::{send, TestApp};

/// A verification at this cost takes a few milliseconds (the harness's 1,000, at which the
/// weak user's hash is made, is twenty times cheaper).
const COST: &str = "20000";
const SAMPLES: usize = 200;
/// Each wrong-password and unknown-login address is used this many times: under the
/// per-account limit (5) and far under the per-address one (50).
const USES_PER_ADDRESS: usize = 4;

async fn timed_login(app: &TestApp, client: &Client, user: &str) -> Duration {
    let start = Instant::now();
    let (status, body) = send(
        client
            .post(app.url("/login"))
            .json(&json!({"user": user, "password": "not-the-password"})),
    )
    .await;
    let took = start.elapsed();
    assert_eq!(status, 401, "{user}: {body}");
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_unknown_login_and_blocked_attempt_take_as_long() {
    // The user's hash is made at the harness's low cost; the server then restarts at a
    // higher one (the hash is upgraded only at a successful sign-in, which never comes).
    let first = TestApp::spawn().await;
    first.create_user("weak", "weak-password").await;
    let (_dir, data) = first.stop().await;
    let app = TestApp::spawn_in(&data, &[("security", "password_hash_iterations", COST)]).await;

    // The blocked pair: (weak, 127.0.0.2), after five failures.
    let blocked = app.client_from("127.0.0.2");
    for _ in 0..5 {
        timed_login(&app, &blocked, "weak").await;
    }
    let pool: Vec<Client> = (0..SAMPLES.div_ceil(USES_PER_ADDRESS))
        .map(|i| app.client_from(&format!("127.0.1.{}", 10 + i)))
        .collect();
    // Connections first, so no sample pays for a TCP handshake.
    for c in pool.iter().chain([&blocked]) {
        let (s, _) = send(c.request(Method::GET, app.url("/api/health"))).await;
        assert_eq!(s, 200);
    }

    let (mut wrong, mut unknown, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..SAMPLES {
        let client = &pool[i / USES_PER_ADDRESS];
        let ghost = format!("ghost{i}");
        // Rotate the order so none of the three always runs first.
        for k in 0..3 {
            match (i + k) % 3 {
                0 => wrong.push(timed_login(&app, client, "weak").await),
                1 => unknown.push(timed_login(&app, client, &ghost).await),
                _ => refused.push(timed_login(&app, &blocked, "weak").await),
            }
        }
    }
    let (wrong, unknown, refused) = (median(wrong), median(unknown), median(refused));
    eprintln!("medians: wrong password {wrong:?}, unknown login {unknown:?}, blocked {refused:?}");
    let pairs = [
        ("wrong password / unknown login", wrong, unknown),
        ("blocked / unknown login", refused, unknown),
        ("blocked / wrong password", refused, wrong),
    ];
    for (what, a, b) in pairs {
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        assert!(
            (0.6..=1.6).contains(&ratio),
            "{what}: {ratio:.2} ({a:?} vs {b:?})"
        );
    }
}
