//! Dashboards, folders and their legacy alerts in sled, all keyed by org: `dashboards` and
//! `folders` (org | uid -> row), `alerts` (org | id -> row), `alerts_by_panel`
//! (org | dashboard uid "\n" panel id -> alert id). One provisioning round is one
//! transaction, counters included.

use std::collections::HashMap;

use async_trait::async_trait;
use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::audit::Pending;
use super::writer::T;
use super::{
    all_with_prefix, bump, counter, dec, enc, get, keys, next_id, tx_err, SledStore, TxResult,
};
use crate::domain::OrgId;
use crate::store::{
    AlertRecord, AlertStore, DashboardBatch, DashboardRecord, DashboardStore, FolderRecord,
    StoreResult,
};

pub(crate) fn panel_key(org: u64, dashboard_uid: &str, panel: u64) -> Vec<u8> {
    keys::org_named(org, &format!("{dashboard_uid}\n{panel}"))
}

/// Removes a dashboard's alerts; returns them by panel (to keep ids and pauses).
fn take_alerts(
    alerts: &TransactionalTree,
    by_panel: &TransactionalTree,
    old: &DashboardRecord,
) -> TxResult<HashMap<u64, AlertRecord>> {
    let mut out = HashMap::new();
    for panel in &old.alert_panels {
        let key = panel_key(old.org_id, &old.uid, *panel);
        if let Some(id) = by_panel.remove(key)? {
            let id = keys::read_u64(Some(&id));
            if let Some(row) = alerts.remove(&keys::pair(old.org_id, id))? {
                let a: AlertRecord = dec(&row)?;
                out.insert(a.panel_id, a);
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl DashboardStore for SledStore {
    async fn dashboards(&self, org: OrgId) -> StoreResult<Vec<DashboardRecord>> {
        all_with_prefix(&self.dashboards, &org.key())
    }

    async fn provider_dashboards(&self, provider: &str) -> StoreResult<Vec<DashboardRecord>> {
        let provider = provider.to_string();
        self.blocking(move |s| {
            Ok(super::all::<DashboardRecord>(&s.dashboards)?
                .into_iter()
                .filter(|d| d.provider == provider)
                .collect())
        })
        .await
    }

    async fn dashboard(&self, org: OrgId, uid: &str) -> StoreResult<Option<DashboardRecord>> {
        get(&self.dashboards, keys::org_named(org.0, uid))
    }

    async fn folders(&self, org: OrgId) -> StoreResult<Vec<FolderRecord>> {
        all_with_prefix(&self.folders, &org.key())
    }

    async fn apply_dashboards(&self, batch: &DashboardBatch) -> StoreResult<()> {
        let batch = batch.to_owned();
        self.write_audited(move |tx, pending| {
            let (dashboards, folders, alerts, by_panel, counters, meta, log) = (
                &tx[T::Dashboards],
                &tx[T::Folders],
                &tx[T::Alerts],
                &tx[T::AlertsByPanel],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
            let batch = &batch;
            let mut changed = !(batch.folders.is_empty() && batch.upserts.is_empty());
            for f in &batch.folders {
                let mut f = f.clone();
                let key = keys::org_named(f.org_id, &f.uid);
                match folders.get(key.as_slice())? {
                    Some(old) => {
                        let old: FolderRecord = dec(&old)?;
                        f.id = old.id;
                        f.created = old.created;
                    }
                    None => {
                        f.id = next_id(meta, "seq.folders")?;
                        bump(counters, counter::FOLDERS, 1)?;
                    }
                }
                folders.insert(key, enc(&f)?)?;
            }
            for (org, uid) in &batch.deletes {
                if let Some(old) = dashboards.remove(keys::org_named(*org, uid))? {
                    changed = true;
                    let old: DashboardRecord = dec(&old)?;
                    let gone = take_alerts(alerts, by_panel, &old)?;
                    bump(counters, counter::ALERTS, -(gone.len() as i64))?;
                    bump(counters, counter::TAGS, -(old.tags.len() as i64))?;
                    bump(counters, counter::DASHBOARDS, -1)?;
                }
            }
            for (d, new_alerts) in &batch.upserts {
                let mut d = d.clone();
                let key = keys::org_named(d.org_id, &d.uid);
                let mut previous = HashMap::new();
                match dashboards.get(key.as_slice())? {
                    Some(old) => {
                        let old: DashboardRecord = dec(&old)?;
                        d.id = old.id;
                        d.created = old.created;
                        d.version = old.version + 1;
                        previous = take_alerts(alerts, by_panel, &old)?;
                        bump(counters, counter::ALERTS, -(previous.len() as i64))?;
                        bump(counters, counter::TAGS, -(old.tags.len() as i64))?;
                    }
                    None => {
                        d.id = next_id(meta, "seq.dashboards")?;
                        d.version = 1;
                        bump(counters, counter::DASHBOARDS, 1)?;
                    }
                }
                bump(counters, counter::TAGS, d.tags.len() as i64)?;
                d.alert_panels = new_alerts.iter().map(|a| a.panel_id).collect();
                for a in new_alerts {
                    let mut a = a.clone();
                    a.org_id = d.org_id;
                    a.dashboard_uid = d.uid.clone();
                    a.dashboard_id = d.id;
                    match previous.get(&a.panel_id) {
                        Some(old) => {
                            a.id = old.id;
                            a.paused = old.paused;
                            a.state = old.state.clone();
                            a.new_state_date = old.new_state_date;
                        }
                        None => a.id = next_id(meta, "seq.alerts")?,
                    }
                    alerts.insert(&keys::pair(a.org_id, a.id), enc(&a)?)?;
                    by_panel.insert(
                        panel_key(a.org_id, &a.dashboard_uid, a.panel_id),
                        &a.id.to_be_bytes(),
                    )?;
                    bump(counters, counter::ALERTS, 1)?;
                }
                dashboards.insert(key, enc(&d)?)?;
            }
            if changed {
                pending.record(log)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl AlertStore for SledStore {
    async fn alerts(&self, org: OrgId) -> StoreResult<Vec<AlertRecord>> {
        all_with_prefix(&self.alerts, &org.key())
    }

    async fn set_alerts_paused(
        &self,
        org: Option<OrgId>,
        ids: Option<&[u64]>,
        paused: bool,
        at: i64,
    ) -> StoreResult<u64> {
        let _paused = self.write_gate().await;
        let targets: Vec<[u8; 16]> = match (org, ids) {
            (Some(org), Some(ids)) => ids.iter().map(|id| keys::pair(org.0, *id)).collect(),
            (None, Some(_)) => Vec::new(),
            (org, None) => {
                let prefix = org.map(|o| o.key().to_vec()).unwrap_or_default();
                self.alerts
                    .scan_prefix(prefix)
                    .keys()
                    .map(|k| {
                        k.map(|k| {
                            keys::pair(keys::read_u64(k.get(..8)), keys::read_u64(k.get(8..)))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let state = if paused { "paused" } else { "pending" };
        let pending = Pending::take();
        let r = (&self.alerts, &self.audit)
            .transaction(|(alerts, log)| {
                let mut changed = 0u64;
                let mut wrote = false;
                for key in &targets {
                    let Some(row) = alerts.get(key)? else {
                        continue;
                    };
                    let mut a: AlertRecord = dec(&row)?;
                    if a.paused != paused {
                        a.paused = paused;
                        a.state = state.into();
                        a.new_state_date = at;
                        alerts.insert(key, enc(&a)?)?;
                        wrote = true;
                    }
                    // Grafana counts the rows the update touched, changed or not.
                    changed += 1;
                }
                if wrote {
                    pending.record(log)?;
                }
                Ok(changed)
            })
            .map_err(tx_err);
        let r = pending.settle(&self.audit, r);
        self.durable(r).await
    }
}
