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

/// SHA-256 over the parts, each length-prefixed (as [`KeyedHasher::digest`]), so that
/// moving bytes from one part to the next changes the digest (the audit chain).
pub fn sha256_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The bytes [`sha256_parts`] hashes: each part after its length (8 bytes, big-endian).
pub fn framed<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// CRC-32 (IEEE), as Go's `crc32.ChecksumIEEE`: the checksum in service-account tokens.
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        (crc >> 8) ^ CRC_TABLE[usize::from((crc as u8) ^ b)]
    })
}

/// The CRC of every byte value, a byte at a time instead of a bit at a time (a token's
/// checksum is checked on every request it signs).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[cfg(test)]
mod crc_tests {
    #[test]
    fn crc32_matches_the_ieee_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(super::crc32(b""), 0);
        assert_eq!(
            super::crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        assert_eq!(super::crc32(&[0xff; 32]), 0xFF6C_AB0B);
    }
}
