//! The receipt poller: asks the RECEIPTS bucket for the receipt of each published
//! submission, by its exact key, and retires each outbox entry whose receipt is there
//! (each receipt stored and its entry removed in one transaction; a round's receipts
//! flushed together before anyone is told).
//!
//! # Why polling, not a watch
//!
//! A KV watch is an ordered push consumer on the bucket's stream, so it needs the right
//! to create consumers. That right is dangerous: a user allowed to create a push consumer
//! can give it a ledger subject (`stockpile.ledger.entries`) as deliver subject, and the
//! server then copies stream messages into the LEDGER stream whatever the user may
//! publish (a nats-server flaw, reproduced on 2.15.1). So an emitting service holds no
//! `$JS.API.CONSUMER.*` (nor `$JS.FC.*`) rights at all, and asks for receipts with direct
//! gets of exact keys (`$JS.API.DIRECT.GET.KV_RECEIPTS.$KV.RECEIPTS.<key>.<sequence>`),
//! which create nothing on the server. The emitter works with exactly these rights (the
//! `an_emitter_needs_no_consumer_rights` test runs it so):
//!
//! | right | used for |
//! |---|---|
//! | publish `stockpile.submit.<service>` | submissions |
//! | publish `stockpile.proof.inclusion` | inclusion-proof requests |
//! | publish `$JS.API.INFO` | account information (the emitter does not ask it; tools do) |
//! | publish `$JS.API.STREAM.INFO.KV_RECEIPTS` | opening the bucket |
//! | publish `$JS.API.DIRECT.GET.KV_RECEIPTS`, `$JS.API.DIRECT.GET.KV_RECEIPTS.>` | receipt gets |
//! | publish `$JS.API.STREAM.MSG.GET.KV_RECEIPTS` | receipt gets, should the bucket not allow direct gets |
//! | subscribe `_INBOX.>` | replies, publish acknowledgements |
//!
//! `$JS.API.DIRECT.GET.SUBMISSIONS` may be granted too: the publisher then checks an
//! overdue submission in SUBMISSIONS; without it, it relies on receipts (see `publisher`).
//!
//! # What is asked, and how often
//!
//! Every pending entry whose publish SUBMISSIONS acknowledged is asked about: the
//! publisher adds it when the acknowledgement comes (and wakes the poller), and at start
//! the outbox's `published` records bring back those acknowledged before a restart.
//! [`Inner::store_receipt`] drops an entry however its receipt came. Polling goes in
//! rounds, oldest (lowest SUBMISSIONS sequence) first:
//!
//! - a round asks about the oldest entries, twice as many as the last round found
//!   receipts for, at least [`RECEIPT_POLL_CONCURRENCY`] and at most
//!   [`RECEIPT_POLL_KEYS_MAX`] − [`RECEIPT_POLL_SWEEP`]: the sequencer receipts in stream
//!   order, so those are the ones whose receipts come next, and a sequencer that speeds
//!   up is followed within a few rounds;
//! - and [`RECEIPT_POLL_SWEEP`] more beyond them, from where the last round's sweep
//!   stopped, wrapping around, so that submissions lost from SUBMISSIONS, which stay at
//!   the front until republished, cannot hide the later ones for good;
//! - with at most [`RECEIPT_POLL_CONCURRENCY`] gets in flight, each bounded by
//!   [`NATS_LOOKUP_TIMEOUT`];
//! - the pause between rounds is [`RECEIPT_POLL_INTERVAL_MIN`] after a round that found
//!   a receipt and doubles after one that found none, up to
//!   [`RECEIPT_POLL_INTERVAL_MAX`]; an acknowledged publish brings the next round at once
//!   and the pause back to the minimum, but two rounds are never closer than the minimum;
//! - nothing is asked while no published entry waits or NATS is disconnected.
//!
//! # Start
//!
//! Each time polling starts (and again after it could not start), it opens the bucket
//! and asks about every pending entry once, published or not, [`RECEIPT_POLL_KEYS_MAX`]
//! at a time, so entries sequenced while the service was down are retired before the
//! publisher would resend them (it waits for that, up to
//! [`STARTUP_RECONCILE_WAIT`](crate::limits::STARTUP_RECONCILE_WAIT)). While the bucket
//! does not exist (the sequencer creates the topology) it retries with back-off; the
//! outbox keeps everything meanwhile.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use async_nats::jetstream::kv;
use futures::StreamExt as _;
use stockpile_nats::receipts::{Receipt, get_receipt};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use crate::limits::{
    FAILURE_LOG_EVERY, NATS_LOOKUP_TIMEOUT, RECEIPT_POLL_CONCURRENCY, RECEIPT_POLL_INTERVAL_MAX,
    RECEIPT_POLL_INTERVAL_MIN, RECEIPT_POLL_KEYS_MAX, RECEIPT_POLL_SWEEP,
    RECEIPT_POLLER_BACKOFF_MAX, RECEIPT_POLLER_BACKOFF_MIN,
};
use crate::outbox::message_id;
use crate::sdk::{Inner, Nats};

