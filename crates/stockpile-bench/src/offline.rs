//! (c) Ed25519 batch verification, (d) `stockpile verify` and its peak memory, (f)
//! inclusion proofs: the figures that need no server.
//!
//! - (c) is the machine's limit for what the verifier spends most of its time on: real
//!   signed submissions of a scenario (their event bytes under the signature tag, their
//!   keys), verified with `ed25519_dalek::verify_batch` in chunks of the verifier's size
//!   on every core through rayon, as the verifier does.
//! - (d) runs the real `stockpile verify` binary on an export the real `stockpile generate`
//!   wrote (cached in the work directory), and reads its peak resident memory (`VmHWM`)
//!   while it runs.
//! - (f) builds a [`ProofSource`] of synthetic entries with a signed checkpoint every
//!   [`CHECKPOINT_EVERY`] entries and times tlog-proofs as the projector serves them.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use ed25519_dalek::{Signature, VerifyingKey};
use rand::{Rng as _, SeedableRng as _};
use rayon::prelude::*;
use stockpile_core::checkpoint::{Checkpoint, sign_checkpoint};
use stockpile_core::hash::{Hash32, event_signature_message};
use stockpile_core::keys::SignerKey;
use stockpile_ledger::prove::{ProofSource, check_inclusion};
use stockpile_ledger::trust::TrustRoot;
use stockpile_proto::envelope::decode_submission;
use stockpile_scenario::ScenarioConfig;

use crate::BenchContext;
use crate::exports::{Export, ensure_export};
use crate::report::{Compare, Report, percentiles, section};
use crate::server::{cpu_seconds, peak_rss_bytes, sibling_binary};

/// The scenario seed of every generated ledger here (the issue's `--seed 7`).
const SEED: u64 = crate::exports::DATASET_SEED;

/// Signatures handed to one worker per `verify_batch` call: the verifier's
/// `SIGNATURE_BATCH` (crates/stockpile-ledger/src/verifier.rs).
const SIGNATURE_BATCH: usize = 256;

/// Real signed submissions taken from the scenario for (c): enough batches to keep every
/// core busy, few enough to sign in a moment.
const SIGNATURE_SAMPLE: usize = 8192;

/// How long (c) verifies signatures in one round, per figure.
const SIGNATURE_ROUND: Duration = Duration::from_secs(3);
const SIGNATURE_ROUND_QUICK: Duration = Duration::from_secs(1);

/// Rounds of (c), all cores and one core taking turns; the best round of each counts.
/// The machine may be shared: the best round is the closest to what it can do.
const SIGNATURE_ROUNDS: usize = 3;

/// Entries of the export verified for (d), and of the larger one for the memory ratio.
const VERIFY_ENTRIES: u64 = 1_000_000;
const VERIFY_ENTRIES_QUICK: u64 = 100_000;
const MEMORY_ENTRIES: u64 = 5_000_000;
const MEMORY_ENTRIES_QUICK: u64 = 500_000;

/// How often the verifier's `VmHWM` is read while it runs. `VmHWM` is a high-water mark,
/// so only growth in the last interval before exit could be missed.
const RSS_POLL: Duration = Duration::from_millis(5);

/// (d) target: `stockpile verify` at this fraction of the signature limit (c).
const VERIFY_TARGET_RATIO: f64 = 0.8;

/// Memory target: the 5M/1M peak ratio below this reads as independent of length.
const MEMORY_TARGET_RATIO: f64 = 1.25;

/// Tree sizes of (f).
const PROOF_SIZES: [u64; 2] = [1_000_000, 10_000_000];
const PROOF_SIZES_QUICK: [u64; 2] = [100_000, 1_000_000];

/// Inclusion proofs timed per size.
const PROOF_SAMPLES: usize = 10_000;

/// Proofs checked with `check_inclusion` per size, so the timed ones are known good.
const PROOF_CHECKS: usize = 100;

/// A signed checkpoint every this many entries, as `stockpile generate` writes them.
const CHECKPOINT_EVERY: u64 = 1000;

