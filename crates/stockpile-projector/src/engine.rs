//! The projector's core: a view fold in memory, the Merkle tree and verified checkpoints
//! that proofs are made from, and the sled store that mirrors them, advanced one batch at
//! a time. No network here; [`crate::run`] feeds it from LEDGER and CHECKPOINTS.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::json;
use stockpile_core::ledger::AuthorityKey;
use stockpile_core::time::Date;
use stockpile_ledger::prove::{CheckpointAdded, ProofSource, ProveError};
use stockpile_ledger::trust::TrustRoot;
use stockpile_views::article7::{Article7Config, Article7Error, Article7Report, article7_report};
use stockpile_views::fold::{FoldError, ViewFold, entry_recorded_at};

use crate::store::{Batch, ViewStore};

/// Key of the summary document.
pub const SUMMARY_DOC: &str = "summary";
/// Prefix of the per-lot documents (`lot/<lot id>`).
pub const LOT_DOC_PREFIX: &str = "lot/";
/// Prefix of the parts of each lot's history: a batch writes the events it added to a
/// lot as one JSON array under `lot-history/<lot id>/<position of the first, 12 digits>`;
/// the parts in key order are the history. A history only grows, and rewriting whole
/// histories with every batch made a rebuild quadratic (80 % of a 100,000-entry
/// rebuild, at 530 entries/s).
pub const LOT_HISTORY_DOC_PREFIX: &str = "lot-history/";
/// Entries refolded at a time when a store is opened or an earlier position is folded
/// (each chunk is decoded and signature-checked on all cores, then folded in order).
pub const REFOLD_CHUNK: usize = 4_096;
/// Most years one gap between two consecutive entries gets year-end reports for (a
/// ledger silent for longer gets them for the first years; later ones are folded on
/// request).
pub const YEAR_ENDS_PER_GAP_MAX: i32 = 50;

/// The Article 7 report of a year whose 31 December the fold has passed, computed as the
/// fold went by (with the default configuration: [`Article7Report::with_config`] puts a
/// deployment's in). The entries before the year end never change, so neither does the
/// report; without it, the first request for a year refolded the ledger from entry 0
/// through 31 December (a minute at a million entries).
#[derive(Debug, Clone)]
pub struct YearEnd {
    /// Entries recorded on or before 31 December of the year (the report's position).
    pub entries: u64,
    pub report: Result<Arc<Article7Report>, Article7Error>,
}

/// A fold and the store that mirrors it.
pub struct Projector {
    trust: TrustRoot,
    authority_keys: Vec<AuthorityKey>,
    fold: ViewFold,
    store: ViewStore,
    /// Leaves of every applied entry and the checkpoints verified against them.
    proofs: ProofSource,
    /// Length of each lot's history when its document was last written.
    written_history: BTreeMap<String, usize>,
    /// The Article 7 report of each year the fold has passed the end of.
    year_ends: BTreeMap<i32, YearEnd>,
}

/// What became of a checkpoint offered to the projector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOffer {
    /// Verified against the trusted log keys and the applied entries' root, and stored.
    Verified { size: u64 },
    /// Already held.
    Known { size: u64 },
    /// Covers entries not applied yet: offer it again later.
    Ahead { size: u64 },
    /// Does not verify (wrong key, origin or root: a forged or equivocating checkpoint).
    /// Recorded as refused; never served.
    Refused { reason: String },
}

