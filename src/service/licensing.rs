//! Licensing: which token is in effect, whether it is valid and why not, seats, and renewal
//! from the issuer (on demand and every `update_days`).
//!
//! One rule for sources: a token in the database (uploaded or renewed) wins; otherwise
//! `[enterprise] license_text`; otherwise the file at `license_path`. Every present source
//! is evaluated and shown in the status, so a token that is shadowed is never silent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::Settings;
use crate::crypto::jws;
use crate::domain::license::{
    check_claims, same_instance, update_days, validate, Invalid, LicenseClaims, LicenseState,
    RenewRequest, RenewStats,
};
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::Principal;
use crate::error::AppError;
use crate::service::stats::StatsService;
use crate::store::{LicenseStore, RenewalRecord, StatsStore, StoredLicense};
use crate::watched_file::{Contents, WatchedFile};

/// Where a token comes from, in precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Database,
    Config,
    File,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Config => "config",
            Self::File => "file",
        }
    }
}

/// One source's token and what it is worth.
#[derive(Debug, Clone)]
pub struct SourceView {
    pub source: Source,
    pub token: String,
    /// Verified claims; or, for a token whose signature failed, what it claims (unverified).
    pub claims: Option<LicenseClaims>,
    pub state: LicenseState,
    pub reason: String,
}

/// The license in effect (the first present source) and every source that is present.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub effective: Option<SourceView>,
    pub sources: Vec<SourceView>,
}

impl Evaluation {
    pub fn state(&self) -> LicenseState {
        self.effective
            .as_ref()
            .map_or(LicenseState::Missing, |s| s.state)
    }
}

/// Licensed versus used seats.
#[derive(Debug, Clone, Default)]
pub struct Seats {
    pub included_users: i64,
    pub included_admins: i64,
    pub included_viewers: i64,
    pub users: u64,
    pub admins_and_editors: u64,
    pub viewers: u64,
    pub over_limit: bool,
}

/// `GET /api/licensing/status`.
#[derive(Debug, Clone)]
pub struct LicenseStatus {
    pub evaluation: Evaluation,
    pub now: i64,
    /// This server's `root_url`.
    pub instance: String,
    pub seats: Seats,
    pub auto_refresh: bool,
    pub license_url: String,
    pub next_renewal_at: Option<i64>,
    pub last_renewal: Option<RenewalRecord>,
}

/// Active users for `GET /api/licensing/refresh-stats`.
#[derive(Debug, Clone, Copy)]
pub struct ActiveUserStats {
    pub active_admins_and_editors: u64,
    pub active_viewers: u64,
    pub active_users: u64,
}

/// Backoff after failed automatic renewals.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_try: i64,
}

