//! DEKs and secrets in sled: `deks` (id -> row), `secrets` (key -> ciphertext),
//! `secret_deks` (key -> the DEK id that sealed it, from the writer), reference counts in
//! `counters` (`dek.<id>.refs`), the active DEK and the re-encryption cursor in `meta`.
//! Every secret write adjusts the counts in the same transaction; the store never reads a
//! ciphertext.

use async_trait::async_trait;
use sled::transaction::TransactionalTree;
use sled::Transactional;

use super::audit::Pending;
use super::writer::T;
use super::{abort, bump, counter, dec, enc, get, next_id, read_u64, tx_err, SledStore, TxResult};
use crate::store::{
    DekRecord, DekState, EncryptionStore, Reencrypted, SecretWrite, StoreError, StoreResult,
};

pub(crate) const ACTIVE_DEK: &str = "active_dek";
pub(crate) const REENCRYPT_CURSOR: &str = "reencrypt_cursor";

pub(crate) fn dek_key(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

fn read_dek_id(v: Option<&[u8]>) -> Option<u32> {
    v.and_then(|b| b.get(..4)?.try_into().ok())
        .map(u32::from_be_bytes)
}

/// Applies secret writes inside a transaction that also holds `secret_deks` and `counters`.
pub(crate) fn apply_secret_writes(
    secrets: &TransactionalTree,
    secret_deks: &TransactionalTree,
    counters: &TransactionalTree,
    writes: &[SecretWrite],
) -> TxResult<()> {
    for w in writes {
        let key = w.key.as_bytes();
        let old_dek = match &w.value {
            Some(v) => {
                secrets.insert(key, v.ciphertext.as_slice())?;
                secret_deks.insert(key, &dek_key(v.dek_id))?
            }
            None => {
                secrets.remove(key)?;
                secret_deks.remove(key)?
            }
        };
        if let Some(id) = read_dek_id(old_dek.as_deref()) {
            bump(counters, &counter::dek_refs(id), -1)?;
        }
        if let Some(v) = &w.value {
            bump(counters, &counter::dek_refs(v.dek_id), 1)?;
        }
    }
    Ok(())
}

#[async_trait]
impl EncryptionStore for SledStore {
    async fn deks(&self) -> StoreResult<Vec<DekRecord>> {
        super::all(&self.deks)
    }

    async fn dek(&self, id: u32) -> StoreResult<Option<DekRecord>> {
        get(&self.deks, dek_key(id))
    }

    async fn active_dek(&self) -> StoreResult<Option<u32>> {
        Ok(self
            .meta
            .get(ACTIVE_DEK)?
            .map(|v| read_u64(Some(&v)) as u32))
    }

    async fn allocate_dek_id(&self) -> StoreResult<u32> {
        let _paused = self.write_gate().await;
        let r = self
            .meta
            .transaction(|meta| Ok(next_id(meta, "next_dek_id")? as u32))
            .map_err(tx_err);
        self.durable(r).await
    }

    async fn install_active_dek(&self, new: DekRecord) -> StoreResult<()> {
        self.write_audited(move |tx, pending| {
            let (deks, meta, log) = (&tx[T::Deks], &tx[T::Meta], &tx[T::Audit]);
            if let Some(active) = meta.get(ACTIVE_DEK)? {
                let key = dek_key(read_u64(Some(&active)) as u32);
                if let Some(old) = deks.get(key)? {
                    let mut old: DekRecord = dec(&old)?;
                    old.state = DekState::Retired;
                    old.retired = Some(new.created);
                    deks.insert(&key, enc(&old)?)?;
                }
            }
            let mut row = new.clone();
            row.state = DekState::Active;
            row.retired = None;
            deks.insert(&dek_key(row.id), enc(&row)?)?;
            meta.insert(ACTIVE_DEK, &u64::from(row.id).to_be_bytes())?;
            pending.record(log)
        })
        .await
    }

    async fn reserve_dek_uses(&self, id: u32, reserved: u64) -> StoreResult<()> {
        self.write(move |tx| {
            let deks = &tx[T::Deks];
            let Some(old) = deks.get(dek_key(id))? else {
                return abort(StoreError::NotFound);
            };
            let mut row: DekRecord = dec(&old)?;
            if reserved > row.reserved {
                row.reserved = reserved;
                deks.insert(&dek_key(id), enc(&row)?)?;
            }
            Ok(())
        })
        .await
    }

    async fn rewrap_dek(&self, id: u32, kek_id: &str, wrapped: Vec<u8>) -> StoreResult<()> {
        let kek_id = kek_id.to_owned();
        self.write_audited(move |tx, pending| {
            let (deks, log) = (&tx[T::Deks], &tx[T::Audit]);
            let kek_id = &*kek_id;
            let Some(old) = deks.get(dek_key(id))? else {
                return abort(StoreError::NotFound);
            };
            let mut row: DekRecord = dec(&old)?;
            row.kek_id = kek_id.to_string();
            row.wrapped = wrapped.clone();
            deks.insert(&dek_key(id), enc(&row)?)?;
            pending.record(log)
        })
        .await
    }

    async fn destroy_dek(&self, id: u32) -> StoreResult<bool> {
        let _paused = self.write_gate().await;
        let refs = counter::dek_refs(id);
        let pending = Pending::take();
        let r = (&self.deks, &self.counters, &self.audit)
            .transaction(|(deks, counters, log)| {
                let Some(old) = deks.get(dek_key(id))? else {
                    return Ok(false);
                };
                let mut row: DekRecord = dec(&old)?;
                if row.state != DekState::Retired
                    || read_u64(counters.get(refs.as_bytes())?.as_deref()) > 0
                {
                    return Ok(false);
                }
                row.state = DekState::Destroyed;
                zeroize::Zeroize::zeroize(&mut row.wrapped);
                row.wrapped.clear();
                deks.insert(&dek_key(id), enc(&row)?)?;
                pending.record(log)?;
                Ok(true)
            })
            .map_err(tx_err);
        let r = pending.settle(&self.audit, r);
        self.durable(r).await
    }

    async fn dek_references(&self, id: u32) -> StoreResult<u64> {
        Ok(read_u64(
            self.counters.get(counter::dek_refs(id))?.as_deref(),
        ))
    }

    async fn secret(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.secrets.get(key)?.map(|v| v.to_vec()))
    }

    async fn write_secrets(&self, writes: &[SecretWrite]) -> StoreResult<()> {
        let writes = writes.to_owned();
        self.write_audited(move |tx, pending| {
            let (secrets, secret_deks, counters, log) = (
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let writes = &*writes;
            apply_secret_writes(secrets, secret_deks, counters, writes)?;
            if !writes.is_empty() {
                pending.record(log)?;
            }
            Ok(())
        })
        .await
    }

    async fn secrets_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
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

    async fn secret_count(&self) -> StoreResult<u64> {
        Ok(self.secrets.len() as u64)
    }

    async fn commit_reencrypt(
        &self,
        batch: &[Reencrypted],
        cursor: Option<&str>,
    ) -> StoreResult<usize> {
        let (batch, cursor) = (batch.to_owned(), cursor.map(str::to_owned));
        self.write_audited(move |tx, pending| {
            let (secrets, secret_deks, counters, meta, log) = (
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
            let (batch, cursor) = (&*batch, cursor.as_deref());
            let mut written = 0;
            for item in batch {
                let current = secrets.get(item.key.as_bytes())?;
                if current.as_deref() != Some(item.expected.as_slice()) {
                    continue; // a concurrent update won
                }
                apply_secret_writes(
                    secrets,
                    secret_deks,
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
            pending.record(log)?;
            Ok(written)
        })
        .await
    }

    async fn reencrypt_cursor(&self) -> StoreResult<Option<String>> {
        Ok(self
            .meta
            .get(REENCRYPT_CURSOR)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}
