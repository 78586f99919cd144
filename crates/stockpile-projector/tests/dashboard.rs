//! The dashboard's pages through the real router, in process and without NATS: a
//! projector folds a generated ledger and its checkpoints, and the pages must show the
//! figures a reader computes from a fold of the same entries, link to proofs that are
//! served, say what the last verification found, and show a hand-made ledger's markup
//! (a lot id holding `<script>`) as text.

mod common;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use serde_json::Value;
use stockpile_core::events::*;
use stockpile_core::keys::SignerKey;
use stockpile_core::time::{Date, TimestampMs};
use stockpile_ledger::appender::Appender;
use stockpile_ledger::trust::TrustRoot;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_projector::Shared;
use stockpile_projector::api::{self, OPENAPI_JSON};
use stockpile_projector::engine::{CheckpointOffer, Projector};
use stockpile_proto::envelope::{EntryVerdict, sign_event};
use stockpile_scenario::{Dataset, ScenarioConfig};
use stockpile_views::digest::views_today;
use stockpile_views::fold::ViewFold;
use stockpile_views::views;
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------------------
// Ledgers and projectors

/// A generated export: its entries, checkpoint notes, trust root and bytes.
struct Ledger {
    export: Vec<u8>,
    entries: Vec<Bytes>,
    checkpoints: Vec<Bytes>,
    trust: TrustRoot,
}

impl Ledger {
    fn fold(&self) -> ViewFold {
        let mut fold = ViewFold::new(
            self.trust.origin.as_str(),
            &self.trust.ledger_authority_keys(),
        );
        for bytes in &self.entries {
            fold.apply(bytes).expect("the ledger folds");
        }
        fold
    }
}

/// A Finland-like ledger (an Article 4 deadline, retained mines, refused transfers) of
/// ~1,200 entries with a checkpoint every 300, generated once per test binary.
fn scenario() -> &'static Ledger {
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let config = ScenarioConfig {
            seed: 11,
            dataset: Dataset::FinlandLike,
            min_entries: 1_200,
            checkpoint_every: 300,
        };
        let common::Generated {
            export,
            trust,
            entries,
            checkpoints,
        } = common::generate(&config);
        Ledger {
            export,
            entries,
            checkpoints,
            trust,
        }
    })
}

/// A projector's router over `ledger`, offered its first `checkpoints` checkpoints.
struct Dashboard {
    router: Router,
    _dir: tempfile::TempDir,
}

