//! The fixed world every target checks against: a small scenario ledger (entries,
//! checkpoints, its Merkle tree and signing keys), a fold of its first entries, and the
//! trust root of the committed corpus in `tests/vectors/corpus`. Built once per process.

use bytes::Bytes;
use std::sync::OnceLock;
use stockpile_core::checkpoint::Checkpoint;
use stockpile_core::keys::{SignerKey, VerifierKey};
use stockpile_core::merkle::MerkleTree;
use stockpile_ledger::trust::TrustRoot;
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioRecord};
use stockpile_views::fold::ViewFold;

/// Checkpoint interval of the fixture ledger: small, so that small exports and
/// consistency proofs between several signed sizes exist.
pub const CHECKPOINT_EVERY: u64 = 16;

/// Entries the prefix fold holds before a fuzzed entry is chained after it. Bounded so
/// that cloning the fold for every input stays cheap.
pub const PREFIX_ENTRIES_MAX: usize = 160;

/// The trust root of `tests/vectors/corpus` (its exports are part of the seeds).
const CORPUS_TRUST_JSON: &str = include_str!("../../../tests/vectors/corpus/trust.json");

pub struct Fixtures {
    pub config: ScenarioConfig,
    /// The scenario's log key: signs checkpoints.
    pub log_key: SignerKey,
    pub trust: TrustRoot,
    pub corpus_trust: TrustRoot,
    /// Every entry of the fixture ledger, verbatim.
    pub entries: Vec<Bytes>,
    /// Every record in export order.
    pub records: Vec<ScenarioRecord>,
    pub tree: MerkleTree,
    /// The fold after `prefix_entries` entries.
    pub prefix: ViewFold,
    pub prefix_entries: usize,
}

impl Fixtures {
    /// Log keys of both trust roots: a note or checkpoint signed by either is genuine.
    pub fn all_log_keys(&self) -> Vec<VerifierKey> {
        let mut keys = self.trust.log_keys.clone();
        keys.extend(self.corpus_trust.log_keys.iter().cloned());
        keys
    }

    /// The trust root whose origin is `origin`, else the scenario's.
    pub fn trust_for(&self, origin: &str) -> &TrustRoot {
        if origin == self.corpus_trust.origin {
            &self.corpus_trust
        } else {
            &self.trust
        }
    }

    /// True when `checkpoint` names a size and root of one of the ledgers whose log keys
    /// are fixed here: what a genuinely signed checkpoint must do.
    pub fn is_genuine(&self, checkpoint: &Checkpoint) -> bool {
        if checkpoint.origin == self.trust.origin {
            self.tree.root_at(checkpoint.size).ok() == Some(checkpoint.root)
        } else {
            // The corpus ledgers are several; their roots are not kept here.
            checkpoint.origin == self.corpus_trust.origin
        }
    }
}

/// The fixtures, built on first use.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(build)
}

fn build() -> Fixtures {
    let config = ScenarioConfig {
        checkpoint_every: CHECKPOINT_EVERY,
        ..ScenarioConfig::demo(Dataset::FinlandLike)
    };
    let keys = stockpile_scenario::submissions(&config).keys().clone();
    let trust = keys.trust_root();
    let corpus_trust =
        TrustRoot::parse_json(CORPUS_TRUST_JSON).expect("the corpus trust root parses");
    let mut records = Vec::new();
    stockpile_scenario::generate(&config, &mut |record| records.push(record));
    let entries: Vec<Bytes> = records
        .iter()
        .filter_map(|record| match record {
            ScenarioRecord::Entry(bytes) => Some(bytes.clone()),
            ScenarioRecord::Checkpoint(_) => None,
        })
        .collect();
    let mut tree = MerkleTree::new();
    for entry in &entries {
        tree.push_data(entry);
    }
    let prefix_entries = entries.len().min(PREFIX_ENTRIES_MAX);
    let mut prefix = ViewFold::new(trust.origin.clone(), &trust.ledger_authority_keys());
    for entry in &entries[..prefix_entries] {
        prefix.apply(entry).expect("the fixture ledger folds");
    }
    Fixtures {
        config,
        log_key: keys.log.clone(),
        trust,
        corpus_trust,
        entries,
        records,
        tree,
        prefix,
        prefix_entries,
    }
}
