//! `stockpile query` and `stockpile report article7`, driven in-process as users run
//! them: on a generated scenario export, against the generator's reference model, the
//! verifier and an independent count of the entries; and on a live system, where the
//! export, the live ledger and a projector must give the same answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;
use stockpile_core::events::{EventBody, LotBasis};
use stockpile_core::hash::entry_link_hash;
use stockpile_core::time::Date;
use stockpile_ledger::export::{ExportReader, ExportWriter};
use stockpile_proto::envelope::{EntryVerdict, decode_entry, decode_submission};
use stockpile_proto::export_codec::ExportRecord;
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioOutcome};
use stockpile_views::query::VIEW_NAMES;

use crate::support::live::Live;
use crate::support::system::stockpile;

/// Entries the offline scenario is padded to (the Finland-like story, then routine
/// operations): a few years of activity, folded in well under a second.
const SCENARIO_ENTRIES: u64 = 1_500;

/// Entries of the live ledger: enough for batches, checkpoints and several years.
const LIVE_ENTRIES: u64 = 2_000;

/// A State name with markup in it, for the cover page.
const MARKUP_STATE: &str = "Republic of <script>alert(1)</script> & Co";

/// A generated scenario ledger: its export and trust root in a temporary folder, its
/// entries, and the generator's outcome (with its reference model of the end state).
struct Scenario {
    dir: tempfile::TempDir,
    export: String,
    trust: String,
    entries: Vec<Bytes>,
    outcome: ScenarioOutcome,
}

