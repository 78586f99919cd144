//! The shipped NATS configuration (`deploy/nats`) against a real nats-server: the files
//! are valid, the server fsyncs before acking, and each service's user can do what the
//! service needs and nothing it must not (submit for another service, write the ledger
//! without being the sequencer, delete or purge anything).
//!
//! A refused operation is checked twice: the client gets no positive answer, and the
//! server reports a "Permissions Violation" naming the subject, so a refusal for another
//! reason (a stream setting, a missing stream) does not pass for an ACL.

use std::future::IntoFuture as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
    context::PublishErrorKind,
};
use futures::StreamExt;
use stockpile_nats::NatsConfig;
use stockpile_nats::receipts::{Receipt, get_receipt, receipts_bucket, record_receipt};
use stockpile_nats::topology::{
    CHECKPOINTS_STREAM, CHECKPOINTS_SUBJECT, LEDGER_STREAM, LEDGER_SUBJECT, Replicas,
    SUBMISSION_SEQUENCE_HEADER, SUBMISSIONS_STREAM, ensure_topology, submit_subject,
};

use crate::support::nats::{EMITTERS, NatsServer, USERS, deploy_dir, nats_server_binary};

/// JetStream request timeout: a refused request is never answered, so this is how long
/// a refusal takes to show.
const JS_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest a test here may take: an allowed step that a permission gap makes hang (an
/// ordered consumer retrying forever, a watch that never fires) fails the test instead
/// of stalling the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(25);

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(async {
            tokio::time::timeout(TEST_TIMEOUT, test)
                .await
                .unwrap_or_else(|_| panic!("the test did not finish within {TEST_TIMEOUT:?}"))
        });
}

/// A connection as one user, recording the errors the server reports.
struct As {
    user: String,
    client: async_nats::Client,
    js: jetstream::Context,
    server_errors: Arc<Mutex<Vec<String>>>,
}

impl As {
    async fn connect(server: &NatsServer, user: &str) -> As {
        let server_errors = Arc::new(Mutex::new(Vec::new()));
        let sink = server_errors.clone();
        let client = async_nats::ConnectOptions::with_user_and_password(
            user.to_string(),
            server.password(user).to_string(),
        )
        .name(format!("test-{user}"))
        .event_callback(move |event| {
            let sink = sink.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    sink.lock().unwrap().push(error.to_string());
                }
            }
        })
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connecting as {user}: {e}"));
        let js = jetstream::ContextBuilder::new()
            .timeout(JS_TIMEOUT)
            .build(client.clone());
        As {
            user: user.to_string(),
            client,
            js,
            server_errors,
        }
    }

    /// Waits (briefly) for the server to report a permissions violation on `subject`.
    async fn assert_violation(&self, subject: &str) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let errors = self.server_errors.lock().unwrap().clone();
            if errors
                .iter()
                .any(|e| e.contains("Permissions Violation") && e.contains(subject))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: expected a permissions violation on {subject}, the server reported {errors:?}",
                self.user
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts that a JetStream publish on `subject` is refused by the ACL: no ack, and
    /// the server names the subject.
    async fn assert_publish_refused(&self, subject: &str) {
        let outcome = match self
            .js
            .publish(subject.to_string(), "not allowed".into())
            .await
        {
            Ok(ack) => ack.await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(ack) => panic!(
                "{} published on {subject} and got an ack: {ack:?}",
                self.user
            ),
            Err(error) => assert_eq!(
                error.kind(),
                PublishErrorKind::TimedOut,
                "{}: publish on {subject}: {error}",
                self.user
            ),
        }
        self.assert_violation(subject).await;
    }

    /// Asserts that a JetStream API request on `subject` is refused by the ACL.
    async fn assert_request_refused<T, E>(
        &self,
        request: impl std::future::Future<Output = Result<T, E>>,
        subject: &str,
    ) {
        assert!(
            request.await.is_err(),
            "{}: the request on {subject} succeeded",
            self.user
        );
        self.assert_violation(subject).await;
    }

    async fn assert_core_publish_refused(&self, subject: &str) {
        self.client
            .publish(subject.to_string(), "not allowed".into())
            .await
            .expect("queueing a core publish");
        self.client.flush().await.expect("flushing");
        self.assert_violation(subject).await;
    }
}

