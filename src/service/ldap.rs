//! LDAP sign-in, as Grafana does it: Grafana's `ldap.toml` (`[[servers]]`, attributes,
//! group mappings), service bind, user search, user bind, groups (`memberOf` or a group
//! search), mapping to org roles and Grafana Admin, then a local user marked `ldap`.
//!
//! A reload parses, validates and test-binds the new file before swapping it in, so a
//! broken file never replaces a working configuration. The only code that names `ldap3`.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{ldap_escape, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use parking_lot::RwLock;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{OrgId, OrgRole, Principal, UserId};
use crate::error::AppError;
use crate::store::{NewMembership, ProfileChange, StoreError, UserRecord, UserStore};

/// A password from the config: redacted in `Debug`, zeroized on drop.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<String>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Secret(Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"*********\"")
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LdapConfig {
    #[serde(default)]
    pub servers: Vec<ServerConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub use_ssl: bool,
    #[serde(default)]
    pub start_tls: bool,
    #[serde(default)]
    pub ssl_skip_verify: bool,
    #[serde(default)]
    pub root_ca_cert: String,
    #[serde(default)]
    pub bind_dn: String,
    #[serde(default)]
    pub bind_password: Secret,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    #[serde(default = "default_filter")]
    pub search_filter: String,
    #[serde(default)]
    pub search_base_dns: Vec<String>,
    /// Set for directories without `memberOf` on users: a filter finding the user's
    /// groups, `%s` being the user's value of `group_search_filter_user_attribute`.
    #[serde(default)]
    pub group_search_filter: String,
    /// Where groups are searched; empty means `search_base_dns`, as in Grafana.
    #[serde(default)]
    pub group_search_base_dns: Vec<String>,
    /// The user attribute whose value replaces `%s` in `group_search_filter` (`uid` for
    /// POSIX `memberUid`, `dn` for `groupOfNames` `member`); empty means the username
    /// attribute.
    #[serde(default)]
    pub group_search_filter_user_attribute: String,
    #[serde(default)]
    pub attributes: Attributes,
    #[serde(default)]
    pub group_mappings: Vec<GroupMapping>,
    /// Built from `root_ca_cert` once, when the file is loaded (not per connection).
    #[serde(skip)]
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn default_port() -> u16 {
    389
}
fn default_timeout() -> u64 {
    10
}
fn default_filter() -> String {
    "(cn=%s)".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct Attributes {
    #[serde(default = "a_given")]
    pub name: String,
    #[serde(default = "a_sn")]
    pub surname: String,
    #[serde(default = "a_cn")]
    pub username: String,
    #[serde(default = "a_member_of")]
    pub member_of: String,
    #[serde(default = "a_email")]
    pub email: String,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            name: a_given(),
            surname: a_sn(),
            username: a_cn(),
            member_of: a_member_of(),
            email: a_email(),
        }
    }
}

fn a_given() -> String {
    "givenName".into()
}
fn a_sn() -> String {
    "sn".into()
}
fn a_cn() -> String {
    "cn".into()
}
fn a_member_of() -> String {
    "memberOf".into()
}
fn a_email() -> String {
    "email".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupMapping {
    pub group_dn: String,
    #[serde(default = "one")]
    pub org_id: u64,
    #[serde(default)]
    pub org_role: String,
    #[serde(default)]
    pub grafana_admin: bool,
}

fn one() -> u64 {
    1
}

/// Parses and validates an `ldap.toml` text (`${VAR}` and `$VAR` expanded first).
pub fn parse_config(text: &str) -> Result<LdapConfig, String> {
    let env = |k: &str| std::env::var(k).ok();
    let expanded = crate::provisioning::files::expand_str(text, &env);
    let mut cfg: LdapConfig = toml::from_str(&expanded).map_err(|e| e.to_string())?;
    if cfg.servers.is_empty() {
        return Err("no [[servers]] defined".into());
    }
    for (i, s) in cfg.servers.iter_mut().enumerate() {
        let n = i + 1;
        if !s.root_ca_cert.trim().is_empty() && !s.ssl_skip_verify {
            s.tls = Some(tls_config(&s.root_ca_cert).map_err(|e| format!("server {n}: {e}"))?);
        }
        if s.host.trim().is_empty() {
            return Err(format!("server {n}: host is required"));
        }
        if s.search_base_dns.is_empty() {
            return Err(format!("server {n}: search_base_dns is required"));
        }
        if !s.search_filter.contains("%s") {
            return Err(format!("server {n}: search_filter must contain %s"));
        }
        for m in &s.group_mappings {
            if !m.org_role.is_empty() && OrgRole::parse(&m.org_role).is_none() {
                return Err(format!(
                    "server {n}: group mapping '{}': org_role '{}' is not Viewer, Editor, Admin or None",
                    m.group_dn, m.org_role
                ));
            }
        }
    }
    Ok(cfg)
}

/// What the directory says about a user and how it maps.
#[derive(Debug, Clone)]
pub struct LdapIdentity {
    pub dn: String,
    pub login: String,
    pub email: String,
    pub name: String,
    pub surname: String,
    pub groups: Vec<String>,
    /// (org, role, the group that gave it).
    pub org_roles: Vec<(OrgId, OrgRole, String)>,
    pub grafana_admin: bool,
}

/// A server's reachability.
#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub host: String,
    pub port: u16,
    pub available: bool,
    pub error: String,
}

