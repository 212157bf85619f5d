//! Server stats and the usage report. Every request is O(1): totals are counters kept in
//! the same transactions as the writes; time windows (active in 30 days, in 24 hours, this
//! month) come from a snapshot a periodic job computes.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::domain::time::month_start;
use crate::domain::{Action, OrgRole, Principal};
use crate::error::AppError;
use crate::store::{counter, now, now_ms, MetaStore, SessionStore, UserStore};

/// Grafana's `AdminStats`, in its field order.
#[derive(Debug, Clone, Default)]
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

/// Counts over time windows, from the periodic job.
#[derive(Debug, Clone, Default)]
struct Activity {
    active: [u64; 3],
    daily: [u64; 3],
    monthly_active_users: u64,
    daily_active_sessions: u64,
}

/// Index into the per-role arrays: admins, editors, viewers (Grafana buckets the rest,
/// `None` included, with viewers).
fn bucket(role: Option<OrgRole>) -> usize {
    match role {
        Some(OrgRole::Admin) => 0,
        Some(OrgRole::Editor) => 1,
        _ => 2,
    }
}

pub struct StatsService {
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    meta: Arc<dyn MetaStore>,
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
        users: Arc<dyn UserStore>,
        sessions: Arc<dyn SessionStore>,
        meta: Arc<dyn MetaStore>,
    ) -> Self {
        Self {
            users,
            sessions,
            meta,
            activity: RwLock::new(Activity::default()),
        }
    }

    /// The periodic job: one pass over users and sessions.
    pub fn refresh(&self) -> Result<(), AppError> {
        let at = now();
        let month = month_start(at);
        let mut a = Activity::default();
        self.users.for_each_user(&mut |u| {
            if u.is_service_account {
                return;
            }
            let b = bucket(u.highest_role());
            if u.last_seen_at > at - 30 * 86_400 {
                a.active[b] += 1;
            }
            if u.last_seen_at > at - 86_400 {
                a.daily[b] += 1;
            }
            if u.last_seen_at >= month {
                a.monthly_active_users += 1;
            }
        })?;
        let day_ago_ms = now_ms() - 86_400_000;
        self.sessions.for_each_session(&mut |s| {
            if s.revoked_ms == 0 && s.seen_ms.max(s.rotated_ms) > day_ago_ms {
                a.daily_active_sessions += 1;
            }
        })?;
        *self.activity.write() = a;
        Ok(())
    }

    fn c(&self, name: &str) -> Result<u64, AppError> {
        Ok(self.users.counter(name)?)
    }

    /// `GET /api/admin/stats`.
    pub fn stats(&self, p: &Principal) -> Result<AdminStats, AppError> {
        p.require(Action::ServerStatsRead, "")?;
        self.snapshot()
    }

    fn snapshot(&self) -> Result<AdminStats, AppError> {
        let a = self.activity.read().clone();
        Ok(AdminStats {
            orgs: self.c(counter::ORGS)?,
            dashboards: self.c(counter::DASHBOARDS)?,
            snapshots: self.c(counter::SNAPSHOTS)?,
            tags: self.c(counter::TAGS)?,
            datasources: self.c(counter::DATASOURCES)?,
            playlists: self.c(counter::PLAYLISTS)?,
            stars: self.c(counter::STARS)?,
            alerts: self.c(counter::ALERTS)?,
            users: self.c(counter::USERS)?,
            admins: self.c(counter::ROLE_ADMIN)?,
            editors: self.c(counter::ROLE_EDITOR)?,
            viewers: self.c(counter::ROLE_VIEWER)? + self.c(counter::ROLE_NONE)?,
            active_users: a.active.iter().sum(),
            active_admins: a.active[0],
            active_editors: a.active[1],
            active_viewers: a.active[2],
            active_sessions: self.c(counter::SESSIONS)?,
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
    pub fn usage_stats_id(&self) -> Result<String, AppError> {
        if let Some(id) = self.meta.get_meta("usage_stats_id")? {
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
        self.meta.set_meta("usage_stats_id", id.as_bytes())?;
        Ok(id)
    }

    /// `GET /api/admin/usage-report-preview`. tollgate never sends it anywhere.
    pub fn usage_report(
        &self,
        p: &Principal,
        version: &str,
        has_valid_license: bool,
    ) -> Result<UsageReport, AppError> {
        p.require(Action::ServerUsageStatsReportRead, "")?;
        let s = self.snapshot()?;
        let metrics = vec![
            ("stats.active_admins.count", s.active_admins),
            ("stats.active_editors.count", s.active_editors),
            ("stats.active_sessions.count", s.active_sessions),
            ("stats.active_users.count", s.active_users),
            ("stats.active_viewers.count", s.active_viewers),
            ("stats.admins.count", s.admins),
            ("stats.alerts.count", s.alerts),
            ("stats.api_keys.count", self.c(counter::API_KEYS)?),
            ("stats.auth_enabled.basic_auth.count", 1),
            ("stats.daily_active_users.count", s.daily_active_users),
            ("stats.dashboards.count", s.dashboards),
            ("stats.datasources.count", s.datasources),
            ("stats.edition.enterprise.count", 1),
            ("stats.edition.oss.count", 0),
            ("stats.editors.count", s.editors),
            ("stats.folders.count", self.c(counter::FOLDERS)?),
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
            arch: std::env::consts::ARCH.into(),
            edition: "enterprise".into(),
            has_valid_license,
            packaging: "binary".into(),
            usage_stats_id: self.usage_stats_id()?,
        })
    }
}
