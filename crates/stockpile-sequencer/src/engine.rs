//! The sequencer's loop body: rebuild from LEDGER, process one batch of submissions,
//! publish fenced entries, record receipts, acknowledge, sign checkpoints.

use std::collections::VecDeque;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    context::{PublishAckFuture, PublishError, PublishErrorKind},
    message::PublishMessage,
    publish::PublishAck,
};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use stockpile_core::merkle::leaf_hash;
use stockpile_core::time::TimestampMs;
use stockpile_ledger::appender::{Appended, Appender};
use stockpile_nats::checkpoints::{CheckpointPublish, latest_checkpoint, publish_checkpoint};
use stockpile_nats::ledger::read_ledger;
use stockpile_nats::proofs::{ProofReply, ProofRequest};
use stockpile_nats::receipts::{Receipt, receipts_bucket, record_receipt};
use stockpile_nats::topology::{
    LEDGER_SUBJECT, PROOF_INCLUSION_SUBJECT, PROOF_QUEUE_GROUP, SUBMISSION_SEQUENCE_HEADER,
    SUBMISSIONS_STREAM,
};
use stockpile_proto::envelope::{EntryVerdict, decode_submission};

use crate::{FETCH_WAIT, RecordingClock, SUBMISSION_ACK_WAIT, SequencerConfig};

/// Entries restored per batch when rebuilding from LEDGER (signatures checked in parallel
/// per batch).
const RESTORE_BATCH: usize = 1024;

/// Conflicts in a row after which the sequencer gives up: another sequencer keeps winning
/// every race, so this one is not needed, and spinning would only load the server.
const CONFLICTS_IN_A_ROW_MAX: u32 = 1_000;

/// The appender shared with the proof responder, which only reads signed checkpoints and
/// the tree below them.
type SharedAppender = Arc<Mutex<Appender>>;

pub struct Sequencer {
    config: SequencerConfig,
    js: jetstream::Context,
    appender: SharedAppender,
    /// Highest SUBMISSIONS stream sequence already in the ledger.
    submissions_done: u64,
    consumer: PullConsumer,
    /// CHECKPOINTS stream sequence of the latest checkpoint we know of.
    checkpoints_last_sequence: u64,
    last_checkpoint_at: Instant,
    conflicts_in_a_row: u32,
    receipts: async_nats::jetstream::kv::Store,
}

impl Sequencer {
    /// Rebuilds the state from LEDGER and CHECKPOINTS, re-records the receipts of the last
    /// entries (a crash may have cut their recording short), positions the consumer, and
    /// starts answering proof requests.
    pub async fn start(
        config: SequencerConfig,
        client: async_nats::Client,
        js: jetstream::Context,
    ) -> anyhow::Result<Sequencer> {
        let receipts = receipts_bucket(&js).await?;
        let started = Instant::now();
        let (appender, submissions_done, tail, checkpoints_last_sequence) =
            rebuild(&config, &js).await?;
        let size = appender.size();
        let appender = Arc::new(Mutex::new(appender));
        tracing::info!(
            entries = size,
            submissions_done,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "sequencer state rebuilt from the ledger"
        );
        let consumer = position_consumer(&js, &config.instance, submissions_done).await?;
        let sequencer = Sequencer {
            js,
            appender: appender.clone(),
            submissions_done,
            consumer,
            checkpoints_last_sequence,
            last_checkpoint_at: Instant::now(),
            conflicts_in_a_row: 0,
            receipts,
            config,
        };
        sequencer.record_receipts(&tail).await?;
        spawn_proof_responder(client, appender).await?;
        Ok(sequencer)
    }

    pub fn consumer(&self) -> PullConsumer {
        self.consumer.clone()
    }

    pub fn batch_max(&self) -> usize {
        self.config.batch_max
    }

