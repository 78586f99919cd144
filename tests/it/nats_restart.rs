//! The single nats-server (`deploy/nats/single.conf`, `sync_interval: always`) SIGKILLed
//! and restarted twice while the three emitting services take events through their HTTP
//! APIs and the sequencer sequences them. Nobody restarts the services or the sequencer:
//! they reconnect by themselves. Afterwards every event a service acknowledged (202) is in
//! the ledger exactly once, in its signing key's order, and the ledger verifies.
//!
//! The accounting reads only the ledger: each acknowledged `(key, emitter sequence)` has
//! one entry holding that event. If it is a refusal as out of order (a publish lost with
//! the server while the key's next one landed after the restart), the service re-emitted
//! the event under a later sequence of the same key, and the entry of that one is the
//! event's outcome. Every entry of the ledger is one of these, and each event has exactly
//! one outcome. The figures the test prints (`--nocapture`) are in docs/reliability.md.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use stockpile_core::events::Event;
use stockpile_core::keys::SignerKey;
use stockpile_emitter::json::{request_for_event, service_for_role};
use stockpile_nats::ledger::read_ledger;
use stockpile_proto::envelope::{EntryVerdict, decode_entry, decode_submission};
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioKeys, Submission};

use crate::support::nats::NatsServer;
use crate::support::system::{
    SETTLE_TIMEOUT, Service, binary, jetstream_as, ledger_size, nats_args, runtime,
    start_sequencer, verify_live, wait_for_addr_file, wait_for_checkpoint, write_key,
};

/// The ledger's code for a submission whose emitter sequence is not above its key's last.
const OUT_OF_ORDER: &str = "references.replayed_emitter_sequence";

/// The bearer token every service of this test accepts (a 64-character hex secret).
const TOKEN: &str = "5f1d0c3a9b8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817060f1e";

struct Emitter {
    service: Service,
    addr: String,
}

fn start_emitter(
    nats: &NatsServer,
    dir: &Path,
    name: &str,
    origin: &str,
    keys: &[(&str, &SignerKey)],
) -> Emitter {
    let addr_file = dir.join(format!("{name}.addr"));
    let (mut args, mut envs) = nats_args(&nats.config_for(name));
    args.extend([
        "--origin".into(),
        origin.into(),
        "--outbox".into(),
        dir.join(format!("{name}.outbox")).display().to_string(),
        "--addr-file".into(),
        addr_file.display().to_string(),
    ]);
    for (role, key) in keys {
        let path = write_key(dir, key);
        args.extend(["--key".into(), format!("{role}={}", path.display())]);
    }
    envs.push(("STOCKPILE_API_TOKEN".into(), TOKEN.into()));
    let service = Service::start(name, binary(&format!("stockpile-{name}")), args, envs, dir);
    let addr = wait_for_addr_file(&addr_file, &service);
    Emitter { service, addr }
}

/// POSTs an event with the bearer token; returns the status and the JSON answer.
fn post_event(addr: &str, request: &Value) -> (u16, Value) {
    let body = request.to_string();
    let mut stream =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        stream,
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the request");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response from {addr}: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// An event a service acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    key_id: String,
    sequence: u64,
    event_id: String,
}

/// One ledger entry, as far as the accounting needs it.
#[derive(Debug, Clone)]
struct Seen {
    index: usize,
    key_id: String,
    sequence: u64,
    event_id: String,
    accepted: bool,
    out_of_order: bool,
    /// The rejection code, for a refused entry.
    code: Option<String>,
}

async fn read_entries(js: &async_nats::jetstream::Context) -> Vec<Seen> {
    let mut seen = Vec::new();
    read_ledger(js, 0, |message| {
        let entry = decode_entry(&message.entry).expect("entries decode");
        let submission =
            decode_submission(&entry.submission).expect("services sign what they submit");
        seen.push(Seen {
            index: message.index as usize,
            key_id: submission.key_id,
            sequence: submission.event.emitter_sequence,
            event_id: submission.event.event_id,
            accepted: entry.verdict == EntryVerdict::Accepted,
            out_of_order: matches!(
                &entry.verdict,
                EntryVerdict::Rejected { code, .. } if code == OUT_OF_ORDER
            ),
            code: match &entry.verdict {
                EntryVerdict::Rejected { code, .. } => Some(code.clone()),
                EntryVerdict::Accepted => None,
            },
        });
        Ok(())
    })
    .await
    .expect("read the ledger");
    seen
}

