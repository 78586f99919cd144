//! C2SP tlog-proof v1 files (`.tlog-proof`): offline inclusion proofs.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! [extra <base64>]
//! index <n>
//! <base64 audit-path hash>
//! …
//! <empty line>
//! <signed checkpoint note, verbatim, with all its signature and cosignature lines>
//! ```
//!
//! This is what an inspector takes away: one entry's index and audit path and a signed
//! checkpoint, all checkable offline against the log's origin and keys. The `extra` data is
//! not authenticated and is only carried.

use crate::checkpoint::{Checkpoint, CheckpointError, open_checkpoint};
use crate::hash::Hash32;
use crate::keys::VerifierKey;
use crate::limits::{NOTE_BYTES_MAX, PROOF_HASHES_MAX};
use crate::merkle::{ProofError, leaf_hash, verify_inclusion};
use crate::note::{NoteError, SignedNote};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// First line of every tlog-proof v1 file.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Largest `extra` payload read, decoded. The spec sets no bound; the known uses (a VRF
/// proof, some context for rebuilding a record hash) are far below this, and the bound
/// keeps a hostile file from costing memory.
pub const TLOG_PROOF_EXTRA_BYTES_MAX: usize = 8 * 1024;

/// Largest tlog-proof file read: the checkpoint note plus room for the header, the extra
/// line, the index and a full audit path.
pub const TLOG_PROOF_BYTES_MAX: usize = NOTE_BYTES_MAX + 16 * 1024;

/// Longest possible text before the checkpoint: header line, extra line (base64 of the
/// largest extra), index line (20 digits at most), a full path of 44-character base64
/// hashes, and the empty line.
const PROOF_HEADER_BYTES_MAX: usize = (TLOG_PROOF_HEADER.len() + 1)
    + ("extra ".len() + TLOG_PROOF_EXTRA_BYTES_MAX.div_ceil(3) * 4 + 1)
    + ("index ".len() + 20 + 1)
    + PROOF_HASHES_MAX * (44 + 1)
    + 1;

const _: () = assert!(PROOF_HEADER_BYTES_MAX <= TLOG_PROOF_BYTES_MAX - NOTE_BYTES_MAX);

/// Why a tlog-proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// The file exceeds [`TLOG_PROOF_BYTES_MAX`].
    #[error("proof file is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// The file is not UTF-8.
    #[error("proof file is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    /// The first line is not `c2sp.org/tlog-proof@v1`.
    #[error("proof file does not start with \"c2sp.org/tlog-proof@v1\"")]
    MissingHeader,
    /// The file ends before the empty line that precedes the checkpoint.
    #[error("proof file ends before the checkpoint")]
    Truncated,
    /// The `extra` line is not canonical base64, or is too long.
    #[error("extra line is not canonical standard base64 of at most {max} bytes")]
    InvalidExtra { max: usize },
    /// The `index` line is missing or not a canonical decimal `u64`.
    #[error("index line {text:?} is not \"index\" and a decimal u64 without leading zeros")]
    InvalidIndex { text: String },
    /// A proof line is not the base64 of a 32-byte hash; `line` counts from 1 in the file.
    #[error("line {line} is not a base64 SHA-256 hash")]
    InvalidHash { line: usize },
    /// More proof hashes than [`PROOF_HASHES_MAX`].
    #[error("more than {max} proof hashes")]
    TooManyHashes { max: usize },
    /// The checkpoint note is malformed.
    #[error("checkpoint note: {0}")]
    Note(#[from] NoteError),
    /// The checkpoint does not verify or is for another log.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The index is not inside the checkpointed tree.
    #[error("index {index} is not below checkpoint size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    /// The audit path does not lead from the leaf to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Inclusion(#[from] ProofError),
}

/// A parsed tlog-proof: extra data, leaf index, audit path and the signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogProof {
    /// Unauthenticated application data, if the file has an `extra` line.
    pub extra: Option<Vec<u8>>,
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// Audit path, from the leaf's sibling up to the root's child.
    pub path: Vec<Hash32>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

/// Parses an ASCII decimal `u64` with no sign and no leading zeros (except `0` itself).
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text.len() == 1 || !text.starts_with('0'));
    if !canonical {
        return None;
    }
    text.parse().ok()
}

