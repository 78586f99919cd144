//! The scripted stories of domain.md §6, one module per data set, and the pieces they
//! share: the registry, lot declarations, destruction campaigns, annual inventories,
//! retained consumption and the hostile submissions.
//!
//! Each `build` only schedules actions; they run later in simulated time. Everything a
//! story will do to a lot is claimed up front, so that routine padding keeps clear.

pub(crate) mod belarus;
pub(crate) mod finland;
pub(crate) mod us;

use crate::config::Dataset;
use crate::keys::ScenarioKeys;
use crate::sim::{DAY, DestroyPlan, MINUTE, Signer, Sim, at_hour, date_of};
use rand::Rng;
use rand::seq::SliceRandom;
use stockpile_core::events::{
    DestructionMethod, EventBody, InstitutionAuthorized, LotBasis, LotDeclared, LotShipped,
    MineTypeRegistered, Purpose, Regime, RegimeConfigured, Role, SignerAuthorized, SiteKind,
    SiteRegistered, TransferApproved, TransferDirection, TransferRefused, TransferRequested,
    TypeQuantity,
};
use stockpile_core::hash::Hash32;
use stockpile_core::limits::{ARTICLE4_YEARS, INITIAL_REPORT_DAYS};
use stockpile_core::time::{Date, TimestampMs};

/// Schedules the whole story of the data set.
pub(crate) fn build(sim: &mut Sim, keys: &ScenarioKeys) {
    match sim.ds {
        Dataset::UsLike => us::build(sim, keys),
        Dataset::FinlandLike => finland::build(sim, keys),
        Dataset::BelarusLike => belarus::build(sim, keys),
    }
}

/// Smallest and largest synthetic lot (domain.md §6).
pub(crate) const LOT_UNITS_MIN: u64 = 5_000;
pub(crate) const LOT_UNITS_MAX: u64 = 20_000;

/// Splits `total` into lots of `LOT_UNITS_MIN..=LOT_UNITS_MAX` that sum to it exactly
/// (a total below the minimum is one lot).
pub(crate) fn split_into_lots(sim: &mut Sim, total: u64) -> Vec<u64> {
    const _: () = assert!(LOT_UNITS_MAX >= 2 * LOT_UNITS_MIN);
    let mut left = total;
    let mut lots = Vec::new();
    while left > LOT_UNITS_MAX {
        let high = LOT_UNITS_MAX.min(left - LOT_UNITS_MIN);
        let units = sim.rng.gen_range(LOT_UNITS_MIN..=high);
        lots.push(units);
        left -= units;
    }
    lots.push(left);
    debug_assert_eq!(lots.iter().sum::<u64>(), total);
    lots
}

/// A mine type, as registered (Form H). Characteristics not from a cited source are
/// marked synthetic in the text.
pub(crate) struct TypeSpec {
    pub type_id: &'static str,
    pub designation: &'static str,
    pub category: &'static str,
    pub activation_modes: &'static [&'static str],
    pub self_destructing: bool,
    pub dimensions_mm: &'static str,
    pub fusing: &'static str,
    pub explosive_type: &'static str,
    pub explosive_mg: u32,
    pub metal_mg: u32,
}

pub(crate) fn register_type(sim: &mut Sim, spec: &TypeSpec, t: i64) -> String {
    let body = EventBody::MineTypeRegistered(MineTypeRegistered {
        type_id: spec.type_id.into(),
        designation: spec.designation.into(),
        category: spec.category.into(),
        activation_modes: spec
            .activation_modes
            .iter()
            .map(|mode| mode.to_string())
            .collect(),
        self_destructing: spec.self_destructing,
        counts_as_apm: true,
        dimensions_mm: spec.dimensions_mm.into(),
        fusing: spec.fusing.into(),
        explosive_type: spec.explosive_type.into(),
        explosive_mg: spec.explosive_mg,
        metal_mg: spec.metal_mg,
        photo_sha256: Some(Hash32::digest_parts(&[
            b"synthetic type photo\n",
            spec.type_id.as_bytes(),
        ])),
    });
    sim.emit(Role::Registrar, t, body)
}

pub(crate) struct SiteSpec {
    pub site_id: String,
    pub name: String,
    pub kind: SiteKind,
    pub country_code: &'static str,
    pub in_korean_peninsula: bool,
}

