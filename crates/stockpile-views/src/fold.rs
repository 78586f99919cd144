//! [`ViewFold`]: ledger entries in, in order from index 0; the compliance state plus what
//! the views need that the state machine does not keep.
//!
//! # Same state as the verifier
//! Each entry is checked for its place in the chain (its index is the next one, its
//! `prev_entry_hash` is the link hash of the entry before, sequencing time does not go
//! backwards) and then folded exactly as `stockpile_ledger::verifier` folds it: the ledger
//! clock advances to the entry's `recorded_at`, an accepted entry is re-admitted through
//! [`LedgerState::admit`], a rejected one only moves its key's emitter sequence
//! ([`LedgerState::note_rejected`]). So the [`ComplianceState`] here is the verifier's,
//! digest for digest. Signatures are checked one by one with the sequencer's strict rule
//! (the verifier's default batches differ only on signatures no one but the key holder
//! can make; see ARCHITECTURE.md, known limits).
//!
//! # What the fold adds
//! The state machine keeps the books, not their history. Next to it the fold records,
//! per accepted event: the lots it touched and how their books moved (a diff of the lot's
//! balances before and after admission, so the state machine stays the only judge of
//! where units go), and the few facts the views and Article 7 need: refused transfers,
//! destructions with their method and standards, retention purposes, consumption by
//! date, transfer shipments, inventory counts with the book they were compared with,
//! per-site flows per day (the material balance), flags with their evidence.
//!
//! # Memory
//! This is a read model, not the verifier: it keeps one small record per lot-bearing
//! event (index, id, kind, times, the book changes, a few ids) and a 16-byte fingerprint
//! per event a correction or certificate may name. It never keeps whole events or entry
//! bytes. Per-site flows are kept per site and day with activity. On the demo data sets
//! this comes to about 1 to 2.5 KB per entry, the verifier's state included (a
//! 2,000-entry ledger: 1.5 to 2.8 MB).
//!
//! # Snapshots
//! `ViewFold` is `Clone`, and a clone ([`ViewFold::snapshot`]) is an independent
//! snapshot: a view "as of" an earlier index is a fold stopped there. A clone copies
//! everything above, so its cost follows the ledger: a few milliseconds and megabytes
//! for a ledger of a few thousand entries, which is cheap enough to keep a snapshot per
//! report date or per cached "as of" query. For large ledgers, a projector keeps a clone
//! every N entries and folds forward from the nearest one instead of from index 0.
//!
//! # Where it differs from the verifier
//! The verifier reads past a malformed entry, a broken link or a gap to list every
//! finding; the fold refuses such an entry ([`FoldError`], nothing changed), because a
//! view must name one position of one chain. An entry marked accepted that the
//! admission code refuses is folded as the verifier folds it (books unchanged) and
//! reported as [`Outcome::Inconsistent`].

use ed25519_dalek::{Signature, VerifyingKey};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use stockpile_core::events::{
    DestructionBasis, DestructionMethod, Event, EventBody, EventKind, InventoryScope, LotBasis,
    Purpose, Regime,
};
use stockpile_core::hash::{Hash32, entry_link_hash, event_signature_message};
use stockpile_core::keys;
use stockpile_core::ledger::{Admission, AuthorityKey, LedgerState, SignatureCheck};
use stockpile_core::state::{Bucket, ComplianceState, Fingerprint, Flag};
use stockpile_core::time::{Date, TimestampMs};
use stockpile_proto::envelope::{
    DecodedEntry, DecodedSubmission, EntryVerdict, SubmissionError, decode_entry, decode_submission,
};

/// Why an entry could not be folded. The fold is unchanged: the entry was not taken.
/// Every variant names the index the fold expected next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldError {
    /// The bytes are not a ledger entry.
    Malformed { index: u64, detail: String },
    /// The entry claims another index than the next one (a gap, a repeat, a reorder).
    IndexMismatch { index: u64, claimed: u64 },
    /// `prev_entry_hash` is not the link hash of the entry before.
    BrokenLink {
        index: u64,
        expected: Hash32,
        actual: Hash32,
    },
    /// Sequencing time went backwards.
    TimeBackwards {
        index: u64,
        previous: TimestampMs,
        recorded_at: TimestampMs,
    },
}

impl FoldError {
    /// The ledger index of the entry that could not be folded.
    pub fn index(&self) -> u64 {
        match self {
            FoldError::Malformed { index, .. }
            | FoldError::IndexMismatch { index, .. }
            | FoldError::BrokenLink { index, .. }
            | FoldError::TimeBackwards { index, .. } => *index,
        }
    }
}

impl fmt::Display for FoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FoldError::Malformed { index, detail } => {
                write!(f, "entry {index} cannot be decoded: {detail}")
            }
            FoldError::IndexMismatch { index, claimed } => write!(
                f,
                "entry {index} claims index {claimed}: entries must be folded in order from 0"
            ),
            FoldError::BrokenLink {
                index,
                expected,
                actual,
            } => write!(
                f,
                "entry {index} has prev_entry_hash {actual} but the entry before hashes to {expected}"
            ),
            FoldError::TimeBackwards {
                index,
                previous,
                recorded_at,
            } => write!(
                f,
                "entry {index} was recorded at {recorded_at}, before the previous entry's {previous}"
            ),
        }
    }
}

impl std::error::Error for FoldError {}

/// What folding one entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub index: u64,
    /// The entry's link hash (the next entry's `prev_entry_hash`).
    pub link: Hash32,
    pub recorded_at: TimestampMs,
    /// When the submission decoded.
    pub event_id: Option<String>,
    pub kind: Option<EventKind>,
    pub outcome: Outcome,
    /// Flags raised by this entry, deadlines that fell due with it included.
    pub flags: Vec<Flag>,
}