impl TlogProof {
    /// Parses a tlog-proof file strictly; the checkpoint must be a well-formed signed note
    /// (its signatures are checked by [`TlogProof::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<TlogProof, TlogProofError> {
        if bytes.len() > TLOG_PROOF_BYTES_MAX {
            return Err(TlogProofError::TooLarge {
                len: bytes.len(),
                max: TLOG_PROOF_BYTES_MAX,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| TlogProofError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let mut lines = Lines {
            rest: text,
            number: 0,
        };
        if lines.next()? != TLOG_PROOF_HEADER {
            return Err(TlogProofError::MissingHeader);
        }
        let mut line = lines.next()?;
        let mut extra = None;
        if let Some(encoded) = line.strip_prefix("extra ") {
            let invalid = TlogProofError::InvalidExtra {
                max: TLOG_PROOF_EXTRA_BYTES_MAX,
            };
            // Checked before decoding so that the decoded buffer stays bounded.
            if encoded.len() > TLOG_PROOF_EXTRA_BYTES_MAX.div_ceil(3) * 4 {
                return Err(invalid);
            }
            let data = STANDARD.decode(encoded).map_err(|_| invalid.clone())?;
            if data.len() > TLOG_PROOF_EXTRA_BYTES_MAX {
                return Err(invalid);
            }
            extra = Some(data);
            line = lines.next()?;
        }
        let index = line
            .strip_prefix("index ")
            .and_then(parse_decimal)
            .ok_or_else(|| TlogProofError::InvalidIndex {
                text: line.to_owned(),
            })?;
        let mut path = Vec::new();
        loop {
            let line = lines.next()?;
            if line.is_empty() {
                break;
            }
            if path.len() == PROOF_HASHES_MAX {
                return Err(TlogProofError::TooManyHashes {
                    max: PROOF_HASHES_MAX,
                });
            }
            let hash = STANDARD
                .decode(line)
                .ok()
                .and_then(|bytes| Hash32::from_slice(&bytes))
                .ok_or(TlogProofError::InvalidHash { line: lines.number })?;
            path.push(hash);
        }
        SignedNote::parse(lines.rest.as_bytes())?;
        Ok(TlogProof {
            extra,
            index,
            path,
            checkpoint: lines.rest.to_owned(),
        })
    }

    /// Verifies the proof for `leaf_data` (hashed as an RFC 6962 leaf) against the log's
    /// origin and keys; returns the checkpoint it is included in.
    pub fn verify(
        &self,
        leaf_data: &[u8],
        origin: &str,
        log_keys: &[VerifierKey],
    ) -> Result<Checkpoint, TlogProofError> {
        self.verify_leaf_hash(&leaf_hash(leaf_data), origin, log_keys)
    }

    /// Like [`TlogProof::verify`], for a caller that already has the leaf hash.
    pub fn verify_leaf_hash(
        &self,
        leaf_hash: &Hash32,
        origin: &str,
        log_keys: &[VerifierKey],
    ) -> Result<Checkpoint, TlogProofError> {
        let (checkpoint, _note) = open_checkpoint(self.checkpoint.as_bytes(), origin, log_keys)?;
        if self.index >= checkpoint.size {
            return Err(TlogProofError::IndexBeyondSize {
                index: self.index,
                size: checkpoint.size,
            });
        }
        verify_inclusion(
            self.index,
            checkpoint.size,
            leaf_hash,
            &self.path,
            &checkpoint.root,
        )?;
        Ok(checkpoint)
    }
}

/// Newline-terminated lines, counted, with the unread rest kept.
struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Lines<'a> {
    fn next(&mut self) -> Result<&'a str, TlogProofError> {
        let (line, rest) = self
            .rest
            .split_once('\n')
            .ok_or(TlogProofError::Truncated)?;
        self.rest = rest;
        self.number += 1;
        Ok(line)
    }
}

