//! Deleting an org in sled, and org addresses (`org_addresses`: org id -> address).
//!
//! sled transactions cannot iterate, so the delete scans each kind of row first and then
//! removes it in one transaction per kind, through the same code paths as the single-row
//! deletes (indexes, counters and DEK reference counts stay consistent); the org row goes
//! last, so a delete interrupted half-way can be run again and finishes the job.

use sled::Transactional;

use super::audit::{quietly, Pending};
use super::secrets::apply_secret_writes;
use super::users::count_user;
use super::writer::T;
use super::{abort, bump, counter, dec, enc, get, keys, notifiers, tx_err, SledStore};
use crate::domain::{OrgId, UserId};
use crate::store::{
    ApiKeyStore, DashboardBatch, DashboardStore, DataSourceStore, NotifierStore, OrgAddressRecord,
    OrgRecord, RoleStore, SecretWrite, StoreError, StoreResult, UserRecord,
};

impl SledStore {
    pub(crate) async fn delete_org_all(
        &self,
        org: OrgId,
        secret_prefixes: &[String],
    ) -> StoreResult<()> {
        // Each step below takes the write gate itself (it is not re-entrant). The steps
        // record no audit event: the removal of the org row does, once everything is gone.
        if get::<OrgRecord>(&self.orgs, org.key())?.is_none() {
            return Err(StoreError::NotFound);
        }
        quietly(self.delete_org_owned(org, secret_prefixes)).await?;
        let _paused = self.write_gate().await;
        let r = self.delete_org_rows(org);
        self.durable(r).await
    }

    /// Everything the org owns but its folders, plugin settings and memberships.
    async fn delete_org_owned(&self, org: OrgId, secret_prefixes: &[String]) -> StoreResult<()> {
        for ds in self.datasources(org).await? {
            self.delete_datasource(org, ds.id, &[]).await?;
        }
        self.delete_secrets_with_prefixes(secret_prefixes).await?;
        for key in self.api_keys(org, None).await? {
            self.delete_api_key(key.id).await?;
        }
        let accounts = self
            .blocking(move |s| {
                Ok(super::all::<UserRecord>(&s.users)?
                    .into_iter()
                    .filter(|u| u.is_service_account && u.org_id == org.0)
                    .map(|u| u.user_id())
                    .collect::<Vec<_>>())
            })
            .await?;
        for sa in &accounts {
            self.delete_service_account(*sa).await?;
        }
        let dashboards = self.dashboards(org).await?;
        self.apply_dashboards(&DashboardBatch {
            folders: Vec::new(),
            upserts: Vec::new(),
            deletes: dashboards.iter().map(|d| (org.0, d.uid.clone())).collect(),
        })
        .await?;
        let notifiers: Vec<(OrgId, String)> = self
            .notifiers(org)
            .await?
            .into_iter()
            .map(|n| (org, n.uid))
            .collect();
        self.apply_notifiers(&[], &notifiers, &[]).await?;
        let roles: Vec<(OrgId, String)> = self
            .roles()
            .await?
            .into_iter()
            .filter(|r| r.org_id == org.0)
            .map(|r| (org, r.uid))
            .collect();
        if !roles.is_empty() {
            self.apply_roles(&[], &roles).await?;
        }
        Ok(())
    }