impl Projector {
    /// Opens the store at `path` and refolds the entries it holds, so the in-memory fold
    /// and tree stand exactly where the tracking record says; re-verifies the stored
    /// checkpoints.
    pub fn open(path: &Path, trust: &TrustRoot) -> anyhow::Result<Projector> {
        let store = ViewStore::open(path, &trust.origin)?;
        let authority_keys = trust.ledger_authority_keys();
        let mut fold = ViewFold::new(trust.origin.as_str(), &authority_keys);
        let mut proofs = ProofSource::new();
        let next = store.next_index()?;
        let mut year_ends = BTreeMap::new();
        let mut chunk = Vec::with_capacity(REFOLD_CHUNK);
        let mut entries = store.entries_from(0);
        loop {
            chunk.clear();
            for item in entries.by_ref().take(REFOLD_CHUNK) {
                let (index, bytes) = item?;
                anyhow::ensure!(
                    index < next,
                    "stored entry {index} is beyond the tracking record"
                );
                chunk.push(bytes);
            }
            if chunk.is_empty() {
                break;
            }
            apply_noting_year_ends(&mut fold, &mut year_ends, &chunk).map_err(|error| {
                anyhow::anyhow!("refolding stored entry {}: {error}", error.index())
            })?;
            for bytes in &chunk {
                proofs.push_entry(bytes);
            }
        }
        // The iterator borrows the store, which moves into the projector below.
        drop(entries);
        anyhow::ensure!(
            fold.entries() == next,
            "the store holds {} entries but its tracking record says {next}",
            fold.entries()
        );
        for item in store.checkpoints() {
            let (size, note) = item?;
            proofs
                .add_checkpoint(&note, &trust.origin, &trust.log_keys)
                .with_context(|| {
                    format!("the stored checkpoint of size {size} no longer verifies")
                })?;
        }
        let mut projector = Projector {
            trust: trust.clone(),
            authority_keys,
            fold,
            store,
            proofs,
            written_history: BTreeMap::new(),
            year_ends,
        };
        for lot in projector.fold.compliance().lots() {
            let length = projector
                .fold
                .lot_history(lot.lot_id())
                .map_or(0, <[_]>::len);
            projector
                .written_history
                .insert(lot.lot_id().to_string(), length);
        }
        Ok(projector)
    }

    /// The next ledger index to apply.
    pub fn next_index(&self) -> u64 {
        self.fold.entries()
    }

    pub fn fold(&self) -> &ViewFold {
        &self.fold
    }

    pub fn store(&self) -> &ViewStore {
        &self.store
    }

    pub fn trust(&self) -> &TrustRoot {
        &self.trust
    }

    /// The Article 7 report of `year` computed when the fold passed its 31 December
    /// (none for a year the fold has not passed, or one before the first entry).
    pub fn year_end(&self, year: i32) -> Option<&YearEnd> {
        self.year_ends.get(&year)
    }

    /// The tree and verified checkpoints proofs are made from.
    pub fn proofs(&self) -> &ProofSource {
        &self.proofs
    }

    /// What folds of earlier positions are computed from, detached from the projector's
    /// lock (the store is shared, not copied).
    pub fn history(&self) -> History {
        History {
            store: self.store.clone(),
            origin: self.trust.origin.clone(),
            authority_keys: self.authority_keys.clone(),
            entries: self.next_index(),
        }
    }

    /// Folds a batch of consecutive entries and commits them with the documents they
    /// changed and the tracking record, atomically, and flushes. Entries below the
    /// tracking record (a redelivery) are skipped. On a fold error nothing is committed
    /// and the projector must be reopened (its fold may be ahead of the store).
    pub fn apply_batch(&mut self, entries: Vec<(u64, Bytes)>) -> anyhow::Result<u64> {
        let applied = self.write_batch(entries)?;
        self.flush()?;
        Ok(applied)
    }

    /// [`Projector::apply_batch`] without the flush: the batch is committed in sled's
    /// memory and reaches the disk with the next flush. The caller flushes before it
    /// acknowledges (split only so that crash tests can stop in between).
    pub fn write_batch(&mut self, entries: Vec<(u64, Bytes)>) -> anyhow::Result<u64> {
        let next = self.next_index();
        let entries: Vec<(u64, Bytes)> = entries
            .into_iter()
            .filter(|(index, _)| *index >= next)
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        for (offset, (index, _)) in entries.iter().enumerate() {
            anyhow::ensure!(
                *index == next + offset as u64,
                "entry {index} does not follow entry {}",
                next + offset as u64 - 1
            );
        }
        let bytes: Vec<&[u8]> = entries.iter().map(|(_, bytes)| bytes.as_ref()).collect();
        let folded = apply_noting_year_ends(&mut self.fold, &mut self.year_ends, &bytes);
        // The tree takes exactly the entries the fold took, also when one is refused.
        let taken = (self.fold.entries() - next) as usize;
        for bytes in &bytes[..taken] {
            self.proofs.push_entry(bytes);
        }
        folded
            .map_err(|error| anyhow::anyhow!("folding ledger entry {}: {error}", error.index()))?;
        let documents = self.changed_documents()?;
        let count = entries.len() as u64;
        self.store.write(&Batch {
            entries,
            documents,
            removed: Vec::new(),
        })?;
        Ok(count)
    }

