//! The pure core of the stockpile ledger.
//!
//! Everything here takes bytes, time and keys as arguments and returns values or typed
//! verdicts: no I/O, no clock, no randomness, no protobuf. The adapters (NATS, sled, files)
//! and the wire codec live in other crates.
//!
//! # Layout
//! - [`limits`]: every bound of the system, with the reason for it.
//! - [`hash`]: SHA-256 digests and the domain tags that keep event signatures, chain links
//!   and Merkle nodes apart.
//! - [`time`]: calendar dates and UTC millisecond timestamps.
//! - [`keys`]: Ed25519 signing and strict verification, C2SP key ids and key strings.
//! - [`merkle`]: RFC 6962 tree hashing, streaming roots, inclusion and consistency proofs.
//! - [`note`]: C2SP signed notes.
//! - [`checkpoint`]: C2SP tlog-checkpoint bodies and tlog-cosignature lines.
//! - [`tlog_proof`]: C2SP tlog-proof files (offline inclusion proofs).
//! - [`events`]: the domain event catalogue as plain Rust types.
//! - [`state`]: the compliance state machine, a deterministic fold of events that enforces
//!   the hard invariants and records flags.
//! - [`ledger`]: admission of one submission: signature, key authorisation, replay, then
//!   the state machine. Shared by the sequencer and the verifier.

pub mod checkpoint;
pub mod events;
pub mod hash;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod merkle;
pub mod note;
pub mod state;
pub mod time;
pub mod tlog_proof;
