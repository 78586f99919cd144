//! The NATS JetStream adapter: everything that knows streams, subjects and headers.
//!
//! The pure core never sees NATS; services and the CLI reach JetStream only through this
//! crate, so the topology (streams, subjects, buckets, consumers) is declared once, in
//! [`topology`], and documented in ARCHITECTURE.md.

pub mod checkpoints;
pub mod connect;
pub mod ledger;
pub mod proofs;
pub mod receipts;
pub mod service;
pub mod topology;

pub use connect::{NatsConfig, connect};
