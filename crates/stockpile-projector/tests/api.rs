//! The projector's HTTP API at its boundary, in process and without NATS: a projector
//! folds a generated ledger and takes its signed checkpoints, and requests go through the
//! real router. Answers are checked against what a reader can compute on their own from
//! the export: folds stopped at the position asked for, the Article 7 report of the same
//! fold, proofs checked against the trust root. The OpenAPI document is checked against
//! the routes and against the answers.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use serde_json::Value;
use stockpile_core::checkpoint::open_checkpoint;
use stockpile_http::HttpLimits;
use stockpile_ledger::prove::{check_consistency, check_inclusion};
use stockpile_ledger::trust::TrustRoot;
use stockpile_projector::Shared;
use stockpile_projector::api::{self, OPENAPI_JSON};
use stockpile_projector::engine::{CheckpointOffer, Projector};
use stockpile_scenario::{Dataset, ScenarioConfig};
use stockpile_views::article7::{Article7Config, Article7Report, article7_report, year_end};
use stockpile_views::digest::views_digest;
use stockpile_views::fold::{ViewFold, entry_recorded_at};
use stockpile_views::query::{VIEW_NAMES, ViewQuery, answer};
use tower::ServiceExt as _;

const STATE_NAME: &str = "Republic of Synthland";
/// What the router's fallback says, so a test can tell "no such route" from a handler's 404.
const FALLBACK_ERROR: &str = "no such route";

// ---------------------------------------------------------------------------------------
// The ledger and the projector

/// A generated export, split into its records.
struct Ledger {
    entries: Vec<Bytes>,
    /// Signed checkpoint notes, in export order.
    checkpoints: Vec<Bytes>,
    /// Their sizes, in the same order.
    sizes: Vec<u64>,
    trust: TrustRoot,
}

impl Ledger {
    fn total(&self) -> u64 {
        self.entries.len() as u64
    }

    /// A fresh fold of entries `0..=index` (all of them with `None`).
    fn fold_through(&self, index: Option<u64>) -> ViewFold {
        let mut fold = self.empty_fold();
        let end = index.map_or(self.entries.len(), |index| index as usize + 1);
        for bytes in &self.entries[..end] {
            fold.apply(bytes).expect("the generated ledger folds");
        }
        fold
    }

    fn empty_fold(&self) -> ViewFold {
        ViewFold::new(
            self.trust.origin.as_str(),
            &self.trust.ledger_authority_keys(),
        )
    }

    /// The calendar year entry `index` was recorded in.
    fn year_of(&self, index: usize) -> i32 {
        entry_recorded_at(&self.entries[index], index as u64)
            .expect("recorded_at")
            .date()
            .year()
    }
}

/// One U.S.-like ledger of ~1,500 entries with a checkpoint every 300, generated once per
/// test binary (a fraction of a second).
fn ledger() -> &'static Ledger {
    static LEDGER: OnceLock<Ledger> = OnceLock::new();
    LEDGER.get_or_init(|| {
        let config = ScenarioConfig {
            seed: 7,
            dataset: Dataset::UsLike,
            min_entries: 1_500,
            checkpoint_every: 300,
        };
        let common::Generated {
            export: _,
            trust,
            entries,
            checkpoints,
        } = common::generate(&config);
        let sizes = checkpoints
            .iter()
            .map(|note| {
                open_checkpoint(note, &trust.origin, &trust.log_keys)
                    .expect("the export's checkpoints verify")
                    .0
                    .size
            })
            .collect::<Vec<_>>();
        assert!(
            sizes.len() >= 3,
            "the scenario signs checkpoints: {sizes:?}"
        );
        Ledger {
            entries,
            checkpoints,
            sizes,
            trust,
        }
    })
}

/// The API of a projector that applied every entry of [`ledger`] and was offered its
/// first `checkpoints` signed checkpoints.
struct Api {
    router: Router,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
}

fn api_with(checkpoints: usize) -> Api {
    api_with_limits(checkpoints, api::default_http_limits())
}

/// [`api_with`], the API behind a guard with these limits.
fn api_with_limits(checkpoints: usize, limits: HttpLimits) -> Api {
    let ledger = ledger();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut projector = Projector::open(dir.path(), &ledger.trust).expect("open projector");
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
    let shared = Arc::new(Shared::new("test", projector));
    let article7 = Article7Config {
        state_name: STATE_NAME.into(),
        ..Default::default()
    };
    Api {
        router: api::router(shared.clone(), article7, None, limits),
        shared,
        _dir: dir,
    }
}

/// Every entry applied, every checkpoint verified.
fn api() -> Api {
    api_with(ledger().checkpoints.len())
}

// ---------------------------------------------------------------------------------------
// HTTP

struct Reply {
    uri: String,
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    #[track_caller]
    fn json(&self) -> Value {
        assert_eq!(
            self.essence(),
            "application/json",
            "{}: {}",
            self.uri,
            self.text()
        );
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{}: not JSON ({error}): {}", self.uri, self.text()))
    }

    /// The media type without parameters.
    fn essence(&self) -> &str {
        self.content_type.split(';').next().unwrap_or("").trim()
    }

