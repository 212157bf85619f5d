//! The store contract suite: one set of tests every backend must pass (in the style of
//! Garage's `src/db/test.rs`).
//!
//! A backend's own test module calls [`run_all`] with a function that opens a fresh, EMPTY
//! store (no users, no orgs, no keys); every test gets its own. The tests only use the
//! traits of `store/mod.rs` and assert what their documentation promises: uniqueness rules,
//! compare-and-swap answers, narrow updates, the counters of [`Counts`], reference counts of
//! DEKs, and that org-owned records stay apart per org. Times are fixed numbers passed in,
//! as the contract says (the backend never reads the clock).
//!
//! Where the documentation leaves a choice open (the order rows are listed in, whether a
//! service-account token counts as an API key in [`Counts`]), the tests do not depend on
//! it: lists are compared as sets or after sorting, counts are compared before and after.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::Arc;

use super::*;
use crate::crypto::PasswordHash;
use crate::domain::{OrgId, OrgRole, UserId};

/// Runs every contract test against fresh stores from `fresh` (each test gets its own empty
/// store).
pub async fn run_all<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    // Users and orgs.
    users_create_and_unique(fresh().await).await;
    users_orgs(fresh().await).await;
    users_update_profile(fresh().await).await;
    users_narrow_updates(fresh().await).await;
    users_upgrade_password_is_cas(fresh().await).await;
    users_set_memberships(fresh().await).await;
    users_last_grafana_admin(fresh().await).await;
    users_concurrent_admin_revocations(fresh().await).await;
    users_last_enabled_admin(fresh().await).await;
    users_concurrent_admin_disables(fresh().await).await;
    users_delete(fresh().await).await;
    users_search(fresh().await).await;
    users_touch_last_seen(fresh().await).await;
    hot_rows_follow_every_write(fresh().await).await;
    hot_rows_follow_writes_under_concurrent_reads(fresh().await).await;
    users_set_current_org(fresh().await).await;
    users_set_current_org_races_membership_changes(fresh().await).await;
    orgs_create_and_names(fresh().await).await;
    orgs_search(fresh().await).await;
    orgs_rename(fresh().await).await;
    orgs_add_membership(fresh().await).await;
    orgs_set_membership_role(fresh().await).await;
    orgs_remove_membership(fresh().await).await;
    orgs_last_admin_races(fresh().await).await;
    orgs_members(fresh().await).await;
    orgs_delete(fresh().await).await;
    orgs_delete_moves_current_org(fresh().await).await;
    orgs_address(fresh().await).await;
    // Stats.
    stats_counts(fresh().await).await;
    stats_activity(fresh().await).await;
    stats_activity_series_sign_ins(fresh().await).await;
    stats_activity_series_active_users(fresh().await).await;
    // Meta.
    meta_get_set(fresh().await).await;
    meta_init_once(fresh().await).await;
    coordination(fresh().await).await;
    export_is_one_point_in_time(fresh().await).await;
    // Sessions.
    sessions_create_and_lookup(fresh().await).await;
    sessions_rotate(fresh().await).await;
    sessions_revoke(fresh().await).await;
    sessions_purge(fresh().await).await;
    // API keys and service accounts.
    api_keys_create_list_delete(fresh().await).await;
    api_keys_names_unique(fresh().await).await;
    api_keys_delete_service_account(fresh().await).await;
    // Encryption.
    encryption_deks(fresh().await).await;
    encryption_destroy_dek(fresh().await).await;
    encryption_secret_refcounts(fresh().await).await;
    encryption_refcounts_across_writers(fresh().await).await;
    encryption_secrets_paging(fresh().await).await;
    encryption_commit_reencrypt(fresh().await).await;
    // Datasources.
    datasources_create_and_update(fresh().await).await;
    datasources_unique_per_org(fresh().await).await;
    datasources_delete_by_org(fresh().await).await;
    // Settings and license.
    settings_overrides(fresh().await).await;
    license_and_renewal(fresh().await).await;
    // Dashboards, folders and alerts.
    dashboards_apply(fresh().await).await;
    dashboards_alerts_keep_id_and_pause(fresh().await).await;
    dashboards_two_orgs_same_uid(fresh().await).await;
    alerts_pause_per_org(fresh().await).await;
    // Plugin settings and notifiers.
    plugin_settings_per_org(fresh().await).await;
    notifiers_per_org(fresh().await).await;
    // Roles.
    roles_create_and_conflicts(fresh().await).await;
    roles_update_version_cas(fresh().await).await;
    roles_delete_removes_assignments(fresh().await).await;
    roles_apply_keeps_api_assignments(fresh().await).await;
    roles_assign_and_unassign(fresh().await).await;
    roles_basic_grants(fresh().await).await;
    roles_two_orgs_same_uid(fresh().await).await;
    roles_concurrent_assign_many_roles(fresh().await).await;
    roles_concurrent_assign_many_users(fresh().await).await;
    // Provisioning runs and the store itself.
    provisioning_runs(fresh().await).await;
    quotas_per_owner(fresh().await).await;
    store_health(fresh().await).await;
    // Audit log.
    audit_append_numbers_and_chains(fresh().await).await;
    audit_change_records_its_event(fresh().await).await;
    audit_failed_change_records_nothing(fresh().await).await;
    audit_unscoped_and_best_effort_record_nothing(fresh().await).await;
    audit_concurrent_writes_chain(fresh().await).await;
    audit_each_change_records(fresh().await).await;
    audit_events_query(fresh().await).await;
    audit_prune(fresh().await).await;
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const MAIN: OrgId = OrgId(1);
const OTHER: OrgId = OrgId(2);
/// Global roles live in org 0.
const GLOBAL: OrgId = OrgId(0);

/// A local user with defaults: email `<login>@example.org`, name `User <login>`.
pub(crate) fn user(login: &str) -> UserRecord {
    UserRecord {
        id: 0,
        uid: format!("uid-{login}"),
        login: login.to_string(),
        email: format!("{login}@example.org"),
        name: format!("User {login}"),
        is_admin: false,
        is_disabled: false,
        is_service_account: false,
        password: None,
        org_id: 0,
        memberships: Vec::new(),
        theme: String::new(),
        auth_module: String::new(),
        created: 10,
        updated: 10,
        last_seen_at: None,
    }
}

fn grafana_admin(login: &str) -> UserRecord {
    UserRecord {
        is_admin: true,
        ..user(login)
    }
}

fn service_account(login: &str) -> UserRecord {
    UserRecord {
        is_service_account: true,
        ..user(login)
    }
}

fn in_main(role: OrgRole) -> NewMembership {
    NewMembership::Existing(MAIN, role)
}

fn membership(org: OrgId, role: OrgRole) -> Membership {
    Membership {
        org_id: org.0,
        role: role.to_byte(),
    }
}

async fn main_org(s: &Arc<dyn Store>) {
    s.ensure_org(MAIN, "Main Org.", 0)
        .await
        .expect("ensure the main org");
}

async fn other_org(s: &Arc<dyn Store>) {
    s.ensure_org(OTHER, "Other Org.", 0)
        .await
        .expect("ensure the second org");
}

/// Creates `u` in the main org with `role`.
async fn add(s: &Arc<dyn Store>, u: UserRecord, role: OrgRole) -> UserRecord {
    let login = u.login.clone();
    s.create_user(u, in_main(role))
        .await
        .unwrap_or_else(|e| panic!("create user {login}: {e}"))
}

async fn reload(s: &Arc<dyn Store>, u: &UserRecord) -> UserRecord {
    s.user(u.user_id())
        .await
        .unwrap()
        .map(Arc::unwrap_or_clone)
        .unwrap_or_else(|| panic!("user {} is gone", u.login))
}

async fn counts(s: &Arc<dyn Store>) -> Counts {
    s.counts().await.expect("counts")
}

/// The error of a call that must fail.
fn err<T: Debug>(r: StoreResult<T>) -> StoreError {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

fn set<T: Ord, I: IntoIterator<Item = T>>(items: I) -> BTreeSet<T> {
    items.into_iter().collect()
}

fn session(u: &UserRecord, token: u8, created_ms: i64, seen_ms: i64) -> SessionRecord {
    SessionRecord {
        id: 0,
        user_id: u.id,
        token_hash: [token; 32],
        prev_token_hash: None,
        prev_valid_until_ms: 0,
        client_ip: "192.0.2.1".into(),
        user_agent: "contract-suite".into(),
        auth_module: String::new(),
        created_ms,
        seen_ms,
        rotated_ms: created_ms,
        revoked_ms: None,
    }
}

async fn new_session(s: &Arc<dyn Store>, rec: SessionRecord) -> SessionRecord {
    s.create_session(rec).await.expect("create session")
}

fn api_key(org: OrgId, name: &str, sa: Option<&UserRecord>, hash: u8) -> ApiKeyRecord {
    ApiKeyRecord {
        id: 0,
        org_id: org.0,
        name: name.into(),
        role: OrgRole::Viewer.to_byte(),
        hash: [hash; 32],
        expires: None,
        created: 100,
        last_used: None,
        service_account_id: sa.map(|u| u.id),
    }
}

async fn new_key(s: &Arc<dyn Store>, key: ApiKeyRecord) -> ApiKeyRecord {
    let name = key.name.clone();
    s.create_api_key(key)
        .await
        .unwrap_or_else(|e| panic!("create api key {name}: {e}"))
}

fn dek(id: u32, created: i64) -> DekRecord {
    DekRecord {
        id,
        state: DekState::Active,
        created,
        retired: None,
        kek_id: "kek-1".into(),
        wrapped: vec![0xAB; 16],
        reserved: 0,
    }
}

/// Installs two DEKs: the first retired at 200, the second active. Returns (retired, active).
async fn two_deks(s: &Arc<dyn Store>) -> (u32, u32) {
    let a = s.allocate_dek_id().await.unwrap();
    s.install_active_dek(dek(a, 100)).await.unwrap();
    let b = s.allocate_dek_id().await.unwrap();
    s.install_active_dek(dek(b, 200)).await.unwrap();
    (a, b)
}

fn sealed(dek_id: u32, bytes: &[u8]) -> SealedSecret {
    SealedSecret {
        dek_id,
        ciphertext: bytes.to_vec(),
    }
}

fn put(key: &str, dek_id: u32, bytes: &[u8]) -> SecretWrite {
    SecretWrite {
        key: key.into(),
        value: Some(sealed(dek_id, bytes)),
    }
}

fn del(key: &str) -> SecretWrite {
    SecretWrite {
        key: key.into(),
        value: None,
    }
}

async fn refs(s: &Arc<dyn Store>, dek_id: u32) -> u64 {
    s.dek_references(dek_id).await.expect("dek references")
}

async fn secret(s: &Arc<dyn Store>, key: &str) -> Option<Vec<u8>> {
    s.secret(key).await.expect("secret")
}

fn datasource(org: OrgId, name: &str, uid: &str) -> DataSourceRecord {
    DataSourceRecord {
        id: 0,
        uid: uid.into(),
        org_id: org.0,
        name: name.into(),
        ds_type: "prometheus".into(),
        access: "proxy".into(),
        url: "http://prometheus:9090".into(),
        user: String::new(),
        database: String::new(),
        basic_auth: false,
        basic_auth_user: String::new(),
        with_credentials: false,
        is_default: false,
        json_data: "{}".into(),
        secure_fields: Vec::new(),
        version: 0,
        read_only: false,
        created: 100,
        updated: 100,
    }
}

async fn new_ds(s: &Arc<dyn Store>, ds: DataSourceRecord) -> DataSourceRecord {
    let name = ds.name.clone();
    s.create_datasource(ds, &[])
        .await
        .unwrap_or_else(|e| panic!("create datasource {name}: {e}"))
}

fn setting(section: &str, key: &str, value: Option<&str>, secret: bool) -> SettingOverride {
    SettingOverride {
        section: section.into(),
        key: key.into(),
        value: value.map(String::from),
        secret,
    }
}

fn dashboard(org: OrgId, uid: &str, tags: &[&str]) -> DashboardRecord {
    DashboardRecord {
        id: 0,
        uid: uid.into(),
        org_id: org.0,
        title: format!("Dashboard {uid}"),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        folder_uid: String::new(),
        version: 0,
        json: "{}".into(),
        provider: "default".into(),
        file: format!("{uid}.json"),
        alert_panels: Vec::new(),
        created: 100,
        updated: 100,
    }
}

fn folder(org: OrgId, uid: &str) -> FolderRecord {
    FolderRecord {
        id: 0,
        uid: uid.into(),
        org_id: org.0,
        title: format!("Folder {uid}"),
        created: 100,
        updated: 100,
    }
}

fn alert(org: OrgId, dashboard_uid: &str, panel: u64) -> AlertRecord {
    AlertRecord {
        id: 0,
        org_id: org.0,
        dashboard_uid: dashboard_uid.into(),
        dashboard_id: 0,
        panel_id: panel,
        name: format!("{dashboard_uid} panel {panel}"),
        state: "pending".into(),
        paused: false,
        new_state_date: 100,
    }
}

fn upsert(d: DashboardRecord, alerts: Vec<AlertRecord>) -> DashboardBatch {
    DashboardBatch {
        upserts: vec![(d, alerts)],
        ..DashboardBatch::default()
    }
}

fn delete_dashboard(org: OrgId, uid: &str) -> DashboardBatch {
    DashboardBatch {
        deletes: vec![(org.0, uid.into())],
        ..DashboardBatch::default()
    }
}

async fn apply(s: &Arc<dyn Store>, batch: DashboardBatch) {
    s.apply_dashboards(&batch).await.expect("apply dashboards");
}

async fn dash(s: &Arc<dyn Store>, org: OrgId, uid: &str) -> DashboardRecord {
    s.dashboard(org, uid)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("dashboard {org}/{uid} is missing"))
}

/// The org's alerts by panel, for the one dashboard the tests give each org.
async fn alerts_by_panel(s: &Arc<dyn Store>, org: OrgId) -> Vec<(u64, AlertRecord)> {
    let mut out: Vec<_> = s
        .alerts(org)
        .await
        .expect("alerts")
        .into_iter()
        .map(|a| (a.panel_id, a))
        .collect();
    out.sort_by_key(|(p, _)| *p);
    out
}

fn plugin(org: OrgId, id: &str, enabled: bool) -> PluginSettingRecord {
    PluginSettingRecord {
        org_id: org.0,
        plugin_id: id.into(),
        enabled,
        pinned: false,
        json_data: "{}".into(),
        secure_fields: Vec::new(),
        version: 1,
        updated: 100,
    }
}

async fn plugins(s: &Arc<dyn Store>, org: OrgId) -> Vec<PluginSettingRecord> {
    let mut out = s.plugin_settings(org).await.expect("plugin settings");
    out.sort_by(|a, b| a.plugin_id.cmp(&b.plugin_id));
    out
}

fn notifier(org: OrgId, uid: &str, name: &str) -> NotifierRecord {
    NotifierRecord {
        id: 0,
        uid: uid.into(),
        org_id: org.0,
        name: name.into(),
        kind: "email".into(),
        is_default: false,
        send_reminder: false,
        frequency: String::new(),
        disable_resolve_message: false,
        settings: "{}".into(),
        secure_fields: Vec::new(),
        created: 100,
        updated: 100,
    }
}

async fn notifiers(s: &Arc<dyn Store>, org: OrgId) -> Vec<NotifierRecord> {
    let mut out = s.notifiers(org).await.expect("notifiers");
    out.sort_by(|a, b| a.uid.cmp(&b.uid));
    out
}

fn role(org: OrgId, uid: &str, name: &str) -> RoleRecord {
    RoleRecord {
        uid: uid.into(),
        name: name.into(),
        display_name: name.into(),
        description: String::new(),
        group: "Contract".into(),
        version: 1,
        global: org == GLOBAL,
        org_id: org.0,
        permissions: vec![("users:read".into(), "users:*".into())],
        basic_roles: Vec::new(),
        users: Vec::new(),
        user_ids: Vec::new(),
        updated: 100,
    }
}

async fn new_role(s: &Arc<dyn Store>, r: RoleRecord) {
    s.create_role(&r)
        .await
        .unwrap_or_else(|e| panic!("create role {}/{}: {e}", r.org_id, r.uid));
}

async fn get_role(s: &Arc<dyn Store>, org: OrgId, uid: &str) -> RoleRecord {
    s.role(org, uid)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("role {org}/{uid} is missing"))
}

// ---------------------------------------------------------------------------------------
// Users and orgs
// ---------------------------------------------------------------------------------------

pub async fn users_create_and_unique(s: Arc<dyn Store>) {
    main_org(&s).await;

    // The id, org and memberships of the given record are ignored.
    let mut given = user("Alice");
    given.org_id = 7;
    given.memberships = vec![membership(OrgId(7), OrgRole::Admin)];
    let alice = s
        .create_user(given, in_main(OrgRole::Viewer))
        .await
        .unwrap();
    assert_ne!(alice.id, 0, "a fresh id");
    assert_eq!(alice.login, "Alice", "the login as given");
    assert_eq!(alice.uid, "uid-Alice");
    assert_eq!(alice.org_id, 1, "the current org is the membership's");
    assert_eq!(
        alice.memberships,
        vec![membership(MAIN, OrgRole::Viewer)],
        "only the requested membership"
    );
    let bob = add(&s, user("bob"), OrgRole::Editor).await;
    assert_ne!(alice.id, bob.id, "ids are fresh");

    assert_eq!(
        s.user(alice.user_id()).await.unwrap().as_deref(),
        Some(&alice)
    );
    let id_of = |u: Option<UserRecord>| u.map(|u| u.id);
    assert_eq!(
        id_of(s.user_by_uid("uid-Alice").await.unwrap()),
        Some(alice.id)
    );
    assert_eq!(
        id_of(s.user_by_login("aLICE").await.unwrap()),
        Some(alice.id),
        "login lookup is case-insensitive"
    );
    assert_eq!(
        id_of(s.user_by_email("ALICE@Example.ORG").await.unwrap()),
        Some(alice.id),
        "email lookup is case-insensitive"
    );
    assert!(s.user_by_login("carol").await.unwrap().is_none());
    assert!(s
        .user_by_email("carol@example.org")
        .await
        .unwrap()
        .is_none());
    assert!(s.user_by_uid("uid-carol").await.unwrap().is_none());
    assert!(s
        .user(UserId(alice.id + bob.id + 100))
        .await
        .unwrap()
        .is_none());

    let mut dup = user("ALICE");
    dup.email = "someone-else@example.org".into();
    dup.uid = "uid-dup-1".into();
    assert!(
        matches!(
            err(s.create_user(dup, in_main(OrgRole::Viewer)).await),
            StoreError::Conflict("login")
        ),
        "login is unique case-insensitively"
    );
    let mut dup = user("carol");
    dup.email = "Alice@EXAMPLE.org".into();
    assert!(
        matches!(
            err(s.create_user(dup, in_main(OrgRole::Viewer)).await),
            StoreError::Conflict("email")
        ),
        "email is unique case-insensitively"
    );
    assert!(
        s.user_by_login("carol").await.unwrap().is_none(),
        "a refused create writes nothing"
    );
    assert!(
        matches!(
            err(s
                .create_user(
                    user("dave"),
                    NewMembership::Existing(OrgId(9), OrgRole::Viewer)
                )
                .await),
            StoreError::OrgNotFound
        ),
        "a missing org"
    );
    assert!(s.user_by_login("dave").await.unwrap().is_none());

    // A user with an org of its own.
    let erin = s
        .create_user(
            user("erin"),
            NewMembership::NewOrg("Erin's org".into(), OrgRole::Admin),
        )
        .await
        .unwrap();
    assert_ne!(erin.org_id, 1, "a new org");
    assert_eq!(erin.role_in(OrgId(erin.org_id)), Some(OrgRole::Admin));
    assert_eq!(erin.memberships.len(), 1);
    let org = s
        .org(OrgId(erin.org_id))
        .await
        .unwrap()
        .expect("the new org");
    assert_eq!(org.name, "Erin's org");
    let c = counts(&s).await;
    assert_eq!((c.users, c.orgs), (3, 2), "three users in two orgs");
}

pub async fn users_orgs(s: Arc<dyn Store>) {
    assert!(
        s.org(MAIN).await.unwrap().is_none(),
        "an empty store has no org"
    );
    s.ensure_org(MAIN, "Main Org.", 100).await.unwrap();
    let org = s.org(MAIN).await.unwrap().expect("created");
    assert_eq!(
        (org.id, org.name.as_str(), org.created),
        (1, "Main Org.", 100)
    );
    s.ensure_org(MAIN, "Renamed", 200).await.unwrap();
    let again = s.org(MAIN).await.unwrap().expect("still there");
    assert_eq!(again, org, "ensure_org leaves an existing org alone");
    assert_eq!(counts(&s).await.orgs, 1);

    s.ensure_org(OrgId(5), "Five", 300).await.unwrap();
    assert_eq!(
        s.org(OrgId(5)).await.unwrap().map(|o| o.name),
        Some("Five".into())
    );
    assert_eq!(counts(&s).await.orgs, 2);

    // A new org of a user gets an id no existing org has.
    let u = s
        .create_user(
            user("solo"),
            NewMembership::NewOrg("Solo".into(), OrgRole::Admin),
        )
        .await
        .unwrap();
    assert!(
        ![1, 5].contains(&u.org_id),
        "a fresh org id, got {}",
        u.org_id
    );
    assert_eq!(
        s.org(MAIN).await.unwrap().map(|o| o.name),
        Some("Main Org.".into())
    );
    assert_eq!(
        s.org(OrgId(5)).await.unwrap().map(|o| o.name),
        Some("Five".into())
    );
    assert_eq!(counts(&s).await.orgs, 3);
}

pub async fn users_update_profile(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    add(&s, user("bob"), OrgRole::Viewer).await;

    let change = ProfileChange {
        email: Some("BOB@example.org".into()),
        ..ProfileChange::default()
    };
    assert!(
        matches!(
            err(s.update_profile(alice.user_id(), &change, 20).await),
            StoreError::Conflict("email")
        ),
        "another user's email, in another case"
    );
    let change = ProfileChange {
        login: Some("Bob".into()),
        name: Some("Not applied".into()),
        ..ProfileChange::default()
    };
    assert!(
        matches!(
            err(s.update_profile(alice.user_id(), &change, 20).await),
            StoreError::Conflict("login")
        ),
        "another user's login, in another case"
    );
    assert_eq!(
        reload(&s, &alice).await,
        alice,
        "a refused update changes nothing"
    );

    // Rename: only the login changes, and the old one is free.
    let change = ProfileChange {
        login: Some("alice2".into()),
        ..ProfileChange::default()
    };
    let renamed = s
        .update_profile(alice.user_id(), &change, 30)
        .await
        .unwrap();
    assert_eq!(renamed.login, "alice2");
    assert_eq!(
        (
            renamed.email.as_str(),
            renamed.name.as_str(),
            renamed.theme.as_str()
        ),
        ("alice@example.org", "User alice", ""),
        "unnamed fields are kept"
    );
    assert_eq!(renamed.memberships, alice.memberships);
    assert_eq!(renamed.updated, 30, "the caller's time");
    assert_eq!(reload(&s, &alice).await, renamed);
    assert!(
        s.user_by_login("alice").await.unwrap().is_none(),
        "the old login is unindexed"
    );
    assert_eq!(
        s.user_by_login("ALICE2").await.unwrap().map(|u| u.id),
        Some(alice.id)
    );
    let mut newcomer = user("alice");
    newcomer.email = "new-alice@example.org".into();
    newcomer.uid = "uid-new-alice".into();
    let newcomer = add(&s, newcomer, OrgRole::Viewer).await;
    assert_ne!(
        newcomer.id, alice.id,
        "the freed login is taken by someone else"
    );

    // A user's own login in another case is not a conflict.
    let change = ProfileChange {
        login: Some("Alice2".into()),
        ..ProfileChange::default()
    };
    let u = s
        .update_profile(alice.user_id(), &change, 40)
        .await
        .unwrap();
    assert_eq!(u.login, "Alice2");

    // A new email frees the old one.
    let change = ProfileChange {
        email: Some("a2@example.org".into()),
        ..ProfileChange::default()
    };
    let u = s
        .update_profile(alice.user_id(), &change, 50)
        .await
        .unwrap();
    assert_eq!(
        (u.login.as_str(), u.email.as_str()),
        ("Alice2", "a2@example.org")
    );
    assert!(s
        .user_by_email("alice@example.org")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        s.user_by_email("A2@EXAMPLE.org")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );

    // Name, theme and auth module; login and email stay.
    let change = ProfileChange {
        name: Some("Alice Two".into()),
        theme: Some("dark".into()),
        auth_module: Some("ldap".into()),
        ..ProfileChange::default()
    };
    let u = s
        .update_profile(alice.user_id(), &change, 60)
        .await
        .unwrap();
    assert_eq!(
        (
            u.login.as_str(),
            u.email.as_str(),
            u.name.as_str(),
            u.theme.as_str(),
            u.auth_module.as_str()
        ),
        ("Alice2", "a2@example.org", "Alice Two", "dark", "ldap")
    );
    assert_eq!(reload(&s, &alice).await, u);
}

