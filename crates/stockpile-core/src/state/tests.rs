//! Tests of the compliance state machine, at its boundary: events in, verdicts and flags
//! out. Every test folds a list of steps with [`check`] and compares the outcome with
//! the expected lines; `check` also proves on every refusal that nothing changed, and
//! that folding the same steps twice gives the same digest.

use super::*;
use crate::events::*;

/// One step of a scenario: a new day (the ledger calls `advance_to`) or an event.
#[derive(Clone)]
enum Step {
    Day(Date),
    Event {
        name: Option<&'static str>,
        body: Box<EventBody>,
    },
}

fn d(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn day(text: &str) -> Step {
    Step::Day(d(text))
}

fn ev(body: EventBody) -> Step {
    Step::Event {
        name: None,
        body: Box::new(body),
    }
}

/// An event with an id that later steps refer to.
fn named(name: &'static str, step: Step) -> Step {
    match step {
        Step::Event { body, .. } => Step::Event {
            name: Some(name),
            body,
        },
        day => day,
    }
}

struct Run {
    state: ComplianceState,
    lines: Vec<String>,
    violations: Vec<Violation>,
    flags: Vec<Flag>,
}

fn run(steps: &[Step]) -> Run {
    let mut run = Run {
        state: ComplianceState::new(),
        lines: Vec::new(),
        violations: Vec::new(),
        flags: Vec::new(),
    };
    let mut today = d("2013-01-01");
    let mut index = 0u64;
    for step in steps {
        match step {
            Step::Day(date) => {
                today = *date;
                for flag in run.state.advance_to(today, index) {
                    run.lines
                        .push(format!("{today}: flag {} {}", flag.rule as u8, flag.code));
                    run.flags.push(flag);
                }
            }
            Step::Event { name, body } => {
                let event_id = name.map_or_else(|| format!("e{index}"), str::to_string);
                let label = match name {
                    Some(name) => format!("{}[{name}]", body.kind().name()),
                    None => body.kind().name().to_string(),
                };
                let event = Event {
                    event_id,
                    origin: "test".into(),
                    actor: "tester".into(),
                    emitter_sequence: index,
                    occurred_at: today.start(),
                    evidence: Vec::new(),
                    body: (**body).clone(),
                };
                let position = Position {
                    index,
                    recorded_at: today.start(),
                    signer_role: body.kind().owner().unwrap_or(Role::Registrar),
                    key_id: "test-key",
                };
                let before = run.state.digest();
                match run.state.apply(&event, position) {
                    Ok(flags) => {
                        for flag in flags {
                            run.lines
                                .push(format!("{label}: flag {} {}", flag.rule as u8, flag.code));
                            run.flags.push(flag);
                        }
                    }
                    Err(violation) => {
                        assert_eq!(
                            run.state.digest(),
                            before,
                            "refused {label} changed the state: {violation:?}"
                        );
                        run.lines.push(format!(
                            "{label}: refused {} {}",
                            violation.rule.number(),
                            violation.code
                        ));
                        run.violations.push(violation);
                    }
                }
                index += 1;
            }
        }
    }
    run
}

/// Folds `steps` and compares the refusals and flags, one line each in order, with
/// `expected` (accepted events without flags print nothing).
#[track_caller]
fn check(steps: &[Step], expected: &str) -> Run {
    let run = run(steps);
    let actual = run.lines.join("\n");
    let expected: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(actual, expected.join("\n"), "\nactual:\n{actual}\n");
    assert_eq!(
        self::run(steps).state.digest(),
        run.state.digest(),
        "the fold is not deterministic"
    );
    run
}

// Event constructors, with the defaults of an ordinary, compliant event.

fn regime(regime: Regime, state_id: &str, eif: &str) -> Step {
    ev(EventBody::RegimeConfigured(RegimeConfigured {
        state_id: state_id.into(),
        regime,
        eif_date: d(eif),
        policy_dates: Vec::new(),
        article4_deadline: None,
        initial_report_due: None,
    }))
}

fn site(site_id: &str, kind: SiteKind, country_code: &str) -> Step {
    ev(EventBody::SiteRegistered(SiteRegistered {
        site_id: site_id.into(),
        name: format!("site {site_id}"),
        kind,
        country_code: country_code.into(),
        in_korean_peninsula: false,
    }))
}

fn mine_type(type_id: &str, counts_as_apm: bool) -> Step {
    ev(EventBody::MineTypeRegistered(MineTypeRegistered {
        type_id: type_id.into(),
        designation: type_id.into(),
        category: if counts_as_apm { "APM" } else { "AV" }.into(),
        activation_modes: vec!["pressure".into()],
        self_destructing: false,
        counts_as_apm,
        dimensions_mm: "112x53".into(),
        fusing: "MV-5".into(),
        explosive_type: "TNT".into(),
        explosive_mg: 240_000,
        metal_mg: 0,
        photo_sha256: None,
    }))
}

fn authorized(
    institution_id: &str,
    site_id: &str,
    purposes: &[Purpose],
    ceiling: u64,
) -> InstitutionAuthorized {
    InstitutionAuthorized {
        institution_id: institution_id.into(),
        site_id: site_id.into(),
        name: format!("institution {institution_id}"),
        instrument: "decree 1".into(),
        instrument_date: None,
        permitted_purposes: purposes.to_vec(),
        ceiling,
        valid_from: None,
        valid_to: None,
    }
}

fn institution(institution_id: &str, site_id: &str, purposes: &[Purpose], ceiling: u64) -> Step {
    ev(EventBody::InstitutionAuthorized(authorized(
        institution_id,
        site_id,
        purposes,
        ceiling,
    )))
}

fn declared(lot_id: &str, type_id: &str, quantity: u64, site_id: &str) -> LotDeclared {
    LotDeclared {
        lot_id: lot_id.into(),
        type_id: type_id.into(),
        manufacturer_lot_number: Some(format!("M-{lot_id}")),
        lot_number_absent_reason: String::new(),
        quantity,
        site_id: site_id.into(),
        owner: "State".into(),
        custodian: "Army".into(),
        basis: LotBasis::Initial,
        basis_date: None,
        request_id: None,
    }
}

fn declare(lot_id: &str, type_id: &str, quantity: u64, site_id: &str) -> Step {
    ev(EventBody::LotDeclared(declared(
        lot_id, type_id, quantity, site_id,
    )))
}

fn retain(
    lot_id: &str,
    quantity: u64,
    institution_id: &str,
    site_id: &str,
    purpose: Purpose,
) -> Step {
    ev(EventBody::LotRetained(LotRetained {
        lot_id: lot_id.into(),
        quantity,
        institution_id: institution_id.into(),
        purpose,
        justification: "detector trials".into(),
        planned_annual_use: 100,
        next_review_date: None,
        site_id: site_id.into(),
    }))
}

fn consume(lot_id: &str, quantity: u64, institution_id: &str) -> Step {
    ev(EventBody::RetainedMinesConsumed(RetainedMinesConsumed {
        lot_id: lot_id.into(),
        quantity,
        institution_id: institution_id.into(),
        activity: "dog training".into(),
        date: d("2013-06-01"),
    }))
}

fn ship(
    shipment_id: &str,
    lot_id: &str,
    quantity: u64,
    from: &str,
    to: &str,
    request_id: Option<&str>,
) -> Step {
    ev(EventBody::LotShipped(LotShipped {
        shipment_id: shipment_id.into(),
        lot_id: lot_id.into(),
        quantity,
        from_site_id: from.into(),
        to_site_id: to.into(),
        seal_ids: vec![format!("seal-{shipment_id}")],
        date: d("2013-01-02"),
        request_id: request_id.map(str::to_string),
    }))
}

fn receive(shipment_id: &str, lot_id: &str, counted: u64, seal_check: SealCheck) -> Step {
    ev(EventBody::LotReceived(LotReceived {
        shipment_id: shipment_id.into(),
        lot_id: lot_id.into(),
        quantity_counted: counted,
        seal_check,
        date: d("2013-01-05"),
    }))
}

fn destruction(lot_id: &str, quantity: u64, site_id: &str, end: &str) -> LotDestroyed {
    LotDestroyed {
        lot_id: lot_id.into(),
        quantity,
        site_id: site_id.into(),
        method: DestructionMethod::ContainedDetonation,
        start_date: d(end),
        end_date: d(end),
        input_count: quantity,
        witnesses: vec![Witness {
            name: "A. Inspector".into(),
            organisation: "ICBL".into(),
            role: "observer".into(),
            independent: true,
        }],
        standards: vec!["IMAS 11.10".into()],
        end_product_sha256: Vec::new(),
        basis: DestructionBasis::Article4,
        institution_id: None,
    }
}

fn destroy(lot_id: &str, quantity: u64, site_id: &str, end: &str) -> Step {
    ev(EventBody::LotDestroyed(destruction(
        lot_id, quantity, site_id, end,
    )))
}

fn certify(certificate_id: &str, covered: &[&str], totals: &[(&str, u64)]) -> Step {
    ev(EventBody::DestructionCertified(DestructionCertified {
        certificate_id: certificate_id.into(),
        covered_event_ids: covered.iter().map(|id| id.to_string()).collect(),
        totals: totals
            .iter()
            .map(|(type_id, quantity)| TypeQuantity {
                type_id: type_id.to_string(),
                quantity: *quantity,
            })
            .collect(),
        certifier: "Verification Agency".into(),
        date: d("2013-12-01"),
        findings: "as observed".into(),
    }))
}

fn korea(lot_id: &str, quantity: u64, site_id: &str) -> Step {
    ev(EventBody::LotDesignatedForKoreaDefense(
        LotDesignatedForKoreaDefense {
            lot_id: lot_id.into(),
            quantity,
            authority: "SecDef".into(),
            justification: "defense of the Republic of Korea".into(),
            review_date: None,
            site_id: site_id.into(),
        },
    ))
}

fn korea_revoke(lot_id: &str, quantity: u64, site_id: &str) -> Step {
    ev(EventBody::KoreaDesignationRevoked(
        KoreaDesignationRevoked {
            lot_id: lot_id.into(),
            quantity,
            authority: "SecDef".into(),
            reason: "review".into(),
            site_id: site_id.into(),
        },
    ))
}

fn loss(lot_id: &str, quantity: u64, site_id: &str) -> Step {
    ev(EventBody::LossReported(LossReported {
        lot_id: lot_id.into(),
        quantity,
        site_id: site_id.into(),
        circumstances: "missing after transport".into(),
        investigation_reference: "INV-1".into(),
    }))
}

fn items(list: &[(&str, u64)]) -> Vec<TypeQuantity> {
    list.iter()
        .map(|(type_id, quantity)| TypeQuantity {
            type_id: type_id.to_string(),
            quantity: *quantity,
        })
        .collect()
}

fn request(
    request_id: &str,
    direction: TransferDirection,
    list: &[(&str, u64)],
    purpose: Purpose,
) -> Step {
    ev(EventBody::TransferRequested(TransferRequested {
        request_id: request_id.into(),
        requester: "ministry".into(),
        direction,
        items: items(list),
        stated_purpose: purpose,
        counterparty: "partner".into(),
        destination: "partner country".into(),
    }))
}

fn refuse(request_id: &str) -> Step {
    ev(EventBody::TransferRefused(TransferRefused {
        request_id: request_id.into(),
        authority: "export control".into(),
        date: d("2013-02-01"),
        basis_cited: "Art 1(1)(b)".into(),
        reasoning: "not under Article 3".into(),
    }))
}

fn approval(
    request_id: &str,
    legal_basis: &str,
    purpose: Purpose,
    list: &[(&str, u64)],
) -> TransferApproved {
    TransferApproved {
        request_id: request_id.into(),
        authority: "export control".into(),
        date: d("2013-02-01"),
        legal_basis: legal_basis.into(),
        purpose,
        institution_id: None,
        destruction_site_id: None,
        quantities: items(list),
        title_passes_date: None,
    }
}

fn approve(request_id: &str, legal_basis: &str, purpose: Purpose, list: &[(&str, u64)]) -> Step {
    ev(EventBody::TransferApproved(approval(
        request_id,
        legal_basis,
        purpose,
        list,
    )))
}

fn count(site_id: &str, scope: InventoryScope, counts: &[(&str, u64)]) -> Step {
    ev(EventBody::InventoryVerified(InventoryVerified {
        site_id: site_id.into(),
        date: d("2013-03-01"),
        scope,
        counts: counts
            .iter()
            .map(|(lot_id, counted)| LotCount {
                lot_id: lot_id.to_string(),
                counted: *counted,
            })
            .collect(),
        seal_checks: Vec::new(),
        inspectors: vec!["inspector".into()],
    }))
}

fn correct(event_id: &str, field: &str, old: &str, new: &str) -> Step {
    ev(EventBody::CorrectionIssued(CorrectionIssued {
        corrected_event_id: event_id.into(),
        changes: vec![FieldChange {
            field: field.into(),
            old_value: old.into(),
            new_value: new.into(),
        }],
        reason: "clerical error".into(),
        authority: "depot commander".into(),
        affects_submitted_report: false,
    }))
}

/// A State Party (EIF 1 Jul 2012, Article 4 deadline 1 Jul 2016) with two depots, a
/// destruction facility, a training institution, a foreign depot, an APM and an AV type,
/// and an institution authorised for detection and clearance training up to 3,000 units.
fn apmbc() -> Vec<Step> {
    vec![
        day("2013-01-02"),
        regime(Regime::Apmbc, "FI", "2012-07-01"),
        site("D1", SiteKind::Depot, "FI"),
        site("D2", SiteKind::Depot, "FI"),
        site("X1", SiteKind::DestructionFacility, "FI"),
        site("T1", SiteKind::TrainingInstitution, "FI"),
        site("F1", SiteKind::Depot, "SE"),
        mine_type("PMN", true),
        mine_type("AV", false),
        institution(
            "I1",
            "T1",
            &[Purpose::DetectionTraining, Purpose::ClearanceTraining],
            3_000,
        ),
    ]
}

/// The same registry under a U.S. regime.
fn us(policy: Regime) -> Vec<Step> {
    let mut steps = apmbc();
    steps[1] = regime(policy, "US", "2014-06-27");
    for step in &mut steps {
        if let Step::Event { body, .. } = step
            && let EventBody::SiteRegistered(site) = body.as_mut()
            && site.country_code == "FI"
        {
            site.country_code = "US".into();
        }
    }
    steps
}

fn with(base: Vec<Step>, more: Vec<Step>) -> Vec<Step> {
    [base, more].concat()
}

// Regime and registry (hard 4).

#[test]
fn nothing_about_lots_before_a_regime() {
    check(
        &[
            day("2013-01-02"),
            site("D1", SiteKind::Depot, "FI"),
            mine_type("PMN", true),
            declare("L1", "PMN", 10, "D1"),
            request(
                "R1",
                TransferDirection::Export,
                &[("PMN", 10)],
                Purpose::Destruction,
            ),
            regime(Regime::Apmbc, "FI", "2012-07-01"),
            declare("L1", "PMN", 10, "D1"),
        ],
        "
        LotDeclared: refused 4 regime.not_configured
        TransferRequested: refused 4 regime.not_configured
        ",
    );
}

#[test]
fn regime_dates_are_derived_from_the_eif() {
    let configured = |regime: Regime, article4: Option<&str>, report: Option<&str>| {
        ev(EventBody::RegimeConfigured(RegimeConfigured {
            state_id: "FI".into(),
            regime,
            eif_date: d("2012-07-01"),
            policy_dates: Vec::new(),
            article4_deadline: article4.map(d),
            initial_report_due: report.map(d),
        }))
    };
    check(
        &[
            configured(Regime::Apmbc, Some("2016-07-02"), None),
            configured(Regime::Apmbc, None, Some("2013-01-01")),
            configured(Regime::Us2014, Some("2016-07-01"), None),
            configured(Regime::Apmbc, Some("2016-07-01"), Some("2012-12-28")),
        ],
        "
        RegimeConfigured: refused 4 regime.derived_date_differs
        RegimeConfigured: refused 4 regime.derived_date_differs
        RegimeConfigured: refused 4 regime.field_not_applicable
        ",
    );
}

#[test]
fn a_later_regime_replaces_policy_but_not_state_family_or_eif() {
    let run = check(
        &[
            regime(Regime::Us2014, "US", "2014-06-27"),
            regime(Regime::Us2020, "US", "2020-01-31"),
            regime(Regime::Us2022, "US", "2022-06-21"),
            regime(Regime::Us2022, "CA", "2022-06-21"),
            regime(Regime::Apmbc, "US", "2022-06-21"),
        ],
        "
        RegimeConfigured: refused 4 regime.state_changed
        RegimeConfigured: refused 4 regime.family_changed
        ",
    );
    let regime_state = run.state.regime().unwrap();
    assert_eq!(regime_state.regime(), Regime::Us2022);
    assert_eq!(regime_state.history.len(), 3);
    check(
        &[
            regime(Regime::Apmbc, "FI", "2012-07-01"),
            regime(Regime::Apmbc, "FI", "2013-07-01"),
        ],
        "RegimeConfigured: refused 4 regime.eif_changed",
    );
}

#[test]
fn registry_ids_are_unique_and_references_exist() {
    check(
        &with(
            apmbc(),
            vec![
                site("D1", SiteKind::Depot, "FI"),
                mine_type("PMN", true),
                institution("I1", "T1", &[Purpose::DetectionTraining], 10),
                institution("I2", "NOWHERE", &[Purpose::DetectionTraining], 10),
                ev(EventBody::InstitutionAuthorized(InstitutionAuthorized {
                    valid_from: Some(d("2014-01-01")),
                    valid_to: Some(d("2013-01-01")),
                    ..authorized("I3", "T1", &[Purpose::DetectionTraining], 10)
                })),
                declare("L1", "NOPE", 10, "D1"),
                declare("L1", "PMN", 10, "NOWHERE"),
                declare("L1", "PMN", 10, "D1"),
                declare("L1", "PMN", 10, "D1"),
                retain("L1", 1, "I9", "D1", Purpose::DetectionTraining),
                retain("L9", 1, "I1", "D1", Purpose::DetectionTraining),
            ],
        ),
        "
        SiteRegistered: refused 4 references.duplicate_id
        MineTypeRegistered: refused 4 references.duplicate_id
        InstitutionAuthorized: refused 4 references.duplicate_id
        InstitutionAuthorized: refused 4 references.unknown_site
        InstitutionAuthorized: refused 4 references.dates_reversed
        LotDeclared: refused 4 references.unknown_type
        LotDeclared: refused 4 references.unknown_site
        LotDeclared: refused 4 references.duplicate_id
        LotRetained: refused 4 references.unknown_institution
        LotRetained: refused 4 references.unknown_lot
        ",
    );
}

#[test]
fn key_events_are_left_to_the_ledger() {
    let signer = EventBody::SignerAuthorized(SignerAuthorized {
        key_id: "k1".into(),
        public_key: [7; 32],
        holder: "depot".into(),
        role: Role::Depot,
        valid_from: TimestampMs(0),
        site_scope: Vec::new(),
    });
    // Accepted even before any regime, and not remembered as correctable.
    let run = check(
        &[
            named("k", ev(signer)),
            regime(Regime::Apmbc, "FI", "2012-07-01"),
            correct("k", "holder", "depot", "Depot"),
        ],
        "CorrectionIssued: refused 4 references.unknown_event",
    );
    assert!(run.state.record("k").is_none());
}

// Declarations.

#[test]
fn a_declaration_needs_what_its_basis_requires() {
    let lot = |basis: LotBasis, basis_date: Option<&str>| {
        ev(EventBody::LotDeclared(LotDeclared {
            basis,
            basis_date: basis_date.map(d),
            ..declared("L1", "PMN", 10, "D1")
        }))
    };
    check(
        &with(
            apmbc(),
            vec![
                declare("L0", "PMN", 0, "D1"),
                lot(LotBasis::Discovered, None),
                lot(LotBasis::Seized, None),
                lot(LotBasis::Acquired, None),
                ev(EventBody::LotDeclared(LotDeclared {
                    manufacturer_lot_number: Some(" ".into()),
                    ..declared("L1", "PMN", 10, "D1")
                })),
                lot(LotBasis::Seized, Some("2013-01-01")),
                ev(EventBody::LotDeclared(LotDeclared {
                    manufacturer_lot_number: None,
                    lot_number_absent_reason: "markings illegible".into(),
                    ..declared("L2", "PMN", 10, "D1")
                })),
            ],
        ),
        "
        LotDeclared: refused 5 counts.not_positive
        LotDeclared: refused 4 references.basis_field_missing
        LotDeclared: refused 4 references.basis_field_missing
        LotDeclared: refused 4 references.basis_field_missing
        LotDeclared: refused 4 references.lot_number_reason_missing
        LotDeclared: flag 19 lot.number_missing
        ",
    );
}

#[test]
fn acquisitions_after_the_regime_cut_off_are_flagged() {
    let acquired = |lot_id: &str, type_id: &str, on: &str| {
        ev(EventBody::LotDeclared(LotDeclared {
            basis: LotBasis::Acquired,
            basis_date: Some(d(on)),
            ..declared(lot_id, type_id, 10, "D1")
        }))
    };
    check(
        &with(
            apmbc(),
            vec![
                acquired("L1", "PMN", "2012-07-01"),
                acquired("L2", "PMN", "2012-07-02"),
                acquired("L3", "AV", "2012-07-02"),
            ],
        ),
        "LotDeclared: flag 15 acquisition.after_cutoff",
    );
    check(
        &with(
            us(Regime::Us2014),
            vec![
                acquired("L1", "PMN", "2014-06-27"),
                acquired("L2", "PMN", "2014-06-28"),
            ],
        ),
        "LotDeclared: flag 15 acquisition.after_cutoff",
    );
    check(
        &with(
            us(Regime::Us2020),
            vec![acquired("L1", "PMN", "2021-01-01")],
        ),
        "",
    );
    check(
        &with(
            us(Regime::Us2022),
            vec![
                acquired("L1", "PMN", "2022-06-21"),
                acquired("L2", "PMN", "2023-01-01"),
            ],
        ),
        "LotDeclared: flag 15 acquisition.after_cutoff",
    );
}

#[test]
fn an_import_draws_on_an_approved_import_request() {
    let import = |lot_id: &str, quantity: u64, request_id: Option<&str>| {
        ev(EventBody::LotDeclared(LotDeclared {
            basis: LotBasis::ImportedUnderApproval,
            request_id: request_id.map(str::to_string),
            ..declared(lot_id, "PMN", quantity, "X1")
        }))
    };
    let destroy_there = TransferApproved {
        destruction_site_id: Some("X1".into()),
        ..approval("IMP", "APMBC-3.2", Purpose::Destruction, &[("PMN", 100)])
    };
    check(
        &with(
            apmbc(),
            vec![
                request(
                    "IMP",
                    TransferDirection::Import,
                    &[("PMN", 100)],
                    Purpose::Destruction,
                ),
                request(
                    "EXP",
                    TransferDirection::Export,
                    &[("PMN", 100)],
                    Purpose::Destruction,
                ),
                import("L1", 10, None),
                import("L1", 10, Some("IMP")),
                ev(EventBody::TransferApproved(destroy_there.clone())),
                ev(EventBody::TransferApproved(TransferApproved {
                    request_id: "EXP".into(),
                    ..destroy_there
                })),
                import("L1", 10, Some("EXP")),
                import("L1", 60, Some("IMP")),
                import("L2", 41, Some("IMP")),
                import("L2", 40, Some("IMP")),
            ],
        ),
        "
        LotDeclared: refused 8 transfers.no_approval
        LotDeclared: refused 8 transfers.no_approval
        LotDeclared: refused 8 transfers.wrong_direction
        LotDeclared: refused 8 transfers.exceeds_approval
        ",
    );
}

// Retention (hard 9, flag 17).

#[test]
fn retention_stays_within_the_institutions_authority() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 5_000, "D1"),
                ev(EventBody::InstitutionAuthorized(InstitutionAuthorized {
                    valid_from: Some(d("2014-01-01")),
                    ..authorized(
                        "I2",
                        "T1",
                        &[Purpose::DetectionTraining, Purpose::OperationalUse],
                        100,
                    )
                })),
                retain("L1", 10, "I1", "D1", Purpose::Development),
                retain("L1", 10, "I2", "D1", Purpose::DetectionTraining),
                day("2014-01-01"),
                retain("L1", 10, "I2", "D1", Purpose::OperationalUse),
                retain("L1", 0, "I1", "D1", Purpose::DetectionTraining),
                retain("L1", 2_000, "I1", "D1", Purpose::DetectionTraining),
                retain("L1", 1_001, "I1", "D1", Purpose::ClearanceTraining),
                retain("L1", 1_000, "I1", "D1", Purpose::ClearanceTraining),
                retain("L1", 10, "I2", "D1", Purpose::DetectionTraining),
            ],
        ),
        "
        LotRetained: refused 9 retention.purpose_not_permitted
        LotRetained: refused 9 retention.not_authorized_on_date
        LotRetained: refused 9 retention.purpose_not_permitted
        LotRetained: refused 5 counts.not_positive
        LotRetained: refused 9 retention.ceiling_exceeded
        LotRetained: flag 17 retention.above_benchmark
        ",
    );
    let ceiling = &run.violations[4].message;
    assert!(
        ceiling.contains("at most 3000")
            && ceiling.contains("retains 2000")
            && ceiling.contains("3001"),
        "{ceiling}"
    );
    let lot = run.state.lot("L1").unwrap();
    assert_eq!(
        lot.balance(
            "D1",
            &Bucket::Retained {
                institution_id: "I1".into()
            }
        ),
        3_000
    );
    assert_eq!(lot.balance("D1", &Bucket::Stockpiled), 1_990);
    assert_eq!(run.state.institutions()["I1"].retained_units, 3_000);
}

