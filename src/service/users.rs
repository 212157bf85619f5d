//! The rules of users: creation (Grafana's `auto_assign_org` rules), passwords, the Grafana
//! Admin flag, disable/enable, delete, and reads; and the signed-in user's own profile,
//! password, org list and current org (`/api/user/*`). Each operation checks the caller's
//! permission first, then applies the rules, then makes one narrow store change (durable
//! when it returns). A credential change ends the user's sessions and drops cached Basic
//! credentials, by explicit calls.

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::password::check_policy;
use crate::crypto::{random, PasswordHash};
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{user_scope, AuthKind, Email, Login, OrgId, OrgRole, Principal, UserId};
use crate::error::AppError;
use crate::service::auth::LoginGuard;
use crate::service::credentials::CredentialCache;
use crate::service::quotas::QuotaService;
use crate::store::{
    NewMembership, ProfileChange, SessionStore, StoreError, UserPage, UserRecord, UserStore,
};

pub const USER_NOT_FOUND: &str = "User not found";
/// Disabling the last enabled Grafana Admin would leave nobody to administer the server.
pub const LAST_ENABLED_ADMIN: &str = "cannot disable the last enabled grafana admin";
/// The answer to API keys and service-account tokens on `/api/user/*` (Grafana 10's 403;
/// newer Grafana answers 304, which carries no body and breaks clients).
pub const ONLY_FOR_USERS: &str = "Endpoint only available for users";
/// Switching to an org the user is not a member of (401, as Grafana).
pub const NOT_A_VALID_ORG: &str = "Not a valid organization";
/// Refusal to change a directory (LDAP) user's profile or password (Grafana newest).
pub const EXTERNAL_USER: &str = "Cannot update external User";
/// A profile update whose login or email another user holds (in any case): Grafana's
/// `case_insensitive_login` conflict, for `PUT /api/user` and `PUT /api/users/:id` alike.
const LOGIN_CONFLICT: &str = "Update would result in user login conflict";
/// A profile update with an e-mail address that does not parse (Grafana's message).
const INVALID_EMAIL: &str = "Invalid email address";

/// The signed-in user's changes to their own profile (`PUT /api/user`, Grafana's
/// `UpdateUserCommand`): an empty field keeps its value, except that an empty login takes
/// the email.
#[derive(Debug, Clone, Default)]
pub struct OwnProfileUpdate {
    pub name: String,
    pub email: String,
    pub login: String,
    pub theme: String,
}

/// One org of a user with the user's role in it (Grafana's `UserOrgDTO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOrg {
    pub org_id: OrgId,
    pub name: String,
    pub role: OrgRole,
}

/// The caller as a user: a user signed in with a password or a session. API keys and
/// service-account tokens are refused (403 "Endpoint only available for users").
pub fn signed_in_user(p: &Principal) -> Result<UserId, AppError> {
    match (p.kind, p.user_id) {
        (AuthKind::Basic | AuthKind::Session, Some(id)) => Ok(id),
        _ => Err(AppError::Forbidden(ONLY_FOR_USERS.into())),
    }
}

/// A path id as Grafana's `strconv.ParseInt(.., 10, 64)` reads it; else 400 `message`.
fn parse_path_id(raw: &str, message: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .map_err(|_| AppError::bad_request(message))
}

/// What a caller asks to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub login: String,
    pub password: String,
    pub org_id: Option<u64>,
}

/// Changes to a user's profile; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub login: Option<String>,
    pub theme: Option<String>,
}

/// A path id that is a number as Grafana's `strconv.ParseInt(.., 10, 64)` reads it and
/// can name a user (past int64 is not a number; a negative number names no one).
fn numeric_id(raw: &str) -> Option<UserId> {
    raw.parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .map(UserId)
}

