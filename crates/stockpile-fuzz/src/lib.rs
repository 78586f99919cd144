//! Fuzz targets: one `pub fn <target>(data: &[u8])` per reader of hostile bytes. Each
//! feeds the bytes to the real parsers and verifiers and asserts what must hold for ANY
//! input — never a panic, and beyond that the format's own promises (a decode
//! re-encodes to the same value, a note prints back to its bytes, a proof that verifies
//! is about the real tree, a clean verification folds). A failed assertion is a panic,
//! which cargo fuzz and the smoke test report as a crash.
//!
//! # Layout
//! - [`fixtures`]: the fixed world (a small scenario ledger, its keys and tree, a fold
//!   of its first entries, the corpus trust root), built once per process.
//! - [`seeds`]: valid inputs for every target, from the fixture ledger and the files of
//!   `tests/vectors/corpus`; `examples/write_corpus.rs` writes them for cargo fuzz.
//! - [`mutate`]: the smoke test's small deterministic mutator.
//! - The targets, in [`TARGETS`] order, and [`run`] to call one by name.
//!
//! # Invariants
//! - No I/O, no clock, no randomness: the same bytes always do the same thing.
//! - Inputs beyond [`EXPORT_FUZZ_BYTES_MAX`] are skipped by the export target only;
//!   every other reader has its own size limit, which the fuzzer is meant to test.

pub mod fixtures;
pub mod mutate;
pub mod seeds;

use bytes::Bytes;
use fixtures::fixtures;
use stockpile_core::checkpoint::{Checkpoint, RawCheckpoint, open_checkpoint, sign_checkpoint};
use stockpile_core::hash::{Hash32, entry_link_hash};
use stockpile_core::merkle::{ProofError, leaf_hash, verify_consistency, verify_inclusion};
use stockpile_core::note::{SignedNote, validate_text};
use stockpile_core::tlog_proof::{TlogProof, TlogProofError};
use stockpile_ledger::export::{ExportReader, ExportWriter};
use stockpile_ledger::prove::{check_consistency, check_inclusion};
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_proto::envelope::{
    DecodedEntry, EntryVerdict, decode_entry, decode_submission, encode_entry, encode_submission,
};
use stockpile_proto::event_codec::{decode_event, encode_event};
use stockpile_proto::export_codec::ExportRecord;
use stockpile_views::fold::{FoldError, Outcome, ViewFold};

/// Largest input the export target reads: the verifier is linear in the export, and a
/// fuzzer needs many executions a second. Records up to this size are all reachable.
pub const EXPORT_FUZZ_BYTES_MAX: usize = 256 * 1024;

/// A fuzz target: takes any bytes, panics only when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [(&str, Target); 8] = [
    ("submission", submission),
    ("entry", entry),
    ("note", note),
    ("checkpoint", checkpoint),
    ("tlog_proof", tlog_proof),
    ("merkle", merkle),
    ("export", export),
    ("consistency_file", consistency_file),
];

/// Runs the target called `name`; `false` if there is none.
pub fn run(name: &str, data: &[u8]) -> bool {
    match TARGETS.iter().find(|(target, _)| *target == name) {
        Some((_, target)) => {
            target(data);
            true
        }
        None => false,
    }
}

/// Submission bytes, as the sequencer receives them from anyone.
///
/// Checks: a decoded submission re-encodes to one that decodes to the same parts; its
/// event re-encodes to bytes that decode to the same event; chained after the fixture
/// ledger as an accepted or rejected entry, the fold places it (whatever the event says,
/// the admission code gives a verdict, never a panic).
pub fn submission(data: &[u8]) {
    let Ok(decoded) = decode_submission(data) else {
        return;
    };
    let again = encode_submission(&decoded.event_bytes, &decoded.key_id, &decoded.signature);
    let back = decode_submission(&again).expect("a re-encoded submission decodes");
    assert_eq!(back.event_bytes, decoded.event_bytes);
    assert_eq!(back.key_id, decoded.key_id);
    assert_eq!(back.signature, decoded.signature);
    assert_eq!(back.event, decoded.event);
    let event_again = decode_event(&encode_event(&decoded.event))
        .expect("a re-encoded event decodes with the same shape checks");
    assert_eq!(event_again, decoded.event, "the event codec round-trips");
    let verdict = match data.first().map(|byte| byte & 1) {
        Some(1) => EntryVerdict::Rejected {
            code: "fuzz.rejected".into(),
            reason: "fuzz".into(),
        },
        _ => EntryVerdict::Accepted,
    };
    chain_after_prefix(Bytes::copy_from_slice(data), verdict, None);
}

