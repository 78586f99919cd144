//! The SDK without NATS: signing, key choice, sequence allocation, durability, bounds.

mod common;

use common::*;
use stockpile_core::events::{EventKind, Role};
use stockpile_core::hash::event_signature_message;
use stockpile_core::time::TimestampMs;
use stockpile_emitter::outbox::{Outbox, OutboxLimits};
use stockpile_emitter::{EmitError, Emitter, EventDraft};
use stockpile_proto::envelope::decode_submission;

fn draft(lot: &str) -> EventDraft {
    EventDraft::new("officer 7", lot_declared(lot))
}

#[tokio::test]
async fn a_draft_becomes_a_signed_submission_the_sequencer_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
    let pending = emitter
        .emit(draft("LOT-1").occurred_at(TimestampMs(1_700_000_000_000)))
        .await
        .unwrap();
    assert_eq!(pending.key_id, "test-depot");
    assert_eq!(pending.emitter_sequence, 1);
    assert_eq!(pending.event_id, "depot-test-depot-1");
    assert_eq!(pending.kind, EventKind::LotDeclared);
    assert_eq!(emitter.pending_count(), 1);
    drop(emitter);

    let outbox = Outbox::open(&dir.path().join("outbox"), OutboxLimits::default()).unwrap();
    let entry = outbox
        .entry("test-depot", 1)
        .unwrap()
        .expect("pending entry");
    let decoded = decode_submission(&entry.submission).expect("decodes");
    assert_eq!(decoded.key_id, "test-depot");
    assert_eq!(decoded.event.origin, ORIGIN);
    assert_eq!(decoded.event.actor, "officer 7");
    assert_eq!(decoded.event.emitter_sequence, 1);
    assert_eq!(decoded.event.event_id, "depot-test-depot-1");
    assert_eq!(decoded.event.occurred_at, TimestampMs(1_700_000_000_000));
    assert_eq!(decoded.event.body, lot_declared("LOT-1"));
    key("test-depot", 1)
        .verifier_key()
        .verify(
            &event_signature_message(&decoded.event_bytes),
            &decoded.signature,
        )
        .expect("the signature verifies");
    assert_eq!(entry.message_id(), "test-depot/1");
}

#[tokio::test]
async fn each_kind_is_signed_by_its_role_and_sequences_are_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
    let mine_type = serde_json::from_value(serde_json::json!({
        "kind": "mine_type_registered", "type_id": "M14", "designation": "M14",
        "category": "blast", "activation_modes": ["pressure"], "self_destructing": false,
        "counts_as_apm": true, "dimensions_mm": "56x40", "fusing": "mechanical",
        "explosive_type": "tetryl", "explosive_mg": 29000, "metal_mg": 0
    }))
    .unwrap();
    let a = emitter.emit(draft("LOT-1")).await.unwrap();
    let b = emitter
        .emit(EventDraft::new("registrar", mine_type))
        .await
        .unwrap();
    let c = emitter.emit(draft("LOT-2")).await.unwrap();
    assert_eq!((a.key_id.as_str(), a.emitter_sequence), ("test-depot", 1));
    assert_eq!(
        (b.key_id.as_str(), b.emitter_sequence),
        ("test-registrar", 1)
    );
    assert_eq!((c.key_id.as_str(), c.emitter_sequence), ("test-depot", 2));
    assert_eq!(b.event_id, "depot-test-registrar-1");
}

#[tokio::test]
async fn kinds_and_roles_outside_the_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();

    let error = emitter
        .emit(EventDraft::new("x", transfer_requested()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EmitError::KindNotEmitted {
                kind: EventKind::TransferRequested,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("transfer_requested"), "{error}");
    assert!(error.to_string().contains("lot_declared"), "{error}");

    let error = emitter
        .emit(draft("L").role(Role::Registrar))
        .await
        .unwrap_err();
    assert!(matches!(error, EmitError::RoleMismatch { .. }), "{error}");

    // A correction belongs to the role of the corrected event: with three roles, say which.
    let error = emitter
        .emit(EventDraft::new("x", correction()))
        .await
        .unwrap_err();
    assert!(matches!(error, EmitError::RoleRequired { .. }), "{error}");
    let error = emitter
        .emit(EventDraft::new("x", correction()).role(Role::Demil))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            EmitError::NoKeyForRole {
                role: Role::Demil,
                ..
            }
        ),
        "{error}"
    );
    let pending = emitter
        .emit(EventDraft::new("x", correction()).role(Role::Depot))
        .await
        .unwrap();
    assert_eq!(pending.key_id, "test-depot");

    // Nothing refused used a sequence.
    assert_eq!(pending.emitter_sequence, 1);
    assert_eq!(emitter.pending_count(), 1);
}

