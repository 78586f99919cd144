//! The projector's read-only HTTP API: views, lot history, the Article 7 report, signed
//! checkpoints, inclusion and consistency proofs, status, readiness and metrics; and the
//! dashboard's HTML pages (`/`, `/lots/{lot_id}`, rendered by [`crate::dashboard`]).
//!
//! Described by `openapi.json` (served at `/openapi.json`); a test keeps the document
//! and [`routes`] in step. Every view names the ledger position it reflects
//! (`as_of_index`, `entries`, `head_link`) and can be asked "as of" an earlier index or
//! a verified checkpoint. Errors are JSON `{"error": ...}`: 404 for an unknown lot,
//! entry, checkpoint or route, 400 for malformed parameters, 405 for any other method
//! than GET (and HEAD) — nothing here writes; the dashboard's pages answer their errors
//! as HTML pages.
//!
//! The API is public (no token: it serves what inspectors may verify offline anyway)
//! and bounded by a [`stockpile_http::Guard`] ([`default_http_limits`], or the
//! `--http-*` flags): at most [`HTTP_CONCURRENCY_MAX`] requests at once (one more is shed
//! with 503 and `Retry-After`, never queued — so the folds waiting for
//! [`AS_OF_FOLDS_CONCURRENT`] are bounded too), [`HTTP_RATE_PER_SECOND`] a second with
//! bursts of [`HTTP_RATE_BURST`] (429 with `Retry-After`; `/health` and `/ready` are
//! exempt), bodies of at most [`HTTP_BODY_BYTES_MAX`] (413).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use stockpile_core::hash::Hash32;
use stockpile_http::{Guard, GuardConfig, HttpLimits};
use stockpile_ledger::prove::ProveError;
use stockpile_views::article7::{Article7Config, article7_report, year_end};
use stockpile_views::fold::{ViewFold, entry_recorded_at};
use stockpile_views::query::{QueryError, ViewQuery, answer};
use stockpile_views::views::HistoryPage;

use crate::Shared;
use crate::dashboard::{self, LedgerStatus, Verification};

/// The OpenAPI document of this API.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");
/// Folds of earlier positions kept for reuse (each costs a fold from entry 0).
pub const AS_OF_CACHE_FOLDS: usize = 4;
/// Bytes of latest-position answers kept for reuse ([`AnswerCache`]); past it answers
/// are dropped at random to make room. A lot's answer carries its whole history: about
/// 1.7 MiB for a lot of a 1,000,000-entry ledger, 420 MiB for its 246 lots, which must
/// fit or every lookup risks building one (tens of milliseconds each).
pub const ANSWER_CACHE_BYTES_MAX: usize = 1 << 30;
/// Folds of earlier positions computed at once; further requests wait their turn.
pub const AS_OF_FOLDS_CONCURRENT: usize = 2;
/// Requests handled at once (`--http-concurrency-max`); one more is shed with 503. A
/// view answer takes milliseconds and a fold of an earlier position up to seconds; 64
/// at once is far above a replica's readers, and bounds the requests waiting for a fold.
pub const HTTP_CONCURRENCY_MAX: usize = 64;
/// Requests a second on average (`--http-rate-per-second`), besides the probes; more
/// get 429. A person on the dashboard makes one request per page; scripts and a load
/// balancer's checks a few a second. Replicas scale reads beyond it.
pub const HTTP_RATE_PER_SECOND: u32 = 200;
/// Requests taken at once after a quiet spell (`--http-rate-burst`).
pub const HTTP_RATE_BURST: u32 = 400;
/// Largest request body: the API reads none, so anything bigger is refused unread.
pub const HTTP_BODY_BYTES_MAX: usize = 1024;
/// Longest time a request's body may take to arrive.
pub const HTTP_BODY_READ_TIME_MAX: Duration = Duration::from_secs(5);

/// The bounds of the API unless flags say otherwise.
pub fn default_http_limits() -> HttpLimits {
    HttpLimits {
        concurrency_max: HTTP_CONCURRENCY_MAX,
        rate_per_second: HTTP_RATE_PER_SECOND,
        rate_burst: HTTP_RATE_BURST,
        body_bytes_max: HTTP_BODY_BYTES_MAX,
        body_read_time_max: HTTP_BODY_READ_TIME_MAX,
    }
}

