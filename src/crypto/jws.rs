//! Compact JWS (RFC 7515) with Ed25519 (`alg` `EdDSA`, RFC 8037) through ring: license
//! tokens are signed by an issuer key and verified against the trusted public keys by `kid`.
//! Only `EdDSA` is accepted; `none` and every other algorithm are refused before any key is
//! looked at, so an attacker cannot choose the verification method.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use zeroize::Zeroizing;

use super::sha256;

/// Why a token did not verify. The text is shown to operators as the license's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported signing algorithm '{0}' (only EdDSA is accepted)")]
    Algorithm(String),
    #[error("token has no key id (kid)")]
    MissingKid,
    #[error("token signed by unknown key '{0}'")]
    UnknownKid(String),
    #[error("invalid token signature")]
    Signature,
    /// RFC 7515 4.1.11: a critical header extension the verifier does not understand (it
    /// understands none) makes the token invalid.
    #[error("token requires unsupported critical header extension(s): {0}")]
    Critical(String),
}

/// A trusted issuer public key: raw 32-byte Ed25519, named by its `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub key: [u8; 32],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kid, STANDARD.encode(self.key))
    }
}

impl PublicKey {
    /// Parses `kid:base64` (standard base64 of the raw key, as `license_issuer_keys` holds).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (kid, b64) = entry
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("'{entry}' is not kid:base64-key"))?;
        let raw = STANDARD
            .decode(b64.trim())
            .map_err(|_| format!("key '{kid}' is not standard base64"))?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| format!("key '{kid}' is not a 32-byte Ed25519 public key"))?;
        if kid.trim().is_empty() {
            return Err("a key id (kid) is empty".into());
        }
        Ok(Self {
            kid: kid.trim().to_string(),
            key,
        })
    }

    /// The config form: `kid:base64`.
    pub fn to_config(&self) -> String {
        format!("{}:{}", self.kid, STANDARD.encode(self.key))
    }
}

/// The RFC 7638 JWK thumbprint of an Ed25519 public key: a stable `kid`.
pub fn thumbprint(public: &[u8; 32]) -> String {
    let jwk = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(sha256(jwk.as_bytes()))
}

/// An issuer's Ed25519 signing key. Its bytes are zeroized on drop and never printed.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    pub kid: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

impl SigningKey {
    /// A new key, kept as PKCS#8 v1 (RFC 8410): ring writes v2 with the public key
    /// attached, which Python's `cryptography` refuses, while v1 is read everywhere.
    pub fn generate() -> Result<Self, String> {
        // RFC 8410 section 7: SEQUENCE { version 0, AlgorithmIdentifier { id-Ed25519 },
        // OCTET STRING { OCTET STRING (32-byte seed) } }.
        const V1_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        // ring's v2 document: the same fields with version 1, then the public key.
        const V2_PREFIX: [u8; 16] = [
            0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed")?;
        let v2 = doc.as_ref();
        let seed = v2
            .get(16..48)
            .filter(|_| v2.starts_with(&V2_PREFIX))
            .ok_or("unexpected PKCS#8 layout from ring")?;
        let mut v1 = Zeroizing::new(Vec::with_capacity(48));
        v1.extend_from_slice(&V1_PREFIX);
        v1.extend_from_slice(seed);
        Self::from_pkcs8(&v1)
    }

    /// PKCS#8 v1 or v2 (what ring, OpenSSL and Python's `cryptography` write).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}"))?;
        let kid = thumbprint(&public_bytes(&pair));
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(der.to_vec()),
            kid,
        })
    }

    /// Reads the PEM `PRIVATE KEY` form.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let body = pem
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|r| r.trim_end().strip_suffix(PEM_END))
            .ok_or("not a PEM PRIVATE KEY")?;
        let b64: String = body.split_whitespace().collect();
        let der = Zeroizing::new(STANDARD.decode(b64).map_err(|_| "bad base64 in PEM")?);
        Self::from_pkcs8(&der)
    }

    /// The PEM `PRIVATE KEY` form (PKCS#8), 64 characters a line.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let b64 = Zeroizing::new(STANDARD.encode(self.pkcs8.as_slice()));
        let mut out = Zeroizing::new(String::with_capacity(b64.len() + 80));
        out.push_str(PEM_BEGIN);
        out.push('\n');
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(PEM_END);
        out.push('\n');
        out
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            key: public_bytes(&self.pair),
        }
    }

    /// Signs `claims` (a JSON object) as a compact JWS with `alg` EdDSA and this key's `kid`.
    pub fn sign(&self, claims: &[u8]) -> String {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, self.kid);
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under a header given as JSON text (tools and tests that need other
    /// header parameters; `verify` decides what it accepts).
    pub fn sign_with_header(&self, header: &str, claims: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let sig = self.pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

fn public_bytes(pair: &Ed25519KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(pair.public_key().as_ref());
    out
}

#[derive(serde::Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// Present at all: names extensions the token requires its verifier to understand.
    crit: Option<serde_json::Value>,
}

/// A token whose signature checked out: the signing key's id and the raw claims.
#[derive(Debug)]
pub struct Verified {
    pub kid: String,
    pub claims: Vec<u8>,
}

/// Decodes the claims without checking the signature: for showing what a bad token says.
pub fn peek_claims(token: &str) -> Result<Vec<u8>, JwsError> {
    let mut parts = token.trim().split('.');
    let (Some(_), Some(payload)) = (parts.next(), parts.next()) else {
        return Err(JwsError::Malformed("expected three dot-separated parts"));
    };
    URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwsError::Malformed("claims are not base64url"))
}

