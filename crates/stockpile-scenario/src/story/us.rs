//! A. U.S.-like (primary): `US_2014` (27 Jun 2014; 23 Sep 2014) → `US_2020` (31 Jan
//! 2020) → `US_2022` (21 Jun 2022), starting from 3,000,000 units ("some three million",
//! June 2014; three million, 2022). Types, lots, sites and the Korea share are synthetic:
//! SYN-A…SYN-D in lots of 5,000–20,000 at two CONUS depots and one depot on the Korean
//! Peninsula, whose lots are designated for the defense of the Republic of Korea.
//!
//! Little is destroyed until 2023 (two lots a year in 2015 and 2016, then nothing: flag 16
//! for 2017, 2018, 2019 and 2022). One transfer is refused (2016), one approved for
//! destruction abroad with its shipment (2023); a 2024 approval for operational use is a
//! hostile submission the sequencer refuses, as is a shipment under an unknown key.
//! Scripted incidents (synthetic): a receipt two short with a broken seal (2016), a count
//! short of the book explained by a loss report (2019–20), a destruction reported 1,078
//! short and corrected (2023), an unwitnessed destruction (2023).

use super::{
    LotSpec, Registry, Request, SiteSpec, TypeSpec, approval, hostile_approval, lot_specs,
    open_ledger, pick, refuse_transfer, register_site, request_transfer,
    schedule_annual_inventories, schedule_consumption, schedule_declarations, schedule_retention,
    schedule_rogue_shipment,
};
use crate::keys::ScenarioKeys;
use crate::sim::{DAY, DestroyPlan, Sim, at_hour, ymd};
use rand::Rng;
use stockpile_core::events::{
    DestructionMethod, EventBody, LotDesignatedForKoreaDefense, Purpose, Regime, RegimeConfigured,
    Role, SiteKind, TransferDirection, TypeQuantity,
};
use stockpile_core::time::Date;

/// The synthetic type mix of the 3,000,000 units.
pub(crate) const TYPE_UNITS: [(&str, &str, u64); 4] = [
    ("SYN-A", "A", 1_050_000),
    ("SYN-B", "B", 900_000),
    ("SYN-C", "C", 600_000),
    ("SYN-D", "D", 450_000),
];

/// Share of lots stored on the Korean Peninsula and designated for its defense, per cent
/// (synthetic).
const KOREA_SHARE_PERCENT: u32 = 18;

fn types() -> Vec<TypeSpec> {
    let spec = |type_id, designation, category, fusing, explosive_mg| TypeSpec {
        type_id,
        designation,
        category,
        activation_modes: &["pressure", "tripwire (synthetic)"],
        self_destructing: true,
        dimensions_mm: "synthetic",
        fusing,
        explosive_type: "RDX composition (synthetic)",
        explosive_mg,
        metal_mg: 30_000,
    };
    vec![
        spec(
            "SYN-A",
            "SYN-A artillery-delivered scatterable mine (synthetic)",
            "antipersonnel, remotely delivered, self-destructing (synthetic)",
            "self-destruct fuze, 4 h / 48 h (synthetic)",
            21_000,
        ),
        spec(
            "SYN-B",
            "SYN-B air-delivered scatterable mine (synthetic)",
            "antipersonnel, remotely delivered, self-destructing (synthetic)",
            "self-destruct fuze, 4 h / 48 h / 15 d (synthetic)",
            18_000,
        ),
        spec(
            "SYN-C",
            "SYN-C vehicle-launched scatterable mine (synthetic)",
            "antipersonnel, remotely delivered, self-destructing (synthetic)",
            "self-destruct fuze, 4 h / 48 h / 15 d (synthetic)",
            18_000,
        ),
        spec(
            "SYN-D",
            "SYN-D man-portable scatterable mine system (synthetic)",
            "antipersonnel, hand-emplaced dispenser, self-destructing (synthetic)",
            "self-destruct fuze, 4 h (synthetic)",
            20_000,
        ),
    ]
}