// The folds waiting for their turn are bounded by the requests in flight.
const _: () = assert!(AS_OF_FOLDS_CONCURRENT <= HTTP_CONCURRENCY_MAX);
const _: () = assert!(HTTP_RATE_BURST >= HTTP_RATE_PER_SECOND);

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    article7: Arc<Article7Config>,
    /// Recently computed folds of earlier positions, newest last.
    folds: Arc<Mutex<VecDeque<Arc<ViewFold>>>>,
    folding: Arc<tokio::sync::Semaphore>,
    /// Answers at the latest position, serialized.
    answers: Arc<Mutex<AnswerCache>>,
    /// The `stockpile verify --json` report the dashboard shows, read at each request
    /// (a verifier rewrites it whenever it runs).
    verification_report: Option<Arc<PathBuf>>,
}

/// Every route: path and handler. [`router`] serves exactly these, and the OpenAPI test
/// compares their paths with the document's.
fn routes() -> Vec<(&'static str, MethodRouter<App>)> {
    vec![
        ("/", get(dashboard_overview)),
        ("/lots/{lot_id}", get(dashboard_lot)),
        ("/health", get(health)),
        ("/ready", get(ready)),
        ("/metrics", get(metrics)),
        ("/openapi.json", get(openapi)),
        ("/v1/status", get(status)),
        ("/v1/summary", view_route("summary")),
        ("/v1/stockpile", view_route("stockpile")),
        ("/v1/lots", view_route("lots")),
        ("/v1/lots/{lot_id}", get(lot)),
        ("/v1/retained", view_route("retained")),
        (
            "/v1/destruction-progress",
            view_route("destruction-progress"),
        ),
        ("/v1/transfers", view_route("transfers")),
        ("/v1/in-transit", view_route("in-transit")),
        ("/v1/material-balance", view_route("material-balance")),
        ("/v1/flags", view_route("flags")),
        ("/v1/reports/article7/{year}", get(report_article7)),
        ("/v1/checkpoint", get(latest_checkpoint)),
        ("/v1/checkpoints", get(checkpoints)),
        ("/v1/checkpoints/{size}", get(checkpoint)),
        ("/v1/entries/{index}", get(entry)),
        ("/v1/proofs/inclusion/{index}", get(inclusion_proof)),
        ("/v1/proofs/consistency", get(consistency_proof)),
    ]
}

/// The paths the API serves, in the OpenAPI document's template syntax.
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The API's routes behind a guard with `limits`. `verification_report`: where a
/// verifier writes its `stockpile verify --json` report, shown on the dashboard.
pub fn router(
    shared: Arc<Shared>,
    article7: Article7Config,
    verification_report: Option<PathBuf>,
    limits: HttpLimits,
) -> Router {
    let app = App {
        shared,
        article7: Arc::new(article7),
        folds: Arc::new(Mutex::new(VecDeque::new())),
        folding: Arc::new(tokio::sync::Semaphore::new(AS_OF_FOLDS_CONCURRENT)),
        answers: Arc::new(Mutex::new(AnswerCache::default())),
        verification_report: verification_report.map(Arc::new),
    };
    let routes = routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router.route(path, handler)
        })
        // After the routes: it applies to those already there.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(app);
    let guard = Guard::new(GuardConfig {
        realm: "stockpile-projector".into(),
        tokens: None,
        limits,
    });
    guard.apply(routes)
}

// ---------------------------------------------------------------------------------------
// Errors

/// An error answer: a status and a sentence, sent as JSON `{"error": ...}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    error(StatusCode::BAD_REQUEST, message)
}

fn internal(problem: anyhow::Error) -> ApiError {
    tracing::error!("serving a request: {problem:#}");
    error(StatusCode::INTERNAL_SERVER_ERROR, format!("{problem:#}"))
}

/// Any other method than GET (HEAD included with it): the API is read-only. axum adds
/// the `Allow` header.
async fn method_not_allowed() -> ApiError {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this API is read-only: only GET (and HEAD) are allowed",
    )
}

async fn not_found() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "no such route; the routes are listed in /openapi.json",
    )
}

/// A decimal path or query number, or a 400 naming the parameter.
fn number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| bad_request(format!("{name} {text:?} is not a valid number")))
}

/// A path parameter, or a JSON 400 (e.g. a lot id that is not UTF-8).
fn path_text(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(text)| text)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

/// Query parameters, refused whole (400) when malformed or unknown.
fn params<T>(
    query: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|Query(params)| params)
        .map_err(|rejection| bad_request(rejection.body_text()))
}

