//! Per-node caches of the rows every request reads (a user with its memberships, a session,
//! an API key or service-account token) and of the stats' counts, so that an authenticated
//! GET costs no database round trip, as on sled. Invalidated through the database, never
//! by time:
//!
//! - **Every node hears of every change.** Triggers on the row tables
//!   (`migrations/0004_row_notices.sql`) send a notice on channel `tollgate_rows` inside the
//!   writing transaction (`u<id>`, `s<id>`, `k<id>`, `c` for a counted table, `*` for a
//!   truncation), whatever code path or node wrote; PostgreSQL delivers them after the
//!   commit, in commit order. The node's listener drops the named entries.
//! - **The writing node does not wait for its own notice**: each write method of this
//!   backend drops what it changed once it has committed ([`RowCache::forget_user`] and
//!   friends), so a request that follows a 2xx on the same node reads the new row.
//! - **A fill never resurrects a stale row.** A read takes the cache's generation before it
//!   asks the database and stores its row only if no invalidation happened since
//!   ([`RowCache::fill`]); every invalidation bumps the generation.
//! - **The cache serves only while the listener is proven live.** The listener sends itself
//!   a heartbeat notice every [`HEARTBEAT`]; because notices arrive in commit order, hearing
//!   one proves every notice committed before it was heard. Entries are served only within
//!   [`LIVE_FOR`] of the last heartbeat heard; otherwise every read goes to the database and
//!   nothing is stored. A listener that reconnects (notices sent while it was away are lost)
//!   drops everything.
//!
//! Worst-case staleness on another node: the delivery of one notice (a few milliseconds on
//! a LAN) while the listener is healthy; [`LIVE_FOR`] (1.5 s) if its connection dies without
//! a reset, after which the node reads through until it hears itself again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use sqlx::postgres::{PgListener, PgPool};

use crate::store::{ApiKeyRecord, Counts, SessionRecord, UserRecord};

/// The channel the row triggers and the heartbeats notify.
pub(super) const ROW_CHANNEL: &str = "tollgate_rows";
/// How often the listener sends itself a heartbeat.
pub(super) const HEARTBEAT: Duration = Duration::from_millis(500);
/// How long after the last heartbeat heard the cache still serves.
pub(super) const LIVE_FOR: Duration = Duration::from_millis(1500);
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
    users: HashMap<u64, UserRecord>,
    /// `l` + folded login or `e` + folded email -> user id (checked against the row on use).
    names: HashMap<String, u64>,
    sessions: HashMap<u64, SessionRecord>,
    /// Current or previous token hash -> session id (checked on use).
    session_hashes: HashMap<[u8; 32], u64>,
    keys: HashMap<u64, ApiKeyRecord>,
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

/// What a notice names.
#[derive(Debug, PartialEq, Eq)]
enum Notice {
    User(u64),
    Session(u64),
    Key(u64),
    Counts,
    Everything,
    Heartbeat(String),
}

fn parse(payload: &str) -> Option<Notice> {
    let (kind, rest) = payload.split_at_checked(1)?;
    match kind {
        "u" => rest.parse().ok().map(Notice::User),
        "s" => rest.parse().ok().map(Notice::Session),
        "k" => rest.parse().ok().map(Notice::Key),
        "c" if rest.is_empty() => Some(Notice::Counts),
        "*" if rest.is_empty() => Some(Notice::Everything),
        "p" => Some(Notice::Heartbeat(rest.to_string())),
        _ => None,
    }
}

/// A generation taken before a database read; [`RowCache::fill`] stores the row only if it
/// is still current.
#[derive(Clone, Copy)]
pub(super) struct Ticket(Option<u64>);

pub(super) struct RowCache {
    maps: RwLock<Maps>,
    /// When the cache was made; the heartbeat times below count milliseconds from it.
    epoch: Instant,
    /// Milliseconds (since `epoch`) until which entries may be served; 0: not live.
    live_until_ms: AtomicU64,
    hits: AtomicU64,
    /// Times the listener lost its connection.
    cuts: AtomicU64,
}

