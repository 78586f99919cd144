//! The key-compromise drill, at the boundary an inspector sees (the export and
//! `stockpile verify`): a depot key is revoked as compromised from a point in the past;
//! its later submissions are refused; the entries it signed before still verify and
//! their proofs still check out; the verifier says which key signed which range and which
//! of its entries are suspect; a replacement key carries on.

use bytes::Bytes;
use stockpile_core::events::{
    Event, EventBody, Evidence, KeyRevoked, LotBasis, LotDeclared, RevocationReason, Role,
    SignerAuthorized, SiteKind,
};
use stockpile_core::hash::Hash32;
use stockpile_core::keys::SignerKey;
use stockpile_core::time::TimestampMs;
use stockpile_ledger::appender::Appender;
use stockpile_ledger::export::ExportWriter;
use stockpile_proto::envelope::{EntryVerdict, sign_event};
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioKeys};

use crate::support::system::stockpile;

/// One hour, in milliseconds.
const HOUR_MS: i64 = 3_600_000;

struct Drill {
    appender: Appender,
    keys: ScenarioKeys,
    entries: Vec<Bytes>,
    clock: TimestampMs,
    next_event: u64,
}

impl Drill {
    /// A Finland-like scenario ledger of a few hundred entries, sequenced for real.
    fn new() -> Drill {
        let config = ScenarioConfig {
            seed: 21,
            dataset: Dataset::FinlandLike,
            min_entries: 300,
            checkpoint_every: 0,
        };
        let submissions: Vec<_> = stockpile_scenario::submissions(&config).collect();
        let keys = ScenarioKeys::new(config.dataset, config.seed);
        let trust = keys.trust_root();
        let mut appender = Appender::new(
            &trust.origin,
            keys.log.clone(),
            &trust.ledger_authority_keys(),
        )
        .expect("valid origin");
        let mut entries = Vec::new();
        let mut clock = TimestampMs(0);
        for submission in &submissions {
            let appended = appender.append(&submission.bytes, submission.recorded_at);
            entries.push(appended.entry);
            clock = submission.recorded_at;
        }
        Drill {
            appender,
            keys,
            entries,
            clock,
            next_event: 0,
        }
    }

    /// Signs `body` with `key` under its next emitter sequence and appends it an hour
    /// after the last entry; returns the verdict.
    fn submit(&mut self, key: &SignerKey, body: EventBody) -> EntryVerdict {
        self.clock = TimestampMs(self.clock.0 + HOUR_MS);
        self.next_event += 1;
        let sequence = self
            .appender
            .state()
            .key(key.name())
            .and_then(|record| record.last_emitter_sequence)
            .unwrap_or(0)
            + 1;
        let event = Event {
            event_id: format!("DRILL-{:03}", self.next_event),
            origin: self.keys.origin.clone(),
            actor: "key compromise drill".into(),
            emitter_sequence: sequence,
            occurred_at: self.clock,
            evidence: vec![Evidence {
                kind: "incident report".into(),
                sha256: Hash32::digest(b"incident"),
                description: "drill".into(),
            }],
            body,
        };
        let appended = self.appender.append(&sign_event(&event, key), self.clock);
        self.entries.push(appended.entry);
        appended.verdict
    }

    fn depot_lot(&self, lot_id: &str) -> EventBody {
        let compliance = self.appender.state().compliance();
        let site_id = compliance
            .sites()
            .iter()
            .find(|(_, site)| site.info.kind == SiteKind::Depot)
            .map(|(id, _)| id.to_string())
            .expect("the scenario has a depot");
        let type_id = compliance
            .mine_types()
            .keys()
            .next()
            .expect("a mine type")
            .clone();
        EventBody::LotDeclared(LotDeclared {
            lot_id: lot_id.into(),
            type_id,
            manufacturer_lot_number: None,
            lot_number_absent_reason: "found during the drill".into(),
            quantity: 40,
            site_id,
            owner: "State".into(),
            custodian: "Depot".into(),
            basis: LotBasis::Discovered,
            basis_date: Some(self.clock.date()),
            request_id: None,
        })
    }

    /// The export with a checkpoint at the end.
    fn export(&mut self) -> Vec<u8> {
        let checkpoint = self.appender.checkpoint();
        let mut out = Vec::new();
        let mut writer = ExportWriter::new(&mut out, &self.keys.origin).expect("writer");
        for entry in &self.entries {
            writer.write_entry(entry).expect("entry");
        }
        writer
            .write_checkpoint(checkpoint.note.as_bytes())
            .expect("checkpoint");
        writer.finish().expect("finish");
        out
    }
}

