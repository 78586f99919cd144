//! C. Belarus-like: `APMBC`, EIF 1 Mar 2004, Article 4 deadline 1 Mar 2008 (missed).
//! 3,400,000 PFM-1 (real figure; lots synthetic) destroyed in a cold-detonation chamber
//! from 27 May 2014 to 5 Apr 2017, over a million a year, every destruction late
//! (flag 13). A synthetic retained pool of 6,030 PMN-2, used a little every year.
//!
//! Scripted incidents (synthetic): a count short of the book explained by a loss report
//! (2010–11), a hostile approval citing Article 3(2) for a depot and a submission under an
//! unknown key, a receipt two short with a broken seal (2014), an unwitnessed
//! destruction (2015), a destruction reported 1,078 short and corrected (2016), and 340
//! PMN discovered in 2017 and destroyed within six months.

use super::{
    LotSpec, Registry, Request, TypeSpec, campaign, hostile_approval, lot_specs, open_ledger, pick,
    refuse_transfer, register_type, request_transfer, schedule_annual_inventories,
    schedule_consumption, schedule_declarations, schedule_discovered_lot, schedule_retention,
    schedule_rogue_shipment,
};
use crate::keys::ScenarioKeys;
use crate::sim::{Sim, at_hour, ymd};
use rand::Rng;
use stockpile_core::events::{
    DestructionMethod, LotBasis, Purpose, Regime, TransferDirection, TypeQuantity,
};

pub(crate) const PFM1: &str = "PFM-1";
pub(crate) const PMN2: &str = "PMN-2";
pub(crate) const PFM1_UNITS: u64 = 3_400_000;
pub(crate) const RETAINED_UNITS: u64 = 6_030;

fn types() -> Vec<TypeSpec> {
    vec![
        TypeSpec {
            type_id: PFM1,
            designation: "PFM-1 / PFM-1S",
            category: "antipersonnel blast mine, remotely delivered",
            activation_modes: &["pressure"],
            self_destructing: false,
            dimensions_mm: "120 x 61 x 20 (approximate)",
            fusing: "mechanical pressure fuze",
            explosive_type: "liquid explosive VS-6D",
            explosive_mg: 37_000,
            metal_mg: 0,
        },
        TypeSpec {
            type_id: PMN2,
            designation: "PMN-2",
            category: "antipersonnel blast mine",
            activation_modes: &["pressure"],
            self_destructing: false,
            dimensions_mm: "125 diameter x 65 (approximate)",
            fusing: "MVD pressure fuze",
            explosive_type: "TG-40",
            explosive_mg: 100_000,
            metal_mg: 8_000,
        },
    ]
}

const PMN: TypeSpec = TypeSpec {
    type_id: "PMN",
    designation: "PMN",
    category: "antipersonnel blast mine",
    activation_modes: &["pressure"],
    self_destructing: false,
    dimensions_mm: "112 diameter x 56 (approximate)",
    fusing: "MD-9 pressure fuze",
    explosive_type: "TNT",
    explosive_mg: 240_000,
    metal_mg: 6_000,
};

