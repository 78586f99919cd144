//! `stockpile-sequencer`: the thin binary over [`stockpile_sequencer::run`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use stockpile_core::keys::SignerKey;
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::service::{NatsArgs, init_tracing, shutdown_signal};
use stockpile_sequencer::{SequencerConfig, run};

/// Sequences signed submissions from NATS JetStream into the hash-chained ledger.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Trust root JSON (origin, log keys, authority keys).
    #[arg(long)]
    trust: PathBuf,
    /// Secret log key file (signs checkpoints; its name is the origin).
    #[arg(long)]
    log_key: PathBuf,
    /// Instance name (its durable consumer is sequencer-<name>).
    #[arg(long, default_value = "main")]
    instance: String,
    /// Submissions per batch.
    #[arg(long, default_value_t = stockpile_sequencer::BATCH_SUBMISSIONS_MAX)]
    batch: usize,
    /// Sign a checkpoint after this many entries...
    #[arg(long, default_value_t = stockpile_sequencer::CHECKPOINT_EVERY_ENTRIES)]
    checkpoint_every: u64,
    /// ...or after this many milliseconds with new entries.
    #[arg(long, default_value_t = stockpile_sequencer::CHECKPOINT_INTERVAL.as_millis() as u64)]
    checkpoint_interval_ms: u64,
    /// Stream replicas (3 in a JetStream cluster). Above 1, entries are appended one at
    /// a time (deploy/nats/README.md says why).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Record each entry at its event's occurrence time instead of now. Demo only (it
    /// loads years of history in minutes); a real ledger records when it sequences.
    #[arg(long)]
    demo_event_time: bool,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn config(args: Args) -> anyhow::Result<SequencerConfig> {
    let trust_text = std::fs::read_to_string(&args.trust)
        .with_context(|| format!("reading trust root {}", args.trust.display()))?;
    let trust = TrustRoot::parse_json(&trust_text)
        .with_context(|| format!("trust root {}", args.trust.display()))?;
    let key_text = std::fs::read_to_string(&args.log_key)
        .with_context(|| format!("reading log key {}", args.log_key.display()))?;
    let log_key = SignerKey::parse(key_text.trim())
        .with_context(|| format!("log key {}", args.log_key.display()))?;
    let nats = args
        .nats
        .config(format!("stockpile-sequencer-{}", args.instance));
    let mut config = SequencerConfig::new(nats, trust, log_key);
    config.instance = args.instance;
    config.batch_max = args.batch;
    config.checkpoint_every = args.checkpoint_every;
    config.checkpoint_interval = Duration::from_millis(args.checkpoint_interval_ms);
    config.replicas = args.replicas;
    if args.demo_event_time {
        config.clock = stockpile_sequencer::RecordingClock::EventTime;
        tracing::warn!(
            "--demo-event-time: entries are recorded at their events' times, not when sequenced"
        );
    }
    Ok(config)
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
            eprintln!("stockpile-sequencer: {error:#}");
            ExitCode::FAILURE
        }
    }
}
