//! The rules of users: creation (Grafana's `auto_assign_org` rules), passwords, the Grafana
//! Admin flag, disable/enable, delete, and reads. Each operation checks the caller's
//! permission first, then applies the rules, then waits until the write is on disk.

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::password::check_policy;
use crate::crypto::{random, PasswordHash};
use crate::domain::{user_scope, Action, Email, Login, OrgId, OrgRole, Principal, UserId};
use crate::error::AppError;
use crate::service::auth::CredentialCache;
use crate::store::{now, Durability, NewMembership, StoreError, UserPage, UserRecord, UserStore};

pub const USER_NOT_FOUND: &str = "User not found";

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

/// Hooks other services register to hear about user changes (sessions revoke on them).
pub trait UserEvents: Send + Sync {
    /// The user's credentials changed, or the user was disabled or deleted: end sessions.
    fn credentials_revoked(&self, user: UserId) -> Result<(), AppError>;
}

/// Resolves the `:id` of the admin routes: a numeric id or a user uid (Grafana's newest
/// `userUIDResolver`); anything unresolvable, service accounts included, is 404.
pub fn resolve_user(store: &dyn UserStore, id_or_uid: &str) -> Result<UserRecord, AppError> {
    let found = match id_or_uid.parse::<u64>() {
        Ok(id) => store.user(UserId(id))?,
        Err(_) => store.user_by_uid(id_or_uid)?,
    };
    found
        .filter(|u| !u.is_service_account)
        .ok_or_else(|| AppError::not_found(USER_NOT_FOUND))
}

