//! Tests of the generator at its boundary: configs in; entries, checkpoints, outcomes and
//! exports out, judged by the real appender, state machine and verifier.

use crate::drive::run;
use crate::{Dataset, ScenarioConfig, ScenarioOutcome, ScenarioRecord, submissions, write_export};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::OnceLock;
use stockpile_core::hash::Hash32;
use stockpile_core::limits::RECORDING_GAP_FLAG_MS;
use stockpile_core::state::{PoolTotals, StockpileSummary};
use stockpile_ledger::trust::TrustRoot;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_proto::envelope::decode_submission;

/// A generated ledger: its outcome, the appender's final summary and a digest of every
/// record in export order.
struct Generated {
    outcome: ScenarioOutcome,
    summary: StockpileSummary,
    digest: Hash32,
    records: u64,
    last_checkpoint_size: Option<u64>,
}

fn generate(config: &ScenarioConfig) -> Generated {
    let mut bytes_digest = Vec::new();
    let mut records = 0u64;
    let mut last_checkpoint_size = None;
    let (outcome, appender) = run(config, &mut |record| {
        records += 1;
        let (tag, bytes) = match &record {
            ScenarioRecord::Entry(entry) => (b'E', entry.to_vec()),
            ScenarioRecord::Checkpoint(note) => {
                let size = note
                    .lines()
                    .nth(1)
                    .and_then(|line| line.parse::<u64>().ok());
                last_checkpoint_size = size;
                (b'C', note.as_bytes().to_vec())
            }
        };
        // Chain the digest so that order matters and memory stays small.
        let previous = Hash32::digest(&bytes_digest);
        bytes_digest = [&previous.0[..], &[tag], &bytes[..]].concat();
        ControlFlow::Continue(())
    });
    let summary = appender.state().compliance().summary();
    Generated {
        outcome,
        summary,
        digest: Hash32::digest(&bytes_digest),
        records,
        last_checkpoint_size,
    }
}

fn demo(dataset: Dataset) -> &'static Generated {
    static US: OnceLock<Generated> = OnceLock::new();
    static FI: OnceLock<Generated> = OnceLock::new();
    static BY: OnceLock<Generated> = OnceLock::new();
    let cell = match dataset {
        Dataset::UsLike => &US,
        Dataset::FinlandLike => &FI,
        Dataset::BelarusLike => &BY,
    };
    cell.get_or_init(|| generate(&ScenarioConfig::demo(dataset)))
}

fn pools(totals: &crate::UnitTotals) -> PoolTotals {
    PoolTotals {
        stockpiled: totals.stockpiled,
        retained: totals.retained,
        korea: totals.korea,
        in_transit: totals.in_transit,
        unreceived: totals.unreceived,
        destroyed: totals.destroyed,
        consumed: totals.consumed,
        lost: totals.lost,
        transferred_out: totals.transferred_out,
    }
}

/// The ledger holds exactly what the story scripted: every rejection is a hostile
/// submission's, every scripted flag was raised, nothing suspicious was, and the state
/// machine's books equal the generator's reference model.
#[track_caller]
fn check_as_scripted(generated: &Generated) {
    let outcome = &generated.outcome;
    let observed = &outcome.observed;
    assert!(
        observed.unexpected_rejections.is_empty(),
        "{}: unexpected rejections ({} in all): {:#?}",
        outcome.dataset,
        observed.unexpected_rejections_total,
        observed.unexpected_rejections
    );
    assert!(
        observed.missing_flags.is_empty(),
        "{}: scripted flags not raised: {:#?}",
        outcome.dataset,
        observed.missing_flags
    );
    assert!(
        observed.missing_rejections.is_empty(),
        "{}: hostile submissions not refused as expected: {:#?}",
        outcome.dataset,
        observed.missing_rejections
    );
    assert!(observed.is_as_scripted());
    assert_eq!(outcome.rejected, outcome.expected_rejections.len() as u64);
    assert_eq!(outcome.accepted + outcome.rejected, outcome.entries);
    assert_eq!(
        outcome.entries,
        outcome.story_entries + outcome.padding_entries
    );
    assert_eq!(
        observed.flags_by_rule.get(&20),
        None,
        "{}: suspicious records: {:?}",
        outcome.dataset,
        observed.flags_by_code
    );
    assert_eq!(
        generated.last_checkpoint_size,
        Some(outcome.entries),
        "a final checkpoint closes the ledger"
    );
    assert_eq!(generated.records, outcome.entries + outcome.checkpoints);

    let (expected, actual) = (&outcome.expected, &generated.summary);
    assert_eq!(expected.lots, actual.lots);
    assert_eq!(expected.terminal_lots, actual.terminal_lots);
    assert_eq!(expected.declared, actual.declared);
    assert_eq!(
        pools(&expected.totals),
        actual.totals,
        "{}: totals",
        outcome.dataset
    );
    let by_type: BTreeMap<String, PoolTotals> = expected
        .by_type
        .iter()
        .map(|(type_id, totals)| (type_id.clone(), pools(&totals.pools)))
        .collect();
    assert_eq!(
        by_type, actual.by_type,
        "{}: totals by type",
        outcome.dataset
    );
    let by_site: BTreeMap<String, PoolTotals> = expected
        .by_site
        .iter()
        .map(|(site, totals)| (site.clone(), pools(totals)))
        .collect();
    assert_eq!(
        by_site, actual.by_site,
        "{}: totals by site",
        outcome.dataset
    );
    assert_eq!(expected.open_shipments, actual.open_shipments);
    assert_eq!(expected.open_differences, actual.open_differences);
    assert_eq!(
        expected.totals.held() + expected.totals.gone(),
        expected.declared,
        "units are conserved"
    );
}

