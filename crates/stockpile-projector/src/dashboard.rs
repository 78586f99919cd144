//! The dashboard: server-rendered HTML pages over the views, for an operator who wants
//! to look rather than read JSON.
//!
//! - `GET /`: stockpile over time, destruction progress against the Article 4 deadline,
//!   stock by site, retained mines by institution, refused transfers, flags, the ledger's
//!   status and the last verification, a searchable list of lots and the Article 7
//!   reports by year.
//! - `GET /lots/{lot_id}`: one lot's facts and history, each event with links to its
//!   entry bytes and its inclusion proof.
//!
//! Pages are whole documents with their style, their one small script and their SVG
//! charts inline: nothing is fetched from elsewhere, so they work offline, and the
//! Content-Security-Policy sent with them ([`content_security_policy`]) forbids loading
//! anything and runs only that script (by its hash). Every string that comes from the
//! ledger (ids, names, messages) is HTML-escaped, and ids in links are percent-encoded:
//! a lot id with markup in it shows as text. Scripts carry no data.
//!
//! Rendering is pure: the functions here take the fold, the status and the verification
//! summary and return the page. Figures that count days use the ledger's "today"
//! ([`views_today`]), never the clock; only the status section (last contact) and the
//! verification report's file time come from the machine.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;
use stockpile_core::hash::Hash32;
use stockpile_core::time::{Date, TimestampMs};
use stockpile_views::digest::views_today;
use stockpile_views::fold::{Pool, Verdict, ViewFold};
use stockpile_views::series::{UnitsPoint, deadline_line, destroyed_over_time, stock_over_time};
use stockpile_views::views::{self, AsOf, HistoryPage, Pools};

/// Lots listed on the overview (the filter searches these); every lot id is in
/// `/v1/lots`. A few thousand rows keep the page under a couple of megabytes.
pub const LOTS_LISTED_MAX: usize = 5_000;
/// Flags listed on the overview, the most recent ones; all are in `/v1/flags`.
pub const FLAGS_LISTED_MAX: usize = 200;
/// Refused transfers listed on the overview, the most recent ones; all are in
/// `/v1/transfers`.
pub const REFUSED_LISTED_MAX: usize = 200;
/// Sites drawn in the stock-by-site chart, the largest first.
pub const SITES_CHARTED_MAX: usize = 40;
/// Years of Article 7 reports linked, the most recent ones.
pub const ARTICLE7_YEARS_LISTED_MAX: i32 = 60;
/// Largest verification report read: `stockpile verify --json` keeps at most a bounded
/// number of findings and flags, far below this; a larger file is not a report.
pub const VERIFICATION_REPORT_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Most year ticks on a chart's time axis (more years: a tick every few years).
const TIME_TICKS_MAX: i32 = 12;

// ---------------------------------------------------------------------------------------
// What the pages show besides the fold

/// Where the projector stands against the ledger, as the status section shows it.
#[derive(Debug, Clone)]
pub struct LedgerStatus {
    pub replica: String,
    pub origin: String,
    pub applied_entries: u64,
    /// Entries in LEDGER when last looked at.
    pub ledger_entries: Option<u64>,
    pub last_contact_ms_ago: Option<u64>,
    /// `Err` says why not ready.
    pub ready: Result<(), String>,
    pub last_error: Option<String>,
    pub rebuilding: bool,
    /// Size and root hash (base64) of the latest verified checkpoint.
    pub latest_checkpoint: Option<(u64, String)>,
    pub checkpoints_verified: usize,
    pub checkpoints_refused: usize,
    /// The year of the ledger's first entry: Article 7 reports are linked from there on.
    pub first_year: Option<i32>,
}

/// The last verification, from the `stockpile verify --json` report a verifier wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The projector was given no `--verification-report`.
    NotConfigured,
    /// Configured, but no report there yet.
    Missing {
        path: PathBuf,
    },
    /// A file that is not a readable report.
    Unreadable {
        path: PathBuf,
        reason: String,
    },
    Read(VerificationSummary),
}

/// The figures of a verification report the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationSummary {
    pub path: PathBuf,
    pub origin: String,
    pub entries: u64,
    pub findings_total: u64,
    /// The size of the latest checkpoint the verifier checked, if any.
    pub checkpoint_size: Option<u64>,
    /// When the report file was last written.
    pub modified: Option<TimestampMs>,
}

/// Reads the verification report at `path` (blocking file I/O: call it off the async
/// threads).
pub fn read_verification(path: Option<&Path>) -> Verification {
    let Some(path) = path else {
        return Verification::NotConfigured;
    };
    let unreadable = |reason: String| Verification::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Verification::Missing {
                path: path.to_path_buf(),
            };
        }
        Err(error) => return unreadable(error.to_string()),
    };
    let modified = file
        .metadata()
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|since| i64::try_from(since.as_millis()).ok())
        .map(TimestampMs);
    let mut bytes = Vec::new();
    if let Err(error) = file
        .take(VERIFICATION_REPORT_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
    {
        return unreadable(error.to_string());
    }
    if bytes.len() as u64 > VERIFICATION_REPORT_BYTES_MAX {
        return unreadable(format!(
            "larger than {VERIFICATION_REPORT_BYTES_MAX} bytes: not a verification report"
        ));
    }
    let report: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(report) => report,
        Err(error) => return unreadable(format!("not JSON: {error}")),
    };
    let (Some(entries), Some(findings_total)) = (
        report["entries"].as_u64(),
        report["findings_total"].as_u64(),
    ) else {
        return unreadable(
            "not a `stockpile verify --json` report (no entries or findings_total)".into(),
        );
    };
    Verification::Read(VerificationSummary {
        path: path.to_path_buf(),
        origin: report["origin"].as_str().unwrap_or_default().to_string(),
        entries,
        findings_total,
        checkpoint_size: report["latest_checkpoint"]["size"].as_u64(),
        modified,
    })
}

// ---------------------------------------------------------------------------------------
// Escaping, numbers, names

/// `text` with the characters that matter in HTML text and quoted attribute values
/// replaced by character references, so ledger data can never open or close markup.
pub fn escape(text: &str) -> String {
    stockpile_views::render::html_escape(text)
}

/// `text` as one URL path segment: everything but the unreserved characters of
/// RFC 3986 percent-encoded (a lot id may hold `/`, `?`, `#` or markup).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The dashboard's link to a lot's page.
pub fn lot_href(lot_id: &str) -> String {
    format!("/lots/{}", path_segment(lot_id))
}

