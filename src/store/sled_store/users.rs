//! Users and orgs in sled: `users` (id -> row), the unique indexes `users_by_login` and
//! `users_by_email` (case-folded) and `users_by_uid`, `orgs` (id -> row), `org_members`
//! (org | user -> role). Memberships live in the user row too (a user has few). Every
//! narrow update is one transaction that re-reads the row, so it cannot undo a concurrent
//! change to another field. Also the stats (counters, activity scan) and the meta tree.

use std::sync::Arc;

use async_trait::async_trait;
use sled::transaction::TransactionalTree;
use sled::Tree;

use super::writer::T;
use super::{abort, bump, counter, dec, enc, get, keys, read_u64, SledStore, TxResult};
use crate::crypto::PasswordHash;
use crate::domain::{OrgId, OrgRole, UserId};
use crate::store::{
    activity_bucket, codec, Activity, ActivityWindows, Counts, Membership, MetaStore,
    NewMembership, OrgAddressRecord, OrgRecord, ProfileChange, SeriesBucket, StatsStore,
    StoreError, StoreResult, UserPage, UserRecord, UserStore,
};

pub(crate) fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The counter deltas of adding (`sign` 1) or removing (`sign` -1) a user row.
pub(crate) fn count_user(counters: &TransactionalTree, u: &UserRecord, sign: i64) -> TxResult<()> {
    if u.is_service_account {
        return bump(counters, counter::SERVICE_ACCOUNTS, sign);
    }
    bump(counters, counter::USERS, sign)?;
    if u.is_admin {
        bump(counters, counter::GRAFANA_ADMINS, sign)?;
        if !u.is_disabled {
            bump(counters, counter::ENABLED_ADMINS, sign)?;
        }
    }
    bump(counters, counter::for_role(u.highest_role()), sign)
}

/// Whether `row` is a Grafana Admin that counts (enabled, not a service account).
fn enabled_admin(row: &UserRecord) -> bool {
    row.is_admin && !row.is_disabled && !row.is_service_account
}

/// The last enabled Grafana Admin may not go, lose the flag or be disabled.
fn check_not_last_enabled_admin(counters: &TransactionalTree, row: &UserRecord) -> TxResult<()> {
    if enabled_admin(row) && read_u64(counters.get(counter::ENABLED_ADMINS)?.as_deref()) <= 1 {
        return abort(StoreError::LastAdmin);
    }
    Ok(())
}

/// Removes a user row with its indexes, memberships and counts (inside a transaction).
pub(crate) fn remove_user_row(
    users: &TransactionalTree,
    by_login: &TransactionalTree,
    by_email: &TransactionalTree,
    by_uid: &TransactionalTree,
    members: &TransactionalTree,
    counters: &TransactionalTree,
    id: UserId,
) -> TxResult<Option<UserRecord>> {
    let Some(old) = users.get(id.key())? else {
        return Ok(None);
    };
    let row: UserRecord = dec(&old)?;
    check_not_last_enabled_admin(counters, &row)?;
    users.remove(&id.key())?;
    by_login.remove(fold(&row.login).as_bytes())?;
    by_email.remove(fold(&row.email).as_bytes())?;
    by_uid.remove(row.uid.as_bytes())?;
    for m in &row.memberships {
        members.remove(&keys::pair(m.org_id, row.id))?;
    }
    count_user(counters, &row, -1)?;
    Ok(Some(row))
}

impl SledStore {
    fn load(&self, tree: &Tree, key: &[u8]) -> StoreResult<Option<UserRecord>> {
        let Some(id) = tree.get(key)? else {
            return Ok(None);
        };
        let id = UserId::from_key(&id).ok_or(StoreError::Codec("bad index".into()))?;
        get(&self.users, id.key())
    }

