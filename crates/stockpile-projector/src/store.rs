//! The sled adapter of the projector: a local copy of the ledger entries it applied, the
//! view documents derived from them, and the tracking record (the last applied index),
//! all written in one transaction per batch.
//!
//! sled is a cache here: everything in it can be rebuilt from LEDGER. It keeps the
//! entries so that a restart refolds locally, without the network, and so that views
//! "as of" an earlier index can be folded from them.

use std::path::Path;

use anyhow::Context as _;
use bytes::Bytes;
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// Tree of applied entries: big-endian index → entry bytes.
const ENTRIES_TREE: &str = "entries";
/// Tree of view documents: key → JSON.
const DOCS_TREE: &str = "docs";
/// Tree of projector metadata.
const META_TREE: &str = "meta";
/// The tracking record: the index of the last applied entry.
const APPLIED_KEY: &[u8] = b"applied_index";
/// The ledger origin the store belongs to (a store never mixes ledgers).
const ORIGIN_KEY: &[u8] = b"origin";
/// Tree of verified checkpoints: big-endian size → signed note.
const CHECKPOINTS_TREE: &str = "checkpoints";
/// Tree of refused checkpoints: big-endian CHECKPOINTS sequence → reason.
const REFUSED_TREE: &str = "refused_checkpoints";
/// The CHECKPOINTS stream sequence read up to.
const CHECKPOINTS_READ_KEY: &[u8] = b"checkpoints_read";

fn open_db(path: &Path) -> anyhow::Result<sled::Db> {
    // No periodic flush: the projector flushes after each batch, before acknowledging
    // it, and nothing else needs to reach the disk (it is all rebuilt from LEDGER).
    // This also makes the crash tests deterministic: an unflushed batch is lost.
    let config = sled::Config::new().path(path).flush_every_ms(None);
    stockpile_sled::open(&config, &format!("the view store {}", path.display()))
}

/// One batch to commit: consecutive entries and the documents they changed.
#[derive(Debug, Default)]
pub struct Batch {
    /// (index, entry bytes), consecutive, starting right after the applied index.
    pub entries: Vec<(u64, Bytes)>,
    /// Documents to write (key, JSON).
    pub documents: Vec<(String, Vec<u8>)>,
    /// Documents to remove.
    pub removed: Vec<String>,
}

/// The projector's sled database. Cloning shares the database (sled handles are
/// reference-counted).
#[derive(Clone)]
pub struct ViewStore {
    db: sled::Db,
    entries: sled::Tree,
    docs: sled::Tree,
    meta: sled::Tree,
    checkpoints: sled::Tree,
    refused: sled::Tree,
}

impl ViewStore {
    /// Opens (or creates) the store for ledger `origin`; refuses a store of another ledger.
    pub fn open(path: &Path, origin: &str) -> anyhow::Result<ViewStore> {
        let db = open_db(path)?;
        let open = |name: &str| {
            db.open_tree(name)
                .with_context(|| format!("opening tree {name} in {}", path.display()))
        };
        let store = ViewStore {
            entries: open(ENTRIES_TREE)?,
            docs: open(DOCS_TREE)?,
            meta: open(META_TREE)?,
            checkpoints: open(CHECKPOINTS_TREE)?,
            refused: open(REFUSED_TREE)?,
            db,
        };
        match store
            .meta
            .get(ORIGIN_KEY)
            .context("reading the store's origin")?
        {
            Some(stored) if stored.as_ref() != origin.as_bytes() => anyhow::bail!(
                "view store {} belongs to ledger {:?}, not {origin:?}",
                path.display(),
                String::from_utf8_lossy(&stored)
            ),
            Some(_) => {}
            None => {
                store
                    .meta
                    .insert(ORIGIN_KEY, origin.as_bytes())
                    .context("recording the store's origin")?;
                store.db.flush().context("flushing the view store")?;
            }
        }
        Ok(store)
    }

    /// Index of the last applied entry, `None` before the first.
    pub fn applied(&self) -> anyhow::Result<Option<u64>> {
        read_u64(&self.meta, APPLIED_KEY).context("reading the tracking record")
    }

