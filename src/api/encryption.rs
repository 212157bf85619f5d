//! `/api/admin/encryption/*`: data key rotation, re-encryption and status. Grafana Admins
//! only; others get 403 "Permission denied", as Grafana's `reqGrafanaAdmin`.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::error::ErrorBody;
use crate::api::wire::rfc3339;
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::Services;
use crate::store::DekState;

#[derive(ApiResponse, Debug)]
pub enum RotateResponse {
    /// The active data key was retired (still decrypts) and a new one is active.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse, Debug)]
pub enum TextResponse {
    /// Done.
    #[oai(status = 200)]
    Ok(PlainText<String>),
}

#[derive(ApiResponse, Debug)]
pub enum ReencryptResponse {
    /// Every secret is now under the active data key.
    #[oai(status = 200)]
    Ok(PlainText<String>),
    /// Some secrets could not be re-encrypted; they are named in the server log and in
    /// the status endpoint.
    #[oai(status = 206)]
    Partial(Json<ErrorBody>),
}

api_errors!(
    /// Errors of the encryption admin operations.
    EncryptionError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller is not a Grafana Admin, or the request is cross-origin.",
    }
);

/// A data key, never its material.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct DataKeyStatus {
    pub id: i64,
    /// active, retired or destroyed.
    pub state: String,
    pub created: String,
    /// When rotation retired it; absent while active.
    #[oai(skip_serializing_if_is_none)]
    pub retired: Option<String>,
    /// The key-encryption key that wraps it.
    pub kek_id: String,
    /// Secrets still encrypted with it.
    pub references: i64,
    pub encryptions_reserved: i64,
}

/// The re-encryption job.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ReencryptionStatus {
    pub running: bool,
    /// True when the last run resumed an interrupted one.
    pub resumed: bool,
    pub total: i64,
    pub processed: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: Vec<String>,
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<String>,
}

/// Encryption at a glance.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct EncryptionStatus {
    pub active_data_key_id: i64,
    pub kek_id: String,
    pub data_keys: Vec<DataKeyStatus>,
    pub reencryption: ReencryptionStatus,
}

/// The result of decrypting every stored secret.
#[derive(Object, Debug)]
pub struct VerifyReport {
    pub checked: i64,
    /// Secrets that do not decrypt (by storage key).
    pub failed: Vec<String>,
}

fn when(ts: Option<i64>) -> Option<String> {
    ts.filter(|t| *t > 0).map(rfc3339)
}

pub struct EncryptionApi;

#[OpenApi(tag = "ApiTags::Encryption")]
impl EncryptionApi {
    /// Rotate data keys: the active key is retired (decrypt only) and a new one made
    /// active, in one flushed transaction.
    #[oai(
        path = "/api/admin/encryption/rotate-data-keys",
        method = "post",
        operation_id = "adminRotateDataEncryptionKeys"
    )]
    async fn rotate(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<RotateResponse, EncryptionError> {
        services.secrets.rotate_as(&auth.0).await?;
        Ok(RotateResponse::NoContent)
    }

    /// Re-wrap every data key under the current key-encryption key (after changing
    /// `secret_key` with the old one in `previous_secret_keys`).
    #[oai(
        path = "/api/admin/encryption/reencrypt-data-keys",
        method = "post",
        operation_id = "adminReEncryptEncryptionKeys"
    )]
    async fn reencrypt_data_keys(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<TextResponse, EncryptionError> {
        services.secrets.reencrypt_data_keys_as(&auth.0).await?;
        Ok(TextResponse::Ok(PlainText(
            "Data encryption keys re-encrypted successfully".into(),
        )))
    }

    /// Re-encrypt every secret still under a retired data key; resumable; unreferenced
    /// retired keys are destroyed at the end.
    #[oai(
        path = "/api/admin/encryption/reencrypt-secrets",
        method = "post",
        operation_id = "adminReEncryptSecrets"
    )]
    async fn reencrypt_secrets(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<ReencryptResponse, EncryptionError> {
        let report = services.secrets.reencrypt_secrets_as(&auth.0).await?;
        if report.failed.is_empty() {
            Ok(ReencryptResponse::Ok(PlainText(
                "Secrets re-encrypted successfully".into(),
            )))
        } else {
            Ok(ReencryptResponse::Partial(Json(ErrorBody::message(
                "Something unexpected happened, refer to the server logs for more details",
            ))))
        }
    }

    /// Grafana rolls secrets back to its legacy format. tollgate has a single format, so
    /// there is nothing to roll back: it verifies every secret decrypts and answers as
    /// Grafana does (206 if some do not).
    #[oai(
        path = "/api/admin/encryption/rollback-secrets",
        method = "post",
        operation_id = "adminRollbackSecrets"
    )]
    async fn rollback(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<ReencryptResponse, EncryptionError> {
        let failed = services.secrets.rollback_as(&auth.0).await?;
        if failed.is_empty() {
            Ok(ReencryptResponse::Ok(PlainText(
                "Secrets rolled back successfully".into(),
            )))
        } else {
            Ok(ReencryptResponse::Partial(Json(ErrorBody::message(
                "Something unexpected happened, refer to the server logs for more details",
            ))))
        }
    }

    /// Data keys (state, references, wrapping key) and the re-encryption job's progress.
    #[oai(
        path = "/api/admin/encryption/status",
        method = "get",
        operation_id = "adminGetEncryptionStatus"
    )]
    async fn status(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<EncryptionStatus>, EncryptionError> {
        let (deks, active, job) = services.secrets.status_as(&auth.0).await?;
        Ok(Json(EncryptionStatus {
            active_data_key_id: i64::from(active),
            kek_id: services.secrets.current_kek_id().to_string(),
            data_keys: deks
                .into_iter()
                .map(|d| DataKeyStatus {
                    id: i64::from(d.id),
                    state: match d.state {
                        DekState::Active => "active",
                        DekState::Retired => "retired",
                        DekState::Destroyed => "destroyed",
                    }
                    .into(),
                    created: rfc3339(d.created),
                    retired: when(d.retired),
                    kek_id: d.kek_id,
                    references: d.references as i64,
                    encryptions_reserved: d.encryptions_reserved as i64,
                })
                .collect(),
            reencryption: ReencryptionStatus {
                running: job.running,
                resumed: job.resumed,
                total: job.total as i64,
                processed: job.processed as i64,
                updated: job.updated as i64,
                skipped: job.skipped as i64,
                failed: job.failed,
                started_at: when(Some(job.started_at)),
                finished_at: when(Some(job.finished_at)),
            },
        }))
    }

    /// Decrypt every stored secret and report those that fail (before removing an old
    /// `secret_key` from `previous_secret_keys`, for example).
    #[oai(
        path = "/api/admin/encryption/verify-secrets",
        method = "post",
        operation_id = "adminVerifySecrets"
    )]
    async fn verify(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<VerifyReport>, EncryptionError> {
        let (checked, failed) = services.secrets.verify_as(&auth.0).await?;
        Ok(Json(VerifyReport {
            checked: checked as i64,
            failed,
        }))
    }
}