/// Ledger entry bytes, as a projector or verifier reads them from the ledger.
///
/// Checks: a decoded entry re-encodes to bytes that decode to the same entry; a fresh
/// fold takes exactly the entries that decode, claim index 0 and link to zero (else the
/// matching error and nothing changed), and its head link is the entry's link hash; the
/// entry's content, re-chained after the fixture ledger, is placed by the fold.
pub fn entry(data: &[u8]) {
    let f = fixtures();
    let decoded = decode_entry(data);
    let mut fresh = ViewFold::new(f.trust.origin.clone(), &f.trust.ledger_authority_keys());
    let applied = fresh.apply(data);
    let entry = match decoded {
        Err(_) => {
            assert!(
                matches!(applied, Err(FoldError::Malformed { index: 0, .. })),
                "an undecodable entry must be refused as malformed: {applied:?}"
            );
            assert_eq!(fresh.entries(), 0);
            return;
        }
        Ok(entry) => entry,
    };
    let again = encode_entry(&entry);
    assert_eq!(
        decode_entry(&again).as_ref(),
        Ok(&entry),
        "the entry codec round-trips"
    );
    match applied {
        Ok(applied) => {
            assert_eq!(entry.index, 0);
            assert_eq!(entry.prev_entry_hash, Hash32::ZERO);
            assert_eq!(applied.link, entry_link_hash(data));
            assert_eq!(fresh.entries(), 1);
            assert_eq!(fresh.head_link(), applied.link);
        }
        Err(FoldError::IndexMismatch { .. }) => {
            assert_ne!(entry.index, 0);
            assert_eq!(fresh.entries(), 0);
        }
        Err(FoldError::BrokenLink { .. }) => {
            assert_eq!(entry.index, 0);
            assert_ne!(entry.prev_entry_hash, Hash32::ZERO);
            assert_eq!(fresh.entries(), 0);
        }
        Err(error) => panic!("a decodable entry refused by a fresh fold for {error}"),
    }
    chain_after_prefix(entry.submission, entry.verdict, Some(entry.recorded_at));
}

/// Chains `submission` after the fixture prefix as the next entry (right index, link
/// and time) and folds it: the fold must place it and report a consistent outcome.
fn chain_after_prefix(
    submission: Bytes,
    verdict: EntryVerdict,
    recorded_at: Option<stockpile_core::time::TimestampMs>,
) {
    let f = fixtures();
    let mut fold = f.prefix.snapshot();
    let last = fold.last_recorded_at().expect("the prefix is not empty");
    let entry = DecodedEntry {
        index: fold.entries(),
        prev_entry_hash: fold.head_link(),
        submission: submission.clone(),
        recorded_at: recorded_at.map_or(last, |at| at.max(last)),
        verdict: verdict.clone(),
    };
    let bytes = encode_entry(&entry);
    let applied = fold
        .apply(&bytes)
        .unwrap_or_else(|error| panic!("a well-chained entry refused by the fold: {error}"));
    assert_eq!(applied.index, entry.index);
    assert_eq!(fold.entries(), entry.index + 1);
    assert_eq!(fold.head_link(), entry_link_hash(&bytes));
    let readable = decode_submission(&submission).is_ok();
    match (&verdict, &applied.outcome) {
        (EntryVerdict::Rejected { code, .. }, Outcome::Rejected { code: seen }) => {
            assert_eq!(code, seen)
        }
        (EntryVerdict::Accepted, Outcome::Accepted) => assert!(readable),
        (EntryVerdict::Accepted, Outcome::Inconsistent { .. }) => {}
        (verdict, outcome) => panic!("verdict {verdict:?} folded as {outcome:?}"),
    }
    assert_eq!(applied.event_id.is_some(), readable);
}

