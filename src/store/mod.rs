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
    pub const SESSIONS: &str = "sessions.active";
    pub const API_KEYS: &str = "api_keys";
    pub const DATASOURCES: &str = "datasources";
    pub const DASHBOARDS: &str = "dashboards";
    pub const FOLDERS: &str = "folders";
    pub const TAGS: &str = "tags";
    pub const ALERTS: &str = "alerts";
    pub const SNAPSHOTS: &str = "snapshots";
    pub const PLAYLISTS: &str = "playlists";
    pub const STARS: &str = "stars";

    /// The reference count of a DEK.
    pub fn dek_refs(id: u32) -> String {
        format!("dek.{id}.refs")
    }

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
    /// Replaces the user's org memberships (existing orgs only; `OrgNotFound` otherwise),
    /// moving the current org to the first one when it is no longer a member.
    fn set_memberships(
        &self,
        id: UserId,
        memberships: &[(OrgId, OrgRole)],
    ) -> Result<UserRecord, StoreError>;
    /// Sets the Grafana Admin flag; `LastAdmin` if it would leave none.
    fn set_grafana_admin(&self, id: UserId, admin: bool) -> Result<UserRecord, StoreError>;
    /// Deletes the user with its indexes and memberships; the deleted row, if any.
    /// `LastAdmin` if the user is the last Grafana Admin.
    fn delete_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    /// Users ordered by login whose login, email or name contains `query`
    /// (case-insensitively), skipping `offset`, at most `limit`.
    fn search_users(&self, query: &str, offset: u64, limit: u64) -> Result<UserPage, StoreError>;
    /// The same over service accounts.
    fn search_service_accounts(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
    ) -> Result<UserPage, StoreError>;
    /// Best-effort, not flushed: the last time the user was seen.
    fn touch_last_seen(&self, id: UserId, at: i64) -> Result<(), StoreError>;
    fn org(&self, id: OrgId) -> Result<Option<OrgRecord>, StoreError>;
    /// Creates the org with this id if it does not exist.
    fn ensure_org(&self, id: OrgId, name: &str) -> Result<(), StoreError>;
    fn counter(&self, name: &str) -> Result<u64, StoreError>;
    /// Visits every user row (periodic jobs only; never on a request).
    fn for_each_user(&self, f: &mut dyn FnMut(&UserRecord)) -> Result<(), StoreError>;
}

/// Small key-value facts about the install (usage id, salts, flags).
pub trait MetaStore: Send + Sync {
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

/// Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A sign-in session. Only keyed hashes of its tokens are stored. After a rotation the
/// previous token stays valid until `prev_valid_until_ms`, so requests already in flight
/// with it do not sign the user out. Times are Unix milliseconds: rotation and grace
/// windows are short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: u64,
    pub user_id: u64,
    pub token_hash: [u8; 32],
    pub prev_token_hash: Option<[u8; 32]>,
    pub prev_valid_until_ms: i64,
    pub client_ip: String,
    pub user_agent: String,
    /// "" for local sign-ins, "ldap" for directory users.
    pub auth_module: String,
    pub created_ms: i64,
    pub seen_ms: i64,
    pub rotated_ms: i64,
    /// 0 while active.
    pub revoked_ms: i64,
}

