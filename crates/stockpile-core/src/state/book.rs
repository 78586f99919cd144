//! The books of a lot: buckets, postings, and the check-then-commit that keeps every
//! refused event from changing anything.
//!
//! An event that moves units becomes a [`Moves`]: postings of units from one account to
//! another, where an account is a site × [`Bucket`] of the lot or the world outside the
//! books (declarations come from outside; corrections may send units back there).
//! [`ComplianceState::check_moves`] judges the net effect of all postings on every account
//! (hard 9 for retention ceilings, hard 5 for a balance below zero or an overflow);
//! [`ComplianceState::commit_moves`] then applies it and cannot fail.

use super::{ComplianceState, HardRule, Lot, Violation};
use crate::time::Date;
use std::collections::BTreeMap;
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

/// One side of a posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Account {
    /// Outside the books: where declared units come from.
    Outside,
    /// A bucket of the lot at a site.
    At(String, Bucket),
}

impl Account {
    pub(super) fn at(site_id: &str, bucket: Bucket) -> Account {
        Account::At(site_id.to_string(), bucket)
    }
}

/// The postings of one event, all on one lot.
#[derive(Debug, Clone)]
pub(super) struct Moves {
    pub lot_id: String,
    pub postings: Vec<(Account, Account, u64)>,
    /// A loss report or a correction: its net change of a site's book explains (part of)
    /// an open physical ≠ book difference there.
    pub explains: bool,
}

impl Moves {
    pub(super) fn new(lot_id: &str, explains: bool) -> Moves {
        Moves {
            lot_id: lot_id.to_string(),
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

/// The net effect of `moves` per (site, bucket).
fn effects(moves: &Moves) -> Result<BTreeMap<(&str, &Bucket), Effect>, Violation> {
    let mut effects: BTreeMap<(&str, &Bucket), Effect> = BTreeMap::new();
    for (from, to, units) in &moves.postings {
        if let Account::At(site, bucket) = from {
            let effect = effects.entry((site, bucket)).or_default();
            effect.debit = effect
                .debit
                .checked_add(*units)
                .ok_or_else(|| overflow(&moves.lot_id))?;
        }
        if let Account::At(site, bucket) = to {
            let effect = effects.entry((site, bucket)).or_default();
            effect.credit = effect
                .credit
                .checked_add(*units)
                .ok_or_else(|| overflow(&moves.lot_id))?;
        }
    }
    Ok(effects)
}

impl ComplianceState {
    /// Judges `moves` against the books without changing anything: retention ceilings
    /// (hard 9), then every balance (hard 5: below zero or overflow).
    pub(super) fn check_moves(&self, moves: &Moves) -> Result<(), Violation> {
        let lot = self.lots.get(&moves.lot_id);
        let balance =
            |site: &str, bucket: &Bucket| lot.map_or(0, |lot: &Lot| lot.balance(site, bucket));
        let effects = effects(moves)?;

        let mut retained_change: BTreeMap<&str, i128> = BTreeMap::new();
        for ((_, bucket), effect) in &effects {
            if let Bucket::Retained { institution_id } = bucket {
                *retained_change.entry(institution_id).or_default() +=
                    effect.credit as i128 - effect.debit as i128;
            }
        }
        for (institution_id, change) in retained_change {
            if change <= 0 {
                continue;
            }
            let institution = self.known_institution(institution_id)?;
            let after = institution.retained_units as i128 + change;
            if after > institution.info.ceiling as i128 {
                return Err(Violation::new(
                    HardRule::RetentionAuthority,
                    "retention.ceiling_exceeded",
                    format!(
                        "institution {institution_id} may retain at most {} units and retains {}; adding {change} \
                         would make {after}",
                        institution.info.ceiling, institution.retained_units
                    ),
                ));
            }
        }

        for ((site, bucket), effect) in &effects {
            let book = balance(site, bucket);
            let available = book
                .checked_add(effect.credit)
                .ok_or_else(|| overflow(&moves.lot_id))?;
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
                        "lot {} at site {site} holds {book} units {bucket}{incoming}; this event takes {}, which \
                         would leave -{}",
                        moves.lot_id,
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
        let lot = self
            .lots
            .get_mut(&moves.lot_id)
            .expect("a lot exists before its moves are committed");
        let mut book_change: BTreeMap<&str, i128> = BTreeMap::new();
        for ((site, bucket), effect) in &effects {
            let key = (site.to_string(), (*bucket).clone());
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
            if moves.explains && bucket.is_site_book() {
                *book_change.entry(site).or_default() += change;
            }
            if let Bucket::Retained { institution_id } = bucket {
                let institution = self
                    .institutions
                    .get_mut(institution_id)
                    .expect("retained units belong to a known institution");
                let total = institution.retained_units as i128 + change;
                assert!(
                    total >= 0 && total <= u64::MAX as i128,
                    "retained total of {institution_id} out of range"
                );
                institution.retained_units = total as u64;
                if change != 0 {
                    institution.last_change = Some(today);
                    institution.unchanged_flagged = false;
                }
            }
        }
        for (site, change) in book_change {
            if let Some(difference) = lot.physical_differences.get_mut(site) {
                difference.unexplained += change;
                if difference.unexplained == 0 {
                    lot.physical_differences.remove(site);
                }
            }
        }
    }
}
