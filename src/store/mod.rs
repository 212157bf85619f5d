//! The store: one contract, one module per backend.
//!
//! Everything above this module reaches storage through the narrow traits below, combined in
//! [`Store`], and gets a backend from [`open`]; nothing above `src/store/` names a backend.
//! `contract` holds the test suite every backend must pass.
//!
//! **Async, deliberately.** Every method is `async` (through `async_trait`, so that services
//! can hold `Arc<dyn UserStore>`): a network database (the PostgreSQL backend) awaits its
//! socket instead of blocking a runtime worker, and the embedded sled backend awaits its
//! group commit. sled's own operations are short in-memory work and run inline; its rare
//! scans (search, activity) move to the blocking pool inside the backend. The cost is one
//! boxed future per call, which the benchmarks do not see.
//!
//! **The contract of every method:**
//! - Each call is one atomic unit: it happens entirely or not at all.
//! - A mutating call returns only once its change is durable (sled: a group-committed flush;
//!   SQL: a committed transaction), so a service never has to remember to flush. The
//!   exceptions say "best effort" (last-seen and last-used times), where losing the last
//!   few seconds on a crash is harmless.
//! - Updates are narrow: a method changes exactly the fields it names, re-reading the row
//!   inside its transaction, so two concurrent updates of different fields never undo each
//!   other. There is no "replace the whole row" for users, roles or keys.
//! - Time comes from the caller (`at` parameters), never from the backend's clock.
//! - Org-owned records are read and keyed by org.

pub mod audit;
pub mod backup;
pub mod codec;
#[cfg(test)]
pub mod contract;
pub mod dump;
pub mod durability;
mod lease;
pub mod pg_store;
pub mod records;
mod sled_store;
pub mod transfer;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::crypto::PasswordHash;
use crate::domain::{OrgId, OrgRole, UserId};

