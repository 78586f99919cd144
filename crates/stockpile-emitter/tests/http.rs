//! The HTTP API without NATS: the router over an offline emitter on 127.0.0.1:0, and
//! `run` itself (waiting for an unreachable NATS), driven by a raw HTTP/1.1 client.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use stockpile_emitter::outbox::{Outbox, OutboxLimits};
use stockpile_emitter::service::router;
use stockpile_emitter::{Emitter, ServiceConfig, ServiceKind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Answer {
    status: u16,
    content_type: String,
    www_authenticate: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }
    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {}", self.body))
            .to_owned()
    }
}

/// One request with the test token on its own connection (`Connection: close`), the
/// answer read to the end.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let bearer = format!("Bearer {API_TOKEN}");
    request_as(addr, Some(&bearer), method, path, body).await
}

/// [`request`] with this `Authorization` header, or none.
async fn request_as(
    addr: SocketAddr,
    authorization: Option<&str>,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(authorization) = authorization {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    if let Some((content_type, bytes)) = body {
        if !content_type.is_empty() {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", bytes.len()));
    }
    head.push_str("\r\n");
    let (mut reader, mut writer) = stream.split();
    let payload: Vec<u8> = [head.as_bytes(), body.map(|(_, b)| b).unwrap_or(&[])].concat();
    // Write and read at once: for an oversized body the server answers (and may close)
    // before reading it all.
    let write = async {
        let _ = writer.write_all(&payload).await;
    };
    let read = async {
        let mut raw = Vec::new();
        let _ = reader.read_to_end(&mut raw).await;
        raw
    };
    let ((), raw) = tokio::join!(write, read);
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head:?}"));
    let header = |name: &str| {
        head.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let body = if header("transfer-encoding").eq_ignore_ascii_case("chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        content_type: header("content-type"),
        www_authenticate: header("www-authenticate"),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

async fn post_json(addr: SocketAddr, path: &str, value: &Value) -> Answer {
    let bytes = serde_json::to_vec(value).unwrap();
    request(addr, "POST", path, Some(("application/json", &bytes))).await
}

/// Serves the router over an offline emitter; the emitter is returned for inspection.
async fn start(
    dir: &std::path::Path,
    keys: Vec<stockpile_emitter::RoleKey>,
) -> (SocketAddr, Emitter) {
    let emitter = Emitter::open_offline(config(dir, keys)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(emitter.clone(), ServiceKind::Depot, &api());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, emitter)
}

fn event(body: Value) -> Value {
    json!({ "actor": "officer 7", "body": body })
}

#[tokio::test]
async fn an_event_is_accepted_into_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, emitter) = start(dir.path(), depot_keys()).await;
    let answer = post_json(addr, "/v1/events", &event(lot_declared_json("LOT-1"))).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["key_id"], "test-depot");
    assert_eq!(body["emitter_sequence"], 1);
    assert_eq!(body["event_id"], "depot-test-depot-1");
    assert_eq!(body["kind"], "lot_declared");
    assert_eq!(emitter.pending_count(), 1);

    // Every optional field, and a registrar kind with the `site_kind` spelling.
    let full = json!({
        "event_id": "site-a-registration",
        "actor": "registrar",
        "occurred_at_ms": 1_700_000_000_000_i64,
        "evidence": [{"kind": "photo", "sha256": "ab".repeat(32), "description": "gate"}],
        "role": "registrar",
        "body": {
            "kind": "site_registered", "site_id": "SITE-A", "name": "Depot A",
            "site_kind": "depot", "country_code": "US", "in_korean_peninsula": false
        }
    });
    let answer = post_json(addr, "/v1/events", &full).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.json()["key_id"], "test-registrar");
    assert_eq!(answer.json()["event_id"], "site-a-registration");

    let status = request(addr, "GET", "/v1/status", None).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["pending"], 2);
    assert_eq!(status.json()["nats"], "not connected yet");
}

