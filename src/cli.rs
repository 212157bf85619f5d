//! The license commands behind `tollgate license ...` and `tollgate license-issuer`: each
//! returns the text to print, so `main.rs` stays a dispatcher.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::random;
use crate::domain::license::{LicenseClaims, RenewRequest};
use crate::domain::Principal;
use crate::issuer::{self, Issuer};
use crate::service::audit::VerifyReport;

/// The terms of a new license (`tollgate license issue`).
#[derive(Debug, Clone, clap::Args)]
pub struct IssueArgs {
    /// The issuer's private key (from `tollgate license keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The licensed URL, matched against the appliance's root_url (globs allowed).
    #[arg(long)]
    pub sub: String,
    #[arg(long)]
    pub company: String,
    /// License lifetime from now (`lexp`).
    #[arg(long)]
    pub license_days: i64,
    /// Token lifetime from now (`exp`, renewed every update_days).
    #[arg(long, default_value_t = 30)]
    pub token_days: i64,
    #[arg(long, default_value_t = 0)]
    pub included_users: i64,
    #[arg(long, default_value_t = 0)]
    pub included_admins: i64,
    #[arg(long, default_value_t = 0)]
    pub included_viewers: i64,
    /// License id (random when absent).
    #[arg(long)]
    pub lid: Option<String>,
    #[arg(long, default_value = "")]
    pub slug: String,
    #[arg(long, default_value_t = 1)]
    pub update_days: i64,
    #[arg(long, default_value_t = 30)]
    pub lic_exp_warn_days: i64,
    #[arg(long, default_value_t = 2)]
    pub tok_exp_warn_days: i64,
    #[arg(long, default_value = "grafana-enterprise")]
    pub prod: Vec<String>,
    /// The issuer's config file (`[issuer] name` becomes `iss`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn issuer_from(key: &Path, config: Option<&Path>) -> Result<(Issuer, String), String> {
    let (cfg, listen) = issuer::load_config(config)?;
    Ok((Issuer::new(issuer::load_key(key)?, cfg), listen))
}

/// `tollgate license keygen --out FILE`: prints the `license_issuer_keys` entry.
pub fn keygen(out: &Path) -> Result<String, String> {
    let public = issuer::keygen(out)?;
    Ok(format!(
        "wrote the private key to {} (keep it secret)\n\
         kid: {}\n\
         add to the appliance's config:\n\
         [enterprise]\nlicense_issuer_keys = {}\n",
        out.display(),
        public.kid,
        public.to_config()
    ))
}

/// `tollgate license issue ...`: prints a token.
pub fn issue(a: &IssueArgs) -> Result<String, String> {
    if a.license_days < 1 || a.token_days < 1 {
        return Err("--license-days and --token-days must be at least 1".into());
    }
    let (issuer, _) = issuer_from(&a.key, a.config.as_deref())?;
    let now = crate::domain::time::system_now();
    let lexp = now + a.license_days * 86_400;
    let claims = LicenseClaims {
        jti: random::hex(&random::bytes::<8>()),
        iss: String::new(),
        sub: a.sub.clone(),
        iat: now,
        exp: (now + a.token_days * 86_400).min(lexp),
        nbf: now,
        lexp,
        lid: a
            .lid
            .clone()
            .unwrap_or_else(|| random::hex(&random::bytes::<6>())),
        included_users: a.included_users,
        included_admins: a.included_admins,
        included_viewers: a.included_viewers,
        lic_exp_warn_days: a.lic_exp_warn_days,
        tok_exp_warn_days: a.tok_exp_warn_days,
        update_days: a.update_days,
        prod: a.prod.clone(),
        company: a.company.clone(),
        slug: a.slug.clone(),
    };
    Ok(format!("{}\n", issuer.sign(claims)))
}

/// `tollgate license renew --key FILE --request FILE`: the issuer's side of an air-gapped
/// renewal; prints the new token.
pub fn renew_file(key: &Path, request: &Path, config: Option<&Path>) -> Result<String, String> {
    let (issuer, _) = issuer_from(key, config)?;
    let text = std::fs::read_to_string(request)
        .map_err(|e| format!("cannot read {}: {e}", request.display()))?;
    let req: RenewRequest = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a renewal request: {e}", request.display()))?;
    let token = issuer
        .renew(&req, crate::domain::time::system_now())
        .map_err(|r| format!("renewal refused: {r}"))?;
    Ok(format!("{token}\n"))
}