/// Bytes of a synthetic entry for (f): about an entry of the U.S.-like export
/// (347 MB / 1,000,138 entries).
const SYNTHETIC_ENTRY_BYTES: usize = 347;

/// (f) target: p99 of one proof, in microseconds.
const PROOF_P99_TARGET_US: f64 = 1000.0;

/// One signature of the (c) sample, decoded once so only verification is timed.
struct SignedMessage {
    message: Vec<u8>,
    signature: Signature,
    key: VerifyingKey,
}

pub fn signatures(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(c) Ed25519 batch verification, all cores");
    let sample = signature_sample(SIGNATURE_SAMPLE)?;
    let keys: std::collections::BTreeSet<[u8; 32]> =
        sample.iter().map(|item| item.key.to_bytes()).collect();
    let mean_message =
        sample.iter().map(|item| item.message.len()).sum::<usize>() as f64 / sample.len() as f64;
    report.note(format!(
        "(c) sample: the first {} submissions of the U.S.-like scenario (seed {SEED}), {} distinct keys, messages (tag + event bytes) of {mean_message:.0} bytes on average; batches of {SIGNATURE_BATCH} on {} rayon threads",
        sample.len(),
        keys.len(),
        rayon::current_num_threads()
    ));
    let round = if context.quick {
        SIGNATURE_ROUND_QUICK
    } else {
        SIGNATURE_ROUND
    };
    let one_core = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .context("a one-thread pool")?;
    let mut all = Vec::new();
    let mut one = Vec::new();
    for _ in 0..SIGNATURE_ROUNDS {
        all.push(verify_for(&sample, round)?);
        one.push(one_core.install(|| verify_for(&sample, round))?);
    }
    let best = |rounds: &[Rate]| {
        rounds
            .iter()
            .copied()
            .max_by(|a, b| a.per_s().total_cmp(&b.per_s()))
    };
    let (Some(all), Some(one)) = (best(&all), best(&one)) else {
        bail!("no round of signature verification ran");
    };
    report.rate(
        "signatures.per_s",
        "Ed25519 verify_batch, all cores",
        all.count,
        all.elapsed,
        "signatures/s",
    );
    report.rate(
        "signatures.per_s_one_core",
        "Ed25519 verify_batch, one core",
        one.count,
        one.elapsed,
        "signatures/s",
    );
    if let Some(cpu) = all.cpu_seconds {
        report.figure(
            "signatures.cpu_us_per_signature",
            "  CPU time per signature (all cores)",
            cpu * 1e6 / all.count as f64,
            "µs",
        );
    }
    report.note(format!(
        "(c) best of {SIGNATURE_ROUNDS} rounds of {} s each, all cores and one core taking turns",
        round.as_secs()
    ));
    Ok(())
}

/// Signatures verified in one round, and the CPU this process used meanwhile.
#[derive(Debug, Clone, Copy)]
struct Rate {
    count: u64,
    elapsed: Duration,
    cpu_seconds: Option<f64>,
}