// ---------------------------------------------------------------------------------------
// Health, readiness, status, metrics

async fn health() -> &'static str {
    "ok"
}

/// 200 when the views are within reach of the ledger's end and the ledger answered
/// recently; 503 with the reason otherwise.
async fn ready(State(app): State<App>) -> Response {
    let applied = app.shared.read().map(|p| p.next_index()).unwrap_or(0);
    match app.shared.readiness() {
        Ok(()) => axum::Json(json!({ "ready": true, "entries": applied })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "entries": applied, "reason": reason })),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.shared.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// Where the views stand against the ledger, the checkpoints held and refused, rebuilds.
async fn status(State(app): State<App>) -> Result<Response, ApiError> {
    let status = app.shared.status();
    let ready = app.shared.readiness();
    let projector = app.shared.read().map_err(internal)?;
    let refused = projector.store().refused_checkpoints().map_err(internal)?;
    let applied = projector.next_index();
    let latest = projector.proofs().latest_checkpoint().map(|latest| {
        json!({
            "size": latest.checkpoint.size,
            "root_hash": latest.checkpoint.root.to_base64(),
        })
    });
    Ok(axum::Json(json!({
        "replica": app.shared.replica,
        "origin": projector.trust().origin,
        "applied_entries": applied,
        "ledger_entries": status.ledger_entries,
        "lag_entries": status.ledger_entries.map(|size| size.saturating_sub(applied)),
        "last_contact_ms_ago": status.last_contact.map(|at| at.elapsed().as_millis() as u64),
        "last_error": status.last_error,
        "ready": ready.is_ok(),
        "not_ready_because": ready.err(),
        "rebuilding": status.rebuilding,
        "last_rebuild": status.last_rebuild,
        "checkpoints": {
            "verified": projector.proofs().checkpoints().len(),
            "latest": latest,
            "refused": refused.len(),
            "refused_recent": refused
                .iter()
                .rev()
                .take(crate::REFUSED_LISTED_MAX)
                .map(|(sequence, reason)| json!({ "sequence": sequence, "reason": reason }))
                .collect::<Vec<_>>(),
        },
    }))
    .into_response())
}

// ---------------------------------------------------------------------------------------
// The dashboard

/// An HTML page, with the policy that lets only its own inline script run and loads
/// nothing from anywhere; never cached, as it changes with every batch.
fn html_page(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_string()),
            (
                header::CONTENT_SECURITY_POLICY,
                dashboard::content_security_policy(),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        page,
    )
        .into_response()
}

/// A 500 as a page (the dashboard is read by people, not programs).
fn html_internal(problem: anyhow::Error) -> Response {
    tracing::error!("rendering a dashboard page: {problem:#}");
    html_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        dashboard::error_page("Internal error", &format!("{problem:#}")),
    )
}

/// The overview: charts and tables over the live views, the ledger's status and the
/// last verification.
async fn dashboard_overview(State(app): State<App>) -> Response {
    // The report file is read off the async threads, before taking the lock.
    let path = app.verification_report.clone();
    let verification = tokio::task::spawn_blocking(move || {
        dashboard::read_verification(path.as_deref().map(PathBuf::as_path))
    })
    .await
    .unwrap_or_else(|joined| Verification::Unreadable {
        path: PathBuf::new(),
        reason: format!("reading the report failed: {joined}"),
    });
    match overview(&app, &verification) {
        Ok(page) => html_page(StatusCode::OK, page),
        Err(problem) => html_internal(problem),
    }
}

fn overview(app: &App, verification: &Verification) -> anyhow::Result<String> {
    let status = app.shared.status();
    // Readiness takes the read lock itself: ask before holding it here.
    let ready = app.shared.readiness();
    let projector = app.shared.read()?;
    let first_year = match projector.store().entry(0)? {
        Some(bytes) => Some(entry_recorded_at(&bytes, 0)?.date().year()),
        None => None,
    };
    let ledger = LedgerStatus {
        replica: app.shared.replica.clone(),
        origin: projector.trust().origin.clone(),
        applied_entries: projector.next_index(),
        ledger_entries: status.ledger_entries,
        last_contact_ms_ago: status
            .last_contact
            .map(|at| at.elapsed().as_millis() as u64),
        ready,
        last_error: status.last_error,
        rebuilding: status.rebuilding,
        latest_checkpoint: projector
            .proofs()
            .latest_checkpoint()
            .map(|latest| (latest.checkpoint.size, latest.checkpoint.root.to_base64())),
        checkpoints_verified: projector.proofs().checkpoints().len(),
        checkpoints_refused: projector.store().refused_checkpoints()?.len(),
        first_year,
    };
    Ok(dashboard::overview_page(
        projector.fold(),
        &ledger,
        verification,
    ))
}

