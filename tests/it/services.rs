//! The three emitting services as real processes over a real nats-server: a scenario
//! emitted through their HTTP APIs end to end, bad requests answered with what is wrong,
//! and an emitter killed with events in its outbox.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use stockpile_core::events::{Event, Role};
use stockpile_core::keys::SignerKey;
use stockpile_core::tlog_proof::TlogProof;
use stockpile_emitter::json::{request_for_event, service_for_role};
use stockpile_nats::ledger::read_ledger;
use stockpile_proto::envelope::{EntryVerdict, decode_entry, decode_submission};
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioKeys, Submission};

use crate::support::nats::NatsServer;
use crate::support::system::{
    Service, binary, http_with_headers, jetstream_as, nats_args, runtime, start_sequencer,
    stockpile, verify_live, wait_for_addr_file, wait_for_checkpoint, wait_for_ledger_size,
    write_key,
};

/// One running emitting service, its HTTP address and the bearer token it accepts.
pub(crate) struct Emitter {
    pub service: Service,
    pub addr: String,
    pub token: String,
}

impl Emitter {
    /// A request with the service's token: the status and the body.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let bearer = format!("Bearer {}", self.token);
        let answer = http_with_headers(
            &self.addr,
            method,
            path,
            &[("Authorization", &bearer)],
            body,
        );
        (answer.status, answer.text())
    }
}

/// The test token of a service (each service's differs).
pub(crate) fn test_token(name: &str) -> String {
    format!("{name}-test-token-0123456789abcdef0123456789")
}

/// Writes a token file (one token per line, 0600) and returns its path.
pub(crate) fn write_token_file(dir: &Path, name: &str, tokens: &[&str]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(format!("{name}.token"));
    fs::write(&path, tokens.join("\n") + "\n").expect("write token file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod token file");
    path
}

/// The flags of an emitting service besides NATS and its token: origin, outbox, address
/// file, keys.
pub(crate) fn emitter_args(
    dir: &Path,
    name: &str,
    origin: &str,
    keys: &[(&str, &SignerKey)],
) -> Vec<String> {
    let addr_file = dir.join(format!("{name}.addr"));
    let _ = fs::remove_file(&addr_file);
    let mut args = vec![
        "--origin".into(),
        origin.into(),
        "--outbox".into(),
        dir.join(format!("{name}.outbox")).display().to_string(),
        "--addr-file".into(),
        addr_file.display().to_string(),
    ];
    for (role, key) in keys {
        let path = write_key(dir, key);
        args.extend(["--key".into(), format!("{role}={}", path.display())]);
    }
    args
}

/// Starts service `name` with `args` (NATS, token and limit flags) besides
/// [`emitter_args`], and waits for its address; `token` is what [`Emitter::http`] sends.
pub(crate) fn launch_emitter(
    dir: &Path,
    name: &str,
    origin: &str,
    keys: &[(&str, &SignerKey)],
    (mut args, envs): (Vec<String>, Vec<(String, String)>),
    token: &str,
) -> Emitter {
    args.extend(emitter_args(dir, name, origin, keys));
    let service = Service::start(name, binary(&format!("stockpile-{name}")), args, envs, dir);
    let addr = wait_for_addr_file(&dir.join(format!("{name}.addr")), &service);
    Emitter {
        service,
        addr,
        token: token.to_string(),
    }
}

/// Starts service `name` as its NATS user, with its test token in a `--token-file`.
pub(crate) fn start_emitter(
    nats: &NatsServer,
    dir: &Path,
    name: &str,
    origin: &str,
    keys: &[(&str, &SignerKey)],
) -> Emitter {
    let token = test_token(name);
    let (mut args, envs) = nats_args(&nats.config_for(name));
    let token_file = write_token_file(dir, name, &[&token]);
    args.extend(["--token-file".into(), token_file.display().to_string()]);
    launch_emitter(dir, name, origin, keys, (args, envs), &token)
}

