//! Ed25519 keys, strict signature verification and C2SP key identifiers.
//!
//! Every signature in the ledger (events, checkpoints, cosignatures) is Ed25519 and is
//! checked with `verify_strict`: canonical encodings only, no small-order public key or `R`,
//! so that one signature has exactly one meaning for every verifier. Keys travel as the
//! text forms of golang.org/x/mod `sumdb/note` and C2SP `signed-note`:
//!
//! - verifier key: `<name>+<8 hex key id>+<base64(type byte ‖ 32-byte public key)>`;
//! - signer key: `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte seed)>`.
//!
//! The key id is `SHA-256(name ‖ 0x0A ‖ type byte ‖ public key)[:4]` read big-endian.
//! Type 0x01 is an Ed25519 note signature; type 0x04 is a timestamped Ed25519 witness
//! cosignature (tlog-cosignature v1.0.1), which is why the same Ed25519 key has two ids.
//!
//! Nothing here generates keys: the crate takes no randomness, so callers pass the seed.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Signature type byte of an Ed25519 signed-note signature.
pub const KEY_TYPE_ED25519: u8 = 0x01;

/// Signature type byte of a timestamped Ed25519 cosignature (tlog-cosignature v1.0.1).
pub const KEY_TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Length of an Ed25519 public key, and of the seed a signing key is derived from.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// Length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// Base64 for decoding key strings: standard, but like Go's `base64.StdEncoding` it
/// ignores non-zero trailing bits. A well-formed key (33 bytes, 44 characters, no padding)
/// has no trailing bits, so this accepts no extra valid key; it only lets a malformed one
/// be refused for its real fault (length, type), as golang.org/x/mod does.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Prefix of a golang.org/x/mod signer key string.
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Items handed to one `ed25519_dalek::verify_batch` call. A batch either passes as a whole
/// or tells nothing about which item failed, so one bad signature costs a strict check of
/// every item of its chunk (about 12 ms for 256). The cost per signature keeps falling
/// with the batch size: measured on one core with the scenario's signatures
/// (`make bench`, section (c)), batches of 256 verify about 25% more signatures per second
/// than batches of 64, and the verifier hands 256 to each worker. A ledger with bad
/// signatures is a forgery finding anyway; its verification at worst falls back to about
/// the speed of `--strict-signatures`.
const BATCH_CHUNK_ITEMS: usize = 256;

/// The C2SP key id: `SHA-256(name ‖ 0x0A ‖ type_byte ‖ public_key)[:4]`, big-endian.
pub fn key_id(name: &str, type_byte: u8, public_key: &[u8]) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', type_byte])
        .chain_update(public_key)
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether `name` is a valid key name: non-empty, no Unicode white space, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// Why a key string or key could not be accepted.
///
/// No variant carries private key material, so the error of a bad signer key can be
/// logged safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The string does not have the `+`-separated fields of its format.
    #[error("key string is missing its {field} field")]
    MissingField { field: &'static str },
    /// A signer key string does not start with `PRIVATE+KEY+`.
    #[error("signer key string does not start with \"PRIVATE+KEY+\"")]
    MissingPrivatePrefix,
    /// The key name is empty or holds white space or `+`.
    #[error("invalid key name {name:?}: must be non-empty, without white space or '+'")]
    InvalidName { name: String },
    /// The key id field is not exactly 8 lowercase hex digits.
    #[error("key id {text:?} is not 8 lowercase hex digits")]
    InvalidKeyIdText { text: String },
    /// The key field is not standard base64.
    #[error("key of {name:?} is not standard base64")]
    InvalidBase64 { name: String },
    /// The decoded key is empty, so it has no type byte.
    #[error("key of {name:?} is empty")]
    EmptyKey { name: String },
    /// The type byte is not the one this kind of key uses.
    #[error("key of {name:?} has type byte {found:#04x}, expected {expected:#04x}")]
    WrongType {
        name: String,
        expected: u8,
        found: u8,
    },
    /// The key after the type byte is not 32 bytes.
    #[error("key of {name:?} is {found} bytes after the type byte, expected {expected}")]
    WrongLength {
        name: String,
        expected: usize,
        found: usize,
    },
    /// The key id written in the string is not the one the key hashes to.
    #[error("key id of {name:?} is {stated:08x}, but the key hashes to {computed:08x}")]
    KeyIdMismatch {
        name: String,
        stated: u32,
        computed: u32,
    },
    /// The public key is not an Ed25519 point, is not canonically encoded, or has small order.
    #[error("public key of {name:?}: {reason}")]
    UnusablePublicKey {
        name: String,
        reason: SignatureError,
    },
}

