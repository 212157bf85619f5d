//! Legacy org API keys, as Grafana's: `POST /api/auth/keys` answers a key that is base64 of
//! `{"k":<32 alphanumerics>,"n":<name>,"id":<orgId>}`. The secret is high-entropy, so an
//! HMAC of it is stored (not a PBKDF2 hash) and looked up in O(1).

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::crypto::{random, KeyedHasher};
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{OrgRole, Principal};
use crate::error::AppError;
use crate::service::quotas::QuotaService;
use crate::store::{ApiKeyRecord, ApiKeyStore, StoreError};

/// `last_used` is written at most this often per key.
const LAST_USED_INTERVAL: i64 = 60;

/// A legacy key's decoded form, `{"k":"<secret>","n":"<name>","id":<org>}`. Read borrowing
/// from the decoded bytes (no copy of either text unless it has escapes).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct KeyJson<'a> {
    #[serde(borrow)]
    k: Cow<'a, str>,
    #[serde(borrow)]
    n: Cow<'a, str>,
    id: u64,
}

impl<'a> KeyJson<'a> {
    /// `bytes` read as a key: the canonical form directly, anything else by serde_json.
    fn parse(bytes: &'a [u8]) -> Option<Self> {
        Self::canonical(bytes).or_else(|| serde_json::from_slice(bytes).ok())
    }

    /// The form Grafana and this server write, `{"k":"…","n":"…","id":N}` with no escape,
    /// read without a parser (the key's JSON is read on every request it signs); `None`
    /// for anything else, which serde_json then reads or refuses. What this reads, serde
    /// reads the same (a test checks it).
    fn canonical(bytes: &'a [u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(b"{\"k\":\"")?;
        let (k, rest) = plain_str(rest)?;
        let rest = rest.strip_prefix(b",\"n\":\"")?;
        let (n, rest) = plain_str(rest)?;
        let digits = rest.strip_prefix(b",\"id\":")?.strip_suffix(b"}")?;
        Some(Self {
            k: Cow::Borrowed(k),
            n: Cow::Borrowed(n),
            id: plain_u64(digits)?,
        })
    }
}

/// A JSON string's text up to its closing quote when it holds no escape or control byte,
/// and what follows the quote.
fn plain_str(b: &[u8]) -> Option<(&str, &[u8])> {
    let end = b
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    if b[end] != b'"' {
        return None;
    }
    Some((std::str::from_utf8(&b[..end]).ok()?, &b[end + 1..]))
}

