//! The commands that talk to a running system over NATS: `verify --nats`, `export`,
//! `checkpoint`. The verifier sees exactly what an export would hold — entries verbatim
//! from LEDGER and signed notes from CHECKPOINTS — and trusts nothing else.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use bytes::Bytes;
use clap::Args;
use stockpile_core::checkpoint::open_checkpoint;
use stockpile_ledger::export::ExportWriter;
use stockpile_ledger::trust::TrustRoot;
use stockpile_ledger::verifier::{Report, Verifier};
use stockpile_nats::NatsConfig;
use stockpile_nats::checkpoints::{StoredCheckpoint, all_checkpoints, latest_checkpoint};
use stockpile_nats::ledger::read_ledger;

/// Entries handed to the verifier at once (it checks a batch's signatures in parallel).
const VERIFY_BATCH_ENTRIES: usize = 4096;

/// How to reach NATS.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL, e.g. nats://127.0.0.1:4222.
    #[arg(long = "nats", env = "STOCKPILE_NATS_URL")]
    pub url: Option<String>,
    /// NATS user (an inspector or projector user can read the ledger).
    #[arg(long, env = "STOCKPILE_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password.
    #[arg(long, env = "STOCKPILE_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// NATS credentials file.
    #[arg(long)]
    pub nats_creds: Option<PathBuf>,
}

