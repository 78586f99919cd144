//! The publisher: sends outbox entries to `stockpile.submit.<service>`, in order per key,
//! with at most [`PUBLISH_WINDOW`] publishes awaiting their acknowledgement.
//!
//! Every publish of an entry carries the same bytes and the same `Nats-Msg-Id`
//! (`<key>/<sequence>`), so a retry JetStream already stored is dropped as a duplicate.
//!
//! Order matters: the ledger refuses an emitter sequence not above the key's last one, so
//! a key's sequence N must be stored before N+1. Publishes go out in order on one
//! connection; when one fails, the key pauses (back-off), waits for its other publishes
//! to settle, and resends from the failed one, skipping those already acknowledged.
//! A residual risk remains: if the connection drops after N left but before it was
//! stored, while N+1 goes out on the new connection, N+1 lands first and N is later
//! refused as a replay. Storing that refusal repairs it: the same event is signed again
//! under a fresh sequence and published like a new one ([`crate::resubmit`]).
//!
//! Each acknowledgement hands the entry to the receipt poller (`crate::poller`) and wakes
//! it, so receipts are asked for as soon as there is something to ask about.
//!
//! An acknowledged entry whose receipt has not come after the republish interval
//! ([`REPUBLISH_INTERVAL`](crate::limits::REPUBLISH_INTERVAL) by default) is looked for:
//! its receipt fetched directly, else its message checked in SUBMISSIONS (same sequence,
//! same message id). It is republished, same bytes and id, only if it is gone; if
//! SUBMISSIONS cannot be read, only once the sequencer has receipted a later submission
//! of ours, which it reads in stream order. A blind republish beyond the duplicate window
//! would store a second copy, which becomes a replay rejection in the ledger, every two
//! minutes while the sequencer is merely slow or down.
//!
//! A service's NATS user may well lack `$JS.API.DIRECT.GET.SUBMISSIONS` (it needs only
//! the rights listed in the crate documentation): the server then drops the get (a
//! permissions violation, which closes nothing), it goes unanswered for
//! [`NATS_LOOKUP_TIMEOUT`], and checks of SUBMISSIONS pause for [`STREAM_CHECK_PAUSE`],
//! overdue submissions waiting on receipts alone meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use stockpile_nats::receipts::get_receipt;
use stockpile_nats::topology::SUBMISSIONS_STREAM;
use tokio::time::{Duration, Instant};

use crate::limits::{
    FAILURE_LOG_EVERY, NATS_LOOKUP_TIMEOUT, OVERDUE_CHECKS_PER_TICK, PUBLISH_BACKOFF_MAX,
    PUBLISH_BACKOFF_MIN, PUBLISH_SEND_TIMEOUT, PUBLISH_WINDOW, PUBLISHER_TICK, SHUTDOWN_DRAIN_MAX,
    STARTUP_RECONCILE_WAIT, STREAM_CHECK_PAUSE,
};
use crate::outbox::{OutboxEntry, message_id};
use crate::sdk::{Inner, Nats};

/// Runs until shutdown; then sends what is left and waits for the acknowledgements in
/// flight, within `SHUTDOWN_DRAIN_MAX`.
pub(crate) async fn run(inner: Arc<Inner>, nats: Nats) {
    let mut shutdown = inner.shutdown.subscribe();
    // Entries sequenced while we were down should be retired by the poller before we
    // consider resending them. A shutdown cuts the wait short but still goes through the
    // final sending below (those entries carry a `published` record, so they are looked
    // for, not resent).
    let mut reconciled = inner.reconciled.subscribe();
    tokio::select! {
        _ = tokio::time::timeout(STARTUP_RECONCILE_WAIT, reconciled.wait_for(|done| *done)) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
    let submissions = match nats.js.get_stream_no_info(SUBMISSIONS_STREAM).await {
        Ok(stream) => Some(stream),
        Err(error) => {
            tracing::warn!(
                "cannot address the {SUBMISSIONS_STREAM} stream ({error}); overdue submissions will be republished unchecked"
            );
            None
        }
    };
    let mut publisher = Publisher::new(inner, nats, submissions);
    let mut last_overdue_check = Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        publisher.fill().await;
        let now = Instant::now();
        let wake = publisher
            .next_retry(now)
            .unwrap_or(now + PUBLISHER_TICK)
            .min(last_overdue_check + PUBLISHER_TICK);
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(acked) = publisher.in_flight.next(), if !publisher.in_flight.is_empty() => {
                publisher.on_ack(acked);
            }
            _ = publisher.inner.wake_publisher.notified() => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
        if last_overdue_check.elapsed() >= PUBLISHER_TICK {
            last_overdue_check = Instant::now();
            publisher.check_overdue().await;
        }
    }
    // Shutting down: keep sending what is durable (a short-lived `stockpile emit` shuts
    // down right after emitting) and never drop an acknowledgement while it can still
    // come, both within the drain bound. Whatever is left stays in the outbox.
    let finish = async {
        loop {
            publisher.fill().await;
            match publisher.in_flight.next().await {
                Some(acked) => publisher.on_ack(acked),
                None => break, // nothing in flight, nothing sendable
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_DRAIN_MAX, finish)
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = publisher.in_flight.len(),
            "publishes still unacknowledged at shutdown; they stay in the outbox and are resent at the next start"
        );
    }
}