impl RowCache {
    pub(super) fn new() -> Self {
        Self {
            maps: RwLock::new(Maps::default()),
            epoch: Instant::now(),
            live_until_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether entries may be served now (the listener was heard recently).
    pub(super) fn live(&self) -> bool {
        self.now_ms() < self.live_until_ms.load(Ordering::Acquire)
    }

    /// Reads served from the cache so far.
    #[cfg(test)]
    pub(super) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Times the listener lost its connection so far.
    #[cfg(test)]
    pub(super) fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    fn served<T>(&self, v: Option<T>) -> Option<T> {
        if v.is_some() {
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

    fn forget(&self, drop: impl FnOnce(&mut Maps)) {
        let mut m = self.maps.write();
        m.generation += 1;
        drop(&mut m);
    }

    // --- users -------------------------------------------------------------------------

    pub(super) fn user(&self, id: u64) -> Option<UserRecord> {
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
                .cloned(),
        )
    }

    pub(super) fn fill_user(&self, ticket: Ticket, user: &UserRecord) {
        self.fill(ticket, |m| {
            if m.users.len() >= MAX_ENTRIES || m.names.len() >= MAX_ENTRIES {
                m.users.clear();
                m.names.clear();
            }
            m.names.insert(name_key(&user.login, true), user.id);
            m.names.insert(name_key(&user.email, false), user.id);
            m.users.insert(user.id, user.clone());
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

    pub(super) fn session_by_hash(&self, hash: &[u8; 32]) -> Option<SessionRecord> {
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

    pub(super) fn fill_session(&self, ticket: Ticket, s: &SessionRecord) {
        self.fill(ticket, |m| {
            if m.sessions.len() >= MAX_ENTRIES || m.session_hashes.len() >= MAX_ENTRIES {
                m.sessions.clear();
                m.session_hashes.clear();
            }
            m.session_hashes.insert(s.token_hash, s.id);
            if let Some(prev) = s.prev_token_hash {
                m.session_hashes.insert(prev, s.id);
            }
            m.sessions.insert(s.id, s.clone());
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

    pub(super) fn key_by_hash(&self, hash: &[u8; 32]) -> Option<ApiKeyRecord> {
        if !self.live() {
            return None;
        }
        let m = self.maps.read();
        let id = m.key_hashes.get(hash)?;
        self.served(m.keys.get(id).filter(|k| k.hash == *hash).cloned())
    }

    pub(super) fn fill_key(&self, ticket: Ticket, k: &ApiKeyRecord) {
        self.fill(ticket, |m| {
            if m.keys.len() >= MAX_ENTRIES || m.key_hashes.len() >= MAX_ENTRIES {
                m.keys.clear();
                m.key_hashes.clear();
            }
            m.key_hashes.insert(k.hash, k.id);
            m.keys.insert(k.id, k.clone());
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
        self.maps.write().clear();
    }

    fn apply(&self, notice: Notice, nonce: &str) {
        match notice {
            Notice::User(id) => self.forget_user(id),
            Notice::Session(id) => self.forget_session(id),
            Notice::Key(id) => self.forget_key(id),
            Notice::Counts => self.forget_counts(),
            Notice::Everything => self.forget_all(),
            Notice::Heartbeat(n) if n == nonce => {
                if !self.live() {
                    // Back from a silence: whatever was missed is dropped before serving.
                    self.forget_all();
                }
                let until = self.now_ms() + u64::try_from(LIVE_FOR.as_millis()).unwrap_or(0);
                self.live_until_ms.store(until, Ordering::Release);
            }
            Notice::Heartbeat(_) => {} // another node's
        }
    }

    fn dead(&self) {
        self.cuts.fetch_add(1, Ordering::Relaxed);
        self.live_until_ms.store(0, Ordering::Release);
        self.forget_all();
    }
}

/// Starts the node's listener: it applies every notice to `cache` and sends itself a
/// heartbeat every [`HEARTBEAT`]. It stops once the cache is dropped (the store is gone).
pub(super) fn follow(pool: PgPool, cache: &Arc<RowCache>) {
    let weak: Weak<RowCache> = Arc::downgrade(cache);
    let nonce = format!("{:016x}", rand_nonce());
    tokio::spawn(async move {
        let mut listener: Option<PgListener> = None;
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Some(cache) = weak.upgrade() else { return };
            let Some(l) = listener.as_mut() else {
                match connect(&pool).await {
                    Ok(l) => listener = Some(l),
                    Err(e) => {
                        tracing::debug!(error = %e, "row listener cannot connect; retrying");
                        cache.dead();
                        tokio::time::sleep(HEARTBEAT).await;
                    }
                }
                continue;
            };
            let mut failed = false;
            // `try_recv` may be cancelled by the heartbeat's tick: sqlx keeps a partly read
            // message in its buffer (it races the same future against the pool's close).
            tokio::select! {
                got = l.try_recv() => match got {
                    Ok(Some(n)) => {
                        if let Some(notice) = parse(n.payload()) {
                            cache.apply(notice, &nonce);
                        }
                    }
                    // The connection dropped; the next receive reconnects. Notices sent
                    // meanwhile are lost: nothing is served until a heartbeat is heard.
                    Ok(None) => cache.dead(),
                    Err(e) => {
                        tracing::debug!(error = %e, "row listener failed; reconnecting");
                        cache.dead();
                        failed = true;
                    }
                },
                _ = beat.tick() => {
                    let sent = tokio::time::timeout(
                        HEARTBEAT,
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(ROW_CHANNEL)
                            .bind(format!("p{nonce}"))
                            .execute(&pool),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(_))) {
                        tracing::debug!("row heartbeat not sent");
                    }
                }
            }
            if failed {
                listener = None;
            }
        }
    });
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(ROW_CHANNEL).await?;
    Ok(l)
}

fn rand_nonce() -> u64 {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap_or_default();
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::{parse, Notice};

    #[test]
    fn notices_parse() {
        assert_eq!(parse("u42"), Some(Notice::User(42)));
        assert_eq!(parse("s7"), Some(Notice::Session(7)));
        assert_eq!(parse("k9"), Some(Notice::Key(9)));
        assert_eq!(parse("c"), Some(Notice::Counts));
        assert_eq!(parse("*"), Some(Notice::Everything));
        assert_eq!(parse("pab"), Some(Notice::Heartbeat("ab".into())));
        assert_eq!(parse("u"), None);
        assert_eq!(parse("ux"), None);
        assert_eq!(parse("cx"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("é"), None);
    }
}
