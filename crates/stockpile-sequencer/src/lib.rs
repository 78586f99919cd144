//! The sequencer service: pulls signed submissions from JetStream, admits each one with
//! the ledger core's [`Appender`], and appends accepted entries and rejection records to
//! the LEDGER stream — one total order, fenced so that two running sequencers can never
//! fork the chain.
//!
//! # How it stays exactly-once
//! - **Resume point from the ledger.** Each ledger message carries the SUBMISSIONS stream
//!   sequence it came from (header `Stockpile-Submission-Seq`,
//!   [`stockpile_nats::topology::SUBMISSION_SEQUENCE_HEADER`]). On start the sequencer
//!   replays LEDGER into a fresh appender (every entry re-admitted and re-encoded byte for
//!   byte), takes the last header as the high-water mark `H`, and consumes SUBMISSIONS
//!   from `H + 1`. Submissions at or below `H` are already in the ledger: they are
//!   acknowledged and skipped, never appended twice.
//! - **Strict order.** Only the submission `H + 1` may be appended next; a gap in what the
//!   consumer delivers resynchronises instead of skipping.
//! - **Fencing.** Entry `i` is published with `Nats-Expected-Last-Sequence: i`. A second
//!   sequencer, or a stale one, gets `WrongLastSequence` instead of forking; it then
//!   rebuilds from the ledger (which now holds the other's entries) and carries on.
//! - **Acknowledge after append.** A submission is acknowledged only after its ledger
//!   append is acknowledged and its receipt recorded. A crash in between leaves it
//!   unacknowledged; after restart it is at or below `H` and is skipped.
//!
//! Checkpoints are signed every N entries or T milliseconds, only over entries the
//! ledger stream has acknowledged, and published to CHECKPOINTS fenced the same way.

mod engine;

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use stockpile_core::keys::SignerKey;
use stockpile_ledger::appender::Appender;
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::NatsConfig;
use stockpile_nats::topology::{Replicas, ensure_topology};

pub use engine::Sequencer;

/// Most submissions pulled and appended as one batch: large enough to pipeline ledger
/// appends and verify signatures on all cores, small enough to bound memory and the work
/// redone after a conflict.
pub const BATCH_SUBMISSIONS_MAX: usize = 512;
/// Default number of entries after which a checkpoint is signed.
pub const CHECKPOINT_EVERY_ENTRIES: u64 = 1_000;
/// Default longest time new entries wait for a checkpoint.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);
/// How long one pull waits for submissions before the loop looks at checkpoints again.
pub const FETCH_WAIT: Duration = Duration::from_millis(250);
/// Time JetStream API calls and publish acknowledgements may take.
pub const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a delivered submission may stay unacknowledged before the server redelivers it.
pub const SUBMISSION_ACK_WAIT: Duration = Duration::from_secs(30);

/// First pause after a failed step (NATS unreachable, a timeout); doubles up to the max.
pub const RETRY_PAUSE_MIN: Duration = Duration::from_millis(200);
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Errors the sequencer must not retry: the ledger or a checkpoint in the streams is not
/// one it would have produced.
fn is_fatal(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<stockpile_ledger::appender::RestoreError>()
            .is_some()
    })
}

/// Everything the sequencer needs.
#[derive(Debug, Clone)]
pub struct SequencerConfig {
    pub nats: NatsConfig,
    /// Origin and authority keys of the ledger (the log key in it must be `log_key`'s).
    pub trust: TrustRoot,
    /// Signs checkpoints.
    pub log_key: SignerKey,
    /// Name of this instance; its durable consumer is `sequencer-<instance>`.
    pub instance: String,
    pub batch_max: usize,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    /// Stream replicas: 1 on one server, 3 in a cluster.
    pub replicas: usize,
    /// What `recorded_at` each entry gets.
    pub clock: RecordingClock,
}

/// Where an entry's `recorded_at` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordingClock {
    /// The sequencer's system clock when it appends (production).
    #[default]
    System,
    /// The event's own `occurred_at` (never before the previous entry's time; a
    /// submission that does not decode gets the previous time). For loading a
    /// multi-year history in minutes — the `make run` demo — never for a real ledger:
    /// the entries then claim to have been recorded when their events occurred.
    EventTime,
}

