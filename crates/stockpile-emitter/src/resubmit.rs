//! Re-emission of events the ledger refused as out of order.
//!
//! The publisher keeps up to [`PUBLISH_WINDOW`](crate::limits::PUBLISH_WINDOW) submissions
//! of a key in flight. If the connection drops, submission N can be lost while N+1 (in
//! the client's buffer, or sent after the reconnection) is stored first; the sequencer
//! accepts N+1 and, when N comes again, refuses it as a replay
//! ([`OUT_OF_ORDER_CODE`]): its emitter sequence is not above the key's last. The
//! event, which the emitter accepted, would then exist only as a rejection record.
//!
//! So when the receipt of (key, N) is that refusal, and (key, N) is still pending in the
//! outbox with the refused event's id, the emitter signs the same event (same id, body,
//! actor, time, evidence, origin, key) under the key's next sequence N', and in one
//! outbox transaction (flushed) stores the refusal's receipt, replaces the entry of N
//! with the entry of N', advances the key's counter and records the redirect N → N'.
//! [`Emitter::receipt`](crate::Emitter::receipt),
//! [`Emitter::wait_for_receipt`](crate::Emitter::wait_for_receipt) and the HTTP receipt
//! route follow the redirect; the refusal stays in the ledger, and in the answer's
//! `resubmitted_from`.
//!
//! Nothing else is re-emitted: any other refusal is the ledger's final word on the event,
//! an accepted receipt retires it as before, and a refusal naming another event id under
//! our sequence is reported, not repaired. The ledger's unique event ids keep a
//! re-emission from ever recording the event twice. An event is re-emitted at most
//! [`REEMISSIONS_MAX`] times; each re-emission is logged as a warning.

use std::sync::atomic::Ordering;

use stockpile_nats::receipts::Receipt;
use stockpile_proto::envelope::{decode_submission, sign_event};

use crate::limits::REEMISSIONS_MAX;
use crate::outbox::{OutboxEntry, OutboxError, Prepared};
use crate::sdk::{Inner, KeySlot, check_submission};

/// The ledger's rejection code for a submission whose emitter sequence is not above the
/// last one seen for its key (`stockpile_core::ledger`, hard rule "references").
pub const OUT_OF_ORDER_CODE: &str = "references.replayed_emitter_sequence";

/// Whether `receipt` refuses its submission as out of order.
pub fn is_out_of_order_refusal(receipt: &Receipt) -> bool {
    !receipt.accepted && receipt.rejection_code.as_deref() == Some(OUT_OF_ORDER_CODE)
}

/// Why a refused event could not be re-emitted.
#[derive(Debug)]
enum ReemitError {
    Outbox(OutboxError),
    /// The stored submission cannot be signed again (a bug or a corrupt outbox).
    Unsignable(String),
}

impl From<OutboxError> for ReemitError {
    fn from(error: OutboxError) -> Self {
        ReemitError::Outbox(error)
    }
}

impl Inner {
    /// Re-emits the event refused by `refusal` (an out-of-order refusal of one of `slot`'s
    /// sequences) if it is still pending here, durably, and wakes the publisher. `Ok(true)`
    /// if it did (the refusal's receipt is then stored too); `Ok(false)` if the refusal is
    /// to be recorded as usual: the entry is not pending, holds another event, was
    /// re-emitted [`REEMISSIONS_MAX`] times already, or cannot be signed again.
    pub(crate) async fn reemit(&self, slot: &KeySlot, refusal: &Receipt) -> anyhow::Result<bool> {
        let key_id = slot.name();
        let sequence = refusal.emitter_sequence;
        let Some(entry) = self.outbox.entry(key_id, sequence)? else {
            return Ok(false);
        };
        if entry.event_id != refusal.event_id {
            // Not our event that was refused; `store_receipt` reports it.
            return Ok(false);
        }
        let reemissions = self.outbox.reemissions(key_id, sequence)?;
        if reemissions >= REEMISSIONS_MAX {
            tracing::error!(
                key = key_id,
                sequence,
                event_id = entry.event_id,
                reemissions,
                "the ledger refused this event as out of order again, after {REEMISSIONS_MAX} re-emissions; the refusal stands (is another emitter signing with this key?)"
            );
            return Ok(false);
        }
        let resubmitted = self
            .outbox
            .resubmit(refusal, |next, old| re_sign(old, next, slot));
        let resubmission = match resubmitted {
            Ok(Some(resubmission)) => resubmission,
            // Retired meanwhile by another copy of the same receipt.
            Ok(None) => return Ok(false),
            Err(ReemitError::Outbox(error)) => return Err(error.into()),
            Err(ReemitError::Unsignable(problem)) => {
                tracing::error!(
                    key = key_id,
                    sequence,
                    event_id = entry.event_id,
                    "the ledger refused this event as out of order, and it cannot be re-emitted: {problem}; the refusal stands"
                );
                return Ok(false);
            }
        };
        self.outbox.flush().await?;
        slot.durable_sequence
            .fetch_max(resubmission.new.emitter_sequence, Ordering::SeqCst);
        self.wake_publisher.notify_one();
        tracing::warn!(
            key = key_id,
            refused_sequence = sequence,
            new_sequence = resubmission.new.emitter_sequence,
            event_id = resubmission.new.event_id,
            reemission = resubmission.reemissions,
            reemissions_max = REEMISSIONS_MAX,
            "the ledger refused this event as out of order (a later sequence of the key was stored first, after a publish failure); re-emitted the same event under the key's next sequence"
        );
        Ok(true)
    }
}

