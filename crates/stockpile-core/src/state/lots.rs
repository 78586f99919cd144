//! The lot lifecycle: declaration, retention and consumption, destruction and its
//! certification, Korea designation, losses and physical counts (shipments and receipts
//! are in `shipments`).
//!
//! Every handler first checks everything (references → hard 4, terminal lot → hard 6,
//! positive quantities → hard 5, the event's own rule, then the postings as a whole) and
//! only then changes the state; nothing after the first change can fail.

use super::book::{Account, Moves, Slot};
use super::compact::{LotIx, SiteIx, handle_of};
use super::{
    ComplianceState, Ctx, DestructionRecord, Draw, DrawRecord, DrawSource, Draws, Fingerprint,
    Flag, FlagRule, HardRule, LotBook, PhysicalDifference, Violation, positive, refs,
};
use crate::events::{
    DestructionBasis, DestructionCertified, EventKind, InventoryScope, InventoryVerified,
    KoreaDesignationRevoked, LossReported, LotBasis, LotDeclared, LotDesignatedForKoreaDefense,
    LotDestroyed, LotRetained, Regime, RegimeConfigured, RetainedMinesConsumed, TransferDirection,
};
use crate::limits::{DISCOVERED_DESTRUCTION_DAYS_MAX, RETENTION_BENCHMARK_UNITS};
use crate::time::Date;
use std::collections::{BTreeMap, BTreeSet};

/// `US_2014`: no acquisition of APL that does not comply with the Convention from
/// 27 June 2014 (domain.md §1.2).
const US_2014_ACQUISITION_CUTOFF: (i32, u32, u32) = (2014, 6, 27);

/// `US_2022`: no acquisition except for detection, clearance or destruction from
/// 21 June 2022 (domain.md §1.2).
const US_2022_ACQUISITION_CUTOFF: (i32, u32, u32) = (2022, 6, 21);

/// The date after which an acquired lot raises flag 15: the EIF under `APMBC`, the policy
/// dates under `US_2014` and `US_2022`; `US_2020` rolled the limit back.
fn acquisition_cutoff(config: &RegimeConfigured) -> Option<Date> {
    let ymd = |(year, month, day): (i32, u32, u32)| Date::from_ymd(year, month, day);
    match config.regime {
        Regime::Apmbc => Some(config.eif_date),
        Regime::Us2014 => ymd(US_2014_ACQUISITION_CUTOFF),
        Regime::Us2020 => None,
        Regime::Us2022 => ymd(US_2022_ACQUISITION_CUTOFF),
    }
}

