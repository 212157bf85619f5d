//! `/api/orgs*` and `/api/org*`: Grafana's organization API — search, create, read,
//! rename, re-address and delete orgs, and list, search, look up, add, re-role and remove
//! their members. `/api/org/*` acts on the
//! caller's current org; `/api/orgs/:orgId/*` on any org, with permissions evaluated in
//! that org (the service decides).

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use std::sync::Arc;

use crate::api::auth::Auth;
use crate::api::body::{GfJson, BAD_REQUEST_DATA};
use crate::api::error::{message, ErrorBody, MessageBody};
use crate::api::users::{avatar, labels};
use crate::api::wire::{age, rfc3339, WireId};
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::{OrgId, OrgRole, UserId};
use crate::error::AppError;
use crate::service::orgs::{self as org_service, Added, Removed};
use crate::service::Services;
use crate::store::{OrgAddressRecord, UserRecord};

/// An org in a search (Grafana's `OrgDTO`).
#[derive(Object, Debug)]
pub struct Org {
    pub id: i64,
    pub name: String,
}

/// An org's postal address (empty strings when never set).
#[derive(Object, Debug, Default)]
#[oai(rename_all = "camelCase")]
pub struct OrgAddress {
    pub address1: String,
    pub address2: String,
    pub city: String,
    pub zip_code: String,
    pub state: String,
    pub country: String,
}

/// One org (Grafana's `OrgDetailsDTO`).
#[derive(Object, Debug)]
pub struct OrgDetails {
    pub id: i64,
    pub name: String,
    pub address: OrgAddress,
}

impl From<org_service::OrgDetails> for OrgDetails {
    fn from(d: org_service::OrgDetails) -> Self {
        let a = d.address;
        Self {
            id: d.org.id as i64,
            name: d.org.name,
            address: OrgAddress {
                address1: a.address1,
                address2: a.address2,
                city: a.city,
                zip_code: a.zip_code,
                state: a.state,
                country: a.country,
            },
        }
    }
}

/// A new postal address (Grafana's `UpdateOrgAddressForm`): every field is replaced, a
/// missing one by "". Keys match case-insensitively, so `zipCode` works too.
#[derive(Object, Debug)]
pub struct UpdateOrgAddressForm {
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub city: Option<String>,
    pub zipcode: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
}

impl From<UpdateOrgAddressForm> for OrgAddressRecord {
    fn from(f: UpdateOrgAddressForm) -> Self {
        Self {
            address1: f.address1.unwrap_or_default(),
            address2: f.address2.unwrap_or_default(),
            city: f.city.unwrap_or_default(),
            zip_code: f.zipcode.unwrap_or_default(),
            state: f.state.unwrap_or_default(),
            country: f.country.unwrap_or_default(),
        }
    }
}

/// A page of an org's members (Grafana's `SearchOrgUsersQueryResult`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SearchOrgUsersResult {
    /// Members matching the query, over all pages.
    pub total_count: i64,
    pub org_users: Vec<OrgUser>,
    /// The page, from 1.
    pub page: i64,
    pub per_page: i64,
}

/// A user found by `GET /api/org/users/lookup` (Grafana's `UserLookupDTO`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserLookup {
    pub user_id: i64,
    pub uid: String,
    pub login: String,
    pub avatar_url: String,
}

/// A member of an org (Grafana's `OrgUserDTO`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct OrgUser {
    pub org_id: i64,
    pub user_id: i64,
    pub email: String,
    pub name: String,
    pub avatar_url: String,
    pub login: String,
    /// `Admin`, `Editor`, `Viewer` or `None`.
    pub role: String,
    pub last_seen_at: String,
    pub last_seen_at_age: String,
    pub is_disabled: bool,
    pub auth_labels: Vec<String>,
    pub is_externally_synced: bool,
}

impl OrgUser {
    fn new(org: OrgId, u: &UserRecord, role: OrgRole, now: i64) -> Self {
        Self {
            org_id: org.0 as i64,
            user_id: u.id as i64,
            email: u.email.clone(),
            name: u.name.clone(),
            avatar_url: avatar(&u.email),
            login: u.login.clone(),
            role: role.as_str().to_string(),
            last_seen_at: rfc3339(u.last_seen_or_default()),
            last_seen_at_age: age(u.last_seen_or_default(), now),
            is_disabled: u.is_disabled,
            auth_labels: labels(u),
            is_externally_synced: false,
        }
    }
}

