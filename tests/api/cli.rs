//! The binary: config errors exit 2 naming section, key and value; first start writes the
//! admin password and secret key files 0600; `admin reset-admin-password` works offline.

use std::process::Command;

use reqwest::Method;

use crate::helpers::*;

#[test]
fn bad_config_values_exit_2_with_section_key_and_value() {
    for (var, value, needle) in [
        (
            "GF_SERVER_HTTP_PORT",
            "99999",
            "[server] http_port = \"99999\"",
        ),
        (
            "GF_USERS_AUTO_ASSIGN_ORG_ROLE",
            "Boss",
            "[users] auto_assign_org_role = \"Boss\"",
        ),
        (
            "GF_SECURITY_PASSWORD_HASH_ITERATIONS",
            "many",
            "[security] password_hash_iterations = \"many\"",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(binary())
            .arg("server")
            .env("GF_PATHS_DATA", dir.path())
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn a_missing_config_file_exits_2() {
    let out = Command::new(binary())
        .args(["server", "--config", "/nonexistent/tollgate.ini"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tollgate.ini"));
}

#[test]
fn help_exists_for_each_command() {
    for args in [
        vec!["--help"],
        vec!["server", "--help"],
        vec!["openapi", "--help"],
        vec!["admin", "reset-admin-password", "--help"],
    ] {
        let out = Command::new(binary()).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = Command::new(binary()).arg("openapi").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        tollgate::api::spec_json()
    );
}

#[tokio::test]
async fn first_start_without_admin_password_writes_a_private_password_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Empty env value: the default (no password) stays, so one is generated.
    let server = ServerProcess::start(&data, &[("GF_SECURITY_ADMIN_PASSWORD", "")]).await;
    let pw_file = data.join("initial-admin-password");
    let password = std::fs::read_to_string(&pw_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(password.len() >= 20);
    assert_eq!(
        std::fs::metadata(&pw_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let key_file = data.join("secret.key");
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/api/user", server.base))
        .basic_auth("admin", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{}/api/user", server.base))
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no admin/admin");
}

#[tokio::test]
async fn reset_admin_password_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let app = TestApp::spawn_in(&data, &[]).await;
    let (s, _) = send(app.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 200);
    app.stop().await;
    let out = Command::new(binary())
        .args(["admin", "reset-admin-password", "brand-new-pw"])
        .env("GF_PATHS_DATA", &data)
        .env("GF_SECURITY_PASSWORD_HASH_ITERATIONS", TEST_ITERATIONS)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = TestApp::spawn_in(&data, &[]).await;
    let (s, _) = send(app.as_user(Method::GET, "/api/user", ADMIN, "brand-new-pw")).await;
    assert_eq!(s, 200);
    let (s, _) = send(app.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 401);
}
