//! PostgreSQL: users and orgs (`UserStore`), the stats (`StatsStore`) and the install facts
//! (`MetaStore`), on the `users`, `orgs`, `org_members` and `meta` tables of
//! `migrations/0001_users.sql`.
//!
//! A user record is assembled on read: the `users` row (its current org in `org_id`, the
//! password hash as four columns) and its `org_members` rows in the order they were given
//! (`position`). Login and email are unique through the `login_key` / `email_key` columns,
//! folded here as sled folds them (trim, Unicode lower case). Narrow updates are one
//! `UPDATE ... SET <their columns>`; `upgrade_password` compares the stored hash in its
//! `WHERE`. The last Grafana Admin rule locks every Grafana Admin row (`FOR UPDATE`, in id
//! order) before it reads the target, in the transaction that demotes or deletes. Counts
//! are `count(*)` over every table, the other backend files' ones included.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::audit::Audit;
use super::{db_err, PgStore};
use crate::crypto::{PasswordHash, PasswordScheme};
use crate::domain::{OrgId, OrgRole, UserId};
use crate::store::{
    Activity, ActivityWindows, Counts, Membership, MetaStore, NewMembership, OrgAddressRecord,
    OrgRecord, ProfileChange, SeriesBucket, StatsStore, StoreError, StoreResult, UserPage,
    UserRecord, UserStore,
};

/// The columns of a user record, `users` aliased `u` (used in SELECT and RETURNING).
macro_rules! user_cols {
    () => {
        "u.id, u.uid, u.login, u.email, u.name, u.is_admin, u.is_disabled, \
         u.is_service_account, u.password_scheme, u.password_iterations, u.password_salt, \
         u.password_hash, u.org_id, u.theme, u.auth_module, \
         extract(epoch from u.created)::bigint AS created, \
         extract(epoch from u.updated)::bigint AS updated, \
         extract(epoch from u.last_seen_at)::bigint AS last_seen_at, \
         array(SELECT m.org_id FROM org_members m WHERE m.user_id = u.id \
               ORDER BY m.position) AS member_orgs, \
         array(SELECT m.role FROM org_members m WHERE m.user_id = u.id \
               ORDER BY m.position) AS member_roles"
    };
}
pub(super) use user_cols;

/// How the store folds logins and emails for uniqueness and lookups (as sled does).
pub(super) fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// A column of a row, or `Codec`.
pub(super) fn col<'r, T>(row: &'r PgRow, name: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Codec(format!("column {name}: {e}")))
}

/// A non-negative count or id column as `u64`.
pub(super) fn col_u64(row: &PgRow, name: &str) -> StoreResult<u64> {
    let v: i64 = col(row, name)?;
    u64::try_from(v).map_err(|_| StoreError::Codec(format!("column {name}: negative {v}")))
}

/// Ids are `u64` in the records and `bigint` here; an id above `i64::MAX` (none is ever
/// allocated) wraps to a negative number that matches no row.
pub(super) fn id(v: u64) -> i64 {
    v as i64
}

fn scheme_name(s: PasswordScheme) -> &'static str {
    match s {
        PasswordScheme::Pbkdf2Sha256 => "pbkdf2_sha256",
        PasswordScheme::GrafanaLegacy => "grafana_legacy",
    }
}

fn scheme_of(name: &str) -> StoreResult<PasswordScheme> {
    match name {
        "pbkdf2_sha256" => Ok(PasswordScheme::Pbkdf2Sha256),
        "grafana_legacy" => Ok(PasswordScheme::GrafanaLegacy),
        other => Err(StoreError::Codec(format!(
            "unknown password scheme {other:?}"
        ))),
    }
}

/// The four password columns of a hash: scheme, iterations, salt, hash (all NULL for none).
pub(super) type PasswordCols<'a> = (
    Option<&'static str>,
    Option<i64>,
    Option<&'a [u8]>,
    Option<&'a [u8]>,
);

pub(super) fn password_cols(p: Option<&PasswordHash>) -> PasswordCols<'_> {
    match p {
        Some(p) => (
            Some(scheme_name(p.scheme)),
            Some(i64::from(p.iterations)),
            Some(p.salt.as_slice()),
            Some(p.hash.as_slice()),
        ),
        None => (None, None, None, None),
    }
}

