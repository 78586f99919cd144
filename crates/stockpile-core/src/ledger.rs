//! Admission of one submission into the ledger: who signed it, may they, is it new, and
//! does the compliance state machine accept it.
//!
//! The sequencer and the verifier share this code, so a ledger the sequencer writes is
//! judged by the verifier with exactly the same rules. [`LedgerState`] owns the keyring
//! (trust-root authority keys plus keys authorised and revoked by ledger events), the
//! per-key emitter sequences (replay protection that lasts forever), the index of event
//! ids, and the [`ComplianceState`].
//!
//! Memory: everything here is bounded by the number of keys, lots, sites and days, except
//! the event-id index, which keeps a 16-byte fingerprint and the kind of every accepted
//! event: ids must be unique forever and a correction must find the kind of the event it
//! corrects. It is a `state::compact::FpMap`: one sorted array, about 20 bytes per
//! accepted event.

use crate::events::{Event, EventBody, EventKind, RevocationReason, Role};
use crate::hash::event_signature_message;
use crate::keys;
use crate::limits::RECORDING_GAP_FLAG_MS;
use crate::state::compact::{Fingerprint, FpMap};
use crate::state::{ComplianceState, Flag, FlagRule, HardRule, Position, Violation};
use crate::time::{Date, TimestampMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A key the inspector trusts without any ledger event: it may act as registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorityKey {
    pub key_id: String,
    pub public_key: [u8; 32],
}

/// What one signing key may do, and what it has done.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub key_id: String,
    #[serde(with = "hex_bytes")]
    pub public_key: [u8; 32],
    pub role: Role,
    pub holder: String,
    pub valid_from: TimestampMs,
    /// Empty means every site.
    pub site_scope: Vec<String>,
    /// From the trust root rather than a ledger event.
    pub from_trust_root: bool,
    pub revoked_at: Option<TimestampMs>,
    pub revocation_reason: Option<RevocationReason>,
    pub suspect_from: Option<TimestampMs>,
    /// Highest emitter sequence seen under a valid signature of this key, whether the
    /// entry was accepted or not.
    pub last_emitter_sequence: Option<u64>,
    /// Accepted entries this key signed.
    pub entries_signed: u64,
    /// Per day: (first index, last index, count) of accepted entries signed, so that a
    /// later compromise report can name the suspect range without keeping every index.
    #[serde(skip)]
    signed_by_day: BTreeMap<Date, (u64, u64, u64)>,
}

/// Where a key's accepted entries lie in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SignedRange {
    /// Accepted entries signed.
    pub entries: u64,
    pub first_index: u64,
    pub last_index: u64,
}

impl KeyRecord {
    /// Every accepted entry this key signed: how many, first and last index.
    pub fn signed(&self) -> Option<SignedRange> {
        Self::range_of(self.signed_by_day.values())
    }

    /// The accepted entries it signed recorded on or after the day of `from` (what a
    /// compromise from that time makes suspect).
    pub fn signed_from(&self, from: TimestampMs) -> Option<SignedRange> {
        Self::range_of(self.signed_by_day.range(from.date()..).map(|(_, day)| day))
    }

    fn range_of<'a>(days: impl Iterator<Item = &'a (u64, u64, u64)>) -> Option<SignedRange> {
        days.fold(None, |range: Option<SignedRange>, &(first, last, count)| {
            Some(match range {
                None => SignedRange {
                    entries: count,
                    first_index: first,
                    last_index: last,
                },
                Some(range) => SignedRange {
                    entries: range.entries + count,
                    first_index: range.first_index.min(first),
                    last_index: range.last_index.max(last),
                },
            })
        })
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
}

/// What a caller already knows about the signature, so that signatures can be checked
/// in batches on all cores before admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    NotChecked,
    /// Checked against this public key.
    Valid([u8; 32]),
    Invalid([u8; 32]),
}