/// One lot's page; an HTML 404 page for a lot the ledger does not hold.
async fn dashboard_lot(
    State(app): State<App>,
    lot_id: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let lot_id = match lot_id {
        Ok(Path(lot_id)) => lot_id,
        Err(rejection) => {
            return html_page(
                StatusCode::BAD_REQUEST,
                dashboard::error_page("Bad request", &rejection.body_text()),
            );
        }
    };
    let history = match params(query).and_then(|params| history_page(&params)) {
        Ok(history) => history.unwrap_or_default(),
        Err(problem) => {
            return html_page(
                StatusCode::BAD_REQUEST,
                dashboard::error_page("Bad request", &problem.message),
            );
        }
    };
    let projector = match app.shared.read() {
        Ok(projector) => projector,
        Err(problem) => return html_internal(problem),
    };
    let provable = projector
        .proofs()
        .latest_checkpoint()
        .map_or(0, |latest| latest.checkpoint.size);
    match dashboard::lot_page(projector.fold(), &lot_id, provable, history) {
        Some(page) => html_page(StatusCode::OK, page),
        None => html_page(
            StatusCode::NOT_FOUND,
            dashboard::lot_not_found_page(&lot_id),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Views, as of now or earlier

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewParams {
    /// Fold through this entry index.
    as_of_index: Option<String>,
    /// Fold through the entries of the verified checkpoint of this size.
    as_of_checkpoint: Option<String>,
    /// Material balance over one calendar year.
    year: Option<String>,
    /// The lot view: index of the first event of the history page.
    history_from: Option<String>,
    /// The lot view: events in the history page.
    history_limit: Option<String>,
}

/// The page of a lot's history asked for (the dashboard's lot page).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    history_from: Option<String>,
    history_limit: Option<String>,
}

/// The history page asked for, `None` when neither parameter is given; a 400 for a
/// number that does not parse or a limit out of range.
fn history_page(params: &HistoryParams) -> Result<Option<HistoryPage>, ApiError> {
    if params.history_from.is_none() && params.history_limit.is_none() {
        return Ok(None);
    }
    let from = match &params.history_from {
        Some(from) => Some(number::<u64>("history_from", from)?),
        None => None,
    };
    let limit = match &params.history_limit {
        Some(limit) => Some(number::<u64>("history_limit", limit)?),
        None => None,
    };
    HistoryPage::new(from, limit)
        .map(Some)
        .map_err(|problem| bad_request(problem.to_string()))
}

/// Where a view is asked for.
enum Position {
    /// Wherever the views are when answering.
    Latest,
    /// Through this index (inclusive).
    Index(u64),
}

fn position(app: &App, params: &ViewParams) -> Result<Position, ApiError> {
    let applied = app.shared.read().map_err(internal)?.next_index();
    match (&params.as_of_index, &params.as_of_checkpoint) {
        (Some(_), Some(_)) => Err(bad_request(
            "give as_of_index or as_of_checkpoint, not both",
        )),
        (Some(index), None) => {
            let index: u64 = number("as_of_index", index)?;
            if index >= applied {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    format!("entry {index} is not in the views: they hold {applied} entries"),
                ));
            }
            Ok(Position::Index(index))
        }
        (None, Some(size)) => {
            let size: u64 = number("as_of_checkpoint", size)?;
            let projector = app.shared.read().map_err(internal)?;
            let held = projector.proofs().checkpoint_of_size(size);
            if held.is_err() || size == 0 {
                let latest = projector
                    .proofs()
                    .latest_checkpoint()
                    .map(|latest| latest.checkpoint.size);
                return Err(error(
                    StatusCode::NOT_FOUND,
                    format!("no verified checkpoint of size {size}; the latest is {latest:?}"),
                ));
            }
            Ok(Position::Index(size - 1))
        }
        (None, None) => Ok(Position::Latest),
    }
}

