//! (e) a projection rebuild and (g) query latency under load, against a real
//! nats-server and the real `stockpile-projector` binary.
//!
//! Set-up, not timed: a generated U.S.-like export (cached in the work directory, shared
//! with the verifier's figure), a nats-server, and LEDGER and CHECKPOINTS loaded with the
//! export's entries and checkpoints exactly as the sequencer publishes them (entry bytes,
//! `Nats-Msg-Id` = link hash, both fences, the `Stockpile-Submission-Seq` header),
//! pipelined.
//!
//! (e) times the projector process from its start with a fresh store until its
//! `/v1/status` says every entry is applied, then the `--rebuild` path (a fresh generation
//! folded beside the serving one, then swapped in).
//!
//! (g) keeps that projector serving and puts an open-loop load of lot lookups on it:
//! requests are scheduled at a fixed rate by a thread of their own, handed to a small pool
//! of keep-alive HTTP/1.1 connections, and each latency runs from the request's
//! *scheduled* time, so a slow answer delays the ones queued behind it in the figure too
//! (no coordinated omission). Article 7 reports are asked for meanwhile the same way, at a
//! lower rate. Sending stops at the end of the window: a request not sent by then counts
//! as missed. Before the window every lot and the Article 7 year are asked for once
//! (their first answers are built then, and reported apart as cold figures), so the
//! window measures a warm projector. The projector started by (e) is handed to (g)
//! through a task on the bench's runtime, so it is killed with the runtime when (g) is
//! not run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use bytes::Bytes;
use rand::Rng as _;
use stockpile_core::hash::entry_link_hash;
use stockpile_ledger::export::ExportReader;
use stockpile_nats::topology::{
    CHECKPOINTS_SUBJECT, LEDGER_SUBJECT, Replicas, SUBMISSION_SEQUENCE_HEADER, ensure_topology,
};
use stockpile_proto::export_codec::ExportRecord;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufStream};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::BenchContext;
use crate::exports::{DATASET_SEED, Export, ensure_export};
use crate::report::{Compare, Report, percentiles, section};
use crate::server::{Durability, NatsServer, cpu_seconds, peak_rss_bytes, sibling_binary};

/// Entries of the rebuilt ledger (issue 7), and in a quick run.
const REBUILD_ENTRIES: u64 = 1_000_000;
const REBUILD_ENTRIES_QUICK: u64 = 100_000;
/// Target of (e): entries a second, from process start to the last entry applied.
const REBUILD_TARGET_PER_S: f64 = 100_000.0;
/// Publishes in flight while loading LEDGER (the sequencer pipelines a whole batch).
const PUBLISH_WINDOW: usize = 4_096;
/// Records read from the export per hand-over to the publishing task.
const EXPORT_CHUNK: usize = 1_024;
/// Chunks buffered between the export reader and the publisher.
const EXPORT_CHUNKS_BUFFERED: usize = 8;
/// How often the projector's status is polled while it folds.
const STATUS_POLL: Duration = Duration::from_millis(50);
/// How long a projector may take to open its store and listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a fold of the whole ledger may take before the figure is given up.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(1_800);
/// How long a stopped projector may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The projector replica the bench runs (its consumer is `projector-bench`).
const REPLICA: &str = "bench";
/// Limits given to the projector's API for (g): far above the load, so the figure is
/// the projector's, not its rate limiter's (defaults: 200/s, burst 400, 64 at once).
const BENCH_HTTP_RATE_PER_S: u32 = 1_000_000;
const BENCH_HTTP_CONCURRENCY: u16 = 1_024;