/// How an entry was judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Marked accepted and re-admitted: the books moved.
    Accepted,
    /// Marked rejected by the sequencer: kept as evidence, the books did not move.
    Rejected { code: String },
    /// Marked accepted, but the admission code refuses it (or its submission cannot be
    /// read): the verifier reports this as a finding. The fold goes on as the verifier
    /// does (books unchanged), and lists it in [`ViewFold::inconsistencies`].
    Inconsistent { code: String },
}

/// How an event stood with the ledger, as a lot's history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Rejected { code: String },
}

/// A pool of a lot at a site, as the views name it (the state machine's [`Bucket`]
/// without its institution or shipment id, which go into `party`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pool {
    Stockpiled,
    Retained,
    Korea,
    InTransit,
    Unreceived,
    Destroyed,
    Consumed,
    Lost,
    TransferredOut,
}

impl Pool {
    /// The pool of a bucket and the institution or shipment it names, if any.
    pub fn of(bucket: &Bucket) -> (Pool, Option<&str>) {
        match bucket {
            Bucket::Stockpiled => (Pool::Stockpiled, None),
            Bucket::Retained { institution_id } => (Pool::Retained, Some(institution_id)),
            Bucket::Korea => (Pool::Korea, None),
            Bucket::InTransit { shipment_id } => (Pool::InTransit, Some(shipment_id)),
            Bucket::Unreceived { shipment_id } => (Pool::Unreceived, Some(shipment_id)),
            Bucket::Destroyed => (Pool::Destroyed, None),
            Bucket::Consumed { institution_id } => (Pool::Consumed, Some(institution_id)),
            Bucket::Lost => (Pool::Lost, None),
            Bucket::TransferredOut => (Pool::TransferredOut, None),
        }
    }

    /// Units still held (see [`Bucket::is_held`]).
    pub fn is_held(self) -> bool {
        matches!(
            self,
            Pool::Stockpiled | Pool::Retained | Pool::Korea | Pool::InTransit | Pool::Unreceived
        )
    }

    /// Units a physical count at the site should find (see [`Bucket::is_site_book`]).
    pub fn is_site_book(self) -> bool {
        matches!(self, Pool::Stockpiled | Pool::Retained | Pool::Korea)
    }
}

/// One change of a lot's books made by one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookChange {
    pub site_id: String,
    pub pool: Pool,
    /// The institution (retained, consumed) or shipment (in transit, unreceived).
    pub party: Option<String>,
    /// Units added (positive) or taken (negative).
    pub change: i64,
}

/// One event in a lot's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotEvent {
    pub index: u64,
    pub event_id: String,
    pub kind: EventKind,
    pub recorded_at: TimestampMs,
    pub occurred_at: TimestampMs,
    /// The quantity the event states for this lot: declared, retained, consumed,
    /// shipped, counted on receipt, destroyed, designated, lost; for an inventory, the
    /// units counted. `None` for events without one (certificates, corrections).
    pub quantity: Option<u64>,
    /// The sites the event names.
    pub sites: Vec<String>,
    pub verdict: Verdict,
    /// For an inventory count: the book it was compared with at that site.
    pub book_at_count: Option<u64>,
    /// How the lot's books moved (empty for a rejected event).
    pub changes: Vec<BookChange>,
}

/// A `TransferRefused`, as the register lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    pub index: u64,
    pub event_id: String,
    pub request_id: String,
    pub authority: String,
    pub date: Date,
    pub basis_cited: String,
    pub reasoning: String,
}

/// A `TransferApproved`, with the fields the state machine drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub index: u64,
    pub event_id: String,
    pub request_id: String,
    pub authority: String,
    pub date: Date,
    pub legal_basis: String,
    pub purpose: Purpose,
    pub institution_id: Option<String>,
    pub destruction_site_id: Option<String>,
    pub title_passes_date: Option<Date>,
}

/// A `LotDestroyed`, as recorded (the current quantity, after corrections, and the
/// certificates come from the state machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestructionRecord {
    pub index: u64,
    pub event_id: String,
    pub lot_id: String,
    pub type_id: String,
    pub site_id: String,
    /// The quantity as first reported.
    pub reported_units: u64,
    pub method: DestructionMethod,
    pub start_date: Date,
    pub end_date: Date,
    pub input_count: u64,
    pub witnesses: u32,
    pub independent_witnesses: u32,
    pub standards: Vec<String>,
    pub end_product_evidence: u32,
    pub basis: DestructionBasis,
    pub institution_id: Option<String>,
    /// The basis the lot was declared with (discovered stock goes on its own parts of
    /// Forms B and G).
    pub lot_basis: LotBasis,
}

/// A `RetainedMinesConsumed`, with its quantity after corrections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumptionRecord {
    pub index: u64,
    pub event_id: String,
    pub lot_id: String,
    pub type_id: String,
    pub institution_id: String,
    pub activity: String,
    pub date: Date,
    /// After corrections.
    pub units: u64,
}

/// A `LotRetained`: the purpose part of Form D.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRecord {
    pub index: u64,
    pub event_id: String,
    pub lot_id: String,
    pub type_id: String,
    pub institution_id: String,
    pub site_id: String,
    pub units: u64,
    pub purpose: Purpose,
    pub justification: String,
    pub planned_annual_use: u64,
    pub next_review_date: Option<Date>,
    pub date: Date,
}

/// A movement across the border under a transfer request: a shipment citing one, or a
/// lot declared as imported under an approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferMovement {
    pub index: u64,
    pub event_id: String,
    pub request_id: String,
    /// `None` for an imported lot's declaration.
    pub shipment_id: Option<String>,
    pub lot_id: String,
    pub type_id: String,
    pub units: u64,
    pub from_site_id: Option<String>,
    pub to_site_id: String,
    pub date: Date,
}

/// A shipment in transit, with what the state machine does not keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenShipmentRecord {
    pub index: u64,
    pub event_id: String,
    pub lot_id: String,
    pub from_site_id: String,
    pub to_site_id: String,
    pub units: u64,
    pub date: Date,
    pub seal_ids: Vec<String>,
}