/// Published entries still without a receipt, in SUBMISSIONS order: what the poller asks
/// about. Bounded by the outbox's entry limit. Kept in [`Inner`] behind a std mutex, held
/// only for in-memory work.
#[derive(Debug, Default)]
pub(crate) struct Unreceipted {
    /// (SUBMISSIONS stream sequence, key slot, emitter sequence).
    order: BTreeSet<(u64, usize, u64)>,
    /// (key slot, emitter sequence) → SUBMISSIONS stream sequence.
    stored_at: HashMap<(usize, u64), u64>,
    /// Where the last sweep stopped.
    swept_to: Option<(u64, usize, u64)>,
}

impl Unreceipted {
    /// Adds the entry of key slot `slot` and `sequence`, acknowledged at
    /// `stream_sequence` (moving it, if it was there with another one: republished).
    pub(crate) fn insert(&mut self, slot: usize, sequence: u64, stream_sequence: u64) {
        if let Some(old) = self.stored_at.insert((slot, sequence), stream_sequence) {
            self.order.remove(&(old, slot, sequence));
        }
        self.order.insert((stream_sequence, slot, sequence));
    }

    pub(crate) fn remove(&mut self, slot: usize, sequence: u64) {
        if let Some(old) = self.stored_at.remove(&(slot, sequence)) {
            self.order.remove(&(old, slot, sequence));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The (key slot, sequence) of one round: the `head` oldest entries, then up to
    /// `sweep` beyond them from where the last sweep stopped, wrapping around past the
    /// head.
    fn round(&mut self, head: usize, sweep: usize) -> Vec<(usize, u64)> {
        let mut picked: Vec<(u64, usize, u64)> = self.order.iter().take(head).copied().collect();
        if let Some(&head_end) = picked.last()
            && self.order.len() > picked.len()
            && sweep > 0
        {
            let from = self
                .swept_to
                .filter(|at| *at > head_end)
                .unwrap_or(head_end);
            let mut swept: Vec<(u64, usize, u64)> = self
                .order
                .range((Bound::Excluded(from), Bound::Unbounded))
                .take(sweep)
                .copied()
                .collect();
            if swept.len() < sweep {
                let missing = sweep - swept.len();
                swept.extend(
                    self.order
                        .range((Bound::Excluded(head_end), Bound::Included(from)))
                        .take(missing)
                        .copied(),
                );
            }
            self.swept_to = swept.last().copied();
            picked.extend(swept);
        }
        picked
            .into_iter()
            .map(|(_, slot, sequence)| (slot, sequence))
            .collect()
    }
}

/// Runs until shutdown.
pub(crate) async fn run(inner: Arc<Inner>, nats: Nats) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut pause = RECEIPT_POLLER_BACKOFF_MIN;
    let mut failures: u32 = 0;
    loop {
        match poll(&inner, &nats, &mut pause).await {
            Ok(()) => return, // shutdown
            Err(error) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                    tracing::warn!(
                        failures,
                        "receipt polling: {error:#}; retrying in {pause:?} (pending events stay in the outbox)"
                    );
                } else {
                    tracing::debug!("receipt polling: {error:#}");
                }
            }
        }
        // Whatever happened, the publisher must not wait for a reconciliation forever.
        inner.reconciled.send_replace(true);
        if !sleep_until(&mut shutdown, Instant::now() + pause).await {
            return;
        }
        pause = (pause * 2).min(RECEIPT_POLLER_BACKOFF_MAX);
    }
}

