//! The sled implementation of the store traits: the only code that names sled. Users and
//! orgs here; sessions and API keys in their own files.

mod api_keys;
mod datasources;
mod license;
mod provisioning;
mod secrets;
mod sessions;
mod settings;

use std::path::Path;

use sled::transaction::{
    ConflictableTransactionError, ConflictableTransactionResult, TransactionError,
    TransactionalTree,
};
use sled::{Transactional, Tree};

use super::{
    codec, counter, Durability, MetaStore, NewMembership, OrgRecord, StoreError, UserPage,
    UserRecord, UserStore,
};
use crate::domain::{OrgId, UserId};

pub(crate) type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

/// All of tollgate's trees in one sled database.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    users: Tree,
    by_login: Tree,
    by_email: Tree,
    by_uid: Tree,
    orgs: Tree,
    org_members: Tree,
    counters: Tree,
    meta: Tree,
    sessions: Tree,
    sessions_by_hash: Tree,
    sessions_by_user: Tree,
    api_keys: Tree,
    api_keys_by_hash: Tree,
    api_keys_by_name: Tree,
    deks: Tree,
    secrets: Tree,
    datasources: Tree,
    ds_by_uid: Tree,
    ds_by_name: Tree,
    settings: Tree,
    license: Tree,
    dashboards: Tree,
    folders: Tree,
    alerts: Tree,
    alerts_by_panel: Tree,
    plugin_settings: Tree,
    notifiers: Tree,
    roles: Tree,
    provisioning_runs: Tree,
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

pub(crate) fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Io(e.to_string()),
    }
}

pub(crate) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

pub(crate) fn enc<T: serde::Serialize>(v: &T) -> TxResult<Vec<u8>> {
    codec::encode(v).map_err(ConflictableTransactionError::Abort)
}

pub(crate) fn dec<T: serde::de::DeserializeOwned>(b: &[u8]) -> TxResult<T> {
    codec::decode(b).map_err(ConflictableTransactionError::Abort)
}

pub(crate) fn read_u64(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Adds `delta` to a counter inside a transaction.
pub(crate) fn bump(tx: &TransactionalTree, name: &str, delta: i64) -> TxResult<()> {
    if delta == 0 {
        return Ok(());
    }
    let cur = read_u64(tx.get(name)?.as_deref());
    let new = if delta < 0 {
        cur.saturating_sub(delta.unsigned_abs())
    } else {
        cur.saturating_add(delta as u64)
    };
    tx.insert(name, &new.to_be_bytes())?;
    Ok(())
}

pub(crate) fn pair_key(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

/// Allocates the next id of a sequence kept in the meta tree (ids start at 1).
pub(crate) fn next_id(meta: &TransactionalTree, sequence: &str) -> TxResult<u64> {
    let id = read_u64(meta.get(sequence)?.as_deref()).max(1);
    meta.insert(sequence, &(id + 1).to_be_bytes())?;
    Ok(id)
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The counter deltas of adding (`sign` 1) or removing (`sign` -1) a user row.
fn count_user(counters: &TransactionalTree, u: &UserRecord, sign: i64) -> TxResult<()> {
    if u.is_service_account {
        return bump(counters, counter::SERVICE_ACCOUNTS, sign);
    }
    bump(counters, counter::USERS, sign)?;
    if u.is_admin {
        bump(counters, counter::GRAFANA_ADMINS, sign)?;
    }
    bump(counters, counter::for_role(u.highest_role()), sign)
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                    StoreError::Io(format!(
                        "the database in {} is in use by another tollgate process",
                        path.display()
                    ))
                }
                other => StoreError::Io(format!("cannot open {}: {other}", path.display())),
            })?;
        Self::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            users: db.open_tree("users")?,
            by_login: db.open_tree("users_by_login")?,
            by_email: db.open_tree("users_by_email")?,
            by_uid: db.open_tree("users_by_uid")?,
            orgs: db.open_tree("orgs")?,
            org_members: db.open_tree("org_members")?,
            counters: db.open_tree("counters")?,
            meta: db.open_tree("meta")?,
            sessions: db.open_tree("sessions")?,
            sessions_by_hash: db.open_tree("sessions_by_hash")?,
            sessions_by_user: db.open_tree("sessions_by_user")?,
            api_keys: db.open_tree("api_keys")?,
            api_keys_by_hash: db.open_tree("api_keys_by_hash")?,
            api_keys_by_name: db.open_tree("api_keys_by_name")?,
            deks: db.open_tree("deks")?,
            secrets: db.open_tree("secrets")?,
            datasources: db.open_tree("datasources")?,
            ds_by_uid: db.open_tree("datasources_by_uid")?,
            ds_by_name: db.open_tree("datasources_by_name")?,
            settings: db.open_tree("settings_overrides")?,
            license: db.open_tree("license")?,
            dashboards: db.open_tree("dashboards")?,
            folders: db.open_tree("folders")?,
            alerts: db.open_tree("alerts")?,
            alerts_by_panel: db.open_tree("alerts_by_panel")?,
            plugin_settings: db.open_tree("plugin_settings")?,
            notifiers: db.open_tree("alert_notifications")?,
            roles: db.open_tree("roles")?,
            provisioning_runs: db.open_tree("provisioning_runs")?,
            db,
        })
    }

    /// The group-commit flusher for this database.
    pub fn durability(&self) -> Durability {
        let db = self.db.clone();
        Durability::new(move || db.flush().map(|_| ()).map_err(StoreError::from))
    }

    /// True when sled answers a read (health check).
    pub fn healthy(&self) -> bool {
        self.meta.get(b"__health").is_ok()
    }

    fn load(&self, tree: &Tree, key: &[u8]) -> Result<Option<UserRecord>, StoreError> {
        let Some(id) = tree.get(key)? else {
            return Ok(None);
        };
        self.user(UserId::from_key(&id).ok_or(StoreError::Codec("bad index".into()))?)
    }
}

