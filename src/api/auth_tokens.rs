//! Sessions ("auth tokens") of users: the admin view of any user's sessions
//! (`/api/admin/users/:id/auth-tokens`, `revoke-auth-token`, `logout`) and the user's own
//! (`/api/user/auth-tokens`, `/api/user/revoke-auth-token`).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::{rfc3339, WireId};
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::sessions::SessionView;
use crate::service::Services;

/// A session of a user (Grafana's `UserToken`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserToken {
    pub id: i64,
    /// True only for the caller's own current session.
    pub is_active: bool,
    pub client_ip: String,
    pub device: String,
    pub os: String,
    pub os_version: String,
    pub browser: String,
    pub browser_version: String,
    /// "" for local sign-ins, "ldap" for directory users.
    pub auth_module: String,
    pub created_at: String,
    pub seen_at: String,
}

impl From<&SessionView> for UserToken {
    fn from(v: &SessionView) -> Self {
        let r = &v.record;
        Self {
            id: r.id as i64,
            is_active: v.is_active,
            client_ip: r.client_ip.clone(),
            device: v.client.device.clone(),
            os: v.client.os.clone(),
            os_version: v.client.os_version.clone(),
            browser: v.client.browser.clone(),
            browser_version: v.client.browser_version.clone(),
            auth_module: r.auth_module.clone(),
            created_at: rfc3339(r.created_ms / 1000),
            seen_at: rfc3339(r.seen_ms.max(r.created_ms) / 1000),
        }
    }
}

/// Which session to revoke.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RevokeAuthTokenForm {
    /// The session's id. Missing reads as 0, as Grafana's Go decoding does (then 404
    /// "User auth token not found").
    pub auth_token_id: Option<i64>,
}

api_errors!(
    /// Errors of listing a user's sessions.
    ListTokensError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users.authtoken:list` on this user.",
        404 => NotFound: "No such user.",
    }
);

api_errors!(
    /// Errors of revoking one session.
    RevokeTokenError {
        400 => BadRequest: "Not JSON, or the token is the caller's own current session.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users.authtoken:update` on this user, or the request is cross-origin.",
        404 => NotFound: "No such user, or the token is not this user's.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of signing a user out everywhere.
    LogoutUserError {
        400 => BadRequest: "The user is the caller.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users.logout` on this user.",
        404 => NotFound: "No such user.",
    }
);

api_errors!(
    /// Errors of listing one's own sessions.
    OwnTokensError {
        401 => Unauthorized: "No or invalid credentials.",
        404 => NotFound: "The caller is not a user (an API key).",
    }
);

fn token_id(form: &RevokeAuthTokenForm) -> u64 {
    u64::try_from(form.auth_token_id.unwrap_or(0)).unwrap_or(0)
}

pub struct AuthTokensApi;

#[OpenApi(tag = "ApiTags::AdminUsers")]
impl AuthTokensApi {
    /// A user's sessions: device, browser, OS, address, created and last seen.
    #[oai(
        path = "/api/admin/users/:id/auth-tokens",
        method = "get",
        operation_id = "adminGetUserAuthTokens"
    )]
    async fn list(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<Vec<UserToken>>, ListTokensError> {
        let views = services.sessions.list_for(&auth.0, &id.0).await?;
        Ok(Json(views.iter().map(UserToken::from).collect()))
    }

    /// Revoke one session of a user; its next request gets 401.
    #[oai(
        path = "/api/admin/users/:id/revoke-auth-token",
        method = "post",
        operation_id = "adminRevokeUserAuthToken"
    )]
    async fn revoke(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
        body: GfJson<RevokeAuthTokenForm>,
    ) -> Result<Json<MessageBody>, RevokeTokenError> {
        services
            .sessions
            .revoke_for(&auth.0, &id.0, token_id(&body.0))
            .await?;
        Ok(message("User auth token revoked"))
    }

    /// Sign a user out everywhere: every session is revoked.
    #[oai(
        path = "/api/admin/users/:id/logout",
        method = "post",
        operation_id = "adminLogoutUser"
    )]
    async fn logout(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<MessageBody>, LogoutUserError> {
        services.sessions.logout_user(&auth.0, &id.0).await?;
        Ok(message("User logged out"))
    }
}

pub struct OwnTokensApi;

#[OpenApi(tag = "ApiTags::Users")]
impl OwnTokensApi {
    /// The caller's own sessions.
    #[oai(
        path = "/api/user/auth-tokens",
        method = "get",
        operation_id = "getUserAuthTokens"
    )]
    async fn list(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<UserToken>>, OwnTokensError> {
        let views = services.sessions.list_own(&auth.0).await?;
        Ok(Json(views.iter().map(UserToken::from).collect()))
    }

    /// Revoke one of the caller's own sessions (not the current one).
    #[oai(
        path = "/api/user/revoke-auth-token",
        method = "post",
        operation_id = "revokeUserAuthToken"
    )]
    async fn revoke(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<RevokeAuthTokenForm>,
    ) -> Result<Json<MessageBody>, RevokeTokenError> {
        services
            .sessions
            .revoke_own(&auth.0, token_id(&body.0))
            .await?;
        Ok(message("User auth token revoked"))
    }
}
