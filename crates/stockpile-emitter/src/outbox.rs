//! The durable outbox: per-key sequence counters, signed submissions waiting for their
//! receipt, and the receipts that retired them, in one sled database.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `sequences` | key name | last allocated emitter sequence, `u64` big-endian |
//! | `entries` | [`entry_key`] | [`OutboxEntry`] (format byte, event id, submission bytes) |
//! | `published` | [`entry_key`] | SUBMISSIONS stream sequence of the last acknowledged publish (the receipt poller asks about these entries) |
//! | `receipts` | [`entry_key`] | the receipt, JSON |
//! | `progress` | `receipted_stream_sequence` | highest SUBMISSIONS sequence of a receipted entry, `u64` big-endian |
//! | `redirects` | [`entry_key`] of a refused submission | the sequence its event was re-emitted under, `u64` big-endian |
//! | `reemissions` | [`entry_key`] of a re-emitted entry | how many times its event has been re-emitted, `u32` big-endian |
//!
//! A submission and the counter it advanced are written in one transaction, and a receipt
//! and the removal of its entry in another, so a crash never leaves a sequence allocated
//! without its submission, nor an entry retired without its receipt. A re-emission
//! ([`Outbox::resubmit`]) is one transaction too: the refusal's receipt, the removal of
//! the refused entry, the new entry, the advanced counter and the redirect. `published` is a
//! hint (written without flushing): losing it only makes the publisher resend, with the
//! same message id (the receipt poller asks about the entry again once that is
//! acknowledged).
//!
//! This module does no NATS and no async I/O except [`Outbox::flush`]; methods take a
//! blocking `std` mutex only around sled writes, never across an `.await`.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use stockpile_nats::receipts::Receipt;

use crate::limits::{KEY_NAME_BYTES_MAX, OUTBOX_BYTES_MAX, OUTBOX_ENTRIES_MAX, REEMISSIONS_MAX};

/// Version of the on-disk layout, stored in the default tree; an outbox written by an
/// unknown version is refused rather than misread.
const FORMAT_KEY: &[u8] = b"format";
const FORMAT_VERSION: u8 = 1;
/// First byte of every entry value.
const ENTRY_FORMAT_V1: u8 = 1;
/// Key in the `progress` tree: see [`Outbox::receipted_stream_sequence`].
const RECEIPTED_STREAM_SEQUENCE_KEY: &[u8] = b"receipted_stream_sequence";

/// Bounds of one outbox; the defaults are [`OUTBOX_ENTRIES_MAX`] and [`OUTBOX_BYTES_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Pending entries before appends are refused.
    pub entries_max: u64,
    /// Bytes of pending submissions before appends are refused.
    pub bytes_max: u64,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            entries_max: OUTBOX_ENTRIES_MAX,
            bytes_max: OUTBOX_BYTES_MAX,
        }
    }
}

/// Why the outbox refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "the outbox is full ({entries} pending submissions, {bytes} bytes; limits {entries_max} and {bytes_max}): NATS or the sequencer has not taken events for a while"
    )]
    Full {
        entries: u64,
        bytes: u64,
        entries_max: u64,
        bytes_max: u64,
    },
    #[error("outbox storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("outbox record {what} is corrupt: {problem}")]
    Corrupt { what: String, problem: String },
    #[error("key name {name:?} is {len} bytes; the limit is {KEY_NAME_BYTES_MAX}")]
    KeyNameTooLong { name: String, len: usize },
}

/// One signed submission waiting for its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub key_id: String,
    pub emitter_sequence: u64,
    pub event_id: String,
    /// The submission bytes exactly as signed; published verbatim, every time.
    pub submission: Bytes,
}

impl OutboxEntry {
    /// The `Nats-Msg-Id` of every publish of this entry.
    pub fn message_id(&self) -> String {
        message_id(&self.key_id, self.emitter_sequence)
    }
}

/// The `Nats-Msg-Id` of a submission: `<key name>/<emitter sequence>`, unique per signed
/// event for as long as the key's sequence rises.
pub fn message_id(key_id: &str, emitter_sequence: u64) -> String {
    format!("{key_id}/{emitter_sequence}")
}

/// What a caller hands to [`Outbox::append`] once it knows the allocated sequence.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub event_id: String,
    pub submission: Vec<u8>,
}

