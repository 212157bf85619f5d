//! Test harness: a real OpenLDAP `slapd` (the Debian package) per test.
//!
//! LDAP login is tested against a real directory rather than a mock, so the
//! tests exercise the actual protocol: simple binds, search filters and scopes,
//! the `memberOf` attribute filled in by the `memberof` overlay, and a server
//! that goes away and comes back. A mock would only confirm our own guesses
//! about how a directory behaves.
//!
//! Every [`Slapd`] gets its own temporary directory (config, mdb database,
//! pidfile) and its own loopback port, so tests can run in parallel threads.
//! The tree loaded at start is `tests/fixtures/ldap/tree.ldif`:
//!
//! | user                                   | password   | groups           |
//! |----------------------------------------|------------|------------------|
//! | `uid=alice,ou=users,dc=example,dc=org` | `alice-pw` | admins, editors  |
//! | `uid=bob,ou=users,dc=example,dc=org`   | `bob-pw`   | editors          |
//! | `uid=carol,ou=users,dc=example,dc=org` | `carol-pw` | viewers          |
//! | `uid=dave,ou=users,dc=example,dc=org`  | `dave-pw`  | (none)           |
//! | `uid=eve,ou=outside,dc=example,dc=org` | `eve-pw`   | viewers          |
//!
//! Groups are `groupOfNames` entries `cn=<name>,ou=groups,dc=example,dc=org`.
//!
//! [`Slapd::start_with`] serves other directories ([`Directory`]): the same tree without
//! the `memberof` overlay (no `memberOf` on users; groups must be searched), or
//! `tests/fixtures/ldap/posix.ldif`, where the same users are `posixAccount`s and the
//! same groups are `posixGroup`s listing members by `memberUid`.
//!
//! Needs `slapd` and `ldap-utils` (`apt-get install slapd ldap-utils`); the
//! daemon is started directly from a generated `slapd.conf`, no systemd.

#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::helpers::free_port;

pub const BASE_DN: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PW: &str = "admin";

/// How long to wait for slapd to answer after starting it.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for slapd to exit after SIGTERM before sending SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// A fresh port from `free_port` can be taken by someone else before slapd binds it.
const PORT_ATTEMPTS: usize = 5;

/// What a test directory holds and how slapd serves it.
#[derive(Debug, Clone, Copy)]
pub struct Directory {
    /// The `memberof` overlay: users get `memberOf` from the `groupOfNames` they are in.
    pub memberof_overlay: bool,
    /// The LDIF loaded at start, a file in `tests/fixtures/ldap`.
    pub fixture: &'static str,
}

impl Directory {
    /// `tree.ldif` with the `memberof` overlay (what [`Slapd::start`] serves).
    pub const MEMBER_OF: Directory = Directory {
        memberof_overlay: true,
        fixture: "tree.ldif",
    };
    /// `tree.ldif` without the overlay: `groupOfNames` groups, no `memberOf` on users.
    pub const GROUP_OF_NAMES: Directory = Directory {
        memberof_overlay: false,
        fixture: "tree.ldif",
    };
    /// `posix.ldif`: `posixAccount` users, `posixGroup` groups with `memberUid`.
    pub const POSIX: Directory = Directory {
        memberof_overlay: false,
        fixture: "posix.ldif",
    };
}

/// A running (or stopped) slapd serving `dc=example,dc=org` on `url`.
pub struct Slapd {
    pub port: u16,
    /// `ldap://127.0.0.1:<port>`
    pub url: String,
    dir: tempfile::TempDir,
    pid: Option<u32>,
    slapd: PathBuf,
    fixture: PathBuf,
}

impl Slapd {
    /// Starts slapd on a free loopback port with `tests/fixtures/ldap/tree.ldif`
    /// loaded, and waits until it answers. Panics with a clear message if slapd
    /// or the ldap-utils are not installed.
    pub fn start() -> Self {
        Self::start_with(Directory::MEMBER_OF)
    }

