//! Shipments and receipts (hard 7, flag 12), and the compact record the state keeps of
//! every shipment.
//!
//! A shipment is open from its `LotShipped` until its `LotReceived`; one that leaves for a
//! foreign site closes on dispatch. While it is open the state keeps its details
//! ([`OpenShipment`]) and its transit deadline (see `clock`). Once it is closed only what
//! a later event can still need stays, in a 32-byte [`ShipmentRecord`] plus two ids in the
//! name arena: the lot and the receiving site (a correction of the receipt moves their
//! books), the units shipped and counted (the shipper/receiver difference), the shipment
//! id (open differences and messages name it) and the receipt's event id (a second
//! receipt is refused naming the first).

use super::book::{Account, Moves, Slot};
use super::compact::{FpMap, LotIx, NameRef, Names, ShipIx, SiteIx, handle_of, reserve_tight};
use super::{
    ComplianceState, Ctx, Fingerprint, Flag, FlagRule, HardRule, Shipment, ShipmentStatus,
    Violation, positive, refs,
};
use crate::events::{EventKind, LotReceived, LotShipped, SealCheck, TransferDirection};
use crate::time::Date;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Every shipment, open or closed.
#[derive(Debug, Clone, Default)]
pub(super) struct Shipments {
    /// Fingerprint of the shipment id → handle.
    by_fp: FpMap<ShipIx>,
    /// By handle, in ledger order.
    records: Vec<ShipmentRecord>,
    /// Shipment ids and receipt event ids.
    names: Names,
    /// The shipments in transit.
    open: BTreeMap<ShipIx, OpenShipment>,
    /// Received shipments whose count differs from what was shipped: the only ones that
    /// can hold an open shipper/receiver difference (units counted beyond those shipped,
    /// or a shortfall, which losses can explain only up to the shortfall).
    differing: BTreeSet<ShipIx>,
}

/// What the state keeps of every shipment: 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ShipmentRecord {
    pub lot: LotIx,
    pub to_site: SiteIx,
    /// Units shipped.
    pub units: u64,
    /// Units counted on receipt, after corrections (0 until received).
    pub counted: u64,
    /// The shipment id.
    name: NameRef,
    closing: Closing,
}

// What every shipment costs besides its two ids: the record and its fingerprint entry.
const _: () = assert!(size_of::<ShipmentRecord>() == 32);
const _: () = assert!(size_of::<(Fingerprint, ShipIx)>() == 20);

/// How a shipment stands, in 32 bits: in transit, exported, or received by the event
/// whose id is at this name (names stay below both markers, see
/// `limits::STATE_NAME_BYTES_MAX`).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Closing(u32);

impl Closing {
    const IN_TRANSIT: Closing = Closing(u32::MAX);
    const EXPORTED: Closing = Closing(u32::MAX - 1);

    fn status(self) -> Status {
        match self {
            Closing::IN_TRANSIT => Status::InTransit,
            Closing::EXPORTED => Status::Exported,
            Closing(at) => Status::Received(NameRef(at)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    InTransit,
    /// Units went to a foreign site: transferred out on dispatch, no receipt expected.
    Exported,
    /// Received by the event with this id.
    Received(NameRef),
}

impl ShipmentRecord {
    pub(super) fn status(&self) -> Status {
        self.closing.status()
    }
}

impl fmt::Debug for ShipmentRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "({}, {}, {}, {}, {}, {:?})",
            self.lot.0,
            self.to_site.0,
            self.units,
            self.counted,
            self.name.0,
            self.status()
        )
    }
}

/// A shipment in transit: what its receipt and its transit deadline need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpenShipment {
    /// The `LotShipped` event.
    pub event_id: String,
    pub from_site: SiteIx,
    /// The date it left.
    pub date: Date,
    /// Flag 12 `shipment.overdue` was raised.
    pub overdue_flagged: bool,
}

impl Shipments {
    pub(super) fn len(&self) -> u32 {
        handle_of(self.records.len())
    }

    pub(super) fn find(&self, shipment_id: &str) -> Option<ShipIx> {
        self.by_fp.get(&Fingerprint::of(shipment_id))
    }

    pub(super) fn record(&self, shipment: ShipIx) -> &ShipmentRecord {
        &self.records[shipment.0 as usize]
    }

    /// The shipment id.
    pub(super) fn id(&self, shipment: ShipIx) -> &str {
        self.names.get(self.record(shipment).name)
    }

