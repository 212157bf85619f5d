//! Per-node caches of the rows every request reads (a user with its memberships, a session,
//! an API key or service-account token) and of the stats' counts, so that an authenticated
//! GET costs no database round trip, as on sled. Invalidated through the database, never
//! by time:
//!
//! - **Every change is logged with the change.** Triggers on the row tables
//!   (`migrations/0004_row_changes.sql`) insert a `row_changes` row inside the writing
//!   transaction (`u`/`s`/`k` and the id, `c` for a counted table, `*` for a truncation),
//!   whatever code path, node or tool wrote.
//! - **Every node reads the log** when woken (a `NOTIFY` on `tollgate_rows` that the writing
//!   node sends right after its commit) and at least every [`POLL`], from the oldest
//!   transaction still running at its previous read (`pg_snapshot_xmin`), so a transaction
//!   that commits late is read on a later pass, never skipped. It drops the named entries.
//! - **The writing node does not wait for the log**: each write method of this backend drops
//!   what it changed once it has committed ([`RowCache::forget_user`] and friends), so a
//!   request that follows a 2xx on the same node reads the new row.
//! - **A fill never resurrects a stale row.** A read takes the cache's generation before it
//!   asks the database and stores its row only if no invalidation happened since
//!   ([`RowCache::fill`]); every invalidation bumps the generation.
//! - **The cache serves only while the log is being read.** Entries are served only within
//!   [`LIVE_FOR`] of the last successful read of the log; otherwise every read goes to the
//!   database and nothing is stored, and a node that comes back drops everything first.
//!
//! Staleness on another node: the wake-up's delivery and one read of the log (a few
//! milliseconds); [`POLL`] when the wake-up is lost (its connection is cut, the writer died
//! after its commit, the change came from another tool); never more than [`LIVE_FOR`]
//! (1.5 s) when the log cannot be read, after which the node reads through.
//!
//! Why not `NOTIFY` inside the writing transaction: PostgreSQL serialises the commits of
//! notifying transactions (a database-wide lock held through the WAL flush), which measured
//! a third off durable user writes (bench/README.md). The wake-up is sent outside the
//! transaction with `synchronous_commit = off`; losing one only delays a node to its poll.

use std::collections::HashMap;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use sqlx::postgres::{PgListener, PgPool};

use crate::store::lease::Lease;
use crate::store::{ApiKeyRecord, Counts, SessionRecord, UserRecord};

/// The channel of the wake-ups a writing node sends after its commit.
pub(super) const ROW_CHANNEL: &str = "tollgate_rows";
/// How often a node reads the log when nothing woke it.
pub(super) const POLL: Duration = Duration::from_millis(500);
/// How long after the last successful read of the log the cache still serves.
pub(super) const LIVE_FOR: Duration = Duration::from_millis(1500);
/// Log rows older than this are deleted (a node that read nothing for so long is not live
/// and drops everything when it comes back).
const KEEP_LOG: &str = "10 minutes";
/// Entries per map before it is emptied (a bound on memory, not a policy).
const MAX_ENTRIES: usize = 200_000;

/// The stats' aggregates: the counts and the active sessions.
#[derive(Default)]
struct Aggregates {
    counts: Option<Counts>,
    active_sessions: Option<u64>,
}

#[derive(Default)]
struct Maps {
    generation: u64,
    users: HashMap<u64, Arc<UserRecord>>,
    /// `l` + folded login or `e` + folded email -> user id (checked against the row on use).
    names: HashMap<String, u64>,
    sessions: HashMap<u64, Arc<SessionRecord>>,
    /// Current or previous token hash -> session id (checked on use).
    session_hashes: HashMap<[u8; 32], u64>,
    keys: HashMap<u64, Arc<ApiKeyRecord>>,
    key_hashes: HashMap<[u8; 32], u64>,
    aggregates: Aggregates,
}

impl Maps {
    fn clear(&mut self) {
        let generation = self.generation + 1;
        *self = Maps {
            generation,
            ..Maps::default()
        };
    }
}

