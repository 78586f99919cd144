//! Against a real nats-server (from `STOCKPILE_NATS_SERVER`, `.tools/nats/bin`, which
//! `scripts/install-nats.sh` fills, or `PATH`), each test with its own server on a free
//! loopback port. The sequencer is played by the test: it reads SUBMISSIONS and writes
//! receipts.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use common::*;
use stockpile_emitter::outbox::OutboxLimits;
use stockpile_emitter::resubmit::OUT_OF_ORDER_CODE;
use stockpile_emitter::{Emitter, EventDraft, ServiceConfig, ServiceKind};
use stockpile_nats::receipts::{Receipt, receipts_bucket, record_receipt};
use stockpile_nats::topology::{Replicas, SUBMISSIONS_STREAM, ensure_topology};
use stockpile_proto::envelope::decode_submission;

/// A nats-server child process, killed on drop.
struct Server {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `$STOCKPILE_NATS_SERVER`, else the pinned `.tools/nats/bin/nats-server`, else
/// `nats-server` on `PATH` (the order `tests/it` uses).
fn server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STOCKPILE_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let pinned =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nats/bin/nats-server");
    if pinned.is_file() {
        return pinned;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no nats-server found: run `make nats` or scripts/install-nats.sh, put nats-server on PATH, or set STOCKPILE_NATS_SERVER"
            )
        })
}

async fn start_server() -> Server {
    start_server_with(&[]).await
}

async fn start_server_with(extra: &[&str]) -> Server {
    spawn_server(|port, store| {
        let mut args: Vec<String> = ["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"]
            .map(str::to_owned)
            .into();
        args.push(store.to_str().unwrap().to_owned());
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    })
    .await
}