/// An `InventoryVerified`, summed over the lots it counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryRecord {
    pub index: u64,
    pub event_id: String,
    pub site_id: String,
    pub date: Date,
    pub recorded_on: Date,
    pub scope: InventoryScope,
    /// Lots compared (a full count also compares the lots on the books it did not list).
    pub lots: u32,
    pub counted: u64,
    /// The site book of those lots when the count was recorded.
    pub book: u64,
    /// Lots whose count differed from the book.
    pub differing_lots: u32,
}

/// An accepted entry the admission code refuses, or whose submission cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inconsistency {
    pub index: u64,
    pub event_id: Option<String>,
    pub code: String,
    pub message: String,
}

/// An entry the sequencer rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEntry {
    pub index: u64,
    pub event_id: Option<String>,
    pub kind: Option<EventKind>,
    pub code: String,
    pub reason: String,
}

/// The changes of one site's book (stockpiled, retained and designated units: what a
/// count finds) on one day, by cause. Outflows are positive numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFlows {
    pub declared: i64,
    pub received: i64,
    pub shipped: i64,
    pub destroyed: i64,
    pub consumed: i64,
    pub lost: i64,
    /// Signed: corrections raise or lower the book.
    pub corrections: i64,
    /// Memo, not in the book: change of units booked as missing on receipt here.
    pub unreceived: i64,
}

impl SiteFlows {
    /// The net change of the site book.
    pub fn net(&self) -> i64 {
        self.declared + self.received - self.shipped - self.destroyed - self.consumed - self.lost
            + self.corrections
    }

    pub fn add(&mut self, other: &SiteFlows) {
        self.declared += other.declared;
        self.received += other.received;
        self.shipped += other.shipped;
        self.destroyed += other.destroyed;
        self.consumed += other.consumed;
        self.lost += other.lost;
        self.corrections += other.corrections;
        self.unreceived += other.unreceived;
    }
}

/// One lot's history.
#[derive(Debug, Clone)]
struct LotLog {
    lot_id: String,
    history: Vec<LotEvent>,
}

/// Everything the views need beyond the compliance state. See the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct ViewLog {
    /// Lot id → handle into `lots`.
    lot_ix: BTreeMap<String, u32>,
    lots: Vec<LotLog>,
    /// Fingerprint of every accepted lot-bearing event id → the lot's handle, so that a
    /// correction or certificate naming it finds the lot.
    event_lots: BTreeMap<Fingerprint, u32>,
    /// Fingerprint of every accepted consumption event → its record, for corrections.
    consumption_ix: BTreeMap<Fingerprint, u32>,
    /// Site → lots with units in its book, so that a full count knows what it missed.
    site_lots: BTreeMap<String, BTreeSet<String>>,
    pub(crate) refusals: Vec<RefusalRecord>,
    pub(crate) approvals: BTreeMap<String, ApprovalRecord>,
    pub(crate) destructions: Vec<DestructionRecord>,
    pub(crate) consumptions: Vec<ConsumptionRecord>,
    pub(crate) retentions: Vec<RetentionRecord>,
    pub(crate) movements: Vec<TransferMovement>,
    pub(crate) open_shipments: BTreeMap<String, OpenShipmentRecord>,
    pub(crate) inventories: Vec<InventoryRecord>,
    /// Site → recorded date → flows.
    pub(crate) site_flows: BTreeMap<String, BTreeMap<Date, SiteFlows>>,
    pub(crate) flags: Vec<Flag>,
    pub(crate) inconsistencies: Vec<Inconsistency>,
    pub(crate) rejected: Vec<RejectedEntry>,
    pub(crate) accepted_entries: u64,
    /// (regime, EIF date) of every accepted `RegimeConfigured`, oldest first: a handful.
    regimes: Vec<(Regime, Date)>,
}

/// The balances of a lot before an event, to diff against afterwards.
type Balances = BTreeMap<(String, Bucket), u64>;

/// The event being recorded.
struct EntryCtx<'a> {
    index: u64,
    recorded_at: TimestampMs,
    event: &'a Event,
}

/// The ledger folded into the compliance state and the view records. See the module docs.
#[derive(Debug, Clone)]
pub struct ViewFold {
    ledger: LedgerState,
    /// Entries folded: the index the next entry must claim.
    entries: u64,
    /// Link hash of the last entry folded (zero before entry 0).
    prev_link: Hash32,
    last_recorded_at: Option<TimestampMs>,
    pub(crate) log: ViewLog,
}

/// An entry decoded and hashed ahead of its turn, its signature checked when its key was
/// known (all pure, so a batch is prepared on all cores; see [`ViewFold::apply_batch`]).
struct Prepared {
    link: Hash32,
    entry: Result<DecodedEntry, String>,
    /// `None` when the entry did not decode.
    submission: Option<Result<DecodedSubmission, SubmissionError>>,
    signature_check: SignatureCheck,
}

impl Prepared {
    fn decode(entry_bytes: &[u8]) -> Prepared {
        let entry = decode_entry(entry_bytes).map_err(|error| error.to_string());
        let submission = entry
            .as_ref()
            .ok()
            .map(|entry| decode_submission(&entry.submission));
        Prepared {
            link: entry_link_hash(entry_bytes),
            entry,
            submission,
            signature_check: SignatureCheck::NotChecked,
        }
    }

