//! What provisioning stores: dashboards, folders and their legacy alerts (one transaction
//! per round, counters included), app plugin settings, notification channels, custom
//! roles, and the last reload of each kind.
//!
//! Trees: `dashboards` (uid -> row), `folders` (uid -> row), `alerts` (id -> row),
//! `alerts_by_panel` ("dashboard uid\npanel id" -> id), `plugin_settings` ("org/plugin"),
//! `notifiers` ("org/uid" -> row), `roles` (uid -> row), `provisioning_runs` (kind).

use std::collections::HashMap;

use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::secrets::apply_secret_writes;
use super::{bump, dec, enc, next_id, read_u64, tx_err, SledStore, TxResult};
use crate::store::{
    codec, counter, AlertRecord, DashboardBatch, DashboardRecord, FolderRecord, NotifierRecord,
    PluginSettingRecord, ProvisioningRun, ProvisioningStore, RoleRecord, SecretWrite, StoreError,
};

fn all<T: serde::de::DeserializeOwned>(tree: &sled::Tree) -> Result<Vec<T>, StoreError> {
    tree.iter()
        .map(|item| {
            let (_, v) = item?;
            codec::decode(&v)
        })
        .collect()
}

fn panel_key(dashboard_uid: &str, panel: u64) -> String {
    format!("{dashboard_uid}\n{panel}")
}

/// Removes a dashboard's alerts; returns them by panel (to keep ids and pauses).
fn take_alerts(
    alerts: &TransactionalTree,
    by_panel: &TransactionalTree,
    old: &DashboardRecord,
    panels: &[u64],
) -> TxResult<HashMap<u64, AlertRecord>> {
    let mut out = HashMap::new();
    for panel in panels {
        let key = panel_key(&old.uid, *panel);
        if let Some(id) = by_panel.remove(key.as_bytes())? {
            if let Some(row) = alerts.remove(&*id)? {
                let a: AlertRecord = dec(&row)?;
                out.insert(a.panel_id, a);
            }
        }
    }
    Ok(out)
}

impl ProvisioningStore for SledStore {
    fn dashboards(&self) -> Result<Vec<DashboardRecord>, StoreError> {
        all(&self.dashboards)
    }

    fn dashboard(&self, uid: &str) -> Result<Option<DashboardRecord>, StoreError> {
        self.dashboards
            .get(uid.as_bytes())?
            .map(|v| codec::decode(&v))
            .transpose()
    }

    fn folders(&self) -> Result<Vec<FolderRecord>, StoreError> {
        all(&self.folders)
    }

