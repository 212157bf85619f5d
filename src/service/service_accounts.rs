//! Service accounts and their tokens, as Grafana's (`glsa_<32 alphanumerics>_<crc32 hex>`),
//! with one difference that matters: a token carries exactly the permissions of the roles
//! assigned to its account, so automation can do admin work without an admin's password.
//! An account is never a Grafana Admin. Tokens are stored as keyed hashes (O(1) lookup).

use std::sync::Arc;

use crate::crypto::{crc32, random};
use crate::domain::{Action, OrgId, OrgRole, Principal, UserId};
use crate::error::AppError;
use crate::service::api_keys::ApiKeyService;
use crate::store::{
    now, ApiKeyRecord, ApiKeyStore, Durability, NewMembership, StoreError, UserRecord, UserStore,
};

const PREFIX: &str = "glsa_";
/// `last_used` is written at most this often per token.
const LAST_USED_INTERVAL: i64 = 60;

/// A service account and its token count.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub user: UserRecord,
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
    durability: Durability,
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
    let expected = format!("{:08x}", crc32(format!("{PREFIX}{secret}").as_bytes()));
    (sum == expected).then_some(token)
}

impl ServiceAccountService {
    pub fn new(
        users: Arc<dyn UserStore>,
        keys: Arc<dyn ApiKeyStore>,
        api_keys: Arc<ApiKeyService>,
        durability: Durability,
    ) -> Self {
        Self {
            users,
            keys,
            api_keys,
            durability,
        }
    }

