//! The streaming verifier: an export in, findings out, trusting only the trust root.
//!
//! Entries arrive one batch at a time and are never kept: memory is the ledger's keys,
//! lots, sites and checkpoints plus three per-event indexes of fingerprints, which hard
//! rules 4–9 need (ids unique, references to earlier events): the event-id index of
//! `LedgerState`, the shipments and the correctable events of the compliance state —
//! about 72 bytes per entry on the U.S.-like scenario (docs/performance.md). For every
//! entry it checks:
//! - the entry decodes, its index is the next one and its `prev_entry_hash` is the link
//!   hash of the entry before (hard failure 1); sequencing time never goes backwards;
//! - for an accepted entry, everything the sequencer should have checked, with the very
//!   same admission code: signature, key authorisation and revocation, role, replay,
//!   ids, and the domain invariants (hard failures 2–10); the flags it raises are listed;
//! - every checkpoint: signed by a trusted log key, for this origin, with a root equal to
//!   the root recomputed from the entries at its size; two checkpoints of one size with
//!   different roots; checkpoints beyond the end (a truncated ledger).
//!
//! It goes on after a finding wherever it can, so a report lists all findings, not only
//! the first. A finding's `index` is the entry's position in the export (its Merkle leaf
//! index); when the entry claims another index, the evidence says so.

use crate::export::{ExportError, ExportReader};
use crate::trust::TrustRoot;
use bytes::Bytes;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use stockpile_core::checkpoint::{Checkpoint, CheckpointError, open_checkpoint};
use stockpile_core::hash::{EVENT_SIGNATURE_TAG, Hash32, entry_link_hash};
use stockpile_core::keys;
use stockpile_core::ledger::{Admission, LedgerState, SignatureCheck};
use stockpile_core::limits::FINDINGS_KEPT_MAX;
use stockpile_core::merkle::{CompactRange, leaf_hash};
use stockpile_core::state::{Flag, StockpileSummary};
use stockpile_core::time::TimestampMs;
use stockpile_proto::envelope::{
    DecodedEntry, DecodedSubmission, EntryVerdict, decode_entry, decode_submission,
};
use stockpile_proto::export_codec::ExportRecord;

/// Entries decoded and signature-checked together on all cores.
pub const VERIFY_BATCH_ENTRIES: usize = 4096;

/// Signatures handed to one worker for batch verification.
const SIGNATURE_BATCH: usize = 256;

/// What kind of problem a finding is. Loss (missing entries) and forgery (bytes that do
/// not hash or verify) are told apart, as JetStream's durability caveats require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingClass {
    /// The export or an entry cannot be read.
    Format,
    /// Entries are missing: an index gap or a tail cut below a signed checkpoint.
    Loss,
    /// Bytes were altered, reordered or forged: broken links, bad signatures.
    Forgery,
    /// An accepted entry breaks a rule of the ledger (hard failures 2–10).
    Rule,
    /// A checkpoint is unsigned, mis-signed, or commits to other entries.
    Checkpoint,
}

/// Evidence attached to a finding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Evidence {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The hard rule number of domain.md §4, for rule findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size: Option<u64>,
}

/// One thing wrong with the ledger, with what proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Position of the entry in the export (its Merkle leaf index), if the finding is
    /// about one entry.
    pub index: Option<u64>,
    pub class: FindingClass,
    /// Stable code, e.g. `chain.broken_link`, `signature.invalid`, `counts.below_zero`.
    pub code: String,
    pub message: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointSummary {
    pub size: u64,
    pub root: Hash32,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignerSummary {
    pub key_id: String,
    pub role: stockpile_core::events::Role,
    pub holder: String,
    pub from_trust_root: bool,
    pub entries_signed: u64,
    /// Index of the first and last accepted entry it signed.
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub revoked_at: Option<TimestampMs>,
    pub revocation_reason: Option<stockpile_core::events::RevocationReason>,
    /// For a key revoked as compromised: from when, and the accepted entries it signed
    /// from that day on (to be re-examined; they still verify).
    pub suspect_from: Option<TimestampMs>,
    pub suspect: Option<stockpile_core::ledger::SignedRange>,
}

/// The verifier's verdict on a whole export.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub origin: String,
    pub entries: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub checkpoints_verified: u64,
    /// The largest checkpoint whose root matched the entries.
    pub latest_checkpoint: Option<CheckpointSummary>,
    /// Entries after the latest verified checkpoint: chained, but not yet committed to by
    /// a signature.
    pub unsigned_tail_entries: u64,
    /// RFC 6962 root of all entries read.
    pub root: Hash32,
    /// Link hash of the last entry.
    pub head_link: Hash32,
    pub findings_total: u64,
    /// The first `FINDINGS_KEPT_MAX` findings.
    pub findings: Vec<Finding>,
    pub flags_total: u64,
    /// The first `FINDINGS_KEPT_MAX` flags.
    pub flags: Vec<Flag>,
    pub flags_by_rule: BTreeMap<u8, u64>,
    pub signers: Vec<SignerSummary>,
    pub summary: StockpileSummary,
    /// Digest of the folded compliance state, comparable with the projector's views.
    pub state_digest: Hash32,
}