/// Resolves the `:id` of the admin routes: a numeric id or a user uid (Grafana's newest
/// `userUIDResolver`); anything unresolvable, service accounts included, is 404.
pub async fn resolve_user(store: &dyn UserStore, id_or_uid: &str) -> Result<UserRecord, AppError> {
    let found = match numeric_id(id_or_uid) {
        Some(id) => store.user(id).await?.map(Arc::unwrap_or_clone),
        None => store.user_by_uid(id_or_uid).await?,
    };
    found
        .filter(|u| !u.is_service_account)
        .ok_or_else(|| AppError::not_found(USER_NOT_FOUND))
}

/// Checks the action before revealing whether the user exists, then on the user's scope.
pub async fn resolve_checked(
    store: &dyn UserStore,
    p: &Principal,
    id_or_uid: &str,
    action: Action,
) -> Result<UserRecord, AppError> {
    p.require(action, "")?;
    let user = resolve_user(store, id_or_uid).await?;
    p.require(action, &user_scope(user.user_id()))?;
    Ok(user)
}

pub struct UserService {
    store: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    settings: Arc<Settings>,
    credentials: Arc<CredentialCache>,
    /// Brute-force counts, forgotten for a user whose password an administrator sets.
    login_guard: Arc<LoginGuard>,
    quotas: Arc<QuotaService>,
    clock: Arc<dyn Clock>,
}

async fn hash_password(password: &str, iterations: u32) -> Result<PasswordHash, AppError> {
    let pw = zeroize::Zeroizing::new(password.to_string());
    tokio::task::spawn_blocking(move || PasswordHash::new(&pw, iterations))
        .await
        .map_err(|e| AppError::internal("Could not encode password", e))
}

