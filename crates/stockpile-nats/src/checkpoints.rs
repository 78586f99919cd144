//! The CHECKPOINTS stream: signed notes, in order of publication, sizes never decreasing.

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use stockpile_core::checkpoint::Checkpoint;

use crate::topology::{CHECKPOINTS_STREAM, CHECKPOINTS_SUBJECT};

/// A checkpoint as stored: the stream sequence and the signed note.
#[derive(Debug, Clone)]
pub struct StoredCheckpoint {
    pub sequence: u64,
    pub note: String,
}

impl StoredCheckpoint {
    /// The checkpoint body (origin, size, root) read without checking the signature; the
    /// caller verifies against the keys it trusts.
    pub fn unverified_body(&self) -> anyhow::Result<Checkpoint> {
        let body = self
            .note
            .split_once("\n\n")
            .map(|(body, _)| format!("{body}\n"))
            .context("stored checkpoint is not a signed note")?;
        Checkpoint::parse(&body).map_err(|error| anyhow::anyhow!("stored checkpoint: {error}"))
    }
}

/// The latest checkpoint, if any.
pub async fn latest_checkpoint(
    js: &jetstream::Context,
) -> anyhow::Result<Option<StoredCheckpoint>> {
    let stream = js
        .get_stream(CHECKPOINTS_STREAM)
        .await
        .with_context(|| format!("opening stream {CHECKPOINTS_STREAM}"))?;
    let info = stream.get_info().await.context("reading checkpoints")?;
    if info.state.messages == 0 {
        return Ok(None);
    }
    let message = stream
        .get_raw_message(info.state.last_sequence)
        .await
        .context("reading the latest checkpoint")?;
    let note = String::from_utf8(message.payload.to_vec())
        .context("the latest checkpoint is not UTF-8 text")?;
    Ok(Some(StoredCheckpoint {
        sequence: message.sequence,
        note,
    }))
}

/// Every checkpoint, in publication order.
pub async fn all_checkpoints(js: &jetstream::Context) -> anyhow::Result<Vec<StoredCheckpoint>> {
    checkpoints_from(js, 1, u64::MAX).await
}

/// At most `max` checkpoints from stream sequence `from_sequence` on, in publication order.
pub async fn checkpoints_from(
    js: &jetstream::Context,
    from_sequence: u64,
    max: u64,
) -> anyhow::Result<Vec<StoredCheckpoint>> {
    let mut out = Vec::new();
    crate::ledger::read_stream_range(js, CHECKPOINTS_STREAM, from_sequence, max, |message| {
        let note = String::from_utf8(message.payload.to_vec())
            .with_context(|| format!("checkpoint {} is not UTF-8 text", message.sequence))?;
        out.push(StoredCheckpoint {
            sequence: message.sequence,
            note,
        });
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Outcome of publishing a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointPublish {
    Published {
        sequence: u64,
    },
    /// Another sequencer published first; the caller re-reads the latest and decides.
    Conflict,
}

/// Publishes a signed note if the stream's last sequence is still `expected_last`.
pub async fn publish_checkpoint(
    js: &jetstream::Context,
    note: &str,
    expected_last: u64,
) -> anyhow::Result<CheckpointPublish> {
    let ack = js
        .send_publish(
            CHECKPOINTS_SUBJECT,
            PublishMessage::build()
                .payload(note.as_bytes().to_vec().into())
                .expected_last_sequence(expected_last),
        )
        .await
        .context("publishing a checkpoint")?
        .await;
    match ack {
        Ok(ack) => Ok(CheckpointPublish::Published {
            sequence: ack.sequence,
        }),
        Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
            Ok(CheckpointPublish::Conflict)
        }
        Err(error) => bail!("publishing a checkpoint: {error}"),
    }
}
