//! App plugin settings per org: the API's read and provisioning's writes (secure fields
//! encrypted, in the same store unit as the settings).

use std::sync::Arc;

use crate::crypto::envelope::SecretContext;
use crate::domain::Action;
use crate::domain::{OrgId, Principal};
use crate::error::AppError;
use crate::store::{PluginSettingRecord, PluginSettingStore, SecretWrite};

pub struct PluginService {
    store: Arc<dyn PluginSettingStore>,
}

/// The secret context of a plugin's secure field (`owner` is "org/plugin").
pub fn plugin_ctx<'a>(owner: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        purpose: "plugin",
        owner,
        field,
    }
}

impl PluginService {
    pub fn new(store: Arc<dyn PluginSettingStore>) -> Self {
        Self { store }
    }

    /// `GET /api/plugins/:id/settings` (the caller's org).
    pub async fn plugin_settings(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<PluginSettingRecord, AppError> {
        p.require(Action::PluginsRead, &format!("plugins:id:{id}"))?;
        self.store
            .plugin_settings(p.org_id)
            .await?
            .into_iter()
            .find(|s| s.plugin_id == id)
            .ok_or_else(|| {
                AppError::not_found("Plugin not found, no installed plugin with that id")
            })
    }

    /// Provisioning: an org's stored settings.
    pub async fn org_settings(&self, org: OrgId) -> Result<Vec<PluginSettingRecord>, AppError> {
        Ok(self.store.plugin_settings(org).await?)
    }

    /// Provisioning: settings and their secrets in one store unit.
    pub async fn apply(
        &self,
        set: &[PluginSettingRecord],
        secrets: &[SecretWrite],
    ) -> Result<(), AppError> {
        Ok(self.store.apply_plugin_settings(set, secrets).await?)
    }
}
