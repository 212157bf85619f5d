//! The app builder: opens the data folder, runs first-start work, binds the listener (port
//! 0 works, for tests) and assembles the routes. `run` serves until the shutdown future
//! resolves, then flushes the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use poem::{Endpoint, EndpointExt, Route};
use tokio::net::TcpListener;

use crate::api::{self, routes::RouteTable};
use crate::config::Settings;
use crate::error::AppError;
use crate::service::{bootstrap, Services};
use crate::store::{Job, JobLock, Topic};
use crate::tls::Certificates;
use crate::ui;

pub struct App {
    pub services: Arc<Services>,
    listener: TcpListener,
    addr: SocketAddr,
    /// `protocol = https`: the certificate served, reloadable.
    certificates: Option<Arc<Certificates>>,
}

/// Every route of the server, wrapped in the Grafana error mapping.
pub fn routes(services: Arc<Services>) -> impl Endpoint<Output = poem::Response> {
    let spec_json = api::spec_document();
    let spec = poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/json")
            .body(spec_json)
    });

    let scrape = services.clone();
    let metrics = poem::endpoint::make(move |req| {
        let services = scrape.clone();
        async move { api::observe::metrics_endpoint(&services, &req).await }
    });
    let other = Route::new()
        .at("/openapi.json", spec)
        .at("/metrics", metrics)
        .nest("/swagger", api::swagger_ui())
        .nest("/", ui::endpoint());
    let front = api::middleware::Front::new(api::router(), other.boxed(), services.clone());
    api::observe::observe(front, services, RouteTable::document())
}

impl App {
    pub async fn build(settings: Settings) -> Result<Self, AppError> {
        Self::build_with_clock(settings, Arc::new(crate::domain::time::SystemClock)).await
    }