    pub fn size(&self) -> u64 {
        self.lock().size()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Appender> {
        self.appender
            .lock()
            .expect("the appender lock is never held across a panic")
    }

    /// Appends one fetched batch. Returns after every entry is acknowledged by LEDGER and
    /// every submission acknowledged, or after a resynchronisation.
    pub async fn process(&mut self, messages: Vec<jetstream::Message>) -> anyhow::Result<()> {
        let mut batch: Vec<(u64, jetstream::Message)> = Vec::with_capacity(messages.len());
        let mut gap = false;
        for message in messages {
            let sequence = message
                .info()
                .map_err(|error| anyhow::anyhow!("submission without metadata: {error}"))?
                .stream_sequence;
            let next = self.submissions_done + 1 + batch.len() as u64;
            if sequence < next {
                // Already in the ledger (redelivery after a crash or a lost race).
                ack(&message).await;
                continue;
            }
            if sequence > next {
                tracing::warn!(
                    expected = next,
                    delivered = sequence,
                    "submissions delivered out of order; repositioning"
                );
                gap = true;
                break;
            }
            batch.push((sequence, message));
        }
        if batch.is_empty() {
            if gap || self.consumer_is_stuck().await? {
                self.resync().await?;
            }
            return Ok(());
        }

        let now = now_ms();
        let payloads: Vec<Bytes> = batch
            .iter()
            .map(|(_, message)| message.payload.clone())
            .collect();
        let times: Vec<TimestampMs> = match self.config.clock {
            RecordingClock::System => vec![now; payloads.len()],
            // The appender raises each to the previous entry's time.
            RecordingClock::EventTime => payloads
                .iter()
                .map(|payload| {
                    decode_submission(payload)
                        .map(|submission| submission.event.occurred_at)
                        .unwrap_or(TimestampMs(i64::MIN))
                })
                .collect(),
        };
        let (mut prev_link, appended) = {
            let mut appender = self.lock();
            (
                appender.head_link(),
                appender.append_batch_at(&payloads, &times),
            )
        };

        // The fence is two-fold. The expected last sequence pins the position; the
        // expected last message id (each entry's id is its link hash) pins the content
        // before it. Position alone is not enough with pipelined appends: if another
        // sequencer slipped in one entry, our next entry's expected position would match
        // again and land on a chain it does not extend.
        //
        // On replicated streams the entries go one at a time instead, each published
        // only once the one before is acknowledged, fenced by position alone: then every
        // entry extends a chain this sequencer knows (read back, or acknowledged at the
        // position just before), and no message carries an expected last message id.
        // nats-server 2.15.1 checks that header again on each replica as it applies the
        // entry, against the last message id the replica remembers. A replica SIGKILLed
        // and restarted during ingest fails that check once it has caught up ("last msgid
        // mismatch", a critical write error) and never becomes current again, which
        // leaves the stream one fault from losing its quorum (both runs of
        // tests/it/cluster.rs made with the header; docs/reliability.md).
        let pipelined = self.config.replicas <= 1;
        let mut outcomes: Vec<Result<PublishAck, PublishError>> =
            Vec::with_capacity(appended.len());
        let mut futures: Vec<PublishAckFuture> = Vec::with_capacity(appended.len());
        let mut send_error = None;
        for (entry, (sequence, _)) in appended.iter().zip(&batch) {
            let mut message = PublishMessage::build()
                .payload(entry.entry.clone())
                .message_id(entry.link.to_hex())
                .expected_last_sequence(entry.index)
                .header(SUBMISSION_SEQUENCE_HEADER, sequence.to_string().as_str());
            if pipelined && entry.index > 0 {
                message = message.expected_last_message_id(prev_link.to_hex());
            }
            prev_link = entry.link;
            match self.js.send_publish(LEDGER_SUBJECT, message).await {
                Ok(future) if pipelined => futures.push(future),
                Ok(future) => {
                    let outcome = future.await;
                    let failed = outcome.is_err();
                    outcomes.push(outcome);
                    if failed {
                        break;
                    }
                }
                Err(error) => {
                    send_error = Some(error);
                    break;
                }
            }
        }
        // Every queued publish is awaited, even after a failure, so no outcome is lost;
        // all at once, because each acknowledgement's timeout starts when it is awaited:
        // one after the other, the acknowledgements a dropped connection lost would
        // stall the sequencer for JETSTREAM_TIMEOUT each (minutes for a batch).
        outcomes.extend(join_all(futures.into_iter().map(IntoFuture::into_future)).await);
        let mut stored = 0usize;
        let mut failure = send_error.map(|error| format!("sending entry: {error}"));
        for (outcome, entry) in outcomes.into_iter().zip(&appended) {
            match outcome {
                Ok(ack) if failure.is_none() => {
                    // A duplicate can only be this very entry (its id is its hash), and
                    // the fence put it at this position either way.
                    assert_eq!(
                        ack.sequence,
                        entry.index + 1,
                        "the fence guarantees stream sequence = index + 1"
                    );
                    stored += 1;
                }
                Ok(_) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId
                    ) =>
                {
                    failure.get_or_insert_with(|| {
                        format!(
                            "entry {}: another sequencer appended first ({error})",
                            entry.index
                        )
                    });
                }
                Err(error) => {
                    failure.get_or_insert_with(|| format!("entry {}: {error}", entry.index));
                }
            }
        }

        // What was stored is final: record its receipts and acknowledge its submissions.
        self.record_receipts(&appended[..stored]).await?;
        // One acknowledgement covers the batch: the consumer acknowledges all (`AckPolicy::All`)
        // up to the message acknowledged, and the stored ones are a prefix of the batch.
        if let Some((_, last)) = batch[..stored].last() {
            ack(last).await;
        }
        self.submissions_done += stored as u64;

        if let Some(failure) = failure {
            self.conflicts_in_a_row += 1;
            if self.conflicts_in_a_row > CONFLICTS_IN_A_ROW_MAX {
                bail!(
                    "giving up after {CONFLICTS_IN_A_ROW_MAX} failed appends in a row; last: {failure}"
                );
            }
            tracing::warn!(stored, "ledger append failed, rebuilding: {failure}");
            for (_, message) in &batch[stored..] {
                // Let the server redeliver at once rather than after the ack wait.
                let _ = message.ack_with(AckKind::Nak(None)).await;
            }
            self.resync().await?;
        } else {
            self.conflicts_in_a_row = 0;
            if gap {
                self.consumer =
                    position_consumer(&self.js, &self.config.instance, self.submissions_done)
                        .await?;
            }
            tracing::debug!(
                entries = stored,
                size = self.submissions_done,
                "batch appended"
            );
        }
        Ok(())
    }