/// Signed-note bytes (checkpoints, tlog-proof tails, witness notes).
///
/// Checks: a parsed note prints back to exactly its bytes; verification against the
/// fixed log keys returns only keys whose signature line is present and verifies, and
/// never verifies once the text is changed; any valid text signed by the fixed key
/// parses and verifies.
pub fn note(data: &[u8]) {
    let f = fixtures();
    let Ok(note) = SignedNote::parse(data) else {
        return;
    };
    assert_eq!(
        note.to_string().as_bytes(),
        data,
        "a parsed note prints back to its bytes"
    );
    let keys = f.all_log_keys();
    if let Ok(signers) = note.verify(&keys) {
        assert!(!signers.is_empty());
        for signer in &signers {
            assert!(note.signatures.iter().any(|line| {
                line.name == signer.name
                    && line.key_id == signer.key_id
                    && signer.verify(note.text.as_bytes(), &line.signature).is_ok()
            }));
        }
        let mut tampered = note.clone();
        tampered.text.insert(0, 'x');
        assert!(
            tampered.verify(&keys).is_err(),
            "a note verified after its text changed"
        );
    }
    if validate_text(&note.text).is_ok() {
        let mut signed = SignedNote::new(&note.text).expect("valid text makes a note");
        signed.add_signature(&f.log_key).expect("valid text signs");
        let reparsed =
            SignedNote::parse(signed.to_string().as_bytes()).expect("a note we signed parses");
        assert_eq!(reparsed.text, note.text);
        reparsed
            .verify(&[f.log_key.verifier_key()])
            .expect("a note we signed verifies");
    }
}

/// Checkpoint notes and bodies.
///
/// Checks: the input (and a parsed note's text) as a body: the strict parse prints back
/// to exactly the text and agrees with the lenient parse; a valid checkpoint signed by
/// the fixed key opens to itself. As a note: `open_checkpoint` with the fixed trust
/// roots accepts only checkpoints of the real ledger, equal to the strict parse of the
/// note's text.
pub fn checkpoint(data: &[u8]) {
    let f = fixtures();
    if let Ok(text) = std::str::from_utf8(data) {
        checkpoint_body(text);
    }
    if let Ok(note) = SignedNote::parse(data) {
        checkpoint_body(&note.text);
    }
    for trust in [&f.trust, &f.corpus_trust] {
        let opened = open_checkpoint(data, &trust.origin, &trust.log_keys);
        if let Ok((checkpoint, note)) = opened {
            assert_eq!(checkpoint.origin, trust.origin);
            assert_eq!(Checkpoint::parse(&note.text).as_ref(), Ok(&checkpoint));
            note.verify(&trust.log_keys)
                .expect("an opened checkpoint's note verifies");
            assert!(
                f.is_genuine(&checkpoint),
                "a checkpoint the fixed key never signed opened: {checkpoint:?}"
            );
        }
    }
}

fn checkpoint_body(text: &str) {
    let f = fixtures();
    let raw = RawCheckpoint::parse(text);
    let Ok(checkpoint) = Checkpoint::parse(text) else {
        return;
    };
    let raw = raw.expect("the lenient parse accepts what the strict one does");
    assert_eq!(raw.origin, checkpoint.origin);
    assert_eq!(raw.size, checkpoint.size);
    assert_eq!(raw.root, checkpoint.root.as_bytes());
    assert_eq!(
        checkpoint.to_text(),
        text,
        "a strictly parsed checkpoint prints back to its text"
    );
    if checkpoint.validate().is_ok() {
        let note = sign_checkpoint(&checkpoint, &f.log_key).expect("a valid checkpoint signs");
        let (opened, _) = open_checkpoint(
            note.as_bytes(),
            &checkpoint.origin,
            &[f.log_key.verifier_key()],
        )
        .expect("a checkpoint we signed opens");
        assert_eq!(opened, checkpoint);
    }
}

/// tlog-proof files.
///
/// Checks: a parsed proof prints back to a file that parses to the same proof; verified
/// for the fixture ledger's entry at its index, an accepted proof names a genuine
/// checkpoint covering the index, agrees with `check_inclusion`, and fails for any
/// other leaf.
pub fn tlog_proof(data: &[u8]) {
    let f = fixtures();
    let Ok(proof) = TlogProof::parse(data) else {
        assert!(check_inclusion(data, b"", &f.trust).is_err());
        return;
    };
    let printed = proof.to_string();
    assert_eq!(
        TlogProof::parse(printed.as_bytes()).as_ref(),
        Ok(&proof),
        "a printed proof parses back"
    );
    let leaf = usize::try_from(proof.index)
        .ok()
        .and_then(|index| f.entries.get(index))
        .cloned()
        .unwrap_or_default();
    let verified = proof.verify(&leaf, &f.trust.origin, &f.trust.log_keys);
    assert_eq!(
        verified.is_ok(),
        check_inclusion(data, &leaf, &f.trust).is_ok(),
        "check_inclusion and TlogProof::verify disagree"
    );
    if let Ok(checkpoint) = verified {
        assert!(proof.index < checkpoint.size);
        assert!(
            f.is_genuine(&checkpoint),
            "a proof verified against a checkpoint the fixed key never signed"
        );
        let mut other = leaf.to_vec();
        other.push(0);
        assert!(matches!(
            proof.verify(&other, &f.trust.origin, &f.trust.log_keys),
            Err(TlogProofError::Inclusion(ProofError::RootMismatch { .. }))
        ));
    }
}

