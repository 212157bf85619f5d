//! Operations: `/metrics` (Grafana's request histogram labelled by route template, its
//! Basic auth, gauges that follow the state), `X-Request-Id`, `/healthz` and `/readyz`,
//! and JSON log lines.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{binary, free_port, send, wait_healthy, TestApp, ADMIN_PW};
use crate::licensing::{claims, licensed, sign, upload};

async fn scrape(app: &TestApp) -> String {
    let resp = app.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    resp.text().await.unwrap()
}

/// The value of the sample `name{labels}` (exact label text), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn request_histogram_is_labelled_by_route_template() {
    let app = TestApp::spawn().await;
    for _ in 0..2 {
        let (s, _) = send(app.admin(Method::GET, "/api/users/1")).await;
        assert_eq!(s, 200);
    }
    let (s, _) = send(app.admin(Method::GET, "/api/users/999")).await;
    assert_eq!(s, 404);
    let (s, _) = send(app.admin(Method::GET, "/api/users/lookup?loginOrEmail=admin")).await;
    assert_eq!(s, 200);
    let text = scrape(&app).await;
    let count = |labels: &str| {
        sample(
            &text,
            &format!("grafana_http_request_duration_seconds_count{{{labels}}}"),
        )
    };
    assert_eq!(
        count(r#"handler="/api/users/:id",status_code="200",method="GET""#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count(r#"handler="/api/users/:id",status_code="404",method="GET""#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"handler="/api/users/lookup",status_code="200",method="GET""#),
        Some(1.0)
    );
    // Grafana's buckets, and never a raw URL as a label.
    assert!(text.contains(
        r#"grafana_http_request_duration_seconds_bucket{le="0.005",handler="/api/users/:id",status_code="200",method="GET"}"#
    ) || text.contains(r#"grafana_http_request_duration_seconds_bucket{handler="/api/users/:id",status_code="200",method="GET",le="0.005"}"#), "{text}");
    assert!(!text.contains("/api/users/999") && !text.contains("/api/users/1\""));
    // The scrape itself is in flight while it is answered.
    assert_eq!(sample(&text, "grafana_http_request_in_flight"), Some(1.0));
    assert_eq!(sample(&text, "grafana_stat_total_users"), Some(1.0));
    assert!(text.ends_with("# EOF\n"));
    app.stop().await;
}

/// A client may send any token as a method: all but the standard ones share one label, so
/// odd methods cannot grow the metrics without bound.
#[tokio::test]
async fn odd_methods_share_one_metric_label() {
    let app = TestApp::spawn().await;
    for odd in ["PROPFIND", "BREW", "X-ANYTHING"] {
        let m = Method::from_bytes(odd.as_bytes()).unwrap();
        let (s, _) = send(app.admin(m, "/api/users/1")).await;
        assert_eq!(s, 405, "{odd}");
    }
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"grafana_http_request_duration_seconds_count{handler="unknown",status_code="405",method="OTHER"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        !text.contains("PROPFIND") && !text.contains("BREW"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_basic_auth_and_disabled() {
    let app = TestApp::spawn_with(&[
        ("metrics", "basic_auth_username", "prometheus"),
        ("metrics", "basic_auth_password", "scrape-secret"),
    ])
    .await;
    let get = |auth: Option<(&str, &str)>| {
        let mut r = app.req(Method::GET, "/metrics");
        if let Some((u, p)) = auth {
            r = r.basic_auth(u, Some(p));
        }
        async move { r.send().await.unwrap() }
    };
    let none = get(None).await;
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        "Basic realm=\"Authorization Required\""
    );
    assert_eq!(get(Some(("prometheus", "wrong"))).await.status(), 401);
    // The server's admin is not the metrics user.
    assert_eq!(get(Some(("admin", ADMIN_PW))).await.status(), 401);
    assert_eq!(
        get(Some(("prometheus", "scrape-secret"))).await.status(),
        200
    );
    app.stop().await;

    let off = TestApp::spawn_with(&[("metrics", "enabled", "false")]).await;
    let (s, v) = send(off.req(Method::GET, "/metrics")).await;
    assert_eq!((s, v["message"].as_str()), (404, Some("Not found")));
    off.stop().await;
}

#[tokio::test]
async fn data_key_and_license_gauges_follow_the_state() {
    let l = licensed().await;
    let app = &l.app;
    let text = scrape(app).await;
    assert_eq!(
        sample(&text, r#"tollgate_data_keys{state="active"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"tollgate_data_keys{state="retired"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"tollgate_license_state{state="missing"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "tollgate_license_seats_included"), Some(0.0));
    assert_eq!(sample(&text, "tollgate_license_expiry_seconds"), None);

    let (s, _) = send(app.admin(Method::POST, "/api/admin/encryption/rotate-data-keys")).await;
    assert_eq!(s, 204);
    let c = claims("metrics");
    let (s, v) = upload(app, &sign(&l.key, &c)).await;
    assert_eq!(s, 200, "{v}");

    let text = scrape(app).await;
    assert_eq!(
        sample(&text, r#"tollgate_data_keys{state="active"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"tollgate_data_keys{state="retired"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&text, "grafana_stat_totals_data_keys"), Some(2.0));
    assert_eq!(
        sample(&text, r#"tollgate_license_state{state="valid"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"tollgate_license_state{state="missing"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "tollgate_license_seats_included"),
        Some(c.included_users as f64)
    );
    assert_eq!(sample(&text, "tollgate_license_seats_used"), Some(1.0));
    let left = sample(&text, "tollgate_license_expiry_seconds").unwrap();
    let now = tollgate::domain::time::system_now() as f64;
    assert!((left - (c.lexp as f64 - now)).abs() <= 5.0, "{left}");
    let token_left = sample(&text, "tollgate_license_token_expiry_seconds").unwrap();
    assert!(
        (token_left - (c.exp as f64 - now)).abs() <= 5.0,
        "{token_left}"
    );
    l.app.stop().await;
}

#[tokio::test]
async fn store_write_and_flush_latency_histograms_count_each_write() {
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;
    let writes = sample(&before, "tollgate_store_write_seconds_count").unwrap();
    let flushes = sample(&before, "tollgate_store_flush_seconds_count").unwrap();
    for i in 0..3 {
        app.create_user(&format!("lat{i}"), "latency-pw-1").await;
    }
    let after = scrape(&app).await;
    let writes_after = sample(&after, "tollgate_store_write_seconds_count").unwrap();
    assert!(writes_after >= writes + 3.0, "{writes} -> {writes_after}");
    assert!(sample(&after, "tollgate_store_flush_seconds_count").unwrap() > flushes);
    // Cumulative buckets end at +Inf = the count.
    assert_eq!(
        sample(&after, r#"tollgate_store_write_seconds_bucket{le="+Inf"}"#),
        Some(writes_after)
    );
    assert!(sample(&after, "tollgate_store_write_seconds_sum").unwrap() > 0.0);
    // Each bucket counts what is at or below its bound, so they never decrease.
    let buckets: Vec<f64> = after
        .lines()
        .filter(|l| l.starts_with("tollgate_store_write_seconds_bucket"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 11, "ten bounds and +Inf");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
}

#[tokio::test]
async fn request_id_is_kept_or_made() {
    let app = TestApp::spawn().await;
    let resp = app
        .req(Method::GET, "/api/health")
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "trace-42");
    let a = app.req(Method::GET, "/nope").send().await.unwrap();
    let b = app.req(Method::GET, "/api/health").send().await.unwrap();
    let (a, b) = (&a.headers()["x-request-id"], &b.headers()["x-request-id"]);
    assert_eq!(a.len(), 16);
    assert_ne!(a, b, "a new id per request");
    // A control character or an over-long id is replaced.
    let long = "x".repeat(200);
    let resp = app
        .req(Method::GET, "/api/health")
        .header("X-Request-Id", long.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"].len(), 16);
    app.stop().await;
}

#[tokio::test]
async fn healthz_and_readyz() {
    let app = TestApp::spawn().await;
    let (s, v) = send(app.req(Method::GET, "/healthz")).await;
    assert_eq!((s, v), (200, serde_json::json!({"status": "alive"})));
    let (s, v) = send(app.req(Method::GET, "/readyz")).await;
    assert_eq!((s, v), (200, serde_json::json!({"status": "ready"})));
    let (s, v) = send(app.req(Method::GET, "/api/health")).await;
    assert_eq!((s, &v["database"]), (200, &Value::from("ok")));
    // What start-up does while its jobs run (App::build clears the flag at first).
    app.services
        .ready
        .store(false, std::sync::atomic::Ordering::Release);
    let (s, v) = send(app.req(Method::GET, "/readyz")).await;
    assert_eq!(
        (s, v),
        (
            503,
            serde_json::json!({"status": "not ready", "reason": "start-up jobs are still running"})
        )
    );
    // Alive all the same.
    let (s, _) = send(app.req(Method::GET, "/healthz")).await;
    assert_eq!(s, 200);
    app.stop().await;
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(binary())
        .arg("server")
        .env("GF_PATHS_DATA", data.path())
        .env("GF_SERVER_HTTP_ADDR", "127.0.0.1")
        .env("GF_SERVER_HTTP_PORT", port.to_string())
        .env("GF_SECURITY_ADMIN_PASSWORD", ADMIN_PW)
        .env("GF_SECURITY_PASSWORD_HASH_ITERATIONS", "1000")
        .env("GF_LOG_CONSOLE_FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base).await;
    let resp = reqwest::Client::new()
        .get(format!("{base}/api/users/1"))
        .basic_auth("admin", Some(ADMIN_PW))
        .header("X-Request-Id", "json-log-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stderr = child.stderr.take().unwrap();
    let found = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(
                v["timestamp"].is_string() && v["level"].is_string(),
                "{line}"
            );
            if v["request_id"] == "json-log-1" {
                return v;
            }
        }
        panic!("no log line for the request");
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), found)
        .await
        .expect("the request is logged")
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line["method"], "GET");
    assert_eq!(line["handler"], "/api/users/:id");
    assert_eq!(line["status"], 200);
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0);
    // No credential in any field.
    assert!(!line.to_string().contains(ADMIN_PW));
}

/// SIGTERM while 8 clients create users: the server exits 0, no response is cut after it
/// began, and every acknowledged user is there after a restart. Three rounds.
#[tokio::test]
async fn sigterm_during_a_burst_of_writes() {
    for round in 0..3 {
        let data = tempfile::tempdir().unwrap();
        let server = crate::helpers::ServerProcess::start(data.path(), &[]).await;
        let base = server.base.clone();
        let client = reqwest::Client::new();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..8 {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let (mut acked, mut cut) = (Vec::new(), Vec::new());
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let login = format!("r{round}w{w}n{i}");
                    let sent = client
                        .post(format!("{base}/api/admin/users"))
                        .basic_auth("admin", Some(ADMIN_PW))
                        .json(&serde_json::json!({"login": login, "password": "burst-password"}))
                        .send()
                        .await;
                    match sent {
                        Ok(resp) => {
                            let status = resp.status();
                            match resp.bytes().await {
                                Ok(_) if status.is_success() => acked.push(login),
                                Ok(_) => {} // refused (e.g. 503 while stopping): not acknowledged
                                Err(e) => cut.push(format!("{login}: {e}")),
                            }
                        }
                        // Refused or reset before a response: not acknowledged.
                        Err(_) => break,
                    }
                }
                (acked, cut)
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let pid = server.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || {
            let mut server = server;
            let s = server.child.wait().unwrap();
            (s, server)
        })
        .await
        .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(status.0.code(), Some(0), "round {round}: exit status");
        drop(status.1);
        let (mut acked, mut cut) = (Vec::new(), Vec::new());
        for w in writers {
            let (a, c) = w.await.unwrap();
            acked.extend(a);
            cut.extend(c);
        }
        assert!(cut.is_empty(), "round {round}: responses cut: {cut:?}");
        assert!(acked.len() > 8, "round {round}: the burst made progress");
        let restarted = crate::helpers::ServerProcess::start(data.path(), &[]).await;
        for login in &acked {
            let resp = client
                .get(format!(
                    "{}/api/users/lookup?loginOrEmail={login}",
                    restarted.base
                ))
                .basic_auth("admin", Some(ADMIN_PW))
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                200,
                "round {round}: acknowledged {login} is lost"
            );
        }
        restarted.kill();
    }
}