/// Sessions, indexed by token hash and by user.
pub trait SessionStore: Send + Sync {
    /// Stores a new session with a fresh id.
    fn create_session(&self, session: SessionRecord) -> Result<SessionRecord, StoreError>;
    fn session(&self, id: u64) -> Result<Option<SessionRecord>, StoreError>;
    fn session_by_hash(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError>;
    /// Installs a new token if the session still has `expected_hash` as its current token;
    /// `Ok(None)` when another request rotated it first.
    fn rotate_session(
        &self,
        id: u64,
        expected_hash: &[u8; 32],
        new_hash: [u8; 32],
        prev_valid_until_ms: i64,
        at_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Best effort, not flushed.
    fn touch_session(&self, id: u64, at_ms: i64) -> Result<(), StoreError>;
    /// Marks the session revoked; the row if it existed and was active.
    fn revoke_session(&self, id: u64, at_ms: i64) -> Result<Option<SessionRecord>, StoreError>;
    /// Revokes every active session of the user; how many.
    fn revoke_user_sessions(&self, user: UserId, at_ms: i64) -> Result<usize, StoreError>;
    /// The user's sessions that are not revoked.
    fn user_sessions(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError>;
    /// Deletes sessions for which `expired` holds (revoked ones included); how many.
    fn purge_sessions(&self, expired: &dyn Fn(&SessionRecord) -> bool)
        -> Result<usize, StoreError>;
    /// Visits every session row (periodic jobs only).
    fn for_each_session(&self, f: &mut dyn FnMut(&SessionRecord)) -> Result<(), StoreError>;
}

/// A legacy org API key (or, later, a service-account token). Only an HMAC of its secret
/// is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: u64,
    pub org_id: u64,
    pub name: String,
    pub role: u8,
    pub hash: [u8; 32],
    /// Unix seconds; 0 never expires.
    pub expires: i64,
    pub created: i64,
    pub last_used: i64,
    /// 0 for legacy org keys; the service account's user id for its tokens.
    pub service_account_id: u64,
}

pub trait ApiKeyStore: Send + Sync {
    /// `Conflict("name")` when the org already has a key with this name (for the same
    /// service account).
    fn create_api_key(&self, key: ApiKeyRecord) -> Result<ApiKeyRecord, StoreError>;
    fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError>;
    fn api_keys(&self, org: OrgId, service_account: u64) -> Result<Vec<ApiKeyRecord>, StoreError>;
    fn delete_api_key(&self, id: u64) -> Result<Option<ApiKeyRecord>, StoreError>;
    fn api_key(&self, id: u64) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Best effort, not flushed.
    fn touch_api_key(&self, id: u64, at: i64) -> Result<(), StoreError>;
}

/// The life of a data-encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DekState {
    /// Encrypts and decrypts; there is one.
    Active,
    /// Decrypts only: what rotation makes of the active key (Grafana's "disabled").
    Retired,
    /// Gone: no secret references it and its wrapped bytes are erased.
    Destroyed,
}

/// A DEK row: the key itself only wrapped under a KEK.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DekRecord {
    pub id: u32,
    pub state: DekState,
    pub created: i64,
    pub retired: i64,
    pub kek_id: String,
    pub wrapped: Vec<u8>,
    /// Encryptions reserved (persisted in blocks); the usage cap applies to it.
    pub reserved: u64,
}

