//! Receipts: what became of each (signing key, emitter sequence), kept in the RECEIPTS
//! key-value bucket so that an emitter learns its ledger index and entry hash.
//!
//! The sequencer writes a receipt with `create`, so the first outcome stands: a later
//! replay of the same signed event is refused in the ledger but cannot overwrite the
//! receipt of the original.

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

use crate::topology::RECEIPTS_BUCKET;

/// The outcome of one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub key_id: String,
    pub emitter_sequence: u64,
    pub event_id: String,
    /// Ledger index of the entry.
    pub index: u64,
    /// Hex SHA-256 chain-link hash of the entry (the next entry's `prev_entry_hash`).
    pub entry_hash: String,
    /// Hex RFC 6962 leaf hash of the entry, what inclusion proofs prove.
    pub leaf_hash: String,
    pub accepted: bool,
    /// Rejection code and reason, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
}

/// The bucket key of a receipt: the key id made safe for a key (`[A-Za-z0-9_-]` kept, every
/// other byte `=XX`), a dot, the emitter sequence. Distinct key ids give distinct keys.
///
/// ```
/// use stockpile_nats::receipts::receipt_key;
/// assert_eq!(receipt_key("us.depot", 7), "us=2Edepot.7");
/// ```
pub fn receipt_key(key_id: &str, emitter_sequence: u64) -> String {
    format!("{}.{emitter_sequence}", receipt_key_prefix(key_id))
}

/// The part of a receipt key naming the signing key (for watching all of a key's receipts
/// with `<prefix>.>`).
pub fn receipt_key_prefix(key_id: &str) -> String {
    let mut out = String::with_capacity(key_id.len());
    for byte in key_id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("={byte:02X}"));
        }
    }
    out
}

/// Opens the receipts bucket.
pub async fn receipts_bucket(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    js.get_key_value(RECEIPTS_BUCKET)
        .await
        .with_context(|| format!("opening key-value bucket {RECEIPTS_BUCKET}"))
}

/// Reads one receipt, if the submission has been sequenced.
pub async fn get_receipt(
    bucket: &kv::Store,
    key_id: &str,
    emitter_sequence: u64,
) -> anyhow::Result<Option<Receipt>> {
    let key = receipt_key(key_id, emitter_sequence);
    let Some(value) = bucket
        .get(key.as_str())
        .await
        .with_context(|| format!("reading receipt {key}"))?
    else {
        return Ok(None);
    };
    let receipt = serde_json::from_slice(&value)
        .with_context(|| format!("receipt {key} is not a receipt record"))?;
    Ok(Some(receipt))
}

/// Records a receipt unless one exists for the same key and sequence. Returns whether
/// this call wrote it.
pub async fn record_receipt(bucket: &kv::Store, receipt: &Receipt) -> anyhow::Result<bool> {
    let key = receipt_key(&receipt.key_id, receipt.emitter_sequence);
    let value = serde_json::to_vec(receipt).expect("a receipt serializes");
    match bucket.create(key.as_str(), value.into()).await {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error).with_context(|| format!("recording receipt {key}")),
    }
}