pub(crate) fn register_site(sim: &mut Sim, spec: &SiteSpec, t: i64) {
    let body = EventBody::SiteRegistered(SiteRegistered {
        site_id: spec.site_id.clone(),
        name: spec.name.clone(),
        kind: spec.kind,
        country_code: spec.country_code.into(),
        in_korean_peninsula: spec.in_korean_peninsula,
    });
    sim.emit(Role::Registrar, t, body);
}

/// The registry every data set opens with, in one working morning: the regime, the sites
/// (three depots, one destruction facility, one training institution), the mine types,
/// the authorised institution and the five emitter keys.
pub(crate) struct Registry {
    pub regime: Regime,
    pub eif: Date,
    pub policy_dates: Vec<Date>,
    pub sites: Vec<SiteSpec>,
    pub types: Vec<TypeSpec>,
    pub institution_name: String,
    pub institution_purposes: Vec<Purpose>,
    pub institution_ceiling: u64,
    pub start: Date,
}

impl Registry {
    /// Three depots, a destruction facility and a training institution, all domestic.
    pub fn standard_sites(
        sim: &Sim,
        country: &'static str,
        depot_names: [&str; 3],
        facility: &str,
        training: &str,
    ) -> Vec<SiteSpec> {
        let code = sim.code;
        let mut sites: Vec<SiteSpec> = depot_names
            .iter()
            .enumerate()
            .map(|(number, name)| SiteSpec {
                site_id: format!("{code}-DEPOT-{}", number + 1),
                name: format!("{name} (synthetic)"),
                kind: SiteKind::Depot,
                country_code: country,
                in_korean_peninsula: false,
            })
            .collect();
        sites.push(SiteSpec {
            site_id: format!("{code}-DEMIL"),
            name: format!("{facility} (synthetic)"),
            kind: SiteKind::DestructionFacility,
            country_code: country,
            in_korean_peninsula: false,
        });
        sites.push(SiteSpec {
            site_id: format!("{code}-TRAIN"),
            name: format!("{training} (synthetic)"),
            kind: SiteKind::TrainingInstitution,
            country_code: country,
            in_korean_peninsula: false,
        });
        sites
    }
}

/// Emits the registry at 09:00 on `registry.start`; fills `sim.sites`.
pub(crate) fn open_ledger(sim: &mut Sim, keys: &ScenarioKeys, registry: Registry) {
    let start = at_hour(registry.start, 9);
    let mut t = start;
    let mut tick = |sim: &mut Sim| {
        t += sim.rng.gen_range(1..=4) * MINUTE;
        t
    };
    let apmbc = registry.regime == Regime::Apmbc;
    let regime = EventBody::RegimeConfigured(RegimeConfigured {
        state_id: sim.ds.state_id().into(),
        regime: registry.regime,
        eif_date: registry.eif,
        policy_dates: registry.policy_dates.clone(),
        article4_deadline: apmbc.then(|| registry.eif.add_years(ARTICLE4_YEARS)),
        initial_report_due: apmbc.then(|| registry.eif.add_days(INITIAL_REPORT_DAYS)),
    });
    let when = tick(sim);
    sim.emit(Role::Registrar, when, regime);
    for site in &registry.sites {
        let when = tick(sim);
        register_site(sim, site, when);
        match site.kind {
            SiteKind::Depot => sim.sites.depots.push(site.site_id.clone()),
            SiteKind::DestructionFacility
                if !sim.model.sites[sim.site_ix(&site.site_id)].foreign =>
            {
                sim.sites.facility = site.site_id.clone()
            }
            SiteKind::TrainingInstitution => sim.sites.training = site.site_id.clone(),
            _ => {}
        }
    }
    for mine_type in &registry.types {
        let when = tick(sim);
        register_type(sim, mine_type, when);
    }
    let institution_id = format!("{}-INST-1", sim.code);
    let body = EventBody::InstitutionAuthorized(InstitutionAuthorized {
        institution_id: institution_id.clone(),
        site_id: sim.sites.training.clone(),
        name: format!("{} (synthetic)", registry.institution_name),
        instrument: format!(
            "{} ministerial decision on retained mines (synthetic)",
            sim.code
        ),
        instrument_date: Some(registry.start),
        permitted_purposes: registry.institution_purposes.clone(),
        ceiling: registry.institution_ceiling,
        valid_from: Some(registry.start),
        valid_to: None,
    });
    let when = tick(sim);
    sim.emit(Role::Registrar, when, body);
    sim.sites.institution = institution_id;
    let roles = [
        (Role::Depot, &keys.depot, "depot accounting service"),
        (
            Role::Demil,
            &keys.demil,
            "demilitarisation facility service",
        ),
        (
            Role::Certifier,
            &keys.certifier,
            "independent certification body",
        ),
        (
            Role::ExportControl,
            &keys.export_control,
            "export-control authority",
        ),
        (
            Role::Inspector,
            &keys.inspector,
            "national inventory inspectorate",
        ),
    ];
    for (role, key, holder) in roles {
        let when = tick(sim);
        let body = EventBody::SignerAuthorized(SignerAuthorized {
            key_id: key.name().to_string(),
            public_key: key.public_key_bytes(),
            holder: format!("{} {holder} (synthetic)", sim.code),
            role,
            valid_from: TimestampMs(when),
            site_scope: Vec::new(),
        });
        sim.emit(Role::Registrar, when, body);
    }
}