    fn apply_dashboards(&self, batch: &DashboardBatch) -> Result<(), StoreError> {
        (
            &self.dashboards,
            &self.folders,
            &self.alerts,
            &self.alerts_by_panel,
            &self.counters,
            &self.meta,
        )
            .transaction(|(dashboards, folders, alerts, by_panel, counters, meta)| {
                for f in &batch.folders {
                    let mut f = f.clone();
                    match folders.get(f.uid.as_bytes())? {
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
                    folders.insert(f.uid.as_bytes(), enc(&f)?)?;
                }
                for uid in &batch.deletes {
                    if let Some(old) = dashboards.remove(uid.as_bytes())? {
                        let old: DashboardRecord = dec(&old)?;
                        let gone = take_alerts(alerts, by_panel, &old, &old.alert_panels)?;
                        bump(counters, counter::ALERTS, -(gone.len() as i64))?;
                        bump(counters, counter::TAGS, -(old.tags.len() as i64))?;
                        bump(counters, counter::DASHBOARDS, -1)?;
                    }
                }
                for (d, new_alerts) in &batch.upserts {
                    let mut d = d.clone();
                    let mut previous = HashMap::new();
                    match dashboards.get(d.uid.as_bytes())? {
                        Some(old) => {
                            let old: DashboardRecord = dec(&old)?;
                            d.id = old.id;
                            d.created = old.created;
                            d.version = old.version + 1;
                            previous = take_alerts(alerts, by_panel, &old, &old.alert_panels)?;
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
                        alerts.insert(&a.id.to_be_bytes(), enc(&a)?)?;
                        by_panel.insert(
                            panel_key(&a.dashboard_uid, a.panel_id).as_bytes(),
                            &a.id.to_be_bytes(),
                        )?;
                        bump(counters, counter::ALERTS, 1)?;
                    }
                    dashboards.insert(d.uid.as_bytes(), enc(&d)?)?;
                }
                Ok(())
            })
            .map_err(tx_err)
    }

    fn alerts(&self) -> Result<Vec<AlertRecord>, StoreError> {
        all(&self.alerts)
    }

    fn set_alerts_paused(&self, ids: Option<&[u64]>, paused: bool) -> Result<u64, StoreError> {
        let targets: Vec<u64> = match ids {
            Some(ids) => ids.to_vec(),
            None => self
                .alerts
                .iter()
                .keys()
                .map(|k| k.map(|k| read_u64(Some(&k))))
                .collect::<Result<_, _>>()?,
        };
        let state = if paused { "paused" } else { "pending" };
        let at = crate::store::now();
        self.alerts
            .transaction(|alerts| {
                let mut changed = 0u64;
                for id in &targets {
                    let Some(row) = alerts.get(id.to_be_bytes())? else {
                        continue;
                    };
                    let mut a: AlertRecord = dec(&row)?;
                    if a.paused != paused {
                        a.paused = paused;
                        a.state = state.into();
                        a.new_state_date = at;
                        alerts.insert(&id.to_be_bytes(), enc(&a)?)?;
                    }
                    // Grafana counts the rows the update touched, changed or not.
                    changed += 1;
                }
                Ok(changed)
            })
            .map_err(tx_err)
    }

    fn plugin_settings(&self) -> Result<Vec<PluginSettingRecord>, StoreError> {
        all(&self.plugin_settings)
    }

    fn apply_plugin_settings(
        &self,
        set: &[PluginSettingRecord],
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError> {
        (&self.plugin_settings, &self.secrets, &self.counters)
            .transaction(|(rows, secrets_t, counters)| {
                for p in set {
                    let key = format!("{}/{}", p.org_id, p.plugin_id);
                    rows.insert(key.as_bytes(), enc(p)?)?;
                }
                apply_secret_writes(secrets_t, counters, secrets)
            })
            .map_err(tx_err)
    }

    fn notifiers(&self) -> Result<Vec<NotifierRecord>, StoreError> {
        all(&self.notifiers)
    }

    fn apply_notifiers(
        &self,
        set: &[NotifierRecord],
        delete: &[(u64, String)],
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError> {
        (&self.notifiers, &self.secrets, &self.counters, &self.meta)
            .transaction(|(rows, secrets_t, counters, meta)| {
                for (org, uid) in delete {
                    rows.remove(format!("{org}/{uid}").as_bytes())?;
                }
                for n in set {
                    let key = format!("{}/{}", n.org_id, n.uid);
                    let mut n = n.clone();
                    match rows.get(key.as_bytes())? {
                        Some(old) => {
                            let old: NotifierRecord = dec(&old)?;
                            n.id = old.id;
                            n.created = old.created;
                        }
                        None => n.id = next_id(meta, "seq.notifiers")?,
                    }
                    rows.insert(key.as_bytes(), enc(&n)?)?;
                }
                apply_secret_writes(secrets_t, counters, secrets)
            })
            .map_err(tx_err)
    }

    fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        all(&self.roles)
    }

    fn apply_roles(&self, set: &[RoleRecord], delete: &[String]) -> Result<(), StoreError> {
        self.roles
            .transaction(|rows| {
                for uid in delete {
                    rows.remove(uid.as_bytes())?;
                }
                for r in set {
                    rows.insert(r.uid.as_bytes(), enc(r)?)?;
                }
                Ok(())
            })
            .map_err(tx_err)
    }

    fn provisioning_runs(&self) -> Result<Vec<ProvisioningRun>, StoreError> {
        all(&self.provisioning_runs)
    }

    fn put_provisioning_run(&self, run: &ProvisioningRun) -> Result<(), StoreError> {
        self.provisioning_runs
            .insert(run.kind.as_bytes(), codec::encode(run)?)?;
        Ok(())
    }
}
