//! The `stockpile` command line: what an inspector (and a script) runs.
//!
//! Commands: `keygen`, `verify` (an export file, or the live ledger with `--nats`),
//! `export`, `checkpoint`, `emit`, `prove`, `check-proof`, `inspect`, `generate`;
//! `query` (a view as JSON) and `report article7` from an export, the live ledger or a
//! projector (module `query`; there, exit 1 means no such lot).
//! Exit codes: 0 clean (or proof valid), 1 findings (or proof invalid), 2 usage or I/O
//! error. [`run`] takes the arguments and the output streams, so tests drive the real
//! command in-process.

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use stockpile_core::keys::SignerKey;
use stockpile_ledger::export::ExportReader;
use stockpile_ledger::prove::{ProofSource, check_consistency, check_inclusion};
use stockpile_ledger::trust::TrustRoot;
use stockpile_ledger::verifier::{Report, VerifyOptions, verify_export};
use stockpile_proto::envelope::{EntryVerdict, decode_entry, decode_submission};
use stockpile_proto::export_codec::ExportRecord;
use stockpile_scenario::{Dataset, ScenarioConfig};

mod nats;
mod query;

/// Exit code: everything verified.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: the ledger has findings, or a proof does not verify.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: bad usage, or a file could not be read or written.
pub const EXIT_ERROR: u8 = 2;

/// Findings printed in the human summary; `--json` lists them all (up to the kept limit).
const FINDINGS_PRINTED_MAX: usize = 25;

/// Flags printed in the human summary; `--json` lists them all (up to the kept limit).
const FLAGS_PRINTED_MAX: usize = 25;