fn configure_regime(sim: &mut Sim, regime: Regime, date: Date, policy_dates: Vec<Date>) {
    let t = sim.on_day(date, 13, 16);
    sim.at(t, move |sim| {
        let body = EventBody::RegimeConfigured(RegimeConfigured {
            state_id: "US".into(),
            regime,
            eif_date: date,
            policy_dates,
            article4_deadline: None,
            initial_report_due: None,
        });
        sim.emit(Role::Registrar, sim.now, body);
    });
}

pub(crate) fn build(sim: &mut Sim, keys: &ScenarioKeys) {
    let start = ymd(2014, 6, 27);
    let mut sites = Registry::standard_sites(
        sim,
        "US",
        [
            "SYN Depot Alpha, CONUS",
            "SYN Depot Bravo, CONUS",
            "SYN Depot Kilo, Republic of Korea",
        ],
        "SYN Army demilitarization facility",
        "SYN Engineer School countermine training center",
    );
    sites[2].country_code = "KR";
    sites[2].in_korean_peninsula = true;
    open_ledger(
        sim,
        keys,
        Registry {
            regime: Regime::Us2014,
            eif: start,
            policy_dates: vec![start, ymd(2014, 9, 23)],
            sites,
            types: types(),
            institution_name: "SYN Engineer School countermine training center".into(),
            institution_purposes: vec![
                Purpose::DetectionTraining,
                Purpose::ClearanceTraining,
                Purpose::DestructionTraining,
            ],
            institution_ceiling: 2_000,
            start,
        },
    );
    let depots = sim.sites.depots.clone();
    let (conus, korea) = (
        vec![depots[0].clone(), depots[1].clone()],
        depots[2].clone(),
    );
    let mut specs: Vec<LotSpec> = Vec::new();
    for (type_id, short, units) in TYPE_UNITS {
        let mut lots = lot_specs(sim, type_id, short, units, &conus, 2014);
        for lot in &mut lots {
            if sim.rng.gen_range(0..100) < KOREA_SHARE_PERCENT {
                lot.site_id = korea.clone();
            }
        }
        specs.extend(lots);
    }
    // Interleave the types, as a declaration campaign site by site would.
    specs.sort_by_key(|spec| (spec.site_id.clone(), spec.lot_id.clone()));
    let korea_lots: Vec<(String, u64)> = specs
        .iter()
        .filter(|spec| spec.site_id == korea)
        .map(|spec| (spec.lot_id.clone(), spec.quantity))
        .collect();
    let conus_lots: Vec<(String, String, u64)> = specs
        .iter()
        .filter(|spec| spec.site_id != korea)
        .map(|spec| (spec.lot_id.clone(), spec.type_id.clone(), spec.quantity))
        .collect();
    schedule_declarations(sim, specs, ymd(2014, 7, 1), ymd(2014, 7, 31));
    sim.padding_from = at_hour(ymd(2014, 8, 4), 8);

    // After the 23 September policy: every lot on the Peninsula is designated for the
    // defense of the Republic of Korea.
    let count = korea_lots.len().max(1) as i64;
    for (number, (lot_id, units)) in korea_lots.into_iter().enumerate() {
        let date = ymd(2014, 10, 6).add_days(number as i64 * 25 / count);
        let t = sim.on_day(date, 9, 16);
        sim.claim(&lot_id, t - DAY);
        let site_id = korea.clone();
        sim.at(t, move |sim| {
            let body = EventBody::LotDesignatedForKoreaDefense(LotDesignatedForKoreaDefense {
                lot_id,
                quantity: units,
                authority: "SYN-US Secretary of Defense designation (synthetic)".into(),
                justification: "required for the defense of the Republic of Korea (synthetic)"
                    .into(),
                review_date: Some(ymd(2015, 10, 1)),
                site_id,
            });
            sim.emit(Role::Registrar, sim.now, body);
        });
    }

    // Roles of the CONUS lots in the story, chosen once.
    let ids: Vec<String> = conus_lots.iter().map(|(id, _, _)| id.clone()).collect();
    let of_type = |type_id: &str| -> Vec<String> {
        conus_lots
            .iter()
            .filter(|(_, t, units)| t == type_id && *units >= 15_000)
            .map(|(id, _, _)| id.clone())
            .collect()
    };
    let retained_source = pick(sim, &of_type("SYN-A"), 1)
        .pop()
        .expect("a large SYN-A lot");
    let export_lot = pick(sim, &of_type("SYN-C"), 1)
        .pop()
        .expect("a large SYN-C lot");
    let reserved = [retained_source.clone(), export_lot.clone()];
    let candidates: Vec<String> = ids
        .iter()
        .filter(|id| !reserved.contains(id))
        .cloned()
        .collect();
    let chosen = pick(sim, &candidates, 9);
    let (destroyed, counted_lot) = (&chosen[..8], chosen[8].clone());

    // Retention for countermine training, and its yearly use.
    schedule_retention(
        sim,
        ymd(2014, 11, 12),
        vec![(retained_source, 1_500)],
        Purpose::ClearanceTraining,
        None,
    );
    let mut uses = Vec::new();
    for year in 2015..=2024 {
        uses.push((
            ymd(year, 4, 8),
            sim.rng.gen_range(80..=140),
            "countermine detector and dog training (synthetic)",
        ));
    }
    schedule_consumption(sim, uses);
    schedule_annual_inventories(sim, 2014, 2024);

    // Destruction: two lots a year in 2015 and 2016, none again until 2023.
    let windows = [
        (ymd(2015, 5, 4), ymd(2015, 5, 15)),
        (ymd(2015, 10, 5), ymd(2015, 10, 16)),
        (ymd(2016, 4, 4), ymd(2016, 4, 15)),
        (ymd(2016, 9, 12), ymd(2016, 9, 23)),
        (ymd(2023, 6, 5), ymd(2023, 6, 16)),
        (ymd(2023, 9, 11), ymd(2023, 9, 22)),
        (ymd(2024, 3, 4), ymd(2024, 3, 15)),
        (ymd(2024, 9, 9), ymd(2024, 9, 20)),
    ];
    for (number, (lot_id, (from, to))) in destroyed.iter().zip(windows).enumerate() {
        let mut plan = DestroyPlan::new(lot_id, from, to, DestructionMethod::ContainedDetonation);
        match number {
            2 => plan.short_receipt = true,
            4 => plan.under_report = 1_078,
            5 => plan.witnessed = false,
            _ => {}
        }
        if matches!(number, 2 | 4 | 5) {
            sim.exclude(lot_id);
        }
        sim.plan_destruction(plan);
    }
    sim.start_certifier(ymd(2015, 5, 10), ymd(2024, 12, 10));
    let incident = "undesignated stock did not fall in a calendar year under US_2014 or US_2022";
    sim.expect_flag(16, "korea.undesignated_not_falling", None, incident);

    // The refused transfer.
    let request = Request {
        request_id: format!("{}-REQ-2016-01", sim.code),
        direction: TransferDirection::Export,
        items: vec![TypeQuantity {
            type_id: "SYN-B".into(),
            quantity: 20_000,
        }],
        purpose: Purpose::OperationalUse,
        counterparty: "SYN State Q (synthetic)".into(),
        destination: "SYN State Q (synthetic)".into(),
    };
    let (t, t2) = (
        sim.on_day(ymd(2016, 2, 8), 9, 15),
        sim.on_day(ymd(2016, 3, 1), 9, 15),
    );
    sim.at(t, move |sim| {
        request_transfer(sim, &request, sim.now);
        sim.at(t2, move |sim| {
            let reasoning = "U.S. policy of 23 September 2014: no assistance to anti-personnel landmine use outside \
                             the Korean Peninsula (synthetic)";
            refuse_transfer(sim, &request.request_id, "US-2014-POLICY", reasoning, sim.now);
        });
    });

    // A count short of the book in the 2019 annual inventory, explained in January 2020.
    sim.exclude(&counted_lot);
    let bravo = depots[1].clone();
    let counted = counted_lot.clone();
    sim.at(at_hour(ymd(2019, 11, 4), 8), move |sim| {
        let lot = sim.model.lot(&counted);
        let site = sim.model.lots[lot]
            .stockpiled_sites()
            .first()
            .map(|(site, _)| *site)
            .unwrap_or(sim.site_ix(&bravo));
        sim.set_shortfall(
            lot,
            site,
            12,
            "annual inventory finds 12 units fewer than the book (synthetic incident)",
        );
    });
    let t = sim.on_day(ymd(2020, 1, 21), 9, 15);
    sim.at(t, move |sim| {
        let lot = sim.model.lot(&counted_lot);
        let site = sim.model.lots[lot].stockpiled_sites().first().map(|(site, _)| *site).expect("lot in stock");
        let circumstances = "investigation of the 2019 inventory difference: 12 units consumed in an unrecorded \
                             2012 demolition range exercise (synthetic incident)";
        sim.report_loss(lot, site, 12, circumstances, sim.now);
        sim.explain_shortfall(lot, site);
    });

    configure_regime(
        sim,
        Regime::Us2020,
        ymd(2020, 1, 31),
        vec![ymd(2020, 1, 31)],
    );
    configure_regime(
        sim,
        Regime::Us2022,
        ymd(2022, 6, 21),
        vec![ymd(2022, 6, 21)],
    );

    // 2023: a transfer approved for destruction abroad, and its shipment.
    sim.exclude(&export_lot);
    let partner = SiteSpec {
        site_id: format!("{}-PARTNER-DEMIL", sim.code),
        name: "SYN partner-State destruction facility, State XA (synthetic)".into(),
        kind: SiteKind::DestructionFacility,
        country_code: "XA",
        in_korean_peninsula: false,
    };
    let t = sim.on_day(ymd(2023, 2, 1), 9, 12);
    let (t2, t3, t4) = (
        sim.on_day(ymd(2023, 2, 15), 9, 15),
        sim.on_day(ymd(2023, 3, 10), 9, 15),
        sim.on_day(ymd(2023, 4, 12), 7, 10),
    );
    sim.claim(&export_lot, t);
    sim.at(t, move |sim| {
        register_site(sim, &partner, sim.now);
        let lot = sim.model.lot(&export_lot);
        let units = sim.domestic_stock(lot);
        let request = Request {
            request_id: format!("{}-REQ-2023-01", sim.code),
            direction: TransferDirection::Export,
            items: vec![TypeQuantity {
                type_id: "SYN-C".into(),
                quantity: units,
            }],
            purpose: Purpose::Destruction,
            counterparty: "SYN partner State XA (synthetic)".into(),
            destination: partner.name.clone(),
        };
        sim.at(t2, move |sim| {
            request_transfer(sim, &request, sim.now);
            sim.at(t3, move |sim| {
                let site = Some(partner.site_id.clone());
                let body = approval(
                    sim,
                    &request,
                    "US-2022-DESTRUCTION",
                    Purpose::Destruction,
                    site,
                    sim.now,
                );
                sim.emit(Role::ExportControl, sim.now, body);
                sim.at(t4, move |sim| {
                    let to = sim.site_ix(&partner.site_id);
                    let when = sim.now;
                    sim.gather(lot, units, to, when, Some(request.request_id.clone()));
                });
            });
        });
    });

    schedule_rogue_shipment(sim, ymd(2024, 6, 12));

    // November 2024: a decision to supply APL for operational use. Recorded as what it is
    // (a request), never as an ordinary approval: the approval is refused by the sequencer.
    let request = Request {
        request_id: format!("{}-REQ-2024-01", sim.code),
        direction: TransferDirection::Export,
        items: vec![TypeQuantity {
            type_id: "SYN-A".into(),
            quantity: 10_000,
        }],
        purpose: Purpose::OperationalUse,
        counterparty: "SYN State U (synthetic)".into(),
        destination: "SYN State U (synthetic)".into(),
    };
    let (t, t2) = (
        sim.on_day(ymd(2024, 11, 18), 9, 15),
        sim.on_day(ymd(2024, 11, 20), 9, 15),
    );
    sim.at(t, move |sim| {
        request_transfer(sim, &request, sim.now);
        sim.at(t2, move |sim| {
            let description = "an approval of an export for operational use (modelled on the November 2024 \
                               decision), which no U.S. basis allows (synthetic hostile submission)";
            hostile_approval(sim, &request, "US-2024-POLICY-EXCEPTION", Purpose::OperationalUse, None, sim.now, description);
        });
    });

    sim.story_end = at_hour(ymd(2024, 12, 31), 17);
}
