//! The compliance state machine: a deterministic fold of accepted events into stockpile
//! state that enforces the hard invariants of shared/domain.md §4 and records flags.
//!
//! # What it does
//! [`ComplianceState::apply`] judges one event against the books and either refuses it
//! with a [`Violation`] (hard failures 4–10; 1–3 belong to the ledger layer) or applies it
//! and returns the [`Flag`]s it raised (flags 11–20). [`ComplianceState::advance_to`]
//! raises the flags that time alone brings. Nothing here reads a clock: "today" is the
//! date of the entry's `recorded_at`, handed in by the ledger.
//!
//! # The books
//! Every lot holds a balance per site × [`Bucket`]: the held pools (stockpiled, retained
//! per institution, designated for Korea, in transit per shipment, unreceived per
//! shipment) and the terminal ones (destroyed, consumed per institution, lost,
//! transferred out). Every quantity event becomes a list of postings between these
//! accounts (or the world outside the books), which is checked as a whole and only then
//! committed, so a refused event changes nothing.
//!
//! # Memory
//! The state is a streaming fold: entries go in one at a time and its memory follows the
//! number of lots, sites, mine types, institutions, transfer requests and open items
//! (shipments in transit, differences, deadlines not yet due), not the ledger's length.
//! Where the domain forces it to remember every event, it keeps a small fixed-size
//! record, never a `String` (see `compact`):
//! - every event a later one may name (everything but inventory counts, corrections and
//!   key events): 24 bytes, its id's 128-bit [`Fingerprint`] → [`EventRecord`] (kind and
//!   a handle);
//! - every shipment (a receipt names it, once; a correction of the receipt moves its
//!   books; an open difference names it): 20 bytes of fingerprint → handle, a 32-byte
//!   record, and its id and its receipt's id in a name arena;
//! - every destruction, loss and consumption (corrections redraw them, certificates
//!   cover destructions): a 48-byte draw record, with no heap allocation for the usual
//!   single draw, plus 16 bytes per destruction;
//! - every certificate id (certificates are unique): its 16-byte fingerprint.
//!
//! Lots, sites, institutions and shipments are referred to by 32-bit handles into
//! interned tables. Time-driven flags keep their pending deadlines indexed by due date,
//! so a new date looks only at what fell due. On a routine-heavy ledger (a third each
//! shipments, receipts and inventory counts) this comes to about 50 bytes of heap per
//! accepted event.
//!
//! # Files
//! - `compact`: fingerprints, handles, interned tables, the fingerprint map, the name
//!   arena.
//! - `book`: buckets, postings, the check-then-commit of a list of postings.
//! - `registry`: regime, sites, mine types, institutions.
//! - `lots`: the lot lifecycle, from declaration to destruction and certification.
//! - `shipments`: shipments and receipts, and the compact record of every shipment.
//! - `transfers`: transfer requests, decisions and the Article 3 test of approvals.
//! - `corrections`: quantity corrections that move the books.
//! - `clock`: [`ComplianceState::advance_to`], the flags of passing time and the index of
//!   deadlines by due date.
//! - `digest`: [`StockpileSummary`] and the state digest.

mod book;
mod clock;
pub(crate) mod compact;
mod corrections;
mod digest;
mod lots;
mod registry;
mod shipments;
mod transfers;

#[cfg(test)]
mod tests;

pub use book::Bucket;
pub use compact::{Fingerprint, Table};
pub use digest::{OpenDifference, PoolTotals, STATE_DIGEST_TAG, StockpileSummary};

use book::Slot;
use clock::Deadlines;
use compact::{FpMap, InstIx, LotIx, ShipIx, SiteIx};
use shipments::Shipments;

use crate::events::{
    Event, EventBody, EventKind, InstitutionAuthorized, LotBasis, LotDeclared, MineTypeRegistered,
    Purpose, Regime, RegimeConfigured, Role, SiteRegistered, TransferRequested,
};
use crate::time::{Date, TimestampMs};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

