//! Every record of a store, backend-neutral: what `tollgate migrate` copies from a sled data
//! folder into PostgreSQL (and what a backup will hold). Ids, times and ciphertexts are kept
//! as they are: secrets stay sealed by the envelope service, so the secret key must match.

use super::records::*;

/// The whole content of a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    pub orgs: Vec<OrgRecord>,
    pub users: Vec<UserRecord>,
    /// Facts about the install (salts, the token key, the key canary, the usage id); not the
    /// backend's own bookkeeping (sequences, layout version).
    pub meta: Vec<(String, Vec<u8>)>,
    pub sessions: Vec<SessionRecord>,
    pub api_keys: Vec<ApiKeyRecord>,
    pub deks: Vec<DekRecord>,
    pub active_dek: Option<u32>,
    pub secrets: Vec<(String, SealedSecret)>,
    pub reencrypt_cursor: Option<String>,
    pub datasources: Vec<DataSourceRecord>,
    pub settings: Vec<SettingOverride>,
    pub license: Option<StoredLicense>,
    pub renewal: Option<RenewalRecord>,
    pub folders: Vec<FolderRecord>,
    pub dashboards: Vec<DashboardRecord>,
    pub alerts: Vec<AlertRecord>,
    pub plugin_settings: Vec<PluginSettingRecord>,
    pub notifiers: Vec<NotifierRecord>,
    pub roles: Vec<RoleRecord>,
    pub provisioning_runs: Vec<ProvisioningRun>,
}

impl Dump {
    /// How many records of each kind (the migration verifies them one by one).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("orgs", self.orgs.len()),
            ("users", self.users.len()),
            ("meta", self.meta.len()),
            ("sessions", self.sessions.len()),
            ("api_keys", self.api_keys.len()),
            ("deks", self.deks.len()),
            ("secrets", self.secrets.len()),
            ("datasources", self.datasources.len()),
            ("settings", self.settings.len()),
            ("license", usize::from(self.license.is_some())),
            ("renewal", usize::from(self.renewal.is_some())),
            ("folders", self.folders.len()),
            ("dashboards", self.dashboards.len()),
            ("alerts", self.alerts.len()),
            ("plugin_settings", self.plugin_settings.len()),
            ("notifiers", self.notifiers.len()),
            ("roles", self.roles.len()),
            ("provisioning_runs", self.provisioning_runs.len()),
        ]
    }

    /// Sorts every list by its key, so that two dumps of the same content compare equal
    /// whatever order a backend reads in.
    pub fn normalized(mut self) -> Self {
        self.orgs.sort_by_key(|o| o.id);
        self.users.sort_by_key(|u| u.id);
        self.meta.sort();
        self.sessions.sort_by_key(|s| s.id);
        self.api_keys.sort_by_key(|k| k.id);
        self.deks.sort_by_key(|d| d.id);
        self.secrets.sort_by(|a, b| a.0.cmp(&b.0));
        self.datasources.sort_by_key(|d| d.id);
        self.settings
            .sort_by(|a, b| (&a.section, &a.key).cmp(&(&b.section, &b.key)));
        self.folders.sort_by_key(|f| (f.org_id, f.id));
        self.dashboards.sort_by_key(|d| (d.org_id, d.id));
        self.alerts.sort_by_key(|a| (a.org_id, a.id));
        self.plugin_settings
            .sort_by(|a, b| (a.org_id, &a.plugin_id).cmp(&(b.org_id, &b.plugin_id)));
        self.notifiers.sort_by_key(|n| (n.org_id, n.id));
        self.roles
            .sort_by(|a, b| (a.org_id, &a.uid).cmp(&(b.org_id, &b.uid)));
        for r in &mut self.roles {
            r.user_ids.sort_unstable();
        }
        self.provisioning_runs.sort_by(|a, b| a.kind.cmp(&b.kind));
        self
    }
}