#[derive(Debug, Parser)]
#[command(
    name = "stockpile",
    version,
    about = "Verify and prove the stockpile ledger, offline."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make an Ed25519 signing key: the secret goes to a file (mode 0600), the C2SP
    /// verifier key is printed.
    Keygen {
        /// Key name: for a log key, the ledger origin; for a signer, its key id.
        #[arg(long)]
        name: String,
        /// Where to write the secret key.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Verify an export offline against a trust root, or the live ledger with --nats.
    Verify {
        /// The export file (or use --nats).
        #[arg(required_unless_present = "url", conflicts_with = "url")]
        export: Option<PathBuf>,
        #[command(flatten)]
        nats: nats::NatsArgs,
        /// The trust-root JSON file (origin, log keys, authority keys).
        #[arg(long)]
        trust: PathBuf,
        /// A signed checkpoint held apart from the export; may be repeated.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// Print the full report as JSON.
        #[arg(long)]
        json: bool,
        /// Check every signature strictly, one by one (the sequencer's rule), instead of
        /// in Ed25519 batches: slower, and refuses non-canonical signatures outright.
        #[arg(long)]
        strict_signatures: bool,
    },
    /// Write an export of the live ledger (entries and signed checkpoints) to a file.
    Export {
        #[command(flatten)]
        nats: nats::NatsArgs,
        /// The export to write (written beside it and renamed when complete).
        #[arg(long)]
        out: PathBuf,
        /// The ledger origin for the export header (default: from the latest checkpoint).
        #[arg(long)]
        origin: Option<String>,
    },
    /// Sign and submit one event from JSON (for scripts); waits for its receipt.
    /// Exit 0 accepted, 1 rejected by the sequencer, 2 error or still pending.
    Emit(nats::EmitArgs),
    /// Print the latest signed checkpoint of the live ledger.
    Checkpoint {
        #[command(flatten)]
        nats: nats::NatsArgs,
        /// Verify it against this trust root first; a checkpoint that fails is not printed.
        #[arg(long)]
        trust: Option<PathBuf>,
    },
    /// Produce a proof from an export.
    #[command(subcommand)]
    Prove(ProveCommand),
    /// Check a proof offline against a trust root.
    #[command(subcommand, name = "check-proof")]
    CheckProof(CheckProofCommand),
    /// Show the entries and events of an export in readable form.
    Inspect {
        export: PathBuf,
        /// First entry index to show.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most entries to show.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// One JSON object per line, with the decoded event.
        #[arg(long)]
        json: bool,
    },
    /// Answer a view as JSON from an export, the live ledger or a projector.
    /// Exit 0 answered, 1 no such lot, 2 error.
    Query(query::QueryArgs),
    /// Write a report (Article 7) from an export, the live ledger or a projector.
    #[command(subcommand)]
    Report(query::ReportCommand),
    /// Generate a signed scenario ledger (an export and its trust root).
    Generate {
        #[arg(long, value_enum, default_value_t = DatasetArg::Us)]
        dataset: DatasetArg,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Pad with routine operations up to at least this many entries.
        #[arg(long, default_value_t = 0)]
        entries: u64,
        /// Entries between signed checkpoints.
        #[arg(long, default_value_t = 1000)]
        checkpoint_every: u64,
        /// The export to write.
        #[arg(long)]
        out: PathBuf,
        /// Where to write the trust root.
        #[arg(long)]
        trust_out: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DatasetArg {
    Us,
    Finland,
    Belarus,
}

#[derive(Debug, Subcommand)]
enum ProveCommand {
    /// A C2SP tlog-proof that entry INDEX is in the ledger.
    Inclusion {
        #[arg(long)]
        export: PathBuf,
        #[arg(long)]
        trust: PathBuf,
        #[arg(long)]
        index: u64,
        /// Prove against the checkpoint of this size (default: the latest that covers it).
        #[arg(long)]
        size: Option<u64>,
        /// Where to write the proof (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the entry's bytes here, for `check-proof inclusion --entry`.
        #[arg(long)]
        entry_out: Option<PathBuf>,
    },
    /// A consistency proof between two checkpoints of the export.
    Consistency {
        #[arg(long)]
        export: PathBuf,
        #[arg(long)]
        trust: PathBuf,
        #[arg(long)]
        old: u64,
        #[arg(long)]
        new: u64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CheckProofCommand {
    /// Check a tlog-proof for an entry.
    Inclusion {
        #[arg(long)]
        proof: PathBuf,
        /// The entry's bytes, as stored in the ledger.
        #[arg(long)]
        entry: PathBuf,
        #[arg(long)]
        trust: PathBuf,
    },
    /// Check a consistency-proof file.
    Consistency {
        #[arg(long)]
        proof: PathBuf,
        #[arg(long)]
        trust: PathBuf,
    },
}

/// Runs the command line `args` (program name first) and returns the exit code.
pub fn run(args: Vec<OsString>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let text = error.render().to_string();
            let code = if error.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_CLEAN
            };
            let _ = if error.use_stderr() {
                write!(err, "{text}")
            } else {
                write!(out, "{text}")
            };
            return code;
        }
    };
    match dispatch(cli.command, out, err) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(err, "stockpile: error: {error:#}");
            EXIT_ERROR
        }
    }
}

fn dispatch(command: Command, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    match command {
        Command::Keygen {
            name,
            out: path,
            force,
        } => keygen(&name, &path, force, out),
        Command::Verify {
            export: Some(export),
            trust,
            checkpoints,
            json,
            strict_signatures,
            ..
        } => verify(&export, &trust, &checkpoints, json, strict_signatures, out),
        Command::Verify {
            export: None,
            nats,
            trust,
            checkpoints,
            json,
            strict_signatures,
        } => verify_live(&nats, &trust, &checkpoints, json, strict_signatures, out),
        Command::Export {
            nats,
            out: path,
            origin,
        } => {
            let origin = match origin {
                Some(origin) => origin,
                None => nats::origin_from_checkpoints(&nats)?,
            };
            let (entries, checkpoints) = nats::export(&nats, &origin, &path)?;
            writeln!(
                out,
                "wrote {} ({} entries, {} checkpoints)",
                path.display(),
                thousands(entries),
                thousands(checkpoints)
            )?;
            Ok(EXIT_CLEAN)
        }
        Command::Emit(args) => Ok(match nats::emit(&args, out)? {
            nats::Emitted::Accepted => EXIT_CLEAN,
            nats::Emitted::Rejected => EXIT_FINDINGS,
            nats::Emitted::Pending if args.no_wait => EXIT_CLEAN,
            nats::Emitted::Pending => {
                bail!(
                    "no receipt within {} s; the event stays in the outbox {} and is sent on the next run",
                    args.timeout_secs,
                    args.outbox.display()
                )
            }
        }),
        Command::Checkpoint { nats, trust } => {
            let trust = trust.as_deref().map(read_trust).transpose()?;
            Ok(if nats::checkpoint(&nats, trust.as_ref(), out)? {
                EXIT_CLEAN
            } else {
                EXIT_FINDINGS
            })
        }
        Command::Prove(prove) => prove_command(prove, out),
        Command::CheckProof(check) => check_proof(check, out),
        Command::Inspect {
            export,
            from,
            limit,
            json,
        } => inspect(&export, from, limit, json, out),
        Command::Query(args) => query::query(&args, out, err),
        Command::Report(command) => query::report(&command, out, err),
        Command::Generate {
            dataset,
            seed,
            entries,
            checkpoint_every,
            out: path,
            trust_out,
        } => generate(
            dataset,
            seed,
            entries,
            checkpoint_every,
            &path,
            &trust_out,
            out,
        ),
    }
}

