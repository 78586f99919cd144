//! The fuzz smoke run inside `make test`: every target over its seeds, over the
//! regression inputs in `tests/regressions/<target>/`, and over a few thousand seeded
//! mutations of the seeds. A failure prints the target, the case seed and the command
//! that replays it, and writes the input to `target/fuzz-failures/` for `cargo fuzz run`.
//!
//! `STOCKPILE_FUZZ_SEED=<n>` changes the base seed, `STOCKPILE_FUZZ_CASES=<n>` the
//! mutations per target, `STOCKPILE_FUZZ_REPLAY=<target>:<case seed>` runs one case.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;
use stockpile_fuzz::mutate::{Rng, mutate};
use stockpile_fuzz::seeds::{Seed, seeds};
use stockpile_fuzz::{TARGETS, run};

/// Mutations per target by default: 20,000 cases in all, about 5 s in a debug build.
const CASES_PER_TARGET: u64 = 2500;
const BASE_SEED: u64 = 0x5eed_f022;

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The input of mutation case `case_seed` of `target`.
fn case_input(target_seeds: &[&Seed], case_seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(case_seed);
    let input = target_seeds[rng.below(target_seeds.len())];
    let other = target_seeds[rng.below(target_seeds.len())];
    mutate(&input.bytes, &other.bytes, &mut rng)
}

fn case_seed(base: u64, target_number: usize, case: u64) -> u64 {
    base ^ ((target_number as u64) << 40) ^ case.wrapping_mul(0x9e37_79b9)
}

fn runs_cleanly(target: &str, data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| {
        assert!(run(target, data), "no target {target}");
    }))
    .map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

fn failure_file(target: &str, label: &str, data: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
    let path = dir.join(format!("{target}-{label}"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, data);
    path
}

fn regression_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (
                name,
                std::fs::read(entry.path()).expect("a regression file reads"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_target_survives_its_seeds_regressions_and_mutations() {
    let all = seeds();
    if let Ok(replay) = std::env::var("STOCKPILE_FUZZ_REPLAY") {
        let (target, seed) = replay.split_once(':').expect("<target>:<case seed>");
        let seed: u64 = seed.parse().expect("a decimal case seed");
        let target_seeds: Vec<&Seed> = all.iter().filter(|s| s.target == target).collect();
        let input = case_input(&target_seeds, seed);
        let path = failure_file(target, &seed.to_string(), &input);
        eprintln!(
            "replaying {target} case {seed} ({} bytes, {})",
            input.len(),
            path.display()
        );
        assert!(run(target, &input), "no target {target}");
        return;
    }
    let base = env_u64("STOCKPILE_FUZZ_SEED").unwrap_or(BASE_SEED);
    let cases = env_u64("STOCKPILE_FUZZ_CASES").unwrap_or(CASES_PER_TARGET);
    let mut failures = Vec::new();
    for (number, (target, _)) in TARGETS.iter().enumerate() {
        let started = Instant::now();
        let target_seeds: Vec<&Seed> = all.iter().filter(|s| s.target == *target).collect();
        assert!(!target_seeds.is_empty(), "no seeds for {target}");
        for seed in &target_seeds {
            if let Err(message) = runs_cleanly(target, &seed.bytes) {
                let path = failure_file(target, &seed.name, &seed.bytes);
                failures.push(format!(
                    "{target}: seed input {} failed: {message}\n  input: {}",
                    seed.name,
                    path.display()
                ));
            }
        }
        let regressions = regression_inputs(target);
        for (name, data) in &regressions {
            if let Err(message) = runs_cleanly(target, data) {
                failures.push(format!("{target}: regression {name} failed: {message}"));
            }
        }
        for case in 0..cases {
            let seed = case_seed(base, number, case);
            let input = case_input(&target_seeds, seed);
            if let Err(message) = runs_cleanly(target, &input) {
                let path = failure_file(target, &seed.to_string(), &input);
                failures.push(format!(
                    "{target}: case seed {seed} failed: {message}\n  \
                     replay: STOCKPILE_FUZZ_REPLAY={target}:{seed} cargo test -p stockpile-fuzz --test smoke -- --nocapture\n  \
                     or:     cargo fuzz run {target} {}",
                    path.display()
                ));
            }
        }
        eprintln!(
            "{target}: {} seeds, {} regressions, {cases} mutations in {:.1?}",
            target_seeds.len(),
            regressions.len(),
            started.elapsed()
        );
    }
    assert!(
        failures.is_empty(),
        "{} fuzz case(s) failed (base seed {base:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every target has a cargo fuzz harness and every harness a target.
#[test]
fn every_target_has_a_cargo_fuzz_harness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    let mut harnesses: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets exists")
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    harnesses.sort();
    let mut targets: Vec<String> = TARGETS.iter().map(|(name, _)| name.to_string()).collect();
    targets.sort();
    assert_eq!(harnesses, targets);
    let manifest = std::fs::read_to_string(dir.join("../Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in &targets {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml declares no [[bin]] {target}"
        );
    }
}

/// The mutator is deterministic: a case seed is a replayable input.
#[test]
fn a_case_seed_replays_the_same_input() {
    let input = b"tlog-proof/v1\nindex 1\n\nnote\n".to_vec();
    let other = b"other".to_vec();
    for seed in 0..200 {
        let a = mutate(&input, &other, &mut Rng::new(seed));
        let b = mutate(&input, &other, &mut Rng::new(seed));
        assert_eq!(a, b);
    }
}
