//! `/api/datasources*`: Grafana's datasource API, the subset clients use. `secureJsonData`
//! is write-only; reads answer `secureJsonFields: {"<field>": true}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde_json::Value;

use crate::api::auth::Auth;
use crate::api::body::{GfJson, BAD_REQUEST_DATA};
use crate::api::ApiTags;
use crate::api_errors;
use crate::service::datasources::{validate_url, DataSourceInput, DataSourceRef};
use crate::service::Services;
use crate::store::DataSourceRecord;

/// A datasource to add or update.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct DataSourceForm {
    pub name: String,
    #[oai(rename = "type")]
    pub ds_type: String,
    /// Set on create (generated when absent); cannot change.
    pub uid: Option<String>,
    /// proxy or direct (required on update).
    pub access: Option<String>,
    pub url: Option<String>,
    pub user: Option<String>,
    pub database: Option<String>,
    pub basic_auth: Option<bool>,
    pub basic_auth_user: Option<String>,
    pub with_credentials: Option<bool>,
    pub is_default: Option<bool>,
    pub json_data: Option<Value>,
    /// Write-only secrets, stored encrypted.
    pub secure_json_data: Option<HashMap<String, String>>,
    /// On update: the version read, for optimistic concurrency.
    pub version: Option<i64>,
}

/// A datasource (Grafana's `DataSource`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct DataSource {
    pub id: i64,
    pub uid: String,
    pub org_id: i64,
    pub name: String,
    #[oai(rename = "type")]
    pub ds_type: String,
    pub type_logo_url: String,
    pub access: String,
    pub url: String,
    pub user: String,
    pub database: String,
    pub basic_auth: bool,
    pub basic_auth_user: String,
    pub with_credentials: bool,
    pub is_default: bool,
    pub json_data: Value,
    pub secure_json_fields: BTreeMap<String, bool>,
    pub version: i64,
    pub read_only: bool,
}

/// A datasource as listed (Grafana's `DataSourceListItemDTO`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct DataSourceListItem {
    pub id: i64,
    pub uid: String,
    pub org_id: i64,
    pub name: String,
    #[oai(rename = "type")]
    pub ds_type: String,
    pub type_name: String,
    pub type_logo_url: String,
    pub access: String,
    pub url: String,
    pub user: String,
    pub database: String,
    pub basic_auth: bool,
    pub is_default: bool,
    pub json_data: Value,
    pub read_only: bool,
}

/// Added or updated.
#[derive(Object, Debug)]
pub struct DataSourceSaved {
    pub datasource: DataSource,
    pub id: i64,
    pub message: String,
    pub name: String,
}

/// A datasource's id (Grafana's `dtos.AnyId`).
#[derive(Object, Debug)]
pub struct DataSourceId {
    pub id: i64,
}

/// Deleted.
#[derive(Object, Debug)]
pub struct DataSourceDeleted {
    #[oai(skip_serializing_if_is_none)]
    pub id: Option<i64>,
    pub message: String,
}

fn json_data(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Default::default()))
}

impl From<&DataSourceRecord> for DataSource {
    fn from(d: &DataSourceRecord) -> Self {
        Self {
            id: d.id as i64,
            uid: d.uid.clone(),
            org_id: d.org_id as i64,
            name: d.name.clone(),
            ds_type: d.ds_type.clone(),
            type_logo_url: String::new(),
            access: d.access.clone(),
            url: d.url.clone(),
            user: d.user.clone(),
            database: d.database.clone(),
            basic_auth: d.basic_auth,
            basic_auth_user: d.basic_auth_user.clone(),
            with_credentials: d.with_credentials,
            is_default: d.is_default,
            json_data: json_data(&d.json_data),
            secure_json_fields: d.secure_fields.iter().map(|f| (f.clone(), true)).collect(),
            version: d.version as i64,
            read_only: d.read_only,
        }
    }
}

impl From<&DataSourceRecord> for DataSourceListItem {
    fn from(d: &DataSourceRecord) -> Self {
        Self {
            id: d.id as i64,
            uid: d.uid.clone(),
            org_id: d.org_id as i64,
            name: d.name.clone(),
            ds_type: d.ds_type.clone(),
            type_name: d.ds_type.clone(),
            type_logo_url: String::new(),
            access: d.access.clone(),
            url: d.url.clone(),
            user: d.user.clone(),
            database: d.database.clone(),
            basic_auth: d.basic_auth,
            is_default: d.is_default,
            json_data: json_data(&d.json_data),
            read_only: d.read_only,
        }
    }
}