pub async fn users_narrow_updates(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let h1 = PasswordHash::new("secret-1", 1000);
    let h2 = PasswordHash::new("secret-2", 1000);

    s.set_password(alice.user_id(), h1.clone(), 20)
        .await
        .unwrap();
    let u = reload(&s, &alice).await;
    assert_eq!(u.password.as_ref(), Some(&h1));
    assert_eq!(u.updated, 20, "the caller's time");
    assert!(!u.is_disabled);

    let u = s.set_disabled(alice.user_id(), true, 30).await.unwrap();
    assert!(u.is_disabled);
    assert_eq!(
        u.password.as_ref(),
        Some(&h1),
        "set_disabled keeps the password"
    );
    assert_eq!(u.updated, 30);
    assert_eq!(reload(&s, &alice).await, u);

    s.set_password(alice.user_id(), h2.clone(), 40)
        .await
        .unwrap();
    let u = reload(&s, &alice).await;
    assert!(u.is_disabled, "set_password keeps the disabled flag");
    assert_eq!(u.password.as_ref(), Some(&h2));

    let u = s.set_disabled(alice.user_id(), false, 50).await.unwrap();
    assert!(!u.is_disabled);
    assert_eq!(
        u.password.as_ref(),
        Some(&h2),
        "set_disabled keeps the password"
    );
    assert_eq!(
        (u.login.as_str(), u.email.as_str(), u.memberships.clone()),
        ("alice", "alice@example.org", alice.memberships.clone()),
        "nothing else changed"
    );

    let missing = UserId(alice.id + 1000);
    assert!(
        matches!(
            err(s.set_password(missing, h1.clone(), 60).await),
            StoreError::NotFound
        ),
        "set_password on a missing user"
    );
}

pub async fn users_upgrade_password_is_cas(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let weak = PasswordHash::new("secret", 1000);
    s.set_password(alice.user_id(), weak.clone(), 10)
        .await
        .unwrap();

    let strong = PasswordHash::new("secret", 2000);
    assert!(
        s.upgrade_password(alice.user_id(), &weak, strong.clone())
            .await
            .unwrap(),
        "the stored hash was the expected one"
    );
    assert_eq!(reload(&s, &alice).await.password, Some(strong.clone()));

    // A second upgrade computed from the old hash loses.
    let late = PasswordHash::new("secret", 3000);
    assert!(
        !s.upgrade_password(alice.user_id(), &weak, late)
            .await
            .unwrap(),
        "the stored hash changed meanwhile"
    );
    assert_eq!(
        reload(&s, &alice).await.password,
        Some(strong),
        "a lost compare-and-swap keeps the stored hash"
    );
}

pub async fn users_set_memberships(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let c = counts(&s).await;
    assert_eq!((c.viewers, c.admins), (1, 0));

    let u = s
        .set_memberships(
            alice.user_id(),
            &[(OTHER, OrgRole::Admin), (MAIN, OrgRole::Editor)],
            20,
        )
        .await
        .unwrap();
    assert_eq!(u.role_in(MAIN), Some(OrgRole::Editor));
    assert_eq!(u.role_in(OTHER), Some(OrgRole::Admin));
    assert_eq!(u.org_id, 1, "still a member of the current org: it stays");
    assert_eq!(reload(&s, &alice).await, u);
    let c = counts(&s).await;
    assert_eq!(
        (c.users, c.admins, c.editors, c.viewers, c.no_role),
        (1, 1, 0, 0, 0),
        "counted by the highest role"
    );

    let u = s
        .set_memberships(alice.user_id(), &[(OTHER, OrgRole::Viewer)], 30)
        .await
        .unwrap();
    assert_eq!(u.org_id, 2, "the current org moves to the first membership");
    assert_eq!(u.role_in(MAIN), None);
    let c = counts(&s).await;
    assert_eq!((c.admins, c.viewers), (0, 1));

    assert!(
        matches!(
            err(s
                .set_memberships(
                    alice.user_id(),
                    &[(MAIN, OrgRole::Admin), (OrgId(9), OrgRole::Admin)],
                    40
                )
                .await),
            StoreError::OrgNotFound
        ),
        "a missing org"
    );
    assert_eq!(
        reload(&s, &alice).await,
        u,
        "a refused change changes nothing"
    );

    let u = s
        .set_memberships(alice.user_id(), &[(MAIN, OrgRole::None)], 50)
        .await
        .unwrap();
    assert_eq!(u.org_id, 1);
    let c = counts(&s).await;
    assert_eq!(
        (c.users, c.viewers, c.no_role),
        (1, 0, 1),
        "role None is no_role"
    );
}

pub async fn users_last_grafana_admin(s: Arc<dyn Store>) {
    main_org(&s).await;
    let root = add(&s, grafana_admin("root"), OrgRole::Admin).await;
    assert!(root.is_admin);
    assert_eq!(counts(&s).await.grafana_admins, 1);

    assert!(
        matches!(
            err(s.set_grafana_admin(root.user_id(), false, 10).await),
            StoreError::LastAdmin
        ),
        "the only Grafana Admin cannot lose the flag"
    );
    assert!(
        matches!(
            err(s.delete_user(root.user_id()).await),
            StoreError::LastAdmin
        ),
        "the only Grafana Admin cannot be deleted"
    );
    assert!(
        reload(&s, &root).await.is_admin,
        "still there and still admin"
    );

    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    let b = s.set_grafana_admin(bob.user_id(), true, 20).await.unwrap();
    assert!(b.is_admin);
    assert_eq!(counts(&s).await.grafana_admins, 2);

    let r = s
        .set_grafana_admin(root.user_id(), false, 30)
        .await
        .unwrap();
    assert!(!r.is_admin, "allowed with two admins");
    assert_eq!(counts(&s).await.grafana_admins, 1);
    assert!(
        matches!(
            err(s.delete_user(bob.user_id()).await),
            StoreError::LastAdmin
        ),
        "bob is now the last one"
    );

    s.set_grafana_admin(root.user_id(), true, 40).await.unwrap();
    let gone = s.delete_user(bob.user_id()).await.unwrap();
    assert_eq!(
        gone.map(|u| u.login),
        Some("bob".into()),
        "allowed with two admins"
    );
    let c = counts(&s).await;
    assert_eq!((c.users, c.grafana_admins), (1, 1));
}

/// Every Grafana Admin revoked at once, round after round: exactly one keeps the flag
/// (its revocation answers `LastAdmin`), never none.
pub async fn users_concurrent_admin_revocations(s: Arc<dyn Store>) {
    main_org(&s).await;
    let mut admins = Vec::new();
    for i in 0..6 {
        admins.push(add(&s, grafana_admin(&format!("admin{i}")), OrgRole::Admin).await);
    }
    for round in 0..5 {
        let mut tasks = Vec::new();
        for a in &admins {
            let (s, id) = (s.clone(), a.user_id());
            tasks.push(tokio::spawn(async move {
                s.set_grafana_admin(id, false, 100 + round).await
            }));
        }
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(u) => assert!(!u.is_admin),
                Err(StoreError::LastAdmin) => refused += 1,
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        let left = counts(&s).await.grafana_admins;
        assert_eq!((left, refused), (1, 1), "round {round}");
        for a in &admins {
            s.set_grafana_admin(a.user_id(), true, 200 + round)
                .await
                .unwrap();
        }
    }
}

/// A disabled Grafana Admin cannot administer: the last *enabled* one may not be
/// disabled, demoted or deleted; a disabled admin may be demoted or deleted freely.
pub async fn users_last_enabled_admin(s: Arc<dyn Store>) {
    main_org(&s).await;
    let a = add(&s, grafana_admin("a"), OrgRole::Admin).await;
    let b = add(&s, grafana_admin("b"), OrgRole::Admin).await;
    let disabled = s.set_disabled(b.user_id(), true, 10).await.unwrap();
    assert!(disabled.is_disabled && disabled.is_admin);
    assert!(matches!(
        s.set_disabled(a.user_id(), true, 11).await,
        Err(StoreError::LastAdmin)
    ));
    assert!(matches!(
        s.set_grafana_admin(a.user_id(), false, 11).await,
        Err(StoreError::LastAdmin)
    ));
    assert!(matches!(
        s.delete_user(a.user_id()).await,
        Err(StoreError::LastAdmin)
    ));
    assert!(!reload(&s, &a).await.is_disabled, "refusals change nothing");
    // Re-enabled, b counts again: a may go.
    s.set_disabled(b.user_id(), false, 12).await.unwrap();
    s.set_disabled(a.user_id(), true, 13).await.unwrap();
    // The disabled a is not what keeps the server administrable.
    let demoted = s.set_grafana_admin(a.user_id(), false, 14).await.unwrap();
    assert!(!demoted.is_admin);
    s.set_grafana_admin(a.user_id(), true, 15).await.unwrap();
    assert!(s.delete_user(a.user_id()).await.unwrap().is_some());
    assert!(matches!(
        s.set_disabled(b.user_id(), true, 16).await,
        Err(StoreError::LastAdmin)
    ));
    // Disabling a plain user, or one already disabled, is always fine.
    let u = add(&s, user("plain"), OrgRole::Viewer).await;
    assert!(
        s.set_disabled(u.user_id(), true, 17)
            .await
            .unwrap()
            .is_disabled
    );
    assert!(
        s.set_disabled(u.user_id(), true, 18)
            .await
            .unwrap()
            .is_disabled
    );
}

/// Six admins disabled at once, five rounds: exactly one stays enabled each time.
pub async fn users_concurrent_admin_disables(s: Arc<dyn Store>) {
    main_org(&s).await;
    let mut admins = Vec::new();
    for i in 0..6 {
        admins.push(add(&s, grafana_admin(&format!("admin{i}")), OrgRole::Admin).await);
    }
    for round in 0..5 {
        let mut tasks = Vec::new();
        for (i, a) in admins.iter().enumerate() {
            let (s, id) = (s.clone(), a.user_id());
            // Half disable, half are demoted: both must keep one enabled admin.
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    s.set_disabled(id, true, 100 + round).await
                } else {
                    s.set_grafana_admin(id, false, 100 + round).await
                }
            }));
        }
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => {}
                Err(StoreError::LastAdmin) => refused += 1,
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        let mut enabled = 0;
        for a in &admins {
            let u = reload(&s, a).await;
            if u.is_admin && !u.is_disabled {
                enabled += 1;
            }
        }
        assert_eq!((enabled, refused), (1, 1), "round {round}");
        for a in &admins {
            s.set_disabled(a.user_id(), false, 200 + round)
                .await
                .unwrap();
            s.set_grafana_admin(a.user_id(), true, 200 + round)
                .await
                .unwrap();
        }
    }
}

pub async fn users_delete(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Editor).await;
    add(&s, user("bob"), OrgRole::Viewer).await;
    let c = counts(&s).await;
    assert_eq!((c.users, c.editors, c.viewers), (2, 1, 1));

    let gone = s.delete_user(alice.user_id()).await.unwrap();
    assert_eq!(gone, Some(alice.clone()), "the deleted row");
    assert!(
        s.delete_user(alice.user_id()).await.unwrap().is_none(),
        "already gone"
    );
    assert!(s.user(alice.user_id()).await.unwrap().is_none());
    assert!(s.user_by_login("alice").await.unwrap().is_none());
    assert!(s
        .user_by_email("alice@example.org")
        .await
        .unwrap()
        .is_none());
    assert!(s.user_by_uid("uid-alice").await.unwrap().is_none());
    let c = counts(&s).await;
    assert_eq!((c.users, c.editors, c.viewers), (1, 0, 1));

    let again = add(&s, user("alice"), OrgRole::Admin).await;
    assert_ne!(again.id, alice.id, "a new user, not the old row");
    let c = counts(&s).await;
    assert_eq!(
        (c.users, c.admins),
        (2, 1),
        "login, email and uid were freed"
    );
}

pub async fn users_search(s: Arc<dyn Store>) {
    main_org(&s).await;
    for login in ["carol", "alice", "bob", "alfred"] {
        add(&s, user(login), OrgRole::Viewer).await;
    }
    let mut dave = user("dave");
    dave.email = "DAVE@Corp.Example".into();
    dave.name = "Zed Zulu".into();
    add(&s, dave, OrgRole::Viewer).await;
    add(&s, service_account("sa-alpha"), OrgRole::Viewer).await;

    let logins = |p: &UserPage| p.users.iter().map(|u| u.login.clone()).collect::<Vec<_>>();
    let search = |q: &'static str, offset: u64, limit: u64, sa: bool| {
        let s = s.clone();
        async move { s.search_users(q, offset, limit, sa).await.expect("search") }
    };

    let p = search("", 0, 10, false).await;
    assert_eq!(
        logins(&p),
        ["alfred", "alice", "bob", "carol", "dave"],
        "ordered by login, no service accounts"
    );
    assert_eq!(p.total, 5);
    let p = search("", 0, 2, false).await;
    assert_eq!(
        (logins(&p), p.total),
        (vec!["alfred".into(), "alice".into()], 5),
        "limit"
    );
    let p = search("", 2, 2, false).await;
    assert_eq!(
        (logins(&p), p.total),
        (vec!["bob".into(), "carol".into()], 5),
        "offset"
    );
    let p = search("", 10, 10, false).await;
    assert!(p.users.is_empty(), "past the end");
    assert_eq!(p.total, 5, "the total counts every match");

    let p = search("AL", 0, 10, false).await;
    assert_eq!(
        (logins(&p), p.total),
        (vec!["alfred".into(), "alice".into()], 2),
        "login substring, any case"
    );
    let p = search("AL", 1, 10, false).await;
    assert_eq!((logins(&p), p.total), (vec!["alice".into()], 2));
    let p = search("corp", 0, 10, false).await;
    assert_eq!(logins(&p), ["dave"], "email substring, any case");
    let p = search("zED", 0, 10, false).await;
    assert_eq!(logins(&p), ["dave"], "name substring, any case");
    let p = search("nobody", 0, 10, false).await;
    assert_eq!((p.users.len(), p.total), (0, 0));

    let p = search("", 0, 10, true).await;
    assert_eq!(
        (logins(&p), p.total),
        (vec!["sa-alpha".into()], 1),
        "only service accounts"
    );
    let p = search("ALP", 0, 10, true).await;
    assert_eq!(logins(&p), ["sa-alpha"]);
    let p = search("bob", 0, 10, true).await;
    assert_eq!(p.total, 0, "users are not service accounts");
}

pub async fn users_touch_last_seen(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    assert_eq!(alice.last_seen_at, None, "never seen");
    s.touch_last_seen(alice.user_id(), 100).await.unwrap();
    assert_eq!(reload(&s, &alice).await.last_seen_at, Some(100));
    s.touch_last_seen(alice.user_id(), 50).await.unwrap();
    assert_eq!(
        reload(&s, &alice).await.last_seen_at,
        Some(100),
        "never moves backwards"
    );
    s.touch_last_seen(alice.user_id(), 200).await.unwrap();
    let u = reload(&s, &alice).await;
    assert_eq!(u.last_seen_at, Some(200));
    assert_eq!(
        (u.login.as_str(), u.is_disabled),
        ("alice", false),
        "nothing else changed"
    );
}

/// The rows every authenticated request reads (a user by id, a session and an API key by
/// hash) reflect each kind of write to them at the next read, though each was read just
/// before the write (a backend may keep them in memory).
pub async fn hot_rows_follow_every_write(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let id = alice.user_id();
    let read = || {
        let s = s.clone();
        async move { s.user(id).await.unwrap() }
    };
    assert_eq!(read().await.unwrap().last_seen_at, None);
    s.touch_last_seen(id, 100).await.unwrap();
    assert_eq!(read().await.unwrap().last_seen_at, Some(100), "touched");
    s.set_disabled(id, true, 1).await.unwrap();
    assert!(read().await.unwrap().is_disabled, "disabled");
    s.set_password(id, PasswordHash::new("pw2", 1_000), 2)
        .await
        .unwrap();
    assert!(
        read()
            .await
            .unwrap()
            .password
            .clone()
            .unwrap()
            .verify("pw2"),
        "the new password"
    );
    s.set_grafana_admin(id, true, 3).await.unwrap();
    assert!(read().await.unwrap().is_admin, "made an admin");

    let a = new_session(&s, session(&alice, 1, 1_000, 1_000)).await;
    let by = |h: u8| {
        let s = s.clone();
        async move { s.session_by_hash(&[h; 32]).await.unwrap() }
    };
    assert_eq!(by(1).await.unwrap().seen_ms, 1_000);
    s.touch_session(a.id, 5_000).await.unwrap();
    assert_eq!(by(1).await.unwrap().seen_ms, 5_000, "touched");
    s.rotate_session(a.id, &[1; 32], [2; 32], 9_000, 6_000)
        .await
        .unwrap()
        .expect("rotated");
    assert_eq!(by(1).await.unwrap().token_hash, [2; 32], "rotated");
    assert_eq!(by(2).await.unwrap().rotated_ms, 6_000);
    s.revoke_session(a.id, 7_000).await.unwrap();
    assert!(
        by(2).await.is_none_or(|r| r.revoked_ms == Some(7_000)),
        "revoked"
    );

    let k = new_key(&s, api_key(MAIN, "ci", None, 7)).await;
    let key = || {
        let s = s.clone();
        async move { s.api_key_by_hash(&[7; 32]).await.unwrap() }
    };
    assert_eq!(key().await.unwrap().last_used, None);
    s.touch_api_key(k.id, 300).await.unwrap();
    assert_eq!(key().await.unwrap().last_used, Some(300), "touched");
    s.delete_api_key(k.id).await.unwrap();
    assert!(key().await.is_none(), "deleted");

    s.delete_user(id).await.unwrap();
    assert!(read().await.is_none(), "deleted");
}

/// As above while other tasks read the same rows as fast as they can: a read that raced a
/// write must not leave the old row behind for the reads after the write's answer.
pub async fn hot_rows_follow_writes_under_concurrent_reads(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let id = alice.user_id();
    let a = new_session(&s, session(&alice, 1, 1_000, 1_000)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (s, stop) = (s.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    s.user(id).await.unwrap();
                    s.session_by_hash(&[1; 32]).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for round in 1..=60_i64 {
        s.set_disabled(id, round % 2 == 1, round).await.unwrap();
        assert_eq!(
            s.user(id).await.unwrap().unwrap().is_disabled,
            round % 2 == 1,
            "round {round}"
        );
        s.touch_session(a.id, 1_000 + round).await.unwrap();
        assert_eq!(
            s.session_by_hash(&[1; 32]).await.unwrap().unwrap().seen_ms,
            1_000 + round,
            "round {round}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
}

/// A day (UTC) of the activity-series tests: 2026-12-01T00:00:00Z.
const DAY: i64 = 1_796_083_200;
const HOUR: i64 = 3_600;

/// The series' buckets from `DAY` on, as (span, start offset from `DAY`, counts), sorted.
async fn series(s: &Arc<dyn Store>) -> Vec<(SeriesSpan, i64, [u64; 3])> {
    let mut v: Vec<_> = s
        .activity_series(DAY, DAY)
        .await
        .unwrap()
        .into_iter()
        .map(|b| {
            let c = b.counts;
            (
                b.span,
                b.start - DAY,
                [c.sign_ins, c.failed_sign_ins, c.active_users],
            )
        })
        .collect();
    v.sort();
    v
}

pub async fn stats_activity_series_sign_ins(s: Arc<dyn Store>) {
    use SeriesSpan::{Day, Hour};
    assert!(s.activity_series(0, 0).await.unwrap().is_empty(), "empty");
    let at = DAY + 5 * HOUR;
    s.record_sign_in(at + 1, true).await.unwrap();
    s.record_sign_in(at + HOUR - 1, true).await.unwrap();
    s.record_sign_in(at + 10, false).await.unwrap();
    assert_eq!(
        series(&s).await,
        [(Hour, 5 * HOUR, [2, 1, 0]), (Day, 0, [2, 1, 0])],
        "the hour and the day of each sign-in (UTC boundaries)"
    );

    // Concurrent sign-ins lose no count.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.record_sign_in(at + 6 * HOUR + i, i % 4 != 0).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // The last second of the day, and the first of the next.
    s.record_sign_in(DAY + 24 * HOUR - 1, true).await.unwrap();
    s.record_sign_in(DAY + 24 * HOUR, false).await.unwrap();
    assert_eq!(
        series(&s).await,
        [
            (Hour, 5 * HOUR, [2, 1, 0]),
            (Hour, 11 * HOUR, [15, 5, 0]),
            (Hour, 23 * HOUR, [1, 0, 0]),
            (Hour, 24 * HOUR, [0, 1, 0]),
            (Day, 0, [18, 6, 0]),
            (Day, 24 * HOUR, [0, 1, 0]),
        ]
    );

    // Windows: hours and days from their own bounds.
    let mut got: Vec<_> = s
        .activity_series(DAY + 11 * HOUR, DAY + 24 * HOUR)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.span, b.start - DAY))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (Hour, 11 * HOUR),
            (Hour, 23 * HOUR),
            (Hour, 24 * HOUR),
            (Day, 24 * HOUR)
        ]
    );

    // Pruning: hours before their bound, days before theirs.
    s.prune_activity_series(DAY + 23 * HOUR, DAY + 24 * HOUR)
        .await
        .unwrap();
    assert_eq!(
        series(&s).await,
        [
            (Hour, 23 * HOUR, [1, 0, 0]),
            (Hour, 24 * HOUR, [0, 1, 0]),
            (Day, 24 * HOUR, [0, 1, 0]),
        ]
    );
}

