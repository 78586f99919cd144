//! `stockpile query` and `stockpile report article7`: the compliance views and the
//! Article 7 report of a ledger, for an inspector or a script.
//!
//! # Sources
//! Exactly one of:
//! - `--export FILE --trust TRUST.json`: an export file, folded here, offline;
//! - `--nats URL --trust TRUST.json`: the live ledger, read entry by entry from LEDGER
//!   with direct gets (as `verify --nats` reads it) and folded here;
//! - `--projector URL`: a projector's read-only API over plain HTTP; its answers are
//!   printed as it gives them (it holds its own trust root and Article 7 settings).
//!
//! Folding goes through [`ViewFold`], the verifier's admission code: every entry must
//! sit at its place in the chain (index, link to the entry before, time order) or the
//! command stops with an error naming the entry. The fold does not check the signatures
//! of checkpoints: `stockpile verify` does, and lists every finding where the fold stops
//! at the first. Answers come from [`stockpile_views::query::answer`] and the report
//! from [`stockpile_views::article7`], the code the projector serves, so the sources
//! agree view for view.
//!
//! # Exit codes
//! 0 answered; 1 no such lot (`query lot`); 2 usage, I/O, a ledger that does not fold,
//! a projector error, or a report that cannot be computed.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use serde_json::Value;
use stockpile_core::time::Date;
use stockpile_ledger::export::ExportReader;
use stockpile_ledger::trust::TrustRoot;
use stockpile_nats::ledger::read_ledger_range;
use stockpile_proto::export_codec::ExportRecord;
use stockpile_views::article7::{Article7Config, Article7Error, article7_report, year_end};
use stockpile_views::fold::{FoldError, ViewFold};
use stockpile_views::query::{QueryError, ViewQuery, answer};
use stockpile_views::views::{HistoryPage, LOT_HISTORY_PAGE_DEFAULT};

use crate::nats::{self, NatsArgs};
use crate::{EXIT_CLEAN, EXIT_FINDINGS, open_input, read_trust, thousands};

/// Entries read from LEDGER per batch of direct gets: bounds what is in flight.
const NATS_BATCH_ENTRIES: u64 = 4096;

/// Longest a whole request to a projector may take (connect, answer and body). An
/// Article 7 report is refolded from the projector's stored entries: seconds, not
/// minutes, for the ledgers the demo data sets make.
const PROJECTOR_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest projector answer read. The stockpile view lists one row per lot, site and
/// pool, so it grows with the ledger; this is far above a national stockpile's size
/// and keeps a wrong URL from filling memory.
const PROJECTOR_BODY_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// Characters of a projector's non-JSON error body quoted in a message.
const PROJECTOR_ERROR_CHARS_MAX: usize = 300;

/// The views, as `stockpile query --help` lists them (checked against
/// [`stockpile_views::query::VIEW_NAMES`] by a test).
const VIEWS_HELP: &str = "The view: summary, stockpile, lots, lot (with LOT_ID), retained, \
destruction-progress, transfers, in-transit, material-balance (optionally --year), flags";

/// The variable `--nats` also reads (see [`NatsArgs`]): a URL from it does not count
/// as a source when `--export` or `--projector` is given, so an operator's shell
/// setting does not get in the way of reading a file.
const NATS_URL_VARIABLE: &str = "STOCKPILE_NATS_URL";

/// Where the ledger comes from: exactly one of --export, --nats, --projector (checked in
/// [`Source::open`], because clap counts a `--nats` from the environment as given).
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").multiple(false).args(["export", "projector"])))]
pub struct SourceArgs {
    /// An export file, folded here (with --trust).
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    #[command(flatten)]
    pub nats: NatsArgs,
    /// A projector's API, e.g. http://127.0.0.1:8080 (plain HTTP only: run it behind a
    /// TLS-terminating tunnel or proxy when it is not on this host).
    #[arg(long, value_name = "URL")]
    pub projector: Option<String>,
    /// The trust root (origin and authority keys) of the ledger, with --export or --nats.
    #[arg(long, value_name = "TRUST.json", conflicts_with = "projector")]
    pub trust: Option<PathBuf>,
}

impl SourceArgs {
    /// The NATS URL given on the command line (not only in the environment).
    fn nats_url_given(&self) -> Option<&str> {
        let url = self.nats.url.as_deref()?;
        let from_environment =
            std::env::var_os(NATS_URL_VARIABLE).is_some_and(|value| value.to_str() == Some(url));
        (!from_environment).then_some(url)
    }
}