fn read_trust(path: &Path) -> Result<TrustRoot> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read trust root {}", path.display()))?;
    TrustRoot::parse_json(&text).with_context(|| format!("trust root {}", path.display()))
}

fn open_input(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

/// Writes `bytes` to `path`, or to `out` when no path is given.
fn write_output(path: Option<&Path>, bytes: &[u8], out: &mut dyn Write) -> Result<()> {
    match path {
        Some(path) => {
            fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
        }
        None => out.write_all(bytes).context("cannot write to stdout"),
    }
}

fn keygen(name: &str, path: &Path, force: bool, out: &mut dyn Write) -> Result<u8> {
    use rand_core::RngCore as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut seed = [0u8; 32];
    rand_core::OsRng
        .try_fill_bytes(&mut seed)
        .context("the operating system's random source failed")?;
    let key =
        SignerKey::from_seed(name, seed).with_context(|| format!("invalid key name {name:?}"))?;
    let mut options = OpenOptions::new();
    options.write(true).mode(0o600);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create {} (use --force to overwrite)",
            path.display()
        )
    })?;
    writeln!(file, "{}", key.to_string())
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(out, "{}", key.verifier_key())?;
    Ok(EXIT_CLEAN)
}

fn verify(
    export: &Path,
    trust: &Path,
    checkpoints: &[PathBuf],
    json: bool,
    strict_signatures: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    let trust = read_trust(trust)?;
    let mut options = VerifyOptions {
        strict_signatures,
        ..VerifyOptions::default()
    };
    for path in checkpoints {
        options.extra_checkpoints.push(
            fs::read(path).with_context(|| format!("cannot read checkpoint {}", path.display()))?,
        );
    }
    let file = open_input(export)?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total_bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "verifying {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = Instant::now();
    let report = verify_export(file, &trust, &options, |bytes| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    })
    .with_context(|| format!("cannot verify {}", export.display()))?;
    let elapsed = started.elapsed();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        print_summary(&report, export, elapsed.as_secs_f64(), out)?;
    }
    Ok(if report.is_clean() {
        EXIT_CLEAN
    } else {
        EXIT_FINDINGS
    })
}

/// `verify --nats`: the live ledger, straight from the streams.
fn verify_live(
    nats: &nats::NatsArgs,
    trust: &Path,
    checkpoints: &[PathBuf],
    json: bool,
    strict_signatures: bool,
    out: &mut dyn Write,
) -> Result<u8> {
    let trust = read_trust(trust)?;
    anyhow::ensure!(
        checkpoints.is_empty(),
        "--checkpoint goes with an export file; with --nats, keep held checkpoints and verify an export"
    );
    let started = Instant::now();
    let report = nats::verify(nats, &trust, strict_signatures)?;
    let label = PathBuf::from(nats.url.clone().unwrap_or_default());
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        print_summary(&report, &label, started.elapsed().as_secs_f64(), out)?;
    }
    Ok(if report.is_clean() {
        EXIT_CLEAN
    } else {
        EXIT_FINDINGS
    })
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(c);
    }
    text
}

