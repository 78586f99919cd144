//! The inclusion-proof request/reply protocol between emitters (or anyone allowed) and
//! the sequencer, which holds the Merkle tree.
//!
//! Request: JSON [`ProofRequest`] on `stockpile.proof.inclusion`. Reply: JSON
//! [`ProofReply`] holding a C2SP tlog-proof (checkpoint included) or an error.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use serde::{Deserialize, Serialize};

use crate::topology::PROOF_INCLUSION_SUBJECT;

/// How long a proof request waits for the sequencer.
pub const PROOF_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofRequest {
    /// Ledger index of the entry to prove.
    pub index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofReply {
    /// A tlog-proof against the latest signed checkpoint covering the entry.
    Proof {
        tlog_proof: String,
        checkpoint_size: u64,
    },
    /// The entry exists but no signed checkpoint covers it yet.
    NotYetCovered {
        ledger_size: u64,
        checkpoint_size: u64,
    },
    /// The request was wrong (index beyond the ledger, malformed JSON).
    Error { message: String },
}

/// Asks a sequencer for the inclusion proof of entry `index`.
pub async fn request_inclusion_proof(
    client: &async_nats::Client,
    index: u64,
) -> anyhow::Result<ProofReply> {
    let payload = serde_json::to_vec(&ProofRequest { index }).expect("serializes");
    let reply = tokio::time::timeout(
        PROOF_REQUEST_TIMEOUT,
        client.request(PROOF_INCLUSION_SUBJECT, payload.into()),
    )
    .await
    .map_err(|_| {
        anyhow!("no sequencer answered the proof request within {PROOF_REQUEST_TIMEOUT:?}")
    })?
    .context("requesting an inclusion proof (is a sequencer running?)")?;
    serde_json::from_slice(&reply.payload).context("the proof reply is not a proof reply")
}
