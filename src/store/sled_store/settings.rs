//! Settings overrides in sled: `settings_overrides` ("section\nkey" -> row), secret values
//! in `secrets`, in one transaction.

use sled::Transactional;

use super::secrets::apply_secret_writes;
use super::{enc, tx_err, SledStore};
use crate::store::{codec, SecretWrite, SettingOverride, SettingsStore, StoreError};

fn key(section: &str, key: &str) -> String {
    format!("{section}\n{key}")
}

impl SettingsStore for SledStore {
    fn setting_overrides(&self) -> Result<Vec<SettingOverride>, StoreError> {
        self.settings
            .iter()
            .map(|item| {
                let (_, v) = item?;
                codec::decode(&v)
            })
            .collect()
    }

    fn apply_setting_overrides(
        &self,
        set: &[SettingOverride],
        remove: &[(String, String)],
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError> {
        (&self.settings, &self.secrets, &self.counters)
            .transaction(|(rows, secrets_t, counters)| {
                for o in set {
                    rows.insert(key(&o.section, &o.key).as_bytes(), enc(o)?)?;
                }
                for (s, k) in remove {
                    rows.remove(key(s, k).as_bytes())?;
                }
                apply_secret_writes(secrets_t, counters, secrets)
            })
            .map_err(tx_err)
    }
}
