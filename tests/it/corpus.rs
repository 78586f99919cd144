//! The corpus of corrupted ledgers (tests/vectors/corpus): each case is an export with
//! its expected verdict, generated here and committed, so that any implementation of the
//! verifier can be checked against the same files.
//!
//! `make vectors` (STOCKPILE_BLESS=1) rewrites the files; otherwise the test checks that
//! the committed files are exactly what this code generates, and that the verifier
//! reaches the expected verdict on each committed file.

use crate::support::events::*;
use crate::support::{Record, entry_positions, export_bytes};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use stockpile_core::events::*;
use stockpile_ledger::verifier::{Report, VerifyOptions, verify_export};
use stockpile_proto::envelope::{
    EntryVerdict, decode_entry, decode_submission, encode_entry, encode_submission,
};

/// The verdict a case expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    pub description: String,
    pub clean: bool,
    /// Findings that must be reported; no finding may name an entry before the
    /// earliest index listed here.
    pub findings: Vec<ExpectedFinding>,
    /// Flag codes that must be raised (flags do not make a ledger unclean).
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedFinding {
    pub index: Option<u64>,
    pub code: String,
}

pub struct Case {
    pub name: &'static str,
    pub export: Vec<u8>,
    pub expectation: Expectation,
}

fn expect(description: &str, findings: &[(Option<u64>, &str)]) -> Expectation {
    Expectation {
        description: description.into(),
        clean: findings.is_empty(),
        findings: findings
            .iter()
            .map(|(index, code)| ExpectedFinding {
                index: *index,
                code: code.to_string(),
            })
            .collect(),
        flags: Vec::new(),
    }
}

fn entry_index_of(records: &[Record], event_id: &str) -> (usize, u64) {
    for (entry_number, position) in entry_positions(records).into_iter().enumerate() {
        let Record::Entry(bytes) = &records[position] else {
            unreachable!()
        };
        let entry = decode_entry(bytes).expect("base entries decode");
        if let Ok(submission) = decode_submission(&entry.submission)
            && submission.event.event_id == event_id
        {
            return (position, entry_number as u64);
        }
    }
    panic!("event {event_id} not found")
}

/// Rewrites the entry at `position` through `change`, re-encoding only what changes.
fn rewrite_entry(
    records: &mut [Record],
    position: usize,
    change: impl FnOnce(&mut stockpile_proto::envelope::DecodedEntry),
) {
    let Record::Entry(bytes) = &records[position] else {
        panic!("not an entry")
    };
    let mut entry = decode_entry(bytes).expect("base entries decode");
    change(&mut entry);
    records[position] = Record::Entry(encode_entry(&entry));
}

