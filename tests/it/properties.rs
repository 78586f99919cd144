//! Properties of the export as a whole: every valid ledger verifies, and no single-byte
//! change to an export goes unnoticed.

use crate::support::events::base_ledger;
use crate::support::{Keys, Record, export_bytes};
use proptest::prelude::*;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_scenario::{Dataset, ScenarioConfig};

fn slow() -> bool {
    std::env::var_os("STOCKPILE_SLOW_TESTS").is_some()
}

/// True if the verifier notices something wrong with `export` (a finding, or a file it
/// refuses to read at all).
fn detected(export: &[u8]) -> bool {
    match verify_export(
        export,
        &Keys::new().trust_root(),
        &VerifyOptions::default(),
        |_| {},
    ) {
        Ok(report) => !report.is_clean(),
        Err(_) => true,
    }
}

#[test]
fn every_single_byte_change_to_an_export_is_detected() {
    let export = export_bytes(&base_ledger(true).forger.records);
    assert!(!detected(&export), "the unmodified export verifies");
    // Exhaustive over positions; under slow tests, with several different changes each.
    let masks: &[u8] = if slow() {
        &[0x01, 0x80, 0xff, 0x10]
    } else {
        &[0x01]
    };
    let mut undetected = Vec::new();
    for position in 0..export.len() {
        for mask in masks {
            let mut changed = export.clone();
            changed[position] ^= mask;
            if !detected(&changed) {
                undetected.push((position, *mask));
            }
        }
    }
    assert!(
        undetected.is_empty(),
        "changes that verified clean (position, xor): {undetected:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if slow() { 256 } else { 32 }, ..ProptestConfig::default() })]

    #[test]
    fn random_byte_changes_are_detected(position_seed in any::<usize>(), value in any::<u8>()) {
        let export = export_bytes(&base_ledger(true).forger.records);
        let position = position_seed % export.len();
        prop_assume!(export[position] != value);
        let mut changed = export.clone();
        changed[position] = value;
        prop_assert!(detected(&changed), "byte {} set to {:#04x} went unnoticed", position, value);
    }

    #[test]
    fn random_truncations_are_detected(cut_seed in any::<usize>()) {
        let records = base_ledger(true).forger.records;
        let export = export_bytes(&records);
        let cut = cut_seed % export.len();
        // A cut between records leaves an older ledger, perhaps with a tail not yet
        // checkpointed, as a live ledger has: nothing in the file can tell. The inspector
        // who holds a later checkpoint (`--checkpoint`) can. A cut inside a record is
        // always detected.
        let prefix_ends: Vec<usize> = (0..records.len()).map(|k| export_bytes(&records[..k]).len()).collect();
        if let Some(kept) = prefix_ends.iter().position(|&end| end == cut) {
            let Some(Record::Checkpoint(latest)) = records.last() else { unreachable!("the base ledger ends in a checkpoint") };
            let options = VerifyOptions { extra_checkpoints: vec![latest.clone().into_bytes()], ..VerifyOptions::default() };
            let report = verify_export(&export[..cut], &Keys::new().trust_root(), &options, |_| {}).expect("readable");
            let all_entries_kept = records[kept..].iter().all(|r| matches!(r, Record::Checkpoint(_)));
            if all_entries_kept {
                prop_assert!(report.is_clean(), "only checkpoints cut at byte {}: {:?}", cut, report.findings);
            } else {
                prop_assert!(report.findings.iter().any(|f| f.code == "ledger.truncated"), "a cut at byte {} between records, with the latest checkpoint held", cut);
            }
        } else {
            prop_assert!(detected(&export[..cut]), "a cut at byte {} went unnoticed", cut);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if slow() { 12 } else { 3 }, ..ProptestConfig::default() })]

    #[test]
    fn random_scenario_ledgers_always_verify(seed in any::<u64>(), dataset in 0..3u8, checkpoint_every in 1..200u64) {
        let dataset = [Dataset::UsLike, Dataset::FinlandLike, Dataset::BelarusLike][dataset as usize];
        let config = ScenarioConfig { seed, dataset, min_entries: 0, checkpoint_every };
        let mut export = Vec::new();
        let outcome = stockpile_scenario::write_export(&config, &mut export).expect("writing to memory");
        let trust = stockpile_ledger::trust::TrustRoot::parse_json(&outcome.trust_root).expect("the generator's trust root parses");
        let report = verify_export(export.as_slice(), &trust, &VerifyOptions::default(), |_| {}).expect("readable");
        prop_assert!(report.is_clean(), "seed {} dataset {:?}: {:?}", seed, dataset, report.findings.iter().take(5).collect::<Vec<_>>());
        prop_assert_eq!(report.entries, outcome.entries);
        prop_assert_eq!(report.rejected, outcome.rejected);
    }
}
