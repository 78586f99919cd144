//! Shared fixtures: scenario ledgers generated once per config (export bytes, entries,
//! outcome, the verifier's report), folding helpers, and a tiny hand-made ledger for
//! data the scenarios never hold (ids with markup in them).

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Mutex, OnceLock};
use stockpile_core::events::*;
use stockpile_core::hash::Hash32;
use stockpile_core::keys::SignerKey;
use stockpile_core::ledger::AuthorityKey;
use stockpile_core::time::{Date, TimestampMs};
use stockpile_ledger::appender::Appender;
use stockpile_ledger::export::ExportReader;
use stockpile_ledger::trust::TrustRoot;
use stockpile_ledger::verifier::{Report, VerifyOptions, verify_export};
use stockpile_proto::envelope::sign_event;
use stockpile_proto::export_codec::ExportRecord;
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioOutcome, write_export};
use stockpile_views::fold::ViewFold;

/// The seed of every scenario ledger here: small, and not the demo seed, so that these
/// tests see another draw of lot sizes and dates than the generator's own tests.
pub const SEED: u64 = 3;

/// Entries a padded ledger is padded to.
pub const PADDED_ENTRIES: u64 = 2_000;

/// A generated ledger, its entries, the generator's outcome and the verifier's report.
pub struct Ledger {
    pub config: ScenarioConfig,
    pub outcome: ScenarioOutcome,
    pub entries: Vec<Bytes>,
    pub authority_keys: Vec<AuthorityKey>,
    pub report: Report,
}

impl Ledger {
    pub fn origin(&self) -> &str {
        &self.outcome.origin
    }

    /// A fresh fold of the first `count` entries.
    pub fn fold_first(&self, count: usize) -> ViewFold {
        let mut fold = self.empty_fold();
        for (index, entry) in self.entries[..count].iter().enumerate() {
            fold.apply(entry)
                .unwrap_or_else(|error| panic!("entry {index} does not fold: {error}"));
        }
        fold
    }

    pub fn fold_all(&self) -> ViewFold {
        self.fold_first(self.entries.len())
    }

    pub fn empty_fold(&self) -> ViewFold {
        ViewFold::new(self.origin(), &self.authority_keys)
    }
}

pub fn config(dataset: Dataset, min_entries: u64) -> ScenarioConfig {
    ScenarioConfig {
        seed: SEED,
        dataset,
        min_entries,
        checkpoint_every: ScenarioConfig::DEMO_CHECKPOINT_EVERY,
    }
}

/// Every config the scenario tests cover: the three data sets, story only and padded.
pub fn all_configs() -> Vec<ScenarioConfig> {
    Dataset::ALL
        .into_iter()
        .flat_map(|dataset| [config(dataset, 0), config(dataset, PADDED_ENTRIES)])
        .collect()
}

fn generate(config: &ScenarioConfig) -> Ledger {
    let mut export = Vec::new();
    let outcome = write_export(config, &mut export).expect("writing into a Vec never fails");
    assert!(
        outcome.observed.is_as_scripted(),
        "{}: the generator's own expectations failed: {:#?}",
        config.dataset,
        outcome.observed
    );
    let mut reader = ExportReader::open(Cursor::new(&export)).expect("a generated export opens");
    let mut entries = Vec::new();
    while let Some(record) = reader.next_record().expect("a generated export reads") {
        if let ExportRecord::Entry(bytes) = record {
            entries.push(bytes);
        }
    }
    assert_eq!(entries.len() as u64, outcome.entries);
    let trust = TrustRoot::parse_json(&outcome.trust_root).expect("the scenario's trust root");
    let report = verify_export(
        Cursor::new(&export),
        &trust,
        &VerifyOptions::default(),
        |_| {},
    )
    .expect("reading from memory never fails");
    assert!(
        report.is_clean(),
        "{}: the verifier finds fault with a generated ledger: {:#?}",
        config.dataset,
        report.findings
    );
    Ledger {
        config: config.clone(),
        outcome,
        entries,
        authority_keys: trust.ledger_authority_keys(),
        report,
    }
}