/// Active users: `touch_last_seen` counts a user once per hour and once per day, from its
/// previous last-seen time, in the same unit.
pub async fn stats_activity_series_active_users(s: Arc<dyn Store>) {
    use SeriesSpan::{Day, Hour};
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let bob = add(&s, user("bob"), OrgRole::Editor).await;
    let bot = add(&s, service_account("bot"), OrgRole::Viewer).await;
    let at = DAY + 22 * HOUR;

    s.touch_last_seen(alice.user_id(), at + 10).await.unwrap();
    s.touch_last_seen(alice.user_id(), at + 20).await.unwrap();
    s.touch_last_seen(alice.user_id(), at + 5).await.unwrap(); // backwards: nothing
    s.touch_last_seen(bot.user_id(), at + 10).await.unwrap();
    assert_eq!(
        series(&s).await,
        [(Hour, 22 * HOUR, [0, 0, 1]), (Day, 0, [0, 0, 1])],
        "twice in one hour counts once; service accounts are not users"
    );
    assert_eq!(reload(&s, &alice).await.last_seen_at, Some(at + 20));

    // The next hour counts her again, the same day does not; bob is new in both.
    s.touch_last_seen(alice.user_id(), at + HOUR).await.unwrap();
    s.touch_last_seen(bob.user_id(), at + HOUR + 1)
        .await
        .unwrap();
    assert_eq!(
        series(&s).await,
        [
            (Hour, 22 * HOUR, [0, 0, 1]),
            (Hour, 23 * HOUR, [0, 0, 2]),
            (Day, 0, [0, 0, 2]),
        ]
    );

    // Concurrent touches of the same user in a new hour and day count one.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (s, id) = (s.clone(), alice.user_id());
        tasks.push(tokio::spawn(async move {
            s.touch_last_seen(id, at + 2 * HOUR + i % 3).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        series(&s).await,
        [
            (Hour, 22 * HOUR, [0, 0, 1]),
            (Hour, 23 * HOUR, [0, 0, 2]),
            (Hour, 24 * HOUR, [0, 0, 1]),
            (Day, 0, [0, 0, 2]),
            (Day, 24 * HOUR, [0, 0, 1]),
        ]
    );
    assert_eq!(
        reload(&s, &alice).await.last_seen_at,
        Some(at + 2 * HOUR + 2)
    );
    // A user that is gone counts nothing.
    s.delete_user(bob.user_id()).await.unwrap();
    s.touch_last_seen(bob.user_id(), at + 3 * HOUR)
        .await
        .unwrap();
    assert_eq!(series(&s).await.len(), 5);
}

pub async fn orgs_create_and_names(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let before = counts(&s).await;
    let org = s.create_org("Blue", 30, alice.user_id()).await.unwrap();
    assert!(org.id >= 2, "a fresh id after the main org");
    assert_eq!(
        (org.name.as_str(), org.created, org.updated),
        ("Blue", 30, 30)
    );
    assert_eq!(s.org(OrgId(org.id)).await.unwrap(), Some(org.clone()));
    assert_eq!(s.org_by_name("Blue").await.unwrap(), Some(org.clone()));
    assert_eq!(
        s.org_by_name("blue").await.unwrap(),
        None,
        "names are exact"
    );
    assert_eq!(s.org_by_name("Nope").await.unwrap(), None);
    let a = reload(&s, &alice).await;
    assert_eq!(
        a.role_in(OrgId(org.id)),
        Some(OrgRole::Admin),
        "creator is Admin"
    );
    assert_eq!(a.org_id, 1, "the creator's current org does not change");
    let after = counts(&s).await;
    assert_eq!(after.orgs, before.orgs + 1);
    assert_eq!(
        after.admins,
        before.admins + 1,
        "alice's highest role is Admin now"
    );

    assert!(matches!(
        err(s.create_org("Blue", 31, alice.user_id()).await),
        StoreError::Conflict("name")
    ));
    assert!(
        matches!(
            err(s.create_org("Main Org.", 31, alice.user_id()).await),
            StoreError::Conflict("name")
        ),
        "an org made by ensure_org holds its name"
    );
    assert!(matches!(
        err(s.create_org("Green", 31, UserId(999)).await),
        StoreError::NotFound
    ));
    assert_eq!(
        s.org_by_name("Green").await.unwrap(),
        None,
        "a failed create leaves nothing"
    );
    assert_eq!(counts(&s).await.orgs, before.orgs + 1);
    let second = s.create_org("Green", 32, alice.user_id()).await.unwrap();
    assert!(second.id > org.id);
}

pub async fn orgs_search(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Admin).await;
    for name in ["beta", "Alpha", "alpine", "Gamma"] {
        s.create_org(name, 30, alice.user_id()).await.unwrap();
    }
    let names = |v: Vec<OrgRecord>| v.into_iter().map(|o| o.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.search_orgs("", None, 0, 100).await.unwrap()),
        ["Alpha", "Gamma", "Main Org.", "alpine", "beta"],
        "ordered by name, byte-wise"
    );
    assert_eq!(
        names(s.search_orgs("al", None, 0, 100).await.unwrap()),
        ["Alpha", "alpine"],
        "prefix, case-insensitively"
    );
    assert!(
        s.search_orgs("lpha", None, 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "prefix only"
    );
    assert_eq!(
        names(s.search_orgs("", Some("beta"), 0, 100).await.unwrap()),
        ["beta"]
    );
    assert!(
        s.search_orgs("", Some("Beta"), 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "exact name"
    );
    assert!(
        s.search_orgs("g", Some("beta"), 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "both apply"
    );
    assert_eq!(
        names(s.search_orgs("", None, 1, 2).await.unwrap()),
        ["Gamma", "Main Org."]
    );
    assert!(s.search_orgs("", None, 10, 2).await.unwrap().is_empty());
}

pub async fn orgs_rename(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Admin).await;
    let blue = s.create_org("Blue", 30, alice.user_id()).await.unwrap();
    let id = OrgId(blue.id);
    let r = s.rename_org(id, "Navy", 40).await.unwrap();
    assert_eq!((r.name.as_str(), r.created, r.updated), ("Navy", 30, 40));
    assert_eq!(s.org(id).await.unwrap(), Some(r.clone()));
    assert_eq!(s.org_by_name("Navy").await.unwrap(), Some(r.clone()));
    assert_eq!(
        s.org_by_name("Blue").await.unwrap(),
        None,
        "the old name is free"
    );
    s.create_org("Blue", 41, alice.user_id()).await.unwrap();
    assert!(matches!(
        err(s.rename_org(id, "Main Org.", 42).await),
        StoreError::Conflict("name")
    ));
    assert_eq!(
        s.org(id).await.unwrap(),
        Some(r.clone()),
        "a refused rename changes nothing"
    );
    let same = s.rename_org(id, "Navy", 43).await.unwrap();
    assert_eq!(same.name, "Navy", "its own name is no conflict");
    assert!(matches!(
        err(s.rename_org(OrgId(999), "Red", 44).await),
        StoreError::NotFound
    ));
    assert_eq!(s.org_by_name("Red").await.unwrap(), None);
}

pub async fn orgs_add_membership(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let before = counts(&s).await;
    let u = s
        .add_membership(alice.user_id(), OTHER, OrgRole::Editor, 50)
        .await
        .unwrap();
    assert_eq!(u.role_in(OTHER), Some(OrgRole::Editor));
    assert_eq!(
        u.role_in(MAIN),
        Some(OrgRole::Viewer),
        "other memberships stay"
    );
    assert_eq!(u.org_id, 1, "a valid current org stays");
    assert_eq!(u.updated, 50);
    assert_eq!(reload(&s, &alice).await, u, "the row as written");
    let after = counts(&s).await;
    assert_eq!(
        (after.editors, after.viewers),
        (before.editors + 1, before.viewers - 1)
    );

    assert!(matches!(
        err(s
            .add_membership(alice.user_id(), OTHER, OrgRole::Admin, 51)
            .await),
        StoreError::AlreadyMember
    ));
    assert_eq!(
        reload(&s, &alice).await.role_in(OTHER),
        Some(OrgRole::Editor)
    );
    assert!(matches!(
        err(s
            .add_membership(alice.user_id(), OrgId(999), OrgRole::Admin, 51)
            .await),
        StoreError::OrgNotFound
    ));
    assert!(matches!(
        err(s
            .add_membership(UserId(999), OTHER, OrgRole::Admin, 51)
            .await),
        StoreError::NotFound
    ));
    assert_eq!(reload(&s, &alice).await, u, "refused adds change nothing");

    // A user without a valid current org gets the new one.
    let bob = add(&s, user("bob"), OrgRole::Admin).await;
    let bob = s.set_memberships(bob.user_id(), &[], 52).await.unwrap();
    assert!(bob.memberships.is_empty());
    let bob = s
        .add_membership(bob.user_id(), OTHER, OrgRole::Viewer, 53)
        .await
        .unwrap();
    assert_eq!(bob.org_id, 2, "the new org became current");
}

pub async fn orgs_set_membership_role(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Admin).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    let u = s
        .set_membership_role(bob.user_id(), MAIN, OrgRole::Editor, 60)
        .await
        .unwrap();
    assert_eq!((u.role_in(MAIN), u.updated), (Some(OrgRole::Editor), 60));
    assert_eq!(reload(&s, &bob).await, u);
    assert!(
        matches!(
            err(s
                .set_membership_role(alice.user_id(), MAIN, OrgRole::Viewer, 61)
                .await),
            StoreError::LastOrgAdmin
        ),
        "the only Admin cannot step down"
    );
    assert_eq!(reload(&s, &alice).await.role_in(MAIN), Some(OrgRole::Admin));
    let a = s
        .set_membership_role(alice.user_id(), MAIN, OrgRole::Admin, 62)
        .await
        .unwrap();
    assert_eq!(
        a.role_in(MAIN),
        Some(OrgRole::Admin),
        "Admin to Admin is no demotion"
    );
    s.set_membership_role(bob.user_id(), MAIN, OrgRole::Admin, 63)
        .await
        .unwrap();
    let a = s
        .set_membership_role(alice.user_id(), MAIN, OrgRole::Viewer, 64)
        .await
        .unwrap();
    assert_eq!(
        a.role_in(MAIN),
        Some(OrgRole::Viewer),
        "another Admin remains"
    );
    assert!(matches!(
        err(s
            .set_membership_role(bob.user_id(), MAIN, OrgRole::None, 65)
            .await),
        StoreError::LastOrgAdmin
    ));
    other_org(&s).await;
    assert!(matches!(
        err(s
            .set_membership_role(bob.user_id(), OTHER, OrgRole::Viewer, 66)
            .await),
        StoreError::NotMember
    ));
    assert!(matches!(
        err(s
            .set_membership_role(UserId(999), MAIN, OrgRole::Viewer, 66)
            .await),
        StoreError::NotFound
    ));
}

pub async fn orgs_remove_membership(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Admin).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    s.add_membership(bob.user_id(), OTHER, OrgRole::Admin, 70)
        .await
        .unwrap();
    s.set_current_org(bob.user_id(), OTHER).await.unwrap();
    // Bob is OTHER's only Admin.
    assert!(matches!(
        err(s.remove_membership(bob.user_id(), OTHER, 71).await),
        StoreError::LastOrgAdmin
    ));
    assert_eq!(reload(&s, &bob).await.role_in(OTHER), Some(OrgRole::Admin));
    s.add_membership(alice.user_id(), OTHER, OrgRole::Admin, 72)
        .await
        .unwrap();
    let before = counts(&s).await;
    let b = s.remove_membership(bob.user_id(), OTHER, 73).await.unwrap();
    assert_eq!(b.role_in(OTHER), None);
    assert_eq!(
        b.org_id, 1,
        "the current org moved to the remaining membership"
    );
    assert_eq!(b.updated, 73);
    assert_eq!(reload(&s, &bob).await, b);
    let after = counts(&s).await;
    assert_eq!(
        (after.admins, after.viewers),
        (before.admins - 1, before.viewers + 1)
    );
    assert!(matches!(
        err(s.remove_membership(bob.user_id(), OTHER, 74).await),
        StoreError::NotMember
    ));
    assert!(matches!(
        err(s.remove_membership(UserId(999), OTHER, 74).await),
        StoreError::NotFound
    ));
    // A non-Admin may leave; the last membership may go (the current org then stays).
    let b = s.remove_membership(bob.user_id(), MAIN, 75).await.unwrap();
    assert!(b.memberships.is_empty());
    assert_eq!(b.org_id, 1);
    assert!(s
        .org_members(MAIN)
        .await
        .unwrap()
        .iter()
        .all(|(u, _)| u.id != b.id));
}

/// Deleting an org takes everything it owns and nothing of the other org's.
pub async fn orgs_delete(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let (_, active) = two_deks(&s).await;
    let admin = add(&s, grafana_admin("admin"), OrgRole::Admin).await;
    s.add_membership(admin.user_id(), OTHER, OrgRole::Admin, 20)
        .await
        .unwrap();
    let before = counts(&s).await;
    for org in [MAIN, OTHER] {
        let n = org.0 as u8;
        let secret_key = format!("datasource\n{}/p\npassword", org.0);
        s.create_datasource(
            datasource(org, "prom", "p"),
            &[put(&secret_key, active, b"sealed")],
        )
        .await
        .unwrap();
        s.write_secrets(&[put(&format!("plugin\n{}/app\nk", org.0), active, b"x")])
            .await
            .unwrap();
        s.set_quota(&quota(QuotaOwner::Org(org), "api_key", 5, 20))
            .await
            .unwrap();
        new_key(&s, api_key(org, "key", None, n)).await;
        let sa = s
            .create_user(
                service_account(&format!("sa{n}")),
                NewMembership::Existing(org, OrgRole::Viewer),
            )
            .await
            .unwrap();
        new_key(&s, api_key(org, "token", Some(&sa), 10 + n)).await;
        apply(
            &s,
            upsert(dashboard(org, "d", &["t"]), vec![alert(org, "d", 1)]),
        )
        .await;
        let mut b = upsert(dashboard(org, "e", &[]), vec![]);
        b.folders.push(folder(org, "f"));
        apply(&s, b).await;
        s.apply_plugin_settings(&[plugin(org, "app", true)], &[])
            .await
            .unwrap();
        s.apply_notifiers(&[notifier(org, "n", "chan")], &[], &[])
            .await
            .unwrap();
        new_role(&s, role(org, "r", "custom")).await;
        s.assign_role(org, "r", admin.user_id()).await.unwrap();
    }
    let alone = s
        .create_user(
            user("alone"),
            NewMembership::Existing(OTHER, OrgRole::Editor),
        )
        .await
        .unwrap();
    let refs_before = refs(&s, active).await;
    let full = counts(&s).await;

    assert!(matches!(
        err(s.delete_org(OrgId(99), &[]).await),
        StoreError::NotFound
    ));
    let prefixes = vec!["datasource\n2/".to_string(), "plugin\n2/".to_string()];
    s.delete_org(OTHER, &prefixes).await.unwrap();
    let quotas = s.export().await.unwrap().quotas;
    assert!(
        quotas.iter().all(|q| q.org_id != OTHER.0),
        "the org's quota limits went with it: {quotas:?}"
    );
    assert_eq!(s.quotas(QuotaOwner::Org(MAIN)).await.unwrap().len(), 1);

    assert!(s.org(OTHER).await.unwrap().is_none());
    assert!(s.org_by_name("Other Org.").await.unwrap().is_none());
    assert!(s.org_members(OTHER).await.unwrap().is_empty());
    assert!(s.datasources(OTHER).await.unwrap().is_empty());
    assert!(s.datasource_by_uid(OTHER, "p").await.unwrap().is_none());
    assert!(secret(&s, "datasource\n2/p\npassword").await.is_none());
    assert!(secret(&s, "plugin\n2/app\nk").await.is_none());
    assert_eq!(
        refs(&s, active).await,
        refs_before - 2,
        "the DEK references went"
    );
    assert!(s.api_keys(OTHER, None).await.unwrap().is_empty());
    assert!(s.api_key_by_hash(&[2; 32]).await.unwrap().is_none());
    assert!(
        s.api_key_by_hash(&[12; 32]).await.unwrap().is_none(),
        "token"
    );
    assert!(
        s.user_by_login("sa2").await.unwrap().is_none(),
        "service account"
    );
    assert!(s.dashboards(OTHER).await.unwrap().is_empty());
    assert!(s.folders(OTHER).await.unwrap().is_empty());
    assert!(s.alerts(OTHER).await.unwrap().is_empty());
    assert!(plugins(&s, OTHER).await.is_empty());
    assert!(notifiers(&s, OTHER).await.is_empty());
    assert!(s.role(OTHER, "r").await.unwrap().is_none());
    // Users stay; their membership goes.
    let a = reload(&s, &admin).await;
    assert_eq!(a.role_in(OTHER), None);
    assert_eq!(a.role_in(MAIN), Some(OrgRole::Admin));
    let alone = reload(&s, &alone).await;
    assert!(alone.memberships.is_empty());
    assert_eq!(
        alone.org_id, OTHER.0,
        "no org left: still points at the deleted one"
    );
    // The main org's things are untouched.
    assert!(s.org(MAIN).await.unwrap().is_some());
    assert_eq!(s.datasources(MAIN).await.unwrap().len(), 1);
    assert!(secret(&s, "datasource\n1/p\npassword").await.is_some());
    assert!(secret(&s, "plugin\n1/app\nk").await.is_some());
    assert_eq!(s.api_keys(MAIN, None).await.unwrap().len(), 1);
    assert!(s.user_by_login("sa1").await.unwrap().is_some());
    assert_eq!(s.dashboards(MAIN).await.unwrap().len(), 2);
    assert_eq!(s.folders(MAIN).await.unwrap().len(), 1);
    assert_eq!(s.alerts(MAIN).await.unwrap().len(), 1);
    assert_eq!(plugins(&s, MAIN).await.len(), 1);
    assert_eq!(notifiers(&s, MAIN).await.len(), 1);
    assert!(s.role(MAIN, "r").await.unwrap().is_some());
    // The counters follow.
    let after = counts(&s).await;
    assert_eq!(after.orgs, before.orgs - 1);
    assert_eq!(after.datasources, full.datasources - 1);
    assert_eq!(after.api_keys, full.api_keys - 2);
    assert_eq!(after.service_accounts, full.service_accounts - 1);
    assert_eq!(after.dashboards, full.dashboards - 2);
    assert_eq!(after.folders, full.folders - 1);
    assert_eq!(after.alerts, full.alerts - 1);
    assert_eq!(after.tags, full.tags - 1);
    assert_eq!(after.users, full.users, "users are never deleted");
    assert_eq!(after.editors, full.editors - 1, "alone has no role left");
    assert!(matches!(
        err(s.delete_org(OTHER, &prefixes).await),
        StoreError::NotFound
    )); // The id alone still points at is not given to a new org.
    let again = s.create_org("Again", 50, admin.user_id()).await.unwrap();
    assert_ne!(again.id, OTHER.0);
}

/// A user whose current org is deleted moves to its first other membership.
pub async fn orgs_delete_moves_current_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    s.add_membership(bob.user_id(), OTHER, OrgRole::Admin, 20)
        .await
        .unwrap();
    s.set_current_org(bob.user_id(), OTHER).await.unwrap();
    s.delete_org(OTHER, &[]).await.unwrap();
    let b = reload(&s, &bob).await;
    assert_eq!(b.org_id, MAIN.0);
    assert_eq!(b.memberships, vec![membership(MAIN, OrgRole::Viewer)]);
}

/// An org's address: none until set, replaced whole, gone with the org.
pub async fn orgs_address(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    assert_eq!(s.org_address(MAIN).await.unwrap(), None);
    let a = OrgAddressRecord {
        address1: "1 Main St".into(),
        address2: "".into(),
        city: "Springfield".into(),
        zip_code: "12345".into(),
        state: "IL".into(),
        country: "US".into(),
    };
    s.set_org_address(MAIN, &a).await.unwrap();
    assert_eq!(s.org_address(MAIN).await.unwrap(), Some(a.clone()));
    assert_eq!(s.org_address(OTHER).await.unwrap(), None);
    let b = OrgAddressRecord {
        city: "Shelbyville".into(),
        ..OrgAddressRecord::default()
    };
    s.set_org_address(MAIN, &b).await.unwrap();
    assert_eq!(s.org_address(MAIN).await.unwrap(), Some(b));
    assert!(matches!(
        err(s.set_org_address(OrgId(99), &a).await),
        StoreError::OrgNotFound
    ));
    s.set_org_address(OTHER, &a).await.unwrap();
    s.delete_org(OTHER, &[]).await.unwrap();
    assert_eq!(s.org_address(OTHER).await.unwrap(), None);
}

/// Two Admins of one org step down at once: exactly one may.
pub async fn orgs_last_admin_races(s: Arc<dyn Store>) {
    main_org(&s).await;
    for round in 0..8u64 {
        let a = add(&s, user(&format!("a{round}")), OrgRole::Viewer).await;
        let b = add(&s, user(&format!("b{round}")), OrgRole::Viewer).await;
        let org = OrgId(
            s.create_org(&format!("race{round}"), 80, a.user_id())
                .await
                .unwrap()
                .id,
        );
        s.add_membership(b.user_id(), org, OrgRole::Admin, 80)
            .await
            .unwrap();
        let (s1, s2) = (s.clone(), s.clone());
        let (ua, ub) = (a.user_id(), b.user_id());
        let t1 = tokio::spawn(async move {
            if round % 2 == 0 {
                s1.set_membership_role(ua, org, OrgRole::Viewer, 81)
                    .await
                    .map(|_| ())
            } else {
                s1.remove_membership(ua, org, 81).await.map(|_| ())
            }
        });
        let t2 = tokio::spawn(async move {
            s2.set_membership_role(ub, org, OrgRole::Editor, 81)
                .await
                .map(|_| ())
        });
        let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
        assert!(
            r1.is_ok() != r2.is_ok(),
            "round {round}: exactly one wins: {r1:?} {r2:?}"
        );
        for r in [r1, r2] {
            if let Err(e) = r {
                assert!(
                    matches!(e, StoreError::LastOrgAdmin),
                    "round {round}: {e:?}"
                );
            }
        }
        let admins = s
            .org_members(org)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, r)| *r == OrgRole::Admin)
            .count();
        assert_eq!(admins, 1, "round {round}: one Admin remains");
    }
}

pub async fn orgs_members(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let carol = add(&s, user("Carol"), OrgRole::Editor).await;
    let alice = add(&s, user("alice"), OrgRole::Admin).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    s.create_user(service_account("sa-bot"), in_main(OrgRole::Admin))
        .await
        .unwrap();
    s.add_membership(bob.user_id(), OTHER, OrgRole::Admin, 90)
        .await
        .unwrap();
    let list = s.org_members(MAIN).await.unwrap();
    let got: Vec<_> = list.iter().map(|(u, r)| (u.login.as_str(), *r)).collect();
    assert_eq!(
        got,
        [
            ("alice", OrgRole::Admin),
            ("bob", OrgRole::Viewer),
            ("Carol", OrgRole::Editor)
        ],
        "by folded login, service accounts left out"
    );
    assert_eq!(list[0].0, reload(&s, &alice).await, "whole user records");
    let other: Vec<_> = s
        .org_members(OTHER)
        .await
        .unwrap()
        .into_iter()
        .map(|(u, r)| (u.id, r))
        .collect();
    assert_eq!(other, [(bob.id, OrgRole::Admin)]);
    assert!(s.org_members(OrgId(999)).await.unwrap().is_empty());
    let _ = carol;
}

pub async fn users_set_current_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let bob = add(&s, user("bob"), OrgRole::Editor).await;
    let alice = s
        .set_memberships(
            alice.user_id(),
            &[(MAIN, OrgRole::Viewer), (OTHER, OrgRole::Admin)],
            20,
        )
        .await
        .unwrap();
    assert_eq!(alice.org_id, 1);
    let before = counts(&s).await;

    let u = s.set_current_org(alice.user_id(), OTHER).await.unwrap();
    assert_eq!(u.org_id, 2, "a member: the org is now current");
    assert_eq!(reload(&s, &alice).await, u, "the row as written");
    assert_eq!(
        UserRecord {
            org_id: 1,
            ..u.clone()
        },
        alice,
        "nothing else changed (not even the update time)"
    );
    assert_eq!(counts(&s).await, before, "counts unchanged");

    let u = s.set_current_org(alice.user_id(), OTHER).await.unwrap();
    assert_eq!(u.org_id, 2, "the current org again: no change, no error");
    let u = s.set_current_org(alice.user_id(), MAIN).await.unwrap();
    assert_eq!(u.org_id, 1, "and back");

    assert!(
        matches!(
            err(s.set_current_org(bob.user_id(), OTHER).await),
            StoreError::NotMember
        ),
        "an existing org the user is not a member of"
    );
    assert_eq!(
        reload(&s, &bob).await,
        bob,
        "a refused switch changes nothing"
    );
    assert!(
        matches!(
            err(s.set_current_org(alice.user_id(), OrgId(9)).await),
            StoreError::NotMember
        ),
        "an org that does not exist"
    );
    assert_eq!(reload(&s, &alice).await.org_id, 1);
    assert!(
        matches!(
            err(s.set_current_org(UserId(bob.id + 1000), MAIN).await),
            StoreError::NotFound
        ),
        "a missing user"
    );

    // Membership is checked at the time of the write: once the org is gone from the
    // memberships, switching to it is refused.
    s.set_memberships(bob.user_id(), &[(OTHER, OrgRole::Viewer)], 30)
        .await
        .unwrap();
    let u = s.set_current_org(bob.user_id(), OTHER).await.unwrap();
    assert_eq!(u.org_id, 2);
    s.set_memberships(bob.user_id(), &[(MAIN, OrgRole::Viewer)], 40)
        .await
        .unwrap();
    assert!(matches!(
        err(s.set_current_org(bob.user_id(), OTHER).await),
        StoreError::NotMember
    ));
    assert_eq!(reload(&s, &bob).await.org_id, 1);
}

/// Switching to an org while another writer removes the user from it never leaves the
/// user with a current org they are not a member of.
pub async fn users_set_current_org_races_membership_changes(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let both = [(MAIN, OrgRole::Viewer), (OTHER, OrgRole::Viewer)];
    for round in 0..30 {
        s.set_memberships(alice.user_id(), &both, round)
            .await
            .unwrap();
        let (s1, s2, id) = (s.clone(), s.clone(), alice.user_id());
        let switch = tokio::spawn(async move { s1.set_current_org(id, OTHER).await });
        let remove = tokio::spawn(async move {
            s2.set_memberships(id, &[(MAIN, OrgRole::Viewer)], round)
                .await
        });
        match switch.await.unwrap() {
            Ok(u) => assert_eq!(u.org_id, 2, "round {round}"),
            Err(StoreError::NotMember) => {}
            Err(e) => panic!("round {round}: {e:?}"),
        }
        remove.await.unwrap().unwrap();
        let u = reload(&s, &alice).await;
        assert!(
            u.memberships.iter().any(|m| m.org_id == u.org_id),
            "round {round}: current org {} is not one of {:?}",
            u.org_id,
            u.memberships
        );
        assert_eq!(u.org_id, 1, "round {round}: only org 1 is left");
    }
}

// ---------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------

pub async fn stats_counts(s: Arc<dyn Store>) {
    assert_eq!(
        counts(&s).await,
        Counts::default(),
        "an empty store counts nothing"
    );
    main_org(&s).await;
    assert_eq!(
        counts(&s).await,
        Counts {
            orgs: 1,
            ..Counts::default()
        }
    );

    add(&s, grafana_admin("root"), OrgRole::Admin).await;
    let ed = add(&s, user("ed"), OrgRole::Editor).await;
    let vi = add(&s, user("vi"), OrgRole::Viewer).await;
    add(&s, user("nobody"), OrgRole::None).await;
    let sa = add(&s, service_account("sa"), OrgRole::Admin).await;
    let mut want = Counts {
        users: 4,
        grafana_admins: 1,
        orgs: 1,
        admins: 1,
        editors: 1,
        viewers: 1,
        no_role: 1,
        service_accounts: 1,
        ..Counts::default()
    };
    assert_eq!(counts(&s).await, want, "service accounts are not users");

    s.set_memberships(vi.user_id(), &[(MAIN, OrgRole::Admin)], 10)
        .await
        .unwrap();
    want.viewers -= 1;
    want.admins += 1;
    assert_eq!(
        counts(&s).await,
        want,
        "set_memberships moves the user between buckets"
    );

    s.set_grafana_admin(ed.user_id(), true, 20).await.unwrap();
    want.grafana_admins += 1;
    assert_eq!(counts(&s).await, want);

    s.delete_user(ed.user_id()).await.unwrap();
    want.users -= 1;
    want.editors -= 1;
    want.grafana_admins -= 1;
    assert_eq!(counts(&s).await, want, "delete_user");

    let key = new_key(&s, api_key(MAIN, "legacy", None, 1)).await;
    want.api_keys += 1;
    assert_eq!(counts(&s).await, want, "a legacy API key");

    let ds = new_ds(&s, datasource(MAIN, "prom", "p1")).await;
    want.datasources += 1;
    assert_eq!(counts(&s).await, want);

    let mut d = dashboard(MAIN, "d1", &["prod", "web"]);
    d.folder_uid = "f1".into();
    apply(
        &s,
        DashboardBatch {
            folders: vec![folder(MAIN, "f1")],
            upserts: vec![(d, vec![alert(MAIN, "d1", 1)])],
            deletes: Vec::new(),
        },
    )
    .await;
    want.dashboards += 1;
    want.folders += 1;
    want.tags += 2;
    want.alerts += 1;
    assert_eq!(counts(&s).await, want, "dashboards, folders, tags, alerts");

    s.delete_service_account(sa.user_id()).await.unwrap();
    want.service_accounts -= 1;
    assert_eq!(counts(&s).await, want, "delete_service_account");

    s.delete_api_key(key.id).await.unwrap();
    s.delete_datasource(MAIN, ds.id, &[]).await.unwrap();
    apply(&s, delete_dashboard(MAIN, "d1")).await;
    want.api_keys -= 1;
    want.datasources -= 1;
    want.dashboards -= 1;
    want.tags -= 2;
    want.alerts -= 1;
    assert_eq!(counts(&s).await, want, "deletes count down (folders stay)");
}