impl Report {
    /// True when nothing is wrong: no finding at all.
    pub fn is_clean(&self) -> bool {
        self.findings_total == 0
    }
}

/// An entry decoded on a worker thread, ready for the sequential checks.
struct Prepared {
    link: Hash32,
    leaf: Hash32,
    entry: Result<DecodedEntry, String>,
    submission: Option<Result<DecodedSubmission, (String, String)>>,
    signature_check: SignatureCheck,
}

fn prepare(bytes: Bytes) -> Prepared {
    // Hash exactly the bytes as stored; decoding never feeds back into hashing.
    let link = entry_link_hash(&bytes);
    let leaf = leaf_hash(&bytes);
    let entry = decode_entry(&bytes).map_err(|error| error.to_string());
    let submission = entry.as_ref().ok().map(|entry| {
        decode_submission(&entry.submission)
            .map_err(|error| (error.code().to_string(), error.to_string()))
    });
    Prepared {
        link,
        leaf,
        entry,
        submission,
        signature_check: SignatureCheck::NotChecked,
    }
}

/// Public keys as known when a batch was prepared.
struct KeySnapshot {
    public_keys: HashMap<String, [u8; 32]>,
    batch_keys: keys::BatchKeys,
}

/// Decodes a batch and checks the signatures of its accepted entries whose keys are known,
/// on all cores. Rejected entries are rare; their signatures (which only move the emitter
/// sequence) are checked strictly during admission, exactly as the sequencer did.
fn prepare_batch(batch: Vec<Bytes>, keys: &KeySnapshot, strict: bool) -> Vec<Prepared> {
    let mut prepared: Vec<Prepared> = batch.into_par_iter().map(prepare).collect();
    check_signatures(&mut prepared, keys, strict);
    prepared
}

/// Checks, on all cores, the signatures of the accepted entries not checked yet whose keys
/// `keys` knows, one Ed25519 batch of [`SIGNATURE_BATCH`] per worker.
fn check_signatures(prepared: &mut [Prepared], keys: &KeySnapshot, strict: bool) {
    prepared.par_chunks_mut(SIGNATURE_BATCH).for_each(|chunk| {
        let mut slots = Vec::with_capacity(chunk.len());
        let mut items = Vec::with_capacity(chunk.len());
        // The chunk's signed messages (`event_signature_message`: the tag, then the event
        // bytes as stored) in one buffer instead of one allocation each.
        let mut buffer = Vec::new();
        for (slot, item) in chunk.iter().enumerate() {
            if !matches!(item.signature_check, SignatureCheck::NotChecked) {
                continue;
            }
            if !matches!(&item.entry, Ok(entry) if entry.verdict == EntryVerdict::Accepted) {
                continue;
            }
            let Some(Ok(submission)) = &item.submission else {
                continue;
            };
            let Some(public_key) = keys.public_keys.get(&submission.key_id) else {
                continue;
            };
            let Ok(signature) = <[u8; 64]>::try_from(submission.signature.as_ref()) else {
                continue;
            };
            let start = buffer.len();
            buffer.extend_from_slice(EVENT_SIGNATURE_TAG);
            buffer.extend_from_slice(&submission.event_bytes);
            slots.push((slot, *public_key));
            items.push((start..buffer.len(), signature, *public_key));
        }
        if slots.is_empty() {
            return;
        }
        let verdicts: Vec<bool> = if strict {
            items
                .iter()
                .map(|(range, signature, key)| {
                    keys::verify_strict(key, &buffer[range.clone()], signature).is_ok()
                })
                .collect()
        } else {
            let batch: Vec<keys::BatchItem<'_>> = items
                .iter()
                .map(|(range, signature, key)| (&buffer[range.clone()], *signature, *key))
                .collect();
            keys.batch_keys.verify_batch(&batch)
        };
        for ((slot, public_key), valid) in slots.into_iter().zip(verdicts) {
            chunk[slot].signature_check = if valid {
                SignatureCheck::Valid(public_key)
            } else {
                SignatureCheck::Invalid(public_key)
            };
        }
    });
}

