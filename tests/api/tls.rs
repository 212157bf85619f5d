//! HTTPS (`[server] protocol = https`): certificates from a CA the test makes, verified by
//! the client against that CA alone; `min_tls_version`; the certificate re-read on SIGHUP
//! and on a file change while connections already open keep theirs; a missing
//! certificate stops start-up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use reqwest::Client;

use crate::helpers::*;

/// A CA made for the test, and the PEM of its certificate (the client's only root).
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate for 127.0.0.1 and localhost: PEM chain, PEM key, DER leaf.
struct ServerCert {
    chain_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tollgate test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn issue(&self, cn: &str, serial: u64) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        ServerCert {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A client that trusts this CA and nothing else, and reports the peer certificate.
    fn client(&self) -> reqwest::ClientBuilder {
        Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.cert.pem().as_bytes()).unwrap(),
            )
            .tls_info(true)
    }
}

/// Where the server reads its certificate and key.
struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }

    fn write(&self, c: &ServerCert) {
        std::fs::write(&self.cert, &c.chain_pem).unwrap();
        std::fs::write(&self.key, &c.key_pem).unwrap();
    }

    fn overrides(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            ("server", "protocol", "https".into()),
            ("server", "cert_file", self.cert.to_string_lossy().into()),
            ("server", "cert_key", self.key.to_string_lossy().into()),
        ]
    }
}

/// A test CA, a folder with a first certificate it issued (`tollgate one`, serial 1)
/// written in it, and that certificate.
fn ca_with_files() -> (TestCa, tempfile::TempDir, CertFiles, ServerCert) {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles::in_dir(dir.path());
    let one = ca.issue("tollgate one", 1);
    files.write(&one);
    (ca, dir, files, one)
}

/// The leaf certificate the server presented for this response (DER).
fn served(resp: &reqwest::Response) -> Vec<u8> {
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .expect("TLS info on the response")
        .to_vec()
}

/// GET /api/health; returns the certificate it was served with.
async fn health(client: &Client, base: &str) -> Vec<u8> {
    let resp = client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cert = served(&resp);
    // Read the body whole: the connection goes back to the pool for the next request.
    let body = resp.text().await.unwrap();
    assert!(body.contains("\"database\""), "{body}");
    cert
}

