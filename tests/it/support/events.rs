//! Event builders and the small base ledger the corpus of corrupted ledgers starts from.

use super::{Forger, Keys, ORIGIN};
use stockpile_core::events::*;
use stockpile_core::hash::Hash32;
use stockpile_core::keys::SignerKey;
use stockpile_core::time::{Date, TimestampMs};

/// Entries between checkpoints in the base ledger.
pub const BASE_CHECKPOINT_EVERY: u64 = 8;

pub fn date(text: &str) -> Date {
    Date::parse(text).expect("test dates are valid")
}

/// A ledger under construction: a forging sequencer, the keys, and an event-id counter.
pub struct Script {
    pub forger: Forger,
    pub keys: Keys,
    next_event: u64,
}

impl Script {
    pub fn new() -> Script {
        Script {
            forger: Forger::new(),
            keys: Keys::new(),
            next_event: 0,
        }
    }

    /// A new event with a fresh id, occurring now.
    pub fn event(&mut self, body: EventBody) -> Event {
        self.next_event += 1;
        Event {
            event_id: format!("ev-{:04}", self.next_event),
            origin: ORIGIN.into(),
            actor: "test".into(),
            emitter_sequence: 0,
            occurred_at: self.forger.now(),
            evidence: vec![Evidence {
                kind: "log".into(),
                sha256: Hash32::digest(b"evidence"),
                description: "test".into(),
            }],
            body,
        }
    }

    /// Signs with `key` and appends as accepted; returns the event.
    pub fn accept_with(&mut self, key: &SignerKey, body: EventBody) -> Event {
        let event = self.event(body);
        self.forger.accept(key, event.clone());
        event
    }

    /// Appends, signed by the key of the role that owns the event kind.
    pub fn accept(&mut self, body: EventBody) -> Event {
        let key = self.owner_key(&body).clone();
        self.accept_with(&key, body)
    }

    pub fn owner_key(&self, body: &EventBody) -> &SignerKey {
        match body.kind().owner() {
            Some(Role::Registrar) | None => &self.keys.registrar,
            Some(Role::Depot) => &self.keys.depot,
            Some(Role::Demil) => &self.keys.demil,
            Some(Role::Certifier) => &self.keys.certifier,
            Some(Role::ExportControl) => &self.keys.export_control,
            Some(Role::Inspector) => &self.keys.inspector,
        }
    }

    /// Appends, then a checkpoint if the size is a multiple of `BASE_CHECKPOINT_EVERY`.
    fn step(&mut self, body: EventBody) -> Event {
        let event = self.accept(body);
        if self.forger.size().is_multiple_of(BASE_CHECKPOINT_EVERY) {
            let log = self.keys.log.clone();
            self.forger.checkpoint(&log);
        }
        event
    }

    pub fn checkpoint(&mut self) -> String {
        let log = self.keys.log.clone();
        self.forger.checkpoint(&log)
    }
}

pub fn signer(key: &SignerKey, role: Role) -> EventBody {
    EventBody::SignerAuthorized(SignerAuthorized {
        key_id: key.name().to_string(),
        public_key: key.public_key_bytes(),
        holder: format!("{role:?} service"),
        role,
        valid_from: TimestampMs(1_300_000_000_000),
        site_scope: Vec::new(),
    })
}

pub fn site(id: &str, kind: SiteKind) -> EventBody {
    EventBody::SiteRegistered(SiteRegistered {
        site_id: id.into(),
        name: format!("site {id}"),
        kind,
        country_code: "FI".into(),
        in_korean_peninsula: false,
    })
}

pub fn lot(id: &str, quantity: u64, site: &str) -> EventBody {
    EventBody::LotDeclared(LotDeclared {
        lot_id: id.into(),
        type_id: "PMN".into(),
        manufacturer_lot_number: Some(format!("MFR-{id}")),
        lot_number_absent_reason: String::new(),
        quantity,
        site_id: site.into(),
        owner: "State".into(),
        custodian: "Defence Forces".into(),
        basis: LotBasis::Initial,
        basis_date: None,
        request_id: None,
    })
}

pub fn destroy(lot: &str, quantity: u64, site: &str) -> EventBody {
    EventBody::LotDestroyed(LotDestroyed {
        lot_id: lot.into(),
        quantity,
        site_id: site.into(),
        method: DestructionMethod::ContainedDetonation,
        start_date: date("2013-02-01"),
        end_date: date("2013-02-02"),
        input_count: quantity,
        witnesses: vec![Witness {
            name: "A. Inspector".into(),
            organisation: "Independent Verification Body".into(),
            role: "observer".into(),
            independent: true,
        }],
        standards: vec!["IMAS 11.20".into()],
        end_product_sha256: vec![Hash32::digest(b"scrap photo")],
        basis: DestructionBasis::Article4,
        institution_id: None,
    })
}

pub fn ship(shipment: &str, lot: &str, quantity: u64, from: &str, to: &str) -> EventBody {
    EventBody::LotShipped(LotShipped {
        shipment_id: shipment.into(),
        lot_id: lot.into(),
        quantity,
        from_site_id: from.into(),
        to_site_id: to.into(),
        seal_ids: vec![format!("SEAL-{shipment}")],
        date: date("2013-01-10"),
        request_id: None,
    })
}

pub fn receive(shipment: &str, lot: &str, counted: u64) -> EventBody {
    EventBody::LotReceived(LotReceived {
        shipment_id: shipment.into(),
        lot_id: lot.into(),
        quantity_counted: counted,
        seal_check: SealCheck::Intact,
        date: date("2013-01-11"),
    })
}

