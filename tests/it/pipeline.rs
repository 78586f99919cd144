//! The write path against a real nats-server: submissions in, one verified ledger out.
//! The sequencer runs as its own process (so it can be killed with SIGKILL); submissions
//! are published as the emitting services would, with `Nats-Msg-Id`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use stockpile_core::events::Role;
use stockpile_nats::ledger::read_ledger;
use stockpile_nats::receipts::{get_receipt, receipts_bucket};
use stockpile_nats::topology::submit_subject;
use stockpile_proto::envelope::{DecodedEntry, EntryVerdict, decode_entry, decode_submission};
use stockpile_scenario::{Dataset, ScenarioConfig, Submission};

use crate::support::events::{base_ledger, destroy, lot};
use crate::support::nats::NatsServer;
use crate::support::system::{
    Service, jetstream_as, ledger_size, runtime, start_sequencer, stockpile, verify_live,
    wait_for_checkpoint, wait_for_ledger_size, wait_for_stream,
};
use crate::support::{ORIGIN, Record};

/// The service whose subject carries a role's submissions (domain roles to the three
/// emitting services, as deploy/nats grants them).
fn service_for(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Registrar) => "registrar",
        Some(Role::Depot | Role::Inspector) | None => "depot",
        Some(Role::Demil | Role::Certifier) => "demil",
        Some(Role::ExportControl) => "export-control",
    }
}