/// A user record from a row of [`user_cols`].
pub(super) fn user_from_row(row: &PgRow) -> StoreResult<UserRecord> {
    let scheme: Option<String> = col(row, "password_scheme")?;
    let password = match scheme {
        Some(scheme) => {
            let iterations: i64 = col(row, "password_iterations")?;
            Some(PasswordHash {
                scheme: scheme_of(&scheme)?,
                iterations: u32::try_from(iterations)
                    .map_err(|_| StoreError::Codec(format!("password iterations {iterations}")))?,
                salt: col(row, "password_salt")?,
                hash: col(row, "password_hash")?,
            })
        }
        None => None,
    };
    let orgs: Vec<i64> = col(row, "member_orgs")?;
    let roles: Vec<i16> = col(row, "member_roles")?;
    let memberships = orgs
        .into_iter()
        .zip(roles)
        .map(|(org, role)| {
            Ok(Membership {
                org_id: org as u64,
                role: u8::try_from(role)
                    .map_err(|_| StoreError::Codec(format!("membership role {role}")))?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(UserRecord {
        id: col_u64(row, "id")?,
        uid: col(row, "uid")?,
        login: col(row, "login")?,
        email: col(row, "email")?,
        name: col(row, "name")?,
        is_admin: col(row, "is_admin")?,
        is_disabled: col(row, "is_disabled")?,
        is_service_account: col(row, "is_service_account")?,
        password,
        org_id: col_u64(row, "org_id")?,
        memberships,
        theme: col(row, "theme")?,
        auth_module: col(row, "auth_module")?,
        created: col(row, "created")?,
        updated: col(row, "updated")?,
        last_seen_at: col(row, "last_seen_at")?,
    })
}

/// The org columns as the record holds them.
macro_rules! select_orgs {
    () => {
        "SELECT id, name, extract(epoch from created)::bigint AS created, \
         extract(epoch from updated)::bigint AS updated FROM orgs"
    };
}
pub(super) use select_orgs;

pub(super) fn org_from_row(row: &PgRow) -> StoreResult<OrgRecord> {
    Ok(OrgRecord {
        id: col_u64(row, "id")?,
        name: col(row, "name")?,
        created: col(row, "created")?,
        updated: col(row, "updated")?,
    })
}

const USER_BY_ID: &str = concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1");
const USER_BY_ID_FOR_UPDATE: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM users u WHERE u.id = $1 FOR UPDATE OF u"
);

/// The user `id` inside a transaction, its row locked until the end of it.
pub(super) async fn lock_user(
    conn: &mut PgConnection,
    user: i64,
) -> StoreResult<Option<UserRecord>> {
    sqlx::query(USER_BY_ID_FOR_UPDATE)
        .bind(user)
        .fetch_optional(conn)
        .await
        .map_err(db_err)?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

/// Locks every enabled Grafana Admin row (in id order, so that two such transactions
/// cannot deadlock) and returns their ids: until the transaction ends none of them can lose
/// the flag, be disabled or go. Service accounts do not count (as in
/// `Counts::grafana_admins`), nor do disabled admins (they cannot sign in).
pub(super) async fn lock_grafana_admins(conn: &mut PgConnection) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT id FROM users WHERE is_admin AND NOT is_service_account AND NOT is_disabled \
         ORDER BY id FOR UPDATE",
    )
    .fetch_all(conn)
    .await
    .map_err(db_err)
}

/// The last Grafana Admin rule: an enabled `target` may lose the flag, be disabled or go
/// only if another enabled Grafana Admin stays. `admins` are the locked ones.
pub(super) fn check_not_last_admin(target: &UserRecord, admins: &[i64]) -> StoreResult<()> {
    if !target.is_admin || target.is_service_account || target.is_disabled {
        return Ok(());
    }
    let others = admins.iter().filter(|&&a| a != id(target.id)).count();
    if others == 0 {
        return Err(StoreError::LastAdmin);
    }
    Ok(())
}

/// Locks the user row for the rest of the transaction; its current org (`NotFound` for a
/// missing user).
async fn lock_current_org(conn: &mut PgConnection, user: UserId) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT org_id FROM users WHERE id = $1 FOR UPDATE")
        .bind(id(user.0))
        .fetch_optional(conn)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)
}

/// Clears the Grafana Admin flag inside a transaction whose checks passed.
async fn revoke_in(conn: &mut PgConnection, user: UserId, at: i64) -> StoreResult<UserRecord> {
    const SQL: &str = concat!(
        "UPDATE users AS u SET is_admin = false, updated = to_timestamp($2) \
         WHERE u.id = $1 RETURNING ",
        user_cols!()
    );
    let row = sqlx::query(SQL)
        .bind(id(user.0))
        .bind(at)
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    user_from_row(&row)
}

/// Deletes a user row inside a transaction (memberships, sessions and tokens go with it by
/// `ON DELETE CASCADE`), keeping the last Grafana Admin. The deleted row, if any;
/// `service_accounts_only` leaves other users alone (`None`).
pub(super) async fn delete_user_in(
    conn: &mut PgConnection,
    user: UserId,
    service_accounts_only: bool,
) -> StoreResult<Option<UserRecord>> {
    // A service account never counts as a Grafana Admin: no admin to lock for it.
    let admins = if service_accounts_only {
        Vec::new()
    } else {
        lock_grafana_admins(&mut *conn).await?
    };
    let Some(row) = lock_user(&mut *conn, id(user.0)).await? else {
        return Ok(None);
    };
    if service_accounts_only && !row.is_service_account {
        return Ok(None);
    }
    check_not_last_admin(&row, &admins)?;
    if service_accounts_only {
        sqlx::query("DELETE FROM api_keys WHERE service_account_id = $1")
            .bind(id(user.0))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id(user.0))
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(Some(row))
}

