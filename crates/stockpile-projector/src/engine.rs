//! The projector's core: a view fold in memory and its sled store, advanced one batch at
//! a time. No network here; [`crate::run`] feeds it from LEDGER.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::json;
use stockpile_core::ledger::AuthorityKey;
use stockpile_core::time::Date;
use stockpile_views::fold::ViewFold;

use crate::store::{Batch, ViewStore};

/// Key of the summary document.
pub const SUMMARY_DOC: &str = "summary";
/// Prefix of the per-lot documents (`lot/<lot id>`).
pub const LOT_DOC_PREFIX: &str = "lot/";

/// A fold and the store that mirrors it.
pub struct Projector {
    origin: String,
    authority_keys: Vec<AuthorityKey>,
    fold: ViewFold,
    store: ViewStore,
    /// Length of each lot's history when its document was last written.
    written_history: BTreeMap<String, usize>,
}

impl Projector {
    /// Opens the store at `path` and refolds the entries it holds, so the in-memory fold
    /// stands exactly where the tracking record says.
    pub fn open(
        path: &Path,
        origin: &str,
        authority_keys: &[AuthorityKey],
    ) -> anyhow::Result<Projector> {
        let store = ViewStore::open(path, origin)?;
        let mut fold = ViewFold::new(origin, authority_keys);
        let next = store.next_index()?;
        for item in store.entries_from(0) {
            let (index, bytes) = item?;
            anyhow::ensure!(
                index < next,
                "stored entry {index} is beyond the tracking record"
            );
            fold.apply(&bytes)
                .with_context(|| format!("refolding stored entry {index}"))?;
        }
        anyhow::ensure!(
            fold.entries() == next,
            "the store holds {} entries but its tracking record says {next}",
            fold.entries()
        );
        let mut projector = Projector {
            origin: origin.to_string(),
            authority_keys: authority_keys.to_vec(),
            fold,
            store,
            written_history: BTreeMap::new(),
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

    /// A fresh fold of the stored entries recorded on or before `last_date` (the
    /// position an Article 7 report for that year is computed at).
    pub fn fold_through(&self, last_date: Date) -> anyhow::Result<ViewFold> {
        let mut fold = ViewFold::new(self.origin.as_str(), &self.authority_keys);
        for item in self.store.entries_from(0) {
            let (index, bytes) = item?;
            if fold
                .apply_through(&bytes, last_date)
                .with_context(|| format!("refolding stored entry {index}"))?
                .is_none()
            {
                break;
            }
        }
        Ok(fold)
    }

    /// Folds a batch of consecutive entries and commits them with the documents they
    /// changed and the tracking record, atomically. Entries at or below the tracking
    /// record (a redelivery) are skipped. On a fold error nothing is committed and the
    /// projector must be reopened (its fold may be ahead of the store).
    pub fn apply_batch(&mut self, entries: Vec<(u64, Bytes)>) -> anyhow::Result<u64> {
        let next = self.next_index();
        let entries: Vec<(u64, Bytes)> = entries
            .into_iter()
            .filter(|(index, _)| *index >= next)
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        for (index, bytes) in &entries {
            self.fold
                .apply(bytes)
                .with_context(|| format!("folding ledger entry {index}"))?;
        }
        let documents = self.changed_documents()?;
        let count = entries.len() as u64;
        self.store.commit(&Batch {
            entries,
            documents,
            removed: Vec::new(),
        })?;
        Ok(count)
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
            let document = json!({
                "as_of_index": as_of_index,
                "lot_id": lot.lot_id(),
                "type_id": lot.type_id(),
                "held_units": lot.held_units(),
                "history": history,
            });
            documents.push((
                format!("{LOT_DOC_PREFIX}{}", lot.lot_id()),
                serde_json::to_vec(&document).context("serializing a lot document")?,
            ));
            self.written_history
                .insert(lot.lot_id().to_string(), history.len());
        }
        let summary = json!({
            "as_of_index": as_of_index,
            "entries": self.fold.entries(),
            "summary": self.fold.compliance().summary(),
            "state_digest": self.fold.compliance().digest().to_hex(),
        });
        documents.push((
            SUMMARY_DOC.to_string(),
            serde_json::to_vec(&summary).context("serializing the summary")?,
        ));
        Ok(documents)
    }
}