/// Polling, from opening the bucket on. `Ok` only at shutdown; `Err` if it could not
/// start (the rounds themselves ride out failures).
async fn poll(inner: &Arc<Inner>, nats: &Nats, pause: &mut Duration) -> anyhow::Result<()> {
    let mut shutdown = inner.shutdown.subscribe();
    let bucket = stockpile_nats::receipts::receipts_bucket(&nats.js)
        .await
        .context("the sequencer creates the RECEIPTS bucket; has it run yet?")?;
    inner.set_bucket(bucket.clone());
    remember_published(inner)?;
    if !reconcile(inner, &bucket, &mut shutdown).await? {
        return Ok(());
    }
    inner.reconciled.send_replace(true);
    *pause = RECEIPT_POLLER_BACKOFF_MIN;
    tracing::info!("polling RECEIPTS for the receipts of published submissions");

    let mut interval = RECEIPT_POLL_INTERVAL_MIN;
    let mut head = RECEIPT_POLL_CONCURRENCY;
    let mut failures: u32 = 0;
    // The reconciliation just asked about everything.
    let mut last_round = Instant::now();
    loop {
        // Decide inside `select!`, act outside it: the shutdown future borrows the watch
        // value, which must not be held across the awaits below.
        let woken = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            _ = inner.poll_receipts.notified() => true,
            _ = tokio::time::sleep_until(last_round + interval) => false,
        };
        if woken {
            // A publish was acknowledged: its receipt can come any moment now. A burst
            // of acknowledgements makes one round, not one each.
            interval = RECEIPT_POLL_INTERVAL_MIN;
            if !sleep_until(&mut shutdown, last_round + RECEIPT_POLL_INTERVAL_MIN).await {
                return Ok(());
            }
        }
        last_round = Instant::now();
        let connected = nats.client.connection_state() == async_nats::connection::State::Connected;
        if !connected || inner.unreceipted().len() == 0 {
            interval = RECEIPT_POLL_INTERVAL_MAX;
            continue;
        }
        let outcome = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            outcome = round(inner, &bucket, head) => outcome,
        };
        if outcome.asked > 0 && outcome.failed == outcome.asked {
            failures = failures.saturating_add(1);
            let error = outcome.error.unwrap_or_else(|| anyhow!("unknown error"));
            if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                tracing::warn!(
                    failures,
                    "asking RECEIPTS for receipts failed: {error:#}; retrying (pending events stay in the outbox)"
                );
            } else {
                tracing::debug!("asking RECEIPTS for receipts failed: {error:#}");
            }
            interval = RECEIPT_POLL_INTERVAL_MAX;
            continue;
        }
        if failures > 0 {
            tracing::info!(failures, "asking RECEIPTS for receipts works again");
            failures = 0;
        }
        if let Some(error) = outcome.error {
            tracing::debug!(
                failed = outcome.failed,
                asked = outcome.asked,
                "some receipt gets failed: {error:#}"
            );
        }
        interval = if outcome.found > 0 {
            RECEIPT_POLL_INTERVAL_MIN
        } else {
            (interval * 2).min(RECEIPT_POLL_INTERVAL_MAX)
        };
        head = outcome.found.saturating_mul(2).clamp(
            RECEIPT_POLL_CONCURRENCY,
            RECEIPT_POLL_KEYS_MAX - RECEIPT_POLL_SWEEP,
        );
    }
}

/// Sleeps until `deadline`; `false` if shutdown began first.
async fn sleep_until(shutdown: &mut watch::Receiver<bool>, deadline: Instant) -> bool {
    tokio::select! {
        _ = shutdown.wait_for(|stop| *stop) => false,
        _ = tokio::time::sleep_until(deadline) => true,
    }
}

