//! Projectors as processes over a live ledger: each replica reads through its own durable
//! consumer (created by admin), survives SIGKILL and crashes injected at every step of a
//! batch, and then holds the same views as a fold of the ledger computed here; replicas
//! agree with each other while ingest goes on; a rebuild swaps in a fresh store that
//! agrees with the incremental one; proofs served verify with the `stockpile` command.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use stockpile_ledger::trust::TrustRoot;
use stockpile_projector::engine::{Projector, SUMMARY_DOC};
use stockpile_projector::faults::{CRASH_VARIABLE, CrashPoint};
use stockpile_projector::generations::StoreDir;

use crate::support::live::{CATCH_UP_TIMEOUT, Live, LiveProjector};
use crate::support::system::{
    Service, binary, http, http_bytes, nats_args, stockpile, verify_live,
};

fn generations(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(store)
        .expect("store dir")
        .filter_map(|item| item.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("gen-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_projector_killed_while_catching_up_ends_equal_to_the_verifier() {
    let mut live = Live::start(8, 4_000);
    let total = live.publish(usize::MAX);
    let mut projector = live.projector("main", &[]);
    // Kill it twice while it catches up, then let it finish.
    for wait in [Duration::from_millis(300), Duration::from_millis(700)] {
        std::thread::sleep(wait);
        projector.service.kill9();
        projector.service.restart();
    }
    let summary = projector.wait_for_entries(total);
    assert_eq!(
        projector
            .service
            .log()
            .matches("view store opened and refolded")
            .count(),
        3,
        "started once and restarted twice after SIGKILL"
    );
    let (entries, digest) = live.expected_digest();
    assert_eq!(entries, total);
    assert_eq!(summary["views_digest"], digest, "projector = fold here");

    // Ready once caught up; its status says where it stands.
    let (status, ready) = projector.get_json("/ready");
    assert_eq!(status, 200, "{ready}");
    let (status, state) = projector.get_json("/v1/status");
    assert_eq!(status, 200);
    assert_eq!(state["applied_entries"], total);
    assert_eq!(state["lag_entries"], 0, "{state}");
    assert!(
        state["checkpoints"]["verified"].as_u64().unwrap_or(0) >= 1,
        "{state}"
    );
    assert_eq!(state["checkpoints"]["refused"], 0);
    assert!(projector.metric("stockpile_projector_applied_entries") >= total as f64);

    // A proof of an entry downloaded from the API checks out with the `stockpile`
    // command against the trust root; the same proof for a modified entry does not.
    let addr = projector.addr();
    let dir = live.dir.path();
    let index = total / 2;
    let (status, proof) = http_bytes(&addr, "GET", &format!("/v1/proofs/inclusion/{index}"), None);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&proof));
    let (status, entry) = http_bytes(&addr, "GET", &format!("/v1/entries/{index}"), None);
    assert_eq!(status, 200);
    let (proof_path, entry_path, modified_path) = (
        dir.join("entry.tlog-proof"),
        dir.join("entry.bin"),
        dir.join("modified.bin"),
    );
    fs::write(&proof_path, &proof).unwrap();
    fs::write(&entry_path, &entry).unwrap();
    let mut modified = entry.clone();
    modified[entry.len() / 2] ^= 0x01;
    fs::write(&modified_path, &modified).unwrap();
    let check = |entry: &Path| {
        stockpile(&[
            "check-proof",
            "inclusion",
            "--proof",
            proof_path.to_str().unwrap(),
            "--entry",
            entry.to_str().unwrap(),
            "--trust",
            live.trust.to_str().unwrap(),
        ])
    };
    let (code, out, err) = check(&entry_path);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = check(&modified_path);
    assert_eq!(code, 1, "a modified entry fails: {out}{err}");

    // The API's errors.
    for (path, expected, mention) in [
        ("/v1/lots/NO-SUCH-LOT", 404, "NO-SUCH-LOT"),
        ("/v1/stockpile?as_of_index=ten", 400, "as_of_index"),
        ("/v1/reports/article7/twenty", 400, "not a valid number"),
        ("/v1/reports/article7/2026?format=pdf", 400, "pdf"),
        ("/v1/nothing-here", 404, "no such route"),
    ] {
        let (status, error) = projector.get_json(path);
        assert_eq!(status, expected, "{path}: {error}");
        assert!(
            error["error"].as_str().unwrap_or("").contains(mention),
            "{path}: {error}"
        );
    }

    // sled allows one process at a time: stop it to look at the store itself.
    assert_eq!(
        projector.service.terminate(),
        Some(0),
        "{}",
        projector.service.log_tail()
    );
    let trust = TrustRoot::parse_json(&fs::read_to_string(&live.trust).unwrap()).unwrap();
    let current = StoreDir::open(&projector.store).unwrap().current().unwrap();
    let opened = Projector::open(&current, &trust).expect("the store reopens");
    assert_eq!(opened.next_index(), total);
    let stored: serde_json::Value = serde_json::from_slice(
        &opened
            .store()
            .document(SUMMARY_DOC)
            .unwrap()
            .expect("a summary"),
    )
    .unwrap();
    // The verifier's fold of the same ledger, from the streams.
    let (code, out, err) = verify_live(&live.nats, &live.trust, &["--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(report["summary"], stored["summary"], "projector = verifier");
}

#[test]
fn a_crash_at_any_step_of_a_batch_leaves_a_view_equal_to_the_rebuild() {
    let mut live = Live::start(9, 3_000);
    let total = live.publish(usize::MAX);
    let (_, expected) = live.expected_digest();
    // One replica per crash point, each with its own consumer and store, all at once.
    let mut replicas: Vec<(CrashPoint, LiveProjector)> = CrashPoint::ALL
        .into_iter()
        .map(|point| {
            let plan = format!("{}@2", point.name());
            let replica = live.projector(point.name(), &[(CRASH_VARIABLE, &plan)]);
            (point, replica)
        })
        .collect();
    for (point, replica) in &mut replicas {
        let code = replica.service.wait_exit(CATCH_UP_TIMEOUT);
        let log = replica.service.log();
        assert!(
            log.contains(&format!("crash injected {}", point.name())),
            "{point:?}: exit {code:?}\n{}",
            replica.service.log_tail()
        );
        assert_ne!(code, Some(0), "{point:?} aborted");
        replica.service.set_env(CRASH_VARIABLE, None);
        replica.service.restart();
    }
    for (point, replica) in &replicas {
        let summary = replica.wait_for_entries(total);
        assert_eq!(
            summary["views_digest"], expected,
            "{point:?}: the view after the crash equals a fold of the ledger"
        );
        if *point == CrashPoint::AfterAckBeforeFlush {
            // The consumer was told batch 2 was done while the store had lost it: the
            // projector read it back by direct get.
            assert!(
                replica.metric("stockpile_projector_gap_entries_total") > 0.0,
                "{}",
                replica.service.log_tail()
            );
        }
    }
}

#[test]
fn replicas_agree_during_ingest_and_a_rebuild_swaps_in_an_equal_view() {
    let mut live = Live::start(10, 2_400);
    let half = live.submissions.len() / 2;
    live.publish(half);
    let mut a = live.projector("a", &[]);
    let b = live.projector("b", &[]);
    // Ingest goes on while both replicas read.
    let total = live.publish(usize::MAX);
    let (entries, expected) = live.expected_digest();
    assert_eq!(entries, total);
    for replica in [&a, &b] {
        let summary = replica.wait_for_entries(total);
        assert_eq!(summary["views_digest"], expected);
    }
    // Views as of a checkpoint agree across replicas too.
    let (status, checkpoints) = a.get_json("/v1/checkpoints");
    assert_eq!(status, 200);
    let size = checkpoints["checkpoints"][0]["size"]
        .as_u64()
        .expect("a size");
    let as_of = format!("/v1/stockpile?as_of_checkpoint={size}");
    assert_eq!(a.get_json(&as_of), b.get_json(&as_of));
    assert_eq!(a.get_json(&as_of).1["as_of"]["as_of_index"], size - 1);

    // Replica a rebuilds from entry 0 while serving, then swaps the fresh store in.
    assert_eq!(generations(&a.store), vec!["gen-1".to_string()]);
    a.service.add_args(&["--rebuild"]);
    a.service.restart();
    let deadline = Instant::now() + CATCH_UP_TIMEOUT;
    let rebuild = loop {
        if let Ok(addr) = fs::read_to_string(&a.addr_file)
            && std::net::TcpStream::connect(addr.trim()).is_ok()
        {
            let (_, status) = a.get_json("/v1/status");
            if !status["last_rebuild"].is_null() {
                break status["last_rebuild"].clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no rebuild:\n{}",
            a.service.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(rebuild["entries"], total, "{rebuild}");
    assert_eq!(rebuild["views_digest"], expected, "{rebuild}");
    assert_eq!(rebuild["agreed_with_incremental"], true, "{rebuild}");
    assert_eq!(a.get_json("/v1/summary").1["views_digest"], expected);
    assert_eq!(
        generations(&a.store),
        vec!["gen-2".to_string()],
        "the old store is gone"
    );
    assert_eq!(
        fs::read_to_string(a.store.join("CURRENT")).unwrap().trim(),
        "gen-2"
    );
    // The rebuilt store holds the checkpoints again: proofs still come.
    let (status, _) = http(&a.addr(), "GET", "/v1/proofs/inclusion/0", None);
    assert_eq!(status, 200);
}

#[test]
fn a_projector_whose_consumer_was_never_created_says_who_must_create_it() {
    let live = Live::start(11, 0);
    let store = live.dir.path().join("views-orphan");
    let (mut args, envs) = nats_args(&live.nats.config_for("projector"));
    args.extend([
        "--replica".into(),
        "orphan".into(),
        "--trust".into(),
        live.trust.display().to_string(),
        "--store".into(),
        store.display().to_string(),
    ]);
    let mut projector = Service::start(
        "projector-orphan",
        binary("stockpile-projector"),
        args,
        envs,
        live.dir.path(),
    );
    let code = projector.wait_exit(Duration::from_secs(60));
    assert_eq!(code, Some(1), "{}", projector.log_tail());
    let log = projector.log();
    assert!(
        log.contains("consumer projector-orphan") && log.contains("create it as admin"),
        "{log}"
    );
}