struct PendingCheckpoint {
    checkpoint: Checkpoint,
}

/// The streaming verifier. Feed it entries and checkpoints in export order, then
/// [`Verifier::finish`].
pub struct Verifier {
    trust: TrustRoot,
    state: LedgerState,
    tree: CompactRange,
    entries_seen: u64,
    expected_index: u64,
    prev_link: Hash32,
    last_recorded_at: Option<TimestampMs>,
    accepted: u64,
    rejected: u64,
    /// Signed checkpoints not yet reached, by tree size.
    pending: BTreeMap<u64, Vec<PendingCheckpoint>>,
    /// Root of every correctly signed checkpoint seen, by size, to catch equivocation.
    signed_roots: BTreeMap<u64, Hash32>,
    checkpoints_verified: u64,
    latest_checkpoint: Option<CheckpointSummary>,
    findings: Vec<Finding>,
    findings_total: u64,
    flags: Vec<Flag>,
    flags_total: u64,
    /// Check every signature with `verify_strict` instead of batches.
    strict_signatures: bool,
    /// Public keys screened for batch verification, once each.
    batch_keys: keys::BatchKeys,
    /// The last batch pushed: decoded and signature-checked, not yet judged, with the
    /// keys its signatures were checked with.
    in_flight: Option<(Vec<Prepared>, KeySnapshot)>,
}

impl Verifier {
    pub fn new(trust: TrustRoot) -> Verifier {
        let state = LedgerState::new(trust.origin.clone(), &trust.ledger_authority_keys());
        Verifier {
            trust,
            state,
            tree: CompactRange::new(),
            entries_seen: 0,
            expected_index: 0,
            prev_link: Hash32::ZERO,
            last_recorded_at: None,
            accepted: 0,
            rejected: 0,
            pending: BTreeMap::new(),
            signed_roots: BTreeMap::new(),
            checkpoints_verified: 0,
            latest_checkpoint: None,
            findings: Vec::new(),
            findings_total: 0,
            flags: Vec::new(),
            flags_total: 0,
            strict_signatures: false,
            batch_keys: keys::BatchKeys::default(),
            in_flight: None,
        }
    }

    /// Checks every signature with `verify_strict` (the sequencer's rule) instead of
    /// Ed25519 batches. Batches are about twice as fast, but may accept, with probability
    /// 1/8, a non-canonical signature that only the key's holder could have made.
    pub fn with_strict_signatures(mut self, strict: bool) -> Verifier {
        self.strict_signatures = strict;
        self
    }

    /// Entries judged so far (entries still in flight are not counted).
    pub fn entries_seen(&self) -> u64 {
        self.entries_seen
    }

    pub fn findings_total(&self) -> u64 {
        self.findings_total
    }

    /// Checks the origin an export header declares.
    pub fn check_origin(&mut self, origin: &str) {
        if origin != self.trust.origin {
            self.finding(
                None,
                FindingClass::Format,
                "export.wrong_origin",
                format!(
                    "the export is of ledger {origin:?}; the trust root is for {:?}",
                    self.trust.origin
                ),
                Evidence {
                    expected: Some(self.trust.origin.clone()),
                    actual: Some(origin.into()),
                    ..Evidence::default()
                },
            );
        }
    }