/// `tollgate license renew-request`: the appliance's side of an air-gapped renewal, from
/// the data folder (the server must be stopped; while it runs, use
/// `GET /api/licensing/renew-request`).
pub async fn renew_request(settings: Settings) -> Result<String, String> {
    let services = crate::service::Services::open(settings)
        .await
        .map_err(|e| {
            format!("{e} (is the server running? then use GET /api/licensing/renew-request)")
        })?;
    let req = services
        .licensing
        .renew_request(&Principal::system())
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&req)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

/// `tollgate license-issuer --key FILE [--config FILE] [--listen ADDR]`.
pub async fn run_issuer(
    key: &Path,
    config: Option<&Path>,
    listen: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let (issuer, configured) = issuer_from(key, config)?;
    let listen = listen.unwrap_or(configured);
    issuer::serve(Arc::new(issuer), &listen, shutdown)
        .await
        .map_err(|e| format!("license issuer on {listen}: {e}"))
}

/// How a command that reads a server's data reaches it: its data folder (`--config`, the
/// server stopped), or the running server over HTTP (`--url`, default the one `--config`
/// describes, else http://127.0.0.1:3000).
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The running server (default: the one `--config` describes, else
    /// http://127.0.0.1:3000).
    #[arg(long)]
    pub url: Option<String>,
    /// A Grafana Admin's login (Basic auth); or set the command's token variable
    /// (TOLLGATE_BACKUP_TOKEN, TOLLGATE_AUDIT_TOKEN) to a service-account token with its
    /// permission (`server.backup:create`, `audit:read`).
    #[arg(long)]
    pub user: Option<String>,
    /// A file holding that user's password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// With the server stopped, the data is read from this config's data folder directly.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

impl ServerArgs {
    fn credentials(&self, token_env: &'static str) -> ServerCredentials<'_> {
        ServerCredentials {
            token_env,
            user: self.user.as_ref(),
            password_file: self.password_file.as_ref(),
        }
    }
}

/// `tollgate backup --out FILE`: where the backup comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// Where to write the backup file (never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The environment variable that carries a service-account token for `tollgate backup`.
pub const BACKUP_TOKEN_ENV: &str = "TOLLGATE_BACKUP_TOKEN";

/// How a CLI command signs in to a running server: a token from an environment variable,
/// else a Grafana Admin's login and a file holding the password.
struct ServerCredentials<'a> {
    token_env: &'static str,
    user: Option<&'a String>,
    password_file: Option<&'a PathBuf>,
}

/// One request to a running server; the body of a 2xx answer, else a sentence with the
/// status and Grafana's message.
async fn call_server(
    method: reqwest::Method,
    endpoint: &str,
    creds: &ServerCredentials<'_>,
) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::new();
    let request = client.request(method, endpoint);
    let request = match (std::env::var(creds.token_env).ok(), creds.user) {
        (Some(token), _) if !token.is_empty() => request.bearer_auth(token),
        (_, Some(user)) => {
            let file = creds.password_file.ok_or("--user needs --password-file")?;
            let password = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            request.basic_auth(user, Some(password.trim_end_matches(['\r', '\n'])))
        }
        _ => {
            return Err(format!(
                "give --user and --password-file, or set {} to a service-account token",
                creds.token_env
            ))
        }
    };
    let response = request
        .send()
        .await
        .map_err(|e| format!("cannot reach {endpoint}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(format!("{endpoint} answered {status}: {message}"));
    }
    Ok(body.to_vec())
}

/// `POST /api/admin/backup` on a running server.
async fn backup_over_http(a: &BackupArgs, url: &str) -> Result<Vec<u8>, String> {
    let endpoint = format!("{}/api/admin/backup", url.trim_end_matches('/'));
    let creds = a.server.credentials(BACKUP_TOKEN_ENV);
    call_server(reqwest::Method::POST, &endpoint, &creds).await
}

/// `tollgate audit verify`: where the chain is read.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The environment variable that carries a service-account token for `tollgate audit`.
pub const AUDIT_TOKEN_ENV: &str = "TOLLGATE_AUDIT_TOKEN";

/// `GET /api/admin/audit/verify` on a running server: (checked, the first break).
async fn verify_over_http(a: &AuditVerifyArgs, url: &str) -> Result<VerifyReport, String> {
    let endpoint = format!("{}/api/admin/audit/verify", url.trim_end_matches('/'));
    let creds = a.server.credentials(AUDIT_TOKEN_ENV);
    let body = call_server(reqwest::Method::GET, &endpoint, &creds).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{endpoint}: {e}"))?;
    Ok(VerifyReport {
        checked: v["checked"].as_u64().unwrap_or(0),
        broken: v["seq"]
            .as_u64()
            .map(|seq| (seq, v["message"].as_str().unwrap_or("").to_string())),
    })
}

/// `tollgate audit verify`: walks the chain (from the stopped server's store with
/// `--config`, else over HTTP) and names the first event modified, removed or reordered.
/// `Err` when the chain is broken.
pub async fn audit_verify(a: &AuditVerifyArgs) -> Result<String, String> {
    let report = match (&a.server.url, &a.server.config) {
        (Some(url), _) => verify_over_http(a, url).await?,
        (None, Some(config)) => {
            let settings = Settings::load(Some(config.as_path())).map_err(|e| e.to_string())?;
            let offline = async {
                let store = crate::store::open(&settings.data_path, &settings.database)
                    .await
                    .map_err(|e| format!("cannot open the data folder: {e}"))?;
                crate::service::audit::verify_store(store.as_ref())
                    .await
                    .map_err(|e| e.to_string())
            };
            match offline.await {
                Ok(r) => r,
                // sled locks a running server's folder: ask that server instead.
                Err(offline) => verify_over_http(a, &local_url(&settings))
                    .await
                    .map_err(|e| format!("{offline}; and over HTTP: {e}"))?,
            }
        }
        (None, None) => verify_over_http(a, "http://127.0.0.1:3000").await?,
    };
    match report.broken {
        None => Ok(format!(
            "audit chain intact: {} events verified\n",
            report.checked
        )),
        Some((_, message)) => Err(format!(
            "audit chain broken: {message} ({} events verified before it)",
            report.checked
        )),
    }
}

/// The local address of the server a config describes.
fn local_url(settings: &Settings) -> String {
    let host = match settings.http_addr.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        other => other,
    };
    format!("http://{host}:{}", settings.http_port)
}