/// Why a signature was rejected by [`verify_strict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature is not 64 bytes long.
    #[error("signature is {found} bytes, expected 64")]
    WrongLength { found: usize },
    /// The public key bytes do not decode to a curve point.
    #[error("public key is not a valid Ed25519 point")]
    InvalidPublicKey,
    /// The public key decodes, but not from its canonical encoding.
    #[error("public key is not canonically encoded")]
    NonCanonicalPublicKey,
    /// The public key has small order, so it would accept forged signatures.
    #[error("public key is a small-order (weak) point")]
    WeakPublicKey,
    /// The signature does not verify strictly over the message.
    #[error("signature does not verify")]
    Invalid,
}

/// Decodes a public key, insisting on the canonical encoding of a point of large order.
fn decode_public_key(public: &[u8; PUBLIC_KEY_BYTES]) -> Result<VerifyingKey, SignatureError> {
    let key = VerifyingKey::from_bytes(public).map_err(|_| SignatureError::InvalidPublicKey)?;
    // dalek decodes y ≥ p and a set sign bit on x = 0 without complaint; re-encoding shows
    // whether these were the canonical bytes, so that one key has exactly one encoding.
    if key.to_edwards().compress().to_bytes() != *public {
        return Err(SignatureError::NonCanonicalPublicKey);
    }
    if key.is_weak() {
        return Err(SignatureError::WeakPublicKey);
    }
    Ok(key)
}

/// Checks that 32 bytes are a usable public key: a curve point, canonically encoded, not
/// of small order. A key that fails would make [`verify_strict`] reject every signature.
pub fn check_public_key(public: &[u8; PUBLIC_KEY_BYTES]) -> Result<(), SignatureError> {
    decode_public_key(public).map(|_| ())
}

/// Strict Ed25519 verification of `signature` by `public` over `message`.
///
/// Rejects a signature that is not 64 bytes, a non-canonical or small-order public key,
/// a non-canonical `s`, and a non-canonical or small-order `R` (dalek's `verify_strict`).
pub fn verify_strict(
    public: &[u8; PUBLIC_KEY_BYTES],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let signature =
        <[u8; SIGNATURE_BYTES]>::try_from(signature).map_err(|_| SignatureError::WrongLength {
            found: signature.len(),
        })?;
    let key = decode_public_key(public)?;
    key.verify_strict(message, &Signature::from_bytes(&signature))
        .map_err(|_| SignatureError::Invalid)
}

/// One item of [`verify_batch`]: the message, the signature and the public key.
pub type BatchItem<'a> = (&'a [u8], [u8; SIGNATURE_BYTES], [u8; PUBLIC_KEY_BYTES]);

/// Verifies many `(message, signature, public key)` items; one verdict per item. `true`
/// means the signature is valid; see [`BatchKeys`] for how that relates to
/// [`verify_strict`].
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<bool> {
    let mut keys = BatchKeys::default();
    for item in items {
        keys.screen(&item.2);
    }
    keys.verify_batch(items)
}

/// Public keys decoded and screened once, then used for any number of batches.
///
/// Batch verification is cofactorless like `verify_strict`, but it does not reject what
/// `verify_strict` rejects. Keys are therefore screened: only a key that is canonical, of
/// large order and torsion-free joins a batch (a scalar multiplication, done once per
/// key, not per batch). Items whose key is not screened in, and every item of a chunk
/// whose batch fails, are judged by [`verify_strict`] alone.
///
/// Residual difference, accepted for speed: `R` is not screened (that would decompress
/// it a second time, the largest single cost). A signature whose `R` is non-canonical,
/// of small order or has a torsion component can only be made by the key's holder — it
/// still needs the private key to satisfy the equation — and a batch may accept it where
/// `verify_strict` refuses it. Callers that must match the sequencer's strict rule
/// exactly use [`verify_strict`].
#[derive(Debug, Clone, Default)]
pub struct BatchKeys {
    /// Bounded by the number of distinct keys screened.
    screened: BTreeMap<[u8; PUBLIC_KEY_BYTES], Option<VerifyingKey>>,
}

impl BatchKeys {
    /// Decodes and screens `public` unless it was screened before.
    pub fn screen(&mut self, public: &[u8; PUBLIC_KEY_BYTES]) {
        if !self.screened.contains_key(public) {
            self.screened.insert(*public, batchable_key(public));
        }
    }