#[test]
fn consumption_draws_only_on_the_institutions_own_pool() {
    let run = check(
        &with(
            apmbc(),
            vec![
                institution("I2", "T1", &[Purpose::DetectionTraining], 1_000),
                declare("L1", "PMN", 500, "D1"),
                retain("L1", 50, "I1", "D1", Purpose::DetectionTraining),
                retain("L1", 30, "I1", "T1", Purpose::DetectionTraining),
                consume("L1", 5, "I2"),
                consume("L1", 81, "I1"),
                consume("L1", 0, "I1"),
                named("use", consume("L1", 40, "I1")),
            ],
        ),
        "
        LotRetained: refused 5 counts.below_zero
        RetainedMinesConsumed: refused 9 retention.not_own_pool
        RetainedMinesConsumed: refused 5 counts.below_zero
        RetainedMinesConsumed: refused 5 counts.not_positive
        ",
    );
    // Nothing was stockpiled at T1, so only the 50 at D1 are retained, and consumption
    // takes them from there.
    let lot = run.state.lot("L1").unwrap();
    assert_eq!(
        lot.balance(
            "D1",
            &Bucket::Retained {
                institution_id: "I1".into()
            }
        ),
        10
    );
    assert_eq!(
        lot.balance(
            "D1",
            &Bucket::Consumed {
                institution_id: "I1".into()
            }
        ),
        40
    );
    assert_eq!(run.state.institutions()["I1"].retained_units, 10);
}