#[tokio::test]
async fn a_correction_needs_no_role_when_the_emitter_holds_one() {
    let dir = tempfile::tempdir().unwrap();
    let keys = depot_keys().into_iter().take(1).collect();
    let emitter = Emitter::open_offline(config(dir.path(), keys)).unwrap();
    let pending = emitter
        .emit(EventDraft::new("x", correction()))
        .await
        .unwrap();
    assert_eq!(pending.key_id, "test-depot");
}

#[tokio::test]
async fn invalid_events_are_refused_before_a_sequence_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
    let error = emitter.emit(draft("")).await.unwrap_err();
    assert!(matches!(error, EmitError::Invalid(_)), "{error}");
    assert!(error.to_string().contains("lot_id"), "{error}");

    let error = emitter
        .emit(draft("L").event_id("x".repeat(10_000)))
        .await
        .unwrap_err();
    assert!(matches!(error, EmitError::Invalid(_)), "{error}");

    let future = TimestampMs(i64::MAX / 2);
    let error = emitter
        .emit(draft("L").occurred_at(future))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("future"), "{error}");

    assert_eq!(emitter.emit(draft("L")).await.unwrap().emitter_sequence, 1);
}

#[tokio::test]
async fn sequences_are_never_reused_across_reopen_and_receipts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
        for lot in ["A", "B", "C"] {
            emitter.emit(draft(lot)).await.unwrap();
        }
        emitter.shutdown().await.unwrap();
    }
    {
        // Retire everything, as receipts would.
        let outbox = Outbox::open(&dir.path().join("outbox"), OutboxLimits::default()).unwrap();
        for sequence in 1..=3 {
            let entry = outbox.entry("test-depot", sequence).unwrap().unwrap();
            outbox
                .record_receipt(&stockpile_nats::receipts::Receipt {
                    key_id: "test-depot".into(),
                    emitter_sequence: sequence,
                    event_id: entry.event_id,
                    index: sequence - 1,
                    entry_hash: String::new(),
                    leaf_hash: String::new(),
                    accepted: true,
                    rejection_code: None,
                    rejection_reason: None,
                })
                .unwrap();
        }
        outbox.flush().await.unwrap();
        assert_eq!(outbox.pending_count(), 0);
    }
    let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
    assert_eq!(emitter.pending_count(), 0);
    let next = emitter.emit(draft("D")).await.unwrap();
    assert_eq!(next.emitter_sequence, 4);
    let receipt = emitter.receipt("test-depot", 2).await.unwrap().unwrap();
    assert_eq!(receipt.index, 1);
    assert!(emitter.receipt("test-depot", 4).await.unwrap().is_none());
}