/// A change to the `secrets` tree: `value` None deletes.
#[derive(Debug, Clone)]
pub struct SecretWrite {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One re-encrypted secret: written only if the stored bytes are still `expected`.
#[derive(Debug, Clone)]
pub struct Reencrypted {
    pub key: String,
    pub expected: Vec<u8>,
    pub new: Vec<u8>,
}

/// DEKs and secret ciphertexts. Each ciphertext names its DEK in its header; the store keeps
/// a reference count per DEK in the same transaction as every secret write.
pub trait EncryptionStore: Send + Sync {
    fn deks(&self) -> Result<Vec<DekRecord>, StoreError>;
    fn dek(&self, id: u32) -> Result<Option<DekRecord>, StoreError>;
    fn active_dek(&self) -> Result<Option<u32>, StoreError>;
    /// The next DEK id (a sequence; gaps are harmless).
    fn allocate_dek_id(&self) -> Result<u32, StoreError>;
    /// One transaction: retire the active DEK (if any) and install `new` as the active one.
    fn install_active_dek(&self, new: DekRecord) -> Result<(), StoreError>;
    fn update_dek(&self, dek: &DekRecord) -> Result<(), StoreError>;
    fn dek_references(&self, id: u32) -> Result<u64, StoreError>;
    fn secret(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn write_secrets(&self, writes: &[SecretWrite]) -> Result<(), StoreError>;
    /// Up to `limit` secrets with keys after `cursor`, in key order.
    fn secrets_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    fn secret_count(&self) -> Result<u64, StoreError>;
    /// One transaction: compare-and-swap each secret, adjust reference counts, store the
    /// job cursor. Returns how many were written (the rest changed concurrently).
    fn commit_reencrypt(
        &self,
        batch: &[Reencrypted],
        cursor: Option<&str>,
    ) -> Result<usize, StoreError>;
    fn reencrypt_cursor(&self) -> Result<Option<String>, StoreError>;
}

/// A datasource row; its secure fields live in the `secrets` tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSourceRecord {
    pub id: u64,
    pub uid: String,
    pub org_id: u64,
    pub name: String,
    pub ds_type: String,
    pub access: String,
    pub url: String,
    pub user: String,
    pub database: String,
    pub basic_auth: bool,
    pub basic_auth_user: String,
    pub with_credentials: bool,
    pub is_default: bool,
    /// The `jsonData` object as JSON text.
    pub json_data: String,
    /// Names of the secure fields that hold a value.
    pub secure_fields: Vec<String>,
    pub version: u64,
    pub read_only: bool,
    pub created: i64,
    pub updated: i64,
}

pub trait DataSourceStore: Send + Sync {
    /// Creates the row and writes its secrets in one transaction; `Conflict("name")` or
    /// `Conflict("uid")` when taken in the org.
    fn create_datasource(
        &self,
        ds: DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> Result<DataSourceRecord, StoreError>;
    /// Replaces the row (re-indexing name and uid) and applies secret writes, atomically.
    fn update_datasource(
        &self,
        ds: &DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError>;
    /// Deletes the row and the given secrets atomically; the row if it existed.
    fn delete_datasource(
        &self,
        id: u64,
        secrets: &[SecretWrite],
    ) -> Result<Option<DataSourceRecord>, StoreError>;
    fn datasource(&self, id: u64) -> Result<Option<DataSourceRecord>, StoreError>;
    fn datasource_by_uid(
        &self,
        org: OrgId,
        uid: &str,
    ) -> Result<Option<DataSourceRecord>, StoreError>;
    fn datasource_by_name(
        &self,
        org: OrgId,
        name: &str,
    ) -> Result<Option<DataSourceRecord>, StoreError>;
    fn datasources(&self, org: OrgId) -> Result<Vec<DataSourceRecord>, StoreError>;
}

/// A runtime settings override (`PUT /api/admin/settings`). Secret values live encrypted
/// in the `secrets` tree; the row then carries no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingOverride {
    pub section: String,
    pub key: String,
    pub value: Option<String>,
    pub secret: bool,
}

pub trait SettingsStore: Send + Sync {
    fn setting_overrides(&self) -> Result<Vec<SettingOverride>, StoreError>;
    /// One transaction: upsert `set`, delete `remove` (section, key), apply secret writes.
    fn apply_setting_overrides(
        &self,
        set: &[SettingOverride],
        remove: &[(String, String)],
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError>;
}

/// A license token uploaded through the API (or fetched by a renewal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredLicense {
    pub token: String,
    /// Unix seconds.
    pub stored_at: i64,
}

/// The last renewal attempt, shown in the license status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewalRecord {
    pub at: i64,
    /// "manual" (the API) or "automatic".
    pub trigger: String,
    pub ok: bool,
    pub error: String,
}

pub trait LicenseStore: Send + Sync {
    fn license(&self) -> Result<Option<StoredLicense>, StoreError>;
    fn put_license(&self, license: &StoredLicense) -> Result<(), StoreError>;
    /// True when a token was there.
    fn delete_license(&self) -> Result<bool, StoreError>;
    fn last_renewal(&self) -> Result<Option<RenewalRecord>, StoreError>;
    fn put_renewal(&self, record: &RenewalRecord) -> Result<(), StoreError>;
}

/// A dashboard (from a provisioning provider). The JSON is kept as text: bincode cannot
/// decode `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardRecord {
    pub id: u64,
    pub uid: String,
    pub org_id: u64,
    pub title: String,
    pub tags: Vec<String>,
    /// "" for the General folder.
    pub folder_uid: String,
    pub version: u64,
    pub json: String,
    /// The provisioning provider and the file's path relative to its root.
    pub provider: String,
    pub file: String,
    /// Panels carrying a legacy alert (set by the store from the batch).
    pub alert_panels: Vec<u64>,
    pub created: i64,
    pub updated: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderRecord {
    pub id: u64,
    pub uid: String,
    pub org_id: u64,
    pub title: String,
    pub created: i64,
    pub updated: i64,
}

/// A legacy alert rule: a dashboard panel's `alert` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: u64,
    pub org_id: u64,
    pub dashboard_uid: String,
    pub dashboard_id: u64,
    pub panel_id: u64,
    pub name: String,
    /// "pending", "paused", "ok", "alerting", "no_data".
    pub state: String,
    pub paused: bool,
    pub new_state_date: i64,
}

