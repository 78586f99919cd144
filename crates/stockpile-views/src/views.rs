//! The compliance views of domain.md §5, computed from a [`ViewFold`].
//!
//! Every view is a plain serde type and names the ledger position it reflects
//! ([`AsOf`]: the last index folded, the number of entries, the last `recorded_at` and
//! the head link hash). A view "as of" an earlier index is computed from a fold stopped
//! there. Views that depend on a date (ages, days to a deadline) take "today" as a
//! parameter: nothing here reads a clock; [`ViewFold::today`] is the ledger's own date.
//!
//! Quantities are unsigned integers; signed ones (book changes, unexplained differences)
//! are `i64`; shares are basis points (1/100 of a per cent). There are no floats, so the
//! canonical encoding of [`crate::digest`] is exact.
//!
//! Which units count where:
//! - *held* pools: stockpiled, retained, designated for Korea, in transit, unreceived
//!   (shipped, missing on receipt, not yet explained); *terminal* pools: destroyed,
//!   consumed, lost, transferred out. In-transit units sit at the site they left.
//! - a site's *book* is what a count there should find: stockpiled, retained and
//!   designated units.
//! - destruction progress counts only types that count as APM (`counts_as_apm`), as the
//!   Convention's totals do; the stockpile view lists every type and says which count.

use crate::fold::{
    DestructionRecord, Inconsistency, LotEvent, Pool, RejectedEntry, SiteFlows, TransferMovement,
    ViewFold,
};
use crate::query::QueryError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use stockpile_core::events::{
    DestructionMethod, LotBasis, Purpose, Regime, SiteKind, TransferDirection, TypeQuantity,
};
use stockpile_core::hash::Hash32;
use stockpile_core::limits::RETENTION_BENCHMARK_UNITS;
use stockpile_core::state::{Decision, Flag, FlagRule, Lot, OpenDifference, ShipmentStatus};
use stockpile_core::time::{Date, TimestampMs};

/// Days over which the achieved destruction rate is measured: the year before "today".
pub const ACHIEVED_RATE_WINDOW_DAYS: i64 = 365;

/// Days per year in the required destruction rate (units per year to meet the deadline).
const DAYS_PER_YEAR: u128 = 365;

/// Basis points in a whole (100 %).
pub const BASIS_POINTS_WHOLE: u64 = 10_000;

/// The ledger position a view reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsOf {
    /// Index of the last entry folded; `None` before entry 0.
    pub as_of_index: Option<u64>,
    /// Entries folded (`as_of_index + 1`).
    pub entries: u64,
    /// `recorded_at` of the last entry folded.
    pub recorded_at: Option<TimestampMs>,
    /// Link hash of the last entry folded: binds the view to one chain.
    pub head_link: Hash32,
}

impl AsOf {
    pub fn of(fold: &ViewFold) -> AsOf {
        AsOf {
            as_of_index: fold.last_index(),
            entries: fold.entries(),
            recorded_at: fold.last_recorded_at(),
            head_link: fold.head_link(),
        }
    }
}

/// Units per pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pools {
    pub stockpiled: u64,
    pub retained: u64,
    pub korea: u64,
    pub in_transit: u64,
    pub unreceived: u64,
    pub destroyed: u64,
    pub consumed: u64,
    pub lost: u64,
    pub transferred_out: u64,
}

impl Pools {
    pub fn add(&mut self, pool: Pool, units: u64) {
        let slot = match pool {
            Pool::Stockpiled => &mut self.stockpiled,
            Pool::Retained => &mut self.retained,
            Pool::Korea => &mut self.korea,
            Pool::InTransit => &mut self.in_transit,
            Pool::Unreceived => &mut self.unreceived,
            Pool::Destroyed => &mut self.destroyed,
            Pool::Consumed => &mut self.consumed,
            Pool::Lost => &mut self.lost,
            Pool::TransferredOut => &mut self.transferred_out,
        };
        *slot = slot.saturating_add(units);
    }

    /// Units still held: stockpiled, retained, designated, in transit or unreceived.
    pub fn held(&self) -> u64 {
        [
            self.stockpiled,
            self.retained,
            self.korea,
            self.in_transit,
            self.unreceived,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// Held units that are neither retained nor missing: what Article 4 wants destroyed
    /// (before any Korea exemption).
    pub fn unretained_stock(&self) -> u64 {
        self.stockpiled
            .saturating_add(self.korea)
            .saturating_add(self.in_transit)
    }
}

/// The pools of one lot.
fn lot_pools(lot: &Lot) -> Pools {
    let mut pools = Pools::default();
    for ((_, bucket), units) in &lot.balances {
        pools.add(Pool::of(bucket).0, *units);
    }
    pools
}

/// A period of ledger time: entries recorded on `from` through `to`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

impl Period {
    /// 1 January through 31 December of `year`; `None` outside the dates the core knows.
    pub fn year(year: i32) -> Option<Period> {
        Some(Period {
            from: Date::from_ymd(year, 1, 1)?,
            to: Date::from_ymd(year, 12, 31)?,
        })
    }

    pub fn contains(&self, date: Date) -> bool {
        self.from <= date && date <= self.to
    }
}

// ---------------------------------------------------------------------------------------
// Stockpile

/// Units of one lot in one held pool at one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockpileRow {
    pub site_id: String,
    pub type_id: String,
    pub lot_id: String,
    pub pool: Pool,
    /// The institution (retained) or shipment (in transit, unreceived).
    pub party: Option<String>,
    pub units: u64,
}

/// Pools of one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePools {
    pub site_id: String,
    pub pools: Pools,
}