enum Outcome {
    Found(Box<LdapIdentity>),
    /// Not in this server's search base, or a wrong password: try the next server.
    NoMatch,
}

/// Grafana's `getAttribute`: the first value of `attr`, where the name `dn` (any case)
/// means the entry's DN, which is no attribute.
fn first(e: &SearchEntry, attr: &str) -> String {
    if attr.eq_ignore_ascii_case("dn") {
        return e.dn.clone();
    }
    e.attrs
        .get(attr)
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default()
}

/// Grafana's `getArrayAttribute`: every value of `attr`, `dn` again meaning the DN.
fn values(e: &SearchEntry, attr: &str) -> Vec<String> {
    if attr.eq_ignore_ascii_case("dn") {
        return vec![e.dn.clone()];
    }
    e.attrs.get(attr).cloned().unwrap_or_default()
}

/// A TLS client config trusting the CA certificates in `root_ca_cert` (PEM files, space
/// separated, as Grafana reads them) instead of the system roots.
pub fn tls_config(root_ca_cert: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for path in root_ca_cert.split_whitespace() {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("root_ca_cert {path}: {e}"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("root_ca_cert {path}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("root_ca_cert {path}: no certificate in the file"));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("root_ca_cert {path}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

impl ServerConfig {
    fn url(&self, host: &str) -> String {
        let scheme = if self.use_ssl && !self.start_tls {
            "ldaps"
        } else {
            "ldap"
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    fn hosts(&self) -> Vec<&str> {
        self.host.split_whitespace().collect()
    }

    async fn connect(&self) -> Result<ldap3::Ldap, String> {
        let mut last = String::from("no host");
        for host in self.hosts() {
            let mut settings = LdapConnSettings::new()
                .set_conn_timeout(Duration::from_secs(self.timeout.max(1)))
                .set_starttls(self.start_tls)
                .set_no_tls_verify(self.ssl_skip_verify);
            if let Some(cfg) = &self.tls {
                settings = settings.set_config(cfg.clone());
            }
            match LdapConnAsync::with_settings(settings, &self.url(host)).await {
                Ok((conn, ldap)) => {
                    ldap3::drive!(conn);
                    return Ok(ldap);
                }
                Err(e) => last = format!("{}: {e}", self.url(host)),
            }
        }
        Err(last)
    }

    /// The service bind (or anonymous when there is no bind_dn).
    async fn service_bind(&self, ldap: &mut ldap3::Ldap) -> Result<(), String> {
        if self.bind_dn.is_empty() || self.bind_dn.contains("%s") {
            return Ok(());
        }
        ldap.simple_bind(&self.bind_dn, &self.bind_password.0)
            .await
            .and_then(|r| r.success())
            .map(drop)
            .map_err(|e| format!("bind as {} failed: {e}", self.bind_dn))
    }

    async fn find(
        &self,
        ldap: &mut ldap3::Ldap,
        login: &str,
    ) -> Result<Option<SearchEntry>, String> {
        let filter = self.search_filter.replace("%s", &ldap_escape(login));
        let a = &self.attributes;
        // The group search's user attribute too (a POSIX directory's `uid`, say), as
        // Grafana asks for it; `dn` is the entry's name, not an attribute to ask for.
        let attrs: Vec<&str> = [
            a.name.as_str(),
            a.surname.as_str(),
            a.username.as_str(),
            a.email.as_str(),
            a.member_of.as_str(),
            self.group_search_filter_user_attribute.as_str(),
        ]
        .into_iter()
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("dn"))
        .collect();
        for base in &self.search_base_dns {
            let (entries, _) = ldap
                .search(base, Scope::Subtree, &filter, attrs.clone())
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("search in {base} failed: {e}"))?;
            if let Some(e) = entries.into_iter().next() {
                return Ok(Some(SearchEntry::construct(e)));
            }
        }
        Ok(None)
    }

    /// The user's groups, as Grafana's `getMemberOf`: without a `group_search_filter`, the
    /// values of the `member_of` attribute on the user entry; with one, only the groups a
    /// search finds (`requestMemberOf`), for directories without the memberOf overlay
    /// (`groupOfNames` with `member=%s`, POSIX `posixGroup` with `memberUid=%s`).
    async fn groups(
        &self,
        ldap: &mut ldap3::Ldap,
        entry: &SearchEntry,
    ) -> Result<Vec<String>, String> {
        if self.group_search_filter.is_empty() {
            return Ok(values(entry, &self.attributes.member_of));
        }
        // `%s` is the user's value of `group_search_filter_user_attribute`, or of the
        // username attribute when that is unset (never the DN unless asked for: `dn`).
        let user_attr = if self.group_search_filter_user_attribute.is_empty() {
            &self.attributes.username
        } else {
            &self.group_search_filter_user_attribute
        };
        let filter = self
            .group_search_filter
            .replace("%s", &ldap_escape(first(entry, user_attr)));
        // A group's identity, compared with `group_dn`: its DN while `member_of` keeps
        // Grafana's default, else the first value of the attribute `member_of` names.
        let id_attr = match self.attributes.member_of.as_str() {
            "" | "memberOf" => "dn",
            other => other,
        };
        let wanted = if id_attr.eq_ignore_ascii_case("dn") {
            "1.1" // no attributes: the DN comes with every entry
        } else {
            id_attr
        };
        let bases = if self.group_search_base_dns.is_empty() {
            &self.search_base_dns
        } else {
            &self.group_search_base_dns
        };
        let mut groups = Vec::new();
        for base in bases {
            let (entries, _) = ldap
                .search(base, Scope::Subtree, &filter, vec![wanted])
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("group search in {base} failed: {e}"))?;
            for e in entries {
                let id = first(&SearchEntry::construct(e), id_attr);
                // Grafana keeps an empty identity (a group without the attribute); it
                // could only match a mapping with an empty group_dn, so it is dropped.
                if !id.is_empty() {
                    groups.push(id);
                }
            }
        }
        Ok(groups)
    }

    fn map(&self, entry: &SearchEntry, groups: Vec<String>) -> LdapIdentity {
        let mut org_roles: Vec<(OrgId, OrgRole, String)> = Vec::new();
        let mut grafana_admin = false;
        for m in &self.group_mappings {
            let hit =
                m.group_dn == "*" || groups.iter().any(|g| g.eq_ignore_ascii_case(&m.group_dn));
            if !hit {
                continue;
            }
            grafana_admin |= m.grafana_admin;
            let org = OrgId(m.org_id.max(1));
            // The first matching mapping decides an org's role, as in Grafana.
            if !org_roles.iter().any(|(o, _, _)| *o == org) {
                let role = OrgRole::parse(&m.org_role).unwrap_or(OrgRole::Viewer);
                org_roles.push((org, role, m.group_dn.clone()));
            }
        }
        let a = &self.attributes;
        LdapIdentity {
            dn: entry.dn.clone(),
            login: first(entry, &a.username),
            email: first(entry, &a.email),
            name: first(entry, &a.name),
            surname: first(entry, &a.surname),
            groups,
            org_roles,
            grafana_admin,
        }
    }

    /// Search, then bind as the user (when `password` is given), then groups.
    async fn identify(&self, login: &str, password: Option<&str>) -> Result<Outcome, String> {
        let mut ldap = self.connect().await?;
        self.service_bind(&mut ldap).await?;
        let Some(entry) = self.find(&mut ldap, login).await? else {
            let _ = ldap.unbind().await;
            return Ok(Outcome::NoMatch);
        };
        if let Some(pw) = password {
            if pw.is_empty() {
                return Ok(Outcome::NoMatch);
            }
            let ok = ldap
                .simple_bind(&entry.dn, pw)
                .await
                .and_then(|r| r.success())
                .is_ok();
            if !ok {
                let _ = ldap.unbind().await;
                return Ok(Outcome::NoMatch);
            }
            // Read groups with the service account's rights again.
            self.service_bind(&mut ldap).await?;
        }
        let groups = self.groups(&mut ldap, &entry).await?;
        let _ = ldap.unbind().await;
        Ok(Outcome::Found(Box::new(self.map(&entry, groups))))
    }
}

pub struct LdapService {
    settings: Arc<Settings>,
    config: RwLock<Option<Arc<LdapConfig>>>,
    users: Arc<dyn UserStore>,
    changes: Arc<dyn crate::store::Store>,
    clock: Arc<dyn Clock>,
}

impl LdapService {
    pub fn new(
        settings: Arc<Settings>,
        users: Arc<dyn UserStore>,
        changes: Arc<dyn crate::store::Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let s = Self {
            config: RwLock::new(None),
            settings,
            users,
            changes,
            clock,
        };
        if s.enabled() {
            match s.read_file() {
                Ok(cfg) => *s.config.write() = Some(Arc::new(cfg)),
                Err(e) => {
                    tracing::error!(error = %e, "LDAP config not loaded; LDAP sign-in is off until a reload")
                }
            }
        }
        s
    }

    pub fn enabled(&self) -> bool {
        self.settings
            .raw
            .get("auth.ldap", "enabled")
            .and_then(crate::config::parse_bool)
            == Some(true)
    }

    fn flag(&self, key: &str) -> bool {
        self.settings
            .raw
            .get("auth.ldap", key)
            .and_then(crate::config::parse_bool)
            == Some(true)
    }

    fn read_file(&self) -> Result<LdapConfig, String> {
        let path = self
            .settings
            .raw
            .get("auth.ldap", "config_file")
            .unwrap_or("")
            .to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        parse_config(&text).map_err(|e| format!("{path}: {e}"))
    }

    fn current(&self) -> Option<Arc<LdapConfig>> {
        self.config.read().clone()
    }

    /// Sign-in: the local user for LDAP credentials, or `None` when LDAP does not know
    /// them (wrong password, outside the search base, no mapped group, LDAP off).
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<Option<UserRecord>, AppError> {
        if !self.enabled() {
            return Ok(None);
        }
        let Some(cfg) = self.current() else {
            return Ok(None);
        };
        for server in &cfg.servers {
            match server.identify(login, Some(password)).await {
                Ok(Outcome::Found(id)) => {
                    if id.org_roles.is_empty() {
                        tracing::info!(login, "LDAP user is in no mapped group: sign-in refused");
                        return Ok(None);
                    }
                    return self.upsert(&id).await.map(Some);
                }
                Ok(Outcome::NoMatch) => {}
                Err(e) => {
                    // The directory itself failed (not the credentials): say so in the log.
                    tracing::error!(host = %server.host, error = %e, "LDAP server unavailable");
                }
            }
        }
        Ok(None)
    }

    /// Creates or updates the local user from the directory (roles unless
    /// `skip_org_role_sync`).
    async fn upsert(&self, id: &LdapIdentity) -> Result<UserRecord, AppError> {
        let login = if id.login.is_empty() {
            return Err(AppError::Unauthorized(
                "LDAP user has no username attribute".into(),
            ));
        } else {
            id.login.clone()
        };
        let name = [id.name.as_str(), id.surname.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let email = if id.email.is_empty() {
            login.clone()
        } else {
            id.email.clone()
        };
        let existing = self.users.user_by_login(&login).await?;
        let at = self.clock.now();
        let mut user = match existing {
            // A local account with its own password is not the directory's to take
            // (Grafana converts it; the OAuth equivalent was CVE-2023-3128).
            Some(u)
                if u.auth_module != "ldap"
                    && u.password.is_some()
                    && !self.flag("allow_local_takeover") =>
            {
                tracing::warn!(
                    login = %u.login,
                    "LDAP sign-in refused: a local user with a password has this login \
                     ([auth.ldap] allow_local_takeover = true lets the directory take it over)"
                );
                return Err(AppError::Unauthorized(
                    "Invalid username or password".into(),
                ));
            }
            Some(u) => {
                if u.email != email || u.name != name || u.auth_module != "ldap" {
                    let change = ProfileChange {
                        email: Some(email),
                        name: Some(name),
                        auth_module: Some("ldap".into()),
                        ..ProfileChange::default()
                    };
                    self.users
                        .update_profile(u.user_id(), &change, at)
                        .await
                        .map_err(conflict)?
                } else {
                    u
                }
            }
            None => {
                if !self.flag("allow_sign_up") {
                    return Err(AppError::Unauthorized(
                        "Invalid username or password".into(),
                    ));
                }
                let (org, role, _) = id.org_roles[0].clone();
                let mut record = UserRecord::new(
                    &login,
                    &email,
                    &name,
                    crate::crypto::random::short_uid(),
                    at,
                );
                record.auth_module = "ldap".into();
                self.users
                    .create_user(record, NewMembership::Existing(org, role))
                    .await
                    .map_err(conflict)?
            }
        };
        if !self.flag("skip_org_role_sync") {
            let wanted: Vec<(OrgId, OrgRole)> =
                id.org_roles.iter().map(|(o, r, _)| (*o, *r)).collect();
            let have: Vec<(OrgId, OrgRole)> = user
                .memberships
                .iter()
                .filter_map(|m| OrgRole::from_byte(m.role).map(|r| (OrgId(m.org_id), r)))
                .collect();
            if wanted != have {
                user = self
                    .users
                    .set_memberships(user.user_id(), &wanted, at)
                    .await
                    .map_err(conflict)?;
            }
            if user.is_admin != id.grafana_admin {
                match self
                    .users
                    .set_grafana_admin(user.user_id(), id.grafana_admin, at)
                    .await
                {
                    Ok(u) => user = u,
                    Err(StoreError::LastAdmin) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(user)
    }

    fn require_enabled(&self) -> Result<Arc<LdapConfig>, AppError> {
        if !self.enabled() {
            return Err(AppError::bad_request("LDAP is not enabled"));
        }
        self.current().ok_or_else(|| {
            AppError::bad_request("LDAP is enabled but its config did not load; reload it")
        })
    }

    /// `POST /api/admin/ldap/reload`: validate and test-bind first; keep the old config on
    /// any failure.
    pub async fn reload(&self, p: &Principal) -> Result<(), AppError> {
        p.require(Action::LdapConfigReload, "")?;
        self.reload_local().await?;
        // Every other node reloads its own ldap.toml (and keeps its old config if that
        // fails there, saying so in its log).
        if let Err(e) = self.changes.announce(crate::store::Topic::Ldap).await {
            tracing::warn!(error = %e, "could not tell the other nodes about the LDAP reload");
        }
        Ok(())
    }

    /// Reads, validates and test-binds `ldap.toml`, then swaps it in; the old config stays
    /// on any failure. Called by `reload` and when another node reloaded.
    pub async fn reload_local(&self) -> Result<(), AppError> {
        if !self.enabled() {
            return Err(AppError::bad_request("LDAP is not enabled"));
        }
        let failed = |reason: String| {
            tracing::error!(error = %reason, "LDAP reload refused; the previous config stays");
            AppError::Failed {
                public: "Failed to reload LDAP config".into(),
                reason,
            }
        };
        let cfg = self.read_file().map_err(failed)?;
        for s in &cfg.servers {
            let mut ldap = s.connect().await.map_err(failed)?;
            s.service_bind(&mut ldap).await.map_err(failed)?;
            let _ = ldap.unbind().await;
        }
        *self.config.write() = Some(Arc::new(cfg));
        tracing::info!("LDAP config reloaded");
        Ok(())
    }

    /// `GET /api/admin/ldap/status`.
    pub async fn status(&self, p: &Principal) -> Result<Vec<ServerStatus>, AppError> {
        p.require(Action::LdapStatusRead, "")?;
        let cfg = self.require_enabled()?;
        let mut out = Vec::new();
        for s in &cfg.servers {
            let result = async {
                let mut ldap = s.connect().await?;
                s.service_bind(&mut ldap).await?;
                let _ = ldap.unbind().await;
                Ok::<(), String>(())
            }
            .await;
            out.push(ServerStatus {
                host: s.host.clone(),
                port: s.port,
                available: result.is_ok(),
                error: result.err().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// `GET /api/admin/ldap/:username`.
    pub async fn lookup(
        &self,
        p: &Principal,
        username: &str,
    ) -> Result<(LdapIdentity, Attributes), AppError> {
        p.require(Action::LdapUserRead, "")?;
        let cfg = self.require_enabled()?;
        for s in &cfg.servers {
            match s.identify(username, None).await {
                Ok(Outcome::Found(id)) => return Ok((*id, s.attributes.clone())),
                Ok(Outcome::NoMatch) => {}
                Err(e) => {
                    return Err(AppError::internal("Failed to get LDAP user", e));
                }
            }
        }
        Err(AppError::not_found(
            "No user was found in the LDAP server(s) with that username",
        ))
    }

    /// `POST /api/admin/ldap/sync/:id`: refreshes a user from the directory.
    pub async fn sync(&self, p: &Principal, id: UserId) -> Result<(), AppError> {
        p.require(Action::LdapUserSync, "")?;
        let cfg = self.require_enabled()?;
        let user = self
            .users
            .user(id)
            .await?
            .ok_or_else(|| AppError::not_found("user not found"))?;
        if user.auth_module != "ldap" {
            return Err(AppError::bad_request("user is not managed by LDAP"));
        }
        for s in &cfg.servers {
            match s.identify(&user.login, None).await {
                Ok(Outcome::Found(ident)) if !ident.org_roles.is_empty() => {
                    self.upsert(&ident).await?;
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) => return Err(AppError::internal("Failed to sync user", e)),
            }
        }
        Err(AppError::not_found(
            "user not found in LDAP or in no mapped group",
        ))
    }
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(what) => {
            AppError::Conflict(format!("a local user already has this {what}"))
        }
        other => other.into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_grafanas_format_and_validates() {
        std::env::set_var("TG_LDAP_TEST_PW", "s3cret");
        let cfg = parse_config(
            r#"
[[servers]]
host = "127.0.0.1"
port = 3890
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "${TG_LDAP_TEST_PW}"
search_filter = "(uid=%s)"
search_base_dns = ["ou=users,dc=example,dc=org"]

[servers.attributes]
username = "uid"
email = "mail"

[[servers.group_mappings]]
group_dn = "cn=admins,ou=groups,dc=example,dc=org"
org_role = "Admin"
grafana_admin = true
"#,
        )
        .unwrap();
        let s = &cfg.servers[0];
        assert_eq!(&*s.bind_password.0, "s3cret");
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the password is redacted"
        );
        assert_eq!(s.attributes.member_of, "memberOf");
        assert_eq!(s.group_mappings[0].org_id, 1);
        assert!(parse_config("[[servers]]\nhost = \"x\"\n")
            .unwrap_err()
            .contains("search_base_dns"));
        assert!(parse_config("[[servers]\n").is_err());
        // root_ca_cert: a missing or empty file is a clear error (a reload then keeps the
        // old config).
        let e = tls_config("/nonexistent/ca.pem").unwrap_err();
        assert!(e.starts_with("root_ca_cert /nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(tls_config(empty.to_str().unwrap())
            .unwrap_err()
            .contains("no certificate"));
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        if std::path::Path::new(bundle).exists() {
            assert!(tls_config(bundle).is_ok(), "a PEM bundle loads");
        }
        assert!(parse_config(
            "[[servers]]\nhost=\"x\"\nsearch_base_dns=[\"a\"]\n[[servers.group_mappings]]\ngroup_dn=\"*\"\norg_role=\"Boss\"\n"
        )
        .unwrap_err()
        .contains("Boss"));
    }

    #[test]
    fn parses_the_group_search_keys() {
        let cfg = parse_config(
            r#"
[[servers]]
host = "127.0.0.1"
search_filter = "(uid=%s)"
search_base_dns = ["ou=users,dc=example,dc=org"]
group_search_filter = "(&(objectClass=posixGroup)(memberUid=%s))"
group_search_base_dns = ["ou=groups,dc=example,dc=org"]
group_search_filter_user_attribute = "uid"
"#,
        )
        .unwrap();
        let s = &cfg.servers[0];
        assert_eq!(
            s.group_search_filter,
            "(&(objectClass=posixGroup)(memberUid=%s))"
        );
        assert_eq!(s.group_search_base_dns, ["ou=groups,dc=example,dc=org"]);
        assert_eq!(s.group_search_filter_user_attribute, "uid");
    }

    #[test]
    fn the_attribute_named_dn_is_the_entrys_name() {
        let e = SearchEntry {
            dn: "uid=alice,ou=users,dc=example,dc=org".into(),
            attrs: [("cn".to_string(), vec!["a".to_string(), "b".to_string()])]
                .into_iter()
                .collect(),
            bin_attrs: Default::default(),
        };
        assert_eq!(first(&e, "DN"), e.dn);
        assert_eq!(values(&e, "dn"), vec![e.dn.clone()]);
        assert_eq!(first(&e, "cn"), "a");
        assert_eq!(values(&e, "cn"), ["a", "b"]);
        assert!(values(&e, "memberOf").is_empty());
    }
}
