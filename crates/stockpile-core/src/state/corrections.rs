//! Corrections: a `CorrectionIssued` points at an earlier event and never edits it.
//!
//! A change of the quantity of a declaration, destruction, loss or consumption
//! (`quantity`) or of a receipt (`quantity_counted`) moves the books by the difference,
//! once its `old_value` matches the quantity as currently recorded (hard 4 otherwise):
//! a correction of a correction is a new correction of the original event. Other fields
//! are recorded in the log as text and change nothing here. A correction that makes
//! stock appear or undoes a destruction is accepted and flagged (flag 20); like a loss
//! report, it explains open physical ≠ book differences at the sites whose book it moves.

use super::book::{Account, Moves, Slot};
use super::compact::{LotIx, ShipIx, SiteIx};
use super::lots::draw_moves;
use super::shipments::Status;
use super::{
    ComplianceState, Ctx, Draws, Fingerprint, Flag, FlagRule, QuantityRef, Violation, refs,
};
use crate::events::{CorrectionIssued, LotBasis, TransferDirection};
use crate::limits::QUANTITY_MAX;

/// Field names that carry a quantity; a change of one of them must move the books.
const QUANTITY_FIELDS: [&str; 2] = ["quantity", "quantity_counted"];

/// A plain decimal u64 within `QUANTITY_MAX`.
fn parse_units(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|units| *units <= QUANTITY_MAX)
}

/// Posts a signed change of one account against the world outside the books.
fn adjust(moves: &mut Moves, account: Account, change: i128) {
    if change > 0 {
        moves.push(Account::Outside, account, change as u64);
    } else {
        moves.push(account, Account::Outside, change.unsigned_abs() as u64);
    }
}

impl ComplianceState {
    /// The quantity a correctable event carries now.
    fn current_quantity(&self, quantity: QuantityRef) -> u64 {
        match quantity {
            QuantityRef::Declaration(lot) => self.lot_book(lot).declared_units,
            QuantityRef::Receipt(shipment) => {
                let record = self.shipments.record(shipment);
                match record.status() {
                    Status::Received(_) => record.counted,
                    status => panic!(
                        "shipment {} has a receipt record but status {status:?}",
                        self.shipments.id(shipment)
                    ),
                }
            }
            QuantityRef::Draw(draw) => self.draws[draw as usize].units,
        }
    }

    pub(super) fn on_correction_issued(
        &mut self,
        ctx: &Ctx<'_>,
        e: &CorrectionIssued,
    ) -> Result<Vec<Flag>, Violation> {
        let corrected = &e.corrected_event_id;
        let Some(record) = self.records.get(&Fingerprint::of(corrected)) else {
            return Err(refs(
                "references.unknown_event",
                format!(
                    "corrected event {corrected:?} is not one the state keeps (inventory counts, corrections and key \
                     events are superseded by new ones, not corrected)"
                ),
            ));
        };
        let kind = record.kind;
        let quantity = self.quantity_ref(record);
        if e.changes.is_empty() {
            return Err(refs(
                "corrections.no_changes",
                format!("correction of {corrected} changes no field"),
            ));
        }
        let quantity_field = match quantity {
            Some(QuantityRef::Receipt(_)) => Some("quantity_counted"),
            Some(_) => Some("quantity"),
            None => None,
        };
        let mut quantity_change = None;
        for change in e
            .changes
            .iter()
            .filter(|change| QUANTITY_FIELDS.contains(&change.field.as_str()))
        {
            if Some(change.field.as_str()) != quantity_field {
                return Err(refs(
                    "corrections.not_correctable",
                    format!(
                        "field {:?} of a {} cannot be corrected; quantities are corrected on LotDeclared, \
                         LotDestroyed, LossReported, RetainedMinesConsumed (quantity) and LotReceived \
                         (quantity_counted)",
                        change.field,
                        kind.name()
                    ),
                ));
            }
            if quantity_change.replace(change).is_some() {
                return Err(refs(
                    "references.duplicate_entry",
                    format!("correction of {corrected} changes {:?} twice", change.field),
                ));
            }
        }
        let (Some(change), Some(quantity)) = (quantity_change, quantity) else {
            return Ok(Vec::new());
        };
        let current = self.current_quantity(quantity);
        let old = parse_units(&change.old_value).ok_or_else(|| {
            refs(
                "corrections.bad_value",
                format!(
                    "old value {:?} of {} is not a quantity",
                    change.old_value, change.field
                ),
            )
        })?;
        if old != current {
            return Err(refs(
                "corrections.old_value_differs",
                format!(
                    "correction of {corrected} says {} was {old}; the books hold {current}",
                    change.field
                ),
            ));
        }
        let new = parse_units(&change.new_value).ok_or_else(|| {
            refs(
                "corrections.bad_value",
                format!(
                    "new value {:?} of {} is not a quantity up to {QUANTITY_MAX}",
                    change.new_value, change.field
                ),
            )
        })?;
        if new == old {
            return Ok(Vec::new());
        }
        let delta = new as i128 - old as i128;
        let kind = kind.name();
        let (raises_stock, reverses_destruction) = match quantity {
            QuantityRef::Declaration(lot) => {
                (self.correct_declaration(ctx, lot, delta, new)?, false)
            }
            QuantityRef::Receipt(shipment) => {
                (self.correct_receipt(ctx, shipment, old, new)?, false)
            }
            QuantityRef::Draw(draw) => {
                let destroyed = self.draws[draw as usize].sink() == Slot::Destroyed;
                self.correct_draw(ctx, draw, new)?;
                let returned = delta < 0;
                (returned && !destroyed, returned && destroyed)
            }
        };

        let mut flags = Vec::new();
        if raises_stock {
            flags.push(ctx.flag(
                FlagRule::Suspicious,
                "correction.raises_stock",
                &[corrected],
                format!("correction of {kind} {corrected} changes {} from {old} to {new}: stock goes up", change.field),
            ));
        }
        if reverses_destruction {
            flags.push(ctx.flag(
                FlagRule::Suspicious,
                "correction.reverses_destruction",
                &[corrected],
                format!("correction of {kind} {corrected} lowers the destroyed quantity from {old} to {new}"),
            ));
        }
        Ok(flags)
    }

