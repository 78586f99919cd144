//! The command line the three service binaries share: flags, logging, signals, and a
//! one-line message on stderr with a non-zero exit for any fatal error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::builder::TypedValueParser as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser};
use stockpile_core::events::Role;
use stockpile_core::keys::SignerKey;
use stockpile_nats::NatsConfig;

use stockpile_http::{API_TOKEN_ENV, ApiTokens};

use crate::limits::{HTTP_CONCURRENCY_MAX, HTTP_RATE_BURST, HTTP_RATE_PER_SECOND};
use crate::outbox::OutboxLimits;
use crate::roles::{ServiceKind, parse_role};
use crate::sdk::RoleKey;
use crate::service::{ApiConfig, ServiceConfig, default_http_limits, run};

/// Environment variable read for the NATS password when `--nats-password` is absent, so
/// the secret need not appear in the process list.
pub const NATS_PASSWORD_ENV: &str = "STOCKPILE_NATS_PASSWORD";

/// Flags of every emitting service.
#[derive(Debug, Parser)]
pub struct Args {
    /// Address to listen on (port 0: any free port; see --addr-file).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Write the bound address (ip:port) to this file once listening.
    #[arg(long, value_name = "PATH")]
    pub addr_file: Option<PathBuf>,
    /// The ledger origin the events are signed for.
    #[arg(long)]
    pub origin: String,
    /// NATS server URL(s), comma separated.
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NATS user (with --nats-password).
    #[arg(long, value_name = "USER")]
    pub nats_user: Option<String>,
    /// NATS password; default: the STOCKPILE_NATS_PASSWORD environment variable.
    #[arg(long, value_name = "PASSWORD")]
    pub nats_password: Option<String>,
    /// NATS credentials file (JWT and nkey seed).
    #[arg(long, value_name = "PATH")]
    pub nats_creds: Option<PathBuf>,
    /// Keep trying to connect to NATS instead of failing at once; events are accepted
    /// into the outbox meanwhile.
    #[arg(long)]
    pub wait_for_nats: bool,
    /// The durable outbox directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub outbox: PathBuf,
    /// A role's secret key file, as `stockpile keygen` writes it; once per role.
    #[arg(long = "key", value_name = "ROLE=PATH", required = true, value_parser = parse_key_arg)]
    pub keys: Vec<(Role, PathBuf)>,
    /// The bearer tokens the HTTP API accepts: one per line (`#` comments), 32 to 512
    /// characters each (`openssl rand -hex 32`). Repeatable; several tokens let one be
    /// rotated. Default: the STOCKPILE_API_TOKEN environment variable. The service does
    /// not start without a token.
    #[arg(long = "token-file", value_name = "PATH")]
    pub token_files: Vec<PathBuf>,
    /// HTTP requests handled at once; more are refused at once with 503.
    #[arg(long, value_name = "N", default_value_t = HTTP_CONCURRENCY_MAX,
          value_parser = clap::value_parser!(u16)
              .range(1..=stockpile_http::guard::CONCURRENCY_MAX_LIMIT as i64)
              .map(usize::from))]
    pub http_concurrency_max: usize,
    /// HTTP requests a second on average (besides /health and /ready); more get 429.
    #[arg(long, value_name = "N", default_value_t = HTTP_RATE_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http_rate_per_second: u32,
    /// HTTP requests taken at once after a quiet spell.
    #[arg(long, value_name = "N", default_value_t = HTTP_RATE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http_rate_burst: u32,
    /// Log JSON lines instead of text (filter with RUST_LOG, default info).
    #[arg(long)]
    pub log_json: bool,
}

fn parse_key_arg(text: &str) -> Result<(Role, PathBuf), String> {
    let (role, path) = text
        .split_once('=')
        .ok_or_else(|| format!("expected ROLE=PATH, got {text:?}"))?;
    if path.is_empty() {
        return Err(format!("no key file after {role}="));
    }
    Ok((parse_role(role)?, PathBuf::from(path)))
}

impl Args {
    /// The service configuration: reads the key files, the token files (or the token
    /// variable) and the password variable.
    pub fn into_config(self, service: ServiceKind) -> anyhow::Result<ServiceConfig> {
        let tokens = ApiTokens::load(
            &self.token_files,
            std::env::var(API_TOKEN_ENV).ok().as_deref(),
        )?;
        let limits = stockpile_http::HttpLimits {
            concurrency_max: self.http_concurrency_max,
            rate_per_second: self.http_rate_per_second,
            rate_burst: self.http_rate_burst,
            ..default_http_limits()
        };
        limits.check()?;
        let mut keys = Vec::with_capacity(self.keys.len());
        for (role, path) in &self.keys {
            keys.push(RoleKey {
                role: *role,
                key: read_key(path)?,
            });
        }
        let password = match self.nats_password {
            Some(password) => Some(password),
            None => std::env::var(NATS_PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty()),
        };
        Ok(ServiceConfig {
            service,
            listen: self.listen,
            addr_file: self.addr_file,
            origin: self.origin,
            keys,
            outbox_dir: self.outbox,
            outbox_limits: OutboxLimits::default(),
            nats: NatsConfig {
                url: self.nats_url,
                user: self.nats_user,
                password,
                creds_file: self.nats_creds,
                wait: self.wait_for_nats,
                client_name: Some(format!("stockpile-{}", service.name())),
            },
            api: ApiConfig { tokens, limits },
        })
    }
}

/// Reads a secret key file. The error never quotes the file's content.
pub fn read_key(path: &Path) -> anyhow::Result<SignerKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the key file {}", path.display()))?;
    warn_if_readable_by_others(path);
    SignerKey::parse(text.trim())
        .with_context(|| format!("the key file {} does not hold a secret key", path.display()))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            "the key file {} is readable by other users; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// The whole program of a service binary: parse flags, log, run until SIGINT or SIGTERM.
pub fn main(service: ServiceKind) -> ExitCode {
    let program = service.binary_name();
    let command = Args::command()
        .name(program)
        .bin_name(program)
        .about(format!("The {service} emitting service: signs events, keeps them in a durable outbox, publishes them to the ledger."));
    let args = match Args::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    init_logging(args.log_json);
    let config = match args.into_config(service) {
        Ok(config) => config,
        Err(error) => return fatal(program, &error),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fatal(
                program,
                &anyhow::Error::from(error).context("starting the runtime"),
            );
        }
    };
    match runtime.block_on(run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fatal(program, &error),
    }
}

fn fatal(program: &str, error: &anyhow::Error) -> ExitCode {
    // One line: the context chain joined by ": ".
    eprintln!("{program}: error: {error:#}");
    ExitCode::FAILURE
}

/// Text logs (or JSON with `json`) on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialization (tests) is harmless; ignore it.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!("cannot watch SIGTERM ({error}); only Ctrl-C stops the service");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("stop signal received");
}
