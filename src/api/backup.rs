//! `POST /api/admin/backup`: tollgate's own route (Grafana has none). The answer is the
//! backup file that `tollgate backup` writes and `tollgate restore` reads.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Binary;
use poem_openapi::{ApiResponse, OpenApi};

use crate::api::auth::Auth;
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::Services;

#[derive(ApiResponse, Debug)]
pub enum BackupResponse {
    /// The backup file: every record as of one point in time, secrets still encrypted,
    /// with a SHA-256 checksum at its end.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<Vec<u8>>,
        /// `attachment; filename="tollgate-<unix seconds>.backup"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

api_errors!(
    /// Errors of taking a backup.
    BackupError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `server.backup:create`, or the request is cross-origin.",
    }
);

pub struct BackupApi;

#[OpenApi(tag = "ApiTags::AdminSettings")]
impl BackupApi {
    /// Takes a backup of every record (`server.backup:create`, Grafana Admins by default).
    /// On the embedded store, writes wait while the records are read.
    #[oai(
        path = "/api/admin/backup",
        method = "post",
        operation_id = "adminCreateBackup"
    )]
    async fn backup(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<BackupResponse, BackupError> {
        let bytes = services.backup.create(&auth.0).await?;
        let name = format!(
            "attachment; filename=\"tollgate-{}.backup\"",
            services.clock.now()
        );
        Ok(BackupResponse::Ok(Binary(bytes), name))
    }
}