    /// Verifies one entry.
    pub fn push_entry(&mut self, bytes: Bytes) {
        self.push_entries(vec![bytes]);
    }

    /// Verifies a batch of consecutive entries. Decoding and signature checks of this
    /// batch run on all cores while the previous batch is judged in order, so the
    /// sequential admission overlaps the parallel work; call [`Verifier::flush`] (or
    /// `push_checkpoint`, `finish`) to judge what is still in flight.
    pub fn push_entries(&mut self, batch: Vec<Bytes>) {
        let keys = self.key_snapshot();
        let strict = self.strict_signatures;
        let in_flight = self.in_flight.take();
        let (prepared, ()) = rayon::join(
            || prepare_batch(batch, &keys, strict),
            || {
                if let Some((previous, checked_with)) = in_flight {
                    self.process_all(previous, checked_with);
                }
            },
        );
        self.in_flight = Some((prepared, keys));
    }

    /// Judges every entry still in flight.
    pub fn flush(&mut self) {
        if let Some((previous, checked_with)) = self.in_flight.take() {
            self.process_all(previous, checked_with);
        }
    }

    /// Judges a prepared batch in order. An accepted entry whose key was authorised after
    /// the batch was prepared (by an entry judged since: the first batches of a ledger, a
    /// key rotation) would be checked strictly, alone, in the sequential admission; as
    /// soon as such a key is known, the signatures of the rest of the batch are checked
    /// again in batches on all cores. Each new key triggers this once, since the fresh
    /// snapshot holds it.
    fn process_all(&mut self, prepared: Vec<Prepared>, mut checked_with: KeySnapshot) {
        let mut queue = VecDeque::from(prepared);
        while let Some(next) = queue.front() {
            if self.key_known_since(next, &checked_with) {
                checked_with = self.key_snapshot();
                check_signatures(
                    queue.make_contiguous(),
                    &checked_with,
                    self.strict_signatures,
                );
            }
            if let Some(item) = queue.pop_front() {
                self.process(item);
            }
        }
    }

    /// True for an accepted entry whose signature is unchecked because its key was not in
    /// `checked_with`, and whose key is known now.
    fn key_known_since(&self, item: &Prepared, checked_with: &KeySnapshot) -> bool {
        if !matches!(item.signature_check, SignatureCheck::NotChecked)
            || !matches!(&item.entry, Ok(entry) if entry.verdict == EntryVerdict::Accepted)
        {
            return false;
        }
        let Some(Ok(submission)) = &item.submission else {
            return false;
        };
        !checked_with.public_keys.contains_key(&submission.key_id)
            && self.state.key(&submission.key_id).is_some()
    }

    /// The public keys known now, screened for batches. Keys authorised by entries not
    /// yet judged are missing: those entries' signatures are checked during admission.
    fn key_snapshot(&mut self) -> KeySnapshot {
        let public_keys: HashMap<String, [u8; 32]> = self
            .state
            .keys()
            .map(|record| (record.key_id.clone(), record.public_key))
            .collect();
        for public_key in public_keys.values() {
            self.batch_keys.screen(public_key);
        }
        KeySnapshot {
            public_keys,
            batch_keys: self.batch_keys.clone(),
        }
    }

    fn process(&mut self, item: Prepared) {
        let position = self.entries_seen;
        self.tree.push(item.leaf);
        self.entries_seen += 1;
        match item.entry {
            Err(problem) => {
                self.finding(
                    Some(position),
                    FindingClass::Format,
                    "entry.malformed",
                    format!("entry cannot be decoded: {problem}"),
                    Evidence::default(),
                );
                self.expected_index += 1;
            }
            Ok(entry) => self.process_entry(position, entry, item.submission, item.signature_check),
        }
        self.prev_link = item.link;
        self.check_pending_checkpoints();
    }

