//! Custom roles in sled: `roles` (org | uid -> row, global roles in org 0) and
//! `roles_by_name` (org | lower-cased name -> uid). Assignments live in the row and change
//! only inside a transaction on that row, so concurrent assignments never lose each other
//! and an assignment racing a delete is either kept with the role or refused.

use async_trait::async_trait;
use sled::transaction::TransactionalTree;

use super::audit::Pending;
use super::writer::T;
use super::{abort, all, dec, enc, get, keys, SledStore, TxResult};
use crate::domain::{OrgId, UserId};
use crate::store::{RoleRecord, RoleStore, StoreError, StoreResult};

pub(crate) fn name_key(org: u64, name: &str) -> Vec<u8> {
    keys::org_named(org, &name.to_lowercase())
}

/// Changes one role row inside a transaction (recording the request's event when `f`
/// changed it); `NotFound` when it does not exist.
fn change_role(
    rows: &TransactionalTree,
    log: &TransactionalTree,
    pending: &Pending,
    org: OrgId,
    uid: &str,
    f: impl Fn(&mut RoleRecord) -> bool,
) -> TxResult<bool> {
    let key = keys::org_named(org.0, uid);
    let Some(old) = rows.get(key.as_slice())? else {
        return abort(StoreError::NotFound);
    };
    let mut row: RoleRecord = dec(&old)?;
    if !f(&mut row) {
        return Ok(false);
    }
    rows.insert(key, enc(&row)?)?;
    pending.record(log)?;
    Ok(true)
}

/// Inserts or replaces a role row with its name index (inside a transaction).
fn put_role(
    rows: &TransactionalTree,
    by_name: &TransactionalTree,
    role: &RoleRecord,
    old: Option<&RoleRecord>,
) -> TxResult<()> {
    let new_name = name_key(role.org_id, &role.name);
    if let Some(owner) = by_name.get(new_name.as_slice())? {
        if owner.as_ref() != role.uid.as_bytes() {
            return abort(StoreError::Conflict("name"));
        }
    }
    if let Some(old) = old {
        by_name.remove(name_key(old.org_id, &old.name))?;
    }
    by_name.insert(new_name, role.uid.as_bytes())?;
    rows.insert(keys::org_named(role.org_id, &role.uid), enc(role)?)?;
    Ok(())
}

#[async_trait]
impl RoleStore for SledStore {
    async fn roles(&self) -> StoreResult<Vec<RoleRecord>> {
        all(&self.roles)
    }

    async fn role(&self, org: OrgId, uid: &str) -> StoreResult<Option<RoleRecord>> {
        get(&self.roles, keys::org_named(org.0, uid))
    }

    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()> {
        let role = role.clone();
        self.write_audited(move |tx, pending| {
            let (rows, by_name, log) = (&tx[T::Roles], &tx[T::RolesByName], &tx[T::Audit]);
            let role = &role;
            if rows.get(keys::org_named(role.org_id, &role.uid))?.is_some() {
                return abort(StoreError::Conflict("uid"));
            }
            put_role(rows, by_name, role, None)?;
            pending.record_created(log, &role.uid)
        })
        .await
    }

    async fn update_role(&self, role: &RoleRecord, expected_version: u64) -> StoreResult<()> {
        let role = role.clone();
        self.write_audited(move |tx, pending| {
            let (rows, by_name, log) = (&tx[T::Roles], &tx[T::RolesByName], &tx[T::Audit]);
            let role = &role;
            let Some(old) = rows.get(keys::org_named(role.org_id, &role.uid))? else {
                return abort(StoreError::NotFound);
            };
            let old: RoleRecord = dec(&old)?;
            if old.version != expected_version {
                return abort(StoreError::Stale("version"));
            }
            let mut row = role.clone();
            row.user_ids = old.user_ids.clone();
            row.users = old.users.clone();
            row.basic_roles = old.basic_roles.clone();
            put_role(rows, by_name, &row, Some(&old))?;
            pending.record(log)
        })
        .await
    }

