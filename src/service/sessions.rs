//! Sign-in sessions: creation, lookup with expiry and rotation, revocation, and the
//! session half of the admin users API.
//!
//! Tokens are 32 hex characters (16 random bytes, as Grafana's); only an HMAC of each is
//! stored. Every `token_rotation_interval` a request gets a new token; the previous one
//! stays valid for `[auth] token_rotation_grace_period` so requests already in flight with
//! it (a second browser tab, a slow upload) do not sign the user out, the Grafana bug this
//! avoids.

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{random, KeyedHasher};
use crate::domain::{user_scope, Action, Principal, UserId};
use crate::error::AppError;
use crate::service::useragent::{self, ClientInfo};
use crate::service::users::{resolve_user, UserEvents};
use crate::store::{now_ms, Durability, SessionRecord, SessionStore, UserRecord, UserStore};

/// `seen` is written at most this often per session (ms).
const SEEN_INTERVAL_MS: i64 = 60_000;

pub struct SessionService {
    store: Arc<dyn SessionStore>,
    users: Arc<dyn UserStore>,
    hasher: Arc<KeyedHasher>,
    settings: Arc<Settings>,
    durability: Durability,
}

/// A session as listed: the row plus the parsed user agent.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub record: SessionRecord,
    pub client: ClientInfo,
    pub is_active: bool,
}