/// Pools of one mine type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypePools {
    pub type_id: String,
    pub counts_as_apm: bool,
    pub lots: u64,
    /// Declared units, after corrections.
    pub declared: u64,
    pub pools: Pools,
}

/// Units by site × type × lot × pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockpileView {
    pub as_of: AsOf,
    /// Held units, by site, type, lot, pool and party.
    pub rows: Vec<StockpileRow>,
    /// Every pool over every lot, terminal ones included.
    pub totals: Pools,
    /// In-transit units count at the site they left, terminal ones where they ended.
    pub by_site: Vec<SitePools>,
    pub by_type: Vec<TypePools>,
    pub lots: u64,
    /// Lots with no units left in any held pool.
    pub terminal_lots: u64,
    /// Declared units, after corrections.
    pub declared: u64,
}

pub fn stockpile(fold: &ViewFold) -> StockpileView {
    let state = fold.compliance();
    let mut rows = Vec::new();
    let mut totals = Pools::default();
    let mut by_site: BTreeMap<String, Pools> = BTreeMap::new();
    let mut by_type: BTreeMap<String, TypePools> = BTreeMap::new();
    let (mut lots, mut terminal_lots, mut declared) = (0u64, 0u64, 0u64);
    for lot in state.lots() {
        lots += 1;
        declared = declared.saturating_add(lot.declared_units);
        if lot.is_terminal() {
            terminal_lots += 1;
        }
        let type_id = lot.type_id().to_string();
        let of_type = by_type.entry(type_id.clone()).or_insert_with(|| TypePools {
            type_id: type_id.clone(),
            counts_as_apm: counts_as_apm(fold, &type_id),
            lots: 0,
            declared: 0,
            pools: Pools::default(),
        });
        of_type.lots += 1;
        of_type.declared = of_type.declared.saturating_add(lot.declared_units);
        for ((site_id, bucket), units) in &lot.balances {
            let (pool, party) = Pool::of(bucket);
            totals.add(pool, *units);
            of_type.pools.add(pool, *units);
            by_site
                .entry(site_id.clone())
                .or_default()
                .add(pool, *units);
            if pool.is_held() {
                rows.push(StockpileRow {
                    site_id: site_id.clone(),
                    type_id: type_id.clone(),
                    lot_id: lot.lot_id().to_string(),
                    pool,
                    party: party.map(str::to_string),
                    units: *units,
                });
            }
        }
    }
    rows.sort_by(|a, b| {
        (&a.site_id, &a.type_id, &a.lot_id, a.pool, &a.party)
            .cmp(&(&b.site_id, &b.type_id, &b.lot_id, b.pool, &b.party))
    });
    StockpileView {
        as_of: AsOf::of(fold),
        rows,
        totals,
        by_site: by_site
            .into_iter()
            .map(|(site_id, pools)| SitePools { site_id, pools })
            .collect(),
        by_type: by_type.into_values().collect(),
        lots,
        terminal_lots,
        declared,
    }
}

fn counts_as_apm(fold: &ViewFold, type_id: &str) -> bool {
    fold.compliance()
        .mine_types()
        .get(type_id)
        .is_some_and(|mine_type| mine_type.info.counts_as_apm)
}

// ---------------------------------------------------------------------------------------
// One lot

/// Units of a lot in one pool at one site (terminal pools included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotBalance {
    pub site_id: String,
    pub pool: Pool,
    pub party: Option<String>,
    pub units: u64,
}

/// A physical count that differed from the book and is not yet explained (flag 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhysicalDifferenceRow {
    pub site_id: String,
    /// The `InventoryVerified` that found it.
    pub event_id: String,
    pub book: u64,
    pub counted: u64,
    /// Book minus counted still unexplained.
    pub unexplained: i64,
}

/// One lot: its declaration, its books, and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotView {
    pub as_of: AsOf,
    pub lot_id: String,
    pub type_id: String,
    pub counts_as_apm: bool,
    /// The `LotDeclared` event.
    pub event_id: String,
    pub manufacturer_lot_number: Option<String>,
    pub lot_number_absent_reason: String,
    pub basis: LotBasis,
    pub basis_date: Option<Date>,
    pub request_id: Option<String>,
    pub owner: String,
    pub custodian: String,
    pub declared_site_id: String,
    /// As first declared.
    pub declared_units_reported: u64,
    /// After corrections.
    pub declared_units: u64,
    pub balances: Vec<LotBalance>,
    pub pools: Pools,
    pub held: u64,
    /// No units left in any held pool.
    pub terminal: bool,
    pub open_differences: Vec<PhysicalDifferenceRow>,
    /// Flag 14 (discovered stock not destroyed in time) was raised.
    pub discovery_flagged: bool,
    /// Flags whose evidence names an event of this lot.
    pub flags: Vec<Flag>,
    /// Events in the lot's whole history.
    pub history_total: u64,
    /// 0-based index in the whole history of the first event of `history` (the index
    /// asked for when the page starts past the end and is empty).
    pub history_from: u64,
    /// A page of the events that named the lot, accepted or rejected, oldest first:
    /// by default the latest [`LOT_HISTORY_PAGE_DEFAULT`] (see [`HistoryPage`]).
    pub history: Vec<LotEvent>,
}

