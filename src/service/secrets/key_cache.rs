//! The cache of unwrapped data keys, read on every decryption without a lock.
//!
//! The keys change rarely (a load on first use, a rotation, a destroy, a reload after
//! another node's change), so every change replaces the whole map and moves a version.
//! Each thread keeps the map it read last with the version it read it at; a decryption
//! checks that version with one atomic load and finds its key in the thread's map, with no
//! lock and no shared reference count. A thread that sees another version (or another
//! cache) copies the current map first.
//!
//! A thread keeps its copy (and the keys in it) until it next reads any cache. That copy is
//! never used once the version has moved: a destroyed key opens nothing after the destroy
//! returns, on any thread.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::crypto::envelope::Dek;

/// Keys by id (a handful; a B-tree finds one without hashing).
pub(super) type KeyMap = BTreeMap<u32, Arc<Dek>>;

/// The map a thread read last: which cache, at which version.
struct Copy {
    cache: u64,
    version: u64,
    keys: Arc<KeyMap>,
}

thread_local! {
    static COPY: RefCell<Option<Copy>> = const { RefCell::new(None) };
}

pub(super) struct KeyCache {
    /// Tells caches apart in a thread's copy (a process may run several services: tests, a
    /// restore's check).
    id: u64,
    /// Moved, under `keys`' lock, by every change.
    version: AtomicU64,
    keys: Mutex<Arc<KeyMap>>,
}

impl KeyCache {
    pub(super) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
            keys: Mutex::new(Arc::new(KeyMap::new())),
        }
    }

    /// The key `id`, when cached.
    pub(super) fn get(&self, id: u32) -> Option<Arc<Dek>> {
        self.keys.lock().get(&id).cloned()
    }

    /// `f` applied to the key `id` in this thread's copy of the map (refreshed first when
    /// the cache changed since this thread read it); none when the key is not cached, or
    /// when this thread has no copy to use (it is exiting, or this is a nested call), in
    /// which case the caller goes the slow way, through [`KeyCache::get`].
    pub(super) fn with<R>(&self, id: u32, f: impl FnOnce(&Dek) -> R) -> Option<R> {
        let version = self.version.load(Ordering::Acquire);
        COPY.try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            let fresh = matches!(&*slot, Some(c) if c.cache == self.id && c.version == version);
            if !fresh {
                *slot = Some(self.current());
            }
            slot.as_ref()?.keys.get(&id).map(|key| f(key))
        })
        .ok()
        .flatten()
    }

    /// The current map with its version, read together under the lock.
    fn current(&self) -> Copy {
        let keys = self.keys.lock();
        Copy {
            cache: self.id,
            version: self.version.load(Ordering::Acquire),
            keys: keys.clone(),
        }
    }

    /// Changes the map (a copy of it, installed whole) and moves the version.
    pub(super) fn update<R>(&self, change: impl FnOnce(&mut KeyMap) -> R) -> R {
        let mut keys = self.keys.lock();
        let mut next = KeyMap::clone(&keys);
        let r = change(&mut next);
        *keys = Arc::new(next);
        self.version.fetch_add(1, Ordering::Release);
        r
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(id: u32) -> Arc<Dek> {
        Arc::new(Dek::from_bytes(id, &[id as u8; 32]).unwrap())
    }

    #[test]
    fn a_thread_sees_every_change_made_elsewhere() {
        let cache = Arc::new(KeyCache::new());
        assert!(cache.with(1, |k| k.id()).is_none());
        cache.update(|keys| keys.insert(1, key(1)));
        assert_eq!(cache.with(1, |k| k.id()), Some(1));
        // Another thread changes the map while this one holds a copy of it.
        let other = cache.clone();
        std::thread::spawn(move || {
            assert_eq!(other.with(1, |k| k.id()), Some(1));
            other.update(|keys| {
                keys.remove(&1);
                keys.insert(2, key(2));
            });
        })
        .join()
        .unwrap();
        assert!(cache.with(1, |k| k.id()).is_none(), "a removed key is gone");
        assert_eq!(cache.with(2, |k| k.id()), Some(2));
        cache.update(BTreeMap::clear);
        assert!(cache.with(2, |k| k.id()).is_none());
        assert!(cache.get(2).is_none());
    }

    #[test]
    fn caches_on_one_thread_keep_apart() {
        let (a, b) = (KeyCache::new(), KeyCache::new());
        a.update(|keys| keys.insert(1, key(1)));
        b.update(|keys| keys.insert(2, key(2)));
        for _ in 0..2 {
            assert_eq!(a.with(1, |k| k.id()), Some(1));
            assert!(a.with(2, |k| k.id()).is_none());
            assert_eq!(b.with(2, |k| k.id()), Some(2));
            assert!(b.with(1, |k| k.id()).is_none());
        }
    }

    #[test]
    fn a_nested_read_finds_no_copy_and_goes_the_slow_way() {
        let cache = KeyCache::new();
        cache.update(|keys| keys.insert(1, key(1)));
        let nested = cache.with(1, |_| cache.with(1, |k| k.id()));
        assert_eq!(nested, Some(None));
        assert_eq!(cache.get(1).map(|k| k.id()), Some(1));
    }
}
