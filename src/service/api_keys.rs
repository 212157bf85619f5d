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
#[derive(Serialize, Deserialize)]
struct KeyJson<'a> {
    #[serde(borrow)]
    k: Cow<'a, str>,
    #[serde(borrow)]
    n: Cow<'a, str>,
    id: u64,
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
        let parsed: KeyJson = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
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
