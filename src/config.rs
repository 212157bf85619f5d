//! Grafana-style configuration: compiled-in defaults, then the `--config` ini file, then
//! `GF_<SECTION>_<KEY>` environment overrides (non-empty values, existing keys only), then
//! `%(key)s`, `${VAR}`, `$__env{VAR}` and `$__file{path}` expansion.
//!
//! [`RawConfig`] keeps every key with the layer it came from (the settings endpoints show it);
//! [`Settings`] is the typed, validated view the server runs on. A bad value is a
//! [`ConfigError`] naming section, key and value; `main` turns it into exit code 2.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::OrgRole;

/// The compiled-in defaults (`conf/defaults.ini`).
pub const DEFAULTS_INI: &str = include_str!("../conf/defaults.ini");

/// Name of the unnamed top section, as Grafana reports it.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Which layer a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Database,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::File => "file",
            Source::Env => "env",
            Source::Database => "database",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: String,
    pub source: Source,
}

/// A configuration problem found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub section: String,
    pub key: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration: {}", self.reason)
        } else {
            write!(
                f,
                "configuration: [{}] {} = {:?}: {}",
                self.section, self.key, self.value, self.reason
            )
        }
    }
}

impl std::error::Error for ConfigError {}

fn file_error(reason: String) -> ConfigError {
    ConfigError {
        section: String::new(),
        key: String::new(),
        value: String::new(),
        reason,
    }
}

/// Every section and key of the merged configuration, with its source.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    sections: BTreeMap<String, BTreeMap<String, Entry>>,
}