/// Events of a lot's history in an answer when no page size is asked for.
pub const LOT_HISTORY_PAGE_DEFAULT: u64 = 100;
/// Most events of a lot's history in one answer.
pub const LOT_HISTORY_PAGE_MAX: u64 = 1_000;

/// Which events of a lot's history the lot view answers: `limit` events from index
/// `from`, or the latest `limit` when `from` is `None`. The default is the latest
/// [`LOT_HISTORY_PAGE_DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistoryPage {
    from: Option<u64>,
    limit: u64,
}

impl Default for HistoryPage {
    fn default() -> Self {
        HistoryPage {
            from: None,
            limit: LOT_HISTORY_PAGE_DEFAULT,
        }
    }
}

impl HistoryPage {
    /// A page as asked for: `limit` must be 1..=[`LOT_HISTORY_PAGE_MAX`]; a `from` past
    /// the end is allowed (an empty page).
    pub fn new(from: Option<u64>, limit: Option<u64>) -> Result<HistoryPage, QueryError> {
        let limit = limit.unwrap_or(LOT_HISTORY_PAGE_DEFAULT);
        if !(1..=LOT_HISTORY_PAGE_MAX).contains(&limit) {
            return Err(QueryError::HistoryLimitOutOfRange(limit));
        }
        Ok(HistoryPage { from, limit })
    }

    /// The whole history, unbounded: for the views digest and tests, never asked for by
    /// a client.
    pub const fn whole() -> HistoryPage {
        HistoryPage {
            from: Some(0),
            limit: u64::MAX,
        }
    }

    /// The first index asked for (`None`: the latest page).
    pub fn from(&self) -> Option<u64> {
        self.from
    }

    /// Events asked for at most.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The first index reported and the range of `0..total` the page covers.
    pub fn range(&self, total: usize) -> (u64, std::ops::Range<usize>) {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        match self.from {
            None => {
                let start = total.saturating_sub(limit);
                (start as u64, start..total)
            }
            Some(from) => {
                let start = usize::try_from(from).unwrap_or(usize::MAX).min(total);
                (from, start..start.saturating_add(limit).min(total))
            }
        }
    }
}

/// One lot, with the page `page` of its history; `None` for a lot the ledger does not
/// hold.
pub fn lot(fold: &ViewFold, lot_id: &str, page: HistoryPage) -> Option<LotView> {
    let lot = fold.compliance().lot(lot_id)?;
    let whole = fold.lot_history(lot_id).unwrap_or_default();
    let (history_from, range) = page.range(whole.len());
    // The events that are this lot's evidence: an inventory count only when this lot's
    // count differed, since one count covers many lots. Over the whole history, whatever
    // the page.
    let evidence: BTreeSet<&str> = whole
        .iter()
        .filter(|event| event.book_at_count.is_none() || event.book_at_count != event.quantity)
        .map(|event| event.event_id.as_str())
        .collect();
    let flags = fold
        .flags()
        .iter()
        .filter(|flag| {
            flag.event_ids
                .iter()
                .any(|id| evidence.contains(id.as_str()))
        })
        .cloned()
        .collect();
    let pools = lot_pools(&lot);
    Some(LotView {
        as_of: AsOf::of(fold),
        lot_id: lot.lot_id().to_string(),
        type_id: lot.type_id().to_string(),
        counts_as_apm: counts_as_apm(fold, lot.type_id()),
        event_id: lot.event_id.clone(),
        manufacturer_lot_number: lot.info.manufacturer_lot_number.clone(),
        lot_number_absent_reason: lot.info.lot_number_absent_reason.clone(),
        basis: lot.info.basis,
        basis_date: lot.info.basis_date,
        request_id: lot.info.request_id.clone(),
        owner: lot.info.owner.clone(),
        custodian: lot.info.custodian.clone(),
        declared_site_id: lot.info.site_id.clone(),
        declared_units_reported: lot.info.quantity,
        declared_units: lot.declared_units,
        balances: lot
            .balances
            .iter()
            .map(|((site_id, bucket), units)| {
                let (pool, party) = Pool::of(bucket);
                LotBalance {
                    site_id: site_id.clone(),
                    pool,
                    party: party.map(str::to_string),
                    units: *units,
                }
            })
            .collect(),
        held: pools.held(),
        pools,
        terminal: lot.is_terminal(),
        open_differences: lot
            .physical_differences
            .iter()
            .map(|(site_id, difference)| PhysicalDifferenceRow {
                site_id: site_id.clone(),
                event_id: difference.event_id.clone(),
                book: difference.book,
                counted: difference.counted,
                unexplained: clamp_i64(difference.unexplained),
            })
            .collect(),
        discovery_flagged: lot.discovery_flagged,
        flags,
        history_total: whole.len() as u64,
        history_from,
        history: whole[range].to_vec(),
    })
}

/// Every lot id, in id order.
pub fn lot_ids(fold: &ViewFold) -> Vec<String> {
    fold.compliance()
        .lots()
        .map(|lot| lot.lot_id().to_string())
        .collect()
}

fn clamp_i64(value: i128) -> i64 {
    value.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

// ---------------------------------------------------------------------------------------
// Retained

/// Units consumed in one calendar year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearUse {
    pub year: i32,
    pub units: u64,
}

/// Units consumed in one calendar year for one activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityUse {
    pub year: i32,
    pub activity: String,
    pub units: u64,
}

