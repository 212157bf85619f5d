//! `/api/serviceaccounts*`: service accounts and their `glsa_` tokens. A token carries
//! exactly the permissions of the roles assigned to its account (see
//! `/api/access-control/users/:id/roles`), so it can do admin work it was granted.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::users::avatar;
use crate::api::wire::{int, rfc3339};
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::UserId;
use crate::service::service_accounts::{AccountPatch, ServiceAccount};
use crate::service::Services;

/// A new service account.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateServiceAccountForm {
    pub name: String,
    /// Viewer (default), Editor, Admin or None.
    pub role: Option<String>,
    pub is_disabled: Option<bool>,
}

/// Changes to a service account.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UpdateServiceAccountForm {
    pub name: Option<String>,
    pub role: Option<String>,
    pub is_disabled: Option<bool>,
}

/// A service account.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ServiceAccountDto {
    pub id: i64,
    pub uid: String,
    pub name: String,
    pub login: String,
    pub org_id: i64,
    pub is_disabled: bool,
    pub role: String,
    pub tokens: i64,
    pub avatar_url: String,
}

/// A page of service accounts.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ServiceAccountPage {
    pub total_count: i64,
    pub service_accounts: Vec<ServiceAccountDto>,
    pub page: i64,
    pub per_page: i64,
}

/// The answer of an update.
#[derive(Object, Debug)]
pub struct UpdatedServiceAccount {
    pub id: i64,
    pub name: String,
    pub message: String,
    pub serviceaccount: ServiceAccountDto,
}

/// A new token.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct CreateTokenForm {
    pub name: String,
    /// 0 or absent: never expires.
    pub seconds_to_live: Option<i64>,
}

/// A created token: `key` is shown only here.
#[derive(Object, Debug)]
pub struct NewToken {
    pub id: i64,
    pub name: String,
    pub key: String,
}

/// A token as listed (never its secret).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct TokenDto {
    pub id: i64,
    pub name: String,
    pub created: String,
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub expiration: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub seconds_until_expiration: Option<i64>,
    pub has_expired: bool,
    pub is_revoked: bool,
}

/// `201` with the account.
#[derive(ApiResponse, Debug)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<ServiceAccountDto>),
}

