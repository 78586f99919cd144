//! The write path on a three-node JetStream cluster (`deploy/nats/cluster.conf`, every
//! stream and the receipts bucket with three replicas): nodes SIGKILLed during ingest and
//! restarted, and nothing acknowledged lost or duplicated.
//!
//! Submissions are published as the emitting services would (own subject and user,
//! `Nats-Msg-Id` `<key>/<emitter sequence>`, each acknowledgement awaited before the next
//! publish) and a publish that fails is retried, same bytes and id, until it is
//! acknowledged. The sequencer runs as its own process with `--replicas 3` and the URLs of
//! all three nodes. The figures the tests print (`--nocapture`) are in
//! docs/reliability.md; nothing below asserts on time.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use stockpile_core::events::Role;
use stockpile_core::keys::SignerKey;
use stockpile_nats::ledger::read_ledger;
use stockpile_nats::topology::{
    CHECKPOINTS_STREAM, LEDGER_STREAM, RECEIPTS_BUCKET, SUBMISSIONS_STREAM, submit_subject,
};
use stockpile_proto::envelope::{DecodedEntry, EntryVerdict, decode_entry, decode_submission};
use stockpile_scenario::{Dataset, ScenarioConfig, Submission};

use crate::support::nats::{CLUSTER_NODES, NatsCluster, node_name};
use crate::support::system::{
    SETTLE_TIMEOUT, Service, binary, ledger_size, nats_args, runtime, stockpile,
    wait_for_checkpoint, wait_for_ledger_size, wait_for_stream, write_key,
};

/// The service whose subject carries a role's submissions.
fn service_for(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Registrar) => "registrar",
        Some(Role::Depot | Role::Inspector) | None => "depot",
        Some(Role::Demil | Role::Certifier) => "demil",
        Some(Role::ExportControl) => "export-control",
    }
}

fn msg_id(bytes: &[u8]) -> String {
    match decode_submission(bytes) {
        Ok(decoded) => format!("{}/{}", decoded.key_id, decoded.event.emitter_sequence),
        Err(_) => format!(
            "raw/{}",
            stockpile_core::hash::Hash32::digest(bytes).to_hex()
        ),
    }
}

/// A JetStream context as `user`, connected to whichever node answers first.
async fn jetstream_on(cluster: &NatsCluster, user: &str) -> jetstream::Context {
    let client = stockpile_nats::connect(&cluster.config_for(user))
        .await
        .unwrap_or_else(|error| panic!("connect as {user}: {error:#}"));
    jetstream::new(client)
}

/// A sequencer on the cluster: all three URLs, streams and bucket with three replicas.
fn start_sequencer(
    cluster: &NatsCluster,
    dir: &Path,
    trust: &Path,
    log_key: &SignerKey,
) -> Service {
    let key = write_key(dir, log_key);
    let (mut args, envs) = nats_args(&cluster.config_for("sequencer"));
    args.extend(
        [
            "--trust",
            trust.to_str().expect("utf-8 path"),
            "--log-key",
            key.to_str().expect("utf-8 path"),
            "--instance",
            "main",
            "--replicas",
            "3",
            "--batch",
            "64",
            "--checkpoint-interval-ms",
            "200",
        ]
        .map(String::from),
    );
    Service::start(
        "sequencer-main",
        binary("stockpile-sequencer"),
        args,
        envs,
        dir,
    )
}

/// What the publisher saw.
#[derive(Debug, Default)]
struct PublishReport {
    /// Publishes that failed (timed out, no responders, connection lost) and were retried.
    failed_attempts: usize,
    /// Retried publishes the stream answered as duplicates: an earlier attempt had landed.
    duplicates: usize,
    /// The longest time one submission took from its first attempt to its acknowledgement.
    longest_wait: Duration,
    /// A few of the errors, for the record.
    errors: BTreeMap<String, usize>,
}

