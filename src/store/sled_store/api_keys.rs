//! API keys in sled: `api_keys` (id -> row), `api_keys_by_hash` (HMAC -> id) for O(1)
//! authentication, `api_keys_by_name` (org | service account or 0 | name -> id) for
//! uniqueness and listing.

use std::sync::Arc;

use async_trait::async_trait;

use super::users::remove_user_row;
use super::writer::T;
use super::{abort, bump, counter, dec, enc, get, keys, next_id, read_u64, SledStore};
use crate::domain::{OrgId, UserId};
use crate::store::{codec, ApiKeyRecord, ApiKeyStore, StoreError, StoreResult, UserRecord};

pub(crate) fn name_key(org: u64, service_account: Option<u64>, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + name.len());
    k.extend_from_slice(&org.to_be_bytes());
    k.extend_from_slice(&service_account.unwrap_or(0).to_be_bytes());
    k.extend_from_slice(name.as_bytes());
    k
}

impl SledStore {
    fn keys_of(&self, org: OrgId, service_account: Option<u64>) -> StoreResult<Vec<ApiKeyRecord>> {
        let mut prefix = org.key().to_vec();
        prefix.extend_from_slice(&service_account.unwrap_or(0).to_be_bytes());
        let mut out = Vec::new();
        for item in self.api_keys_by_name.scan_prefix(prefix) {
            let (_, id) = item?;
            if let Some(k) = get::<ApiKeyRecord>(&self.api_keys, keys::id(read_u64(Some(&id))))? {
                out.push(k);
            }
        }
        out.sort_by_key(|k| k.id);
        Ok(out)
    }
}

#[async_trait]
impl ApiKeyStore for SledStore {
    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<ApiKeyRecord> {
        let by_name_key = name_key(key.org_id, key.service_account_id, &key.name);
        self.write_audited(move |tx, pending| {
            let (rows, by_hash, by_name, counters, meta, log) = (
                &tx[T::ApiKeys],
                &tx[T::ApiKeysByHash],
                &tx[T::ApiKeysByName],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
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
            pending.record_created(log, id)?;
            Ok(row)
        })
        .await
    }

    async fn api_key(&self, id: u64) -> StoreResult<Option<ApiKeyRecord>> {
        get(&self.api_keys, id.to_be_bytes())
    }

    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<Arc<ApiKeyRecord>>> {
        self.memo.api_keys.read_through(self.seen(), *hash, || {
            match self.api_keys_by_hash.get(hash)? {
                Some(id) => Ok(get(&self.api_keys, keys::id(read_u64(Some(&id))))?.map(Arc::new)),
                None => Ok(None),
            }
        })
    }

    async fn api_keys(
        &self,
        org: OrgId,
        service_account: Option<UserId>,
    ) -> StoreResult<Vec<ApiKeyRecord>> {
        self.keys_of(org, service_account.map(|u| u.0))
    }

    async fn delete_api_key(&self, id: u64) -> StoreResult<Option<ApiKeyRecord>> {
        self.write_audited(move |tx, pending| {
            let (rows, by_hash, by_name, counters, log) = (
                &tx[T::ApiKeys],
                &tx[T::ApiKeysByHash],
                &tx[T::ApiKeysByName],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let Some(old) = rows.remove(&id.to_be_bytes())? else {
                return Ok(None);
            };
            let row: ApiKeyRecord = dec(&old)?;
            by_hash.remove(&row.hash)?;
            by_name.remove(name_key(row.org_id, row.service_account_id, &row.name))?;
            bump(counters, counter::API_KEYS, -1)?;
            pending.record(log)?;
            Ok(Some(row))
        })
        .await
    }

    async fn delete_service_account(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let Some(sa) = get::<UserRecord>(&self.users, id.key())? else {
            return Ok(None);
        };
        if !sa.is_service_account {
            return Ok(None);
        }
        let tokens = self.keys_of(OrgId(sa.org_id), Some(sa.id))?;
        self.write_audited(move |tx, pending| {
            let (rows, by_hash, by_name, counters) = (
                &tx[T::ApiKeys],
                &tx[T::ApiKeysByHash],
                &tx[T::ApiKeysByName],
                &tx[T::Counters],
            );
            for t in &tokens {
                if rows.remove(&t.id.to_be_bytes())?.is_some() {
                    by_hash.remove(&t.hash)?;
                    by_name.remove(name_key(t.org_id, t.service_account_id, &t.name))?;
                    bump(counters, counter::API_KEYS, -1)?;
                }
            }
            let row = remove_user_row(
                &tx[T::Users],
                &tx[T::ByLogin],
                &tx[T::ByEmail],
                &tx[T::ByUid],
                &tx[T::OrgMembers],
                counters,
                id,
            )?;
            if row.is_some() {
                pending.record(&tx[T::Audit])?;
            }
            Ok(row)
        })
        .await
    }

    async fn touch_api_key(&self, id: u64, at: i64) -> StoreResult<()> {
        let key = id.to_be_bytes();
        if let Some(old) = self.api_keys.get(key)? {
            let mut row: ApiKeyRecord = codec::decode(&old)?;
            row.last_used = Some(at);
            let _ = self
                .api_keys
                .compare_and_swap(key, Some(old), Some(codec::encode(&row)?))?;
            self.changed();
        }
        Ok(())
    }
}
