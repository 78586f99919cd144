//! The books of a lot: buckets, postings, and the check-then-commit that keeps every
//! refused event from changing anything.
//!
//! An event that moves units becomes a [`Moves`]: postings of units from one account to
//! another, where an account is a site × [`Slot`] of the lot or the world outside the
//! books (declarations come from outside; corrections may send units back there).
//! [`ComplianceState::check_moves`] judges the net effect of all postings on every account
//! (hard 9 for retention ceilings, hard 5 for a balance below zero or an overflow);
//! [`ComplianceState::commit_moves`] then applies it and cannot fail.
//!
//! The books name institutions and shipments by handle ([`Slot`]); the read API and the
//! messages spell them out as a [`Bucket`]. Wherever an order shows (which account a
//! refusal names first), accounts are ordered by their ids, as if keyed by [`Bucket`].

use super::compact::{InstIx, LotIx, ShipIx, SiteIx};
use super::{ComplianceState, HardRule, Violation};
use crate::time::Date;
use std::cmp::Ordering;
use std::fmt;

/// A pool of a lot at one site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    /// Held, not retained, not designated: the stockpile Article 4 requires destroyed.
    Stockpiled,
    /// Held by an authorised institution under Article 3(1).
    Retained { institution_id: String },
    /// Designated for the defense of the Republic of Korea (U.S. regimes).
    Korea,
    /// Shipped from this site, not yet received.
    InTransit { shipment_id: String },
    /// Shipped to this site but missing on receipt: books the shortfall until a loss
    /// report or a correction explains it (the shipper/receiver difference).
    Unreceived { shipment_id: String },
    /// Terminal: destroyed at this site.
    Destroyed,
    /// Terminal: consumed by the institution from its retained units at this site.
    Consumed { institution_id: String },
    /// Terminal: reported lost at this site.
    Lost,
    /// Terminal: shipped from this site to a foreign site (title and control passed).
    TransferredOut,
}

impl Bucket {
    /// Units still held (not destroyed, consumed, lost or transferred out).
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            Bucket::Stockpiled
                | Bucket::Retained { .. }
                | Bucket::Korea
                | Bucket::InTransit { .. }
                | Bucket::Unreceived { .. }
        )
    }

    /// Units a physical count at the site should find.
    pub fn is_site_book(&self) -> bool {
        matches!(
            self,
            Bucket::Stockpiled | Bucket::Retained { .. } | Bucket::Korea
        )
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::Stockpiled => f.write_str("stockpiled"),
            Bucket::Retained { institution_id } => write!(f, "retained by {institution_id}"),
            Bucket::Korea => f.write_str("designated for Korea"),
            Bucket::InTransit { shipment_id } => write!(f, "in transit in shipment {shipment_id}"),
            Bucket::Unreceived { shipment_id } => {
                write!(f, "unreceived from shipment {shipment_id}")
            }
            Bucket::Destroyed => f.write_str("destroyed"),
            Bucket::Consumed { institution_id } => write!(f, "consumed by {institution_id}"),
            Bucket::Lost => f.write_str("lost"),
            Bucket::TransferredOut => f.write_str("transferred out"),
        }
    }
}

/// A [`Bucket`] as the books key it: institutions and shipments by handle (8 bytes,
/// `Copy`). The variants are those of `Bucket`, in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Slot {
    Stockpiled,
    Retained(InstIx),
    Korea,
    InTransit(ShipIx),
    Unreceived(ShipIx),
    Destroyed,
    Consumed(InstIx),
    Lost,
    TransferredOut,
}

const _: () = assert!(size_of::<Slot>() == 8);

impl Slot {
    /// See [`Bucket::is_held`].
    pub(super) fn is_held(self) -> bool {
        matches!(
            self,
            Slot::Stockpiled
                | Slot::Retained(_)
                | Slot::Korea
                | Slot::InTransit(_)
                | Slot::Unreceived(_)
        )
    }

    /// See [`Bucket::is_site_book`].
    pub(super) fn is_site_book(self) -> bool {
        matches!(self, Slot::Stockpiled | Slot::Retained(_) | Slot::Korea)
    }

    /// The position of the variant, as in `Bucket`'s derived order.
    fn rank(self) -> u8 {
        match self {
            Slot::Stockpiled => 0,
            Slot::Retained(_) => 1,
            Slot::Korea => 2,
            Slot::InTransit(_) => 3,
            Slot::Unreceived(_) => 4,
            Slot::Destroyed => 5,
            Slot::Consumed(_) => 6,
            Slot::Lost => 7,
            Slot::TransferredOut => 8,
        }
    }
}

