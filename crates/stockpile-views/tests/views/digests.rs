//! The views digest: the same entries give the same digest however they were folded
//! (incrementally, from scratch, from a snapshot), one more entry changes it, and the
//! streamed digest is the digest of the canonical form of every view.

use crate::support::{config, ledger};
use stockpile_scenario::Dataset;
use stockpile_views::digest::{ViewSet, canonical_json, digest_of, view_set, views_digest};

#[test]
fn incremental_fresh_and_snapshot_folds_agree() {
    for dataset in Dataset::ALL {
        let ledger = ledger(&config(dataset, 0));
        let total = ledger.entries.len();
        let middle = total / 2;

        // One fold, kept going, with a snapshot taken half-way.
        let mut incremental = ledger.empty_fold();
        let mut snapshot = None;
        for (index, entry) in ledger.entries.iter().enumerate() {
            if index == middle {
                snapshot = Some(incremental.snapshot());
            }
            incremental.apply(entry).unwrap();
        }
        let snapshot = snapshot.unwrap();

        let fresh = ledger.fold_all();
        let whole = views_digest(&incremental);
        assert_eq!(
            whole,
            views_digest(&fresh),
            "{dataset}: incremental vs rebuild"
        );
        assert_eq!(
            views_digest(&snapshot),
            views_digest(&ledger.fold_first(middle)),
            "{dataset}: a snapshot is the fold of its prefix"
        );
        assert_ne!(views_digest(&snapshot), whole, "{dataset}");

        // One more entry changes the digest.
        let mut next = snapshot.snapshot();
        next.apply(&ledger.entries[middle]).unwrap();
        assert_ne!(views_digest(&next), views_digest(&snapshot), "{dataset}");
        assert_eq!(
            views_digest(&next),
            views_digest(&ledger.fold_first(middle + 1)),
            "{dataset}"
        );
    }
}

#[test]
fn the_streamed_digest_is_the_digest_of_the_canonical_view_set() {
    let ledger = ledger(&config(Dataset::BelarusLike, 0));
    for count in [0, 1, 25, ledger.entries.len()] {
        let fold = ledger.fold_first(count);
        let views = view_set(&fold);
        assert_eq!(
            views_digest(&fold),
            digest_of(&views),
            "after {count} entries"
        );
        assert_eq!(views.compliance_state_digest, fold.compliance().digest());
        // The canonical form is JSON that reads back into the same views.
        let canonical = canonical_json(&views);
        let back: ViewSet = serde_json::from_slice(&canonical).unwrap();
        assert_eq!(back, views, "after {count} entries");
        assert_eq!(canonical_json(&back), canonical);
    }
    // The verifier's state digest is in the views, so comparing views digests compares
    // states too.
    let fold = ledger.fold_all();
    assert_eq!(
        view_set(&fold).compliance_state_digest,
        ledger.report.state_digest
    );
}

#[test]
fn canonical_keys_are_sorted_not_in_declaration_order() {
    // `AsOf` declares as_of_index, entries, recorded_at, head_link; the canonical form
    // sorts them, and so the digest does not depend on how a struct is written.
    let ledger = ledger(&config(Dataset::UsLike, 0));
    let fold = ledger.fold_first(60);
    let text = String::from_utf8(canonical_json(&view_set(&fold))).unwrap();
    let head = fold.head_link().to_hex();
    let recorded = fold.last_recorded_at().unwrap().0;
    let as_of = format!(
        "{{\"as_of\":{{\"as_of_index\":59,\"entries\":60,\"head_link\":\"{head}\",\"recorded_at\":{recorded}}},"
    );
    assert!(text.starts_with(&as_of), "{}", &text[..200]);
    let plain = serde_json::to_string(&view_set(&fold)).unwrap();
    assert!(plain.contains("\"recorded_at\":") && !plain.starts_with(&as_of));
}

#[test]
fn a_batch_folds_as_entries_one_by_one_do() {
    // Signatures checked ahead on all cores must give the same state, entry for entry,
    // whatever the batch size (keys added inside a batch are checked at admission).
    for dataset in Dataset::ALL {
        let ledger = ledger(&config(dataset, 0));
        let one_by_one = ledger.fold_all();
        for chunk in [1, 7, 1_000] {
            let mut batched = ledger.empty_fold();
            for entries in ledger.entries.chunks(chunk) {
                batched.apply_batch(entries).unwrap();
            }
            assert_eq!(
                views_digest(&batched),
                views_digest(&one_by_one),
                "{dataset}: batches of {chunk}"
            );
            assert_eq!(
                batched.compliance().digest(),
                one_by_one.compliance().digest(),
                "{dataset}: batches of {chunk}"
            );
            assert_eq!(batched.inconsistencies(), one_by_one.inconsistencies());
        }
        // A batch stops at an entry that is not the next one, the ones before it folded.
        let middle = ledger.entries.len() / 2;
        let mut entries: Vec<Vec<u8>> = ledger.entries[..=middle]
            .iter()
            .map(|entry| entry.to_vec())
            .collect();
        entries[middle] = b"not an entry".to_vec();
        let mut batched = ledger.empty_fold();
        let error = batched.apply_batch(&entries).unwrap_err();
        assert_eq!(error.index(), middle as u64, "{dataset}");
        assert_eq!(batched.entries(), middle as u64, "{dataset}");
        assert_eq!(
            views_digest(&batched),
            views_digest(&ledger.fold_first(middle)),
            "{dataset}"
        );
    }
}
