//! Plumbing every service binary shares: logging set-up and the shutdown signal.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or as JSON lines.
pub fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second initialisation (tests running several services in one process) keeps the
    // first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed
/// when this is called (inside the runtime), not when the future is first polled, so a
/// signal that arrives during start-up is not fatal.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = terminated => {}
                () = interrupted => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}

/// The NATS flags every service binary takes (`#[command(flatten)]` them).
#[derive(Debug, Clone, clap::Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma separated.
    #[arg(
        long,
        default_value = "nats://127.0.0.1:4222",
        env = "STOCKPILE_NATS_URL"
    )]
    pub nats_url: String,
    /// NATS user (deploy/nats gives each service its own).
    #[arg(long, env = "STOCKPILE_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(long, env = "STOCKPILE_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// NATS credentials file, instead of user and password.
    #[arg(long)]
    pub nats_creds: Option<std::path::PathBuf>,
    /// Keep retrying until NATS answers instead of exiting.
    #[arg(long)]
    pub wait_for_nats: bool,
}

impl NatsArgs {
    /// The connection settings, with the name the server shows for this client.
    pub fn config(&self, client_name: impl Into<String>) -> crate::NatsConfig {
        crate::NatsConfig {
            url: self.nats_url.clone(),
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            creds_file: self.nats_creds.clone(),
            wait: self.wait_for_nats,
            client_name: Some(client_name.into()),
        }
    }
}
