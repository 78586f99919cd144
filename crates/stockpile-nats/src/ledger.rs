//! Reading the LEDGER stream: entries in order from any index, with every sequence
//! accounted for.
//!
//! The stream sequence of entry `i` is `i + 1`. The stream denies deletes and purges, so
//! a missing sequence is never legitimate; the reader stops with an error naming it
//! rather than skipping. Reading uses direct gets, not consumers (see [`read_stream`]).

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, message::StreamMessage, stream::DirectGetErrorKind};
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
    visit: impl FnMut(LedgerMessage) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    read_ledger_range(js, from, u64::MAX, visit).await
}

/// As [`read_ledger`], reading at most `max_entries` entries (a bounded batch).
pub async fn read_ledger_range(
    js: &jetstream::Context,
    from: u64,
    max_entries: u64,
    mut visit: impl FnMut(LedgerMessage) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    read_stream_range(js, LEDGER_STREAM, from + 1, max_entries, |message| {
        let submission_sequence = message
            .headers
            .get(SUBMISSION_SEQUENCE_HEADER)
            .and_then(|value| value.as_str().parse().ok());
        visit(LedgerMessage {
            index: message.sequence - 1,
            entry: message.payload,
            submission_sequence,
        })
    })
    .await
}

/// Direct gets in flight at once while reading a stream.
const DIRECT_GETS_IN_FLIGHT: usize = 64;
/// Attempts to get one message before it counts as missing: in a cluster a replica may
/// answer before it has caught up with the leader.
const DIRECT_GET_ATTEMPTS: u32 = 20;
const DIRECT_GET_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Reads messages `from_sequence..=last` of a stream (last as of the call) in order, by
/// pipelined direct gets. Readers need no right to create consumers: a consumer's
/// creator can point push delivery at any subject, so read-only users are given none.
/// A sequence that stays missing is an error naming it (nothing may leave these streams).
pub async fn read_stream(
    js: &jetstream::Context,
    name: &str,
    from_sequence: u64,
    visit: impl FnMut(StreamMessage) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    read_stream_range(js, name, from_sequence, u64::MAX, visit).await
}

/// As [`read_stream`], reading at most `max_messages` messages (a bounded batch).
pub async fn read_stream_range(
    js: &jetstream::Context,
    name: &str,
    from_sequence: u64,
    max_messages: u64,
    mut visit: impl FnMut(StreamMessage) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let stream = js
        .get_stream(name)
        .await
        .with_context(|| format!("opening stream {name}"))?;
    let info = stream
        .get_info()
        .await
        .with_context(|| format!("reading stream {name}"))?;
    let end = info.state.last_sequence;
    if info.state.first_sequence > 1 && end > 0 {
        bail!(
            "stream {name} starts at sequence {}: messages 1..{} are missing",
            info.state.first_sequence,
            info.state.first_sequence - 1
        );
    }
    let from_sequence = from_sequence.max(1);
    if from_sequence > end || max_messages == 0 {
        return Ok(0);
    }
    let end = end.min(from_sequence.saturating_add(max_messages - 1));
    let stream = &stream;
    let mut messages = futures::stream::iter(from_sequence..=end)
        .map(|sequence| async move { (sequence, get_one(stream, name, sequence).await) })
        .buffered(DIRECT_GETS_IN_FLIGHT);
    let mut read = 0;
    while let Some((sequence, message)) = messages.next().await {
        let message = message?;
        anyhow::ensure!(
            message.sequence == sequence,
            "stream {name} answered sequence {} for {sequence}",
            message.sequence
        );
        visit(message)?;
        read += 1;
    }
    Ok(read)
}

async fn get_one(
    stream: &async_nats::jetstream::stream::Stream,
    name: &str,
    sequence: u64,
) -> anyhow::Result<StreamMessage> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match stream.direct_get(sequence).await {
            Ok(message) => return Ok(message),
            Err(error)
                if attempt < DIRECT_GET_ATTEMPTS
                    && matches!(
                        error.kind(),
                        DirectGetErrorKind::NotFound | DirectGetErrorKind::TimedOut
                    ) =>
            {
                tokio::time::sleep(DIRECT_GET_RETRY_PAUSE).await;
            }
            Err(error) if error.kind() == DirectGetErrorKind::NotFound => {
                bail!("stream {name} has no message {sequence}: it is missing")
            }
            Err(error) => {
                return Err(error).with_context(|| format!("reading {name} message {sequence}"));
            }
        }
    }
}