pub(crate) fn start_all(
    nats: &NatsServer,
    dir: &Path,
    keys: &ScenarioKeys,
) -> BTreeMap<&'static str, Emitter> {
    let mut emitters = BTreeMap::new();
    emitters.insert(
        "depot",
        start_emitter(
            nats,
            dir,
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
            nats,
            dir,
            "demil",
            &keys.origin,
            &[("demil", &keys.demil), ("certifier", &keys.certifier)],
        ),
    );
    emitters.insert(
        "export-control",
        start_emitter(
            nats,
            dir,
            "export-control",
            &keys.origin,
            &[("export_control", &keys.export_control)],
        ),
    );
    emitters
}

pub(crate) fn scenario_events() -> (Vec<(Submission, Event)>, ScenarioKeys) {
    service_events(&ScenarioConfig {
        seed: 11,
        dataset: Dataset::FinlandLike,
        min_entries: 0,
        checkpoint_every: 0,
    })
}

/// The scenario's events a service can sign, with their submissions, and its keys.
pub(crate) fn service_events(config: &ScenarioConfig) -> (Vec<(Submission, Event)>, ScenarioKeys) {
    let submissions = stockpile_scenario::submissions(config);
    let keys = submissions.keys().clone();
    let events = submissions
        // The never-authorised key is no service's; the sequencer tests cover it.
        .filter(|s| s.role.is_some())
        .map(|s| {
            let event = decode_submission(&s.bytes)
                .expect("scenario submissions decode")
                .event;
            (s, event)
        })
        .collect();
    (events, keys)
}

#[test]
fn the_three_services_emit_a_scenario_end_to_end() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (events, keys) = scenario_events();
    let trust_json = keys.trust_root().to_json();
    let sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &keys.log, &[]);
    let emitters = start_all(&nats, dir.path(), &keys);

    let mut accepted = 0u64;
    let mut rejected = 0u64;
    let mut first_receipt: Option<Value> = None;
    for (submission, event) in &events {
        let role = submission.role.expect("filtered");
        let emitter = &emitters[service_for_role(role)];
        let (status, body) = emitter.http(
            "POST",
            "/v1/events?wait=true",
            Some(&request_for_event(event, role).to_string()),
        );
        let receipt: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        match (status, &submission.expected_rejection) {
            (201, None) => accepted += 1,
            (422, Some(expected)) => {
                rejected += 1;
                assert_eq!(
                    receipt["rejection_code"], expected.code,
                    "{}: {body}",
                    event.event_id
                );
            }
            _ => panic!(
                "{} ({:?}): HTTP {status} {body}; expected rejection {:?}\n{}",
                event.event_id,
                event.body.kind(),
                submission.expected_rejection,
                emitter.service.log_tail()
            ),
        }
        first_receipt.get_or_insert(receipt);
    }
    assert!(
        accepted > 50 && rejected >= 1,
        "{accepted} accepted, {rejected} rejected"
    );

    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    let total = accepted + rejected;
    rt.block_on(wait_for_ledger_size(&js, total, &[&sequencer]));
    rt.block_on(wait_for_checkpoint(&js, total, &[&sequencer]));

    // The ledger holds each emitted event once, and it verifies.
    let mut entries = Vec::new();
    rt.block_on(read_ledger(&js, 0, |message| {
        entries.push(message.entry);
        Ok(())
    }))
    .expect("read ledger");
    assert_eq!(entries.len() as u64, total);
    let ids: Vec<String> = entries
        .iter()
        .map(|entry| {
            let entry = decode_entry(entry).expect("decodes");
            decode_submission(&entry.submission)
                .expect("decodes")
                .event
                .event_id
        })
        .collect();
    let expected_ids: Vec<String> = events.iter().map(|(_, e)| e.event_id.clone()).collect();
    assert_eq!(ids, expected_ids, "every event once, in the order emitted");
    let trust = dir.path().join("trust-main.json");
    let (code, out, err) = verify_live(&nats, &trust, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("({accepted} accepted, {rejected} rejected)")),
        "{out}"
    );

    // A receipt and its tlog-proof, served by the service that emitted the event.
    let receipt = first_receipt.expect("a receipt");
    let key_id = receipt["key_id"].as_str().expect("key id").to_string();
    let sequence = receipt["emitter_sequence"].as_u64().expect("sequence");
    let index = receipt["index"].as_u64().expect("index");
    let depot = &emitters["depot"];
    let (status, body) = depot.http("GET", &format!("/v1/receipts/{key_id}/{sequence}"), None);
    assert_eq!(status, 200, "{body}");
    let (status, proof) = depot.http(
        "GET",
        &format!("/v1/receipts/{key_id}/{sequence}/proof"),
        None,
    );
    assert_eq!(status, 200, "{proof}");
    let parsed = TlogProof::parse(proof.as_bytes()).expect("a C2SP tlog-proof");
    assert_eq!(parsed.index, index);
    parsed
        .verify(
            &entries[index as usize],
            &keys.origin,
            &[keys.log.verifier_key()],
        )
        .expect("the proof verifies against the log key");
    assert!(
        parsed
            .verify(
                &entries[index as usize + 1],
                &keys.origin,
                &[keys.log.verifier_key()]
            )
            .is_err(),
        "and not for another entry"
    );

    // Bad requests say what is wrong, as JSON.
    let demil = &emitters["demil"];
    let cases: [(&Emitter, String, u16, &str); 4] = [
        (depot, "{not json".into(), 400, ""),
        (depot, json!({"actor": "a", "body": {"kind": "lot_teleported"}}).to_string(), 400, "lot_teleported"),
        (
            demil,
            request_for_event(&events.iter().find(|(s, _)| s.role == Some(Role::Depot)).expect("depot events").1, Role::Depot).to_string(),
            403,
            "lot_declared",
        ),
        (depot, json!({"actor": "a", "body": {"kind": "loss_reported", "filler": "x".repeat(100 * 1024)}}).to_string(), 413, ""),
    ];
    for (emitter, request, expected, mention) in cases {
        let (status, body) = emitter.http("POST", "/v1/events", Some(&request));
        assert_eq!(status, expected, "{body}");
        let answer: Value =
            serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON error: {body}"));
        let message = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("an error field: {body}"));
        assert!(message.contains(mention), "{message}");
    }
    let rt_size = rt.block_on(crate::support::system::ledger_size(&js));
    assert_eq!(rt_size, total, "bad requests reach nothing");
    drop(emitters);
}