/// One acknowledged-or-failed publish.
struct Acked {
    key: usize,
    sequence: u64,
    republish: bool,
    result: Result<PublishAck, PublishError>,
}

/// An acknowledged entry waiting for its receipt.
struct Awaiting {
    /// When to look for it if no receipt came.
    due: Instant,
    /// Where JetStream stored it, if known.
    stream_sequence: Option<u64>,
}

/// Per-key publishing state. All maps are bounded by the outbox's entry limit.
struct KeyState {
    name: String,
    /// Next sequence to send in order.
    cursor: u64,
    /// Publishes of this key awaiting their acknowledgement.
    in_flight: usize,
    /// After a failure: resend from this sequence once `in_flight` is 0.
    restart_from: Option<u64>,
    /// No sends before this instant (back-off after failures).
    retry_at: Option<Instant>,
    /// Consecutive failures, for the back-off and for quieter logs.
    failures: u32,
    awaiting: BTreeMap<u64, Awaiting>,
    /// Entries found missing from SUBMISSIONS, to send again individually.
    republish: BTreeSet<u64>,
}

struct Publisher {
    inner: Arc<Inner>,
    nats: Nats,
    submissions: Option<Stream<()>>,
    keys: Vec<KeyState>,
    /// Acknowledgement futures; never more than `PUBLISH_WINDOW`.
    in_flight: FuturesUnordered<BoxFuture<'static, Acked>>,
    /// Until when SUBMISSIONS is not asked about overdue submissions, after it could not
    /// answer (see `STREAM_CHECK_PAUSE`).
    stream_checks_paused_until: Option<Instant>,
    /// Highest stream sequence of a fresh (not duplicate) store since the last reset: a
    /// fresh store below it means SUBMISSIONS was recreated and counts from 1 again.
    stored_stream_sequence: u64,
}

impl Publisher {
    fn new(inner: Arc<Inner>, nats: Nats, submissions: Option<Stream<()>>) -> Publisher {
        let now = Instant::now();
        let mut keys = Vec::with_capacity(inner.keys.len());
        let pending = inner.outbox.pending().unwrap_or_else(|error| {
            tracing::error!("reading the outbox: {error}");
            Vec::new()
        });
        for slot in &inner.keys {
            let name = slot.name().to_owned();
            let durable = slot.durable_sequence.load(Ordering::SeqCst);
            let mut state = KeyState {
                cursor: durable + 1,
                name,
                in_flight: 0,
                restart_from: None,
                retry_at: None,
                failures: 0,
                awaiting: BTreeMap::new(),
                republish: BTreeSet::new(),
            };
            for (_, sequence) in pending.iter().filter(|(key, _)| *key == state.name) {
                state.cursor = state.cursor.min(*sequence);
                // Acknowledged before a restart: look for it now rather than resend
                // blindly.
                if let Ok(Some(stream_sequence)) = inner.outbox.published(&state.name, *sequence) {
                    state.awaiting.insert(
                        *sequence,
                        Awaiting {
                            due: now,
                            stream_sequence: Some(stream_sequence),
                        },
                    );
                }
            }
            keys.push(state);
        }
        Publisher {
            inner,
            nats,
            submissions,
            keys,
            in_flight: FuturesUnordered::new(),
            stream_checks_paused_until: None,
            stored_stream_sequence: 0,
        }
    }