/// A login or email as the names map keys it: folded as the unique indexes fold it.
fn name_key(name: &str, login: bool) -> String {
    format!(
        "{}{}",
        if login { 'l' } else { 'e' },
        super::users::fold(name)
    )
}

/// What a log row names.
#[derive(Debug, PartialEq, Eq)]
enum Notice {
    User(u64),
    Session(u64),
    Key(u64),
    Counts,
    Everything,
}

fn parse(kind: &str, row_id: Option<i64>) -> Option<Notice> {
    let id = row_id.and_then(|v| u64::try_from(v).ok());
    match (kind, id) {
        ("u", Some(id)) => Some(Notice::User(id)),
        ("s", Some(id)) => Some(Notice::Session(id)),
        ("k", Some(id)) => Some(Notice::Key(id)),
        ("c", _) => Some(Notice::Counts),
        // Anything else (a kind this version does not know): drop everything.
        _ => Some(Notice::Everything),
    }
}

/// A generation taken before a database read; [`RowCache::fill`] stores the row only if it
/// is still current.
#[derive(Clone, Copy)]
pub(super) struct Ticket(Option<u64>);

pub(super) struct RowCache {
    maps: RwLock<Maps>,
    /// Entries may be served while it holds: renewed by each read of the log.
    live: Lease,
    /// Reads served from memory (tests only: no shared counter on the read path).
    #[cfg(test)]
    hits: AtomicU64,
    /// Local writes to announce to the other nodes (the waker task sends one wake-up for
    /// any number of them).
    wake: Arc<tokio::sync::Notify>,
    /// Wake-ups heard: the log is read once for any number of them.
    woken: Arc<tokio::sync::Notify>,
}

