//! Storage behind narrow traits. [`sled_store::SledStore`] is the only code that names sled;
//! every value goes through [`codec`]; uniqueness indexes are separate trees written in the
//! same transaction as the row; counters (for stats) change in the same transaction as the
//! rows they count, so reading them never scans.

pub mod codec;
pub mod durability;
pub mod sled_store;

use serde::{Deserialize, Serialize};

use crate::crypto::PasswordHash;
use crate::domain::{OrgId, OrgRole, UserId};

pub use durability::Durability;
pub use sled_store::SledStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness index already holds the value (`login` or `email`).
    #[error("{0} already taken")]
    Conflict(&'static str),
    /// The change would leave no Grafana Admin.
    #[error("last grafana admin")]
    LastAdmin,
    #[error("organization not found")]
    OrgNotFound,
    #[error("storage I/O: {0}")]
    Io(String),
    #[error("record codec: {0}")]
    Codec(String),
}

/// A user row. Org memberships live in the row (a user has few) and in the `org_members`
/// index tree (for listing an org's users), written together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: u64,
    pub uid: String,
    pub login: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub is_disabled: bool,
    pub is_service_account: bool,
    pub password: Option<PasswordHash>,
    /// The user's current org.
    pub org_id: u64,
    pub memberships: Vec<Membership>,
    pub theme: String,
    /// "" for local users, "ldap" for users synced from a directory.
    pub auth_module: String,
    pub created: i64,
    pub updated: i64,
    pub last_seen_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub org_id: u64,
    pub role: u8,
}

impl UserRecord {
    pub fn user_id(&self) -> UserId {
        UserId(self.id)
    }

    pub fn role_in(&self, org: OrgId) -> Option<OrgRole> {
        self.memberships
            .iter()
            .find(|m| m.org_id == org.0)
            .and_then(|m| OrgRole::from_byte(m.role))
    }

    /// The highest role over all orgs (stats bucket users by it).
    pub fn highest_role(&self) -> Option<OrgRole> {
        self.memberships
            .iter()
            .filter_map(|m| OrgRole::from_byte(m.role))
            .max()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgRecord {
    pub id: u64,
    pub name: String,
    pub created: i64,
    pub updated: i64,
}

/// Where a new user goes.
#[derive(Debug, Clone)]
pub enum NewMembership {
    Existing(OrgId, OrgRole),
    /// Grafana with `auto_assign_org = false`: a new org named after the user.
    NewOrg(String, OrgRole),
}

/// Counter names maintained by the stores.
pub mod counter {
    pub const USERS: &str = "users";
    pub const GRAFANA_ADMINS: &str = "grafana_admins";
    pub const ORGS: &str = "orgs";
    pub const ROLE_ADMIN: &str = "role.admin";
    pub const ROLE_EDITOR: &str = "role.editor";
    pub const ROLE_VIEWER: &str = "role.viewer";
    pub const ROLE_NONE: &str = "role.none";
    pub const SERVICE_ACCOUNTS: &str = "service_accounts";

    pub fn for_role(role: Option<crate::domain::OrgRole>) -> &'static str {
        use crate::domain::OrgRole;
        match role {
            Some(OrgRole::Admin) => ROLE_ADMIN,
            Some(OrgRole::Editor) => ROLE_EDITOR,
            Some(OrgRole::Viewer) => ROLE_VIEWER,
            Some(OrgRole::None) | None => ROLE_NONE,
        }
    }
}

/// A page of users and the total count of matches.
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub total: u64,
}

/// Users and orgs.
pub trait UserStore: Send + Sync {
    /// Creates the user with a fresh id; fails with `Conflict` when the login or email is
    /// taken (case-insensitively) and with `OrgNotFound` for a missing org.
    fn create_user(
        &self,
        user: UserRecord,
        membership: NewMembership,
    ) -> Result<UserRecord, StoreError>;
    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    fn user_by_uid(&self, uid: &str) -> Result<Option<UserRecord>, StoreError>;
    fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>, StoreError>;
    fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces the row, re-indexing login and email; `Conflict` if taken by another user.
    /// Memberships and the Grafana Admin flag are not changed here.
    fn update_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// Sets the Grafana Admin flag; `LastAdmin` if it would leave none.
    fn set_grafana_admin(&self, id: UserId, admin: bool) -> Result<UserRecord, StoreError>;
    /// Deletes the user with its indexes and memberships; the deleted row, if any.
    /// `LastAdmin` if the user is the last Grafana Admin.
    fn delete_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    /// Users ordered by login whose login, email or name contains `query`
    /// (case-insensitively), skipping `offset`, at most `limit`.
    fn search_users(&self, query: &str, offset: u64, limit: u64) -> Result<UserPage, StoreError>;
    /// Best-effort, not flushed: the last time the user was seen.
    fn touch_last_seen(&self, id: UserId, at: i64) -> Result<(), StoreError>;
    fn org(&self, id: OrgId) -> Result<Option<OrgRecord>, StoreError>;
    /// Creates the org with this id if it does not exist.
    fn ensure_org(&self, id: OrgId, name: &str) -> Result<(), StoreError>;
    fn counter(&self, name: &str) -> Result<u64, StoreError>;
}

/// Small key-value facts about the install (usage id, salts, flags).
pub trait MetaStore: Send + Sync {
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