impl Rate {
    fn per_s(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The first `count` authorised submissions of a padded scenario, as the verifier checks
/// them: the signature tag and the exact event bytes, the signature, the signer's key.
fn signature_sample(count: usize) -> anyhow::Result<Vec<SignedMessage>> {
    // Padding to a million entries makes the sample the mix of a volume ledger (mostly
    // routine depot and inspector events), not of the story's first steps alone.
    let config = ScenarioConfig::volume(SEED, VERIFY_ENTRIES);
    let mut submissions = stockpile_scenario::submissions(&config);
    let mut sample = Vec::with_capacity(count);
    while sample.len() < count {
        let Some(submission) = submissions.next() else {
            bail!("the scenario ended after {} submissions", sample.len());
        };
        // The never-authorised key's hostile submission is not something a batch sees.
        let Some(public) = submissions.keys().authorised_public_key(&submission.key_id) else {
            continue;
        };
        let decoded = decode_submission(&submission.bytes)
            .map_err(|error| anyhow::anyhow!("a scenario submission does not decode: {error}"))?;
        let signature = <[u8; 64]>::try_from(decoded.signature.as_ref())
            .context("a scenario signature is not 64 bytes")?;
        sample.push(SignedMessage {
            message: event_signature_message(&decoded.event_bytes),
            signature: Signature::from_bytes(&signature),
            key: VerifyingKey::from_bytes(&public).context("a scenario key does not decode")?,
        });
    }
    Ok(sample)
}

/// Verifies the sample in batches on the current rayon pool, pass after pass, for at
/// least `duration`.
fn verify_for(sample: &[SignedMessage], duration: Duration) -> anyhow::Result<Rate> {
    let pid = std::process::id();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        let all_valid = sample.par_chunks(SIGNATURE_BATCH).all(|chunk| {
            let messages: Vec<&[u8]> = chunk.iter().map(|item| item.message.as_slice()).collect();
            let signatures: Vec<Signature> = chunk.iter().map(|item| item.signature).collect();
            let keys: Vec<VerifyingKey> = chunk.iter().map(|item| item.key).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
        });
        ensure!(all_valid, "a batch of genuine signatures failed to verify");
        count += sample.len() as u64;
    }
    let elapsed = started.elapsed();
    let cpu_seconds = cpu_before
        .zip(cpu_seconds(pid))
        .map(|(before, after)| after - before);
    Ok(Rate {
        count,
        elapsed,
        cpu_seconds,
    })
}

pub fn verify(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(d) stockpile verify on an export");
    let (entries, large) = if context.quick {
        (VERIFY_ENTRIES_QUICK, MEMORY_ENTRIES_QUICK)
    } else {
        (VERIFY_ENTRIES, MEMORY_ENTRIES)
    };
    let stockpile = sibling_binary("stockpile")?;
    let small = ensure_export(&context.work, entries)?;
    let run = run_verify(&stockpile, &small, &context.work)?;
    let label = format!("stockpile verify, {} entries", thousands(run.entries));
    let rate = report.rate(
        "verify.entries_per_s",
        &label,
        run.entries,
        run.elapsed,
        "entries/s",
    );
    report.figure(
        "verify.seconds",
        "  wall time",
        run.elapsed.as_secs_f64(),
        "s",
    );
    if let Some(cpu) = run.cpu_seconds {
        report.figure(
            "verify.cpu_seconds",
            "  CPU time (user + system, all threads)",
            cpu,
            "s",
        );
        let per_entry = report.figure(
            "verify.cpu_us_per_entry",
            "  CPU time per entry",
            cpu * 1e6 / run.entries as f64,
            "µs",
        );
        // The same comparison in CPU time, which other load on the machine disturbs far
        // less than wall time.
        if let Some(per_signature) = report.value("signatures.cpu_us_per_signature") {
            report.figure(
                "verify.cpu_ratio",
                "  CPU per signature (c) / CPU per verified entry",
                per_signature / per_entry,
                "×",
            );
        }
    }
    match report.value("signatures.per_s") {
        Some(limit) => report.target(
            "(d) verify / signature limit",
            rate / limit,
            Compare::AtLeast,
            VERIFY_TARGET_RATIO,
            "×",
        ),
        None => {
            report.note("(d) no ratio: run the signatures section first (--only signatures,verify)")
        }
    }

    section("verifier peak memory");
    report.figure(
        "verify.peak_rss_1m_bytes",
        &format!(
            "peak RSS of stockpile verify, {} entries",
            thousands(run.entries)
        ),
        run.peak_rss_bytes as f64,
        "bytes",
    );
    let big = ensure_export(&context.work, large)?;
    let big_run = run_verify(&stockpile, &big, &context.work)?;
    report.figure(
        "verify.peak_rss_5m_bytes",
        &format!(
            "peak RSS of stockpile verify, {} entries",
            thousands(big_run.entries)
        ),
        big_run.peak_rss_bytes as f64,
        "bytes",
    );
    report.rate(
        "verify.entries_per_s_5m",
        &format!("stockpile verify, {} entries", thousands(big_run.entries)),
        big_run.entries,
        big_run.elapsed,
        "entries/s",
    );
    let growth = big_run.peak_rss_bytes.saturating_sub(run.peak_rss_bytes) as f64
        / big_run.entries.saturating_sub(run.entries).max(1) as f64;
    report.figure(
        "verify.rss_bytes_per_entry",
        "  peak RSS growth per added entry",
        growth,
        "bytes",
    );
    report.target(
        &format!(
            "verifier memory: peak RSS {}/{} entries",
            short_count(large),
            short_count(entries)
        ),
        big_run.peak_rss_bytes as f64 / run.peak_rss_bytes.max(1) as f64,
        Compare::Below,
        MEMORY_TARGET_RATIO,
        "×",
    );
    report.note(format!(
        "(d) peak RSS is VmHWM read every {} ms while stockpile verify runs (a high-water mark: only growth in its last {} ms could be missed)",
        RSS_POLL.as_millis(),
        RSS_POLL.as_millis()
    ));
    Ok(())
}

/// One `stockpile verify` run.
struct VerifyRun {
    entries: u64,
    elapsed: Duration,
    peak_rss_bytes: u64,
    cpu_seconds: Option<f64>,
}

/// Runs `stockpile verify --json` on the export as a child process, its report going to
/// a file beside the export; times it, follows its peak memory and CPU time, and checks
/// that the ledger verified clean.
fn run_verify(stockpile: &Path, export: &Export, work: &Path) -> anyhow::Result<VerifyRun> {
    let report_path = export.export.with_extension("verify.json");
    let report_file = File::create(&report_path)
        .with_context(|| format!("creating {}", report_path.display()))?;
    let stderr_path = work.join("verify.stderr");
    let stderr_file = File::create(&stderr_path)
        .with_context(|| format!("creating {}", stderr_path.display()))?;
    let started = Instant::now();
    let mut child = Command::new(stockpile)
        .arg("verify")
        .arg(&export.export)
        .arg("--trust")
        .arg(&export.trust)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(report_file)
        .stderr(stderr_file)
        .spawn()
        .context("starting stockpile verify")?;
    let pid = child.id();
    let mut peak = 0u64;
    let mut cpu = None;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for stockpile verify")? {
            break status;
        }
        if let Some(hwm) = peak_rss_bytes(pid) {
            peak = peak.max(hwm);
        }
        cpu = cpu_seconds(pid).or(cpu);
        std::thread::sleep(RSS_POLL);
    };
    let elapsed = started.elapsed();
    if !status.success() {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        bail!(
            "stockpile verify {} exited with {status} (report in {}): {}",
            export.export.display(),
            report_path.display(),
            stderr.trim()
        );
    }
    let text = std::fs::read_to_string(&report_path)
        .with_context(|| format!("reading {}", report_path.display()))?;
    let verdict: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", report_path.display()))?;
    let entries = verdict["entries"]
        .as_u64()
        .context("the verify report has no entry count")?;
    ensure!(
        verdict["findings_total"].as_u64() == Some(0),
        "stockpile verify found problems in {}",
        export.export.display()
    );
    Ok(VerifyRun {
        entries,
        elapsed,
        peak_rss_bytes: peak,
        cpu_seconds: cpu,
    })
}

