//! The audit log: reading it (`audit:read`), verifying its chain, pruning it
//! (`[auditing] max_days`, `max_events`) and exporting it as JSON lines
//! (`[auditing] loggers = file, console`).
//!
//! Events are written by the store, with the change they describe (see `store::audit`);
//! this service appends only what changes nothing (denials, failed sign-ins, requests that
//! wrote nothing to the store). The exporter tails the store rather than a queue in memory:
//! a request never waits for it and nothing it has not written yet can be lost, since the
//! store is its queue; how far behind it is shows as `tollgate_audit_export_lag_events`.

use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{AuditingSettings, Settings};
use crate::crypto::KeyedHasher;
use crate::domain::audit::{hex, AuditChain, AuditEntry, AuditEvent, Verifier};
use crate::domain::time::Clock;
use crate::domain::{Action, Principal};
use crate::error::AppError;
use crate::store::{AuditQuery, AuditStore, MetaStore};

/// The prefix of an identifier kept as its HMAC.
pub const HMAC_PREFIX: &str = "hmac-sha256:";
/// The most events one page returns.
pub const MAX_PAGE: usize = 1000;
pub const DEFAULT_PAGE: usize = 50;
/// How often retention runs (and once at start-up).
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// Events read per step by verification and the exporter.
const WALK_PAGE: usize = 2000;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked before the first break (all of them when intact).
    pub checked: u64,
    /// The first break: its event number and a sentence naming it.
    pub broken: Option<(u64, String)>,
}

pub struct AuditService {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    settings: AuditingSettings,
    identifiers: KeyedHasher,
    exporter: Arc<ExportState>,
}

#[derive(Default)]
struct ExportState {
    wake: tokio::sync::Notify,
    exported: AtomicU64,
    head: AtomicU64,
    errors: AtomicU64,
}