    /// Starts slapd serving `directory` (see [`Directory`]), as [`Slapd::start`] does.
    pub fn start_with(directory: Directory) -> Self {
        let slapd = find_slapd();
        for tool in ["ldapadd", "ldapmodify", "ldapsearch"] {
            if find_in_path(tool).is_none() {
                panic!(
                    "`{tool}` not found: the LDAP tests need the ldap-utils package \
                     (apt-get install slapd ldap-utils)"
                );
            }
        }

        let dir = tempfile::tempdir().expect("temp dir for slapd");
        std::fs::create_dir_all(dir.path().join("data")).expect("slapd data dir");
        write_config(dir.path(), directory.memberof_overlay);

        let port = free_port();
        let mut s = Slapd {
            port,
            url: format!("ldap://127.0.0.1:{port}"),
            dir,
            pid: None,
            slapd,
            fixture: fixture_path(directory.fixture),
        };
        let mut attempt = 1;
        loop {
            match s.launch() {
                Ok(()) => break,
                Err(e) if attempt >= PORT_ATTEMPTS => {
                    panic!("could not start slapd after {PORT_ATTEMPTS} attempts: {e}")
                }
                Err(_) => {
                    // Most likely the port was grabbed in between; try another one.
                    s.stop();
                    s.port = free_port();
                    s.url = format!("ldap://127.0.0.1:{}", s.port);
                    attempt += 1;
                }
            }
        }
        s.load_fixture();
        s
    }

    /// The temporary directory holding `slapd.conf`, `data/` and the pidfile.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether slapd is currently running (started and not stopped).
    pub fn is_running(&self) -> bool {
        self.pid.is_some_and(process_alive)
    }

