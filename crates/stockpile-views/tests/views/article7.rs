//! The Article 7 report: its totals against the reference model and an independent
//! count of the entries, the cover page's changed/unchanged marks, and the renderings
//! (CSV that parses back, HTML whose tags close and whose data never becomes markup).

use crate::support::{Ledger, all_configs, config, ledger, markup_ledger};
use std::collections::BTreeMap;
use stockpile_core::events::{EventBody, LotBasis};
use stockpile_core::time::Date;
use stockpile_proto::envelope::{EntryVerdict, decode_entry, decode_submission};
use stockpile_scenario::Dataset;
use stockpile_views::article7::{
    Article7Config, Article7Error, Article7Report, Contact, FormStatus, ProgrammeStatus,
    article7_report, year_end,
};
use stockpile_views::fold::ViewFold;
use stockpile_views::views;

fn report_config() -> Article7Config {
    Article7Config {
        state_name: "Synthetic State, \"test\"".into(),
        contacts: vec![Contact {
            name: "A. Officer".into(),
            organisation: "Ministry of Foreign Affairs, Arms Control Unit".into(),
            role: "Article 7 focal point".into(),
            email: "focal.point@example.org".into(),
            phone: "+00 0000 0000".into(),
        }],
        submission_date: None,
    }
}

// ---------------------------------------------------------------------------------------
// An independent count of destruction and consumption, straight from the entries.

/// Destroyed and consumed units as of a ledger position, counted from the accepted
/// events themselves: what Forms G and D must show.
#[derive(Debug, Default)]
struct Naive {
    eif: Option<Date>,
    /// `LotDestroyed` event id → (lot id, end date, units after corrections).
    destroyed: BTreeMap<String, (String, Date, u64)>,
    consumed: Vec<(Date, u64)>,
    discovered_lots: Vec<String>,
}

