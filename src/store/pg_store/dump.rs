//! PostgreSQL: export and import of every record (`Store::export`/`import`), what
//! `tollgate migrate --to postgres` writes with.
//!
//! **Export** reads every table in one `REPEATABLE READ, READ ONLY` transaction: one
//! consistent snapshot, even while nodes write. The active DEK is the row in state
//! `active`.
//!
//! **Import** is one transaction. It locks every record table (`ACCESS EXCLUSIVE`: nodes
//! wait for it), refuses a store that holds anything unless `replace` (`Conflict("store")`),
//! empties the tables (`TRUNCATE ... RESTART IDENTITY CASCADE`, and `dek_ids` restarts),
//! writes every row with its ids, times and ciphertexts, moves each sequence to just after
//! the highest imported id and announces every cached topic. The audit log's events keep
//! their numbers and hashes and the chain row becomes the dump's (anchor and head), so the
//! log verifies after the import and the next append follows the same head. The restarts give the
//! sequences new storage inside the transaction, so even `setval` (otherwise never rolled
//! back) is undone with it: a failed import leaves the store as it was.
//!
//! What the schema derives is not written: DEK reference counts and [`Counts`] are queries
//! over the rows; a dashboard's `alert_panels` and an alert's `dashboard_id` are read
//! through the alerts' (org, dashboard uid) key; a role's internal id is the identity's.
//! Sessions and service-account tokens whose user is not in the dump are skipped with a
//! warning (the foreign keys refuse them): [`Dump::remove_orphans`] lets a caller count
//! them first. Row conversions are the other files' (`*_row`, `*_cols!`/`select_*!`);
//! those of DEKs, settings overrides, the license and roles are repeated here, as their
//! files keep them private.
//!
//! [`Counts`]: crate::store::Counts

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;

use super::activity::{insert_series, select_series, series_row};
use super::api_keys::{key_cols, key_from_row};
use super::audit::{
    chain_from_row, event_from_row, insert_event, put_chain, select_chain, select_events,
};
use super::dashboards::{
    alert_row, dashboard_row, folder_row, select_alerts, select_dashboards, select_folders,
};
use super::datasources::{ds_cols, ds_row, name_key};
use super::notifiers::{
    notifier_row, plugin_row, run_row, select_notifiers, select_plugins, select_runs,
};
use super::quotas::{owner_params, quota_row, select_quotas};
use super::roles::{role_row, select_roles};
use super::secrets::{col, db_i64, dek_id, dek_row, select_deks, state_name};
use super::sessions::{session_cols, session_from_row};
use super::settings::override_row;
use super::users::{fold, org_from_row, password_cols, select_orgs, user_cols, user_from_row};
use super::{announce_in, db_err, PgStore};
use crate::store::{
    DekState, Dump, RenewalRecord, SealedSecret, StoreError, StoreResult, StoredLicense, Topic,
};

/// Every table that holds records, parents first: all of the schema's but `change_epochs`
/// (the import bumps those counters instead) and sqlx's `_sqlx_migrations`. A test checks
/// the list against the schema, so a new table cannot be forgotten here.
macro_rules! record_tables {
    () => {
        "orgs, org_addresses, users, org_members, meta, sessions, api_keys, deks, secrets, reencrypt_cursor, \
         datasources, setting_overrides, license, folders, dashboards, alerts, \
         plugin_settings, notifiers, roles, role_permissions, role_assignments, \
         provisioning_runs, quotas, activity_series, audit_events, audit_chain"
    };
}

pub(super) const RECORD_TABLES: &str = record_tables!();

/// The topics whose per-node caches an import changes.
const TOPICS: [Topic; 4] = [
    Topic::Roles,
    Topic::Settings,
    Topic::DataKeys,
    Topic::License,
];

/// `setval` so that the table's identity continues after its highest id.
macro_rules! continue_after {
    ($table:literal) => {
        concat!(
            "SELECT setval(pg_get_serial_sequence('",
            $table,
            "', 'id'), coalesce(max(id), 0) + 1, false) FROM ",
            $table
        )
    };
}

const SEQUENCES: [&str; 9] = [
    // A role assignment may name a deleted user: a new user must not inherit it.
    "SELECT setval(pg_get_serial_sequence('users', 'id'), \
     greatest(coalesce(max(id), 0), \
              (SELECT coalesce(max(user_id), 0) FROM role_assignments)) + 1, false) \
     FROM users",
    continue_after!("sessions"),
    continue_after!("api_keys"),
    continue_after!("datasources"),
    continue_after!("folders"),
    continue_after!("dashboards"),
    continue_after!("alerts"),
    continue_after!("notifiers"),
    "SELECT setval('dek_ids', coalesce(max(id), 0) + 1, false) FROM deks",
];

