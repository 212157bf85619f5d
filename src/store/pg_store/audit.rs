//! PostgreSQL: the audit log (`AuditStore`) on `audit_events` and the one-row `audit_chain`
//! of `migrations/0008_audit.sql`, and the append every audited write makes inside its own
//! transaction.
//!
//! **One chain across nodes.** [`append_in`] locks the chain row (`SELECT ... FOR UPDATE`)
//! in the caller's transaction, numbers and hashes the entry after the head (PostgreSQL's
//! `sha256` over [`HashInput`]: the hash `AuditChain::append` gives), inserts the event and
//! moves the head, in one statement ([`APPEND`]). A concurrent append, on
//! any node, waits on that row until the first transaction ends and then reads the head it
//! committed (READ COMMITTED re-reads a locked row once it is released): consecutive
//! numbers, each event chained to the one committed before it; a rollback takes the event
//! and the head back with the change.
//!
//! **The cost, and the flush outside the lock.** The lock is held from the append to the
//! commit, so audited commits are serialised: the append is every write's last statement,
//! after its own row locks, which also keeps the lock order the same everywhere (the chain
//! row last: no deadlock with the writes' row locks or the change epochs). Writes outside a
//! request scope never touch the row. A write that is a single statement runs alone, as
//! before, unless it is audited ([`PgStore::write_returning`], [`PgStore::write_counted`]).
//! Were the lock held through the commit's WAL flush too, audited writes would go at one
//! flush each, never sharing one. So an appending transaction that likely waits for the
//! row (other appends are under way in this process, [`APPENDING`]) commits without
//! waiting for its flush (`synchronous_commit` off for that transaction alone, set with
//! the lock), releasing the row at once, and the write is answered only after
//! [`Deferred::flushed`]: a small synchronous commit made after it on the same connection,
//! whose flush covers it, as the WAL is flushed in order. Concurrent writers share those
//! flushes. A lone writer commits as usual and pays one flush, not two. An audited write
//! that changed nothing flushes too ([`Audit::committed`]).
//!
//! A crash before the flush loses the change with its event and every later one (the WAL
//! is replayed in order), none of them answered
//! ([`tests::audited_writes_answered_before_a_crash_survive_it`]). Other requests may have
//! read them meanwhile, as on sled, whose writer makes a commit visible before its flush;
//! the nodes' row caches empty themselves when they see the server restarted
//! (`cache::restarted`).
//!
//! **Times.** `at` is the entry's milliseconds as a `bigint` (see the migration): stored
//! and compared as they are.

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::{Postgres, QueryBuilder};

use super::users::{col, id};
use super::{db_err, PgStore};
use crate::domain::audit::HashInput;
use crate::store::audit::{
    self, AuditActor, AuditChain, AuditEntry, AuditEvent, AuditQuery, AuditStore,
};
use crate::store::{StoreError, StoreResult};

/// `SELECT` of an event's columns.
macro_rules! select_events {
    () => {
        "SELECT seq, at, \
         actor_user_id, actor_login, token_id, service_account_id, auth_method, client, \
         user_agent, request_id, method, route, action, target_kind, target_id, status, \
         fields, prev_hash, hash FROM audit_events"
    };
}
pub(super) use select_events;

/// `SELECT` of the chain row.
macro_rules! select_chain {
    () => {
        "SELECT first_seq, first_prev, head_seq, head_hash FROM audit_chain"
    };
}
pub(super) use select_chain;

fn hash_col(row: &PgRow, name: &str) -> StoreResult<[u8; 32]> {
    let v: Vec<u8> = col(row, name)?;
    v.try_into()
        .map_err(|_| StoreError::Codec(format!("column {name}: not 32 bytes")))
}

fn seq_col(row: &PgRow, name: &str) -> StoreResult<u64> {
    let v: i64 = col(row, name)?;
    u64::try_from(v).map_err(|_| StoreError::Codec(format!("column {name}: negative {v}")))
}

/// An id column as it was written (`id` wraps, this unwraps: the hash covers the bits).
fn opt_id(row: &PgRow, name: &str) -> StoreResult<Option<u64>> {
    Ok(col::<Option<i64>>(row, name)?.map(|v| v as u64))
}