    /// The number of entries applied (the next index to apply).
    pub fn next_index(&self) -> anyhow::Result<u64> {
        Ok(self.applied()?.map_or(0, |index| index + 1))
    }

    /// Commits a batch atomically — entries, documents and the tracking record together —
    /// and flushes it, so that a batch is either wholly applied or not at all. The caller
    /// acknowledges the batch only after this returns.
    pub fn commit(&self, batch: &Batch) -> anyhow::Result<()> {
        self.write(batch)?;
        self.flush()
    }

    /// Makes every committed write durable.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.db.flush().context("flushing the view store")?;
        Ok(())
    }

    /// [`ViewStore::commit`] without the flush: atomic, visible at once, durable after
    /// the next [`ViewStore::flush`] (or sled's own periodic flush).
    pub fn write(&self, batch: &Batch) -> anyhow::Result<()> {
        let Some(&(first, _)) = batch.entries.first() else {
            anyhow::ensure!(
                batch.documents.is_empty() && batch.removed.is_empty(),
                "documents change only with entries"
            );
            return Ok(());
        };
        let expected = self.next_index()?;
        anyhow::ensure!(
            first == expected,
            "batch starts at entry {first}, the store expects {expected}"
        );
        for (offset, (index, _)) in batch.entries.iter().enumerate() {
            anyhow::ensure!(
                *index == first + offset as u64,
                "batch entries are not consecutive at {index}"
            );
        }
        let last = batch
            .entries
            .last()
            .map(|(index, _)| *index)
            .unwrap_or(first);
        let result: Result<(), TransactionError<anyhow::Error>> =
            (&self.entries, &self.docs, &self.meta).transaction(|(entries, docs, meta)| {
                // Re-checked inside the transaction: a concurrent writer would conflict.
                let current = meta.get(APPLIED_KEY)?;
                let current_next = match current {
                    None => 0,
                    Some(bytes) => {
                        let bytes: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
                            ConflictableTransactionError::Abort(anyhow::anyhow!(
                                "the tracking record is not an 8-byte index"
                            ))
                        })?;
                        u64::from_be_bytes(bytes) + 1
                    }
                };
                if current_next != first {
                    return Err(ConflictableTransactionError::Abort(anyhow::anyhow!(
                        "another writer moved the tracking record to {current_next}"
                    )));
                }
                for (index, bytes) in &batch.entries {
                    entries.insert(&index.to_be_bytes(), bytes.as_ref())?;
                }
                for (key, value) in &batch.documents {
                    docs.insert(key.as_bytes(), value.as_slice())?;
                }
                for key in &batch.removed {
                    docs.remove(key.as_bytes())?;
                }
                meta.insert(APPLIED_KEY, &last.to_be_bytes())?;
                Ok(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(error)) => return Err(error),
            Err(TransactionError::Storage(error)) => {
                return Err(error).context("writing a batch to the view store");
            }
        }
        Ok(())
    }

    /// One applied entry.
    pub fn entry(&self, index: u64) -> anyhow::Result<Option<Bytes>> {
        Ok(self
            .entries
            .get(index.to_be_bytes())
            .with_context(|| format!("reading stored entry {index}"))?
            .map(|value| Bytes::copy_from_slice(&value)))
    }

    /// The CHECKPOINTS stream sequence read up to (0: none read).
    pub fn checkpoints_read(&self) -> anyhow::Result<u64> {
        read_u64(&self.meta, CHECKPOINTS_READ_KEY).map(|read| read.unwrap_or(0))
    }

    /// Records that CHECKPOINTS was read up to `sequence`, with the checkpoint found there
    /// if it verified (size, note) or why it was refused; atomically, then flushed.
    pub fn record_checkpoint(
        &self,
        sequence: u64,
        verified: Option<(u64, &[u8])>,
        refused: Option<&str>,
    ) -> anyhow::Result<()> {
        let result: Result<(), TransactionError<()>> =
            (&self.checkpoints, &self.refused, &self.meta).transaction(
                |(checkpoints, refused_tree, meta)| {
                    if let Some((size, note)) = verified {
                        checkpoints.insert(&size.to_be_bytes(), note)?;
                    }
                    if let Some(reason) = refused {
                        refused_tree.insert(&sequence.to_be_bytes(), reason.as_bytes())?;
                    }
                    meta.insert(CHECKPOINTS_READ_KEY, &sequence.to_be_bytes())?;
                    Ok(())
                },
            );
        result.map_err(|error| anyhow::anyhow!("recording checkpoint {sequence}: {error:?}"))?;
        self.flush()
    }

    /// The verified checkpoints: (size, signed note), by size.
    pub fn checkpoints(&self) -> impl Iterator<Item = anyhow::Result<(u64, Vec<u8>)>> + '_ {
        self.checkpoints.iter().map(|item| {
            let (key, value) = item.context("reading stored checkpoints")?;
            Ok((key_index(&key)?, value.to_vec()))
        })
    }

    /// The refused checkpoints: (CHECKPOINTS sequence, reason).
    pub fn refused_checkpoints(&self) -> anyhow::Result<Vec<(u64, String)>> {
        self.refused
            .iter()
            .map(|item| {
                let (key, value) = item.context("reading refused checkpoints")?;
                Ok((
                    key_index(&key)?,
                    String::from_utf8_lossy(&value).into_owned(),
                ))
            })
            .collect()
    }

    /// One view document.
    pub fn document(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self
            .docs
            .get(key.as_bytes())
            .with_context(|| format!("reading document {key}"))?
            .map(|value| value.to_vec()))
    }

    /// Documents whose keys start with `prefix`, in key order.
    pub fn documents(&self, prefix: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        self.docs
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (key, value) = item.context("scanning documents")?;
                Ok((String::from_utf8_lossy(&key).into_owned(), value.to_vec()))
            })
            .collect()
    }

    /// The applied entries from `from` on, in order (for refolding at start-up).
    pub fn entries_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = anyhow::Result<(u64, Bytes)>> + '_ {
        self.entries.range(from.to_be_bytes()..).map(|item| {
            let (key, value) = item.context("reading stored entries")?;
            Ok((key_index(&key)?, Bytes::copy_from_slice(&value)))
        })
    }
}

