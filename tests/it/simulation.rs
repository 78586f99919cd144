//! The seeded deterministic simulation (`support/sim.rs`): emitters, two sequencers and
//! a projector over a bus model that drops, duplicates, delays and reorders, with
//! crashes, judged against the reference model. A failing seed is printed with the
//! command that replays it; `STOCKPILE_SIM_SEEDS=N` runs seeds `0..N` (a soak),
//! `STOCKPILE_SIM_SEED=S` runs seed `S` alone.

use crate::support::sim::{Bugs, SimConfig, SimOutcome, Stats, run};

/// Seeds run by a plain `cargo test`.
const DEFAULT_SEEDS: u64 = 20;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

/// The seeds to run: `STOCKPILE_SIM_SEED` alone, or `0..STOCKPILE_SIM_SEEDS`.
fn seeds() -> Vec<u64> {
    match env_u64("STOCKPILE_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("STOCKPILE_SIM_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    }
}

/// Runs `seed`; on failure panics naming the seed and how to replay it.
#[track_caller]
fn check(seed: u64) -> SimOutcome {
    match run(SimConfig {
        seed,
        bugs: Bugs::default(),
    }) {
        Ok(outcome) => outcome,
        Err(problem) => panic!(
            "simulation seed {seed} failed: {problem}\n\
             replay it with: STOCKPILE_SIM_SEED={seed} cargo test -p stockpile-tests --test it simulation::"
        ),
    }
}

#[test]
fn every_seed_keeps_the_ledger_exact_and_the_views_equal_to_a_rebuild() {
    let seeds = seeds();
    let mut total = Stats::default();
    for &seed in &seeds {
        let stats = check(seed).stats;
        if std::env::var_os("STOCKPILE_SIM_VERBOSE").is_some() {
            eprintln!("seed {seed}: {stats:?}");
        }
        total.steps += stats.steps;
        total.submissions += stats.submissions;
        total.ledger_entries += stats.ledger_entries;
        total.messages_dropped += stats.messages_dropped;
        total.messages_duplicated += stats.messages_duplicated;
        total.acks_lost += stats.acks_lost;
        total.publishes_deduplicated += stats.publishes_deduplicated;
        total.late_duplicates += stats.late_duplicates;
        total.emitter_crashes += stats.emitter_crashes;
        total.sequencer_crashes += stats.sequencer_crashes;
        total.projector_crashes += stats.projector_crashes;
        total.sequencer_rebuilds += stats.sequencer_rebuilds;
        total.fence_refusals += stats.fence_refusals;
        total.consumer_repositions += stats.consumer_repositions;
        total.projector_direct_gets += stats.projector_direct_gets;
        total.projector_redeliveries_skipped += stats.projector_redeliveries_skipped;
        total.checkpoints += stats.checkpoints;
    }
    eprintln!("simulation: {} seeds, {total:?}", seeds.len());
    if seeds.len() as u64 >= DEFAULT_SEEDS {
        // The faults did happen: a simulation that injects nothing proves nothing.
        for (what, count) in [
            ("dropped messages", total.messages_dropped),
            ("duplicated messages", total.messages_duplicated),
            ("lost acknowledgements", total.acks_lost),
            ("publishes deduplicated", total.publishes_deduplicated),
            (
                "copies stored after the duplicate window",
                total.late_duplicates,
            ),
            ("emitter crashes", total.emitter_crashes),
            ("sequencer crashes", total.sequencer_crashes),
            ("projector crashes", total.projector_crashes),
            ("appends refused by the fence", total.fence_refusals),
            ("consumer repositions", total.consumer_repositions),
            ("projector direct gets", total.projector_direct_gets),
            (
                "projector redeliveries skipped",
                total.projector_redeliveries_skipped,
            ),
            ("checkpoints", total.checkpoints),
        ] {
            assert!(count > 0, "no {what} in {} seeds", seeds.len());
        }
    }
}

#[test]
fn a_seed_replays_exactly() {
    let seed = env_u64("STOCKPILE_SIM_SEED").unwrap_or(7);
    let first = check(seed);
    let second = check(seed);
    assert_eq!(first, second, "seed {seed} ran twice differently");
    let other = check(seed + 1);
    assert_ne!(first.trace_digest, other.trace_digest);
}

/// Runs seeds with a bug until the checker catches it; returns the seed and the problem.
fn first_caught(bugs: Bugs) -> (u64, String) {
    (0..DEFAULT_SEEDS)
        .find_map(|seed| run(SimConfig { seed, bugs }).err().map(|e| (seed, e)))
        .unwrap_or_else(|| panic!("{bugs:?} went unnoticed in {DEFAULT_SEEDS} seeds"))
}

#[test]
fn a_sequencer_without_the_fence_is_caught() {
    let (seed, problem) = first_caught(Bugs {
        no_fence: true,
        ..Bugs::default()
    });
    eprintln!("no fence: seed {seed}: {problem}");
}

#[test]
fn a_sequencer_that_forgets_its_high_water_mark_is_caught() {
    let (seed, problem) = first_caught(Bugs {
        forget_high_water: true,
        ..Bugs::default()
    });
    eprintln!("forgotten high-water mark: seed {seed}: {problem}");
}
