//! The rules. Services take a [`crate::domain::Principal`] and the stores; they know nothing
//! of HTTP. Start-up work and CLI commands go through the same services.

pub mod access;
pub mod api_keys;
pub mod auth;
pub mod bootstrap;
pub mod datasources;
pub mod ldap;
pub mod licensing;
pub mod provisioning;
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
use crate::error::AppError;
use crate::store::{
    ApiKeyStore, DataSourceStore, Durability, EncryptionStore, LicenseStore, MetaStore,
    ProvisioningStore, SessionStore, SettingsStore, SledStore, UserStore,
};

/// Every service, built once and shared by the API.
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: SledStore,
    pub durability: Durability,
    pub catalog: Arc<access::RoleCatalog>,
    pub auth: auth::AuthService,
    pub users: users::UserService,
    pub sessions: Arc<sessions::SessionService>,
    pub api_keys: Arc<api_keys::ApiKeyService>,
    pub secrets: Arc<secrets::SecretsService>,
    pub datasources: Arc<datasources::DataSourceService>,
    pub settings_admin: settings::SettingsService,
    pub stats: Arc<stats::StatsService>,
    pub licensing: licensing::LicensingService,
    pub provisioning: Arc<provisioning::ProvisioningService>,
    pub ldap: Arc<ldap::LdapService>,
    pub roles: roles::RoleService,
    pub service_accounts: Arc<service_accounts::ServiceAccountService>,
}

/// The per-install key of the token HMACs (sessions, API keys), created on first start.
/// Tokens are high-entropy, so the key adds defence in depth rather than secrecy.
fn token_key(store: &SledStore) -> Result<KeyedHasher, AppError> {
    const KEY: &str = "token_hmac_key";
    if let Some(k) = store.get_meta(KEY)? {
        return Ok(KeyedHasher::new(&k));
    }
    let k = random::bytes::<32>();
    store.set_meta(KEY, &k)?;
    Ok(KeyedHasher::new(&k))
}

impl Services {
    /// Opens the data folder and builds the services (no network yet). Refuses a
    /// `secret_key` that cannot open the stored key canary.
    pub async fn open(settings: Settings) -> Result<Arc<Self>, AppError> {
        let settings = Arc::new(settings);
        std::fs::create_dir_all(&settings.data_path).map_err(|e| {
            AppError::internal(
                "cannot create data folder",
                format!("{}: {e}", settings.data_path.display()),
            )
        })?;
        let store = SledStore::open(&settings.data_path.join("tollgate.db"))
            .map_err(|e| AppError::internal("cannot open the database", e))?;
        let durability = store.durability();
        let secret = bootstrap::secret_key(&settings)?;
        let secrets = Arc::new(
            secrets::SecretsService::open(
                Arc::new(store.clone()) as Arc<dyn EncryptionStore>,
                Arc::new(store.clone()) as Arc<dyn MetaStore>,
                durability.clone(),
                &secret,
                &settings.previous_secret_keys,
                settings.data_key_max_encryptions,
                settings.app_mode == "development",
            )
            .await?,
        );
        let user_store: Arc<dyn UserStore> = Arc::new(store.clone());
        let hasher = Arc::new(token_key(&store)?);
        let catalog = Arc::new(access::RoleCatalog::new());
        let credentials = Arc::new(auth::CredentialCache::new(settings.basic_auth_cache));
        let sessions = Arc::new(sessions::SessionService::new(
            Arc::new(store.clone()) as Arc<dyn SessionStore>,
            user_store.clone(),
            hasher.clone(),
            settings.clone(),
            durability.clone(),
        ));
        let api_keys = Arc::new(api_keys::ApiKeyService::new(
            Arc::new(store.clone()) as Arc<dyn ApiKeyStore>,
            hasher,
            settings.clone(),
            durability.clone(),
        ));
        let ldap = Arc::new(ldap::LdapService::new(
            settings.clone(),
            user_store.clone(),
            durability.clone(),
        ));
        let auth = auth::AuthService::new(
            user_store.clone(),
            settings.clone(),
            catalog.clone(),
            credentials.clone(),
            sessions.clone(),
            api_keys.clone(),
            ldap.clone(),
        );
        let users = users::UserService::new(
            user_store.clone(),
            durability.clone(),
            settings.clone(),
            credentials,
        );
        users.subscribe(sessions.clone());
        let datasources = Arc::new(datasources::DataSourceService::new(
            Arc::new(store.clone()) as Arc<dyn DataSourceStore>,
            secrets.clone(),
            durability.clone(),
        ));
        let provisioning = Arc::new(provisioning::ProvisioningService::new(
            &settings,
            Arc::new(store.clone()) as Arc<dyn ProvisioningStore>,
            user_store.clone(),
            datasources.clone(),
            secrets.clone(),
            catalog.clone(),
            durability.clone(),
        )?);
        let settings_admin = settings::SettingsService::open(
            settings.clone(),
            Arc::new(store.clone()) as Arc<dyn SettingsStore>,
            secrets.clone(),
            durability.clone(),
        )?;
        let service_accounts = Arc::new(service_accounts::ServiceAccountService::new(
            user_store.clone(),
            Arc::new(store.clone()) as Arc<dyn ApiKeyStore>,
            api_keys.clone(),
            durability.clone(),
        ));
        let roles = roles::RoleService::new(
            Arc::new(store.clone()) as Arc<dyn ProvisioningStore>,
            user_store.clone(),
            catalog.clone(),
            provisioning.clone(),
            durability.clone(),
        );
        let stats = Arc::new(stats::StatsService::new(
            user_store.clone(),
            Arc::new(store.clone()) as Arc<dyn SessionStore>,
            Arc::new(store.clone()) as Arc<dyn MetaStore>,
        ));
        let licensing = licensing::LicensingService::new(
            settings.clone(),
            Arc::new(store.clone()) as Arc<dyn LicenseStore>,
            user_store.clone(),
            stats.clone(),
            durability.clone(),
        )?;
        useragent::warm();
        Ok(Arc::new(Self {
            settings,
            store,
            durability,
            catalog,
            auth,
            users,
            sessions,
            api_keys,
            datasources,
            settings_admin,
            stats,
            licensing,
            provisioning,
            ldap,
            roles,
            service_accounts,
            secrets,
        }))
    }
}
