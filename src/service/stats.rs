//! Server stats and the usage report. Every request is O(1): totals are counters kept in
//! the same transactions as the writes; time windows (active in 30 days, in 24 hours, this
//! month) come from a snapshot a periodic job computes. The activity series (sign-ins and
//! active users per hour and per day) is counted by the store as they happen and read
//! here, a few dozen rows.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::domain::time::{month_start, Clock};
use crate::domain::Action;
use crate::domain::Principal;
use crate::error::AppError;
use crate::store::{
    Activity, ActivityWindows, MetaStore, SeriesCounts, SeriesSpan, SessionStore, StatsStore,
};

/// The activity series shows the last 24 hours and the last 30 days (UTC, the current
/// hour and day included), and keeps 48 hours and 62 days.
const SERIES_HOURS: i64 = 24;
const SERIES_DAYS: i64 = 30;
const KEEP_HOURS: i64 = 48;
const KEEP_DAYS: i64 = 62;

/// `GET /api/admin/stats/activity`: one entry per hour and per day, oldest first, zero
/// when nothing happened; `(start, counts)` with `start` in Unix seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivitySeries {
    pub hourly: Vec<(i64, SeriesCounts)>,
    pub daily: Vec<(i64, SeriesCounts)>,
}

/// Grafana's `AdminStats`, in its field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminStats {
    pub orgs: u64,
    pub dashboards: u64,
    pub snapshots: u64,
    pub tags: u64,
    pub datasources: u64,
    pub playlists: u64,
    pub stars: u64,
    pub alerts: u64,
    pub users: u64,
    pub admins: u64,
    pub editors: u64,
    pub viewers: u64,
    pub active_users: u64,
    pub active_admins: u64,
    pub active_editors: u64,
    pub active_viewers: u64,
    pub active_sessions: u64,
    pub daily_active_users: u64,
    pub daily_active_admins: u64,
    pub daily_active_editors: u64,
    pub daily_active_viewers: u64,
    pub daily_active_sessions: u64,
    pub monthly_active_users: u64,
    pub active_devices: u64,
}

pub struct StatsService {
    counts: Arc<dyn StatsStore>,
    sessions: Arc<dyn SessionStore>,
    meta: Arc<dyn MetaStore>,
    clock: Arc<dyn Clock>,
    activity: RwLock<Activity>,
}

/// What the usage report preview shows.
#[derive(Debug, Clone)]
pub struct UsageReport {
    pub version: String,
    pub metrics: Vec<(String, u64)>,
    pub os: String,
    pub arch: String,
    pub edition: String,
    pub has_valid_license: bool,
    pub packaging: String,
    pub usage_stats_id: String,
}

