//! The events the NATS benchmarks send: a small base (regime, a depot, a mine type, the
//! depot keys' authorisations) and then bulk lot declarations, each signed by one of
//! several depot keys. Every bulk event is valid whatever order the keys' events
//! interleave in, so the ledger accepts all of them and a run measures the accepting
//! path, not rejections.

use stockpile_core::events::{
    EventBody, LotBasis, LotDeclared, MineTypeRegistered, Regime, RegimeConfigured, Role,
    SignerAuthorized, SiteKind, SiteRegistered,
};
use stockpile_core::keys::SignerKey;
use stockpile_core::time::{Date, TimestampMs};
use stockpile_ledger::trust::TrustRoot;

/// The ledger origin (and the log key's name).
pub const ORIGIN: &str = "bench.stockpile.example/ledger";
/// The depot every bulk lot is declared at.
pub const DEPOT_SITE: &str = "D1";
/// The mine type of every bulk lot.
pub const MINE_TYPE: &str = "PMN";

/// The keys of a benchmark ledger.
pub struct BenchKeys {
    pub log: SignerKey,
    pub registrar: SignerKey,
    pub depots: Vec<SignerKey>,
}

impl BenchKeys {
    pub fn new(depot_keys: usize) -> BenchKeys {
        let key = |name: &str, seed: u8| {
            SignerKey::from_seed(name, [seed; 32]).expect("benchmark key names are valid")
        };
        BenchKeys {
            log: key(ORIGIN, 1),
            registrar: key("registrar.bench.example", 2),
            depots: (0..depot_keys)
                .map(|i| key(&format!("depot-{i}.bench.example"), 10 + i as u8))
                .collect(),
        }
    }

    /// The trust root: the log key and the registrar as the authority.
    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot {
            origin: ORIGIN.to_string(),
            log_keys: vec![self.log.verifier_key()],
            authority_keys: vec![self.registrar.verifier_key()],
        }
    }
}

/// The registrar's events that every bulk event depends on.
pub fn base_events(keys: &BenchKeys) -> Vec<EventBody> {
    let date = |text: &str| Date::parse(text).expect("benchmark dates are valid");
    let mut events = vec![
        EventBody::RegimeConfigured(RegimeConfigured {
            state_id: "XB".into(),
            regime: Regime::Apmbc,
            eif_date: date("2012-07-01"),
            policy_dates: Vec::new(),
            article4_deadline: Some(date("2016-07-01")),
            initial_report_due: Some(date("2012-12-28")),
        }),
        EventBody::SiteRegistered(SiteRegistered {
            site_id: DEPOT_SITE.into(),
            name: "Benchmark depot".into(),
            kind: SiteKind::Depot,
            country_code: "FI".into(),
            in_korean_peninsula: false,
        }),
        EventBody::MineTypeRegistered(MineTypeRegistered {
            type_id: MINE_TYPE.into(),
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
        }),
    ];
    events.extend(keys.depots.iter().map(|depot| {
        EventBody::SignerAuthorized(SignerAuthorized {
            key_id: depot.name().to_string(),
            public_key: depot.public_key_bytes(),
            holder: "benchmark depot service".into(),
            role: Role::Depot,
            valid_from: TimestampMs(1_300_000_000_000),
            site_scope: Vec::new(),
        })
    }));
    events
}

/// The `n`-th bulk lot of depot key `key`: a declaration at the benchmark depot, about the
/// size of a real one on the wire.
pub fn bulk_lot(key: usize, n: u64) -> EventBody {
    EventBody::LotDeclared(LotDeclared {
        lot_id: format!("LOT-{key}-{n:09}"),
        type_id: MINE_TYPE.into(),
        manufacturer_lot_number: Some(format!("MFR-{key}-{n:09}")),
        lot_number_absent_reason: String::new(),
        quantity: 5_000 + n % 15_000,
        site_id: DEPOT_SITE.into(),
        owner: "State".into(),
        custodian: "Defence Forces".into(),
        basis: LotBasis::Initial,
        basis_date: None,
        request_id: None,
    })
}
