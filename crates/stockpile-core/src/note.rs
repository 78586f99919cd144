//! C2SP signed notes (`signed-note` v1.0.0), the envelope of checkpoints and cosignatures.
//!
//! ```text
//! <text: one or more lines, each ending in U+000A>
//! <empty line>
//! — <key name> <base64(4-byte big-endian key id ‖ signature)>
//! ```
//!
//! The signed message is the text including its final newline, excluding the separator.
//! Parsing keeps every signature line, known or not, so that [`SignedNote::to_string`]
//! gives back the exact bytes (witnesses add lines; a log must pass them on untouched).
//! Verification ignores signatures from unknown keys, as the spec requires for key rotation
//! and cosigning, but rejects the whole note if a known key's signature is bad.

use crate::keys::{SignatureError, SignerKey, VerifierKey, is_valid_key_name};
use crate::limits::{NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// Start of every signature line: U+2014 EM DASH and a space (`e2 80 94 20`).
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// Length of the key id at the start of a decoded signature blob.
const KEY_ID_BYTES: usize = 4;

/// Why a note was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note exceeds [`NOTE_BYTES_MAX`].
    #[error("note is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The note is not UTF-8.
    #[error("note is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    /// An ASCII control character other than newline.
    #[error("note has control character {byte:#04x} at byte {offset}")]
    ControlCharacter { offset: usize, byte: u8 },
    /// The text is empty.
    #[error("note text is empty")]
    EmptyText,
    /// The text does not end in a newline.
    #[error("note text does not end in a newline")]
    TextMissingNewline,
    /// No empty line separates the text from the signatures.
    #[error("note has no empty line before its signatures")]
    MissingSeparator,
    /// Nothing after the separator.
    #[error("note has no signature lines")]
    NoSignatures,
    /// The last signature line does not end in a newline.
    #[error("last signature line does not end in a newline")]
    UnterminatedSignatureLine,
    /// More signature lines than [`NOTE_SIGNATURES_MAX`].
    #[error("note has more than {max} signature lines")]
    TooManySignatures { max: usize },
    /// A signature line is malformed; `line` counts from 1 after the separator.
    #[error("signature line {line}: {reason}")]
    BadSignatureLine { line: usize, reason: &'static str },
    /// A signature to add has an invalid key name.
    #[error("invalid key name {name:?}")]
    InvalidKeyName { name: String },
    /// Two configured keys share a name and key id, so a signature could not be attributed.
    #[error("two configured keys are named {name:?} with key id {key_id:08x}")]
    AmbiguousKey { name: String, key_id: u32 },
    /// A signature from a known key does not verify.
    #[error("signature by {name:?} (key id {key_id:08x}) does not verify: {reason}")]
    InvalidSignature {
        name: String,
        key_id: u32,
        reason: SignatureError,
    },
    /// No signature is from a known key.
    #[error("none of the note's {signatures} signatures is from a known key")]
    NoKnownSignature { signatures: usize },
}

/// One signature line: the key name, the key id and the signature bytes after the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name as written on the line.
    pub name: String,
    /// Key id, the first four bytes of the blob, big-endian.
    pub key_id: u32,
    /// The blob after the key id (64 bytes for Ed25519, 72 for a cosignature).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, `— <name> <base64(key id ‖ signature)>`, with its newline.
    pub fn to_line(&self) -> String {
        let mut blob = Vec::with_capacity(KEY_ID_BYTES + self.signature.len());
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        format!(
            "{SIGNATURE_LINE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(blob)
        )
    }

    /// Parses one signature line without its newline; `line` numbers the error.
    fn parse_line(text: &str, line: usize) -> Result<NoteSignature, NoteError> {
        let bad = |reason| NoteError::BadSignatureLine { line, reason };
        let rest = text
            .strip_prefix(SIGNATURE_LINE_PREFIX)
            .ok_or(bad("does not start with an em dash and a space"))?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or(bad("has no space between name and signature"))?;
        if !is_valid_key_name(name) {
            return Err(bad("key name is empty or holds white space or '+'"));
        }
        let blob = STANDARD
            .decode(encoded)
            .map_err(|_| bad("signature is not canonical standard base64"))?;
        // Like golang.org/x/mod: a key id and at least one signature byte.
        if blob.len() <= KEY_ID_BYTES {
            return Err(bad("signature is shorter than 5 bytes"));
        }
        let (id, signature) = blob.split_at(KEY_ID_BYTES);
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
            signature: signature.to_vec(),
        })
    }
}

/// Checks that `text` can be the text of a note: non-empty, ending in a newline, and with
/// no ASCII control character but newline.
pub fn validate_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::EmptyText);
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextMissingNewline);
    }
    check_control_characters(text)
}

