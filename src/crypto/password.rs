//! Password hashing: PBKDF2-HMAC-SHA256 with a random 16-byte salt and the iteration count
//! stored with the hash. Grafana's own format (10,000 iterations, 50 bytes, hex, a
//! 10-character salt) also verifies, so users moved from Grafana keep their passwords;
//! [`PasswordHash::needs_rehash`] tells the caller to upgrade them.
//!
//! These functions burn CPU on purpose: call them from `spawn_blocking`, never on the
//! async runtime.

use std::num::NonZeroU32;

use ring::pbkdf2;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{ct_eq, random};

/// Which algorithm a stored hash uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PasswordScheme {
    /// tollgate's: PBKDF2-HMAC-SHA256, 32-byte output, binary salt.
    Pbkdf2Sha256,
    /// Grafana's: PBKDF2-HMAC-SHA256, 10,000 iterations, 50-byte output compared as hex,
    /// the salt used as its UTF-8 bytes.
    GrafanaLegacy,
}

/// A stored password hash with everything needed to verify it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordHash {
    pub scheme: PasswordScheme,
    pub iterations: u32,
    /// Bytes as one run, not one element at a time (every user read decodes these; the
    /// stored layout is the same: see `store::codec`).
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub hash: Vec<u8>,
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHash")
            .field("scheme", &self.scheme)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

const GRAFANA_ITERATIONS: u32 = 10_000;
const GRAFANA_KEY_LEN: usize = 50;

fn derive(iterations: u32, salt: &[u8], password: &[u8], out: &mut [u8]) {
    let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, salt, password, out);
}

impl PasswordHash {
    /// Hashes `password` with a fresh salt at `iterations`.
    pub fn new(password: &str, iterations: u32) -> Self {
        let salt = random::bytes::<16>().to_vec();
        let mut hash = vec![0u8; 32];
        derive(iterations, &salt, password.as_bytes(), &mut hash);
        Self {
            scheme: PasswordScheme::Pbkdf2Sha256,
            iterations,
            salt,
            hash,
        }
    }

    /// A Grafana `user.password` / `user.salt` pair, as found in Grafana's database.
    pub fn from_grafana(hex_hash: &str, salt: &str) -> Option<Self> {
        let hash = random::from_hex(hex_hash)?;
        (hash.len() == GRAFANA_KEY_LEN).then(|| Self {
            scheme: PasswordScheme::GrafanaLegacy,
            iterations: GRAFANA_ITERATIONS,
            salt: salt.as_bytes().to_vec(),
            hash,
        })
    }

    /// Grafana's `EncodePassword(password, salt)`: hex of a 50-byte PBKDF2 output.
    pub fn grafana_encode(password: &str, salt: &str) -> String {
        let mut out = Zeroizing::new([0u8; GRAFANA_KEY_LEN]);
        derive(
            GRAFANA_ITERATIONS,
            salt.as_bytes(),
            password.as_bytes(),
            &mut out[..],
        );
        random::hex(&out[..])
    }

    /// Constant-time verification.
    pub fn verify(&self, password: &str) -> bool {
        let mut out = Zeroizing::new(vec![0u8; self.hash.len()]);
        derive(self.iterations, &self.salt, password.as_bytes(), &mut out);
        ct_eq(&out, &self.hash)
    }

    /// What one verification of this hash costs, in rounds of 32-byte PBKDF2: the
    /// iterations times the 32-byte blocks of output (Grafana's 50-byte hashes take two).
    pub fn cost(&self) -> u64 {
        let blocks = self.hash.len().div_ceil(32).max(1) as u64;
        u64::from(self.iterations).saturating_mul(blocks)
    }

    /// [`verify`](Self::verify) that costs at least `min_iterations` rounds whatever the
    /// stored hash and whatever the answer: the rounds the stored hash did not take are
    /// spent on a throw-away derivation. So a user whose hash predates a raise of
    /// `password_hash_iterations` answers a wrong password as slowly as an unknown login
    /// (which verifies a dummy hash at the configured cost).
    pub fn verify_at_least(&self, password: &str, min_iterations: u32) -> bool {
        let ok = self.verify(password);
        let rest = u64::from(min_iterations).saturating_sub(self.cost());
        if rest > 0 {
            let mut out = Zeroizing::new([0u8; 32]);
            let rounds = u32::try_from(rest).unwrap_or(u32::MAX);
            derive(rounds, &self.salt, password.as_bytes(), &mut out[..]);
            std::hint::black_box(&out[..]);
        }
        ok
    }

