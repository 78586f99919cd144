//! The projector as a process over a live ledger: it catches up, survives SIGKILL in the
//! middle of catching up, and its store then agrees with the verifier's fold.

use std::fs;
use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use stockpile_nats::topology::submit_subject;
use stockpile_projector::engine::{Projector, SUMMARY_DOC};
use stockpile_scenario::{Dataset, ScenarioConfig};

use crate::support::nats::NatsServer;
use crate::support::system::{
    Service, binary, http, jetstream_as, nats_args, runtime, start_sequencer, verify_live,
    wait_for_addr_file, wait_for_checkpoint, wait_for_ledger_size, wait_for_stream,
};

#[test]
fn a_projector_killed_while_catching_up_ends_equal_to_the_verifier() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ScenarioConfig {
        seed: 8,
        dataset: Dataset::FinlandLike,
        min_entries: 4_000,
        checkpoint_every: 0,
    };
    let submissions: Vec<_> = stockpile_scenario::submissions(&config).collect();
    let keys = stockpile_scenario::ScenarioKeys::new(config.dataset, config.seed);
    let trust_json = keys.trust_root().to_json();
    let sequencer = start_sequencer(&nats, dir.path(), "main", &trust_json, &keys.log, &[]);
    let rt = runtime();
    let js = rt.block_on(jetstream_as(&nats, "admin"));
    let total = submissions.len() as u64;
    rt.block_on(async {
        wait_for_stream(&js, &[&sequencer]).await;
        for submission in &submissions {
            js.send_publish(
                submit_subject("depot"),
                PublishMessage::build().payload(submission.bytes.clone()),
            )
            .await
            .expect("queue")
            .await
            .expect("stored");
        }
        wait_for_ledger_size(&js, total, &[&sequencer]).await;
        wait_for_checkpoint(&js, total, &[&sequencer]).await;
    });

    let trust = dir.path().join("trust-main.json");
    let store = dir.path().join("views");
    let addr_file = dir.path().join("projector.addr");
    let (mut args, envs) = nats_args(&nats.config_for("projector"));
    args.extend([
        "--addr-file".into(),
        addr_file.display().to_string(),
        "--trust".into(),
        trust.display().to_string(),
        "--store".into(),
        store.display().to_string(),
    ]);
    let mut projector = Service::start(
        "projector",
        binary("stockpile-projector"),
        args,
        envs,
        dir.path(),
    );
    // Kill it twice while it catches up, then let it finish.
    for wait in [Duration::from_millis(300), Duration::from_millis(700)] {
        std::thread::sleep(wait);
        projector.kill9();
        projector.restart();
    }
    let caught_up = format!("caught up with the ledger entries={total}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !projector.log().contains(&caught_up) {
        assert!(
            std::time::Instant::now() < deadline,
            "the projector did not catch up:\n{}",
            projector.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        projector
            .log()
            .matches("view store opened and refolded")
            .count(),
        3,
        "started once and restarted twice after SIGKILL"
    );
    // The API answers with the views, and says what is wrong with a bad request.
    let addr = wait_for_addr_file(&addr_file, &projector);
    let (status, body) = http(&addr, "GET", "/v1/summary", None);
    assert_eq!(status, 200, "{body}");
    let live: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(live["entries"], total);
    let (status, body) = http(&addr, "GET", "/v1/lots", None);
    assert_eq!(status, 200, "{body}");
    let lots: Vec<String> = serde_json::from_str(&body).expect("lot ids");
    let (status, body) = http(&addr, "GET", &format!("/v1/lots/{}", lots[0]), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("history"), "{body}");
    for (path, expected, mention) in [
        ("/v1/lots/NO-SUCH-LOT", 404, "NO-SUCH-LOT"),
        ("/v1/reports/article7/twenty", 400, "not a number"),
        ("/v1/reports/article7/2026?format=pdf", 400, "pdf"),
        ("/v1/nothing-here", 404, "no such route"),
    ] {
        let (status, body) = http(&addr, "GET", path, None);
        assert_eq!(status, expected, "{path}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
        assert!(
            error["error"].as_str().unwrap_or("").contains(mention),
            "{path}: {body}"
        );
    }
    for view in [
        "stockpile",
        "retained",
        "destruction-progress",
        "transfers",
        "in-transit",
        "material-balance",
        "flags",
    ] {
        let (status, body) = http(&addr, "GET", &format!("/v1/{view}"), None);
        assert_eq!(status, 200, "{view}: {body}");
        assert!(
            body.contains("as_of_index"),
            "{view} names its position: {body}"
        );
    }
    // Every entry of this live ledger was recorded this year: its report covers them all.
    let mut last_entry = None;
    rt.block_on(stockpile_nats::ledger::read_ledger_range(
        &js,
        total - 1,
        1,
        |m| {
            last_entry = Some(m.entry);
            Ok(())
        },
    ))
    .expect("read the last entry");
    let year = stockpile_views::fold::entry_recorded_at(&last_entry.expect("an entry"), total - 1)
        .expect("a time")
        .date()
        .year();
    let report_path = format!("/v1/reports/article7/{year}");
    let (status, body) = http(&addr, "GET", &report_path, None);
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("a JSON report");
    assert_eq!(report["cover"]["year"], year);
    let (status, csv) = http(&addr, "GET", &format!("{report_path}?format=csv"), None);
    assert_eq!(status, 200);
    assert!(csv.lines().count() > 5, "{csv}");
    let (status, html) = http(&addr, "GET", &format!("{report_path}?format=html"), None);
    assert_eq!(status, 200);
    assert!(html.trim_end().ends_with("</html>"), "{html}");
    // sled allows one process at a time: stop it to look.
    assert_eq!(projector.terminate(), Some(0), "{}", projector.log_tail());
    let opened = Projector::open(
        &store,
        &keys.origin,
        &keys.trust_root().ledger_authority_keys(),
    )
    .expect("the store reopens");
    assert_eq!(opened.next_index(), total);
    let summary: serde_json::Value = serde_json::from_slice(
        &opened
            .store()
            .document(SUMMARY_DOC)
            .unwrap()
            .expect("a summary"),
    )
    .unwrap();
    // The verifier's fold of the same ledger, from the streams.
    let (code, out, err) = verify_live(&nats, &trust, &["--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    assert_eq!(
        report["summary"], summary["summary"],
        "projector = verifier"
    );
    assert_eq!(summary["entries"], total);
    let _ = fs::remove_dir_all(&store);
}
