//! The sequencer's pure core: turn submissions into chained, Merkle-committed entries and
//! sign checkpoints that can never be inconsistent.
//!
//! The appender takes time and keys as arguments and does no I/O; the sequencer service
//! wraps it with NATS, and the scenario generator drives it directly. Every submission
//! becomes an entry, accepted or rejected with a reason: a refused attempt is evidence too.

use bytes::Bytes;
use stockpile_core::checkpoint::{Checkpoint, CheckpointError, sign_checkpoint};
use stockpile_core::hash::{Hash32, entry_link_hash};
use stockpile_core::keys::SignerKey;
use stockpile_core::ledger::{Admission, AuthorityKey, LedgerState, SignatureCheck};
use stockpile_core::merkle::{MerkleTree, empty_root, leaf_hash};
use stockpile_core::state::Flag;
use stockpile_core::time::TimestampMs;
use stockpile_proto::envelope::{DecodedEntry, EntryVerdict, decode_submission, encode_entry};

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
    last_checkpoint: Option<Checkpoint>,
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
        let entry = Bytes::from(encode_entry(&DecodedEntry {
            index,
            prev_entry_hash: self.prev_link,
            submission: Bytes::copy_from_slice(submission),
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
        self.last_checkpoint = Some(checkpoint.clone());
        SignedCheckpoint { checkpoint, note }
    }

    pub fn last_checkpoint(&self) -> Option<&Checkpoint> {
        self.last_checkpoint.as_ref()
    }
}
