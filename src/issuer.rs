//! The license issuer, in the same binary: signs license tokens and renews them. It runs as
//! its own small HTTP service (`tollgate license-issuer`) or as CLI commands for air-gapped
//! sites. It shares the token format and verification with the appliance
//! ([`crate::crypto::jws`], [`crate::domain::license`]) and nothing else.
//!
//! Renewal: the appliance POSTs a [`RenewRequest`] (its current token) to
//! `/api/licenses/renew`; the issuer checks the token carries its own signature, refuses
//! revoked license ids and expired licenses, and answers a fresh token with the same terms
//! and a new `exp`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{get, handler, post, EndpointExt, IntoResponse, Response, Route, Server};
use serde_json::json;

use crate::crypto::jws::{self, PublicKey, SigningKey};
use crate::crypto::random;
use crate::domain::license::{LicenseClaims, RenewRequest, RenewResponse};

/// How the issuer behaves.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `iss` of the tokens it signs.
    pub name: String,
    /// Lifetime of a renewed token, in days (never past the license's `lexp`).
    pub token_days: i64,
    pub revoked_lids: Vec<String>,
    /// One revoked license id per line; read on every renewal, so revoking needs no restart.
    pub revoked_file: Option<PathBuf>,
    /// Previous issuer keys whose tokens it still renews (key rotation).
    pub trusted: Vec<PublicKey>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            name: "tollgate-issuer".into(),
            token_days: 30,
            revoked_lids: Vec::new(),
            revoked_file: None,
            trusted: Vec::new(),
        }
    }
}

/// Why the issuer refuses; `status` is what its HTTP API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub struct Issuer {
    key: SigningKey,
    config: IssuerConfig,
}

impl Issuer {
    pub fn new(key: SigningKey, config: IssuerConfig) -> Self {
        Self { key, config }
    }

    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// Signs `claims` as they are, except `iss`, which is this issuer's name when empty.
    pub fn sign(&self, mut claims: LicenseClaims) -> String {
        if claims.iss.is_empty() {
            claims.iss = self.config.name.clone();
        }
        // Serialising a plain struct of strings and numbers cannot fail.
        let body = serde_json::to_vec(&claims).unwrap_or_default();
        self.key.sign(&body)
    }

    fn revoked(&self) -> Result<HashSet<String>, Refusal> {
        let mut set: HashSet<String> = self.config.revoked_lids.iter().cloned().collect();
        if let Some(path) = &self.config.revoked_file {
            match std::fs::read_to_string(path) {
                Ok(text) => set.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(error = %e, path = %path.display(), "cannot read the revocation list");
                    return Err(Refusal::new(
                        500,
                        "the issuer cannot read its revocation list",
                    ));
                }
            }
        }
        Ok(set)
    }

    /// A fresh token for the license in `request`, or why not.
    pub fn renew(&self, request: &RenewRequest, now: i64) -> Result<String, Refusal> {
        let mut keys = self.config.trusted.clone();
        keys.push(self.key.public());
        let verified = jws::verify(&request.token, &keys)
            .map_err(|e| Refusal::new(403, format!("token was not issued by this issuer: {e}")))?;
        let mut claims: LicenseClaims = serde_json::from_slice(&verified.claims)
            .map_err(|e| Refusal::new(400, format!("malformed token claims: {e}")))?;
        if self.revoked()?.contains(&claims.lid) {
            return Err(Refusal::new(
                403,
                format!("license {} is revoked", claims.lid),
            ));
        }
        if claims.lexp != 0 && claims.lexp <= now {
            return Err(Refusal::new(
                403,
                format!(
                    "license {} expired at {}; a new license is needed",
                    claims.lid,
                    crate::domain::time::rfc3339(claims.lexp)
                ),
            ));
        }
        claims.jti = random::hex(&random::bytes::<8>());
        claims.iss = self.config.name.clone();
        claims.iat = now;
        claims.exp = now + self.config.token_days.max(1) * 86_400;
        if claims.lexp != 0 {
            claims.exp = claims.exp.min(claims.lexp);
        }
        tracing::info!(
            lid = %claims.lid,
            instance = %request.instance,
            users = request.stats.users,
            "license token renewed"
        );
        Ok(self.sign(claims))
    }
}

