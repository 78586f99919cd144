//! Who may call the HTTP APIs, and how much, at the boundary: the emitting services as
//! real processes answer only their own bearer tokens (from a file, several at once for
//! rotation, or the environment) and refuse to start without one; a refused request
//! emits nothing (outbox and ledger unchanged); requests over the rate get 429 with
//! `Retry-After` and the service recovers; beyond the concurrency limit requests are shed
//! with 503; the probes stay open. The projector binary is read-only (405 for every
//! other method, nothing changes) and bounded by its flags.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stockpile_emitter::json::{request_for_event, service_for_role};
use stockpile_nats::ledger::read_ledger;
use stockpile_proto::envelope::{decode_entry, decode_submission};

use crate::services::{
    Emitter, emitter_args, launch_emitter, scenario_events, test_token, write_token_file,
};
use crate::support::live::Live;
use crate::support::nats::NatsServer;
use crate::support::system::{
    HttpAnswer, Service, binary, http, http_with_headers, jetstream_as, ledger_size, nats_args,
    runtime, start_sequencer, wait_for_ledger_size,
};

/// A NATS URL nobody answers: with `--wait-for-nats` a service serves its API and keeps
/// accepted events in its outbox (enough for the limits, which sit in front of it all).
const NOWHERE: &str = "nats://127.0.0.1:1";

/// How long a test waits for a service to settle (ready, a slot freed).
const SETTLE: Duration = Duration::from_secs(30);

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A request with this `Authorization` header, or none.
fn call(
    addr: &str,
    authorization: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> HttpAnswer {
    let headers: Vec<(&str, &str)> = authorization
        .map(|value| ("Authorization", value))
        .into_iter()
        .collect();
    http_with_headers(addr, method, path, &headers, body)
}

/// The JSON error of an answer, checked to be one.
#[track_caller]
fn json_error(answer: &HttpAnswer) -> Value {
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("not JSON: {}", answer.text()));
    let message = body["error"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "no error sentence: {body}");
    body
}

