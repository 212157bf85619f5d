//! PostgreSQL: PluginSettingStore (`plugin_settings`, keyed by (org, plugin)),
//! NotifierStore (`notifiers`, keyed by (org, uid)) and ProvisioningRunStore
//! (`provisioning_runs`, keyed by kind).
//!
//! Plugin and notifier writes are upserts by their key in one transaction with their secret
//! writes; a notifier keeps its id and creation time. Their JSON documents are `json`
//! columns (the text comes back as written). A provisioning run's per-file outcomes are one
//! small `jsonb` document; the last run of a kind replaces the previous one.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::audit::Audit;
use super::secrets::{apply_secret_writes, col, db_i64, u64_col};
use super::{db_err, PgStore};
use crate::domain::OrgId;
use crate::store::{
    FileOutcome, NotifierRecord, NotifierStore, PluginSettingRecord, PluginSettingStore,
    ProvisioningRun, ProvisioningRunStore, SecretWrite, StoreResult,
};

/// The plugin-setting columns as the record holds them.
macro_rules! select_plugins {
    () => {
        "SELECT org_id, plugin_id, enabled, pinned, json_data::text AS json_data, \
         secure_fields, version, extract(epoch FROM updated)::bigint AS updated \
         FROM plugin_settings"
    };
}
pub(super) use select_plugins;

pub(super) fn plugin_row(row: &PgRow) -> StoreResult<PluginSettingRecord> {
    Ok(PluginSettingRecord {
        org_id: u64_col(row, "org_id")?,
        plugin_id: col(row, "plugin_id")?,
        enabled: col(row, "enabled")?,
        pinned: col(row, "pinned")?,
        json_data: col(row, "json_data")?,
        secure_fields: col(row, "secure_fields")?,
        version: u64_col(row, "version")?,
        updated: col(row, "updated")?,
    })
}

/// The notifier columns as the record holds them.
macro_rules! select_notifiers {
    () => {
        "SELECT id, uid, org_id, name, kind, is_default, send_reminder, frequency, \
         disable_resolve_message, settings::text AS settings, secure_fields, \
         extract(epoch FROM created)::bigint AS created, \
         extract(epoch FROM updated)::bigint AS updated FROM notifiers"
    };
}
pub(super) use select_notifiers;

/// The provisioning-run columns as the record holds them.
macro_rules! select_runs {
    () => {
        "SELECT kind, extract(epoch FROM at)::bigint AS at, ok, error, files, applied, \
         removed FROM provisioning_runs"
    };
}
pub(super) use select_runs;

pub(super) fn run_row(r: &PgRow) -> StoreResult<ProvisioningRun> {
    let Json(files): Json<Vec<FileOutcome>> = col(r, "files")?;
    Ok(ProvisioningRun {
        kind: col(r, "kind")?,
        at: col(r, "at")?,
        ok: col(r, "ok")?,
        error: col(r, "error")?,
        files,
        applied: u64_col(r, "applied")?,
        removed: u64_col(r, "removed")?,
    })
}

pub(super) fn notifier_row(row: &PgRow) -> StoreResult<NotifierRecord> {
    Ok(NotifierRecord {
        id: u64_col(row, "id")?,
        uid: col(row, "uid")?,
        org_id: u64_col(row, "org_id")?,
        name: col(row, "name")?,
        kind: col(row, "kind")?,
        is_default: col(row, "is_default")?,
        send_reminder: col(row, "send_reminder")?,
        frequency: col(row, "frequency")?,
        disable_resolve_message: col(row, "disable_resolve_message")?,
        settings: col(row, "settings")?,
        secure_fields: col(row, "secure_fields")?,
        created: col(row, "created")?,
        updated: col(row, "updated")?,
    })
}

#[async_trait]
impl PluginSettingStore for PgStore {
    async fn plugin_settings(&self, org: OrgId) -> StoreResult<Vec<PluginSettingRecord>> {
        let rows = sqlx::query(concat!(
            select_plugins!(),
            " WHERE org_id = $1 ORDER BY plugin_id"
        ))
        .bind(db_i64(org.0)?)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(plugin_row).collect()
    }

