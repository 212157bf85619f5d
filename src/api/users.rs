//! `/api/users*` and `/api/user*`: reading users (Grafana's user API, the subset clients
//! use), a user's orgs and teams, switching a user's current org, and the signed-in user's
//! own profile, password, orgs, teams and current org (Grafana's `signed_in_user` routes:
//! no RBAC action, any user). Only users may use `/api/user/*`: API keys and
//! service-account tokens get 403 "Endpoint only available for users" (Grafana 10; newer
//! Grafana answers a 304, which carries no body and breaks clients).

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::error::{message, MessageBody};
use crate::api::wire::{age, rfc3339, FastJson, RenderedJson, WireId};
use crate::api::ApiTags;
use crate::api_errors;
use crate::crypto::{random, sha256};
use crate::domain::time::Rfc3339;
use crate::service::users::{self as user_rules, signed_in_user, OwnProfileUpdate, ProfileUpdate};
use crate::service::Services;
use crate::store::UserRecord;

/// A user as `GET /api/users/:id` answers it (Grafana's `UserProfileDTO`).
#[derive(Object, Debug, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    pub id: i64,
    pub uid: String,
    pub email: String,
    pub name: String,
    pub login: String,
    pub theme: String,
    pub org_id: i64,
    pub is_grafana_admin: bool,
    pub is_disabled: bool,
    pub is_external: bool,
    pub is_externally_synced: bool,
    pub is_grafana_admin_externally_synced: bool,
    pub auth_labels: Vec<String>,
    pub updated_at: String,
    pub created_at: String,
    pub avatar_url: String,
    pub is_provisioned: bool,
}

/// A [`UserProfile`] written straight from the shared row, with no copy of its text: what
/// every read of one user (`GET /api/user`, `GET /api/users/:id`, `GET /api/users/lookup`)
/// answers, through [`SharedProfile::answer`]. The document shows it as [`UserProfile`]; a
/// test checks that both write the same JSON.
pub struct SharedProfile {
    pub user: Arc<UserRecord>,
    /// The org the answer names (`GET /api/user`: the caller's current one).
    pub org_id: u64,
}

impl SharedProfile {
    /// The profile naming the row's own current org.
    pub fn of_row(user: Arc<UserRecord>) -> Self {
        let org_id = user.org_id;
        Self { user, org_id }
    }

    /// The answer: this thread's kept body when the row is the one it was written from,
    /// else the body written now (and kept).
    pub fn answer(self) -> Result<RenderedJson<UserProfile>, crate::error::AppError> {
        KEPT_PROFILES
            .with_borrow_mut(|kept| kept.body(self))
            .map(RenderedJson::new)
    }
}

/// The bodies of the last profiles answered on this thread (`GET /api/user`,
/// `GET /api/users/:id`, `GET /api/users/lookup`), by user id, org named and (for the users
/// an API key or a service account stands for, which share id 0) login: writing a profile
/// costs more than the rest of an authenticated read, and the same few users are read over
/// and over. One map per thread, like the avatars', so that no lock is shared by every
/// read. An entry answers while the row handed out is the one it was written from (the
/// same `Arc`: the entry holds it, so its address is not reused) or equal to it (a row
/// decoded again, a synthesized user); any change to the row writes the body again. Bounded
/// (a body and a row, under 1 KB an entry, so about 0.5 MB a thread): emptied when full.
struct KeptProfiles {
    bodies: crate::domain::FastMap<(u64, u64, u64), (Arc<UserRecord>, bytes::Bytes)>,
}

const MAX_KEPT_PROFILES: usize = 512;

thread_local! {
    static KEPT_PROFILES: std::cell::RefCell<KeptProfiles> =
        std::cell::RefCell::new(KeptProfiles {
            bodies: crate::domain::FastMap::default(),
        });
}

