//! Shared test support: fixed keys, event builders, and a forging sequencer that can
//! append anything (what a compromised or buggy sequencer holding the log key could do),
//! so that tests can check the verifier catches it.

pub mod events;
pub mod live;
pub mod nats;
pub mod sim;
pub mod system;

use bytes::Bytes;
use stockpile_core::checkpoint::{Checkpoint, sign_checkpoint};
use stockpile_core::events::Event;
use stockpile_core::hash::{Hash32, entry_link_hash};
use stockpile_core::keys::SignerKey;
use stockpile_core::merkle::{MerkleTree, leaf_hash};
use stockpile_core::time::TimestampMs;
use stockpile_ledger::export::ExportWriter;
use stockpile_ledger::trust::TrustRoot;
use stockpile_proto::envelope::{DecodedEntry, EntryVerdict, encode_entry, sign_event};

/// The origin of every test ledger.
pub const ORIGIN: &str = "ledger.test.example/apm";

/// Deterministic keys, one per role, plus some that the ledger never authorises.
pub struct Keys {
    pub log: SignerKey,
    pub other_log: SignerKey,
    pub registrar: SignerKey,
    pub depot: SignerKey,
    pub depot_old: SignerKey,
    pub demil: SignerKey,
    pub certifier: SignerKey,
    pub export_control: SignerKey,
    pub inspector: SignerKey,
    pub stranger: SignerKey,
}

fn key(name: &str, seed_byte: u8) -> SignerKey {
    SignerKey::from_seed(name, [seed_byte; 32]).expect("test key names are valid")
}

impl Keys {
    pub fn new() -> Keys {
        Keys {
            log: key(ORIGIN, 1),
            other_log: key(ORIGIN, 2),
            registrar: key("registrar.test.example", 3),
            depot: key("depot.test.example", 4),
            depot_old: key("depot-2019.test.example", 5),
            demil: key("demil.test.example", 6),
            certifier: key("certifier.test.example", 7),
            export_control: key("export-control.test.example", 8),
            inspector: key("inspector.test.example", 9),
            stranger: key("stranger.test.example", 10),
        }
    }

    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot {
            origin: ORIGIN.to_string(),
            log_keys: vec![self.log.verifier_key()],
            authority_keys: vec![self.registrar.verifier_key()],
        }
    }
}

/// One record of an export under construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Entry(Vec<u8>),
    Checkpoint(String),
}

/// A sequencer that appends whatever it is told, chains it correctly and signs
/// checkpoints with the log key.
pub struct Forger {
    pub records: Vec<Record>,
    tree: MerkleTree,
    prev_link: Hash32,
    next_sequence: std::collections::HashMap<String, u64>,
    pub clock: TimestampMs,
}

impl Forger {
    pub fn new() -> Forger {
        Forger {
            records: Vec::new(),
            tree: MerkleTree::new(),
            prev_link: Hash32::ZERO,
            next_sequence: std::collections::HashMap::new(),
            // 2013-01-01: after the test regime's EIF.
            clock: TimestampMs(1_356_998_400_000),
        }
    }

    /// The next emitter sequence for `key`.
    pub fn sequence_for(&mut self, key: &SignerKey) -> u64 {
        let next = self
            .next_sequence
            .entry(key.name().to_string())
            .or_insert(1);
        let sequence = *next;
        *next += 1;
        sequence
    }

    /// Signs `event` with `key` (filling in origin and emitter sequence if unset) and
    /// appends it as accepted. Returns the submission bytes.
    pub fn accept(&mut self, key: &SignerKey, mut event: Event) -> Vec<u8> {
        if event.emitter_sequence == 0 {
            event.emitter_sequence = self.sequence_for(key);
        }
        let submission = sign_event(&event, key);
        self.append_raw(&submission, EntryVerdict::Accepted);
        submission
    }

    /// Appends raw submission bytes with a chosen verdict, one hour after the last entry.
    pub fn append_raw(&mut self, submission: &[u8], verdict: EntryVerdict) {
        self.clock = TimestampMs(self.clock.0 + 3_600_000);
        let entry = encode_entry(&DecodedEntry {
            index: self.tree.size(),
            prev_entry_hash: self.prev_link,
            submission: Bytes::copy_from_slice(submission),
            recorded_at: self.clock,
            verdict,
        });
        self.prev_link = entry_link_hash(&entry);
        self.tree.push(leaf_hash(&entry));
        self.records.push(Record::Entry(entry));
    }

    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn now(&self) -> TimestampMs {
        self.clock
    }

    /// Signs and appends a checkpoint of everything so far.
    pub fn checkpoint(&mut self, log_key: &SignerKey) -> String {
        let checkpoint = Checkpoint {
            origin: ORIGIN.into(),
            size: self.tree.size(),
            root: self.tree.root(),
            extensions: Vec::new(),
        };
        let note = sign_checkpoint(&checkpoint, log_key).expect("the test origin is valid");
        self.records.push(Record::Checkpoint(note.clone()));
        note
    }

    /// Signs a checkpoint with an arbitrary root, without appending it.
    pub fn checkpoint_with_root(&self, log_key: &SignerKey, size: u64, root: Hash32) -> String {
        sign_checkpoint(
            &Checkpoint {
                origin: ORIGIN.into(),
                size,
                root,
                extensions: Vec::new(),
            },
            log_key,
        )
        .expect("the test origin is valid")
    }
}

/// Writes records as an export file.
pub fn export_bytes(records: &[Record]) -> Vec<u8> {
    let mut writer = ExportWriter::new(Vec::new(), ORIGIN).expect("writing to memory");
    for record in records {
        match record {
            Record::Entry(bytes) => writer.write_entry(bytes),
            Record::Checkpoint(note) => writer.write_checkpoint(note.as_bytes()),
        }
        .expect("writing to memory");
    }
    writer.finish().expect("writing to memory")
}

/// Positions (in `records`) of the entries, in order.
pub fn entry_positions(records: &[Record]) -> Vec<usize> {
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Entry(_)))
        .map(|(i, _)| i)
        .collect()
}