/// An org's name (create and rename).
#[derive(Object, Debug)]
pub struct OrgNameForm {
    /// Required, not empty.
    #[oai(validator(min_length = 1))]
    pub name: String,
}

/// `POST /api/orgs` reply.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct OrgCreated {
    pub message: String,
    pub org_id: i64,
}

/// Adds an existing user to an org.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct AddOrgUserForm {
    /// The user's login or email.
    #[oai(validator(min_length = 1))]
    pub login_or_email: String,
    /// `Viewer`, `Editor`, `Admin` or `None` (first letter case-insensitive; empty is
    /// `Viewer`).
    #[oai(validator(pattern = r"^([Vv]iewer|[Ee]ditor|[Aa]dmin|[Nn]one)?$"))]
    pub role: String,
}

/// Changes a member's role.
#[derive(Object, Debug)]
pub struct UpdateOrgUserForm {
    /// `Viewer`, `Editor`, `Admin` or `None` (first letter case-insensitive; empty is
    /// `Viewer`).
    #[oai(validator(pattern = r"^([Vv]iewer|[Ee]ditor|[Aa]dmin|[Nn]one)?$"))]
    pub role: String,
}

/// A message and the user it is about.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserMessage {
    pub message: String,
    pub user_id: i64,
}

/// Reply of adding a member.
#[derive(ApiResponse, Debug)]
pub enum AddedResponse {
    /// "User added to organization".
    #[oai(status = 200)]
    Ok(Json<UserMessage>),
}

api_errors!(
    /// Errors of org reads.
    OrgReadError {
        400 => BadRequest: "Bad query parameter.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not read this org.",
        404 => NotFound: "No such org.",
    }
);

