//! The secrets service: envelope encryption with rotating data keys
//! (`../shared/reference/encryption.md`).
//!
//! - KEKs: the current one from `[security] secret_key` and older ones from
//!   `previous_secret_keys`, derived once at start-up with the per-install salt. A canary
//!   sealed under the current KEK proves the key is right; a key that opens nothing stops
//!   start-up with a message that says so.
//! - DEKs: one Active (encrypts), any number Retired (decrypt only), Destroyed when nothing
//!   references them. Unwrapped DEKs are cached by id. Usage is counted by reservation in
//!   blocks of [`RESERVATION_BLOCK`]; at `data_key_max_encryptions` the DEK rotates.
//! - Rotation is one store unit, durable before the new key is used.
//! - Re-encryption runs in batches; each batch's compare-and-swap writes, reference counts
//!   and cursor commit together, so it resumes after a crash and a concurrent update wins.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use zeroize::Zeroizing;

use crate::crypto::envelope::{header_dek_id, CryptoError, Dek, Kek, Plaintext, SecretContext};
use crate::crypto::random;
use crate::domain::time::Clock;
use crate::error::AppError;
use crate::store::{
    DekRecord, DekState, EncryptionStore, MetaStore, Reencrypted, SealedSecret, SecretWrite,
};

mod key_cache;

use key_cache::KeyCache;

/// Why a secret could not be decrypted. Kept small (a key's load failure is boxed): the
/// cached path's result is moved through the caller's future, and an `AppError`-sized
/// result cost a tenth of a decryption in copies (bench/README, session 23).
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The secret's data key could not be loaded.
    #[error(transparent)]
    Key(Box<AppError>),
}

impl From<DecryptError> for AppError {
    fn from(e: DecryptError) -> Self {
        match e {
            DecryptError::Crypto(e) => AppError::internal("decryption failed", e),
            DecryptError::Key(e) => *e,
        }
    }
}

/// Encryptions reserved (and persisted) at a time. Each reservation is a durable write (an
/// fsync on sled, about 250 us here) made by the encryption that crosses the block, so the
/// block sets what the count costs an encryption on average: 4,096 made it about 60 ns of a
/// 270 ns seal (bench/README.md, session 30), 65,536 about 4 ns. A restart counts the
/// unused rest of a block as used: at most 65,536 of the default cap of 2^30 (0.006%).
pub const RESERVATION_BLOCK: u64 = 65_536;
const BATCH: usize = 256;
/// Grafana's long-standing default secret: refused outside development mode.
pub const GRAFANA_DEFAULT_SECRET: &str = "SW2YcwTIb9zpOOhoPsMm";

/// The key prefixes of every secret an org's datasources, app plugins and notification
/// channels own (their owners are "<org>/<uid or plugin id>"): what deleting the org deletes.
pub fn org_secret_prefixes(org: crate::domain::OrgId) -> Vec<String> {
    ["datasource", "plugin", "notifier"]
        .iter()
        .map(|purpose| format!("{purpose}\n{}/", org.0))
        .collect()
}

/// The storage key of a secret, from its context (`purpose`, `owner`, `field`; none of
/// them may contain a newline).
pub fn secret_key(ctx: &SecretContext<'_>) -> String {
    format!("{}\n{}\n{}", ctx.purpose, ctx.owner, ctx.field)
}

fn context_of(key: &str) -> Option<SecretContext<'_>> {
    let mut parts = key.splitn(3, '\n');
    Some(SecretContext {
        purpose: parts.next()?,
        owner: parts.next()?,
        field: parts.next()?,
    })
}

struct Active {
    id: u32,
    /// The key itself (none only before the service is open), so that encryption needs no
    /// cache lookup.
    dek: Option<Arc<Dek>>,
    reserved: AtomicU64,
    used: AtomicU64,
}

/// Progress of the re-encryption job, visible through the status endpoint.
#[derive(Debug, Clone, Default)]
pub struct JobProgress {
    pub running: bool,
    pub started_at: i64,
    pub finished_at: i64,
    pub total: u64,
    pub processed: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: Vec<String>,
    pub resumed: bool,
}

