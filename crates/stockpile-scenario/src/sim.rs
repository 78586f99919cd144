//! The discrete-event engine: simulated time, a queue of scheduled actions, and the
//! operations every data set is built from (ship, receive, destroy, certify, count…).
//!
//! An action runs at its simulated time against the reference model as it is then, emits
//! events, and may schedule later actions (a receipt a day after a shipment). Events come
//! out in the order they are recorded. Nothing reads a clock; every random choice comes
//! from ChaCha20 streams seeded from the config, so a seed reproduces a ledger exactly.
//! Memory is bounded by lots, sites and actions in flight, never by the number of events.

use crate::config::Dataset;
use crate::model::Model;
use crate::outcome::{ExpectedFlag, ExpectedRejection};
use crate::padding::Padding;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use stockpile_core::events::{
    CorrectionIssued, DestructionBasis, DestructionCertified, DestructionMethod, Event, EventBody,
    Evidence, FieldChange, InventoryScope, InventoryVerified, LossReported, LotCount, LotDestroyed,
    LotReceived, LotShipped, RetainedMinesConsumed, Role, SealCheck, SealInspection, TypeQuantity,
    Witness,
};
use stockpile_core::hash::Hash32;
use stockpile_core::time::{Date, TimestampMs};

pub(crate) const MINUTE: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MINUTE;
pub(crate) const DAY: i64 = 24 * HOUR;

/// Longest delay between an event happening and the emitter recording it. Far below the
/// 30 days after which the ledger flags a recording gap (flag 20).
const RECORDING_DELAY_MAX_MS: i64 = 3 * HOUR;

/// Days between a shipment and its receipt in scripted pipelines (domestic trucking);
/// far below the 30 days after which a shipment is flagged overdue.
const SCRIPTED_TRANSIT_DAYS: i64 = 1;

/// Days after which a scripted investigation explains a shipper/receiver difference.
const SHORTFALL_INVESTIGATION_DAYS: i64 = 35;

/// Days between a destruction reported short and the facility count that reveals it, and
/// between that count and the correction.
const SUDAN_COUNT_DAYS: i64 = 10;
const SUDAN_CORRECTION_DAYS: i64 = 15;

/// Routine operations must be over this long before the story first acts on a lot, so
/// that a scripted step never finds the lot's units in a padding shipment.
pub(crate) const PADDING_MARGIN_MS: i64 = 10 * DAY;

pub(crate) fn ymd(year: i32, month: u32, day: u32) -> Date {
    Date::from_ymd(year, month, day)
        .unwrap_or_else(|| panic!("invalid scripted date {year}-{month}-{day}"))
}

pub(crate) fn date_of(t: i64) -> Date {
    TimestampMs(t).date()
}

/// `hour` o'clock UTC on `date`.
pub(crate) fn at_hour(date: Date, hour: i64) -> i64 {
    date.start().0 + hour * HOUR
}

/// Who signs an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signer {
    Role(Role),
    /// The never-authorised key of the hostile submission.
    Rogue,
}

impl Signer {
    fn slot(self) -> usize {
        match self {
            Signer::Role(Role::Registrar) => 0,
            Signer::Role(Role::Depot) => 1,
            Signer::Role(Role::Demil) => 2,
            Signer::Role(Role::Certifier) => 3,
            Signer::Role(Role::ExportControl) => 4,
            Signer::Role(Role::Inspector) => 5,
            Signer::Rogue => 6,
        }
    }
}

/// An event ready to be signed, with its simulated recording time.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub event: Event,
    pub signer: Signer,
    pub recorded_at: TimestampMs,
    pub hostile: bool,
    pub padding: bool,
}

type Action = Box<dyn FnOnce(&mut Sim)>;