    /// Runs `ldapmodify` as the admin with the given LDIF text (changetype
    /// records, e.g. `changetype: add|modify|delete`); panics on failure.
    pub fn modify(&self, ldif: &str) {
        let out = self.run_tool_stdin(
            "ldapmodify",
            &["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
            ldif,
        );
        if !out.status.success() {
            panic!(
                "ldapmodify failed ({}):\n--- ldif ---\n{ldif}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Stops slapd: SIGTERM to the pid from the pidfile, waits up to 5 s for it
    /// to exit (SIGKILL after that) and for the port to close. Idempotent, and
    /// never panics (it runs from `Drop`).
    pub fn stop(&mut self) {
        let pid = self.pid.take().or_else(|| read_pidfile(self.dir.path()));
        let Some(pid) = pid else { return };
        if process_alive(pid) {
            signal(pid, "TERM");
            if !wait_until(STOP_TIMEOUT, || !process_alive(pid)) {
                eprintln!("slapd (pid {pid}) did not exit on SIGTERM; sending SIGKILL");
                signal(pid, "KILL");
                if !wait_until(STOP_TIMEOUT, || !process_alive(pid)) {
                    eprintln!("slapd (pid {pid}) still alive after SIGKILL");
                }
            }
        }
        if !wait_until(STOP_TIMEOUT, || !port_open(self.port)) {
            eprintln!("port {} still open after stopping slapd", self.port);
        }
        // A SIGKILLed slapd leaves its pidfile behind; don't let it confuse a restart.
        let _ = std::fs::remove_file(self.dir.path().join("slapd.pid"));
    }

    /// Starts slapd again on the same port with the same data (after `stop`;
    /// stops it first if it is still running).
    pub fn restart(&mut self) {
        self.stop();
        // The old socket is gone, but give the port a moment if something raced us.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("could not restart slapd on port {}: {e}", self.port)
                }
                Err(_) => {
                    self.stop();
                    sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// Starts the daemon on `self.port` and waits until it answers a root DSE search.
    fn launch(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let log = File::create(dir.join("slapd.log")).map_err(|e| format!("slapd.log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("slapd.log: {e}"))?;
        // slapd forks into the background; the parent only exits after the
        // child has bound the listener, so a bind failure shows up as exit code.
        let status = Command::new(&self.slapd)
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{}/", self.port))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .status()
            .map_err(|e| format!("running {}: {e}", self.slapd.display()))?;
        if !status.success() {
            let log = std::fs::read_to_string(dir.join("slapd.log")).unwrap_or_default();
            return Err(format!(
                "slapd exited with {status} on port {} (port taken? config broken? \
                 try `slaptest -f {}`)\n{log}",
                self.port,
                dir.join("slapd.conf").display()
            ));
        }

        if !wait_until(START_TIMEOUT, || read_pidfile(dir).is_some()) {
            return Err("slapd started but wrote no pidfile".into());
        }
        self.pid = read_pidfile(dir);

        let root_dse = [
            "-x",
            "-H",
            &self.url,
            "-b",
            "",
            "-s",
            "base",
            "-o",
            "nettimeout=2",
        ];
        let ready = wait_until(START_TIMEOUT, || {
            self.run_tool("ldapsearch", &root_dse)
                .is_ok_and(|o| o.status.success())
        });
        if !ready {
            return Err(format!(
                "slapd (pid {:?}) did not answer on {} within {START_TIMEOUT:?}",
                self.pid, self.url
            ));
        }
        Ok(())
    }

    fn load_fixture(&self) {
        let ldif = &self.fixture;
        let out = self
            .tool("ldapadd")
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW, "-f"])
            .arg(ldif)
            .output()
            .expect("run ldapadd");
        if !out.status.success() {
            panic!(
                "loading {} into slapd failed ({}):\n{}{}",
                ldif.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// An LDAP client command that ignores any ldap.conf / ~/.ldaprc on the machine.
    fn tool(&self, name: &str) -> Command {
        let mut cmd = Command::new(name);
        cmd.env("LDAPNOINIT", "1").stdin(Stdio::null());
        cmd
    }

    fn run_tool(&self, name: &str, args: &[&str]) -> std::io::Result<Output> {
        self.tool(name).args(args).output()
    }

    fn run_tool_stdin(&self, name: &str, args: &[&str], input: &str) -> Output {
        let mut child = self
            .tool(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {name}: {e}"));
        {
            let mut stdin = child.stdin.take().expect("child stdin");
            stdin
                .write_all(input.as_bytes())
                .unwrap_or_else(|e| panic!("write LDIF to {name}: {e}"));
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {name}: {e}"))
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop()
    }
}

pub fn fixture_ldif() -> PathBuf {
    fixture_path("tree.ldif")
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ldap")
        .join(name)
}

fn write_config(dir: &Path, memberof_overlay: bool) {
    let d = dir.display();
    let (load, overlay) = if memberof_overlay {
        ("moduleload memberof\n", "overlay   memberof\n")
    } else {
        ("", "")
    };
    // nis.schema: posixAccount, posixGroup and memberUid for the POSIX directory.
    let conf = format!(
        r#"include   /etc/ldap/schema/core.schema
include   /etc/ldap/schema/cosine.schema
include   /etc/ldap/schema/inetorgperson.schema
include   /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
{load}pidfile   {d}/slapd.pid
argsfile  {d}/slapd.args
database  mdb
maxsize   104857600
suffix    "{BASE_DN}"
rootdn    "{ADMIN_DN}"
rootpw    {ADMIN_PW}
directory {d}/data
{overlay}"#
    );
    std::fs::write(dir.join("slapd.conf"), conf).expect("write slapd.conf");
}

fn find_slapd() -> PathBuf {
    let fixed = Path::new("/usr/sbin/slapd");
    if fixed.is_file() {
        return fixed.to_path_buf();
    }
    find_in_path("slapd").unwrap_or_else(|| {
        panic!(
            "slapd is not installed (no /usr/sbin/slapd, none on PATH): the LDAP tests need \
             a real OpenLDAP server — apt-get install slapd ldap-utils"
        )
    })
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

fn read_pidfile(dir: &Path) -> Option<u32> {
    std::fs::read_to_string(dir.join("slapd.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Alive = exists and is not a zombie (in containers PID 1 may never reap the
/// daemonized slapd, and `kill -0` succeeds on zombies).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: "pid (comm) state ..."; comm may contain spaces/parens.
        Ok(stat) => match stat.rfind(')') {
            Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}
