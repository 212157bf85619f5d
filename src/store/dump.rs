//! Every record of a store, backend-neutral: what `tollgate migrate` copies from a sled data
//! folder into PostgreSQL, and what a backup holds (`store::backup`). Ids, times and ciphertexts are kept
//! as they are: secrets stay sealed by the envelope service, so the secret key must match.

use std::collections::HashSet;

use super::audit::{AuditChain, AuditEvent};
use super::records::*;

/// The whole content of a store.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dump {
    pub orgs: Vec<OrgRecord>,
    /// Org addresses by org id (orgs without one have none).
    pub org_addresses: Vec<(u64, OrgAddressRecord)>,
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
    pub quotas: Vec<QuotaRecord>,
    /// The activity series' buckets (history no other record can rebuild).
    pub activity_series: Vec<SeriesBucket>,
    /// The audit log's events, oldest first, and its chain (anchor and head), so that a
    /// restored or migrated log still verifies and appends after the same head.
    pub audit_events: Vec<AuditEvent>,
    pub audit_chain: AuditChain,
}

/// Records a dump holds for users it does not hold: sessions and service-account tokens of
/// deleted users (the embedded store keeps a deleted user's sessions, revoked, until a
/// purge). A database with foreign keys cannot store them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orphans {
    pub sessions: usize,
    pub tokens: usize,
}

impl Orphans {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Dump {
    /// The ids of the dump's users (service accounts included).
    pub fn user_ids(&self) -> HashSet<u64> {
        self.users.iter().map(|u| u.id).collect()
    }

    /// Whether a session or token names a user the dump does not hold.
    pub fn is_orphan_session(users: &HashSet<u64>, s: &SessionRecord) -> bool {
        !users.contains(&s.user_id)
    }

    /// Whether a service-account token's account is missing (legacy org keys have none).
    pub fn is_orphan_token(users: &HashSet<u64>, k: &ApiKeyRecord) -> bool {
        k.service_account_id.is_some_and(|sa| !users.contains(&sa))
    }

    /// Removes the [`Orphans`] and says how many there were.
    pub fn remove_orphans(&mut self) -> Orphans {
        let users = self.user_ids();
        let (sessions, keys) = (self.sessions.len(), self.api_keys.len());
        self.sessions
            .retain(|s| !Self::is_orphan_session(&users, s));
        self.api_keys.retain(|k| !Self::is_orphan_token(&users, k));
        Orphans {
            sessions: sessions - self.sessions.len(),
            tokens: keys - self.api_keys.len(),
        }
    }

    /// How many records of each kind (the migration verifies them one by one).
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("orgs", self.orgs.len()),
            ("org_addresses", self.org_addresses.len()),
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
            ("quotas", self.quotas.len()),
            ("activity_series", self.activity_series.len()),
            ("audit_events", self.audit_events.len()),
        ]
    }

    /// Sorts every list by its key, so that two dumps of the same content compare equal
    /// whatever order a backend reads in.
    pub fn normalized(mut self) -> Self {
        self.orgs.sort_by_key(|o| o.id);
        self.org_addresses.sort_by_key(|a| a.0);
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
        self.quotas.sort_by(|a, b| {
            (a.org_id, a.user_id, &a.target).cmp(&(b.org_id, b.user_id, &b.target))
        });
        self.activity_series.sort_by_key(|b| (b.span, b.start));
        self.audit_events.sort_by_key(|e| e.seq);
        self
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn user(id: u64) -> UserRecord {
        UserRecord {
            id,
            ..UserRecord::new(
                &format!("u{id}"),
                &format!("u{id}@x"),
                "",
                format!("{id}"),
                0,
            )
        }
    }

    fn session(id: u64, user_id: u64) -> SessionRecord {
        SessionRecord {
            id,
            user_id,
            token_hash: [id as u8; 32],
            prev_token_hash: None,
            prev_valid_until_ms: 0,
            client_ip: String::new(),
            user_agent: String::new(),
            auth_module: String::new(),
            created_ms: 0,
            seen_ms: 0,
            rotated_ms: 0,
            revoked_ms: None,
        }
    }

    fn key(id: u64, service_account_id: Option<u64>) -> ApiKeyRecord {
        ApiKeyRecord {
            id,
            org_id: 1,
            name: format!("k{id}"),
            role: 1,
            hash: [id as u8; 32],
            expires: None,
            created: 0,
            last_used: None,
            service_account_id,
        }
    }

    #[test]
    fn orphans_are_the_records_of_users_the_dump_lacks() {
        let mut d = Dump {
            users: vec![user(1), user(2)],
            sessions: vec![session(1, 1), session(2, 3), session(3, 2)],
            api_keys: vec![key(1, None), key(2, Some(2)), key(3, Some(9))],
            ..Dump::default()
        };
        let o = d.remove_orphans();
        assert_eq!(
            o,
            Orphans {
                sessions: 1,
                tokens: 1
            }
        );
        assert_eq!(d.sessions.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(
            d.api_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            [1, 2],
            "legacy keys have no account and stay"
        );
        assert!(d.remove_orphans().is_empty());
    }
}
