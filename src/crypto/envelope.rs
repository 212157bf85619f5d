//! Envelope encryption primitives (see `../shared/reference/encryption.md`).
//!
//! - The KEK is derived once per start with HKDF-SHA256 from `secret_key` and a per-install
//!   salt; its bytes never leave ring. Its id is derived the same way with another label.
//! - DEKs are 32 random bytes, wrapped with AES-256-GCM under the KEK with
//!   AAD = ("tollgate/dek" | dek id | kek id).
//! - A secret's ciphertext is `format(1) | alg(1) | dek_id(u32 BE) | nonce(12) | ct | tag`;
//!   its AAD is the 18-byte header plus the length-prefixed (purpose, owner, kind, id) of
//!   [`SecretContext`], so editing the header, or moving a ciphertext to another owner or
//!   field, makes decryption fail.
//! - Unknown format or algorithm bytes fail closed.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use zeroize::{Zeroize, Zeroizing};

use super::random;

pub const FORMAT_V1: u8 = 1;
pub const ALG_AES_256_GCM: u8 = 1;
pub const HEADER_LEN: usize = 2 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;
const CANARY: &[u8] = b"tollgate key canary v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("unsupported ciphertext format or algorithm")]
    Unsupported,
    #[error("decryption failed (wrong key, or the ciphertext or its context was altered)")]
    Open,
    #[error("key derivation failed")]
    Derive,
}

/// Nonces: a random 64-bit prefix per process and a 32-bit counter; the prefix is renewed
/// when the counter wraps. Unique within a process by construction and across processes
/// with probability 1 - 2^-64 per pair, without a system call per encryption.
fn next_nonce() -> [u8; NONCE_LEN] {
    static STATE: std::sync::OnceLock<parking_lot::Mutex<([u8; 8], u32)>> =
        std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| parking_lot::Mutex::new((random::bytes::<8>(), 0)));
    let mut s = state.lock();
    if s.1 == u32::MAX {
        *s = (random::bytes::<8>(), 0);
    }
    s.1 += 1;
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&s.0);
    nonce[8..].copy_from_slice(&s.1.to_be_bytes());
    nonce
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// A key-encryption key. Neither `Debug` nor `Display`: nothing can print it.
pub struct Kek {
    id: String,
    key: LessSafeKey,
}

impl Kek {
    /// HKDF-SHA256(salt, secret) -> AES-256 key and an 8-byte id.
    pub fn derive(secret: &[u8], salt: &[u8]) -> Result<Self, CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(secret);
        let okm = prk
            .expand(&[b"tollgate/kek/v1"], &AES_256_GCM)
            .map_err(|_| CryptoError::Derive)?;
        let key = LessSafeKey::new(UnboundKey::from(okm));
        let mut id = [0u8; 8];
        prk.expand(&[b"tollgate/kek-id/v1"], Len(8))
            .and_then(|okm| okm.fill(&mut id))
            .map_err(|_| CryptoError::Derive)?;
        Ok(Self {
            id: random::hex(&id),
            key,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn dek_aad(&self, dek_id: u32) -> Vec<u8> {
        let mut aad = b"tollgate/dek".to_vec();
        aad.extend_from_slice(&dek_id.to_be_bytes());
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }

    /// Wraps a DEK: `nonce | ct | tag`.
    pub fn wrap(&self, dek_id: u32, dek: &[u8; 32]) -> Vec<u8> {
        seal_raw(&self.key, &self.dek_aad(dek_id), dek)
    }

    /// Unwraps a DEK wrapped by this KEK.
    pub fn unwrap(&self, dek_id: u32, wrapped: &[u8]) -> Result<Dek, CryptoError> {
        let raw = self.unwrap_raw(dek_id, wrapped)?;
        Dek::from_bytes(dek_id, &*raw)
    }

    /// The raw DEK bytes, for re-wrapping under another KEK (zeroized on drop).
    pub fn unwrap_raw(
        &self,
        dek_id: u32,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let raw = open_raw(&self.key, &self.dek_aad(dek_id), wrapped)?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed)?;
        Ok(Zeroizing::new(bytes))
    }

    /// A canary sealed under this KEK; proves at start-up that `secret_key` is right.
    pub fn seal_canary(&self) -> Vec<u8> {
        seal_raw(&self.key, self.id.as_bytes(), CANARY)
    }

    pub fn opens_canary(&self, canary: &[u8]) -> bool {
        open_raw(&self.key, self.id.as_bytes(), canary).is_ok_and(|p| p.as_slice() == CANARY)
    }
}

/// Decrypted bytes, zeroed when dropped.
///
/// Not `Zeroizing<Vec<u8>>`: zeroize clears a `Vec` one volatile byte write at a time (1,024
/// stores for a 1 KiB secret, a quarter of its decryption), while a slice is cleared in
/// bulk behind an optimisation barrier that keeps the writes.
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        // The spare capacity too (an opened buffer keeps its tag's room there).
        self.0.resize(self.0.capacity(), 0);
        self.0.as_mut_slice().zeroize();
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

fn seal_raw(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce_bytes = next_nonce();
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&nonce_bytes);
    let mut buf = plaintext.to_vec();
    // Sealing with a fresh random nonce cannot fail for in-range lengths.
    if key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad),
            &mut buf,
        )
        .is_err()
    {
        zeroize::Zeroize::zeroize(&mut buf);
        return Vec::new();
    }
    out.extend_from_slice(&buf);
    out
}