    /// True when the consumer has nothing pending yet the submissions stream holds more
    /// than the ledger: the consumer lost its position (deleted, or left behind a gap).
    async fn consumer_is_stuck(&mut self) -> anyhow::Result<bool> {
        let info = self
            .consumer
            .info()
            .await
            .context("reading consumer state")?;
        if info.num_pending > 0 || info.num_ack_pending > 0 {
            return Ok(false);
        }
        let stream = self
            .js
            .get_stream(SUBMISSIONS_STREAM)
            .await
            .context("opening SUBMISSIONS")?;
        let last = stream
            .get_info()
            .await
            .context("reading SUBMISSIONS")?
            .state
            .last_sequence;
        Ok(last > self.submissions_done && info.delivered.stream_sequence >= last)
    }

    /// Throws the in-memory state away and rebuilds it from what the streams hold.
    pub async fn resync(&mut self) -> anyhow::Result<()> {
        let (appender, submissions_done, tail, checkpoints_last_sequence) =
            rebuild(&self.config, &self.js).await?;
        *self.lock() = appender;
        self.submissions_done = submissions_done;
        self.checkpoints_last_sequence = checkpoints_last_sequence;
        self.record_receipts(&tail).await?;
        self.consumer =
            position_consumer(&self.js, &self.config.instance, self.submissions_done).await?;
        Ok(())
    }

    /// Records receipts for entries whose submission names a key and sequence. Uses
    /// create-if-absent, so re-recording is harmless and the first outcome stands.
    async fn record_receipts(&self, appended: &[Appended]) -> anyhow::Result<()> {
        let receipts: Vec<Receipt> = appended.iter().filter_map(receipt_for).collect();
        let results = join_all(
            receipts
                .iter()
                .map(|receipt| record_receipt(&self.receipts, receipt)),
        )
        .await;
        for result in results {
            result?;
        }
        Ok(())
    }

    /// Signs and publishes a checkpoint when enough entries or time have passed (or
    /// always, with `force`, if there is anything new).
    pub async fn maybe_checkpoint(&mut self, force: bool) -> anyhow::Result<()> {
        let (size, last_size) = {
            let appender = self.lock();
            let last = appender.last_checkpoint().map_or(0, |c| c.size);
            (appender.size(), last)
        };
        if size == 0 || size == last_size && last_size > 0 {
            return Ok(());
        }
        let due = force
            || size - last_size >= self.config.checkpoint_every
            || self.last_checkpoint_at.elapsed() >= self.config.checkpoint_interval;
        if !due {
            return Ok(());
        }
        let signed = self.lock().checkpoint();
        self.last_checkpoint_at = Instant::now();
        for _attempt in 0..3 {
            match publish_checkpoint(&self.js, &signed.note, self.checkpoints_last_sequence).await?
            {
                CheckpointPublish::Published { sequence } => {
                    self.checkpoints_last_sequence = sequence;
                    tracing::info!(size = signed.checkpoint.size, "checkpoint signed");
                    return Ok(());
                }
                CheckpointPublish::Conflict => {
                    let stored = latest_checkpoint(&self.js)
                        .await?
                        .context("checkpoint conflict but no checkpoint stored")?;
                    self.checkpoints_last_sequence = stored.sequence;
                    let stored_size = stored.unverified_body()?.size;
                    if stored_size > size {
                        // Another sequencer is ahead of us: catch up first.
                        return self.resync().await;
                    }
                    // Ours must agree with theirs; the appender checks signature and root.
                    self.lock()
                        .adopt_checkpoint(&stored.note)
                        .with_context(|| {
                            format!(
                                "stored checkpoint {} disagrees with the ledger",
                                stored.sequence
                            )
                        })?;
                    if stored_size == size {
                        return Ok(());
                    }
                }
            }
        }
        tracing::warn!(
            size,
            "checkpoint not published after three conflicts; will retry"
        );
        Ok(())
    }
}