/// `stockpile query`.
#[derive(Debug, Args)]
#[command(after_help = "\
Source: exactly one of --export FILE --trust TRUST.json, --nats URL --trust TRUST.json,
or --projector URL.

Exit codes: 0 answered; 1 no such lot; 2 usage, I/O, a ledger that does not fold, or a
projector error.

With --export or --nats the entries are folded here through the verifier's admission
code: a broken chain or an unreadable entry stops the command, naming the entry. The
fold does not check checkpoint signatures: run `stockpile verify` for that, and for
every finding of a ledger.")]
pub struct QueryArgs {
    #[arg(value_name = "VIEW", help = VIEWS_HELP)]
    pub view: String,
    /// The lot, for the `lot` view.
    #[arg(value_name = "LOT_ID")]
    pub lot_id: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Answer as of this ledger index (inclusive): the entries after it are ignored.
    #[arg(long, value_name = "N")]
    pub as_of_index: Option<u64>,
    /// For material-balance: one calendar year instead of the whole ledger.
    #[arg(long, value_name = "YYYY")]
    pub year: Option<i32>,
    /// For lot: the index (0-based) of the first history event answered (default: the
    /// latest page). Past the end, the page is empty.
    #[arg(long, value_name = "N")]
    pub history_from: Option<u64>,
    /// For lot: events of the history answered, 1 to 1000 (default 100).
    #[arg(long, value_name = "M")]
    pub history_limit: Option<u64>,
    /// Print the JSON on one line.
    #[arg(long)]
    pub compact: bool,
}

/// `stockpile report`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The Article 7 report for a calendar year, at the ledger position of 31 December
    /// (the last entry recorded on or before it).
    #[command(after_help = "\
Source: exactly one of --export FILE --trust TRUST.json, --nats URL --trust TRUST.json,
or --projector URL.

Exit codes: 0 written; 2 usage, I/O, a ledger that does not fold, a projector error, or
no report for that year (out of range, or before the ledger configures its regime).

With --export or --nats the entries are folded here; the fold checks the chain, not the
checkpoint signatures (`stockpile verify` does). With --projector the projector computes
the report with its own settings (its --state-name).")]
    Article7(Article7Args),
}

/// `stockpile report article7`.
#[derive(Debug, Args)]
pub struct Article7Args {
    /// The calendar year reported on.
    #[arg(long, value_name = "YYYY")]
    pub year: i32,
    /// How to render it.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Write the report here (through FILE.partial, renamed when complete) instead of
    /// to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The State's name on the cover page (overrides the one in --article7-config).
    #[arg(long, value_name = "NAME", conflicts_with = "projector")]
    pub state_name: Option<String>,
    /// What the report needs beyond the ledger, as JSON: {"state_name", "contacts":
    /// [{"name", "organisation", "role", "email", "phone"}], "submission_date": "YYYY-MM-DD"}.
    #[arg(long, value_name = "FILE.json", conflicts_with = "projector")]
    pub article7_config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Json,
    Csv,
    Html,
}

impl ReportFormat {
    fn name(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
            ReportFormat::Html => "html",
        }
    }
}

/// A source, checked: a ledger folded here, or a projector.
enum Source {
    Offline(Offline),
    Projector(Projector),
}

/// A ledger folded here, with the trust root it is read against.
struct Offline {
    ledger: Ledger,
    trust: TrustRoot,
}

enum Ledger {
    Export(PathBuf),
    Nats(NatsArgs),
}

impl Source {
    fn open(args: &SourceArgs) -> Result<Source> {
        let elsewhere = match (&args.export, &args.projector) {
            (Some(_), _) => Some("--export"),
            (None, Some(_)) => Some("--projector"),
            (None, None) => None,
        };
        if let (Some(flag), Some(url)) = (elsewhere, args.nats_url_given()) {
            bail!("--nats {url} cannot be used with {flag}: give one source");
        }
        if let Some(url) = &args.projector {
            return Ok(Source::Projector(Projector::new(url)?));
        }
        ensure!(
            args.export.is_some() || args.nats.url.is_some(),
            "say where the ledger is: --export FILE, --nats URL or --projector URL"
        );
        let trust_path = args
            .trust
            .as_deref()
            .context("--trust TRUST.json is needed with --export or --nats")?;
        let trust = read_trust(trust_path)?;
        let ledger = match &args.export {
            Some(path) => Ledger::Export(path.clone()),
            None => Ledger::Nats(args.nats.clone()),
        };
        Ok(Source::Offline(Offline { ledger, trust }))
    }
}