impl KeptProfiles {
    fn body(&mut self, p: SharedProfile) -> Result<bytes::Bytes, crate::error::AppError> {
        use std::hash::BuildHasher;
        let u = &p.user;
        let login = if u.id == 0 {
            self.bodies.hasher().hash_one(&u.login)
        } else {
            0
        };
        let key = (u.id, p.org_id, login);
        if let Some((kept, body)) = self.bodies.get_mut(&key) {
            if Arc::ptr_eq(kept, u) {
                return Ok(body.clone());
            }
            if **kept == **u {
                *kept = p.user;
                return Ok(body.clone());
            }
        }
        let mut out = Vec::with_capacity(512);
        crate::api::json::write(&mut out, &p)
            .map_err(|e| crate::error::AppError::internal("Failed to get user", e))?;
        let body = bytes::Bytes::from(out);
        if self.bodies.len() >= MAX_KEPT_PROFILES {
            self.bodies.clear();
        }
        self.bodies.insert(key, (p.user, body.clone()));
        Ok(body)
    }
}

impl serde::Serialize for SharedProfile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let u = &*self.user;
        let external = !u.auth_module.is_empty();
        let mut out = s.serialize_struct("UserProfile", 17)?;
        out.serialize_field("id", &(u.id as i64))?;
        out.serialize_field("uid", &u.uid)?;
        out.serialize_field("email", &u.email)?;
        out.serialize_field("name", &u.name)?;
        out.serialize_field("login", &u.login)?;
        out.serialize_field("theme", &u.theme)?;
        out.serialize_field("orgId", &(self.org_id as i64))?;
        out.serialize_field("isGrafanaAdmin", &u.is_admin)?;
        out.serialize_field("isDisabled", &u.is_disabled)?;
        out.serialize_field("isExternal", &external)?;
        out.serialize_field("isExternallySynced", &external)?;
        out.serialize_field("isGrafanaAdminExternallySynced", &false)?;
        out.serialize_field("authLabels", &labels(u))?;
        out.serialize_field("updatedAt", &Rfc3339(u.updated))?;
        out.serialize_field("createdAt", &Rfc3339(u.created))?;
        with_avatar(&u.email, |path| out.serialize_field("avatarUrl", path))?;
        out.serialize_field("isProvisioned", &false)?;
        out.end()
    }
}

/// One row of a user search (Grafana's `UserSearchHitDTO`).
#[derive(Object, Debug, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UserSearchHit {
    pub id: i64,
    pub uid: String,
    pub name: String,
    pub login: String,
    pub email: String,
    pub avatar_url: String,
    pub is_admin: bool,
    pub is_disabled: bool,
    pub last_seen_at: String,
    pub last_seen_at_age: String,
    pub auth_labels: Vec<String>,
    pub is_provisioned: bool,
}

/// A page of users (`GET /api/users/search`).
#[derive(Object, Debug, serde::Serialize)]
#[oai(rename_all = "camelCase")]
#[serde(rename_all = "camelCase")]
pub struct UserSearchPage {
    pub total_count: i64,
    pub users: Vec<UserSearchHit>,
    pub page: i64,
    pub per_page: i64,
}

/// Changes to a user; absent fields keep their value.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UpdateUserForm {
    pub email: Option<String>,
    pub name: Option<String>,
    pub login: Option<String>,
    pub theme: Option<String>,
}

/// One org of a user (Grafana's `UserOrgDTO`).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserOrg {
    pub org_id: i64,
    pub name: String,
    /// `Admin`, `Editor`, `Viewer` or `None`.
    pub role: String,
}

impl From<&user_rules::UserOrg> for UserOrg {
    fn from(o: &user_rules::UserOrg) -> Self {
        Self {
            org_id: o.org_id.0 as i64,
            name: o.name.clone(),
            role: o.role.as_str().to_string(),
        }
    }
}

/// A team (Grafana's `TeamDTO`). tollgate has no teams: the lists that carry them are
/// empty, and this documents the shape clients expect.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct UserTeam {
    pub id: i64,
    pub uid: String,
    pub org_id: i64,
    pub name: String,
    pub email: String,
    pub avatar_url: String,
    pub member_count: i64,
    pub permission: i64,
    #[oai(skip_serializing_if_is_none)]
    pub access_control: Option<std::collections::BTreeMap<String, bool>>,
}

/// The avatar path of an email: `/avatar/` and 32 hex digits of a digest of the trimmed,
/// lower-case address (Grafana's shape, an MD5's length).
pub fn avatar(email: &str) -> String {
    with_avatar(email, str::to_string)
}

