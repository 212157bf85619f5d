//! Provisioning: stores what the files under `[paths] provisioning` describe, at start-up,
//! on reload (which blocks until stored) and, for dashboards, by polling each provider's
//! folder every `updateIntervalSeconds`.
//!
//! Each reload is all-or-nothing for its kind: every file is parsed and validated before
//! anything is written, so a broken file leaves the stored state as it was and the error
//! names the file and line. The outcome of each reload (per file) is kept for
//! `GET /api/admin/provisioning/status`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::Settings;
use crate::crypto::envelope::SecretContext;
use crate::domain::dashboard;
use crate::domain::{Action, OrgId, OrgRole, Permission, Principal};
use crate::error::AppError;
use crate::provisioning::files::{
    self, AccessControlFile, DashboardsFile, DatasourcesFile, FileError, NotifiersFile, Parsed,
    PluginsFile,
};
use crate::service::access::{basic_role_key, CustomRole, Role, RoleCatalog};
use crate::service::datasources::{DataSourceInput, DataSourceService};
use crate::service::secrets::SecretsService;
use crate::store::{
    now, AlertRecord, DashboardBatch, DashboardRecord, Durability, FileOutcome, FolderRecord,
    NotifierRecord, PluginSettingRecord, ProvisioningRun, ProvisioningStore, RoleRecord,
    SecretWrite, UserStore,
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

pub struct ProvisioningService {
    root: PathBuf,
    store: Arc<dyn ProvisioningStore>,
    users: Arc<dyn UserStore>,
    datasources: Arc<DataSourceService>,
    secrets: Arc<SecretsService>,
    catalog: Arc<RoleCatalog>,
    durability: Durability,
    /// One reload (or poll) per kind at a time.
    locks: HashMap<Kind, tokio::sync::Mutex<()>>,
    pollers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ProvisioningService {
    pub fn new(
        settings: &Settings,
        store: Arc<dyn ProvisioningStore>,
        users: Arc<dyn UserStore>,
        datasources: Arc<DataSourceService>,
        secrets: Arc<SecretsService>,
        catalog: Arc<RoleCatalog>,
        durability: Durability,
    ) -> Result<Self, AppError> {
        let s = Self {
            root: settings.provisioning_path.clone(),
            store,
            users,
            datasources,
            secrets,
            catalog,
            durability,
            locks: Kind::ALL
                .iter()
                .map(|k| (*k, tokio::sync::Mutex::new(())))
                .collect(),
            pollers: Mutex::new(Vec::new()),
        };
        // Stored custom roles grant at once, before any file is read.
        s.install_roles()?;
        Ok(s)
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
        let run = match &result {
            Ok(a) => ProvisioningRun {
                kind: kind.as_str().into(),
                at: now(),
                ok: true,
                error: String::new(),
                files: a.files.clone(),
                applied: a.applied,
                removed: a.removed,
            },
            Err(e) => ProvisioningRun {
                kind: kind.as_str().into(),
                at: now(),
                ok: false,
                error: e.message(),
                files: Vec::new(),
                applied: 0,
                removed: 0,
            },
        };
        self.store.put_provisioning_run(&run)?;
        self.durability.wait().await?;
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
        self.check_datasources(&parsed)?;
        let mut applied = Applied {
            files: outcomes(&parsed),
            ..Applied::default()
        };
        for f in &parsed {
            for d in &f.content.delete_datasources {
                if self
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
                self.datasources
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
    fn check_datasources(&self, parsed: &[Parsed<DatasourcesFile>]) -> Result<(), AppError> {
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
                if let Ok(existing) = self.datasources.get_by_name(&p, &d.name) {
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
                if let Ok(other) = self.datasources.get_by_uid(&p, &d.uid) {
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
    async fn dashboards_run(&self, only: Option<&str>) -> Result<Applied, AppError> {
        let (scans, files) = self.scan_providers(only)?;
        let stored = self.store.dashboards()?;
        let folders = self.store.folders()?;
        let at = now();
        let mut batch = DashboardBatch::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut folder_uids: HashMap<String, String> = folders
            .iter()
            .map(|f| (f.title.clone(), f.uid.clone()))
            .collect();
        let mut new_folders: BTreeMap<String, FolderRecord> = BTreeMap::new();
        let mut folder_for = |title: &str, uid: &str, org_id: u64| -> String {
            if title.is_empty() && uid.is_empty() {
                return String::new();
            }
            let uid = if uid.is_empty() {
                folder_uids
                    .get(title)
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
            folder_uids.insert(title.clone(), uid.clone());
            if !folders.iter().any(|f| f.uid == uid && f.title == title) {
                new_folders.entry(uid.clone()).or_insert(FolderRecord {
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
                if !seen.insert(d.uid.clone()) {
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
                        batch.deletes.push(s.uid.clone());
                        removed += 1;
                    }
                }
            }
        }
        batch.folders = new_folders.into_values().collect();
        let applied = batch.upserts.len() as u64;
        if applied > 0 || removed > 0 || !batch.folders.is_empty() {
            self.store.apply_dashboards(&batch)?;
            self.durability.wait().await?;
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
        let stored = self.store.plugin_settings()?;
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
                    writes.push(self.secrets.seal_write(&plugin_ctx(&owner, field), value)?);
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
                    updated: now(),
                });
            }
        }
        if !rows.is_empty() {
            self.store.apply_plugin_settings(&rows, &writes)?;
            self.durability.wait().await?;
        }
        Ok(Applied {
            files: outcomes(&parsed),
            applied: rows.len() as u64,
            removed: 0,
        })
    }

    /// `GET /api/plugins/:id/settings` (the caller's org).
    pub fn plugin_settings(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<PluginSettingRecord, AppError> {
        p.require(Action::PluginsRead, &format!("plugins:id:{id}"))?;
        self.store
            .plugin_settings()?
            .into_iter()
            .find(|s| s.org_id == p.org_id.0 && s.plugin_id == id)
            .ok_or_else(|| {
                AppError::not_found("Plugin not found, no installed plugin with that id")
            })
    }

    // ----- notifiers -----

    async fn notifiers_run(&self) -> Result<Applied, AppError> {
        let parsed: Vec<Parsed<NotifiersFile>> = self.read(Kind::Notifications)?;
        let stored = self.store.notifiers()?;
        let at = now();
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
                    delete.push((org_id, n.uid.clone()));
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
                        self.secrets
                            .seal_write(&notifier_ctx(&owner, field), value)?,
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
            self.store.apply_notifiers(&set, &delete, &writes)?;
            self.durability.wait().await?;
        }
        Ok(Applied {
            files: outcomes(&parsed),
            applied: set.len() as u64,
            removed: delete.len() as u64,
        })
    }

    /// `GET /api/alert-notifications` (the caller's org).
    pub fn notifiers(&self, p: &Principal) -> Result<Vec<NotifierRecord>, AppError> {
        p.require(Action::AlertNotificationsRead, "")?;
        let mut v: Vec<NotifierRecord> = self
            .store
            .notifiers()?
            .into_iter()
            .filter(|n| n.org_id == p.org_id.0)
            .collect();
        v.sort_by_key(|n| n.id);
        Ok(v)
    }

    // ----- access control -----

    async fn roles_run(&self) -> Result<Applied, AppError> {
        let parsed: Vec<Parsed<AccessControlFile>> = self.read(Kind::AccessControl)?;
        let stored = self.store.roles()?;
        let mut set = Vec::new();
        let mut delete = Vec::new();
        let uid_of = |name: &str, uid: &str| -> Option<String> {
            if !uid.is_empty() {
                return Some(uid.to_string());
            }
            stored
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.uid.clone())
        };
        for f in &parsed {
            for d in &f.content.delete_roles {
                if let Some(uid) = uid_of(&d.name, &d.uid) {
                    delete.push(uid);
                }
            }
            for r in &f.content.roles {
                if r.state == "absent" {
                    if let Some(uid) = uid_of(&r.name, &r.uid) {
                        delete.push(uid);
                    }
                    continue;
                }
                let version = u64::try_from(r.version).unwrap_or(0);
                let old = stored.iter().find(|s| s.uid == r.uid);
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
                    org_id: if r.global { 0 } else { org(r.org_id) },
                    permissions: r
                        .permissions
                        .iter()
                        .map(|p| (p.action.clone(), p.scope.clone()))
                        .collect(),
                    basic_roles: r.built_in_roles.iter().map(|b| b.name.clone()).collect(),
                    users: r.users.iter().map(|u| u.login.clone()).collect(),
                    // API assignments survive a re-provisioned role.
                    user_ids: old.map(|o| o.user_ids.clone()).unwrap_or_default(),
                    updated: now(),
                });
            }
        }
        delete.retain(|uid| stored.iter().any(|s| &s.uid == uid));
        if !set.is_empty() || !delete.is_empty() {
            self.store.apply_roles(&set, &delete)?;
            self.durability.wait().await?;
        }
        self.install_roles()?;
        Ok(Applied {
            files: outcomes(&parsed),
            applied: set.len() as u64,
            removed: delete.len() as u64,
        })
    }

    /// Puts the stored custom roles in the evaluator's catalog (logins resolved now).
    pub fn install_roles(&self) -> Result<(), AppError> {
        let custom = self
            .store
            .roles()?
            .into_iter()
            .map(|r| {
                let mut users: Vec<u64> = r
                    .users
                    .iter()
                    .filter_map(|login| self.users.user_by_login(login).ok().flatten())
                    .map(|u| u.id)
                    .collect();
                users.extend(&r.user_ids);
                CustomRole {
                    basic_roles: r
                        .basic_roles
                        .iter()
                        .filter_map(|b| basic_role_key(b))
                        .collect(),
                    users,
                    role: role_of(&r),
                }
            })
            .collect::<Vec<_>>();
        self.catalog.install_custom(&custom);
        Ok(())
    }

    /// `GET /api/access-control/roles`: fixed and custom roles.
    pub fn roles(&self, p: &Principal) -> Result<Vec<Role>, AppError> {
        p.require(Action::RolesRead, "roles:*")?;
        Ok(self.catalog.roles())
    }

    /// `GET /api/access-control/roles/:uid`.
    pub fn role(&self, p: &Principal, uid: &str) -> Result<Role, AppError> {
        p.require(Action::RolesRead, &format!("roles:uid:{uid}"))?;
        self.catalog
            .roles()
            .into_iter()
            .find(|r| r.uid == uid)
            .ok_or_else(|| AppError::not_found("Role not found"))
    }

    // ----- dashboards, folders, search -----

    pub fn dashboard(
        &self,
        p: &Principal,
        uid: &str,
    ) -> Result<(DashboardRecord, Option<FolderRecord>), AppError> {
        p.require(Action::DashboardsRead, &format!("dashboards:uid:{uid}"))?;
        let d = self
            .store
            .dashboard(uid)?
            .filter(|d| d.org_id == p.org_id.0)
            .ok_or_else(|| AppError::not_found("Dashboard not found"))?;
        let folder = self.folder_of(&d)?;
        Ok((d, folder))
    }

    fn folder_of(&self, d: &DashboardRecord) -> Result<Option<FolderRecord>, AppError> {
        if d.folder_uid.is_empty() {
            return Ok(None);
        }
        Ok(self
            .store
            .folders()?
            .into_iter()
            .find(|f| f.uid == d.folder_uid))
    }

    pub fn folders(&self, p: &Principal) -> Result<Vec<FolderRecord>, AppError> {
        p.require(Action::FoldersRead, "")?;
        let mut v: Vec<FolderRecord> = self
            .store
            .folders()?
            .into_iter()
            .filter(|f| f.org_id == p.org_id.0)
            .collect();
        v.sort_by_key(|f| f.title.to_lowercase());
        Ok(v)
    }

    /// `GET /api/search`: folders and dashboards matching every given filter.
    pub fn search(&self, p: &Principal, q: &SearchQuery) -> Result<Vec<SearchHit>, AppError> {
        p.require(Action::DashboardsRead, "")?;
        let folders: Vec<FolderRecord> = self
            .store
            .folders()?
            .into_iter()
            .filter(|f| f.org_id == p.org_id.0)
            .collect();
        let needle = q.query.to_lowercase();
        let mut hits = Vec::new();
        let want = |t: &str| q.kind.is_empty() || q.kind == t;
        if want("dash-folder") && q.tags.is_empty() && q.folder_ids.is_empty() {
            for f in &folders {
                if f.title.to_lowercase().contains(&needle) {
                    hits.push(SearchHit::Folder(f.clone()));
                }
            }
        }
        if want("dash-db") {
            for d in self.store.dashboards()? {
                if d.org_id != p.org_id.0 || !d.title.to_lowercase().contains(&needle) {
                    continue;
                }
                if !q.tags.iter().all(|t| d.tags.contains(t)) {
                    continue;
                }
                let folder = folders.iter().find(|f| f.uid == d.folder_uid).cloned();
                let folder_id = folder.as_ref().map_or(0, |f| f.id);
                if !q.folder_ids.is_empty() && !q.folder_ids.contains(&folder_id) {
                    continue;
                }
                hits.push(SearchHit::Dashboard(Box::new(d), folder));
            }
        }
        hits.sort_by_key(|h| h.title().to_lowercase());
        hits.truncate(q.limit.clamp(1, 5000));
        Ok(hits)
    }

    // ----- legacy alerts -----

    pub fn alerts(&self, p: &Principal, q: &AlertQuery) -> Result<Vec<AlertRecord>, AppError> {
        p.require(Action::AlertRulesRead, "")?;
        let needle = q.query.to_lowercase();
        let mut v: Vec<AlertRecord> = self
            .store
            .alerts()?
            .into_iter()
            .filter(|a| a.org_id == p.org_id.0)
            .filter(|a| q.states.is_empty() || q.states.iter().any(|s| s == "all" || *s == a.state))
            .filter(|a| q.dashboard_id.is_none_or(|id| id == a.dashboard_id))
            .filter(|a| q.panel_id.is_none_or(|id| id == a.panel_id))
            .filter(|a| a.name.to_lowercase().contains(&needle))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        if q.limit > 0 {
            v.truncate(q.limit);
        }
        Ok(v)
    }

    /// `POST /api/alerts/:id/pause`: an org Editor or above.
    pub async fn pause_alert(&self, p: &Principal, id: u64, paused: bool) -> Result<(), AppError> {
        if p.org_role < OrgRole::Editor && !p.is_grafana_admin {
            return Err(AppError::PermissionDenied);
        }
        p.require(Action::AlertRulesWrite, "")?;
        let exists = self
            .store
            .alerts()?
            .into_iter()
            .any(|a| a.id == id && a.org_id == p.org_id.0);
        if !exists {
            return Err(AppError::not_found("Could not find alert"));
        }
        self.store.set_alerts_paused(Some(&[id]), paused)?;
        self.durability.wait().await?;
        Ok(())
    }

    /// `POST /api/admin/pause-all-alerts`: Grafana Admins; returns the alerts affected.
    pub async fn pause_all(&self, p: &Principal, paused: bool) -> Result<u64, AppError> {
        p.require_grafana_admin()?;
        let n = self.store.set_alerts_paused(None, paused)?;
        self.durability.wait().await?;
        Ok(n)
    }

    /// `GET /api/admin/provisioning/status`.
    pub fn status(&self, p: &Principal) -> Result<Vec<ProvisioningRun>, AppError> {
        p.require(Action::ProvisioningReload, "provisioners:*")?;
        let mut runs = self.store.provisioning_runs()?;
        runs.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(runs)
    }
}

fn plugin_ctx<'a>(owner: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        purpose: "plugin",
        owner,
        field,
    }
}

fn notifier_ctx<'a>(owner: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        purpose: "notifier",
        owner,
        field,
    }
}