/// Brings the entries acknowledged before this start (the outbox's `published` records)
/// into the set the poller asks about.
fn remember_published(inner: &Inner) -> anyhow::Result<()> {
    let published = inner
        .outbox
        .published_entries()
        .context("reading the outbox")?;
    let mut unreceipted = inner.unreceipted();
    for (key_id, sequence, stream_sequence) in published {
        if let Some(slot) = inner.slot_index(&key_id) {
            unreceipted.insert(slot, sequence, stream_sequence);
        }
    }
    Ok(())
}

/// Asks about every pending entry once, published or not, [`RECEIPT_POLL_KEYS_MAX`] at a
/// time with a short pause between, and stores the receipts found. `Ok(false)` if
/// shutdown began; `Err` at the first failed get (the receipts found so far are kept).
async fn reconcile(
    inner: &Inner,
    bucket: &kv::Store,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let pending: Vec<(usize, u64)> = inner
        .outbox
        .pending()?
        .into_iter()
        .filter_map(|(key_id, sequence)| Some((inner.slot_index(&key_id)?, sequence)))
        .collect();
    if pending.is_empty() {
        return Ok(true);
    }
    let mut found = 0usize;
    for (step, slice) in pending.chunks(RECEIPT_POLL_KEYS_MAX).enumerate() {
        if step > 0 && !sleep_until(shutdown, Instant::now() + RECEIPT_POLL_INTERVAL_MIN).await {
            return Ok(false);
        }
        let fetched = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ok(false),
            fetched = fetch(inner, bucket, slice, 1) => fetched,
        };
        found += fetched.receipts.len();
        if !fetched.receipts.is_empty() {
            inner.store_receipts(fetched.receipts).await?;
        }
        if let Some(error) = fetched.error {
            return Err(error.context("reconciling the outbox with RECEIPTS"));
        }
    }
    tracing::info!(
        pending = pending.len(),
        receipted = found,
        "reconciled the outbox with RECEIPTS"
    );
    Ok(true)
}

/// What one polling round did.
struct Outcome {
    /// Gets answered or failed.
    asked: usize,
    failed: usize,
    /// Receipts found (and stored, or an error logged).
    found: usize,
    /// The first failure.
    error: Option<anyhow::Error>,
}

/// One polling round: picks the entries (see the module documentation), drops those
/// retired meanwhile, asks about the others and stores the receipts found, flushed once.
async fn round(inner: &Inner, bucket: &kv::Store, head: usize) -> Outcome {
    let picked = inner.unreceipted().round(head, RECEIPT_POLL_SWEEP);
    let mut ask = Vec::with_capacity(picked.len());
    for (slot, sequence) in picked {
        match inner.outbox.contains(inner.keys[slot].name(), sequence) {
            Ok(true) => ask.push((slot, sequence)),
            // Its receipt came another way (a direct lookup, the publisher's check).
            Ok(false) => inner.unreceipted().remove(slot, sequence),
            Err(error) => tracing::error!("reading the outbox: {error}"),
        }
    }
    // Give up on a round once a whole wave of gets failed in a row: the server is not
    // answering, and each further get would cost a whole timeout.
    let fetched = fetch(inner, bucket, &ask, RECEIPT_POLL_CONCURRENCY).await;
    let found = fetched.receipts.len();
    if found > 0
        && let Err(error) = inner.store_receipts(fetched.receipts).await
    {
        // The entries stay pending and are asked about again.
        tracing::error!("storing receipts: {error:#}");
    }
    Outcome {
        asked: fetched.asked,
        failed: fetched.failed,
        found,
        error: fetched.error,
    }
}

/// What [`fetch`] got.
#[derive(Default)]
struct Fetched {
    /// Receipts found, each agreeing with the key it was stored under.
    receipts: Vec<Receipt>,
    asked: usize,
    failed: usize,
    error: Option<anyhow::Error>,
}