impl SequencerConfig {
    pub fn new(nats: NatsConfig, trust: TrustRoot, log_key: SignerKey) -> SequencerConfig {
        SequencerConfig {
            nats,
            trust,
            log_key,
            instance: "main".into(),
            batch_max: BATCH_SUBMISSIONS_MAX,
            checkpoint_every: CHECKPOINT_EVERY_ENTRIES,
            checkpoint_interval: CHECKPOINT_INTERVAL,
            replicas: 1,
            clock: RecordingClock::System,
        }
    }

    /// An appender for this ledger, empty.
    fn new_appender(&self) -> anyhow::Result<Appender> {
        Appender::new(
            &self.trust.origin,
            self.log_key.clone(),
            &self.trust.ledger_authority_keys(),
        )
        .with_context(|| format!("origin {:?} cannot head a checkpoint", self.trust.origin))
    }

    fn check(&self) -> anyhow::Result<()> {
        stockpile_nats::topology::check_service_name(&self.instance)
            .context("sequencer instance name")?;
        anyhow::ensure!(
            (1..=BATCH_SUBMISSIONS_MAX).contains(&self.batch_max),
            "batch size must be 1 to {BATCH_SUBMISSIONS_MAX}, is {}",
            self.batch_max
        );
        anyhow::ensure!(
            self.checkpoint_every >= 1,
            "checkpoint interval must be at least one entry"
        );
        let log_verifier = self.log_key.verifier_key();
        anyhow::ensure!(
            self.trust.log_keys.contains(&log_verifier),
            "the log key {} is not among the trust root's log keys: inspectors could not verify its checkpoints",
            log_verifier
        );
        anyhow::ensure!(
            self.log_key.name() == self.trust.origin,
            "the log key is named {:?} but the ledger origin is {:?}; checkpoint signatures name the origin",
            self.log_key.name(),
            self.trust.origin
        );
        Ok(())
    }
}

/// Runs the sequencer until `shutdown` completes or a fatal error occurs.
pub async fn run(
    config: SequencerConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    config.check()?;
    tokio::pin!(shutdown);
    let client = tokio::select! {
        client = stockpile_nats::connect(&config.nats) => client?,
        () = &mut shutdown => return Ok(()),
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(JETSTREAM_TIMEOUT)
        .build(client.clone());
    ensure_topology(&js, Replicas(config.replicas))
        .await
        .context("setting up the JetStream topology")?;
    let mut sequencer = Sequencer::start(config, client, js).await?;
    let mut pause = RETRY_PAUSE_MIN;
    loop {
        let consumer = sequencer.consumer();
        let step = tokio::select! {
            () = &mut shutdown => break,
            fetched = engine::fetch_batch(consumer, sequencer.batch_max()) => {
                match fetched {
                    Ok(messages) => match sequencer.process(messages).await {
                        Ok(()) => sequencer.maybe_checkpoint(false).await,
                        Err(error) => Err(error),
                    },
                    Err(error) => Err(error),
                }
            }
        };
        let Err(error) = step else {
            pause = RETRY_PAUSE_MIN;
            continue;
        };
        // NATS restarts, leader elections and timeouts pass: wait, rebuild from what the
        // streams hold, carry on. Only a ledger this sequencer would not have written is
        // fatal, because continuing it would vouch for it.
        if is_fatal(&error) {
            return Err(error);
        }
        tracing::warn!("{error:#}; rebuilding from the ledger in {pause:?}");
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RETRY_PAUSE_MAX);
        if let Err(error) = sequencer.resync().await {
            if is_fatal(&error) {
                return Err(error);
            }
            tracing::warn!("rebuilding failed: {error:#}");
        }
    }
    if let Err(error) = sequencer.maybe_checkpoint(true).await {
        tracing::warn!("final checkpoint not published: {error:#}");
    }
    tracing::info!(entries = sequencer.size(), "sequencer stopped");
    Ok(())
}
