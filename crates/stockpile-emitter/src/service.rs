//! An emitting service: a small JSON HTTP API in front of one [`Emitter`].
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/events` | 202 `{key_id, emitter_sequence, event_id, kind, status: "pending"}` once durable in the outbox |
//! | `POST /v1/events?wait=true` | 201 receipt (accepted), 422 receipt (rejected: `rejection_code`, `rejection_reason`), 504 still pending after [`RECEIPT_WAIT_MAX`] |
//! | `GET /v1/receipts/{key_id}/{seq}` | 200 receipt, 404 pending or unknown |
//! | `GET /v1/receipts/{key_id}/{seq}/proof` | 200 `text/plain` tlog-proof, 409 no checkpoint covers it yet |
//! | `GET /v1/kinds` | the kinds, roles and keys of this service |
//! | `GET /v1/status` | pending count, NATS state, per-key last sequence, HTTP limits and refusals |
//! | `GET /health` | 200 while the process runs |
//! | `GET /ready` | 200 when connected to NATS, else 503 |
//!
//! A receipt answer is the event's receipt ([`EventReceipt`]). If the ledger refused the
//! submission as out of order and the emitter re-emitted the event under a new sequence
//! ([`crate::resubmit`]), it is the receipt of the latest submission (its
//! `emitter_sequence` is the new one) with `resubmitted_from`: the receipts of the
//! refused submissions, the one asked about first. A pending answer (404 or 504,
//! `"status": "pending"`) for a re-emitted event carries `resubmitted_as`:
//! `{key_id, emitter_sequence}` of the submission now pending.
//!
//! Every error is JSON `{"error": "..."}`: 400 malformed request, 403 a kind this service
//! does not emit, 404/405 unknown route or method, 413 body over
//! [`REQUEST_BODY_BYTES_MAX`], 415 not JSON, 503 outbox full or shutting down.
//!
//! # Who may call it, and how much
//!
//! Every route but `/health` and `/ready` requires `Authorization: Bearer <token>` with
//! one of the service's tokens ([`ApiConfig::tokens`]: `--token-file`, or
//! `STOCKPILE_API_TOKEN`). Following RFC 6750: no token (or another scheme) is 401 with
//! `WWW-Authenticate: Bearer realm="stockpile-<service>"`, a token the service does not
//! hold — another service's, say — is 401 with `error="invalid_token"`, a malformed
//! credential is 400 with `error="invalid_request"`. Nothing is read, signed or written
//! for a refused request. The service's 403 stays what it was: a kind it does not emit.
//!
//! Requests are bounded ([`ApiConfig::limits`], [`default_http_limits`]): at most
//! [`HTTP_CONCURRENCY_MAX`] at once (one more is shed with 503 and `Retry-After`, never
//! queued), [`HTTP_RATE_PER_SECOND`] a second on average with bursts of
//! [`HTTP_RATE_BURST`] (429 with `Retry-After`; the probes are exempt), bodies of at most
//! [`REQUEST_BODY_BYTES_MAX`] arriving within [`HTTP_BODY_READ_TIME_MAX`] (413, 408).
//! `GET /v1/status` counts the refusals. The guard itself is [`stockpile_http::Guard`].

use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use stockpile_core::events::Role;
pub use stockpile_http::{ApiTokens, HttpLimits};
use stockpile_http::{Guard, GuardConfig};
use stockpile_nats::NatsConfig;
use stockpile_nats::proofs::ProofReply;

use crate::json::EventRequest;
use crate::limits::{
    HTTP_BODY_READ_TIME_MAX, HTTP_CONCURRENCY_MAX, HTTP_DRAIN_MAX, HTTP_RATE_BURST,
    HTTP_RATE_PER_SECOND, RECEIPT_WAIT_MAX, REQUEST_BODY_BYTES_MAX,
};
use crate::outbox::OutboxLimits;
use crate::roles::{ServiceKind, kind_name, role_name};
use crate::sdk::{EmitError, Emitter, EmitterConfig, EventReceipt, RoleKey};

/// Everything a service needs; the binaries build it from their flags.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub service: ServiceKind,
    /// Address to listen on; port 0 picks a free one (see `addr_file`).
    pub listen: SocketAddr,
    /// Where to write the bound address (`ip:port` and a newline) once listening.
    pub addr_file: Option<PathBuf>,
    /// The ledger origin events are signed for.
    pub origin: String,
    /// One key per role; every role must be one of the service's.
    pub keys: Vec<RoleKey>,
    pub outbox_dir: PathBuf,
    pub outbox_limits: OutboxLimits,
    pub nats: NatsConfig,
    /// Who may call the HTTP API, and how much.
    pub api: ApiConfig,
}

/// The bearer tokens the HTTP API accepts and the bounds on its requests.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Tokens of this service only: another service's token is refused.
    pub tokens: ApiTokens,
    pub limits: HttpLimits,
}

impl ApiConfig {
    /// `tokens` with [`default_http_limits`].
    pub fn new(tokens: ApiTokens) -> ApiConfig {
        ApiConfig {
            tokens,
            limits: default_http_limits(),
        }
    }
}

/// The bounds of an emitting service's API unless flags say otherwise.
pub fn default_http_limits() -> HttpLimits {
    HttpLimits {
        concurrency_max: HTTP_CONCURRENCY_MAX,
        rate_per_second: HTTP_RATE_PER_SECOND,
        rate_burst: HTTP_RATE_BURST,
        body_bytes_max: REQUEST_BODY_BYTES_MAX,
        body_read_time_max: HTTP_BODY_READ_TIME_MAX,
    }
}

/// Runs the service until `shutdown` resolves (then stops accepting, lets requests and
/// publishes in flight finish briefly, flushes the outbox and returns `Ok`), or until a
/// fatal error.
pub async fn run(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = config.service;
    config
        .api
        .limits
        .check()
        .context("the HTTP limits of the service")?;
    for RoleKey { role, .. } in &config.keys {
        anyhow::ensure!(
            service.roles().contains(role),
            "the {service} service holds the roles {}; a {} key does not belong here",
            roles_text(service.roles()),
            role_name(*role)
        );
    }
    let missing: Vec<Role> = service
        .roles()
        .iter()
        .copied()
        .filter(|role| !config.keys.iter().any(|key| key.role == *role))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            "no key for the {} role(s): this {service} service will refuse their kinds",
            roles_text(&missing)
        );
    }

    let emitter = Emitter::open(EmitterConfig {
        outbox_limits: config.outbox_limits,
        ..EmitterConfig::new(
            service.name(),
            config.origin,
            config.keys,
            config.outbox_dir,
            config.nats,
        )
    })
    .await?;

    let served = serve(
        &config.listen,
        config.addr_file.as_deref(),
        router(emitter.clone(), service, &config.api),
        &emitter,
        service,
        shutdown,
    )
    .await;
    let stopped = emitter.shutdown().await;
    served?;
    stopped
}

async fn serve(
    listen: &SocketAddr,
    addr_file: Option<&FsPath>,
    app: Router,
    emitter: &Emitter,
    service: ServiceKind,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, service = service.name(), pending = emitter.pending_count(), "listening");
    if let Some(path) = addr_file {
        write_addr_file(path, addr)?;
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let mut stopped = stopped;
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    let outcome = tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down: no new requests, finishing those in flight");
            Ok(())
        }
        failure = emitter.failed() => Err(anyhow::anyhow!(failure)),
        ended = &mut server => Err(match ended {
            Ok(Ok(())) => anyhow::anyhow!("the HTTP server stopped unexpectedly"),
            Ok(Err(error)) => anyhow::Error::from(error).context("the HTTP server failed"),
            Err(error) => anyhow::Error::from(error).context("the HTTP server task failed"),
        }),
    };
    // Refuse new events and release `?wait=true` requests, so the drain is quick.
    emitter.begin_shutdown();
    let _ = stop.send(true);
    if !server.is_finished()
        && tokio::time::timeout(HTTP_DRAIN_MAX, &mut server)
            .await
            .is_err()
    {
        tracing::warn!("requests still running after {HTTP_DRAIN_MAX:?}; closing them");
        server.abort();
    }
    outcome
}

/// Writes the address atomically (temporary file, then rename), so a reader polling for
/// the file never sees half of it.
fn write_addr_file(path: &FsPath, addr: SocketAddr) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, format!("{addr}\n"))
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("writing the address file {}", path.display()))
}

/// The HTTP API over `emitter` behind its guard (tokens and limits of `api`), for
/// embedding and tests; [`run`] serves it.
pub fn router(emitter: Emitter, service: ServiceKind, api: &ApiConfig) -> Router {
    let guard = Guard::new(GuardConfig {
        realm: service.binary_name().to_string(),
        tokens: Some(api.tokens.clone()),
        limits: api.limits,
    });
    let app = Arc::new(App {
        emitter,
        service,
        guard: guard.clone(),
    });
    let routes = Router::new()
        .route("/v1/events", post(post_event))
        .route("/v1/receipts/{key_id}/{seq}", get(get_receipt))
        .route("/v1/receipts/{key_id}/{seq}/proof", get(get_proof))
        .route("/v1/kinds", get(get_kinds))
        .route("/v1/status", get(get_status))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The guard reads bodies whole within its limit first; this is a second line.
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(app);
    guard.apply(routes)
}

struct App {
    emitter: Emitter,
    service: ServiceKind,
    /// For the refusal counts in the status.
    guard: Guard,
}

/// `POST /v1/events` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitQuery {
    #[serde(default)]
    wait: bool,
}

/// A JSON error answer: `{"error": message, ...extra}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn error_with(
    status: StatusCode,
    message: impl Into<String>,
    extra: serde_json::Value,
) -> Response {
    let mut body = json!({ "error": message.into() });
    if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// axum answers extractor failures in plain text; ours are JSON, with 400 for any body
/// that is not a valid event request (axum would say 422 for well-formed JSON of the
/// wrong shape).
fn json_rejection(rejection: JsonRejection) -> Response {
    let status = match &rejection {
        JsonRejection::JsonDataError(_) | JsonRejection::JsonSyntaxError(_) => {
            StatusCode::BAD_REQUEST
        }
        other => other.status(),
    };
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body is larger than {REQUEST_BODY_BYTES_MAX} bytes")
    } else {
        rejection.body_text()
    };
    error(status, message)
}