impl RawConfig {
    /// Loads defaults, the optional file and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_with_env(file, &vars)
    }

    /// Same as [`RawConfig::load`] with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = RawConfig::default();
        raw.merge_ini(DEFAULTS_INI, Source::Default, false)
            .map_err(|e| file_error(format!("compiled defaults: {e}")))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                file_error(format!("cannot read config file {}: {e}", path.display()))
            })?;
            raw.merge_ini(&text, Source::File, true)
                .map_err(|e| file_error(format!("config file {}: {e}", path.display())))?;
        }
        raw.apply_env(env);
        raw.expand(env)?;
        Ok(raw)
    }

    fn merge_ini(&mut self, text: &str, source: Source, skip_empty: bool) -> Result<(), String> {
        let ini = ini::Ini::load_from_str(text).map_err(|e| e.to_string())?;
        for (section, props) in ini.iter() {
            let section = section.unwrap_or(DEFAULT_SECTION).to_string();
            let entries = self.sections.entry(section).or_default();
            for (key, value) in props.iter() {
                if skip_empty && value.is_empty() {
                    continue;
                }
                entries.insert(
                    key.to_string(),
                    Entry {
                        value: value.to_string(),
                        source,
                    },
                );
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &BTreeMap<String, String>) {
        for (section, entries) in self.sections.iter_mut() {
            for (key, entry) in entries.iter_mut() {
                if let Some(value) = env.get(&env_key(section, key)) {
                    if !value.is_empty() {
                        entry.value = value.clone();
                        entry.source = Source::Env;
                    }
                }
            }
        }
    }

    fn expand(&mut self, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
        let snapshot = self.sections.clone();
        for (section, entries) in self.sections.iter_mut() {
            for (key, entry) in entries.iter_mut() {
                let interpolated = interpolate(&snapshot, section, &entry.value, 0);
                entry.value = expand_vars(&interpolated, env).map_err(|reason| ConfigError {
                    section: section.clone(),
                    key: key.clone(),
                    value: entry.value.clone(),
                    reason,
                })?;
            }
        }
        Ok(())
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .map(|e| e.value.as_str())
    }

    pub fn sections(&self) -> &BTreeMap<String, BTreeMap<String, Entry>> {
        &self.sections
    }

    /// Sets a value (used for database overrides and tests).
    pub fn set(&mut self, section: &str, key: &str, value: &str, source: Source) {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(
                key.to_string(),
                Entry {
                    value: value.to_string(),
                    source,
                },
            );
    }
}

/// `GF_` + upper(section, `.`/`-` to `_`) + `_` + upper(key, `.` to `_`).
pub fn env_key(section: &str, key: &str) -> String {
    let section = section.replace(['.', '-'], "_").to_uppercase();
    let key = key.replace('.', "_").to_uppercase();
    if section == DEFAULT_SECTION {
        format!("GF_{key}")
    } else {
        format!("GF_{section}_{key}")
    }
}

/// go-ini style `%(name)s`: the key from the same section, else from DEFAULT.
fn interpolate(
    all: &BTreeMap<String, BTreeMap<String, Entry>>,
    section: &str,
    value: &str,
    depth: usize,
) -> String {
    if depth > 8 || !value.contains("%(") {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("%(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(")s") {
            Some(end) => {
                let name = &after[..end];
                let found = all
                    .get(section)
                    .and_then(|s| s.get(name))
                    .or_else(|| all.get(DEFAULT_SECTION).and_then(|s| s.get(name)));
                match found {
                    Some(e) => out.push_str(&interpolate(all, section, &e.value, depth + 1)),
                    None => out.push_str(&rest[start..start + 2 + end + 2]),
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `${VAR}`, `$__env{VAR}` and `$__file{path}` expansion.
fn expand_vars(value: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    if !value.contains('$') {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (kind, body_start) = if tail.starts_with("$__env{") {
            ("env", 7)
        } else if tail.starts_with("$__file{") {
            ("file", 8)
        } else if tail.starts_with("${") {
            ("env", 2)
        } else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = tail[body_start..].find('}') else {
            out.push_str(tail);
            rest = "";
            continue;
        };
        let name = &tail[body_start..body_start + end];
        match kind {
            "file" => {
                let text = std::fs::read_to_string(name)
                    .map_err(|e| format!("cannot read $__file{{{name}}}: {e}"))?;
                out.push_str(text.trim_end_matches(['\n', '\r']));
            }
            _ => out.push_str(env.get(name).map(String::as_str).unwrap_or("")),
        }
        rest = &tail[body_start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `[server] min_tls_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinTlsVersion {
    Tls12,
    Tls13,
}

/// `[server] cert_file`, `cert_key` and `min_tls_version`, when `protocol = https`.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub cert_key: PathBuf,
    pub min_version: MinTlsVersion,
}

/// The typed configuration the server runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub raw: RawConfig,
    pub app_mode: String,
    pub data_path: PathBuf,
    pub provisioning_path: PathBuf,
    pub protocol: String,
    pub http_addr: String,
    pub http_port: u16,
    pub domain: String,
    pub root_url: String,
    /// `[server] protocol = https`: the certificate, key and minimum version to serve with.
    pub tls: Option<TlsSettings>,
    pub max_request_body_bytes: usize,
    /// `[server] header_read_timeout`: a request head must arrive whole within it; idle
    /// keep-alive connections close after it.
    pub header_read_timeout: Duration,
    /// `[server] read_timeout` (Grafana's key): a request body must arrive within it; 0
    /// disables the deadline.
    pub read_timeout: Duration,
    /// `[server] max_connections_per_ip`: concurrent connections from one address.
    pub max_connections_per_ip: usize,
    /// `[server] shutdown_timeout`: how long requests in flight may run after SIGTERM.
    pub shutdown_timeout: Duration,
    /// `[log.console] format`: one JSON object per line instead of text.
    pub log_json: bool,
    pub metrics: MetricsSettings,
    pub auditing: AuditingSettings,
    pub admin_user: String,
    pub admin_password: Option<String>,
    pub admin_email: String,
    pub secret_key: Option<String>,
    /// Older secret keys whose KEKs still unwrap data keys (comma list).
    pub previous_secret_keys: Vec<String>,
    pub data_key_max_encryptions: u64,
    pub disable_initial_admin_creation: bool,
    pub password_hash_iterations: u32,
    pub basic_auth_cache: Duration,
    pub cookie_secure: bool,
    pub cookie_samesite: String,
    pub disable_brute_force_login_protection: bool,
    /// `brute_force_login_protection_max_attempts`: failures of one account from one source
    /// address before that pair is blocked.
    pub brute_force_max_attempts: u32,
    /// `brute_force_max_attempts_per_ip`: failures from one source address, across all
    /// logins (known or not), before the address is blocked.
    pub brute_force_max_attempts_per_ip: u32,
    /// `trusted_proxies`: peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// `[users] allow_org_create`: signed-in users may create orgs (besides holders of
    /// `orgs:create`).
    pub allow_org_create: bool,
    pub auto_assign_org: bool,
    pub auto_assign_org_id: u64,
    pub auto_assign_org_role: OrgRole,
    pub basic_auth_enabled: bool,
    pub strong_password_policy: bool,
    pub login_cookie_name: String,
    pub disable_login_form: bool,
    pub login_max_inactive_lifetime: Duration,
    pub login_max_lifetime: Duration,
    pub token_rotation_interval: Duration,
    pub token_rotation_grace: Duration,
    pub enterprise: Enterprise,
    pub database: Database,
    pub quota: Quotas,
}

/// `[metrics]`: Grafana's keys for `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub disable_total_stats: bool,
    /// `basic_auth_username` and `basic_auth_password`, when both are set.
    pub basic_auth: Option<(String, String)>,
}

/// `[auditing]` and `[auditing.logs.file]` (Grafana Enterprise's keys) plus the retention
/// keys `max_days` and `max_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditingSettings {
    /// Record events in the store with each change (and export them to the loggers).
    pub enabled: bool,
    /// Where events are also written as JSON lines, as they commit.
    pub file: bool,
    pub console: bool,
    /// `[auditing.logs.file] path`: a folder (Grafana's meaning) for `audit.log` and its
    /// rotated files; "" means `<data>/log`.
    pub file_path: PathBuf,
    pub max_files: usize,
    pub max_file_size_mb: u64,
    /// Events older than this many days are pruned (0: kept).
    pub max_days: u64,
    /// At most this many events are kept (0: no cap).
    pub max_events: u64,
}

/// `[security] trusted_proxies`: a comma list of IP addresses and CIDR blocks. Empty (the
/// default) means the socket peer is always the client and `X-Forwarded-For` is never read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(std::net::IpAddr, u8)>);

impl TrustedProxies {
    /// `10.0.0.1, 10.1.0.0/16, fd00::/8`; the error names the first bad entry.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, prefix) = entry.split_once('/').unwrap_or((entry, ""));
            let addr: std::net::IpAddr = addr
                .parse()
                .map_err(|_| format!("{entry:?} is not an IP address or CIDR block"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = if prefix.is_empty() {
                max
            } else {
                prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("{entry:?} has a bad prefix length"))?
            };
            out.push((canonical_ip(addr), prefix));
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `ip` falls in one of the entries.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let ip = canonical_ip(ip);
        self.0.iter().any(|(net, prefix)| match (net, ip) {
            (std::net::IpAddr::V4(n), std::net::IpAddr::V4(a)) => {
                prefix_eq(&n.octets(), &a.octets(), *prefix)
            }
            (std::net::IpAddr::V6(n), std::net::IpAddr::V6(a)) => {
                prefix_eq(&n.octets(), &a.octets(), *prefix)
            }
            _ => false,
        })
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as the IPv4 address it carries.
pub fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// The first `prefix` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let bits = usize::from(prefix);
    let (whole, rest) = (bits / 8, bits % 8);
    if a.get(..whole) != b.get(..whole) {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(whole), b.get(whole)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// `[quota]`: whether creations are limited, and each limit by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    pub enabled: bool,
    /// `(key, limit)` for every key of [`crate::domain::quota::QUOTAS`], in its order.
    pub limits: Vec<(&'static str, i64)>,
}

impl Quotas {
    /// The configured limit of a `[quota]` key (Grafana's default when it is not one).
    pub fn limit(&self, key: &str) -> i64 {
        self.limits
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or(-1)
    }
}

/// Which store backend `[database] type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseType {
    /// The embedded default: a data folder, no other service.
    Sled,
    /// A shared PostgreSQL database (several nodes may use it).
    Postgres,
}

/// `[database] ssl_mode`, as Grafana spells it for PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Require,
    VerifyCa,
    VerifyFull,
}

/// `[database]`, Grafana's keys.
#[derive(Clone)]
pub struct Database {
    pub kind: DatabaseType,
    /// sled's page cache, in MiB (`cache_mb`; tollgate's key, sled only).
    pub cache_mb: u64,
    /// `host:port`, or a Unix socket folder (a path starting with `/`).
    pub host: String,
    pub name: String,
    pub user: String,
    pub password: String,
    /// `postgres://...`: wins over the separate keys when set.
    pub url: String,
    pub ssl_mode: SslMode,
    pub ca_cert_path: Option<PathBuf>,
    pub client_cert_path: Option<PathBuf>,
    pub client_key_path: Option<PathBuf>,
    /// 0: the pool's own bound (10).
    pub max_open_conn: u32,
    pub max_idle_conn: u32,
    pub conn_max_lifetime: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field(
                "url",
                &if self.url.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("ssl_mode", &self.ssl_mode)
            .finish_non_exhaustive()
    }
}

/// `[enterprise]`: where the license comes from and whom to trust and renew from.
#[derive(Debug, Clone)]
pub struct Enterprise {
    /// The license file (`<data>/license.jwt` when unset).
    pub license_path: PathBuf,
    pub license_text: String,
    pub auto_refresh_license: bool,
    /// The issuer's renew endpoint.
    pub license_url: String,
    pub license_issuer_keys: Vec<crate::crypto::jws::PublicKey>,
}

struct Reader<'a> {
    raw: &'a RawConfig,
}

impl Reader<'_> {
    fn str(&self, section: &str, key: &str) -> String {
        self.raw.get(section, key).unwrap_or("").trim().to_string()
    }

    fn err(&self, section: &str, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            section: section.to_string(),
            key: key.to_string(),
            value: self.str(section, key),
            reason: reason.into(),
        }
    }

    fn bool(&self, section: &str, key: &str) -> Result<bool, ConfigError> {
        parse_bool(&self.str(section, key))
            .ok_or_else(|| self.err(section, key, "expected a boolean (true/false)"))
    }

    fn num<T: std::str::FromStr>(&self, section: &str, key: &str) -> Result<T, ConfigError> {
        self.str(section, key)
            .parse::<T>()
            .map_err(|_| self.err(section, key, "expected a number in range"))
    }

    fn optional(&self, section: &str, key: &str) -> Option<String> {
        let v = self.str(section, key);
        (!v.is_empty()).then_some(v)
    }

    fn duration(
        &self,
        section: &str,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let v = self.str(section, key);
        if v.is_empty() {
            return Ok(default);
        }
        parse_duration(&v).ok_or_else(|| {
            self.err(
                section,
                key,
                "expected a duration such as 30m, 12h, 7d or 2w",
            )
        })
    }
}

/// go-ini's boolean spellings.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "y" | "yes" | "on" => Some(true),
        "0" | "f" | "false" | "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Grafana's gtime durations: a number followed by `s`, `m`, `h`, `d`, `w`, `M` or `y`;
/// a bare number is seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_raw(RawConfig::load(file)?)
    }

    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let r = Reader { raw: &raw };
        let protocol = r.str("server", "protocol");
        if !matches!(protocol.as_str(), "http" | "https") {
            return Err(r.err("server", "protocol", "expected http or https"));
        }
        let http_port: u16 = r.num("server", "http_port")?;
        let min_version = match r.str("server", "min_tls_version").as_str() {
            "" | "TLS1.2" => MinTlsVersion::Tls12,
            "TLS1.3" => MinTlsVersion::Tls13,
            _ => {
                return Err(r.err(
                    "server",
                    "min_tls_version",
                    "expected TLS1.2 or TLS1.3 (older versions are not offered)",
                ))
            }
        };
        let tls = if protocol == "https" {
            let file = |key: &str| {
                r.optional("server", key)
                    .map(PathBuf::from)
                    .ok_or_else(|| r.err("server", key, "required when protocol = https"))
            };
            Some(TlsSettings {
                cert_file: file("cert_file")?,
                cert_key: file("cert_key")?,
                min_version,
            })
        } else {
            None
        };
        let mut root_url = r.str("server", "root_url");
        if !root_url.ends_with('/') {
            root_url.push('/');
        }
        if !(root_url.starts_with("http://") || root_url.starts_with("https://")) {
            return Err(r.err("server", "root_url", "expected an http(s) URL"));
        }
        let role_text = r.str("users", "auto_assign_org_role");
        let auto_assign_org_role = OrgRole::parse(&role_text).ok_or_else(|| {
            r.err(
                "users",
                "auto_assign_org_role",
                "expected one of Viewer, Editor, Admin, None",
            )
        })?;
        let password_hash_iterations: u32 = r.num("security", "password_hash_iterations")?;
        if password_hash_iterations == 0 {
            return Err(r.err("security", "password_hash_iterations", "must be at least 1"));
        }
        let trusted_proxies = TrustedProxies::parse(&r.str("security", "trusted_proxies"))
            .map_err(|reason| r.err("security", "trusted_proxies", reason))?;
        let samesite = r.str("security", "cookie_samesite").to_ascii_lowercase();
        if !matches!(samesite.as_str(), "lax" | "strict" | "none" | "disabled") {
            return Err(r.err(
                "security",
                "cookie_samesite",
                "expected lax, strict, none or disabled",
            ));
        }
        let login_cookie_name = r.str("auth", "login_cookie_name");
        if login_cookie_name.is_empty()
            || !login_cookie_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(r.err("auth", "login_cookie_name", "expected a cookie name"));
        }
        // Grafana's value is minutes; a duration ("90s") is accepted too.
        let rotation_text = r.str("auth", "token_rotation_interval_minutes");
        let token_rotation_interval = match rotation_text.parse::<u64>() {
            Ok(m) => Duration::from_secs(m.max(1) * 60),
            Err(_) => parse_duration(&rotation_text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    r.err(
                        "auth",
                        "token_rotation_interval_minutes",
                        "expected minutes or a duration",
                    )
                })?,
        };
        let max_body: usize = r.num("server", "max_request_body_bytes")?;
        let database = Database {
            kind: match r.str("database", "type").to_ascii_lowercase().as_str() {
                "" | "sled" => DatabaseType::Sled,
                "postgres" | "postgresql" => DatabaseType::Postgres,
                _ => return Err(r.err("database", "type", "expected sled or postgres")),
            },
            host: r.str("database", "host"),
            name: r.str("database", "name"),
            user: r.str("database", "user"),
            password: r.str("database", "password"),
            url: r.str("database", "url"),
            ssl_mode: match r.str("database", "ssl_mode").to_ascii_lowercase().as_str() {
                "" | "disable" => SslMode::Disable,
                "require" => SslMode::Require,
                "verify-ca" => SslMode::VerifyCa,
                "verify-full" => SslMode::VerifyFull,
                _ => {
                    return Err(r.err(
                        "database",
                        "ssl_mode",
                        "expected disable, require, verify-ca or verify-full",
                    ))
                }
            },
            ca_cert_path: r.optional("database", "ca_cert_path").map(PathBuf::from),
            client_cert_path: r
                .optional("database", "client_cert_path")
                .map(PathBuf::from),
            client_key_path: r.optional("database", "client_key_path").map(PathBuf::from),
            max_open_conn: r.num("database", "max_open_conn")?,
            cache_mb: r.num::<u64>("database", "cache_mb")?.max(1),
            max_idle_conn: r.num("database", "max_idle_conn")?,
            conn_max_lifetime: Duration::from_secs(r.num("database", "conn_max_lifetime")?),
        };
        let data_path = PathBuf::from(r.str("paths", "data"));
        let settings_data_path = data_path.clone();
        let enterprise = Enterprise {
            license_path: match r.str("enterprise", "license_path") {
                p if p.is_empty() => data_path.join("license.jwt"),
                p => PathBuf::from(p),
            },
            license_text: r.str("enterprise", "license_text"),
            auto_refresh_license: r.bool("enterprise", "auto_refresh_license")?,
            license_url: r.str("enterprise", "license_url"),
            license_issuer_keys: r
                .str("enterprise", "license_issuer_keys")
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(crate::crypto::jws::PublicKey::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| r.err("enterprise", "license_issuer_keys", e))?,
        };
        let quota = Quotas {
            enabled: r.bool("quota", "enabled")?,
            limits: crate::domain::quota::QUOTAS
                .iter()
                .map(|d| match r.optional("quota", d.key) {
                    None => Ok((d.key, d.default)),
                    Some(_) => r.num::<i64>("quota", d.key).map(|v| (d.key, v)),
                })
                .collect::<Result<_, _>>()?,
        };
        let settings = Settings {
            app_mode: r.str(DEFAULT_SECTION, "app_mode"),
            data_path,
            provisioning_path: PathBuf::from(r.str("paths", "provisioning")),
            protocol,
            http_addr: r.str("server", "http_addr"),
            http_port,
            domain: r.str("server", "domain"),
            root_url,
            tls,
            max_request_body_bytes: max_body,
            header_read_timeout: r
                .duration("server", "header_read_timeout", Duration::from_secs(10))
                .and_then(|d| {
                    if d.is_zero() {
                        Err(r.err("server", "header_read_timeout", "must be at least 1s"))
                    } else {
                        Ok(d)
                    }
                })?,
            read_timeout: r.duration("server", "read_timeout", Duration::from_secs(30))?,
            max_connections_per_ip: r.num::<usize>("server", "max_connections_per_ip")?.max(1),
            shutdown_timeout: r.duration("server", "shutdown_timeout", Duration::from_secs(30))?,
            log_json: match r.str("log.console", "format").as_str() {
                "" | "text" | "console" => false,
                "json" => true,
                _ => return Err(r.err("log.console", "format", "must be text or json")),
            },
            metrics: MetricsSettings {
                enabled: r.bool("metrics", "enabled")?,
                disable_total_stats: r.bool("metrics", "disable_total_stats")?,
                basic_auth: match (
                    r.str("metrics", "basic_auth_username"),
                    r.str("metrics", "basic_auth_password"),
                ) {
                    (u, p) if !u.is_empty() && !p.is_empty() => Some((u, p)),
                    _ => None,
                },
            },
            auditing: {
                let loggers: Vec<String> = r
                    .str("auditing", "loggers")
                    .split([',', ' '])
                    .map(|l| l.trim().to_ascii_lowercase())
                    .filter(|l| !l.is_empty())
                    .collect();
                if let Some(bad) = loggers
                    .iter()
                    .find(|l| !matches!(l.as_str(), "file" | "console"))
                {
                    return Err(r.err(
                        "auditing",
                        "loggers",
                        format!("unknown logger {bad:?}: expected file or console"),
                    ));
                }
                AuditingSettings {
                    enabled: r.bool("auditing", "enabled")?,
                    file: loggers.iter().any(|l| l == "file"),
                    console: loggers.iter().any(|l| l == "console"),
                    file_path: match r.str("auditing.logs.file", "path") {
                        p if p.is_empty() => settings_data_path.join("log"),
                        p => PathBuf::from(p),
                    },
                    max_files: r.num::<usize>("auditing.logs.file", "max_files")?.max(1),
                    max_file_size_mb: r
                        .num::<u64>("auditing.logs.file", "max_file_size_mb")?
                        .max(1),
                    max_days: r.num("auditing", "max_days")?,
                    max_events: r.num("auditing", "max_events")?,
                }
            },
            admin_user: r.str("security", "admin_user"),
            admin_password: r.optional("security", "admin_password"),
            admin_email: r.str("security", "admin_email"),
            secret_key: r.optional("security", "secret_key"),
            previous_secret_keys: r
                .str("security", "previous_secret_keys")
                .split(',')
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            data_key_max_encryptions: r.num("security.encryption", "data_key_max_encryptions")?,
            disable_initial_admin_creation: r.bool("security", "disable_initial_admin_creation")?,
            password_hash_iterations,
            basic_auth_cache: Duration::from_secs(r.num("security", "basic_auth_cache_seconds")?),
            cookie_secure: r.bool("security", "cookie_secure")?,
            cookie_samesite: samesite,
            disable_brute_force_login_protection: r
                .bool("security", "disable_brute_force_login_protection")?,
            brute_force_max_attempts: r
                .num::<u32>("security", "brute_force_login_protection_max_attempts")?
                .max(1),
            brute_force_max_attempts_per_ip: r
                .num::<u32>("security", "brute_force_max_attempts_per_ip")?
                .max(1),
            trusted_proxies,
            allow_org_create: r.bool("users", "allow_org_create")?,
            auto_assign_org: r.bool("users", "auto_assign_org")?,
            auto_assign_org_id: r.num("users", "auto_assign_org_id")?,
            auto_assign_org_role,
            basic_auth_enabled: r.bool("auth.basic", "enabled")?,
            strong_password_policy: r.bool("auth.basic", "password_policy")?,
            login_cookie_name,
            disable_login_form: r.bool("auth", "disable_login_form")?
                || r.bool("auth", "disable_login")?,
            login_max_inactive_lifetime: r.duration(
                "auth",
                "login_maximum_inactive_lifetime_duration",
                Duration::from_secs(7 * 86_400),
            )?,
            login_max_lifetime: r.duration(
                "auth",
                "login_maximum_lifetime_duration",
                Duration::from_secs(30 * 86_400),
            )?,
            token_rotation_interval,
            token_rotation_grace: r.duration(
                "auth",
                "token_rotation_grace_period",
                Duration::from_secs(30),
            )?,
            enterprise,
            database,
            quota,
            raw,
        };
        if settings.admin_user.is_empty() {
            return Err(ConfigError {
                section: "security".into(),
                key: "admin_user".into(),
                value: String::new(),
                reason: "must not be empty".into(),
            });
        }
        Ok(settings)
    }

    /// The address to bind: `http_addr` (all interfaces when empty) and `http_port`.
    pub fn bind_addr(&self) -> String {
        let host = if self.http_addr.is_empty() {
            "0.0.0.0"
        } else {
            self.http_addr.as_str()
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.http_port)
        } else {
            format!("{host}:{}", self.http_port)
        }
    }

    pub fn is_https(&self) -> bool {
        self.protocol == "https" || self.root_url.starts_with("https://")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_interpolate_root_url() {
        let raw = RawConfig::load_with_env(None, &env(&[])).unwrap();
        assert_eq!(
            raw.get("server", "root_url"),
            Some("http://localhost:3000/")
        );
        let s = Settings::from_raw(raw).unwrap();
        assert_eq!(s.http_port, 3000);
        assert_eq!(s.password_hash_iterations, 600_000);
        assert_eq!(
            s.login_max_inactive_lifetime,
            Duration::from_secs(7 * 86_400)
        );
    }

    #[test]
    fn env_overrides_existing_keys_only_and_not_empty() {
        let raw = RawConfig::load_with_env(
            None,
            &env(&[
                ("GF_SERVER_HTTP_PORT", "4000"),
                ("GF_SERVER_DOMAIN", ""),
                ("GF_NOPE_KEY", "x"),
                ("GF_AUTH_BASIC_ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(raw.get("server", "http_port"), Some("4000"));
        assert_eq!(raw.get("server", "domain"), Some("localhost"));
        assert_eq!(
            raw.get("server", "root_url"),
            Some("http://localhost:4000/")
        );
        assert_eq!(raw.get("nope", "key"), None);
        assert_eq!(raw.get("auth.basic", "enabled"), Some("false"));
        assert_eq!(raw.sections()["server"]["http_port"].source, Source::Env);
    }

    #[test]
    fn file_layer_skips_empty_values_and_expands_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("custom.ini");
        std::fs::write(
            &path,
            "[server]\nhttp_port = 8080\ndomain =\n[security]\nadmin_email = ${MAIL}\n",
        )
        .unwrap();
        let raw =
            RawConfig::load_with_env(Some(&path), &env(&[("MAIL", "ops@example.org")])).unwrap();
        assert_eq!(raw.get("server", "http_port"), Some("8080"));
        assert_eq!(raw.get("server", "domain"), Some("localhost"));
        assert_eq!(raw.get("security", "admin_email"), Some("ops@example.org"));
        assert_eq!(raw.sections()["server"]["http_port"].source, Source::File);
    }

    #[test]
    fn bad_values_name_section_key_and_value() {
        for (k, v, section, key) in [
            ("GF_SERVER_HTTP_PORT", "70000", "server", "http_port"),
            ("GF_SERVER_HTTP_PORT", "abc", "server", "http_port"),
            (
                "GF_USERS_AUTO_ASSIGN_ORG_ROLE",
                "Boss",
                "users",
                "auto_assign_org_role",
            ),
            ("GF_AUTH_BASIC_ENABLED", "maybe", "auth.basic", "enabled"),
            (
                "GF_SERVER_MIN_TLS_VERSION",
                "TLS1.0",
                "server",
                "min_tls_version",
            ),
            (
                "GF_SECURITY_TRUSTED_PROXIES",
                "10.0.0.1, proxy.local",
                "security",
                "trusted_proxies",
            ),
            (
                "GF_SECURITY_TRUSTED_PROXIES",
                "10.0.0.0/33",
                "security",
                "trusted_proxies",
            ),
        ] {
            let raw = RawConfig::load_with_env(None, &env(&[(k, v)])).unwrap();
            let err = Settings::from_raw(raw).unwrap_err();
            assert_eq!((err.section.as_str(), err.key.as_str()), (section, key));
            assert_eq!(err.value, v);
            assert!(err.to_string().contains(v));
        }
    }

    #[test]
    fn https_needs_a_certificate_and_key() {
        let raw = RawConfig::load_with_env(None, &env(&[("GF_SERVER_PROTOCOL", "https")])).unwrap();
        let err = Settings::from_raw(raw).unwrap_err();
        assert_eq!(
            (err.section.as_str(), err.key.as_str()),
            ("server", "cert_file")
        );
        let raw = RawConfig::load_with_env(
            None,
            &env(&[
                ("GF_SERVER_PROTOCOL", "https"),
                ("GF_SERVER_CERT_FILE", "/etc/tollgate/cert.pem"),
                ("GF_SERVER_CERT_KEY", "/etc/tollgate/key.pem"),
                ("GF_SERVER_MIN_TLS_VERSION", "TLS1.3"),
            ]),
        )
        .unwrap();
        assert_eq!(
            raw.get("server", "root_url"),
            Some("https://localhost:3000/")
        );
        let tls = Settings::from_raw(raw).unwrap().tls.unwrap();
        assert_eq!(tls.cert_key, PathBuf::from("/etc/tollgate/key.pem"));
        assert_eq!(tls.min_version, MinTlsVersion::Tls13);
        let plain = Settings::from_raw(RawConfig::load_with_env(None, &env(&[])).unwrap());
        assert!(plain.unwrap().tls.is_none());
    }

    #[test]
    fn env_key_form() {
        assert_eq!(env_key("auth.basic", "enabled"), "GF_AUTH_BASIC_ENABLED");
        assert_eq!(env_key("DEFAULT", "app_mode"), "GF_APP_MODE");
        assert_eq!(
            env_key("auth.generic-oauth", "a.b"),
            "GF_AUTH_GENERIC_OAUTH_A_B"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn trusted_proxies_match_addresses_and_blocks() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let none = TrustedProxies::parse(" ").unwrap();
        assert!(none.is_empty() && !none.contains(ip("127.0.0.1")));
        let t = TrustedProxies::parse("10.1.2.3, 192.168.0.0/22, fd00::/8, 0.0.0.0/0x").err();
        assert!(t.is_some_and(|e| e.contains("0.0.0.0/0x")));
        let t = TrustedProxies::parse("10.1.2.3, 192.168.0.0/22, fd00::/8").unwrap();
        assert!(t.contains(ip("10.1.2.3")) && !t.contains(ip("10.1.2.4")));
        assert!(t.contains(ip("192.168.3.255")) && !t.contains(ip("192.168.4.0")));
        assert!(t.contains(ip("::ffff:192.168.1.1")), "IPv4-mapped IPv6");
        assert!(t.contains(ip("fdab::1")) && !t.contains(ip("fe80::1")));
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("8.8.8.8")));
        let s = Settings::from_raw(RawConfig::load_with_env(None, &env(&[])).unwrap()).unwrap();
        assert!(s.trusted_proxies.is_empty());
        assert_eq!(
            (
                s.brute_force_max_attempts,
                s.brute_force_max_attempts_per_ip
            ),
            (5, 50)
        );
    }
}
