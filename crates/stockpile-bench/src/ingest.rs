//! (b) end-to-end ingest: emitter SDK → SUBMISSIONS → sequencer → LEDGER, acknowledged.
//!
//! A real nats-server and the real `stockpile-sequencer` binary; in this process, one
//! registrar emitter writes the base events and then [`EMITTERS`] emitters (the SDK, each
//! with its own durable outbox and depot key) emit bulk lot declarations as fast as
//! their outboxes take them for a fixed time. The figure is events emitted divided by
//! the time until LEDGER acknowledged the last of them; the steady rate over the middle
//! of the run is printed too. Afterwards `stockpile verify --nats` checks that every event
//! is an accepted entry, so the figure counts real work.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt as _;
use stockpile_core::events::Event;
use stockpile_core::events::Role;
use stockpile_core::time::TimestampMs;
use stockpile_emitter::{Emitter, EmitterConfig, EventDraft, RoleKey};
use stockpile_nats::NatsConfig;
use stockpile_nats::topology::{LEDGER_STREAM, Replicas, ensure_topology, submit_subject};
use stockpile_proto::envelope::sign_event;

use crate::BenchContext;
use crate::publish::{DURABILITIES, PUBLISH_WINDOW, figure_key, key_part};
use crate::report::{Compare, Report, section};
use crate::server::{Durability, NatsServer, cpu_seconds, sibling_binary};
use crate::workload::{BenchKeys, ORIGIN, base_events, bulk_lot};

/// Emitting services running at once, each with its own outbox and depot key.
pub const EMITTERS: usize = 4;
/// Emits in flight per emitter (its outbox assigns sequences in call order).
pub const EMITS_IN_FLIGHT: usize = 256;
/// Backlog for the sequencer alone, by durability (fsync per message is ~30× slower).
const BACKLOG_SYNC_DEFAULT: u64 = 200_000;
const BACKLOG_SYNC_ALWAYS: u64 = 20_000;
/// How long the emitters emit.
const EMIT_FOR: Duration = Duration::from_secs(20);
const EMIT_FOR_QUICK: Duration = Duration::from_secs(5);
/// Longest wait for the ledger to take what was emitted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(900);
/// How long the sequencer may take to create the streams.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Target: events per second end to end.
const INGEST_TARGET_PER_S: f64 = 50_000.0;
/// Target: end-to-end ingest against raw publish on the same settings.
const INGEST_TARGET_RATIO: f64 = 0.25;

pub async fn run(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(b) end-to-end ingest: SDK → SUBMISSIONS → sequencer → LEDGER");
    report.note(format!(
        "{EMITTERS} emitters (SDK, sled outbox flushed before each emit returns, one depot key each, {EMITS_IN_FLIGHT} emits in flight) + the stockpile-sequencer binary; bulk LotDeclared events, all accepted"
    ));
    for durability in DURABILITIES {
        let server = NatsServer::start(&context.work, durability)?;
        let figure = ingest_once(&server, context)
            .await
            .with_context(|| format!("ingest with {}", durability.short()))?;
        let part = key_part(durability);
        let rate = report.rate(
            &format!("ingest.{part}.events_per_s"),
            &format!("end-to-end ingest, {}", durability.short()),
            figure.events,
            figure.elapsed,
            "events/s",
        );
        report.figure(
            &format!("ingest.{part}.steady_events_per_s"),
            &format!("  steady rate over the middle half, {}", durability.short()),
            figure.steady_per_s,
            "events/s",
        );
        report.figure(
            &format!("ingest.{part}.emit_events_per_s"),
            &format!("  SDK emit (durable in the outbox), {}", durability.short()),
            figure.events as f64 / figure.emit_elapsed.as_secs_f64(),
            "events/s",
        );
        for (name, seconds) in &figure.cpu {
            report.figure(
                &format!("ingest.{part}.cpu_ms_per_1000.{name}"),
                &format!("  CPU of {name} per 1,000 events"),
                seconds * 1e6 / figure.events as f64,
                "ms",
            );
        }
        report.target(
            &format!("(b) ingest ≥ 50,000 events/s ({})", durability.short()),
            rate,
            Compare::AtLeast,
            INGEST_TARGET_PER_S,
            "events/s",
        );
        if let Some(raw) = report.value(&figure_key(durability)) {
            report.target(
                &format!("(b) ingest / raw publish ({})", durability.short()),
                rate / raw,
                Compare::AtLeast,
                INGEST_TARGET_RATIO,
                "×",
            );
        }
        report.note(format!(
            "durability {}: {}",
            durability.short(),
            durability.describe()
        ));

        // The sequencer alone, on a backlog published beforehand: what the pipeline
        // behind the SDK can take.
        let server = NatsServer::start(&context.work, durability)?;
        let backlog = backlog_size(durability, context.quick);
        let (entries, elapsed, cpu) = sequencer_alone(&server, context, backlog)
            .await
            .with_context(|| format!("sequencer alone with {}", durability.short()))?;
        report.rate(
            &format!("ingest.{part}.sequencer_alone_per_s"),
            &format!(
                "sequencer alone on a backlog of {entries} submissions, {}",
                durability.short()
            ),
            entries,
            elapsed,
            "entries/s",
        );
        for (name, seconds) in cpu {
            report.figure(
                &format!("ingest.{part}.sequencer_alone_cpu_ms_per_1000.{name}"),
                &format!("  CPU of {name} per 1,000 entries"),
                seconds * 1e6 / entries as f64,
                "ms",
            );
        }
    }
    Ok(())
}