pub use audit::{AuditQuery, AuditStore};
pub use dump::{Dump, Orphans};
pub use durability::Durability;
pub use records::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule already holds the value (`login`, `email`, `name`, `uid`).
    #[error("{0} already taken")]
    Conflict(&'static str),
    /// A compare-and-swap lost: the record changed since it was read (`version`).
    #[error("{0} changed concurrently")]
    Stale(&'static str),
    /// The change would leave no Grafana Admin.
    #[error("last grafana admin")]
    LastAdmin,
    #[error("organization not found")]
    OrgNotFound,
    /// The user is not a member of the organization the change names.
    #[error("not a member of the organization")]
    NotMember,
    /// The user already is a member of the organization (adding a membership).
    #[error("already a member of the organization")]
    AlreadyMember,
    /// The change would leave an organization without an `Admin` member.
    #[error("last organization admin")]
    LastOrgAdmin,
    #[error("storage I/O: {0}")]
    Io(String),
    /// The database cannot be reached (a network backend): the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("record codec: {0}")]
    Codec(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Users and orgs.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user with a fresh id (the `id`, `org_id` and `memberships` of `user` are
    /// ignored); `Conflict("login" | "email")` when taken (case-insensitively),
    /// `OrgNotFound` for a missing org.
    async fn create_user(
        &self,
        user: UserRecord,
        membership: NewMembership,
    ) -> StoreResult<UserRecord>;
    /// The row shared, as the backends' caches hold it: every authenticated request reads
    /// one, and a copy would cost each of them its strings and memberships.
    async fn user(&self, id: UserId) -> StoreResult<Option<Arc<UserRecord>>>;
    async fn user_by_uid(&self, uid: &str) -> StoreResult<Option<UserRecord>>;
    /// Case-insensitive.
    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>>;
    /// Case-insensitive.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    /// Sets the password hash (`NotFound` for a missing user).
    async fn set_password(&self, id: UserId, hash: PasswordHash, at: i64) -> StoreResult<()>;
    /// Replaces the password hash only if the stored one is still `expected` (a stronger
    /// hash of the same password, computed at sign-in); `false` when it changed meanwhile.
    async fn upgrade_password(
        &self,
        id: UserId,
        expected: &PasswordHash,
        new: PasswordHash,
    ) -> StoreResult<bool>;
    /// `LastAdmin` when disabling the last enabled Grafana Admin.
    async fn set_disabled(&self, id: UserId, disabled: bool, at: i64) -> StoreResult<UserRecord>;
    /// Changes the named profile fields, re-indexing login and email.
    async fn update_profile(
        &self,
        id: UserId,
        change: &ProfileChange,
        at: i64,
    ) -> StoreResult<UserRecord>;
    /// Replaces the user's org memberships (existing orgs only; `OrgNotFound` otherwise),
    /// moving the current org to the first one when it is no longer a member.
    async fn set_memberships(
        &self,
        id: UserId,
        memberships: &[(OrgId, OrgRole)],
        at: i64,
    ) -> StoreResult<UserRecord>;
    /// Sets the Grafana Admin flag; `LastAdmin` if it would leave no Grafana Admin.
    async fn set_grafana_admin(&self, id: UserId, admin: bool, at: i64) -> StoreResult<UserRecord>;
    /// Deletes the user with its indexes and memberships; the deleted row, if any.
    /// `LastAdmin` if the user is the last Grafana Admin.
    async fn delete_user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Users (or service accounts) ordered by login whose login, email or name contains
    /// `query` (case-insensitively), skipping `offset`, at most `limit`.
    async fn search_users(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
        service_accounts: bool,
    ) -> StoreResult<UserPage>;
    /// Best effort: the last time the user was seen (never moves backwards). In the same
    /// unit, a user (not a service account) whose previous last-seen time is before the
    /// start of the hour (of the day) of `at` counts one more active user in that hour's
    /// (day's) bucket of the activity series: distinct users, without keeping who.
    async fn touch_last_seen(&self, id: UserId, at: i64) -> StoreResult<()>;
    async fn org(&self, id: OrgId) -> StoreResult<Option<OrgRecord>>;
    /// Creates the org with this id if it does not exist.
    async fn ensure_org(&self, id: OrgId, name: &str, at: i64) -> StoreResult<()>;
    /// Makes `org` the user's current org: only the current org changes (not `updated`:
    /// switching orgs is no profile change). Checked in the same unit as the write:
    /// `NotMember` unless the user is a member of `org` at that moment, `NotFound` for a
    /// missing user. The row as written.
    async fn set_current_org(&self, id: UserId, org: OrgId) -> StoreResult<UserRecord>;
    /// Creates an org with a fresh id, `creator` its `Admin` member (the creator's current
    /// org does not change). Names are unique (exactly, case-sensitively):
    /// `Conflict("name")`; `NotFound` for a missing creator.
    async fn create_org(&self, name: &str, at: i64, creator: UserId) -> StoreResult<OrgRecord>;
    /// The org with exactly this name.
    async fn org_by_name(&self, name: &str) -> StoreResult<Option<OrgRecord>>;
    /// Orgs ordered by name (byte-wise) whose name starts with `query` (case-insensitively;
    /// "" matches all) and, when given, equals `name` exactly; skipping `offset`, at most
    /// `limit`.
    async fn search_orgs(
        &self,
        query: &str,
        name: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Vec<OrgRecord>>;
    /// Renames the org: `Conflict("name")` when another org has the name, `NotFound` for a
    /// missing org. The row as written.
    async fn rename_org(&self, id: OrgId, name: &str, at: i64) -> StoreResult<OrgRecord>;
    /// Adds one membership: `AlreadyMember`, `OrgNotFound`, `NotFound` (user). When the
    /// user's current org is not one of its memberships, `org` becomes current.
    async fn add_membership(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord>;
    /// Changes the user's role in `org`: `NotMember`, `NotFound` (user), `LastOrgAdmin`
    /// when the org would keep no `Admin` member (checked in the same unit).
    async fn set_membership_role(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord>;
    /// Removes the user's membership of `org`: `NotMember`, `NotFound` (user),
    /// `LastOrgAdmin` as for a role change. A current org that goes moves to the first
    /// remaining membership (stays when none remains).
    async fn remove_membership(&self, user: UserId, org: OrgId, at: i64)
        -> StoreResult<UserRecord>;
    /// The org's members (not service accounts) with their role in it, ordered by login
    /// (folded).
    async fn org_members(&self, org: OrgId) -> StoreResult<Vec<(UserRecord, OrgRole)>>;
    /// Deletes the org and everything it owns: memberships, legacy API keys, service
    /// accounts (with their tokens), datasources, dashboards, folders and alerts, plugin
    /// settings, notification channels, custom roles (with their assignments), its address,
    /// and every secret whose key starts with one of `secret_prefixes` (the owners'
    /// secrets; the DEK references go with them). Users are kept: one whose current org was
    /// `org` moves to its first remaining membership; one with none left keeps pointing at
    /// the deleted org (Grafana's "Org missing"). `NotFound` for a missing org. PostgreSQL:
    /// one transaction; sled: one transaction per kind of row, the org row last (a retry
    /// after a failure finishes the job).
    async fn delete_org(&self, org: OrgId, secret_prefixes: &[String]) -> StoreResult<()>;
    /// The org's postal address (`None` when never set).
    async fn org_address(&self, org: OrgId) -> StoreResult<Option<OrgAddressRecord>>;
    /// Replaces the org's postal address: `OrgNotFound` for a missing org.
    async fn set_org_address(&self, org: OrgId, address: &OrgAddressRecord) -> StoreResult<()>;
}

/// A page of users and the total count of matches.
#[derive(Debug, Clone, Default)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub total: u64,
}

/// Totals and the activity snapshot.
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// O(1) on every backend that can (sled keeps counters).
    async fn counts(&self) -> StoreResult<Counts>;
    /// A scan: periodic jobs only, never on a request.
    async fn activity(&self, windows: ActivityWindows) -> StoreResult<Activity>;
    /// Counts a password sign-in, successful (`ok`) or failed, in the hour and the day
    /// (UTC) of `at` of the activity series. One unit; best effort (a crash may lose the
    /// last few seconds).
    async fn record_sign_in(&self, at: i64, ok: bool) -> StoreResult<()>;
    /// The buckets of the activity series that hold a count: hours starting at or after
    /// `hours_from`, days starting at or after `days_from`, in no particular order.
    async fn activity_series(
        &self,
        hours_from: i64,
        days_from: i64,
    ) -> StoreResult<Vec<SeriesBucket>>;
    /// Deletes the hours starting before `hours_before` and the days starting before
    /// `days_before`.
    async fn prune_activity_series(&self, hours_before: i64, days_before: i64) -> StoreResult<()>;
}

/// Small key-value facts about the install (usage id, salts, flags, canary).
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn get_meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()>;
    /// Stores `value` unless the key already holds one; the value stored either way (two
    /// nodes starting at once agree on one salt, one key, one canary).
    async fn init_meta(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
}

/// Sign-in sessions, indexed by token hash and by user.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session with a fresh id.
    async fn create_session(&self, session: SessionRecord) -> StoreResult<SessionRecord>;
    async fn session(&self, id: u64) -> StoreResult<Option<SessionRecord>>;
    /// The session whose current or previous token hashes to `hash`; shared, as the
    /// backend's cache holds it (every cookie request reads one).
    async fn session_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<Arc<SessionRecord>>>;
    /// Installs a new token if the session still has `expected_hash` as its current token;
    /// `Ok(None)` when another request rotated it first.
    async fn rotate_session(
        &self,
        id: u64,
        expected_hash: &[u8; 32],
        new_hash: [u8; 32],
        prev_valid_until_ms: i64,
        at_ms: i64,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Best effort.
    async fn touch_session(&self, id: u64, at_ms: i64) -> StoreResult<()>;
    /// Marks the session revoked; the row if it existed and was active.
    async fn revoke_session(&self, id: u64, at_ms: i64) -> StoreResult<Option<SessionRecord>>;
    /// Revokes every active session of the user; how many.
    async fn revoke_user_sessions(&self, user: UserId, at_ms: i64) -> StoreResult<usize>;
    /// The user's sessions that are not revoked.
    async fn user_sessions(&self, user: UserId) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes the sessions the bounds select; how many.
    async fn purge_sessions(&self, bounds: SessionPurge) -> StoreResult<usize>;
    /// Sessions not revoked.
    async fn active_session_count(&self) -> StoreResult<u64>;
}

/// Legacy org API keys and service-account tokens.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// `Conflict("name")` when the org (and service account) already has one by this name.
    async fn create_api_key(&self, key: ApiKeyRecord) -> StoreResult<ApiKeyRecord>;
    /// The key or token whose secret hashes to `hash`; shared, as the backend's cache holds
    /// it (every API-key and token request reads one).
    async fn api_key_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<Arc<ApiKeyRecord>>>;
    /// The org's legacy keys (`service_account` None) or one service account's tokens.
    async fn api_keys(
        &self,
        org: OrgId,
        service_account: Option<UserId>,
    ) -> StoreResult<Vec<ApiKeyRecord>>;
    async fn api_key(&self, id: u64) -> StoreResult<Option<ApiKeyRecord>>;
    async fn delete_api_key(&self, id: u64) -> StoreResult<Option<ApiKeyRecord>>;
    /// Best effort.
    async fn touch_api_key(&self, id: u64, at: i64) -> StoreResult<()>;
    /// Deletes a service account and every token of it in one unit; the row, if any.
    async fn delete_service_account(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
}

/// DEKs and secret ciphertexts, with a reference count per DEK kept from the `dek_id` of
/// every write.
#[async_trait]
pub trait EncryptionStore: Send + Sync {
    async fn deks(&self) -> StoreResult<Vec<DekRecord>>;
    async fn dek(&self, id: u32) -> StoreResult<Option<DekRecord>>;
    async fn active_dek(&self) -> StoreResult<Option<u32>>;
    /// The next DEK id (a sequence; gaps are harmless).
    async fn allocate_dek_id(&self) -> StoreResult<u32>;
    /// One unit: retire the active DEK (if any) at `new.created` and install `new` as the
    /// active one.
    async fn install_active_dek(&self, new: DekRecord) -> StoreResult<()>;
    /// Raises the persisted reservation of encryptions (never lowers it).
    async fn reserve_dek_uses(&self, id: u32, reserved: u64) -> StoreResult<()>;
    /// Replaces the wrapped key bytes (a KEK re-wrap).
    async fn rewrap_dek(&self, id: u32, kek_id: &str, wrapped: Vec<u8>) -> StoreResult<()>;
    /// Destroys a retired DEK nothing references (erases its wrapped bytes); `false` when it
    /// is active, already destroyed or still referenced.
    async fn destroy_dek(&self, id: u32) -> StoreResult<bool>;
    async fn dek_references(&self, id: u32) -> StoreResult<u64>;
    async fn secret(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn write_secrets(&self, writes: &[SecretWrite]) -> StoreResult<()>;
    /// Up to `limit` secrets with keys after `cursor`, in key order.
    async fn secrets_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<(String, Vec<u8>)>>;
    async fn secret_count(&self) -> StoreResult<u64>;
    /// One unit: compare-and-swap each secret, adjust reference counts, store the job
    /// cursor. Returns how many were written (the rest changed concurrently).
    async fn commit_reencrypt(
        &self,
        batch: &[Reencrypted],
        cursor: Option<&str>,
    ) -> StoreResult<usize>;
    async fn reencrypt_cursor(&self) -> StoreResult<Option<String>>;
}

/// Datasources, unique by name and by uid within an org; their secrets are written in the
/// same unit.
#[async_trait]
pub trait DataSourceStore: Send + Sync {
    /// Creates the row with a fresh id and version 1; `Conflict("name" | "uid")`.
    async fn create_datasource(
        &self,
        ds: DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> StoreResult<DataSourceRecord>;
    /// Replaces the row's definition (re-indexing name and uid) if its stored version is
    /// still `expected_version`, bumping it; `Stale("version")` otherwise.
    async fn update_datasource(
        &self,
        ds: &DataSourceRecord,
        expected_version: u64,
        secrets: &[SecretWrite],
    ) -> StoreResult<DataSourceRecord>;
    /// Deletes the row and the given secrets; the row if it existed in the org.
    async fn delete_datasource(
        &self,
        org: OrgId,
        id: u64,
        secrets: &[SecretWrite],
    ) -> StoreResult<Option<DataSourceRecord>>;
    async fn datasource(&self, org: OrgId, id: u64) -> StoreResult<Option<DataSourceRecord>>;
    async fn datasource_by_uid(
        &self,
        org: OrgId,
        uid: &str,
    ) -> StoreResult<Option<DataSourceRecord>>;
    async fn datasource_by_name(
        &self,
        org: OrgId,
        name: &str,
    ) -> StoreResult<Option<DataSourceRecord>>;
    async fn datasources(&self, org: OrgId) -> StoreResult<Vec<DataSourceRecord>>;
}

/// Runtime settings overrides.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn setting_overrides(&self) -> StoreResult<Vec<SettingOverride>>;
    /// One unit: upsert `set`, delete `remove` (section, key), apply secret writes.
    async fn apply_setting_overrides(
        &self,
        set: &[SettingOverride],
        remove: &[(String, String)],
        secrets: &[SecretWrite],
    ) -> StoreResult<()>;
}

#[async_trait]
pub trait LicenseStore: Send + Sync {
    async fn license(&self) -> StoreResult<Option<StoredLicense>>;
    async fn put_license(&self, license: &StoredLicense) -> StoreResult<()>;
    /// True when a token was there.
    async fn delete_license(&self) -> StoreResult<bool>;
    async fn last_renewal(&self) -> StoreResult<Option<RenewalRecord>>;
    async fn put_renewal(&self, record: &RenewalRecord) -> StoreResult<()>;
}

/// Dashboards and folders, keyed by (org, uid).
#[async_trait]
pub trait DashboardStore: Send + Sync {
    async fn dashboards(&self, org: OrgId) -> StoreResult<Vec<DashboardRecord>>;
    /// Every org's dashboards of one provisioning provider.
    async fn provider_dashboards(&self, provider: &str) -> StoreResult<Vec<DashboardRecord>>;
    async fn dashboard(&self, org: OrgId, uid: &str) -> StoreResult<Option<DashboardRecord>>;
    async fn folders(&self, org: OrgId) -> StoreResult<Vec<FolderRecord>>;
    /// One unit: folders, deletes, then upserts with their legacy alerts (an alert keeps
    /// its id and pause by panel).
    async fn apply_dashboards(&self, batch: &DashboardBatch) -> StoreResult<()>;
}

/// Legacy alert rules (derived from dashboards).
#[async_trait]
pub trait AlertStore: Send + Sync {
    async fn alerts(&self, org: OrgId) -> StoreResult<Vec<AlertRecord>>;
    /// Pauses or resumes alerts: the org's given ones, all of the org's when `ids` is
    /// None, every org's when `org` is None too; how many it touched.
    async fn set_alerts_paused(
        &self,
        org: Option<OrgId>,
        ids: Option<&[u64]>,
        paused: bool,
        at: i64,
    ) -> StoreResult<u64>;
}

/// App plugin settings per org.
#[async_trait]
pub trait PluginSettingStore: Send + Sync {
    async fn plugin_settings(&self, org: OrgId) -> StoreResult<Vec<PluginSettingRecord>>;
    async fn apply_plugin_settings(
        &self,
        set: &[PluginSettingRecord],
        secrets: &[SecretWrite],
    ) -> StoreResult<()>;
}

/// Legacy alert notification channels, keyed by (org, uid).
#[async_trait]
pub trait NotifierStore: Send + Sync {
    async fn notifiers(&self, org: OrgId) -> StoreResult<Vec<NotifierRecord>>;
    /// Every org's channels (provisioning compares against them).
    async fn all_notifiers(&self) -> StoreResult<Vec<NotifierRecord>>;
    /// Upserts by (org, uid) (a new one gets an id) and deletes by (org, uid).
    async fn apply_notifiers(
        &self,
        set: &[NotifierRecord],
        delete: &[(OrgId, String)],
        secrets: &[SecretWrite],
    ) -> StoreResult<()>;
}

/// Custom RBAC roles, keyed by (org, uid); global roles live in org 0.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Every role of every org (the in-memory catalog loads them all).
    async fn roles(&self) -> StoreResult<Vec<RoleRecord>>;
    async fn role(&self, org: OrgId, uid: &str) -> StoreResult<Option<RoleRecord>>;
    /// Creates a role; `Conflict("uid" | "name")` when the org already has one.
    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()>;
    /// Replaces the role's definition if its stored version is still `expected_version`
    /// (`Stale("version")` otherwise), keeping its assignments and basic-role grants.
    async fn update_role(&self, role: &RoleRecord, expected_version: u64) -> StoreResult<()>;
    /// Deletes the role with its assignments; the row if it existed.
    async fn delete_role(&self, org: OrgId, uid: &str) -> StoreResult<Option<RoleRecord>>;
    /// Provisioning: upserts (keeping API assignments) and deletes by (org, uid) in one unit.
    async fn apply_roles(&self, set: &[RoleRecord], delete: &[(OrgId, String)]) -> StoreResult<()>;
    /// Assigns the role to a user; `NotFound` when the role does not exist; `false` when
    /// it already was assigned.
    async fn assign_role(&self, org: OrgId, uid: &str, user: UserId) -> StoreResult<bool>;
    /// Removes the assignment (by id, and by login for provisioned ones); `false` when
    /// there was none.
    async fn unassign_role(
        &self,
        org: OrgId,
        uid: &str,
        user: UserId,
        login: &str,
    ) -> StoreResult<bool>;
    /// Grants or revokes the role to a basic role (`Viewer`, `Editor`, `Admin`,
    /// `Grafana Admin`); `false` when nothing changed.
    async fn set_basic_grant(
        &self,
        org: OrgId,
        uid: &str,
        basic: &str,
        granted: bool,
    ) -> StoreResult<bool>;
}

/// The last reload of each provisioning kind.
#[async_trait]
pub trait ProvisioningRunStore: Send + Sync {
    async fn provisioning_runs(&self) -> StoreResult<Vec<ProvisioningRun>>;
    async fn put_provisioning_run(&self, run: &ProvisioningRun) -> StoreResult<()>;
}

/// What a node may hold in memory and must reload when any node changes it (several nodes
/// on one database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Custom roles, their assignments and basic-role grants (the role catalog).
    Roles,
    /// Runtime settings overrides.
    Settings,
    /// Data keys: the active one, re-wraps, destroyed ones.
    DataKeys,
    /// The stored license token.
    License,
    /// `ldap.toml` was reloaded on some node.
    Ldap,
    /// Anything may have changed (a listener reconnected and notifications were lost).
    All,
}

impl Topic {
    pub const EACH: [Topic; 5] = [
        Topic::Roles,
        Topic::Settings,
        Topic::DataKeys,
        Topic::License,
        Topic::Ldap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Roles => "roles",
            Topic::Settings => "settings",
            Topic::DataKeys => "data_keys",
            Topic::License => "license",
            Topic::Ldap => "ldap",
            Topic::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Self::EACH.into_iter().find(|t| t.as_str() == s)
    }
}

/// Background jobs that must run on one node at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    LicenseRenewal,
    Reencryption,
    Provisioning,
    DashboardPolling,
    SessionPurge,
}

impl Job {
    /// A stable number per job (the PostgreSQL advisory lock key).
    pub fn key(self) -> i64 {
        0x746f_6c6c_0000 + self as i64
    }
}

/// Held while a run-once job runs; dropping it lets another node take the job.
pub struct JobLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl JobLock {
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self(Box::new(guard))
    }
}

/// Per-org and per-user quota limits, and the counts quotas need that no other method
/// gives cheaply.
#[async_trait]
pub trait QuotaStore: Send + Sync {
    /// The limits stored for an org or a user (none: `[quota]` applies).
    async fn quotas(&self, owner: QuotaOwner) -> StoreResult<Vec<QuotaRecord>>;
    /// Creates or replaces the limit of one target of one owner (`NotFound` when the org
    /// or user does not exist).
    async fn set_quota(&self, quota: &QuotaRecord) -> StoreResult<()>;
    /// How many members an org has (service accounts included, as Grafana counts).
    async fn org_member_count(&self, org: OrgId) -> StoreResult<u64>;
}

/// Every capability of a backend, and its health.
#[async_trait]
pub trait Store:
    UserStore
    + StatsStore
    + MetaStore
    + SessionStore
    + ApiKeyStore
    + EncryptionStore
    + DataSourceStore
    + SettingsStore
    + LicenseStore
    + DashboardStore
    + AlertStore
    + PluginSettingStore
    + NotifierStore
    + RoleStore
    + ProvisioningRunStore
    + QuotaStore
    + AuditStore
{
    /// A read and a write round trip (health checks).
    async fn healthy(&self) -> bool;
    /// Waits until every acknowledged write is durable (shutdown).
    async fn flush(&self) -> StoreResult<()>;
    /// The backend's name, for logs and health.
    fn backend(&self) -> &'static str;
    /// Physical flushes so far (shows group commit: many writes, fewer flushes); 0 for a
    /// backend that does not flush itself.
    fn flush_count(&self) -> u64;
    /// Write and flush latencies (`None`: the backend's commits are the database's, timed
    /// by the database).
    fn latency(&self) -> Option<durability::StoreLatency>;
    /// Changes made by any node, as they commit (the writes of roles, settings overrides,
    /// data keys and the license announce their topic inside their own transaction), and
    /// `Topic::All` whenever the stream was interrupted. `None`: a single-node backend.
    async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<Topic>>>;
    /// A counter per topic that every announcing write increments (the slow safety-net
    /// poll compares them).
    async fn change_epochs(&self) -> StoreResult<Vec<(Topic, i64)>>;
    /// Announces a change that is not a store write (an LDAP reload).
    async fn announce(&self, topic: Topic) -> StoreResult<()>;
    /// Takes the job's lock if no node holds it; held until the returned lock is dropped
    /// or the node dies.
    async fn try_job_lock(&self, job: Job) -> StoreResult<Option<JobLock>>;
    /// Every record, as of one point in time (moving data between backends, backups):
    /// writes made while it runs are either wholly in it or not at all. A scan: only on
    /// the backup request, never on an ordinary one. sled pauses writers for the scan;
    /// PostgreSQL reads in one REPEATABLE READ transaction and pauses nobody.
    async fn export(&self) -> StoreResult<Dump>;
    /// Writes a dump in one unit, keeping ids, times and ciphertexts; `replace` empties
    /// the store first (otherwise the store must be empty). Sequences continue after the
    /// highest imported ids; counts and reference counts follow the imported rows.
    async fn import(&self, dump: &Dump, replace: bool) -> StoreResult<()>;
}

/// Opens the configured backend: the embedded sled database in `data_path`, or the
/// PostgreSQL database `[database]` names.
pub async fn open(data_path: &Path, db: &crate::config::Database) -> StoreResult<Arc<dyn Store>> {
    match db.kind {
        crate::config::DatabaseType::Sled => {
            let dir = data_path.join("tollgate.db");
            create_private_dir(&dir).or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(StoreError::Io(format!(
                    "cannot create {}: {e}",
                    dir.display()
                ))),
            })?;
            let store = sled_store::SledStore::open_with_cache(&dir, db.cache_mb * 1024 * 1024)?;
            Ok(Arc::new(store))
        }
        crate::config::DatabaseType::Postgres => {
            Ok(Arc::new(pg_store::PgStore::connect(db).await?))
        }
    }
}