#[test]
fn us_like_ledger_is_as_scripted() {
    let generated = demo(Dataset::UsLike);
    check_as_scripted(generated);
    let outcome = &generated.outcome;
    assert_eq!(outcome.expected.declared, 3_000_000);
    assert!(
        outcome.expected.totals.korea > 0,
        "a Korea designation share"
    );
    assert!(
        outcome.expected.totals.transferred_out > 0,
        "the approved transfer for destruction was shipped"
    );
    assert!(
        outcome.observed.flags_by_code["korea.undesignated_not_falling"] >= 4,
        "2017, 2018, 2019 and 2022"
    );
    // Little destruction: most of the stockpile is still there.
    assert!(outcome.expected.totals.held() > 2_800_000);
}

#[test]
fn finland_like_ledger_is_as_scripted_and_its_totals_sum_exactly() {
    use crate::story::finland::{
        PUTKIMIINA, PUTKIMIINA_UNITS, RETAINED_2020, SAKARAMIINA, SAKARAMIINA_UNITS,
    };
    let generated = demo(Dataset::FinlandLike);
    check_as_scripted(generated);
    let expected = &generated.outcome.expected;
    assert_eq!(expected.by_type[SAKARAMIINA].declared, SAKARAMIINA_UNITS);
    assert_eq!(expected.by_type[PUTKIMIINA].declared, PUTKIMIINA_UNITS);
    assert_eq!(
        expected.by_type[SAKARAMIINA].declared + expected.by_type[PUTKIMIINA].declared,
        1_029_763
    );
    assert_eq!(expected.totals.retained, RETAINED_2020);
    assert_eq!(
        expected.retained_by_institution.values().sum::<u64>(),
        15_982
    );
    assert_eq!(expected.totals.consumed, 16_500 - 15_982);
    for type_id in [SAKARAMIINA, PUTKIMIINA] {
        let totals = &expected.by_type[type_id];
        let accounted = totals.pools.destroyed
            + totals.pools.lost
            + totals.pools.consumed
            + totals.pools.retained;
        assert_eq!(
            accounted, totals.declared,
            "{type_id}: every declared unit is destroyed, lost, used or retained"
        );
        assert_eq!(
            totals.pools.stockpiled + totals.pools.in_transit + totals.pools.unreceived,
            0
        );
    }
    assert_eq!(
        expected.by_type["PMN"].pools.destroyed, 340,
        "the discovered lot"
    );
    let destroyed = expected.by_type[SAKARAMIINA].pools.destroyed
        + expected.by_type[PUTKIMIINA].pools.destroyed;
    assert!(
        (1_000_000..=1_013_263).contains(&destroyed),
        "about 1.01 million destroyed, got {destroyed}"
    );
}

#[test]
fn belarus_like_ledger_is_as_scripted() {
    let generated = demo(Dataset::BelarusLike);
    check_as_scripted(generated);
    let pfm = &generated.outcome.expected.by_type["PFM-1"];
    assert_eq!(pfm.declared, 3_400_000);
    assert_eq!(
        pfm.pools.destroyed + pfm.pools.lost,
        3_400_000,
        "all destroyed (a few units lost on the way)"
    );
    assert!(
        generated.outcome.observed.flags_by_code["article4.late_destruction"] > 200,
        "every destruction is late"
    );
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let config = ScenarioConfig {
        min_entries: 1_500,
        ..ScenarioConfig::demo(Dataset::UsLike)
    };
    let first = generate(&config);
    let again = generate(&config);
    assert_eq!(first.digest, again.digest);
    assert_eq!(first.records, again.records);
    let other = generate(&ScenarioConfig {
        seed: config.seed + 1,
        ..config.clone()
    });
    assert_ne!(first.digest, other.digest);
    // Padding reached the target and kept every invariant.
    assert!(
        first.outcome.entries >= 1_500,
        "{} entries",
        first.outcome.entries
    );
    assert!(first.outcome.padding_entries > 0);
    check_as_scripted(&first);
    check_as_scripted(&other);
}