    async fn apply_plugin_settings(
        &self,
        set: &[PluginSettingRecord],
        secrets: &[SecretWrite],
    ) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        for p in set {
            sqlx::query(
                "INSERT INTO plugin_settings (org_id, plugin_id, enabled, pinned, json_data, \
                 secure_fields, version, updated) \
                 VALUES ($1, $2, $3, $4, $5::json, $6, $7, to_timestamp($8)) \
                 ON CONFLICT (org_id, plugin_id) DO UPDATE SET enabled = excluded.enabled, \
                 pinned = excluded.pinned, json_data = excluded.json_data, \
                 secure_fields = excluded.secure_fields, version = excluded.version, \
                 updated = excluded.updated",
            )
            .bind(db_i64(p.org_id)?)
            .bind(p.plugin_id.as_str())
            .bind(p.enabled)
            .bind(p.pinned)
            .bind(p.json_data.as_str())
            .bind(p.secure_fields.as_slice())
            .bind(db_i64(p.version)?)
            .bind(p.updated)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        apply_secret_writes(&mut tx, secrets).await?;
        if !(set.is_empty() && secrets.is_empty()) {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }
}

#[async_trait]
impl NotifierStore for PgStore {
    async fn notifiers(&self, org: OrgId) -> StoreResult<Vec<NotifierRecord>> {
        let rows = sqlx::query(concat!(
            select_notifiers!(),
            " WHERE org_id = $1 ORDER BY uid"
        ))
        .bind(db_i64(org.0)?)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(notifier_row).collect()
    }

    async fn all_notifiers(&self) -> StoreResult<Vec<NotifierRecord>> {
        let rows = sqlx::query(concat!(select_notifiers!(), " ORDER BY org_id, uid"))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(notifier_row).collect()
    }

    async fn apply_notifiers(
        &self,
        set: &[NotifierRecord],
        delete: &[(OrgId, String)],
        secrets: &[SecretWrite],
    ) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        // Channels and secrets written are a change; a delete only if it found one.
        let mut changed = !(set.is_empty() && secrets.is_empty());
        for (org, uid) in delete {
            let done = sqlx::query("DELETE FROM notifiers WHERE org_id = $1 AND uid = $2")
                .bind(db_i64(org.0)?)
                .bind(uid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            changed |= done.rows_affected() > 0;
        }
        for n in set {
            sqlx::query(
                "INSERT INTO notifiers (org_id, uid, name, kind, is_default, send_reminder, \
                 frequency, disable_resolve_message, settings, secure_fields, created, updated) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::json, $10, to_timestamp($11), \
                 to_timestamp($12)) \
                 ON CONFLICT (org_id, uid) DO UPDATE SET name = excluded.name, \
                 kind = excluded.kind, is_default = excluded.is_default, \
                 send_reminder = excluded.send_reminder, frequency = excluded.frequency, \
                 disable_resolve_message = excluded.disable_resolve_message, \
                 settings = excluded.settings, secure_fields = excluded.secure_fields, \
                 updated = excluded.updated",
            )
            .bind(db_i64(n.org_id)?)
            .bind(n.uid.as_str())
            .bind(n.name.as_str())
            .bind(n.kind.as_str())
            .bind(n.is_default)
            .bind(n.send_reminder)
            .bind(n.frequency.as_str())
            .bind(n.disable_resolve_message)
            .bind(n.settings.as_str())
            .bind(n.secure_fields.as_slice())
            .bind(n.created)
            .bind(n.updated)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        apply_secret_writes(&mut tx, secrets).await?;
        if changed {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }
}

#[async_trait]
impl ProvisioningRunStore for PgStore {
    async fn provisioning_runs(&self) -> StoreResult<Vec<ProvisioningRun>> {
        let rows = sqlx::query(concat!(select_runs!(), " ORDER BY kind"))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(run_row).collect()
    }

    async fn put_provisioning_run(&self, run: &ProvisioningRun) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO provisioning_runs (kind, at, ok, error, files, applied, removed) \
             VALUES ($1, to_timestamp($2), $3, $4, $5, $6, $7) \
             ON CONFLICT (kind) DO UPDATE SET at = excluded.at, ok = excluded.ok, \
             error = excluded.error, files = excluded.files, applied = excluded.applied, \
             removed = excluded.removed",
        )
        .bind(run.kind.as_str())
        .bind(run.at)
        .bind(run.ok)
        .bind(run.error.as_str())
        .bind(Json(&run.files))
        .bind(db_i64(run.applied)?)
        .bind(db_i64(run.removed)?);
        self.write_counted(q).await?;
        Ok(())
    }
}
