//! The projector: reads the ledger through its own durable pull consumer, folds it into
//! compliance views kept in sled with a tracking record, verifies the signed checkpoints
//! against the entries it applied, and serves views, reports and proofs read-only.
//!
//! - [`store`]: the sled adapter. One atomic commit per batch holds the entries, the
//!   view documents and the last applied index (the tracking record).
//! - [`generations`]: generations of the store and the atomic swap of a rebuild.
//! - [`engine`]: the fold, the Merkle tree and the checkpoints, advanced one batch at a
//!   time; folds of earlier positions.
//! - [`api`]: the read-only HTTP API (its OpenAPI document is `openapi.json`).
//! - [`dashboard`]: the HTML pages of the dashboard the API serves at `/`.
//! - [`metrics`]: Prometheus figures. [`faults`]: crash injection for tests.
//!
//! # Reading the ledger
//! Each replica reads LEDGER through its own durable pull consumer `projector-<replica>`
//! (created by `admin`: read-only users may not create consumers, see
//! deploy/nats/README.md). A batch is folded, written to sled with its tracking record
//! in one transaction and flushed; only then is it acknowledged (`AckPolicy::All`, one
//! acknowledgement per batch). The tracking record, not the consumer, says where the
//! view stands: a redelivered entry below it is skipped, and an entry delivered beyond
//! it (the consumer ran ahead of the store) makes the projector read the missing ones by
//! direct get first. So a crash at any point — before the flush, between flush and
//! acknowledgement, or with an acknowledgement that got ahead of the flush — leaves a
//! view that catches up exactly.

pub mod api;
pub mod dashboard;
pub mod engine;
pub mod faults;
pub mod generations;
pub mod metrics;
pub mod store;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::NatsConfig;
use stockpile_nats::checkpoints::checkpoints_from;
use stockpile_nats::ledger::{ledger_size, read_ledger_range};
use stockpile_nats::topology::{
    LEDGER_STREAM, check_projector_consumer, ensure_projector_consumer, projector_consumer_name,
};

use crate::engine::{CheckpointOffer, Projector};
use crate::faults::{CrashPlan, CrashPoint};
use crate::generations::StoreDir;

/// Most entries folded and committed as one batch.
pub const BATCH_ENTRIES_MAX: u64 = 1_024;
/// Most checkpoints read from CHECKPOINTS at one look.
pub const CHECKPOINTS_PER_LOOK_MAX: u64 = 256;
/// How often the projector looks at the ledger's size and at new checkpoints.
pub const LOOK_INTERVAL: Duration = Duration::from_millis(500);
/// Pause after a failed read (NATS restarting) before trying again.
pub const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Heartbeat the pull consumer asks of the server: a silent server is noticed after two.
pub const CONSUMER_HEARTBEAT: Duration = Duration::from_secs(5);
/// Ready only if the ledger was looked at this recently…
pub const READY_CONTACT_MAX: Duration = Duration::from_secs(15);
/// …and the views are at most this many entries behind it.
pub const READY_LAG_MAX: u64 = BATCH_ENTRIES_MAX;
/// A rebuild logs its progress every this many entries.
pub const REBUILD_PROGRESS_EVERY: u64 = 50_000;
/// Refused checkpoints listed in the status (all are kept in the store).
pub const REFUSED_LISTED_MAX: usize = 32;