/// Publishes submissions as their services would: own subject, `Nats-Msg-Id`
/// `<key>/<emitter sequence>`, each ack awaited before the next publish — services on
/// separate connections have no order between them otherwise, and the scenario's events
/// depend on each other across services.
async fn publish(nats: &NatsServer, submissions: &[(String, String, Bytes)]) {
    let mut contexts: BTreeMap<String, jetstream::Context> = BTreeMap::new();
    for (service, msg_id, bytes) in submissions {
        if !contexts.contains_key(service) {
            contexts.insert(service.clone(), jetstream_as(nats, service).await);
        }
        let js = &contexts[service];
        js.send_publish(
            submit_subject(service),
            PublishMessage::build()
                .payload(bytes.clone())
                .message_id(msg_id.as_str()),
        )
        .await
        .expect("queue a submission")
        .await
        .expect("SUBMISSIONS acknowledges");
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

fn scenario(
    dataset: Dataset,
    min_entries: u64,
) -> (Vec<Submission>, stockpile_scenario::ScenarioKeys) {
    let config = ScenarioConfig {
        seed: 5,
        dataset,
        min_entries,
        checkpoint_every: 0,
    };
    let submissions = stockpile_scenario::submissions(&config);
    let keys = submissions.keys().clone();
    (submissions.collect(), keys)
}

fn as_publishable(submissions: &[Submission]) -> Vec<(String, String, Bytes)> {
    submissions
        .iter()
        .map(|s| {
            (
                service_for(s.role).to_string(),
                msg_id(&s.bytes),
                s.bytes.clone(),
            )
        })
        .collect()
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

/// Event ids of accepted entries, each with how often it appears.
fn accepted_ids(entries: &[DecodedEntry]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for entry in entries {
        if entry.verdict == EntryVerdict::Accepted {
            let decoded = decode_submission(&entry.submission).expect("accepted entries decode");
            *ids.entry(decoded.event.event_id).or_insert(0) += 1;
        }
    }
    ids
}

#[test]
fn a_scenario_is_sequenced_once_verifies_and_exports() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (submissions, keys) = scenario(Dataset::FinlandLike, 0);
    let trust_json = keys.trust_root().to_json();
    let trust = dir.path().join("trust.json");
    fs::write(&trust, &trust_json).expect("write trust");
    let sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &keys.log, &[]);
    let rt = runtime();
    let publishable = as_publishable(&submissions);
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    rt.block_on(async {
        wait_for_stream(&js, &[&sequencer]).await;
        // Published twice: the second round repeats every Nats-Msg-Id inside the window.
        publish(&nats, &publishable).await;
        publish(&nats, &publishable).await;
        wait_for_ledger_size(&js, submissions.len() as u64, &[&sequencer]).await;
        // Give a duplicate the time to (wrongly) become an entry.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let entries = rt.block_on(ledger_entries(&js));
    assert_eq!(
        entries.len(),
        submissions.len(),
        "each submission exactly once"
    );
    let expected_rejections = submissions
        .iter()
        .filter(|s| s.expected_rejection.is_some())
        .count();
    let rejected = entries
        .iter()
        .filter(|e| e.verdict != EntryVerdict::Accepted)
        .count();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &entries {
        if let EntryVerdict::Rejected { code, reason } = &entry.verdict {
            *codes
                .entry(format!(
                    "{code}: {}",
                    reason.chars().take(120).collect::<String>()
                ))
                .or_insert(0) += 1;
        }
    }
    assert_eq!(
        rejected, expected_rejections,
        "the scenario's hostile submissions, and only they, are refused: {codes:#?}"
    );
    let ids = accepted_ids(&entries);
    assert!(
        ids.values().all(|count| *count == 1),
        "no event accepted twice"
    );

    rt.block_on(wait_for_checkpoint(
        &js,
        entries.len() as u64,
        &[&sequencer],
    ));
    let (code, out, err) = verify_live(&nats, &trust, &[]);
    assert_eq!(code, 0, "verify --nats:\n{out}\n{err}");
    assert!(
        out.contains(&format!(
            "{} accepted",
            submissions.len() - expected_rejections
        )),
        "{out}"
    );

    // Every decodable submission has a receipt naming its entry.
    rt.block_on(async {
        let bucket = receipts_bucket(&js).await.expect("receipts bucket");
        for (index, entry) in entries.iter().enumerate() {
            let Ok(decoded) = decode_submission(&entry.submission) else {
                continue;
            };
            let receipt = get_receipt(&bucket, &decoded.key_id, decoded.event.emitter_sequence)
                .await
                .expect("read receipt")
                .unwrap_or_else(|| panic!("no receipt for entry {index}"));
            assert_eq!(receipt.index, index as u64);
            assert_eq!(receipt.accepted, entry.verdict == EntryVerdict::Accepted);
        }
    });

    // An old signed event replayed after the dedup window (a fresh message id stands in
    // for the window's expiry) is refused, recorded, and leaves the original's receipt.
    let replayed = submissions
        .iter()
        .find(|s| s.role == Some(Role::Depot) && s.expected_rejection.is_none())
        .expect("the scenario has depot events");
    rt.block_on(async {
        publish(
            &nats,
            &[("depot".into(), "replay-1".into(), replayed.bytes.clone())],
        )
        .await;
        wait_for_ledger_size(&js, submissions.len() as u64 + 1, &[&sequencer]).await;
    });
    let entries = rt.block_on(ledger_entries(&js));
    let last = entries.last().expect("entries");
    assert_eq!(
        last.submission, replayed.bytes,
        "the replay is recorded verbatim"
    );
    match &last.verdict {
        EntryVerdict::Rejected { code, reason } => {
            assert!(
                code.contains("sequence") || code.contains("replay") || code.contains("duplicate"),
                "{code}: {reason}"
            );
        }
        EntryVerdict::Accepted => panic!("a replayed event was accepted"),
    }
    assert_eq!(
        accepted_ids(&entries),
        ids,
        "the replay changed no accepted event"
    );

    // The export of the live ledger verifies offline, and the latest checkpoint covers it.
    let export = dir.path().join("ledger.export");
    let url = nats.url();
    let password = nats.password("inspector").to_string();
    let nats_flags = [
        "--nats",
        &url,
        "--nats-user",
        "inspector",
        "--nats-password",
        &password,
    ];
    let mut waited = 0;
    loop {
        let mut args = vec!["checkpoint"];
        args.extend(nats_flags);
        args.extend(["--trust", trust.to_str().expect("utf-8")]);
        let (code, out, err) = stockpile(&args);
        assert_eq!(code, 0, "checkpoint: {out}{err}");
        if out.lines().nth(1) == Some(&entries.len().to_string()) {
            break;
        }
        waited += 1;
        assert!(waited < 100, "no checkpoint covers the whole ledger: {out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut args = vec!["export"];
    args.extend(nats_flags);
    args.extend(["--out", export.to_str().expect("utf-8")]);
    let (code, out, err) = stockpile(&args);
    assert_eq!(code, 0, "export: {out}{err}");
    let (code, out, err) = stockpile(&[
        "verify",
        export.to_str().expect("utf-8"),
        "--trust",
        trust.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "verify export:\n{out}\n{err}");
    drop(sequencer);
}

/// Submission bytes of the base ledger (a small valid history), in order.
fn base_submissions() -> (crate::support::events::Script, Vec<Bytes>) {
    let script = base_ledger(false);
    let submissions = script
        .forger
        .records
        .iter()
        .filter_map(|record| match record {
            Record::Entry(bytes) => {
                Some(decode_entry(bytes).expect("base entries decode").submission)
            }
            Record::Checkpoint(_) => None,
        })
        .collect();
    (script, submissions)
}

#[test]
fn every_bad_input_class_becomes_a_rejection_record_and_the_sequencer_carries_on() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut script, base) = base_submissions();
    let trust_json = script.keys.trust_root().to_json();
    let log = script.keys.log.clone();
    let mut sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &log, &[]);

    let depot = script.keys.depot.clone();
    let demil = script.keys.demil.clone();
    let stranger = script.keys.stranger.clone();
    let mut signed = |key: &stockpile_core::keys::SignerKey, body| {
        let mut event = script.event(body);
        event.emitter_sequence = script.forger.sequence_for(key);
        stockpile_proto::envelope::sign_event(&event, key)
    };
    let mut bad_signature = signed(&depot, lot("L7", 10, "D1"));
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "malformed bytes",
            b"\xff\xff not a protobuf submission".to_vec(),
        ),
        ("oversized", vec![0x2a; 100 * 1024]),
        ("bad signature", bad_signature),
        ("unknown key", signed(&stranger, lot("L8", 10, "D1"))),
        (
            "key not authorised for the kind",
            signed(&depot, destroy("L2", 10, "D1")),
        ),
        (
            "invalid state transition",
            signed(&demil, destroy("L2", 1_000_000, "D1")),
        ),
    ];
    let after = signed(&depot, lot("L9", 10, "D1"));

    let mut publishable: Vec<(String, String, Bytes)> = base
        .iter()
        .map(|bytes| ("admin-any".to_string(), msg_id(bytes), bytes.clone()))
        .collect();
    for (name, bytes) in &cases {
        publishable.push((
            "admin-any".into(),
            format!("case/{name}"),
            Bytes::from(bytes.clone()),
        ));
    }
    publishable.push((
        "admin-any".into(),
        msg_id(&after),
        Bytes::from(after.clone()),
    ));
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    rt.block_on(async {
        wait_for_stream(&js, &[&sequencer]).await;
        let mut acks = Vec::new();
        for (_, id, bytes) in &publishable {
            acks.push(
                js.send_publish(
                    submit_subject("depot"),
                    PublishMessage::build()
                        .payload(bytes.clone())
                        .message_id(id.as_str()),
                )
                .await
                .expect("queue"),
            );
        }
        for ack in acks {
            ack.await.expect("stored");
        }
        wait_for_ledger_size(&js, publishable.len() as u64, &[&sequencer]).await;
    });
    let entries = rt.block_on(ledger_entries(&js));
    assert_eq!(entries.len(), publishable.len());
    assert!(
        entries[..base.len()]
            .iter()
            .all(|e| e.verdict == EntryVerdict::Accepted),
        "the base history is accepted"
    );
    let mut codes = BTreeSet::new();
    for (offset, (name, _)) in cases.iter().enumerate() {
        let entry = &entries[base.len() + offset];
        match &entry.verdict {
            EntryVerdict::Rejected { code, reason } => {
                assert!(!reason.is_empty(), "{name}: a rejection says why");
                codes.insert(code.clone());
                let expected = match *name {
                    "malformed bytes" => "malformed.",
                    "oversized" => "malformed.oversized",
                    "bad signature" => "signature.",
                    "unknown key" => "signature.unknown_key",
                    "key not authorised for the kind" => "",
                    _ => "",
                };
                assert!(code.starts_with(expected), "{name}: got {code}: {reason}");
                if *name == "oversized" {
                    assert!(
                        entry.submission.is_empty(),
                        "an oversized submission is not stored"
                    );
                    assert!(reason.contains("102400 bytes"), "{reason}");
                }
            }
            EntryVerdict::Accepted => panic!("{name} was accepted"),
        }
    }
    assert_eq!(
        codes.len(),
        cases.len(),
        "each bad input has its own code: {codes:?}"
    );
    assert_eq!(
        entries.last().expect("entries").verdict,
        EntryVerdict::Accepted,
        "a good submission after them all is accepted"
    );
    assert!(
        sequencer.is_running(),
        "the sequencer keeps running:\n{}",
        sequencer.log()
    );

    let trust = dir.path().join("trust-main.json");
    rt.block_on(wait_for_checkpoint(
        &js,
        entries.len() as u64,
        &[&sequencer],
    ));
    let (code, out, err) = verify_live(&nats, &trust, &[]);
    assert_eq!(code, 0, "verify --nats:\n{out}\n{err}");
    drop(sequencer);
    let _ = ORIGIN;
}

#[test]
fn two_sequencers_at_once_produce_one_linear_chain() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (submissions, keys) = scenario(Dataset::FinlandLike, 600);
    let trust_json = keys.trust_root().to_json();
    let trust = dir.path().join("trust.json");
    fs::write(&trust, &trust_json).expect("write trust");
    let a = start_sequencer(
        &nats,
        dir.path(),
        "a",
        &trust_json,
        &keys.log,
        &["--batch", "32"],
    );
    let b = start_sequencer(
        &nats,
        dir.path(),
        "b",
        &trust_json,
        &keys.log,
        &["--batch", "32"],
    );
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    let publishable = as_publishable(&submissions);
    rt.block_on(async {
        wait_for_stream(&js, &[&a, &b]).await;
        // In slices, so that both sequencers race on many batches.
        for chunk in publishable.chunks(50) {
            publish(&nats, chunk).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        wait_for_ledger_size(&js, submissions.len() as u64, &[&a, &b]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let entries = rt.block_on(ledger_entries(&js));
    assert_eq!(
        entries.len(),
        submissions.len(),
        "one entry per submission, none twice"
    );
    let published: BTreeSet<&[u8]> = submissions.iter().map(|s| s.bytes.as_ref()).collect();
    let stored: BTreeSet<&[u8]> = entries.iter().map(|e| e.submission.as_ref()).collect();
    assert_eq!(
        published, stored,
        "the ledger holds exactly the submissions"
    );
    rt.block_on(wait_for_checkpoint(&js, entries.len() as u64, &[&a, &b]));
    let (code, out, err) = verify_live(&nats, &trust, &[]);
    assert_eq!(code, 0, "verify --nats:\n{out}\n{err}");
    let mut a = a;
    let mut b = b;
    assert!(
        a.is_running() && b.is_running(),
        "both keep running:\n{}\n{}",
        a.log_tail(),
        b.log_tail()
    );
}

#[test]
fn a_sequencer_killed_mid_batch_loses_and_duplicates_nothing() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (submissions, keys) = scenario(Dataset::FinlandLike, 3_000);
    let trust_json = keys.trust_root().to_json();
    let trust = dir.path().join("trust.json");
    fs::write(&trust, &trust_json).expect("write trust");
    let mut sequencer = start_sequencer(
        &nats,
        dir.path(),
        "main",
        &trust_json,
        &keys.log,
        &["--batch", "64"],
    );
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    let total = submissions.len() as u64;
    rt.block_on(async {
        wait_for_stream(&js, &[&sequencer]).await;
        publish(&nats, &as_publishable(&submissions)).await;
    });
    // Kill it three times at different points while it works through the backlog.
    for cut in [total / 5, total / 2, total * 4 / 5] {
        rt.block_on(wait_for_ledger_size(&js, cut, &[&sequencer]));
        sequencer.kill9();
        let size = rt.block_on(ledger_size(&js));
        assert!(size < total, "killed before the end ({size} of {total})");
        sequencer.restart();
    }
    rt.block_on(async {
        wait_for_ledger_size(&js, total, &[&sequencer]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let entries = rt.block_on(ledger_entries(&js));
    assert_eq!(
        entries.len() as u64,
        total,
        "nothing lost, nothing duplicated"
    );
    let published: BTreeSet<&[u8]> = submissions.iter().map(|s| s.bytes.as_ref()).collect();
    let stored: BTreeSet<&[u8]> = entries.iter().map(|e| e.submission.as_ref()).collect();
    assert_eq!(published, stored);
    rt.block_on(wait_for_checkpoint(&js, total, &[&sequencer]));
    let (code, out, err) = verify_live(&nats, &trust, &[]);
    assert_eq!(code, 0, "verify --nats:\n{out}\n{err}");
    // Every submission was acknowledged in the end.
    rt.block_on(async {
        let stream = js.get_stream("SUBMISSIONS").await.expect("stream");
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .get_consumer("sequencer-main")
            .await
            .expect("consumer");
        let mut pending = u64::MAX;
        for _ in 0..100 {
            let info = consumer.info().await.expect("consumer info");
            pending = info.num_ack_pending as u64 + info.num_pending;
            if pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(pending, 0, "all submissions acknowledged");
    });
}

#[test]
fn a_sequencer_without_nats_says_why_or_waits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, keys) = scenario(Dataset::FinlandLike, 0);
    let trust_json = keys.trust_root().to_json();
    let mut nats = NatsServer::start();

    // Wrong password: a clear message and a failing exit.
    let mut wrong = nats.config_for("sequencer");
    wrong.password = Some("not-the-password".into());
    assert_start_fails(
        dir.path(),
        "sequencer-bad-password",
        sequencer_args(dir.path(), &trust_json, &keys.log, &wrong.url, "sequencer"),
        "not-the-password",
        "refused the credentials",
    );

    // Unreachable: a clear message, or with --wait-for-nats a wait that ends when the
    // server comes up.
    nats.kill();
    let password = nats.password("sequencer").to_string();
    assert_start_fails(
        dir.path(),
        "sequencer-unreachable",
        sequencer_args(dir.path(), &trust_json, &keys.log, &nats.url(), "sequencer"),
        &password,
        "cannot reach NATS",
    );

    let mut args = sequencer_args(dir.path(), &trust_json, &keys.log, &nats.url(), "sequencer");
    args.push("--wait-for-nats".into());
    let mut waiting = Service::start(
        "sequencer-waiting",
        crate::support::system::binary("stockpile-sequencer"),
        args,
        vec![("STOCKPILE_NATS_PASSWORD".into(), password)],
        dir.path(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(waiting.is_running(), "it waits for NATS: {}", waiting.log());
    nats.restart();
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    rt.block_on(wait_for_stream(&js, &[&waiting]));
    assert!(waiting.is_running(), "{}", waiting.log());
    assert_eq!(
        waiting.terminate(),
        Some(0),
        "a clean stop on SIGTERM: {}",
        waiting.log()
    );
}

/// Starts a sequencer that must exit by itself, non-zero, saying `message`.
fn assert_start_fails(
    dir: &std::path::Path,
    name: &str,
    args: Vec<String>,
    password: &str,
    message: &str,
) {
    let mut service = Service::start(
        name,
        crate::support::system::binary("stockpile-sequencer"),
        args,
        vec![("STOCKPILE_NATS_PASSWORD".into(), password.into())],
        dir,
    );
    let code = service.wait_exit(Duration::from_secs(20));
    assert!(
        matches!(code, Some(c) if c != 0),
        "exit {code:?}: {}",
        service.log()
    );
    assert!(service.log().contains(message), "{}", service.log());
}

fn sequencer_args(
    dir: &std::path::Path,
    trust_json: &str,
    log_key: &stockpile_core::keys::SignerKey,
    url: &str,
    user: &str,
) -> Vec<String> {
    let trust = dir.join("trust.json");
    fs::write(&trust, trust_json).expect("write trust");
    let key = crate::support::system::write_key(dir, log_key);
    vec![
        "--nats-url".into(),
        url.into(),
        "--nats-user".into(),
        user.into(),
        "--trust".into(),
        trust.display().to_string(),
        "--log-key".into(),
        key.display().to_string(),
    ]
}
