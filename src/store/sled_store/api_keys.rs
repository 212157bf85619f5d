//! API keys in sled: `api_keys` (id -> row), `api_keys_by_hash` (HMAC -> id) for O(1)
//! authentication, `api_keys_by_name` (org | service account | name -> id) for uniqueness.

use sled::Transactional;

use super::{abort, bump, dec, enc, next_id, tx_err, SledStore};
use crate::domain::OrgId;
use crate::store::{codec, counter, ApiKeyRecord, ApiKeyStore, StoreError};

fn name_key(org: u64, service_account: u64, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + name.len());
    k.extend_from_slice(&org.to_be_bytes());
    k.extend_from_slice(&service_account.to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

impl ApiKeyStore for SledStore {
    fn create_api_key(&self, key: ApiKeyRecord) -> Result<ApiKeyRecord, StoreError> {
        let by_name_key = name_key(key.org_id, key.service_account_id, &key.name);
        (
            &self.api_keys,
            &self.api_keys_by_hash,
            &self.api_keys_by_name,
            &self.counters,
            &self.meta,
        )
            .transaction(|(rows, by_hash, by_name, counters, meta)| {
                if by_name.get(by_name_key.as_slice())?.is_some() {
                    return abort(StoreError::Conflict("name"));
                }
                let id = next_id(meta, "next_api_key_id")?;
                let mut row = key.clone();
                row.id = id;
                rows.insert(&id.to_be_bytes(), enc(&row)?)?;
                by_hash.insert(&row.hash, &id.to_be_bytes())?;
                by_name.insert(by_name_key.as_slice(), &id.to_be_bytes())?;
                bump(counters, counter::API_KEYS, 1)?;
                Ok(row)
            })
            .map_err(tx_err)
    }

    fn api_key(&self, id: u64) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self.api_keys.get(id.to_be_bytes())? {
            Some(b) => Ok(Some(codec::decode(&b)?)),
            None => Ok(None),
        }
    }

    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self.api_keys_by_hash.get(hash)? {
            Some(id) => self.api_key(super::read_u64(Some(&id))),
            None => Ok(None),
        }
    }

    fn api_keys(&self, org: OrgId, service_account: u64) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut prefix = org.key().to_vec();
        prefix.extend_from_slice(&service_account.to_be_bytes());
        let mut out = Vec::new();
        for item in self.api_keys_by_name.scan_prefix(prefix) {
            let (_, id) = item?;
            if let Some(k) = self.api_key(super::read_u64(Some(&id)))? {
                out.push(k);
            }
        }
        out.sort_by_key(|k| k.id);
        Ok(out)
    }

    fn delete_api_key(&self, id: u64) -> Result<Option<ApiKeyRecord>, StoreError> {
        (
            &self.api_keys,
            &self.api_keys_by_hash,
            &self.api_keys_by_name,
            &self.counters,
        )
            .transaction(|(rows, by_hash, by_name, counters)| {
                let Some(old) = rows.remove(&id.to_be_bytes())? else {
                    return Ok(None);
                };
                let row: ApiKeyRecord = dec(&old)?;
                by_hash.remove(&row.hash)?;
                by_name.remove(name_key(row.org_id, row.service_account_id, &row.name))?;
                bump(counters, counter::API_KEYS, -1)?;
                Ok(Some(row))
            })
            .map_err(tx_err)
    }

    fn touch_api_key(&self, id: u64, at: i64) -> Result<(), StoreError> {
        let key = id.to_be_bytes();
        if let Some(old) = self.api_keys.get(key)? {
            let mut row: ApiKeyRecord = codec::decode(&old)?;
            row.last_used = at;
            let _ = self
                .api_keys
                .compare_and_swap(key, Some(old), Some(codec::encode(&row)?))?;
        }
        Ok(())
    }
}
