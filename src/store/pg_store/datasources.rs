//! PostgreSQL: DataSourceStore, on `datasources`.
//!
//! Unique per org by the lower-cased name and by `uid` (indexes `datasources_org_name`,
//! `datasources_org_uid`: a violation is `Conflict("name" | "uid")`, whether from a create
//! or a rename). The lower-cased name is `name_key`, folded here with Rust's
//! `to_lowercase` as the embedded store folds it, not by the database's locale.
//! `json_data` is a `json` column, so the text comes back as written. An update is a
//! compare-and-swap in one statement (`WHERE id AND org_id AND version`,
//! `version = version + 1`); no row means `Stale("version")` when the row exists in the org,
//! `NotFound` otherwise. Every write applies its secret writes in the same transaction, after
//! the row, so a refused write writes no secret.

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::audit::Audit;
use super::secrets::{apply_secret_writes, col, db_i64, u64_col};
use super::{db_err, PgStore};
use crate::domain::OrgId;
use crate::store::{DataSourceRecord, DataSourceStore, SecretWrite, StoreError, StoreResult};

/// The datasource columns as the record holds them (JSON as text, times as Unix seconds).
macro_rules! ds_cols {
    () => {
        "id, org_id, uid, name, type, access, url, \"user\", database, basic_auth, \
         basic_auth_user, with_credentials, is_default, json_data::text AS json_data, \
         secure_fields, version, read_only, extract(epoch FROM created)::bigint AS created, \
         extract(epoch FROM updated)::bigint AS updated"
    };
}
pub(super) use ds_cols;

/// The folded name the per-org uniqueness and lookups use (`name_key`): Rust's Unicode
/// `to_lowercase`, as the embedded store folds it, never the database's locale.
pub(super) fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub(super) fn ds_row(row: &PgRow) -> StoreResult<DataSourceRecord> {
    Ok(DataSourceRecord {
        id: u64_col(row, "id")?,
        uid: col(row, "uid")?,
        org_id: u64_col(row, "org_id")?,
        name: col(row, "name")?,
        ds_type: col(row, "type")?,
        access: col(row, "access")?,
        url: col(row, "url")?,
        user: col(row, "user")?,
        database: col(row, "database")?,
        basic_auth: col(row, "basic_auth")?,
        basic_auth_user: col(row, "basic_auth_user")?,
        with_credentials: col(row, "with_credentials")?,
        is_default: col(row, "is_default")?,
        json_data: col(row, "json_data")?,
        secure_fields: col(row, "secure_fields")?,
        version: u64_col(row, "version")?,
        read_only: col(row, "read_only")?,
        created: col(row, "created")?,
        updated: col(row, "updated")?,
    })
}

impl PgStore {
    async fn ds_where(
        &self,
        query: &'static str,
        org: OrgId,
        key: &str,
    ) -> StoreResult<Option<DataSourceRecord>> {
        let row = sqlx::query(query)
            .bind(db_i64(org.0)?)
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(ds_row).transpose()
    }
}

#[async_trait]
impl DataSourceStore for PgStore {
    async fn create_datasource(
        &self,
        ds: DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> StoreResult<DataSourceRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let row = sqlx::query(concat!(
            "INSERT INTO datasources (org_id, uid, name, type, access, url, \"user\", ",
            "database, basic_auth, basic_auth_user, with_credentials, is_default, json_data, ",
            "secure_fields, version, read_only, created, updated, name_key) ",
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::json, $14, 1, ",
            "$15, to_timestamp($16), to_timestamp($17), $18) RETURNING ",
            ds_cols!()
        ))
        .bind(db_i64(ds.org_id)?)
        .bind(ds.uid.as_str())
        .bind(ds.name.as_str())
        .bind(ds.ds_type.as_str())
        .bind(ds.access.as_str())
        .bind(ds.url.as_str())
        .bind(ds.user.as_str())
        .bind(ds.database.as_str())
        .bind(ds.basic_auth)
        .bind(ds.basic_auth_user.as_str())
        .bind(ds.with_credentials)
        .bind(ds.is_default)
        .bind(ds.json_data.as_str())
        .bind(ds.secure_fields.as_slice())
        .bind(ds.read_only)
        .bind(ds.created)
        .bind(ds.updated)
        .bind(name_key(&ds.name))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let created = ds_row(&row)?;
        apply_secret_writes(&mut tx, secrets).await?;
        audit.append_created(&mut tx, created.id).await?;
        tx.commit().await.map_err(db_err)?;
        self.cache().forget_counts();
        audit.committed(&mut conn).await?;
        Ok(created)
    }

