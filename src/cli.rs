//! The license commands behind `tollgate license ...` and `tollgate license-issuer`: each
//! returns the text to print, so `main.rs` stays a dispatcher.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::random;
use crate::domain::license::{LicenseClaims, RenewRequest};
use crate::domain::Principal;
use crate::issuer::{self, Issuer};

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