/// Publishes every submission in order, each until it is acknowledged (same bytes and
/// `Nats-Msg-Id` on every attempt), counting acknowledged submissions in `acked`; never
/// more than `allowed` of them (the test moves that mark to pace ingest around faults).
async fn publish_all(
    cluster_config: BTreeMap<String, stockpile_nats::NatsConfig>,
    submissions: Vec<(String, String, Bytes)>,
    acked: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
    report: Arc<Mutex<PublishReport>>,
) {
    let mut contexts: BTreeMap<String, jetstream::Context> = BTreeMap::new();
    for (service, config) in &cluster_config {
        let client = stockpile_nats::connect(config)
            .await
            .unwrap_or_else(|error| panic!("connect as {service}: {error:#}"));
        contexts.insert(service.clone(), jetstream::new(client));
    }
    for (position, (service, id, bytes)) in submissions.into_iter().enumerate() {
        while position >= allowed.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let js = &contexts[&service];
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = async {
                js.send_publish(
                    submit_subject(&service),
                    PublishMessage::build()
                        .payload(bytes.clone())
                        .message_id(id.as_str()),
                )
                .await?
                .await
            }
            .await;
            match outcome {
                Ok(ack) => {
                    let mut report = report.lock().expect("report lock");
                    if ack.duplicate {
                        report.duplicates += 1;
                    }
                    report.longest_wait = report.longest_wait.max(started.elapsed());
                    break;
                }
                Err(error) => {
                    {
                        let mut report = report.lock().expect("report lock");
                        report.failed_attempts += 1;
                        let kind = format!("{:?}", error.kind());
                        *report.errors.entry(kind).or_insert(0) += 1;
                    }
                    assert!(
                        started.elapsed() < SETTLE_TIMEOUT,
                        "submission {id} not acknowledged after {attempts} attempts in {SETTLE_TIMEOUT:?}: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        acked.fetch_add(1, Ordering::SeqCst);
    }
}

async fn ledger_entries(js: &jetstream::Context) -> Vec<DecodedEntry> {
    let mut entries = Vec::new();
    read_ledger(js, 0, |message| {
        entries.push(decode_entry(&message.entry).expect("ledger entries decode"));
        Ok(())
    })
    .await
    .expect("read the ledger");
    entries
}

/// Waits until `acked` reaches `count`, or the publisher ends.
async fn wait_for_acked(acked: &AtomicUsize, count: usize, logs: &[&Service]) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    while acked.load(Ordering::SeqCst) < count {
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|s| s.log_tail()).collect();
            panic!(
                "{} of {count} submissions acknowledged in {SETTLE_TIMEOUT:?}; logs:\n{}",
                acked.load(Ordering::SeqCst),
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The node leading `stream`'s Raft group now.
async fn stream_leader(cluster: &NatsCluster, js: &jetstream::Context, stream: &str) -> usize {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Ok(mut handle) = js.get_stream(stream).await
            && let Ok(info) = handle.info().await
            && let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone())
        {
            return cluster.index_of(&leader);
        }
        assert!(Instant::now() < deadline, "{stream} has no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The node the sequencer's client is connected to (its connection name in `/connz`).
fn sequencer_node(cluster: &NatsCluster) -> Option<usize> {
    (0..CLUSTER_NODES).find(|index| {
        cluster
            .node(*index)
            .monitor_json("/connz")
            .get("connections")
            .and_then(|connections| connections.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .any(|connection| connection["name"] == "stockpile-sequencer-main")
    })
}

/// Every replica of `stream` current and online, three in all, as its leader reports it.
async fn assert_replicated(js: &jetstream::Context, stream: &str) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let mut handle = js.get_stream(stream).await.expect("open stream");
        let info = handle.info().await.expect("stream info");
        assert_eq!(info.config.num_replicas, 3, "{stream} has three replicas");
        let cluster = info
            .cluster
            .clone()
            .expect("a clustered stream reports its cluster");
        let all_current = cluster.leader.is_some()
            && cluster.replicas.len() == CLUSTER_NODES - 1
            && cluster
                .replicas
                .iter()
                .all(|peer| peer.current && !peer.offline);
        if all_current {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stream}: replicas not all current: leader {:?}, {:?}",
            cluster.leader,
            cluster.replicas
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three nodes; the sequencer with `--replicas 3`; a scenario of about 3,000 submissions
/// published while first the LEDGER stream's leader and later the node the sequencer is
/// connected to are SIGKILLed, ingest going on with two nodes each time, and then
/// restarted. Every submission is in the ledger exactly once, the ledger verifies, and
/// every node holds all of it.
#[test]
fn cluster_nodes_killed_during_ingest_lose_and_duplicate_nothing() {
    let test_started = Instant::now();
    let mut cluster = NatsCluster::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ScenarioConfig {
        seed: 7,
        dataset: Dataset::FinlandLike,
        min_entries: 3_000,
        checkpoint_every: 0,
    };
    let submissions: Vec<Submission> = stockpile_scenario::submissions(&config).collect();
    let keys = stockpile_scenario::ScenarioKeys::new(config.dataset, config.seed);
    let trust = dir.path().join("trust.json");
    fs::write(&trust, keys.trust_root().to_json()).expect("write trust");
    let mut sequencer = start_sequencer(&cluster, dir.path(), &trust, &keys.log);
    let rt = runtime();
    let js = rt.block_on(jetstream_on(&cluster, "admin"));
    rt.block_on(wait_for_stream(&js, &[&sequencer]));
    let total = submissions.len();

    let publishable: Vec<(String, String, Bytes)> = submissions
        .iter()
        .map(|s| {
            (
                service_for(s.role).to_string(),
                msg_id(&s.bytes),
                s.bytes.clone(),
            )
        })
        .collect();
    let configs = ["depot", "demil", "export-control", "registrar"]
        .into_iter()
        .map(|service| (service.to_string(), cluster.config_for(service)))
        .collect();
    let acked = Arc::new(AtomicUsize::new(0));
    let allowed = Arc::new(AtomicUsize::new(total / 4));
    let report = Arc::new(Mutex::new(PublishReport::default()));
    let publisher = rt.spawn(publish_all(
        configs,
        publishable,
        acked.clone(),
        allowed.clone(),
        report.clone(),
    ));

    // Two faults, each while submissions are being published and the sequencer works
    // through a backlog: first the node leading LEDGER's Raft group, then the node the
    // sequencer is connected to (or LEDGER's leader again if that is the same node).
    let mut faults = Vec::new();
    for (fault, (kill_at, continue_to)) in [(total / 4, total / 2), (total * 5 / 8, total * 7 / 8)]
        .into_iter()
        .enumerate()
    {
        rt.block_on(wait_for_acked(&acked, kill_at, &[&sequencer]));
        let ledger_leader = rt.block_on(stream_leader(&cluster, &js, LEDGER_STREAM));
        let victim = if fault == 0 {
            ledger_leader
        } else {
            sequencer_node(&cluster).unwrap_or(ledger_leader)
        };
        let size_at_kill = rt.block_on(ledger_size(&js));
        // Publishing goes on through the kill.
        allowed.store(continue_to, Ordering::SeqCst);
        let killed_at = Instant::now();
        cluster.kill(victim);
        // Ingest goes on with two nodes: the ledger grows again (after a leader election
        // if the victim led LEDGER), submissions are acknowledged and sequenced.
        let moved_after = rt.block_on(async {
            wait_for_ledger_size(&js, size_at_kill + 1, &[&sequencer]).await;
            killed_at.elapsed()
        });
        rt.block_on(async {
            wait_for_acked(&acked, continue_to, &[&sequencer]).await;
            wait_for_ledger_size(&js, continue_to as u64, &[&sequencer]).await;
        });
        let while_down = rt.block_on(ledger_size(&js)) - size_at_kill;
        let new_leader = rt.block_on(stream_leader(&cluster, &js, LEDGER_STREAM));
        assert_ne!(new_leader, victim, "a node that is down leads nothing");
        let down_for = killed_at.elapsed();
        let restarted_at = Instant::now();
        cluster.restart(victim);
        let caught_up_in = restarted_at.elapsed();
        faults.push(format!(
            "fault {}: killed {} (LEDGER leader {}) at ledger size {size_at_kill}, {} \
             submissions acknowledged; first entry appended {moved_after:.1?} after the kill; \
             {while_down} entries appended and {} submissions acknowledged while it was down \
             ({down_for:.1?}); LEDGER leader then {}; restarted and healthy (caught up) in \
             {caught_up_in:.1?}",
            fault + 1,
            node_name(victim),
            node_name(ledger_leader),
            kill_at,
            continue_to - kill_at,
            node_name(new_leader),
        ));
        allowed.store(
            if fault == 0 { total * 5 / 8 } else { total },
            Ordering::SeqCst,
        );
    }

    rt.block_on(async {
        publisher.await.expect("the publisher finishes");
        wait_for_ledger_size(&js, total as u64, &[&sequencer]).await;
        // Give a duplicate the time to (wrongly) become an entry.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let ingest_time = test_started.elapsed();

    let entries = rt.block_on(ledger_entries(&js));
    assert_eq!(
        entries.len(),
        total,
        "one entry per acknowledged submission, none twice"
    );
    let published: BTreeSet<&[u8]> = submissions.iter().map(|s| s.bytes.as_ref()).collect();
    let stored: BTreeSet<&[u8]> = entries.iter().map(|e| e.submission.as_ref()).collect();
    assert_eq!(
        published, stored,
        "the ledger holds exactly the submissions"
    );
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &entries {
        if entry.verdict == EntryVerdict::Accepted {
            let event = decode_submission(&entry.submission).expect("accepted entries decode");
            *accepted.entry(event.event.event_id).or_insert(0) += 1;
        }
    }
    assert!(
        accepted.values().all(|count| *count == 1),
        "no event accepted twice"
    );
    let expected_rejections = submissions
        .iter()
        .filter(|s| s.expected_rejection.is_some())
        .count();
    assert_eq!(
        entries.len() - accepted.len(),
        expected_rejections,
        "the scenario's hostile submissions, and only they, are refused: a fault changed no verdict"
    );

    rt.block_on(wait_for_checkpoint(&js, total as u64, &[&sequencer]));
    let url = cluster.url();
    let password = cluster.password("inspector").to_string();
    let (code, out, err) = stockpile(&[
        "verify",
        "--nats",
        &url,
        "--nats-user",
        "inspector",
        "--nats-password",
        &password,
        "--trust",
        trust.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0, "verify --nats:\n{out}\n{err}");

    // Three replicas of everything, all current; and each node, the restarted ones
    // included, holds the whole ledger itself.
    rt.block_on(async {
        for stream in [
            SUBMISSIONS_STREAM,
            LEDGER_STREAM,
            CHECKPOINTS_STREAM,
            &format!("KV_{RECEIPTS_BUCKET}"),
        ] {
            assert_replicated(&js, stream).await;
        }
    });
    for index in 0..CLUSTER_NODES {
        let ledger = cluster
            .stream_on_node(index, LEDGER_STREAM)
            .unwrap_or_else(|| panic!("{} holds no replica of LEDGER", node_name(index)));
        assert_eq!(
            ledger["state"]["last_seq"].as_u64(),
            Some(total as u64),
            "{}'s own copy of LEDGER: {}",
            node_name(index),
            ledger["state"]
        );
        let submissions = cluster
            .stream_on_node(index, SUBMISSIONS_STREAM)
            .unwrap_or_else(|| panic!("{} holds no replica of SUBMISSIONS", node_name(index)));
        assert_eq!(
            submissions["state"]["messages"].as_u64(),
            Some(total as u64),
            "{}'s own copy of SUBMISSIONS: {}",
            node_name(index),
            submissions["state"]
        );
    }
    assert!(
        sequencer.is_running(),
        "the sequencer rode through both faults:\n{}",
        sequencer.log_tail()
    );
    let report = report.lock().expect("report lock");
    eprintln!(
        "cluster test: {total} submissions, {} accepted, {expected_rejections} refused as the \
         scenario intends; {} failed publish attempts retried ({:?}), {} answered as \
         duplicates; longest wait for one acknowledgement {:.1?}; ingest and faults \
         {ingest_time:.1?}\n{}",
        accepted.len(),
        report.failed_attempts,
        report.errors,
        report.duplicates,
        report.longest_wait,
        faults.join("\n")
    );
    let log = sequencer.log();
    eprintln!(
        "sequencer: {} failed appends, {} other failed steps, each followed by a rebuild \
         from the ledger",
        log.matches("ledger append failed, rebuilding").count(),
        log.matches("rebuilding from the ledger in").count()
    );
}

/// A nats-server that is not one of ours, killed when dropped.
struct Outsider(std::process::Child);

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every node runs the shipped durability setting on loopback listeners, and a server
/// that reaches a node's route port without the route password is refused: a route is a
/// full peer that sees every account's messages, past all user permissions.
#[test]
fn cluster_nodes_fsync_stay_on_loopback_and_admit_only_authenticated_routes() {
    let cluster = NatsCluster::start();
    for index in 0..CLUSTER_NODES {
        let varz = cluster.node(index).monitor_json("/varz");
        let name = node_name(index);
        assert_eq!(
            varz["jetstream"]["config"]["sync_always"],
            serde_json::Value::Bool(true),
            "{name} must run with sync_interval: always: {}",
            varz["jetstream"]
        );
        assert_eq!(varz["server_name"], name.as_str());
        assert_eq!(varz["host"], "127.0.0.1", "{name}: client listener");
        assert_eq!(
            varz["http_host"], "127.0.0.1",
            "{name}: monitoring listener"
        );
        assert_eq!(
            varz["cluster"]["addr"], "127.0.0.1",
            "{name}: route listener: {}",
            varz["cluster"]
        );
        assert_eq!(varz["cluster"]["name"], "stockpile");
        assert_eq!(
            varz["cluster"]["cluster_port"],
            u64::from(cluster.route_port(index))
        );
    }

    let target = cluster.route_port(0);
    let dir = tempfile::tempdir().expect("tempdir");
    for (case, credentials) in [("no password", ""), ("a wrong password", "route:sp-wrong@")] {
        let log = dir
            .path()
            .join(format!("outsider-{}.log", case.replace(' ', "-")));
        let before = cluster
            .node(0)
            .log()
            .matches("authentication error")
            .count();
        let _outsider = Outsider(
            std::process::Command::new(crate::support::nats::nats_server_binary())
                .args([
                    "-a",
                    "127.0.0.1",
                    "-n",
                    "outsider",
                    "--cluster_name",
                    "stockpile",
                ])
                .args(["-p", &crate::support::nats::free_port().to_string()])
                .arg("--cluster")
                .arg(format!(
                    "nats://127.0.0.1:{}",
                    crate::support::nats::free_port()
                ))
                .arg("--routes")
                .arg(format!("nats-route://{credentials}127.0.0.1:{target}"))
                .arg("-l")
                .arg(&log)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start the outsider"),
        );
        // The node logs the refusal of the outsider's route.
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while cluster
            .node(0)
            .log()
            .matches("authentication error")
            .count()
            <= before
        {
            assert!(
                Instant::now() < deadline,
                "{case}: n1 logged no refused route; its log:\n{}\noutsider:\n{}",
                cluster.node(0).log(),
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let routez = cluster.node(0).monitor_json("/routez");
        let peers: Vec<&str> = routez["routes"]
            .as_array()
            .expect("routes")
            .iter()
            .filter_map(|route| route["remote_name"].as_str())
            .collect();
        assert!(
            !peers.contains(&"outsider"),
            "{case}: the outsider became a route of n1: {peers:?}"
        );
        assert!(
            peers.contains(&"n2") && peers.contains(&"n3"),
            "the nodes' own routes stand: {peers:?}"
        );
    }
}