/// The wait after `failures` failed attempts: one minute doubling to six hours, then
/// +/-20% jitter so a fleet does not retry in step.
pub fn backoff_seconds(failures: u32, jitter: f64) -> i64 {
    let base = 60f64 * 2f64.powi(failures.saturating_sub(1).min(20) as i32);
    let capped = base.min(6.0 * 3600.0);
    (capped * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as i64
}

const VERIFY_CACHE: usize = 16;

/// The database's token as last read, verified once.
struct StoredView {
    license: StoredLicense,
    verified: Result<LicenseClaims, String>,
}

/// [`LicensingService::stored`]: the last read of the database's token (`Some(None)`: none
/// stored), and a generation that every drop moves, so that a read which started before a
/// drop does not keep what it read.
#[derive(Default)]
struct StoredMemo {
    generation: u64,
    value: Option<Option<Arc<StoredView>>>,
}

/// The license file as last read: its token verified once, or why it could not be read.
#[allow(clippy::large_enum_variant)] // one per change of the file, behind an `Arc`
enum FileLicense {
    /// Absent or blank: no license.
    Absent,
    /// An unreadable file is an invalid license, with the error as its reason.
    Unreadable(String),
    Token {
        token: String,
        verified: Result<LicenseClaims, String>,
    },
}

pub struct LicensingService {
    settings: Arc<Settings>,
    store: Arc<dyn LicenseStore>,
    counts: Arc<dyn StatsStore>,
    stats: Arc<StatsService>,
    /// The job lock of automatic renewal (one node at a time).
    jobs: Arc<dyn crate::store::Store>,
    clock: Arc<dyn Clock>,
    /// token -> verified claims or the verification failure.
    verified: Mutex<HashMap<String, Result<LicenseClaims, String>>>,
    /// The database's token: read once, then served from memory until a change drops it
    /// (this node's writes after their commit, another node's as `Topic::License`), so
    /// that `GET /api/licensing/check` costs no database round trip.
    stored: Mutex<StoredMemo>,
    /// `[enterprise] license_text`, verified at start-up (`None`: not set).
    config: Option<(String, Result<LicenseClaims, String>)>,
    /// The file at `license_path`, read again only when it may have changed.
    file: WatchedFile<FileLicense>,
    backoff: Mutex<Backoff>,
    /// One renewal at a time.
    renewing: tokio::sync::Mutex<()>,
    http: reqwest::Client,
}

impl LicensingService {
    pub fn new(
        settings: Arc<Settings>,
        store: Arc<dyn LicenseStore>,
        counts: Arc<dyn StatsStore>,
        stats: Arc<StatsService>,
        jobs: Arc<dyn crate::store::Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AppError::internal("cannot build the HTTP client", e))?;
        let file = WatchedFile::new(settings.enterprise.license_path.clone());
        let text = settings.enterprise.license_text.trim();
        let config = (!text.is_empty()).then(|| (text.to_string(), verify_token(text, &settings)));
        Ok(Self {
            settings,
            store,
            counts,
            stats,
            jobs,
            clock,
            verified: Mutex::new(HashMap::new()),
            stored: Mutex::new(StoredMemo::default()),
            config,
            file,
            backoff: Mutex::new(Backoff::default()),
            renewing: tokio::sync::Mutex::new(()),
            http,
        })
    }

    /// Signature and claims, cached per token (the dates are checked on every call).
    fn verify(&self, token: &str) -> Result<LicenseClaims, String> {
        if let Some(hit) = self.verified.lock().get(token) {
            return hit.clone();
        }
        let result = verify_token(token, &self.settings);
        let mut cache = self.verified.lock();
        if cache.len() >= VERIFY_CACHE {
            cache.clear();
        }
        cache.insert(token.to_string(), result.clone());
        result
    }

    fn view(&self, source: Source, token: String, now: i64) -> SourceView {
        let verified = self.verify(&token);
        self.known_view(source, token, &verified, now)
    }

    /// The view of a token whose verification is known.
    fn known_view(
        &self,
        source: Source,
        token: String,
        verified: &Result<LicenseClaims, String>,
        now: i64,
    ) -> SourceView {
        match verified {
            Ok(claims) => self.verified_view(source, token, claims.clone(), now),
            Err(reason) => self.unverified_view(source, token, reason.clone()),
        }
    }

    fn verified_view(
        &self,
        source: Source,
        token: String,
        claims: LicenseClaims,
        now: i64,
    ) -> SourceView {
        let (state, reason) = match validate(&claims, &self.settings.root_url, now) {
            Ok(()) => (LicenseState::Valid, String::new()),
            Err(Invalid { state, reason }) => (state, reason),
        };
        SourceView {
            source,
            token,
            claims: Some(claims),
            state,
            reason,
        }
    }

    fn unverified_view(&self, source: Source, token: String, reason: String) -> SourceView {
        SourceView {
            source,
            claims: jws::peek_claims(&token)
                .ok()
                .and_then(|c| serde_json::from_slice(&c).ok()),
            token,
            state: LicenseState::Invalid,
            reason,
        }
    }

    /// Whether `claims` (a verified token's) hold now.
    fn holds(&self, claims: &LicenseClaims, now: i64) -> bool {
        validate(claims, &self.settings.root_url, now).is_ok()
    }

    /// The database's token, from memory once read (see [`LicensingService::stored`]).
    async fn stored_license(&self) -> Result<Option<Arc<StoredView>>, AppError> {
        let generation = {
            let memo = self.stored.lock();
            if let Some(v) = &memo.value {
                return Ok(v.clone());
            }
            memo.generation
        };
        let read = self.store.license().await?.map(|license| {
            Arc::new(StoredView {
                verified: self.verify(&license.token),
                license,
            })
        });
        let mut memo = self.stored.lock();
        if memo.generation == generation {
            memo.value = Some(read.clone());
        }
        Ok(read)
    }

    /// The database's token changed (here, after the commit, or on another node): the next
    /// call reads it again.
    pub fn forget_stored(&self) {
        let mut memo = self.stored.lock();
        memo.generation += 1;
        memo.value = None;
    }

    /// Every present source, in precedence order.
    pub async fn evaluate(&self) -> Result<Evaluation, AppError> {
        let now = self.clock.now();
        let mut sources = Vec::new();
        if let Some(stored) = self.stored_license().await? {
            let token = stored.license.token.clone();
            sources.push(self.known_view(Source::Database, token, &stored.verified, now));
        }
        if let Some((token, verified)) = &self.config {
            sources.push(self.known_view(Source::Config, token.clone(), verified, now));
        }
        match &*self.file_license() {
            FileLicense::Absent => {}
            FileLicense::Token { token, verified } => {
                sources.push(self.known_view(Source::File, token.clone(), verified, now));
            }
            FileLicense::Unreadable(e) => sources.push(SourceView {
                source: Source::File,
                token: String::new(),
                claims: None,
                state: LicenseState::Invalid,
                reason: format!("cannot read {}: {e}", self.file.path().display()),
            }),
        }
        Ok(Evaluation {
            effective: sources.first().cloned(),
            sources,
        })
    }

    /// `GET /api/licensing/check`: any authenticated caller. What [`Self::evaluate`]'s
    /// state says (`Valid`), reading only the source in effect: the database's token from
    /// memory, else the configured text, else the file.
    pub async fn check(&self) -> Result<bool, AppError> {
        let now = self.clock.now();
        if let Some(stored) = self.stored_license().await? {
            return Ok(stored
                .verified
                .as_ref()
                .is_ok_and(|claims| self.holds(claims, now)));
        }
        if let Some((_, verified)) = &self.config {
            return Ok(verified
                .as_ref()
                .is_ok_and(|claims| self.holds(claims, now)));
        }
        Ok(matches!(
            &*self.file_license(),
            FileLicense::Token { verified: Ok(claims), .. } if self.holds(claims, now)
        ))
    }

    /// The file at `license_path`, from memory while it is unchanged: absent or blank, no
    /// license; unreadable, an invalid one.
    fn file_license(&self) -> Arc<FileLicense> {
        self.file.get(|contents: Contents| match contents {
            Ok(Some(t)) if !t.trim().is_empty() => {
                let token = t.trim().to_string();
                FileLicense::Token {
                    verified: self.verify(&token),
                    token,
                }
            }
            Ok(_) => FileLicense::Absent,
            Err(e) => FileLicense::Unreadable(e.to_string()),
        })
    }

    /// `GET /api/licensing/token`: the claims of the token in effect.
    pub async fn token(&self, p: &Principal) -> Result<(LicenseClaims, LicenseState), AppError> {
        p.require(Action::LicensingRead, "")?;
        match self.evaluate().await?.effective {
            Some(SourceView {
                claims: Some(c),
                state,
                ..
            }) => Ok((c, state)),
            Some(v) => Err(AppError::bad_request(v.reason)),
            None => Err(AppError::not_found("No license token found")),
        }
    }

    /// `POST /api/licensing/token`: stores a token only when it is valid for this server.
    pub async fn upload(&self, p: &Principal, token: &str) -> Result<LicenseClaims, AppError> {
        p.require(Action::LicensingWrite, "")?;
        let token = token.trim();
        if token.is_empty() {
            return Err(AppError::bad_request("token is required"));
        }
        let v = self.view(Source::Database, token.to_string(), self.clock.now());
        match (v.state, v.claims) {
            (LicenseState::Valid, Some(claims)) => {
                self.store_token(token).await?;
                tracing::info!(lid = %claims.lid, "license token stored");
                Ok(claims)
            }
            _ => Err(AppError::bad_request(v.reason)),
        }
    }

    async fn store_token(&self, token: &str) -> Result<(), AppError> {
        let stored = self
            .store
            .put_license(&StoredLicense {
                token: token.to_string(),
                stored_at: self.clock.now(),
            })
            .await;
        // Committed or not (a failure may have reached the database): read it again.
        self.forget_stored();
        Ok(stored?)
    }

    /// `DELETE /api/licensing/token`: removes the database token (202 whether or not there
    /// was one); `instance` must be this server's `root_url`.
    pub async fn remove(&self, p: &Principal, instance: &str) -> Result<(), AppError> {
        p.require(Action::LicensingDelete, "")?;
        if !same_instance(instance, &self.settings.root_url) {
            return Err(AppError::Unprocessable(
                "incorrect instance name provided".into(),
            ));
        }
        let removed = self.store.delete_license().await;
        self.forget_stored();
        if removed? {
            tracing::info!("license token removed from the database");
        }
        Ok(())
    }

    async fn seats(&self, claims: Option<&LicenseClaims>) -> Result<Seats, AppError> {
        let c = self.counts.counts().await?;
        let admins_and_editors = c.admins + c.editors;
        let viewers = c.viewers + c.no_role;
        let users = c.users;
        let mut s = Seats {
            users,
            admins_and_editors,
            viewers,
            ..Seats::default()
        };
        if let Some(cl) = claims {
            s.included_users = cl.included_users;
            s.included_admins = cl.included_admins;
            s.included_viewers = cl.included_viewers;
            let over = |included: i64, used: u64| included > 0 && used > included as u64;
            s.over_limit = over(cl.included_users, users)
                || over(cl.included_admins, admins_and_editors)
                || over(cl.included_viewers, viewers);
        }
        Ok(s)
    }

    /// `GET /api/licensing/status`.
    pub async fn status(&self, p: &Principal) -> Result<LicenseStatus, AppError> {
        p.require(Action::LicensingRead, "")?;
        let evaluation = self.evaluate().await?;
        let claims = evaluation
            .effective
            .as_ref()
            .and_then(|e| e.claims.as_ref());
        let seats = self.seats(claims).await?;
        let e = &self.settings.enterprise;
        let auto = e.auto_refresh_license && !e.license_url.is_empty();
        let next_renewal_at = match (auto, claims) {
            (true, Some(c)) => {
                let b = self.backoff.lock();
                Some((c.iat + update_days(c) * 86_400).max(b.next_try))
            }
            _ => None,
        };
        Ok(LicenseStatus {
            seats,
            now: self.clock.now(),
            instance: self.settings.root_url.clone(),
            auto_refresh: auto,
            license_url: e.license_url.clone(),
            next_renewal_at,
            last_renewal: self.store.last_renewal().await?,
            evaluation,
        })
    }

    /// `GET /api/licensing/refresh-stats`: recounts active users now (one pass).
    pub async fn refresh_stats(&self, p: &Principal) -> Result<ActiveUserStats, AppError> {
        p.require(Action::LicensingRead, "")?;
        self.stats.refresh().await?;
        let s = self.stats.stats(&Principal::system()).await?;
        Ok(ActiveUserStats {
            active_admins_and_editors: s.active_admins + s.active_editors,
            active_viewers: s.active_viewers,
            active_users: s.active_users,
        })
    }

    /// What a renewal sends: the token in effect, this instance and the seat counts. Also
    /// the air-gapped form (`GET /api/licensing/renew-request`, carried as a file).
    pub async fn renew_request(&self, p: &Principal) -> Result<RenewRequest, AppError> {
        p.require(Action::LicensingWrite, "")?;
        self.build_renew_request().await
    }

    async fn build_renew_request(&self) -> Result<RenewRequest, AppError> {
        let eval = self.evaluate().await?;
        let Some(current) = eval.effective.filter(|e| e.claims.is_some()) else {
            return Err(AppError::not_found(
                "No license token to renew: upload one first",
            ));
        };
        let seats = self.seats(None).await?;
        Ok(RenewRequest {
            token: current.token,
            instance: self.settings.root_url.clone(),
            requested_at: self.clock.now(),
            stats: RenewStats {
                users: seats.users,
                admins_and_editors: seats.admins_and_editors,
                viewers: seats.viewers,
            },
        })
    }

    /// `POST /api/licensing/token/renew`.
    pub async fn renew(&self, p: &Principal) -> Result<LicenseClaims, AppError> {
        p.require(Action::LicensingWrite, "")?;
        self.renew_now("manual").await
    }

    async fn renew_now(&self, trigger: &str) -> Result<LicenseClaims, AppError> {
        let _one = self.renewing.lock().await;
        let result = self.ask_issuer().await;
        let record = RenewalRecord {
            at: self.clock.now(),
            trigger: trigger.to_string(),
            ok: result.is_ok(),
            error: result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default(),
        };
        self.store.put_renewal(&record).await?;
        match &result {
            Ok(c) => tracing::info!(lid = %c.lid, trigger, "license token renewed"),
            Err(e) => tracing::warn!(error = %e, trigger, "license renewal failed"),
        }
        result
    }

    async fn ask_issuer(&self) -> Result<LicenseClaims, AppError> {
        let request = self.build_renew_request().await?;
        let url = &self.settings.enterprise.license_url;
        if url.is_empty() {
            // Nothing upstream failed: this server is not set up to renew.
            return Err(AppError::bad_request(
                "no license issuer configured: set [enterprise] license_url, or renew \
                 offline (GET /api/licensing/renew-request)",
            ));
        }
        let response = self
            .http
            .post(url)
            .json(&request)
            .send()
            .await
            .map_err(|e| {
                AppError::Upstream(format!(
                    "license issuer unreachable at {url}: {}",
                    root_cause(&e)
                ))
            })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let why = body["message"].as_str().unwrap_or("no reason given");
            return Err(AppError::Upstream(format!(
                "license issuer refused the renewal ({}): {why}",
                status.as_u16()
            )));
        }
        let Some(token) = body["token"].as_str() else {
            return Err(AppError::Upstream(
                "license issuer answered without a token".into(),
            ));
        };
        let v = self.view(Source::Database, token.to_string(), self.clock.now());
        match (v.state, v.claims) {
            (LicenseState::Valid, Some(claims)) => {
                self.store_token(token).await?;
                Ok(claims)
            }
            _ => Err(AppError::Upstream(format!(
                "license issuer returned a token that is not valid here: {}",
                v.reason
            ))),
        }
    }

    /// The automatic renewal, called every minute on every node: renews when the token is
    /// `update_days` old, backing off with jitter after failures. Each attempt is recorded.
    /// On several nodes one attempt is made per interval: the job lock lets one node at a
    /// time in, and the recorded last attempt (shared) holds the others back after a
    /// failure, as the renewed token (shared) does after a success.
    pub async fn auto_renew_tick(&self) {
        let e = &self.settings.enterprise;
        if !e.auto_refresh_license || e.license_url.is_empty() {
            return;
        }
        let _lock = match self
            .jobs
            .try_job_lock(crate::store::Job::LicenseRenewal)
            .await
        {
            Ok(Some(lock)) => lock,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the license renewal lock");
                return;
            }
        };
        let Ok(eval) = self.evaluate().await else {
            return;
        };
        let Some(claims) = eval.effective.and_then(|v| v.claims) else {
            return;
        };
        let at = self.clock.now();
        let due = claims.iat + update_days(&claims) * 86_400;
        if at < due || at < self.backoff.lock().next_try {
            return;
        }
        // Any node's failed automatic attempt holds every node back for the first backoff.
        if let Ok(Some(last)) = self.store.last_renewal().await {
            if !last.ok && last.trigger == "automatic" && at < last.at + backoff_seconds(1, 0.0) {
                return;
            }
        }
        let ok = self.renew_now("automatic").await.is_ok();
        let mut b = self.backoff.lock();
        if ok {
            *b = Backoff::default();
        } else {
            b.failures += 1;
            let jitter = f64::from(crate::crypto::random::bytes::<1>()[0]) / 255.0;
            b.next_try = at + backoff_seconds(b.failures, jitter);
        }
    }
}

