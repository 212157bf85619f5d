//! Several tollgate nodes on one PostgreSQL behave as one server: a change made through one
//! node is what every node answers, at once on the node that made it and, on the others,
//! as soon as the change's notice arrives (every node caches users, credentials, sessions,
//! keys, roles, settings overrides and the active data key, and LISTEN/NOTIFY invalidates
//! them as the change commits: milliseconds; `BOUND` is the test's generous limit).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::postgres::TestCluster;

const SECRET: &str = "multinode-shared-secret-key-0123456789";
/// A cached change must show on every node within this (notification latency; the epoch
/// poll is the slower safety net).
const BOUND: Duration = Duration::from_secs(3);

struct Nodes {
    _cluster: TestCluster,
    nodes: Vec<TestApp>,
}

async fn nodes(n: usize) -> Nodes {
    nodes_with(n, &[]).await
}

async fn nodes_with(n: usize, extra: &[(&str, &str, &str)]) -> Nodes {
    let cluster = TestCluster::start();
    let db = cluster.create_database().await;
    let url = cluster.url(&db);
    let mut nodes = Vec::new();
    for _ in 0..n {
        let mut overrides = vec![
            ("database", "type", "postgres"),
            ("database", "url", url.as_str()),
            ("security", "secret_key", SECRET),
        ];
        overrides.extend_from_slice(extra);
        nodes.push(TestApp::spawn_with(&overrides).await);
    }
    Nodes {
        _cluster: cluster,
        nodes,
    }
}

