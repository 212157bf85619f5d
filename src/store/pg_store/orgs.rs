//! PostgreSQL: the org half of `UserStore` (create, look up, search, rename) and the narrow
//! membership writes (add one, change one role, remove one, list an org's members).
//!
//! A new org's id is above every org's and every user's current org: the id of a deleted
//! org that a user still points at is never given again.
//!
//! Org names are unique without a unique index (a user's own org, made by `create_user`,
//! may share a name with an older one): every write that names an org takes the `orgs`
//! table lock `create_user` takes (`SHARE ROW EXCLUSIVE`, which conflicts with itself and
//! with INSERTs but not with reads), then checks the name. Every membership write locks the
//! user row first (`set_current_org` relies on it). The last org admin rule then locks the
//! org's `Admin` membership rows (`FOR UPDATE`, in user id order): a concurrent demotion of
//! one of them waits, and the re-checked row no longer matches once it committed.

use sqlx::postgres::PgConnection;

use super::audit::{Audit, Statement};
use super::users::{col, id, lock_user, org_from_row, select_orgs, user_cols, user_from_row};
use super::{db_err, PgStore};
use crate::domain::{OrgId, OrgRole, UserId};
use crate::store::{OrgAddressRecord, OrgRecord, StoreError, StoreResult, UserRecord};

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
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        lock_org_names(&mut tx).await?;
        check_name_free(&mut tx, name, 0).await?;
        if lock_user(&mut tx, id(creator.0)).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query(
            "INSERT INTO orgs (id, name, created, updated) \
             SELECT greatest(coalesce(max(id), 0) + 1, 2, \
                    (SELECT coalesce(max(org_id), 0) + 1 FROM users)), $1, to_timestamp($2), \
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
        audit.append_created(&mut tx, org.id).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
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
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
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
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(record)
    }

    pub(super) async fn add_membership_in(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
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
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(record)
    }

    pub(super) async fn set_membership_role_in(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
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
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(record)
    }

    pub(super) async fn remove_membership_in(
        &self,
        user: UserId,
        org: OrgId,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
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
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
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

/// An `org_addresses` row.
fn address_from_row(row: &sqlx::postgres::PgRow) -> StoreResult<OrgAddressRecord> {
    Ok(OrgAddressRecord {
        address1: col(row, "address1")?,
        address2: col(row, "address2")?,
        city: col(row, "city")?,
        zip_code: col(row, "zip_code")?,
        state: col(row, "state")?,
        country: col(row, "country")?,
    })
}

/// Every org's address, by org id (the dump).
pub(super) async fn all_org_addresses(
    conn: &mut PgConnection,
) -> StoreResult<Vec<(u64, OrgAddressRecord)>> {
    let rows = sqlx::query("SELECT * FROM org_addresses ORDER BY org_id")
        .fetch_all(conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let org: i64 = col(row, "org_id")?;
            Ok((org as u64, address_from_row(row)?))
        })
        .collect()
}

/// The statement that writes (inserts or replaces) one org's address.
pub(super) fn put_org_address(org: u64, a: &OrgAddressRecord) -> Statement<'_> {
    sqlx::query(
        "INSERT INTO org_addresses (org_id, address1, address2, city, zip_code, state, country) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE SET \
         address1 = EXCLUDED.address1, address2 = EXCLUDED.address2, city = EXCLUDED.city, \
         zip_code = EXCLUDED.zip_code, state = EXCLUDED.state, country = EXCLUDED.country",
    )
    .bind(id(org))
    .bind(&a.address1)
    .bind(&a.address2)
    .bind(&a.city)
    .bind(&a.zip_code)
    .bind(&a.state)
    .bind(&a.country)
}

impl PgStore {
    /// One transaction. Locks in the order the membership writes take them: first the rows
    /// of the org's members and of the users whose current org it is (in id order, so a
    /// concurrent membership change or org switch either committed before or waits), then
    /// the org row (a concurrent delete waits, then finds nothing). Users whose current org
    /// it is move to their first other membership; the
    /// org's service accounts (their tokens, memberships and role assignments go with them)
    /// and the owners' secrets are deleted; then the org row, whose foreign keys cascade to
    /// memberships, API keys, datasources, folders, dashboards (alerts), plugin settings,
    /// notifiers, roles (permissions, assignments) and the address.
    pub(super) async fn delete_org_in(
        &self,
        org: OrgId,
        secret_prefixes: &[String],
    ) -> StoreResult<()> {
        let org = id(org.0);
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        sqlx::query(
            "SELECT id FROM users WHERE org_id = $1 \
             OR id IN (SELECT user_id FROM org_members WHERE org_id = $1) \
             ORDER BY id FOR UPDATE",
        )
        .bind(org)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM orgs WHERE id = $1 FOR UPDATE")
            .bind(org)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "UPDATE users AS u SET org_id = x.org_id FROM ( \
                 SELECT DISTINCT ON (m.user_id) m.user_id, m.org_id FROM org_members m \
                 JOIN users v ON v.id = m.user_id \
                 WHERE v.org_id = $1 AND m.org_id <> $1 \
                 ORDER BY m.user_id, m.position) AS x \
             WHERE u.id = x.user_id AND u.org_id = $1",
        )
        .bind(org)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "DELETE FROM role_assignments WHERE user_id IN \
             (SELECT id FROM users WHERE is_service_account AND org_id = $1)",
        )
        .bind(org)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM users WHERE is_service_account AND org_id = $1")
            .bind(org)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "DELETE FROM secrets s WHERE EXISTS \
             (SELECT 1 FROM unnest($1::text[]) AS p WHERE starts_with(s.key, p))",
        )
        .bind(secret_prefixes)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let roles = sqlx::query("DELETE FROM roles WHERE org_id = $1")
            .bind(org)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM orgs WHERE id = $1")
            .bind(org)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if roles.rows_affected() > 0 {
            super::announce_in(&mut tx, crate::store::Topic::Roles).await?;
        }
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(())
    }

    pub(super) async fn org_address_in(&self, org: OrgId) -> StoreResult<Option<OrgAddressRecord>> {
        let row = sqlx::query("SELECT * FROM org_addresses WHERE org_id = $1")
            .bind(id(org.0))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(address_from_row).transpose()
    }

    pub(super) async fn set_org_address_in(
        &self,
        org: OrgId,
        address: &OrgAddressRecord,
    ) -> StoreResult<()> {
        // A missing org fails the foreign key: OrgNotFound.
        self.write_counted(put_org_address(org.0, address)).await?;
        Ok(())
    }
}
