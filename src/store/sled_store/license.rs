//! The license tree: the uploaded token and the last renewal attempt, one row each.

use async_trait::async_trait;

use sled::Transactional;

use super::audit::Pending;
use super::{enc, get, tx_err, SledStore};
use crate::store::{LicenseStore, RenewalRecord, StoreResult, StoredLicense};

pub(crate) const TOKEN: &[u8] = b"token";
pub(crate) const RENEWAL: &[u8] = b"renewal";

#[async_trait]
impl LicenseStore for SledStore {
    async fn license(&self) -> StoreResult<Option<StoredLicense>> {
        get(&self.license, TOKEN)
    }

    async fn put_license(&self, license: &StoredLicense) -> StoreResult<()> {
        self.put_license_row(TOKEN, license).await
    }

    async fn delete_license(&self) -> StoreResult<bool> {
        let _paused = self.write_gate().await;
        let pending = Pending::take();
        let r = (&self.license, &self.audit)
            .transaction(|(rows, log)| {
                let gone = rows.remove(TOKEN)?.is_some();
                if gone {
                    pending.record(log)?;
                }
                Ok(gone)
            })
            .map_err(tx_err);
        let r = pending.settle(&self.audit, r);
        self.durable(r).await
    }

    async fn last_renewal(&self) -> StoreResult<Option<RenewalRecord>> {
        get(&self.license, RENEWAL)
    }

    async fn put_renewal(&self, record: &RenewalRecord) -> StoreResult<()> {
        self.put_license_row(RENEWAL, record).await
    }
}

impl SledStore {
    /// Writes the token or the renewal record, with the request's audit event.
    async fn put_license_row<T: serde::Serialize + Sync>(
        &self,
        key: &[u8],
        row: &T,
    ) -> StoreResult<()> {
        let _paused = self.write_gate().await;
        let pending = Pending::take();
        let r = (&self.license, &self.audit)
            .transaction(|(rows, log)| {
                rows.insert(key, enc(row)?)?;
                pending.record(log)
            })
            .map_err(tx_err);
        let r = pending.settle(&self.audit, r);
        self.durable(r).await
    }
}