/// The sled outbox. Cheap to share behind an `Arc`; sled is thread-safe.
pub struct Outbox {
    db: sled::Db,
    sequences: sled::Tree,
    entries: sled::Tree,
    published: sled::Tree,
    receipts: sled::Tree,
    progress: sled::Tree,
    redirects: sled::Tree,
    reemissions: sled::Tree,
    limits: OutboxLimits,
    /// Serializes sequence allocation: read counter, prepare, write entry and counter. A std
    /// mutex because it is held only for in-memory sled work (no fsync, no `.await`), and a
    /// tokio one would add nothing but cost.
    append_lock: Mutex<()>,
    /// Pending entries and their submission bytes, counted at open and kept exact by
    /// append and receipt transactions: sled's `len` walks the whole tree.
    pending_entries: AtomicU64,
    pending_bytes: AtomicU64,
    /// Group commit (see [`Outbox::flush`]): flush calls started so far, and how many of
    /// them the last completed flush covered.
    flush_calls: AtomicU64,
    flushed_calls: AtomicU64,
    /// Held by the one caller whose flush is running; the others queue on it and find
    /// their writes already flushed.
    flush_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("pending_entries", &self.pending_count())
            .field("pending_bytes", &self.pending_bytes())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`. Blocking: sled reads its log.
    pub fn open(dir: &Path, limits: OutboxLimits) -> anyhow::Result<Outbox> {
        let db = stockpile_sled::open(
            &sled::Config::new().path(dir),
            &format!("the outbox {}", dir.display()),
        )?;
        match db.get(FORMAT_KEY)? {
            None => {
                db.insert(FORMAT_KEY, &[FORMAT_VERSION])?;
            }
            Some(version) if version.as_ref() == [FORMAT_VERSION] => {}
            Some(version) => anyhow::bail!(
                "the outbox {} has format {:?}; this emitter reads format {FORMAT_VERSION}",
                dir.display(),
                version.as_ref()
            ),
        }
        let outbox = Outbox {
            sequences: db.open_tree("sequences")?,
            entries: db.open_tree("entries")?,
            published: db.open_tree("published")?,
            receipts: db.open_tree("receipts")?,
            progress: db.open_tree("progress")?,
            redirects: db.open_tree("redirects")?,
            reemissions: db.open_tree("reemissions")?,
            db,
            limits,
            append_lock: Mutex::new(()),
            pending_entries: AtomicU64::new(0),
            pending_bytes: AtomicU64::new(0),
            flush_calls: AtomicU64::new(0),
            flushed_calls: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
        };
        let (mut entries, mut bytes) = (0u64, 0u64);
        for item in outbox.entries.iter() {
            let (key, value) = item?;
            let entry = decode_entry(&key, &value)?;
            entries += 1;
            bytes += entry.submission.len() as u64;
        }
        outbox.pending_entries.store(entries, Ordering::SeqCst);
        outbox.pending_bytes.store(bytes, Ordering::SeqCst);
        Ok(outbox)
    }

    pub fn limits(&self) -> OutboxLimits {
        self.limits
    }

    /// Allocates the next emitter sequence of `key_id`, lets `prepare` build the signed
    /// submission for it, and writes the entry and the advanced counter in one transaction.
    ///
    /// Not yet durable: call [`Outbox::flush`] before telling anyone, and before
    /// publishing. If `prepare` fails nothing is written and the sequence stays free, since
    /// nothing signed with it left the process.
    pub fn append<E>(
        &self,
        key_id: &str,
        prepare: impl FnOnce(u64) -> Result<Prepared, E>,
    ) -> Result<OutboxEntry, E>
    where
        E: From<OutboxError>,
    {
        check_key_name(key_id)?;
        let _guard = self
            .append_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = self.last_sequence(key_id)?;
        let sequence = last.checked_add(1).ok_or_else(|| OutboxError::Corrupt {
            what: format!("sequence counter of {key_id:?}"),
            problem: "it is at u64::MAX".into(),
        })?;
        // Entries first, before the work of signing; bytes once the size is known.
        if self.pending_count() >= self.limits.entries_max {
            return Err(self.full().into());
        }
        let prepared = prepare(sequence)?;
        let size_bytes = prepared.submission.len() as u64;
        if self.pending_bytes().saturating_add(size_bytes) > self.limits.bytes_max {
            return Err(self.full().into());
        }

        let key = entry_key(key_id, sequence);
        let value = encode_entry(&prepared.event_id, &prepared.submission);
        (&self.entries, &self.sequences)
            .transaction(|(entries, sequences)| {
                entries.insert(key.as_slice(), value.as_slice())?;
                sequences.insert(key_id.as_bytes(), &sequence.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(storage_error)?;
        self.pending_entries.fetch_add(1, Ordering::SeqCst);
        self.pending_bytes
            .fetch_add(prepared.submission.len() as u64, Ordering::SeqCst);
        Ok(OutboxEntry {
            key_id: key_id.to_owned(),
            emitter_sequence: sequence,
            event_id: prepared.event_id,
            submission: Bytes::from(prepared.submission),
        })
    }

    fn full(&self) -> OutboxError {
        OutboxError::Full {
            entries: self.pending_count(),
            bytes: self.pending_bytes(),
            entries_max: self.limits.entries_max,
            bytes_max: self.limits.bytes_max,
        }
    }

    /// Makes every earlier write durable (sled flushes its whole log, all trees).
    ///
    /// Group commit: one flush runs at a time, off the async threads, and covers every
    /// caller that arrived before it began, so concurrent emits share fsyncs instead of
    /// queueing one each. Not `sled::Tree::flush_async`: concurrent calls of it deadlock in
    /// sled 0.34 (spacejam/sled#1308, #1241; seen here as a hung emitter under load).
    pub async fn flush(&self) -> Result<(), OutboxError> {
        // This caller's writes happened before its ticket was taken.
        let ticket = self.flush_calls.fetch_add(1, Ordering::SeqCst);
        let _turn = self.flush_lock.lock().await;
        if self.flushed_calls.load(Ordering::SeqCst) > ticket {
            return Ok(());
        }
        // Every ticket below `covered` was taken after its writes, hence before this flush.
        let covered = self.flush_calls.load(Ordering::SeqCst);
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|error| {
                OutboxError::Storage(sled::Error::Io(std::io::Error::other(format!(
                    "the flush task failed: {error}"
                ))))
            })??;
        self.flushed_calls.store(covered, Ordering::SeqCst);
        Ok(())
    }

    /// The last sequence allocated to `key_id`, 0 if none.
    pub fn last_sequence(&self, key_id: &str) -> Result<u64, OutboxError> {
        match self.sequences.get(key_id.as_bytes())? {
            None => Ok(0),
            Some(value) => decode_u64(&value).ok_or_else(|| OutboxError::Corrupt {
                what: format!("sequence counter of {key_id:?}"),
                problem: format!("{} bytes, expected 8", value.len()),
            }),
        }
    }

    /// Pending entries, across all keys.
    pub fn pending_count(&self) -> u64 {
        self.pending_entries.load(Ordering::SeqCst)
    }

    /// Bytes of pending submissions, across all keys.
    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes.load(Ordering::SeqCst)
    }

    pub fn contains(&self, key_id: &str, sequence: u64) -> Result<bool, OutboxError> {
        Ok(self.entries.contains_key(entry_key(key_id, sequence))?)
    }

    /// The pending entry, if it has no receipt yet.
    pub fn entry(&self, key_id: &str, sequence: u64) -> Result<Option<OutboxEntry>, OutboxError> {
        let key = entry_key(key_id, sequence);
        match self.entries.get(&key)? {
            None => Ok(None),
            Some(value) => decode_entry(&key, &value).map(Some),
        }
    }

    /// The first pending entry of `key_id` with a sequence in `from..=to`.
    pub fn next_entry(
        &self,
        key_id: &str,
        from: u64,
        to: u64,
    ) -> Result<Option<OutboxEntry>, OutboxError> {
        if from > to {
            return Ok(None);
        }
        let range = entry_key(key_id, from)..=entry_key(key_id, to);
        match self.entries.range(range).next() {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item?;
                decode_entry(&key, &value).map(Some)
            }
        }
    }

    /// The sequence of the oldest pending entry of `key_id`.
    pub fn first_pending(&self, key_id: &str) -> Result<Option<u64>, OutboxError> {
        Ok(self
            .next_entry(key_id, 1, u64::MAX)?
            .map(|entry| entry.emitter_sequence))
    }

    /// Every pending (key name, sequence), in order. Bounded by the outbox limits.
    pub fn pending(&self) -> Result<Vec<(String, u64)>, OutboxError> {
        let mut out = Vec::with_capacity(self.pending_count() as usize);
        for key in self.entries.iter().keys() {
            let key = key?;
            out.push(decode_entry_key(&key)?);
        }
        Ok(out)
    }

    /// Remembers that a publish of a pending entry was acknowledged with `stream_sequence`.
    /// Nothing is recorded if the entry was retired meanwhile. Not flushed: a lost record
    /// only makes the publisher resend with the same message id.
    pub fn record_published(
        &self,
        key_id: &str,
        sequence: u64,
        stream_sequence: u64,
    ) -> Result<(), OutboxError> {
        let key = entry_key(key_id, sequence);
        (&self.entries, &self.published)
            .transaction(|(entries, published)| {
                if entries.get(key.as_slice())?.is_some() {
                    published.insert(key.as_slice(), &stream_sequence.to_be_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(storage_error)
    }

    /// The SUBMISSIONS stream sequence of the last acknowledged publish of an entry.
    pub fn published(&self, key_id: &str, sequence: u64) -> Result<Option<u64>, OutboxError> {
        Ok(self
            .published
            .get(entry_key(key_id, sequence))?
            .and_then(|value| decode_u64(&value)))
    }

    /// Every pending entry with an acknowledged publish: (key name, sequence, SUBMISSIONS
    /// stream sequence), in key order. Bounded by the outbox limits (a `published` record
    /// leaves with its entry).
    pub fn published_entries(&self) -> Result<Vec<(String, u64, u64)>, OutboxError> {
        let mut out = Vec::new();
        for item in self.published.iter() {
            let (key, value) = item?;
            let (key_id, sequence) = decode_entry_key(&key)?;
            let stream_sequence = decode_u64(&value).ok_or_else(|| OutboxError::Corrupt {
                what: format!("published record of {}", message_id(&key_id, sequence)),
                problem: format!("{} bytes, expected 8", value.len()),
            })?;
            out.push((key_id, sequence, stream_sequence));
        }
        Ok(out)
    }

    /// Stores a receipt and retires its entry, in one transaction. Returns the retired
    /// entry, or `None` if none was pending (already retired, or not emitted here). Not
    /// yet durable: call [`Outbox::flush`].
    pub fn record_receipt(&self, receipt: &Receipt) -> Result<Option<OutboxEntry>, OutboxError> {
        check_key_name(&receipt.key_id)?;
        let key = entry_key(&receipt.key_id, receipt.emitter_sequence);
        let value = serde_json::to_vec(receipt).map_err(|error| OutboxError::Corrupt {
            what: "receipt".into(),
            problem: error.to_string(),
        })?;
        let removed = (
            &self.entries,
            &self.receipts,
            &self.published,
            &self.progress,
        )
            .transaction(|(entries, receipts, published, progress)| {
                let removed = entries.remove(key.as_slice())?;
                receipts.insert(key.as_slice(), value.as_slice())?;
                note_receipted(published, progress, &key)?;
                Ok::<_, ConflictableTransactionError<()>>(removed)
            })
            .map_err(storage_error)?;
        let Some(removed) = removed else {
            return Ok(None);
        };
        let entry = decode_entry(&key, &removed)?;
        self.pending_entries.fetch_sub(1, Ordering::SeqCst);
        self.pending_bytes
            .fetch_sub(entry.submission.len() as u64, Ordering::SeqCst);
        Ok(Some(entry))
    }

    /// The highest SUBMISSIONS stream sequence at which an entry that then got its
    /// receipt was stored (0 if unknown). The sequencer reads SUBMISSIONS in order, so an
    /// entry stored below it and still without a receipt was lost or passed over.
    pub fn receipted_stream_sequence(&self) -> Result<u64, OutboxError> {
        Ok(self
            .progress
            .get(RECEIPTED_STREAM_SEQUENCE_KEY)?
            .and_then(|value| decode_u64(&value))
            .unwrap_or(0))
    }

    /// Forgets [`Outbox::receipted_stream_sequence`]: the stream was recreated, so its
    /// sequences started again.
    pub fn reset_receipted_stream_sequence(&self) -> Result<(), OutboxError> {
        self.progress.remove(RECEIPTED_STREAM_SEQUENCE_KEY)?;
        Ok(())
    }

    /// The stored receipt of (key, sequence), if it arrived.
    pub fn receipt(&self, key_id: &str, sequence: u64) -> Result<Option<Receipt>, OutboxError> {
        match self.receipts.get(entry_key(key_id, sequence))? {
            None => Ok(None),
            Some(value) => {
                serde_json::from_slice(&value)
                    .map(Some)
                    .map_err(|error| OutboxError::Corrupt {
                        what: format!("receipt {}", message_id(key_id, sequence)),
                        problem: error.to_string(),
                    })
            }
        }
    }

    /// The sequence under which the event of the refused submission (key, sequence) was
    /// re-emitted, if it was.
    pub fn redirect(&self, key_id: &str, sequence: u64) -> Result<Option<u64>, OutboxError> {
        match self.redirects.get(entry_key(key_id, sequence))? {
            None => Ok(None),
            Some(value) => decode_u64(&value)
                .map(Some)
                .ok_or_else(|| OutboxError::Corrupt {
                    what: format!("redirect of {}", message_id(key_id, sequence)),
                    problem: format!("{} bytes, expected 8", value.len()),
                }),
        }
    }

    /// How many times the event submitted as (key, sequence) had been re-emitted to get
    /// that sequence: 0 for an event's first submission.
    pub fn reemissions(&self, key_id: &str, sequence: u64) -> Result<u32, OutboxError> {
        match self.reemissions.get(entry_key(key_id, sequence))? {
            None => Ok(0),
            Some(value) => value
                .as_ref()
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| OutboxError::Corrupt {
                    what: format!("re-emission count of {}", message_id(key_id, sequence)),
                    problem: format!("{} bytes, expected 4", value.len()),
                }),
        }
    }

    /// Where the event first submitted as (key, sequence) stands: the redirects of its
    /// re-emissions followed to its current submission, and that submission's receipt if
    /// it came. Without re-emissions, `current` is `sequence` and `receipt` its receipt.
    pub fn trail(&self, key_id: &str, sequence: u64) -> Result<Trail, OutboxError> {
        let mut trail = Trail {
            current: sequence,
            superseded: Vec::new(),
            receipt: None,
        };
        // Each redirect raises the re-emission count, which `resubmit` callers bound, so
        // a longer chain is a corrupt outbox rather than a reason to loop.
        for _ in 0..=REEMISSIONS_MAX {
            // A redirect is written with its refusal's receipt: no receipt, no redirect.
            let Some(receipt) = self.receipt(key_id, trail.current)? else {
                return Ok(trail);
            };
            match self.redirect(key_id, trail.current)? {
                Some(next) if next > trail.current => {
                    trail.superseded.push(receipt);
                    trail.current = next;
                }
                Some(next) => {
                    return Err(OutboxError::Corrupt {
                        what: format!("redirect of {}", message_id(key_id, trail.current)),
                        problem: format!("it points back to sequence {next}"),
                    });
                }
                None => {
                    trail.receipt = Some(receipt);
                    return Ok(trail);
                }
            }
        }
        Err(OutboxError::Corrupt {
            what: format!("redirects from {}", message_id(key_id, sequence)),
            problem: format!("more than {REEMISSIONS_MAX} re-emissions"),
        })
    }

    /// Re-emits the event of a refused pending submission under the key's next sequence.
    ///
    /// `refusal` is the receipt refusing (key, N). `prepare` gets the next sequence N' and
    /// the pending entry of (key, N), and signs the same event under N'. Then one
    /// transaction stores the refusal's receipt, removes the entry of N, adds the entry of
    /// N', advances the key's counter to N' and records the redirect N → N' with the
    /// event's re-emission count. Returns `Ok(None)`, having written nothing, if (key, N)
    /// is not pending (already retired, or not emitted here) or its event was already
    /// re-emitted [`REEMISSIONS_MAX`] times: the caller records the receipt as usual then.
    /// Not yet durable: call [`Outbox::flush`].
    ///
    /// The outbox bounds are not checked: one entry replaces another of the same event,
    /// a few bytes longer at most.
    pub fn resubmit<E>(
        &self,
        refusal: &Receipt,
        prepare: impl FnOnce(u64, &OutboxEntry) -> Result<Prepared, E>,
    ) -> Result<Option<Resubmission>, E>
    where
        E: From<OutboxError>,
    {
        let key_id = refusal.key_id.as_str();
        check_key_name(key_id)?;
        let _guard = self
            .append_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old_key = entry_key(key_id, refusal.emitter_sequence);
        let Some(old_value) = self.entries.get(&old_key).map_err(OutboxError::from)? else {
            return Ok(None);
        };
        let old = decode_entry(&old_key, &old_value)?;
        let reemissions = self.reemissions(key_id, old.emitter_sequence)?;
        if reemissions >= REEMISSIONS_MAX {
            return Ok(None);
        }
        let reemissions = reemissions + 1;
        let last = self.last_sequence(key_id)?;
        let sequence = last.checked_add(1).ok_or_else(|| OutboxError::Corrupt {
            what: format!("sequence counter of {key_id:?}"),
            problem: "it is at u64::MAX".into(),
        })?;
        let prepared = prepare(sequence, &old)?;
        let new_key = entry_key(key_id, sequence);
        let new_value = encode_entry(&prepared.event_id, &prepared.submission);
        let receipt_value = serde_json::to_vec(refusal).map_err(|error| OutboxError::Corrupt {
            what: "receipt".into(),
            problem: error.to_string(),
        })?;
        let outcome = (
            &self.entries,
            &self.sequences,
            &self.receipts,
            &self.published,
            &self.progress,
            &self.redirects,
            &self.reemissions,
        )
            .transaction(
                |(entries, sequences, receipts, published, progress, redirects, counts)| {
                    // Retired meanwhile (a receipt stored without this lock): nothing to do.
                    if entries.remove(old_key.as_slice())?.as_ref() != Some(&old_value) {
                        return Err(ConflictableTransactionError::Abort(()));
                    }
                    receipts.insert(old_key.as_slice(), receipt_value.as_slice())?;
                    note_receipted(published, progress, &old_key)?;
                    entries.insert(new_key.as_slice(), new_value.as_slice())?;
                    sequences.insert(key_id.as_bytes(), &sequence.to_be_bytes())?;
                    redirects.insert(old_key.as_slice(), &sequence.to_be_bytes())?;
                    counts.insert(new_key.as_slice(), &reemissions.to_be_bytes())?;
                    Ok(())
                },
            );
        match outcome {
            Ok(()) => {}
            Err(TransactionError::Abort(())) => return Ok(None),
            Err(TransactionError::Storage(error)) => return Err(OutboxError::from(error).into()),
        }
        self.pending_bytes
            .fetch_add(prepared.submission.len() as u64, Ordering::SeqCst);
        self.pending_bytes
            .fetch_sub(old.submission.len() as u64, Ordering::SeqCst);
        Ok(Some(Resubmission {
            new: OutboxEntry {
                key_id: key_id.to_owned(),
                emitter_sequence: sequence,
                event_id: prepared.event_id,
                submission: Bytes::from(prepared.submission),
            },
            old,
            reemissions,
        }))
    }
}

/// What [`Outbox::resubmit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resubmission {
    /// The refused entry, now retired with its receipt.
    pub old: OutboxEntry,
    /// The same event under the key's next sequence, pending.
    pub new: OutboxEntry,
    /// How many times the event has been re-emitted, this time included.
    pub reemissions: u32,
}

/// Where an event stands after its re-emissions: see [`Outbox::trail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    /// The sequence of the event's current (latest) submission.
    pub current: u64,
    /// Receipts of the submissions refused and re-emitted, oldest first; empty if the
    /// event was never re-emitted.
    pub superseded: Vec<Receipt>,
    /// The receipt of the current submission, if it came.
    pub receipt: Option<Receipt>,
}

