//! Quota limits (`quotas`, one row per owner and target) and the org member count.

use async_trait::async_trait;
use sqlx::postgres::PgRow;

use super::secrets::{col, db_i64, u64_col};
use super::{db_err, PgStore};
use crate::domain::OrgId;
use crate::store::{QuotaOwner, QuotaRecord, QuotaStore, StoreError, StoreResult};

/// The quota columns as the record holds them (0 for the owner kind a row lacks).
macro_rules! select_quotas {
    () => {
        "SELECT coalesce(org_id, 0) AS org_id, coalesce(user_id, 0) AS user_id, target, \
         \"limit\", extract(epoch FROM updated)::bigint AS updated FROM quotas"
    };
}
pub(super) use select_quotas;

pub(super) fn quota_row(r: &PgRow) -> StoreResult<QuotaRecord> {
    Ok(QuotaRecord {
        org_id: u64_col(r, "org_id")?,
        user_id: u64_col(r, "user_id")?,
        target: col(r, "target")?,
        limit: col(r, "limit")?,
        updated: col(r, "updated")?,
    })
}

/// `(org_id, user_id)` parameters of a row: NULL for the owner kind it is not.
pub(super) fn owner_params(q: &QuotaRecord) -> StoreResult<(Option<i64>, Option<i64>)> {
    Ok(match q.owner() {
        QuotaOwner::Org(o) => (Some(db_i64(o.0)?), None),
        QuotaOwner::User(u) => (None, Some(db_i64(u.0)?)),
    })
}

#[async_trait]
impl QuotaStore for PgStore {
    async fn quotas(&self, owner: QuotaOwner) -> StoreResult<Vec<QuotaRecord>> {
        let (sql, id) = match owner {
            QuotaOwner::Org(o) => (
                concat!(select_quotas!(), " WHERE org_id = $1 ORDER BY target"),
                o.0,
            ),
            QuotaOwner::User(u) => (
                concat!(select_quotas!(), " WHERE user_id = $1 ORDER BY target"),
                u.0,
            ),
        };
        let rows = sqlx::query(sql)
            .bind(db_i64(id)?)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter().map(quota_row).collect()
    }

    async fn set_quota(&self, quota: &QuotaRecord) -> StoreResult<()> {
        let sql = match quota.owner() {
            QuotaOwner::Org(_) => {
                "INSERT INTO quotas (org_id, user_id, target, \"limit\", updated) \
                 SELECT $1, $2, $3, $4, to_timestamp($5) WHERE EXISTS \
                 (SELECT 1 FROM orgs WHERE id = $1 FOR KEY SHARE) \
                 ON CONFLICT (org_id, target) WHERE org_id IS NOT NULL \
                 DO UPDATE SET \"limit\" = excluded.\"limit\", updated = excluded.updated"
            }
            QuotaOwner::User(_) => {
                "INSERT INTO quotas (org_id, user_id, target, \"limit\", updated) \
                 SELECT $1, $2, $3, $4, to_timestamp($5) WHERE EXISTS \
                 (SELECT 1 FROM users WHERE id = $2 FOR KEY SHARE) \
                 ON CONFLICT (user_id, target) WHERE user_id IS NOT NULL \
                 DO UPDATE SET \"limit\" = excluded.\"limit\", updated = excluded.updated"
            }
        };
        let (org, user) = owner_params(quota)?;
        let q = sqlx::query(sql)
            .bind(org)
            .bind(user)
            .bind(quota.target.as_str())
            .bind(quota.limit)
            .bind(quota.updated);
        if self.write_counted(q).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn org_member_count(&self, org: OrgId) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM org_members WHERE org_id = $1")
            .bind(db_i64(org.0)?)
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        Ok(n.max(0) as u64)
    }
}
