//! The rules. Services take a [`crate::domain::Principal`] and the stores; they know nothing
//! of HTTP. Start-up work and CLI commands go through the same services.

pub mod access;
pub mod auth;
pub mod bootstrap;
pub mod users;

use std::sync::Arc;

use crate::config::Settings;
use crate::error::AppError;
use crate::store::{Durability, SledStore, UserStore};

/// Every service, built once and shared by the API.
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: SledStore,
    pub durability: Durability,
    pub catalog: Arc<access::RoleCatalog>,
    pub auth: auth::AuthService,
    pub users: users::UserService,
}

impl Services {
    /// Opens the data folder and builds the services (no network yet).
    pub fn open(settings: Settings) -> Result<Arc<Self>, AppError> {
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
        let user_store: Arc<dyn UserStore> = Arc::new(store.clone());
        let catalog = Arc::new(access::RoleCatalog::new());
        let credentials = Arc::new(auth::CredentialCache::new(settings.basic_auth_cache));
        let auth = auth::AuthService::new(
            user_store.clone(),
            settings.clone(),
            catalog.clone(),
            credentials.clone(),
        );
        let users = users::UserService::new(
            user_store,
            durability.clone(),
            settings.clone(),
            credentials,
        );
        Ok(Arc::new(Self {
            settings,
            store,
            durability,
            catalog,
            auth,
            users,
        }))
    }
}