/// A JSON number that is a `u64` written plainly: digits only, no leading zero.
fn plain_u64(d: &[u8]) -> Option<u64> {
    if d.is_empty() || (d.len() > 1 && d[0] == b'0') {
        return None;
    }
    d.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

pub struct ApiKeyService {
    store: Arc<dyn ApiKeyStore>,
    hasher: Arc<KeyedHasher>,
    settings: Arc<Settings>,
    quotas: Arc<QuotaService>,
    clock: Arc<dyn Clock>,
}

impl ApiKeyService {
    pub fn new(
        store: Arc<dyn ApiKeyStore>,
        hasher: Arc<KeyedHasher>,
        settings: Arc<Settings>,
        quotas: Arc<QuotaService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            hasher,
            settings,
            quotas,
            clock,
        }
    }

    pub fn hash(&self, secret: &str) -> [u8; 32] {
        self.hasher.digest(&[b"apikey", secret.as_bytes()])
    }

    /// Validates and stores a new key for `org`; returns the row and the secret key
    /// (shown once). `seconds_to_live` 0 means no expiry.
    pub async fn create(
        &self,
        p: &Principal,
        name: &str,
        role: &str,
        seconds_to_live: i64,
    ) -> Result<(ApiKeyRecord, String), AppError> {
        p.require(Action::ApiKeysCreate, "")?;
        self.quotas.check(p, "api_key").await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 190 {
            return Err(AppError::bad_request("bad request data"));
        }
        let role =
            OrgRole::parse(role).ok_or_else(|| AppError::bad_request("Invalid role specified"))?;
        if seconds_to_live < 0 {
            return Err(AppError::bad_request(
                "Number of seconds before expiration should be set",
            ));
        }
        let max: i64 = self
            .settings
            .raw
            .get("auth", "api_key_max_seconds_to_live")
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        if max > 0 && (seconds_to_live == 0 || seconds_to_live > max) {
            return Err(AppError::bad_request(
                "Number of seconds before expiration is greater than the global limit",
            ));
        }
        let secret = random::alphanumeric(32);
        let json = serde_json::to_vec(&KeyJson {
            k: Cow::Borrowed(&secret),
            n: Cow::Borrowed(name),
            id: p.org_id.0,
        })
        .map_err(|e| AppError::internal("Failed to add API Key", e))?;
        let key = base64::engine::general_purpose::STANDARD.encode(json);
        let at = self.clock.now();
        let record = self
            .store
            .create_api_key(ApiKeyRecord {
                id: 0,
                org_id: p.org_id.0,
                name: name.to_string(),
                role: role.to_byte(),
                hash: self.hash(&secret),
                expires: (seconds_to_live > 0).then(|| at.saturating_add(seconds_to_live)),
                created: at,
                last_used: None,
                service_account_id: None,
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::Conflict("API Key Organization ID And Name Must Be Unique".into())
                }
                other => AppError::internal("Failed to add API Key", other),
            })?;
        Ok((record, key))
    }

    /// The org's keys; expired ones only when asked.
    pub async fn list(
        &self,
        p: &Principal,
        include_expired: bool,
    ) -> Result<Vec<ApiKeyRecord>, AppError> {
        p.require(Action::ApiKeysRead, "")?;
        let at = self.clock.now();
        Ok(self
            .store
            .api_keys(p.org_id, None)
            .await?
            .into_iter()
            .filter(|k| include_expired || !k.expired_at(at))
            .collect())
    }

    pub async fn delete(&self, p: &Principal, id: u64) -> Result<(), AppError> {
        p.require(Action::ApiKeysDelete, "")?;
        let not_found = || AppError::not_found("API key not found");
        let key = self.store.api_key(id).await?.ok_or_else(not_found)?;
        if key.org_id != p.org_id.0 || key.service_account_id.is_some() {
            return Err(not_found());
        }
        p.require(Action::ApiKeysDelete, &format!("apikeys:id:{id}"))?;
        self.store.delete_api_key(id).await?;
        Ok(())
    }

    /// Authenticates a presented key: 401 "invalid API key" or "Expired API key".
    pub async fn authenticate(&self, presented: &str) -> Result<Arc<ApiKeyRecord>, AppError> {
        let invalid = || AppError::Unauthorized("invalid API key".into());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(presented.trim())
            .map_err(|_| invalid())?;
        let parsed = KeyJson::parse(&bytes).ok_or_else(invalid)?;
        let key = self
            .store
            .api_key_by_hash(&self.hash(&parsed.k))
            .await?
            .filter(|k| {
                k.org_id == parsed.id && *k.name == *parsed.n && k.service_account_id.is_none()
            })
            .ok_or_else(invalid)?;
        let at = self.clock.now();
        if key.expired_at(at) {
            return Err(AppError::Unauthorized("Expired API key".into()));
        }
        if key.last_used.is_none_or(|t| at - t >= LAST_USED_INTERVAL) {
            self.store.touch_api_key(key.id, at).await?;
        }
        Ok(key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What serde_json reads from `bytes`, the oracle.
    fn by_serde(bytes: &[u8]) -> Option<KeyJson<'_>> {
        serde_json::from_slice(bytes).ok()
    }

    #[test]
    fn the_canonical_key_form_reads_as_serde_reads_it() {
        let written = serde_json::to_vec(&KeyJson {
            k: "Zx81secret0123456789abcdefABCDEF".into(),
            n: "deploy bot ü".into(),
            id: 42,
        })
        .unwrap();
        let read = KeyJson::canonical(&written).unwrap();
        assert_eq!(Some(&read), by_serde(&written).as_ref());
        assert_eq!((&*read.n, read.id), ("deploy bot ü", 42));
        // Everything else is left to serde, which reads or refuses it.
        for other in [
            r#"{"n":"a","k":"s","id":1}"#,
            r#"{ "k":"s","n":"a","id":1}"#,
            r#"{"k":"s","n":"a\u0062","id":1}"#,
            r#"{"k":"s","n":"a\"b","id":1}"#,
            r#"{"k":"s","n":"a","id":01}"#,
            r#"{"k":"s","n":"a","id":-1}"#,
            r#"{"k":"s","n":"a","id":1.0}"#,
            r#"{"k":"s","n":"a","id":18446744073709551616}"#,
            r#"{"k":"s","n":"a","id":}"#,
            r#"{"k":"s","n":"a","id":1}x"#,
            "{\"k\":\"s\",\"n\":\"a\tb\",\"id\":1}",
        ] {
            assert_eq!(KeyJson::canonical(other.as_bytes()), None, "{other}");
        }
        assert_eq!(
            KeyJson::parse(br#"{"n":"a","k":"s","id":1}"#).unwrap().id,
            1
        );
        assert_eq!(KeyJson::parse(br#"{"k":"s","n":"a","id":01}"#), None);
        // Every one-byte change of the written form: read as serde reads it, or left to it.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut b = written.clone();
            let at = (seed % b.len() as u64) as usize;
            b[at] = [
                b'"',
                b'\\',
                b'0',
                b'9',
                b'}',
                b',',
                0x1f,
                0xff,
                (seed >> 32) as u8,
            ][((seed >> 16) % 9) as usize];
            if let Some(fast) = KeyJson::canonical(&b) {
                assert_eq!(
                    Some(fast),
                    by_serde(&b),
                    "{:?}",
                    String::from_utf8_lossy(&b)
                );
            }
        }
    }
}