/// A decoded submission, with the exact bytes that were signed.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub key_id: &'a str,
    pub event_bytes: &'a [u8],
    pub signature: &'a [u8],
    pub event: &'a Event,
    pub signature_check: SignatureCheck,
}

/// Why a submission was refused: a stable code, a sentence, and the hard rule if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub rule: HardRule,
    pub code: String,
    pub reason: String,
}

impl From<Violation> for Rejection {
    fn from(violation: Violation) -> Self {
        Rejection {
            rule: violation.rule,
            code: violation.code,
            reason: violation.message,
        }
    }
}

/// The outcome of admitting one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Accepted { flags: Vec<Flag> },
    Rejected(Rejection),
}

/// The fingerprint under which an event id is remembered (see `state::compact`).
fn event_id_fingerprint(event_id: &str) -> Fingerprint {
    Fingerprint::of(event_id)
}

/// Keys, replay protection, event ids and compliance state, folded entry by entry.
#[derive(Debug, Clone)]
pub struct LedgerState {
    origin: String,
    keys: BTreeMap<String, KeyRecord>,
    /// Fingerprint of every accepted event id → its kind and the role that signed it.
    event_ids: FpMap<(EventKind, Role)>,
    compliance: ComplianceState,
    /// The date `advance_to` was last called with.
    current_date: Option<Date>,
    /// Flags raised so far, by rule.
    flag_counts: BTreeMap<FlagRule, u64>,
}