api_errors!(
    /// Errors of the service-account routes.
    ServiceAccountError {
        400 => BadRequest: "Not JSON, no name, an invalid role, or a bad parameter.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the `serviceaccounts:*` permission, or the request is cross-origin.",
        404 => NotFound: "No such service account or token in the caller's org.",
        409 => Conflict: "An account or token with this name exists.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

fn dto(sa: ServiceAccount) -> ServiceAccountDto {
    let user = Arc::unwrap_or_clone(sa.user);
    ServiceAccountDto {
        id: int(user.id),
        avatar_url: avatar(&user.email),
        uid: user.uid,
        name: user.name,
        login: user.login,
        org_id: int(user.org_id),
        is_disabled: user.is_disabled,
        role: sa.role.to_string(),
        tokens: int(sa.tokens),
    }
}

fn id(v: i64) -> UserId {
    UserId(u64::try_from(v).unwrap_or(0))
}

async fn create(
    auth: &Auth,
    services: &Arc<Services>,
    f: CreateServiceAccountForm,
) -> Result<Created, ServiceAccountError> {
    let sa = services
        .service_accounts
        .create(
            &auth.0,
            &f.name,
            f.role.as_deref(),
            f.is_disabled.unwrap_or(false),
        )
        .await?;
    Ok(Created::Created(Json(dto(sa))))
}

pub struct ServiceAccountsApi;

#[OpenApi(tag = "ApiTags::ServiceAccounts")]
impl ServiceAccountsApi {
    /// Create a service account (org role Viewer unless given).
    #[oai(
        path = "/api/serviceaccounts",
        method = "post",
        operation_id = "createServiceAccount"
    )]
    async fn create(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<CreateServiceAccountForm>,
    ) -> Result<Created, ServiceAccountError> {
        create(&auth, &services, body.0).await
    }

    /// Search the org's service accounts.
    #[oai(
        path = "/api/serviceaccounts/search",
        method = "get",
        operation_id = "searchOrgServiceAccountsWithPaging"
    )]
    async fn search(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        query: Query<Option<String>>,
        page: Query<Option<i64>>,
        perpage: Query<Option<i64>>,
    ) -> Result<Json<ServiceAccountPage>, ServiceAccountError> {
        let page = page.0.unwrap_or(1).max(1);
        let per_page = perpage.0.unwrap_or(1000).clamp(1, 1000);
        let (list, total) = services
            .service_accounts
            .search(
                &auth.0,
                &query.0.unwrap_or_default(),
                page as u64,
                per_page as u64,
            )
            .await?;
        Ok(Json(ServiceAccountPage {
            total_count: int(total),
            service_accounts: list.into_iter().map(dto).collect(),
            page,
            per_page,
        }))
    }

    /// A service account.
    #[oai(
        path = "/api/serviceaccounts/:service_account_id",
        method = "get",
        operation_id = "retrieveServiceAccount"
    )]
    async fn get(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        service_account_id: Path<i64>,
    ) -> Result<Json<ServiceAccountDto>, ServiceAccountError> {
        let sa = services
            .service_accounts
            .get(&auth.0, id(service_account_id.0))
            .await?;
        Ok(Json(dto(sa)))
    }

    /// Rename, change the org role of, or disable a service account.
    #[oai(
        path = "/api/serviceaccounts/:service_account_id",
        method = "patch",
        operation_id = "updateServiceAccount"
    )]
    async fn update(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        service_account_id: Path<i64>,
        body: GfJson<UpdateServiceAccountForm>,
    ) -> Result<Json<UpdatedServiceAccount>, ServiceAccountError> {
        let f = body.0;
        let sa = services
            .service_accounts
            .update(
                &auth.0,
                id(service_account_id.0),
                AccountPatch {
                    name: f.name,
                    role: f.role,
                    is_disabled: f.is_disabled,
                },
            )
            .await?;
        let out = dto(sa);
        Ok(Json(UpdatedServiceAccount {
            id: out.id,
            name: out.name.clone(),
            message: "Service account updated".into(),
            serviceaccount: out,
        }))
    }

    /// Delete a service account and its tokens.
    #[oai(
        path = "/api/serviceaccounts/:service_account_id",
        method = "delete",
        operation_id = "deleteServiceAccount"
    )]
    async fn delete(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        service_account_id: Path<i64>,
    ) -> Result<Json<MessageBody>, ServiceAccountError> {
        services
            .service_accounts
            .delete(&auth.0, id(service_account_id.0))
            .await?;
        Ok(message("Service account deleted"))
    }

    /// Create a token (`glsa_...`); the key is shown only in this answer.
    #[oai(
        path = "/api/serviceaccounts/:service_account_id/tokens",
        method = "post",
        operation_id = "createToken"
    )]
    async fn create_token(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        service_account_id: Path<i64>,
        body: GfJson<CreateTokenForm>,
    ) -> Result<Json<NewToken>, ServiceAccountError> {
        let (record, key) = services
            .service_accounts
            .create_token(
                &auth.0,
                id(service_account_id.0),
                &body.0.name,
                body.0.seconds_to_live.unwrap_or(0),
            )
            .await?;
        Ok(Json(NewToken {
            id: int(record.id),
            name: record.name,
            key,
        }))
    }

    /// The account's tokens.
    #[oai(
        path = "/api/serviceaccounts/:service_account_id/tokens",
        method = "get",
        operation_id = "listTokens"
    )]
    async fn tokens(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        service_account_id: Path<i64>,
    ) -> Result<Json<Vec<TokenDto>>, ServiceAccountError> {
        let list = services
            .service_accounts
            .tokens(&auth.0, id(service_account_id.0))
            .await?;
        Ok(Json(
            list.into_iter()
                .map(|k| {
                    let (has_expired, seconds_until_expiration) =
                        services.service_accounts.expiry(&k);
                    TokenDto {
                        id: int(k.id),
                        name: k.name,
                        created: rfc3339(k.created),
                        last_used_at: k.last_used.map(rfc3339),
                        expiration: k.expires.map(rfc3339),
                        seconds_until_expiration,
                        has_expired,
                        is_revoked: false,
                    }
                })
                .collect(),
        ))
    }

    /// Delete (revoke) a token: its next request gets 401.
    #[oai(
        path = "/api/serviceaccounts/:service_account_id/tokens/:token_id",
        method = "delete",
        operation_id = "deleteToken"
    )]
    async fn delete_token(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        service_account_id: Path<i64>,
        token_id: Path<i64>,
    ) -> Result<Json<MessageBody>, ServiceAccountError> {
        services
            .service_accounts
            .delete_token(
                &auth.0,
                id(service_account_id.0),
                u64::try_from(token_id.0).unwrap_or(0),
            )
            .await?;
        Ok(message("Service account token deleted"))
    }
}