    pub(super) fn name(&self, name: NameRef) -> &str {
        self.names.get(name)
    }

    pub(super) fn open(&self, shipment: ShipIx) -> Option<&OpenShipment> {
        self.open.get(&shipment)
    }

    pub(super) fn open_mut(&mut self, shipment: ShipIx) -> Option<&mut OpenShipment> {
        self.open.get_mut(&shipment)
    }

    pub(super) fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Received shipments whose count differs from what was shipped.
    pub(super) fn differing(&self) -> impl Iterator<Item = ShipIx> + '_ {
        self.differing.iter().copied()
    }

    /// A correction of the receipt of `shipment` changed its count to `counted`.
    pub(super) fn recount(&mut self, shipment: ShipIx, counted: u64) {
        let record = &mut self.records[shipment.0 as usize];
        assert!(
            matches!(record.status(), Status::Received(_)),
            "only a received shipment is recounted"
        );
        record.counted = counted;
        if counted == record.units {
            self.differing.remove(&shipment);
        } else {
            self.differing.insert(shipment);
        }
    }
}

impl ComplianceState {
    pub(super) fn shipment_view(&self, shipment: ShipIx) -> Shipment {
        let record = self.shipments.record(shipment);
        let status = match record.status() {
            Status::InTransit => {
                let open = self
                    .shipments
                    .open(shipment)
                    .expect("in transit means open");
                ShipmentStatus::InTransit {
                    event_id: open.event_id.clone(),
                    from_site_id: self.site_id(open.from_site).to_string(),
                    date: open.date,
                    overdue_flagged: open.overdue_flagged,
                }
            }
            Status::Exported => ShipmentStatus::Exported,
            Status::Received(receipt) => ShipmentStatus::Received {
                event_id: self.shipments.name(receipt).to_string(),
                counted: record.counted,
            },
        };
        Shipment {
            shipment_id: self.shipments.id(shipment).to_string(),
            lot_id: self.lot_id(record.lot).to_string(),
            units: record.units,
            to_site_id: self.site_id(record.to_site).to_string(),
            status,
        }
    }

    pub(super) fn on_lot_shipped(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotShipped,
    ) -> Result<Vec<Flag>, Violation> {
        let fingerprint = Fingerprint::of(&e.shipment_id);
        if self.shipments.by_fp.contains_key(&fingerprint) {
            return Err(refs(
                "references.duplicate_id",
                format!("shipment {:?} already exists", e.shipment_id),
            ));
        }
        let lot = self.known_lot(&e.lot_id)?;
        let from = self.known_site(&e.from_site_id)?;
        let to = self.known_site(&e.to_site_id)?;
        if e.from_site_id == e.to_site_id {
            return Err(refs(
                "references.same_site",
                format!(
                    "shipment {:?} goes from site {} to itself",
                    e.shipment_id, e.to_site_id
                ),
            ));
        }
        self.not_terminal(lot, EventKind::LotShipped)?;
        positive(e.quantity, "shipped quantity")?;
        let regime = self.regime_state()?;
        let (from_foreign, to_foreign) = (
            regime.is_foreign(self.sites.at(from.0)),
            regime.is_foreign(self.sites.at(to.0)),
        );
        // Crossing the border needs an approval: an export when the units leave for a
        // foreign site, an import when they come in from one.
        let direction = match (from_foreign, to_foreign) {
            (_, true) => Some(TransferDirection::Export),
            (true, false) => Some(TransferDirection::Import),
            (false, false) => None,
        };
        let type_id = &self.lot_book(lot).info.type_id;
        if let Some(direction) = direction {
            self.check_approval(e.request_id.as_deref(), direction, type_id, e.quantity)?;
        }
        let type_id = type_id.clone();
        // The handle the shipment gets if accepted. Its in-transit slot only receives
        // units, so the check never needs its id.
        let shipment = ShipIx(self.shipments.len());
        let slot = if to_foreign {
            Slot::TransferredOut
        } else {
            Slot::InTransit(shipment)
        };
        let mut moves = Moves::new(lot, false);
        moves.push(
            Account::At(from, Slot::Stockpiled),
            Account::At(from, slot),
            e.quantity,
        );
        self.check_moves(&moves, &e.lot_id)?;

        self.commit_moves(&moves, ctx.today);
        if direction.is_some()
            && let Some(request_id) = &e.request_id
        {
            self.use_approval(request_id, &type_id, e.quantity as i128);
        }
        let shipments = &mut self.shipments;
        let name = shipments.names.push(&e.shipment_id);
        reserve_tight(&mut shipments.records, 1);
        shipments.records.push(ShipmentRecord {
            lot,
            to_site: to,
            units: e.quantity,
            counted: 0,
            name,
            closing: if to_foreign {
                Closing::EXPORTED
            } else {
                Closing::IN_TRANSIT
            },
        });
        shipments.by_fp.insert(fingerprint, shipment);
        if !to_foreign {
            shipments.open.insert(
                shipment,
                OpenShipment {
                    event_id: ctx.event_id.to_string(),
                    from_site: from,
                    date: e.date,
                    overdue_flagged: false,
                },
            );
            self.deadlines.shipment_sent(e.date, shipment);
        }
        ctx.handle.set(shipment.0);
        Ok(Vec::new())
    }