impl PgStore {
    async fn user_where(
        &self,
        sql: &'static str,
        value: String,
    ) -> StoreResult<Option<UserRecord>> {
        sqlx::query(sql)
            .bind(value)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// `set_memberships` in one transaction: the user row locked, its memberships
    /// replaced, its current org kept when it is still one.
    async fn set_memberships_in(
        &self,
        user: UserId,
        orgs: &[i64],
        roles: &[i16],
        at: i64,
    ) -> StoreResult<UserRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let current = lock_current_org(&mut tx, user).await?;
        sqlx::query("DELETE FROM org_members WHERE user_id = $1")
            .bind(id(user.0))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // A missing org fails the foreign key: OrgNotFound, and the transaction rolls back.
        sqlx::query(
            "INSERT INTO org_members (user_id, org_id, role, position) \
             SELECT $1, m.org_id, m.role, m.position - 1 \
             FROM unnest($2::bigint[], $3::smallint[]) WITH ORDINALITY \
                  AS m(org_id, role, position)",
        )
        .bind(id(user.0))
        .bind(orgs)
        .bind(roles)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // The current org moves to the first membership when it is no longer one.
        let org = if orgs.contains(&current) {
            current
        } else {
            orgs.first().copied().unwrap_or(current)
        };
        const SQL: &str = concat!(
            "UPDATE users AS u SET org_id = $2, updated = to_timestamp($3) WHERE u.id = $1 \
             RETURNING ",
            user_cols!()
        );
        let row = sqlx::query(SQL)
            .bind(id(user.0))
            .bind(org)
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let record = user_from_row(&row)?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(record)
    }