/// In a transaction retiring the entry `key`: forgets its `published` hint and raises
/// the receipted stream sequence to where it was stored.
fn note_receipted(
    published: &sled::transaction::TransactionalTree,
    progress: &sled::transaction::TransactionalTree,
    key: &[u8],
) -> Result<(), ConflictableTransactionError<()>> {
    if let Some(stream_sequence) = published.remove(key)?.and_then(|value| decode_u64(&value)) {
        let highest = progress
            .get(RECEIPTED_STREAM_SEQUENCE_KEY)?
            .and_then(|value| decode_u64(&value))
            .unwrap_or(0);
        if stream_sequence > highest {
            progress.insert(
                RECEIPTED_STREAM_SEQUENCE_KEY,
                &stream_sequence.to_be_bytes(),
            )?;
        }
    }
    Ok(())
}

fn check_key_name(key_id: &str) -> Result<(), OutboxError> {
    if key_id.len() > KEY_NAME_BYTES_MAX {
        return Err(OutboxError::KeyNameTooLong {
            name: key_id.chars().take(32).collect(),
            len: key_id.len(),
        });
    }
    Ok(())
}

fn storage_error(error: TransactionError<()>) -> OutboxError {
    match error {
        TransactionError::Storage(error) => OutboxError::Storage(error),
        // The closures above never abort.
        TransactionError::Abort(()) => OutboxError::Corrupt {
            what: "transaction".into(),
            problem: "aborted".into(),
        },
    }
}