    pub(super) fn on_lot_received(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotReceived,
    ) -> Result<Vec<Flag>, Violation> {
        let closes =
            |code: &str, message: String| Violation::new(HardRule::ShipmentsClose, code, message);
        let Some(shipment) = self.shipments.find(&e.shipment_id) else {
            return Err(closes(
                "shipments.unknown",
                format!("shipment {:?} was never shipped", e.shipment_id),
            ));
        };
        let record = *self.shipments.record(shipment);
        let lot_id = self.lot_id(record.lot);
        if lot_id != e.lot_id {
            return Err(closes(
                "shipments.lot_differs",
                format!(
                    "shipment {} carries lot {lot_id}, not {}",
                    e.shipment_id, e.lot_id
                ),
            ));
        }
        match record.status() {
            Status::InTransit => {}
            Status::Received(receipt) => {
                return Err(closes(
                    "shipments.already_received",
                    format!(
                        "shipment {} was already received by event {}",
                        e.shipment_id,
                        self.shipments.name(receipt)
                    ),
                ));
            }
            Status::Exported => {
                return Err(closes(
                    "shipments.not_in_transit",
                    format!(
                        "shipment {} went to foreign site {} and closed on dispatch",
                        e.shipment_id,
                        self.site_id(record.to_site)
                    ),
                ));
            }
        }
        positive(e.quantity_counted, "received quantity")?;
        let (shipped, counted) = (record.units, e.quantity_counted);
        let from = self
            .shipments
            .open(shipment)
            .expect("in transit means open")
            .from_site;
        let to = record.to_site;
        let in_transit = Account::At(from, Slot::InTransit(shipment));
        let mut moves = Moves::new(record.lot, false);
        moves.push(
            in_transit,
            Account::At(to, Slot::Stockpiled),
            shipped.min(counted),
        );
        moves.push(
            in_transit,
            Account::At(to, Slot::Unreceived(shipment)),
            shipped.saturating_sub(counted),
        );
        moves.push(
            Account::Outside,
            Account::At(to, Slot::Stockpiled),
            counted.saturating_sub(shipped),
        );
        self.check_moves(&moves, &e.lot_id)?;

        self.commit_moves(&moves, ctx.today);
        let shipments = &mut self.shipments;
        let open = shipments.open.remove(&shipment).expect("looked up above");
        let receipt = shipments.names.push(ctx.event_id);
        let record = &mut shipments.records[shipment.0 as usize];
        record.counted = counted;
        record.closing = Closing(receipt.0);
        if counted != shipped {
            shipments.differing.insert(shipment);
        }
        self.deadlines.shipment_closed(open.date, shipment);
        ctx.handle.set(shipment.0);

        let shipped_event = open.event_id;
        let mut flags = Vec::new();
        if counted != shipped {
            flags.push(ctx.flag(
                FlagRule::Shipment,
                "shipment.count_differs",
                &[&shipped_event],
                format!(
                    "shipment {} of lot {}: shipped {shipped}, counted {counted} at site {} (difference {})",
                    e.shipment_id,
                    e.lot_id,
                    self.site_id(to),
                    shipped as i128 - counted as i128
                ),
            ));
        }
        if e.seal_check != SealCheck::Intact {
            flags.push(ctx.flag(
                FlagRule::Shipment,
                "shipment.seal",
                &[&shipped_event],
                format!(
                    "shipment {} of lot {} arrived with seal {:?}",
                    e.shipment_id, e.lot_id, e.seal_check
                ),
            ));
        }
        Ok(flags)
    }
}