#[test]
fn consumption_takes_the_institutions_own_site_first() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 500, "D1"),
                ship("S1", "L1", 100, "D1", "T1", None),
                receive("S1", "L1", 100, SealCheck::Intact),
                retain("L1", 50, "I1", "D1", Purpose::DetectionTraining),
                retain("L1", 30, "I1", "T1", Purpose::DetectionTraining),
                named("use", consume("L1", 40, "I1")),
                correct("use", "quantity", "40", "10"),
            ],
        ),
        "CorrectionIssued: flag 20 correction.raises_stock",
    );
    let lot = run.state.lot("L1").unwrap();
    let retained = Bucket::Retained {
        institution_id: "I1".into(),
    };
    let consumed = Bucket::Consumed {
        institution_id: "I1".into(),
    };
    // 30 from T1 (its own site) and 10 from D1; the correction gives back the last
    // drawn first, so D1's 10 return and then 20 of T1's.
    assert_eq!(
        (lot.balance("T1", &retained), lot.balance("D1", &retained)),
        (20, 50)
    );
    assert_eq!(
        (lot.balance("T1", &consumed), lot.balance("D1", &consumed)),
        (10, 0)
    );
    assert_eq!(run.state.institutions()["I1"].retained_units, 70);
}

#[test]
fn retention_unchanged_for_two_years_is_flagged_once() {
    check(
        &with(
            apmbc(),
            vec![
                // Everything retained, so that no Article 4 flag gets in the way.
                declare("L1", "PMN", 100, "D1"),
                retain("L1", 100, "I1", "D1", Purpose::DetectionTraining),
                day("2015-01-01"),
                day("2015-01-02"),
                consume("L1", 1, "I1"),
                day("2017-01-01"),
                day("2018-01-01"),
                day("2025-06-01"),
            ],
        ),
        // Retained on 2013-01-02: not yet two years on 1 January 2015, and the
        // consumption on 2 January 2015 starts a new stretch, judged on 1 January 2018.
        "2018-01-01: flag 17 retention.unchanged",
    );
}