/// One authorised institution and what it retains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionRetained {
    pub institution_id: String,
    pub name: String,
    pub site_id: String,
    pub instrument: String,
    pub permitted_purposes: Vec<Purpose>,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    pub ceiling: u64,
    pub retained: u64,
    /// Ceiling minus retained.
    pub headroom: u64,
    /// Retains more than the benchmark of `limits::RETENTION_BENCHMARK_UNITS` (flag 17).
    pub above_benchmark: bool,
    /// The date its retained total last changed.
    pub last_change: Option<Date>,
    pub consumed: u64,
    pub consumption_by_year: Vec<YearUse>,
    pub consumption_by_activity: Vec<ActivityUse>,
}

/// Units one institution retains of one lot, over all sites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedRow {
    pub institution_id: String,
    pub type_id: String,
    pub lot_id: String,
    pub sites: Vec<String>,
    pub units: u64,
    /// Units of this lot the institution has consumed.
    pub consumed: u64,
    pub consumption_by_year: Vec<YearUse>,
}

/// Retained mines by institution × type × lot (Article 3(1), Form D §1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedView {
    pub as_of: AsOf,
    pub institutions: Vec<InstitutionRetained>,
    pub rows: Vec<RetainedRow>,
    pub retained: u64,
    pub consumed: u64,
}

pub fn retained(fold: &ViewFold) -> RetainedView {
    let state = fold.compliance();
    // (institution, lot) → (type, sites, retained, consumed).
    let mut rows: BTreeMap<(String, String), RetainedRow> = BTreeMap::new();
    for lot in state.lots() {
        for ((site_id, bucket), units) in &lot.balances {
            let (pool, party) = Pool::of(bucket);
            let Some(institution_id) =
                party.filter(|_| matches!(pool, Pool::Retained | Pool::Consumed))
            else {
                continue;
            };
            let row = rows
                .entry((institution_id.to_string(), lot.lot_id().to_string()))
                .or_insert_with(|| RetainedRow {
                    institution_id: institution_id.to_string(),
                    type_id: lot.type_id().to_string(),
                    lot_id: lot.lot_id().to_string(),
                    sites: Vec::new(),
                    units: 0,
                    consumed: 0,
                    consumption_by_year: Vec::new(),
                });
            if pool == Pool::Retained {
                row.units = row.units.saturating_add(*units);
                row.sites.push(site_id.clone());
            } else {
                row.consumed = row.consumed.saturating_add(*units);
            }
        }
    }
    let mut by_row_year: BTreeMap<(&str, &str, i32), u64> = BTreeMap::new();
    let mut by_institution_year: BTreeMap<(&str, i32), u64> = BTreeMap::new();
    let mut by_activity: BTreeMap<(&str, i32, &str), u64> = BTreeMap::new();
    for use_ in fold.consumptions().iter().filter(|c| c.units > 0) {
        let year = use_.date.year();
        let institution = use_.institution_id.as_str();
        *by_row_year
            .entry((institution, use_.lot_id.as_str(), year))
            .or_default() += use_.units;
        *by_institution_year.entry((institution, year)).or_default() += use_.units;
        *by_activity
            .entry((institution, year, use_.activity.as_str()))
            .or_default() += use_.units;
    }
    for ((institution, lot_id, year), units) in &by_row_year {
        if let Some(row) = rows.get_mut(&(institution.to_string(), lot_id.to_string())) {
            row.consumption_by_year.push(YearUse {
                year: *year,
                units: *units,
            });
        }
    }
    let rows: Vec<RetainedRow> = rows
        .into_values()
        .filter(|row| row.units > 0 || row.consumed > 0)
        .collect();
    let institutions = state
        .institutions()
        .iter()
        .map(|(institution_id, institution)| {
            let consumed = rows
                .iter()
                .filter(|row| row.institution_id == institution_id)
                .fold(0u64, |sum, row| sum.saturating_add(row.consumed));
            InstitutionRetained {
                institution_id: institution_id.to_string(),
                name: institution.info.name.clone(),
                site_id: institution.info.site_id.clone(),
                instrument: institution.info.instrument.clone(),
                permitted_purposes: institution.info.permitted_purposes.clone(),
                valid_from: institution.info.valid_from,
                valid_to: institution.info.valid_to,
                ceiling: institution.info.ceiling,
                retained: institution.retained_units,
                headroom: institution
                    .info
                    .ceiling
                    .saturating_sub(institution.retained_units),
                above_benchmark: institution.retained_units > RETENTION_BENCHMARK_UNITS,
                last_change: institution.last_change,
                consumed,
                consumption_by_year: by_institution_year
                    .iter()
                    .filter(|((id, _), _)| *id == institution_id)
                    .map(|((_, year), units)| YearUse {
                        year: *year,
                        units: *units,
                    })
                    .collect(),
                consumption_by_activity: by_activity
                    .iter()
                    .filter(|((id, _, _), _)| *id == institution_id)
                    .map(|((_, year, activity), units)| ActivityUse {
                        year: *year,
                        activity: activity.to_string(),
                        units: *units,
                    })
                    .collect(),
            }
        })
        .collect();
    RetainedView {
        as_of: AsOf::of(fold),
        retained: rows
            .iter()
            .fold(0, |sum, row| sum.saturating_add(row.units)),
        consumed: rows
            .iter()
            .fold(0, |sum, row| sum.saturating_add(row.consumed)),
        institutions,
        rows,
    }
}