/// A crash: the process dies with the emitter open. What is on disk at that moment is
/// copied (the emitter still holds sled's lock and its caches, nothing is flushed by a
/// drop) and opened as the restarted service would.
#[tokio::test]
async fn a_crash_keeps_every_accepted_event_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
    let mut accepted = Vec::new();
    for lot in ["A", "B", "C", "D"] {
        accepted.push(emitter.emit(draft(lot)).await.unwrap());
    }
    let crashed = dir.path().join("crashed");
    copy_dir(&dir.path().join("outbox"), &crashed);
    let live = Outbox::open(&crashed, OutboxLimits::default()).unwrap();
    assert_eq!(live.pending_count(), accepted.len() as u64);
    for pending in &accepted {
        let entry = live
            .entry(&pending.key_id, pending.emitter_sequence)
            .unwrap()
            .expect("an accepted event survives");
        assert_eq!(entry.event_id, pending.event_id);
        let decoded = decode_submission(&entry.submission).unwrap();
        assert_eq!(decoded.event.emitter_sequence, pending.emitter_sequence);
    }
    assert_eq!(live.last_sequence("test-depot").unwrap(), 4);
    // The restarted emitter continues the sequence, never reusing one.
    drop(live);
    let mut restarted = config(dir.path(), depot_keys());
    restarted.outbox_dir = crashed;
    let restarted = Emitter::open_offline(restarted).unwrap();
    assert_eq!(
        restarted.emit(draft("E")).await.unwrap().emitter_sequence,
        5
    );
    drop(emitter);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn the_bytes_survive_reopen_identically() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let emitter = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
        emitter.emit(draft("A")).await.unwrap();
        emitter.emit(draft("B")).await.unwrap();
        drop(emitter); // dropped without shutdown
        let outbox = Outbox::open(&dir.path().join("outbox"), OutboxLimits::default()).unwrap();
        [
            outbox.entry("test-depot", 1).unwrap().unwrap(),
            outbox.entry("test-depot", 2).unwrap().unwrap(),
        ]
    };
    let outbox = Outbox::open(&dir.path().join("outbox"), OutboxLimits::default()).unwrap();
    for entry in before {
        let again = outbox
            .entry(&entry.key_id, entry.emitter_sequence)
            .unwrap()
            .unwrap();
        assert_eq!(again, entry);
    }
}

#[tokio::test]
async fn a_full_outbox_refuses_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), depot_keys());
    config.outbox_limits = OutboxLimits {
        entries_max: 3,
        bytes_max: 1 << 20,
    };
    let emitter = Emitter::open_offline(config).unwrap();
    for lot in ["A", "B", "C"] {
        emitter.emit(draft(lot)).await.unwrap();
    }
    let error = emitter.emit(draft("D")).await.unwrap_err();
    assert!(matches!(error, EmitError::OutboxFull(_)), "{error}");
    assert!(error.to_string().contains("outbox is full"), "{error}");
    assert_eq!(emitter.pending_count(), 3);
    emitter.shutdown().await.unwrap();
    let error = emitter.emit(draft("E")).await.unwrap_err();
    assert!(matches!(error, EmitError::ShuttingDown), "{error}");
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut twice = depot_keys();
    twice.push(twice[0].clone());
    let error = Emitter::open_offline(config(dir.path(), twice)).unwrap_err();
    assert!(
        error.to_string().contains("two keys for the depot role"),
        "{error}"
    );

    let mut shared = depot_keys();
    shared[1].key = shared[0].key.clone();
    let error = Emitter::open_offline(config(dir.path(), shared)).unwrap_err();
    assert!(error.to_string().contains("one role"), "{error}");

    let error = Emitter::open_offline(config(dir.path(), Vec::new())).unwrap_err();
    assert!(error.to_string().contains("at least one"), "{error}");

    let mut bad_name = config(dir.path(), depot_keys());
    bad_name.service = "depot.a".into();
    assert!(Emitter::open_offline(bad_name).is_err());

    // The outbox is locked by an open emitter.
    let open = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap();
    let error = Emitter::open_offline(config(dir.path(), depot_keys())).unwrap_err();
    assert!(format!("{error:#}").contains("outbox"), "{error:#}");
    drop(open);
}

#[tokio::test]
async fn open_without_a_reachable_nats_fails_clearly_unless_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let error = Emitter::open(config(dir.path(), depot_keys()))
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("cannot reach NATS"),
        "{error:#}"
    );

    let mut waiting = config(dir.path(), depot_keys());
    waiting.nats.wait = true;
    let emitter = Emitter::open(waiting).await.unwrap();
    assert!(!emitter.is_connected());
    let pending = emitter.emit(draft("A")).await.unwrap();
    assert_eq!(pending.emitter_sequence, 1);
    let waited = emitter
        .wait_for_receipt(&pending.key_id, 1, std::time::Duration::from_millis(50))
        .await
        .unwrap();
    assert!(waited.is_none());
    emitter.shutdown().await.unwrap();
    assert_eq!(emitter.pending_count(), 1);
}
