//! The per-node row cache against a real PostgreSQL: two stores on one database are two
//! nodes. A node serves repeated reads from memory, sees its own writes at once, and sees
//! another node's writes as soon as it reads them in the change log (bounded here by
//! `BOUND`, measured and printed); a node whose listener is cut still reads the log on its
//! poll, and a node that cannot read the log stops serving from memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use super::test_cluster::TestCluster;
use super::tests::{fresh_store, main_admin, store_on, user_named};
use super::PgStore;
use crate::crypto::{PasswordHash, PasswordScheme};
use crate::domain::UserId;
use crate::store::{
    ApiKeyRecord, ApiKeyStore, SessionRecord, SessionStore, StatsStore, Store, UserStore,
};

/// How long another node may take to see a change (the notice's delivery); generous for a
/// loaded CI machine, far below any time-based expiry.
const BOUND: Duration = Duration::from_secs(2);

/// Two nodes (two pools) on one new database, both reading the change log.
pub(super) async fn two_nodes(cluster: &TestCluster) -> (PgStore, PgStore) {
    let a = fresh_store(cluster).await;
    let name: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(a.pool())
        .await
        .unwrap();
    a.ensure_org(crate::domain::OrgId(1), "Main Org.", 0)
        .await
        .unwrap();
    let b = store_on(cluster, &name).await;
    for s in [&a, &b] {
        wait_live(s).await;
    }
    (a, b)
}

/// The database a node is on.
pub(super) async fn database_of(s: &PgStore) -> String {
    sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(s.pool())
        .await
        .unwrap()
}

/// Runs `sql` (with the user's id as `$1`) in a transaction that commits without waiting
/// for its flush, as a deferred audited write's does: on a cluster from
/// `TestCluster::start_crashable`, a crash soon after loses it.
pub(super) async fn commit_unflushed(s: &PgStore, sql: &'static str, user: u64) {
    let mut tx = s.pool().begin().await.unwrap();
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql)
        .bind(super::users::id(user))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Stops the cluster as a crash would and starts it again; how long that took.
pub(super) async fn crash_and_restart(cluster: &std::sync::Arc<TestCluster>) -> Duration {
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        c.crash_server();
        c.start_server();
        start.elapsed()
    })
    .await
    .unwrap()
}

/// A connection of its own (the pools' connections broke in a crash).
pub(super) async fn connect(cluster: &TestCluster, db: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect_with(&cluster.options(db))
        .await
        .unwrap()
}

