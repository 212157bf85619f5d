//! Service accounts and their tokens, as Grafana's (`glsa_<32 alphanumerics>_<crc32 hex>`),
//! with one difference that matters: a token carries exactly the permissions of the roles
//! assigned to its account, so automation can do admin work without an admin's password.
//! An account is never a Grafana Admin. Tokens are stored as keyed hashes (O(1) lookup).

use std::sync::Arc;

use crate::crypto::{crc32, random};
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{OrgId, OrgRole, Principal, UserId};
use crate::error::AppError;
use crate::service::api_keys::ApiKeyService;
use crate::service::quotas::QuotaService;
use crate::store::{
    ApiKeyRecord, ApiKeyStore, NewMembership, ProfileChange, StoreError, UserRecord, UserStore,
};

const PREFIX: &str = "glsa_";
/// `last_used` is written at most this often per token.
const LAST_USED_INTERVAL: i64 = 60;

/// A service account and its token count.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub user: Arc<UserRecord>,
    pub role: OrgRole,
    pub tokens: u64,
}

/// A change to a service account.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub role: Option<String>,
    pub is_disabled: Option<bool>,
}

pub struct ServiceAccountService {
    users: Arc<dyn UserStore>,
    keys: Arc<dyn ApiKeyStore>,
    api_keys: Arc<ApiKeyService>,
    quotas: Arc<QuotaService>,
    clock: Arc<dyn Clock>,
}

/// Grafana's login for an account: `sa-` and the lowercased name, dashes for spaces.
fn login_for(name: &str) -> String {
    let slug: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect();
    format!("sa-{slug}")
}

fn scope(id: UserId) -> String {
    format!("serviceaccounts:id:{id}")
}

/// Checks a presented token's shape and checksum; the part that is hashed for lookup.
pub fn parse_token(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(PREFIX)?;
    let (secret, sum) = rest.rsplit_once('_')?;
    if secret.len() != 32 || !secret.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let crc = crc32(&token.as_bytes()[..PREFIX.len() + secret.len()]);
    // Grafana's form (the checksum's bytes little-endian), or the big-endian form tokens
    // issued before this release carry: nothing an operator holds stops working. Both are
    // eight lowercase hex digits.
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if sum.len() != 8 || !sum.bytes().all(lower_hex) {
        return None;
    }
    let presented = u32::from_str_radix(sum, 16).ok()?;
    (presented == crc.swap_bytes() || presented == crc).then_some(token)
}

/// Grafana's checksum text (`pkg/components/satokengen`): the CRC32-IEEE of
/// `glsa_<secret>` as its four bytes in little-endian order, in hex.
pub fn checksum(crc: u32) -> String {
    format!("{:08x}", crc.swap_bytes())
}

