//! The decoded rows of the reads every authenticated request makes (a user by id, a
//! session or an API key by its token's hash), kept while no write has committed since
//! they were read: a hit costs a lock and the clone of a shared pointer instead
//! of sled's tree walk and a decode.
//!
//! Valid by the store's `changes` counter, never by time. Every write to these trees moves
//! it after its commit and before its caller is answered: the writer's batches, `durable`
//! (every other mutating method), the import, and the three touches (`touch_session`,
//! `touch_api_key`, `touch_last_seen`), which write outside both. A read takes the counter
//! before it asks sled and stores what it read under that value; it is served only while
//! the counter still has it. So a row read before a commit is never served after the
//! commit has been answered, and a request that follows a 2xx reads the new row.
//!
//! Each map holds the rows of one counter value: the first fill after a write empties it,
//! so it holds at most what was read since the last write, and at most [`MAX_ENTRIES`].
//! Misses (no such row) are not kept: an unknown token always reaches sled.

use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::domain::FastMap;
use crate::store::{ApiKeyRecord, SessionRecord, UserRecord};

/// Rows per map before it is emptied (a bound on memory, not a policy).
pub(super) const MAX_ENTRIES: usize = 4096;

/// The three maps.
#[derive(Default)]
pub(super) struct Memos {
    pub(super) users: Memo<u64, Arc<UserRecord>>,
    pub(super) sessions: Memo<[u8; 32], Arc<SessionRecord>>,
    pub(super) api_keys: Memo<[u8; 32], Arc<ApiKeyRecord>>,
}

/// Rows read while the `changes` counter had one value.
pub(super) struct Memo<K, V> {
    inner: Mutex<Rows<K, V>>,
}

struct Rows<K, V> {
    /// The counter value the rows were read under.
    at: u64,
    rows: FastMap<K, V>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Rows {
                at: 0,
                rows: FastMap::default(),
            }),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    /// The row `key` names, if it was read while the counter had the value `now`.
    pub(super) fn get(&self, now: u64, key: &K) -> Option<V> {
        let rows = self.inner.lock();
        if rows.at != now {
            return None;
        }
        rows.rows.get(key).cloned()
    }

    /// Keeps `value`, read after the counter was read as `at`. A fill from before the
    /// map's value is dropped (a write has committed since it read); a fill from after it
    /// empties the map first.
    pub(super) fn put(&self, at: u64, key: K, value: &V) {
        let mut rows = self.inner.lock();
        if rows.at != at {
            if at < rows.at {
                return;
            }
            rows.rows.clear();
            rows.at = at;
        }
        if rows.rows.len() >= MAX_ENTRIES {
            rows.rows.clear();
        }
        rows.rows.insert(key, value.clone());
    }

    /// The row `key` names: from memory while the counter is still `now` (the value read
    /// before anything else), else from `read`, kept for the next reader.
    pub(super) fn read_through(
        &self,
        now: u64,
        key: K,
        read: impl FnOnce() -> crate::store::StoreResult<Option<V>>,
    ) -> crate::store::StoreResult<Option<V>> {
        if let Some(v) = self.get(now, &key) {
            return Ok(Some(v));
        }
        let found = read()?;
        if let Some(v) = &found {
            self.put(now, key, v);
        }
        Ok(found)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.lock().rows.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_served_only_under_the_value_they_were_read_at() {
        let m: Memo<u64, String> = Memo::default();
        m.put(3, 1, &"a".to_string());
        assert_eq!(m.get(3, &1).as_deref(), Some("a"));
        assert_eq!(m.get(4, &1), None, "a write committed since");
        // A fill that read before a later fill's value is stale: dropped.
        m.put(5, 2, &"b".to_string());
        m.put(4, 1, &"old".to_string());
        assert_eq!(m.get(5, &1), None);
        assert_eq!(m.get(5, &2).as_deref(), Some("b"));
        assert_eq!(m.len(), 1, "the fill at 5 emptied the rows of 3");
    }

    #[test]
    fn the_map_is_bounded() {
        let m: Memo<u64, u64> = Memo::default();
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            m.put(1, i, &i);
        }
        assert!(m.len() <= MAX_ENTRIES);
        assert_eq!(
            m.get(1, &(MAX_ENTRIES as u64 + 9)),
            Some(MAX_ENTRIES as u64 + 9)
        );
    }
}
