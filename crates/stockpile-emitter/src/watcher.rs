//! The receipt watcher: follows the RECEIPTS bucket for the emitter's keys and retires
//! each outbox entry whose receipt arrives (receipt stored and entry removed in one
//! flushed transaction).
//!
//! It watches only new receipts (a key's history can be the whole ledger) and, each
//! time the watch (re)starts, looks up the receipt of every pending entry once, so
//! nothing written while it was not watching is missed. While the bucket does not exist
//! (the sequencer creates the topology) it retries with back-off; the outbox keeps
//! everything meanwhile.

use std::sync::Arc;

use anyhow::Context as _;
use async_nats::jetstream::kv::{self, Operation};
use futures::StreamExt as _;
use stockpile_nats::receipts::{Receipt, get_receipt};

use crate::limits::{
    FAILURE_LOG_EVERY, NATS_LOOKUP_TIMEOUT, RECONCILE_CONCURRENCY, WATCH_BACKOFF_MAX,
    WATCH_BACKOFF_MIN,
};
use crate::sdk::{Inner, Nats};

/// Runs until shutdown.
pub(crate) async fn run(inner: Arc<Inner>, nats: Nats) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut pause = WATCH_BACKOFF_MIN;
    let mut failures: u32 = 0;
    loop {
        match watch(&inner, &nats, &mut pause).await {
            Ok(()) => return, // shutdown
            Err(error) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                    tracing::warn!(
                        failures,
                        "receipt watch: {error:#}; retrying in {pause:?} (pending events stay in the outbox)"
                    );
                } else {
                    tracing::debug!("receipt watch: {error:#}");
                }
            }
        }
        // Whatever happened, the publisher must not wait for a reconciliation forever.
        inner.reconciled.send_replace(true);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        pause = (pause * 2).min(WATCH_BACKOFF_MAX);
    }
}

/// One watch, from opening the bucket to its end. `Ok` only at shutdown.
async fn watch(
    inner: &Arc<Inner>,
    nats: &Nats,
    pause: &mut std::time::Duration,
) -> anyhow::Result<()> {
    let mut shutdown = inner.shutdown.subscribe();
    let bucket = stockpile_nats::receipts::receipts_bucket(&nats.js)
        .await
        .context("the sequencer creates the RECEIPTS bucket; has it run yet?")?;
    inner.set_bucket(bucket.clone());
    let subjects: Vec<String> = inner
        .keys
        .iter()
        .map(|slot| format!("{}.>", slot.receipt_prefix))
        .collect();
    let mut entries = bucket
        .watch_many(subjects)
        .await
        .context("watching the RECEIPTS bucket")?;
    // Started before reconciling, so a receipt written in between is seen by one or the
    // other (or both: storing a receipt twice is harmless).
    reconcile(inner, &bucket).await?;
    inner.reconciled.send_replace(true);
    *pause = WATCH_BACKOFF_MIN;
    tracing::info!("watching receipts");
    loop {
        // Decide inside `select!`, act outside it: the shutdown future borrows the watch
        // value, which must not be held across `handle`'s awaits.
        let next = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            next = entries.next() => next,
        };
        match next {
            None => anyhow::bail!("the receipt watch ended"),
            Some(Err(error)) => return Err(error).context("the receipt watch failed"),
            Some(Ok(entry)) => handle(inner, entry).await,
        }
    }
}

/// Looks up the receipt of every pending entry, a few at a time.
async fn reconcile(inner: &Arc<Inner>, bucket: &kv::Store) -> anyhow::Result<()> {
    let pending = inner.outbox.pending()?;
    if pending.is_empty() {
        return Ok(());
    }
    let total = pending.len();
    let lookups = futures::stream::iter(pending)
        .filter(|(key, _)| std::future::ready(inner.slot_by_name(key).is_some()))
        .map(|(key, sequence)| async move {
            tokio::time::timeout(NATS_LOOKUP_TIMEOUT, get_receipt(bucket, &key, sequence))
                .await
                .with_context(|| format!("looking up the receipt of {key}/{sequence} timed out"))?
        })
        .buffer_unordered(RECONCILE_CONCURRENCY);
    futures::pin_mut!(lookups);
    let mut found = 0usize;
    while let Some(receipt) = lookups.next().await {
        if let Some(receipt) = receipt? {
            inner.store_receipt(receipt).await?;
            found += 1;
        }
    }
    tracing::info!(
        pending = total,
        receipted = found,
        "reconciled the outbox with RECEIPTS"
    );
    Ok(())
}

async fn handle(inner: &Arc<Inner>, entry: kv::Entry) {
    if entry.operation != Operation::Put {
        return;
    }
    let Some(receipt) = parse(inner, &entry.key, &entry.value) else {
        return;
    };
    if let Err(error) = inner.store_receipt(receipt).await {
        // The entry stays pending; the publisher's overdue check fetches it again.
        tracing::error!(key = entry.key, "storing a receipt: {error:#}");
    }
}

/// The receipt under bucket key `<key prefix>.<sequence>`, if it is one of ours and
/// agrees with its key.
fn parse(inner: &Inner, key: &str, value: &[u8]) -> Option<Receipt> {
    let (prefix, sequence) = key.rsplit_once('.')?;
    let slot = inner
        .keys
        .iter()
        .find(|slot| slot.receipt_prefix == prefix)?;
    let Ok(sequence) = sequence.parse::<u64>() else {
        tracing::warn!(key, "a RECEIPTS key without a sequence; ignored");
        return None;
    };
    let receipt: Receipt = match serde_json::from_slice(value) {
        Ok(receipt) => receipt,
        Err(error) => {
            tracing::warn!(
                key,
                "a RECEIPTS value that is not a receipt ({error}); ignored"
            );
            return None;
        }
    };
    if receipt.key_id != slot.name() || receipt.emitter_sequence != sequence {
        tracing::warn!(
            key,
            receipt_key = receipt.key_id,
            receipt_sequence = receipt.emitter_sequence,
            "a receipt stored under another key's name; ignored"
        );
        return None;
    }
    Some(receipt)
}