/// A server configured by the file `config` writes, given the JetStream store directory.
async fn start_server_with_config(config: impl Fn(&str) -> String) -> Server {
    spawn_server(|port, store| {
        let store_dir = store.join("jetstream");
        let file = store.join("server.conf");
        std::fs::write(&file, config(store_dir.to_str().unwrap())).unwrap();
        vec![
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-c".to_owned(),
            file.to_str().unwrap().to_owned(),
        ]
    })
    .await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Attempts at starting a server: another test may take the free port first.
const START_ATTEMPTS: usize = 5;
/// How long a started server must stay up to count as ours: one that lost the port to
/// another test's server exits at once, while a connection check would reach the other.
const START_SETTLE: Duration = Duration::from_millis(300);

/// Starts nats-server with the arguments `args(port, store dir)` gives, on a fresh free
/// port and store, retrying when the port turns out to be taken.
async fn spawn_server(args: impl Fn(u16, &std::path::Path) -> Vec<String>) -> Server {
    let binary = server_binary();
    for _ in 0..START_ATTEMPTS {
        let port = free_port();
        let store = tempfile::tempdir().unwrap();
        let mut child = Command::new(&binary)
            .args(args(port, store.path()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", binary.display()));
        let mut listening = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                listening = true;
                break;
            }
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(START_SETTLE).await;
        if listening && child.try_wait().ok().flatten().is_none() {
            return Server {
                child,
                url: format!("nats://127.0.0.1:{port}"),
                _store: store,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("nats-server did not start in {START_ATTEMPTS} attempts");
}

async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = probe().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The test's sequencer: gives every SUBMISSIONS message from `from` on a receipt
/// (accepted unless its actor is "reject me"). Returns the next stream sequence.
async fn sequence(js: &jetstream::Context, from: u64) -> u64 {
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let bucket = receipts_bucket(js).await.unwrap();
    for stream_sequence in from..=last {
        let message = stream.direct_get(stream_sequence).await.unwrap();
        let decoded = decode_submission(&message.payload).unwrap();
        let rejected = decoded.event.actor == "reject me";
        record_receipt(
            &bucket,
            &Receipt {
                key_id: decoded.key_id.clone(),
                emitter_sequence: decoded.event.emitter_sequence,
                event_id: decoded.event.event_id.clone(),
                index: stream_sequence - 1,
                entry_hash: "00".repeat(32),
                leaf_hash: "11".repeat(32),
                accepted: !rejected,
                rejection_code: rejected.then(|| "domain.test".into()),
                rejection_reason: rejected.then(|| "the test said so".into()),
            },
        )
        .await
        .unwrap();
    }
    last + 1
}

#[tokio::test]
async fn publishes_in_order_before_and_after_the_topology_exists_and_retires_on_receipts() {
    let server = start_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.nats = stockpile_nats::NatsConfig::new(server.url.clone());
    let emitter = Emitter::open(config.clone()).await.unwrap();
    assert!(emitter.is_connected());

    // No topology yet: the events wait in the outbox.
    for lot in ["A", "B", "C"] {
        emitter
            .emit(EventDraft::new("officer", lot_declared(lot)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emitter.pending_count(), 3);

    let client = async_nats::connect(&server.url).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, Replicas(1)).await.unwrap();
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    eventually("three submissions", async || {
        (stream.info().await.ok()?.state.messages == 3).then_some(())
    })
    .await;
    for stream_sequence in 1..=3 {
        let message = stream.direct_get(stream_sequence).await.unwrap();
        assert_eq!(message.subject.as_str(), "stockpile.submit.depot");
        let id = message.headers.get("Nats-Msg-Id").unwrap().as_str();
        assert_eq!(id, format!("test-depot/{stream_sequence}"));
        let decoded = decode_submission(&message.payload).unwrap();
        assert_eq!(decoded.event.emitter_sequence, stream_sequence);
    }

    // Receipts retire the entries.
    let next = sequence(&js, 1).await;
    eventually("the outbox to drain", async || {
        (emitter.pending_count() == 0).then_some(())
    })
    .await;
    let receipt = emitter
        .wait_for_receipt("test-depot", 2, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((receipt.index, receipt.accepted), (1, true));

    // Restart with pending, already-published entries: nothing is stored twice.
    emitter
        .emit(EventDraft::new("officer", lot_declared("D")))
        .await
        .unwrap();
    eventually("the fourth submission", async || {
        (stream.info().await.ok()?.state.messages == 4).then_some(())
    })
    .await;
    emitter.shutdown().await.unwrap();
    drop(emitter);
    let emitter = Emitter::open(config).await.unwrap();
    assert_eq!(emitter.pending_count(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stream.info().await.unwrap().state.messages, 4);
    let next = sequence(&js, next).await;
    assert_eq!(next, 5);
    let receipt = emitter
        .wait_for_receipt("test-depot", 4, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the receipt of the restarted entry");
    assert_eq!(receipt.index, 3);
    assert_eq!(emitter.pending_count(), 0);
    emitter.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_service_answers_with_receipts_and_readiness() {
    let server = start_server().await;
    let client = async_nats::connect(&server.url).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, Replicas(1)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let config = ServiceConfig {
        service: ServiceKind::Depot,
        listen: "127.0.0.1:0".parse().unwrap(),
        addr_file: Some(addr_file.clone()),
        origin: ORIGIN.into(),
        keys: depot_keys(),
        outbox_dir: dir.path().join("outbox"),
        outbox_limits: OutboxLimits::default(),
        nats: stockpile_nats::NatsConfig::new(server.url.clone()),
        api: api(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(stockpile_emitter::run(config, async move {
        let _ = stopped.await;
    }));
    let addr: SocketAddr = eventually("the address file", async || {
        std::fs::read_to_string(&addr_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    })
    .await;
    let ready = http(addr, "GET", "/ready", "").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // The test's sequencer answers whatever arrives.
    let sequencer_js = js.clone();
    let sequencer = tokio::spawn(async move {
        let mut next = 1;
        loop {
            next = sequence(&sequencer_js, next).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let accepted = http(
        addr,
        "POST",
        "/v1/events?wait=true",
        &serde_json::json!({"actor": "officer", "body": lot_declared_json("A")}).to_string(),
    )
    .await;
    assert!(accepted.starts_with("HTTP/1.1 201"), "{accepted}");
    assert!(accepted.contains("\"status\":\"accepted\""), "{accepted}");
    let rejected = http(
        addr,
        "POST",
        "/v1/events?wait=true",
        &serde_json::json!({"actor": "reject me", "body": lot_declared_json("B")}).to_string(),
    )
    .await;
    assert!(rejected.starts_with("HTTP/1.1 422"), "{rejected}");
    assert!(rejected.contains("domain.test"), "{rejected}");
    let receipt = http(addr, "GET", "/v1/receipts/test-depot/2", "").await;
    assert!(receipt.starts_with("HTTP/1.1 200"), "{receipt}");
    // No sequencer answers proof requests here.
    let proof = http(addr, "GET", "/v1/receipts/test-depot/1/proof", "").await;
    assert!(proof.starts_with("HTTP/1.1 503"), "{proof}");

    sequencer.abort();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), service)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_submission_lost_from_the_stream_is_republished_with_the_same_bytes_and_id() {
    let server = start_server().await;
    let client = async_nats::connect(&server.url).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, Replicas(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.nats = stockpile_nats::NatsConfig::new(server.url.clone());
    config.republish_interval = Duration::from_secs(1);
    let emitter = Emitter::open(config).await.unwrap();
    emitter
        .emit(EventDraft::new("officer", lot_declared("A")))
        .await
        .unwrap();
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    eventually("the submission", async || {
        (stream.info().await.ok()?.state.messages == 1).then_some(())
    })
    .await;
    let original = stream.direct_get(1).await.unwrap();

    // The stream loses it (here: deleted and recreated by hand).
    js.delete_stream(SUBMISSIONS_STREAM).await.unwrap();
    ensure_topology(&js, Replicas(1)).await.unwrap();
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    eventually("the republished submission", async || {
        (stream.info().await.ok()?.state.messages == 1).then_some(())
    })
    .await;
    let again = stream.direct_get(1).await.unwrap();
    assert_eq!(again.payload, original.payload);
    assert_eq!(
        again.headers.get("Nats-Msg-Id").unwrap().as_str(),
        "test-depot/1"
    );
    // Present again: no further copies.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    emitter.shutdown().await.unwrap();
}

/// `stockpile emit` opens, emits and shuts down at once: the event must still go out.
#[tokio::test]
async fn an_event_emitted_just_before_shutdown_is_still_published() {
    let server = start_server().await;
    let client = async_nats::connect(&server.url).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, Replicas(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.nats = stockpile_nats::NatsConfig::new(server.url.clone());
    let emitter = Emitter::open(config).await.unwrap();
    emitter
        .emit(EventDraft::new("officer", lot_declared("A")))
        .await
        .unwrap();
    emitter.shutdown().await.unwrap();
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    assert_eq!(
        emitter.pending_count(),
        1,
        "pending until its receipt comes"
    );
}

#[tokio::test]
async fn wrong_credentials_fail_clearly() {
    let server = start_server_with(&["--user", "depot", "--pass", "right"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.nats = stockpile_nats::NatsConfig::new(server.url.clone());
    config.nats.user = Some("depot".into());
    config.nats.password = Some("wrong".into());
    let error = Emitter::open(config.clone()).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("refused the credentials"),
        "{error:#}"
    );
    config.nats.password = Some("right".into());
    let emitter = Emitter::open(config).await.unwrap();
    assert!(emitter.is_connected());
    emitter.shutdown().await.unwrap();
}

/// The NATS rights of an emitting service, exactly: no `$JS.API.CONSUMER.*` (a user that
/// may create a push consumer can make the server copy stream messages into a ledger
/// subject), no `$JS.FC.*`, and not even `$JS.API.DIRECT.GET.SUBMISSIONS`.
const DEPOT_PUBLISH_RIGHTS: &[&str] = &[
    "stockpile.submit.depot",
    "stockpile.proof.inclusion",
    "$JS.API.INFO",
    "$JS.API.STREAM.INFO.KV_RECEIPTS",
    "$JS.API.STREAM.MSG.GET.KV_RECEIPTS",
    "$JS.API.DIRECT.GET.KV_RECEIPTS",
    "$JS.API.DIRECT.GET.KV_RECEIPTS.>",
];

/// The emitter runs as a user with only [`DEPOT_PUBLISH_RIGHTS`] (and `_INBOX.>` to
/// subscribe): it publishes, learns receipts by polling RECEIPTS, drains its outbox, and
/// an overdue submission it cannot look up in SUBMISSIONS is not republished blindly.
#[tokio::test]
async fn an_emitter_needs_no_consumer_rights() {
    let server = start_server_with_config(|store_dir| {
        let allow = DEPOT_PUBLISH_RIGHTS
            .iter()
            .map(|subject| format!("{subject:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"
jetstream {{ store_dir: {store_dir:?} }}
authorization {{
  users = [
    {{user: depot, password: "depot-secret", permissions: {{publish: {{allow: [{allow}]}}, subscribe: {{allow: ["_INBOX.>"]}}}}}},
    {{user: admin, password: "admin-secret"}}
  ]
}}
"#
        )
    })
    .await;
    // The sequencer's part, as admin: the topology and the receipts.
    let admin =
        async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin-secret".into())
            .connect(&server.url)
            .await
            .unwrap();
    let js = jetstream::new(admin);
    ensure_topology(&js, Replicas(1)).await.unwrap();

    // The rights are enforced: the depot user may open the bucket but not watch it (a
    // watch is a consumer).
    let depot =
        async_nats::ConnectOptions::with_user_and_password("depot".into(), "depot-secret".into())
            .connect(&server.url)
            .await
            .unwrap();
    let bucket = receipts_bucket(&jetstream::new(depot)).await.unwrap();
    let watch = tokio::time::timeout(Duration::from_secs(2), bucket.watch_all()).await;
    assert!(
        !matches!(watch, Ok(Ok(_))),
        "the depot user could create a consumer"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.nats = stockpile_nats::NatsConfig::new(server.url.clone());
    config.nats.user = Some("depot".into());
    config.nats.password = Some("depot-secret".into());
    let emitter = Emitter::open(config.clone()).await.unwrap();
    let mut emitted = Vec::new();
    for lot in ["A", "B", "C"] {
        let draft = EventDraft::new("officer", lot_declared(lot));
        emitted.push(emitter.emit(draft).await.unwrap());
    }
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    eventually("three submissions", async || {
        (stream.info().await.ok()?.state.messages == 3).then_some(())
    })
    .await;
    let next = sequence(&js, 1).await;
    // The poller retires them, well before the publisher's overdue check (30 s) would
    // look for them, and without anyone waiting for their receipts.
    drains_within(&emitter, Duration::from_secs(3)).await;
    let receipt = emitter
        .wait_for_receipt(
            &emitted[1].key_id,
            emitted[1].emitter_sequence,
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .expect("the receipt");
    assert_eq!((receipt.index, receipt.accepted), (1, true));

    // Published but not sequenced, across a restart with a short republish interval:
    // the publisher looks for it, cannot read SUBMISSIONS (no right), and, no later
    // submission having a receipt, leaves it there.
    let late = emitter
        .emit(EventDraft::new("officer", lot_declared("D")))
        .await
        .unwrap();
    eventually("the fourth submission", async || {
        (stream.info().await.ok()?.state.messages == 4).then_some(())
    })
    .await;
    emitter.shutdown().await.unwrap();
    drop(emitter);
    config.republish_interval = Duration::from_secs(1);
    let emitter = Emitter::open(config).await.unwrap();
    assert_eq!(emitter.pending_count(), 1);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(stream.info().await.unwrap().state.messages, 4);
    assert_eq!(emitter.pending_count(), 1);
    assert!(emitter.is_connected());
    assert_eq!(sequence(&js, next).await, 5);
    drains_within(&emitter, Duration::from_secs(3)).await;
    let receipt = emitter
        .wait_for_receipt(&late.key_id, late.emitter_sequence, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the receipt of the late one");
    assert_eq!(receipt.index, 3);
    emitter.shutdown().await.unwrap();
}

/// Waits until the outbox is empty, failing the test after `limit`.
async fn drains_within(emitter: &Emitter, limit: Duration) {
    let drained = tokio::time::timeout(limit, async {
        while emitter.pending_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "{} entries still pending after {limit:?}",
        emitter.pending_count()
    );
}

/// A test sequencer with the ledger's replay rule: a submission whose emitter sequence is
/// not above the last one seen for its key is refused with the ledger's code.
struct StrictSequencer {
    js: jetstream::Context,
    last: HashMap<String, u64>,
    index: u64,
}

impl StrictSequencer {
    /// Judges the SUBMISSIONS message at `stream_sequence` and writes its receipt.
    async fn admit(&mut self, stream_sequence: u64) {
        let stream = self.js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
        let message = stream.direct_get(stream_sequence).await.unwrap();
        let decoded = decode_submission(&message.payload).unwrap();
        let sequence = decoded.event.emitter_sequence;
        let last = self.last.get(&decoded.key_id).copied();
        let replay = last.is_some_and(|last| sequence <= last);
        if !replay {
            self.last.insert(decoded.key_id.clone(), sequence);
        }
        let bucket = receipts_bucket(&self.js).await.unwrap();
        record_receipt(
            &bucket,
            &Receipt {
                key_id: decoded.key_id.clone(),
                emitter_sequence: sequence,
                event_id: decoded.event.event_id.clone(),
                index: self.index,
                entry_hash: format!("{:064x}", self.index),
                leaf_hash: "11".repeat(32),
                accepted: !replay,
                rejection_code: replay.then(|| OUT_OF_ORDER_CODE.into()),
                rejection_reason: replay.then(|| {
                    format!("emitter sequence {sequence} is not above the last one seen, {last:?}: a replay")
                }),
            },
        )
        .await
        .unwrap();
        self.index += 1;
    }

    /// Judges every message from `from` to the end of the stream; the next to judge.
    async fn run_from(&mut self, from: u64) -> u64 {
        let mut stream = self.js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
        let last = stream.info().await.unwrap().state.last_sequence;
        for stream_sequence in from..=last {
            self.admit(stream_sequence).await;
        }
        last.max(from - 1) + 1
    }
}

/// The race a connection drop causes: sequence 3 of a key reaches the sequencer before 2,
/// which the ledger then refuses as a replay. The emitter signs the same event again under
/// the key's next sequence, the ledger accepts it, and the receipt of 2 (SDK and HTTP)
/// follows it.
#[tokio::test]
async fn an_event_refused_as_out_of_order_is_re_emitted_and_its_receipt_followed() {
    let server = start_server().await;
    let client = async_nats::connect(&server.url).await.unwrap();
    let js = jetstream::new(client);
    ensure_topology(&js, Replicas(1)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.nats = stockpile_nats::NatsConfig::new(server.url.clone());
    let emitter = Emitter::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = stockpile_emitter::service::router(emitter.clone(), ServiceKind::Depot, &api());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut emitted = Vec::new();
    for lot in ["A", "B", "C"] {
        let draft = EventDraft::new("officer", lot_declared(lot));
        emitted.push(emitter.emit(draft).await.unwrap());
    }
    let mut stream = js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
    eventually("three submissions", async || {
        (stream.info().await.ok()?.state.messages == 3).then_some(())
    })
    .await;

    // 3 overtakes 2; then the sequencer takes whatever comes, in order.
    let mut sequencer = StrictSequencer {
        js: js.clone(),
        last: HashMap::new(),
        index: 0,
    };
    for stream_sequence in [1, 3, 2] {
        sequencer.admit(stream_sequence).await;
    }
    let sequencing = tokio::spawn(async move {
        let mut next = 4;
        loop {
            next = sequencer.run_from(next).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let receipt = emitter
        .wait_for_receipt("test-depot", 2, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("the receipt of the re-emitted event");
    assert!(receipt.accepted, "{receipt:?}");
    assert_eq!(receipt.emitter_sequence, 4);
    assert_eq!(receipt.event_id, emitted[1].event_id);
    assert_eq!(receipt.resubmitted_from.len(), 1);
    let refusal = &receipt.resubmitted_from[0];
    assert_eq!(
        (refusal.emitter_sequence, refusal.accepted),
        (2, false),
        "{refusal:?}"
    );
    assert_eq!(refusal.rejection_code.as_deref(), Some(OUT_OF_ORDER_CODE));
    assert_eq!(emitter.current_sequence("test-depot", 2).unwrap(), 4);
    // As `stockpile emit` prints it.
    let mut printed = Vec::new();
    serde_json::to_writer_pretty(&mut printed, &receipt).unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&printed).unwrap();
    assert_eq!(printed["emitter_sequence"], 4);
    assert_eq!(printed["resubmitted_from"][0]["emitter_sequence"], 2);

    // What went out: the same event, signed again under 4, with its own message id.
    let message = stream.direct_get(4).await.unwrap();
    assert_eq!(
        message.headers.get("Nats-Msg-Id").unwrap().as_str(),
        "test-depot/4"
    );
    let decoded = decode_submission(&message.payload).unwrap();
    let first = decode_submission(&stream.direct_get(2).await.unwrap().payload).unwrap();
    assert_eq!(decoded.event.emitter_sequence, 4);
    assert_eq!(decoded.event.event_id, first.event.event_id);
    assert_eq!(decoded.event.body, lot_declared("B"));
    assert_eq!(
        (decoded.event.occurred_at, &decoded.event.actor),
        (first.event.occurred_at, &first.event.actor)
    );
    key("test-depot", 1)
        .verifier_key()
        .verify(
            &stockpile_core::hash::event_signature_message(&decoded.event_bytes),
            &decoded.signature,
        )
        .expect("the re-signed submission verifies");

    // The HTTP answer follows the redirect too.
    let answer = http(addr, "GET", "/v1/receipts/test-depot/2", "").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["emitter_sequence"], 4, "{body}");
    assert_eq!(body["accepted"], true, "{body}");
    assert_eq!(body["resubmitted_from"][0]["emitter_sequence"], 2, "{body}");
    assert_eq!(
        body["resubmitted_from"][0]["rejection_code"],
        OUT_OF_ORDER_CODE
    );
    let answer = http(addr, "GET", "/v1/receipts/test-depot/4", "").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("resubmitted_from"), "{answer}");

    eventually("the outbox to drain", async || {
        (emitter.pending_count() == 0).then_some(())
    })
    .await;
    // Nothing else was re-emitted or resent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stream.info().await.unwrap().state.messages, 4);
    sequencing.abort();
    emitter.shutdown().await.unwrap();
}

/// A raw HTTP/1.1 request with the test token; the whole answer as text.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}
