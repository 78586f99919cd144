//! The flags time alone brings, raised by [`ComplianceState::advance_to`].
//!
//! The ledger calls `advance_to` with the date of the next entry whenever the date
//! changes, so "today" is always the recorded date of an entry and a replay raises the
//! same flags at the same indices. Each flag is raised once: a marker on the lot,
//! shipment, destruction or institution (or on the state, for Article 4) remembers it.
//!
//! A new date costs what fell due, not what the ledger ever held: [`Deadlines`] indexes
//! every pending deadline of flags 12, 14 and 18 by its last allowed date, and
//! `advance_to` drains only the dates before the new one. A shipment leaves the index when
//! it is received, a destruction when it is first certified; what is drained is flagged
//! (or, for a discovered lot with nothing left to destroy, waits among the lots past
//! their six months, judged on every new date until it is flagged). Flags raised together
//! come in id order, as a scan of the maps keyed by id would give them.
//!
//! - Flag 12 `shipment.overdue`: a shipment in transit more than `TRANSIT_DAYS_MAX` days.
//! - Flag 13 `article4.deadline_missed`: under `APMBC`, APM stock not retained is still
//!   held after EIF + 4 years (lots discovered after the deadline have their own clock).
//! - Flag 14 `discovered.not_destroyed_in_time`: a discovered lot still holds APM units
//!   not retained `DISCOVERED_DESTRUCTION_DAYS_MAX` days after discovery.
//! - Flag 16 `korea.undesignated_not_falling`: at each new year under `US_2014` or
//!   `US_2022`, undesignated APM stock did not fall over the whole past calendar year.
//! - Flag 17 `retention.unchanged`: at each new year, an institution's retained total has
//!   not changed (no retention, no consumption, no destruction of excess) for
//!   `RETENTION_UNCHANGED_YEARS` years.
//! - Flag 18 `destruction.uncertified`: no certificate `CERTIFICATION_DAYS_MAX` days
//!   after a destruction ended.
//!
//! Flag 21 (reporting deadlines) waits for the report events of the second release
//! (`Article7ReportSubmitted`): without them there is nothing to compare a deadline with.

use super::book::Slot;
use super::compact::{LotIx, ShipIx};
use super::{ComplianceState, Flag, FlagRule, LotBook};
use crate::events::Regime;
use crate::limits::{
    CERTIFICATION_DAYS_MAX, DISCOVERED_DESTRUCTION_DAYS_MAX, RETENTION_UNCHANGED_YEARS,
    TRANSIT_DAYS_MAX,
};
use crate::time::Date;
use std::collections::{BTreeMap, BTreeSet};

/// Pending deadlines of the time-driven flags, keyed by the last date that is still in
/// time: the flag is due on any later date. Bounded by the shipments in transit, the
/// destructions not yet certified (within their year) and the discovered lots.
#[derive(Debug, Clone, Default)]
pub(super) struct Deadlines {
    /// Flag 12: shipments in transit, by `date + TRANSIT_DAYS_MAX`.
    shipments: BTreeMap<Date, Vec<ShipIx>>,
    /// Flag 18: uncertified destructions (index and event id), by
    /// `end_date + CERTIFICATION_DAYS_MAX`.
    destructions: BTreeMap<Date, Vec<(u32, String)>>,
    /// Flag 14: discovered APM lots, by `found + DISCOVERED_DESTRUCTION_DAYS_MAX`.
    discovered: BTreeMap<Date, Vec<LotIx>>,
    /// Discovered lots past their six months and not yet flagged: flagged on the first
    /// new date they still hold stock.
    discovered_due: BTreeSet<LotIx>,
}

/// Removes and returns the entries of `index` due on `date`: those keyed before it.
fn drain_due<T>(index: &mut BTreeMap<Date, Vec<T>>, date: Date) -> Vec<T> {
    if index
        .first_key_value()
        .is_none_or(|(first, _)| *first >= date)
    {
        return Vec::new();
    }
    let later = index.split_off(&date);
    std::mem::replace(index, later)
        .into_values()
        .flatten()
        .collect()
}

/// Removes the entry matching `matches` under `key`.
fn remove_pending<T>(index: &mut BTreeMap<Date, Vec<T>>, key: Date, matches: impl Fn(&T) -> bool) {
    if let Some(pending) = index.get_mut(&key) {
        pending.retain(|item| !matches(item));
        if pending.is_empty() {
            index.remove(&key);
        }
    }
}

impl Deadlines {
    pub(super) fn shipment_sent(&mut self, date: Date, shipment: ShipIx) {
        let key = date.add_days(TRANSIT_DAYS_MAX);
        self.shipments.entry(key).or_default().push(shipment);
    }

    pub(super) fn shipment_closed(&mut self, date: Date, shipment: ShipIx) {
        let key = date.add_days(TRANSIT_DAYS_MAX);
        remove_pending(&mut self.shipments, key, |s| *s == shipment);
    }

