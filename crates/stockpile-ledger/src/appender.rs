//! The sequencer's pure core: turn submissions into chained, Merkle-committed entries and
//! sign checkpoints that can never be inconsistent.
//!
//! The appender takes time and keys as arguments and does no I/O; the sequencer service
//! wraps it with NATS, and the scenario generator drives it directly. Every submission
//! becomes an entry, accepted or rejected with a reason: a refused attempt is evidence too.

use bytes::Bytes;
use rayon::prelude::*;
use stockpile_core::checkpoint::{Checkpoint, CheckpointError, open_checkpoint, sign_checkpoint};
use stockpile_core::hash::{Hash32, entry_link_hash, event_signature_message};
use stockpile_core::keys::{self, SignerKey};
use stockpile_core::ledger::{Admission, AuthorityKey, LedgerState, SignatureCheck};
use stockpile_core::limits::SUBMISSION_BYTES_MAX;
use stockpile_core::merkle::{MerkleTree, empty_root, leaf_hash};
use stockpile_core::state::Flag;
use stockpile_core::time::TimestampMs;
use stockpile_core::tlog_proof::TlogProof;
use stockpile_proto::envelope::{
    DecodedEntry, EntryVerdict, decode_entry, decode_submission, encode_entry,
};

/// Submissions whose signatures one parallel task checks.
const SIGNATURE_CHUNK: usize = 64;

/// Why a stored entry could not be restored into the appender: the ledger is not the one
/// this appender would have written (another origin or keys, or corruption).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("entry {index}: {problem}")]
    Mismatch { index: u64, problem: String },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// One entry the appender produced.
#[derive(Debug, Clone)]
pub struct Appended {
    pub index: u64,
    /// The serialized entry: what goes to the ledger stream and the export, verbatim.
    pub entry: Bytes,
    /// Its chain-link hash (the next entry's `prev_entry_hash`).
    pub link: Hash32,
    pub verdict: EntryVerdict,
    /// Flags the entry raised (deadlines that fell due included).
    pub flags: Vec<Flag>,
    /// The event id, when the submission decoded.
    pub event_id: Option<String>,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The full C2SP signed note, text and signature lines.
    pub note: String,
}

/// The sequencer's state: ledger state, chain head, Merkle tree, log key.
pub struct Appender {
    origin: String,
    log_key: SignerKey,
    state: LedgerState,
    tree: MerkleTree,
    prev_link: Hash32,
    last_recorded_at: TimestampMs,
    last_checkpoint: Option<SignedCheckpoint>,
}