impl LedgerState {
    pub fn new(origin: impl Into<String>, authority_keys: &[AuthorityKey]) -> Self {
        let keys = authority_keys
            .iter()
            .map(|key| {
                let record = KeyRecord {
                    key_id: key.key_id.clone(),
                    public_key: key.public_key,
                    role: Role::Registrar,
                    holder: "trust root".into(),
                    valid_from: TimestampMs(i64::MIN),
                    site_scope: Vec::new(),
                    from_trust_root: true,
                    revoked_at: None,
                    revocation_reason: None,
                    suspect_from: None,
                    last_emitter_sequence: None,
                    entries_signed: 0,
                    signed_by_day: BTreeMap::new(),
                };
                (key.key_id.clone(), record)
            })
            .collect();
        LedgerState {
            origin: origin.into(),
            keys,
            event_ids: FpMap::default(),
            compliance: ComplianceState::new(),
            current_date: None,
            flag_counts: BTreeMap::new(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn compliance(&self) -> &ComplianceState {
        &self.compliance
    }

    pub fn key(&self, key_id: &str) -> Option<&KeyRecord> {
        self.keys.get(key_id)
    }

    pub fn keys(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.values()
    }

    /// The public key a signature by `key_id` should verify under, if the key is known.
    pub fn public_key(&self, key_id: &str) -> Option<[u8; 32]> {
        self.keys.get(key_id).map(|record| record.public_key)
    }

    pub fn accepted_events(&self) -> u64 {
        self.event_ids.len() as u64
    }

    pub fn flag_counts(&self) -> &BTreeMap<FlagRule, u64> {
        &self.flag_counts
    }

    /// Lets time pass up to `recorded_at`: raises the deadline flags that fall due.
    /// Called for every entry, accepted or not, before it is judged.
    pub fn advance_to(&mut self, index: u64, recorded_at: TimestampMs) -> Vec<Flag> {
        let date = recorded_at.date();
        if self.current_date.is_some_and(|current| current >= date) {
            return Vec::new();
        }
        self.current_date = Some(date);
        let flags = self.compliance.advance_to(date, index);
        self.count_flags(&flags);
        flags
    }

    /// Judges one candidate at `index`, recorded at `recorded_at`, and applies it if
    /// accepted. On rejection nothing changes except the key's emitter sequence, when the
    /// signature is valid: a signed event refused once can never be replayed later.
    pub fn admit(
        &mut self,
        index: u64,
        recorded_at: TimestampMs,
        candidate: Candidate<'_>,
    ) -> Admission {
        if let Err(rejection) = self.authenticate(recorded_at, &candidate) {
            self.note_emitter_sequence(&candidate);
            return Admission::Rejected(rejection);
        }
        let result = self.judge(index, recorded_at, &candidate);
        self.note_emitter_sequence(&candidate);
        match result {
            Ok(flags) => {
                self.count_flags(&flags);
                Admission::Accepted { flags }
            }
            Err(rejection) => Admission::Rejected(rejection),
        }
    }

    /// Records that a validly signed candidate was seen even though the ledger refused it
    /// (used by the verifier for entries marked rejected), so that replay protection
    /// evolves exactly as in the sequencer.
    pub fn note_rejected(&mut self, candidate: Candidate<'_>) {
        self.note_emitter_sequence(&candidate);
    }

    fn signature_is_valid(&self, candidate: &Candidate<'_>) -> bool {
        let Some(record) = self.keys.get(candidate.key_id) else {
            return false;
        };
        match candidate.signature_check {
            SignatureCheck::Valid(public_key) => public_key == record.public_key,
            SignatureCheck::Invalid(public_key) if public_key == record.public_key => false,
            _ => keys::verify_strict(
                &record.public_key,
                &event_signature_message(candidate.event_bytes),
                candidate.signature,
            )
            .is_ok(),
        }
    }

    fn note_emitter_sequence(&mut self, candidate: &Candidate<'_>) {
        if !self.signature_is_valid(candidate) {
            return;
        }
        if let Some(record) = self.keys.get_mut(candidate.key_id) {
            let sequence = candidate.event.emitter_sequence;
            if record
                .last_emitter_sequence
                .is_none_or(|last| sequence > last)
            {
                record.last_emitter_sequence = Some(sequence);
            }
        }
    }

    /// Hard rule 2: a known key, a valid signature, not yet revoked, already valid.
    fn authenticate(
        &self,
        recorded_at: TimestampMs,
        candidate: &Candidate<'_>,
    ) -> Result<(), Rejection> {
        let reject = |code: &str, reason: String| Rejection {
            rule: HardRule::Signature,
            code: code.into(),
            reason,
        };
        let Some(record) = self.keys.get(candidate.key_id) else {
            return Err(reject(
                "signature.unknown_key",
                format!(
                    "key {:?} is not authorised in this ledger",
                    candidate.key_id
                ),
            ));
        };
        if !self.signature_is_valid(candidate) {
            return Err(reject(
                "signature.invalid",
                format!(
                    "the signature does not verify under key {:?}",
                    candidate.key_id
                ),
            ));
        }
        if let Some(revoked_at) = record
            .revoked_at
            .filter(|revoked_at| *revoked_at <= recorded_at)
        {
            return Err(reject(
                "signature.key_revoked",
                format!(
                    "key {:?} was revoked at {revoked_at}; entry recorded at {recorded_at}",
                    candidate.key_id
                ),
            ));
        }
        if record.valid_from > recorded_at {
            return Err(reject(
                "signature.key_not_yet_valid",
                format!(
                    "key {:?} is valid from {}; entry recorded at {recorded_at}",
                    candidate.key_id, record.valid_from
                ),
            ));
        }
        Ok(())
    }

    /// Everything after authentication: envelope, role, scope, key events, the state machine.
    fn judge(
        &mut self,
        index: u64,
        recorded_at: TimestampMs,
        candidate: &Candidate<'_>,
    ) -> Result<Vec<Flag>, Rejection> {
        let event = candidate.event;
        let reject = |rule: HardRule, code: &str, reason: String| Rejection {
            rule,
            code: code.into(),
            reason,
        };
        let record = self
            .keys
            .get(candidate.key_id)
            .expect("authenticate found the key");
        let role = record.role;

        if event.origin != self.origin {
            return Err(reject(
                HardRule::References,
                "references.wrong_origin",
                format!(
                    "event is signed for ledger {:?}, this ledger is {:?}",
                    event.origin, self.origin
                ),
            ));
        }
        if let Some(last) = record
            .last_emitter_sequence
            .filter(|last| event.emitter_sequence <= *last)
        {
            return Err(reject(
                HardRule::References,
                "references.replayed_emitter_sequence",
                format!(
                    "emitter sequence {} of key {:?} is not above the last one seen, {last}: a replay",
                    event.emitter_sequence, candidate.key_id
                ),
            ));
        }
        let fingerprint = event_id_fingerprint(&event.event_id);
        if self.event_ids.contains_key(&fingerprint) {
            return Err(reject(
                HardRule::References,
                "references.duplicate_event_id",
                format!("event id {:?} is already in the ledger", event.event_id),
            ));
        }
        if event.occurred_at > recorded_at {
            return Err(reject(
                HardRule::References,
                "references.occurred_after_recorded",
                format!(
                    "occurred at {} is after recorded at {recorded_at}",
                    event.occurred_at
                ),
            ));
        }
        let kind = event.body.kind();
        let owner = match &event.body {
            EventBody::CorrectionIssued(correction) => {
                match self
                    .event_ids
                    .get(&event_id_fingerprint(&correction.corrected_event_id))
                {
                    Some((corrected_kind, corrected_role)) => {
                        corrected_kind.owner().unwrap_or(corrected_role)
                    }
                    None => {
                        return Err(reject(
                            HardRule::References,
                            "references.unknown_event",
                            format!(
                                "corrected event {:?} is not in the ledger",
                                correction.corrected_event_id
                            ),
                        ));
                    }
                }
            }
            body => body
                .kind()
                .owner()
                .expect("every kind but corrections has an owner"),
        };
        if role != owner {
            return Err(reject(
                HardRule::Role,
                "role.not_owner",
                format!(
                    "{} belongs to the {owner:?} role; key {:?} holds {role:?}",
                    kind.name(),
                    candidate.key_id
                ),
            ));
        }
        // An empty scope means every site.
        let out_of_scope = event.body.sites().into_iter().find(|site| {
            !record.site_scope.is_empty() && !record.site_scope.iter().any(|s| s == site)
        });
        if let Some(site) = out_of_scope {
            return Err(reject(
                HardRule::Role,
                "role.site_out_of_scope",
                format!(
                    "key {:?} may act only for sites {:?}, not {site:?}",
                    candidate.key_id, record.site_scope
                ),
            ));
        }
        self.check_key_event(recorded_at, &event.body)?;

        let position = Position {
            index,
            recorded_at,
            signer_role: role,
            key_id: candidate.key_id,
        };
        let mut flags = self
            .compliance
            .apply(event, position)
            .map_err(Rejection::from)?;

        // Accepted: from here on nothing may fail.
        self.event_ids.insert(fingerprint, (kind, role));
        flags.extend(self.apply_key_event(index, &event.event_id, &event.body));
        let record = self
            .keys
            .get_mut(candidate.key_id)
            .expect("authenticated key");
        record.entries_signed += 1;
        let day = record
            .signed_by_day
            .entry(recorded_at.date())
            .or_insert((index, index, 0));
        day.1 = index;
        day.2 += 1;
        if recorded_at.0.saturating_sub(event.occurred_at.0) > RECORDING_GAP_FLAG_MS {
            flags.push(Flag {
                rule: FlagRule::Suspicious,
                code: "suspicious.recording_gap".into(),
                index,
                event_ids: vec![event.event_id.clone()],
                message: format!(
                    "occurred at {}, recorded at {recorded_at}: more than {} days later",
                    event.occurred_at,
                    RECORDING_GAP_FLAG_MS / 86_400_000
                ),
            });
        }
        Ok(flags)
    }

    fn check_key_event(&self, recorded_at: TimestampMs, body: &EventBody) -> Result<(), Rejection> {
        match body {
            EventBody::SignerAuthorized(authorized) => {
                if self.keys.contains_key(&authorized.key_id) {
                    return Err(Rejection {
                        rule: HardRule::References,
                        code: "references.duplicate_key_id".into(),
                        reason: format!("key id {:?} is already authorised", authorized.key_id),
                    });
                }
                if let Err(error) = keys::check_public_key(&authorized.public_key) {
                    return Err(Rejection {
                        rule: HardRule::Signature,
                        code: "signature.bad_public_key".into(),
                        reason: format!(
                            "public key of {:?} is unusable: {error}",
                            authorized.key_id
                        ),
                    });
                }
                Ok(())
            }
            EventBody::KeyRevoked(revoked) => {
                let Some(record) = self.keys.get(&revoked.key_id) else {
                    return Err(Rejection {
                        rule: HardRule::References,
                        code: "references.unknown_key".into(),
                        reason: format!("key {:?} to revoke is not in the ledger", revoked.key_id),
                    });
                };
                if record.revoked_at.is_some() {
                    return Err(Rejection {
                        rule: HardRule::References,
                        code: "references.key_already_revoked".into(),
                        reason: format!("key {:?} is already revoked", revoked.key_id),
                    });
                }
                if revoked.revoked_at > recorded_at {
                    return Err(Rejection {
                        rule: HardRule::References,
                        code: "references.revocation_in_future".into(),
                        reason: format!(
                            "revocation at {} is after the entry's time {recorded_at}",
                            revoked.revoked_at
                        ),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn apply_key_event(&mut self, index: u64, event_id: &str, body: &EventBody) -> Vec<Flag> {
        match body {
            EventBody::SignerAuthorized(authorized) => {
                let record = KeyRecord {
                    key_id: authorized.key_id.clone(),
                    public_key: authorized.public_key,
                    role: authorized.role,
                    holder: authorized.holder.clone(),
                    valid_from: authorized.valid_from,
                    site_scope: authorized.site_scope.clone(),
                    from_trust_root: false,
                    revoked_at: None,
                    revocation_reason: None,
                    suspect_from: None,
                    last_emitter_sequence: None,
                    entries_signed: 0,
                    signed_by_day: BTreeMap::new(),
                };
                self.keys.insert(authorized.key_id.clone(), record);
                Vec::new()
            }
            EventBody::KeyRevoked(revoked) => {
                let record = self
                    .keys
                    .get_mut(&revoked.key_id)
                    .expect("checked by check_key_event");
                // Entries already accepted stay valid (revocation never invalidates earlier
                // signatures); entries recorded from now on are refused, since the stated
                // revocation time is never after this entry's time.
                record.revoked_at = Some(revoked.revoked_at);
                record.revocation_reason = Some(revoked.reason);
                record.suspect_from = revoked.suspect_from;
                let Some(suspect_from) = revoked
                    .suspect_from
                    .filter(|_| revoked.reason == RevocationReason::Compromised)
                else {
                    return Vec::new();
                };
                let suspect: Vec<_> = record
                    .signed_by_day
                    .range(suspect_from.date()..)
                    .map(|(_, v)| *v)
                    .collect();
                let count: u64 = suspect.iter().map(|(_, _, count)| count).sum();
                if count == 0 {
                    return Vec::new();
                }
                let first = suspect.first().map(|v| v.0).unwrap_or(index);
                let last = suspect.last().map(|v| v.1).unwrap_or(index);
                vec![Flag {
                    rule: FlagRule::Suspicious,
                    code: "suspicious.signed_by_compromised_key".into(),
                    index,
                    event_ids: vec![event_id.to_string()],
                    message: format!(
                        "key {:?} is compromised from {suspect_from}: {count} accepted entries it signed on or after {} \
                         (indices {first}..={last}) are suspect",
                        revoked.key_id,
                        suspect_from.date()
                    ),
                }]
            }
            _ => Vec::new(),
        }
    }

    fn count_flags(&mut self, flags: &[Flag]) {
        for flag in flags {
            *self.flag_counts.entry(flag.rule).or_insert(0) += 1;
        }
    }
}
