//! `stockpile-projector`: the thin binary over [`stockpile_projector::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::service::{NatsArgs, init_tracing, shutdown_signal};
use stockpile_projector::{ProjectorConfig, run};

/// Folds the ledger into compliance views kept in sled (a read replica).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Trust root JSON (origin and authority keys of the ledger).
    #[arg(long)]
    trust: PathBuf,
    /// This replica's own view store directory.
    #[arg(long)]
    store: PathBuf,
    /// Address of the read-only API (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Write the bound address here once listening.
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// The State's name on the Article 7 cover page.
    #[arg(long, default_value = "")]
    state_name: String,
    #[arg(long)]
    log_json: bool,
}

fn config(args: Args) -> anyhow::Result<ProjectorConfig> {
    let text = std::fs::read_to_string(&args.trust)
        .with_context(|| format!("reading trust root {}", args.trust.display()))?;
    let trust = TrustRoot::parse_json(&text)
        .with_context(|| format!("trust root {}", args.trust.display()))?;
    Ok(ProjectorConfig {
        nats: args.nats.config("stockpile-projector"),
        origin: trust.origin.clone(),
        authority_keys: trust.ledger_authority_keys(),
        store_dir: args.store,
        listen: args.listen,
        addr_file: args.addr_file,
        article7: stockpile_views::article7::Article7Config {
            state_name: args.state_name,
            ..Default::default()
        },
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_json);
    let result = match config(args) {
        Ok(config) => run(config, shutdown_signal()).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stockpile-projector: {error:#}");
            ExitCode::FAILURE
        }
    }
}
