//! `stockpile-bench`: runs the sections of issue 7 in one go and prints every figure and
//! target (see the library's documentation).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use stockpile_bench::report::{Report, section};
use stockpile_bench::{BenchContext, ingest, machine, offline, projection, publish};

/// Throughput, latency and memory of stockpile-ledger against this machine's limits.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Sections to run (all by default), in the order given.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Smaller sizes for a quick look; the figures are then not the documented ones.
    #[arg(long)]
    quick: bool,
    /// Scratch directory (exports are cached here between runs).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Where the results go as JSON.
    #[arg(long, default_value = "target/bench/results.json")]
    results: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    /// (a) raw JetStream publish
    Publish,
    /// (b) end-to-end ingest
    Ingest,
    /// (c) Ed25519 batch verification
    Signatures,
    /// (d) `stockpile verify` on an export, and the verifier's peak memory
    Verify,
    /// (e) projection rebuild
    Rebuild,
    /// (f) inclusion-proof generation
    Proofs,
    /// (g) query latency under load
    Queries,
}

const ALL: [Section; 7] = [
    Section::Publish,
    Section::Ingest,
    Section::Signatures,
    Section::Verify,
    Section::Rebuild,
    Section::Proofs,
    Section::Queries,
];

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STOCKPILE_BENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let context = BenchContext {
        work: args.work.clone(),
        quick: args.quick,
    };
    let mut report = Report {
        machine: machine::describe(),
        ..Report::default()
    };
    section("machine");
    for (name, value) in &report.machine {
        println!("  {name:<12} {value}");
    }
    let sections = if args.only.is_empty() {
        ALL.to_vec()
    } else {
        args.only.clone()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let mut failed = Vec::new();
    for item in sections {
        let result = match item {
            Section::Publish => runtime.block_on(publish::run(&mut report, &context)),
            Section::Ingest => runtime.block_on(ingest::run(&mut report, &context)),
            Section::Signatures => offline::signatures(&mut report, &context),
            Section::Verify => offline::verify(&mut report, &context),
            Section::Rebuild => runtime.block_on(projection::rebuild(&mut report, &context)),
            Section::Proofs => offline::proofs(&mut report, &context),
            Section::Queries => runtime.block_on(projection::queries(&mut report, &context)),
        };
        if let Err(error) = result {
            eprintln!("stockpile-bench: {item:?}: {error:#}");
            failed.push(item);
        }
    }
    report.print_summary();
    if let Err(error) = report.write_json(&args.results) {
        eprintln!("stockpile-bench: {error:#}");
        return ExitCode::FAILURE;
    }
    println!("\nresults written to {}", args.results.display());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("stockpile-bench: sections that could not be measured: {failed:?}");
        ExitCode::FAILURE
    }
}
