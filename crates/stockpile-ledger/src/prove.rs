//! Inclusion and consistency proofs from an export, and their offline checks.
//!
//! Inclusion proofs are C2SP tlog-proof files: the entry's index, its RFC 6962 audit path
//! and the signed checkpoint verbatim, verifiable by any conforming implementation given
//! the entry bytes. C2SP has no file format for consistency proofs, so they travel as a
//! small JSON document holding both signed checkpoints verbatim and the RFC 6962 proof
//! hashes in base64 — the same content as a tlog-witness `add-checkpoint` request.

use crate::export::{ExportError, ExportReader};
use crate::trust::TrustRoot;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Read;
use stockpile_core::checkpoint::{Checkpoint, open_checkpoint};
use stockpile_core::hash::Hash32;
use stockpile_core::keys::VerifierKey;
use stockpile_core::merkle::{MerkleTree, leaf_hash, verify_consistency};
use stockpile_core::tlog_proof::TlogProof;
use stockpile_proto::export_codec::ExportRecord;

/// The `format` value of a consistency-proof file.
pub const CONSISTENCY_FORMAT: &str = "stockpile-consistency/v1";

#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("the export's origin {found:?} is not the trust root's {expected:?}")]
    WrongOrigin { expected: String, found: String },
    #[error("entry {index} is not among the {entries} entries held")]
    NoSuchEntry { index: u64, entries: u64 },
    #[error("no verified checkpoint covers entry {index}")]
    NoCheckpointCovers { index: u64 },
    #[error("no verified checkpoint of size {size}; verified sizes: {available:?}")]
    NoCheckpointOfSize { size: u64, available: Vec<u64> },
    #[error("the checkpoint of size {size} is beyond the {entries} entries held")]
    CheckpointAhead { size: u64, entries: u64 },
    #[error("consistency needs an old size below the new one: {old} → {new}")]
    BadSizes { old: u64, new: u64 },
    #[error("checkpoint of size {size} does not verify: {problem}")]
    BadCheckpoint { size: u64, problem: String },
    #[error("the proof does not verify: {0}")]
    Invalid(String),
    #[error("the consistency-proof file is not valid: {0}")]
    BadFile(String),
}

/// A checkpoint of the export whose signature and root were both verified.
#[derive(Debug, Clone)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

/// Entries' Merkle tree and the checkpoints verified against it: what proofs are made
/// from. Loaded from an export ([`ProofSource::load`]) or grown entry by entry
/// ([`ProofSource::push_entry`], [`ProofSource::add_checkpoint`]) by a projector. Entry
/// bytes are not kept, only the one asked for.
#[derive(Debug, Clone, Default)]
pub struct ProofSource {
    tree: MerkleTree,
    /// By size; each one's signature, origin and root verified.
    checkpoints: Vec<VerifiedCheckpoint>,
    wanted_entry: Option<Bytes>,
}

/// What [`ProofSource::add_checkpoint`] did with a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointAdded {
    /// Verified and kept.
    Added { size: u64 },
    /// The very same checkpoint was already kept.
    AlreadyKnown { size: u64 },
}

impl ProofSource {
    /// No entries, no checkpoints.
    pub fn new() -> ProofSource {
        ProofSource::default()
    }

    /// Reads an export, verifying every checkpoint (trusted key, origin, root) so that no
    /// proof is ever issued against a checkpoint that does not match the entries. Keeps
    /// the bytes of entry `keep_entry`, if given.
    pub fn load<R: Read>(
        input: R,
        trust: &TrustRoot,
        keep_entry: Option<u64>,
    ) -> Result<ProofSource, ProveError> {
        let mut reader = ExportReader::open(input)?;
        if reader.origin() != trust.origin {
            return Err(ProveError::WrongOrigin {
                expected: trust.origin.clone(),
                found: reader.origin().into(),
            });
        }
        let mut source = ProofSource::new();
        while let Some(record) = reader.next_record()? {
            match record {
                ExportRecord::Entry(bytes) => {
                    if keep_entry == Some(source.entries()) {
                        source.wanted_entry = Some(bytes.clone());
                    }
                    source.push_entry(&bytes);
                }
                ExportRecord::Checkpoint(note) => {
                    source.add_checkpoint(&note, &trust.origin, &trust.log_keys)?;
                }
                ExportRecord::Header { .. } => {}
            }
        }
        Ok(source)
    }

    /// Appends the next entry's leaf.
    pub fn push_entry(&mut self, entry_bytes: &[u8]) {
        self.tree.push(leaf_hash(entry_bytes));
    }

    /// Verifies a signed checkpoint note — a trusted log key, the origin, a size within
    /// the entries held and the root of those entries — and keeps it. A different
    /// checkpoint of a size already kept is refused (its root cannot match as well).
    pub fn add_checkpoint(
        &mut self,
        note: &[u8],
        origin: &str,
        log_keys: &[VerifierKey],
    ) -> Result<CheckpointAdded, ProveError> {
        let (checkpoint, _) =
            open_checkpoint(note, origin, log_keys).map_err(|error| ProveError::BadCheckpoint {
                size: 0,
                problem: error.to_string(),
            })?;
        let size = checkpoint.size;
        if size > self.tree.size() {
            return Err(ProveError::CheckpointAhead {
                size,
                entries: self.tree.size(),
            });
        }
        if self.tree.root_at(size).ok() != Some(checkpoint.root) {
            return Err(ProveError::BadCheckpoint {
                size,
                problem: "its root does not match the entries".into(),
            });
        }
        let note = String::from_utf8_lossy(note).into_owned();
        match self
            .checkpoints
            .binary_search_by_key(&size, |known| known.checkpoint.size)
        {
            Ok(position) if self.checkpoints[position].note == note => {
                Ok(CheckpointAdded::AlreadyKnown { size })
            }
            // Same size and root, other signatures (a cosigned copy): keep the first.
            Ok(_) => Ok(CheckpointAdded::AlreadyKnown { size }),
            Err(position) => {
                self.checkpoints
                    .insert(position, VerifiedCheckpoint { checkpoint, note });
                Ok(CheckpointAdded::Added { size })
            }
        }
    }

