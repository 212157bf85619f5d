//! Quota limits (`quotas`: `o` or `u`, the owner's id, then the target) and the org
//! member count quotas need.

use async_trait::async_trait;

use super::writer::T;
use super::{abort, all_with_prefix, enc, keys, SledStore};
use crate::domain::OrgId;
use crate::store::{QuotaOwner, QuotaRecord, QuotaStore, StoreError, StoreResult};

/// The key prefix of an owner's limits.
fn owner_prefix(owner: QuotaOwner) -> Vec<u8> {
    let (tag, id) = match owner {
        QuotaOwner::Org(o) => (b'o', o.0),
        QuotaOwner::User(u) => (b'u', u.0),
    };
    let mut k = Vec::with_capacity(9);
    k.push(tag);
    k.extend_from_slice(&keys::id(id));
    k
}

pub(super) fn quota_key(q: &QuotaRecord) -> Vec<u8> {
    let mut k = owner_prefix(q.owner());
    k.extend_from_slice(q.target.as_bytes());
    k
}

impl SledStore {
    /// Whether an owner still exists (the export leaves out the limits of deleted ones).
    pub(super) fn quota_owner_exists(&self, owner: QuotaOwner) -> StoreResult<bool> {
        Ok(match owner {
            QuotaOwner::Org(o) => self.orgs.contains_key(keys::id(o.0))?,
            QuotaOwner::User(u) => self.users.contains_key(keys::id(u.0))?,
        })
    }
}

#[async_trait]
impl QuotaStore for SledStore {
    async fn quotas(&self, owner: QuotaOwner) -> StoreResult<Vec<QuotaRecord>> {
        all_with_prefix(&self.quotas, &owner_prefix(owner))
    }

    async fn set_quota(&self, quota: &QuotaRecord) -> StoreResult<()> {
        let (owners, owner_key) = match quota.owner() {
            QuotaOwner::Org(o) => (T::Orgs, keys::id(o.0)),
            QuotaOwner::User(u) => (T::Users, keys::id(u.0)),
        };
        let (key, quota) = (quota_key(quota), quota.clone());
        self.write_audited(move |tx, pending| {
            if tx[owners].get(owner_key)?.is_none() {
                return abort(StoreError::NotFound);
            }
            tx[T::Quotas].insert(key.as_slice(), enc(&quota)?)?;
            pending.record(&tx[T::Audit])
        })
        .await
    }

    async fn org_member_count(&self, org: OrgId) -> StoreResult<u64> {
        self.blocking(move |s| {
            let mut n = 0u64;
            for item in s.org_members.scan_prefix(org.key()) {
                item?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }
}