impl NatsArgs {
    pub fn config(&self) -> Result<NatsConfig> {
        let url = self
            .url
            .clone()
            .context("say which NATS server to use with --nats URL")?;
        Ok(NatsConfig {
            url,
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            creds_file: self.nats_creds.clone(),
            wait: false,
            client_name: Some("stockpile-cli".into()),
        })
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) async fn jetstream_context(args: &NatsArgs) -> Result<jetstream::Context> {
    let client = stockpile_nats::connect(&args.config()?).await?;
    Ok(jetstream::new(client))
}

/// Verifies the ledger straight from the streams. Every stored checkpoint is checked
/// against the entries, as an export's would be.
pub fn verify(args: &NatsArgs, trust: &TrustRoot, strict_signatures: bool) -> Result<Report> {
    runtime()?.block_on(async {
        let js = jetstream_context(args).await?;
        let checkpoints = all_checkpoints(&js).await?;
        let mut verifier = Verifier::new(trust.clone()).with_strict_signatures(strict_signatures);
        verifier.check_origin(&trust.origin);
        for stored in &checkpoints {
            verifier.push_checkpoint(stored.note.as_bytes());
        }
        let mut batch: Vec<Bytes> = Vec::with_capacity(VERIFY_BATCH_ENTRIES);
        let bar = entries_bar("verifying", &js).await;
        read_ledger(&js, 0, |message| {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            batch.push(message.entry);
            if batch.len() == VERIFY_BATCH_ENTRIES {
                verifier.push_entries(std::mem::take(&mut batch));
            }
            Ok(())
        })
        .await?;
        verifier.push_entries(batch);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(verifier.finish())
    })
}

/// A progress bar over the ledger's entries, on a terminal only (scripts and logs get
/// none).
async fn entries_bar(what: &str, js: &jetstream::Context) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total = stockpile_nats::ledger::ledger_size(js).await.ok()?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{pos}}/{{len}} entries ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Writes an export of the ledger as it stands: entries in order, each checkpoint right
/// after the entry that completes it. Returns (entries, checkpoints) written.
pub fn export(args: &NatsArgs, origin: &str, out: &Path) -> Result<(u64, u64)> {
    // Write beside the target and rename at the end, so a failed export never leaves a
    // partial file under the wanted name.
    let partial = out.with_extension("partial");
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let result = runtime()?.block_on(async {
        let js = jetstream_context(args).await?;
        let checkpoints = all_checkpoints(&js).await?;
        let mut pending = checkpoint_sizes(&checkpoints)?.into_iter().peekable();
        let mut writer = ExportWriter::new(BufWriter::new(file), origin)?;
        let mut written = 0u64;
        let bar = entries_bar("exporting", &js).await;
        read_ledger(&js, 0, |message| {
            writer.write_entry(&message.entry)?;
            written += 1;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            while let Some((_, note)) = pending.next_if(|(size, _)| *size <= written) {
                writer.write_checkpoint(note.as_bytes())?;
            }
            Ok(())
        })
        .await?;
        // Checkpoints beyond the last entry stay in the export: a verifier must see that
        // the ledger is shorter than something signed.
        for (_, note) in pending {
            writer.write_checkpoint(note.as_bytes())?;
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let counts = (writer.entries_written(), writer.checkpoints_written());
        writer.finish()?.flush()?;
        Ok::<_, anyhow::Error>(counts)
    });
    match result {
        Ok(counts) => {
            fs::rename(&partial, out)
                .with_context(|| format!("cannot move the export to {}", out.display()))?;
            Ok(counts)
        }
        Err(error) => {
            let _ = fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// (size, note) of each stored checkpoint, in publication order.
fn checkpoint_sizes(checkpoints: &[StoredCheckpoint]) -> Result<Vec<(u64, String)>> {
    checkpoints
        .iter()
        .map(|stored| Ok((stored.unverified_body()?.size, stored.note.clone())))
        .collect()
}

/// Prints the latest signed checkpoint, verified against `trust` when given. Returns
/// whether it verified (true when there was nothing to verify against); a checkpoint that
/// does not verify is not printed.
pub fn checkpoint(args: &NatsArgs, trust: Option<&TrustRoot>, out: &mut dyn Write) -> Result<bool> {
    let stored = runtime()?.block_on(async {
        let js = jetstream_context(args).await?;
        latest_checkpoint(&js).await
    })?;
    let Some(stored) = stored else {
        anyhow::bail!("no checkpoint has been signed yet");
    };
    if let Some(trust) = trust
        && let Err(error) = open_checkpoint(stored.note.as_bytes(), &trust.origin, &trust.log_keys)
    {
        // Nothing goes to stdout: the output is meant to be kept as a checkpoint file.
        eprintln!("stockpile: the latest checkpoint does not verify: {error}");
        return Ok(false);
    }
    write!(out, "{}", stored.note)?;
    Ok(true)
}

/// The origin named by the latest checkpoint (unverified: only used to label an export,
/// whose verification checks it against the inspector's trust root).
pub fn origin_from_checkpoints(args: &NatsArgs) -> Result<String> {
    let stored = runtime()?.block_on(async {
        let js = jetstream_context(args).await?;
        latest_checkpoint(&js).await
    })?;
    let stored = stored.context("no checkpoint signed yet to name the origin: pass --origin")?;
    Ok(stored.unverified_body()?.origin)
}

/// What `stockpile emit` needs besides the connection.
#[derive(Debug, Clone, Args)]
pub struct EmitArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The ledger origin the event is signed for.
    #[arg(long)]
    pub origin: String,
    /// The submitting service: publishes on stockpile.submit.<service>; deploy/nats
    /// gives the `registrar` user that subject.
    #[arg(long, default_value = "registrar")]
    pub service: String,
    /// The durable outbox (keeps the key's emitter sequence across runs; reuse it).
    #[arg(long)]
    pub outbox: PathBuf,
    /// A role's secret key file, ROLE=PATH; repeat per role.
    #[arg(long = "key", value_name = "ROLE=PATH", required = true)]
    pub keys: Vec<String>,
    /// The event as JSON (`-` for standard input): {"actor", "body": {"kind", ...},
    /// optional "event_id", "occurred_at_ms", "evidence", "role"}.
    pub event: PathBuf,
    /// Return once the event is in the outbox instead of waiting for its receipt.
    #[arg(long)]
    pub no_wait: bool,
    /// Longest wait for the receipt, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

/// Outcome of `stockpile emit`.
pub enum Emitted {
    Accepted,
    Rejected,
    Pending,
}

/// Signs and submits one event through the emitter SDK (durable outbox, `Nats-Msg-Id`,
/// retries) and, unless told not to, waits for its receipt. Prints JSON.
pub fn emit(args: &EmitArgs, out: &mut dyn Write) -> Result<Emitted> {
    let text = if args.event.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the event from standard input")?;
        text
    } else {
        fs::read_to_string(&args.event)
            .with_context(|| format!("cannot read {}", args.event.display()))?
    };
    let request: stockpile_emitter::json::EventRequest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an event request", args.event.display()))?;
    let draft = request
        .into_draft()
        .map_err(|problem| anyhow::anyhow!(problem))?;
    let mut keys = Vec::new();
    for spec in &args.keys {
        let (role, path) = spec
            .split_once('=')
            .with_context(|| format!("--key takes ROLE=PATH, not {spec:?}"))?;
        let role = stockpile_emitter::roles::parse_role(role).map_err(|e| anyhow::anyhow!(e))?;
        let key_text =
            fs::read_to_string(path).with_context(|| format!("cannot read key {path}"))?;
        let key = stockpile_core::keys::SignerKey::parse(key_text.trim())
            .with_context(|| format!("key file {path}"))?;
        keys.push(stockpile_emitter::RoleKey { role, key });
    }
    let config = stockpile_emitter::EmitterConfig::new(
        args.service.clone(),
        args.origin.clone(),
        keys,
        args.outbox.clone(),
        args.nats.config()?,
    );
    runtime()?.block_on(async {
        let emitter = stockpile_emitter::Emitter::open(config).await?;
        let pending = emitter
            .emit(draft)
            .await
            .map_err(|error| anyhow::anyhow!("the event was not accepted: {error}"))?;
        let outcome = if args.no_wait {
            serde_json::to_writer_pretty(&mut *out, &pending)?;
            Emitted::Pending
        } else {
            let receipt = emitter
                .wait_for_receipt(
                    &pending.key_id,
                    pending.emitter_sequence,
                    std::time::Duration::from_secs(args.timeout_secs),
                )
                .await?;
            match receipt {
                Some(receipt) => {
                    serde_json::to_writer_pretty(&mut *out, &receipt)?;
                    if receipt.accepted {
                        Emitted::Accepted
                    } else {
                        Emitted::Rejected
                    }
                }
                None => {
                    serde_json::to_writer_pretty(&mut *out, &pending)?;
                    Emitted::Pending
                }
            }
        };
        writeln!(out)?;
        // Publishing finishes before the outbox closes; an unsent event stays in it
        // for the next run.
        emitter.shutdown().await?;
        Ok(outcome)
    })
}