fn messages_in(stream: &jetstream::stream::Info) -> u64 {
    stream.state.messages
}

async fn stream_info(js: &jetstream::Context, name: &str) -> jetstream::stream::Info {
    js.get_stream(name)
        .await
        .unwrap_or_else(|e| panic!("opening stream {name}: {e}"))
        .get_info()
        .await
        .unwrap_or_else(|e| panic!("reading stream {name}: {e}"))
}

fn receipt(key_id: &str, emitter_sequence: u64, index: u64) -> Receipt {
    Receipt {
        key_id: key_id.to_string(),
        emitter_sequence,
        event_id: format!("event-{emitter_sequence}"),
        index,
        entry_hash: "00".repeat(32),
        leaf_hash: "11".repeat(32),
        accepted: true,
        rejection_code: None,
        rejection_reason: None,
    }
}

/// Creates the streams and the bucket with the requests `ensure_topology` makes, without
/// its property check (tested on its own in
/// `sequencer_builds_the_topology_appends_and_cannot_remove_anything`), so that the
/// permission tests do not depend on it.
async fn create_topology(js: &jetstream::Context) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use stockpile_nats::topology::{
        RECEIPTS_BUCKET, checkpoints_config, ledger_config, receipts_config, submissions_config,
    };
    for config in [
        submissions_config(Replicas(1)),
        ledger_config(Replicas(1)),
        checkpoints_config(Replicas(1)),
    ] {
        let name = config.name.clone();
        js.get_or_create_stream(config)
            .await
            .with_context(|| format!("creating stream {name}"))?
            .info()
            .await
            .with_context(|| format!("reading stream {name}"))?;
    }
    if js.get_key_value(RECEIPTS_BUCKET).await.is_err() {
        js.create_key_value(receipts_config(Replicas(1)))
            .await
            .context("creating the receipts bucket")?;
    }
    Ok(())
}

/// Starts a server and creates the topology as the sequencer.
async fn server_with_topology() -> (NatsServer, As) {
    let server = NatsServer::start();
    let sequencer = As::connect(&server, "sequencer").await;
    create_topology(&sequencer.js).await.unwrap_or_else(|e| {
        panic!(
            "creating the topology as sequencer: {e:#}\n{}",
            server.log()
        )
    });
    (server, sequencer)
}

/// The variables `cluster.conf` reads beyond those of `single.conf`, for one node.
fn cluster_node_env() -> Vec<(&'static str, String)> {
    vec![
        ("STOCKPILE_NATS_SERVER_NAME", "n1".into()),
        ("STOCKPILE_NATS_CLUSTER_PORT", "6222".into()),
        ("STOCKPILE_NATS_ROUTE_PASSWORD", "sp-route-check".into()),
        (
            "STOCKPILE_NATS_ROUTES",
            "[nats-route://route:sp-route-check@127.0.0.1:6222, \
             nats-route://route:sp-route-check@127.0.0.1:6223, \
             nats-route://route:sp-route-check@127.0.0.1:6224]"
                .into(),
        ),
    ]
}

#[test]
fn every_config_file_passes_nats_server_t() {
    let server = NatsServer::start();
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(deploy_dir()).expect("reading deploy/nats") {
        let path = entry.expect("listing deploy/nats").path();
        if path.extension().is_none_or(|e| e != "conf") {
            continue;
        }
        let output = std::process::Command::new(nats_server_binary())
            .arg("-t")
            .arg("-c")
            .arg(&path)
            .envs(server.env())
            .envs(cluster_node_env())
            .output()
            .expect("running nats-server -t");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.contains("is valid"),
            "nats-server -t -c {}: {text}",
            path.display()
        );
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    checked.sort();
    assert_eq!(checked, ["accounts.conf", "cluster.conf", "single.conf"]);

    // A cluster node without its routes does not start.
    let output = std::process::Command::new(nats_server_binary())
        .arg("-t")
        .arg("-c")
        .arg(deploy_dir().join("cluster.conf"))
        .envs(server.env())
        .envs(cluster_node_env())
        .env_remove("STOCKPILE_NATS_ROUTES")
        .output()
        .expect("running nats-server -t");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && text.contains("STOCKPILE_NATS_ROUTES"),
        "a cluster node without STOCKPILE_NATS_ROUTES was accepted: {text}"
    );

    // The check can fail: a missing password variable is an error naming it.
    let mut command = std::process::Command::new(nats_server_binary());
    command
        .arg("-t")
        .arg("-c")
        .arg(deploy_dir().join("single.conf"))
        .envs(server.env())
        .env_remove("STOCKPILE_NATS_DEMIL_PASSWORD");
    let output = command.output().expect("running nats-server -t");
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && text.contains("STOCKPILE_NATS_DEMIL_PASSWORD"),
        "a configuration without STOCKPILE_NATS_DEMIL_PASSWORD was accepted: {text}"
    );
}

