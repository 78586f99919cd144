//! (a) raw JetStream async publish of messages the size of a submission, into a stream
//! configured like SUBMISSIONS, on the same server settings as the ingest benchmark: the
//! store's own limit that end-to-end ingest is compared with.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use futures::future::try_join_all;
use stockpile_core::events::{Event, Evidence};
use stockpile_core::hash::Hash32;
use stockpile_core::time::TimestampMs;
use stockpile_nats::topology::{Replicas, ensure_topology, submit_subject};
use stockpile_proto::envelope::sign_event;

use crate::BenchContext;
use crate::report::{Report, section};
use crate::server::{Durability, NatsServer};
use crate::workload::{BenchKeys, ORIGIN, bulk_lot};

/// Publishes in flight before their acknowledgements are awaited (as `nats bench` and
/// `shared/reference/stack.md` measure: "pipelined, acks awaited per 1,000").
pub const PUBLISH_WINDOW: usize = 1_000;
/// How long each durability setting is measured for.
const MEASURE_FOR: Duration = Duration::from_secs(15);
const MEASURE_FOR_QUICK: Duration = Duration::from_secs(4);

/// The durability settings every NATS figure is taken under.
pub const DURABILITIES: [Durability; 2] = [Durability::SyncDefault, Durability::SyncAlways];

/// The key of a durability's raw publish figure (for the ingest ratio).
pub fn figure_key(durability: Durability) -> String {
    format!("publish.{}.msgs_per_s", key_part(durability))
}

pub fn key_part(durability: Durability) -> &'static str {
    match durability {
        Durability::SyncAlways => "sync_always",
        Durability::SyncDefault => "sync_default",
    }
}

/// A real bulk submission, as the ingest benchmark's emitters sign them.
pub fn sample_submission() -> Vec<u8> {
    let keys = BenchKeys::new(1);
    let event = Event {
        event_id: "depot-depot-0.bench.example-1".into(),
        origin: ORIGIN.into(),
        actor: "benchmark".into(),
        emitter_sequence: 1,
        occurred_at: TimestampMs(1_700_000_000_000),
        evidence: vec![Evidence {
            kind: "log".into(),
            sha256: Hash32::digest(b"evidence"),
            description: "benchmark".into(),
        }],
        body: bulk_lot(0, 1),
    };
    sign_event(&event, &keys.depots[0])
}

pub async fn run(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(a) raw JetStream async publish");
    let payload = Bytes::from(sample_submission());
    report.note(format!(
        "messages of {} bytes (a signed LotDeclared submission) to a stream configured like SUBMISSIONS, unique Nats-Msg-Id each, {PUBLISH_WINDOW} in flight",
        payload.len()
    ));
    let measure_for = if context.quick {
        MEASURE_FOR_QUICK
    } else {
        MEASURE_FOR
    };
    for durability in DURABILITIES {
        let server = NatsServer::start(&context.work, durability)?;
        let client = async_nats::connect(&server.url)
            .await
            .context("connecting to nats-server")?;
        let js = jetstream::new(client);
        ensure_topology(&js, Replicas(1)).await?;
        let (count, elapsed) = publish_for(&js, payload.clone(), measure_for).await?;
        report.rate(
            &figure_key(durability),
            &format!("raw publish, {}", durability.short()),
            count,
            elapsed,
            "msg/s",
        );
    }
    Ok(())
}

/// Publishes windows of [`PUBLISH_WINDOW`] messages for about `measure_for`; returns how
/// many were acknowledged and in what time.
async fn publish_for(
    js: &jetstream::Context,
    payload: Bytes,
    measure_for: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let subject = submit_subject("bench");
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < measure_for {
        let mut window: Vec<PublishAckFuture> = Vec::with_capacity(PUBLISH_WINDOW);
        for _ in 0..PUBLISH_WINDOW {
            sent += 1;
            let message = jetstream::message::PublishMessage::build()
                .payload(payload.clone())
                .message_id(format!("bench.{sent}"));
            window.push(
                js.send_publish(subject.clone(), message)
                    .await
                    .context("publishing")?,
            );
        }
        try_join_all(window.into_iter().map(std::future::IntoFuture::into_future))
            .await
            .context("awaiting publish acknowledgements")?;
    }
    Ok((sent, started.elapsed()))
}