    pub fn is_screened(&self, public: &[u8; PUBLIC_KEY_BYTES]) -> bool {
        self.screened.contains_key(public)
    }

    /// One verdict per item; items with keys never screened are checked strictly.
    pub fn verify_batch(&self, items: &[BatchItem<'_>]) -> Vec<bool> {
        let mut verdicts = vec![false; items.len()];
        let strict = |item: &BatchItem<'_>| verify_strict(&item.2, item.0, &item.1).is_ok();
        for (chunk_number, chunk) in items.chunks(BATCH_CHUNK_ITEMS).enumerate() {
            let base = chunk_number * BATCH_CHUNK_ITEMS;
            let mut batch_positions = Vec::with_capacity(chunk.len());
            let mut messages = Vec::with_capacity(chunk.len());
            let mut signatures = Vec::with_capacity(chunk.len());
            let mut keys = Vec::with_capacity(chunk.len());
            for (offset, item) in chunk.iter().enumerate() {
                let (message, signature, public) = item;
                match self.screened.get(public) {
                    Some(Some(key)) => {
                        batch_positions.push(base + offset);
                        messages.push(*message);
                        signatures.push(Signature::from_bytes(signature));
                        keys.push(*key);
                    }
                    _ => verdicts[base + offset] = strict(item),
                }
            }
            if batch_positions.is_empty() {
                continue;
            }
            let batch_ok = ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok();
            for position in batch_positions {
                verdicts[position] = batch_ok || strict(&items[position]);
            }
        }
        verdicts
    }
}

/// The decoded key if it may join a batch: canonical, not weak, and torsion-free (a
/// torsion component would make the random batch equation disagree with `verify_strict`).
fn batchable_key(public: &[u8; PUBLIC_KEY_BYTES]) -> Option<VerifyingKey> {
    let key = decode_public_key(public).ok()?;
    key.to_edwards().is_torsion_free().then_some(key)
}

/// The fields of a verifier key string, decoded but not yet checked against a type.
struct KeyFields<'a> {
    name: &'a str,
    stated_id: u32,
    payload: Vec<u8>,
}

/// Splits `<name>+<hex id>+<base64>` on its first two `+` (base64 may itself hold `+`).
fn split_key_fields(text: &str) -> Result<KeyFields<'_>, KeyError> {
    let (name, rest) = text
        .split_once('+')
        .ok_or(KeyError::MissingField { field: "key id" })?;
    let (id_text, key_text) = rest
        .split_once('+')
        .ok_or(KeyError::MissingField { field: "key" })?;
    if !is_valid_key_name(name) {
        return Err(KeyError::InvalidName {
            name: name.to_owned(),
        });
    }
    let stated_id = parse_key_id(id_text)?;
    let payload = KEY_BASE64
        .decode(key_text)
        .map_err(|_| KeyError::InvalidBase64 {
            name: name.to_owned(),
        })?;
    Ok(KeyFields {
        name,
        stated_id,
        payload,
    })
}

/// Parses exactly 8 lowercase hex digits, the form both Go and we write.
fn parse_key_id(text: &str) -> Result<u32, KeyError> {
    let well_formed = text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let invalid = || KeyError::InvalidKeyIdText {
        text: text.to_owned(),
    };
    if !well_formed {
        return Err(invalid());
    }
    u32::from_str_radix(text, 16).map_err(|_| invalid())
}

/// Checks the type byte and the length, and returns the 32 key bytes.
fn key_bytes(
    name: &str,
    payload: &[u8],
    expected_type: u8,
) -> Result<[u8; PUBLIC_KEY_BYTES], KeyError> {
    let (&found_type, key) = payload.split_first().ok_or(KeyError::EmptyKey {
        name: name.to_owned(),
    })?;
    if found_type != expected_type {
        return Err(KeyError::WrongType {
            name: name.to_owned(),
            expected: expected_type,
            found: found_type,
        });
    }
    <[u8; PUBLIC_KEY_BYTES]>::try_from(key).map_err(|_| KeyError::WrongLength {
        name: name.to_owned(),
        expected: PUBLIC_KEY_BYTES,
        found: key.len(),
    })
}