    /// A 200 JSON answer.
    #[track_caller]
    fn ok_json(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}: {}", self.uri, self.text());
        self.json()
    }

    /// A 200 answer's body, with its media type checked.
    #[track_caller]
    fn ok(&self, essence: &str) -> &Bytes {
        assert_eq!(self.status, StatusCode::OK, "{}: {}", self.uri, self.text());
        assert_eq!(self.essence(), essence, "{}", self.uri);
        &self.body
    }

    /// An error answer: the status, JSON `{"error": ...}` with a sentence; the sentence.
    #[track_caller]
    fn error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "{}: {}", self.uri, self.text());
        let body = self.json();
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no error sentence: {body}", self.uri));
        assert!(!message.trim().is_empty(), "{}: empty error", self.uri);
        message.to_string()
    }
}

async fn get(router: &Router, uri: &str) -> Reply {
    let request = Request::get(uri).body(Body::empty()).expect("request");
    let reply = send(router, request).await;
    check_documented(&reply);
    reply
}

/// Any request; the answer is not checked against the document.
async fn send(router: &Router, request: Request<Body>) -> Reply {
    let uri = request.uri().to_string();
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().expect("ASCII content type").to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    Reply {
        uri,
        status,
        content_type,
        headers,
        body,
    }
}

/// The API path of a view name of the query module.
fn view_path(name: &str, lot_id: &str) -> String {
    match name {
        "lot" => format!("/v1/lots/{lot_id}"),
        other => format!("/v1/{other}"),
    }
}

/// The ledger position a view names.
#[track_caller]
fn as_of(view: &Value) -> &Value {
    let position = &view["as_of"];
    assert!(position.is_object(), "no as_of in {view}");
    position
}

// ---------------------------------------------------------------------------------------
// The OpenAPI document

/// The OpenAPI document, parsed.
fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON"))
}

/// The documented path template a request path falls under, if any.
fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    document()["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(part, segment)| {
                    part == segment || (part.starts_with('{') && !segment.is_empty())
                })
        })
}

/// Every answer of every test is one the document lists for its path: the status and
/// the media type (or the router's fallback for a path it does not list).
#[track_caller]
fn check_documented(reply: &Reply) {
    let doc = document();
    let path = reply.uri.split('?').next().unwrap_or_default();
    let Some(template) = template_of(path) else {
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{}: undocumented path",
            reply.uri
        );
        assert!(reply.text().contains(FALLBACK_ERROR), "{}", reply.uri);
        return;
    };
    let responses = &doc["paths"][template]["get"]["responses"];
    let Some(documented) = responses.get(reply.status.as_str()) else {
        panic!(
            "{}: status {} is not documented for {template} (documented: {:?}): {}",
            reply.uri,
            reply.status,
            responses.as_object().map(|r| r.keys().collect::<Vec<_>>()),
            reply.text()
        );
    };
    let media: Vec<&str> = follow(doc, documented)["content"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(media, _)| media.split(';').next().unwrap_or_default().trim())
        .collect();
    assert!(
        media.contains(&reply.essence()),
        "{}: a {} as {:?} is not documented for {template} (documented: {media:?})",
        reply.uri,
        reply.status,
        reply.content_type
    );
}

/// The value a documented `$ref` points to.
#[track_caller]
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference}: only local references"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} resolves to nothing"))
}

/// Follows `$ref`s to the schema (or parameter, response) itself.
fn follow<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => value = resolve(doc, reference),
            None => return value,
        }
    }
    panic!("a cycle of $refs at {value}")
}

fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => found.push(reference.clone()),
                    _ => references(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// The top-level properties a schema requires (through `$ref` and `allOf`).
fn required_keys(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let schema = follow(doc, schema);
    let mut keys: BTreeSet<String> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|key| key.as_str().map(str::to_string))
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        keys.extend(required_keys(doc, part));
    }
    keys
}