fn dashboard_over(
    ledger: &Ledger,
    checkpoints: usize,
    report: Option<std::path::PathBuf>,
) -> Dashboard {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut projector =
        Projector::open(&dir.path().join("store"), &ledger.trust).expect("open projector");
    let indexed = ledger
        .entries
        .iter()
        .enumerate()
        .map(|(index, bytes)| (index as u64, bytes.clone()))
        .collect();
    projector.apply_batch(indexed).expect("apply every entry");
    for (offset, note) in ledger.checkpoints[..checkpoints].iter().enumerate() {
        let offer = projector
            .offer_checkpoint(offset as u64 + 1, note)
            .expect("offer");
        assert!(
            matches!(offer, CheckpointOffer::Verified { .. }),
            "{offer:?}"
        );
    }
    let shared = Arc::new(Shared::new("dash", projector));
    Dashboard {
        router: api::router(
            shared,
            Default::default(),
            report,
            api::default_http_limits(),
        ),
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------------
// HTTP

struct Reply {
    status: StatusCode,
    content_type: String,
    policy: String,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A page with `status`: HTML, under the policy that loads nothing from elsewhere.
    #[track_caller]
    fn page(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.content_type, "text/html; charset=utf-8");
        assert!(
            self.policy.starts_with("default-src 'none'"),
            "{}",
            self.policy
        );
        self.text()
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let header_text = |name| {
        response
            .headers()
            .get(name)
            .map(|value: &header::HeaderValue| value.to_str().expect("ASCII").to_string())
            .unwrap_or_default()
    };
    let (content_type, policy) = (
        header_text(header::CONTENT_TYPE),
        header_text(header::CONTENT_SECURITY_POLICY),
    );
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let reply = Reply {
        status,
        content_type,
        policy,
        body,
    };
    documented(uri, &reply);
    reply
}

/// The OpenAPI document lists the status and media type of a dashboard answer.
#[track_caller]
fn documented(uri: &str, reply: &Reply) {
    let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("JSON");
    let path = uri.split('?').next().unwrap_or_default();
    let template = if path == "/" {
        "/"
    } else if path.starts_with("/lots/") {
        "/lots/{lot_id}"
    } else {
        return;
    };
    let content = &doc["paths"][template]["get"]["responses"][reply.status.as_str()]["content"];
    assert!(
        content.get(&reply.content_type).is_some(),
        "{uri}: {} as {} is not documented",
        reply.status,
        reply.content_type
    );
}

/// `1234567` as `1,234,567`, written here apart from the dashboard's own formatter.
fn grouped(value: u64) -> String {
    let digits = value.to_string().into_bytes();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|chunk| String::from_utf8(chunk.to_vec()).unwrap())
        .collect();
    groups.join(",")
}

/// What the dashboard's escaping makes of `text` (written out here on its own).
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

// ---------------------------------------------------------------------------------------
// The overview

#[tokio::test]
async fn the_overview_shows_the_figures_of_a_fold_of_the_same_ledger() {
    let ledger = scenario();
    let dashboard = dashboard_over(ledger, ledger.checkpoints.len(), None);
    let page = get(&dashboard.router, "/").await.page(StatusCode::OK);
    let fold = ledger.fold();
    let today = views_today(&fold);

    // The headline figures, as data and as written.
    let stockpile = views::stockpile(&fold);
    let held = stockpile.totals.held();
    assert!(held > 1_000, "the scenario holds stock: {held}");
    assert!(
        page.contains(&format!(
            "id=\"held-units\" data-units=\"{held}\">{}<",
            grouped(held)
        )),
        "held units {held} not shown"
    );
    let progress = views::destruction_progress(&fold, today);
    assert!(progress.destroyed_since_eif > 0);
    assert!(page.contains(&format!(
        "id=\"destroyed-units\" data-units=\"{}\">{}<",
        progress.destroyed_since_eif,
        grouped(progress.destroyed_since_eif)
    )));
    assert!(page.contains(&format!(
        "id=\"remaining-units\" data-units=\"{}\">",
        progress.remaining
    )));
    let deadline = progress.article4_deadline.expect("a Finland-like deadline");
    assert!(page.contains(&deadline.to_string()));
    let days = progress.days_to_deadline.expect("days");
    assert!(
        page.contains(&format!("passed {} days ago", grouped(days.unsigned_abs())))
            || page.contains(&format!("{} days", grouped(days.unsigned_abs()))),
        "days to the deadline ({days}) not shown"
    );

    // The three charts, each with something drawn.
    for id in ["stock-chart", "destruction-chart", "site-chart"] {
        let at = page
            .find(&format!("<svg class=\"chart\" id=\"{id}\""))
            .unwrap_or_else(|| panic!("no chart {id}"));
        let chart = &page[at..at + page[at..].find("</svg>").expect("closed")];
        assert!(
            chart.contains("<polyline") || chart.contains("<rect"),
            "{id} draws nothing"
        );
    }
    // The destruction chart has the on-schedule line as well as the achieved one.
    assert!(page.contains("on schedule: everything destroyed by the deadline"));
    // Every site holding units is drawn with its held total.
    for site in stockpile
        .by_site
        .iter()
        .filter(|site| site.pools.held() > 0)
    {
        assert!(page.contains(&escaped(&site.site_id)), "{}", site.site_id);
        assert!(page.contains(&format!(">{}</text>", grouped(site.pools.held()))));
    }

    // Retained mines by institution: every institution with its held units and headroom.
    let retained = views::retained(&fold);
    assert!(
        !retained.institutions.is_empty(),
        "the scenario retains mines"
    );
    for institution in &retained.institutions {
        assert!(page.contains(&escaped(&institution.name)));
        assert!(page.contains(&format!(
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            grouped(institution.retained),
            grouped(institution.ceiling),
            grouped(institution.headroom)
        )));
    }
    // Refused transfers, with the entries that record them.
    let refused = views::transfers(&fold).refused;
    assert!(!refused.is_empty(), "the scenario refuses transfers");
    for row in &refused {
        assert!(
            page.contains(&escaped(&row.request_id)),
            "{}",
            row.request_id
        );
        assert!(page.contains(&format!("<a href=\"/v1/entries/{}\">", row.index)));
    }
    // Flags with the event ids that prove them.
    let flags = views::flags(&fold);
    assert!(page.contains(&format!("{} flags raised", grouped(flags.total))));
    if let Some(flag) = flags.flags.last() {
        for id in &flag.event_ids {
            assert!(page.contains(&escaped(id)), "flag evidence {id}");
        }
    }

    // The ledger's status.
    let total = ledger.entries.len() as u64;
    assert!(page.contains(&format!(
        "id=\"entries-applied\" data-entries=\"{total}\">{}<",
        grouped(total)
    )));
    assert!(page.contains(&format!("id=\"checkpoint-size\">{}<", grouped(total))));
    assert!(page.contains("not verified yet"));

    // Every lot links to its page; the Article 7 reports are linked for every year.
    for lot_id in views::lot_ids(&fold) {
        assert!(
            page.contains(&format!("<a href=\"/lots/{lot_id}\">{lot_id}</a>")),
            "{lot_id}"
        );
    }
    let first_year = stockpile_views::fold::entry_recorded_at(&ledger.entries[0], 0)
        .unwrap()
        .date()
        .year();
    for year in first_year..=today.year() {
        let link = format!("/v1/reports/article7/{year}?format=html");
        assert!(page.contains(&link), "no report link for {year}");
    }
    let report = get(
        &dashboard.router,
        &format!("/v1/reports/article7/{}?format=html", today.year()),
    )
    .await;
    assert_eq!(report.status, StatusCode::OK);
    // The one script is the page's only script, and it is the one the policy allows.
    assert_eq!(page.matches("<script").count(), 1);
    // Nothing loads from elsewhere: no source attribute, no stylesheet link.
    assert!(
        !page.contains(" src=") && !page.contains("<link"),
        "an external asset"
    );
}

#[tokio::test]
async fn the_overview_says_what_the_last_verification_found() {
    let ledger = scenario();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("verification.json");
    let dashboard = dashboard_over(ledger, ledger.checkpoints.len(), Some(path.clone()));
    let verification = |page: &str| -> String {
        let at = page
            .find("id=\"verification\"")
            .expect("a verification cell");
        let end = page[at..].find("</td>").expect("cell end");
        page[at..at + end].to_string()
    };

    // Nothing written yet.
    let page = get(&dashboard.router, "/").await.page(StatusCode::OK);
    assert!(verification(&page).contains("not verified yet"), "{page}");

    // The verifier's own report of the export.
    let report = verify_export(
        &ledger.export[..],
        &ledger.trust,
        &VerifyOptions::default(),
        |_| {},
    )
    .expect("verify");
    assert!(report.is_clean());
    std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    let page = get(&dashboard.router, "/").await.page(StatusCode::OK);
    let cell = verification(&page);
    assert!(cell.contains("clean"), "{cell}");
    assert!(
        cell.contains(&format!(
            "data-entries=\"{}\">{}<",
            report.entries,
            grouped(report.entries)
        )),
        "{cell}"
    );
    assert!(cell.contains("report written 20"), "the file time: {cell}");
    assert!(!cell.contains("another ledger"), "{cell}");

    // Findings are counted, not hidden.
    let mut with_findings = serde_json::to_value(&report).unwrap();
    with_findings["findings_total"] = 3.into();
    std::fs::write(&path, with_findings.to_string()).unwrap();
    let cell = verification(&get(&dashboard.router, "/").await.page(StatusCode::OK));
    assert!(
        cell.contains("3 findings") && !cell.contains("clean"),
        "{cell}"
    );

    // A report of another ledger is named as such; a file that is no report says so.
    with_findings["origin"] = "elsewhere.example/<b>ledger</b>".into();
    std::fs::write(&path, with_findings.to_string()).unwrap();
    let cell = verification(&get(&dashboard.router, "/").await.page(StatusCode::OK));
    assert!(cell.contains("another ledger"), "{cell}");
    assert!(
        cell.contains("&lt;b&gt;ledger&lt;/b&gt;") && !cell.contains("<b>"),
        "{cell}"
    );
    std::fs::write(&path, "not json").unwrap();
    let cell = verification(&get(&dashboard.router, "/").await.page(StatusCode::OK));
    assert!(cell.contains("unreadable report"), "{cell}");
}

// ---------------------------------------------------------------------------------------
// A lot

#[tokio::test]
async fn a_lot_page_lists_its_history_with_proofs_that_are_served() {
    let ledger = scenario();
    // All checkpoints but the last: the entries after the one before cannot be proven
    // yet, and the page must say so rather than link to a 404.
    let dashboard = dashboard_over(ledger, ledger.checkpoints.len() - 1, None);
    let fold = ledger.fold();
    let provable = stockpile_core::checkpoint::open_checkpoint(
        &ledger.checkpoints[ledger.checkpoints.len() - 2],
        &ledger.trust.origin,
        &ledger.trust.log_keys,
    )
    .expect("checkpoint")
    .0
    .size;
    // The lot with the longest history.
    let lot_id = views::lot_ids(&fold)
        .into_iter()
        .max_by_key(|id| fold.lot_history(id).map_or(0, <[_]>::len))
        .expect("lots");
    let whole = views::lot(&fold, &lot_id, views::HistoryPage::whole()).expect("lot");
    assert!(whole.history.len() >= 2, "{lot_id}: {:?}", whole.history);

    // The latest page (the default), then every page from the first.
    let mut pages = vec![(format!("/lots/{lot_id}"), views::HistoryPage::default())];
    for from in (0..whole.history_total).step_by(views::LOT_HISTORY_PAGE_DEFAULT as usize) {
        pages.push((
            format!("/lots/{lot_id}?history_from={from}"),
            views::HistoryPage::new(Some(from), None).expect("page"),
        ));
    }
    let mut proofs = 0;
    let mut listed = 0;
    for (uri, history) in pages {
        let lot = views::lot(&fold, &lot_id, history).expect("lot");
        listed += lot.history.len();
        let page = get(&dashboard.router, &uri).await.page(StatusCode::OK);
        assert!(page.contains(&format!("<code id=\"lot-id\">{lot_id}</code>")));
        assert!(page.contains(&format!(
            "id=\"lot-held\" data-units=\"{}\">{}<",
            lot.held,
            grouped(lot.held)
        )));
        for event in &lot.history {
            let entry = format!("href=\"/v1/entries/{}\"", event.index);
            let proof = format!("href=\"/v1/proofs/inclusion/{}\"", event.index);
            assert!(page.contains(&format!("<td class=\"n\">{}</td>", event.index)));
            assert!(page.contains(event.kind.name()), "{:?}", event.kind);
            assert!(page.contains(&entry), "no entry link for {}", event.index);
            assert_eq!(
                page.contains(&proof),
                event.index < provable,
                "proof link of entry {} (provable below {provable})",
                event.index
            );
            let served = get(&dashboard.router, &format!("/v1/entries/{}", event.index)).await;
            assert_eq!(served.status, StatusCode::OK);
            assert_eq!(served.body, ledger.entries[event.index as usize]);
            if event.index < provable {
                proofs += 1;
                let served = get(
                    &dashboard.router,
                    &format!("/v1/proofs/inclusion/{}", event.index),
                )
                .await;
                assert_eq!(served.status, StatusCode::OK);
                stockpile_ledger::prove::check_inclusion(
                    &served.body,
                    &ledger.entries[event.index as usize],
                    &ledger.trust,
                )
                .expect("the linked proof checks out");
            }
        }
    }
    assert!(listed >= whole.history.len(), "every page listed");
    assert!(proofs > 0, "some of the lot's events are provable");

    // Another page of the history: one event, with links to the pages around it
    // (escaped), and a page past the end that lists nothing.
    let second = &whole.history[1];
    let page = get(
        &dashboard.router,
        &format!("/lots/{lot_id}?history_from=1&history_limit=1"),
    )
    .await
    .page(StatusCode::OK);
    assert!(page.contains(&format!("href=\"/v1/entries/{}\"", second.index)));
    assert!(!page.contains(&format!("href=\"/v1/entries/{}\"", whole.history[0].index)));
    assert!(
        page.contains(&format!(
            "href=\"/lots/{lot_id}?history_from=0&amp;history_limit=1\""
        )),
        "{page}"
    );
    if whole.history.len() > 2 {
        assert!(page.contains(&format!(
            "href=\"/lots/{lot_id}?history_from=2&amp;history_limit=1\""
        )));
    }
    let page = get(
        &dashboard.router,
        &format!("/lots/{lot_id}?history_from=999999"),
    )
    .await
    .page(StatusCode::OK);
    assert!(!page.contains("href=\"/v1/entries/"), "{page}");
    let page = get(
        &dashboard.router,
        &format!("/lots/{lot_id}?history_limit=0"),
    )
    .await
    .page(StatusCode::BAD_REQUEST);
    assert!(page.contains("history_limit 0 is out of range"), "{page}");

    // An unknown lot: a 404 page naming it.
    let page = get(&dashboard.router, "/lots/NO-SUCH-LOT-7")
        .await
        .page(StatusCode::NOT_FOUND);
    assert!(page.contains("no lot <code>NO-SUCH-LOT-7</code>"), "{page}");
    // A lot id that is not UTF-8: a 400 page.
    get(&dashboard.router, "/lots/%FF")
        .await
        .page(StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------------------
// Markup in the ledger

const HAND_ORIGIN: &str = "example.org/dashboard-test-ledger";
const MARKUP_LOT: &str = "L-<script>alert(\"x\")</script>/1";
const MARKUP_SITE_NAME: &str = "Depot <b>One</b>, 'north'";

fn date(text: &str) -> Date {
    Date::parse(text).expect("a test date")
}

/// A tiny ledger whose lot id, type id and site name carry markup.
fn markup_ledger() -> Ledger {
    let key = |name: &str, byte: u8| SignerKey::from_seed(name, [byte; 32]).unwrap();
    let (log, registrar, depot) = (key("log", 9), key("registrar", 1), key("depot", 2));
    let trust = TrustRoot {
        origin: HAND_ORIGIN.into(),
        log_keys: vec![log.verifier_key()],
        authority_keys: vec![registrar.verifier_key()],
    };
    let mut appender =
        Appender::new(HAND_ORIGIN, log, &trust.ledger_authority_keys()).expect("appender");
    let bodies = vec![
        (
            &registrar,
            EventBody::RegimeConfigured(RegimeConfigured {
                state_id: "XX".into(),
                regime: Regime::Apmbc,
                eif_date: date("2010-01-01"),
                policy_dates: Vec::new(),
                article4_deadline: Some(date("2014-01-01")),
                initial_report_due: Some(date("2010-06-30")),
            }),
        ),
        (
            &registrar,
            EventBody::SiteRegistered(SiteRegistered {
                site_id: "D-<1>".into(),
                name: MARKUP_SITE_NAME.into(),
                kind: SiteKind::Depot,
                country_code: "XX".into(),
                in_korean_peninsula: false,
            }),
        ),
        (
            &registrar,
            EventBody::MineTypeRegistered(MineTypeRegistered {
                type_id: "T-<i>".into(),
                designation: "Type <i>".into(),
                category: "antipersonnel blast mine".into(),
                activation_modes: vec!["pressure".into()],
                self_destructing: false,
                counts_as_apm: true,
                dimensions_mm: "100 x 50".into(),
                fusing: "pressure".into(),
                explosive_type: "TNT".into(),
                explosive_mg: 37_500,
                metal_mg: 0,
                photo_sha256: None,
            }),
        ),
        (
            &registrar,
            EventBody::SignerAuthorized(SignerAuthorized {
                key_id: depot.name().to_string(),
                public_key: depot.public_key_bytes(),
                holder: "depot service".into(),
                role: Role::Depot,
                valid_from: TimestampMs(1),
                site_scope: Vec::new(),
            }),
        ),
        (
            &depot,
            EventBody::LotDeclared(LotDeclared {
                lot_id: MARKUP_LOT.into(),
                type_id: "T-<i>".into(),
                manufacturer_lot_number: Some("MFR <2>".into()),
                lot_number_absent_reason: String::new(),
                quantity: 1_000,
                site_id: "D-<1>".into(),
                owner: "State".into(),
                custodian: "Depot <command>".into(),
                basis: LotBasis::Initial,
                basis_date: None,
                request_id: None,
            }),
        ),
    ];
    let mut sequences = std::collections::BTreeMap::new();
    let mut entries = Vec::new();
    let mut now = date("2011-03-01").start();
    for (number, (signer, body)) in bodies.into_iter().enumerate() {
        now = TimestampMs(now.0 + 60_000);
        let sequence = sequences.entry(signer.name().to_string()).or_insert(0);
        *sequence += 1;
        let event = Event {
            event_id: format!("hand-<{number}>"),
            origin: HAND_ORIGIN.into(),
            actor: "dashboard test".into(),
            emitter_sequence: *sequence,
            occurred_at: now,
            evidence: Vec::new(),
            body,
        };
        let appended = appender.append(&sign_event(&event, signer), now);
        assert_eq!(appended.verdict, EntryVerdict::Accepted, "event {number}");
        entries.push(appended.entry);
    }
    let checkpoint = appender.checkpoint();
    Ledger {
        export: Vec::new(),
        entries,
        checkpoints: vec![Bytes::from(checkpoint.note)],
        trust,
    }
}

#[tokio::test]
async fn markup_in_the_ledger_shows_as_text() {
    let ledger = markup_ledger();
    let dashboard = dashboard_over(&ledger, 1, None);
    let overview = get(&dashboard.router, "/").await.page(StatusCode::OK);
    // The lot's link, percent-encoded, to a page that renders it.
    let href = "/lots/L-%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E%2F1";
    assert!(
        overview.contains(&format!("<a href=\"{href}\">")),
        "{overview}"
    );
    let lot = get(&dashboard.router, href).await.page(StatusCode::OK);
    let unknown = get(
        &dashboard.router,
        "/lots/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )
    .await
    .page(StatusCode::NOT_FOUND);
    for (name, page) in [("overview", &overview), ("lot", &lot), ("404", &unknown)] {
        // The page's own script is its only one; no markup from the ledger survives.
        assert_eq!(page.matches("<script").count(), 1, "{name}: {page}");
        for raw in [
            "<script>alert",
            "<b>One</b>",
            "<i>",
            "<1>",
            "<2>",
            "<command>",
        ] {
            assert!(!page.contains(raw), "{name}: {raw} unescaped");
        }
    }
    assert!(lot.contains(&escaped(MARKUP_LOT)), "{lot}");
    assert!(lot.contains("MFR &lt;2&gt;"));
    assert!(overview.contains(&escaped(MARKUP_LOT)));
    assert!(overview.contains(&escaped(MARKUP_SITE_NAME)));
    assert!(unknown.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Held units of the one lot: the figure of the views.
    assert!(overview.contains("id=\"held-units\" data-units=\"1000\">1,000<"));
}