// ---------------------------------------------------------------------------------------
// Destruction progress

/// Destroyed and remaining units of one type or lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRow {
    pub type_id: String,
    /// `None` in the per-type rows.
    pub lot_id: Option<String>,
    pub destroyed_since_eif: u64,
    /// Held units still to destroy (see [`DestructionProgress::remaining`]).
    pub remaining: u64,
}

/// Destroyed units at one site or by one method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteDestroyed {
    pub site_id: String,
    pub destructions: u64,
    pub units: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodDestroyed {
    pub method: DestructionMethod,
    pub destructions: u64,
    pub units: u64,
}

/// Destruction since EIF against the Article 4 deadline (APM types only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestructionProgress {
    pub as_of: AsOf,
    /// The date the day counts and the achieved rate are computed from.
    pub today: Date,
    pub regime: Option<Regime>,
    /// See [`ViewFold::reporting_eif`].
    pub eif_date: Option<Date>,
    /// EIF + 4 years under `APMBC`; none under the U.S. regimes.
    pub article4_deadline: Option<Date>,
    /// Negative once the deadline has passed.
    pub days_to_deadline: Option<i64>,
    /// Units of `LotDestroyed` ending on or after EIF, after corrections.
    pub destroyed_since_eif: u64,
    pub destroyed_before_eif: u64,
    /// Of those since EIF, ending after the Article 4 deadline.
    pub destroyed_after_deadline: u64,
    /// Held units the regime wants destroyed: stockpiled and in transit, plus designated
    /// units unless the regime exempts them (the U.S. regimes, for Korea).
    pub remaining: u64,
    pub korea_designated: u64,
    pub korea_exempt: bool,
    pub retained: u64,
    /// Shipped, missing on receipt, not yet explained: neither destroyable nor gone.
    pub unreceived: u64,
    pub by_type: Vec<ProgressRow>,
    pub by_lot: Vec<ProgressRow>,
    pub by_site: Vec<SiteDestroyed>,
    pub by_method: Vec<MethodDestroyed>,
    /// Units per year needed to destroy `remaining` by the deadline (none without a
    /// deadline, with nothing remaining, or once it has passed).
    pub required_units_per_year: Option<u64>,
    /// Units of destructions ending in the `ACHIEVED_RATE_WINDOW_DAYS` up to `today`.
    pub achieved_units_last_year: u64,
    /// Units since EIF in destructions covered by at least one certificate.
    pub certified_units: u64,
    /// `certified_units` / `destroyed_since_eif`, in basis points; none when nothing was
    /// destroyed.
    pub certified_share_basis_points: Option<u64>,
    pub uncertified_destructions: u64,
}

/// A destruction with its current quantity and certification.
pub(crate) struct DestructionNow<'a> {
    pub record: &'a DestructionRecord,
    pub units: u64,
    pub certified: bool,
}

/// Every destruction of an APM type, with its quantity after corrections.
pub(crate) fn apm_destructions(fold: &ViewFold) -> Vec<DestructionNow<'_>> {
    let state = fold.compliance();
    fold.destructions()
        .iter()
        .filter(|record| counts_as_apm(fold, &record.type_id))
        .map(|record| {
            let now = state
                .destruction(&record.event_id)
                .expect("every recorded destruction is in the state");
            DestructionNow {
                record,
                units: now.units,
                certified: now.certificates > 0,
            }
        })
        .collect()
}