    /// The verified checkpoint of the largest size, if any.
    pub fn latest_checkpoint(&self) -> Option<&VerifiedCheckpoint> {
        self.checkpoints.last()
    }

    /// The root of the first `size` entries' tree.
    pub fn root_at(&self, size: u64) -> Option<Hash32> {
        self.tree.root_at(size).ok()
    }

    pub fn entries(&self) -> u64 {
        self.tree.size()
    }

    pub fn checkpoints(&self) -> &[VerifiedCheckpoint] {
        &self.checkpoints
    }

    /// The bytes of the entry asked for in [`ProofSource::load`].
    pub fn wanted_entry(&self) -> Option<&Bytes> {
        self.wanted_entry.as_ref()
    }

    /// The verified checkpoint of `size`. Checkpoints are kept sorted by size, and a
    /// projector holds one every few hundred entries (10,000 at 10 million entries): a
    /// binary search, not a scan, keeps a proof at a few microseconds.
    pub fn checkpoint_of_size(&self, size: u64) -> Result<&VerifiedCheckpoint, ProveError> {
        self.checkpoints
            .binary_search_by_key(&size, |c| c.checkpoint.size)
            .ok()
            .map(|position| &self.checkpoints[position])
            .ok_or_else(|| ProveError::NoCheckpointOfSize {
                size,
                available: self.checkpoints.iter().map(|c| c.checkpoint.size).collect(),
            })
    }

    /// A tlog-proof of entry `index` against the checkpoint of `size`, or against the
    /// latest verified checkpoint when `size` is `None`.
    pub fn inclusion(&self, index: u64, size: Option<u64>) -> Result<TlogProof, ProveError> {
        if index >= self.tree.size() {
            return Err(ProveError::NoSuchEntry {
                index,
                entries: self.tree.size(),
            });
        }
        let checkpoint = match size {
            Some(size) => self.checkpoint_of_size(size)?,
            // The largest checkpoint covers the entry if any does (sorted by size).
            None => self
                .checkpoints
                .last()
                .filter(|c| c.checkpoint.size > index)
                .ok_or(ProveError::NoCheckpointCovers { index })?,
        };
        if checkpoint.checkpoint.size <= index {
            return Err(ProveError::NoCheckpointCovers { index });
        }
        let path = self
            .tree
            .inclusion_proof(index, checkpoint.checkpoint.size)
            .map_err(|error| ProveError::Invalid(error.to_string()))?;
        Ok(TlogProof {
            extra: None,
            index,
            path,
            checkpoint: checkpoint.note.clone(),
        })
    }

    /// A consistency proof between two verified checkpoints of the export.
    pub fn consistency(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProofFile, ProveError> {
        if old_size == 0 || old_size >= new_size {
            return Err(ProveError::BadSizes {
                old: old_size,
                new: new_size,
            });
        }
        let old = self.checkpoint_of_size(old_size)?;
        let new = self.checkpoint_of_size(new_size)?;
        let proof = self
            .tree
            .consistency_proof(old_size, new_size)
            .map_err(|error| ProveError::Invalid(error.to_string()))?;
        Ok(ConsistencyProofFile {
            format: CONSISTENCY_FORMAT.into(),
            old_checkpoint: old.note.clone(),
            new_checkpoint: new.note.clone(),
            proof: proof.iter().map(Hash32::to_base64).collect(),
        })
    }
}

/// A consistency proof as a file: both signed checkpoints and the proof hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProofFile {
    pub format: String,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
    /// Standard base64 of each 32-byte hash.
    pub proof: Vec<String>,
}

/// Checks a tlog-proof for `entry_bytes` against the trust root; returns the checkpoint
/// that the entry is proven to be included in.
pub fn check_inclusion(
    proof_text: &[u8],
    entry_bytes: &[u8],
    trust: &TrustRoot,
) -> Result<Checkpoint, ProveError> {
    let proof =
        TlogProof::parse(proof_text).map_err(|error| ProveError::Invalid(error.to_string()))?;
    proof
        .verify(entry_bytes, &trust.origin, &trust.log_keys)
        .map_err(|error| ProveError::Invalid(error.to_string()))
}

/// Checks a consistency-proof file against the trust root; returns (old, new).
pub fn check_consistency(
    file_text: &str,
    trust: &TrustRoot,
) -> Result<(Checkpoint, Checkpoint), ProveError> {
    let file: ConsistencyProofFile =
        serde_json::from_str(file_text).map_err(|error| ProveError::BadFile(error.to_string()))?;
    if file.format != CONSISTENCY_FORMAT {
        return Err(ProveError::BadFile(format!(
            "format is {:?}, expected {CONSISTENCY_FORMAT:?}",
            file.format
        )));
    }
    let open = |note: &str| {
        open_checkpoint(note.as_bytes(), &trust.origin, &trust.log_keys)
            .map(|(checkpoint, _)| checkpoint)
            .map_err(|error| ProveError::Invalid(error.to_string()))
    };
    let old = open(&file.old_checkpoint)?;
    let new = open(&file.new_checkpoint)?;
    let proof = file
        .proof
        .iter()
        .map(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|bytes| Hash32::from_slice(&bytes))
                .ok_or_else(|| {
                    ProveError::BadFile(format!("proof hash {text:?} is not base64 of 32 bytes"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
        .map_err(|error| ProveError::Invalid(error.to_string()))?;
    Ok((old, new))
}