impl Naive {
    fn of(ledger: &Ledger, entries: u64) -> Naive {
        let mut naive = Naive::default();
        for bytes in &ledger.entries[..entries as usize] {
            let entry = decode_entry(bytes).unwrap();
            if entry.verdict != EntryVerdict::Accepted {
                continue;
            }
            let event = decode_submission(&entry.submission).unwrap().event;
            match event.body {
                // The U.S.-like ledger reconfigures its regime with each policy; its
                // record runs from the first. The APMBC ones configure once.
                EventBody::RegimeConfigured(e) => {
                    naive.eif.get_or_insert(e.eif_date);
                }
                EventBody::LotDeclared(e) if e.basis == LotBasis::Discovered => {
                    naive.discovered_lots.push(e.lot_id)
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

    /// (since EIF, in the year): of ordinary lots, and of discovered ones.
    fn destroyed(&self, year: i32) -> ((u64, u64), (u64, u64)) {
        let eif = self.eif.unwrap();
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

fn last_year(ledger: &Ledger) -> i32 {
    let last = decode_entry(ledger.entries.last().unwrap()).unwrap();
    last.recorded_at.date().year()
}

fn first_year(ledger: &Ledger) -> i32 {
    let first = decode_entry(&ledger.entries[0]).unwrap();
    first.recorded_at.date().year()
}

// ---------------------------------------------------------------------------------------

#[test]
fn the_last_years_report_matches_the_reference_model() {
    for config in all_configs() {
        let ledger = ledger(&config);
        let name = format!("{} padded to {}", config.dataset, config.min_entries);
        let expected = &ledger.outcome.expected;
        let year = last_year(ledger);
        let mut fold = ledger.empty_fold();
        for entry in &ledger.entries {
            assert!(
                fold.apply_through(entry, year_end(year).unwrap())
                    .unwrap()
                    .is_some()
            );
        }
        let report = article7_report(&fold, year, &report_config(), None).unwrap();
        let b = &report.form_b;
        assert_eq!(
            b.total + b.discovered_total,
            expected.totals.stockpiled + expected.totals.korea + expected.totals.in_transit,
            "{name}: Form B"
        );
        let by_type: u64 = b.totals_by_type.iter().map(|t| t.quantity).sum();
        assert_eq!(by_type, b.total, "{name}");
        let g = &report.form_g;
        assert_eq!(
            g.total + g.discovered_total,
            expected.totals.destroyed,
            "{name}: Form G (every scenario destroys after EIF)"
        );
        assert_eq!(
            report.form_d.retained_total, expected.totals.retained,
            "{name}: Form D"
        );
        let facilities: u64 = report
            .form_f
            .facilities
            .iter()
            .map(|f| f.destroyed_total)
            .sum();
        assert_eq!(facilities, expected.totals.destroyed, "{name}: Form F");
        assert_eq!(
            report.form_h.rows.len(),
            expected.by_type.len(),
            "{name}: Form H lists every type held"
        );
        check_csv(&report);
        check_html(&report.to_html());
        let back: Article7Report = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back, report, "{name}: JSON round trip");
    }
}

#[test]
fn each_years_report_is_computed_at_its_31_december() {
    for dataset in Dataset::ALL {
        let ledger = ledger(&config(dataset, 0));
        let mut fold = ledger.empty_fold();
        let mut next = 0usize;
        let mut previous: Option<Article7Report> = None;
        let mut reports = BTreeMap::new();
        for year in first_year(ledger)..=last_year(ledger) {
            let end = year_end(year).unwrap();
            while next < ledger.entries.len()
                && fold
                    .apply_through(&ledger.entries[next], end)
                    .unwrap()
                    .is_some()
            {
                next += 1;
            }
            let report = article7_report(&fold, year, &report_config(), previous.as_ref())
                .unwrap_or_else(|e| panic!("{dataset} {year}: {e}"));
            let name = format!("{dataset} {year}");
            assert_eq!(report.cover.as_of.entries, fold.entries(), "{name}");
            assert!(
                report.cover.as_of.recorded_at.unwrap().date() <= end,
                "{name}"
            );

            // Form B is the stockpile view at that position.
            let stockpile = views::stockpile(&fold);
            assert_eq!(
                report.form_b.total + report.form_b.discovered_total,
                stockpile.totals.stockpiled + stockpile.totals.korea + stockpile.totals.in_transit,
                "{name}: Form B"
            );
            // Forms G and D against the entries counted independently.
            let naive = Naive::of(ledger, fold.entries());
            let (ordinary, discovered) = naive.destroyed(year);
            let g = &report.form_g;
            assert_eq!((g.total, g.in_period_total), ordinary, "{name}: Form G");
            let discovered_in_period: u64 = g.discovered.iter().map(|r| r.in_period).sum();
            assert_eq!(
                (g.discovered_total, discovered_in_period),
                discovered,
                "{name}: Form G, discovered stock"
            );
            assert_eq!(
                report.form_d.consumed_in_period,
                naive.consumed_in(year),
                "{name}: Form D actual use"
            );
            check_marks(&report, previous.as_ref(), &name);

            // A fold past the year is refused for an earlier year.
            if let Some(previous) = &previous
                && fold.today().unwrap() > year_end(previous.cover.year).unwrap()
            {
                assert!(matches!(
                    article7_report(&fold, previous.cover.year, &report_config(), None),
                    Err(Article7Error::BeyondYearEnd { .. })
                ));
            }
            reports.insert(year, report.clone());
            previous = Some(report);
        }
        if dataset == Dataset::FinlandLike {
            finland_anchors(&reports);
        }
    }
}

/// Finland destroyed its last stockpiled mine on 15 August 2015 and found 340 PMN in
/// 2017 (domain.md §6): the forms say so.
fn finland_anchors(reports: &BTreeMap<i32, Article7Report>) {
    let of = |year: i32| &reports[&year];
    assert_eq!(of(2014).form_f.status, ProgrammeStatus::Ongoing);
    assert_eq!(of(2016).form_b.total, 0, "nothing stockpiled after 2015");
    assert_eq!(of(2016).form_f.status, ProgrammeStatus::Completed);
    assert!(of(2016).form_g.total > 1_000_000);
    assert_eq!(of(2016).form_g.in_period_total, 0);
    let mark = |year: i32, form: &str| {
        of(year)
            .cover
            .forms
            .iter()
            .find(|m| m.form == form)
            .unwrap()
            .status
            .clone()
    };
    // The two types registered in 2012 stay Form H's rows until PMN is found in 2017.
    assert_eq!(
        mark(2013, "H"),
        FormStatus::Unchanged {
            last_reported: 2012
        }
    );
    assert_eq!(
        mark(2016, "H"),
        FormStatus::Unchanged {
            last_reported: 2012
        }
    );
    assert_eq!(mark(2017, "H"), FormStatus::Changed);
    assert_eq!(
        mark(2018, "H"),
        FormStatus::Unchanged {
            last_reported: 2017
        }
    );
    assert_eq!(mark(2016, "A"), FormStatus::OutsideLedger);
    assert_eq!(of(2017).form_g.discovered_total, 340);
    assert_eq!(of(2017).form_b.discovered.len(), 1, "found in 2017, listed");
    assert_eq!(of(2017).form_h.rows.len(), 3);
}

/// Each ledger form is unchanged exactly when it equals last year's.
#[track_caller]
fn check_marks(report: &Article7Report, previous: Option<&Article7Report>, name: &str) {
    let json = |report: &Article7Report, form: &str| {
        serde_json::to_value(report).unwrap()[format!("form_{}", form.to_lowercase())].clone()
    };
    for mark in &report.cover.forms {
        match (&mark.status, previous) {
            (FormStatus::OutsideLedger, _) => {
                assert!(["A", "C", "E", "I", "J"].contains(&mark.form.as_str()))
            }
            (FormStatus::NotApplicable, _) => {}
            (FormStatus::Changed, None) => {}
            (status, None) => panic!("{name}: form {} is {status:?} with no previous", mark.form),
            (FormStatus::Changed, Some(previous)) => assert_ne!(
                json(report, &mark.form),
                json(previous, &mark.form),
                "{name}: form {}",
                mark.form
            ),
            (FormStatus::Unchanged { last_reported }, Some(previous)) => {
                assert_eq!(
                    json(report, &mark.form),
                    json(previous, &mark.form),
                    "{name}: form {}",
                    mark.form
                );
                assert!(*last_reported <= previous.cover.year, "{name}");
            }
        }
    }
}

#[test]
fn the_report_needs_a_regime_and_an_earlier_previous_year() {
    let ledger = ledger(&config(Dataset::UsLike, 0));
    let empty = ViewFold::new(ledger.origin(), &ledger.authority_keys);
    assert_eq!(
        article7_report(&empty, 2014, &report_config(), None),
        Err(Article7Error::NoRegime)
    );
    let fold = ledger.fold_all();
    let year = last_year(ledger);
    let report = article7_report(&fold, year, &report_config(), None).unwrap();
    assert!(matches!(
        article7_report(&fold, year, &report_config(), Some(&report)),
        Err(Article7Error::PreviousNotEarlier { .. })
    ));
    // The U.S.-like ledger: Korea-designated units are on Form B, one refusal and one
    // approved destruction abroad (Form D section 3, in 2023).
    assert!(
        report
            .form_b
            .rows
            .iter()
            .any(|row| row.korea_designated > 0)
    );
    assert_eq!(report.cover.article4_deadline, None);
}

#[test]
fn an_approved_destruction_abroad_is_on_form_d_section_3() {
    let ledger = ledger(&config(Dataset::UsLike, 0));
    let end = year_end(2023).unwrap();
    let mut fold = ledger.empty_fold();
    for entry in &ledger.entries {
        if fold.apply_through(entry, end).unwrap().is_none() {
            break;
        }
    }
    let report = article7_report(&fold, 2023, &report_config(), None).unwrap();
    let section3 = &report.form_d.transferred_for_destruction;
    assert!(!section3.is_empty(), "{:#?}", report.form_d);
    let moved: u64 = section3.iter().map(|row| row.quantity).sum();
    assert_eq!(moved, ledger.outcome.expected.totals.transferred_out);
    assert!(
        section3
            .iter()
            .all(|row| row.legal_basis == "US-2022-DESTRUCTION")
    );
    assert!(report.form_d.transferred_for_training.is_empty());
    check_csv(&report);
}

// ---------------------------------------------------------------------------------------
// Renderings

#[test]
fn data_with_markup_is_escaped_in_html_and_csv() {
    let (ledger, lot_id) = markup_ledger();
    let fold = ledger.fold();
    let report = article7_report(&fold, 2011, &report_config(), None).unwrap();
    assert_eq!(report.form_b.rows.len(), 1);
    assert_eq!(report.form_b.rows[0].lot_id, lot_id);
    assert_eq!(report.form_b.total, 600);
    assert_eq!(report.form_g.total, 400);

    let html = report.to_html();
    check_html(&html);
    assert!(!html.to_ascii_lowercase().contains("<script"), "{html}");
    assert!(!html.contains("<img"));
    assert!(!html.contains("<b>"));
    assert!(html.contains("L-&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(html.contains("IMAS 11.20 &lt;safety&gt;"));

    // The JSON carries the id as data and reads back.
    let back: Article7Report = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(back.form_b.rows[0].lot_id, lot_id);

    // The CSV carries every awkward field back intact.
    let sections = check_csv(&report);
    let form_b = &sections["form_b"];
    let column = |name: &str| form_b.header.iter().position(|h| h == name).unwrap();
    assert_eq!(form_b.rows[0][column("lot_id")], lot_id);
    assert_eq!(
        form_b.rows[0][column("manufacturer_lot_number")],
        "MFR \"7\", batch <2>"
    );
    let form_h = &sections["form_h"];
    let fusing = form_h.header.iter().position(|h| h == "fusing").unwrap();
    assert_eq!(form_h.rows[0][fusing], "line one\nline two");
    let grams = form_h
        .header
        .iter()
        .position(|h| h == "explosive_g")
        .unwrap();
    assert_eq!(form_h.rows[0][grams], "37.5");
    let cover = &sections["cover"];
    assert!(cover.rows.contains(&vec![
        "state_name".to_string(),
        "Synthetic State, \"test\"".to_string()
    ]));
}

/// A CSV section as parsed back.
#[derive(Debug)]
struct CsvSection {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks;
/// records end at CRLF (or LF) outside quotes.
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
            '\r' | '\n' => {
                if c == '\r' {
                    assert_eq!(chars.next(), Some('\n'), "CR only before LF");
                }
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
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

/// Parses the report's CSV back into sections and checks each against the JSON: the
/// same number of rows, every row as wide as its header.
fn check_csv(report: &Article7Report) -> BTreeMap<String, CsvSection> {
    let csv = report.to_csv();
    assert!(!csv.contains('\n') || csv.contains("\r\n"));
    let mut sections: BTreeMap<String, CsvSection> = BTreeMap::new();
    let mut records = parse_csv(&csv).into_iter();
    while let Some(title) = records.next() {
        assert_eq!(title.len(), 1, "a section starts with its title: {title:?}");
        let id = title[0]
            .strip_prefix('#')
            .expect("titles start with #")
            .to_string();
        let header = records.next().expect("a header follows the title");
        let mut rows = Vec::new();
        for record in records.by_ref() {
            if record == [""] {
                break;
            }
            assert_eq!(record.len(), header.len(), "section {id}: {record:?}");
            rows.push(record);
        }
        let previous = sections.insert(id.clone(), CsvSection { header, rows });
        assert!(previous.is_none(), "section {id} appears once");
    }
    let json = serde_json::to_value(report).unwrap();
    let arrays = [
        ("cover_contacts", "/cover/contacts"),
        ("cover_forms", "/cover/forms"),
        ("form_b", "/form_b/rows"),
        ("form_b_totals", "/form_b/totals_by_type"),
        ("form_b_discovered", "/form_b/discovered"),
        ("form_d_retained", "/form_d/retained"),
        (
            "form_d_transferred_training",
            "/form_d/transferred_for_training",
        ),
        (
            "form_d_transferred_destruction",
            "/form_d/transferred_for_destruction",
        ),
        ("form_d_purposes", "/form_d/purposes"),
        ("form_d_actual_use", "/form_d/actual_use"),
        ("form_f_facilities", "/form_f/facilities"),
        ("form_g", "/form_g/rows"),
        ("form_g_totals", "/form_g/totals_by_type"),
        ("form_g_discovered", "/form_g/discovered"),
        ("form_h", "/form_h/rows"),
    ];
    for (id, pointer) in arrays {
        let expected = json.pointer(pointer).unwrap().as_array().unwrap().len();
        assert_eq!(
            sections[id].rows.len(),
            expected,
            "section {id} vs {pointer}"
        );
    }
    // The field/value sections carry the JSON's values.
    let cover = &sections["cover"];
    let field = |name: &str| {
        cover
            .rows
            .iter()
            .find(|row| row[0] == name)
            .map(|row| row[1].clone())
            .unwrap()
    };
    assert_eq!(
        field("state_id"),
        json["cover"]["state_id"].as_str().unwrap()
    );
    assert_eq!(field("year"), json["cover"]["year"].to_string());
    assert_eq!(
        field("entries"),
        json["cover"]["as_of"]["entries"].to_string()
    );
    assert_eq!(sections["form_f"].rows.len(), 2);
    assert_eq!(sections.len(), arrays.len() + 2, "{:?}", sections.keys());
    // Quantities survive the trip.
    let quantity = sections["form_b"]
        .header
        .iter()
        .position(|h| h == "quantity")
        .unwrap();
    let total: u64 = sections["form_b"]
        .rows
        .iter()
        .map(|row| row[quantity].parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, report.form_b.total);
    sections
}

/// The tags the HTML rendering emits; any other `<` would be data turned into markup.
const HTML_TAGS: [&str; 17] = [
    "html", "head", "meta", "title", "style", "body", "main", "section", "h1", "h2", "p", "table",
    "thead", "tbody", "tr", "th", "td",
];

/// Tags without an end tag.
const HTML_VOID: [&str; 1] = ["meta"];

/// Every `<` opens or closes one of our tags, every opened tag is closed in order, and
/// nothing is fetched from elsewhere.
fn check_html(html: &str) {
    let rest = html
        .strip_prefix("<!DOCTYPE html>\n")
        .expect("a doctype first");
    assert!(!html.contains(" src=") && !html.contains(" href=") && !html.contains("url("));
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = rest;
    while let Some(at) = rest.find('<') {
        assert!(
            !rest[..at].contains('>'),
            "a stray > in text: {}",
            &rest[..at]
        );
        let after = &rest[at + 1..];
        let end = after.find('>').expect("every tag ends");
        let tag = &after[..end];
        let (closing, body) = match tag.strip_prefix('/') {
            Some(body) => (true, body),
            None => (false, tag),
        };
        let name = body.split_whitespace().next().unwrap_or("");
        assert!(HTML_TAGS.contains(&name), "unexpected markup <{tag}>");
        if closing {
            assert_eq!(stack.pop(), Some(name), "</{name}> closes what was opened");
        } else if !HTML_VOID.contains(&name) {
            stack.push(name);
        }
        rest = &after[end + 1..];
    }
    assert!(stack.is_empty(), "tags left open: {stack:?}");
    assert!(!rest.contains('>'), "a stray > after the last tag");
}