fn open_raw(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Plaintext, CryptoError> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
    let mut buf = Plaintext(rest.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), &mut buf.0)
        .map_err(|_| CryptoError::Open)?
        .len();
    buf.0.truncate(len);
    Ok(buf)
}

/// An unwrapped data-encryption key.
pub struct Dek {
    id: u32,
    key: LessSafeKey,
}

impl Dek {
    /// 32 fresh random bytes (zeroized when dropped).
    pub fn generate_bytes() -> Zeroizing<[u8; 32]> {
        Zeroizing::new(random::bytes::<32>())
    }

    pub fn from_bytes(id: u32, bytes: &[u8]) -> Result<Self, CryptoError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::Malformed)?;
        Ok(Self {
            id,
            key: LessSafeKey::new(key),
        })
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// Encrypts a secret for its context.
    pub fn seal(&self, ctx: &SecretContext<'_>, plaintext: &[u8]) -> Vec<u8> {
        let nonce = next_nonce();
        // One buffer: the header, then the plaintext sealed in place, then the tag.
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_V1);
        out.push(ALG_AES_256_GCM);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = ctx.with_aad(header, |aad| {
            self.key
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), aad, body)
        });
        match tag {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                out
            }
            // Sealing cannot fail for in-range lengths; never return the plaintext if it did.
            Err(_) => {
                zeroize::Zeroize::zeroize(&mut out);
                Vec::new()
            }
        }
    }

    /// Decrypts a secret sealed for the same context.
    pub fn open(
        &self,
        ctx: &SecretContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Plaintext, CryptoError> {
        let dek_id = header_dek_id(ciphertext)?;
        if dek_id != self.id {
            return Err(CryptoError::Open);
        }
        let (header, rest) = ciphertext.split_at(HEADER_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(&header[6..]).map_err(|_| CryptoError::Malformed)?;
        // The tag stays where it is: only the secret's own bytes are copied, into a buffer
        // of exactly their size.
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let tag = Tag::try_from(tag).map_err(|_| CryptoError::Malformed)?;
        let mut buf = Plaintext(body.to_vec());
        ctx.with_aad(header, |aad| {
            self.key
                .open_in_place_separate_tag(nonce, aad, tag, &mut buf.0, 0..)
                .map(|_| ())
        })
        .map_err(|_| CryptoError::Open)?;
        Ok(buf)
    }
}

/// The DEK id of a ciphertext, after checking format and algorithm.
pub fn header_dek_id(ciphertext: &[u8]) -> Result<u32, CryptoError> {
    if ciphertext.len() < HEADER_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    if ciphertext[0] != FORMAT_V1 || ciphertext[1] != ALG_AES_256_GCM {
        return Err(CryptoError::Unsupported);
    }
    let id: [u8; 4] = ciphertext[2..6]
        .try_into()
        .map_err(|_| CryptoError::Malformed)?;
    Ok(u32::from_be_bytes(id))
}

/// What a secret belongs to; part of its AAD.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    /// The kind of owner: "datasource", "settings", "notifier", ...
    pub purpose: &'a str,
    /// The owning object (uid, section...).
    pub owner: &'a str,
    /// The field within it ("password", "basicAuthPassword", ...).
    pub field: &'a str,
}

