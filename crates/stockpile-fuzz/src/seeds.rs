//! Valid inputs for every target: from the fixture ledger (submissions, entries,
//! checkpoint notes, tlog-proofs, consistency files, small exports) and from the files of
//! `tests/vectors/corpus` (exports, read from the repository when it is there).

use crate::fixtures::{CHECKPOINT_EVERY, fixtures};
use std::path::{Path, PathBuf};
use stockpile_core::checkpoint::{Checkpoint, sign_checkpoint};
use stockpile_core::merkle::MerkleTree;
use stockpile_ledger::export::ExportWriter;
use stockpile_ledger::prove::ProofSource;
use stockpile_proto::envelope::{EntryVerdict, decode_entry};
use stockpile_scenario::ScenarioRecord;

/// Seeds kept per kind from the fixture ledger: enough variety, few executions.
const SEEDS_PER_KIND_MAX: usize = 24;

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    pub target: &'static str,
    /// A file name for the cargo fuzz corpus.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The directory of the committed corpus of corrupted ledgers.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/corpus")
}

/// Every seed, in a fixed order.
pub fn seeds() -> Vec<Seed> {
    let f = fixtures();
    let mut out = Vec::new();
    let mut push = |target: &'static str, name: String, bytes: Vec<u8>| {
        out.push(Seed {
            target,
            name,
            bytes,
        })
    };

    // Entries and submissions: the first ones and every rejected one (hostile inputs).
    let mut picked = 0;
    for (index, bytes) in f.entries.iter().enumerate() {
        let entry = decode_entry(bytes).expect("fixture entries decode");
        let rejected = matches!(entry.verdict, EntryVerdict::Rejected { .. });
        if picked >= SEEDS_PER_KIND_MAX && !rejected {
            continue;
        }
        picked += 1;
        push("entry", format!("entry-{index}"), bytes.to_vec());
        push(
            "submission",
            format!("submission-{index}"),
            entry.submission.to_vec(),
        );
    }

    // Checkpoint notes, signed by the appender, and a few with extension lines.
    let notes: Vec<&String> = f
        .records
        .iter()
        .filter_map(|record| match record {
            ScenarioRecord::Checkpoint(note) => Some(note),
            ScenarioRecord::Entry(_) => None,
        })
        .take(SEEDS_PER_KIND_MAX)
        .collect();
    for (number, note) in notes.iter().enumerate() {
        push("note", format!("note-{number}"), note.as_bytes().to_vec());
        push(
            "checkpoint",
            format!("checkpoint-{number}"),
            note.as_bytes().to_vec(),
        );
    }
    let size = 5.min(f.tree.size());
    let with_extension = Checkpoint {
        origin: f.trust.origin.clone(),
        size,
        root: f.tree.root_at(size).expect("size within the tree"),
        extensions: vec!["fuzz extension line".into()],
    };
    let note = sign_checkpoint(&with_extension, &f.log_key).expect("signs");
    push("note", "note-extension".into(), note.clone().into_bytes());
    push(
        "checkpoint",
        "checkpoint-extension".into(),
        note.into_bytes(),
    );

    // Proofs from the fixture export.
    let small = small_export(f.entries.len().min(3 * CHECKPOINT_EVERY as usize));
    let source = ProofSource::load(&full_export()[..], &f.trust, None).expect("the export loads");
    let sizes: Vec<u64> = source
        .checkpoints()
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    for index in [0, 1, 7, 15, 16, 31, 100, 255] {
        if let Ok(proof) = source.inclusion(index, None) {
            push(
                "tlog_proof",
                format!("tlog-proof-{index}"),
                proof.to_string().into_bytes(),
            );
        }
    }
    for pair in sizes.windows(2).take(SEEDS_PER_KIND_MAX / 2) {
        let file = source.consistency(pair[0], pair[1]).expect("consistent");
        push(
            "consistency_file",
            format!("consistency-{}-{}", pair[0], pair[1]),
            serde_json_string(&file),
        );
    }
    if let (Some(first), Some(last)) = (sizes.first(), sizes.last())
        && first < last
    {
        let file = source.consistency(*first, *last).expect("consistent");
        push(
            "consistency_file",
            format!("consistency-{first}-{last}"),
            serde_json_string(&file),
        );
    }

    // Merkle: sizes and indices for the model half, and one raw proof.
    for (number, head) in [[0u8, 0, 0, 0, 0], [7, 0, 3, 1, 9], [200, 0, 77, 13, 255]]
        .iter()
        .enumerate()
    {
        push("merkle", format!("merkle-model-{number}"), head.to_vec());
    }
    let mut tree = MerkleTree::new();
    for entry in f.entries.iter().take(13) {
        tree.push_data(entry);
    }
    let mut raw = Vec::new();
    raw.extend_from_slice(&5u64.to_le_bytes());
    raw.extend_from_slice(&13u64.to_le_bytes());
    raw.extend_from_slice(tree.leaf_hash(5).expect("leaf").as_bytes());
    raw.extend_from_slice(tree.root().as_bytes());
    for hash in tree.inclusion_proof(5, 13).expect("proof") {
        raw.extend_from_slice(hash.as_bytes());
    }
    push("merkle", "merkle-raw".into(), raw);

    // Exports: small fixture ledgers and the committed corpus.
    push("export", "export-small".into(), small);
    push("export", "export-one-entry".into(), small_export(1));
    if let Ok(dir) = std::fs::read_dir(vectors_dir()) {
        let mut paths: Vec<PathBuf> = dir
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "export"))
            .collect();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).expect("a corpus file reads");
            if bytes.len() <= crate::EXPORT_FUZZ_BYTES_MAX {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                push("export", format!("corpus-{stem}"), bytes);
            }
        }
    }
    out
}