/// (g): the lot-lookup load, its duration, and the connections it goes over.
const LOT_RATE_PER_S: u32 = 2_000;
const LOAD_DURATION: Duration = Duration::from_secs(20);
const LOAD_DURATION_QUICK: Duration = Duration::from_secs(5);
const LOT_CONNECTIONS: usize = 16;
/// Target of (g): lot lookup p99 at [`LOT_RATE_PER_S`].
const LOT_P99_TARGET_US: f64 = 2_000.0;
/// Article 7 reports asked for beside the lookups, open-loop too, and their connections.
const ARTICLE7_RATE_PER_S: u32 = 20;
const ARTICLE7_CONNECTIONS: usize = 2;
/// A request sent this long after its scheduled time counts as sent late (all its
/// connections were busy); its latency counts from the schedule all the same.
const LATE_AFTER: Duration = Duration::from_millis(1);
/// Largest answer the bench's HTTP client reads (the lots list of a big ledger).
const HTTP_BODY_MAX: usize = 256 << 20;
/// Longest wait for one answer before the request counts as an error.
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

/// What (e) leaves running for (g): the server, the projector, and their data.
struct Serving {
    // Field order is drop order: the projector goes before the server it reads.
    projector: ProjectorProcess,
    _nats: NatsServer,
    _stores: tempfile::TempDir,
    entries: u64,
    /// Years the ledger's entries were recorded in (first, last).
    years: (i32, i32),
}

/// Where (g) finds what (e) left running: a task on the bench's runtime that owns it
/// until asked, so the processes die with the runtime if (g) never asks.
static HANDOVER: Mutex<Option<oneshot::Sender<oneshot::Sender<Serving>>>> = Mutex::new(None);

fn keep_for_queries(serving: Serving) {
    let (ask, asked) = oneshot::channel::<oneshot::Sender<Serving>>();
    tokio::spawn(async move {
        if let Ok(reply) = asked.await {
            let _ = reply.send(serving);
        }
    });
    if let Ok(mut slot) = HANDOVER.lock() {
        *slot = Some(ask);
    }
}

async fn take_kept() -> Option<Serving> {
    let ask = HANDOVER.lock().ok()?.take()?;
    let (reply, answer) = oneshot::channel();
    ask.send(reply).ok()?;
    answer.await.ok()
}

fn rebuild_entries(context: &BenchContext) -> u64 {
    if context.quick {
        REBUILD_ENTRIES_QUICK
    } else {
        REBUILD_ENTRIES
    }
}

pub async fn rebuild(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(e) projection rebuild");
    let loaded = load_system(context, rebuild_entries(context)).await?;
    let entries = loaded.entries;
    let projector_binary = sibling_binary("stockpile-projector")?;
    report.note(format!(
        "(e) rebuild: {entries} entries (us data set, seed {DATASET_SEED}, {} checkpoints), \
         nats-server {}; the projector starts with an empty store and its consumer, and is \
         timed from process start until /v1/status says every entry is applied",
        loaded.checkpoints,
        Durability::SyncDefault.describe()
    ));

    let started = Instant::now();
    let projector = ProjectorProcess::start(&projector_binary, &loaded, &[])?;
    projector.wait_listening(LISTEN_TIMEOUT).await?;
    projector
        .wait_status(CATCH_UP_TIMEOUT, |status| {
            status["applied_entries"].as_u64() >= Some(entries)
        })
        .await?;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(projector.pid()).unwrap_or(0.0);
    let rss = peak_rss_bytes(projector.pid()).unwrap_or(0);
    let rate = report.rate(
        "rebuild.entries_per_s",
        &format!("projector from a fresh store, {entries} entries"),
        entries,
        elapsed,
        "entries/s",
    );
    report.figure(
        "rebuild.seconds",
        "  time to the last entry applied",
        elapsed.as_secs_f64(),
        "s",
    );
    report.figure(
        "rebuild.cpu_cores",
        "  projector CPU (user+system) per wall second",
        cpu / elapsed.as_secs_f64().max(1e-9),
        "cores",
    );
    // CPU time per entry reads more steadily than the rate on a shared machine.
    report.figure(
        "rebuild.cpu_us_per_entry",
        "  projector CPU (user+system) per entry",
        cpu * 1e6 / entries as f64,
        "µs",
    );
    report.figure(
        "rebuild.peak_rss_mib",
        "  projector peak resident memory",
        rss as f64 / f64::from(1 << 20),
        "MiB",
    );
    report.target(
        "projection rebuild",
        rate,
        Compare::AtLeast,
        REBUILD_TARGET_PER_S,
        "entries/s",
    );

    // The `--rebuild` path: restart on the same store (which refolds it locally before
    // listening), then fold a fresh generation from LEDGER beside the serving one.
    projector.stop().await?;
    let started = Instant::now();
    let projector = ProjectorProcess::start(&projector_binary, &loaded, &["--rebuild"])?;
    projector.wait_listening(LISTEN_TIMEOUT).await?;
    let reopened = started.elapsed();
    projector
        .wait_status(CATCH_UP_TIMEOUT, |status| {
            status["last_rebuild"]["entries"].as_u64() >= Some(entries)
        })
        .await?;
    let swapped = started.elapsed();
    report.rate(
        "rebuild.reopen_entries_per_s",
        "restart: refold of the local store before listening",
        entries,
        reopened,
        "entries/s",
    );
    report.rate(
        "rebuild.swap_entries_per_s",
        "--rebuild: fresh generation from LEDGER beside the live view",
        entries,
        swapped.saturating_sub(reopened),
        "entries/s",
    );
    keep_for_queries(Serving {
        projector,
        _nats: loaded.nats,
        _stores: loaded.stores,
        entries,
        years: loaded.years,
    });
    Ok(())
}