fn print_summary(report: &Report, export: &Path, seconds: f64, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "stockpile verify {} (ledger {})",
        export.display(),
        report.origin
    )?;
    writeln!(
        out,
        "  entries        {} ({} accepted, {} rejected)",
        thousands(report.entries),
        thousands(report.accepted),
        thousands(report.rejected)
    )?;
    match &report.latest_checkpoint {
        Some(latest) => writeln!(
            out,
            "  checkpoints    {} verified; latest at size {} with root {}",
            thousands(report.checkpoints_verified),
            thousands(latest.size),
            latest.root
        )?,
        None => writeln!(out, "  checkpoints    none verified")?,
    }
    if report.unsigned_tail_entries > 0 {
        writeln!(
            out,
            "  unsigned tail  {} entries after the latest checkpoint",
            thousands(report.unsigned_tail_entries)
        )?;
    }
    let signers: Vec<String> = report
        .signers
        .iter()
        .map(|s| {
            let mut line = format!(
                "{} ({:?}, {}",
                s.key_id,
                s.role,
                thousands(s.entries_signed)
            );
            if let (Some(first), Some(last)) = (s.first_index, s.last_index) {
                line.push_str(&format!(" in #{first}..#{last}"));
            }
            if let Some(revoked_at) = s.revoked_at {
                let reason = s
                    .revocation_reason
                    .map(|reason| format!("{reason:?}").to_lowercase())
                    .unwrap_or_default();
                line.push_str(&format!("; revoked {} {reason}", revoked_at.date()));
            }
            if let Some(suspect) = &s.suspect {
                line.push_str(&format!(
                    "; {} suspect in #{}..#{}",
                    thousands(suspect.entries),
                    suspect.first_index,
                    suspect.last_index
                ));
            }
            line.push(')');
            line
        })
        .collect();
    writeln!(out, "  signers        {}", signers.join("; "))?;
    let summary = &report.summary;
    let totals = &summary.totals;
    writeln!(
        out,
        "  lots           {} ({} with no units left); {} units declared",
        thousands(summary.lots),
        thousands(summary.terminal_lots),
        thousands(summary.declared)
    )?;
    writeln!(
        out,
        "  units now      stockpiled {} · retained {} · Korea {} · in transit {} · unreceived {}",
        thousands(totals.stockpiled),
        thousands(totals.retained),
        thousands(totals.korea),
        thousands(totals.in_transit),
        thousands(totals.unreceived)
    )?;
    writeln!(
        out,
        "  units gone     destroyed {} · consumed {} · lost {} · transferred out {}",
        thousands(totals.destroyed),
        thousands(totals.consumed),
        thousands(totals.lost),
        thousands(totals.transferred_out)
    )?;
    let by_rule: Vec<String> = report
        .flags_by_rule
        .iter()
        .map(|(rule, n)| format!("rule {rule}: {}", thousands(*n)))
        .collect();
    writeln!(
        out,
        "  flags          {} ({})",
        thousands(report.flags_total),
        if by_rule.is_empty() {
            "none".into()
        } else {
            by_rule.join(", ")
        }
    )?;
    for flag in report.flags.iter().take(FLAGS_PRINTED_MAX) {
        writeln!(
            out,
            "    {:>10}  {:<34} {}",
            format!("#{}", flag.index),
            flag.code,
            flag.message
        )?;
    }
    if report.flags_total as usize > FLAGS_PRINTED_MAX {
        writeln!(
            out,
            "    … and {} more flags (use --json)",
            report.flags_total as usize - FLAGS_PRINTED_MAX
        )?;
    }
    writeln!(out, "  state digest   {}", report.state_digest)?;
    let rate = if seconds > 0.0 {
        report.entries as f64 / seconds
    } else {
        0.0
    };
    writeln!(
        out,
        "  throughput     {} entries/s ({seconds:.2} s)",
        thousands(rate as u64)
    )?;
    if report.is_clean() {
        writeln!(out, "  findings       none: the ledger verifies")?;
    } else {
        writeln!(out, "  findings       {}", thousands(report.findings_total))?;
        for finding in report.findings.iter().take(FINDINGS_PRINTED_MAX) {
            let at = finding.index.map_or("-".to_string(), |i| format!("#{i}"));
            writeln!(
                out,
                "    {at:>10}  {:<34} {}",
                finding.code, finding.message
            )?;
        }
        if report.findings_total as usize > FINDINGS_PRINTED_MAX {
            writeln!(
                out,
                "    … and {} more (use --json)",
                report.findings_total as usize - FINDINGS_PRINTED_MAX
            )?;
        }
    }
    Ok(())
}

