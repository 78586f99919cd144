//! [`Guard`]: the middleware layer in front of an API's routes — body size, a free slot,
//! the bearer token, the rate, then the body read whole — with JSON refusals (see the
//! crate documentation for the order and why).
//!
//! | refusal | status | headers |
//! |---|---|---|
//! | declared or actual body over `body_bytes_max` | 413 | |
//! | `concurrency_max` requests already in flight (no queue) | 503 | `Retry-After: 1` |
//! | no `Authorization: Bearer`, or another scheme | 401 | `WWW-Authenticate: Bearer realm="…"` |
//! | a malformed bearer credential | 400 | `WWW-Authenticate: Bearer realm="…", error="invalid_request"` |
//! | a token the API does not hold | 401 | `WWW-Authenticate: Bearer realm="…", error="invalid_token"` |
//! | over the rate | 429 | `Retry-After: <seconds>` |
//! | body not read whole within `body_read_time_max` | 408 | |
//!
//! 403 (`insufficient_scope`) is never the guard's answer: a token grants its service's
//! whole API, and what one service may emit is its routes' business.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::Serialize;
use serde_json::json;

use crate::rate::{RateLimiter, retry_after_secs};
use crate::tokens::{ApiTokens, is_b64token};

/// Largest `concurrency_max` a service may be configured with: far above what one
/// process should hold open, low enough that its slots bound memory.
pub const CONCURRENCY_MAX_LIMIT: usize = 4_096;

/// Paths every guarded API answers without a token and outside the rate limit, so that
/// load balancers and supervisors can probe it; still within the concurrency bound.
pub const OPEN_PATHS: &[&str] = &["/health", "/ready"];

/// `Retry-After` of a shed request: slots free up within milliseconds to seconds.
const SHED_RETRY_AFTER_SECS: u64 = 1;

/// Of each kind of refusal, the first is logged as a warning and then one in this many,
/// so that a flood does not flood the log; [`Guard::refusals`] has the counts.
const REFUSALS_LOGGED_EVERY: u64 = 100;

/// The bounds of one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Requests handled at once; one more is refused at once with 503.
    pub concurrency_max: usize,
    /// Requests a second, on average, outside the open paths.
    pub rate_per_second: u32,
    /// Requests taken at once after a quiet spell.
    pub rate_burst: u32,
    /// Largest request body.
    pub body_bytes_max: usize,
    /// Longest time to receive a request's body.
    pub body_read_time_max: Duration,
}

impl HttpLimits {
    /// Refuses limits that would refuse everything or bound nothing.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=CONCURRENCY_MAX_LIMIT).contains(&self.concurrency_max),
            "the concurrency limit must be 1 to {CONCURRENCY_MAX_LIMIT}, not {}",
            self.concurrency_max
        );
        anyhow::ensure!(
            self.rate_per_second >= 1,
            "the rate limit must be at least 1 request a second"
        );
        anyhow::ensure!(
            self.rate_burst >= 1,
            "the rate burst must be at least 1 request"
        );
        anyhow::ensure!(
            !self.body_read_time_max.is_zero(),
            "the body read time must be above zero"
        );
        Ok(())
    }
}

/// What a [`Guard`] is made from.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Names the API in `WWW-Authenticate` (e.g. `stockpile-depot`).
    pub realm: String,
    /// The tokens the API accepts; `None`: the API is public (the projector's).
    pub tokens: Option<ApiTokens>,
    pub limits: HttpLimits,
}

/// The layer in front of one API; clones share the same slots, bucket and counts.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: Option<ApiTokens>,
    limits: HttpLimits,
    /// `WWW-Authenticate` values: no credentials, a malformed one, an unknown token.
    challenge: [HeaderValue; 3],
    /// One permit per request in flight; `try_acquire` only, so nothing ever queues.
    slots: Arc<tokio::sync::Semaphore>,
    rate: RateLimiter,
    counts: Counts,
}

#[derive(Default)]
struct Counts {
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    shed: AtomicU64,
    too_large: AtomicU64,
    body_timed_out: AtomicU64,
}