pub async fn stats_activity(s: Arc<dyn Store>) {
    let windows = ActivityWindows {
        active_after: 1_000,
        daily_after: 5_000,
        month_start: 3_000,
        sessions_after_ms: 5_000_000,
    };
    assert_eq!(
        s.activity(windows).await.unwrap(),
        Activity::default(),
        "an empty store"
    );
    main_org(&s).await;
    other_org(&s).await;

    let mut by_login = std::collections::HashMap::new();
    for (login, role, seen) in [
        ("adm", OrgRole::Admin, Some(6_000)), // active, daily, monthly
        ("ed", OrgRole::Editor, Some(4_000)), // active, monthly
        ("month", OrgRole::Editor, Some(3_000)), // active, monthly (at the month start)
        ("vi", OrgRole::Viewer, Some(2_000)), // active
        ("norole", OrgRole::None, Some(6_000)), // as a viewer: active, daily, monthly
        ("never", OrgRole::Viewer, None),
        ("old", OrgRole::Viewer, Some(500)),
    ] {
        let u = add(&s, user(login), role).await;
        if let Some(at) = seen {
            s.touch_last_seen(u.user_id(), at).await.unwrap();
        }
        by_login.insert(login, u);
    }
    // The highest role over all orgs.
    let multi = add(&s, user("multi"), OrgRole::Viewer).await;
    s.set_memberships(
        multi.user_id(),
        &[(MAIN, OrgRole::Viewer), (OTHER, OrgRole::Admin)],
        10,
    )
    .await
    .unwrap();
    s.touch_last_seen(multi.user_id(), 6_000).await.unwrap();
    // Service accounts are not users here.
    let sa = add(&s, service_account("sa"), OrgRole::Admin).await;
    s.touch_last_seen(sa.user_id(), 6_000).await.unwrap();

    // Sessions: used after 5_000_000 and not revoked.
    new_session(&s, session(&by_login["adm"], 1, 4_000_000, 6_000_000)).await;
    new_session(&s, session(&by_login["ed"], 2, 4_000_000, 4_500_000)).await;
    let revoked = new_session(&s, session(&by_login["vi"], 3, 4_000_000, 6_000_000)).await;
    s.revoke_session(revoked.id, 6_100_000).await.unwrap();
    let rotated = new_session(&s, session(&by_login["norole"], 4, 1_000, 1_000)).await;
    s.rotate_session(rotated.id, &[4; 32], [5; 32], 7_060_000, 7_000_000)
        .await
        .unwrap()
        .expect("rotated");

    let a = s.activity(windows).await.unwrap();
    assert_eq!(
        a,
        Activity {
            active: [2, 2, 2],
            daily: [2, 0, 1],
            monthly_active_users: 5,
            daily_active_sessions: 2,
        },
        "users by highest role (no role counts as viewer), sessions by last use"
    );

    // Seen again: counted once, in its new windows; an earlier time changes nothing.
    s.touch_last_seen(by_login["vi"].user_id(), 6_500)
        .await
        .unwrap();
    s.touch_last_seen(by_login["old"].user_id(), 400)
        .await
        .unwrap();
    let a = s.activity(windows).await.unwrap();
    assert_eq!(
        (a.active, a.daily, a.monthly_active_users),
        ([2, 2, 2], [2, 0, 2], 6),
        "a user seen again moves, not doubles"
    );
    // A deleted user is not counted.
    s.delete_user(by_login["adm"].user_id()).await.unwrap();
    let a = s.activity(windows).await.unwrap();
    assert_eq!(
        (a.active, a.daily, a.monthly_active_users),
        ([1, 2, 2], [1, 0, 2], 5),
        "a deleted user is gone from every window"
    );
}

// ---------------------------------------------------------------------------------------
// Meta
// ---------------------------------------------------------------------------------------

pub async fn meta_get_set(s: Arc<dyn Store>) {
    assert_eq!(s.get_meta("usage_id").await.unwrap(), None);
    s.set_meta("usage_id", b"abc").await.unwrap();
    s.set_meta("canary", b"\x00\x01").await.unwrap();
    assert_eq!(s.get_meta("usage_id").await.unwrap(), Some(b"abc".to_vec()));
    s.set_meta("usage_id", b"xyz").await.unwrap();
    assert_eq!(
        s.get_meta("usage_id").await.unwrap(),
        Some(b"xyz".to_vec()),
        "overwritten"
    );
    assert_eq!(
        s.get_meta("canary").await.unwrap(),
        Some(vec![0, 1]),
        "other keys untouched"
    );
}

