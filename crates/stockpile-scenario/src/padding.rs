//! Routine operations that pad a ledger to `min_entries`: domestic shipments of part of a
//! lot and their receipts, inventory counts that match the book, retained consumption
//! and (U.S.-like, from 2023) small witnessed destructions.
//!
//! One recurring tick does one operation. Its interval adapts so that the padding fills
//! the story's time span: (time left) / (entries still needed). Every operation is chosen
//! from the reference model as it is at that moment, keeps clear of lots the story has
//! claimed or scripted incidents use, and completes within `PADDING_MARGIN_MS`.

use crate::config::Dataset;
use crate::model::Pool;
use crate::sim::{DAY, HOUR, Sim, date_of};
use rand::Rng;
use std::collections::BTreeMap;
use stockpile_core::events::{DestructionBasis, DestructionMethod, InventoryScope, SiteKind};

/// Shortest interval between routine operations: one per simulated second at most.
const TICK_INTERVAL_MIN_MS: i64 = 1_000;

/// Longest interval: padding never leaves a month without routine work.
const TICK_INTERVAL_MAX_MS: i64 = 20 * DAY;

/// Interval once the story's span is over and entries are still missing: short, so that
/// the ledger ends soon after the story (no deadline falls due in an epilogue).
const EPILOGUE_INTERVAL_MS: i64 = 10_000;

/// Average events per tick, as a ratio (8 / 5 = 1.6): shipments are two events (with
/// the receipt), counts and consumption one, destructions three.
const EVENTS_PER_TICK_NUM: u64 = 8;
const EVENTS_PER_TICK_DEN: u64 = 5;

/// Ticks in a row that found nothing to do, after the story's span, before padding gives
/// up (a ledger with nothing left to count or move cannot be padded further).
const IDLE_TICKS_MAX: u32 = 1_000;

/// Most units routine destructions may take in a U.S.-like ledger, so that padding never
/// changes the picture of a largely undestroyed stockpile.
const ROUTINE_DESTRUCTION_UNITS_MAX: u64 = 400_000;

/// Ticks between rebuilds of the candidate lists. A candidate is checked again when it
/// is used, so a stale list only costs a retry.
const CANDIDATES_REFRESH_TICKS: u32 = 256;

/// Share of its peak a retained pool keeps from routine consumption, per cent.
const RETAINED_FLOOR_PERCENT: u64 = 90;

/// Padding state.
#[derive(Debug, Clone)]
pub(crate) struct Padding {
    target: u64,
    window_end: i64,
    story_estimate: u64,
    idle_ticks: u32,
    peak_retained: BTreeMap<String, u64>,
    destroyed_units: u64,
    /// Lots with stockpiled units at a domestic depot that padding may move.
    movable: Vec<usize>,
    /// (lot, site) pairs a routine count may cover.
    countable: Vec<(usize, usize)>,
    ticks_since_refresh: u32,
}

impl Padding {
    fn refresh(sim: &mut Sim) {
        let depots = sim.model.domestic_depots();
        let mut movable = Vec::new();
        let mut countable = Vec::new();
        for lot in 0..sim.model.lots.len() {
            let balances = &sim.model.lots[lot].balances;
            let at_depot = balances
                .iter()
                .any(|((site, pool), _)| *pool == Pool::Stockpiled && depots.contains(site));
            if at_depot && sim.padding_may_touch(&sim.model.lots[lot].id) {
                movable.push(lot);
            }
            if sim.padding_may_count(&sim.model.lots[lot].id) {
                let mut sites: Vec<usize> = balances
                    .keys()
                    .map(|(site, _)| *site)
                    .filter(|&site| {
                        matches!(
                            sim.model.sites[site].kind,
                            SiteKind::Depot | SiteKind::TrainingInstitution
                        ) && sim.model.lots[lot].site_book(site) > 0
                    })
                    .collect();
                sites.dedup();
                countable.extend(sites.into_iter().map(|site| (lot, site)));
            }
        }
        let padding = sim.padding.as_mut().expect("padding runs");
        padding.movable = movable;
        padding.countable = countable;
        padding.ticks_since_refresh = 0;
    }
}