/// One cell per config, each generated on first use; leaked, as they live for the run.
type Cells = BTreeMap<(Dataset, u64, u64), &'static OnceLock<Ledger>>;

/// The ledger of `config`, generated once per test run (tests run in parallel threads:
/// the map is locked only to find the cell, so different ledgers generate at once).
pub fn ledger(config: &ScenarioConfig) -> &'static Ledger {
    static CACHE: OnceLock<Mutex<Cells>> = OnceLock::new();
    let cell: &'static OnceLock<Ledger> = {
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap();
        cache
            .entry((config.dataset, config.seed, config.min_entries))
            .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
    };
    cell.get_or_init(|| generate(config))
}

// ---------------------------------------------------------------------------------------
// A hand-made ledger

pub const HAND_ORIGIN: &str = "example.org/views-test-ledger";

pub fn date(text: &str) -> Date {
    Date::parse(text).expect("test dates are valid")
}

/// A ledger built event by event through the real appender.
pub struct HandLedger {
    appender: Appender,
    pub registrar: SignerKey,
    pub depot: SignerKey,
    pub demil: SignerKey,
    sequences: BTreeMap<String, u64>,
    next_event: u64,
    /// Simulated time: every event is recorded a minute after the previous one.
    now: TimestampMs,
    pub entries: Vec<Bytes>,
}

impl HandLedger {
    pub fn new(start: Date) -> HandLedger {
        let key = |name: &str, byte: u8| SignerKey::from_seed(name, [byte; 32]).unwrap();
        let registrar = key("registrar", 1);
        let authority = AuthorityKey {
            key_id: registrar.name().to_string(),
            public_key: registrar.public_key_bytes(),
        };
        let appender = Appender::new(HAND_ORIGIN, key("log", 9), &[authority]).unwrap();
        HandLedger {
            appender,
            registrar,
            depot: key("depot", 2),
            demil: key("demil", 3),
            sequences: BTreeMap::new(),
            next_event: 0,
            now: start.start(),
            entries: Vec::new(),
        }
    }

    pub fn authority_keys(&self) -> Vec<AuthorityKey> {
        vec![AuthorityKey {
            key_id: self.registrar.name().to_string(),
            public_key: self.registrar.public_key_bytes(),
        }]
    }

    /// Signs `body` with `key` and appends it: `Err` with the rejection if refused.
    pub fn append(&mut self, key: &SignerKey, body: EventBody) -> Result<(), String> {
        self.next_event += 1;
        self.now = TimestampMs(self.now.0 + 60_000);
        let sequence = self.sequences.entry(key.name().to_string()).or_insert(0);
        *sequence += 1;
        let event = Event {
            event_id: format!("hand-{:04}", self.next_event),
            origin: HAND_ORIGIN.into(),
            actor: "views test".into(),
            emitter_sequence: *sequence,
            occurred_at: self.now,
            evidence: Vec::new(),
            body,
        };
        let appended = self.appender.append(&sign_event(&event, key), self.now);
        self.entries.push(appended.entry);
        match appended.verdict {
            stockpile_proto::envelope::EntryVerdict::Accepted => Ok(()),
            stockpile_proto::envelope::EntryVerdict::Rejected { code, reason } => {
                Err(format!("{code}: {reason}"))
            }
        }
    }

    pub fn fold(&self) -> ViewFold {
        let mut fold = ViewFold::new(HAND_ORIGIN, &self.authority_keys());
        for entry in &self.entries {
            fold.apply(entry).unwrap();
        }
        fold
    }
}