/// Parses a verifier key string of the given type; shared by the note and cosigner keys.
fn parse_verifier(text: &str, type_byte: u8) -> Result<(String, u32, VerifyingKey), KeyError> {
    let fields = split_key_fields(text)?;
    let public = key_bytes(fields.name, &fields.payload, type_byte)?;
    let computed = key_id(fields.name, type_byte, &public);
    if computed != fields.stated_id {
        return Err(KeyError::KeyIdMismatch {
            name: fields.name.to_owned(),
            stated: fields.stated_id,
            computed,
        });
    }
    let key = decode_public_key(&public).map_err(|reason| KeyError::UnusablePublicKey {
        name: fields.name.to_owned(),
        reason,
    })?;
    Ok((fields.name.to_owned(), computed, key))
}

/// Writes `<name>+<hex id>+<base64(type ‖ key)>`.
fn write_verifier(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    key_id: u32,
    type_byte: u8,
    public: &VerifyingKey,
) -> fmt::Result {
    let mut payload = [0u8; 1 + PUBLIC_KEY_BYTES];
    payload[0] = type_byte;
    payload[1..].copy_from_slice(public.as_bytes());
    write!(f, "{name}+{key_id:08x}+{}", STANDARD.encode(payload))
}

/// A named Ed25519 public key that verifies signed-note signatures (type 0x01).
///
/// The fields are public for reading; build one with [`VerifierKey::new`] or
/// [`VerifierKey::parse`] so that `key_id` matches `name` and `public`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name, as written on signature lines.
    pub name: String,
    /// C2SP key id of `name` and `public` under type 0x01.
    pub key_id: u32,
    /// The Ed25519 public key; canonical and not weak.
    pub public: VerifyingKey,
}

impl VerifierKey {
    /// A verifier key for `name` and the 32 public-key bytes, with its key id computed.
    pub fn new(name: &str, public: &[u8; PUBLIC_KEY_BYTES]) -> Result<VerifierKey, KeyError> {
        let (key_id, public) = checked_key(name, KEY_TYPE_ED25519, public)?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key_id,
            public,
        })
    }

    /// Parses `<name>+<8 hex key id>+<base64(0x01 ‖ 32-byte key)>`.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let (name, key_id, public) = parse_verifier(text, KEY_TYPE_ED25519)?;
        Ok(VerifierKey {
            name,
            key_id,
            public,
        })
    }

    /// The 32 public-key bytes.
    pub fn public_key_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.public.to_bytes()
    }

    /// Strictly verifies `signature` over `message` with this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        verify_strict(self.public.as_bytes(), message, signature)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_verifier(f, &self.name, self.key_id, KEY_TYPE_ED25519, &self.public)
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<VerifierKey, KeyError> {
        VerifierKey::parse(text)
    }
}

impl serde::Serialize for VerifierKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VerifierKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        VerifierKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A named Ed25519 public key that verifies timestamped witness cosignatures (type 0x04).
///
/// Same key material as a [`VerifierKey`], but a different key id: the type byte keeps a
/// cosignature from ever being read as a log signature, and the reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignerKey {
    /// Cosigner name, as written on cosignature lines.
    pub name: String,
    /// C2SP key id of `name` and `public` under type 0x04.
    pub key_id: u32,
    /// The Ed25519 public key; canonical and not weak.
    pub public: VerifyingKey,
}

impl CosignerKey {
    /// A cosigner key for `name` and the 32 public-key bytes, with its key id computed.
    pub fn new(name: &str, public: &[u8; PUBLIC_KEY_BYTES]) -> Result<CosignerKey, KeyError> {
        let (key_id, public) = checked_key(name, KEY_TYPE_COSIGNATURE_V1, public)?;
        Ok(CosignerKey {
            name: name.to_owned(),
            key_id,
            public,
        })
    }

    /// Parses `<name>+<8 hex key id>+<base64(0x04 ‖ 32-byte key)>`.
    pub fn parse(text: &str) -> Result<CosignerKey, KeyError> {
        let (name, key_id, public) = parse_verifier(text, KEY_TYPE_COSIGNATURE_V1)?;
        Ok(CosignerKey {
            name,
            key_id,
            public,
        })
    }

    /// Strictly verifies `signature` over `message` with this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        verify_strict(self.public.as_bytes(), message, signature)
    }
}

impl fmt::Display for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_verifier(
            f,
            &self.name,
            self.key_id,
            KEY_TYPE_COSIGNATURE_V1,
            &self.public,
        )
    }
}

impl FromStr for CosignerKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<CosignerKey, KeyError> {
        CosignerKey::parse(text)
    }
}

