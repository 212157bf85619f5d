//! The license tree: the uploaded token and the last renewal attempt, one row each.

use async_trait::async_trait;

use super::writer::T;
use super::{get, SledStore};
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
        self.write_audited(move |tx, pending| {
            let (rows, log) = (&tx[T::License], &tx[T::Audit]);
            let gone = rows.remove(TOKEN)?.is_some();
            if gone {
                pending.record(log)?;
            }
            Ok(gone)
        })
        .await
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
    async fn put_license_row<R: serde::Serialize + Sync>(
        &self,
        key: &[u8],
        row: &R,
    ) -> StoreResult<()> {
        let (key, value) = (key.to_vec(), crate::store::codec::encode(row)?);
        self.write_audited(move |tx, pending| {
            tx[T::License].insert(key.as_slice(), value.as_slice())?;
            pending.record(&tx[T::Audit])
        })
        .await
    }
}