    fn process_entry(
        &mut self,
        position: u64,
        entry: DecodedEntry,
        submission: Option<Result<DecodedSubmission, (String, String)>>,
        signature_check: SignatureCheck,
    ) {
        if entry.index != self.expected_index {
            let (class, what) = if entry.index > self.expected_index {
                (
                    FindingClass::Loss,
                    format!(
                        "{} entries are missing before it",
                        entry.index - self.expected_index
                    ),
                )
            } else {
                (
                    FindingClass::Forgery,
                    "it repeats or reorders an earlier index".to_string(),
                )
            };
            self.finding(
                Some(position),
                class,
                "chain.index_mismatch",
                format!(
                    "entry claims index {} where {} was expected: {what}",
                    entry.index, self.expected_index
                ),
                Evidence {
                    expected: Some(self.expected_index.to_string()),
                    actual: Some(entry.index.to_string()),
                    ..Evidence::default()
                },
            );
        }
        self.expected_index = entry.index.saturating_add(1);
        if entry.prev_entry_hash != self.prev_link {
            self.finding(
                Some(position),
                FindingClass::Forgery,
                "chain.broken_link",
                format!(
                    "prev_entry_hash is {} but the entry before hashes to {}",
                    entry.prev_entry_hash, self.prev_link
                ),
                Evidence {
                    expected: Some(self.prev_link.to_hex()),
                    actual: Some(entry.prev_entry_hash.to_hex()),
                    ..Evidence::default()
                },
            );
        }
        if let Some(last) = self
            .last_recorded_at
            .filter(|last| entry.recorded_at < *last)
        {
            self.finding(
                Some(position),
                FindingClass::Forgery,
                "chain.time_backwards",
                format!(
                    "recorded at {} is before the previous entry's {last}",
                    entry.recorded_at
                ),
                Evidence {
                    expected: Some(format!(">= {last}")),
                    actual: Some(entry.recorded_at.to_string()),
                    ..Evidence::default()
                },
            );
        }
        self.last_recorded_at = Some(
            self.last_recorded_at
                .map_or(entry.recorded_at, |last| last.max(entry.recorded_at)),
        );
        let due = self.state.advance_to(position, entry.recorded_at);
        self.keep_flags(due);

        match (&entry.verdict, submission) {
            (EntryVerdict::Accepted, Some(Ok(decoded))) => {
                self.accepted += 1;
                let candidate = decoded.candidate(signature_check);
                match self.state.admit(position, entry.recorded_at, candidate) {
                    Admission::Accepted { flags } => self.keep_flags(flags),
                    Admission::Rejected(rejection) => {
                        let class = if rejection.code.starts_with("signature.") {
                            FindingClass::Forgery
                        } else {
                            FindingClass::Rule
                        };
                        self.finding(
                            Some(position),
                            class,
                            &rejection.code,
                            format!(
                                "accepted entry breaks hard rule {} ({:?}): {}",
                                rejection.rule.number(),
                                rejection.rule,
                                rejection.reason
                            ),
                            Evidence {
                                key_id: Some(decoded.key_id.clone()),
                                event_id: Some(decoded.event.event_id.clone()),
                                rule: Some(rejection.rule.number()),
                                ..Evidence::default()
                            },
                        );
                    }
                }
            }
            (EntryVerdict::Accepted, Some(Err((code, problem)))) => {
                self.accepted += 1;
                self.finding(Some(position), FindingClass::Forgery, "entry.accepted_but_undecodable", format!(
                    "entry is marked accepted but its submission cannot be read ({code}): {problem}"
                ), Evidence::default());
            }
            (EntryVerdict::Rejected { .. }, submission) => {
                self.rejected += 1;
                if let Some(Ok(decoded)) = submission {
                    self.state.note_rejected(decoded.candidate(signature_check));
                }
            }
            (EntryVerdict::Accepted, None) => {
                unreachable!("a decoded entry always has a submission result")
            }
        }
    }