    /// True when the hash is weaker than what `iterations` asks for new hashes.
    pub fn needs_rehash(&self, iterations: u32) -> bool {
        self.scheme != PasswordScheme::Pbkdf2Sha256 || self.iterations < iterations
    }

    /// A short fingerprint that changes whenever the hash changes (cache invalidation):
    /// the hash's bytes folded into eight by XOR. The hash is a PBKDF2 output, already
    /// uniformly random, so folding it detects a change as well as a digest of it would,
    /// without the SHA-256 block (about 2,100 instructions) that every Basic request with
    /// a cached credential paid for it.
    pub fn fingerprint(&self) -> [u8; 8] {
        let mut out = [0u8; 8];
        for (i, b) in self.hash.iter().enumerate() {
            out[i % 8] ^= b;
        }
        out
    }
}

/// The password rules of `[auth.basic] password_policy`: off means at least 4 characters;
/// on means at least 12 with upper, lower, digit and symbol. The error is the message
/// Grafana answers with.
pub fn check_policy(password: &str, strong: bool) -> Result<(), &'static str> {
    let len = password.chars().count();
    if !strong {
        return if len < 4 {
            Err("New password is too short")
        } else {
            Ok(())
        };
    }
    let ok = len >= 12
        && password.chars().any(|c| c.is_uppercase())
        && password.chars().any(|c| c.is_lowercase())
        && password.chars().any(|c| c.is_ascii_digit())
        && password.chars().any(|c| !c.is_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("New password doesn't comply with the password policy")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grafana_test_vector() {
        assert_eq!(
            PasswordHash::grafana_encode("secret", "pepper"),
            "3ad31dc57a7452c442f259cfff7aa61f2a6cea88ee634724ae146e221ae4e01c56c8bcbb3552310acd2fd746a396d2f99bf8"
        );
        let h = PasswordHash::from_grafana(
            "3ad31dc57a7452c442f259cfff7aa61f2a6cea88ee634724ae146e221ae4e01c56c8bcbb3552310acd2fd746a396d2f99bf8",
            "pepper",
        );
        let h = h.filter(|h| h.verify("secret"));
        assert!(h.as_ref().is_some_and(|h| !h.verify("Secret")));
        assert!(h.is_some_and(|h| h.needs_rehash(1)));
    }

    #[test]
    fn round_trip_and_rehash() {
        let h = PasswordHash::new("correct horse", 1000);
        assert!(h.verify("correct horse"));
        assert!(!h.verify("correct horsf"));
        assert!(!h.needs_rehash(1000));
        assert!(h.needs_rehash(2000));
        assert_ne!(
            PasswordHash::new("x", 1).salt,
            PasswordHash::new("x", 1).salt
        );
        assert!(!format!("{h:?}").contains("hash:"));
    }

    #[test]
    fn a_new_hash_has_a_new_fingerprint() {
        let a = PasswordHash::new("same password", 10);
        let b = PasswordHash::new("same password", 10);
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        // A new salt, so a new hash, so a new fingerprint.
        assert_ne!(a.fingerprint(), b.fingerprint());
        let mut c = a.clone();
        c.hash[31] ^= 1;
        assert_ne!(a.fingerprint(), c.fingerprint());
        let legacy = PasswordHash::from_grafana(&"ab".repeat(50), "salt").unwrap();
        let mut changed = legacy.clone();
        changed.hash[49] ^= 0x80;
        assert_ne!(legacy.fingerprint(), changed.fingerprint());
    }

    #[test]
    fn padded_verification_costs_at_least_the_configured_rounds() {
        let cheap = PasswordHash::new("pw", 100);
        assert_eq!(cheap.cost(), 100);
        assert!(cheap.verify_at_least("pw", 5000));
        assert!(!cheap.verify_at_least("px", 5000));
        let legacy = PasswordHash::from_grafana(&PasswordHash::grafana_encode("pw", "s"), "s");
        assert!(legacy.as_ref().is_some_and(|h| h.cost() == 20_000));
        assert!(legacy.is_some_and(|h| h.verify_at_least("pw", 1)));
        // The padding is real work: 40 times the rounds take clearly longer.
        let time = |min: u32| {
            let t = std::time::Instant::now();
            for _ in 0..5 {
                cheap.verify_at_least("px", min);
            }
            t.elapsed()
        };
        let (short, long) = (time(1000), time(40_000));
        assert!(long > short * 5, "{short:?} vs {long:?}");
    }

    #[test]
    fn policy() {
        assert!(check_policy("abc", false).is_err());
        assert!(check_policy("abcd", false).is_ok());
        assert!(check_policy("abcdefghijkl", true).is_err());
        assert!(check_policy("Abcdefghij1!", true).is_ok());
    }
}
