//! B. Finland-like: `APMBC`, acceded 9 Jan 2012, EIF 1 Jul 2012, deadline 1 Jul 2016.
//! Declared 1,029,763 units: 801,618 Sakaramiina 65-98 and 228,145 Putkimiina
//! 43-86/68-95 (real totals; the lots are synthetic and sum to them exactly). About
//! 340,000 destroyed a year from September 2012, the last on 15 Aug 2015. 16,500 retained
//! (2014), falling to 15,982 by 2020 through yearly consumption.
//!
//! Scripted incidents (synthetic): a receipt two short with a broken seal (2013), an
//! unwitnessed destruction (2013), a count short of the book explained by a loss report
//! (2013–14), a destruction reported 1,078 short and corrected (2014), a hostile approval
//! for operational use and a submission under an unknown key, and 340 PMN discovered in
//! 2017 and destroyed late.

use super::{
    Registry, Request, TypeSpec, campaign, hostile_approval, lot_specs, open_ledger, pick,
    refuse_transfer, register_type, request_transfer, schedule_annual_inventories,
    schedule_consumption, schedule_declarations, schedule_discovered_lot, schedule_retention,
    schedule_rogue_shipment,
};
use crate::keys::ScenarioKeys;
use crate::sim::{Sim, at_hour, ymd};
use rand::Rng;
use stockpile_core::events::{DestructionMethod, Purpose, Regime, TransferDirection, TypeQuantity};

pub(crate) const SAKARAMIINA: &str = "FI-SAKARAMIINA-65-98";
pub(crate) const PUTKIMIINA: &str = "FI-PUTKIMIINA-43-86-68-95";
pub(crate) const SAKARAMIINA_UNITS: u64 = 801_618;
pub(crate) const PUTKIMIINA_UNITS: u64 = 228_145;
pub(crate) const RETAINED_2014: u64 = 16_500;
pub(crate) const RETAINED_2020: u64 = 15_982;