/// What `reencrypt-secrets` reports.
#[derive(Debug, Clone)]
pub struct ReencryptReport {
    pub processed: u64,
    pub updated: u64,
    pub failed: Vec<String>,
}

/// One DEK as the status shows it (never key material).
#[derive(Debug, Clone)]
pub struct DekStatus {
    pub id: u32,
    pub state: DekState,
    pub created: i64,
    pub retired: Option<i64>,
    pub kek_id: String,
    pub references: u64,
    pub encryptions_reserved: u64,
}

pub struct SecretsService {
    store: Arc<dyn EncryptionStore>,
    meta: Arc<dyn MetaStore>,
    clock: Arc<dyn Clock>,
    keks: HashMap<String, Kek>,
    current_kek: String,
    /// Unwrapped keys by id.
    cache: KeyCache,
    active: RwLock<Arc<Active>>,
    cap: u64,
    /// Serializes rotations and re-wraps.
    rotation: tokio::sync::Mutex<()>,
    job: tokio::sync::Mutex<()>,
    progress: Mutex<JobProgress>,
}

async fn salt(meta: &dyn MetaStore) -> Result<Vec<u8>, AppError> {
    const KEY: &str = "kek_salt";
    Ok(meta.init_meta(KEY, &random::bytes::<16>()).await?)
}

/// Whether `secret` (or one of `previous`) opens a dump's key canary and every data key
/// that is not destroyed (a restore checks it before writing anything).
pub fn keys_open(
    secret: &str,
    previous: &[String],
    dump: &crate::store::Dump,
) -> Result<(), String> {
    let meta = |key: &str| {
        dump.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    };
    let salt = meta("kek_salt").ok_or("the backup holds no key salt")?;
    let mut keks = HashMap::new();
    for s in std::iter::once(secret).chain(previous.iter().map(String::as_str)) {
        if s.is_empty() {
            continue;
        }
        let k = Kek::derive(s.as_bytes(), salt).map_err(|e| e.to_string())?;
        keks.insert(k.id().to_string(), k);
    }
    const WRONG: &str = "the configured [security] secret_key does not open the data keys in \
                         this backup: set it to the secret_key of the server that made the backup";
    if let Some(canary) = meta("kek_canary") {
        if !keks.values().any(|k| k.opens_canary(canary)) {
            return Err(WRONG.into());
        }
    }
    for rec in dump.deks.iter().filter(|d| d.state != DekState::Destroyed) {
        let opened = keks
            .get(&rec.kek_id)
            .is_some_and(|k| k.unwrap(rec.id, &rec.wrapped).is_ok());
        if !opened {
            return Err(format!("{WRONG} (data key {} does not open)", rec.id));
        }
    }
    Ok(())
}