/// A lot to declare.
#[derive(Debug, Clone)]
pub(crate) struct LotSpec {
    pub lot_id: String,
    pub type_id: String,
    pub quantity: u64,
    pub site_id: String,
    pub manufacturer_lot_number: Option<String>,
    pub lot_number_absent_reason: String,
    pub basis: LotBasis,
    pub basis_date: Option<Date>,
}

/// Lot specs for `total` units of `type_id`, spread at random over `sites`.
pub(crate) fn lot_specs(
    sim: &mut Sim,
    type_id: &str,
    short: &str,
    total: u64,
    sites: &[String],
    year: i32,
) -> Vec<LotSpec> {
    let sizes = split_into_lots(sim, total);
    sizes
        .into_iter()
        .map(|quantity| {
            let number = sim.next_number("LOT");
            let site_id = sites
                .choose(&mut sim.rng)
                .expect("at least one site")
                .clone();
            let batch = sim.rng.gen_range(1_000..10_000);
            LotSpec {
                lot_id: format!("{}-LOT-{number:05}", sim.code),
                type_id: type_id.to_string(),
                quantity,
                site_id,
                manufacturer_lot_number: Some(format!(
                    "SYN-{short}-{}-{batch}",
                    year - sim.rng.gen_range(18..35)
                )),
                lot_number_absent_reason: String::new(),
                basis: LotBasis::Initial,
                basis_date: None,
            }
        })
        .collect()
}

pub(crate) fn declare(sim: &mut Sim, spec: &LotSpec, t: i64) -> String {
    let body = EventBody::LotDeclared(LotDeclared {
        lot_id: spec.lot_id.clone(),
        type_id: spec.type_id.clone(),
        manufacturer_lot_number: spec.manufacturer_lot_number.clone(),
        lot_number_absent_reason: spec.lot_number_absent_reason.clone(),
        quantity: spec.quantity,
        site_id: spec.site_id.clone(),
        owner: format!("{} Ministry of Defence (synthetic)", sim.code),
        custodian: format!("{} depot command (synthetic)", sim.code),
        basis: spec.basis,
        basis_date: spec.basis_date,
        request_id: None,
    });
    sim.emit(Role::Depot, t, body)
}

/// Declares the lots over the working days from `first` to `last`, in order.
pub(crate) fn schedule_declarations(sim: &mut Sim, specs: Vec<LotSpec>, first: Date, last: Date) {
    let days = first.days_until(last).max(0) + 1;
    let count = specs.len().max(1) as i64;
    for (number, spec) in specs.into_iter().enumerate() {
        let day = first.add_days(number as i64 * days / count);
        let t = sim.on_day(day, 8, 16);
        sim.at(t, move |sim| {
            declare(sim, &spec, sim.now);
        });
    }
}

/// Plans the destruction of `lots` (id, units to destroy) one after another between
/// `start` and `end`, each lot's window proportional to its units; the first starts on
/// `start` and the last ends on `end`.
pub(crate) fn campaign(
    lots: &[(String, u64)],
    start: Date,
    end: Date,
    method: DestructionMethod,
) -> Vec<DestroyPlan> {
    let total: u64 = lots.iter().map(|(_, units)| units).sum::<u64>().max(1);
    let span = start.days_until(end).max(0) as u128;
    let mut done = 0u64;
    let mut plans = Vec::with_capacity(lots.len());
    for (lot_id, units) in lots {
        let from = start.add_days((done as u128 * span / total as u128) as i64);
        done += units;
        let to = start.add_days((done as u128 * span / total as u128) as i64);
        plans.push(DestroyPlan::new(lot_id, from, to.max(from), method));
    }
    plans
}