fn prove_command(command: ProveCommand, out: &mut dyn Write) -> Result<u8> {
    match command {
        ProveCommand::Inclusion {
            export,
            trust,
            index,
            size,
            out: path,
            entry_out,
        } => {
            let trust = read_trust(&trust)?;
            let source = ProofSource::load(open_input(&export)?, &trust, Some(index))?;
            let proof = source.inclusion(index, size)?;
            if let Some(entry_path) = entry_out {
                let entry = source
                    .wanted_entry()
                    .context("the entry was not found in the export")?;
                fs::write(&entry_path, entry)
                    .with_context(|| format!("cannot write {}", entry_path.display()))?;
            }
            write_output(path.as_deref(), proof.to_string().as_bytes(), out)?;
        }
        ProveCommand::Consistency {
            export,
            trust,
            old,
            new,
            out: path,
        } => {
            let trust = read_trust(&trust)?;
            let source = ProofSource::load(open_input(&export)?, &trust, None)?;
            let file = source.consistency(old, new)?;
            let text = serde_json::to_string_pretty(&file)? + "\n";
            write_output(path.as_deref(), text.as_bytes(), out)?;
        }
    }
    Ok(EXIT_CLEAN)
}

fn check_proof(command: CheckProofCommand, out: &mut dyn Write) -> Result<u8> {
    match command {
        CheckProofCommand::Inclusion {
            proof,
            entry,
            trust,
        } => {
            let trust = read_trust(&trust)?;
            let proof_text =
                fs::read(&proof).with_context(|| format!("cannot read {}", proof.display()))?;
            let entry_bytes =
                fs::read(&entry).with_context(|| format!("cannot read {}", entry.display()))?;
            match check_inclusion(&proof_text, &entry_bytes, &trust) {
                Ok(checkpoint) => {
                    writeln!(
                        out,
                        "valid: the entry is included in {} at tree size {} (root {})",
                        checkpoint.origin, checkpoint.size, checkpoint.root
                    )?;
                    Ok(EXIT_CLEAN)
                }
                Err(error) => {
                    writeln!(out, "INVALID: {error}")?;
                    Ok(EXIT_FINDINGS)
                }
            }
        }
        CheckProofCommand::Consistency { proof, trust } => {
            let trust = read_trust(&trust)?;
            let text = fs::read_to_string(&proof)
                .with_context(|| format!("cannot read {}", proof.display()))?;
            match check_consistency(&text, &trust) {
                Ok((old, new)) => {
                    writeln!(
                        out,
                        "valid: size {} (root {}) is a prefix of size {} (root {})",
                        old.size, old.root, new.size, new.root
                    )?;
                    Ok(EXIT_CLEAN)
                }
                Err(error) => {
                    writeln!(out, "INVALID: {error}")?;
                    Ok(EXIT_FINDINGS)
                }
            }
        }
    }
}

