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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
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
            let app = match tollgate::app::App::build(settings).await {
                Ok(app) => app,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("tollgate: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match app.run(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tollgate: {e}");
                    ExitCode::FAILURE
                }
            }
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
                Ok(login) => {
                    println!("Admin password changed successfully for user '{login}'.");
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

fn main() -> ExitCode {
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