    async fn delete_role(&self, org: OrgId, uid: &str) -> StoreResult<Option<RoleRecord>> {
        let uid = uid.to_owned();
        self.write_audited(move |tx, pending| {
            let (rows, by_name, log) = (&tx[T::Roles], &tx[T::RolesByName], &tx[T::Audit]);
            let uid = uid.as_str();
            let Some(old) = rows.remove(keys::org_named(org.0, uid))? else {
                return Ok(None);
            };
            let old: RoleRecord = dec(&old)?;
            by_name.remove(name_key(old.org_id, &old.name))?;
            pending.record(log)?;
            Ok(Some(old))
        })
        .await
    }

    async fn apply_roles(&self, set: &[RoleRecord], delete: &[(OrgId, String)]) -> StoreResult<()> {
        let (set, delete) = (set.to_vec(), delete.to_vec());
        self.write_audited(move |tx, pending| {
            let (rows, by_name, log) = (&tx[T::Roles], &tx[T::RolesByName], &tx[T::Audit]);
            let (set, delete) = (&set, &delete);
            let mut changed = !set.is_empty();
            for (org, uid) in delete {
                if let Some(old) = rows.remove(keys::org_named(org.0, uid))? {
                    let old: RoleRecord = dec(&old)?;
                    by_name.remove(name_key(old.org_id, &old.name))?;
                    changed = true;
                }
            }
            for role in set {
                let old = match rows.get(keys::org_named(role.org_id, &role.uid))? {
                    Some(v) => Some(dec::<RoleRecord>(&v)?),
                    None => None,
                };
                let mut row = role.clone();
                if let Some(old) = &old {
                    row.user_ids = old.user_ids.clone();
                }
                put_role(rows, by_name, &row, old.as_ref())?;
            }
            if changed {
                pending.record(log)?;
            }
            Ok(())
        })
        .await
    }

    async fn assign_role(&self, org: OrgId, uid: &str, user: UserId) -> StoreResult<bool> {
        let uid = uid.to_owned();
        self.write_audited(move |tx, pending| {
            let (rows, log) = (&tx[T::Roles], &tx[T::Audit]);
            let uid = uid.as_str();
            change_role(rows, log, pending, org, uid, |row| {
                if row.user_ids.contains(&user.0) {
                    return false;
                }
                row.user_ids.push(user.0);
                true
            })
        })
        .await
    }

    async fn unassign_role(
        &self,
        org: OrgId,
        uid: &str,
        user: UserId,
        login: &str,
    ) -> StoreResult<bool> {
        let (uid, login) = (uid.to_owned(), login.to_owned());
        self.write_audited(move |tx, pending| {
            let (rows, log) = (&tx[T::Roles], &tx[T::Audit]);
            let (uid, login) = (uid.as_str(), login.as_str());
            change_role(rows, log, pending, org, uid, |row| {
                let before = row.user_ids.len() + row.users.len();
                row.user_ids.retain(|u| *u != user.0);
                row.users.retain(|l| !l.eq_ignore_ascii_case(login));
                before != row.user_ids.len() + row.users.len()
            })
        })
        .await
    }

    async fn set_basic_grant(
        &self,
        org: OrgId,
        uid: &str,
        basic: &str,
        granted: bool,
    ) -> StoreResult<bool> {
        let (uid, basic) = (uid.to_owned(), basic.to_owned());
        self.write_audited(move |tx, pending| {
            let (rows, log) = (&tx[T::Roles], &tx[T::Audit]);
            let (uid, basic) = (uid.as_str(), basic.as_str());
            change_role(rows, log, pending, org, uid, |row| {
                let has = row
                    .basic_roles
                    .iter()
                    .any(|b| b.eq_ignore_ascii_case(basic));
                match (has, granted) {
                    (false, true) => row.basic_roles.push(basic.to_string()),
                    (true, false) => row.basic_roles.retain(|b| !b.eq_ignore_ascii_case(basic)),
                    _ => return false,
                }
                true
            })
        })
        .await
    }
}