/// A big-endian 8-byte key.
fn key_index(key: &[u8]) -> anyhow::Result<u64> {
    let key: [u8; 8] = key
        .try_into()
        .map_err(|_| anyhow::anyhow!("a stored key is not an 8-byte number"))?;
    Ok(u64::from_be_bytes(key))
}

fn read_u64(tree: &sled::Tree, key: &[u8]) -> anyhow::Result<Option<u64>> {
    tree.get(key)
        .context("reading the view store's metadata")?
        .map(|bytes| key_index(&bytes))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from: u64, count: u64) -> Batch {
        Batch {
            entries: (from..from + count)
                .map(|i| (i, Bytes::from(format!("entry {i}"))))
                .collect(),
            documents: vec![(format!("lot/L{from}"), b"{}".to_vec())],
            removed: Vec::new(),
        }
    }

    #[test]
    fn batches_apply_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = ViewStore::open(dir.path(), "o").unwrap();
            assert_eq!(store.applied().unwrap(), None);
            store.commit(&batch(0, 3)).unwrap();
            store.commit(&batch(3, 2)).unwrap();
            assert_eq!(store.applied().unwrap(), Some(4));
        }
        let store = ViewStore::open(dir.path(), "o").unwrap();
        assert_eq!(store.next_index().unwrap(), 5);
        let indices: Vec<u64> = store.entries_from(2).map(|e| e.unwrap().0).collect();
        assert_eq!(indices, vec![2, 3, 4]);
        assert_eq!(store.documents("lot/").unwrap().len(), 2);
    }

    #[test]
    fn a_gap_an_overlap_or_another_ledger_is_refused_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::open(dir.path(), "o").unwrap();
        store.commit(&batch(0, 2)).unwrap();
        for wrong in [batch(3, 1), batch(1, 2)] {
            let error = store.commit(&wrong).unwrap_err().to_string();
            assert!(error.contains("expects 2"), "{error}");
        }
        assert_eq!(store.applied().unwrap(), Some(1));
        assert!(
            store.document("lot/L3").unwrap().is_none(),
            "nothing partial"
        );
        drop(store);
        assert!(ViewStore::open(dir.path(), "other").is_err());
    }
}
