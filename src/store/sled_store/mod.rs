//! The sled backend: the only code that names sled. One database with one tree per record
//! kind and one per index; an operation that touches several trees is one sled transaction.
//! Counters (for stats) change in the same transaction as the rows they count, so reading
//! them never scans. Every mutating method ends with a group-committed flush (see
//! [`Durability`]), so its return means "on disk".
//!
//! Files: users and orgs (`users.rs`), sessions, API keys, secrets and DEKs, datasources,
//! settings, license, dashboards and alerts, plugins and notifiers, roles, provisioning runs,
//! the activity series (`activity.rs`), the audit log (`audit.rs`: every audited mutating
//! method adds the `audit` tree to its transaction), and the layout upgrades that run at
//! open (`migrate.rs`). Key layouts live in `keys`.

mod activity;
mod api_keys;
mod audit;
mod dashboards;
mod datasources;
mod dump;
mod license;
mod memo;
mod migrate;
mod notifiers;
mod orgs;
mod quotas;
mod roles;
mod secrets;
mod sessions;
mod settings;
mod users;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::Tree;

use self::audit::Pending;
use self::writer::{Tx, Writer, T, TREE_NAMES};
use super::lease::Lease;
use super::{codec, Durability, Job, JobLock, Store, StoreError, StoreResult, Topic};

pub(crate) type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// Counter names (sled-private: the contract exposes typed [`super::Counts`]).
pub(crate) mod counter {
    pub const USERS: &str = "users";
    pub const GRAFANA_ADMINS: &str = "grafana_admins";
    /// Grafana Admins that are not disabled: the last one may not go, be demoted or be
    /// disabled (nobody could administer the server any more).
    pub const ENABLED_ADMINS: &str = "grafana_admins.enabled";
    pub const ORGS: &str = "orgs";
    pub const ROLE_ADMIN: &str = "role.admin";
    pub const ROLE_EDITOR: &str = "role.editor";
    pub const ROLE_VIEWER: &str = "role.viewer";
    pub const ROLE_NONE: &str = "role.none";
    pub const SERVICE_ACCOUNTS: &str = "service_accounts";
    pub const SESSIONS: &str = "sessions.active";
    pub const API_KEYS: &str = "api_keys";
    pub const DATASOURCES: &str = "datasources";
    pub const DASHBOARDS: &str = "dashboards";
    pub const FOLDERS: &str = "folders";
    pub const TAGS: &str = "tags";
    pub const ALERTS: &str = "alerts";

    /// The reference count of a DEK.
    pub fn dek_refs(id: u32) -> String {
        format!("dek.{id}.refs")
    }

    pub fn for_role(role: Option<crate::domain::OrgRole>) -> &'static str {
        use crate::domain::OrgRole;
        match role {
            Some(OrgRole::Admin) => ROLE_ADMIN,
            Some(OrgRole::Editor) => ROLE_EDITOR,
            Some(OrgRole::Viewer) => ROLE_VIEWER,
            Some(OrgRole::None) | None => ROLE_NONE,
        }
    }
}

/// Key layouts: ids are big-endian so keys sort by id; org-owned keys start with the org.
pub(crate) mod keys {
    pub fn id(id: u64) -> [u8; 8] {
        id.to_be_bytes()
    }

    pub fn pair(a: u64, b: u64) -> [u8; 16] {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&a.to_be_bytes());
        k[8..].copy_from_slice(&b.to_be_bytes());
        k
    }

    /// org (8 bytes, big-endian) then the name or uid.
    pub fn org_named(org: u64, name: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(8 + name.len());
        k.extend_from_slice(&org.to_be_bytes());
        k.extend_from_slice(name.as_bytes());
        k
    }

    pub fn read_u64(v: Option<&[u8]>) -> u64 {
        v.and_then(|b| b.get(..8)?.try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0)
    }
}

pub(crate) use keys::read_u64;