    /// Checks the signature with the strict rule admission uses
    /// ([`keys::verify_strict`]: the key was checked as it does, then dalek's
    /// `verify_strict`), if the key is known. Only the verdict is computed early:
    /// admission still checks the key's validity, revocation, origin and the rest, and
    /// compares the key checked against with the key it knows when the entry's turn
    /// comes.
    fn check_signature(&mut self, keys: &HashMap<String, PreparedKey>) {
        let Some(Ok(submission)) = &self.submission else {
            return;
        };
        let Some((public_key, verifying)) = keys.get(submission.key_id.as_str()) else {
            return;
        };
        let Ok(signature) = <[u8; 64]>::try_from(submission.signature.as_ref()) else {
            return;
        };
        let message = event_signature_message(&submission.event_bytes);
        self.signature_check =
            match verifying.verify_strict(&message, &Signature::from_bytes(&signature)) {
                Ok(()) => SignatureCheck::Valid(*public_key),
                Err(_) => SignatureCheck::Invalid(*public_key),
            };
    }
}

/// A known public key, checked as [`keys::verify_strict`] checks it, and decoded.
type PreparedKey = ([u8; 32], VerifyingKey);

/// The `recorded_at` of an entry, without folding it: lets a caller stop before the first
/// entry past a date (the Article 7 position of 31 December).
pub fn entry_recorded_at(entry_bytes: &[u8], index: u64) -> Result<TimestampMs, FoldError> {
    decode_entry(entry_bytes)
        .map(|entry| entry.recorded_at)
        .map_err(|error| FoldError::Malformed {
            index,
            detail: error.to_string(),
        })
}

impl ViewFold {
    /// An empty fold for the ledger `origin`, trusting `authority_keys` as the verifier
    /// does (from the trust root).
    pub fn new(origin: impl Into<String>, authority_keys: &[AuthorityKey]) -> ViewFold {
        ViewFold {
            ledger: LedgerState::new(origin, authority_keys),
            entries: 0,
            prev_link: Hash32::ZERO,
            last_recorded_at: None,
            log: ViewLog::default(),
        }
    }

    /// Folds the next entry. On `Err` nothing changed.
    pub fn apply(&mut self, entry_bytes: &[u8]) -> Result<Applied, FoldError> {
        self.apply_prepared(entry_bytes, Prepared::decode(entry_bytes))
    }

    /// Folds consecutive entries, as [`ViewFold::apply`] one after the other would, but
    /// decodes them and checks their signatures on all cores first (with the same strict
    /// rule admission uses: the verdicts are the same, only computed ahead). A signature
    /// whose key is not known before the batch (a key the batch itself adds) is checked
    /// during admission as usual. On `Err` the entries before the failing one are folded
    /// and the failing one is not (the error names its index).
    pub fn apply_batch<B: AsRef<[u8]> + Sync>(&mut self, entries: &[B]) -> Result<(), FoldError> {
        let mut prepared: Vec<Prepared> = entries
            .par_iter()
            .map(|bytes| Prepared::decode(bytes.as_ref()))
            .collect();
        // Each key the batch names is decoded once (a tenth of a strict check) and only
        // if it is a usable key: an unusable one is left to admission, which refuses it.
        let mut keys: HashMap<String, PreparedKey> = HashMap::new();
        for item in &prepared {
            let Some(Ok(submission)) = &item.submission else {
                continue;
            };
            if keys.contains_key(&submission.key_id) {
                continue;
            }
            let Some(public_key) = self.ledger.public_key(&submission.key_id) else {
                continue;
            };
            if keys::check_public_key(&public_key).is_err() {
                continue;
            }
            if let Ok(verifying) = VerifyingKey::from_bytes(&public_key) {
                keys.insert(submission.key_id.clone(), (public_key, verifying));
            }
        }
        prepared
            .par_iter_mut()
            .for_each(|item| item.check_signature(&keys));
        for (bytes, prepared) in entries.iter().zip(prepared) {
            self.apply_prepared(bytes.as_ref(), prepared)?;
        }
        Ok(())
    }

    fn apply_prepared(
        &mut self,
        entry_bytes: &[u8],
        prepared: Prepared,
    ) -> Result<Applied, FoldError> {
        let index = self.entries;
        let entry = prepared
            .entry
            .map_err(|detail| FoldError::Malformed { index, detail })?;
        if entry.index != index {
            return Err(FoldError::IndexMismatch {
                index,
                claimed: entry.index,
            });
        }
        if entry.prev_entry_hash != self.prev_link {
            return Err(FoldError::BrokenLink {
                index,
                expected: self.prev_link,
                actual: entry.prev_entry_hash,
            });
        }
        if let Some(previous) = self.last_recorded_at.filter(|p| entry.recorded_at < *p) {
            return Err(FoldError::TimeBackwards {
                index,
                previous,
                recorded_at: entry.recorded_at,
            });
        }
        // The entry has its place in the chain: from here on it is folded, whatever it
        // holds, exactly as the verifier folds it.
        debug_assert_eq!(prepared.link, entry_link_hash(entry_bytes));
        let link = prepared.link;
        let signature_check = prepared.signature_check;
        let recorded_at = entry.recorded_at;
        self.entries += 1;
        self.prev_link = link;
        self.last_recorded_at = Some(recorded_at);
        let mut flags = self.ledger.advance_to(index, recorded_at);

        let submission = prepared
            .submission
            .unwrap_or_else(|| decode_submission(&entry.submission));
        let (event_id, kind) = match &submission {
            Ok(decoded) => (
                Some(decoded.event.event_id.clone()),
                Some(decoded.event.body.kind()),
            ),
            Err(_) => (None, None),
        };
        let outcome = match (entry.verdict, submission) {
            (EntryVerdict::Accepted, Err(error)) => {
                let code = "entry.accepted_but_undecodable".to_string();
                self.log.inconsistencies.push(Inconsistency {
                    index,
                    event_id: None,
                    code: code.clone(),
                    message: format!(
                        "entry is marked accepted but its submission cannot be read ({}): {error}",
                        error.code()
                    ),
                });
                Outcome::Inconsistent { code }
            }
            (EntryVerdict::Accepted, Ok(decoded)) => {
                let event = &decoded.event;
                let diffed = self.log.lots_moved_by(&event.body);
                let before: Vec<(String, Balances)> = diffed
                    .iter()
                    .map(|lot_id| (lot_id.clone(), self.balances(lot_id)))
                    .collect();
                let candidate = decoded.candidate(signature_check);
                match self.ledger.admit(index, recorded_at, candidate) {
                    Admission::Accepted { flags: raised } => {
                        flags.extend(raised);
                        let ctx = EntryCtx {
                            index,
                            recorded_at,
                            event,
                        };
                        self.log
                            .record_accepted(&ctx, before, self.ledger.compliance());
                        Outcome::Accepted
                    }
                    Admission::Rejected(rejection) => {
                        self.log.inconsistencies.push(Inconsistency {
                            index,
                            event_id: Some(event.event_id.clone()),
                            code: rejection.code.clone(),
                            message: format!(
                                "accepted entry breaks hard rule {} ({:?}): {}",
                                rejection.rule.number(),
                                rejection.rule,
                                rejection.reason
                            ),
                        });
                        Outcome::Inconsistent {
                            code: rejection.code,
                        }
                    }
                }
            }
            (EntryVerdict::Rejected { code, reason }, submission) => {
                let event = submission.as_ref().ok().map(|decoded| &decoded.event);
                if let Ok(decoded) = &submission {
                    self.ledger
                        .note_rejected(decoded.candidate(signature_check));
                }
                self.log
                    .record_rejected(index, recorded_at, event, &code, &reason);
                Outcome::Rejected { code }
            }
        };
        self.log.flags.extend(flags.iter().cloned());
        Ok(Applied {
            index,
            link,
            recorded_at,
            event_id,
            kind,
            outcome,
            flags,
        })
    }