impl ComplianceState {
    /// `slot` with its ids spelled out.
    pub(super) fn bucket(&self, slot: Slot) -> Bucket {
        match slot {
            Slot::Stockpiled => Bucket::Stockpiled,
            Slot::Retained(institution) => Bucket::Retained {
                institution_id: self.institution_id(institution).to_string(),
            },
            Slot::Korea => Bucket::Korea,
            Slot::InTransit(shipment) => Bucket::InTransit {
                shipment_id: self.shipments.id(shipment).to_string(),
            },
            Slot::Unreceived(shipment) => Bucket::Unreceived {
                shipment_id: self.shipments.id(shipment).to_string(),
            },
            Slot::Destroyed => Bucket::Destroyed,
            Slot::Consumed(institution) => Bucket::Consumed {
                institution_id: self.institution_id(institution).to_string(),
            },
            Slot::Lost => Bucket::Lost,
            Slot::TransferredOut => Bucket::TransferredOut,
        }
    }

    /// The order of two accounts as `(site id, Bucket)` keys would sort. Ids are looked up
    /// only as far as needed: the in-transit slot of a shipment being checked before it
    /// is recorded is never compared with another of its kind.
    pub(super) fn cmp_accounts(&self, a: (SiteIx, Slot), b: (SiteIx, Slot)) -> Ordering {
        let ((a_site, a_slot), (b_site, b_slot)) = (a, b);
        if a_site != b_site {
            return self.site_id(a_site).cmp(self.site_id(b_site));
        }
        a_slot.rank().cmp(&b_slot.rank()).then_with(|| {
            if a_slot == b_slot {
                Ordering::Equal
            } else {
                self.slot_inner_id(a_slot).cmp(self.slot_inner_id(b_slot))
            }
        })
    }

    /// The institution or shipment id a slot carries, if any.
    pub(super) fn slot_inner_id(&self, slot: Slot) -> &str {
        match slot {
            Slot::Retained(institution) | Slot::Consumed(institution) => {
                self.institution_id(institution)
            }
            Slot::InTransit(shipment) | Slot::Unreceived(shipment) => self.shipments.id(shipment),
            _ => "",
        }
    }
}

/// One side of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Account {
    /// Outside the books: where declared units come from.
    Outside,
    /// A slot of the lot at a site.
    At(SiteIx, Slot),
}

/// The postings of one event, all on one lot.
#[derive(Debug, Clone)]
pub(super) struct Moves {
    /// The lot; for a declaration, the handle it is about to get.
    pub lot: LotIx,
    pub postings: Vec<(Account, Account, u64)>,
    /// A loss report or a correction: its net change of a site's book explains (part of)
    /// an open physical ≠ book difference there.
    pub explains: bool,
}

impl Moves {
    pub(super) fn new(lot: LotIx, explains: bool) -> Moves {
        Moves {
            lot,
            postings: Vec::new(),
            explains,
        }
    }

    /// Adds a posting; zero postings are dropped.
    pub(super) fn push(&mut self, from: Account, to: Account, units: u64) {
        if units > 0 {
            self.postings.push((from, to, units));
        }
    }
}

/// Debits and credits of one account over all postings of an event.
#[derive(Debug, Clone, Copy, Default)]
struct Effect {
    debit: u64,
    credit: u64,
}

fn overflow(lot_id: &str) -> Violation {
    Violation::new(
        HardRule::Counts,
        "counts.overflow",
        format!("quantities of lot {lot_id} overflow 64 bits"),
    )
}

/// The net effect of `moves` per (site, slot), in order of first appearance; `None` if a
/// sum overflows.
fn effects(moves: &Moves) -> Option<Vec<((SiteIx, Slot), Effect)>> {
    let mut effects: Vec<((SiteIx, Slot), Effect)> = Vec::with_capacity(4);
    let mut entry = |site: SiteIx, slot: Slot| -> usize {
        match effects.iter().position(|(key, _)| *key == (site, slot)) {
            Some(at) => at,
            None => {
                effects.push(((site, slot), Effect::default()));
                effects.len() - 1
            }
        }
    };
    let mut touched = Vec::with_capacity(moves.postings.len() * 2);
    for (from, to, units) in &moves.postings {
        if let Account::At(site, slot) = from {
            touched.push((entry(*site, *slot), true, *units));
        }
        if let Account::At(site, slot) = to {
            touched.push((entry(*site, *slot), false, *units));
        }
    }
    for (at, debit, units) in touched {
        let effect = &mut effects[at].1;
        let side = if debit {
            &mut effect.debit
        } else {
            &mut effect.credit
        };
        *side = side.checked_add(units)?;
    }
    Some(effects)
}