/// Requests a guard refused since it was made, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Refusals {
    /// 401 and 400: no token, a malformed one or an unknown one.
    pub unauthorized: u64,
    /// 429.
    pub rate_limited: u64,
    /// 503: no free slot.
    pub shed: u64,
    /// 413.
    pub too_large: u64,
    /// 408.
    pub body_timed_out: u64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("tokens", &self.inner.tokens)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard with `config`'s limits (values below one are taken as one; check them
    /// first with [`HttpLimits::check`] to refuse them instead).
    pub fn new(config: GuardConfig) -> Guard {
        let realm: String = config
            .realm
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
            .collect();
        let challenge = |error: Option<&str>| {
            let text = match error {
                None => format!("Bearer realm=\"{realm}\""),
                Some(error) => format!("Bearer realm=\"{realm}\", error=\"{error}\""),
            };
            HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("Bearer"))
        };
        let limits = config.limits;
        Guard {
            inner: Arc::new(Inner {
                tokens: config.tokens,
                limits,
                challenge: [
                    challenge(None),
                    challenge(Some("invalid_request")),
                    challenge(Some("invalid_token")),
                ],
                slots: Arc::new(tokio::sync::Semaphore::new(
                    limits.concurrency_max.clamp(1, CONCURRENCY_MAX_LIMIT),
                )),
                rate: RateLimiter::new(limits.rate_per_second, limits.rate_burst),
                counts: Counts::default(),
            }),
        }
    }

    /// `router` behind this guard: every route and the fallbacks.
    pub fn apply<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        router.layer(axum::middleware::from_fn_with_state(
            self.clone(),
            guard_request,
        ))
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.inner.limits
    }

    /// Whether the API asks for a bearer token.
    pub fn requires_token(&self) -> bool {
        self.inner.tokens.is_some()
    }

    pub fn refusals(&self) -> Refusals {
        let counts = &self.inner.counts;
        Refusals {
            unauthorized: counts.unauthorized.load(Ordering::Relaxed),
            rate_limited: counts.rate_limited.load(Ordering::Relaxed),
            shed: counts.shed.load(Ordering::Relaxed),
            too_large: counts.too_large.load(Ordering::Relaxed),
            body_timed_out: counts.body_timed_out.load(Ordering::Relaxed),
        }
    }
}

async fn guard_request(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let inner = &*guard.inner;
    let limits = &inner.limits;
    if declared_length(request.headers())
        .is_some_and(|length| length > limits.body_bytes_max as u64)
    {
        return inner.too_large();
    }
    // Held until the handler has answered.
    let Ok(_slot) = inner.slots.clone().try_acquire_owned() else {
        return inner.shed();
    };
    if !OPEN_PATHS.contains(&request.uri().path()) {
        if let Some(tokens) = &inner.tokens
            && let Err(refusal) = check_bearer(tokens, request.headers())
        {
            return inner.unauthorized(refusal);
        }
        if let Err(wait) = inner.rate.check(Instant::now()) {
            return inner.rate_limited(wait);
        }
    }
    let (parts, body) = request.into_parts();
    let body = match read_body(body, limits).await {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge) => return inner.too_large(),
        Err(BodyRefusal::TimedOut) => return inner.body_timed_out(),
        Err(BodyRefusal::Unreadable(reason)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {reason}"),
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The `Content-Length` a request declares, if any (hyper refuses unparsable ones).
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why a request's credentials were refused (RFC 6750 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthRefusal {
    /// No `Authorization` header, or another scheme than Bearer: 401, no error code.
    Missing,
    /// `invalid_request`: 400.
    Malformed(&'static str),
    /// `invalid_token`: 401.
    Unknown,
}

fn check_bearer(tokens: &ApiTokens, headers: &HeaderMap) -> Result<(), AuthRefusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthRefusal::Missing);
    };
    if values.next().is_some() {
        return Err(AuthRefusal::Malformed("more than one Authorization header"));
    }
    let Ok(text) = value.to_str() else {
        return Err(AuthRefusal::Malformed(
            "the Authorization header is not ASCII",
        ));
    };
    let (scheme, credentials) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthRefusal::Missing);
    }
    let token = credentials.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(AuthRefusal::Malformed(
            "the bearer credential is not a token (letters, digits, - . _ ~ + /, then = padding)",
        ));
    }
    if tokens.verify(token) {
        Ok(())
    } else {
        Err(AuthRefusal::Unknown)
    }
}