    /// Folds the next entry if it was recorded on or before `last_date`; `Ok(None)` (and
    /// nothing changed) if it was recorded later. Folding a ledger through this until the
    /// first `None` stops at the ledger position of `last_date` (e.g. 31 December).
    pub fn apply_through(
        &mut self,
        entry_bytes: &[u8],
        last_date: Date,
    ) -> Result<Option<Applied>, FoldError> {
        let recorded_at = entry_recorded_at(entry_bytes, self.entries)?;
        if recorded_at.date() > last_date {
            return Ok(None);
        }
        self.apply(entry_bytes).map(Some)
    }

    /// Entries folded so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Index of the last entry folded.
    pub fn last_index(&self) -> Option<u64> {
        self.entries.checked_sub(1)
    }

    /// Link hash of the last entry folded (zero when none).
    pub fn head_link(&self) -> Hash32 {
        self.prev_link
    }

    pub fn last_recorded_at(&self) -> Option<TimestampMs> {
        self.last_recorded_at
    }

    /// The ledger's "today": the date of the last entry folded.
    pub fn today(&self) -> Option<Date> {
        self.last_recorded_at.map(|at| at.date())
    }

    /// The date "since EIF" counts from. Under `APMBC` it is the EIF in force (a later
    /// `RegimeConfigured` may correct it). The U.S. regimes reuse the field for the date
    /// of each policy, while the ledger's record runs from the first one; so under them
    /// it is the EIF of the first U.S. configuration.
    pub fn reporting_eif(&self) -> Option<Date> {
        let current = self.compliance().regime()?;
        if !current.regime().is_us() {
            return Some(current.config.eif_date);
        }
        self.log
            .regimes
            .iter()
            .find(|(regime, _)| regime.is_us())
            .map(|(_, eif)| *eif)
    }

    /// Keys, replay protection and compliance state, as the verifier has them.
    pub fn ledger(&self) -> &LedgerState {
        &self.ledger
    }

    pub fn compliance(&self) -> &ComplianceState {
        self.ledger.compliance()
    }

    /// A snapshot of the fold as it is now (see the module docs on cost).
    pub fn snapshot(&self) -> ViewFold {
        self.clone()
    }

    /// The history of a lot, oldest first.
    pub fn lot_history(&self, lot_id: &str) -> Option<&[LotEvent]> {
        let ix = *self.log.lot_ix.get(lot_id)?;
        Some(&self.log.lots[ix as usize].history)
    }

    /// Every flag raised so far, in ledger order, with its evidence.
    pub fn flags(&self) -> &[Flag] {
        &self.log.flags
    }

    /// Accepted entries the admission code refuses (none in a ledger the sequencer wrote).
    pub fn inconsistencies(&self) -> &[Inconsistency] {
        &self.log.inconsistencies
    }

    /// Entries the sequencer rejected.
    pub fn rejected_entries(&self) -> &[RejectedEntry] {
        &self.log.rejected
    }

    /// Entries accepted and re-admitted.
    pub fn accepted_entries(&self) -> u64 {
        self.log.accepted_entries
    }

    pub fn refusals(&self) -> &[RefusalRecord] {
        &self.log.refusals
    }

    pub fn approvals(&self) -> &BTreeMap<String, ApprovalRecord> {
        &self.log.approvals
    }

    pub fn destructions(&self) -> &[DestructionRecord] {
        &self.log.destructions
    }

    pub fn consumptions(&self) -> &[ConsumptionRecord] {
        &self.log.consumptions
    }

    pub fn retentions(&self) -> &[RetentionRecord] {
        &self.log.retentions
    }

    /// Movements across the border under transfer requests, in ledger order.
    pub fn transfer_movements(&self) -> &[TransferMovement] {
        &self.log.movements
    }

    /// Shipments in transit, by shipment id.
    pub fn open_shipments(&self) -> &BTreeMap<String, OpenShipmentRecord> {
        &self.log.open_shipments
    }

    pub fn inventories(&self) -> &[InventoryRecord] {
        &self.log.inventories
    }

    /// Site → recorded date → changes of the site's book.
    pub fn site_flows(&self) -> &BTreeMap<String, BTreeMap<Date, SiteFlows>> {
        &self.log.site_flows
    }