/// A Full inventory of every depot and the training institution each December.
pub(crate) fn schedule_annual_inventories(sim: &mut Sim, first_year: i32, last_year: i32) {
    let mut sites = sim.sites.depots.clone();
    sites.push(sim.sites.training.clone());
    for year in first_year..=last_year {
        for (number, site_id) in sites.iter().enumerate() {
            let day =
                crate::sim::ymd(year, 12, 1).add_days(2 * number as i64 + sim.rng.gen_range(0..2));
            let t = sim.on_day(day, 8, 15);
            let site_id = site_id.clone();
            sim.at(t, move |sim| {
                let site = sim.site_ix(&site_id);
                sim.full_inventory(site, sim.now);
            });
        }
    }
}

/// Retained-mine consumption on each (date, units): drawn from the institution's lots,
/// largest pool first, at most what is left.
pub(crate) fn schedule_consumption(sim: &mut Sim, uses: Vec<(Date, u64, &'static str)>) {
    for (date, units, activity) in uses {
        let t = sim.on_day(date, 8, 16);
        sim.at(t, move |sim| {
            let institution = sim.sites.institution.clone();
            let mut left = units;
            for (lot, held) in sim.retained_lots(&institution) {
                if left == 0 {
                    break;
                }
                let take = left.min(held);
                let when = sim.now;
                sim.consume(lot, &institution, take, activity, when);
                left -= take;
            }
        });
    }
}

/// Ships `plan` units of each lot to the training institution on `date` and retains them
/// there for the institution's training purpose the next day.
pub(crate) fn schedule_retention(
    sim: &mut Sim,
    date: Date,
    plan: Vec<(String, u64)>,
    purpose: Purpose,
    incident: Option<&'static str>,
) {
    let t = sim.on_day(date, 7, 10);
    for (lot_id, _) in &plan {
        sim.claim(lot_id, t - DAY);
    }
    sim.at(t, move |sim| {
        let training = sim.site_ix(&sim.sites.training.clone());
        let receipt_t = sim.now + DAY;
        for (lot_id, units) in &plan {
            let lot = sim.model.lot(lot_id);
            let when = sim.now;
            for (shipment_id, quantity) in sim.gather(lot, *units, training, when, None) {
                sim.schedule_receipt(shipment_id, lot, quantity, receipt_t);
            }
        }
        let retain_t = receipt_t + 3 * crate::sim::HOUR;
        sim.at(retain_t, move |sim| {
            let institution = sim.sites.institution.clone();
            let training_id = sim.sites.training.clone();
            let mut first = true;
            for (lot_id, units) in plan {
                let body = EventBody::LotRetained(stockpile_core::events::LotRetained {
                    lot_id,
                    quantity: units,
                    institution_id: institution.clone(),
                    purpose,
                    justification:
                        "minimum number for detector trials and dog training (synthetic)".into(),
                    planned_annual_use: (units / 100).max(1),
                    next_review_date: Some(date_of(sim.now).add_years(1)),
                    site_id: training_id.clone(),
                });
                let id = sim.emit(Role::Depot, sim.now, body);
                if first && let Some(incident) = incident {
                    sim.expect_flag(17, "retention.above_benchmark", Some(&id), incident);
                }
                first = false;
            }
        });
    });
}

/// A transfer request from the export-control authority's register.
pub(crate) struct Request {
    pub request_id: String,
    pub direction: TransferDirection,
    pub items: Vec<TypeQuantity>,
    pub purpose: Purpose,
    pub counterparty: String,
    pub destination: String,
}

pub(crate) fn request_transfer(sim: &mut Sim, request: &Request, t: i64) -> String {
    let body = EventBody::TransferRequested(TransferRequested {
        request_id: request.request_id.clone(),
        requester: format!("{} armed forces logistics command (synthetic)", sim.code),
        direction: request.direction,
        items: request.items.clone(),
        stated_purpose: request.purpose,
        counterparty: request.counterparty.clone(),
        destination: request.destination.clone(),
    });
    sim.emit(Role::ExportControl, t, body)
}

pub(crate) fn refuse_transfer(
    sim: &mut Sim,
    request_id: &str,
    basis: &str,
    reasoning: &str,
    t: i64,
) -> String {
    let body = EventBody::TransferRefused(TransferRefused {
        request_id: request_id.into(),
        authority: format!("{} export-control authority (synthetic)", sim.code),
        date: date_of(t),
        basis_cited: basis.into(),
        reasoning: reasoning.into(),
    });
    sim.emit(Role::ExportControl, t, body)
}

pub(crate) fn approval(
    sim: &Sim,
    request: &Request,
    basis: &str,
    purpose: Purpose,
    destruction_site_id: Option<String>,
    t: i64,
) -> EventBody {
    EventBody::TransferApproved(TransferApproved {
        request_id: request.request_id.clone(),
        authority: format!("{} export-control authority (synthetic)", sim.code),
        date: date_of(t),
        legal_basis: basis.into(),
        purpose,
        institution_id: None,
        destruction_site_id,
        quantities: request.items.clone(),
        title_passes_date: Some(date_of(t).add_days(30)),
    })
}

/// A hostile approval the sequencer must refuse under hard rule 8 (transfers only under
/// Article 3).
pub(crate) fn hostile_approval(
    sim: &mut Sim,
    request: &Request,
    basis: &str,
    purpose: Purpose,
    site: Option<String>,
    t: i64,
    description: &str,
) {
    let body = approval(sim, request, basis, purpose, site, t);
    sim.emit_hostile(
        Signer::Role(Role::ExportControl),
        t,
        body,
        8,
        "transfers.not_article3",
        description,
    );
}

/// A hostile shipment signed by a key the registrar never authorised (hard rule 2).
pub(crate) fn schedule_rogue_shipment(sim: &mut Sim, date: Date) {
    let t = sim.on_day(date, 1, 4);
    sim.at(t, move |sim| {
        let depots = sim.model.domestic_depots();
        let lot = (0..sim.model.lots.len()).find(|&lot| sim.model.lots[lot].stockpiled(depots[0]) > 0);
        let (lot_id, units) = match lot {
            Some(lot) => (sim.model.lots[lot].id.clone(), sim.model.lots[lot].stockpiled(depots[0]).min(500)),
            None => (sim.model.lots[0].id.clone(), 500),
        };
        let body = EventBody::LotShipped(LotShipped {
            shipment_id: format!("{}-SHP-ROGUE-1", sim.code),
            lot_id,
            quantity: units,
            from_site_id: sim.model.sites[depots[0]].id.clone(),
            to_site_id: sim.model.sites[depots[depots.len() - 1]].id.clone(),
            seal_ids: Vec::new(),
            date: date_of(sim.now),
            request_id: None,
        });
        let description = "a night-time shipment signed by a key the registrar never authorised (synthetic hostile \
                           submission)";
        sim.emit_hostile(Signer::Rogue, sim.now, body, 2, "signature.unknown_key", description);
    });
}

/// The discovered-lot incident: `units` of a registered type found at a depot on
/// `found`, declared two days later without a lot number, destroyed on `destroyed`.
pub(crate) fn schedule_discovered_lot(
    sim: &mut Sim,
    type_id: &str,
    units: u64,
    site_id: String,
    found: Date,
    destroyed: Date,
    method: DestructionMethod,
) -> String {
    let lot_id = format!("{}-LOT-DISCOVERED-1", sim.code);
    let spec = LotSpec {
        lot_id: lot_id.clone(),
        type_id: type_id.to_string(),
        quantity: units,
        site_id,
        manufacturer_lot_number: None,
        lot_number_absent_reason:
            "markings illegible; found in a disused storage bunker (synthetic incident modelled \
                                   on Lithuania's last batch of 340 PMN)"
                .into(),
        basis: LotBasis::Discovered,
        basis_date: Some(found),
    };
    sim.exclude(&lot_id);
    let t = sim.on_day(found.add_days(2), 9, 15);
    sim.at(t, move |sim| {
        let id = declare(sim, &spec, sim.now);
        sim.expect_flag(
            19,
            "lot.number_missing",
            Some(&id),
            "discovered lot declared without a manufacturer lot number",
        );
    });
    let mut plan = DestroyPlan::new(&lot_id, destroyed.add_days(-1), destroyed, method);
    plan.basis = stockpile_core::events::DestructionBasis::Discovered;
    sim.plan_destruction(plan);
    lot_id
}

/// Picks `count` distinct lots from `candidates` at random, in candidate order.
pub(crate) fn pick(sim: &mut Sim, candidates: &[String], count: usize) -> Vec<String> {
    let mut chosen: Vec<String> = candidates
        .choose_multiple(&mut sim.rng, count)
        .cloned()
        .collect();
    chosen.sort_by_key(|id| candidates.iter().position(|c| c == id));
    chosen
}