    /// Changes one user row in a transaction on `users` (and the audit log): `change`
    /// edits the decoded row and returns whether anything changed.
    /// Changes one user's row in the writer (durable on return).
    async fn change_user(
        &self,
        id: UserId,
        change: impl Fn(&mut UserRecord) -> TxResult<bool> + Send + 'static,
    ) -> StoreResult<UserRecord> {
        self.write_audited(move |tx, pending| {
            let users = &tx[T::Users];
            let Some(old) = users.get(id.key())? else {
                return abort(StoreError::NotFound);
            };
            let mut row: UserRecord = dec(&old)?;
            if change(&mut row)? {
                users.insert(&id.key(), enc(&row)?)?;
                pending.record(&tx[T::Audit])?;
            }
            Ok(row)
        })
        .await
    }

    /// One pass over the counters tree (a few dozen keys) instead of a lookup each.
    fn counts_sync(&self) -> StoreResult<Counts> {
        let mut c = Counts::default();
        for row in self.counters.iter() {
            let (name, value) = row?;
            let slot = match std::str::from_utf8(&name).unwrap_or("") {
                counter::USERS => &mut c.users,
                counter::GRAFANA_ADMINS => &mut c.grafana_admins,
                counter::ORGS => &mut c.orgs,
                counter::ROLE_ADMIN => &mut c.admins,
                counter::ROLE_EDITOR => &mut c.editors,
                counter::ROLE_VIEWER => &mut c.viewers,
                counter::ROLE_NONE => &mut c.no_role,
                counter::SERVICE_ACCOUNTS => &mut c.service_accounts,
                counter::API_KEYS => &mut c.api_keys,
                counter::DATASOURCES => &mut c.datasources,
                counter::DASHBOARDS => &mut c.dashboards,
                counter::FOLDERS => &mut c.folders,
                counter::TAGS => &mut c.tags,
                counter::ALERTS => &mut c.alerts,
                _ => continue,
            };
            *slot = read_u64(Some(&value));
        }
        Ok(c)
    }