/// The sled key of (key name, sequence): the name's length (`u16` big-endian), the name,
/// the sequence (`u64` big-endian). A key's entries are contiguous and sorted by sequence,
/// and no name is a prefix of another's range.
pub fn entry_key(key_id: &str, sequence: u64) -> Vec<u8> {
    let name = key_id.as_bytes();
    let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
    let mut key = Vec::with_capacity(2 + name.len() + 8);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(&name[..usize::from(len)]);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn decode_entry_key(key: &[u8]) -> Result<(String, u64), OutboxError> {
    let corrupt = |problem: &str| OutboxError::Corrupt {
        what: format!("entry key {}", hex::encode(key)),
        problem: problem.to_owned(),
    };
    let (len, rest) = key
        .split_first_chunk::<2>()
        .ok_or_else(|| corrupt("too short"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() != len + 8 {
        return Err(corrupt("length does not match"));
    }
    let (name, sequence) = rest.split_at(len);
    let name = std::str::from_utf8(name).map_err(|_| corrupt("name is not UTF-8"))?;
    let sequence = decode_u64(sequence).ok_or_else(|| corrupt("bad sequence"))?;
    Ok((name.to_owned(), sequence))
}

fn encode_entry(event_id: &str, submission: &[u8]) -> Vec<u8> {
    // Event ids are bounded by the proto layer (checked before append) far below u16.
    let id = event_id.as_bytes();
    let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
    let mut value = Vec::with_capacity(3 + id.len() + submission.len());
    value.push(ENTRY_FORMAT_V1);
    value.extend_from_slice(&len.to_be_bytes());
    value.extend_from_slice(&id[..usize::from(len)]);
    value.extend_from_slice(submission);
    value
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<OutboxEntry, OutboxError> {
    let (key_id, emitter_sequence) = decode_entry_key(key)?;
    let corrupt = |problem: &str| OutboxError::Corrupt {
        what: format!("entry {}", message_id(&key_id, emitter_sequence)),
        problem: problem.to_owned(),
    };
    let (&format, rest) = value.split_first().ok_or_else(|| corrupt("empty"))?;
    if format != ENTRY_FORMAT_V1 {
        return Err(corrupt(&format!("unknown entry format {format}")));
    }
    let (len, rest) = rest
        .split_first_chunk::<2>()
        .ok_or_else(|| corrupt("too short"))?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len {
        return Err(corrupt("event id runs past the end"));
    }
    let (event_id, submission) = rest.split_at(len);
    let event_id = std::str::from_utf8(event_id).map_err(|_| corrupt("event id is not UTF-8"))?;
    Ok(OutboxEntry {
        key_id,
        emitter_sequence,
        event_id: event_id.to_owned(),
        submission: Bytes::copy_from_slice(submission),
    })
}

fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(tag: &str) -> Prepared {
        Prepared {
            event_id: format!("event-{tag}"),
            submission: format!("submission-{tag}").into_bytes(),
        }
    }

    fn append(outbox: &Outbox, key: &str, tag: &str) -> OutboxEntry {
        outbox
            .append::<OutboxError>(key, |_| Ok(prepared(tag)))
            .expect("append")
    }

    /// Several outboxes in one process, each taking many concurrent appends and flushes,
    /// as an emitting service does under load: every flush returns, and every entry is
    /// there after reopening. sled's `flush_async` deadlocked here (spacejam/sled#1308).
    #[test]
    fn concurrent_flushes_of_several_outboxes_all_return() {
        const OUTBOXES: usize = 4;
        const TASKS_PER_OUTBOX: usize = 64;
        const APPENDS_PER_TASK: usize = 20;
        let dirs: Vec<tempfile::TempDir> = (0..OUTBOXES)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let finished = runtime.block_on(async {
            let outboxes: Vec<std::sync::Arc<Outbox>> = dirs
                .iter()
                .map(|dir| {
                    std::sync::Arc::new(
                        Outbox::open(dir.path(), OutboxLimits::default()).expect("open"),
                    )
                })
                .collect();
            let mut tasks = Vec::new();
            for (o, outbox) in outboxes.iter().enumerate() {
                for t in 0..TASKS_PER_OUTBOX {
                    let outbox = outbox.clone();
                    tasks.push(tokio::spawn(async move {
                        for a in 0..APPENDS_PER_TASK {
                            append(&outbox, "key", &format!("{o}-{t}-{a}"));
                            outbox.flush().await.expect("flush");
                        }
                    }));
                }
            }
            // A liveness bound, not a timing claim: a deadlock never finishes.
            tokio::time::timeout(
                std::time::Duration::from_secs(120),
                futures::future::join_all(tasks),
            )
            .await
        });
        let results = finished.expect("every flush returned (no deadlock)");
        assert!(results.iter().all(Result::is_ok), "no task panicked");
        drop(runtime);
        for dir in &dirs {
            let outbox = Outbox::open(dir.path(), OutboxLimits::default()).expect("reopen");
            assert_eq!(
                outbox.pending_count(),
                (TASKS_PER_OUTBOX * APPENDS_PER_TASK) as u64
            );
            assert_eq!(
                outbox.last_sequence("key").expect("sequence"),
                (TASKS_PER_OUTBOX * APPENDS_PER_TASK) as u64
            );
        }
    }

    fn receipt(key: &str, sequence: u64, event_id: &str) -> Receipt {
        Receipt {
            key_id: key.into(),
            emitter_sequence: sequence,
            event_id: event_id.into(),
            index: 7,
            entry_hash: "00".repeat(32),
            leaf_hash: "11".repeat(32),
            accepted: true,
            rejection_code: None,
            rejection_reason: None,
        }
    }

    #[test]
    fn entry_keys_sort_by_name_then_sequence() {
        let (key, sequence) = decode_entry_key(&entry_key("depot.us", 258)).unwrap();
        assert_eq!((key.as_str(), sequence), ("depot.us", 258));
        assert!(entry_key("a", 2) < entry_key("a", 256));
        // A name that extends another never falls inside its range.
        assert!(entry_key("a", u64::MAX) < entry_key("ab", 0));
    }

    #[test]
    fn sequences_rise_per_key_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let outbox = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
            assert_eq!(append(&outbox, "k1", "a").emitter_sequence, 1);
            assert_eq!(append(&outbox, "k1", "b").emitter_sequence, 2);
            assert_eq!(append(&outbox, "k2", "c").emitter_sequence, 1);
            // A failed preparation does not consume the sequence.
            let failed = outbox.append::<OutboxError>("k1", |_| {
                Err(OutboxError::Corrupt {
                    what: "test".into(),
                    problem: "refused".into(),
                })
            });
            assert!(failed.is_err());
            // Retiring entries never lowers the counter.
            let retired = outbox.record_receipt(&receipt("k1", 2, "event-b")).unwrap();
            assert_eq!(retired.unwrap().event_id, "event-b");
            assert_eq!(outbox.pending_count(), 2);
            assert_eq!(outbox.last_sequence("k1").unwrap(), 2);
        }
        let outbox = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        assert_eq!(outbox.pending_count(), 2);
        assert_eq!(outbox.last_sequence("k1").unwrap(), 2);
        assert_eq!(append(&outbox, "k1", "d").emitter_sequence, 3);
        assert_eq!(outbox.first_pending("k1").unwrap(), Some(1));
        assert_eq!(
            outbox
                .next_entry("k1", 2, 3)
                .unwrap()
                .unwrap()
                .emitter_sequence,
            3
        );
        assert_eq!(outbox.receipt("k1", 2).unwrap().unwrap().index, 7);
        assert_eq!(
            outbox.pending().unwrap(),
            vec![("k1".into(), 1), ("k1".into(), 3), ("k2".into(), 1)]
        );
    }

    #[test]
    fn receipts_retire_once_and_clear_the_published_hint() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        let entry = append(&outbox, "k", "a");
        outbox.record_published("k", 1, 42).unwrap();
        assert_eq!(outbox.published("k", 1).unwrap(), Some(42));
        assert_eq!(
            outbox.published_entries().unwrap(),
            vec![("k".to_owned(), 1, 42)]
        );
        let bytes = outbox.pending_bytes();
        assert_eq!(bytes, entry.submission.len() as u64);
        assert_eq!(outbox.receipted_stream_sequence().unwrap(), 0);
        assert!(
            outbox
                .record_receipt(&receipt("k", 1, "event-a"))
                .unwrap()
                .is_some()
        );
        assert!(
            outbox
                .record_receipt(&receipt("k", 1, "event-a"))
                .unwrap()
                .is_none()
        );
        assert_eq!((outbox.pending_count(), outbox.pending_bytes()), (0, 0));
        assert_eq!(outbox.receipted_stream_sequence().unwrap(), 42);
        outbox.reset_receipted_stream_sequence().unwrap();
        assert_eq!(outbox.receipted_stream_sequence().unwrap(), 0);
        assert_eq!(outbox.published("k", 1).unwrap(), None);
        // A hint for an entry already retired is not recorded.
        outbox.record_published("k", 1, 43).unwrap();
        assert_eq!(outbox.published("k", 1).unwrap(), None);
        assert!(outbox.published_entries().unwrap().is_empty());
    }

    #[test]
    fn a_full_outbox_refuses_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let limits = OutboxLimits {
            entries_max: 2,
            bytes_max: 1024,
        };
        let outbox = Outbox::open(dir.path(), limits).unwrap();
        append(&outbox, "k", "a");
        append(&outbox, "k", "b");
        let error = outbox
            .append::<OutboxError>("k", |_| Ok(prepared("c")))
            .unwrap_err();
        assert!(
            matches!(error, OutboxError::Full { entries: 2, .. }),
            "{error}"
        );
        assert_eq!(outbox.last_sequence("k").unwrap(), 2);
        outbox.record_receipt(&receipt("k", 1, "event-a")).unwrap();
        assert_eq!(append(&outbox, "k", "c").emitter_sequence, 3);
        // The byte bound.
        outbox.record_receipt(&receipt("k", 2, "event-b")).unwrap();
        let big = outbox.append::<OutboxError>("k", |_| {
            Ok(Prepared {
                event_id: "big".into(),
                submission: vec![0; 1024],
            })
        });
        assert!(matches!(big, Err(OutboxError::Full { .. })));
        assert_eq!(outbox.last_sequence("k").unwrap(), 3);
    }

    #[test]
    fn corrupt_values_are_reported_not_panicked_on() {
        let key = entry_key("k", 1);
        for value in [&b""[..], &[9, 0, 0][..], &[1, 0][..], &[1, 0, 9, b'x'][..]] {
            assert!(matches!(
                decode_entry(&key, value),
                Err(OutboxError::Corrupt { .. })
            ));
        }
        assert!(decode_entry_key(b"\x00").is_err());
        assert!(decode_entry_key(b"\x00\x05ab").is_err());
    }
}
