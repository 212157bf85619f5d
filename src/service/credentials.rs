//! Verified Basic credentials, remembered for a short while under a keyed hash of
//! (login, password), never the password itself, so repeated Basic calls do not re-run
//! PBKDF2. Every hit is re-checked against the user row (password fingerprint, disabled
//! flag), and the user service drops a user's entries explicitly on every credential change.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::crypto::KeyedHasher;
use crate::domain::UserId;
use crate::store::UserRecord;

const CACHE_CAPACITY: usize = 10_000;

#[derive(Clone, Copy)]
pub(crate) struct CachedCredential {
    pub(crate) user: UserId,
    pub(crate) fingerprint: [u8; 8],
    expires: Instant,
}

/// Verified Basic credentials, keyed by HMAC(login, password) under a per-process key.
pub struct CredentialCache {
    hasher: KeyedHasher,
    ttl: Duration,
    entries: Mutex<crate::domain::FastMap<[u8; 32], CachedCredential>>,
}

impl CredentialCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            hasher: KeyedHasher::random(),
            ttl,
            entries: Mutex::new(Default::default()),
        }
    }

    pub(crate) fn key(&self, login: &str, password: &str) -> [u8; 32] {
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

    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<CachedCredential> {
        let mut entries = self.entries.lock();
        match entries.get(key) {
            Some(c) if c.expires > Instant::now() => Some(*c),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&self, key: [u8; 32], user: &UserRecord, fingerprint: [u8; 8]) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= CACHE_CAPACITY {
            let now = Instant::now();
            entries.retain(|_, c| c.expires > now);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(
            key,
            CachedCredential {
                user: user.user_id(),
                fingerprint,
                expires: Instant::now() + self.ttl,
            },
        );
    }

    /// Drops every cached credential of this user.
    pub fn forget_user(&self, user: UserId) {
        self.entries.lock().retain(|_, c| c.user != user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_the_logins_case_and_not_the_passwords() {
        let c = CredentialCache::new(Duration::from_secs(1));
        assert_eq!(c.key("Admin", "pw"), c.key("admin", "pw"));
        assert_eq!(c.key("ÄDMIN", "pw"), c.key("ädmin", "pw"));
        assert_ne!(c.key("admin", "pw"), c.key("admin", "PW"));
        assert_ne!(c.key("admin", "pw"), c.key("admin2", "pw"));
        // Parts are length-prefixed: moving the boundary changes the key.
        assert_ne!(c.key("ab", "c"), c.key("a", "bc"));
    }
}