    /// Deletes every secret under the prefixes, with their DEK references.
    async fn delete_secrets_with_prefixes(&self, prefixes: &[String]) -> StoreResult<()> {
        let _paused = self.write_gate().await;
        let mut writes = Vec::new();
        for p in prefixes {
            for item in self.secrets.scan_prefix(p.as_bytes()) {
                let (k, _) = item?;
                writes.push(SecretWrite {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    value: None,
                });
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let r = (&self.secrets, &self.secret_deks, &self.counters)
            .transaction(|(secrets, secret_deks, counters)| {
                apply_secret_writes(secrets, secret_deks, counters, &writes)
            })
            .map_err(tx_err);
        self.durable(r).await
    }

    /// Folders, plugin settings, memberships (one transaction per member: its current org
    /// moves to its first remaining membership), then the org row, its name and address,
    /// with the request's audit event.
    fn delete_org_rows(&self, org: OrgId) -> StoreResult<()> {
        let pending = Pending::take();
        let folders: Vec<sled::IVec> = self
            .folders
            .scan_prefix(org.key())
            .keys()
            .collect::<Result<_, _>>()?;
        let plugins: Vec<sled::IVec> = self
            .plugin_settings
            .scan_prefix(notifiers::org_key(org.0, "").as_bytes())
            .keys()
            .collect::<Result<_, _>>()?;
        (&self.folders, &self.plugin_settings, &self.counters)
            .transaction(|(f, p, counters)| {
                for k in &folders {
                    if f.remove(k)?.is_some() {
                        bump(counters, counter::FOLDERS, -1)?;
                    }
                }
                for k in &plugins {
                    p.remove(k)?;
                }
                Ok(())
            })
            .map_err(tx_err)?;
        let members: Vec<UserId> = self
            .org_members
            .scan_prefix(org.key())
            .keys()
            .map(|k| k.map(|k| UserId(keys::read_u64(k.get(8..)))))
            .collect::<Result<_, _>>()?;
        for user in members {
            self.leave_deleted_org(user, org)?;
        }
        let r = (
            &self.orgs,
            &self.orgs_by_name,
            &self.org_addresses,
            &self.counters,
            &self.audit,
        )
            .transaction(|(orgs, by_name, addresses, counters, log)| {
                let Some(old) = orgs.remove(&org.key())? else {
                    return abort(StoreError::NotFound);
                };
                let old: OrgRecord = dec(&old)?;
                if by_name.get(old.name.as_bytes())?.as_deref() == Some(&org.key()[..]) {
                    by_name.remove(old.name.as_bytes())?;
                }
                addresses.remove(&org.key())?;
                bump(counters, counter::ORGS, -1)?;
                pending.record(log)
            })
            .map_err(tx_err);
        pending.settle(&self.audit, r)
    }

    /// Removes one membership of a deleted org (no last-admin rule: the org goes).
    fn leave_deleted_org(&self, user: UserId, org: OrgId) -> StoreResult<()> {
        (&self.users, &self.org_members, &self.counters)
            .transaction(|(users, members, counters)| {
                members.remove(&keys::pair(org.0, user.0))?;
                let Some(old) = users.get(user.key())? else {
                    return Ok(());
                };
                let old: UserRecord = dec(&old)?;
                let mut row = old.clone();
                row.memberships.retain(|m| m.org_id != org.0);
                if row.org_id == org.0 {
                    // None left: the current org keeps pointing at the deleted one.
                    row.org_id = row.memberships.first().map_or(org.0, |m| m.org_id);
                }
                count_user(counters, &old, -1)?;
                count_user(counters, &row, 1)?;
                users.insert(&user.key(), enc(&row)?)?;
                Ok(())
            })
            .map_err(tx_err)
    }

    pub(crate) async fn set_org_address_row(
        &self,
        org: OrgId,
        address: &OrgAddressRecord,
    ) -> StoreResult<()> {
        let address = address.clone();
        self.write_audited(move |tx, pending| {
            let (orgs, addresses, log) = (&tx[T::Orgs], &tx[T::OrgAddresses], &tx[T::Audit]);
            let address = &address;
            if orgs.get(org.key())?.is_none() {
                return abort(StoreError::OrgNotFound);
            }
            addresses.insert(&org.key(), enc(address)?)?;
            pending.record(log)
        })
        .await
    }

    pub(crate) fn org_address_row(&self, org: OrgId) -> StoreResult<Option<OrgAddressRecord>> {
        get(&self.org_addresses, org.key())
    }
}
