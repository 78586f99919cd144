//! `stockpile-projector`: the thin binary over [`stockpile_projector::run`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use clap::builder::TypedValueParser as _;
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::service::{NatsArgs, init_tracing, shutdown_signal};
use stockpile_nats::topology::ensure_projector_consumer;
use stockpile_projector::api;
use stockpile_projector::faults::CrashPlan;
use stockpile_projector::{ProjectorConfig, run};
use stockpile_views::article7::Article7Config;

/// Folds the ledger into compliance views kept in sled (a read replica).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Trust root JSON (origin, log keys and authority keys of the ledger).
    #[arg(long, required_unless_present = "create_consumer")]
    trust: Option<PathBuf>,
    /// This replica's own view store directory.
    #[arg(long, required_unless_present = "create_consumer")]
    store: Option<PathBuf>,
    /// This replica's name; it reads the ledger through consumer `projector-<replica>`.
    #[arg(long, default_value = "main")]
    replica: String,
    /// Create this replica's durable consumer on LEDGER and exit (run as a NATS user
    /// that may create consumers, e.g. admin).
    #[arg(long)]
    create_consumer: bool,
    /// Fold the ledger from entry 0 into a fresh store while serving the current one,
    /// then swap it in.
    #[arg(long)]
    rebuild: bool,
    /// Address of the read-only API (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Write the bound address here once listening.
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// API requests handled at once; more are refused at once with 503.
    #[arg(long, value_name = "N", default_value_t = api::HTTP_CONCURRENCY_MAX,
          value_parser = clap::value_parser!(u16)
              .range(1..=stockpile_http::guard::CONCURRENCY_MAX_LIMIT as i64)
              .map(usize::from))]
    http_concurrency_max: usize,
    /// API requests a second on average (besides /health and /ready); more get 429.
    #[arg(long, value_name = "N", default_value_t = api::HTTP_RATE_PER_SECOND,
          value_parser = clap::value_parser!(u32).range(1..))]
    http_rate_per_second: u32,
    /// API requests taken at once after a quiet spell.
    #[arg(long, value_name = "N", default_value_t = api::HTTP_RATE_BURST,
          value_parser = clap::value_parser!(u32).range(1..))]
    http_rate_burst: u32,
    /// The State's name on the Article 7 cover page.
    #[arg(long)]
    state_name: Option<String>,
    /// Cover page of the Article 7 report (JSON: state_name, contacts, submission_date).
    #[arg(long)]
    article7_config: Option<PathBuf>,
    /// A `stockpile verify --json` report that a verifier writes; the dashboard shows
    /// its verdict, the entries verified and when it was written.
    #[arg(long)]
    verification_report: Option<PathBuf>,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn config(args: Args) -> anyhow::Result<ProjectorConfig> {
    let trust_path = args.trust.context("--trust is required")?;
    let text = std::fs::read_to_string(&trust_path)
        .with_context(|| format!("reading trust root {}", trust_path.display()))?;
    let trust = TrustRoot::parse_json(&text)
        .with_context(|| format!("trust root {}", trust_path.display()))?;
    let mut article7 = match &args.article7_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str::<Article7Config>(&text)
                .with_context(|| format!("Article 7 cover page {}", path.display()))?
        }
        None => Article7Config::default(),
    };
    if let Some(state_name) = args.state_name {
        article7.state_name = state_name;
    }
    Ok(ProjectorConfig {
        nats: args.nats.config("stockpile-projector"),
        trust,
        replica: args.replica,
        store_dir: args.store.context("--store is required")?,
        listen: args.listen,
        addr_file: args.addr_file,
        http_limits: stockpile_http::HttpLimits {
            concurrency_max: args.http_concurrency_max,
            rate_per_second: args.http_rate_per_second,
            rate_burst: args.http_rate_burst,
            ..api::default_http_limits()
        },
        article7,
        verification_report: args.verification_report,
        rebuild: args.rebuild,
        crash: CrashPlan::from_env()?.map(std::sync::Arc::new),
    })
}

/// `--create-consumer`: the replica's durable consumer, created by a user allowed to.
async fn create_consumer(args: &Args) -> anyhow::Result<()> {
    let client = stockpile_nats::connect(&args.nats.config("stockpile-projector-admin")).await?;
    let js = async_nats::jetstream::new(client);
    let mut consumer = ensure_projector_consumer(&js, &args.replica).await?;
    let info = consumer.info().await.context("reading the consumer")?;
    println!(
        "consumer {} on LEDGER: {} entries delivered, {} pending",
        info.name, info.delivered.stream_sequence, info.num_pending
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_json);
    let result = if args.create_consumer {
        create_consumer(&args).await
    } else {
        match config(args) {
            Ok(config) => run(config, shutdown_signal()).await,
            Err(error) => Err(error),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stockpile-projector: {error:#}");
            ExitCode::FAILURE
        }
    }
}