/// The innermost error text (reqwest wraps the connect error several times).
/// Signature and claims of `token` against the configured issuer keys.
fn verify_token(token: &str, settings: &Settings) -> Result<LicenseClaims, String> {
    jws::verify(token, &settings.enterprise.license_issuer_keys)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            serde_json::from_slice::<LicenseClaims>(&v.claims)
                .map_err(|e| format!("malformed token: claims: {e}"))
        })
        .and_then(|c| check_claims(&c).map(|()| c))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;

    use crate::store::{Store, StoreResult};

    /// The store, counting reads of the license row.
    struct Counting {
        inner: Arc<dyn Store>,
        reads: AtomicU64,
    }

    #[async_trait]
    impl LicenseStore for Counting {
        async fn license(&self) -> StoreResult<Option<StoredLicense>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.inner.license().await
        }
        async fn put_license(&self, license: &StoredLicense) -> StoreResult<()> {
            self.inner.put_license(license).await
        }
        async fn delete_license(&self) -> StoreResult<bool> {
            self.inner.delete_license().await
        }
        async fn last_renewal(&self) -> StoreResult<Option<RenewalRecord>> {
            self.inner.last_renewal().await
        }
        async fn put_renewal(&self, record: &RenewalRecord) -> StoreResult<()> {
            self.inner.put_renewal(record).await
        }
    }

    /// `GET /api/licensing/check` reads the database's token once and then from memory;
    /// this node's upload and removal are seen at once (each read again once), and a change
    /// made elsewhere once `forget_stored` ran (`Topic::License` from another node).
    #[tokio::test]
    async fn the_stored_token_is_read_once_until_a_change() {
        const ROOT: &str = "http://tollgate.test/";
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_sled_for_tests(&dir.path().join("db"))
            .await
            .unwrap();
        let key = jws::SigningKey::generate().unwrap();
        let env = [
            ("GF_PATHS_DATA", dir.path().to_str().unwrap().to_string()),
            ("GF_SERVER_ROOT_URL", ROOT.to_string()),
            (
                "GF_ENTERPRISE_LICENSE_ISSUER_KEYS",
                key.public().to_config(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let raw = crate::config::RawConfig::load_with_env(None, &env).unwrap();
        let settings = Arc::new(Settings::from_raw(raw).unwrap());
        let clock: Arc<dyn Clock> = Arc::new(crate::domain::time::SystemClock);
        let counting = Arc::new(Counting {
            inner: store.clone(),
            reads: AtomicU64::new(0),
        });
        let stats = Arc::new(StatsService::new(
            store.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
        ));
        let l = LicensingService::new(
            settings,
            counting.clone(),
            store.clone(),
            stats,
            store.clone(),
            clock.clone(),
        )
        .unwrap();
        let reads = || counting.reads.load(Ordering::Relaxed);
        let now = clock.now();
        let claims = LicenseClaims {
            jti: "jti-memo".into(),
            iss: "test-issuer".into(),
            sub: ROOT.into(),
            iat: now,
            exp: now + 10 * 86_400,
            nbf: now - 86_400,
            lexp: now + 365 * 86_400,
            lid: "memo".into(),
            ..Default::default()
        };
        let token = key.sign(&serde_json::to_vec(&claims).unwrap());

        for _ in 0..3 {
            assert!(!l.check().await.unwrap());
        }
        assert_eq!(reads(), 1, "no token: read once");
        l.store_token(&token).await.unwrap();
        for _ in 0..3 {
            assert!(l.check().await.unwrap(), "valid at once");
        }
        assert_eq!(l.evaluate().await.unwrap().state(), LicenseState::Valid);
        assert_eq!(reads(), 2, "after the upload: read once more");
        // Removed behind this node's back (another node): seen once the topic drops it.
        assert!(store.delete_license().await.unwrap());
        l.forget_stored();
        assert!(!l.check().await.unwrap());
        assert_eq!(reads(), 3);
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        assert_eq!(backoff_seconds(1, 0.5), 60);
        assert_eq!(backoff_seconds(2, 0.5), 120);
        assert_eq!(backoff_seconds(3, 0.5), 240);
        assert_eq!(backoff_seconds(30, 0.5), 6 * 3600);
        assert_eq!(backoff_seconds(1, 0.0), 48);
        assert_eq!(backoff_seconds(1, 1.0), 72);
    }
}
