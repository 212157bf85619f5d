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
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{Principal, UserId};
use crate::error::AppError;
use crate::service::useragent::{self, ClientInfo};
use crate::service::users::resolve_checked;
use crate::store::{SessionPurge, SessionRecord, SessionStore, UserRecord, UserStore};

/// `seen` is written at most this often per session (ms).
const SEEN_INTERVAL_MS: i64 = 60_000;

/// The action of a sign-out's audit event (a sign-out has no RBAC action).
pub const SIGN_OUT_ACTION: &str = "auth:logout";

pub struct SessionService {
    store: Arc<dyn SessionStore>,
    users: Arc<dyn UserStore>,
    hasher: Arc<KeyedHasher>,
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
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
    pub session: Arc<SessionRecord>,
    pub user: Arc<UserRecord>,
    pub new_token: Option<String>,
}

impl SessionService {
    pub fn new(
        store: Arc<dyn SessionStore>,
        users: Arc<dyn UserStore>,
        hasher: Arc<KeyedHasher>,
        settings: Arc<Settings>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            users,
            hasher,
            settings,
            clock,
        }
    }

    fn hash(&self, token: &str) -> [u8; 32] {
        self.hasher.digest(&[b"session", token.as_bytes()])
    }

    /// The expiry bounds at `at`: created or last used at or before these is expired.
    fn bounds(&self, at: i64) -> SessionPurge {
        let max = i64::try_from(self.settings.login_max_lifetime.as_millis()).unwrap_or(i64::MAX);
        let inactive = i64::try_from(self.settings.login_max_inactive_lifetime.as_millis())
            .unwrap_or(i64::MAX);
        SessionPurge {
            created_before_ms: at.saturating_sub(max),
            idle_before_ms: at.saturating_sub(inactive),
        }
    }

    fn expired(&self, s: &SessionRecord, at: i64) -> bool {
        let b = self.bounds(at);
        s.created_ms <= b.created_before_ms || s.last_used_ms() <= b.idle_before_ms
    }

    /// Starts a session for a user who has just proven who they are.
    pub async fn create(
        &self,
        user: &UserRecord,
        client_ip: &str,
        user_agent: &str,
    ) -> Result<(String, SessionRecord), AppError> {
        let token = random::hex(&random::bytes::<16>());
        let at = self.clock.now_ms();
        let record = self
            .store
            .create_session(SessionRecord {
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
                revoked_ms: None,
            })
            .await?;
        Ok((token, record))
    }

    /// Resolves a session token: 401 "Token revoked" for revoked sessions, 401
    /// "Unauthorized" for unknown or expired ones; rotates the token when it is due.
    pub async fn resolve(&self, token: &str) -> Result<Resolved, AppError> {
        let unauthorized = || AppError::Unauthorized("Unauthorized".into());
        let hash = self.hash(token);
        let session = self
            .store
            .session_by_hash(&hash)
            .await?
            .ok_or_else(unauthorized)?;
        let at = self.clock.now_ms();
        if session.revoked_ms.is_some() {
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
            .user(UserId(session.user_id))
            .await?
            .filter(|u| !u.is_disabled)
            .ok_or_else(unauthorized)?;
        let due =
            at - session.rotated_ms >= self.settings.token_rotation_interval.as_millis() as i64;
        if current && due {
            let new_token = random::hex(&random::bytes::<16>());
            let rotated = self
                .store
                .rotate_session(
                    session.id,
                    &hash,
                    self.hash(&new_token),
                    at + self.settings.token_rotation_grace.as_millis() as i64,
                    at,
                )
                .await?;
            // The client will only hold the new token: the store made it durable.
            if let Some(rotated) = rotated {
                return Ok(Resolved {
                    session: Arc::new(rotated),
                    user,
                    new_token: Some(new_token),
                });
            }
        } else if at - session.seen_ms >= SEEN_INTERVAL_MS {
            self.store.touch_session(session.id, at).await?;
        }
        Ok(Resolved {
            session,
            user,
            new_token: None,
        })
    }

    /// `GET /logout`: revokes the session of this token, if any.
    pub async fn sign_out(&self, token: &str) -> Result<(), AppError> {
        if let Some(s) = self.store.session_by_hash(&self.hash(token)).await? {
            // The sign-out's audit event names who signed out.
            let login = self
                .users
                .user(UserId(s.user_id))
                .await?
                .map(|u| u.login.clone())
                .unwrap_or_default();
            crate::domain::audit::update(|e| {
                e.actor.user_id = Some(s.user_id);
                e.actor.login = login;
                e.actor.auth_method = "session".into();
                e.action = SIGN_OUT_ACTION.into();
                e.target_kind = "user".into();
                e.target_id = s.user_id.to_string();
            });
            self.store.revoke_session(s.id, self.clock.now_ms()).await?;
        }
        Ok(())
    }

    async fn views(&self, p: &Principal, user: UserId) -> Result<Vec<SessionView>, AppError> {
        let at = self.clock.now_ms();
        let live: Vec<_> = self
            .store
            .user_sessions(user)
            .await?
            .into_iter()
            .filter(|s| !self.expired(s, at))
            .collect();
        let clients =
            useragent::parse_all(live.iter().map(|s| s.user_agent.clone()).collect()).await;
        let mut out: Vec<SessionView> = live
            .into_iter()
            .zip(clients)
            .map(|(s, client)| SessionView {
                client,
                is_active: p.session_id == Some(s.id),
                record: s,
            })
            .collect();
        out.sort_by_key(|v| v.record.id);
        Ok(out)
    }

    /// `GET /api/admin/users/:id/auth-tokens`.
    pub async fn list_for(
        &self,
        p: &Principal,
        id_or_uid: &str,
    ) -> Result<Vec<SessionView>, AppError> {
        let user = self
            .checked(p, id_or_uid, Action::UsersAuthTokenList)
            .await?;
        self.views(p, user.user_id()).await
    }

    /// `GET /api/user/auth-tokens`.
    pub async fn list_own(&self, p: &Principal) -> Result<Vec<SessionView>, AppError> {
        let user = p
            .user_id
            .ok_or_else(|| AppError::not_found("User not found"))?;
        self.views(p, user).await
    }

    /// `POST /api/admin/users/:id/revoke-auth-token`.
    pub async fn revoke_for(
        &self,
        p: &Principal,
        id_or_uid: &str,
        token_id: u64,
    ) -> Result<(), AppError> {
        let user = self
            .checked(p, id_or_uid, Action::UsersAuthTokenUpdate)
            .await?;
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
            .session(token_id)
            .await?
            .filter(|s| s.user_id == user.0 && s.revoked_ms.is_none())
            .ok_or_else(not_found)?;
        if p.session_id == Some(session.id) {
            return Err(AppError::bad_request(
                "Cannot revoke active user auth token",
            ));
        }
        self.store
            .revoke_session(session.id, self.clock.now_ms())
            .await?
            .ok_or_else(not_found)?;
        Ok(())
    }

    /// `POST /api/admin/users/:id/logout`: ends every session of the user.
    pub async fn logout_user(&self, p: &Principal, id_or_uid: &str) -> Result<(), AppError> {
        p.require(Action::UsersLogout, "")?;
        if let Ok(id) = id_or_uid.parse::<u64>() {
            if p.is_user(UserId(id)) {
                return Err(AppError::bad_request("You cannot logout yourself"));
            }
        }
        let user = self.checked(p, id_or_uid, Action::UsersLogout).await?;
        if p.is_user(user.user_id()) {
            return Err(AppError::bad_request("You cannot logout yourself"));
        }
        self.store
            .revoke_user_sessions(user.user_id(), self.clock.now_ms())
            .await?;
        Ok(())
    }

    async fn checked(
        &self,
        p: &Principal,
        id_or_uid: &str,
        action: Action,
    ) -> Result<UserRecord, AppError> {
        resolve_checked(self.users.as_ref(), p, id_or_uid, action).await
    }

    /// Deletes expired sessions, revoked ones included (a periodic job); how many.
    pub async fn purge(&self) -> Result<usize, AppError> {
        let bounds = self.bounds(self.clock.now_ms());
        Ok(self.store.purge_sessions(bounds).await?)
    }
}
