//! Verified Basic credentials, remembered for a short while under a keyed hash of
//! (login, password), never the password itself, so repeated Basic calls do not re-run
//! PBKDF2. Every hit is re-checked against the user row (password fingerprint, disabled
//! flag), and the user service drops a user's entries explicitly on every credential change.
//!
//! One verification per credential at a time: the first request that misses verifies
//! while the others with the same credential wait for it and then read its entry
//! ([`CredentialCache::turn`]). Otherwise, when an entry expired under load, every request
//! in flight with it would run its own PBKDF2: 32 of them for a client with 32
//! connections, seconds of CPU at the default cost. A refused password is cached by no
//! one, so its waiters then verify it themselves, in parallel: every wrong password still
//! costs a full verification, and no wait outlasts the verifying request. A credential
//! whose verification left no entry (refused, or a directory user's, which is never
//! cached) is noted for a TTL, and the requests with it verify at once, in parallel, as
//! they cannot use another's outcome. An entry in the last tenth of its life is verified
//! again by the one request that claims it ([`CredentialCache::claim_renewal`]) while the
//! others go on using it, so a credential in steady use does not expire.
//!
//! Time comes from the service clock. An entry that reads as valid for longer than the
//! TTL (the clock was set back) counts as expired.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::crypto::KeyedHasher;
use crate::domain::time::Clock;
use crate::domain::{FastMap, UserId};
use crate::store::UserRecord;

const CACHE_CAPACITY: usize = 10_000;

/// A cache key: the keyed hash of (login, password).
pub(crate) type CredentialKey = [u8; 32];

#[derive(Clone, Copy)]
pub(crate) struct CachedCredential {
    pub(crate) user: UserId,
    pub(crate) fingerprint: [u8; 8],
    /// Unix milliseconds of the service clock.
    expires_ms: i64,
}

/// A cache hit, and whether the entry is in the last tenth of its life.
#[derive(Clone, Copy)]
pub(crate) struct Hit {
    pub(crate) credential: CachedCredential,
    pub(crate) due_for_renewal: bool,
}

/// Verified Basic credentials, keyed by HMAC(login, password) under a per-process key.
pub struct CredentialCache {
    hasher: KeyedHasher,
    ttl_ms: i64,
    clock: Arc<dyn Clock>,
    entries: Mutex<FastMap<CredentialKey, CachedCredential>>,
    /// The credentials being verified now; a waiter's receiver reports the end of the
    /// verification (its sender, held by the [`Verification`], is dropped).
    verifying: Mutex<FastMap<CredentialKey, watch::Receiver<()>>>,
    /// Credentials whose last verification left no entry, and until when that counts.
    uncached: Mutex<FastMap<CredentialKey, i64>>,
}

/// The right to verify a credential: while it lives, other requests with the same
/// credential wait for it (see [`CredentialCache::turn`]). Dropped when the verification
/// ended, whatever its outcome (or when the request was abandoned).
pub(crate) struct Verification<'a> {
    cache: &'a CredentialCache,
    key: CredentialKey,
    _done: watch::Sender<()>,
}

impl Drop for Verification<'_> {
    fn drop(&mut self) {
        let cache = self.cache;
        if !cache.entries.lock().contains_key(&self.key) {
            cache.note_uncached(self.key);
        }
        // Out of the map before the sender goes (with this value's fields): a waiter that
        // wakes finds the map free, or a newer verification to wait for.
        cache.verifying.lock().remove(&self.key);
    }
}