impl ComplianceState {
    pub(super) fn on_lot_declared(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotDeclared,
    ) -> Result<Vec<Flag>, Violation> {
        if self.lots.contains(&e.lot_id) {
            return Err(refs(
                "references.duplicate_id",
                format!("lot {:?} is already declared", e.lot_id),
            ));
        }
        let is_apm = self.known_type(&e.type_id)?.info.counts_as_apm;
        let site = self.known_site(&e.site_id)?;
        positive(e.quantity, "declared quantity")?;
        let needs_date = matches!(
            e.basis,
            LotBasis::Discovered | LotBasis::Seized | LotBasis::Acquired
        );
        if needs_date && e.basis_date.is_none() {
            return Err(refs(
                "references.basis_field_missing",
                format!(
                    "lot {:?} with basis {:?} needs its discovery or acquisition date",
                    e.lot_id, e.basis
                ),
            ));
        }
        let lot_number = e
            .manufacturer_lot_number
            .as_deref()
            .filter(|number| !number.trim().is_empty());
        if lot_number.is_none() && e.lot_number_absent_reason.trim().is_empty() {
            return Err(refs(
                "references.lot_number_reason_missing",
                format!(
                    "lot {:?} has no manufacturer lot number and no reason why",
                    e.lot_id
                ),
            ));
        }
        let regime = self.regime_state()?;
        let (regime_name, cutoff) = (regime.regime(), acquisition_cutoff(&regime.config));
        let import_request = match e.basis {
            LotBasis::ImportedUnderApproval => {
                self.check_approval(
                    e.request_id.as_deref(),
                    TransferDirection::Import,
                    &e.type_id,
                    e.quantity,
                )?;
                e.request_id.clone()
            }
            _ => None,
        };
        // The handle the lot gets if accepted.
        let lot = LotIx(self.lots.next_ix());
        let mut moves = Moves::new(lot, false);
        moves.push(
            Account::Outside,
            Account::At(site, Slot::Stockpiled),
            e.quantity,
        );
        self.check_moves(&moves, &e.lot_id)?;

        let book = LotBook {
            event_id: ctx.event_id.to_string(),
            info: e.clone(),
            apm: is_apm,
            declared_units: e.quantity,
            balances: BTreeMap::new(),
            physical_differences: BTreeMap::new(),
            discovery_flagged: false,
        };
        let inserted = self.lots.insert(&e.lot_id, book);
        assert_eq!(
            inserted, lot.0,
            "the lot got the handle it was checked with"
        );
        self.commit_moves(&moves, ctx.today);
        if let Some(request_id) = &import_request {
            self.use_approval(request_id, &e.type_id, e.quantity as i128);
        }
        if e.basis == LotBasis::Discovered
            && is_apm
            && let Some(found) = e.basis_date
        {
            self.deadlines.discovery_declared(found, lot);
        }
        ctx.handle.set(lot.0);

        let mut flags = Vec::new();
        if lot_number.is_none() {
            flags.push(ctx.flag(
                FlagRule::MissingLotNumber,
                "lot.number_missing",
                &[],
                format!(
                    "lot {} has no manufacturer lot number: {}",
                    e.lot_id,
                    e.lot_number_absent_reason.trim()
                ),
            ));
        }
        if e.basis == LotBasis::Acquired
            && is_apm
            && let (Some(acquired), Some(cutoff)) = (e.basis_date, cutoff)
            && acquired > cutoff
        {
            flags.push(ctx.flag(
                FlagRule::LateAcquisition,
                "acquisition.after_cutoff",
                &[],
                format!(
                    "lot {} of {} units was acquired on {acquired}, after the {regime_name:?} cut-off {cutoff}",
                    e.lot_id, e.quantity
                ),
            ));
        }
        Ok(flags)
    }

    pub(super) fn on_lot_retained(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotRetained,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        let site = self.known_site(&e.site_id)?;
        let institution_ix = self.known_institution(&e.institution_id)?;
        self.not_terminal(lot, EventKind::LotRetained)?;
        positive(e.quantity, "retained quantity")?;
        let institution = self.institution(institution_ix);
        if !institution.valid_on(ctx.occurred_on) {
            return Err(Violation::new(
                HardRule::RetentionAuthority,
                "retention.not_authorized_on_date",
                format!(
                    "institution {} is authorised from {} to {}, not on {}",
                    e.institution_id,
                    institution
                        .info
                        .valid_from
                        .map_or("the start".to_string(), |d| d.to_string()),
                    institution
                        .info
                        .valid_to
                        .map_or("no end".to_string(), |d| d.to_string()),
                    ctx.occurred_on
                ),
            ));
        }
        if !e.purpose.is_article_3_1() || !institution.permits(e.purpose) {
            return Err(Violation::new(
                HardRule::RetentionAuthority,
                "retention.purpose_not_permitted",
                format!(
                    "institution {} may retain for {:?}; {:?} is {}",
                    e.institution_id,
                    institution.info.permitted_purposes,
                    e.purpose,
                    if e.purpose.is_article_3_1() {
                        "not among them"
                    } else {
                        "not an Article 3(1) purpose"
                    }
                ),
            ));
        }
        let mut moves = Moves::new(lot, false);
        moves.push(
            Account::At(site, Slot::Stockpiled),
            Account::At(site, Slot::Retained(institution_ix)),
            e.quantity,
        );
        self.check_moves(&moves, &e.lot_id)?;

        let before = institution.retained_units;
        self.commit_moves(&moves, ctx.today);
        let after = self.institution(institution_ix).retained_units;
        let mut flags = Vec::new();
        if before <= RETENTION_BENCHMARK_UNITS && after > RETENTION_BENCHMARK_UNITS {
            flags.push(ctx.flag(
                FlagRule::Retention,
                "retention.above_benchmark",
                &[],
                format!(
                    "institution {} now retains {after} units, above the benchmark of {RETENTION_BENCHMARK_UNITS}",
                    e.institution_id
                ),
            ));
        }
        Ok(flags)
    }

