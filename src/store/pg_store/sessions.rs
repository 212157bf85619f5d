//! PostgreSQL: sign-in sessions (`SessionStore`) on the `sessions` table of
//! `migrations/0001_users.sql`.
//!
//! The record's millisecond times are `timestamptz` columns (`to_timestamp(ms / 1000)` in,
//! `floor(extract(epoch ...) * 1000)` out). Lookups by token use the unique index on the
//! current hash and the partial one on the previous hash. Rotation and revocation are one
//! `UPDATE` each with the expected state in the `WHERE` (compare-and-swap); touching is a
//! best-effort `UPDATE` that never moves the last use backwards; a purge is one `DELETE`
//! with both bounds. A deleted user's sessions go with the user row (`ON DELETE CASCADE`).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::db_err;
use super::users::{col, col_u64, id};
use super::PgStore;
use crate::domain::UserId;
use crate::store::{SessionPurge, SessionRecord, SessionStore, StoreError, StoreResult};

/// The columns of a session record, `sessions` aliased `s`.
macro_rules! session_cols {
    () => {
        "s.id, s.user_id, s.token_hash, s.prev_token_hash, \
         floor(extract(epoch from s.prev_valid_until) * 1000)::bigint AS prev_valid_until_ms, \
         s.client_ip, s.user_agent, s.auth_module, \
         floor(extract(epoch from s.created_at) * 1000)::bigint AS created_ms, \
         floor(extract(epoch from s.seen_at) * 1000)::bigint AS seen_ms, \
         floor(extract(epoch from s.rotated_at) * 1000)::bigint AS rotated_ms, \
         floor(extract(epoch from s.revoked_at) * 1000)::bigint AS revoked_ms"
    };
}
pub(super) use session_cols;

fn hash32(v: Vec<u8>, what: &str) -> StoreResult<[u8; 32]> {
    v.try_into()
        .map_err(|v: Vec<u8>| StoreError::Codec(format!("{what}: {} bytes", v.len())))
}

pub(super) fn session_from_row(row: &PgRow) -> StoreResult<SessionRecord> {
    let prev: Option<Vec<u8>> = col(row, "prev_token_hash")?;
    Ok(SessionRecord {
        id: col_u64(row, "id")?,
        user_id: col_u64(row, "user_id")?,
        token_hash: hash32(col(row, "token_hash")?, "token_hash")?,
        prev_token_hash: prev.map(|p| hash32(p, "prev_token_hash")).transpose()?,
        prev_valid_until_ms: col(row, "prev_valid_until_ms")?,
        client_ip: col(row, "client_ip")?,
        user_agent: col(row, "user_agent")?,
        auth_module: col(row, "auth_module")?,
        created_ms: col(row, "created_ms")?,
        seen_ms: col(row, "seen_ms")?,
        rotated_ms: col(row, "rotated_ms")?,
        revoked_ms: col(row, "revoked_ms")?,
    })
}