pub(crate) fn build(sim: &mut Sim, keys: &ScenarioKeys) {
    let eif = ymd(2004, 3, 1);
    let sites = Registry::standard_sites(
        sim,
        "BY",
        ["SYN Depot West", "SYN Depot Central", "SYN Depot East"],
        "SYN cold-detonation chamber plant",
        "SYN Military Academy engineer faculty",
    );
    open_ledger(
        sim,
        keys,
        Registry {
            regime: Regime::Apmbc,
            eif,
            policy_dates: vec![ymd(2003, 9, 3)],
            sites,
            types: types(),
            institution_name: "SYN Military Academy engineer faculty".into(),
            institution_purposes: vec![
                Purpose::DetectionTraining,
                Purpose::ClearanceTraining,
                Purpose::DestructionTraining,
            ],
            institution_ceiling: 6_500,
            start: eif,
        },
    );
    let depots = sim.sites.depots.clone();
    let mut specs = lot_specs(sim, PFM1, "PFM", PFM1_UNITS, &depots, 2004);
    let retained_lot = format!("{}-LOT-PMN2-RETAINED", sim.code);
    specs.push(LotSpec {
        lot_id: retained_lot.clone(),
        type_id: PMN2.into(),
        quantity: RETAINED_UNITS,
        site_id: depots[0].clone(),
        manufacturer_lot_number: Some("SYN-PMN2-1987-4411".into()),
        lot_number_absent_reason: String::new(),
        basis: LotBasis::Initial,
        basis_date: None,
    });
    let lots: Vec<(String, u64, String)> = specs
        .iter()
        .filter(|spec| spec.type_id == PFM1)
        .map(|s| (s.lot_id.clone(), s.quantity, s.site_id.clone()))
        .collect();
    schedule_declarations(sim, specs, ymd(2004, 3, 2), ymd(2004, 4, 30));
    sim.padding_from = at_hour(ymd(2004, 5, 3), 8);

    // The retained pool, and a little use every May.
    let incident = "retained pool of 6,030 is above the ICBL benchmark (synthetic)";
    schedule_retention(
        sim,
        ymd(2004, 6, 15),
        vec![(retained_lot, RETAINED_UNITS)],
        Purpose::DetectionTraining,
        Some(incident),
    );
    let mut uses = Vec::new();
    for year in 2005..=2018 {
        let units = sim.rng.gen_range(15..=45);
        uses.push((
            ymd(year, 5, 11),
            units,
            "mine-detection and EOD training (synthetic)",
        ));
    }
    schedule_consumption(sim, uses);
    schedule_annual_inventories(sim, 2004, 2018);

    // The deadline passes with the stockpile intact.
    let incident = "Article 4 deadline of 1 March 2008 missed with 3.4 million PFM-1 in stock";
    sim.expect_flag(13, "article4.deadline_missed", None, incident);

    // The campaign, 27 May 2014 to 5 April 2017.
    let order: Vec<(String, u64)> = lots
        .iter()
        .map(|(id, units, _)| (id.clone(), *units))
        .collect();
    let second_half = &lots[lots.len() / 2..];
    let mut candidates: Vec<String> = second_half
        .iter()
        .filter(|(_, _, site)| *site == depots[1])
        .map(|(id, _, _)| id.clone())
        .collect();
    if candidates.is_empty() {
        candidates = second_half.iter().map(|(id, _, _)| id.clone()).collect();
    }
    let counted_lot = pick(sim, &candidates, 1)
        .pop()
        .expect("a lot in the campaign's second half");
    let counted_site = lots
        .iter()
        .find(|(id, _, _)| *id == counted_lot)
        .map(|(_, _, site)| site.clone())
        .expect("known");
    let mut plans = campaign(
        &order,
        ymd(2014, 5, 27),
        ymd(2017, 4, 5),
        DestructionMethod::ColdDetonationChamber,
    );
    let nearest = |plans: &[crate::sim::DestroyPlan], target| {
        (0..plans.len())
            .filter(|&i| plans[i].lot_id != counted_lot)
            .min_by_key(|&i| plans[i].start.days_until(target).abs())
            .expect("plans")
    };
    let short = nearest(&plans, ymd(2014, 11, 17));
    plans[short].short_receipt = true;
    let unwitnessed = nearest(&plans, ymd(2015, 6, 15));
    plans[unwitnessed].witnessed = false;
    let sudan = nearest(&plans, ymd(2016, 5, 16));
    plans[sudan].under_report = 1_078;
    for index in [short, unwitnessed, sudan] {
        sim.exclude(&plans[index].lot_id.clone());
    }
    let incident = "every destruction ends after the 2008 deadline";
    sim.expect_flag(13, "article4.late_destruction", None, incident);
    for plan in plans {
        sim.plan_destruction(plan);
    }
    sim.start_certifier(ymd(2014, 6, 10), ymd(2018, 12, 10));

    // A count short of the book in the 2010 annual inventory, explained in February.
    sim.exclude(&counted_lot);
    let central = counted_site.clone();
    let counted = counted_lot.clone();
    sim.at(at_hour(ymd(2010, 11, 2), 8), move |sim| {
        let (lot, site) = (sim.model.lot(&counted), sim.site_ix(&central));
        sim.set_shortfall(
            lot,
            site,
            14,
            "annual inventory finds 14 units fewer than the book (synthetic incident)",
        );
    });
    let central = counted_site;
    let t = sim.on_day(ymd(2011, 2, 14), 9, 15);
    sim.at(t, move |sim| {
        let (lot, site) = (sim.model.lot(&counted_lot), sim.site_ix(&central));
        let circumstances = "investigation of the 2010 inventory difference: 14 units destroyed in a 2006 storage \
                             accident, never recorded (synthetic incident)";
        sim.report_loss(lot, site, 14, circumstances, sim.now);
        sim.explain_shortfall(lot, site);
    });

    // Export control: a hostile approval citing Article 3(2) for a depot, then a refusal.
    let request = Request {
        request_id: format!("{}-REQ-2009-01", sim.code),
        direction: TransferDirection::Export,
        items: vec![TypeQuantity {
            type_id: PFM1.into(),
            quantity: 20_000,
        }],
        purpose: Purpose::Other,
        counterparty: "SYN State S (synthetic)".into(),
        destination: "SYN State S (synthetic)".into(),
    };
    let depot = depots[0].clone();
    let (t, t2, t3) = (
        sim.on_day(ymd(2009, 4, 6), 9, 15),
        sim.on_day(ymd(2009, 4, 20), 9, 15),
        sim.on_day(ymd(2009, 5, 4), 9, 15),
    );
    sim.at(t, move |sim| {
        request_transfer(sim, &request, sim.now);
        sim.at(t2, move |sim| {
            let description = "an approval citing Article 3(2) that names a depot, not a destruction facility \
                               (synthetic hostile submission)";
            hostile_approval(sim, &request, "APMBC-3.2", Purpose::Destruction, Some(depot), sim.now, description);
            sim.at(t3, move |sim| {
                let reasoning = "the stated purpose is not an Article 3 purpose (synthetic)";
                refuse_transfer(sim, &request.request_id, "APMBC-1.1.b", reasoning, sim.now);
            });
        });
    });
    schedule_rogue_shipment(sim, ymd(2012, 8, 21));

    // 340 PMN found in 2017, after the deadline, destroyed within six months.
    let t = sim.on_day(ymd(2017, 9, 5), 9, 12);
    sim.at(t, |sim| {
        register_type(sim, &PMN, sim.now);
    });
    let depot = depots[2].clone();
    schedule_discovered_lot(
        sim,
        "PMN",
        340,
        depot,
        ymd(2017, 9, 4),
        ymd(2018, 1, 23),
        DestructionMethod::ColdDetonationChamber,
    );

    sim.story_end = at_hour(ymd(2018, 12, 31), 17);
}