#[test]
fn padding_keeps_the_finnish_figures() {
    let config = ScenarioConfig {
        min_entries: 1_600,
        ..ScenarioConfig::demo(Dataset::FinlandLike)
    };
    let generated = generate(&config);
    check_as_scripted(&generated);
    let expected = &generated.outcome.expected;
    assert!(generated.outcome.entries >= 1_600);
    assert_eq!(expected.totals.retained, 15_982);
    assert_eq!(expected.declared, 1_029_763 + 340);
}

#[test]
fn submissions_are_signed_in_order_and_recorded_after_they_occur() {
    let config = ScenarioConfig::demo(Dataset::BelarusLike);
    let mut submissions = submissions(&config);
    let keys = submissions.keys().clone();
    let mut last = i64::MIN;
    let mut count = 0u64;
    for submission in submissions.by_ref() {
        let decoded = decode_submission(&submission.bytes).expect("a well-formed submission");
        assert_eq!(decoded.key_id, submission.key_id);
        assert_eq!(decoded.event.event_id, submission.event_id);
        let key = match submission.role {
            Some(role) => keys.for_role(role),
            None => &keys.rogue,
        };
        assert_eq!(decoded.key_id, key.name());
        assert!(
            submission.recorded_at.0 >= last,
            "recorded_at never goes backwards"
        );
        assert!(submission.occurred_at <= submission.recorded_at);
        assert!(submission.recorded_at.0 - submission.occurred_at.0 < RECORDING_GAP_FLAG_MS);
        last = submission.recorded_at.0;
        count += 1;
    }
    let expectations = submissions.expectations();
    assert_eq!(
        count,
        expectations.story_entries + expectations.padding_entries
    );
    assert_eq!(
        expectations.totals,
        demo(Dataset::BelarusLike).outcome.expected
    );
}

#[test]
fn the_export_verifies_against_the_trust_root() {
    let config = ScenarioConfig::demo(Dataset::FinlandLike);
    let mut bytes = Vec::new();
    let outcome = write_export(&config, &mut bytes).expect("writing to memory");
    let trust = TrustRoot::parse_json(&outcome.trust_root).expect("the trust root parses");
    let report = verify_export(bytes.as_slice(), &trust, &VerifyOptions::default(), |_| {})
        .expect("readable");
    assert!(report.is_clean(), "findings: {:#?}", report.findings);
    assert_eq!(report.entries, outcome.entries);
    assert_eq!(report.rejected, outcome.rejected);
    assert_eq!(report.checkpoints_verified, outcome.checkpoints);
    assert_eq!(report.unsigned_tail_entries, 0);
    assert_eq!(report.summary.declared, outcome.expected.declared);
    assert_eq!(report.summary.totals, pools(&outcome.expected.totals));
    assert_eq!(
        outcome.expected,
        demo(Dataset::FinlandLike).outcome.expected
    );
}

#[test]
fn other_seeds_are_as_scripted_too() {
    for dataset in Dataset::ALL {
        for seed in [1, 2] {
            check_as_scripted(&generate(&ScenarioConfig {
                seed,
                ..ScenarioConfig::demo(dataset)
            }));
        }
    }
}

#[test]
fn a_failing_writer_stops_the_export() {
    /// Accepts `left` bytes, then fails.
    struct Failing {
        left: usize,
    }
    impl std::io::Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::other("disk full"));
            }
            let written = buf.len().min(self.left);
            self.left -= written;
            Ok(written)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let config = ScenarioConfig::demo(Dataset::UsLike);
    let error = write_export(&config, Failing { left: 10_000 }).expect_err("the writer fails");
    assert_eq!(error.to_string(), "disk full");
}

#[test]
fn data_set_names_parse() {
    for dataset in Dataset::ALL {
        assert_eq!(dataset.name().parse::<Dataset>(), Ok(dataset));
    }
    assert_eq!("Finland".parse::<Dataset>(), Ok(Dataset::FinlandLike));
    assert!("atlantis".parse::<Dataset>().is_err());
}
