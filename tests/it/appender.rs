//! The sequencer's pure core at its boundaries: a ledger restored from its own entries
//! continues byte for byte, a ledger it would not have written is refused, oversized
//! submissions become verifiable rejection records, and proofs come from adopted
//! checkpoints.

use bytes::Bytes;
use stockpile_core::hash::Hash32;
use stockpile_core::limits::SUBMISSION_BYTES_MAX;
use stockpile_core::time::TimestampMs;
use stockpile_core::tlog_proof::TlogProof;
use stockpile_ledger::appender::{Appender, RestoreError};
use stockpile_ledger::export::ExportWriter;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_proto::envelope::{EntryVerdict, decode_entry};
use stockpile_scenario::{Dataset, ScenarioConfig};

fn scenario_appender() -> (Appender, Vec<Bytes>, stockpile_scenario::ScenarioKeys) {
    let config = ScenarioConfig {
        seed: 3,
        dataset: Dataset::FinlandLike,
        min_entries: 400,
        checkpoint_every: 0,
    };
    let submissions = stockpile_scenario::submissions(&config);
    let keys = submissions.keys().clone();
    let trust = keys.trust_root();
    let mut appender = Appender::new(
        &trust.origin,
        keys.log.clone(),
        &trust.ledger_authority_keys(),
    )
    .expect("valid origin");
    let mut entries = Vec::new();
    let all: Vec<_> = submissions.collect();
    for chunk in all.chunks(64) {
        let bytes: Vec<Bytes> = chunk.iter().map(|s| s.bytes.clone()).collect();
        let recorded_at = chunk.last().expect("non-empty chunk").recorded_at;
        for appended in appender.append_batch(&bytes, recorded_at) {
            entries.push(appended.entry);
        }
    }
    (appender, entries, keys)
}

fn fresh(keys: &stockpile_scenario::ScenarioKeys) -> Appender {
    let trust = keys.trust_root();
    Appender::new(
        &trust.origin,
        keys.log.clone(),
        &trust.ledger_authority_keys(),
    )
    .expect("valid origin")
}

#[test]
fn a_restored_appender_continues_exactly_where_the_original_stood() {
    let (mut original, entries, keys) = scenario_appender();
    let mut restored = fresh(&keys);
    for chunk in entries.chunks(100) {
        restored
            .restore_batch(chunk)
            .expect("its own ledger restores");
    }
    assert_eq!(restored.size(), original.size());
    assert_eq!(restored.head_link(), original.head_link());
    assert_eq!(restored.tree().root(), original.tree().root());
    assert_eq!(
        restored.state().compliance().summary(),
        original.state().compliance().summary()
    );
    // Both sign the same checkpoint next.
    assert_eq!(restored.checkpoint().note, original.checkpoint().note);
}

#[test]
fn a_ledger_the_appender_would_not_have_written_is_refused() {
    let (_, entries, keys) = scenario_appender();
    // An accepted verdict flipped to rejected on a valid entry (re-encoded honestly).
    let target = 40;
    let mut decoded = decode_entry(&entries[target]).expect("decodes");
    assert_eq!(decoded.verdict, EntryVerdict::Accepted);
    decoded.verdict = EntryVerdict::Rejected {
        code: "rule.made_up".into(),
        reason: "forged".into(),
    };
    let mut tampered = entries.clone();
    tampered[target] = Bytes::from(stockpile_proto::envelope::encode_entry(&decoded));
    let mut restored = fresh(&keys);
    let error = restored
        .restore_batch(&tampered)
        .expect_err("a different verdict is not ours");
    assert!(
        matches!(&error, RestoreError::Mismatch { index, .. } if *index == target as u64),
        "{error}"
    );

    // A ledger of another origin (its log key is another name) fails at entry 0.
    let mut other = fresh(&stockpile_scenario::ScenarioKeys::new(Dataset::UsLike, 3));
    let error = other
        .restore_batch(&entries[..10])
        .expect_err("not this ledger");
    assert!(
        matches!(error, RestoreError::Mismatch { index: 0, .. }),
        "{error}"
    );
}

#[test]
fn an_oversized_submission_becomes_a_verifiable_rejection_without_its_bytes() {
    let (mut appender, mut entries, keys) = scenario_appender();
    let huge = Bytes::from(vec![7u8; SUBMISSION_BYTES_MAX + 1]);
    // A day after the last entry.
    let last = decode_entry(entries.last().expect("entries")).expect("decodes");
    let recorded_at = TimestampMs(last.recorded_at.0 + 86_400_000);
    let appended = appender.append_batch(std::slice::from_ref(&huge), recorded_at);
    let entry = decode_entry(&appended[0].entry).expect("decodes");
    assert!(entry.submission.is_empty());
    match &entry.verdict {
        EntryVerdict::Rejected { code, reason } => {
            assert_eq!(code, "malformed.oversized");
            assert!(reason.contains(&Hash32::digest(&huge).to_hex()), "{reason}");
        }
        EntryVerdict::Accepted => panic!("accepted an oversized submission"),
    }
    entries.push(appended[0].entry.clone());
    let signed = appender.checkpoint();

    // The restored appender agrees, and the verifier finds nothing wrong.
    let mut restored = fresh(&keys);
    restored.restore_batch(&entries).expect("restores");
    assert_eq!(restored.head_link(), appender.head_link());

    let mut export = Vec::new();
    let mut writer = ExportWriter::new(&mut export, &keys.origin).expect("header");
    for entry in &entries {
        writer.write_entry(entry).expect("entry");
    }
    writer
        .write_checkpoint(signed.note.as_bytes())
        .expect("checkpoint");
    writer.finish().expect("finish");
    let report = verify_export(
        &export[..],
        &keys.trust_root(),
        &VerifyOptions::default(),
        |_| {},
    )
    .expect("reads");
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert_eq!(report.rejected, appender_rejections(&entries));
}

fn appender_rejections(entries: &[Bytes]) -> u64 {
    entries
        .iter()
        .filter(|e| decode_entry(e).expect("decodes").verdict != EntryVerdict::Accepted)
        .count() as u64
}

#[test]
fn proofs_come_only_from_an_adopted_checkpoint_that_matches() {
    let (mut original, entries, keys) = scenario_appender();
    let signed = original.checkpoint();
    let mut restored = fresh(&keys);
    restored.restore_batch(&entries).expect("restores");
    assert!(restored.inclusion_proof(5).is_none(), "no checkpoint yet");
    restored
        .adopt_checkpoint(&signed.note)
        .expect("its own checkpoint");
    let proof = restored.inclusion_proof(5).expect("covered");
    let parsed = TlogProof::parse(proof.to_string().as_bytes()).expect("a valid tlog-proof");
    parsed
        .verify(&entries[5], &keys.origin, &[keys.log.verifier_key()])
        .expect("the proof verifies");
    assert!(restored.inclusion_proof(entries.len() as u64).is_none());

    // A checkpoint by another key, or of a tree the appender does not hold, is refused.
    let mut shorter = fresh(&keys);
    shorter.restore_batch(&entries[..10]).expect("restores");
    assert!(
        shorter.adopt_checkpoint(&signed.note).is_err(),
        "beyond its ledger"
    );
    let other_keys = stockpile_scenario::ScenarioKeys::new(Dataset::FinlandLike, 99);
    let mut other = fresh(&other_keys);
    other.restore_batch(&[]).expect("empty");
    assert!(
        other.adopt_checkpoint(&signed.note).is_err(),
        "not its log key"
    );
}
