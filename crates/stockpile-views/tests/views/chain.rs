//! The fold takes only the next entry of the chain: a broken link, a skipped or repeated
//! index, bytes that are no entry and time running backwards are errors naming the
//! index, and leave the fold as it was.

use crate::support::{config, ledger};
use bytes::Bytes;
use stockpile_core::hash::Hash32;
use stockpile_core::time::TimestampMs;
use stockpile_proto::envelope::{EntryVerdict, decode_entry, encode_entry};
use stockpile_scenario::Dataset;
use stockpile_views::digest::views_digest;
use stockpile_views::fold::{FoldError, Outcome};

/// Where the tampering happens: well inside the story.
const AT: usize = 40;

fn reencode(
    entry: &Bytes,
    change: impl FnOnce(&mut stockpile_proto::envelope::DecodedEntry),
) -> Vec<u8> {
    let mut decoded = decode_entry(entry).unwrap();
    change(&mut decoded);
    encode_entry(&decoded)
}

/// Folds the first `AT` entries, offers `bad`, and checks the error and that nothing
/// changed; then the genuine entry still folds.
#[track_caller]
fn check_refused(bad: &[u8], expected: impl Fn(&FoldError) -> bool) -> FoldError {
    let ledger = ledger(&config(Dataset::FinlandLike, 0));
    let mut fold = ledger.fold_first(AT);
    let before = views_digest(&fold);
    let error = fold.apply(bad).expect_err("the tampered entry is refused");
    assert!(expected(&error), "unexpected error: {error:?}");
    assert_eq!(error.index(), AT as u64, "the error names the index");
    assert!(
        error.to_string().contains(&AT.to_string()),
        "the message names the index: {error}"
    );
    assert_eq!(fold.entries(), AT as u64);
    assert_eq!(
        views_digest(&fold),
        before,
        "a refused entry changes nothing"
    );
    fold.apply(&ledger.entries[AT])
        .expect("the genuine entry still folds");
    error
}

#[test]
fn a_broken_link_is_refused_naming_the_index() {
    let ledger = ledger(&config(Dataset::FinlandLike, 0));
    let bad = reencode(&ledger.entries[AT], |entry| {
        entry.prev_entry_hash = Hash32::digest(b"another history")
    });
    let error = check_refused(&bad, |e| matches!(e, FoldError::BrokenLink { .. }));
    let FoldError::BrokenLink {
        expected, actual, ..
    } = error
    else {
        unreachable!()
    };
    assert_eq!(actual, Hash32::digest(b"another history"));
    assert_eq!(
        expected,
        decode_entry(&ledger.entries[AT]).unwrap().prev_entry_hash
    );
}

#[test]
fn a_skipped_or_repeated_index_is_refused_naming_the_index() {
    let ledger = ledger(&config(Dataset::FinlandLike, 0));
    // Skipping entry AT: the next one claims AT + 1.
    let error = check_refused(
        &ledger.entries[AT + 1],
        |e| matches!(e, FoldError::IndexMismatch { claimed, .. } if *claimed == AT as u64 + 1),
    );
    assert!(matches!(error, FoldError::IndexMismatch { .. }));
    // Repeating entry AT - 1.
    check_refused(
        &ledger.entries[AT - 1],
        |e| matches!(e, FoldError::IndexMismatch { claimed, .. } if *claimed == AT as u64 - 1),
    );
}

#[test]
fn garbage_and_time_running_backwards_are_refused() {
    let ledger = ledger(&config(Dataset::FinlandLike, 0));
    check_refused(b"\xff\xffnot an entry", |e| {
        matches!(e, FoldError::Malformed { .. })
    });
    let previous = decode_entry(&ledger.entries[AT - 1]).unwrap().recorded_at;
    let bad = reencode(&ledger.entries[AT], |entry| {
        entry.recorded_at = TimestampMs(previous.0 - 1)
    });
    check_refused(&bad, |e| matches!(e, FoldError::TimeBackwards { .. }));
}

#[test]
fn an_accepted_entry_the_rules_refuse_is_folded_as_the_verifier_does() {
    // The rogue shipment was rejected by the sequencer; marked accepted instead, the
    // admission code refuses it, the fold says so and goes on with the books unchanged.
    let ledger = ledger(&config(Dataset::FinlandLike, 0));
    let fold = ledger.fold_all();
    let rogue = fold
        .rejected_entries()
        .iter()
        .find(|r| r.code == "signature.unknown_key")
        .expect("the rogue shipment is in the ledger")
        .index as usize;
    let mut fold = ledger.fold_first(rogue);
    let bad = reencode(&ledger.entries[rogue], |entry| {
        entry.verdict = EntryVerdict::Accepted
    });
    let applied = fold.apply(&bad).expect("it has its place in the chain");
    assert_eq!(
        applied.outcome,
        Outcome::Inconsistent {
            code: "signature.unknown_key".into()
        }
    );
    assert_eq!(fold.inconsistencies().len(), 1);
    assert_eq!(fold.inconsistencies()[0].index, rogue as u64);
    assert_eq!(fold.entries(), rogue as u64 + 1);
    // Time may have raised deadline flags, but no books moved.
    assert_eq!(
        fold.compliance().summary().totals,
        ledger.fold_first(rogue).compliance().summary().totals
    );
}

#[test]
fn folding_through_a_date_stops_before_the_first_later_entry() {
    let ledger = ledger(&config(Dataset::FinlandLike, 0));
    let last_date = stockpile_core::time::Date::parse("2013-12-31").unwrap();
    let mut fold = ledger.empty_fold();
    let mut stopped_at = None;
    for (index, entry) in ledger.entries.iter().enumerate() {
        if fold.apply_through(entry, last_date).unwrap().is_none() {
            stopped_at = Some(index);
            break;
        }
    }
    let stopped_at = stopped_at.expect("the ledger goes on past 2013");
    assert_eq!(fold.entries(), stopped_at as u64);
    assert!(fold.today().unwrap() <= last_date);
    let next = decode_entry(&ledger.entries[stopped_at]).unwrap();
    assert!(next.recorded_at.date() > last_date);
}
