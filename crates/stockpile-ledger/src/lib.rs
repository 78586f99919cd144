//! Ledger logic over the wire format: everything an inspector or the sequencer does with
//! entries, without any network or database.
//!
//! # Layout
//! - [`trust`]: the trust-root file an inspector holds (origin, log keys, authority keys).
//! - [`export`]: reading and writing export bundles, record by record.
//! - [`appender`]: the sequencer's pure core: admit a submission, chain it, grow the
//!   Merkle tree, sign checkpoints that are always consistent.
//! - [`verifier`]: the streaming verifier: entries in one at a time, findings out.
//! - [`prove`]: inclusion and consistency proofs from an export, and their checks.
//!
//! This crate depends only on `stockpile-core` and `stockpile-proto`: the verifier reads
//! the public export format and nothing else.

pub mod appender;
pub mod export;
pub mod prove;
pub mod trust;
pub mod verifier;