#[test]
fn server_fsyncs_every_message_and_listens_on_loopback_only() {
    let server = NatsServer::start();
    let varz = server.monitor_json("/varz");
    assert_eq!(
        varz["jetstream"]["config"]["sync_always"],
        serde_json::Value::Bool(true),
        "the server must run with sync_interval: always; /varz jetstream: {}",
        varz["jetstream"]
    );
    assert_eq!(varz["host"], "127.0.0.1", "client listener");
    assert_eq!(varz["http_host"], "127.0.0.1", "monitoring listener");
    assert_eq!(varz["port"], u64::from(server.port()));
    assert_eq!(varz["http_port"], u64::from(server.http_port()));
    let store = varz["jetstream"]["config"]["store_dir"]
        .as_str()
        .expect("a store directory");
    assert!(
        std::path::Path::new(store).starts_with(server.store_dir()),
        "store {store} is not under {}",
        server.store_dir().display()
    );
    // /jsz answers too (what an operator checks).
    let jsz = server.monitor_json("/jsz");
    assert!(
        jsz["config"]["sync_always"].as_bool() == Some(true),
        "{jsz}"
    );
}

#[test]
fn every_user_connects_with_its_password() {
    run(async {
        let server = NatsServer::start();
        for user in USERS {
            let client = stockpile_nats::connect(&server.config_for(user))
                .await
                .unwrap_or_else(|e| panic!("connecting as {user}: {e:#}"));
            // Every user may ask for the JetStream account information.
            jetstream::new(client)
                .query_account()
                .await
                .unwrap_or_else(|e| panic!("JetStream account info as {user}: {e}"));
        }
    });
}