impl serde::Serialize for CosignerKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CosignerKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CosignerKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Validates a name and a public key, and computes the key id under `type_byte`.
fn checked_key(
    name: &str,
    type_byte: u8,
    public: &[u8; PUBLIC_KEY_BYTES],
) -> Result<(u32, VerifyingKey), KeyError> {
    if !is_valid_key_name(name) {
        return Err(KeyError::InvalidName {
            name: name.to_owned(),
        });
    }
    let key = decode_public_key(public).map_err(|reason| KeyError::UnusablePublicKey {
        name: name.to_owned(),
        reason,
    })?;
    Ok((key_id(name, type_byte, public), key))
}

/// A named Ed25519 signing key (log, emitter or witness).
///
/// `Debug` never shows the seed, and there is deliberately no `Display`: the private key
/// string comes only from an explicit [`SignerKey::to_string`] call, never from a `{}` in a
/// log line. The seed is zeroized on drop by ed25519-dalek.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key: SigningKey,
}

impl SignerKey {
    /// The signing key derived from a 32-byte RFC 8032 seed (the "secret key").
    pub fn from_seed(name: &str, seed: [u8; PUBLIC_KEY_BYTES]) -> Result<SignerKey, KeyError> {
        if !is_valid_key_name(name) {
            return Err(KeyError::InvalidName {
                name: name.to_owned(),
            });
        }
        Ok(SignerKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses golang.org/x/mod's `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`; the key
    /// id must be that of the derived public key.
    pub fn parse(text: &str) -> Result<SignerKey, KeyError> {
        let rest = text
            .strip_prefix(SIGNER_KEY_PREFIX)
            .ok_or(KeyError::MissingPrivatePrefix)?;
        let fields = split_key_fields(rest)?;
        let seed = key_bytes(fields.name, &fields.payload, KEY_TYPE_ED25519)?;
        let signer = SignerKey::from_seed(fields.name, seed)?;
        let computed = signer.key_id();
        if computed != fields.stated_id {
            return Err(KeyError::KeyIdMismatch {
                name: fields.name.to_owned(),
                stated: fields.stated_id,
                computed,
            });
        }
        Ok(signer)
    }

    /// The private key string `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`. Secret.
    #[allow(clippy::inherent_to_string)] // no Display on purpose: see the type's doc
    pub fn to_string(&self) -> String {
        let mut payload = [0u8; 1 + PUBLIC_KEY_BYTES];
        payload[0] = KEY_TYPE_ED25519;
        payload[1..].copy_from_slice(self.key.as_bytes());
        format!(
            "{SIGNER_KEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id(),
            STANDARD.encode(payload)
        )
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id of the matching [`VerifierKey`] (type 0x01).
    pub fn key_id(&self) -> u32 {
        key_id(&self.name, KEY_TYPE_ED25519, &self.public_key_bytes())
    }

    /// The key id of the matching [`CosignerKey`] (type 0x04).
    pub fn cosigner_key_id(&self) -> u32 {
        key_id(
            &self.name,
            KEY_TYPE_COSIGNATURE_V1,
            &self.public_key_bytes(),
        )
    }

    /// The 32 public-key bytes.
    pub fn public_key_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key for signed notes made with this key.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id(),
            public: self.key.verifying_key(),
        }
    }

    /// The cosigner key for cosignatures made with this key.
    pub fn cosigner_key(&self) -> CosignerKey {
        CosignerKey {
            name: self.name.clone(),
            key_id: self.cosigner_key_id(),
            public: self.key.verifying_key(),
        }
    }

    /// The deterministic RFC 8032 Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id()))
            .field("seed", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

    /// transparency.md §5.5: verifier keys whose ids must recompute, with the stated id.
    const VKEYS: [(&str, u32); 5] = [
        (PETER_VKEY, 0xc74f20a3),
        (
            "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
            0xaf0cfe78,
        ),
        (
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            0x530d903a,
        ),
        (
            "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx",
            0x33d7b496,
        ),
        (
            "transparency.dev/tessera/example+ae330e15+ASf4/L1zE859VqlfQgGzKy34l91Gl8W6wfwp+vKP62DW",
            0xae330e15,
        ),
    ];

    fn hex32(text: &str) -> [u8; 32] {
        let bytes = hex::decode(text).unwrap();
        <[u8; 32]>::try_from(bytes.as_slice()).unwrap()
    }

    #[test]
    fn rfc8032_tests_1_to_3() {
        // RFC 8032 §7.1 (transparency.md §5.7): secret key, public key, message, signature.
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
        ];
        for (secret, public, message, signature) in vectors {
            let signer = SignerKey::from_seed("rfc8032", hex32(secret)).unwrap();
            let message = hex::decode(message).unwrap();
            assert_eq!(hex::encode(signer.public_key_bytes()), public);
            let signed = signer.sign(&message);
            assert_eq!(hex::encode(signed), signature);
            assert_eq!(verify_strict(&hex32(public), &message, &signed), Ok(()));
            let mut tampered = message.clone();
            tampered.push(0);
            assert_eq!(
                verify_strict(&hex32(public), &tampered, &signed),
                Err(SignatureError::Invalid)
            );
        }
    }

    #[test]
    fn verifier_keys_parse_recompute_and_round_trip() {
        for (text, id) in VKEYS {
            let key = VerifierKey::parse(text).unwrap();
            assert_eq!(key.key_id, id, "{text}");
            assert_eq!(
                key_id(&key.name, KEY_TYPE_ED25519, &key.public_key_bytes()),
                id
            );
            assert_eq!(key.to_string(), text);
            assert_eq!(text.parse::<VerifierKey>().unwrap(), key);
        }
        // The `+` inside the base64 does not split the key.
        let tessera = VerifierKey::parse(VKEYS[4].0).unwrap();
        assert_eq!(tessera.name, "transparency.dev/tessera/example");
    }

    #[test]
    fn signer_key_matches_published_verifier_key() {
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        let verifier = VerifierKey::parse(PETER_VKEY).unwrap();
        assert_eq!(signer.verifier_key(), verifier);
        assert_eq!(signer.public_key_bytes(), verifier.public_key_bytes());
        assert_eq!(signer.key_id(), 0xc74f20a3);
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.to_string(), PETER_SKEY);
        let debug = format!("{signer:?}");
        assert!(
            debug.contains("redacted") && !debug.contains("AYEKFALV"),
            "{debug}"
        );
    }