/// The `{name}`s of a path template.
fn template_names(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------
// 1. The document and the routes

/// Values to try for each documented parameter, fitting the generated ledger. A
/// parameter the document gains must get values here too.
fn example_values(name: &str, schema: &Value, lot_id: &str) -> Vec<String> {
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|value| value.as_str().expect("string enum").to_string())
            .collect();
    }
    let ledger = ledger();
    let sizes = &ledger.sizes;
    let value = match name {
        "lot_id" => lot_id.to_string(),
        "year" => ledger.year_of(ledger.entries.len() / 2).to_string(),
        "size" | "as_of_checkpoint" | "from" => sizes[0].to_string(),
        "checkpoint" | "to" => sizes[sizes.len() - 1].to_string(),
        "index" => "3".into(),
        "as_of_index" => "10".into(),
        "history_from" => "1".into(),
        "history_limit" => "2".into(),
        other => panic!("the document has a parameter {other:?} this test has no value for"),
    };
    vec![value]
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_what_it_answers() {
    let api = api();
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1."))
    );
    assert_eq!(doc["info"]["title"], "stockpile-projector API");

    // Served as is.
    let served = get(&api.router, "/openapi.json").await;
    assert_eq!(served.ok("application/json"), OPENAPI_JSON.as_bytes());

    // Every reference resolves.
    let mut found = Vec::new();
    references(doc, &mut found);
    assert!(!found.is_empty());
    for reference in &found {
        resolve(doc, reference);
    }

    // The same paths as the router.
    let paths = doc["paths"].as_object().expect("paths");
    let documented_paths: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let routed: BTreeSet<&str> = api::route_paths().into_iter().collect();
    assert_eq!(
        documented_paths, routed,
        "openapi.json paths vs api::routes()"
    );

    let lot_id = stockpile_views::views::lot_ids(&ledger().fold_through(None))
        .into_iter()
        .next()
        .expect("the ledger has lots");
    let mut operation_ids = BTreeSet::new();
    let mut requests = 0;
    for (path, item) in paths {
        let methods: Vec<&String> = item.as_object().expect("path item").keys().collect();
        assert_eq!(methods, ["get"], "{path}: the API is read-only");
        let operation = &item["get"];
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(operation_ids.insert(id), "{path}: operationId {id} twice");
        for field in ["summary", "description"] {
            let text = operation[field].as_str().unwrap_or("");
            assert!(!text.trim().is_empty(), "{path}: no {field}");
        }
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{path}: no responses");

        // Parameters: the path ones are the template's, required.
        let parameters: Vec<&Value> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|parameter| follow(doc, parameter))
            .collect();
        let in_path: BTreeSet<String> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{path}: path parameters are required");
                p["name"].as_str().expect("name").to_string()
            })
            .collect();
        assert_eq!(in_path, template_names(path), "{path}: path parameters");

        // One request with the path and required parameters, then one per optional
        // parameter value.
        let mut base = path.clone();
        let mut required_query = Vec::new();
        let mut variants = vec![Vec::new()];
        for parameter in &parameters {
            let name = parameter["name"].as_str().expect("name");
            let values = example_values(name, &parameter["schema"], &lot_id);
            match (parameter["in"].as_str(), parameter["required"] == true) {
                (Some("path"), _) => base = base.replace(&format!("{{{name}}}"), &values[0]),
                (Some("query"), true) => required_query.push(format!("{name}={}", values[0])),
                (Some("query"), false) => {
                    variants.extend(values.iter().map(|value| vec![format!("{name}={value}")]))
                }
                (other, _) => panic!("{path}: a parameter in {other:?}"),
            }
        }
        for optional in variants {
            let query: Vec<String> = required_query.iter().cloned().chain(optional).collect();
            let uri = match query.is_empty() {
                true => base.clone(),
                false => format!("{base}?{}", query.join("&")),
            };
            // `get` checks the status and media type are documented for the path.
            let reply = get(&api.router, &uri).await;
            requests += 1;
            assert!(
                !reply.text().contains(FALLBACK_ERROR),
                "{uri}: fell through to the router's fallback"
            );
            if reply.essence() != "application/json" {
                continue;
            }
            let schema = &follow(doc, &responses[reply.status.as_str()])["content"]["application/json"]
                ["schema"];
            let body = reply.json();
            for key in required_keys(doc, schema) {
                assert!(
                    body.get(&key).is_some(),
                    "{uri}: the {} answer lacks the documented required property {key:?}: {}",
                    reply.status,
                    reply.text()
                );
            }
        }
    }
    assert!(requests > routed.len(), "{requests} requests");
}

// ---------------------------------------------------------------------------------------
// 2. Errors

#[tokio::test]
async fn errors_are_json_with_the_status_that_says_what_went_wrong() {
    let api = api();
    let router = &api.router;
    let ledger = ledger();
    let total = ledger.total();

    // Unknown things: 404.
    let message = get(router, "/v1/lots/NO-SUCH-LOT-42")
        .await
        .error(StatusCode::NOT_FOUND);
    assert!(message.contains("NO-SUCH-LOT-42"), "{message}");
    for uri in [
        "/v1/nothing",
        "/v2/summary",
        "/v1/lots/a/b",
        "/lots/a/b",
        "/index.html",
    ] {
        let message = get(router, uri).await.error(StatusCode::NOT_FOUND);
        assert!(message.contains(FALLBACK_ERROR), "{uri}: {message}");
    }
    for uri in [
        format!("/v1/summary?as_of_index={total}"),
        format!("/v1/stockpile?as_of_index={}", u64::MAX),
        "/v1/flags?as_of_checkpoint=7".to_string(),
        "/v1/summary?as_of_checkpoint=0".to_string(),
        format!("/v1/entries/{total}"),
        format!("/v1/proofs/inclusion/{total}"),
        "/v1/checkpoints/7".to_string(),
    ] {
        let message = get(router, &uri).await.error(StatusCode::NOT_FOUND);
        assert!(!message.contains(FALLBACK_ERROR), "{uri}: {message}");
    }

    // Malformed parameters: 400, refused whole.
    let first = ledger.sizes[0];
    for uri in [
        "/v1/summary?as_of_index=abc".to_string(),
        "/v1/summary?as_of_index=-1".to_string(),
        "/v1/stockpile?as_of_checkpoint=x".to_string(),
        format!("/v1/summary?as_of_index=3&as_of_checkpoint={first}"),
        "/v1/summary?foo=1".to_string(),
        "/v1/lots/SYN-US-LOT-00001?foo=1".to_string(),
        "/v1/material-balance?year=abc".to_string(),
        "/v1/material-balance?year=99999".to_string(),
        "/v1/stockpile?year=2020".to_string(),
        "/v1/lots/SYN-US-LOT-00001?history_limit=0".to_string(),
        "/v1/lots/SYN-US-LOT-00001?history_limit=1001".to_string(),
        "/v1/lots/SYN-US-LOT-00001?history_from=-1".to_string(),
        "/v1/lots/SYN-US-LOT-00001?history_from=x".to_string(),
        "/v1/summary?history_from=0".to_string(),
        "/v1/reports/article7/2020?format=xml".to_string(),
        "/v1/reports/article7/2020?foo=1".to_string(),
        "/v1/reports/article7/abc".to_string(),
        "/v1/proofs/inclusion/-1".to_string(),
        "/v1/proofs/inclusion/abc".to_string(),
        "/v1/proofs/inclusion/0?checkpoint=abc".to_string(),
        "/v1/entries/abc".to_string(),
        "/v1/checkpoints/abc".to_string(),
        "/v1/proofs/consistency".to_string(),
        "/v1/proofs/consistency?from=abc".to_string(),
        format!("/v1/proofs/consistency?from={first}&to={first}"),
        format!("/v1/proofs/consistency?from={first}&to=1"),
        "/v1/proofs/consistency?from=0".to_string(),
        // Not UTF-8 once decoded: still a JSON answer.
        "/v1/lots/%FF".to_string(),
    ] {
        let message = get(router, &uri).await.error(StatusCode::BAD_REQUEST);
        assert!(!message.contains(FALLBACK_ERROR), "{uri}: {message}");
    }
    // The sentence names the parameter at fault.
    let message = get(router, "/v1/summary?as_of_index=abc")
        .await
        .error(StatusCode::BAD_REQUEST);
    assert!(message.contains("as_of_index"), "{message}");
    let message = get(router, "/v1/summary?foo=1")
        .await
        .error(StatusCode::BAD_REQUEST);
    assert!(message.contains("foo"), "{message}");
}