pub(super) fn event_from_row(row: &PgRow) -> StoreResult<AuditEvent> {
    let status: i32 = col(row, "status")?;
    Ok(AuditEvent {
        seq: seq_col(row, "seq")?,
        prev_hash: hash_col(row, "prev_hash")?,
        hash: hash_col(row, "hash")?,
        entry: AuditEntry {
            at: col(row, "at")?,
            actor: AuditActor {
                user_id: opt_id(row, "actor_user_id")?,
                login: col(row, "actor_login")?,
                token_id: opt_id(row, "token_id")?,
                service_account_id: opt_id(row, "service_account_id")?,
                auth_method: col(row, "auth_method")?,
            },
            client: col(row, "client")?,
            user_agent: col(row, "user_agent")?,
            request_id: col(row, "request_id")?,
            method: col(row, "method")?,
            route: col(row, "route")?,
            action: col(row, "action")?,
            target_kind: col(row, "target_kind")?,
            target_id: col(row, "target_id")?,
            status: u16::try_from(status)
                .map_err(|_| StoreError::Codec(format!("column status: {status}")))?,
            fields: col(row, "fields")?,
        },
    })
}

pub(super) fn chain_from_row(row: &PgRow) -> StoreResult<AuditChain> {
    Ok(AuditChain {
        first_seq: seq_col(row, "first_seq")?,
        first_prev: hash_col(row, "first_prev")?,
        head_seq: seq_col(row, "head_seq")?,
        head_hash: hash_col(row, "head_hash")?,
    })
}

/// The INSERT of one chained event; `$1` is its seq and `$19` its hash.
macro_rules! insert_event {
    () => {
        "INSERT INTO audit_events (seq, at, actor_user_id, actor_login, token_id, \
             service_account_id, auth_method, client, user_agent, request_id, method, route, \
             action, target_kind, target_id, status, fields, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19)"
    };
}

/// `sql` (built on [`insert_event!`]) with the event's values bound.
fn bind_event<'q>(sql: &'static str, e: &'q AuditEvent) -> Statement<'q> {
    bind_entry(sqlx::query(sql).bind(id(e.seq)), &e.entry)
        .bind(&e.prev_hash[..])
        .bind(&e.hash[..])
}

/// `q` with the entry's 16 values bound next (`at` to `fields`, in the columns' order).
fn bind_entry<'q>(q: Statement<'q>, x: &'q AuditEntry) -> Statement<'q> {
    q.bind(x.at)
        .bind(x.actor.user_id.map(id))
        .bind(&x.actor.login)
        .bind(x.actor.token_id.map(id))
        .bind(x.actor.service_account_id.map(id))
        .bind(&x.actor.auth_method)
        .bind(&x.client)
        .bind(&x.user_agent)
        .bind(&x.request_id)
        .bind(&x.method)
        .bind(&x.route)
        .bind(&x.action)
        .bind(&x.target_kind)
        .bind(&x.target_id)
        .bind(i32::from(x.status))
        .bind(&x.fields)
}