// The conversions of secrets.rs, settings.rs and roles.rs, which keep theirs private.

async fn license_rows(
    c: &mut PgConnection,
) -> StoreResult<(Option<StoredLicense>, Option<RenewalRecord>)> {
    let row = sqlx::query(
        "SELECT token, extract(epoch FROM stored_at)::bigint AS stored_at, \
         extract(epoch FROM renewal_at)::bigint AS renewal_at, renewal_trigger, renewal_ok, \
         renewal_error FROM license",
    )
    .fetch_optional(&mut *c)
    .await
    .map_err(db_err)?;
    let Some(r) = row else {
        return Ok((None, None));
    };
    let token: Option<String> = col(&r, "token")?;
    let license = match (token, col::<Option<i64>>(&r, "stored_at")?) {
        (Some(token), Some(stored_at)) => Some(StoredLicense { token, stored_at }),
        _ => None,
    };
    let renewal = match col::<Option<i64>>(&r, "renewal_at")? {
        Some(at) => Some(RenewalRecord {
            at,
            trigger: col(&r, "renewal_trigger")?,
            ok: col(&r, "renewal_ok")?,
            error: col(&r, "renewal_error")?,
        }),
        None => None,
    };
    Ok((license, renewal))
}

async fn all<T>(
    conn: &mut PgConnection,
    sql: &'static str,
    row: fn(&PgRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let rows = sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter().map(row).collect()
}

pub(super) async fn export(s: &PgStore) -> StoreResult<Dump> {
    let mut tx = s
        .pool()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(db_err)?;
    let c: &mut PgConnection = &mut tx;
    let deks = all(c, concat!(select_deks!(), " ORDER BY id"), dek_row).await?;
    let (license, renewal) = license_rows(c).await?;
    let dump = Dump {
        orgs: all(c, concat!(select_orgs!(), " ORDER BY id"), org_from_row).await?,
        org_addresses: super::orgs::all_org_addresses(c).await?,
        users: all(
            c,
            concat!("SELECT ", user_cols!(), " FROM users u ORDER BY u.id"),
            user_from_row,
        )
        .await?,
        meta: all(c, "SELECT key, value FROM meta ORDER BY key", |r| {
            Ok((col(r, "key")?, col(r, "value")?))
        })
        .await?,
        sessions: all(
            c,
            concat!("SELECT ", session_cols!(), " FROM sessions s ORDER BY s.id"),
            session_from_row,
        )
        .await?,
        api_keys: all(
            c,
            concat!("SELECT ", key_cols!(), " FROM api_keys k ORDER BY k.id"),
            key_from_row,
        )
        .await?,
        active_dek: deks
            .iter()
            .find(|k| k.state == DekState::Active)
            .map(|k| k.id),
        deks,
        secrets: all(
            c,
            "SELECT key, dek_id, ciphertext FROM secrets ORDER BY key",
            |r| {
                Ok((
                    col(r, "key")?,
                    SealedSecret {
                        dek_id: dek_id(col(r, "dek_id")?)?,
                        ciphertext: col(r, "ciphertext")?,
                    },
                ))
            },
        )
        .await?,
        reencrypt_cursor: sqlx::query_scalar("SELECT cursor FROM reencrypt_cursor")
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?,
        datasources: all(
            c,
            concat!("SELECT ", ds_cols!(), " FROM datasources ORDER BY id"),
            ds_row,
        )
        .await?,
        settings: all(
            c,
            "SELECT section, key, value, secret FROM setting_overrides ORDER BY section, key",
            override_row,
        )
        .await?,
        license,
        renewal,
        folders: all(
            c,
            concat!(select_folders!(), " ORDER BY org_id, id"),
            folder_row,
        )
        .await?,
        dashboards: all(
            c,
            concat!(select_dashboards!(), " ORDER BY d.org_id, d.id"),
            dashboard_row,
        )
        .await?,
        alerts: all(
            c,
            concat!(select_alerts!(), " ORDER BY a.org_id, a.id"),
            alert_row,
        )
        .await?,
        plugin_settings: all(
            c,
            concat!(select_plugins!(), " ORDER BY org_id, plugin_id"),
            plugin_row,
        )
        .await?,
        notifiers: all(
            c,
            concat!(select_notifiers!(), " ORDER BY org_id, id"),
            notifier_row,
        )
        .await?,
        roles: all(
            c,
            concat!(select_roles!(), " ORDER BY coalesce(r.org_id, 0), r.uid"),
            role_row,
        )
        .await?,
        provisioning_runs: all(c, concat!(select_runs!(), " ORDER BY kind"), run_row).await?,
        quotas: all(
            c,
            concat!(select_quotas!(), " ORDER BY org_id, user_id, target"),
            quota_row,
        )
        .await?,
        activity_series: all(
            c,
            concat!(select_series!(), " ORDER BY span, start"),
            series_row,
        )
        .await?,
        audit_events: all(
            c,
            concat!(select_events!(), " ORDER BY seq"),
            event_from_row,
        )
        .await?,
        audit_chain: {
            let row = sqlx::query(select_chain!())
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?;
            row.as_ref()
                .map(chain_from_row)
                .transpose()?
                .unwrap_or_default()
        },
    };
    tx.commit().await.map_err(db_err)?;
    Ok(dump)
}

pub(super) async fn import(s: &PgStore, d: &Dump, replace: bool) -> StoreResult<()> {
    check_active_dek(d)?;
    let mut tx = s.pool().begin().await.map_err(db_err)?;
    let c: &mut PgConnection = &mut tx;
    sqlx::query(concat!(
        "LOCK TABLE ",
        record_tables!(),
        " IN ACCESS EXCLUSIVE MODE"
    ))
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    if !replace && holds_records(c).await? {
        return Err(StoreError::Conflict("store"));
    }
    sqlx::query(concat!(
        "TRUNCATE ",
        record_tables!(),
        " RESTART IDENTITY CASCADE"
    ))
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    sqlx::query("ALTER SEQUENCE dek_ids RESTART")
        .execute(&mut *c)
        .await
        .map_err(db_err)?;

    insert_users(c, d).await?;
    insert_meta(c, d).await?;
    insert_sessions_and_keys(c, d).await?;
    insert_encryption(c, d).await?;
    insert_datasources_settings_license(c, d).await?;
    insert_dashboards(c, d).await?;
    insert_plugins_and_notifiers(c, d).await?;
    insert_roles(c, d).await?;
    insert_provisioning_runs(c, d).await?;
    insert_quotas(c, d).await?;
    insert_series(c, &d.activity_series).await?;
    for e in &d.audit_events {
        insert_event(&mut *c, e).await?;
    }
    put_chain(&mut *c, &d.audit_chain).await?;

    for sql in SEQUENCES {
        sqlx::query(sql).execute(&mut *c).await.map_err(db_err)?;
    }
    for topic in TOPICS {
        announce_in(&mut tx, topic).await?;
    }
    let r = tx.commit().await.map_err(db_err);
    s.cache().forget_all();
    r
}

/// Whether any record table holds a row (the audit chain's one row always there).
async fn holds_records(c: &mut PgConnection) -> StoreResult<bool> {
    let any = RECORD_TABLES
        .split(',')
        .map(str::trim)
        .filter(|t| *t != "audit_chain")
        .map(|t| format!("EXISTS (SELECT 1 FROM {t})"))
        .collect::<Vec<_>>()
        .join(" OR ");
    // The table names are the constant above, not input.
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {any}")))
        .fetch_one(&mut *c)
        .await
        .map_err(db_err)
}

/// The active DEK is a row state here and a pointer in the dump: they must agree (the
/// embedded store changes both in one transaction), or the import would change which key
/// encrypts.
fn check_active_dek(d: &Dump) -> StoreResult<()> {
    let marked: Vec<u32> = d
        .deks
        .iter()
        .filter(|k| k.state == DekState::Active)
        .map(|k| k.id)
        .collect();
    if marked != d.active_dek.into_iter().collect::<Vec<_>>() {
        return Err(StoreError::Codec(format!(
            "the dump's active data key ({:?}) is not the one key in state active ({marked:?})",
            d.active_dek
        )));
    }
    Ok(())
}

async fn insert_users(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for o in &d.orgs {
        sqlx::query(
            "INSERT INTO orgs (id, name, created, updated) \
             VALUES ($1, $2, to_timestamp($3), to_timestamp($4))",
        )
        .bind(db_i64(o.id)?)
        .bind(o.name.as_str())
        .bind(o.created)
        .bind(o.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for (org, a) in &d.org_addresses {
        super::orgs::put_org_address(*org, a)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
    }
    for u in &d.users {
        let (scheme, iterations, salt, hash) = password_cols(u.password.as_ref());
        sqlx::query(
            "INSERT INTO users (id, uid, login, login_key, email, email_key, name, is_admin, \
                 is_disabled, is_service_account, password_scheme, password_iterations, \
                 password_salt, password_hash, org_id, theme, auth_module, created, updated, \
                 last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, to_timestamp($18), to_timestamp($19), to_timestamp($20))",
        )
        .bind(db_i64(u.id)?)
        .bind(u.uid.as_str())
        .bind(u.login.as_str())
        .bind(fold(&u.login))
        .bind(u.email.as_str())
        .bind(fold(&u.email))
        .bind(u.name.as_str())
        .bind(u.is_admin)
        .bind(u.is_disabled)
        .bind(u.is_service_account)
        .bind(scheme)
        .bind(iterations)
        .bind(salt)
        .bind(hash)
        .bind(db_i64(u.org_id)?)
        .bind(u.theme.as_str())
        .bind(u.auth_module.as_str())
        .bind(u.created)
        .bind(u.updated)
        .bind(u.last_seen_at)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
        // In their order; one per org, the first one winning (as `role_in` reads the list).
        let mut orgs: Vec<i64> = Vec::with_capacity(u.memberships.len());
        let mut roles: Vec<i16> = Vec::with_capacity(u.memberships.len());
        for m in &u.memberships {
            let org = db_i64(m.org_id)?;
            if !orgs.contains(&org) {
                orgs.push(org);
                roles.push(i16::from(m.role));
            }
        }
        sqlx::query(
            "INSERT INTO org_members (user_id, org_id, role, position) \
             SELECT $1, m.org_id, m.role, m.position - 1 \
             FROM unnest($2::bigint[], $3::smallint[]) WITH ORDINALITY \
                  AS m(org_id, role, position)",
        )
        .bind(db_i64(u.id)?)
        .bind(&orgs)
        .bind(&roles)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_meta(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for (key, value) in &d.meta {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
            .bind(key.as_str())
            .bind(value.as_slice())
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_sessions_and_keys(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    let users = d.user_ids();
    let mut orphans = crate::store::Orphans::default();
    for s in &d.sessions {
        if Dump::is_orphan_session(&users, s) {
            orphans.sessions += 1;
            continue;
        }
        sqlx::query(
            "INSERT INTO sessions (id, user_id, token_hash, prev_token_hash, prev_valid_until, \
                 client_ip, user_agent, auth_module, created_at, seen_at, rotated_at, revoked_at) \
             VALUES ($1, $2, $3, $4, to_timestamp($5::float8 / 1000), $6, $7, $8, \
                 to_timestamp($9::float8 / 1000), to_timestamp($10::float8 / 1000), \
                 to_timestamp($11::float8 / 1000), to_timestamp($12::float8 / 1000))",
        )
        .bind(db_i64(s.id)?)
        .bind(db_i64(s.user_id)?)
        .bind(&s.token_hash[..])
        .bind(s.prev_token_hash.as_ref().map(|h| &h[..]))
        .bind(s.prev_valid_until_ms)
        .bind(s.client_ip.as_str())
        .bind(s.user_agent.as_str())
        .bind(s.auth_module.as_str())
        .bind(s.created_ms)
        .bind(s.seen_ms)
        .bind(s.rotated_ms)
        .bind(s.revoked_ms)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for k in &d.api_keys {
        if Dump::is_orphan_token(&users, k) {
            orphans.tokens += 1;
            continue;
        }
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, role, hash, expires, created, last_used, \
                 service_account_id) \
             VALUES ($1, $2, $3, $4, $5, to_timestamp($6), to_timestamp($7), \
                 to_timestamp($8), $9)",
        )
        .bind(db_i64(k.id)?)
        .bind(db_i64(k.org_id)?)
        .bind(k.name.as_str())
        .bind(i16::from(k.role))
        .bind(&k.hash[..])
        .bind(k.expires)
        .bind(k.created)
        .bind(k.last_used)
        .bind(k.service_account_id.map(db_i64).transpose()?)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    if !orphans.is_empty() {
        tracing::warn!(
            sessions = orphans.sessions,
            tokens = orphans.tokens,
            "import: skipped the sessions and service-account tokens of users the dump \
             does not hold"
        );
    }
    Ok(())
}

async fn insert_encryption(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for k in &d.deks {
        sqlx::query(
            "INSERT INTO deks (id, state, created, retired, kek_id, wrapped, reserved) \
             VALUES ($1, $2, to_timestamp($3), to_timestamp($4), $5, $6, $7)",
        )
        .bind(i64::from(k.id))
        .bind(state_name(k.state))
        .bind(k.created)
        .bind(k.retired)
        .bind(k.kek_id.as_str())
        .bind(k.wrapped.as_slice())
        .bind(db_i64(k.reserved)?)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for (key, s) in &d.secrets {
        sqlx::query("INSERT INTO secrets (key, dek_id, ciphertext) VALUES ($1, $2, $3)")
            .bind(key.as_str())
            .bind(i64::from(s.dek_id))
            .bind(s.ciphertext.as_slice())
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
    }
    if let Some(cursor) = &d.reencrypt_cursor {
        sqlx::query("INSERT INTO reencrypt_cursor (singleton, cursor) VALUES (true, $1)")
            .bind(cursor.as_str())
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_datasources_settings_license(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for ds in &d.datasources {
        sqlx::query(
            "INSERT INTO datasources (id, org_id, uid, name, name_key, type, access, url, \
                 \"user\", database, basic_auth, basic_auth_user, with_credentials, is_default, \
                 json_data, secure_fields, version, read_only, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::json, \
                 $16, $17, $18, to_timestamp($19), to_timestamp($20))",
        )
        .bind(db_i64(ds.id)?)
        .bind(db_i64(ds.org_id)?)
        .bind(ds.uid.as_str())
        .bind(ds.name.as_str())
        .bind(name_key(&ds.name))
        .bind(ds.ds_type.as_str())
        .bind(ds.access.as_str())
        .bind(ds.url.as_str())
        .bind(ds.user.as_str())
        .bind(ds.database.as_str())
        .bind(ds.basic_auth)
        .bind(ds.basic_auth_user.as_str())
        .bind(ds.with_credentials)
        .bind(ds.is_default)
        .bind(ds.json_data.as_str())
        .bind(ds.secure_fields.as_slice())
        .bind(db_i64(ds.version)?)
        .bind(ds.read_only)
        .bind(ds.created)
        .bind(ds.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for o in &d.settings {
        sqlx::query(
            "INSERT INTO setting_overrides (section, key, value, secret) VALUES ($1, $2, $3, $4)",
        )
        .bind(o.section.as_str())
        .bind(o.key.as_str())
        .bind(o.value.as_deref())
        .bind(o.secret)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    if d.license.is_some() || d.renewal.is_some() {
        let (l, r) = (d.license.as_ref(), d.renewal.as_ref());
        sqlx::query(
            "INSERT INTO license (singleton, token, stored_at, renewal_at, renewal_trigger, \
                 renewal_ok, renewal_error) \
             VALUES (true, $1, to_timestamp($2), to_timestamp($3), $4, $5, $6)",
        )
        .bind(l.map(|l| l.token.as_str()))
        .bind(l.map(|l| l.stored_at))
        .bind(r.map(|r| r.at))
        .bind(r.map(|r| r.trigger.as_str()))
        .bind(r.map(|r| r.ok))
        .bind(r.map(|r| r.error.as_str()))
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_dashboards(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for f in &d.folders {
        sqlx::query(
            "INSERT INTO folders (id, org_id, uid, title, created, updated) \
             VALUES ($1, $2, $3, $4, to_timestamp($5), to_timestamp($6))",
        )
        .bind(db_i64(f.id)?)
        .bind(db_i64(f.org_id)?)
        .bind(f.uid.as_str())
        .bind(f.title.as_str())
        .bind(f.created)
        .bind(f.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for x in &d.dashboards {
        sqlx::query(
            "INSERT INTO dashboards (id, org_id, uid, title, tags, folder_uid, version, json, \
                 provider, file, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json, $9, $10, to_timestamp($11), \
                 to_timestamp($12))",
        )
        .bind(db_i64(x.id)?)
        .bind(db_i64(x.org_id)?)
        .bind(x.uid.as_str())
        .bind(x.title.as_str())
        .bind(x.tags.as_slice())
        .bind(x.folder_uid.as_str())
        .bind(db_i64(x.version)?)
        .bind(x.json.as_str())
        .bind(x.provider.as_str())
        .bind(x.file.as_str())
        .bind(x.created)
        .bind(x.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for a in &d.alerts {
        sqlx::query(
            "INSERT INTO alerts (id, org_id, dashboard_uid, panel_id, name, state, paused, \
                 new_state_date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, to_timestamp($8))",
        )
        .bind(db_i64(a.id)?)
        .bind(db_i64(a.org_id)?)
        .bind(a.dashboard_uid.as_str())
        .bind(db_i64(a.panel_id)?)
        .bind(a.name.as_str())
        .bind(a.state.as_str())
        .bind(a.paused)
        .bind(a.new_state_date)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_plugins_and_notifiers(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for p in &d.plugin_settings {
        sqlx::query(
            "INSERT INTO plugin_settings (org_id, plugin_id, enabled, pinned, json_data, \
                 secure_fields, version, updated) \
             VALUES ($1, $2, $3, $4, $5::json, $6, $7, to_timestamp($8))",
        )
        .bind(db_i64(p.org_id)?)
        .bind(p.plugin_id.as_str())
        .bind(p.enabled)
        .bind(p.pinned)
        .bind(p.json_data.as_str())
        .bind(p.secure_fields.as_slice())
        .bind(db_i64(p.version)?)
        .bind(p.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    for n in &d.notifiers {
        sqlx::query(
            "INSERT INTO notifiers (id, org_id, uid, name, kind, is_default, send_reminder, \
                 frequency, disable_resolve_message, settings, secure_fields, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::json, $11, to_timestamp($12), \
                 to_timestamp($13))",
        )
        .bind(db_i64(n.id)?)
        .bind(db_i64(n.org_id)?)
        .bind(n.uid.as_str())
        .bind(n.name.as_str())
        .bind(n.kind.as_str())
        .bind(n.is_default)
        .bind(n.send_reminder)
        .bind(n.frequency.as_str())
        .bind(n.disable_resolve_message)
        .bind(n.settings.as_str())
        .bind(n.secure_fields.as_slice())
        .bind(n.created)
        .bind(n.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_roles(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for r in &d.roles {
        // A global role (org 0) has no org row: NULL.
        let org = if r.org_id == 0 {
            None
        } else {
            Some(db_i64(r.org_id)?)
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO roles (org_id, uid, name, name_key, display_name, description, \
                 \"group\", version, global, basic_roles, users, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12)) \
             RETURNING id",
        )
        .bind(org)
        .bind(r.uid.as_str())
        .bind(r.name.as_str())
        .bind(name_key(&r.name))
        .bind(r.display_name.as_str())
        .bind(r.description.as_str())
        .bind(r.group.as_str())
        .bind(db_i64(r.version)?)
        .bind(r.global)
        .bind(r.basic_roles.as_slice())
        .bind(r.users.as_slice())
        .bind(r.updated)
        .fetch_one(&mut *c)
        .await
        .map_err(db_err)?;
        let (actions, scopes): (Vec<&str>, Vec<&str>) = r
            .permissions
            .iter()
            .map(|(a, s)| (a.as_str(), s.as_str()))
            .unzip();
        sqlx::query(
            "INSERT INTO role_permissions (role_id, ord, action, scope) \
             SELECT $1, t.ord, t.action, t.scope \
             FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(action, scope, ord)",
        )
        .bind(id)
        .bind(actions)
        .bind(scopes)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
        let users = r
            .user_ids
            .iter()
            .map(|u| db_i64(*u))
            .collect::<StoreResult<Vec<i64>>>()?;
        sqlx::query(
            "INSERT INTO role_assignments (role_id, user_id) SELECT $1, unnest($2::bigint[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(users)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_provisioning_runs(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for run in &d.provisioning_runs {
        sqlx::query(
            "INSERT INTO provisioning_runs (kind, at, ok, error, files, applied, removed) \
             VALUES ($1, to_timestamp($2), $3, $4, $5, $6, $7)",
        )
        .bind(run.kind.as_str())
        .bind(run.at)
        .bind(run.ok)
        .bind(run.error.as_str())
        .bind(Json(&run.files))
        .bind(db_i64(run.applied)?)
        .bind(db_i64(run.removed)?)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

async fn insert_quotas(c: &mut PgConnection, d: &Dump) -> StoreResult<()> {
    for q in &d.quotas {
        let (org, user) = owner_params(q)?;
        sqlx::query(
            "INSERT INTO quotas (org_id, user_id, target, \"limit\", updated) \
             VALUES ($1, $2, $3, $4, to_timestamp($5))",
        )
        .bind(org)
        .bind(user)
        .bind(q.target.as_str())
        .bind(q.limit)
        .bind(q.updated)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}