#[test]
fn an_emitter_killed_with_events_in_its_outbox_loses_and_duplicates_nothing() {
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (events, keys) = scenario_events();
    let trust_json = keys.trust_root().to_json();
    let sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &keys.log, &[]);
    let depot_keys = [
        ("registrar", &keys.registrar),
        ("depot", &keys.depot),
        ("inspector", &keys.inspector),
    ];
    let mut depot = start_emitter(&nats, dir.path(), "depot", &keys.origin, &depot_keys);
    // The opening of the story the depot service can emit alone.
    let prefix: Vec<&(Submission, Event)> = events
        .iter()
        .take_while(|(s, _)| service_for_role(s.role.expect("filtered")) == "depot")
        .collect();
    assert!(
        prefix.len() >= 20,
        "a usable prefix ({} events)",
        prefix.len()
    );
    let (first, rest) = prefix.split_at(prefix.len() / 2);
    let post = |depot: &Emitter, items: &[&(Submission, Event)]| {
        for (submission, event) in items {
            let (status, body) = depot.http(
                "POST",
                "/v1/events",
                Some(&request_for_event(event, submission.role.expect("filtered")).to_string()),
            );
            assert_eq!(status, 202, "{body}");
        }
    };
    post(&depot, first);
    // NATS goes away: accepted events wait in the outbox; then the service dies.
    nats.kill();
    post(&depot, rest);
    let (status, body) = depot.http("GET", "/v1/status", None);
    assert_eq!(status, 200, "{body}");
    depot.service.kill9();
    nats.restart();
    depot.service.restart();
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    let total = prefix.len() as u64;
    rt.block_on(wait_for_ledger_size(
        &js,
        total,
        &[&sequencer, &depot.service],
    ));
    std::thread::sleep(Duration::from_millis(1_000));
    let mut ids = Vec::new();
    rt.block_on(read_ledger(&js, 0, |message| {
        let entry = decode_entry(&message.entry).expect("decodes");
        assert_eq!(
            entry.verdict,
            EntryVerdict::Accepted,
            "a valid story prefix"
        );
        ids.push(
            decode_submission(&entry.submission)
                .expect("decodes")
                .event
                .event_id,
        );
        Ok(())
    }))
    .expect("read ledger");
    let expected: Vec<String> = prefix.iter().map(|(_, e)| e.event_id.clone()).collect();
    assert_eq!(ids, expected, "every accepted event exactly once, in order");
}