    pub(super) fn on_retained_consumed(
        &mut self,
        ctx: &Ctx<'_>,
        e: &RetainedMinesConsumed,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        let institution = self.known_institution(&e.institution_id)?;
        self.not_terminal(lot, EventKind::RetainedMinesConsumed)?;
        positive(e.quantity, "consumed quantity")?;
        let held = self
            .lot_book(lot)
            .units_where(|_, slot| slot == Slot::Retained(institution));
        if held == 0 {
            return Err(Violation::new(
                HardRule::RetentionAuthority,
                "retention.not_own_pool",
                format!(
                    "institution {} retains no units of lot {}: it can consume only its own",
                    e.institution_id, e.lot_id
                ),
            ));
        }
        if held < e.quantity {
            return Err(Violation::new(
                HardRule::Counts,
                "counts.below_zero",
                format!(
                    "lot {} holds {held} units retained by {} over all sites; consuming {} would leave -{}",
                    e.lot_id,
                    e.institution_id,
                    e.quantity,
                    e.quantity - held
                ),
            ));
        }
        let source = DrawSource::Retained { institution };
        let draw = self.draw(
            ctx,
            EventKind::RetainedMinesConsumed,
            lot,
            &e.lot_id,
            source,
            e.quantity,
        )?;
        ctx.handle.set(draw);
        Ok(Vec::new())
    }

    /// Draws `units` from `source` into its terminal slot and remembers the draw for
    /// corrections: destructions, losses, consumption. Returns the draw's index.
    fn draw(
        &mut self,
        ctx: &Ctx<'_>,
        kind: EventKind,
        lot: LotIx,
        lot_id: &str,
        source: DrawSource,
        units: u64,
    ) -> Result<u32, Violation> {
        let draws = self.plan_draw(lot, source, units);
        let explains = kind == EventKind::LossReported;
        let moves = draw_moves(lot, &draws, source.sink(), explains);
        self.check_moves(&moves, lot_id)?;
        self.commit_moves(&moves, ctx.today);
        let ix = handle_of(self.draws.len());
        self.draws.push(DrawRecord {
            lot,
            units,
            source,
            draws: Draws::from_vec(draws),
        });
        Ok(ix)
    }

    /// Where `units` drawn from `source` come from, by the source's rule. Units no bucket
    /// can cover are left on the last candidate, so that the check refuses them with the
    /// book quantity in the message.
    pub(super) fn plan_draw(&self, lot: LotIx, source: DrawSource, units: u64) -> Vec<Draw> {
        let book = self.lot_book(lot);
        let (candidates, fallback): (Vec<(SiteIx, Slot)>, (SiteIx, Slot)) = match source {
            DrawSource::Fixed { site, slot } => (Vec::new(), (site, slot)),
            DrawSource::Loss { site } => {
                let mut unreceived: Vec<(SiteIx, Slot)> = book
                    .balances
                    .keys()
                    .filter(|(at, slot)| *at == site && matches!(slot, Slot::Unreceived(_)))
                    .copied()
                    .collect();
                // In shipment id order.
                unreceived.sort_by(|a, b| self.cmp_accounts(*a, *b));
                (unreceived, (site, Slot::Stockpiled))
            }
            DrawSource::Retained { institution } => {
                let own_site = self
                    .sites
                    .ix(&self.institution(institution).info.site_id)
                    .map(SiteIx)
                    .expect("an institution's site is registered before it");
                let retained = Slot::Retained(institution);
                let mut sites: Vec<(SiteIx, Slot)> = book
                    .balances
                    .keys()
                    .filter(|(_, slot)| *slot == retained)
                    .copied()
                    .collect();
                // Own site first, the others in id order.
                sites.sort_by(|a, b| self.cmp_accounts(*a, *b));
                sites.sort_by_key(|(site, _)| *site != own_site);
                let fallback = sites.first().copied().unwrap_or((own_site, retained));
                (sites, fallback)
            }
        };
        let mut left = units;
        let mut draws: Vec<Draw> = Vec::with_capacity(candidates.len() + 1);
        for (site, slot) in candidates {
            let take = left.min(book.balance(site, slot));
            if take > 0 {
                draws.push((site, slot, take));
                left -= take;
            }
        }
        if left > 0 {
            let (site, slot) = fallback;
            match draws.iter_mut().find(|(s, b, _)| *s == site && *b == slot) {
                Some(draw) => draw.2 = draw.2.saturating_add(left),
                None => draws.push((site, slot, left)),
            }
        }
        draws
    }