/// Dashboards of one provisioning round, applied in one transaction. Alerts of an upserted
/// dashboard replace its previous ones; an alert keeps its id and pause by panel.
#[derive(Debug, Clone, Default)]
pub struct DashboardBatch {
    pub folders: Vec<FolderRecord>,
    pub upserts: Vec<(DashboardRecord, Vec<AlertRecord>)>,
    pub deletes: Vec<String>,
}

/// An app plugin's settings in an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginSettingRecord {
    pub org_id: u64,
    pub plugin_id: String,
    pub enabled: bool,
    pub pinned: bool,
    pub json_data: String,
    pub secure_fields: Vec<String>,
    pub version: u64,
    pub updated: i64,
}

/// A legacy alert notification channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifierRecord {
    pub id: u64,
    pub uid: String,
    pub org_id: u64,
    pub name: String,
    pub kind: String,
    pub is_default: bool,
    pub send_reminder: bool,
    pub frequency: String,
    pub disable_resolve_message: bool,
    pub settings: String,
    pub secure_fields: Vec<String>,
    pub created: i64,
    pub updated: i64,
}

/// A custom RBAC role and whom it is assigned to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub uid: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub group: String,
    pub version: u64,
    pub global: bool,
    pub org_id: u64,
    /// (action, scope).
    pub permissions: Vec<(String, String)>,
    /// Basic roles (`Viewer`, `Editor`, `Admin`, `Grafana Admin`) holding it.
    pub basic_roles: Vec<String>,
    /// Logins of users holding it (provisioning files name users by login).
    pub users: Vec<String>,
    /// Ids of users and service accounts it is assigned to through the API (stable across
    /// renames).
    pub user_ids: Vec<u64>,
    pub updated: i64,
}

/// The outcome of one file in a reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileOutcome {
    pub file: String,
    pub ok: bool,
    pub message: String,
}

/// The last reload of a provisioning kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisioningRun {
    pub kind: String,
    pub at: i64,
    pub ok: bool,
    pub error: String,
    pub files: Vec<FileOutcome>,
    /// Objects created or updated, and removed.
    pub applied: u64,
    pub removed: u64,
}

pub trait ProvisioningStore: Send + Sync {
    fn dashboards(&self) -> Result<Vec<DashboardRecord>, StoreError>;
    fn dashboard(&self, uid: &str) -> Result<Option<DashboardRecord>, StoreError>;
    fn folders(&self) -> Result<Vec<FolderRecord>, StoreError>;
    fn apply_dashboards(&self, batch: &DashboardBatch) -> Result<(), StoreError>;
    fn alerts(&self) -> Result<Vec<AlertRecord>, StoreError>;
    /// Pauses or resumes the given alerts (all when `ids` is None); returns how many changed.
    fn set_alerts_paused(&self, ids: Option<&[u64]>, paused: bool) -> Result<u64, StoreError>;

    fn plugin_settings(&self) -> Result<Vec<PluginSettingRecord>, StoreError>;
    fn apply_plugin_settings(
        &self,
        set: &[PluginSettingRecord],
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError>;

    fn notifiers(&self) -> Result<Vec<NotifierRecord>, StoreError>;
    /// Upserts by (org, uid) (a new one gets an id) and deletes by (org, uid).
    fn apply_notifiers(
        &self,
        set: &[NotifierRecord],
        delete: &[(u64, String)],
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError>;

    fn roles(&self) -> Result<Vec<RoleRecord>, StoreError>;
    fn apply_roles(&self, set: &[RoleRecord], delete: &[String]) -> Result<(), StoreError>;

    fn provisioning_runs(&self) -> Result<Vec<ProvisioningRun>, StoreError>;
    fn put_provisioning_run(&self, run: &ProvisioningRun) -> Result<(), StoreError>;
}
