//! The records the store keeps. They are plain data shared by every backend: absent values
//! are `Option`, never `0` or `""`; JSON documents are text (the sled codec is bincode,
//! which cannot decode `serde_json::Value`; the PostgreSQL backend stores them as `jsonb`).

use serde::{Deserialize, Serialize};

use crate::crypto::PasswordHash;
use crate::domain::{OrgId, OrgRole, UserId};

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
    /// Unix seconds; `None` until the first request.
    pub last_seen_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub org_id: u64,
    pub role: u8,
}

impl UserRecord {
    /// A new local user row with no password, role or org yet (the store assigns the id,
    /// org and membership).
    pub fn new(login: &str, email: &str, name: &str, uid: String, at: i64) -> Self {
        Self {
            id: 0,
            uid,
            login: login.to_string(),
            email: email.to_string(),
            name: name.to_string(),
            is_admin: false,
            is_disabled: false,
            is_service_account: false,
            password: None,
            org_id: 0,
            memberships: Vec::new(),
            theme: String::new(),
            auth_module: String::new(),
            created: at,
            updated: at,
            last_seen_at: None,
        }
    }

    pub fn user_id(&self) -> UserId {
        UserId(self.id)
    }

    /// When the user was last seen; never-seen users read as ten years before their
    /// creation, as Grafana stores them.
    pub fn last_seen_or_default(&self) -> i64 {
        self.last_seen_at
            .unwrap_or(self.created - 10 * 365 * 86_400)
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

/// An org's postal address (Grafana's `address1` ... `country` columns of `org`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgAddressRecord {
    pub address1: String,
    pub address2: String,
    pub city: String,
    pub zip_code: String,
    pub state: String,
    pub country: String,
}

/// Where a new user goes.
#[derive(Debug, Clone)]
pub enum NewMembership {
    Existing(OrgId, OrgRole),
    /// Grafana with `auto_assign_org = false`: a new org named after the user.
    NewOrg(String, OrgRole),
}

/// A change to a user's profile: `None` keeps the field. Login and email are re-indexed
/// (case-insensitively unique); the store answers `Conflict("login" | "email")`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileChange {
    pub login: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub theme: Option<String>,
    /// "" for local users, "ldap" for directory users.
    pub auth_module: Option<String>,
}

impl ProfileChange {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Totals that stats and licensing read, kept by the backend (sled: counters changed in the
/// same transaction as the rows; SQL: `count(*)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Users that are not service accounts.
    pub users: u64,
    pub grafana_admins: u64,
    pub orgs: u64,
    /// Users by their highest org role.
    pub admins: u64,
    pub editors: u64,
    pub viewers: u64,
    pub no_role: u64,
    pub service_accounts: u64,
    pub api_keys: u64,
    pub datasources: u64,
    pub dashboards: u64,
    pub folders: u64,
    pub tags: u64,
    pub alerts: u64,
}

/// The time bounds of the activity snapshot (Unix seconds for users, ms for sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityWindows {
    /// Seen after this: active (30 days).
    pub active_after: i64,
    /// Seen after this: daily active (24 hours).
    pub daily_after: i64,
    /// Seen at or after this: monthly active (this calendar month).
    pub month_start: i64,
    /// Sessions used after this (ms): daily active sessions.
    pub sessions_after_ms: i64,
}

/// Users seen in each window, by highest role: `[admins, editors, viewers]` (Grafana counts
/// users without a role as viewers). Service accounts are not users here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub active: [u64; 3],
    pub daily: [u64; 3],
    pub monthly_active_users: u64,
    pub daily_active_sessions: u64,
}

/// The activity bucket of a role: admins, editors, viewers (and no role).
pub fn activity_bucket(role: Option<OrgRole>) -> usize {
    match role {
        Some(OrgRole::Admin) => 0,
        Some(OrgRole::Editor) => 1,
        _ => 2,
    }
}

/// The length of a bucket of the activity series: a UTC hour or a UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SeriesSpan {
    Hour,
    Day,
}

impl SeriesSpan {
    pub const EACH: [SeriesSpan; 2] = [SeriesSpan::Hour, SeriesSpan::Day];

    pub fn seconds(self) -> i64 {
        match self {
            SeriesSpan::Hour => 3_600,
            SeriesSpan::Day => 86_400,
        }
    }