pub(crate) fn types() -> Vec<TypeSpec> {
    vec![
        TypeSpec {
            type_id: SAKARAMIINA,
            designation: "Sakaramiina 65-98",
            category: "antipersonnel fragmentation mine (characteristics synthetic)",
            activation_modes: &["tripwire (synthetic)"],
            self_destructing: false,
            dimensions_mm: "synthetic",
            fusing: "mechanical tripwire fuze (synthetic)",
            explosive_type: "TNT (synthetic)",
            explosive_mg: 150_000,
            metal_mg: 900_000,
        },
        TypeSpec {
            type_id: PUTKIMIINA,
            designation: "Putkimiina 43-86 / 68-95",
            category: "antipersonnel stake fragmentation (pipe) mine (characteristics synthetic)",
            activation_modes: &["tripwire (synthetic)"],
            self_destructing: false,
            dimensions_mm: "synthetic",
            fusing: "mechanical tripwire fuze (synthetic)",
            explosive_type: "TNT (synthetic)",
            explosive_mg: 200_000,
            metal_mg: 1_100_000,
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
    let eif = ymd(2012, 7, 1);
    let sites = Registry::standard_sites(
        sim,
        "FI",
        ["SYN Depot North", "SYN Depot Central", "SYN Depot South"],
        "SYN Defence Forces demilitarisation facility",
        "SYN Engineer School mine-action training centre",
    );
    open_ledger(
        sim,
        keys,
        Registry {
            regime: Regime::Apmbc,
            eif,
            policy_dates: vec![ymd(2012, 1, 9)],
            sites,
            types: types(),
            institution_name: "SYN Engineer School mine-action training centre".into(),
            institution_purposes: vec![
                Purpose::DetectionTraining,
                Purpose::ClearanceTraining,
                Purpose::DestructionTraining,
            ],
            institution_ceiling: RETAINED_2014,
            start: eif,
        },
    );
    let depots = sim.sites.depots.clone();
    let mut specs = lot_specs(sim, SAKARAMIINA, "SAK", SAKARAMIINA_UNITS, &depots, 2012);
    specs.extend(lot_specs(
        sim,
        PUTKIMIINA,
        "PUT",
        PUTKIMIINA_UNITS,
        &depots,
        2012,
    ));
    // Declared from the day after EIF, within two weeks.
    let lot_ids: Vec<String> = specs.iter().map(|spec| spec.lot_id.clone()).collect();
    let sizes: Vec<u64> = specs.iter().map(|spec| spec.quantity).collect();
    let declared_at: Vec<String> = specs.iter().map(|spec| spec.site_id.clone()).collect();
    schedule_declarations(sim, specs, ymd(2012, 7, 2), ymd(2012, 7, 13));
    sim.padding_from = at_hour(ymd(2012, 7, 16), 8);

    // Retained: 16,500 from the largest lots (at most all but 500 of each).
    let mut by_size: Vec<usize> = (0..lot_ids.len()).collect();
    by_size.sort_by_key(|&i| (std::cmp::Reverse(sizes[i]), i));
    let mut retained = Vec::new();
    let mut left = RETAINED_2014;
    for &i in &by_size {
        if left == 0 {
            break;
        }
        let take = left.min(sizes[i] - 500).min(7_000);
        retained.push((lot_ids[i].clone(), take));
        left -= take;
    }
    let retained_ids: Vec<String> = retained.iter().map(|(id, _)| id.clone()).collect();

    // The campaign: every other lot in declaration order, then the retention sources.
    let mut order: Vec<(String, u64)> = Vec::new();
    for (i, id) in lot_ids.iter().enumerate() {
        if !retained_ids.contains(id) {
            order.push((id.clone(), sizes[i]));
        }
    }
    // The count-differs lot: preferably at the second depot, destroyed (in the
    // campaign's last third) well after the loss report. Padding never moves it.
    let declared_site =
        |id: &String| declared_at[lot_ids.iter().position(|l| l == id).expect("known lot")].clone();
    let last_third: Vec<String> = order[order.len() * 2 / 3..]
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let at_central: Vec<String> = last_third
        .iter()
        .filter(|id| declared_site(id) == depots[1])
        .cloned()
        .collect();
    let candidates = if at_central.is_empty() {
        last_third
    } else {
        at_central
    };
    let counted_lot = pick(sim, &candidates, 1)
        .pop()
        .expect("a lot in the campaign's last third");
    let counted_site = declared_site(&counted_lot);
    for (id, units) in &retained {
        let size = sizes[lot_ids.iter().position(|l| l == id).expect("known lot")];
        order.push((id.clone(), size - units));
    }
    let mut plans = campaign(
        &order,
        ymd(2012, 9, 3),
        ymd(2015, 8, 15),
        DestructionMethod::OpenDetonation,
    );
    let nearest = |plans: &[crate::sim::DestroyPlan], target: stockpile_core::time::Date| {
        (0..plans.len())
            .filter(|&i| plans[i].lot_id != counted_lot)
            .min_by_key(|&i| plans[i].start.days_until(target).abs())
            .expect("plans")
    };
    let short = nearest(&plans, ymd(2013, 4, 15));
    plans[short].short_receipt = true;
    let unwitnessed = nearest(&plans, ymd(2013, 6, 17));
    plans[unwitnessed].witnessed = false;
    let sudan = nearest(&plans, ymd(2014, 3, 10));
    plans[sudan].under_report = 1_078;
    for index in [short, unwitnessed, sudan] {
        sim.exclude(&plans[index].lot_id.clone());
    }
    for plan in plans {
        sim.plan_destruction(plan);
    }
    sim.start_certifier(ymd(2012, 9, 10), ymd(2020, 12, 10));

    // A count short of the book in the 2013 annual inventory,
    // explained by a loss report in January.
    sim.exclude(&counted_lot);
    let t = at_hour(ymd(2013, 11, 4), 8);
    let counted = counted_lot.clone();
    let central = counted_site.clone();
    sim.at(t, move |sim| {
        let (lot, site) = (sim.model.lot(&counted), sim.site_ix(&central));
        let incident = "annual inventory finds 6 units fewer than the book (synthetic incident)";
        sim.set_shortfall(lot, site, 6, incident);
    });
    let t = sim.on_day(ymd(2014, 1, 20), 9, 15);
    let central = counted_site;
    sim.at(t, move |sim| {
        let (lot, site) = (sim.model.lot(&counted_lot), sim.site_ix(&central));
        let circumstances = "investigation of the 2013 inventory difference: 6 units expended in an unrecorded 2011 \
                             demolition demonstration (synthetic incident)";
        sim.report_loss(lot, site, 6, circumstances, sim.now);
        sim.explain_shortfall(lot, site);
    });

    // Retention and its yearly use: 518 units over 2015–2020.
    let incident = "retained pool of 16,500 is above the ICBL benchmark (real figure)";
    schedule_retention(
        sim,
        ymd(2014, 9, 15),
        retained,
        Purpose::DetectionTraining,
        Some(incident),
    );
    let yearly = split_exact(sim, RETAINED_2014 - RETAINED_2020, 6, 70..=100, 40..=120);
    let mut uses = Vec::new();
    for (year, units) in (2015..=2020).zip(yearly) {
        let (spring, autumn) = if year == 2015 {
            (ymd(2015, 10, 6), ymd(2015, 11, 17))
        } else {
            (ymd(year, 4, 14), ymd(year, 10, 13))
        };
        uses.push((spring, units / 2, "mine-detection dog training (synthetic)"));
        uses.push((
            autumn,
            units - units / 2,
            "detector trials and EOD course (synthetic)",
        ));
    }
    schedule_consumption(sim, uses);

    schedule_annual_inventories(sim, 2012, 2020);

    // Export control: a request for operational use, a hostile approval the sequencer
    // refuses, then the lawful refusal.
    let request = Request {
        request_id: format!("{}-REQ-2013-01", sim.code),
        direction: TransferDirection::Export,
        items: vec![TypeQuantity {
            type_id: SAKARAMIINA.into(),
            quantity: 2_000,
        }],
        purpose: Purpose::OperationalUse,
        counterparty: "SYN State R (synthetic)".into(),
        destination: "SYN State R (synthetic)".into(),
    };
    let t = sim.on_day(ymd(2013, 2, 4), 9, 15);
    let t2 = sim.on_day(ymd(2013, 2, 11), 9, 15);
    let t3 = sim.on_day(ymd(2013, 2, 25), 9, 15);
    sim.at(t, move |sim| {
        request_transfer(sim, &request, sim.now);
        sim.at(t2, move |sim| {
            let description = "an approval of an export for operational use, citing Article 3(1) without an \
                               institution (synthetic hostile submission)";
            hostile_approval(sim, &request, "APMBC-3.1", Purpose::OperationalUse, None, sim.now, description);
            sim.at(t3, move |sim| {
                let reasoning = "transfer for operational use is prohibited by Article 1(1)(b) (synthetic)";
                refuse_transfer(sim, &request.request_id, "APMBC-1.1.b", reasoning, sim.now);
            });
        });
    });
    schedule_rogue_shipment(sim, ymd(2014, 5, 12));

    // 340 PMN found in 2017, after the deadline, destroyed more than six months later.
    let t = sim.on_day(ymd(2017, 3, 15), 9, 12);
    sim.at(t, |sim| {
        register_type(sim, &PMN, sim.now);
    });
    let depot = depots[0].clone();
    schedule_discovered_lot(
        sim,
        "PMN",
        340,
        depot,
        ymd(2017, 3, 14),
        ymd(2017, 10, 5),
        DestructionMethod::OpenDetonation,
    );
    let incident =
        "340 PMN discovered after the deadline, destroyed more than six months later (synthetic)";
    sim.expect_flag(14, "discovered.not_destroyed_in_time", None, incident);
    sim.expect_flag(14, "discovered.late_destruction", None, incident);

    sim.story_end = at_hour(ymd(2020, 12, 31), 17);
}

/// `parts` amounts summing to `total` exactly: all but the first drawn from `each`, the
/// first the remainder, redrawn until it falls within `first`.
pub(crate) fn split_exact(
    sim: &mut Sim,
    total: u64,
    parts: usize,
    each: std::ops::RangeInclusive<u64>,
    first: std::ops::RangeInclusive<u64>,
) -> Vec<u64> {
    loop {
        let rest: Vec<u64> = (1..parts)
            .map(|_| sim.rng.gen_range(each.clone()))
            .collect();
        let sum: u64 = rest.iter().sum();
        if sum < total && first.contains(&(total - sum)) {
            let mut amounts = vec![total - sum];
            amounts.extend(rest);
            return amounts;
        }
    }
}