impl Offline {
    /// Folds the ledger's entries up to `limit`.
    fn fold(&self, limit: Limit) -> Result<ViewFold> {
        match &self.ledger {
            Ledger::Export(path) => fold_export(path, &self.trust, limit),
            Ledger::Nats(nats) => fold_nats(nats, &self.trust, limit),
        }
    }
}

/// `stockpile query`.
pub fn query(args: &QueryArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    let mut view = ViewQuery::parse(&args.view, args.lot_id.as_deref(), args.year)?;
    if args.lot_id.is_some() && !matches!(view, ViewQuery::Lot { .. }) {
        bail!("only the lot view takes a LOT_ID");
    }
    if args.history_from.is_some() || args.history_limit.is_some() {
        if !matches!(view, ViewQuery::Lot { .. }) {
            bail!("--history-from and --history-limit go with the lot view");
        }
        view = view.with_history(HistoryPage::new(args.history_from, args.history_limit)?)?;
    }
    if args.year.is_some() && !matches!(view, ViewQuery::MaterialBalance { .. }) {
        bail!("--year goes with the material-balance view");
    }
    let answer = match Source::open(&args.source)? {
        Source::Projector(projector) => {
            match projector.get(&view_path(&view, args.as_of_index))? {
                Answer::Ok(body) => serde_json::from_slice(&body).with_context(|| {
                    format!("the projector at {} did not answer JSON", projector.base)
                })?,
                // The projector words an unknown lot with the same error as the fold;
                // any other 404 (an index beyond its views, an old API) is an error.
                Answer::NotFound(message)
                    if matches!(&view, ViewQuery::Lot { lot_id, .. }
                        if message == QueryError::UnknownLot(lot_id.clone()).to_string()) =>
                {
                    writeln!(err, "stockpile: {message}")?;
                    return Ok(EXIT_FINDINGS);
                }
                Answer::NotFound(message) | Answer::Refused(message) => {
                    bail!("the projector at {} answered: {message}", projector.base)
                }
            }
        }
        Source::Offline(ledger) => {
            let fold = ledger.fold(Limit::Index(args.as_of_index))?;
            warn_inconsistent(&fold, err)?;
            match answer(&fold, &view) {
                Ok(value) => value,
                Err(missing @ QueryError::UnknownLot(_)) => {
                    writeln!(err, "stockpile: {missing}")?;
                    return Ok(EXIT_FINDINGS);
                }
                Err(other) => return Err(other.into()),
            }
        }
    };
    print_json(&answer, args.compact, out)?;
    Ok(EXIT_CLEAN)
}

/// `stockpile report`.
pub fn report(command: &ReportCommand, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    let ReportCommand::Article7(args) = command;
    let year = args.year;
    let last_date = year_end(year)
        .with_context(|| format!("year {year} is out of range: reports cover years 1 to 9999"))?;
    let bytes = match Source::open(&args.source)? {
        Source::Projector(projector) => {
            let path = format!("/v1/reports/article7/{year}?format={}", args.format.name());
            match projector.get(&path)? {
                Answer::Ok(body) => body,
                Answer::NotFound(message) | Answer::Refused(message) => {
                    bail!(
                        "no Article 7 report for {year} from the projector at {}: {message}",
                        projector.base
                    )
                }
            }
        }
        Source::Offline(ledger) => {
            let config = article7_config(args)?;
            let fold = ledger.fold(Limit::Through(last_date))?;
            warn_inconsistent(&fold, err)?;
            let report = article7_report(&fold, year, &config, None).map_err(|error| {
                let why = match error {
                    Article7Error::NoRegime => format!(
                        "the ledger configures no regime (RegimeConfigured) on or before \
                         {last_date} ({} entries recorded by then)",
                        thousands(fold.entries())
                    ),
                    other => other.to_string(),
                };
                anyhow!("no Article 7 report for {year}: {why}")
            })?;
            // The same bytes the projector sends for this report.
            match args.format {
                ReportFormat::Json => report.to_json(),
                ReportFormat::Csv => report.to_csv(),
                ReportFormat::Html => report.to_html(),
            }
            .into_bytes()
        }
    };
    match &args.out {
        Some(path) => {
            write_atomically(path, &bytes)?;
            writeln!(
                out,
                "wrote {} (Article 7 report for {year}, {}, {} bytes)",
                path.display(),
                args.format.name(),
                thousands(bytes.len() as u64)
            )?;
        }
        None => out.write_all(&bytes).context("cannot write to stdout")?,
    }
    Ok(EXIT_CLEAN)
}

