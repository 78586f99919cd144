//! Submissions and ledger entries: decoding that keeps the exact bytes, and encoding.
//!
//! A submission's `event` bytes are what the emitter signed; an entry's `submission`
//! bytes are what the sequencer received. Both are handed on verbatim so that hashes and
//! signatures are checked over the bytes that travelled, never over a re-encoding.

use crate::event_codec::{EventDecodeError, decode_event, encode_event};
use crate::wire;
use bytes::Bytes;
use prost::Message as _;
use stockpile_core::events::Event;
use stockpile_core::hash::{Hash32, event_signature_message};
use stockpile_core::keys::SignerKey;
use stockpile_core::ledger::{Candidate, SignatureCheck};
use stockpile_core::limits::{
    ENTRY_BYTES_MAX, ID_BYTES_MAX, SUBMISSION_BYTES_MAX, TEXT_BYTES_MAX, TIMESTAMP_MS_MAX,
};
use stockpile_core::time::TimestampMs;

/// A submission decoded down to its event, with the signed bytes kept verbatim.
#[derive(Debug, Clone)]
pub struct DecodedSubmission {
    pub event_bytes: Bytes,
    pub key_id: String,
    pub signature: Bytes,
    pub event: Event,
}

impl DecodedSubmission {
    /// The submission as the admission code takes it, borrowing the exact signed bytes.
    pub fn candidate(&self, signature_check: SignatureCheck) -> Candidate<'_> {
        Candidate {
            key_id: &self.key_id,
            event_bytes: &self.event_bytes,
            signature: &self.signature,
            event: &self.event,
            signature_check,
        }
    }
}

/// Why submission bytes could not be read. Each becomes a rejection record with the
/// code from [`SubmissionError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionError {
    #[error("submission is {size_bytes} bytes; the limit is {limit_bytes}")]
    Oversized {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("submission is not a protobuf stockpile.v1.Submission: {detail}")]
    Malformed { detail: String },
    #[error("submission field {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("submitted event: {0}")]
    Event(#[from] EventDecodeError),
}

impl SubmissionError {
    /// Stable code for the rejection record.
    pub fn code(&self) -> &'static str {
        match self {
            SubmissionError::Oversized { .. } => "malformed.oversized",
            SubmissionError::Malformed { .. } => "malformed.submission",
            SubmissionError::Invalid { .. } => "malformed.submission_field",
            SubmissionError::Event(_) => "malformed.event",
        }
    }
}

/// Decodes a submission and its event. Never panics, whatever the bytes.
pub fn decode_submission(bytes: &[u8]) -> Result<DecodedSubmission, SubmissionError> {
    if bytes.len() > SUBMISSION_BYTES_MAX {
        return Err(SubmissionError::Oversized {
            size_bytes: bytes.len(),
            limit_bytes: SUBMISSION_BYTES_MAX,
        });
    }
    let submission =
        wire::Submission::decode(bytes).map_err(|error| SubmissionError::Malformed {
            detail: error.to_string(),
        })?;
    if submission.key_id.is_empty() || submission.key_id.len() > ID_BYTES_MAX {
        return Err(SubmissionError::Invalid {
            field: "key_id",
            problem: format!(
                "must be 1 to {ID_BYTES_MAX} bytes, is {}",
                submission.key_id.len()
            ),
        });
    }
    if submission.signature.len() != 64 {
        return Err(SubmissionError::Invalid {
            field: "signature",
            problem: format!(
                "an Ed25519 signature is 64 bytes, this is {}",
                submission.signature.len()
            ),
        });
    }
    let event = decode_event(&submission.event)?;
    Ok(DecodedSubmission {
        event_bytes: submission.event,
        key_id: submission.key_id,
        signature: submission.signature,
        event,
    })
}

/// Serializes a submission from its parts.
pub fn encode_submission(event_bytes: &[u8], key_id: &str, signature: &[u8]) -> Vec<u8> {
    wire::Submission {
        event: Bytes::copy_from_slice(event_bytes),
        key_id: key_id.to_string(),
        signature: Bytes::copy_from_slice(signature),
    }
    .encode_to_vec()
}

/// Encodes and signs an event as an emitter does: the returned bytes are the submission
/// to publish. The key id is the signer key's name.
pub fn sign_event(event: &Event, key: &SignerKey) -> Vec<u8> {
    let event_bytes = encode_event(event);
    let signature = key.sign(&event_signature_message(&event_bytes));
    encode_submission(&event_bytes, key.name(), &signature)
}

/// The sequencer's verdict on an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryVerdict {
    Accepted,
    Rejected { code: String, reason: String },
}