// ---------------------------------------------------------------------------------------
// 2b. A lot's history, paged

#[tokio::test]
async fn a_lots_history_pages_cover_the_whole_history_once_in_order() {
    use stockpile_views::views::{HistoryPage, LOT_HISTORY_PAGE_DEFAULT, LOT_HISTORY_PAGE_MAX};
    let api = api();
    let router = &api.router;
    let whole = ledger().fold_through(None);
    // The lot with the longest history.
    let lot_id = stockpile_views::views::lot_ids(&whole)
        .into_iter()
        .max_by_key(|id| whole.lot_history(id).map_or(0, <[_]>::len))
        .expect("lots");
    let unpaged = stockpile_views::views::lot(&whole, &lot_id, HistoryPage::whole()).unwrap();
    let expected = serde_json::to_value(&unpaged.history).unwrap();
    let expected = expected.as_array().unwrap();
    let total = expected.len() as u64;
    assert!(total >= 3, "{lot_id}: {total} events");
    assert_eq!(unpaged.history_total, total);

    // The default page: the latest events, up to LOT_HISTORY_PAGE_DEFAULT.
    let latest = get(router, &format!("/v1/lots/{lot_id}")).await.ok_json();
    let shown = total.min(LOT_HISTORY_PAGE_DEFAULT);
    assert_eq!(latest["history_total"], total);
    assert_eq!(latest["history_from"], total - shown);
    assert_eq!(
        latest["history"].as_array().unwrap()[..],
        expected[(total - shown) as usize..]
    );
    // The same answer (facts, books, flags) whatever the page, but for the page.
    let unpaged_json = serde_json::to_value(&unpaged).unwrap();
    for (key, value) in unpaged_json.as_object().unwrap() {
        if !key.starts_with("history") {
            assert_eq!(&latest[key], value, "{key}");
        }
    }
    // The latest few.
    let last_two = get(router, &format!("/v1/lots/{lot_id}?history_limit=2"))
        .await
        .ok_json();
    assert_eq!(last_two["history_from"], total - 2);
    assert_eq!(
        last_two["history"].as_array().unwrap()[..],
        expected[total as usize - 2..]
    );

    // Paging from 0 until empty, with several limits: every event once, in order.
    for limit in [1, 2, 7, LOT_HISTORY_PAGE_MAX] {
        let mut paged = Vec::new();
        let mut from = 0u64;
        loop {
            let uri = format!("/v1/lots/{lot_id}?history_from={from}&history_limit={limit}");
            let page = get(router, &uri).await.ok_json();
            assert_eq!(page["history_total"], total, "{uri}");
            assert_eq!(page["history_from"], from, "{uri}");
            let events = page["history"].as_array().unwrap().clone();
            assert!(events.len() as u64 <= limit, "{uri}");
            if events.is_empty() {
                break;
            }
            from += events.len() as u64;
            paged.extend(events);
        }
        assert_eq!(from, total, "limit {limit}");
        assert_eq!(paged[..], expected[..], "limit {limit}");
    }

    // Past the end: an empty page with the total.
    for from in [total, total + 1, u64::MAX] {
        let page = get(router, &format!("/v1/lots/{lot_id}?history_from={from}"))
            .await
            .ok_json();
        assert_eq!(page["history_total"], total);
        assert_eq!(page["history_from"], from);
        assert_eq!(page["history"], Value::Array(Vec::new()));
    }
    // An earlier position pages the same way.
    let index = whole.last_index().unwrap();
    let page = get(
        router,
        &format!("/v1/lots/{lot_id}?as_of_index={index}&history_from=1&history_limit=2"),
    )
    .await
    .ok_json();
    assert_eq!(page["history"].as_array().unwrap()[..], expected[1..3]);

    // Limits out of range: a 400 naming the parameter.
    for limit in [0, LOT_HISTORY_PAGE_MAX + 1] {
        let message = get(router, &format!("/v1/lots/{lot_id}?history_limit={limit}"))
            .await
            .error(StatusCode::BAD_REQUEST);
        assert!(message.contains("history_limit"), "{message}");
    }
    let message = get(router, "/v1/flags?history_limit=5")
        .await
        .error(StatusCode::BAD_REQUEST);
    assert!(message.contains("lot view only"), "{message}");
}