    pub(super) fn on_lot_destroyed(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotDestroyed,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        let site = self.known_site(&e.site_id)?;
        let slot = match e.basis {
            DestructionBasis::Article4 | DestructionBasis::Discovered => Slot::Stockpiled,
            DestructionBasis::RetainedExcess => {
                let Some(institution_id) = &e.institution_id else {
                    return Err(refs(
                        "references.basis_field_missing",
                        format!(
                            "destruction of retained excess of lot {} names no institution",
                            e.lot_id
                        ),
                    ));
                };
                Slot::Retained(self.known_institution(institution_id)?)
            }
        };
        self.not_terminal(lot, EventKind::LotDestroyed)?;
        positive(e.quantity, "destroyed quantity")?;
        if e.end_date < e.start_date {
            return Err(refs(
                "references.dates_reversed",
                format!(
                    "destruction of lot {} ends on {} before it starts on {}",
                    e.lot_id, e.end_date, e.start_date
                ),
            ));
        }
        let book = self.lot_book(lot);
        let is_apm = book.apm;
        let deadline = self.regime_state()?.article4_deadline();
        let discovered_after_deadline = self.discovered_after_deadline(book);
        let (lot_basis, found_on) = (book.info.basis, book.info.basis_date);
        let source = DrawSource::Fixed { site, slot };
        let draw = self.draw(
            ctx,
            EventKind::LotDestroyed,
            lot,
            &e.lot_id,
            source,
            e.quantity,
        )?;
        let destruction = handle_of(self.destructions.len());
        self.destructions.push(DestructionRecord {
            draw,
            end_date: e.end_date,
            certificates: 0,
            uncertified_flagged: false,
        });
        self.deadlines
            .destruction_ended(e.end_date, destruction, ctx.event_id);
        ctx.handle.set(destruction);

        let mut flags = Vec::new();
        if !e.witnesses.iter().any(|witness| witness.independent) {
            flags.push(ctx.flag(
                FlagRule::DestructionEvidence,
                "destruction.no_independent_witness",
                &[],
                format!(
                    "destruction of {} units of lot {} at site {} had {} witnesses, none independent",
                    e.quantity,
                    e.lot_id,
                    e.site_id,
                    e.witnesses.len()
                ),
            ));
        }
        if let Some(deadline) = deadline
            && e.end_date > deadline
            && is_apm
            && e.basis != DestructionBasis::RetainedExcess
            && !discovered_after_deadline
        {
            flags.push(ctx.flag(
                FlagRule::Article4,
                "article4.late_destruction",
                &[],
                format!(
                    "destruction of {} units of lot {} ended on {}, after the Article 4 deadline {deadline}",
                    e.quantity, e.lot_id, e.end_date
                ),
            ));
        }
        if lot_basis == LotBasis::Discovered
            && is_apm
            && let Some(found_on) = found_on
            && e.end_date > found_on.add_days(DISCOVERED_DESTRUCTION_DAYS_MAX)
        {
            flags.push(ctx.flag(
                FlagRule::DiscoveredStock,
                "discovered.late_destruction",
                &[],
                format!(
                    "discovered lot {} (found {found_on}) destroyed on {}, more than {DISCOVERED_DESTRUCTION_DAYS_MAX} \
                     days after discovery",
                    e.lot_id, e.end_date
                ),
            ));
        }
        Ok(flags)
    }

