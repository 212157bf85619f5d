//! Settings overrides in sled: `settings_overrides` ("section\nkey" -> row), secret values
//! in `secrets`, in one transaction.

use async_trait::async_trait;

use super::secrets::apply_secret_writes;
use super::writer::T;
use super::{enc, SledStore};
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
        let changes = !(set.is_empty() && remove.is_empty() && secrets.is_empty());
        let (set, remove, secrets) = (set.to_vec(), remove.to_vec(), secrets.to_vec());
        self.write_audited(move |tx, pending| {
            let rows = &tx[T::Settings];
            for o in &set {
                rows.insert(key(&o.section, &o.key).as_bytes(), enc(o)?)?;
            }
            for (s, k) in &remove {
                rows.remove(key(s, k).as_bytes())?;
            }
            apply_secret_writes(
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &secrets,
            )?;
            if changes {
                pending.record(&tx[T::Audit])?;
            }
            Ok(())
        })
        .await
    }
}