// Shipments (hard 7, flag 12).

#[test]
fn a_receipt_closes_one_open_shipment_of_its_lot() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 100, "D1"),
                declare("L2", "PMN", 100, "D1"),
                ship("S1", "L1", 0, "D1", "D2", None),
                ship("S1", "L1", 60, "D1", "D1", None),
                ship("S1", "L1", 101, "D1", "D2", None),
                ship("S1", "L1", 60, "D1", "D2", None),
                ship("S1", "L2", 10, "D1", "D2", None),
                receive("S9", "L1", 60, SealCheck::Intact),
                receive("S1", "L2", 60, SealCheck::Intact),
                receive("S1", "L1", 0, SealCheck::Intact),
                receive("S1", "L1", 60, SealCheck::Intact),
                receive("S1", "L1", 60, SealCheck::Intact),
            ],
        ),
        "
        LotShipped: refused 5 counts.not_positive
        LotShipped: refused 4 references.same_site
        LotShipped: refused 5 counts.below_zero
        LotShipped: refused 4 references.duplicate_id
        LotReceived: refused 7 shipments.unknown
        LotReceived: refused 7 shipments.lot_differs
        LotReceived: refused 5 counts.not_positive
        LotReceived: refused 7 shipments.already_received
        ",
    );
    let below_zero = &run.violations[2].message;
    assert!(
        below_zero.contains("lot L1 at site D1 holds 100 units stockpiled; this event takes 101"),
        "{below_zero}"
    );
    let lot = run.state.lot("L1").unwrap();
    assert_eq!(
        (
            lot.balance("D1", &Bucket::Stockpiled),
            lot.balance("D2", &Bucket::Stockpiled)
        ),
        (40, 60)
    );
    assert_eq!(run.state.summary().open_shipments, 0);
}

#[test]
fn units_in_transit_are_counted_only_as_in_transit() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 100, "D1"),
                ship("S1", "L1", 100, "D1", "D2", None),
                destroy("L1", 1, "D1", "2013-01-02"),
                count("D2", InventoryScope::Full, &[]),
                count("D1", InventoryScope::Full, &[]),
            ],
        ),
        "LotDestroyed: refused 5 counts.below_zero",
    );
    let summary = run.state.summary();
    assert_eq!(
        (
            summary.totals.in_transit,
            summary.totals.stockpiled,
            summary.open_shipments
        ),
        (100, 0, 1)
    );
    assert!(!run.state.lot("L1").unwrap().is_terminal());
}

#[test]
fn short_receipts_broken_seals_and_overdue_shipments_are_flagged() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                ship("S1", "L1", 500, "D1", "D2", None),
                receive("S1", "L1", 498, SealCheck::Broken),
                ship("S2", "L1", 100, "D1", "D2", None),
                day("2013-02-01"),
                day("2013-02-02"),
                day("2013-03-01"),
                receive("S2", "L1", 100, SealCheck::Missing),
            ],
        ),
        "
        LotReceived: flag 12 shipment.count_differs
        LotReceived: flag 12 shipment.seal
        2013-02-02: flag 12 shipment.overdue
        LotReceived: flag 12 shipment.seal
        ",
    );
    let count_differs = &run.flags[0];
    assert!(
        count_differs.message.contains("shipped 500, counted 498"),
        "{}",
        count_differs.message
    );
    assert_eq!(
        count_differs.event_ids.len(),
        2,
        "the receipt and the shipment prove it"
    );
}

#[test]
fn a_shipper_receiver_difference_stays_open_until_a_loss_explains_it() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                ship("S1", "L1", 500, "D1", "D2", None),
                receive("S1", "L1", 498, SealCheck::Intact),
                count("D2", InventoryScope::Full, &[("L1", 498)]),
            ],
        ),
        "LotReceived: flag 12 shipment.count_differs",
    );
    assert_eq!(run.state.summary().open_differences, 1);
    assert_eq!(run.state.summary().totals.unreceived, 2);

    // The loss at the receiving site writes off the two missing units, not two of the
    // 498 that are there: the next count agrees with the book.
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                ship("S1", "L1", 500, "D1", "D2", None),
                receive("S1", "L1", 498, SealCheck::Intact),
                loss("L1", 2, "D2"),
                count("D2", InventoryScope::Full, &[("L1", 498)]),
            ],
        ),
        "LotReceived: flag 12 shipment.count_differs",
    );
    let summary = run.state.summary();
    assert_eq!(
        (
            summary.open_differences,
            summary.totals.lost,
            summary.totals.unreceived
        ),
        (0, 2, 0)
    );
    assert_eq!(summary.totals.held(), 998);
}

#[test]
fn a_recount_of_a_receipt_closes_the_difference() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                ship("S1", "L1", 500, "D1", "D2", None),
                named("got", receive("S1", "L1", 498, SealCheck::Intact)),
                correct("got", "quantity_counted", "500", "499"),
                correct("got", "quantity", "498", "500"),
                correct("got", "quantity_counted", "498", "500"),
            ],
        ),
        "
        LotReceived[got]: flag 12 shipment.count_differs
        CorrectionIssued: refused 4 corrections.old_value_differs
        CorrectionIssued: refused 4 corrections.not_correctable
        CorrectionIssued: flag 20 correction.raises_stock
        ",
    );
    let summary = run.state.summary();
    assert_eq!(
        (
            summary.open_differences,
            summary.totals.unreceived,
            summary.totals.stockpiled
        ),
        (0, 0, 1_000)
    );
}