/// Each acknowledged event's outcome (the index of its final entry) and the entries it
/// passed through (refusals as out of order, then the outcome); `Err` names an event
/// whose outcome is not in the ledger yet.
fn outcomes(acked: &[Acked], entries: &[Seen]) -> Result<Vec<Vec<usize>>, String> {
    let mut by_key_sequence: BTreeMap<(&str, u64), Vec<usize>> = BTreeMap::new();
    for entry in entries {
        by_key_sequence
            .entry((&entry.key_id, entry.sequence))
            .or_default()
            .push(entry.index);
    }
    let mut all = Vec::with_capacity(acked.len());
    for event in acked {
        let mut chain = Vec::new();
        let mut sequence = event.sequence;
        loop {
            let Some(found) = by_key_sequence.get(&(event.key_id.as_str(), sequence)) else {
                return Err(format!(
                    "{}/{sequence} ({}) is not in the ledger",
                    event.key_id, event.event_id
                ));
            };
            assert_eq!(
                found.len(),
                1,
                "{}/{sequence} is in the ledger {} times",
                event.key_id,
                found.len()
            );
            let entry = &entries[found[0]];
            assert_eq!(
                entry.event_id, event.event_id,
                "{}/{sequence} holds another event",
                event.key_id
            );
            chain.push(entry.index);
            if !entry.out_of_order {
                break;
            }
            // Re-emitted: the same event under a later sequence of the same key.
            let Some(next) = entries.iter().find(|later| {
                later.key_id == event.key_id
                    && later.event_id == event.event_id
                    && later.sequence > sequence
            }) else {
                return Err(format!(
                    "{}/{sequence} ({}) was refused as out of order; its re-emission is not in the ledger yet",
                    event.key_id, event.event_id
                ));
            };
            sequence = next.sequence;
        }
        all.push(chain);
    }
    Ok(all)
}

fn scenario() -> (Vec<(Submission, Event)>, ScenarioKeys) {
    crate::services::service_events(&ScenarioConfig {
        seed: 23,
        dataset: Dataset::FinlandLike,
        min_entries: 2_000,
        checkpoint_every: 0,
    })
}