/// `tollgate backup`: over HTTP from a running server, or (`--config`, server stopped)
/// from the data folder. The file is checked before it is written.
pub async fn backup(a: &BackupArgs) -> Result<String, String> {
    if a.out.exists() {
        return Err(format!("{} exists: choose a new file", a.out.display()));
    }
    let bytes = match (&a.server.url, &a.server.config) {
        (Some(url), _) => backup_over_http(a, url).await?,
        (None, Some(config)) => {
            let settings = Settings::load(Some(config.as_path())).map_err(|e| e.to_string())?;
            match crate::service::backup::backup_offline(&settings).await {
                Ok(bytes) => bytes,
                // sled locks a running server's folder: ask that server instead.
                Err(offline) => backup_over_http(a, &local_url(&settings))
                    .await
                    .map_err(|e| format!("{offline}; and over HTTP: {e}"))?,
            }
        }
        (None, None) => backup_over_http(a, "http://127.0.0.1:3000").await?,
    };
    let (header, _) = crate::store::backup::decode(&bytes)
        .map_err(|e| format!("the server sent a bad backup: {e}"))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&a.out)
        .map_err(|e| format!("cannot create {}: {e}", a.out.display()))?;
    std::io::Write::write_all(&mut file, &bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", a.out.display()))?;
    Ok(format!(
        "wrote {} ({} bytes, {} backend, {})\n",
        a.out.display(),
        bytes.len(),
        header.backend,
        summary(&header.counts)
    ))
}

fn summary(counts: &serde_json::Map<String, serde_json::Value>) -> String {
    counts
        .iter()
        .filter(|(_, n)| n.as_u64().is_some_and(|n| n > 0))
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `tollgate restore --in FILE`: into the configured, empty data folder or database.
pub async fn restore(input: &Path, settings: &Settings) -> Result<String, String> {
    let bytes =
        std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let restored = crate::service::backup::restore(settings, &bytes)
        .await
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let mut out = format!(
        "restored {} (taken at {} from {})\n",
        input.display(),
        restored.header.created_at,
        restored.header.backend
    );
    for (kind, n) in restored.counts {
        out.push_str(&format!("{kind}: {n}\n"));
    }
    Ok(out)
}
