//! `stockpile-bench`: the figures of `make bench`, each measured against the limit of the
//! machine it runs on, side by side in one run so the ratios hold on a noisy machine.
//!
//! | section | module | figure |
//! |---|---|---|
//! | (a) | [`publish`] | raw JetStream async publish of submission-sized messages |
//! | (b) | [`ingest`] | SDK → SUBMISSIONS → sequencer → LEDGER, acknowledged |
//! | (c) | [`offline`] | Ed25519 batch verification on all cores |
//! | (d) | [`offline`] | `stockpile verify` on an export, and its peak memory |
//! | (e) | [`projection`] | a projection rebuild |
//! | (f) | [`offline`] | inclusion-proof generation at 1 and 10 million entries |
//! | (g) | [`projection`] | lot lookup and Article 7 latency under load |
//!
//! Nothing here asserts a timing: figures and targets are printed and written to
//! `target/bench/results.json`; `docs/performance.md` records a run.

pub mod exports;
pub mod ingest;
pub mod machine;
pub mod offline;
pub mod projection;
pub mod publish;
pub mod report;
pub mod server;
pub mod workload;

use std::path::PathBuf;

/// What every section gets: where to put its data, and how big to go.
#[derive(Debug, Clone)]
pub struct BenchContext {
    /// Scratch directory for exports, stores and servers (`target/bench`).
    pub work: PathBuf,
    /// Smaller sizes for a quick look (the figures are then not the documented ones).
    pub quick: bool,
}