/// Starts padding at `from`, aiming to reach `target` entries by the story's end.
pub(crate) fn start(sim: &mut Sim, target: u64, story_estimate: u64, from: i64) {
    sim.padding = Some(Padding {
        target,
        window_end: sim.story_end,
        story_estimate,
        idle_ticks: 0,
        peak_retained: BTreeMap::new(),
        destroyed_units: 0,
        movable: Vec::new(),
        countable: Vec::new(),
        ticks_since_refresh: CANDIDATES_REFRESH_TICKS,
    });
    sim.at(from, tick);
}

fn tick(sim: &mut Sim) {
    let Some(padding) = sim.padding.as_ref() else {
        return;
    };
    if sim.emitted() >= padding.target {
        return;
    }
    if padding.ticks_since_refresh >= CANDIDATES_REFRESH_TICKS {
        Padding::refresh(sim);
    }
    sim.padding
        .as_mut()
        .expect("checked above")
        .ticks_since_refresh += 1;
    sim.in_padding = true;
    let mut worked = routine_operation(sim);
    if !worked {
        // The lists may be stale: rebuild them and try once more.
        Padding::refresh(sim);
        worked = routine_operation(sim);
    }
    sim.in_padding = false;
    let now = sim.now;
    let (emitted, story_events) = (sim.emitted(), sim.story_events);
    let padding = sim.padding.as_mut().expect("checked above");
    padding.idle_ticks = if worked { 0 } else { padding.idle_ticks + 1 };
    if now >= padding.window_end && padding.idle_ticks > IDLE_TICKS_MAX {
        return;
    }
    let story_left = if now < padding.window_end {
        padding.story_estimate.saturating_sub(story_events)
    } else {
        0
    };
    let needed = padding.target.saturating_sub(emitted + story_left);
    let interval = if now >= padding.window_end {
        EPILOGUE_INTERVAL_MS
    } else if needed == 0 {
        padding.window_end - now
    } else {
        let ticks = (needed * EVENTS_PER_TICK_DEN / EVENTS_PER_TICK_NUM).max(1) as i64;
        ((padding.window_end - now) / ticks).clamp(TICK_INTERVAL_MIN_MS, TICK_INTERVAL_MAX_MS)
    };
    sim.at(now + interval.max(TICK_INTERVAL_MIN_MS), tick);
}

/// One routine operation; false when none was possible.
fn routine_operation(sim: &mut Sim) -> bool {
    let roll = sim.pad_rng.gen_range(0..100);
    match roll {
        0..45 => shipment(sim) || count(sim),
        45..85 => count(sim),
        85..95 => consumption(sim) || count(sim),
        _ => destruction(sim) || shipment(sim) || count(sim),
    }
}

/// Random tries at finding a lot for an operation before giving up on it this tick.
const LOT_TRIES: usize = 8;

/// A domestic shipment of part of a lot between two depots; received intact 4 to 36
/// hours later.
fn shipment(sim: &mut Sim) -> bool {
    let depots = sim.model.domestic_depots();
    if depots.len() < 2 {
        return false;
    }
    for _ in 0..LOT_TRIES {
        let Some(lot) = pick(sim, |padding| &padding.movable) else {
            return false;
        };
        if !sim.padding_may_touch(&sim.model.lots[lot].id) {
            continue;
        }
        let sources: Vec<(usize, u64)> = sim.model.lots[lot]
            .stockpiled_sites()
            .into_iter()
            .filter(|(site, _)| depots.contains(site))
            .collect();
        if sources.is_empty() {
            continue;
        }
        let (from, units) = sources[sim.pad_rng.gen_range(0..sources.len())];
        let others: Vec<usize> = depots
            .iter()
            .copied()
            .filter(|site| *site != from)
            .collect();
        let to = others[sim.pad_rng.gen_range(0..others.len())];
        let quantity = sim.pad_rng.gen_range(1..=(units * 6 / 10).max(1));
        let shipment_id = sim.ship(lot, from, to, quantity, sim.now, None);
        let receipt_t = sim.now + sim.pad_rng.gen_range(4 * HOUR..36 * HOUR);
        sim.schedule_receipt(shipment_id, lot, quantity, receipt_t);
        return true;
    }
    false
}

/// A random element of one of the candidate lists.
fn pick<T: Copy>(sim: &mut Sim, list: impl Fn(&Padding) -> &Vec<T>) -> Option<T> {
    let padding = sim.padding.as_ref().expect("padding runs");
    let candidates = list(padding);
    if candidates.is_empty() {
        return None;
    }
    let index = sim.pad_rng.gen_range(0..candidates.len());
    Some(list(sim.padding.as_ref().expect("padding runs"))[index])
}