impl SecretsService {
    /// Derives the KEKs, checks the canary, and makes sure an active DEK exists.
    pub async fn open(
        store: Arc<dyn EncryptionStore>,
        meta: Arc<dyn MetaStore>,
        clock: Arc<dyn Clock>,
        secret: &str,
        previous: &[String],
        cap: u64,
        development: bool,
    ) -> Result<Self, AppError> {
        if secret.is_empty() || (secret == GRAFANA_DEFAULT_SECRET && !development) {
            return Err(AppError::internal(
                "refusing to start",
                "[security] secret_key is empty or Grafana's published default; set a random key",
            ));
        }
        let salt = salt(meta.as_ref()).await?;
        let derive = |s: &str| {
            Kek::derive(s.as_bytes(), &salt)
                .map_err(|e| AppError::internal("key derivation failed", e))
        };
        let current = derive(secret)?;
        let current_kek = current.id().to_string();
        let mut keks = HashMap::new();
        keks.insert(current_kek.clone(), current);
        for p in previous.iter().filter(|p| !p.is_empty()) {
            let k = derive(p)?;
            keks.insert(k.id().to_string(), k);
        }
        // The first node to start seals the canary; every later start (any node) must open it.
        let fresh = keks[&current_kek].seal_canary();
        let canary = meta.init_meta("kek_canary", &fresh).await?;
        if !keks.values().any(|k| k.opens_canary(&canary)) {
            return Err(AppError::internal(
                "refusing to start",
                "the configured [security] secret_key cannot open this data folder's key \
                 canary: it is not the key this data was encrypted with. Restore the old \
                 key, or list it in [security] previous_secret_keys to change keys",
            ));
        }
        let mut svc = Self {
            store,
            meta,
            clock,
            keks,
            current_kek,
            cache: KeyCache::new(),
            active: RwLock::new(Arc::new(Active {
                id: 0,
                dek: None,
                reserved: AtomicU64::new(0),
                used: AtomicU64::new(0),
            })),
            cap: cap.max(1),
            rotation: tokio::sync::Mutex::new(()),
            job: tokio::sync::Mutex::new(()),
            progress: Mutex::new(JobProgress::default()),
        };
        match svc.store.active_dek().await? {
            Some(id) => {
                let rec = svc.store.dek(id).await?.ok_or_else(|| {
                    AppError::internal("encryption", "the active data key is missing")
                })?;
                let dek = svc.dek(id).await?;
                svc.active = RwLock::new(Arc::new(Active {
                    id,
                    dek: Some(dek),
                    reserved: AtomicU64::new(rec.reserved),
                    // Everything reserved before a restart counts as used.
                    used: AtomicU64::new(rec.reserved),
                }));
            }
            None => svc.rotate_locked().await?,
        }
        Ok(svc)
    }

    pub fn current_kek_id(&self) -> &str {
        &self.current_kek
    }

    fn kek(&self, id: &str) -> Result<&Kek, AppError> {
        self.keks.get(id).ok_or_else(|| {
            AppError::internal(
                "encryption",
                format!("data key wrapped by unknown key-encryption key {id}: add the old secret_key to previous_secret_keys"),
            )
        })
    }

    async fn dek(&self, id: u32) -> Result<Arc<Dek>, AppError> {
        if let Some(d) = self.cache.get(id) {
            return Ok(d);
        }
        let rec = self
            .store
            .dek(id)
            .await?
            .filter(|r| r.state != DekState::Destroyed)
            .ok_or_else(|| {
                AppError::internal(
                    "decryption failed",
                    format!("data key {id} does not exist or was destroyed"),
                )
            })?;
        let dek = Arc::new(
            self.kek(&rec.kek_id)?
                .unwrap(id, &rec.wrapped)
                .map_err(|e| {
                    AppError::internal("decryption failed", format!("data key {id}: {e}"))
                })?,
        );
        self.cache.update(|keys| keys.insert(id, dek.clone()));
        Ok(dek)
    }

    /// Creates a new active DEK, retiring the current one, in one durable store unit.
    pub async fn rotate(&self) -> Result<(), AppError> {
        let _guard = self.rotation.lock().await;
        self.rotate_locked().await
    }

    /// Rotation proper; the caller holds `rotation`.
    async fn rotate_locked(&self) -> Result<(), AppError> {
        let raw = Dek::generate_bytes();
        let kek = self.kek(&self.current_kek)?;
        // The id is allocated first (its AAD binds the wrapped key to it); a crash before
        // the install only leaves a gap in the sequence.
        let id = self
            .store
            .allocate_dek_id()
            .await
            .map_err(AppError::store("Failed to rotate data keys"))?;
        let rec = DekRecord {
            id,
            state: DekState::Active,
            created: self.clock.now(),
            retired: None,
            kek_id: self.current_kek.clone(),
            wrapped: kek.wrap(id, &raw),
            reserved: RESERVATION_BLOCK,
        };
        self.store
            .install_active_dek(rec.clone())
            .await
            .map_err(AppError::store("Failed to rotate data keys"))?;
        let dek = Arc::new(
            Dek::from_bytes(rec.id, &*raw)
                .map_err(|e| AppError::internal("Failed to rotate data keys", e))?,
        );
        self.cache.update(|keys| keys.insert(rec.id, dek.clone()));
        *self.active.write() = Arc::new(Active {
            id: rec.id,
            dek: Some(dek),
            reserved: AtomicU64::new(rec.reserved),
            used: AtomicU64::new(0),
        });
        tracing::info!(dek = rec.id, "data encryption key rotated");
        Ok(())
    }