/// Retries `check` until it holds or `BOUND` passes; how long it took.
async fn within<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < BOUND, "{what}: not within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_answer_as_one_server() {
    let ns = nodes(3).await;
    let (a, b, c) = (&ns.nodes[0], &ns.nodes[1], &ns.nodes[2]);

    // Create on A, read on B and C.
    let id = a.create_user("shared", "shared-pw-1").await;
    for n in [b, c] {
        let (s, u) = send(n.admin(Method::GET, &format!("/api/users/{id}"))).await;
        assert_eq!((s, u["login"].clone()), (200, json!("shared")));
        let (s, _) = send(n.as_user(Method::GET, "/api/user", "shared", "shared-pw-1")).await;
        assert_eq!(s, 200, "the new user signs in on every node");
    }

    // A password change on B: the old password is refused on A and C at once (their
    // Basic-credential caches re-check the row), the new one works everywhere.
    let (s, v) = send(
        b.admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({"password": "shared-pw-2"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = send(b.as_user(Method::GET, "/api/user", "shared", "shared-pw-1")).await;
    assert_eq!(s, 401, "old password refused at once where it was changed");
    for n in [a, c] {
        within("old password refused on another node", || async {
            send(n.as_user(Method::GET, "/api/user", "shared", "shared-pw-1"))
                .await
                .0
                == 401
        })
        .await;
        let (s, _) = send(n.as_user(Method::GET, "/api/user", "shared", "shared-pw-2")).await;
        assert_eq!(s, 200);
    }

    // A session made on A works on C; disabling on B ends it everywhere.
    let token = a.login("shared", "shared-pw-2").await;
    let (s, _) = send(c.with_session(Method::GET, "/api/user", &token)).await;
    assert_eq!(s, 200, "a session is valid on every node");
    let (s, _) = send(b.admin(Method::POST, &format!("/api/admin/users/{id}/disable"))).await;
    assert_eq!(s, 200);
    for n in [a, c] {
        within("the disabled user's session ends on every node", || async {
            send(n.with_session(Method::GET, "/api/user", &token))
                .await
                .0
                == 401
        })
        .await;
        let (s, _) = send(n.as_user(Method::GET, "/api/user", "shared", "shared-pw-2")).await;
        assert_eq!(
            s, 401,
            "the disabled user's password is refused on every node"
        );
    }
    let (s, _) = send(c.admin(Method::POST, &format!("/api/admin/users/{id}/enable"))).await;
    assert_eq!(s, 200);

    // Delete on C: gone on A.
    let other = c.create_user("doomed", "doomed-pw-1").await;
    let (s, _) = send(c.admin(Method::DELETE, &format!("/api/admin/users/{other}"))).await;
    assert_eq!(s, 200);
    within("a deleted user is gone on another node", || async {
        send(a.admin(Method::GET, &format!("/api/users/{other}")))
            .await
            .0
            == 404
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_state_follows_changes_made_on_another_node() {
    let ns = nodes(2).await;
    let (a, b) = (&ns.nodes[0], &ns.nodes[1]);
    let id = a.create_user("reader", "reader-pw-1").await;

    // Roles: a role made and assigned on A grants on B.
    let (s, _) = send(b.as_user(Method::GET, "/api/admin/stats", "reader", "reader-pw-1")).await;
    assert_eq!(s, 403);
    let (s, v) = send(
        a.admin(Method::POST, "/api/access-control/roles")
            .json(&json!({
                "uid": "stats-reader", "name": "custom:stats:reader",
                "permissions": [{"action": "server.stats:read"}],
            })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(
        a.admin(
            Method::POST,
            &format!("/api/access-control/users/{id}/roles"),
        )
        .json(&json!({"roleUid": "stats-reader"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let took = within("role assignment on B", || async {
        send(b.as_user(Method::GET, "/api/admin/stats", "reader", "reader-pw-1"))
            .await
            .0
            == 200
    })
    .await;
    eprintln!("role assignment reached node B in {took:?}");

    // Settings overrides: an auth.saml change on B is what A answers.
    let (s, v) = send(b.admin(Method::PUT, "/api/admin/settings").json(&json!({
        "updates": {"auth.saml": {"enabled": "true"}}
    })))
    .await;
    assert_eq!(s, 200, "{v}");
    let took = within("settings override on A", || async {
        let (_, all): (u16, Value) = send(a.admin(Method::GET, "/api/admin/settings")).await;
        all["auth.saml"]["enabled"] == "true"
    })
    .await;
    eprintln!("settings override reached node A in {took:?}");

    // Data keys: after a rotation on A, B encrypts with the new key.
    let (_, before): (u16, Value) =
        send(b.admin(Method::GET, "/api/admin/encryption/status")).await;
    let (s, v) = send(a.admin(Method::POST, "/api/admin/encryption/rotate-data-keys")).await;
    assert!((200..300).contains(&s), "{s} {v}");
    let (_, after): (u16, Value) = send(a.admin(Method::GET, "/api/admin/encryption/status")).await;
    assert_ne!(
        before["activeDataKeyId"], after["activeDataKeyId"],
        "{before} {after}"
    );
    let active = after["activeDataKeyId"].clone();
    within("active data key on B", || async {
        let (_, st): (u16, Value) =
            send(b.admin(Method::GET, "/api/admin/encryption/status")).await;
        st["activeDataKeyId"] == active
    })
    .await;
    let (s, v) = send(b.admin(Method::POST, "/api/datasources").json(&json!({
        "name": "made-on-b", "type": "prometheus", "access": "proxy",
        "url": "http://x", "secureJsonData": {"password": "p"},
    })))
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, st): (u16, Value) = send(a.admin(Method::GET, "/api/admin/encryption/status")).await;
    let refs = st["dataKeys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["id"] == active))
        .map(|k| k["references"].clone());
    assert_eq!(
        refs,
        Some(json!(1)),
        "B sealed the new secret with the new key: {st}"
    );
}

/// The database stopped under a running node: requests that need it answer 503 in bounded
/// time, the health check says so, nothing is acknowledged without a commit, and the node
/// recovers by itself when the database returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_survives_the_database_going_away() {
    let ns = nodes(1).await;
    let a = &ns.nodes[0];
    let id = a.create_user("steady", "steady-pw-1").await;
    ns._cluster.stop_server();

    let start = Instant::now();
    let (s, v) = send(a.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(
        message(&v),
        "The database is unavailable; retry in a moment"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        start.elapsed()
    );
    let (s, v) = send(
        a.admin(Method::POST, "/api/admin/users")
            .json(&json!({"login": "while-down", "password": "while-down-pw"})),
    )
    .await;
    assert!(
        s >= 500,
        "a write is never acknowledged without a commit: {s} {v}"
    );
    let (s, h) = send(a.req(Method::GET, "/api/health")).await;
    assert_eq!((s, h["database"].clone()), (503, json!("failing")));

    ns._cluster.start_server();
    within_secs(15, "the node recovers", || async {
        send(a.admin(Method::GET, &format!("/api/users/{id}")))
            .await
            .0
            == 200
    })
    .await;
    let (s, h) = send(a.req(Method::GET, "/api/health")).await;
    assert_eq!((s, h["database"].clone()), (200, json!("ok")));
    let (s, _) = send(a.admin(Method::GET, "/api/users/lookup?loginOrEmail=while-down")).await;
    assert_eq!(
        s, 404,
        "the write made while the database was away did not happen"
    );
}

async fn within_secs<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "{what}: not within {secs}s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Two server processes on one database: SIGKILL one while it acknowledges writes; every
/// acknowledged write is there through the other, and the job locks the dead node held are
/// free again (its connection closed with it), so the survivor takes its jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_node_loses_no_acknowledged_write() {
    use tollgate::store::Job;
    let cluster = TestCluster::start();
    let db = cluster.create_database().await;
    let url = cluster.url(&db);
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("GF_DATABASE_TYPE", "postgres"),
        ("GF_DATABASE_URL", url.as_str()),
        ("GF_SECURITY_SECRET_KEY", SECRET),
    ];
    let first = ServerProcess::start(&dir.path().join("a"), &envs).await;
    let second = ServerProcess::start(&dir.path().join("b"), &envs).await;
    let client = reqwest::Client::new();
    // Eight writers create users in a loop until the node dies; the kill comes once ten
    // creates were acknowledged, so it lands in the middle of writes.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = client.clone();
        let url = format!("{}/api/admin/users", first.base);
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = Vec::new();
            for i in 0.. {
                let login = format!("killed-{w}-{i}");
                let r = c
                    .post(&url)
                    .basic_auth(ADMIN, Some(ADMIN_PW))
                    .json(&json!({"login": login, "password": "killedpw"}))
                    .send()
                    .await;
                match r.map(|r| r.status().as_u16()) {
                    Ok(200) => {
                        ok.push(login);
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    _ => return ok,
                }
            }
            ok
        }));
    }
    let start = Instant::now();
    while acked.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no writes acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.kill();
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    assert!(
        !acknowledged.is_empty(),
        "some writes were acknowledged before the kill"
    );
    eprintln!("{} writes acknowledged before SIGKILL", acknowledged.len());
    for login in &acknowledged {
        let r = client
            .get(format!(
                "{}/api/users/lookup?loginOrEmail={login}",
                second.base
            ))
            .basic_auth(ADMIN, Some(ADMIN_PW))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{login} was acknowledged but is missing");
    }
    // The dead node's job locks are free: a store on the same database takes them.
    let mut settings = settings_for(&dir.path().join("probe"), &[]);
    settings.database.kind = tollgate::config::DatabaseType::Postgres;
    settings.database.url = url.clone();
    let store = tollgate::store::open(&settings.data_path, &settings.database)
        .await
        .unwrap();
    for job in [Job::LicenseRenewal, Job::SessionPurge, Job::Provisioning] {
        let lock = store.try_job_lock(job).await.unwrap();
        assert!(lock.is_some(), "{job:?} is free after the node died");
    }
    drop(second);
}

/// The license: each node keeps the database's token in memory, and an upload on one node
/// is what the node reports at once and every other node within the bound (the upload's
/// `NOTIFY` drops their copy); so is a removal on another node. A node that read the token
/// before the change (its copy cached) does not keep serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_license_is_what_every_node_reports() {
    use tollgate::crypto::jws::SigningKey;
    use tollgate::domain::license::LicenseClaims;
    const ROOT: &str = "http://tollgate.test/";
    let key = SigningKey::generate().unwrap();
    let keys = key.public().to_config();
    let ns = nodes_with(
        2,
        &[
            ("server", "root_url", ROOT),
            ("enterprise", "license_issuer_keys", keys.as_str()),
        ],
    )
    .await;
    let (a, b) = (&ns.nodes[0], &ns.nodes[1]);
    let t = tollgate::domain::time::system_now();
    let claims = LicenseClaims {
        jti: "jti-multi".into(),
        iss: "test-issuer".into(),
        sub: ROOT.into(),
        iat: t,
        exp: t + 10 * 86_400,
        nbf: t - 86_400,
        lexp: t + 365 * 86_400,
        lid: "multi".into(),
        included_users: 3,
        update_days: 1,
        prod: vec!["grafana-enterprise".into()],
        company: "ACME".into(),
        ..Default::default()
    };
    let token = key.sign(&serde_json::to_vec(&claims).unwrap());
    let check = |n: &TestApp| {
        let req = n.admin(Method::GET, "/api/licensing/check");
        async move { send(req).await.1 == json!(true) }
    };
    assert!(!check(a).await && !check(b).await, "no license yet");
    let (s, v) = send(
        a.admin(Method::POST, "/api/licensing/token")
            .json(&json!({ "token": token })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(check(a).await, "uploaded on A, valid on A at once");
    let took = within("the upload on A, valid on B", || check(b)).await;
    eprintln!("license upload seen by the other node after {took:?}");
    let (s, v) = send(
        b.admin(Method::DELETE, "/api/licensing/token")
            .json(&json!({ "instance": ROOT })),
    )
    .await;
    assert!((200..300).contains(&s), "{s} {v}");
    assert!(!check(b).await, "removed on B, gone on B at once");
    within("the removal on B, gone on A", || async { !check(a).await }).await;
}

/// LDAP: a reload on one node makes every node re-read its own `ldap.toml` (within the
/// bound); a node whose file does not load keeps its previous configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ldap_reload_on_one_node_applies_on_all() {
    use tollgate::domain::{OrgId, OrgRole};
    let slapd = crate::slapd::Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = |viewers: &str| {
        format!(
            r#"
[[servers]]
host = "127.0.0.1"
port = {port}
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "{pw}"
timeout = 3
search_filter = "(uid=%s)"
search_base_dns = ["ou=users,dc=example,dc=org"]

[servers.attributes]
name = "givenName"
surname = "sn"
username = "uid"
member_of = "memberOf"
email = "mail"

[[servers.group_mappings]]
group_dn = "cn=viewers,ou=groups,dc=example,dc=org"
org_role = "{viewers}"
"#,
            port = slapd.port,
            pw = crate::slapd::ADMIN_PW,
        )
    };
    let (fa, fb) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&fa, conf("Viewer")).unwrap();
    std::fs::write(&fb, conf("Viewer")).unwrap();
    let cluster = TestCluster::start();
    let db = cluster.create_database().await;
    let url = cluster.url(&db);
    let mut apps = Vec::new();
    for f in [&fa, &fb] {
        let f = f.to_string_lossy().to_string();
        apps.push(
            TestApp::spawn_with(&[
                ("database", "type", "postgres"),
                ("database", "url", url.as_str()),
                ("security", "secret_key", SECRET),
                ("auth.ldap", "enabled", "true"),
                ("auth.ldap", "config_file", f.as_str()),
                ("auth.ldap", "allow_sign_up", "true"),
            ])
            .await,
        );
    }
    let (a, b) = (&apps[0], &apps[1]);
    let role_via = |n: &TestApp| {
        let req = n.as_user(Method::GET, "/api/user", "carol", "carol-pw");
        let store = n.services.store.clone();
        async move {
            let (s, _) = send(req).await;
            assert_eq!(s, 200);
            let u = store.user_by_login("carol").await.unwrap().unwrap();
            u.role_in(OrgId(1))
        }
    };
    assert_eq!(role_via(b).await, Some(OrgRole::Viewer));
    // Both files change; only A is told to reload; B follows.
    std::fs::write(&fa, conf("Editor")).unwrap();
    std::fs::write(&fb, conf("Editor")).unwrap();
    let (s, v) = send(a.admin(Method::POST, "/api/admin/ldap/reload")).await;
    assert_eq!(s, 200, "{v}");
    let took = within("B reloads its ldap.toml", || async {
        role_via(b).await == Some(OrgRole::Editor)
    })
    .await;
    eprintln!("LDAP reload reached node B in {took:?}");
    // A broken file on B: B keeps its previous configuration.
    std::fs::write(&fb, "this is not toml [").unwrap();
    std::fs::write(&fa, conf("Viewer")).unwrap();
    let (s, v) = send(a.admin(Method::POST, "/api/admin/ldap/reload")).await;
    assert_eq!(s, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        role_via(a).await,
        Some(OrgRole::Viewer),
        "A applied its new file"
    );
    assert_eq!(
        role_via(b).await,
        Some(OrgRole::Editor),
        "B kept its last good configuration"
    );
}

/// A job runs once across nodes: with the license due for renewal and the issuer failing,
/// two nodes ticking at once (and again right after) make one renewal attempt, counted at
/// the issuer's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_renewal_runs_once_across_nodes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tollgate::crypto::jws::SigningKey;
    use tollgate::domain::license::LicenseClaims;
    const ROOT: &str = "http://tollgate.test/";
    // The "issuer": counts connections and closes them (every attempt fails).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/renew", listener.local_addr().unwrap());
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    let key = SigningKey::generate().unwrap();
    let keys = key.public().to_config();
    let ns = nodes_with(
        2,
        &[
            ("server", "root_url", ROOT),
            ("enterprise", "license_issuer_keys", keys.as_str()),
            ("enterprise", "auto_refresh_license", "true"),
            ("enterprise", "license_url", issuer.as_str()),
        ],
    )
    .await;
    let (a, b) = (&ns.nodes[0], &ns.nodes[1]);
    let t = tollgate::domain::time::system_now();
    let claims = LicenseClaims {
        jti: "jti-due".into(),
        iss: "test-issuer".into(),
        sub: ROOT.into(),
        iat: t - 2 * 86_400,
        exp: t + 10 * 86_400,
        nbf: t - 3 * 86_400,
        lexp: t + 365 * 86_400,
        lid: "due".into(),
        included_users: 3,
        update_days: 1,
        prod: vec!["grafana-enterprise".into()],
        company: "ACME".into(),
        ..Default::default()
    };
    let token = key.sign(&serde_json::to_vec(&claims).unwrap());
    // Counted from before the upload: a node's own housekeeping tick (its first runs at
    // start-up, late on a busy machine) may be the one that renews; it takes the same lock
    // and sees the same record, so the total is still one.
    let before = attempts.load(Ordering::SeqCst);
    let (s, v) = send(
        a.admin(Method::POST, "/api/licensing/token")
            .json(&json!({ "token": token })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Ticks on both nodes at once until one attempts (a housekeeping tick that holds the
    // lock makes these return at once, so a fixed number of them may all miss), then
    // three more pairs: no other attempt follows.
    let start = std::time::Instant::now();
    while attempts.load(Ordering::SeqCst) == before {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no renewal attempt"
        );
        tokio::join!(
            a.services.licensing.auto_renew_tick(),
            b.services.licensing.auto_renew_tick()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for _ in 0..3 {
        tokio::join!(
            a.services.licensing.auto_renew_tick(),
            b.services.licensing.auto_renew_tick()
        );
    }
    assert_eq!(
        attempts.load(Ordering::SeqCst) - before,
        1,
        "one renewal attempt across the nodes in this interval"
    );
}
