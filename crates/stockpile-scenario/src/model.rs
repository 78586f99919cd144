//! The generator's own reference model: units per lot × site × pool, folded from the
//! events the generator emits, written independently of the state machine.
//!
//! The generator decides every quantity from this model (what is stockpiled where, what
//! a count must find), so a scenario never asks the ledger for an impossibility; at the
//! end the model gives the expected totals the verifier's report must match. It asserts
//! its own invariants: a pool going below zero here is a generator bug.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use stockpile_core::events::{DestructionBasis, Event, EventBody, SiteKind};

/// A pool of one lot at one site (the state machine calls these buckets).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Pool {
    Stockpiled,
    Retained(String),
    Korea,
    /// Shipped from this site, by shipment id.
    InTransit(String),
    /// Shipped to this site, missing on receipt, by shipment id.
    Unreceived(String),
    Destroyed,
    Consumed(String),
    Lost,
    TransferredOut,
}

impl Pool {
    /// What a physical count at the site finds.
    fn is_site_book(&self) -> bool {
        matches!(self, Pool::Stockpiled | Pool::Retained(_) | Pool::Korea)
    }

    fn is_held(&self) -> bool {
        matches!(
            self,
            Pool::Stockpiled
                | Pool::Retained(_)
                | Pool::Korea
                | Pool::InTransit(_)
                | Pool::Unreceived(_)
        )
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SiteM {
    pub id: String,
    pub kind: SiteKind,
    /// Country differs from the State: a shipment there is an export.
    pub foreign: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct LotM {
    pub id: String,
    pub type_id: String,
    pub declared: u64,
    /// Units per (site index, pool); zero balances removed.
    pub balances: BTreeMap<(usize, Pool), u64>,
}

impl LotM {
    pub fn get(&self, site: usize, pool: &Pool) -> u64 {
        self.balances
            .get(&(site, pool.clone()))
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, site: usize, pool: Pool, units: u64) {
        if units == 0 {
            return;
        }
        let slot = self.balances.entry((site, pool)).or_insert(0);
        *slot = slot.checked_add(units).expect("lot balance overflow");
    }

    fn take(&mut self, site: usize, pool: Pool, units: u64) {
        if units == 0 {
            return;
        }
        let key = (site, pool);
        let have = self.balances.get(&key).copied().unwrap_or(0);
        assert!(
            have >= units,
            "generator bug: lot {} at site #{} holds {have} units {:?}, an event takes {units}",
            self.id,
            key.0,
            key.1
        );
        if have == units {
            self.balances.remove(&key);
        } else {
            self.balances.insert(key, have - units);
        }
    }

    fn move_units(&mut self, from: (usize, Pool), to: (usize, Pool), units: u64) {
        self.take(from.0, from.1, units);
        self.add(to.0, to.1, units);
    }

    pub fn held(&self) -> u64 {
        self.balances
            .iter()
            .filter(|((_, pool), _)| pool.is_held())
            .map(|(_, units)| units)
            .sum()
    }

    pub fn site_book(&self, site: usize) -> u64 {
        self.balances
            .iter()
            .filter(|((s, pool), _)| *s == site && pool.is_site_book())
            .map(|(_, units)| units)
            .sum()
    }

    pub fn stockpiled(&self, site: usize) -> u64 {
        self.get(site, &Pool::Stockpiled)
    }

    /// Sites holding stockpiled units, with the units, in site order.
    pub fn stockpiled_sites(&self) -> Vec<(usize, u64)> {
        self.balances
            .iter()
            .filter(|((_, pool), _)| *pool == Pool::Stockpiled)
            .map(|((site, _), units)| (*site, *units))
            .collect()
    }

    pub fn retained_by(&self, institution_id: &str) -> u64 {
        self.balances
            .iter()
            .filter(|((_, pool), _)| matches!(pool, Pool::Retained(id) if id == institution_id))
            .map(|(_, units)| units)
            .sum()
    }
}

#[derive(Debug, Clone)]
struct ShipmentM {
    lot: usize,
    from: usize,
    to: usize,
    units: u64,
}

/// A destruction whose quantity a correction may raise.
#[derive(Debug, Clone)]
struct CorrectableM {
    lot: usize,
    site: usize,
    source: Pool,
    units: u64,
}

/// The reference model.
#[derive(Debug, Default)]
pub(crate) struct Model {
    state_id: String,
    pub sites: Vec<SiteM>,
    site_index: HashMap<String, usize>,
    pub lots: Vec<LotM>,
    lot_index: HashMap<String, usize>,
    /// Institution id → its site index.
    institutions: BTreeMap<String, usize>,
    /// Open domestic shipments.
    shipments: HashMap<String, ShipmentM>,
    /// Destructions registered for correction, by event id.
    correctable: HashMap<String, CorrectableM>,
    /// Open physical ≠ book differences the story created and has not yet explained.
    pub open_physical_differences: u64,
}

impl Model {
    pub fn site(&self, site_id: &str) -> usize {
        *self
            .site_index
            .get(site_id)
            .unwrap_or_else(|| panic!("generator bug: unknown site {site_id}"))
    }

    pub fn lot(&self, lot_id: &str) -> usize {
        *self
            .lot_index
            .get(lot_id)
            .unwrap_or_else(|| panic!("generator bug: unknown lot {lot_id}"))
    }

    pub fn institution_site(&self, institution_id: &str) -> usize {
        self.institutions[institution_id]
    }

    /// Domestic depots, in registration order.
    pub fn domestic_depots(&self) -> Vec<usize> {
        (0..self.sites.len())
            .filter(|&s| self.sites[s].kind == SiteKind::Depot && !self.sites[s].foreign)
            .collect()
    }

    /// Remembers a just-emitted destruction so that a later correction can raise it.
    pub fn register_correctable(&mut self, event_id: &str, lot: usize, site: usize, units: u64) {
        let correctable = CorrectableM {
            lot,
            site,
            source: Pool::Stockpiled,
            units,
        };
        self.correctable.insert(event_id.to_string(), correctable);
    }

    /// Folds one accepted event.
    pub fn apply(&mut self, event: &Event) {
        match &event.body {
            EventBody::RegimeConfigured(e) => self.state_id = e.state_id.clone(),
            EventBody::SiteRegistered(e) => {
                let foreign = !e.country_code.eq_ignore_ascii_case(&self.state_id);
                self.site_index.insert(e.site_id.clone(), self.sites.len());
                self.sites.push(SiteM {
                    id: e.site_id.clone(),
                    kind: e.kind,
                    foreign,
                });
            }
            EventBody::InstitutionAuthorized(e) => {
                let site = self.site(&e.site_id);
                self.institutions.insert(e.institution_id.clone(), site);
            }
            EventBody::LotDeclared(e) => {
                assert!(
                    !self.lot_index.contains_key(&e.lot_id),
                    "generator bug: lot {} declared twice",
                    e.lot_id
                );
                let site = self.site(&e.site_id);
                let mut lot = LotM {
                    id: e.lot_id.clone(),
                    type_id: e.type_id.clone(),
                    declared: e.quantity,
                    balances: BTreeMap::new(),
                };
                lot.add(site, Pool::Stockpiled, e.quantity);
                self.lot_index.insert(e.lot_id.clone(), self.lots.len());
                self.lots.push(lot);
            }
            EventBody::LotRetained(e) => {
                let (lot, site) = (self.lot(&e.lot_id), self.site(&e.site_id));
                let retained = Pool::Retained(e.institution_id.clone());
                self.lots[lot].move_units((site, Pool::Stockpiled), (site, retained), e.quantity);
            }
            EventBody::RetainedMinesConsumed(e) => {
                let lot = self.lot(&e.lot_id);
                let own = self.institution_site(&e.institution_id);
                let retained = Pool::Retained(e.institution_id.clone());
                let mut sites: Vec<usize> = self.lots[lot]
                    .balances
                    .keys()
                    .filter(|(_, pool)| *pool == retained)
                    .map(|(site, _)| *site)
                    .collect();
                sites.sort_by_key(|site| (*site != own, self.sites[*site].id.clone()));
                let mut left = e.quantity;
                for site in sites {
                    let take = left.min(self.lots[lot].get(site, &retained));
                    let consumed = Pool::Consumed(e.institution_id.clone());
                    self.lots[lot].move_units((site, retained.clone()), (site, consumed), take);
                    left -= take;
                }
                assert_eq!(
                    left, 0,
                    "generator bug: consumption of lot {} exceeds the retained pool",
                    e.lot_id
                );
            }
            EventBody::LotShipped(e) => {
                let (lot, from, to) = (
                    self.lot(&e.lot_id),
                    self.site(&e.from_site_id),
                    self.site(&e.to_site_id),
                );
                if self.sites[to].foreign {
                    self.lots[lot].move_units(
                        (from, Pool::Stockpiled),
                        (from, Pool::TransferredOut),
                        e.quantity,
                    );
                } else {
                    let transit = Pool::InTransit(e.shipment_id.clone());
                    self.lots[lot].move_units(
                        (from, Pool::Stockpiled),
                        (from, transit),
                        e.quantity,
                    );
                    self.shipments.insert(
                        e.shipment_id.clone(),
                        ShipmentM {
                            lot,
                            from,
                            to,
                            units: e.quantity,
                        },
                    );
                }
            }
            EventBody::LotReceived(e) => {
                let shipment = self.shipments.remove(&e.shipment_id).unwrap_or_else(|| {
                    panic!(
                        "generator bug: receipt of unknown shipment {}",
                        e.shipment_id
                    )
                });
                assert!(
                    e.quantity_counted <= shipment.units,
                    "generator bug: receipt counts more than shipped"
                );
                let lot = &mut self.lots[shipment.lot];
                lot.take(
                    shipment.from,
                    Pool::InTransit(e.shipment_id.clone()),
                    shipment.units,
                );
                lot.add(shipment.to, Pool::Stockpiled, e.quantity_counted);
                lot.add(
                    shipment.to,
                    Pool::Unreceived(e.shipment_id.clone()),
                    shipment.units - e.quantity_counted,
                );
            }
            EventBody::LotDestroyed(e) => {
                let (lot, site) = (self.lot(&e.lot_id), self.site(&e.site_id));
                let source = match (&e.basis, &e.institution_id) {
                    (DestructionBasis::RetainedExcess, Some(institution)) => {
                        Pool::Retained(institution.clone())
                    }
                    _ => Pool::Stockpiled,
                };
                self.lots[lot].move_units((site, source), (site, Pool::Destroyed), e.quantity);
            }
            EventBody::LotDesignatedForKoreaDefense(e) => {
                let (lot, site) = (self.lot(&e.lot_id), self.site(&e.site_id));
                self.lots[lot].move_units(
                    (site, Pool::Stockpiled),
                    (site, Pool::Korea),
                    e.quantity,
                );
            }
            EventBody::KoreaDesignationRevoked(e) => {
                let (lot, site) = (self.lot(&e.lot_id), self.site(&e.site_id));
                self.lots[lot].move_units(
                    (site, Pool::Korea),
                    (site, Pool::Stockpiled),
                    e.quantity,
                );
            }
            EventBody::LossReported(e) => {
                let (lot, site) = (self.lot(&e.lot_id), self.site(&e.site_id));
                let unreceived: Vec<Pool> = self.lots[lot]
                    .balances
                    .keys()
                    .filter(|(s, pool)| *s == site && matches!(pool, Pool::Unreceived(_)))
                    .map(|(_, pool)| pool.clone())
                    .collect();
                let mut left = e.quantity;
                for pool in unreceived {
                    let take = left.min(self.lots[lot].get(site, &pool));
                    self.lots[lot].move_units((site, pool), (site, Pool::Lost), take);
                    left -= take;
                }
                self.lots[lot].move_units((site, Pool::Stockpiled), (site, Pool::Lost), left);
            }
            EventBody::CorrectionIssued(e) => {
                let Some(correctable) = self.correctable.get_mut(&e.corrected_event_id) else {
                    panic!(
                        "generator bug: correction of {} which the model cannot correct",
                        e.corrected_event_id
                    )
                };
                let change = e
                    .changes
                    .iter()
                    .find(|change| change.field == "quantity")
                    .expect("a quantity correction");
                let old: u64 = change.old_value.parse().expect("old quantity");
                let new: u64 = change.new_value.parse().expect("new quantity");
                assert_eq!(
                    old, correctable.units,
                    "generator bug: correction's old value differs from the books"
                );
                assert!(new >= old, "the scenario only raises destroyed quantities");
                let (lot, site, source) = (
                    correctable.lot,
                    correctable.site,
                    correctable.source.clone(),
                );
                correctable.units = new;
                self.lots[lot].move_units((site, source), (site, Pool::Destroyed), new - old);
            }
            EventBody::MineTypeRegistered(_)
            | EventBody::SignerAuthorized(_)
            | EventBody::KeyRevoked(_)
            | EventBody::DestructionCertified(_)
            | EventBody::TransferRequested(_)
            | EventBody::TransferRefused(_)
            | EventBody::TransferApproved(_)
            | EventBody::InventoryVerified(_) => {}
        }
    }

    /// The totals the verifier's report must show.
    pub fn totals(&self) -> ReferenceTotals {
        let mut totals = ReferenceTotals {
            lots: self.lots.len() as u64,
            open_shipments: self.shipments.len() as u64,
            open_differences: self.open_physical_differences,
            ..ReferenceTotals::default()
        };
        for lot in &self.lots {
            totals.declared += lot.declared;
            if lot.held() == 0 {
                totals.terminal_lots += 1;
            }
            let by_type = totals.by_type.entry(lot.type_id.clone()).or_default();
            by_type.declared += lot.declared;
            for ((site, pool), units) in &lot.balances {
                totals.totals.add(pool, *units);
                by_type.add(pool, *units);
                totals
                    .by_site
                    .entry(self.sites[*site].id.clone())
                    .or_default()
                    .add(pool, *units);
                if matches!(pool, Pool::Unreceived(_)) {
                    totals.open_differences += 1;
                }
            }
        }
        for (institution, site) in &self.institutions {
            let retained: u64 = self
                .lots
                .iter()
                .map(|lot| lot.get(*site, &Pool::Retained(institution.clone())))
                .sum();
            totals
                .retained_by_institution
                .insert(institution.clone(), retained);
        }
        totals
    }
}

/// Units per pool, named as in the state machine's `PoolTotals`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UnitTotals {
    /// Held, not retained, not designated: what Article 4 requires destroyed.
    pub stockpiled: u64,
    pub retained: u64,
    /// Designated for the defense of the Republic of Korea.
    pub korea: u64,
    pub in_transit: u64,
    /// Shipped, missing on receipt, not yet explained.
    pub unreceived: u64,
    pub destroyed: u64,
    pub consumed: u64,
    pub lost: u64,
    pub transferred_out: u64,
}

impl UnitTotals {
    fn add(&mut self, pool: &Pool, units: u64) {
        let slot = match pool {
            Pool::Stockpiled => &mut self.stockpiled,
            Pool::Retained(_) => &mut self.retained,
            Pool::Korea => &mut self.korea,
            Pool::InTransit(_) => &mut self.in_transit,
            Pool::Unreceived(_) => &mut self.unreceived,
            Pool::Destroyed => &mut self.destroyed,
            Pool::Consumed(_) => &mut self.consumed,
            Pool::Lost => &mut self.lost,
            Pool::TransferredOut => &mut self.transferred_out,
        };
        *slot += units;
    }

    /// Units still held somewhere.
    pub fn held(&self) -> u64 {
        self.stockpiled + self.retained + self.korea + self.in_transit + self.unreceived
    }

    /// Units gone for good: destroyed, consumed, lost or transferred out.
    pub fn gone(&self) -> u64 {
        self.destroyed + self.consumed + self.lost + self.transferred_out
    }
}

/// Units of one mine type, with the declared total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeTotals {
    /// Declared units (after corrections; the scenario never corrects a declaration).
    pub declared: u64,
    #[serde(flatten)]
    pub pools: UnitTotals,
}

impl TypeTotals {
    fn add(&mut self, pool: &Pool, units: u64) {
        self.pools.add(pool, units);
    }
}

/// The expected end state of a scenario, computed by the generator's own model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReferenceTotals {
    pub lots: u64,
    /// Lots with no units left in any held pool.
    pub terminal_lots: u64,
    pub declared: u64,
    pub totals: UnitTotals,
    pub by_type: BTreeMap<String, TypeTotals>,
    /// In-transit units count at the site they left, terminal ones where they ended.
    pub by_site: BTreeMap<String, UnitTotals>,
    pub retained_by_institution: BTreeMap<String, u64>,
    pub open_shipments: u64,
    /// Open physical ≠ book and shipper/receiver differences.
    pub open_differences: u64,
}