impl RowCache {
    pub(super) fn new() -> Self {
        Self {
            maps: RwLock::new(Maps::default()),
            live: Lease::new(),
            #[cfg(test)]
            hits: AtomicU64::new(0),
            wake: Arc::new(tokio::sync::Notify::new()),
            woken: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Whether entries may be served now (the log was read recently).
    pub(super) fn live(&self) -> bool {
        self.live.live()
    }

    /// Reads served from the cache so far.
    #[cfg(test)]
    pub(super) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    fn served<T>(&self, v: Option<T>) -> Option<T> {
        if v.is_some() {
            #[cfg(test)]
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        v
    }

    /// The ticket for a read about to go to the database (none while not live: the row
    /// will not be stored).
    pub(super) fn ticket(&self) -> Ticket {
        if self.live() {
            Ticket(Some(self.maps.read().generation))
        } else {
            Ticket(None)
        }
    }

    fn fill(&self, ticket: Ticket, put: impl FnOnce(&mut Maps)) {
        let Some(generation) = ticket.0 else { return };
        let mut m = self.maps.write();
        if m.generation == generation {
            put(&mut m);
        }
    }

    /// A local write: drops entries, then asks the waker to tell the other nodes.
    fn forget(&self, drop: impl FnOnce(&mut Maps)) {
        {
            let mut m = self.maps.write();
            m.generation += 1;
            drop(&mut m);
        }
        self.wake.notify_one();
    }

    /// What a log row names, dropped (no wake-up: the writer sent it).
    fn invalidate(&self, n: &Notice) {
        let mut m = self.maps.write();
        m.generation += 1;
        match *n {
            Notice::User(id) => {
                m.users.remove(&id);
            }
            Notice::Session(id) => {
                m.sessions.remove(&id);
            }
            Notice::Key(id) => {
                m.keys.remove(&id);
            }
            Notice::Counts => {}
            Notice::Everything => {
                m.clear();
                return;
            }
        }
        m.aggregates = Aggregates::default();
    }

    // --- users -------------------------------------------------------------------------

    pub(super) fn user(&self, id: u64) -> Option<Arc<UserRecord>> {
        if !self.live() {
            return None;
        }
        self.served(self.maps.read().users.get(&id).cloned())
    }

    /// The user whose login (`by_login`) or email is `name`, checked against the row.
    pub(super) fn user_named(&self, name: &str, by_login: bool) -> Option<UserRecord> {
        if !self.live() {
            return None;
        }
        let key = name_key(name, by_login);
        let m = self.maps.read();
        let id = m.names.get(&key)?;
        self.served(
            m.users
                .get(id)
                .filter(|u| name_key(if by_login { &u.login } else { &u.email }, by_login) == key)
                .map(|u| UserRecord::clone(u)),
        )
    }

    pub(super) fn fill_user(&self, ticket: Ticket, user: &Arc<UserRecord>) {
        self.fill(ticket, |m| {
            if m.users.len() >= MAX_ENTRIES || m.names.len() >= MAX_ENTRIES {
                m.users.clear();
                m.names.clear();
            }
            m.names.insert(name_key(&user.login, true), user.id);
            m.names.insert(name_key(&user.email, false), user.id);
            m.users.insert(user.id, Arc::clone(user));
        });
    }

    /// A user row or its memberships changed (the counts may have).
    pub(super) fn forget_user(&self, id: u64) {
        self.forget(|m| {
            m.users.remove(&id);
            m.aggregates = Aggregates::default();
        });
    }

    /// A user went, with its sessions and tokens (`ON DELETE CASCADE`).
    pub(super) fn forget_user_rows(&self, id: u64) {
        self.forget(|m| {
            m.users.remove(&id);
            m.sessions.retain(|_, s| s.user_id != id);
            m.keys.retain(|_, k| k.service_account_id != Some(id));
            m.aggregates = Aggregates::default();
        });
    }

    // --- sessions ----------------------------------------------------------------------

    pub(super) fn session_by_hash(&self, hash: &[u8; 32]) -> Option<Arc<SessionRecord>> {
        if !self.live() {
            return None;
        }
        let m = self.maps.read();
        let id = m.session_hashes.get(hash)?;
        self.served(
            m.sessions
                .get(id)
                .filter(|s| s.token_hash == *hash || s.prev_token_hash.as_ref() == Some(hash))
                .cloned(),
        )
    }

    pub(super) fn fill_session(&self, ticket: Ticket, s: &Arc<SessionRecord>) {
        self.fill(ticket, |m| {
            if m.sessions.len() >= MAX_ENTRIES || m.session_hashes.len() >= MAX_ENTRIES {
                m.sessions.clear();
                m.session_hashes.clear();
            }
            m.session_hashes.insert(s.token_hash, s.id);
            if let Some(prev) = s.prev_token_hash {
                m.session_hashes.insert(prev, s.id);
            }
            m.sessions.insert(s.id, Arc::clone(s));
        });
    }

    /// A session row changed (the active-session count may have).
    pub(super) fn forget_session(&self, id: u64) {
        self.forget(|m| {
            m.sessions.remove(&id);
            m.aggregates = Aggregates::default();
        });
    }

    /// Every session of a user.
    pub(super) fn forget_user_sessions(&self, user: u64) {
        self.forget(|m| {
            m.sessions.retain(|_, s| s.user_id != user);
            m.aggregates = Aggregates::default();
        });
    }

    /// Every session (a statement that changed many of them).
    pub(super) fn forget_sessions(&self) {
        self.forget(|m| {
            m.sessions.clear();
            m.session_hashes.clear();
            m.aggregates = Aggregates::default();
        });
    }

    // --- API keys and tokens -----------------------------------------------------------

    pub(super) fn key_by_hash(&self, hash: &[u8; 32]) -> Option<Arc<ApiKeyRecord>> {
        if !self.live() {
            return None;
        }
        let m = self.maps.read();
        let id = m.key_hashes.get(hash)?;
        self.served(m.keys.get(id).filter(|k| k.hash == *hash).cloned())
    }

    pub(super) fn fill_key(&self, ticket: Ticket, k: &Arc<ApiKeyRecord>) {
        self.fill(ticket, |m| {
            if m.keys.len() >= MAX_ENTRIES || m.key_hashes.len() >= MAX_ENTRIES {
                m.keys.clear();
                m.key_hashes.clear();
            }
            m.key_hashes.insert(k.hash, k.id);
            m.keys.insert(k.id, Arc::clone(k));
        });
    }

    /// A key row changed (the counts may have).
    pub(super) fn forget_key(&self, id: u64) {
        self.forget(|m| {
            m.keys.remove(&id);
            m.aggregates = Aggregates::default();
        });
    }

    // --- aggregates --------------------------------------------------------------------

    pub(super) fn counts(&self) -> Option<Counts> {
        if !self.live() {
            return None;
        }
        self.served(self.maps.read().aggregates.counts)
    }

    pub(super) fn fill_counts(&self, ticket: Ticket, c: &Counts) {
        self.fill(ticket, |m| m.aggregates.counts = Some(*c));
    }

    pub(super) fn active_sessions(&self) -> Option<u64> {
        if !self.live() {
            return None;
        }
        self.served(self.maps.read().aggregates.active_sessions)
    }

    pub(super) fn fill_active_sessions(&self, ticket: Ticket, n: u64) {
        self.fill(ticket, |m| m.aggregates.active_sessions = Some(n));
    }

    /// A counted table changed.
    pub(super) fn forget_counts(&self) {
        self.forget(|m| m.aggregates = Aggregates::default());
    }

    /// Everything (a truncation, an import, a listener that reconnected).
    pub(super) fn forget_all(&self) {
        self.forget(Maps::clear);
    }

    /// A successful read of the log: entries may be served until [`LIVE_FOR`] from now. A
    /// node that was not live drops everything first (it may have missed changes).
    fn read_log_ok(&self) {
        if !self.live() {
            self.maps.write().clear();
        }
        self.live.renew(LIVE_FOR);
    }
}

/// Starts the node's three tasks: the reader of the log (woken, or every [`POLL`]), the
/// listener of wake-ups, and the waker that announces this node's writes. They stop once
/// the cache is dropped (the store is gone).
/// The tasks hold the cache only while they use it, never while they wait.
pub(super) fn follow(pool: PgPool, cache: &Arc<RowCache>) {
    let woken = cache.woken.clone();
    tokio::spawn(read_log(pool.clone(), Arc::downgrade(cache), woken.clone()));
    tokio::spawn(listen(pool.clone(), Arc::downgrade(cache), woken));
    tokio::spawn(send_wakes(pool, Arc::downgrade(cache), cache.wake.clone()));
}

/// Whether the server restarted since the previous read of the log (its start time
/// changed). A restart may have lost transactions that were visible before their flush
/// (audited writes defer theirs, `pg_store::audit`), and rows read from them may be cached.
fn restarted(known: &mut Option<String>, started: &str) -> bool {
    known
        .replace(started.to_string())
        .is_some_and(|k| k != started)
}

/// Reads the log from the oldest transaction still running at the previous read; empties
/// the cache when the server restarted since ([`restarted`]).
async fn read_log(pool: PgPool, weak: Weak<RowCache>, woken: Arc<tokio::sync::Notify>) {
    let mut from: u64 = 0;
    let mut started: Option<String> = None;
    let mut passes: u64 = 0;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        let read = tokio::time::timeout(
            POLL,
            sqlx::query_as::<_, (String, String, Option<String>, Option<i64>)>(
                "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, \
                     pg_postmaster_start_time()::text AS started) \
                 SELECT s.xmin, s.started, c.kind, c.row_id FROM s \
                 LEFT JOIN row_changes c ON c.xid >= $1::text::xid8",
            )
            .bind(from.to_string())
            .fetch_all(&pool),
        )
        .await;
        let Some(cache) = weak.upgrade() else { return };
        match read {
            Ok(Ok(rows)) => {
                if rows.first().is_some_and(|r| restarted(&mut started, &r.1)) {
                    cache.forget_all();
                }
                let mut next = from;
                for (xmin, _, kind, row_id) in &rows {
                    next = xmin.parse().unwrap_or(next);
                    if let Some(n) = kind.as_deref().and_then(|k| parse(k, *row_id)) {
                        cache.invalidate(&n);
                    }
                }
                from = next;
                cache.read_log_ok();
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "cannot read the row change log"),
            Err(_) => tracing::debug!("reading the row change log timed out"),
        }
        passes += 1;
        if passes.is_multiple_of(120) {
            // About once a minute per node; several nodes deleting at once is harmless.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM row_changes WHERE at < now() - interval '{KEEP_LOG}'"
            )))
            .execute(&pool)
            .await;
        }
        drop(cache);
        let _ = tokio::time::timeout(POLL, woken.notified()).await;
    }
}

