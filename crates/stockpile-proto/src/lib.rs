//! The wire contract of the stockpile ledger.
//!
//! Only this crate knows protobuf. It holds the types generated from `proto/stockpile/v1`
//! (module [`wire`]) and the conversions between them and the pure domain types of
//! `stockpile-core`. Decoding never re-encodes: the byte slices that were signed or hashed
//! are handed on as they arrived.

/// Types generated from `proto/stockpile/v1`.
#[allow(clippy::all, missing_docs)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/stockpile.v1.rs"));
}

pub mod envelope;
pub mod export_codec;

pub mod event_codec;
pub use event_codec::{EventDecodeError, decode_event, encode_event};