pub fn proofs(report: &mut Report, context: &BenchContext) -> anyhow::Result<()> {
    section("(f) inclusion-proof generation");
    let sizes = if context.quick {
        PROOF_SIZES_QUICK
    } else {
        PROOF_SIZES
    };
    report.note(format!(
        "(f) the tree holds synthetic {SYNTHETIC_ENTRY_BYTES}-byte entries (the leaves are all a proof needs), with a checkpoint signed by a log key every {CHECKPOINT_EVERY} entries as stockpile generate writes them; each proof is ProofSource::inclusion plus its tlog-proof text, as the projector serves it"
    ));
    for size in sizes {
        proofs_at(report, size)?;
    }
    Ok(())
}

/// The bytes of synthetic entry `index`: distinct per index, of an entry's size.
fn synthetic_entry(index: u64) -> Vec<u8> {
    let mut bytes = vec![0x5a; SYNTHETIC_ENTRY_BYTES];
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    bytes
}

fn proofs_at(report: &mut Report, size: u64) -> anyhow::Result<()> {
    let origin = "bench.stockpile.example/proofs";
    let log = SignerKey::from_seed(origin, Hash32::digest(b"stockpile-bench log key").0)
        .context("the bench log key")?;
    let log_keys = vec![log.verifier_key()];
    let tag = short_count(size);

    let rss_before = own_rss_bytes();
    let started = Instant::now();
    let mut source = ProofSource::new();
    for index in 0..size {
        source.push_entry(&synthetic_entry(index));
        let entries = index + 1;
        if entries % CHECKPOINT_EVERY == 0 || entries == size {
            let root = source
                .root_at(entries)
                .context("the root of the entries pushed")?;
            let checkpoint = Checkpoint {
                origin: origin.to_string(),
                size: entries,
                root,
                extensions: Vec::new(),
            };
            let note = sign_checkpoint(&checkpoint, &log).context("signing a checkpoint")?;
            source
                .add_checkpoint(note.as_bytes(), origin, &log_keys)
                .context("adding a checkpoint")?;
        }
    }
    let build = started.elapsed();
    report.figure(
        &format!("proofs.build_seconds_{tag}"),
        &format!(
            "build ProofSource of {} entries ({} checkpoints)",
            thousands(size),
            thousands(source.checkpoints().len() as u64)
        ),
        build.as_secs_f64(),
        "s",
    );
    if let (Some(before), Some(after)) = (rss_before, own_rss_bytes()) {
        report.figure(
            &format!("proofs.source_rss_bytes_{tag}"),
            "  resident memory it added",
            after.saturating_sub(before) as f64,
            "bytes",
        );
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let indices: Vec<u64> = (0..PROOF_SAMPLES).map(|_| rng.gen_range(0..size)).collect();
    let trust = TrustRoot {
        origin: origin.to_string(),
        log_keys: log_keys.clone(),
        authority_keys: Vec::new(),
    };
    for (kind, checkpoint) in [("at_size", Some(size)), ("latest", None)] {
        let mut samples = Vec::with_capacity(indices.len());
        for (n, &index) in indices.iter().enumerate() {
            let started = Instant::now();
            let proof = source
                .inclusion(index, checkpoint)
                .with_context(|| format!("proof of entry {index}"))?
                .to_string();
            samples.push(started.elapsed());
            if n < PROOF_CHECKS {
                check_inclusion(proof.as_bytes(), &synthetic_entry(index), &trust)
                    .with_context(|| format!("the proof of entry {index} does not verify"))?;
            }
        }
        let p = percentiles(&mut samples);
        let what = match checkpoint {
            Some(_) => format!("checkpoint of size {}", thousands(size)),
            None => "latest checkpoint".to_string(),
        };
        report.figure(
            &format!("proofs.{kind}_p50_us_{tag}"),
            &format!("inclusion proof p50, {tag} entries, {what}"),
            p.p50_us,
            "µs",
        );
        report.figure(
            &format!("proofs.{kind}_p99_us_{tag}"),
            &format!("inclusion proof p99, {tag} entries, {what}"),
            p.p99_us,
            "µs",
        );
        if checkpoint.is_some() {
            report.target(
                &format!("(f) proof p99 at {tag} < 1 ms"),
                p.p99_us,
                Compare::Below,
                PROOF_P99_TARGET_US,
                "µs",
            );
        }
    }
    Ok(())
}

/// This process's resident memory now (`VmRSS`), in bytes.
fn own_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// `1M`, `10M`, `100k`: sizes in keys and labels.
fn short_count(count: u64) -> String {
    if count >= 1_000_000 && count.is_multiple_of(1_000_000) {
        format!("{}M", count / 1_000_000)
    } else if count >= 1000 && count.is_multiple_of(1000) {
        format!("{}k", count / 1000)
    } else {
        count.to_string()
    }
}

/// `1,000,138` (and `100`, not `100.0`).
fn thousands(count: u64) -> String {
    if count < 1000 {
        count.to_string()
    } else {
        crate::report::format_value(count as f64)
    }
}