    /// Verifies a checkpoint note: from the export, or held by the inspector separately.
    pub fn push_checkpoint(&mut self, note: &[u8]) {
        self.flush();
        let checkpoint = match open_checkpoint(note, &self.trust.origin, &self.trust.log_keys) {
            Ok((checkpoint, _note)) => checkpoint,
            Err(error) => {
                let code = match &error {
                    CheckpointError::WrongOrigin { .. } => "checkpoint.wrong_origin",
                    CheckpointError::Note(_) => "checkpoint.bad_signature",
                    _ => "checkpoint.malformed",
                };
                self.finding(
                    None,
                    FindingClass::Checkpoint,
                    code,
                    format!("checkpoint rejected: {error}"),
                    Evidence::default(),
                );
                return;
            }
        };
        match self.signed_roots.get(&checkpoint.size) {
            Some(root) if *root != checkpoint.root => {
                let (size, root) = (checkpoint.size, *root);
                self.finding(None, FindingClass::Checkpoint, "checkpoint.equivocation", format!(
                    "two validly signed checkpoints of size {size} have different roots: the log signed inconsistent histories"
                ), Evidence {
                    expected: Some(root.to_hex()),
                    actual: Some(checkpoint.root.to_hex()),
                    checkpoint_size: Some(size),
                    ..Evidence::default()
                });
            }
            Some(_) => {}
            None => {
                self.signed_roots.insert(checkpoint.size, checkpoint.root);
            }
        }
        if checkpoint.size < self.entries_seen {
            let size = checkpoint.size;
            self.finding(
                None,
                FindingClass::Checkpoint,
                "checkpoint.out_of_order",
                format!(
                    "checkpoint of size {size} appears after entry {}: it cannot be checked here",
                    self.entries_seen - 1
                ),
                Evidence {
                    checkpoint_size: Some(size),
                    ..Evidence::default()
                },
            );
            return;
        }
        self.pending
            .entry(checkpoint.size)
            .or_default()
            .push(PendingCheckpoint { checkpoint });
        self.check_pending_checkpoints();
    }

    fn check_pending_checkpoints(&mut self) {
        let Some(pending) = self.pending.remove(&self.entries_seen) else {
            return;
        };
        let root = self.tree.root();
        for PendingCheckpoint { checkpoint } in pending {
            if checkpoint.root == root {
                self.checkpoints_verified += 1;
                if self
                    .latest_checkpoint
                    .as_ref()
                    .is_none_or(|latest| latest.size <= checkpoint.size)
                {
                    self.latest_checkpoint = Some(CheckpointSummary {
                        size: checkpoint.size,
                        root,
                    });
                }
            } else {
                let size = checkpoint.size;
                self.finding(size.checked_sub(1), FindingClass::Checkpoint, "checkpoint.root_mismatch", format!(
                    "checkpoint of size {size} commits to root {} but the entries hash to {root}",
                    checkpoint.root
                ), Evidence {
                    expected: Some(checkpoint.root.to_hex()),
                    actual: Some(root.to_hex()),
                    checkpoint_size: Some(size),
                    ..Evidence::default()
                });
            }
        }
    }

    /// Records that the export could not be read past this point.
    pub fn export_unreadable(&mut self, error: &ExportError) {
        self.flush();
        self.finding(
            Some(self.entries_seen),
            FindingClass::Format,
            "export.unreadable",
            format!(
                "the export cannot be read past entry {}: {error}",
                self.entries_seen
            ),
            Evidence::default(),
        );
    }