    /// Counts one encryption against the active DEK, reserving (and persisting) another
    /// block when needed; `true` when the DEK already sealed its cap (this encryption would
    /// be one too many) and must rotate.
    async fn count_use(&self, active: &Active) -> Result<bool, AppError> {
        let n = active.used.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.cap {
            return Ok(true);
        }
        let reserved = active.reserved.load(Ordering::SeqCst);
        if n > reserved {
            let next = (reserved + RESERVATION_BLOCK).min(self.cap);
            self.store.reserve_dek_uses(active.id, next).await?;
            active.reserved.fetch_max(next, Ordering::SeqCst);
        }
        Ok(false)
    }

    /// Encrypts a secret under the active DEK (rotating first when it is used up); the
    /// ciphertext and the id of the DEK that sealed it.
    pub async fn encrypt(
        &self,
        ctx: &SecretContext<'_>,
        plaintext: &[u8],
    ) -> Result<SealedSecret, AppError> {
        loop {
            let active = self.active.read().clone();
            if self.count_use(&active).await? {
                let _guard = self.rotation.lock().await;
                if self.active.read().id == active.id {
                    self.rotate_locked().await?;
                }
                continue;
            }
            let ciphertext = match &active.dek {
                Some(dek) => dek.seal(ctx, plaintext),
                None => self.dek(active.id).await?.seal(ctx, plaintext),
            };
            return Ok(SealedSecret {
                dek_id: active.id,
                ciphertext,
            });
        }
    }

    pub async fn decrypt(
        &self,
        ctx: &SecretContext<'_>,
        ciphertext: &[u8],
    ) -> Result<Plaintext, DecryptError> {
        let id = header_dek_id(ciphertext)?;
        // A cached key opens the secret in this thread's copy of the cache (no lock, no
        // reference count); a key not cached yet is loaded first.
        if let Some(opened) = self.cache.with(id, |dek| dek.open(ctx, ciphertext)) {
            return Ok(opened?);
        }
        let dek = self
            .dek(id)
            .await
            .map_err(|e| DecryptError::Key(Box::new(e)))?;
        Ok(dek.open(ctx, ciphertext)?)
    }

    /// A secret write (for a consumer's transaction) of `plaintext` encrypted for `ctx`.
    pub async fn seal_write(
        &self,
        ctx: &SecretContext<'_>,
        plaintext: &str,
    ) -> Result<SecretWrite, AppError> {
        Ok(SecretWrite {
            key: secret_key(ctx),
            value: Some(self.encrypt(ctx, plaintext.as_bytes()).await?),
        })
    }

    pub fn delete_write(ctx: &SecretContext<'_>) -> SecretWrite {
        SecretWrite {
            key: secret_key(ctx),
            value: None,
        }
    }

    /// Reads and decrypts a stored secret.
    pub async fn read(
        &self,
        ctx: &SecretContext<'_>,
    ) -> Result<Option<Zeroizing<String>>, AppError> {
        let Some(ct) = self.store.secret(&secret_key(ctx)).await? else {
            return Ok(None);
        };
        let plain = self.decrypt(ctx, &ct).await?;
        Ok(Some(Zeroizing::new(
            String::from_utf8_lossy(&plain).into_owned(),
        )))
    }

    /// Writes secrets on their own (consumers with their own rows use their store's
    /// transaction instead).
    pub async fn write(&self, writes: &[SecretWrite]) -> Result<(), AppError> {
        Ok(self.store.write_secrets(writes).await?)
    }

