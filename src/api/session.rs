//! `POST /login` and `GET /logout`: browser sign-in with the session cookie.

use std::sync::Arc;

use poem::web::Data;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::auth::{client_ip, cookie_value, expired_session_cookie, session_cookie};
use crate::api::body::GfJson;
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::Services;

/// Credentials: `user` is a login or an email.
#[derive(Object, Debug)]
pub struct LoginForm {
    pub user: String,
    #[oai(validator(max_length = 4096))]
    pub password: String,
}

/// Signed in.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct LoginResponse {
    pub message: String,
    pub redirect_url: String,
}

#[derive(ApiResponse, Debug)]
pub enum LoginOk {
    /// Signed in; the session cookie is set.
    #[oai(status = 200)]
    Ok(
        Json<LoginResponse>,
        /// The session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

api_errors!(
    /// Errors of sign-in.
    LoginError {
        400 => BadRequest: "The body is not JSON or lacks a field.",
        401 => Unauthorized: "Invalid username or password (also while blocked by brute-force protection), or a disabled user.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

#[derive(ApiResponse, Debug)]
pub enum LogoutResponse {
    /// Signed out: the session is revoked, the cookie cleared, and the browser sent to /login.
    #[oai(status = 302)]
    Found(
        /// Where to go next.
        #[oai(header = "Location")]
        String,
        /// Clears the session cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

api_errors!(
    /// Errors of sign-out.
    LogoutError {}
);

pub struct SessionApi;

#[OpenApi(tag = "ApiTags::SignIn")]
impl SessionApi {
    /// Sign in with a login (or email) and password; sets the session cookie.
    #[oai(path = "/login", method = "post", operation_id = "postLogin")]
    async fn login(
        &self,
        req: &Request,
        services: Data<&Arc<Services>>,
        body: GfJson<LoginForm>,
    ) -> Result<LoginOk, LoginError> {
        let ua = req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (token, _user) = services
            .auth
            .sign_in(&body.0.user, &body.0.password, client_ip(req), ua)
            .await
            .inspect_err(|_| {
                let tried = services.audit.identifier(&body.0.user);
                crate::domain::audit::update(|e| {
                    e.actor.login = tried;
                    e.actor.auth_method = "form".into();
                    e.action = crate::service::auth::SIGN_IN_ACTION.into();
                });
            })?;
        Ok(LoginOk::Ok(
            Json(LoginResponse {
                message: "Logged in".into(),
                redirect_url: "/".into(),
            }),
            session_cookie(&services.settings, &token),
        ))
    }

    /// Sign out: revokes the current session and clears the cookie.
    #[oai(path = "/logout", method = "get", operation_id = "getLogout")]
    async fn logout(
        &self,
        req: &Request,
        services: Data<&Arc<Services>>,
    ) -> Result<LogoutResponse, LogoutError> {
        let settings = &services.settings;
        if let Some(token) = cookie_value(req, &settings.login_cookie_name) {
            services.sessions.sign_out(&token).await?;
        }
        Ok(LogoutResponse::Found(
            "/login".into(),
            expired_session_cookie(settings),
        ))
    }
}
