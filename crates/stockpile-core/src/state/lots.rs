//! The lot lifecycle: declaration, retention and consumption, shipment and receipt,
//! destruction and its certification, Korea designation, losses and physical counts.
//!
//! Every handler first checks everything (references → hard 4, terminal lot → hard 6,
//! positive quantities → hard 5, the event's own rule, then the postings as a whole) and
//! only then changes the state; nothing after the first change can fail.

use super::book::{Account, Moves};
use super::{
    Bucket, ComplianceState, Ctx, Destruction, DrawRecord, DrawSource, EventRecord, Flag, FlagRule,
    HardRule, Lot, PhysicalDifference, QuantityRecord, Shipment, ShipmentStatus, Violation,
    positive, refs,
};
use crate::events::{
    DestructionBasis, DestructionCertified, EventKind, InventoryScope, InventoryVerified,
    KoreaDesignationRevoked, LossReported, LotBasis, LotDeclared, LotDesignatedForKoreaDefense,
    LotDestroyed, LotReceived, LotRetained, LotShipped, Regime, RegimeConfigured,
    RetainedMinesConsumed, SealCheck, TransferDirection,
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
        if self.lots.contains_key(&e.lot_id) {
            return Err(refs(
                "references.duplicate_id",
                format!("lot {:?} is already declared", e.lot_id),
            ));
        }
        let is_apm = self.known_type(&e.type_id)?.info.counts_as_apm;
        self.known_site(&e.site_id)?;
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
        let mut moves = Moves::new(&e.lot_id, false);
        moves.push(
            Account::Outside,
            Account::at(&e.site_id, Bucket::Stockpiled),
            e.quantity,
        );
        self.check_moves(&moves)?;

        let lot = Lot {
            event_id: ctx.event_id.to_string(),
            info: e.clone(),
            declared_units: e.quantity,
            balances: BTreeMap::new(),
            physical_differences: BTreeMap::new(),
            discovery_flagged: false,
        };
        self.lots.insert(e.lot_id.clone(), lot);
        self.commit_moves(&moves, ctx.today);
        if let Some(request_id) = &import_request {
            self.use_approval(request_id, &e.type_id, e.quantity as i128);
        }
        self.records.insert(
            ctx.event_id.to_string(),
            EventRecord {
                index: ctx.index,
                kind: EventKind::LotDeclared,
                quantity: Some(QuantityRecord::Declaration {
                    lot_id: e.lot_id.clone(),
                }),
            },
        );

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
        self.known_site(&e.site_id)?;
        let institution = self.known_institution(&e.institution_id)?;
        Self::not_terminal(lot, EventKind::LotRetained)?;
        positive(e.quantity, "retained quantity")?;
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
        let retained = Bucket::Retained {
            institution_id: e.institution_id.clone(),
        };
        let mut moves = Moves::new(&e.lot_id, false);
        moves.push(
            Account::at(&e.site_id, Bucket::Stockpiled),
            Account::at(&e.site_id, retained),
            e.quantity,
        );
        self.check_moves(&moves)?;

        let before = institution.retained_units;
        self.commit_moves(&moves, ctx.today);
        let after = self.institutions[&e.institution_id].retained_units;
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
        self.known_institution(&e.institution_id)?;
        Self::not_terminal(lot, EventKind::RetainedMinesConsumed)?;
        positive(e.quantity, "consumed quantity")?;
        let held = lot.units_where(|_, bucket| matches!(bucket, Bucket::Retained { institution_id } if *institution_id == e.institution_id));
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
        let source = DrawSource::Retained {
            institution_id: e.institution_id.clone(),
        };
        let sink = Bucket::Consumed {
            institution_id: e.institution_id.clone(),
        };
        self.draw(
            ctx,
            EventKind::RetainedMinesConsumed,
            &e.lot_id,
            source,
            sink,
            e.quantity,
        )?;
        Ok(Vec::new())
    }

    /// Draws `units` from `source` into the terminal `sink` and remembers the draw for
    /// corrections: destructions, losses, consumption.
    fn draw(
        &mut self,
        ctx: &Ctx<'_>,
        kind: EventKind,
        lot_id: &str,
        source: DrawSource,
        sink: Bucket,
        units: u64,
    ) -> Result<(), Violation> {
        let lot = self.known_lot(lot_id)?;
        let draws = self.plan_draw(lot, &source, units);
        let explains = kind == EventKind::LossReported;
        let moves = draw_moves(lot_id, &draws, &sink, explains);
        self.check_moves(&moves)?;
        self.commit_moves(&moves, ctx.today);
        let record = DrawRecord {
            lot_id: lot_id.to_string(),
            units,
            source,
            sink,
            draws,
        };
        self.records.insert(
            ctx.event_id.to_string(),
            EventRecord {
                index: ctx.index,
                kind,
                quantity: Some(QuantityRecord::Draw(record)),
            },
        );
        Ok(())
    }

    /// Where `units` drawn from `source` come from, by the source's rule. Units no bucket
    /// can cover are left on the last candidate, so that the check refuses them with the
    /// book quantity in the message.
    pub(super) fn plan_draw(
        &self,
        lot: &Lot,
        source: &DrawSource,
        units: u64,
    ) -> Vec<(String, Bucket, u64)> {
        let (candidates, fallback): (Vec<(String, Bucket)>, (String, Bucket)) = match source {
            DrawSource::Fixed { site_id, bucket } => {
                (Vec::new(), (site_id.clone(), bucket.clone()))
            }
            DrawSource::Loss { site_id } => {
                let unreceived = lot
                    .balances
                    .keys()
                    .filter(|(site, bucket)| {
                        site == site_id && matches!(bucket, Bucket::Unreceived { .. })
                    })
                    .cloned()
                    .collect();
                (unreceived, (site_id.clone(), Bucket::Stockpiled))
            }
            DrawSource::Retained { institution_id } => {
                let own_site = self
                    .institutions
                    .get(institution_id)
                    .map(|i| i.info.site_id.clone())
                    .unwrap_or_default();
                let mut sites: Vec<(String, Bucket)> = lot
                    .balances
                    .keys()
                    .filter(|(_, bucket)| matches!(bucket, Bucket::Retained { institution_id: id } if id == institution_id))
                    .cloned()
                    .collect();
                // Own site first, the others in id order (the map order).
                sites.sort_by_key(|(site, _)| *site != own_site);
                let retained = Bucket::Retained {
                    institution_id: institution_id.clone(),
                };
                let fallback = sites.first().cloned().unwrap_or((own_site, retained));
                (sites, fallback)
            }
        };
        let mut left = units;
        let mut draws: Vec<(String, Bucket, u64)> = Vec::new();
        for (site, bucket) in candidates {
            let take = left.min(lot.balance(&site, &bucket));
            if take > 0 {
                draws.push((site, bucket, take));
                left -= take;
            }
        }
        if left > 0 {
            let (site, bucket) = fallback;
            match draws
                .iter_mut()
                .find(|(s, b, _)| *s == site && *b == bucket)
            {
                Some(draw) => draw.2 = draw.2.saturating_add(left),
                None => draws.push((site, bucket, left)),
            }
        }
        draws
    }

    pub(super) fn on_lot_shipped(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotShipped,
    ) -> Result<Vec<Flag>, Violation> {
        if self.shipments.contains_key(&e.shipment_id) {
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
        Self::not_terminal(lot, EventKind::LotShipped)?;
        positive(e.quantity, "shipped quantity")?;
        let regime = self.regime_state()?;
        let (from_foreign, to_foreign) = (regime.is_foreign(from), regime.is_foreign(to));
        // Crossing the border needs an approval: an export when the units leave for a
        // foreign site, an import when they come in from one.
        let direction = match (from_foreign, to_foreign) {
            (_, true) => Some(TransferDirection::Export),
            (true, false) => Some(TransferDirection::Import),
            (false, false) => None,
        };
        if let Some(direction) = direction {
            self.check_approval(
                e.request_id.as_deref(),
                direction,
                &lot.info.type_id,
                e.quantity,
            )?;
        }
        let type_id = lot.info.type_id.clone();
        let bucket = if to_foreign {
            Bucket::TransferredOut
        } else {
            Bucket::InTransit {
                shipment_id: e.shipment_id.clone(),
            }
        };
        let mut moves = Moves::new(&e.lot_id, false);
        moves.push(
            Account::at(&e.from_site_id, Bucket::Stockpiled),
            Account::at(&e.from_site_id, bucket),
            e.quantity,
        );
        self.check_moves(&moves)?;

        self.commit_moves(&moves, ctx.today);
        if direction.is_some()
            && let Some(request_id) = &e.request_id
        {
            self.use_approval(request_id, &type_id, e.quantity as i128);
        }
        let shipment = Shipment {
            event_id: ctx.event_id.to_string(),
            shipment_id: e.shipment_id.clone(),
            lot_id: e.lot_id.clone(),
            units: e.quantity,
            from_site_id: e.from_site_id.clone(),
            to_site_id: e.to_site_id.clone(),
            seal_ids: e.seal_ids.clone(),
            date: e.date,
            request_id: e.request_id.clone(),
            status: if to_foreign {
                ShipmentStatus::Exported
            } else {
                ShipmentStatus::InTransit
            },
            overdue_flagged: false,
        };
        self.shipments.insert(e.shipment_id.clone(), shipment);
        Ok(Vec::new())
    }

    pub(super) fn on_lot_received(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotReceived,
    ) -> Result<Vec<Flag>, Violation> {
        let closes =
            |code: &str, message: String| Violation::new(HardRule::ShipmentsClose, code, message);
        let Some(shipment) = self.shipments.get(&e.shipment_id) else {
            return Err(closes(
                "shipments.unknown",
                format!("shipment {:?} was never shipped", e.shipment_id),
            ));
        };
        if shipment.lot_id != e.lot_id {
            return Err(closes(
                "shipments.lot_differs",
                format!(
                    "shipment {} carries lot {}, not {}",
                    e.shipment_id, shipment.lot_id, e.lot_id
                ),
            ));
        }
        match &shipment.status {
            ShipmentStatus::InTransit => {}
            ShipmentStatus::Received { event_id, .. } => {
                return Err(closes(
                    "shipments.already_received",
                    format!(
                        "shipment {} was already received by event {event_id}",
                        e.shipment_id
                    ),
                ));
            }
            ShipmentStatus::Exported => {
                return Err(closes(
                    "shipments.not_in_transit",
                    format!(
                        "shipment {} went to foreign site {} and closed on dispatch",
                        e.shipment_id, shipment.to_site_id
                    ),
                ));
            }
        }
        positive(e.quantity_counted, "received quantity")?;
        let (shipped, counted) = (shipment.units, e.quantity_counted);
        let (from, to) = (shipment.from_site_id.clone(), shipment.to_site_id.clone());
        let shipped_event = shipment.event_id.clone();
        let in_transit = Account::at(
            &from,
            Bucket::InTransit {
                shipment_id: e.shipment_id.clone(),
            },
        );
        let mut moves = Moves::new(&e.lot_id, false);
        moves.push(
            in_transit.clone(),
            Account::at(&to, Bucket::Stockpiled),
            shipped.min(counted),
        );
        moves.push(
            in_transit,
            Account::at(
                &to,
                Bucket::Unreceived {
                    shipment_id: e.shipment_id.clone(),
                },
            ),
            shipped.saturating_sub(counted),
        );
        moves.push(
            Account::Outside,
            Account::at(&to, Bucket::Stockpiled),
            counted.saturating_sub(shipped),
        );
        self.check_moves(&moves)?;

        self.commit_moves(&moves, ctx.today);
        let shipment = self
            .shipments
            .get_mut(&e.shipment_id)
            .expect("looked up above");
        shipment.status = ShipmentStatus::Received {
            event_id: ctx.event_id.to_string(),
            counted,
            seal_check: e.seal_check,
        };
        self.records.insert(
            ctx.event_id.to_string(),
            EventRecord {
                index: ctx.index,
                kind: EventKind::LotReceived,
                quantity: Some(QuantityRecord::Receipt {
                    shipment_id: e.shipment_id.clone(),
                }),
            },
        );
        let mut flags = Vec::new();
        if counted != shipped {
            flags.push(ctx.flag(
                FlagRule::Shipment,
                "shipment.count_differs",
                &[&shipped_event],
                format!(
                    "shipment {} of lot {}: shipped {shipped}, counted {counted} at site {to} (difference {})",
                    e.shipment_id,
                    e.lot_id,
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

    pub(super) fn on_lot_destroyed(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LotDestroyed,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        self.known_site(&e.site_id)?;
        let source = match e.basis {
            DestructionBasis::Article4 | DestructionBasis::Discovered => Bucket::Stockpiled,
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
                self.known_institution(institution_id)?;
                Bucket::Retained {
                    institution_id: institution_id.clone(),
                }
            }
        };
        Self::not_terminal(lot, EventKind::LotDestroyed)?;
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
        let is_apm = self.is_apm(lot);
        let deadline = self.regime_state()?.article4_deadline();
        let discovered_after_deadline = self.discovered_after_deadline(lot);
        let (lot_basis, found_on, type_id) = (
            lot.info.basis,
            lot.info.basis_date,
            lot.info.type_id.clone(),
        );
        let source = DrawSource::Fixed {
            site_id: e.site_id.clone(),
            bucket: source,
        };
        self.draw(
            ctx,
            EventKind::LotDestroyed,
            &e.lot_id,
            source,
            Bucket::Destroyed,
            e.quantity,
        )?;
        self.destructions.insert(
            ctx.event_id.to_string(),
            Destruction {
                lot_id: e.lot_id.clone(),
                type_id,
                site_id: e.site_id.clone(),
                end_date: e.end_date,
                certificate_ids: Vec::new(),
                uncertified_flagged: false,
            },
        );

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
        if self.certificates.contains_key(&e.certificate_id) {
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
            let (Some(destruction), Some(units)) = (
                self.destructions.get(covered),
                self.destroyed_units(covered),
            ) else {
                let what = self
                    .records
                    .get(covered)
                    .map_or("no earlier event".to_string(), |r| {
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
            let sum = destroyed.entry(&destruction.type_id).or_insert(0);
            *sum = sum.saturating_add(units);
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

        self.certificates
            .insert(e.certificate_id.clone(), ctx.event_id.to_string());
        for covered in &e.covered_event_ids {
            let destruction = self.destructions.get_mut(covered).expect("checked above");
            destruction.certificate_ids.push(e.certificate_id.clone());
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
        self.known_site(&e.site_id)?;
        Self::not_terminal(lot, EventKind::LotDesignatedForKoreaDefense)?;
        positive(e.quantity, "designated quantity")?;
        self.move_at_site(
            ctx,
            &e.lot_id,
            &e.site_id,
            Bucket::Stockpiled,
            Bucket::Korea,
            e.quantity,
        )?;
        Ok(Vec::new())
    }

    pub(super) fn on_korea_revoked(
        &mut self,
        ctx: &Ctx<'_>,
        e: &KoreaDesignationRevoked,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        self.known_site(&e.site_id)?;
        Self::not_terminal(lot, EventKind::KoreaDesignationRevoked)?;
        positive(e.quantity, "revoked quantity")?;
        self.move_at_site(
            ctx,
            &e.lot_id,
            &e.site_id,
            Bucket::Korea,
            Bucket::Stockpiled,
            e.quantity,
        )?;
        Ok(Vec::new())
    }

    fn move_at_site(
        &mut self,
        ctx: &Ctx<'_>,
        lot_id: &str,
        site_id: &str,
        from: Bucket,
        to: Bucket,
        units: u64,
    ) -> Result<(), Violation> {
        let mut moves = Moves::new(lot_id, false);
        moves.push(Account::at(site_id, from), Account::at(site_id, to), units);
        self.check_moves(&moves)?;
        self.commit_moves(&moves, ctx.today);
        Ok(())
    }

    pub(super) fn on_loss_reported(
        &mut self,
        ctx: &Ctx<'_>,
        e: &LossReported,
    ) -> Result<Vec<Flag>, Violation> {
        let lot = self.known_lot(&e.lot_id)?;
        self.known_site(&e.site_id)?;
        Self::not_terminal(lot, EventKind::LossReported)?;
        positive(e.quantity, "lost quantity")?;
        let source = DrawSource::Loss {
            site_id: e.site_id.clone(),
        };
        self.draw(
            ctx,
            EventKind::LossReported,
            &e.lot_id,
            source,
            Bucket::Lost,
            e.quantity,
        )?;
        Ok(Vec::new())
    }

    pub(super) fn on_inventory_verified(
        &mut self,
        ctx: &Ctx<'_>,
        e: &InventoryVerified,
    ) -> Result<Vec<Flag>, Violation> {
        self.known_site(&e.site_id)?;
        let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
        for count in &e.counts {
            let lot = self.known_lot(&count.lot_id)?;
            if counted.insert(&count.lot_id, count.counted).is_some() {
                return Err(refs(
                    "references.duplicate_entry",
                    format!(
                        "inventory at site {} counts lot {} twice",
                        e.site_id, count.lot_id
                    ),
                ));
            }
            if count.counted > 0 {
                Self::not_terminal(lot, EventKind::InventoryVerified)?;
            }
        }
        // A full inventory counts everything at the site: a lot on the books there that
        // the count does not list was not found.
        if e.scope == InventoryScope::Full {
            for (lot_id, lot) in &self.lots {
                if lot.site_book(&e.site_id) > 0 {
                    counted.entry(lot_id).or_insert(0);
                }
            }
        }
        let findings: Vec<(String, u64, u64)> = counted
            .iter()
            .map(|(lot_id, counted)| {
                (
                    lot_id.to_string(),
                    self.lots[*lot_id].site_book(&e.site_id),
                    *counted,
                )
            })
            .collect();

        let mut flags = Vec::new();
        for (lot_id, book, counted) in findings {
            let lot = self.lots.get_mut(&lot_id).expect("checked above");
            if book == counted {
                lot.physical_differences.remove(&e.site_id);
                continue;
            }
            let difference = book as i128 - counted as i128;
            let open = PhysicalDifference {
                event_id: ctx.event_id.to_string(),
                book,
                counted,
                unexplained: difference,
            };
            lot.physical_differences.insert(e.site_id.clone(), open);
            flags.push(ctx.flag(
                FlagRule::PhysicalBook,
                "inventory.physical_differs_from_book",
                &[],
                format!("lot {lot_id} at site {}: book {book}, counted {counted}, difference {difference}", e.site_id),
            ));
        }
        Ok(flags)
    }
}

/// Postings that move each draw into `sink` at the draw's site.
pub(super) fn draw_moves(
    lot_id: &str,
    draws: &[(String, Bucket, u64)],
    sink: &Bucket,
    explains: bool,
) -> Moves {
    let mut moves = Moves::new(lot_id, explains);
    for (site, bucket, units) in draws {
        moves.push(
            Account::at(site, bucket.clone()),
            Account::at(site, sink.clone()),
            *units,
        );
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
