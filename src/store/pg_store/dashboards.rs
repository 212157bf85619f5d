//! PostgreSQL: DashboardStore and AlertStore, on `folders`, `dashboards` and `alerts`, all
//! keyed by (org, uid).
//!
//! A dashboard's JSON is a `json` column (its text comes back as written: provisioning
//! compares it to skip unchanged files) and its tags a `text[]`. Alerts are rows keyed by
//! (org, dashboard uid, panel) with a foreign key to their dashboard (`ON DELETE CASCADE`:
//! they go with it); a dashboard's `alert_panels` and an alert's `dashboard_id` are read
//! through that key rather than stored twice. `apply_dashboards` is one transaction:
//! folders are upserted (keeping id and creation), then deletes, then each dashboard is
//! upserted (keeping id and creation, bumping the version), its alerts of panels no longer
//! in the batch deleted and the batch's alerts upserted by panel, so an alert keeps its id,
//! state and pause and takes the batch's name.

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::audit::Audit;
use super::secrets::{col, db_i64, u64_col};
use super::{db_err, PgStore};
use crate::domain::OrgId;
use crate::store::{
    AlertRecord, AlertStore, DashboardBatch, DashboardRecord, DashboardStore, FolderRecord,
    StoreResult,
};

/// The dashboard columns as the record holds them; `alert_panels` from the alerts.
macro_rules! select_dashboards {
    () => {
        "SELECT d.id, d.uid, d.org_id, d.title, d.tags, d.folder_uid, d.version, \
         d.json::text AS json, d.provider, d.file, \
         coalesce((SELECT array_agg(a.panel_id ORDER BY a.panel_id) FROM alerts a \
           WHERE a.org_id = d.org_id AND a.dashboard_uid = d.uid), '{}') AS alert_panels, \
         extract(epoch FROM d.created)::bigint AS created, \
         extract(epoch FROM d.updated)::bigint AS updated FROM dashboards d"
    };
}
pub(super) use select_dashboards;

/// The folder columns as the record holds them.
macro_rules! select_folders {
    () => {
        "SELECT id, uid, org_id, title, extract(epoch FROM created)::bigint AS created, \
         extract(epoch FROM updated)::bigint AS updated FROM folders"
    };
}
pub(super) use select_folders;

/// The alert columns as the record holds them; `dashboard_id` through the dashboard's key.
macro_rules! select_alerts {
    () => {
        "SELECT a.id, a.org_id, a.dashboard_uid, d.id AS dashboard_id, a.panel_id, a.name, \
         a.state, a.paused, extract(epoch FROM a.new_state_date)::bigint AS new_state_date \
         FROM alerts a JOIN dashboards d ON d.org_id = a.org_id AND d.uid = a.dashboard_uid"
    };
}
pub(super) use select_alerts;

pub(super) fn dashboard_row(row: &PgRow) -> StoreResult<DashboardRecord> {
    let panels: Vec<i64> = col(row, "alert_panels")?;
    Ok(DashboardRecord {
        id: u64_col(row, "id")?,
        uid: col(row, "uid")?,
        org_id: u64_col(row, "org_id")?,
        title: col(row, "title")?,
        tags: col(row, "tags")?,
        folder_uid: col(row, "folder_uid")?,
        version: u64_col(row, "version")?,
        json: col(row, "json")?,
        provider: col(row, "provider")?,
        file: col(row, "file")?,
        alert_panels: panels.into_iter().map(i64::unsigned_abs).collect(),
        created: col(row, "created")?,
        updated: col(row, "updated")?,
    })
}

pub(super) fn folder_row(row: &PgRow) -> StoreResult<FolderRecord> {
    Ok(FolderRecord {
        id: u64_col(row, "id")?,
        uid: col(row, "uid")?,
        org_id: u64_col(row, "org_id")?,
        title: col(row, "title")?,
        created: col(row, "created")?,
        updated: col(row, "updated")?,
    })
}

pub(super) fn alert_row(row: &PgRow) -> StoreResult<AlertRecord> {
    Ok(AlertRecord {
        id: u64_col(row, "id")?,
        org_id: u64_col(row, "org_id")?,
        dashboard_uid: col(row, "dashboard_uid")?,
        dashboard_id: u64_col(row, "dashboard_id")?,
        panel_id: u64_col(row, "panel_id")?,
        name: col(row, "name")?,
        state: col(row, "state")?,
        paused: col(row, "paused")?,
        new_state_date: col(row, "new_state_date")?,
    })
}

#[async_trait]
impl DashboardStore for PgStore {
    async fn dashboards(&self, org: OrgId) -> StoreResult<Vec<DashboardRecord>> {
        let rows = sqlx::query(concat!(
            select_dashboards!(),
            " WHERE d.org_id = $1 ORDER BY d.uid"
        ))
        .bind(db_i64(org.0)?)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(dashboard_row).collect()
    }

    async fn provider_dashboards(&self, provider: &str) -> StoreResult<Vec<DashboardRecord>> {
        let rows = sqlx::query(concat!(
            select_dashboards!(),
            " WHERE d.provider = $1 ORDER BY d.org_id, d.uid"
        ))
        .bind(provider)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(dashboard_row).collect()
    }

    async fn dashboard(&self, org: OrgId, uid: &str) -> StoreResult<Option<DashboardRecord>> {
        let row = sqlx::query(concat!(
            select_dashboards!(),
            " WHERE d.org_id = $1 AND d.uid = $2"
        ))
        .bind(db_i64(org.0)?)
        .bind(uid)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.as_ref().map(dashboard_row).transpose()
    }

    async fn folders(&self, org: OrgId) -> StoreResult<Vec<FolderRecord>> {
        let rows = sqlx::query(concat!(
            select_folders!(),
            " WHERE org_id = $1 ORDER BY uid"
        ))
        .bind(db_i64(org.0)?)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(folder_row).collect()
    }