#[test]
fn wrong_credentials_and_unreachable_servers_fail_fast_and_clearly() {
    run(async {
        let server = NatsServer::start();
        let cases = [
            (
                "wrong password",
                NatsConfig {
                    password: Some("sp-not-the-password".into()),
                    ..server.config_for("depot")
                },
            ),
            (
                "unknown user",
                NatsConfig {
                    user: Some("intruder".into()),
                    ..server.config_for("depot")
                },
            ),
            ("no credentials", NatsConfig::new(server.url())),
        ];
        for (case, config) in cases {
            let started = Instant::now();
            let error = stockpile_nats::connect(&config)
                .await
                .map(|_| ())
                .expect_err(case);
            let message = format!("{error:#}");
            assert!(
                message.contains("refused the credentials"),
                "{case}: {message}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{case} took {:?}",
                started.elapsed()
            );
        }

        let nobody = format!("nats://127.0.0.1:{}", crate::support::nats::free_port());
        let started = Instant::now();
        let error = stockpile_nats::connect(&NatsConfig::new(nobody.clone()))
            .await
            .map(|_| ())
            .expect_err("nothing listens there");
        let message = format!("{error:#}");
        assert!(
            message.contains("cannot reach NATS") && message.contains(&nobody),
            "{message}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn the_sequencer_ensures_the_topology() {
    run(async {
        let server = NatsServer::start();
        let sequencer = As::connect(&server, "sequencer").await;
        // Twice: a restarted sequencer finds the topology in place and checks it.
        for run in ["creating", "checking"] {
            ensure_topology(&sequencer.js, Replicas(1))
                .await
                .unwrap_or_else(|e| panic!("ensure_topology as sequencer ({run}): {e:#}"));
        }
        let errors = sequencer.server_errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "ensure_topology was refused: {errors:?}");
        for name in [SUBMISSIONS_STREAM, LEDGER_STREAM, CHECKPOINTS_STREAM] {
            let info = stream_info(&sequencer.js, name).await;
            assert!(info.config.deny_delete, "{name} allows deletes");
            assert!(info.config.deny_purge, "{name} allows purges");
            assert!(!info.config.allow_rollup, "{name} allows rollups");
        }
        receipts_bucket(&sequencer.js)
            .await
            .expect("the receipts bucket exists");
    });
}

#[test]
fn the_sequencer_appends_and_cannot_remove_or_submit() {
    run(async {
        let (server, sequencer) = server_with_topology().await;
        for name in [SUBMISSIONS_STREAM, LEDGER_STREAM, CHECKPOINTS_STREAM] {
            let info = stream_info(&sequencer.js, name).await;
            assert!(info.config.deny_delete, "{name} allows deletes");
            assert!(info.config.deny_purge, "{name} allows purges");
            assert!(!info.config.allow_rollup, "{name} allows rollups");
        }
        let ack = sequencer
            .js
            .publish(LEDGER_SUBJECT, "entry 0".into())
            .await
            .expect("publishing an entry")
            .await
            .expect("the entry is acked");
        assert_eq!((ack.stream.as_str(), ack.sequence), (LEDGER_STREAM, 1));
        let ack = sequencer
            .js
            .publish(CHECKPOINTS_SUBJECT, "checkpoint".into())
            .await
            .expect("publishing a checkpoint")
            .await
            .expect("the checkpoint is acked");
        assert_eq!(ack.stream, CHECKPOINTS_STREAM);
        let bucket = receipts_bucket(&sequencer.js)
            .await
            .expect("receipts bucket");
        assert!(
            record_receipt(&bucket, &receipt("us.depot", 1, 0))
                .await
                .expect("recording a receipt")
        );
        // What a restarting sequencer reads back: the ledger, the latest checkpoint, the
        // receipts.
        let read = stockpile_nats::ledger::read_ledger(&sequencer.js, 0, |_| Ok(()))
            .await
            .expect("the sequencer reads the ledger");
        assert_eq!(read, 1);
        let latest = stockpile_nats::checkpoints::latest_checkpoint(&sequencer.js)
            .await
            .expect("the sequencer reads the latest checkpoint")
            .expect("a checkpoint");
        assert_eq!(latest.note, "checkpoint");
        assert!(
            get_receipt(&bucket, "us.depot", 1)
                .await
                .expect("the sequencer reads a receipt")
                .is_some()
        );
        let errors = sequencer.server_errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "an allowed step was refused: {errors:?}");

        // Nothing leaves a stream, whatever the stream settings say; nor does it submit.
        let ledger = sequencer.js.get_stream(LEDGER_STREAM).await.unwrap();
        let depot_subject = submit_subject("depot");
        futures::join!(
            sequencer.assert_request_refused(
                sequencer.js.delete_stream(LEDGER_STREAM),
                "$JS.API.STREAM.DELETE.LEDGER"
            ),
            sequencer.assert_request_refused(
                ledger.delete_message(1),
                "$JS.API.STREAM.MSG.DELETE.LEDGER"
            ),
            sequencer.assert_request_refused(
                ledger.purge().into_future(),
                "$JS.API.STREAM.PURGE.LEDGER"
            ),
            sequencer.assert_request_refused(
                sequencer
                    .js
                    .delete_key_value(stockpile_nats::topology::RECEIPTS_BUCKET),
                "$JS.API.STREAM.DELETE.KV_RECEIPTS"
            ),
            sequencer.assert_publish_refused(&depot_subject),
        );

        let admin = As::connect(&server, "admin").await;
        assert_eq!(messages_in(&stream_info(&admin.js, LEDGER_STREAM).await), 1);
        assert_eq!(
            messages_in(&stream_info(&admin.js, SUBMISSIONS_STREAM).await),
            0
        );
        assert_eq!(messages_in(&stream_info(&admin.js, "KV_RECEIPTS").await), 1);
    });
}

#[test]
fn a_submission_flows_from_emitter_to_sequencer_to_readers() {
    run(async {
        let (server, sequencer) = server_with_topology().await;
        let depot = As::connect(&server, "depot").await;

        // The emitter submits on its own subject.
        let ack = depot
            .js
            .publish(submit_subject("depot"), "signed submission".into())
            .await
            .expect("submitting")
            .await
            .expect("the submission is acked");
        assert_eq!((ack.stream.as_str(), ack.sequence), (SUBMISSIONS_STREAM, 1));

        // The sequencer consumes it with a durable consumer and a confirmed ack.
        let submissions = sequencer.js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
        let consumer = submissions
            .get_or_create_consumer(
                "sequencer",
                pull::Config {
                    durable_name: Some("sequencer".into()),
                    ack_policy: AckPolicy::Explicit,
                    ..Default::default()
                },
            )
            .await
            .expect("creating the sequencer's consumer");
        let mut batch = consumer
            .fetch()
            .max_messages(10)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("fetching submissions");
        let message = batch
            .next()
            .await
            .expect("one submission")
            .expect("a message");
        assert_eq!(&message.payload[..], b"signed submission");
        let submission_sequence = message.info().unwrap().stream_sequence;
        message.double_ack().await.expect("acking the submission");

        // It appends the entry and records the receipt.
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            SUBMISSION_SEQUENCE_HEADER,
            submission_sequence.to_string().as_str(),
        );
        sequencer
            .js
            .publish_with_headers(LEDGER_SUBJECT, headers, "entry 0".into())
            .await
            .expect("appending")
            .await
            .expect("the entry is acked");
        let sequencer_bucket = receipts_bucket(&sequencer.js).await.unwrap();
        assert!(
            record_receipt(&sequencer_bucket, &receipt("us.depot", 1, 0))
                .await
                .unwrap()
        );

        // It answers proof requests; the emitter asks.
        let mut requests = sequencer
            .client
            .queue_subscribe(
                stockpile_nats::topology::PROOF_INCLUSION_SUBJECT,
                stockpile_nats::topology::PROOF_QUEUE_GROUP.into(),
            )
            .await
            .expect("subscribing to proof requests");
        // A round trip on the same connection: the server has the subscription after it.
        sequencer.js.query_account().await.unwrap();
        let responder_client = sequencer.client.clone();
        let responder = tokio::spawn(async move {
            let request = requests.next().await.expect("a proof request");
            let reply = serde_json::to_vec(&stockpile_nats::proofs::ProofReply::NotYetCovered {
                ledger_size: 1,
                checkpoint_size: 0,
            })
            .unwrap();
            responder_client
                .publish(request.reply.expect("a reply subject"), reply.into())
                .await
                .expect("replying");
            responder_client.flush().await.unwrap();
        });
        let reply = stockpile_nats::proofs::request_inclusion_proof(&depot.client, 0)
            .await
            .unwrap_or_else(|e| panic!("the emitter gets a proof reply: {e:#}"));
        assert!(matches!(
            reply,
            stockpile_nats::proofs::ProofReply::NotYetCovered { ledger_size: 1, .. }
        ));
        responder.await.unwrap();

        // The emitter reads its receipts with gets (it polls: a watch would need a
        // consumer, which it may not create).
        let depot_bucket = receipts_bucket(&depot.js)
            .await
            .expect("the emitter opens the receipts bucket");
        assert_eq!(
            get_receipt(&depot_bucket, "us.depot", 1)
                .await
                .expect("reading a receipt"),
            Some(receipt("us.depot", 1, 0))
        );
        assert_eq!(
            get_receipt(&depot_bucket, "us.depot", 2).await.unwrap(),
            None
        );
        assert!(
            record_receipt(&sequencer_bucket, &receipt("us.depot", 2, 1))
                .await
                .unwrap()
        );
        assert_eq!(
            get_receipt(&depot_bucket, "us.depot", 2).await.unwrap(),
            Some(receipt("us.depot", 2, 1))
        );
        for actor in [&sequencer, &depot] {
            let errors = actor.server_errors.lock().unwrap().clone();
            assert!(
                errors.is_empty(),
                "an allowed step of {} was refused: {errors:?}",
                actor.user
            );
        }
        // The emitter cannot write receipts.
        depot
            .assert_publish_refused(&format!(
                "$KV.RECEIPTS.{}",
                stockpile_nats::receipts::receipt_key("us.depot", 3)
            ))
            .await;

        // A reader reads the ledger.
        let projector = As::connect(&server, "projector").await;
        let mut entries = Vec::new();
        let read = stockpile_nats::ledger::read_ledger(&projector.js, 0, |message| {
            entries.push(message);
            Ok(())
        })
        .await
        .expect("the projector reads the ledger");
        assert_eq!(read, 1);
        assert_eq!(entries[0].index, 0);
        assert_eq!(&entries[0].entry[..], b"entry 0");
        assert_eq!(entries[0].submission_sequence, Some(submission_sequence));
        let errors = projector.server_errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "the projector was refused: {errors:?}");
    });
}