async fn wait_live(s: &PgStore) {
    let start = Instant::now();
    while !s.cache().live() {
        assert!(
            start.elapsed() < BOUND,
            "the node never read the change log"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `check` on node `b` until it holds; returns how long that took.
async fn seen_within<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            let took = start.elapsed();
            eprintln!("{what}: seen by the other node after {took:?}");
            return took;
        }
        assert!(start.elapsed() < BOUND, "{what}: not seen within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads the user on `s` until a read is served from memory (the creation's own log entry
/// may drop the first fill).
async fn served_from_memory(s: &PgStore, uid: UserId) {
    let start = Instant::now();
    loop {
        let hits = s.cache().hits();
        s.user(uid).await.unwrap();
        if s.cache().hits() > hits {
            return;
        }
        assert!(start.elapsed() < BOUND, "never served from memory");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn hash(n: u8) -> PasswordHash {
    PasswordHash {
        scheme: PasswordScheme::Pbkdf2Sha256,
        iterations: 1000,
        salt: vec![n; 16],
        hash: vec![n; 32],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serve_from_memory_and_follow_each_other() {
    let cluster = TestCluster::start();
    let (a, b) = two_nodes(&cluster).await;
    let u = a
        .create_user(user_named("carol"), main_admin())
        .await
        .unwrap();
    let uid = UserId(u.id);

    // Repeated reads on b come from memory.
    served_from_memory(&b, uid).await;
    let before = b.cache().hits();
    for _ in 0..3 {
        assert_eq!(b.user(uid).await.unwrap().unwrap().login, "carol");
        assert_eq!(b.user_by_login("CAROL").await.unwrap().unwrap().id, u.id);
        assert_eq!(
            b.user_by_email("carol@example.org")
                .await
                .unwrap()
                .unwrap()
                .id,
            u.id
        );
    }
    assert!(b.cache().hits() >= before + 6, "reads were not cached");

    // A password change on a is refused on b once its notice arrived.
    a.set_password(uid, hash(7), 1).await.unwrap();
    seen_within("password change", || async {
        b.user(uid).await.unwrap().unwrap().password == Some(hash(7))
    })
    .await;
    // ... and on a itself at once (no notice awaited).
    b.user(uid).await.unwrap();
    b.set_disabled(uid, true, 2).await.unwrap();
    assert!(b.user(uid).await.unwrap().unwrap().is_disabled);
    seen_within("disable", || async {
        a.user(uid).await.unwrap().unwrap().is_disabled
    })
    .await;

    // A renamed login stops resolving on the other node.
    a.user_by_login("carol").await.unwrap().unwrap();
    b.update_profile(
        uid,
        &crate::store::ProfileChange {
            login: Some("carla".into()),
            ..Default::default()
        },
        3,
    )
    .await
    .unwrap();
    assert!(b.user_by_login("carol").await.unwrap().is_none());
    seen_within("rename", || async {
        a.user_by_login("carol").await.unwrap().is_none()
            && a.user_by_login("carla").await.unwrap().is_some()
    })
    .await;

    // Sessions: a revocation on a is seen on b.
    let s = a
        .create_session(SessionRecord {
            id: 0,
            user_id: u.id,
            token_hash: [3; 32],
            prev_token_hash: None,
            prev_valid_until_ms: 0,
            client_ip: String::new(),
            user_agent: String::new(),
            auth_module: String::new(),
            created_ms: 1,
            seen_ms: 1,
            rotated_ms: 1,
            revoked_ms: None,
        })
        .await
        .unwrap();
    assert!(b.session_by_hash(&[3; 32]).await.unwrap().is_some());
    assert!(b.session_by_hash(&[3; 32]).await.unwrap().is_some());
    a.revoke_session(s.id, 5).await.unwrap();
    seen_within("session revocation", || async {
        b.session_by_hash(&[3; 32])
            .await
            .unwrap()
            .is_some_and(|s| s.revoked_ms.is_some())
    })
    .await;
    // A rotation on b: the new token resolves on a, the one before the previous does not.
    let rotated = b
        .rotate_session(s.id, &[3; 32], [4; 32], 10, 6)
        .await
        .unwrap();
    assert!(rotated.is_none(), "a revoked session does not rotate");

    // API keys: a deletion on b is seen on a.
    let k = b
        .create_api_key(ApiKeyRecord {
            id: 0,
            org_id: 1,
            name: "k".into(),
            role: 1,
            hash: [9; 32],
            expires: None,
            created: 1,
            last_used: None,
            service_account_id: None,
        })
        .await
        .unwrap();
    assert!(a.api_key_by_hash(&[9; 32]).await.unwrap().is_some());
    assert!(a.api_key_by_hash(&[9; 32]).await.unwrap().is_some());
    b.delete_api_key(k.id).await.unwrap();
    assert!(b.api_key_by_hash(&[9; 32]).await.unwrap().is_none());
    seen_within("API key deletion", || async {
        a.api_key_by_hash(&[9; 32]).await.unwrap().is_none()
    })
    .await;

    // Counts: cached on b, changed by a user created on a.
    let users = b.counts().await.unwrap().users;
    assert_eq!(b.counts().await.unwrap().users, users);
    a.create_user(user_named("dave"), main_admin())
        .await
        .unwrap();
    assert_eq!(a.counts().await.unwrap().users, users + 1);
    seen_within("a new user in the counts", || async {
        b.counts().await.unwrap().users == users + 1
    })
    .await;
    let active = b.active_session_count().await.unwrap();
    a.create_session(SessionRecord {
        id: 0,
        token_hash: [5; 32],
        revoked_ms: None,
        ..s.clone()
    })
    .await
    .unwrap();
    seen_within("a new session in the counts", || async {
        b.active_session_count().await.unwrap() == active + 1
    })
    .await;

    // A deleted user (and its sessions) is gone on both.
    a.user(uid).await.unwrap().unwrap();
    b.delete_user(uid).await.unwrap();
    assert!(b.user(uid).await.unwrap().is_none());
    seen_within("user deletion", || async {
        a.user(uid).await.unwrap().is_none() && a.session_by_hash(&[3; 32]).await.unwrap().is_none()
    })
    .await;
}

/// A write made with plain SQL (another tool, an operator's fix) reaches every node too:
/// the notices come from triggers, not from tollgate's code paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_outside_tollgate_invalidates_every_node() {
    let cluster = TestCluster::start();
    let (a, b) = two_nodes(&cluster).await;
    let u = a
        .create_user(user_named("erin"), main_admin())
        .await
        .unwrap();
    for s in [&a, &b] {
        assert!(!s.user(UserId(u.id)).await.unwrap().unwrap().is_disabled);
    }
    sqlx::query("UPDATE users SET is_disabled = true WHERE id = $1")
        .bind(super::users::id(u.id))
        .execute(a.pool())
        .await
        .unwrap();
    for s in [&a, &b] {
        seen_within("a plain UPDATE", || async {
            s.user(UserId(u.id)).await.unwrap().unwrap().is_disabled
        })
        .await;
    }
}

/// A node whose wake-up listener is cut still follows every change through its poll of
/// the log, and never serves a stale row meanwhile for longer than the poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_listener_falls_back_to_the_poll() {
    let cluster = TestCluster::start();
    let (a, b) = two_nodes(&cluster).await;
    let u = a
        .create_user(user_named("frank"), main_admin())
        .await
        .unwrap();
    let uid = UserId(u.id);
    served_from_memory(&b, uid).await;

    for round in 0..3 {
        // Cut every listener's connection, then change the row at once.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .execute(a.pool())
        .await
        .unwrap();
        a.set_disabled(uid, round % 2 == 0, round).await.unwrap();
        let took = seen_within("a change while the listener is cut", || async {
            b.user(uid).await.unwrap().unwrap().is_disabled == (round % 2 == 0)
        })
        .await;
        // The poll's bound, with slack for a loaded machine (the reconnection usually
        // triggers a read at once).
        assert!(
            took <= super::cache::POLL + Duration::from_secs(1),
            "{took:?}"
        );
    }
    assert!(b.cache().live() && b.healthy().await);
}

/// A node that cannot read the log stops serving from memory within `LIVE_FOR`, and
/// drops everything before it serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_read_the_log_stops_serving() {
    let cluster = TestCluster::start();
    let (a, b) = two_nodes(&cluster).await;
    let u = a
        .create_user(user_named("gina"), main_admin())
        .await
        .unwrap();
    let uid = UserId(u.id);
    served_from_memory(&b, uid).await;
    // The log disappears under b (as if the database were unreachable for it).
    sqlx::query("ALTER TABLE row_changes RENAME TO row_changes_away")
        .execute(a.pool())
        .await
        .unwrap();
    let start = Instant::now();
    while b.cache().live() {
        assert!(
            start.elapsed() < super::cache::LIVE_FOR + Duration::from_secs(1),
            "still live without the log"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hits = b.cache().hits();
    b.user(uid).await.unwrap();
    assert_eq!(
        b.cache().hits(),
        hits,
        "not served from memory while not live"
    );
    sqlx::query("ALTER TABLE row_changes_away RENAME TO row_changes")
        .execute(a.pool())
        .await
        .unwrap();
    wait_live(&b).await;
}

/// Whether `s` reads the user's name as `name` (a read that fails, as on a connection a
/// restart broke, does not).
async fn named(s: &PgStore, uid: UserId, name: &str) -> bool {
    matches!(s.user(uid).await, Ok(Some(u)) if u.name == name)
}

/// A change visible before its flush (as a deferred audited commit is, `pg_store::audit`)
/// and lost in a crash is not served from memory once the server is back, however fast
/// the restart (here well inside `LIVE_FOR`, which alone would keep the nodes serving): the
/// next read of the log sees the server's new start time and empties the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_empties_the_cache() {
    let cluster = std::sync::Arc::new(TestCluster::start_crashable());
    let (a, b) = two_nodes(&cluster).await;
    let u = a
        .create_user(user_named("hugo"), main_admin())
        .await
        .unwrap();
    let uid = UserId(u.id);
    let db = database_of(&a).await;
    commit_unflushed(&a, "UPDATE users SET name = 'lost' WHERE id = $1", u.id).await;
    for s in [&a, &b] {
        seen_within("the unflushed change", || named(s, uid, "lost")).await;
        served_from_memory(s, uid).await;
    }
    let took = crash_and_restart(&cluster).await;
    eprintln!("the restart took {took:?}");
    // The change is gone from the database (read on a connection of its own: the pools'
    // connections broke)...
    let mut conn = connect(&cluster, &db).await;
    let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
        .bind(super::users::id(u.id))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(name, u.name, "the unflushed change survived the crash");
    // ...and from every node's memory.
    for s in [&a, &b] {
        seen_within("the restart", || named(s, uid, &u.name)).await;
    }
}
