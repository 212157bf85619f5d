//! Sessions in sled: `sessions` (id -> row), `sessions_by_hash` (token hash -> id, current
//! and previous token), `sessions_by_user` (user id | session id -> ()).

use std::sync::Arc;

use async_trait::async_trait;
use sled::Transactional;

use super::writer::{Tx, T};
use super::{bump, counter, dec, enc, get, keys, next_id, read_u64, tx_err, SledStore, TxResult};
use crate::domain::UserId;
use crate::store::{codec, SessionPurge, SessionRecord, SessionStore, StoreResult};

impl SledStore {
    /// Revokes one session inside the writer's transaction; `None` when it is missing or
    /// revoked already.
    fn revoke_in(tx: &Tx<'_>, id: u64, at: i64) -> TxResult<Option<SessionRecord>> {
        let (rows, counters) = (&tx[T::Sessions], &tx[T::Counters]);
        let Some(old) = rows.get(id.to_be_bytes())? else {
            return Ok(None);
        };
        let mut row: SessionRecord = dec(&old)?;
        if row.revoked_ms.is_some() {
            return Ok(None);
        }
        row.revoked_ms = Some(at);
        rows.insert(&id.to_be_bytes(), enc(&row)?)?;
        bump(counters, counter::SESSIONS, -1)?;
        Ok(Some(row))
    }

    fn purge_sync(&self, bounds: SessionPurge) -> StoreResult<usize> {
        let mut n = 0;
        for item in self.sessions.iter() {
            let (_, v) = item?;
            let row: SessionRecord = codec::decode(&v)?;
            let expired = row.created_ms <= bounds.created_before_ms
                || row.last_used_ms() <= bounds.idle_before_ms;
            if !expired {
                continue;
            }
            let removed = (
                &self.sessions,
                &self.sessions_by_hash,
                &self.sessions_by_user,
                &self.counters,
            )
                .transaction(|(rows, by_hash, by_user, counters)| {
                    let Some(cur) = rows.remove(&row.id.to_be_bytes())? else {
                        return Ok(false);
                    };
                    let cur: SessionRecord = dec(&cur)?;
                    by_hash.remove(&cur.token_hash)?;
                    if let Some(prev) = cur.prev_token_hash {
                        by_hash.remove(&prev)?;
                    }
                    by_user.remove(&keys::pair(cur.user_id, cur.id))?;
                    if cur.revoked_ms.is_none() {
                        bump(counters, counter::SESSIONS, -1)?;
                    }
                    Ok(true)
                })
                .map_err(tx_err)?;
            if removed {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn create_session(&self, session: SessionRecord) -> StoreResult<SessionRecord> {
        self.write_audited(move |tx, pending| {
            let (rows, by_hash, by_user, counters, meta, log) = (
                &tx[T::Sessions],
                &tx[T::SessionsByHash],
                &tx[T::SessionsByUser],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
            let id = next_id(meta, "next_session_id")?;
            let mut row = session.clone();
            row.id = id;
            rows.insert(&id.to_be_bytes(), enc(&row)?)?;
            by_hash.insert(&row.token_hash, &id.to_be_bytes())?;
            by_user.insert(&keys::pair(row.user_id, id), &[])?;
            bump(counters, counter::SESSIONS, 1)?;
            pending.record_created(log, id)?;
            Ok(row)
        })
        .await
    }

    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>> {
        get(&self.sessions, id.to_be_bytes())
    }

    async fn session_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<Arc<SessionRecord>>> {
        self.memo.sessions.read_through(self.seen(), *hash, || {
            match self.sessions_by_hash.get(hash)? {
                Some(id) => Ok(get(&self.sessions, keys::id(read_u64(Some(&id))))?.map(Arc::new)),
                None => Ok(None),
            }
        })
    }

    async fn rotate_session(
        &self,
        id: u64,
        expected_hash: &[u8; 32],
        new_hash: [u8; 32],
        prev_valid_until_ms: i64,
        at: i64,
    ) -> StoreResult<Option<SessionRecord>> {
        let expected_hash = *expected_hash;
        self.write(move |tx| {
            let (rows, by_hash) = (&tx[T::Sessions], &tx[T::SessionsByHash]);
            let Some(old) = rows.get(id.to_be_bytes())? else {
                return Ok(None);
            };
            let mut row: SessionRecord = dec(&old)?;
            if row.token_hash != expected_hash || row.revoked_ms.is_some() {
                return Ok(None);
            }
            if let Some(older) = row.prev_token_hash {
                by_hash.remove(&older)?;
            }
            row.prev_token_hash = Some(row.token_hash);
            row.prev_valid_until_ms = prev_valid_until_ms;
            row.token_hash = new_hash;
            row.rotated_ms = at;
            row.seen_ms = at;
            by_hash.insert(&new_hash, &id.to_be_bytes())?;
            rows.insert(&id.to_be_bytes(), enc(&row)?)?;
            Ok(Some(row))
        })
        .await
    }

    async fn touch_session(&self, id: u64, at: i64) -> StoreResult<()> {
        let key = id.to_be_bytes();
        for _ in 0..4 {
            let Some(old) = self.sessions.get(key)? else {
                return Ok(());
            };
            let mut row: SessionRecord = codec::decode(&old)?;
            row.seen_ms = at;
            let new = codec::encode(&row)?;
            if self
                .sessions
                .compare_and_swap(key, Some(old), Some(new))?
                .is_ok()
            {
                self.changed();
                return Ok(());
            }
        }
        Ok(())
    }

    async fn revoke_session(&self, id: u64, at: i64) -> StoreResult<Option<SessionRecord>> {
        self.write_audited(move |tx, pending| {
            let row = Self::revoke_in(tx, id, at)?;
            if row.is_some() {
                pending.record(&tx[T::Audit])?;
            }
            Ok(row)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user: UserId, at: i64) -> StoreResult<usize> {
        let ids = self
            .sessions_by_user
            .scan_prefix(user.key())
            .map(|item| item.map(|(k, _)| read_u64(k.get(8..16))))
            .collect::<Result<Vec<u64>, _>>()?;
        // One transaction; the request's event is recorded once, with the first revocation.
        self.write_audited(move |tx, pending| {
            let mut n = 0;
            for id in &ids {
                if Self::revoke_in(tx, *id, at)?.is_some() {
                    if n == 0 {
                        pending.record(&tx[T::Audit])?;
                    }
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>> {
        let mut out = Vec::new();
        for item in self.sessions_by_user.scan_prefix(user.key()) {
            let (k, _) = item?;
            if let Some(s) = get::<SessionRecord>(&self.sessions, keys::id(read_u64(k.get(8..16))))?
            {
                if s.revoked_ms.is_none() {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    async fn purge_sessions(&self, bounds: SessionPurge) -> StoreResult<usize> {
        let _paused = self.write_gate().await;
        let r = self.blocking(move |s| s.purge_sync(bounds)).await;
        self.durable(r).await
    }

    async fn active_session_count(&self) -> StoreResult<u64> {
        Ok(read_u64(self.counters.get(counter::SESSIONS)?.as_deref()))
    }
}