    /// Makes everything written durable.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.store.flush()
    }

    /// Offers the checkpoint stored at `sequence` of CHECKPOINTS. A verified or refused
    /// one is recorded with the stream position read (so it is not read again); one
    /// ahead of the applied entries is left for later.
    pub fn offer_checkpoint(
        &mut self,
        sequence: u64,
        note: &[u8],
    ) -> anyhow::Result<CheckpointOffer> {
        let offer = match self
            .proofs
            .add_checkpoint(note, &self.trust.origin, &self.trust.log_keys)
        {
            Ok(CheckpointAdded::Added { size }) => CheckpointOffer::Verified { size },
            Ok(CheckpointAdded::AlreadyKnown { size }) => CheckpointOffer::Known { size },
            Err(ProveError::CheckpointAhead { size, .. }) => {
                return Ok(CheckpointOffer::Ahead { size });
            }
            Err(problem) => CheckpointOffer::Refused {
                reason: problem.to_string(),
            },
        };
        match &offer {
            CheckpointOffer::Verified { size } => {
                self.store
                    .record_checkpoint(sequence, Some((*size, note)), None)?
            }
            CheckpointOffer::Refused { reason } => {
                self.store
                    .record_checkpoint(sequence, None, Some(reason.as_str()))?
            }
            _ => self.store.record_checkpoint(sequence, None, None)?,
        }
        Ok(offer)
    }

    /// Documents of lots whose history grew, and the summary.
    fn changed_documents(&mut self) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut documents = Vec::new();
        let as_of_index = self.fold.last_index();
        for lot in self.fold.compliance().lots() {
            let history = self.fold.lot_history(lot.lot_id()).unwrap_or(&[]);
            let written = self.written_history.get(lot.lot_id()).copied().unwrap_or(0);
            if history.len() == written {
                continue;
            }
            let added = history.get(written..).unwrap_or_default();
            documents.push((
                format!("{LOT_HISTORY_DOC_PREFIX}{}/{written:012}", lot.lot_id()),
                serde_json::to_vec(added).context("serializing a lot's events")?,
            ));
            let document = json!({
                "as_of_index": as_of_index,
                "lot_id": lot.lot_id(),
                "type_id": lot.type_id(),
                "held_units": lot.held_units(),
                "history_events": history.len(),
            });
            documents.push((
                format!("{LOT_DOC_PREFIX}{}", lot.lot_id()),
                serde_json::to_vec(&document).context("serializing a lot document")?,
            ));
            self.written_history
                .insert(lot.lot_id().to_string(), history.len());
        }
        // No state digest here: it hashes the Debug rendering of the whole state (every
        // event fingerprint included), so computing it with every batch made a rebuild
        // quadratic (52 % of a 100,000-entry rebuild). `/v1/summary` computes it on
        // demand from the fold.
        let summary = json!({
            "as_of_index": as_of_index,
            "entries": self.fold.entries(),
            "summary": self.fold.compliance().summary(),
        });
        documents.push((
            SUMMARY_DOC.to_string(),
            serde_json::to_vec(&summary).context("serializing the summary")?,
        ));
        Ok(documents)
    }
}

/// The applied entries as of one moment, for folding earlier positions without holding
/// the projector: entries below `entries` never change once applied.
#[derive(Clone)]
pub struct History {
    store: ViewStore,
    origin: String,
    authority_keys: Vec<AuthorityKey>,
    entries: u64,
}