/// Gets the receipts of `entries` (key slot, sequence), [`RECEIPT_POLL_CONCURRENCY`] at
/// a time, started in order. Stops after `failures_max` failures in a row.
async fn fetch(
    inner: &Inner,
    bucket: &kv::Store,
    entries: &[(usize, u64)],
    failures_max: usize,
) -> Fetched {
    let gets = futures::stream::iter(entries.iter().copied())
        .map(|(slot, sequence)| async move {
            let name = inner.keys[slot].name();
            let got =
                tokio::time::timeout(NATS_LOOKUP_TIMEOUT, get_receipt(bucket, name, sequence))
                    .await
                    .unwrap_or_else(|_| Err(anyhow!("no answer within {NATS_LOOKUP_TIMEOUT:?}")))
                    .with_context(|| {
                        format!("getting the receipt of {}", message_id(name, sequence))
                    });
            (slot, sequence, got)
        })
        .buffer_unordered(RECEIPT_POLL_CONCURRENCY);
    futures::pin_mut!(gets);
    let mut fetched = Fetched::default();
    let mut failures_in_a_row = 0usize;
    while let Some((slot, sequence, got)) = gets.next().await {
        fetched.asked += 1;
        match got {
            Ok(receipt) => {
                failures_in_a_row = 0;
                if let Some(receipt) = receipt
                    && agrees(inner, slot, sequence, &receipt)
                {
                    fetched.receipts.push(receipt);
                }
            }
            Err(error) => {
                fetched.failed += 1;
                failures_in_a_row += 1;
                fetched.error.get_or_insert(error);
                if failures_in_a_row >= failures_max {
                    break;
                }
            }
        }
    }
    fetched
}

/// Whether the receipt found under the key of (slot, sequence) is the receipt of that
/// key and sequence; one that is not is ignored, loudly.
fn agrees(inner: &Inner, slot: usize, sequence: u64, receipt: &Receipt) -> bool {
    let name = inner.keys[slot].name();
    if receipt.key_id == name && receipt.emitter_sequence == sequence {
        return true;
    }
    tracing::warn!(
        key = name,
        sequence,
        receipt_key = receipt.key_id,
        receipt_sequence = receipt.emitter_sequence,
        "RECEIPTS holds another key's receipt under this key; ignored"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sequences(picked: &[(usize, u64)]) -> Vec<u64> {
        picked.iter().map(|(_, sequence)| *sequence).collect()
    }

    #[test]
    fn a_round_takes_the_oldest_then_sweeps_the_rest_in_turn() {
        let mut set = Unreceipted::default();
        // Stream sequence = emitter sequence, inserted out of order.
        for sequence in [5, 1, 9, 3, 7, 2, 10, 4, 8, 6] {
            set.insert(0, sequence, sequence);
        }
        assert_eq!(set.len(), 10);
        assert_eq!(sequences(&set.round(3, 2)), [1, 2, 3, 4, 5]);
        assert_eq!(sequences(&set.round(3, 2)), [1, 2, 3, 6, 7]);
        assert_eq!(sequences(&set.round(3, 2)), [1, 2, 3, 8, 9]);
        // The sweep wraps around past the head.
        assert_eq!(sequences(&set.round(3, 2)), [1, 2, 3, 10, 4]);
        assert_eq!(sequences(&set.round(3, 2)), [1, 2, 3, 5, 6]);
        // A head that covers everything leaves nothing to sweep.
        assert_eq!(sequences(&set.round(20, 2)), (1..=10).collect::<Vec<_>>());
        // A head that grows past the sweep's position restarts it after the head.
        assert_eq!(sequences(&set.round(7, 2)), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn entries_leave_and_move_when_republished() {
        let mut set = Unreceipted::default();
        set.insert(0, 1, 10);
        set.insert(1, 1, 11);
        set.insert(0, 2, 12);
        // Republished: stored again later in SUBMISSIONS.
        set.insert(0, 1, 20);
        assert_eq!(set.len(), 3);
        assert_eq!(set.round(10, 0), [(1, 1), (0, 2), (0, 1)]);
        set.remove(1, 1);
        set.remove(1, 1);
        set.remove(0, 7);
        assert_eq!(set.round(10, 0), [(0, 2), (0, 1)]);
        set.remove(0, 2);
        set.remove(0, 1);
        assert_eq!(set.len(), 0);
        assert!(set.round(10, 4).is_empty());
    }
}