    /// Re-encrypts every secret not under the active DEK; resumable, crash-safe.
    pub async fn reencrypt_secrets(self: &Arc<Self>) -> Result<ReencryptReport, AppError> {
        let _job = self.job.lock().await;
        let mut cursor = self.store.reencrypt_cursor().await?;
        let total = self.store.secret_count().await?;
        {
            let mut p = self.progress.lock();
            *p = JobProgress {
                running: true,
                started_at: self.clock.now(),
                total,
                resumed: cursor.is_some(),
                ..JobProgress::default()
            };
        }
        let result = self.run_job(&mut cursor).await;
        let mut p = self.progress.lock();
        p.running = false;
        p.finished_at = self.clock.now();
        result?;
        Ok(ReencryptReport {
            processed: p.processed,
            updated: p.updated,
            failed: p.failed.clone(),
        })
    }

    async fn run_job(self: &Arc<Self>, cursor: &mut Option<String>) -> Result<(), AppError> {
        loop {
            let batch = self.store.secrets_after(cursor.as_deref(), BATCH).await?;
            let Some((last, _)) = batch.last() else { break };
            let last = last.clone();
            let active = self.active.read().id;
            let mut work = Vec::new();
            let mut failed = Vec::new();
            let mut skipped = 0;
            for (key, ct) in &batch {
                if header_dek_id(ct).ok() == Some(active) {
                    skipped += 1;
                    continue;
                }
                let Some(ctx) = context_of(key) else {
                    failed.push(key.replace('\n', "/"));
                    continue;
                };
                match self.decrypt(&ctx, ct).await {
                    Ok(plain) => work.push(Reencrypted {
                        key: key.clone(),
                        expected: ct.clone(),
                        new: self.encrypt(&ctx, &plain).await?,
                    }),
                    Err(e) => {
                        tracing::error!(secret = %key.replace('\n', "/"), error = %e, "cannot re-encrypt secret");
                        failed.push(key.replace('\n', "/"));
                    }
                }
            }
            let written = self
                .store
                .commit_reencrypt(&work, Some(&last))
                .await
                .map_err(AppError::store("Failed to re-encrypt secrets"))?;
            {
                let mut p = self.progress.lock();
                p.processed += batch.len() as u64;
                p.updated += written as u64;
                p.skipped += skipped + (work.len() - written) as u64;
                p.failed.extend(failed);
            }
            *cursor = Some(last);
        }
        self.store
            .commit_reencrypt(&[], None)
            .await
            .map_err(AppError::store("Failed to re-encrypt secrets"))?;
        self.destroy_unreferenced().await?;
        Ok(())
    }

    /// Retired DEKs nothing references any more are destroyed (wrapped bytes erased); the
    /// store checks the state and the count in the same unit.
    async fn destroy_unreferenced(&self) -> Result<(), AppError> {
        for rec in self.store.deks().await? {
            if rec.state == DekState::Retired && self.store.destroy_dek(rec.id).await? {
                self.cache.update(|keys| keys.remove(&rec.id));
                tracing::info!(dek = rec.id, "destroyed an unreferenced retired data key");
            }
        }
        Ok(())
    }

    /// Follows a change made by another node: the active DEK (a rotation there) and the
    /// cached keys (a destroy or re-wrap there). Encryptions reserved on the old active key
    /// count as used, as after a restart.
    pub async fn reload_keys(&self) -> Result<(), AppError> {
        let _guard = self.rotation.lock().await;
        self.cache.update(BTreeMap::clear);
        if let Some(id) = self.store.active_dek().await? {
            if id != self.active.read().id {
                let rec = self.store.dek(id).await?.ok_or_else(|| {
                    AppError::internal("encryption", "the active data key is missing")
                })?;
                let dek = self.dek(id).await?;
                *self.active.write() = Arc::new(Active {
                    id,
                    dek: Some(dek),
                    reserved: AtomicU64::new(rec.reserved),
                    used: AtomicU64::new(rec.reserved),
                });
                tracing::info!(dek = id, "following the data key another node activated");
            }
        }
        Ok(())
    }

    /// True when a re-encryption job was interrupted (a crash) and should resume.
    pub async fn interrupted_job(&self) -> Result<bool, AppError> {
        Ok(self.store.reencrypt_cursor().await?.is_some())
    }

