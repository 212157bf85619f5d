//! Test harness: a real server on port 0 with a temporary data folder, driven over HTTP.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use tollgate::config::{RawConfig, Settings, Source};
use tollgate::domain::time::ManualClock;
use tollgate::service::Services;

pub const ADMIN: &str = "admin";
pub const ADMIN_PW: &str = "admin-secret-pw";
/// Low enough to keep tests fast; the default stays 600,000.
pub const TEST_ITERATIONS: &str = "1000";

pub fn settings_for(data: &Path, overrides: &[(&str, &str, &str)]) -> Settings {
    let mut raw = RawConfig::load_with_env(None, &Default::default()).expect("defaults load");
    raw.set("paths", "data", &data.to_string_lossy(), Source::File);
    raw.set("server", "http_addr", "127.0.0.1", Source::File);
    raw.set("server", "http_port", "0", Source::File);
    raw.set("security", "admin_password", ADMIN_PW, Source::File);
    raw.set(
        "security",
        "password_hash_iterations",
        TEST_ITERATIONS,
        Source::File,
    );
    for (s, k, v) in overrides {
        raw.set(s, k, v, Source::File);
    }
    Settings::from_raw(raw).expect("test settings are valid")
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub services: Arc<Services>,
    /// The server's clock: starts at the real time and moves only when a test says so.
    pub clock: Arc<ManualClock>,
    pub dir: Option<tempfile::TempDir>,
    pub data: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let mut app = Self::spawn_in(&data, overrides).await;
        app.dir = Some(dir);
        app
    }

    /// A server on an existing data folder (restarts).
    pub async fn spawn_in(data: &Path, overrides: &[(&str, &str, &str)]) -> Self {
        let clock = Arc::new(ManualClock::starting_now());
        // A restart in the same process: a blocking scan of the previous server (the stats
        // job's, say, cut off by the stop) may still hold its store for a moment, and the
        // database opens once that store is gone.
        let mut attempts = 0;
        let app = loop {
            let settings = settings_for(data, overrides);
            match tollgate::app::App::build_with_clock(settings, clock.clone()).await {
                Err(e) if attempts < 100 && format!("{e:?}").contains("in use by another") => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                built => break built.expect("app builds"),
            }
        };
        let base = format!("http://{}", app.addr());
        let services = app.services.clone();
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
            client: Client::builder()
                .cookie_store(false)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            services,
            clock,
            dir: None,
            data: data.to_path_buf(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server and waits until it has released the database.
    pub async fn stop(mut self) -> (Option<tempfile::TempDir>, PathBuf) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        // Tasks the server spawned (a connection being torn down, a last-seen update) may
        // still hold the services for a moment: the database is released with the last one.
        for _ in 0..500 {
            if Arc::strong_count(&self.services) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let dir = self.dir.take();
        let data = self.data.clone();
        drop(self);
        (dir, data)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).basic_auth(ADMIN, Some(ADMIN_PW))
    }

    pub fn as_user(&self, method: Method, path: &str, login: &str, pw: &str) -> RequestBuilder {
        self.req(method, path).basic_auth(login, Some(pw))
    }

    /// Creates a user through the API; returns its id.
    pub async fn create_user(&self, login: &str, password: &str) -> u64 {
        let (status, body) = send(self.admin(Method::POST, "/api/admin/users").json(
            &serde_json::json!({"login": login, "email": format!("{login}@example.org"), "name": login, "password": password}),
        ))
        .await;
        assert_eq!(status, 200, "create {login}: {body}");
        body["id"].as_u64().expect("id")
    }
}

/// Sends and returns (status, JSON body or Null).
pub async fn send(req: RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request is sent");
    parse(resp).await
}

pub async fn parse(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body)
}

pub fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or("")
}

/// A finished command's exit status and output, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The release or debug binary built for the integration tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tollgate"))
}

/// Waits (up to 10 s) until `GET <base>/api/health` answers 2xx.
pub async fn wait_healthy(base: &str) {
    let client = Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become healthy");
}

/// A `tollgate server` child process on a data folder, with env overrides.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

/// Ports tried before a server start gives up.
const START_ATTEMPTS: usize = 5;

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl ServerProcess {
    /// Starts the server on a free port and waits until it is healthy. The port is free
    /// when picked but not held: if something takes it first, the server cannot bind and
    /// exits, and it starts again on another port.
    pub async fn start(data: &Path, envs: &[(&str, &str)]) -> Self {
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut cmd = Command::new(binary());
            cmd.arg("server")
                .env("GF_PATHS_DATA", data)
                .env("GF_SERVER_HTTP_ADDR", "127.0.0.1")
                .env("GF_SERVER_HTTP_PORT", port.to_string())
                .env("GF_SECURITY_ADMIN_PASSWORD", ADMIN_PW)
                .env("GF_SECURITY_PASSWORD_HASH_ITERATIONS", TEST_ITERATIONS)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for (k, v) in envs {
                cmd.env(k, v);
            }
            // Owned by `Self` at once, so Drop reaps it on every path.
            let mut server = Self {
                child: cmd.spawn().expect("server starts"),
                base: format!("http://127.0.0.1:{port}"),
            };
            if server.wait_healthy_or_exit().await {
                return server;
            }
        }
        panic!("the server did not start after {START_ATTEMPTS} attempts");
    }

    /// Waits until the server answers `/api/health` (true) or exits (false).
    async fn wait_healthy_or_exit(&mut self) -> bool {
        let client = Client::new();
        for _ in 0..200 {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if client
                .get(format!("{}/api/health", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                // A server that could not bind exits: look once more that ours still runs.
                return self.child.try_wait().ok().flatten().is_none();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} did not become healthy", self.base);
    }

    /// SIGKILL: no graceful shutdown, no final flush.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const CHROME_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

impl TestApp {
    /// Signs in through `POST /login`; returns the session token from the cookie.
    pub async fn login(&self, user: &str, password: &str) -> String {
        let resp = self
            .req(Method::POST, "/login")
            .header("user-agent", CHROME_UA)
            .json(&serde_json::json!({"user": user, "password": password}))
            .send()
            .await
            .expect("login request");
        assert_eq!(resp.status(), 200, "login as {user}");
        session_token(&resp).expect("a session cookie")
    }

    /// A request carrying the session cookie.
    pub fn with_session(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.req(method, path)
            .header("cookie", format!("grafana_session={token}"))
    }

    /// A same-origin (CSRF-passing) cookie request: Origin = root_url's.
    pub fn with_session_same_origin(
        &self,
        method: Method,
        path: &str,
        token: &str,
    ) -> RequestBuilder {
        self.with_session(method, path, token)
            .header("origin", "http://localhost:3000")
    }

    /// A client whose connections come from another loopback address.
    pub fn client_from(&self, ip: &str) -> Client {
        Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
            .build()
            .expect("client")
    }
}

/// The session token in a response's `Set-Cookie`, if any.
pub fn session_token(resp: &Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("grafana_session="))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
        .filter(|v| !v.is_empty())
}