/// Pulls up to `max` submissions, waiting at most [`FETCH_WAIT`].
pub async fn fetch_batch(
    consumer: PullConsumer,
    max: usize,
) -> anyhow::Result<Vec<jetstream::Message>> {
    let mut messages = consumer
        .fetch()
        .max_messages(max)
        .expires(FETCH_WAIT)
        .messages()
        .await
        .context("pulling submissions")?;
    let mut out = Vec::new();
    while let Some(message) = messages.next().await {
        match message {
            Ok(message) => out.push(message),
            Err(error) => {
                tracing::warn!("pulling submissions: {error}");
                break;
            }
        }
    }
    Ok(out)
}

async fn ack(message: &jetstream::Message) {
    // The ack only tells the consumer to move on; the ledger is the record of what was
    // done, so a lost ack costs a redelivery that is skipped, never a duplicate.
    if let Err(error) = message.ack().await {
        tracing::warn!("acknowledging a submission: {error}");
    }
}

fn now_ms() -> TimestampMs {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis();
    TimestampMs(i64::try_from(millis).unwrap_or(i64::MAX))
}

/// Replays the whole ledger into a fresh appender and adopts the latest checkpoint.
/// Returns the appender, the SUBMISSIONS high-water mark, the last entries (to re-record
/// their receipts) and the CHECKPOINTS sequence of the adopted checkpoint (0: none).
async fn rebuild(
    config: &SequencerConfig,
    js: &jetstream::Context,
) -> anyhow::Result<(Appender, u64, Vec<Appended>, u64)> {
    // The checkpoint is read before the ledger: the ledger only grows, so everything the
    // checkpoint covers is then in what we read, even while another sequencer appends.
    let checkpoint = latest_checkpoint(js).await?;
    let mut appender = config.new_appender()?;
    let mut submissions_done = 0u64;
    let mut pending: Vec<Bytes> = Vec::with_capacity(RESTORE_BATCH);
    let mut tail: VecDeque<Bytes> = VecDeque::with_capacity(config.batch_max);
    let restore = |appender: &mut Appender, pending: &mut Vec<Bytes>| -> anyhow::Result<()> {
        appender
            .restore_batch(pending)
            .context("the LEDGER stream is not a ledger this sequencer would have written")?;
        pending.clear();
        Ok(())
    };
    read_ledger(js, 0, |message| {
        let sequence = message.submission_sequence.with_context(|| {
            format!(
                "ledger entry {} has no {SUBMISSION_SEQUENCE_HEADER} header",
                message.index
            )
        })?;
        anyhow::ensure!(
            sequence > submissions_done,
            "ledger entry {} comes from submission {sequence}, not after {submissions_done}",
            message.index
        );
        submissions_done = sequence;
        if tail.len() == config.batch_max {
            tail.pop_front();
        }
        tail.push_back(message.entry.clone());
        pending.push(message.entry);
        if pending.len() == RESTORE_BATCH {
            restore(&mut appender, &mut pending)?;
        }
        Ok(())
    })
    .await?;
    restore(&mut appender, &mut pending)?;
    let tail_start = appender.size() - tail.len() as u64;
    let tail = tail
        .into_iter()
        .enumerate()
        .map(|(offset, entry)| appended_from_stored(tail_start + offset as u64, entry))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let checkpoints_last_sequence = match checkpoint {
        None => 0,
        Some(stored) => {
            appender.adopt_checkpoint(&stored.note).with_context(|| {
                format!(
                    "the latest stored checkpoint (CHECKPOINTS sequence {}) does not match the ledger; refusing to sign over it",
                    stored.sequence
                )
            })?;
            stored.sequence
        }
    };
    Ok((appender, submissions_done, tail, checkpoints_last_sequence))
}