    fn account(&self, p: &Principal, id: UserId) -> Result<ServiceAccount, AppError> {
        let not_found = || AppError::not_found("service account not found");
        let user = self
            .users
            .user(id)?
            .filter(|u| u.is_service_account && u.role_in(p.org_id).is_some())
            .ok_or_else(not_found)?;
        let role = user.role_in(p.org_id).unwrap_or(OrgRole::None);
        let tokens = self.keys.api_keys(p.org_id, id.0)?.len() as u64;
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
        let at = now();
        let user = self
            .users
            .create_user(
                UserRecord {
                    id: 0,
                    uid: random::short_uid(),
                    login: login.clone(),
                    email: login,
                    name: name.to_string(),
                    is_admin: false,
                    is_disabled,
                    is_service_account: true,
                    password: None,
                    org_id: p.org_id.0,
                    memberships: Vec::new(),
                    theme: String::new(),
                    auth_module: String::new(),
                    created: at,
                    updated: at,
                    last_seen_at: 0,
                },
                NewMembership::Existing(p.org_id, role),
            )
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::Conflict("service account with this name already exists".into())
                }
                other => other.into(),
            })?;
        self.durability.wait().await?;
        Ok(ServiceAccount {
            user,
            role,
            tokens: 0,
        })
    }

    /// `GET /api/serviceaccounts/search`: the org's accounts whose name or login contains
    /// `query`; (page, total).
    pub fn search(
        &self,
        p: &Principal,
        query: &str,
        page: u64,
        per_page: u64,
    ) -> Result<(Vec<ServiceAccount>, u64), AppError> {
        p.require(Action::ServiceAccountsRead, "")?;
        let all = self.users.search_service_accounts(query, 0, u64::MAX)?;
        let mut found = Vec::new();
        for u in all.users {
            if u.is_service_account && u.role_in(p.org_id).is_some() {
                found.push(self.account(p, u.user_id())?);
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

    pub fn get(&self, p: &Principal, id: UserId) -> Result<ServiceAccount, AppError> {
        p.require(Action::ServiceAccountsRead, &scope(id))?;
        self.account(p, id)
    }

    pub async fn update(
        &self,
        p: &Principal,
        id: UserId,
        patch: AccountPatch,
    ) -> Result<ServiceAccount, AppError> {
        p.require(Action::ServiceAccountsWrite, &scope(id))?;
        let mut sa = self.account(p, id)?;
        if let Some(name) = patch.name.filter(|n| !n.trim().is_empty()) {
            sa.user.name = name.trim().to_string();
        }
        if let Some(d) = patch.is_disabled {
            sa.user.is_disabled = d;
        }
        sa.user.updated = now();
        self.users.update_user(&sa.user)?;
        if let Some(role) = patch.role.filter(|r| !r.is_empty()) {
            let role =
                OrgRole::parse(&role).ok_or_else(|| AppError::bad_request("invalid role"))?;
            if role > p.org_role && !p.is_grafana_admin {
                return Err(AppError::Forbidden(
                    "cannot give a service account a role above your own".into(),
                ));
            }
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
            self.users.set_memberships(id, &memberships)?;
        }
        self.durability.wait().await?;
        self.account(p, id)
    }

    pub async fn delete(&self, p: &Principal, id: UserId) -> Result<(), AppError> {
        p.require(Action::ServiceAccountsDelete, &scope(id))?;
        self.account(p, id)?;
        for k in self.keys.api_keys(p.org_id, id.0)? {
            self.keys.delete_api_key(k.id)?;
        }
        self.users.delete_user(id)?;
        self.durability.wait().await?;
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
        let sa = self.account(p, id)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(AppError::bad_request("token name is required"));
        }
        if seconds_to_live < 0 {
            return Err(AppError::bad_request("secondsToLive must not be negative"));
        }
        let secret = random::alphanumeric(32);
        let body = format!("{PREFIX}{secret}");
        let key = format!("{body}_{:08x}", crc32(body.as_bytes()));
        let at = now();
        let record = self
            .keys
            .create_api_key(ApiKeyRecord {
                id: 0,
                org_id: p.org_id.0,
                name: name.to_string(),
                role: sa.role.to_byte(),
                hash: self.api_keys.hash(&key),
                expires: if seconds_to_live > 0 {
                    at.saturating_add(seconds_to_live)
                } else {
                    0
                },
                created: at,
                last_used: 0,
                service_account_id: id.0,
            })
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    AppError::Conflict("a token with this name already exists".into())
                }
                other => other.into(),
            })?;
        self.durability.wait().await?;
        Ok((record, key))
    }

    pub fn tokens(&self, p: &Principal, id: UserId) -> Result<Vec<ApiKeyRecord>, AppError> {
        p.require(Action::ServiceAccountsRead, &scope(id))?;
        self.account(p, id)?;
        Ok(self.keys.api_keys(p.org_id, id.0)?)
    }

    pub async fn delete_token(
        &self,
        p: &Principal,
        id: UserId,
        token: u64,
    ) -> Result<(), AppError> {
        p.require(Action::ServiceAccountsWrite, &scope(id))?;
        self.account(p, id)?;
        let key = self
            .keys
            .api_key(token)?
            .filter(|k| k.service_account_id == id.0)
            .ok_or_else(|| AppError::not_found("service account token not found"))?;
        self.keys.delete_api_key(key.id)?;
        self.durability.wait().await?;
        Ok(())
    }

    /// The account a presented token belongs to: 401 when malformed, unknown, expired or
    /// the account is disabled.
    pub fn authenticate(&self, presented: &str) -> Result<UserRecord, AppError> {
        let invalid = || AppError::Unauthorized("invalid API key".into());
        let token = parse_token(presented.trim()).ok_or_else(invalid)?;
        let key = self
            .keys
            .api_key_by_hash(&self.api_keys.hash(token))?
            .filter(|k| k.service_account_id != 0)
            .ok_or_else(invalid)?;
        let at = now();
        if key.expires != 0 && key.expires <= at {
            return Err(AppError::Unauthorized("Expired API key".into()));
        }
        let user = self
            .users
            .user(UserId(key.service_account_id))?
            .filter(|u| u.is_service_account)
            .ok_or_else(invalid)?;
        if user.is_disabled {
            return Err(AppError::Unauthorized("service account is disabled".into()));
        }
        if at - key.last_used >= LAST_USED_INTERVAL {
            self.keys.touch_api_key(key.id, at)?;
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
        let good = format!("{body}_{:08x}", crc32(body.as_bytes()));
        assert!(parse_token(&good).is_some());
        let bad = format!("{body}_00000000");
        assert!(parse_token(&bad).is_none());
        assert!(parse_token("glsa_short_12345678").is_none());
        assert_eq!(login_for("CI Bot"), "sa-ci-bot");
    }
}
