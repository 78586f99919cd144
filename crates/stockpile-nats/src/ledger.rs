//! Reading the LEDGER stream: entries in order from any index, with every sequence
//! accounted for.
//!
//! The stream sequence of entry `i` is `i + 1`. The stream denies deletes and purges, so
//! a missing sequence is never legitimate; the reader stops with an error naming it
//! rather than skipping (an ordered consumer would otherwise resume silently past it).

use anyhow::{Context as _, bail};
use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use bytes::Bytes;
use futures::StreamExt;

use crate::topology::{LEDGER_STREAM, SUBMISSION_SEQUENCE_HEADER};

/// One ledger message.
#[derive(Debug, Clone)]
pub struct LedgerMessage {
    pub index: u64,
    /// The serialized entry, verbatim.
    pub entry: Bytes,
    /// The SUBMISSIONS stream sequence it came from, when the header is present.
    pub submission_sequence: Option<u64>,
}

/// Number of entries in the ledger now.
pub async fn ledger_size(js: &jetstream::Context) -> anyhow::Result<u64> {
    let stream = js
        .get_stream(LEDGER_STREAM)
        .await
        .with_context(|| format!("opening stream {LEDGER_STREAM}"))?;
    let info = stream
        .get_info()
        .await
        .with_context(|| format!("reading stream {LEDGER_STREAM}"))?;
    Ok(info.state.last_sequence)
}

/// Reads entries `from..` up to the ledger's size when the call starts, handing each to
/// `visit` in order. Returns the number read.
pub async fn read_ledger(
    js: &jetstream::Context,
    from: u64,
    mut visit: impl FnMut(LedgerMessage) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let stream = js
        .get_stream(LEDGER_STREAM)
        .await
        .with_context(|| format!("opening stream {LEDGER_STREAM}"))?;
    let info = stream
        .get_info()
        .await
        .with_context(|| format!("reading stream {LEDGER_STREAM}"))?;
    let end = info.state.last_sequence;
    if info.state.first_sequence > 1 && end > 0 {
        bail!(
            "stream {LEDGER_STREAM} starts at sequence {}: entries 0..{} are missing",
            info.state.first_sequence,
            info.state.first_sequence - 1
        );
    }
    if from >= end {
        return Ok(0);
    }
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from + 1,
            },
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating a reader on {LEDGER_STREAM}"))?;
    let mut messages = consumer
        .messages()
        .await
        .with_context(|| format!("reading {LEDGER_STREAM}"))?;
    let mut expected = from + 1;
    while expected <= end {
        let Some(message) = messages.next().await else {
            bail!("{LEDGER_STREAM} reader ended at sequence {expected} of {end}");
        };
        let message = message.with_context(|| format!("reading {LEDGER_STREAM}"))?;
        let sequence = message
            .info()
            .map_err(|error| anyhow::anyhow!("ledger message without metadata: {error}"))?
            .stream_sequence;
        if sequence != expected {
            bail!(
                "{LEDGER_STREAM} skipped from sequence {} to {sequence}: entries {}..{} are missing",
                expected - 1,
                expected - 1,
                sequence - 2
            );
        }
        let submission_sequence = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(SUBMISSION_SEQUENCE_HEADER))
            .and_then(|value| value.as_str().parse().ok());
        visit(LedgerMessage {
            index: sequence - 1,
            entry: message.payload.clone(),
            submission_sequence,
        })?;
        expected += 1;
    }
    Ok(end - from)
}