    /// Sends until the window is full or nothing is ready, one entry per key in turn so
    /// that a busy key does not starve the others.
    async fn fill(&mut self) {
        let mut progress = true;
        while progress && self.in_flight.len() < PUBLISH_WINDOW {
            progress = false;
            for key in 0..self.keys.len() {
                if self.in_flight.len() >= PUBLISH_WINDOW {
                    break;
                }
                if let Some((entry, republish)) = self.next_to_send(key) {
                    self.send(key, entry, republish).await;
                    progress = true;
                }
            }
        }
    }

    fn next_to_send(&mut self, key: usize) -> Option<(OutboxEntry, bool)> {
        let outbox = &self.inner.outbox;
        let durable = self.inner.keys[key].durable_sequence.load(Ordering::SeqCst);
        let state = &mut self.keys[key];
        if state.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        if let Some(from) = state.restart_from {
            if state.in_flight > 0 {
                return None;
            }
            state.cursor = from;
            state.restart_from = None;
        }
        while let Some(sequence) = state.republish.pop_first() {
            match outbox.entry(&state.name, sequence) {
                Ok(Some(entry)) => return Some((entry, true)),
                Ok(None) => {}
                Err(error) => tracing::error!("reading the outbox: {error}"),
            }
        }
        loop {
            match outbox.next_entry(&state.name, state.cursor, durable) {
                Ok(Some(entry)) => {
                    state.cursor = entry.emitter_sequence + 1;
                    if state.awaiting.contains_key(&entry.emitter_sequence) {
                        continue; // acknowledged already
                    }
                    return Some((entry, false));
                }
                Ok(None) => {
                    state.cursor = state.cursor.max(durable + 1);
                    return None;
                }
                Err(error) => {
                    // A corrupt entry cannot be sent; skip it rather than stall the key,
                    // and say so loudly. It stays in the outbox for inspection.
                    tracing::error!(
                        key = state.name,
                        sequence = state.cursor,
                        "reading the outbox: {error}; skipping"
                    );
                    state.cursor += 1;
                    if state.cursor > durable {
                        return None;
                    }
                }
            }
        }
    }

    async fn send(&mut self, key: usize, entry: OutboxEntry, republish: bool) {
        let sequence = entry.emitter_sequence;
        let publish = PublishMessage::build()
            .payload(entry.submission.clone())
            .message_id(entry.message_id());
        let sent = tokio::time::timeout(
            PUBLISH_SEND_TIMEOUT,
            self.nats
                .js
                .send_publish(self.inner.subject.clone(), publish),
        )
        .await;
        match sent {
            Ok(Ok(ack)) => {
                self.keys[key].in_flight += 1;
                self.in_flight.push(Box::pin(async move {
                    Acked {
                        key,
                        sequence,
                        republish,
                        result: ack.await,
                    }
                }));
            }
            Ok(Err(error)) => self.failed(key, sequence, republish, &Failure::from(error)),
            Err(_) => self.failed(
                key,
                sequence,
                republish,
                &Failure {
                    message: format!(
                        "the client did not take the publish within {PUBLISH_SEND_TIMEOUT:?}"
                    ),
                    stream_missing: false,
                },
            ),
        }
    }

    fn on_ack(&mut self, acked: Acked) {
        let Acked {
            key,
            sequence,
            republish,
            result,
        } = acked;
        self.keys[key].in_flight -= 1;
        match result {
            Ok(ack) => {
                if !ack.duplicate {
                    if ack.sequence < self.stored_stream_sequence {
                        tracing::warn!(
                            stored = ack.sequence,
                            before = self.stored_stream_sequence,
                            "{SUBMISSIONS_STREAM} stored a submission below an earlier one: the stream was recreated"
                        );
                        if let Err(error) = self.inner.outbox.reset_receipted_stream_sequence() {
                            tracing::error!("resetting the receipt progress: {error}");
                        }
                        self.stored_stream_sequence = 0;
                    }
                    self.stored_stream_sequence = self.stored_stream_sequence.max(ack.sequence);
                }
                let state = &mut self.keys[key];
                state.failures = 0;
                tracing::debug!(
                    key = state.name,
                    sequence,
                    stream_sequence = ack.sequence,
                    duplicate = ack.duplicate,
                    "submission stored"
                );
                match self.inner.outbox.contains(&state.name, sequence) {
                    Ok(true) => {
                        if let Err(error) =
                            self.inner
                                .outbox
                                .record_published(&state.name, sequence, ack.sequence)
                        {
                            tracing::warn!("recording a publish: {error}");
                        }
                        // Its receipt can be asked for now (a burst of acknowledgements
                        // wakes the poller once).
                        self.inner.unreceipted().insert(key, sequence, ack.sequence);
                        self.inner.poll_receipts.notify_one();
                        state.awaiting.insert(
                            sequence,
                            Awaiting {
                                due: Instant::now() + self.inner.republish_interval,
                                stream_sequence: Some(ack.sequence),
                            },
                        );
                    }
                    Ok(false) => {} // its receipt already came
                    Err(error) => tracing::error!("reading the outbox: {error}"),
                }
            }
            Err(error) => self.failed(key, sequence, republish, &Failure::from(error)),
        }
    }