#[tokio::test]
async fn malformed_requests_get_400_json_saying_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, emitter) = start(dir.path(), depot_keys()).await;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "parse"),
        (b"[1, 2]".to_vec(), "invalid type"),
        (
            serde_json::to_vec(&json!({"body": lot_declared_json("L")})).unwrap(),
            "actor",
        ),
        (
            serde_json::to_vec(&event(json!({"kind": "lot_teleported"}))).unwrap(),
            "lot_teleported",
        ),
        (
            serde_json::to_vec(&event(json!({"kind": "lot_declared", "lot_id": "L"}))).unwrap(),
            "missing field",
        ),
        (
            serde_json::to_vec(&json!({"actor": "a", "body": lot_declared_json("L"), "colour": 1}))
                .unwrap(),
            "colour",
        ),
        (
            serde_json::to_vec(
                &json!({"actor": "a", "body": lot_declared_json("L"), "occurred_at_ms": "soon"}),
            )
            .unwrap(),
            "occurred_at_ms",
        ),
        (
            serde_json::to_vec(
                &json!({"actor": "a", "body": lot_declared_json("L"), "role": "janitor"}),
            )
            .unwrap(),
            "janitor",
        ),
        // Well-formed JSON, but the wire format refuses it: an empty lot id.
        (
            serde_json::to_vec(&event(lot_declared_json(""))).unwrap(),
            "lot_id",
        ),
        // In the future.
        (
            serde_json::to_vec(
                &json!({"actor": "a", "body": lot_declared_json("L"), "occurred_at_ms": i64::MAX}),
            )
            .unwrap(),
            "future",
        ),
        // Signed as the wrong role.
        (
            serde_json::to_vec(
                &json!({"actor": "a", "body": lot_declared_json("L"), "role": "inspector"}),
            )
            .unwrap(),
            "depot role",
        ),
        // A correction with several roles held must say which.
        (
            serde_json::to_vec(&event(serde_json::to_value(correction()).unwrap())).unwrap(),
            "role",
        ),
    ];
    for (bytes, needle) in cases {
        let answer = request(
            addr,
            "POST",
            "/v1/events",
            Some(("application/json", &bytes)),
        )
        .await;
        assert_eq!(
            answer.status,
            400,
            "{} -> {}",
            String::from_utf8_lossy(&bytes),
            answer.body
        );
        assert!(
            answer.content_type.starts_with("application/json"),
            "{}",
            answer.content_type
        );
        let error = answer.error();
        assert!(error.contains(needle), "expected {needle:?} in {error:?}");
    }
    // An absurd timestamp is refused by the wire format's rules, without crashing anything.
    let past = json!({"actor": "a", "body": lot_declared_json("L"), "occurred_at_ms": i64::MIN});
    let past = post_json(addr, "/v1/events", &past).await;
    assert_eq!(past.status, 400, "{}", past.body);
    assert!(past.error().contains("occurred_at_ms"), "{}", past.body);

    let answer = request(
        addr,
        "POST",
        "/v1/events?wait=maybe",
        Some(("application/json", b"{}")),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.error().contains("wait"), "{}", answer.body);

    let answer = request(addr, "POST", "/v1/events", Some(("", b"{}"))).await;
    assert_eq!(answer.status, 415, "{}", answer.body);
    assert!(answer.error().contains("application/json"));

    // Nothing refused used a sequence.
    assert_eq!(emitter.pending_count(), 0);
}