impl AuditService {
    /// The identifier key is derived from the secret key and a random per-install salt
    /// (kept in the store), so that neither alone gives it.
    pub async fn open(
        store: Arc<dyn AuditStore>,
        meta: &dyn MetaStore,
        clock: Arc<dyn Clock>,
        settings: &Settings,
        secret_key: &str,
    ) -> Result<Self, AppError> {
        let salt = meta
            .init_meta(
                "audit_identifier_salt",
                &crate::crypto::random::bytes::<32>(),
            )
            .await?;
        let key = KeyedHasher::new(secret_key.as_bytes()).digest(&[b"audit identifiers", &salt]);
        Ok(Self {
            store,
            clock,
            settings: settings.auditing.clone(),
            identifiers: KeyedHasher::new(&key),
            exporter: Arc::new(ExportState::default()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// An identifier as stored when it should not be kept in clear (a failed sign-in's
    /// login): `hmac-sha256:<hex>`. The same value always gives the same HMAC, so an
    /// operator can search for it.
    pub fn identifier(&self, value: &str) -> String {
        format!(
            "{HMAC_PREFIX}{}",
            hex(&self.identifiers.digest(&[value.as_bytes()]))
        )
    }

    /// `POST /api/admin/audit/hmac`.
    pub fn hmac(&self, p: &Principal, value: &str) -> Result<String, AppError> {
        p.require(Action::AuditRead, "")?;
        Ok(self.identifier(value))
    }

    /// Appends an event that goes with no store change; a failure is logged, never
    /// returned (the request it describes already has its answer).
    pub async fn record(&self, mut entry: AuditEntry) {
        if !self.settings.enabled {
            return;
        }
        if entry.at == 0 {
            entry.at = self.clock.now_ms();
        }
        if let Err(e) = self.store.append_audit(entry).await {
            tracing::error!(error = %e, "could not record an audit event");
        }
        self.changed();
    }

    /// Wakes the exporter (an event may have committed).
    pub fn changed(&self) {
        self.exporter.wake.notify_one();
    }

    /// `GET /api/admin/audit`: a page, newest first, and the cursor of the next one.
    pub async fn events(
        &self,
        p: &Principal,
        mut query: AuditQuery,
    ) -> Result<(Vec<AuditEvent>, Option<u64>), AppError> {
        p.require(Action::AuditRead, "")?;
        query.limit = match query.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let events = self.store.audit_events(&query).await?;
        let next = (events.len() == query.limit)
            .then(|| events.last().map(|e| e.seq))
            .flatten();
        Ok((events, next))
    }

    /// `GET /api/admin/audit/verify`.
    pub async fn verify(&self, p: &Principal) -> Result<VerifyReport, AppError> {
        p.require(Action::AuditRead, "")?;
        Ok(verify_store(self.store.as_ref()).await?)
    }

    /// Applies `max_days` and `max_events` once; the count removed. Past `max_events`, it
    /// prunes down to 90% of it (the pruning's own event included), so that a full log is
    /// not pruned again at every run.
    pub async fn prune(&self) -> Result<u64, AppError> {
        let s = &self.settings;
        if !s.enabled || (s.max_days == 0 && s.max_events == 0) {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let before = (s.max_days > 0).then(|| now - (s.max_days as i64) * 86_400_000);
        let chain = self.store.audit_chain().await?;
        let stored = (chain.head_seq + 1).saturating_sub(chain.first_seq);
        let keep = if s.max_events > 0 && stored > s.max_events {
            s.max_events.saturating_sub(1 + s.max_events / 10).max(1)
        } else {
            0
        };
        if before.is_none() && keep == 0 {
            return Ok(0);
        }
        let mut entry = AuditEntry::system("audit:prune", now);
        entry.target_kind = "audit".into();
        let n = self.store.prune_audit(before, keep, entry).await?;
        if n > 0 {
            tracing::info!(removed = n, "audit retention pruned events");
            self.changed();
        }
        Ok(n)
    }

    /// The retention job (at start-up, then every ten minutes) and the exporter, until
    /// `stop` fires (the exporter writes what committed before it, then ends).
    pub fn start(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        if !self.settings.enabled {
            return Vec::new();
        }
        let this = self.clone();
        let mut stop_retention = stop.clone();
        let mut tasks = vec![tokio::spawn(async move {
            loop {
                if let Err(e) = this.prune().await {
                    tracing::warn!(error = %e, "audit retention failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETENTION_EVERY) => {}
                    _ = stop_retention.changed() => return,
                }
            }
        })];
        if self.settings.file || self.settings.console {
            let this = self.clone();
            tasks.push(tokio::spawn(async move { this.export_loop(stop).await }));
        }
        tasks
    }

    /// Events written so far by the exporter, and how many it is behind the head.
    pub fn export_progress(&self) -> (u64, u64, u64) {
        let exported = self.exporter.exported.load(Ordering::Relaxed);
        let head = self.exporter.head.load(Ordering::Relaxed);
        (
            exported,
            head.saturating_sub(exported),
            self.exporter.errors.load(Ordering::Relaxed),
        )
    }

    async fn export_loop(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut file = self.settings.file.then(|| {
            RotatingFile::new(
                &self.settings.file_path,
                self.settings.max_files,
                self.settings.max_file_size_mb * 1024 * 1024,
            )
        });
        // Resume after the last event the file holds (else start at the head: the file
        // logger writes events as they happen, as Grafana's does).
        let mut after = match file.as_ref().and_then(RotatingFile::last_seq) {
            Some(seq) => seq,
            None => self.store.audit_chain().await.map_or(0, |c| c.head_seq),
        };
        self.exporter.exported.store(after, Ordering::Relaxed);
        loop {
            match self.export_some(after, file.as_mut()).await {
                Ok(Some(last)) => {
                    after = last;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.exporter.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "audit export failed; retrying");
                }
            }
            tokio::select! {
                _ = self.exporter.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => {
                    let _ = self.export_some(after, file.as_mut()).await;
                    return;
                }
            }
        }
    }

    /// Writes the events after `after`; the last one written, `None` when none were new.
    async fn export_some(
        &self,
        after: u64,
        file: Option<&mut RotatingFile>,
    ) -> Result<Option<u64>, String> {
        let chain = self.store.audit_chain().await.map_err(|e| e.to_string())?;
        self.exporter.head.store(chain.head_seq, Ordering::Relaxed);
        if chain.head_seq <= after {
            return Ok(None);
        }
        let events = self
            .store
            .audit_page(after, WALK_PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(None);
        };
        let mut lines = String::new();
        for e in &events {
            lines.push_str(&event_json(e).to_string());
            lines.push('\n');
        }
        if let Some(f) = file {
            f.write(lines.as_bytes()).map_err(|e| e.to_string())?;
        }
        if self.settings.console {
            let mut out = std::io::stdout().lock();
            out.write_all(lines.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string())?;
        }
        self.exporter.exported.store(last, Ordering::Relaxed);
        Ok(Some(last))
    }
}

/// Walks every stored event of `store` against its chain. The log may grow and be pruned
/// while it is walked (the server keeps running): an event past the head read at the start
/// is checked against the chain read again (a committed append moved the head with it; an
/// event beyond every head is not part of the chain), and a walk whose anchor a pruning
/// moved starts again.
pub async fn verify_store(store: &dyn AuditStore) -> crate::store::StoreResult<VerifyReport> {
    const ATTEMPTS: usize = 3;
    let mut report = walk_chain(store).await?;
    for _ in 1..ATTEMPTS {
        let Some(started) = report.1 else { break };
        if store.audit_chain().await?.first_seq == started.first_seq {
            break;
        }
        report = walk_chain(store).await?;
    }
    Ok(report.0)
}

/// One walk, and the chain it started from when it found a break.
async fn walk_chain(
    store: &dyn AuditStore,
) -> crate::store::StoreResult<(VerifyReport, Option<AuditChain>)> {
    let chain: AuditChain = store.audit_chain().await?;
    let mut v = Verifier::new(chain);
    let mut after = chain.first_seq.saturating_sub(1);
    let mut checked = 0u64;
    let broken = |checked, b: crate::domain::audit::Break| {
        Ok((
            VerifyReport {
                checked,
                broken: Some((break_seq(&b), b.to_string())),
            },
            Some(chain),
        ))
    };
    loop {
        let page = store.audit_page(after, WALK_PAGE).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if e.seq > v.head_seq() {
                v.extend_head(&store.audit_chain().await?);
            }
            if let Err(b) = v.feed(e) {
                return broken(checked, b);
            }
            checked += 1;
            // Storage order may differ from `seq` in a tampered log: page by the highest
            // number seen, so that no event is read twice.
            after = after.max(e.seq);
        }
        // A short page is the end, unless the head moved past it meanwhile.
        if page.len() < WALK_PAGE && after >= v.head_seq() {
            break;
        }
    }
    match v.finish() {
        Ok(n) => Ok((
            VerifyReport {
                checked: n,
                broken: None,
            },
            None,
        )),
        Err(b) => broken(checked, b),
    }
}

fn break_seq(b: &crate::domain::audit::Break) -> u64 {
    use crate::domain::audit::Break;
    match *b {
        Break::Modified(n) | Break::Removed(n) | Break::Reordered(n) => n,
    }
}

/// One event as JSON (the export's lines and the API's objects say the same).
pub fn event_json(e: &AuditEvent) -> serde_json::Value {
    let x = &e.entry;
    serde_json::json!({
        "seq": e.seq,
        "time": crate::domain::time::rfc3339_ms(x.at),
        "actor": {
            "userId": x.actor.user_id,
            "login": x.actor.login,
            "tokenId": x.actor.token_id,
            "serviceAccountId": x.actor.service_account_id,
            "authMethod": x.actor.auth_method,
        },
        "client": x.client,
        "userAgent": x.user_agent,
        "requestId": x.request_id,
        "method": x.method,
        "route": x.route,
        "action": x.action,
        "target": {"kind": x.target_kind, "id": x.target_id},
        "status": x.status,
        "fields": x.fields,
        "hash": hex(&e.hash),
        "prevHash": hex(&e.prev_hash),
    })
}

/// `audit.log` in a folder, rotated to `audit.log.1`, `.2`, ... when it would pass
/// `max_bytes`, keeping `max_files` files in all.
struct RotatingFile {
    path: PathBuf,
    max_files: usize,
    max_bytes: u64,
}

impl RotatingFile {
    fn new(dir: &Path, max_files: usize, max_bytes: u64) -> Self {
        Self {
            path: dir.join("audit.log"),
            max_files: max_files.max(1),
            max_bytes: max_bytes.max(1),
        }
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    /// The `seq` of the last line of the newest file.
    fn last_seq(&self) -> Option<u64> {
        let text = std::fs::read_to_string(&self.path)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| std::fs::read_to_string(self.rotated(1)).ok())?;
        let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
        serde_json::from_str::<serde_json::Value>(line).ok()?["seq"].as_u64()
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            crate::store::create_private_dir(dir).or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })?;
        }
        let size = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if size > 0 && size + bytes.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(bytes)
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.max_files == 1 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(self.rotated(self.max_files - 1));
        for n in (1..self.max_files - 1).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Verification while requests append and retention prunes (the server keeps
    /// running): no round reports a break.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifying_a_log_that_grows_and_is_pruned_reports_no_break() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_sled_for_tests(&dir.path().join("db"))
            .await
            .unwrap();
        let entry = |at| AuditEntry::system("test:append", at);
        let seed: Vec<_> = (0..1500)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.append_audit(entry(i)).await.unwrap() })
            })
            .collect();
        for t in seed {
            t.await.unwrap();
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let appender = {
            let (s, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut at = 10_000;
                while !stop.load(Ordering::Relaxed) {
                    s.append_audit(entry(at)).await.unwrap();
                    at += 1;
                }
            })
        };
        let pruner = {
            let (s, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut prunings = 0;
                while !stop.load(Ordering::Relaxed) {
                    let prune = AuditEntry::system("audit:prune", 0);
                    if s.prune_audit(None, 1000, prune).await.unwrap() > 0 {
                        prunings += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                prunings
            })
        };
        for round in 0..40 {
            let report = verify_store(store.as_ref()).await.unwrap();
            assert_eq!(report.broken, None, "round {round}");
            assert!(report.checked > 0, "round {round}");
        }
        stop.store(true, Ordering::Relaxed);
        appender.await.unwrap();
        assert!(
            pruner.await.unwrap() > 0,
            "no pruning ran during the rounds"
        );
    }

    #[test]
    fn the_file_rotates_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::new(dir.path(), 3, 100);
        for i in 1..=10u64 {
            let line = format!("{{\"seq\":{i},\"pad\":\"{}\"}}\n", "x".repeat(40));
            f.write(line.as_bytes()).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["audit.log", "audit.log.1", "audit.log.2"]);
        for name in &names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 100, "{name} is {len} bytes");
        }
        assert_eq!(f.last_seq(), Some(10));
        // The newest lines are in audit.log, the oldest kept in the highest number.
        let oldest = std::fs::read_to_string(dir.path().join("audit.log.2")).unwrap();
        assert!(oldest.starts_with("{\"seq\":8,"), "{oldest}");
    }
}