    /// The same with a given clock (tests move time instead of sleeping).
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn crate::domain::time::Clock>,
    ) -> Result<Self, AppError> {
        let bind = settings.bind_addr();
        // A certificate that cannot be used stops start-up before anything is opened.
        let certificates = match &settings.tls {
            Some(tls) => Some(
                Certificates::load(tls).map_err(|e| AppError::internal("cannot serve HTTPS", e))?,
            ),
            None => None,
        };
        let services = Services::open_with_clock(settings, clock).await?;
        bootstrap::first_start(&services).await?;
        // Provisioned objects exist before the first request (failures are logged and
        // shown in the provisioning status; the server still starts).
        // On several nodes, one provisions (the others see its writes).
        if let Some(_lock) = job_lock(&services, Job::Provisioning).await {
            services.provisioning.provision_all().await;
        } else {
            services.provisioning.start_polling();
        }
        if services.secrets.interrupted_job().await? {
            // A re-encryption was cut off (crash): finish it in the background; the server
            // is ready (`/readyz`) once it has.
            let s = services.clone();
            tokio::spawn(async move {
                if let Some(_lock) = job_lock(&s, Job::Reencryption).await {
                    let entry = crate::domain::audit::AuditEntry::system(
                        "encryption:reencrypt",
                        s.clock.now_ms(),
                    );
                    let resumed =
                        crate::domain::audit::scope(entry, true, s.secrets.reencrypt_secrets());
                    match resumed.await {
                        Ok(r) => {
                            tracing::info!(updated = r.updated, "resumed re-encryption finished")
                        }
                        Err(e) => tracing::error!(error = %e, "resumed re-encryption failed"),
                    }
                } // else another node resumes it
                s.ready.store(true, std::sync::atomic::Ordering::Release);
            });
        } else {
            services
                .ready
                .store(true, std::sync::atomic::Ordering::Release);
        }
        let listener = TcpListener::bind(bind.as_str())
            .await
            .map_err(|e| AppError::internal("cannot listen", format!("{bind}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AppError::internal("cannot listen", format!("{bind}: {e}")))?;
        Ok(Self {
            services,
            listener,
            addr,
            certificates,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTPS certificate (`protocol = https`): `reload` it on SIGHUP.
    pub fn certificates(&self) -> Option<Arc<Certificates>> {
        self.certificates.clone()
    }

    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let services = self.services.clone();
        tracing::info!(addr = %self.addr, url = %services.settings.root_url, "tollgate is serving");
        let (stop_audit, audit_stopped) = tokio::sync::watch::channel(false);
        let audit_tasks = services.audit.start(audit_stopped);
        let janitor = tokio::spawn(housekeeping(services.clone()));
        let follower = tokio::spawn(follow_changes(services.clone()));
        let cert_watch = self
            .certificates
            .clone()
            .map(|c| tokio::spawn(c.watch(crate::tls::WATCH_EVERY)));
        let s = &services.settings;
        let limits = crate::transport::Limits {
            header_read_timeout: s.header_read_timeout,
            max_connections_per_ip: s.max_connections_per_ip,
            shutdown_grace: s.shutdown_timeout,
        };
        let ep = routes(services.clone());
        let result =
            crate::transport::serve(self.listener, ep, limits, self.certificates, shutdown).await;
        // Wait for the background tasks to end, so that they release the services (and
        // with them the store: sled's folder lock) before `run` returns.
        janitor.abort();
        follower.abort();
        if let Some(w) = cert_watch {
            w.abort();
        }
        let _ = janitor.await;
        let _ = follower.await;
        let _ = stop_audit.send(true);
        for t in audit_tasks {
            let _ = t.await;
        }
        services.provisioning.stop_polling();
        if let Err(e) = services.store.flush().await {
            tracing::error!(error = %e, "final flush failed");
        }
        result
    }
}

/// Periodic work: the license renewal check and the stats activity snapshot every minute,
/// purging expired sessions every ten.
async fn housekeeping(services: Arc<Services>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        let purge = round % 10 == 9;
        round += 1;
        // Takes its run-once job lock itself; a renewal it makes is the server's own
        // change, recorded as such.
        crate::domain::audit::scope(
            crate::domain::audit::AuditEntry::system("licensing:renew", services.clock.now_ms()),
            true,
            services.licensing.auto_renew_tick(),
        )
        .await;
        // The store runs its scans on the blocking pool.
        if let Err(e) = services.stats.refresh().await {
            tracing::warn!(error = %e, "stats refresh failed");
        }
        if purge {
            let Some(_lock) = job_lock(&services, Job::SessionPurge).await else {
                continue;
            };
            match services.sessions.purge().await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "purged expired sessions"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session purge failed"),
            }
        }
    }
}

/// Takes a run-once job's lock; `None` when another node holds it (or the store is away).
async fn job_lock(services: &Services, job: Job) -> Option<JobLock> {
    match services.store.try_job_lock(job).await {
        Ok(lock) => lock,
        Err(e) => {
            tracing::warn!(error = %e, ?job, "cannot take the job lock");
            None
        }
    }
}

/// How often the epochs are compared (the safety net under LISTEN/NOTIFY): the worst-case
/// staleness of a per-node cache when a notification is lost.
pub const CHANGE_POLL: Duration = Duration::from_secs(5);

/// Keeps this node's caches in step with changes any node makes (several nodes on one
/// database): each notification reloads its topic; a reconnect reloads everything; and the
/// epochs are compared every [`CHANGE_POLL`] in case a notification was lost. A
/// single-node backend has nothing to follow.
async fn follow_changes(services: Arc<Services>) {
    let mut rx = match services.store.subscribe().await {
        Ok(Some(rx)) => rx,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "cannot follow changes from other nodes");
            return;
        }
    };
    let mut seen = services.store.change_epochs().await.unwrap_or_default();
    let mut poll = tokio::time::interval(CHANGE_POLL);
    loop {
        tokio::select! {
            topic = rx.recv() => match topic {
                Some(t) => reload(&services, t).await,
                None => return,
            },
            _ = poll.tick() => {
                let Ok(now) = services.store.change_epochs().await else { continue };
                for (topic, epoch) in &now {
                    if !seen.contains(&(*topic, *epoch)) {
                        reload(&services, *topic).await;
                    }
                }
                seen = now;
            }
        }
    }
}

/// Reloads what a topic covers.
async fn reload(services: &Services, topic: Topic) {
    let each = match topic {
        Topic::All => Topic::EACH.to_vec(),
        t => vec![t],
    };
    for t in each {
        let r = match t {
            Topic::Roles => services.roles.install_roles().await,
            Topic::Settings => services.settings_admin.reload().await,
            Topic::DataKeys => services.secrets.reload_keys().await,
            Topic::License => {
                services.licensing.forget_stored();
                Ok(())
            }
            Topic::Ldap => {
                if services.ldap.enabled() {
                    services.ldap.reload_local().await
                } else {
                    Ok(())
                }
            }
            Topic::All => Ok(()),
        };
        match r {
            Ok(()) => tracing::debug!(topic = t.as_str(), "reloaded after a change"),
            Err(e) => {
                tracing::warn!(topic = t.as_str(), error = %e, "reload after a change failed")
            }
        }
    }
}
