//! DEKs and secrets in sled: `deks` (id -> row), `secrets` (key -> ciphertext), reference
//! counts in `counters` (`dek.<id>.refs`), the active DEK and the re-encryption cursor in
//! `meta`. Every secret write adjusts the counts in the same transaction.

use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::{bump, dec, enc, next_id, read_u64, tx_err, SledStore, TxResult};
use crate::crypto::envelope::header_dek_id;
use crate::store::{
    codec, counter, DekRecord, DekState, EncryptionStore, Reencrypted, SecretWrite, StoreError,
};

const ACTIVE_DEK: &str = "active_dek";
const REENCRYPT_CURSOR: &str = "reencrypt_cursor";

fn dek_of(ciphertext: &[u8]) -> Option<u32> {
    header_dek_id(ciphertext).ok()
}

/// Applies secret writes inside a transaction that also holds `counters`.
pub(crate) fn apply_secret_writes(
    secrets: &TransactionalTree,
    counters: &TransactionalTree,
    writes: &[SecretWrite],
) -> TxResult<()> {
    for w in writes {
        let old = match &w.value {
            Some(v) => secrets.insert(w.key.as_bytes(), v.as_slice())?,
            None => secrets.remove(w.key.as_bytes())?,
        };
        if let Some(id) = old.as_deref().and_then(dek_of) {
            bump(counters, &counter::dek_refs(id), -1)?;
        }
        if let Some(id) = w.value.as_deref().and_then(dek_of) {
            bump(counters, &counter::dek_refs(id), 1)?;
        }
    }
    Ok(())
}

impl EncryptionStore for SledStore {
    fn deks(&self) -> Result<Vec<DekRecord>, StoreError> {
        self.deks
            .iter()
            .map(|item| {
                let (_, v) = item?;
                codec::decode(&v)
            })
            .collect()
    }

    fn dek(&self, id: u32) -> Result<Option<DekRecord>, StoreError> {
        match self.deks.get(id.to_be_bytes())? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    fn active_dek(&self) -> Result<Option<u32>, StoreError> {
        Ok(self
            .meta
            .get(ACTIVE_DEK)?
            .map(|v| read_u64(Some(&v)) as u32))
    }

    fn allocate_dek_id(&self) -> Result<u32, StoreError> {
        self.meta
            .transaction(|meta| Ok(next_id(meta, "next_dek_id")? as u32))
            .map_err(tx_err)
    }

    fn install_active_dek(&self, new: DekRecord) -> Result<(), StoreError> {
        (&self.deks, &self.meta)
            .transaction(|(deks, meta)| {
                if let Some(active) = meta.get(ACTIVE_DEK)? {
                    let key = (read_u64(Some(&active)) as u32).to_be_bytes();
                    if let Some(old) = deks.get(key)? {
                        let mut old: DekRecord = dec(&old)?;
                        old.state = DekState::Retired;
                        old.retired = new.created;
                        deks.insert(&key, enc(&old)?)?;
                    }
                }
                let mut row = new.clone();
                row.state = DekState::Active;
                deks.insert(&row.id.to_be_bytes(), enc(&row)?)?;
                meta.insert(ACTIVE_DEK, &u64::from(row.id).to_be_bytes())?;
                Ok(())
            })
            .map_err(tx_err)
    }

    fn update_dek(&self, dek: &DekRecord) -> Result<(), StoreError> {
        self.deks
            .insert(dek.id.to_be_bytes(), codec::encode(dek)?)?;
        Ok(())
    }

    fn dek_references(&self, id: u32) -> Result<u64, StoreError> {
        Ok(read_u64(
            self.counters.get(counter::dek_refs(id))?.as_deref(),
        ))
    }

    fn secret(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.secrets.get(key)?.map(|v| v.to_vec()))
    }

    fn write_secrets(&self, writes: &[SecretWrite]) -> Result<(), StoreError> {
        (&self.secrets, &self.counters)
            .transaction(|(secrets, counters)| apply_secret_writes(secrets, counters, writes))
            .map_err(tx_err)
    }

    fn secrets_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let iter = match cursor {
            Some(c) => self.secrets.range::<&[u8], _>((
                std::ops::Bound::Excluded(c.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => self.secrets.iter(),
        };
        let mut out = Vec::with_capacity(limit);
        for item in iter.take(limit) {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), v.to_vec()));
        }
        Ok(out)
    }

    fn secret_count(&self) -> Result<u64, StoreError> {
        Ok(self.secrets.len() as u64)
    }

    fn commit_reencrypt(
        &self,
        batch: &[Reencrypted],
        cursor: Option<&str>,
    ) -> Result<usize, StoreError> {
        (&self.secrets, &self.counters, &self.meta)
            .transaction(|(secrets, counters, meta)| {
                let mut written = 0;
                for item in batch {
                    let current = secrets.get(item.key.as_bytes())?;
                    if current.as_deref() != Some(item.expected.as_slice()) {
                        continue; // a concurrent update won
                    }
                    apply_secret_writes(
                        secrets,
                        counters,
                        &[SecretWrite {
                            key: item.key.clone(),
                            value: Some(item.new.clone()),
                        }],
                    )?;
                    written += 1;
                }
                match cursor {
                    Some(c) => meta.insert(REENCRYPT_CURSOR, c.as_bytes())?,
                    None => meta.remove(REENCRYPT_CURSOR)?,
                };
                Ok(written)
            })
            .map_err(tx_err)
    }

    fn reencrypt_cursor(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(REENCRYPT_CURSOR)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
