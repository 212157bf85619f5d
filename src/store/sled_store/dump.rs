//! Export and import of every record (`Store::export`/`import`). Export reads each tree;
//! import writes the rows with their index trees, the sequences after the highest ids and
//! the counters recomputed from the rows, in one transaction. (With `replace`, emptying the
//! trees comes first and is not part of that transaction: sled transactions cannot scan.)

use std::collections::HashMap;

use sled::Transactional;

use super::dashboards::panel_key;
use super::{
    activity, api_keys, audit, counter, datasources, keys, notifiers, roles, secrets, settings,
    users,
};
use super::{all, enc, get, license, migrate, read_u64, tx_err, SledStore};
use crate::store::audit::AuditChain;
use crate::store::{Dump, QuotaRecord, SealedSecret, StoreError, StoreResult};

/// Meta keys that are the backend's own bookkeeping, not facts about the install.
fn internal_meta(key: &str) -> bool {
    key.starts_with("next_")
        || key.starts_with("seq.")
        || key == "schema_version"
        || key == super::users::LAST_SEEN_INDEXED
        || key == secrets::ACTIVE_DEK
        || key == secrets::REENCRYPT_CURSOR
}

impl SledStore {
    pub(crate) fn export_sync(&self) -> StoreResult<Dump> {
        let (audit_events, audit_chain) = self.audit_events_all()?;
        let mut meta = Vec::new();
        for item in self.meta.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            if !internal_meta(&key) {
                meta.push((key, v.to_vec()));
            }
        }
        let mut secrets_out = Vec::new();
        for item in self.secrets.iter() {
            let (k, v) = item?;
            let dek_id = self
                .secret_deks
                .get(&k)?
                .and_then(|d| d.get(..4).and_then(|b| b.try_into().ok()))
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::Codec("a secret without its data key id".into()))?;
            secrets_out.push((
                String::from_utf8_lossy(&k).into_owned(),
                SealedSecret {
                    dek_id,
                    ciphertext: v.to_vec(),
                },
            ));
        }
        Ok(Dump {
            orgs: all(&self.orgs)?,
            org_addresses: self
                .org_addresses
                .iter()
                .map(|item| {
                    let (k, v) = item?;
                    Ok((read_u64(Some(&k)), crate::store::codec::decode(&v)?))
                })
                .collect::<StoreResult<_>>()?,
            users: all(&self.users)?,
            meta,
            sessions: all(&self.sessions)?,
            api_keys: all(&self.api_keys)?,
            deks: all(&self.deks)?,
            active_dek: self
                .meta
                .get(secrets::ACTIVE_DEK)?
                .map(|v| read_u64(Some(&v)) as u32),
            secrets: secrets_out,
            reencrypt_cursor: self
                .meta
                .get(secrets::REENCRYPT_CURSOR)?
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
            datasources: all(&self.datasources)?,
            settings: all(&self.settings)?,
            license: get(&self.license, license::TOKEN)?,
            renewal: get(&self.license, license::RENEWAL)?,
            folders: all(&self.folders)?,
            dashboards: all(&self.dashboards)?,
            alerts: all(&self.alerts)?,
            plugin_settings: all(&self.plugin_settings)?,
            notifiers: all(&self.notifiers)?,
            roles: all(&self.roles)?,
            provisioning_runs: all(&self.provisioning_runs)?,
            quotas: all::<QuotaRecord>(&self.quotas)?
                .into_iter()
                .filter_map(|q| match self.quota_owner_exists(q.owner()) {
                    Ok(true) => Some(Ok(q)),
                    Ok(false) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<StoreResult<_>>()?,
            activity_series: self
                .activity_series
                .iter()
                .map(|item| {
                    let (k, v) = item?;
                    activity::bucket(&k, &v)
                })
                .collect::<StoreResult<_>>()?,
            audit_events,
            audit_chain,
        })
    }

    fn is_empty(&self) -> StoreResult<bool> {
        // An audit log counts: importing another one on top would mix two chains.
        Ok(self.users.is_empty()
            && self.orgs.is_empty()
            && self.deks.is_empty()
            && self.audit.is_empty())
    }

    pub(crate) fn import_sync(&self, d: &Dump, replace: bool) -> StoreResult<()> {
        let trees = self.all_trees();
        if replace {
            for t in &trees {
                t.clear()?;
            }
        } else if !self.is_empty()? {
            return Err(StoreError::Conflict("store"));
        }
        // Counters, recomputed from the rows.
        let mut counts: HashMap<String, i64> = HashMap::new();
        let mut bump = |name: &str, by: i64| *counts.entry(name.to_string()).or_default() += by;
        for u in &d.users {
            if u.is_service_account {
                bump(counter::SERVICE_ACCOUNTS, 1);
            } else {
                bump(counter::USERS, 1);
                if u.is_admin {
                    bump(counter::GRAFANA_ADMINS, 1);
                    if !u.is_disabled {
                        bump(counter::ENABLED_ADMINS, 1);
                    }
                }
                bump(counter::for_role(u.highest_role()), 1);
            }
        }
        bump(counter::ORGS, d.orgs.len() as i64);
        bump(
            counter::SESSIONS,
            d.sessions.iter().filter(|s| s.revoked_ms.is_none()).count() as i64,
        );
        bump(counter::API_KEYS, d.api_keys.len() as i64);
        bump(counter::DATASOURCES, d.datasources.len() as i64);
        bump(counter::DASHBOARDS, d.dashboards.len() as i64);
        bump(counter::FOLDERS, d.folders.len() as i64);
        bump(
            counter::TAGS,
            d.dashboards.iter().map(|x| x.tags.len() as i64).sum(),
        );
        bump(counter::ALERTS, d.alerts.len() as i64);
        for (_, s) in &d.secrets {
            bump(&counter::dek_refs(s.dek_id), 1);
        }
        let max = |ids: &mut dyn Iterator<Item = u64>| ids.max().unwrap_or(0);
        let sequences: Vec<(&str, u64)> = vec![
            // A role assignment may name a deleted user: a new user must not inherit it.
            (
                "next_user_id",
                max(&mut d
                    .users
                    .iter()
                    .map(|u| u.id)
                    .chain(d.roles.iter().flat_map(|r| r.user_ids.iter().copied())))
                    + 1,
            ),
            (
                "next_org_id",
                (max(&mut d.orgs.iter().map(|o| o.id)) + 1).max(2),
            ),
            (
                "next_session_id",
                max(&mut d.sessions.iter().map(|s| s.id)) + 1,
            ),
            (
                "next_api_key_id",
                max(&mut d.api_keys.iter().map(|k| k.id)) + 1,
            ),
            (
                "next_dek_id",
                max(&mut d.deks.iter().map(|k| u64::from(k.id))) + 1,
            ),
            (
                "next_datasource_id",
                max(&mut d.datasources.iter().map(|x| x.id)) + 1,
            ),
            ("seq.folders", max(&mut d.folders.iter().map(|x| x.id)) + 1),
            (
                "seq.dashboards",
                max(&mut d.dashboards.iter().map(|x| x.id)) + 1,
            ),
            ("seq.alerts", max(&mut d.alerts.iter().map(|x| x.id)) + 1),
            (
                "seq.notifiers",
                max(&mut d.notifiers.iter().map(|x| x.id)) + 1,
            ),
        ];
        let tree_refs: Vec<&sled::Tree> = trees.iter().collect();
        let idx = |t: &sled::Tree| {
            trees
                .iter()
                .position(|x| x.name() == t.name())
                .unwrap_or(usize::MAX)
        };
        let i_addresses = idx(&self.org_addresses);
        let (i_users, i_login, i_email, i_uid, i_orgs, i_members, i_counters, i_meta) = (
            idx(&self.users),
            idx(&self.by_login),
            idx(&self.by_email),
            idx(&self.by_uid),
            idx(&self.orgs),
            idx(&self.org_members),
            idx(&self.counters),
            idx(&self.meta),
        );
        let (i_sessions, i_s_hash, i_s_user, i_keys, i_k_hash, i_k_name) = (
            idx(&self.sessions),
            idx(&self.sessions_by_hash),
            idx(&self.sessions_by_user),
            idx(&self.api_keys),
            idx(&self.api_keys_by_hash),
            idx(&self.api_keys_by_name),
        );
        let (i_deks, i_secrets, i_secret_deks, i_ds, i_ds_uid, i_ds_name, i_settings, i_license) = (
            idx(&self.deks),
            idx(&self.secrets),
            idx(&self.secret_deks),
            idx(&self.datasources),
            idx(&self.ds_by_uid),
            idx(&self.ds_by_name),
            idx(&self.settings),
            idx(&self.license),
        );
        let (
            i_folders,
            i_dash,
            i_alerts,
            i_panel,
            i_plugins,
            i_notifiers,
            i_roles,
            i_role_names,
            i_runs,
            i_quotas,
            i_series,
            i_audit,
        ) = (
            idx(&self.folders),
            idx(&self.dashboards),
            idx(&self.alerts),
            idx(&self.alerts_by_panel),
            idx(&self.plugin_settings),
            idx(&self.notifiers),
            idx(&self.roles),
            idx(&self.roles_by_name),
            idx(&self.provisioning_runs),
            idx(&self.quotas),
            idx(&self.activity_series),
            idx(&self.audit),
        );
        tree_refs
            .as_slice()
            .transaction(|t| {
                for o in &d.orgs {
                    t[i_orgs].insert(&keys::id(o.id), enc(o)?)?;
                }
                for (org, a) in &d.org_addresses {
                    t[i_addresses].insert(&keys::id(*org), enc(a)?)?;
                }
                for u in &d.users {
                    let id = keys::id(u.id);
                    t[i_users].insert(&id, enc(u)?)?;
                    t[i_login].insert(users::fold(&u.login).as_bytes(), &id)?;
                    t[i_email].insert(users::fold(&u.email).as_bytes(), &id)?;
                    t[i_uid].insert(u.uid.as_bytes(), &id)?;
                    for m in &u.memberships {
                        t[i_members].insert(&keys::pair(m.org_id, u.id), &[m.role])?;
                    }
                }
                for (k, v) in &d.meta {
                    t[i_meta].insert(k.as_bytes(), v.as_slice())?;
                }
                for (k, v) in &sequences {
                    t[i_meta].insert(k.as_bytes(), &v.to_be_bytes())?;
                }
                t[i_meta].insert("schema_version", &migrate::SCHEMA_VERSION.to_be_bytes())?;
                if let Some(id) = d.active_dek {
                    t[i_meta].insert(secrets::ACTIVE_DEK, &u64::from(id).to_be_bytes())?;
                }
                if let Some(c) = &d.reencrypt_cursor {
                    t[i_meta].insert(secrets::REENCRYPT_CURSOR, c.as_bytes())?;
                }
                for s in &d.sessions {
                    let id = keys::id(s.id);
                    t[i_sessions].insert(&id, enc(s)?)?;
                    t[i_s_hash].insert(&s.token_hash, &id)?;
                    if let Some(prev) = s.prev_token_hash {
                        t[i_s_hash].insert(&prev, &id)?;
                    }
                    t[i_s_user].insert(&keys::pair(s.user_id, s.id), &[])?;
                }
                for k in &d.api_keys {
                    let id = keys::id(k.id);
                    t[i_keys].insert(&id, enc(k)?)?;
                    t[i_k_hash].insert(&k.hash, &id)?;
                    t[i_k_name].insert(
                        api_keys::name_key(k.org_id, k.service_account_id, &k.name),
                        &id,
                    )?;
                }
                for k in &d.deks {
                    t[i_deks].insert(&secrets::dek_key(k.id), enc(k)?)?;
                }
                for (key, s) in &d.secrets {
                    t[i_secrets].insert(key.as_bytes(), s.ciphertext.as_slice())?;
                    t[i_secret_deks].insert(key.as_bytes(), &secrets::dek_key(s.dek_id))?;
                }
                for ds in &d.datasources {
                    let id = keys::id(ds.id);
                    t[i_ds].insert(&id, enc(ds)?)?;
                    t[i_ds_uid].insert(datasources::scoped(ds.org_id, &ds.uid), &id)?;
                    t[i_ds_name].insert(datasources::name_key(ds.org_id, &ds.name), &id)?;
                }
                for o in &d.settings {
                    t[i_settings].insert(settings::key(&o.section, &o.key).as_bytes(), enc(o)?)?;
                }
                if let Some(l) = &d.license {
                    t[i_license].insert(license::TOKEN, enc(l)?)?;
                }
                if let Some(r) = &d.renewal {
                    t[i_license].insert(license::RENEWAL, enc(r)?)?;
                }
                for f in &d.folders {
                    t[i_folders].insert(keys::org_named(f.org_id, &f.uid), enc(f)?)?;
                }
                for x in &d.dashboards {
                    t[i_dash].insert(keys::org_named(x.org_id, &x.uid), enc(x)?)?;
                }
                for a in &d.alerts {
                    t[i_alerts].insert(&keys::pair(a.org_id, a.id), enc(a)?)?;
                    t[i_panel].insert(
                        panel_key(a.org_id, &a.dashboard_uid, a.panel_id),
                        &a.id.to_be_bytes(),
                    )?;
                }
                for p in &d.plugin_settings {
                    t[i_plugins].insert(
                        notifiers::org_key(p.org_id, &p.plugin_id).as_bytes(),
                        enc(p)?,
                    )?;
                }
                for n in &d.notifiers {
                    t[i_notifiers]
                        .insert(notifiers::org_key(n.org_id, &n.uid).as_bytes(), enc(n)?)?;
                }
                for r in &d.roles {
                    t[i_roles].insert(keys::org_named(r.org_id, &r.uid), enc(r)?)?;
                    t[i_role_names].insert(roles::name_key(r.org_id, &r.name), r.uid.as_bytes())?;
                }
                for run in &d.provisioning_runs {
                    t[i_runs].insert(run.kind.as_bytes(), enc(run)?)?;
                }
                for q in &d.quotas {
                    t[i_quotas].insert(super::quotas::quota_key(q), enc(q)?)?;
                }
                for b in &d.activity_series {
                    t[i_series].insert(
                        &activity::key(b.span, b.start),
                        &activity::counts_bytes(&b.counts),
                    )?;
                }
                for e in &d.audit_events {
                    t[i_audit].insert(&audit::event_key(e.seq), enc(e)?)?;
                }
                if d.audit_chain != AuditChain::default() {
                    t[i_audit].insert(audit::CHAIN, enc(&d.audit_chain)?)?;
                }
                for (name, n) in &counts {
                    t[i_counters].insert(name.as_bytes(), &(*n.max(&0) as u64).to_be_bytes())?;
                }
                Ok(())
            })
            .map_err(tx_err)?;
        self.index_org_names()?;
        self.index_last_seen(true)?;
        self.db.flush()?;
        Ok(())
    }

    fn all_trees(&self) -> Vec<sled::Tree> {
        self.trees.to_vec()
    }
}