struct Scheduled {
    at: i64,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so that the max-heap pops the earliest action first (ties: first scheduled).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The registered sites a data set works with, by role.
#[derive(Debug, Clone, Default)]
pub(crate) struct SiteIds {
    pub depots: Vec<String>,
    pub facility: String,
    pub training: String,
    pub institution: String,
}

/// What a destruction pipeline does, and which incident it scripts.
#[derive(Debug, Clone)]
pub(crate) struct DestroyPlan {
    pub lot_id: String,
    pub start: Date,
    pub end: Date,
    pub method: DestructionMethod,
    pub basis: DestructionBasis,
    /// Independent witnesses present (flag 18 when not).
    pub witnessed: bool,
    /// Scripted: the first receipt at the facility counts two short, with a broken seal.
    pub short_receipt: bool,
    /// Scripted (Sudan): reported this many short, revealed by a count, then corrected.
    pub under_report: u64,
}

impl DestroyPlan {
    pub fn new(lot_id: &str, start: Date, end: Date, method: DestructionMethod) -> DestroyPlan {
        DestroyPlan {
            lot_id: lot_id.to_string(),
            start,
            end,
            method,
            basis: DestructionBasis::Article4,
            witnessed: true,
            short_receipt: false,
            under_report: 0,
        }
    }
}

/// A destruction waiting for its certificate.
#[derive(Debug, Clone)]
struct PendingCertificate {
    event_id: String,
    type_id: String,
    units: u64,
}

/// A known difference between what is physically at a site and the book: what counts
/// there find until a loss report or correction explains it.
#[derive(Debug, Clone)]
struct Shortfall {
    units: u64,
    incident: String,
    revealed: bool,
}

/// The simulation.
pub(crate) struct Sim {
    pub ds: Dataset,
    pub code: &'static str,
    origin: String,
    /// Story choices.
    pub rng: ChaCha20Rng,
    /// Routine-operation choices.
    pub pad_rng: ChaCha20Rng,
    /// Recording delays.
    time_rng: ChaCha20Rng,
    pub now: i64,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    out: VecDeque<Planned>,
    last_recorded: i64,
    event_no: u64,
    emitter_sequences: [u64; 7],
    pub model: Model,
    /// Lot → the first time the story acts on it; padding keeps clear of it from then.
    claims: HashMap<String, i64>,
    /// Lots padding never touches (scripted incidents).
    excluded: HashSet<String>,
    pending_certificates: Vec<PendingCertificate>,
    /// (lot, site) → units physically missing against the book.
    shortfalls: BTreeMap<(usize, usize), Shortfall>,
    counters: BTreeMap<&'static str, u64>,
    pub sites: SiteIds,
    pub expected_flags: Vec<ExpectedFlag>,
    pub expected_rejections: Vec<ExpectedRejection>,
    pub in_padding: bool,
    pub story_events: u64,
    pub padding_events: u64,
    pub padding: Option<Padding>,
    /// The last scripted time: routine padding aims to fill the story's span.
    pub story_end: i64,
    /// When routine padding may begin (after the opening declarations).
    pub padding_from: i64,
}

fn stream(seed: u64, dataset: Dataset, name: &str) -> ChaCha20Rng {
    let digest = Hash32::digest_parts(&[
        b"stockpile-scenario/v1/rng\n",
        dataset.code().as_bytes(),
        b"\n",
        name.as_bytes(),
        b"\n",
        &seed.to_be_bytes(),
    ]);
    ChaCha20Rng::from_seed(digest.0)
}

impl Sim {
    pub fn new(dataset: Dataset, seed: u64) -> Sim {
        Sim {
            ds: dataset,
            code: dataset.code(),
            origin: dataset.origin().to_string(),
            rng: stream(seed, dataset, "story"),
            pad_rng: stream(seed, dataset, "padding"),
            time_rng: stream(seed, dataset, "time"),
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            out: VecDeque::new(),
            last_recorded: 0,
            event_no: 0,
            emitter_sequences: [0; 7],
            model: Model::default(),
            claims: HashMap::new(),
            excluded: HashSet::new(),
            pending_certificates: Vec::new(),
            shortfalls: BTreeMap::new(),
            counters: BTreeMap::new(),
            sites: SiteIds::default(),
            expected_flags: Vec::new(),
            expected_rejections: Vec::new(),
            in_padding: false,
            story_events: 0,
            padding_events: 0,
            padding: None,
            story_end: 0,
            padding_from: 0,
        }
    }

