//! The dashboard in a real browser: a live system (nats-server, sequencer, a scenario
//! published, a projector given the inspector's verification report) and headless
//! Chromium loading the pages. The DOM after the page's script ran must hold the figures
//! the JSON API gives, the charts, the verdict of the verification, and a lot's history
//! whose proof links are served and check out against the trust root.
//!
//! Chromium comes from `make browser` (scripts/install-chromium.sh), or the one
//! `STOCKPILE_CHROMIUM` names. Where none can be found, the test says so in one line and
//! returns: that is the only way it is skipped. `STOCKPILE_DASHBOARD_SCREENSHOT=FILE`
//! keeps the screenshot it takes, to look at.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stockpile_ledger::prove::check_inclusion;
use stockpile_ledger::trust::TrustRoot;

use crate::support::live::Live;
use crate::support::system::{http, http_bytes, stockpile};

/// Entries beyond the Finland-like story: none, the story alone (several years, a
/// destruction campaign, retained mines, a refused transfer) keeps the test short.
const LIVE_ENTRIES: u64 = 0;

/// How long one Chromium run may take before it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the projector may take to hold a checkpoint covering every entry (it looks
/// every 500 ms).
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(30);

/// Names a headless Chromium goes by, in the order looked for on PATH.
const BROWSER_NAMES: &[&str] = &[
    "chromium",
    "chromium-headless-shell",
    "chromium-browser",
    "google-chrome",
];

/// The browser to drive: `STOCKPILE_CHROMIUM` (which must exist), or the first of
/// [`BROWSER_NAMES`] on PATH; `Err` says why there is none.
fn chromium() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("STOCKPILE_CHROMIUM") {
        // Asked for by name: a wrong path is a mistake to report, not a reason to skip.
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "STOCKPILE_CHROMIUM={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    BROWSER_NAMES
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "none of {} is on PATH and STOCKPILE_CHROMIUM is not set \
                 (`make browser` installs Chromium where it can)",
                BROWSER_NAMES.join(", ")
            )
        })
}

/// Runs headless Chromium with `args` and the page `url`; its standard output. Killed
/// (its whole process group) after [`BROWSER_TIMEOUT`].
fn run_browser(browser: &Path, profile: &Path, args: &[String], url: &str) -> String {
    use std::os::unix::process::CommandExt as _;
    let out_path = profile.with_extension("out");
    let err_path = profile.with_extension("err");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        // Files, not pipes: a large DOM cannot fill a pipe no one reads while waiting.
        .stdout(fs::File::create(&out_path).expect("browser output file"))
        .stderr(fs::File::create(&err_path).expect("browser error file"))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("starting {}: {error}", browser.display()));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the browser") {
            break status;
        }
        if Instant::now() > deadline {
            // The browser's helpers are in its process group: end them all.
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "the browser did not finish {url} within {BROWSER_TIMEOUT:?}:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the browser failed on {url} ({status}):\n{}",
        fs::read_to_string(&err_path).unwrap_or_default()
    );
    fs::read_to_string(&out_path).expect("browser output")
}

/// A JSON answer of the projector, 200 asserted.
fn api(addr: &str, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, None);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
}

/// `1234567` as `1,234,567`.
fn grouped(value: u64) -> String {
    let digits = value.to_string().into_bytes();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|chunk| String::from_utf8(chunk.to_vec()).unwrap())
        .collect();
    groups.join(",")
}

/// The numbers `N` of every `prefixN"` in `text`.
fn linked_indices(text: &str, prefix: &str) -> Vec<u64> {
    text.match_indices(prefix)
        .filter_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            rest[..rest.find('"')?].parse().ok()
        })
        .collect()
}

