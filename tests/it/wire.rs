//! The wire format as a contract: field numbers of the hashed messages are pinned, the
//! domain tags are fixed, and bytes are verified as they travelled, never re-encoded.

use crate::support::events::{Script, base_ledger, lot};
use crate::support::{Keys, export_bytes};
use bytes::Bytes;
use stockpile_core::hash::{ENTRY_LINK_TAG, EVENT_SIGNATURE_TAG, Hash32, event_signature_message};
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_proto::envelope::{
    DecodedEntry, EntryVerdict, decode_entry, encode_entry, encode_submission,
};
use stockpile_proto::event_codec::encode_event;

#[test]
fn ledger_entry_encoding_is_pinned() {
    let entry = DecodedEntry {
        index: 1,
        prev_entry_hash: Hash32([0xaa; 32]),
        submission: Bytes::from_static(b"\x01\x02"),
        recorded_at: stockpile_core::time::TimestampMs(1000),
        verdict: EntryVerdict::Accepted,
    };
    let expected = format!("08011220{}1a02010220e8072801", "aa".repeat(32));
    let bytes = encode_entry(&entry);
    assert_eq!(
        hex(&bytes),
        expected,
        "LedgerEntry field numbers or types changed: that breaks every ledger"
    );
    assert_eq!(decode_entry(&bytes).unwrap(), entry);
}

#[test]
fn submission_encoding_is_pinned() {
    let bytes = encode_submission(b"\x0a\x00", "k", &[0x55; 64]);
    assert_eq!(
        hex(&bytes),
        format!("0a020a0012016b1a40{}", "55".repeat(64))
    );
}

#[test]
fn domain_tags_are_fixed() {
    assert_eq!(
        EVENT_SIGNATURE_TAG,
        b"stockpile-ledger/v1/event-signature\n"
    );
    assert_eq!(ENTRY_LINK_TAG, b"stockpile-ledger/v1/entry-link\n");
    assert_eq!(
        stockpile_proto::export_codec::EXPORT_MAGIC,
        b"stockpile-export/v1\n"
    );
}

#[test]
fn events_with_fields_this_version_does_not_know_still_verify_because_nothing_is_re_encoded() {
    let mut script: Script = base_ledger(false);
    let mut event = script.event(lot("L7", 10, "D1"));
    event.emitter_sequence = script.forger.sequence_for(&script.keys.depot.clone());
    let mut event_bytes = encode_event(&event);
    // Field 15, varint 1: unknown to this schema, kept in the signed bytes.
    event_bytes.extend_from_slice(&[0x78, 0x01]);
    let signature = script
        .keys
        .depot
        .sign(&event_signature_message(&event_bytes));
    let submission = encode_submission(&event_bytes, script.keys.depot.name(), &signature);
    script
        .forger
        .append_raw(&submission, EntryVerdict::Accepted);
    script.checkpoint();
    let export = export_bytes(&script.forger.records);
    let report = verify_export(
        export.as_slice(),
        &Keys::new().trust_root(),
        &VerifyOptions::default(),
        |_| {},
    )
    .unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.accepted, report.entries);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
