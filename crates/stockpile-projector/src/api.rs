//! The projector's read-only JSON API over its views.
//!
//! Every answer names the ledger position it reflects (`as_of_index`). Unknown lots get a
//! 404 and malformed parameters a 400, both as JSON `{"error": ...}`.

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;
use stockpile_core::time::Date;
use stockpile_views::article7::{Article7Config, article7_report, year_end};
use stockpile_views::fold::ViewFold;
use stockpile_views::views;

use crate::engine::Projector;

/// The projector shared between the folding loop (writer) and the API (readers).
pub type SharedProjector = Arc<RwLock<Projector>>;

#[derive(Clone)]
struct App {
    projector: SharedProjector,
    article7: Arc<Article7Config>,
}

/// The API's routes.
pub fn router(projector: SharedProjector, article7: Article7Config) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/v1/summary", get(summary))
        .route("/v1/stockpile", get(stockpile))
        .route("/v1/lots", get(lot_ids))
        .route("/v1/lots/{lot_id}", get(lot))
        .route("/v1/retained", get(retained))
        .route("/v1/destruction-progress", get(destruction_progress))
        .route("/v1/transfers", get(transfers))
        .route("/v1/in-transit", get(in_transit))
        .route("/v1/material-balance", get(material_balance))
        .route("/v1/flags", get(flags))
        .route("/v1/reports/article7/{year}", get(report_article7))
        .fallback(not_found)
        .with_state(App {
            projector,
            article7: Arc::new(article7),
        })
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such route; see /v1/stockpile, /v1/lots, /v1/reports/article7/{year}",
    )
}

/// The folding loop panicked while holding the lock: nothing consistent to serve.
struct Stopped;

impl IntoResponse for Stopped {
    fn into_response(self) -> Response {
        error(StatusCode::INTERNAL_SERVER_ERROR, "the projector stopped")
    }
}

/// Runs `view` on the current fold under the read lock.
fn with_fold<T>(app: &App, view: impl FnOnce(&ViewFold) -> T) -> Result<T, Stopped> {
    let projector = app.projector.read().map_err(|_| Stopped)?;
    Ok(view(projector.fold()))
}

fn json_view<T: serde::Serialize>(result: Result<T, Stopped>) -> Response {
    match result {
        Ok(view) => axum::Json(view).into_response(),
        Err(stopped) => stopped.into_response(),
    }
}

/// The date views that count days use: the date of the last entry (so answers depend
/// on the ledger alone, not on the server's clock).
fn ledger_today(fold: &ViewFold) -> Date {
    fold.today()
        .unwrap_or(Date::from_ymd(1970, 1, 1).expect("a valid date"))
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(app): State<App>) -> Response {
    json_view(with_fold(&app, |fold| json!({ "entries": fold.entries() })))
}

async fn summary(State(app): State<App>) -> Response {
    json_view(with_fold(&app, |fold| {
        json!({
            "as_of_index": fold.last_index(),
            "entries": fold.entries(),
            "summary": fold.compliance().summary(),
        })
    }))
}

async fn stockpile(State(app): State<App>) -> Response {
    json_view(with_fold(&app, views::stockpile))
}

async fn lot_ids(State(app): State<App>) -> Response {
    json_view(with_fold(&app, views::lot_ids))
}

async fn lot(State(app): State<App>, Path(lot_id): Path<String>) -> Response {
    match with_fold(&app, |fold| views::lot(fold, &lot_id)) {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("no lot {lot_id:?} in the ledger"),
        ),
        Err(stopped) => stopped.into_response(),
    }
}

async fn retained(State(app): State<App>) -> Response {
    json_view(with_fold(&app, views::retained))
}

async fn destruction_progress(State(app): State<App>) -> Response {
    json_view(with_fold(&app, |fold| {
        views::destruction_progress(fold, ledger_today(fold))
    }))
}

async fn transfers(State(app): State<App>) -> Response {
    json_view(with_fold(&app, views::transfers))
}

async fn in_transit(State(app): State<App>) -> Response {
    json_view(with_fold(&app, |fold| {
        views::in_transit(fold, ledger_today(fold))
    }))
}

async fn material_balance(State(app): State<App>) -> Response {
    json_view(with_fold(&app, |fold| views::material_balance(fold, None)))
}

async fn flags(State(app): State<App>) -> Response {
    json_view(with_fold(&app, views::flags))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    format: Option<String>,
}

/// The Article 7 report for a year, folded from the stored entries up to 31 December.
async fn report_article7(
    State(app): State<App>,
    Path(year): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(year) = year.parse::<i32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("year {year:?} is not a number"),
        );
    };
    let Some(last_date) = year_end(year) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("year {year} is out of range"),
        );
    };
    let format = match query {
        Ok(Query(query)) => query.format.unwrap_or_else(|| "json".into()),
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    if !matches!(format.as_str(), "json" | "csv" | "html") {
        return error(
            StatusCode::BAD_REQUEST,
            format!("format {format:?} is not one of json, csv, html"),
        );
    }
    let report = {
        let Ok(projector) = app.projector.read() else {
            return Stopped.into_response();
        };
        let fold = match projector.fold_through(last_date) {
            Ok(fold) => fold,
            Err(problem) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{problem:#}"));
            }
        };
        article7_report(&fold, year, &app.article7, None)
    };
    let report = match report {
        Ok(report) => report,
        Err(problem) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("{problem:?}")),
    };
    match format.as_str() {
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
    }
}