/// All of tollgate's trees in one sled database.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    /// Renewed by each successful health read, for [`HEALTH_KEPT`].
    health: Arc<Lease>,
    durability: Durability,
    /// Every mutating method holds a read guard while it writes; the export holds the
    /// write guard for its whole scan, so it sees one point in time (sled has no
    /// snapshots and its transactions cannot scan). Writers wait at most one export.
    writes: Arc<tokio::sync::RwLock<()>>,
    /// Runs the request-path writes' transactions, several at a time (`writer.rs`).
    writer: Arc<Writer>,
    /// Every tree, in [`T`]'s order (the dump's and the import's list).
    trees: Arc<[Tree]>,
    /// Moves after every committed write (the writer's batches, [`SledStore::durable`], the
    /// import), before its caller is answered.
    changes: Arc<AtomicU64>,
    /// The last [`super::Counts`] read and the `changes` value read before it: stats read
    /// it without walking the counters tree until a write moves `changes`.
    counts_memo: Arc<parking_lot::Mutex<Option<(u64, super::Counts)>>>,
    /// Held exclusively while the audit log is pruned (one pruning at a time), shared by
    /// the readers that walk its records: a pruning that cuts a run stores its newer
    /// events again under a new key, which a walk without the lock could meet twice
    /// (`audit.rs`).
    audit_prune: Arc<parking_lot::RwLock<()>>,
    /// Users, sessions and API keys as read while `changes` had its current value
    /// (`memo.rs`).
    memo: Arc<memo::Memos>,
    users: Tree,
    by_login: Tree,
    by_email: Tree,
    by_uid: Tree,
    orgs: Tree,
    /// Org name (exact) -> org id.
    orgs_by_name: Tree,
    /// Org id -> `OrgAddressRecord` (orgs whose address was set).
    org_addresses: Tree,
    org_members: Tree,
    /// Last-seen time (8 bytes, big-endian, sign bit flipped) and user id -> nothing: the
    /// users seen recently, so that the stats' activity reads them, not every user. An
    /// entry is checked against the user's row when read (a deleted user's stays behind).
    users_by_seen: Tree,
    counters: Tree,
    meta: Tree,
    sessions: Tree,
    sessions_by_hash: Tree,
    sessions_by_user: Tree,
    api_keys: Tree,
    api_keys_by_hash: Tree,
    api_keys_by_name: Tree,
    deks: Tree,
    secrets: Tree,
    secret_deks: Tree,
    datasources: Tree,
    ds_by_uid: Tree,
    ds_by_name: Tree,
    settings: Tree,
    license: Tree,
    dashboards: Tree,
    folders: Tree,
    alerts: Tree,
    alerts_by_panel: Tree,
    plugin_settings: Tree,
    notifiers: Tree,
    roles: Tree,
    roles_by_name: Tree,
    provisioning_runs: Tree,
    /// `o`/`u`, owner id, target -> a quota limit.
    quotas: Tree,
    /// Span tag and bucket start -> the counters of the activity series (`activity.rs`).
    activity_series: Tree,
    /// The audit log: `e` + number -> an event or a run of them, `chain` -> the chain
    /// (`audit.rs`).
    audit: Tree,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

pub(crate) fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Io(e.to_string()),
    }
}

pub(crate) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

pub(crate) fn enc<T: serde::Serialize>(v: &T) -> TxResult<Vec<u8>> {
    codec::encode(v).map_err(ConflictableTransactionError::Abort)
}

pub(crate) fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> TxResult<T> {
    codec::decode(b).map_err(ConflictableTransactionError::Abort)
}

/// Adds `delta` to a counter inside a transaction.
pub(crate) fn bump(tx: &TransactionalTree, name: &str, delta: i64) -> TxResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let cur = read_u64(tx.get(name)?.as_deref());
    let new = if delta < 0 {
        cur.saturating_sub(delta.unsigned_abs())
    } else {
        cur.saturating_add(delta as u64)
    };
    tx.insert(name, &new.to_be_bytes())?;
    Ok(())
}