impl UserStore for SledStore {
    fn create_user(
        &self,
        user: UserRecord,
        membership: NewMembership,
    ) -> Result<UserRecord, StoreError> {
        let login_key = fold(&user.login);
        let email_key = fold(&user.email);
        (
            &self.users,
            &self.by_login,
            &self.by_email,
            &self.by_uid,
            &self.orgs,
            &self.org_members,
            &self.counters,
            &self.meta,
        )
            .transaction(
                |(users, by_login, by_email, by_uid, orgs, members, counters, meta)| {
                    if by_login.get(login_key.as_bytes())?.is_some() {
                        return abort(StoreError::Conflict("login"));
                    }
                    if by_email.get(email_key.as_bytes())?.is_some() {
                        return abort(StoreError::Conflict("email"));
                    }
                    let id = read_u64(meta.get("next_user_id")?.as_deref()).max(1);
                    meta.insert("next_user_id", &(id + 1).to_be_bytes())?;
                    let (org_id, role) = match &membership {
                        NewMembership::Existing(org, role) => {
                            if orgs.get(org.key())?.is_none() {
                                return abort(StoreError::OrgNotFound);
                            }
                            (org.0, *role)
                        }
                        NewMembership::NewOrg(name, role) => {
                            let org_id = read_u64(meta.get("next_org_id")?.as_deref()).max(2);
                            meta.insert("next_org_id", &(org_id + 1).to_be_bytes())?;
                            let org = OrgRecord {
                                id: org_id,
                                name: name.clone(),
                                created: user.created,
                                updated: user.created,
                            };
                            orgs.insert(&org_id.to_be_bytes(), enc(&org)?)?;
                            bump(counters, counter::ORGS, 1)?;
                            (org_id, *role)
                        }
                    };
                    let mut row = user.clone();
                    row.id = id;
                    row.org_id = org_id;
                    row.memberships = vec![super::Membership {
                        org_id,
                        role: role.to_byte(),
                    }];
                    users.insert(&id.to_be_bytes(), enc(&row)?)?;
                    by_login.insert(login_key.as_bytes(), &id.to_be_bytes())?;
                    by_email.insert(email_key.as_bytes(), &id.to_be_bytes())?;
                    by_uid.insert(row.uid.as_bytes(), &id.to_be_bytes())?;
                    members.insert(&pair_key(org_id, id), &[role.to_byte()])?;
                    count_user(counters, &row, 1)?;
                    Ok(row)
                },
            )
            .map_err(tx_err)
    }

