//! Provisioning: stores what the files under `[paths] provisioning` describe, at start-up,
//! on reload (which blocks until stored) and, for dashboards, by polling each provider's
//! folder every `updateIntervalSeconds`.
//!
//! Each reload is all-or-nothing for its kind: every file is parsed and validated before
//! anything is written, so a broken file leaves the stored state as it was and the error
//! names the file and line. The outcome of each reload (per file) is kept for
//! `GET /api/admin/provisioning/status`.
//!
//! This service only reads files and hands what they describe to the services that own
//! each kind (datasources, dashboards, plugins, notifiers, roles).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::Settings;
use crate::domain::dashboard;
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{OrgId, Principal};
use crate::error::AppError;
use crate::provisioning::files::{
    self, AccessControlFile, DashboardsFile, DatasourcesFile, FileError, NotifiersFile, Parsed,
    PluginsFile,
};
use crate::service::dashboards::DashboardService;
use crate::service::datasources::{DataSourceInput, DataSourceService};
use crate::service::notifiers::{notifier_ctx, NotifierService};
use crate::service::plugins::{plugin_ctx, PluginService};
use crate::service::roles::RoleService;
use crate::service::secrets::SecretsService;
use crate::store::{
    AlertRecord, DashboardBatch, DashboardRecord, FileOutcome, FolderRecord, Job, NotifierRecord,
    PluginSettingRecord, ProvisioningRun, RoleRecord, SecretWrite, Store,
};

/// The five kinds, by their directory and reload route name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Datasources,
    Dashboards,
    Plugins,
    Notifications,
    AccessControl,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Datasources,
        Kind::Plugins,
        Kind::Notifications,
        Kind::AccessControl,
        Kind::Dashboards,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Datasources => "datasources",
            Self::Dashboards => "dashboards",
            Self::Plugins => "plugins",
            Self::Notifications => "notifications",
            Self::AccessControl => "accesscontrol",
        }
    }

    fn dir(self) -> &'static str {
        match self {
            Self::Datasources => "datasources",
            Self::Dashboards => "dashboards",
            Self::Plugins => "plugins",
            Self::Notifications => "notifiers",
            Self::AccessControl => "access-control",
        }
    }

    /// The RBAC scope of its reload.
    pub fn scope(self) -> String {
        format!("provisioners:{}", self.as_str())
    }
}

/// What a reload did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub files: Vec<FileOutcome>,
    pub applied: u64,
    pub removed: u64,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A provisioning failure as the API answers it: 500, with the file, line and problem.
fn file_error(kind: Kind, e: &FileError) -> AppError {
    AppError::Internal {
        public: format!("Failed to provision {}: {e}", kind.as_str()),
        cause: e.to_string(),
    }
}

fn outcomes<T>(parsed: &[Parsed<T>]) -> Vec<FileOutcome> {
    parsed
        .iter()
        .map(|p| FileOutcome {
            file: p.file.display().to_string(),
            ok: true,
            message: String::new(),
        })
        .collect()
}

fn json_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    serde_json::Value::Object(map.clone()).to_string()
}

fn org(id: i64) -> u64 {
    u64::try_from(id).unwrap_or(1).max(1)
}

/// A dashboard provider and the YAML file it is defined in.
type Provider = (PathBuf, files::DashboardProvider);

/// One dashboard provider's files, ready to store.
struct ProviderScan {
    provider: files::DashboardProvider,
    dashboards: Vec<files::DashboardFile>,
}

/// The services each kind is handed to.
pub struct Targets {
    pub datasources: Arc<DataSourceService>,
    pub dashboards: Arc<DashboardService>,
    pub plugins: Arc<PluginService>,
    pub notifiers: Arc<NotifierService>,
    pub roles: Arc<RoleService>,
    pub secrets: Arc<SecretsService>,
}

pub struct ProvisioningService {
    root: PathBuf,
    /// Provisioning runs, and the job lock of dashboard polling.
    runs: Arc<dyn Store>,
    to: Targets,
    clock: Arc<dyn Clock>,
    /// One reload (or poll) per kind at a time.
    locks: HashMap<Kind, tokio::sync::Mutex<()>>,
    pollers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ProvisioningService {
    pub fn new(
        settings: &Settings,
        runs: Arc<dyn Store>,
        to: Targets,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            root: settings.provisioning_path.clone(),
            runs,
            to,
            clock,
            locks: Kind::ALL
                .iter()
                .map(|k| (*k, tokio::sync::Mutex::new(())))
                .collect(),
            pollers: Mutex::new(Vec::new()),
        }
    }