impl CredentialCache {
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            hasher: KeyedHasher::random(),
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            clock,
            entries: Mutex::new(Default::default()),
            verifying: Mutex::new(Default::default()),
            uncached: Mutex::new(Default::default()),
        }
    }

    pub(crate) fn key(&self, login: &str, password: &str) -> CredentialKey {
        // Logins are case-insensitive. Most are lower-case ASCII already, which
        // `to_lowercase` returns unchanged: no copy then.
        let login = if login
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        {
            std::borrow::Cow::Borrowed(login)
        } else {
            std::borrow::Cow::Owned(login.to_lowercase())
        };
        self.hasher.digest(&[login.as_bytes(), password.as_bytes()])
    }

    pub(crate) fn get(&self, key: &CredentialKey) -> Option<Hit> {
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock();
        let c = *entries.get(key)?;
        let Some(left) = self.left(c.expires_ms, now) else {
            entries.remove(key);
            return None;
        };
        Some(Hit {
            credential: c,
            due_for_renewal: left <= self.ttl_ms / 10,
        })
    }

    /// What is left of a time limit set `ttl_ms` ahead: `None` when it has passed, or when
    /// it reads as more than the TTL (the clock was set back since).
    fn left(&self, until_ms: i64, now_ms: i64) -> Option<i64> {
        let left = until_ms.saturating_sub(now_ms);
        (left > 0 && left <= self.ttl_ms).then_some(left)
    }

    pub(crate) fn put(&self, key: CredentialKey, user: &UserRecord, fingerprint: [u8; 8]) {
        if self.ttl_ms <= 0 {
            return;
        }
        let now = self.clock.now_ms();
        let entry = CachedCredential {
            user: user.user_id(),
            fingerprint,
            expires_ms: now.saturating_add(self.ttl_ms),
        };
        insert_bounded(&mut self.entries.lock(), key, entry, |c| c.expires_ms > now);
        self.uncached.lock().remove(&key);
    }

    /// Drops every cached credential of this user.
    pub fn forget_user(&self, user: UserId) {
        self.entries.lock().retain(|_, c| c.user != user);
    }

    /// After a miss: the right to verify `key`; or `None`, to verify without it: once the
    /// verification that another request was running for it has ended (look in the cache
    /// again: it left an entry, unless the password was refused), or at once when nothing
    /// would be cached for it (a TTL of 0, or its last verification left no entry).
    pub(crate) async fn turn(&self, key: &CredentialKey) -> Option<Verification<'_>> {
        if self.ttl_ms <= 0 || self.recently_uncached(key) {
            return None;
        }
        let mut running = {
            let mut verifying = self.verifying.lock();
            match verifying.get(key) {
                Some(running) => running.clone(),
                None => return Some(self.start(&mut verifying, key)),
            }
        };
        // Never sent on: resolves (with an error) when the sender is dropped.
        let _ = running.changed().await;
        None
    }

    /// For an entry due for renewal: the right to verify it again, unless another request
    /// holds it already (that one renews it; this one goes on with the entry).
    pub(crate) fn claim_renewal(&self, key: &CredentialKey) -> Option<Verification<'_>> {
        let mut verifying = self.verifying.lock();
        (!verifying.contains_key(key)).then(|| self.start(&mut verifying, key))
    }

    fn recently_uncached(&self, key: &CredentialKey) -> bool {
        let now = self.clock.now_ms();
        let mut uncached = self.uncached.lock();
        let Some(&until) = uncached.get(key) else {
            return false;
        };
        let live = self.left(until, now).is_some();
        if !live {
            uncached.remove(key);
        }
        live
    }

    fn note_uncached(&self, key: CredentialKey) {
        let now = self.clock.now_ms();
        let until = now.saturating_add(self.ttl_ms);
        insert_bounded(&mut self.uncached.lock(), key, until, |&u| u > now);
    }

    fn start(
        &self,
        verifying: &mut FastMap<CredentialKey, watch::Receiver<()>>,
        key: &CredentialKey,
    ) -> Verification<'_> {
        let (done, running) = watch::channel(());
        verifying.insert(*key, running);
        Verification {
            cache: self,
            key: *key,
            _done: done,
        }
    }
}

