//! The license tree: the uploaded token and the last renewal attempt, one row each.

use super::SledStore;
use crate::store::{codec, LicenseStore, RenewalRecord, StoreError, StoredLicense};

const TOKEN: &[u8] = b"token";
const RENEWAL: &[u8] = b"renewal";

impl SledStore {
    fn license_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        self.license
            .get(key)?
            .map(|v| codec::decode(&v))
            .transpose()
    }
}

impl LicenseStore for SledStore {
    fn license(&self) -> Result<Option<StoredLicense>, StoreError> {
        self.license_get(TOKEN)
    }

    fn put_license(&self, license: &StoredLicense) -> Result<(), StoreError> {
        self.license.insert(TOKEN, codec::encode(license)?)?;
        Ok(())
    }

    fn delete_license(&self) -> Result<bool, StoreError> {
        Ok(self.license.remove(TOKEN)?.is_some())
    }

    fn last_renewal(&self) -> Result<Option<RenewalRecord>, StoreError> {
        self.license_get(RENEWAL)
    }

    fn put_renewal(&self, record: &RenewalRecord) -> Result<(), StoreError> {
        self.license.insert(RENEWAL, codec::encode(record)?)?;
        Ok(())
    }
}