/// An [`Appended`] for an entry read back from the ledger (to re-record its receipt).
fn appended_from_stored(index: u64, entry: Bytes) -> anyhow::Result<Appended> {
    let decoded = stockpile_proto::envelope::decode_entry(&entry)
        .with_context(|| format!("ledger entry {index}"))?;
    let event_id = decode_submission(&decoded.submission)
        .ok()
        .map(|submission| submission.event.event_id);
    Ok(Appended {
        index,
        link: stockpile_core::hash::entry_link_hash(&entry),
        entry,
        verdict: decoded.verdict,
        flags: Vec::new(),
        event_id,
    })
}

fn receipt_for(appended: &Appended) -> Option<Receipt> {
    let decoded = stockpile_proto::envelope::decode_entry(&appended.entry).ok()?;
    let submission = decode_submission(&decoded.submission).ok()?;
    let (accepted, rejection_code, rejection_reason) = match &appended.verdict {
        EntryVerdict::Accepted => (true, None, None),
        EntryVerdict::Rejected { code, reason } => {
            (false, Some(code.clone()), Some(reason.clone()))
        }
    };
    Some(Receipt {
        key_id: submission.key_id,
        emitter_sequence: submission.event.emitter_sequence,
        event_id: submission.event.event_id,
        index: appended.index,
        entry_hash: appended.link.to_hex(),
        leaf_hash: leaf_hash(&appended.entry).to_hex(),
        accepted,
        rejection_code,
        rejection_reason,
    })
}

/// (Re)creates this instance's durable consumer so that it delivers from submission
/// `done + 1` on.
async fn position_consumer(
    js: &jetstream::Context,
    instance: &str,
    done: u64,
) -> anyhow::Result<PullConsumer> {
    let stream = js
        .get_stream(SUBMISSIONS_STREAM)
        .await
        .context("opening SUBMISSIONS")?;
    let name = format!("sequencer-{instance}");
    // A consumer left from an earlier run points wherever that run stopped; the ledger
    // says where to resume, so start afresh from there.
    let _ = stream.delete_consumer(&name).await;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(name.clone()),
            description: Some("sequencer: submissions in SUBMISSIONS order".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: done + 1,
            },
            // One acknowledgement per batch (of its last stored submission) instead of one
            // per submission: a lost one costs redeliveries that are skipped, as ever.
            ack_policy: AckPolicy::All,
            ack_wait: SUBMISSION_ACK_WAIT,
            max_deliver: -1,
            max_ack_pending: crate::BATCH_SUBMISSIONS_MAX as i64 * 4,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating consumer {name} on SUBMISSIONS"))
}

/// Answers inclusion-proof requests from the tree below the latest signed checkpoint.
async fn spawn_proof_responder(
    client: async_nats::Client,
    appender: SharedAppender,
) -> anyhow::Result<()> {
    let mut requests = client
        .queue_subscribe(PROOF_INCLUSION_SUBJECT, PROOF_QUEUE_GROUP.into())
        .await
        .context("subscribing to proof requests")?;
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let Some(reply_to) = request.reply.clone() else {
                continue;
            };
            let reply = match serde_json::from_slice::<ProofRequest>(&request.payload) {
                Err(error) => ProofReply::Error {
                    message: format!("a proof request is JSON {{\"index\": N}}: {error}"),
                },
                Ok(ProofRequest { index }) => {
                    let appender = appender
                        .lock()
                        .expect("the appender lock is never held across a panic");
                    let checkpoint_size = appender.last_checkpoint().map_or(0, |c| c.size);
                    match appender.inclusion_proof(index) {
                        Some(proof) => ProofReply::Proof {
                            tlog_proof: proof.to_string(),
                            checkpoint_size,
                        },
                        None if index < appender.size() => ProofReply::NotYetCovered {
                            ledger_size: appender.size(),
                            checkpoint_size,
                        },
                        None => ProofReply::Error {
                            message: format!(
                                "no entry {index}: the ledger has {} entries",
                                appender.size()
                            ),
                        },
                    }
                }
            };
            let payload = serde_json::to_vec(&reply).expect("a proof reply serializes");
            if let Err(error) = client.publish(reply_to, payload.into()).await {
                tracing::warn!("answering a proof request: {error}");
            }
        }
    });
    Ok(())
}
