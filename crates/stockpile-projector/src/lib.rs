//! The projector: reads the ledger, folds it into compliance views, and keeps them in
//! sled with a tracking record so that a crash anywhere leaves a view that catches up
//! exactly.
//!
//! - [`store`]: the sled adapter. One atomic commit per batch holds the entries, the
//!   view documents and the last applied index (the tracking record); it is flushed
//!   before the next batch is read.
//! - [`engine`]: the fold in memory and its store, advanced one batch at a time.
//! - [`api`]: the read-only JSON API over the views and the Article 7 report.
//!
//! Reading positions itself from the tracking record, not from consumer state, and uses
//! direct gets: read-only users may not create consumers (see deploy/nats/README.md).

pub mod api;
pub mod engine;
pub mod store;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use stockpile_nats::NatsConfig;
use stockpile_nats::ledger::read_ledger_range;

/// Most entries read and committed as one batch.
pub const BATCH_ENTRIES_MAX: u64 = 1_024;
/// Pause between looks at the ledger when the projector has caught up.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Longest pause after a failed read (NATS restarting), doubling from the poll interval.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// What a projector needs.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub nats: NatsConfig,
    /// Origin and authority keys of the ledger it folds.
    pub origin: String,
    pub authority_keys: Vec<stockpile_core::ledger::AuthorityKey>,
    /// Its own sled store (each projector replica has its own).
    pub store_dir: PathBuf,
    /// Where the API listens (port 0: any free port).
    pub listen: std::net::SocketAddr,
    /// Where to write the bound address once listening.
    pub addr_file: Option<PathBuf>,
    /// Cover-page configuration of the Article 7 report.
    pub article7: stockpile_views::article7::Article7Config,
}

/// Serves the API and folds LEDGER into the store until `shutdown`: reads from the
/// tracking record on, in bounded batches, commits each batch atomically with its
/// tracking record.
pub async fn run(
    config: ProjectorConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let projector =
        engine::Projector::open(&config.store_dir, &config.origin, &config.authority_keys)?;
    tracing::info!(
        entries = projector.next_index(),
        "view store opened and refolded"
    );
    let projector = std::sync::Arc::new(std::sync::RwLock::new(projector));
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
    let app = api::router(projector.clone(), config.article7.clone());
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });
    let result = fold_loop(&config, projector, shutdown).await;
    let _ = stop_api.send(());
    server
        .await
        .context("the API task failed")?
        .context("serving the API")?;
    result
}

fn lock(
    projector: &api::SharedProjector,
) -> anyhow::Result<std::sync::RwLockWriteGuard<'_, engine::Projector>> {
    projector
        .write()
        .map_err(|_| anyhow::anyhow!("the projector's lock was poisoned by a panic"))
}

async fn fold_loop(
    config: &ProjectorConfig,
    projector: api::SharedProjector,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let client = tokio::select! {
        client = stockpile_nats::connect(&config.nats) => client?,
        () = &mut shutdown => return Ok(()),
    };
    let js = async_nats::jetstream::new(client);
    let mut pause = POLL_INTERVAL;
    let mut reported = None;
    loop {
        let next = lock(&projector)?.next_index();
        let mut batch = Vec::new();
        let read = read_ledger_range(&js, next, BATCH_ENTRIES_MAX, |message| {
            batch.push((message.index, message.entry));
            Ok(())
        })
        .await;
        let waited = pause;
        match read {
            Ok(0) => {
                pause = POLL_INTERVAL;
                if reported != Some(next) {
                    tracing::info!(entries = next, "caught up with the ledger");
                    reported = Some(next);
                }
            }
            Ok(_) => {
                let mut guard = lock(&projector)?;
                let applied = guard
                    .apply_batch(batch)
                    .context("the ledger does not fold")?;
                tracing::debug!(applied, next = guard.next_index(), "batch applied");
                // More may be waiting: look again at once (the select below still
                // notices a shutdown).
                pause = Duration::ZERO;
            }
            Err(error) => {
                pause = (waited.max(POLL_INTERVAL) * 2).min(RETRY_PAUSE_MAX);
                tracing::warn!("reading the ledger: {error:#}; retrying in {pause:?}");
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    tracing::info!(
        entries = lock(&projector)?.next_index(),
        "projector stopped"
    );
    Ok(())
}