    pub(super) fn on_destruction_certified(
        &mut self,
        ctx: &Ctx<'_>,
        e: &DestructionCertified,
    ) -> Result<Vec<Flag>, Violation> {
        let certificate = Fingerprint::of(&e.certificate_id);
        if self.certificates.contains(&certificate) {
            return Err(refs(
                "references.duplicate_id",
                format!("certificate {:?} already exists", e.certificate_id),
            ));
        }
        if e.covered_event_ids.is_empty() {
            return Err(refs(
                "references.no_items",
                format!("certificate {} covers no destruction", e.certificate_id),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut covered_destructions = Vec::with_capacity(e.covered_event_ids.len());
        let mut destroyed: BTreeMap<&str, u64> = BTreeMap::new();
        for covered in &e.covered_event_ids {
            if !seen.insert(covered.as_str()) {
                return Err(refs(
                    "references.duplicate_entry",
                    format!(
                        "certificate {} lists destruction {covered} twice",
                        e.certificate_id
                    ),
                ));
            }
            let record = self.records.get(&Fingerprint::of(covered));
            let Some(destruction) = record
                .filter(|record| record.kind == EventKind::LotDestroyed)
                .map(|record| record.handle)
            else {
                let what = record.map_or("no earlier event".to_string(), |r| {
                    format!("a {}", r.kind.name())
                });
                return Err(refs(
                    "references.not_a_destruction",
                    format!(
                        "certificate {} covers {covered}, which names {what}, not a LotDestroyed",
                        e.certificate_id
                    ),
                ));
            };
            let draw = &self.draws[self.destructions[destruction as usize].draw as usize];
            let type_id = self.lot_book(draw.lot).info.type_id.as_str();
            let sum = destroyed.entry(type_id).or_insert(0);
            *sum = sum.saturating_add(draw.units);
            covered_destructions.push(destruction);
        }
        let mut certified: BTreeMap<&str, u64> = BTreeMap::new();
        for total in &e.totals {
            let sum = certified.entry(&total.type_id).or_insert(0);
            *sum = sum.saturating_add(total.quantity);
        }
        certified.retain(|_, units| *units > 0);
        let differs = certified != destroyed;
        let message = differs.then(|| {
            format!(
                "certificate {} certifies {} but the covered destructions total {}",
                e.certificate_id,
                render_totals(&certified),
                render_totals(&destroyed)
            )
        });

        self.certificates.insert(certificate);
        for destruction in covered_destructions {
            let record = &mut self.destructions[destruction as usize];
            if record.certificates == 0 {
                self.deadlines
                    .destruction_certified(record.end_date, destruction);
            }
            record.certificates = record.certificates.saturating_add(1);
        }
        let mut flags = Vec::new();
        if let Some(message) = message {
            flags.push(ctx.flag(
                FlagRule::DestructionEvidence,
                "destruction.certified_totals_differ",
                &[],
                message,
            ));
        }
        Ok(flags)
    }

    pub(super) fn on_korea_designated(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotDesignatedForKoreaDefense,
    ) -> Result<Vec<Flag>, Violation> {
        let regime = self.regime_state()?.regime();
        if !regime.is_us() {
            return Err(Violation::new(
                HardRule::KoreaDesignation,
                "korea.not_us_regime",
                format!(
                    "designation for the defense of Korea exists only under the U.S. regimes, not {regime:?}"
                ),
            ));
        }
        let lot = self.known_lot(&e.lot_id)?;
        let site = self.known_site(&e.site_id)?;
        self.not_terminal(lot, EventKind::LotDesignatedForKoreaDefense)?;
        positive(e.quantity, "designated quantity")?;
        self.move_at_site(ctx, lot, site, Slot::Stockpiled, Slot::Korea, e.quantity)?;
        Ok(Vec::new())
    }

    pub(super) fn on_korea_revoked(
        &mut self,
        ctx: &Ctx<'_>,
        e: &KoreaDesignationRevoked,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        let site = self.known_site(&e.site_id)?;
        self.not_terminal(lot, EventKind::KoreaDesignationRevoked)?;
        positive(e.quantity, "revoked quantity")?;
        self.move_at_site(ctx, lot, site, Slot::Korea, Slot::Stockpiled, e.quantity)?;
        Ok(Vec::new())
    }

    fn move_at_site(
        &mut self,
        ctx: &Ctx<'_>,
        lot: LotIx,
        site: SiteIx,
        from: Slot,
        to: Slot,
        units: u64,
    ) -> Result<(), Violation> {
        let mut moves = Moves::new(lot, false);
        moves.push(Account::At(site, from), Account::At(site, to), units);
        self.check_moves(&moves, self.lot_id(lot))?;
        self.commit_moves(&moves, ctx.today);
        Ok(())
    }

    pub(super) fn on_loss_reported(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LossReported,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        let site = self.known_site(&e.site_id)?;
        self.not_terminal(lot, EventKind::LossReported)?;
        positive(e.quantity, "lost quantity")?;
        let draw = self.draw(
            ctx,
            EventKind::LossReported,
            lot,
            &e.lot_id,
            DrawSource::Loss { site },
            e.quantity,
        )?;
        ctx.handle.set(draw);
        Ok(Vec::new())
    }

    pub(super) fn on_inventory_verified(
        &mut self,
        ctx: &Ctx<'_>,
        e: &InventoryVerified,
    ) -> Result<Vec<Flag>, Violation> {
        let site = self.known_site(&e.site_id)?;
        let mut counted: BTreeMap<&str, (LotIx, u64)> = BTreeMap::new();
        for count in &e.counts {
            let lot = self.known_lot(&count.lot_id)?;
            if counted
                .insert(&count.lot_id, (lot, count.counted))
                .is_some()
            {
                return Err(refs(
                    "references.duplicate_entry",
                    format!(
                        "inventory at site {} counts lot {} twice",
                        e.site_id, count.lot_id
                    ),
                ));
            }
            if count.counted > 0 {
                self.not_terminal(lot, EventKind::InventoryVerified)?;
            }
        }
        // A full inventory counts everything at the site: a lot on the books there that
        // the count does not list was not found.
        if e.scope == InventoryScope::Full {
            for (lot_id, ix, lot) in self.lots.iter_with_ix() {
                if lot.site_book(site) > 0 {
                    counted.entry(lot_id).or_insert((LotIx(ix), 0));
                }
            }
        }
        let findings: Vec<(LotIx, u64, u64)> = counted
            .values()
            .map(|(lot, counted)| (*lot, self.lot_book(*lot).site_book(site), *counted))
            .collect();

        let mut flags = Vec::new();
        for (lot, book, counted) in findings {
            if book == counted {
                self.lots.at_mut(lot.0).physical_differences.remove(&site);
                continue;
            }
            let difference = book as i128 - counted as i128;
            let message = format!(
                "lot {} at site {}: book {book}, counted {counted}, difference {difference}",
                self.lot_id(lot),
                e.site_id
            );
            let open = PhysicalDifference {
                event_id: ctx.event_id.to_string(),
                book,
                counted,
                unexplained: difference,
            };
            self.lots
                .at_mut(lot.0)
                .physical_differences
                .insert(site, open);
            flags.push(ctx.flag(
                FlagRule::PhysicalBook,
                "inventory.physical_differs_from_book",
                &[],
                message,
            ));
        }
        Ok(flags)
    }
}

/// Postings that move each draw into `sink` at the draw's site.
pub(super) fn draw_moves(lot: LotIx, draws: &[Draw], sink: Slot, explains: bool) -> Moves {
    let mut moves = Moves::new(lot, explains);
    for (site, slot, units) in draws {
        moves.push(Account::At(*site, *slot), Account::At(*site, sink), *units);
    }
    moves
}

fn render_totals(totals: &BTreeMap<&str, u64>) -> String {
    if totals.is_empty() {
        return "nothing".to_string();
    }
    totals
        .iter()
        .map(|(type_id, units)| format!("{units} {type_id}"))
        .collect::<Vec<_>>()
        .join(", ")
}