async fn post_event(
    State(app): State<Arc<App>>,
    query: Result<Query<EmitQuery>, QueryRejection>,
    request: Result<Json<EventRequest>, JsonRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let Json(request) = match request {
        Ok(request) => request,
        Err(rejection) => return json_rejection(rejection),
    };
    let draft = match request.into_draft() {
        Ok(draft) => draft,
        Err(problem) => return error(StatusCode::BAD_REQUEST, problem),
    };
    let kind = draft.body.kind();
    let pending = match app.emitter.emit(draft).await {
        Ok(pending) => pending,
        Err(refusal) => return emit_error(&app, refusal),
    };
    tracing::info!(
        kind = kind_name(kind),
        key = pending.key_id,
        sequence = pending.emitter_sequence,
        event_id = pending.event_id,
        "event accepted into the outbox"
    );
    let pending_body = json!({
        "key_id": pending.key_id,
        "emitter_sequence": pending.emitter_sequence,
        "event_id": pending.event_id,
        "kind": kind_name(kind),
        "status": "pending",
    });
    if !query.wait {
        return (StatusCode::ACCEPTED, Json(pending_body)).into_response();
    }
    match app
        .emitter
        .wait_for_receipt(&pending.key_id, pending.emitter_sequence, RECEIPT_WAIT_MAX)
        .await
    {
        Ok(Some(receipt)) => receipt_answer(&receipt),
        Ok(None) => {
            let mut body = pending_body;
            body["error"] = json!(format!(
                "no receipt within {RECEIPT_WAIT_MAX:?}; the event stays in the outbox and will still be sequenced"
            ));
            if let Ok(current) = app
                .emitter
                .current_sequence(&pending.key_id, pending.emitter_sequence)
                && current != pending.emitter_sequence
            {
                body["resubmitted_as"] = resubmitted_as(&pending.key_id, current);
            }
            (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response()
        }
        Err(failure) => {
            let mut body = pending_body;
            body["error"] = json!(format!(
                "waiting for the receipt failed ({failure:#}); the event stays in the outbox"
            ));
            (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response()
        }
    }
}

/// Where a re-emitted event is pending now.
fn resubmitted_as(key_id: &str, sequence: u64) -> serde_json::Value {
    json!({ "key_id": key_id, "emitter_sequence": sequence })
}

/// 201 for an accepted event, 422 for a rejected one; the receipt either way.
fn receipt_answer(receipt: &EventReceipt) -> Response {
    #[derive(Serialize)]
    struct Answer<'a> {
        status: &'static str,
        #[serde(flatten)]
        receipt: &'a EventReceipt,
    }
    let (status, word) = if receipt.accepted {
        (StatusCode::CREATED, "accepted")
    } else {
        (StatusCode::UNPROCESSABLE_ENTITY, "rejected")
    };
    (
        status,
        Json(Answer {
            status: word,
            receipt,
        }),
    )
        .into_response()
}

fn emit_error(app: &App, refusal: EmitError) -> Response {
    let message = refusal.to_string();
    match refusal {
        EmitError::KindNotEmitted { kind, .. } => error_with(
            StatusCode::FORBIDDEN,
            format!(
                "the {} service does not emit {} events; it emits {}",
                app.service,
                kind_name(kind),
                app.emitter
                    .kinds()
                    .into_iter()
                    .map(kind_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({
                "kind": kind_name(kind),
                "service_kinds": app.emitter.kinds().into_iter().map(kind_name).collect::<Vec<_>>(),
            }),
        ),
        EmitError::NoKeyForRole { role, .. } => error_with(
            StatusCode::FORBIDDEN,
            message,
            json!({ "role": role_name(role) }),
        ),
        EmitError::RoleRequired { .. } | EmitError::RoleMismatch { .. } | EmitError::Invalid(_) => {
            error(StatusCode::BAD_REQUEST, message)
        }
        EmitError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, message),
        EmitError::OutboxFull(_) | EmitError::ShuttingDown => {
            let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            response
        }
        EmitError::Storage(_) => {
            tracing::error!("{message}");
            error(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
    }
}

async fn get_receipt(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Response {
    let (key_id, sequence) = match path {
        Ok(Path(path)) => path,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    match find_receipt(&app, &key_id, sequence).await {
        Ok(receipt) => (StatusCode::OK, Json(receipt)).into_response(),
        Err(response) => response,
    }
}

/// The receipt, or the error answer saying why there is none.
async fn find_receipt(app: &App, key_id: &str, sequence: u64) -> Result<EventReceipt, Response> {
    if !app.emitter.holds_key(key_id) {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("{key_id} is not a key of this {} service", app.service),
        ));
    }
    let found = app.emitter.receipt(key_id, sequence).await;
    // After the lookup, which may have re-emitted the event.
    let current = app
        .emitter
        .current_sequence(key_id, sequence)
        .unwrap_or(sequence);
    let pending = app.emitter.is_pending(key_id, current).unwrap_or(false);
    match found {
        Ok(Some(receipt)) => Ok(receipt),
        Ok(None) if pending && current != sequence => Err(error_with(
            StatusCode::NOT_FOUND,
            format!(
                "{key_id}/{sequence} was refused as out of order and its event re-emitted as {key_id}/{current}, which is pending: in the outbox, not sequenced yet"
            ),
            json!({ "status": "pending", "resubmitted_as": resubmitted_as(key_id, current) }),
        )),
        Ok(None) if pending => Err(error_with(
            StatusCode::NOT_FOUND,
            format!("{key_id}/{sequence} is pending: in the outbox, not sequenced yet"),
            json!({ "status": "pending" }),
        )),
        Ok(None) => Err(error_with(
            StatusCode::NOT_FOUND,
            format!(
                "no receipt for {key_id}/{sequence}: not emitted by this service, or not sequenced yet"
            ),
            json!({ "status": "unknown" }),
        )),
        Err(failure) if pending => Err(error_with(
            StatusCode::NOT_FOUND,
            format!(
                "{key_id}/{sequence} is pending (the receipt store cannot be asked now: {failure:#})"
            ),
            json!({ "status": "pending" }),
        )),
        Err(failure) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot look up the receipt: {failure:#}"),
        )),
    }
}

async fn get_proof(
    State(app): State<Arc<App>>,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Response {
    let (key_id, sequence) = match path {
        Ok(Path(path)) => path,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let receipt = match find_receipt(&app, &key_id, sequence).await {
        Ok(receipt) => receipt,
        Err(response) => return response,
    };
    match app.emitter.inclusion_proof(receipt.index).await {
        Ok(ProofReply::Proof { tlog_proof, .. }) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            tlog_proof,
        )
            .into_response(),
        Ok(ProofReply::NotYetCovered {
            ledger_size,
            checkpoint_size,
        }) => error_with(
            StatusCode::CONFLICT,
            format!(
                "entry {} is not covered by a signed checkpoint yet (latest checkpoint size {checkpoint_size}); retry after the next checkpoint",
                receipt.index
            ),
            json!({ "index": receipt.index, "ledger_size": ledger_size, "checkpoint_size": checkpoint_size }),
        ),
        Ok(ProofReply::Error { message }) => error(
            StatusCode::BAD_GATEWAY,
            format!("the sequencer refused the proof request: {message}"),
        ),
        Err(failure) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot get a proof now: {failure:#}"),
        ),
    }
}

async fn get_kinds(State(app): State<Arc<App>>) -> Response {
    let keys: Vec<_> = app
        .emitter
        .keys()
        .into_iter()
        .map(|key| json!({ "role": key.role, "key_id": key.key_id }))
        .collect();
    Json(json!({
        "service": app.service.name(),
        "roles": app.emitter.roles().into_iter().map(role_name).collect::<Vec<_>>(),
        "kinds": app.emitter.kinds().into_iter().map(kind_name).collect::<Vec<_>>(),
        "keys": keys,
    }))
    .into_response()
}

async fn get_status(State(app): State<Arc<App>>) -> Response {
    Json(json!({
        "service": app.service.name(),
        "pending": app.emitter.pending_count(),
        "nats": nats_state(&app.emitter),
        "shutting_down": app.emitter.is_shutting_down(),
        "keys": app.emitter.keys(),
        "http": {
            "refused": app.guard.refusals(),
            "limits": {
                "concurrency_max": app.guard.limits().concurrency_max,
                "rate_per_second": app.guard.limits().rate_per_second,
                "rate_burst": app.guard.limits().rate_burst,
                "body_bytes_max": app.guard.limits().body_bytes_max,
            },
        },
    }))
    .into_response()
}

fn nats_state(emitter: &Emitter) -> &'static str {
    if emitter.is_connected() {
        "connected"
    } else if emitter.is_attached() {
        "reconnecting"
    } else {
        "not connected yet"
    }
}

async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    let nats = nats_state(&app.emitter);
    if app.emitter.is_connected() && !app.emitter.is_shutting_down() {
        Json(json!({ "status": "ready", "nats": nats })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "nats": nats, "shutting_down": app.emitter.is_shutting_down() })),
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such route; see /v1/kinds, /v1/events, /v1/receipts/{key_id}/{seq}",
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|role| role_name(*role))
        .collect::<Vec<_>>()
        .join(", ")
}