// ---------------------------------------------------------------------------------------
// 3. As of

#[tokio::test]
async fn views_as_of_an_index_or_a_checkpoint_equal_folds_stopped_there() {
    let api = api();
    let router = &api.router;
    let ledger = ledger();
    let total = ledger.total();
    let whole = ledger.fold_through(None);
    let year = ledger.year_of(ledger.entries.len() / 3);
    let lot_id = stockpile_views::views::lot_ids(&whole)
        .into_iter()
        .next()
        .expect("lots");

    // Without parameters: the projector's current fold, for every view.
    for name in VIEW_NAMES {
        let query = ViewQuery::parse(name, Some(&lot_id), None).expect("view name");
        let expected = answer(&whole, &query).expect("answer");
        let reply = get(router, &view_path(name, &lot_id)).await;
        assert_eq!(reply.ok_json(), expected, "{name}, now");
    }
    let by_year = get(router, &format!("/v1/material-balance?year={year}"))
        .await
        .ok_json();
    let query = ViewQuery::MaterialBalance { year: Some(year) };
    assert_eq!(by_year, answer(&whole, &query).unwrap());

    // As of index N: a fold of entries 0..=N, for every view.
    let mut fold = ledger.empty_fold();
    let probes = [0, 17, ledger.sizes[0] - 1, 777, total - 2, total - 1];
    for (index, bytes) in ledger.entries.iter().enumerate() {
        fold.apply(bytes).expect("fold");
        let index = index as u64;
        if !probes.contains(&index) {
            continue;
        }
        let summary = get(router, &format!("/v1/summary?as_of_index={index}"))
            .await
            .ok_json();
        assert_eq!(as_of(&summary)["as_of_index"], index);
        assert_eq!(as_of(&summary)["entries"], index + 1);
        assert_eq!(as_of(&summary)["head_link"], fold.head_link().to_hex());
        assert_eq!(
            summary["views_digest"],
            views_digest(&fold).to_hex(),
            "as of {index}"
        );
        for name in VIEW_NAMES {
            let query = ViewQuery::parse(name, Some(&lot_id), None).unwrap();
            let uri = format!("{}?as_of_index={index}", view_path(name, &lot_id));
            let reply = get(router, &uri).await;
            match answer(&fold, &query) {
                Ok(expected) => assert_eq!(reply.ok_json(), expected, "{uri}"),
                // The lot was not declared yet at that position.
                Err(_) => {
                    let message = reply.error(StatusCode::NOT_FOUND);
                    assert!(message.contains(&lot_id), "{message}");
                }
            }
        }
        let uri = format!("/v1/material-balance?year={year}&as_of_index={index}");
        let query = ViewQuery::MaterialBalance { year: Some(year) };
        assert_eq!(
            get(router, &uri).await.ok_json(),
            answer(&fold, &query).unwrap(),
            "{uri}"
        );
    }

    // As of checkpoint S: the same as as of index S - 1.
    for &size in &ledger.sizes {
        for name in ["summary", "stockpile", "flags", "lot"] {
            let path = view_path(name, &lot_id);
            let by_checkpoint = get(router, &format!("{path}?as_of_checkpoint={size}")).await;
            let by_index = get(router, &format!("{path}?as_of_index={}", size - 1)).await;
            assert_eq!(by_checkpoint.status, by_index.status, "{path} at {size}");
            assert_eq!(by_checkpoint.body, by_index.body, "{path} at {size}");
        }
        let summary = get(router, &format!("/v1/summary?as_of_checkpoint={size}"))
            .await
            .ok_json();
        assert_eq!(as_of(&summary)["entries"], size);
    }
    // The latest checkpoint covers everything: the current answer.
    let latest = *ledger.sizes.last().unwrap();
    assert_eq!(
        latest, total,
        "the scenario closes the ledger with a checkpoint"
    );
    assert_eq!(
        get(router, &format!("/v1/summary?as_of_checkpoint={latest}"))
            .await
            .body,
        get(router, "/v1/summary").await.body
    );
}

// ---------------------------------------------------------------------------------------
// 4. Checkpoints, entries and proofs

