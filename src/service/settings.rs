//! Settings as operators read and change them at runtime.
//!
//! The effective configuration is the start-up config (defaults, file, env) with database
//! overrides on top. Reads are redacted exactly as Grafana's code does it: the pattern list
//! is tested against the `GF_<SECTION>_<KEY>` form, the mask is `*********`, empty values are
//! never masked, and passwords inside URL values become `xxxxx`. Reads are filtered by the
//! caller's `settings:read` scopes. Only `auth.saml` may change at runtime; secret-like keys
//! are stored through the secrets service.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::config::{env_key, RawConfig, Settings, Source};
use crate::crypto::envelope::SecretContext;
use crate::domain::{Action, PermissionSet, Principal};
use crate::error::AppError;
use crate::service::secrets::SecretsService;
use crate::store::{SettingOverride, SettingsStore};

pub const MASK: &str = "*********";
/// Sections that may change at runtime (Grafana Enterprise allows only this one).
pub const RUNTIME_SECTIONS: &[&str] = &["auth.saml"];

/// Grafana's redaction patterns, newest list, as (kind, text): `contains`, `equals` (`^X$`)
/// or `suffix` (`X$`).
const PATTERNS: &[(&str, &str)] = &[
    ("contains", "PASSWORD"),
    ("contains", "SECRET"),
    ("contains", "PROVIDER_CONFIG"),
    ("contains", "PRIVATE_KEY"),
    ("contains", "SECRET_KEY"),
    ("contains", "CERTIFICATE"),
    ("contains", "ACCOUNT_KEY"),
    ("contains", "ENCRYPTION_KEY"),
    ("contains", "VAULT_TOKEN"),
    ("contains", "CLIENT_SECRET"),
    ("contains", "ENTERPRISE_LICENSE"),
    ("contains", "API_DB_PASS"),
    ("equals", "TOKEN"),
    ("suffix", "ID_FORWARDING_TOKEN"),
    ("suffix", "AUTHENTICATION_TOKEN"),
    ("suffix", "AUTH_TOKEN"),
    ("suffix", "RENDERER_TOKEN"),
    ("suffix", "API_TOKEN"),
    ("suffix", "WEBHOOK_TOKEN"),
    ("suffix", "INSTALL_TOKEN"),
];

/// True when Grafana would mask this key (tested on its env-var form).
pub fn is_secret_key(section: &str, key: &str) -> bool {
    let env = env_key(section, key);
    PATTERNS.iter().any(|(kind, p)| match *kind {
        "equals" => env == *p,
        "suffix" => env.ends_with(p),
        _ => env.contains(p),
    })
}

/// Go's `url.URL.Redacted()` on one chunk: the password of `user:password@` becomes `xxxxx`.
fn redact_url(chunk: &str) -> String {
    let (prefix, rest) = match chunk.find("://") {
        Some(i) => chunk.split_at(i + 3),
        None => return chunk.to_string(),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{prefix}{user}:xxxxx@{host}{tail}"),
            None => chunk.to_string(),
        },
        None => chunk.to_string(),
    }
}