    async fn update_datasource(
        &self,
        ds: &DataSourceRecord,
        expected_version: u64,
        secrets: &[SecretWrite],
    ) -> StoreResult<DataSourceRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let row = sqlx::query(concat!(
            "UPDATE datasources SET uid = $4, name = $5, type = $6, access = $7, url = $8, ",
            "\"user\" = $9, database = $10, basic_auth = $11, basic_auth_user = $12, ",
            "with_credentials = $13, is_default = $14, json_data = $15::json, ",
            "secure_fields = $16, read_only = $17, updated = to_timestamp($18), name_key = $19, ",
            "version = version + 1 ",
            "WHERE id = $1 AND org_id = $2 AND version = $3 RETURNING ",
            ds_cols!()
        ))
        .bind(db_i64(ds.id)?)
        .bind(db_i64(ds.org_id)?)
        .bind(db_i64(expected_version)?)
        .bind(ds.uid.as_str())
        .bind(ds.name.as_str())
        .bind(ds.ds_type.as_str())
        .bind(ds.access.as_str())
        .bind(ds.url.as_str())
        .bind(ds.user.as_str())
        .bind(ds.database.as_str())
        .bind(ds.basic_auth)
        .bind(ds.basic_auth_user.as_str())
        .bind(ds.with_credentials)
        .bind(ds.is_default)
        .bind(ds.json_data.as_str())
        .bind(ds.secure_fields.as_slice())
        .bind(ds.read_only)
        .bind(ds.updated)
        .bind(name_key(&ds.name))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM datasources WHERE id = $1 AND org_id = $2")
                    .bind(db_i64(ds.id)?)
                    .bind(db_i64(ds.org_id)?)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            return Err(match exists {
                Some(_) => StoreError::Stale("version"),
                None => StoreError::NotFound,
            });
        };
        let updated = ds_row(&row)?;
        apply_secret_writes(&mut tx, secrets).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(updated)
    }

    async fn delete_datasource(
        &self,
        org: OrgId,
        id: u64,
        secrets: &[SecretWrite],
    ) -> StoreResult<Option<DataSourceRecord>> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let row = sqlx::query(concat!(
            "DELETE FROM datasources WHERE id = $1 AND org_id = $2 RETURNING ",
            ds_cols!()
        ))
        .bind(db_i64(id)?)
        .bind(db_i64(org.0)?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        // Not the org's (or gone): nothing is written, its secrets included.
        let Some(row) = row else {
            return Ok(None);
        };
        let gone = ds_row(&row)?;
        apply_secret_writes(&mut tx, secrets).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        self.cache().forget_counts();
        audit.committed(&mut conn).await?;
        Ok(Some(gone))
    }

    async fn datasource(&self, org: OrgId, id: u64) -> StoreResult<Option<DataSourceRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            ds_cols!(),
            " FROM datasources WHERE id = $1 AND org_id = $2"
        ))
        .bind(db_i64(id)?)
        .bind(db_i64(org.0)?)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.as_ref().map(ds_row).transpose()
    }

    async fn datasource_by_uid(
        &self,
        org: OrgId,
        uid: &str,
    ) -> StoreResult<Option<DataSourceRecord>> {
        self.ds_where(
            concat!(
                "SELECT ",
                ds_cols!(),
                " FROM datasources WHERE org_id = $1 AND uid = $2"
            ),
            org,
            uid,
        )
        .await
    }

    async fn datasource_by_name(
        &self,
        org: OrgId,
        name: &str,
    ) -> StoreResult<Option<DataSourceRecord>> {
        self.ds_where(
            concat!(
                "SELECT ",
                ds_cols!(),
                " FROM datasources WHERE org_id = $1 AND name_key = $2"
            ),
            org,
            &name_key(name),
        )
        .await
    }

    async fn datasources(&self, org: OrgId) -> StoreResult<Vec<DataSourceRecord>> {
        // By lower-cased name, as the embedded store lists them.
        let rows = sqlx::query(concat!(
            "SELECT ",
            ds_cols!(),
            " FROM datasources WHERE org_id = $1 ORDER BY name_key, id"
        ))
        .bind(db_i64(org.0)?)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(ds_row).collect()
    }
}