impl Appender {
    /// Fails if `origin` cannot head a checkpoint (empty, or with control characters).
    pub fn new(
        origin: &str,
        log_key: SignerKey,
        authority_keys: &[AuthorityKey],
    ) -> Result<Appender, CheckpointError> {
        Checkpoint {
            origin: origin.to_string(),
            size: 0,
            root: empty_root(),
            extensions: Vec::new(),
        }
        .validate()?;
        Ok(Appender {
            origin: origin.to_string(),
            log_key,
            state: LedgerState::new(origin, authority_keys),
            tree: MerkleTree::new(),
            prev_link: Hash32::ZERO,
            last_recorded_at: TimestampMs(i64::MIN),
            last_checkpoint: None,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of entries so far (the next index).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    pub fn head_link(&self) -> Hash32 {
        self.prev_link
    }

    /// Admits one submission and appends the resulting entry. `recorded_at` comes from
    /// the caller's clock; it is clamped so that sequencing time never goes backwards.
    pub fn append(&mut self, submission: &[u8], recorded_at: TimestampMs) -> Appended {
        self.append_checked(submission, recorded_at, SignatureCheck::NotChecked)
    }

    /// Appends a batch, checking the signatures of keys already known on all cores first
    /// (strictly, as single verification would). Keys authorised inside the batch are
    /// checked during admission. Entries come out in input order; an oversized submission
    /// becomes [`Appender::append_oversized`]'s rejection.
    pub fn append_batch(
        &mut self,
        submissions: &[Bytes],
        recorded_at: TimestampMs,
    ) -> Vec<Appended> {
        let times = vec![recorded_at; submissions.len()];
        self.append_batch_at(submissions, &times)
    }

    /// [`Appender::append_batch`] with a recording time per submission (each still
    /// raised to the previous entry's, so time never goes backwards).
    pub fn append_batch_at(
        &mut self,
        submissions: &[Bytes],
        recorded_at: &[TimestampMs],
    ) -> Vec<Appended> {
        assert_eq!(
            submissions.len(),
            recorded_at.len(),
            "one recording time per submission"
        );
        let checks = self.signature_checks(submissions.iter().map(|s| s.as_ref()));
        submissions
            .iter()
            .zip(checks)
            .zip(recorded_at.iter().copied())
            .map(|((submission, check), recorded_at)| {
                if submission.len() > SUBMISSION_BYTES_MAX {
                    self.append_oversized(submission.len(), Hash32::digest(submission), recorded_at)
                } else {
                    self.append_checked(submission, recorded_at, check)
                }
            })
            .collect()
    }

    /// Records a submission too large to keep verbatim: the entry is a rejection whose
    /// reason names the size and SHA-256 of what arrived, with an empty submission (the
    /// bytes themselves would overflow an entry).
    pub fn append_oversized(
        &mut self,
        size_bytes: usize,
        sha256: Hash32,
        recorded_at: TimestampMs,
    ) -> Appended {
        assert!(
            size_bytes > SUBMISSION_BYTES_MAX,
            "only oversized submissions"
        );
        let verdict = EntryVerdict::Rejected {
            code: "malformed.oversized".into(),
            reason: format!(
                "submission of {size_bytes} bytes (sha256 {}) exceeds the limit of {SUBMISSION_BYTES_MAX} bytes; not stored",
                sha256.to_hex()
            ),
        };
        self.push_unstored(verdict, recorded_at)
    }

    /// A rejection entry with an empty submission, time advanced as for any entry.
    fn push_unstored(&mut self, verdict: EntryVerdict, recorded_at: TimestampMs) -> Appended {
        let recorded_at = recorded_at.max(self.last_recorded_at);
        let flags = self.state.advance_to(self.tree.size(), recorded_at);
        self.push_entry(Bytes::new(), recorded_at, verdict, flags, None)
    }

    /// Signature checks for submissions by keys the state knows now, computed in
    /// parallel with `verify_strict`; `NotChecked` where the key is unknown yet or the
    /// bytes do not decode (admission then decides).
    fn signature_checks<'a>(
        &self,
        submissions: impl Iterator<Item = &'a [u8]>,
    ) -> Vec<SignatureCheck> {
        let submissions: Vec<&[u8]> = submissions.collect();
        let state = &self.state;
        submissions
            .par_chunks(SIGNATURE_CHUNK)
            .flat_map_iter(|chunk| {
                chunk.iter().map(|bytes| {
                    let Ok(decoded) = decode_submission(bytes) else {
                        return SignatureCheck::NotChecked;
                    };
                    let Some(public_key) = state.public_key(&decoded.key_id) else {
                        return SignatureCheck::NotChecked;
                    };
                    let Ok(signature) = <[u8; 64]>::try_from(decoded.signature.as_ref()) else {
                        return SignatureCheck::NotChecked;
                    };
                    let message = event_signature_message(&decoded.event_bytes);
                    if keys::verify_strict(&public_key, &message, &signature).is_ok() {
                        SignatureCheck::Valid(public_key)
                    } else {
                        SignatureCheck::Invalid(public_key)
                    }
                })
            })
            .collect()
    }

    /// Rebuilds the appender from entries it (or an identical appender) wrote before, in
    /// order from index `size()`. Every entry is re-admitted and re-encoded; it must come
    /// out byte for byte as stored, so a sequencer never continues a ledger it would not
    /// have written itself.
    pub fn restore_batch(&mut self, entries: &[Bytes]) -> Result<(), RestoreError> {
        let mut decoded = Vec::with_capacity(entries.len());
        for (offset, bytes) in entries.iter().enumerate() {
            let index = self.size() + offset as u64;
            let entry = decode_entry(bytes).map_err(|error| RestoreError::Mismatch {
                index,
                problem: error.to_string(),
            })?;
            decoded.push(entry);
        }
        let checks = self.signature_checks(decoded.iter().map(|entry| entry.submission.as_ref()));
        for ((bytes, entry), check) in entries.iter().zip(&decoded).zip(checks) {
            let index = self.size();
            if entry.index != index {
                return Err(RestoreError::Mismatch {
                    index,
                    problem: format!("stored entry says index {}", entry.index),
                });
            }
            let appended = if entry.submission.is_empty()
                && matches!(&entry.verdict, EntryVerdict::Rejected { code, .. } if code == "malformed.oversized")
            {
                self.push_unstored(entry.verdict.clone(), entry.recorded_at)
            } else {
                self.append_checked(&entry.submission, entry.recorded_at, check)
            };
            if appended.entry != *bytes {
                return Err(RestoreError::Mismatch {
                    index,
                    problem: format!(
                        "re-sequencing gives a different entry (stored verdict {:?}, now {:?})",
                        entry.verdict, appended.verdict
                    ),
                });
            }
        }
        Ok(())
    }

    /// Takes a checkpoint signed earlier (read back from storage) as the latest one,
    /// after checking it is signed by this appender's log key and matches its tree.
    pub fn adopt_checkpoint(&mut self, note: &str) -> Result<(), RestoreError> {
        let (checkpoint, _) = open_checkpoint(
            note.as_bytes(),
            &self.origin,
            &[self.log_key.verifier_key()],
        )
        .map_err(|error| RestoreError::Checkpoint(error.to_string()))?;
        let root = self.tree.root_at(checkpoint.size).map_err(|_| {
            RestoreError::Checkpoint(format!(
                "checkpoint of size {} is beyond the ledger's {} entries",
                checkpoint.size,
                self.tree.size()
            ))
        })?;
        if root != checkpoint.root {
            return Err(RestoreError::Checkpoint(format!(
                "checkpoint of size {} has a root the ledger does not have",
                checkpoint.size
            )));
        }
        if self
            .last_checkpoint
            .as_ref()
            .is_none_or(|last| last.checkpoint.size <= checkpoint.size)
        {
            self.last_checkpoint = Some(SignedCheckpoint {
                checkpoint,
                note: note.to_string(),
            });
        }
        Ok(())
    }

    /// A tlog-proof of entry `index` against the latest signed checkpoint, or `None` when
    /// no checkpoint covers it yet.
    pub fn inclusion_proof(&self, index: u64) -> Option<TlogProof> {
        let signed = self.last_checkpoint.as_ref()?;
        if index >= signed.checkpoint.size {
            return None;
        }
        let path = self
            .tree
            .inclusion_proof(index, signed.checkpoint.size)
            .expect("index < checkpoint size <= tree size");
        Some(TlogProof {
            extra: None,
            index,
            path,
            checkpoint: signed.note.clone(),
        })
    }

    /// As [`Appender::append`], with the signature already checked by the caller (batch
    /// verification on all cores).
    pub fn append_checked(
        &mut self,
        submission: &[u8],
        recorded_at: TimestampMs,
        signature_check: SignatureCheck,
    ) -> Appended {
        let recorded_at = recorded_at.max(self.last_recorded_at);
        let index = self.tree.size();
        let mut flags = self.state.advance_to(index, recorded_at);
        let mut event_id = None;
        let verdict = match decode_submission(submission) {
            Err(error) => EntryVerdict::Rejected {
                code: error.code().to_string(),
                reason: error.to_string(),
            },
            Ok(decoded) => {
                event_id = Some(decoded.event.event_id.clone());
                let candidate = decoded.candidate(signature_check);
                match self.state.admit(index, recorded_at, candidate) {
                    Admission::Accepted { flags: raised } => {
                        flags.extend(raised);
                        EntryVerdict::Accepted
                    }
                    Admission::Rejected(rejection) => EntryVerdict::Rejected {
                        code: rejection.code,
                        reason: rejection.reason,
                    },
                }
            }
        };
        self.push_entry(
            Bytes::copy_from_slice(submission),
            recorded_at,
            verdict,
            flags,
            event_id,
        )
    }

    fn push_entry(
        &mut self,
        submission: Bytes,
        recorded_at: TimestampMs,
        verdict: EntryVerdict,
        flags: Vec<Flag>,
        event_id: Option<String>,
    ) -> Appended {
        let recorded_at = recorded_at.max(self.last_recorded_at);
        let index = self.tree.size();
        let entry = Bytes::from(encode_entry(&DecodedEntry {
            index,
            prev_entry_hash: self.prev_link,
            submission,
            recorded_at,
            verdict: verdict.clone(),
        }));
        let link = entry_link_hash(&entry);
        self.tree.push(leaf_hash(&entry));
        self.prev_link = link;
        self.last_recorded_at = recorded_at;
        assert_eq!(
            self.tree.size(),
            index + 1,
            "the tree grows by exactly one leaf per entry"
        );
        Appended {
            index,
            entry,
            link,
            verdict,
            flags,
            event_id,
        }
    }

    /// Signs a checkpoint of the whole ledger so far. Because the appender only ever
    /// extends one tree, every checkpoint it signs is consistent with every earlier one;
    /// the assertion guards that the size never goes backwards.
    pub fn checkpoint(&mut self) -> SignedCheckpoint {
        let size = self.tree.size();
        if let Some(last) = &self.last_checkpoint {
            let last = &last.checkpoint;
            assert!(size >= last.size, "checkpoint sizes never decrease");
            if size == last.size {
                assert_eq!(self.tree.root(), last.root, "same size, same root");
            }
        }
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.tree.root(),
            extensions: Vec::new(),
        };
        let note = sign_checkpoint(&checkpoint, &self.log_key)
            .expect("the origin was checked in Appender::new");
        let signed = SignedCheckpoint { checkpoint, note };
        self.last_checkpoint = Some(signed.clone());
        signed
    }

    pub fn last_checkpoint(&self) -> Option<&Checkpoint> {
        self.last_checkpoint
            .as_ref()
            .map(|signed| &signed.checkpoint)
    }

    pub fn last_signed_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.last_checkpoint.as_ref()
    }
}
