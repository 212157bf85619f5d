//! HTTPS serving (`[server] protocol = https`): the certificate chain and key from
//! `cert_file` and `cert_key`, the versions from `min_tls_version`, on rustls with ring.
//!
//! The files are read again on SIGHUP ([`Certificates::reload`], called from `main`) and
//! when either changes (its modification time or length, polled by
//! [`Certificates::watch`]). A reload builds a whole new `ServerConfig` and swaps it in:
//! each handshake takes the one current at that moment, so connections already open keep
//! theirs. A reload that fails is logged with the file it could not use, and the previous
//! certificate stays.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::{MinTlsVersion, TlsSettings};

/// How often the files are checked for a change.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// What a file looked like when last read: modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The certificate being served, and how to read it again.
pub struct Certificates {
    settings: TlsSettings,
    current: RwLock<Arc<ServerConfig>>,
    seen: Mutex<(Stamp, Stamp)>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads the files; the error names the one that cannot be used.
    pub fn load(settings: &TlsSettings) -> Result<Arc<Self>, String> {
        let seen = (stamp(&settings.cert_file), stamp(&settings.cert_key));
        let config = server_config(settings)?;
        Ok(Arc::new(Self {
            settings: settings.clone(),
            current: RwLock::new(config),
            seen: Mutex::new(seen),
        }))
    }

    /// An acceptor with the certificate current now (one per handshake).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().clone())
    }

    /// Reads the files again and serves them from the next handshake on; on failure the
    /// error (naming the file) is logged and returned, and the old certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let seen = (
            stamp(&self.settings.cert_file),
            stamp(&self.settings.cert_key),
        );
        *self.seen.lock() = seen;
        match server_config(&self.settings) {
            Ok(config) => {
                *self.current.write() = config;
                tracing::info!(
                    cert_file = %self.settings.cert_file.display(),
                    "TLS certificate reloaded"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate reload failed; keeping the previous one");
                Err(e)
            }
        }
    }

    /// Whether either file changed since it was last read.
    fn changed(&self) -> bool {
        let now = (
            stamp(&self.settings.cert_file),
            stamp(&self.settings.cert_key),
        );
        *self.seen.lock() != now
    }

    /// Reloads whenever the files change (checked every `every`); runs until aborted.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.changed() {
                // Logged inside; the old certificate stays on failure.
                let _ = self.reload();
            }
        }
    }
}

/// A whole server configuration from the files: chain, key, versions, ALPN.
fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let cert_path = &settings.cert_file;
    let key_path = &settings.cert_key;
    let cert_err = |e: &dyn std::fmt::Display| {
        format!(
            "cannot use the certificate file {} ([server] cert_file): {e}",
            cert_path.display()
        )
    };
    let key_err = |e: &dyn std::fmt::Display| {
        format!(
            "cannot use the key file {} ([server] cert_key): {e}",
            key_path.display()
        )
    };
    // Read first, so that a missing or unreadable file says so plainly.
    let cert_pem = std::fs::read(cert_path).map_err(|e| cert_err(&e))?;
    let key_pem = std::fs::read(key_path).map_err(|e| key_err(&e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(&e))?;
    if chain.is_empty() {
        return Err(cert_err(&"no PEM certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_err(&e))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
        MinTlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinTlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "the certificate file {} and the key file {} do not make a pair: {e}",
                cert_path.display(),
                key_path.display()
            )
        })?;
    // The server loop (src/transport.rs) speaks both HTTP/1.1 and HTTP/2.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