/// The submission of `old`'s event, unchanged but for its emitter sequence, now
/// `sequence`, signed again with the key of `slot`.
fn re_sign(old: &OutboxEntry, sequence: u64, slot: &KeySlot) -> Result<Prepared, ReemitError> {
    let decoded = decode_submission(&old.submission).map_err(|error| {
        ReemitError::Unsignable(format!("the stored submission does not decode: {error}"))
    })?;
    if decoded.key_id != slot.name() || decoded.event.event_id != old.event_id {
        return Err(ReemitError::Unsignable(format!(
            "the stored submission is event {:?} signed by {:?}, not {:?} by {:?}",
            decoded.event.event_id,
            decoded.key_id,
            old.event_id,
            slot.name()
        )));
    }
    let mut event = decoded.event;
    event.emitter_sequence = sequence;
    let submission = sign_event(&event, &slot.key);
    check_submission(&event, &submission, slot)
        .map_err(|error| ReemitError::Unsignable(error.to_string()))?;
    Ok(Prepared {
        event_id: event.event_id,
        submission,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use stockpile_core::events::{EventBody, Evidence, Role};
    use stockpile_core::hash::event_signature_message;
    use stockpile_core::keys::SignerKey;
    use stockpile_core::time::TimestampMs;
    use stockpile_nats::NatsConfig;

    use super::*;
    use crate::outbox::{Outbox, OutboxLimits};
    use crate::{Emitter, EmitterConfig, EventDraft, RoleKey};

    const ORIGIN: &str = "test.stockpile.example/ledger";
    const KEY: &str = "test-depot";

    fn signer() -> SignerKey {
        SignerKey::from_seed(KEY, [1; 32]).unwrap()
    }

    fn open(dir: &Path) -> Emitter {
        Emitter::open_offline(EmitterConfig::new(
            "depot",
            ORIGIN,
            vec![RoleKey {
                role: Role::Depot,
                key: signer(),
            }],
            dir.join("outbox"),
            NatsConfig::new("nats://127.0.0.1:1"),
        ))
        .unwrap()
    }

    fn body(lot: &str) -> EventBody {
        crate::json::event_body_from_json(serde_json::json!({
            "kind": "lot_declared", "lot_id": lot, "type_id": "M14",
            "manufacturer_lot_number": "MLN-1", "lot_number_absent_reason": "",
            "quantity": 120, "site_id": "SITE-A", "owner": "Army", "custodian": "Depot A",
            "basis": "initial", "basis_date": "2024-01-02"
        }))
        .unwrap()
    }

    fn draft(lot: &str) -> EventDraft {
        EventDraft::new("officer 7", body(lot))
            .occurred_at(TimestampMs(1_700_000_000_000))
            .evidence(vec![
                serde_json::from_value::<Evidence>(serde_json::json!({
                    "kind": "photo", "sha256": "ab".repeat(32), "description": format!("lot {lot}")
                }))
                .unwrap(),
            ])
    }

    fn receipt(sequence: u64, event_id: &str, refusal: Option<&str>) -> Receipt {
        Receipt {
            key_id: KEY.into(),
            emitter_sequence: sequence,
            event_id: event_id.into(),
            index: 100 + sequence,
            entry_hash: "00".repeat(32),
            leaf_hash: "11".repeat(32),
            accepted: refusal.is_none(),
            rejection_code: refusal.map(str::to_owned),
            rejection_reason: refusal.map(|code| format!("refused: {code}")),
        }
    }

    /// One GET to the service's router over `emitter`: the status and the JSON body.
    async fn http_get(emitter: &Emitter, path: &str) -> (u16, serde_json::Value) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        const TOKEN: &str = "resubmit-test-token-0123456789abcdef";
        let tokens = crate::service::ApiTokens::parse(TOKEN, "the test token").unwrap();
        let app = crate::service::router(
            emitter.clone(),
            crate::ServiceKind::Depot,
            &crate::service::ApiConfig::new(tokens),
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        // Stop serving, so the router's clone of the emitter (and its outbox lock) goes.
        server.abort();
        let _ = server.await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap())
    }

    fn last_sequence(emitter: &Emitter) -> u64 {
        emitter.inner.outbox.last_sequence(KEY).unwrap()
    }

    #[tokio::test]
    async fn an_out_of_order_refusal_re_emits_the_same_event_under_the_next_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let emitter = open(dir.path());
        let mut emitted = Vec::new();
        for lot in ["A", "B", "C"] {
            emitted.push(emitter.emit(draft(lot)).await.unwrap());
        }
        let original = emitter.inner.outbox.entry(KEY, 2).unwrap().unwrap();
        let original = decode_submission(&original.submission).unwrap();

        // 3 overtook 2: the ledger accepted 3, then refused 2 as a replay.
        let accepted_3 = receipt(3, &emitted[2].event_id, None);
        emitter.inner.store_receipt(accepted_3).await.unwrap();
        let refusal = receipt(2, &emitted[1].event_id, Some(OUT_OF_ORDER_CODE));
        emitter.inner.store_receipt(refusal.clone()).await.unwrap();

        // The refused entry is gone, the same event is pending under 4.
        let outbox = &emitter.inner.outbox;
        assert!(outbox.entry(KEY, 2).unwrap().is_none());
        assert_eq!(outbox.receipt(KEY, 2).unwrap(), Some(refusal.clone()));
        assert_eq!(last_sequence(&emitter), 4);
        assert_eq!(
            emitter.inner.keys[0]
                .durable_sequence
                .load(Ordering::SeqCst),
            4,
            "the publisher may send it"
        );
        assert_eq!(emitter.pending_count(), 2); // 1 and 4
        let entry = outbox.entry(KEY, 4).unwrap().expect("re-emitted entry");
        assert_eq!(entry.event_id, emitted[1].event_id);
        assert_eq!(entry.message_id(), "test-depot/4");
        let decoded = decode_submission(&entry.submission).unwrap();
        assert_eq!(decoded.key_id, KEY);
        assert_eq!(decoded.event.emitter_sequence, 4);
        let mut expected = original.event.clone();
        expected.emitter_sequence = 4;
        assert_eq!(decoded.event, expected, "only the sequence changed");
        assert_eq!(decoded.event.body, body("B"));
        signer()
            .verifier_key()
            .verify(
                &event_signature_message(&decoded.event_bytes),
                &decoded.signature,
            )
            .expect("the new submission verifies");
        assert_eq!(
            emitter.inner.outbox.pending_bytes(),
            [1, 4]
                .iter()
                .map(|sequence| outbox.entry(KEY, *sequence).unwrap().unwrap())
                .map(|entry| entry.submission.len() as u64)
                .sum::<u64>()
        );

        // The redirect: the caller's (key, 2) now means (key, 4).
        assert_eq!(outbox.redirect(KEY, 2).unwrap(), Some(4));
        assert_eq!(outbox.reemissions(KEY, 4).unwrap(), 1);
        assert_eq!(emitter.current_sequence(KEY, 2).unwrap(), 4);
        assert_eq!(emitter.current_sequence(KEY, 1).unwrap(), 1);
        assert!(emitter.receipt(KEY, 2).await.unwrap().is_none(), "pending");
        let waited = emitter
            .wait_for_receipt(KEY, 2, Duration::from_millis(20))
            .await
            .unwrap();
        assert!(waited.is_none());

        // Over HTTP: pending, and where.
        let (status, answer) = http_get(&emitter, "/v1/receipts/test-depot/2").await;
        assert_eq!(status, 404, "{answer}");
        assert_eq!(answer["status"], "pending", "{answer}");
        assert_eq!(answer["resubmitted_as"]["key_id"], KEY, "{answer}");
        assert_eq!(answer["resubmitted_as"]["emitter_sequence"], 4, "{answer}");

        // The same refusal again (the poller and a lookup both saw it): nothing more.
        emitter.inner.store_receipt(refusal.clone()).await.unwrap();
        assert_eq!(last_sequence(&emitter), 4);
        assert_eq!(emitter.pending_count(), 2);

        // Accepted under 4: the receipt of (key, 2) follows the redirect.
        let accepted_4 = receipt(4, &emitted[1].event_id, None);
        emitter
            .inner
            .store_receipt(accepted_4.clone())
            .await
            .unwrap();
        let followed = emitter.receipt(KEY, 2).await.unwrap().expect("followed");
        assert_eq!(followed.receipt, accepted_4);
        assert_eq!(followed.resubmitted_from, vec![refusal.clone()]);
        assert!(followed.was_resubmitted() && followed.accepted);
        let waited = emitter
            .wait_for_receipt(KEY, 2, Duration::from_millis(20))
            .await
            .unwrap()
            .expect("followed");
        assert_eq!(waited, followed);
        let (status, answer) = http_get(&emitter, "/v1/receipts/test-depot/2").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["emitter_sequence"], 4, "{answer}");
        assert_eq!(answer["accepted"], true, "{answer}");
        assert_eq!(
            answer["resubmitted_from"][0]["emitter_sequence"], 2,
            "{answer}"
        );
        assert_eq!(answer["resubmitted_from"][0]["accepted"], false, "{answer}");
        // The new sequence's own receipt has no history.
        let direct = emitter.receipt(KEY, 4).await.unwrap().unwrap();
        assert!(!direct.was_resubmitted());
        let json = serde_json::to_value(&followed).unwrap();
        assert_eq!(json["emitter_sequence"], 4);
        assert_eq!(json["accepted"], true);
        assert_eq!(json["resubmitted_from"][0]["emitter_sequence"], 2);
        assert_eq!(
            json["resubmitted_from"][0]["rejection_code"],
            OUT_OF_ORDER_CODE
        );
        let plain = serde_json::to_value(emitter.receipt(KEY, 3).await.unwrap().unwrap()).unwrap();
        assert_eq!(
            plain,
            serde_json::to_value(receipt(3, &emitted[2].event_id, None)).unwrap()
        );

        // Everything persisted: counter, redirect, count.
        emitter.shutdown().await.unwrap();
        drop(emitter);
        let emitter = open(dir.path());
        assert_eq!(last_sequence(&emitter), 4);
        assert_eq!(emitter.inner.outbox.reemissions(KEY, 4).unwrap(), 1);
        assert_eq!(emitter.current_sequence(KEY, 2).unwrap(), 4);
        assert_eq!(emitter.receipt(KEY, 2).await.unwrap().unwrap(), followed);
        assert_eq!(emitter.emit(draft("D")).await.unwrap().emitter_sequence, 5);
    }

    #[tokio::test]
    async fn a_re_emission_survives_reopen_before_its_receipt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let emitter = open(dir.path());
            let pending = emitter.emit(draft("A")).await.unwrap();
            emitter.emit(draft("B")).await.unwrap();
            let refusal = receipt(1, &pending.event_id, Some(OUT_OF_ORDER_CODE));
            emitter.inner.store_receipt(refusal).await.unwrap();
            // Dropped without shutdown: only what `reemit` flushed counts.
        }
        let outbox = Outbox::open(&dir.path().join("outbox"), OutboxLimits::default()).unwrap();
        assert_eq!(outbox.last_sequence(KEY).unwrap(), 3);
        assert_eq!(
            outbox.pending().unwrap(),
            vec![(KEY.into(), 2), (KEY.into(), 3)]
        );
        assert_eq!(outbox.redirect(KEY, 1).unwrap(), Some(3));
        assert_eq!(outbox.reemissions(KEY, 3).unwrap(), 1);
        assert_eq!(
            outbox.entry(KEY, 3).unwrap().unwrap().event_id,
            "depot-test-depot-1"
        );
        let trail = outbox.trail(KEY, 1).unwrap();
        assert_eq!((trail.current, trail.superseded.len()), (3, 1));
        assert!(trail.receipt.is_none());
    }

    #[tokio::test]
    async fn other_refusals_are_final() {
        let dir = tempfile::tempdir().unwrap();
        let emitter = open(dir.path());
        for lot in ["A", "B", "C", "D"] {
            emitter.emit(draft(lot)).await.unwrap();
        }

        // A domain refusal is the ledger's final word.
        let domain = receipt(1, "depot-test-depot-1", Some("state.lot_already_declared"));
        emitter.inner.store_receipt(domain.clone()).await.unwrap();
        // So is any other signature or reference refusal.
        let duplicate = receipt(
            2,
            "depot-test-depot-2",
            Some("references.duplicate_event_id"),
        );
        emitter.inner.store_receipt(duplicate).await.unwrap();
        // An out-of-order refusal naming another event under our sequence is not ours.
        let foreign = receipt(3, "someone-elses-event", Some(OUT_OF_ORDER_CODE));
        emitter.inner.store_receipt(foreign).await.unwrap();
        // An out-of-order code on an accepted receipt means nothing.
        let mut odd = receipt(4, "depot-test-depot-4", None);
        odd.rejection_code = Some(OUT_OF_ORDER_CODE.into());
        emitter.inner.store_receipt(odd).await.unwrap();

        assert_eq!(last_sequence(&emitter), 4, "nothing re-emitted");
        assert_eq!(emitter.pending_count(), 0);
        for sequence in 1..=4 {
            assert_eq!(emitter.inner.outbox.redirect(KEY, sequence).unwrap(), None);
            assert_eq!(emitter.current_sequence(KEY, sequence).unwrap(), sequence);
        }
        let answer = emitter.receipt(KEY, 1).await.unwrap().unwrap();
        assert_eq!(answer, domain.into());

        // An out-of-order refusal of an entry no longer pending (retired) re-emits nothing.
        let late = receipt(1, "depot-test-depot-1", Some(OUT_OF_ORDER_CODE));
        emitter.inner.store_receipt(late).await.unwrap();
        assert_eq!(last_sequence(&emitter), 4);
        assert_eq!(emitter.pending_count(), 0);
    }

    #[tokio::test]
    async fn an_event_is_re_emitted_at_most_reemissions_max_times() {
        let dir = tempfile::tempdir().unwrap();
        let emitter = open(dir.path());
        let pending = emitter.emit(draft("A")).await.unwrap();
        let mut refusals = Vec::new();
        let mut current = pending.emitter_sequence;
        for round in 1..=REEMISSIONS_MAX {
            let refusal = receipt(current, &pending.event_id, Some(OUT_OF_ORDER_CODE));
            emitter.inner.store_receipt(refusal.clone()).await.unwrap();
            refusals.push(refusal);
            current = emitter
                .current_sequence(KEY, pending.emitter_sequence)
                .unwrap();
            assert_eq!(current, 1 + u64::from(round));
            assert_eq!(
                emitter.inner.outbox.reemissions(KEY, current).unwrap(),
                round
            );
            assert_eq!(emitter.pending_count(), 1);
        }
        // One refusal more: it stands.
        let last = receipt(current, &pending.event_id, Some(OUT_OF_ORDER_CODE));
        emitter.inner.store_receipt(last.clone()).await.unwrap();
        assert_eq!(emitter.pending_count(), 0);
        assert_eq!(last_sequence(&emitter), 1 + u64::from(REEMISSIONS_MAX));
        assert_eq!(emitter.inner.outbox.redirect(KEY, current).unwrap(), None);
        let answer = emitter
            .receipt(KEY, pending.emitter_sequence)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.receipt, last);
        assert!(!answer.accepted);
        assert_eq!(answer.resubmitted_from, refusals);

        // The outbox enforces the bound by itself too.
        let entry = emitter.emit(draft("B")).await.unwrap();
        let outbox = &emitter.inner.outbox;
        let mut sequence = entry.emitter_sequence;
        for _ in 0..REEMISSIONS_MAX {
            let refusal = receipt(sequence, &entry.event_id, Some(OUT_OF_ORDER_CODE));
            let done = outbox
                .resubmit::<OutboxError>(&refusal, |next, old| {
                    Ok(Prepared {
                        event_id: old.event_id.clone(),
                        submission: format!("copy {next}").into_bytes(),
                    })
                })
                .unwrap()
                .expect("re-emitted");
            sequence = done.new.emitter_sequence;
        }
        let refusal = receipt(sequence, &entry.event_id, Some(OUT_OF_ORDER_CODE));
        let refused = outbox
            .resubmit::<OutboxError>(&refusal, |_, _| panic!("not asked to sign"))
            .unwrap();
        assert!(refused.is_none());
        assert!(outbox.entry(KEY, sequence).unwrap().is_some(), "untouched");
    }

    #[test]
    fn a_failed_preparation_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path(), OutboxLimits::default()).unwrap();
        let entry = outbox
            .append::<OutboxError>(KEY, |_| {
                Ok(Prepared {
                    event_id: "e".into(),
                    submission: b"s".to_vec(),
                })
            })
            .unwrap();
        let refusal = receipt(1, "e", Some(OUT_OF_ORDER_CODE));
        let failed = outbox.resubmit(&refusal, |_, _| Err(ReemitError::Unsignable("no".into())));
        assert!(matches!(failed, Err(ReemitError::Unsignable(_))));
        assert_eq!(outbox.entry(KEY, 1).unwrap(), Some(entry));
        assert_eq!(outbox.last_sequence(KEY).unwrap(), 1);
        assert_eq!(outbox.receipt(KEY, 1).unwrap(), None);
        assert_eq!(outbox.redirect(KEY, 1).unwrap(), None);
        // Not pending: nothing to re-emit, nothing asked.
        let missing = receipt(7, "e", Some(OUT_OF_ORDER_CODE));
        let none = outbox
            .resubmit::<OutboxError>(&missing, |_, _| panic!("not asked to sign"))
            .unwrap();
        assert!(none.is_none());
    }

    /// The code this module reacts to is the one the ledger gives.
    #[test]
    fn the_out_of_order_code_is_the_ledgers() {
        use stockpile_core::ledger::{Admission, AuthorityKey, LedgerState, SignatureCheck};
        let registrar = SignerKey::from_seed("test-registrar", [2; 32]).unwrap();
        let mut ledger = LedgerState::new(
            ORIGIN,
            &[AuthorityKey {
                key_id: registrar.name().into(),
                public_key: registrar.public_key_bytes(),
            }],
        );
        let site = |site_id: &str, sequence: u64| stockpile_core::events::Event {
            event_id: format!("site-{site_id}"),
            origin: ORIGIN.into(),
            actor: "registrar".into(),
            emitter_sequence: sequence,
            occurred_at: TimestampMs(1_700_000_000_000),
            evidence: Vec::new(),
            body: crate::json::event_body_from_json(serde_json::json!({
                "kind": "site_registered", "site_id": site_id, "name": site_id,
                "site_kind": "depot", "country_code": "US", "in_korean_peninsula": false
            }))
            .unwrap(),
        };
        let recorded_at = TimestampMs(1_700_000_100_000);
        let mut admit = |index: u64, sequence: u64, site_id: &str| {
            let submission = sign_event(&site(site_id, sequence), &registrar);
            let decoded = decode_submission(&submission).unwrap();
            ledger.advance_to(index, recorded_at);
            ledger.admit(
                index,
                recorded_at,
                decoded.candidate(SignatureCheck::NotChecked),
            )
        };
        // N+1 overtakes N.
        assert!(matches!(admit(0, 2, "S2"), Admission::Accepted { .. }));
        let Admission::Rejected(rejection) = admit(1, 1, "S1") else {
            panic!("a lower sequence is refused");
        };
        assert_eq!(rejection.code, OUT_OF_ORDER_CODE);
        let refusal = Receipt {
            rejection_code: Some(rejection.code),
            ..receipt(1, "site-S1", Some("x"))
        };
        assert!(is_out_of_order_refusal(&refusal));
        // Re-emitted under the next sequence, the same event is accepted.
        assert!(matches!(admit(2, 3, "S1"), Admission::Accepted { .. }));
    }
}