#[test]
fn emitters_submit_only_on_their_own_subject() {
    run(async {
        let (server, _sequencer) = server_with_topology().await;
        let server = &server;
        let emitters = futures::future::join_all(EMITTERS.iter().map(|name| async move {
            let emitter = As::connect(server, name).await;
            emitter
                .js
                .publish(submit_subject(name), format!("from {name}").into())
                .await
                .unwrap_or_else(|e| panic!("{name} submitting: {e}"))
                .await
                .unwrap_or_else(|e| panic!("{name}'s submission acked: {e}"));
            emitter
        }))
        .await;

        // Everything forbidden, all emitters at once (each refusal takes JS_TIMEOUT).
        let rogue = || jetstream::stream::Config {
            name: "ROGUE".into(),
            subjects: vec!["rogue.>".into()],
            ..Default::default()
        };
        futures::future::join_all(emitters.iter().enumerate().map(|(i, emitter)| async move {
            let other = submit_subject(EMITTERS[(i + 1) % EMITTERS.len()]);
            futures::join!(
                emitter.assert_publish_refused(&other),
                emitter.assert_publish_refused(LEDGER_SUBJECT),
                emitter.assert_publish_refused(CHECKPOINTS_SUBJECT),
                emitter.assert_publish_refused("$KV.RECEIPTS.forged.1"),
                emitter.assert_request_refused(
                    emitter.js.create_stream(rogue()),
                    "$JS.API.STREAM.CREATE.ROGUE"
                ),
                emitter.assert_request_refused(
                    emitter.js.delete_stream(SUBMISSIONS_STREAM),
                    "$JS.API.STREAM.DELETE.SUBMISSIONS"
                ),
                // Submissions of others are not theirs to read.
                emitter.assert_request_refused(
                    emitter.js.get_stream(SUBMISSIONS_STREAM),
                    "$JS.API.STREAM.INFO.SUBMISSIONS"
                ),
                emitter.assert_request_refused(
                    emitter.js.get_stream(LEDGER_STREAM),
                    "$JS.API.STREAM.INFO.LEDGER"
                ),
            );
        }))
        .await;

        let admin = As::connect(server, "admin").await;
        let submissions = stream_info(&admin.js, SUBMISSIONS_STREAM).await;
        assert_eq!(messages_in(&submissions), EMITTERS.len() as u64);
        let stream = admin.js.get_stream(SUBMISSIONS_STREAM).await.unwrap();
        for name in EMITTERS {
            let last = stream
                .get_last_raw_message_by_subject(&submit_subject(name))
                .await
                .unwrap_or_else(|e| panic!("last submission of {name}: {e}"));
            assert_eq!(&last.payload[..], format!("from {name}").as_bytes());
        }
        assert_eq!(messages_in(&stream_info(&admin.js, LEDGER_STREAM).await), 0);
        assert_eq!(
            messages_in(&stream_info(&admin.js, CHECKPOINTS_STREAM).await),
            0
        );
        assert_eq!(messages_in(&stream_info(&admin.js, "KV_RECEIPTS").await), 0);
        assert!(admin.js.get_stream("ROGUE").await.is_err());
    });
}

