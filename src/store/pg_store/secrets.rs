//! PostgreSQL: EncryptionStore, and the helpers the content files share.
//!
//! DEKs are rows of `deks` (the state a text column, at most one `active` by a partial
//! unique index, so "the active DEK" is a query, not a pointer that could disagree with the
//! rows); ids come from the `dek_ids` sequence. Secrets are `secrets (key, dek_id,
//! ciphertext)`; a DEK's reference count is `count(*) WHERE dek_id = $1`, so it is always
//! exactly the rows, whoever wrote them. [`apply_secret_writes`] is the one way secrets are
//! written: by `write_secrets` and inside the datasource, settings, plugin and notifier
//! transactions, so a row and its secrets commit together. `destroy_dek` locks the DEK row
//! (`FOR UPDATE`), which waits for any transaction that inserted a secret referencing it
//! (the foreign key holds a key-share lock), then checks state and references and erases
//! the wrapped bytes in the same transaction. `commit_reencrypt` puts the expected
//! ciphertext in each `UPDATE`'s `WHERE` and counts the rows written; the job cursor is the
//! one row of `reencrypt_cursor`.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::audit::Audit;

use super::{db_err, PgStore};
use crate::store::{
    DekRecord, DekState, EncryptionStore, Reencrypted, SecretWrite, StoreError, StoreResult,
};

/// One column of a row, decode errors mapped like every other database error.
pub(super) fn col<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name).map_err(db_err)
}

/// A `bigint` column that holds an unsigned record field (ids, versions, counts).
pub(super) fn u64_col(row: &PgRow, name: &str) -> StoreResult<u64> {
    let v: i64 = col(row, name)?;
    u64::try_from(v).map_err(|_| StoreError::Codec(format!("{name}: negative value {v}")))
}

/// An unsigned record field as a `bigint` parameter.
pub(super) fn db_i64(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Codec(format!("{v} does not fit a bigint")))
}

/// Applies secret writes (upsert or delete by key) inside the caller's transaction. The
/// reference counts follow from the rows.
pub(crate) async fn apply_secret_writes(
    tx: &mut Transaction<'_, Postgres>,
    writes: &[SecretWrite],
) -> StoreResult<()> {
    for w in writes {
        match &w.value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO secrets (key, dek_id, ciphertext) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE \
                     SET dek_id = excluded.dek_id, ciphertext = excluded.ciphertext",
                )
                .bind(w.key.as_str())
                .bind(i64::from(v.dek_id))
                .bind(v.ciphertext.as_slice())
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            }
            None => {
                sqlx::query("DELETE FROM secrets WHERE key = $1")
                    .bind(w.key.as_str())
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
        }
    }
    Ok(())
}

pub(super) fn state_name(s: DekState) -> &'static str {
    match s {
        DekState::Active => "active",
        DekState::Retired => "retired",
        DekState::Destroyed => "destroyed",
    }
}

fn state_of(name: &str) -> StoreResult<DekState> {
    match name {
        "active" => Ok(DekState::Active),
        "retired" => Ok(DekState::Retired),
        "destroyed" => Ok(DekState::Destroyed),
        other => Err(StoreError::Codec(format!("unknown DEK state {other:?}"))),
    }
}

pub(super) fn dek_id(v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Codec(format!("DEK id {v} out of range")))
}

/// The DEK columns, times as Unix seconds.
macro_rules! select_deks {
    () => {
        "SELECT id, state, extract(epoch FROM created)::bigint AS created, \
         extract(epoch FROM retired)::bigint AS retired, kek_id, wrapped, reserved FROM deks"
    };
}
pub(super) use select_deks;

pub(super) fn dek_row(row: &PgRow) -> StoreResult<DekRecord> {
    Ok(DekRecord {
        id: dek_id(col(row, "id")?)?,
        state: state_of(&col::<String>(row, "state")?)?,
        created: col(row, "created")?,
        retired: col(row, "retired")?,
        kek_id: col(row, "kek_id")?,
        wrapped: col(row, "wrapped")?,
        reserved: u64_col(row, "reserved")?,
    })
}

#[async_trait]
impl EncryptionStore for PgStore {
    async fn deks(&self) -> StoreResult<Vec<DekRecord>> {
        let rows = sqlx::query(concat!(select_deks!(), " ORDER BY id"))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(dek_row).collect()
    }

    async fn dek(&self, id: u32) -> StoreResult<Option<DekRecord>> {
        let row = sqlx::query(concat!(select_deks!(), " WHERE id = $1"))
            .bind(i64::from(id))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(dek_row).transpose()
    }