/// An in-process HTTPS server.
struct HttpsApp {
    base: String,
    certificates: Arc<tollgate::tls::Certificates>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl HttpsApp {
    async fn spawn(files: &CertFiles, extra: &[(&str, &str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let owned = files.overrides();
        let mut overrides: Vec<(&str, &str, &str)> =
            owned.iter().map(|(s, k, v)| (*s, *k, v.as_str())).collect();
        overrides.extend_from_slice(extra);
        let settings = settings_for(&dir.path().join("data"), &overrides);
        let app = tollgate::app::App::build(settings).await.unwrap();
        let base = format!("https://{}", app.addr());
        let certificates = app.certificates().expect("https has certificates");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = app
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            base,
            certificates,
            stop: Some(tx),
            handle,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.handle).await;
    }
}

#[tokio::test]
async fn https_requests_verify_against_the_test_ca_and_plain_http_is_refused() {
    let (ca, _certs, files, one) = ca_with_files();
    let app = HttpsApp::spawn(&files, &[]).await;

    let client = ca.client().build().unwrap();
    assert_eq!(health(&client, &app.base).await, one.der);
    // An authenticated request.
    let resp = client
        .get(format!("{}/api/user", app.base))
        .basic_auth(ADMIN, Some(ADMIN_PW))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // A client that does not trust the test CA refuses the certificate.
    let stranger = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(stranger
        .get(format!("{}/api/health", app.base))
        .send()
        .await
        .is_err());

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = app.base.replace("https://", "http://");
    let r = Client::new()
        .get(format!("{plain}/api/health"))
        .send()
        .await;
    assert!(
        r.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served: {r:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn min_tls_version_13_refuses_a_tls12_client() {
    let (ca, _certs, files, _) = ca_with_files();
    let tls12_only = ca
        .client()
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();

    // The default (TLS1.2) serves the TLS 1.2 client: the client itself works.
    let app = HttpsApp::spawn(&files, &[]).await;
    health(&tls12_only, &app.base).await;
    app.stop().await;

    let app = HttpsApp::spawn(&files, &[("server", "min_tls_version", "TLS1.3")]).await;
    let r = tls12_only
        .get(format!("{}/api/health", app.base))
        .send()
        .await;
    assert!(r.is_err(), "TLS 1.2 was accepted: {r:?}");
    // TLS 1.3 still works.
    health(&ca.client().build().unwrap(), &app.base).await;
    app.stop().await;
}

#[tokio::test]
async fn a_changed_certificate_is_served_while_open_connections_keep_theirs() {
    let (ca, _certs, files, one) = ca_with_files();
    let app = HttpsApp::spawn(&files, &[]).await;

    // A keep-alive connection opened before the change.
    let kept = ca.client().build().unwrap();
    assert_eq!(health(&kept, &app.base).await, one.der);

    // Half a swap (a new certificate, the old key) is refused, naming both files.
    let other = ca.issue("tollgate other", 9);
    std::fs::write(&files.cert, &other.chain_pem).unwrap();
    let err = app.certificates.reload().unwrap_err();
    assert!(err.contains(&*files.cert.to_string_lossy()), "{err}");
    assert!(err.contains(&*files.key.to_string_lossy()), "{err}");
    // A reload that cannot read the key names the file and keeps the old certificate.
    std::fs::write(&files.key, "not a key").unwrap();
    let err = app.certificates.reload().unwrap_err();
    assert!(err.contains(&*files.key.to_string_lossy()), "{err}");
    let fresh = ca.client().build().unwrap();
    assert_eq!(health(&fresh, &app.base).await, one.der);

    // The files change: the watcher picks the new pair up without a signal.
    let two = ca.issue("tollgate two", 2);
    files.write(&two);
    let deadline = Instant::now() + tollgate::tls::WATCH_EVERY * 3;
    loop {
        let fresh = ca.client().build().unwrap();
        if health(&fresh, &app.base).await == two.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection opened before still works, with the certificate it started with.
    assert_eq!(health(&kept, &app.base).await, one.der);

    // An explicit reload (what SIGHUP calls) of a third pair.
    let three = ca.issue("tollgate three", 3);
    files.write(&three);
    app.certificates.reload().unwrap();
    assert_eq!(
        health(&ca.client().build().unwrap(), &app.base).await,
        three.der
    );
    assert_eq!(health(&kept, &app.base).await, one.der);
    app.stop().await;
}

/// Pads a PEM file to a fixed length (PEM readers skip blank lines): a swapped file then
/// has the old one's length, and with its old modification time restored only SIGHUP can
/// reveal the change.
fn padded(pem: &str) -> String {
    const LEN: usize = 8192;
    assert!(pem.len() < LEN);
    format!("{pem}{}", "\n".repeat(LEN - pem.len()))
}

fn write_keeping_mtime(path: &Path, content: &str) {
    // Written aside and renamed over: the watcher never sees the new content with a new time.
    let before = std::fs::metadata(path).unwrap().modified().unwrap();
    let aside = path.with_extension("new");
    std::fs::write(&aside, content).unwrap();
    let f = std::fs::File::options().write(true).open(&aside).unwrap();
    f.set_modified(before).unwrap();
    drop(f);
    std::fs::rename(&aside, path).unwrap();
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_binary(data: &Path, files: &CertFiles, port: u16, stderr: Stdio) -> Server {
    let child = Command::new(binary())
        .arg("server")
        .env("GF_PATHS_DATA", data)
        .env("GF_SERVER_HTTP_ADDR", "127.0.0.1")
        .env("GF_SERVER_HTTP_PORT", port.to_string())
        .env("GF_SERVER_PROTOCOL", "https")
        .env("GF_SERVER_CERT_FILE", &files.cert)
        .env("GF_SERVER_CERT_KEY", &files.key)
        .env("GF_SECURITY_ADMIN_PASSWORD", ADMIN_PW)
        .env("GF_SECURITY_PASSWORD_HASH_ITERATIONS", TEST_ITERATIONS)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    Server(child)
}

#[tokio::test]
async fn sighup_reloads_the_certificate_while_a_keep_alive_connection_keeps_working() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles::in_dir(dir.path());
    let one = ca.issue("tollgate one", 1);
    std::fs::write(&files.cert, padded(&one.chain_pem)).unwrap();
    std::fs::write(&files.key, padded(&one.key_pem)).unwrap();
    let port = free_port();
    let server = start_binary(&dir.path().join("data"), &files, port, Stdio::null());
    let base = format!("https://127.0.0.1:{port}");

    let kept = ca.client().build().unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if kept.get(format!("{base}/api/health")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the HTTPS server did not come up");
    assert_eq!(health(&kept, &base).await, one.der);

    // Swap the pair on disk, same lengths and modification times: the file watcher
    // cannot see it (checked past its period), SIGHUP must.
    let two = ca.issue("tollgate two", 2);
    write_keeping_mtime(&files.cert, &padded(&two.chain_pem));
    write_keeping_mtime(&files.key, &padded(&two.key_pem));
    tokio::time::sleep(tollgate::tls::WATCH_EVERY + Duration::from_millis(500)).await;
    assert_eq!(health(&ca.client().build().unwrap(), &base).await, one.der);

    let pid = server.0.id().to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if health(&ca.client().build().unwrap(), &base).await == two.der {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the certificate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The connection opened before the swap still answers, with its first certificate.
    assert_eq!(health(&kept, &base).await, one.der);
    drop(server);
}

/// Waits (up to 20 s) for the child to exit; its exit status and standard error.
fn exit_of(mut child: Server) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        assert!(Instant::now() < deadline, "the server started anyway");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn a_missing_or_unreadable_certificate_stops_start_up_naming_the_file() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let good = CertFiles::in_dir(dir.path());
    good.write(&ca.issue("tollgate", 1));

    let missing_cert = CertFiles {
        cert: dir.path().join("missing.crt"),
        key: good.key.clone(),
    };
    let missing_key = CertFiles {
        cert: good.cert.clone(),
        key: dir.path().join("missing.key"),
    };
    // A folder where the certificate should be: cannot be read.
    let unreadable = CertFiles {
        cert: dir.path().to_path_buf(),
        key: good.key.clone(),
    };
    for (files, named) in [
        (&missing_cert, &missing_cert.cert),
        (&missing_key, &missing_key.key),
        (&unreadable, &unreadable.cert),
    ] {
        let child = start_binary(&dir.path().join("data"), files, free_port(), Stdio::piped());
        let (status, stderr) = exit_of(child);
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains(&*named.to_string_lossy()),
            "the message does not name {}: {stderr}",
            named.display()
        );
    }
}

#[tokio::test]
async fn a_client_stalling_in_the_handshake_is_dropped_at_the_header_read_deadline() {
    use tokio::io::AsyncReadExt;
    let (_ca, _certs, files, _) = ca_with_files();
    let app = HttpsApp::spawn(&files, &[("server", "header_read_timeout", "1s")]).await;
    let addr = app.base.trim_start_matches("https://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf)).await;
    // Closed by the server (end of stream or a reset), not left open.
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "still open: {read:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    app.stop().await;
}