/// A small `APMBC` ledger whose ids and texts carry markup, quotes, commas and line
/// breaks: a lot declared, partly destroyed, counted.
pub fn markup_ledger() -> (HandLedger, String) {
    let lot_id = "L-<script>alert(\"x\")</script>".to_string();
    let mut ledger = HandLedger::new(date("2011-03-01"));
    let registrar = ledger.registrar.clone();
    let (depot, demil) = (ledger.depot.clone(), ledger.demil.clone());
    let accepted = [
        ledger.append(
            &registrar,
            EventBody::RegimeConfigured(RegimeConfigured {
                state_id: "XX".into(),
                regime: Regime::Apmbc,
                eif_date: date("2010-01-01"),
                policy_dates: Vec::new(),
                article4_deadline: Some(date("2014-01-01")),
                initial_report_due: Some(date("2010-06-30")),
            }),
        ),
        ledger.append(
            &registrar,
            EventBody::SiteRegistered(SiteRegistered {
                site_id: "D-1".into(),
                name: "Depot <b>One</b>, \"north\"".into(),
                kind: SiteKind::Depot,
                country_code: "XX".into(),
                in_korean_peninsula: false,
            }),
        ),
        ledger.append(
            &registrar,
            EventBody::SiteRegistered(SiteRegistered {
                site_id: "F-1".into(),
                name: "Facility & works".into(),
                kind: SiteKind::DestructionFacility,
                country_code: "XX".into(),
                in_korean_peninsula: false,
            }),
        ),
        ledger.append(
            &registrar,
            EventBody::MineTypeRegistered(MineTypeRegistered {
                type_id: "T-<i>".into(),
                designation: "Type, with comma".into(),
                category: "antipersonnel blast mine".into(),
                activation_modes: vec!["pressure".into()],
                self_destructing: false,
                counts_as_apm: true,
                dimensions_mm: "100 x 50".into(),
                fusing: "line one\nline two".into(),
                explosive_type: "TNT".into(),
                explosive_mg: 37_500,
                metal_mg: 0,
                photo_sha256: None,
            }),
        ),
        ledger.append(&registrar, signer(&depot, Role::Depot)),
        ledger.append(&registrar, signer(&demil, Role::Demil)),
        ledger.append(
            &depot,
            EventBody::LotDeclared(LotDeclared {
                lot_id: lot_id.clone(),
                type_id: "T-<i>".into(),
                manufacturer_lot_number: Some("MFR \"7\", batch <2>".into()),
                lot_number_absent_reason: String::new(),
                quantity: 1_000,
                site_id: "D-1".into(),
                owner: "State".into(),
                custodian: "Depot command".into(),
                basis: LotBasis::Initial,
                basis_date: None,
                request_id: None,
            }),
        ),
        ledger.append(
            &depot,
            EventBody::LotShipped(LotShipped {
                shipment_id: "S-1".into(),
                lot_id: lot_id.clone(),
                quantity: 400,
                from_site_id: "D-1".into(),
                to_site_id: "F-1".into(),
                seal_ids: vec!["SEAL-1".into()],
                date: date("2011-03-01"),
                request_id: None,
            }),
        ),
        ledger.append(
            &depot,
            EventBody::LotReceived(LotReceived {
                shipment_id: "S-1".into(),
                lot_id: lot_id.clone(),
                quantity_counted: 400,
                seal_check: SealCheck::Intact,
                date: date("2011-03-01"),
            }),
        ),
        ledger.append(
            &demil,
            EventBody::LotDestroyed(LotDestroyed {
                lot_id: lot_id.clone(),
                quantity: 400,
                site_id: "F-1".into(),
                method: DestructionMethod::ContainedDetonation,
                start_date: date("2011-03-01"),
                end_date: date("2011-03-01"),
                input_count: 400,
                witnesses: vec![Witness {
                    name: "<img src=x onerror=alert(1)>".into(),
                    organisation: "Observers".into(),
                    role: "observer".into(),
                    independent: true,
                }],
                standards: vec!["IMAS 11.20 <safety>".into(), "EN \"14001\", env".into()],
                end_product_sha256: vec![Hash32::digest(b"scrap")],
                basis: DestructionBasis::Article4,
                institution_id: None,
            }),
        ),
    ];
    for (number, verdict) in accepted.iter().enumerate() {
        assert_eq!(verdict, &Ok(()), "event {number} of the markup ledger");
    }
    (ledger, lot_id)
}

pub fn signer(key: &SignerKey, role: Role) -> EventBody {
    EventBody::SignerAuthorized(SignerAuthorized {
        key_id: key.name().to_string(),
        public_key: key.public_key_bytes(),
        holder: format!("{role:?} service"),
        role,
        valid_from: TimestampMs(1),
        site_scope: Vec::new(),
    })
}