impl History {
    /// Entries applied when this was taken.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    pub fn empty_fold(&self) -> ViewFold {
        ViewFold::new(self.origin.as_str(), &self.authority_keys)
    }

    /// A fresh fold of entries `0..=index`. Costs a fold of `index + 1` entries.
    pub fn fold_at(&self, index: u64) -> anyhow::Result<ViewFold> {
        anyhow::ensure!(
            index < self.entries,
            "entry {index} is not applied: the projector holds {} entries",
            self.entries
        );
        let mut fold = self.empty_fold();
        let mut entries = self.store.entries_from(0);
        let mut chunk = Vec::with_capacity(REFOLD_CHUNK);
        loop {
            chunk.clear();
            for item in entries.by_ref().take(REFOLD_CHUNK) {
                let (stored, bytes) = item?;
                if stored > index {
                    break;
                }
                chunk.push(bytes);
            }
            if chunk.is_empty() {
                break;
            }
            fold.apply_batch(&chunk).map_err(|error| {
                anyhow::anyhow!("refolding stored entry {}: {error}", error.index())
            })?;
            if fold.entries() > index {
                break;
            }
        }
        anyhow::ensure!(
            fold.entries() == index + 1,
            "the store lacks entries below {index}"
        );
        Ok(fold)
    }

    /// How many entries were recorded on or before `last_date` (entries are in time
    /// order, which the fold checked when applying them): a binary search over the store.
    pub fn entries_through(&self, last_date: Date) -> anyhow::Result<u64> {
        let (mut low, mut high) = (0, self.entries);
        while low < high {
            let middle = low + (high - low) / 2;
            let bytes = self
                .store
                .entry(middle)?
                .with_context(|| format!("stored entry {middle} is missing"))?;
            let recorded_at = entry_recorded_at(&bytes, middle)
                .map_err(|error| anyhow::anyhow!("stored entry {middle}: {error:?}"))?;
            if recorded_at.date() <= last_date {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        Ok(low)
    }
}

/// Folds `entries` as [`ViewFold::apply_batch`] does, stopping at each 31 December they
/// cross to compute that year's Article 7 report from the fold standing exactly there
/// (the entries recorded on or before it). Entries are in time order (the fold refuses
/// one recorded before its predecessor), so a year end is found by a binary search over
/// the batch's dates; a batch within one year costs one extra decode. An entry whose date
/// cannot be read is left to the fold, which refuses it.
pub fn apply_noting_year_ends<B: AsRef<[u8]> + Sync>(
    fold: &mut ViewFold,
    year_ends: &mut BTreeMap<i32, YearEnd>,
    entries: &[B],
) -> Result<(), FoldError> {
    fn year_of(bytes: &[u8]) -> Option<i32> {
        entry_recorded_at(bytes, 0).ok().map(|at| at.date().year())
    }
    let Some(first) = entries.first() else {
        return Ok(());
    };
    // The year the fold stands in (before any entry: the first entry's, as no report is
    // kept for the years before it).
    let Some(mut year) = fold
        .today()
        .map(|today| today.year())
        .or_else(|| year_of(first.as_ref()))
    else {
        return fold.apply_batch(entries);
    };
    let mut rest = entries;
    while !rest.is_empty() {
        let later = |offset: usize| year_of(rest[offset].as_ref()).map(|y| y > year);
        // The first entry of a later year.
        let split = match later(rest.len() - 1) {
            Some(false) => return fold.apply_batch(rest),
            None => return fold.apply_batch(rest),
            Some(true) => {
                let (mut low, mut high) = (0, rest.len() - 1);
                while low < high {
                    let middle = low + (high - low) / 2;
                    match later(middle) {
                        Some(true) => high = middle,
                        Some(false) => low = middle + 1,
                        None => return fold.apply_batch(rest),
                    }
                }
                low
            }
        };
        let Some(next_year) = year_of(rest[split].as_ref()) else {
            return fold.apply_batch(rest);
        };
        fold.apply_batch(&rest[..split])?;
        // The fold stands at 31 December of `year`, and of every year up to the next
        // entry's.
        if fold.entries() > 0 {
            for ended in year..next_year.min(year.saturating_add(YEAR_ENDS_PER_GAP_MAX)) {
                let report =
                    article7_report(fold, ended, &Article7Config::default(), None).map(Arc::new);
                year_ends.insert(
                    ended,
                    YearEnd {
                        entries: fold.entries(),
                        report,
                    },
                );
            }
        }
        year = next_year;
        rest = &rest[split..];
    }
    Ok(())
}