pub fn destruction_progress(fold: &ViewFold, today: Date) -> DestructionProgress {
    let state = fold.compliance();
    let regime = state.regime();
    let eif = fold.reporting_eif();
    let deadline = regime.and_then(|r| r.article4_deadline());
    let korea_exempt = regime.is_some_and(|r| r.regime().is_us());

    let mut by_type: BTreeMap<String, ProgressRow> = BTreeMap::new();
    let mut by_lot: BTreeMap<String, ProgressRow> = BTreeMap::new();
    let (mut remaining, mut korea, mut retained, mut unreceived) = (0u64, 0u64, 0u64, 0u64);
    for lot in state.lots() {
        if !counts_as_apm(fold, lot.type_id()) {
            continue;
        }
        let pools = lot_pools(&lot);
        let lot_remaining = pools
            .stockpiled
            .saturating_add(pools.in_transit)
            .saturating_add(if korea_exempt { 0 } else { pools.korea });
        remaining = remaining.saturating_add(lot_remaining);
        korea = korea.saturating_add(pools.korea);
        retained = retained.saturating_add(pools.retained);
        unreceived = unreceived.saturating_add(pools.unreceived);
        by_type
            .entry(lot.type_id().to_string())
            .or_insert_with(|| progress_row(lot.type_id(), None))
            .remaining += lot_remaining;
        by_lot
            .entry(lot.lot_id().to_string())
            .or_insert_with(|| progress_row(lot.type_id(), Some(lot.lot_id())))
            .remaining += lot_remaining;
    }

    let mut by_site: BTreeMap<String, SiteDestroyed> = BTreeMap::new();
    let mut by_method: BTreeMap<DestructionMethod, MethodDestroyed> = BTreeMap::new();
    let (mut since_eif, mut before_eif, mut after_deadline) = (0u64, 0u64, 0u64);
    let (mut certified_units, mut uncertified, mut achieved) = (0u64, 0u64, 0u64);
    let window_start = today.add_days(-ACHIEVED_RATE_WINDOW_DAYS);
    for destruction in apm_destructions(fold) {
        let record = destruction.record;
        let units = destruction.units;
        if !destruction.certified {
            uncertified += 1;
        }
        if window_start < record.end_date && record.end_date <= today {
            achieved = achieved.saturating_add(units);
        }
        if eif.is_some_and(|eif| record.end_date < eif) {
            before_eif = before_eif.saturating_add(units);
            continue;
        }
        since_eif = since_eif.saturating_add(units);
        if deadline.is_some_and(|deadline| record.end_date > deadline) {
            after_deadline = after_deadline.saturating_add(units);
        }
        if destruction.certified {
            certified_units = certified_units.saturating_add(units);
        }
        by_type
            .entry(record.type_id.clone())
            .or_insert_with(|| progress_row(&record.type_id, None))
            .destroyed_since_eif += units;
        by_lot
            .entry(record.lot_id.clone())
            .or_insert_with(|| progress_row(&record.type_id, Some(&record.lot_id)))
            .destroyed_since_eif += units;
        let site = by_site
            .entry(record.site_id.clone())
            .or_insert_with(|| SiteDestroyed {
                site_id: record.site_id.clone(),
                destructions: 0,
                units: 0,
            });
        site.destructions += 1;
        site.units = site.units.saturating_add(units);
        let method = by_method
            .entry(record.method)
            .or_insert_with(|| MethodDestroyed {
                method: record.method,
                destructions: 0,
                units: 0,
            });
        method.destructions += 1;
        method.units = method.units.saturating_add(units);
    }
    let days_to_deadline = deadline.map(|deadline| today.days_until(deadline));
    let required_units_per_year = match days_to_deadline {
        Some(days) if days > 0 && remaining > 0 => {
            let per_year = (remaining as u128 * DAYS_PER_YEAR).div_ceil(days as u128);
            Some(u64::try_from(per_year).unwrap_or(u64::MAX))
        }
        _ => None,
    };
    DestructionProgress {
        as_of: AsOf::of(fold),
        today,
        regime: regime.map(|r| r.regime()),
        eif_date: eif,
        article4_deadline: deadline,
        days_to_deadline,
        destroyed_since_eif: since_eif,
        destroyed_before_eif: before_eif,
        destroyed_after_deadline: after_deadline,
        remaining,
        korea_designated: korea,
        korea_exempt,
        retained,
        unreceived,
        by_type: by_type.into_values().collect(),
        by_lot: by_lot.into_values().collect(),
        by_site: by_site.into_values().collect(),
        by_method: by_method.into_values().collect(),
        required_units_per_year,
        achieved_units_last_year: achieved,
        certified_units,
        certified_share_basis_points: share_basis_points(certified_units, since_eif),
        uncertified_destructions: uncertified,
    }
}

fn progress_row(type_id: &str, lot_id: Option<&str>) -> ProgressRow {
    ProgressRow {
        type_id: type_id.to_string(),
        lot_id: lot_id.map(str::to_string),
        destroyed_since_eif: 0,
        remaining: 0,
    }
}

/// `part / whole` in basis points, rounded down; `None` when `whole` is zero.
pub fn share_basis_points(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| {
        let share = part as u128 * BASIS_POINTS_WHOLE as u128 / whole as u128;
        u64::try_from(share).unwrap_or(u64::MAX)
    })
}

// ---------------------------------------------------------------------------------------
// Transfers

/// The one decision on a transfer request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DecisionRow {
    Pending,
    Refused {
        event_id: String,
        date: Option<Date>,
        authority: Option<String>,
        basis_cited: Option<String>,
    },
    Approved {
        event_id: String,
        date: Option<Date>,
        authority: Option<String>,
        legal_basis: String,
        purpose: Purpose,
        institution_id: Option<String>,
        destruction_site_id: Option<String>,
        approved: Vec<TypeQuantity>,
        /// Units per type already shipped or declared under the approval.
        used: Vec<TypeQuantity>,
    },
}

/// A transfer request, its decision and what moved under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequestRow {
    pub request_id: String,
    /// The `TransferRequested` event.
    pub event_id: String,
    pub requester: String,
    pub direction: TransferDirection,
    pub items: Vec<TypeQuantity>,
    pub stated_purpose: Purpose,
    pub counterparty: String,
    pub destination: String,
    pub decision: DecisionRow,
    pub movements: Vec<TransferMovement>,
}

/// A refused transfer: evidence of compliance (Article 1), listed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedTransferRow {
    pub index: u64,
    /// The `TransferRefused` event.
    pub event_id: String,
    pub request_id: String,
    pub date: Date,
    pub authority: String,
    pub basis_cited: String,
    pub reasoning: String,
    pub requester: String,
    pub direction: TransferDirection,
    pub items: Vec<TypeQuantity>,
    pub stated_purpose: Purpose,
    pub counterparty: String,
    pub destination: String,
}

/// Requests, decisions, bases and movements; refused transfers separately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRegister {
    pub as_of: AsOf,
    pub requests: Vec<TransferRequestRow>,
    pub refused: Vec<RefusedTransferRow>,
}

fn type_quantities(units: &BTreeMap<String, u64>) -> Vec<TypeQuantity> {
    units
        .iter()
        .map(|(type_id, quantity)| TypeQuantity {
            type_id: type_id.clone(),
            quantity: *quantity,
        })
        .collect()
}

