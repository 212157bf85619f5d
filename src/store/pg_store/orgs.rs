//! PostgreSQL: the org half of `UserStore` (create, look up, search, rename) and the narrow
//! membership writes (add one, change one role, remove one, list an org's members).
//!
//! Org names are unique without a unique index (a user's own org, made by `create_user`,
//! may share a name with an older one): every write that names an org takes the `orgs`
//! table lock `create_user` takes (`SHARE ROW EXCLUSIVE`, which conflicts with itself and
//! with INSERTs but not with reads), then checks the name. Every membership write locks the
//! user row first (`set_current_org` relies on it). The last org admin rule then locks the
//! org's `Admin` membership rows (`FOR UPDATE`, in user id order): a concurrent demotion of
//! one of them waits, and the re-checked row no longer matches once it committed.

use sqlx::postgres::PgConnection;

use super::users::{col, id, lock_user, org_from_row, select_orgs, user_cols, user_from_row};
use super::{db_err, PgStore};
use crate::domain::{OrgId, OrgRole, UserId};
use crate::store::{OrgRecord, StoreError, StoreResult, UserRecord};

const ADMIN: i16 = 3;

/// Takes the org naming lock inside a transaction (see the module header).
async fn lock_org_names(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("LOCK TABLE orgs IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// `Conflict("name")` when an org other than `except` has the name (under the naming lock).
async fn check_name_free(conn: &mut PgConnection, name: &str, except: i64) -> StoreResult<()> {
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT id FROM orgs WHERE name = $1 AND id <> $2 LIMIT 1")
            .bind(name)
            .bind(except)
            .fetch_optional(conn)
            .await
            .map_err(db_err)?;
    match taken {
        Some(_) => Err(StoreError::Conflict("name")),
        None => Ok(()),
    }
}

/// The last org admin rule for `user` leaving the `Admin` role of `org` (the user row is
/// already locked): another `Admin` membership must remain, locked until the commit.
async fn check_other_admin(conn: &mut PgConnection, org: i64, user: i64) -> StoreResult<()> {
    let admins: Vec<i64> = sqlx::query_scalar(
        "SELECT user_id FROM org_members WHERE org_id = $1 AND role = $2 \
         ORDER BY user_id FOR UPDATE",
    )
    .bind(org)
    .bind(ADMIN)
    .fetch_all(conn)
    .await
    .map_err(db_err)?;
    if admins.iter().any(|&a| a != user) {
        Ok(())
    } else {
        Err(StoreError::LastOrgAdmin)
    }
}

/// Sets `updated` and returns the user row; an invalid current org becomes `prefer` when
/// the user is a member of it, else the first membership (stays when there is none).
async fn finish_user(
    conn: &mut PgConnection,
    user: i64,
    prefer: i64,
    at: i64,
) -> StoreResult<UserRecord> {
    const SQL: &str = concat!(
        "UPDATE users AS u SET updated = to_timestamp($3), org_id = CASE \
             WHEN EXISTS (SELECT 1 FROM org_members x WHERE x.user_id = u.id \
                          AND x.org_id = u.org_id) THEN u.org_id \
             WHEN EXISTS (SELECT 1 FROM org_members x WHERE x.user_id = u.id \
                          AND x.org_id = $2) THEN $2 \
             ELSE coalesce((SELECT x.org_id FROM org_members x WHERE x.user_id = u.id \
                            ORDER BY x.position LIMIT 1), u.org_id) END \
         WHERE u.id = $1 RETURNING ",
        user_cols!()
    );
    let row = sqlx::query(SQL)
        .bind(user)
        .bind(prefer)
        .bind(at)
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    user_from_row(&row)
}

impl PgStore {
    pub(super) async fn create_org_in(
        &self,
        name: &str,
        at: i64,
        creator: UserId,
    ) -> StoreResult<OrgRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        lock_org_names(&mut tx).await?;
        check_name_free(&mut tx, name, 0).await?;
        if lock_user(&mut tx, id(creator.0)).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query(
            "INSERT INTO orgs (id, name, created, updated) \
             SELECT greatest(coalesce(max(id), 0) + 1, 2), $1, to_timestamp($2), \
                    to_timestamp($2) FROM orgs \
             RETURNING id, name, extract(epoch from created)::bigint AS created, \
                 extract(epoch from updated)::bigint AS updated",
        )
        .bind(name)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let org = org_from_row(&row)?;
        sqlx::query(
            "INSERT INTO org_members (user_id, org_id, role, position) \
             SELECT $1, $2, $3, coalesce(max(position) + 1, 0) FROM org_members \
             WHERE user_id = $1",
        )
        .bind(id(creator.0))
        .bind(id(org.id))
        .bind(ADMIN)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(org)
    }

    pub(super) async fn org_by_name_in(&self, name: &str) -> StoreResult<Option<OrgRecord>> {
        let row = sqlx::query(concat!(
            select_orgs!(),
            " WHERE name = $1 ORDER BY id LIMIT 1"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.as_ref().map(org_from_row).transpose()
    }

    pub(super) async fn search_orgs_in(
        &self,
        query: &str,
        name: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Vec<OrgRecord>> {
        let rows = sqlx::query(concat!(
            select_orgs!(),
            " WHERE starts_with(lower(name), lower($1)) AND ($2::text IS NULL OR name = $2) \
             ORDER BY name COLLATE \"C\", id OFFSET $3 LIMIT $4"
        ))
        .bind(query)
        .bind(name)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(org_from_row).collect()
    }

    pub(super) async fn rename_org_in(
        &self,
        org: OrgId,
        name: &str,
        at: i64,
    ) -> StoreResult<OrgRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        lock_org_names(&mut tx).await?;
        check_name_free(&mut tx, name, id(org.0)).await?;
        let row = sqlx::query(
            "UPDATE orgs SET name = $2, updated = to_timestamp($3) WHERE id = $1 \
             RETURNING id, name, extract(epoch from created)::bigint AS created, \
                 extract(epoch from updated)::bigint AS updated",
        )
        .bind(id(org.0))
        .bind(name)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        let record = org_from_row(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(record)
    }

    pub(super) async fn add_membership_in(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        if lock_user(&mut tx, id(user.0)).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        // A missing org fails the foreign key: OrgNotFound.
        let added = sqlx::query(
            "INSERT INTO org_members (user_id, org_id, role, position) \
             SELECT $1, $2, $3, coalesce(max(position) + 1, 0) FROM org_members \
             WHERE user_id = $1 ON CONFLICT (user_id, org_id) DO NOTHING",
        )
        .bind(id(user.0))
        .bind(id(org.0))
        .bind(i16::from(role.to_byte()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if added.rows_affected() == 0 {
            return Err(StoreError::AlreadyMember);
        }
        let record = finish_user(&mut tx, id(user.0), id(org.0), at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(record)
    }

    pub(super) async fn set_membership_role_in(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let Some(row) = lock_user(&mut tx, id(user.0)).await? else {
            return Err(StoreError::NotFound);
        };
        if self.org_in(&mut tx, org).await?.is_none() {
            return Err(StoreError::OrgNotFound);
        }
        match row.role_in(org) {
            None => return Err(StoreError::NotMember),
            Some(OrgRole::Admin) if role != OrgRole::Admin => {
                check_other_admin(&mut tx, id(org.0), id(user.0)).await?;
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE org_members SET role = $3 WHERE user_id = $1 AND org_id = $2")
            .bind(id(user.0))
            .bind(id(org.0))
            .bind(i16::from(role.to_byte()))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let record = finish_user(&mut tx, id(user.0), id(org.0), at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(record)
    }

    pub(super) async fn remove_membership_in(
        &self,
        user: UserId,
        org: OrgId,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let Some(row) = lock_user(&mut tx, id(user.0)).await? else {
            return Err(StoreError::NotFound);
        };
        if self.org_in(&mut tx, org).await?.is_none() {
            return Err(StoreError::OrgNotFound);
        }
        match row.role_in(org) {
            None => return Err(StoreError::NotMember),
            Some(OrgRole::Admin) => check_other_admin(&mut tx, id(org.0), id(user.0)).await?,
            Some(_) => {}
        }
        sqlx::query("DELETE FROM org_members WHERE user_id = $1 AND org_id = $2")
            .bind(id(user.0))
            .bind(id(org.0))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let record = finish_user(&mut tx, id(user.0), id(org.0), at).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(record)
    }

    async fn org_in(&self, conn: &mut PgConnection, org: OrgId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT id FROM orgs WHERE id = $1")
            .bind(id(org.0))
            .fetch_optional(conn)
            .await
            .map_err(db_err)
    }

    pub(super) async fn org_members_in(
        &self,
        org: OrgId,
    ) -> StoreResult<Vec<(UserRecord, OrgRole)>> {
        const SQL: &str = concat!(
            "SELECT om.role AS org_role, ",
            user_cols!(),
            " FROM org_members om JOIN users u ON u.id = om.user_id \
             WHERE om.org_id = $1 AND NOT u.is_service_account \
             ORDER BY u.login_key COLLATE \"C\", u.id"
        );
        let rows = sqlx::query(SQL)
            .bind(id(org.0))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let role: i16 = col(row, "org_role")?;
                let role = u8::try_from(role)
                    .ok()
                    .and_then(OrgRole::from_byte)
                    .ok_or_else(|| StoreError::Codec(format!("membership role {role}")))?;
                Ok((user_from_row(row)?, role))
            })
            .collect()
    }
}