#[test]
fn exports_need_an_approval_and_close_on_dispatch() {
    let destroy_abroad = TransferApproved {
        destruction_site_id: Some("X1".into()),
        ..approval("R1", "APMBC-3.2", Purpose::Destruction, &[("PMN", 300)])
    };
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("PMN", 300)],
                    Purpose::Destruction,
                ),
                request(
                    "R2",
                    TransferDirection::Export,
                    &[("PMN", 300)],
                    Purpose::Destruction,
                ),
                ship("S1", "L1", 100, "D1", "F1", None),
                ship("S1", "L1", 100, "D1", "F1", Some("R1")),
                ev(EventBody::TransferApproved(destroy_abroad)),
                refuse("R2"),
                ship("S1", "L1", 100, "D1", "F1", Some("R2")),
                ship("S1", "L1", 200, "D1", "F1", Some("R1")),
                ship("S2", "L1", 101, "D1", "F1", Some("R1")),
                ship("S2", "L1", 100, "D1", "F1", Some("R1")),
                receive("S1", "L1", 200, SealCheck::Intact),
            ],
        ),
        "
        LotShipped: refused 8 transfers.no_approval
        LotShipped: refused 8 transfers.no_approval
        LotShipped: refused 8 transfers.no_approval
        LotShipped: refused 8 transfers.exceeds_approval
        LotReceived: refused 7 shipments.not_in_transit
        ",
    );
    let summary = run.state.summary();
    assert_eq!(
        (
            summary.totals.transferred_out,
            summary.totals.stockpiled,
            summary.open_shipments
        ),
        (300, 700, 0)
    );
}

// Destruction (hard 6, flags 13, 14, 18).

#[test]
fn a_destruction_needs_consistent_fields() {
    check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 100, "D1"),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    start_date: d("2013-02-01"),
                    ..destruction("L1", 10, "D1", "2013-01-31")
                })),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    basis: DestructionBasis::RetainedExcess,
                    ..destruction("L1", 10, "D1", "2013-01-31")
                })),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    basis: DestructionBasis::RetainedExcess,
                    institution_id: Some("I1".into()),
                    ..destruction("L1", 10, "D1", "2013-01-31")
                })),
                destroy("L1", 0, "D1", "2013-01-31"),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    witnesses: Vec::new(),
                    ..destruction("L1", 10, "D1", "2013-01-31")
                })),
            ],
        ),
        "
        LotDestroyed: refused 4 references.dates_reversed
        LotDestroyed: refused 4 references.basis_field_missing
        LotDestroyed: refused 5 counts.below_zero
        LotDestroyed: refused 5 counts.not_positive
        LotDestroyed: flag 18 destruction.no_independent_witness
        ",
    );
}

#[test]
fn retained_excess_is_destroyed_from_the_institutions_pool() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 100, "D1"),
                retain("L1", 60, "I1", "D1", Purpose::DetectionTraining),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    basis: DestructionBasis::RetainedExcess,
                    institution_id: Some("I1".into()),
                    ..destruction("L1", 20, "D1", "2013-01-31")
                })),
            ],
        ),
        "",
    );
    assert_eq!(run.state.institutions()["I1"].retained_units, 40);
    assert_eq!(
        run.state
            .lot("L1")
            .unwrap()
            .balance("D1", &Bucket::Stockpiled),
        40
    );
}

#[test]
fn a_lot_with_nothing_left_is_terminal() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 100, "D1"),
                retain("L1", 10, "I1", "D1", Purpose::DetectionTraining),
                named("burn", destroy("L1", 90, "D1", "2013-01-02")),
                consume("L1", 10, "I1"),
                destroy("L1", 1, "D1", "2013-01-02"),
                ship("S1", "L1", 1, "D1", "D2", None),
                loss("L1", 1, "D1"),
                retain("L1", 1, "I1", "D1", Purpose::DetectionTraining),
                consume("L1", 1, "I1"),
                count("D1", InventoryScope::Sample, &[("L1", 1)]),
                count("D1", InventoryScope::Sample, &[("L1", 0)]),
                certify("C1", &["burn"], &[("PMN", 90)]),
                correct("burn", "quantity", "90", "89"),
                destroy("L1", 1, "D1", "2013-01-02"),
            ],
        ),
        "
        LotDestroyed: refused 6 destroyed.terminal
        LotShipped: refused 6 destroyed.terminal
        LossReported: refused 6 destroyed.terminal
        LotRetained: refused 6 destroyed.terminal
        RetainedMinesConsumed: refused 6 destroyed.terminal
        InventoryVerified: refused 6 destroyed.terminal
        CorrectionIssued: flag 20 correction.reverses_destruction
        ",
    );
    let summary = run.state.summary();
    assert_eq!(
        (
            summary.totals.destroyed,
            summary.totals.consumed,
            summary.terminal_lots
        ),
        (90, 10, 1)
    );
}

#[test]
fn korea_designation_needs_a_us_regime_and_undestroyed_units() {
    check(
        &with(
            apmbc(),
            vec![declare("L1", "PMN", 100, "D1"), korea("L1", 10, "D1")],
        ),
        "LotDesignatedForKoreaDefense: refused 10 korea.not_us_regime",
    );
    let run = check(
        &with(
            us(Regime::Us2014),
            vec![
                declare("L1", "PMN", 100, "D1"),
                korea("L1", 101, "D1"),
                korea("L1", 0, "D1"),
                korea("L1", 60, "D1"),
                korea_revoke("L1", 61, "D1"),
                korea_revoke("L1", 10, "D1"),
                destroy("L1", 50, "D1", "2015-01-01"),
                korea("L1", 1, "D1"),
                korea_revoke("L1", 50, "D1"),
                destroy("L1", 50, "D1", "2015-01-01"),
                korea("L1", 1, "D1"),
            ],
        ),
        "
        LotDesignatedForKoreaDefense: refused 5 counts.below_zero
        LotDesignatedForKoreaDefense: refused 5 counts.not_positive
        KoreaDesignationRevoked: refused 5 counts.below_zero
        LotDesignatedForKoreaDefense: refused 5 counts.below_zero
        LotDesignatedForKoreaDefense: refused 6 destroyed.terminal
        ",
    );
    assert!(run.state.lot("L1").unwrap().is_terminal());
}

#[test]
fn the_article4_deadline_is_missed_once_and_late_destructions_are_each_flagged() {
    check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                declare("AV1", "AV", 1_000, "D1"),
                retain("L1", 100, "I1", "D1", Purpose::DetectionTraining),
                destroy("L1", 100, "D1", "2016-07-01"),
                day("2016-07-01"),
                day("2016-07-02"),
                destroy("L1", 400, "D1", "2016-07-02"),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    witnesses: Vec::new(),
                    ..destruction("L1", 400, "D1", "2016-08-01")
                })),
                destroy("AV1", 1_000, "D1", "2016-08-01"),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    basis: DestructionBasis::RetainedExcess,
                    institution_id: Some("I1".into()),
                    ..destruction("L1", 50, "D1", "2016-08-01")
                })),
                day("2016-09-01"),
            ],
        ),
        "
        2016-07-01: flag 17 retention.unchanged
        2016-07-02: flag 13 article4.deadline_missed
        LotDestroyed: flag 13 article4.late_destruction
        LotDestroyed: flag 18 destruction.no_independent_witness
        LotDestroyed: flag 13 article4.late_destruction
        ",
    );
    // Only retained units left on the deadline: no breach. Non-APM stock does not count.
    check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                declare("AV1", "AV", 1_000, "D1"),
                retain("L1", 100, "I1", "D1", Purpose::DetectionTraining),
                named("b", destroy("L1", 900, "D1", "2016-06-30")),
                certify("C1", &["b"], &[("PMN", 900)]),
                day("2016-07-02"),
                day("2020-01-01"),
            ],
        ),
        "2016-07-02: flag 17 retention.unchanged",
    );
}

#[test]
fn discovered_stock_has_six_months() {
    let discovered = |lot_id: &str, on: &str| {
        ev(EventBody::LotDeclared(LotDeclared {
            basis: LotBasis::Discovered,
            basis_date: Some(d(on)),
            ..declared(lot_id, "PMN", 340, "D1")
        }))
    };
    check(
        &with(
            apmbc(),
            vec![
                day("2017-01-10"),
                discovered("L1", "2017-01-10"),
                discovered("L2", "2017-01-10"),
                discovered("L3", "2017-01-10"),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    basis: DestructionBasis::Discovered,
                    ..destruction("L1", 340, "D1", "2017-07-12")
                })),
                day("2017-07-12"),
                day("2017-07-13"),
                day("2017-12-01"),
                ev(EventBody::LotDestroyed(LotDestroyed {
                    basis: DestructionBasis::Discovered,
                    ..destruction("L2", 340, "D1", "2017-12-01")
                })),
            ],
        ),
        "
        2017-07-13: flag 14 discovered.not_destroyed_in_time
        2017-07-13: flag 14 discovered.not_destroyed_in_time
        LotDestroyed: flag 14 discovered.late_destruction
        ",
    );
}

