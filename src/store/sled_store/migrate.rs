//! Layout upgrades, run at open before anything else touches the database. `meta`
//! `schema_version` says which layout the data folder holds; a folder without it was
//! written by a release before this file existed (layout 1).
//!
//! 1 -> 2 (the backend-neutral store):
//! - absent times are `None` instead of `0`: users' `last_seen_at`, sessions'
//!   `revoked_ms`, API keys' `expires` and `last_used` (and `service_account_id` 0 is
//!   `None`), DEKs' `retired`;
//! - dashboards, folders, alerts and roles are keyed by org (two orgs may hold the same uid);
//! - `roles_by_name` indexes role names per org;
//! - `secret_deks` records the DEK of each secret. Layout 1 kept no such record, so this
//!   step reads the DEK id from each ciphertext's header, once: the only place the store
//!   looks inside a ciphertext.
//!
//! The whole upgrade is one transaction (the folder is either layout 1 or layout 2, never
//! half), followed by a flush.
//!
//! 2 -> 3 (audit runs): the events one writer transaction appends may be stored as one
//! record, `e` + first + last number holding the list (`audit.rs`). Nothing is rewritten;
//! the version alone changes, so that a release before runs, which would fail to decode
//! one, refuses the folder at open ("newer than this release") instead.

use serde::{Deserialize, Serialize};
use sled::Transactional;

use super::dashboards::panel_key;
use super::{keys, tx_err, SledStore};
use crate::crypto::PasswordHash;
use crate::store::{
    codec, ApiKeyRecord, DashboardRecord, DekRecord, DekState, FolderRecord, Membership,
    RoleRecord, SessionRecord, StoreError, StoreResult, UserRecord,
};

pub const SCHEMA_VERSION: u64 = 3;
const SCHEMA_KEY: &str = "schema_version";

#[derive(Deserialize, Serialize)]
struct UserV1 {
    id: u64,
    uid: String,
    login: String,
    email: String,
    name: String,
    is_admin: bool,
    is_disabled: bool,
    is_service_account: bool,
    password: Option<PasswordHash>,
    org_id: u64,
    memberships: Vec<Membership>,
    theme: String,
    auth_module: String,
    created: i64,
    updated: i64,
    last_seen_at: i64,
}

#[derive(Deserialize, Serialize)]
struct SessionV1 {
    id: u64,
    user_id: u64,
    token_hash: [u8; 32],
    prev_token_hash: Option<[u8; 32]>,
    prev_valid_until_ms: i64,
    client_ip: String,
    user_agent: String,
    auth_module: String,
    created_ms: i64,
    seen_ms: i64,
    rotated_ms: i64,
    revoked_ms: i64,
}

#[derive(Deserialize, Serialize)]
struct ApiKeyV1 {
    id: u64,
    org_id: u64,
    name: String,
    role: u8,
    hash: [u8; 32],
    expires: i64,
    created: i64,
    last_used: i64,
    service_account_id: u64,
}

#[derive(Deserialize, Serialize)]
struct DekV1 {
    id: u32,
    state: DekState,
    created: i64,
    retired: i64,
    kek_id: String,
    wrapped: Vec<u8>,
    reserved: u64,
}

fn some(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

/// One planned change: tree index, key, new value (None removes).
type Change = (usize, Vec<u8>, Option<Vec<u8>>);

// Tree indexes in the upgrade transaction.
const USERS: usize = 0;
const SESSIONS: usize = 1;
const API_KEYS: usize = 2;
const DEKS: usize = 3;
const DASHBOARDS: usize = 4;
const FOLDERS: usize = 5;
const ALERTS: usize = 6;
const ALERTS_BY_PANEL: usize = 7;
const ROLES: usize = 8;
const ROLES_BY_NAME: usize = 9;
const SECRET_DEKS: usize = 10;
const META: usize = 11;

fn rewrite<Old, New>(
    tree: &sled::Tree,
    index: usize,
    convert: impl Fn(Old) -> New,
    out: &mut Vec<Change>,
) -> StoreResult<()>
where
    Old: serde::de::DeserializeOwned,
    New: Serialize,
{
    for item in tree.iter() {
        let (k, v) = item?;
        let new = convert(codec::decode::<Old>(&v)?);
        out.push((index, k.to_vec(), Some(codec::encode(&new)?)));
    }
    Ok(())
}

/// Moves every row of a tree to the key `rekey` gives it.
fn rekey<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    index: usize,
    rekey: impl Fn(&T) -> Vec<u8>,
    out: &mut Vec<Change>,
) -> StoreResult<Vec<T>> {
    let mut rows = Vec::new();
    for item in tree.iter() {
        let (k, v) = item?;
        let row: T = codec::decode(&v)?;
        let new_key = rekey(&row);
        if new_key != k.as_ref() {
            out.push((index, k.to_vec(), None));
            out.push((index, new_key, Some(v.to_vec())));
        }
        rows.push(row);
    }
    Ok(rows)
}