/// Job locks, change epochs, announcements and the change stream. A backend with one node
/// (`subscribe` is None) grants every lock and has no epochs; one shared by several nodes
/// holds a lock exclusively until it is dropped and delivers announced topics.
pub async fn coordination(s: Arc<dyn Store>) {
    let stream = s.subscribe().await.unwrap();
    let lock = s.try_job_lock(Job::SessionPurge).await.unwrap();
    assert!(lock.is_some(), "a free job lock is granted");
    let Some(mut rx) = stream else {
        assert!(s.change_epochs().await.unwrap().is_empty());
        s.announce(Topic::Ldap).await.unwrap();
        return;
    };
    assert!(
        s.try_job_lock(Job::SessionPurge).await.unwrap().is_none(),
        "a held job lock is refused"
    );
    assert!(
        s.try_job_lock(Job::Provisioning).await.unwrap().is_some(),
        "another job's lock is free"
    );
    drop(lock);
    let start = std::time::Instant::now();
    while s.try_job_lock(Job::SessionPurge).await.unwrap().is_none() {
        assert!(start.elapsed().as_secs() < 5, "a dropped lock is released");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let epoch = |all: &[(Topic, i64)], t: Topic| all.iter().find(|(x, _)| *x == t).map(|(_, e)| *e);
    let before = s.change_epochs().await.unwrap();
    s.announce(Topic::Ldap).await.unwrap();
    s.put_license(&StoredLicense {
        token: "t".into(),
        stored_at: 1,
    })
    .await
    .unwrap();
    let after = s.change_epochs().await.unwrap();
    for t in [Topic::Ldap, Topic::License] {
        assert_eq!(
            epoch(&after, t),
            epoch(&before, t).map(|e| e + 1),
            "{t:?}: one announcement, one epoch"
        );
    }
    let mut heard = Vec::new();
    while !(heard.contains(&Topic::Ldap) && heard.contains(&Topic::License)) {
        match tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await {
            Ok(Some(t)) => heard.push(t),
            other => panic!("announced topics not delivered: {other:?}, heard {heard:?}"),
        }
    }
}

pub async fn meta_init_once(s: Arc<dyn Store>) {
    assert_eq!(
        s.init_meta("salt", b"first").await.unwrap(),
        b"first".to_vec()
    );
    assert_eq!(
        s.init_meta("salt", b"second").await.unwrap(),
        b"first".to_vec(),
        "the stored value wins"
    );
    assert_eq!(s.get_meta("salt").await.unwrap(), Some(b"first".to_vec()));
    // Nodes starting at once agree on one value.
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.init_meta("race", &[i]).await.unwrap()
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "every caller got the same value: {seen:?}");
    assert_eq!(s.get_meta("race").await.unwrap(), Some(seen[0].clone()));
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

pub async fn sessions_create_and_lookup(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;

    let a = new_session(&s, session(&alice, 1, 1_000, 1_000)).await;
    let b = new_session(&s, session(&alice, 2, 1_100, 1_100)).await;
    assert_ne!(a.id, 0, "a fresh id");
    assert_ne!(a.id, b.id, "ids are fresh");
    assert_eq!(
        (a.user_id, a.token_hash, a.created_ms),
        (alice.id, [1; 32], 1_000)
    );

    assert_eq!(s.session(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.session_by_hash(&[1; 32]).await.unwrap().map(|x| x.id),
        Some(a.id)
    );
    assert_eq!(
        s.session_by_hash(&[2; 32]).await.unwrap().map(|x| x.id),
        Some(b.id)
    );
    assert!(s.session_by_hash(&[9; 32]).await.unwrap().is_none());
    assert!(s.session(a.id + b.id + 100).await.unwrap().is_none());

    s.touch_session(a.id, 5_000).await.unwrap();
    let t = s.session(a.id).await.unwrap().expect("touched");
    assert_eq!(t.seen_ms, 5_000);
    assert_eq!((t.token_hash, t.created_ms), (a.token_hash, a.created_ms));

    let mine = s.user_sessions(alice.user_id()).await.unwrap();
    assert_eq!(set(mine.iter().map(|x| x.id)), set([a.id, b.id]));
    assert!(s.user_sessions(bob.user_id()).await.unwrap().is_empty());
    assert_eq!(s.active_session_count().await.unwrap(), 2);
}

pub async fn sessions_rotate(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let a = new_session(&s, session(&alice, 1, 1_000, 1_000)).await;

    let r = s
        .rotate_session(a.id, &[1; 32], [2; 32], 61_000, 2_000)
        .await
        .unwrap()
        .expect("the expected token was current");
    assert_eq!(r.id, a.id);
    assert_eq!(r.token_hash, [2; 32]);
    assert_eq!(r.prev_token_hash, Some([1; 32]));
    assert_eq!(r.prev_valid_until_ms, 61_000);
    assert_eq!(r.rotated_ms, 2_000);
    assert_eq!(s.session(a.id).await.unwrap(), Some(r.clone()));

    let lost = s
        .rotate_session(a.id, &[1; 32], [3; 32], 62_000, 2_500)
        .await
        .unwrap();
    assert!(lost.is_none(), "a second rotation from the old token loses");
    assert_eq!(
        s.session(a.id).await.unwrap(),
        Some(r),
        "unchanged by the lost rotation"
    );
    assert!(s.session_by_hash(&[3; 32]).await.unwrap().is_none());

    let by = |h: u8| {
        let s = s.clone();
        async move { s.session_by_hash(&[h; 32]).await.unwrap().map(|x| x.id) }
    };
    assert_eq!(by(2).await, Some(a.id), "the current token");
    assert_eq!(by(1).await, Some(a.id), "the previous token");

    s.rotate_session(a.id, &[2; 32], [4; 32], 70_000, 3_000)
        .await
        .unwrap()
        .expect("rotated again");
    assert_eq!(by(4).await, Some(a.id), "the current token");
    assert_eq!(by(2).await, Some(a.id), "the previous token");
    assert_eq!(by(1).await, None, "neither current nor previous any more");
    assert_eq!(
        s.active_session_count().await.unwrap(),
        1,
        "rotation is not a new session"
    );
}

pub async fn sessions_revoke(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    let a = new_session(&s, session(&alice, 1, 1_000, 1_000)).await;
    let b = new_session(&s, session(&alice, 2, 1_000, 1_000)).await;
    let c = new_session(&s, session(&alice, 3, 1_000, 1_000)).await;
    let d = new_session(&s, session(&bob, 4, 1_000, 1_000)).await;
    assert_eq!(s.active_session_count().await.unwrap(), 4);

    let r = s
        .revoke_session(a.id, 5_000)
        .await
        .unwrap()
        .expect("was active");
    assert_eq!((r.id, r.revoked_ms), (a.id, Some(5_000)));
    assert!(
        s.revoke_session(a.id, 5_100).await.unwrap().is_none(),
        "already revoked"
    );
    assert_eq!(
        s.session(a.id).await.unwrap().and_then(|x| x.revoked_ms),
        Some(5_000),
        "kept, marked revoked at the first revocation"
    );
    assert!(
        s.revoke_session(a.id + 1000, 5_000)
            .await
            .unwrap()
            .is_none(),
        "missing"
    );
    assert_eq!(s.active_session_count().await.unwrap(), 3);
    let mine = s.user_sessions(alice.user_id()).await.unwrap();
    assert_eq!(
        set(mine.iter().map(|x| x.id)),
        set([b.id, c.id]),
        "revoked ones are not listed"
    );

    assert_eq!(
        s.revoke_user_sessions(alice.user_id(), 6_000)
            .await
            .unwrap(),
        2,
        "the active ones"
    );
    assert_eq!(
        s.revoke_user_sessions(alice.user_id(), 6_100)
            .await
            .unwrap(),
        0
    );
    assert!(s.user_sessions(alice.user_id()).await.unwrap().is_empty());
    assert_eq!(
        s.session(b.id).await.unwrap().and_then(|x| x.revoked_ms),
        Some(6_000)
    );
    let bobs = s.user_sessions(bob.user_id()).await.unwrap();
    assert_eq!(
        set(bobs.iter().map(|x| x.id)),
        set([d.id]),
        "other users untouched"
    );
    assert_eq!(s.active_session_count().await.unwrap(), 1);
}

pub async fn sessions_purge(s: Arc<dyn Store>) {
    main_org(&s).await;
    let u = add(&s, user("alice"), OrgRole::Viewer).await;
    // Bounds: created at or before 200, or last used at or before 500.
    let idle = new_session(&s, session(&u, 1, 100, 100)).await; // purged (both)
    let old = new_session(&s, session(&u, 2, 100, 900)).await; // purged (created)
    let rotated = new_session(&s, session(&u, 3, 300, 300)).await; // kept: rotated at 900
    s.rotate_session(rotated.id, &[3; 32], [33; 32], 1_000, 900)
        .await
        .unwrap()
        .expect("rotated");
    let edge = new_session(&s, session(&u, 4, 300, 500)).await; // purged (idle, at the bound)
    let revoked = new_session(&s, session(&u, 5, 200, 800)).await; // purged (created, at the bound)
    s.revoke_session(revoked.id, 850).await.unwrap();
    let fresh = new_session(&s, session(&u, 6, 400, 600)).await; // kept
    assert_eq!(s.active_session_count().await.unwrap(), 5);

    let n = s
        .purge_sessions(SessionPurge {
            created_before_ms: 200,
            idle_before_ms: 500,
        })
        .await
        .unwrap();
    assert_eq!(
        n, 4,
        "created or idle at or before the bounds, revoked included"
    );
    for gone in [&idle, &old, &edge, &revoked] {
        assert!(
            s.session(gone.id).await.unwrap().is_none(),
            "session {} purged",
            gone.id
        );
    }
    for token in [1u8, 2, 4, 5] {
        assert!(
            s.session_by_hash(&[token; 32]).await.unwrap().is_none(),
            "token {token} unindexed"
        );
    }
    assert!(
        s.session(rotated.id).await.unwrap().is_some(),
        "used recently (rotated)"
    );
    assert!(s.session(fresh.id).await.unwrap().is_some());
    assert!(s.session_by_hash(&[33; 32]).await.unwrap().is_some());
    let left = s.user_sessions(u.user_id()).await.unwrap();
    assert_eq!(set(left.iter().map(|x| x.id)), set([rotated.id, fresh.id]));
    assert_eq!(s.active_session_count().await.unwrap(), 2);
}

// ---------------------------------------------------------------------------------------
// API keys and service accounts
// ---------------------------------------------------------------------------------------

pub async fn api_keys_create_list_delete(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let sa = add(&s, service_account("sa-1"), OrgRole::Viewer).await;

    let k1 = new_key(&s, api_key(MAIN, "ci", None, 1)).await;
    let k2 = new_key(&s, api_key(MAIN, "deploy", None, 2)).await;
    let t1 = new_key(&s, api_key(MAIN, "token", Some(&sa), 3)).await;
    let k3 = new_key(&s, api_key(OTHER, "ci", None, 4)).await;
    assert!(k1.id != 0, "a fresh id");
    assert_eq!(set([k1.id, k2.id, t1.id, k3.id]).len(), 4, "ids are fresh");
    assert_eq!(t1.service_account_id, Some(sa.id));

    assert_eq!(s.api_key(k1.id).await.unwrap(), Some(k1.clone()));
    assert_eq!(
        s.api_key_by_hash(&[3; 32]).await.unwrap().map(|k| k.id),
        Some(t1.id)
    );
    assert!(s.api_key_by_hash(&[9; 32]).await.unwrap().is_none());

    let ids = |keys: Vec<ApiKeyRecord>| set(keys.into_iter().map(|k| k.id));
    assert_eq!(
        ids(s.api_keys(MAIN, None).await.unwrap()),
        set([k1.id, k2.id]),
        "legacy keys only"
    );
    assert_eq!(
        ids(s.api_keys(MAIN, Some(sa.user_id())).await.unwrap()),
        set([t1.id]),
        "the account's tokens"
    );
    assert_eq!(
        ids(s.api_keys(OTHER, None).await.unwrap()),
        set([k3.id]),
        "per org"
    );
    assert!(s
        .api_keys(OTHER, Some(sa.user_id()))
        .await
        .unwrap()
        .is_empty());

    s.touch_api_key(k1.id, 500).await.unwrap();
    let touched = s.api_key(k1.id).await.unwrap().expect("still there");
    assert_eq!(touched.last_used, Some(500));
    assert_eq!(touched.name, "ci");

    let before = counts(&s).await.api_keys;
    let gone = s.delete_api_key(k2.id).await.unwrap();
    assert_eq!(
        gone.map(|k| k.name),
        Some("deploy".into()),
        "the deleted row"
    );
    assert!(
        s.delete_api_key(k2.id).await.unwrap().is_none(),
        "already gone"
    );
    assert!(s.api_key(k2.id).await.unwrap().is_none());
    assert!(
        s.api_key_by_hash(&[2; 32]).await.unwrap().is_none(),
        "unindexed"
    );
    assert_eq!(ids(s.api_keys(MAIN, None).await.unwrap()), set([k1.id]));
    assert_eq!(counts(&s).await.api_keys, before - 1);
}

pub async fn api_keys_names_unique(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let sa1 = add(&s, service_account("sa-1"), OrgRole::Viewer).await;
    let sa2 = add(&s, service_account("sa-2"), OrgRole::Viewer).await;

    let first = new_key(&s, api_key(MAIN, "ci", None, 1)).await;
    assert!(
        matches!(
            err(s.create_api_key(api_key(MAIN, "ci", None, 2)).await),
            StoreError::Conflict("name")
        ),
        "a legacy key name per org"
    );
    assert!(
        s.api_key_by_hash(&[2; 32]).await.unwrap().is_none(),
        "a refused create writes nothing"
    );
    new_key(&s, api_key(OTHER, "ci", None, 3)).await;
    new_key(&s, api_key(MAIN, "ci", Some(&sa1), 4)).await;
    assert!(
        matches!(
            err(s.create_api_key(api_key(MAIN, "ci", Some(&sa1), 5)).await),
            StoreError::Conflict("name")
        ),
        "a token name per service account"
    );
    new_key(&s, api_key(MAIN, "ci", Some(&sa2), 6)).await;

    s.delete_api_key(first.id).await.unwrap();
    new_key(&s, api_key(MAIN, "ci", None, 7)).await;
}

pub async fn api_keys_delete_service_account(s: Arc<dyn Store>) {
    main_org(&s).await;
    add(&s, user("alice"), OrgRole::Viewer).await;
    let legacy = new_key(&s, api_key(MAIN, "legacy", None, 1)).await;
    let before = counts(&s).await;

    let sa = add(&s, service_account("sa-1"), OrgRole::Viewer).await;
    let other = add(&s, service_account("sa-2"), OrgRole::Viewer).await;
    let t1 = new_key(&s, api_key(MAIN, "t1", Some(&sa), 2)).await;
    let t2 = new_key(&s, api_key(MAIN, "t2", Some(&sa), 3)).await;
    let o1 = new_key(&s, api_key(MAIN, "t1", Some(&other), 4)).await;
    let mid = counts(&s).await;
    assert_eq!(mid.service_accounts, before.service_accounts + 2);
    assert_eq!(mid.users, before.users, "service accounts are not users");

    let gone = s.delete_service_account(sa.user_id()).await.unwrap();
    assert_eq!(
        gone.map(|u| u.login),
        Some("sa-1".into()),
        "the deleted row"
    );
    assert!(s.user(sa.user_id()).await.unwrap().is_none());
    assert!(s.user_by_login("sa-1").await.unwrap().is_none());
    for t in [&t1, &t2] {
        assert!(
            s.api_key(t.id).await.unwrap().is_none(),
            "token {} deleted",
            t.name
        );
        assert!(
            s.api_key_by_hash(&t.hash).await.unwrap().is_none(),
            "token {} unindexed",
            t.name
        );
    }
    assert!(s
        .api_keys(MAIN, Some(sa.user_id()))
        .await
        .unwrap()
        .is_empty());
    assert!(
        s.api_key(legacy.id).await.unwrap().is_some(),
        "legacy keys stay"
    );
    assert!(
        s.api_key(o1.id).await.unwrap().is_some(),
        "other accounts' tokens stay"
    );
    assert_eq!(counts(&s).await.service_accounts, mid.service_accounts - 1);
    assert!(
        s.delete_service_account(sa.user_id())
            .await
            .unwrap()
            .is_none(),
        "already gone"
    );

    s.delete_service_account(other.user_id()).await.unwrap();
    let after = counts(&s).await;
    assert_eq!(
        after, before,
        "every count back to before the accounts and their tokens"
    );
}

// ---------------------------------------------------------------------------------------
// Encryption
// ---------------------------------------------------------------------------------------

pub async fn encryption_deks(s: Arc<dyn Store>) {
    assert!(s.deks().await.unwrap().is_empty());
    assert_eq!(s.active_dek().await.unwrap(), None);
    let a = s.allocate_dek_id().await.unwrap();
    let b = s.allocate_dek_id().await.unwrap();
    assert!(b > a, "a sequence: {a} then {b}");

    s.install_active_dek(dek(a, 100)).await.unwrap();
    assert_eq!(s.active_dek().await.unwrap(), Some(a));
    let da = s.dek(a).await.unwrap().expect("installed");
    assert_eq!(
        (da.state, da.retired, da.created),
        (DekState::Active, None, 100)
    );

    s.install_active_dek(dek(b, 200)).await.unwrap();
    assert_eq!(s.active_dek().await.unwrap(), Some(b));
    let da = s.dek(a).await.unwrap().expect("kept");
    assert_eq!(
        da.state,
        DekState::Retired,
        "the previous active key retires"
    );
    assert_eq!(da.retired, Some(200), "at the new key's creation");
    assert_eq!(
        s.dek(b).await.unwrap().map(|d| d.state),
        Some(DekState::Active)
    );
    assert_eq!(
        set(s.deks().await.unwrap().into_iter().map(|d| d.id)),
        set([a, b])
    );
    let c = s.allocate_dek_id().await.unwrap();
    assert!(c > b, "still increasing: {b} then {c}");
    assert!(
        s.dek(c).await.unwrap().is_none(),
        "allocating installs nothing"
    );

    s.reserve_dek_uses(b, 100).await.unwrap();
    assert_eq!(s.dek(b).await.unwrap().map(|d| d.reserved), Some(100));
    s.reserve_dek_uses(b, 50).await.unwrap();
    assert_eq!(
        s.dek(b).await.unwrap().map(|d| d.reserved),
        Some(100),
        "never lowered"
    );
    s.reserve_dek_uses(b, 1_000).await.unwrap();
    assert_eq!(s.dek(b).await.unwrap().map(|d| d.reserved), Some(1_000));

    s.rewrap_dek(a, "kek-2", vec![1, 2, 3]).await.unwrap();
    let da = s.dek(a).await.unwrap().expect("kept");
    assert_eq!(
        (da.kek_id.as_str(), da.wrapped.as_slice()),
        ("kek-2", &[1u8, 2, 3][..])
    );
    assert_eq!(
        (da.state, da.retired, da.created),
        (DekState::Retired, Some(200), 100),
        "a re-wrap changes only the wrapping"
    );
    assert_eq!(s.active_dek().await.unwrap(), Some(b));
}

pub async fn encryption_destroy_dek(s: Arc<dyn Store>) {
    let (a, b) = two_deks(&s).await;
    s.write_secrets(&[put("k", a, b"x")]).await.unwrap();
    assert!(!s.destroy_dek(a).await.unwrap(), "still referenced");
    assert!(!s.destroy_dek(b).await.unwrap(), "active");
    assert_eq!(
        s.dek(a).await.unwrap().map(|d| d.state),
        Some(DekState::Retired)
    );

    s.write_secrets(&[del("k")]).await.unwrap();
    assert!(s.destroy_dek(a).await.unwrap(), "retired and unreferenced");
    let da = s.dek(a).await.unwrap().expect("the row stays");
    assert_eq!(da.state, DekState::Destroyed);
    assert!(da.wrapped.is_empty(), "the wrapped bytes are erased");
    assert!(!s.destroy_dek(a).await.unwrap(), "already destroyed");
    assert_eq!(
        s.dek(b).await.unwrap().map(|d| d.state),
        Some(DekState::Active)
    );
    assert_eq!(s.active_dek().await.unwrap(), Some(b));
}

pub async fn encryption_secret_refcounts(s: Arc<dyn Store>) {
    let (a, b) = two_deks(&s).await;
    assert_eq!((refs(&s, a).await, refs(&s, b).await), (0, 0));
    assert_eq!(s.secret_count().await.unwrap(), 0);

    s.write_secrets(&[put("s/1", a, b"one"), put("s/2", a, b"two")])
        .await
        .unwrap();
    assert_eq!(refs(&s, a).await, 2);
    assert_eq!(
        secret(&s, "s/1").await,
        Some(b"one".to_vec()),
        "the stored ciphertext"
    );
    assert_eq!(s.secret_count().await.unwrap(), 2);

    s.write_secrets(&[put("s/1", b, b"one-b")]).await.unwrap();
    assert_eq!(
        (refs(&s, a).await, refs(&s, b).await),
        (1, 1),
        "an overwrite moves the count"
    );
    assert_eq!(secret(&s, "s/1").await, Some(b"one-b".to_vec()));

    s.write_secrets(&[put("s/1", b, b"one-b2")]).await.unwrap();
    assert_eq!(
        (refs(&s, a).await, refs(&s, b).await),
        (1, 1),
        "same DEK: same count"
    );

    s.write_secrets(&[del("s/2")]).await.unwrap();
    assert_eq!(
        (refs(&s, a).await, refs(&s, b).await),
        (0, 1),
        "a delete decrements"
    );
    assert_eq!(secret(&s, "s/2").await, None);
    assert_eq!(s.secret_count().await.unwrap(), 1);

    s.write_secrets(&[del("s/missing")]).await.unwrap();
    assert_eq!(
        (refs(&s, a).await, refs(&s, b).await),
        (0, 1),
        "deleting nothing counts nothing"
    );
    assert_eq!(s.secret_count().await.unwrap(), 1);
}

pub async fn encryption_refcounts_across_writers(s: Arc<dyn Store>) {
    main_org(&s).await;
    let (a, b) = two_deks(&s).await;
    let key = "datasource/1/prom/password";

    // Datasources.
    let ds = s
        .create_datasource(datasource(MAIN, "prom", "p1"), &[put(key, a, b"p1")])
        .await
        .unwrap();
    assert_eq!(refs(&s, a).await, 1, "create_datasource writes its secrets");
    assert_eq!(secret(&s, key).await, Some(b"p1".to_vec()));

    let refused = s
        .create_datasource(
            datasource(MAIN, "prom", "p2"),
            &[put("datasource/x", a, b"x")],
        )
        .await;
    assert!(matches!(err(refused), StoreError::Conflict("name")));
    assert_eq!(
        secret(&s, "datasource/x").await,
        None,
        "a refused create writes no secret"
    );
    assert_eq!(refs(&s, a).await, 1);

    let stale = s.update_datasource(&ds, 7, &[put(key, b, b"stale")]).await;
    assert!(matches!(err(stale), StoreError::Stale("version")));
    assert_eq!(
        secret(&s, key).await,
        Some(b"p1".to_vec()),
        "a stale update writes no secret"
    );

    s.update_datasource(&ds, 1, &[put(key, b, b"p2")])
        .await
        .unwrap();
    assert_eq!(
        (refs(&s, a).await, refs(&s, b).await),
        (0, 1),
        "update_datasource moves the count"
    );
    s.delete_datasource(MAIN, ds.id, &[del(key)]).await.unwrap();
    assert_eq!(
        refs(&s, b).await,
        0,
        "delete_datasource deletes its secrets"
    );
    assert_eq!(secret(&s, key).await, None);

    // Settings overrides.
    let skey = "setting/smtp/password";
    s.apply_setting_overrides(
        &[setting("smtp", "password", None, true)],
        &[],
        &[put(skey, a, b"s")],
    )
    .await
    .unwrap();
    assert_eq!(refs(&s, a).await, 1, "apply_setting_overrides writes");
    s.apply_setting_overrides(&[], &[("smtp".into(), "password".into())], &[del(skey)])
        .await
        .unwrap();
    assert_eq!(refs(&s, a).await, 0, "apply_setting_overrides deletes");

    // Plugin settings.
    let pkey = "plugin/1/app/apiKey";
    s.apply_plugin_settings(&[plugin(MAIN, "app", true)], &[put(pkey, b, b"k")])
        .await
        .unwrap();
    assert_eq!(refs(&s, b).await, 1, "apply_plugin_settings writes");

    // Notifiers.
    let nkey = "notifier/1/ops/url";
    s.apply_notifiers(&[notifier(MAIN, "ops", "Ops")], &[], &[put(nkey, b, b"u")])
        .await
        .unwrap();
    assert_eq!(refs(&s, b).await, 2, "apply_notifiers writes");
    s.apply_notifiers(&[], &[(MAIN, "ops".into())], &[del(nkey)])
        .await
        .unwrap();
    assert_eq!(refs(&s, b).await, 1, "apply_notifiers deletes");

    assert_eq!(
        s.secret_count().await.unwrap(),
        1,
        "only the plugin secret is left"
    );
    assert_eq!(secret(&s, pkey).await, Some(b"k".to_vec()));
}

pub async fn encryption_secrets_paging(s: Arc<dyn Store>) {
    let a = s.allocate_dek_id().await.unwrap();
    s.install_active_dek(dek(a, 100)).await.unwrap();
    for k in ["k3", "k1", "k5", "k2", "k4"] {
        s.write_secrets(&[put(k, a, format!("v-{k}").as_bytes())])
            .await
            .unwrap();
    }
    assert_eq!(s.secret_count().await.unwrap(), 5);
    let keys = |page: Vec<(String, Vec<u8>)>| page.into_iter().map(|(k, _)| k).collect::<Vec<_>>();

    let first = s.secrets_after(None, 2).await.unwrap();
    assert_eq!(
        first[0],
        ("k1".to_string(), b"v-k1".to_vec()),
        "key and stored bytes"
    );
    assert_eq!(keys(first), ["k1", "k2"], "in key order");
    assert_eq!(
        keys(s.secrets_after(Some("k2"), 2).await.unwrap()),
        ["k3", "k4"],
        "after the cursor"
    );
    assert_eq!(keys(s.secrets_after(Some("k4"), 2).await.unwrap()), ["k5"]);
    assert!(
        s.secrets_after(Some("k5"), 2).await.unwrap().is_empty(),
        "the end"
    );
    assert_eq!(
        keys(s.secrets_after(Some("k1a"), 1).await.unwrap()),
        ["k2"],
        "a cursor need not exist"
    );
    assert_eq!(s.secrets_after(None, 100).await.unwrap().len(), 5);
}

pub async fn encryption_commit_reencrypt(s: Arc<dyn Store>) {
    let (a, b) = two_deks(&s).await;
    for k in ["k1", "k2", "k3", "k4"] {
        s.write_secrets(&[put(k, a, k.as_bytes())]).await.unwrap();
    }
    assert_eq!(refs(&s, a).await, 4);
    assert_eq!(s.reencrypt_cursor().await.unwrap(), None);

    let page = s.secrets_after(None, 10).await.unwrap();
    assert_eq!(page.len(), 4);
    // Between the read and the commit, k2 is rewritten and k4 deleted.
    s.write_secrets(&[put("k2", a, b"k2-new"), del("k4")])
        .await
        .unwrap();
    assert_eq!(refs(&s, a).await, 3);

    let batch: Vec<Reencrypted> = page
        .iter()
        .map(|(key, bytes)| Reencrypted {
            key: key.clone(),
            expected: bytes.clone(),
            new: sealed(b, format!("{key}-b").as_bytes()),
        })
        .collect();
    let written = s.commit_reencrypt(&batch, Some("k4")).await.unwrap();
    assert_eq!(
        written, 2,
        "k2 and k4 changed concurrently: skipped, not counted"
    );
    assert_eq!(secret(&s, "k1").await, Some(b"k1-b".to_vec()));
    assert_eq!(secret(&s, "k3").await, Some(b"k3-b".to_vec()));
    assert_eq!(
        secret(&s, "k2").await,
        Some(b"k2-new".to_vec()),
        "the concurrent write wins"
    );
    assert_eq!(
        secret(&s, "k4").await,
        None,
        "a deleted secret is not resurrected"
    );
    assert_eq!(
        (refs(&s, a).await, refs(&s, b).await),
        (1, 2),
        "counts moved for written ones"
    );
    assert_eq!(
        s.reencrypt_cursor().await.unwrap(),
        Some("k4".into()),
        "the cursor is stored"
    );

    assert_eq!(
        s.commit_reencrypt(&batch, Some("k4")).await.unwrap(),
        0,
        "nothing still holds the bytes read"
    );
    assert_eq!((refs(&s, a).await, refs(&s, b).await), (1, 2));
    assert_eq!(s.commit_reencrypt(&[], None).await.unwrap(), 0);
    assert_eq!(
        s.reencrypt_cursor().await.unwrap(),
        None,
        "the cursor is cleared"
    );
}

// ---------------------------------------------------------------------------------------
// Datasources
// ---------------------------------------------------------------------------------------

pub async fn datasources_create_and_update(s: Arc<dyn Store>) {
    main_org(&s).await;
    let mut given = datasource(MAIN, "prom", "p1");
    given.version = 9;
    let d = s.create_datasource(given, &[]).await.unwrap();
    assert_ne!(d.id, 0, "a fresh id");
    assert_eq!(d.version, 1, "a new row is version 1");
    assert_eq!(
        (d.name.as_str(), d.uid.as_str(), d.org_id),
        ("prom", "p1", 1)
    );

    assert_eq!(s.datasource(MAIN, d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(
        s.datasource_by_uid(MAIN, "p1").await.unwrap(),
        Some(d.clone())
    );
    assert_eq!(
        s.datasource_by_name(MAIN, "prom").await.unwrap(),
        Some(d.clone())
    );
    assert!(
        s.datasource(OTHER, d.id).await.unwrap().is_none(),
        "another org's id"
    );
    assert!(s.datasource_by_uid(OTHER, "p1").await.unwrap().is_none());
    assert!(s.datasource_by_name(OTHER, "prom").await.unwrap().is_none());

    let mut change = d.clone();
    change.url = "http://prometheus-2:9090".into();
    change.updated = 200;
    let u = s.update_datasource(&change, 1, &[]).await.unwrap();
    assert_eq!(
        (u.id, u.version, u.url.as_str()),
        (d.id, 2, "http://prometheus-2:9090")
    );
    assert_eq!(s.datasource(MAIN, d.id).await.unwrap(), Some(u.clone()));

    assert!(
        matches!(
            err(s.update_datasource(&change, 1, &[]).await),
            StoreError::Stale("version")
        ),
        "the version moved on"
    );
    assert_eq!(
        s.datasource(MAIN, d.id).await.unwrap().map(|x| x.version),
        Some(2)
    );

    let mut renamed = u.clone();
    renamed.name = "prom2".into();
    renamed.uid = "p2".into();
    let r = s.update_datasource(&renamed, 2, &[]).await.unwrap();
    assert_eq!(
        (r.version, r.name.as_str(), r.uid.as_str()),
        (3, "prom2", "p2")
    );
    assert!(
        s.datasource_by_name(MAIN, "prom").await.unwrap().is_none(),
        "the old name unindexed"
    );
    assert!(
        s.datasource_by_uid(MAIN, "p1").await.unwrap().is_none(),
        "the old uid unindexed"
    );
    assert_eq!(
        s.datasource_by_name(MAIN, "prom2")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(d.id)
    );
    assert_eq!(
        s.datasource_by_uid(MAIN, "p2").await.unwrap().map(|x| x.id),
        Some(d.id)
    );

    let again = new_ds(&s, datasource(MAIN, "prom", "p1")).await;
    assert_ne!(again.id, d.id, "the old name and uid are free");
    let all = s.datasources(MAIN).await.unwrap();
    assert_eq!(set(all.into_iter().map(|x| x.id)), set([d.id, again.id]));
    assert_eq!(counts(&s).await.datasources, 2, "updates do not count");
}

pub async fn datasources_unique_per_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let a = new_ds(&s, datasource(MAIN, "prom", "p1")).await;
    let b = new_ds(&s, datasource(MAIN, "loki", "l1")).await;

    assert!(
        matches!(
            err(s
                .create_datasource(datasource(MAIN, "prom", "p9"), &[])
                .await),
            StoreError::Conflict("name")
        ),
        "a name per org"
    );
    assert!(
        matches!(
            err(s
                .create_datasource(datasource(MAIN, "other", "p1"), &[])
                .await),
            StoreError::Conflict("uid")
        ),
        "a uid per org"
    );
    assert!(
        s.datasource_by_uid(MAIN, "p9").await.unwrap().is_none(),
        "nothing written"
    );

    let c = new_ds(&s, datasource(OTHER, "prom", "p1")).await;
    assert_ne!(c.id, a.id);
    assert_eq!(
        s.datasource_by_name(MAIN, "prom")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(a.id)
    );
    assert_eq!(
        s.datasource_by_name(OTHER, "prom")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(c.id)
    );
    assert_eq!(
        s.datasource_by_uid(OTHER, "p1")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(c.id)
    );
    let ids = |v: Vec<DataSourceRecord>| set(v.into_iter().map(|x| x.id));
    assert_eq!(
        ids(s.datasources(MAIN).await.unwrap()),
        set([a.id, b.id]),
        "only the org's"
    );
    assert_eq!(ids(s.datasources(OTHER).await.unwrap()), set([c.id]));

    let mut x = b.clone();
    x.name = "prom".into();
    assert!(
        matches!(
            err(s.update_datasource(&x, 1, &[]).await),
            StoreError::Conflict("name")
        ),
        "a rename onto a taken name"
    );
    let mut x = b.clone();
    x.uid = "p1".into();
    assert!(
        matches!(
            err(s.update_datasource(&x, 1, &[]).await),
            StoreError::Conflict("uid")
        ),
        "a new uid that is taken"
    );
    assert_eq!(
        s.datasource(MAIN, b.id).await.unwrap(),
        Some(b.clone()),
        "unchanged"
    );
    assert_eq!(
        s.datasource_by_name(MAIN, "loki")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(b.id)
    );
    assert_eq!(counts(&s).await.datasources, 3);
}

pub async fn datasources_delete_by_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let a = new_ds(&s, datasource(MAIN, "prom", "p1")).await;
    let c = new_ds(&s, datasource(OTHER, "prom", "p1")).await;

    assert!(
        s.delete_datasource(OTHER, a.id, &[])
            .await
            .unwrap()
            .is_none(),
        "not the org's"
    );
    assert_eq!(
        s.datasource(MAIN, a.id).await.unwrap(),
        Some(a.clone()),
        "kept"
    );
    assert_eq!(counts(&s).await.datasources, 2);

    let gone = s.delete_datasource(MAIN, a.id, &[]).await.unwrap();
    assert_eq!(gone, Some(a.clone()), "the deleted row");
    assert!(
        s.delete_datasource(MAIN, a.id, &[])
            .await
            .unwrap()
            .is_none(),
        "already gone"
    );
    assert!(s.datasource(MAIN, a.id).await.unwrap().is_none());
    assert!(s.datasource_by_uid(MAIN, "p1").await.unwrap().is_none());
    assert!(s.datasource_by_name(MAIN, "prom").await.unwrap().is_none());
    assert_eq!(
        s.datasource(OTHER, c.id).await.unwrap(),
        Some(c.clone()),
        "the other org's stays"
    );
    assert_eq!(counts(&s).await.datasources, 1);
    new_ds(&s, datasource(MAIN, "prom", "p1")).await;
}

// ---------------------------------------------------------------------------------------
// Settings and license
// ---------------------------------------------------------------------------------------

pub async fn settings_overrides(s: Arc<dyn Store>) {
    let sorted = |s: Arc<dyn Store>| async move {
        let mut v = s.setting_overrides().await.expect("overrides");
        v.sort_by(|a, b| (&a.section, &a.key).cmp(&(&b.section, &b.key)));
        v
    };
    assert!(sorted(s.clone()).await.is_empty());
    let form = setting("auth", "disable_login_form", Some("true"), false);
    let smtp = setting("smtp", "password", None, true);
    s.apply_setting_overrides(&[form.clone(), smtp.clone()], &[], &[])
        .await
        .unwrap();
    assert_eq!(sorted(s.clone()).await, vec![form, smtp.clone()]);

    let form2 = setting("auth", "disable_login_form", Some("false"), false);
    s.apply_setting_overrides(
        std::slice::from_ref(&form2),
        &[("smtp".into(), "password".into())],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        sorted(s.clone()).await,
        vec![form2.clone()],
        "upserted by section and key, removed"
    );

    s.apply_setting_overrides(&[], &[("nope".into(), "nothing".into())], &[])
        .await
        .unwrap();
    assert_eq!(
        sorted(s.clone()).await,
        vec![form2],
        "removing a missing override is fine"
    );
}

pub async fn license_and_renewal(s: Arc<dyn Store>) {
    assert_eq!(s.license().await.unwrap(), None);
    assert_eq!(s.last_renewal().await.unwrap(), None);

    let t1 = StoredLicense {
        token: "token-1".into(),
        stored_at: 100,
    };
    s.put_license(&t1).await.unwrap();
    assert_eq!(s.license().await.unwrap(), Some(t1));
    let t2 = StoredLicense {
        token: "token-2".into(),
        stored_at: 200,
    };
    s.put_license(&t2).await.unwrap();
    assert_eq!(s.license().await.unwrap(), Some(t2), "replaced");
    assert!(s.delete_license().await.unwrap(), "a token was there");
    assert_eq!(s.license().await.unwrap(), None);
    assert!(!s.delete_license().await.unwrap(), "nothing left");

    let r1 = RenewalRecord {
        at: 300,
        trigger: "manual".into(),
        ok: false,
        error: "offline".into(),
    };
    s.put_renewal(&r1).await.unwrap();
    assert_eq!(s.last_renewal().await.unwrap(), Some(r1));
    let r2 = RenewalRecord {
        at: 400,
        trigger: "automatic".into(),
        ok: true,
        error: String::new(),
    };
    s.put_renewal(&r2).await.unwrap();
    assert_eq!(s.last_renewal().await.unwrap(), Some(r2), "the last one");
}

// ---------------------------------------------------------------------------------------
// Dashboards, folders, alerts
// ---------------------------------------------------------------------------------------

pub async fn dashboards_apply(s: Arc<dyn Store>) {
    main_org(&s).await;
    let mut d1 = dashboard(MAIN, "d1", &["prod", "web"]);
    d1.folder_uid = "f1".into();
    apply(
        &s,
        DashboardBatch {
            folders: vec![folder(MAIN, "f1")],
            upserts: vec![
                (d1, Vec::new()),
                (dashboard(MAIN, "d2", &["db"]), Vec::new()),
            ],
            deletes: Vec::new(),
        },
    )
    .await;
    let folders = s.folders(MAIN).await.unwrap();
    assert_eq!(folders.len(), 1);
    let f1 = folders[0].clone();
    assert_ne!(f1.id, 0, "a folder gets an id");
    assert_eq!((f1.uid.as_str(), f1.title.as_str()), ("f1", "Folder f1"));
    let uids = |v: Vec<DashboardRecord>| set(v.into_iter().map(|d| d.uid));
    assert_eq!(
        uids(s.dashboards(MAIN).await.unwrap()),
        set(["d1".to_string(), "d2".into()])
    );
    let first = dash(&s, MAIN, "d1").await;
    assert_ne!(first.id, 0, "a dashboard gets an id");
    assert_ne!(first.id, dash(&s, MAIN, "d2").await.id);
    assert_eq!(
        (first.folder_uid.as_str(), first.tags.clone()),
        ("f1", vec!["prod".into(), "web".into()])
    );
    assert!(s.dashboard(MAIN, "nope").await.unwrap().is_none());
    let c = counts(&s).await;
    assert_eq!((c.dashboards, c.folders, c.tags), (2, 1, 3));

    // A folder re-applied keeps its id and is not counted twice.
    let mut f = folder(MAIN, "f1");
    f.title = "Renamed".into();
    apply(
        &s,
        DashboardBatch {
            folders: vec![f],
            ..DashboardBatch::default()
        },
    )
    .await;
    let folders = s.folders(MAIN).await.unwrap();
    assert_eq!(folders.len(), 1);
    assert_eq!(
        (folders[0].id, folders[0].title.as_str()),
        (f1.id, "Renamed")
    );
    assert_eq!(counts(&s).await.folders, 1);

    // A re-upsert keeps the id and bumps the version.
    let mut again = dashboard(MAIN, "d1", &["prod"]);
    again.title = "New title".into();
    apply(&s, upsert(again, Vec::new())).await;
    let second = dash(&s, MAIN, "d1").await;
    assert_eq!(second.id, first.id, "the id is kept");
    assert_eq!(second.version, first.version + 1, "the version bumps");
    assert_eq!(
        (second.title.as_str(), second.tags.clone()),
        ("New title", vec!["prod".into()])
    );
    let c = counts(&s).await;
    assert_eq!((c.dashboards, c.tags), (2, 2), "tags follow the new row");

    apply(&s, delete_dashboard(MAIN, "d2")).await;
    assert!(s.dashboard(MAIN, "d2").await.unwrap().is_none());
    let c = counts(&s).await;
    assert_eq!((c.dashboards, c.tags), (1, 1));
    apply(&s, delete_dashboard(MAIN, "d2")).await;
    assert_eq!(
        counts(&s).await.dashboards,
        1,
        "deleting a missing dashboard changes nothing"
    );

    // Deletes run before upserts in one batch: deleting and upserting the same
    // dashboard leaves the upserted one.
    apply(&s, upsert(dashboard(MAIN, "d2", &["db"]), Vec::new())).await;
    let mut back = dashboard(MAIN, "d2", &["db"]);
    back.provider = "other".into();
    apply(
        &s,
        DashboardBatch {
            folders: Vec::new(),
            upserts: vec![(back, Vec::new())],
            deletes: vec![(MAIN.0, "d2".into())],
        },
    )
    .await;
    let d2 = s
        .dashboard(MAIN, "d2")
        .await
        .unwrap()
        .expect("the upsert ran after the delete");
    assert_eq!(d2.provider, "other", "the batch's row");
    let c = counts(&s).await;
    assert_eq!((c.dashboards, c.tags), (2, 2));

    assert_eq!(
        uids(s.provider_dashboards("default").await.unwrap()),
        set(["d1".to_string()])
    );
    assert_eq!(
        uids(s.provider_dashboards("other").await.unwrap()),
        set(["d2".to_string()])
    );
    assert!(s.provider_dashboards("none").await.unwrap().is_empty());
}

pub async fn dashboards_alerts_keep_id_and_pause(s: Arc<dyn Store>) {
    main_org(&s).await;
    apply(
        &s,
        upsert(
            dashboard(MAIN, "d1", &[]),
            vec![alert(MAIN, "d1", 1), alert(MAIN, "d1", 2)],
        ),
    )
    .await;
    let before = alerts_by_panel(&s, MAIN).await;
    assert_eq!(before.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 2]);
    let (id1, id2) = (before[0].1.id, before[1].1.id);
    assert!(id1 != 0 && id2 != 0 && id1 != id2, "fresh alert ids");
    let mut panels = dash(&s, MAIN, "d1").await.alert_panels;
    panels.sort_unstable();
    assert_eq!(panels, [1, 2], "the store records the alert panels");
    assert_eq!(counts(&s).await.alerts, 2);

    assert_eq!(
        s.set_alerts_paused(Some(MAIN), Some(&[id1]), true, 500)
            .await
            .unwrap(),
        1
    );
    let now = alerts_by_panel(&s, MAIN).await;
    assert!(
        now[0].1.paused && !now[1].1.paused,
        "only the given alert paused"
    );

    // Re-upsert: panel 1 kept, panel 2 gone, panel 3 new.
    apply(
        &s,
        upsert(
            dashboard(MAIN, "d1", &[]),
            vec![alert(MAIN, "d1", 1), alert(MAIN, "d1", 3)],
        ),
    )
    .await;
    let after = alerts_by_panel(&s, MAIN).await;
    assert_eq!(after.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(after[0].1.id, id1, "an alert keeps its id by panel");
    assert!(after[0].1.paused, "an alert keeps its pause by panel");
    assert!(
        after[1].1.id != id1 && after[1].1.id != 0,
        "a new panel's alert is new"
    );
    assert!(!after[1].1.paused);
    let mut panels = dash(&s, MAIN, "d1").await.alert_panels;
    panels.sort_unstable();
    assert_eq!(panels, [1, 3]);
    assert_eq!(counts(&s).await.alerts, 2);

    apply(&s, upsert(dashboard(MAIN, "d1", &[]), Vec::new())).await;
    assert!(
        s.alerts(MAIN).await.unwrap().is_empty(),
        "alerts follow the dashboard"
    );
    assert_eq!(counts(&s).await.alerts, 0);
    apply(
        &s,
        upsert(dashboard(MAIN, "d1", &[]), vec![alert(MAIN, "d1", 4)]),
    )
    .await;
    apply(&s, delete_dashboard(MAIN, "d1")).await;
    assert!(
        s.alerts(MAIN).await.unwrap().is_empty(),
        "deleted with the dashboard"
    );
    assert_eq!(counts(&s).await.alerts, 0);
}

pub async fn dashboards_two_orgs_same_uid(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    apply(
        &s,
        DashboardBatch {
            folders: vec![folder(MAIN, "f"), folder(OTHER, "f")],
            upserts: vec![
                (
                    dashboard(MAIN, "same", &["a"]),
                    vec![alert(MAIN, "same", 1)],
                ),
                (
                    dashboard(OTHER, "same", &["b"]),
                    vec![alert(OTHER, "same", 1)],
                ),
            ],
            deletes: Vec::new(),
        },
    )
    .await;
    let one = dash(&s, MAIN, "same").await;
    let two = dash(&s, OTHER, "same").await;
    assert_eq!((one.org_id, one.tags.clone()), (1, vec!["a".to_string()]));
    assert_eq!((two.org_id, two.tags.clone()), (2, vec!["b".to_string()]));
    assert_ne!(one.id, two.id, "two dashboards");
    assert_eq!(
        s.dashboards(MAIN).await.unwrap(),
        vec![one.clone()],
        "only the org's"
    );
    assert_eq!(s.dashboards(OTHER).await.unwrap(), vec![two.clone()]);
    assert_eq!(s.folders(MAIN).await.unwrap().len(), 1);
    assert_eq!(s.folders(OTHER).await.unwrap().len(), 1);
    let a1 = alerts_by_panel(&s, MAIN).await;
    let a2 = alerts_by_panel(&s, OTHER).await;
    assert_eq!((a1.len(), a2.len()), (1, 1), "an alert per org");
    assert_eq!((a1[0].1.org_id, a2[0].1.org_id), (1, 2));
    assert_ne!(a1[0].1.id, a2[0].1.id);
    let c = counts(&s).await;
    assert_eq!((c.dashboards, c.folders, c.tags, c.alerts), (2, 2, 2, 2));

    // Re-upserting org 1's leaves org 2's alone.
    let mut again = dashboard(MAIN, "same", &["a"]);
    again.title = "Changed".into();
    apply(&s, upsert(again, vec![alert(MAIN, "same", 1)])).await;
    assert_eq!(
        dash(&s, OTHER, "same").await,
        two,
        "the other org's dashboard is untouched"
    );
    assert_eq!(alerts_by_panel(&s, OTHER).await, a2, "and its alerts");
    assert_eq!(alerts_by_panel(&s, MAIN).await[0].1.id, a1[0].1.id);

    apply(&s, delete_dashboard(MAIN, "same")).await;
    assert!(s.dashboard(MAIN, "same").await.unwrap().is_none());
    assert_eq!(
        dash(&s, OTHER, "same").await,
        two,
        "deleting one leaves the other"
    );
    assert!(s.alerts(MAIN).await.unwrap().is_empty());
    assert_eq!(alerts_by_panel(&s, OTHER).await, a2);
    let c = counts(&s).await;
    assert_eq!((c.dashboards, c.tags, c.alerts), (1, 1, 1));
}

pub async fn alerts_pause_per_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    apply(
        &s,
        DashboardBatch {
            upserts: vec![
                (
                    dashboard(MAIN, "d", &[]),
                    vec![
                        alert(MAIN, "d", 1),
                        alert(MAIN, "d", 2),
                        alert(MAIN, "d", 3),
                    ],
                ),
                (dashboard(OTHER, "d", &[]), vec![alert(OTHER, "d", 1)]),
            ],
            ..DashboardBatch::default()
        },
    )
    .await;
    let main_ids: Vec<u64> = alerts_by_panel(&s, MAIN)
        .await
        .iter()
        .map(|(_, a)| a.id)
        .collect();
    let other_id = alerts_by_panel(&s, OTHER).await[0].1.id;
    let paused = |org: OrgId| {
        let s = s.clone();
        async move {
            alerts_by_panel(&s, org)
                .await
                .iter()
                .map(|(_, a)| a.paused)
                .collect::<Vec<_>>()
        }
    };

    let pause = |org: Option<OrgId>, ids: Option<Vec<u64>>, paused: bool, at: i64| {
        let s = s.clone();
        async move {
            s.set_alerts_paused(org, ids.as_deref(), paused, at)
                .await
                .expect("set alerts paused")
        }
    };

    assert_eq!(
        pause(Some(MAIN), Some(vec![other_id]), true, 500).await,
        0,
        "another org's alert is not the org's"
    );
    assert_eq!(paused(OTHER).await, [false]);

    assert_eq!(
        pause(Some(MAIN), None, true, 600).await,
        3,
        "all of the org's"
    );
    assert_eq!(paused(MAIN).await, [true, true, true]);
    assert_eq!(paused(OTHER).await, [false], "other orgs untouched");
    assert_eq!(
        pause(Some(MAIN), None, true, 650).await,
        3,
        "the count is of alerts touched, changed or not"
    );

    assert_eq!(
        pause(Some(MAIN), Some(vec![main_ids[1]]), false, 700).await,
        1
    );
    assert_eq!(
        paused(MAIN).await,
        [true, false, true],
        "only the given one resumed"
    );

    assert_eq!(pause(Some(OTHER), None, true, 800).await, 1);
    assert_eq!(paused(OTHER).await, [true]);
    assert_eq!(paused(MAIN).await, [true, false, true]);

    assert_eq!(pause(None, None, false, 900).await, 4, "every org's");
    assert_eq!(paused(MAIN).await, [false, false, false]);
    assert_eq!(paused(OTHER).await, [false]);
}

// ---------------------------------------------------------------------------------------
// Plugin settings and notifiers
// ---------------------------------------------------------------------------------------

pub async fn plugin_settings_per_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    assert!(s.plugin_settings(MAIN).await.unwrap().is_empty());
    let a = plugin(MAIN, "app-a", true);
    let b = plugin(MAIN, "app-b", false);
    let other = plugin(OTHER, "app-a", false);
    s.apply_plugin_settings(&[a, b.clone(), other.clone()], &[])
        .await
        .unwrap();
    assert_eq!(
        plugins(&s, MAIN).await,
        vec![plugin(MAIN, "app-a", true), b.clone()]
    );
    assert_eq!(plugins(&s, OTHER).await, vec![other.clone()], "per org");

    let mut a2 = plugin(MAIN, "app-a", false);
    a2.pinned = true;
    a2.version = 2;
    s.apply_plugin_settings(&[a2.clone()], &[]).await.unwrap();
    assert_eq!(
        plugins(&s, MAIN).await,
        vec![a2, b],
        "upserted by (org, plugin)"
    );
    assert_eq!(
        plugins(&s, OTHER).await,
        vec![other],
        "the other org's is untouched"
    );
}

