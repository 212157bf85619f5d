//! What `GET /metrics` reports, with Grafana's names where Grafana has the metric
//! (`grafana_http_request_duration_seconds`, `grafana_http_request_in_flight`,
//! `grafana_stat_*`, `grafana_build_info`) and tollgate's own under `tollgate_`.
//!
//! Request metrics are recorded as requests end; the rest is read from the services at each
//! scrape into a registry made for that scrape, so a gauge is never stale and no background
//! task keeps them current.

use std::borrow::Cow;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::domain::{FastMap, Principal};
use crate::error::AppError;
use crate::service::Services;
use crate::store::records::DekState;

/// Grafana's buckets for request latency (`pkg/middleware/request_metrics.go`).
const HTTP_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/api/admin/users/:id`), never the raw path. Borrowed from the
    /// route table for every route the document knows (no copy per request).
    pub handler: Cow<'static, str>,
    pub status_code: u16,
    pub method: Cow<'static, str>,
}

/// The request metrics, shared by every request: one shard per thread (round-robin when
/// threads outnumber shards), each with its own lock and in-flight count, merged at scrape.
/// A request then touches only its own thread's cache lines: one shared histogram behind
/// one lock (prometheus-client's `Family`) made both workers write the same lines and
/// hash every label set with SipHash, on every request.
pub struct RequestMetrics {
    shards: Box<[Shard]>,
}

/// One thread's share. Aligned to two cache lines so that neighbours never share one.
#[repr(align(128))]
#[derive(Default)]
struct Shard {
    in_flight: AtomicI64,
    series: Mutex<FastMap<HttpLabels, Durations>>,
}

/// One series of `grafana_http_request_duration_seconds`: per-bucket counts (the last one
/// `+Inf`), the count and the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Durations {
    buckets: [u64; HTTP_BUCKETS.len() + 1],
    count: u64,
    sum: f64,
}

impl Durations {
    fn observe(&mut self, seconds: f64) {
        let i = HTTP_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(HTTP_BUCKETS.len());
        self.buckets[i] += 1;
        self.count += 1;
        self.sum += seconds;
    }

    fn add(&mut self, other: &Durations) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

impl Default for RequestMetrics {
    fn default() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        // Tokio's workers, one per core, plus room for the other threads that happen to
        // serve a request first, so that two workers rarely share a shard.
        let shards = (threads * 4).clamp(4, 256);
        Self {
            shards: (0..shards).map(|_| Shard::default()).collect(),
        }
    }
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// This thread's shard number, handed out in turn on the thread's first request.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

impl RequestMetrics {
    fn shard(&self) -> &Shard {
        &self.shards[shard_index() % self.shards.len()]
    }

    /// Counts a request in flight until the guard drops (on whichever thread: the count
    /// goes back to the shard it was taken from, and only the sum is reported).
    pub fn start(&self) -> InFlight<'_> {
        let counter = &self.shard().in_flight;
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }

    pub fn observe(&self, labels: &HttpLabels, seconds: f64) {
        let mut series = self.shard().series.lock();
        match series.get_mut(labels) {
            Some(d) => d.observe(seconds),
            None => {
                let mut d = Durations::default();
                d.observe(seconds);
                series.insert(labels.clone(), d);
            }
        }
    }

    fn in_flight(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Every series summed over the shards, in label order (a stable exposition).
    fn durations(&self) -> Vec<(HttpLabels, Durations)> {
        let mut merged: std::collections::BTreeMap<HttpLabels, Durations> =
            std::collections::BTreeMap::new();
        for shard in &*self.shards {
            for (labels, d) in shard.series.lock().iter() {
                merged.entry(labels.clone()).or_default().add(d);
            }
        }
        merged.into_iter().collect()
    }

    /// The request metrics, as registered for one scrape.
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "grafana_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            DurationFamily(self.durations()),
        );
        let in_flight: Gauge = Gauge::default();
        in_flight.set(self.in_flight());
        registry.register(
            "grafana_http_request_in_flight",
            "A gauge of requests currently being served by Grafana.",
            in_flight,
        );
    }
}

/// `grafana_http_request_duration_seconds` read from the shards at scrape time.
#[derive(Debug)]
struct DurationFamily(Vec<(HttpLabels, Durations)>);

impl prometheus_client::encoding::EncodeMetric for DurationFamily {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        for (labels, d) in &self.0 {
            // The encoder takes per-bucket counts (it sums them itself), the last `+Inf`.
            let buckets: Vec<(f64, u64)> = HTTP_BUCKETS
                .iter()
                .copied()
                .chain(std::iter::once(f64::INFINITY))
                .zip(d.buckets)
                .collect();
            encoder
                .encode_family(labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    d.sum, d.count, &buckets, None,
                )?;
        }
        Ok(())
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
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
    let mut requests = Registry::default();
    services.requests.register(&mut requests);
    encode_registry(&mut out, &requests).map_err(fmt)?;
    encode_registry(&mut out, &r).map_err(fmt)?;
    encode_eof(&mut out).map_err(fmt)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(handler: &'static str, status_code: u16) -> HttpLabels {
        HttpLabels {
            handler: Cow::Borrowed(handler),
            status_code,
            method: Cow::Borrowed("GET"),
        }
    }

    fn encoded(m: &RequestMetrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut out = String::new();
        encode_registry(&mut out, &r).unwrap_or_default();
        out
    }

    #[test]
    fn observations_from_many_threads_are_all_counted() {
        let m = RequestMetrics::default();
        let threads = 2 * m.shards.len() + 3;
        std::thread::scope(|s| {
            for t in 0..threads {
                let m = &m;
                s.spawn(move || {
                    for i in 0..1000 {
                        let _guard = m.start();
                        let status = if t % 2 == 0 { 200 } else { 404 };
                        m.observe(&labels("/api/users/:id", status), f64::from(i % 10) * 0.01);
                    }
                });
            }
        });
        let merged = m.durations();
        assert_eq!(merged.len(), 2);
        let total: u64 = merged.iter().map(|(_, d)| d.count).sum();
        assert_eq!(total, 1000 * threads as u64);
        for (_, d) in &merged {
            assert_eq!(d.buckets.iter().sum::<u64>(), d.count);
        }
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn a_guard_dropped_on_another_thread_still_ends_its_request() {
        let m = RequestMetrics::default();
        let guard = m.start();
        assert_eq!(m.in_flight(), 1);
        std::thread::scope(|s| {
            s.spawn(move || drop(guard));
        });
        assert_eq!(m.in_flight(), 0);
    }

    #[test]
    fn the_exposition_is_prometheus_clients_histogram() {
        let m = RequestMetrics::default();
        let _guard = m.start();
        for v in [0.001, 0.005, 0.02, 7.0] {
            m.observe(&labels("/api/health", 200), v);
        }
        let text = encoded(&m);
        let series = r#"handler="/api/health",status_code="200",method="GET""#;
        for line in [
            "# TYPE grafana_http_request_duration_seconds histogram".to_string(),
            format!("grafana_http_request_duration_seconds_count{{{series}}} 4"),
            format!("grafana_http_request_duration_seconds_bucket{{le=\"0.005\",{series}}} 2"),
            format!("grafana_http_request_duration_seconds_bucket{{le=\"0.025\",{series}}} 3"),
            format!("grafana_http_request_duration_seconds_bucket{{le=\"5.0\",{series}}} 3"),
            format!("grafana_http_request_duration_seconds_bucket{{le=\"+Inf\",{series}}} 4"),
            "grafana_http_request_in_flight 1".to_string(),
        ] {
            assert!(text.contains(&line), "{line} missing from:\n{text}");
        }
    }
}
