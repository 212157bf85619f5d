//! A throwaway PostgreSQL cluster for tests, as the LDAP tests start slapd: Debian's
//! `postgresql` package, `initdb` into a temporary folder as the `postgres` system user
//! (initdb refuses root), `pg_ctl` on a free loopback port with the socket inside the
//! folder. Every `create_database()` is a new, empty database on it. Stopped on drop.
//! One file for both users: the lib's backend tests (`store::pg_store`) and the API tests
//! (`tests/api/postgres.rs` includes it by path).

#![allow(dead_code, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub struct TestCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    next_db: AtomicU32,
    /// The `postgres` options `pg_ctl start` passes (port, socket folder).
    server_opts: String,
}

/// Ports tried before giving up on starting a cluster.
const START_ATTEMPTS: usize = 5;

fn pg_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|_| {
            panic!("PostgreSQL is not installed: apt-get install postgresql (make test does it)")
        })
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL server under /usr/lib/postgresql")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root, else as ourselves;
/// whether it succeeded.
fn try_run(bin: &Path, args: &[&str]) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let status = if root {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin)
            .args(args)
            .status()
    } else {
        Command::new(bin).args(args).status()
    };
    status.map(|s| s.success()).unwrap_or(false)
}

fn run(bin: &Path, args: &[&str]) {
    assert!(try_run(bin, args), "{} {args:?} failed", bin.display());
}

/// Makes a CA and a server certificate it signs (for `localhost` and 127.0.0.1) in `dir`
/// with the `openssl` tool: `ca.pem`, `server.crt`, `server.key`; the key is the
/// `postgres` user's, mode 0600, as the server requires.
fn make_certs(dir: &Path, prefix: &str) {
    let sh = format!(
        "set -e; cd {d}; \
         openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={prefix}-test-ca \
           -keyout {prefix}ca.key -out {prefix}ca.pem 2>/dev/null; \
         openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
           -keyout {prefix}server.key -out {prefix}server.csr 2>/dev/null; \
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1' > {prefix}san.ext; \
         openssl x509 -req -in {prefix}server.csr -CA {prefix}ca.pem -CAkey {prefix}ca.key \
           -CAcreateserial -days 2 -extfile {prefix}san.ext -out {prefix}server.crt 2>/dev/null; \
         chmod 600 {prefix}server.key; chmod 644 {prefix}ca.pem {prefix}server.crt; \
         chown postgres:postgres {prefix}server.key {prefix}server.crt 2>/dev/null || true",
        d = dir.display()
    );
    let ok = Command::new("sh")
        .args(["-c", &sh])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "openssl could not make the test certificates");
}

impl TestCluster {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A cluster that also accepts TLS, with a certificate signed by the CA at
    /// [`Self::ca_path`] (and another CA, [`Self::other_ca_path`], that did not sign it).
    pub fn start_tls() -> Self {
        Self::start_with("tls")
    }

    /// A cluster that flushes its WAL at commit (the others run with `fsync=off`): for
    /// measuring what a write costs.
    pub fn start_durable() -> Self {
        Self::start_with("durable")
    }

    /// A durable cluster whose WAL writer waits its longest (10 s) before it writes a
    /// partly filled WAL page, so that a small transaction committed without waiting for
    /// its flush stays in memory until something else flushes it: for crash tests
    /// ([`Self::crash_server`]).
    pub fn start_crashable() -> Self {
        Self::start_with("crash")
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn other_ca_path(&self) -> PathBuf {
        self.dir.path().join("otherca.pem")
    }

    fn start_with(mode: &str) -> Self {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("tollgate-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let data = dir.path().join("data");
        // The postgres user must own the folder (and reach it).
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        let d = data.to_string_lossy().to_string();
        run(
            &bin.join("initdb"),
            &["-D", &d, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let sock = dir.path().to_string_lossy().to_string();
        let fsync = if matches!(mode, "durable" | "crash") {
            "on"
        } else {
            "off"
        };
        let mut extra = String::new();
        if mode == "crash" {
            extra = " -c wal_writer_delay=10000".into();
        }
        if mode == "tls" {
            make_certs(dir.path(), "");
            make_certs(dir.path(), "other");
            extra = format!(
                " -c ssl=on -c ssl_cert_file={sock}/server.crt -c ssl_key_file={sock}/server.key"
            );
        }
        let mut c = Self {
            dir,
            bin,
            port: 0,
            next_db: AtomicU32::new(0),
            server_opts: String::new(),
        };
        // The port is free when picked but not held: a cluster that another test starts at
        // the same moment can take it, and then `pg_ctl start` fails. Pick again.
        for _ in 0..START_ATTEMPTS {
            c.port = free_port();
            c.server_opts = format!(
                "-p {} -k {sock} -c listen_addresses=127.0.0.1 -c fsync={fsync} \
                 -c max_connections=200{extra}",
                c.port
            );
            if c.try_start_server() {
                return c;
            }
            c.stop_quietly();
        }
        panic!("PostgreSQL did not start: {}", c.log_tail());
    }

    fn try_start_server(&self) -> bool {
        let d = self.dir.path().join("data").to_string_lossy().to_string();
        let log = self.dir.path().join("pg.log").to_string_lossy().to_string();
        try_run(
            &self.bin.join("pg_ctl"),
            &["-D", &d, "-o", &self.server_opts, "-l", &log, "-w", "start"],
        )
    }

    /// The end of the server's log, for a failure message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Starts the server (again, after `stop_server`), on the same port and data.
    pub fn start_server(&self) {
        for _ in 0..START_ATTEMPTS {
            if self.try_start_server() {
                return;
            }
            self.stop_quietly();
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("PostgreSQL did not restart: {}", self.log_tail());
    }

    /// `pg_ctl stop` in `mode`; whether it succeeded.
    fn stop_in(&self, mode: &str) -> bool {
        let d = self.dir.path().join("data").to_string_lossy().to_string();
        try_run(
            &self.bin.join("pg_ctl"),
            &["-D", &d, "-m", mode, "-w", "stop"],
        )
    }

    /// Stops the server if it runs, ignoring failures (also from `Drop`, where a panic
    /// would abort the whole test binary).
    fn stop_quietly(&self) {
        let _ = self.stop_in("immediate");
    }

    /// Stops the server as a crash would: no shutdown checkpoint, and the WAL still in
    /// its memory is lost (what was written to the system survives).
    pub fn crash_server(&self) {
        assert!(self.stop_in("immediate"), "pg_ctl stop -m immediate failed");
    }

    /// Stops the server at once (connections are cut), keeping its data.
    pub fn stop_server(&self) {
        assert!(self.stop_in("fast"), "pg_ctl stop -m fast failed");
    }

    pub fn options(&self, db: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database(db)
    }

    /// `postgres://` URL of a database on this cluster.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new empty database and returns its name.
    pub async fn create_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let name = format!("t{n}");
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.options("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        name
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop_quietly();
    }
}