pub async fn notifiers_per_org(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    assert!(s.all_notifiers().await.unwrap().is_empty());
    s.apply_notifiers(
        &[
            notifier(MAIN, "ops", "Ops"),
            notifier(OTHER, "ops", "Ops two"),
            notifier(MAIN, "dev", "Dev"),
        ],
        &[],
        &[],
    )
    .await
    .unwrap();
    let main = notifiers(&s, MAIN).await;
    assert_eq!(
        main.iter().map(|n| n.uid.as_str()).collect::<Vec<_>>(),
        ["dev", "ops"]
    );
    let other = notifiers(&s, OTHER).await;
    assert_eq!(other.len(), 1);
    assert_eq!((other[0].name.as_str(), other[0].org_id), ("Ops two", 2));
    let ids = set(main.iter().chain(&other).map(|n| n.id));
    assert_eq!(ids.len(), 3, "each new channel gets an id");
    assert!(!ids.contains(&0));
    assert_eq!(s.all_notifiers().await.unwrap().len(), 3, "every org's");

    s.apply_notifiers(&[notifier(MAIN, "ops", "Ops renamed")], &[], &[])
        .await
        .unwrap();
    let main2 = notifiers(&s, MAIN).await;
    assert_eq!(
        (main2[1].id, main2[1].name.as_str()),
        (main[1].id, "Ops renamed"),
        "upserted, id kept"
    );
    assert_eq!(
        notifiers(&s, OTHER).await,
        other,
        "the same uid in another org is untouched"
    );

    s.apply_notifiers(&[], &[(MAIN, "ops".into())], &[])
        .await
        .unwrap();
    assert_eq!(
        notifiers(&s, MAIN)
            .await
            .iter()
            .map(|n| n.uid.as_str())
            .collect::<Vec<_>>(),
        ["dev"],
        "deleted by (org, uid)"
    );
    assert_eq!(notifiers(&s, OTHER).await, other, "the other org's stays");
    assert_eq!(s.all_notifiers().await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

pub async fn roles_create_and_conflicts(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    assert!(s.roles().await.unwrap().is_empty());
    new_role(&s, role(MAIN, "r1", "reader")).await;
    assert_eq!(
        s.role(MAIN, "r1").await.unwrap(),
        Some(role(MAIN, "r1", "reader"))
    );
    assert!(s.role(MAIN, "missing").await.unwrap().is_none());
    assert!(s.role(OTHER, "r1").await.unwrap().is_none(), "keyed by org");

    assert!(
        matches!(
            err(s.create_role(&role(MAIN, "r1", "other name")).await),
            StoreError::Conflict("uid")
        ),
        "a uid per org"
    );
    assert!(
        matches!(
            err(s.create_role(&role(MAIN, "r2", "reader")).await),
            StoreError::Conflict("name")
        ),
        "a name per org"
    );
    assert!(
        s.role(MAIN, "r2").await.unwrap().is_none(),
        "nothing written"
    );
    assert_eq!(
        get_role(&s, MAIN, "r1").await.name,
        "reader",
        "the first one is kept"
    );

    new_role(&s, role(OTHER, "r2", "reader")).await;
    new_role(&s, role(GLOBAL, "g1", "global reader")).await;
    assert!(get_role(&s, GLOBAL, "g1").await.global);
    let all = s.roles().await.unwrap();
    assert_eq!(
        set(all.iter().map(|r| (r.org_id, r.uid.clone()))),
        set([(0, "g1".to_string()), (1, "r1".into()), (2, "r2".into())]),
        "every role of every org"
    );
}

pub async fn roles_update_version_cas(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    new_role(&s, role(MAIN, "r1", "reader")).await;
    assert!(s.set_basic_grant(MAIN, "r1", "Editor", true).await.unwrap());
    assert!(s.assign_role(MAIN, "r1", alice.user_id()).await.unwrap());

    let mut next = role(MAIN, "r1", "reader v2");
    next.version = 2;
    next.permissions = vec![("users:write".into(), "users:*".into())];
    s.update_role(&next, 1).await.unwrap();
    let got = get_role(&s, MAIN, "r1").await;
    assert_eq!((got.name.as_str(), got.version), ("reader v2", 2));
    assert_eq!(
        got.permissions, next.permissions,
        "the definition is replaced"
    );
    assert_eq!(got.user_ids, vec![alice.id], "assignments are kept");
    assert_eq!(
        got.basic_roles,
        vec!["Editor".to_string()],
        "basic-role grants are kept"
    );

    let mut late = role(MAIN, "r1", "reader v3");
    late.version = 3;
    assert!(
        matches!(
            err(s.update_role(&late, 1).await),
            StoreError::Stale("version")
        ),
        "the stored version is 2"
    );
    assert_eq!(
        get_role(&s, MAIN, "r1").await,
        got,
        "a stale update changes nothing"
    );
}

pub async fn roles_delete_removes_assignments(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    new_role(&s, role(MAIN, "r1", "reader")).await;
    s.assign_role(MAIN, "r1", alice.user_id()).await.unwrap();
    s.set_basic_grant(MAIN, "r1", "Viewer", true).await.unwrap();

    let gone = s.delete_role(MAIN, "r1").await.unwrap();
    assert_eq!(gone.map(|r| r.uid), Some("r1".into()), "the deleted row");
    assert!(s.role(MAIN, "r1").await.unwrap().is_none());
    assert!(
        s.delete_role(MAIN, "r1").await.unwrap().is_none(),
        "already gone"
    );
    assert!(s.roles().await.unwrap().is_empty());

    new_role(&s, role(MAIN, "r1", "reader")).await;
    let fresh = get_role(&s, MAIN, "r1").await;
    assert!(
        fresh.user_ids.is_empty(),
        "no assignment survives the delete"
    );
    assert!(fresh.basic_roles.is_empty(), "no grant survives the delete");
    assert!(
        s.assign_role(MAIN, "r1", alice.user_id()).await.unwrap(),
        "assigning again is a change"
    );
}

pub async fn roles_apply_keeps_api_assignments(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let mut p1 = role(MAIN, "p1", "provisioned");
    p1.users = vec!["bob".into()];
    p1.basic_roles = vec!["Viewer".into()];
    s.apply_roles(&[p1], &[]).await.unwrap();
    let got = get_role(&s, MAIN, "p1").await;
    assert_eq!(got.users, vec!["bob".to_string()]);
    assert!(s.assign_role(MAIN, "p1", alice.user_id()).await.unwrap());

    let mut again = role(MAIN, "p1", "provisioned v2");
    again.version = 2;
    s.apply_roles(&[again], &[]).await.unwrap();
    let got = get_role(&s, MAIN, "p1").await;
    assert_eq!(
        (got.name.as_str(), got.version),
        ("provisioned v2", 2),
        "upserted"
    );
    assert_eq!(got.user_ids, vec![alice.id], "API assignments are kept");

    let p2 = role(MAIN, "p2", "second");
    s.apply_roles(&[p2], &[]).await.unwrap();
    let p3 = role(MAIN, "p3", "third");
    s.apply_roles(&[p3], &[(MAIN, "p2".into())]).await.unwrap();
    assert!(s.role(MAIN, "p2").await.unwrap().is_none(), "deleted");
    assert!(
        s.role(MAIN, "p3").await.unwrap().is_some(),
        "in the same unit"
    );
    s.apply_roles(&[], &[(MAIN, "p1".into())]).await.unwrap();
    assert!(s.role(MAIN, "p1").await.unwrap().is_none());
    assert_eq!(s.roles().await.unwrap().len(), 1);
}

pub async fn roles_assign_and_unassign(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let bob = add(&s, user("bob"), OrgRole::Viewer).await;
    new_role(&s, role(MAIN, "r1", "reader")).await;

    assert!(
        s.assign_role(MAIN, "r1", alice.user_id()).await.unwrap(),
        "a new assignment"
    );
    assert!(
        !s.assign_role(MAIN, "r1", alice.user_id()).await.unwrap(),
        "idempotent"
    );
    assert_eq!(get_role(&s, MAIN, "r1").await.user_ids, vec![alice.id]);
    assert!(
        matches!(
            err(s.assign_role(MAIN, "missing", alice.user_id()).await),
            StoreError::NotFound
        ),
        "a missing role"
    );
    assert!(
        matches!(
            err(s.assign_role(OTHER, "r1", alice.user_id()).await),
            StoreError::NotFound
        ),
        "the role is in another org"
    );

    assert!(
        s.unassign_role(MAIN, "r1", alice.user_id(), "alice")
            .await
            .unwrap(),
        "by id"
    );
    assert!(
        !s.unassign_role(MAIN, "r1", alice.user_id(), "alice")
            .await
            .unwrap(),
        "none left"
    );
    assert!(get_role(&s, MAIN, "r1").await.user_ids.is_empty());

    // A provisioned assignment names the user by login.
    let mut p1 = role(MAIN, "p1", "provisioned");
    p1.users = vec!["bob".into(), "carol".into()];
    s.apply_roles(&[p1], &[]).await.unwrap();
    assert!(
        s.unassign_role(MAIN, "p1", bob.user_id(), "bob")
            .await
            .unwrap(),
        "by login"
    );
    let got = get_role(&s, MAIN, "p1").await;
    assert!(
        !got.users.contains(&"bob".to_string()),
        "bob's login is gone"
    );
    assert!(
        got.users.contains(&"carol".to_string()),
        "other logins stay"
    );
    assert!(!s
        .unassign_role(MAIN, "p1", bob.user_id(), "bob")
        .await
        .unwrap());
}

pub async fn roles_basic_grants(s: Arc<dyn Store>) {
    main_org(&s).await;
    new_role(&s, role(MAIN, "r1", "reader")).await;
    let grants = |s: Arc<dyn Store>| async move { set(get_role(&s, MAIN, "r1").await.basic_roles) };

    assert!(s.set_basic_grant(MAIN, "r1", "Editor", true).await.unwrap());
    assert!(
        !s.set_basic_grant(MAIN, "r1", "Editor", true).await.unwrap(),
        "already granted"
    );
    assert!(s
        .set_basic_grant(MAIN, "r1", "Grafana Admin", true)
        .await
        .unwrap());
    assert_eq!(
        grants(s.clone()).await,
        set(["Editor".to_string(), "Grafana Admin".into()])
    );
    assert!(s
        .set_basic_grant(MAIN, "r1", "Editor", false)
        .await
        .unwrap());
    assert!(
        !s.set_basic_grant(MAIN, "r1", "Editor", false)
            .await
            .unwrap(),
        "already revoked"
    );
    assert!(
        !s.set_basic_grant(MAIN, "r1", "Viewer", false)
            .await
            .unwrap(),
        "never granted"
    );
    assert_eq!(grants(s.clone()).await, set(["Grafana Admin".to_string()]));
}

pub async fn roles_two_orgs_same_uid(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    new_role(&s, role(MAIN, "shared", "Shared")).await;
    new_role(&s, role(OTHER, "shared", "Shared")).await;
    new_role(&s, role(GLOBAL, "shared", "Shared")).await;

    assert!(s
        .assign_role(MAIN, "shared", alice.user_id())
        .await
        .unwrap());
    assert!(
        get_role(&s, OTHER, "shared").await.user_ids.is_empty(),
        "assignments are per org"
    );
    assert!(get_role(&s, GLOBAL, "shared").await.user_ids.is_empty());
    assert!(
        s.assign_role(GLOBAL, "shared", alice.user_id())
            .await
            .unwrap(),
        "the global role is another role"
    );

    let mut next = role(MAIN, "shared", "Shared v2");
    next.version = 2;
    s.update_role(&next, 1).await.unwrap();
    assert_eq!(
        get_role(&s, OTHER, "shared").await.version,
        1,
        "updates are per org"
    );
    assert!(s
        .set_basic_grant(OTHER, "shared", "Viewer", true)
        .await
        .unwrap());
    assert!(
        get_role(&s, MAIN, "shared").await.basic_roles.is_empty(),
        "grants are per org"
    );

    s.delete_role(MAIN, "shared").await.unwrap();
    assert!(s.role(MAIN, "shared").await.unwrap().is_none());
    assert_eq!(
        get_role(&s, OTHER, "shared").await.basic_roles,
        vec!["Viewer".to_string()]
    );
    assert_eq!(
        get_role(&s, GLOBAL, "shared").await.user_ids,
        vec![alice.id]
    );
    assert_eq!(s.roles().await.unwrap().len(), 2);
}

pub async fn roles_concurrent_assign_many_roles(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    for i in 0..30 {
        new_role(&s, role(MAIN, &format!("r{i}"), &format!("role {i}"))).await;
    }
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let s = s.clone();
            let id = alice.user_id();
            tokio::spawn(async move { s.assign_role(MAIN, &format!("r{i}"), id).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let changed = t
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("assign r{i}: {e}"));
        assert!(changed, "r{i} was not assigned before");
    }
    for i in 0..30 {
        assert_eq!(
            get_role(&s, MAIN, &format!("r{i}")).await.user_ids,
            vec![alice.id],
            "r{i} holds the assignment"
        );
    }
}

pub async fn roles_concurrent_assign_many_users(s: Arc<dyn Store>) {
    main_org(&s).await;
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(add(&s, user(&format!("user{i:02}")), OrgRole::Viewer).await);
    }
    new_role(&s, role(MAIN, "r", "shared role")).await;
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            let s = s.clone();
            let id = u.user_id();
            tokio::spawn(async move { s.assign_role(MAIN, "r", id).await })
        })
        .collect();
    for (u, t) in users.iter().zip(tasks) {
        let changed = t
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("assign {}: {e}", u.login));
        assert!(changed, "{} was not assigned before", u.login);
    }
    let held = get_role(&s, MAIN, "r").await.user_ids;
    assert_eq!(held.len(), 30, "no assignment lost or doubled");
    assert_eq!(set(held), set(users.iter().map(|u| u.id)));
}

// ---------------------------------------------------------------------------------------
// Provisioning runs and the store
// ---------------------------------------------------------------------------------------

pub async fn provisioning_runs(s: Arc<dyn Store>) {
    let run = |kind: &str, at: i64, ok: bool| ProvisioningRun {
        kind: kind.into(),
        at,
        ok,
        error: if ok { String::new() } else { "boom".into() },
        files: vec![FileOutcome {
            file: format!("{kind}.yaml"),
            ok,
            message: String::new(),
        }],
        applied: 2,
        removed: 1,
    };
    let sorted = |s: Arc<dyn Store>| async move {
        let mut v = s.provisioning_runs().await.expect("runs");
        v.sort_by(|a, b| a.kind.cmp(&b.kind));
        v
    };
    assert!(sorted(s.clone()).await.is_empty());
    s.put_provisioning_run(&run("dashboards", 100, true))
        .await
        .unwrap();
    s.put_provisioning_run(&run("datasources", 110, false))
        .await
        .unwrap();
    assert_eq!(
        sorted(s.clone()).await,
        vec![run("dashboards", 100, true), run("datasources", 110, false)]
    );
    s.put_provisioning_run(&run("dashboards", 200, false))
        .await
        .unwrap();
    assert_eq!(
        sorted(s.clone()).await,
        vec![
            run("dashboards", 200, false),
            run("datasources", 110, false)
        ],
        "the last run of each kind"
    );
}

pub async fn store_health(s: Arc<dyn Store>) {
    assert!(s.healthy().await, "a fresh store is healthy");
    assert!(!s.backend().is_empty(), "the backend names itself");
    let flushes = s.flush_count();
    main_org(&s).await;
    add(&s, user("alice"), OrgRole::Viewer).await;
    s.flush().await.expect("flush");
    assert!(s.healthy().await);
    assert!(
        s.flush_count() >= flushes,
        "a count of flushes so far never goes down"
    );
    assert!(
        s.user_by_login("alice").await.unwrap().is_some(),
        "readable after a flush"
    );
}

// ---------------------------------------------------------------------------------------
// Export and import (two stores: the backend's test module calls it with two fresh ones)
// ---------------------------------------------------------------------------------------