impl ServiceAccountService {
    pub fn new(
        users: Arc<dyn UserStore>,
        keys: Arc<dyn ApiKeyStore>,
        api_keys: Arc<ApiKeyService>,
        quotas: Arc<QuotaService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            keys,
            api_keys,
            quotas,
            clock,
        }
    }

    async fn account(&self, p: &Principal, id: UserId) -> Result<ServiceAccount, AppError> {
        let not_found = || AppError::not_found("service account not found");
        let user = self
            .users
            .user(id)
            .await?
            .filter(|u| u.is_service_account && u.role_in(p.org_id).is_some())
            .ok_or_else(not_found)?;
        let role = user.role_in(p.org_id).unwrap_or(OrgRole::None);
        let tokens = self.keys.api_keys(p.org_id, Some(id)).await?.len() as u64;
        Ok(ServiceAccount { user, role, tokens })
    }

    pub async fn create(
        &self,
        p: &Principal,
        name: &str,
        role: Option<&str>,
        is_disabled: bool,
    ) -> Result<ServiceAccount, AppError> {
        p.require(Action::ServiceAccountsCreate, "")?;
        self.quotas.check(p, "user").await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 190 {
            return Err(AppError::bad_request("service account name is required"));
        }
        let role = match role {
            None | Some("") => OrgRole::Viewer,
            Some(r) => OrgRole::parse(r).ok_or_else(|| AppError::bad_request("invalid role"))?,
        };
        // Nobody hands an account a higher org role than their own.
        if role > p.org_role && !p.is_grafana_admin {
            return Err(AppError::Forbidden(format!(
                "cannot create a service account with a role above your own ({})",
                p.org_role
            )));
        }
        let login = login_for(name);
        let mut record =
            UserRecord::new(&login, &login, name, random::short_uid(), self.clock.now());
        record.is_disabled = is_disabled;
        record.is_service_account = true;
        let user = self
            .users
            .create_user(record, NewMembership::Existing(p.org_id, role))
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::Conflict("service account with this name already exists".into())
                }
                other => other.into(),
            })?;
        Ok(ServiceAccount {
            user: Arc::new(user),
            role,
            tokens: 0,
        })
    }

    /// `GET /api/serviceaccounts/search`: the org's accounts whose name or login contains
    /// `query`; (page, total).
    pub async fn search(
        &self,
        p: &Principal,
        query: &str,
        page: u64,
        per_page: u64,
    ) -> Result<(Vec<ServiceAccount>, u64), AppError> {
        p.require(Action::ServiceAccountsRead, "")?;
        let all = self.users.search_users(query, 0, u64::MAX, true).await?;
        let mut found = Vec::new();
        for u in all.users {
            if u.is_service_account && u.role_in(p.org_id).is_some() {
                found.push(self.account(p, u.user_id()).await?);
            }
        }
        let total = found.len() as u64;
        let per_page = per_page.clamp(1, 1000);
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        Ok((
            found
                .into_iter()
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(per_page as usize)
                .collect(),
            total,
        ))
    }

    pub async fn get(&self, p: &Principal, id: UserId) -> Result<ServiceAccount, AppError> {
        p.require(Action::ServiceAccountsRead, &scope(id))?;
        self.account(p, id).await
    }

    pub async fn update(
        &self,
        p: &Principal,
        id: UserId,
        patch: AccountPatch,
    ) -> Result<ServiceAccount, AppError> {
        p.require(Action::ServiceAccountsWrite, &scope(id))?;
        let sa = self.account(p, id).await?;
        let role = match patch.role.filter(|r| !r.is_empty()) {
            Some(role) => {
                let role =
                    OrgRole::parse(&role).ok_or_else(|| AppError::bad_request("invalid role"))?;
                if role > p.org_role && !p.is_grafana_admin {
                    return Err(AppError::Forbidden(
                        "cannot give a service account a role above your own".into(),
                    ));
                }
                Some(role)
            }
            None => None,
        };
        let at = self.clock.now();
        if let Some(name) = patch.name.filter(|n| !n.trim().is_empty()) {
            let change = ProfileChange {
                name: Some(name.trim().to_string()),
                ..ProfileChange::default()
            };
            self.users.update_profile(id, &change, at).await?;
        }
        if let Some(d) = patch.is_disabled {
            self.users.set_disabled(id, d, at).await?;
        }
        if let Some(role) = role {
            let memberships: Vec<(OrgId, OrgRole)> = sa
                .user
                .memberships
                .iter()
                .map(|m| {
                    let r = if m.org_id == p.org_id.0 {
                        role
                    } else {
                        OrgRole::from_byte(m.role).unwrap_or(OrgRole::None)
                    };
                    (OrgId(m.org_id), r)
                })
                .collect();
            self.users.set_memberships(id, &memberships, at).await?;
        }
        self.account(p, id).await
    }

    /// Deletes the account with every token of it, in one store unit.
    pub async fn delete(&self, p: &Principal, id: UserId) -> Result<(), AppError> {
        p.require(Action::ServiceAccountsDelete, &scope(id))?;
        self.account(p, id).await?;
        self.keys.delete_service_account(id).await?;
        Ok(())
    }

    /// A new token; the key is shown once.
    pub async fn create_token(
        &self,
        p: &Principal,
        id: UserId,
        name: &str,
        seconds_to_live: i64,
    ) -> Result<(ApiKeyRecord, String), AppError> {
        p.require(Action::ServiceAccountsWrite, &scope(id))?;
        self.quotas.check(p, "api_key").await?;
        let sa = self.account(p, id).await?;
        let name = name.trim();
        if name.is_empty() {
            return Err(AppError::bad_request("token name is required"));
        }
        if seconds_to_live < 0 {
            return Err(AppError::bad_request("secondsToLive must not be negative"));
        }
        let secret = random::alphanumeric(32);
        let body = format!("{PREFIX}{secret}");
        let key = format!("{body}_{}", checksum(crc32(body.as_bytes())));
        let at = self.clock.now();
        let record = self
            .keys
            .create_api_key(ApiKeyRecord {
                id: 0,
                org_id: p.org_id.0,
                name: name.to_string(),
                role: sa.role.to_byte(),
                hash: self.api_keys.hash(&key),
                expires: (seconds_to_live > 0).then(|| at.saturating_add(seconds_to_live)),
                created: at,
                last_used: None,
                service_account_id: Some(id.0),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::Conflict("a token with this name already exists".into())
                }
                other => other.into(),
            })?;
        Ok((record, key))
    }

    pub async fn tokens(&self, p: &Principal, id: UserId) -> Result<Vec<ApiKeyRecord>, AppError> {
        p.require(Action::ServiceAccountsRead, &scope(id))?;
        self.account(p, id).await?;
        Ok(self.keys.api_keys(p.org_id, Some(id)).await?)
    }

    /// The token's expiry facts at this service's clock: (expired, seconds left).
    pub fn expiry(&self, key: &ApiKeyRecord) -> (bool, Option<i64>) {
        let at = self.clock.now();
        (key.expired_at(at), key.expires.map(|e| (e - at).max(0)))
    }

    pub async fn delete_token(
        &self,
        p: &Principal,
        id: UserId,
        token: u64,
    ) -> Result<(), AppError> {
        p.require(Action::ServiceAccountsWrite, &scope(id))?;
        self.account(p, id).await?;
        let key = self
            .keys
            .api_key(token)
            .await?
            .filter(|k| k.service_account_id == Some(id.0))
            .ok_or_else(|| AppError::not_found("service account token not found"))?;
        self.keys.delete_api_key(key.id).await?;
        Ok(())
    }

    /// The account a presented token belongs to: 401 when malformed, unknown, expired or
    /// the account is disabled.
    pub async fn authenticate(&self, presented: &str) -> Result<Arc<UserRecord>, AppError> {
        let invalid = || AppError::Unauthorized("invalid API key".into());
        let token = parse_token(presented.trim()).ok_or_else(invalid)?;
        let key = self
            .keys
            .api_key_by_hash(&self.api_keys.hash(token))
            .await?
            .ok_or_else(invalid)?;
        let account = key.service_account_id.ok_or_else(invalid)?;
        let at = self.clock.now();
        if key.expired_at(at) {
            return Err(AppError::Unauthorized("Expired API key".into()));
        }
        let user = self
            .users
            .user(UserId(account))
            .await?
            .filter(|u| u.is_service_account)
            .ok_or_else(invalid)?;
        crate::domain::audit::update(|e| {
            e.actor.token_id = Some(key.id);
            e.actor.service_account_id = Some(account);
        });
        if user.is_disabled {
            return Err(AppError::Unauthorized("service account is disabled".into()));
        }
        if key.last_used.is_none_or(|t| at - t >= LAST_USED_INTERVAL) {
            self.keys.touch_api_key(key.id, at).await?;
        }
        Ok(user)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_checksum() {
        let body = format!("{PREFIX}{}", "a".repeat(32));
        let good = format!("{body}_{}", checksum(crc32(body.as_bytes())));
        assert!(parse_token(&good).is_some());
        let old = format!("{body}_{:08x}", crc32(body.as_bytes()));
        assert!(
            parse_token(&old).is_some(),
            "tokens issued before keep working"
        );
        let bad = format!("{body}_00000000");
        assert!(parse_token(&bad).is_none());
        // Only the eight lowercase digits either form writes.
        let sum = checksum(crc32(body.as_bytes()));
        for other in [
            sum.to_uppercase(),
            format!("+{}", &sum[1..]),
            sum[1..].to_string(),
            format!("0{sum}"),
        ] {
            assert!(parse_token(&format!("{body}_{other}")).is_none(), "{other}");
        }
        assert!(parse_token("glsa_short_12345678").is_none());
        assert_eq!(login_for("CI Bot"), "sa-ci-bot");
    }
}
