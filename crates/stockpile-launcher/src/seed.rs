//! Seeding the demo: every event of the scenario posted to the emitting service that
//! owns its role, through the services' public HTTP API — the way a real depot,
//! demilitarisation or export-control system would submit them.
//!
//! Each service publishes the events of each of its keys in order, but two services —
//! or two keys of one service — race each other to the sequencer. Events of one signing
//! role in a row go out without waiting (`202`); the last one before another role's
//! turn is posted with `?wait=true`, so it — and everything that role sent before it — is
//! in the ledger before anything that may depend on it is sent (a lot declared before
//! it is shipped, shipped before it is counted or destroyed).
//!
//! Each request carries its service's bearer token. A request the service turns away
//! before reading it — 429 over its rate, 503 busy or its outbox full — emitted
//! nothing, so it is sent again after the wait the service asks for (at most
//! [`REFUSALS_PER_EVENT_MAX`] times, each wait at most [`RETRY_WAIT_MAX`]).

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;
use stockpile_emitter::json::{request_for_event, service_for_role};
use stockpile_proto::envelope::decode_submission;
use stockpile_scenario::ScenarioConfig;

/// How long one request may take (a `?wait=true` waits for sequencing).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes of an answer read at most.
const ANSWER_BYTES_MAX: u64 = 64 * 1024;
/// How often progress is logged when stderr is not a terminal.
const PROGRESS_LOG_EVERY: u64 = 2_000;
/// Times one event may be turned away (429, 503) before seeding gives up: a service
/// that stays busy this long has a problem to look at in its log.
pub const REFUSALS_PER_EVENT_MAX: u32 = 60;
/// Longest pause before sending a turned-away event again, whatever the service asks.
pub const RETRY_WAIT_MAX: Duration = Duration::from_secs(5);
/// Pause when a refusal says nothing of how long to wait.
const RETRY_WAIT_DEFAULT: Duration = Duration::from_millis(200);

/// One emitting service's API: where it listens and its bearer token.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    pub token: String,
}

/// What seeding did.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    /// Events posted (each becomes one ledger entry).
    pub events: u64,
    /// Known to be accepted or refused at the barriers (`?wait=true`).
    pub accepted_at_barriers: u64,
    pub rejected_at_barriers: u64,
    /// Scenario submissions no service can send (signed by a key no service holds).
    pub skipped: u64,
    /// Requests sent again after a 429 or 503.
    pub retried: u64,
    pub took: Duration,
}

/// Posts every event of `scenario` to the service of its role (`services`: service
/// name → its endpoint).
pub fn seed(
    scenario: &ScenarioConfig,
    services: &BTreeMap<&'static str, Endpoint>,
) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .into();
    let mut requests = Vec::new();
    let mut seeded = Seeded::default();
    for submission in stockpile_scenario::submissions(scenario) {
        let Some(role) = submission.role else {
            seeded.skipped += 1;
            continue;
        };
        let event = decode_submission(&submission.bytes)
            .context("a scenario submission does not decode")?
            .event;
        requests.push((
            service_for_role(role),
            role,
            request_for_event(&event, role),
        ));
    }
    let progress = progress_bar(requests.len() as u64);
    for (position, (service, role, request)) in requests.iter().enumerate() {
        // A service publishes each of its keys' events in order, but not one key's
        // against another's (the depot service signs as depot, registrar and inspector):
        // wait at every change of signing role, not only of service.
        let next = requests.get(position + 1).map(|(_, role, _)| *role);
        let barrier = next != Some(*role);
        let endpoint = services
            .get(service)
            .with_context(|| format!("no {service} service"))?;
        let path = if barrier {
            "/v1/events?wait=true"
        } else {
            "/v1/events"
        };
        let url = format!("http://{}{path}", endpoint.addr);
        let body = request.to_string();
        let mut refusals = 0;
        let (status, body) = loop {
            let mut response = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", &format!("Bearer {}", endpoint.token))
                .send(&body)
                .with_context(|| format!("posting an event to {service} at {url}"))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let answer = response
                .body_mut()
                .with_config()
                .limit(ANSWER_BYTES_MAX)
                .read_to_string()
                .unwrap_or_default();
            if !matches!(status, 429 | 503) || refusals >= REFUSALS_PER_EVENT_MAX {
                break (status, answer);
            }
            refusals += 1;
            seeded.retried += 1;
            std::thread::sleep(retry_wait(&answer, retry_after));
        };
        match status {
            202 => {}
            201 => seeded.accepted_at_barriers += 1,
            422 => seeded.rejected_at_barriers += 1,
            _ => anyhow::bail!(
                "{service} answered HTTP {status} to event {}: {}",
                request["event_id"],
                answer_error(&body)
            ),
        }
        seeded.events += 1;
        progress.advance(seeded.events);
    }
    progress.finish();
    seeded.took = started.elapsed();
    Ok(seeded)
}

/// How long to wait before sending a turned-away request again: the answer's
/// `retry_after_ms` (exact), else its `Retry-After` (whole seconds), at most
/// [`RETRY_WAIT_MAX`].
fn retry_wait(answer: &str, retry_after: Option<Duration>) -> Duration {
    serde_json::from_str::<Value>(answer)
        .ok()
        .and_then(|value| value.get("retry_after_ms").and_then(Value::as_u64))
        .map(Duration::from_millis)
        .or(retry_after)
        .unwrap_or(RETRY_WAIT_DEFAULT)
        .min(RETRY_WAIT_MAX)
}

/// A bar on a terminal, a log line now and then elsewhere.
enum Progress {
    Bar(indicatif::ProgressBar),
    Log { total: u64 },
}

fn progress_bar(total: u64) -> Progress {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "seeding {bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Progress::Bar(bar)
    } else {
        Progress::Log { total }
    }
}

impl Progress {
    fn advance(&self, done: u64) {
        match self {
            Progress::Bar(bar) => bar.set_position(done),
            Progress::Log { total } => {
                if done.is_multiple_of(PROGRESS_LOG_EVERY) {
                    tracing::info!("seeded {done} of {total} events");
                }
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// The `error` of a JSON answer, or the answer.
pub fn answer_error(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|value| value.get("error").and_then(Value::as_str).map(String::from))
        .unwrap_or_else(|| body.to_string())
}