/// A folder uid derived from its title (folders named in provider files have no uid).
fn folder_uid(title: &str) -> String {
    let h = crate::crypto::sha256(title.as_bytes());
    format!("folder-{}", &crate::crypto::random::hex(&h)[..12])
}

fn role_of(r: &RoleRecord) -> Role {
    Role {
        uid: r.uid.clone(),
        name: r.name.clone(),
        display_name: r.display_name.clone(),
        description: r.description.clone(),
        group: r.group.clone(),
        version: r.version,
        global: r.global,
        // Parsed at the boundary: the API and provisioning refuse unknown actions, so one
        // here predates those checks; it grants nothing, as before.
        permissions: r
            .permissions
            .iter()
            .filter_map(|(a, s)| {
                let p = Permission::parse(a, s);
                if p.is_none() {
                    tracing::warn!(role = %r.name, action = %a, "role holds an unknown action");
                }
                p
            })
            .collect(),
    }
}

/// `GET /api/search` filters.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub query: String,
    pub tags: Vec<String>,
    /// "dash-db", "dash-folder" or "" for both.
    pub kind: String,
    pub folder_ids: Vec<u64>,
    pub limit: usize,
}

pub enum SearchHit {
    Folder(FolderRecord),
    Dashboard(Box<DashboardRecord>, Option<FolderRecord>),
}

impl SearchHit {
    pub fn title(&self) -> &str {
        match self {
            Self::Folder(f) => &f.title,
            Self::Dashboard(d, _) => &d.title,
        }
    }
}

/// `GET /api/alerts` filters.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub query: String,
    pub states: Vec<String>,
    pub dashboard_id: Option<u64>,
    pub panel_id: Option<u64>,
    pub limit: usize,
}

/// The provisioning root's kind directory (for tests and messages).
pub fn kind_dir(root: &Path, kind: Kind) -> PathBuf {
    root.join(kind.dir())
}