/// The hard invariants of domain.md §4 (numbered as there). An event that breaks one is
/// refused by the sequencer; a chain that contains one as accepted fails verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HardRule {
    /// 1. Chain: contiguous indices, links (checked by the verifier, not here).
    Chain,
    /// 2. Signature: authorised, unrevoked key.
    Signature,
    /// 3. Role: each event kind comes only from its role.
    Role,
    /// 4. References, unique ids, occurred_at ≤ recorded_at, fields the basis requires.
    References,
    /// 5. Counts: positive quantities, no pool below zero.
    Counts,
    /// 6. Destroyed or consumed units never come back.
    DestroyedTerminal,
    /// 7. A receipt names an open shipment of the same lot, received once.
    ShipmentsClose,
    /// 8. Transfers only under Article 3.
    TransfersArticle3,
    /// 9. Retention within the institution's authority.
    RetentionAuthority,
    /// 10. Korea designation only under U.S. regimes, only on undestroyed units.
    KoreaDesignation,
}

impl HardRule {
    /// The number of the rule in domain.md §4.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }
}

/// The flags of domain.md §4 (numbered as there): facts that show a breach. The event is
/// appended anyway and the flag is listed with its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagRule {
    /// 11. Physical count ≠ book.
    PhysicalBook = 11,
    /// 12. Received ≠ shipped, seal not intact, or too long in transit.
    Shipment = 12,
    /// 13. Stockpile above zero after the Article 4 deadline; late destructions.
    Article4 = 13,
    /// 14. Discovered stock not destroyed within six months.
    DiscoveredStock = 14,
    /// 15. Acquisition after the regime's cut-off date.
    LateAcquisition = 15,
    /// 16. Korea rule: undesignated stock did not fall during a calendar year.
    KoreaRule = 16,
    /// 17. Retention unchanged for two years, above benchmark, or unreviewed.
    Retention = 17,
    /// 18. No independent witness, no certificate in time, certified ≠ destroyed.
    DestructionEvidence = 18,
    /// 19. Missing manufacturer lot number.
    MissingLotNumber = 19,
    /// 20. Suspicious records: stock-raising corrections, long recording gaps,
    ///     signatures by a compromised key after its suspect-from time.
    Suspicious = 20,
    /// 21. Reporting deadlines.
    Deadlines = 21,
}

/// Why an event was refused: the rule, a stable code, and a sentence with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: HardRule,
    /// Stable machine-readable code, e.g. `counts.below_zero`.
    pub code: String,
    /// Human sentence naming ids and quantities, e.g. "lot L-7 at site D-1 holds 120
    /// stockpiled units; destroying 150 would leave -30".
    pub message: String,
}

impl Violation {
    pub(crate) fn new(rule: HardRule, code: &str, message: String) -> Violation {
        Violation {
            rule,
            code: code.to_string(),
            message,
        }
    }
}

/// A flag raised by an event (or by time passing), with the evidence that proves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub rule: FlagRule,
    /// Stable machine-readable code, e.g. `shipment.short_receipt`.
    pub code: String,
    /// Ledger index of the entry that raised it.
    pub index: u64,
    /// Event ids that prove it (the raising event first).
    pub event_ids: Vec<String>,
    pub message: String,
}

/// Where an event sits in the ledger, as the state machine needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    pub index: u64,
    pub recorded_at: TimestampMs,
    /// The role of the key that signed the event (already checked against the kind).
    pub signer_role: Role,
    pub key_id: &'a str,
}

/// The regime in force, and the history of regime changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegimeState {
    /// The latest `RegimeConfigured`: it applies from its entry on.
    pub config: RegimeConfigured,
    pub event_id: String,
    /// Every `RegimeConfigured` accepted, oldest first (a handful: one per policy change).
    pub history: Vec<RegimeChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegimeChange {
    pub event_id: String,
    pub index: u64,
    pub regime: Regime,
    /// The date of the entry that made the change.
    pub recorded_on: Date,
}

impl RegimeState {
    pub fn regime(&self) -> Regime {
        self.config.regime
    }

    /// EIF + 4 years under `APMBC`; none under the U.S. regimes.
    pub fn article4_deadline(&self) -> Option<Date> {
        registry::article4_deadline(&self.config)
    }