#[test]
fn a_compromised_key_is_cut_off_its_past_still_verifies_and_the_verifier_names_its_range() {
    let mut drill = Drill::new();
    let depot = drill.keys.depot.clone();
    let registrar = drill.keys.registrar.clone();
    let signed_before = drill
        .appender
        .state()
        .key(depot.name())
        .expect("the depot key")
        .entries_signed;
    assert!(signed_before > 10, "the depot signed part of the scenario");

    // One more honest entry, then the compromise is discovered: the key is revoked as
    // compromised from a day before that entry.
    let honest_index = drill.entries.len() as u64;
    assert_eq!(
        drill.submit(&depot, drill.depot_lot("DRILL-LOT-1")),
        EntryVerdict::Accepted
    );
    let suspect_from = TimestampMs(drill.clock.0 - 24 * HOUR_MS);
    let revocation = EventBody::KeyRevoked(KeyRevoked {
        key_id: depot.name().to_string(),
        revoked_at: TimestampMs(drill.clock.0 + HOUR_MS),
        reason: RevocationReason::Compromised,
        suspect_from: Some(suspect_from),
    });
    assert_eq!(drill.submit(&registrar, revocation), EntryVerdict::Accepted);

    // The compromised key's later submission is refused, and says why.
    let refused_index = drill.entries.len() as u64;
    match drill.submit(&depot, drill.depot_lot("DRILL-LOT-2")) {
        EntryVerdict::Rejected { code, reason } => {
            assert_eq!(code, "signature.key_revoked", "{reason}");
        }
        other => panic!("a revoked key's event was {other:?}"),
    }

    // A replacement key is authorised and carries on.
    let replacement = SignerKey::from_seed("syn-fi.depot-2", [42; 32]).expect("a valid key name");
    let authorise = EventBody::SignerAuthorized(SignerAuthorized {
        key_id: replacement.name().to_string(),
        public_key: replacement.public_key_bytes(),
        holder: "depot service (replacement key)".into(),
        role: Role::Depot,
        valid_from: drill.clock,
        site_scope: Vec::new(),
    });
    assert_eq!(drill.submit(&registrar, authorise), EntryVerdict::Accepted);
    assert_eq!(
        drill.submit(&replacement, drill.depot_lot("DRILL-LOT-3")),
        EntryVerdict::Accepted
    );

    // The inspector's view of it.
    let dir = tempfile::tempdir().expect("tempdir");
    let export = dir.path().join("drill.export");
    let trust = dir.path().join("trust.json");
    std::fs::write(&export, drill.export()).expect("export");
    std::fs::write(&trust, drill.keys.trust_root().to_json()).expect("trust");
    let (export, trust) = (export.to_str().unwrap(), trust.to_str().unwrap());
    let (code, out, err) = stockpile(&["verify", export, "--trust", trust, "--json"]);
    assert_eq!(code, 0, "the whole history still verifies: {out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let signer = |key_id: &str| {
        report["signers"]
            .as_array()
            .expect("signers")
            .iter()
            .find(|signer| signer["key_id"] == key_id)
            .unwrap_or_else(|| panic!("{key_id} in {}", report["signers"]))
            .clone()
    };
    let revoked = signer(depot.name());
    assert_eq!(revoked["entries_signed"], signed_before + 1);
    assert_eq!(revoked["last_index"], honest_index, "{revoked}");
    assert_eq!(revoked["revocation_reason"], "compromised");
    assert!(!revoked["revoked_at"].is_null());
    // The suspect range ends with the last entry it signed and begins on the day of
    // `suspect_from`; it is flagged, not erased.
    assert_eq!(revoked["suspect"]["last_index"], honest_index, "{revoked}");
    assert!(revoked["suspect"]["entries"].as_u64().unwrap() >= 1);
    let flagged = report["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .any(|flag| flag["code"] == "suspicious.signed_by_compromised_key");
    assert!(flagged, "{}", report["flags"]);
    assert_eq!(signer(replacement.name())["entries_signed"], 1);
    assert!(report["rejected"].as_u64().unwrap() >= 1);

    // The human summary names the ranges too.
    let (code, text, err) = stockpile(&["verify", export, "--trust", trust]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("revoked"), "{text}");
    assert!(text.contains("compromised"), "{text}");
    assert!(text.contains("suspect in #"), "{text}");

    // An entry it signed before the revocation is still provably in the ledger.
    let proof = dir.path().join("entry.tlog-proof");
    let entry = dir.path().join("entry.bin");
    let index = honest_index.to_string();
    let (code, out, err) = stockpile(&[
        "prove",
        "inclusion",
        "--export",
        export,
        "--trust",
        trust,
        "--index",
        &index,
        "--out",
        proof.to_str().unwrap(),
        "--entry-out",
        entry.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = stockpile(&[
        "check-proof",
        "inclusion",
        "--proof",
        proof.to_str().unwrap(),
        "--entry",
        entry.to_str().unwrap(),
        "--trust",
        trust,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // The refused submission is in the ledger as a rejection record, with its reason.
    let (code, out, _) = stockpile(&[
        "inspect",
        export,
        "--from",
        &refused_index.to_string(),
        "--limit",
        "1",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("signature.key_revoked"), "{out}");
}