/// Merkle proof verification with everything cut from the input.
///
/// Raw: index, sizes, leaf, roots and path taken from the bytes; never a panic, and an
/// inclusion proof that verifies keeps verifying only for its own leaf. Model: sizes
/// chosen by the bytes in the fixture tree; the real proofs verify, and a flipped bit,
/// a dropped or an added hash, or the root of another size makes them fail.
pub fn merkle(data: &[u8]) {
    let word = |at: usize| -> u64 {
        let mut bytes = [0u8; 8];
        for (slot, byte) in bytes.iter_mut().zip(data.iter().skip(at)) {
            *slot = *byte;
        }
        u64::from_le_bytes(bytes)
    };
    let hash_at = |at: usize| -> Hash32 {
        let mut bytes = [0u8; 32];
        for (slot, byte) in bytes.iter_mut().zip(data.iter().skip(at)) {
            *slot = *byte;
        }
        Hash32::from_slice(&bytes).expect("32 bytes")
    };
    // Raw: [index u64][size u64][leaf 32][root 32][path 32 × n].
    let (index, size) = (word(0), word(8));
    let (leaf, root) = (hash_at(16), hash_at(48));
    let path: Vec<Hash32> = data
        .get(80..)
        .unwrap_or_default()
        .chunks(32)
        .map(|chunk| {
            let mut bytes = [0u8; 32];
            bytes[..chunk.len()].copy_from_slice(chunk);
            Hash32::from_slice(&bytes).expect("32 bytes")
        })
        .collect();
    if verify_inclusion(index, size, &leaf, &path, &root).is_ok() {
        let other = leaf_hash(leaf.as_bytes());
        assert!(verify_inclusion(index, size, &other, &path, &root).is_err());
    }
    let _ = verify_consistency(index, size, &leaf, &root, &path);
    let _ = verify_consistency(index % 1024, size % 1024, &leaf, &root, &path);
    let _ = verify_inclusion(index % 1024, size % 1024, &leaf, &path, &root);

    // Model: proofs of the fixture tree.
    let f = fixtures();
    let Some(&[a, b, c, d, e]) = data
        .get(..5)
        .map(|head| <&[u8; 5]>::try_from(head).unwrap())
    else {
        return;
    };
    let leaves = f.tree.size().min(300);
    let n = 1 + u64::from(u16::from_le_bytes([a, b])) % leaves;
    let i = u64::from(c) * 7 % n;
    let m = 1 + u64::from(d) * 5 % n;
    let root_n = f.tree.root_at(n).expect("n is within the tree");
    let root_m = f.tree.root_at(m).expect("m is within the tree");
    let leaf_i = f.tree.leaf_hash(i).expect("i is within the tree");
    let inclusion = f.tree.inclusion_proof(i, n).expect("an inclusion proof");
    verify_inclusion(i, n, &leaf_i, &inclusion, &root_n).expect("a real inclusion proof");
    let consistency = f.tree.consistency_proof(m, n).expect("a consistency proof");
    verify_consistency(m, n, &root_m, &root_n, &consistency).expect("a real consistency proof");
    let bit = usize::from(e);
    for (proof, is_inclusion) in [(&inclusion, true), (&consistency, false)] {
        let check = |candidate: &[Hash32], size: u64| {
            if is_inclusion {
                verify_inclusion(i, size, &leaf_i, candidate, &root_n).is_ok()
            } else {
                verify_consistency(m, size, &root_m, &root_n, candidate).is_ok()
            }
        };
        if !proof.is_empty() {
            let mut flipped = proof.clone();
            let at = bit % (proof.len() * 256);
            let mut bytes = *flipped[at / 256].as_bytes();
            bytes[(at % 256) / 8] ^= 1 << (at % 8);
            flipped[at / 256] = Hash32::from_slice(&bytes).expect("32 bytes");
            assert!(!check(&flipped, n), "a proof with a flipped bit verified");
            assert!(
                !check(&proof[..proof.len() - 1], n),
                "a proof without its last hash verified"
            );
        }
        let mut longer = proof.clone();
        longer.push(leaf_i);
        assert!(!check(&longer, n), "a proof with an extra hash verified");
        // The size is bound by the root a checkpoint signs with it, not by the path:
        // the same path may verify for another size with the same root. Against the
        // root of another size, it never does.
        if n > 1 {
            let other_root = f.tree.root_at(n - 1).expect("n - 1 is within the tree");
            let fails = if is_inclusion {
                verify_inclusion(i, n, &leaf_i, proof, &other_root).is_err()
            } else {
                verify_consistency(m, n, &root_m, &other_root, proof).is_err()
            };
            assert!(fails, "a proof verified against the root of size {}", n - 1);
        }
    }
}