impl DataSourceForm {
    /// An update as Grafana's `UpdateDataSourceCommand` binds it: `name`, `type` and
    /// `access` are required (missing or empty: "bad request data"), then the URL is
    /// validated, before the datasource is looked up.
    fn into_update_input(self) -> Result<DataSourceInput, crate::error::AppError> {
        let given = |v: &str| !v.is_empty();
        if !given(&self.name) || !given(&self.ds_type) || !self.access.as_deref().is_some_and(given)
        {
            return Err(crate::error::AppError::bad_request(BAD_REQUEST_DATA));
        }
        validate_url(&self.ds_type, self.url.as_deref().unwrap_or_default())?;
        self.into_input()
    }

    fn into_input(self) -> Result<DataSourceInput, crate::error::AppError> {
        let json_data = match self.json_data {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.to_string()),
            Some(_) => {
                return Err(crate::error::AppError::bad_request(
                    "jsonData must be an object",
                ))
            }
        };
        Ok(DataSourceInput {
            name: self.name,
            ds_type: self.ds_type,
            uid: self.uid,
            access: self.access.unwrap_or_default(),
            url: self.url.unwrap_or_default(),
            user: self.user.unwrap_or_default(),
            database: self.database.unwrap_or_default(),
            basic_auth: self.basic_auth.unwrap_or(false),
            basic_auth_user: self.basic_auth_user.unwrap_or_default(),
            with_credentials: self.with_credentials.unwrap_or(false),
            is_default: self.is_default.unwrap_or(false),
            json_data,
            secure_json_data: self
                .secure_json_data
                .unwrap_or_default()
                .into_iter()
                .collect(),
            version: self.version.and_then(|v| u64::try_from(v).ok()),
            read_only: false,
        })
    }
}

api_errors!(
    /// Errors of adding or updating a datasource.
    SaveError {
        400 => BadRequest: "Not JSON, a missing or invalid field (on update `name`, `type` and `access` are required), or an invalid URL.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks the permission, the datasource is read-only, or the request is cross-origin.",
        404 => NotFound: "No such datasource (update).",
        409 => Conflict: "The name or uid is taken, or the version is stale.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of reading datasources.
    ReadError {
        400 => BadRequest: "The id is not a number.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `datasources:read`.",
        404 => NotFound: "No such datasource.",
    }
);

api_errors!(
    /// Errors of looking up a datasource's id by name.
    IdError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `datasources.id:read`.",
        404 => NotFound: "No datasource with this name in the caller's org.",
    }
);

api_errors!(
    /// Errors of deleting a datasource.
    DeleteError {
        400 => BadRequest: "The id is not a number.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `datasources:delete`, the datasource is read-only, or the request is cross-origin.",
        404 => NotFound: "No such datasource.",
    }
);

fn saved(d: &DataSourceRecord, message: &str) -> Json<DataSourceSaved> {
    Json(DataSourceSaved {
        datasource: DataSource::from(d),
        id: d.id as i64,
        message: message.into(),
        name: d.name.clone(),
    })
}