#[test]
fn stockpile_emit_submits_from_json_and_reports_the_receipt() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = crate::support::Keys::new();
    let trust_json = keys.trust_root().to_json();
    let sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &keys.log, &[]);
    let registrar_key = write_key(dir.path(), &keys.registrar);
    let url = nats.url();
    let password = nats.password("registrar").to_string();
    let outbox = dir.path().join("emit.outbox");
    let emit = |name: &str, request: Value| -> (u8, String, String) {
        let file = dir.path().join(format!("{name}.json"));
        fs::write(&file, request.to_string()).expect("write request");
        stockpile(&[
            "emit",
            "--nats",
            &url,
            "--nats-user",
            "registrar",
            "--nats-password",
            &password,
            "--origin",
            crate::support::ORIGIN,
            "--outbox",
            outbox.to_str().expect("utf-8"),
            "--key",
            &format!("registrar={}", registrar_key.display()),
            file.to_str().expect("utf-8"),
        ])
    };
    let regime = json!({
        "actor": "registry", "occurred_at_ms": 1_356_998_400_000i64,
        "body": {"kind": "regime_configured", "state_id": "FI", "regime": "APMBC",
                 "eif_date": "2012-07-01", "policy_dates": [],
                 "article4_deadline": "2016-07-01", "initial_report_due": "2012-12-28"}
    });
    let (code, out, err) = emit("regime", regime);
    assert_eq!(code, 0, "{out}{err}\n{}", sequencer.log_tail());
    let receipt: Value = serde_json::from_str(&out).expect("a JSON receipt");
    assert_eq!(receipt["accepted"], true);
    assert_eq!(receipt["index"], 0);
    assert_eq!(receipt["emitter_sequence"], 1);

    // An institution at a site nobody registered is refused by the ledger: exit 1, and the
    // receipt says why.
    let again = json!({
        "actor": "registry", "occurred_at_ms": 1_356_998_400_001i64,
        "body": {"kind": "institution_authorized", "institution_id": "INST1", "site_id": "NOWHERE",
                 "name": "Engineer School", "instrument": "Decree 1/2012",
                 "instrument_date": "2012-07-01", "permitted_purposes": ["detection_training"],
                 "ceiling": 1000, "valid_from": "2012-07-01", "valid_to": null}
    });
    let (code, out, err) = emit("again", again);
    assert_eq!(code, 1, "{out}{err}");
    let receipt: Value = serde_json::from_str(&out).expect("a JSON receipt");
    assert_eq!(receipt["accepted"], false);
    assert_eq!(
        receipt["emitter_sequence"], 2,
        "the outbox keeps the sequence across runs"
    );
    assert!(
        !receipt["rejection_reason"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{out}"
    );

    // A request that is not an event never reaches the ledger: exit 2 with the reason.
    let (code, _, err) = emit(
        "bad",
        json!({"actor": "x", "body": {"kind": "lot_teleported"}}),
    );
    assert_eq!(code, 2);
    assert!(err.contains("lot_teleported"), "{err}");
    let (code, _, err) = emit(
        "not-mine",
        json!({"actor": "x", "body": {"kind": "loss_reported", "lot_id": "L", "site_id": "S", "quantity": 1, "circumstances": "c", "reported_to": "r"}}),
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_readme_example_event_is_a_valid_request() {
    let readme =
        fs::read_to_string(crate::support::nats::repo_root().join("README.md")).expect("README.md");
    let start = readme.find("-d '{").expect("the README has a POST example") + "-d '".len();
    let end = start + readme[start..].find("}}'").expect("the example ends") + 2;
    let request: stockpile_emitter::json::EventRequest =
        serde_json::from_str(&readme[start..end]).expect("the example parses as a request");
    let draft = request.into_draft().expect("the example is an event");
    assert_eq!(
        draft.body.kind(),
        stockpile_core::events::EventKind::LotDeclared
    );
}