fn serde_json_string(file: &stockpile_ledger::prove::ConsistencyProofFile) -> Vec<u8> {
    serde_json::to_vec_pretty(file).expect("a consistency file serializes")
}

/// The whole fixture ledger as an export.
pub fn full_export() -> Vec<u8> {
    let f = fixtures();
    let mut writer = ExportWriter::new(Vec::new(), &f.trust.origin).expect("memory");
    for record in &f.records {
        match record {
            ScenarioRecord::Entry(bytes) => writer.write_entry(bytes),
            ScenarioRecord::Checkpoint(note) => writer.write_checkpoint(note.as_bytes()),
        }
        .expect("memory");
    }
    writer.finish().expect("memory")
}

/// The first `entries` entries of the fixture ledger with the appender's checkpoints
/// among them and one signed here at the end.
pub fn small_export(entries: usize) -> Vec<u8> {
    let f = fixtures();
    let mut writer = ExportWriter::new(Vec::new(), &f.trust.origin).expect("memory");
    let mut written = 0usize;
    for record in &f.records {
        match record {
            ScenarioRecord::Entry(bytes) if written < entries => {
                writer.write_entry(bytes).expect("memory");
                written += 1;
            }
            ScenarioRecord::Checkpoint(note) if written <= entries => {
                let (checkpoint, _) = stockpile_core::checkpoint::open_checkpoint(
                    note.as_bytes(),
                    &f.trust.origin,
                    &f.trust.log_keys,
                )
                .expect("fixture checkpoints open");
                if checkpoint.size as usize <= written {
                    writer.write_checkpoint(note.as_bytes()).expect("memory");
                }
            }
            _ => {}
        }
    }
    let size = written as u64;
    let last = Checkpoint {
        origin: f.trust.origin.clone(),
        size,
        root: f.tree.root_at(size).expect("size within the tree"),
        extensions: Vec::new(),
    };
    let note = sign_checkpoint(&last, &f.log_key).expect("signs");
    writer.write_checkpoint(note.as_bytes()).expect("memory");
    writer.finish().expect("memory")
}