/// The fold through `index`: from the cache, or folded from the store (off the async
/// threads, a bounded number at once).
async fn fold_at(app: &App, index: u64) -> Result<Arc<ViewFold>, ApiError> {
    let cached = |app: &App| {
        app.folds.lock().ok().and_then(|folds| {
            folds
                .iter()
                .find(|fold| fold.last_index() == Some(index))
                .cloned()
        })
    };
    if let Some(fold) = cached(app) {
        return Ok(fold);
    }
    let _turn = app
        .folding
        .acquire()
        .await
        .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "the projector is stopping"))?;
    // Someone may have folded it while this request waited.
    if let Some(fold) = cached(app) {
        return Ok(fold);
    }
    let history = app.shared.read().map_err(internal)?.history();
    let fold = tokio::task::spawn_blocking(move || history.fold_at(index))
        .await
        .map_err(|joined| internal(anyhow::anyhow!("folding failed: {joined}")))?
        .map_err(internal)?;
    let fold = Arc::new(fold);
    if let Ok(mut folds) = app.folds.lock() {
        if folds.len() == AS_OF_CACHE_FOLDS {
            folds.pop_front();
        }
        folds.push_back(fold.clone());
    }
    Ok(fold)
}

fn view_route(name: &'static str) -> MethodRouter<App> {
    get(
        move |State(app): State<App>,
              query: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>| async move {
            view(app, name, None, query).await
        },
    )
}

async fn lot(
    State(app): State<App>,
    lot_id: Result<Path<String>, PathRejection>,
    query: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match path_text(lot_id) {
        Ok(lot_id) => view(app, "lot", Some(lot_id), query).await,
        Err(problem) => problem.into_response(),
    }
}