#[tokio::test]
async fn checkpoints_and_proofs_served_verify_against_the_trust_root_alone() {
    let api = api();
    let router = &api.router;
    let ledger = ledger();
    let trust = &ledger.trust;
    let total = ledger.total();
    let latest_note = ledger.checkpoints.last().unwrap();
    let latest = *ledger.sizes.last().unwrap();

    // Checkpoints, verbatim.
    let reply = get(router, "/v1/checkpoint").await;
    assert_eq!(reply.ok("text/plain"), latest_note);
    let listed = get(router, "/v1/checkpoints").await.ok_json();
    let listed: Vec<(u64, String)> = listed["checkpoints"]
        .as_array()
        .expect("checkpoints")
        .iter()
        .map(|held| {
            let size = held["size"].as_u64().expect("size");
            (size, held["root_hash"].as_str().expect("root").to_string())
        })
        .collect();
    let expected: Vec<(u64, String)> = ledger
        .checkpoints
        .iter()
        .map(|note| {
            let checkpoint = open_checkpoint(note, &trust.origin, &trust.log_keys)
                .unwrap()
                .0;
            (checkpoint.size, checkpoint.root.to_base64())
        })
        .collect();
    assert_eq!(listed, expected);
    for (size, note) in ledger.sizes.iter().zip(&ledger.checkpoints) {
        let reply = get(router, &format!("/v1/checkpoints/{size}")).await;
        assert_eq!(reply.ok("text/plain"), note, "checkpoint {size}");
    }

    // Inclusion: the served entry is the ledger's, and the proof checks out for it and
    // for nothing else.
    let first = ledger.sizes[0];
    for index in [0, 1, first - 1, first, 777, total - 1] {
        let entry = get(router, &format!("/v1/entries/{index}")).await;
        let entry = entry.ok("application/octet-stream").clone();
        assert_eq!(entry, ledger.entries[index as usize], "entry {index}");

        let mut against = vec![(format!("/v1/proofs/inclusion/{index}"), latest)];
        for &size in ledger.sizes.iter().filter(|size| **size > index).take(2) {
            against.push((
                format!("/v1/proofs/inclusion/{index}?checkpoint={size}"),
                size,
            ));
        }
        for (uri, size) in against {
            let proof = get(router, &uri).await;
            let proof = proof.ok("text/plain");
            let proven = check_inclusion(proof, &entry, trust)
                .unwrap_or_else(|error| panic!("{uri}: {error}"));
            assert_eq!(proven.size, size, "{uri}");

            let mut flipped = entry.to_vec();
            flipped[entry.len() / 2] ^= 0x01;
            assert!(
                check_inclusion(proof, &flipped, trust).is_err(),
                "{uri}: a modified entry passes"
            );
            let other = &ledger.entries[(index as usize + 1) % ledger.entries.len()];
            assert!(check_inclusion(proof, other, trust).is_err(), "{uri}");
        }
        // A checkpoint that does not cover the entry cannot prove it.
        if let Some(&short) = ledger.sizes.iter().find(|size| **size <= index) {
            let uri = format!("/v1/proofs/inclusion/{index}?checkpoint={short}");
            get(router, &uri).await.error(StatusCode::NOT_FOUND);
        }
    }

    // Consistency: checks out, and a tampered hash does not.
    let sizes = &ledger.sizes;
    let mut pairs = vec![
        (sizes[0], sizes[1]),
        (sizes[0], latest),
        (sizes[1], sizes[sizes.len() - 2]),
    ];
    pairs.dedup();
    for (from, to) in pairs {
        let uri = format!("/v1/proofs/consistency?from={from}&to={to}");
        let file = get(router, &uri).await;
        let text = file.text();
        let (old, new) = check_consistency(&text, trust).unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert_eq!((old.size, new.size), (from, to));
        let file = file.ok_json();
        let note_of = |size: u64| {
            let at = sizes.iter().position(|s| *s == size).unwrap();
            String::from_utf8(ledger.checkpoints[at].to_vec()).unwrap()
        };
        assert_eq!(file["old_checkpoint"], note_of(from), "{uri}");
        assert_eq!(file["new_checkpoint"], note_of(to), "{uri}");

        let hashes = file["proof"].as_array().expect("proof").len();
        assert!(hashes > 0, "{uri}");
        for at in [0, hashes - 1] {
            let mut tampered = file.clone();
            let hash = tampered["proof"][at].as_str().unwrap().to_string();
            let replaced = if hash.starts_with('A') { "B" } else { "A" };
            tampered["proof"][at] = Value::String(format!("{replaced}{}", &hash[1..]));
            assert!(
                check_consistency(&tampered.to_string(), trust).is_err(),
                "{uri}: proof hash {at} tampered passes"
            );
        }
    }
    // `to` defaults to the latest.
    let defaulted = get(router, &format!("/v1/proofs/consistency?from={first}")).await;
    let (_, new) = check_consistency(&defaulted.text(), trust).expect("verifies");
    assert_eq!(new.size, latest);
    let uri = format!("/v1/proofs/consistency?from=5&to={latest}");
    get(router, &uri).await.error(StatusCode::NOT_FOUND);

    // A projector whose latest checkpoint has not come yet: the entries after the one
    // before it are applied, but not provable; nor is there a latest checkpoint before
    // the first one.
    let behind = api_with(ledger.checkpoints.len() - 1);
    let previous = ledger.sizes[ledger.sizes.len() - 2];
    let reply = get(&behind.router, "/v1/checkpoint").await;
    assert_eq!(reply.ok("text/plain"), &ledger.checkpoints[sizes.len() - 2]);
    let entry = get(&behind.router, &format!("/v1/entries/{previous}")).await;
    assert_eq!(
        entry.ok("application/octet-stream"),
        &ledger.entries[previous as usize]
    );
    let uri = format!("/v1/proofs/inclusion/{previous}");
    let message = get(&behind.router, &uri).await.error(StatusCode::NOT_FOUND);
    assert!(message.contains(&previous.to_string()), "{message}");
    let uri = format!("/v1/proofs/inclusion/{}", previous - 1);
    let proof = get(&behind.router, &uri).await;
    let proven = check_inclusion(
        proof.ok("text/plain"),
        &ledger.entries[previous as usize - 1],
        trust,
    );
    assert_eq!(proven.expect("verifies").size, previous);

    let none = api_with(0);
    get(&none.router, "/v1/checkpoint")
        .await
        .error(StatusCode::NOT_FOUND);
    get(&none.router, "/v1/proofs/inclusion/0")
        .await
        .error(StatusCode::NOT_FOUND);
    let uri = format!("/v1/proofs/consistency?from={first}");
    get(&none.router, &uri).await.error(StatusCode::NOT_FOUND);
    let uri = format!("/v1/summary?as_of_checkpoint={first}");
    get(&none.router, &uri).await.error(StatusCode::NOT_FOUND);
    let listed = get(&none.router, "/v1/checkpoints").await.ok_json();
    assert_eq!(listed["checkpoints"], Value::Array(Vec::new()));
}

