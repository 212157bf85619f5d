//! What `GET /metrics` reports, with Grafana's names where Grafana has the metric
//! (`grafana_http_request_duration_seconds`, `grafana_http_request_in_flight`,
//! `grafana_stat_*`, `grafana_build_info`) and tollgate's own under `tollgate_`.
//!
//! Request metrics are recorded as requests end; the rest is read from the services at each
//! scrape into a registry made for that scrape, so a gauge is never stale and no background
//! task keeps them current.

use std::borrow::Cow;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::Principal;
use crate::error::AppError;
use crate::service::Services;
use crate::store::records::DekState;

/// Grafana's buckets for request latency (`pkg/middleware/request_metrics.go`).
const HTTP_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/api/admin/users/:id`), never the raw path. Borrowed from the
    /// route table for every route the document knows (no copy per request).
    pub handler: Cow<'static, str>,
    pub status_code: u16,
    pub method: Cow<'static, str>,
}

type HistogramFamily = Family<HttpLabels, Histogram, fn() -> Histogram>;

/// The request metrics, shared by every request.
pub struct RequestMetrics {
    registry: Registry,
    durations: HistogramFamily,
    in_flight: Gauge,
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

impl Default for RequestMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let durations: HistogramFamily = Family::new_with_constructor(http_histogram);
        let in_flight = Gauge::default();
        registry.register(
            "grafana_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            durations.clone(),
        );
        registry.register(
            "grafana_http_request_in_flight",
            "A gauge of requests currently being served by Grafana.",
            in_flight.clone(),
        );
        Self {
            registry,
            durations,
            in_flight,
        }
    }
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl RequestMetrics {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    pub fn observe(&self, labels: &HttpLabels, seconds: f64) {
        self.durations.get_or_create(labels).observe(seconds);
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn gauge_f64(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn labeled<L>(registry: &mut Registry, name: &str, help: &str, values: Vec<(L, i64)>)
where
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
{
    let family: Family<L, Gauge> = Family::default();
    for (labels, v) in values {
        family.get_or_create(&labels).set(v);
    }
    registry.register(name, help, family);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    revision: String,
    branch: String,
    goversion: String,
    edition: String,
    tollgate_version: String,
}

/// A histogram read at scrape time from counts kept elsewhere (the store's).
#[derive(Debug)]
struct SnapshotHistogram(crate::store::durability::LatencySnapshot);

impl prometheus_client::encoding::EncodeMetric for SnapshotHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        // The encoder takes per-bucket counts (it sums them itself) and the last bucket is
        // +Inf, as in prometheus-client's own histograms.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = self
            .0
            .buckets
            .iter()
            .map(|(bound, cumulative)| {
                let n = cumulative - below;
                below = *cumulative;
                (*bound, n)
            })
            .collect();
        buckets.push((f64::INFINITY, self.0.count.saturating_sub(below)));
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0.sum,
            self.0.count,
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The scrape: request metrics, then a point-in-time reading of the services.
pub async fn scrape(services: &Services) -> Result<String, AppError> {
    let system = Principal::system();
    let mut r = Registry::default();
    let now = services.clock.now();
    labeled(
        &mut r,
        "grafana_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, and goversion \
         from which Grafana was built",
        vec![(
            BuildLabels {
                version: crate::domain::version::GRAFANA_COMPAT_VERSION.into(),
                revision: crate::domain::version::COMMIT.into(),
                branch: "main".into(),
                goversion: "none".into(),
                edition: "enterprise".into(),
                tollgate_version: env!("CARGO_PKG_VERSION").into(),
            },
            1,
        )],
    );
    if !services.settings.metrics.disable_total_stats {
        let s = services.stats.stats(&system).await?;
        for (name, help, v) in [
            ("grafana_stat_total_users", "total amount of users", s.users),
            (
                "grafana_stat_active_users",
                "number of active users",
                s.active_users,
            ),
            ("grafana_stat_total_orgs", "total amount of orgs", s.orgs),
            (
                "grafana_stat_total_playlists",
                "total amount of playlists",
                s.playlists,
            ),
            (
                "grafana_stat_totals_dashboard",
                "total amount of dashboards",
                s.dashboards,
            ),
            (
                "grafana_stat_totals_viewers",
                "total amount of viewers",
                s.viewers,
            ),
            (
                "grafana_stat_totals_editors",
                "total amount of editors",
                s.editors,
            ),
            (
                "grafana_stat_totals_admins",
                "total amount of admins",
                s.admins,
            ),
            (
                "grafana_stat_totals_active_viewers",
                "total amount of viewers",
                s.active_viewers,
            ),
            (
                "grafana_stat_totals_active_editors",
                "total amount of active editors",
                s.active_editors,
            ),
            (
                "grafana_stat_totals_active_admins",
                "total amount of active admins",
                s.active_admins,
            ),
            (
                "grafana_stat_totals_alert_rules",
                "total amount of alert rules in the database",
                s.alerts,
            ),
        ] {
            gauge(&mut r, name, help, count(v));
        }
    }
    let (deks, _, job) = services.secrets.status().await?;
    gauge(
        &mut r,
        "grafana_stat_totals_data_keys",
        "total amount of data keys in the database",
        count(deks.len() as u64),
    );
    let mut by_state = [("active", 0u64), ("retired", 0), ("destroyed", 0)];
    let mut refs = [("active", 0u64), ("retired", 0), ("destroyed", 0)];
    for d in &deks {
        let i = match d.state {
            DekState::Active => 0,
            DekState::Retired => 1,
            DekState::Destroyed => 2,
        };
        by_state[i].1 += 1;
        refs[i].1 += d.references;
    }
    let states = |v: [(&str, u64); 3]| {
        v.iter()
            .map(|(s, n)| (StateLabel { state: (*s).into() }, count(*n)))
            .collect::<Vec<_>>()
    };
    labeled(
        &mut r,
        "tollgate_data_keys",
        "Data encryption keys by state (active encrypts; retired only decrypts).",
        states(by_state),
    );
    labeled(
        &mut r,
        "tollgate_data_key_references",
        "Secrets sealed by the data keys of each state.",
        states(refs),
    );
    gauge(
        &mut r,
        "tollgate_reencryption_running",
        "1 while a re-encryption of secrets runs.",
        i64::from(job.running),
    );
    gauge_f64(
        &mut r,
        "tollgate_reencryption_progress_ratio",
        "Secrets processed by the last or current re-encryption, as a share of its total.",
        if job.total == 0 {
            1.0
        } else {
            job.processed as f64 / job.total as f64
        },
    );
    let lic = services.licensing.status(&system).await?;
    let state = lic.evaluation.state();
    labeled(
        &mut r,
        "tollgate_license_state",
        "1 for the state of the license in effect.",
        [
            "valid",
            "missing",
            "invalid",
            "expired",
            "not-yet-valid",
            "wrong-instance",
        ]
        .iter()
        .map(|s| {
            (
                StateLabel { state: (*s).into() },
                i64::from(*s == state.as_str()),
            )
        })
        .collect(),
    );
    let claims = lic
        .evaluation
        .effective
        .as_ref()
        .and_then(|e| e.claims.as_ref());
    if let Some(c) = claims {
        gauge(
            &mut r,
            "tollgate_license_expiry_seconds",
            "Seconds until the license expires (negative once it has).",
            c.lexp - now,
        );
        gauge(
            &mut r,
            "tollgate_license_token_expiry_seconds",
            "Seconds until the license token expires (negative once it has).",
            c.exp - now,
        );
    }
    gauge(
        &mut r,
        "tollgate_license_seats_used",
        "Users counted against the license.",
        count(lic.seats.users),
    );
    gauge(
        &mut r,
        "tollgate_license_seats_included",
        "Users the license includes (0 without a license).",
        claims.map_or(0, |c| c.included_users),
    );
    let blocks = prometheus_client::metrics::counter::Counter::<u64>::default();
    blocks.inc_by(services.auth.blocked_sign_ins());
    r.register(
        "tollgate_brute_force_blocks",
        "Sign-in attempts refused by brute-force protection since start.",
        blocks,
    );
    if let Some(l) = services.store.latency() {
        r.register(
            "tollgate_store_write_seconds",
            "From the end of a store write to its being on disk (the group-commit wait)",
            SnapshotHistogram(l.write),
        );
        r.register(
            "tollgate_store_flush_seconds",
            "One physical flush of the embedded store",
            SnapshotHistogram(l.flush),
        );
    }
    let (exported, behind, errors) = services.audit.export_progress();
    gauge(
        &mut r,
        "tollgate_audit_exported_events",
        "The last audit event written by the file or console logger",
        count(exported),
    );
    gauge(
        &mut r,
        "tollgate_audit_export_lag_events",
        "Audit events committed but not yet written by the loggers",
        count(behind),
    );
    let export_errors = prometheus_client::metrics::counter::Counter::<u64>::default();
    export_errors.inc_by(errors);
    r.register(
        "tollgate_audit_export_errors",
        "Failed attempts to write audit events to the loggers (retried)",
        export_errors,
    );
    let mut out = String::with_capacity(8 * 1024);
    let fmt = |e: std::fmt::Error| AppError::internal("cannot encode metrics", e.to_string());
    encode_registry(&mut out, &services.requests.registry).map_err(fmt)?;
    encode_registry(&mut out, &r).map_err(fmt)?;
    encode_eof(&mut out).map_err(fmt)?;
    Ok(out)
}
