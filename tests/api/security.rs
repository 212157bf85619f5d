//! Security hardening seen from outside: response headers on every kind of page, file
//! modes of the data folder, lookalike logins, the last Grafana Admin's lockout guards.

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

async fn headers_of(app: &TestApp, path: &str) -> (u16, reqwest::header::HeaderMap) {
    let resp = app.req(Method::GET, path).send().await.unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} in {h:?}"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for (path, status, kind) in [
        ("/", 200, "ui"),
        ("/app.js", 200, "ui"),
        ("/api/health", 200, "api"),
        ("/api/users", 401, "api"),
        ("/api/nothing-here", 404, "api"),
        ("/openapi.json", 200, "api"),
        ("/swagger/", 200, "swagger"),
    ] {
        let (s, h) = headers_of(&app, path).await;
        assert_eq!(s, status, "{path}");
        assert_eq!(header(&h, "x-frame-options"), "DENY", "{path}");
        assert_eq!(header(&h, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&h, "referrer-policy"), "same-origin", "{path}");
        let csp = header(&h, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"));
        match kind {
            "ui" => assert_eq!(
                script_src,
                Some("script-src 'self'"),
                "no inline scripts: {csp}"
            ),
            "api" => assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}"),
            _ => assert!(script_src.is_some_and(|s| s.contains("'self'")), "{csp}"),
        }
    }
    // Errors produced outside the handlers (a wrong method) carry them as well.
    let resp = app
        .admin(Method::PATCH, "/api/health")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(header(resp.headers(), "x-frame-options"), "DENY");
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        }
        out.push(p);
    }
}