/// What a projector needs.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub nats: NatsConfig,
    /// Origin, log keys and authority keys of the ledger it folds.
    pub trust: TrustRoot,
    /// This replica's name: its consumer is `projector-<replica>`.
    pub replica: String,
    /// Its own store directory (each replica has its own).
    pub store_dir: PathBuf,
    /// Where the API listens (port 0: any free port).
    pub listen: std::net::SocketAddr,
    /// Where to write the bound address once listening.
    pub addr_file: Option<PathBuf>,
    /// Bounds on the API's requests ([`api::default_http_limits`] unless flags say).
    pub http_limits: stockpile_http::HttpLimits,
    /// Cover-page configuration of the Article 7 report.
    pub article7: stockpile_views::article7::Article7Config,
    /// A `stockpile verify --json` report a verifier writes (and rewrites); the dashboard
    /// shows its verdict. `None`: the dashboard says the ledger was not verified yet.
    pub verification_report: Option<PathBuf>,
    /// Fold the ledger from index 0 into a fresh store while serving the current one,
    /// then swap it in.
    pub rebuild: bool,
    /// Crash injection (tests only; see [`faults`]).
    pub crash: Option<Arc<CrashPlan>>,
}

/// How the projector stands, for readiness and the status page.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Entries in LEDGER when last looked at.
    pub ledger_entries: Option<u64>,
    /// When NATS last answered.
    pub last_contact: Option<Instant>,
    /// The views have come within [`READY_LAG_MAX`] of the ledger's end since start-up.
    pub caught_up_once: bool,
    /// The position last logged as caught up.
    pub reported_caught_up: Option<u64>,
    pub rebuilding: bool,
    pub last_rebuild: Option<RebuildOutcome>,
    /// The last failure to read, cleared by the next success.
    pub last_error: Option<String>,
}

/// How a rebuild ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildOutcome {
    pub entries: u64,
    pub views_digest: String,
    /// Whether the incremental view had the same digest at the same position (`None`
    /// when it had moved on by the time of the swap).
    pub agreed_with_incremental: Option<bool>,
}

/// What the fold loop, a rebuild and the API share.
pub struct Shared {
    pub replica: String,
    pub projector: RwLock<Projector>,
    pub status: Mutex<Status>,
    pub metrics: metrics::ProjectorMetrics,
}

impl Shared {
    pub fn new(replica: &str, projector: Projector) -> Shared {
        Shared {
            replica: replica.to_string(),
            projector: RwLock::new(projector),
            status: Mutex::new(Status::default()),
            metrics: metrics::ProjectorMetrics::new(),
        }
    }

    pub fn read(&self) -> anyhow::Result<std::sync::RwLockReadGuard<'_, Projector>> {
        self.projector
            .read()
            .map_err(|_| anyhow::anyhow!("the projector's lock was poisoned by a panic"))
    }

    fn write(&self) -> anyhow::Result<std::sync::RwLockWriteGuard<'_, Projector>> {
        self.projector
            .write()
            .map_err(|_| anyhow::anyhow!("the projector's lock was poisoned by a panic"))
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .map(|status| status.clone())
            .unwrap_or_default()
    }

    fn update_status(&self, change: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            change(&mut status);
        }
    }

    /// Ready to serve: the ledger answered recently, the views have caught up once and
    /// are not far behind. `Err` says why not.
    pub fn readiness(&self) -> Result<(), String> {
        let status = self.status();
        let applied = self.read().map_err(|error| error.to_string())?.next_index();
        let Some(contact) = status.last_contact else {
            return Err("the ledger has not been reached yet".into());
        };
        if contact.elapsed() > READY_CONTACT_MAX {
            return Err(format!(
                "the ledger has not answered for {} s",
                contact.elapsed().as_secs()
            ));
        }
        if !status.caught_up_once {
            return Err(format!(
                "catching up: {applied} of {} entries applied",
                status.ledger_entries.unwrap_or(0)
            ));
        }
        let lag = status.ledger_entries.unwrap_or(0).saturating_sub(applied);
        if lag > READY_LAG_MAX {
            return Err(format!("{lag} entries behind the ledger"));
        }
        Ok(())
    }
}