    /// Re-wraps every DEK under the current KEK and renews the canary; how many.
    pub async fn reencrypt_data_keys(&self) -> Result<usize, AppError> {
        let _guard = self.rotation.lock().await;
        let mut n = 0;
        for rec in self.store.deks().await? {
            if rec.state == DekState::Destroyed || rec.kek_id == self.current_kek {
                continue;
            }
            let old = self.kek(&rec.kek_id)?;
            let dek_bytes = old
                .unwrap_raw(rec.id, &rec.wrapped)
                .map_err(|e| AppError::internal("Failed to re-encrypt data keys", e))?;
            let wrapped = self.kek(&self.current_kek)?.wrap(rec.id, &dek_bytes);
            self.store
                .rewrap_dek(rec.id, &self.current_kek, wrapped)
                .await
                .map_err(AppError::store("Failed to re-encrypt data keys"))?;
            n += 1;
        }
        // The canary follows: from now on only the current key opens this data folder.
        let canary = self.kek(&self.current_kek)?.seal_canary();
        self.meta.set_meta("kek_canary", &canary).await?;
        Ok(n)
    }

    /// Decrypts every stored secret; the keys of those that fail.
    pub async fn verify(&self) -> Result<(u64, Vec<String>), AppError> {
        let mut cursor: Option<String> = None;
        let mut checked = 0;
        let mut failed = Vec::new();
        loop {
            let batch = self.store.secrets_after(cursor.as_deref(), 1024).await?;
            let Some((last, _)) = batch.last() else { break };
            cursor = Some(last.clone());
            for (key, ct) in &batch {
                checked += 1;
                let ok = match context_of(key) {
                    Some(ctx) => self.decrypt(&ctx, ct).await.is_ok(),
                    None => false,
                };
                if !ok {
                    failed.push(key.replace('\n', "/"));
                }
            }
        }
        Ok((checked, failed))
    }

    pub async fn status(&self) -> Result<(Vec<DekStatus>, u32, JobProgress), AppError> {
        let mut deks = Vec::new();
        for rec in self.store.deks().await? {
            deks.push(DekStatus {
                references: self.store.dek_references(rec.id).await?,
                id: rec.id,
                state: rec.state,
                created: rec.created,
                retired: rec.retired,
                kek_id: rec.kek_id,
                encryptions_reserved: rec.reserved,
            });
        }
        Ok((deks, self.active.read().id, self.progress.lock().clone()))
    }
}

/// The admin operations, as Grafana guards them: Grafana Admins only (`reqGrafanaAdmin`).
impl SecretsService {
    pub async fn rotate_as(&self, p: &crate::domain::Principal) -> Result<(), AppError> {
        p.require_grafana_admin()?;
        self.rotate().await
    }

    pub async fn reencrypt_data_keys_as(
        &self,
        p: &crate::domain::Principal,
    ) -> Result<usize, AppError> {
        p.require_grafana_admin()?;
        self.reencrypt_data_keys().await
    }

    pub async fn reencrypt_secrets_as(
        self: &Arc<Self>,
        p: &crate::domain::Principal,
    ) -> Result<ReencryptReport, AppError> {
        p.require_grafana_admin()?;
        self.reencrypt_secrets().await
    }

    /// tollgate has a single secret format, so there is nothing to roll back to: this
    /// checks the caller and verifies every secret still decrypts.
    pub async fn rollback_as(&self, p: &crate::domain::Principal) -> Result<Vec<String>, AppError> {
        p.require_grafana_admin()?;
        Ok(self.verify().await?.1)
    }

    pub async fn verify_as(
        &self,
        p: &crate::domain::Principal,
    ) -> Result<(u64, Vec<String>), AppError> {
        p.require_grafana_admin()?;
        self.verify().await
    }

    pub async fn status_as(
        &self,
        p: &crate::domain::Principal,
    ) -> Result<(Vec<DekStatus>, u32, JobProgress), AppError> {
        p.require_grafana_admin()?;
        self.status().await
    }
}