/// Submissions in the sequencer-alone backlog.
fn backlog_size(durability: Durability, quick: bool) -> u64 {
    let full = match durability {
        Durability::SyncDefault => BACKLOG_SYNC_DEFAULT,
        Durability::SyncAlways => BACKLOG_SYNC_ALWAYS,
    };
    if quick { full / 10 } else { full }
}

/// Publishes the base and `bulk` signed submissions to SUBMISSIONS (untimed), then starts
/// the sequencer and times it until LEDGER holds them all.
async fn sequencer_alone(
    server: &NatsServer,
    context: &BenchContext,
    bulk: u64,
) -> anyhow::Result<(u64, Duration, Vec<(&'static str, f64)>)> {
    use rayon::prelude::*;
    let dir = tempfile::Builder::new()
        .prefix("sequencer-")
        .tempdir_in(&context.work)
        .context("creating the sequencer directory")?;
    let keys = BenchKeys::new(EMITTERS);
    let (trust_path, log_key_path) = write_key_files(&keys, dir.path())?;
    let js = jetstream::new(
        async_nats::connect(&server.url)
            .await
            .context("connecting to nats-server")?,
    );
    ensure_topology(&js, Replicas(1)).await?;

    let now = TimestampMs(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(i64::MAX),
    );
    let sign = |key: &stockpile_core::keys::SignerKey, sequence: u64, body| {
        let event = Event {
            event_id: format!("{}-{sequence}", key.name()),
            origin: ORIGIN.into(),
            actor: "benchmark".into(),
            emitter_sequence: sequence,
            occurred_at: now,
            evidence: Vec::new(),
            body,
        };
        (
            format!("{}/{sequence}", key.name()),
            Bytes::from(sign_event(&event, key)),
        )
    };
    let mut submissions: Vec<(String, Bytes)> = base_events(&keys)
        .into_iter()
        .enumerate()
        .map(|(i, body)| sign(&keys.registrar, i as u64 + 1, body))
        .collect();
    let base = submissions.len() as u64;
    let per_key = bulk / EMITTERS as u64;
    let bulk_signed: Vec<(String, Bytes)> = (0..per_key)
        .into_par_iter()
        .flat_map_iter(|n| {
            keys.depots
                .iter()
                .enumerate()
                .map(move |(k, key)| (k, key, n))
        })
        .map(|(k, key, n)| sign(key, n + 1, bulk_lot(k, n)))
        .collect();
    submissions.extend(bulk_signed);
    let total = submissions.len() as u64;
    for chunk in submissions.chunks(PUBLISH_WINDOW) {
        let mut acks = Vec::with_capacity(chunk.len());
        for (id, payload) in chunk {
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .message_id(id.as_str());
            acks.push(
                js.send_publish(submit_subject("bench"), message)
                    .await
                    .context("publishing the backlog")?,
            );
        }
        futures::future::try_join_all(acks.into_iter().map(std::future::IntoFuture::into_future))
            .await
            .context("publishing the backlog")?;
    }

    let started = Instant::now();
    let sequencer = Sequencer::start(server, &trust_path, &log_key_path, dir.path())?;
    let cpu_before = cpu_now(server, &sequencer);
    // ensure_topology made LEDGER above, so its size can be read from the start.
    wait_for_ledger(&js, total).await?;
    let elapsed = started.elapsed();
    let cpu_after = cpu_now(server, &sequencer);
    let verified = verify_ledger(&server.url, &trust_path)?;
    anyhow::ensure!(
        verified.accepted == total && verified.entries == total && verified.findings_total == 0,
        "the ledger after the backlog: {} entries, {} accepted, {} findings; {total} accepted expected ({base} base)",
        verified.entries,
        verified.accepted,
        verified.findings_total
    );
    let cpu = cpu_before
        .iter()
        .zip(&cpu_after)
        .filter(|((name, _), _)| !name.starts_with("emitters"))
        .map(|((name, before), (_, after))| (*name, after - before))
        .collect();
    Ok((total, elapsed, cpu))
}

/// What one ingest run measured.
struct IngestFigure {
    events: u64,
    /// From the first emit until LEDGER acknowledged the last event.
    elapsed: Duration,
    /// Until the last emit returned.
    emit_elapsed: Duration,
    steady_per_s: f64,
    /// CPU seconds by process.
    cpu: Vec<(&'static str, f64)>,
}

async fn ingest_once(server: &NatsServer, context: &BenchContext) -> anyhow::Result<IngestFigure> {
    let dir = tempfile::Builder::new()
        .prefix("ingest-")
        .tempdir_in(&context.work)
        .context("creating the ingest directory")?;
    let keys = BenchKeys::new(EMITTERS);
    let (trust_path, log_key_path) = write_key_files(&keys, dir.path())?;
    let sequencer = Sequencer::start(server, &trust_path, &log_key_path, dir.path())?;

    let js = jetstream::new(
        async_nats::connect(&server.url)
            .await
            .context("connecting to nats-server")?,
    );
    let deadline = Instant::now() + START_TIMEOUT;
    while js.get_stream(LEDGER_STREAM).await.is_err() {
        if Instant::now() > deadline {
            bail!("the sequencer did not create the streams");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The base events, through the SDK, waited for.
    let nats = NatsConfig::new(server.url.clone());
    let registrar = Emitter::open(EmitterConfig::new(
        "registry",
        ORIGIN,
        vec![RoleKey {
            role: Role::Registrar,
            key: keys.registrar.clone(),
        }],
        dir.path().join("outbox-registry"),
        nats.clone(),
    ))
    .await?;
    let mut pending = Vec::new();
    for body in base_events(&keys) {
        pending.push(registrar.emit(EventDraft::new("benchmark", body)).await?);
    }
    let mut base = 0;
    for event in &pending {
        let receipt = registrar
            .wait_for_receipt(&event.key_id, event.emitter_sequence, START_TIMEOUT)
            .await?
            .context("the base events were not sequenced in time")?;
        anyhow::ensure!(
            receipt.receipt.accepted,
            "base event {} was refused: {:?}",
            event.event_id,
            receipt.receipt.rejection_reason
        );
        base = receipt.receipt.index + 1;
    }
    registrar.shutdown().await?;

    let mut emitters = Vec::with_capacity(EMITTERS);
    for (i, depot) in keys.depots.iter().enumerate() {
        emitters.push(Arc::new(
            Emitter::open(EmitterConfig::new(
                format!("depot{i}"),
                ORIGIN,
                vec![RoleKey {
                    role: Role::Depot,
                    key: depot.clone(),
                }],
                dir.path().join(format!("outbox-depot{i}")),
                nats.clone(),
            ))
            .await?,
        ));
    }

    let emit_for = if context.quick {
        EMIT_FOR_QUICK
    } else {
        EMIT_FOR
    };
    let cpu_before = cpu_now(server, &sequencer);
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let emitted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, emitter) in emitters.iter().enumerate() {
        let emitter = emitter.clone();
        let stop = stop.clone();
        let emitted = emitted.clone();
        tasks.push(tokio::spawn(async move {
            let next = AtomicU64::new(0);
            let stream = futures::stream::repeat(())
                .take_while(|()| std::future::ready(!stop.load(Ordering::Relaxed)))
                .map(|()| {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let emitter = emitter.clone();
                    async move {
                        emitter
                            .emit(EventDraft::new("benchmark", bulk_lot(i, n)))
                            .await
                    }
                })
                .buffer_unordered(EMITS_IN_FLIGHT);
            futures::pin_mut!(stream);
            while let Some(result) = stream.next().await {
                result.context("emitting")?;
                emitted.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }

    // Sample the ledger's size while the emitters run, for the steady rate.
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    while started.elapsed() < emit_for {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let size = ledger_size(&js).await?;
        tracing::info!(
            emitted = emitted.load(Ordering::Relaxed),
            ledger = size,
            "ingesting"
        );
        samples.push((started.elapsed(), size));
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.context("an emitter task panicked")??;
    }
    let emit_elapsed = started.elapsed();
    let events = emitted.load(Ordering::Relaxed);
    let wanted = base + events;
    wait_for_ledger(&js, wanted).await?;
    let elapsed = started.elapsed();
    let cpu_after = cpu_now(server, &sequencer);
    let first = emitters[0]
        .wait_for_receipt(keys.depots[0].name(), 1, START_TIMEOUT)
        .await?
        .context("no receipt for the first bulk event")?;
    anyhow::ensure!(
        first.receipt.accepted,
        "the first bulk event was refused: {:?} {:?}",
        first.receipt.rejection_code,
        first.receipt.rejection_reason
    );
    for emitter in &emitters {
        emitter.shutdown().await?;
    }

    let verified = verify_ledger(&server.url, &trust_path)?;
    anyhow::ensure!(
        verified.accepted == wanted && verified.entries == wanted && verified.findings_total == 0,
        "the ledger after ingest: {} entries, {} accepted, {} findings; {wanted} accepted expected",
        verified.entries,
        verified.accepted,
        verified.findings_total
    );
    let steady_per_s = steady_rate(&samples);
    let cpu = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|((name, before), (_, after))| (*name, after - before))
        .collect();
    Ok(IngestFigure {
        events,
        elapsed,
        emit_elapsed,
        steady_per_s,
        cpu,
    })
}

/// The ledger's growth rate between a quarter and three quarters of the emitting time.
fn steady_rate(samples: &[(Duration, u64)]) -> f64 {
    if samples.len() < 4 {
        return f64::NAN;
    }
    let (t0, n0) = samples[samples.len() / 4];
    let (t1, n1) = samples[samples.len() * 3 / 4];
    (n1.saturating_sub(n0)) as f64 / (t1 - t0).as_secs_f64().max(1e-9)
}

/// Writes the trust root and the log key the sequencer reads; returns their paths.
fn write_key_files(keys: &BenchKeys, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let trust = dir.join("trust.json");
    std::fs::write(&trust, keys.trust_root().to_json()).context("writing trust.json")?;
    let log_key = dir.join("log.key");
    std::fs::write(&log_key, keys.log.to_string()).context("writing log.key")?;
    Ok((trust, log_key))
}

/// Waits until LEDGER holds `wanted` entries, at most [`DRAIN_TIMEOUT`].
async fn wait_for_ledger(js: &jetstream::Context, wanted: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        let size = ledger_size(js).await?;
        if size >= wanted {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the ledger holds {size} entries; {wanted} expected after {DRAIN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ledger_size(js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut stream = js
        .get_stream(LEDGER_STREAM)
        .await
        .context("opening LEDGER")?;
    Ok(stream
        .info()
        .await
        .context("reading LEDGER")?
        .state
        .messages)
}

fn cpu_now(server: &NatsServer, sequencer: &Sequencer) -> Vec<(&'static str, f64)> {
    vec![
        ("nats-server", cpu_seconds(server.pid()).unwrap_or(f64::NAN)),
        (
            "sequencer",
            cpu_seconds(sequencer.child.id()).unwrap_or(f64::NAN),
        ),
        (
            "emitters (this process)",
            cpu_seconds(std::process::id()).unwrap_or(f64::NAN),
        ),
    ]
}

/// The counts `stockpile verify --json` reports.
#[derive(serde::Deserialize)]
struct VerifiedCounts {
    entries: u64,
    accepted: u64,
    findings_total: u64,
}

fn verify_ledger(url: &str, trust: &Path) -> anyhow::Result<VerifiedCounts> {
    let output = Command::new(sibling_binary("stockpile")?)
        .args(["verify", "--json", "--nats", url, "--trust"])
        .arg(trust)
        .env_remove("STOCKPILE_NATS_USER")
        .env_remove("STOCKPILE_NATS_PASSWORD")
        .stderr(Stdio::null())
        .output()
        .context("running stockpile verify --nats")?;
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "stockpile verify --nats exited {} without a report",
            output.status
        )
    })
}

/// The sequencer process, killed when dropped.
struct Sequencer {
    child: Child,
}

impl Sequencer {
    fn start(
        server: &NatsServer,
        trust: &Path,
        log_key: &Path,
        dir: &Path,
    ) -> anyhow::Result<Sequencer> {
        let log = std::fs::File::create(dir.join("sequencer.log")).context("sequencer.log")?;
        let child = Command::new(sibling_binary("stockpile-sequencer")?)
            .args(["--nats-url", &server.url, "--trust"])
            .arg(trust)
            .arg("--log-key")
            .arg(log_key)
            .env_remove("STOCKPILE_NATS_USER")
            .env_remove("STOCKPILE_NATS_PASSWORD")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting stockpile-sequencer")?;
        Ok(Sequencer { child })
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
