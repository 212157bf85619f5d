//! `/api/auth/keys`: Grafana's legacy org API keys.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::rfc3339;
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::OrgRole;
use crate::service::Services;

/// A new API key.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AddApiKeyForm {
    pub name: String,
    /// Viewer, Editor, Admin or None.
    pub role: String,
    /// Seconds until the key expires; 0 or absent for never.
    pub seconds_to_live: Option<i64>,
}

/// The created key: `key` is shown only here.
#[derive(Object, Debug)]
pub struct NewApiKey {
    pub id: i64,
    pub name: String,
    pub key: String,
}

/// An API key as listed (never its secret).
#[derive(Object, Debug)]
pub struct ApiKeyDto {
    pub id: i64,
    pub name: String,
    pub role: String,
    /// RFC 3339; absent for keys that never expire.
    #[oai(skip_serializing_if_is_none)]
    pub expiration: Option<String>,
}

api_errors!(
    /// Errors of API key creation.
    AddKeyError {
        400 => BadRequest: "Not JSON, no name, an invalid role or a lifetime over the limit.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `apikeys:create`, or the request is cross-origin.",
        409 => Conflict: "The org already has a key with this name.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of listing API keys.
    ListKeysError {
        400 => BadRequest: "A query parameter is invalid.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `apikeys:read`.",
    }
);

api_errors!(
    /// Errors of deleting an API key.
    DeleteKeyError {
        400 => BadRequest: "The id is not a number.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `apikeys:delete`, or the request is cross-origin.",
        404 => NotFound: "No such key in the caller's org.",
    }
);

pub struct ApiKeysApi;

#[OpenApi(tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Create an org API key (org Admin).
    #[oai(path = "/api/auth/keys", method = "post", operation_id = "addAPIkey")]
    async fn add(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<AddApiKeyForm>,
    ) -> Result<Json<NewApiKey>, AddKeyError> {
        let f = body.0;
        let (record, key) = services
            .api_keys
            .create(&auth.0, &f.name, &f.role, f.seconds_to_live.unwrap_or(0))
            .await?;
        Ok(Json(NewApiKey {
            id: record.id as i64,
            name: record.name,
            key,
        }))
    }

    /// The org's API keys.
    #[oai(path = "/api/auth/keys", method = "get", operation_id = "getAPIkeys")]
    async fn list(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Include expired keys.
        #[oai(name = "includeExpired")]
        include_expired: Query<Option<bool>>,
    ) -> Result<Json<Vec<ApiKeyDto>>, ListKeysError> {
        let keys = services
            .api_keys
            .list(&auth.0, include_expired.0.unwrap_or(false))
            .await?;
        Ok(Json(
            keys.into_iter()
                .map(|k| ApiKeyDto {
                    id: k.id as i64,
                    name: k.name,
                    role: OrgRole::from_byte(k.role)
                        .unwrap_or(OrgRole::None)
                        .to_string(),
                    expiration: k.expires.map(rfc3339),
                })
                .collect(),
        ))
    }

    /// Delete an API key; it stops working at once.
    #[oai(
        path = "/api/auth/keys/:id",
        method = "delete",
        operation_id = "deleteAPIkey"
    )]
    async fn delete(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The key's id.
        id: Path<i64>,
    ) -> Result<Json<MessageBody>, DeleteKeyError> {
        let id = u64::try_from(id.0).unwrap_or(0);
        services.api_keys.delete(&auth.0, id).await?;
        Ok(message("API key deleted"))
    }
}