    async fn active_dek(&self) -> StoreResult<Option<u32>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM deks WHERE state = 'active'")
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        id.map(dek_id).transpose()
    }

    async fn allocate_dek_id(&self) -> StoreResult<u32> {
        // nextval() is WAL-logged and durable at commit: an id is never handed out twice.
        let id: i64 = sqlx::query_scalar("SELECT nextval('dek_ids')")
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        dek_id(id)
    }

    async fn install_active_dek(&self, new: DekRecord) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        // Two nodes rotating at once take turns, so the second retires the first's key
        // instead of colliding on the one-active index.
        sqlx::query("LOCK TABLE deks IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE deks SET state = 'retired', retired = to_timestamp($1) \
             WHERE state = 'active' AND id <> $2",
        )
        .bind(new.created)
        .bind(i64::from(new.id))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO deks (id, state, created, retired, kek_id, wrapped, reserved) \
             VALUES ($1, $2, to_timestamp($3), NULL, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, created = excluded.created, \
             retired = NULL, kek_id = excluded.kek_id, wrapped = excluded.wrapped, \
             reserved = excluded.reserved",
        )
        .bind(i64::from(new.id))
        .bind(state_name(DekState::Active))
        .bind(new.created)
        .bind(new.kek_id.as_str())
        .bind(new.wrapped.as_slice())
        .bind(db_i64(new.reserved)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::DataKeys).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn reserve_dek_uses(&self, id: u32, reserved: u64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE deks SET reserved = greatest(reserved, $2) WHERE id = $1")
            .bind(i64::from(id))
            .bind(db_i64(reserved)?)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn rewrap_dek(&self, id: u32, kek_id: &str, wrapped: Vec<u8>) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        // A destroyed DEK keeps no key material: a re-wrap racing destroy_dek (another
        // node) must not bring the wrapped bytes back.
        let done = sqlx::query(
            "UPDATE deks SET kek_id = $2, wrapped = $3 WHERE id = $1 AND state <> 'destroyed'",
        )
        .bind(i64::from(id))
        .bind(kek_id)
        .bind(wrapped.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM deks WHERE id = $1")
                .bind(i64::from(id))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
        }
        super::announce_in(&mut tx, crate::store::Topic::DataKeys).await?;
        if done.rows_affected() > 0 {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn destroy_dek(&self, id: u32) -> StoreResult<bool> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM deks WHERE id = $1 FOR UPDATE")
                .bind(i64::from(id))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        match state.as_deref().map(state_of).transpose()? {
            Some(DekState::Retired) => {}
            _ => return Ok(false),
        }
        let referenced: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM secrets WHERE dek_id = $1)")
                .bind(i64::from(id))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        if referenced {
            return Ok(false);
        }
        sqlx::query("UPDATE deks SET state = 'destroyed', wrapped = ''::bytea WHERE id = $1")
            .bind(i64::from(id))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::DataKeys).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(true)
    }

    async fn dek_references(&self, id: u32) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM secrets WHERE dek_id = $1")
            .bind(i64::from(id))
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        Ok(n.unsigned_abs())
    }

    async fn secret(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT ciphertext FROM secrets WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)
    }

    async fn write_secrets(&self, writes: &[SecretWrite]) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        apply_secret_writes(&mut tx, writes).await?;
        if !writes.is_empty() {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn secrets_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match cursor {
            Some(c) => {
                sqlx::query(
                    "SELECT key, ciphertext FROM secrets WHERE key > $1 ORDER BY key LIMIT $2",
                )
                .bind(c)
                .bind(limit)
                .fetch_all(self.pool())
                .await
            }
            None => {
                sqlx::query("SELECT key, ciphertext FROM secrets ORDER BY key LIMIT $1")
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await
            }
        }
        .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((col(r, "key")?, col(r, "ciphertext")?)))
            .collect()
    }

    async fn secret_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM secrets")
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        Ok(n.unsigned_abs())
    }

    async fn commit_reencrypt(
        &self,
        batch: &[Reencrypted],
        cursor: Option<&str>,
    ) -> StoreResult<usize> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let mut written = 0;
        for item in batch {
            // Written only if the stored bytes are still the ones read: a concurrent
            // update or delete wins.
            let done = sqlx::query(
                "UPDATE secrets SET dek_id = $2, ciphertext = $3 \
                 WHERE key = $1 AND ciphertext = $4",
            )
            .bind(item.key.as_str())
            .bind(i64::from(item.new.dek_id))
            .bind(item.new.ciphertext.as_slice())
            .bind(item.expected.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if done.rows_affected() > 0 {
                written += 1;
            }
        }
        match cursor {
            Some(c) => {
                sqlx::query(
                    "INSERT INTO reencrypt_cursor (singleton, cursor) VALUES (true, $1) \
                 ON CONFLICT (singleton) DO UPDATE SET cursor = excluded.cursor",
                )
                .bind(c)
                .execute(&mut *tx)
                .await
            }
            None => {
                sqlx::query("DELETE FROM reencrypt_cursor")
                    .execute(&mut *tx)
                    .await
            }
        }
        .map_err(db_err)?;
        // The cursor moved: a change even when every secret changed meanwhile.
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(written)
    }

    async fn reencrypt_cursor(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT cursor FROM reencrypt_cursor")
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)
    }
}
