//! PostgreSQL: legacy org API keys and service-account tokens (`ApiKeyStore`) on the
//! `api_keys` table of `migrations/0001_users.sql`.
//!
//! Authentication looks a key up by its HMAC (unique index on `hash`); names are unique per
//! org for legacy keys and per service account for tokens (the unique index `api_keys_name`
//! on `(org_id, coalesce(service_account_id, 0), name)`, which also serves the listings).
//! Times are Unix seconds in `timestamptz` columns. Deleting a service account removes its
//! tokens and its user row in one transaction (tokens explicitly; memberships and sessions
//! by `ON DELETE CASCADE`).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::audit::Audit;
use super::db_err;
use super::users::{col, col_u64, delete_user_in, id};
use super::PgStore;
use crate::domain::{OrgId, UserId};
use crate::store::{ApiKeyRecord, ApiKeyStore, StoreError, StoreResult, UserRecord};

/// The columns of a key record, `api_keys` aliased `k`.
macro_rules! key_cols {
    () => {
        "k.id, k.org_id, k.name, k.role, k.hash, \
         extract(epoch from k.expires)::bigint AS expires, \
         extract(epoch from k.created)::bigint AS created, \
         extract(epoch from k.last_used)::bigint AS last_used, \
         k.service_account_id"
    };
}
pub(super) use key_cols;

pub(super) fn key_from_row(row: &PgRow) -> StoreResult<ApiKeyRecord> {
    let role: i16 = col(row, "role")?;
    let hash: Vec<u8> = col(row, "hash")?;
    let service_account: Option<i64> = col(row, "service_account_id")?;
    Ok(ApiKeyRecord {
        id: col_u64(row, "id")?,
        org_id: col_u64(row, "org_id")?,
        name: col(row, "name")?,
        role: u8::try_from(role).map_err(|_| StoreError::Codec(format!("key role {role}")))?,
        hash: hash
            .try_into()
            .map_err(|h: Vec<u8>| StoreError::Codec(format!("key hash: {} bytes", h.len())))?,
        expires: col(row, "expires")?,
        created: col(row, "created")?,
        last_used: col(row, "last_used")?,
        service_account_id: service_account.map(|sa| sa as u64),
    })
}

fn optional(row: Option<PgRow>) -> StoreResult<Option<ApiKeyRecord>> {
    row.as_ref().map(key_from_row).transpose()
}

#[async_trait]
impl ApiKeyStore for PgStore {
    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<ApiKeyRecord> {
        // The name index answers Conflict("name"); a missing org OrgNotFound.
        const SQL: &str = concat!(
            "INSERT INTO api_keys AS k (org_id, name, role, hash, expires, created, last_used, \
                 service_account_id) \
             VALUES ($1, $2, $3, $4, to_timestamp($5), to_timestamp($6), to_timestamp($7), $8) \
             RETURNING ",
            key_cols!()
        );
        let row = sqlx::query(SQL)
            .bind(id(key.org_id))
            .bind(&key.name)
            .bind(i16::from(key.role))
            .bind(&key.hash[..])
            .bind(key.expires)
            .bind(key.created)
            .bind(key.last_used)
            .bind(key.service_account_id.map(id));
        let row = self.write_returning(row, Some("id")).await;
        self.cache().forget_counts();
        key_from_row(&row?.ok_or_else(|| StoreError::Io("INSERT returned no row".into()))?)
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<Arc<ApiKeyRecord>>> {
        const SQL: &str = concat!("SELECT ", key_cols!(), " FROM api_keys k WHERE k.hash = $1");
        if let Some(k) = self.cache().key_by_hash(hash) {
            return Ok(Some(k));
        }
        let ticket = self.cache().ticket();
        let row = sqlx::query(SQL)
            .bind(&hash[..])
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        let found = optional(row)?.map(Arc::new);
        if let Some(k) = &found {
            self.cache().fill_key(ticket, k);
        }
        Ok(found)
    }

    async fn api_keys(
        &self,
        org: OrgId,
        service_account: Option<UserId>,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        // The expression of the name index: 0 selects the legacy keys.
        const SQL: &str = concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys k WHERE k.org_id = $1 AND coalesce(k.service_account_id, 0) = $2 \
             ORDER BY k.id"
        );
        let rows = sqlx::query(SQL)
            .bind(id(org.0))
            .bind(service_account.map_or(0, |sa| id(sa.0)))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn api_key(&self, key: u64) -> StoreResult<Option<ApiKeyRecord>> {
        const SQL: &str = concat!("SELECT ", key_cols!(), " FROM api_keys k WHERE k.id = $1");
        let row = sqlx::query(SQL)
            .bind(id(key))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        optional(row)
    }

    async fn delete_api_key(&self, key: u64) -> StoreResult<Option<ApiKeyRecord>> {
        const SQL: &str = concat!(
            "DELETE FROM api_keys AS k WHERE k.id = $1 RETURNING ",
            key_cols!()
        );
        let row = self
            .write_returning(sqlx::query(SQL).bind(id(key)), None)
            .await;
        self.cache().forget_key(key);
        optional(row?)
    }

    async fn touch_api_key(&self, key: u64, at: i64) -> StoreResult<()> {
        // Best effort; the last use never moves backwards.
        let r = sqlx::query(
            "UPDATE api_keys SET last_used = to_timestamp($2) \
             WHERE id = $1 AND (last_used IS NULL OR last_used < to_timestamp($2))",
        )
        .bind(id(key))
        .bind(at)
        .execute(self.pool())
        .await;
        self.cache().forget_key(key);
        r.map_err(db_err)?;
        Ok(())
    }

    async fn delete_service_account(&self, account: UserId) -> StoreResult<Option<UserRecord>> {
        // Every token of the account (in any org) and its row, in one transaction; a user
        // that is not a service account is left alone (None).
        let mut audit = Audit::pending();
        let r: StoreResult<_> = async {
            let mut conn = self.pool().acquire().await.map_err(db_err)?;
            let mut tx = super::begin(&mut conn).await?;
            let gone = delete_user_in(&mut tx, account, true).await?;
            if gone.is_some() {
                audit.append(&mut tx).await?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok((gone, conn))
        }
        .await;
        self.cache().forget_user_rows(account.0);
        let (gone, mut conn) = r?;
        audit.committed(&mut conn).await?;
        Ok(gone)
    }
}