    /// A site is foreign when its country is not the State's.
    pub fn is_foreign(&self, site: &Site) -> bool {
        !site
            .info
            .country_code
            .eq_ignore_ascii_case(&self.config.state_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub event_id: String,
    pub info: SiteRegistered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MineType {
    pub event_id: String,
    pub info: MineTypeRegistered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Institution {
    pub event_id: String,
    pub info: InstitutionAuthorized,
    /// Units retained by this institution, over all lots and sites (kept equal to the
    /// sum of its `Retained` buckets by every commit).
    pub retained_units: u64,
    /// Date of the last change of `retained_units` (a consumption is a change).
    pub last_change: Option<Date>,
    /// Flag 17 `retention.unchanged` was raised for the stretch since `last_change`.
    pub unchanged_flagged: bool,
}

impl Institution {
    /// Authorised on `date`: within `valid_from..=valid_to` where given.
    pub fn valid_on(&self, date: Date) -> bool {
        self.info.valid_from.is_none_or(|from| from <= date)
            && self.info.valid_to.is_none_or(|to| date <= to)
    }

    pub fn permits(&self, purpose: Purpose) -> bool {
        self.info.permitted_purposes.contains(&purpose)
    }
}

/// A declared lot and its books, as the read API shows them ([`ComplianceState::lot`]):
/// ids spelled out. The state keeps the same figures keyed by handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lot {
    /// The `LotDeclared` event.
    pub event_id: String,
    /// The declaration as recorded (its `quantity` is the original one; see `declared_units`).
    pub info: LotDeclared,
    /// The declared quantity after corrections.
    pub declared_units: u64,
    /// Units per site × bucket; zero balances are removed.
    pub balances: BTreeMap<(String, Bucket), u64>,
    /// Open physical ≠ book differences (flag 11), per site.
    pub physical_differences: BTreeMap<String, PhysicalDifference>,
    /// Flag 14 `discovered.not_destroyed_in_time` was raised.
    pub discovery_flagged: bool,
}

impl Lot {
    pub fn lot_id(&self) -> &str {
        &self.info.lot_id
    }

    pub fn type_id(&self) -> &str {
        &self.info.type_id
    }

    pub fn balance(&self, site_id: &str, bucket: &Bucket) -> u64 {
        // The map is keyed by owned strings; a linear scan of one lot's few balances
        // avoids allocating a key for every lookup.
        self.balances
            .iter()
            .find(|((site, b), _)| site == site_id && b == bucket)
            .map_or(0, |(_, units)| *units)
    }

    /// Units in buckets matching `filter`, over all sites.
    pub fn units_where(&self, filter: impl Fn(&str, &Bucket) -> bool) -> u64 {
        self.balances
            .iter()
            .filter(|((site, bucket), _)| filter(site, bucket))
            .fold(0u64, |sum, (_, units)| sum.saturating_add(*units))
    }

    /// Units still held somewhere (not destroyed, consumed, lost or transferred out).
    pub fn held_units(&self) -> u64 {
        self.units_where(|_, bucket| bucket.is_held())
    }

    /// No units left in any pool and nothing in transit: the lot accepts only
    /// certification, zero counts and corrections (hard 6).
    pub fn is_terminal(&self) -> bool {
        self.held_units() == 0
    }

    /// The book a physical count at `site_id` is compared with: stockpiled, retained and
    /// Korea-designated units at that site.
    pub fn site_book(&self, site_id: &str) -> u64 {
        self.units_where(|site, bucket| site == site_id && bucket.is_site_book())
    }
}

/// A declared lot and its books, as the state keeps them: sites, institutions and
/// shipments by handle. One per lot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LotBook {
    /// The `LotDeclared` event.
    event_id: String,
    /// The declaration as recorded (its `quantity` is the original one; see `declared_units`).
    info: LotDeclared,
    /// Its mine type counts as an APM (types are registered once, before their lots).
    apm: bool,
    /// The declared quantity after corrections.
    declared_units: u64,
    /// Units per site × slot; zero balances are removed.
    balances: BTreeMap<(SiteIx, Slot), u64>,
    /// Open physical ≠ book differences (flag 11), per site.
    physical_differences: BTreeMap<SiteIx, PhysicalDifference>,
    /// Flag 14 `discovered.not_destroyed_in_time` was raised.
    discovery_flagged: bool,
}

impl LotBook {
    fn lot_id(&self) -> &str {
        &self.info.lot_id
    }

    fn balance(&self, site: SiteIx, slot: Slot) -> u64 {
        self.balances.get(&(site, slot)).copied().unwrap_or(0)
    }

    /// Units in slots matching `filter`, over all sites.
    fn units_where(&self, filter: impl Fn(SiteIx, Slot) -> bool) -> u64 {
        self.balances
            .iter()
            .filter(|((site, slot), _)| filter(*site, *slot))
            .fold(0u64, |sum, (_, units)| sum.saturating_add(*units))
    }

    fn held_units(&self) -> u64 {
        self.units_where(|_, slot| slot.is_held())
    }

    /// See [`Lot::is_terminal`].
    fn is_terminal(&self) -> bool {
        self.held_units() == 0
    }

    /// See [`Lot::site_book`].
    fn site_book(&self, site: SiteIx) -> u64 {
        self.units_where(|at, slot| at == site && slot.is_site_book())
    }
}

/// A physical count that differed from the book (flag 11), still unexplained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhysicalDifference {
    /// The `InventoryVerified` event that found it.
    pub event_id: String,
    pub book: u64,
    pub counted: u64,
    /// Book minus physical still unexplained: starts at `book - counted`; losses and
    /// corrections at the site move it; the difference closes at zero.
    pub unexplained: i128,
}

/// A shipment, as the read API shows it ([`ComplianceState::shipments`]). The state keeps
/// a 32-byte record per shipment and the details below only while it is in transit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub shipment_id: String,
    pub lot_id: String,
    pub units: u64,
    pub to_site_id: String,
    pub status: ShipmentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipmentStatus {
    InTransit {
        /// The `LotShipped` event.
        event_id: String,
        from_site_id: String,
        date: Date,
        /// Flag 12 `shipment.overdue` was raised.
        overdue_flagged: bool,
    },
    /// Units went to a foreign site: transferred out on dispatch, no receipt expected.
    Exported,
    Received {
        /// The `LotReceived` event.
        event_id: String,
        /// After corrections.
        counted: u64,
    },
}

impl Shipment {
    pub fn is_open(&self) -> bool {
        matches!(self.status, ShipmentStatus::InTransit { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub event_id: String,
    pub info: TransferRequested,
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Refused {
        event_id: String,
    },
    Approved {
        event_id: String,
        legal_basis: String,
        purpose: Purpose,
        /// Approved units per type.
        approved: BTreeMap<String, u64>,
        /// Units per type already shipped or declared under this approval.
        used: BTreeMap<String, u64>,
    },
}

/// A `LotDestroyed`, as the read API shows it ([`ComplianceState::destructions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destruction {
    pub lot_id: String,
    pub type_id: String,
    pub site_id: String,
    /// After corrections.
    pub units: u64,
    pub end_date: Date,
    /// Certificates covering it.
    pub certificates: u32,
    /// Flag 18 `destruction.uncertified` was raised.
    pub uncertified_flagged: bool,
}

/// A `LotDestroyed`, as certification and its clock need it: 16 bytes. Its lot, site
/// and quantity are in its draw (corrections change the quantity there); its event id is
/// kept only while its certification deadline is pending (see `clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DestructionRecord {
    /// Index into the draws.
    draw: u32,
    end_date: Date,
    /// Certificates covering it.
    certificates: u32,
    /// Flag 18 `destruction.uncertified` was raised.
    uncertified_flagged: bool,
}

/// What the state remembers of an accepted event, so that later events can refer to it
/// (certificates to destructions, corrections to anything remembered): 8 bytes, kept under
/// the fingerprint of the event id.
///
/// Inventory counts, corrections and key events are not remembered: nothing refers to
/// them by id, and they are the only kinds whose number grows with time alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord {
    pub kind: EventKind,
    /// For a correctable quantity: the lot (`LotDeclared`), the shipment (`LotReceived`,
    /// also `LotShipped`), the destruction (`LotDestroyed`) or the draw (`LossReported`,
    /// `RetainedMinesConsumed`); 0 otherwise.
    handle: u32,
}

// What every remembered event costs: 16 bytes of fingerprint and 8 of record.
const _: () = assert!(size_of::<(Fingerprint, EventRecord)>() == 24);
// A destruction's own record; its draw is 48 bytes, with no heap for a single draw.
const _: () = assert!(size_of::<DestructionRecord>() == 16);
const _: () = assert!(size_of::<DrawRecord>() <= 48);

/// The current quantity of a correctable event, and where it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuantityRef {
    /// `LotDeclared`: the quantity is the lot's `declared_units`.
    Declaration(LotIx),
    /// `LotReceived`: the quantity is the shipment's counted units.
    Receipt(ShipIx),
    /// `LotDestroyed`, `LossReported`, `RetainedMinesConsumed`: units drawn from held
    /// buckets into a terminal one (an index into the draws).
    Draw(u32),
}