fn flip_in(bytes: &[u8], needle: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present");
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

/// Every case of the corpus.
pub fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: &'static str, records: &[Record], expectation: Expectation| {
        cases.push(Case {
            name,
            export: export_bytes(records),
            expectation,
        });
    };

    let base = base_ledger(true);
    add(
        "valid",
        &base.forger.records,
        expect("the base ledger, unmodified", &[]),
    );

    {
        let mut s = base_ledger(false);
        s.forger.append_raw(
            b"\x0a\x03not a submission",
            EntryVerdict::Rejected {
                code: "malformed.submission".into(),
                reason: "garbage from a client".into(),
            },
        );
        let mut event = s.event(destroy("L1", 5_000, "D1"));
        event.emitter_sequence = s.forger.sequence_for(&s.keys.demil.clone());
        let refused = stockpile_proto::envelope::sign_event(&event, &s.keys.demil);
        s.forger.append_raw(
            &refused,
            EntryVerdict::Rejected {
                code: "counts.below_zero".into(),
                reason: "only 600 on hand".into(),
            },
        );
        s.accept(EventBody::LotDestroyed(LotDestroyed {
            witnesses: Vec::new(),
            ..match destroy("L1", 10, "D1") {
                EventBody::LotDestroyed(d) => d,
                _ => unreachable!(),
            }
        }));
        s.checkpoint();
        let mut expectation = expect(
            "rejected submissions (garbage, an over-destruction) are evidence, not findings; an unwitnessed destruction is a flag",
            &[],
        );
        expectation.flags = vec!["destruction.no_independent_witness".into()];
        add(
            "valid-with-rejections-and-flags",
            &s.forger.records,
            expectation,
        );
    }

    {
        let mut records = base.forger.records.clone();
        let (position, index) = entry_index_of(&records, "ev-0014");
        rewrite_entry(&mut records, position, |entry| {
            let submission = decode_submission(&entry.submission).unwrap();
            let event = flip_in(&submission.event_bytes, b"MFR-L2");
            entry.submission = Bytes::from(encode_submission(
                &event,
                &submission.key_id,
                &submission.signature,
            ));
        });
        add(
            "flipped-bit-in-event",
            &records,
            expect(
                "one bit of a signed event changed",
                &[(Some(index), "signature.invalid")],
            ),
        );
    }

    {
        let mut records = base.forger.records.clone();
        let (position, index) = entry_index_of(&records, "ev-0015");
        rewrite_entry(&mut records, position, |entry| {
            let submission = decode_submission(&entry.submission).unwrap();
            let mut signature = submission.signature.to_vec();
            signature[10] ^= 0x80;
            entry.submission = Bytes::from(encode_submission(
                &submission.event_bytes,
                &submission.key_id,
                &signature,
            ));
        });
        add(
            "flipped-bit-in-signature",
            &records,
            expect(
                "one bit of a signature changed",
                &[(Some(index), "signature.invalid")],
            ),
        );
    }

    {
        let mut records = base.forger.records.clone();
        let (position, index) = entry_index_of(&records, "ev-0016");
        rewrite_entry(&mut records, position, |entry| {
            entry.prev_entry_hash.0[0] ^= 0x04
        });
        add(
            "flipped-bit-in-prev-hash",
            &records,
            expect(
                "one bit of a previous-entry hash changed",
                &[(Some(index), "chain.broken_link")],
            ),
        );
    }

    {
        let mut records = base.forger.records.clone();
        let (position, index) = entry_index_of(&records, "ev-0012");
        records.remove(position);
        add(
            "entry-deleted-from-middle",
            &records,
            expect(
                "one entry removed from the middle",
                &[(Some(index), "chain.index_mismatch")],
            ),
        );
    }

    {
        let mut records = base.forger.records.clone();
        let (first, index) = entry_index_of(&records, "ev-0018");
        let (second, _) = entry_index_of(&records, "ev-0019");
        records.swap(first, second);
        add(
            "entries-swapped",
            &records,
            expect(
                "two neighbouring entries swapped",
                &[(Some(index), "chain.index_mismatch")],
            ),
        );
    }

    {
        let mut records = base.forger.records.clone();
        let entries = entry_positions(&records);
        let keep = 2 * BASE_CHECKPOINT_EVERY as usize + 1;
        for position in entries[keep..].iter().rev() {
            records.remove(*position);
        }
        add(
            "tail-truncated-below-checkpoint",
            &records,
            expect(
                "entries after 17 removed, the later signed checkpoints kept",
                &[(Some(keep as u64), "ledger.truncated")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let Some(Record::Entry(last)) = s
            .forger
            .records
            .iter()
            .rev()
            .find(|r| matches!(r, Record::Entry(_)))
            .cloned()
        else {
            unreachable!()
        };
        let submission = decode_entry(&last).unwrap().submission;
        let index = s.forger.size();
        s.forger.append_raw(&submission, EntryVerdict::Accepted);
        s.checkpoint();
        add(
            "same-event-appended-twice",
            &s.forger.records,
            expect(
                "the last signed event appended again and accepted",
                &[(Some(index), "references.replayed_emitter_sequence")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let index = s.forger.size();
        let stranger = s.keys.stranger.clone();
        s.accept_with(&stranger, lot("L9", 10, "D1"));
        s.checkpoint();
        add(
            "signed-by-unknown-key",
            &s.forger.records,
            expect(
                "an event signed by a key the ledger never authorised",
                &[(Some(index), "signature.unknown_key")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let index = s.forger.size();
        let revoked = s.keys.depot_old.clone();
        s.accept_with(&revoked, lot("L9", 10, "D1"));
        s.checkpoint();
        add(
            "signed-by-revoked-key",
            &s.forger.records,
            expect(
                "an event signed by a key revoked earlier in the ledger",
                &[(Some(index), "signature.key_revoked")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let index = s.forger.size();
        let depot = s.keys.depot.clone();
        s.accept_with(&depot, destroy("L1", 10, "D1"));
        s.checkpoint();
        add(
            "key-not-authorised-for-kind",
            &s.forger.records,
            expect(
                "a destruction signed by the depot's key",
                &[(Some(index), "role.not_owner")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let index = s.forger.size();
        let mut event = s.event(lot("L9", 10, "D1"));
        event.origin = "ledger.elsewhere.example/apm".into();
        let depot = s.keys.depot.clone();
        s.forger.accept(&depot, event);
        s.checkpoint();
        add(
            "event-signed-for-another-ledger",
            &s.forger.records,
            expect(
                "a validly signed event replayed from another ledger",
                &[(Some(index), "references.wrong_origin")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let other = s.keys.other_log.clone();
        s.forger.checkpoint(&other);
        add(
            "checkpoint-signed-by-wrong-key",
            &s.forger.records,
            expect(
                "the final checkpoint is signed by a key the trust root does not name",
                &[(None, "checkpoint.bad_signature")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let size = s.forger.size();
        let log = s.keys.log.clone();
        let note = s.forger.checkpoint_with_root(
            &log,
            size,
            stockpile_core::hash::Hash32::digest(b"another history"),
        );
        s.forger.records.push(Record::Checkpoint(note));
        add(
            "checkpoint-root-mismatch",
            &s.forger.records,
            expect(
                "a correctly signed checkpoint whose root is not the entries' root",
                &[(Some(size - 1), "checkpoint.root_mismatch")],
            ),
        );
    }

    {
        let mut records = base.forger.records.clone();
        let first_checkpoint = records
            .iter()
            .position(|r| matches!(r, Record::Checkpoint(_)))
            .expect("the base ledger has checkpoints");
        let moved = records.remove(first_checkpoint);
        // Three entries later: the checkpoint no longer sits where its size says.
        let entries_after: Vec<usize> = entry_positions(&records)
            .into_iter()
            .filter(|position| *position >= first_checkpoint)
            .collect();
        records.insert(entries_after[2] + 1, moved);
        add(
            "checkpoint-moved-after-later-entries",
            &records,
            expect(
                "a signed checkpoint moved three entries past the size it covers",
                &[(None, "checkpoint.out_of_order")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let size = s.forger.size();
        s.checkpoint();
        let log = s.keys.log.clone();
        let note = s.forger.checkpoint_with_root(
            &log,
            size,
            stockpile_core::hash::Hash32::digest(b"a forked history"),
        );
        s.forger.records.push(Record::Checkpoint(note));
        add(
            "inconsistent-checkpoints",
            &s.forger.records,
            expect(
                "two signed checkpoints of the same size with different roots",
                &[(None, "checkpoint.equivocation")],
            ),
        );
    }

    {
        let records: Vec<Record> = base
            .forger
            .records
            .iter()
            .filter(|r| matches!(r, Record::Entry(_)))
            .cloned()
            .collect();
        add(
            "no-checkpoint",
            &records,
            expect(
                "entries without any signed checkpoint",
                &[(None, "checkpoint.none")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        let index = s.forger.size();
        s.accept(destroy("L2", 10_000, "D1"));
        s.checkpoint();
        add(
            "destroying-more-than-on-hand",
            &s.forger.records,
            expect(
                "a destruction of 10,000 units from a lot holding 400 at the site",
                &[(Some(index), "counts.below_zero")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        s.accept(destroy("L1", 600, "D1"));
        let index = s.forger.size();
        s.accept(ship("S9", "L1", 1, "D1", "F1"));
        s.checkpoint();
        add(
            "acting-on-a-destroyed-lot",
            &s.forger.records,
            expect(
                "a shipment of a lot whose units were all destroyed",
                &[(Some(index), "destroyed.terminal")],
            ),
        );
    }

    {
        let mut s = base_ledger(false);
        s.accept(transfer_request("R2", Purpose::OperationalUse));
        let index = s.forger.size();
        s.accept(transfer_approval(
            "R2",
            Purpose::OperationalUse,
            "APMBC-3.1",
        ));
        s.checkpoint();
        add(
            "transfer-approved-outside-article-3",
            &s.forger.records,
            expect(
                "a transfer approved for operational use",
                &[(Some(index), "transfers.not_article3")],
            ),
        );
    }

    cases
}

pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join("corpus")
}

fn verify(export: &[u8]) -> Report {
    let trust = crate::support::Keys::new().trust_root();
    verify_export(export, &trust, &VerifyOptions::default(), |_| {})
        .expect("the corpus exports are readable files")
}

#[track_caller]
fn check(name: &str, report: &Report, expectation: &Expectation) {
    let listing = || {
        report
            .findings
            .iter()
            .map(|f| format!("  {:?} {} {}", f.index, f.code, f.message))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        report.is_clean(),
        expectation.clean,
        "{name}: clean? findings:\n{}",
        listing()
    );
    for expected in &expectation.findings {
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.code == expected.code && f.index == expected.index),
            "{name}: expected {} at {:?}; got:\n{}",
            expected.code,
            expected.index,
            listing()
        );
    }
    if let Some(earliest) = expectation.findings.iter().filter_map(|f| f.index).min() {
        let first_reported = report.findings.iter().filter_map(|f| f.index).min();
        assert_eq!(
            first_reported,
            Some(earliest),
            "{name}: the first finding must be at the corrupted entry:\n{}",
            listing()
        );
    }
    for flag in &expectation.flags {
        assert!(
            report.flags.iter().any(|f| &f.code == flag),
            "{name}: expected flag {flag}; got {:?}",
            report.flags
        );
    }
}

#[test]
fn corpus_files_are_what_the_generator_makes_and_each_verdict_holds() {
    let dir = corpus_dir();
    let bless = std::env::var_os("STOCKPILE_BLESS").is_some();
    let trust_path = dir.join("trust.json");
    let trust_json = crate::support::Keys::new().trust_root().to_json();
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&trust_path, &trust_json).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&trust_path)
            .expect("tests/vectors/corpus/trust.json (run `make vectors`)"),
        trust_json
    );
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    for case in &cases {
        let export_path = dir.join(format!("{}.export", case.name));
        let expect_path = dir.join(format!("{}.expect.json", case.name));
        let expectation_json = serde_json::to_string_pretty(&case.expectation).unwrap() + "\n";
        if bless {
            std::fs::write(&export_path, &case.export).unwrap();
            std::fs::write(&expect_path, &expectation_json).unwrap();
        }
        let committed = std::fs::read(&export_path)
            .unwrap_or_else(|_| panic!("{} missing (run `make vectors`)", export_path.display()));
        assert!(
            committed == case.export,
            "{}: committed export differs from the generator (run `make vectors`)",
            case.name
        );
        let committed_expectation: Expectation =
            serde_json::from_str(&std::fs::read_to_string(&expect_path).unwrap()).unwrap();
        assert_eq!(committed_expectation, case.expectation, "{}", case.name);
        check(case.name, &verify(&committed), &committed_expectation);
    }
    // No stale files: every file in the folder belongs to a case.
    for file in std::fs::read_dir(&dir).unwrap() {
        let file_name = file.unwrap().file_name().into_string().unwrap();
        let known = file_name == "trust.json"
            || cases.iter().any(|c| {
                file_name == format!("{}.export", c.name)
                    || file_name == format!("{}.expect.json", c.name)
            });
        assert!(known, "stale corpus file {file_name}");
    }
}

#[test]
fn garbage_after_the_last_record_is_reported() {
    let mut export = export_bytes(&base_ledger(true).forger.records);
    let entries = base_ledger(true).forger.size();
    export.extend_from_slice(b"\x05garbage");
    let report = verify(&export);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.code == "export.unreadable" && f.index == Some(entries)),
        "{:?}",
        report.findings
    );
}
