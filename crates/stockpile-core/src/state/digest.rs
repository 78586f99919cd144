//! Read-side figures of the state: the [`StockpileSummary`], the open differences, and a
//! digest of the whole state that lets an incrementally maintained view be compared with
//! one rebuilt from the log.

use super::book::Slot;
use super::{ComplianceState, FlagRule};
use crate::hash::Hash32;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// Prefix of the state digest, so that it can never pass for an event, entry or Merkle
/// hash.
pub const STATE_DIGEST_TAG: &[u8] = b"stockpile-ledger/v1/state-digest\n";

/// Units per pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PoolTotals {
    pub stockpiled: u64,
    pub retained: u64,
    pub korea: u64,
    pub in_transit: u64,
    /// Shipped, missing on receipt, not yet explained.
    pub unreceived: u64,
    pub destroyed: u64,
    pub consumed: u64,
    pub lost: u64,
    pub transferred_out: u64,
}

impl PoolTotals {
    fn add(&mut self, slot: Slot, units: u64) {
        let pool = match slot {
            Slot::Stockpiled => &mut self.stockpiled,
            Slot::Retained(_) => &mut self.retained,
            Slot::Korea => &mut self.korea,
            Slot::InTransit(_) => &mut self.in_transit,
            Slot::Unreceived(_) => &mut self.unreceived,
            Slot::Destroyed => &mut self.destroyed,
            Slot::Consumed(_) => &mut self.consumed,
            Slot::Lost => &mut self.lost,
            Slot::TransferredOut => &mut self.transferred_out,
        };
        *pool = pool.saturating_add(units);
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
        .fold(0u64, u64::saturating_add)
    }
}

/// Totals of the whole state, for dashboards and for comparing views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StockpileSummary {
    pub lots: u64,
    /// Lots with no units left in any pool.
    pub terminal_lots: u64,
    /// Declared units, after corrections.
    pub declared: u64,
    pub totals: PoolTotals,
    pub by_type: BTreeMap<String, PoolTotals>,
    /// In-transit units count at the site they left, terminal ones where they ended.
    pub by_site: BTreeMap<String, PoolTotals>,
    pub open_shipments: u64,
    /// Open physical ≠ book and shipper/receiver differences.
    pub open_differences: u64,
    pub flags_raised: BTreeMap<FlagRule, u64>,
}

/// A difference between books and what was found, still unexplained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpenDifference {
    /// Flag 11: an inventory count at a site differed from the book.
    PhysicalBook {
        lot_id: String,
        site_id: String,
        event_id: String,
        book: u64,
        counted: u64,
        unexplained: i128,
    },
    /// Flag 12: a receipt counted other than what was shipped. `unreceived` units are
    /// still booked as missing; `excess` units were counted beyond what was shipped.
    ShipperReceiver {
        lot_id: String,
        shipment_id: String,
        shipped: u64,
        counted: u64,
        unreceived: u64,
        excess: u64,
    },
}

/// Feeds formatted text straight into a hash, without building the string.
struct HashWriter(Sha256);

impl fmt::Write for HashWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.0.update(text.as_bytes());
        Ok(())
    }
}

impl ComplianceState {
    pub fn summary(&self) -> StockpileSummary {
        let mut summary = StockpileSummary {
            lots: self.lots.len() as u64,
            open_shipments: self.shipments.open_count() as u64,
            open_differences: self.open_differences().len() as u64,
            flags_raised: self.flags_raised.clone(),
            ..StockpileSummary::default()
        };
        let mut by_site: BTreeMap<u32, PoolTotals> = BTreeMap::new();
        for (_, lot) in self.lots.items() {
            summary.declared = summary.declared.saturating_add(lot.declared_units);
            if lot.is_terminal() {
                summary.terminal_lots += 1;
            }
            let by_type = summary.by_type.entry(lot.info.type_id.clone()).or_default();
            for ((site, slot), units) in &lot.balances {
                summary.totals.add(*slot, *units);
                by_type.add(*slot, *units);
                by_site.entry(site.0).or_default().add(*slot, *units);
            }
        }
        summary.by_site = by_site
            .into_iter()
            .map(|(site, totals)| (self.sites.id(site).to_string(), totals))
            .collect();
        summary
    }

    /// Every open difference, physical ones first, each in id order.
    pub fn open_differences(&self) -> Vec<OpenDifference> {
        let mut open = Vec::new();
        for (lot_id, lot) in self.lots.iter() {
            let mut physical: Vec<_> = lot.physical_differences.iter().collect();
            physical.sort_by(|(a, _), (b, _)| self.site_id(**a).cmp(self.site_id(**b)));
            for (site, difference) in physical {
                open.push(OpenDifference::PhysicalBook {
                    lot_id: lot_id.to_string(),
                    site_id: self.site_id(*site).to_string(),
                    event_id: difference.event_id.clone(),
                    book: difference.book,
                    counted: difference.counted,
                    unexplained: difference.unexplained,
                });
            }
        }
        let mut differing: Vec<_> = self.shipments.differing().collect();
        differing.sort_by(|a, b| self.shipments.id(*a).cmp(self.shipments.id(*b)));
        for shipment in differing {
            let record = self.shipments.record(shipment);
            let lot = self.lot_book(record.lot);
            let unreceived = lot.balance(record.to_site, Slot::Unreceived(shipment));
            let excess = record.counted.saturating_sub(record.units);
            if unreceived > 0 || excess > 0 {
                open.push(OpenDifference::ShipperReceiver {
                    lot_id: lot.lot_id().to_string(),
                    shipment_id: self.shipments.id(shipment).to_string(),
                    shipped: record.units,
                    counted: record.counted,
                    unreceived,
                    excess,
                });
            }
        }
        open
    }

    /// SHA-256, under [`STATE_DIGEST_TAG`], of a rendering of the whole state.
    ///
    /// The rendering is the state's derived `Debug` form: it covers every field by
    /// construction (a field added later cannot be forgotten), every map is a `BTreeMap`
    /// printed in key order or a fingerprint map printed in fingerprint order, tables and
    /// records are in ledger order, and strings are quoted and escaped, so equal states
    /// give equal text and different states different text. Handles appear as numbers:
    /// they follow the order in which ids were first accepted, which a fold of the same
    /// ledger repeats. It is not a persisted format: a digest compares two states built by
    /// the same code (incremental vs rebuilt).
    pub fn digest(&self) -> Hash32 {
        let mut writer = HashWriter(Sha256::new());
        writer.0.update(STATE_DIGEST_TAG);
        write!(writer, "{self:?}").expect("writing into a hash never fails");
        Hash32(writer.0.finalize().into())
    }
}