    fn user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        match self.users.get(id.key())? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    fn user_by_uid(&self, uid: &str) -> Result<Option<UserRecord>, StoreError> {
        self.load(&self.by_uid, uid.as_bytes())
    }

    fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>, StoreError> {
        self.load(&self.by_login, fold(login).as_bytes())
    }

    fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.load(&self.by_email, fold(email).as_bytes())
    }

    fn update_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let id = user.id.to_be_bytes();
        (&self.users, &self.by_login, &self.by_email)
            .transaction(|(users, by_login, by_email)| {
                let Some(old) = users.get(id)? else {
                    return abort(StoreError::NotFound);
                };
                let old: UserRecord = dec(&old)?;
                let mut row = user.clone();
                // Memberships and the admin flag have their own operations.
                row.memberships = old.memberships.clone();
                row.is_admin = old.is_admin;
                for (tree, old_v, new_v, what) in [
                    (by_login, fold(&old.login), fold(&row.login), "login"),
                    (by_email, fold(&old.email), fold(&row.email), "email"),
                ] {
                    if old_v != new_v {
                        if let Some(owner) = tree.get(new_v.as_bytes())? {
                            if owner.as_ref() != id {
                                return abort(StoreError::Conflict(what));
                            }
                        }
                        tree.remove(old_v.as_bytes())?;
                        tree.insert(new_v.as_bytes(), &id)?;
                    }
                }
                users.insert(&id, enc(&row)?)?;
                Ok(())
            })
            .map_err(tx_err)
    }

    fn set_memberships(
        &self,
        id: UserId,
        memberships: &[(OrgId, crate::domain::OrgRole)],
    ) -> Result<UserRecord, StoreError> {
        (&self.users, &self.orgs, &self.org_members, &self.counters)
            .transaction(|(users, orgs, members, counters)| {
                let Some(old) = users.get(id.key())? else {
                    return abort(StoreError::NotFound);
                };
                let old: UserRecord = dec(&old)?;
                for (org, _) in memberships {
                    if orgs.get(org.key())?.is_none() {
                        return abort(StoreError::OrgNotFound);
                    }
                }
                let mut row = old.clone();
                row.memberships = memberships
                    .iter()
                    .map(|(org, role)| super::Membership {
                        org_id: org.0,
                        role: role.to_byte(),
                    })
                    .collect();
                if !row.memberships.iter().any(|m| m.org_id == row.org_id) {
                    row.org_id = row.memberships.first().map_or(row.org_id, |m| m.org_id);
                }
                for m in &old.memberships {
                    members.remove(&pair_key(m.org_id, old.id))?;
                }
                for m in &row.memberships {
                    members.insert(&pair_key(m.org_id, row.id), &[m.role])?;
                }
                count_user(counters, &old, -1)?;
                count_user(counters, &row, 1)?;
                users.insert(&id.key(), enc(&row)?)?;
                Ok(row)
            })
            .map_err(tx_err)
    }

    fn set_grafana_admin(&self, id: UserId, admin: bool) -> Result<UserRecord, StoreError> {
        (&self.users, &self.counters)
            .transaction(|(users, counters)| {
                let Some(old) = users.get(id.key())? else {
                    return abort(StoreError::NotFound);
                };
                let mut row: UserRecord = dec(&old)?;
                if row.is_admin == admin {
                    return Ok(row);
                }
                let admins = read_u64(counters.get(counter::GRAFANA_ADMINS)?.as_deref());
                if !admin && admins <= 1 {
                    return abort(StoreError::LastAdmin);
                }
                row.is_admin = admin;
                row.updated = super::now();
                users.insert(&id.key(), enc(&row)?)?;
                bump(
                    counters,
                    counter::GRAFANA_ADMINS,
                    if admin { 1 } else { -1 },
                )?;
                Ok(row)
            })
            .map_err(tx_err)
    }

    fn delete_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError> {
        (
            &self.users,
            &self.by_login,
            &self.by_email,
            &self.by_uid,
            &self.org_members,
            &self.counters,
        )
            .transaction(|(users, by_login, by_email, by_uid, members, counters)| {
                let Some(old) = users.remove(&id.key())? else {
                    return Ok(None);
                };
                let row: UserRecord = dec(&old)?;
                if row.is_admin && read_u64(counters.get(counter::GRAFANA_ADMINS)?.as_deref()) <= 1
                {
                    return abort(StoreError::LastAdmin);
                }
                by_login.remove(fold(&row.login).as_bytes())?;
                by_email.remove(fold(&row.email).as_bytes())?;
                by_uid.remove(row.uid.as_bytes())?;
                for m in &row.memberships {
                    members.remove(&pair_key(m.org_id, row.id))?;
                }
                count_user(counters, &row, -1)?;
                Ok(Some(row))
            })
            .map_err(tx_err)
    }

    fn search_users(&self, query: &str, offset: u64, limit: u64) -> Result<UserPage, StoreError> {
        self.search(query, offset, limit, false)
    }

    fn search_service_accounts(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
    ) -> Result<UserPage, StoreError> {
        self.search(query, offset, limit, true)
    }

    fn touch_last_seen(&self, id: UserId, at: i64) -> Result<(), StoreError> {
        // A compare-and-swap loop: never overwrite a concurrent update of the row.
        for _ in 0..4 {
            let Some(old) = self.users.get(id.key())? else {
                return Ok(());
            };
            let mut row: UserRecord = codec::decode(&old)?;
            row.last_seen_at = at;
            let new = codec::encode(&row)?;
            match self
                .users
                .compare_and_swap(id.key(), Some(old), Some(new))?
            {
                Ok(()) => return Ok(()),
                Err(_) => continue,
            }
        }
        Ok(())
    }

    fn org(&self, id: OrgId) -> Result<Option<OrgRecord>, StoreError> {
        match self.orgs.get(id.key())? {
            Some(b) => Ok(Some(codec::decode(&b)?)),
            None => Ok(None),
        }
    }

    fn ensure_org(&self, id: OrgId, name: &str) -> Result<(), StoreError> {
        (&self.orgs, &self.counters, &self.meta)
            .transaction(|(orgs, counters, meta)| {
                if orgs.get(id.key())?.is_some() {
                    return Ok(());
                }
                let now = super::now();
                let org = OrgRecord {
                    id: id.0,
                    name: name.to_string(),
                    created: now,
                    updated: now,
                };
                orgs.insert(&id.key(), enc(&org)?)?;
                let next = read_u64(meta.get("next_org_id")?.as_deref()).max(2);
                meta.insert("next_org_id", &next.max(id.0 + 1).to_be_bytes())?;
                bump(counters, counter::ORGS, 1)
            })
            .map_err(tx_err)
    }

    fn counter(&self, name: &str) -> Result<u64, StoreError> {
        Ok(read_u64(self.counters.get(name)?.as_deref()))
    }

    fn for_each_user(&self, f: &mut dyn FnMut(&UserRecord)) -> Result<(), StoreError> {
        for item in self.users.iter() {
            let (_, v) = item?;
            f(&codec::decode(&v)?);
        }
        Ok(())
    }
}