/// A ledger entry, with the submission bytes verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEntry {
    pub index: u64,
    pub prev_entry_hash: Hash32,
    pub submission: Bytes,
    pub recorded_at: TimestampMs,
    pub verdict: EntryVerdict,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("entry is {size_bytes} bytes; the limit is {limit_bytes}")]
    Oversized {
        size_bytes: usize,
        limit_bytes: usize,
    },
    #[error("entry is not a protobuf stockpile.v1.LedgerEntry: {detail}")]
    Malformed { detail: String },
    #[error("entry field {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
}

/// Decodes a ledger entry. Never panics, whatever the bytes.
pub fn decode_entry(bytes: &[u8]) -> Result<DecodedEntry, EntryError> {
    if bytes.len() > ENTRY_BYTES_MAX {
        return Err(EntryError::Oversized {
            size_bytes: bytes.len(),
            limit_bytes: ENTRY_BYTES_MAX,
        });
    }
    let entry = wire::LedgerEntry::decode(bytes).map_err(|error| EntryError::Malformed {
        detail: error.to_string(),
    })?;
    let prev_entry_hash =
        Hash32::from_slice(&entry.prev_entry_hash).ok_or_else(|| EntryError::Invalid {
            field: "prev_entry_hash",
            problem: format!("must be 32 bytes, is {}", entry.prev_entry_hash.len()),
        })?;
    let verdict = match wire::Verdict::try_from(entry.verdict) {
        Ok(wire::Verdict::Accepted) => {
            if !entry.rejection_code.is_empty() || !entry.rejection_reason.is_empty() {
                return Err(EntryError::Invalid {
                    field: "rejection_code",
                    problem: "set on an accepted entry".into(),
                });
            }
            EntryVerdict::Accepted
        }
        Ok(wire::Verdict::Rejected) => {
            if entry.rejection_code.is_empty() || entry.rejection_code.len() > ID_BYTES_MAX {
                return Err(EntryError::Invalid {
                    field: "rejection_code",
                    problem: format!("a rejection needs a code of 1 to {ID_BYTES_MAX} bytes"),
                });
            }
            if entry.rejection_reason.len() > TEXT_BYTES_MAX {
                return Err(EntryError::Invalid {
                    field: "rejection_reason",
                    problem: "too long".into(),
                });
            }
            EntryVerdict::Rejected {
                code: entry.rejection_code,
                reason: entry.rejection_reason,
            }
        }
        _ => {
            return Err(EntryError::Invalid {
                field: "verdict",
                problem: format!("unknown verdict {}", entry.verdict),
            });
        }
    };
    if !(1..=TIMESTAMP_MS_MAX).contains(&entry.recorded_at_ms) {
        return Err(EntryError::Invalid {
            field: "recorded_at_ms",
            problem: format!(
                "must be a positive Unix time in milliseconds up to {TIMESTAMP_MS_MAX}, is {}",
                entry.recorded_at_ms
            ),
        });
    }
    Ok(DecodedEntry {
        index: entry.index,
        prev_entry_hash,
        submission: entry.submission,
        recorded_at: TimestampMs(entry.recorded_at_ms),
        verdict,
    })
}

/// Serializes a ledger entry.
pub fn encode_entry(entry: &DecodedEntry) -> Vec<u8> {
    let (verdict, rejection_code, rejection_reason) = match &entry.verdict {
        EntryVerdict::Accepted => (wire::Verdict::Accepted, String::new(), String::new()),
        EntryVerdict::Rejected { code, reason } => {
            (wire::Verdict::Rejected, code.clone(), reason.clone())
        }
    };
    wire::LedgerEntry {
        index: entry.index,
        prev_entry_hash: Bytes::copy_from_slice(entry.prev_entry_hash.as_bytes()),
        submission: entry.submission.clone(),
        recorded_at_ms: entry.recorded_at.0,
        verdict: verdict as i32,
        rejection_code,
        rejection_reason,
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_garbage_is_refused() {
        let entry = DecodedEntry {
            index: 7,
            prev_entry_hash: Hash32::digest(b"prev"),
            submission: Bytes::from_static(b"\xff\x00not a submission"),
            recorded_at: TimestampMs(1_700_000_000_000),
            verdict: EntryVerdict::Rejected {
                code: "malformed.submission".into(),
                reason: "garbage".into(),
            },
        };
        let bytes = encode_entry(&entry);
        assert_eq!(decode_entry(&bytes), Ok(entry));
        assert!(matches!(
            decode_entry(b"\xff\xff\xff"),
            Err(EntryError::Malformed { .. })
        ));
        assert!(matches!(
            decode_submission(b"\x0a\x05abc"),
            Err(SubmissionError::Malformed { .. })
        ));
        let oversized = vec![0u8; SUBMISSION_BYTES_MAX + 1];
        assert_eq!(
            decode_submission(&oversized).unwrap_err().code(),
            "malformed.oversized"
        );
    }
}