    /// Total events emitted so far.
    pub fn emitted(&self) -> u64 {
        self.story_events + self.padding_events
    }

    /// The next event, running scheduled actions as needed; `None` when the story and
    /// the padding are both over.
    pub fn next_planned(&mut self) -> Option<Planned> {
        loop {
            if let Some(planned) = self.out.pop_front() {
                return Some(planned);
            }
            let scheduled = self.queue.pop()?;
            assert!(
                scheduled.at >= self.now,
                "simulated time never runs backwards"
            );
            self.now = scheduled.at;
            (scheduled.action)(self);
        }
    }

    /// Runs `action` at simulated time `t` (not before now).
    pub fn at(&mut self, t: i64, action: impl FnOnce(&mut Sim) + 'static) {
        self.seq += 1;
        let scheduled = Scheduled {
            at: t.max(self.now),
            seq: self.seq,
            action: Box::new(action),
        };
        self.queue.push(scheduled);
    }

    /// The stream for choices made inside an operation: padding's own while padding, so
    /// that the story's choices do not depend on how much padding ran before.
    pub fn choice_rng(&mut self) -> &mut ChaCha20Rng {
        if self.in_padding {
            &mut self.pad_rng
        } else {
            &mut self.rng
        }
    }

    /// A random time on `date` between `from_hour` and `to_hour` o'clock, whole minutes.
    pub fn on_day(&mut self, date: Date, from_hour: i64, to_hour: i64) -> i64 {
        let minutes = self.rng.gen_range(from_hour * 60..to_hour * 60);
        date.start().0 + minutes * MINUTE
    }

    /// The next value of a named counter, for ids.
    pub fn next_number(&mut self, counter: &'static str) -> u64 {
        let slot = self.counters.entry(counter).or_insert(0);
        *slot += 1;
        *slot
    }

    pub fn next_id(&mut self, kind: &'static str) -> String {
        let number = self.next_number(kind);
        format!("{}-{kind}-{number:06}", self.code)
    }

    // ---------------------------------------------------------------------------------
    // Emission.

    fn actor(&self, signer: Signer) -> String {
        let who = match signer {
            Signer::Role(Role::Registrar) => "national-registrar",
            Signer::Role(Role::Depot) => "depot-service",
            Signer::Role(Role::Demil) => "demil-service",
            Signer::Role(Role::Certifier) => "independent-certifier",
            Signer::Role(Role::ExportControl) => "export-control",
            Signer::Role(Role::Inspector) => "inventory-inspectorate",
            Signer::Rogue => "unregistered-depot-terminal",
        };
        format!("{}/{who} (synthetic)", self.code)
    }

    fn push(
        &mut self,
        signer: Signer,
        occurred: i64,
        body: EventBody,
        evidence: Vec<Evidence>,
        hostile: bool,
    ) -> String {
        let delay = self.time_rng.gen_range(2 * MINUTE..=RECORDING_DELAY_MAX_MS);
        let recorded = (occurred + delay).max(self.last_recorded);
        self.last_recorded = recorded;
        self.event_no += 1;
        let event_id = format!("{}-EV-{:08}", self.code, self.event_no);
        let slot = signer.slot();
        self.emitter_sequences[slot] += 1;
        let event = Event {
            event_id: event_id.clone(),
            origin: self.origin.clone(),
            actor: self.actor(signer),
            emitter_sequence: self.emitter_sequences[slot],
            occurred_at: TimestampMs(occurred),
            evidence,
            body,
        };
        if !hostile {
            self.model.apply(&event);
        }
        if self.in_padding {
            self.padding_events += 1;
        } else {
            self.story_events += 1;
        }
        let padding = self.in_padding;
        self.out.push_back(Planned {
            event,
            signer,
            recorded_at: TimestampMs(recorded),
            hostile,
            padding,
        });
        event_id
    }