/// One draw: units taken from a slot at a site.
type Draw = (SiteIx, Slot, u64);

/// The draws of a destruction, loss or consumption, in drawing order. Nearly every draw
/// takes from one site and bucket: that one is kept inline, without an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Draws {
    One(Draw),
    /// None, or more than one.
    Many(Box<[Draw]>),
}

impl Draws {
    fn from_vec(mut draws: Vec<Draw>) -> Draws {
        if draws.len() == 1 {
            Draws::One(draws.pop().expect("one draw"))
        } else {
            Draws::Many(draws.into_boxed_slice())
        }
    }

    fn as_slice(&self) -> &[Draw] {
        match self {
            Draws::One(draw) => std::slice::from_ref(draw),
            Draws::Many(draws) => draws,
        }
    }
}

/// A destruction, loss or consumption: how many units it took and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DrawRecord {
    lot: LotIx,
    /// After corrections; the draws sum to it.
    units: u64,
    source: DrawSource,
    draws: Draws,
}

impl DrawRecord {
    /// The terminal slot the units went to, at the site each was drawn from.
    fn sink(&self) -> Slot {
        self.source.sink()
    }
}

/// Where a draw takes its units from; a correction that raises the quantity draws again
/// by the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DrawSource {
    /// One slot at one site (destructions), into `Destroyed`.
    Fixed { site: SiteIx, slot: Slot },
    /// A loss at a site, into `Lost`: first the units that never arrived there
    /// (shortfalls of received shipments, in shipment id order), then its stockpile.
    Loss { site: SiteIx },
    /// Consumption, into `Consumed`: the institution's retained units of the lot, its own
    /// site first, then the other sites in id order.
    Retained { institution: InstIx },
}