/// Allocates the next id of a sequence kept in the meta tree (ids start at 1).
pub(crate) fn next_id(meta: &TransactionalTree, sequence: &str) -> TxResult<u64> {
    let id = read_u64(meta.get(sequence)?.as_deref()).max(1);
    meta.insert(sequence, &(id + 1).to_be_bytes())?;
    Ok(id)
}

/// Every row of a tree, decoded.
pub(crate) fn all<T: serde::de::DeserializeOwned>(tree: &Tree) -> StoreResult<Vec<T>> {
    tree.iter()
        .map(|item| {
            let (_, v) = item?;
            codec::decode(&v)
        })
        .collect()
}

/// Every row under a key prefix, decoded.
pub(crate) fn all_with_prefix<T: serde::de::DeserializeOwned>(
    tree: &Tree,
    prefix: &[u8],
) -> StoreResult<Vec<T>> {
    tree.scan_prefix(prefix)
        .map(|item| {
            let (_, v) = item?;
            codec::decode(&v)
        })
        .collect()
}

pub(crate) fn get<T: serde::de::DeserializeOwned>(
    tree: &Tree,
    key: impl AsRef<[u8]>,
) -> StoreResult<Option<T>> {
    tree.get(key)?.map(|v| codec::decode(&v)).transpose()
}

/// sled's page cache when the configuration says nothing: `[database] cache_mb` = 8.
pub const DEFAULT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

fn open_raw(path: &Path, cache_bytes: u64) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .mode(sled::Mode::HighThroughput)
        .open()
}

/// Whether an open failed because another handle holds the database's file lock (sled
/// reports it as `Other`, naming the lock).
fn held_by_another(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().starts_with("could not acquire lock"))
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    if held_by_another(&e) {
        StoreError::Io(format!(
            "the database in {} is in use by another tollgate process",
            path.display()
        ))
    } else {
        StoreError::Io(format!("cannot open {}: {e}", path.display()))
    }
}

/// A shutdown checkpoint. sled 0.34 writes its snapshot (where each page lives) only while
/// it opens a database, and every open replays the log written since the last snapshot:
/// after a busy day, the next start reads it all (over 300 ms with 100,000 users after a
/// minute of writes). Opening the database once more as a clean stop ends moves that
/// replay to the stop, where nobody waits for it, as PostgreSQL's shutdown checkpoint
/// does. `Ok(false)`: another handle still holds the database (nothing done).
pub fn checkpoint(path: &Path) -> StoreResult<bool> {
    match open_raw(path, 1024 * 1024) {
        Ok(db) => {
            db.flush()?;
            Ok(true)
        }
        Err(e) if held_by_another(&e) => Ok(false),
        Err(e) => Err(open_error(path, e)),
    }
}

impl SledStore {
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// `cache_bytes` bounds sled's page cache (`[database] cache_mb`).
    pub fn open_with_cache(path: &Path, cache_bytes: u64) -> StoreResult<Self> {
        let db = open_raw(path, cache_bytes).map_err(|e| open_error(path, e))?;
        let store = Self::from_db(db)?;
        migrate::upgrade(&store)?;
        store.count_enabled_admins()?;
        store.index_org_names()?;
        store.index_last_seen(false)?;
        Ok(store)
    }

