//! Generates a padded ledger into a sink that only counts, and prints the outcome and
//! the rate: `cargo run --release -p stockpile-scenario --example volume -- [entries] [dataset] [seed]`.

use std::time::Instant;
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioRecord, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let entries: u64 = args
        .next()
        .map_or(100_000, |text| text.parse().expect("entries"));
    let dataset: Dataset = args
        .next()
        .map_or(Dataset::UsLike, |text| text.parse().expect("dataset"));
    let seed: u64 = args.next().map_or(1, |text| text.parse().expect("seed"));
    let config = ScenarioConfig {
        dataset,
        ..ScenarioConfig::volume(seed, entries)
    };
    if let Some(seeds) = std::env::var_os("SWEEP") {
        let seeds: u64 = seeds
            .to_str()
            .and_then(|text| text.parse().ok())
            .expect("SWEEP=<seeds>");
        let mut failures = 0;
        for dataset in Dataset::ALL {
            for seed in 1..=seeds {
                let config = ScenarioConfig {
                    seed,
                    dataset,
                    min_entries: entries,
                    checkpoint_every: 1_000,
                };
                let outcome = generate(&config, &mut |_| {});
                let totals = &outcome.expected.totals;
                let conserved = totals.held() + totals.gone() == outcome.expected.declared;
                if !outcome.observed.is_as_scripted() || !conserved {
                    failures += 1;
                    println!("{dataset} seed {seed}: {:#?}", outcome.observed);
                }
            }
            println!("{dataset}: {seeds} seeds done");
        }
        println!("{failures} failures");
        return;
    }
    if std::env::var_os("SUBMISSIONS_ONLY").is_some() {
        let started = Instant::now();
        let mut count = 0u64;
        for _ in stockpile_scenario::submissions(&config) {
            count += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{count} submissions in {seconds:.1} s: {:.0}/s",
            count as f64 / seconds
        );
        return;
    }
    let started = Instant::now();
    let (mut records, mut bytes) = (0u64, 0u64);
    let outcome = generate(&config, &mut |record| {
        records += 1;
        bytes += match &record {
            ScenarioRecord::Entry(entry) => entry.len() as u64,
            ScenarioRecord::Checkpoint(note) => note.len() as u64,
        };
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut summary = outcome.clone();
    summary.expected.by_site.clear();
    summary.trust_root.clear();
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).expect("outcome serializes")
    );
    println!(
        "{} entries, {records} records, {bytes} bytes in {seconds:.1} s: {:.0} entries/s; as scripted: {}",
        outcome.entries,
        outcome.entries as f64 / seconds,
        outcome.observed.is_as_scripted()
    );
}