/// `f` of [`avatar`]'s path, without a copy of it when it was made already. `f` runs while
/// this thread's map is borrowed: it must not ask for another avatar.
pub fn with_avatar<R>(email: &str, f: impl FnOnce(&str) -> R) -> R {
    // Paths already made, by email: every profile, search hit and member carries one, and
    // the digest costs more than the rest of a profile. One map per thread (requests run
    // on the runtime's few workers), so that no lock is shared by every read. Bounded
    // (about 150 bytes an entry, so at most about 150 KB a thread): emptied when full. A
    // walk over more users than that (100,000 reads in `make bench`'s memory scenario)
    // pays the digest each time.
    thread_local! {
        static MADE: std::cell::RefCell<crate::domain::FastMap<String, String>> =
            std::cell::RefCell::new(crate::domain::FastMap::default());
    }
    const MAX_MADE: usize = 1_000;
    MADE.with_borrow_mut(|made| {
        if let Some(path) = made.get(email) {
            return f(path);
        }
        let path = format!(
            "/avatar/{}",
            random::hex(&sha256(email.trim().to_lowercase().as_bytes())[..16])
        );
        if made.len() >= MAX_MADE {
            made.clear();
        }
        let answer = f(&path);
        made.insert(email.to_string(), path);
        answer
    })
}

pub fn labels(u: &UserRecord) -> Vec<String> {
    match u.auth_module.as_str() {
        "" => vec![],
        "ldap" => vec!["LDAP".into()],
        other => vec![other.to_string()],
    }
}

impl UserSearchHit {
    fn from_record(u: &UserRecord, now: i64) -> Self {
        Self {
            id: u.id as i64,
            uid: u.uid.clone(),
            name: u.name.clone(),
            login: u.login.clone(),
            email: u.email.clone(),
            avatar_url: avatar(&u.email),
            is_admin: u.is_admin,
            is_disabled: u.is_disabled,
            last_seen_at: rfc3339(u.last_seen_or_default()),
            last_seen_at_age: age(u.last_seen_or_default(), now),
            auth_labels: labels(u),
            is_provisioned: false,
        }
    }
}

api_errors!(
    /// Errors of the user reads.
    ReadError {
        400 => BadRequest: "A query parameter is not a number.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not read users.",
    }
);

api_errors!(
    /// Errors of reads of one user.
    UserReadError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not read this user.",
        404 => NotFound: "No such user.",
    }
);

api_errors!(
    /// Errors of a lookup by login or email.
    LookupError {
        400 => BadRequest: "`loginOrEmail` is missing.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not read users.",
        404 => NotFound: "No such user.",
    }
);

api_errors!(
    /// Errors of a user update.
    UpdateUserError {
        400 => BadRequest: "The body is not valid JSON, or a value is invalid.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller may not change this user.",
        404 => NotFound: "No such user.",
        409 => Conflict: "The login or email belongs to another user.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of a user's org and team lists.
    UserListsError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `users:read` on this user.",
        404 => NotFound: "No user has this uid.",
    }
);

api_errors!(
    /// Errors of switching a user's current org.
    UpdateUserActiveOrgError {
        400 => BadRequest: "`orgId` is not a number.",
        401 => Unauthorized: "No or invalid credentials, or the user is not a member of the org.",
        403 => Forbidden: "The caller lacks `users:write` on this user.",
        404 => NotFound: "No user has this uid.",
    }
);

/// A password change. Neither field is required: a missing old password is a wrong one, a
/// missing new password a too short one (as Grafana reads them).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ChangeUserPasswordForm {
    /// The current password.
    #[oai(validator(max_length = 4096))]
    pub old_password: Option<String>,
    /// At least 4 characters (12 with upper, lower, digit and symbol under the strong policy).
    #[oai(validator(max_length = 4096))]
    pub new_password: Option<String>,
    /// Accepted and ignored: Grafana's UI compares it, its server does not.
    pub confirm_new: Option<String>,
}