fn scenario() -> Scenario {
    let config = ScenarioConfig {
        seed: 5,
        dataset: Dataset::FinlandLike,
        min_entries: SCENARIO_ENTRIES,
        checkpoint_every: ScenarioConfig::DEMO_CHECKPOINT_EVERY,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let export = dir.path().join("ledger.export");
    let mut bytes = Vec::new();
    let outcome = stockpile_scenario::write_export(&config, &mut bytes).expect("generate");
    assert!(
        outcome.observed.is_as_scripted(),
        "the generator's own expectations failed: {:#?}",
        outcome.observed
    );
    fs::write(&export, &bytes).expect("write the export");
    let trust = dir.path().join("trust.json");
    fs::write(&trust, &outcome.trust_root).expect("write the trust root");
    let entries = read_entries(&export);
    assert_eq!(entries.len() as u64, outcome.entries);
    Scenario {
        export: text(&export),
        trust: text(&trust),
        dir,
        entries,
        outcome,
    }
}

impl Scenario {
    fn path(&self, name: &str) -> String {
        text(&self.dir.path().join(name))
    }

    /// `stockpile query VIEW ARGS… --export … --trust …`: exit code, stdout, stderr.
    fn run_query(&self, args: &[&str]) -> (u8, String, String) {
        let mut argv = vec!["query"];
        argv.extend_from_slice(args);
        argv.extend(["--export", &self.export, "--trust", &self.trust]);
        stockpile(&argv)
    }

    /// The answer of a query that must succeed.
    #[track_caller]
    fn query(&self, args: &[&str]) -> Value {
        let (code, out, err) = self.run_query(args);
        assert_eq!(code, 0, "query {args:?}: {err}");
        json(&out)
    }

    /// `stockpile report article7 ARGS… --export … --trust …`.
    fn run_report(&self, args: &[&str]) -> (u8, String, String) {
        let mut argv = vec!["report", "article7"];
        argv.extend_from_slice(args);
        argv.extend(["--export", &self.export, "--trust", &self.trust]);
        stockpile(&argv)
    }

    /// The output of a report that must succeed.
    #[track_caller]
    fn report(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run_report(args);
        assert_eq!(code, 0, "report {args:?}: {err}");
        out
    }

    fn year_of(&self, index: usize) -> i32 {
        decode_entry(&self.entries[index])
            .expect("an entry")
            .recorded_at
            .date()
            .year()
    }
}

fn text(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_string()
}

#[track_caller]
fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

fn read_entries(export: &Path) -> Vec<Bytes> {
    let mut reader = ExportReader::open(fs::File::open(export).expect("open")).expect("export");
    let mut entries = Vec::new();
    while let Some(record) = reader.next_record().expect("a record") {
        if let ExportRecord::Entry(bytes) = record {
            entries.push(bytes);
        }
    }
    entries
}

/// Byte range of the record of entry `index` in an export file.
fn entry_record_span(export: &Path, index: u64) -> (usize, usize) {
    let mut reader = ExportReader::open(fs::File::open(export).expect("open")).expect("export");
    let mut entries = 0u64;
    loop {
        let start = reader.offset() as usize;
        match reader.next_record().expect("a record") {
            Some(ExportRecord::Entry(_)) if entries == index => {
                return (start, reader.offset() as usize);
            }
            Some(ExportRecord::Entry(_)) => entries += 1,
            Some(_) => {}
            None => panic!("the export has no entry {index}"),
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

fn u64_of(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

// ---------------------------------------------------------------------------------------
// Views from an export

#[test]
fn query_answers_agree_with_the_reference_model_and_the_verifier() {
    let s = scenario();
    let expected = &s.outcome.expected;
    let stockpile_view = s.query(&["stockpile"]);
    assert_eq!(stockpile_view["totals"], to_json(&expected.totals));
    assert_eq!(stockpile_view["lots"], expected.lots);
    assert_eq!(stockpile_view["terminal_lots"], expected.terminal_lots);
    assert_eq!(stockpile_view["declared"], expected.declared);
    let by_site: BTreeMap<String, Value> = stockpile_view["by_site"]
        .as_array()
        .expect("by_site")
        .iter()
        .map(|row| {
            (
                row["site_id"].as_str().unwrap().to_string(),
                row["pools"].clone(),
            )
        })
        .collect();
    let expected_by_site: BTreeMap<String, Value> = expected
        .by_site
        .iter()
        .map(|(site, totals)| (site.clone(), to_json(totals)))
        .collect();
    assert_eq!(by_site, expected_by_site);
    let held: u64 = stockpile_view["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| u64_of(&row["units"]))
        .sum();
    assert_eq!(held, expected.totals.held(), "the rows are the held units");
    assert_eq!(stockpile_view["as_of"]["entries"], s.outcome.entries);
    assert_eq!(
        stockpile_view["as_of"]["as_of_index"],
        s.outcome.entries - 1
    );

    // The summary's state digest is the verifier's, from the same export.
    let summary = s.query(&["summary"]);
    let (code, out, err) = stockpile(&["verify", &s.export, "--trust", &s.trust, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let verified = json(&out);
    assert!(verified["state_digest"].is_string(), "{verified}");
    assert_eq!(summary["state_digest"], verified["state_digest"]);
    assert_eq!(summary["summary"], verified["summary"]);
    assert_eq!(summary["accepted_entries"], s.outcome.accepted);
    assert_eq!(summary["rejected_entries"], s.outcome.rejected);

    // --compact: the same JSON on one line.
    let (code, out, err) = s.run_query(&["summary", "--compact"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert_eq!(json(&out), summary);
}

#[test]
fn query_lot_gives_its_history_and_unknown_lots_and_views_are_refused() {
    let s = scenario();
    // Independently: every accepted LotDeclared, by lot, with its index and event id.
    let mut declared: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for bytes in &s.entries {
        let entry = decode_entry(bytes).expect("an entry");
        if entry.verdict != EntryVerdict::Accepted {
            continue;
        }
        let event = decode_submission(&entry.submission)
            .expect("a submission")
            .event;
        if let EventBody::LotDeclared(lot) = &event.body {
            declared.insert(lot.lot_id.clone(), (entry.index, event.event_id.clone()));
        }
    }
    let lots = s.query(&["lots"]);
    let ids: BTreeSet<String> = lots["lot_ids"]
        .as_array()
        .expect("lot_ids")
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, declared.keys().cloned().collect::<BTreeSet<_>>());
    assert_eq!(ids.len() as u64, s.outcome.expected.lots);

    // The entries that concern a lot: those naming it, and those naming an event that
    // does (a certificate covering a destruction, a correction of a count).
    let events: Vec<(u64, String, String)> = s
        .entries
        .iter()
        .filter_map(|bytes| {
            let entry = decode_entry(bytes).unwrap();
            let event = decode_submission(&entry.submission).ok()?.event;
            let body = serde_json::to_string(&event.body).unwrap();
            Some((entry.index, event.event_id, body))
        })
        .collect();
    let concerning = |lot_id: &str| -> Vec<u64> {
        let mut named = vec![format!("\"{lot_id}\"")];
        let mut indices = Vec::new();
        for (index, event_id, body) in &events {
            if named.iter().any(|name| body.contains(name)) {
                indices.push(*index);
                named.push(format!("\"{event_id}\""));
            }
        }
        indices
    };
    let lot_id = ids
        .iter()
        .max_by_key(|id| concerning(id).len())
        .expect("a lot")
        .clone();
    let lot = s.query(&["lot", &lot_id]);
    assert_eq!(lot["lot_id"], lot_id.as_str());
    let (declared_at, declared_by) = &declared[&lot_id];
    assert_eq!(lot["event_id"], declared_by.as_str());
    // The default page is the latest events; paging from 0 until empty gives them all.
    let total = u64_of(&lot["history_total"]);
    let latest: Vec<Value> = lot["history"].as_array().expect("history").clone();
    assert_eq!(latest.len() as u64, total.min(100), "{lot}");
    assert_eq!(u64_of(&lot["history_from"]), total - latest.len() as u64);
    // A few pages (each query folds the export again).
    let limit = (total / 3 + 1).min(1_000);
    let limit_text = limit.to_string();
    let mut events: Vec<Value> = Vec::new();
    loop {
        let from = events.len().to_string();
        let page = s.query(&[
            "lot",
            &lot_id,
            "--history-from",
            &from,
            "--history-limit",
            &limit_text,
        ]);
        assert_eq!(u64_of(&page["history_total"]), total);
        let batch = page["history"].as_array().expect("history").clone();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() as u64 <= limit);
        events.extend(batch);
    }
    assert_eq!(events.len() as u64, total);
    assert_eq!(events[events.len() - latest.len()..], latest[..]);
    let history: Vec<u64> = events.iter().map(|event| u64_of(&event["index"])).collect();
    assert_eq!(history.first(), Some(declared_at), "{lot}");
    assert!(history.len() > 1, "a lot with a history: {lot}");
    let naming = concerning(&lot_id);
    for index in &history {
        assert!(
            naming.contains(index),
            "entry {index} does not concern {lot_id}"
        );
    }

    // An unknown lot: exit 1, a plain sentence on stderr, nothing on stdout.
    let (code, out, err) = s.run_query(&["lot", "NO-SUCH-LOT"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("no lot \"NO-SUCH-LOT\" in the ledger"),
        "{err}"
    );
    assert!(!err.contains('{'), "no JSON in the message: {err}");

    // A bad view name: exit 2, naming the valid ones.
    let (code, _, err) = s.run_query(&["stok"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"stok\""), "{err}");
    for name in VIEW_NAMES {
        assert!(err.contains(name), "{name} is not named: {err}");
    }
    // Misused arguments: exit 2 with the reason.
    for (args, reason) in [
        (&["lot"][..], "needs a lot id"),
        (&["stockpile", "--year", "2015"][..], "--year goes with"),
        (&["stockpile", "SYN-LOT"][..], "only the lot view"),
        (&["material-balance", "--year", "10000"][..], "out of range"),
        (
            &["lot", &lot_id, "--history-limit", "0"][..],
            "history_limit 0 is out of range",
        ),
        (
            &["lot", &lot_id, "--history-limit", "1001"][..],
            "history_limit 1001 is out of range",
        ),
        (
            &["flags", "--history-from", "0"][..],
            "go with the lot view",
        ),
    ] {
        let (code, out, err) = s.run_query(args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
    let year = s.year_of(s.entries.len() / 2);
    let balance = s.query(&["material-balance", "--year", &year.to_string()]);
    assert_eq!(balance["period"]["from"], format!("{year}-01-01"));
    assert!(s.query(&["material-balance"])["period"].is_null());
}

#[test]
fn as_of_index_answers_as_the_ledger_cut_after_that_entry() {
    let s = scenario();
    let total = s.entries.len() as u64;
    let n = total / 2;
    // The ledger cut after entry n, written as an export of its own.
    let cut = s.path("cut.export");
    let mut writer =
        ExportWriter::new(fs::File::create(&cut).unwrap(), &s.outcome.origin).expect("an export");
    for entry in &s.entries[..=n as usize] {
        writer.write_entry(entry).unwrap();
    }
    writer.finish().unwrap();
    let as_of = n.to_string();
    for view in VIEW_NAMES.iter().filter(|name| **name != "lot") {
        let answer = s.query(&[view, "--as-of-index", &as_of]);
        let (code, out, err) = stockpile(&["query", view, "--export", &cut, "--trust", &s.trust]);
        assert_eq!(code, 0, "{view}: {err}");
        assert_eq!(
            answer,
            json(&out),
            "{view} as of {n} = {view} of the cut ledger"
        );
    }
    let summary = s.query(&["summary", "--as-of-index", &as_of]);
    assert_eq!(summary["as_of"]["as_of_index"], n, "{summary}");
    assert_eq!(summary["as_of"]["entries"], n + 1);
    assert_ne!(
        summary["state_digest"],
        s.query(&["summary"])["state_digest"]
    );
    // The verifier reads the cut ledger to the same state.
    let (code, out, err) = stockpile(&["verify", &cut, "--trust", &s.trust, "--json"]);
    assert!(code <= 1, "{err}");
    assert_eq!(json(&out)["state_digest"], summary["state_digest"]);

    let (code, _, err) = s.run_query(&["stockpile", "--as-of-index", &total.to_string()]);
    assert_eq!(code, 2);
    assert!(err.contains("beyond the ledger"), "{err}");
}

#[test]
fn a_flipped_byte_in_an_entry_stops_the_fold_naming_the_entry() {
    let s = scenario();
    let k = s.entries.len() / 3;
    let original = fs::read(&s.export).unwrap();
    let (start, end) = entry_record_span(Path::new(&s.export), k as u64);
    let flipped_at = |at: usize, name: &str| -> String {
        assert!(start < at && at < end, "inside the record of entry {k}");
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        let path = s.path(name);
        fs::write(&path, bytes).unwrap();
        path
    };
    let query_stockpile = |export: &str, extra: &[&str]| {
        let mut args = vec![
            "query",
            "stockpile",
            "--export",
            export,
            "--trust",
            &s.trust,
        ];
        args.extend_from_slice(extra);
        stockpile(&args)
    };

    // A bit of the entry's link to the entry before: the entry is refused.
    let link = entry_link_hash(&s.entries[k - 1]);
    let link_at = original[start..end]
        .windows(32)
        .position(|window| window == link.as_bytes())
        .expect("the link is in the record");
    let broken_link = flipped_at(start + link_at + 16, "broken-link.export");
    let (code, out, err) = query_stockpile(&broken_link, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.is_empty());
    assert!(err.contains(&format!("at entry {k}:")), "{err}");
    assert!(err.contains("prev_entry_hash"), "{err}");

    // A byte in the middle of the entry (its submission): it still decodes, but the next
    // entry's link no longer matches it, and the message says which two to suspect.
    let altered = flipped_at((start + end) / 2, "altered.export");
    let (code, _, err) = query_stockpile(&altered, &[]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("at entry {}:", k + 1)), "{err}");
    assert!(
        err.contains(&format!("entry {k} or entry {} was altered", k + 1)),
        "{err}"
    );
    let (code, out, _) = stockpile(&["verify", &altered, "--trust", &s.trust]);
    assert_eq!(code, 1, "the verifier finds it too: {out}");
    // The ledger before the altered entry still answers.
    let before = (k - 1).to_string();
    let (code, out, err) = query_stockpile(&altered, &["--as-of-index", &before]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["as_of"]["as_of_index"], k - 1);
}

// ---------------------------------------------------------------------------------------
// The Article 7 report from an export

/// Destroyed and consumed units counted straight from the entries recorded by the end of
/// a year (as crates/stockpile-views/tests/views/article7.rs counts them).
#[derive(Debug, Default)]
struct Naive {
    eif: Option<Date>,
    /// `LotDestroyed` event id → (lot id, end date, units after corrections).
    destroyed: BTreeMap<String, (String, Date, u64)>,
    consumed: Vec<(Date, u64)>,
    discovered_lots: BTreeSet<String>,
}

impl Naive {
    fn through(entries: &[Bytes], year: i32) -> Naive {
        let mut naive = Naive::default();
        for bytes in entries {
            let entry = decode_entry(bytes).unwrap();
            if entry.recorded_at.date().year() > year {
                break;
            }
            if entry.verdict != EntryVerdict::Accepted {
                continue;
            }
            let event = decode_submission(&entry.submission).unwrap().event;
            match event.body {
                EventBody::RegimeConfigured(e) => {
                    naive.eif.get_or_insert(e.eif_date);
                }
                EventBody::LotDeclared(e) if e.basis == LotBasis::Discovered => {
                    naive.discovered_lots.insert(e.lot_id);
                }
                EventBody::LotDestroyed(e) => {
                    naive
                        .destroyed
                        .insert(event.event_id, (e.lot_id, e.end_date, e.quantity));
                }
                EventBody::RetainedMinesConsumed(e) => naive.consumed.push((e.date, e.quantity)),
                EventBody::CorrectionIssued(e) => {
                    let change = e.changes.iter().find(|c| c.field == "quantity");
                    if let (Some(destroyed), Some(change)) =
                        (naive.destroyed.get_mut(&e.corrected_event_id), change)
                    {
                        destroyed.2 = change.new_value.parse().unwrap();
                    }
                }
                _ => {}
            }
        }
        naive
    }

    /// (since EIF, in the year) of ordinary lots, and of discovered ones.
    fn destroyed(&self, year: i32) -> ((u64, u64), (u64, u64)) {
        let eif = self.eif.expect("a regime");
        let (mut ordinary, mut discovered) = ((0, 0), (0, 0));
        for (lot_id, end, units) in self.destroyed.values() {
            if *end < eif {
                continue;
            }
            let sums = if self.discovered_lots.contains(lot_id) {
                &mut discovered
            } else {
                &mut ordinary
            };
            sums.0 += units;
            if end.year() == year {
                sums.1 += units;
            }
        }
        (ordinary, discovered)
    }

    fn consumed_in(&self, year: i32) -> u64 {
        self.consumed
            .iter()
            .filter(|(date, _)| date.year() == year)
            .map(|(_, units)| units)
            .sum()
    }
}

/// Parses RFC 4180 CSV (CRLF line ends, quoted fields with doubled quotes).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                in_quotes = true;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR only before LF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            '\n' => panic!("a bare LF ends a record"),
            c => field.push(c),
        }
    }
    assert!(!in_quotes, "unterminated quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record ends with CRLF"
    );
    records
}

/// The CSV's sections: id → (header, rows); each a `#id` title, a header, rows as wide
/// as the header, and an empty record.
fn csv_sections(csv: &str) -> BTreeMap<String, (Vec<String>, Vec<Vec<String>>)> {
    let mut sections = BTreeMap::new();
    let mut records = parse_csv(csv).into_iter();
    while let Some(title) = records.next() {
        assert_eq!(title.len(), 1, "a section starts with its title: {title:?}");
        let id = title[0].strip_prefix('#').expect("a # title").to_string();
        let header = records.next().expect("a header after the title");
        let mut rows = Vec::new();
        for record in records.by_ref() {
            if record == [""] {
                break;
            }
            assert_eq!(record.len(), header.len(), "section {id}: {record:?}");
            rows.push(record);
        }
        assert!(
            sections.insert(id.clone(), (header, rows)).is_none(),
            "{id} twice"
        );
    }
    sections
}

#[test]
fn report_article7_matches_the_reference_model_and_an_independent_count() {
    let s = scenario();
    let first_year = s.year_of(0);
    let last_year = s.year_of(s.entries.len() - 1);
    assert!(last_year - first_year >= 2, "{first_year}..{last_year}");

    // The last year's report covers the whole ledger: the reference model's end state.
    let expected = &s.outcome.expected;
    let report = json(&s.report(&["--year", &last_year.to_string(), "--format", "json"]));
    assert_eq!(report["cover"]["year"], last_year);
    assert_eq!(report["cover"]["as_of"]["entries"], s.outcome.entries);
    let (b, d, f, g, h) = (
        &report["form_b"],
        &report["form_d"],
        &report["form_f"],
        &report["form_g"],
        &report["form_h"],
    );
    assert_eq!(
        u64_of(&b["total"]) + u64_of(&b["discovered_total"]),
        expected.totals.stockpiled + expected.totals.korea + expected.totals.in_transit,
        "Form B"
    );
    assert_eq!(
        u64_of(&g["total"]) + u64_of(&g["discovered_total"]),
        expected.totals.destroyed,
        "Form G"
    );
    assert_eq!(d["retained_total"], expected.totals.retained, "Form D");
    let facilities: u64 = f["facilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|facility| u64_of(&facility["destroyed_total"]))
        .sum();
    assert_eq!(facilities, expected.totals.destroyed, "Form F");
    assert_eq!(
        h["rows"].as_array().unwrap().len(),
        expected.by_type.len(),
        "Form H"
    );

    // Every year, at its own 31 December, against the entries counted independently.
    for year in first_year..=last_year {
        let report = json(&s.report(&["--year", &year.to_string()]));
        let naive = Naive::through(&s.entries, year);
        let (ordinary, discovered) = naive.destroyed(year);
        let g = &report["form_g"];
        assert_eq!(
            (u64_of(&g["total"]), u64_of(&g["in_period_total"])),
            ordinary,
            "{year}: Form G"
        );
        assert_eq!(
            u64_of(&g["discovered_total"]),
            discovered.0,
            "{year}: Form G"
        );
        assert_eq!(
            report["form_d"]["consumed_in_period"],
            naive.consumed_in(year),
            "{year}: Form D actual use"
        );
        let recorded = report["cover"]["as_of"]["recorded_at"]
            .as_u64()
            .unwrap_or(0);
        let last_of_year = s
            .entries
            .iter()
            .map(|bytes| decode_entry(bytes).unwrap().recorded_at)
            .filter(|at| at.date().year() <= year)
            .max()
            .expect("an entry by then");
        assert_eq!(
            recorded, last_of_year.0 as u64,
            "{year}: the position of 31 December"
        );
    }

    // CSV: RFC 4180, one section per table, as many rows as the JSON lists.
    let csv = s.report(&["--year", &last_year.to_string(), "--format", "csv"]);
    let sections = csv_sections(&csv);
    for (id, pointer) in [
        ("form_b", "/form_b/rows"),
        ("form_d_retained", "/form_d/retained"),
        ("form_f_facilities", "/form_f/facilities"),
        ("form_g", "/form_g/rows"),
        ("form_h", "/form_h/rows"),
        ("cover_forms", "/cover/forms"),
    ] {
        let rows = report.pointer(pointer).unwrap().as_array().unwrap().len();
        assert_eq!(sections[id].1.len(), rows, "CSV section {id} vs {pointer}");
    }
    assert!(sections.contains_key("cover"), "{:?}", sections.keys());

    // HTML: the State's name as given, escaped; no markup from data.
    let html = s.report(&[
        "--year",
        &last_year.to_string(),
        "--format",
        "html",
        "--state-name",
        MARKUP_STATE,
    ]);
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.trim_end().ends_with("</html>"));
    assert!(
        html.contains("Republic of &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"),
        "{html}"
    );
    assert!(!html.contains("<script"), "markup from data: {html}");
}

#[test]
fn report_settings_output_file_and_refusals() {
    let s = scenario();
    let year = s.year_of(s.entries.len() - 1).to_string();

    // --article7-config gives the cover page; --state-name overrides its name.
    let config = s.path("article7.json");
    fs::write(
        &config,
        r#"{"state_name": "From the file", "submission_date": "2021-04-30",
            "contacts": [{"name": "A. Officer", "organisation": "MFA", "role": "focal point",
                          "email": "focal.point@example.org", "phone": "+00 0"}]}"#,
    )
    .unwrap();
    let cover = &json(&s.report(&["--year", &year, "--article7-config", &config]))["cover"];
    assert_eq!(cover["state_name"], "From the file");
    assert_eq!(cover["submission_date"], "2021-04-30");
    assert_eq!(cover["contacts"][0]["email"], "focal.point@example.org");
    let named = json(&s.report(&[
        "--year",
        &year,
        "--article7-config",
        &config,
        "--state-name",
        MARKUP_STATE,
    ]));
    assert_eq!(named["cover"]["state_name"], MARKUP_STATE);
    assert_eq!(named["cover"]["contacts"], cover["contacts"]);
    let broken = s.path("broken.json");
    fs::write(&broken, r#"{"state_name": 7}"#).unwrap();
    let (code, _, err) = s.run_report(&["--year", &year, "--article7-config", &broken]);
    assert_eq!(code, 2);
    assert!(err.contains("not an Article 7 configuration"), "{err}");

    // --out writes the whole report and leaves no partial file.
    let out = s.path("report.csv");
    let (code, stdout, err) = s.run_report(&["--year", &year, "--format", "csv", "--out", &out]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote"), "{stdout}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        s.report(&["--year", &year, "--format", "csv"])
    );
    assert!(!Path::new(&format!("{out}.partial")).exists());

    // A year out of range, or before the ledger configures its regime: exit 2, no file.
    let refused = s.path("refused.json");
    for (year, reason) in [
        ("10000", "out of range"),
        ("0", "out of range"),
        ("1990", "no Article 7 report for 1990"),
    ] {
        let (code, stdout, err) = s.run_report(&["--year", year, "--out", &refused]);
        assert_eq!(code, 2, "{year}: {stdout}");
        assert!(err.contains(reason), "{year}: {err}");
        assert!(!Path::new(&refused).exists());
        assert!(!Path::new(&format!("{refused}.partial")).exists());
    }
    let (_, _, err) = s.run_report(&["--year", "1990"]);
    assert!(err.contains("regime"), "{err}");
    let (code, _, _) = s.run_report(&["--year", &year, "--format", "pdf"]);
    assert_eq!(code, 2);
}

#[test]
fn sources_are_exactly_one_and_checked() {
    let s = scenario();
    for (args, reason) in [
        (vec!["query", "summary"], "say where the ledger is"),
        (vec!["query", "summary", "--export", &s.export], "--trust"),
        (
            vec![
                "query",
                "summary",
                "--projector",
                "https://projector.example",
            ],
            "https is not supported",
        ),
        (
            vec!["query", "summary", "--projector", "127.0.0.1:1"],
            "http:// URL",
        ),
        (
            vec![
                "query",
                "summary",
                "--export",
                &s.export,
                "--trust",
                &s.trust,
                "--nats",
                "nats://127.0.0.1:1",
            ],
            "give one source",
        ),
        (
            vec![
                "query",
                "summary",
                "--export",
                &s.export,
                "--projector",
                "http://x",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "report",
                "article7",
                "--year",
                "2015",
                "--projector",
                "http://127.0.0.1:1",
            ],
            "cannot reach the projector",
        ),
    ] {
        let (code, out, err) = stockpile(&args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
    // An export of another ledger than the trust root's.
    let other = s.path("other-trust.json");
    let keys = stockpile_scenario::ScenarioKeys::new(Dataset::UsLike, 1);
    fs::write(&other, keys.trust_root().to_json()).unwrap();
    let (code, _, err) = stockpile(&["query", "summary", "--export", &s.export, "--trust", &other]);
    assert_eq!(code, 2);
    assert!(err.contains("but the trust root is for"), "{err}");
}

// ---------------------------------------------------------------------------------------
// A live system

#[test]
fn the_export_the_live_ledger_and_a_projector_give_the_same_answers() {
    let mut live = Live::start(9, LIVE_ENTRIES);
    let total = live.publish(usize::MAX);
    let mut projector = live.projector_with("main", &[], &["--state-name", MARKUP_STATE]);
    projector.wait_for_entries(total);
    let (nats, dir) = (&live.nats, &live.dir);
    let trust = text(&live.trust);
    let base = format!("http://{}", projector.addr());
    let projector = &mut projector.service;

    // The inspector's three ways to the same ledger.
    let export: PathBuf = dir.path().join("live.export");
    let export_path = text(&export);
    let url = nats.url();
    let password = nats.password("inspector").to_string();
    let live = [
        "--nats",
        &url,
        "--nats-user",
        "inspector",
        "--nats-password",
        &password,
    ];
    let mut export_args = live.to_vec();
    export_args.splice(0..0, ["export", "--out", &export_path]);
    let (code, out, err) = stockpile(&export_args);
    assert_eq!(code, 0, "{out}{err}");
    let from_export = ["--export", &export_path, "--trust", &trust];
    let mut from_nats = live.to_vec();
    from_nats.extend(["--trust", &trust]);
    let from_projector = ["--projector", &base];
    let answer = |command: &[&str], source: &[&str]| -> (u8, String, String) {
        let mut args = command.to_vec();
        args.extend_from_slice(source);
        stockpile(&args)
    };
    let query = |view: &[&str], source: &[&str]| -> Value {
        let mut command = vec!["query"];
        command.extend_from_slice(view);
        let (code, out, err) = answer(&command, source);
        assert_eq!(
            code,
            0,
            "{command:?} {source:?}: {err}\n{}",
            projector.log_tail()
        );
        json(&out)
    };

    let stockpile_view = query(&["stockpile"], &from_export);
    assert_eq!(stockpile_view["as_of"]["entries"], total);
    assert_eq!(
        query(&["stockpile"], &from_nats),
        stockpile_view,
        "NATS = export"
    );
    assert_eq!(
        query(&["stockpile"], &from_projector),
        stockpile_view,
        "projector = export"
    );
    assert_eq!(
        query(&["summary"], &from_nats),
        query(&["summary"], &from_export)
    );
    for view in VIEW_NAMES.iter().filter(|name| **name != "lot") {
        assert_eq!(
            query(&[view], &from_projector),
            query(&[view], &from_export),
            "{view}: projector = export"
        );
    }
    let lots = query(&["lots"], &from_export);
    let lot_id = lots["lot_ids"][0].as_str().expect("a lot").to_string();
    assert_eq!(
        query(&["lot", &lot_id], &from_projector),
        query(&["lot", &lot_id], &from_export)
    );
    // A page of the history: the same from every source.
    let paged = [
        "lot",
        &lot_id,
        "--history-from",
        "1",
        "--history-limit",
        "2",
    ];
    let from_export_paged = query(&paged, &from_export);
    assert_eq!(from_export_paged["history_from"], 1);
    assert_eq!(
        query(&paged, &from_projector),
        from_export_paged,
        "projector = export"
    );
    assert_eq!(
        query(&paged, &from_nats),
        from_export_paged,
        "NATS = export"
    );
    let (code, _, err) = answer(
        &["query", "lot", &lot_id, "--history-limit", "1001"],
        &from_projector,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("history_limit 1001 is out of range"), "{err}");
    let half = (total / 2).to_string();
    assert_eq!(
        query(&["stockpile", "--as-of-index", &half], &from_projector),
        query(&["stockpile", "--as-of-index", &half], &from_export),
        "as of an earlier index"
    );
    let (code, out, err) = answer(&["query", "lot", "NO-SUCH-LOT"], &from_projector);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no lot \"NO-SUCH-LOT\" in the ledger"),
        "{err}"
    );
    let beyond = total.to_string();
    let (code, _, err) = answer(
        &["query", "lot", &lot_id, "--as-of-index", &beyond],
        &from_projector,
    );
    assert_eq!(
        code, 2,
        "an index beyond the views is not a missing lot: {err}"
    );

    // The report for the year of the live entries: the projector's equals the offline one.
    let last = read_entries(&export).pop().expect("an entry");
    let year = decode_entry(&last)
        .unwrap()
        .recorded_at
        .date()
        .year()
        .to_string();
    let report = |source: &[&str], format: &str, extra: &[&str]| -> String {
        let mut command = vec!["report", "article7", "--year", &year, "--format", format];
        command.extend_from_slice(extra);
        let (code, out, err) = answer(&command, source);
        assert_eq!(code, 0, "{source:?}: {err}");
        out
    };
    for format in ["csv", "json", "html"] {
        let offline = report(&from_export, format, &["--state-name", MARKUP_STATE]);
        assert!(offline.contains("Republic of "), "{offline}");
        assert_eq!(
            report(&from_projector, format, &[]),
            offline,
            "{format}: projector = export"
        );
        if format == "csv" {
            assert_eq!(
                report(&from_nats, format, &["--state-name", MARKUP_STATE]),
                offline,
                "NATS = export"
            );
        }
    }
    assert_eq!(projector.terminate(), Some(0), "{}", projector.log_tail());
}