    /// A declaration raises or lowers the stockpile at the declared site. Returns whether
    /// stock went up.
    fn correct_declaration(
        &mut self,
        ctx: &Ctx<'_>,
        lot: LotIx,
        delta: i128,
        new: u64,
    ) -> Result<bool, Violation> {
        let book = self.lot_book(lot);
        let import = (book.info.basis == LotBasis::ImportedUnderApproval)
            .then(|| book.info.request_id.clone())
            .flatten();
        let type_id = book.info.type_id.clone();
        let site = self
            .sites
            .ix(&book.info.site_id)
            .map(SiteIx)
            .expect("a lot's site is registered before it");
        let mut moves = Moves::new(lot, true);
        adjust(&mut moves, Account::At(site, Slot::Stockpiled), delta);
        if let Some(request_id) = &import
            && delta > 0
        {
            self.check_approval(
                Some(request_id),
                TransferDirection::Import,
                &type_id,
                delta as u64,
            )?;
        }
        self.check_moves(&moves, self.lot_id(lot))?;

        self.commit_moves(&moves, ctx.today);
        self.lots.at_mut(lot.0).declared_units = new;
        if let Some(request_id) = &import {
            self.use_approval(request_id, &type_id, delta);
        }
        Ok(delta > 0)
    }

    /// A receipt's count moves units between the receiving site's stockpile and the
    /// shipment's shortfall (or the world outside, for units counted beyond what was
    /// shipped). Returns whether stock went up.
    fn correct_receipt(
        &mut self,
        ctx: &Ctx<'_>,
        shipment: ShipIx,
        old: u64,
        new: u64,
    ) -> Result<bool, Violation> {
        let record = *self.shipments.record(shipment);
        let shipped = record.units as i128;
        let shortfall = |counted: u64| (shipped - counted as i128).max(0);
        let to = record.to_site;
        let mut moves = Moves::new(record.lot, true);
        adjust(
            &mut moves,
            Account::At(to, Slot::Stockpiled),
            new as i128 - old as i128,
        );
        adjust(
            &mut moves,
            Account::At(to, Slot::Unreceived(shipment)),
            shortfall(new) - shortfall(old),
        );
        self.check_moves(&moves, self.lot_id(record.lot))?;

        self.commit_moves(&moves, ctx.today);
        self.shipments.recount(shipment, new);
        Ok(new > old)
    }

    /// A destruction, loss or consumption draws more by its own rule, or gives units back
    /// to where they were drawn from, last drawn first.
    fn correct_draw(&mut self, ctx: &Ctx<'_>, draw_ix: u32, new: u64) -> Result<(), Violation> {
        let draw = &self.draws[draw_ix as usize];
        let (lot, sink) = (draw.lot, draw.sink());
        let mut draws = draw.draws.as_slice().to_vec();
        let moves = if new > draw.units {
            let more = self.plan_draw(lot, draw.source, new - draw.units);
            for (site, slot, units) in &more {
                match draws.iter_mut().find(|(s, b, _)| s == site && b == slot) {
                    Some(existing) => existing.2 = existing.2.saturating_add(*units),
                    None => draws.push((*site, *slot, *units)),
                }
            }
            draw_moves(lot, &more, sink, true)
        } else {
            let mut left = draw.units - new;
            let mut moves = Moves::new(lot, true);
            for (site, slot, units) in draws.iter_mut().rev() {
                let back = left.min(*units);
                moves.push(Account::At(*site, sink), Account::At(*site, *slot), back);
                *units -= back;
                left -= back;
            }
            draws.retain(|(_, _, units)| *units > 0);
            moves
        };
        self.check_moves(&moves, self.lot_id(lot))?;

        self.commit_moves(&moves, ctx.today);
        let record = &mut self.draws[draw_ix as usize];
        record.units = new;
        record.draws = Draws::from_vec(draws);
        Ok(())
    }
}
