//! `stockpile-run`: the thin binary over [`stockpile_launcher::run`] that `make run` starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use stockpile_launcher::{LaunchConfig, address_free, run};
use stockpile_nats::service::{init_tracing, shutdown_signal};
use stockpile_scenario::Dataset;

/// Starts nats-server, the sequencer, a projector and the three emitting services,
/// seeds the demo scenario through the services' HTTP APIs, verifies the ledger, prints
/// where to look, and runs until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The run directory (made afresh: keys, trust root, stores, logs).
    #[arg(long, default_value = ".run")]
    dir: PathBuf,
    /// The demo data set.
    #[arg(long, value_enum, default_value_t = DatasetArg::Us)]
    dataset: DatasetArg,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pad the scenario with routine operations up to this many entries.
    #[arg(long, default_value_t = 12_000)]
    entries: u64,
    /// Where the dashboard and the projector's API listen (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    dashboard: SocketAddr,
    /// Stop everything after the verifier's summary and exit with its code.
    #[arg(long)]
    exit_after_verify: bool,
    /// The nats-server binary (default: the one `make nats` installs, else PATH).
    #[arg(long)]
    nats_server: Option<PathBuf>,
    /// The NATS configuration directory.
    #[arg(long, default_value = "deploy/nats")]
    deploy: PathBuf,
    /// Where the service binaries are (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The State's name on the Article 7 cover page.
    #[arg(long, default_value = "Demo State (synthetic data)")]
    state_name: String,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DatasetArg {
    Us,
    Finland,
    Belarus,
}

fn nats_server(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let pinned = PathBuf::from(".tools/nats/bin/nats-server");
    if pinned.is_file() {
        return Ok(pinned);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .context("no nats-server: run `make nats` (or `make run`, which installs it)")
}

fn config(args: Args) -> anyhow::Result<LaunchConfig> {
    anyhow::ensure!(
        address_free(args.dashboard),
        "{} is in use; choose another with --dashboard 127.0.0.1:PORT",
        args.dashboard
    );
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => std::env::current_exe()
            .context("locating this binary")?
            .parent()
            .context("this binary has no directory")?
            .to_path_buf(),
    };
    Ok(LaunchConfig {
        dir: args.dir,
        bin_dir,
        nats_server: nats_server(args.nats_server)?,
        deploy_dir: args.deploy,
        dataset: match args.dataset {
            DatasetArg::Us => Dataset::UsLike,
            DatasetArg::Finland => Dataset::FinlandLike,
            DatasetArg::Belarus => Dataset::BelarusLike,
        },
        seed: args.seed,
        min_entries: args.entries,
        dashboard: args.dashboard,
        exit_after_verify: args.exit_after_verify,
        state_name: args.state_name,
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
        Ok(outcome) => ExitCode::from(outcome.verify_exit),
        Err(error) => {
            eprintln!("stockpile-run: {error:#}");
            ExitCode::from(2)
        }
    }
}