    #[test]
    fn go_rejected_verifier_keys_fail_on_length_and_type() {
        // golang.org/x/mod TestNewVerifier: both ids match their own bytes, so the
        // rejection must come from the length and type checks.
        let cases = [
            (
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                KeyError::WrongLength {
                    name: "PeterNeumann".into(),
                    expected: 32,
                    found: 36,
                },
            ),
            (
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                KeyError::WrongType {
                    name: "PeterNeumann".into(),
                    expected: 0x01,
                    found: 0x65,
                },
            ),
        ];
        for (text, expected) in cases {
            let mut parts = text.splitn(3, '+');
            let (name, id, key) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            let payload = KEY_BASE64.decode(key).unwrap();
            let own_id = key_id(name, payload[0], &payload[1..]);
            assert_eq!(format!("{own_id:08x}"), id);
            assert_eq!(VerifierKey::parse(text), Err(expected));
        }
    }

    #[test]
    fn malformed_key_strings_are_rejected() {
        let good_key = "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let check = |text: &str, expected: KeyError| {
            assert_eq!(VerifierKey::parse(text), Err(expected), "{text}");
        };
        check("PeterNeumann", KeyError::MissingField { field: "key id" });
        check(
            "PeterNeumann+c74f20a3",
            KeyError::MissingField { field: "key" },
        );
        check(
            &format!("+c74f20a3+{good_key}"),
            KeyError::InvalidName {
                name: String::new(),
            },
        );
        check(
            &format!("Peter Neumann+c74f20a3+{good_key}"),
            KeyError::InvalidName {
                name: "Peter Neumann".into(),
            },
        );
        check(
            &format!("Peter\u{a0}Neumann+c74f20a3+{good_key}"),
            KeyError::InvalidName {
                name: "Peter\u{a0}Neumann".into(),
            },
        );
        for id in ["C74F20A3", "c74f20a", "c74f20a30", "0xc74f20", "-74f20a3"] {
            check(
                &format!("PeterNeumann+{id}+{good_key}"),
                KeyError::InvalidKeyIdText { text: id.into() },
            );
        }
        check(
            &format!("PeterNeumann+c74f20a4+{good_key}"),
            KeyError::KeyIdMismatch {
                name: "PeterNeumann".into(),
                stated: 0xc74f20a4,
                computed: 0xc74f20a3,
            },
        );
        check(
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
            KeyError::InvalidBase64 {
                name: "PeterNeumann".into(),
            },
        );
        check(
            "PeterNeumann+c74f20a3+",
            KeyError::EmptyKey {
                name: "PeterNeumann".into(),
            },
        );
        // A weak key with a correct id is still refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let id = key_id("weak", KEY_TYPE_ED25519, &identity);
        let mut payload = vec![KEY_TYPE_ED25519];
        payload.extend_from_slice(&identity);
        check(
            &format!("weak+{id:08x}+{}", STANDARD.encode(&payload)),
            KeyError::UnusablePublicKey {
                name: "weak".into(),
                reason: SignatureError::WeakPublicKey,
            },
        );
        // A cosigner key is not a note verifier key, and the reverse.
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        let cosigner_text = signer.cosigner_key().to_string();
        assert!(matches!(
            VerifierKey::parse(&cosigner_text),
            Err(KeyError::WrongType { found: 0x04, .. })
        ));
        assert!(matches!(
            CosignerKey::parse(PETER_VKEY),
            Err(KeyError::WrongType { found: 0x01, .. })
        ));
    }

    #[test]
    fn malformed_signer_keys_are_rejected() {
        assert_eq!(
            SignerKey::parse("PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")
                .map(|_| ()),
            Err(KeyError::MissingPrivatePrefix)
        );
        assert_eq!(
            SignerKey::parse(
                "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
            )
            .map(|_| ()),
            Err(KeyError::KeyIdMismatch {
                name: "PeterNeumann".into(),
                stated: 0xc74f20a4,
                computed: 0xc74f20a3,
            })
        );
        // The error never echoes the seed.
        let error = SignerKey::parse(
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        )
        .map(|_| ())
        .unwrap_err();
        assert!(!error.to_string().contains("AYEKFALV"));
        assert!(SignerKey::from_seed("has space", [1; 32]).is_err());
        assert!(SignerKey::from_seed("", [1; 32]).is_err());
    }

    #[test]
    fn cosigner_key_round_trip_and_distinct_id() {
        let signer = SignerKey::from_seed("witness.example/w1", [9; 32]).unwrap();
        let cosigner = signer.cosigner_key();
        assert_ne!(cosigner.key_id, signer.key_id());
        assert_eq!(
            cosigner.key_id,
            key_id(
                "witness.example/w1",
                KEY_TYPE_COSIGNATURE_V1,
                &signer.public_key_bytes()
            )
        );
        let text = cosigner.to_string();
        assert_eq!(CosignerKey::parse(&text).unwrap(), cosigner);
        assert_eq!(
            CosignerKey::new("witness.example/w1", &signer.public_key_bytes()).unwrap(),
            cosigner
        );
    }

    #[test]
    fn verifier_key_serde_is_the_key_string() {
        let key = VerifierKey::parse(PETER_VKEY).unwrap();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{PETER_VKEY}\""));
        assert_eq!(serde_json::from_str::<VerifierKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<VerifierKey>("\"PeterNeumann+00000000+AA==\"").is_err());
    }

    /// Encodes y as a little-endian field element with the x sign bit.
    fn encoding(y: u8, sign: bool) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        bytes[0] = y;
        if sign {
            bytes[31] |= 0x80;
        }
        bytes
    }

    #[test]
    fn strict_verification_rejects_bad_lengths_and_points() {
        let signer = SignerKey::from_seed("k", [3; 32]).unwrap();
        let public = signer.public_key_bytes();
        let signature = signer.sign(b"message");
        assert_eq!(verify_strict(&public, b"message", &signature), Ok(()));
        for len in [0, 63, 65] {
            let mut wrong = signature.to_vec();
            wrong.resize(len, 0);
            assert_eq!(
                verify_strict(&public, b"message", &wrong),
                Err(SignatureError::WrongLength { found: len })
            );
        }
        // Identity point (y = 1): canonical but of small order.
        assert_eq!(
            verify_strict(&encoding(1, false), b"message", &signature),
            Err(SignatureError::WeakPublicKey)
        );
        assert_eq!(
            check_public_key(&encoding(1, false)),
            Err(SignatureError::WeakPublicKey)
        );
        // y = 1 with the sign bit set: x = 0 has no negative, so this encoding is not
        // canonical. Also y = p + 1 (≡ 1).
        assert_eq!(
            verify_strict(&encoding(1, true), b"message", &signature),
            Err(SignatureError::NonCanonicalPublicKey)
        );
        let mut y_p_plus_1 = [0xffu8; 32];
        y_p_plus_1[0] = 0xee;
        y_p_plus_1[31] = 0x7f;
        assert_eq!(
            verify_strict(&y_p_plus_1, b"message", &signature),
            Err(SignatureError::NonCanonicalPublicKey)
        );
        // Some small y is not on the curve at all.
        let off_curve = (2..=255u8)
            .map(|y| encoding(y, false))
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .unwrap();
        assert_eq!(
            verify_strict(&off_curve, b"message", &signature),
            Err(SignatureError::InvalidPublicKey)
        );
        // s + L is the same scalar, but not canonical: malleability refused.
        let order: [u8; 32] =
            hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut malleated = signature;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(malleated[32 + i]) + u16::from(order[i]) + carry;
            malleated[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            verify_strict(&public, b"message", &malleated),
            Err(SignatureError::Invalid)
        );
        let mut flipped = signature;
        flipped[10] ^= 1;
        assert_eq!(
            verify_strict(&public, b"message", &flipped),
            Err(SignatureError::Invalid)
        );
    }

    /// Messages, signatures and public keys, item by item.
    type SignedItems = (Vec<Vec<u8>>, Vec<[u8; 64]>, Vec<[u8; 32]>);

    fn signed_items(count: usize) -> SignedItems {
        let signers: Vec<SignerKey> = (0..3u8)
            .map(|i| SignerKey::from_seed("batch", [i + 1; 32]).unwrap())
            .collect();
        let mut messages = Vec::new();
        let mut signatures = Vec::new();
        let mut keys = Vec::new();
        for i in 0..count {
            let signer = &signers[i % signers.len()];
            let message = format!("message {i}").into_bytes();
            signatures.push(signer.sign(&message));
            keys.push(signer.public_key_bytes());
            messages.push(message);
        }
        (messages, signatures, keys)
    }

    #[test]
    fn batch_verdicts_match_strict_verification() {
        let count = 2 * BATCH_CHUNK_ITEMS + 7;
        let (messages, mut signatures, mut keys) = signed_items(count);
        let items = |signatures: &[[u8; 64]], keys: &[[u8; 32]]| -> Vec<bool> {
            let items: Vec<(&[u8], [u8; 64], [u8; 32])> = messages
                .iter()
                .zip(signatures.iter().zip(keys))
                .map(|(m, (s, k))| (m.as_slice(), *s, *k))
                .collect();
            verify_batch(&items)
        };
        assert!(items(&signatures, &keys).iter().all(|ok| *ok));
        assert!(verify_batch(&[]).is_empty());

        // One bad signature in the second chunk, one wrong key in the last chunk.
        signatures[BATCH_CHUNK_ITEMS + 5][40] ^= 0x10;
        keys[count - 1] = keys[count - 2];
        let verdicts = items(&signatures, &keys);
        for (i, ok) in verdicts.iter().enumerate() {
            let expected = i != BATCH_CHUNK_ITEMS + 5 && i != count - 1;
            assert_eq!(*ok, expected, "item {i}");
            let strict = verify_strict(&keys[i], &messages[i], &signatures[i]).is_ok();
            assert_eq!(*ok, strict, "item {i}");
        }
    }

    #[test]
    fn batch_refuses_weak_key_forgery_that_plain_batching_accepts() {
        // A = identity, R = identity, s = 0 satisfies the cofactorless equation for every
        // message: dalek's batch accepts it, verify_strict does not, and neither may we.
        let identity = encoding(1, false);
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity);
        let weak = VerifyingKey::from_bytes(&identity).unwrap();
        assert!(
            ed25519_dalek::verify_batch(
                &[b"anything".as_slice()],
                &[Signature::from_bytes(&forged)],
                &[weak]
            )
            .is_ok()
        );
        let (messages, signatures, keys) = signed_items(5);
        let mut items: Vec<(&[u8], [u8; 64], [u8; 32])> = messages
            .iter()
            .zip(signatures.iter().zip(&keys))
            .map(|(m, (s, k))| (m.as_slice(), *s, *k))
            .collect();
        items.insert(2, (b"anything".as_slice(), forged, identity));
        // A small-order R under a good key cannot satisfy the equation without the private
        // key: the batch fails and the strict check refuses the item.
        let mut small_r = signatures[0];
        small_r[..32].copy_from_slice(&identity);
        items.push((messages[0].as_slice(), small_r, keys[0]));
        let verdicts = verify_batch(&items);
        assert_eq!(verdicts, vec![true, true, false, true, true, true, false]);
    }
}