    fn failed(&mut self, key: usize, sequence: u64, republish: bool, failure: &Failure) {
        let state = &mut self.keys[key];
        state.failures = state.failures.saturating_add(1);
        let backoff = backoff(state.failures);
        state.retry_at = Some(Instant::now() + backoff);
        if republish {
            state.republish.insert(sequence);
        } else {
            state.restart_from = Some(
                state
                    .restart_from
                    .map_or(sequence, |from| from.min(sequence)),
            );
        }
        let error = &failure.message;
        let hint = if failure.stream_missing {
            format!(
                " (the {SUBMISSIONS_STREAM} stream does not exist yet; the sequencer creates it)"
            )
        } else {
            String::new()
        };
        // The first failure of a streak is news; the rest only every so often.
        if state.failures == 1 || state.failures.is_multiple_of(FAILURE_LOG_EVERY) {
            tracing::warn!(
                key = state.name,
                sequence,
                failures = state.failures,
                "publish failed: {error}{hint}; the outbox keeps it, retrying in {backoff:?} with the same bytes and message id"
            );
        } else {
            tracing::debug!(key = state.name, sequence, "publish failed: {error}");
        }
    }

    /// The earliest back-off expiry still in the future.
    fn next_retry(&self, now: Instant) -> Option<Instant> {
        self.keys
            .iter()
            .filter_map(|state| state.retry_at)
            .filter(|at| *at > now)
            .min()
    }

    /// Looks for acknowledged entries whose receipt is overdue: at most
    /// `OVERDUE_CHECKS_PER_TICK`, concurrently, so one tick costs at most one lookup
    /// timeout however many are due.
    async fn check_overdue(&mut self) {
        let now = Instant::now();
        let mut due: Vec<(usize, u64, String, Option<u64>)> = Vec::new();
        for (key, state) in self.keys.iter().enumerate() {
            for (sequence, awaiting) in &state.awaiting {
                if due.len() >= OVERDUE_CHECKS_PER_TICK {
                    break;
                }
                if awaiting.due <= now {
                    due.push((key, *sequence, state.name.clone(), awaiting.stream_sequence));
                }
            }
        }
        if due.is_empty() {
            return;
        }
        let inner = self.inner.clone();
        let submissions = match self.stream_checks_paused_until {
            Some(until) if now < until => None,
            _ => self.submissions.clone(),
        };
        let verdicts =
            futures::future::join_all(due.iter().map(|(_, sequence, name, stream_sequence)| {
                look_for(
                    &inner,
                    submissions.as_ref(),
                    name,
                    *sequence,
                    *stream_sequence,
                )
            }))
            .await;
        let receipted = self
            .inner
            .outbox
            .receipted_stream_sequence()
            .unwrap_or_else(|error| {
                tracing::error!("reading the outbox: {error}");
                0
            });
        let interval = self.inner.republish_interval;
        for ((key, sequence, _, stream_sequence), found) in due.into_iter().zip(verdicts) {
            if let Found::Unavailable(reason) = &found
                && self
                    .stream_checks_paused_until
                    .is_none_or(|until| until <= now)
            {
                self.stream_checks_paused_until = Some(now + STREAM_CHECK_PAUSE);
                tracing::warn!(
                    "cannot look submissions up in {SUBMISSIONS_STREAM} ({reason}); for {STREAM_CHECK_PAUSE:?} an overdue submission is republished only once a later one of this service has its receipt"
                );
            }
            let state = &mut self.keys[key];
            let republish = match found {
                Found::Retired => {
                    state.awaiting.remove(&sequence);
                    continue;
                }
                Found::Present => None,
                Found::Missing(reason) => Some(reason),
                // Without the stream, the receipts tell: the sequencer reads SUBMISSIONS
                // in order, so a later submission with a receipt means this one was
                // passed over. Otherwise the sequencer is behind or down; republishing
                // would only store copies that become replay rejections.
                Found::Unavailable(_) | Found::Unchecked => match stream_sequence {
                    Some(stored) if receipted > stored => Some(format!(
                        "the sequencer has receipted a later submission ({SUBMISSIONS_STREAM} sequence {receipted} > {stored})"
                    )),
                    Some(_) => None,
                    None => Some("where it was stored is unknown".into()),
                },
            };
            match republish {
                None => {
                    tracing::debug!(
                        key = state.name,
                        sequence,
                        "no receipt yet; the sequencer has not reached it"
                    );
                    if let Some(awaiting) = state.awaiting.get_mut(&sequence) {
                        awaiting.due = Instant::now() + interval;
                    }
                }
                Some(reason) => {
                    tracing::info!(
                        key = state.name,
                        sequence,
                        "no receipt after {interval:?} and {reason}: republishing with the same bytes and message id"
                    );
                    state.awaiting.remove(&sequence);
                    state.republish.insert(sequence);
                }
            }
        }
    }
}

