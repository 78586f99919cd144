//! SHA-256 digests and the domain tags that keep each use of a hash apart.
//!
//! Three things are hashed or signed, each under its own tag, so that bytes valid in one
//! role can never be passed off in another:
//! - an event signature covers [`EVENT_SIGNATURE_TAG`] followed by the event bytes;
//! - a chain link is SHA-256 of [`ENTRY_LINK_TAG`] followed by the entry bytes;
//! - Merkle leaves and nodes use the RFC 6962 prefixes 0x00 and 0x01 (see `merkle`).
//!
//! Checkpoints are C2SP signed notes, whose signed text starts with the ledger origin.

use sha2::{Digest, Sha256};
use std::fmt;

/// Prefix of every event signature message.
pub const EVENT_SIGNATURE_TAG: &[u8] = b"stockpile-ledger/v1/event-signature\n";

/// Prefix of every chain-link hash.
pub const ENTRY_LINK_TAG: &[u8] = b"stockpile-ledger/v1/entry-link\n";

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash: the `prev_entry_hash` of entry 0.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// SHA-256 of `data`.
    pub fn digest(data: &[u8]) -> Hash32 {
        Hash32(Sha256::digest(data).into())
    }

    /// SHA-256 of the concatenation of `parts`.
    pub fn digest_parts(parts: &[&[u8]]) -> Hash32 {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash32(hasher.finalize().into())
    }

    /// Reads exactly 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash32> {
        <[u8; 32]>::try_from(bytes).ok().map(Hash32)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Hash32> {
        let bytes = hex::decode(text).ok()?;
        Hash32::from_slice(&bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard base64 (RFC 4648 §4), as used in checkpoints and proofs.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl serde::Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Hash32::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// The chain-link hash of a serialized ledger entry, exactly as stored.
pub fn entry_link_hash(entry_bytes: &[u8]) -> Hash32 {
    Hash32::digest_parts(&[ENTRY_LINK_TAG, entry_bytes])
}

/// The message an emitter signs for `event_bytes`.
pub fn event_signature_message(event_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(EVENT_SIGNATURE_TAG.len() + event_bytes.len());
    message.extend_from_slice(EVENT_SIGNATURE_TAG);
    message.extend_from_slice(event_bytes);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_and_link_hash_is_tagged() {
        assert_ne!(EVENT_SIGNATURE_TAG, ENTRY_LINK_TAG);
        let bytes = b"entry";
        assert_ne!(entry_link_hash(bytes), Hash32::digest(bytes));
        assert_eq!(
            Hash32::digest(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