pub async fn queries(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(g) query latency under load");
    let serving = match take_kept().await {
        Some(serving) => serving,
        None => {
            // (e) did not run: set the same system up, untimed.
            let loaded = load_system(context, rebuild_entries(context)).await?;
            let entries = loaded.entries;
            let binary = sibling_binary("stockpile-projector")?;
            let projector = ProjectorProcess::start(&binary, &loaded, &[])?;
            projector.wait_listening(LISTEN_TIMEOUT).await?;
            projector
                .wait_status(CATCH_UP_TIMEOUT, |status| {
                    status["applied_entries"].as_u64() >= Some(entries)
                })
                .await?;
            Serving {
                projector,
                _nats: loaded.nats,
                _stores: loaded.stores,
                entries,
                years: loaded.years,
            }
        }
    };
    let address = serving.projector.address()?;
    let duration = if context.quick {
        LOAD_DURATION_QUICK
    } else {
        LOAD_DURATION
    };
    report.note(format!(
        "(g) queries: projector over {} entries; its API limits raised for the bench \
         (--http-rate-per-second {BENCH_HTTP_RATE_PER_S}, --http-rate-burst \
         {BENCH_HTTP_RATE_PER_S}, --http-concurrency-max {BENCH_HTTP_CONCURRENCY}; \
         defaults 200/s, 400, 64); lot lookups open-loop at {LOT_RATE_PER_S}/s for {} s \
         over {LOT_CONNECTIONS} keep-alive connections, Article 7 reports open-loop at \
         {ARTICLE7_RATE_PER_S}/s over {ARTICLE7_CONNECTIONS} more, latency from each \
         request's scheduled time, no request sent after the window",
        serving.entries,
        duration.as_secs()
    ));

    let mut connection = HttpConnection::open(address).await?;
    let (status, body) = connection.get("/v1/lots").await?;
    anyhow::ensure!(status == 200, "/v1/lots answered {status}");
    let lots: serde_json::Value = serde_json::from_slice(&body).context("/v1/lots")?;
    let lot_ids: Vec<String> = lots["lot_ids"]
        .as_array()
        .context("/v1/lots has no lot_ids")?
        .iter()
        .filter_map(|id| id.as_str().map(str::to_string))
        .collect();
    anyhow::ensure!(!lot_ids.is_empty(), "the ledger has no lots");
    report.figure(
        "queries.lots",
        "lots in the ledger (lookups pick among them at random)",
        lot_ids.len() as f64,
        "lots",
    );
    // The report of the last whole year recorded (what a State files by 30 April), or
    // the only year there is.
    let (first_year, last_year) = serving.years;
    let year = if last_year > first_year {
        last_year - 1
    } else {
        last_year
    };
    let article7_path = format!("/v1/reports/article7/{year}?format=json");

    // Warm-up, untimed as load: each lot once (its first answer is built and cached),
    // then the Article 7 year once.
    let mut cold = Vec::with_capacity(lot_ids.len());
    let mut answer_bytes = Vec::with_capacity(lot_ids.len());
    for lot_id in &lot_ids {
        let path = format!("/v1/lots/{lot_id}");
        let sent = Instant::now();
        let (status, body) = connection.get(&path).await?;
        cold.push(sent.elapsed());
        anyhow::ensure!(status == 200, "{path} answered {status} in the warm-up");
        answer_bytes.push(body.len());
    }
    let cold_lots = percentiles(&mut cold);
    report.figure(
        "queries.lot_cold_p50_us",
        "lot lookup, first answer (warm-up, one at a time) p50",
        cold_lots.p50_us,
        "µs",
    );
    report.figure(
        "queries.lot_cold_max_us",
        "lot lookup, first answer (warm-up, one at a time) max",
        cold_lots.max_us,
        "µs",
    );
    report.figure(
        "queries.lot_answer_kib_mean",
        "lot answer size, mean",
        answer_bytes.iter().sum::<usize>() as f64 / answer_bytes.len() as f64 / 1024.0,
        "KiB",
    );
    report.figure(
        "queries.lot_answer_kib_max",
        "lot answer size, max",
        answer_bytes.iter().copied().max().unwrap_or(0) as f64 / 1024.0,
        "KiB",
    );
    let sent = Instant::now();
    let (status, body) = connection.get(&article7_path).await?;
    anyhow::ensure!(
        status == 200,
        "{article7_path} answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    report.figure(
        "queries.article7_cold_ms",
        &format!("Article 7 {year}, first request"),
        sent.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    drop(connection);
    report.note(
        "(g) the figures under load are for a warm projector: every lot and the Article 7 \
         year were asked for once before the window (the cold first answers are the \
         queries.*_cold_* figures)",
    );

    let lot_paths: Vec<String> = lot_ids.iter().map(|id| format!("/v1/lots/{id}")).collect();
    let (lookups, reports) = tokio::join!(
        open_loop(
            address,
            lot_paths,
            LOT_RATE_PER_S,
            LOT_CONNECTIONS,
            duration
        ),
        open_loop(
            address,
            vec![article7_path.clone()],
            ARTICLE7_RATE_PER_S,
            ARTICLE7_CONNECTIONS,
            duration,
        ),
    );
    let (lookups, reports) = (lookups?, reports?);
    report.figure(
        "queries.lot_rate",
        &format!("lot lookups answered 200 a second of the window (scheduled {LOT_RATE_PER_S}/s)"),
        lookups.samples.latencies.len() as f64 / duration.as_secs_f64(),
        "req/s",
    );
    report.figure(
        "queries.lot_missed",
        "lot lookups scheduled in the window but not sent in it",
        lookups.missed as f64,
        "requests",
    );
    report.figure(
        "queries.lot_late",
        &format!(
            "lot lookups sent over {} ms after their scheduled time",
            LATE_AFTER.as_millis()
        ),
        lookups.late as f64,
        "requests",
    );
    report.figure(
        "queries.lot_failures",
        "lot lookups not answered 200 (non-200 + errors)",
        (lookups.samples.non_200 + lookups.samples.errors) as f64,
        "requests",
    );
    let mut lot_latencies = lookups.samples.latencies.clone();
    anyhow::ensure!(!lot_latencies.is_empty(), "no lot lookup was answered");
    let lot = percentiles(&mut lot_latencies);
    report.figure("queries.lot_p50_us", "lot lookup p50", lot.p50_us, "µs");
    report.figure("queries.lot_p99_us", "lot lookup p99", lot.p99_us, "µs");
    report.figure("queries.lot_max_us", "lot lookup max", lot.max_us, "µs");
    report.figure(
        "queries.article7_requests",
        &format!("Article 7 reports answered 200 (scheduled {ARTICLE7_RATE_PER_S}/s)"),
        reports.samples.latencies.len() as f64,
        "requests",
    );
    report.figure(
        "queries.article7_missed",
        "Article 7 requests scheduled in the window but not sent in it",
        reports.missed as f64,
        "requests",
    );
    report.figure(
        "queries.article7_failures",
        "Article 7 requests not answered 200 (non-200 + errors)",
        (reports.samples.non_200 + reports.samples.errors) as f64,
        "requests",
    );
    if !reports.samples.latencies.is_empty() {
        let mut samples = reports.samples.latencies.clone();
        let article7 = percentiles(&mut samples);
        report.figure(
            "queries.article7_p50_us",
            "Article 7 report p50 (under the lookup load)",
            article7.p50_us,
            "µs",
        );
        report.figure(
            "queries.article7_p99_us",
            "Article 7 report p99 (under the lookup load)",
            article7.p99_us,
            "µs",
        );
    }
    for (what, outcome) in [("lot", &lookups), ("Article 7", &reports)] {
        let samples = &outcome.samples;
        if samples.non_200 + samples.errors > 0 {
            report.note(format!(
                "(g) the {what} figures are not valid: {} non-200 answers and {} errors \
                 (first: {})",
                samples.non_200,
                samples.errors,
                samples.first_problem.as_deref().unwrap_or("-")
            ));
        }
        if outcome.missed > 0 {
            report.note(format!(
                "(g) {what}: {} of {} scheduled requests were not sent within the window \
                 (the projector and this client could not keep up with the schedule)",
                outcome.missed, outcome.scheduled
            ));
        }
    }
    report.target(
        &format!("lot lookup p99 at {LOT_RATE_PER_S} req/s"),
        lot.p99_us / 1e3,
        Compare::Below,
        LOT_P99_TARGET_US / 1e3,
        "ms",
    );
    drop(serving);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Set-up: the export, the server, the ledger

/// A nats-server with LEDGER and CHECKPOINTS loaded, and what a projector needs.
struct Loaded {
    nats: NatsServer,
    trust: PathBuf,
    /// Stores and logs of the projectors, removed at the end.
    stores: tempfile::TempDir,
    /// Entries in LEDGER.
    entries: u64,
    checkpoints: u64,
    years: (i32, i32),
}

async fn load_system(context: &BenchContext, entries: u64) -> anyhow::Result<Loaded> {
    let work = context.work.clone();
    let Export { export, trust } =
        tokio::task::spawn_blocking(move || ensure_export(&work, entries))
            .await
            .context("the export generation task failed")??;
    let nats = NatsServer::start(&context.work, Durability::SyncDefault)?;
    let client = async_nats::connect(&nats.url)
        .await
        .with_context(|| format!("connecting to {}", nats.url))?;
    let js = jetstream::new(client);
    ensure_topology(&js, Replicas(1))
        .await
        .context("creating the streams")?;
    let started = Instant::now();
    let loaded = load_ledger(&js, &export).await?;
    // `generate --entries N` pads to at least N: the scenario's own entries come on top.
    anyhow::ensure!(
        loaded.entries >= entries,
        "{} holds {} entries, fewer than {entries}",
        export.display(),
        loaded.entries
    );
    println!(
        "  (set-up: {} entries and {} checkpoints loaded into LEDGER in {:.1} s)",
        loaded.entries,
        loaded.checkpoints,
        started.elapsed().as_secs_f64()
    );
    let stores = tempfile::Builder::new()
        .prefix("projector-")
        .tempdir_in(&context.work)
        .context("creating the projector's directory")?;
    Ok(Loaded {
        nats,
        trust,
        stores,
        entries: loaded.entries,
        checkpoints: loaded.checkpoints,
        years: loaded.years,
    })
}

struct LedgerLoaded {
    entries: u64,
    checkpoints: u64,
    years: (i32, i32),
}

/// Publishes the export's entries to LEDGER and its checkpoints to CHECKPOINTS as the
/// sequencer and `publish_checkpoint` do, with up to [`PUBLISH_WINDOW`] in flight.
async fn load_ledger(js: &jetstream::Context, export: &Path) -> anyhow::Result<LedgerLoaded> {
    let file =
        std::fs::File::open(export).with_context(|| format!("opening {}", export.display()))?;
    let (chunks, mut received) = mpsc::channel::<Vec<ExportRecord>>(EXPORT_CHUNKS_BUFFERED);
    let path = export.to_path_buf();
    // The export is read on a thread of its own while the records are published.
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut reader = ExportReader::open(file)
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
        let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
        while let Some(record) = reader
            .next_record()
            .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
        {
            chunk.push(record);
            if chunk.len() == EXPORT_CHUNK {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(EXPORT_CHUNK));
                if chunks.blocking_send(full).is_err() {
                    return Ok(());
                }
            }
        }
        if !chunk.is_empty() {
            let _ = chunks.blocking_send(chunk);
        }
        Ok(())
    });

    let mut in_flight: std::collections::VecDeque<(u64, PublishAckFuture)> =
        std::collections::VecDeque::with_capacity(PUBLISH_WINDOW);
    let (mut entries, mut checkpoints) = (0u64, 0u64);
    let mut prev_link = None;
    let (mut first_entry, mut last_entry): (Option<Bytes>, Option<Bytes>) = (None, None);
    while let Some(chunk) = received.recv().await {
        for record in chunk {
            let (subject, message, position) = match record {
                ExportRecord::Header { .. } => continue,
                ExportRecord::Entry(bytes) => {
                    let index = entries;
                    let link = entry_link_hash(&bytes);
                    let mut message = PublishMessage::build()
                        .payload(bytes.clone())
                        .message_id(link.to_hex())
                        .expected_last_sequence(index)
                        // No SUBMISSIONS here: each entry stands for submission index + 1.
                        .header(SUBMISSION_SEQUENCE_HEADER, (index + 1).to_string().as_str());
                    if let Some(prev) = prev_link.replace(link) {
                        message = message.expected_last_message_id(prev.to_hex());
                    }
                    if first_entry.is_none() {
                        first_entry = Some(bytes.clone());
                    }
                    last_entry = Some(bytes);
                    entries += 1;
                    (LEDGER_SUBJECT, message, index)
                }
                ExportRecord::Checkpoint(note) => {
                    let message = PublishMessage::build()
                        .payload(note)
                        .expected_last_sequence(checkpoints);
                    checkpoints += 1;
                    (CHECKPOINTS_SUBJECT, message, checkpoints)
                }
            };
            if in_flight.len() == PUBLISH_WINDOW {
                await_ack(in_flight.pop_front()).await?;
            }
            let future = js
                .send_publish(subject, message)
                .await
                .with_context(|| format!("publishing to {subject} at {position}"))?;
            in_flight.push_back((position, future));
        }
    }
    while let Some(pending) = in_flight.pop_front() {
        await_ack(Some(pending)).await?;
    }
    reader
        .await
        .context("the export reader failed")?
        .context("reading the export")?;
    let year = |bytes: Option<Bytes>| -> anyhow::Result<i32> {
        let bytes = bytes.context("the export holds no entries")?;
        let entry = stockpile_proto::envelope::decode_entry(&bytes)
            .map_err(|error| anyhow::anyhow!("an exported entry: {error}"))?;
        Ok(entry.recorded_at.date().year())
    };
    Ok(LedgerLoaded {
        entries,
        checkpoints,
        years: (year(first_entry)?, year(last_entry)?),
    })
}

