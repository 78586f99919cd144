//! C2SP checkpoints (`tlog-checkpoint` v1.0.0) and Ed25519 witness cosignatures
//! (`tlog-cosignature` v1.0.1).
//!
//! A checkpoint is the text of a signed note that commits the log to a tree:
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, standard base64>
//! [<extension line> …]
//! ```
//!
//! The log signs it with its note key (whose name should equal the origin); witnesses add
//! cosignature lines, each a key id, a big-endian `u64` timestamp and an Ed25519 signature
//! over `cosignature/v1\ntime <secs>\n` followed by the checkpoint text.
//!
//! [`RawCheckpoint`] is the lenient parser of transparency-dev/formats (any root length,
//! trailing text returned as is); [`Checkpoint`] is what the ledger accepts: a 32-byte
//! root and non-empty extension lines.

use crate::hash::Hash32;
use crate::keys::{CosignerKey, SignerKey, VerifierKey};
use crate::note::{self, NoteError, NoteSignature, SignedNote};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// First line of every Ed25519 cosignature message.
pub const COSIGNATURE_HEADER: &str = "cosignature/v1\n";

/// Bytes of a cosignature after the key id: `u64` timestamp and Ed25519 signature.
pub const COSIGNATURE_BYTES: usize = 8 + 64;

/// Largest cosignature timestamp: tlog-cosignature says it MUST NOT exceed 2^63 − 1.
pub const COSIGNATURE_TIMESTAMP_MAX: u64 = i64::MAX as u64;

/// Why a checkpoint or cosignature was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The body does not end in a newline.
    #[error("checkpoint does not end in a newline")]
    MissingFinalNewline,
    /// Fewer than the three lines origin, size and root.
    #[error("checkpoint has {found} lines, needs at least 3")]
    TooFewLines { found: usize },
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// A line holds a character a note cannot carry.
    #[error("checkpoint line {line} holds a control character")]
    ControlCharacter { line: usize },
    /// The size is not a canonical decimal `u64`.
    #[error("checkpoint size {text:?} is not a decimal u64 without leading zeros")]
    InvalidSize { text: String },
    /// The root line is not canonical standard base64.
    #[error("checkpoint root {text:?} is not standard base64")]
    InvalidRootBase64 { text: String },
    /// The root hash is not 32 bytes.
    #[error("checkpoint root is {len} bytes, expected 32")]
    RootLength { len: usize },
    /// An extension line is empty (they are separated from signatures by an empty line).
    #[error("checkpoint extension line {line} is empty")]
    EmptyExtension { line: usize },
    /// The fields would not survive rendering and parsing (a newline or control character
    /// in the origin or an extension line, or an empty extension line).
    #[error("checkpoint fields cannot be written as a checkpoint body")]
    NotRepresentable,
    /// The note around the checkpoint is bad or not signed by a log key.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint is for another log.
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    WrongOrigin { expected: String, found: String },
    /// A cosignature blob is not 72 bytes.
    #[error("cosignature by {name:?} is {len} bytes after the key id, expected 72")]
    CosignatureLength { name: String, len: usize },
    /// A cosignature timestamp above 2^63 − 1.
    #[error("cosignature timestamp {timestamp} exceeds 2^63 - 1")]
    TimestampTooLarge { timestamp: u64 },
    /// A cosignature line is not from the given cosigner key.
    #[error(
        "cosignature by {name:?} ({key_id:08x}) is not from key {expected_name:?} ({expected_key_id:08x})"
    )]
    WrongCosigner {
        name: String,
        key_id: u32,
        expected_name: String,
        expected_key_id: u32,
    },
    /// A cosignature from a known cosigner does not verify.
    #[error("cosignature by {name:?} (key id {key_id:08x}) does not verify")]
    InvalidCosignature { name: String, key_id: u32 },
}

/// A checkpoint as parsed by the lenient transparency-dev/formats rules: the root may be
/// any length and everything after the root line is returned verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCheckpoint {
    /// Log origin (first line).
    pub origin: String,
    /// Tree size (second line).
    pub size: u64,
    /// Decoded root hash bytes (third line), of any length.
    pub root: Vec<u8>,
    /// The text after the root line, newlines included.
    pub rest: String,
}

/// Splits off the first line; `None` when no newline is left.
fn take_line(text: &str) -> Option<(&str, &str)> {
    text.split_once('\n')
}