/// One or more records of every kind of a [`Dump`], written through the normal methods.
async fn fill_every_kind(s: &Arc<dyn Store>) {
    main_org(s).await;
    other_org(s).await;
    // An audited change (event 1), three standalone events (2 to 4), and a pruning that
    // keeps the newest two and appends its own (5): the anchor moved to 3.
    audit_scope::scope(audit_entry(5, "orgs:write", "org"), true, async {
        s.set_org_address(
            OTHER,
            &OrgAddressRecord {
                city: "Springfield".into(),
                ..OrgAddressRecord::default()
            },
        )
        .await
        .unwrap();
    })
    .await;
    for at in 6..9 {
        s.append_audit(audit_entry(at, "auth:login", "user"))
            .await
            .unwrap();
    }
    assert_eq!(
        s.prune_audit(None, 2, audit_entry(9, "audit:prune", "audit"))
            .await
            .unwrap(),
        2
    );
    let root = add(s, grafana_admin("root"), OrgRole::Admin).await;
    let ed = add(
        s,
        UserRecord {
            theme: "light".into(),
            ..user("editor")
        },
        OrgRole::Editor,
    )
    .await;
    s.set_password(ed.user_id(), PasswordHash::new("editor-pw", 1000), 20)
        .await
        .unwrap();
    s.touch_last_seen(ed.user_id(), 25).await.unwrap();
    // Memberships in an order that is not the orgs' order (it is kept).
    s.set_memberships(
        ed.user_id(),
        &[(OTHER, OrgRole::Admin), (MAIN, OrgRole::Editor)],
        30,
    )
    .await
    .unwrap();
    s.update_profile(
        ed.user_id(),
        &ProfileChange {
            auth_module: Some("ldap".into()),
            ..ProfileChange::default()
        },
        35,
    )
    .await
    .unwrap();
    s.touch_last_seen(ed.user_id(), 40).await.unwrap();
    s.record_sign_in(7_200, true).await.unwrap();
    s.record_sign_in(7_300, false).await.unwrap();
    let off = add(s, user("off"), OrgRole::Viewer).await;
    s.set_disabled(off.user_id(), true, 50).await.unwrap();
    s.create_user(
        user("own-org"),
        NewMembership::NewOrg("own-org".into(), OrgRole::Admin),
    )
    .await
    .unwrap();
    let bot = add(s, service_account("bot"), OrgRole::Editor).await;
    s.set_meta("usage_id", b"contract-usage").await.unwrap();
    s.set_meta("salt", &[0, 1, 2, 255]).await.unwrap();

    // Sessions (millisecond times): one rotated, its previous token still valid; one revoked.
    let live = new_session(s, session(&ed, 1, 1_700_000_000_123, 1_700_000_000_456)).await;
    s.rotate_session(
        live.id,
        &[1; 32],
        [2; 32],
        1_700_000_060_789,
        1_700_000_001_001,
    )
    .await
    .unwrap()
    .expect("rotated");
    let gone = new_session(s, session(&root, 3, 1_700_000_000_000, 1_700_000_000_000)).await;
    s.revoke_session(gone.id, 1_700_000_002_000).await.unwrap();

    // A legacy key (expiring, used) and a service-account token.
    let key = new_key(
        s,
        ApiKeyRecord {
            expires: Some(5_000),
            ..api_key(MAIN, "legacy", None, 10)
        },
    )
    .await;
    s.touch_api_key(key.id, 150).await.unwrap();
    new_key(s, api_key(MAIN, "bot-token", Some(&bot), 11)).await;

    // Data keys (one retired, one active with reserved uses), secrets under each, a cursor.
    let (old, new) = two_deks(s).await;
    s.reserve_dek_uses(new, 4096).await.unwrap();
    s.write_secrets(&[put("k-old", old, b"sealed-old")])
        .await
        .unwrap();
    s.commit_reencrypt(&[], Some("k-old")).await.unwrap();

    // Datasources, one with a secret and updated once (version 2).
    let ds = s
        .create_datasource(
            DataSourceRecord {
                secure_fields: vec!["password".into()],
                json_data: r#"{"b": 1,  "a": [2]}"#.into(),
                ..datasource(MAIN, "Prom", "prom")
            },
            &[put("ds.prom.password", new, b"sealed-ds")],
        )
        .await
        .unwrap();
    let changed = DataSourceRecord {
        url: "http://other:9090".into(),
        updated: 200,
        ..ds.clone()
    };
    s.update_datasource(&changed, ds.version, &[])
        .await
        .unwrap();
    new_ds(s, datasource(OTHER, "Loki", "loki")).await;

    // Settings overrides (one secret), the license and the last renewal.
    s.apply_setting_overrides(
        &[
            setting("auth.saml", "enabled", Some("true"), false),
            setting("auth.saml", "private_key", None, true),
        ],
        &[],
        &[put("settings.auth.saml.private_key", new, b"sealed-key")],
    )
    .await
    .unwrap();
    s.put_license(&StoredLicense {
        token: "header.claims.signature".into(),
        stored_at: 300,
    })
    .await
    .unwrap();
    s.put_renewal(&RenewalRecord {
        at: 310,
        trigger: "manual".into(),
        ok: false,
        error: "issuer unreachable".into(),
    })
    .await
    .unwrap();

    // A folder, dashboards in two orgs with their alerts, one alert paused.
    apply(
        s,
        DashboardBatch {
            folders: vec![folder(MAIN, "ops")],
            upserts: vec![
                (
                    DashboardRecord {
                        folder_uid: "ops".into(),
                        json: r#"{"panels":  [1, 2]}"#.into(),
                        ..dashboard(MAIN, "latency", &["prod", "slo"])
                    },
                    vec![alert(MAIN, "latency", 1), alert(MAIN, "latency", 2)],
                ),
                (
                    dashboard(OTHER, "latency", &[]),
                    vec![alert(OTHER, "latency", 7)],
                ),
            ],
            deletes: Vec::new(),
        },
    )
    .await;
    let first = alerts_by_panel(s, MAIN).await[0].1.id;
    s.set_alerts_paused(Some(MAIN), Some(&[first]), true, 400)
        .await
        .unwrap();

    // App plugin settings and notification channels.
    s.apply_plugin_settings(
        &[
            PluginSettingRecord {
                pinned: true,
                secure_fields: vec!["token".into()],
                ..plugin(MAIN, "oncall-app", true)
            },
            plugin(OTHER, "oncall-app", false),
        ],
        &[put("plugin.1.oncall-app.token", new, b"sealed-plugin")],
    )
    .await
    .unwrap();
    s.apply_notifiers(
        &[
            NotifierRecord {
                secure_fields: vec!["url".into()],
                is_default: true,
                ..notifier(MAIN, "pager", "Pager")
            },
            notifier(OTHER, "mail", "Mail"),
        ],
        &[],
        &[],
    )
    .await
    .unwrap();

    // Roles: an org role with ordered permissions, assigned by id and by login and granted
    // to a basic role; a global role.
    new_role(
        s,
        RoleRecord {
            permissions: vec![
                ("settings:read".into(), "settings:auth.saml:*".into()),
                ("users:read".into(), "users:*".into()),
            ],
            users: vec!["off".into()],
            ..role(MAIN, "saml-reader", "custom:saml:Reader")
        },
    )
    .await;
    s.assign_role(MAIN, "saml-reader", ed.user_id())
        .await
        .unwrap();
    s.assign_role(MAIN, "saml-reader", bot.user_id())
        .await
        .unwrap();
    s.set_basic_grant(MAIN, "saml-reader", "Viewer", true)
        .await
        .unwrap();
    new_role(s, role(GLOBAL, "global-stats", "custom:global:stats")).await;

    s.put_provisioning_run(&ProvisioningRun {
        kind: "dashboards".into(),
        at: 500,
        ok: false,
        error: "one file failed".into(),
        files: vec![
            FileOutcome {
                file: "a.yaml".into(),
                ok: true,
                message: String::new(),
            },
            FileOutcome {
                file: "b.yaml".into(),
                ok: false,
                message: "line 3: bad".into(),
            },
        ],
        applied: 3,
        removed: 1,
    })
    .await
    .unwrap();

    // Quota limits of an org and of a user.
    s.set_quota(&quota(QuotaOwner::Org(MAIN), "data_source", 3, 600))
        .await
        .unwrap();
    s.set_quota(&quota(QuotaOwner::User(ed.user_id()), "org_user", 2, 610))
        .await
        .unwrap();
}

fn highest<I: IntoIterator<Item = u64>>(ids: I) -> u64 {
    ids.into_iter().max().unwrap_or(0)
}

/// An export taken while writers run sees one point in time: an org created with its
/// creator's membership (one write) is in a dump with that membership or in neither; a
/// user and the session created after it are in a dump together, or the user alone; and
/// a dump never holds fewer users than one taken before it.
async fn export_is_one_point_in_time(s: Arc<dyn Store>) {
    fn hash(n: u32, tag: u8) -> [u8; 32] {
        let mut h = [tag; 32];
        h[..4].copy_from_slice(&n.to_be_bytes());
        h
    }
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Admin).await;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                s.create_org(&format!("org-{i}"), 1, alice.user_id())
                    .await
                    .unwrap();
                let u = add(&s, user(&format!("w{i}")), OrgRole::Viewer).await;
                new_session(
                    &s,
                    SessionRecord {
                        token_hash: hash(i, 0xb2),
                        ..session(&u, 0, 1_000, 1_000)
                    },
                )
                .await;
            }
        })
    };
    let mut last_users = 0;
    let mut dumps = 0;
    while !writer.is_finished() || dumps == 0 {
        let d = s.export().await.unwrap();
        dumps += 1;
        let orgs: std::collections::HashSet<u64> = d.orgs.iter().map(|o| o.id).collect();
        let users = d.user_ids();
        for u in &d.users {
            for m in &u.memberships {
                assert!(
                    orgs.contains(&m.org_id),
                    "{} is a member of org {} that the dump lacks",
                    u.login,
                    m.org_id
                );
            }
        }
        for x in &d.sessions {
            assert!(
                users.contains(&x.user_id),
                "a session of user {} that the dump lacks",
                x.user_id
            );
        }
        assert!(d.users.len() >= last_users, "a later dump lost users");
        // The writer makes an org, then a user: at any one point there are as many orgs
        // as users, or one more.
        assert!(
            d.orgs.len() == d.users.len() || d.orgs.len() == d.users.len() + 1,
            "{} orgs and {} users are not one point in time",
            d.orgs.len(),
            d.users.len()
        );
        last_users = d.users.len();
    }
    writer.await.unwrap();
}

/// `export` then `import` into a second, empty store gives the same records (ids, times,
/// ciphertexts, memberships, assignments, the active key and the cursor), which then work
/// through the normal methods; a store that holds records is refused unless `replace`,
/// which replaces them; new records get ids after the imported ones.
pub async fn dump_round_trip_between(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    fill_every_kind(&a).await;
    let dump = a.export().await.expect("export");
    for (kind, n) in dump.counts() {
        assert!(n > 0, "the filled store holds {kind}");
    }
    assert!(dump.active_dek.is_some() && dump.reencrypt_cursor.is_some());

    b.import(&dump, false)
        .await
        .expect("import into an empty store");
    let copy = b.export().await.expect("export the copy");
    assert_eq!(
        copy.normalized(),
        dump.clone().normalized(),
        "the copy holds exactly the exported records"
    );

    // The audit log came along with its anchor, verifies, and appends after its head.
    assert_eq!(dump.audit_chain.first_seq, 3, "{:?}", dump.audit_chain);
    assert_eq!(seqs(&dump.audit_events), [3, 4, 5]);
    assert_eq!(
        b.audit_chain().await.unwrap(),
        a.audit_chain().await.unwrap()
    );
    assert_eq!(audit_all(&b).await, audit_all(&a).await);
    assert_eq!(audit_verifies(&b).await, 3);

    // Indexes, counters and reference counts came along.
    assert_eq!(counts(&b).await, counts(&a).await);
    let since_start = ActivityWindows {
        active_after: 0,
        daily_after: 0,
        month_start: 0,
        sessions_after_ms: 0,
    };
    let activity = a.activity(since_start).await.unwrap();
    assert!(activity.monthly_active_users > 0, "{activity:?}");
    assert_eq!(b.activity(since_start).await.unwrap(), activity);
    for k in &dump.deks {
        assert_eq!(refs(&b, k.id).await, refs(&a, k.id).await, "DEK {}", k.id);
    }
    assert_eq!(b.active_dek().await.unwrap(), a.active_dek().await.unwrap());
    assert_eq!(
        b.active_session_count().await.unwrap(),
        a.active_session_count().await.unwrap()
    );
    let ed = b
        .user_by_login("EDITOR")
        .await
        .unwrap()
        .expect("found by login, case-insensitively");
    assert_eq!(Some(&ed), a.user(ed.user_id()).await.unwrap().as_deref());
    assert_eq!(ed.role_in(OTHER), Some(OrgRole::Admin));
    assert!(b
        .user_by_email("Editor@Example.org")
        .await
        .unwrap()
        .is_some());
    assert!(b.user_by_uid("uid-editor").await.unwrap().is_some());
    let by_prev = b.session_by_hash(&[1; 32]).await.unwrap();
    assert_eq!(
        by_prev.map(|s| s.token_hash),
        Some([2; 32]),
        "the previous token still finds the rotated session"
    );
    assert_eq!(b.user_sessions(ed.user_id()).await.unwrap().len(), 1);
    let token = b.api_key_by_hash(&[11; 32]).await.unwrap().expect("token");
    assert_eq!(token.name, "bot-token");
    assert_eq!(
        b.api_keys(MAIN, token.service_account_id.map(UserId))
            .await
            .unwrap(),
        vec![Arc::unwrap_or_clone(token)]
    );
    assert_eq!(secret(&b, "k-old").await, Some(b"sealed-old".to_vec()));
    assert_eq!(
        b.reencrypt_cursor().await.unwrap(),
        Some("k-old".to_string())
    );
    assert!(b.datasource_by_name(MAIN, "PROM").await.unwrap().is_some());
    assert!(b
        .role(MAIN, "saml-reader")
        .await
        .unwrap()
        .is_some_and(|r| r.user_ids.contains(&ed.id)));
    assert_eq!(alerts_by_panel(&b, MAIN).await.len(), 2);
    assert!(matches!(
        err(b
            .create_user(user("Editor"), in_main(OrgRole::Viewer))
            .await),
        StoreError::Conflict("login")
    ));
    assert!(matches!(
        err(b
            .create_datasource(datasource(MAIN, "prom", "other-uid"), &[])
            .await),
        StoreError::Conflict("name")
    ));

    // A store that holds records: refused without replace, and left as it was.
    let before = counts(&b).await;
    let refused = err(b.import(&dump, false).await);
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused:?}");
    assert_eq!(counts(&b).await, before);
    // With replace, what it held is gone.
    add(&b, user("only-in-b"), OrgRole::Viewer).await;
    b.import(&dump, true).await.expect("import with replace");
    assert!(b.user_by_login("only-in-b").await.unwrap().is_none());
    assert_eq!(
        b.export().await.unwrap().normalized(),
        dump.clone().normalized()
    );
    assert_eq!(audit_verifies(&b).await, 3);
    let next = b
        .append_audit(audit_entry(10, "auth:login", "user"))
        .await
        .unwrap();
    assert_eq!(next.seq, 6);
    assert_eq!(next.prev_hash, dump.audit_chain.head_hash);
    assert_eq!(audit_verifies(&b).await, 4);

    // New records get ids after the imported ones.
    let fresh = add(&b, user("after-import"), OrgRole::Viewer).await;
    let top = highest(dump.users.iter().map(|u| u.id));
    assert!(fresh.id > top, "user {} > {top}", fresh.id);
    let own = b
        .create_user(
            user("after-own-org"),
            NewMembership::NewOrg("after".into(), OrgRole::Admin),
        )
        .await
        .unwrap();
    let top = highest(dump.orgs.iter().map(|o| o.id));
    assert!(own.org_id > top, "org {} > {top}", own.org_id);
    let s = new_session(&b, session(&fresh, 9, 1_800_000_000_000, 1_800_000_000_000)).await;
    let top = highest(dump.sessions.iter().map(|s| s.id));
    assert!(s.id > top, "session {} > {top}", s.id);
    let k = new_key(&b, api_key(MAIN, "after", None, 12)).await;
    let top = highest(dump.api_keys.iter().map(|k| k.id));
    assert!(k.id > top, "api key {} > {top}", k.id);
    let ds = new_ds(&b, datasource(MAIN, "After", "after")).await;
    let top = highest(dump.datasources.iter().map(|d| d.id));
    assert!(ds.id > top, "datasource {} > {top}", ds.id);
    let dek_id = b.allocate_dek_id().await.unwrap();
    let top = highest(dump.deks.iter().map(|k| u64::from(k.id)));
    assert!(u64::from(dek_id) > top, "DEK {dek_id} > {top}");
    apply(
        &b,
        DashboardBatch {
            folders: vec![folder(MAIN, "after")],
            upserts: vec![(dashboard(MAIN, "after", &[]), vec![alert(MAIN, "after", 1)])],
            deletes: Vec::new(),
        },
    )
    .await;
    let f = b.folders(MAIN).await.unwrap();
    let f = f.iter().find(|f| f.uid == "after").expect("new folder");
    let top = highest(dump.folders.iter().map(|f| f.id));
    assert!(f.id > top, "folder {} > {top}", f.id);
    let d = dash(&b, MAIN, "after").await;
    let top = highest(dump.dashboards.iter().map(|d| d.id));
    assert!(d.id > top, "dashboard {} > {top}", d.id);
    let al = b.alerts(MAIN).await.unwrap();
    let al = al
        .iter()
        .find(|a| a.dashboard_uid == "after")
        .expect("new alert");
    let top = highest(dump.alerts.iter().map(|a| a.id));
    assert!(al.id > top, "alert {} > {top}", al.id);
    b.apply_notifiers(&[notifier(MAIN, "after", "After")], &[], &[])
        .await
        .unwrap();
    let n = notifiers(&b, MAIN).await;
    let n = n.iter().find(|n| n.uid == "after").expect("new notifier");
    let top = highest(dump.notifiers.iter().map(|n| n.id));
    assert!(n.id > top, "notifier {} > {top}", n.id);
}

fn quota(owner: QuotaOwner, target: &str, limit: i64, updated: i64) -> QuotaRecord {
    let (org_id, user_id) = match owner {
        QuotaOwner::Org(o) => (o.0, 0),
        QuotaOwner::User(u) => (0, u.0),
    };
    QuotaRecord {
        org_id,
        user_id,
        target: target.into(),
        limit,
        updated,
    }
}

