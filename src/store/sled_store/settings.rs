//! Settings overrides in sled: `settings_overrides` ("section\nkey" -> row), secret values
//! in `secrets`, in one transaction.

use async_trait::async_trait;
use sled::Transactional;

use super::audit::Pending;
use super::secrets::apply_secret_writes;
use super::{enc, tx_err, SledStore};
use crate::store::{SecretWrite, SettingOverride, SettingsStore, StoreResult};

pub(crate) fn key(section: &str, key: &str) -> String {
    format!("{section}\n{key}")
}

#[async_trait]
impl SettingsStore for SledStore {
    async fn setting_overrides(&self) -> StoreResult<Vec<SettingOverride>> {
        super::all(&self.settings)
    }

    async fn apply_setting_overrides(
        &self,
        set: &[SettingOverride],
        remove: &[(String, String)],
        secrets: &[SecretWrite],
    ) -> StoreResult<()> {
        let _paused = self.write_gate().await;
        let pending = Pending::take();
        let changes = !(set.is_empty() && remove.is_empty() && secrets.is_empty());
        let r = (
            &self.settings,
            &self.secrets,
            &self.secret_deks,
            &self.counters,
            &self.audit,
        )
            .transaction(|(rows, secrets_t, secret_deks, counters, log)| {
                for o in set {
                    rows.insert(key(&o.section, &o.key).as_bytes(), enc(o)?)?;
                }
                for (s, k) in remove {
                    rows.remove(key(s, k).as_bytes())?;
                }
                apply_secret_writes(secrets_t, secret_deks, counters, secrets)?;
                if changes {
                    pending.record(log)?;
                }
                Ok(())
            })
            .map_err(tx_err);
        let r = pending.settle(&self.audit, r);
        self.durable(r).await
    }
}