    async fn apply_dashboards(&self, batch: &DashboardBatch) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        for f in &batch.folders {
            sqlx::query(
                "INSERT INTO folders (org_id, uid, title, created, updated) \
                 VALUES ($1, $2, $3, to_timestamp($4), to_timestamp($5)) \
                 ON CONFLICT (org_id, uid) \
                 DO UPDATE SET title = excluded.title, updated = excluded.updated",
            )
            .bind(db_i64(f.org_id)?)
            .bind(f.uid.as_str())
            .bind(f.title.as_str())
            .bind(f.created)
            .bind(f.updated)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        // Folders and dashboards written are a change; a delete only if it found one.
        let mut changed = !(batch.folders.is_empty() && batch.upserts.is_empty());
        for (org, uid) in &batch.deletes {
            // Its alerts go with it (ON DELETE CASCADE).
            let done = sqlx::query("DELETE FROM dashboards WHERE org_id = $1 AND uid = $2")
                .bind(db_i64(*org)?)
                .bind(uid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            changed |= done.rows_affected() > 0;
        }
        for (d, alerts) in &batch.upserts {
            let org = db_i64(d.org_id)?;
            sqlx::query(
                "INSERT INTO dashboards (org_id, uid, title, tags, folder_uid, version, json, \
                 provider, file, created, updated) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6::json, $7, $8, to_timestamp($9), \
                 to_timestamp($10)) \
                 ON CONFLICT (org_id, uid) DO UPDATE SET title = excluded.title, \
                 tags = excluded.tags, folder_uid = excluded.folder_uid, \
                 version = dashboards.version + 1, json = excluded.json, \
                 provider = excluded.provider, file = excluded.file, updated = excluded.updated",
            )
            .bind(org)
            .bind(d.uid.as_str())
            .bind(d.title.as_str())
            .bind(d.tags.as_slice())
            .bind(d.folder_uid.as_str())
            .bind(d.json.as_str())
            .bind(d.provider.as_str())
            .bind(d.file.as_str())
            .bind(d.created)
            .bind(d.updated)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let panels = alerts
                .iter()
                .map(|a| db_i64(a.panel_id))
                .collect::<StoreResult<Vec<i64>>>()?;
            sqlx::query(
                "DELETE FROM alerts WHERE org_id = $1 AND dashboard_uid = $2 \
                 AND NOT (panel_id = ANY($3))",
            )
            .bind(org)
            .bind(d.uid.as_str())
            .bind(panels.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            for (a, panel) in alerts.iter().zip(&panels) {
                sqlx::query(
                    "INSERT INTO alerts (org_id, dashboard_uid, panel_id, name, state, paused, \
                     new_state_date) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7)) \
                     ON CONFLICT (org_id, dashboard_uid, panel_id) \
                     DO UPDATE SET name = excluded.name",
                )
                .bind(org)
                .bind(d.uid.as_str())
                .bind(*panel)
                .bind(a.name.as_str())
                .bind(a.state.as_str())
                .bind(a.paused)
                .bind(a.new_state_date)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        if changed {
            audit.append(&mut tx).await?;
        }
        let r = tx.commit().await.map_err(db_err);
        self.cache().forget_counts();
        r?;
        audit.committed(&mut conn).await?;
        Ok(())
    }
}

#[async_trait]
impl AlertStore for PgStore {
    async fn alerts(&self, org: OrgId) -> StoreResult<Vec<AlertRecord>> {
        let rows = sqlx::query(concat!(
            select_alerts!(),
            " WHERE a.org_id = $1 ORDER BY a.id"
        ))
        .bind(db_i64(org.0)?)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(alert_row).collect()
    }

    async fn set_alerts_paused(
        &self,
        org: Option<OrgId>,
        ids: Option<&[u64]>,
        paused: bool,
        at: i64,
    ) -> StoreResult<u64> {
        // Every selected row is touched (Grafana counts them, changed or not); only those
        // whose pause changes get the new state and its date (the right-hand sides read
        // the row before the update), and only those make it a change for the audit log.
        // No org means every org's; ids without an org name no org's alerts.
        const SQL: &str = "WITH sel AS ( \
                 SELECT id, paused AS was FROM alerts \
                 WHERE ($4::bigint IS NULL OR org_id = $4) \
                   AND ($5::bigint[] IS NULL OR id = ANY($5)) FOR UPDATE), \
             upd AS ( \
                 UPDATE alerts a SET state = CASE WHEN a.paused = $1 THEN a.state ELSE $2 END, \
                     new_state_date = CASE WHEN a.paused = $1 THEN a.new_state_date \
                         ELSE to_timestamp($3) END, \
                     paused = $1 \
                 FROM sel WHERE a.id = sel.id RETURNING sel.was) \
             SELECT count(*) AS touched, count(*) FILTER (WHERE was <> $1) AS changed FROM upd";
        if org.is_none() && ids.is_some() {
            return Ok(0);
        }
        let state = if paused { "paused" } else { "pending" };
        let ids = ids
            .map(|ids| {
                ids.iter()
                    .map(|id| db_i64(*id))
                    .collect::<StoreResult<Vec<i64>>>()
            })
            .transpose()?;
        let q = sqlx::query(SQL)
            .bind(paused)
            .bind(state)
            .bind(at)
            .bind(org.map(|o| db_i64(o.0)).transpose()?)
            .bind(ids);
        let changed = |row: &PgRow| Ok(u64_col(row, "changed")? > 0);
        match self.write_row(q, None, changed).await? {
            Some(row) => u64_col(&row, "touched"),
            None => Ok(0),
        }
    }
}