api_errors!(
    /// Errors of creating or renaming an org.
    OrgWriteError {
        400 => BadRequest: "Bad body, or (rename) the name is taken.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not create or change orgs.",
        409 => Conflict: "(create) The name is taken.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of member changes.
    OrgUserError {
        400 => BadRequest: "Bad body or id, or the org would keep no Admin.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not change this member, or grant this role.",
        404 => NotFound: "No such user.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of deleting an org.
    OrgDeleteError {
        400 => BadRequest: "The org is the caller's current org.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not delete this org.",
        404 => NotFound: "No such org.",
    }
);

api_errors!(
    /// Errors of changing an org's address.
    OrgAddressError {
        400 => BadRequest: "Bad body.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not change this org.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

/// Errors of adding a member, with the 409 body that names the user.
#[derive(ApiResponse, Debug)]
pub enum AddOrgUserError {
    /// Bad body.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No or invalid credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The caller may not add members, or grant this role.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No user with that login or email.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// "User is already member of this organization".
    #[oai(status = 409)]
    Conflict(Json<UserMessage>),
    /// The body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Internal error; the cause is in the server log.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database is unavailable; retry in a moment.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<AppError> for AddOrgUserError {
    fn from(e: AppError) -> Self {
        let body = Json(ErrorBody::from_error(&e));
        match e.status() {
            400 => Self::BadRequest(body),
            401 => Self::Unauthorized(body),
            403 => Self::Forbidden(body),
            404 => Self::NotFound(body),
            413 => Self::PayloadTooLarge(body),
            503 => Self::Unavailable(body),
            _ => Self::Internal(body),
        }
    }
}

/// Grafana's role binding: the first letter is upper-cased, the rest must already match;
/// an empty role is `Viewer`; anything else is "bad request data".
pub fn parse_role(raw: &str) -> Result<OrgRole, AppError> {
    if raw.is_empty() {
        return Ok(OrgRole::Viewer);
    }
    let mut chars = raw.chars();
    let titled: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    OrgRole::parse(&titled)
        .filter(|r| r.as_str() == titled)
        .ok_or_else(|| AppError::bad_request(BAD_REQUEST_DATA))
}

/// `:orgId`: what is not a positive number is denied before the handler (Grafana's RBAC
/// middleware answers it with an empty "Permissions needed").
pub(crate) fn org_param(raw: &str) -> Result<OrgId, AppError> {
    // Read as Grafana's `strconv.ParseInt(.., 10, 64)`: past int64 is not a number.
    match raw.parse::<i64>().map(u64::try_from) {
        Ok(Ok(n)) if n > 0 => Ok(OrgId(n)),
        _ => Err(AppError::AccessDenied {
            action: String::new(),
            scope: String::new(),
        }),
    }
}

/// `:userId` as Grafana's `strconv.ParseInt(.., 10, 64)` reads it (400 otherwise); a
/// negative id names no user (404, as for any id that does not exist).
fn user_param(raw: &str) -> Result<UserId, AppError> {
    let id = raw
        .parse::<i64>()
        .map_err(|_| AppError::bad_request("userId is invalid"))?;
    u64::try_from(id)
        .map(UserId)
        .map_err(|_| AppError::not_found(crate::service::users::USER_NOT_FOUND))
}

pub struct OrgsApi;

impl OrgsApi {
    async fn members(
        services: &Services,
        auth: &Auth,
        org: OrgId,
    ) -> Result<Json<Vec<OrgUser>>, AppError> {
        let members = services.orgs.members(&auth.0, org).await?;
        Ok(Self::listed(services, org, &members))
    }

    /// Members as Grafana lists them.
    fn listed(
        services: &Services,
        org: OrgId,
        members: &[(UserRecord, OrgRole)],
    ) -> Json<Vec<OrgUser>> {
        let now = services.clock.now();
        Json(
            members
                .iter()
                .map(|(u, r)| OrgUser::new(org, u, *r, now))
                .collect(),
        )
    }

    async fn add(
        services: &Services,
        auth: &Auth,
        org: OrgId,
        body: AddOrgUserForm,
        quota_guarded: bool,
    ) -> Result<AddedResponse, AddOrgUserError> {
        // Required and not empty (the schema says so; the parse refused the rest). A role
        // is required, but an empty one is `Viewer` (Grafana's unmarshaller runs before
        // the Required check).
        let login = body.login_or_email;
        let role = parse_role(&body.role)?;
        match services
            .orgs
            .add(&auth.0, org, &login, role, quota_guarded)
            .await?
        {
            Added::Added(id) => Ok(AddedResponse::Ok(Json(UserMessage {
                message: "User added to organization".into(),
                user_id: id.0 as i64,
            }))),
            Added::AlreadyMember(id) => Err(AddOrgUserError::Conflict(Json(UserMessage {
                message: "User is already member of this organization".into(),
                user_id: id.0 as i64,
            }))),
        }
    }

    async fn set_role(
        services: &Services,
        auth: &Auth,
        org: OrgId,
        user: &str,
        body: UpdateOrgUserForm,
    ) -> Result<Json<MessageBody>, AppError> {
        let role = parse_role(&body.role)?;
        let user = user_param(user)?;
        services.orgs.set_role(&auth.0, org, user, role).await?;
        Ok(message("Organization user updated"))
    }

    async fn remove(
        services: &Services,
        auth: &Auth,
        org: OrgId,
        user: &str,
        delete_orphan: bool,
    ) -> Result<Json<MessageBody>, AppError> {
        let user = user_param(user)?;
        Ok(
            match services
                .orgs
                .remove(&auth.0, org, user, delete_orphan)
                .await?
            {
                Removed::Removed => message("User removed from organization"),
                Removed::UserDeleted => message("User deleted"),
            },
        )
    }

    async fn search_members(
        services: &Services,
        auth: &Auth,
        org: OrgId,
        query: Option<String>,
        page: Option<i64>,
        perpage: Option<i64>,
    ) -> Result<Json<SearchOrgUsersResult>, AppError> {
        let per = perpage.filter(|p| *p > 0).unwrap_or(1000);
        let page = page.filter(|p| *p > 0).unwrap_or(1);
        let found = services
            .orgs
            .search_members(
                &auth.0,
                org,
                query.as_deref().unwrap_or(""),
                page as u64,
                per as u64,
            )
            .await?;
        let now = services.clock.now();
        Ok(Json(SearchOrgUsersResult {
            total_count: found.total as i64,
            org_users: found
                .members
                .iter()
                .map(|(u, r)| OrgUser::new(org, u, *r, now))
                .collect(),
            page,
            per_page: per,
        }))
    }
}

#[OpenApi(tag = "ApiTags::Orgs")]
impl OrgsApi {
    /// Search orgs by name prefix (`query`) or exact `name`; `page` counts from 0.
    #[oai(path = "/api/orgs", method = "get", operation_id = "searchOrgs")]
    async fn search(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Name prefix.
        query: Query<Option<String>>,
        /// Exact name.
        name: Query<Option<String>>,
        /// Page number, from 0.
        page: Query<Option<i64>>,
        /// Orgs per page (default 1000).
        perpage: Query<Option<i64>>,
    ) -> Result<Json<Vec<Org>>, OrgReadError> {
        let per = perpage.0.filter(|p| *p > 0).unwrap_or(1000) as u64;
        let page = page.0.filter(|p| *p > 0).unwrap_or(0) as u64;
        let found = services
            .orgs
            .search(
                &auth.0,
                query.0.as_deref().unwrap_or(""),
                name.0.as_deref().filter(|n| !n.is_empty()),
                page,
                per,
            )
            .await?;
        Ok(Json(
            found
                .iter()
                .map(|o| Org {
                    id: o.id as i64,
                    name: o.name.clone(),
                })
                .collect(),
        ))
    }

    /// Create an org; the caller becomes its Admin.
    #[oai(path = "/api/orgs", method = "post", operation_id = "createOrg")]
    async fn create(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<OrgNameForm>,
    ) -> Result<Json<OrgCreated>, OrgWriteError> {
        let name = body.0.name;
        let id = services.orgs.create(&auth.0, &name).await?;
        Ok(Json(OrgCreated {
            message: "Organization created".into(),
            org_id: id.0 as i64,
        }))
    }

    /// Get an org by exact name.
    #[oai(
        path = "/api/orgs/name/:orgName",
        method = "get",
        operation_id = "getOrgByName"
    )]
    async fn by_name(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgName")] org_name: Path<String>,
    ) -> Result<Json<OrgDetails>, OrgReadError> {
        let org = services.orgs.by_name(&auth.0, &org_name.0).await?;
        Ok(Json(OrgDetails::from(org)))
    }

    /// Get an org by exact name (Grafana registers the route with a trailing slash).
    #[oai(
        path = "/api/orgs/name/:orgName/",
        method = "get",
        operation_id = "getOrgByNameSlash",
        hidden
    )]
    async fn by_name_slash(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgName")] org_name: Path<String>,
    ) -> Result<Json<OrgDetails>, OrgReadError> {
        let org = services.orgs.by_name(&auth.0, &org_name.0).await?;
        Ok(Json(OrgDetails::from(org)))
    }

    /// Get an org by id.
    #[oai(path = "/api/orgs/:orgId", method = "get", operation_id = "getOrgByID")]
    async fn get(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
    ) -> Result<Json<OrgDetails>, OrgReadError> {
        let org = org_param(&org_id.0)?;
        let org = services.orgs.get(&auth.0, org).await?;
        Ok(Json(OrgDetails::from(org)))
    }

    /// Rename an org.
    #[oai(path = "/api/orgs/:orgId", method = "put", operation_id = "updateOrg")]
    async fn rename(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        body: GfJson<OrgNameForm>,
    ) -> Result<Json<MessageBody>, OrgWriteError> {
        let org = org_param(&org_id.0)?;
        let name = body.0.name;
        services.orgs.rename(&auth.0, org, &name).await?;
        Ok(message("Organization updated"))
    }

    /// Get the caller's current org.
    #[oai(path = "/api/org", method = "get", operation_id = "getCurrentOrg")]
    async fn current(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<OrgDetails>, OrgReadError> {
        let org = services.orgs.get(&auth.0, auth.0.org_id).await?;
        Ok(Json(OrgDetails::from(org)))
    }

    /// Rename the caller's current org.
    #[oai(path = "/api/org", method = "put", operation_id = "updateCurrentOrg")]
    async fn rename_current(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<OrgNameForm>,
    ) -> Result<Json<MessageBody>, OrgWriteError> {
        let name = body.0.name;
        services.orgs.rename(&auth.0, auth.0.org_id, &name).await?;
        Ok(message("Organization updated"))
    }

    /// The members of an org.
    #[oai(
        path = "/api/orgs/:orgId/users",
        method = "get",
        operation_id = "getOrgUsers"
    )]
    async fn org_users(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
    ) -> Result<Json<Vec<OrgUser>>, OrgReadError> {
        let org = org_param(&org_id.0)?;
        Ok(Self::members(&services, &auth, org).await?)
    }

    /// The members of the caller's current org whose login, email or name contains `query`,
    /// at most `limit`.
    #[oai(
        path = "/api/org/users",
        method = "get",
        operation_id = "getOrgUsersForCurrentOrg"
    )]
    async fn current_users(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Part of a login, email or name.
        query: Query<Option<String>>,
        /// At most this many (0 or none: all).
        limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<OrgUser>>, OrgReadError> {
        let org = auth.0.org_id;
        let limit = limit.0.filter(|l| *l > 0).map_or(u64::MAX, |l| l as u64);
        let found = services
            .orgs
            .search_members(&auth.0, org, query.0.as_deref().unwrap_or(""), 1, limit)
            .await?;
        Ok(Self::listed(&services, org, &found.members))
    }

    /// Add an existing user to an org.
    #[oai(
        path = "/api/orgs/:orgId/users",
        method = "post",
        operation_id = "addOrgUser"
    )]
    async fn add_org_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        body: GfJson<AddOrgUserForm>,
    ) -> Result<AddedResponse, AddOrgUserError> {
        let org = org_param(&org_id.0)?;
        Self::add(&services, &auth, org, body.0, false).await
    }

    /// Add an existing user to the caller's current org.
    #[oai(
        path = "/api/org/users",
        method = "post",
        operation_id = "addOrgUserToCurrentOrg"
    )]
    async fn add_current_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<AddOrgUserForm>,
    ) -> Result<AddedResponse, AddOrgUserError> {
        let org = auth.0.org_id;
        Self::add(&services, &auth, org, body.0, true).await
    }

    /// Change a member's role.
    #[oai(
        path = "/api/orgs/:orgId/users/:userId",
        method = "patch",
        operation_id = "updateOrgUser"
    )]
    async fn update_org_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        #[oai(name = "userId")] user_id: Path<WireId>,
        body: GfJson<UpdateOrgUserForm>,
    ) -> Result<Json<MessageBody>, OrgUserError> {
        let org = org_param(&org_id.0)?;
        Ok(Self::set_role(&services, &auth, org, &user_id.0, body.0).await?)
    }

    /// Change a member's role in the caller's current org.
    #[oai(
        path = "/api/org/users/:userId",
        method = "patch",
        operation_id = "updateOrgUserForCurrentOrg"
    )]
    async fn update_current_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "userId")] user_id: Path<WireId>,
        body: GfJson<UpdateOrgUserForm>,
    ) -> Result<Json<MessageBody>, OrgUserError> {
        let org = auth.0.org_id;
        Ok(Self::set_role(&services, &auth, org, &user_id.0, body.0).await?)
    }

    /// Remove a member from an org (the user stays).
    #[oai(
        path = "/api/orgs/:orgId/users/:userId",
        method = "delete",
        operation_id = "removeOrgUser"
    )]
    async fn remove_org_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        #[oai(name = "userId")] user_id: Path<WireId>,
    ) -> Result<Json<MessageBody>, OrgUserError> {
        let org = org_param(&org_id.0)?;
        Ok(Self::remove(&services, &auth, org, &user_id.0, false).await?)
    }

    /// Remove a member from the caller's current org; a user left without any org is
    /// deleted ("User deleted").
    #[oai(
        path = "/api/org/users/:userId",
        method = "delete",
        operation_id = "removeOrgUserForCurrentOrg"
    )]
    async fn remove_current_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "userId")] user_id: Path<WireId>,
    ) -> Result<Json<MessageBody>, OrgUserError> {
        let org = auth.0.org_id;
        Ok(Self::remove(&services, &auth, org, &user_id.0, true).await?)
    }

    /// Delete an org and everything it owns (not its users); never the caller's current org.
    #[oai(
        path = "/api/orgs/:orgId",
        method = "delete",
        operation_id = "deleteOrgByID"
    )]
    async fn delete(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
    ) -> Result<Json<MessageBody>, OrgDeleteError> {
        let org = org_param(&org_id.0)?;
        services.orgs.delete(&auth.0, org).await?;
        Ok(message("Organization deleted"))
    }

    /// Replace an org's postal address.
    #[oai(
        path = "/api/orgs/:orgId/address",
        method = "put",
        operation_id = "updateOrgAddress"
    )]
    async fn update_address(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        body: GfJson<UpdateOrgAddressForm>,
    ) -> Result<Json<MessageBody>, OrgAddressError> {
        let org = org_param(&org_id.0)?;
        let address = OrgAddressRecord::from(body.0);
        services.orgs.set_address(&auth.0, org, &address).await?;
        Ok(message("Address updated"))
    }

    /// Replace the caller's current org's postal address.
    #[oai(
        path = "/api/org/address",
        method = "put",
        operation_id = "updateCurrentOrgAddress"
    )]
    async fn update_current_address(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<UpdateOrgAddressForm>,
    ) -> Result<Json<MessageBody>, OrgAddressError> {
        let address = OrgAddressRecord::from(body.0);
        let org = auth.0.org_id;
        services.orgs.set_address(&auth.0, org, &address).await?;
        Ok(message("Address updated"))
    }

    /// Search an org's members by login, email or name; `page` counts from 1.
    #[oai(
        path = "/api/orgs/:orgId/users/search",
        method = "get",
        operation_id = "searchOrgUsers"
    )]
    async fn search_org_users(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        #[oai(name = "orgId")] org_id: Path<WireId>,
        /// Part of a login, email or name.
        query: Query<Option<String>>,
        /// Page number, from 1.
        page: Query<Option<i64>>,
        /// Members per page (default 1000).
        perpage: Query<Option<i64>>,
    ) -> Result<Json<SearchOrgUsersResult>, OrgReadError> {
        let org = org_param(&org_id.0)?;
        Ok(Self::search_members(&services, &auth, org, query.0, page.0, perpage.0).await?)
    }

    /// Search the caller's current org's members; `page` counts from 1.
    #[oai(
        path = "/api/org/users/search",
        method = "get",
        operation_id = "searchOrgUsersWithPaging"
    )]
    async fn search_current_users(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Part of a login, email or name.
        query: Query<Option<String>>,
        /// Page number, from 1.
        page: Query<Option<i64>>,
        /// Members per page (default 1000).
        perpage: Query<Option<i64>>,
    ) -> Result<Json<SearchOrgUsersResult>, OrgReadError> {
        let org = auth.0.org_id;
        Ok(Self::search_members(&services, &auth, org, query.0, page.0, perpage.0).await?)
    }

    /// Look up members of the caller's current org (for pickers).
    #[oai(
        path = "/api/org/users/lookup",
        method = "get",
        operation_id = "getOrgUsersForCurrentOrgLookup"
    )]
    async fn lookup(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Part of a login, email or name.
        query: Query<Option<String>>,
        /// At most this many (0 or none: all).
        limit: Query<Option<i64>>,
    ) -> Result<Json<Vec<UserLookup>>, OrgReadError> {
        let limit = limit.0.filter(|l| *l > 0).unwrap_or(0) as u64;
        let found = services
            .orgs
            .lookup(&auth.0, query.0.as_deref().unwrap_or(""), limit)
            .await?;
        Ok(Json(
            found
                .iter()
                .map(|u| UserLookup {
                    user_id: u.id as i64,
                    uid: u.uid.clone(),
                    login: u.login.clone(),
                    avatar_url: avatar(&u.email),
                })
                .collect(),
        ))
    }
}
