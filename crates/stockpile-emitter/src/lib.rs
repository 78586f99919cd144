//! Emitter SDK and the emitting services (depot, demil, export control).
//!
//! An emitter signs events with the keys of the roles it holds, keeps every signed
//! submission in a durable sled outbox until the sequencer's receipt for it arrives, and
//! publishes the outbox to JetStream in order per key. A service is a small JSON HTTP API
//! in front of one emitter.
//!
//! # Layout
//!
//! - [`sdk`]: [`Emitter`], [`EmitterConfig`], [`EventDraft`], [`Pending`], [`EmitError`] —
//!   the library `stockpile emit` and the services share.
//! - [`outbox`]: the sled outbox: per-key sequence counters, pending submissions, receipts.
//!   Synchronous and NATS-free, so its crash behaviour is tested without a server.
//! - `publisher` (private): the background task that publishes the outbox, in order per
//!   key, with a bounded window of unacknowledged publishes.
//! - `poller` (private): the background task that polls the RECEIPTS bucket (direct gets
//!   of exact keys, no consumer) for the receipts of published submissions and retires
//!   outbox entries.
//! - [`json`]: event bodies from JSON (the HTTP API's and `stockpile emit`'s input).
//! - [`roles`]: which roles each service holds and which kinds those roles emit.
//! - [`service`]: the HTTP API (behind the service's bearer tokens and request limits,
//!   [`stockpile_http::Guard`]) and [`service::run`].
//! - [`cli`]: the command line the three thin binaries in `src/bin/` share.
//! - [`resubmit`]: re-emission of an event the ledger refused as out of order (a later
//!   sequence of its key overtook it after a publish failure), under a fresh sequence.
//! - [`limits`]: every bound, with its reason.
//!
//! # NATS rights
//!
//! An emitter needs no JetStream consumer: it publishes submissions, and learns receipts
//! by direct gets of their exact keys in the RECEIPTS bucket. A service's NATS user
//! therefore needs no `$JS.API.CONSUMER.*` right, which would let it make the server copy
//! stream messages into a ledger subject (a push consumer's deliver subject escapes
//! publish permissions). Publish: `stockpile.submit.<service>`, `stockpile.proof.inclusion`,
//! `$JS.API.INFO`, `$JS.API.STREAM.INFO.KV_RECEIPTS`, `$JS.API.STREAM.MSG.GET.KV_RECEIPTS`,
//! `$JS.API.DIRECT.GET.KV_RECEIPTS` and `$JS.API.DIRECT.GET.KV_RECEIPTS.>`; subscribe:
//! `_INBOX.>`. `$JS.API.DIRECT.GET.SUBMISSIONS` is optional (the publisher's check of an
//! overdue submission falls back on receipts without it).
//!
//! # Guarantees
//!
//! - An event [`Emitter::emit`] returned `Ok` for is on disk (signed submission and the
//!   advanced sequence counter, in one sled transaction, flushed) and survives a crash.
//! - A key's emitter sequence is allocated once and never reused, even after a crash: the
//!   counter is persisted in the same transaction as the submission, and nothing is
//!   published before it is flushed.
//! - Retries publish the same bytes with the same `Nats-Msg-Id` (`<key>/<sequence>`), so
//!   JetStream drops copies inside its duplicate window and the ledger's per-key sequence
//!   check refuses any copy beyond it.
//! - An event refused only because a later sequence of its key reached the ledger first is
//!   signed again under the key's next sequence (at most
//!   [`REEMISSIONS_MAX`](limits::REEMISSIONS_MAX) times); its receipt, asked for under the
//!   first sequence, follows it.

pub mod cli;
pub mod json;
pub mod limits;
pub mod outbox;
mod poller;
mod publisher;
pub mod resubmit;
pub mod roles;
pub mod sdk;
pub mod service;

pub use roles::ServiceKind;
pub use sdk::{
    EmitError, Emitter, EmitterConfig, EventDraft, EventReceipt, HeldKey, Pending, RoleKey,
};
pub use service::{ServiceConfig, run};