/// A sample count of one to four lots at a depot or the training institution, finding
/// exactly the book.
fn count(sim: &mut Sim) -> bool {
    for _ in 0..LOT_TRIES {
        let Some((lot, site)) = pick(sim, |padding| &padding.countable) else {
            return false;
        };
        if sim.model.lots[lot].site_book(site) == 0
            || !sim.padding_may_count(&sim.model.lots[lot].id)
        {
            continue;
        }
        let mut lots = vec![lot];
        let more = sim.pad_rng.gen_range(0..=3);
        for _ in 0..more * 2 {
            if lots.len() > more {
                break;
            }
            let Some((other, other_site)) = pick(sim, |padding| &padding.countable) else {
                break;
            };
            if other_site == site
                && !lots.contains(&other)
                && sim.model.lots[other].site_book(site) > 0
                && sim.padding_may_count(&sim.model.lots[other].id)
            {
                lots.push(other);
            }
        }
        lots.sort_unstable();
        sim.inventory(site, &lots, InventoryScope::Sample, sim.now);
        return true;
    }
    false
}

/// One to three retained mines used in routine detector calibration, while the pool
/// stays above `RETAINED_FLOOR_PERCENT` of its peak (never in the Finland-like ledger, whose retained figures
/// are the real ones).
fn consumption(sim: &mut Sim) -> bool {
    if sim.ds == Dataset::FinlandLike || sim.sites.institution.is_empty() {
        return false;
    }
    let institution = sim.sites.institution.clone();
    let lots = sim.retained_lots(&institution);
    let total: u64 = lots.iter().map(|(_, units)| units).sum();
    let padding = sim.padding.as_mut().expect("padding runs");
    let peak = padding
        .peak_retained
        .entry(institution.clone())
        .or_insert(0);
    *peak = (*peak).max(total);
    if total == 0 || total * 100 <= *peak * RETAINED_FLOOR_PERCENT {
        return false;
    }
    let (lot, held) = lots[sim.pad_rng.gen_range(0..lots.len())];
    if !sim.padding_may_count(&sim.model.lots[lot].id.clone()) {
        return false;
    }
    let quantity = sim.pad_rng.gen_range(1..=3).min(held);
    sim.consume(
        lot,
        &institution,
        quantity,
        "routine detector calibration (synthetic)",
        sim.now,
    );
    true
}

/// A small witnessed destruction of part of a lot (U.S.-like, from 2023, well before
/// the story's end so the certifier's round covers it): shipped to the facility,
/// received the next day, destroyed the day after.
fn destruction(sim: &mut Sim) -> bool {
    let padding = sim.padding.as_ref().expect("padding runs");
    if sim.ds != Dataset::UsLike
        || date_of(sim.now).year() < 2023
        || sim.now > padding.window_end - 60 * DAY
        || padding.destroyed_units >= ROUTINE_DESTRUCTION_UNITS_MAX
        || sim.sites.facility.is_empty()
    {
        return false;
    }
    let depots = sim.model.domestic_depots();
    let facility = sim.site_ix(&sim.sites.facility.clone());
    for _ in 0..LOT_TRIES {
        let Some(lot) = pick(sim, |padding| &padding.movable) else {
            return false;
        };
        if !sim.padding_may_touch(&sim.model.lots[lot].id) {
            continue;
        }
        let Some((from, units)) = sim.model.lots[lot]
            .stockpiled_sites()
            .into_iter()
            .find(|(site, units)| depots.contains(site) && *units >= 100)
        else {
            continue;
        };
        let quantity = sim.pad_rng.gen_range(100..=units.min(1_500));
        sim.padding.as_mut().expect("padding runs").destroyed_units += quantity;
        let shipment_id = sim.ship(lot, from, facility, quantity, sim.now, None);
        let receipt_t = sim.now + DAY;
        sim.schedule_receipt(shipment_id, lot, quantity, receipt_t);
        let destroy_t = receipt_t + DAY;
        sim.at(destroy_t, move |sim| {
            sim.in_padding = true;
            let start = date_of(sim.now);
            let method = DestructionMethod::ContainedDetonation;
            let id = sim.destroy(
                lot,
                facility,
                quantity,
                start,
                sim.now,
                method,
                DestructionBasis::Article4,
                true,
            );
            sim.await_certificate(id, lot, quantity);
            sim.in_padding = false;
        });
        return true;
    }
    false
}
