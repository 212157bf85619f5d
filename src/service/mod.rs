//! The rules. Services take a [`crate::domain::Principal`] and the stores; they know nothing
//! of HTTP. Start-up work and CLI commands go through the same services.

pub mod access;
pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod credentials;
pub mod dashboards;
pub mod datasources;
pub mod ldap;
pub mod licensing;
pub mod metrics;
pub mod notifiers;
pub mod orgs;
pub mod plugins;
pub mod provisioning;
pub mod quotas;
pub mod roles;
pub mod secrets;
pub mod service_accounts;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod useragent;
pub mod users;

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{random, KeyedHasher};
use crate::domain::time::{Clock, SystemClock};
use crate::error::AppError;
use crate::store::{MetaStore, Store};

/// Every service, built once and shared by the API.
pub struct Services {
    pub settings: Arc<Settings>,
    /// The storage backend, for health and shutdown; services hold their narrow traits.
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub catalog: Arc<access::RoleCatalog>,
    pub auth: auth::AuthService,
    pub users: Arc<users::UserService>,
    pub orgs: orgs::OrgService,
    pub quotas: Arc<quotas::QuotaService>,
    pub sessions: Arc<sessions::SessionService>,
    pub api_keys: Arc<api_keys::ApiKeyService>,
    pub secrets: Arc<secrets::SecretsService>,
    pub datasources: Arc<datasources::DataSourceService>,
    pub settings_admin: settings::SettingsService,
    pub stats: Arc<stats::StatsService>,
    pub backup: backup::BackupService,
    pub audit: Arc<audit::AuditService>,
    pub licensing: licensing::LicensingService,
    pub dashboards: Arc<dashboards::DashboardService>,
    pub alerts: alerts::AlertService,
    pub notifiers: Arc<notifiers::NotifierService>,
    pub plugins: Arc<plugins::PluginService>,
    pub provisioning: Arc<provisioning::ProvisioningService>,
    pub ldap: Arc<ldap::LdapService>,
    pub roles: Arc<roles::RoleService>,
    pub service_accounts: Arc<service_accounts::ServiceAccountService>,
    /// Request counts and latencies for `/metrics`.
    pub requests: metrics::RequestMetrics,
    /// Set once start-up work (provisioning, a resumed re-encryption) is done: `/readyz`.
    pub ready: std::sync::atomic::AtomicBool,
}

/// The per-install key of the token HMACs (sessions, API keys), created on first start.
/// Tokens are high-entropy, so the key adds defence in depth rather than secrecy.
async fn token_key(store: &dyn MetaStore) -> Result<KeyedHasher, AppError> {
    const KEY: &str = "token_hmac_key";
    let k = store.init_meta(KEY, &random::bytes::<32>()).await?;
    Ok(KeyedHasher::new(&k))
}

