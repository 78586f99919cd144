//! The flags time alone brings, raised by [`ComplianceState::advance_to`].
//!
//! The ledger calls `advance_to` with the date of the next entry whenever the date
//! changes, so "today" is always the recorded date of an entry and a replay raises the
//! same flags at the same indices. Each flag is raised once: a marker on the lot,
//! shipment, destruction or institution (or on the state, for Article 4) remembers it.
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

use super::{Bucket, ComplianceState, Flag, FlagRule, Lot};
use crate::events::{LotBasis, Regime};
use crate::limits::{
    CERTIFICATION_DAYS_MAX, DISCOVERED_DESTRUCTION_DAYS_MAX, RETENTION_UNCHANGED_YEARS,
    TRANSIT_DAYS_MAX,
};
use crate::time::Date;

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
fn is_unretained_stock(bucket: &Bucket) -> bool {
    matches!(
        bucket,
        Bucket::Stockpiled | Bucket::Korea | Bucket::InTransit { .. }
    )
}

/// Units the Korea rule wants falling: held, neither retained nor designated.
fn is_undesignated_stock(bucket: &Bucket) -> bool {
    matches!(bucket, Bucket::Stockpiled | Bucket::InTransit { .. })
}

impl ComplianceState {
    /// APM units in buckets matching `filter`, over the lots matching `lots`.
    fn apm_units(&self, lots: impl Fn(&Lot) -> bool, filter: fn(&Bucket) -> bool) -> u64 {
        self.lots
            .values()
            .filter(|lot| self.is_apm(lot) && lots(lot))
            .fold(0u64, |sum, lot| {
                sum.saturating_add(lot.units_where(|_, bucket| filter(bucket)))
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
        for (institution_id, institution) in &mut self.institutions {
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
                    "institution {institution_id} has retained {} units unchanged since {last_change}, with no \
                     consumption, for more than {RETENTION_UNCHANGED_YEARS} years",
                    institution.retained_units
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
        let overdue: Vec<(String, Date, u64)> = self
            .lots
            .values()
            .filter(|lot| {
                lot.info.basis == LotBasis::Discovered && !lot.discovery_flagged && self.is_apm(lot)
            })
            .filter_map(|lot| {
                let found = lot.info.basis_date?;
                let left = lot.units_where(|_, bucket| is_unretained_stock(bucket));
                (date > found.add_days(DISCOVERED_DESTRUCTION_DAYS_MAX) && left > 0)
                    .then(|| (lot.lot_id().to_string(), found, left))
            })
            .collect();
        for (lot_id, found, left) in overdue {
            let lot = self.lots.get_mut(&lot_id).expect("collected above");
            lot.discovery_flagged = true;
            flags.push(time_flag(
                FlagRule::DiscoveredStock,
                "discovered.not_destroyed_in_time",
                index,
                vec![lot.event_id.clone()],
                format!(
                    "discovered lot {lot_id} (found {found}) still holds {left} units on {date}, more than \
                     {DISCOVERED_DESTRUCTION_DAYS_MAX} days after discovery"
                ),
            ));
        }
    }

    /// Flag 12 `shipment.overdue`, once per shipment.
    fn shipments_overdue(&mut self, date: Date, index: u64, flags: &mut Vec<Flag>) {
        for (shipment_id, shipment) in &mut self.shipments {
            if !shipment.is_open()
                || shipment.overdue_flagged
                || date <= shipment.date.add_days(TRANSIT_DAYS_MAX)
            {
                continue;
            }
            shipment.overdue_flagged = true;
            flags.push(time_flag(
                FlagRule::Shipment,
                "shipment.overdue",
                index,
                vec![shipment.event_id.clone()],
                format!(
                    "shipment {shipment_id} of {} units of lot {} from {} to {}, shipped {}, is still in transit on \
                     {date} (more than {TRANSIT_DAYS_MAX} days)",
                    shipment.units, shipment.lot_id, shipment.from_site_id, shipment.to_site_id, shipment.date
                ),
            ));
        }
    }

    /// Flag 18 `destruction.uncertified`, once per destruction.
    fn certificates_overdue(&mut self, date: Date, index: u64, flags: &mut Vec<Flag>) {
        for (event_id, destruction) in &mut self.destructions {
            if !destruction.certificate_ids.is_empty()
                || destruction.uncertified_flagged
                || date <= destruction.end_date.add_days(CERTIFICATION_DAYS_MAX)
            {
                continue;
            }
            destruction.uncertified_flagged = true;
            flags.push(time_flag(
                FlagRule::DestructionEvidence,
                "destruction.uncertified",
                index,
                vec![event_id.clone()],
                format!(
                    "destruction {event_id} of lot {} at site {}, ended {}, has no certificate on {date} (more than \
                     {CERTIFICATION_DAYS_MAX} days)",
                    destruction.lot_id, destruction.site_id, destruction.end_date
                ),
            ));
        }
    }
}
