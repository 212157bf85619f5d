//! Authentication: turning credentials into a [`Principal`].
//!
//! Basic credentials are checked with PBKDF2 off the runtime. A verified credential is
//! remembered for a short while under a keyed hash of (login, password), never the password
//! itself, so repeated Basic calls do not re-run PBKDF2. Every hit re-reads the user row and
//! checks the password fingerprint and the disabled flag, so a password change, disable or
//! delete takes effect on the very next request; the services also drop the user's entries
//! explicitly. Concurrent requests with a credential the cache does not hold share one
//! verification (`service::credentials`). Unknown logins run the same PBKDF2 against a
//! dummy hash.
//!
//! Brute-force protection (in memory, per node) counts failures in a sliding five-minute
//! window of the service clock, two ways:
//! - per (account, source address): the account is the user a login resolves to, whatever
//!   the spelling (login, email, any case), or the lower-cased login when none matches.
//!   After `brute_force_login_protection_max_attempts` failures that pair is blocked, while
//!   the same account from another address still signs in: strangers cannot lock the owner
//!   out, which counting per login as Grafana does would allow;
//! - per source address, across all logins, known or not: after
//!   `brute_force_max_attempts_per_ip` failures the address is blocked.
//!
//! A source address is the client IP (IPv6: its /64, which one client usually holds whole).
//! A success clears its pair's count, never the address's (else an attacker with one valid
//! account could reset it). A blocked attempt answers exactly like a wrong password and is
//! not counted.
//!
//! Every password check counts in the activity series (`StatsStore::record_sign_in`): a
//! refused one (wrong password, unknown login, blocked) as a failed sign-in; a successful
//! one as a sign-in when a password was actually verified, that is every `POST /login`
//! and a Basic request the credential cache did not answer (LDAP credentials are checked
//! against the directory on every request). API keys and sessions are no sign-ins.
//!
//! No timing oracle: a wrong password, an unknown login and a blocked attempt each cost at
//! least one password verification at the configured `password_hash_iterations` (a stored
//! hash made at a lower cost is padded up; unknown logins and blocked attempts verify a
//! dummy hash).

use crate::service::ldap::LdapService;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::Settings;
use crate::crypto::PasswordHash;
use crate::domain::time::Clock;
use crate::domain::{AuthKind, OrgId, OrgRole, Principal};
use crate::error::AppError;
use crate::service::access::RoleCatalog;
use crate::service::api_keys::ApiKeyService;
use crate::service::credentials::{CredentialCache, CredentialKey, Verification};
use crate::service::sessions::SessionService;
use crate::store::{SeriesSpan, StatsStore, UserRecord, UserStore};

pub const INVALID_CREDENTIALS: &str = "invalid username or password";
/// The `/login` spelling of the same answer.
pub const INVALID_LOGIN: &str = "Invalid username or password";
/// The action of a sign-in's audit event (a sign-in has no RBAC action).
pub const SIGN_IN_ACTION: &str = "auth:login";
/// The brute-force window, in milliseconds of the service clock.
const BRUTE_FORCE_WINDOW_MS: i64 = 300_000;
const GUARD_CAPACITY: usize = 100_000;
/// Grafana refreshes `last_seen_at` at most this often.
const LAST_SEEN_INTERVAL: i64 = 300;

/// Whose failures a sign-in counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Account {
    /// The user the login (or email) resolved to.
    User(u64),
    /// A login that matches no user, lower-cased.
    Unknown(String),
}

impl Account {
    fn of(user: Option<&UserRecord>, login: &str) -> Self {
        match user {
            Some(u) => Self::User(u.id),
            None => Self::Unknown(login.trim().to_lowercase()),
        }
    }
}

/// The source a client address counts as: the IP itself, an IPv6 address's /64, or ""
/// when the client has no IP address (a Unix socket peer).
fn source_of(client: Option<IpAddr>) -> String {
    match client.map(crate::config::canonical_ip) {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(v4) => v4.to_string(),
        None => String::new(),
    }
}

/// A client address as text, for logs and session records ("" without one).
fn ip_text(client: Option<IpAddr>) -> String {
    client.map_or_else(String::new, |ip| ip.to_string())
}