impl Services {
    /// `/readyz`: start-up work is done and the store takes a write.
    pub async fn readiness(&self) -> Result<(), String> {
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            return Err("start-up jobs are still running".into());
        }
        let now = self.clock.now_ms().to_be_bytes();
        self.store
            .set_meta("readiness_probe", &now)
            .await
            .map_err(|e| format!("the database takes no writes: {e}"))
    }

    /// Opens the data folder and builds the services (no network yet). Refuses a
    /// `secret_key` that cannot open the stored key canary.
    pub async fn open(settings: Settings) -> Result<Arc<Self>, AppError> {
        Self::open_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// The same with a given clock (tests move time instead of sleeping).
    pub async fn open_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, AppError> {
        let settings = Arc::new(settings);
        crate::store::create_private_dir(&settings.data_path).map_err(|e| {
            AppError::internal(
                "cannot create data folder",
                format!("{}: {e}", settings.data_path.display()),
            )
        })?;
        for path in crate::store::open_to_others(&settings.data_path) {
            tracing::warn!(
                path = %path.display(),
                "readable by other users of this machine: chmod go-rwx (tollgate creates its \
                 files for its owner only)"
            );
        }
        let store = crate::store::open(&settings.data_path, &settings.database)
            .await
            .map_err(|e| AppError::internal("cannot open the database", e))?;
        let secret = bootstrap::secret_key(&settings)?;
        let secrets = Arc::new(
            secrets::SecretsService::open(
                store.clone(),
                store.clone(),
                clock.clone(),
                &secret,
                &settings.previous_secret_keys,
                settings.data_key_max_encryptions,
                settings.app_mode == "development",
            )
            .await?,
        );
        let hasher = Arc::new(token_key(store.as_ref()).await?);
        let quotas = Arc::new(quotas::QuotaService::new(
            settings.clone(),
            store.clone(),
            clock.clone(),
        ));
        let catalog = Arc::new(access::RoleCatalog::new());
        let credentials = Arc::new(credentials::CredentialCache::new(
            settings.basic_auth_cache,
            clock.clone(),
        ));
        let sessions = Arc::new(sessions::SessionService::new(
            store.clone(),
            store.clone(),
            hasher.clone(),
            settings.clone(),
            clock.clone(),
        ));
        let api_keys = Arc::new(api_keys::ApiKeyService::new(
            store.clone(),
            hasher,
            settings.clone(),
            quotas.clone(),
            clock.clone(),
        ));
        let ldap = Arc::new(ldap::LdapService::new(
            settings.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
        ));
        // Shared: sign-ins count failures, an administrator's password reset forgets them.
        let login_guard = Arc::new(auth::LoginGuard::new(&settings, clock.clone()));
        let auth = auth::AuthService::new(
            store.clone(),
            settings.clone(),
            catalog.clone(),
            credentials.clone(),
            login_guard.clone(),
            sessions.clone(),
            api_keys.clone(),
            ldap.clone(),
            store.clone(),
            clock.clone(),
        );
        let users = Arc::new(users::UserService::new(
            store.clone(),
            store.clone(),
            settings.clone(),
            credentials,
            login_guard,
            quotas.clone(),
            clock.clone(),
        ));
        // Stored custom roles grant at once, before any file is read.
        let roles = Arc::new(
            roles::RoleService::open(store.clone(), store.clone(), catalog.clone(), clock.clone())
                .await?,
        );
        let orgs = orgs::OrgService::new(
            store.clone(),
            catalog.clone(),
            settings.clone(),
            quotas.clone(),
            clock.clone(),
            users.clone(),
            roles.clone(),
        );
        let datasources = Arc::new(datasources::DataSourceService::new(
            store.clone(),
            secrets.clone(),
            quotas.clone(),
            clock.clone(),
        ));
        let dashboards = Arc::new(dashboards::DashboardService::new(store.clone()));
        let alerts = alerts::AlertService::new(store.clone(), clock.clone());
        let notifiers = Arc::new(notifiers::NotifierService::new(store.clone()));
        let plugins = Arc::new(plugins::PluginService::new(store.clone()));
        let provisioning = Arc::new(provisioning::ProvisioningService::new(
            &settings,
            store.clone(),
            provisioning::Targets {
                datasources: datasources.clone(),
                dashboards: dashboards.clone(),
                plugins: plugins.clone(),
                notifiers: notifiers.clone(),
                roles: roles.clone(),
                secrets: secrets.clone(),
            },
            clock.clone(),
        ));
        let settings_admin =
            settings::SettingsService::open(settings.clone(), store.clone(), secrets.clone())
                .await?;
        let service_accounts = Arc::new(service_accounts::ServiceAccountService::new(
            store.clone(),
            store.clone(),
            api_keys.clone(),
            quotas.clone(),
            clock.clone(),
        ));
        let stats = Arc::new(stats::StatsService::new(
            store.clone(),
            store.clone(),
            store.clone(),
            clock.clone(),
        ));
        let licensing = licensing::LicensingService::new(
            settings.clone(),
            store.clone(),
            store.clone(),
            stats.clone(),
            store.clone(),
            clock.clone(),
        )?;
        let backup = backup::BackupService::new(store.clone(), clock.clone());
        let audit = Arc::new(
            audit::AuditService::open(
                store.clone(),
                store.as_ref(),
                clock.clone(),
                &settings,
                &secret,
            )
            .await?,
        );
        Ok(Arc::new(Self {
            settings,
            backup,
            audit,
            store,
            clock,
            catalog,
            auth,
            users,
            orgs,
            quotas,
            sessions,
            api_keys,
            datasources,
            settings_admin,
            stats,
            licensing,
            dashboards,
            alerts,
            notifiers,
            plugins,
            provisioning,
            ldap,
            roles,
            service_accounts,
            secrets,
            requests: metrics::RequestMetrics::default(),
            ready: std::sync::atomic::AtomicBool::new(false),
        }))
    }
}