/// The service's status as its token holder sees it.
#[track_caller]
fn status_of(emitter: &Emitter) -> Value {
    let (status, body) = emitter.http("GET", "/v1/status", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON status")
}

/// What the service has signed: events pending in its outbox and sequences used.
fn outbox_of(emitter: &Emitter) -> (u64, Vec<u64>) {
    let status = status_of(emitter);
    let sequences = status["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["last_sequence"].as_u64().expect("last_sequence"))
        .collect();
    (status["pending"].as_u64().expect("pending"), sequences)
}

/// A depot event without an id (the service gives it one).
fn lot_declared(lot: &str) -> String {
    json!({
        "actor": "depot officer 12",
        "body": {"kind": "lot_declared", "lot_id": lot, "type_id": "PMN",
                 "manufacturer_lot_number": "PMN-88-114", "lot_number_absent_reason": "",
                 "quantity": 1200, "site_id": "D1", "owner": "Ministry of Defence",
                 "custodian": "Depot D1", "basis": "initial", "basis_date": "2024-06-27",
                 "request_id": null}
    })
    .to_string()
}

/// The depot service's keys of `scenario_events`.
fn depot_keys(
    keys: &stockpile_scenario::ScenarioKeys,
) -> [(&'static str, &stockpile_core::keys::SignerKey); 3] {
    [
        ("registrar", &keys.registrar),
        ("depot", &keys.depot),
        ("inspector", &keys.inspector),
    ]
}

#[track_caller]
fn wait_until(what: &str, service: &Service, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen:\n{}",
            service.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_emitting_service_answers_only_its_own_tokens_and_a_refusal_emits_nothing() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (events, keys) = scenario_events();
    let sequencer = start_sequencer(
        &nats,
        dir.path(),
        "main",
        &keys.trust_root().to_json(),
        &keys.log,
        &[],
    );
    // The depot holds two tokens (one being rotated out); demil takes its own from the
    // environment.
    let (old, new) = (test_token("depot-old"), test_token("depot-new"));
    let token_file = write_token_file(dir.path(), "depot", &["# rotation", &old, &new]);
    let (mut args, envs) = nats_args(&nats.config_for("depot"));
    args.extend(["--token-file".into(), token_file.display().to_string()]);
    let depot = launch_emitter(
        dir.path(),
        "depot",
        &keys.origin,
        &depot_keys(&keys),
        (args, envs),
        &old,
    );
    let demil_token = test_token("demil");
    let (args, mut envs) = nats_args(&nats.config_for("demil"));
    envs.push(("STOCKPILE_API_TOKEN".into(), demil_token.clone()));
    let demil = launch_emitter(
        dir.path(),
        "demil",
        &keys.origin,
        &[("demil", &keys.demil), ("certifier", &keys.certifier)],
        (args, envs),
        &demil_token,
    );

    // The probes answer anyone.
    let (status, body) = http(&depot.addr, "GET", "/health", None);
    assert_eq!(status, 200, "{body}");
    wait_until("the depot being ready", &depot.service, || {
        http(&depot.addr, "GET", "/ready", None).0 == 200
    });

    let depot_events: Vec<String> = events
        .iter()
        .filter(|(submission, _)| service_for_role(submission.role.expect("a role")) == "depot")
        .take(3)
        .map(|(submission, event)| {
            request_for_event(event, submission.role.expect("a role")).to_string()
        })
        .collect();

    // Every other route needs a token; without one, or with another service's, or a
    // malformed one, nothing is read, signed or written.
    let realm = "Bearer realm=\"stockpile-depot\"";
    let refusals: [(Option<String>, u16, String); 5] = [
        (None, 401, realm.to_string()),
        (
            Some(bearer(&demil_token)),
            401,
            format!("{realm}, error=\"invalid_token\""),
        ),
        (Some(format!("Basic {old}")), 401, realm.to_string()),
        (
            Some("Bearer".into()),
            400,
            format!("{realm}, error=\"invalid_request\""),
        ),
        (
            Some(bearer(&format!("{old}!"))),
            400,
            format!("{realm}, error=\"invalid_request\""),
        ),
    ];
    let mut refused = 0;
    for (authorization, expected, challenge) in &refusals {
        for (method, path, body) in [
            ("POST", "/v1/events", Some(depot_events[0].as_str())),
            (
                "POST",
                "/v1/events?wait=true",
                Some(depot_events[0].as_str()),
            ),
            ("GET", "/v1/receipts/depot/1", None),
            ("GET", "/v1/receipts/depot/1/proof", None),
            ("GET", "/v1/kinds", None),
            ("GET", "/v1/status", None),
            ("GET", "/v2/nothing", None),
        ] {
            let answer = call(&depot.addr, authorization.as_deref(), method, path, body);
            assert_eq!(
                answer.status,
                *expected,
                "{authorization:?} {method} {path}: {}",
                answer.text()
            );
            assert_eq!(
                answer.header("www-authenticate"),
                Some(challenge.as_str()),
                "{authorization:?}"
            );
            json_error(&answer);
            refused += 1;
        }
    }
    assert_eq!(
        outbox_of(&depot),
        (0, vec![0, 0, 0]),
        "nothing signed, nothing in the outbox"
    );
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    assert_eq!(
        rt.block_on(ledger_size(&js)),
        0,
        "nothing reached the ledger"
    );
    assert_eq!(
        status_of(&depot)["http"]["refused"]["unauthorized"],
        refused
    );

    // Either of the depot's tokens works; the refused attempts left no trace in between.
    for (token, request) in [(&old, &depot_events[0]), (&new, &depot_events[1])] {
        let answer = call(
            &depot.addr,
            Some(&bearer(token)),
            "POST",
            "/v1/events?wait=true",
            Some(request),
        );
        assert_eq!(
            answer.status,
            201,
            "{}\n{}",
            answer.text(),
            sequencer.log_tail()
        );
    }
    let answer = call(
        &depot.addr,
        None,
        "POST",
        "/v1/events",
        Some(&depot_events[2]),
    );
    assert_eq!(answer.status, 401);
    rt.block_on(wait_for_ledger_size(&js, 2, &[&sequencer]));
    std::thread::sleep(Duration::from_millis(500));
    let mut ids = Vec::new();
    rt.block_on(read_ledger(&js, 0, |message| {
        let entry = decode_entry(&message.entry).expect("entry");
        ids.push(
            decode_submission(&entry.submission)
                .expect("submission")
                .event
                .event_id,
        );
        Ok(())
    }))
    .expect("read the ledger");
    let expected: Vec<String> = depot_events[..2]
        .iter()
        .map(|request| {
            serde_json::from_str::<Value>(request).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, expected, "exactly the two events sent with a token");
    assert_eq!(outbox_of(&depot).0, 0);

    // demil takes its token from the environment, and not the depot's.
    let (status, body) = demil.http("GET", "/v1/kinds", None);
    assert_eq!(status, 200, "{body}");
    let answer = call(&demil.addr, Some(&bearer(&old)), "GET", "/v1/kinds", None);
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(
        answer.header("www-authenticate"),
        Some("Bearer realm=\"stockpile-demil\", error=\"invalid_token\"")
    );

    // A body over the limit is refused unread, token or not.
    let large =
        json!({"actor": "a", "body": {"kind": "loss_reported", "filler": "x".repeat(100 * 1024)}})
            .to_string();
    for authorization in [None, Some(bearer(&old))] {
        let answer = call(
            &depot.addr,
            authorization.as_deref(),
            "POST",
            "/v1/events",
            Some(&large),
        );
        assert_eq!(answer.status, 413, "{}", answer.text());
        assert!(
            json_error(&answer)["error"]
                .as_str()
                .unwrap()
                .contains("larger than")
        );
    }
}

#[test]
fn a_service_without_a_usable_token_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, keys) = scenario_events();
    let empty = write_token_file(dir.path(), "empty", &["# no token yet", ""]);
    let short = write_token_file(dir.path(), "short", &["0123456789"]);
    let missing = dir.path().join("missing.token");
    // (--token-file, STOCKPILE_API_TOKEN, what the error says)
    let cases = [
        (None, None, "no API token"),
        (None, Some(""), "no API token"),
        (Some(&missing), None, "missing.token"),
        (Some(&empty), None, "holds no token"),
        (Some(&short), None, "a token of 10 characters"),
    ];
    for (number, (token_file, env_token, says)) in cases.into_iter().enumerate() {
        let mut args = vec![
            "--nats-url".to_string(),
            NOWHERE.into(),
            "--wait-for-nats".into(),
        ];
        if let Some(path) = token_file {
            args.extend(["--token-file".into(), path.display().to_string()]);
        }
        let envs: Vec<(String, String)> = env_token
            .map(|token| ("STOCKPILE_API_TOKEN".to_string(), token.to_string()))
            .into_iter()
            .collect();
        args.extend(emitter_args(
            dir.path(),
            "depot",
            &keys.origin,
            &depot_keys(&keys),
        ));
        let mut service = Service::start(
            &format!("depot-{number}"),
            binary("stockpile-depot"),
            args,
            envs,
            dir.path(),
        );
        assert_eq!(
            service.wait_exit(SETTLE),
            Some(1),
            "case {number}: {}",
            service.log()
        );
        let log = service.log();
        assert!(log.contains(says), "case {number}: {log}");
        assert!(
            !log.contains("0123456789\n"),
            "the token is not quoted: {log}"
        );
        assert!(
            !dir.path().join("depot.addr").exists(),
            "case {number} listened"
        );
    }
}

/// The depot, NATS away (`--wait-for-nats`), with these limit flags.
fn offline_depot(dir: &std::path::Path, limits: &[&str]) -> Emitter {
    let (_, keys) = scenario_events();
    let token = test_token("depot");
    let token_file = write_token_file(dir, "depot", &[&token]);
    let mut args = vec![
        "--nats-url".to_string(),
        NOWHERE.into(),
        "--wait-for-nats".into(),
        "--token-file".into(),
        token_file.display().to_string(),
    ];
    args.extend(limits.iter().map(|flag| flag.to_string()));
    launch_emitter(
        dir,
        "depot",
        &keys.origin,
        &depot_keys(&keys),
        (args, vec![]),
        &token,
    )
}

#[test]
fn over_its_rate_a_service_answers_429_with_retry_after_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let depot = offline_depot(
        dir.path(),
        &["--http-rate-per-second", "1", "--http-rate-burst", "3"],
    );
    let token = bearer(&depot.token);

    // The burst, then 429. Events posted while over the rate are not written.
    let mut taken = 0;
    let mut accepted = 0;
    let limited = loop {
        let answer = call(
            &depot.addr,
            Some(&token),
            "POST",
            "/v1/events",
            Some(&lot_declared(&format!("L-{taken}"))),
        );
        match answer.status {
            202 => accepted += 1,
            429 => break answer,
            other => panic!("HTTP {other}: {}", answer.text()),
        }
        taken += 1;
        assert!(
            taken < 20,
            "no 429 after {taken} requests at a rate of 1 a second"
        );
    };
    assert!(accepted >= 3, "the burst of 3 was taken: {accepted}");
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body = json_error(&limited);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many requests"),
        "{body}"
    );
    let wait = body["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(wait <= 1_000, "{wait}");

    // Meanwhile the probes answer, and a request without a token is refused as such
    // (it does not use the budget up).
    assert_eq!(http(&depot.addr, "GET", "/health", None).0, 200);
    assert_ne!(http(&depot.addr, "GET", "/ready", None).0, 429);
    assert_eq!(
        call(&depot.addr, None, "GET", "/v1/status", None).status,
        401
    );

    // It recovers after the wait it asked for.
    std::thread::sleep(Duration::from_secs(retry_after));
    let status = status_of(&depot);
    assert_eq!(
        status["pending"], accepted,
        "exactly the accepted events are in the outbox"
    );
    assert!(
        status["http"]["refused"]["rate_limited"].as_u64().unwrap() >= 1,
        "{status}"
    );
    assert_eq!(status["http"]["limits"]["rate_per_second"], 1);
}

/// Opens a connection that sends an authorized POST's head and part of its body, then
/// stalls: the request holds one of the service's slots until the connection closes.
fn stalled_post(addr: &str, token: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"actor\": "
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream
}

#[test]
fn beyond_its_concurrency_a_service_sheds_requests_with_503_and_recovers() {
    /// Stalled requests older than this may be near the service's body timeout.
    const RESTALL_AFTER: Duration = Duration::from_secs(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let depot = offline_depot(dir.path(), &["--http-concurrency-max", "2"]);
    // Three stalled requests for two slots. Each is released when the service's body
    // timeout ends it, so if shedding is not seen soon (a slow machine), stall afresh.
    let stall = || -> Vec<TcpStream> {
        (0..3)
            .map(|_| stalled_post(&depot.addr, &depot.token))
            .collect()
    };
    let mut held = stall();
    let mut stalled_at = Instant::now();

    // Both slots taken: shed at once, the probes included (503, not queued).
    let started = Instant::now();
    loop {
        let probe = call(
            &depot.addr,
            Some(&bearer(&depot.token)),
            "GET",
            "/v1/kinds",
            None,
        );
        if probe.status == 503 {
            break;
        }
        assert!(
            started.elapsed() < SETTLE,
            "no request was shed (last answer {}):\n{}",
            probe.status,
            depot.service.log_tail()
        );
        if stalled_at.elapsed() > RESTALL_AFTER {
            held = stall();
            stalled_at = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for path in ["/v1/status", "/health"] {
        let answer = call(&depot.addr, Some(&bearer(&depot.token)), "GET", path, None);
        assert_eq!(answer.status, 503, "{path}: {}", answer.text());
        assert_eq!(answer.header("retry-after"), Some("1"), "{path}");
        assert!(
            json_error(&answer)["error"]
                .as_str()
                .unwrap()
                .contains("busy"),
            "{path}"
        );
    }
    assert!(started.elapsed() < SETTLE);

    // The stalled requests go away; so does the shedding, and they wrote nothing.
    drop(held);
    wait_until("the slots being freed", &depot.service, || {
        call(
            &depot.addr,
            Some(&bearer(&depot.token)),
            "GET",
            "/v1/status",
            None,
        )
        .status
            == 200
    });
    let status = status_of(&depot);
    assert_eq!(status["pending"], 0, "{status}");
    assert!(
        status["http"]["refused"]["shed"].as_u64().unwrap() >= 3,
        "{status}"
    );
    let (code, body) = depot.http("POST", "/v1/events", Some(&lot_declared("L-1")));
    assert_eq!(code, 202, "{body}");
}

#[test]
fn the_projector_binary_is_read_only_and_bounded_by_its_flags() {
    let mut live = Live::start(17, 0);
    let total = live.publish(usize::MAX);
    let projector = live.projector_with(
        "main",
        &[],
        &[
            "--state-name",
            "Republic of Testland",
            "--http-rate-per-second",
            "2",
            "--http-rate-burst",
            "20",
        ],
    );
    let summary = projector.wait_for_entries(total);
    let addr = projector.addr();
    let lot_id = {
        let (status, lots) = projector.get_json("/v1/lots");
        assert_eq!(status, 200, "{lots}");
        lots["lot_ids"][0].as_str().expect("a lot").to_string()
    };

    // Read-only: every other method is 405 JSON, on views, proofs and the dashboard.
    let year = summary["as_of"]["recorded_at"]
        .as_i64()
        .map(|ms| stockpile_core::time::TimestampMs(ms).date().year())
        .expect("a time");
    for path in [
        "/v1/summary".to_string(),
        format!("/v1/lots/{lot_id}"),
        format!("/v1/reports/article7/{year}"),
        "/v1/entries/0".to_string(),
        "/v1/checkpoints".to_string(),
        "/".to_string(),
        "/health".to_string(),
    ] {
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            // The rate (2 a second) applies to refusals too; wait out a 429.
            let answer = loop {
                let answer = call(&addr, None, method, &path, Some(r#"{"quantity": 0}"#));
                if answer.status != 429 {
                    break answer;
                }
                std::thread::sleep(Duration::from_millis(500));
            };
            assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text());
            assert!(
                json_error(&answer)["error"]
                    .as_str()
                    .unwrap()
                    .contains("read-only")
            );
            assert!(
                answer.header("allow").unwrap_or("").contains("GET"),
                "{method} {path}"
            );
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let (status, after) = projector.get_json("/v1/summary");
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, summary, "nothing changed");

    // Over its rate: 429 with Retry-After; the probes still answer.
    let mut sent = 0;
    let limited = loop {
        let answer = call(&addr, None, "GET", "/v1/summary", None);
        if answer.status == 429 {
            break answer;
        }
        assert_eq!(answer.status, 200, "{}", answer.text());
        sent += 1;
        assert!(sent <= 40, "no 429 after {sent} requests at 2 a second");
    };
    assert!(limited.header("retry-after").is_some());
    json_error(&limited);
    assert_eq!(http(&addr, "GET", "/health", None).0, 200);
    assert_eq!(http(&addr, "GET", "/ready", None).0, 200);
}