    /// Emits an event signed by the key of `role`; returns its id.
    pub fn emit(&mut self, role: Role, occurred: i64, body: EventBody) -> String {
        self.push(Signer::Role(role), occurred, body, Vec::new(), false)
    }

    pub fn emit_with_evidence(
        &mut self,
        role: Role,
        occurred: i64,
        body: EventBody,
        evidence: Vec<Evidence>,
    ) -> String {
        self.push(Signer::Role(role), occurred, body, evidence, false)
    }

    /// Emits a submission the sequencer must refuse with `code` (hard rule `rule`).
    pub fn emit_hostile(
        &mut self,
        signer: Signer,
        occurred: i64,
        body: EventBody,
        rule: u8,
        code: &str,
        description: &str,
    ) -> String {
        let event_id = self.push(signer, occurred, body, Vec::new(), true);
        self.expected_rejections.push(ExpectedRejection {
            event_id: event_id.clone(),
            rule,
            code: code.to_string(),
            description: description.to_string(),
        });
        event_id
    }

    pub fn expect_flag(&mut self, rule: u8, code: &str, event_id: Option<&str>, incident: &str) {
        self.expected_flags.push(ExpectedFlag {
            rule,
            code: code.to_string(),
            event_id: event_id.map(str::to_string),
            incident: incident.to_string(),
        });
    }

    /// A synthetic document digest, e.g. of a photo or a report.
    pub fn document(&self, kind: &str, description: String) -> Evidence {
        let sha256 = Hash32::digest_parts(&[
            b"stockpile-scenario/v1/synthetic-document\n",
            description.as_bytes(),
        ]);
        Evidence {
            kind: kind.to_string(),
            sha256,
            description,
        }
    }

    // ---------------------------------------------------------------------------------
    // Claims: which lots routine padding may touch.

    /// The story acts on `lot_id` from `from` on.
    pub fn claim(&mut self, lot_id: &str, from: i64) {
        let slot = self.claims.entry(lot_id.to_string()).or_insert(from);
        *slot = (*slot).min(from);
    }

    /// Padding never touches `lot_id`.
    pub fn exclude(&mut self, lot_id: &str) {
        self.excluded.insert(lot_id.to_string());
    }

    /// Whether padding may act on the lot now, for an operation over by `now + margin`.
    pub fn padding_may_touch(&self, lot_id: &str) -> bool {
        !self.excluded.contains(lot_id)
            && self
                .claims
                .get(lot_id)
                .is_none_or(|claimed| *claimed > self.now + PADDING_MARGIN_MS)
    }

    /// Whether padding may count the lot (any lot but a scripted incident's).
    pub fn padding_may_count(&self, lot_id: &str) -> bool {
        !self.excluded.contains(lot_id)
    }

    // ---------------------------------------------------------------------------------
    // Operations.

    pub fn site_ix(&self, site_id: &str) -> usize {
        self.model.site(site_id)
    }

    /// Ships `quantity` of the lot; returns the shipment id.
    pub fn ship(
        &mut self,
        lot: usize,
        from: usize,
        to: usize,
        quantity: u64,
        t: i64,
        request_id: Option<String>,
    ) -> String {
        let shipment_id = self.next_id("SHP");
        let seal = self.next_id("SEAL");
        let body = EventBody::LotShipped(LotShipped {
            shipment_id: shipment_id.clone(),
            lot_id: self.model.lots[lot].id.clone(),
            quantity,
            from_site_id: self.model.sites[from].id.clone(),
            to_site_id: self.model.sites[to].id.clone(),
            seal_ids: vec![seal],
            date: date_of(t),
            request_id,
        });
        self.emit(Role::Depot, t, body);
        shipment_id
    }