impl RawCheckpoint {
    /// Parses a checkpoint body leniently (transparency-dev/formats `Unmarshal`), with
    /// C2SP's size rule: decimal, no sign, no leading zeros, no overflow.
    pub fn parse(text: &str) -> Result<RawCheckpoint, CheckpointError> {
        let mut rest = text;
        let mut lines = [""; 3];
        for (found, slot) in lines.iter_mut().enumerate() {
            let Some((line, after)) = take_line(rest) else {
                return Err(if rest.is_empty() {
                    CheckpointError::TooFewLines { found }
                } else {
                    CheckpointError::MissingFinalNewline
                });
            };
            *slot = line;
            rest = after;
        }
        let [origin, size, root] = lines;
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if origin.bytes().any(|b| b < 0x20) {
            return Err(CheckpointError::ControlCharacter { line: 1 });
        }
        let root_bytes = STANDARD
            .decode(root)
            .map_err(|_| CheckpointError::InvalidRootBase64 {
                text: root.to_owned(),
            })?;
        Ok(RawCheckpoint {
            origin: origin.to_owned(),
            size: parse_size(size)?,
            root: root_bytes,
            rest: rest.to_owned(),
        })
    }
}

/// Parses an ASCII decimal `u64` with no sign and no leading zeros (except `0` itself).
fn parse_size(text: &str) -> Result<u64, CheckpointError> {
    let invalid = || CheckpointError::InvalidSize {
        text: text.to_owned(),
    };
    // `u64::from_str` would accept a leading `+`; check the digits first.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(invalid());
    }
    text.parse::<u64>().map_err(|_| invalid())
}

/// A checkpoint the ledger accepts: origin, size, 32-byte root, extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Log origin; the log's key name should equal it.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// RFC 6962 root of the tree at `size`.
    pub root: Hash32,
    /// Extension lines, without newlines; NOT RECOMMENDED by the spec, kept verbatim.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint body: origin, size, base64 root and extension lines, each ending in a
    /// newline. This is the text the log signs.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint body strictly: the [`RawCheckpoint`] rules, a 32-byte root, and
    /// non-empty extension lines. `to_text` of the result gives back `text`.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let raw = RawCheckpoint::parse(text)?;
        let root = Hash32::from_slice(&raw.root).ok_or(CheckpointError::RootLength {
            len: raw.root.len(),
        })?;
        let mut extensions = Vec::new();
        // Every line, extensions included, ends in a newline.
        if !raw.rest.is_empty() && !raw.rest.ends_with('\n') {
            return Err(CheckpointError::MissingFinalNewline);
        }
        for (number, line) in raw.rest.split_terminator('\n').enumerate() {
            if line.is_empty() {
                return Err(CheckpointError::EmptyExtension { line: number + 4 });
            }
            extensions.push(line.to_owned());
        }
        Ok(Checkpoint {
            origin: raw.origin,
            size: raw.size,
            root,
            extensions,
        })
    }

    /// Checks that the body round-trips and can be the text of a note.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        let text = self.to_text();
        note::validate_text(&text)?;
        let parsed = Checkpoint::parse(&text)?;
        // A newline inside the origin or an extension would shift the lines.
        if parsed != *self {
            return Err(CheckpointError::NotRepresentable);
        }
        Ok(())
    }
}

/// Signs the checkpoint with the log key and returns the whole signed note.
pub fn sign_checkpoint(
    checkpoint: &Checkpoint,
    key: &SignerKey,
) -> Result<String, CheckpointError> {
    checkpoint.validate()?;
    let mut note = SignedNote::new(&checkpoint.to_text())?;
    note.add_signature(key)?;
    Ok(note.to_string())
}

/// Parses a signed checkpoint note, verifies it against the log keys, parses the body
/// strictly and checks the origin. Unknown signatures (cosignatures, rotated keys) are
/// kept in the returned note and otherwise ignored.
pub fn open_checkpoint(
    note_bytes: &[u8],
    origin: &str,
    log_keys: &[VerifierKey],
) -> Result<(Checkpoint, SignedNote), CheckpointError> {
    let note = SignedNote::parse(note_bytes)?;
    // The text means nothing until a trusted key vouches for it (signed-note §1).
    note.verify(log_keys)?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: origin.to_owned(),
            found: checkpoint.origin,
        });
    }
    Ok((checkpoint, note))
}

/// The message an Ed25519 cosigner signs: `cosignature/v1\ntime <secs>\n` ‖ body.
pub fn cosignature_message(checkpoint_text: &str, unix_seconds: u64) -> Vec<u8> {
    let mut message = format!("{COSIGNATURE_HEADER}time {unix_seconds}\n").into_bytes();
    message.extend_from_slice(checkpoint_text.as_bytes());
    message
}