    /// The start of the bucket that holds `at` (Unix seconds; UTC days have no leap
    /// seconds in Unix time).
    pub fn start_of(self, at: i64) -> i64 {
        at - at.rem_euclid(self.seconds())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SeriesSpan::Hour => "hour",
            SeriesSpan::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<SeriesSpan> {
        Self::EACH.into_iter().find(|span| span.as_str() == s)
    }
}

/// The counters of one bucket of the activity series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesCounts {
    /// Successful password sign-ins.
    pub sign_ins: u64,
    /// Refused password sign-ins: wrong password, unknown login, blocked attempt.
    pub failed_sign_ins: u64,
    /// Distinct users (not service accounts) seen in the bucket.
    pub active_users: u64,
}

impl SeriesCounts {
    pub fn plus(self, o: SeriesCounts) -> SeriesCounts {
        SeriesCounts {
            sign_ins: self.sign_ins.saturating_add(o.sign_ins),
            failed_sign_ins: self.failed_sign_ins.saturating_add(o.failed_sign_ins),
            active_users: self.active_users.saturating_add(o.active_users),
        }
    }
}

/// One bucket of the activity series: the counts of `[start, start + span)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesBucket {
    pub span: SeriesSpan,
    /// Unix seconds, on the span's boundary.
    pub start: i64,
    pub counts: SeriesCounts,
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
    /// `None` while active.
    pub revoked_ms: Option<i64>,
}

impl SessionRecord {
    /// The last time the session was used (seen or rotated).
    pub fn last_used_ms(&self) -> i64 {
        self.seen_ms.max(self.rotated_ms)
    }
}

/// Which sessions a purge deletes (revoked ones included): created at or before
/// `created_before_ms`, or last used (seen or rotated) at or before `idle_before_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPurge {
    pub created_before_ms: i64,
    pub idle_before_ms: i64,
}

/// A legacy org API key or a service-account token. Only an HMAC of its secret is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: u64,
    pub org_id: u64,
    pub name: String,
    pub role: u8,
    pub hash: [u8; 32],
    /// Unix seconds; `None` never expires.
    pub expires: Option<i64>,
    pub created: i64,
    pub last_used: Option<i64>,
    /// `None` for legacy org keys; the service account's user id for its tokens.
    pub service_account_id: Option<u64>,
}

impl ApiKeyRecord {
    /// Expired at `now` (Unix seconds): the one expiry rule of keys and tokens.
    pub fn expired_at(&self, now: i64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
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
    /// When rotation retired it.
    pub retired: Option<i64>,
    pub kek_id: String,
    #[serde(with = "serde_bytes")]
    pub wrapped: Vec<u8>,
    /// Encryptions reserved (persisted in blocks); the usage cap applies to it.
    pub reserved: u64,
}

/// A ciphertext and the DEK that sealed it. The store keeps per-DEK reference counts from
/// `dek_id`; it never reads the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    pub dek_id: u32,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// A change to one secret: `value` None deletes.
#[derive(Debug, Clone)]
pub struct SecretWrite {
    pub key: String,
    pub value: Option<SealedSecret>,
}

/// One re-encrypted secret: written only if the stored bytes are still `expected`.
#[derive(Debug, Clone)]
pub struct Reencrypted {
    pub key: String,
    pub expected: Vec<u8>,
    pub new: SealedSecret,
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

/// A runtime settings override (`PUT /api/admin/settings`). Secret values live encrypted
/// in the `secrets` tree; the row then carries no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingOverride {
    pub section: String,
    pub key: String,
    pub value: Option<String>,
    pub secret: bool,
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
    /// (org, uid) of dashboards to remove.
    pub deletes: Vec<(u64, String)>,
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
    /// renames). Changed only by [`super::RoleStore::assign_role`] and
    /// [`super::RoleStore::unassign_role`]; role writes keep it.
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

/// Whose stored quota limits: an org's or a user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaOwner {
    Org(OrgId),
    User(UserId),
}

/// A limit set through the quota API (Grafana's `quota` table) for one org or one user;
/// the `[quota]` value applies to every target without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    /// The org the limit applies to; 0 for a user's limit.
    pub org_id: u64,
    /// The user the limit applies to; 0 for an org's limit.
    pub user_id: u64,
    pub target: String,
    pub limit: i64,
    /// Unix seconds of the last change.
    pub updated: i64,
}

impl QuotaRecord {
    pub fn owner(&self) -> QuotaOwner {
        if self.user_id != 0 {
            QuotaOwner::User(UserId(self.user_id))
        } else {
            QuotaOwner::Org(OrgId(self.org_id))
        }
    }
}