pub fn transfers(fold: &ViewFold) -> TransferRegister {
    let state = fold.compliance();
    let refusals: BTreeMap<&str, &crate::fold::RefusalRecord> = fold
        .refusals()
        .iter()
        .map(|refusal| (refusal.request_id.as_str(), refusal))
        .collect();
    let requests = state
        .transfer_requests()
        .iter()
        .map(|(request_id, request)| {
            let decision = match &request.decision {
                None => DecisionRow::Pending,
                Some(Decision::Refused { event_id }) => {
                    let refusal = refusals.get(request_id.as_str());
                    DecisionRow::Refused {
                        event_id: event_id.clone(),
                        date: refusal.map(|r| r.date),
                        authority: refusal.map(|r| r.authority.clone()),
                        basis_cited: refusal.map(|r| r.basis_cited.clone()),
                    }
                }
                Some(Decision::Approved {
                    event_id,
                    legal_basis,
                    purpose,
                    approved,
                    used,
                }) => {
                    let approval = fold.approvals().get(request_id);
                    DecisionRow::Approved {
                        event_id: event_id.clone(),
                        date: approval.map(|a| a.date),
                        authority: approval.map(|a| a.authority.clone()),
                        legal_basis: legal_basis.clone(),
                        purpose: *purpose,
                        institution_id: approval.and_then(|a| a.institution_id.clone()),
                        destruction_site_id: approval.and_then(|a| a.destruction_site_id.clone()),
                        approved: type_quantities(approved),
                        used: type_quantities(used),
                    }
                }
            };
            TransferRequestRow {
                request_id: request_id.clone(),
                event_id: request.event_id.clone(),
                requester: request.info.requester.clone(),
                direction: request.info.direction,
                items: request.info.items.clone(),
                stated_purpose: request.info.stated_purpose,
                counterparty: request.info.counterparty.clone(),
                destination: request.info.destination.clone(),
                decision,
                movements: fold
                    .transfer_movements()
                    .iter()
                    .filter(|movement| movement.request_id == *request_id)
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    let refused = fold
        .refusals()
        .iter()
        .filter_map(|refusal| {
            let request = state.transfer_requests().get(&refusal.request_id)?;
            Some(RefusedTransferRow {
                index: refusal.index,
                event_id: refusal.event_id.clone(),
                request_id: refusal.request_id.clone(),
                date: refusal.date,
                authority: refusal.authority.clone(),
                basis_cited: refusal.basis_cited.clone(),
                reasoning: refusal.reasoning.clone(),
                requester: request.info.requester.clone(),
                direction: request.info.direction,
                items: request.info.items.clone(),
                stated_purpose: request.info.stated_purpose,
                counterparty: request.info.counterparty.clone(),
                destination: request.info.destination.clone(),
            })
        })
        .collect();
    TransferRegister {
        as_of: AsOf::of(fold),
        requests,
        refused,
    }
}

// ---------------------------------------------------------------------------------------
// In transit

/// A shipment in transit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InTransitRow {
    pub shipment_id: String,
    pub lot_id: String,
    pub type_id: String,
    pub from_site_id: String,
    pub to_site_id: String,
    pub units: u64,
    /// The shipment date.
    pub date: Date,
    /// Days from `date` to the view's `today`.
    pub age_days: i64,
    pub seal_ids: Vec<String>,
    /// Flag 12 `shipment.overdue` was raised.
    pub overdue_flagged: bool,
    pub index: u64,
    /// The `LotShipped` event.
    pub event_id: String,
}

/// Open shipments with their age and seals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InTransitView {
    pub as_of: AsOf,
    pub today: Date,
    pub shipments: Vec<InTransitRow>,
    pub units: u64,
}

pub fn in_transit(fold: &ViewFold, today: Date) -> InTransitView {
    let state = fold.compliance();
    let shipments: Vec<InTransitRow> = fold
        .open_shipments()
        .iter()
        .map(|(shipment_id, open)| {
            let overdue_flagged = match state.shipment(shipment_id).map(|s| s.status) {
                Some(ShipmentStatus::InTransit {
                    overdue_flagged, ..
                }) => overdue_flagged,
                other => panic!(
                    "the fold lists shipment {shipment_id} as open but the state has it as {other:?}"
                ),
            };
            InTransitRow {
                shipment_id: shipment_id.clone(),
                lot_id: open.lot_id.clone(),
                type_id: state
                    .lot(&open.lot_id)
                    .map(|lot| lot.info.type_id)
                    .unwrap_or_default(),
                from_site_id: open.from_site_id.clone(),
                to_site_id: open.to_site_id.clone(),
                units: open.units,
                date: open.date,
                age_days: open.date.days_until(today),
                seal_ids: open.seal_ids.clone(),
                overdue_flagged,
                index: open.index,
                event_id: open.event_id.clone(),
            }
        })
        .collect();
    InTransitView {
        as_of: AsOf::of(fold),
        today,
        units: shipments
            .iter()
            .fold(0, |sum, row| sum.saturating_add(row.units)),
        shipments,
    }
}

// ---------------------------------------------------------------------------------------
// Material balance

/// The last physical count at a site in the period, against the book it was compared
/// with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhysicalCount {
    pub index: u64,
    pub event_id: String,
    /// The date the count states.
    pub date: Date,
    pub scope: stockpile_core::events::InventoryScope,
    pub lots: u32,
    pub counted: u64,
    pub book_at_count: u64,
    /// Book minus counted: zero, or a finding until explained (flag 11).
    pub difference: i64,
}