impl SecretContext<'_> {
    fn parts(&self) -> [&str; 3] {
        [self.purpose, self.owner, self.field]
    }

    /// The length of the context's part of the AAD, after the header: each of purpose,
    /// owner and field with its 4-byte length.
    pub fn aad_context_len(&self) -> usize {
        self.parts().iter().map(|p| 4 + p.len()).sum()
    }

    /// Calls `f` with the AAD: `header` then each of purpose, owner and field, length-prefixed.
    /// Built on the stack when it fits (every context the server makes does).
    fn with_aad<R>(&self, header: &[u8], f: impl FnOnce(Aad<&[u8]>) -> R) -> R {
        const STACK: usize = 256;
        let parts = self.parts();
        let len = header.len() + self.aad_context_len();
        let fill = |aad: &mut [u8]| {
            aad[..header.len()].copy_from_slice(header);
            let mut at = header.len();
            for part in parts {
                aad[at..at + 4].copy_from_slice(&(part.len() as u32).to_be_bytes());
                at += 4;
                aad[at..at + part.len()].copy_from_slice(part.as_bytes());
                at += part.len();
            }
        };
        let run = |aad: &mut [u8]| {
            fill(aad);
            f(Aad::from(&*aad))
        };
        // The smallest buffer that holds it (short contexts fit in 64 bytes): no zeroing of
        // 256 bytes for a 60-byte AAD on every call.
        match len {
            0..=64 => run(&mut [0u8; 64][..len]),
            65..=STACK => run(&mut [0u8; STACK][..len]),
            _ => run(&mut vec![0u8; len]),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CTX: SecretContext<'static> = SecretContext {
        purpose: "datasource",
        owner: "ds-1",
        field: "password",
    };

    fn dek(id: u32) -> Dek {
        Dek::from_bytes(id, &*Dek::generate_bytes()).unwrap()
    }

    #[test]
    fn round_trip() {
        let d = dek(7);
        let ct = d.seal(&CTX, b"hunter2");
        assert_eq!(header_dek_id(&ct).unwrap(), 7);
        assert_eq!(&*d.open(&CTX, &ct).unwrap(), b"hunter2");
        assert_ne!(d.seal(&CTX, b"hunter2"), ct, "fresh nonce each time");
        let nonces: std::collections::HashSet<[u8; NONCE_LEN]> =
            (0..1000).map(|_| next_nonce()).collect();
        assert_eq!(nonces.len(), 1000);
        let empty = d.seal(&CTX, b"");
        assert_eq!(&*d.open(&CTX, &empty).unwrap(), b"");
    }

    #[test]
    fn aad_layout_is_stable_on_the_stack_and_on_the_heap() {
        let aad = |ctx: &SecretContext<'_>| ctx.with_aad(b"HDR", |a| a.as_ref().to_vec());
        // header | len(purpose) purpose | len(owner) owner | len(field) field, lengths u32 BE:
        // stored ciphertexts depend on it.
        let mut want = b"HDR".to_vec();
        for part in ["datasource", "ds-1", "password"] {
            want.extend_from_slice(&(part.len() as u32).to_be_bytes());
            want.extend_from_slice(part.as_bytes());
        }
        assert_eq!(aad(&CTX), want);
        let long_owner = "o".repeat(300);
        let long = SecretContext {
            owner: &long_owner,
            ..CTX
        };
        let got = aad(&long);
        assert_eq!(got.len(), 3 + 12 + 10 + 300 + 8);
        assert!(got.ends_with(b"\0\0\0\x08password"));
        let d = dek(9);
        assert_eq!(
            &*d.open(&long, &d.seal(&long, b"s3cret")).unwrap(),
            b"s3cret"
        );
        assert!(d.open(&CTX, &d.seal(&long, b"s3cret")).is_err());
    }

    #[test]
    fn every_header_byte_is_authenticated() {
        let d = dek(7);
        let ct = d.seal(&CTX, b"hunter2");
        for i in 0..ct.len() {
            let mut t = ct.clone();
            t[i] ^= 0x01;
            assert!(d.open(&CTX, &t).is_err(), "flipping byte {i} must fail");
        }
    }

    #[test]
    fn ciphertexts_are_bound_to_owner_and_field() {
        let d = dek(7);
        let ct = d.seal(&CTX, b"hunter2");
        let other_owner = SecretContext {
            owner: "ds-2",
            ..CTX
        };
        let other_field = SecretContext {
            field: "basicAuthPassword",
            ..CTX
        };
        let other_purpose = SecretContext {
            purpose: "settings",
            ..CTX
        };
        assert_eq!(d.open(&other_owner, &ct).unwrap_err(), CryptoError::Open);
        assert_eq!(d.open(&other_field, &ct).unwrap_err(), CryptoError::Open);
        assert_eq!(d.open(&other_purpose, &ct).unwrap_err(), CryptoError::Open);
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        let a = SecretContext {
            purpose: "x",
            owner: "ab",
            field: "c",
        };
        let b = SecretContext {
            purpose: "x",
            owner: "a",
            field: "bc",
        };
        assert!(d.open(&b, &d.seal(&a, b"s")).is_err());
    }

    #[test]
    fn wrong_dek_and_unknown_versions_fail_closed() {
        let ct = dek(7).seal(&CTX, b"hunter2");
        assert!(
            dek(7).open(&CTX, &ct).is_err(),
            "another key with the same id"
        );
        let mut v2 = ct.clone();
        v2[0] = 2;
        assert_eq!(header_dek_id(&v2).unwrap_err(), CryptoError::Unsupported);
        assert_eq!(
            header_dek_id(&ct[..10]).unwrap_err(),
            CryptoError::Malformed
        );
    }

    #[test]
    fn kek_wraps_deks_and_guards_the_canary() {
        let kek = Kek::derive(b"secret-one", b"salt").unwrap();
        let again = Kek::derive(b"secret-one", b"salt").unwrap();
        let other = Kek::derive(b"secret-two", b"salt").unwrap();
        let salted = Kek::derive(b"secret-one", b"pepper").unwrap();
        assert_eq!(kek.id(), again.id());
        assert_ne!(kek.id(), other.id());
        assert_ne!(kek.id(), salted.id());
        let raw = Dek::generate_bytes();
        let wrapped = kek.wrap(3, &raw);
        let d = again.unwrap(3, &wrapped).unwrap();
        let ct = d.seal(&CTX, b"x");
        assert_eq!(
            &*Dek::from_bytes(3, &*raw).unwrap().open(&CTX, &ct).unwrap(),
            b"x"
        );
        assert!(other.unwrap(3, &wrapped).is_err());
        assert!(kek.unwrap(4, &wrapped).is_err(), "the DEK id is in the AAD");
        let canary = kek.seal_canary();
        assert!(again.opens_canary(&canary));
        assert!(!other.opens_canary(&canary));
    }
}
