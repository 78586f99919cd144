//! `make bench` at its boundary: the `stockpile-bench` binary, quick sizes, the sections
//! that take seconds. Timings are never asserted (the machines are shared); what is
//! checked is that every section measures something real, prints it with its target and
//! writes it to the results file, and that bad arguments are refused clearly.

use std::process::Command;

use serde_json::Value;

use crate::support::system::binary;

/// Figures a quick run of these sections must report.
const EXPECTED_FIGURES: [&str; 5] = [
    "publish.sync_default.msgs_per_s",
    "publish.sync_always.msgs_per_s",
    "signatures.per_s",
    "signatures.per_s_one_core",
    "proofs.at_size_p99_us_1M",
];

#[test]
fn a_quick_bench_reports_every_figure_with_its_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().join("results.json");
    let output = Command::new(binary("stockpile-bench"))
        .args(["--quick", "--only", "publish,signatures,proofs", "--work"])
        .arg(dir.path())
        .arg("--results")
        .arg(&results)
        .output()
        .expect("stockpile-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stockpile-bench failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("== machine"), "{stdout}");
    assert!(stdout.contains("== targets"), "{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&results).expect("results written"))
        .expect("results are JSON");
    let figures = report["figures"].as_array().expect("figures");
    for key in EXPECTED_FIGURES {
        let figure = figures
            .iter()
            .find(|figure| figure["key"] == key)
            .unwrap_or_else(|| panic!("no figure {key} in {figures:?}"));
        let value = figure["value"].as_f64().expect("a number");
        assert!(
            value.is_finite() && value > 0.0,
            "{key} = {value}: a measurement is finite and positive"
        );
    }
    // Every target printed is recorded with its verdict, and the proof targets are there.
    let targets = report["targets"].as_array().expect("targets");
    assert!(
        targets
            .iter()
            .any(|target| target["label"].as_str().is_some_and(|l| l.contains("(f)"))),
        "{targets:?}"
    );
    for target in targets {
        let label = target["label"].as_str().expect("label");
        assert!(stdout.contains(label), "target {label} printed");
        let value = target["value"].as_f64().expect("value");
        let wanted = target["target"].as_f64().expect("target");
        let met = target["met"].as_bool().expect("met");
        let should = match target["compare"].as_str() {
            Some("at_least") => value >= wanted,
            Some("below") => value < wanted,
            other => panic!("unknown comparison {other:?}"),
        };
        assert_eq!(met, should, "verdict of {label}");
    }
    assert!(
        report["machine"]
            .as_array()
            .is_some_and(|lines| lines.iter().any(|line| line[0] == "cores")),
        "the machine is described"
    );
}

#[test]
fn an_unknown_section_is_refused_with_the_list_of_sections() {
    let output = Command::new(binary("stockpile-bench"))
        .args(["--only", "everything"])
        .output()
        .expect("stockpile-bench runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'everything'"), "{stderr}");
    assert!(stderr.contains("ingest"), "{stderr}");
}
