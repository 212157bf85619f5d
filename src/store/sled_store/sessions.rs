//! Sessions in sled: `sessions` (id -> row), `sessions_by_hash` (token hash -> id, current
//! and previous token), `sessions_by_user` (user id | session id -> ()).

use sled::Transactional;

use super::{bump, dec, enc, next_id, pair_key, tx_err, SledStore};
use crate::domain::UserId;
use crate::store::{codec, counter, SessionRecord, SessionStore, StoreError};

impl SessionStore for SledStore {
    fn create_session(&self, session: SessionRecord) -> Result<SessionRecord, StoreError> {
        (
            &self.sessions,
            &self.sessions_by_hash,
            &self.sessions_by_user,
            &self.counters,
            &self.meta,
        )
            .transaction(|(rows, by_hash, by_user, counters, meta)| {
                let id = next_id(meta, "next_session_id")?;
                let mut row = session.clone();
                row.id = id;
                rows.insert(&id.to_be_bytes(), enc(&row)?)?;
                by_hash.insert(&row.token_hash, &id.to_be_bytes())?;
                by_user.insert(&pair_key(row.user_id, id), &[])?;
                bump(counters, counter::SESSIONS, 1)?;
                Ok(row)
            })
            .map_err(tx_err)
    }

    fn session(&self, id: u64) -> Result<Option<SessionRecord>, StoreError> {
        match self.sessions.get(id.to_be_bytes())? {
            Some(b) => Ok(Some(codec::decode(&b)?)),
            None => Ok(None),
        }
    }

    fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        match self.sessions_by_hash.get(hash)? {
            Some(id) => {
                let id = super::read_u64(Some(&id));
                self.session(id)
            }
            None => Ok(None),
        }
    }

    fn rotate_session(
        &self,
        id: u64,
        expected_hash: &[u8; 32],
        new_hash: [u8; 32],
        prev_valid_until_ms: i64,
        at: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        (&self.sessions, &self.sessions_by_hash)
            .transaction(|(rows, by_hash)| {
                let Some(old) = rows.get(id.to_be_bytes())? else {
                    return Ok(None);
                };
                let mut row: SessionRecord = dec(&old)?;
                if &row.token_hash != expected_hash || row.revoked_ms != 0 {
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
            .map_err(tx_err)
    }

    fn touch_session(&self, id: u64, at: i64) -> Result<(), StoreError> {
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
                return Ok(());
            }
        }
        Ok(())
    }

    fn revoke_session(&self, id: u64, at: i64) -> Result<Option<SessionRecord>, StoreError> {
        (&self.sessions, &self.counters)
            .transaction(|(rows, counters)| {
                let Some(old) = rows.get(id.to_be_bytes())? else {
                    return Ok(None);
                };
                let mut row: SessionRecord = dec(&old)?;
                if row.revoked_ms != 0 {
                    return Ok(None);
                }
                row.revoked_ms = at;
                rows.insert(&id.to_be_bytes(), enc(&row)?)?;
                bump(counters, counter::SESSIONS, -1)?;
                Ok(Some(row))
            })
            .map_err(tx_err)
    }

    fn revoke_user_sessions(&self, user: UserId, at: i64) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.sessions_by_user.scan_prefix(user.key()) {
            let (k, _) = item?;
            let id = super::read_u64(k.get(8..16));
            if self.revoke_session(id, at)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    fn user_sessions(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.sessions_by_user.scan_prefix(user.key()) {
            let (k, _) = item?;
            if let Some(s) = self.session(super::read_u64(k.get(8..16)))? {
                if s.revoked_ms == 0 {
                    out.push(s);
                }
            }
        }
        Ok(out)
    }

    fn purge_sessions(
        &self,
        expired: &dyn Fn(&SessionRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.sessions.iter() {
            let (_, v) = item?;
            let row: SessionRecord = codec::decode(&v)?;
            if !expired(&row) {
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
                    by_user.remove(&pair_key(cur.user_id, cur.id))?;
                    if cur.revoked_ms == 0 {
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

    fn for_each_session(&self, f: &mut dyn FnMut(&SessionRecord)) -> Result<(), StoreError> {
        for item in self.sessions.iter() {
            let (_, v) = item?;
            f(&codec::decode(&v)?);
        }
        Ok(())
    }
}