    /// `set_current_org` in one transaction. The user row is locked first, as
    /// `set_memberships` locks it before it replaces the memberships; the UPDATE that
    /// follows is a new statement, so under READ COMMITTED its membership check sees every
    /// membership change committed before the lock was granted. (A lone `UPDATE ... WHERE
    /// EXISTS` would not: after waiting for a concurrent `set_memberships` it re-checks the
    /// user row but reads `org_members` from its older snapshot, and could make a
    /// just-removed org current.)
    async fn set_current_org_in(&self, user: UserId, org: OrgId) -> StoreResult<UserRecord> {
        const SQL: &str = concat!(
            "UPDATE users AS u SET org_id = $2 WHERE u.id = $1 AND EXISTS ( \
                 SELECT 1 FROM org_members m WHERE m.user_id = u.id AND m.org_id = $2) \
             RETURNING ",
            user_cols!()
        );
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let current = lock_current_org(&mut tx, user).await?;
        let row = sqlx::query(SQL)
            .bind(id(user.0))
            .bind(id(org.0))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotMember)?;
        let record = user_from_row(&row)?;
        if current != id(org.0) {
            audit.append(&mut tx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(record)
    }

    /// Granting cannot break the last Grafana Admin rule: one statement, no lock on the
    /// other admins.
    async fn grant_grafana_admin(&self, user: UserId, at: i64) -> StoreResult<UserRecord> {
        const SQL: &str = concat!(
            "UPDATE users AS u SET is_admin = true, updated = to_timestamp($2) \
             WHERE u.id = $1 AND NOT u.is_admin RETURNING ",
            user_cols!()
        );
        let q = sqlx::query(SQL).bind(id(user.0)).bind(at);
        let changed = self.write_returning(q, None).await?;
        match changed {
            Some(row) => user_from_row(&row),
            // Already a Grafana Admin (left alone, as sled does), or missing.
            None => self.user_uncached(user).await?.ok_or(StoreError::NotFound),
        }
    }

    /// Revoking keeps the last Grafana Admin. The common case locks two rows: the target,
    /// then any other Grafana Admin not locked at that moment (`SKIP LOCKED`, never
    /// waiting), which stays an admin until the commit. When every other admin is locked
    /// (concurrent revocations) the attempt rolls back and retries; after a few, the
    /// revocation locks every admin row in id order, as deletion does, which cannot
    /// deadlock with either.
    async fn revoke_grafana_admin(&self, user: UserId, at: i64) -> StoreResult<UserRecord> {
        for _ in 0..20 {
            if let Some(done) = self.revoke_with_witness(user, at).await? {
                return Ok(done);
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let admins = lock_grafana_admins(&mut tx).await?;
        let row = lock_user(&mut tx, id(user.0))
            .await?
            .ok_or(StoreError::NotFound)?;
        if !row.is_admin {
            return Ok(row);
        }
        check_not_last_admin(&row, &admins)?;
        let record = revoke_in(&mut tx, user, at).await?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        Ok(record)
    }

    /// One attempt of [`Self::revoke_grafana_admin`] with a witness admin, in one
    /// statement: `t` locks the target first (the only step that may wait, holding
    /// nothing), `w` then locks another Grafana Admin without waiting (it reads `t`, so
    /// it runs after it), and the UPDATE applies only if the target is still an admin and
    /// a witness was found (a service account needs none). `None` when every other admin
    /// was locked at that moment (nothing written).
    async fn revoke_with_witness(&self, user: UserId, at: i64) -> StoreResult<Option<UserRecord>> {
        const SQL: &str = concat!(
            "WITH t AS (SELECT id, is_service_account, is_disabled FROM users \
                   WHERE id = $1 FOR UPDATE), \
             w AS (SELECT o.id FROM users o, t \
                   WHERE o.is_admin AND NOT o.is_service_account AND NOT o.is_disabled \
                     AND o.id <> t.id \
                   LIMIT 1 FOR UPDATE OF o SKIP LOCKED) \
             UPDATE users AS u SET is_admin = false, updated = to_timestamp($2) \
             FROM t WHERE u.id = t.id AND u.is_admin \
                 AND (t.is_service_account OR t.is_disabled OR EXISTS (SELECT 1 FROM w)) \
             RETURNING ",
            user_cols!()
        );
        let q = sqlx::query(SQL).bind(id(user.0)).bind(at);
        let changed = self.write_returning(q, None).await?;
        if let Some(row) = changed {
            return user_from_row(&row).map(Some);
        }
        // Nothing changed: not an admin (left alone), missing, or no witness free.
        let row = self
            .user_uncached(user)
            .await?
            .ok_or(StoreError::NotFound)?;
        if !row.is_admin {
            return Ok(Some(row));
        }
        let others: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users \
             WHERE is_admin AND NOT is_service_account AND NOT is_disabled AND id <> $1)",
        )
        .bind(id(user.0))
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        if others {
            Ok(None) // every other admin locked right now: try again
        } else {
            Err(StoreError::LastAdmin)
        }
    }

    /// Disables a Grafana Admin with every enabled admin locked (in id order, as deletion
    /// does): refused when no other enabled admin would stay.
    async fn disable_admin(&self, user: UserId, at: i64) -> StoreResult<UserRecord> {
        const SQL: &str = concat!(
            "UPDATE users AS u SET is_disabled = true, updated = to_timestamp($2) \
             WHERE u.id = $1 RETURNING ",
            user_cols!()
        );
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let admins = lock_grafana_admins(&mut tx).await?;
        let row = lock_user(&mut tx, id(user.0))
            .await?
            .ok_or(StoreError::NotFound)?;
        if row.is_disabled {
            return Ok(row);
        }
        check_not_last_admin(&row, &admins)?;
        let done = sqlx::query(SQL)
            .bind(id(user.0))
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        audit.append(&mut tx).await?;
        tx.commit().await.map_err(db_err)?;
        audit.committed(&mut conn).await?;
        user_from_row(&done)
    }

    /// The user row straight from the database.
    async fn user_uncached(&self, user: UserId) -> StoreResult<Option<UserRecord>> {
        sqlx::query(USER_BY_ID)
            .bind(id(user.0))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    /// [`Self::user_where`], the row stored in the cache.
    async fn cached_user_where(
        &self,
        sql: &'static str,
        value: String,
    ) -> StoreResult<Option<UserRecord>> {
        let ticket = self.cache().ticket();
        let Some(found) = self.user_where(sql, value).await? else {
            return Ok(None);
        };
        let shared = Arc::new(found);
        self.cache().fill_user(ticket, &shared);
        Ok(Some(Arc::unwrap_or_clone(shared)))
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(
        &self,
        user: UserRecord,
        membership: NewMembership,
    ) -> StoreResult<UserRecord> {
        let mut audit = Audit::pending();
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        let mut tx = super::begin(&mut conn).await?;
        let (org_id, role) = match &membership {
            NewMembership::Existing(org, role) => (id(org.0), *role),
            NewMembership::NewOrg(name, role) => {
                // Serialises org creation (every INSERT into orgs conflicts with this mode,
                // reads and foreign-key checks do not): max(id) + 1 is free until commit.
                sqlx::query("LOCK TABLE orgs IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let org: i64 = sqlx::query_scalar(
                    "INSERT INTO orgs (id, name, created, updated) \
                     SELECT greatest(coalesce(max(id), 0) + 1, 2, \
                    (SELECT coalesce(max(org_id), 0) + 1 FROM users)), $1, to_timestamp($2), \
                            to_timestamp($2) \
                     FROM orgs RETURNING id",
                )
                .bind(name)
                .bind(user.created)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
                (org, *role)
            }
        };
        let (scheme, iterations, salt, hash) = password_cols(user.password.as_ref());
        // Unique indexes answer Conflict("login" | "email" | "uid") as the row goes in; the
        // org's foreign key (checked at the end of the statement) OrgNotFound.
        let new_id: i64 = sqlx::query_scalar(
            "INSERT INTO users (uid, login, login_key, email, email_key, name, is_admin, \
                 is_disabled, is_service_account, password_scheme, password_iterations, \
                 password_salt, password_hash, org_id, theme, auth_module, created, updated, \
                 last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 to_timestamp($17), to_timestamp($18), to_timestamp($19)) \
             RETURNING id",
        )
        .bind(&user.uid)
        .bind(&user.login)
        .bind(fold(&user.login))
        .bind(&user.email)
        .bind(fold(&user.email))
        .bind(&user.name)
        .bind(user.is_admin)
        .bind(user.is_disabled)
        .bind(user.is_service_account)
        .bind(scheme)
        .bind(iterations)
        .bind(salt)
        .bind(hash)
        .bind(org_id)
        .bind(&user.theme)
        .bind(&user.auth_module)
        .bind(user.created)
        .bind(user.updated)
        .bind(user.last_seen_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO org_members (user_id, org_id, role, position) VALUES ($1, $2, $3, 0)",
        )
        .bind(new_id)
        .bind(org_id)
        .bind(i16::from(role.to_byte()))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        audit.append_created(&mut tx, new_id).await?;
        tx.commit().await.map_err(db_err)?;
        self.cache().forget_counts();
        audit.committed(&mut conn).await?;
        Ok(UserRecord {
            id: new_id as u64,
            org_id: org_id as u64,
            memberships: vec![Membership {
                org_id: org_id as u64,
                role: role.to_byte(),
            }],
            ..user
        })
    }

    async fn user(&self, user: UserId) -> StoreResult<Option<Arc<UserRecord>>> {
        if let Some(u) = self.cache().user(user.0) {
            return Ok(Some(u));
        }
        let ticket = self.cache().ticket();
        let found = self.user_uncached(user).await?.map(Arc::new);
        if let Some(u) = &found {
            self.cache().fill_user(ticket, u);
        }
        Ok(found)
    }

    async fn user_by_uid(&self, uid: &str) -> StoreResult<Option<UserRecord>> {
        const SQL: &str = concat!("SELECT ", user_cols!(), " FROM users u WHERE u.uid = $1");
        self.user_where(SQL, uid.to_string()).await
    }

    async fn user_by_login(&self, login: &str) -> StoreResult<Option<UserRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.login_key = $1"
        );
        if let Some(u) = self.cache().user_named(login, true) {
            return Ok(Some(u));
        }
        self.cached_user_where(SQL, fold(login)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.email_key = $1"
        );
        if let Some(u) = self.cache().user_named(email, false) {
            return Ok(Some(u));
        }
        self.cached_user_where(SQL, fold(email)).await
    }

    async fn set_password(&self, user: UserId, hash: PasswordHash, at: i64) -> StoreResult<()> {
        let (scheme, iterations, salt, digest) = password_cols(Some(&hash));
        let r = sqlx::query(
            "UPDATE users SET password_scheme = $2, password_iterations = $3, \
                 password_salt = $4, password_hash = $5, updated = to_timestamp($6) \
             WHERE id = $1",
        )
        .bind(id(user.0))
        .bind(scheme)
        .bind(iterations)
        .bind(salt)
        .bind(digest)
        .bind(at);
        let r = self.write_counted(r).await;
        self.cache().forget_user(user.0);
        if r? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn upgrade_password(
        &self,
        user: UserId,
        expected: &PasswordHash,
        new: PasswordHash,
    ) -> StoreResult<bool> {
        let (old_scheme, old_iterations, old_salt, old_hash) = password_cols(Some(expected));
        let (scheme, iterations, salt, hash) = password_cols(Some(&new));
        // The compare-and-swap is the WHERE: a concurrent change of the hash makes it miss.
        let r = sqlx::query(
            "UPDATE users SET password_scheme = $2, password_iterations = $3, \
                 password_salt = $4, password_hash = $5 \
             WHERE id = $1 AND password_scheme = $6 AND password_iterations = $7 \
                 AND password_salt = $8 AND password_hash = $9",
        )
        .bind(id(user.0))
        .bind(scheme)
        .bind(iterations)
        .bind(salt)
        .bind(hash)
        .bind(old_scheme)
        .bind(old_iterations)
        .bind(old_salt)
        .bind(old_hash)
        .execute(self.pool())
        .await;
        self.cache().forget_user(user.0);
        // Bookkeeping of the sign-in (a stronger hash of the same password): not audited.
        Ok(r.map_err(db_err)?.rows_affected() == 1)
    }

    async fn set_disabled(&self, user: UserId, disabled: bool, at: i64) -> StoreResult<UserRecord> {
        // One statement for everyone but a Grafana Admin being disabled, who must leave
        // another enabled one behind (`disable_admin`).
        const SQL: &str = concat!(
            "UPDATE users AS u SET is_disabled = $2, updated = to_timestamp($3) \
             WHERE u.id = $1 AND u.is_disabled <> $2 \
               AND NOT ($2 AND u.is_admin AND NOT u.is_service_account) RETURNING ",
            user_cols!()
        );
        let q = sqlx::query(SQL).bind(id(user.0)).bind(disabled).bind(at);
        let changed = self.write_returning(q, None).await;
        self.cache().forget_user(user.0);
        if let Some(row) = changed? {
            return user_from_row(&row);
        }
        // Already so (the row is left alone, as sled does), missing, or an admin.
        let row = self
            .user_uncached(user)
            .await?
            .ok_or(StoreError::NotFound)?;
        if !disabled || row.is_disabled || !row.is_admin || row.is_service_account {
            return Ok(row);
        }
        let r = self.disable_admin(user, at).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn update_profile(
        &self,
        user: UserId,
        change: &ProfileChange,
        at: i64,
    ) -> StoreResult<UserRecord> {
        // One statement: each column is the new value or stays what the row holds when the
        // statement runs; the unique indexes re-index login and email (Conflict).
        const SQL: &str = concat!(
            "UPDATE users AS u SET login = coalesce($2, u.login), \
                 login_key = coalesce($3, u.login_key), email = coalesce($4, u.email), \
                 email_key = coalesce($5, u.email_key), name = coalesce($6, u.name), \
                 theme = coalesce($7, u.theme), auth_module = coalesce($8, u.auth_module), \
                 updated = to_timestamp($9) \
             WHERE u.id = $1 RETURNING ",
            user_cols!()
        );
        let row = sqlx::query(SQL)
            .bind(id(user.0))
            .bind(change.login.as_deref())
            .bind(change.login.as_deref().map(fold))
            .bind(change.email.as_deref())
            .bind(change.email.as_deref().map(fold))
            .bind(change.name.as_deref())
            .bind(change.theme.as_deref())
            .bind(change.auth_module.as_deref())
            .bind(at);
        let row = self.write_returning(row, None).await;
        self.cache().forget_user(user.0);
        let row = row?.ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    async fn set_memberships(
        &self,
        user: UserId,
        memberships: &[(OrgId, OrgRole)],
        at: i64,
    ) -> StoreResult<UserRecord> {
        // One membership per org: the first one given wins (as `role_in` reads a list).
        let mut orgs: Vec<i64> = Vec::with_capacity(memberships.len());
        let mut roles: Vec<i16> = Vec::with_capacity(memberships.len());
        for (org, role) in memberships {
            if !orgs.contains(&id(org.0)) {
                orgs.push(id(org.0));
                roles.push(i16::from(role.to_byte()));
            }
        }
        let r = self.set_memberships_in(user, &orgs, &roles, at).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn set_grafana_admin(
        &self,
        user: UserId,
        admin: bool,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let r = if admin {
            self.grant_grafana_admin(user, at).await
        } else {
            self.revoke_grafana_admin(user, at).await
        };
        self.cache().forget_user(user.0);
        r
    }

    async fn delete_user(&self, user: UserId) -> StoreResult<Option<UserRecord>> {
        let mut audit = Audit::pending();
        let r: StoreResult<_> = async {
            let mut conn = self.pool().acquire().await.map_err(db_err)?;
            let mut tx = super::begin(&mut conn).await?;
            let gone = delete_user_in(&mut tx, user, false).await?;
            if gone.is_some() {
                audit.append(&mut tx).await?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok((gone, conn))
        }
        .await;
        self.cache().forget_user_rows(user.0);
        let (gone, mut conn) = r?;
        audit.committed(&mut conn).await?;
        Ok(gone)
    }

    async fn search_users(
        &self,
        query: &str,
        offset: u64,
        limit: u64,
        service_accounts: bool,
    ) -> StoreResult<UserPage> {
        // Login and email match on their folded keys, the name on lower(); ordered by the
        // folded login byte-wise (as sled's login index).
        const PAGE: &str = concat!(
            "WITH page AS ( \
                 SELECT id, login_key, count(*) OVER () AS total FROM users \
                 WHERE is_service_account = $1 AND ($2 = '' OR strpos(login_key, $2) > 0 \
                     OR strpos(email_key, $2) > 0 OR strpos(lower(name), $2) > 0) \
                 ORDER BY login_key COLLATE \"C\", id OFFSET $3 LIMIT $4) \
             SELECT p.total, ",
            user_cols!(),
            " FROM page p JOIN users u ON u.id = p.id ORDER BY p.login_key COLLATE \"C\", p.id"
        );
        const TOTAL: &str = "SELECT count(*) FROM users \
             WHERE is_service_account = $1 AND ($2 = '' OR strpos(login_key, $2) > 0 \
                 OR strpos(email_key, $2) > 0 OR strpos(lower(name), $2) > 0)";
        let q = fold(query);
        let rows = sqlx::query(PAGE)
            .bind(service_accounts)
            .bind(&q)
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        let mut page = UserPage::default();
        for row in &rows {
            page.total = col_u64(row, "total")?;
            page.users.push(user_from_row(row)?);
        }
        if rows.is_empty() && offset > 0 {
            // Past the end: the page carries no total, count on its own.
            let n: i64 = sqlx::query_scalar(TOTAL)
                .bind(service_accounts)
                .bind(&q)
                .fetch_one(self.pool())
                .await
                .map_err(db_err)?;
            page.total = u64::try_from(n).unwrap_or(0);
        }
        Ok(page)
    }

    async fn touch_last_seen(&self, user: UserId, at: i64) -> StoreResult<()> {
        // Best effort, one statement with the active-user counts; never moves backwards.
        let r = self.touch_last_seen_row(user, at).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn org(&self, org: OrgId) -> StoreResult<Option<OrgRecord>> {
        let row = sqlx::query(concat!(select_orgs!(), " WHERE id = $1"))
            .bind(id(org.0))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        row.as_ref().map(org_from_row).transpose()
    }

    async fn ensure_org(&self, org: OrgId, name: &str, at: i64) -> StoreResult<()> {
        // The INSERT waits for a user's new org being created (LOCK TABLE in create_user),
        // then leaves an existing org alone.
        let q = sqlx::query(
            "INSERT INTO orgs (id, name, created, updated) \
             VALUES ($1, $2, to_timestamp($3), to_timestamp($3)) ON CONFLICT (id) DO NOTHING \
             RETURNING id",
        )
        .bind(id(org.0))
        .bind(name)
        .bind(at);
        let r = self.write_returning(q, Some("id")).await;
        self.cache().forget_counts();
        r?;
        Ok(())
    }

    async fn set_current_org(&self, user: UserId, org: OrgId) -> StoreResult<UserRecord> {
        let r = self.set_current_org_in(user, org).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn create_org(&self, name: &str, at: i64, creator: UserId) -> StoreResult<OrgRecord> {
        let r = self.create_org_in(name, at, creator).await;
        self.cache().forget_user(creator.0);
        self.cache().forget_counts();
        r
    }

    async fn org_by_name(&self, name: &str) -> StoreResult<Option<OrgRecord>> {
        self.org_by_name_in(name).await
    }

    async fn search_orgs(
        &self,
        query: &str,
        name: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> StoreResult<Vec<OrgRecord>> {
        self.search_orgs_in(query, name, offset, limit).await
    }

    async fn rename_org(&self, org: OrgId, name: &str, at: i64) -> StoreResult<OrgRecord> {
        self.rename_org_in(org, name, at).await
    }

    async fn add_membership(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let r = self.add_membership_in(user, org, role, at).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn set_membership_role(
        &self,
        user: UserId,
        org: OrgId,
        role: OrgRole,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let r = self.set_membership_role_in(user, org, role, at).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn remove_membership(
        &self,
        user: UserId,
        org: OrgId,
        at: i64,
    ) -> StoreResult<UserRecord> {
        let r = self.remove_membership_in(user, org, at).await;
        self.cache().forget_user(user.0);
        r
    }

    async fn org_members(&self, org: OrgId) -> StoreResult<Vec<(UserRecord, OrgRole)>> {
        self.org_members_in(org).await
    }

    async fn delete_org(&self, org: OrgId, secret_prefixes: &[String]) -> StoreResult<()> {
        let r = self.delete_org_in(org, secret_prefixes).await;
        // Members, moved users, service accounts, their keys and tokens, the counts: this
        // node's copies go now (other nodes follow the change log).
        self.cache().forget_all();
        r
    }

    async fn org_address(&self, org: OrgId) -> StoreResult<Option<OrgAddressRecord>> {
        self.org_address_in(org).await
    }

    async fn set_org_address(&self, org: OrgId, address: &OrgAddressRecord) -> StoreResult<()> {
        self.set_org_address_in(org, address).await
    }
}

#[async_trait]
impl StatsStore for PgStore {
    async fn counts(&self) -> StoreResult<Counts> {
        if let Some(c) = self.cache().counts() {
            return Ok(c);
        }
        let ticket = self.cache().ticket();
        let c = self.counts_uncached().await?;
        self.cache().fill_counts(ticket, &c);
        Ok(c)
    }

    async fn activity(&self, w: ActivityWindows) -> StoreResult<Activity> {
        self.activity_uncached(w).await
    }

    async fn record_sign_in(&self, at: i64, ok: bool) -> StoreResult<()> {
        self.record_sign_in_row(at, ok).await
    }

    async fn activity_series(
        &self,
        hours_from: i64,
        days_from: i64,
    ) -> StoreResult<Vec<SeriesBucket>> {
        self.activity_series_rows(hours_from, days_from).await
    }

    async fn prune_activity_series(&self, hours_before: i64, days_before: i64) -> StoreResult<()> {
        self.prune_activity_series_rows(hours_before, days_before)
            .await
    }
}

impl PgStore {
    async fn counts_uncached(&self) -> StoreResult<Counts> {
        // Users by their highest role over their memberships (none: no_role); service
        // accounts apart. api_keys holds legacy keys and service-account tokens alike.
        let row = sqlx::query(
            "WITH t AS (SELECT user_id, max(role) AS top FROM org_members GROUP BY user_id), \
             u AS ( \
                 SELECT u.is_admin, u.is_service_account AS sa, t.top \
                 FROM users u LEFT JOIN t ON t.user_id = u.id) \
             SELECT \
                 count(*) FILTER (WHERE NOT sa) AS users, \
                 count(*) FILTER (WHERE NOT sa AND is_admin) AS grafana_admins, \
                 count(*) FILTER (WHERE NOT sa AND top = 3) AS admins, \
                 count(*) FILTER (WHERE NOT sa AND top = 2) AS editors, \
                 count(*) FILTER (WHERE NOT sa AND top = 1) AS viewers, \
                 count(*) FILTER (WHERE NOT sa AND coalesce(top, 0) = 0) AS no_role, \
                 count(*) FILTER (WHERE sa) AS service_accounts, \
                 (SELECT count(*) FROM orgs) AS orgs, \
                 (SELECT count(*) FROM api_keys) AS api_keys, \
                 (SELECT count(*) FROM datasources) AS datasources, \
                 (SELECT count(*) FROM dashboards) AS dashboards, \
                 (SELECT coalesce(sum(cardinality(tags)), 0)::bigint FROM dashboards) AS tags, \
                 (SELECT count(*) FROM folders) AS folders, \
                 (SELECT count(*) FROM alerts) AS alerts \
             FROM u",
        )
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        Ok(Counts {
            users: col_u64(&row, "users")?,
            grafana_admins: col_u64(&row, "grafana_admins")?,
            orgs: col_u64(&row, "orgs")?,
            admins: col_u64(&row, "admins")?,
            editors: col_u64(&row, "editors")?,
            viewers: col_u64(&row, "viewers")?,
            no_role: col_u64(&row, "no_role")?,
            service_accounts: col_u64(&row, "service_accounts")?,
            api_keys: col_u64(&row, "api_keys")?,
            datasources: col_u64(&row, "datasources")?,
            dashboards: col_u64(&row, "dashboards")?,
            folders: col_u64(&row, "folders")?,
            tags: col_u64(&row, "tags")?,
            alerts: col_u64(&row, "alerts")?,
        })
    }

    async fn activity_uncached(&self, w: ActivityWindows) -> StoreResult<Activity> {
        // Users seen at least once, not service accounts, by activity bucket of their
        // highest role: 0 admins, 1 editors, 2 viewers and no role (records::activity_bucket).
        let rows = sqlx::query(
            "WITH u AS ( \
                 SELECT u.last_seen_at AS seen, \
                     CASE (SELECT max(m.role) FROM org_members m WHERE m.user_id = u.id) \
                         WHEN 3 THEN 0 WHEN 2 THEN 1 ELSE 2 END AS bucket \
                 FROM users u \
                 WHERE NOT u.is_service_account AND u.last_seen_at IS NOT NULL) \
             SELECT bucket, \
                 count(*) FILTER (WHERE seen > to_timestamp($1)) AS active, \
                 count(*) FILTER (WHERE seen > to_timestamp($2)) AS daily, \
                 count(*) FILTER (WHERE seen >= to_timestamp($3)) AS monthly \
             FROM u GROUP BY bucket",
        )
        .bind(w.active_after)
        .bind(w.daily_after)
        .bind(w.month_start)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let mut a = Activity::default();
        for row in &rows {
            let bucket: i32 = col(row, "bucket")?;
            let b = usize::try_from(bucket)
                .ok()
                .filter(|b| *b < 3)
                .ok_or_else(|| StoreError::Codec(format!("activity bucket {bucket}")))?;
            a.active[b] = col_u64(row, "active")?;
            a.daily[b] = col_u64(row, "daily")?;
            a.monthly_active_users += col_u64(row, "monthly")?;
        }
        let sessions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sessions WHERE revoked_at IS NULL \
                 AND greatest(seen_at, rotated_at) > to_timestamp($1::float8 / 1000)",
        )
        .bind(w.sessions_after_ms)
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        a.daily_active_sessions = u64::try_from(sessions).unwrap_or(0);
        Ok(a)
    }
}

#[async_trait]
impl MetaStore for PgStore {
    async fn get_meta(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)
    }

    async fn init_meta(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        // A second node inserting at once waits for the first one's commit, then inserts
        // nothing and reads the value that won.
        let q = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING \
             RETURNING value",
        )
        .bind(key)
        .bind(value);
        if let Some(row) = self.write_returning(q, None).await? {
            return col(&row, "value");
        }
        self.get_meta(key)
            .await?
            .ok_or_else(|| StoreError::Io(format!("meta {key} vanished")))
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        )
        .bind(key)
        .bind(value);
        self.write_counted(q).await?;
        Ok(())
    }
}
