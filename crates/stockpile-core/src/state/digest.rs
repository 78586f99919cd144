//! Read-side figures of the state: the [`StockpileSummary`], the open differences, and a
//! digest of the whole state that lets an incrementally maintained view be compared with
//! one rebuilt from the log.

use super::{Bucket, ComplianceState, FlagRule, ShipmentStatus};
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
    fn add(&mut self, bucket: &Bucket, units: u64) {
        let slot = match bucket {
            Bucket::Stockpiled => &mut self.stockpiled,
            Bucket::Retained { .. } => &mut self.retained,
            Bucket::Korea => &mut self.korea,
            Bucket::InTransit { .. } => &mut self.in_transit,
            Bucket::Unreceived { .. } => &mut self.unreceived,
            Bucket::Destroyed => &mut self.destroyed,
            Bucket::Consumed { .. } => &mut self.consumed,
            Bucket::Lost => &mut self.lost,
            Bucket::TransferredOut => &mut self.transferred_out,
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
            open_shipments: self
                .shipments
                .values()
                .filter(|shipment| shipment.is_open())
                .count() as u64,
            open_differences: self.open_differences().len() as u64,
            flags_raised: self.flags_raised.clone(),
            ..StockpileSummary::default()
        };
        for lot in self.lots.values() {
            summary.declared = summary.declared.saturating_add(lot.declared_units);
            if lot.is_terminal() {
                summary.terminal_lots += 1;
            }
            let by_type = summary
                .by_type
                .entry(lot.type_id().to_string())
                .or_default();
            for ((site_id, bucket), units) in &lot.balances {
                summary.totals.add(bucket, *units);
                by_type.add(bucket, *units);
                summary
                    .by_site
                    .entry(site_id.clone())
                    .or_default()
                    .add(bucket, *units);
            }
        }
        summary
    }

    /// Every open difference, physical ones first, each in id order.
    pub fn open_differences(&self) -> Vec<OpenDifference> {
        let mut open = Vec::new();
        for (lot_id, lot) in &self.lots {
            for (site_id, difference) in &lot.physical_differences {
                open.push(OpenDifference::PhysicalBook {
                    lot_id: lot_id.clone(),
                    site_id: site_id.clone(),
                    event_id: difference.event_id.clone(),
                    book: difference.book,
                    counted: difference.counted,
                    unexplained: difference.unexplained,
                });
            }
        }
        for (shipment_id, shipment) in &self.shipments {
            let ShipmentStatus::Received { counted, .. } = &shipment.status else {
                continue;
            };
            let Some(lot) = self.lots.get(&shipment.lot_id) else {
                continue;
            };
            let unreceived = lot.balance(
                &shipment.to_site_id,
                &Bucket::Unreceived {
                    shipment_id: shipment_id.clone(),
                },
            );
            let excess = counted.saturating_sub(shipment.units);
            if unreceived > 0 || excess > 0 {
                open.push(OpenDifference::ShipperReceiver {
                    lot_id: shipment.lot_id.clone(),
                    shipment_id: shipment_id.clone(),
                    shipped: shipment.units,
                    counted: *counted,
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
    /// printed in key order, and strings are quoted and escaped, so equal states give
    /// equal text and different states different text. It is not a persisted format: a
    /// digest compares two states built by the same code (incremental vs rebuilt).
    pub fn digest(&self) -> Hash32 {
        let mut writer = HashWriter(Sha256::new());
        writer.0.update(STATE_DIGEST_TAG);
        write!(writer, "{self:?}").expect("writing into a hash never fails");
        Hash32(writer.0.finalize().into())
    }
}
