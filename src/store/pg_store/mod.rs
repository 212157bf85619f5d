//! The PostgreSQL backend: several tollgate nodes on one database behave as one server.
//!
//! **Why sqlx.** It is the one maintained client with everything first-party: async on
//! tokio (the store traits are async), TLS on rustls with ring (no OpenSSL, no aws-lc), a
//! pool, transactions that roll back when dropped, embedded versioned migrations applied
//! under a PostgreSQL advisory lock (so nodes may start at once), and `PgListener` for
//! LISTEN/NOTIFY. Queries are built at run time (`sqlx::query`), so building needs no
//! database.
//!
//! **The contract, in SQL.** Every trait method that sled does in one transaction is one
//! PostgreSQL transaction here, committed before the method returns (the default
//! `synchronous_commit = on` flushes the WAL at commit; an audited write may defer that
//! flush past its commit and then waits for it before returning, `audit`), so a 2xx means
//! committed and flushed. Narrow updates are `UPDATE ... SET <those columns> WHERE id =
//! $1`; compare-and-swaps put the expected value in the `WHERE`. Invariants across rows (the last Grafana Admin) take a
//! row lock (`SELECT ... FOR UPDATE`) in the same transaction. Uniqueness is enforced by
//! unique indexes (on login and email folded by Rust exactly as the sled backend folds them, not SQL `lower()`, whose result depends on the database locale; per-org names and uids) and a unique
//! violation maps to `StoreError::Conflict`. Counts are `count(*)` queries; DEK reference
//! counts are `count(*) WHERE dek_id = $1`. Secrets stay the envelope service's ciphertext.
//!
//! Files: the pool and errors here; users and orgs, stats and meta (`users.rs`), sessions,
//! API keys, secrets, datasources, settings and license, dashboards and alerts, plugins and
//! notifiers and provisioning runs, roles, the activity series, the audit log (`audit.rs`:
//! every audited write appends its event in its own transaction, the one chain row locked
//! `FOR UPDATE`). The schema is `migrations/`.

mod activity;
mod api_keys;
mod audit;
mod cache;
#[cfg(test)]
mod cache_tests;
mod dashboards;
mod datasources;
mod dump;
mod notifiers;
mod orgs;
mod quotas;
mod roles;
mod secrets;
mod sessions;
mod settings;
#[cfg(test)]
pub mod test_cluster;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use crate::config::{Database, SslMode};
use crate::store::{Job, JobLock, Store, StoreError, StoreResult, Topic};

/// The channel every announcing write notifies, inside its transaction.
const CHANNEL: &str = "tollgate_changes";

/// Inside a writing transaction: bumps the topic's epoch and notifies every node; both take
/// effect only if the transaction commits.
pub(crate) async fn announce_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    topic: Topic,
) -> StoreResult<()> {
    sqlx::query("UPDATE change_epochs SET epoch = epoch + 1 WHERE topic = $1")
        .bind(topic.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(topic.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The embedded, versioned schema.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/pg_store/migrations");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The per-node row cache (`cache.rs`), followed by its own listener.
    cache: std::sync::Arc<cache::RowCache>,
}

/// Maps a database error to the store's: a unique violation names what was taken (the
/// constraint's name ends with the column: `..._login`, `..._email`, `..._name`,
/// `..._uid`); a foreign key on an org is `OrgNotFound`; everything else is I/O.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        match d.code().as_deref() {
            Some("23505") => {
                let c = d.constraint().unwrap_or("");
                for what in ["login", "email", "name", "uid"] {
                    if c.ends_with(what) {
                        return StoreError::Conflict(what);
                    }
                }
                return StoreError::Conflict("key");
            }
            Some("23503") if d.constraint().unwrap_or("").contains("org") => {
                return StoreError::OrgNotFound;
            }
            _ => {}
        }
    }
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Io(other.to_string()),
    }
}