api_errors!(
    /// Errors of `PUT /api/user`.
    UpdateSignedInUserError {
        400 => BadRequest: "Not JSON, neither login nor email, or an invalid value.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "Not a user (an API key or service-account token), or an external (LDAP) user.",
        409 => Conflict: "The login or email belongs to another user.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of `PUT /api/user/password`.
    ChangeUserPasswordError {
        400 => BadRequest: "Not JSON, a wrong old password, or a new password the policy refuses.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "Not a user (an API key or service-account token), or an external (LDAP) user.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of the signed-in user's lists.
    SignedInListError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "Not a user (an API key or service-account token).",
    }
);

api_errors!(
    /// Errors of switching the signed-in user's current org.
    SetUsingOrgError {
        400 => BadRequest: "`id` is not a number.",
        401 => Unauthorized: "No or invalid credentials, or the user is not a member of the org.",
        403 => Forbidden: "Not a user (an API key or service-account token).",
    }
);

pub struct UsersApi;

const DEFAULT_PER_PAGE: i64 = 1000;

fn paging(page: Option<i64>, perpage: Option<i64>, default_per_page: i64) -> (u64, u64) {
    let page = page.filter(|p| *p > 0).unwrap_or(1) as u64;
    let per = perpage.filter(|p| *p > 0).unwrap_or(default_per_page) as u64;
    (page, per)
}

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Get users: a page of all users, as a bare list.
    #[oai(path = "/api/users", method = "get", operation_id = "searchUsers")]
    async fn search_users(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Text to find in login, email or name.
        query: Query<Option<String>>,
        /// Page number, from 1.
        page: Query<Option<i64>>,
        /// Users per page (default 1000).
        perpage: Query<Option<i64>>,
    ) -> Result<FastJson<Vec<UserSearchHit>>, ReadError> {
        let (page, per) = paging(page.0, perpage.0, DEFAULT_PER_PAGE);
        let found = services
            .users
            .search(&auth.0, query.0.unwrap_or_default(), page, per)
            .await?;
        let ts = services.clock.now();
        Ok(FastJson(
            found
                .users
                .iter()
                .map(|u| UserSearchHit::from_record(u, ts))
                .collect(),
        ))
    }

    /// Search users with paging: the page plus the total count.
    #[oai(
        path = "/api/users/search",
        method = "get",
        operation_id = "searchUsersWithPaging"
    )]
    async fn search_users_with_paging(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// Text to find in login, email or name.
        query: Query<Option<String>>,
        /// Page number, from 1.
        page: Query<Option<i64>>,
        /// Users per page (default 1000).
        perpage: Query<Option<i64>>,
    ) -> Result<FastJson<UserSearchPage>, ReadError> {
        let (page, per) = paging(page.0, perpage.0, DEFAULT_PER_PAGE);
        let found = services
            .users
            .search(&auth.0, query.0.unwrap_or_default(), page, per)
            .await?;
        let ts = services.clock.now();
        Ok(FastJson(UserSearchPage {
            total_count: found.total as i64,
            users: found
                .users
                .iter()
                .map(|u| UserSearchHit::from_record(u, ts))
                .collect(),
            page: page as i64,
            per_page: per as i64,
        }))
    }

    /// Get a user by login or email.
    #[oai(
        path = "/api/users/lookup",
        method = "get",
        operation_id = "getUserByLoginOrEmail"
    )]
    async fn lookup(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The login or the email of the user.
        #[oai(name = "loginOrEmail")]
        login_or_email: Query<String>,
    ) -> Result<RenderedJson<UserProfile>, LookupError> {
        let u = services.users.lookup(&auth.0, &login_or_email.0).await?;
        Ok(SharedProfile::of_row(Arc::new(u)).answer()?)
    }

    /// Get a user by id (or uid).
    #[oai(path = "/api/users/:id", method = "get", operation_id = "getUserByID")]
    async fn get_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<RenderedJson<UserProfile>, UserReadError> {
        let user = services.users.get(&auth.0, &id.0, auth.1).await?;
        Ok(SharedProfile::of_row(user).answer()?)
    }

    /// Update a user's name, email, login or theme.
    #[oai(path = "/api/users/:id", method = "put", operation_id = "updateUser")]
    async fn update_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
        body: GfJson<UpdateUserForm>,
    ) -> Result<Json<MessageBody>, UpdateUserError> {
        let f = body.0;
        services
            .users
            .update_profile(
                &auth.0,
                &id.0,
                ProfileUpdate {
                    name: f.name,
                    email: f.email,
                    login: f.login,
                    theme: f.theme,
                },
            )
            .await?;
        Ok(message("User updated"))
    }

    /// A user's orgs with their role in each, sorted by name. Needs `users:read` on the
    /// user; an unknown numeric id has none.
    #[oai(
        path = "/api/users/:id/orgs",
        method = "get",
        operation_id = "getUserOrgList"
    )]
    async fn user_orgs(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<Vec<UserOrg>>, UserListsError> {
        let orgs = services.users.orgs_of(&auth.0, &id.0).await?;
        Ok(Json(orgs.iter().map(UserOrg::from).collect()))
    }

    /// A user's teams in the caller's current org: always empty (tollgate has no teams).
    /// Needs `users:read` on the user.
    #[oai(
        path = "/api/users/:id/teams",
        method = "get",
        operation_id = "getUserTeams"
    )]
    async fn user_teams(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
    ) -> Result<Json<Vec<UserTeam>>, UserListsError> {
        services.users.check_user_readable(&auth.0, &id.0).await?;
        Ok(Json(Vec::new()))
    }

    /// Switch a user's current org. Needs `users:write` on the user. The body, if any, is
    /// ignored.
    #[oai(
        path = "/api/users/:id/using/:orgId",
        method = "post",
        operation_id = "updateUserActiveOrg"
    )]
    async fn update_user_active_org(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The user's numeric id or uid.
        id: Path<WireId>,
        /// The org's id.
        #[oai(name = "orgId")]
        org_id: Path<WireId>,
    ) -> Result<Json<MessageBody>, UpdateUserActiveOrgError> {
        services.users.switch_org(&auth.0, &id.0, &org_id.0).await?;
        Ok(message("Active organization changed"))
    }

    /// The signed-in user.
    #[oai(path = "/api/user", method = "get", operation_id = "getSignedInUser")]
    async fn current_user(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<RenderedJson<UserProfile>, UserReadError> {
        let user = match auth.1 {
            Some(user) => user,
            None => services.users.current(&auth.0).await?,
        };
        Ok(SharedProfile {
            user,
            org_id: auth.0.org_id.0,
        }
        .answer()?)
    }
    /// Update the signed-in user's name, email, login and theme. An empty login takes the
    /// email; empty fields otherwise keep their value.
    #[oai(
        path = "/api/user",
        method = "put",
        operation_id = "updateSignedInUser"
    )]
    async fn update(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<UpdateUserForm>,
    ) -> Result<Json<MessageBody>, UpdateSignedInUserError> {
        let f = body.0;
        services
            .users
            .update_own_profile(
                &auth.0,
                OwnProfileUpdate {
                    name: f.name.unwrap_or_default(),
                    email: f.email.unwrap_or_default(),
                    login: f.login.unwrap_or_default(),
                    theme: f.theme.unwrap_or_default(),
                },
            )
            .await?;
        Ok(message("User updated"))
    }

    /// Change the signed-in user's password; needs the old one. Ends the user's other
    /// sessions.
    #[oai(
        path = "/api/user/password",
        method = "put",
        operation_id = "changeUserPassword"
    )]
    async fn change_password(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<ChangeUserPasswordForm>,
    ) -> Result<Json<MessageBody>, ChangeUserPasswordError> {
        let f = body.0;
        services
            .users
            .change_own_password(
                &auth.0,
                f.old_password.as_deref().unwrap_or_default(),
                f.new_password.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok(message("User password changed"))
    }

    /// The signed-in user's orgs with their role in each, sorted by name.
    #[oai(
        path = "/api/user/orgs",
        method = "get",
        operation_id = "getSignedInUserOrgList"
    )]
    async fn orgs(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Vec<UserOrg>>, SignedInListError> {
        let orgs = services.users.own_orgs(&auth.0).await?;
        Ok(Json(orgs.iter().map(UserOrg::from).collect()))
    }

    /// The signed-in user's teams: always empty (tollgate has no teams).
    #[oai(
        path = "/api/user/teams",
        method = "get",
        operation_id = "getSignedInUserTeamList"
    )]
    async fn teams(&self, auth: Auth) -> Result<Json<Vec<UserTeam>>, SignedInListError> {
        signed_in_user(&auth.0)?;
        Ok(Json(Vec::new()))
    }

    /// Switch the signed-in user's current org. The body, if any, is ignored.
    #[oai(
        path = "/api/user/using/:id",
        method = "post",
        operation_id = "userSetUsingOrg"
    )]
    async fn set_using_org(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        /// The org's id.
        id: Path<WireId>,
    ) -> Result<Json<MessageBody>, SetUsingOrgError> {
        services.users.switch_own_org(&auth.0, &id.0).await?;
        Ok(message("Active organization changed"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use poem_openapi::types::ToJSON;

    #[test]
    fn avatars_are_a_digest_of_the_folded_email_made_once() {
        let expected = format!(
            "/avatar/{}",
            random::hex(&sha256(b"someone@example.com")[..16])
        );
        for email in [
            "someone@example.com",
            " Someone@Example.COM ",
            "someone@example.com",
        ] {
            assert_eq!(avatar(email), expected, "{email}");
        }
        assert_ne!(avatar("other@example.com"), expected);
    }

    /// The body `answer` gives for `user` naming `org`, as a JSON value, and its address.
    fn answered(user: &Arc<UserRecord>, org: u64) -> (serde_json::Value, *const u8) {
        let body = KEPT_PROFILES
            .with_borrow_mut(|kept| {
                kept.body(SharedProfile {
                    user: user.clone(),
                    org_id: org,
                })
            })
            .unwrap();
        (serde_json::from_slice(&body).unwrap(), body.as_ptr())
    }

    #[test]
    fn a_kept_profile_answers_only_while_the_row_is_the_same() {
        let mut row = UserRecord::new("kept", "kept@example.org", "Kept", "u-kept".into(), 7);
        row.id = 41;
        row.org_id = 1;
        let written = |u: &UserRecord, org: u64| {
            let mut p = UserProfile::from(u);
            p.org_id = org as i64;
            p.to_json().unwrap()
        };
        let first = Arc::new(row.clone());
        let (body, at) = answered(&first, 1);
        assert_eq!(body, written(&row, 1));
        // The same row, shared or decoded again: the kept bytes.
        assert_eq!(answered(&first, 1).1, at);
        assert_eq!(answered(&Arc::new(row.clone()), 1).1, at);
        // Another org named: its own body.
        let (other_org, _) = answered(&first, 2);
        assert_eq!(other_org, written(&row, 2));
        // Any change to the row is answered, never the kept body.
        for change in [
            |u: &mut UserRecord| u.name = "Renamed".into(),
            |u: &mut UserRecord| u.email = "new@example.org".into(),
            |u: &mut UserRecord| u.is_admin = true,
            |u: &mut UserRecord| u.updated = 99,
            |u: &mut UserRecord| u.auth_module = "ldap".into(),
        ] {
            let mut changed = row.clone();
            change(&mut changed);
            let (body, _) = answered(&Arc::new(changed.clone()), 1);
            assert_eq!(body, written(&changed, 1));
            assert_eq!(answered(&first, 1).0, written(&row, 1));
        }
        // The users keys stand for share id 0: each login keeps its own body.
        let key = |login: &str| {
            let mut u = UserRecord::new(login, "", login, String::new(), 0);
            u.is_service_account = true;
            u.org_id = 1;
            u
        };
        let (a, b) = (key("api-key:a"), key("api-key:b"));
        let (body_a, at_a) = answered(&Arc::new(a.clone()), 1);
        let (body_b, at_b) = answered(&Arc::new(b.clone()), 1);
        assert_eq!(body_a["login"], "api-key:a");
        assert_eq!(body_b["login"], "api-key:b");
        assert_eq!(answered(&Arc::new(a), 1).1, at_a);
        assert_eq!(answered(&Arc::new(b), 1).1, at_b);
        // Past the bound the map starts again, and still answers each row right.
        for id in 100..100 + MAX_KEPT_PROFILES as u64 + 10 {
            let mut u = row.clone();
            u.id = id;
            let (body, _) = answered(&Arc::new(u), 1);
            assert_eq!(body["id"], id);
        }
        assert!(KEPT_PROFILES.with_borrow(|kept| kept.bodies.len()) <= MAX_KEPT_PROFILES);
        assert_eq!(answered(&first, 1).0, written(&row, 1));
    }

    // The profile as the document's own type, made field by field: the oracle the shared
    // row's profile is checked against.
    impl From<&UserRecord> for UserProfile {
        fn from(u: &UserRecord) -> Self {
            let text = [&u.uid, &u.email, &u.name, &u.login, &u.theme].map(String::clone);
            Self::of(u, text)
        }
    }

    /// The same, giving the row's text up instead of copying it.
    impl From<UserRecord> for UserProfile {
        fn from(mut u: UserRecord) -> Self {
            let text = [
                &mut u.uid,
                &mut u.email,
                &mut u.name,
                &mut u.login,
                &mut u.theme,
            ]
            .map(std::mem::take);
            Self::of(&u, text)
        }
    }

    impl UserProfile {
        /// `text`: the row's uid, email, name, login and theme.
        fn of(u: &UserRecord, text: [String; 5]) -> Self {
            let [uid, email, name, login, theme] = text;
            Self {
                id: u.id as i64,
                avatar_url: avatar(&email),
                uid,
                email,
                name,
                login,
                theme,
                org_id: u.org_id as i64,
                is_grafana_admin: u.is_admin,
                is_disabled: u.is_disabled,
                is_external: !u.auth_module.is_empty(),
                is_externally_synced: !u.auth_module.is_empty(),
                is_grafana_admin_externally_synced: false,
                auth_labels: labels(u),
                updated_at: rfc3339(u.updated),
                created_at: rfc3339(u.created),
                is_provisioned: false,
            }
        }
    }

    #[test]
    fn fast_json_matches_poem_openapi_json() {
        let u = UserRecord {
            id: 7,
            uid: "abc".into(),
            login: "l".into(),
            email: "e@x".into(),
            name: "n".into(),
            is_admin: true,
            is_disabled: false,
            is_service_account: false,
            password: None,
            org_id: 1,
            memberships: vec![],
            theme: String::new(),
            auth_module: "ldap".into(),
            created: 1,
            updated: 2,
            last_seen_at: Some(3),
        };
        let p = UserProfile::from(&u);
        assert_eq!(serde_json::to_value(&p).unwrap(), p.to_json().unwrap());
        // The owned conversion answers exactly as the borrowing one.
        assert_eq!(
            serde_json::to_value(UserProfile::from(u.clone())).unwrap(),
            serde_json::to_value(&p).unwrap()
        );
        // The shared row's profile writes the same document, for a directory user and a
        // local one, with its avatar made on the spot and then remembered; the fast writer
        // and serde_json agree on it.
        for user in [
            u.clone(),
            UserRecord {
                auth_module: String::new(),
                email: "first-time@example.org".into(),
                theme: "dark".into(),
                ..u.clone()
            },
        ] {
            let expected = UserProfile::from(&user).to_json().unwrap();
            for _ in 0..2 {
                let shared = SharedProfile {
                    user: Arc::new(user.clone()),
                    org_id: user.org_id,
                };
                assert_eq!(serde_json::to_value(&shared).unwrap(), expected);
                let mut fast = Vec::new();
                crate::api::json::write(&mut fast, &shared).unwrap();
                assert_eq!(
                    serde_json::from_slice::<serde_json::Value>(&fast).unwrap(),
                    expected
                );
            }
        }
        let h = UserSearchHit::from_record(&u, 100);
        assert_eq!(serde_json::to_value(&h).unwrap(), h.to_json().unwrap());
        let page = UserSearchPage {
            total_count: 1,
            users: vec![h],
            page: 1,
            per_page: 2,
        };
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            page.to_json().unwrap()
        );
    }
}