impl StatsService {
    pub fn new(
        counts: Arc<dyn StatsStore>,
        sessions: Arc<dyn SessionStore>,
        meta: Arc<dyn MetaStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            counts,
            sessions,
            meta,
            clock,
            activity: RwLock::new(Activity::default()),
        }
    }

    /// The periodic job: one pass over users and sessions, in the store.
    pub async fn refresh(&self) -> Result<(), AppError> {
        let at_ms = self.clock.now_ms();
        let at = at_ms.div_euclid(1000);
        let a = self
            .counts
            .activity(ActivityWindows {
                active_after: at - 30 * 86_400,
                daily_after: at - 86_400,
                month_start: month_start(at),
                sessions_after_ms: at_ms - 86_400_000,
            })
            .await?;
        *self.activity.write() = a;
        // Cheap: the store deletes at most the few buckets that aged out since last time.
        self.counts
            .prune_activity_series(
                SeriesSpan::Hour.start_of(at) - KEEP_HOURS * 3_600,
                SeriesSpan::Day.start_of(at) - KEEP_DAYS * 86_400,
            )
            .await?;
        Ok(())
    }

    /// `GET /api/admin/stats/activity` (`server.stats:read`).
    pub async fn activity_series(&self, p: &Principal) -> Result<ActivitySeries, AppError> {
        p.require(Action::ServerStatsRead, "")?;
        let now = self.clock.now();
        let first = |span: SeriesSpan, n: i64| span.start_of(now) - (n - 1) * span.seconds();
        let hours_from = first(SeriesSpan::Hour, SERIES_HOURS);
        let days_from = first(SeriesSpan::Day, SERIES_DAYS);
        let stored = self.counts.activity_series(hours_from, days_from).await?;
        let fill = |span: SeriesSpan, from: i64, n: i64| {
            (0..n)
                .map(|i| {
                    let start = from + i * span.seconds();
                    let counts = stored
                        .iter()
                        .find(|b| b.span == span && b.start == start)
                        .map(|b| b.counts)
                        .unwrap_or_default();
                    (start, counts)
                })
                .collect()
        };
        Ok(ActivitySeries {
            hourly: fill(SeriesSpan::Hour, hours_from, SERIES_HOURS),
            daily: fill(SeriesSpan::Day, days_from, SERIES_DAYS),
        })
    }

    /// `GET /api/admin/stats`.
    pub async fn stats(&self, p: &Principal) -> Result<AdminStats, AppError> {
        p.require(Action::ServerStatsRead, "")?;
        self.snapshot().await
    }

    async fn snapshot(&self) -> Result<AdminStats, AppError> {
        let a = *self.activity.read();
        let c = self.counts.counts().await?;
        Ok(AdminStats {
            orgs: c.orgs,
            dashboards: c.dashboards,
            // tollgate keeps no snapshots, playlists or stars.
            snapshots: 0,
            tags: c.tags,
            datasources: c.datasources,
            playlists: 0,
            stars: 0,
            alerts: c.alerts,
            users: c.users,
            admins: c.admins,
            editors: c.editors,
            viewers: c.viewers + c.no_role,
            active_users: a.active.iter().sum(),
            active_admins: a.active[0],
            active_editors: a.active[1],
            active_viewers: a.active[2],
            active_sessions: self.sessions.active_session_count().await?,
            daily_active_users: a.daily.iter().sum(),
            daily_active_admins: a.daily[0],
            daily_active_editors: a.daily[1],
            daily_active_viewers: a.daily[2],
            daily_active_sessions: a.daily_active_sessions,
            monthly_active_users: a.monthly_active_users,
            active_devices: 0,
        })
    }

    /// The install's usage-stats id: a UUID created once and stored.
    pub async fn usage_stats_id(&self) -> Result<String, AppError> {
        if let Some(id) = self.meta.get_meta("usage_stats_id").await? {
            return Ok(String::from_utf8_lossy(&id).into_owned());
        }
        let mut b = crate::crypto::random::bytes::<16>();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = crate::crypto::random::hex(&b);
        let id = format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        );
        let id = self.meta.init_meta("usage_stats_id", id.as_bytes()).await?;
        Ok(String::from_utf8_lossy(&id).into_owned())
    }

    /// `GET /api/admin/usage-report-preview`. tollgate never sends it anywhere.
    pub async fn usage_report(
        &self,
        p: &Principal,
        version: &str,
        has_valid_license: bool,
    ) -> Result<UsageReport, AppError> {
        p.require(Action::ServerUsageStatsReportRead, "")?;
        let s = self.snapshot().await?;
        let c = self.counts.counts().await?;
        let metrics = vec![
            ("stats.active_admins.count", s.active_admins),
            ("stats.active_editors.count", s.active_editors),
            ("stats.active_sessions.count", s.active_sessions),
            ("stats.active_users.count", s.active_users),
            ("stats.active_viewers.count", s.active_viewers),
            ("stats.admins.count", s.admins),
            ("stats.alerts.count", s.alerts),
            ("stats.api_keys.count", c.api_keys),
            ("stats.auth_enabled.basic_auth.count", 1),
            ("stats.daily_active_users.count", s.daily_active_users),
            ("stats.dashboards.count", s.dashboards),
            ("stats.datasources.count", s.datasources),
            ("stats.edition.enterprise.count", 1),
            ("stats.edition.oss.count", 0),
            ("stats.editors.count", s.editors),
            ("stats.folders.count", c.folders),
            ("stats.monthly_active_users.count", s.monthly_active_users),
            ("stats.orgs.count", s.orgs),
            ("stats.packaging.binary.count", 1),
            ("stats.playlist.count", s.playlists),
            ("stats.snapshots.count", s.snapshots),
            ("stats.stars.count", s.stars),
            ("stats.total_auth_token.count", s.active_sessions),
            ("stats.usagestats.debug.collect.error.count", 0),
            ("stats.usagestats.debug.collect.total.count", 1),
            ("stats.users.count", s.users),
            ("stats.valid_license.count", u64::from(has_valid_license)),
            ("stats.viewers.count", s.viewers),
        ];
        Ok(UsageReport {
            version: version.replace('.', "_"),
            metrics: metrics
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            os: std::env::consts::OS.into(),
            arch: go_arch(std::env::consts::ARCH).into(),
            edition: "enterprise".into(),
            has_valid_license,
            packaging: "binary".into(),
            usage_stats_id: self.usage_stats_id().await?,
        })
    }
}

/// An architecture as Go's `GOARCH` names it (Grafana reports `runtime.GOARCH`).
fn go_arch(rust: &str) -> &str {
    match rust {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn architectures_are_named_as_go_names_them() {
        assert_eq!(super::go_arch("x86_64"), "amd64");
        assert_eq!(super::go_arch("aarch64"), "arm64");
        assert_eq!(super::go_arch("riscv64"), "riscv64");
    }
}