/// What became of an acknowledged submission without a receipt.
enum Found {
    /// Its receipt came (now stored); the entry is retired.
    Retired,
    /// It is still where JetStream stored it: the sequencer has not reached it.
    Present,
    /// It is gone from SUBMISSIONS, for this reason.
    Missing(String),
    /// SUBMISSIONS could not be asked (no permission, timeout), for this reason.
    Unavailable(String),
    /// SUBMISSIONS was not asked (checks paused, or where it was stored is unknown).
    Unchecked,
}

/// Looks for an overdue submission: its receipt first, then its message in SUBMISSIONS.
/// A free function, not a method: the publisher's acknowledgement futures are `Send` but
/// not `Sync`, so a `&Publisher` cannot be held across an `.await` in a spawned task.
async fn look_for(
    inner: &Inner,
    submissions: Option<&Stream<()>>,
    name: &str,
    sequence: u64,
    stream_sequence: Option<u64>,
) -> Found {
    match inner.outbox.contains(name, sequence) {
        Ok(true) => {}
        Ok(false) => return Found::Retired,
        Err(error) => {
            tracing::error!("reading the outbox: {error}");
            return Found::Present;
        }
    }
    if let Some(bucket) = inner.receipts_bucket().await
        && let Ok(Ok(Some(receipt))) =
            tokio::time::timeout(NATS_LOOKUP_TIMEOUT, get_receipt(&bucket, name, sequence)).await
    {
        return match inner.store_receipt(receipt).await {
            Ok(()) => Found::Retired,
            Err(error) => {
                tracing::error!("storing a receipt: {error:#}");
                Found::Present
            }
        };
    }
    let (Some(stream), Some(stream_sequence)) = (submissions, stream_sequence) else {
        return Found::Unchecked;
    };
    let expected = message_id(name, sequence);
    match tokio::time::timeout(NATS_LOOKUP_TIMEOUT, stream.direct_get(stream_sequence)).await {
        Ok(Ok(message)) => {
            let id = message
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|value| value.as_str().to_owned());
            if id.as_deref() == Some(expected.as_str()) {
                Found::Present
            } else {
                Found::Missing(format!(
                    "{SUBMISSIONS_STREAM} sequence {stream_sequence} holds another message (was the stream recreated?)"
                ))
            }
        }
        Ok(Err(error)) if error.kind() == DirectGetErrorKind::NotFound => Found::Missing(format!(
            "it is no longer in {SUBMISSIONS_STREAM} (sequence {stream_sequence})"
        )),
        Ok(Err(error)) => Found::Unavailable(error.to_string()),
        Err(_) => Found::Unavailable(format!("no answer within {NATS_LOOKUP_TIMEOUT:?}")),
    }
}

/// Exponential back-off after `failures` consecutive failures, capped.
fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    (PUBLISH_BACKOFF_MIN * factor).min(PUBLISH_BACKOFF_MAX)
}

/// Why a publish failed.
struct Failure {
    message: String,
    /// No stream takes the subject: the sequencer has not created the topology yet.
    stream_missing: bool,
}

impl From<PublishError> for Failure {
    fn from(error: PublishError) -> Self {
        Failure {
            stream_missing: error.kind() == PublishErrorKind::StreamNotFound,
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), PUBLISH_BACKOFF_MIN);
        assert_eq!(backoff(2), PUBLISH_BACKOFF_MIN * 2);
        assert_eq!(backoff(1000), PUBLISH_BACKOFF_MAX);
        assert!((1..40).map(backoff).is_sorted());
    }
}