// ---------------------------------------------------------------------------------------
// 5. Article 7

/// The report a reader computes from the export: entries folded up to 31 December.
fn expected_article7(year: i32, config: &Article7Config) -> Article7Report {
    let ledger = ledger();
    let last_date = year_end(year).expect("year");
    let mut fold = ledger.empty_fold();
    for bytes in &ledger.entries {
        if fold
            .apply_through(bytes, last_date)
            .expect("fold")
            .is_none()
        {
            break;
        }
    }
    article7_report(&fold, year, config, None).expect("report")
}

#[tokio::test]
async fn article7_reports_equal_the_report_of_a_fold_through_the_year_end() {
    let api = api();
    let router = &api.router;
    let ledger = ledger();
    let config = Article7Config {
        state_name: STATE_NAME.into(),
        ..Default::default()
    };
    let first_year = ledger.year_of(0);
    let last_year = ledger.year_of(ledger.entries.len() - 1);
    let middle_year = ledger.year_of(ledger.entries.len() / 2);
    assert!(first_year < middle_year && middle_year < last_year);

    // The first year, one in the middle (an earlier position), the last (every entry).
    for year in [first_year, middle_year, last_year] {
        let expected = expected_article7(year, &config);
        let path = format!("/v1/reports/article7/{year}");
        let json = get(router, &path).await.ok_json();
        let expected_json: Value = serde_json::from_str(&expected.to_json()).unwrap();
        assert_eq!(json, expected_json, "{path}");
        assert_eq!(json["cover"]["state_name"], STATE_NAME);
        assert_eq!(json["cover"]["year"], year);
        let explicit = get(router, &format!("{path}?format=json")).await.ok_json();
        assert_eq!(explicit, json);

        let csv = get(router, &format!("{path}?format=csv")).await;
        assert_eq!(
            csv.ok("text/csv"),
            expected.to_csv().as_bytes(),
            "{path} csv"
        );
        let html = get(router, &format!("{path}?format=html")).await;
        assert_eq!(
            html.ok("text/html"),
            expected.to_html().as_bytes(),
            "{path} html"
        );
        assert!(html.text().contains(STATE_NAME));
    }
    // The middle year's report reflects the last entry of that year.
    let json = get(router, &format!("/v1/reports/article7/{middle_year}"))
        .await
        .ok_json();
    let entries = json["cover"]["as_of"]["entries"].as_u64().expect("entries");
    assert!(entries < ledger.total());
    assert_eq!(ledger.year_of(entries as usize - 1), middle_year);
    assert!(ledger.year_of(entries as usize) > middle_year);

    // Before the regime (before the ledger starts): nothing to report.
    let uri = format!("/v1/reports/article7/{}", first_year - 1);
    let message = get(router, &uri)
        .await
        .error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        message.contains("RegimeConfigured"),
        "a sentence: {message}"
    );
    for uri in [
        "/v1/reports/article7/99999",
        "/v1/reports/article7/0",
        "/v1/reports/article7/-5",
    ] {
        get(router, uri).await.error(StatusCode::BAD_REQUEST);
    }
}

// ---------------------------------------------------------------------------------------
// 6. Service