#[test]
fn certificates_cover_destructions_and_must_agree_with_them() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                declare("L2", "AV", 1_000, "D1"),
                named("b1", destroy("L1", 300, "X1", "2013-03-01")),
                named("b1", destroy("L1", 300, "D1", "2013-03-01")),
                named("b2", destroy("L1", 200, "D1", "2013-03-02")),
                named("b3", destroy("L2", 100, "D1", "2013-03-02")),
                certify("C0", &["e11"], &[("PMN", 300)]),
                certify("C0", &[], &[]),
                certify("C0", &["b1", "b1"], &[("PMN", 600)]),
                certify("C1", &["b1", "b2"], &[("PMN", 500)]),
                certify("C1", &["b3"], &[("AV", 100)]),
                certify("C2", &["b3"], &[("AV", 90)]),
                day("2014-03-02"),
                day("2014-03-03"),
                day("2015-01-01"),
            ],
        ),
        "
        LotDestroyed[b1]: refused 5 counts.below_zero
        DestructionCertified: refused 4 references.not_a_destruction
        DestructionCertified: refused 4 references.no_items
        DestructionCertified: refused 4 references.duplicate_entry
        DestructionCertified: refused 4 references.duplicate_id
        DestructionCertified: flag 18 destruction.certified_totals_differ
        ",
    );
    let differ = &run.flags[0].message;
    assert!(
        differ.contains("certifies 90 AV") && differ.contains("total 100 AV"),
        "{differ}"
    );

    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                named("b1", destroy("L1", 300, "D1", "2013-03-01")),
                named("b2", destroy("L1", 200, "D1", "2013-03-02")),
                certify("C1", &["b1"], &[("PMN", 300)]),
                day("2014-03-02"),
                day("2014-03-03"),
                day("2015-01-01"),
            ],
        ),
        "2014-03-03: flag 18 destruction.uncertified",
    );
    assert_eq!(run.flags[0].event_ids, vec!["b2".to_string()]);
}

// Korea rule (flag 16).

#[test]
fn undesignated_stock_must_fall_every_year_under_us_2014_and_2022() {
    check(
        &with(
            us(Regime::Us2014),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                declare("L2", "PMN", 1_000, "D1"),
                declare("AV1", "AV", 1_000, "D1"),
                // The first, partial year has no start figure and is not judged.
                day("2014-01-01"),
                named("k1", destroy("L1", 100, "D1", "2014-05-01")),
                certify("C1", &["k1"], &[("PMN", 100)]),
                day("2015-01-01"),
                korea("L2", 200, "D1"),
                day("2016-01-01"),
                // Destroying non-APM stock does not count.
                named("k2", destroy("AV1", 100, "D1", "2016-05-01")),
                certify("C2", &["k2"], &[("AV", 100)]),
                day("2017-01-01"),
                // Two year ends pass at once: both are judged.
                day("2019-01-01"),
                regime(Regime::Us2020, "US", "2020-01-31"),
                day("2021-01-01"),
                day("2022-06-21"),
                regime(Regime::Us2022, "US", "2022-06-21"),
                day("2022-07-01"),
                named("k3", destroy("L1", 100, "D1", "2022-07-01")),
                certify("C3", &["k3"], &[("PMN", 100)]),
                day("2023-01-01"),
                day("2024-01-01"),
                named("k4", destroy("L2", 800, "D1", "2024-02-01")),
                named("k5", destroy("L1", 800, "D1", "2024-02-01")),
                certify("C4", &["k4", "k5"], &[("PMN", 1_600)]),
                day("2025-01-01"),
                // Nothing left to fall: no flag.
                day("2026-01-01"),
            ],
        ),
        "
        2017-01-01: flag 16 korea.undesignated_not_falling
        2019-01-01: flag 16 korea.undesignated_not_falling
        2019-01-01: flag 16 korea.undesignated_not_falling
        2024-01-01: flag 16 korea.undesignated_not_falling
        ",
    );
}

// Transfers (hard 8).

#[test]
fn approvals_cite_article_3() {
    let base = with(
        apmbc(),
        vec![
            institution("I2", "T1", &[Purpose::ClearanceTraining], 100),
            request(
                "R1",
                TransferDirection::Export,
                &[("PMN", 100)],
                Purpose::DetectionTraining,
            ),
            request(
                "R2",
                TransferDirection::Export,
                &[("PMN", 100)],
                Purpose::Destruction,
            ),
            request(
                "R3",
                TransferDirection::Export,
                &[("PMN", 100)],
                Purpose::OperationalUse,
            ),
        ],
    );
    let approve_with = |request_id: &str,
                        basis: &str,
                        purpose: Purpose,
                        institution: Option<&str>,
                        site: Option<&str>| {
        ev(EventBody::TransferApproved(TransferApproved {
            institution_id: institution.map(str::to_string),
            destruction_site_id: site.map(str::to_string),
            ..approval(request_id, basis, purpose, &[("PMN", 100)])
        }))
    };
    check(
        &with(
            base.clone(),
            vec![
                approve_with("R1", "APMBC-3.1", Purpose::DetectionTraining, None, None),
                approve_with(
                    "R1",
                    "APMBC-3.1",
                    Purpose::DetectionTraining,
                    Some("I9"),
                    None,
                ),
                approve_with(
                    "R1",
                    "APMBC-3.1",
                    Purpose::DetectionTraining,
                    Some("I2"),
                    None,
                ),
                approve_with("R1", "APMBC-3.1", Purpose::Destruction, Some("I1"), None),
                approve_with("R2", "APMBC-3.2", Purpose::Destruction, None, Some("D1")),
                approve_with("R2", "APMBC-3.2", Purpose::Destruction, None, Some("X9")),
                approve_with(
                    "R2",
                    "APMBC-3.2",
                    Purpose::DetectionTraining,
                    None,
                    Some("X1"),
                ),
                approve_with("R3", "APMBC-3.1", Purpose::OperationalUse, Some("I1"), None),
                approve_with("R3", "APMBC-1", Purpose::OperationalUse, None, None),
                approve_with(
                    "R3",
                    "US-2022-DESTRUCTION",
                    Purpose::Destruction,
                    None,
                    Some("X1"),
                ),
                approve_with(
                    "R1",
                    "APMBC-3.1",
                    Purpose::DetectionTraining,
                    Some("I1"),
                    None,
                ),
                approve_with("R2", "APMBC-3.2", Purpose::Destruction, None, Some("X1")),
                refuse("R3"),
            ],
        ),
        "
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        ",
    );
    // One decision per request, quantities within the request.
    check(
        &with(
            base,
            vec![
                refuse("R9"),
                refuse("R3"),
                refuse("R3"),
                approve_with("R3", "APMBC-3.2", Purpose::Destruction, None, Some("X1")),
                ev(EventBody::TransferApproved(TransferApproved {
                    destruction_site_id: Some("X1".into()),
                    ..approval("R2", "APMBC-3.2", Purpose::Destruction, &[("PMN", 101)])
                })),
                ev(EventBody::TransferApproved(TransferApproved {
                    destruction_site_id: Some("X1".into()),
                    ..approval("R2", "APMBC-3.2", Purpose::Destruction, &[("AV", 1)])
                })),
                ev(EventBody::TransferApproved(TransferApproved {
                    destruction_site_id: Some("X1".into()),
                    ..approval("R2", "APMBC-3.2", Purpose::Destruction, &[("PMN", 0)])
                })),
                ev(EventBody::TransferApproved(TransferApproved {
                    destruction_site_id: Some("X1".into()),
                    ..approval("R2", "APMBC-3.2", Purpose::Destruction, &[("PMN", 60)])
                })),
                approve_with("R2", "APMBC-3.2", Purpose::Destruction, None, Some("X1")),
            ],
        ),
        "
        TransferRefused: refused 4 references.unknown_request
        TransferRefused: refused 8 transfers.already_decided
        TransferApproved: refused 8 transfers.already_decided
        TransferApproved: refused 8 transfers.exceeds_request
        TransferApproved: refused 8 transfers.exceeds_request
        TransferApproved: refused 5 counts.not_positive
        TransferApproved: refused 8 transfers.already_decided
        ",
    );
}

