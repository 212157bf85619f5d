//! PostgreSQL: RoleStore, on `roles`, `role_permissions` and `role_assignments`.
//!
//! A role is keyed by (org, uid); a global role (org 0 in the record) is stored with
//! `org_id` NULL, since org 0 has no `orgs` row, and the unique indexes key on
//! `coalesce(org_id, 0)` (`roles_org_uid`, and `roles_org_name` on `name_key`, the name
//! lower-cased here with Rust's `to_lowercase` as the embedded store folds it:
//! `Conflict("uid" | "name")`). Basic-role grants and provisioned logins (`users`) are
//! arrays on the row; permissions are ordered child rows; API assignments are
//! `role_assignments (role_id, user_id)` rows that go with the role (`ON DELETE CASCADE`),
//! assembled into `user_ids` on read.
//!
//! An assignment is one `INSERT ... ON CONFLICT DO NOTHING` (or `DELETE`) in a transaction
//! that first takes a key-share lock on the role row: a missing role is `NotFound`, a
//! concurrent delete of the role waits for it (or makes it find no role), and concurrent
//! assignments to one role do not block each other. Definition writes (`update_role`,
//! `apply_roles`) never touch `role_assignments`, so API assignments are kept; `update_role`
//! also keeps the grants and logins, which it does not set.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};

use super::audit::Audit;
use super::secrets::{col, db_i64, u64_col};
use super::{db_err, PgStore};
use crate::domain::{OrgId, UserId};
use crate::store::{RoleRecord, RoleStore, StoreError, StoreResult};

/// The role columns with its permissions and API assignments.
macro_rules! select_roles {
    () => {
        "SELECT r.id, coalesce(r.org_id, 0) AS org_id, r.uid, r.name, r.display_name, \
         r.description, r.\"group\", r.version, r.global, r.basic_roles, r.users, \
         coalesce((SELECT array_agg(p.action ORDER BY p.ord) FROM role_permissions p \
           WHERE p.role_id = r.id), '{}') AS perm_actions, \
         coalesce((SELECT array_agg(p.scope ORDER BY p.ord) FROM role_permissions p \
           WHERE p.role_id = r.id), '{}') AS perm_scopes, \
         coalesce((SELECT array_agg(a.user_id ORDER BY a.user_id) FROM role_assignments a \
           WHERE a.role_id = r.id), '{}') AS user_ids, \
         extract(epoch FROM r.updated)::bigint AS updated FROM roles r"
    };
}
pub(super) use select_roles;

/// The key predicate on `roles r` ($1 org, $2 uid), matching the unique index.
macro_rules! role_key {
    () => {
        "coalesce(r.org_id, 0) = $1 AND r.uid = $2"
    };
}

pub(super) fn role_row(row: &PgRow) -> StoreResult<RoleRecord> {
    let actions: Vec<String> = col(row, "perm_actions")?;
    let scopes: Vec<String> = col(row, "perm_scopes")?;
    let user_ids: Vec<i64> = col(row, "user_ids")?;
    Ok(RoleRecord {
        uid: col(row, "uid")?,
        name: col(row, "name")?,
        display_name: col(row, "display_name")?,
        description: col(row, "description")?,
        group: col(row, "group")?,
        version: u64_col(row, "version")?,
        global: col(row, "global")?,
        org_id: u64_col(row, "org_id")?,
        permissions: actions.into_iter().zip(scopes).collect(),
        basic_roles: col(row, "basic_roles")?,
        users: col(row, "users")?,
        user_ids: user_ids.into_iter().map(i64::unsigned_abs).collect(),
        updated: col(row, "updated")?,
    })
}

/// The `org_id` column of a record's org: NULL for a global role (org 0).
fn org_param(org: u64) -> StoreResult<Option<i64>> {
    if org == 0 {
        Ok(None)
    } else {
        db_i64(org).map(Some)
    }
}

