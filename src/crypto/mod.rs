//! Everything cryptographic, and the only code that names `ring`: password hashing, random
//! tokens and keyed hashes. Envelope encryption joins it in `crypto::envelope`.

pub mod envelope;
pub mod jws;
pub mod password;
pub mod random;

use ring::hmac;

pub use password::{PasswordHash, PasswordScheme};

/// A keyed SHA-256 (HMAC) for looking up high-entropy tokens and for cache keys: fast, and
/// useless to someone who reads the database without the key.
pub struct KeyedHasher {
    key: hmac::Key,
}

impl KeyedHasher {
    pub fn new(key_material: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key_material),
        }
    }

    /// A fresh random key (process-local caches).
    pub fn random() -> Self {
        Self::new(&random::bytes::<32>())
    }

    /// HMAC-SHA256 over the parts, each length-prefixed so `("ab","c")` != `("a","bc")`.
    pub fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Constant-time equality for secrets.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Accumulate every difference so the time does not depend on where bytes differ.
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// SHA-256 (non-secret fingerprints).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