/// A valid session and, when it was due, the token that replaces the one presented.
pub struct Resolved {
    pub session: SessionRecord,
    pub user: UserRecord,
    pub new_token: Option<String>,
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        users: Arc<dyn UserStore>,
        hasher: Arc<KeyedHasher>,
        settings: Arc<Settings>,
        durability: Durability,
    ) -> Self {
        Self {
            store,
            users,
            hasher,
            settings,
            durability,
        }
    }

    fn hash(&self, token: &str) -> [u8; 32] {
        self.hasher.digest(&[b"session", token.as_bytes()])
    }

    fn expired(&self, s: &SessionRecord, at: i64) -> bool {
        let max = self.settings.login_max_lifetime.as_millis() as i64;
        let inactive = self.settings.login_max_inactive_lifetime.as_millis() as i64;
        s.created_ms + max <= at || s.rotated_ms.max(s.seen_ms) + inactive <= at
    }

    async fn durable(&self) -> Result<(), AppError> {
        self.durability.wait().await.map_err(AppError::from)
    }

    /// Starts a session for a user who has just proven who they are.
    pub async fn create(
        &self,
        user: &UserRecord,
        client_ip: &str,
        user_agent: &str,
    ) -> Result<(String, SessionRecord), AppError> {
        let token = random::hex(&random::bytes::<16>());
        let at = now_ms();
        let record = self.store.create_session(SessionRecord {
            id: 0,
            user_id: user.id,
            token_hash: self.hash(&token),
            prev_token_hash: None,
            prev_valid_until_ms: 0,
            client_ip: client_ip.chars().take(64).collect(),
            user_agent: user_agent.chars().take(512).collect(),
            auth_module: user.auth_module.clone(),
            created_ms: at,
            seen_ms: at,
            rotated_ms: at,
            revoked_ms: 0,
        })?;
        self.durable().await?;
        Ok((token, record))
    }

    /// Resolves a session token: 401 "Token revoked" for revoked sessions, 401
    /// "Unauthorized" for unknown or expired ones; rotates the token when it is due.
    pub async fn resolve(&self, token: &str) -> Result<Resolved, AppError> {
        let unauthorized = || AppError::Unauthorized("Unauthorized".into());
        let hash = self.hash(token);
        let session = self
            .store
            .session_by_hash(&hash)?
            .ok_or_else(unauthorized)?;
        let at = now_ms();
        if session.revoked_ms != 0 {
            return Err(AppError::Unauthorized("Token revoked".into()));
        }
        let current = session.token_hash == hash;
        let in_grace = session.prev_token_hash == Some(hash) && at < session.prev_valid_until_ms;
        if !(current || in_grace) {
            return Err(unauthorized());
        }
        if self.expired(&session, at) {
            return Err(unauthorized());
        }
        let user = self
            .users
            .user(UserId(session.user_id))?
            .filter(|u| !u.is_disabled)
            .ok_or_else(unauthorized)?;
        let due =
            at - session.rotated_ms >= self.settings.token_rotation_interval.as_millis() as i64;
        if current && due {
            let new_token = random::hex(&random::bytes::<16>());
            let rotated = self.store.rotate_session(
                session.id,
                &hash,
                self.hash(&new_token),
                at + self.settings.token_rotation_grace.as_millis() as i64,
                at,
            )?;
            if let Some(rotated) = rotated {
                // The client will only hold the new token: it must survive a crash.
                self.durable().await?;
                return Ok(Resolved {
                    session: rotated,
                    user,
                    new_token: Some(new_token),
                });
            }
        } else if at - session.seen_ms >= SEEN_INTERVAL_MS {
            self.store.touch_session(session.id, at)?;
        }
        Ok(Resolved {
            session,
            user,
            new_token: None,
        })
    }

    /// `GET /logout`: revokes the session of this token, if any.
    pub async fn sign_out(&self, token: &str) -> Result<(), AppError> {
        if let Some(s) = self.store.session_by_hash(&self.hash(token))? {
            self.store.revoke_session(s.id, now_ms())?;
            self.durable().await?;
        }
        Ok(())
    }

    fn views(&self, p: &Principal, user: UserId) -> Result<Vec<SessionView>, AppError> {
        let at = now_ms();
        let mut out: Vec<SessionView> = self
            .store
            .user_sessions(user)?
            .into_iter()
            .filter(|s| !self.expired(s, at))
            .map(|s| SessionView {
                client: useragent::parse(&s.user_agent),
                is_active: p.session_id == Some(s.id),
                record: s,
            })
            .collect();
        out.sort_by_key(|v| v.record.id);
        Ok(out)
    }

    /// `GET /api/admin/users/:id/auth-tokens`.
    pub fn list_for(&self, p: &Principal, id_or_uid: &str) -> Result<Vec<SessionView>, AppError> {
        let user = self.checked(p, id_or_uid, Action::UsersAuthTokenList)?;
        self.views(p, user.user_id())
    }

    /// `GET /api/user/auth-tokens`.
    pub fn list_own(&self, p: &Principal) -> Result<Vec<SessionView>, AppError> {
        let user = p
            .user_id
            .ok_or_else(|| AppError::not_found("User not found"))?;
        self.views(p, user)
    }

    /// `POST /api/admin/users/:id/revoke-auth-token`.
    pub async fn revoke_for(
        &self,
        p: &Principal,
        id_or_uid: &str,
        token_id: u64,
    ) -> Result<(), AppError> {
        let user = self.checked(p, id_or_uid, Action::UsersAuthTokenUpdate)?;
        self.revoke_one(p, user.user_id(), token_id).await
    }

    /// `POST /api/user/revoke-auth-token`.
    pub async fn revoke_own(&self, p: &Principal, token_id: u64) -> Result<(), AppError> {
        let user = p
            .user_id
            .ok_or_else(|| AppError::not_found("User not found"))?;
        self.revoke_one(p, user, token_id).await
    }

    async fn revoke_one(&self, p: &Principal, user: UserId, token_id: u64) -> Result<(), AppError> {
        let not_found = || AppError::not_found("User auth token not found");
        let session = self
            .store
            .session(token_id)?
            .filter(|s| s.user_id == user.0 && s.revoked_ms == 0)
            .ok_or_else(not_found)?;
        if p.session_id == Some(session.id) {
            return Err(AppError::bad_request(
                "Cannot revoke active user auth token",
            ));
        }
        self.store
            .revoke_session(session.id, now_ms())?
            .ok_or_else(not_found)?;
        self.durable().await
    }

    /// `POST /api/admin/users/:id/logout`: ends every session of the user.
    pub async fn logout_user(&self, p: &Principal, id_or_uid: &str) -> Result<(), AppError> {
        p.require(Action::UsersLogout, "")?;
        if let Ok(id) = id_or_uid.parse::<u64>() {
            if p.is_user(UserId(id)) {
                return Err(AppError::bad_request("You cannot logout yourself"));
            }
        }
        let user = self.checked(p, id_or_uid, Action::UsersLogout)?;
        if p.is_user(user.user_id()) {
            return Err(AppError::bad_request("You cannot logout yourself"));
        }
        self.store.revoke_user_sessions(user.user_id(), now_ms())?;
        self.durable().await
    }

    fn checked(
        &self,
        p: &Principal,
        id_or_uid: &str,
        action: Action,
    ) -> Result<UserRecord, AppError> {
        p.require(action, "")?;
        let user = resolve_user(self.users.as_ref(), id_or_uid)?;
        p.require(action, &user_scope(user.user_id()))?;
        Ok(user)
    }

    /// Deletes expired and long-revoked sessions (a periodic job); how many.
    pub fn purge(&self) -> Result<usize, AppError> {
        let at = now_ms();
        Ok(self.store.purge_sessions(&|s| self.expired(s, at))?)
    }
}

impl UserEvents for SessionService {
    fn credentials_revoked(&self, user: UserId) -> Result<(), AppError> {
        self.store.revoke_user_sessions(user, now_ms())?;
        Ok(())
    }
}
