//! The license tree: the uploaded token and the last renewal attempt, one row each.

use async_trait::async_trait;

use super::{get, SledStore};
use crate::store::{codec, LicenseStore, RenewalRecord, StoreError, StoreResult, StoredLicense};

pub(crate) const TOKEN: &[u8] = b"token";
pub(crate) const RENEWAL: &[u8] = b"renewal";

#[async_trait]
impl LicenseStore for SledStore {
    async fn license(&self) -> StoreResult<Option<StoredLicense>> {
        get(&self.license, TOKEN)
    }

    async fn put_license(&self, license: &StoredLicense) -> StoreResult<()> {
        let _paused = self.write_gate().await;
        let r = codec::encode(license)
            .and_then(|v| self.license.insert(TOKEN, v).map_err(StoreError::from));
        self.durable(r).await.map(|_| ())
    }

    async fn delete_license(&self) -> StoreResult<bool> {
        let _paused = self.write_gate().await;
        let r = self
            .license
            .remove(TOKEN)
            .map(|old| old.is_some())
            .map_err(StoreError::from);
        self.durable(r).await
    }

    async fn last_renewal(&self) -> StoreResult<Option<RenewalRecord>> {
        get(&self.license, RENEWAL)
    }

    async fn put_renewal(&self, record: &RenewalRecord) -> StoreResult<()> {
        let _paused = self.write_gate().await;
        let r = codec::encode(record)
            .and_then(|v| self.license.insert(RENEWAL, v).map_err(StoreError::from));
        self.durable(r).await.map(|_| ())
    }
}