#[test]
fn readers_read_the_ledger_and_write_nothing() {
    run(async {
        let (server, sequencer) = server_with_topology().await;
        for i in 0..3 {
            sequencer
                .js
                .publish(LEDGER_SUBJECT, format!("entry {i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        sequencer
            .js
            .publish(CHECKPOINTS_SUBJECT, "a checkpoint".into())
            .await
            .unwrap()
            .await
            .unwrap();

        let server = &server;
        let readers =
            futures::future::join_all(["projector", "inspector"].map(|user| async move {
                let reader = As::connect(server, user).await;
                let mut seen = Vec::new();
                let read = stockpile_nats::ledger::read_ledger(&reader.js, 1, |message| {
                    seen.push(message.index);
                    Ok(())
                })
                .await
                .unwrap_or_else(|e| panic!("{user} reading the ledger: {e:#}"));
                assert_eq!((read, seen), (2, vec![1, 2]), "{user}");
                assert_eq!(
                    stockpile_nats::ledger::ledger_size(&reader.js)
                        .await
                        .unwrap(),
                    3
                );
                let latest = stockpile_nats::checkpoints::latest_checkpoint(&reader.js)
                    .await
                    .unwrap_or_else(|e| panic!("{user} reading checkpoints: {e:#}"))
                    .expect("a checkpoint");
                assert_eq!(latest.note, "a checkpoint");
                let all = stockpile_nats::checkpoints::all_checkpoints(&reader.js)
                    .await
                    .unwrap_or_else(|e| panic!("{user} reading all checkpoints: {e:#}"));
                assert_eq!(all.len(), 1, "{user}");
                let ledger = reader.js.get_stream(LEDGER_STREAM).await.unwrap();
                assert_eq!(
                    &ledger.direct_get(2).await.expect("direct get").payload[..],
                    b"entry 1"
                );

                // A durable consumer with confirmed acks (the projector's tracking
                // pattern). Readers cannot create consumers (a consumer's creator could
                // aim push delivery at the ledger's subjects), so the operator creates it.
                let admin = As::connect(server, "admin").await;
                admin
                    .js
                    .get_stream(LEDGER_STREAM)
                    .await
                    .unwrap()
                    .create_consumer(pull::Config {
                        durable_name: Some(user.into()),
                        ack_policy: AckPolicy::Explicit,
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("admin creating {user}'s consumer: {e}"));
                let consumer: jetstream::consumer::PullConsumer = ledger
                    .get_consumer(user)
                    .await
                    .unwrap_or_else(|e| panic!("{user} opening its durable consumer: {e}"));
                let mut batch = consumer
                    .fetch()
                    .max_messages(3)
                    .expires(Duration::from_secs(1))
                    .messages()
                    .await
                    .unwrap();
                let mut count = 0;
                while let Some(message) = batch.next().await {
                    message
                        .unwrap()
                        .double_ack()
                        .await
                        .unwrap_or_else(|e| panic!("{user} acking: {e}"));
                    count += 1;
                }
                assert_eq!(count, 3, "{user}");
                reader
            }))
            .await;

        futures::future::join_all(readers.iter().map(|reader| async move {
            let ledger = reader.js.get_stream(LEDGER_STREAM).await.unwrap();
            let mut changed = stockpile_nats::topology::ledger_config(Replicas(1));
            changed.deny_delete = false;
            let depot_subject = submit_subject("depot");
            futures::join!(
                reader.assert_publish_refused(LEDGER_SUBJECT),
                reader.assert_publish_refused(CHECKPOINTS_SUBJECT),
                reader.assert_publish_refused(&depot_subject),
                reader.assert_publish_refused("$KV.RECEIPTS.forged.1"),
                reader
                    .assert_core_publish_refused(stockpile_nats::topology::PROOF_INCLUSION_SUBJECT),
                reader.assert_request_refused(
                    ledger.delete_message(1),
                    "$JS.API.STREAM.MSG.DELETE.LEDGER"
                ),
                reader.assert_request_refused(
                    reader.js.delete_stream(CHECKPOINTS_STREAM),
                    "$JS.API.STREAM.DELETE.CHECKPOINTS"
                ),
                reader.assert_request_refused(
                    reader.js.update_stream(changed),
                    "$JS.API.STREAM.UPDATE.LEDGER"
                ),
                // No consumers of their own: push delivery could target any subject.
                reader.assert_request_refused(
                    ledger.create_consumer(pull::Config {
                        durable_name: Some("own".into()),
                        ..Default::default()
                    }),
                    "$JS.API.CONSUMER.CREATE.LEDGER.own"
                ),
                // Submissions and receipts are not theirs to read.
                reader.assert_request_refused(
                    reader.js.get_stream(SUBMISSIONS_STREAM),
                    "$JS.API.STREAM.INFO.SUBMISSIONS"
                ),
                reader.assert_request_refused(
                    reader
                        .js
                        .get_key_value(stockpile_nats::topology::RECEIPTS_BUCKET),
                    "$JS.API.STREAM.INFO.KV_RECEIPTS"
                ),
            );
        }))
        .await;

        let admin = As::connect(server, "admin").await;
        let ledger = stream_info(&admin.js, LEDGER_STREAM).await;
        assert_eq!(messages_in(&ledger), 3);
        assert!(ledger.config.deny_delete);
        assert_eq!(
            messages_in(&stream_info(&admin.js, CHECKPOINTS_STREAM).await),
            1
        );
        assert_eq!(
            messages_in(&stream_info(&admin.js, SUBMISSIONS_STREAM).await),
            0
        );
    });
}

#[test]
fn admin_can_delete_streams() {
    run(async {
        let server = NatsServer::start();
        let admin = As::connect(&server, "admin").await;
        admin
            .js
            .create_stream(jetstream::stream::Config {
                name: "SCRATCH".into(),
                subjects: vec!["scratch.>".into()],
                ..Default::default()
            })
            .await
            .expect("admin creates a stream");
        assert!(
            admin
                .js
                .delete_stream("SCRATCH")
                .await
                .expect("admin deletes it")
                .success
        );
    });
}

#[test]
fn acked_entries_survive_a_kill_and_restart() {
    run(async {
        let (mut server, sequencer) = server_with_topology().await;
        for i in 0..5 {
            sequencer
                .js
                .publish(LEDGER_SUBJECT, format!("entry {i}").into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
        drop(sequencer);
        server.kill();
        assert!(!server.is_running());
        server.restart();
        let projector = stockpile_nats::connect(&server.config_for("projector"))
            .await
            .expect("connecting after the restart");
        let js = jetstream::new(projector);
        assert_eq!(stockpile_nats::ledger::ledger_size(&js).await.unwrap(), 5);
    });
}

/// A push consumer delivers stored messages with the server's own authority, to whatever
/// `deliver_subject` its creator chose; nats-server 2.15.1 does not check that subject
/// against the creator's publish permissions (nats-server#8274, open). So nobody but the
/// sequencer and admin may create consumers: an emitter (on KV_RECEIPTS) and a reader (on
/// LEDGER) both try to aim one at the ledger's subjects, and nothing may land.
#[test]
fn consumers_cannot_deliver_into_the_ledger_streams() {
    run(async {
        let (server, sequencer) = server_with_topology().await;
        sequencer
            .js
            .publish(LEDGER_SUBJECT, "entry 0".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let bucket = receipts_bucket(&sequencer.js).await.unwrap();
        record_receipt(&bucket, &receipt("us.depot", 1, 0))
            .await
            .unwrap();

        let depot = As::connect(&server, "depot").await;
        let receipts = depot.js.get_stream("KV_RECEIPTS").await.unwrap();
        let depot_attempt = receipts
            .create_consumer(jetstream::consumer::push::Config {
                deliver_subject: LEDGER_SUBJECT.into(),
                ..Default::default()
            })
            .await;
        let projector = As::connect(&server, "projector").await;
        let ledger = projector.js.get_stream(LEDGER_STREAM).await.unwrap();
        let projector_attempt = ledger
            .create_consumer(jetstream::consumer::push::Config {
                deliver_subject: CHECKPOINTS_SUBJECT.into(),
                ..Default::default()
            })
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;

        let admin = As::connect(&server, "admin").await;
        let ledger_count = messages_in(&stream_info(&admin.js, LEDGER_STREAM).await);
        let checkpoint_count = messages_in(&stream_info(&admin.js, CHECKPOINTS_STREAM).await);
        assert!(
            depot_attempt.is_err() && projector_attempt.is_err(),
            "neither an emitter nor a reader may create a consumer"
        );
        assert_eq!(
            (ledger_count, checkpoint_count),
            (1, 0),
            "nothing was delivered into LEDGER or CHECKPOINTS"
        );
    });
}