/// The Article 7 settings: --article7-config, then --state-name over it.
fn article7_config(args: &Article7Args) -> Result<Article7Config> {
    let mut config = match &args.article7_config {
        Some(path) => {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not an Article 7 configuration", path.display()))?
        }
        None => Article7Config::default(),
    };
    if let Some(name) = &args.state_name {
        config.state_name = name.clone();
    }
    Ok(config)
}

fn print_json(value: &Value, compact: bool, out: &mut dyn Write) -> Result<()> {
    if compact {
        serde_json::to_writer(&mut *out, value)?;
    } else {
        serde_json::to_writer_pretty(&mut *out, value)?;
    }
    writeln!(out)?;
    Ok(())
}

/// Says on stderr when entries marked accepted break the admission rules: the views
/// leave their books unchanged, as the verifier does, and `verify` reports them.
fn warn_inconsistent(fold: &ViewFold, err: &mut dyn Write) -> Result<()> {
    if let Some(first) = fold.inconsistencies().first() {
        writeln!(
            err,
            "stockpile: warning: {} entries marked accepted break the admission rules (the \
             first is entry {}: {}); their books are left unchanged. Run `stockpile verify`.",
            thousands(fold.inconsistencies().len() as u64),
            first.index,
            first.code
        )?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through `path.partial`, renamed when complete: a failed
/// write leaves neither a partial file nor a half-written target.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut partial: OsString = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))
        .and_then(|()| {
            fs::rename(&partial, path)
                .with_context(|| format!("cannot move the report to {}", path.display()))
        });
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written
}

// ---------------------------------------------------------------------------------------
// Folding

/// Where a fold stops.
#[derive(Debug, Clone, Copy)]
enum Limit {
    /// After this index (inclusive), or at the end of the ledger.
    Index(Option<u64>),
    /// After the last entry recorded on or before this date (31 December for a report).
    Through(Date),
}

/// A fold in progress, fed one entry at a time until its limit.
struct Folding {
    fold: ViewFold,
    limit: Limit,
    done: bool,
}

impl Folding {
    fn new(trust: &TrustRoot, limit: Limit) -> Folding {
        Folding {
            fold: ViewFold::new(trust.origin.clone(), &trust.ledger_authority_keys()),
            limit,
            done: false,
        }
    }

    /// Entries still wanted at most (for sizing reads).
    fn wanted(&self) -> u64 {
        match self.limit {
            _ if self.done => 0,
            Limit::Index(Some(last)) => (last + 1).saturating_sub(self.fold.entries()),
            _ => u64::MAX,
        }
    }

    /// Folds the next entry unless the limit is reached; returns whether more are
    /// wanted. An entry that does not fold is an error naming its index.
    fn feed(&mut self, entry: &[u8]) -> Result<bool> {
        if self.wanted() == 0 {
            self.done = true;
            return Ok(false);
        }
        let folded = match self.limit {
            Limit::Index(_) => self.fold.apply(entry).map(Some),
            Limit::Through(last_date) => self.fold.apply_through(entry, last_date),
        }
        .map_err(|error| {
            // A broken link blames two entries: either may have been altered.
            let suspects = match &error {
                FoldError::BrokenLink { index, .. } if *index > 0 => {
                    format!("; entry {} or entry {index} was altered", index - 1)
                }
                _ => String::new(),
            };
            anyhow!(
                "the ledger does not fold at entry {}: {error}{suspects} (`stockpile verify` \
                 lists every finding)",
                error.index()
            )
        })?;
        self.done = folded.is_none() || self.wanted() == 0;
        Ok(!self.done)
    }

    /// The fold, once the entries ran out or the limit was reached.
    fn finish(self) -> Result<ViewFold> {
        if let Limit::Index(Some(last)) = self.limit {
            let entries = self.fold.entries();
            ensure!(
                entries > last,
                "--as-of-index {last} is beyond the ledger: it holds {} entries (indices 0 to {})",
                thousands(entries),
                entries.saturating_sub(1)
            );
        }
        Ok(self.fold)
    }
}

fn fold_export(path: &Path, trust: &TrustRoot, limit: Limit) -> Result<ViewFold> {
    let mut reader = ExportReader::open(open_input(path)?)
        .with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        reader.origin() == trust.origin,
        "{} is an export of ledger {:?}, but the trust root is for {:?}",
        path.display(),
        reader.origin(),
        trust.origin
    );
    let mut folding = Folding::new(trust, limit);
    while let Some(record) = reader
        .next_record()
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        if let ExportRecord::Entry(entry) = record {
            let more = folding
                .feed(&entry)
                .with_context(|| format!("in {}", path.display()))?;
            if !more {
                break;
            }
        }
    }
    folding.finish()
}