/// Export files, as an inspector receives them.
///
/// Checks: `verify_export` fails exactly when the reader cannot open the file (bad magic,
/// no header); a file the reader reads to its end is re-written record by record and read
/// back to the same records; the report counts the entry records read; a clean report
/// means the whole file was read, and every entry folds in a `ViewFold`.
pub fn export(data: &[u8]) {
    if data.len() > EXPORT_FUZZ_BYTES_MAX {
        return;
    }
    let f = fixtures();
    let (opened, records, read_to_end) = read_export(data);
    let Some(origin) = opened else {
        assert!(
            verify_export(data, &f.trust, &VerifyOptions::default(), |_| {}).is_err(),
            "verify_export accepted a file the reader cannot open"
        );
        return;
    };
    if read_to_end {
        let mut writer = ExportWriter::new(Vec::new(), &origin).expect("writes to memory");
        for record in &records {
            writer.write_record(record).expect("writes to memory");
        }
        let rewritten = writer.finish().expect("writes to memory");
        let (origin_again, records_again, to_end_again) = read_export(&rewritten);
        assert_eq!(origin_again.as_deref(), Some(origin.as_str()));
        assert!(to_end_again);
        assert_eq!(
            records_again, records,
            "a re-written export reads back the same"
        );
    }
    let trust = f.trust_for(&origin);
    let report = verify_export(data, trust, &VerifyOptions::default(), |_| {})
        .expect("verify_export opens what the reader opens");
    let entry_records = records
        .iter()
        .filter(|record| matches!(record, ExportRecord::Entry(_)))
        .count() as u64;
    assert_eq!(
        report.entries, entry_records,
        "the report counts the entries read"
    );
    assert_eq!(
        report.origin, trust.origin,
        "the report names the trusted origin"
    );
    if report.is_clean() {
        assert!(read_to_end, "a clean report on a file not read to its end");
        let mut fold = ViewFold::new(origin.clone(), &trust.ledger_authority_keys());
        for record in &records {
            if let ExportRecord::Entry(bytes) = record {
                fold.apply(bytes)
                    .unwrap_or_else(|error| panic!("a clean export does not fold: {error}"));
            }
        }
        assert_eq!(fold.entries(), report.entries);
        assert_eq!(fold.head_link(), report.head_link);
    }
}

/// Reads an export: its origin (if it opens), the records read before the end or the
/// first error, and whether it was read to a clean end.
fn read_export(data: &[u8]) -> (Option<String>, Vec<ExportRecord>, bool) {
    let Ok(mut reader) = ExportReader::open(data) else {
        return (None, Vec::new(), false);
    };
    let origin = reader.origin().to_owned();
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(record)) => records.push(record),
            Ok(None) => return (Some(origin), records, true),
            Err(_) => return (Some(origin), records, false),
        }
    }
}

/// Consistency-proof files (`stockpile check-proof`).
///
/// Checks: an accepted file names two genuine checkpoints of the fixture ledger, old no
/// larger than new.
pub fn consistency_file(data: &[u8]) {
    let f = fixtures();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((old, new)) = check_consistency(text, &f.trust) {
        assert!(old.size > 0 && old.size <= new.size);
        assert!(f.is_genuine(&old) && f.is_genuine(&new));
    }
}