fn id(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub struct DataSourcesApi;

#[OpenApi(tag = "ApiTags::DataSources")]
impl DataSourcesApi {
    /// Add a datasource; `secureJsonData` is encrypted.
    #[oai(
        path = "/api/datasources",
        method = "post",
        operation_id = "addDataSource"
    )]
    async fn add(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<DataSourceForm>,
    ) -> Result<Json<DataSourceSaved>, SaveError> {
        // Grafana's handler validates a URL only when one is given.
        if let Some(url) = body.0.url.as_deref().filter(|u| !u.is_empty()) {
            validate_url(&body.0.ds_type, url)?;
        }
        let d = services
            .datasources
            .create(&auth.0, body.0.into_input()?)
            .await?;
        Ok(saved(&d, "Datasource added"))
    }

    /// The org's datasources.
    #[oai(
        path = "/api/datasources",
        method = "get",
        operation_id = "getDataSources"
    )]
    async fn list(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<DataSourceListItem>>, ReadError> {
        let all = services.datasources.list(&auth.0).await?;
        Ok(Json(all.iter().map(DataSourceListItem::from).collect()))
    }

    /// A datasource by id.
    #[oai(
        path = "/api/datasources/:id",
        method = "get",
        operation_id = "getDataSourceByID"
    )]
    async fn get(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        id: Path<i64>,
    ) -> Result<Json<DataSource>, ReadError> {
        Ok(Json(DataSource::from(
            &services.datasources.get(&auth.0, self::id(id.0)).await?,
        )))
    }

    /// A datasource by uid.
    #[oai(
        path = "/api/datasources/uid/:uid",
        method = "get",
        operation_id = "getDataSourceByUID"
    )]
    async fn get_by_uid(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        uid: Path<String>,
    ) -> Result<Json<DataSource>, ReadError> {
        Ok(Json(DataSource::from(
            &services.datasources.get_by_uid(&auth.0, &uid.0).await?,
        )))
    }

    /// A datasource by name.
    #[oai(
        path = "/api/datasources/name/:name",
        method = "get",
        operation_id = "getDataSourceByName"
    )]
    async fn get_by_name(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        name: Path<String>,
    ) -> Result<Json<DataSource>, ReadError> {
        Ok(Json(DataSource::from(
            &services.datasources.get_by_name(&auth.0, &name.0).await?,
        )))
    }

    /// Update a datasource; secure fields given replace the stored ones, others are kept.
    #[oai(
        path = "/api/datasources/:id",
        method = "put",
        operation_id = "updateDataSourceByID"
    )]
    async fn update(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        id: Path<i64>,
        body: GfJson<DataSourceForm>,
    ) -> Result<Json<DataSourceSaved>, SaveError> {
        let d = services
            .datasources
            .update(&auth.0, self::id(id.0), body.0.into_update_input()?)
            .await?;
        Ok(saved(&d, "Datasource updated"))
    }

    /// Update a datasource by uid: as `PUT /api/datasources/:id`.
    #[oai(
        path = "/api/datasources/uid/:uid",
        method = "put",
        operation_id = "updateDataSourceByUID"
    )]
    async fn update_by_uid(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        uid: Path<String>,
        body: GfJson<DataSourceForm>,
    ) -> Result<Json<DataSourceSaved>, SaveError> {
        let d = services
            .datasources
            .update_by_uid(&auth.0, &uid.0, body.0.into_update_input()?)
            .await?;
        Ok(saved(&d, "Datasource updated"))
    }

    /// The id of a datasource, by name.
    #[oai(
        path = "/api/datasources/id/:name",
        method = "get",
        operation_id = "getDataSourceIdByName"
    )]
    async fn id_by_name(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        name: Path<String>,
    ) -> Result<Json<DataSourceId>, IdError> {
        let id = services.datasources.id_by_name(&auth.0, &name.0).await?;
        Ok(Json(DataSourceId { id: id as i64 }))
    }

    /// Delete a datasource by id, with its secrets.
    #[oai(
        path = "/api/datasources/:id",
        method = "delete",
        operation_id = "deleteDataSourceByID"
    )]
    async fn delete(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        id: Path<i64>,
    ) -> Result<Json<DataSourceDeleted>, DeleteError> {
        let d = services
            .datasources
            .find(&auth.0, DataSourceRef::Id(self::id(id.0)))
            .await?;
        services.datasources.delete(&auth.0, d).await?;
        Ok(Json(DataSourceDeleted {
            id: None,
            message: "Data source deleted".into(),
        }))
    }

    /// Delete a datasource by uid.
    #[oai(
        path = "/api/datasources/uid/:uid",
        method = "delete",
        operation_id = "deleteDataSourceByUID"
    )]
    async fn delete_by_uid(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        uid: Path<String>,
    ) -> Result<Json<DataSourceDeleted>, DeleteError> {
        let d = services
            .datasources
            .find(&auth.0, DataSourceRef::Uid(&uid.0))
            .await?;
        let d = services.datasources.delete(&auth.0, d).await?;
        Ok(Json(DataSourceDeleted {
            id: Some(d.id as i64),
            message: "Data source deleted".into(),
        }))
    }

    /// Delete a datasource by name.
    #[oai(
        path = "/api/datasources/name/:name",
        method = "delete",
        operation_id = "deleteDataSourceByName"
    )]
    async fn delete_by_name(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        name: Path<String>,
    ) -> Result<Json<DataSourceDeleted>, DeleteError> {
        let d = services
            .datasources
            .find(&auth.0, DataSourceRef::Name(&name.0))
            .await?;
        let d = services.datasources.delete(&auth.0, d).await?;
        Ok(Json(DataSourceDeleted {
            id: Some(d.id as i64),
            message: "Data source deleted".into(),
        }))
    }
}