#[test]
fn the_nats_server_killed_during_ingest_loses_and_duplicates_no_acknowledged_event() {
    let started = Instant::now();
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (events, keys) = scenario();
    let trust_json = keys.trust_root().to_json();
    let mut sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &keys.log, &[]);
    let mut emitters: BTreeMap<&str, Emitter> = BTreeMap::new();
    emitters.insert(
        "depot",
        start_emitter(
            &nats,
            dir.path(),
            "depot",
            &keys.origin,
            &[
                ("registrar", &keys.registrar),
                ("depot", &keys.depot),
                ("inspector", &keys.inspector),
            ],
        ),
    );
    emitters.insert(
        "demil",
        start_emitter(
            &nats,
            dir.path(),
            "demil",
            &keys.origin,
            &[("demil", &keys.demil), ("certifier", &keys.certifier)],
        ),
    );
    emitters.insert(
        "export-control",
        start_emitter(
            &nats,
            dir.path(),
            "export-control",
            &keys.origin,
            &[("export_control", &keys.export_control)],
        ),
    );

    // Post every event in the scenario's order. The server is SIGKILLed at a quarter and
    // at five eighths of the way, and restarted once the services have acknowledged
    // another 150 events and at least a second has passed.
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    let total = events.len();
    let mut kills = vec![total * 5 / 8, total / 4];
    const POSTED_WHILE_DOWN: usize = 150;
    let mut acked: Vec<Acked> = Vec::new();
    let mut refused_by_service: BTreeMap<u16, usize> = BTreeMap::new();
    let mut shed = 0usize;
    let mut down_since: Option<(Instant, usize)> = None;
    let mut figures = Vec::new();
    for (position, (submission, event)) in events.iter().enumerate() {
        if down_since.is_none() && kills.last().is_some_and(|at| position >= *at) {
            kills.pop();
            let size = rt.block_on(ledger_size(&js));
            nats.kill();
            figures.push(format!(
                "killed at event {position} with {size} entries in the ledger"
            ));
            down_since = Some((Instant::now(), position));
        }
        if let Some((since, at)) = down_since
            && position >= at + POSTED_WHILE_DOWN
            && since.elapsed() >= Duration::from_secs(1)
        {
            nats.restart();
            let down_for = since.elapsed();
            // Posting pauses until the system sequences again, so that the next fault
            // hits a running pipeline.
            let restarted = Instant::now();
            // What the server holds after the restart (entries acknowledged just before
            // the kill included), then the first entry beyond it.
            let (restored, grown) = rt.block_on(async {
                let deadline = Instant::now() + SETTLE_TIMEOUT;
                let mut restored = None;
                while Instant::now() < deadline {
                    match (stockpile_nats::ledger::ledger_size(&js).await, restored) {
                        (Ok(now), None) => restored = Some(now),
                        (Ok(now), Some(restored)) if now > restored => return (restored, true),
                        _ => {}
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (restored.unwrap_or(0), false)
            });
            assert!(grown, "the ledger did not grow after the restart");
            figures.push(format!(
                "restarted after {down_for:.1?}, the services having acknowledged {} events \
                 meanwhile; the server restored {restored} entries; the ledger grew again \
                 {:.1?} after the restart",
                position - at,
                restarted.elapsed()
            ));
            down_since = None;
        }
        let role = submission.role.expect("filtered");
        let emitter = &emitters[service_for_role(role)];
        let request = request_for_event(event, role);
        loop {
            let (status, answer) = post_event(&emitter.addr, &request);
            match status {
                202 => {
                    acked.push(Acked {
                        key_id: answer["key_id"].as_str().expect("key id").into(),
                        sequence: answer["emitter_sequence"].as_u64().expect("sequence"),
                        event_id: answer["event_id"].as_str().expect("event id").into(),
                    });
                    assert_eq!(acked.last().expect("pushed").event_id, event.event_id);
                }
                // Shed by the service's rate or concurrency limit: not taken, send again.
                429 | 503 => {
                    shed += 1;
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                // Refused by the service itself (not the ledger): never acknowledged.
                other => *refused_by_service.entry(other).or_insert(0) += 1,
            }
            break;
        }
    }
    assert!(
        kills.is_empty() && down_since.is_none(),
        "both outages happened within the scenario"
    );
    let posted_in = started.elapsed();

    // Wait until every acknowledged event has its outcome in the ledger.
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let entries = rt.block_on(read_entries(&js));
        match outcomes(&acked, &entries) {
            Ok(_) => break,
            Err(missing) => {
                assert!(
                    Instant::now() < deadline,
                    "{missing} after {SETTLE_TIMEOUT:?}; logs:\n{}\n{}",
                    sequencer.log_tail(),
                    emitters
                        .values()
                        .map(|e| e.service.log_tail())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let drained_in = started.elapsed();
    // Give a duplicate the time to (wrongly) become an entry.
    std::thread::sleep(Duration::from_secs(1));
    let entries = rt.block_on(read_entries(&js));
    let chains = outcomes(&acked, &entries).expect("every outcome is in the ledger");

    // Every entry belongs to exactly one acknowledged event.
    let mut owner: Vec<Option<usize>> = vec![None; entries.len()];
    for (event, chain) in chains.iter().enumerate() {
        for index in chain {
            assert_eq!(
                owner[*index], None,
                "entry {index} is claimed by two acknowledged events"
            );
            owner[*index] = Some(event);
        }
    }
    let strays: Vec<&Seen> = owner
        .iter()
        .zip(&entries)
        .filter(|(owner, _)| owner.is_none())
        .map(|(_, entry)| entry)
        .collect();
    assert!(
        strays.is_empty(),
        "entries of no acknowledged event: {strays:?}"
    );
    // No event accepted twice.
    let mut accepted: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.accepted) {
        *accepted.entry(&entry.event_id).or_insert(0) += 1;
    }
    assert!(
        accepted.values().all(|count| *count == 1),
        "an event accepted twice"
    );
    // Per signing key, the outcomes are in the order the service acknowledged the events
    // (re-emitted events move behind the ones that overtook them, by design).
    let mut last_by_key: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reemitted = 0usize;
    for (event, chain) in acked.iter().zip(&chains) {
        if chain.len() > 1 {
            reemitted += 1;
            continue;
        }
        let index = chain[0];
        if let Some(previous) = last_by_key.insert(&event.key_id, index) {
            assert!(
                previous < index,
                "{} ({}/{}) is at entry {index}, before entry {previous} of an event acknowledged earlier",
                event.event_id,
                event.key_id,
                event.sequence
            );
        }
    }

    rt.block_on(wait_for_checkpoint(
        &js,
        entries.len() as u64,
        &[&sequencer],
    ));
    let trust = dir.path().join("trust-main.json");
    let (code, out, err) = verify_live(&nats, &trust, &[]);
    assert_eq!(code, 0, "verify --nats:\n{out}\n{err}");

    // Nobody was restarted but the server: they all reconnected by themselves.
    assert!(
        sequencer.is_running(),
        "the sequencer rode through the restarts:\n{}",
        sequencer.log_tail()
    );
    for emitter in emitters.values_mut() {
        assert!(
            emitter.service.is_running(),
            "{}",
            emitter.service.log_tail()
        );
    }

    let rejected = entries.iter().filter(|e| !e.accepted).count();
    let hostile = events
        .iter()
        .filter(|(s, _)| s.expected_rejection.is_some())
        .count();
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for code in entries.iter().filter_map(|e| e.code.as_deref()) {
        *codes.entry(code).or_insert(0) += 1;
    }
    let out_of_order = entries.iter().filter(|e| e.out_of_order).count();
    eprintln!(
        "server restart test: {total} events posted, {} acknowledged (202), refused by the \
         services {refused_by_service:?}, shed and re-sent {shed}; ledger {} entries: \
         {} accepted, {rejected} refused ({out_of_order} as out of order, their events \
         re-emitted: {reemitted}; the scenario means {hostile} to be refused); refusals \
         by code {codes:?}; posted in {posted_in:.1?}, \
         all sequenced after {drained_in:.1?}\n{}",
        acked.len(),
        entries.len(),
        accepted.len(),
        figures.join("\n")
    );
}
