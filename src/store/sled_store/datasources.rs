//! Datasources in sled: `datasources` (id -> row), `datasources_by_uid` (org | uid -> id),
//! `datasources_by_name` (org | lower-cased name -> id); secrets in the same transaction.

use async_trait::async_trait;

use super::secrets::apply_secret_writes;
use super::writer::T;
use super::{abort, bump, counter, dec, enc, get, next_id, read_u64, SledStore};
use crate::domain::OrgId;
use crate::store::{DataSourceRecord, DataSourceStore, SecretWrite, StoreError, StoreResult};

pub(crate) fn scoped(org: u64, value: &str) -> Vec<u8> {
    let mut k = org.to_be_bytes().to_vec();
    k.extend_from_slice(value.as_bytes());
    k
}

pub(crate) fn name_key(org: u64, name: &str) -> Vec<u8> {
    scoped(org, &name.to_lowercase())
}

impl SledStore {
    fn ds_via(&self, tree: &sled::Tree, key: &[u8]) -> StoreResult<Option<DataSourceRecord>> {
        match tree.get(key)? {
            Some(id) => get(&self.datasources, read_u64(Some(&id)).to_be_bytes()),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl DataSourceStore for SledStore {
    async fn create_datasource(
        &self,
        ds: DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> StoreResult<DataSourceRecord> {
        let uid_key = scoped(ds.org_id, &ds.uid);
        let name_k = name_key(ds.org_id, &ds.name);
        let secrets = secrets.to_owned();
        self.write_audited(move |tx, pending| {
            let (rows, by_uid, by_name, secrets_t, secret_deks, counters, meta, log) = (
                &tx[T::Datasources],
                &tx[T::DsByUid],
                &tx[T::DsByName],
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Meta],
                &tx[T::Audit],
            );
            let secrets = &*secrets;
            if by_name.get(name_k.as_slice())?.is_some() {
                return abort(StoreError::Conflict("name"));
            }
            if by_uid.get(uid_key.as_slice())?.is_some() {
                return abort(StoreError::Conflict("uid"));
            }
            let id = next_id(meta, "next_datasource_id")?;
            let mut row = ds.clone();
            row.id = id;
            row.version = 1;
            rows.insert(&id.to_be_bytes(), enc(&row)?)?;
            by_uid.insert(uid_key.as_slice(), &id.to_be_bytes())?;
            by_name.insert(name_k.as_slice(), &id.to_be_bytes())?;
            apply_secret_writes(secrets_t, secret_deks, counters, secrets)?;
            bump(counters, counter::DATASOURCES, 1)?;
            pending.record_created(log, id)?;
            Ok(row)
        })
        .await
    }

    async fn update_datasource(
        &self,
        ds: &DataSourceRecord,
        expected_version: u64,
        secrets: &[SecretWrite],
    ) -> StoreResult<DataSourceRecord> {
        let id = ds.id.to_be_bytes();
        let (ds, secrets) = (ds.to_owned(), secrets.to_owned());
        self.write_audited(move |tx, pending| {
            let (rows, by_uid, by_name, secrets_t, secret_deks, counters, log) = (
                &tx[T::Datasources],
                &tx[T::DsByUid],
                &tx[T::DsByName],
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let (ds, secrets) = (&ds, &*secrets);
            let Some(old) = rows.get(id)? else {
                return abort(StoreError::NotFound);
            };
            let old: DataSourceRecord = dec(&old)?;
            if old.org_id != ds.org_id {
                return abort(StoreError::NotFound);
            }
            if old.version != expected_version {
                return abort(StoreError::Stale("version"));
            }
            for (tree, old_k, new_k, what) in [
                (
                    by_name,
                    name_key(old.org_id, &old.name),
                    name_key(ds.org_id, &ds.name),
                    "name",
                ),
                (
                    by_uid,
                    scoped(old.org_id, &old.uid),
                    scoped(ds.org_id, &ds.uid),
                    "uid",
                ),
            ] {
                if old_k != new_k {
                    if let Some(owner) = tree.get(new_k.as_slice())? {
                        if owner.as_ref() != id {
                            return abort(StoreError::Conflict(what));
                        }
                    }
                    tree.remove(old_k.as_slice())?;
                    tree.insert(new_k.as_slice(), &id)?;
                }
            }
            let mut row = ds.clone();
            row.version = old.version + 1;
            row.created = old.created;
            rows.insert(&id, enc(&row)?)?;
            apply_secret_writes(secrets_t, secret_deks, counters, secrets)?;
            pending.record(log)?;
            Ok(row)
        })
        .await
    }

    async fn delete_datasource(
        &self,
        org: OrgId,
        id: u64,
        secrets: &[SecretWrite],
    ) -> StoreResult<Option<DataSourceRecord>> {
        let secrets = secrets.to_owned();
        self.write_audited(move |tx, pending| {
            let (rows, by_uid, by_name, secrets_t, secret_deks, counters, log) = (
                &tx[T::Datasources],
                &tx[T::DsByUid],
                &tx[T::DsByName],
                &tx[T::Secrets],
                &tx[T::SecretDeks],
                &tx[T::Counters],
                &tx[T::Audit],
            );
            let secrets = &*secrets;
            let Some(old) = rows.get(id.to_be_bytes())? else {
                return Ok(None);
            };
            let old: DataSourceRecord = dec(&old)?;
            if old.org_id != org.0 {
                return Ok(None);
            }
            rows.remove(&id.to_be_bytes())?;
            by_uid.remove(scoped(old.org_id, &old.uid))?;
            by_name.remove(name_key(old.org_id, &old.name))?;
            apply_secret_writes(secrets_t, secret_deks, counters, secrets)?;
            bump(counters, counter::DATASOURCES, -1)?;
            pending.record(log)?;
            Ok(Some(old))
        })
        .await
    }

    async fn datasource(&self, org: OrgId, id: u64) -> StoreResult<Option<DataSourceRecord>> {
        Ok(
            get::<DataSourceRecord>(&self.datasources, id.to_be_bytes())?
                .filter(|ds| ds.org_id == org.0),
        )
    }

    async fn datasource_by_uid(
        &self,
        org: OrgId,
        uid: &str,
    ) -> StoreResult<Option<DataSourceRecord>> {
        self.ds_via(&self.ds_by_uid, &scoped(org.0, uid))
    }

    async fn datasource_by_name(
        &self,
        org: OrgId,
        name: &str,
    ) -> StoreResult<Option<DataSourceRecord>> {
        self.ds_via(&self.ds_by_name, &name_key(org.0, name))
    }

    async fn datasources(&self, org: OrgId) -> StoreResult<Vec<DataSourceRecord>> {
        let mut out = Vec::new();
        for item in self.ds_by_name.scan_prefix(org.key()) {
            let (_, id) = item?;
            if let Some(ds) =
                get::<DataSourceRecord>(&self.datasources, read_u64(Some(&id)).to_be_bytes())?
            {
                out.push(ds);
            }
        }
        Ok(out)
    }
}
