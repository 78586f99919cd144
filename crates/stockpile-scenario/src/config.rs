//! What to generate: the data set, the seed, how many entries, how often to checkpoint.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The three demo data sets of domain.md §6. Every figure that is not a cited anchor is
/// synthetic and labelled so in the data (`SYN-…` ids, "(synthetic)" in names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// A. U.S.-like: `US_2014` → `US_2020` → `US_2022`, 3,000,000 units, Korea designation,
    /// little destruction until 2023, one refused and one approved (destruction) transfer.
    UsLike,
    /// B. Finland-like: `APMBC`, EIF 2012-07-01, 801,618 + 228,145 units, destruction
    /// finished 2015-08-15, retained pool 16,500 → 15,982.
    FinlandLike,
    /// C. Belarus-like: `APMBC`, EIF 2004-03-01, 3,400,000 PFM-1 destroyed in a
    /// cold-detonation chamber 2014-05-27 … 2017-04-05, all after the 2008 deadline.
    BelarusLike,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::UsLike, Dataset::FinlandLike, Dataset::BelarusLike];

    /// Prefix of every id in the data set; `SYN` marks it synthetic.
    pub fn code(self) -> &'static str {
        match self {
            Dataset::UsLike => "SYN-US",
            Dataset::FinlandLike => "SYN-FI",
            Dataset::BelarusLike => "SYN-BY",
        }
    }

    /// The State the ledger is kept for (also the country code of its domestic sites).
    pub fn state_id(self) -> &'static str {
        match self {
            Dataset::UsLike => "US",
            Dataset::FinlandLike => "FI",
            Dataset::BelarusLike => "BY",
        }
    }

    /// The ledger origin (and the name of its log key).
    pub fn origin(self) -> &'static str {
        match self {
            Dataset::UsLike => "stockpile.syn-us.example/apm-ledger",
            Dataset::FinlandLike => "stockpile.syn-fi.example/apm-ledger",
            Dataset::BelarusLike => "stockpile.syn-by.example/apm-ledger",
        }
    }

    /// Short lowercase name, as parsed by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Dataset::UsLike => "us-like",
            Dataset::FinlandLike => "finland-like",
            Dataset::BelarusLike => "belarus-like",
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A data set name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown data set {0:?}: expected us-like, finland-like or belarus-like (or us, finland, belarus)"
)]
pub struct UnknownDataset(pub String);

impl FromStr for Dataset {
    type Err = UnknownDataset;

    fn from_str(text: &str) -> Result<Dataset, UnknownDataset> {
        match text.to_ascii_lowercase().replace('_', "-").as_str() {
            "us-like" | "us" | "a" => Ok(Dataset::UsLike),
            "finland-like" | "finland" | "fi" | "b" => Ok(Dataset::FinlandLike),
            "belarus-like" | "belarus" | "by" | "c" => Ok(Dataset::BelarusLike),
            _ => Err(UnknownDataset(text.to_string())),
        }
    }
}

/// What to generate. The same config always yields byte-identical output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioConfig {
    /// Seeds every random choice: keys, lot sizes, dates within a day or year, padding.
    pub seed: u64,
    pub dataset: Dataset,
    /// Pad with routine operations (domestic shipments and their receipts, matching
    /// inventory counts, retained consumption, small destructions) until the ledger has
    /// at least this many entries. 0: the scripted story only.
    pub min_entries: u64,
    /// Entries between signed checkpoints; a final checkpoint always closes the ledger.
    /// 0: only the final checkpoint.
    pub checkpoint_every: u64,
}

impl ScenarioConfig {
    /// The seed of the demo ledgers (the U.S. policy date of 27 June 2014).
    pub const DEMO_SEED: u64 = 20_140_627;

    /// Checkpoint interval of the demo ledgers (a few hundred to a couple of thousand
    /// entries, so several checkpoints each).
    pub const DEMO_CHECKPOINT_EVERY: u64 = 256;

    /// Checkpoint interval of volume ledgers.
    pub const VOLUME_CHECKPOINT_EVERY: u64 = 10_000;

    /// The scripted demo data set, without padding.
    pub fn demo(dataset: Dataset) -> ScenarioConfig {
        ScenarioConfig {
            seed: Self::DEMO_SEED,
            dataset,
            min_entries: 0,
            checkpoint_every: Self::DEMO_CHECKPOINT_EVERY,
        }
    }

    /// A U.S.-like ledger padded with routine operations to at least `entries` entries.
    pub fn volume(seed: u64, entries: u64) -> ScenarioConfig {
        ScenarioConfig {
            seed,
            dataset: Dataset::UsLike,
            min_entries: entries,
            checkpoint_every: Self::VOLUME_CHECKPOINT_EVERY,
        }
    }
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig::demo(Dataset::UsLike)
    }
}