fn plan_v2(s: &SledStore) -> StoreResult<Vec<Change>> {
    let mut out: Vec<Change> = Vec::new();
    rewrite(
        &s.users,
        USERS,
        |u: UserV1| UserRecord {
            id: u.id,
            uid: u.uid,
            login: u.login,
            email: u.email,
            name: u.name,
            is_admin: u.is_admin,
            is_disabled: u.is_disabled,
            is_service_account: u.is_service_account,
            password: u.password,
            org_id: u.org_id,
            memberships: u.memberships,
            theme: u.theme,
            auth_module: u.auth_module,
            created: u.created,
            updated: u.updated,
            last_seen_at: some(u.last_seen_at),
        },
        &mut out,
    )?;
    rewrite(
        &s.sessions,
        SESSIONS,
        |x: SessionV1| SessionRecord {
            id: x.id,
            user_id: x.user_id,
            token_hash: x.token_hash,
            prev_token_hash: x.prev_token_hash,
            prev_valid_until_ms: x.prev_valid_until_ms,
            client_ip: x.client_ip,
            user_agent: x.user_agent,
            auth_module: x.auth_module,
            created_ms: x.created_ms,
            seen_ms: x.seen_ms,
            rotated_ms: x.rotated_ms,
            revoked_ms: some(x.revoked_ms),
        },
        &mut out,
    )?;
    rewrite(
        &s.api_keys,
        API_KEYS,
        |k: ApiKeyV1| ApiKeyRecord {
            id: k.id,
            org_id: k.org_id,
            name: k.name,
            role: k.role,
            hash: k.hash,
            expires: some(k.expires),
            created: k.created,
            last_used: some(k.last_used),
            service_account_id: (k.service_account_id != 0).then_some(k.service_account_id),
        },
        &mut out,
    )?;
    rewrite(
        &s.deks,
        DEKS,
        |d: DekV1| DekRecord {
            id: d.id,
            state: d.state,
            created: d.created,
            retired: some(d.retired),
            kek_id: d.kek_id,
            wrapped: d.wrapped,
            reserved: d.reserved,
        },
        &mut out,
    )?;
    let dashboards = rekey(
        &s.dashboards,
        DASHBOARDS,
        |d: &DashboardRecord| keys::org_named(d.org_id, &d.uid),
        &mut out,
    )?;
    rekey(
        &s.folders,
        FOLDERS,
        |f: &FolderRecord| keys::org_named(f.org_id, &f.uid),
        &mut out,
    )?;
    rekey(
        &s.alerts,
        ALERTS,
        |a: &crate::store::AlertRecord| keys::pair(a.org_id, a.id).to_vec(),
        &mut out,
    )?;
    // Layout 1 keyed panels by "uid\npanel"; rebuild the index from the dashboards.
    for item in s.alerts_by_panel.iter() {
        let (k, _) = item?;
        out.push((ALERTS_BY_PANEL, k.to_vec(), None));
    }
    for item in s.alerts.iter() {
        let (_, v) = item?;
        let a: crate::store::AlertRecord = codec::decode(&v)?;
        if dashboards.iter().any(|d| d.uid == a.dashboard_uid) {
            out.push((
                ALERTS_BY_PANEL,
                panel_key(a.org_id, &a.dashboard_uid, a.panel_id),
                Some(a.id.to_be_bytes().to_vec()),
            ));
        }
    }
    let roles = rekey(
        &s.roles,
        ROLES,
        |r: &RoleRecord| keys::org_named(r.org_id, &r.uid),
        &mut out,
    )?;
    for r in &roles {
        out.push((
            ROLES_BY_NAME,
            keys::org_named(r.org_id, &r.name.to_lowercase()),
            Some(r.uid.as_bytes().to_vec()),
        ));
    }
    for item in s.secrets.iter() {
        let (k, v) = item?;
        if let Ok(dek) = crate::crypto::envelope::header_dek_id(&v) {
            out.push((SECRET_DEKS, k.to_vec(), Some(dek.to_be_bytes().to_vec())));
        }
    }
    out.push((
        META,
        SCHEMA_KEY.as_bytes().to_vec(),
        Some(SCHEMA_VERSION.to_be_bytes().to_vec()),
    ));
    Ok(out)
}