    fn dir(&self, kind: Kind) -> PathBuf {
        self.root.join(kind.dir())
    }

    /// Reads every kind (start-up). A failing kind is logged and recorded; the others go on.
    pub async fn provision_all(self: &Arc<Self>) {
        for kind in Kind::ALL {
            if let Err(e) = self.run(kind).await {
                tracing::error!(kind = kind.as_str(), error = %e, "provisioning failed");
            }
        }
        self.start_polling();
    }

    /// `POST /api/admin/provisioning/<kind>/reload`.
    pub async fn reload(self: &Arc<Self>, p: &Principal, kind: Kind) -> Result<Applied, AppError> {
        p.require(Action::ProvisioningReload, &kind.scope())?;
        if kind == Kind::Dashboards {
            self.stop_polling();
            let result = self.run(kind).await;
            self.start_polling();
            return result;
        }
        self.run(kind).await
    }

    async fn run(&self, kind: Kind) -> Result<Applied, AppError> {
        let Some(lock) = self.locks.get(&kind) else {
            return Err(AppError::internal("provisioning", "unknown kind"));
        };
        let _one = lock.lock().await;
        let result = match kind {
            Kind::Datasources => self.datasources_run().await,
            Kind::Dashboards => self.dashboards_run(None).await,
            Kind::Plugins => self.plugins_run().await,
            Kind::Notifications => self.notifiers_run().await,
            Kind::AccessControl => self.roles_run().await,
        };
        let at = self.clock.now();
        let run = match &result {
            Ok(a) => ProvisioningRun {
                kind: kind.as_str().into(),
                at,
                ok: true,
                error: String::new(),
                files: a.files.clone(),
                applied: a.applied,
                removed: a.removed,
            },
            Err(e) => ProvisioningRun {
                kind: kind.as_str().into(),
                at,
                ok: false,
                error: e.message(),
                files: Vec::new(),
                applied: 0,
                removed: 0,
            },
        };
        self.runs.put_provisioning_run(&run).await?;
        result
    }

    fn read<T>(&self, kind: Kind) -> Result<Vec<Parsed<T>>, AppError>
    where
        T: serde::de::DeserializeOwned + files::HasApiVersion,
    {
        files::read_dir(&self.dir(kind), &env).map_err(|e| file_error(kind, &e))
    }

    // ----- datasources -----

    async fn datasources_run(&self) -> Result<Applied, AppError> {
        let parsed: Vec<Parsed<DatasourcesFile>> = self.read(Kind::Datasources)?;
        self.check_datasources(&parsed).await?;
        let mut applied = Applied {
            files: outcomes(&parsed),
            ..Applied::default()
        };
        for f in &parsed {
            for d in &f.content.delete_datasources {
                if self
                    .to
                    .datasources
                    .unprovision(OrgId(org(d.org_id)), &d.name)
                    .await?
                {
                    applied.removed += 1;
                }
            }
        }
        for f in &parsed {
            for d in &f.content.datasources {
                let input = DataSourceInput {
                    name: d.name.clone(),
                    ds_type: d.kind.clone(),
                    uid: (!d.uid.is_empty()).then(|| d.uid.clone()),
                    access: d.access.clone(),
                    url: d.url.clone(),
                    user: d.user.clone(),
                    database: d.database.clone(),
                    basic_auth: d.basic_auth,
                    basic_auth_user: d.basic_auth_user.clone(),
                    with_credentials: d.with_credentials,
                    is_default: d.is_default,
                    json_data: Some(json_text(&d.json_data)),
                    secure_json_data: d.secure_json_data.clone(),
                    version: None,
                    read_only: !d.editable,
                };
                self.to
                    .datasources
                    .provision(OrgId(org(d.org_id)), input)
                    .await
                    .map_err(|e| AppError::Internal {
                        public: format!(
                            "Failed to provision datasources: {}: datasource '{}': {}",
                            f.file.display(),
                            d.name,
                            e.message()
                        ),
                        cause: e.to_string(),
                    })?;
                applied.applied += 1;
            }
        }
        Ok(applied)
    }