    fn balances(&self, lot_id: &str) -> Balances {
        self.compliance()
            .lot(lot_id)
            .map(|lot| lot.balances)
            .unwrap_or_default()
    }
}

/// The lot an event names directly, for the kinds that carry one.
fn lot_of(body: &EventBody) -> Option<&str> {
    use EventBody as B;
    Some(match body {
        B::LotDeclared(e) => &e.lot_id,
        B::LotRetained(e) => &e.lot_id,
        B::RetainedMinesConsumed(e) => &e.lot_id,
        B::LotShipped(e) => &e.lot_id,
        B::LotReceived(e) => &e.lot_id,
        B::LotDestroyed(e) => &e.lot_id,
        B::LotDesignatedForKoreaDefense(e) => &e.lot_id,
        B::KoreaDesignationRevoked(e) => &e.lot_id,
        B::LossReported(e) => &e.lot_id,
        _ => return None,
    })
}

/// The quantity an event states for its lot.
fn quantity_of(body: &EventBody) -> Option<u64> {
    use EventBody as B;
    Some(match body {
        B::LotDeclared(e) => e.quantity,
        B::LotRetained(e) => e.quantity,
        B::RetainedMinesConsumed(e) => e.quantity,
        B::LotShipped(e) => e.quantity,
        B::LotReceived(e) => e.quantity_counted,
        B::LotDestroyed(e) => e.quantity,
        B::LotDesignatedForKoreaDefense(e) => e.quantity,
        B::KoreaDesignationRevoked(e) => e.quantity,
        B::LossReported(e) => e.quantity,
        _ => return None,
    })
}

/// The sites an event names, as owned strings.
fn sites_of(body: &EventBody) -> Vec<String> {
    body.sites().into_iter().map(str::to_string).collect()
}

/// Per (site, bucket): after − before, nonzero only.
fn diff(before: &Balances, after: &Balances) -> Vec<(String, Bucket, i64)> {
    let keys: BTreeSet<&(String, Bucket)> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let old = before.get(key).copied().unwrap_or(0) as i128;
            let new = after.get(key).copied().unwrap_or(0) as i128;
            let change = i64::try_from(new - old).expect("quantities stay within QUANTITY_MAX");
            (change != 0).then(|| (key.0.clone(), key.1.clone(), change))
        })
        .collect()
}

impl ViewLog {
    fn lot_handle(&self, lot_id: &str) -> Option<u32> {
        self.lot_ix.get(lot_id).copied()
    }

    fn lot_id(&self, handle: u32) -> &str {
        &self.lots[handle as usize].lot_id
    }

    /// The lots whose books an accepted event of this shape may move: diffed around
    /// its admission.
    fn lots_moved_by(&self, body: &EventBody) -> Vec<String> {
        match body {
            EventBody::CorrectionIssued(e) => self
                .event_lots
                .get(&Fingerprint::of(&e.corrected_event_id))
                .map(|lot| vec![self.lot_id(*lot).to_string()])
                .unwrap_or_default(),
            EventBody::InventoryVerified(_) | EventBody::DestructionCertified(_) => Vec::new(),
            body => lot_of(body)
                .map(|id| vec![id.to_string()])
                .unwrap_or_default(),
        }
    }

    fn push_history(&mut self, lot_id: &str, event: LotEvent) {
        let ix = match self.lot_ix.get(lot_id) {
            Some(ix) => *ix,
            None => {
                let ix = u32::try_from(self.lots.len()).expect("fewer than 2^32 lots");
                self.lot_ix.insert(lot_id.to_string(), ix);
                self.lots.push(LotLog {
                    lot_id: lot_id.to_string(),
                    history: Vec::new(),
                });
                ix
            }
        };
        self.lots[ix as usize].history.push(event);
    }

    fn record_rejected(
        &mut self,
        index: u64,
        recorded_at: TimestampMs,
        event: Option<&Event>,
        code: &str,
        reason: &str,
    ) {
        self.rejected.push(RejectedEntry {
            index,
            event_id: event.map(|e| e.event_id.clone()),
            kind: event.map(|e| e.body.kind()),
            code: code.to_string(),
            reason: reason.to_string(),
        });
        // A refused event that names a known lot belongs to its history too: a refusal
        // is evidence.
        let Some(event) = event else { return };
        let Some(lot_id) = lot_of(&event.body).filter(|id| self.lot_ix.contains_key(*id)) else {
            return;
        };
        let lot_id = lot_id.to_string();
        self.push_history(
            &lot_id,
            LotEvent {
                index,
                event_id: event.event_id.clone(),
                kind: event.body.kind(),
                recorded_at,
                occurred_at: event.occurred_at,
                quantity: quantity_of(&event.body),
                sites: sites_of(&event.body),
                verdict: Verdict::Rejected {
                    code: code.to_string(),
                },
                book_at_count: None,
                changes: Vec::new(),
            },
        );
    }