    fn from_db(db: sled::Db) -> StoreResult<Self> {
        let flusher = db.clone();
        let durability =
            Durability::new(move || flusher.flush().map(|_| ()).map_err(StoreError::from));
        let trees = TREE_NAMES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<sled::Result<Vec<_>>>()?;
        let tree = |t: T| trees[t as usize].clone();
        let changes = Arc::new(AtomicU64::new(0));
        Ok(Self {
            health: Arc::new(Lease::new()),
            writes: Arc::new(tokio::sync::RwLock::new(())),
            users: tree(T::Users),
            by_login: tree(T::ByLogin),
            by_email: tree(T::ByEmail),
            by_uid: tree(T::ByUid),
            orgs: tree(T::Orgs),
            orgs_by_name: tree(T::OrgsByName),
            org_addresses: tree(T::OrgAddresses),
            org_members: tree(T::OrgMembers),
            users_by_seen: tree(T::UsersBySeen),
            counters: tree(T::Counters),
            meta: tree(T::Meta),
            sessions: tree(T::Sessions),
            sessions_by_hash: tree(T::SessionsByHash),
            sessions_by_user: tree(T::SessionsByUser),
            api_keys: tree(T::ApiKeys),
            api_keys_by_hash: tree(T::ApiKeysByHash),
            api_keys_by_name: tree(T::ApiKeysByName),
            deks: tree(T::Deks),
            secrets: tree(T::Secrets),
            secret_deks: tree(T::SecretDeks),
            datasources: tree(T::Datasources),
            ds_by_uid: tree(T::DsByUid),
            ds_by_name: tree(T::DsByName),
            settings: tree(T::Settings),
            license: tree(T::License),
            dashboards: tree(T::Dashboards),
            folders: tree(T::Folders),
            alerts: tree(T::Alerts),
            alerts_by_panel: tree(T::AlertsByPanel),
            plugin_settings: tree(T::PluginSettings),
            notifiers: tree(T::Notifiers),
            roles: tree(T::Roles),
            roles_by_name: tree(T::RolesByName),
            provisioning_runs: tree(T::ProvisioningRuns),
            quotas: tree(T::Quotas),
            activity_series: tree(T::ActivitySeries),
            audit: tree(T::Audit),
            writer: Arc::new(Writer::start(
                trees.clone(),
                durability.clone(),
                changes.clone(),
            )?),
            changes,
            counts_memo: Arc::new(parking_lot::Mutex::new(None)),
            audit_prune: Arc::default(),
            memo: Arc::new(memo::Memos::default()),
            trees: trees.into(),
            durability,
            db,
        })
    }

    /// Waits for the group commit that covers every write made so far, then hands back
    /// the write's result: what every mutating method returns through.
    pub(crate) async fn durable<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        self.changed();
        let value = result?;
        self.durability.wait().await?;
        Ok(value)
    }

    /// Marks that a write committed (see `changes`).
    pub(crate) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// The `changes` counter, as a memoized read takes it before it asks sled.
    pub(crate) fn seen(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// `counts` memoized until the next write: `read` walks the counters tree.
    pub(crate) fn memo_counts(
        &self,
        read: impl FnOnce() -> StoreResult<super::Counts>,
    ) -> StoreResult<super::Counts> {
        let seen = self.changes.load(Ordering::Acquire);
        if let Some((at, counts)) = *self.counts_memo.lock() {
            if at == seen {
                return Ok(counts);
            }
        }
        let counts = read()?;
        *self.counts_memo.lock() = Some((seen, counts));
        Ok(counts)
    }

    /// Held by every mutating method while it writes (see `writes`). Not re-entrant: a
    /// method that holds it calls no other method that takes it.
    pub(crate) async fn write_gate(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.writes.read().await
    }

    /// Runs `change` in the writer, committed and flushed with the changes of concurrent
    /// callers (`writer.rs`): its return means "on disk". Holds the export gate until the
    /// change is committed.
    pub(crate) async fn write<R, F>(&self, change: F) -> StoreResult<R>
    where
        F: Fn(&Tx<'_>) -> TxResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let gate = self.writes.clone().read_owned().await;
        self.writer.write(gate, change).await
    }

    /// As [`SledStore::write`], for a change that records the request's audit event (it
    /// calls [`Pending::record`] where it knows it changes something).
    pub(crate) async fn write_audited<R, F>(&self, change: F) -> StoreResult<R>
    where
        F: Fn(&Tx<'_>, &Pending) -> TxResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let gate = self.writes.clone().read_owned().await;
        let pending = Arc::new(Pending::take());
        let recorder = pending.clone();
        let r = self
            .writer
            .write(gate, move |tx| {
                recorder.start_attempt();
                change(tx, &recorder)
            })
            .await;
        pending.settle_committed(r)
    }

    /// Runs a scan on the blocking pool (sled iterates synchronously).
    pub(crate) async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&SledStore) -> StoreResult<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| StoreError::Io(format!("scan task failed: {e}")))?
    }
}