/// At a clean stop of the server: the embedded store's shutdown checkpoint
/// ([`sled_store::checkpoint`]), once the server's own handle is released (tried for up to
/// `wait`). `Ok(false)` when nothing was done (PostgreSQL needs none; or the handle was
/// still held).
pub async fn checkpoint(
    data_path: &Path,
    db: &crate::config::Database,
    wait: std::time::Duration,
) -> StoreResult<bool> {
    if db.kind != crate::config::DatabaseType::Sled {
        return Ok(false);
    }
    let dir = data_path.join("tollgate.db");
    let deadline = std::time::Instant::now() + wait;
    loop {
        let d = dir.clone();
        let done = tokio::task::spawn_blocking(move || sled_store::checkpoint(&d))
            .await
            .map_err(|e| StoreError::Io(format!("checkpoint task failed: {e}")))??;
        if done || std::time::Instant::now() >= deadline {
            return Ok(done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The embedded store in a data folder, whatever the configuration says (migration from
/// sled to PostgreSQL, tools).
pub async fn open_sled(data_path: &Path) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(sled_store::SledStore::open(
        &data_path.join("tollgate.db"),
    )?))
}

#[cfg(test)]
pub(crate) async fn open_sled_for_tests(path: &Path) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(sled_store::SledStore::open(path)?))
}

/// Files and folders under `root` (two levels deep) that users other than the owner may
/// read, write or enter: the start-up warning names them.
pub fn open_to_others(root: &Path) -> Vec<std::path::PathBuf> {
    #[cfg(unix)]
    fn walk(dir: &Path, depth: u8, out: &mut Vec<std::path::PathBuf>) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::symlink_metadata(dir) else {
            return;
        };
        if meta.permissions().mode() & 0o007 != 0 {
            out.push(dir.to_path_buf());
        }
        if !meta.is_dir() || depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            walk(&p, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    #[cfg(unix)]
    walk(root, 2, &mut out);
    #[cfg(not(unix))]
    let _ = root;
    out
}

/// Creates the data folder (and parents) readable by its owner only when it does not exist
/// yet; an existing folder keeps its mode.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}