impl DrawSource {
    fn sink(self) -> Slot {
        match self {
            DrawSource::Fixed { .. } => Slot::Destroyed,
            DrawSource::Loss { .. } => Slot::Lost,
            DrawSource::Retained { institution } => Slot::Consumed(institution),
        }
    }
}

/// The folded state.
#[derive(Debug, Clone, Default)]
pub struct ComplianceState {
    regime: Option<RegimeState>,
    sites: Table<Site>,
    mine_types: BTreeMap<String, MineType>,
    institutions: Table<Institution>,
    lots: Table<LotBook>,
    shipments: Shipments,
    requests: BTreeMap<String, TransferRequest>,
    /// Destructions, losses and consumption, in ledger order.
    draws: Vec<DrawRecord>,
    /// Destructions, in ledger order.
    destructions: Vec<DestructionRecord>,
    /// Fingerprints of the certificate ids seen (certificates must be unique).
    certificates: BTreeSet<Fingerprint>,
    /// Fingerprint of the event id → what later events may need of it.
    records: FpMap<EventRecord>,
    /// Pending deadlines of the time-driven flags, by due date.
    deadlines: Deadlines,
    /// The last date `advance_to` was called with.
    clock: Option<Date>,
    /// Flag 16: undesignated APM units at the start of the current calendar year, once a
    /// whole year has been observed.
    korea_year_start_units: Option<u64>,
    /// Flag 13 `article4.deadline_missed` was raised (it is raised once and never clears).
    article4_flagged: bool,
    /// Flags raised so far, by rule.
    flags_raised: BTreeMap<FlagRule, u64>,
}

/// The event being applied, as the handlers need it.
struct Ctx<'a> {
    event_id: &'a str,
    index: u64,
    /// The date of the entry (`recorded_at`): the state's "today".
    today: Date,
    /// The date the event says it happened (`occurred_at`).
    occurred_on: Date,
    /// Set by the handler of a remembered event: the handle of its [`EventRecord`].
    handle: Cell<u32>,
}

impl Ctx<'_> {
    fn flag(&self, rule: FlagRule, code: &str, more_ids: &[&str], message: String) -> Flag {
        let mut event_ids = vec![self.event_id.to_string()];
        event_ids.extend(more_ids.iter().map(|id| id.to_string()));
        Flag {
            rule,
            code: code.to_string(),
            index: self.index,
            event_ids,
            message,
        }
    }
}