/// Serialized answers at the latest position, for the view routes without parameters
/// (so for a lot, the default page of its history only; other pages are computed).
/// Building and serializing an answer can take milliseconds a request on a large
/// ledger; between batches the answer cannot change.
/// Keyed by the position (entries and head link): a new batch or a swapped-in rebuild
/// at another position empties it.
#[derive(Default)]
struct AnswerCache {
    position: Option<(u64, Hash32)>,
    answers: HashMap<(&'static str, Option<String>), Bytes>,
    bytes: usize,
}

impl AnswerCache {
    fn get(&self, position: (u64, Hash32), key: &(&'static str, Option<String>)) -> Option<Bytes> {
        (self.position == Some(position))
            .then(|| self.answers.get(key).cloned())
            .flatten()
    }

    fn put(&mut self, position: (u64, Hash32), key: (&'static str, Option<String>), answer: Bytes) {
        if self.position != Some(position) {
            self.answers.clear();
            self.bytes = 0;
            self.position = Some(position);
        }
        if answer.len() > ANSWER_CACHE_BYTES_MAX {
            return;
        }
        if let Some(replaced) = self.answers.remove(&key) {
            self.bytes -= replaced.len();
        }
        // Whichever come first in the map's (random) order make room: under lookups
        // spread over more answers than fit, a share of them stays cached, where starting
        // over kept none for long.
        while self.bytes + answer.len() > ANSWER_CACHE_BYTES_MAX {
            let Some(victim) = self.answers.keys().next().cloned() else {
                break;
            };
            if let Some(dropped) = self.answers.remove(&victim) {
                self.bytes -= dropped.len();
            }
        }
        self.bytes += answer.len();
        self.answers.insert(key, answer);
    }
}

/// The answer at the latest position, from the cache or computed under the read lock
/// (and then cached).
fn latest_answer(
    app: &App,
    name: &'static str,
    lot_id: Option<&str>,
) -> Result<Response, ApiError> {
    let query =
        ViewQuery::parse(name, lot_id, None).map_err(|problem| bad_request(problem.to_string()))?;
    let key = (name, lot_id.map(str::to_string));
    let projector = app.shared.read().map_err(internal)?;
    let position = (projector.fold().entries(), projector.fold().head_link());
    let cached = app
        .answers
        .lock()
        .ok()
        .and_then(|cache| cache.get(position, &key));
    let body = match cached {
        Some(body) => body,
        None => {
            let value = answer(projector.fold(), &query).map_err(query_error)?;
            drop(projector);
            let body =
                Bytes::from(serde_json::to_vec(&value).map_err(|problem| {
                    internal(anyhow::anyhow!("serializing {name}: {problem}"))
                })?);
            if let Ok(mut cache) = app.answers.lock() {
                cache.put(position, key, body.clone());
            }
            body
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn query_error(problem: QueryError) -> ApiError {
    match problem {
        QueryError::UnknownLot(_) => error(StatusCode::NOT_FOUND, problem.to_string()),
        _ => bad_request(problem.to_string()),
    }
}

async fn view(
    app: App,
    name: &'static str,
    lot_id: Option<String>,
    query: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Ok(Query(ViewParams {
        as_of_index: None,
        as_of_checkpoint: None,
        year: None,
        history_from: None,
        history_limit: None,
    })) = &query
    {
        return latest_answer(&app, name, lot_id.as_deref())
            .unwrap_or_else(IntoResponse::into_response);
    }
    match answer_view(&app, name, lot_id.as_deref(), query).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(problem) => problem.into_response(),
    }
}

async fn answer_view(
    app: &App,
    name: &str,
    lot_id: Option<&str>,
    query: Result<Query<ViewParams>, axum::extract::rejection::QueryRejection>,
) -> Result<serde_json::Value, ApiError> {
    let params = params(query)?;
    let year = match &params.year {
        Some(_) if name != "material-balance" => {
            return Err(bad_request("year applies to the material balance only"));
        }
        Some(year) => Some(number::<i32>("year", year)?),
        None => None,
    };
    let mut query =
        ViewQuery::parse(name, lot_id, year).map_err(|problem| bad_request(problem.to_string()))?;
    let history = history_page(&HistoryParams {
        history_from: params.history_from.clone(),
        history_limit: params.history_limit.clone(),
    })?;
    if let Some(history) = history {
        query = query
            .with_history(history)
            .map_err(|problem| bad_request(problem.to_string()))?;
    }
    let position = position(app, &params)?;
    let live = {
        // The live fold answers when it stands exactly where asked (checked under the
        // same guard that answers, so a batch landing meanwhile cannot slip in).
        let projector = app.shared.read().map_err(internal)?;
        match position {
            Position::Latest => Some(answer(projector.fold(), &query)),
            Position::Index(index) if projector.fold().last_index() == Some(index) => {
                Some(answer(projector.fold(), &query))
            }
            Position::Index(_) => None,
        }
    };
    let answered = match (live, position) {
        (Some(answered), _) => answered,
        (None, Position::Index(index)) => answer(&*fold_at(app, index).await?, &query),
        (None, Position::Latest) => unreachable!("the latest position is answered live"),
    };
    answered.map_err(query_error)
}

// ---------------------------------------------------------------------------------------
// Article 7

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    format: Option<String>,
}

/// The Article 7 report for a year, folded from the stored entries recorded up to
/// 31 December.
async fn report_article7(
    State(app): State<App>,
    year: Result<Path<String>, PathRejection>,
    query: Result<Query<ReportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let year = match path_text(year) {
        Ok(year) => year,
        Err(problem) => return problem.into_response(),
    };
    match article7(&app, &year, query).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn article7(
    app: &App,
    year: &str,
    query: Result<Query<ReportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let year: i32 = number("year", year)?;
    let last_date =
        year_end(year).ok_or_else(|| bad_request(format!("year {year} is out of range")))?;
    let format = params(query)?.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "csv" | "html") {
        return Err(bad_request(format!(
            "format {format:?} is not one of json, csv, html"
        )));
    }
    let history = app.shared.read().map_err(internal)?.history();
    let through = tokio::task::spawn_blocking(move || history.entries_through(last_date))
        .await
        .map_err(|joined| internal(anyhow::anyhow!("{joined}")))?
        .map_err(internal)?;
    let report = {
        // Under one guard: the report the fold kept when it passed 31 December (the
        // common case: a past year), or the whole ledger so far, answered from the live
        // fold itself.
        let projector = app.shared.read().map_err(internal)?;
        if let Some(kept) = projector
            .year_end(year)
            .filter(|kept| kept.entries == through)
        {
            Some(
                kept.report
                    .clone()
                    .map(|report| report.with_config(&app.article7)),
            )
        } else if through == 0 {
            let empty = projector.history().empty_fold();
            Some(article7_report(&empty, year, &app.article7, None))
        } else if through == projector.next_index() {
            Some(article7_report(projector.fold(), year, &app.article7, None))
        } else {
            None
        }
    };
    let report = match report {
        Some(report) => report,
        None => article7_report(
            &*fold_at(app, through - 1).await?,
            year,
            &app.article7,
            None,
        ),
    }
    .map_err(|problem| error(StatusCode::UNPROCESSABLE_ENTITY, problem.to_string()))?;
    Ok(match format.as_str() {
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            report.to_csv(),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            report.to_html(),
        )
            .into_response(),
        _ => (
            [(header::CONTENT_TYPE, "application/json")],
            report.to_json(),
        )
            .into_response(),
    })
}

// ---------------------------------------------------------------------------------------
// Checkpoints, entries and proofs

fn note_response(note: &str, filename: &str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{filename}\""),
            ),
        ],
        note.to_string(),
    )
        .into_response()
}