/// Opens the store, serves the API and folds LEDGER into the store until `shutdown`.
pub async fn run(
    config: ProjectorConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    projector_consumer_name(&config.replica)?;
    config
        .http_limits
        .check()
        .context("the HTTP limits of the API")?;
    let dir = StoreDir::open(&config.store_dir)?;
    for removed in dir.remove_others()? {
        tracing::info!(path = %removed.display(), "removed an unfinished or replaced view store");
    }
    let mut rebuild = config.rebuild;
    let projector = match Projector::open(&dir.current()?, &config.trust) {
        Ok(projector) => projector,
        Err(error) if rebuild => {
            // Nothing to serve meanwhile: start the live view itself from empty.
            tracing::warn!("the view store cannot be used ({error:#}); building a fresh one");
            let fresh = dir.fresh()?;
            dir.promote(&fresh)?;
            dir.remove_others()?;
            rebuild = false;
            Projector::open(&fresh, &config.trust)?
        }
        Err(error) => {
            return Err(error.context(format!(
                "opening the view store in {} (--rebuild builds a fresh one from the ledger)",
                config.store_dir.display()
            )));
        }
    };
    tracing::info!(
        entries = projector.next_index(),
        "view store opened and refolded"
    );
    let (applied, checkpoints) = (
        projector.next_index(),
        projector.proofs().checkpoints().len(),
    );
    let shared = Arc::new(Shared::new(&config.replica, projector));
    // Figures from the start, even while NATS is away.
    shared.metrics.positions(applied, applied);
    shared.metrics.checkpoints_verified(checkpoints);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    if let Some(path) = &config.addr_file {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{bound}\n"))
            .and_then(|()| std::fs::rename(&partial, path))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(%bound, "projector API listening");
    let app = api::router(
        shared.clone(),
        config.article7.clone(),
        config.verification_report.clone(),
        config.http_limits,
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });
    let result = read_loop(&config, &dir, shared.clone(), rebuild, shutdown).await;
    let _ = stop_api.send(());
    server
        .await
        .context("the API task failed")?
        .context("serving the API")?;
    tracing::info!(entries = shared.read()?.next_index(), "projector stopped");
    result
}

/// Connects, opens the consumer, runs a rebuild beside the fold if asked, until
/// `shutdown`.
async fn read_loop(
    config: &ProjectorConfig,
    dir: &StoreDir,
    shared: Arc<Shared>,
    rebuild: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let client = tokio::select! {
        client = stockpile_nats::connect(&config.nats) => client?,
        () = &mut shutdown => return Ok(()),
    };
    let js = jetstream::new(client);
    let consumer = tokio::select! {
        consumer = open_consumer(&js, &config.replica) => consumer?,
        () = &mut shutdown => return Ok(()),
    };
    let rebuild_task = rebuild.then(|| {
        let (js, dir, shared, trust) = (
            js.clone(),
            dir.clone(),
            shared.clone(),
            config.trust.clone(),
        );
        tokio::spawn(async move {
            if let Err(error) = rebuild_view(&js, &dir, &shared, &trust).await {
                tracing::error!("the rebuild failed: {error:#}");
                shared.update_status(|status| status.rebuilding = false);
            }
        })
    });
    let result = fold_loop(config, &js, &consumer, &shared, shutdown).await;
    if let Some(task) = rebuild_task {
        task.abort();
    }
    result
}