fn refs(code: &str, message: String) -> Violation {
    Violation::new(HardRule::References, code, message)
}

/// Hard 5: event quantities are positive.
fn positive(units: u64, what: &str) -> Result<(), Violation> {
    if units == 0 {
        return Err(Violation::new(
            HardRule::Counts,
            "counts.not_positive",
            format!("{what} is 0; quantities must be positive"),
        ));
    }
    Ok(())
}

impl ComplianceState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event. On `Err` nothing changed. On `Ok`, the flags this event raised.
    pub fn apply(&mut self, event: &Event, position: Position<'_>) -> Result<Vec<Flag>, Violation> {
        use EventBody as B;
        let ctx = Ctx {
            event_id: &event.event_id,
            index: position.index,
            today: position.recorded_at.date(),
            occurred_on: event.occurred_at.date(),
            handle: Cell::new(0),
        };
        let kind = event.body.kind();
        // Key events are the ledger layer's business entirely.
        if matches!(kind, EventKind::SignerAuthorized | EventKind::KeyRevoked) {
            return Ok(Vec::new());
        }
        let fingerprint = Fingerprint::of(&event.event_id);
        if self.records.contains_key(&fingerprint) {
            return Err(refs(
                "references.duplicate_event_id",
                format!("event id {:?} is already in the ledger", event.event_id),
            ));
        }
        let registry = matches!(
            kind,
            EventKind::RegimeConfigured
                | EventKind::SiteRegistered
                | EventKind::MineTypeRegistered
                | EventKind::InstitutionAuthorized
        );
        if !registry && self.regime.is_none() {
            return Err(refs(
                "regime.not_configured",
                format!(
                    "{} before any RegimeConfigured: no rule set applies yet",
                    kind.name()
                ),
            ));
        }
        let flags = match &event.body {
            B::SignerAuthorized(_) | B::KeyRevoked(_) => Vec::new(),
            B::RegimeConfigured(e) => self.on_regime_configured(&ctx, e)?,
            B::SiteRegistered(e) => self.on_site_registered(&ctx, e)?,
            B::MineTypeRegistered(e) => self.on_mine_type_registered(&ctx, e)?,
            B::InstitutionAuthorized(e) => self.on_institution_authorized(&ctx, e)?,
            B::LotDeclared(e) => self.on_lot_declared(&ctx, e)?,
            B::LotRetained(e) => self.on_lot_retained(&ctx, e)?,
            B::RetainedMinesConsumed(e) => self.on_retained_consumed(&ctx, e)?,
            B::LotShipped(e) => self.on_lot_shipped(&ctx, e)?,
            B::LotReceived(e) => self.on_lot_received(&ctx, e)?,
            B::LotDestroyed(e) => self.on_lot_destroyed(&ctx, e)?,
            B::DestructionCertified(e) => self.on_destruction_certified(&ctx, e)?,
            B::LotDesignatedForKoreaDefense(e) => self.on_korea_designated(&ctx, e)?,
            B::KoreaDesignationRevoked(e) => self.on_korea_revoked(&ctx, e)?,
            B::LossReported(e) => self.on_loss_reported(&ctx, e)?,
            B::TransferRequested(e) => self.on_transfer_requested(&ctx, e)?,
            B::TransferRefused(e) => self.on_transfer_refused(&ctx, e)?,
            B::TransferApproved(e) => self.on_transfer_approved(&ctx, e)?,
            B::InventoryVerified(e) => self.on_inventory_verified(&ctx, e)?,
            B::CorrectionIssued(e) => self.on_correction_issued(&ctx, e)?,
        };
        // Accepted: remember it, unless nothing can ever refer to it.
        if !matches!(
            kind,
            EventKind::InventoryVerified | EventKind::CorrectionIssued
        ) {
            let record = EventRecord {
                kind,
                handle: ctx.handle.get(),
            };
            self.records.insert(fingerprint, record);
        }
        self.count_flags(&flags);
        Ok(flags)
    }

    /// Raises the flags that time alone brings (deadlines passed, shipments too long in
    /// transit, certificates overdue), as of `date`. Each is raised once.
    pub fn advance_to(&mut self, date: Date, index: u64) -> Vec<Flag> {
        let flags = self.advance_clock(date, index);
        self.count_flags(&flags);
        flags
    }

    /// The regime in force, if any has been configured.
    pub fn regime(&self) -> Option<&RegimeState> {
        self.regime.as_ref()
    }

    /// A lot and its books, ids spelled out (built on each call).
    pub fn lot(&self, lot_id: &str) -> Option<Lot> {
        self.lots.ix(lot_id).map(|ix| self.lot_view(LotIx(ix)))
    }

    /// Every lot, in id order (each built on demand).
    pub fn lots(&self) -> impl Iterator<Item = Lot> + '_ {
        self.lots
            .iter()
            .map(|(lot_id, _)| self.lot(lot_id).expect("listed"))
    }

    pub fn site(&self, site_id: &str) -> Option<&Site> {
        self.sites.get(site_id)
    }

    pub fn sites(&self) -> &Table<Site> {
        &self.sites
    }

    pub fn mine_types(&self) -> &BTreeMap<String, MineType> {
        &self.mine_types
    }

    pub fn institutions(&self) -> &Table<Institution> {
        &self.institutions
    }

    /// A shipment, open or closed (built on each call).
    pub fn shipment(&self, shipment_id: &str) -> Option<Shipment> {
        let ix = self.shipments.find(shipment_id)?;
        Some(self.shipment_view(ix))
    }

    /// Every shipment, in ledger order (each built on demand).
    pub fn shipments(&self) -> impl Iterator<Item = Shipment> + '_ {
        (0..self.shipments.len()).map(|ix| self.shipment_view(ShipIx(ix)))
    }

    pub fn transfer_requests(&self) -> &BTreeMap<String, TransferRequest> {
        &self.requests
    }

    /// The destruction a `LotDestroyed` event recorded.
    pub fn destruction(&self, event_id: &str) -> Option<Destruction> {
        let record = self.records.get(&Fingerprint::of(event_id))?;
        (record.kind == EventKind::LotDestroyed).then(|| self.destruction_view(record.handle))
    }

    /// Every destruction, in ledger order (each built on demand).
    pub fn destructions(&self) -> impl Iterator<Item = Destruction> + '_ {
        (0..self.destructions.len() as u32).map(|ix| self.destruction_view(ix))
    }

    /// Fingerprints of the certificate ids seen.
    pub fn certificates(&self) -> &BTreeSet<Fingerprint> {
        &self.certificates
    }

    /// What the state remembers of an accepted event.
    pub fn record(&self, event_id: &str) -> Option<EventRecord> {
        self.records.get(&Fingerprint::of(event_id))
    }

    /// The current quantity of a `LotDestroyed` (after corrections).
    pub fn destroyed_units(&self, event_id: &str) -> Option<u64> {
        let record = self.records.get(&Fingerprint::of(event_id))?;
        (record.kind == EventKind::LotDestroyed).then(|| self.destroyed_units_of(record.handle))
    }

    /// Flags raised so far (by `apply` and `advance_to`), by rule.
    pub fn flags_raised(&self) -> &BTreeMap<FlagRule, u64> {
        &self.flags_raised
    }

    fn count_flags(&mut self, flags: &[Flag]) {
        for flag in flags {
            let count = self.flags_raised.entry(flag.rule).or_insert(0);
            *count = count.saturating_add(1);
        }
    }

    // Views for the read API.

    fn lot_view(&self, ix: LotIx) -> Lot {
        let lot = self.lots.at(ix.0);
        Lot {
            event_id: lot.event_id.clone(),
            info: lot.info.clone(),
            declared_units: lot.declared_units,
            balances: lot
                .balances
                .iter()
                .map(|((site, slot), units)| {
                    (
                        (self.site_id(*site).to_string(), self.bucket(*slot)),
                        *units,
                    )
                })
                .collect(),
            physical_differences: lot
                .physical_differences
                .iter()
                .map(|(site, difference)| (self.site_id(*site).to_string(), difference.clone()))
                .collect(),
            discovery_flagged: lot.discovery_flagged,
        }
    }

    fn destruction_view(&self, ix: u32) -> Destruction {
        let destruction = &self.destructions[ix as usize];
        let draw = &self.draws[destruction.draw as usize];
        let DrawSource::Fixed { site, .. } = draw.source else {
            panic!("destruction {ix} draws from one site");
        };
        let lot = self.lots.at(draw.lot.0);
        Destruction {
            lot_id: lot.lot_id().to_string(),
            type_id: lot.info.type_id.clone(),
            site_id: self.site_id(site).to_string(),
            units: draw.units,
            end_date: destruction.end_date,
            certificates: destruction.certificates,
            uncertified_flagged: destruction.uncertified_flagged,
        }
    }

    /// The current quantity of the destruction at `ix`.
    fn destroyed_units_of(&self, ix: u32) -> u64 {
        self.draws[self.destructions[ix as usize].draw as usize].units
    }

    /// Where the quantity of a remembered event lives, if a correction may change it.
    fn quantity_ref(&self, record: EventRecord) -> Option<QuantityRef> {
        match record.kind {
            EventKind::LotDeclared => Some(QuantityRef::Declaration(LotIx(record.handle))),
            EventKind::LotReceived => Some(QuantityRef::Receipt(ShipIx(record.handle))),
            EventKind::LotDestroyed => Some(QuantityRef::Draw(
                self.destructions[record.handle as usize].draw,
            )),
            EventKind::LossReported | EventKind::RetainedMinesConsumed => {
                Some(QuantityRef::Draw(record.handle))
            }
            _ => None,
        }
    }

    // Ids of handles.

    fn site_id(&self, site: SiteIx) -> &str {
        self.sites.id(site.0)
    }

    fn institution_id(&self, institution: InstIx) -> &str {
        self.institutions.id(institution.0)
    }

    fn lot_id(&self, lot: LotIx) -> &str {
        self.lots.id(lot.0)
    }

    // Lookups that refuse with the right rule when a reference is missing.

    fn regime_state(&self) -> Result<&RegimeState, Violation> {
        self.regime.as_ref().ok_or_else(|| {
            refs(
                "regime.not_configured",
                "no RegimeConfigured yet".to_string(),
            )
        })
    }

    fn known_site(&self, site_id: &str) -> Result<SiteIx, Violation> {
        self.sites.ix(site_id).map(SiteIx).ok_or_else(|| {
            refs(
                "references.unknown_site",
                format!("site {site_id:?} is not registered"),
            )
        })
    }

    fn known_type(&self, type_id: &str) -> Result<&MineType, Violation> {
        self.mine_types.get(type_id).ok_or_else(|| {
            refs(
                "references.unknown_type",
                format!("mine type {type_id:?} is not registered"),
            )
        })
    }

    fn known_lot(&self, lot_id: &str) -> Result<LotIx, Violation> {
        self.lots.ix(lot_id).map(LotIx).ok_or_else(|| {
            refs(
                "references.unknown_lot",
                format!("lot {lot_id:?} is not declared"),
            )
        })
    }

    fn known_institution(&self, institution_id: &str) -> Result<InstIx, Violation> {
        self.institutions
            .ix(institution_id)
            .map(InstIx)
            .ok_or_else(|| {
                refs(
                    "references.unknown_institution",
                    format!("institution {institution_id:?} is not authorised"),
                )
            })
    }

    fn lot_book(&self, lot: LotIx) -> &LotBook {
        self.lots.at(lot.0)
    }

    fn institution(&self, institution: InstIx) -> &Institution {
        self.institutions.at(institution.0)
    }

    /// Hard 6: a terminal lot accepts only certification, zero counts and corrections.
    fn not_terminal(&self, lot: LotIx, kind: EventKind) -> Result<(), Violation> {
        let lot = self.lot_book(lot);
        if lot.is_terminal() {
            return Err(Violation::new(
                HardRule::DestroyedTerminal,
                "destroyed.terminal",
                format!(
                    "lot {} has no units left in any pool (declared {}): a {} cannot act on it",
                    lot.lot_id(),
                    lot.declared_units,
                    kind.name()
                ),
            ));
        }
        Ok(())
    }

    /// A lot declared as discovered after the Article 4 deadline: its own six-month clock
    /// (flag 14) applies instead of the deadline (flag 13).
    fn discovered_after_deadline(&self, lot: &LotBook) -> bool {
        let deadline = self
            .regime
            .as_ref()
            .and_then(RegimeState::article4_deadline);
        lot.info.basis == LotBasis::Discovered
            && matches!((lot.info.basis_date, deadline), (Some(found), Some(deadline)) if found > deadline)
    }
}