    pub fn receive(
        &mut self,
        shipment_id: &str,
        lot: usize,
        counted: u64,
        seal_check: SealCheck,
        t: i64,
    ) -> String {
        let body = EventBody::LotReceived(LotReceived {
            shipment_id: shipment_id.to_string(),
            lot_id: self.model.lots[lot].id.clone(),
            quantity_counted: counted,
            seal_check,
            date: date_of(t),
        });
        self.emit(Role::Depot, t, body)
    }

    /// Schedules the full, intact receipt of a shipment at `t`.
    pub fn schedule_receipt(&mut self, shipment_id: String, lot: usize, quantity: u64, t: i64) {
        let padding = self.in_padding;
        self.at(t, move |sim| {
            sim.in_padding = padding;
            sim.receive(&shipment_id, lot, quantity, SealCheck::Intact, sim.now);
            sim.in_padding = false;
        });
    }

    /// Ships `quantity` units of the lot to `to` from the domestic depots holding it,
    /// largest stock first; returns the shipments.
    pub fn gather(
        &mut self,
        lot: usize,
        quantity: u64,
        to: usize,
        t: i64,
        request_id: Option<String>,
    ) -> Vec<(String, u64)> {
        let mut sources: Vec<(usize, u64)> = self.model.lots[lot]
            .stockpiled_sites()
            .into_iter()
            .filter(|(site, _)| {
                *site != to
                    && self.model.sites[*site].kind == stockpile_core::events::SiteKind::Depot
            })
            .filter(|(site, _)| !self.model.sites[*site].foreign)
            .collect();
        sources.sort_by_key(|(site, units)| (std::cmp::Reverse(*units), *site));
        let mut left = quantity;
        let mut shipments = Vec::new();
        for (offset, (site, units)) in sources.into_iter().enumerate() {
            if left == 0 {
                break;
            }
            let take = left.min(units);
            let id = self.ship(
                lot,
                site,
                to,
                take,
                t + offset as i64 * 7 * MINUTE,
                request_id.clone(),
            );
            shipments.push((id, take));
            left -= take;
        }
        assert_eq!(
            left, 0,
            "generator bug: lot {} holds fewer units than the story ships",
            self.model.lots[lot].id
        );
        shipments
    }

    pub fn witnesses(&mut self, independent: bool) -> Vec<Witness> {
        let mut witnesses = vec![Witness {
            name: format!("{} demil shift supervisor (synthetic)", self.code),
            organisation: format!(
                "{} national demilitarisation facility (synthetic)",
                self.code
            ),
            role: "operator supervisor".into(),
            independent: false,
        }];
        if independent {
            let observer = self.choice_rng().gen_range(1..=6);
            witnesses.push(Witness {
                name: format!("SYN observer {observer} (synthetic)"),
                organisation: "SYN independent verification team (synthetic)".into(),
                role: "independent observer".into(),
                independent: true,
            });
        }
        witnesses
    }

    /// Emits a destruction of `quantity` stockpiled units at `site`, ending at `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn destroy(
        &mut self,
        lot: usize,
        site: usize,
        quantity: u64,
        start: Date,
        t: i64,
        method: DestructionMethod,
        basis: DestructionBasis,
        witnessed: bool,
    ) -> String {
        let lot_id = self.model.lots[lot].id.clone();
        let witnesses = self.witnesses(witnessed);
        let end_product = Hash32::digest_parts(&[
            b"synthetic end-product photo\n",
            lot_id.as_bytes(),
            &t.to_be_bytes(),
        ]);
        let body = EventBody::LotDestroyed(LotDestroyed {
            lot_id: lot_id.clone(),
            quantity,
            site_id: self.model.sites[site].id.clone(),
            method,
            start_date: start,
            end_date: date_of(t),
            input_count: quantity,
            witnesses,
            standards: vec![
                "IMAS 11.10 (Ed. 2, Am. 6, 2013)".into(),
                format!(
                    "{} national demilitarisation standard (synthetic)",
                    self.code
                ),
            ],
            end_product_sha256: vec![end_product],
            basis,
            institution_id: None,
        });
        let evidence = vec![self.document(
            "video",
            format!(
                "synthetic destruction record of lot {lot_id}, {start} to {}",
                date_of(t)
            ),
        )];
        self.emit_with_evidence(Role::Demil, t, body, evidence)
    }