    /// Closes the verification and produces the report.
    pub fn finish(mut self) -> Report {
        self.flush();
        let pending = std::mem::take(&mut self.pending);
        for (size, checkpoints) in pending {
            for _ in checkpoints {
                let entries = self.entries_seen;
                self.finding(Some(entries), FindingClass::Loss, "ledger.truncated", format!(
                    "a signed checkpoint covers {size} entries but the export holds only {entries}: {} entries are missing",
                    size - entries
                ), Evidence {
                    expected: Some(size.to_string()),
                    actual: Some(entries.to_string()),
                    checkpoint_size: Some(size),
                    ..Evidence::default()
                });
            }
        }
        if self.latest_checkpoint.is_none() && self.entries_seen > 0 {
            self.finding(
                None,
                FindingClass::Checkpoint,
                "checkpoint.none",
                format!(
                    "no valid signed checkpoint commits to any of the {} entries",
                    self.entries_seen
                ),
                Evidence::default(),
            );
        }
        let compliance = self.state.compliance();
        let signers = self
            .state
            .keys()
            .map(|key| SignerSummary {
                key_id: key.key_id.clone(),
                role: key.role,
                holder: key.holder.clone(),
                from_trust_root: key.from_trust_root,
                entries_signed: key.entries_signed,
                first_index: key.signed().map(|range| range.first_index),
                last_index: key.signed().map(|range| range.last_index),
                revoked_at: key.revoked_at,
                revocation_reason: key.revocation_reason,
                suspect_from: key.suspect_from,
                suspect: key
                    .suspect_from
                    .filter(|_| {
                        key.revocation_reason
                            == Some(stockpile_core::events::RevocationReason::Compromised)
                    })
                    .and_then(|from| key.signed_from(from)),
            })
            .collect();
        let flags_by_rule = self
            .state
            .flag_counts()
            .iter()
            .map(|(rule, count)| (*rule as u8, *count))
            .collect();
        Report {
            origin: self.trust.origin.clone(),
            entries: self.entries_seen,
            accepted: self.accepted,
            rejected: self.rejected,
            checkpoints_verified: self.checkpoints_verified,
            unsigned_tail_entries: self.entries_seen
                - self
                    .latest_checkpoint
                    .as_ref()
                    .map_or(0, |c| c.size.min(self.entries_seen)),
            latest_checkpoint: self.latest_checkpoint.clone(),
            root: self.tree.root(),
            head_link: self.prev_link,
            findings_total: self.findings_total,
            findings: self.findings,
            flags_total: self.flags_total,
            flags: self.flags,
            flags_by_rule,
            signers,
            summary: compliance.summary(),
            state_digest: compliance.digest(),
        }
    }

    fn keep_flags(&mut self, flags: Vec<Flag>) {
        for flag in flags {
            self.flags_total += 1;
            if self.flags.len() < FINDINGS_KEPT_MAX {
                self.flags.push(flag);
            }
        }
    }

    fn finding(
        &mut self,
        index: Option<u64>,
        class: FindingClass,
        code: &str,
        message: String,
        evidence: Evidence,
    ) {
        self.findings_total += 1;
        if self.findings.len() < FINDINGS_KEPT_MAX {
            self.findings.push(Finding {
                index,
                class,
                code: code.to_string(),
                message,
                evidence,
            });
        }
    }
}

/// Options for [`verify_export`].
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Checkpoint notes the inspector holds apart from the export (from a witness, an
    /// earlier export, a report): the export must be consistent with them too.
    pub extra_checkpoints: Vec<Vec<u8>>,
    /// See [`Verifier::with_strict_signatures`].
    pub strict_signatures: bool,
}

/// Verifies a whole export from a reader. `progress` is called with the bytes read so
/// far after each batch. I/O errors are `Err`; everything wrong inside the export,
/// including an unreadable record, is a finding in the report.
pub fn verify_export<R: Read>(
    input: R,
    trust: &TrustRoot,
    options: &VerifyOptions,
    mut progress: impl FnMut(u64),
) -> Result<Report, ExportError> {
    let mut reader = ExportReader::open(input)?;
    let mut verifier =
        Verifier::new(trust.clone()).with_strict_signatures(options.strict_signatures);
    verifier.check_origin(reader.origin());
    for note in &options.extra_checkpoints {
        verifier.push_checkpoint(note);
    }
    let mut batch = Vec::with_capacity(VERIFY_BATCH_ENTRIES);
    loop {
        let record = match reader.next_record() {
            Ok(record) => record,
            Err(ExportError::Io(error)) => return Err(ExportError::Io(error)),
            Err(error) => {
                verifier.push_entries(std::mem::take(&mut batch));
                verifier.export_unreadable(&error);
                break;
            }
        };
        match record {
            None => {
                verifier.push_entries(std::mem::take(&mut batch));
                break;
            }
            Some(ExportRecord::Entry(bytes)) => {
                batch.push(bytes);
                if batch.len() == VERIFY_BATCH_ENTRIES {
                    verifier.push_entries(std::mem::take(&mut batch));
                    progress(reader.offset());
                }
            }
            Some(ExportRecord::Checkpoint(note)) => {
                verifier.push_entries(std::mem::take(&mut batch));
                verifier.push_checkpoint(&note);
            }
            Some(ExportRecord::Header { .. }) => unreachable!("the reader refuses a second header"),
        }
    }
    progress(reader.offset());
    Ok(verifier.finish())
}