/// Inserts into a map kept to [`CACHE_CAPACITY`] entries: when it is full, the entries no
/// longer `live` go, and all of them when that freed nothing.
fn insert_bounded<V>(
    map: &mut FastMap<CredentialKey, V>,
    key: CredentialKey,
    value: V,
    live: impl Fn(&V) -> bool,
) {
    if map.len() >= CACHE_CAPACITY {
        map.retain(|_, v| live(v));
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
    }
    map.insert(key, value);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::time::ManualClock;

    fn cache(ttl_secs: u64) -> (CredentialCache, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_now());
        (
            CredentialCache::new(Duration::from_secs(ttl_secs), clock.clone()),
            clock,
        )
    }

    /// Polls once: whether the future is still waiting.
    fn pending<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        f.poll(&mut cx).is_pending()
    }

    fn user(id: u64) -> UserRecord {
        let mut u = UserRecord::new("u", "u@example.com", "U", "uid".into(), 0);
        u.id = id;
        u
    }

    #[test]
    fn keys_ignore_the_logins_case_and_not_the_passwords() {
        let (c, _) = cache(1);
        assert_eq!(c.key("Admin", "pw"), c.key("admin", "pw"));
        assert_eq!(c.key("ÄDMIN", "pw"), c.key("ädmin", "pw"));
        assert_ne!(c.key("admin", "pw"), c.key("admin", "PW"));
        assert_ne!(c.key("admin", "pw"), c.key("admin2", "pw"));
        // Parts are length-prefixed: moving the boundary changes the key.
        assert_ne!(c.key("ab", "c"), c.key("a", "bc"));
    }

    #[test]
    fn entries_are_due_for_renewal_in_their_last_tenth_and_gone_after() {
        let (c, clock) = cache(100);
        let k = c.key("a", "pw");
        c.put(k, &user(7), [1; 8]);
        let hit = c.get(&k).unwrap();
        assert_eq!(hit.credential.user, UserId(7));
        assert!(!hit.due_for_renewal);
        clock.advance(Duration::from_secs(89));
        assert!(!c.get(&k).unwrap().due_for_renewal);
        clock.advance(Duration::from_secs(2));
        assert!(c.get(&k).unwrap().due_for_renewal);
        clock.advance(Duration::from_secs(9));
        assert!(c.get(&k).is_none(), "expired at its TTL");
    }

    #[test]
    fn a_clock_set_back_expires_entries_instead_of_extending_them() {
        let (c, clock) = cache(100);
        let k = c.key("a", "pw");
        clock.advance(Duration::from_secs(1000));
        c.put(k, &user(7), [1; 8]);
        clock.set_back(Duration::from_secs(1000));
        assert!(c.get(&k).is_none());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let (c, _) = cache(0);
        let k = c.key("a", "pw");
        c.put(k, &user(7), [1; 8]);
        assert!(c.get(&k).is_none());
    }

    #[tokio::test]
    async fn one_verification_at_a_time_per_credential() {
        let (c, _) = cache(100);
        let (k, other) = (c.key("a", "pw"), c.key("b", "pw"));
        let first = c.turn(&k).await.unwrap();
        c.put(other, &user(8), [2; 8]);
        // Another credential is not held up; a renewal of this one is not claimed twice.
        drop(c.turn(&other).await.unwrap());
        assert!(c.claim_renewal(&k).is_none());
        let mut waiter = Box::pin(c.turn(&k));
        assert!(pending(waiter.as_mut()), "waits while the first verifies");
        c.put(k, &user(7), [1; 8]);
        drop(first);
        assert!(waiter.await.is_none(), "woken, to read the cache again");
        // The map is free again.
        assert!(c.claim_renewal(&k).is_some());
        assert!(c.verifying.lock().is_empty());
    }

    #[tokio::test]
    async fn a_credential_left_uncached_is_verified_without_waiting_until_one_is_cached() {
        let (c, clock) = cache(100);
        let k = c.key("a", "wrong");
        // Refused: the verification ends without an entry.
        drop(c.turn(&k).await.unwrap());
        let mut next = Box::pin(c.turn(&k));
        assert!(!pending(next.as_mut()), "no turn, no wait");
        assert!(c.verifying.lock().is_empty());
        // For a TTL; then the turns resume.
        clock.advance(Duration::from_secs(101));
        drop(c.turn(&k).await.unwrap());
        assert!(c.turn(&k).await.is_none(), "refused again");
        // Or as soon as the credential is cached (a password that became right).
        c.put(k, &user(7), [1; 8]);
        assert!(c.turn(&k).await.is_some());
    }

    #[tokio::test]
    async fn with_a_ttl_of_zero_nobody_waits() {
        let (c, _) = cache(0);
        let k = c.key("a", "pw");
        assert!(c.turn(&k).await.is_none());
        assert!(c.verifying.lock().is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_nothing_behind() {
        let (c, _) = cache(100);
        let k = c.key("a", "pw");
        let first = c.turn(&k).await.unwrap();
        let mut waiter = Box::pin(c.turn(&k));
        assert!(pending(waiter.as_mut()));
        drop(waiter);
        c.put(k, &user(7), [1; 8]);
        drop(first);
        assert!(c.verifying.lock().is_empty());
        assert!(c.turn(&k).await.is_some());
    }
}