/// Inserts one chained event (pruning's own, the dump's import).
pub(super) async fn insert_event(conn: &mut PgConnection, e: &AuditEvent) -> StoreResult<()> {
    bind_event(insert_event!(), e)
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Replaces the chain row (the anchor and the head).
pub(super) async fn put_chain(conn: &mut PgConnection, c: &AuditChain) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_chain (one, first_seq, first_prev, head_seq, head_hash) \
         VALUES (true, $1, $2, $3, $4) ON CONFLICT (one) DO UPDATE SET \
         first_seq = EXCLUDED.first_seq, first_prev = EXCLUDED.first_prev, \
         head_seq = EXCLUDED.head_seq, head_hash = EXCLUDED.head_hash",
    )
    .bind(id(c.first_seq))
    .bind(&c.first_prev[..])
    .bind(id(c.head_seq))
    .bind(&c.head_hash[..])
    .execute(conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Whether an appending transaction commits without waiting for its flush, so that its
/// caller must wait in [`Deferred::flushed`] before it answers (see the module's header).
/// Counts as an append under way ([`APPENDING`]) until it is dropped, after the flush.
#[must_use = "a deferred flush must be waited for before the write is answered"]
pub(super) struct Deferred {
    flush: bool,
}

impl Deferred {
    /// An append starting now: deferred when others are under way in this process, as
    /// they hold or wait for the chain row.
    fn start() -> Self {
        let before = APPENDING.fetch_add(1, Ordering::Relaxed);
        Self { flush: before > 0 }
    }

    /// Returns once the transaction is on disk: at once when its own commit flushed it.
    pub(super) async fn flushed(self, conn: &mut PgConnection) -> StoreResult<()> {
        if self.flush {
            flush(conn).await?;
        }
        Ok(())
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        APPENDING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Appends under way in this process, from the append to the end of its transaction's
/// flush. A guess at whether an append will wait for the chain row, which costs no round
/// trip: the answer waits for the flush either way, so a wrong guess costs time, never
/// durability (another node's appends are not counted: a lone writer per node commits as
/// before this existed).
static APPENDING: AtomicUsize = AtomicUsize::new(0);

/// The chain row, locked until the transaction ends (pruning).
async fn lock_chain(conn: &mut PgConnection) -> StoreResult<AuditChain> {
    let row = sqlx::query(concat!(select_chain!(), " FOR UPDATE"))
        .fetch_optional(conn)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::Io("the audit chain row is missing".into()))?;
    chain_from_row(&row)
}

/// The append in one statement, so that the chain row is held from its lock to the commit
/// with one round trip between them, not two: the row is locked, the event numbered after
/// the head and hashed (`sha256` over [`HashInput`] around the head's number and hash: the
/// hash [`AuditChain::append`] gives), inserted, and the head moved to it. `$1` to `$16`
/// are the entry's values ([`bind_entry`]), `$17` to `$19` the hash input, `$20` whether
/// the commit is deferred.
const APPEND: &str = "WITH c AS (\
         SELECT head_seq + 1 AS seq, head_hash AS prev, \
             sha256($17 || int8send(head_seq + 1) || $18 || head_hash || $19) AS hash, \
             CASE WHEN $20 THEN set_config('synchronous_commit', 'off', true) END AS deferred \
         FROM audit_chain FOR UPDATE\
     ), e AS (\
         INSERT INTO audit_events (seq, at, actor_user_id, actor_login, token_id, \
             service_account_id, auth_method, client, user_agent, request_id, method, route, \
             action, target_kind, target_id, status, fields, prev_hash, hash) \
         SELECT c.seq, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             c.prev, c.hash FROM c\
     ) \
     UPDATE audit_chain SET head_seq = c.seq, head_hash = c.hash FROM c \
     RETURNING c.seq, c.prev, c.hash";

/// Inside a transaction: chains `entry` after the head and stores it with the new head.
/// - No other append under way here ([`APPENDING`]): the commit waits for its flush as
///   usual (a lone writer pays one flush).
/// - Others under way, which hold or wait for the chain row: this transaction's commit
///   will not wait for its flush (set in [`APPEND`]), so that the appenders queued behind
///   it get the row at its commit rather than after its flush.
///
/// The caller commits, then waits for [`Deferred::flushed`] before it answers (and calls
/// `audit::mark_written` when the entry was a request's pending one).
pub(crate) async fn append_in(
    conn: &mut PgConnection,
    entry: AuditEntry,
) -> StoreResult<(AuditEvent, Deferred)> {
    let deferred = Deferred::start();
    let input = HashInput::of(&entry);
    let row = bind_entry(sqlx::query(APPEND), &entry)
        .bind(&input.before)
        .bind(&input.between[..])
        .bind(&input.after)
        .bind(deferred.flush)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::Io("the audit chain row is missing".into()))?;
    let event = AuditEvent {
        seq: seq_col(&row, "seq")?,
        prev_hash: hash_col(&row, "prev")?,
        hash: hash_col(&row, "hash")?,
        entry,
    };
    Ok((event, deferred))
}

/// A mutating method's share of the audit log: the request's pending entry, taken before
/// its unit of work, appended inside it once the method knows it changed something (a
/// no-op, a lost compare-and-swap or an error appends nothing), marked written after the
/// commit.
pub(super) struct Audit {
    entry: Option<AuditEntry>,
    /// Set by the append.
    appended: Option<Deferred>,
}

impl Audit {
    pub(super) fn pending() -> Self {
        Self {
            entry: audit::pending(),
            appended: None,
        }
    }

    /// Whether this call records an event (its unit must then be a transaction).
    pub(super) fn is_on(&self) -> bool {
        self.entry.is_some()
    }

    /// As the transaction's last statement: appends the entry, if any.
    pub(super) async fn append(&mut self, conn: &mut PgConnection) -> StoreResult<()> {
        if let Some(entry) = &self.entry {
            let (_, deferred) = append_in(conn, entry.clone()).await?;
            self.appended = Some(deferred);
        }
        Ok(())
    }

    /// [`Self::append`] for a creation: the entry names the new record when it names no
    /// target yet.
    pub(super) async fn append_created(
        &mut self,
        conn: &mut PgConnection,
        new_id: impl Display,
    ) -> StoreResult<()> {
        if let Some(entry) = &mut self.entry {
            if entry.target_id.is_empty() {
                entry.target_id = new_id.to_string();
            }
        }
        self.append(conn).await
    }

    /// After the commit: the request's event is written, and the write is durable once
    /// this returns (see [`Deferred::flushed`]). An audited write that changed nothing
    /// waits for a flush too: what it found in place may be another writer's change that
    /// is visible but not yet on disk, and its answer says that state holds.
    pub(super) async fn committed(self, conn: &mut PgConnection) -> StoreResult<()> {
        match self.appended {
            Some(deferred) => {
                audit::mark_written();
                deferred.flushed(conn).await
            }
            None if self.entry.is_some() => flush(conn).await,
            None => Ok(()),
        }
    }
}

/// Returns once every transaction committed before the call is on disk: one
/// synchronous commit of a row update, whose flush covers the WAL before it (see the
/// module's header and `migrations/0009_audit_flush.sql`). On the connection that
/// committed the write, so that the flush reaches the same server (a new connection could
/// reach a promoted standby that never received it); it fails if that connection broke.
/// The row is picked per thread in turn, so concurrent callers seldom wait on each other's
/// row lock.
async fn flush(conn: &mut PgConnection) -> StoreResult<()> {
    thread_local! {
        // Threads start at random rows.
        static NEXT: std::cell::Cell<u16> =
            std::cell::Cell::new(u16::from_be_bytes(crate::crypto::random::bytes::<2>()));
    }
    let slot = NEXT.with(|n| {
        let v = n.get();
        n.set(v.wrapping_add(1));
        v % 64
    });
    sqlx::query("UPDATE audit_flush SET n = n + 1 WHERE slot = $1")
        .bind(i16::try_from(slot).unwrap_or(0))
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// A statement as the write helpers take it.
pub(super) type Statement<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

impl PgStore {
    /// A write that is one statement returning the row it changed (`RETURNING`; none:
    /// nothing changed): alone on a pooled connection, or, when audited and a row changed,
    /// with the request's event in one transaction. `created` names the column of a new
    /// record's id (the event's target when the entry names none).
    pub(super) async fn write_returning(
        &self,
        q: Statement<'_>,
        created: Option<&str>,
    ) -> StoreResult<Option<PgRow>> {
        self.write_row(q, created, |_| Ok(true)).await
    }

    /// [`Self::write_returning`] where `changed` tells whether the row it returned says
    /// that something changed.
    pub(super) async fn write_row(
        &self,
        q: Statement<'_>,
        created: Option<&str>,
        changed: impl Fn(&PgRow) -> StoreResult<bool> + Send,
    ) -> StoreResult<Option<PgRow>> {
        let mut audit = Audit::pending();
        if !audit.is_on() {
            return q.fetch_optional(self.pool()).await.map_err(db_err);
        }
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let row = q.fetch_optional(&mut *tx).await.map_err(db_err)?;
        let is_change = match &row {
            Some(r) => changed(r)?,
            None => false,
        };
        if let Some(r) = row.as_ref().filter(|_| is_change) {
            match created {
                Some(c) => audit.append_created(&mut tx, col::<i64>(r, c)?).await?,
                None => audit.append(&mut tx).await?,
            }
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(row)
    }

    /// [`Self::write_returning`] for a statement without `RETURNING`: how many rows it
    /// changed (0: nothing, no event).
    pub(super) async fn write_counted(&self, q: Statement<'_>) -> StoreResult<u64> {
        let mut audit = Audit::pending();
        if !audit.is_on() {
            let done = q.execute(self.pool()).await.map_err(db_err)?;
            return Ok(done.rows_affected());
        }
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let n = q.execute(&mut *tx).await.map_err(db_err)?.rows_affected();
        if n > 0 {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(n)
    }
}

/// `LIKE` pattern for a prefix (its `%`, `_` and `\` matched literally).
fn like_prefix(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The listing's SQL: every filter of the query in the WHERE, newest first.
fn events_query(q: &AuditQuery) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new(concat!(select_events!(), " WHERE true"));
    if let Some(u) = q.actor_user_id {
        b.push(" AND actor_user_id = ").push_bind(id(u));
    }
    if let Some(l) = &q.actor_login {
        b.push(" AND actor_login = ").push_bind(l.clone());
    }
    if let Some(a) = &q.action {
        match a.strip_suffix('*') {
            Some(prefix) => b.push(" AND action LIKE ").push_bind(like_prefix(prefix)),
            None => b.push(" AND action = ").push_bind(a.clone()),
        };
    }
    if let Some(k) = &q.target_kind {
        b.push(" AND target_kind = ").push_bind(k.clone());
    }
    if let Some(t) = &q.target_id {
        b.push(" AND target_id = ").push_bind(t.clone());
    }
    match q.success {
        Some(true) => b.push(" AND status < 400"),
        Some(false) => b.push(" AND status >= 400"),
        None => &mut b,
    };
    if let Some(s) = q.status {
        b.push(" AND status = ").push_bind(i32::from(s));
    }
    if let Some(f) = q.from {
        b.push(" AND at >= ").push_bind(f);
    }
    if let Some(t) = q.to {
        b.push(" AND at <= ").push_bind(t);
    }
    if let Some(s) = q.before_seq {
        // Above i64::MAX: every stored seq is below it.
        b.push(" AND seq < ")
            .push_bind(i64::try_from(s).unwrap_or(i64::MAX));
    }
    b.push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::try_from(q.limit).unwrap_or(i64::MAX));
    b
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, entry: AuditEntry) -> StoreResult<AuditEvent> {
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let (event, deferred) = append_in(&mut tx, entry).await?;
        tx.commit().await.map_err(db_err)?;
        deferred.flushed(&mut conn).await?;
        Ok(event)
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        let rows = events_query(query)
            .build()
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn audit_chain(&self) -> StoreResult<AuditChain> {
        let row = sqlx::query(select_chain!())
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref()
            .map(chain_from_row)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    async fn audit_page(&self, after: u64, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(concat!(
            select_events!(),
            " WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn prune_audit(
        &self,
        before_at: Option<i64>,
        max_events: u64,
        mut entry: AuditEntry,
    ) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let mut chain = lock_chain(&mut tx).await?;
        // Everything up to one seq goes, so that what stays is one unbroken run: the events
        // before the first one at or after `before_at`, and those beyond the newest
        // `max_events`.
        let mut cut = 0u64;
        if let Some(t) = before_at {
            let first_new: Option<i64> =
                sqlx::query_scalar("SELECT min(seq) FROM audit_events WHERE at >= $1")
                    .bind(t)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
            cut = match first_new {
                Some(s) => u64::try_from(s).unwrap_or(0).saturating_sub(1),
                None => chain.head_seq,
            };
        }
        if max_events > 0 {
            cut = cut.max(chain.head_seq.saturating_sub(max_events));
        }
        let removed = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
            .bind(id(cut))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if removed == 0 {
            return Ok(0);
        }
        let kept = sqlx::query(concat!(select_events!(), " ORDER BY seq LIMIT 1"))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        match kept.as_ref().map(event_from_row).transpose()? {
            Some(first) => chain.anchor_at(&first),
            // Nothing kept: the pruning's own event starts the chain.
            None => {
                chain.first_seq = chain.head_seq + 1;
                chain.first_prev = chain.head_hash;
            }
        }
        entry.target_id = removed.to_string();
        let event = chain.append(entry);
        insert_event(&mut tx, &event).await?;
        put_chain(&mut tx, &chain).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::super::cache_tests;
    use super::super::test_cluster::TestCluster;
    use super::super::tests::{main_admin, user_named};
    use super::super::PgStore;
    use crate::domain::audit::verify;
    use crate::domain::UserId;
    use crate::store::audit::{self, AuditEntry, AuditStore};
    use crate::store::{MetaStore, ProfileChange, UserStore};

    /// Two nodes: two pools on one database.
    async fn two_nodes(cluster: &TestCluster) -> (Arc<PgStore>, Arc<PgStore>) {
        let (a, b) = super::super::cache_tests::two_nodes(cluster).await;
        (Arc::new(a), Arc::new(b))
    }

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at: n as i64,
            action: "users:write".into(),
            target_kind: "user".into(),
            status: 200,
            ..AuditEntry::default()
        }
    }

    /// A prefix's own `%`, `_` and `\` match only themselves.
    #[test]
    fn like_prefix_escapes_the_wildcards() {
        assert_eq!(super::like_prefix("users:"), "users:%");
        assert_eq!(super::like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
    }

    /// In the database too: `users_*` is a prefix, not a pattern.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_action_prefix_matches_literally() {
        let cluster = TestCluster::start();
        let (a, _) = two_nodes(&cluster).await;
        for action in ["users_x:write", "usersAx:write", "users%:write"] {
            a.append_audit(AuditEntry {
                action: action.into(),
                ..entry(1)
            })
            .await
            .unwrap();
        }
        let found = |action: &str| {
            let a = a.clone();
            let q = crate::store::audit::AuditQuery {
                action: Some(action.into()),
                limit: 10,
                ..Default::default()
            };
            async move { a.audit_events(&q).await.unwrap().len() }
        };
        assert_eq!(found("users_*").await, 1);
        assert_eq!(found("users%*").await, 1);
        assert_eq!(found("users*").await, 3);
    }

    /// Audited writes on two nodes at once (creations and profile updates in their own
    /// transactions, meta writes that are one statement made a transaction, standalone
    /// appends): one chain, numbered without gaps, that verifies and that both nodes see.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_append_to_one_chain() {
        let cluster = TestCluster::start();
        let (a, b) = two_nodes(&cluster).await;
        let shared = a
            .create_user(user_named("shared"), main_admin())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..48u64)
            .map(|i| {
                let node = if i % 2 == 0 { a.clone() } else { b.clone() };
                let user = UserId(shared.id);
                tokio::spawn(audit::scope(entry(i), true, async move {
                    match i % 4 {
                        0 => {
                            let login = format!("n{i}");
                            node.create_user(user_named(&login), main_admin())
                                .await
                                .unwrap();
                        }
                        1 => {
                            let change = ProfileChange {
                                name: Some(format!("name {i}")),
                                ..ProfileChange::default()
                            };
                            node.update_profile(user, &change, 1).await.unwrap();
                        }
                        2 => node.set_meta(&format!("k{i}"), b"v").await.unwrap(),
                        _ => {
                            node.append_audit(entry(i)).await.unwrap();
                        }
                    }
                    assert!(
                        i % 4 == 3 || audit::written(),
                        "write {i} recorded its event"
                    );
                }))
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let events = a.audit_page(0, 1000).await.unwrap();
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=48).collect::<Vec<_>>());
        let chain = b.audit_chain().await.unwrap();
        assert_eq!(chain, a.audit_chain().await.unwrap());
        assert_eq!(verify(chain, &events), Ok(48));
        assert_eq!(b.audit_page(0, 1000).await.unwrap(), events);
    }

    /// An audited write is answered only once it is flushed, although its transaction
    /// commits without waiting for that (see the module's header): writers keep writing
    /// while the cluster stops as a crash would, and every write answered before it is
    /// there after the restart. The cluster's WAL writer leaves the last, partly filled
    /// WAL page in memory for up to 10 s, so without the flush before the answer the last
    /// answered writes are lost. Three rounds on one database.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audited_writes_answered_before_a_crash_survive_it() {
        let cluster = Arc::new(TestCluster::start_crashable());
        let name = cluster.create_database().await;
        for round in 0..3 {
            let store = Arc::new(super::super::tests::store_on(&cluster, &name).await);
            let answered = Arc::new(parking_lot::Mutex::new(Vec::new()));
            let writers: Vec<_> = (0..16)
                .map(|w| {
                    let (store, answered) = (store.clone(), answered.clone());
                    tokio::spawn(async move {
                        for n in 0u64.. {
                            let key = format!("crash-{round}-{w}-{n}");
                            let write = store.set_meta(&key, b"v");
                            if audit::scope(entry(n), true, write).await.is_err() {
                                return;
                            }
                            answered.lock().push(key);
                        }
                    })
                })
                .collect();
            let start = Instant::now();
            while answered.lock().len() < 200 {
                assert!(
                    start.elapsed() < std::time::Duration::from_secs(60),
                    "the writers are stuck"
                );
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let c = cluster.clone();
            tokio::task::spawn_blocking(move || c.crash_server())
                .await
                .unwrap();
            // Writes in flight fail; those waiting for a connection would wait out the
            // pool's timeout.
            for w in writers {
                w.abort();
                let _ = w.await;
            }
            drop(store);
            let c = cluster.clone();
            tokio::task::spawn_blocking(move || c.start_server())
                .await
                .unwrap();
            let after = super::super::tests::store_on(&cluster, &name).await;
            let answered = answered.lock().clone();
            let mut lost = Vec::new();
            for key in &answered {
                if after.get_meta(key).await.unwrap().is_none() {
                    lost.push(key.clone());
                }
            }
            assert!(
                lost.is_empty(),
                "round {round}: {} of {} answered writes lost, such as {:?}",
                lost.len(),
                answered.len(),
                &lost[..lost.len().min(5)]
            );
            let events = after.audit_page(0, 1_000_000).await.unwrap();
            assert_eq!(
                verify(after.audit_chain().await.unwrap(), &events),
                Ok(events.len() as u64),
                "round {round}: the chain holds after the crash"
            );
        }
    }

    /// An audited write that changes nothing, because another writer's change is already
    /// in place but not yet on disk, is answered only once that change is on disk: its
    /// answer says the state holds. Granting Grafana Admin to a user another transaction
    /// just made one (committed without waiting for its flush), then a crash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_audited_no_op_waits_for_the_change_it_found() {
        use crate::store::UserStore;
        let cluster = Arc::new(TestCluster::start_crashable());
        let (a, _b) = two_nodes(&cluster).await;
        let db = cache_tests::database_of(&a).await;
        let u = a
            .create_user(user_named("ivy"), main_admin())
            .await
            .unwrap();
        let grant = "UPDATE users SET is_admin = true WHERE id = $1";
        cache_tests::commit_unflushed(&a, grant, u.id).await;
        let granted = a.set_grafana_admin(UserId(u.id), true, 1);
        let user = audit::scope(entry(1), true, granted).await.unwrap();
        assert!(user.is_admin);
        cache_tests::crash_and_restart(&cluster).await;
        let mut conn = cache_tests::connect(&cluster, &db).await;
        let is_admin: bool = sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1")
            .bind(super::id(u.id))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(is_admin, "the answered state was lost in the crash");
    }

    /// What auditing costs a write (run by hand: `cargo test --lib audit_cost -- --ignored
    /// --nocapture`): profile updates on a cluster that flushes its WAL, one writer and 16
    /// writers over two nodes, without a scope and audited.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, prints writes per second"]
    async fn audit_cost() {
        let cluster = TestCluster::start_durable();
        let (a, b) = two_nodes(&cluster).await;
        let mut users = Vec::new();
        for i in 0..16 {
            let u = a
                .create_user(user_named(&format!("w{i}")), main_admin())
                .await
                .unwrap();
            users.push(UserId(u.id));
        }
        const PER_WRITER: u64 = 100;
        for writers in [1usize, 16] {
            for audited in [false, true] {
                let start = Instant::now();
                let tasks: Vec<_> = (0..writers)
                    .map(|w| {
                        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
                        let user = users[w];
                        tokio::spawn(async move {
                            for n in 0..PER_WRITER {
                                let change = ProfileChange {
                                    name: Some(format!("{w}-{n}")),
                                    ..ProfileChange::default()
                                };
                                let write = node.update_profile(user, &change, 1);
                                if audited {
                                    audit::scope(entry(n), true, write).await.unwrap();
                                } else {
                                    write.await.unwrap();
                                }
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                let secs = start.elapsed().as_secs_f64();
                let n = writers as f64 * PER_WRITER as f64;
                eprintln!(
                    "{writers:>2} writer(s), audited {audited:<5}: {:>7.0} writes/s ({:.2} ms each)",
                    n / secs,
                    secs * 1000.0 / n * writers as f64
                );
            }
        }
        let events = a.audit_page(0, 100_000).await.unwrap();
        assert_eq!(verify(a.audit_chain().await.unwrap(), &events), Ok(1700));
    }
}