/// Hears the wake-ups (reconnecting as needed) and hands them to the reader.
async fn listen(pool: PgPool, weak: Weak<RowCache>, woken: Arc<tokio::sync::Notify>) {
    let mut listener: Option<PgListener> = None;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        let Some(l) = listener.as_mut() else {
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(ROW_CHANNEL).await {
                    Ok(()) => {
                        listener = Some(l);
                        // Wake-ups sent meanwhile are lost, and the server may have
                        // restarted: read now.
                        woken.notify_one();
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot listen for row wake-ups"),
                },
                Err(e) => tracing::debug!(error = %e, "cannot connect the row listener"),
            }
            if listener.is_none() {
                tokio::time::sleep(POLL).await;
            }
            continue;
        };
        // Bounded, so that a dropped store is noticed; `try_recv` keeps a partly read
        // message in its buffer when cancelled (sqlx races it against the pool's close).
        match tokio::time::timeout(POLL, l.try_recv()).await {
            Ok(Ok(Some(_))) | Ok(Ok(None)) => {
                // A wake-up, or a reconnection (wake-ups sent meanwhile are lost: read).
                woken.notify_one();
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "row listener failed; reconnecting");
                listener = None;
            }
            Err(_) => {}
        }
    }
}

/// Sends one wake-up for any number of local writes, on its own connection with
/// `synchronous_commit = off` (a wake-up is a hint: it waits for no WAL flush).
async fn send_wakes(pool: PgPool, weak: Weak<RowCache>, wake: Arc<tokio::sync::Notify>) {
    let mut conn: Option<sqlx::PgConnection> = None;
    loop {
        if weak.strong_count() == 0 {
            return;
        }
        if tokio::time::timeout(POLL, wake.notified()).await.is_err() {
            continue; // nothing written; check the store is still there
        }
        if conn.is_none() {
            if let Ok(mut c) = pool.acquire().await {
                if sqlx::query("SET synchronous_commit = off")
                    .execute(&mut *c)
                    .await
                    .is_ok()
                {
                    conn = Some(c.detach());
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = sqlx::query("SELECT pg_notify($1, 'w')")
            .bind(ROW_CHANNEL)
            .execute(&mut *c)
            .await;
        if sent.is_err() {
            conn = None; // the reader's poll covers the lost wake-up
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Notice};

    #[test]
    fn log_rows_parse() {
        assert_eq!(parse("u", Some(42)), Some(Notice::User(42)));
        assert_eq!(parse("s", Some(7)), Some(Notice::Session(7)));
        assert_eq!(parse("k", Some(9)), Some(Notice::Key(9)));
        assert_eq!(parse("c", None), Some(Notice::Counts));
        assert_eq!(parse("*", None), Some(Notice::Everything));
        assert_eq!(parse("u", None), Some(Notice::Everything));
        assert_eq!(parse("u", Some(-1)), Some(Notice::Everything));
        assert_eq!(parse("zz", Some(1)), Some(Notice::Everything));
    }
}