/// The latest signed checkpoint verified against the applied entries (C2SP
/// tlog-checkpoint note).
async fn latest_checkpoint(State(app): State<App>) -> Result<Response, ApiError> {
    let projector = app.shared.read().map_err(internal)?;
    let latest = projector
        .proofs()
        .latest_checkpoint()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no verified checkpoint yet"))?;
    Ok(note_response(
        &latest.note,
        &format!("checkpoint-{}.txt", latest.checkpoint.size),
    ))
}

async fn checkpoints(State(app): State<App>) -> Result<Response, ApiError> {
    let projector = app.shared.read().map_err(internal)?;
    let sizes: Vec<_> = projector
        .proofs()
        .checkpoints()
        .iter()
        .map(|held| {
            json!({
                "size": held.checkpoint.size,
                "root_hash": held.checkpoint.root.to_base64(),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "checkpoints": sizes })).into_response())
}

async fn checkpoint(
    State(app): State<App>,
    size: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let size: u64 = number("size", &path_text(size)?)?;
    let projector = app.shared.read().map_err(internal)?;
    let held = projector
        .proofs()
        .checkpoint_of_size(size)
        .map_err(|problem| error(StatusCode::NOT_FOUND, problem.to_string()))?;
    Ok(note_response(&held.note, &format!("checkpoint-{size}.txt")))
}

/// The bytes of one applied entry, exactly as in the ledger (what a proof is checked
/// against).
async fn entry(
    State(app): State<App>,
    index: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let index: u64 = number("index", &path_text(index)?)?;
    let bytes = app
        .shared
        .read()
        .map_err(internal)?
        .store()
        .entry(index)
        .map_err(internal)?
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("entry {index} is not in the views"),
            )
        })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"entry-{index}.bin\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionParams {
    /// Prove against the verified checkpoint of this size (default: the latest).
    checkpoint: Option<String>,
}

/// A C2SP tlog-proof of one entry against a verified checkpoint.
async fn inclusion_proof(
    State(app): State<App>,
    index: Result<Path<String>, PathRejection>,
    query: Result<Query<InclusionParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let index: u64 = number("index", &path_text(index)?)?;
    let size = match params(query)?.checkpoint {
        Some(size) => Some(number::<u64>("checkpoint", &size)?),
        None => None,
    };
    let proof = app
        .shared
        .read()
        .map_err(internal)?
        .proofs()
        .inclusion(index, size)
        .map_err(proof_error)?
        .to_string();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"entry-{index}.tlog-proof\""),
            ),
        ],
        proof,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyParams {
    from: Option<String>,
    to: Option<String>,
}

/// A consistency proof between two verified checkpoints (the `stockpile prove
/// consistency` file: both signed notes and the RFC 6962 proof).
async fn consistency_proof(
    State(app): State<App>,
    query: Result<Query<ConsistencyParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    {
        let params = params(query)?;
        let from: u64 = number(
            "from",
            params
                .from
                .as_deref()
                .ok_or_else(|| bad_request("from (the older checkpoint's size) is required"))?,
        )?;
        let projector = app.shared.read().map_err(internal)?;
        let to = match params.to {
            Some(to) => number("to", &to)?,
            None => projector
                .proofs()
                .latest_checkpoint()
                .map(|latest| latest.checkpoint.size)
                .ok_or_else(|| error(StatusCode::NOT_FOUND, "no verified checkpoint yet"))?,
        };
        let file = projector
            .proofs()
            .consistency(from, to)
            .map_err(proof_error)?;
        Ok(axum::Json(file).into_response())
    }
}

fn proof_error(problem: ProveError) -> ApiError {
    match problem {
        ProveError::NoSuchEntry { .. }
        | ProveError::NoCheckpointCovers { .. }
        | ProveError::NoCheckpointOfSize { .. } => {
            error(StatusCode::NOT_FOUND, problem.to_string())
        }
        ProveError::BadSizes { .. } => bad_request(problem.to_string()),
        other => internal(anyhow::anyhow!(other)),
    }
}