    /// Queues a destruction for the next certificate.
    pub fn await_certificate(&mut self, event_id: String, lot: usize, units: u64) {
        let type_id = self.model.lots[lot].type_id.clone();
        self.pending_certificates.push(PendingCertificate {
            event_id,
            type_id,
            units,
        });
    }

    /// Certifies every destruction waiting for a certificate.
    pub fn certify_pending(&mut self, t: i64) {
        if self.pending_certificates.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending_certificates);
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for item in &pending {
            *totals.entry(item.type_id.clone()).or_insert(0) += item.units;
        }
        let certificate_id = self.next_id("CERT");
        let body = EventBody::DestructionCertified(DestructionCertified {
            certificate_id: certificate_id.clone(),
            covered_event_ids: pending.iter().map(|item| item.event_id.clone()).collect(),
            totals: totals
                .into_iter()
                .map(|(type_id, quantity)| TypeQuantity { type_id, quantity })
                .collect(),
            certifier: "SYN independent certification body (synthetic)".into(),
            date: date_of(t),
            findings: format!(
                "{} destructions reviewed against records and end-product evidence",
                pending.len()
            ),
        });
        let evidence = vec![self.document(
            "certificate",
            format!("synthetic certificate {certificate_id}"),
        )];
        self.emit_with_evidence(Role::Certifier, t, body, evidence);
    }

    /// The certifier's monthly round, on the 10th, from `first` until `until`.
    pub fn start_certifier(&mut self, first: Date, until: Date) {
        let t = at_hour(first, 11);
        self.at(t, move |sim| {
            sim.certify_pending(sim.now);
            let next = date_of(sim.now).add_months(1);
            if next <= until {
                sim.start_certifier(next, until);
            }
        });
    }

    /// Records that `units` of the lot are physically missing at `site` (an incident);
    /// counts find them missing until [`Sim::explain_shortfall`].
    pub fn set_shortfall(&mut self, lot: usize, site: usize, units: u64, incident: &str) {
        self.shortfalls.insert(
            (lot, site),
            Shortfall {
                units,
                incident: incident.to_string(),
                revealed: false,
            },
        );
    }

    pub fn explain_shortfall(&mut self, lot: usize, site: usize) {
        if let Some(shortfall) = self.shortfalls.remove(&(lot, site))
            && shortfall.revealed
        {
            self.model.open_physical_differences -= 1;
        }
    }

    /// What a count of the lot at the site finds: the book less any known shortfall.
    /// Records the expected flag the first time a count reveals a shortfall.
    fn physical(&mut self, lot: usize, site: usize) -> (u64, Option<String>) {
        let book = self.model.lots[lot].site_book(site);
        match self.shortfalls.get_mut(&(lot, site)) {
            Some(shortfall) => {
                let first = !shortfall.revealed;
                shortfall.revealed = true;
                if first {
                    self.model.open_physical_differences += 1;
                }
                (book - shortfall.units, Some(shortfall.incident.clone()))
            }
            None => (book, None),
        }
    }

    /// A count of every lot on the books at `site`; `None` when the site holds nothing.
    pub fn full_inventory(&mut self, site: usize, t: i64) -> Option<String> {
        let lots: Vec<usize> = (0..self.model.lots.len())
            .filter(|&lot| self.model.lots[lot].site_book(site) > 0)
            .collect();
        if lots.is_empty() {
            return None;
        }
        Some(self.inventory(site, &lots, InventoryScope::Full, t))
    }

    /// A count of the given lots at `site`.
    pub fn inventory(
        &mut self,
        site: usize,
        lots: &[usize],
        scope: InventoryScope,
        t: i64,
    ) -> String {
        let mut counts = Vec::with_capacity(lots.len());
        let mut incidents = Vec::new();
        for &lot in lots {
            let (counted, incident) = self.physical(lot, site);
            counts.push(LotCount {
                lot_id: self.model.lots[lot].id.clone(),
                counted,
            });
            incidents.extend(incident);
        }
        let site_id = self.model.sites[site].id.clone();
        let inspector = self.choice_rng().gen_range(1..=4);
        let body = EventBody::InventoryVerified(InventoryVerified {
            site_id: site_id.clone(),
            date: date_of(t),
            scope,
            counts,
            seal_checks: vec![SealInspection {
                seal_id: format!("{site_id}-STORE-SEAL-01"),
                check: SealCheck::Intact,
            }],
            inspectors: vec![format!("SYN inspector {inspector} (synthetic)")],
        });
        let event_id = self.emit(Role::Inspector, t, body);
        for incident in incidents {
            self.expect_flag(
                11,
                "inventory.physical_differs_from_book",
                Some(&event_id),
                &incident,
            );
        }
        event_id
    }

    pub fn consume(
        &mut self,
        lot: usize,
        institution_id: &str,
        quantity: u64,
        activity: &str,
        t: i64,
    ) -> String {
        let body = EventBody::RetainedMinesConsumed(RetainedMinesConsumed {
            lot_id: self.model.lots[lot].id.clone(),
            quantity,
            institution_id: institution_id.to_string(),
            activity: activity.to_string(),
            date: date_of(t),
        });
        self.emit(Role::Depot, t, body)
    }

    pub fn report_loss(
        &mut self,
        lot: usize,
        site: usize,
        quantity: u64,
        circumstances: &str,
        t: i64,
    ) -> String {
        let reference = self.next_id("INV");
        let body = EventBody::LossReported(LossReported {
            lot_id: self.model.lots[lot].id.clone(),
            quantity,
            site_id: self.model.sites[site].id.clone(),
            circumstances: circumstances.to_string(),
            investigation_reference: reference,
        });
        self.emit(Role::Depot, t, body)
    }

    /// Schedules a lot's destruction: shipments from the depots to the facility three days
    /// before `start`, receipts a day later, the destruction event on `end`, and its
    /// certificate on the certifier's next round (after any scripted correction).
    pub fn plan_destruction(&mut self, plan: DestroyPlan) {
        let ship_date = plan.start.add_days(-3);
        let ship_t = self.on_day(ship_date, 7, 10);
        self.claim(&plan.lot_id, ship_t - DAY);
        let end_t = self.on_day(plan.end, 14, 17);
        let lot_id = plan.lot_id.clone();
        self.at(ship_t, move |sim| {
            let lot = sim.model.lot(&lot_id);
            let facility = sim.site_ix(&sim.sites.facility.clone());
            let units: u64 = sim.model.lots[lot]
                .stockpiled_sites()
                .into_iter()
                .filter(|(site, _)| *site != facility && !sim.model.sites[*site].foreign)
                .map(|(_, units)| units)
                .sum();
            if units == 0 {
                return;
            }
            let shipments = sim.gather(lot, units, facility, sim.now, None);
            for (number, (shipment_id, quantity)) in shipments.into_iter().enumerate() {
                let receipt_t = sim.now + SCRIPTED_TRANSIT_DAYS * DAY + number as i64 * 11 * MINUTE;
                if number == 0 && plan.short_receipt && quantity > 2 {
                    sim.at(receipt_t, move |sim| {
                        let incident = "receipt two short with a broken seal (synthetic incident)";
                        let id = sim.receive(&shipment_id, lot, quantity - 2, SealCheck::Broken, sim.now);
                        sim.expect_flag(12, "shipment.count_differs", Some(&id), incident);
                        sim.expect_flag(12, "shipment.seal", Some(&id), incident);
                        let loss_t = sim.now + SHORTFALL_INVESTIGATION_DAYS * DAY;
                        sim.at(loss_t, move |sim| {
                            let circumstances = "investigation of a broken-seal receipt: two units removed in transit \
                                                 (synthetic incident)";
                            sim.report_loss(lot, facility, 2, circumstances, sim.now);
                        });
                    });
                } else {
                    sim.schedule_receipt(shipment_id, lot, quantity, receipt_t);
                }
            }
        });
        self.at(end_t, move |sim| sim.run_destruction(plan));
    }

    fn run_destruction(&mut self, plan: DestroyPlan) {
        let lot = self.model.lot(&plan.lot_id);
        let facility = self.site_ix(&self.sites.facility.clone());
        let units = self.model.lots[lot].stockpiled(facility);
        if units == 0 && plan.under_report == 0 && plan.witnessed {
            // Routine destructions used the whole lot up before its scripted turn.
            return;
        }
        // Scripted incidents use lots padding never touches: they are whole.
        assert!(
            units > plan.under_report,
            "generator bug: lot {} has {units} units at the facility",
            plan.lot_id
        );
        let reported = units - plan.under_report;
        let t = self.now;
        let id = self.destroy(
            lot,
            facility,
            reported,
            plan.start,
            t,
            plan.method,
            plan.basis,
            plan.witnessed,
        );
        if !plan.witnessed {
            let incident = "destruction without an independent witness (synthetic incident)";
            self.expect_flag(
                18,
                "destruction.no_independent_witness",
                Some(&id),
                incident,
            );
        }
        if plan.under_report == 0 {
            self.await_certificate(id, lot, reported);
            return;
        }
        // Sudan: the facility destroyed more than it reported. Its next count finds
        // nothing where the book still holds the difference; a correction follows.
        self.model
            .register_correctable(&id, lot, facility, reported);
        let incident = format!(
            "destruction reported as {reported}, actually {units}: a facility count finds {} units missing \
             (synthetic, modelled on Sudan's +1,078 correction)",
            plan.under_report
        );
        self.set_shortfall(lot, facility, plan.under_report, &incident);
        let count_t = t + SUDAN_COUNT_DAYS * DAY;
        self.at(count_t, move |sim| {
            sim.inventory(facility, &[lot], InventoryScope::Sample, sim.now);
            let correction_t = sim.now + SUDAN_CORRECTION_DAYS * DAY;
            sim.at(correction_t, move |sim| {
                let body = EventBody::CorrectionIssued(CorrectionIssued {
                    corrected_event_id: id.clone(),
                    changes: vec![FieldChange {
                        field: "quantity".into(),
                        old_value: reported.to_string(),
                        new_value: units.to_string(),
                    }],
                    reason: format!(
                        "records reconciled after the facility count: {} more units were destroyed than reported \
                         (synthetic, modelled on Sudan)",
                        units - reported
                    ),
                    authority: format!("{} demilitarisation facility director (synthetic)", sim.code),
                    affects_submitted_report: true,
                });
                sim.emit(Role::Demil, sim.now, body);
                sim.explain_shortfall(lot, facility);
                sim.await_certificate(id, lot, units);
            });
        });
    }

    /// Stockpiled units of a lot at domestic depots.
    pub fn domestic_stock(&self, lot: usize) -> u64 {
        self.model.lots[lot]
            .stockpiled_sites()
            .into_iter()
            .filter(|(site, _)| {
                self.model.sites[*site].kind == stockpile_core::events::SiteKind::Depot
                    && !self.model.sites[*site].foreign
            })
            .map(|(_, units)| units)
            .sum()
    }

    /// Units retained by `institution_id` of each lot, largest first.
    pub fn retained_lots(&self, institution_id: &str) -> Vec<(usize, u64)> {
        let mut lots: Vec<(usize, u64)> = (0..self.model.lots.len())
            .map(|lot| (lot, self.model.lots[lot].retained_by(institution_id)))
            .filter(|(_, units)| *units > 0)
            .collect();
        lots.sort_by_key(|(lot, units)| (std::cmp::Reverse(*units), *lot));
        lots
    }
}