#[test]
fn us_approvals_cite_a_us_basis_for_destruction_detection_clearance_or_development() {
    check(
        &with(
            us(Regime::Us2022),
            vec![
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("PMN", 100)],
                    Purpose::OperationalUse,
                ),
                request(
                    "R2",
                    TransferDirection::Export,
                    &[("PMN", 100)],
                    Purpose::Destruction,
                ),
                approve(
                    "R1",
                    "US-2024-UKRAINE",
                    Purpose::OperationalUse,
                    &[("PMN", 100)],
                ),
                approve("R2", "APMBC-3.2", Purpose::Destruction, &[("PMN", 100)]),
                approve(
                    "R2",
                    "US-2022-DESTRUCTION",
                    Purpose::Destruction,
                    &[("PMN", 100)],
                ),
                refuse("R1"),
            ],
        ),
        "
        TransferApproved: refused 8 transfers.not_article3
        TransferApproved: refused 8 transfers.not_article3
        ",
    );
}

#[test]
fn a_transfer_request_needs_registered_types_and_positive_quantities() {
    check(
        &with(
            apmbc(),
            vec![
                request("R1", TransferDirection::Export, &[], Purpose::Destruction),
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("XX", 1)],
                    Purpose::Destruction,
                ),
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("PMN", 0)],
                    Purpose::Destruction,
                ),
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("PMN", 1), ("PMN", 2)],
                    Purpose::Destruction,
                ),
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("PMN", 1)],
                    Purpose::OperationalUse,
                ),
                request(
                    "R1",
                    TransferDirection::Export,
                    &[("PMN", 1)],
                    Purpose::Destruction,
                ),
            ],
        ),
        "
        TransferRequested: refused 4 references.no_items
        TransferRequested: refused 4 references.unknown_type
        TransferRequested: refused 5 counts.not_positive
        TransferRequested: refused 4 references.duplicate_entry
        TransferRequested: refused 4 references.duplicate_id
        ",
    );
}

// Physical inventory (flag 11).

#[test]
fn a_count_that_differs_from_the_book_stays_open_until_explained() {
    let base = with(
        apmbc(),
        vec![
            named("decl", declare("L1", "PMN", 100, "D1")),
            declare("L2", "PMN", 50, "D1"),
            retain("L1", 10, "I1", "D1", Purpose::DetectionTraining),
            count("D9", InventoryScope::Sample, &[]),
            count("D1", InventoryScope::Sample, &[("L9", 1)]),
            count("D1", InventoryScope::Sample, &[("L1", 1), ("L1", 1)]),
            count("D1", InventoryScope::Sample, &[("L1", 97)]),
        ],
    );
    let refusals_and_finding = "
        InventoryVerified: refused 4 references.unknown_site
        InventoryVerified: refused 4 references.unknown_lot
        InventoryVerified: refused 4 references.duplicate_entry
        InventoryVerified: flag 11 inventory.physical_differs_from_book
    ";
    let run = check(&base, refusals_and_finding);
    assert!(
        run.flags[0]
            .message
            .contains("book 100, counted 97, difference 3"),
        "{}",
        run.flags[0].message
    );
    assert_eq!(run.state.summary().open_differences, 1);

    // A partial loss leaves it open; the rest of the loss closes it.
    let run = check(
        &with(base.clone(), vec![loss("L1", 2, "D1")]),
        refusals_and_finding,
    );
    assert_eq!(
        run.state.lot("L1").unwrap().physical_differences["D1"].unexplained,
        1
    );
    let run = check(
        &with(base.clone(), vec![loss("L1", 2, "D1"), loss("L1", 1, "D1")]),
        refusals_and_finding,
    );
    assert_eq!(run.state.summary().open_differences, 0);

    // A correction of the declaration explains it too (and lowers no stock: no flag).
    let run = check(
        &with(base.clone(), vec![correct("decl", "quantity", "100", "97")]),
        refusals_and_finding,
    );
    assert_eq!(run.state.summary().open_differences, 0);

    // Moving units elsewhere explains nothing; a later count that agrees closes it.
    let run = check(
        &with(base.clone(), vec![ship("S1", "L1", 7, "D1", "D2", None)]),
        refusals_and_finding,
    );
    assert_eq!(run.state.summary().open_differences, 1);
    let run = check(
        &with(
            base.clone(),
            vec![count("D1", InventoryScope::Sample, &[("L1", 100)])],
        ),
        refusals_and_finding,
    );
    assert_eq!(run.state.summary().open_differences, 0);

    // A full count lists everything at the site: L2, not listed, was not found.
    check(
        &with(
            base,
            vec![count("D1", InventoryScope::Full, &[("L1", 100)])],
        ),
        &format!(
            "{refusals_and_finding}\nInventoryVerified: flag 11 inventory.physical_differs_from_book"
        ),
    );
}

// Corrections (hard 4 and 5, flag 20).

#[test]
fn corrections_move_the_books_both_ways() {
    let run = check(
        &with(
            apmbc(),
            vec![
                named("decl", declare("L1", "PMN", 5_000, "D1")),
                named("burn", destroy("L1", 1_000, "D1", "2013-03-01")),
                named("lost", loss("L1", 10, "D1")),
                named(
                    "keep",
                    retain("L1", 10, "I1", "D1", Purpose::DetectionTraining),
                ),
                correct("nope", "quantity", "1", "2"),
                correct("keep", "quantity", "10", "20"),
                correct("keep", "justification", "detector trials", "dog training"),
                correct("decl", "quantity", "5000", "abc"),
                correct("decl", "quantity", "5000", "-1"),
                correct("decl", "quantity", "4000", "6000"),
                correct("decl", "quantity", "5000", "1000"),
                correct("decl", "quantity", "5000", "6078"),
                correct("burn", "quantity", "1000", "2078"),
                correct("lost", "quantity", "10", "0"),
                correct("burn", "quantity", "2078", "2000"),
                correct("decl", "quantity", "6078", "6078"),
            ],
        ),
        "
        CorrectionIssued: refused 4 references.unknown_event
        CorrectionIssued: refused 4 corrections.not_correctable
        CorrectionIssued: refused 4 corrections.bad_value
        CorrectionIssued: refused 4 corrections.bad_value
        CorrectionIssued: refused 4 corrections.old_value_differs
        CorrectionIssued: refused 5 counts.below_zero
        CorrectionIssued: flag 20 correction.raises_stock
        CorrectionIssued: flag 20 correction.raises_stock
        CorrectionIssued: flag 20 correction.reverses_destruction
        ",
    );
    let lot = run.state.lot("L1").unwrap();
    assert_eq!(lot.declared_units, 6_078);
    assert_eq!(run.state.destroyed_units("burn"), Some(2_000));
    assert_eq!(lot.balance("D1", &Bucket::Stockpiled), 6_078 - 2_000 - 10);
    assert_eq!(lot.balance("D1", &Bucket::Lost), 0);
    let below_zero = &run.violations[5].message;
    assert!(
        below_zero.contains("holds 3980 units stockpiled; this event takes 4000"),
        "{below_zero}"
    );
}

#[test]
fn a_correction_can_revive_a_terminal_lot_and_is_flagged() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 100, "D1"),
                named("burn", destroy("L1", 100, "D1", "2013-03-01")),
                destroy("L1", 1, "D1", "2013-03-02"),
                correct("burn", "quantity", "100", "90"),
                destroy("L1", 10, "D1", "2013-03-02"),
            ],
        ),
        "
        LotDestroyed: refused 6 destroyed.terminal
        CorrectionIssued: flag 20 correction.reverses_destruction
        ",
    );
    assert!(run.state.lot("L1").unwrap().is_terminal());
}

// Determinism, atomicity and the read side.

#[test]
fn a_refused_event_changes_nothing() {
    let base = with(
        apmbc(),
        vec![
            declare("L1", "PMN", 1_000, "D1"),
            retain("L1", 100, "I1", "D1", Purpose::DetectionTraining),
            ship("S1", "L1", 500, "D1", "D2", None),
            named("got", receive("S1", "L1", 498, SealCheck::Intact)),
            ship("S2", "L1", 498, "D2", "D1", None),
            count("D1", InventoryScope::Sample, &[("L1", 399)]),
        ],
    );
    let before = check(
        &base,
        "
        LotReceived[got]: flag 12 shipment.count_differs
        InventoryVerified: flag 11 inventory.physical_differs_from_book
        ",
    );
    // Each of these is refused only by the final check of all its postings, after the
    // plan was built: a recount that would move units back into the shortfall and out of
    // a stockpile that has shipped them on; a loss partly covered by the stockpile; a
    // retention over the ceiling; a declaration correction. The digest and every figure
    // stay as they were (`check` also asserts the digest at each refusal).
    let after = check(
        &with(
            base.clone(),
            vec![
                correct("got", "quantity_counted", "498", "400"),
                loss("L1", 401, "D1"),
                retain("L1", 2_901, "I1", "D1", Purpose::DetectionTraining),
                correct("got", "quantity_counted", "498", "0"),
            ],
        ),
        "
        LotReceived[got]: flag 12 shipment.count_differs
        InventoryVerified: flag 11 inventory.physical_differs_from_book
        CorrectionIssued: refused 5 counts.below_zero
        LossReported: refused 5 counts.below_zero
        LotRetained: refused 9 retention.ceiling_exceeded
        CorrectionIssued: refused 5 counts.below_zero
        ",
    );
    assert_eq!(after.state.digest(), before.state.digest());
    assert_eq!(after.state.summary(), before.state.summary());
    assert_eq!(after.state.lot("L1"), before.state.lot("L1"));
}

