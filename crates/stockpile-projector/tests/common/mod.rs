//! What the projector's test files share: a generated scenario ledger, split into the
//! records a projector is fed.

use bytes::Bytes;
use stockpile_ledger::export::ExportReader;
use stockpile_ledger::trust::TrustRoot;
use stockpile_proto::export_codec::ExportRecord;
use stockpile_scenario::ScenarioConfig;

/// A generated ledger: its export, trust root, entries and signed checkpoint notes.
pub struct Generated {
    /// Not every test binary reads it (each compiles this module on its own).
    #[allow(dead_code)]
    pub export: Vec<u8>,
    pub trust: TrustRoot,
    pub entries: Vec<Bytes>,
    /// In export order.
    pub checkpoints: Vec<Bytes>,
}

/// Generates the scenario of `config` and splits its export into entries and checkpoints.
pub fn generate(config: &ScenarioConfig) -> Generated {
    let mut export = Vec::new();
    let outcome = stockpile_scenario::write_export(config, &mut export).expect("generate");
    let trust = TrustRoot::parse_json(&outcome.trust_root).expect("trust root");
    let mut reader = ExportReader::open(&export[..]).expect("export");
    let (mut entries, mut checkpoints) = (Vec::new(), Vec::new());
    while let Some(record) = reader.next_record().expect("record") {
        match record {
            ExportRecord::Entry(bytes) => entries.push(bytes),
            ExportRecord::Checkpoint(note) => checkpoints.push(note),
            ExportRecord::Header { .. } => {}
        }
    }
    Generated {
        export,
        trust,
        entries,
        checkpoints,
    }
}