/// `1234567` as `1,234,567`: how the pages write every count of units.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn signed_thousands(value: i64) -> String {
    match value < 0 {
        true => format!("−{}", thousands(value.unsigned_abs())),
        false => thousands(value.unsigned_abs()),
    }
}

/// The name serde gives a value (`snake_case` enum names), for display.
fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name.replace('_', " "),
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn opt_date(date: Option<Date>) -> String {
    date.map_or_else(|| "—".to_string(), |date| date.to_string())
}

/// Basis points as a percentage with two decimals.
fn percent(basis_points: u64) -> String {
    format!("{}.{:02} %", basis_points / 100, basis_points % 100)
}

// ---------------------------------------------------------------------------------------
// The page frame

/// The pages' only script: filters the lot table as one types, says how many lots show,
/// and marks the body as rendered (what the browser test looks for). It carries no data.
const SCRIPT: &str = r#"
(function () {
  var table = document.getElementById("lot-table");
  var input = document.getElementById("lot-filter");
  var count = document.getElementById("lot-count");
  function filter() {
    if (!table || !table.tBodies.length) return;
    var needle = input ? input.value.trim().toLowerCase() : "";
    var rows = table.tBodies[0].rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var match = rows[i].textContent.toLowerCase().indexOf(needle) >= 0;
      rows[i].hidden = !match;
      if (match) shown++;
    }
    if (count) count.textContent = shown + " of " + rows.length + " lots shown";
  }
  if (input) input.addEventListener("input", filter);
  filter();
  document.body.setAttribute("data-rendered", "yes");
})();
"#;