/// Limits are stored per owner and target: setting one again replaces it, an org's and a
/// user's with the same id and target are apart, a missing owner is `NotFound`, and a
/// deleted user's limits are gone (not exported). The org member count counts members.
pub async fn quotas_per_owner(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let bob = add(&s, user("bob"), OrgRole::Admin).await;
    let org = QuotaOwner::Org(MAIN);
    let user_owner = QuotaOwner::User(alice.user_id());
    assert!(s.quotas(org).await.unwrap().is_empty());

    s.set_quota(&quota(org, "data_source", 5, 10))
        .await
        .unwrap();
    s.set_quota(&quota(org, "api_key", 0, 11)).await.unwrap();
    s.set_quota(&quota(org, "data_source", 7, 12))
        .await
        .unwrap();
    let mut got = s.quotas(org).await.unwrap();
    got.sort_by(|a, b| a.target.cmp(&b.target));
    assert_eq!(
        got,
        vec![
            quota(org, "api_key", 0, 11),
            quota(org, "data_source", 7, 12)
        ],
        "the second write of a target replaces the first"
    );

    // A user whose id equals the org's keeps its own limits.
    let same_id = QuotaOwner::User(UserId(MAIN.0));
    assert!(s.quotas(same_id).await.unwrap().is_empty());
    s.set_quota(&quota(user_owner, "org_user", 2, 13))
        .await
        .unwrap();
    assert_eq!(
        s.quotas(user_owner).await.unwrap(),
        vec![quota(user_owner, "org_user", 2, 13)]
    );
    assert_eq!(s.quotas(org).await.unwrap().len(), 2);

    assert!(matches!(
        s.set_quota(&quota(QuotaOwner::Org(OrgId(999)), "api_key", 1, 14))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.set_quota(&quota(QuotaOwner::User(UserId(999)), "org_user", 1, 14))
            .await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(s.org_member_count(MAIN).await.unwrap(), 2);
    assert_eq!(s.org_member_count(OrgId(999)).await.unwrap(), 0);
    s.delete_user(bob.user_id()).await.unwrap();
    assert_eq!(s.org_member_count(MAIN).await.unwrap(), 1);

    s.delete_user(alice.user_id()).await.unwrap();
    let exported = s.export().await.unwrap().quotas;
    assert!(
        exported.iter().all(|q| q.user_id == 0),
        "a deleted user's limits are not exported: {exported:?}"
    );
    assert_eq!(exported.len(), 2);
}

// ---------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------

use super::audit::{self as audit_scope, AuditActor, AuditChain, AuditEntry, AuditEvent};

/// An entry as the API layer would open it: `action` on `target_kind`, with no target id
/// (a creation fills it in).
fn audit_entry(at: i64, action: &str, target_kind: &str) -> AuditEntry {
    AuditEntry {
        at,
        actor: AuditActor {
            user_id: Some(1),
            login: "admin".into(),
            auth_method: "basic".into(),
            ..AuditActor::default()
        },
        client: "192.0.2.1".into(),
        user_agent: "contract".into(),
        request_id: format!("req-{at}"),
        method: "POST".into(),
        route: "/api/contract".into(),
        action: action.into(),
        target_kind: target_kind.into(),
        target_id: String::new(),
        status: 200,
        fields: vec!["name".into()],
    }
}

/// Every stored event, in storage order.
async fn audit_all(s: &Arc<dyn Store>) -> Vec<AuditEvent> {
    s.audit_page(0, 100_000).await.expect("audit page")
}

/// The stored events verify against the stored chain; how many there are.
async fn audit_verifies(s: &Arc<dyn Store>) -> u64 {
    let chain = s.audit_chain().await.expect("audit chain");
    let events = audit_all(s).await;
    crate::domain::audit::verify(chain, &events)
        .unwrap_or_else(|b| panic!("the audit chain does not verify: {b} (chain {chain:?})"))
}

fn seqs(events: &[AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// `append_audit` numbers events 1, 2, 3, each chained to the one before, durable on
/// return; the chain's head follows; `audit_page` pages in storage order.
pub async fn audit_append_numbers_and_chains(s: Arc<dyn Store>) {
    assert_eq!(s.audit_chain().await.unwrap(), AuditChain::default());
    assert!(audit_all(&s).await.is_empty());
    assert_eq!(audit_verifies(&s).await, 0);

    let mut got = Vec::new();
    for i in 1..=3 {
        let e = s
            .append_audit(audit_entry(i, "auth:login", "user"))
            .await
            .unwrap();
        assert_eq!(e.seq, i as u64);
        assert_eq!(e.entry, audit_entry(i, "auth:login", "user"));
        assert_eq!(e.hash, e.expected_hash());
        got.push(e);
    }
    assert_eq!(got[0].prev_hash, crate::domain::audit::GENESIS);
    assert_eq!(got[1].prev_hash, got[0].hash);
    assert_eq!(got[2].prev_hash, got[1].hash);
    let chain = s.audit_chain().await.unwrap();
    assert_eq!((chain.first_seq, chain.head_seq), (1, 3));
    assert_eq!(chain.head_hash, got[2].hash);
    assert_eq!(audit_all(&s).await, got);
    assert_eq!(audit_verifies(&s).await, 3);
    assert_eq!(seqs(&s.audit_page(1, 1).await.unwrap()), [2]);
    assert_eq!(seqs(&s.audit_page(1, 10).await.unwrap()), [2, 3]);
    assert!(s.audit_page(3, 10).await.unwrap().is_empty());
}

/// A change made in an armed scope records the scope's entry in its own unit: a creation
/// fills in the new record's id, a given target id is kept, `written()` says so, and a
/// second write of the same scope records nothing more.
pub async fn audit_change_records_its_event(s: Arc<dyn Store>) {
    main_org(&s).await;
    let entry = audit_entry(100, "users:create", "user");
    let created = audit_scope::scope(entry.clone(), true, async {
        assert!(!audit_scope::written(), "nothing written yet");
        let u = s.create_user(user("alice"), in_main(OrgRole::Viewer)).await;
        assert!(audit_scope::written(), "the create recorded the event");
        let second = s
            .create_user(user("bob"), in_main(OrgRole::Viewer))
            .await
            .unwrap();
        s.set_password(second.user_id(), PasswordHash::new("pw", 1000), 110)
            .await
            .unwrap();
        u
    })
    .await
    .unwrap();
    let events = audit_all(&s).await;
    assert_eq!(events.len(), 1, "one event per scope: {events:?}");
    assert_eq!(events[0].seq, 1);
    assert_eq!(
        events[0].entry,
        AuditEntry {
            target_id: created.id.to_string(),
            ..entry
        },
        "the creation filled in the new user's id"
    );
    assert_eq!(audit_verifies(&s).await, 1);

    // A target id the request named is kept.
    let named = AuditEntry {
        target_id: created.id.to_string(),
        ..audit_entry(120, "users.password:write", "user")
    };
    audit_scope::scope(named.clone(), true, async {
        s.set_password(created.user_id(), PasswordHash::new("pw2", 1000), 120)
            .await
            .unwrap();
        assert!(audit_scope::written());
    })
    .await;
    let events = audit_all(&s).await;
    assert_eq!(seqs(&events), [1, 2]);
    assert_eq!(events[1].entry, named);
    assert_eq!(events[1].prev_hash, events[0].hash);

    // An org, a datasource and a session are creations too.
    let org = audit_scope::scope(audit_entry(130, "orgs:create", "org"), true, async {
        s.create_org("Audited", 130, created.user_id()).await
    })
    .await
    .unwrap();
    let ds = audit_scope::scope(
        audit_entry(131, "datasources:create", "datasource"),
        true,
        async {
            s.create_datasource(datasource(MAIN, "audited", "aud"), &[])
                .await
        },
    )
    .await
    .unwrap();
    let events = audit_all(&s).await;
    assert_eq!(seqs(&events), [1, 2, 3, 4]);
    assert_eq!(events[2].entry.target_id, org.id.to_string());
    assert_eq!(events[3].entry.target_id, ds.id.to_string());
    assert_eq!(audit_verifies(&s).await, 4);

    // One method that changes several rows records one event too.
    for token in [7, 8, 9] {
        new_session(&s, session(&created, token, 140, 140)).await;
    }
    let sign_out = AuditEntry {
        target_id: created.id.to_string(),
        ..audit_entry(150, "users.authtoken:delete", "user")
    };
    let n = audit_scope::scope(sign_out.clone(), true, async {
        s.revoke_user_sessions(created.user_id(), 150)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(n, 3);
    let events = audit_all(&s).await;
    assert_eq!(
        seqs(&events),
        [1, 2, 3, 4, 5],
        "one event for three revocations"
    );
    assert_eq!(events[4].entry, sign_out);
    assert_eq!(audit_verifies(&s).await, 5);
}

/// A change that fails or finds nothing to do records nothing, and leaves the scope
/// unwritten: a taken login (`Conflict`), a delete of a missing row, a lost CAS.
pub async fn audit_failed_change_records_nothing(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let pw = PasswordHash::new("pw", 1000);
    s.set_password(alice.user_id(), pw.clone(), 20)
        .await
        .unwrap();
    audit_scope::scope(audit_entry(100, "users:create", "user"), true, async {
        let e = err(s.create_user(user("ALICE"), in_main(OrgRole::Viewer)).await);
        assert!(matches!(e, StoreError::Conflict("login")), "{e:?}");
        assert!(!audit_scope::written());
        assert_eq!(s.delete_user(UserId(9_999)).await.unwrap(), None);
        assert_eq!(s.delete_datasource(MAIN, 9_999, &[]).await.unwrap(), None);
        assert_eq!(s.delete_api_key(9_999).await.unwrap(), None);
        assert_eq!(s.revoke_session(9_999, 100).await.unwrap(), None);
        let stale = PasswordHash::new("not-the-stored-one", 1000);
        assert!(!s
            .upgrade_password(alice.user_id(), &stale, PasswordHash::new("x", 1000))
            .await
            .unwrap());
        assert!(!audit_scope::written(), "nothing was written");
    })
    .await;
    assert!(audit_all(&s).await.is_empty(), "{:?}", audit_all(&s).await);
    assert_eq!(s.audit_chain().await.unwrap(), AuditChain::default());

    // The scope is still armed after the failures: its first real change records.
    audit_scope::scope(audit_entry(110, "users:delete", "user"), true, async {
        assert!(s.delete_user(UserId(9_999)).await.unwrap().is_none());
        assert!(s.delete_user(alice.user_id()).await.unwrap().is_some());
        assert!(audit_scope::written());
    })
    .await;
    let events = audit_all(&s).await;
    assert_eq!(seqs(&events), [1]);
    assert_eq!(events[0].entry.action, "users:delete");
}

/// Writes outside any scope, in an unarmed scope (a read request), and best-effort writes
/// record nothing.
pub async fn audit_unscoped_and_best_effort_record_nothing(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    s.set_meta("outside", b"1").await.unwrap();
    audit_scope::scope(audit_entry(100, "users:read", "user"), false, async {
        s.create_user(user("bob"), in_main(OrgRole::Viewer))
            .await
            .unwrap();
        s.set_meta("unarmed", b"1").await.unwrap();
        assert!(!audit_scope::written());
    })
    .await;
    audit_scope::scope(audit_entry(110, "users:write", "user"), true, async {
        s.touch_last_seen(alice.user_id(), 110).await.unwrap();
        s.record_sign_in(110, true).await.unwrap();
        assert!(
            !audit_scope::written(),
            "a best-effort write records nothing"
        );
    })
    .await;
    assert!(audit_all(&s).await.is_empty(), "{:?}", audit_all(&s).await);
    assert_eq!(s.audit_chain().await.unwrap(), AuditChain::default());
}

/// Audited writes from many tasks at once get consecutive numbers, each chained to the one
/// before it: the chain never forks.
pub async fn audit_concurrent_writes_chain(s: Arc<dyn Store>) {
    main_org(&s).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let mut total = 0u64;
    for round in 0..4 {
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let s = s.clone();
                let login = format!("r{round}-u{i}");
                let entry = audit_entry(i64::from(round * 100 + i), "users:create", "user");
                tokio::spawn(audit_scope::scope(entry, true, async move {
                    match i % 3 {
                        0 => {
                            s.create_user(user(&login), in_main(OrgRole::Viewer))
                                .await
                                .unwrap();
                        }
                        1 => {
                            s.set_meta(&login, b"v").await.unwrap();
                        }
                        _ => {
                            s.append_audit(audit_entry(0, "auth:login", "user"))
                                .await
                                .unwrap();
                        }
                    }
                }))
            })
            .collect();
        // A writer outside any scope runs alongside and records nothing.
        s.set_password(alice.user_id(), PasswordHash::new("pw", 1000), 1)
            .await
            .unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        total += 12;
        let events = audit_all(&s).await;
        assert_eq!(seqs(&events), (1..=total).collect::<Vec<_>>());
        assert_eq!(audit_verifies(&s).await, total);
        assert_eq!(s.audit_chain().await.unwrap().head_seq, total);
    }
}

/// `audit_events`: newest first, every filter, the `before_seq` cursor, the limit.
pub async fn audit_events_query(s: Arc<dyn Store>) {
    let mk =
        |at: i64, uid: u64, login: &str, action: &str, kind: &str, id: &str, st: u16| AuditEntry {
            at,
            actor: AuditActor {
                user_id: Some(uid),
                login: login.into(),
                ..AuditActor::default()
            },
            action: action.into(),
            target_kind: kind.into(),
            target_id: id.into(),
            status: st,
            ..AuditEntry::default()
        };
    let entries = [
        mk(10, 1, "admin", "users:create", "user", "5", 200),
        mk(20, 2, "bob", "auth:login", "user", "", 401),
        mk(30, 1, "admin", "users:delete", "user", "5", 200),
        mk(40, 3, "carol", "orgs:create", "org", "7", 200),
        mk(50, 2, "bob", "users:write", "user", "6", 403),
        mk(60, 1, "admin", "datasources:create", "datasource", "9", 200),
    ];
    for e in &entries {
        s.append_audit(e.clone()).await.unwrap();
    }
    let q = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        f(&mut q);
        q
    };
    let get = |q: AuditQuery| {
        let s = s.clone();
        async move { seqs(&s.audit_events(&q).await.unwrap()) }
    };
    assert_eq!(get(q(|_| {})).await, [6, 5, 4, 3, 2, 1], "newest first");
    let all = s.audit_events(&q(|_| {})).await.unwrap();
    assert_eq!(all[0].entry, entries[5], "events come with their entries");
    assert_eq!(get(q(|q| q.actor_user_id = Some(1))).await, [6, 3, 1]);
    assert_eq!(get(q(|q| q.actor_login = Some("bob".into()))).await, [5, 2]);
    assert!(get(q(|q| q.actor_login = Some("BOB".into())))
        .await
        .is_empty());
    assert_eq!(
        get(q(|q| q.action = Some("users:*".into()))).await,
        [5, 3, 1]
    );
    assert_eq!(
        get(q(|q| q.action = Some("users:delete".into()))).await,
        [3]
    );
    assert!(get(q(|q| q.action = Some("users".into()))).await.is_empty());
    assert_eq!(
        get(q(|q| q.target_kind = Some("user".into()))).await,
        [5, 3, 2, 1]
    );
    assert_eq!(get(q(|q| q.target_id = Some("5".into()))).await, [3, 1]);
    assert_eq!(get(q(|q| q.success = Some(true))).await, [6, 4, 3, 1]);
    assert_eq!(get(q(|q| q.success = Some(false))).await, [5, 2]);
    assert_eq!(get(q(|q| q.status = Some(403))).await, [5]);
    assert_eq!(get(q(|q| q.from = Some(30))).await, [6, 5, 4, 3]);
    assert_eq!(get(q(|q| q.to = Some(30))).await, [3, 2, 1]);
    assert_eq!(
        get(q(|q| {
            q.from = Some(20);
            q.to = Some(50);
            q.actor_user_id = Some(2);
        }))
        .await,
        [5, 2],
        "every filter that is set must match"
    );
    assert_eq!(get(q(|q| q.before_seq = Some(4))).await, [3, 2, 1]);
    assert!(get(q(|q| q.before_seq = Some(1))).await.is_empty());
    assert_eq!(get(q(|q| q.limit = 2)).await, [6, 5]);

    // Paging with the cursor walks every event exactly once, also under a filter.
    for (filter, want) in [(None, vec![6, 5, 4, 3, 2, 1]), (Some(1), vec![6, 3, 1])] {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = s
                .audit_events(&AuditQuery {
                    actor_user_id: filter,
                    before_seq: before,
                    limit: 2,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            before = Some(last.seq);
            seen.extend(seqs(&page));
        }
        assert_eq!(seen, want);
    }
}

/// `prune_audit` by age and by count: returns how many it removed, the rest verifies from
/// the moved anchor, the pruning's own event is appended (its target id is the count), and
/// nothing happens when nothing qualifies.
pub async fn audit_prune(s: Arc<dyn Store>) {
    for at in 1..=10 {
        s.append_audit(audit_entry(at, "users:write", "user"))
            .await
            .unwrap();
    }
    let prune = |at: i64| audit_entry(at, "audit:prune", "audit");

    // Nothing qualifies: nothing removed, nothing appended.
    let before = s.audit_chain().await.unwrap();
    assert_eq!(s.prune_audit(Some(1), 0, prune(100)).await.unwrap(), 0);
    assert_eq!(s.prune_audit(None, 10, prune(100)).await.unwrap(), 0);
    assert_eq!(s.prune_audit(None, 0, prune(100)).await.unwrap(), 0);
    assert_eq!(s.audit_chain().await.unwrap(), before);
    assert_eq!(audit_all(&s).await.len(), 10);

    // By age: the events before `at` 4 go.
    assert_eq!(s.prune_audit(Some(4), 0, prune(101)).await.unwrap(), 3);
    let events = audit_all(&s).await;
    assert_eq!(seqs(&events), (4..=11).collect::<Vec<_>>());
    let chain = s.audit_chain().await.unwrap();
    assert_eq!((chain.first_seq, chain.head_seq), (4, 11));
    assert_eq!(chain.first_prev, events[0].prev_hash);
    assert_eq!(
        events[7].entry,
        AuditEntry {
            target_id: "3".into(),
            ..prune(101)
        },
        "the pruning's own event says how many went"
    );
    assert_eq!(events[7].prev_hash, events[6].hash);
    assert_eq!(audit_verifies(&s).await, 8);
    assert_eq!(
        seqs(
            &s.audit_events(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
        ),
        (4..=11).rev().collect::<Vec<_>>()
    );

    // By count: the newest 5 stay, then the pruning's event.
    assert_eq!(s.prune_audit(None, 5, prune(102)).await.unwrap(), 3);
    let events = audit_all(&s).await;
    assert_eq!(seqs(&events), (7..=12).collect::<Vec<_>>());
    assert_eq!(events[5].entry.target_id, "3");
    assert_eq!(s.audit_chain().await.unwrap().first_seq, 7);
    assert_eq!(audit_verifies(&s).await, 6);

    // Both at once: whichever removes more.
    assert_eq!(s.prune_audit(Some(9), 4, prune(103)).await.unwrap(), 2);
    assert_eq!(seqs(&audit_all(&s).await), (9..=13).collect::<Vec<_>>());
    assert_eq!(s.prune_audit(Some(10), 1, prune(104)).await.unwrap(), 4);
    assert_eq!(seqs(&audit_all(&s).await), [13, 14]);
    assert_eq!(audit_verifies(&s).await, 2);

    // Everything: only the pruning's event is left, anchored after the old head.
    let head = s.audit_chain().await.unwrap();
    assert_eq!(
        s.prune_audit(Some(i64::MAX), 0, prune(105)).await.unwrap(),
        2
    );
    let events = audit_all(&s).await;
    assert_eq!(seqs(&events), [15]);
    assert_eq!(events[0].prev_hash, head.head_hash);
    let chain = s.audit_chain().await.unwrap();
    assert_eq!((chain.first_seq, chain.head_seq), (15, 15));
    assert_eq!(audit_verifies(&s).await, 1);

    // Appending goes on after the pruned chain.
    let next = s
        .append_audit(audit_entry(106, "auth:login", "user"))
        .await
        .unwrap();
    assert_eq!(next.seq, 16);
    assert_eq!(audit_verifies(&s).await, 2);
}

/// Runs `$call` in an armed scope whose action is `$label` and checks what it recorded:
/// `recorded` one event (this one, with the scope written), `silent` none.
macro_rules! audited {
    ($s:expr, recorded, $label:expr, $call:expr) => {
        audited!(@run $s, true, $label, $call)
    };
    ($s:expr, silent, $label:expr, $call:expr) => {
        audited!(@run $s, false, $label, $call)
    };
    (@run $s:expr, $records:expr, $label:expr, $call:expr) => {{
        let before = $s.audit_chain().await.unwrap().head_seq;
        let (out, written) =
            audit_scope::scope(audit_entry(1, $label, "test"), true, async {
                let out = $call;
                (out, audit_scope::written())
            })
            .await;
        let after = $s.audit_chain().await.unwrap().head_seq;
        let want = before + u64::from($records);
        assert_eq!(
            (after, written),
            (want, $records),
            "{}: events {before} -> {after}, scope written {written}",
            $label
        );
        if $records {
            let last = audit_all(&$s).await.pop().unwrap();
            assert_eq!(last.entry.action, $label);
        }
        out
    }};
}

/// Every mutating method through which a request changes state records the request's
/// event when it changes something; the best-effort and bookkeeping ones (last-seen and
/// last-used times, the activity series, purging expired sessions, the sign-in's hash
/// upgrade and token rotation, DEK id allocation and use reservations) and the calls that
/// find nothing to do record nothing.
pub async fn audit_each_change_records(s: Arc<dyn Store>) {
    main_org(&s).await;
    other_org(&s).await;
    let root = add(&s, grafana_admin("root"), OrgRole::Admin).await;
    let alice = add(&s, user("alice"), OrgRole::Viewer).await;
    let a = alice.user_id();
    let pw = PasswordHash::new("pw", 1000);

    // Users.
    audited!(
        s,
        recorded,
        "set_password",
        s.set_password(a, pw.clone(), 2).await.unwrap()
    );
    audited!(s, silent, "upgrade_password", {
        let new = PasswordHash::new("pw", 2000);
        assert!(s.upgrade_password(a, &pw, new).await.unwrap());
    });
    let change = ProfileChange {
        name: Some("Alice".into()),
        ..ProfileChange::default()
    };
    audited!(
        s,
        recorded,
        "update_profile",
        s.update_profile(a, &change, 3).await.unwrap()
    );
    audited!(s, recorded, "set_memberships", {
        s.set_memberships(a, &[(MAIN, OrgRole::Viewer), (OTHER, OrgRole::Viewer)], 4)
            .await
            .unwrap()
    });
    audited!(
        s,
        recorded,
        "set_current_org",
        s.set_current_org(a, OTHER).await.unwrap()
    );
    audited!(
        s,
        silent,
        "set_current_org again",
        s.set_current_org(a, OTHER).await.unwrap()
    );
    audited!(s, recorded, "remove_membership", {
        s.remove_membership(a, OTHER, 5).await.unwrap()
    });
    audited!(s, recorded, "add_membership", {
        s.add_membership(a, OTHER, OrgRole::Editor, 6)
            .await
            .unwrap()
    });
    audited!(s, recorded, "set_membership_role", {
        s.set_membership_role(a, OTHER, OrgRole::Admin, 7)
            .await
            .unwrap()
    });
    audited!(
        s,
        recorded,
        "set_grafana_admin",
        s.set_grafana_admin(a, true, 8).await.unwrap()
    );
    audited!(s, silent, "set_grafana_admin again", {
        s.set_grafana_admin(a, true, 8).await.unwrap()
    });
    audited!(
        s,
        recorded,
        "set_disabled",
        s.set_disabled(a, true, 9).await.unwrap()
    );
    audited!(
        s,
        silent,
        "set_disabled again",
        s.set_disabled(a, true, 9).await.unwrap()
    );
    audited!(
        s,
        silent,
        "touch_last_seen",
        s.touch_last_seen(a, 10).await.unwrap()
    );

    // Orgs and meta.
    let org = audited!(s, recorded, "create_org", {
        s.create_org("Third", 11, root.user_id()).await.unwrap()
    });
    let third = OrgId(org.id);
    audited!(
        s,
        recorded,
        "rename_org",
        s.rename_org(third, "3rd", 12).await.unwrap()
    );
    audited!(s, recorded, "set_org_address", {
        s.set_org_address(third, &OrgAddressRecord::default())
            .await
            .unwrap()
    });
    audited!(
        s,
        recorded,
        "ensure_org",
        s.ensure_org(OrgId(50), "Fifty", 13).await.unwrap()
    );
    audited!(s, silent, "ensure_org again", {
        s.ensure_org(OrgId(50), "Fifty", 13).await.unwrap()
    });
    audited!(
        s,
        recorded,
        "set_meta",
        s.set_meta("k", b"v").await.unwrap()
    );
    audited!(
        s,
        recorded,
        "init_meta",
        s.init_meta("once", b"1").await.unwrap()
    );
    audited!(
        s,
        silent,
        "init_meta again",
        s.init_meta("once", b"2").await.unwrap()
    );
    audited!(
        s,
        silent,
        "record_sign_in",
        s.record_sign_in(14, true).await.unwrap()
    );
    audited!(s, silent, "prune_activity_series", {
        s.prune_activity_series(0, 0).await.unwrap()
    });
    audited!(s, recorded, "set_quota", {
        s.set_quota(&quota(QuotaOwner::Org(MAIN), "api_key", 3, 15))
            .await
            .unwrap()
    });
    audited!(s, recorded, "put_provisioning_run", {
        s.put_provisioning_run(&ProvisioningRun {
            kind: "dashboards".into(),
            at: 16,
            ok: true,
            error: String::new(),
            files: Vec::new(),
            applied: 0,
            removed: 0,
        })
        .await
        .unwrap()
    });

    // Sessions and keys.
    let sess = audited!(s, recorded, "create_session", {
        s.create_session(session(&root, 1, 20, 20)).await.unwrap()
    });
    audited!(
        s,
        silent,
        "touch_session",
        s.touch_session(sess.id, 21).await.unwrap()
    );
    audited!(s, silent, "rotate_session", {
        s.rotate_session(sess.id, &[1; 32], [2; 32], 30, 22)
            .await
            .unwrap()
            .expect("rotated")
    });
    audited!(s, recorded, "revoke_session", {
        s.revoke_session(sess.id, 23)
            .await
            .unwrap()
            .expect("revoked")
    });
    audited!(
        s,
        silent,
        "revoke_session again",
        s.revoke_session(sess.id, 23).await.unwrap()
    );
    audited!(s, silent, "revoke_user_sessions of none", {
        s.revoke_user_sessions(root.user_id(), 24).await.unwrap()
    });
    audited!(s, silent, "purge_sessions", {
        s.purge_sessions(SessionPurge {
            created_before_ms: 100,
            idle_before_ms: 100,
        })
        .await
        .unwrap()
    });
    let key = audited!(s, recorded, "create_api_key", {
        s.create_api_key(api_key(MAIN, "k", None, 40))
            .await
            .unwrap()
    });
    audited!(
        s,
        silent,
        "touch_api_key",
        s.touch_api_key(key.id, 41).await.unwrap()
    );
    audited!(
        s,
        recorded,
        "delete_api_key",
        s.delete_api_key(key.id).await.unwrap()
    );
    let bot = add(&s, service_account("bot"), OrgRole::Viewer).await;
    audited!(s, recorded, "delete_service_account", {
        s.delete_service_account(bot.user_id())
            .await
            .unwrap()
            .expect("deleted")
    });

    // Data keys and secrets.
    let first = audited!(
        s,
        silent,
        "allocate_dek_id",
        s.allocate_dek_id().await.unwrap()
    );
    audited!(s, recorded, "install_active_dek", {
        s.install_active_dek(dek(first, 50)).await.unwrap()
    });
    audited!(
        s,
        silent,
        "reserve_dek_uses",
        s.reserve_dek_uses(first, 100).await.unwrap()
    );
    audited!(s, recorded, "rewrap_dek", {
        s.rewrap_dek(first, "kek-2", vec![1; 16]).await.unwrap()
    });
    audited!(s, recorded, "write_secrets", {
        s.write_secrets(&[put("s1", first, b"x")]).await.unwrap()
    });
    audited!(s, recorded, "commit_reencrypt", {
        s.commit_reencrypt(&[], Some("s1")).await.unwrap()
    });
    let second = s.allocate_dek_id().await.unwrap();
    s.install_active_dek(dek(second, 60)).await.unwrap();
    audited!(s, silent, "destroy_dek of a referenced one", {
        assert!(!s.destroy_dek(first).await.unwrap())
    });
    s.write_secrets(&[del("s1")]).await.unwrap();
    audited!(
        s,
        recorded,
        "destroy_dek",
        assert!(s.destroy_dek(first).await.unwrap())
    );

    // Datasources, settings, license.
    let ds = audited!(s, recorded, "create_datasource", {
        s.create_datasource(datasource(MAIN, "d", "d"), &[])
            .await
            .unwrap()
    });
    audited!(s, recorded, "update_datasource", {
        s.update_datasource(&ds, ds.version, &[]).await.unwrap()
    });
    audited!(s, recorded, "delete_datasource", {
        s.delete_datasource(MAIN, ds.id, &[])
            .await
            .unwrap()
            .expect("deleted")
    });
    audited!(s, recorded, "apply_setting_overrides", {
        s.apply_setting_overrides(&[setting("a", "b", Some("c"), false)], &[], &[])
            .await
            .unwrap()
    });
    let license = StoredLicense {
        token: "t".into(),
        stored_at: 70,
    };
    audited!(
        s,
        recorded,
        "put_license",
        s.put_license(&license).await.unwrap()
    );
    audited!(
        s,
        recorded,
        "delete_license",
        assert!(s.delete_license().await.unwrap())
    );
    audited!(s, silent, "delete_license again", {
        assert!(!s.delete_license().await.unwrap())
    });
    audited!(s, recorded, "put_renewal", {
        s.put_renewal(&RenewalRecord {
            at: 71,
            trigger: "manual".into(),
            ok: true,
            error: String::new(),
        })
        .await
        .unwrap()
    });

    // Dashboards, alerts, plugins, notifiers.
    audited!(s, recorded, "apply_dashboards", {
        s.apply_dashboards(&DashboardBatch {
            folders: Vec::new(),
            upserts: vec![(dashboard(MAIN, "dash", &[]), vec![alert(MAIN, "dash", 1)])],
            deletes: Vec::new(),
        })
        .await
        .unwrap()
    });
    audited!(s, recorded, "set_alerts_paused", {
        s.set_alerts_paused(Some(MAIN), None, true, 80)
            .await
            .unwrap()
    });
    audited!(s, silent, "set_alerts_paused again", {
        s.set_alerts_paused(Some(MAIN), None, true, 80)
            .await
            .unwrap()
    });
    audited!(s, silent, "apply_dashboards deleting nothing", {
        s.apply_dashboards(&delete_dashboard(MAIN, "missing"))
            .await
            .unwrap()
    });
    audited!(s, recorded, "apply_plugin_settings", {
        s.apply_plugin_settings(&[plugin(MAIN, "app", true)], &[])
            .await
            .unwrap()
    });
    audited!(s, recorded, "apply_notifiers", {
        s.apply_notifiers(&[notifier(MAIN, "n", "N")], &[], &[])
            .await
            .unwrap()
    });

    // Roles.
    let r = role(MAIN, "r", "custom:r");
    audited!(s, recorded, "create_role", s.create_role(&r).await.unwrap());
    audited!(
        s,
        recorded,
        "update_role",
        s.update_role(&r, r.version).await.unwrap()
    );
    audited!(s, recorded, "assign_role", {
        assert!(s.assign_role(MAIN, "r", root.user_id()).await.unwrap())
    });
    audited!(s, silent, "assign_role again", {
        assert!(!s.assign_role(MAIN, "r", root.user_id()).await.unwrap())
    });
    audited!(s, recorded, "unassign_role", {
        assert!(s
            .unassign_role(MAIN, "r", root.user_id(), "root")
            .await
            .unwrap())
    });
    audited!(s, recorded, "set_basic_grant", {
        assert!(s.set_basic_grant(MAIN, "r", "Viewer", true).await.unwrap())
    });
    audited!(s, recorded, "apply_roles", {
        s.apply_roles(&[role(MAIN, "r2", "custom:r2")], &[])
            .await
            .unwrap()
    });
    audited!(
        s,
        recorded,
        "delete_role",
        s.delete_role(MAIN, "r").await.unwrap().expect("gone")
    );

    // Deletes (the org with a datasource and a key of its own).
    new_ds(&s, datasource(OTHER, "o", "o")).await;
    new_key(&s, api_key(OTHER, "o", None, 42)).await;
    audited!(
        s,
        recorded,
        "delete_user",
        s.delete_user(a).await.unwrap().expect("deleted")
    );
    audited!(
        s,
        recorded,
        "delete_org",
        s.delete_org(OTHER, &[]).await.unwrap()
    );
    assert_eq!(
        audit_all(&s)
            .await
            .iter()
            .filter(|e| e.entry.action == "delete_org")
            .count(),
        1,
        "deleting an org with its records records one event"
    );
    audited!(s, silent, "delete_org of a missing org", {
        assert!(matches!(
            s.delete_org(OTHER, &[]).await,
            Err(StoreError::NotFound)
        ))
    });
    audit_verifies(&s).await;
}