/// The binary creates its data folder 0700 and every file in it 0600 whatever the shell's
/// umask; a file another user can read is named in a start-up warning.
#[cfg(unix)]
#[tokio::test]
async fn data_folder_is_private_and_loose_modes_are_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &[]).await;
    let (s, b) = send(
        reqwest::Client::new()
            .post(format!("{}/api/admin/users", server.base))
            .basic_auth(ADMIN, Some(ADMIN_PW))
            .json(&json!({"login": "bob", "password": "bob-pass-1"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    drop(server);
    assert_eq!(mode(&data), 0o700);
    let mut all = Vec::new();
    walk(&data, &mut all);
    assert!(all.len() > 3, "{all:?}");
    for p in &all {
        let m = mode(p);
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(m, want, "{} is {m:o}", p.display());
    }

    // An operator loosens a file: the next start names it.
    let loose = all.iter().find(|p| p.is_file()).unwrap().clone();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("server.log");
    let port = free_port();
    let mut child = std::process::Command::new(binary())
        .arg("server")
        .env("GF_PATHS_DATA", &data)
        .env("GF_SERVER_HTTP_ADDR", "127.0.0.1")
        .env("GF_SERVER_HTTP_PORT", port.to_string())
        .env("GF_SECURITY_PASSWORD_HASH_ITERATIONS", TEST_ITERATIONS)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_healthy(&format!("http://127.0.0.1:{port}")).await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("readable by other users") && text.contains(&*loose.to_string_lossy()),
        "{text}"
    );
}

/// The only enabled Grafana Admin cannot lock everyone out: disabling, demoting or deleting
/// it is refused with a reason; with another enabled admin it works, and a disabled
/// admin does not count.
#[tokio::test]
async fn the_last_enabled_grafana_admin_cannot_be_disabled_demoted_or_deleted() {
    let app = TestApp::spawn().await;
    let (s, b) = send(app.admin(Method::POST, "/api/admin/users/1/disable")).await;
    assert_eq!(
        (s, message(&b)),
        (400, "cannot disable the last enabled grafana admin"),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 200, "still signed in: {b}");

    // A second admin, disabled: it does not count.
    let root = app.create_user("root2", "root2-pass-1").await;
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{root}/permissions"))
            .json(&json!({"isGrafanaAdmin": true})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::POST, &format!("/api/admin/users/{root}/disable"))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(
        app.admin(Method::PUT, "/api/admin/users/1/permissions")
            .json(&json!({"isGrafanaAdmin": false})),
    )
    .await;
    assert_eq!(
        (s, message(&b)),
        (400, "cannot remove last grafana admin"),
        "{b}"
    );
    let (s, b) = send(app.admin(Method::POST, "/api/admin/users/1/disable")).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = send(app.admin(Method::DELETE, "/api/admin/users/1")).await;
    assert_eq!(
        (s, message(&b)),
        (400, "cannot remove last grafana admin"),
        "{b}"
    );

    // Enabled again, root2 counts: the first admin may now be disabled (by root2).
    let (s, b) = send(app.admin(Method::POST, &format!("/api/admin/users/{root}/enable"))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.as_user(
        Method::POST,
        "/api/admin/users/1/disable",
        "root2",
        "root2-pass-1",
    ))
    .await;
    assert_eq!(s, 200, "{b}");
}

/// `tollgate admin reset-admin-password` is the way back for a disabled admin: it sets the
/// password and enables the account, and says so.
#[tokio::test]
async fn reset_admin_password_enables_a_disabled_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = TestApp::spawn_in(&data, &[]).await;
    let root = app.create_user("root2", "root2-pass-1").await;
    let (s, b) = send(
        app.admin(Method::PUT, &format!("/api/admin/users/{root}/permissions"))
            .json(&json!({"isGrafanaAdmin": true})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.as_user(
        Method::POST,
        "/api/admin/users/1/disable",
        "root2",
        "root2-pass-1",
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = send(app.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 401, "disabled");
    app.stop().await;
    let out = std::process::Command::new(binary())
        .args(["admin", "reset-admin-password", "brand-new-pw"])
        .env("GF_PATHS_DATA", &data)
        .env("GF_SECURITY_PASSWORD_HASH_ITERATIONS", TEST_ITERATIONS)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("enabled again"), "{stdout}");
    let app = TestApp::spawn_in(&data, &[]).await;
    let (s, b) = send(app.as_user(Method::GET, "/api/user", ADMIN, "brand-new-pw")).await;
    assert_eq!(s, 200, "{b}");
}

/// Logins and emails are NFKC-normalised: a fullwidth or otherwise compatible lookalike of
/// an existing login is a duplicate; invisible and reordering characters are refused with
/// the character named.
#[tokio::test]
async fn lookalike_logins_are_refused_or_collide() {
    let app = TestApp::spawn().await;
    let create = |login: &str| {
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": login, "password": "a-long-pass-1"}))
    };
    for (login, named) in [
        ("admin\u{200b}", "U+200B"),
        ("\u{202e}admin", "U+202E"),
        ("ad\u{2066}min", "U+2066"),
        ("bob\u{e000}", "U+E000"),
        ("carol\u{0378}", "U+0378"),
        ("dave\u{7}", "U+0007"),
    ] {
        let (s, b) = send(create(login)).await;
        assert_eq!(s, 400, "{login:?}: {b}");
        assert!(
            message(&b).starts_with("login must not contain") && message(&b).contains(named),
            "{login:?}: {b}"
        );
    }
    // Fullwidth letters and a ligature normalise to an existing login: a duplicate.
    for login in ["ａｄｍｉｎ", "ADMIN", "\u{FB01}"] {
        if login == "\u{FB01}" {
            let (s, b) = send(create("fi")).await;
            assert_eq!(s, 200, "{b}");
        }
        let (s, b) = send(create(login)).await;
        assert_eq!(s, 412, "{login:?} is taken: {b}");
    }
    // The stored login is the normalised one.
    let (s, b) = send(create("ｅｖｅ")).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = send(app.admin(Method::GET, "/api/users/lookup?loginOrEmail=eve")).await;
    assert_eq!((s, b["login"].as_str()), (200, Some("eve")), "{b}");
    // Emails too.
    let (s, b) = send(
        app.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "frank", "email": "frank\u{200d}@example.org", "password": "a-long-pass-1"})),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(message(&b).starts_with("email must not contain"), "{b}");
}

/// Slow and greedy clients: connections that trickle their request head are closed after
/// `header_read_timeout`; one address cannot hold more than `max_connections_per_ip`
/// connections; a body that does not arrive within `read_timeout` is answered 408. Normal
/// clients from another address keep being served at once meanwhile.
#[tokio::test]
async fn slow_clients_are_cut_off_and_do_not_starve_others() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&[
        ("server", "header_read_timeout", "1s"),
        ("server", "read_timeout", "1s"),
        ("server", "max_connections_per_ip", "8"),
    ])
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();

    // 20 slowloris connections from 127.0.0.1, each sending a header byte every 200 ms.
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let addr = addr.clone();
        slow.push(tokio::spawn(async move {
            let Ok(mut c) = tokio::net::TcpStream::connect(&addr).await else {
                return (false, Duration::ZERO);
            };
            let t = Instant::now();
            let _ = c
                .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
                .await;
            let mut buf = [0u8; 256];
            for _ in 0..50 {
                // A closed connection shows as EOF or an error on read or write.
                if c.write_all(b"X").await.is_err() {
                    return (true, t.elapsed());
                }
                match tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return (true, t.elapsed()),
                    _ => {}
                }
            }
            (false, t.elapsed())
        }));
    }
    // Meanwhile a normal client from another address is served promptly, every time.
    let other = app.client_from("127.0.0.2");
    for _ in 0..10 {
        let t = Instant::now();
        let r = other.get(app.url("/api/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut closed_early = 0;
    for t in slow {
        let (closed, after) = t.await.unwrap();
        assert!(closed, "every slow connection is closed");
        if after < Duration::from_millis(500) {
            closed_early += 1; // over the per-address cap: closed at once
        } else {
            assert!(
                after < Duration::from_secs(4),
                "closed by the header deadline: {after:?}"
            );
        }
    }
    assert!(
        closed_early >= 12,
        "at most 8 held at once: {closed_early} refused"
    );
    assert!(started.elapsed() < Duration::from_secs(8));

    // A body that stalls: 408 after read_timeout.
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/admin/users HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"login\":",
        base64_admin()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

/// The header-read deadline runs from the end of the last response: a keep-alive
/// connection that keeps sending requests stays open past it, and one that falls idle is
/// closed once it has been idle that long.
#[tokio::test]
async fn idle_keep_alive_connections_close_after_the_header_deadline() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&[("server", "header_read_timeout", "1s")]).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 4096];
    // Five requests 600 ms apart: 3 s in all, each gap within the deadline.
    for i in 0..5 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        c.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "request {i}");
    }
    // Then idle: closed after about a second, not at once.
    let t = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(4), c.read(&mut buf))
        .await
        .expect("closed within the deadline")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let after = t.elapsed();
    assert!(after >= Duration::from_millis(900), "{after:?}");
}

fn base64_admin() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN}:{ADMIN_PW}"))
}