/// The replica's durable consumer: opened, or created when this user may (a server
/// without accounts); otherwise the error says who must create it.
async fn open_consumer(
    js: &jetstream::Context,
    replica: &str,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    let name = projector_consumer_name(replica)?;
    let stream = loop {
        match js.get_stream(LEDGER_STREAM).await {
            Ok(stream) => break stream,
            Err(error) => {
                tracing::info!(
                    "waiting for stream {LEDGER_STREAM} ({error}); the sequencer creates it"
                );
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    };
    match stream.get_consumer::<consumer::pull::Config>(&name).await {
        Ok(mut consumer) => {
            let info = consumer
                .info()
                .await
                .with_context(|| format!("reading consumer {name}"))?;
            check_projector_consumer(&name, &info.config)?;
            tracing::info!(consumer = %name, "reading the ledger through consumer");
            Ok(consumer)
        }
        Err(missing) => ensure_projector_consumer(js, replica)
            .await
            .with_context(|| {
                format!(
                    "consumer {name} on {LEDGER_STREAM} cannot be opened ({missing}) and this \
                 user cannot create it; create it as admin: stockpile-projector \
                 --create-consumer --replica {replica} --nats-user admin …"
                )
            }),
    }
}

/// Folds what the consumer delivers, in bounded batches, and looks at the ledger's size
/// and new checkpoints every [`LOOK_INTERVAL`].
async fn fold_loop(
    config: &ProjectorConfig,
    js: &jetstream::Context,
    consumer: &consumer::Consumer<consumer::pull::Config>,
    shared: &Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let mut messages = None;
    let mut look = tokio::time::interval(LOOK_INTERVAL);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(stream) = messages.as_mut() else {
            match consumer
                .stream()
                .max_messages_per_batch(BATCH_ENTRIES_MAX as usize)
                .heartbeat(CONSUMER_HEARTBEAT)
                .messages()
                .await
            {
                Ok(stream) => messages = Some(stream),
                Err(error) => {
                    read_failed(shared, format!("pulling from the consumer: {error}"));
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                }
            }
            continue;
        };
        tokio::select! {
            () = &mut shutdown => break,
            _ = look.tick() => look_at_ledger(js, shared).await,
            next = stream.next() => match next {
                None => messages = None,
                Some(Err(error)) => read_failed(shared, format!("pulling from the consumer: {error}")),
                Some(Ok(first)) => {
                    let mut batch = vec![first];
                    while batch.len() < BATCH_ENTRIES_MAX as usize {
                        match stream.next().now_or_never() {
                            Some(Some(Ok(message))) => batch.push(message),
                            _ => break,
                        }
                    }
                    handle_batch(config, js, shared, batch).await?;
                }
            },
        }
    }
    Ok(())
}

fn read_failed(shared: &Shared, problem: String) {
    tracing::warn!("{problem}");
    shared.metrics.read_failed();
    shared.update_status(|status| status.last_error = Some(problem));
}

/// Folds one delivered batch: skips redeliveries, fills a gap by direct gets, writes,
/// flushes, and only then acknowledges.
async fn handle_batch(
    config: &ProjectorConfig,
    js: &jetstream::Context,
    shared: &Shared,
    batch: Vec<jetstream::Message>,
) -> anyhow::Result<()> {
    let mut entries = Vec::with_capacity(batch.len());
    let mut expected = shared.read()?.next_index();
    for message in &batch {
        let sequence = message
            .info()
            .map_err(|error| anyhow::anyhow!("a delivered message has no metadata: {error}"))?
            .stream_sequence;
        let index = sequence
            .checked_sub(1)
            .context("a delivered message has stream sequence 0")?;
        if index < expected {
            continue;
        }
        if index > expected {
            // The consumer is ahead of the store: apply what came before it first.
            if !entries.is_empty() {
                apply(config, shared, std::mem::take(&mut entries), Some(message)).await?;
            }
            fill_gap(config, js, shared, index).await?;
        }
        entries.push((index, message.payload.clone()));
        expected = index + 1;
    }
    let last = batch.last().context("an empty batch")?;
    if !entries.is_empty() {
        apply(config, shared, entries, Some(last)).await?;
    }
    // Everything delivered is now durable in the store: acknowledge it all at once.
    if let Some(crash) = &config.crash {
        crash.at(CrashPoint::AfterFlush);
    }
    if let Err(error) = last.double_ack().await {
        // Not fatal: the batch will be delivered again and skipped.
        tracing::warn!("acknowledging a batch: {error}");
    }
    if let Some(crash) = &config.crash {
        crash.at(CrashPoint::AfterAck);
    }
    Ok(())
}

/// Reads entries `next..until` by direct get and applies them, a batch at a time.
async fn fill_gap(
    config: &ProjectorConfig,
    js: &jetstream::Context,
    shared: &Shared,
    until: u64,
) -> anyhow::Result<()> {
    loop {
        let next = shared.read()?.next_index();
        if next >= until {
            return Ok(());
        }
        let mut entries = Vec::new();
        read_ledger_range(js, next, (until - next).min(BATCH_ENTRIES_MAX), |message| {
            entries.push((message.index, message.entry));
            Ok(())
        })
        .await
        .with_context(|| format!("reading entries {next}..{until} the consumer skipped"))?;
        anyhow::ensure!(
            !entries.is_empty(),
            "entries {next}..{until} are not in the ledger"
        );
        shared.metrics.gap_filled(entries.len() as u64);
        apply(config, shared, entries, None).await?;
    }
}

/// Folds, writes and flushes consecutive entries (with the crash points of the tests;
/// `delivered` is the message a crash "after the acknowledgement, before the flush"
/// acknowledges).
async fn apply(
    config: &ProjectorConfig,
    shared: &Shared,
    entries: Vec<(u64, Bytes)>,
    delivered: Option<&jetstream::Message>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let applied = shared
        .write()?
        .write_batch(entries)
        .context("the ledger does not fold")?;
    if let Some(crash) = &config.crash {
        crash.batch_applied();
        crash.at(CrashPoint::AfterWrite);
        if crash.due(CrashPoint::AfterAckBeforeFlush) {
            if let Some(message) = delivered {
                let acknowledged = message.double_ack().await.is_ok();
                eprintln!("stockpile-projector: acknowledged unflushed batch: {acknowledged}");
            }
            crash.at(CrashPoint::AfterAckBeforeFlush);
        }
    }
    shared.read()?.flush()?;
    shared.metrics.batch_applied(applied, started.elapsed());
    let (applied_total, ledger) = (
        shared.read()?.next_index(),
        shared.status().ledger_entries.unwrap_or(0),
    );
    shared
        .metrics
        .positions(applied_total, ledger.max(applied_total));
    Ok(())
}

/// Looks at the ledger's size (lag, readiness) and offers new checkpoints.
async fn look_at_ledger(js: &jetstream::Context, shared: &Shared) {
    let size = match ledger_size(js).await {
        Ok(size) => size,
        Err(error) => {
            read_failed(shared, format!("looking at the ledger: {error:#}"));
            return;
        }
    };
    let applied = shared.read().map(|p| p.next_index()).unwrap_or(0);
    shared.update_status(|status| {
        status.ledger_entries = Some(size);
        status.last_contact = Some(Instant::now());
        status.last_error = None;
        if size.saturating_sub(applied) <= READY_LAG_MAX {
            status.caught_up_once = true;
        }
        if applied >= size && status.reported_caught_up != Some(applied) {
            status.reported_caught_up = Some(applied);
            tracing::info!(entries = applied, "caught up with the ledger");
        }
    });
    shared.metrics.positions(applied, size.max(applied));
    if let Err(error) = read_checkpoints(js, shared).await {
        read_failed(shared, format!("reading checkpoints: {error:#}"));
    }
}

/// Offers checkpoints published since the last one read, stopping at one that covers
/// entries not applied yet.
async fn read_checkpoints(js: &jetstream::Context, shared: &Shared) -> anyhow::Result<()> {
    let from = shared.read()?.store().checkpoints_read()? + 1;
    let stored = checkpoints_from(js, from, CHECKPOINTS_PER_LOOK_MAX).await?;
    for checkpoint in stored {
        let mut projector = shared.write()?;
        match projector.offer_checkpoint(checkpoint.sequence, checkpoint.note.as_bytes())? {
            CheckpointOffer::Ahead { .. } => break,
            CheckpointOffer::Refused { reason } => {
                shared.metrics.checkpoint_refused();
                tracing::error!(
                    sequence = checkpoint.sequence,
                    "a checkpoint in CHECKPOINTS does not verify against the ledger: {reason}"
                );
            }
            CheckpointOffer::Verified { size } => {
                tracing::debug!(size, "checkpoint verified");
            }
            CheckpointOffer::Known { .. } => {}
        }
        shared
            .metrics
            .checkpoints_verified(projector.proofs().checkpoints().len());
    }
    Ok(())
}

/// Folds the ledger from index 0 into a fresh generation while the current view keeps
/// serving, then swaps it in atomically (under the write lock: no request sees a mixture)
/// and promotes it on disk.
async fn rebuild_view(
    js: &jetstream::Context,
    dir: &StoreDir,
    shared: &Shared,
    trust: &TrustRoot,
) -> anyhow::Result<()> {
    shared.update_status(|status| status.rebuilding = true);
    let fresh = dir.fresh()?;
    tracing::info!(path = %fresh.display(), "rebuilding the views from entry 0");
    let mut rebuilt = Projector::open(&fresh, trust)?;
    loop {
        let live_next = shared.read()?.next_index();
        if rebuilt.next_index() >= live_next {
            // Checkpoints first (outside the lock), then the swap.
            let mut from = 1;
            loop {
                let stored = checkpoints_from(js, from, CHECKPOINTS_PER_LOOK_MAX).await?;
                let Some(last) = stored.last() else { break };
                from = last.sequence + 1;
                let mut ahead = false;
                for checkpoint in &stored {
                    let offer = rebuilt
                        .offer_checkpoint(checkpoint.sequence, checkpoint.note.as_bytes())?;
                    ahead |= matches!(offer, CheckpointOffer::Ahead { .. });
                    if ahead {
                        break;
                    }
                }
                if ahead {
                    break;
                }
            }
            let mut live = shared.write()?;
            if rebuilt.next_index() < live.next_index() {
                continue;
            }
            let digest = stockpile_views::digest::views_digest(rebuilt.fold()).to_hex();
            let agreed = (rebuilt.next_index() == live.next_index())
                .then(|| stockpile_views::digest::views_digest(live.fold()).to_hex() == digest);
            let outcome = RebuildOutcome {
                entries: rebuilt.next_index(),
                views_digest: digest,
                agreed_with_incremental: agreed,
            };
            match agreed {
                Some(false) => tracing::error!(
                    entries = outcome.entries,
                    "the rebuilt views differ from the incremental ones; serving the rebuild"
                ),
                _ => tracing::info!(
                    entries = outcome.entries,
                    digest = %outcome.views_digest,
                    "rebuild swapped in"
                ),
            }
            *live = rebuilt;
            dir.promote(&fresh)?;
            drop(live);
            dir.remove_others()?;
            shared.metrics.rebuilt();
            shared.update_status(|status| {
                status.rebuilding = false;
                status.last_rebuild = Some(outcome);
            });
            return Ok(());
        }
        let mut entries = Vec::new();
        read_ledger_range(js, rebuilt.next_index(), BATCH_ENTRIES_MAX, |message| {
            entries.push((message.index, message.entry));
            Ok(())
        })
        .await
        .context("reading the ledger for the rebuild")?;
        let applied_now = entries.len() as u64;
        if entries.is_empty() {
            tokio::time::sleep(LOOK_INTERVAL).await;
            continue;
        }
        rebuilt
            .apply_batch(entries)
            .context("the ledger does not fold (rebuild)")?;
        if rebuilt.next_index() / REBUILD_PROGRESS_EVERY
            != (rebuilt.next_index() - applied_now) / REBUILD_PROGRESS_EVERY
        {
            tracing::info!(
                rebuilt = rebuilt.next_index(),
                live = shared.read()?.next_index(),
                "rebuilding"
            );
        }
    }
}