/// The pages' only styling.
const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9;}
header{background:#1d2433;color:#fff;padding:0.8em 2em;}
header h1{margin:0;font-size:1.4em;} header p{margin:0.3em 0 0;color:#c9d1e0;font-size:0.9em;}
header a{color:#fff;}
main{padding:1em 2em;max-width:1200px;}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:0.8em 1.2em;margin:1em 0;}
h2{font-size:1.15em;margin:0.2em 0 0.6em;}
table{border-collapse:collapse;font-size:0.9em;margin:0.4em 0;}
th,td{border-bottom:1px solid #e3e6ec;padding:0.25em 0.6em;text-align:left;vertical-align:top;}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;}
td.d{white-space:nowrap;} a.proof,a.entry{white-space:nowrap;}
.cards{display:flex;flex-wrap:wrap;gap:0.8em;}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:0.6em 1em;min-width:10em;}
.card .v{font-size:1.5em;font-weight:600;font-variant-numeric:tabular-nums;}
.card .k{font-size:0.85em;color:#5a6478;}
.ok{color:#1a7f37;font-weight:600;} .bad{color:#b42318;font-weight:600;} .muted{color:#5a6478;}
svg.chart{width:100%;height:auto;max-width:900px;display:block;}
svg .axis{stroke:#8a93a6;stroke-width:1;} svg .grid{stroke:#e3e6ec;stroke-width:1;}
svg text{font-size:11px;fill:#5a6478;}
svg .s0{stroke:#2456c8;fill:#2456c8;} svg .s1{stroke:#d9822b;fill:#d9822b;} svg .s2{stroke:#1a7f37;fill:#1a7f37;}
svg polyline{fill:none!important;stroke-width:2;} svg .dash{stroke-dasharray:6 4;}
svg .today{stroke:#b42318;stroke-width:1;stroke-dasharray:2 3;}
.legend span{display:inline-block;margin-right:1.2em;font-size:0.85em;}
.legend i{display:inline-block;width:1em;height:0.6em;margin-right:0.3em;}
.l0{background:#2456c8;} .l1{background:#d9822b;} .l2{background:#1a7f37;}
input#lot-filter{font-size:1em;padding:0.3em;width:20em;}
.scroll{max-height:28em;overflow:auto;}
code{font-size:0.85em;word-break:break-all;}
";

/// The SHA-256 of [`SCRIPT`], as a CSP source.
fn script_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| format!("'sha256-{}'", Hash32::digest(SCRIPT.as_bytes()).to_base64()))
}

/// The Content-Security-Policy the pages are served with: nothing loads from anywhere,
/// inline style is allowed, and the one script runs by its hash (so markup that slipped
/// past escaping could still not run a script).
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        script_hash()
    )
}

/// A whole page: head with the style, a header, the body, the script. `title` is
/// escaped here; `subtitle` and `body` are markup whose data the caller escaped.
fn page(title: &str, subtitle: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>{title}</h1><p>{subtitle}</p></header>\n<main>\n{body}</main>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        title = escape(title),
        subtitle = subtitle,
    )
}

/// The ledger position a page reflects (escaped).
fn position_line(as_of: &AsOf) -> String {
    match as_of.as_of_index {
        Some(index) => format!(
            "As of ledger index {index} ({} entries, last recorded {}); head link <code>{}</code>. \
             Days are counted to the ledger's today, {}.",
            thousands(as_of.entries),
            as_of
                .recorded_at
                .map_or_else(|| "—".to_string(), |at| at.to_string()),
            as_of.head_link.to_hex(),
            as_of
                .recorded_at
                .map_or_else(|| "—".to_string(), |at| at.date().to_string()),
        ),
        None => "The views hold no entry yet.".to_string(),
    }
}

fn section(id: &str, title: &str, body: &str) -> String {
    format!(
        "<section id=\"{id}\">\n<h2>{}</h2>\n{body}</section>\n",
        escape(title)
    )
}

/// A table: header cells (prefix `n:` for a number column, `d:` for a date column that
/// does not wrap), rows of already escaped cells.
fn table(id: Option<&str>, header: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    let mut out = match id {
        Some(id) => format!("<table id=\"{id}\">\n<thead><tr>"),
        None => "<table>\n<thead><tr>".to_string(),
    };
    for column in header {
        match column.split_once(':') {
            Some(("n", name)) => out.push_str(&format!("<th class=\"n\">{}</th>", escape(name))),
            Some((_, name)) => out.push_str(&format!("<th>{}</th>", escape(name))),
            None => out.push_str(&format!("<th>{}</th>", escape(column))),
        }
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    if rows.is_empty() {
        out.push_str(&format!(
            "<tr><td colspan=\"{}\" class=\"muted\">{}</td></tr>\n",
            header.len(),
            escape(empty)
        ));
    }
    for row in rows {
        out.push_str("<tr>");
        for (cell, column) in row.iter().zip(header) {
            match column.split_once(':') {
                Some(("n", _)) => out.push_str(&format!("<td class=\"n\">{cell}</td>")),
                Some(("d", _)) => out.push_str(&format!("<td class=\"d\">{cell}</td>")),
                _ => out.push_str(&format!("<td>{cell}</td>")),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn card(id: &str, label: &str, value: u64) -> String {
    format!(
        "<div class=\"card\"><div class=\"v\" id=\"{id}\" data-units=\"{value}\">{}</div>\
         <div class=\"k\">{}</div></div>",
        thousands(value),
        escape(label)
    )
}

// ---------------------------------------------------------------------------------------
// Charts

const CHART_WIDTH: f64 = 860.0;
/// Characters of a site's label beside its bar (id and name); longer ones are cut.
const SITE_LABEL_CHARS_MAX: usize = 44;
const CHART_HEIGHT: f64 = 280.0;
/// Room for the value labels on the left and the years below.
const CHART_LEFT: f64 = 90.0;
const CHART_RIGHT: f64 = 20.0;
const CHART_TOP: f64 = 12.0;
const CHART_BOTTOM: f64 = 28.0;

/// One line of a chart.
struct Line {
    label: &'static str,
    points: Vec<(Date, u64)>,
    /// Drawn as steps (a count that changes on days) rather than straight segments.
    steps: bool,
    dashed: bool,
}

/// A round number at or above `value`, the top of a value axis: 1, 1.5, 2, 2.5, 3, 4,
/// 5, 6 or 8 × 10^k (for small values 1, 2 or 5 × 10^k), so the axis is at most a third
/// empty and its quarters are round too.
fn nice_ceiling(value: u64) -> u64 {
    if value <= 1 {
        return 1;
    }
    let mut power = 1u64;
    while power.saturating_mul(10) < value {
        power = power.saturating_mul(10);
    }
    // Tenths of `power`; the fine steps only where a quarter of each is still whole.
    let steps: &[u64] = match power >= 1_000 {
        true => &[10, 15, 20, 25, 30, 40, 50, 60, 80, 100],
        false => &[10, 20, 50, 100],
    };
    let of_power = |tenths: u64| match power >= 10 {
        true => (power / 10).saturating_mul(tenths),
        false => power * tenths / 10,
    };
    steps
        .iter()
        .map(|tenths| of_power(*tenths))
        .find(|ceiling| *ceiling >= value)
        .unwrap_or(value)
}

/// A time chart: the lines over their common date range, a value axis from zero, a
/// tick per year (or every few years), and a marker at the ledger's today.
fn line_chart(id: &str, title: &str, lines: &[Line], today: Option<Date>) -> String {
    let dates = lines
        .iter()
        .flat_map(|line| line.points.iter().map(|p| p.0));
    let (Some(first), Some(last)) = (dates.clone().min(), dates.max()) else {
        return format!("<p class=\"muted\" id=\"{id}\">No data yet.</p>\n");
    };
    let top = nice_ceiling(
        lines
            .iter()
            .flat_map(|line| line.points.iter().map(|p| p.1))
            .max()
            .unwrap_or(0),
    );
    // Everything on one day (a ledger recorded in one go): a day either side, so the
    // points stand in the middle rather than on an axis.
    let (first, last) = match first == last {
        true => (first.add_days(-1), last.add_days(1)),
        false => (first, last),
    };
    let (day0, span) = (
        first.days_since_epoch() as f64,
        (last.days_since_epoch() - first.days_since_epoch()).max(1) as f64,
    );
    let plot_w = CHART_WIDTH - CHART_LEFT - CHART_RIGHT;
    let plot_h = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    let x = |date: Date| CHART_LEFT + (date.days_since_epoch() as f64 - day0) / span * plot_w;
    let y = |units: u64| CHART_TOP + plot_h - units as f64 / top as f64 * plot_h;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" \
         role=\"img\" aria-label=\"{title}\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>{title}</title>\n",
        title = escape(title)
    );
    let mut labelled = None;
    for step in 0..=4u64 {
        // Quarters of the top; small tops repeat a value, labelled once.
        let value = top * step / 4;
        if labelled == Some(value) {
            continue;
        }
        labelled = Some(value);
        let at = y(value);
        svg.push_str(&format!(
            "<line class=\"grid\" x1=\"{CHART_LEFT}\" x2=\"{:.1}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            CHART_WIDTH - CHART_RIGHT,
            CHART_LEFT - 6.0,
            at + 4.0,
            thousands(value)
        ));
    }
    let (first_year, last_year) = (first.year(), last.year());
    let every = ((last_year - first_year) / TIME_TICKS_MAX + 1).max(1);
    let mut year = first_year + 1;
    while year <= last_year {
        if let Some(january) = Date::from_ymd(year, 1, 1)
            && (year - first_year) % every == 0
        {
            let at = x(january);
            svg.push_str(&format!(
                "<line class=\"grid\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{CHART_TOP}\" y2=\"{:.1}\"/>\
                 <text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{year}</text>\n",
                CHART_TOP + plot_h,
                CHART_HEIGHT - 8.0
            ));
        }
        year += 1;
    }
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{CHART_LEFT}\" x2=\"{CHART_LEFT}\" y1=\"{CHART_TOP}\" y2=\"{bottom:.1}\"/>\
         <line class=\"axis\" x1=\"{CHART_LEFT}\" x2=\"{:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\"/>\n",
        CHART_WIDTH - CHART_RIGHT,
        bottom = CHART_TOP + plot_h
    ));
    if let Some(today) = today.filter(|today| first <= *today && *today <= last) {
        let at = x(today);
        svg.push_str(&format!(
            "<line class=\"today\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{CHART_TOP}\" y2=\"{:.1}\"/>\n",
            CHART_TOP + plot_h
        ));
    }
    let mut legend = String::from("<p class=\"legend\">");
    for (number, line) in lines.iter().enumerate() {
        let mut coordinates = Vec::with_capacity(line.points.len() * 2);
        let mut previous: Option<u64> = None;
        for (date, units) in &line.points {
            if let (true, Some(before)) = (line.steps, previous) {
                coordinates.push(format!("{:.1},{:.1}", x(*date), y(before)));
            }
            coordinates.push(format!("{:.1},{:.1}", x(*date), y(*units)));
            previous = Some(*units);
        }
        let class = format!("s{}{}", number % 3, if line.dashed { " dash" } else { "" });
        svg.push_str(&format!(
            "<polyline class=\"{class}\" points=\"{}\"><title>{}</title></polyline>\n",
            coordinates.join(" "),
            escape(line.label),
        ));
        // The current figure, marked (and visible even when the line is one point).
        if let Some((date, units)) = line.points.last() {
            svg.push_str(&format!(
                "<circle class=\"s{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\">\
                 <title>{}: {} on {date}</title></circle>\n",
                number % 3,
                x(*date),
                y(*units),
                escape(line.label),
                thousands(*units)
            ));
        }
        legend.push_str(&format!(
            "<span><i class=\"l{}\"></i>{}</span>",
            number % 3,
            escape(line.label)
        ));
    }
    if today.is_some() {
        legend.push_str("<span class=\"muted\">dotted red: the ledger's today</span>");
    }
    legend.push_str("</p>\n");
    svg.push_str("</svg>\n");
    svg + &legend
}

/// Held units per site as stacked horizontal bars (stockpiled, retained, the rest).
fn site_chart(fold: &ViewFold, stockpile: &views::StockpileView) -> String {
    let mut sites: Vec<(&str, Pools)> = stockpile
        .by_site
        .iter()
        .filter(|site| site.pools.held() > 0)
        .map(|site| (site.site_id.as_str(), site.pools))
        .collect();
    if sites.is_empty() {
        return "<p class=\"muted\" id=\"site-chart\">No site holds any units.</p>\n".into();
    }
    sites.sort_by(|a, b| b.1.held().cmp(&a.1.held()).then(a.0.cmp(b.0)));
    let omitted = sites.len().saturating_sub(SITES_CHARTED_MAX);
    sites.truncate(SITES_CHARTED_MAX);
    let top = nice_ceiling(sites[0].1.held());
    const ROW: f64 = 24.0;
    const LABEL: f64 = 340.0;
    const VALUE: f64 = 110.0;
    let height = CHART_TOP + ROW * sites.len() as f64 + 8.0;
    let plot_w = CHART_WIDTH - LABEL - VALUE;
    let mut svg = format!(
        "<svg class=\"chart\" id=\"site-chart\" viewBox=\"0 0 {CHART_WIDTH} {height:.0}\" \
         role=\"img\" aria-label=\"Held units by site\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <title>Held units by site</title>\n"
    );
    for (row, (site_id, pools)) in sites.iter().enumerate() {
        let y = CHART_TOP + ROW * row as f64;
        let name = fold
            .compliance()
            .sites()
            .get(site_id)
            .map(|site| site.info.name.clone())
            .unwrap_or_default();
        let label = match name.is_empty() {
            true => site_id.to_string(),
            false => format!("{site_id} — {name}"),
        };
        // The label column holds about this many characters; the full name is in the
        // tooltip.
        let full = label.clone();
        let label = if label.chars().count() > SITE_LABEL_CHARS_MAX {
            let cut: String = label.chars().take(SITE_LABEL_CHARS_MAX - 1).collect();
            format!("{cut}…")
        } else {
            label
        };
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{}</text>\n",
            LABEL - 8.0,
            y + 15.0,
            escape(&full),
            escape(&label)
        ));
        let parts = [
            pools.stockpiled,
            pools.retained,
            pools.held() - pools.stockpiled - pools.retained,
        ];
        let mut at = LABEL;
        for (number, units) in parts.into_iter().enumerate() {
            let width = units as f64 / top as f64 * plot_w;
            if units > 0 {
                svg.push_str(&format!(
                    "<rect class=\"s{number}\" x=\"{at:.1}\" y=\"{:.1}\" width=\"{width:.1}\" \
                     height=\"{:.1}\"><title>{}: {}</title></rect>\n",
                    y + 3.0,
                    ROW - 8.0,
                    escape(&label),
                    thousands(units)
                ));
            }
            at += width;
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            at + 6.0,
            y + 15.0,
            thousands(pools.held())
        ));
    }
    svg.push_str(
        "</svg>\n<p class=\"legend\"><span><i class=\"l0\"></i>stockpiled</span>\
                  <span><i class=\"l1\"></i>retained (Article 3)</span>\
                  <span><i class=\"l2\"></i>designated, in transit, unreceived</span></p>\n",
    );
    if omitted > 0 {
        svg.push_str(&format!(
            "<p class=\"muted\">{omitted} smaller sites not drawn; every site is in \
             <a href=\"/v1/stockpile\">/v1/stockpile</a>.</p>\n"
        ));
    }
    svg
}

// ---------------------------------------------------------------------------------------
// The overview

/// The overview page (`GET /`).
pub fn overview_page(
    fold: &ViewFold,
    status: &LedgerStatus,
    verification: &Verification,
) -> String {
    let today = views_today(fold);
    let stockpile = views::stockpile(fold);
    let progress = views::destruction_progress(fold, today);
    let as_of = AsOf::of(fold);
    let mut body = String::new();

    body.push_str(&format!(
        "<div class=\"cards\">{}{}{}{}{}{}</div>\n",
        card("held-units", "units held", stockpile.totals.held()),
        card(
            "stockpiled-units",
            "stockpiled",
            stockpile.totals.stockpiled
        ),
        card(
            "retained-units",
            "retained (Article 3)",
            stockpile.totals.retained
        ),
        card(
            "destroyed-units",
            "destroyed since EIF",
            progress.destroyed_since_eif
        ),
        card("lot-total", "lots", stockpile.lots),
        card("flag-total", "flags", fold.flags().len() as u64),
    ));

    // Stockpile over time.
    let stock = stock_over_time(fold);
    let lines = [
        Line {
            label: "held (every pool still held)",
            points: stock.iter().map(|p| (p.date, p.held)).collect(),
            steps: true,
            dashed: false,
        },
        Line {
            label: "stockpiled",
            points: stock.iter().map(|p| (p.date, p.stockpiled)).collect(),
            steps: true,
            dashed: false,
        },
    ];
    body.push_str(&section(
        "stock",
        "Stockpile over time",
        &line_chart("stock-chart", "Units held over time", &lines, Some(today)),
    ));

    body.push_str(&section(
        "destruction",
        "Destruction against the Article 4 deadline",
        &destruction_section(fold, &progress),
    ));

    body.push_str(&section(
        "sites",
        "Stock by site",
        &site_chart(fold, &stockpile),
    ));
    body.push_str(&section(
        "retained",
        "Retained mines by institution",
        &retained_section(fold),
    ));
    body.push_str(&section(
        "refused",
        "Refused transfers",
        &refused_section(fold),
    ));
    body.push_str(&section("flags", "Flags", &flags_section(fold)));
    body.push_str(&section(
        "status",
        "Ledger status",
        &status_section(fold, status, verification),
    ));
    body.push_str(&section("lots", "Lots", &lots_section(fold)));
    body.push_str(&section(
        "reports",
        "Article 7 reports",
        &reports_section(status.first_year, today),
    ));
    body.push_str(
        "<p class=\"muted\">The same data as JSON: <a href=\"/v1/summary\">summary</a>, \
         <a href=\"/v1/stockpile\">stockpile</a>, <a href=\"/v1/destruction-progress\">destruction \
         progress</a>, <a href=\"/v1/retained\">retained</a>, <a href=\"/v1/transfers\">transfers</a>, \
         <a href=\"/v1/flags\">flags</a>, <a href=\"/v1/status\">status</a>; every route in \
         <a href=\"/openapi.json\">/openapi.json</a>.</p>\n",
    );
    let origin = match status.origin.is_empty() {
        true => String::new(),
        false => format!("{} — ", escape(&status.origin)),
    };
    page(
        "Stockpile ledger dashboard",
        &format!("{origin}{}", position_line(&as_of)),
        &body,
    )
}

fn destruction_section(fold: &ViewFold, progress: &views::DestructionProgress) -> String {
    let mut lines = vec![Line {
        label: "destroyed since EIF (cumulative)",
        points: destroyed_over_time(fold)
            .iter()
            .map(|p| (p.date, p.units))
            .collect(),
        steps: true,
        dashed: false,
    }];
    if let Some([start, end]) = deadline_line(progress) {
        let UnitsPoint { date, units } = start;
        lines.push(Line {
            label: "on schedule: everything destroyed by the deadline",
            points: vec![(date, units), (end.date, end.units)],
            steps: false,
            dashed: true,
        });
    }
    let mut out = line_chart(
        "destruction-chart",
        "Units destroyed since EIF against the Article 4 deadline",
        &lines,
        Some(progress.today),
    );
    let days = match progress.days_to_deadline {
        Some(days) if days >= 0 => format!("{} days", thousands(days.unsigned_abs())),
        Some(days) => format!("passed {} days ago", thousands(days.unsigned_abs())),
        None => "no Article 4 deadline under this regime".into(),
    };
    let regime = progress
        .regime
        .map_or_else(|| "none configured".to_string(), |r| serde_name(&r));
    let rows = vec![
        vec!["Regime".into(), escape(&regime)],
        vec!["Entry into force".into(), opt_date(progress.eif_date)],
        vec![
            "Article 4 deadline".into(),
            opt_date(progress.article4_deadline),
        ],
        vec![
            "Days to the deadline".into(),
            format!("<span id=\"days-to-deadline\">{}</span>", escape(&days)),
        ],
        vec![
            "Destroyed since EIF".into(),
            thousands(progress.destroyed_since_eif),
        ],
        vec![
            "Remaining to destroy".into(),
            format!(
                "<span id=\"remaining-units\" data-units=\"{}\">{}</span>",
                progress.remaining,
                thousands(progress.remaining)
            ),
        ],
        vec![
            "Required rate".into(),
            progress.required_units_per_year.map_or_else(
                || "—".to_string(),
                |rate| format!("{} units a year", thousands(rate)),
            ),
        ],
        vec![
            "Achieved rate".into(),
            format!(
                "{} units in the {} days to {}",
                thousands(progress.achieved_units_last_year),
                views::ACHIEVED_RATE_WINDOW_DAYS,
                progress.today
            ),
        ],
        vec![
            "Certified".into(),
            progress
                .certified_share_basis_points
                .map_or_else(|| "—".to_string(), percent),
        ],
    ];
    out.push_str(&table(None, &["Figure", "Value"], &rows, ""));
    out
}

fn retained_section(fold: &ViewFold) -> String {
    let retained = views::retained(fold);
    let rows: Vec<Vec<String>> = retained
        .institutions
        .iter()
        .map(|institution| {
            let by_year: Vec<String> = institution
                .consumption_by_year
                .iter()
                .map(|year| format!("{}: {}", year.year, thousands(year.units)))
                .collect();
            vec![
                format!(
                    "{}<br><span class=\"muted\">{}</span>",
                    escape(&institution.name),
                    escape(&institution.institution_id)
                ),
                escape(&institution.site_id),
                thousands(institution.retained),
                thousands(institution.ceiling),
                thousands(institution.headroom),
                thousands(institution.consumed),
                escape(&by_year.join(" · ")),
                match institution.above_benchmark {
                    true => "<span class=\"bad\">above the benchmark</span>".into(),
                    false => String::new(),
                },
            ]
        })
        .collect();
    table(
        Some("retained-table"),
        &[
            "Institution",
            "Site",
            "n:Held",
            "n:Ceiling",
            "n:Headroom",
            "n:Consumed",
            "Consumption by year",
            "",
        ],
        &rows,
        "No institution is authorised to retain mines.",
    )
}

fn refused_section(fold: &ViewFold) -> String {
    let register = views::transfers(fold);
    let refused = &register.refused;
    let skipped = refused.len().saturating_sub(REFUSED_LISTED_MAX);
    let rows: Vec<Vec<String>> = refused[skipped..]
        .iter()
        .map(|row| {
            let items: Vec<String> = row
                .items
                .iter()
                .map(|item| format!("{} × {}", item.type_id, thousands(item.quantity)))
                .collect();
            vec![
                row.date.to_string(),
                escape(&row.request_id),
                escape(&row.requester),
                escape(&serde_name(&row.direction)),
                escape(&items.join(", ")),
                escape(&serde_name(&row.stated_purpose)),
                escape(&format!("{} ({})", row.counterparty, row.destination)),
                escape(&row.authority),
                escape(&row.basis_cited),
                format!(
                    "<a href=\"/v1/entries/{index}\">{index}</a> <code>{}</code>",
                    escape(&row.event_id),
                    index = row.index
                ),
            ]
        })
        .collect();
    let mut out = String::new();
    if skipped > 0 {
        out.push_str(&format!(
            "<p class=\"muted\">The latest {REFUSED_LISTED_MAX} of {} refusals; all are in \
             <a href=\"/v1/transfers\">/v1/transfers</a>.</p>\n",
            refused.len()
        ));
    }
    out.push_str(&table(
        Some("refused-table"),
        &[
            "d:Date",
            "Request",
            "Requester",
            "Direction",
            "Items",
            "Purpose",
            "Counterparty",
            "Authority",
            "Basis cited",
            "Entry, event",
        ],
        &rows,
        "No transfer was refused.",
    ));
    out
}

fn flags_section(fold: &ViewFold) -> String {
    let flags = views::flags(fold);
    let mut out = String::new();
    let by_rule: Vec<String> = flags
        .by_rule
        .iter()
        .map(|rule| {
            format!(
                "rule {} {}: {}",
                rule.number,
                serde_name(&rule.rule),
                thousands(rule.count)
            )
        })
        .collect();
    out.push_str(&format!(
        "<p>{} flags raised{}{}.</p>\n",
        thousands(flags.total),
        if by_rule.is_empty() { "" } else { ": " },
        escape(&by_rule.join("; "))
    ));
    let skipped = flags.flags.len().saturating_sub(FLAGS_LISTED_MAX);
    if skipped > 0 {
        out.push_str(&format!(
            "<p class=\"muted\">The latest {FLAGS_LISTED_MAX}; all are in \
             <a href=\"/v1/flags\">/v1/flags</a>.</p>\n"
        ));
    }
    let rows: Vec<Vec<String>> = flags.flags[skipped..]
        .iter()
        .rev()
        .map(|flag| {
            let ids: Vec<String> = flag
                .event_ids
                .iter()
                .map(|id| format!("<code>{}</code>", escape(id)))
                .collect();
            vec![
                format!(
                    "<a href=\"/v1/entries/{index}\">{index}</a>",
                    index = flag.index
                ),
                (flag.rule as u8).to_string(),
                format!("<code>{}</code>", escape(&flag.code)),
                escape(&flag.message),
                ids.join("<br>"),
            ]
        })
        .collect();
    out.push_str("<div class=\"scroll\">\n");
    out.push_str(&table(
        Some("flag-table"),
        &["n:Entry", "n:Rule", "Code", "Finding", "Event ids"],
        &rows,
        "No flag raised.",
    ));
    out.push_str("</div>\n");
    out
}

fn status_section(fold: &ViewFold, status: &LedgerStatus, verification: &Verification) -> String {
    let mut rows = vec![
        vec!["Replica".into(), escape(&status.replica)],
        vec![
            "Entries applied".into(),
            format!(
                "<span id=\"entries-applied\" data-entries=\"{}\">{}</span>",
                status.applied_entries,
                thousands(status.applied_entries)
            ),
        ],
        vec![
            "Ledger size".into(),
            status
                .ledger_entries
                .map_or_else(|| "not reached yet".into(), thousands),
        ],
        vec![
            "Lag".into(),
            status.ledger_entries.map_or_else(
                || "—".into(),
                |size| {
                    format!(
                        "{} entries",
                        thousands(size.saturating_sub(status.applied_entries))
                    )
                },
            ),
        ],
        vec![
            "Last contact with the ledger".into(),
            status.last_contact_ms_ago.map_or_else(
                || "never".into(),
                |ms| format!("{:.1} s ago", ms as f64 / 1e3),
            ),
        ],
        vec![
            "Ready".into(),
            match &status.ready {
                Ok(()) => "<span class=\"ok\">ready</span>".into(),
                Err(reason) => format!("<span class=\"bad\">not ready</span>: {}", escape(reason)),
            },
        ],
        vec![
            "Latest verified checkpoint".into(),
            match &status.latest_checkpoint {
                Some((size, root)) => format!(
                    "size <span id=\"checkpoint-size\">{}</span>, root <code>{}</code> \
                     (<a href=\"/v1/checkpoint\">signed note</a>)",
                    thousands(*size),
                    escape(root)
                ),
                None => "none yet".into(),
            },
        ],
        vec![
            "Checkpoints verified".into(),
            thousands(status.checkpoints_verified as u64),
        ],
        vec![
            "Checkpoints refused".into(),
            match status.checkpoints_refused {
                0 => "0".into(),
                refused => format!(
                    "<span class=\"bad\">{}</span> (see <a href=\"/v1/status\">/v1/status</a>)",
                    thousands(refused as u64)
                ),
            },
        ],
        vec![
            "Last verification".into(),
            verification_cell(verification, &status.origin),
        ],
    ];
    if status.rebuilding {
        rows.push(vec!["Rebuild".into(), "in progress".into()]);
    }
    if let Some(error) = &status.last_error {
        rows.push(vec![
            "Last error".into(),
            format!("<span class=\"bad\">{}</span>", escape(error)),
        ]);
    }
    rows.push(vec![
        "Accepted, rejected entries".into(),
        format!(
            "{}, {}",
            thousands(fold.accepted_entries()),
            thousands(fold.rejected_entries().len() as u64)
        ),
    ]);
    table(Some("status-table"), &["", ""], &rows, "")
}

fn verification_cell(verification: &Verification, origin: &str) -> String {
    match verification {
        Verification::NotConfigured => {
            "<span id=\"verification\">not verified yet</span> <span class=\"muted\">(the \
             projector was given no --verification-report)</span>"
                .into()
        }
        Verification::Missing { path } => format!(
            "<span id=\"verification\">not verified yet</span> <span class=\"muted\">(no report \
             at {})</span>",
            escape(&path.display().to_string())
        ),
        Verification::Unreadable { path, reason } => format!(
            "<span id=\"verification\" class=\"bad\">unreadable report</span> {}: {}",
            escape(&path.display().to_string()),
            escape(reason)
        ),
        Verification::Read(report) => {
            let verdict = match report.findings_total {
                0 => "<span class=\"ok\">clean</span>".to_string(),
                1 => "<span class=\"bad\">1 finding</span>".to_string(),
                n => format!("<span class=\"bad\">{} findings</span>", thousands(n)),
            };
            let mut cell = format!(
                "<span id=\"verification\" data-findings=\"{}\">{verdict}</span>: \
                 <span id=\"verified-entries\" data-entries=\"{}\">{}</span> entries verified",
                report.findings_total,
                report.entries,
                thousands(report.entries)
            );
            if let Some(size) = report.checkpoint_size {
                cell.push_str(&format!(", latest checkpoint size {}", thousands(size)));
            }
            cell.push_str(&format!(
                "; report written {}",
                report
                    .modified
                    .map_or_else(|| "at an unknown time".to_string(), |at| at.to_string())
            ));
            if !origin.is_empty() && report.origin != origin {
                cell.push_str(&format!(
                    " <span class=\"bad\">(a report on another ledger: {})</span>",
                    escape(&report.origin)
                ));
            }
            cell
        }
    }
}

fn lots_section(fold: &ViewFold) -> String {
    let mut rows = Vec::new();
    let mut total = 0usize;
    for lot in fold.compliance().lots() {
        total += 1;
        if rows.len() == LOTS_LISTED_MAX {
            continue;
        }
        let mut pools = Pools::default();
        for ((_, bucket), units) in &lot.balances {
            pools.add(Pool::of(bucket).0, *units);
        }
        rows.push(vec![
            format!(
                "<a href=\"{}\">{}</a>",
                escape(&lot_href(lot.lot_id())),
                escape(lot.lot_id())
            ),
            escape(lot.type_id()),
            escape(&lot.info.site_id),
            thousands(lot.declared_units),
            thousands(pools.held()),
            thousands(pools.destroyed),
            match lot.is_terminal() {
                true => "gone".into(),
                false => "held".into(),
            },
        ]);
    }
    let mut out = String::from(
        "<p><label>Find a lot: <input id=\"lot-filter\" type=\"search\" \
         placeholder=\"lot id, type or site\"></label> <span id=\"lot-count\" class=\"muted\"></span></p>\n",
    );
    if total > rows.len() {
        out.push_str(&format!(
            "<p class=\"muted\">The first {} of {} lots; every lot id is in \
             <a href=\"/v1/lots\">/v1/lots</a>.</p>\n",
            thousands(rows.len() as u64),
            thousands(total as u64)
        ));
    }
    out.push_str("<div class=\"scroll\">\n");
    out.push_str(&table(
        Some("lot-table"),
        &[
            "Lot",
            "Type",
            "Declared at",
            "n:Declared",
            "n:Held",
            "n:Destroyed",
            "",
        ],
        &rows,
        "No lot declared yet.",
    ));
    out.push_str("</div>\n");
    out
}

fn reports_section(first_year: Option<i32>, today: Date) -> String {
    let Some(first) = first_year else {
        return "<p class=\"muted\">No entry yet, so no report.</p>\n".into();
    };
    let last = today.year();
    let from = first.max(last - ARTICLE7_YEARS_LISTED_MAX + 1);
    let links: Vec<String> = (from..=last)
        .rev()
        .map(|year| {
            format!(
                "<a href=\"/v1/reports/article7/{year}?format=html\">{year}</a> \
                 (<a href=\"/v1/reports/article7/{year}?format=csv\">CSV</a>, \
                 <a href=\"/v1/reports/article7/{year}\">JSON</a>)"
            )
        })
        .collect();
    format!(
        "<p id=\"article7-links\">Each report is computed at the ledger position of \
         31 December: {}.</p>\n",
        links.join(" · ")
    )
}

// ---------------------------------------------------------------------------------------
// A lot

/// The page of one lot (`GET /lots/{lot_id}`); `None` when the ledger has no such lot.
/// Entries below `provable_entries` (the size of the latest verified checkpoint) link
/// to their inclusion proof. It lists the page `history` of the lot's history (the lot
/// view's, by default the latest events) with links to the pages before and after.
pub fn lot_page(
    fold: &ViewFold,
    lot_id: &str,
    provable_entries: u64,
    history: HistoryPage,
) -> Option<String> {
    let lot = views::lot(fold, lot_id, history)?;
    let mut body = String::from("<p><a href=\"/\">← Dashboard</a></p>\n");
    let basis = match (&lot.basis_date, &lot.request_id) {
        (Some(date), Some(request)) => format!(
            "{} on {date}, under request {}",
            serde_name(&lot.basis),
            request
        ),
        (Some(date), None) => format!("{} on {date}", serde_name(&lot.basis)),
        (None, Some(request)) => format!("{}, under request {request}", serde_name(&lot.basis)),
        (None, None) => serde_name(&lot.basis),
    };
    let lot_number = match &lot.manufacturer_lot_number {
        Some(number) => number.clone(),
        None => format!("none ({})", lot.lot_number_absent_reason),
    };
    let facts = vec![
        vec![
            "Lot id".into(),
            format!("<code id=\"lot-id\">{}</code>", escape(&lot.lot_id)),
        ],
        vec![
            "Type".into(),
            format!(
                "{}{}",
                escape(&lot.type_id),
                if lot.counts_as_apm {
                    " (counts as an anti-personnel mine)"
                } else {
                    ""
                }
            ),
        ],
        vec!["Manufacturer's lot number".into(), escape(&lot_number)],
        vec!["Basis".into(), escape(&basis)],
        vec![
            "Owner, custodian".into(),
            escape(&format!("{}, {}", lot.owner, lot.custodian)),
        ],
        vec!["Declared at".into(), escape(&lot.declared_site_id)],
        vec![
            "Declared units".into(),
            match lot.declared_units == lot.declared_units_reported {
                true => thousands(lot.declared_units),
                false => format!(
                    "{} (first reported {})",
                    thousands(lot.declared_units),
                    thousands(lot.declared_units_reported)
                ),
            },
        ],
        vec![
            "Held".into(),
            format!(
                "<span id=\"lot-held\" data-units=\"{}\">{}</span>{}",
                lot.held,
                thousands(lot.held),
                if lot.terminal {
                    " (nothing left: the lot is gone)"
                } else {
                    ""
                }
            ),
        ],
        vec!["Destroyed".into(), thousands(lot.pools.destroyed)],
        vec![
            "Declaration event".into(),
            format!("<code>{}</code>", escape(&lot.event_id)),
        ],
    ];
    body.push_str(&section(
        "facts",
        "Facts",
        &table(None, &["", ""], &facts, ""),
    ));

    let balances: Vec<Vec<String>> = lot
        .balances
        .iter()
        .map(|balance| {
            vec![
                escape(&balance.site_id),
                escape(&serde_name(&balance.pool)),
                escape(balance.party.as_deref().unwrap_or("")),
                thousands(balance.units),
            ]
        })
        .collect();
    body.push_str(&section(
        "balances",
        "Books",
        &table(
            None,
            &["Site", "Pool", "Institution or shipment", "n:Units"],
            &balances,
            "No units anywhere.",
        ),
    ));

    if !lot.open_differences.is_empty() || !lot.flags.is_empty() {
        let mut rows: Vec<Vec<String>> = lot
            .open_differences
            .iter()
            .map(|difference| {
                vec![
                    "open difference".into(),
                    escape(&format!(
                        "at {}: book {}, counted {}, unexplained {}",
                        difference.site_id,
                        thousands(difference.book),
                        thousands(difference.counted),
                        signed_thousands(difference.unexplained)
                    )),
                    format!("<code>{}</code>", escape(&difference.event_id)),
                ]
            })
            .collect();
        rows.extend(lot.flags.iter().map(|flag| {
            vec![
                format!(
                    "flag {} <code>{}</code>",
                    flag.rule as u8,
                    escape(&flag.code)
                ),
                escape(&flag.message),
                flag.event_ids
                    .iter()
                    .map(|id| format!("<code>{}</code>", escape(id)))
                    .collect::<Vec<_>>()
                    .join("<br>"),
            ]
        }));
        body.push_str(&section(
            "findings",
            "Findings",
            &table(None, &["What", "Finding", "Event ids"], &rows, ""),
        ));
    }

    let history_rows: Vec<Vec<String>> = lot
        .history
        .iter()
        .map(|event| {
            let changes: Vec<String> = event
                .changes
                .iter()
                .map(|change| {
                    let party = change
                        .party
                        .as_deref()
                        .map_or_else(String::new, |party| format!(" ({party})"));
                    format!(
                        "{} {}{party} {}{}",
                        change.site_id,
                        serde_name(&change.pool),
                        if change.change >= 0 { "+" } else { "" },
                        signed_thousands(change.change)
                    )
                })
                .collect();
            let verdict = match &event.verdict {
                Verdict::Accepted => "accepted".to_string(),
                Verdict::Rejected { code } => format!("rejected ({code})"),
            };
            let proof = match event.index < provable_entries {
                true => format!(
                    "<a class=\"proof\" href=\"/v1/proofs/inclusion/{}\" download>inclusion proof</a>",
                    event.index
                ),
                false => "<span class=\"muted\">no checkpoint covers it yet</span>".into(),
            };
            vec![
                event.index.to_string(),
                event.recorded_at.date().to_string(),
                event.occurred_at.date().to_string(),
                escape(event.kind.name()),
                format!("<code>{}</code>", escape(&event.event_id)),
                event.quantity.map_or_else(String::new, thousands),
                escape(&event.sites.join(", ")),
                escape(&verdict),
                escape(&changes.join("; ")),
                format!(
                    "{proof}<br><a class=\"entry\" href=\"/v1/entries/{}\" download>entry bytes</a>",
                    event.index
                ),
            ]
        })
        .collect();
    let mut history_html = history_pager(&lot, history.limit());
    history_html.push_str(&table(
        Some("history-table"),
        &[
            "n:Entry",
            "d:Recorded",
            "d:Occurred",
            "Event",
            "Event id",
            "n:Quantity",
            "Sites",
            "Verdict",
            "Book changes",
            "Downloads",
        ],
        &history_rows,
        "No event.",
    ));
    history_html.push_str(
        "<p class=\"muted\">An inclusion proof (C2SP tlog-proof) and the entry's bytes check \
         offline against the trust root: <code>stockpile check-proof</code>.</p>\n",
    );
    body.push_str(&section("history", "History", &history_html));
    body.push_str(&format!(
        "<p class=\"muted\">As JSON: <a href=\"/v1/lots/{}\">/v1/lots/…</a></p>\n",
        escape(&path_segment(&lot.lot_id))
    ));
    Some(page(
        &format!("Lot {}", lot.lot_id),
        &position_line(&lot.as_of),
        &body,
    ))
}

/// Which events of the lot's history a lot page lists, and links to the pages of
/// `limit` events before and after it and to the latest one.
fn history_pager(lot: &views::LotView, limit: u64) -> String {
    let total = lot.history_total;
    let from = lot.history_from;
    let shown = lot.history.len() as u64;
    let base = lot_href(&lot.lot_id);
    let mut links = Vec::new();
    if from > 0 && from <= total {
        let older = from.saturating_sub(limit);
        links.push(format!(
            "<a id=\"history-older\" href=\"{}\">← older events</a>",
            escape(&format!(
                "{base}?history_from={older}&history_limit={}",
                from - older
            ))
        ));
    }
    if from.saturating_add(shown) < total {
        links.push(format!(
            "<a id=\"history-newer\" href=\"{}\">newer events →</a>",
            escape(&format!(
                "{base}?history_from={}&history_limit={limit}",
                from + shown
            ))
        ));
        links.push(format!(
            "<a id=\"history-latest\" href=\"{}\">latest events</a>",
            escape(&base)
        ));
    }
    let listed = match shown {
        0 => format!("No event listed here (from event {}).", thousands(from)),
        _ => format!(
            "Events {} to {} (oldest first)",
            thousands(from + 1),
            thousands(from + shown)
        ),
    };
    let mut html = format!(
        "<p class=\"muted\" id=\"history-page\">{listed} of {} in the lot's history.",
        thousands(total)
    );
    if !links.is_empty() {
        html.push(' ');
        html.push_str(&links.join(" · "));
    }
    html.push_str("</p>\n");
    html
}

/// The page for a lot the ledger does not hold (served with 404).
pub fn lot_not_found_page(lot_id: &str) -> String {
    page(
        "No such lot",
        "",
        &format!(
            "<p id=\"not-found\">The ledger holds no lot <code>{}</code>.</p>\n\
             <p><a href=\"/#lots\">Find a lot on the dashboard</a></p>\n",
            escape(lot_id)
        ),
    )
}

/// A page saying what went wrong (400, 500).
pub fn error_page(title: &str, message: &str) -> String {
    page(
        title,
        "",
        &format!(
            "<p id=\"error\">{}</p>\n<p><a href=\"/\">Dashboard</a></p>\n",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_and_segments_no_separators() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(path_segment("L-1/2?#<é>"), "L-1%2F2%3F%23%3C%C3%A9%3E");
        assert_eq!(path_segment("SYN-FI-LOT_00.1~"), "SYN-FI-LOT_00.1~");
    }

    #[test]
    fn thousands_are_separated() {
        for (value, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (3_012_345, "3,012,345"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(thousands(value), text);
        }
        assert_eq!(signed_thousands(-1_500), "−1,500");
    }

    #[test]
    fn value_axes_end_on_round_numbers() {
        for (value, ceiling) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (7, 10),
            (10, 10),
            (11, 20),
            (600, 1_000),
            (1_040_000, 1_500_000),
            (2_999_999, 3_000_000),
            (8_000_001, 10_000_000),
        ] {
            assert_eq!(nice_ceiling(value), ceiling, "{value}");
        }
        assert!(nice_ceiling(u64::MAX) >= u64::MAX / 2);
    }

    #[test]
    fn the_policy_names_the_scripts_hash() {
        let policy = content_security_policy();
        let hash = Hash32::digest(SCRIPT.as_bytes()).to_base64();
        assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
        assert!(policy.starts_with("default-src 'none'"));
    }

    #[test]
    fn a_chart_without_points_says_so_and_years_tick_under_a_bound() {
        assert!(line_chart("c", "t", &[], None).contains("No data yet"));
        let line = Line {
            label: "l",
            points: vec![
                (Date::from_ymd(1900, 1, 1).unwrap(), 5),
                (Date::from_ymd(2100, 1, 1).unwrap(), 10),
            ],
            steps: true,
            dashed: false,
        };
        let chart = line_chart("c", "t", &[line], None);
        let ticks = chart.matches("text-anchor=\"middle\"").count();
        assert!(ticks as i32 <= TIME_TICKS_MAX + 1, "{ticks} ticks");
        assert!(chart.contains("<polyline"));
    }
}