/// Failure times per key, at most `limit` kept per key (more would not change the answer).
struct FailureLog<K> {
    limit: usize,
    failures: Mutex<HashMap<K, VecDeque<i64>>>,
}

impl<K: Eq + Hash> FailureLog<K> {
    fn new(limit: u32) -> Self {
        Self {
            limit: (limit as usize).max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// No failure on record (the usual case: the checks below need no key then).
    fn is_empty(&self) -> bool {
        self.failures.lock().is_empty()
    }

    fn blocked(&self, key: &K, now: i64) -> bool {
        self.failures.lock().get(key).is_some_and(|v| {
            v.iter()
                .filter(|t| now - **t < BRUTE_FORCE_WINDOW_MS)
                .count()
                >= self.limit
        })
    }

    fn failed(&self, key: K, now: i64) {
        let live = |t: &i64| now - *t < BRUTE_FORCE_WINDOW_MS;
        let mut map = self.failures.lock();
        if map.len() >= GUARD_CAPACITY {
            map.retain(|_, v| v.iter().any(live));
        }
        let entry = map.entry(key).or_default();
        entry.retain(live);
        entry.push_back(now);
        while entry.len() > self.limit {
            entry.pop_front();
        }
    }

    fn clear(&self, key: &K) {
        self.failures.lock().remove(key);
    }

    fn clear_where(&self, f: impl Fn(&K) -> bool) {
        self.failures.lock().retain(|k, _| !f(k));
    }
}

/// Failed sign-ins per (account, source) and per source, in a sliding five-minute window.
pub struct LoginGuard {
    enabled: bool,
    clock: Arc<dyn Clock>,
    pairs: FailureLog<(Account, String)>,
    sources: FailureLog<String>,
    /// Attempts refused because the account or address was blocked (`/metrics`).
    blocks: std::sync::atomic::AtomicU64,
}

impl LoginGuard {
    pub fn new(settings: &Settings, clock: Arc<dyn Clock>) -> Self {
        Self {
            enabled: !settings.disable_brute_force_login_protection,
            clock,
            pairs: FailureLog::new(settings.brute_force_max_attempts),
            sources: FailureLog::new(settings.brute_force_max_attempts_per_ip),
            blocks: Default::default(),
        }
    }

    pub fn blocked(&self, account: &Account, client_ip: Option<IpAddr>) -> bool {
        if !self.enabled || (self.sources.is_empty() && self.pairs.is_empty()) {
            return false;
        }
        let (source, now) = (source_of(client_ip), self.clock.now_ms());
        let blocked = self.sources.blocked(&source, now)
            || self.pairs.blocked(&(account.clone(), source), now);
        if blocked {
            self.blocks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        blocked
    }

    /// How many attempts were refused as blocked since start.
    pub fn blocks(&self) -> u64 {
        self.blocks.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn failed(&self, account: &Account, client_ip: Option<IpAddr>) {
        if !self.enabled {
            return;
        }
        let (source, now) = (source_of(client_ip), self.clock.now_ms());
        self.sources.failed(source.clone(), now);
        self.pairs.failed((account.clone(), source), now);
    }

    /// A success clears the pair, not the source (see the module docs).
    pub fn succeeded(&self, account: &Account, client_ip: Option<IpAddr>) {
        if self.enabled && !self.pairs.is_empty() {
            self.pairs.clear(&(account.clone(), source_of(client_ip)));
        }
    }

    /// An administrator set the user's password (Grafana resets the login's attempts
    /// then): the account's failures from every address are forgotten on this node. The
    /// addresses' own counts stay.
    pub fn reset_user(&self, user: u64) {
        let account = Account::User(user);
        self.pairs.clear_where(|(a, _)| *a == account);
    }
}

pub struct AuthService {
    store: Arc<dyn UserStore>,
    settings: Arc<Settings>,
    catalog: Arc<RoleCatalog>,
    credentials: Arc<CredentialCache>,
    guard: Arc<LoginGuard>,
    sessions: Arc<SessionService>,
    api_keys: Arc<ApiKeyService>,
    ldap: Arc<LdapService>,
    series: Arc<dyn StatsStore>,
    dummy: PasswordHash,
    clock: Arc<dyn Clock>,
}

/// A principal, the user row when there is one, and, for sessions, the rotated token to
/// hand back.
pub struct Authenticated {
    pub principal: Principal,
    /// Boxed: this value and the extractor holding it are moved several times per request,
    /// and the row is about 290 bytes.
    pub user: Option<Arc<UserRecord>>,
    pub new_session_token: Option<String>,
}

impl From<Principal> for Authenticated {
    fn from(principal: Principal) -> Self {
        Self {
            principal,
            user: None,
            new_session_token: None,
        }
    }
}

/// What the credential cache says of a (login, password).
enum Cached<'a> {
    /// Verified recently; the user row, re-read (boxed, as the request keeps it).
    Hit(Arc<UserRecord>),
    /// To be verified by this request (a miss, or an entry this request renews), with the
    /// credential's turn unless it waited for another request's verification already.
    Verify(Option<Verification<'a>>),
}

impl AuthService {
    #[allow(clippy::too_many_arguments)] // reason: the composition root wires each dependency once
    pub fn new(
        store: Arc<dyn UserStore>,
        settings: Arc<Settings>,
        catalog: Arc<RoleCatalog>,
        credentials: Arc<CredentialCache>,
        guard: Arc<LoginGuard>,
        sessions: Arc<SessionService>,
        api_keys: Arc<ApiKeyService>,
        ldap: Arc<LdapService>,
        series: Arc<dyn StatsStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let dummy = PasswordHash::new("tollgate-dummy-password", settings.password_hash_iterations);
        Self {
            guard,
            store,
            settings,
            catalog,
            credentials,
            sessions,
            api_keys,
            ldap,
            series,
            dummy,
            clock,
        }
    }

    /// Sign-in attempts refused by brute-force protection since start.
    pub fn blocked_sign_ins(&self) -> u64 {
        self.guard.blocks()
    }

    /// Password check with brute-force protection for this client address. A blocked
    /// attempt answers exactly like a wrong password, after as long, without checking it,
    /// and counts as a failed sign-in, as a wrong password does. The user, and whether a
    /// password was verified (false when the credential cache answered).
    async fn check_password(
        &self,
        login: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(Arc<UserRecord>, bool), AppError> {
        // Every request with Basic credentials comes here, and almost all of them are
        // answered from the credential cache. The other paths (a lookup, a hash check, the
        // directory) are boxed: awaited in place, the largest of them (LDAP's connection,
        // about 5 KB) would size this future, every handler future that authenticates, and
        // the copy poem makes of it into the heap on every request.
        // The row is shared as it arrives (the store's caches hold it so): it travels
        // through every step below and on into the request's principal as one pointer.
        let key = self.credentials.key(login, password);
        // The turn to verify this credential, held until the verified credential is cached
        // (or refused): other requests with it wait for that, then read the entry.
        let (user, cached, turn) = match self.cached(&key).await? {
            Cached::Hit(u) => (Some(u), true, None),
            Cached::Verify(turn) => {
                let user = Box::pin(self.lookup(login)).await?.map(Arc::new);
                (user, false, turn)
            }
        };
        let account = Account::of(user.as_deref(), login);
        if self.guard.blocked(&account, client_ip) {
            Box::pin(self.hash_check(self.dummy.clone(), password)).await?;
            tracing::warn!(
                login,
                client_ip = ip_text(client_ip),
                "sign-in blocked by brute-force protection"
            );
            self.count_sign_in(false).await;
            return Err(AppError::Unauthorized(INVALID_CREDENTIALS.into()));
        }
        let verified = !cached;
        let result = match user {
            Some(user) if cached => self.usable(user),
            user => Box::pin(self.verify_password(user.map(Arc::unwrap_or_clone), &key, password))
                .await
                .map(Arc::new),
        };
        // Cached, or refused: the requests waiting for this verification look again (and
        // do not wait for the directory below).
        drop(turn);
        // Local users first (a local admin signs in while the directory is down), then LDAP.
        let result = match result {
            Err(AppError::Unauthorized(m)) if m == INVALID_CREDENTIALS => {
                match Box::pin(self.ldap.authenticate(login, password)).await? {
                    Some(user) => self.usable(Arc::new(user)),
                    None => Err(AppError::Unauthorized(m)),
                }
            }
            other => other,
        };
        match result {
            Ok(user) => {
                self.guard.succeeded(&account, client_ip);
                self.guard
                    .succeeded(&Account::of(Some(&user), login), client_ip);
                Ok((user, verified))
            }
            Err(e) => {
                if matches!(&e, AppError::Unauthorized(m) if m == INVALID_CREDENTIALS) {
                    self.guard.failed(&account, client_ip);
                    self.count_sign_in(false).await;
                }
                Err(e)
            }
        }
    }

    /// Best effort: a lost count is no reason to refuse or fail a sign-in.
    async fn count_sign_in(&self, ok: bool) {
        if let Err(e) = self.series.record_sign_in(self.clock.now(), ok).await {
            tracing::debug!(error = %e, "could not count the sign-in");
        }
    }

    /// `POST /login`: a new session for valid credentials; (token, user).
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        client_ip: Option<IpAddr>,
        user_agent: &str,
    ) -> Result<(String, UserRecord), AppError> {
        if self.settings.disable_login_form {
            return Err(AppError::Unauthorized("Login is disabled".into()));
        }
        let (user, _) = self
            .check_password(login, password, client_ip)
            .await
            .map_err(|e| match e {
                AppError::Unauthorized(m) if m == INVALID_CREDENTIALS => {
                    AppError::Unauthorized(INVALID_LOGIN.into())
                }
                other => other,
            })?;
        crate::domain::audit::update(|e| {
            e.actor.user_id = Some(user.id);
            e.actor.login.clone_from(&user.login);
            e.actor.auth_method = if user.auth_module == "ldap" {
                "ldap"
            } else {
                "form"
            }
            .into();
            e.action = SIGN_IN_ACTION.into();
            e.target_kind = "user".into();
            e.target_id = user.id.to_string();
        });
        let (token, _) = self
            .sessions
            .create(&user, &ip_text(client_ip), user_agent)
            .await?;
        // A password reset or disable that landed while the password was being checked
        // has already revoked the user's sessions, but not this one, created after it: the
        // sign-in then counts as coming after the change, and is refused.
        let now = self.store.user(user.user_id()).await?;
        let still_valid = now.is_some_and(|u| !u.is_disabled && u.password == user.password);
        if !still_valid {
            self.sessions.sign_out(&token).await?;
            return Err(AppError::Unauthorized(INVALID_LOGIN.into()));
        }
        if let Err(e) = self
            .store
            .touch_last_seen(user.user_id(), self.clock.now())
            .await
        {
            tracing::debug!(error = %e, "could not record last_seen_at");
        }
        self.count_sign_in(true).await;
        tracing::info!(user = user.id, client_ip = ip_text(client_ip), "signed in");
        Ok((token, Arc::unwrap_or_clone(user)))
    }

    /// A session cookie's principal, and the replacement token when it rotated.
    pub async fn session(&self, token: &str) -> Result<Authenticated, AppError> {
        let r = self.sessions.resolve(token).await?;
        Ok(Authenticated {
            principal: self
                .principal_for(&r.user, AuthKind::Session, Some(r.session.id))
                .await,
            user: Some(r.user),
            new_session_token: r.new_token,
        })
    }

    /// A legacy API key's principal: its org role, never Grafana Admin.
    pub async fn api_key(&self, key: &str) -> Result<Principal, AppError> {
        let k = self.api_keys.authenticate(key).await?;
        crate::domain::audit::update(|e| e.actor.token_id = Some(k.id));
        let role = OrgRole::from_byte(k.role).unwrap_or(OrgRole::None);
        Ok(Principal {
            user_id: None,
            login: format!("api-key:{}", k.name),
            org_id: OrgId(k.org_id),
            org_role: role,
            is_grafana_admin: false,
            kind: AuthKind::ApiKey,
            session_id: None,
            permissions: self.catalog.permissions_for(role, false),
        })
    }

    /// The user a recently verified (login, password) belongs to, from the credential
    /// cache, when the stored hash is still the one verified. Else this request verifies
    /// it: with the credential's turn when no other request is verifying it; after
    /// waiting for the one that is, when that one left no entry (a refused password is
    /// verified by every request, in parallel). An entry due for renewal answers too,
    /// except for the one request that claims its renewal and verifies it again.
    async fn cached<'a>(&'a self, key: &CredentialKey) -> Result<Cached<'a>, AppError> {
        let mut waited = false;
        loop {
            if let Some(hit) = self.credentials.get(key) {
                let c = hit.credential;
                if let Some(user) = self.store.user(c.user).await? {
                    let same = user
                        .password
                        .as_ref()
                        .is_some_and(|p| p.fingerprint() == c.fingerprint);
                    if same {
                        let renewal = hit
                            .due_for_renewal
                            .then(|| self.credentials.claim_renewal(key))
                            .flatten();
                        return Ok(match renewal {
                            Some(turn) => Cached::Verify(Some(turn)),
                            None => Cached::Hit(user),
                        });
                    }
                }
                self.credentials.forget_user(c.user);
            }
            if waited {
                return Ok(Cached::Verify(None));
            }
            // Boxed: waiting is rare, and would otherwise size every Basic request's future.
            match Box::pin(self.credentials.turn(key)).await {
                Some(turn) => return Ok(Cached::Verify(Some(turn))),
                None => waited = true,
            }
        }
    }

    /// The user a login or an email names (both case-insensitive).
    async fn lookup(&self, login: &str) -> Result<Option<UserRecord>, AppError> {
        Ok(match self.store.user_by_login(login).await? {
            Some(u) => Some(u),
            None => self.store.user_by_email(login).await?,
        })
    }

    /// One password verification off the runtime, at no less than the configured cost.
    async fn hash_check(&self, hash: PasswordHash, password: &str) -> Result<bool, AppError> {
        let pw = zeroize::Zeroizing::new(password.to_string());
        let iterations = self.settings.password_hash_iterations;
        tokio::task::spawn_blocking(move || hash.verify_at_least(&pw, iterations))
            .await
            .map_err(|e| AppError::internal("Internal Server Error", e))
    }

    /// Checks a password against the user `login` resolved to (a dummy hash when none, or
    /// when it is a service account or has no password), and upgrades a weak hash.
    async fn verify_password(
        &self,
        user: Option<UserRecord>,
        key: &CredentialKey,
        password: &str,
    ) -> Result<UserRecord, AppError> {
        let hash = user
            .as_ref()
            .and_then(|u| u.password.clone())
            .filter(|_| user.as_ref().is_some_and(|u| !u.is_service_account));
        let target = hash.clone().unwrap_or_else(|| self.dummy.clone());
        let ok = self.hash_check(target, password).await?;
        let (Some(mut user), Some(hash), true) = (user, hash, ok) else {
            return Err(AppError::Unauthorized(INVALID_CREDENTIALS.into()));
        };
        let iterations = self.settings.password_hash_iterations;
        if hash.needs_rehash(iterations) {
            let pw = zeroize::Zeroizing::new(password.to_string());
            let new = tokio::task::spawn_blocking(move || PasswordHash::new(&pw, iterations))
                .await
                .map_err(|e| AppError::internal("Internal Server Error", e))?;
            // Only if the stored hash is still the one just verified: a password reset
            // that landed meanwhile wins. Best effort: a failed upgrade leaves the old
            // hash working.
            match self
                .store
                .upgrade_password(user.user_id(), &hash, new.clone())
                .await
            {
                Ok(true) => user.password = Some(new),
                Ok(false) => {
                    tracing::debug!(user = user.id, "hash upgrade skipped: the password changed");
                    return self.usable(user);
                }
                Err(e) => {
                    tracing::warn!(user = user.id, error = %e, "could not upgrade password hash");
                }
            }
        }
        if let Some(p) = &user.password {
            self.credentials.put(*key, &user, p.fingerprint());
        }
        self.usable(user)
    }

    /// The user, unless disabled (a row or a boxed one).
    fn usable<U: std::borrow::Borrow<UserRecord>>(&self, user: U) -> Result<U, AppError> {
        if user.borrow().is_disabled {
            return Err(AppError::Unauthorized("User is disabled".into()));
        }
        Ok(user)
    }

    /// Basic auth: `Authorization: Basic base64(login:password)`; `api_key:<key>` is an
    /// API key.
    pub async fn basic(
        &self,
        login: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Authenticated, AppError> {
        if login == "api_key" {
            return self.api_key(password).await.map(Authenticated::from);
        }
        if !self.settings.basic_auth_enabled {
            return Err(AppError::Unauthorized("Basic auth is disabled".into()));
        }
        let (user, verified) = self.check_password(login, password, client_ip).await?;
        if verified {
            self.count_sign_in(true).await;
        }
        Ok(Authenticated {
            principal: self.principal_for(&user, AuthKind::Basic, None).await,
            user: Some(user),
            new_session_token: None,
        })
    }

    /// The principal a user acts as in their current org.
    pub async fn principal_for(
        &self,
        user: &UserRecord,
        kind: AuthKind,
        session_id: Option<u64>,
    ) -> Principal {
        self.principal_in(user, kind, session_id, OrgId(user.org_id))
            .await
    }

    /// Grafana's `X-Grafana-Org-Id`: a signed-in user (Basic or session) acts in the named
    /// org for this request, with its role there (none when not a member: only Grafana
    /// Admin grants apply). API keys and service accounts stay in their own org.
    pub async fn select_org(&self, authenticated: &mut Authenticated, org: OrgId) {
        let p = &authenticated.principal;
        if org == p.org_id || !matches!(p.kind, AuthKind::Basic | AuthKind::Session) {
            return;
        }
        if let Some(user) = &authenticated.user {
            let (kind, session) = (p.kind, p.session_id);
            authenticated.principal = self.principal_in(user, kind, session, org).await;
        }
    }

    /// The principal a user acts as in `org`.
    async fn principal_in(
        &self,
        user: &UserRecord,
        kind: AuthKind,
        session_id: Option<u64>,
        org: OrgId,
    ) -> Principal {
        let org_role = user.role_in(org).unwrap_or(crate::domain::OrgRole::None);
        let ts = self.clock.now();
        // Also at the first request of a new hour, which the activity series counts.
        let hour = SeriesSpan::Hour;
        if user.last_seen_at.is_none_or(|seen| {
            ts - seen > LAST_SEEN_INTERVAL || hour.start_of(seen) != hour.start_of(ts)
        }) {
            if let Err(e) = self.store.touch_last_seen(user.user_id(), ts).await {
                tracing::debug!(error = %e, "could not record last_seen_at");
            }
        }
        Principal {
            user_id: Some(user.user_id()),
            login: user.login.clone(),
            org_id: org,
            org_role,
            is_grafana_admin: user.is_admin && !user.is_service_account,
            kind,
            session_id,
            permissions: self
                .catalog
                .permissions_for_user(user.id, org_role, user.is_admin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_group_ipv6_by_its_64_and_unmap_ipv4() {
        let source = |ip: &str| source_of(ip.parse().ok());
        assert_eq!(
            source("2001:db8:1:2:aaaa::1"),
            source("2001:db8:1:2:bbbb::2")
        );
        assert_ne!(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
        assert_eq!(source("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(source("10.0.0.1"), "10.0.0.1");
        assert_eq!(source_of(None), "");
    }

    #[test]
    fn failure_logs_keep_the_last_few_within_the_window() {
        let log = FailureLog::new(3);
        for t in [0, 10, 20, 30, 40] {
            log.failed("k", t);
        }
        assert_eq!(log.failures.lock().get("k").map(VecDeque::len), Some(3));
        assert!(log.blocked(&"k", 50));
        // The oldest kept failure (20) leaves the window first.
        assert!(!log.blocked(&"k", 20 + BRUTE_FORCE_WINDOW_MS));
        assert!(!log.blocked(&"other", 50));
        log.clear(&"k");
        assert!(!log.blocked(&"k", 50));
    }
}