impl MetaStore for SledStore {
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(key, value)?;
        Ok(())
    }
}

impl SledStore {
    /// Users or service accounts ordered by login, matching `query`.
    fn search(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
        service_accounts: bool,
    ) -> Result<UserPage, StoreError> {
        let q = fold(query);

        let mut page = UserPage::default();
        for item in self.by_login.iter() {
            let (_, id) = item?;
            let Some(id) = UserId::from_key(&id) else {
                continue;
            };
            let Some(u) = self.user(id)? else { continue };
            if u.is_service_account != service_accounts {
                continue;
            }
            let matches = q.is_empty()
                || u.login.to_lowercase().contains(&q)
                || u.email.to_lowercase().contains(&q)
                || u.name.to_lowercase().contains(&q);
            if !matches {
                continue;
            }
            if page.total >= offset && (page.users.len() as u64) < limit {
                page.users.push(u);
            }
            page.total += 1;
        }
        Ok(page)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The contract every `UserStore` implementation must pass.
    use super::*;
    use crate::domain::OrgRole;

    fn store() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(&dir.path().join("db")).unwrap();
        s.ensure_org(OrgId(1), "Main Org.").unwrap();
        (dir, s)
    }

    fn user(login: &str, email: &str) -> UserRecord {
        UserRecord {
            id: 0,
            uid: crate::crypto::random::short_uid(),
            login: login.into(),
            email: email.into(),
            name: login.into(),
            is_admin: false,
            is_disabled: false,
            is_service_account: false,
            password: None,
            org_id: 0,
            memberships: vec![],
            theme: String::new(),
            auth_module: String::new(),
            created: 0,
            updated: 0,
            last_seen_at: 0,
        }
    }