#[tokio::test]
async fn health_readiness_metrics_and_status_say_where_the_projector_stands() {
    let api = api();
    let router = &api.router;
    let ledger = ledger();
    let total = ledger.total();
    let verified = ledger.checkpoints.len();

    let health = get(router, "/health").await;
    assert_eq!(health.ok("text/plain"), "ok".as_bytes());

    // No NATS in process: never reached, so not ready.
    let ready = get(router, "/ready").await;
    let body = ready.json();
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["entries"], total);
    assert!(!body["reason"].as_str().unwrap_or("").is_empty(), "{body}");

    // The figures the fold loop records, served from this projector's recorder.
    api.shared.metrics.positions(total, total + 5);
    api.shared.metrics.checkpoints_verified(verified);
    let metrics = get(router, "/metrics").await;
    assert!(
        metrics
            .content_type
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    for line in [
        format!("stockpile_projector_applied_entries {total}"),
        format!("stockpile_projector_ledger_entries {}", total + 5),
        "stockpile_projector_lag_entries 5".to_string(),
        format!("stockpile_projector_checkpoints_verified {verified}"),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in {text}");
    }

    let status = get(router, "/v1/status").await.ok_json();
    assert_eq!(status["replica"], "test");
    assert_eq!(status["origin"], ledger.trust.origin);
    assert_eq!(status["applied_entries"], total);
    assert_eq!(status["ready"], false);
    assert_eq!(status["not_ready_because"], body["reason"]);
    assert_eq!(status["ledger_entries"], Value::Null);
    assert_eq!(status["checkpoints"]["verified"], verified);
    assert_eq!(status["checkpoints"]["latest"]["size"], total);
    assert_eq!(status["checkpoints"]["refused"], 0);
}

// ---------------------------------------------------------------------------------------
// 7. Read-only, and bounded

/// Every route's path with its parameters filled in.
fn concrete_paths(lot_id: &str) -> Vec<String> {
    let ledger = ledger();
    api::route_paths()
        .into_iter()
        .map(|path| {
            path.replace("{lot_id}", lot_id)
                .replace("{year}", &ledger.year_of(0).to_string())
                .replace("{size}", &ledger.sizes[0].to_string())
                .replace("{index}", "3")
        })
        .collect()
}

#[tokio::test]
async fn the_api_is_read_only_any_other_method_is_405_json_and_changes_nothing() {
    let api = api();
    let router = &api.router;
    let lot_id = stockpile_views::views::lot_ids(&ledger().fold_through(None))
        .into_iter()
        .next()
        .expect("lots");
    let position = |api: &Api| {
        let projector = api.shared.read().expect("read");
        (
            projector.next_index(),
            projector.proofs().checkpoints().len(),
            projector.store().entry(3).expect("store").expect("entry 3"),
        )
    };
    let before = position(&api);
    let summary = get(router, "/v1/summary").await.ok_json();
    let lot = get(router, &format!("/v1/lots/{lot_id}")).await.ok_json();

    let paths = concrete_paths(&lot_id);
    assert_eq!(paths.len(), api::route_paths().len());
    for path in &paths {
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"quantity": 0, "lot_id": "L-1"}"#))
                .expect("request");
            let reply = send(router, request).await;
            let message = reply.error(StatusCode::METHOD_NOT_ALLOWED);
            assert!(message.contains("read-only"), "{method} {path}: {message}");
            let allow = reply.headers[header::ALLOW].to_str().expect("ASCII");
            assert!(allow.contains("GET"), "{method} {path}: Allow {allow}");
        }
        // HEAD goes with GET.
        let head = Request::head(path.as_str()).body(Body::empty()).unwrap();
        let reply = send(router, head).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "HEAD {path}");
    }

    // Nothing moved: the store, the checkpoints held, every view.
    assert_eq!(position(&api), before);
    assert_eq!(get(router, "/v1/summary").await.ok_json(), summary);
    assert_eq!(
        get(router, &format!("/v1/lots/{lot_id}")).await.ok_json(),
        lot
    );
}

#[tokio::test]
async fn requests_beyond_the_limits_are_shed_or_slowed_with_json_the_document_describes() {
    let api = api_with_limits(
        ledger().checkpoints.len(),
        HttpLimits {
            concurrency_max: 1,
            rate_per_second: 1,
            rate_burst: 2,
            ..api::default_http_limits()
        },
    );
    let router = &api.router;

    // One request whose body never arrives holds the only slot: the next is shed at
    // once (503, `Retry-After`), not queued.
    let stalled = Request::get("/v1/summary")
        .body(Body::from_stream(futures::stream::pending::<
            Result<Bytes, std::io::Error>,
        >()))
        .unwrap();
    let held = tokio::spawn({
        let router = router.clone();
        async move { send(&router, stalled).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for path in ["/v1/status", "/health", "/"] {
        let reply = get(router, path).await; // checks the 503 is documented
        let message = reply.error(StatusCode::SERVICE_UNAVAILABLE);
        assert!(message.contains("busy"), "{path}: {message}");
        assert_eq!(reply.headers[header::RETRY_AFTER], "1", "{path}");
    }
    held.abort();
    let _ = held.await;

    // The stalled request took one of the burst of two; one more, then 429.
    get(router, "/v1/summary").await.ok_json();
    let reply = get(router, "/v1/lots").await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.text()
    );
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    let wait = reply.json()["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!((1..=1_000).contains(&wait), "{wait}");
    // The probes are outside the rate.
    get(router, "/health").await.ok("text/plain");
    assert_ne!(
        get(router, "/ready").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // And it recovers.
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    get(router, "/v1/lots").await.ok_json();

    // A body over the limit is refused unread, whatever the route.
    let request = Request::get("/v1/summary")
        .header(header::CONTENT_LENGTH, api::HTTP_BODY_BYTES_MAX + 1)
        .body(Body::from(vec![b'x'; api::HTTP_BODY_BYTES_MAX + 1]))
        .unwrap();
    let message = send(router, request)
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message.contains("larger than"), "{message}");
}