/// Reads an issuer key (PEM PKCS#8).
pub fn load_key(path: &std::path::Path) -> Result<SigningKey, String> {
    let pem = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    SigningKey::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes a new key pair's private half to `path` (mode 0600, never over an existing file)
/// and returns the public half.
pub fn keygen(path: &std::path::Path) -> Result<PublicKey, String> {
    use std::io::Write;
    let key = SigningKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(key.to_pem().as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(key.public())
}

/// The `[issuer]` section of an ini file: `name`, `listen`, `token_days`, `revoked_lids`,
/// `revoked_file`, `trusted_keys`. Returns the config and the listen address.
pub fn load_config(path: Option<&std::path::Path>) -> Result<(IssuerConfig, String), String> {
    let mut config = IssuerConfig::default();
    let mut listen = "127.0.0.1:3100".to_string();
    let Some(path) = path else {
        return Ok((config, listen));
    };
    let ini = ini::Ini::load_from_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Some(section) = ini.section(Some("issuer")) else {
        return Ok((config, listen));
    };
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (key, value) in section.iter() {
        let value = value.trim();
        match key {
            "name" => config.name = value.to_string(),
            "listen" => listen = value.to_string(),
            "token_days" => {
                config.token_days = value.parse().ok().filter(|d: &i64| *d >= 1).ok_or(format!(
                    "[issuer] token_days: '{value}' is not a number of days"
                ))?;
            }
            "revoked_lids" => config.revoked_lids = list(value),
            "revoked_file" if !value.is_empty() => config.revoked_file = Some(value.into()),
            "trusted_keys" => {
                config.trusted = list(value)
                    .iter()
                    .map(|k| PublicKey::parse(k))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("[issuer] trusted_keys: {e}"))?;
            }
            _ => {}
        }
    }
    Ok((config, listen))
}

fn refusal(r: Refusal) -> Response {
    (
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({ "message": r.message })),
    )
        .into_response()
}

#[handler]
fn renew(issuer: Data<&Arc<Issuer>>, body: Result<Json<RenewRequest>, poem::Error>) -> Response {
    let Ok(Json(request)) = body else {
        return refusal(Refusal::new(
            400,
            "expected a JSON renewal request {\"token\", \"instance\"}",
        ));
    };
    match issuer.renew(&request, crate::domain::time::system_now()) {
        Ok(token) => Json(RenewResponse { token }).into_response(),
        Err(r) => {
            tracing::warn!(status = r.status, reason = %r.message, "renewal refused");
            refusal(r)
        }
    }
}

#[handler]
fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok", "service": "tollgate-license-issuer" }))
}

/// The issuer's routes.
pub fn routes(issuer: Arc<Issuer>) -> impl poem::Endpoint {
    Route::new()
        .at("/api/licenses/renew", post(renew))
        .at("/api/health", get(health))
        .data(issuer)
}

/// Serves the issuer until `shutdown` resolves.
pub async fn serve(
    issuer: Arc<Issuer>,
    listen: &str,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    tracing::info!(%listen, kid = %issuer.public().kid, "license issuer listening");
    Server::new(poem::listener::TcpListener::bind(listen.to_string()))
        .run_with_graceful_shutdown(routes(issuer), shutdown, None)
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::license::RenewStats;

    fn issuer(config: IssuerConfig) -> Issuer {
        Issuer::new(SigningKey::generate().unwrap(), config)
    }

    fn request(token: String) -> RenewRequest {
        RenewRequest {
            token,
            instance: "http://localhost:3000/".into(),
            requested_at: 0,
            stats: RenewStats::default(),
        }
    }

    fn terms() -> LicenseClaims {
        LicenseClaims {
            lid: "7".into(),
            sub: "http://localhost:3000/".into(),
            iat: 1000,
            exp: 2000,
            lexp: 10_000_000,
            included_users: 10,
            ..Default::default()
        }
    }

    #[test]
    fn renews_with_same_terms_and_new_expiry() {
        let i = issuer(IssuerConfig::default());
        let old = i.sign(terms());
        let new = i.renew(&request(old), 5000).unwrap();
        let v = jws::verify(&new, &[i.public()]).unwrap();
        let c: LicenseClaims = serde_json::from_slice(&v.claims).unwrap();
        assert_eq!((c.iat, c.exp), (5000, 5000 + 30 * 86_400));
        assert_eq!(
            (c.lid.as_str(), c.included_users, c.lexp),
            ("7", 10, 10_000_000)
        );
        // Never past the license's expiry.
        let near = i.renew(&request(i.sign(terms())), 9_999_000).unwrap();
        let c: LicenseClaims =
            serde_json::from_slice(&jws::verify(&near, &[i.public()]).unwrap().claims).unwrap();
        assert_eq!(c.exp, 10_000_000);
    }

    #[test]
    fn refuses_foreign_revoked_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("revoked");
        let i = issuer(IssuerConfig {
            revoked_file: Some(list.clone()),
            ..IssuerConfig::default()
        });
        let other = issuer(IssuerConfig::default());
        assert_eq!(
            i.renew(&request(other.sign(terms())), 5000)
                .unwrap_err()
                .status,
            403
        );
        std::fs::write(&list, "# revoked\n7\n").unwrap();
        let r = i.renew(&request(i.sign(terms())), 5000).unwrap_err();
        assert_eq!(r.message, "license 7 is revoked");
        std::fs::write(&list, "").unwrap();
        let r = i.renew(&request(i.sign(terms())), 20_000_000).unwrap_err();
        assert!(r.message.contains("expired"), "{r}");
        // A key from before a rotation still renews when trusted.
        let rotated = Issuer::new(
            SigningKey::generate().unwrap(),
            IssuerConfig {
                trusted: vec![other.public()],
                ..IssuerConfig::default()
            },
        );
        assert!(rotated.renew(&request(other.sign(terms())), 5000).is_ok());
    }
}
