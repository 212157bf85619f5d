//! `GET /api/admin/stats/activity`: sign-ins, failed sign-ins and active users per hour and
//! per day, counted as they happen, read with the server's clock moved across an hour and
//! a day.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tollgate::domain::time::{rfc3339, Clock};

use crate::helpers::*;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

async fn activity(app: &TestApp) -> Value {
    let (s, v) = send(app.admin(Method::GET, "/api/admin/stats/activity")).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// The entry's counts as `[signIns, failedSignIns, activeUsers]`.
fn counts(entry: &Value) -> [i64; 3] {
    ["signIns", "failedSignIns", "activeUsers"].map(|k| entry[k].as_i64().expect(k))
}

/// Every entry of the list: its start, and its counts when they are not all zero.
fn nonzero(list: &Value) -> Vec<(String, [i64; 3])> {
    list.as_array()
        .expect("a list")
        .iter()
        .filter(|e| counts(e) != [0; 3])
        .map(|e| (e["start"].as_str().unwrap_or("").to_string(), counts(e)))
        .collect()
}

/// The starts a list must have: `n` buckets of `len` seconds, the last holding `now`.
fn starts(list: &Value, now: i64, len: i64, n: i64) {
    let got: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| e["start"].as_str().unwrap_or(""))
        .collect();
    let last = now - now.rem_euclid(len);
    let want: Vec<String> = (0..n).map(|i| rfc3339(last - (n - 1 - i) * len)).collect();
    assert_eq!(got, want);
}

async fn login(app: &TestApp, user: &str, password: &str) -> u16 {
    send(
        app.req(Method::POST, "/login")
            .json(&json!({"user": user, "password": password})),
    )
    .await
    .0
}

#[tokio::test]
async fn sign_ins_and_active_users_per_hour_and_day() {
    let app = TestApp::spawn().await;
    // A fresh UTC day at 00:57: every count below lands in its first hour.
    const EARLY: i64 = 180;
    let now = app.clock.now();
    let skip = DAY - now.rem_euclid(DAY) + HOUR - EARLY;
    app.clock.advance(Duration::from_secs(skip as u64));
    let day = app.clock.now() - (HOUR - EARLY);
    assert_eq!(day.rem_euclid(DAY), 0);

    // The admin's first Basic request verifies its password: a sign-in, and it is seen.
    let viewer = app.create_user("viewer", "viewer-pw-1").await;
    assert!(viewer > 0);
    assert_eq!(login(&app, "viewer", "viewer-pw-1").await, 200);
    assert_eq!(login(&app, "VIEWER@example.org", "viewer-pw-1").await, 200);
    assert_eq!(login(&app, "viewer", "wrong-pw").await, 401);
    assert_eq!(login(&app, "viewer", "wrong-pw-2").await, 401);
    assert_eq!(login(&app, "ghost", "whatever").await, 401);
    let (s, _) = send(app.as_user(Method::GET, "/api/user", "viewer", "bad-basic")).await;
    assert_eq!(s, 401, "a refused Basic password is a failed sign-in too");
    // The credential cache answers these: no password check, no sign-in.
    for _ in 0..3 {
        let (s, _) = send(app.as_user(Method::GET, "/api/user", "viewer", "viewer-pw-1")).await;
        assert_eq!(s, 200);
    }

    let v = activity(&app).await;
    let now = app.clock.now();
    starts(&v["hourly"], now, HOUR, 24);
    starts(&v["daily"], now, DAY, 30);
    let first_hour = (rfc3339(day), [3, 4, 2]);
    assert_eq!(
        nonzero(&v["hourly"]),
        std::slice::from_ref(&first_hour),
        "3 sign-ins (the admin's Basic, two forms), 4 failed, 2 users: {v}"
    );
    assert_eq!(nonzero(&v["daily"]), [(rfc3339(day), [3, 4, 2])]);

    // The next hour, less than the five minutes that last-seen updates are spaced by:
    // the users seen again count again there, once each; the day keeps counting them once.
    app.clock.advance(Duration::from_secs(EARLY as u64));
    for _ in 0..2 {
        let (s, _) = send(app.as_user(Method::GET, "/api/user", "viewer", "viewer-pw-1")).await;
        assert_eq!(s, 200);
    }
    let v = activity(&app).await;
    starts(&v["hourly"], app.clock.now(), HOUR, 24);
    assert_eq!(
        nonzero(&v["hourly"]),
        [first_hour, (rfc3339(day + HOUR), [0, 0, 2])],
        "the viewer and the admin reading this: {v}"
    );
    assert_eq!(nonzero(&v["daily"]), [(rfc3339(day), [3, 4, 2])]);

    // The next day: yesterday moves one entry back. The admin's cached credential has
    // expired by the server's clock, so reading this verifies its password again.
    app.clock.advance(Duration::from_secs(DAY as u64));
    let v = activity(&app).await;
    let daily = v["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    assert_eq!(counts(&daily[28]), [3, 4, 2]);
    assert_eq!(counts(&daily[29]), [1, 0, 1], "the admin reading this");
    assert_eq!(
        nonzero(&v["hourly"]),
        [(rfc3339(day + DAY + HOUR), [1, 0, 1])],
        "yesterday's hours left the last 24"
    );
}

#[tokio::test]
async fn activity_needs_server_stats_read() {
    let app = TestApp::spawn().await;
    let (s, _) = send(app.req(Method::GET, "/api/admin/stats/activity")).await;
    assert_eq!(s, 401);
    app.create_user("viewer", "viewer-pw-1").await;
    let (s, v) = send(app.as_user(
        Method::GET,
        "/api/admin/stats/activity",
        "viewer",
        "viewer-pw-1",
    ))
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(message(&v).contains("server.stats:read"), "{v}");
}
