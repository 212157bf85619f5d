//! Datasources in sled: `datasources` (id -> row), `datasources_by_uid` (org | uid -> id),
//! `datasources_by_name` (org | lower-cased name -> id); secrets in the same transaction.

use sled::Transactional;

use super::secrets::apply_secret_writes;
use super::{abort, bump, dec, enc, next_id, read_u64, tx_err, SledStore};
use crate::domain::OrgId;
use crate::store::{codec, counter, DataSourceRecord, DataSourceStore, SecretWrite, StoreError};

fn scoped(org: u64, value: &str) -> Vec<u8> {
    let mut k = org.to_be_bytes().to_vec();
    k.extend_from_slice(value.as_bytes());
    k
}

fn name_key(org: u64, name: &str) -> Vec<u8> {
    scoped(org, &name.to_lowercase())
}

impl SledStore {
    fn ds_via(
        &self,
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<DataSourceRecord>, StoreError> {
        match tree.get(key)? {
            Some(id) => self.datasource(read_u64(Some(&id))),
            None => Ok(None),
        }
    }
}

impl DataSourceStore for SledStore {
    fn create_datasource(
        &self,
        ds: DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> Result<DataSourceRecord, StoreError> {
        let uid_key = scoped(ds.org_id, &ds.uid);
        let name_k = name_key(ds.org_id, &ds.name);
        (
            &self.datasources,
            &self.ds_by_uid,
            &self.ds_by_name,
            &self.secrets,
            &self.counters,
            &self.meta,
        )
            .transaction(|(rows, by_uid, by_name, secrets_t, counters, meta)| {
                if by_name.get(name_k.as_slice())?.is_some() {
                    return abort(StoreError::Conflict("name"));
                }
                if by_uid.get(uid_key.as_slice())?.is_some() {
                    return abort(StoreError::Conflict("uid"));
                }
                let id = next_id(meta, "next_datasource_id")?;
                let mut row = ds.clone();
                row.id = id;
                rows.insert(&id.to_be_bytes(), enc(&row)?)?;
                by_uid.insert(uid_key.as_slice(), &id.to_be_bytes())?;
                by_name.insert(name_k.as_slice(), &id.to_be_bytes())?;
                apply_secret_writes(secrets_t, counters, secrets)?;
                bump(counters, counter::DATASOURCES, 1)?;
                Ok(row)
            })
            .map_err(tx_err)
    }

    fn update_datasource(
        &self,
        ds: &DataSourceRecord,
        secrets: &[SecretWrite],
    ) -> Result<(), StoreError> {
        let id = ds.id.to_be_bytes();
        (
            &self.datasources,
            &self.ds_by_uid,
            &self.ds_by_name,
            &self.secrets,
            &self.counters,
        )
            .transaction(|(rows, by_uid, by_name, secrets_t, counters)| {
                let Some(old) = rows.get(id)? else {
                    return abort(StoreError::NotFound);
                };
                let old: DataSourceRecord = dec(&old)?;
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
                rows.insert(&id, enc(ds)?)?;
                apply_secret_writes(secrets_t, counters, secrets)
            })
            .map_err(tx_err)
    }

    fn delete_datasource(
        &self,
        id: u64,
        secrets: &[SecretWrite],
    ) -> Result<Option<DataSourceRecord>, StoreError> {
        (
            &self.datasources,
            &self.ds_by_uid,
            &self.ds_by_name,
            &self.secrets,
            &self.counters,
        )
            .transaction(|(rows, by_uid, by_name, secrets_t, counters)| {
                let Some(old) = rows.remove(&id.to_be_bytes())? else {
                    return Ok(None);
                };
                let old: DataSourceRecord = dec(&old)?;
                by_uid.remove(scoped(old.org_id, &old.uid))?;
                by_name.remove(name_key(old.org_id, &old.name))?;
                apply_secret_writes(secrets_t, counters, secrets)?;
                bump(counters, counter::DATASOURCES, -1)?;
                Ok(Some(old))
            })
            .map_err(tx_err)
    }

    fn datasource(&self, id: u64) -> Result<Option<DataSourceRecord>, StoreError> {
        match self.datasources.get(id.to_be_bytes())? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    fn datasource_by_uid(
        &self,
        org: OrgId,
        uid: &str,
    ) -> Result<Option<DataSourceRecord>, StoreError> {
        self.ds_via(&self.ds_by_uid, &scoped(org.0, uid))
    }

    fn datasource_by_name(
        &self,
        org: OrgId,
        name: &str,
    ) -> Result<Option<DataSourceRecord>, StoreError> {
        self.ds_via(&self.ds_by_name, &name_key(org.0, name))
    }

    fn datasources(&self, org: OrgId) -> Result<Vec<DataSourceRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.ds_by_name.scan_prefix(org.key()) {
            let (_, id) = item?;
            if let Some(ds) = self.datasource(read_u64(Some(&id)))? {
                out.push(ds);
            }
        }
        Ok(out)
    }
}