    /// Users or service accounts ordered by login, matching `query` (a scan).
    fn search_sync(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
        service_accounts: bool,
    ) -> StoreResult<UserPage> {
        let q = fold(query);
        let mut page = UserPage::default();
        for item in self.by_login.iter() {
            let (_, id) = item?;
            let Some(id) = UserId::from_key(&id) else {
                continue;
            };
            let Some(u) = get::<UserRecord>(&self.users, id.key())? else {
                continue;
            };
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

    fn activity_sync(&self, w: ActivityWindows) -> StoreResult<Activity> {
        let mut a = Activity::default();
        // Only users seen since the earliest window starts, through the last-seen index.
        let from = (w.active_after + 1)
            .min(w.daily_after + 1)
            .min(w.month_start);
        for item in self.users_by_seen.range(seen_prefix(from).as_slice()..) {
            let (k, _) = item?;
            let Some((seen, id)) = parse_seen_key(&k) else {
                continue;
            };
            let Some(u) = get::<UserRecord>(&self.users, id.key())? else {
                continue; // a deleted user's entry
            };
            if u.is_service_account || u.last_seen_at != Some(seen) {
                continue; // an entry the row has moved past
            }
            let b = activity_bucket(u.highest_role());
            if seen > w.active_after {
                a.active[b] += 1;
            }
            if seen > w.daily_after {
                a.daily[b] += 1;
            }
            if seen >= w.month_start {
                a.monthly_active_users += 1;
            }
        }
        for item in self.sessions.iter() {
            let (_, v) = item?;
            let s: crate::store::SessionRecord = codec::decode(&v)?;
            if s.revoked_ms.is_none() && s.last_used_ms() > w.sessions_after_ms {
                a.daily_active_sessions += 1;
            }
        }
        Ok(a)
    }

    /// Builds the last-seen index from the users when this folder has not got it yet (a
    /// folder written before it existed) or `rebuild` says so (an import). One walk over
    /// every user, once.
    pub(crate) fn index_last_seen(&self, rebuild: bool) -> StoreResult<()> {
        if !rebuild && self.meta.get(LAST_SEEN_INDEXED)?.is_some() {
            return Ok(());
        }
        self.users_by_seen.clear()?;
        for item in self.users.iter() {
            let (_, v) = item?;
            let u: UserRecord = codec::decode(&v)?;
            if let Some(seen) = u.last_seen_at.filter(|_| !u.is_service_account) {
                self.users_by_seen
                    .insert(seen_key(seen, UserId(u.id)), &[])?;
            }
        }
        self.meta.insert(LAST_SEEN_INDEXED, &[1u8])?;
        Ok(())
    }

    /// Builds the org name index when it does not cover every org (a folder written before
    /// the index existed, or an import): each name points at its lowest org id.
    pub(crate) fn index_org_names(&self) -> StoreResult<()> {
        if self.orgs_by_name.len() == self.orgs.len() {
            return Ok(());
        }
        self.orgs_by_name.clear()?;
        for item in self.orgs.iter() {
            let (_, v) = item?;
            let org: OrgRecord = codec::decode(&v)?;
            self.orgs_by_name
                .compare_and_swap(
                    org.name.as_bytes(),
                    None as Option<&[u8]>,
                    Some(&org.id.to_be_bytes()[..]),
                )?
                .ok();
        }
        Ok(())
    }

    /// The other members of `org` that are `Admin` now (a scan, outside any transaction):
    /// the candidates a last-org-admin check re-reads inside its transaction.
    fn other_org_admins(&self, org: OrgId, user: UserId) -> StoreResult<Vec<u64>> {
        let mut out = Vec::new();
        for item in self.org_members.scan_prefix(org.key()) {
            let (k, v) = item?;
            let other = read_u64(k.get(8..));
            if other != user.0 && v.first() == Some(&OrgRole::Admin.to_byte()) {
                out.push(other);
            }
        }
        Ok(out)
    }

    /// One membership change in a transaction on the user row, the membership index and
    /// the counters. `change` edits the membership list (and may abort). When the user was
    /// an `Admin` of `org` and no longer is, one of `candidates` must still be an `Admin`
    /// member: each one read here joins the transaction's read set, so a concurrent
    /// demotion of it makes this transaction retry (and the check run again).
    /// Changes one user's memberships in the writer (durable on return). `candidates`:
    /// the org's other admins when it was read, for the last-admin rule.
    async fn change_membership(
        &self,
        user: UserId,
        org: OrgId,
        candidates: Vec<u64>,
        at: i64,
        change: impl Fn(&mut Vec<Membership>) -> TxResult<()> + Send + 'static,
    ) -> StoreResult<UserRecord> {
        let admin = OrgRole::Admin.to_byte();
        self.write_audited(move |tx, pending| {
            let (users, orgs, members, counters, log) = (
                &tx[T::Users],
                &tx[T::Orgs],
                &tx[T::OrgMembers],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let Some(old) = users.get(user.key())? else {
                return abort(StoreError::NotFound);
            };
            let old: UserRecord = dec(&old)?;
            if orgs.get(org.key())?.is_none() {
                return abort(StoreError::OrgNotFound);
            }
            let mut row = old.clone();
            change(&mut row.memberships)?;
            let was_admin = old.role_in(org) == Some(OrgRole::Admin);
            let is_admin = row.role_in(org) == Some(OrgRole::Admin);
            if was_admin && !is_admin {
                let mut another = false;
                for c in &candidates {
                    if members.get(keys::pair(org.0, *c))?.as_deref() == Some(&[admin][..]) {
                        another = true;
                        break;
                    }
                }
                if !another {
                    return abort(StoreError::LastOrgAdmin);
                }
            }
            // An invalid current org becomes `org` when the user is (now) a member of
            // it, else the first membership.
            if !row.memberships.iter().any(|m| m.org_id == row.org_id) {
                row.org_id = match row.memberships.iter().find(|m| m.org_id == org.0) {
                    Some(m) => m.org_id,
                    None => row.memberships.first().map_or(row.org_id, |m| m.org_id),
                };
            }
            row.updated = at;
            members.remove(&keys::pair(org.0, user.0))?;
            if let Some(m) = row.memberships.iter().find(|m| m.org_id == org.0) {
                members.insert(&keys::pair(org.0, user.0), &[m.role])?;
            }
            count_user(counters, &old, -1)?;
            count_user(counters, &row, 1)?;
            users.insert(&user.key(), enc(&row)?)?;
            pending.record(log)?;
            Ok(row)
        })
        .await
    }

    fn org_members_sync(&self, org: OrgId) -> StoreResult<Vec<(UserRecord, OrgRole)>> {
        let mut out = Vec::new();
        for item in self.org_members.scan_prefix(org.key()) {
            let (k, v) = item?;
            let id = read_u64(k.get(8..));
            let Some(u) = get::<UserRecord>(&self.users, id.to_be_bytes())? else {
                continue;
            };
            let Some(role) = v.first().and_then(|b| OrgRole::from_byte(*b)) else {
                continue;
            };
            if !u.is_service_account {
                out.push((u, role));
            }
        }
        out.sort_by(|a, b| {
            fold(&a.0.login)
                .cmp(&fold(&b.0.login))
                .then(a.0.id.cmp(&b.0.id))
        });
        Ok(out)
    }

    fn search_orgs_sync(
        &self,
        query: &str,
        name: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Vec<OrgRecord>> {
        let q = query.to_lowercase();
        let mut found = Vec::new();
        for item in self.orgs.iter() {
            let (_, v) = item?;
            let org: OrgRecord = codec::decode(&v)?;
            if !org.name.to_lowercase().starts_with(&q) {
                continue;
            }
            if name.is_some_and(|n| n != org.name) {
                continue;
            }
            found.push(org);
        }
        found.sort_by(|a, b| {
            a.name
                .as_bytes()
                .cmp(b.name.as_bytes())
                .then(a.id.cmp(&b.id))
        });
        Ok(found
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect())
    }
}

#[async_trait]
impl UserStore for SledStore {
    async fn create_user(
        &self,
        user: UserRecord,
        membership: NewMembership,
    ) -> StoreResult<UserRecord> {
        let login_key = fold(&user.login);
        let email_key = fold(&user.email);
        self.write_audited(move |tx, pending| {
            let (users, by_login, by_email, by_uid, orgs, members, counters, meta, by_name, log) = (
                &tx[T::Users],
                &tx[T::ByLogin],
                &tx[T::ByEmail],
                &tx[T::ByUid],
                &tx[T::Orgs],
                &tx[T::OrgMembers],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::OrgsByName],
                &tx[T::Audit],
            );
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
                    // A user's own org takes the name only when it is free.
                    if by_name.get(name.as_bytes())?.is_none() {
                        by_name.insert(name.as_bytes(), &org_id.to_be_bytes())?;
                    }
                    bump(counters, counter::ORGS, 1)?;
                    (org_id, *role)
                }
            };
            let mut row = user.clone();
            row.id = id;
            row.org_id = org_id;
            row.memberships = vec![Membership {
                org_id,
                role: role.to_byte(),
            }];
            users.insert(&id.to_be_bytes(), enc(&row)?)?;
            by_login.insert(login_key.as_bytes(), &id.to_be_bytes())?;
            by_email.insert(email_key.as_bytes(), &id.to_be_bytes())?;
            by_uid.insert(row.uid.as_bytes(), &id.to_be_bytes())?;
            members.insert(&keys::pair(org_id, id), &[role.to_byte()])?;
            count_user(counters, &row, 1)?;
            pending.record_created(log, id)?;
            Ok(row)
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<Arc<UserRecord>>> {
        self.memo.users.read_through(self.seen(), id.0, || {
            Ok(get::<UserRecord>(&self.users, id.key())?.map(Arc::new))
        })
    }

    async fn user_by_uid(&self, uid: &str) -> StoreResult<Option<UserRecord>> {
        self.load(&self.by_uid, uid.as_bytes())
    }

    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>> {
        self.load(&self.by_login, fold(login).as_bytes())
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.load(&self.by_email, fold(email).as_bytes())
    }

    async fn set_password(&self, id: UserId, hash: PasswordHash, at: i64) -> StoreResult<()> {
        self.change_user(id, move |row| {
            row.password = Some(hash.clone());
            row.updated = at;
            Ok(true)
        })
        .await
        .map(|_| ())
    }

    async fn upgrade_password(
        &self,
        id: UserId,
        expected: &PasswordHash,
        new: PasswordHash,
    ) -> StoreResult<bool> {
        let expected = expected.clone();
        self.write(move |tx| {
            let users = &tx[T::Users];
            let Some(old) = users.get(id.key())? else {
                return Ok(false);
            };
            let mut row: UserRecord = dec(&old)?;
            if row.password.as_ref() != Some(&expected) {
                return Ok(false);
            }
            row.password = Some(new.clone());
            users.insert(&id.key(), enc(&row)?)?;
            Ok(true)
        })
        .await
    }

    async fn set_disabled(&self, id: UserId, disabled: bool, at: i64) -> StoreResult<UserRecord> {
        self.write_audited(move |tx, pending| {
            let (users, counters, log) = (&tx[T::Users], &tx[T::Counters], &tx[T::Audit]);
            let Some(old) = users.get(id.key())? else {
                return abort(StoreError::NotFound);
            };
            let mut row: UserRecord = dec(&old)?;
            if row.is_disabled == disabled {
                return Ok(row);
            }
            if disabled {
                check_not_last_enabled_admin(counters, &row)?;
            }
            if row.is_admin && !row.is_service_account {
                bump(
                    counters,
                    counter::ENABLED_ADMINS,
                    if disabled { -1 } else { 1 },
                )?;
            }
            row.is_disabled = disabled;
            row.updated = at;
            users.insert(&id.key(), enc(&row)?)?;
            pending.record(log)?;
            Ok(row)
        })
        .await
    }

    async fn update_profile(
        &self,
        id: UserId,
        change: &ProfileChange,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let change = change.clone();
        self.write_audited(move |tx, pending| {
            let (users, by_login, by_email, log) = (
                &tx[T::Users],
                &tx[T::ByLogin],
                &tx[T::ByEmail],
                &tx[T::Audit],
            );
            let Some(old) = users.get(id.key())? else {
                return abort(StoreError::NotFound);
            };
            let mut row: UserRecord = dec(&old)?;
            let old_login = fold(&row.login);
            let old_email = fold(&row.email);
            if let Some(v) = &change.login {
                row.login = v.clone();
            }
            if let Some(v) = &change.email {
                row.email = v.clone();
            }
            if let Some(v) = &change.name {
                row.name = v.clone();
            }
            if let Some(v) = &change.theme {
                row.theme = v.clone();
            }
            if let Some(v) = &change.auth_module {
                row.auth_module = v.clone();
            }
            for (tree, old_v, new_v, what) in [
                (by_login, old_login, fold(&row.login), "login"),
                (by_email, old_email, fold(&row.email), "email"),
            ] {
                if old_v != new_v {
                    if let Some(owner) = tree.get(new_v.as_bytes())? {
                        if owner.as_ref() != id.key() {
                            return abort(StoreError::Conflict(what));
                        }
                    }
                    tree.remove(old_v.as_bytes())?;
                    tree.insert(new_v.as_bytes(), &id.key())?;
                }
            }
            row.updated = at;
            users.insert(&id.key(), enc(&row)?)?;
            pending.record(log)?;
            Ok(row)
        })
        .await
    }

    async fn set_memberships(
        &self,
        id: UserId,
        memberships: &[(OrgId, OrgRole)],
        at: i64,
    ) -> StoreResult<UserRecord> {
        let memberships = memberships.to_vec();
        self.write_audited(move |tx, pending| {
            let (users, orgs, members, counters, log) = (
                &tx[T::Users],
                &tx[T::Orgs],
                &tx[T::OrgMembers],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let Some(old) = users.get(id.key())? else {
                return abort(StoreError::NotFound);
            };
            let old: UserRecord = dec(&old)?;
            for (org, _) in &memberships {
                if orgs.get(org.key())?.is_none() {
                    return abort(StoreError::OrgNotFound);
                }
            }
            let mut row = old.clone();
            row.memberships = memberships
                .iter()
                .map(|(org, role)| Membership {
                    org_id: org.0,
                    role: role.to_byte(),
                })
                .collect();
            if !row.memberships.iter().any(|m| m.org_id == row.org_id) {
                row.org_id = row.memberships.first().map_or(row.org_id, |m| m.org_id);
            }
            row.updated = at;
            for m in &old.memberships {
                members.remove(&keys::pair(m.org_id, old.id))?;
            }
            for m in &row.memberships {
                members.insert(&keys::pair(m.org_id, row.id), &[m.role])?;
            }
            count_user(counters, &old, -1)?;
            count_user(counters, &row, 1)?;
            users.insert(&id.key(), enc(&row)?)?;
            pending.record(log)?;
            Ok(row)
        })
        .await
    }

    async fn set_grafana_admin(&self, id: UserId, admin: bool, at: i64) -> StoreResult<UserRecord> {
        self.write_audited(move |tx, pending| {
            let (users, counters, log) = (&tx[T::Users], &tx[T::Counters], &tx[T::Audit]);
            let Some(old) = users.get(id.key())? else {
                return abort(StoreError::NotFound);
            };
            let mut row: UserRecord = dec(&old)?;
            if row.is_admin == admin {
                return Ok(row);
            }
            if !admin {
                check_not_last_enabled_admin(counters, &row)?;
            }
            row.is_admin = admin;
            row.updated = at;
            users.insert(&id.key(), enc(&row)?)?;
            if !row.is_service_account {
                let delta = if admin { 1 } else { -1 };
                bump(counters, counter::GRAFANA_ADMINS, delta)?;
                if !row.is_disabled {
                    bump(counters, counter::ENABLED_ADMINS, delta)?;
                }
            }
            pending.record(log)?;
            Ok(row)
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.write_audited(move |tx, pending| {
            let (users, by_login, by_email, by_uid, members, counters, log) = (
                &tx[T::Users],
                &tx[T::ByLogin],
                &tx[T::ByEmail],
                &tx[T::ByUid],
                &tx[T::OrgMembers],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let row = remove_user_row(users, by_login, by_email, by_uid, members, counters, id)?;
            if row.is_some() {
                pending.record(log)?;
            }
            Ok(row)
        })
        .await
    }

    async fn search_users(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
        service_accounts: bool,
    ) -> StoreResult<UserPage> {
        let query = query.to_string();
        self.blocking(move |s| s.search_sync(&query, offset, limit, service_accounts))
            .await
    }

    async fn touch_last_seen(&self, id: UserId, at: i64) -> StoreResult<()> {
        let r = self.touch_last_seen_row(id, at);
        self.changed();
        r
    }

    async fn org(&self, id: OrgId) -> StoreResult<Option<OrgRecord>> {
        get(&self.orgs, id.key())
    }

    async fn ensure_org(&self, id: OrgId, name: &str, at: i64) -> StoreResult<()> {
        let name = name.to_owned();
        self.write_audited(move |tx, pending| {
            let (orgs, counters, meta, by_name, log) = (
                &tx[T::Orgs],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::OrgsByName],
                &tx[T::Audit],
            );
            if orgs.get(id.key())?.is_some() {
                return Ok(());
            }
            if by_name.get(name.as_bytes())?.is_none() {
                by_name.insert(name.as_bytes(), &id.key())?;
            }
            let org = OrgRecord {
                id: id.0,
                name: name.to_string(),
                created: at,
                updated: at,
            };
            orgs.insert(&id.key(), enc(&org)?)?;
            let next = read_u64(meta.get("next_org_id")?.as_deref()).max(2);
            meta.insert("next_org_id", &next.max(id.0 + 1).to_be_bytes())?;
            bump(counters, counter::ORGS, 1)?;
            pending.record(log)
        })
        .await
    }

    async fn set_current_org(&self, id: UserId, org: OrgId) -> StoreResult<UserRecord> {
        // The memberships live in the row: the check and the write are one transaction.
        self.change_user(id, move |row| {
            if !row.memberships.iter().any(|m| m.org_id == org.0) {
                return abort(StoreError::NotMember);
            }
            if row.org_id == org.0 {
                return Ok(false);
            }
            row.org_id = org.0;
            Ok(true)
        })
        .await
    }

    async fn create_org(&self, name: &str, at: i64, creator: UserId) -> StoreResult<OrgRecord> {
        let name = name.to_owned();
        self.write_audited(move |tx, pending| {
            let (users, orgs, by_name, members, counters, meta, log) = (
                &tx[T::Users],
                &tx[T::Orgs],
                &tx[T::OrgsByName],
                &tx[T::OrgMembers],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
            if by_name.get(name.as_bytes())?.is_some() {
                return abort(StoreError::Conflict("name"));
            }
            let Some(old) = users.get(creator.key())? else {
                return abort(StoreError::NotFound);
            };
            let old: UserRecord = dec(&old)?;
            let org_id = read_u64(meta.get("next_org_id")?.as_deref()).max(2);
            meta.insert("next_org_id", &(org_id + 1).to_be_bytes())?;
            let org = OrgRecord {
                id: org_id,
                name: name.to_string(),
                created: at,
                updated: at,
            };
            orgs.insert(&org_id.to_be_bytes(), enc(&org)?)?;
            by_name.insert(name.as_bytes(), &org_id.to_be_bytes())?;
            bump(counters, counter::ORGS, 1)?;
            let mut row = old.clone();
            let admin = OrgRole::Admin.to_byte();
            row.memberships.push(Membership {
                org_id,
                role: admin,
            });
            members.insert(&keys::pair(org_id, row.id), &[admin])?;
            count_user(counters, &old, -1)?;
            count_user(counters, &row, 1)?;
            users.insert(&creator.key(), enc(&row)?)?;
            pending.record_created(log, org_id)?;
            Ok(org)
        })
        .await
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<OrgRecord>> {
        let Some(id) = self.orgs_by_name.get(name.as_bytes())? else {
            return Ok(None);
        };
        let org: Option<OrgRecord> = get(&self.orgs, &id)?;
        Ok(org.filter(|o| o.name == name))
    }

    async fn search_orgs(
        &self,
        query: &str,
        name: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Vec<OrgRecord>> {
        let query = query.to_string();
        let name = name.map(str::to_string);
        self.blocking(move |s| s.search_orgs_sync(&query, name.as_deref(), offset, limit))
            .await
    }

    async fn rename_org(&self, id: OrgId, name: &str, at: i64) -> StoreResult<OrgRecord> {
        let name = name.to_owned();
        self.write_audited(move |tx, pending| {
            let (orgs, by_name, log) = (&tx[T::Orgs], &tx[T::OrgsByName], &tx[T::Audit]);
            let Some(old) = orgs.get(id.key())? else {
                return abort(StoreError::NotFound);
            };
            let mut org: OrgRecord = dec(&old)?;
            if let Some(owner) = by_name.get(name.as_bytes())? {
                if owner.as_ref() != id.key() {
                    return abort(StoreError::Conflict("name"));
                }
            }
            if by_name.get(org.name.as_bytes())?.as_deref() == Some(&id.key()[..]) {
                by_name.remove(org.name.as_bytes())?;
            }
            by_name.insert(name.as_bytes(), &id.key())?;
            org.name = name.to_string();
            org.updated = at;
            orgs.insert(&id.key(), enc(&org)?)?;
            pending.record(log)?;
            Ok(org)
        })
        .await
    }

    async fn add_membership(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        self.change_membership(user, org, Vec::new(), at, move |ms| {
            if ms.iter().any(|m| m.org_id == org.0) {
                return abort(StoreError::AlreadyMember);
            }
            ms.push(Membership {
                org_id: org.0,
                role: role.to_byte(),
            });
            Ok(())
        })
        .await
    }

    async fn set_membership_role(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let candidates = self.other_org_admins(org, user)?;
        self.change_membership(user, org, candidates, at, move |ms| {
            let Some(m) = ms.iter_mut().find(|m| m.org_id == org.0) else {
                return abort(StoreError::NotMember);
            };
            m.role = role.to_byte();
            Ok(())
        })
        .await
    }

    async fn remove_membership(
        &self,
        user: UserId,
        org: OrgId,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let candidates = self.other_org_admins(org, user)?;
        self.change_membership(user, org, candidates, at, move |ms| {
            let before = ms.len();
            ms.retain(|m| m.org_id != org.0);
            if ms.len() == before {
                return abort(StoreError::NotMember);
            }
            Ok(())
        })
        .await
    }

    async fn org_members(&self, org: OrgId) -> StoreResult<Vec<(UserRecord, OrgRole)>> {
        self.blocking(move |s| s.org_members_sync(org)).await
    }

    async fn delete_org(&self, org: OrgId, secret_prefixes: &[String]) -> StoreResult<()> {
        self.delete_org_all(org, secret_prefixes).await
    }

    async fn org_address(&self, org: OrgId) -> StoreResult<Option<OrgAddressRecord>> {
        self.org_address_row(org)
    }

    async fn set_org_address(&self, org: OrgId, address: &OrgAddressRecord) -> StoreResult<()> {
        self.set_org_address_row(org, address).await
    }
}

#[async_trait]
impl StatsStore for SledStore {
    async fn counts(&self) -> StoreResult<Counts> {
        self.memo_counts(|| self.counts_sync())
    }

    async fn activity(&self, windows: ActivityWindows) -> StoreResult<Activity> {
        self.blocking(move |s| s.activity_sync(windows)).await
    }

    async fn record_sign_in(&self, at: i64, ok: bool) -> StoreResult<()> {
        self.record_sign_in_row(at, ok)
    }

    async fn activity_series(
        &self,
        hours_from: i64,
        days_from: i64,
    ) -> StoreResult<Vec<SeriesBucket>> {
        self.activity_series_rows(hours_from, days_from)
    }

    async fn prune_activity_series(&self, hours_before: i64, days_before: i64) -> StoreResult<()> {
        self.prune_activity_series_rows(hours_before, days_before)
    }
}

#[async_trait]
impl MetaStore for SledStore {
    async fn get_meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.meta.get(key)?.map(|v| v.to_vec()))
    }

    async fn init_meta(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write_audited(move |tx, pending| {
            let (meta, log) = (&tx[T::Meta], &tx[T::Audit]);
            if let Some(current) = meta.get(key.as_bytes())? {
                return Ok(current.to_vec());
            }
            meta.insert(key.as_bytes(), value.as_slice())?;
            pending.record(log)?;
            Ok(value.to_vec())
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.write_audited(move |tx, pending| {
            let (meta, log) = (&tx[T::Meta], &tx[T::Audit]);
            meta.insert(key.as_bytes(), value.as_slice())?;
            pending.record(log)
        })
        .await
    }
}

impl SledStore {
    /// Counts the enabled Grafana Admins once, for a data folder written before the
    /// counter existed (a scan at open; later writes keep it).
    pub(super) fn count_enabled_admins(&self) -> StoreResult<()> {
        if self.counters.get(counter::ENABLED_ADMINS)?.is_some() {
            return Ok(());
        }
        let mut n = 0u64;
        for item in self.users.iter() {
            let (_, v) = item?;
            let row: UserRecord = codec::decode(&v)?;
            if enabled_admin(&row) {
                n += 1;
            }
        }
        self.counters
            .compare_and_swap(
                counter::ENABLED_ADMINS,
                None as Option<&[u8]>,
                Some(&n.to_be_bytes()[..]),
            )?
            .ok();
        Ok(())
    }
}

/// Meta key: the last-seen index covers every user (backend bookkeeping, not exported).
pub(super) const LAST_SEEN_INDEXED: &str = "index.users_by_seen";

/// The first 8 bytes of a last-seen index key: the time, sign bit flipped, so that keys
/// sort by time.
fn seen_prefix(at: i64) -> [u8; 8] {
    ((at as u64) ^ (1 << 63)).to_be_bytes()
}

/// A last-seen index key: the time, then the user id.
pub(super) fn seen_key(at: i64, id: UserId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&seen_prefix(at));
    k[8..].copy_from_slice(&id.key());
    k
}

fn parse_seen_key(k: &[u8]) -> Option<(i64, UserId)> {
    let at: [u8; 8] = k.get(..8)?.try_into().ok()?;
    Some((
        (u64::from_be_bytes(at) ^ (1 << 63)) as i64,
        UserId::from_key(k.get(8..)?)?,
    ))
}
