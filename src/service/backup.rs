//! Online backup and restore. A backup is one consistent export of the store
//! ([`Store::export`]: sled pauses writers for the scan, PostgreSQL reads in one REPEATABLE
//! READ transaction) in the backup file format (`store::backup`). A restore goes into an
//! empty data folder (or an empty database) and checks, before it writes anything, that the
//! file is whole and that the configured `secret_key` opens the backup's data keys.

use std::path::Path;
use std::sync::Arc;

use crate::config::Settings;
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::Principal;
use crate::error::AppError;
use crate::store::backup::{self as file, Header};
use crate::store::{Dump, Store};

pub struct BackupService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

impl BackupService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// `POST /api/admin/backup` (`server.backup:create`): the whole backup file.
    pub async fn create(&self, p: &Principal) -> Result<Vec<u8>, AppError> {
        p.require(Action::ServerBackupCreate, "")?;
        backup_of(self.store.as_ref(), self.clock.now()).await
    }
}

/// The backup file of a store, as of now.
pub async fn backup_of(store: &dyn Store, now: i64) -> Result<Vec<u8>, AppError> {
    let started = std::time::Instant::now();
    let dump = store.export().await?;
    let paused = started.elapsed();
    let header = Header::new(&dump, now, store.backend());
    let bytes = tokio::task::spawn_blocking(move || file::encode(&header, &dump))
        .await
        .map_err(|e| AppError::internal("backup", e))?
        .map_err(|e| AppError::internal("backup", e))?;
    tracing::info!(
        backend = store.backend(),
        bytes = bytes.len(),
        export_ms = paused.as_millis() as u64,
        "backup taken"
    );
    Ok(bytes)
}

/// `tollgate backup --config FILE` with the server stopped: the data folder directly.
pub async fn backup_offline(settings: &Settings) -> Result<Vec<u8>, String> {
    let store = crate::store::open(&settings.data_path, &settings.database)
        .await
        .map_err(|e| format!("cannot open the data folder: {e}"))?;
    backup_of(store.as_ref(), crate::domain::time::system_now())
        .await
        .map_err(|e| e.to_string())
}

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct Restored {
    pub header: Header,
    pub counts: Vec<(&'static str, usize)>,
}

/// Whether `dir` holds anything (a missing folder is empty).
fn holds_files(dir: &Path) -> Result<bool, String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}

/// `tollgate restore --in FILE`: verifies the file and the key, then writes every record
/// into the configured, empty store. Nothing is written when a check fails.
pub async fn restore(settings: &Settings, bytes: &[u8]) -> Result<Restored, String> {
    let (header, dump) = file::decode(bytes).map_err(|e| e.to_string())?;
    let sled = settings.database.kind == crate::config::DatabaseType::Sled;
    if sled && holds_files(&settings.data_path)? {
        return Err(format!(
            "the data folder {} is not empty: restore into a new, empty data folder \
             ([paths] data), never over a server's data",
            settings.data_path.display()
        ));
    }
    let secret = settings.secret_key.clone().ok_or_else(|| {
        "[security] secret_key is not set: set it to the secret_key of the server that made \
         the backup (its secrets are encrypted under it)"
            .to_string()
    })?;
    crate::service::secrets::keys_open(&secret, &settings.previous_secret_keys, &dump)
        .map_err(|e| format!("{e}; nothing was written"))?;
    let store = crate::store::open(&settings.data_path, &settings.database)
        .await
        .map_err(|e| format!("cannot open the data folder: {e}"))?;
    import_into(store.as_ref(), &dump).await?;
    Ok(Restored {
        header,
        counts: dump.counts(),
    })
}

async fn import_into(store: &dyn Store, dump: &Dump) -> Result<(), String> {
    store.import(dump, false).await.map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => {
            "the target database is not empty: restore into an empty one".to_string()
        }
        other => format!("cannot write the records: {other}"),
    })?;
    store.flush().await.map_err(|e| e.to_string())
}