#[tokio::test]
async fn every_route_but_the_probes_needs_the_services_token_and_a_refusal_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, emitter) = start(dir.path(), depot_keys()).await;
    let lot = serde_json::to_vec(&event(lot_declared_json("LOT-1"))).unwrap();
    let another = "another-services-token-0123456789abcdef";
    for (authorization, status, says) in [
        (None, 401, "Bearer realm=\"stockpile-depot\""),
        (
            Some(format!("Bearer {another}")),
            401,
            "error=\"invalid_token\"",
        ),
        (
            Some(format!("Basic {API_TOKEN}")),
            401,
            "Bearer realm=\"stockpile-depot\"",
        ),
        (Some("Bearer".to_string()), 400, "error=\"invalid_request\""),
    ] {
        for (method, path, body) in [
            ("POST", "/v1/events", Some(("application/json", &lot[..]))),
            (
                "POST",
                "/v1/events?wait=true",
                Some(("application/json", &lot[..])),
            ),
            ("GET", "/v1/receipts/test-depot/1", None),
            ("GET", "/v1/receipts/test-depot/1/proof", None),
            ("GET", "/v1/kinds", None),
            ("GET", "/v1/status", None),
            ("GET", "/v2/nothing", None),
        ] {
            let answer = request_as(addr, authorization.as_deref(), method, path, body).await;
            assert_eq!(
                answer.status, status,
                "{authorization:?} {method} {path}: {}",
                answer.body
            );
            assert!(
                answer.www_authenticate.contains(says),
                "{authorization:?}: {}",
                answer.www_authenticate
            );
            assert!(answer.content_type.starts_with("application/json"));
            answer.error();
        }
    }
    assert_eq!(emitter.pending_count(), 0, "nothing was signed or written");
    assert!(emitter.keys().iter().all(|key| key.last_sequence == 0));

    // The probes answer anyone.
    assert_eq!(
        request_as(addr, None, "GET", "/health", None).await.status,
        200
    );
    assert_eq!(
        request_as(addr, None, "GET", "/ready", None).await.status,
        503,
        "offline"
    );

    // The token: the event is accepted, and the refusals were counted.
    let answer = request(addr, "POST", "/v1/events", Some(("application/json", &lot))).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(emitter.pending_count(), 1);
    let status = request(addr, "GET", "/v1/status", None).await.json();
    assert_eq!(status["http"]["refused"]["unauthorized"], 28, "{status}");
    assert_eq!(status["http"]["limits"]["concurrency_max"], 64, "{status}");
}

#[tokio::test]
async fn kinds_of_other_services_get_403() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _emitter) = start(dir.path(), depot_keys()).await;
    let body = serde_json::to_value(transfer_requested()).unwrap();
    let answer = post_json(addr, "/v1/events", &event(body)).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let error = answer.error();
    assert!(error.contains("transfer_requested"), "{error}");
    assert!(error.contains("lot_declared"), "{error}");
    assert_eq!(answer.json()["kind"], "transfer_requested");
    assert!(
        answer.json()["service_kinds"]
            .as_array()
            .unwrap()
            .contains(&json!("inventory_verified"))
    );

    // A depot service without its inspector key refuses inventory counts the same way.
    let dir = tempfile::tempdir().unwrap();
    let (addr, _emitter) = start(dir.path(), depot_keys().into_iter().take(2).collect()).await;
    let inventory = json!({
        "kind": "inventory_verified", "site_id": "SITE-A", "date": "2024-03-01",
        "scope": "full", "counts": [], "seal_checks": [], "inspectors": ["I. Spector"]
    });
    let answer = post_json(addr, "/v1/events", &event(inventory)).await;
    assert_eq!(answer.status, 403, "{}", answer.body);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_json() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, emitter) = start(dir.path(), depot_keys()).await;
    let mut body = event(lot_declared_json("L"));
    body["actor"] = json!("x".repeat(stockpile_emitter::limits::REQUEST_BODY_BYTES_MAX));
    let answer = post_json(addr, "/v1/events", &body).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.error().contains("larger than"), "{}", answer.body);
    assert_eq!(emitter.pending_count(), 0);
}