    pub(super) fn destruction_ended(&mut self, end_date: Date, destruction: u32, event_id: &str) {
        let key = end_date.add_days(CERTIFICATION_DAYS_MAX);
        self.destructions
            .entry(key)
            .or_default()
            .push((destruction, event_id.to_string()));
    }

    pub(super) fn destruction_certified(&mut self, end_date: Date, destruction: u32) {
        let key = end_date.add_days(CERTIFICATION_DAYS_MAX);
        remove_pending(&mut self.destructions, key, |(d, _)| *d == destruction);
    }

    pub(super) fn discovery_declared(&mut self, found: Date, lot: LotIx) {
        let key = found.add_days(DISCOVERED_DESTRUCTION_DAYS_MAX);
        self.discovered.entry(key).or_default().push(lot);
    }
}

fn time_flag(
    rule: FlagRule,
    code: &str,
    index: u64,
    event_ids: Vec<String>,
    message: String,
) -> Flag {
    Flag {
        rule,
        code: code.to_string(),
        index,
        event_ids,
        message,
    }
}

/// Held APM units Article 4 requires destroyed: stockpiled, designated or in transit.
fn is_unretained_stock(slot: Slot) -> bool {
    matches!(slot, Slot::Stockpiled | Slot::Korea | Slot::InTransit(_))
}

/// Units the Korea rule wants falling: held, neither retained nor designated.
fn is_undesignated_stock(slot: Slot) -> bool {
    matches!(slot, Slot::Stockpiled | Slot::InTransit(_))
}

impl ComplianceState {
    /// APM units in slots matching `filter`, over the lots matching `lots`.
    fn apm_units(&self, lots: impl Fn(&LotBook) -> bool, filter: fn(Slot) -> bool) -> u64 {
        self.lots
            .items()
            .map(|(_, lot)| lot)
            .filter(|lot| lot.apm && lots(lot))
            .fold(0u64, |sum, lot| {
                sum.saturating_add(lot.units_where(|_, slot| filter(slot)))
            })
    }

    pub(super) fn advance_clock(&mut self, date: Date, index: u64) -> Vec<Flag> {
        let Some(previous) = self.clock.replace(date) else {
            return self.daily_checks(date, index);
        };
        if date <= previous {
            // Time never runs backwards here; a late or repeated call changes nothing.
            self.clock = Some(previous);
            return Vec::new();
        }
        let mut flags = Vec::new();
        for year in previous.year() + 1..=date.year() {
            if let Some(new_year) = Date::from_ymd(year, 1, 1) {
                self.korea_rule(new_year, index, &mut flags);
                self.retention_unchanged(new_year, index, &mut flags);
            }
        }
        flags.extend(self.daily_checks(date, index));
        flags
    }

    fn daily_checks(&mut self, date: Date, index: u64) -> Vec<Flag> {
        let mut flags = Vec::new();
        self.article4_deadline(date, index, &mut flags);
        self.discovered_stock(date, index, &mut flags);
        self.shipments_overdue(date, index, &mut flags);
        self.certificates_overdue(date, index, &mut flags);
        flags
    }

    /// Flag 16, judged on 1 January of `new_year` for the year that just ended.
    fn korea_rule(&mut self, new_year: Date, index: u64, flags: &mut Vec<Flag>) {
        let Some(regime) = &self.regime else { return };
        let end = self.apm_units(|_| true, is_undesignated_stock);
        let in_force = matches!(regime.regime(), Regime::Us2014 | Regime::Us2022);
        if in_force
            && let Some(start) = self.korea_year_start_units
            && end >= start
            && end > 0
        {
            flags.push(time_flag(
                FlagRule::KoreaRule,
                "korea.undesignated_not_falling",
                index,
                vec![regime.event_id.clone()],
                format!(
                    "undesignated APM stock went from {start} to {end} units during {} under {:?}: it did not fall",
                    new_year.year() - 1,
                    regime.regime()
                ),
            ));
        }
        // The first (partial) year has no start figure: only whole years are judged.
        self.korea_year_start_units = Some(end);
    }

    /// Flag 17 `retention.unchanged`, judged on 1 January.
    fn retention_unchanged(&mut self, new_year: Date, index: u64, flags: &mut Vec<Flag>) {
        let in_id_order: Vec<u32> = self
            .institutions
            .iter_with_ix()
            .map(|(_, ix, _)| ix)
            .collect();
        for ix in in_id_order {
            let institution = self.institutions.at_mut(ix);
            let Some(last_change) = institution.last_change else {
                continue;
            };
            if institution.retained_units == 0
                || institution.unchanged_flagged
                || last_change.add_years(RETENTION_UNCHANGED_YEARS) > new_year
            {
                continue;
            }
            institution.unchanged_flagged = true;
            flags.push(time_flag(
                FlagRule::Retention,
                "retention.unchanged",
                index,
                vec![institution.event_id.clone()],
                format!(
                    "institution {} has retained {} units unchanged since {last_change}, with no \
                     consumption, for more than {RETENTION_UNCHANGED_YEARS} years",
                    institution.info.institution_id, institution.retained_units
                ),
            ));
        }
    }