#[test]
fn headless_chromium_renders_the_live_ledger_on_the_dashboard() {
    let browser = match chromium() {
        Ok(browser) => browser,
        Err(why) => {
            eprintln!("dashboard browser test skipped: {why}");
            return;
        }
    };
    let started = Instant::now();
    let mut live = Live::start(13, LIVE_ENTRIES);
    let total = live.publish(usize::MAX);
    let report = live.dir.path().join("verify.json");
    let report_arg = report.display().to_string();
    let projector = live.projector_with(
        "dash",
        &[],
        &[
            "--state-name",
            "Republic of Testland",
            "--verification-report",
            &report_arg,
        ],
    );
    projector.wait_for_entries(total);
    let addr = projector.addr();
    // Proof links need a verified checkpoint covering the entries.
    let deadline = Instant::now() + CHECKPOINT_TIMEOUT;
    while api(&addr, "/v1/status")["checkpoints"]["latest"]["size"] != total {
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {total}:\n{}",
            projector.service.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The inspector verifies the live ledger; the projector shows the report.
    let (url, password) = (live.nats.url(), live.nats.password("inspector").to_string());
    let trust_path = live.trust.display().to_string();
    let (code, out, err) = stockpile(&[
        "verify",
        "--nats",
        &url,
        "--nats-user",
        "inspector",
        "--nats-password",
        &password,
        "--trust",
        &trust_path,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    fs::write(&report, &out).expect("write the verification report");

    // What the JSON API says.
    let summary = api(&addr, "/v1/summary");
    assert_eq!(summary["as_of"]["entries"], total);
    let totals = &api(&addr, "/v1/stockpile")["totals"];
    let held: u64 = [
        "stockpiled",
        "retained",
        "korea",
        "in_transit",
        "unreceived",
    ]
    .iter()
    .map(|pool| totals[pool].as_u64().expect("a pool total"))
    .sum();
    let lot_ids: Vec<String> = api(&addr, "/v1/lots")["lot_ids"]
        .as_array()
        .expect("lot ids")
        .iter()
        .map(|id| id.as_str().expect("an id").to_string())
        .collect();
    assert!(!lot_ids.is_empty());

    // The overview, after its script ran.
    let profile = live.dir.path().join("chromium-profile");
    let base = format!("http://{addr}");
    let dom = run_browser(
        &browser,
        &profile,
        &["--dump-dom".into()],
        &format!("{base}/"),
    );
    assert!(
        dom.contains("data-rendered=\"yes\""),
        "the page's script did not run:\n{dom}"
    );
    let shown = format!("{0} of {0} lots shown", lot_ids.len());
    assert!(dom.contains(&shown), "the script's lot count {shown:?}");
    assert!(
        dom.contains(&format!(
            "id=\"held-units\" data-units=\"{held}\">{}<",
            grouped(held)
        )),
        "held units {held} of /v1/stockpile"
    );
    assert!(
        dom.contains(&format!(
            "id=\"entries-applied\" data-entries=\"{total}\">{}<",
            grouped(total)
        )),
        "entries of /v1/summary"
    );
    assert!(dom.contains(&format!(
        "id=\"flag-total\" data-units=\"{}\"",
        summary["flags"]
    )));
    for chart in ["stock-chart", "destruction-chart", "site-chart"] {
        let at = dom
            .find(&format!("id=\"{chart}\""))
            .unwrap_or_else(|| panic!("no {chart}"));
        let svg = &dom[at..at + dom[at..].find("</svg>").expect("an SVG chart")];
        assert!(
            svg.contains("<polyline") || svg.contains("<rect"),
            "{chart} draws nothing"
        );
    }
    for lot_id in &lot_ids {
        assert!(
            dom.contains(&format!("href=\"/lots/{lot_id}\"")),
            "no link to {lot_id}"
        );
    }
    assert!(
        dom.contains("<span class=\"ok\">clean</span>"),
        "the verdict"
    );
    assert!(
        dom.contains(&format!("id=\"verified-entries\" data-entries=\"{total}\"")),
        "the entries verified"
    );
    assert!(dom.contains("/v1/reports/article7/"));

    // A screenshot: the page lays out and paints (looked at by hand when changed).
    let screenshot = live.dir.path().join("dashboard.png");
    run_browser(
        &browser,
        &profile,
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,2400".into(),
        ],
        &format!("{base}/"),
    );
    let size = fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "a screenshot of {size} bytes");
    if let Some(keep) = std::env::var_os("STOCKPILE_DASHBOARD_SCREENSHOT") {
        fs::copy(&screenshot, keep).expect("copy the screenshot");
    }

    // The lot with the longest history: its page lists every event, and the proof and
    // entry links it offers are served and check out.
    let (lot_id, history) = lot_ids
        .iter()
        .map(|id| {
            let lot = api(&addr, &format!("/v1/lots/{id}"));
            let indices: Vec<u64> = lot["history"]
                .as_array()
                .expect("history")
                .iter()
                .map(|event| event["index"].as_u64().expect("index"))
                .collect();
            (id.clone(), indices)
        })
        .max_by_key(|(_, history)| history.len())
        .expect("a lot");
    assert!(history.len() >= 2, "{lot_id}: {history:?}");
    let dom = run_browser(
        &browser,
        &profile,
        &["--dump-dom".into()],
        &format!("{base}/lots/{lot_id}"),
    );
    assert!(dom.contains("data-rendered=\"yes\""), "{dom}");
    assert!(dom.contains(&format!("<code id=\"lot-id\">{lot_id}</code>")));
    let proofs = linked_indices(&dom, "href=\"/v1/proofs/inclusion/");
    let entries = linked_indices(&dom, "href=\"/v1/entries/");
    assert_eq!(entries, history, "an entry link per event, in order");
    assert_eq!(proofs, history, "every event is under the checkpoint");
    let trust = TrustRoot::parse_json(&fs::read_to_string(&live.trust).expect("trust"))
        .expect("trust root");
    for index in &history {
        let (status, entry) = http_bytes(&addr, "GET", &format!("/v1/entries/{index}"), None);
        assert_eq!(status, 200, "entry {index}");
        let (status, proof) =
            http_bytes(&addr, "GET", &format!("/v1/proofs/inclusion/{index}"), None);
        assert_eq!(status, 200, "proof {index}");
        let proven = check_inclusion(&proof, &entry, &trust)
            .unwrap_or_else(|error| panic!("the proof of entry {index}: {error}"));
        assert_eq!(proven.size, total);
    }
    eprintln!(
        "dashboard browser test: {total} entries, {} lots, in {:.1} s",
        lot_ids.len(),
        started.elapsed().as_secs_f64()
    );
}