async fn await_ack(pending: Option<(u64, PublishAckFuture)>) -> anyhow::Result<()> {
    if let Some((position, future)) = pending {
        future
            .await
            .map_err(|error| anyhow::anyhow!("publishing at {position}: {error}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The projector process

/// A running `stockpile-projector`, killed when dropped.
struct ProjectorProcess {
    child: tokio::process::Child,
    addr_file: PathBuf,
}

impl ProjectorProcess {
    fn start(binary: &Path, loaded: &Loaded, extra: &[&str]) -> anyhow::Result<Self> {
        let dir = loaded.stores.path();
        let addr_file = dir.join("projector.addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("projector.log"))
            .context("opening projector.log")?;
        let child = tokio::process::Command::new(binary)
            .arg("--nats-url")
            .arg(&loaded.nats.url)
            .arg("--trust")
            .arg(&loaded.trust)
            .arg("--store")
            .arg(dir.join("store"))
            .args([
                "--replica",
                REPLICA,
                "--listen",
                "127.0.0.1:0",
                "--addr-file",
            ])
            .arg(&addr_file)
            .arg("--http-rate-per-second")
            .arg(BENCH_HTTP_RATE_PER_S.to_string())
            .arg("--http-rate-burst")
            .arg(BENCH_HTTP_RATE_PER_S.to_string())
            .arg("--http-concurrency-max")
            .arg(BENCH_HTTP_CONCURRENCY.to_string())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(ProjectorProcess { child, addr_file })
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    fn address(&self) -> anyhow::Result<SocketAddr> {
        let text = std::fs::read_to_string(&self.addr_file)
            .with_context(|| format!("reading {}", self.addr_file.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds no address", self.addr_file.display()))
    }

    /// Waits for the address file (written once the store is open and the API listens).
    async fn wait_listening(&self, timeout: Duration) -> anyhow::Result<SocketAddr> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(address) = self.address() {
                return Ok(address);
            }
            self.check_alive()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "the projector did not listen within {timeout:?}"
            );
            tokio::time::sleep(STATUS_POLL).await;
        }
    }

    /// Polls `/v1/status` until `done` says so.
    async fn wait_status(
        &self,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut connection = HttpConnection::open(self.address()?).await?;
        loop {
            self.check_alive()?;
            let (status, body) = connection.get("/v1/status").await?;
            anyhow::ensure!(status == 200, "/v1/status answered {status}");
            let value: serde_json::Value =
                serde_json::from_slice(&body).context("reading /v1/status")?;
            if done(&value) {
                return Ok(value);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the projector did not get there within {timeout:?}: {value}"
            );
            tokio::time::sleep(STATUS_POLL).await;
        }
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        // `try_wait` needs `&mut`; the pid's /proc entry says as much.
        let pid = self.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|end| stat.get(end + 2..end + 3))
            .unwrap_or("X");
        anyhow::ensure!(
            pid != 0 && state != "Z" && state != "X",
            "the projector exited; see {}",
            self.addr_file.with_file_name("projector.log").display()
        );
        Ok(())
    }

    /// SIGTERM (the projector flushes and exits), then SIGKILL after [`STOP_TIMEOUT`].
    async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid();
        if pid != 0 {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for the projector")?;
            }
            Err(_) => {
                self.child.kill().await.context("killing the projector")?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// A small HTTP/1.1 keep-alive client: GET only, answers with a Content-Length (all of the
// projector's are).

struct HttpConnection {
    stream: BufStream<TcpStream>,
    host: String,
}

impl HttpConnection {
    async fn open(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to the projector at {address}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        Ok(HttpConnection {
            stream: BufStream::new(stream),
            host: address.to_string(),
        })
    }

    /// Status and body of `GET path`.
    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        tokio::time::timeout(HTTP_TIMEOUT, self.get_inner(path))
            .await
            .with_context(|| format!("GET {path}: no answer within {HTTP_TIMEOUT:?}"))?
    }

    async fn get_inner(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.stream.write_all(request.as_bytes()).await?;
        self.stream.flush().await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("GET {path}: not an HTTP status line: {line:?}"))?;
        let mut length = None;
        loop {
            line.clear();
            anyhow::ensure!(
                self.stream.read_line(&mut line).await? > 0,
                "GET {path}: the connection closed in the headers"
            );
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.with_context(|| format!("GET {path}: no Content-Length"))?;
        anyhow::ensure!(
            length <= HTTP_BODY_MAX,
            "GET {path}: a body of {length} bytes"
        );
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, body))
    }
}

// ---------------------------------------------------------------------------------------
// The load

#[derive(Debug, Default)]
struct Samples {
    latencies: Vec<Duration>,
    non_200: u64,
    errors: u64,
    first_problem: Option<String>,
}

impl Samples {
    fn merge(&mut self, other: Samples) {
        self.latencies.extend(other.latencies);
        self.non_200 += other.non_200;
        self.errors += other.errors;
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
    }

    fn problem(&mut self, problem: String) {
        self.first_problem.get_or_insert(problem);
    }
}

/// What one open-loop load got.
struct LoadOutcome {
    samples: Samples,
    /// Requests the schedule held for the window.
    scheduled: u64,
    /// Scheduled in the window but not sent before it ended.
    missed: u64,
    /// Sent more than [`LATE_AFTER`] after their scheduled time.
    late: u64,
}

/// One request to make: when it was due, and which path.
struct Due {
    at: Instant,
    path: usize,
}

/// Requests for `paths` (picked at random) at `rate` a second for `duration`, over
/// `connections` keep-alive connections, latency from each request's scheduled time.
/// Nothing is sent once the window is over: what is still queued then is missed.
async fn open_loop(
    address: SocketAddr,
    paths: Vec<String>,
    rate: u32,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadOutcome> {
    let scheduled = (u128::from(rate) * duration.as_millis() / 1_000) as u64;
    let interval = Duration::from_secs(1) / rate;
    let paths = Arc::new(paths);
    let mut opened = Vec::with_capacity(connections);
    for _ in 0..connections {
        opened.push(HttpConnection::open(address).await?);
    }
    let (due_tx, due_rx) = mpsc::unbounded_channel::<Due>();
    let due_rx = Arc::new(tokio::sync::Mutex::new(due_rx));
    let start = Instant::now();
    let end = start + duration;
    // The schedule runs on a thread of its own: a thread's sleep is precise to tens of
    // microseconds, where the runtime's timer wheel rounds to milliseconds.
    let count = paths.len();
    let scheduler = std::thread::spawn(move || -> u64 {
        let mut rng = rand::thread_rng();
        for i in 0..scheduled {
            let at = start + interval * u32::try_from(i).unwrap_or(u32::MAX);
            let now = Instant::now();
            if now >= end {
                // The window is over before this one could even be scheduled.
                return scheduled - i;
            }
            if at > now {
                std::thread::sleep(at - now);
            }
            let path = rng.gen_range(0..count);
            if due_tx.send(Due { at, path }).is_err() {
                return scheduled - i;
            }
        }
        0
    });
    let mut workers = Vec::with_capacity(connections);
    for mut connection in opened {
        let (due_rx, paths) = (due_rx.clone(), paths.clone());
        workers.push(tokio::spawn(async move {
            let (mut samples, mut missed, mut late) = (Samples::default(), 0u64, 0u64);
            loop {
                let next = due_rx.lock().await.recv().await;
                let Some(due) = next else { break };
                let now = Instant::now();
                if now >= end {
                    missed += 1;
                    continue;
                }
                if now.duration_since(due.at) > LATE_AFTER {
                    late += 1;
                }
                let path = &paths[due.path];
                match connection.get(path).await {
                    Ok((200, _)) => samples.latencies.push(due.at.elapsed()),
                    Ok((status, body)) => {
                        samples.non_200 += 1;
                        samples.problem(format!(
                            "{path}: {status} {}",
                            String::from_utf8_lossy(&body[..body.len().min(200)])
                        ));
                    }
                    Err(error) => {
                        samples.errors += 1;
                        samples.problem(format!("{error:#}"));
                        // The connection is in an unknown state: open another.
                        match HttpConnection::open(address).await {
                            Ok(fresh) => connection = fresh,
                            Err(_) => break,
                        }
                    }
                }
            }
            (samples, missed, late)
        }));
    }
    let mut outcome = LoadOutcome {
        samples: Samples::default(),
        scheduled,
        missed: 0,
        late: 0,
    };
    for worker in workers {
        let (samples, missed, late) = worker.await.context("a load worker failed")?;
        outcome.samples.merge(samples);
        outcome.missed += missed;
        outcome.late += late;
    }
    outcome.missed += scheduler
        .join()
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))?;
    Ok(outcome)
}