/// Begins a transaction on a connection the caller keeps: an audited write flushes on it
/// after the commit (`audit::Deferred::flushed`), so that its flush reaches the server that
/// committed it.
pub(super) async fn begin(
    conn: &mut sqlx::PgConnection,
) -> StoreResult<sqlx::Transaction<'_, sqlx::Postgres>> {
    sqlx::Connection::begin(conn).await.map_err(db_err)
}

impl PgStore {
    /// Connects with `[database]` (the url wins when set), then applies the migrations.
    pub async fn connect(db: &Database) -> StoreResult<Self> {
        let mut opts = if db.url.is_empty() {
            let mut o = PgConnectOptions::new()
                .database(&db.name)
                .username(&db.user)
                .password(&db.password);
            if db.host.starts_with('/') {
                o = o.socket(&db.host);
            } else {
                let (host, port) = match db.host.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse::<u16>().unwrap_or(5432)),
                    None => (db.host.as_str(), 5432),
                };
                o = o.host(host).port(port);
            }
            o
        } else {
            db.url
                .parse::<PgConnectOptions>()
                .map_err(|e| StoreError::Io(format!("[database] url: {e}")))?
        };
        if db.url.is_empty() || db.ssl_mode != SslMode::Disable {
            opts = opts.ssl_mode(match db.ssl_mode {
                SslMode::Disable => PgSslMode::Disable,
                SslMode::Require => PgSslMode::Require,
                SslMode::VerifyCa => PgSslMode::VerifyCa,
                SslMode::VerifyFull => PgSslMode::VerifyFull,
            });
        }
        if let Some(ca) = &db.ca_cert_path {
            opts = opts.ssl_root_cert(ca);
        }
        if let Some(cert) = &db.client_cert_path {
            opts = opts.ssl_client_cert(cert);
        }
        if let Some(key) = &db.client_key_path {
            opts = opts.ssl_client_key(key);
        }
        let max = if db.max_open_conn == 0 {
            10
        } else {
            db.max_open_conn
        };
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .min_connections(db.max_idle_conn.min(max))
            .max_lifetime(Some(db.conn_max_lifetime).filter(|d| !d.is_zero()))
            // A request that needs the database while it is away fails in bounded time.
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::Io(format!("cannot connect to PostgreSQL: {e}")))?;
        Self::with_pool(pool).await
    }

    /// Applies the migrations (under sqlx's advisory lock) on an existing pool.
    pub async fn with_pool(pool: PgPool) -> StoreResult<Self> {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Io(format!("database migrations failed: {e}")))?;
        let cache = std::sync::Arc::new(cache::RowCache::new());
        cache::follow(pool.clone(), &cache);
        Ok(Self { pool, cache })
    }

    fn cache(&self) -> &cache::RowCache {
        &self.cache
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    async fn healthy(&self) -> bool {
        // A read of the change log within the last 1.5 s proves a round trip through the
        // database; otherwise ask it.
        self.cache.live() || sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every write committed before it returned.
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn flush_count(&self) -> u64 {
        0
    }

    fn latency(&self) -> Option<crate::store::durability::StoreLatency> {
        None
    }

    async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<Topic>>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(db_err)?;
        listener.listen(CHANNEL).await.map_err(db_err)?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let topic = match listener.try_recv().await {
                    Ok(Some(n)) => match Topic::parse(n.payload()) {
                        Some(t) => t,
                        None => continue,
                    },
                    // The connection dropped: the next call reconnects, and whatever was
                    // announced meanwhile is lost, so everything reloads.
                    Ok(None) => Topic::All,
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Topic::All
                    }
                };
                if tx.send(topic).await.is_err() {
                    return; // the node is shutting down
                }
            }
        });
        Ok(Some(rx))
    }

    async fn change_epochs(&self) -> StoreResult<Vec<(Topic, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT topic, epoch FROM change_epochs")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(t, e)| Topic::parse(&t).map(|t| (t, e)))
            .collect())
    }

    async fn announce(&self, topic: Topic) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        announce_in(&mut tx, topic).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn try_job_lock(&self, job: Job) -> StoreResult<Option<JobLock>> {
        // A session-level advisory lock on a connection taken out of the pool: it is held
        // while the lock value lives, and released when the connection closes (the lock is
        // dropped, or the node dies).
        let mut conn = self.pool.acquire().await.map_err(db_err)?.detach();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(job.key())
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
        Ok(got.then(|| JobLock::new(std::sync::Mutex::new(conn))))
    }

    async fn export(&self) -> StoreResult<crate::store::Dump> {
        dump::export(self).await
    }

    async fn import(&self, dump: &crate::store::Dump, replace: bool) -> StoreResult<()> {
        dump::import(self, dump, replace).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(super) mod tests {
    use std::sync::Arc;

    use super::test_cluster::TestCluster;

    /// A store on a new, empty database of the cluster (migrations applied).
    pub(super) async fn fresh_store(cluster: &TestCluster) -> super::PgStore {
        let name = cluster.create_database().await;
        store_on(cluster, &name).await
    }

    /// A store (a node) on an existing database of the cluster.
    pub(super) async fn store_on(cluster: &TestCluster, name: &str) -> super::PgStore {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(cluster.options(name))
            .await
            .expect("connect to the test database");
        super::PgStore::with_pool(pool)
            .await
            .expect("migrations apply")
    }
    use crate::store::{SessionRecord, Store, StoreError};

    /// The store contract suite against a real PostgreSQL the test starts: every test gets
    /// its own empty database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_passes_the_store_contract() {
        let cluster = TestCluster::start();
        let c = &cluster;
        crate::store::contract::run_all(|| async move {
            let s: Arc<dyn Store> = Arc::new(fresh_store(c).await);
            s
        })
        .await;
    }

    /// Export from one database, import into another on the same server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_dump_round_trip() {
        let cluster = TestCluster::start();
        let a: Arc<dyn Store> = Arc::new(fresh_store(&cluster).await);
        let b: Arc<dyn Store> = Arc::new(fresh_store(&cluster).await);
        crate::store::contract::dump_round_trip_between(a, b).await;
    }

    /// The tables import empties and checks are every table of the schema but the change
    /// epochs, the audit log's flush rows (no record in them) and sqlx's own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn import_knows_every_table() {
        let cluster = TestCluster::start();
        let s = fresh_store(&cluster).await;
        let mut tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() \
             AND tablename NOT IN ('change_epochs', 'row_changes', 'audit_flush', '_sqlx_migrations') \
             ORDER BY 1",
        )
        .fetch_all(s.pool())
        .await
        .unwrap();
        let mut listed: Vec<String> = super::dump::RECORD_TABLES
            .split(',')
            .map(|t| t.trim().to_string())
            .collect();
        tables.sort();
        listed.sort();
        assert_eq!(listed, tables);
    }

    /// Sessions and service-account tokens of users the dump does not hold are skipped (the
    /// foreign keys would refuse them); a failed import changes nothing, sequences included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn import_skips_orphans_and_rolls_back_whole() {
        let cluster = TestCluster::start();
        let a: Arc<dyn Store> = Arc::new(fresh_store(&cluster).await);
        let b: Arc<dyn Store> = Arc::new(fresh_store(&cluster).await);
        crate::store::contract::dump_round_trip_between(a.clone(), b.clone()).await;
        let mut dump = a.export().await.unwrap();
        let clean = dump.clone();
        let template = dump.sessions[0].clone();
        dump.sessions.push(SessionRecord {
            id: 900,
            user_id: 999,
            token_hash: [0xEE; 32],
            prev_token_hash: None,
            ..template
        });
        let mut token = dump
            .api_keys
            .iter()
            .find(|k| k.service_account_id.is_some())
            .unwrap()
            .clone();
        token.id = 901;
        token.hash = [0xEF; 32];
        token.name = "orphan".into();
        token.service_account_id = Some(999);
        dump.api_keys.push(token);
        let mut counted = dump.clone();
        let orphans = counted.remove_orphans();
        assert_eq!((orphans.sessions, orphans.tokens), (1, 1));
        assert_eq!(counted, clean);

        let c: Arc<dyn Store> = Arc::new(fresh_store(&cluster).await);
        c.import(&dump, false).await.unwrap();
        assert_eq!(
            c.export().await.unwrap().normalized(),
            clean.clone().normalized()
        );

        // A dump the database refuses (a membership in an org it does not hold) fails as a
        // whole: b keeps its content, and its sequences where they were.
        let next = b
            .create_user(user_named("probe-1"), main_admin())
            .await
            .unwrap()
            .id;
        b.delete_user(crate::domain::UserId(next)).await.unwrap();
        let before = b.export().await.unwrap().normalized();
        let mut bad = clean.clone();
        bad.users[0].memberships.push(crate::store::Membership {
            org_id: 4242,
            role: 1,
        });
        let e = b.import(&bad, true).await.unwrap_err();
        assert!(matches!(e, StoreError::OrgNotFound), "{e:?}");
        assert_eq!(b.export().await.unwrap().normalized(), before);
        let again = b
            .create_user(user_named("probe-2"), main_admin())
            .await
            .unwrap()
            .id;
        assert_eq!(again, next + 1, "the user sequence is where it was");
        assert!(b.get_meta("usage_id").await.unwrap().is_some());
    }

    /// TLS to the database (rustls on ring): `verify-full` with the CA that signed the
    /// server's certificate connects over TLS; with another CA it is refused; `require`
    /// encrypts without checking; `disable` does not encrypt.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_to_the_database() {
        use crate::config::{Database, DatabaseType, SslMode};
        let cluster = TestCluster::start_tls();
        let name = cluster.create_database().await;
        let db = |mode: SslMode, ca: Option<std::path::PathBuf>| Database {
            kind: DatabaseType::Postgres,
            cache_mb: 64,
            host: format!("localhost:{}", cluster.port),
            name: name.clone(),
            user: "postgres".into(),
            password: String::new(),
            url: String::new(),
            ssl_mode: mode,
            ca_cert_path: ca,
            client_cert_path: None,
            client_key_path: None,
            max_open_conn: 2,
            max_idle_conn: 0,
            conn_max_lifetime: std::time::Duration::ZERO,
        };
        async fn encrypted(s: &super::PgStore) -> bool {
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(s.pool())
                .await
                .unwrap()
        }
        let full = super::PgStore::connect(&db(SslMode::VerifyFull, Some(cluster.ca_path())))
            .await
            .expect("verify-full with the right CA connects");
        assert!(encrypted(&full).await, "verify-full runs over TLS");
        let wrong =
            super::PgStore::connect(&db(SslMode::VerifyFull, Some(cluster.other_ca_path()))).await;
        assert!(wrong.is_err(), "a certificate from another CA is refused");
        let required = super::PgStore::connect(&db(SslMode::Require, None))
            .await
            .expect("require connects without a CA");
        assert!(encrypted(&required).await, "require runs over TLS");
        let plain = super::PgStore::connect(&db(SslMode::Disable, None))
            .await
            .expect("disable connects");
        assert!(!encrypted(&plain).await, "disable does not encrypt");
    }

    pub(super) fn user_named(login: &str) -> crate::store::UserRecord {
        crate::store::UserRecord::new(
            login,
            &format!("{login}@example.org"),
            login,
            format!("uid-{login}"),
            1,
        )
    }

    pub(super) fn main_admin() -> crate::store::NewMembership {
        crate::store::NewMembership::Existing(
            crate::domain::OrgId(1),
            crate::domain::OrgRole::Admin,
        )
    }
}
