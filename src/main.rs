//! The `tollgate` command: parse the CLI, load the config, build the app, run until stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::config::Settings;

// The server allocates small JSON trees per request; glibc's malloc spent ~20% of a
// request in allocation under load, mimalloc a fraction of that (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Grafana's Admin and Licensing HTTP APIs in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Server {
        /// A Grafana-style ini file layered over the compiled-in defaults.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Administrative commands on the data folder (run while the server is stopped).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// License keys and tokens: the issuer's tools and the air-gapped renewal.
    License {
        #[command(subcommand)]
        command: LicenseCommand,
    },
    /// Copy a stopped sled data folder into the PostgreSQL database `[database]` names.
    Migrate {
        /// The target backend (postgres).
        #[arg(long)]
        to: String,
        /// The ini file with `[paths] data` (the source) and `[database]` (the target).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Replace what the target database holds (refused otherwise).
        #[arg(long)]
        force: bool,
    },
    /// Write a backup file: from a running server over HTTP (POST /api/admin/backup), or
    /// with the server stopped from the data folder `--config` names.
    Backup(tollgate::cli::BackupArgs),
    /// Restore a backup file into an empty data folder (or empty database).
    Restore {
        /// The backup file.
        #[arg(long = "in")]
        input: PathBuf,
        /// The ini file with `[paths] data` and `[security] secret_key`.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Run the license issuer service (renews tokens over HTTP).
    LicenseIssuer {
        /// The issuer's private key (from `tollgate license keygen`).
        #[arg(long)]
        key: PathBuf,
        /// An ini file with an `[issuer]` section.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// host:port to listen on (default `[issuer] listen`, else 127.0.0.1:3100).
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and name the first event that was modified, removed or
    /// reordered (exit 1 then): from a running server, or with the server stopped from
    /// the store `--config` names.
    Verify(tollgate::cli::AuditVerifyArgs),
}

#[derive(Subcommand)]
enum LicenseCommand {
    /// Create an issuer key pair; prints the public key for `license_issuer_keys`.
    Keygen {
        /// Where to write the private key (PEM, mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a new license token and print it.
    Issue(tollgate::cli::IssueArgs),
    /// Issuer side of an air-gapped renewal: read a renewal request file, print a new token.
    Renew {
        #[arg(long)]
        key: PathBuf,
        /// The file from `tollgate license renew-request` or GET /api/licensing/renew-request.
        #[arg(long)]
        request: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Appliance side of an air-gapped renewal: print the renewal request (server stopped).
    RenewRequest {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Set the admin's password (the `[security] admin_user`, else user 1).
    ResetAdminPassword {
        /// The new password.
        password: String,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn init_logging(settings: Option<&Settings>) {
    let level = settings
        .and_then(|s| s.raw.get("log", "level").map(str::to_string))
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("tollgate={level},warn")));
    // stdout carries command output (tokens, keys); logs go to stderr.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = if settings.is_some_and(|s| s.log_json) {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

fn load(config: Option<&PathBuf>) -> Result<Settings, ExitCode> {
    Settings::load(config.map(PathBuf::as_path)).map_err(|e| {
        eprintln!("tollgate: {e}");
        ExitCode::from(2)
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("shutting down");
}

/// SIGHUP reads the HTTPS certificate and key again (a failure is logged; the old ones
/// stay).
#[cfg(unix)]
async fn reload_on_hangup(certificates: std::sync::Arc<tollgate::tls::Certificates>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP: the certificate reloads on file changes only");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the TLS certificate");
        let _ = certificates.reload();
    }
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Openapi => {
            print!("{}", tollgate::api::spec_json());
            ExitCode::SUCCESS
        }
        Command::Server { config } => {
            let settings = match load(config.as_ref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_logging(Some(&settings));
            let (data_path, database) = (settings.data_path.clone(), settings.database.clone());
            let app = match tollgate::app::App::build(settings).await {
                Ok(app) => app,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("tollgate: {e}");
                    return ExitCode::FAILURE;
                }
            };
            #[cfg(unix)]
            if let Some(certificates) = app.certificates() {
                tokio::spawn(reload_on_hangup(certificates));
            }
            match app.run(shutdown_signal()).await {
                Ok(()) => {
                    // Best effort: the next start replays more log without it.
                    let started = std::time::Instant::now();
                    let wait = std::time::Duration::from_secs(2);
                    match tollgate::store::checkpoint(&data_path, &database, wait).await {
                        Ok(true) => tracing::info!(
                            ms = started.elapsed().as_millis() as u64,
                            "database checkpointed for the next start"
                        ),
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "shutdown checkpoint failed"),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tollgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::License { command } => {
            init_logging(None);
            license(command).await
        }
        Command::Migrate { to, config, force } => {
            if to != "postgres" {
                eprintln!("tollgate: --to postgres is the one target");
                return ExitCode::from(2);
            }
            let settings = match load(config.as_ref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_logging(Some(&settings));
            let result = tollgate::store::transfer::sled_to_postgres(
                &settings.data_path,
                &settings.database,
                force,
            )
            .await;
            match result {
                Ok(copied) => {
                    for (kind, n) in copied.counts {
                        println!("{kind}: {n}");
                    }
                    let o = copied.left_out;
                    if !o.is_empty() {
                        println!(
                            "left out (their user was deleted): {} sessions, {} service-account tokens",
                            o.sessions, o.tokens
                        );
                    }
                    println!("copied and verified");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tollgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Backup(args) => {
            init_logging(None);
            print_result(tollgate::cli::backup(&args).await)
        }
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => {
            init_logging(None);
            print_result(tollgate::cli::audit_verify(&args).await)
        }
        Command::Restore { input, config } => {
            let settings = match load(config.as_ref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_logging(Some(&settings));
            print_result(tollgate::cli::restore(&input, &settings).await)
        }
        Command::LicenseIssuer {
            key,
            config,
            listen,
        } => {
            init_logging(None);
            let run = tollgate::cli::run_issuer(&key, config.as_deref(), listen, shutdown_signal());
            print_result(run.await.map(|()| String::new()))
        }
        Command::Admin {
            command: AdminCommand::ResetAdminPassword { password, config },
        } => {
            let settings = match load(config.as_ref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            init_logging(Some(&settings));
            let result = async {
                let services = tollgate::service::Services::open(settings).await?;
                tollgate::service::bootstrap::reset_admin_password(&services, &password).await
            }
            .await;
            match result {
                Ok(done) => {
                    println!(
                        "Admin password changed successfully for user '{}'.",
                        done.login
                    );
                    if done.was_disabled {
                        println!("The account was disabled and is enabled again.");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tollgate: {}", e);
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_result(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn license(command: LicenseCommand) -> ExitCode {
    use tollgate::cli;
    match command {
        LicenseCommand::Keygen { out } => print_result(cli::keygen(&out)),
        LicenseCommand::Issue(args) => print_result(cli::issue(&args)),
        LicenseCommand::Renew {
            key,
            request,
            config,
        } => print_result(cli::renew_file(&key, &request, config.as_deref())),
        LicenseCommand::RenewRequest { config } => {
            let settings = match load(config.as_ref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            print_result(cli::renew_request(settings).await)
        }
    }
}

fn main() -> ExitCode {
    // Every file and folder tollgate creates (the database, keys, backups) is readable by
    // its owner only, whatever the shell's umask.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}