fn check_control_characters(text: &str) -> Result<(), NoteError> {
    match text.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: text.as_bytes()[offset],
        }),
        None => Ok(()),
    }
}

/// Signs `text` (which must pass [`validate_text`]) with `key`.
pub fn sign(text: &str, key: &SignerKey) -> Result<NoteSignature, NoteError> {
    validate_text(text)?;
    Ok(NoteSignature {
        name: key.name().to_owned(),
        key_id: key.key_id(),
        signature: key.sign(text.as_bytes()).to_vec(),
    })
}

/// A signed note: the text and every signature line, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The signature lines, known and unknown, in their order in the note.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// A note with `text` (checked by [`validate_text`]) and no signatures yet.
    pub fn new(text: &str) -> Result<SignedNote, NoteError> {
        validate_text(text)?;
        Ok(SignedNote {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// Signs the text with `key` and appends the signature line.
    pub fn add_signature(&mut self, key: &SignerKey) -> Result<(), NoteError> {
        let signature = sign(&self.text, key)?;
        self.signatures.push(signature);
        Ok(())
    }

    /// Parses a signed note strictly: size, UTF-8, control characters, separator, and
    /// every signature line's form. Verifies nothing; see [`SignedNote::verify`].
    pub fn parse(bytes: &[u8]) -> Result<SignedNote, NoteError> {
        if bytes.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLarge {
                len: bytes.len(),
                max: NOTE_BYTES_MAX,
            });
        }
        let note = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        check_control_characters(note)?;
        // The text may hold empty lines; the last empty line is the separator.
        let split = note.rfind("\n\n").ok_or(NoteError::MissingSeparator)?;
        let (text, lines) = (&note[..split + 1], &note[split + 2..]);
        if lines.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        let Some(lines) = lines.strip_suffix('\n') else {
            return Err(NoteError::UnterminatedSignatureLine);
        };
        let mut signatures = Vec::new();
        for (number, line) in lines.split('\n').enumerate() {
            if number == NOTE_SIGNATURES_MAX {
                return Err(NoteError::TooManySignatures {
                    max: NOTE_SIGNATURES_MAX,
                });
            }
            signatures.push(NoteSignature::parse_line(line, number + 1)?);
        }
        Ok(SignedNote {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Verifies the note against `keys` and returns the known keys that signed it.
    ///
    /// A signature is from a known key when both its name and key id match; others are
    /// ignored. Fails if a known key's signature does not verify, or if no known key signed.
    pub fn verify(&self, keys: &[VerifierKey]) -> Result<Vec<VerifierKey>, NoteError> {
        let mut signers: Vec<VerifierKey> = Vec::new();
        for signature in &self.signatures {
            let mut matching = keys
                .iter()
                .filter(|k| k.name == signature.name && k.key_id == signature.key_id);
            let Some(key) = matching.next() else {
                continue;
            };
            if matching.any(|other| other.public != key.public) {
                return Err(NoteError::AmbiguousKey {
                    name: key.name.clone(),
                    key_id: key.key_id,
                });
            }
            key.verify(self.text.as_bytes(), &signature.signature)
                .map_err(|reason| NoteError::InvalidSignature {
                    name: signature.name.clone(),
                    key_id: signature.key_id,
                    reason,
                })?;
            if !signers.contains(key) {
                signers.push(key.clone());
            }
        }
        if signers.is_empty() {
            return Err(NoteError::NoKnownSignature {
                signatures: self.signatures.len(),
            });
        }
        Ok(signers)
    }
}

impl fmt::Display for SignedNote {
    /// The note's bytes: text, empty line, signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            f.write_str(&signature.to_line())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_LINE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_LINE: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
    const FOO_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const FOO_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn peter() -> VerifierKey {
        VerifierKey::parse(PETER_VKEY).unwrap()
    }

    fn enoch() -> VerifierKey {
        VerifierKey::parse(ENOCH_VKEY).unwrap()
    }

    fn peter_note() -> String {
        format!("{TEXT}\n{PETER_LINE}")
    }

    #[test]
    fn peter_neumann_signature_is_reproduced_byte_for_byte() {
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        assert_eq!(signer.public_key_bytes(), peter().public_key_bytes());
        let signature = sign(TEXT, &signer).unwrap();
        assert_eq!(signature.to_line(), PETER_LINE);
        let mut note = SignedNote::new(TEXT).unwrap();
        note.add_signature(&signer).unwrap();
        assert_eq!(note.to_string(), peter_note());
        assert!(PETER_LINE.as_bytes().starts_with(&[0xe2, 0x80, 0x94, 0x20]));
    }

    #[test]
    fn published_notes_parse_round_trip_and_verify() {
        let cases = [
            (peter_note(), peter(), TEXT.to_owned()),
            (format!("{TEXT}\n{ENOCH_LINE}"), enoch(), TEXT.to_owned()),
            (
                FOO_NOTE.to_owned(),
                VerifierKey::parse(FOO_VKEY).unwrap(),
                "This is an example message.\n".to_owned(),
            ),
        ];
        for (bytes, key, text) in cases {
            let note = SignedNote::parse(bytes.as_bytes()).unwrap();
            assert_eq!(note.text, text);
            assert_eq!(note.to_string(), bytes);
            assert_eq!(note.signatures.len(), 1);
            let signature = &note.signatures[0];
            // The key id of the blob is the key's, which recomputes from name and key.
            assert_eq!(signature.key_id, key.key_id);
            assert_eq!(
                crate::keys::key_id(&key.name, 0x01, &key.public_key_bytes()),
                key.key_id
            );
            assert_eq!(signature.signature.len(), 64);
            // The signed message is the text with its final newline, without the separator.
            assert_eq!(key.verify(text.as_bytes(), &signature.signature), Ok(()));
            assert_eq!(
                note.verify(std::slice::from_ref(&key)),
                Ok(vec![key.clone()])
            );
        }
    }

    #[test]
    fn unknown_signatures_are_ignored_and_known_ones_required() {
        let both = format!("{TEXT}\n{PETER_LINE}{ENOCH_LINE}");
        let note = SignedNote::parse(both.as_bytes()).unwrap();
        assert_eq!(note.to_string(), both);
        assert_eq!(note.verify(&[peter()]), Ok(vec![peter()]));
        assert_eq!(note.verify(&[enoch()]), Ok(vec![enoch()]));
        assert_eq!(note.verify(&[enoch(), peter()]), Ok(vec![peter(), enoch()]));
        assert_eq!(
            note.verify(&[]),
            Err(NoteError::NoKnownSignature { signatures: 2 })
        );
        // Same name, other key id; same key id, other name: both unknown, not errors.
        let signer = SignerKey::from_seed("PeterNeumann", [5; 32]).unwrap();
        let same_name = signer.verifier_key();
        let mut same_id = enoch();
        same_id.key_id = peter().key_id;
        assert_eq!(
            note.verify(&[same_name.clone(), same_id]),
            Err(NoteError::NoKnownSignature { signatures: 2 })
        );
        assert_eq!(note.verify(&[same_name, peter()]), Ok(vec![peter()]));
    }

    #[test]
    fn a_bad_signature_from_a_known_key_rejects_the_note() {
        // Enoch's signature relabelled as Peter's: Peter is known, so it must verify.
        let forged = NoteSignature {
            name: "PeterNeumann".into(),
            key_id: peter().key_id,
            signature: SignedNote::parse(format!("{TEXT}\n{ENOCH_LINE}").as_bytes())
                .unwrap()
                .signatures[0]
                .signature
                .clone(),
        };
        let mut note = SignedNote::parse(format!("{TEXT}\n{ENOCH_LINE}").as_bytes()).unwrap();
        note.signatures.push(forged);
        assert_eq!(
            note.verify(&[peter(), enoch()]),
            Err(NoteError::InvalidSignature {
                name: "PeterNeumann".into(),
                key_id: peter().key_id,
                reason: SignatureError::Invalid,
            })
        );
        // Two configured keys with one name and id: refuse to guess.
        let mut twin = enoch();
        twin.name = "PeterNeumann".into();
        twin.key_id = peter().key_id;
        let note = SignedNote::parse(peter_note().as_bytes()).unwrap();
        assert_eq!(
            note.verify(&[peter(), twin]),
            Err(NoteError::AmbiguousKey {
                name: "PeterNeumann".into(),
                key_id: peter().key_id
            })
        );
        // A repeated line from a known key is verified and reported once.
        let repeated = format!("{TEXT}\n{PETER_LINE}{PETER_LINE}");
        let note = SignedNote::parse(repeated.as_bytes()).unwrap();
        assert_eq!(note.verify(&[peter()]), Ok(vec![peter()]));
    }

    #[test]
    fn flipping_any_byte_of_a_signed_note_fails() {
        let original = format!("{TEXT}\n{PETER_LINE}");
        let keys = [peter()];
        for position in 0..original.len() {
            for mask in [0x01u8, 0x02, 0x20, 0x80] {
                let mut bytes = original.clone().into_bytes();
                bytes[position] ^= mask;
                let verdict = SignedNote::parse(&bytes).and_then(|note| note.verify(&keys));
                assert!(
                    verdict.is_err(),
                    "byte {position} ^ {mask:#04x} still verifies"
                );
            }
        }
    }

    #[test]
    fn text_may_hold_empty_lines() {
        let signer = SignerKey::from_seed("example.com/poet", [8; 32]).unwrap();
        let text = "stanza one\n\nstanza two\n\n";
        let mut note = SignedNote::new(text).unwrap();
        note.add_signature(&signer).unwrap();
        let bytes = note.to_string();
        let parsed = SignedNote::parse(bytes.as_bytes()).unwrap();
        assert_eq!(parsed.text, text);
        assert_eq!(
            parsed.verify(&[signer.verifier_key()]),
            Ok(vec![signer.verifier_key()])
        );
        // The smallest text, a single empty line.
        let mut note = SignedNote::new("\n").unwrap();
        note.add_signature(&signer).unwrap();
        assert_eq!(
            SignedNote::parse(note.to_string().as_bytes()).unwrap(),
            note
        );
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let line = PETER_LINE;
        let bad_line = |line: usize, reason| NoteError::BadSignatureLine { line, reason };
        let cases: Vec<(Vec<u8>, NoteError)> = vec![
            (
                format!("{TEXT}{line}").into_bytes(),
                NoteError::MissingSeparator,
            ),
            (format!("{TEXT}\n").into_bytes(), NoteError::NoSignatures),
            (
                format!("{TEXT}\n{}", line.trim_end()).into_bytes(),
                NoteError::UnterminatedSignatureLine,
            ),
            (
                format!("{TEXT}\n- PeterNeumann AAAAAAA=\n").into_bytes(),
                bad_line(1, "does not start with an em dash and a space"),
            ),
            (
                format!("{TEXT}\n{line}\u{2014}PeterNeumann AAAAAAA=\n").into_bytes(),
                bad_line(2, "does not start with an em dash and a space"),
            ),
            (
                format!("{TEXT}\n\u{2014} PeterNeumann\n").into_bytes(),
                bad_line(1, "has no space between name and signature"),
            ),
            (
                format!("{TEXT}\n\u{2014} Peter+Neumann AAAAAAA=\n").into_bytes(),
                bad_line(1, "key name is empty or holds white space or '+'"),
            ),
            (
                format!("{TEXT}\n\u{2014}  AAAAAAA=\n").into_bytes(),
                bad_line(1, "key name is empty or holds white space or '+'"),
            ),
            (
                format!("{TEXT}\n\u{2014} PeterNeumann AAAAAAA\n").into_bytes(),
                bad_line(1, "signature is not canonical standard base64"),
            ),
            (
                format!("{TEXT}\n\u{2014} PeterNeumann AAAAAAB=\n").into_bytes(),
                bad_line(1, "signature is not canonical standard base64"),
            ),
            (
                format!("{TEXT}\n\u{2014} PeterNeumann \n").into_bytes(),
                bad_line(1, "signature is shorter than 5 bytes"),
            ),
            (
                format!("{TEXT}\n\u{2014} PeterNeumann AAAAAA==\n").into_bytes(),
                bad_line(1, "signature is shorter than 5 bytes"),
            ),
            (
                format!("{TEXT}\n{}", line.repeat(NOTE_SIGNATURES_MAX + 1)).into_bytes(),
                NoteError::TooManySignatures {
                    max: NOTE_SIGNATURES_MAX,
                },
            ),
            (
                format!("bad\rtext\n\n{line}").into_bytes(),
                NoteError::ControlCharacter {
                    offset: 3,
                    byte: b'\r',
                },
            ),
            (
                format!("tab\ttext\n\n{line}").into_bytes(),
                NoteError::ControlCharacter {
                    offset: 3,
                    byte: b'\t',
                },
            ),
            (
                [TEXT.as_bytes(), b"\n\xff", line.as_bytes()].concat(),
                NoteError::NotUtf8 {
                    valid_up_to: TEXT.len() + 1,
                },
            ),
            (
                vec![b'a'; NOTE_BYTES_MAX + 1],
                NoteError::TooLarge {
                    len: NOTE_BYTES_MAX + 1,
                    max: NOTE_BYTES_MAX,
                },
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                SignedNote::parse(&bytes),
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // Exactly the maximum number of signature lines is fine.
        let most = format!("{TEXT}\n{}", line.repeat(NOTE_SIGNATURES_MAX));
        assert_eq!(
            SignedNote::parse(most.as_bytes()).unwrap().signatures.len(),
            NOTE_SIGNATURES_MAX
        );
    }

    #[test]
    fn texts_that_cannot_be_notes_are_not_signed() {
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        assert_eq!(sign("", &signer), Err(NoteError::EmptyText));
        assert_eq!(
            sign("no newline", &signer),
            Err(NoteError::TextMissingNewline)
        );
        assert_eq!(
            sign("bell\u{7}\n", &signer),
            Err(NoteError::ControlCharacter { offset: 4, byte: 7 })
        );
        assert_eq!(SignedNote::new("x"), Err(NoteError::TextMissingNewline));
    }
}