fn optional(row: Option<PgRow>) -> StoreResult<Option<SessionRecord>> {
    row.as_ref().map(session_from_row).transpose()
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, session: SessionRecord) -> StoreResult<SessionRecord> {
        const SQL: &str = concat!(
            "INSERT INTO sessions AS s (user_id, token_hash, prev_token_hash, prev_valid_until, \
                 client_ip, user_agent, auth_module, created_at, seen_at, rotated_at, revoked_at) \
             VALUES ($1, $2, $3, to_timestamp($4::float8 / 1000), $5, $6, $7, \
                 to_timestamp($8::float8 / 1000), to_timestamp($9::float8 / 1000), \
                 to_timestamp($10::float8 / 1000), to_timestamp($11::float8 / 1000)) \
             RETURNING ",
            session_cols!()
        );
        let row = sqlx::query(SQL)
            .bind(id(session.user_id))
            .bind(&session.token_hash[..])
            .bind(session.prev_token_hash.as_ref().map(|h| &h[..]))
            .bind(session.prev_valid_until_ms)
            .bind(&session.client_ip)
            .bind(&session.user_agent)
            .bind(&session.auth_module)
            .bind(session.created_ms)
            .bind(session.seen_ms)
            .bind(session.rotated_ms)
            .bind(session.revoked_ms);
        let row = self.write_returning(row, Some("id")).await;
        self.cache().forget_counts();
        session_from_row(&row?.ok_or_else(|| StoreError::Io("INSERT returned no row".into()))?)
    }

    async fn session(&self, session: u64) -> StoreResult<Option<SessionRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions s WHERE s.id = $1"
        );
        let row = sqlx::query(SQL)
            .bind(id(session))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        optional(row)
    }

    async fn session_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<Arc<SessionRecord>>> {
        // The current token first, should a previous one ever collide with it.
        const SQL: &str = concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions s WHERE s.token_hash = $1 OR s.prev_token_hash = $1 \
             ORDER BY s.token_hash = $1 DESC LIMIT 1"
        );
        if let Some(s) = self.cache().session_by_hash(hash) {
            return Ok(Some(s));
        }
        let ticket = self.cache().ticket();
        let row = sqlx::query(SQL)
            .bind(&hash[..])
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        let found = optional(row)?.map(Arc::new);
        if let Some(s) = &found {
            self.cache().fill_session(ticket, s);
        }
        Ok(found)
    }

    async fn rotate_session(
        &self,
        session: u64,
        expected_hash: &[u8; 32],
        new_hash: [u8; 32],
        prev_valid_until_ms: i64,
        at_ms: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        // Compare-and-swap: only an active session whose current token is still the
        // expected one; the previous token becomes the one just replaced (the one before
        // it stops resolving).
        const SQL: &str = concat!(
            "UPDATE sessions AS s SET prev_token_hash = s.token_hash, token_hash = $3, \
                 prev_valid_until = to_timestamp($4::float8 / 1000), \
                 rotated_at = to_timestamp($5::float8 / 1000), \
                 seen_at = to_timestamp($5::float8 / 1000) \
             WHERE s.id = $1 AND s.token_hash = $2 AND s.revoked_at IS NULL \
             RETURNING ",
            session_cols!()
        );
        let row = sqlx::query(SQL)
            .bind(id(session))
            .bind(&expected_hash[..])
            .bind(&new_hash[..])
            .bind(prev_valid_until_ms)
            .bind(at_ms)
            .fetch_optional(self.pool())
            .await;
        self.cache().forget_session(session);
        // Bookkeeping of an authenticated request: not audited.
        optional(row.map_err(db_err)?)
    }

    async fn touch_session(&self, session: u64, at_ms: i64) -> StoreResult<()> {
        // Best effort; the last use never moves backwards.
        let r = sqlx::query(
            "UPDATE sessions SET seen_at = to_timestamp($2::float8 / 1000) \
             WHERE id = $1 AND seen_at < to_timestamp($2::float8 / 1000)",
        )
        .bind(id(session))
        .bind(at_ms)
        .execute(self.pool())
        .await;
        self.cache().forget_session(session);
        r.map_err(db_err)?;
        Ok(())
    }

    async fn revoke_session(&self, session: u64, at_ms: i64) -> StoreResult<Option<SessionRecord>> {
        const SQL: &str = concat!(
            "UPDATE sessions AS s SET revoked_at = to_timestamp($2::float8 / 1000) \
             WHERE s.id = $1 AND s.revoked_at IS NULL RETURNING ",
            session_cols!()
        );
        let q = sqlx::query(SQL).bind(id(session)).bind(at_ms);
        let row = self.write_returning(q, None).await;
        self.cache().forget_session(session);
        optional(row?)
    }

    async fn revoke_user_sessions(&self, user: UserId, at_ms: i64) -> StoreResult<usize> {
        let q = sqlx::query(
            "UPDATE sessions SET revoked_at = to_timestamp($2::float8 / 1000) \
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(id(user.0))
        .bind(at_ms);
        let r = self.write_counted(q).await;
        self.cache().forget_user_sessions(user.0);
        Ok(usize::try_from(r?).unwrap_or(usize::MAX))
    }

    async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL ORDER BY s.id"
        );
        let rows = sqlx::query(SQL)
            .bind(id(user.0))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn purge_sessions(&self, bounds: SessionPurge) -> StoreResult<usize> {
        // Created at or before the first bound, or last used (seen or rotated) at or before
        // the second; revoked ones included.
        let r = sqlx::query(
            "DELETE FROM sessions \
             WHERE created_at <= to_timestamp($1::float8 / 1000) \
                OR greatest(seen_at, rotated_at) <= to_timestamp($2::float8 / 1000)",
        )
        .bind(bounds.created_before_ms)
        .bind(bounds.idle_before_ms)
        .execute(self.pool())
        .await;
        self.cache().forget_sessions();
        let r = r.map_err(db_err)?;
        Ok(usize::try_from(r.rows_affected()).unwrap_or(usize::MAX))
    }

    async fn active_session_count(&self) -> StoreResult<u64> {
        if let Some(n) = self.cache().active_sessions() {
            return Ok(n);
        }
        let ticket = self.cache().ticket();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE revoked_at IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        let n = u64::try_from(n).unwrap_or(0);
        self.cache().fill_active_sessions(ticket, n);
        Ok(n)
    }
}