    /// Records an accepted event: lot histories from the balance diffs, site flows, and
    /// the records of its kind.
    fn record_accepted(
        &mut self,
        ctx: &EntryCtx<'_>,
        before: Vec<(String, Balances)>,
        state: &ComplianceState,
    ) {
        self.accepted_entries += 1;
        let event = ctx.event;
        let kind = event.body.kind();
        let today = ctx.recorded_at.date();
        let fingerprint = Fingerprint::of(&event.event_id);

        for (lot_id, before) in before {
            let after = state
                .lot(&lot_id)
                .map(|lot| lot.balances)
                .unwrap_or_default();
            let changes = diff(&before, &after);
            self.post_flows(kind, today, &changes);
            self.update_site_lots(&lot_id, &changes, &after);
            if let EventBody::CorrectionIssued(correction) = &event.body
                && let Some(record) = self
                    .consumption_ix
                    .get(&Fingerprint::of(&correction.corrected_event_id))
            {
                let consumed: i64 = changes
                    .iter()
                    .filter(|(_, bucket, _)| matches!(bucket, Bucket::Consumed { .. }))
                    .map(|(_, _, change)| change)
                    .sum();
                let record = &mut self.consumptions[*record as usize];
                record.units = record
                    .units
                    .checked_add_signed(consumed)
                    .expect("consumption stays non-negative");
            }
            let book_changes = changes
                .into_iter()
                .map(|(site_id, bucket, change)| {
                    let (pool, party) = Pool::of(&bucket);
                    BookChange {
                        site_id,
                        pool,
                        party: party.map(str::to_string),
                        change,
                    }
                })
                .collect();
            self.push_history(
                &lot_id,
                LotEvent {
                    index: ctx.index,
                    event_id: event.event_id.clone(),
                    kind,
                    recorded_at: ctx.recorded_at,
                    occurred_at: event.occurred_at,
                    quantity: quantity_of(&event.body),
                    sites: sites_of(&event.body),
                    verdict: Verdict::Accepted,
                    book_at_count: None,
                    changes: book_changes,
                },
            );
            if kind != EventKind::CorrectionIssued {
                let handle = self.lot_handle(&lot_id).expect("just recorded");
                self.event_lots.insert(fingerprint, handle);
            }
        }

        let type_of = |lot_id: &str| {
            state
                .lot(lot_id)
                .map(|lot| lot.info.type_id)
                .unwrap_or_default()
        };
        match &event.body {
            EventBody::LotDeclared(e) => {
                if e.basis == LotBasis::ImportedUnderApproval
                    && let Some(request_id) = &e.request_id
                {
                    self.movements.push(TransferMovement {
                        index: ctx.index,
                        event_id: event.event_id.clone(),
                        request_id: request_id.clone(),
                        shipment_id: None,
                        lot_id: e.lot_id.clone(),
                        type_id: e.type_id.clone(),
                        units: e.quantity,
                        from_site_id: None,
                        to_site_id: e.site_id.clone(),
                        date: e.basis_date.unwrap_or(event.occurred_at.date()),
                    });
                }
            }
            EventBody::LotRetained(e) => self.retentions.push(RetentionRecord {
                index: ctx.index,
                event_id: event.event_id.clone(),
                lot_id: e.lot_id.clone(),
                type_id: type_of(&e.lot_id),
                institution_id: e.institution_id.clone(),
                site_id: e.site_id.clone(),
                units: e.quantity,
                purpose: e.purpose,
                justification: e.justification.clone(),
                planned_annual_use: e.planned_annual_use,
                next_review_date: e.next_review_date,
                date: event.occurred_at.date(),
            }),
            EventBody::RetainedMinesConsumed(e) => {
                let ix = u32::try_from(self.consumptions.len()).expect("fewer than 2^32");
                self.consumption_ix.insert(fingerprint, ix);
                self.consumptions.push(ConsumptionRecord {
                    index: ctx.index,
                    event_id: event.event_id.clone(),
                    lot_id: e.lot_id.clone(),
                    type_id: type_of(&e.lot_id),
                    institution_id: e.institution_id.clone(),
                    activity: e.activity.clone(),
                    date: e.date,
                    units: e.quantity,
                });
            }
            EventBody::LotShipped(e) => {
                if let Some(request_id) = &e.request_id {
                    self.movements.push(TransferMovement {
                        index: ctx.index,
                        event_id: event.event_id.clone(),
                        request_id: request_id.clone(),
                        shipment_id: Some(e.shipment_id.clone()),
                        lot_id: e.lot_id.clone(),
                        type_id: type_of(&e.lot_id),
                        units: e.quantity,
                        from_site_id: Some(e.from_site_id.clone()),
                        to_site_id: e.to_site_id.clone(),
                        date: e.date,
                    });
                }
                // A shipment to a foreign site closes on dispatch; only domestic ones
                // stay in transit.
                if state
                    .shipment(&e.shipment_id)
                    .is_some_and(|shipment| shipment.is_open())
                {
                    self.open_shipments.insert(
                        e.shipment_id.clone(),
                        OpenShipmentRecord {
                            index: ctx.index,
                            event_id: event.event_id.clone(),
                            lot_id: e.lot_id.clone(),
                            from_site_id: e.from_site_id.clone(),
                            to_site_id: e.to_site_id.clone(),
                            units: e.quantity,
                            date: e.date,
                            seal_ids: e.seal_ids.clone(),
                        },
                    );
                }
            }
            EventBody::LotReceived(e) => {
                self.open_shipments.remove(&e.shipment_id);
            }
            EventBody::LotDestroyed(e) => {
                let (type_id, lot_basis) = state
                    .lot(&e.lot_id)
                    .map(|lot| (lot.info.type_id, lot.info.basis))
                    .expect("a destroyed lot is declared");
                self.destructions.push(DestructionRecord {
                    index: ctx.index,
                    event_id: event.event_id.clone(),
                    lot_id: e.lot_id.clone(),
                    type_id,
                    site_id: e.site_id.clone(),
                    reported_units: e.quantity,
                    method: e.method,
                    start_date: e.start_date,
                    end_date: e.end_date,
                    input_count: e.input_count,
                    witnesses: count_u32(e.witnesses.len()),
                    independent_witnesses: count_u32(
                        e.witnesses.iter().filter(|w| w.independent).count(),
                    ),
                    standards: e.standards.clone(),
                    end_product_evidence: count_u32(e.end_product_sha256.len()),
                    basis: e.basis,
                    institution_id: e.institution_id.clone(),
                    lot_basis,
                });
            }
            EventBody::DestructionCertified(e) => {
                let mut lots: Vec<u32> = e
                    .covered_event_ids
                    .iter()
                    .filter_map(|id| self.event_lots.get(&Fingerprint::of(id)).copied())
                    .collect();
                lots.sort_unstable();
                lots.dedup();
                for lot in lots {
                    let lot_id = self.lot_id(lot).to_string();
                    self.push_history(&lot_id, plain_event(ctx, None, None));
                }
            }
            EventBody::TransferApproved(e) => {
                self.approvals.insert(
                    e.request_id.clone(),
                    ApprovalRecord {
                        index: ctx.index,
                        event_id: event.event_id.clone(),
                        request_id: e.request_id.clone(),
                        authority: e.authority.clone(),
                        date: e.date,
                        legal_basis: e.legal_basis.clone(),
                        purpose: e.purpose,
                        institution_id: e.institution_id.clone(),
                        destruction_site_id: e.destruction_site_id.clone(),
                        title_passes_date: e.title_passes_date,
                    },
                );
            }
            EventBody::TransferRefused(e) => self.refusals.push(RefusalRecord {
                index: ctx.index,
                event_id: event.event_id.clone(),
                request_id: e.request_id.clone(),
                authority: e.authority.clone(),
                date: e.date,
                basis_cited: e.basis_cited.clone(),
                reasoning: e.reasoning.clone(),
            }),
            EventBody::InventoryVerified(e) => self.record_inventory(ctx, e, state),
            EventBody::RegimeConfigured(e) => self.regimes.push((e.regime, e.eif_date)),
            _ => {}
        }
    }