/// A decoded Ed25519 cosignature (tlog-cosignature v1.0.1, type 0x04).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// Cosigner name from the signature line.
    pub name: String,
    /// Key id under type 0x04.
    pub key_id: u32,
    /// When the cosigner signed, in POSIX seconds.
    pub timestamp: u64,
    /// Ed25519 signature over [`cosignature_message`].
    pub signature: [u8; 64],
}

impl Cosignature {
    /// Decodes the 72 bytes after the key id: big-endian timestamp, then the signature.
    pub fn from_note_signature(line: &NoteSignature) -> Result<Cosignature, CheckpointError> {
        let blob =
            <&[u8; COSIGNATURE_BYTES]>::try_from(line.signature.as_slice()).map_err(|_| {
                CheckpointError::CosignatureLength {
                    name: line.name.clone(),
                    len: line.signature.len(),
                }
            })?;
        let (time, sig) = blob.split_at(8);
        let mut timestamp_bytes = [0u8; 8];
        timestamp_bytes.copy_from_slice(time);
        let timestamp = u64::from_be_bytes(timestamp_bytes);
        if timestamp > COSIGNATURE_TIMESTAMP_MAX {
            return Err(CheckpointError::TimestampTooLarge { timestamp });
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        Ok(Cosignature {
            name: line.name.clone(),
            key_id: line.key_id,
            timestamp,
            signature,
        })
    }

    /// The note signature line carrying this cosignature.
    pub fn to_note_signature(&self) -> NoteSignature {
        let mut blob = Vec::with_capacity(COSIGNATURE_BYTES);
        blob.extend_from_slice(&self.timestamp.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: blob,
        }
    }
}

/// Cosigns a checkpoint body at `unix_seconds` with the witness key.
pub fn cosign(
    checkpoint_text: &str,
    key: &SignerKey,
    unix_seconds: u64,
) -> Result<NoteSignature, CheckpointError> {
    note::validate_text(checkpoint_text)?;
    if unix_seconds > COSIGNATURE_TIMESTAMP_MAX {
        return Err(CheckpointError::TimestampTooLarge {
            timestamp: unix_seconds,
        });
    }
    let signature = key.sign(&cosignature_message(checkpoint_text, unix_seconds));
    Ok(Cosignature {
        name: key.name().to_owned(),
        key_id: key.cosigner_key_id(),
        timestamp: unix_seconds,
        signature,
    }
    .to_note_signature())
}

/// Verifies one cosignature line from `key` over a checkpoint body; returns its timestamp.
pub fn verify_cosignature(
    checkpoint_text: &str,
    line: &NoteSignature,
    key: &CosignerKey,
) -> Result<u64, CheckpointError> {
    if line.name != key.name || line.key_id != key.key_id {
        return Err(CheckpointError::WrongCosigner {
            name: line.name.clone(),
            key_id: line.key_id,
            expected_name: key.name.clone(),
            expected_key_id: key.key_id,
        });
    }
    let cosignature = Cosignature::from_note_signature(line)?;
    key.verify(
        &cosignature_message(checkpoint_text, cosignature.timestamp),
        &cosignature.signature,
    )
    .map_err(|_| CheckpointError::InvalidCosignature {
        name: line.name.clone(),
        key_id: line.key_id,
    })?;
    Ok(cosignature.timestamp)
}

/// Verifies the note's cosignatures from known cosigners; returns each known cosigner
/// that cosigned with its timestamp.
///
/// Lines from unknown keys are ignored; a bad line from a known cosigner rejects the note.
/// Whether enough witnesses cosigned is the caller's policy, so no cosigner is not an error.
pub fn verify_cosignatures(
    note: &SignedNote,
    cosigners: &[CosignerKey],
) -> Result<Vec<(CosignerKey, u64)>, CheckpointError> {
    let mut verified: Vec<(CosignerKey, u64)> = Vec::new();
    for line in &note.signatures {
        let Some(key) = cosigners
            .iter()
            .find(|k| k.name == line.name && k.key_id == line.key_id)
        else {
            continue;
        };
        let timestamp = verify_cosignature(&note.text, line, key)?;
        if !verified.iter().any(|(k, _)| k == key) {
            verified.push((key.clone(), timestamp));
        }
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KEY_TYPE_COSIGNATURE_V1;

    const SOFA_TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
    const SOFA_LOG_LINE: &str = "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
    const SOFA_WITNESS_LINE: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
    const TREE_TOPS: &str = "dGhlIHZpZXcgZnJvbSB0aGUgdHJlZSB0b3BzIGlzIGdyZWF0IQ==";

    fn log_key() -> SignerKey {
        SignerKey::from_seed("example.com/log42", [42; 32]).unwrap()
    }

    fn witness_key() -> SignerKey {
        SignerKey::from_seed("witness.example/w1", [43; 32]).unwrap()
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "example.com/log42".into(),
            size: 70_000,
            root: crate::merkle::leaf_hash(b"root"),
            extensions: Vec::new(),
        }
    }

    #[test]
    fn formats_parse_vectors() {
        // transparency-dev/formats log/checkpoint_test.go TestUnmarshalLogState.
        let good: [(String, &str, u64, &[u8], &str); 5] = [
            (
                "Log\n123\nYmFuYW5hcw==\n".into(),
                "Log",
                123,
                b"bananas",
                "",
            ),
            (
                format!("Banana\n9944\n{TREE_TOPS}\n"),
                "Banana",
                9944,
                b"the view from the tree tops is great!",
                "",
            ),
            (
                format!("Log\n9944\n{TREE_TOPS}\nHere's some associated data.\n"),
                "Log",
                9944,
                b"the view from the tree tops is great!",
                "Here's some associated data.\n",
            ),
            (
                format!("Log\n9944\n{TREE_TOPS}\nlots\nof\nlines\n"),
                "Log",
                9944,
                b"the view from the tree tops is great!",
                "lots\nof\nlines\n",
            ),
            (
                format!("Log\n9944\n{TREE_TOPS}\n\n\n\n"),
                "Log",
                9944,
                b"the view from the tree tops is great!",
                "\n\n\n",
            ),
        ];
        for (text, origin, size, root, rest) in good {
            let raw = RawCheckpoint::parse(&text).unwrap();
            assert_eq!(
                raw,
                RawCheckpoint {
                    origin: origin.into(),
                    size,
                    root: root.to_vec(),
                    rest: rest.into(),
                },
                "{text:?}"
            );
            // Not 32-byte roots: the ledger's strict parser refuses them.
            assert_eq!(
                Checkpoint::parse(&text),
                Err(CheckpointError::RootLength { len: root.len() })
            );
        }
        let bad: [(String, CheckpointError); 7] = [
            (
                "Head\n9944\n".into(),
                CheckpointError::TooFewLines { found: 2 },
            ),
            (
                format!("\n9944\n{TREE_TOPS}\n"),
                CheckpointError::EmptyOrigin,
            ),
            (
                "Log\n123\nYmFuYW5hcw==".into(),
                CheckpointError::MissingFinalNewline,
            ),
            (
                format!("Log\nbananas\n{TREE_TOPS}\n"),
                CheckpointError::InvalidSize {
                    text: "bananas".into(),
                },
            ),
            (
                format!("Log\n-34\n{TREE_TOPS}\n"),
                CheckpointError::InvalidSize { text: "-34".into() },
            ),
            (
                format!("Log\n3438945738945739845734895735\n{TREE_TOPS}\n"),
                CheckpointError::InvalidSize {
                    text: "3438945738945739845734895735".into(),
                },
            ),
            (
                "Log\n123\nThisIsn'tBase64\n".into(),
                CheckpointError::InvalidRootBase64 {
                    text: "ThisIsn'tBase64".into(),
                },
            ),
        ];
        for (text, expected) in bad {
            assert_eq!(
                RawCheckpoint::parse(&text),
                Err(expected.clone()),
                "{text:?}"
            );
            assert_eq!(Checkpoint::parse(&text), Err(expected), "{text:?}");
        }
    }

    #[test]
    fn sizes_are_canonical_decimals() {
        let root = checkpoint().root.to_base64();
        for good in ["0", "1", "10", "18446744073709551615"] {
            let text = format!("o\n{good}\n{root}\n");
            assert_eq!(Checkpoint::parse(&text).unwrap().size.to_string(), good);
        }
        for bad in [
            "",
            "00",
            "01",
            "+5",
            " 5",
            "5 ",
            "1e3",
            "0x10",
            "18446744073709551616",
            "５",
        ] {
            let text = format!("o\n{bad}\n{root}\n");
            assert_eq!(
                Checkpoint::parse(&text),
                Err(CheckpointError::InvalidSize { text: bad.into() }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn spec_example_decodes() {
        let bytes = format!("{SOFA_TEXT}\n{SOFA_LOG_LINE}");
        let note = SignedNote::parse(bytes.as_bytes()).unwrap();
        let parsed = Checkpoint::parse(&note.text).unwrap();
        assert_eq!(parsed.origin, "example.com/behind-the-sofa");
        assert_eq!(parsed.size, 20852163);
        assert_eq!(
            parsed.root.to_hex(),
            "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
        );
        assert!(parsed.extensions.is_empty());
        assert_eq!(parsed.to_text(), SOFA_TEXT);
        assert_eq!(note.signatures[0].key_id, 0x033de0ae);
        assert_eq!(note.signatures[0].signature.len(), 64);
    }

    #[test]
    fn cosigned_spec_example_decodes() {
        let bytes = format!("{SOFA_TEXT}\n{SOFA_LOG_LINE}{SOFA_WITNESS_LINE}");
        let note = SignedNote::parse(bytes.as_bytes()).unwrap();
        assert_eq!(note.to_string(), bytes);
        let cosignature = Cosignature::from_note_signature(&note.signatures[1]).unwrap();
        assert_eq!(cosignature.name, "witness.example.com/w1");
        assert_eq!(cosignature.key_id, 0x8d66cf3f);
        assert_eq!(cosignature.timestamp, 1679315147);
        assert_eq!(cosignature.to_note_signature(), note.signatures[1]);
        assert_eq!(
            cosignature_message(&note.text, cosignature.timestamp),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        // The log's own line is 64 bytes, not a cosignature.
        assert_eq!(
            Cosignature::from_note_signature(&note.signatures[0]),
            Err(CheckpointError::CosignatureLength {
                name: "example.com/behind-the-sofa".into(),
                len: 64
            })
        );
    }

    #[test]
    fn strict_parse_round_trips_with_extensions() {
        let mut with_extensions = checkpoint();
        with_extensions.extensions = vec!["ext one".into(), "— looks like a signature".into()];
        let text = with_extensions.to_text();
        assert_eq!(Checkpoint::parse(&text), Ok(with_extensions.clone()));
        assert_eq!(with_extensions.validate(), Ok(()));
        let root = checkpoint().root.to_base64();
        assert_eq!(
            Checkpoint::parse(&format!("o\n1\n{root}\nfine\n\nafter blank\n")),
            Err(CheckpointError::EmptyExtension { line: 5 })
        );
        assert_eq!(
            Checkpoint::parse(&format!("o\n1\n{root}\nunterminated")),
            Err(CheckpointError::MissingFinalNewline)
        );
        assert_eq!(
            Checkpoint::parse(&format!("o\u{1}\n1\n{root}\n")),
            Err(CheckpointError::ControlCharacter { line: 1 })
        );
    }

    #[test]
    fn sign_and_open_round_trip() {
        let key = log_key();
        let note = sign_checkpoint(&checkpoint(), &key).unwrap();
        assert!(note.starts_with(&checkpoint().to_text()));
        let (opened, signed) =
            open_checkpoint(note.as_bytes(), "example.com/log42", &[key.verifier_key()]).unwrap();
        assert_eq!(opened, checkpoint());
        assert_eq!(signed.to_string(), note);

        assert_eq!(
            open_checkpoint(note.as_bytes(), "example.com/other", &[key.verifier_key()]),
            Err(CheckpointError::WrongOrigin {
                expected: "example.com/other".into(),
                found: "example.com/log42".into()
            })
        );
        let stranger = SignerKey::from_seed("example.com/log42", [1; 32]).unwrap();
        assert_eq!(
            open_checkpoint(
                note.as_bytes(),
                "example.com/log42",
                &[stranger.verifier_key()]
            ),
            Err(CheckpointError::Note(NoteError::NoKnownSignature {
                signatures: 1
            }))
        );
        // A signature over a body that is not a strict checkpoint is refused after
        // verification, not trusted.
        let mut loose = SignedNote::new("example.com/log42\n1\nYmFuYW5hcw==\n").unwrap();
        loose.add_signature(&key).unwrap();
        assert_eq!(
            open_checkpoint(
                loose.to_string().as_bytes(),
                "example.com/log42",
                &[key.verifier_key()]
            ),
            Err(CheckpointError::RootLength { len: 7 })
        );
        // Fields that would not survive the text form are not signed.
        let mut bad = checkpoint();
        bad.origin = String::new();
        assert_eq!(
            sign_checkpoint(&bad, &key),
            Err(CheckpointError::EmptyOrigin)
        );
        let mut bad = checkpoint();
        bad.extensions = vec![String::new()];
        assert!(sign_checkpoint(&bad, &key).is_err());
        let mut bad = checkpoint();
        bad.origin = "two\nlines".into();
        assert!(sign_checkpoint(&bad, &key).is_err());
    }

    #[test]
    fn cosignatures_are_made_verified_and_kept_apart_from_log_signatures() {
        let (log, witness) = (log_key(), witness_key());
        let text = checkpoint().to_text();
        let note_text = sign_checkpoint(&checkpoint(), &log).unwrap();
        let mut note = SignedNote::parse(note_text.as_bytes()).unwrap();
        let line = cosign(&text, &witness, 1_700_000_000).unwrap();
        assert_eq!(line.name, "witness.example/w1");
        assert_eq!(line.key_id, witness.cosigner_key_id());
        assert_eq!(line.signature.len(), COSIGNATURE_BYTES);
        note.signatures.push(line.clone());
        let bytes = note.to_string();

        // The log key still opens it; the cosignature is an unknown line to the log key.
        let (_, opened) =
            open_checkpoint(bytes.as_bytes(), "example.com/log42", &[log.verifier_key()]).unwrap();
        assert_eq!(
            verify_cosignatures(&opened, &[witness.cosigner_key()]),
            Ok(vec![(witness.cosigner_key(), 1_700_000_000)])
        );
        assert_eq!(verify_cosignatures(&opened, &[]), Ok(Vec::new()));
        // The witness's type-0x01 key id differs, so a cosignature never counts as a log
        // signature, even from the same Ed25519 key.
        assert_eq!(
            open_checkpoint(
                bytes.as_bytes(),
                "example.com/log42",
                &[witness.verifier_key()]
            ),
            Err(CheckpointError::Note(NoteError::NoKnownSignature {
                signatures: 2
            }))
        );
        assert_eq!(
            crate::keys::key_id(
                "witness.example/w1",
                KEY_TYPE_COSIGNATURE_V1,
                &witness.public_key_bytes()
            ),
            line.key_id
        );

        // Another timestamp, another text, or a flipped bit: rejected.
        let mut cosignature = Cosignature::from_note_signature(&line).unwrap();
        cosignature.timestamp += 1;
        let moved = cosignature.to_note_signature();
        let invalid_error = CheckpointError::InvalidCosignature {
            name: "witness.example/w1".into(),
            key_id: witness.cosigner_key_id(),
        };
        let invalid = Err(invalid_error.clone());
        assert_eq!(
            verify_cosignature(&text, &moved, &witness.cosigner_key()),
            invalid
        );
        let mut other = checkpoint();
        other.size += 1;
        assert_eq!(
            verify_cosignature(&other.to_text(), &line, &witness.cosigner_key()),
            invalid
        );
        for byte in 0..COSIGNATURE_BYTES {
            let mut flipped = line.clone();
            flipped.signature[byte] ^= 0x40;
            assert!(verify_cosignature(&text, &flipped, &witness.cosigner_key()).is_err());
        }
        let mut bad_note = opened.clone();
        bad_note.signatures.push(moved);
        assert_eq!(
            verify_cosignatures(&bad_note, &[witness.cosigner_key()]),
            Err(invalid_error)
        );
        assert!(matches!(
            verify_cosignature(&text, &line, &log.cosigner_key()),
            Err(CheckpointError::WrongCosigner { .. })
        ));
    }

    #[test]
    fn cosignature_timestamps_stay_below_two_to_the_63() {
        let witness = witness_key();
        let text = checkpoint().to_text();
        assert!(cosign(&text, &witness, COSIGNATURE_TIMESTAMP_MAX).is_ok());
        assert_eq!(
            cosign(&text, &witness, COSIGNATURE_TIMESTAMP_MAX + 1),
            Err(CheckpointError::TimestampTooLarge {
                timestamp: COSIGNATURE_TIMESTAMP_MAX + 1
            })
        );
        let mut line = cosign(&text, &witness, 5).unwrap();
        line.signature[0] = 0x80;
        assert_eq!(
            Cosignature::from_note_signature(&line),
            Err(CheckpointError::TimestampTooLarge {
                timestamp: 0x8000_0000_0000_0005
            })
        );
        assert!(matches!(
            cosign("no newline", &witness, 5),
            Err(CheckpointError::Note(NoteError::TextMissingNewline))
        ));
    }
}
