//! The `stockpile` command, driven in-process through `stockpile_cli::run` exactly as the
//! binary runs it: arguments in, output and exit code out.

use crate::corpus::corpus_dir;
use std::path::Path;

struct Outcome {
    code: u8,
    stdout: String,
    stderr: String,
}

fn stockpile(args: &[&str]) -> Outcome {
    let mut argv = vec!["stockpile".into()];
    argv.extend(args.iter().map(std::ffi::OsString::from));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = stockpile_cli::run(argv, &mut out, &mut err);
    Outcome {
        code,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

fn corpus(name: &str) -> String {
    corpus_dir().join(name).display().to_string()
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn verify_says_clean_or_lists_findings_with_the_right_exit_code() {
    let trust = corpus("trust.json");
    let clean = stockpile(&["verify", &corpus("valid.export"), "--trust", &trust]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(
        clean.stdout.contains("the ledger verifies"),
        "{}",
        clean.stdout
    );
    assert!(
        clean.stdout.contains("entries/s"),
        "throughput is printed: {}",
        clean.stdout
    );

    let broken = stockpile(&[
        "verify",
        &corpus("flipped-bit-in-prev-hash.export"),
        "--trust",
        &trust,
    ]);
    assert_eq!(broken.code, 1, "{}", broken.stdout);
    assert!(
        broken.stdout.contains("chain.broken_link"),
        "{}",
        broken.stdout
    );

    let json = stockpile(&[
        "verify",
        &corpus("destroying-more-than-on-hand.export"),
        "--trust",
        &trust,
        "--json",
    ]);
    assert_eq!(json.code, 1);
    let report: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("--json prints one JSON document");
    assert!(report["findings_total"].as_u64().unwrap() >= 1);
    assert_eq!(report["findings"][0]["code"], "counts.below_zero");
    assert_eq!(report["findings"][0]["evidence"]["rule"], 5);
}

#[test]
fn usage_and_io_errors_exit_2_with_a_clear_message() {
    let missing = stockpile(&[
        "verify",
        "/nonexistent/ledger.export",
        "--trust",
        &corpus("trust.json"),
    ]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("/nonexistent/ledger.export"),
        "{}",
        missing.stderr
    );

    let dir = tempfile::tempdir().unwrap();
    let bad_trust = path(dir.path(), "trust.json");
    std::fs::write(
        &bad_trust,
        r#"{"format":"stockpile-trust/v1","origin":"x","log_keys":["nope"],"authority_keys":[]}"#,
    )
    .unwrap();
    let refused = stockpile(&["verify", &corpus("valid.export"), "--trust", &bad_trust]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("trust root"), "{}", refused.stderr);

    let not_export = path(dir.path(), "not.export");
    std::fs::write(&not_export, b"hello").unwrap();
    let unreadable = stockpile(&["verify", &not_export, "--trust", &corpus("trust.json")]);
    assert_eq!(unreadable.code, 2);
    assert!(
        unreadable.stderr.contains("not a stockpile export"),
        "{}",
        unreadable.stderr
    );

    assert_eq!(stockpile(&["verify"]).code, 2);
    assert_eq!(stockpile(&["frobnicate"]).code, 2);
}

#[test]
fn keygen_writes_a_private_file_and_prints_a_verifier_key() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let secret = path(dir.path(), "log.key");
    let made = stockpile(&["keygen", "--name", "ledger.example/apm", "--out", &secret]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let verifier = stockpile_core::keys::VerifierKey::parse(made.stdout.trim())
        .expect("a C2SP verifier key is printed");
    assert_eq!(verifier.to_string(), made.stdout.trim());
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let signer =
        stockpile_core::keys::SignerKey::parse(std::fs::read_to_string(&secret).unwrap().trim())
            .unwrap();
    assert_eq!(signer.verifier_key().to_string(), made.stdout.trim());

    let again = stockpile(&["keygen", "--name", "ledger.example/apm", "--out", &secret]);
    assert_eq!(
        again.code, 2,
        "an existing key is never overwritten silently"
    );
    assert_eq!(
        stockpile(&[
            "keygen",
            "--name",
            "ledger.example/apm",
            "--out",
            &secret,
            "--force"
        ])
        .code,
        0
    );
    assert_eq!(
        stockpile(&[
            "keygen",
            "--name",
            "bad name",
            "--out",
            &path(dir.path(), "x.key")
        ])
        .code,
        2
    );
}

#[test]
fn inclusion_and_consistency_proofs_round_trip_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let trust = corpus("trust.json");
    let export = corpus("valid.export");
    let proof = path(dir.path(), "entry.tlog-proof");
    let entry = path(dir.path(), "entry.bin");
    let made = stockpile(&[
        "prove",
        "inclusion",
        "--export",
        &export,
        "--trust",
        &trust,
        "--index",
        "13",
        "--out",
        &proof,
        "--entry-out",
        &entry,
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(
        std::fs::read_to_string(&proof)
            .unwrap()
            .starts_with("c2sp.org/tlog-proof@v1\n")
    );
    let checked = stockpile(&[
        "check-proof",
        "inclusion",
        "--proof",
        &proof,
        "--entry",
        &entry,
        "--trust",
        &trust,
    ]);
    assert_eq!(checked.code, 0, "{}", checked.stdout);

    let mut tampered = std::fs::read(&entry).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(&entry, tampered).unwrap();
    let refused = stockpile(&[
        "check-proof",
        "inclusion",
        "--proof",
        &proof,
        "--entry",
        &entry,
        "--trust",
        &trust,
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(refused.stdout.starts_with("INVALID"));

    let consistency = path(dir.path(), "8-24.json");
    let made = stockpile(&[
        "prove",
        "consistency",
        "--export",
        &export,
        "--trust",
        &trust,
        "--old",
        "8",
        "--new",
        "24",
        "--out",
        &consistency,
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert_eq!(
        stockpile(&[
            "check-proof",
            "consistency",
            "--proof",
            &consistency,
            "--trust",
            &trust
        ])
        .code,
        0
    );
    let text = std::fs::read_to_string(&consistency).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = file["proof"][0].as_str().unwrap().to_string();
    let swapped = if first.starts_with('A') {
        first.replacen('A', "B", 1)
    } else {
        format!("A{}", &first[1..])
    };
    file["proof"][0] = serde_json::Value::String(swapped);
    std::fs::write(&consistency, serde_json::to_string(&file).unwrap()).unwrap();
    assert_eq!(
        stockpile(&[
            "check-proof",
            "consistency",
            "--proof",
            &consistency,
            "--trust",
            &trust
        ])
        .code,
        1
    );

    let no_such = stockpile(&[
        "prove",
        "inclusion",
        "--export",
        &export,
        "--trust",
        &trust,
        "--index",
        "999",
    ]);
    assert_eq!(no_such.code, 2);
    assert!(no_such.stderr.contains("999"), "{}", no_such.stderr);
}

#[test]
fn inspect_shows_entries_and_events() {
    let shown = stockpile(&[
        "inspect",
        &corpus("valid.export"),
        "--from",
        "12",
        "--limit",
        "3",
    ]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("LotDeclared"), "{}", shown.stdout);
    assert!(shown.stdout.contains("#12"), "{}", shown.stdout);
    assert!(
        !shown.stdout.contains("#15"),
        "--limit is honoured: {}",
        shown.stdout
    );

    let json = stockpile(&[
        "inspect",
        &corpus("valid-with-rejections-and-flags.export"),
        "--json",
        "--limit",
        "1000",
    ]);
    assert_eq!(json.code, 0);
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["verdict"] == "REJECTED malformed.submission"
                && l["submission_error"].is_string())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["event"]["body"]["kind"] == "lot_destroyed")
    );
}

#[test]
fn a_generated_scenario_verifies_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let export = path(dir.path(), "finland.export");
    let trust = path(dir.path(), "finland.trust.json");
    let made = stockpile(&[
        "generate",
        "--dataset",
        "finland",
        "--seed",
        "3",
        "--out",
        &export,
        "--trust-out",
        &trust,
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let verified = stockpile(&["verify", &export, "--trust", &trust]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
}