    /// What would make a write fail half-way, found before anything is written: the same
    /// name or uid twice, or a uid that changes or belongs to another datasource.
    async fn check_datasources(&self, parsed: &[Parsed<DatasourcesFile>]) -> Result<(), AppError> {
        let fail = |file: &Path, what: String| AppError::Internal {
            public: format!(
                "Failed to provision datasources: {}: {what}",
                file.display()
            ),
            cause: what.clone(),
        };
        let deleted: HashSet<(u64, &str)> = parsed
            .iter()
            .flat_map(|f| f.content.delete_datasources.iter())
            .map(|d| (org(d.org_id), d.name.as_str()))
            .collect();
        let mut names: HashMap<(u64, String), &Path> = HashMap::new();
        let mut uids: HashMap<(u64, String), &Path> = HashMap::new();
        for f in parsed {
            for d in &f.content.datasources {
                let o = org(d.org_id);
                if let Some(first) = names.insert((o, d.name.clone()), &f.file) {
                    return Err(fail(
                        &f.file,
                        format!(
                            "datasource '{}' is also defined in {}",
                            d.name,
                            first.display()
                        ),
                    ));
                }
                if d.uid.is_empty() {
                    continue;
                }
                if let Some(first) = uids.insert((o, d.uid.clone()), &f.file) {
                    return Err(fail(
                        &f.file,
                        format!("uid '{}' is also used in {}", d.uid, first.display()),
                    ));
                }
                let p = Principal::system_in(OrgId(o));
                if deleted.contains(&(o, d.name.as_str())) {
                    continue;
                }
                if let Ok(existing) = self.to.datasources.get_by_name(&p, &d.name).await {
                    if existing.uid != d.uid {
                        return Err(fail(
                            &f.file,
                            format!(
                                "datasource '{}' has uid '{}'; a uid cannot change",
                                d.name, existing.uid
                            ),
                        ));
                    }
                }
                if let Ok(other) = self.to.datasources.get_by_uid(&p, &d.uid).await {
                    if other.name != d.name && !deleted.contains(&(o, other.name.as_str())) {
                        return Err(fail(
                            &f.file,
                            format!("uid '{}' belongs to datasource '{}'", d.uid, other.name),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    // ----- dashboards -----

    /// The dashboard providers from the YAML files (no dashboard JSON read), with the file
    /// each comes from.
    fn providers(&self) -> Result<(Vec<Provider>, Vec<FileOutcome>), AppError> {
        let parsed: Vec<Parsed<DashboardsFile>> = self.read(Kind::Dashboards)?;
        let outcomes = outcomes(&parsed);
        let providers = parsed
            .into_iter()
            .flat_map(|f| {
                let file = f.file;
                f.content
                    .providers
                    .into_iter()
                    .map(move |p| (file.clone(), p))
            })
            .collect();
        Ok((providers, outcomes))
    }

    /// Scans the dashboard files of every provider, or only of the one named `only`.
    fn scan_providers(
        &self,
        only: Option<&str>,
    ) -> Result<(Vec<ProviderScan>, Vec<FileOutcome>), AppError> {
        let (providers, mut outcomes) = self.providers()?;
        let mut scans = Vec::new();
        for (file, provider) in providers {
            if only.is_some_and(|name| name != provider.name) {
                continue;
            }
            let root = files::resolve_path(&file, &provider.options.path);
            let dashboards = files::scan_dashboards(
                &provider.name,
                &root,
                provider.options.folders_from_files_structure,
            )
            .map_err(|e| file_error(Kind::Dashboards, &e))?;
            outcomes.extend(dashboards.iter().map(|d| FileOutcome {
                file: d.path.display().to_string(),
                ok: true,
                message: String::new(),
            }));
            scans.push(ProviderScan {
                provider,
                dashboards,
            });
        }
        Ok((scans, outcomes))
    }

    /// Scans the providers (or only `only`) and stores the differences in one transaction.
    /// Dashboards and folders belong to the provider's org: the same uid may be provisioned
    /// in two orgs.
    async fn dashboards_run(&self, only: Option<&str>) -> Result<Applied, AppError> {
        let (scans, files) = self.scan_providers(only)?;
        let mut stored: Vec<DashboardRecord> = Vec::new();
        let mut folders: HashMap<u64, Vec<FolderRecord>> = HashMap::new();
        for scan in &scans {
            stored.extend(
                self.to
                    .dashboards
                    .provider_dashboards(&scan.provider.name)
                    .await?,
            );
            let o = org(scan.provider.org_id);
            if let std::collections::hash_map::Entry::Vacant(e) = folders.entry(o) {
                e.insert(self.to.dashboards.org_folders(OrgId(o)).await?);
            }
        }
        let at = self.clock.now();
        let mut batch = DashboardBatch::default();
        let mut seen: HashSet<(u64, String)> = HashSet::new();
        let mut folder_uids: HashMap<(u64, String), String> = folders
            .iter()
            .flat_map(|(o, fs)| {
                fs.iter()
                    .map(move |f| ((*o, f.title.clone()), f.uid.clone()))
            })
            .collect();
        let mut new_folders: BTreeMap<(u64, String), FolderRecord> = BTreeMap::new();
        let mut folder_for = |title: &str, uid: &str, org_id: u64| -> String {
            if title.is_empty() && uid.is_empty() {
                return String::new();
            }
            let uid = if uid.is_empty() {
                folder_uids
                    .get(&(org_id, title.to_string()))
                    .cloned()
                    .unwrap_or_else(|| folder_uid(title))
            } else {
                uid.to_string()
            };
            let title = if title.is_empty() {
                uid.clone()
            } else {
                title.to_string()
            };
            folder_uids.insert((org_id, title.clone()), uid.clone());
            let exists = folders
                .get(&org_id)
                .is_some_and(|fs| fs.iter().any(|f| f.uid == uid && f.title == title));
            if !exists {
                new_folders
                    .entry((org_id, uid.clone()))
                    .or_insert(FolderRecord {
                        id: 0,
                        uid: uid.clone(),
                        org_id,
                        title,
                        created: at,
                        updated: at,
                    });
            }
            uid
        };
        let mut removed = 0;
        for scan in &scans {
            let p = &scan.provider;
            let org_id = org(p.org_id);
            for d in &scan.dashboards {
                if !seen.insert((org_id, d.uid.clone())) {
                    return Err(AppError::Internal {
                        public: format!(
                            "Failed to provision dashboards: {}: uid '{}' is provisioned twice",
                            d.path.display(),
                            d.uid
                        ),
                        cause: "duplicate uid".into(),
                    });
                }
                let folder_uid = match (&d.folder, p.options.folders_from_files_structure) {
                    (Some(sub), true) => folder_for(sub, "", org_id),
                    _ => folder_for(&p.folder, &p.folder_uid, org_id),
                };
                let mut json = d.json.clone();
                if let Some(o) = json.as_object_mut() {
                    o.insert("uid".into(), d.uid.clone().into());
                    o.remove("id");
                }
                let record = DashboardRecord {
                    id: 0,
                    uid: d.uid.clone(),
                    org_id,
                    title: d.title.clone(),
                    tags: d.tags.clone(),
                    folder_uid,
                    version: 0,
                    json: json.to_string(),
                    provider: p.name.clone(),
                    file: d.relative.clone(),
                    alert_panels: Vec::new(),
                    created: at,
                    updated: at,
                };
                let unchanged = stored.iter().any(|s| {
                    s.uid == record.uid
                        && s.org_id == record.org_id
                        && s.json == record.json
                        && s.folder_uid == record.folder_uid
                        && s.provider == record.provider
                        && s.file == record.file
                });
                if unchanged {
                    continue;
                }
                let alerts = dashboard::alerts(&json)
                    .into_iter()
                    .map(|a| AlertRecord {
                        id: 0,
                        org_id,
                        dashboard_uid: d.uid.clone(),
                        dashboard_id: 0,
                        panel_id: a.panel_id,
                        name: a.name,
                        state: "pending".into(),
                        paused: false,
                        new_state_date: at,
                    })
                    .collect();
                batch.upserts.push((record, alerts));
            }
            // Beyond Grafana: with `prune`, a dashboard whose file is gone goes too.
            if p.prune {
                for s in stored.iter().filter(|s| s.provider == p.name) {
                    if !scan.dashboards.iter().any(|d| d.uid == s.uid) {
                        batch.deletes.push((s.org_id, s.uid.clone()));
                        removed += 1;
                    }
                }
            }
        }
        batch.folders = new_folders.into_values().collect();
        let applied = batch.upserts.len() as u64;
        if applied > 0 || removed > 0 || !batch.folders.is_empty() {
            self.to.dashboards.apply(&batch).await?;
        }
        Ok(Applied {
            files,
            applied,
            removed,
        })
    }

    /// Starts one poller per dashboard provider (from the files as they are now).
    pub fn start_polling(self: &Arc<Self>) {
        let Ok((providers, _)) = self.providers() else {
            return;
        };
        let mut pollers = self.pollers.lock();
        for (_, provider) in providers {
            let every = Duration::from_secs(
                u64::try_from(provider.update_interval_seconds)
                    .unwrap_or(10)
                    .max(1),
            );
            let me = Arc::downgrade(self);
            let name = provider.name.clone();
            pollers.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(s) = me.upgrade() else { return };
                    let Some(lock) = s.locks.get(&Kind::Dashboards) else {
                        return;
                    };
                    let _one = lock.lock().await;
                    // On several nodes, one polls at a time (the others see its writes).
                    let Ok(Some(_job)) = s.runs.try_job_lock(Job::DashboardPolling).await else {
                        continue;
                    };
                    if let Err(e) = s.dashboards_run(Some(&name)).await {
                        tracing::warn!(provider = %name, error = %e, "dashboard polling failed");
                    }
                }
            }));
        }
    }

    pub fn stop_polling(&self) {
        for p in self.pollers.lock().drain(..) {
            p.abort();
        }
    }

    // ----- plugins -----

    async fn plugins_run(&self) -> Result<Applied, AppError> {
        let parsed: Vec<Parsed<PluginsFile>> = self.read(Kind::Plugins)?;
        let mut stored: Vec<PluginSettingRecord> = Vec::new();
        let mut orgs_read = HashSet::new();
        for f in &parsed {
            for app in &f.content.apps {
                let o = org(app.org_id);
                if orgs_read.insert(o) {
                    stored.extend(self.to.plugins.org_settings(OrgId(o)).await?);
                }
            }
        }
        let at = self.clock.now();
        let mut rows = Vec::new();
        let mut writes: Vec<SecretWrite> = Vec::new();
        for f in &parsed {
            for app in &f.content.apps {
                let org_id = org(app.org_id);
                let owner = format!("{org_id}/{}", app.kind);
                let old = stored
                    .iter()
                    .find(|s| s.org_id == org_id && s.plugin_id == app.kind);
                let mut secure: Vec<String> =
                    old.map(|o| o.secure_fields.clone()).unwrap_or_default();
                for (field, value) in &app.secure_json_data {
                    writes.push(
                        self.to
                            .secrets
                            .seal_write(&plugin_ctx(&owner, field), value)
                            .await?,
                    );
                    if !secure.contains(field) {
                        secure.push(field.clone());
                    }
                }
                secure.sort();
                rows.push(PluginSettingRecord {
                    org_id,
                    plugin_id: app.kind.clone(),
                    enabled: !app.disabled,
                    pinned: !app.disabled,
                    json_data: json_text(&app.json_data),
                    secure_fields: secure,
                    version: old.map_or(1, |o| o.version + 1),
                    updated: at,
                });
            }
        }
        if !rows.is_empty() {
            self.to.plugins.apply(&rows, &writes).await?;
        }
        Ok(Applied {
            files: outcomes(&parsed),
            applied: rows.len() as u64,
            removed: 0,
        })
    }

    // ----- notifiers -----

    async fn notifiers_run(&self) -> Result<Applied, AppError> {
        let parsed: Vec<Parsed<NotifiersFile>> = self.read(Kind::Notifications)?;
        let stored = self.to.notifiers.all().await?;
        let at = self.clock.now();
        let mut set = Vec::new();
        let mut delete = Vec::new();
        let mut writes = Vec::new();
        for f in &parsed {
            for d in &f.content.delete_notifiers {
                let org_id = org(d.org_id);
                if let Some(n) = stored.iter().find(|n| {
                    n.org_id == org_id
                        && ((!d.uid.is_empty() && n.uid == d.uid)
                            || (d.uid.is_empty() && n.name == d.name))
                }) {
                    let owner = format!("{org_id}/{}", n.uid);
                    writes.extend(
                        n.secure_fields.iter().map(|field| {
                            SecretsService::delete_write(&notifier_ctx(&owner, field))
                        }),
                    );
                    delete.push((OrgId(org_id), n.uid.clone()));
                }
            }
            for n in &f.content.notifiers {
                let org_id = org(n.org_id);
                let owner = format!("{org_id}/{}", n.uid);
                let old = stored.iter().find(|s| s.org_id == org_id && s.uid == n.uid);
                let mut secure: Vec<String> =
                    old.map(|o| o.secure_fields.clone()).unwrap_or_default();
                for (field, value) in &n.secure_settings {
                    writes.push(
                        self.to
                            .secrets
                            .seal_write(&notifier_ctx(&owner, field), value)
                            .await?,
                    );
                    if !secure.contains(field) {
                        secure.push(field.clone());
                    }
                }
                secure.sort();
                set.push(NotifierRecord {
                    id: 0,
                    uid: n.uid.clone(),
                    org_id,
                    name: n.name.clone(),
                    kind: n.kind.clone(),
                    is_default: n.is_default,
                    send_reminder: n.send_reminder,
                    frequency: n.frequency.clone(),
                    disable_resolve_message: n.disable_resolve_message,
                    settings: json_text(&n.settings),
                    secure_fields: secure,
                    created: at,
                    updated: at,
                });
            }
        }
        if !set.is_empty() || !delete.is_empty() {
            self.to.notifiers.apply(&set, &delete, &writes).await?;
        }
        Ok(Applied {
            files: outcomes(&parsed),
            applied: set.len() as u64,
            removed: delete.len() as u64,
        })
    }

    // ----- access control -----

    async fn roles_run(&self) -> Result<Applied, AppError> {
        let parsed: Vec<Parsed<AccessControlFile>> = self.read(Kind::AccessControl)?;
        let stored = self.to.roles.stored().await?;
        let at = self.clock.now();
        let mut set = Vec::new();
        let mut delete: Vec<(OrgId, String)> = Vec::new();
        // A role is found by uid (or, without one, by name) in its org, else among the
        // global roles.
        let key_of = |org_id: u64, name: &str, uid: &str| -> Option<(OrgId, String)> {
            let matches = |r: &&RoleRecord| {
                if uid.is_empty() {
                    r.name == name
                } else {
                    r.uid == uid
                }
            };
            let found = stored
                .iter()
                .filter(matches)
                .find(|r| r.org_id == org_id)
                .or_else(|| stored.iter().filter(matches).find(|r| r.org_id == 0))?;
            Some((OrgId(found.org_id), found.uid.clone()))
        };
        for f in &parsed {
            for d in &f.content.delete_roles {
                let org_id = if d.global { 0 } else { org(d.org_id) };
                delete.extend(key_of(org_id, &d.name, &d.uid));
            }
            for r in &f.content.roles {
                let org_id = if r.global { 0 } else { org(r.org_id) };
                if r.state == "absent" {
                    delete.extend(key_of(org_id, &r.name, &r.uid));
                    continue;
                }
                let version = u64::try_from(r.version).unwrap_or(0);
                let old = stored.iter().find(|s| s.uid == r.uid && s.org_id == org_id);
                // Grafana keeps a stored role whose version is not newer.
                if old.is_some_and(|o| o.version >= version && version > 0) {
                    continue;
                }
                set.push(RoleRecord {
                    uid: r.uid.clone(),
                    name: r.name.clone(),
                    display_name: r.display_name.clone(),
                    description: r.description.clone(),
                    group: r.group.clone(),
                    version: version.max(1),
                    global: r.global,
                    org_id,
                    permissions: r
                        .permissions
                        .iter()
                        .map(|p| (p.action.clone(), p.scope.clone()))
                        .collect(),
                    basic_roles: r.built_in_roles.iter().map(|b| b.name.clone()).collect(),
                    users: r.users.iter().map(|u| u.login.clone()).collect(),
                    // API assignments survive a re-provisioned role (the store keeps them).
                    user_ids: Vec::new(),
                    updated: at,
                });
            }
        }
        self.to.roles.apply_provisioned(&set, &delete).await?;
        Ok(Applied {
            files: outcomes(&parsed),
            applied: set.len() as u64,
            removed: delete.len() as u64,
        })
    }

    /// `GET /api/admin/provisioning/status`.
    pub async fn status(&self, p: &Principal) -> Result<Vec<ProvisioningRun>, AppError> {
        p.require(Action::ProvisioningReload, "provisioners:*")?;
        let mut runs = self.runs.provisioning_runs().await?;
        runs.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(runs)
    }
}

/// A folder uid derived from its title (folders named in provider files have no uid).
fn folder_uid(title: &str) -> String {
    let h = crate::crypto::sha256(title.as_bytes());
    format!("folder-{}", &crate::crypto::random::hex(&h)[..12])
}

/// The provisioning root's kind directory (for tests and messages).
pub fn kind_dir(root: &Path, kind: Kind) -> PathBuf {
    root.join(kind.dir())
}