fn fold_nats(args: &NatsArgs, trust: &TrustRoot, limit: Limit) -> Result<ViewFold> {
    let mut folding = Folding::new(trust, limit);
    nats::runtime()?.block_on(async {
        let js = nats::jetstream_context(args).await?;
        loop {
            let wanted = folding.wanted().min(NATS_BATCH_ENTRIES);
            if wanted == 0 {
                break;
            }
            let from = folding.fold.entries();
            let mut more = true;
            let read = read_ledger_range(&js, from, wanted, |message| {
                if more {
                    more = folding.feed(&message.entry)?;
                }
                Ok(())
            })
            .await?;
            if !more || read < wanted {
                break;
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    folding.finish()
}

// ---------------------------------------------------------------------------------------
// The projector's API

/// A projector's read-only API.
struct Projector {
    /// `http://host:port`, without a trailing slash.
    base: String,
    agent: ureq::Agent,
}

/// What a projector answered.
enum Answer {
    /// 2xx: the body.
    Ok(Vec<u8>),
    /// 404: its error message.
    NotFound(String),
    /// Any other status: its status and error message.
    Refused(String),
}

impl Projector {
    fn new(url: &str) -> Result<Projector> {
        let scheme_end = url.find("://").unwrap_or(0);
        let scheme = url[..scheme_end].to_ascii_lowercase();
        match scheme.as_str() {
            "http" => {}
            "https" => bail!(
                "--projector {url}: https is not supported; the command speaks plain HTTP to \
                 a projector on a trusted network (reach a remote one through a TLS tunnel)"
            ),
            _ => bail!("--projector takes an http:// URL, e.g. http://127.0.0.1:8080, not {url:?}"),
        }
        let base = url.trim_end_matches('/').to_string();
        ensure!(
            base.len() > "http://".len(),
            "--projector {url:?} names no host"
        );
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(PROJECTOR_TIMEOUT))
            .build()
            .into();
        Ok(Projector { base, agent })
    }

    /// GETs `path` (with its query string).
    fn get(&self, path: &str) -> Result<Answer> {
        let url = format!("{}{path}", self.base);
        let mut response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("cannot reach the projector at {url}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(PROJECTOR_BODY_BYTES_MAX)
            .read_to_vec()
            .with_context(|| format!("cannot read the projector's answer from {url}"))?;
        if (200..300).contains(&status) {
            return Ok(Answer::Ok(body));
        }
        let message = error_message(&body);
        Ok(if status == 404 {
            Answer::NotFound(message)
        } else {
            Answer::Refused(format!("HTTP {status}: {message}"))
        })
    }
}

/// The `error` field of a JSON error body, else the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(message) = value.get("error").and_then(Value::as_str)
    {
        return message.to_string();
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(PROJECTOR_ERROR_CHARS_MAX).collect();
    if text.trim().is_empty() {
        "(no error message)".into()
    } else {
        text.trim().to_string()
    }
}

/// The API path (and query string) of a view.
fn view_path(view: &ViewQuery, as_of_index: Option<u64>) -> String {
    let mut parameters = Vec::new();
    let path = match view {
        ViewQuery::Summary => "/v1/summary".to_string(),
        ViewQuery::Stockpile => "/v1/stockpile".to_string(),
        ViewQuery::Lots => "/v1/lots".to_string(),
        ViewQuery::Lot { lot_id, history } => {
            if let Some(from) = history.from() {
                parameters.push(format!("history_from={from}"));
            }
            if history.limit() != LOT_HISTORY_PAGE_DEFAULT {
                parameters.push(format!("history_limit={}", history.limit()));
            }
            format!("/v1/lots/{}", percent_encode(lot_id))
        }
        ViewQuery::Retained => "/v1/retained".to_string(),
        ViewQuery::DestructionProgress => "/v1/destruction-progress".to_string(),
        ViewQuery::Transfers => "/v1/transfers".to_string(),
        ViewQuery::InTransit => "/v1/in-transit".to_string(),
        ViewQuery::MaterialBalance { year } => {
            if let Some(year) = year {
                parameters.push(format!("year={year}"));
            }
            "/v1/material-balance".to_string()
        }
        ViewQuery::Flags => "/v1/flags".to_string(),
    };
    if let Some(index) = as_of_index {
        parameters.push(format!("as_of_index={index}"));
    }
    if parameters.is_empty() {
        path
    } else {
        format!("{path}?{}", parameters.join("&"))
    }
}

/// Percent-encodes one path segment: every byte but RFC 3986's unreserved characters.
fn percent_encode(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;
    use stockpile_views::query::VIEW_NAMES;

    #[test]
    fn the_help_lists_every_view() {
        for name in VIEW_NAMES {
            assert!(VIEWS_HELP.contains(name), "{name} is missing from the help");
        }
    }

    #[test]
    fn view_paths_encode_lot_ids_and_carry_parameters() {
        assert_eq!(
            view_path(
                &ViewQuery::Lot {
                    lot_id: "L 1/<x>%".into(),
                    history: HistoryPage::default()
                },
                None
            ),
            "/v1/lots/L%201%2F%3Cx%3E%25"
        );
        assert_eq!(
            view_path(
                &ViewQuery::Lot {
                    lot_id: "SYN-LOT_0.1~".into(),
                    history: HistoryPage::default()
                },
                Some(7)
            ),
            "/v1/lots/SYN-LOT_0.1~?as_of_index=7"
        );
        assert_eq!(
            view_path(
                &ViewQuery::Lot {
                    lot_id: "L1".into(),
                    history: HistoryPage::new(Some(200), Some(50)).unwrap()
                },
                Some(9)
            ),
            "/v1/lots/L1?history_from=200&history_limit=50&as_of_index=9"
        );
        assert_eq!(
            view_path(
                &ViewQuery::Lot {
                    lot_id: "L1".into(),
                    history: HistoryPage::new(Some(0), None).unwrap()
                },
                None
            ),
            "/v1/lots/L1?history_from=0"
        );
        assert_eq!(
            view_path(&ViewQuery::MaterialBalance { year: Some(2020) }, Some(3)),
            "/v1/material-balance?year=2020&as_of_index=3"
        );
        assert_eq!(
            view_path(&ViewQuery::DestructionProgress, None),
            "/v1/destruction-progress"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn only_plain_http_projectors_are_accepted() {
        assert!(Projector::new("http://127.0.0.1:8080/").is_ok());
        assert_eq!(
            Projector::new("HTTP://127.0.0.1:8080/").unwrap().base,
            "HTTP://127.0.0.1:8080"
        );
        let https = Projector::new("https://projector.example").err().unwrap();
        assert!(
            https.to_string().contains("https is not supported"),
            "{https}"
        );
        for bad in ["127.0.0.1:8080", "ftp://x", "http://", ""] {
            assert!(Projector::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_messages_come_from_the_json_error_field_or_the_body() {
        assert_eq!(
            error_message(br#"{"error":"no lot \"X\""}"#),
            "no lot \"X\""
        );
        assert_eq!(error_message(b"  plain text\n"), "plain text");
        assert_eq!(error_message(b""), "(no error message)");
        let long = vec![b'x'; 10 * PROJECTOR_ERROR_CHARS_MAX];
        assert_eq!(error_message(&long).len(), PROJECTOR_ERROR_CHARS_MAX);
    }

    #[test]
    fn an_atomic_write_leaves_the_file_and_no_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        write_atomically(&path, b"a,b\r\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"a,b\r\n");
        assert!(!dir.path().join("report.csv.partial").exists());
        let missing = dir.path().join("no-such-dir").join("report.csv");
        assert!(write_atomically(&missing, b"x").is_err());
        // A target that cannot take the rename (a directory) leaves no partial behind.
        let occupied = dir.path().join("occupied");
        fs::create_dir(&occupied).unwrap();
        fs::write(occupied.join("inside"), b"keep").unwrap();
        assert!(write_atomically(&occupied, b"x").is_err());
        assert!(!dir.path().join("occupied.partial").exists());
    }
}