/// Grafana's `RedactedValue(EnvKey(section, key), value)`.
pub fn redact(section: &str, key: &str, value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if is_secret_key(section, key) {
        return MASK.to_string();
    }
    let env = env_key(section, key);
    if ["RUDDERSTACK", "APPLICATION_INSIGHTS", "SENTRY"]
        .iter()
        .any(|s| env.contains(s))
    {
        return value.to_string();
    }
    if !value.contains("://") {
        return value.to_string();
    }
    if value.contains(',') {
        value
            .split(',')
            .map(redact_url)
            .collect::<Vec<_>>()
            .join(",")
    } else {
        value
            .split(' ')
            .map(redact_url)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A value with where it came from.
#[derive(Debug, Clone)]
pub struct SourcedValue {
    pub value: String,
    pub source: Source,
}

pub type SettingsView = BTreeMap<String, BTreeMap<String, SourcedValue>>;

/// What `PUT /api/admin/settings` asks.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub updates: BTreeMap<String, BTreeMap<String, String>>,
    pub removals: BTreeMap<String, Vec<String>>,
}

pub struct SettingsService {
    base: Arc<Settings>,
    store: Arc<dyn SettingsStore>,
    secrets: Arc<SecretsService>,
    overrides: RwLock<BTreeMap<(String, String), String>>,
    /// The redacted view of every setting, rendered on first read after each change of the
    /// overrides. Lock order: `overrides`, then `full`; a writer of `overrides` clears it
    /// before releasing its lock, so a view rendered under a read lock is never stale, and
    /// one found here without that lock is at worst the view of a change still in
    /// progress (not yet answered).
    full: RwLock<Option<Arc<SettingsView>>>,
    /// The views of callers allowed only some settings, by their `settings:read` scopes (a
    /// service account's token, a role with one property), filtered from `full` once per
    /// change of it rather than on every read.
    scoped: Mutex<ScopedViews>,
}

/// Filtered views, valid for the full view they were filtered from.
#[derive(Default)]
struct ScopedViews {
    from: Option<Arc<SettingsView>>,
    views: HashMap<Vec<String>, Arc<SettingsView>>,
    /// The views of the permission sets seen last, found by the set's identity before
    /// its scopes are hashed (a caller's set is shared until the roles change). Holding
    /// the set keeps its address from being reused by another.
    by_set: Vec<(Arc<PermissionSet>, Arc<SettingsView>)>,
}

/// Permission sets remembered by identity; past that the oldest is let go.
const VIEWS_BY_SET: usize = 8;

/// Distinct scope lists remembered at once; past that the cache starts over.
const SCOPED_VIEWS: usize = 64;

impl ScopedViews {
    fn remember(&mut self, set: &Arc<PermissionSet>, view: &Arc<SettingsView>) {
        if self.by_set.len() >= VIEWS_BY_SET {
            self.by_set.remove(0);
        }
        self.by_set.push((set.clone(), view.clone()));
    }
}

fn ctx<'a>(section: &'a str, key: &'a str) -> SecretContext<'a> {
    SecretContext {
        purpose: "settings",
        owner: section,
        field: key,
    }
}

impl SettingsService {
    /// Loads the overrides (decrypting secret ones).
    pub async fn open(
        base: Arc<Settings>,
        store: Arc<dyn SettingsStore>,
        secrets: Arc<SecretsService>,
    ) -> Result<Self, AppError> {
        let overrides = Self::load(store.as_ref(), &secrets).await?;
        Ok(Self {
            base,
            store,
            secrets,
            overrides: RwLock::new(overrides),
            full: RwLock::new(None),
            scoped: Mutex::default(),
        })
    }

    async fn load(
        store: &dyn SettingsStore,
        secrets: &SecretsService,
    ) -> Result<BTreeMap<(String, String), String>, AppError> {
        let mut overrides = BTreeMap::new();
        for o in store.setting_overrides().await? {
            let value = if o.secret {
                secrets
                    .read(&ctx(&o.section, &o.key))
                    .await?
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            } else {
                o.value.clone().unwrap_or_default()
            };
            overrides.insert((o.section, o.key), value);
        }
        Ok(overrides)
    }

    /// Re-reads the overrides (another node changed them).
    pub async fn reload(&self) -> Result<(), AppError> {
        let fresh = Self::load(self.store.as_ref(), &self.secrets).await?;
        let mut live = self.overrides.write();
        *live = fresh;
        *self.full.write() = None;
        Ok(())
    }

    /// The effective configuration, unredacted (server-internal use only).
    pub fn effective(&self) -> RawConfig {
        self.effective_with(&self.overrides.read())
    }

    fn effective_with(&self, overrides: &BTreeMap<(String, String), String>) -> RawConfig {
        let mut raw = self.base.raw.clone();
        for ((section, key), value) in overrides {
            raw.set(section, key, value, Source::Database);
        }
        raw
    }

    /// Every setting, redacted (rendered once per change of the overrides).
    fn full_view(&self) -> Arc<SettingsView> {
        if let Some(view) = self.full.read().as_ref() {
            return view.clone();
        }
        let overrides = self.overrides.read();
        if let Some(view) = self.full.read().as_ref() {
            return view.clone();
        }
        let mut out = SettingsView::new();
        for (section, entries) in self.effective_with(&overrides).sections() {
            let visible: BTreeMap<String, SourcedValue> = entries
                .iter()
                .map(|(key, entry)| {
                    let value = SourcedValue {
                        value: redact(section, key, &entry.value),
                        source: entry.source,
                    };
                    (key.clone(), value)
                })
                .collect();
            if !visible.is_empty() {
                out.insert(section.clone(), visible);
            }
        }
        let view = Arc::new(out);
        *self.full.write() = Some(view.clone());
        view
    }

    /// The redacted view the caller may see: sections with nothing allowed are left out.
    /// A caller allowed every setting gets the shared full view (the same `Arc` until the
    /// overrides change).
    pub fn read(&self, p: &Principal) -> Result<Arc<SettingsView>, AppError> {
        p.require(Action::SettingsRead, "")?;
        let full = self.full_view();
        if p.permissions.has(Action::SettingsRead, "settings:*") {
            return Ok(full);
        }
        // A view depends only on the full view and the `settings:read` scopes held (a
        // holder of everything got the full view above).
        let scopes = p.permissions.scopes(Action::SettingsRead);
        {
            let mut cache = self.scoped.lock();
            if !cache.from.as_ref().is_some_and(|f| Arc::ptr_eq(f, &full)) {
                cache.views.clear();
                cache.by_set.clear();
                cache.from = Some(full.clone());
            }
            let set = &p.permissions;
            if let Some((_, view)) = cache.by_set.iter().find(|(s, _)| Arc::ptr_eq(s, set)) {
                return Ok(view.clone());
            }
            if let Some(view) = cache.views.get(scopes).cloned() {
                cache.remember(set, &view);
                return Ok(view);
            }
        }
        let mut out = SettingsView::new();
        for (section, entries) in full.iter() {
            let visible: BTreeMap<String, SourcedValue> = entries
                .iter()
                .filter(|(key, _)| {
                    let scope = ["settings:", section.as_str(), ":", key.as_str()];
                    p.permissions.has_parts(Action::SettingsRead, &scope)
                })
                .map(|(key, v)| (key.clone(), v.clone()))
                .collect();
            if !visible.is_empty() {
                out.insert(section.clone(), visible);
            }
        }
        let view = Arc::new(out);
        let mut cache = self.scoped.lock();
        // Kept only while it is still filtered from the current full view.
        if cache.from.as_ref().is_some_and(|f| Arc::ptr_eq(f, &full)) {
            if cache.views.len() >= SCOPED_VIEWS {
                cache.views.clear();
            }
            cache.views.insert(scopes.to_vec(), view.clone());
            cache.remember(&p.permissions, &view);
        }
        Ok(view)
    }

    /// Applies runtime overrides: all or nothing.
    pub async fn update(&self, p: &Principal, change: SettingsUpdate) -> Result<(), AppError> {
        let touched: Vec<(&String, &String)> = change
            .updates
            .iter()
            .flat_map(|(s, kv)| kv.keys().map(move |k| (s, k)))
            .chain(
                change
                    .removals
                    .iter()
                    .flat_map(|(s, ks)| ks.iter().map(move |k| (s, k))),
            )
            .collect();
        if touched.is_empty() {
            return Err(AppError::bad_request(
                "At least one of updates or removals must be given",
            ));
        }
        for (section, key) in &touched {
            if !RUNTIME_SECTIONS.contains(&section.as_str()) {
                return Err(AppError::bad_request(format!(
                    "Cannot update settings of section '{section}': only auth.saml can be changed at runtime"
                )));
            }
            if key.is_empty() || key.contains(['\n', ' ', '=']) || key.len() > 128 {
                return Err(AppError::bad_request(format!(
                    "Invalid setting key '{key}'"
                )));
            }
        }
        for (section, key) in &touched {
            p.require(Action::SettingsWrite, &format!("settings:{section}:{key}"))?;
        }
        let mut set = Vec::new();
        let mut secret_writes = Vec::new();
        for (section, kv) in &change.updates {
            for (key, value) in kv {
                let secret = is_secret_key(section, key);
                if secret {
                    secret_writes.push(self.secrets.seal_write(&ctx(section, key), value).await?);
                }
                set.push(SettingOverride {
                    section: section.clone(),
                    key: key.clone(),
                    value: (!secret).then(|| value.clone()),
                    secret,
                });
            }
        }
        let mut remove = Vec::new();
        for (section, keys) in &change.removals {
            for key in keys {
                remove.push((section.clone(), key.clone()));
                secret_writes.push(SecretsService::delete_write(&ctx(section, key)));
            }
        }
        self.store
            .apply_setting_overrides(&set, &remove, &secret_writes)
            .await
            .map_err(AppError::store("Failed to update settings"))?;
        let mut live = self.overrides.write();
        for (s, k) in &remove {
            live.remove(&(s.clone(), k.clone()));
        }
        for (section, kv) in change.updates {
            for (key, value) in kv {
                live.insert((section.clone(), key), value);
            }
        }
        *self.full.write() = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_apply_to_the_env_form() {
        assert_eq!(redact("security", "admin_password", "x"), MASK);
        assert_eq!(redact("security", "secret_key", "x"), MASK);
        assert_eq!(redact("auth.github", "client_secret", "x"), MASK);
        assert_eq!(redact("auth.saml", "private_key", "x"), MASK);
        assert_eq!(redact("auth.saml", "certificate", "x"), MASK);
        assert_eq!(
            redact("users", "password_hint", "x"),
            MASK,
            "section+key form"
        );
        assert_eq!(redact("grafana_net", "api_token", "x"), MASK);
        assert_eq!(
            redact("auth", "token_rotation_interval_minutes", "10"),
            "10"
        );
        assert_eq!(redact("server", "http_port", "3000"), "3000");
        assert_eq!(
            redact("security", "admin_password", ""),
            "",
            "empty values are never masked"
        );
        // A section whose name makes every key secret.
        assert_eq!(redact("secrets_manager", "enabled", "true"), MASK);
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact("database", "url", "mysql://user:secret@host:3306/db"),
            "mysql://user:xxxxx@host:3306/db"
        );
        assert_eq!(
            redact("remote", "urls", "http://a:b@x/,https://c:d@y/z"),
            "http://a:xxxxx@x/,https://c:xxxxx@y/z"
        );
        assert_eq!(
            redact("server", "root_url", "http://localhost:3000/"),
            "http://localhost:3000/"
        );
        assert_eq!(
            redact("log", "sentry_dsn", "https://k:s@sentry.io/1"),
            "https://k:s@sentry.io/1"
        );
    }
}