impl ComplianceState {
    /// Judges `moves` on lot `lot_id` against the books without changing anything:
    /// retention ceilings (hard 9), then every balance (hard 5: below zero or overflow).
    pub(super) fn check_moves(&self, moves: &Moves, lot_id: &str) -> Result<(), Violation> {
        let lot = self.lots.try_at(moves.lot.0);
        let balance = |site: SiteIx, slot: Slot| lot.map_or(0, |lot| lot.balance(site, slot));
        let mut effects = effects(moves).ok_or_else(|| overflow(lot_id))?;

        let mut retained_change: Vec<(InstIx, i128)> = Vec::new();
        for ((_, slot), effect) in &effects {
            if let Slot::Retained(institution) = slot {
                let change = effect.credit as i128 - effect.debit as i128;
                match retained_change.iter_mut().find(|(i, _)| i == institution) {
                    Some((_, sum)) => *sum += change,
                    None => retained_change.push((*institution, change)),
                }
            }
        }
        retained_change
            .sort_by(|(a, _), (b, _)| self.institution_id(*a).cmp(self.institution_id(*b)));
        for (institution_ix, change) in retained_change {
            if change <= 0 {
                continue;
            }
            let institution = self.institution(institution_ix);
            let after = institution.retained_units as i128 + change;
            if after > institution.info.ceiling as i128 {
                return Err(Violation::new(
                    HardRule::RetentionAuthority,
                    "retention.ceiling_exceeded",
                    format!(
                        "institution {} may retain at most {} units and retains {}; adding {change} would make \
                         {after}",
                        self.institution_id(institution_ix),
                        institution.info.ceiling,
                        institution.retained_units
                    ),
                ));
            }
        }

        if effects.len() > 1 {
            effects.sort_by(|(a, _), (b, _)| self.cmp_accounts(*a, *b));
        }
        for ((site, slot), effect) in &effects {
            let book = balance(*site, *slot);
            let available = book
                .checked_add(effect.credit)
                .ok_or_else(|| overflow(lot_id))?;
            if available < effect.debit {
                let incoming = if effect.credit > 0 {
                    format!(" (plus {} coming in)", effect.credit)
                } else {
                    String::new()
                };
                return Err(Violation::new(
                    HardRule::Counts,
                    "counts.below_zero",
                    format!(
                        "lot {lot_id} at site {} holds {book} units {}{incoming}; this event takes {}, which would \
                         leave -{}",
                        self.site_id(*site),
                        self.bucket(*slot),
                        effect.debit,
                        effect.debit - available
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Applies `moves`, which [`Self::check_moves`] accepted, to the lot (which must
    /// exist by now), the institutions' retained totals and the open differences.
    pub(super) fn commit_moves(&mut self, moves: &Moves, today: Date) {
        let effects = effects(moves).expect("moves were checked before commit");
        let lot = self.lots.at_mut(moves.lot.0);
        let mut book_change: Vec<(SiteIx, i128)> = Vec::new();
        for ((site, slot), effect) in &effects {
            let key = (*site, *slot);
            let before = lot.balances.get(&key).copied().unwrap_or(0);
            let after = before
                .checked_add(effect.credit)
                .and_then(|units| units.checked_sub(effect.debit))
                .expect("a checked balance never goes below zero or overflows");
            if after == 0 {
                lot.balances.remove(&key);
            } else {
                lot.balances.insert(key, after);
            }
            let change = effect.credit as i128 - effect.debit as i128;
            if moves.explains && slot.is_site_book() {
                match book_change.iter_mut().find(|(s, _)| s == site) {
                    Some((_, sum)) => *sum += change,
                    None => book_change.push((*site, change)),
                }
            }
            if let Slot::Retained(institution_ix) = slot {
                let institution = self.institutions.at_mut(institution_ix.0);
                let total = institution.retained_units as i128 + change;
                assert!(
                    total >= 0 && total <= u64::MAX as i128,
                    "retained total of {} out of range",
                    institution.info.institution_id
                );
                institution.retained_units = total as u64;
                if change != 0 {
                    institution.last_change = Some(today);
                    institution.unchanged_flagged = false;
                }
            }
        }
        for (site, change) in book_change {
            if let Some(difference) = lot.physical_differences.get_mut(&site) {
                difference.unexplained += change;
                if difference.unexplained == 0 {
                    lot.physical_differences.remove(&site);
                }
            }
        }
    }
}
