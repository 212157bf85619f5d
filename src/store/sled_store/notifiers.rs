//! App plugin settings (`plugin_settings`, "org/plugin" -> row), legacy notification
//! channels (`alert_notifications`, "org/uid" -> row), their secrets in the same
//! transaction, and the last provisioning run of each kind (`provisioning_runs`).

use async_trait::async_trait;

use super::secrets::apply_secret_writes;
use super::writer::T;
use super::{all, all_with_prefix, dec, enc, next_id, SledStore};
use crate::domain::OrgId;
use crate::store::{
    NotifierRecord, NotifierStore, PluginSettingRecord, PluginSettingStore, ProvisioningRun,
    ProvisioningRunStore, SecretWrite, StoreResult,
};

pub(crate) fn org_key(org: u64, name: &str) -> String {
    format!("{org}/{name}")
}

#[async_trait]
impl PluginSettingStore for SledStore {
    async fn plugin_settings(&self, org: OrgId) -> StoreResult<Vec<PluginSettingRecord>> {
        all_with_prefix(&self.plugin_settings, org_key(org.0, "").as_bytes())
    }

    async fn apply_plugin_settings(
        &self,
        set: &[PluginSettingRecord],
        secrets: &[SecretWrite],
    ) -> StoreResult<()> {
        let (secrets, set) = (secrets.to_owned(), set.to_owned());
        self.write_audited(move |tx, pending| {
            let (rows, secrets_t, secret_deks, counters, log) = (
                &tx[T::PluginSettings],
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let (secrets, set) = (&*secrets, &*set);
            for p in set {
                rows.insert(org_key(p.org_id, &p.plugin_id).as_bytes(), enc(p)?)?;
            }
            apply_secret_writes(secrets_t, secret_deks, counters, secrets)?;
            if !(set.is_empty() && secrets.is_empty()) {
                pending.record(log)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl NotifierStore for SledStore {
    async fn notifiers(&self, org: OrgId) -> StoreResult<Vec<NotifierRecord>> {
        all_with_prefix(&self.notifiers, org_key(org.0, "").as_bytes())
    }

    async fn all_notifiers(&self) -> StoreResult<Vec<NotifierRecord>> {
        all(&self.notifiers)
    }

    async fn apply_notifiers(
        &self,
        set: &[NotifierRecord],
        delete: &[(OrgId, String)],
        secrets: &[SecretWrite],
    ) -> StoreResult<()> {
        let (delete, secrets, set) = (delete.to_owned(), secrets.to_owned(), set.to_owned());
        self.write_audited(move |tx, pending| {
            let (rows, secrets_t, secret_deks, counters, meta, log) = (
                &tx[T::Notifiers],
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
            let (delete, secrets, set) = (&*delete, &*secrets, &*set);
            let mut changed = !(set.is_empty() && secrets.is_empty());
            for (org, uid) in delete {
                changed |= rows.remove(org_key(org.0, uid).as_bytes())?.is_some();
            }
            for n in set {
                let key = org_key(n.org_id, &n.uid);
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
            apply_secret_writes(secrets_t, secret_deks, counters, secrets)?;
            if changed {
                pending.record(log)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl ProvisioningRunStore for SledStore {
    async fn provisioning_runs(&self) -> StoreResult<Vec<ProvisioningRun>> {
        all(&self.provisioning_runs)
    }

    async fn put_provisioning_run(&self, run: &ProvisioningRun) -> StoreResult<()> {
        let run = run.to_owned();
        self.write_audited(move |tx, pending| {
            let (runs, log) = (&tx[T::ProvisioningRuns], &tx[T::Audit]);
            let run = &run;
            runs.insert(run.kind.as_bytes(), enc(run)?)?;
            pending.record(log)
        })
        .await
    }
}
