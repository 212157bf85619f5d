//! PostgreSQL: SettingsStore (`setting_overrides`, keyed by (section, key); a secret
//! override's value is in `secrets`, written in the same transaction) and LicenseStore
//! (`license`: one row holding the uploaded token and the last renewal attempt, each
//! present or all NULL; writes are upserts of their own columns, so putting a renewal
//! never touches the token).

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::audit::Audit;
use super::secrets::{apply_secret_writes, col};
use super::{db_err, PgStore};
use crate::store::{
    LicenseStore, RenewalRecord, SecretWrite, SettingOverride, SettingsStore, StoreResult,
    StoredLicense,
};

pub(super) fn override_row(row: &PgRow) -> StoreResult<SettingOverride> {
    Ok(SettingOverride {
        section: col(row, "section")?,
        key: col(row, "key")?,
        value: col(row, "value")?,
        secret: col(row, "secret")?,
    })
}

#[async_trait]
impl SettingsStore for PgStore {
    async fn setting_overrides(&self) -> StoreResult<Vec<SettingOverride>> {
        let rows = sqlx::query(
            "SELECT section, key, value, secret FROM setting_overrides ORDER BY section, key",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(override_row).collect()
    }

    async fn apply_setting_overrides(
        &self,
        set: &[SettingOverride],
        remove: &[(String, String)],
        secrets: &[SecretWrite],
    ) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        for o in set {
            sqlx::query(
                "INSERT INTO setting_overrides (section, key, value, secret) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (section, key) \
                 DO UPDATE SET value = excluded.value, secret = excluded.secret",
            )
            .bind(o.section.as_str())
            .bind(o.key.as_str())
            .bind(o.value.as_deref())
            .bind(o.secret)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        // Overrides and secrets written are a change; a removal only if it found one.
        let mut changed = !(set.is_empty() && secrets.is_empty());
        for (section, key) in remove {
            let done = sqlx::query("DELETE FROM setting_overrides WHERE section = $1 AND key = $2")
                .bind(section.as_str())
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            changed |= done.rows_affected() > 0;
        }
        apply_secret_writes(&mut tx, secrets).await?;
        super::announce_in(&mut tx, crate::store::Topic::Settings).await?;
        if changed {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }
}

#[async_trait]
impl LicenseStore for PgStore {
    async fn license(&self) -> StoreResult<Option<StoredLicense>> {
        let row = sqlx::query(
            "SELECT token, extract(epoch FROM stored_at)::bigint AS stored_at \
             FROM license WHERE token IS NOT NULL",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(StoredLicense {
                token: col(&r, "token")?,
                stored_at: col(&r, "stored_at")?,
            })
        })
        .transpose()
    }

    async fn put_license(&self, license: &StoredLicense) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        sqlx::query(
            "INSERT INTO license (singleton, token, stored_at) \
             VALUES (true, $1, to_timestamp($2)) ON CONFLICT (singleton) \
             DO UPDATE SET token = excluded.token, stored_at = excluded.stored_at",
        )
        .bind(license.token.as_str())
        .bind(license.stored_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::License).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn delete_license(&self) -> StoreResult<bool> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let done = sqlx::query(
            "UPDATE license SET token = NULL, stored_at = NULL WHERE token IS NOT NULL",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() > 0 {
            super::announce_in(&mut tx, crate::store::Topic::License).await?;
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn last_renewal(&self) -> StoreResult<Option<RenewalRecord>> {
        let row = sqlx::query(
            "SELECT extract(epoch FROM renewal_at)::bigint AS at, renewal_trigger, renewal_ok, \
             renewal_error FROM license WHERE renewal_at IS NOT NULL",
        )
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(RenewalRecord {
                at: col(&r, "at")?,
                trigger: col(&r, "renewal_trigger")?,
                ok: col(&r, "renewal_ok")?,
                error: col(&r, "renewal_error")?,
            })
        })
        .transpose()
    }

    async fn put_renewal(&self, record: &RenewalRecord) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO license (singleton, renewal_at, renewal_trigger, renewal_ok, \
             renewal_error) VALUES (true, to_timestamp($1), $2, $3, $4) \
             ON CONFLICT (singleton) DO UPDATE SET renewal_at = excluded.renewal_at, \
             renewal_trigger = excluded.renewal_trigger, renewal_ok = excluded.renewal_ok, \
             renewal_error = excluded.renewal_error",
        )
        .bind(record.at)
        .bind(record.trigger.as_str())
        .bind(record.ok)
        .bind(record.error.as_str());
        self.write_counted(q).await?;
        Ok(())
    }
}