    #[test]
    fn create_assigns_ids_and_enforces_case_insensitive_uniqueness() {
        let (_d, s) = store();
        let m = NewMembership::Existing(OrgId(1), OrgRole::Viewer);
        let a = s.create_user(user("Alice", "a@x.org"), m.clone()).unwrap();
        let b = s.create_user(user("bob", "b@x.org"), m.clone()).unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        assert!(matches!(
            s.create_user(user("ALICE", "c@x.org"), m.clone()),
            Err(StoreError::Conflict("login"))
        ));
        assert!(matches!(
            s.create_user(user("carol", "A@X.org"), m.clone()),
            Err(StoreError::Conflict("email"))
        ));
        assert_eq!(s.user_by_login("alice").unwrap().unwrap().id, 1);
        assert_eq!(s.user_by_uid(&b.uid).unwrap().unwrap().id, 2);
        assert_eq!(s.counter(counter::USERS).unwrap(), 2);
        assert_eq!(s.counter(counter::ROLE_VIEWER).unwrap(), 2);
        assert!(matches!(
            s.create_user(
                user("dan", "d@x.org"),
                NewMembership::Existing(OrgId(9), OrgRole::Viewer)
            ),
            Err(StoreError::OrgNotFound)
        ));
    }

    #[test]
    fn update_reindexes_and_delete_cleans_up() {
        let (_d, s) = store();
        let m = NewMembership::Existing(OrgId(1), OrgRole::Editor);
        let mut a = s.create_user(user("alice", "a@x.org"), m.clone()).unwrap();
        s.create_user(user("bob", "b@x.org"), m).unwrap();
        a.login = "alice2".into();
        s.update_user(&a).unwrap();
        assert!(s.user_by_login("alice").unwrap().is_none());
        assert_eq!(s.user_by_login("ALICE2").unwrap().unwrap().id, a.id);
        a.email = "B@x.org".into();
        assert!(matches!(
            s.update_user(&a),
            Err(StoreError::Conflict("email"))
        ));
        let gone = s.delete_user(UserId(a.id)).unwrap().unwrap();
        assert_eq!(gone.login, "alice2");
        assert!(s.user_by_login("alice2").unwrap().is_none());
        assert!(s.delete_user(UserId(a.id)).unwrap().is_none());
        assert_eq!(s.counter(counter::USERS).unwrap(), 1);
        assert_eq!(s.counter(counter::ROLE_EDITOR).unwrap(), 1);
    }

    #[test]
    fn last_admin_is_protected() {
        let (_d, s) = store();
        let m = NewMembership::Existing(OrgId(1), OrgRole::Admin);
        let a = s.create_user(user("a", "a@x"), m.clone()).unwrap();
        let b = s.create_user(user("b", "b@x"), m).unwrap();
        s.set_grafana_admin(UserId(a.id), true).unwrap();
        assert!(matches!(
            s.set_grafana_admin(UserId(a.id), false),
            Err(StoreError::LastAdmin)
        ));
        s.set_grafana_admin(UserId(b.id), true).unwrap();
        s.set_grafana_admin(UserId(a.id), false).unwrap();
        assert_eq!(s.counter(counter::GRAFANA_ADMINS).unwrap(), 1);
    }

    #[test]
    fn search_pages_in_login_order() {
        let (_d, s) = store();
        let m = NewMembership::Existing(OrgId(1), OrgRole::Viewer);
        for name in ["carol", "alice", "bob", "alfred"] {
            s.create_user(user(name, &format!("{name}@x.org")), m.clone())
                .unwrap();
        }
        let p = s.search_users("", 0, 2).unwrap();
        assert_eq!(p.total, 4);
        let logins: Vec<_> = p.users.iter().map(|u| u.login.as_str()).collect();
        assert_eq!(logins, ["alfred", "alice"]);
        let p = s.search_users("AL", 1, 10).unwrap();
        assert_eq!(p.total, 2);
        assert_eq!(p.users.len(), 1);
        assert_eq!(p.users[0].login, "alice");
    }
}
