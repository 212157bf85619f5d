//! Legacy alert notification channels: the API's read and provisioning's writes. Secure
//! settings are stored only encrypted, in the same store unit as the channel.

use std::sync::Arc;

use crate::crypto::envelope::SecretContext;
use crate::domain::Action;
use crate::domain::{OrgId, Principal};
use crate::error::AppError;
use crate::store::{NotifierRecord, NotifierStore, SecretWrite};

pub struct NotifierService {
    store: Arc<dyn NotifierStore>,
}

/// The secret context of a channel's secure setting (`owner` is "org/uid").
pub fn notifier_ctx<'a>(owner: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        purpose: "notifier",
        owner,
        field,
    }
}

impl NotifierService {
    pub fn new(store: Arc<dyn NotifierStore>) -> Self {
        Self { store }
    }

    /// `GET /api/alert-notifications` (the caller's org).
    pub async fn notifiers(&self, p: &Principal) -> Result<Vec<NotifierRecord>, AppError> {
        p.require(Action::AlertNotificationsRead, "")?;
        let mut v = self.store.notifiers(p.org_id).await?;
        v.sort_by_key(|n| n.id);
        Ok(v)
    }

    /// Provisioning: every org's channels.
    pub async fn all(&self) -> Result<Vec<NotifierRecord>, AppError> {
        Ok(self.store.all_notifiers().await?)
    }

    /// Provisioning: upserts, deletes and their secrets in one store unit.
    pub async fn apply(
        &self,
        set: &[NotifierRecord],
        delete: &[(OrgId, String)],
        secrets: &[SecretWrite],
    ) -> Result<(), AppError> {
        Ok(self.store.apply_notifiers(set, delete, secrets).await?)
    }
}