/// Replaces a role's permissions, keeping their order.
async fn put_permissions(
    tx: &mut Transaction<'_, Postgres>,
    role_id: i64,
    role: &RoleRecord,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
        .bind(role_id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    let (actions, scopes): (Vec<&str>, Vec<&str>) = role
        .permissions
        .iter()
        .map(|(a, s)| (a.as_str(), s.as_str()))
        .unzip();
    sqlx::query(
        "INSERT INTO role_permissions (role_id, ord, action, scope) \
         SELECT $1, t.ord, t.action, t.scope \
         FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(action, scope, ord)",
    )
    .bind(role_id)
    .bind(actions)
    .bind(scopes)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Adds API assignments (a new role's, from its record).
async fn put_assignments(
    tx: &mut Transaction<'_, Postgres>,
    role_id: i64,
    role: &RoleRecord,
) -> StoreResult<()> {
    if role.user_ids.is_empty() {
        return Ok(());
    }
    let ids = role
        .user_ids
        .iter()
        .map(|u| db_i64(*u))
        .collect::<StoreResult<Vec<i64>>>()?;
    sqlx::query(
        "INSERT INTO role_assignments (role_id, user_id) SELECT $1, unnest($2::bigint[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(role_id)
    .bind(ids)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Locks the role row for the rest of the transaction (`query` selects its id by
/// [`role_key`] with a row-lock clause); its id, or `NotFound` when there is no such role.
async fn lock_role(
    tx: &mut Transaction<'_, Postgres>,
    query: &'static str,
    org: OrgId,
    uid: &str,
) -> StoreResult<i64> {
    let id: Option<i64> = sqlx::query_scalar(query)
        .bind(db_i64(org.0)?)
        .bind(uid)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    id.ok_or(StoreError::NotFound)
}

#[async_trait]
impl RoleStore for PgStore {
    async fn roles(&self) -> StoreResult<Vec<RoleRecord>> {
        let rows = sqlx::query(concat!(
            select_roles!(),
            " ORDER BY coalesce(r.org_id, 0), r.uid"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(role_row).collect()
    }

    async fn role(&self, org: OrgId, uid: &str) -> StoreResult<Option<RoleRecord>> {
        let row = sqlx::query(concat!(select_roles!(), " WHERE ", role_key!()))
            .bind(db_i64(org.0)?)
            .bind(uid)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(role_row).transpose()
    }

    async fn create_role(&self, role: &RoleRecord) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO roles (org_id, uid, name, display_name, description, \"group\", \
             version, global, basic_roles, users, updated, name_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, to_timestamp($11), $12) \
             RETURNING id",
        )
        .bind(org_param(role.org_id)?)
        .bind(role.uid.as_str())
        .bind(role.name.as_str())
        .bind(role.display_name.as_str())
        .bind(role.description.as_str())
        .bind(role.group.as_str())
        .bind(db_i64(role.version)?)
        .bind(role.global)
        .bind(role.basic_roles.as_slice())
        .bind(role.users.as_slice())
        .bind(role.updated)
        .bind(role.name.to_lowercase())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        put_permissions(&mut tx, id, role).await?;
        put_assignments(&mut tx, id, role).await?;
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        audit.append_created(&mut tx, &role.uid).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn update_role(&self, role: &RoleRecord, expected_version: u64) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let id: Option<i64> = sqlx::query_scalar(concat!(
            "UPDATE roles r SET name = $4, display_name = $5, description = $6, ",
            "\"group\" = $7, version = $8, global = $9, updated = to_timestamp($10), ",
            "name_key = $11 ",
            "WHERE ",
            role_key!(),
            " AND r.version = $3 RETURNING r.id"
        ))
        .bind(db_i64(role.org_id)?)
        .bind(role.uid.as_str())
        .bind(db_i64(expected_version)?)
        .bind(role.name.as_str())
        .bind(role.display_name.as_str())
        .bind(role.description.as_str())
        .bind(role.group.as_str())
        .bind(db_i64(role.version)?)
        .bind(role.global)
        .bind(role.updated)
        .bind(role.name.to_lowercase())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(id) = id else {
            let exists: Option<i32> =
                sqlx::query_scalar(concat!("SELECT 1 FROM roles r WHERE ", role_key!()))
                    .bind(db_i64(role.org_id)?)
                    .bind(role.uid.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            return Err(match exists {
                Some(_) => StoreError::Stale("version"),
                None => StoreError::NotFound,
            });
        };
        put_permissions(&mut tx, id, role).await?;
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn delete_role(&self, org: OrgId, uid: &str) -> StoreResult<Option<RoleRecord>> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        // Locked first, so the row returned holds every assignment the delete removes.
        let row = sqlx::query(concat!(
            select_roles!(),
            " WHERE ",
            role_key!(),
            " FOR UPDATE OF r"
        ))
        .bind(db_i64(org.0)?)
        .bind(uid)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let gone = role_row(&row)?;
        let id: i64 = col(&row, "id")?;
        // Its permissions and assignments go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(Some(gone))
    }

    async fn apply_roles(&self, set: &[RoleRecord], delete: &[(OrgId, String)]) -> StoreResult<()> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        // Roles written are a change; a delete only if it found one.
        let mut changed = !set.is_empty();
        for (org, uid) in delete {
            let done = sqlx::query(concat!("DELETE FROM roles r WHERE ", role_key!()))
                .bind(db_i64(org.0)?)
                .bind(uid.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            changed |= done.rows_affected() > 0;
        }
        for role in set {
            // An upsert by (org, uid): the row (and so its API assignments) is kept; the
            // definition, grants and provisioned logins are the file's.
            let row = sqlx::query(
                "INSERT INTO roles (org_id, uid, name, display_name, description, \"group\", \
                 version, global, basic_roles, users, updated, name_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, to_timestamp($11), $12) \
                 ON CONFLICT ((coalesce(org_id, 0)), uid) DO UPDATE SET name = excluded.name, \
                 name_key = excluded.name_key, \
                 display_name = excluded.display_name, description = excluded.description, \
                 \"group\" = excluded.\"group\", version = excluded.version, \
                 global = excluded.global, basic_roles = excluded.basic_roles, \
                 users = excluded.users, updated = excluded.updated \
                 RETURNING id, (xmax = 0) AS inserted",
            )
            .bind(org_param(role.org_id)?)
            .bind(role.uid.as_str())
            .bind(role.name.as_str())
            .bind(role.display_name.as_str())
            .bind(role.description.as_str())
            .bind(role.group.as_str())
            .bind(db_i64(role.version)?)
            .bind(role.global)
            .bind(role.basic_roles.as_slice())
            .bind(role.users.as_slice())
            .bind(role.updated)
            .bind(role.name.to_lowercase())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            let id: i64 = col(&row, "id")?;
            let inserted: bool = col(&row, "inserted")?;
            put_permissions(&mut tx, id, role).await?;
            if inserted {
                put_assignments(&mut tx, id, role).await?;
            }
        }
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        if changed {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    async fn assign_role(&self, org: OrgId, uid: &str, user: UserId) -> StoreResult<bool> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let role_id = lock_role(
            &mut tx,
            concat!(
                "SELECT r.id FROM roles r WHERE ",
                role_key!(),
                " FOR KEY SHARE"
            ),
            org,
            uid,
        )
        .await?;
        let done = sqlx::query(
            "INSERT INTO role_assignments (role_id, user_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(role_id)
        .bind(db_i64(user.0)?)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        if done.rows_affected() > 0 {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(done.rows_affected() > 0)
    }

    async fn unassign_role(
        &self,
        org: OrgId,
        uid: &str,
        user: UserId,
        login: &str,
    ) -> StoreResult<bool> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let role_id = lock_role(
            &mut tx,
            concat!(
                "SELECT r.id FROM roles r WHERE ",
                role_key!(),
                " FOR NO KEY UPDATE"
            ),
            org,
            uid,
        )
        .await?;
        let by_id = sqlx::query("DELETE FROM role_assignments WHERE role_id = $1 AND user_id = $2")
            .bind(role_id)
            .bind(db_i64(user.0)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // A provisioned assignment names the user by login (case-insensitively).
        let by_login = sqlx::query(
            "UPDATE roles SET users = ARRAY(SELECT u FROM unnest(users) WITH ORDINALITY \
             AS t(u, n) WHERE lower(u) <> lower($2) ORDER BY n) \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM unnest(users) AS u WHERE lower(u) = lower($2))",
        )
        .bind(role_id)
        .bind(login)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        let changed = by_id.rows_affected() + by_login.rows_affected() > 0;
        if changed {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(changed)
    }

    async fn set_basic_grant(
        &self,
        org: OrgId,
        uid: &str,
        basic: &str,
        granted: bool,
    ) -> StoreResult<bool> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let role_id = lock_role(
            &mut tx,
            concat!(
                "SELECT r.id FROM roles r WHERE ",
                role_key!(),
                " FOR NO KEY UPDATE"
            ),
            org,
            uid,
        )
        .await?;
        let query = if granted {
            "UPDATE roles SET basic_roles = array_append(basic_roles, $2) WHERE id = $1 \
             AND NOT EXISTS (SELECT 1 FROM unnest(basic_roles) AS b WHERE lower(b) = lower($2))"
        } else {
            "UPDATE roles SET basic_roles = ARRAY(SELECT b FROM unnest(basic_roles) \
             WITH ORDINALITY AS t(b, n) WHERE lower(b) <> lower($2) ORDER BY n) \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM unnest(basic_roles) AS b \
             WHERE lower(b) = lower($2))"
        };
        let done = sqlx::query(query)
            .bind(role_id)
            .bind(basic)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        if done.rows_affected() > 0 {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(done.rows_affected() > 0)
    }
}