    /// Flag 13 `article4.deadline_missed`, raised once and never cleared.
    fn article4_deadline(&mut self, date: Date, index: u64, flags: &mut Vec<Flag>) {
        let Some(regime) = &self.regime else { return };
        let Some(deadline) = regime.article4_deadline() else {
            return;
        };
        if self.article4_flagged || date <= deadline {
            return;
        }
        let regime_event_id = regime.event_id.clone();
        let units = self.apm_units(
            |lot| !self.discovered_after_deadline(lot),
            is_unretained_stock,
        );
        if units == 0 {
            return;
        }
        self.article4_flagged = true;
        flags.push(time_flag(
            FlagRule::Article4,
            "article4.deadline_missed",
            index,
            vec![regime_event_id],
            format!("on {date}, after the Article 4 deadline {deadline}, {units} APM units not retained are still held"),
        ));
    }

    /// Flag 14 `discovered.not_destroyed_in_time`, once per lot.
    fn discovered_stock(&mut self, date: Date, index: u64, flags: &mut Vec<Flag>) {
        let due = drain_due(&mut self.deadlines.discovered, date);
        self.deadlines.discovered_due.extend(due);
        let mut overdue: Vec<(LotIx, u64)> = self
            .deadlines
            .discovered_due
            .iter()
            .map(|lot| (*lot, self.lot_book(*lot)))
            .filter(|(_, lot)| !lot.discovery_flagged)
            .map(|(ix, lot)| (ix, lot.units_where(|_, slot| is_unretained_stock(slot))))
            .filter(|(_, left)| *left > 0)
            .collect();
        overdue.sort_by(|(a, _), (b, _)| self.lot_id(*a).cmp(self.lot_id(*b)));
        for (ix, left) in overdue {
            self.deadlines.discovered_due.remove(&ix);
            let lot = self.lots.at_mut(ix.0);
            lot.discovery_flagged = true;
            let found = lot
                .info
                .basis_date
                .expect("discovered lots have a discovery date");
            flags.push(time_flag(
                FlagRule::DiscoveredStock,
                "discovered.not_destroyed_in_time",
                index,
                vec![lot.event_id.clone()],
                format!(
                    "discovered lot {} (found {found}) still holds {left} units on {date}, more than \
                     {DISCOVERED_DESTRUCTION_DAYS_MAX} days after discovery",
                    lot.lot_id()
                ),
            ));
        }
    }

    /// Flag 12 `shipment.overdue`, once per shipment.
    fn shipments_overdue(&mut self, date: Date, index: u64, flags: &mut Vec<Flag>) {
        let mut due = drain_due(&mut self.deadlines.shipments, date);
        if due.is_empty() {
            return;
        }
        due.sort_by(|a, b| self.shipments.id(*a).cmp(self.shipments.id(*b)));
        for shipment in due {
            let record = *self.shipments.record(shipment);
            let Some(open) = self.shipments.open(shipment) else {
                continue;
            };
            if open.overdue_flagged {
                continue;
            }
            let flag = time_flag(
                FlagRule::Shipment,
                "shipment.overdue",
                index,
                vec![open.event_id.clone()],
                format!(
                    "shipment {} of {} units of lot {} from {} to {}, shipped {}, is still in transit on {date} \
                     (more than {TRANSIT_DAYS_MAX} days)",
                    self.shipments.id(shipment),
                    record.units,
                    self.lot_id(record.lot),
                    self.site_id(open.from_site),
                    self.site_id(record.to_site),
                    open.date
                ),
            );
            flags.push(flag);
            if let Some(open) = self.shipments.open_mut(shipment) {
                open.overdue_flagged = true;
            }
        }
    }

    /// Flag 18 `destruction.uncertified`, once per destruction.
    fn certificates_overdue(&mut self, date: Date, index: u64, flags: &mut Vec<Flag>) {
        let mut due = drain_due(&mut self.deadlines.destructions, date);
        due.sort_by(|(_, a), (_, b)| a.cmp(b));
        for (ix, event_id) in due {
            let destruction = self.destructions[ix as usize];
            if destruction.certificates > 0 || destruction.uncertified_flagged {
                continue;
            }
            let draw = &self.draws[destruction.draw as usize];
            let site = match draw.source {
                super::DrawSource::Fixed { site, .. } => site,
                source => panic!("destruction {event_id} draws from {source:?}"),
            };
            let message = format!(
                "destruction {event_id} of lot {} at site {}, ended {}, has no certificate on {date} (more than \
                 {CERTIFICATION_DAYS_MAX} days)",
                self.lot_id(draw.lot),
                self.site_id(site),
                destruction.end_date
            );
            self.destructions[ix as usize].uncertified_flagged = true;
            flags.push(time_flag(
                FlagRule::DestructionEvidence,
                "destruction.uncertified",
                index,
                vec![event_id],
                message,
            ));
        }
    }
}