/// Verifies a compact JWS against the trusted keys.
pub fn verify(token: &str, keys: &[PublicKey]) -> Result<Verified, JwsError> {
    let token = token.trim();
    let mut parts = token.splitn(4, '.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("expected three dot-separated parts"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| JwsError::Malformed("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|_| JwsError::Malformed("header is not a JSON object with alg"))?;
    if header.alg != "EdDSA" {
        return Err(JwsError::Algorithm(header.alg));
    }
    if let Some(crit) = header.crit {
        let names = match crit.as_array() {
            Some(list) if !list.is_empty() => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => {
                return Err(JwsError::Malformed(
                    "crit must be a non-empty list of names",
                ))
            }
        };
        return Err(JwsError::Critical(names));
    }
    let kid = header.kid.ok_or(JwsError::MissingKid)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| JwsError::UnknownKid(kid.clone()))?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| JwsError::Malformed("signature is not base64url"))?;
    let signed = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&ED25519, key.key)
        .verify(signed.as_bytes(), &sig)
        .map_err(|_| JwsError::Signature)?;
    let claims = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| JwsError::Malformed("claims are not base64url"))?;
    Ok(Verified { kid, claims })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::generate().unwrap()
    }

    #[test]
    fn signs_and_verifies() {
        let k = key();
        let t = k.sign(br#"{"sub":"x"}"#);
        let v = verify(&t, &[k.public()]).unwrap();
        assert_eq!(v.claims, br#"{"sub":"x"}"#);
        assert_eq!(v.kid, k.kid);
    }

    #[test]
    fn refuses_tampering_other_keys_and_algorithms() {
        let k = key();
        let t = k.sign(br#"{"sub":"x"}"#);
        // Another key presented under the same kid: the signature does not verify.
        let mut impostor = key().public();
        impostor.kid = k.kid.clone();
        assert_eq!(verify(&t, &[impostor]).unwrap_err(), JwsError::Signature);
        assert_eq!(
            verify(&t, &[]).unwrap_err(),
            JwsError::UnknownKid(k.kid.clone())
        );
        // A changed claim under the original signature.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(br#"{"sub":"y"}"#),
            parts[2]
        );
        assert_eq!(
            verify(&forged, &[k.public()]).unwrap_err(),
            JwsError::Signature
        );
        // alg none, unsigned.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"x"}"#),
            parts[1]
        );
        assert_eq!(
            verify(&none, &[k.public()]).unwrap_err(),
            JwsError::Algorithm("none".into())
        );
        assert!(matches!(
            verify("abc", &[k.public()]),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            verify("a.b.c.d", &[k.public()]),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn keys_round_trip_through_pem_and_config() {
        let k = key();
        let again = SigningKey::from_pem(&k.to_pem()).unwrap();
        assert_eq!(again.public(), k.public());
        let p = PublicKey::parse(&k.public().to_config()).unwrap();
        assert_eq!(p, k.public());
        assert!(PublicKey::parse("nokey").is_err());
        assert!(PublicKey::parse("k:AAAA").is_err());
        assert!(!format!("{k:?}").contains("PRIVATE"));
    }
}