impl UserService {
    pub fn new(
        store: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        settings: Arc<Settings>,
        credentials: Arc<CredentialCache>,
        login_guard: Arc<LoginGuard>,
        quotas: Arc<QuotaService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            sessions,
            settings,
            credentials,
            login_guard,
            quotas,
            clock,
        }
    }

    /// After a password change, disable or delete: cached Basic credentials and every
    /// session of the user stop working.
    async fn revoke_credentials(&self, user: UserId) -> Result<(), AppError> {
        self.credentials.forget_user(user);
        self.sessions
            .revoke_user_sessions(user, self.clock.now_ms())
            .await?;
        Ok(())
    }

    pub async fn resolve(&self, id_or_uid: &str) -> Result<UserRecord, AppError> {
        resolve_user(self.store.as_ref(), id_or_uid).await
    }

    /// `POST /api/admin/users`.
    pub async fn create(&self, p: &Principal, form: NewUser) -> Result<UserRecord, AppError> {
        p.require(Action::UsersCreate, "")?;
        self.quotas.check(p, "user").await?;
        if form.password.chars().count() >= 4 {
            check_policy(&form.password, self.settings.strong_password_policy)
                .map_err(AppError::bad_request)?;
        }
        self.create_unchecked(form, false).await
    }

    /// Creation without a permission check or password policy: first-start bootstrap, whose
    /// password the operator chose in the config (or tollgate generated).
    pub async fn create_unchecked(
        &self,
        form: NewUser,
        grafana_admin: bool,
    ) -> Result<UserRecord, AppError> {
        let raw_login = form.login.trim();
        let raw_email = form.email.trim();
        let login_text = if raw_login.is_empty() {
            raw_email
        } else {
            raw_login
        };
        if login_text.is_empty() {
            return Err(AppError::bad_request(
                "Validation error, need specify either username or email",
            ));
        }
        let login = Login::parse(login_text).map_err(AppError::BadRequest)?;
        let email = if raw_email.is_empty() {
            Email::from_login(&login)
        } else {
            Email::parse(raw_email).map_err(AppError::BadRequest)?
        };
        if form.password.chars().count() < 4 {
            return Err(AppError::bad_request("Password is missing or too short"));
        }
        let s = &self.settings;
        let membership = if s.auto_assign_org {
            let role = if grafana_admin {
                OrgRole::Admin
            } else {
                s.auto_assign_org_role
            };
            match form.org_id.filter(|id| *id != 0) {
                Some(id) => {
                    if self.store.org(OrgId(id)).await?.is_none() {
                        return Err(AppError::bad_request("organization not found"));
                    }
                    NewMembership::Existing(OrgId(id), role)
                }
                None => {
                    let id = OrgId(s.auto_assign_org_id);
                    if id == OrgId(1) {
                        self.store
                            .ensure_org(id, "Main Org.", self.clock.now())
                            .await?;
                    }
                    NewMembership::Existing(id, role)
                }
            }
        } else {
            NewMembership::NewOrg(email.as_str().to_string(), OrgRole::Admin)
        };
        let hash = hash_password(&form.password, s.password_hash_iterations).await?;
        let mut record = UserRecord::new(
            login.as_str(),
            email.as_str(),
            form.name.trim(),
            random::short_uid(),
            self.clock.now(),
        );
        record.is_admin = grafana_admin;
        record.password = Some(hash);
        let created = self
            .store
            .create_user(record, membership)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AppError::PreconditionFailed(format!(
                    "User with email '{}' or username '{}' already exists",
                    form.email, form.login
                )),
                StoreError::OrgNotFound => AppError::internal(
                    "failed to create user",
                    format!("organization ID {} does not exist", s.auto_assign_org_id),
                ),
                other => AppError::internal("failed to create user", other),
            })?;
        tracing::info!(user = created.id, login = %created.login, "user created");
        Ok(created)
    }

    /// `PUT /api/admin/users/:id/password`.
    pub async fn set_password(
        &self,
        p: &Principal,
        id_or_uid: &str,
        password: &str,
    ) -> Result<(), AppError> {
        let user = self
            .resolve_checked(p, id_or_uid, Action::UsersPasswordUpdate)
            .await?;
        if self.settings.disable_login_form {
            return Err(AppError::Forbidden(
                "Not allowed to reset password when login form is disabled".into(),
            ));
        }
        if !user.auth_module.is_empty() {
            return Err(AppError::Forbidden("Cannot update external User".into()));
        }
        check_policy(password, self.settings.strong_password_policy)
            .map_err(AppError::bad_request)?;
        let hash = hash_password(password, self.settings.password_hash_iterations).await?;
        self.store
            .set_password(user.user_id(), hash, self.clock.now())
            .await
            .map_err(AppError::store("Failed to update user password"))?;
        // Grafana resets the login's attempts: the user signs in with the new password at
        // once, even from an address their failures had blocked.
        self.login_guard.reset_user(user.id);
        self.revoke_credentials(user.user_id()).await
    }

    /// `PUT /api/admin/users/:id/permissions`: the Grafana Admin flag.
    pub async fn set_grafana_admin(
        &self,
        p: &Principal,
        id_or_uid: &str,
        admin: bool,
    ) -> Result<(), AppError> {
        let user = self
            .resolve_checked(p, id_or_uid, Action::UsersPermissionsUpdate)
            .await?;
        // Granting needs a Grafana Admin too (Grafana newest): nobody grants server-admin
        // powers they do not hold. Revoking needs only the permission.
        if admin {
            p.require_grafana_admin()?;
        }
        if !user.auth_module.is_empty() {
            return Err(AppError::Forbidden(
                "Cannot change Grafana Admin role for externally synced user".into(),
            ));
        }
        self.store
            .set_grafana_admin(user.user_id(), admin, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::LastAdmin => AppError::bad_request("cannot remove last grafana admin"),
                StoreError::NotFound => AppError::not_found(USER_NOT_FOUND),
                other => AppError::internal("Failed to update user permissions", other),
            })?;
        Ok(())
    }

    /// `DELETE /api/admin/users/:id`. Refuses to delete the last enabled Grafana Admin,
    /// which would lock every operator out of the admin API (Grafana allows it).
    pub async fn delete(&self, p: &Principal, id_or_uid: &str) -> Result<(), AppError> {
        let user = self
            .resolve_checked(p, id_or_uid, Action::UsersDelete)
            .await?;
        self.store
            .delete_user(user.user_id())
            .await
            .map_err(|e| match e {
                StoreError::LastAdmin => AppError::bad_request("cannot remove last grafana admin"),
                other => AppError::internal("Failed to delete user", other),
            })?;
        self.revoke_credentials(user.user_id()).await?;
        tracing::info!(user = user.id, login = %user.login, "user deleted");
        Ok(())
    }

    /// Deletes a user that removing it from its current org left without any org
    /// (Grafana's "delete orphaned user"; the caller's permission was the removal's). The
    /// last Grafana Admin is kept: false then.
    pub async fn delete_orphaned(&self, id: UserId) -> Result<bool, AppError> {
        match self.store.delete_user(id).await {
            Ok(_) => {}
            Err(StoreError::LastAdmin) => return Ok(false),
            Err(e) => return Err(AppError::internal("Failed to delete user", e)),
        }
        self.revoke_credentials(id).await?;
        tracing::info!(user = id.0, "user without any org deleted");
        Ok(true)
    }

    /// `POST /api/admin/users/:id/disable` and `/enable`.
    pub async fn set_disabled(
        &self,
        p: &Principal,
        id_or_uid: &str,
        disabled: bool,
    ) -> Result<(), AppError> {
        let action = if disabled {
            Action::UsersDisable
        } else {
            Action::UsersEnable
        };
        let user = self.resolve_checked(p, id_or_uid, action).await?;
        if !user.auth_module.is_empty() {
            let verb = if disabled { "disable" } else { "enable" };
            return Err(AppError::internal(
                format!("Could not {verb} external user"),
                "external users are managed by their provider",
            ));
        }
        self.store
            .set_disabled(user.user_id(), disabled, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::LastAdmin => AppError::bad_request(LAST_ENABLED_ADMIN),
                other => AppError::store("Failed to update user")(other),
            })?;
        if disabled {
            self.revoke_credentials(user.user_id()).await?;
        }
        Ok(())
    }

    /// Changes a user's profile (`PUT /api/users/:id`).
    pub async fn update_profile(
        &self,
        p: &Principal,
        id_or_uid: &str,
        update: ProfileUpdate,
    ) -> Result<(), AppError> {
        let user = self
            .resolve_checked(p, id_or_uid, Action::UsersWrite)
            .await?;
        let mut change = ProfileChange::default();
        if let Some(login) = update.login.filter(|l| !l.trim().is_empty()) {
            change.login = Some(
                Login::parse(&login)
                    .map_err(AppError::BadRequest)?
                    .into_inner(),
            );
        }
        if let Some(email) = update.email.filter(|e| !e.trim().is_empty()) {
            change.email = Some(
                Email::parse(&email)
                    .map_err(|_| AppError::bad_request(INVALID_EMAIL))?
                    .into_inner(),
            );
        }
        change.name = update.name.map(|n| n.trim().to_string());
        change.theme = update.theme;
        self.store
            .update_profile(user.user_id(), &change, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AppError::Conflict(LOGIN_CONFLICT.into()),
                other => AppError::internal("Failed to update user", other),
            })?;
        // As for one's own profile: Basic credentials cached under the old login or email
        // stop working at once.
        self.credentials.forget_user(user.user_id());
        Ok(())
    }

    async fn resolve_checked(
        &self,
        p: &Principal,
        id_or_uid: &str,
        action: Action,
    ) -> Result<UserRecord, AppError> {
        resolve_checked(self.store.as_ref(), p, id_or_uid, action).await
    }

    /// `GET /api/users/:id`. `caller`: the caller's own row, as authentication read it in
    /// this request; when `:id` names the caller it is the answer, with the same checks,
    /// instead of a second read of the same row.
    pub async fn get(
        &self,
        p: &Principal,
        id_or_uid: &str,
        caller: Option<Arc<UserRecord>>,
    ) -> Result<Arc<UserRecord>, AppError> {
        let named = |u: &UserRecord| match numeric_id(id_or_uid) {
            Some(id) => u.user_id() == id,
            None => u.uid == id_or_uid,
        };
        match caller.filter(|u| named(u) && !u.is_service_account) {
            Some(user) => {
                p.require(Action::UsersRead, "")?;
                p.require(Action::UsersRead, &user_scope(user.user_id()))?;
                Ok(user)
            }
            None => Ok(Arc::new(
                self.resolve_checked(p, id_or_uid, Action::UsersRead)
                    .await?,
            )),
        }
    }

    /// `GET /api/users/lookup?loginOrEmail=`.
    pub async fn lookup(
        &self,
        p: &Principal,
        login_or_email: &str,
    ) -> Result<UserRecord, AppError> {
        p.require(Action::UsersRead, "global.users:*")?;
        let found = match self.store.user_by_login(login_or_email).await? {
            Some(u) => Some(u),
            None => self.store.user_by_email(login_or_email).await?,
        };
        found
            .filter(|u| !u.is_service_account)
            .ok_or_else(|| AppError::not_found(USER_NOT_FOUND))
    }

    /// `GET /api/users` and `/api/users/search`: pages count from 1.
    pub async fn search(
        &self,
        p: &Principal,
        query: String,
        page: u64,
        per_page: u64,
    ) -> Result<UserPage, AppError> {
        p.require(Action::UsersRead, "global.users:*")?;
        let page = page.max(1);
        let per_page = per_page.clamp(1, 5000);
        let offset = (page - 1).saturating_mul(per_page);
        self.store
            .search_users(&query, offset, per_page, false)
            .await
            .map_err(AppError::store("Failed to fetch users"))
    }

    /// The permission check of a user-scoped route (`/api/users/:id/orgs|teams`,
    /// `/api/users/:id/using/:orgId`): the action at all, then on the user. A numeric id is
    /// taken as it is (an unknown one then reads as a user with no orgs, as Grafana's
    /// plain queries answer); a uid must name a user (404 otherwise).
    async fn user_id_checked(
        &self,
        p: &Principal,
        id_or_uid: &str,
        action: Action,
    ) -> Result<UserId, AppError> {
        p.require(action, "")?;
        let id = match numeric_id(id_or_uid) {
            Some(id) => id,
            None => resolve_user(self.store.as_ref(), id_or_uid)
                .await?
                .user_id(),
        };
        p.require(action, &user_scope(id))?;
        Ok(id)
    }

    /// `GET /api/users/:id/teams`: the check only (needs `users:read` on the user); teams
    /// are not part of tollgate, so every user has none.
    pub async fn check_user_readable(
        &self,
        p: &Principal,
        id_or_uid: &str,
    ) -> Result<UserId, AppError> {
        self.user_id_checked(p, id_or_uid, Action::UsersRead).await
    }

    /// `GET /api/users/:id/orgs`: needs `users:read` on the user.
    pub async fn orgs_of(&self, p: &Principal, id_or_uid: &str) -> Result<Vec<UserOrg>, AppError> {
        let id = self
            .user_id_checked(p, id_or_uid, Action::UsersRead)
            .await?;
        self.user_orgs(id).await
    }

    /// `GET /api/user/orgs`.
    pub async fn own_orgs(&self, p: &Principal) -> Result<Vec<UserOrg>, AppError> {
        let id = signed_in_user(p)?;
        self.user_orgs(id).await
    }

    /// The user's orgs sorted by name, case-insensitively (Grafana's `ByOrgName`); none
    /// for a missing user.
    async fn user_orgs(&self, id: UserId) -> Result<Vec<UserOrg>, AppError> {
        let failed = "Failed to get user organizations";
        let Some(user) = self.store.user(id).await.map_err(AppError::store(failed))? else {
            return Ok(Vec::new());
        };
        let mut orgs = Vec::with_capacity(user.memberships.len());
        for m in &user.memberships {
            let org = OrgId(m.org_id);
            let Some(record) = self.store.org(org).await.map_err(AppError::store(failed))? else {
                continue;
            };
            orgs.push(UserOrg {
                org_id: org,
                name: record.name,
                role: OrgRole::from_byte(m.role).unwrap_or(OrgRole::None),
            });
        }
        orgs.sort_by_cached_key(|o| o.name.to_lowercase());
        Ok(orgs)
    }

    /// `POST /api/user/using/:id`: the caller's current org becomes `org` if they are a
    /// member of it (401 "Not a valid organization" otherwise).
    pub async fn switch_own_org(&self, p: &Principal, org: &str) -> Result<(), AppError> {
        let org = parse_path_id(org, "id is invalid")?;
        let id = signed_in_user(p)?;
        self.switch_org_of(id, org).await
    }

    /// `POST /api/users/:id/using/:orgId`: the same for another user; needs `users:write`
    /// on the user (Grafana's route table).
    pub async fn switch_org(
        &self,
        p: &Principal,
        id_or_uid: &str,
        org: &str,
    ) -> Result<(), AppError> {
        let id = self
            .user_id_checked(p, id_or_uid, Action::UsersWrite)
            .await?;
        let org = parse_path_id(org, "orgId is invalid")?;
        self.switch_org_of(id, org).await
    }

    /// The membership is checked by the store inside the write, so a concurrent removal
    /// from the org cannot leave the user in an org they no longer belong to.
    async fn switch_org_of(&self, user: UserId, org: i64) -> Result<(), AppError> {
        let not_valid = || AppError::Unauthorized(NOT_A_VALID_ORG.into());
        let org = u64::try_from(org).map_err(|_| not_valid())?;
        match self.store.set_current_org(user, OrgId(org)).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotMember | StoreError::NotFound) => Err(not_valid()),
            Err(e) => Err(AppError::store("Failed to change active organization")(e)),
        }
    }

    /// `PUT /api/user`: the caller's own name, email, login and theme. Directory (LDAP)
    /// users are refused (their provider owns the profile). A taken login or email is 409
    /// "Update would result in user login conflict": logins and emails are unique
    /// case-insensitively here, which is Grafana's `case_insensitive_login` conflict.
    pub async fn update_own_profile(
        &self,
        p: &Principal,
        update: OwnProfileUpdate,
    ) -> Result<(), AppError> {
        let id = signed_in_user(p)?;
        let me = self
            .store
            .user(id)
            .await
            .map_err(AppError::store("Failed to validate User"))?;
        if me.is_some_and(|u| !u.auth_module.is_empty()) {
            return Err(AppError::Forbidden(EXTERNAL_USER.into()));
        }
        let email = update.email.trim();
        let login = match update.login.trim() {
            "" => email,
            login => login,
        };
        if login.is_empty() {
            return Err(AppError::errutil_bad_request(
                "user.empty-username-and-email",
                "Need to specify either username or email",
            ));
        }
        let change = ProfileChange {
            login: Some(
                Login::parse(login)
                    .map_err(AppError::BadRequest)?
                    .into_inner(),
            ),
            email: if email.is_empty() {
                None
            } else {
                Some(
                    Email::parse(email)
                        .map_err(|_| AppError::bad_request(INVALID_EMAIL))?
                        .into_inner(),
                )
            },
            name: Some(update.name).filter(|n| !n.is_empty()),
            theme: Some(update.theme).filter(|t| !t.is_empty()),
            auth_module: None,
        };
        self.store
            .update_profile(id, &change, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => AppError::Conflict(LOGIN_CONFLICT.into()),
                other => AppError::store("Failed to update user")(other),
            })?;
        // Cached Basic credentials are keyed by the login or email the caller typed: the
        // old ones must stop working at once.
        self.credentials.forget_user(id);
        Ok(())
    }

    /// `PUT /api/user/password`: needs the old password. Like an admin reset it drops the
    /// cached Basic credentials and ends the user's sessions, except the session this
    /// request came with (the user stays signed in where they changed it).
    pub async fn change_own_password(
        &self,
        p: &Principal,
        old_password: &str,
        new_password: &str,
    ) -> Result<(), AppError> {
        let failed = "Failed to change user password";
        let id = signed_in_user(p)?;
        let me = self
            .store
            .user(id)
            .await
            .map_err(AppError::store(failed))?
            .ok_or_else(|| AppError::internal(failed, "the signed-in user is gone"))?;
        if !me.auth_module.is_empty() {
            return Err(AppError::Forbidden(EXTERNAL_USER.into()));
        }
        let matches = match me.password.clone() {
            Some(hash) => {
                let old = zeroize::Zeroizing::new(old_password.to_string());
                tokio::task::spawn_blocking(move || hash.verify(&old))
                    .await
                    .map_err(|e| AppError::internal(failed, e))?
            }
            None => false,
        };
        // Grafana 11+ answers these three with errutil bodies (10.x: 401 for a wrong old
        // password).
        if !matches {
            return Err(AppError::errutil_bad_request(
                "user.password-missmatch",
                "Invalid old password",
            ));
        }
        check_policy(new_password, self.settings.strong_password_policy).map_err(|msg| {
            let id = if msg == "New password is too short" {
                "password.password-policy-too-short"
            } else {
                "password.password-policy-infringe"
            };
            AppError::errutil_bad_request(id, msg)
        })?;
        let hash = hash_password(new_password, self.settings.password_hash_iterations).await?;
        self.store
            .set_password(id, hash, self.clock.now())
            .await
            .map_err(AppError::store(failed))?;
        self.credentials.forget_user(id);
        // After the write: a sign-in racing with the change either sees the new hash (and
        // is refused) or made its session before this list (and loses it).
        let at = self.clock.now_ms();
        match p.session_id {
            None => {
                self.sessions.revoke_user_sessions(id, at).await?;
            }
            Some(current) => {
                for s in self.sessions.user_sessions(id).await? {
                    if s.id != current {
                        self.sessions.revoke_session(s.id, at).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The caller's own row (`GET /api/user`). An API key, which has no user, is shown as
    /// a synthetic user of its org (id 0), as newer Grafana shows the service account a
    /// key was migrated to ([`stand_in`]).
    pub async fn current(&self, p: &Principal) -> Result<Arc<UserRecord>, AppError> {
        let Some(id) = p.user_id else {
            return Ok(stand_in(&p.login, p.org_id.0));
        };
        self.store
            .user(id)
            .await?
            .ok_or_else(|| AppError::not_found(USER_NOT_FOUND))
    }
}

/// The synthetic user an API key named `login` in org `org_id` is shown as. Made once per
/// thread and key and then shared, so that the profile's kept body (`api::users`) answers
/// it by identity: one map per thread (requests run on the runtime's few workers), bounded
/// and emptied when full.
fn stand_in(login: &str, org_id: u64) -> Arc<UserRecord> {
    thread_local! {
        static MADE: std::cell::RefCell<crate::domain::FastMap<String, Arc<UserRecord>>> =
            std::cell::RefCell::new(crate::domain::FastMap::default());
    }
    const MAX_MADE: usize = 64;
    MADE.with_borrow_mut(|made| {
        if let Some(u) = made.get(login).filter(|u| u.org_id == org_id) {
            return u.clone();
        }
        let mut key = UserRecord::new(login, "", login, String::new(), 0);
        key.is_service_account = true;
        key.org_id = org_id;
        key.last_seen_at = Some(0);
        let key = Arc::new(key);
        if made.len() >= MAX_MADE {
            made.clear();
        }
        made.insert(login.to_string(), key.clone());
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_keys_stand_in_is_made_once_per_key_and_org() {
        let a = stand_in("api-key:a", 1);
        assert!(Arc::ptr_eq(&a, &stand_in("api-key:a", 1)));
        assert_eq!((a.id, a.org_id, a.login.as_str()), (0, 1, "api-key:a"));
        assert_eq!((a.name.as_str(), a.email.as_str()), ("api-key:a", ""));
        assert!(a.is_service_account && a.password.is_none());
        let other_org = stand_in("api-key:a", 2);
        assert_eq!(other_org.org_id, 2);
        let b = stand_in("api-key:b", 1);
        assert_eq!(b.login, "api-key:b");
        assert!(!Arc::ptr_eq(&a, &b));
    }
}