/// One site's material balance over a period:
/// `opening + declared + received − shipped − destroyed − consumed − lost ± corrections
/// = closing` (the site book: stockpiled, retained and designated units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteBalance {
    pub site_id: String,
    pub name: String,
    pub kind: SiteKind,
    pub country_code: String,
    pub opening: u64,
    /// Changes in the period, by cause; `unreceived` is a memo outside the book.
    pub flows: SiteFlows,
    pub closing: u64,
    /// Units booked at the site as missing on receipt, at the end of the period.
    pub unreceived_closing: u64,
    pub physical: Option<PhysicalCount>,
}

/// Material balance per site over a period (domain.md §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialBalanceView {
    pub as_of: AsOf,
    /// `None`: everything folded, opening at zero.
    pub period: Option<Period>,
    pub sites: Vec<SiteBalance>,
}

pub fn material_balance(fold: &ViewFold, period: Option<Period>) -> MaterialBalanceView {
    let state = fold.compliance();
    let sites = state
        .sites()
        .iter()
        .map(|(site_id, site)| {
            let (mut before, mut during) = (SiteFlows::default(), SiteFlows::default());
            if let Some(days) = fold.site_flows().get(site_id) {
                for (date, flows) in days {
                    match period {
                        Some(period) if *date < period.from => before.add(flows),
                        Some(period) if *date > period.to => {}
                        _ => during.add(flows),
                    }
                }
            }
            let opening = book_units(before.net(), site_id);
            let closing = book_units(before.net() + during.net(), site_id);
            let physical = fold
                .inventories()
                .iter()
                .rev()
                .find(|count| {
                    count.site_id == site_id
                        && period.is_none_or(|period| period.contains(count.recorded_on))
                })
                .map(|count| PhysicalCount {
                    index: count.index,
                    event_id: count.event_id.clone(),
                    date: count.date,
                    scope: count.scope,
                    lots: count.lots,
                    counted: count.counted,
                    book_at_count: count.book,
                    difference: count.book as i64 - count.counted as i64,
                });
            SiteBalance {
                site_id: site_id.to_string(),
                name: site.info.name.clone(),
                kind: site.info.kind,
                country_code: site.info.country_code.clone(),
                opening,
                flows: during,
                closing,
                unreceived_closing: book_units(before.unreceived + during.unreceived, site_id),
                physical,
            }
        })
        .collect();
    MaterialBalanceView {
        as_of: AsOf::of(fold),
        period,
        sites,
    }
}

/// A cumulative sum of book changes, which the state machine never lets go below zero.
fn book_units(net: i64, site_id: &str) -> u64 {
    u64::try_from(net)
        .unwrap_or_else(|_| panic!("the flows of site {site_id} sum to {net}: a book below zero"))
}

// ---------------------------------------------------------------------------------------
// Flags

/// Flags raised under one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    pub rule: FlagRule,
    /// Its number in domain.md §4.
    pub number: u8,
    pub count: u64,
}

/// An open difference between books and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpenDifferenceRow {
    /// Flag 11: a count at a site differed from the book.
    PhysicalBook {
        lot_id: String,
        site_id: String,
        event_id: String,
        book: u64,
        counted: u64,
        unexplained: i64,
    },
    /// Flag 12: a receipt counted other than what was shipped.
    ShipperReceiver {
        lot_id: String,
        shipment_id: String,
        shipped: u64,
        counted: u64,
        unreceived: u64,
        excess: u64,
    },
}

/// Findings with the event ids that prove them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagsView {
    pub as_of: AsOf,
    pub total: u64,
    pub by_rule: Vec<RuleCount>,
    /// In ledger order.
    pub flags: Vec<Flag>,
    pub open_differences: Vec<OpenDifferenceRow>,
    /// Accepted entries the admission code refuses (a verifier finding each).
    pub inconsistencies: Vec<Inconsistency>,
    /// Entries the sequencer rejected, kept as evidence.
    pub rejected_entries: Vec<RejectedEntry>,
}

pub fn flags(fold: &ViewFold) -> FlagsView {
    let mut by_rule: BTreeMap<FlagRule, u64> = BTreeMap::new();
    for flag in fold.flags() {
        *by_rule.entry(flag.rule).or_default() += 1;
    }
    let open_differences = fold
        .compliance()
        .open_differences()
        .into_iter()
        .map(|difference| match difference {
            OpenDifference::PhysicalBook {
                lot_id,
                site_id,
                event_id,
                book,
                counted,
                unexplained,
            } => OpenDifferenceRow::PhysicalBook {
                lot_id,
                site_id,
                event_id,
                book,
                counted,
                unexplained: clamp_i64(unexplained),
            },
            OpenDifference::ShipperReceiver {
                lot_id,
                shipment_id,
                shipped,
                counted,
                unreceived,
                excess,
            } => OpenDifferenceRow::ShipperReceiver {
                lot_id,
                shipment_id,
                shipped,
                counted,
                unreceived,
                excess,
            },
        })
        .collect();
    FlagsView {
        as_of: AsOf::of(fold),
        total: fold.flags().len() as u64,
        by_rule: by_rule
            .into_iter()
            .map(|(rule, count)| RuleCount {
                rule,
                number: rule as u8,
                count,
            })
            .collect(),
        flags: fold.flags().to_vec(),
        open_differences,
        inconsistencies: fold.inconsistencies().to_vec(),
        rejected_entries: fold.rejected_entries().to_vec(),
    }
}