#[tokio::test]
async fn reads_answer_json() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _emitter) = start(dir.path(), depot_keys()).await;
    post_json(addr, "/v1/events", &event(lot_declared_json("L"))).await;

    let answer = request(addr, "GET", "/v1/receipts/test-depot/1", None).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert!(answer.error().contains("pending"), "{}", answer.body);
    assert_eq!(answer.json()["status"], "pending");

    let answer = request(addr, "GET", "/v1/receipts/test-depot/9", None).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.json()["status"], "unknown");

    let answer = request(addr, "GET", "/v1/receipts/someone-else/1", None).await;
    assert_eq!(answer.status, 404, "{}", answer.body);

    let answer = request(addr, "GET", "/v1/receipts/test-depot/one", None).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    answer.error();

    let answer = request(addr, "GET", "/v1/receipts/test-depot/1/proof", None).await;
    assert_eq!(answer.status, 404, "{}", answer.body);

    let answer = request(addr, "GET", "/v1/kinds", None).await;
    assert_eq!(answer.status, 200);
    let kinds = answer.json();
    assert_eq!(kinds["service"], "depot");
    let kinds: Vec<&str> = kinds["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kind| kind.as_str().unwrap())
        .collect();
    for kind in [
        "lot_declared",
        "site_registered",
        "inventory_verified",
        "correction_issued",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert!(!kinds.contains(&"lot_destroyed"));

    assert_eq!(request(addr, "GET", "/health", None).await.status, 200);
    let ready = request(addr, "GET", "/ready", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);

    let answer = request(addr, "GET", "/v2/nothing", None).await;
    assert_eq!(answer.status, 404);
    answer.error();
    let answer = request(addr, "DELETE", "/v1/events", None).await;
    assert_eq!(answer.status, 405);
    answer.error();
}

/// `run` as the binaries call it: NATS unreachable but waited for, so the API serves and
/// the outbox fills; the shutdown future stops it cleanly.
#[tokio::test]
async fn run_serves_writes_its_address_and_stops_on_the_shutdown_future() {
    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let mut nats = stockpile_nats::NatsConfig::new("nats://127.0.0.1:1");
    nats.wait = true;
    let config = ServiceConfig {
        service: ServiceKind::Depot,
        listen: "127.0.0.1:0".parse().unwrap(),
        addr_file: Some(addr_file.clone()),
        origin: ORIGIN.into(),
        keys: depot_keys(),
        outbox_dir: dir.path().join("outbox"),
        outbox_limits: OutboxLimits::default(),
        nats,
        api: api(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(stockpile_emitter::run(config, async move {
        let _ = stopped.await;
    }));
    let addr = wait_for_addr(&addr_file).await;
    let answer = post_json(addr, "/v1/events", &event(lot_declared_json("LOT-1"))).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    // `?wait=true` is released by the shutdown instead of holding it up.
    let waiting = tokio::spawn(async move {
        post_json(
            addr,
            "/v1/events?wait=true",
            &event(lot_declared_json("LOT-2")),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .expect("stops promptly")
        .unwrap();
    outcome.expect("a clean stop");
    let waited = waiting.await.unwrap();
    assert_eq!(waited.status, 504, "{}", waited.body);
    assert_eq!(waited.json()["status"], "pending");

    let outbox = Outbox::open(&dir.path().join("outbox"), OutboxLimits::default()).unwrap();
    assert_eq!(outbox.pending_count(), 2);
}

#[tokio::test]
async fn run_refuses_keys_of_other_services() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServiceConfig {
        service: ServiceKind::Demil,
        listen: "127.0.0.1:0".parse().unwrap(),
        addr_file: None,
        origin: ORIGIN.into(),
        keys: depot_keys(),
        outbox_dir: dir.path().join("outbox"),
        outbox_limits: OutboxLimits::default(),
        nats: stockpile_nats::NatsConfig::new("nats://127.0.0.1:1"),
        api: api(),
    };
    let error = stockpile_emitter::run(config, std::future::pending())
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("demil service holds the roles demil, certifier"),
        "{message}"
    );
}

async fn wait_for_addr(path: &std::path::Path) -> SocketAddr {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().parse().expect("an address");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no address file at {}", path.display());
}
