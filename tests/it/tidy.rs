//! Invariants of the code base stated as absences, checked by reading the source:
//! every module says what it is for, the core does no I/O and reads no clock, only
//! `stockpile-proto` knows protobuf, the verifier depends only on core and proto, and no
//! test is switched off.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(relative: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&workspace_root().join(relative), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// The `[dependencies]` section of a workspace crate's manifest.
fn dependencies_of(crate_name: &str) -> String {
    let path = workspace_root()
        .join("crates")
        .join(crate_name)
        .join("Cargo.toml");
    let manifest = std::fs::read_to_string(path).unwrap();
    let section = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] section");
    section.split("\n[").next().unwrap_or_default().to_string()
}

#[test]
fn every_module_starts_with_a_doc_comment() {
    let mut missing = Vec::new();
    for dir in ["crates", "tests"] {
        for (path, text) in sources(dir) {
            let first = text
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(path.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` header: {missing:#?}"
    );
}

#[test]
fn the_core_does_no_io_reads_no_clock_and_knows_no_protobuf() {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "File::",
        "SystemTime",
        "Instant::now",
        "thread_rng",
        "OsRng",
        "tokio",
        "async_nats",
        "sled::",
        "prost",
    ];
    for (path, text) in sources("crates/stockpile-core/src") {
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} mentions {word}: the core must stay pure",
                path.display()
            );
        }
    }
    let dependencies = dependencies_of("stockpile-core");
    for crate_name in [
        "tokio",
        "async-nats",
        "sled",
        "prost",
        "rand",
        "getrandom",
        "axum",
    ] {
        assert!(
            !dependencies
                .lines()
                .any(|line| line.trim_start().starts_with(crate_name)),
            "stockpile-core depends on {crate_name}"
        );
    }
}

#[test]
fn only_the_proto_crate_knows_protobuf_and_the_verifier_needs_no_network_or_database() {
    for crate_dir in [
        "crates/stockpile-core",
        "crates/stockpile-ledger",
        "crates/stockpile-scenario",
        "crates/stockpile-cli",
    ] {
        for (path, text) in sources(&format!("{crate_dir}/src")) {
            assert!(
                !text.contains("prost::"),
                "{} uses prost directly",
                path.display()
            );
        }
    }
    let dependencies = dependencies_of("stockpile-ledger");
    let in_house: Vec<&str> = dependencies
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("stockpile-"))
        .map(|rest| rest.split(['.', ' ', '=']).next().unwrap())
        .collect();
    assert_eq!(
        in_house,
        ["core", "proto"],
        "stockpile-ledger (the verifier) depends only on core and proto"
    );
    for crate_name in ["tokio", "async-nats", "sled", "axum"] {
        assert!(
            !dependencies.contains(crate_name),
            "the verifier depends on {crate_name}"
        );
    }
}

#[test]
fn no_test_is_switched_off() {
    for dir in ["crates", "tests"] {
        for (path, text) in sources(dir) {
            let marker = ["#[", "ignore", "]"].concat();
            assert!(
                !text.contains(&marker),
                "{} switches a test off",
                path.display()
            );
        }
    }
}
