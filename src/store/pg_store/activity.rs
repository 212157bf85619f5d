//! The activity series in PostgreSQL: the `activity_series` table (migration 0007), one
//! row per (span, start). Every counter moves in one upsert statement that adds to the
//! stored value, so concurrent sign-ins never lose a count.

use sqlx::postgres::PgRow;
use sqlx::PgConnection;

use super::secrets::{col, db_i64, u64_col};
use super::{db_err, PgStore};
use crate::domain::UserId;
use crate::store::{SeriesBucket, SeriesCounts, SeriesSpan, StoreError, StoreResult};

/// The columns as [`series_row`] reads them.
macro_rules! select_series {
    () => {
        "SELECT span, extract(epoch FROM start)::bigint AS start, sign_ins, failed_sign_ins, \
         active_users FROM activity_series"
    };
}
pub(super) use select_series;

pub(super) fn series_row(r: &PgRow) -> StoreResult<SeriesBucket> {
    let span: String = col(r, "span")?;
    Ok(SeriesBucket {
        span: SeriesSpan::parse(&span)
            .ok_or_else(|| StoreError::Codec(format!("activity series span {span}")))?,
        start: col(r, "start")?,
        counts: SeriesCounts {
            sign_ins: u64_col(r, "sign_ins")?,
            failed_sign_ins: u64_col(r, "failed_sign_ins")?,
            active_users: u64_col(r, "active_users")?,
        },
    })
}

/// Import: the dump's buckets as they are.
pub(super) async fn insert_series(
    c: &mut PgConnection,
    buckets: &[SeriesBucket],
) -> StoreResult<()> {
    for b in buckets {
        sqlx::query(
            "INSERT INTO activity_series (span, start, sign_ins, failed_sign_ins, active_users) \
             VALUES ($1, to_timestamp($2), $3, $4, $5)",
        )
        .bind(b.span.as_str())
        .bind(b.start)
        .bind(db_i64(b.counts.sign_ins)?)
        .bind(db_i64(b.counts.failed_sign_ins)?)
        .bind(db_i64(b.counts.active_users)?)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

impl PgStore {
    pub(super) async fn record_sign_in_row(&self, at: i64, ok: bool) -> StoreResult<()> {
        // Both buckets in one statement, always hour then day (so two writers lock the rows
        // in the same order).
        sqlx::query(
            "INSERT INTO activity_series (span, start, sign_ins, failed_sign_ins) \
             VALUES ('hour', to_timestamp($1), $3, $4), ('day', to_timestamp($2), $3, $4) \
             ON CONFLICT (span, start) DO UPDATE SET \
                 sign_ins = activity_series.sign_ins + EXCLUDED.sign_ins, \
                 failed_sign_ins = activity_series.failed_sign_ins + EXCLUDED.failed_sign_ins",
        )
        .bind(SeriesSpan::Hour.start_of(at))
        .bind(SeriesSpan::Day.start_of(at))
        .bind(i64::from(ok))
        .bind(i64::from(!ok))
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// `touch_last_seen` in one statement: `old` locks the row and reads the previous time
    /// (re-read after a concurrent writer commits), `seen` moves it forward, and the insert
    /// counts the user in each bucket whose start the previous time is before.
    pub(super) async fn touch_last_seen_row(&self, user: UserId, at: i64) -> StoreResult<()> {
        sqlx::query(
            "WITH old AS ( \
                 SELECT id, last_seen_at, is_service_account FROM users WHERE id = $1 FOR UPDATE), \
             seen AS ( \
                 UPDATE users u SET last_seen_at = to_timestamp($2) FROM old \
                 WHERE u.id = old.id \
                     AND (old.last_seen_at IS NULL OR old.last_seen_at < to_timestamp($2)) \
                 RETURNING old.last_seen_at AS prev, old.is_service_account AS sa) \
             INSERT INTO activity_series (span, start, active_users) \
             SELECT b.span, to_timestamp(b.start), 1 \
             FROM seen, (VALUES (1, 'hour', $3::bigint), (2, 'day', $4::bigint)) AS b(n, span, start) \
             WHERE NOT seen.sa AND (seen.prev IS NULL OR seen.prev < to_timestamp(b.start)) \
             ORDER BY b.n \
             ON CONFLICT (span, start) DO UPDATE SET \
                 active_users = activity_series.active_users + 1",
        )
        .bind(user.0 as i64)
        .bind(at)
        .bind(SeriesSpan::Hour.start_of(at))
        .bind(SeriesSpan::Day.start_of(at))
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn activity_series_rows(
        &self,
        hours_from: i64,
        days_from: i64,
    ) -> StoreResult<Vec<SeriesBucket>> {
        let rows = sqlx::query(concat!(
            select_series!(),
            " WHERE (span = 'hour' AND start >= to_timestamp($1)) \
              OR (span = 'day' AND start >= to_timestamp($2))"
        ))
        .bind(hours_from)
        .bind(days_from)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(series_row).collect()
    }

    pub(super) async fn prune_activity_series_rows(
        &self,
        hours_before: i64,
        days_before: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM activity_series \
             WHERE (span = 'hour' AND start < to_timestamp($1)) \
                OR (span = 'day' AND start < to_timestamp($2))",
        )
        .bind(hours_before)
        .bind(days_before)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }
}
