//! The projector's engine over generated ledgers: batches, restarts and redeliveries give
//! the same views as one fold from index 0, and as the verifier's own fold.

use bytes::Bytes;
use stockpile_ledger::export::ExportReader;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_projector::engine::{Projector, SUMMARY_DOC};
use stockpile_proto::export_codec::ExportRecord;
use stockpile_scenario::{Dataset, ScenarioConfig};

struct Ledger {
    entries: Vec<Bytes>,
    export: Vec<u8>,
    trust: stockpile_ledger::trust::TrustRoot,
}

fn ledger(dataset: Dataset, min_entries: u64) -> Ledger {
    let config = ScenarioConfig {
        seed: 4,
        dataset,
        min_entries,
        checkpoint_every: 500,
    };
    let mut export = Vec::new();
    let outcome = stockpile_scenario::write_export(&config, &mut export).expect("generate");
    let trust =
        stockpile_ledger::trust::TrustRoot::parse_json(&outcome.trust_root).expect("trust root");
    let mut reader = ExportReader::open(&export[..]).expect("export");
    let mut entries = Vec::new();
    while let Some(record) = reader.next_record().expect("record") {
        if let ExportRecord::Entry(bytes) = record {
            entries.push(bytes);
        }
    }
    Ledger {
        entries,
        export,
        trust,
    }
}

fn open(dir: &std::path::Path, ledger: &Ledger) -> Projector {
    Projector::open(
        dir,
        &ledger.trust.origin,
        &ledger.trust.ledger_authority_keys(),
    )
    .expect("open projector")
}

fn indexed(entries: &[Bytes], from: u64) -> Vec<(u64, Bytes)> {
    entries
        .iter()
        .enumerate()
        .map(|(offset, bytes)| (from + offset as u64, bytes.clone()))
        .collect()
}

#[test]
fn batches_restarts_and_redeliveries_agree_with_one_fold_and_the_verifier() {
    for dataset in [Dataset::UsLike, Dataset::FinlandLike, Dataset::BelarusLike] {
        let ledger = ledger(dataset, 1_500);
        let total = ledger.entries.len() as u64;

        // Incrementally, in uneven batches, restarting the projector between some and
        // redelivering part of the previous batch each time.
        let incremental = tempfile::tempdir().expect("tempdir");
        let mut projector = open(incremental.path(), &ledger);
        let mut from = 0usize;
        let mut round = 0usize;
        while from < ledger.entries.len() {
            let size = [1, 7, 64, 333][round % 4];
            let to = (from + size).min(ledger.entries.len());
            let redelivered = from.saturating_sub(3);
            let batch = indexed(&ledger.entries[redelivered..to], redelivered as u64);
            let applied = projector.apply_batch(batch).expect("apply batch");
            assert_eq!(
                applied,
                (to - from) as u64,
                "redelivered entries are skipped"
            );
            from = to;
            round += 1;
            if round.is_multiple_of(5) {
                drop(projector);
                projector = open(incremental.path(), &ledger);
                assert_eq!(projector.next_index(), from as u64, "the tracking record");
            }
        }
        assert_eq!(projector.next_index(), total);

        // A rebuild in one batch, into a fresh store.
        let rebuilt = tempfile::tempdir().expect("tempdir");
        let mut fresh = open(rebuilt.path(), &ledger);
        fresh
            .apply_batch(indexed(&ledger.entries, 0))
            .expect("one batch");

        let digest = |p: &Projector| p.fold().compliance().digest();
        assert_eq!(
            digest(&projector),
            digest(&fresh),
            "{dataset:?}: incremental = rebuild"
        );
        let summary_doc = |p: &Projector| -> serde_json::Value {
            serde_json::from_slice(&p.store().document(SUMMARY_DOC).unwrap().unwrap()).unwrap()
        };
        assert_eq!(summary_doc(&projector), summary_doc(&fresh));
        // Computed on demand: it covers every view, too much to redo per batch.
        assert_eq!(
            stockpile_views::digest::views_digest(projector.fold()),
            stockpile_views::digest::views_digest(fresh.fold()),
            "{dataset:?}: one views digest for the incremental and the rebuilt views"
        );
        assert_eq!(summary_doc(&projector)["entries"], total);

        // The verifier's own fold of the same export.
        let report = verify_export(
            &ledger.export[..],
            &ledger.trust,
            &VerifyOptions::default(),
            |_| {},
        )
        .expect("verify");
        assert!(report.is_clean(), "{dataset:?}: {:?}", report.findings);
        assert_eq!(
            serde_json::to_value(&report.summary).unwrap(),
            summary_doc(&projector)["summary"],
            "{dataset:?}: projector = verifier"
        );
        assert_eq!(
            projector.store().documents("lot/").unwrap().len(),
            projector.fold().compliance().lots().count(),
            "one document per lot"
        );
    }
}

#[test]
fn a_broken_ledger_is_refused_and_nothing_is_committed() {
    let ledger = ledger(Dataset::FinlandLike, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut projector = open(dir.path(), &ledger);
    projector
        .apply_batch(indexed(&ledger.entries[..10], 0))
        .expect("first ten");
    // Entry 11 where 10 belongs: a gap.
    let error = projector
        .apply_batch(indexed(&ledger.entries[11..12], 10))
        .expect_err("a gap is refused");
    assert!(format!("{error:#}").contains("10"), "{error:#}");
    drop(projector);
    let projector = open(dir.path(), &ledger);
    assert_eq!(
        projector.next_index(),
        10,
        "nothing of the refused batch was committed"
    );
}