fn inspect(export: &Path, from: u64, limit: u64, json: bool, out: &mut dyn Write) -> Result<u8> {
    let mut reader = ExportReader::open(open_input(export)?)
        .with_context(|| format!("cannot read {}", export.display()))?;
    if !json {
        writeln!(out, "export of ledger {}", reader.origin())?;
    }
    let mut position: u64 = 0;
    let mut shown: u64 = 0;
    while shown < limit {
        let Some(record) = reader
            .next_record()
            .with_context(|| format!("cannot read {}", export.display()))?
        else {
            break;
        };
        match record {
            ExportRecord::Entry(bytes) => {
                let index = position;
                position += 1;
                if index < from {
                    continue;
                }
                shown += 1;
                describe_entry(index, &bytes, json, out)?;
            }
            ExportRecord::Checkpoint(note) if position > from => {
                let text = String::from_utf8_lossy(&note);
                if json {
                    serde_json::to_writer(&mut *out, &serde_json::json!({ "checkpoint": text }))?;
                    writeln!(out)?;
                } else {
                    writeln!(
                        out,
                        "checkpoint:\n{}",
                        text.trim_end()
                            .lines()
                            .map(|l| format!("    {l}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    )?;
                }
            }
            _ => {}
        }
    }
    Ok(EXIT_CLEAN)
}

fn describe_entry(position: u64, bytes: &[u8], json: bool, out: &mut dyn Write) -> Result<()> {
    let entry = match decode_entry(bytes) {
        Ok(entry) => entry,
        Err(error) => {
            if json {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({ "position": position, "error": error.to_string() }),
                )?;
                writeln!(out)?;
            } else {
                writeln!(out, "#{position}  UNREADABLE ENTRY: {error}")?;
            }
            return Ok(());
        }
    };
    let verdict = match &entry.verdict {
        EntryVerdict::Accepted => "accepted".to_string(),
        EntryVerdict::Rejected { code, .. } => format!("REJECTED {code}"),
    };
    let submission = decode_submission(&entry.submission);
    if json {
        let (key_id, event, problem) = match &submission {
            Ok(s) => (
                Some(s.key_id.clone()),
                serde_json::to_value(&s.event).ok(),
                None,
            ),
            Err(error) => (None, None, Some(error.to_string())),
        };
        let reason = match &entry.verdict {
            EntryVerdict::Rejected { reason, .. } => Some(reason.clone()),
            EntryVerdict::Accepted => None,
        };
        serde_json::to_writer(
            &mut *out,
            &serde_json::json!({
                "index": entry.index,
                "recorded_at": entry.recorded_at.to_string(),
                "prev_entry_hash": entry.prev_entry_hash.to_hex(),
                "verdict": verdict,
                "rejection_reason": reason,
                "key_id": key_id,
                "event": event,
                "submission_error": problem,
            }),
        )?;
        writeln!(out)?;
    } else {
        match &submission {
            Ok(s) => writeln!(
                out,
                "#{:<8} {}  {:<22} key={:<24} {:<28} id={}",
                entry.index,
                entry.recorded_at,
                verdict,
                s.key_id,
                s.event.body.kind().name(),
                s.event.event_id
            )?,
            Err(error) => writeln!(
                out,
                "#{:<8} {}  {:<22} (submission unreadable: {error})",
                entry.index, entry.recorded_at, verdict
            )?,
        }
    }
    Ok(())
}

fn generate(
    dataset: DatasetArg,
    seed: u64,
    entries: u64,
    checkpoint_every: u64,
    path: &Path,
    trust_out: &Path,
    out: &mut dyn Write,
) -> Result<u8> {
    if checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1");
    }
    let dataset = match dataset {
        DatasetArg::Us => Dataset::UsLike,
        DatasetArg::Finland => Dataset::FinlandLike,
        DatasetArg::Belarus => Dataset::BelarusLike,
    };
    let config = ScenarioConfig {
        seed,
        dataset,
        min_entries: entries,
        checkpoint_every,
    };
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let started = Instant::now();
    let outcome = stockpile_scenario::write_export(&config, BufWriter::new(file))
        .with_context(|| format!("cannot write {}", path.display()))?;
    fs::write(trust_out, &outcome.trust_root)
        .with_context(|| format!("cannot write {}", trust_out.display()))?;
    writeln!(
        out,
        "wrote {} entries ({} rejected by design) and {} checkpoints to {} in {:.1} s; trust root in {}",
        thousands(outcome.entries),
        thousands(outcome.rejected),
        thousands(outcome.checkpoints),
        path.display(),
        started.elapsed().as_secs_f64(),
        trust_out.display()
    )?;
    Ok(EXIT_CLEAN)
}