/// Brings the database to [`SCHEMA_VERSION`]; refuses a newer one.
pub fn upgrade(s: &SledStore) -> StoreResult<()> {
    let version = match s.meta.get(SCHEMA_KEY)? {
        Some(v) => keys::read_u64(Some(&v)),
        None => 1,
    };
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Io(format!(
            "the data folder holds layout {version}, newer than this release's \
             {SCHEMA_VERSION}: run a newer tollgate"
        )));
    }
    if version == 2 {
        // Layout 3 only adds a record form: the version is the whole change.
        s.meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
        s.db.flush()?;
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            "upgraded the data folder's layout"
        );
        return Ok(());
    }
    // From layout 1: one step to the current layout (2 and 3 differ in no record it writes).
    let changes = plan_v2(s)?;
    let trees: [&sled::Tree; 12] = [
        &s.users,
        &s.sessions,
        &s.api_keys,
        &s.deks,
        &s.dashboards,
        &s.folders,
        &s.alerts,
        &s.alerts_by_panel,
        &s.roles,
        &s.roles_by_name,
        &s.secret_deks,
        &s.meta,
    ];
    trees
        .as_slice()
        .transaction(|t| {
            for (tree, key, value) in &changes {
                match value {
                    Some(v) => t[*tree].insert(key.as_slice(), v.as_slice())?,
                    None => t[*tree].remove(key.as_slice())?,
                };
            }
            Ok(())
        })
        .map_err(tx_err)?;
    s.db.flush()?;
    if changes.len() > 1 {
        tracing::info!(
            from = version,
            to = SCHEMA_VERSION,
            changes = changes.len(),
            "upgraded the data folder's layout"
        );
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::{MetaStore, Store};

    /// `open` once the database's lock is free: a dropped handle's background threads
    /// release it a moment after the drop.
    fn when_free<T, E: std::fmt::Display>(open: impl Fn() -> Result<T, E>) -> Result<T, E> {
        for _ in 0..200 {
            match open() {
                Err(e) if e.to_string().contains("lock") || e.to_string().contains("in use") => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                done => return done,
            }
        }
        open()
    }

    fn stored_version(dir: &std::path::Path) -> u64 {
        let db = when_free(|| sled::open(dir)).unwrap();
        let meta = db.open_tree("meta").unwrap();
        keys::read_u64(meta.get(SCHEMA_KEY).unwrap().as_deref())
    }

    fn set_version(dir: &std::path::Path, v: u64) {
        let db = when_free(|| sled::open(dir)).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert(SCHEMA_KEY, &v.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }

    /// A folder at layout 2 (before audit runs) opens, keeps its data and is marked 3, so
    /// that a release before runs no longer opens it.
    #[tokio::test]
    async fn layout_2_opens_and_is_marked_3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let store = SledStore::open(&path).unwrap();
            store.set_meta("k", b"v").await.unwrap();
            store.flush().await.unwrap();
        }
        assert_eq!(stored_version(&path), SCHEMA_VERSION);
        set_version(&path, 2);
        let store = when_free(|| SledStore::open(&path)).unwrap();
        assert_eq!(
            store.get_meta("k").await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
        drop(store);
        assert_eq!(stored_version(&path), 3);
    }

    /// A folder written by a newer release is refused with a message naming both layouts,
    /// and left as it was.
    #[test]
    fn a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(SledStore::open(&path).unwrap());
        set_version(&path, SCHEMA_VERSION + 1);
        let err = when_free(|| SledStore::open(&path))
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains(&format!("layout {}", SCHEMA_VERSION + 1))
                && err.contains(&format!("this release's {SCHEMA_VERSION}")),
            "{err}"
        );
        assert_eq!(stored_version(&path), SCHEMA_VERSION + 1);
    }
}