pub struct UserService {
    store: Arc<dyn UserStore>,
    durability: Durability,
    settings: Arc<Settings>,
    credentials: Arc<CredentialCache>,
    events: parking_lot::RwLock<Vec<Arc<dyn UserEvents>>>,
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
        durability: Durability,
        settings: Arc<Settings>,
        credentials: Arc<CredentialCache>,
    ) -> Self {
        Self {
            store,
            durability,
            settings,
            credentials,
            events: parking_lot::RwLock::new(Vec::new()),
        }
    }

    pub fn subscribe(&self, listener: Arc<dyn UserEvents>) {
        self.events.write().push(listener);
    }

    fn revoke_credentials(&self, user: UserId) -> Result<(), AppError> {
        self.credentials.forget_user(user);
        let listeners = self.events.read().clone();
        for l in listeners {
            l.credentials_revoked(user)?;
        }
        Ok(())
    }

    async fn durable(&self) -> Result<(), AppError> {
        self.durability
            .wait()
            .await
            .map_err(|e| AppError::internal("Internal Server Error", e))
    }

    pub fn resolve(&self, id_or_uid: &str) -> Result<UserRecord, AppError> {
        resolve_user(self.store.as_ref(), id_or_uid)
    }

    /// `POST /api/admin/users`.
    pub async fn create(&self, p: &Principal, form: NewUser) -> Result<UserRecord, AppError> {
        p.require(Action::UsersCreate, "")?;
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
                    if self.store.org(OrgId(id))?.is_none() {
                        return Err(AppError::bad_request("organization not found"));
                    }
                    NewMembership::Existing(OrgId(id), role)
                }
                None => {
                    let id = OrgId(s.auto_assign_org_id);
                    if id == OrgId(1) {
                        self.store.ensure_org(id, "Main Org.")?;
                    }
                    NewMembership::Existing(id, role)
                }
            }
        } else {
            NewMembership::NewOrg(email.as_str().to_string(), OrgRole::Admin)
        };
        let hash = hash_password(&form.password, s.password_hash_iterations).await?;
        let ts = now();
        let record = UserRecord {
            id: 0,
            uid: random::short_uid(),
            name: form.name.trim().to_string(),
            login: login.into_inner(),
            email: email.into_inner(),
            is_admin: grafana_admin,
            is_disabled: false,
            is_service_account: false,
            password: Some(hash),
            org_id: 0,
            memberships: vec![],
            theme: String::new(),
            auth_module: String::new(),
            created: ts,
            updated: ts,
            // Grafana: "never seen" is ten years ago.
            last_seen_at: ts - 10 * 365 * 86_400,
        };
        let created = self
            .store
            .create_user(record, membership)
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
        self.durable().await?;
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
        let mut user = self.resolve_checked(p, id_or_uid, Action::UsersPasswordUpdate)?;
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
        user.password =
            Some(hash_password(password, self.settings.password_hash_iterations).await?);
        user.updated = now();
        self.store
            .update_user(&user)
            .map_err(AppError::store("Failed to update user password"))?;
        self.revoke_credentials(user.user_id())?;
        self.durable().await
    }

    /// `PUT /api/admin/users/:id/permissions`: the Grafana Admin flag.
    pub async fn set_grafana_admin(
        &self,
        p: &Principal,
        id_or_uid: &str,
        admin: bool,
    ) -> Result<(), AppError> {
        let user = self.resolve_checked(p, id_or_uid, Action::UsersPermissionsUpdate)?;
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
            .set_grafana_admin(user.user_id(), admin)
            .map_err(|e| match e {
                StoreError::LastAdmin => AppError::bad_request("cannot remove last grafana admin"),
                StoreError::NotFound => AppError::not_found(USER_NOT_FOUND),
                other => AppError::internal("Failed to update user permissions", other),
            })?;
        self.durable().await
    }

    /// `DELETE /api/admin/users/:id`. Refuses to delete the last Grafana Admin, which
    /// would lock every operator out of the admin API (Grafana allows it).
    pub async fn delete(&self, p: &Principal, id_or_uid: &str) -> Result<(), AppError> {
        let user = self.resolve_checked(p, id_or_uid, Action::UsersDelete)?;
        self.store
            .delete_user(user.user_id())
            .map_err(|e| match e {
                StoreError::LastAdmin => AppError::bad_request("cannot remove last grafana admin"),
                other => AppError::internal("Failed to delete user", other),
            })?;
        self.revoke_credentials(user.user_id())?;
        self.durable().await?;
        tracing::info!(user = user.id, login = %user.login, "user deleted");
        Ok(())
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
        let mut user = self.resolve_checked(p, id_or_uid, action)?;
        if !user.auth_module.is_empty() {
            let verb = if disabled { "disable" } else { "enable" };
            return Err(AppError::internal(
                format!("Could not {verb} external user"),
                "external users are managed by their provider",
            ));
        }
        user.is_disabled = disabled;
        user.updated = now();
        self.store
            .update_user(&user)
            .map_err(AppError::store("Failed to update user"))?;
        if disabled {
            self.revoke_credentials(user.user_id())?;
        }
        self.durable().await
    }

    /// Changes a user's profile (`PUT /api/users/:id`).
    pub async fn update_profile(
        &self,
        p: &Principal,
        id_or_uid: &str,
        update: ProfileUpdate,
    ) -> Result<(), AppError> {
        let mut user = self.resolve_checked(p, id_or_uid, Action::UsersWrite)?;
        if let Some(login) = update.login.filter(|l| !l.trim().is_empty()) {
            user.login = Login::parse(&login)
                .map_err(AppError::BadRequest)?
                .into_inner();
        }
        if let Some(email) = update.email.filter(|e| !e.trim().is_empty()) {
            user.email = Email::parse(&email)
                .map_err(AppError::BadRequest)?
                .into_inner();
        }
        if let Some(name) = update.name {
            user.name = name.trim().to_string();
        }
        if let Some(theme) = update.theme {
            user.theme = theme;
        }
        user.updated = now();
        self.store.update_user(&user).map_err(|e| match e {
            StoreError::Conflict(_) => AppError::Conflict("Login or email already taken".into()),
            other => AppError::internal("Failed to update user", other),
        })?;
        self.durable().await
    }

    fn resolve_checked(
        &self,
        p: &Principal,
        id_or_uid: &str,
        action: Action,
    ) -> Result<UserRecord, AppError> {
        // Check the action before revealing whether the user exists.
        p.require(action, "")?;
        let user = self.resolve(id_or_uid)?;
        p.require(action, &user_scope(user.user_id()))?;
        Ok(user)
    }

    /// `GET /api/users/:id`.
    pub fn get(&self, p: &Principal, id_or_uid: &str) -> Result<UserRecord, AppError> {
        self.resolve_checked(p, id_or_uid, Action::UsersRead)
    }

    /// `GET /api/users/lookup?loginOrEmail=`.
    pub fn lookup(&self, p: &Principal, login_or_email: &str) -> Result<UserRecord, AppError> {
        p.require(Action::UsersRead, "global.users:*")?;
        let found = match self.store.user_by_login(login_or_email)? {
            Some(u) => Some(u),
            None => self.store.user_by_email(login_or_email)?,
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
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.search_users(&query, offset, per_page))
            .await
            .map_err(|e| AppError::internal("Failed to fetch users", e))?
            .map_err(AppError::store("Failed to fetch users"))
    }

    /// The caller's own row (`GET /api/user`). An API key, which has no user, is shown as
    /// a synthetic user of its org (id 0), as newer Grafana shows the service account a
    /// key was migrated to.
    pub fn current(&self, p: &Principal) -> Result<UserRecord, AppError> {
        let Some(id) = p.user_id else {
            return Ok(UserRecord {
                id: 0,
                uid: String::new(),
                login: p.login.clone(),
                email: String::new(),
                name: p.login.clone(),
                is_admin: false,
                is_disabled: false,
                is_service_account: true,
                password: None,
                org_id: p.org_id.0,
                memberships: vec![],
                theme: String::new(),
                auth_module: String::new(),
                created: 0,
                updated: 0,
                last_seen_at: 0,
            });
        };
        self.store
            .user(id)?
            .ok_or_else(|| AppError::not_found(USER_NOT_FOUND))
    }
}
