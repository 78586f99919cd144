//! The projector's engine over generated ledgers: batches, restarts and redeliveries give
//! the same views as one fold from index 0, and as the verifier's own fold.

mod common;

use bytes::Bytes;
use stockpile_ledger::prove::check_inclusion;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_projector::engine::{CheckpointOffer, Projector, SUMMARY_DOC};
use stockpile_scenario::{Dataset, ScenarioConfig};

struct Ledger {
    entries: Vec<Bytes>,
    /// Signed checkpoint notes, in export order.
    checkpoints: Vec<Bytes>,
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
    let common::Generated {
        export,
        trust,
        entries,
        checkpoints,
    } = common::generate(&config);
    Ledger {
        entries,
        checkpoints,
        export,
        trust,
    }
}

fn open(dir: &std::path::Path, ledger: &Ledger) -> Projector {
    Projector::open(dir, &ledger.trust).expect("open projector")
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

#[test]
fn checkpoints_are_verified_against_applied_entries_and_proofs_check_out() {
    let ledger = ledger(Dataset::FinlandLike, 1_200);
    assert!(
        ledger.checkpoints.len() >= 2,
        "the scenario signs checkpoints"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut projector = open(dir.path(), &ledger);

    // Before any entry, every checkpoint is ahead and nothing is recorded.
    let first = &ledger.checkpoints[0];
    assert!(matches!(
        projector.offer_checkpoint(1, first).unwrap(),
        CheckpointOffer::Ahead { .. }
    ));
    assert_eq!(projector.store().checkpoints_read().unwrap(), 0);

    projector
        .apply_batch(indexed(&ledger.entries, 0))
        .expect("all entries");
    for (offset, note) in ledger.checkpoints.iter().enumerate() {
        let offer = projector.offer_checkpoint(offset as u64 + 1, note).unwrap();
        assert!(
            matches!(offer, CheckpointOffer::Verified { .. }),
            "{offer:?}"
        );
    }
    // A checkpoint signed by a key the trust root does not hold is refused, recorded as
    // refused, and never served.
    let stranger =
        stockpile_core::keys::SignerKey::from_seed(&ledger.trust.origin, [7; 32]).unwrap();
    let size = ledger.entries.len() as u64;
    let forged = stockpile_core::checkpoint::sign_checkpoint(
        &stockpile_core::checkpoint::Checkpoint {
            origin: ledger.trust.origin.clone(),
            size,
            root: projector.proofs().root_at(size).unwrap(),
            extensions: Vec::new(),
        },
        &stranger,
    )
    .unwrap();
    let sequence = ledger.checkpoints.len() as u64 + 1;
    assert!(matches!(
        projector
            .offer_checkpoint(sequence, forged.as_bytes())
            .unwrap(),
        CheckpointOffer::Refused { .. }
    ));
    assert_eq!(projector.store().checkpoints_read().unwrap(), sequence);
    assert_eq!(projector.store().refused_checkpoints().unwrap().len(), 1);

    // Inclusion proofs against the latest checkpoint verify for the entry and fail for a
    // modified copy of it.
    let latest = projector
        .proofs()
        .latest_checkpoint()
        .unwrap()
        .checkpoint
        .size;
    for index in [0, 1, latest / 2, latest - 1] {
        let proof = projector
            .proofs()
            .inclusion(index, None)
            .unwrap()
            .to_string();
        let entry = &ledger.entries[index as usize];
        check_inclusion(proof.as_bytes(), entry, &ledger.trust).expect("proof verifies");
        let mut modified = entry.to_vec();
        let last = modified.len() - 1;
        modified[last] ^= 1;
        assert!(check_inclusion(proof.as_bytes(), &modified, &ledger.trust).is_err());
    }

    // Reopened: the checkpoints come back verified, the read position with them.
    drop(projector);
    let projector = open(dir.path(), &ledger);
    assert_eq!(
        projector.proofs().checkpoints().len(),
        ledger.checkpoints.len()
    );
    assert_eq!(projector.store().checkpoints_read().unwrap(), sequence);
}

#[test]
fn folds_of_earlier_positions_equal_projectors_stopped_there() {
    let ledger = ledger(Dataset::UsLike, 600);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut projector = open(dir.path(), &ledger);
    projector
        .apply_batch(indexed(&ledger.entries, 0))
        .expect("all entries");
    let history = projector.history();
    for index in [0u64, 17, 299, ledger.entries.len() as u64 - 1] {
        let earlier = history.fold_at(index).expect("fold");
        let stopped = tempfile::tempdir().expect("tempdir");
        let mut alone = open(stopped.path(), &ledger);
        alone
            .apply_batch(indexed(&ledger.entries[..=index as usize], 0))
            .expect("prefix");
        assert_eq!(
            stockpile_views::digest::views_digest(&earlier),
            stockpile_views::digest::views_digest(alone.fold()),
            "as of {index}"
        );
    }
    assert!(history.fold_at(ledger.entries.len() as u64).is_err());

    // The binary search for a date's position equals a linear count.
    let dates: Vec<_> = ledger
        .entries
        .iter()
        .enumerate()
        .map(|(index, bytes)| {
            stockpile_views::fold::entry_recorded_at(bytes, index as u64)
                .unwrap()
                .date()
        })
        .collect();
    for probe in [dates[0], dates[dates.len() / 3], *dates.last().unwrap()] {
        let linear = dates.iter().filter(|date| **date <= probe).count() as u64;
        assert_eq!(history.entries_through(probe).unwrap(), linear, "{probe:?}");
    }
    let before = stockpile_core::time::Date::from_ymd(1900, 1, 1).unwrap();
    assert_eq!(history.entries_through(before).unwrap(), 0);
}

#[test]
fn year_end_reports_kept_while_folding_equal_reports_folded_on_request() {
    use stockpile_views::article7::{Article7Config, Contact, article7_report, year_end};
    for dataset in [Dataset::UsLike, Dataset::FinlandLike] {
        let ledger = ledger(dataset, 1_200);
        let year = |bytes: &Bytes| {
            stockpile_views::fold::entry_recorded_at(bytes, 0)
                .unwrap()
                .date()
                .year()
        };
        let (first, last) = (
            year(&ledger.entries[0]),
            year(ledger.entries.last().unwrap()),
        );
        assert!(last > first, "the ledger spans more than one year");
        // Uneven batches, a restart (which refolds the store) half way.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut projector = open(dir.path(), &ledger);
        let (mut from, mut round) = (0usize, 0usize);
        while from < ledger.entries.len() {
            let to = (from + [1, 90, 5, 400][round % 4]).min(ledger.entries.len());
            projector
                .apply_batch(indexed(&ledger.entries[from..to], from as u64))
                .expect("apply batch");
            from = to;
            round += 1;
            if round == 7 {
                drop(projector);
                projector = open(dir.path(), &ledger);
            }
        }
        let config = Article7Config {
            state_name: "Somewhere".into(),
            contacts: vec![Contact {
                name: "A. Person".into(),
                ..Contact::default()
            }],
            submission_date: stockpile_core::time::Date::from_ymd(2030, 4, 30),
        };
        let history = projector.history();
        assert!(projector.year_end(first - 1).is_none(), "before the ledger");
        assert!(projector.year_end(last).is_none(), "not ended yet");
        for ended in first..last {
            let kept = projector
                .year_end(ended)
                .unwrap_or_else(|| panic!("{dataset:?}: no report kept for {ended}"));
            let through = history.entries_through(year_end(ended).unwrap()).unwrap();
            assert_eq!(kept.entries, through, "{dataset:?} {ended}");
            let folded = history.fold_at(through - 1).expect("fold");
            let expected = article7_report(&folded, ended, &config, None);
            let kept = kept
                .report
                .clone()
                .map(|report| report.with_config(&config));
            assert_eq!(kept, expected, "{dataset:?} {ended}");
        }
    }
}