impl fmt::Display for TlogProof {
    /// The file's text: header, extra, index, path, empty line, checkpoint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{TLOG_PROOF_HEADER}")?;
        if let Some(extra) = &self.extra {
            writeln!(f, "extra {}", STANDARD.encode(extra))?;
        }
        writeln!(f, "index {}", self.index)?;
        for hash in &self.path {
            writeln!(f, "{}", hash.to_base64())?;
        }
        writeln!(f)?;
        f.write_str(&self.checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{cosign, sign_checkpoint, verify_cosignatures};
    use crate::keys::SignerKey;
    use crate::merkle::MerkleTree;

    const ORIGIN: &str = "example.com/fancylog";

    fn log_key() -> SignerKey {
        SignerKey::from_seed(ORIGIN, [21; 32]).unwrap()
    }

    fn witness_key() -> SignerKey {
        SignerKey::from_seed("witness1.example", [22; 32]).unwrap()
    }

    fn entry(index: u64) -> Vec<u8> {
        format!("entry {index}").into_bytes()
    }

    /// A log of 11 entries, its signed and cosigned checkpoint, and the proof for `index`.
    fn proof_for(index: u64, extra: Option<Vec<u8>>) -> TlogProof {
        let mut tree = MerkleTree::new();
        for i in 0..11 {
            tree.push_data(&entry(i));
        }
        let checkpoint = Checkpoint {
            origin: ORIGIN.into(),
            size: tree.size(),
            root: tree.root(),
            extensions: Vec::new(),
        };
        let signed = sign_checkpoint(&checkpoint, &log_key()).unwrap();
        let mut note = SignedNote::parse(signed.as_bytes()).unwrap();
        note.signatures
            .push(cosign(&note.text, &witness_key(), 1_700_000_000).unwrap());
        TlogProof {
            extra,
            index,
            path: tree.inclusion_proof(index, tree.size()).unwrap(),
            checkpoint: note.to_string(),
        }
    }

    #[test]
    fn proofs_round_trip_and_verify() {
        let keys = [log_key().verifier_key()];
        for index in 0..11 {
            for extra in [None, Some(b"vrf proof".to_vec()), Some(Vec::new())] {
                let proof = proof_for(index, extra);
                let text = proof.to_string();
                assert!(text.starts_with("c2sp.org/tlog-proof@v1\n"));
                let parsed = TlogProof::parse(text.as_bytes()).unwrap();
                assert_eq!(parsed, proof);
                assert_eq!(parsed.to_string(), text);
                let checkpoint = parsed.verify(&entry(index), ORIGIN, &keys).unwrap();
                assert_eq!((checkpoint.origin.as_str(), checkpoint.size), (ORIGIN, 11));
            }
        }
    }

    #[test]
    fn verification_failures_name_their_cause() {
        let keys = [log_key().verifier_key()];
        let proof = proof_for(4, None);
        assert!(matches!(
            proof.verify(&entry(5), ORIGIN, &keys),
            Err(TlogProofError::Inclusion(ProofError::RootMismatch { .. }))
        ));
        assert!(matches!(
            proof.verify(&entry(4), "example.com/other", &keys),
            Err(TlogProofError::Checkpoint(
                CheckpointError::WrongOrigin { .. }
            ))
        ));
        let stranger = SignerKey::from_seed(ORIGIN, [1; 32]).unwrap();
        assert!(matches!(
            proof.verify(&entry(4), ORIGIN, &[stranger.verifier_key()]),
            Err(TlogProofError::Checkpoint(CheckpointError::Note(
                NoteError::NoKnownSignature { .. }
            )))
        ));
        let mut beyond = proof.clone();
        beyond.index = 11;
        assert_eq!(
            beyond.verify(&entry(4), ORIGIN, &keys),
            Err(TlogProofError::IndexBeyondSize {
                index: 11,
                size: 11
            })
        );
        let mut moved = proof.clone();
        moved.index = 5;
        assert!(moved.verify(&entry(4), ORIGIN, &keys).is_err());
        let mut short = proof;
        short.path.pop();
        assert!(matches!(
            short.verify(&entry(4), ORIGIN, &keys),
            Err(TlogProofError::Inclusion(ProofError::ProofTooShort { .. }))
        ));
    }

    #[test]
    fn flipping_any_authenticated_byte_fails() {
        // Under a policy of the log key plus the witness, every byte but the extra line's
        // is covered by the proof or a signature; the extra data is unauthenticated by
        // design, so flipping it changes nothing.
        let keys = [log_key().verifier_key()];
        let witness = witness_key().cosigner_key();
        let text = proof_for(6, Some(b"context".to_vec())).to_string();
        let extra_line = "extra Y29udGV4dA==\n";
        let extra_start = text.find(extra_line).unwrap() + "extra ".len();
        let extra_end = extra_start + extra_line.len() - "extra ".len() - 1;
        for position in 0..text.len() {
            for mask in [0x01u8, 0x10, 0x80] {
                let mut bytes = text.clone().into_bytes();
                bytes[position] ^= mask;
                let accepted = TlogProof::parse(&bytes).is_ok_and(|proof| {
                    proof.verify(&entry(6), ORIGIN, &keys).is_ok()
                        && SignedNote::parse(proof.checkpoint.as_bytes()).is_ok_and(|note| {
                            verify_cosignatures(&note, std::slice::from_ref(&witness))
                                .is_ok_and(|cosigners| cosigners.len() == 1)
                        })
                });
                if (extra_start..extra_end).contains(&position) {
                    continue;
                }
                assert!(!accepted, "byte {position} ^ {mask:#04x} still verifies");
            }
        }
    }

    #[test]
    fn spec_example_header_parses() {
        // c2sp.org/tlog-proof example, with a real checkpoint in place of the elided one.
        let header = "c2sp.org/tlog-proof@v1\n\
                      extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n\
                      index 73894\n\
                      gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n\
                      B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n\
                      EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n\
                      RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n\
                      AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n\n";
        let checkpoint = proof_for(0, None).checkpoint;
        let text = format!("{header}{checkpoint}");
        let proof = TlogProof::parse(text.as_bytes()).unwrap();
        assert_eq!(proof.index, 73894);
        assert_eq!(proof.path.len(), 5);
        assert_eq!(
            proof.path[0].to_base64(),
            "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ="
        );
        assert!(
            proof
                .extra
                .as_ref()
                .unwrap()
                .starts_with(b"age-v1.2.1-darwin-arm64.tar.gz")
        );
        assert_eq!(proof.to_string(), text);
    }

    #[test]
    fn malformed_proofs_are_rejected() {
        let checkpoint = proof_for(0, None).checkpoint;
        let hash = Hash32::digest(b"x").to_base64();
        let check = |text: String, expected: TlogProofError| {
            assert_eq!(TlogProof::parse(text.as_bytes()), Err(expected), "{text:?}");
        };
        check(
            format!("c2sp.org/tlog-proof@v2\nindex 0\n\n{checkpoint}"),
            TlogProofError::MissingHeader,
        );
        check(
            format!("index 0\n\n{checkpoint}"),
            TlogProofError::MissingHeader,
        );
        for index in ["01", "-1", "+1", "", "18446744073709551616", "1 "] {
            check(
                format!("{TLOG_PROOF_HEADER}\nindex {index}\n\n{checkpoint}"),
                TlogProofError::InvalidIndex {
                    text: format!("index {index}"),
                },
            );
        }
        check(
            format!("{TLOG_PROOF_HEADER}\n{hash}\n\n{checkpoint}"),
            TlogProofError::InvalidIndex { text: hash.clone() },
        );
        check(
            format!("{TLOG_PROOF_HEADER}\nextra not base64!\nindex 0\n\n{checkpoint}"),
            TlogProofError::InvalidExtra {
                max: TLOG_PROOF_EXTRA_BYTES_MAX,
            },
        );
        check(
            format!(
                "{TLOG_PROOF_HEADER}\nextra {}\nindex 0\n\n{checkpoint}",
                STANDARD.encode(vec![0u8; TLOG_PROOF_EXTRA_BYTES_MAX + 1])
            ),
            TlogProofError::InvalidExtra {
                max: TLOG_PROOF_EXTRA_BYTES_MAX,
            },
        );
        check(
            format!("{TLOG_PROOF_HEADER}\nindex 0\n{hash}\nYmFuYW5hcw==\n\n{checkpoint}"),
            TlogProofError::InvalidHash { line: 4 },
        );
        check(
            format!("{TLOG_PROOF_HEADER}\nindex 0\n {hash}\n\n{checkpoint}"),
            TlogProofError::InvalidHash { line: 3 },
        );
        check(
            format!(
                "{TLOG_PROOF_HEADER}\nindex 0\n{}\n{checkpoint}",
                format!("{hash}\n").repeat(PROOF_HASHES_MAX + 1)
            ),
            TlogProofError::TooManyHashes {
                max: PROOF_HASHES_MAX,
            },
        );
        check(
            format!("{TLOG_PROOF_HEADER}\nindex 0\n{hash}\n"),
            TlogProofError::Truncated,
        );
        check(
            format!("{TLOG_PROOF_HEADER}\nindex 0\n\nnot a note\n"),
            TlogProofError::Note(NoteError::MissingSeparator),
        );
        check(
            format!("{TLOG_PROOF_HEADER}\nindex 0\n\n"),
            TlogProofError::Note(NoteError::MissingSeparator),
        );
        let big = vec![b'a'; TLOG_PROOF_BYTES_MAX + 1];
        assert_eq!(
            TlogProof::parse(&big),
            Err(TlogProofError::TooLarge {
                len: TLOG_PROOF_BYTES_MAX + 1,
                max: TLOG_PROOF_BYTES_MAX
            })
        );
        assert_eq!(
            TlogProof::parse(b"c2sp.org/tlog-proof@v1\n\xff\n"),
            Err(TlogProofError::NotUtf8 { valid_up_to: 23 })
        );
        // Exactly the maximum number of hashes parses.
        let most = format!(
            "{TLOG_PROOF_HEADER}\nindex 0\n{}\n{checkpoint}",
            format!("{hash}\n").repeat(PROOF_HASHES_MAX)
        );
        assert_eq!(
            TlogProof::parse(most.as_bytes()).unwrap().path.len(),
            PROOF_HASHES_MAX
        );
    }
}