    fn record_inventory(
        &mut self,
        ctx: &EntryCtx<'_>,
        e: &stockpile_core::events::InventoryVerified,
        state: &ComplianceState,
    ) {
        // A count changes no book, so the books after admission are those it was
        // compared with.
        let mut counted: BTreeMap<String, u64> = e
            .counts
            .iter()
            .map(|count| (count.lot_id.clone(), count.counted))
            .collect();
        if e.scope == InventoryScope::Full
            && let Some(on_book) = self.site_lots.get(&e.site_id)
        {
            for lot_id in on_book {
                counted.entry(lot_id.clone()).or_insert(0);
            }
        }
        let mut record = InventoryRecord {
            index: ctx.index,
            event_id: ctx.event.event_id.clone(),
            site_id: e.site_id.clone(),
            date: e.date,
            recorded_on: ctx.recorded_at.date(),
            scope: e.scope,
            lots: 0,
            counted: 0,
            book: 0,
            differing_lots: 0,
        };
        for (lot_id, units) in counted {
            let book = state
                .lot(&lot_id)
                .map_or(0, |lot| lot.site_book(&e.site_id));
            record.lots += 1;
            record.counted = record.counted.saturating_add(units);
            record.book = record.book.saturating_add(book);
            if book != units {
                record.differing_lots += 1;
            }
            let history = plain_event(ctx, Some(units), Some(book));
            self.push_history(&lot_id, history);
        }
        self.inventories.push(record);
    }

    /// Adds the site-book changes of one event to the flows of its day.
    fn post_flows(&mut self, kind: EventKind, today: Date, changes: &[(String, Bucket, i64)]) {
        let mut per_site: BTreeMap<&str, SiteFlows> = BTreeMap::new();
        for (site_id, bucket, change) in changes {
            let (pool, _) = Pool::of(bucket);
            let flows = per_site.entry(site_id).or_default();
            if pool == Pool::Unreceived {
                flows.unreceived += change;
            }
            if !pool.is_site_book() {
                continue;
            }
            match kind {
                EventKind::LotDeclared => flows.declared += change,
                EventKind::LotReceived => flows.received += change,
                EventKind::LotShipped => flows.shipped -= change,
                EventKind::LotDestroyed => flows.destroyed -= change,
                EventKind::RetainedMinesConsumed => flows.consumed -= change,
                EventKind::LossReported => flows.lost -= change,
                EventKind::CorrectionIssued => flows.corrections += change,
                // Retention and Korea designation move units between pools of one
                // site's book; any net change would be a state machine this fold does
                // not understand.
                _ => {}
            }
        }
        for (site_id, flows) in per_site {
            let net_book: i64 = changes
                .iter()
                .filter(|(site, bucket, _)| site == site_id && Pool::of(bucket).0.is_site_book())
                .map(|(_, _, change)| change)
                .sum();
            assert_eq!(
                flows.net(),
                net_book,
                "a {} moved the book of site {site_id} in a way the material balance does not classify",
                kind.name()
            );
            if flows == SiteFlows::default() {
                continue;
            }
            self.site_flows
                .entry(site_id.to_string())
                .or_default()
                .entry(today)
                .or_default()
                .add(&flows);
        }
    }

    /// Keeps `site_lots` in step with the lot's site books after a change.
    fn update_site_lots(
        &mut self,
        lot_id: &str,
        changes: &[(String, Bucket, i64)],
        after: &Balances,
    ) {
        let sites: BTreeSet<&str> = changes.iter().map(|(site, _, _)| site.as_str()).collect();
        for site_id in sites {
            let on_book = after.iter().any(|((site, bucket), units)| {
                site == site_id && bucket.is_site_book() && *units > 0
            });
            let lots = self.site_lots.entry(site_id.to_string()).or_default();
            if on_book {
                lots.insert(lot_id.to_string());
            } else {
                lots.remove(lot_id);
            }
        }
    }
}

/// A history entry with no book change.
fn plain_event(ctx: &EntryCtx<'_>, quantity: Option<u64>, book_at_count: Option<u64>) -> LotEvent {
    LotEvent {
        index: ctx.index,
        event_id: ctx.event.event_id.clone(),
        kind: ctx.event.body.kind(),
        recorded_at: ctx.recorded_at,
        occurred_at: ctx.event.occurred_at,
        quantity,
        sites: sites_of(&ctx.event.body),
        verdict: Verdict::Accepted,
        book_at_count,
        changes: Vec::new(),
    }
}

fn count_u32(count: usize) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}