enum BodyRefusal {
    TooLarge,
    TimedOut,
    Unreadable(String),
}

/// The whole body, within the limits.
async fn read_body(body: Body, limits: &HttpLimits) -> Result<Vec<u8>, BodyRefusal> {
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| BodyRefusal::Unreadable(error.to_string()))?;
            if bytes.len() + chunk.len() > limits.body_bytes_max {
                return Err(BodyRefusal::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(limits.body_read_time_max, read)
        .await
        .unwrap_or(Err(BodyRefusal::TimedOut))
}

/// A JSON error answer: `{"error": message}`.
fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Counts one refusal and logs the first of its kind and then one in
/// [`REFUSALS_LOGGED_EVERY`].
fn count(counter: &AtomicU64, what: &str) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n == 1 || n.is_multiple_of(REFUSALS_LOGGED_EVERY) {
        tracing::warn!(refused = n, "HTTP requests refused: {what}");
    }
}

impl Inner {
    fn too_large(&self) -> Response {
        count(&self.counts.too_large, "body too large");
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} bytes",
                self.limits.body_bytes_max
            ),
        )
    }

    fn shed(&self) -> Response {
        count(&self.counts.shed, "too many at once (shed)");
        let mut response = error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "busy: {} requests are in flight, the most this service handles at once; retry shortly",
                self.limits.concurrency_max
            ),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(SHED_RETRY_AFTER_SECS),
        );
        response
    }

    fn unauthorized(&self, refusal: AuthRefusal) -> Response {
        count(&self.counts.unauthorized, "no valid bearer token");
        let (status, challenge, message, code) = match refusal {
            AuthRefusal::Missing => (
                StatusCode::UNAUTHORIZED,
                &self.challenge[0],
                "this API needs a bearer token: send `Authorization: Bearer <token>`".to_string(),
                None,
            ),
            AuthRefusal::Malformed(why) => (
                StatusCode::BAD_REQUEST,
                &self.challenge[1],
                format!("malformed credentials: {why}"),
                Some("invalid_request"),
            ),
            AuthRefusal::Unknown => (
                StatusCode::UNAUTHORIZED,
                &self.challenge[2],
                "the bearer token is not one this service accepts".to_string(),
                Some("invalid_token"),
            ),
        };
        let mut body = json!({ "error": message });
        if let Some(code) = code {
            body["auth_error"] = json!(code);
        }
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge.clone());
        response
    }

    fn rate_limited(&self, wait: Duration) -> Response {
        count(&self.counts.rate_limited, "over the rate limit");
        let seconds = retry_after_secs(wait);
        let body = json!({
            "error": format!(
                "too many requests: this service takes {} a second (bursts of {}); retry in {} ms",
                self.limits.rate_per_second,
                self.limits.rate_burst,
                wait.as_millis()
            ),
            "retry_after_ms": u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        });
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }

    fn body_timed_out(&self) -> Response {
        count(&self.counts.body_timed_out, "body not received in time");
        error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?}",
                self.limits.body_read_time_max
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn limits() -> HttpLimits {
        HttpLimits {
            concurrency_max: 8,
            rate_per_second: 1_000,
            rate_burst: 1_000,
            body_bytes_max: 16,
            body_read_time_max: Duration::from_secs(5),
        }
    }

    fn guarded(tokens: Option<&str>, limits: HttpLimits) -> (Router, Guard) {
        let guard = Guard::new(GuardConfig {
            realm: "stockpile-test".into(),
            tokens: tokens.map(|text| ApiTokens::parse(text, "test").expect("token")),
            limits,
        });
        let router = Router::new()
            .route("/v1/echo", post(|body: String| async move { body }))
            .route("/v1/thing", get(|| async { "thing" }))
            .route("/health", get(|| async { "ok" }));
        (guard.apply(router), guard)
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: serde_json::Value,
        text: String,
    }

    async fn send(router: &Router, request: Request) -> Answer {
        let response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            text,
        }
    }

    fn request(method: Method, path: &str, authorization: Option<&str>, body: &str) -> Request {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(Body::from(body.to_string())).expect("request")
    }

    #[tokio::test]
    async fn bearer_tokens_per_rfc_6750() {
        let (router, guard) = guarded(Some(TOKEN), limits());
        let answer = send(&router, request(Method::GET, "/v1/thing", None, "")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            answer.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"stockpile-test\""
        );
        assert!(answer.body["error"].as_str().unwrap().contains("Bearer"));

        let bearer = |token: &str| format!("Bearer {token}");
        for (authorization, status, code) in [
            (
                bearer(OTHER),
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
            ),
            (format!("Basic {TOKEN}"), StatusCode::UNAUTHORIZED, None),
            (
                "Bearer".into(),
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
            ),
            (
                bearer("a,b"),
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
            ),
            (
                bearer(&format!("{TOKEN} x")),
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
            ),
        ] {
            let answer = send(
                &router,
                request(Method::GET, "/v1/thing", Some(&authorization), ""),
            )
            .await;
            assert_eq!(answer.status, status, "{authorization}: {}", answer.text);
            let challenge = answer.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
            match code {
                Some(code) => {
                    assert!(
                        challenge.ends_with(&format!("error=\"{code}\"")),
                        "{challenge}"
                    );
                    assert_eq!(answer.body["auth_error"], code);
                }
                None => assert_eq!(challenge, "Bearer realm=\"stockpile-test\""),
            }
            assert!(answer.body["error"].is_string(), "{}", answer.text);
        }
        // Two Authorization headers, even if one is right.
        let mut twice = request(Method::GET, "/v1/thing", Some(&bearer(TOKEN)), "");
        twice
            .headers_mut()
            .append(header::AUTHORIZATION, bearer(OTHER).parse().unwrap());
        assert_eq!(send(&router, twice).await.status, StatusCode::BAD_REQUEST);

        for authorization in [bearer(TOKEN), format!("bearer  {TOKEN}")] {
            let answer = send(
                &router,
                request(Method::GET, "/v1/thing", Some(&authorization), ""),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{authorization}");
            assert_eq!(answer.text, "thing");
        }
        // Unknown routes are guarded too; the probes are open.
        let answer = send(&router, request(Method::GET, "/v2/nothing", None, "")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        let answer = send(&router, request(Method::GET, "/health", None, "")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(guard.refusals().unauthorized, 8);
    }

    #[tokio::test]
    async fn bodies_are_bounded_in_size_and_time() {
        let (router, guard) = guarded(
            None,
            HttpLimits {
                body_read_time_max: Duration::from_millis(200),
                ..limits()
            },
        );
        let answer = send(
            &router,
            request(Method::POST, "/v1/echo", None, "sixteen bytes ok"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text, "sixteen bytes ok");
        // Declared too large: refused unread.
        let answer = send(
            &router,
            request(Method::POST, "/v1/echo", None, "seventeen bytes!!"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(answer.body["error"].as_str().unwrap().contains("16 bytes"));
        // Not declared (streamed), too large once read.
        let chunks =
            futures::stream::iter(["0123456789", "0123456789"].map(Ok::<_, std::io::Error>));
        let streamed = Request::post("/v1/echo")
            .body(Body::from_stream(chunks))
            .unwrap();
        assert_eq!(
            send(&router, streamed).await.status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // A body that never ends.
        let endless = Request::post("/v1/echo")
            .body(Body::from_stream(futures::stream::pending::<
                Result<String, std::io::Error>,
            >()))
            .unwrap();
        let answer = send(&router, endless).await;
        assert_eq!(
            answer.status,
            StatusCode::REQUEST_TIMEOUT,
            "{}",
            answer.text
        );
        assert!(answer.body["error"].is_string());
        let refusals = guard.refusals();
        assert_eq!((refusals.too_large, refusals.body_timed_out), (2, 1));
    }

    #[tokio::test]
    async fn over_the_rate_is_429_with_retry_after_then_it_recovers() {
        let (router, guard) = guarded(
            Some(TOKEN),
            HttpLimits {
                rate_per_second: 5,
                rate_burst: 2,
                ..limits()
            },
        );
        let authorized = || {
            request(
                Method::GET,
                "/v1/thing",
                Some(&format!("Bearer {TOKEN}")),
                "",
            )
        };
        for _ in 0..2 {
            assert_eq!(send(&router, authorized()).await.status, StatusCode::OK);
        }
        // Requests without a token do not use the budget up.
        for _ in 0..5 {
            let answer = send(&router, request(Method::GET, "/v1/thing", None, "")).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }
        let answer = send(&router, authorized()).await;
        assert_eq!(
            answer.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            answer.text
        );
        assert_eq!(answer.headers[header::RETRY_AFTER], "1");
        let wait = answer.body["retry_after_ms"]
            .as_u64()
            .expect("retry_after_ms");
        assert!((1..=200).contains(&wait), "{wait}");
        // The probes are outside the rate.
        let answer = send(&router, request(Method::GET, "/health", None, "")).await;
        assert_eq!(answer.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert_eq!(send(&router, authorized()).await.status, StatusCode::OK);
        assert_eq!(guard.refusals().rate_limited, 1);
    }

    #[tokio::test]
    async fn beyond_the_concurrency_limit_requests_are_shed_not_queued() {
        let (router, guard) = guarded(
            None,
            HttpLimits {
                concurrency_max: 2,
                ..limits()
            },
        );
        // Two requests whose bodies have not arrived hold both slots.
        let mut senders = Vec::new();
        let mut held = Vec::new();
        for _ in 0..2 {
            let (sender, receiver) =
                tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(1);
            let body = Body::from_stream(tokio_stream(receiver));
            let request = Request::post("/v1/echo").body(body).unwrap();
            let router = router.clone();
            held.push(tokio::spawn(async move { send(&router, request).await }));
            senders.push(sender);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        for path in ["/v1/thing", "/health"] {
            let answer = send(&router, request(Method::GET, path, None, "")).await;
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(answer.headers[header::RETRY_AFTER], "1");
            assert!(answer.body["error"].as_str().unwrap().contains("busy"));
        }
        // The held requests finish; their slots are free again.
        for sender in senders {
            sender.send(Ok("done".into())).await.unwrap();
        }
        for request in held {
            let answer = request.await.unwrap();
            assert_eq!(
                (answer.status, answer.text.as_str()),
                (StatusCode::OK, "done")
            );
        }
        assert_eq!(
            send(&router, request(Method::GET, "/v1/thing", None, ""))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(guard.refusals().shed, 2);
    }

    /// A receiver as a stream (ends when every sender is gone).
    fn tokio_stream<T: Send + 'static>(
        receiver: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures::Stream<Item = T> {
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
    }

    #[test]
    fn limits_that_bound_nothing_or_refuse_everything_are_refused() {
        limits().check().expect("valid");
        for (limits, says) in [
            (
                HttpLimits {
                    concurrency_max: 0,
                    ..limits()
                },
                "concurrency",
            ),
            (
                HttpLimits {
                    concurrency_max: CONCURRENCY_MAX_LIMIT + 1,
                    ..limits()
                },
                "concurrency",
            ),
            (
                HttpLimits {
                    rate_per_second: 0,
                    ..limits()
                },
                "rate limit",
            ),
            (
                HttpLimits {
                    rate_burst: 0,
                    ..limits()
                },
                "burst",
            ),
            (
                HttpLimits {
                    body_read_time_max: Duration::ZERO,
                    ..limits()
                },
                "read time",
            ),
        ] {
            let error = limits.check().expect_err(says);
            assert!(error.to_string().contains(says), "{error}");
        }
    }
}
