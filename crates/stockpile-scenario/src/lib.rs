//! The seeded scenario generator: the demo ledgers of domain.md §6 (U.S.-like,
//! Finland-like, Belarus-like) and padded volume ledgers of millions of entries.
//!
//! A scenario is a deterministic simulation. Scripted story steps and routine operations
//! run in simulated time against the generator's own reference model of units per lot ×
//! site × pool, emit domain events, and every event is signed with
//! `stockpile_proto::envelope::sign_event` (the emitters' path) and sequenced by the real
//! `stockpile_ledger::appender::Appender`. Same seed and config, same bytes.
//!
//! All data is synthetic and labelled so: ids start with `SYN-`, names end in
//! "(synthetic)". Only the anchors of domain.md §6 are real figures (the Finnish and
//! Belarusian totals and dates, the U.S. policy dates and stockpile size).
//!
//! # Layout
//! - [`config`]: [`Dataset`] and [`ScenarioConfig`].
//! - [`keys`]: [`ScenarioKeys`], the deterministic log, registrar and emitter keys.
//! - `sim`: the discrete-event engine (simulated clock, action queue, the operations
//!   stories are made of: ship, receive, destroy, certify, count, consume, lose).
//! - `story`: the three scripted data sets and their incidents.
//! - `padding`: routine operations up to `min_entries`.
//! - [`model`]: the reference model and its [`ReferenceTotals`].
//! - [`outcome`]: [`ScenarioOutcome`], expected flags and rejections, what was observed.
//! - `drive`: [`Submissions`] (signed, in order), [`generate`] (appended entries and
//!   checkpoints) and [`write_export`].
//! - `examples/volume.rs`: a padded ledger into a counting sink, with its rate
//!   (`cargo run --release -p stockpile-scenario --example volume -- 1000000`); with
//!   `SWEEP=<n>`, every data set under seeds 1..=n, checked against its script.
//!
//! # Invariants
//! - No I/O but the caller's sink or writer; no clock; no randomness but ChaCha20
//!   streams seeded from the config.
//! - Memory is bounded by lots, sites and operations in flight, never by entries (the
//!   appender keeps its own per-entry state).
//! - Every event the story or padding emits is valid under domain.md §4 as the reference
//!   model sees it; the only refused submissions are the scripted hostile ones.

pub mod config;
mod drive;
pub mod keys;
pub mod model;
pub mod outcome;
mod padding;
mod sim;
mod story;

#[cfg(test)]
mod tests;

pub use config::{Dataset, ScenarioConfig, UnknownDataset};
pub use drive::{
    Expectations, ScenarioRecord, Submission, Submissions, generate, generate_submissions,
    story_end, submissions, write_export,
};
pub use keys::ScenarioKeys;
pub use model::{ReferenceTotals, TypeTotals, UnitTotals};
pub use outcome::{
    ExpectedFlag, ExpectedRejection, Observed, ScenarioOutcome, UnexpectedRejection,
};