/// A successful health read is good for a second (Grafana keeps its database check for
/// five; the PostgreSQL backend counts a change-log read within 1.5 s): `/api/health`
/// polled hard costs one tree read a second, not one a request. A failure is never kept.
const HEALTH_KEPT: std::time::Duration = std::time::Duration::from_secs(1);

#[async_trait]
impl Store for SledStore {
    async fn healthy(&self) -> bool {
        if self.health.live() {
            return true;
        }
        let ok = self.meta.get(b"__health").is_ok();
        if ok {
            self.health.renew(HEALTH_KEPT);
        }
        ok
    }

    async fn flush(&self) -> StoreResult<()> {
        self.durability.wait().await
    }

    fn backend(&self) -> &'static str {
        "sled"
    }

    fn flush_count(&self) -> u64 {
        self.durability.flush_count()
    }

    fn latency(&self) -> Option<crate::store::durability::StoreLatency> {
        Some(self.durability.latency())
    }

    // One node owns a sled folder (sled locks it), so there is nothing to follow and every
    // job lock is granted.
    async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<Topic>>> {
        Ok(None)
    }

    async fn change_epochs(&self) -> StoreResult<Vec<(Topic, i64)>> {
        Ok(Vec::new())
    }

    async fn announce(&self, _topic: Topic) -> StoreResult<()> {
        Ok(())
    }

    async fn try_job_lock(&self, _job: Job) -> StoreResult<Option<JobLock>> {
        Ok(Some(JobLock::new(())))
    }

    async fn export(&self) -> StoreResult<super::Dump> {
        // Writers pause for the scan (one consistent point in time); readers do not.
        let _pause = self.writes.write().await;
        self.blocking(|s| s.export_sync()).await
    }

    async fn import(&self, dump: &super::Dump, replace: bool) -> StoreResult<()> {
        let dump = dump.clone();
        let _pause = self.writes.write().await;
        let r = self.blocking(move |s| s.import_sync(&dump, replace)).await;
        self.changed();
        r
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use crate::store::{MetaStore, Store};

    /// Stats read memoized counts; every kind of write moves them: changes through the
    /// writer, one in a transaction of its own, and an import.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memoized_counts_follow_every_kind_of_write() {
        use crate::domain::{OrgId, OrgRole};
        use crate::store::{NewMembership, StatsStore, UserStore};
        let dir = tempfile::tempdir().unwrap();
        let s = super::SledStore::open(&dir.path().join("db")).unwrap();
        s.ensure_org(OrgId(1), "Main Org.", 0).await.unwrap();
        let member = || NewMembership::Existing(OrgId(1), OrgRole::Viewer);
        assert_eq!(s.counts().await.unwrap().users, 0);
        s.create_user(crate::store::contract::user("alice"), member())
            .await
            .unwrap();
        let c = s.counts().await.unwrap();
        assert_eq!((c.users, c.orgs), (1, 1));
        let dump = s.export().await.unwrap();
        s.ensure_org(OrgId(5), "Other", 0).await.unwrap();
        assert_eq!(s.counts().await.unwrap().orgs, 2);
        s.delete_org(OrgId(5), &[]).await.unwrap();
        assert_eq!(s.counts().await.unwrap().orgs, 1);
        s.create_user(crate::store::contract::user("bob"), member())
            .await
            .unwrap();
        assert_eq!(s.counts().await.unwrap().users, 2);
        // A write in a transaction of its own ends in `durable`, which moves them too.
        s.counters
            .insert(super::counter::USERS, &7u64.to_be_bytes())
            .unwrap();
        s.durable(Ok(())).await.unwrap();
        assert_eq!(s.counts().await.unwrap().users, 7);
        s.import(&dump, true).await.unwrap();
        assert_eq!(s.counts().await.unwrap().users, 1);
    }

    /// The checkpoint leaves an open database alone, and loses nothing of a closed one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoint_waits_for_the_handle_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = super::SledStore::open(&path).unwrap();
        store.set_meta("k", b"v").await.unwrap();
        store.flush().await.unwrap();
        assert!(
            !super::checkpoint(&path).unwrap(),
            "the store is still open"
        );
        drop(store);
        let mut done = false;
        for _ in 0..100 {
            done = super::checkpoint(&path).unwrap();
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(done, "the closed database was checkpointed");
        let store = super::SledStore::open(&path).unwrap();
        assert_eq!(
            store.get_meta("k").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }

    /// The store contract suite against sled: every test gets its own empty database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_passes_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU64::new(0);
        crate::store::contract::run_all(|| {
            let path = dir.path().join(format!(
                "db{}",
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ));
            async move {
                let s: Arc<dyn Store> = crate::store::open_sled_for_tests(&path).await.unwrap();
                s
            }
        })
        .await;
    }

    /// Export from one sled store, import into another.
    /// Every mutating method waits at the write gate while an export holds it (what
    /// makes the export one point in time), and goes on once it is released.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_wait_while_an_export_holds_the_gate() {
        use crate::store::{MetaStore, UserStore};
        let dir = tempfile::tempdir().unwrap();
        let store = super::SledStore::open(&dir.path().join("db")).unwrap();
        let held = store.writes.clone().write_owned().await;
        let writes = [
            tokio::spawn({
                let s = store.clone();
                async move { s.set_meta("k", b"v").await }
            }),
            tokio::spawn({
                let s = store.clone();
                async move { s.ensure_org(crate::domain::OrgId(1), "Main Org.", 0).await }
            }),
        ];
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(writes.iter().all(|w| !w.is_finished()), "writes wait");
        assert_eq!(
            store.get_meta("k").await.unwrap(),
            None,
            "nothing written yet"
        );
        drop(held);
        for w in writes {
            w.await.unwrap().unwrap();
        }
        assert_eq!(store.get_meta("k").await.unwrap(), Some(b"v".to_vec()));
    }

    /// A folder written before the last-seen index existed gets it on open, so the stats'
    /// activity still counts its users (and it is built once, not on every open).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_seen_index_is_built_for_an_older_folder() {
        use crate::store::{ActivityWindows, StatsStore, UserStore};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let windows = ActivityWindows {
            active_after: 0,
            daily_after: 0,
            month_start: 0,
            sessions_after_ms: 0,
        };
        {
            let store = super::SledStore::open(&path).unwrap();
            let u = crate::store::contract::user("seen");
            let u = store
                .create_user(
                    u,
                    crate::store::NewMembership::NewOrg(
                        "seen".into(),
                        crate::domain::OrgRole::Viewer,
                    ),
                )
                .await
                .unwrap();
            store
                .touch_last_seen(crate::domain::UserId(u.id), 10)
                .await
                .unwrap();
            assert_eq!(
                store.activity(windows).await.unwrap().monthly_active_users,
                1
            );
            // What an older folder looks like: no index, no mark.
            store.users_by_seen.clear().unwrap();
            store.meta.remove(super::users::LAST_SEEN_INDEXED).unwrap();
            assert_eq!(
                store.activity(windows).await.unwrap().monthly_active_users,
                0
            );
            store.db.flush().unwrap();
        }
        let store = super::SledStore::open(&path).unwrap();
        assert_eq!(
            store.activity(windows).await.unwrap().monthly_active_users,
            1
        );
        assert!(store
            .meta
            .get(super::users::LAST_SEEN_INDEXED)
            .unwrap()
            .is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_dump_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let a = crate::store::open_sled_for_tests(&dir.path().join("a"))
            .await
            .unwrap();
        let b = crate::store::open_sled_for_tests(&dir.path().join("b"))
            .await
            .unwrap();
        crate::store::contract::dump_round_trip_between(a, b).await;
    }
}
