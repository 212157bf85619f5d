//! `/api/admin/users*`: the global user administration of Grafana's Admin API
//! (sections 4.1-4.5 of the reference). Handlers only translate between the wire and the
//! user service.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::WireId;
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::users::NewUser;
use crate::service::Services;

/// A new user. Either `login` or `email` is needed; the other defaults to it.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AdminCreateUserForm {
    /// Display name.
    pub name: Option<String>,
    pub email: Option<String>,
    pub login: Option<String>,
    /// At least 4 characters (12 with upper, lower, digit and symbol under the strong policy).
    /// Required: empty is "bad request data", as Grafana's binding answers.
    #[oai(validator(min_length = 1, max_length = 4096))]
    pub password: String,
    /// The org to join (honoured when `auto_assign_org` is on).
    pub org_id: Option<i64>,
}

/// The created user.
#[derive(Object, Debug)]
pub struct AdminCreateUserResponse {
    pub id: i64,
    pub uid: String,
    pub message: String,
}

/// A new password.
#[derive(Object, Debug)]
pub struct AdminUpdateUserPasswordForm {
    /// Required: empty is "bad request data", as Grafana's binding answers.
    #[oai(validator(min_length = 1, max_length = 4096))]
    pub password: String,
}

/// The Grafana Admin (server administrator) flag.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AdminUpdateUserPermissionsForm {
    /// Not required, as in Grafana: absent is `false`.
    #[oai(default)]
    pub is_grafana_admin: bool,
}

api_errors!(
    /// Errors of user creation.
    CreateUserError {
        400 => BadRequest: "Not JSON, no password, password too short, or neither login nor email.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users:create`.",
        412 => PreconditionFailed: "A user with this login or email already exists.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of changes to one user that take a body.
    UserChangeError {
        400 => BadRequest: "Not JSON, an invalid value, or the last Grafana Admin would be removed.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the permission on this user, or the user is external.",
        404 => NotFound: "No such user.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of user deletion.
    DeleteUserError {
        400 => BadRequest: "The user is the last enabled Grafana Admin.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users:delete` on this user.",
        404 => NotFound: "No such user.",
    }
);

api_errors!(
    /// Errors of disable and enable.
    UserStateError {
        400 => BadRequest: "(disable) The user is the last enabled Grafana Admin.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the permission on this user.",
        404 => NotFound: "No such user.",
    }
);

pub struct AdminUsersApi;

#[OpenApi(tag = "ApiTags::AdminUsers")]
impl AdminUsersApi {
    /// Create a user. Needs `users:create`.
    #[oai(
        path = "/api/admin/users",
        method = "post",
        operation_id = "adminCreateUser"
    )]
    async fn create_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<AdminCreateUserForm>,
    ) -> Result<Json<AdminCreateUserResponse>, CreateUserError> {
        let f = body.0;
        let user = services
            .users
            .create(
                &auth.0,
                NewUser {
                    name: f.name.unwrap_or_default(),
                    email: f.email.unwrap_or_default(),
                    login: f.login.unwrap_or_default(),
                    password: f.password,
                    org_id: f.org_id.and_then(|id| u64::try_from(id).ok()),
                },
            )
            .await?;
        Ok(Json(AdminCreateUserResponse {
            id: user.id as i64,
            uid: user.uid,
            message: "User created".into(),
        }))
    }

    /// Change a user's password; ends the user's sessions. Needs `users.password:update`
    /// (alias `users.password:write`) on `global.users:id:<id>`.
    #[oai(
        path = "/api/admin/users/:id/password",
        method = "put",
        operation_id = "adminUpdateUserPassword"
    )]
    async fn update_password(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
        body: GfJson<AdminUpdateUserPasswordForm>,
    ) -> Result<Json<MessageBody>, UserChangeError> {
        services
            .users
            .set_password(&auth.0, &id.0, &body.0.password)
            .await?;
        Ok(message("User password updated"))
    }

    /// Grant or revoke Grafana Admin. Needs `users.permissions:update` on the user and the
    /// caller must be a Grafana Admin. The last Grafana Admin cannot be demoted.
    #[oai(
        path = "/api/admin/users/:id/permissions",
        method = "put",
        operation_id = "adminUpdateUserPermissions"
    )]
    async fn update_permissions(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
        body: GfJson<AdminUpdateUserPermissionsForm>,
    ) -> Result<Json<MessageBody>, UserChangeError> {
        services
            .users
            .set_grafana_admin(&auth.0, &id.0, body.0.is_grafana_admin)
            .await?;
        Ok(message("User permissions updated"))
    }

    /// Delete a user and end their sessions. Needs `users:delete` on the user.
    #[oai(
        path = "/api/admin/users/:id",
        method = "delete",
        operation_id = "adminDeleteUser"
    )]
    async fn delete_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<MessageBody>, DeleteUserError> {
        services.users.delete(&auth.0, &id.0).await?;
        Ok(message("User deleted"))
    }

    /// Disable a user and end their sessions. Needs `users:disable` on the user.
    #[oai(
        path = "/api/admin/users/:id/disable",
        method = "post",
        operation_id = "adminDisableUser"
    )]
    async fn disable_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<MessageBody>, UserStateError> {
        services.users.set_disabled(&auth.0, &id.0, true).await?;
        Ok(message("User disabled"))
    }

    /// Enable a user. Needs `users:enable` on the user.
    #[oai(
        path = "/api/admin/users/:id/enable",
        method = "post",
        operation_id = "adminEnableUser"
    )]
    async fn enable_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<MessageBody>, UserStateError> {
        services.users.set_disabled(&auth.0, &id.0, false).await?;
        Ok(message("User enabled"))
    }
}
