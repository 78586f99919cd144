//! Time series for charts: held stock over time and destruction since EIF against the
//! Article 4 deadline, computed from a [`ViewFold`] like every view.
//!
//! A series is a list of dated points, oldest first, at most [`SERIES_POINTS_MAX`] long
//! whatever the ledger's length (a long ledger is [`downsample`]d, keeping its first and
//! last points), so a chart costs the same on a ten-year ledger as on a ten-day one.
//! Dates are ledger dates: a book change counts on the day its entry was recorded (as
//! the material balance counts it), a destruction on its end date (as
//! [`views::destruction_progress`] counts it). Nothing reads a clock: the last point is
//! at the ledger's "today" ([`crate::digest::views_today`]).
//!
//! The last point of each series equals the view it charts: held units equal
//! [`views::stockpile`]'s `totals.held()`, destroyed units its `destroyed_since_eif`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stockpile_core::time::Date;

use crate::digest::views_today;
use crate::fold::{Verdict, ViewFold};
use crate::views::{self, DestructionProgress};

/// Most points in one series: about one per pixel column of a chart, enough for a line
/// that looks exact, few enough that a page with several charts stays small.
pub const SERIES_POINTS_MAX: usize = 400;

/// Held units on one day (after that day's changes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockPoint {
    pub date: Date,
    /// Stockpiled, retained, designated, in transit and unreceived units (every type).
    pub held: u64,
    /// Of those, the stockpiled pool alone.
    pub stockpiled: u64,
}

/// A cumulative count of units on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitsPoint {
    pub date: Date,
    pub units: u64,
}

/// Held units over time: a point on each day a held pool changed, and one at the
/// ledger's today; downsampled to at most [`SERIES_POINTS_MAX`] points.
pub fn stock_over_time(fold: &ViewFold) -> Vec<StockPoint> {
    // Day → (held change, stockpiled change), summed over every lot's book changes. The
    // lot histories hold every movement of every lot's books (the fold diffs each lot's
    // balances around each event), so the running sum is the books on each day.
    let mut changes: BTreeMap<Date, (i128, i128)> = BTreeMap::new();
    for lot in fold.compliance().lots() {
        for event in fold.lot_history(lot.lot_id()).unwrap_or_default() {
            if event.verdict != Verdict::Accepted {
                continue;
            }
            for change in &event.changes {
                if !change.pool.is_held() {
                    continue;
                }
                let day = changes.entry(event.recorded_at.date()).or_default();
                day.0 += i128::from(change.change);
                if change.pool == crate::fold::Pool::Stockpiled {
                    day.1 += i128::from(change.change);
                }
            }
        }
    }
    let (mut held, mut stockpiled) = (0i128, 0i128);
    let mut points: Vec<StockPoint> = changes
        .into_iter()
        .map(|(date, (held_change, stockpiled_change))| {
            held += held_change;
            stockpiled += stockpiled_change;
            StockPoint {
                date,
                held: units(held),
                stockpiled: units(stockpiled),
            }
        })
        .collect();
    if let Some(last) = points.last().copied() {
        let today = views_today(fold);
        if last.date < today {
            points.push(StockPoint {
                date: today,
                ..last
            });
        }
    }
    downsample(&points, SERIES_POINTS_MAX)
}

/// Units destroyed since EIF, cumulative: a point at EIF (zero), one on each end date of
/// a destruction of an APM type, and one at the ledger's today; downsampled to at most
/// [`SERIES_POINTS_MAX`] points. Counts what [`views::destruction_progress`] counts
/// (quantities after corrections, destructions ending on or after EIF).
pub fn destroyed_over_time(fold: &ViewFold) -> Vec<UnitsPoint> {
    let eif = fold.reporting_eif();
    let mut by_day: BTreeMap<Date, u64> = BTreeMap::new();
    for destruction in views::apm_destructions(fold) {
        let end = destruction.record.end_date;
        if eif.is_some_and(|eif| end < eif) {
            continue;
        }
        let day = by_day.entry(end).or_default();
        *day = day.saturating_add(destruction.units);
    }
    let mut points = Vec::with_capacity(by_day.len() + 2);
    if let Some(eif) = eif
        && by_day
            .first_key_value()
            .is_none_or(|(first, _)| eif < *first)
    {
        points.push(UnitsPoint {
            date: eif,
            units: 0,
        });
    }
    let mut total = 0u64;
    for (date, day_units) in by_day {
        total = total.saturating_add(day_units);
        points.push(UnitsPoint { date, units: total });
    }
    let today = views_today(fold);
    if let Some(last) = points.last().copied()
        && last.date < today
    {
        points.push(UnitsPoint {
            date: today,
            units: last.units,
        });
    }
    downsample(&points, SERIES_POINTS_MAX)
}

/// The straight line a State on schedule follows: from nothing destroyed at EIF to
/// everything destroyed (what was destroyed since EIF plus what remains) at the Article 4
/// deadline. `None` without a deadline (the U.S. regimes) or an EIF.
pub fn deadline_line(progress: &DestructionProgress) -> Option<[UnitsPoint; 2]> {
    let (eif, deadline) = (progress.eif_date?, progress.article4_deadline?);
    Some([
        UnitsPoint {
            date: eif,
            units: 0,
        },
        UnitsPoint {
            date: deadline,
            units: progress
                .destroyed_since_eif
                .saturating_add(progress.remaining),
        },
    ])
}

/// At most `max` of `points`, evenly spread over them, always keeping the first and the
/// last (the last is the view's current figure). With `max` below 2 there is room for
/// the last point only.
pub fn downsample<T: Copy>(points: &[T], max: usize) -> Vec<T> {
    if points.len() <= max {
        return points.to_vec();
    }
    let Some(last) = points.last().copied() else {
        return Vec::new();
    };
    if max < 2 {
        return if max == 1 { vec![last] } else { Vec::new() };
    }
    // The first point, then the last point of each of `max - 1` equal runs of the rest.
    let rest = points.len() - 1;
    let runs = max - 1;
    let mut out = Vec::with_capacity(max);
    out.push(points[0]);
    for run in 1..=runs {
        out.push(points[run * rest / runs]);
    }
    out
}

/// A running sum of book changes: never below zero in books the state machine kept.
fn units(sum: i128) -> u64 {
    u64::try_from(sum.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_is_bounded_and_keeps_both_ends() {
        let points: Vec<u32> = (0..1_000).collect();
        for max in [2, 3, 10, 399, 400, 999] {
            let sampled = downsample(&points, max);
            assert_eq!(sampled.len(), max, "max {max}");
            assert_eq!(sampled.first(), Some(&0), "max {max}");
            assert_eq!(sampled.last(), Some(&999), "max {max}");
            assert!(
                sampled.windows(2).all(|w| w[0] < w[1]),
                "max {max}: in order"
            );
        }
        assert_eq!(downsample(&points, 1000), points);
        assert_eq!(downsample(&points, 1), vec![999]);
        assert_eq!(downsample(&points, 0), Vec::<u32>::new());
        assert_eq!(downsample::<u32>(&[], 5), Vec::<u32>::new());
    }

    #[test]
    fn an_empty_fold_has_empty_series() {
        let fold = ViewFold::new("example.org/ledger", &[]);
        assert!(stock_over_time(&fold).is_empty());
        assert!(destroyed_over_time(&fold).is_empty());
    }
}