#[test]
fn the_digest_tells_states_apart() {
    let one = run(&with(apmbc(), vec![declare("L1", "PMN", 100, "D1")]))
        .state
        .digest();
    let other = run(&with(apmbc(), vec![declare("L1", "PMN", 101, "D1")]))
        .state
        .digest();
    let empty = ComplianceState::new().digest();
    assert_ne!(one, other);
    assert_ne!(one, empty);
}

#[test]
fn the_summary_adds_up_per_pool_type_and_site() {
    let run = check(
        &with(
            us(Regime::Us2022),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                declare("L2", "AV", 500, "D2"),
                korea("L1", 100, "D1"),
                retain("L1", 50, "I1", "D1", Purpose::DetectionTraining),
                consume("L1", 5, "I1"),
                ship("S1", "L1", 200, "D1", "D2", None),
                destroy("L2", 100, "X1", "2023-01-01"),
                destroy("L2", 100, "D2", "2023-01-01"),
                loss("L2", 1, "D2"),
            ],
        ),
        "LotDestroyed: refused 5 counts.below_zero",
    );
    let summary = run.state.summary();
    let expected = PoolTotals {
        stockpiled: 650 + 399,
        retained: 45,
        korea: 100,
        in_transit: 200,
        destroyed: 100,
        consumed: 5,
        lost: 1,
        ..PoolTotals::default()
    };
    assert_eq!(summary.totals, expected);
    assert_eq!(
        (summary.lots, summary.declared, summary.open_shipments),
        (2, 1_500, 1)
    );
    assert_eq!(summary.by_type["AV"].destroyed, 100);
    assert_eq!(summary.by_type["PMN"].held(), 995);
    assert_eq!(summary.by_site["D1"].in_transit, 200);
    assert_eq!(summary.by_site["D2"].stockpiled, 399);
    assert_eq!(summary.totals.held() + 106, summary.declared);
    serde_json::to_string(&summary).expect("the summary serializes");
}

#[test]
fn flags_are_counted_by_rule() {
    let run = check(
        &with(
            apmbc(),
            vec![
                ev(EventBody::LotDeclared(LotDeclared {
                    manufacturer_lot_number: None,
                    lot_number_absent_reason: "unknown".into(),
                    ..declared("L1", "PMN", 100, "D1")
                })),
                ship("S1", "L1", 50, "D1", "D2", None),
                receive("S1", "L1", 49, SealCheck::Broken),
            ],
        ),
        "
        LotDeclared: flag 19 lot.number_missing
        LotReceived: flag 12 shipment.count_differs
        LotReceived: flag 12 shipment.seal
        ",
    );
    let expected: BTreeMap<FlagRule, u64> =
        [(FlagRule::MissingLotNumber, 1), (FlagRule::Shipment, 2)].into();
    assert_eq!(run.state.summary().flags_raised, expected);
}

// Deadlines indexed by due date, and what the state keeps once they are met.

#[test]
fn deadlines_that_fall_due_together_are_flagged_in_id_order() {
    // Shipped and destroyed in the reverse of id order; a single jump in time makes all
    // of them due at once, and the flags come in id order, as a scan of id-keyed maps
    // would give them. A received shipment and a certified destruction leave the index.
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                ship("S3", "L1", 10, "D1", "D2", None),
                ship("S2", "L1", 10, "D1", "D2", None),
                ship("S1", "L1", 10, "D1", "D2", None),
                receive("S2", "L1", 10, SealCheck::Intact),
                named("b3", destroy("L1", 10, "D1", "2013-01-01")),
                named("b2", destroy("L1", 10, "D1", "2013-01-02")),
                named("b1", destroy("L1", 10, "D1", "2013-01-02")),
                certify("C1", &["b2"], &[("PMN", 10)]),
                day("2014-06-01"),
                day("2014-06-02"),
            ],
        ),
        "
        2014-06-01: flag 12 shipment.overdue
        2014-06-01: flag 12 shipment.overdue
        2014-06-01: flag 18 destruction.uncertified
        2014-06-01: flag 18 destruction.uncertified
        ",
    );
    let proofs: Vec<&str> = run
        .flags
        .iter()
        .map(|flag| flag.event_ids[0].as_str())
        .collect();
    assert!(
        run.flags[0].message.contains("shipment S1 "),
        "{}",
        run.flags[0].message
    );
    assert!(
        run.flags[1].message.contains("shipment S3 "),
        "{}",
        run.flags[1].message
    );
    assert_eq!(proofs[2..], ["b1", "b3"]);
    assert_eq!(run.state.summary().open_shipments, 2);
}

#[test]
fn a_discovered_lot_emptied_and_refilled_after_its_deadline_is_flagged_then() {
    let discovered = ev(EventBody::LotDeclared(LotDeclared {
        basis: LotBasis::Discovered,
        basis_date: Some(d("2017-01-10")),
        ..declared("L1", "PMN", 340, "D1")
    }));
    check(
        &with(
            apmbc(),
            vec![
                day("2017-01-10"),
                discovered,
                named(
                    "burn",
                    ev(EventBody::LotDestroyed(LotDestroyed {
                        basis: DestructionBasis::Discovered,
                        ..destruction("L1", 340, "D1", "2017-03-01")
                    })),
                ),
                day("2017-08-01"),
                day("2017-08-02"),
                correct("burn", "quantity", "340", "300"),
                day("2017-08-03"),
                day("2017-08-04"),
            ],
        ),
        "
        CorrectionIssued: flag 20 correction.reverses_destruction
        2017-08-03: flag 14 discovered.not_destroyed_in_time
        ",
    );
}

#[test]
fn closed_shipments_keep_what_later_events_need() {
    let run = check(
        &with(
            apmbc(),
            vec![
                declare("L1", "PMN", 1_000, "D1"),
                ship("S1", "L1", 500, "D1", "D2", None),
                named("got", receive("S1", "L1", 500, SealCheck::Intact)),
                receive("S1", "L1", 500, SealCheck::Intact),
                correct("got", "quantity_counted", "500", "490"),
                loss("L1", 4, "D2"),
            ],
        ),
        "
        LotReceived: refused 7 shipments.already_received
        ",
    );
    let already = &run.violations[0].message;
    assert!(
        already.contains("already received by event got"),
        "{already}"
    );
    let shipment = run.state.shipment("S1").unwrap();
    assert_eq!(
        shipment.status,
        ShipmentStatus::Received {
            event_id: "got".into(),
            counted: 490
        }
    );
    assert_eq!(
        run.state.open_differences(),
        vec![OpenDifference::ShipperReceiver {
            lot_id: "L1".into(),
            shipment_id: "S1".into(),
            shipped: 500,
            counted: 490,
            unreceived: 6,
            excess: 0,
        }]
    );
    assert_eq!(
        run.state.lot("L1").unwrap().balance(
            "D2",
            &Bucket::Unreceived {
                shipment_id: "S1".into()
            }
        ),
        6
    );
}

#[test]
fn the_state_remembers_events_by_fingerprint() {
    let run = check(
        &with(
            apmbc(),
            vec![
                named("decl", declare("L1", "PMN", 1_000, "D1")),
                named("burn", destroy("L1", 100, "D1", "2013-03-01")),
                named("look", count("D1", InventoryScope::Sample, &[("L1", 900)])),
            ],
        ),
        "",
    );
    let record = run.state.record("burn").unwrap();
    assert_eq!(record.kind, EventKind::LotDestroyed);
    assert_eq!(
        run.state.record("decl").unwrap().kind,
        EventKind::LotDeclared
    );
    assert!(run.state.record("look").is_none());
    assert_eq!(run.state.destroyed_units("burn"), Some(100));
    assert_eq!(run.state.destroyed_units("decl"), None);
    let destruction = run.state.destruction("burn").unwrap();
    assert_eq!(
        (
            destruction.site_id.as_str(),
            destruction.units,
            destruction.certificates
        ),
        ("D1", 100, 0)
    );
    assert_eq!(
        Fingerprint::of("burn").to_bytes()[..],
        crate::hash::Hash32::digest(b"burn").0[..16]
    );
}