pub fn transfer_request(id: &str, purpose: Purpose) -> EventBody {
    EventBody::TransferRequested(TransferRequested {
        request_id: id.into(),
        requester: "Foreign Ministry of Elsewhere".into(),
        direction: TransferDirection::Export,
        items: vec![TypeQuantity {
            type_id: "PMN".into(),
            quantity: 50,
        }],
        stated_purpose: purpose,
        counterparty: "Elsewhere".into(),
        destination: "XX".into(),
    })
}

pub fn transfer_approval(id: &str, purpose: Purpose, basis: &str) -> EventBody {
    EventBody::TransferApproved(TransferApproved {
        request_id: id.into(),
        authority: "Export Control Board".into(),
        date: date("2013-03-01"),
        legal_basis: basis.into(),
        purpose,
        institution_id: None,
        destruction_site_id: None,
        quantities: vec![TypeQuantity {
            type_id: "PMN".into(),
            quantity: 50,
        }],
        title_passes_date: None,
    })
}

/// The base ledger (about 25 entries, checkpoints every 8 and at the end when
/// `close` is set): a regime, sites, a mine type, signers, two lots, a shipment, a
/// witnessed and certified destruction, retention and its use, a refused transfer, an
/// inventory count that matches the book, and a retired key.
pub fn base_ledger(close: bool) -> Script {
    let mut s = Script::new();
    s.step(EventBody::RegimeConfigured(RegimeConfigured {
        state_id: "FI".into(),
        regime: Regime::Apmbc,
        eif_date: date("2012-07-01"),
        policy_dates: Vec::new(),
        article4_deadline: Some(date("2016-07-01")),
        initial_report_due: Some(date("2012-12-28")),
    }));
    s.step(site("D1", SiteKind::Depot));
    s.step(site("F1", SiteKind::DestructionFacility));
    s.step(site("T1", SiteKind::TrainingInstitution));
    s.step(EventBody::MineTypeRegistered(MineTypeRegistered {
        type_id: "PMN".into(),
        designation: "PMN".into(),
        category: "blast".into(),
        activation_modes: vec!["pressure".into()],
        self_destructing: false,
        counts_as_apm: true,
        dimensions_mm: "112 x 53".into(),
        fusing: "MD-9".into(),
        explosive_type: "TNT".into(),
        explosive_mg: 240_000,
        metal_mg: 6_000,
        photo_sha256: None,
    }));
    s.step(EventBody::InstitutionAuthorized(InstitutionAuthorized {
        institution_id: "INST1".into(),
        site_id: "T1".into(),
        name: "Engineer School".into(),
        instrument: "Decree 1/2012".into(),
        instrument_date: Some(date("2012-07-01")),
        permitted_purposes: vec![Purpose::DetectionTraining],
        ceiling: 1_000,
        valid_from: Some(date("2012-07-01")),
        valid_to: None,
    }));
    let keys = [
        (s.keys.depot.clone(), Role::Depot),
        (s.keys.depot_old.clone(), Role::Depot),
        (s.keys.demil.clone(), Role::Demil),
        (s.keys.certifier.clone(), Role::Certifier),
        (s.keys.export_control.clone(), Role::ExportControl),
        (s.keys.inspector.clone(), Role::Inspector),
    ];
    for (key, role) in keys {
        s.step(signer(&key, role));
    }
    s.step(lot("L1", 1_000, "D1"));
    s.step(lot("L2", 500, "D1"));
    s.step(ship("S1", "L1", 400, "D1", "F1"));
    s.step(receive("S1", "L1", 400));
    let destroyed = s.step(destroy("L1", 400, "F1"));
    s.step(EventBody::DestructionCertified(DestructionCertified {
        certificate_id: "C1".into(),
        covered_event_ids: vec![destroyed.event_id],
        totals: vec![TypeQuantity {
            type_id: "PMN".into(),
            quantity: 400,
        }],
        certifier: "Independent Verification Body".into(),
        date: date("2013-02-10"),
        findings: "complete".into(),
    }));
    s.step(EventBody::LotRetained(LotRetained {
        lot_id: "L2".into(),
        quantity: 100,
        institution_id: "INST1".into(),
        purpose: Purpose::DetectionTraining,
        justification: "detector trials".into(),
        planned_annual_use: 20,
        next_review_date: Some(date("2014-01-01")),
        site_id: "D1".into(),
    }));
    s.step(EventBody::RetainedMinesConsumed(RetainedMinesConsumed {
        lot_id: "L2".into(),
        quantity: 10,
        institution_id: "INST1".into(),
        activity: "detector trial".into(),
        date: date("2013-02-20"),
    }));
    s.step(transfer_request("R1", Purpose::OperationalUse));
    s.step(EventBody::TransferRefused(TransferRefused {
        request_id: "R1".into(),
        authority: "Export Control Board".into(),
        date: date("2013-03-01"),
        basis_cited: "APMBC-1.1.b".into(),
        reasoning: "transfer for use is prohibited".into(),
    }));
    s.step(EventBody::InventoryVerified(InventoryVerified {
        site_id: "D1".into(),
        date: date("2013-03-05"),
        scope: InventoryScope::Full,
        counts: vec![
            LotCount {
                lot_id: "L1".into(),
                counted: 600,
            },
            LotCount {
                lot_id: "L2".into(),
                counted: 490,
            },
        ],
        seal_checks: Vec::new(),
        inspectors: vec!["A. Inspector".into()],
    }));
    let depot_old = s.keys.depot_old.name().to_string();
    let now = s.forger.now();
    s.step(EventBody::KeyRevoked(KeyRevoked {
        key_id: depot_old,
        revoked_at: now,
        reason: RevocationReason::Retired,
        suspect_from: None,
    }));
    s.step(ship("S2", "L2", 50, "D1", "T1"));
    if close && !s.forger.size().is_multiple_of(BASE_CHECKPOINT_EVERY) {
        s.checkpoint();
    }
    s
}
