//! Conversions between `stockpile.v1.Event` on the wire and [`stockpile_core::events::Event`].
//!
//! [`decode_event`] is the only way untrusted bytes become a domain event, so it checks
//! every shape the core relies on (see the header of `stockpile_core::events`): required
//! ids non-empty and within [`ID_BYTES_MAX`], texts within [`TEXT_BYTES_MAX`], repeated
//! fields within [`REPEATED_ITEMS_MAX`] (witnesses within [`WITNESSES_MAX`]), quantities
//! within [`QUANTITY_MAX`], dates real, enums known, hashes and keys 32 bytes, and a body
//! present. Domain rules (a zero quantity, a shipment without its approval...) are judged
//! by `stockpile_core::state`, not here.
//!
//! The wire conventions of `events.proto` map onto `Option` in the core: an empty string
//! is an absent optional id, text or date, empty bytes an absent optional hash, and 0 an
//! absent optional timestamp. Proto3 cannot tell an unset field from one set to its
//! default, so a required field holding its default (empty id or date, timestamp 0, enum
//! 0 = `UNSPECIFIED`) is refused as missing.
//!
//! [`encode_event`] is the reverse, used by emitters to produce the bytes they sign. The
//! ledger never re-encodes a received event: it keeps and hashes the bytes as they came.
//!
//! Layout: the two entry points and the error type, then the decoding helpers and one
//! `*_from_wire` function per message, then the encoding helpers and one `*_to_wire`
//! function per message. Error fields are dotted paths built on the way out:
//! a message decoder names its own fields, and the caller prefixes the enclosing field
//! (`lot_destroyed.witnesses[2].name`).

use crate::wire;
use bytes::Bytes;
use prost::Message as _;
use stockpile_core::events::{
    CorrectionIssued, DestructionBasis, DestructionCertified, DestructionMethod, Event, EventBody,
    Evidence, FieldChange, InstitutionAuthorized, InventoryScope, InventoryVerified, KeyRevoked,
    KoreaDesignationRevoked, LossReported, LotBasis, LotCount, LotDeclared,
    LotDesignatedForKoreaDefense, LotDestroyed, LotReceived, LotRetained, LotShipped,
    MineTypeRegistered, Purpose, Regime, RegimeConfigured, RetainedMinesConsumed, RevocationReason,
    Role, SealCheck, SealInspection, SignerAuthorized, SiteKind, SiteRegistered, TransferApproved,
    TransferDirection, TransferRefused, TransferRequested, TypeQuantity, Witness,
};
use stockpile_core::hash::Hash32;
use stockpile_core::limits::{
    ID_BYTES_MAX, QUANTITY_MAX, REPEATED_ITEMS_MAX, TEXT_BYTES_MAX, TIMESTAMP_MS_MAX, WITNESSES_MAX,
};
use stockpile_core::time::{Date, TimestampMs};

/// Why submitted event bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDecodeError {
    /// The bytes are not a protobuf `stockpile.v1.Event` at all.
    #[error("malformed event: {detail}")]
    Malformed { detail: String },
    /// The message decoded, but a field breaks the schema's rules.
    #[error("{field}: {problem}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `lot_destroyed.witnesses[2].name`.
        field: String,
        problem: String,
    },
}

type Result<T> = std::result::Result<T, EventDecodeError>;

/// Decodes and checks the shape of a serialized `stockpile.v1.Event`.
///
/// Never panics, whatever the input.
pub fn decode_event(bytes: &[u8]) -> std::result::Result<Event, EventDecodeError> {
    let event = wire::Event::decode(bytes).map_err(|error| EventDecodeError::Malformed {
        detail: error.to_string(),
    })?;
    event_from_wire(event)
}

/// Serializes a domain event as a `stockpile.v1.Event`: the bytes an emitter signs.
///
/// An event that came out of [`decode_event`] encodes to bytes that decode back to it.
pub fn encode_event(event: &Event) -> Vec<u8> {
    event_to_wire(event).encode_to_vec()
}

// ---------------------------------------------------------------------------------------
// Decoding helpers.

fn invalid(field: &str, problem: impl Into<String>) -> EventDecodeError {
    EventDecodeError::Invalid {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// Prefixes the field path of an error from inside the message held in `outer`.
fn inside<T>(outer: &str, result: Result<T>) -> Result<T> {
    result.map_err(|error| match error {
        EventDecodeError::Invalid { field, problem } => EventDecodeError::Invalid {
            field: if field.is_empty() {
                outer.to_owned()
            } else {
                format!("{outer}.{field}")
            },
            problem,
        },
        malformed @ EventDecodeError::Malformed { .. } => malformed,
    })
}

/// A repeated field of at most `max` items, each converted by `convert`. Errors inside
/// item `i` are reported at `field[i]`; `convert` names item fields relative to the item
/// (or `""` for the item itself).
fn repeated<W, D>(
    field: &str,
    items: Vec<W>,
    max: usize,
    mut convert: impl FnMut(W) -> Result<D>,
) -> Result<Vec<D>> {
    if items.len() > max {
        return Err(invalid(
            field,
            format!("{} items; at most {max} are allowed", items.len()),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| inside(&format!("{field}[{index}]"), convert(item)))
        .collect()
}

fn bounded_text(field: &str, value: String, max_bytes: usize) -> Result<String> {
    if value.len() > max_bytes {
        return Err(invalid(
            field,
            format!(
                "{} bytes long; at most {max_bytes} are allowed",
                value.len()
            ),
        ));
    }
    Ok(value)
}

/// A required identifier.
fn id(field: &str, value: String) -> Result<String> {
    if value.is_empty() {
        return Err(invalid(field, "required, but empty"));
    }
    bounded_text(field, value, ID_BYTES_MAX)
}

/// An optional identifier: empty means absent.
fn optional_id(field: &str, value: String) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    id(field, value).map(Some)
}

/// Free text, possibly empty.
fn text(field: &str, value: String) -> Result<String> {
    bounded_text(field, value, TEXT_BYTES_MAX)
}

/// A unit count. Zero passes here: whether it is allowed is a domain rule.
fn quantity(field: &str, value: u64) -> Result<u64> {
    if value > QUANTITY_MAX {
        return Err(invalid(
            field,
            format!("{value} is more than the largest allowed quantity, {QUANTITY_MAX}"),
        ));
    }
    Ok(value)
}

/// A required `YYYY-MM-DD` date.
fn date(field: &str, value: &str) -> Result<Date> {
    if value.is_empty() {
        return Err(invalid(field, "required, but empty (expected YYYY-MM-DD)"));
    }
    Date::parse(value).map_err(|error| invalid(field, error.to_string()))
}

/// An optional `YYYY-MM-DD` date: empty means absent.
fn optional_date(field: &str, value: &str) -> Result<Option<Date>> {
    if value.is_empty() {
        return Ok(None);
    }
    date(field, value).map(Some)
}

/// A required Unix time in milliseconds; 0 is the proto3 default, so it means "not set".
fn timestamp(field: &str, millis: i64) -> Result<TimestampMs> {
    if !(1..=TIMESTAMP_MS_MAX).contains(&millis) {
        return Err(invalid(
            field,
            format!(
                "expected a positive Unix time in milliseconds up to {TIMESTAMP_MS_MAX} (year 9999), got {millis}"
            ),
        ));
    }
    Ok(TimestampMs(millis))
}

/// An optional Unix time in milliseconds: 0 means absent.
fn optional_timestamp(field: &str, millis: i64) -> Result<Option<TimestampMs>> {
    if millis == 0 {
        return Ok(None);
    }
    timestamp(field, millis).map(Some)
}

/// A required SHA-256 digest.
fn hash(field: &str, bytes: &[u8]) -> Result<Hash32> {
    Hash32::from_slice(bytes).ok_or_else(|| {
        invalid(
            field,
            format!(
                "expected a 32-byte SHA-256 digest, got {} bytes",
                bytes.len()
            ),
        )
    })
}

/// An optional SHA-256 digest: empty means absent.
fn optional_hash(field: &str, bytes: &[u8]) -> Result<Option<Hash32>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    hash(field, bytes).map(Some)
}

fn public_key(field: &str, bytes: &[u8]) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| {
        invalid(
            field,
            format!(
                "expected a 32-byte Ed25519 public key, got {} bytes",
                bytes.len()
            ),
        )
    })
}

/// A domain enum and its generated wire twin, whose value 0 is `UNSPECIFIED`.
trait WireEnum: Sized + Copy {
    type Wire: TryFrom<i32> + Into<i32>;
    /// `None` for `UNSPECIFIED`.
    fn from_wire(wire: Self::Wire) -> Option<Self>;
    fn to_wire(self) -> Self::Wire;
}

/// Implements [`WireEnum`] for enums whose variants are named alike on both sides. The
/// matches are exhaustive both ways, so a variant added on one side only fails to compile.
macro_rules! wire_enum {
    ($domain:ident { $($variant:ident),+ $(,)? }) => {
        impl WireEnum for $domain {
            type Wire = wire::$domain;

            fn from_wire(wire: wire::$domain) -> Option<Self> {
                match wire {
                    wire::$domain::Unspecified => None,
                    $(wire::$domain::$variant => Some($domain::$variant),)+
                }
            }

            fn to_wire(self) -> wire::$domain {
                match self {
                    $($domain::$variant => wire::$domain::$variant,)+
                }
            }
        }
    };
}

wire_enum!(Regime {
    Apmbc,
    Us2014,
    Us2020,
    Us2022
});
wire_enum!(Role {
    Registrar,
    Depot,
    Demil,
    Certifier,
    ExportControl,
    Inspector
});
wire_enum!(Purpose {
    DetectionTraining,
    ClearanceTraining,
    DestructionTraining,
    Development,
    Destruction,
    OperationalUse,
    Other,
});
wire_enum!(SiteKind {
    Depot,
    DestructionFacility,
    TrainingInstitution,
    Transit
});
wire_enum!(RevocationReason {
    Retired,
    Compromised
});
wire_enum!(LotBasis {
    Initial,
    Discovered,
    Seized,
    ImportedUnderApproval,
    Acquired
});
wire_enum!(SealCheck {
    Intact,
    Broken,
    Missing
});
wire_enum!(DestructionMethod {
    OpenDetonation,
    OpenBurning,
    ContainedDetonation,
    ColdDetonationChamber,
    Thermal,
    Disassembly,
});
wire_enum!(DestructionBasis {
    Article4,
    Discovered,
    RetainedExcess
});
wire_enum!(TransferDirection { Export, Import });
wire_enum!(InventoryScope { Full, Sample });

/// A required enum: `UNSPECIFIED` and numbers outside the schema are refused.
fn enumeration<E: WireEnum>(field: &str, raw: i32) -> Result<E> {
    let wire =
        E::Wire::try_from(raw).map_err(|_| invalid(field, format!("unknown value {raw}")))?;
    E::from_wire(wire).ok_or_else(|| invalid(field, "required, but unspecified (0)"))
}

// ---------------------------------------------------------------------------------------
// Decoding, one function per message.

fn event_from_wire(w: wire::Event) -> Result<Event> {
    Ok(Event {
        event_id: id("event_id", w.event_id)?,
        origin: id("origin", w.origin)?,
        actor: id("actor", w.actor)?,
        emitter_sequence: w.emitter_sequence,
        occurred_at: timestamp("occurred_at_ms", w.occurred_at_ms)?,
        evidence: repeated(
            "evidence",
            w.evidence,
            REPEATED_ITEMS_MAX,
            evidence_from_wire,
        )?,
        body: body_from_wire(w.body)?,
    })
}

fn evidence_from_wire(w: wire::Evidence) -> Result<Evidence> {
    Ok(Evidence {
        kind: text("kind", w.kind)?,
        sha256: hash("sha256", &w.sha256)?,
        description: text("description", w.description)?,
    })
}

fn body_from_wire(body: Option<wire::event::Body>) -> Result<EventBody> {
    use EventBody as B;
    use wire::event::Body as W;
    let Some(body) = body else {
        return Err(invalid(
            "body",
            "missing: an event needs exactly one body (lot_declared, lot_shipped, ...) \
             of a kind this ledger knows",
        ));
    };
    Ok(match body {
        W::RegimeConfigured(w) => {
            B::RegimeConfigured(inside("regime_configured", regime_configured_from_wire(w))?)
        }
        W::SiteRegistered(w) => {
            B::SiteRegistered(inside("site_registered", site_registered_from_wire(w))?)
        }
        W::MineTypeRegistered(w) => B::MineTypeRegistered(inside(
            "mine_type_registered",
            mine_type_registered_from_wire(w),
        )?),
        W::InstitutionAuthorized(w) => B::InstitutionAuthorized(inside(
            "institution_authorized",
            institution_authorized_from_wire(w),
        )?),
        W::SignerAuthorized(w) => {
            B::SignerAuthorized(inside("signer_authorized", signer_authorized_from_wire(w))?)
        }
        W::KeyRevoked(w) => B::KeyRevoked(inside("key_revoked", key_revoked_from_wire(w))?),
        W::LotDeclared(w) => B::LotDeclared(inside("lot_declared", lot_declared_from_wire(w))?),
        W::LotRetained(w) => B::LotRetained(inside("lot_retained", lot_retained_from_wire(w))?),
        W::RetainedMinesConsumed(w) => B::RetainedMinesConsumed(inside(
            "retained_mines_consumed",
            retained_mines_consumed_from_wire(w),
        )?),
        W::LotShipped(w) => B::LotShipped(inside("lot_shipped", lot_shipped_from_wire(w))?),
        W::LotReceived(w) => B::LotReceived(inside("lot_received", lot_received_from_wire(w))?),
        W::LotDestroyed(w) => B::LotDestroyed(inside("lot_destroyed", lot_destroyed_from_wire(w))?),
        W::DestructionCertified(w) => B::DestructionCertified(inside(
            "destruction_certified",
            destruction_certified_from_wire(w),
        )?),
        W::LotDesignatedForKoreaDefense(w) => B::LotDesignatedForKoreaDefense(inside(
            "lot_designated_for_korea_defense",
            lot_designated_for_korea_defense_from_wire(w),
        )?),
        W::KoreaDesignationRevoked(w) => B::KoreaDesignationRevoked(inside(
            "korea_designation_revoked",
            korea_designation_revoked_from_wire(w),
        )?),
        W::LossReported(w) => B::LossReported(inside("loss_reported", loss_reported_from_wire(w))?),
        W::TransferRequested(w) => B::TransferRequested(inside(
            "transfer_requested",
            transfer_requested_from_wire(w),
        )?),
        W::TransferRefused(w) => {
            B::TransferRefused(inside("transfer_refused", transfer_refused_from_wire(w))?)
        }
        W::TransferApproved(w) => {
            B::TransferApproved(inside("transfer_approved", transfer_approved_from_wire(w))?)
        }
        W::InventoryVerified(w) => B::InventoryVerified(inside(
            "inventory_verified",
            inventory_verified_from_wire(w),
        )?),
        W::CorrectionIssued(w) => {
            B::CorrectionIssued(inside("correction_issued", correction_issued_from_wire(w))?)
        }
    })
}

fn type_quantity_from_wire(w: wire::TypeQuantity) -> Result<TypeQuantity> {
    Ok(TypeQuantity {
        type_id: id("type_id", w.type_id)?,
        quantity: quantity("quantity", w.quantity)?,
    })
}

fn type_quantities_from_wire(
    field: &str,
    items: Vec<wire::TypeQuantity>,
) -> Result<Vec<TypeQuantity>> {
    repeated(field, items, REPEATED_ITEMS_MAX, type_quantity_from_wire)
}

fn ids_from_wire(field: &str, items: Vec<String>) -> Result<Vec<String>> {
    repeated(field, items, REPEATED_ITEMS_MAX, |item| id("", item))
}

fn texts_from_wire(field: &str, items: Vec<String>) -> Result<Vec<String>> {
    repeated(field, items, REPEATED_ITEMS_MAX, |item| text("", item))
}

fn regime_configured_from_wire(w: wire::RegimeConfigured) -> Result<RegimeConfigured> {
    Ok(RegimeConfigured {
        state_id: id("state_id", w.state_id)?,
        regime: enumeration("regime", w.regime)?,
        eif_date: date("eif_date", &w.eif_date)?,
        policy_dates: repeated("policy_dates", w.policy_dates, REPEATED_ITEMS_MAX, |item| {
            date("", &item)
        })?,
        article4_deadline: optional_date("article4_deadline", &w.article4_deadline)?,
        initial_report_due: optional_date("initial_report_due", &w.initial_report_due)?,
    })
}

fn site_registered_from_wire(w: wire::SiteRegistered) -> Result<SiteRegistered> {
    Ok(SiteRegistered {
        site_id: id("site_id", w.site_id)?,
        name: text("name", w.name)?,
        kind: enumeration("kind", w.kind)?,
        country_code: id("country_code", w.country_code)?,
        in_korean_peninsula: w.in_korean_peninsula,
    })
}

fn mine_type_registered_from_wire(w: wire::MineTypeRegistered) -> Result<MineTypeRegistered> {
    Ok(MineTypeRegistered {
        type_id: id("type_id", w.type_id)?,
        designation: text("designation", w.designation)?,
        category: text("category", w.category)?,
        activation_modes: texts_from_wire("activation_modes", w.activation_modes)?,
        self_destructing: w.self_destructing,
        counts_as_apm: w.counts_as_apm,
        dimensions_mm: text("dimensions_mm", w.dimensions_mm)?,
        fusing: text("fusing", w.fusing)?,
        explosive_type: text("explosive_type", w.explosive_type)?,
        explosive_mg: w.explosive_mg,
        metal_mg: w.metal_mg,
        photo_sha256: optional_hash("photo_sha256", &w.photo_sha256)?,
    })
}

fn institution_authorized_from_wire(
    w: wire::InstitutionAuthorized,
) -> Result<InstitutionAuthorized> {
    Ok(InstitutionAuthorized {
        institution_id: id("institution_id", w.institution_id)?,
        site_id: id("site_id", w.site_id)?,
        name: text("name", w.name)?,
        instrument: text("instrument", w.instrument)?,
        instrument_date: optional_date("instrument_date", &w.instrument_date)?,
        permitted_purposes: repeated(
            "permitted_purposes",
            w.permitted_purposes,
            REPEATED_ITEMS_MAX,
            |item| enumeration("", item),
        )?,
        ceiling: quantity("ceiling", w.ceiling)?,
        valid_from: optional_date("valid_from", &w.valid_from)?,
        valid_to: optional_date("valid_to", &w.valid_to)?,
    })
}

fn signer_authorized_from_wire(w: wire::SignerAuthorized) -> Result<SignerAuthorized> {
    Ok(SignerAuthorized {
        key_id: id("key_id", w.key_id)?,
        public_key: public_key("public_key", &w.public_key)?,
        holder: text("holder", w.holder)?,
        role: enumeration("role", w.role)?,
        valid_from: timestamp("valid_from_ms", w.valid_from_ms)?,
        site_scope: ids_from_wire("site_scope", w.site_scope)?,
    })
}

fn key_revoked_from_wire(w: wire::KeyRevoked) -> Result<KeyRevoked> {
    Ok(KeyRevoked {
        key_id: id("key_id", w.key_id)?,
        revoked_at: timestamp("revoked_at_ms", w.revoked_at_ms)?,
        reason: enumeration("reason", w.reason)?,
        suspect_from: optional_timestamp("suspect_from_ms", w.suspect_from_ms)?,
    })
}

fn lot_declared_from_wire(w: wire::LotDeclared) -> Result<LotDeclared> {
    Ok(LotDeclared {
        lot_id: id("lot_id", w.lot_id)?,
        type_id: id("type_id", w.type_id)?,
        manufacturer_lot_number: optional_id("manufacturer_lot_number", w.manufacturer_lot_number)?,
        lot_number_absent_reason: text("lot_number_absent_reason", w.lot_number_absent_reason)?,
        quantity: quantity("quantity", w.quantity)?,
        site_id: id("site_id", w.site_id)?,
        owner: text("owner", w.owner)?,
        custodian: text("custodian", w.custodian)?,
        basis: enumeration("basis", w.basis)?,
        basis_date: optional_date("basis_date", &w.basis_date)?,
        request_id: optional_id("request_id", w.request_id)?,
    })
}

fn lot_retained_from_wire(w: wire::LotRetained) -> Result<LotRetained> {
    Ok(LotRetained {
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        institution_id: id("institution_id", w.institution_id)?,
        purpose: enumeration("purpose", w.purpose)?,
        justification: text("justification", w.justification)?,
        planned_annual_use: quantity("planned_annual_use", w.planned_annual_use)?,
        next_review_date: optional_date("next_review_date", &w.next_review_date)?,
        site_id: id("site_id", w.site_id)?,
    })
}

fn retained_mines_consumed_from_wire(
    w: wire::RetainedMinesConsumed,
) -> Result<RetainedMinesConsumed> {
    Ok(RetainedMinesConsumed {
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        institution_id: id("institution_id", w.institution_id)?,
        activity: text("activity", w.activity)?,
        date: date("date", &w.date)?,
    })
}

fn lot_shipped_from_wire(w: wire::LotShipped) -> Result<LotShipped> {
    Ok(LotShipped {
        shipment_id: id("shipment_id", w.shipment_id)?,
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        from_site_id: id("from_site_id", w.from_site_id)?,
        to_site_id: id("to_site_id", w.to_site_id)?,
        seal_ids: ids_from_wire("seal_ids", w.seal_ids)?,
        date: date("date", &w.date)?,
        request_id: optional_id("request_id", w.request_id)?,
    })
}

fn lot_received_from_wire(w: wire::LotReceived) -> Result<LotReceived> {
    Ok(LotReceived {
        shipment_id: id("shipment_id", w.shipment_id)?,
        lot_id: id("lot_id", w.lot_id)?,
        quantity_counted: quantity("quantity_counted", w.quantity_counted)?,
        seal_check: enumeration("seal_check", w.seal_check)?,
        date: date("date", &w.date)?,
    })
}

fn witness_from_wire(w: wire::Witness) -> Result<Witness> {
    Ok(Witness {
        name: text("name", w.name)?,
        organisation: text("organisation", w.organisation)?,
        role: text("role", w.role)?,
        independent: w.independent,
    })
}

fn lot_destroyed_from_wire(w: wire::LotDestroyed) -> Result<LotDestroyed> {
    Ok(LotDestroyed {
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        site_id: id("site_id", w.site_id)?,
        method: enumeration("method", w.method)?,
        start_date: date("start_date", &w.start_date)?,
        end_date: date("end_date", &w.end_date)?,
        input_count: quantity("input_count", w.input_count)?,
        witnesses: repeated("witnesses", w.witnesses, WITNESSES_MAX, witness_from_wire)?,
        standards: texts_from_wire("standards", w.standards)?,
        end_product_sha256: repeated(
            "end_product_sha256",
            w.end_product_sha256,
            REPEATED_ITEMS_MAX,
            |item| hash("", &item),
        )?,
        basis: enumeration("basis", w.basis)?,
        institution_id: optional_id("institution_id", w.institution_id)?,
    })
}

fn destruction_certified_from_wire(w: wire::DestructionCertified) -> Result<DestructionCertified> {
    Ok(DestructionCertified {
        certificate_id: id("certificate_id", w.certificate_id)?,
        covered_event_ids: ids_from_wire("covered_event_ids", w.covered_event_ids)?,
        totals: type_quantities_from_wire("totals", w.totals)?,
        certifier: text("certifier", w.certifier)?,
        date: date("date", &w.date)?,
        findings: text("findings", w.findings)?,
    })
}

fn lot_designated_for_korea_defense_from_wire(
    w: wire::LotDesignatedForKoreaDefense,
) -> Result<LotDesignatedForKoreaDefense> {
    Ok(LotDesignatedForKoreaDefense {
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        authority: text("authority", w.authority)?,
        justification: text("justification", w.justification)?,
        review_date: optional_date("review_date", &w.review_date)?,
        site_id: id("site_id", w.site_id)?,
    })
}

fn korea_designation_revoked_from_wire(
    w: wire::KoreaDesignationRevoked,
) -> Result<KoreaDesignationRevoked> {
    Ok(KoreaDesignationRevoked {
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        authority: text("authority", w.authority)?,
        reason: text("reason", w.reason)?,
        site_id: id("site_id", w.site_id)?,
    })
}

fn loss_reported_from_wire(w: wire::LossReported) -> Result<LossReported> {
    Ok(LossReported {
        lot_id: id("lot_id", w.lot_id)?,
        quantity: quantity("quantity", w.quantity)?,
        site_id: id("site_id", w.site_id)?,
        circumstances: text("circumstances", w.circumstances)?,
        investigation_reference: text("investigation_reference", w.investigation_reference)?,
    })
}

fn transfer_requested_from_wire(w: wire::TransferRequested) -> Result<TransferRequested> {
    Ok(TransferRequested {
        request_id: id("request_id", w.request_id)?,
        requester: text("requester", w.requester)?,
        direction: enumeration("direction", w.direction)?,
        items: type_quantities_from_wire("items", w.items)?,
        stated_purpose: enumeration("stated_purpose", w.stated_purpose)?,
        counterparty: text("counterparty", w.counterparty)?,
        destination: text("destination", w.destination)?,
    })
}

fn transfer_refused_from_wire(w: wire::TransferRefused) -> Result<TransferRefused> {
    Ok(TransferRefused {
        request_id: id("request_id", w.request_id)?,
        authority: text("authority", w.authority)?,
        date: date("date", &w.date)?,
        basis_cited: text("basis_cited", w.basis_cited)?,
        reasoning: text("reasoning", w.reasoning)?,
    })
}

fn transfer_approved_from_wire(w: wire::TransferApproved) -> Result<TransferApproved> {
    Ok(TransferApproved {
        request_id: id("request_id", w.request_id)?,
        authority: text("authority", w.authority)?,
        date: date("date", &w.date)?,
        legal_basis: text("legal_basis", w.legal_basis)?,
        purpose: enumeration("purpose", w.purpose)?,
        institution_id: optional_id("institution_id", w.institution_id)?,
        destruction_site_id: optional_id("destruction_site_id", w.destruction_site_id)?,
        quantities: type_quantities_from_wire("quantities", w.quantities)?,
        title_passes_date: optional_date("title_passes_date", &w.title_passes_date)?,
    })
}

fn lot_count_from_wire(w: wire::LotCount) -> Result<LotCount> {
    Ok(LotCount {
        lot_id: id("lot_id", w.lot_id)?,
        counted: quantity("counted", w.counted)?,
    })
}

fn seal_inspection_from_wire(w: wire::SealInspection) -> Result<SealInspection> {
    Ok(SealInspection {
        seal_id: id("seal_id", w.seal_id)?,
        check: enumeration("check", w.check)?,
    })
}

fn inventory_verified_from_wire(w: wire::InventoryVerified) -> Result<InventoryVerified> {
    Ok(InventoryVerified {
        site_id: id("site_id", w.site_id)?,
        date: date("date", &w.date)?,
        scope: enumeration("scope", w.scope)?,
        counts: repeated("counts", w.counts, REPEATED_ITEMS_MAX, lot_count_from_wire)?,
        seal_checks: repeated(
            "seal_checks",
            w.seal_checks,
            REPEATED_ITEMS_MAX,
            seal_inspection_from_wire,
        )?,
        inspectors: texts_from_wire("inspectors", w.inspectors)?,
    })
}

fn field_change_from_wire(w: wire::FieldChange) -> Result<FieldChange> {
    Ok(FieldChange {
        field: id("field", w.field)?,
        old_value: text("old_value", w.old_value)?,
        new_value: text("new_value", w.new_value)?,
    })
}

fn correction_issued_from_wire(w: wire::CorrectionIssued) -> Result<CorrectionIssued> {
    Ok(CorrectionIssued {
        corrected_event_id: id("corrected_event_id", w.corrected_event_id)?,
        changes: repeated(
            "changes",
            w.changes,
            REPEATED_ITEMS_MAX,
            field_change_from_wire,
        )?,
        reason: text("reason", w.reason)?,
        authority: text("authority", w.authority)?,
        affects_submitted_report: w.affects_submitted_report,
    })
}

// ---------------------------------------------------------------------------------------
// Encoding helpers.

fn optional_text_to_wire(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn date_to_wire(date: Date) -> String {
    date.to_string()
}

fn optional_date_to_wire(date: Option<Date>) -> String {
    date.map(date_to_wire).unwrap_or_default()
}

fn optional_timestamp_to_wire(timestamp: Option<TimestampMs>) -> i64 {
    timestamp.map_or(0, |timestamp| timestamp.0)
}

fn hash_to_wire(hash: &Hash32) -> Bytes {
    Bytes::copy_from_slice(hash.as_bytes())
}

fn optional_hash_to_wire(hash: &Option<Hash32>) -> Bytes {
    hash.as_ref().map(hash_to_wire).unwrap_or_default()
}

fn enum_to_wire<E: WireEnum>(value: E) -> i32 {
    value.to_wire().into()
}

// ---------------------------------------------------------------------------------------
// Encoding, one function per message.

fn event_to_wire(e: &Event) -> wire::Event {
    wire::Event {
        event_id: e.event_id.clone(),
        origin: e.origin.clone(),
        actor: e.actor.clone(),
        emitter_sequence: e.emitter_sequence,
        occurred_at_ms: e.occurred_at.0,
        evidence: e.evidence.iter().map(evidence_to_wire).collect(),
        body: Some(body_to_wire(&e.body)),
    }
}

fn evidence_to_wire(e: &Evidence) -> wire::Evidence {
    wire::Evidence {
        kind: e.kind.clone(),
        sha256: hash_to_wire(&e.sha256),
        description: e.description.clone(),
    }
}

fn body_to_wire(body: &EventBody) -> wire::event::Body {
    use EventBody as B;
    use wire::event::Body as W;
    match body {
        B::RegimeConfigured(e) => W::RegimeConfigured(regime_configured_to_wire(e)),
        B::SiteRegistered(e) => W::SiteRegistered(site_registered_to_wire(e)),
        B::MineTypeRegistered(e) => W::MineTypeRegistered(mine_type_registered_to_wire(e)),
        B::InstitutionAuthorized(e) => W::InstitutionAuthorized(institution_authorized_to_wire(e)),
        B::SignerAuthorized(e) => W::SignerAuthorized(signer_authorized_to_wire(e)),
        B::KeyRevoked(e) => W::KeyRevoked(key_revoked_to_wire(e)),
        B::LotDeclared(e) => W::LotDeclared(lot_declared_to_wire(e)),
        B::LotRetained(e) => W::LotRetained(lot_retained_to_wire(e)),
        B::RetainedMinesConsumed(e) => W::RetainedMinesConsumed(retained_mines_consumed_to_wire(e)),
        B::LotShipped(e) => W::LotShipped(lot_shipped_to_wire(e)),
        B::LotReceived(e) => W::LotReceived(lot_received_to_wire(e)),
        B::LotDestroyed(e) => W::LotDestroyed(lot_destroyed_to_wire(e)),
        B::DestructionCertified(e) => W::DestructionCertified(destruction_certified_to_wire(e)),
        B::LotDesignatedForKoreaDefense(e) => {
            W::LotDesignatedForKoreaDefense(lot_designated_for_korea_defense_to_wire(e))
        }
        B::KoreaDesignationRevoked(e) => {
            W::KoreaDesignationRevoked(korea_designation_revoked_to_wire(e))
        }
        B::LossReported(e) => W::LossReported(loss_reported_to_wire(e)),
        B::TransferRequested(e) => W::TransferRequested(transfer_requested_to_wire(e)),
        B::TransferRefused(e) => W::TransferRefused(transfer_refused_to_wire(e)),
        B::TransferApproved(e) => W::TransferApproved(transfer_approved_to_wire(e)),
        B::InventoryVerified(e) => W::InventoryVerified(inventory_verified_to_wire(e)),
        B::CorrectionIssued(e) => W::CorrectionIssued(correction_issued_to_wire(e)),
    }
}

fn type_quantity_to_wire(e: &TypeQuantity) -> wire::TypeQuantity {
    wire::TypeQuantity {
        type_id: e.type_id.clone(),
        quantity: e.quantity,
    }
}

fn regime_configured_to_wire(e: &RegimeConfigured) -> wire::RegimeConfigured {
    wire::RegimeConfigured {
        state_id: e.state_id.clone(),
        regime: enum_to_wire(e.regime),
        eif_date: date_to_wire(e.eif_date),
        policy_dates: e.policy_dates.iter().copied().map(date_to_wire).collect(),
        article4_deadline: optional_date_to_wire(e.article4_deadline),
        initial_report_due: optional_date_to_wire(e.initial_report_due),
    }
}

fn site_registered_to_wire(e: &SiteRegistered) -> wire::SiteRegistered {
    wire::SiteRegistered {
        site_id: e.site_id.clone(),
        name: e.name.clone(),
        kind: enum_to_wire(e.kind),
        country_code: e.country_code.clone(),
        in_korean_peninsula: e.in_korean_peninsula,
    }
}

fn mine_type_registered_to_wire(e: &MineTypeRegistered) -> wire::MineTypeRegistered {
    wire::MineTypeRegistered {
        type_id: e.type_id.clone(),
        designation: e.designation.clone(),
        category: e.category.clone(),
        activation_modes: e.activation_modes.clone(),
        self_destructing: e.self_destructing,
        counts_as_apm: e.counts_as_apm,
        dimensions_mm: e.dimensions_mm.clone(),
        fusing: e.fusing.clone(),
        explosive_type: e.explosive_type.clone(),
        explosive_mg: e.explosive_mg,
        metal_mg: e.metal_mg,
        photo_sha256: optional_hash_to_wire(&e.photo_sha256),
    }
}

fn institution_authorized_to_wire(e: &InstitutionAuthorized) -> wire::InstitutionAuthorized {
    wire::InstitutionAuthorized {
        institution_id: e.institution_id.clone(),
        site_id: e.site_id.clone(),
        name: e.name.clone(),
        instrument: e.instrument.clone(),
        instrument_date: optional_date_to_wire(e.instrument_date),
        permitted_purposes: e
            .permitted_purposes
            .iter()
            .copied()
            .map(enum_to_wire)
            .collect(),
        ceiling: e.ceiling,
        valid_from: optional_date_to_wire(e.valid_from),
        valid_to: optional_date_to_wire(e.valid_to),
    }
}

fn signer_authorized_to_wire(e: &SignerAuthorized) -> wire::SignerAuthorized {
    wire::SignerAuthorized {
        key_id: e.key_id.clone(),
        public_key: Bytes::copy_from_slice(&e.public_key),
        holder: e.holder.clone(),
        role: enum_to_wire(e.role),
        valid_from_ms: e.valid_from.0,
        site_scope: e.site_scope.clone(),
    }
}

fn key_revoked_to_wire(e: &KeyRevoked) -> wire::KeyRevoked {
    wire::KeyRevoked {
        key_id: e.key_id.clone(),
        revoked_at_ms: e.revoked_at.0,
        reason: enum_to_wire(e.reason),
        suspect_from_ms: optional_timestamp_to_wire(e.suspect_from),
    }
}

fn lot_declared_to_wire(e: &LotDeclared) -> wire::LotDeclared {
    wire::LotDeclared {
        lot_id: e.lot_id.clone(),
        type_id: e.type_id.clone(),
        manufacturer_lot_number: optional_text_to_wire(&e.manufacturer_lot_number),
        lot_number_absent_reason: e.lot_number_absent_reason.clone(),
        quantity: e.quantity,
        site_id: e.site_id.clone(),
        owner: e.owner.clone(),
        custodian: e.custodian.clone(),
        basis: enum_to_wire(e.basis),
        basis_date: optional_date_to_wire(e.basis_date),
        request_id: optional_text_to_wire(&e.request_id),
    }
}

fn lot_retained_to_wire(e: &LotRetained) -> wire::LotRetained {
    wire::LotRetained {
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        institution_id: e.institution_id.clone(),
        purpose: enum_to_wire(e.purpose),
        justification: e.justification.clone(),
        planned_annual_use: e.planned_annual_use,
        next_review_date: optional_date_to_wire(e.next_review_date),
        site_id: e.site_id.clone(),
    }
}

fn retained_mines_consumed_to_wire(e: &RetainedMinesConsumed) -> wire::RetainedMinesConsumed {
    wire::RetainedMinesConsumed {
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        institution_id: e.institution_id.clone(),
        activity: e.activity.clone(),
        date: date_to_wire(e.date),
    }
}

fn lot_shipped_to_wire(e: &LotShipped) -> wire::LotShipped {
    wire::LotShipped {
        shipment_id: e.shipment_id.clone(),
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        from_site_id: e.from_site_id.clone(),
        to_site_id: e.to_site_id.clone(),
        seal_ids: e.seal_ids.clone(),
        date: date_to_wire(e.date),
        request_id: optional_text_to_wire(&e.request_id),
    }
}

fn lot_received_to_wire(e: &LotReceived) -> wire::LotReceived {
    wire::LotReceived {
        shipment_id: e.shipment_id.clone(),
        lot_id: e.lot_id.clone(),
        quantity_counted: e.quantity_counted,
        seal_check: enum_to_wire(e.seal_check),
        date: date_to_wire(e.date),
    }
}

fn witness_to_wire(e: &Witness) -> wire::Witness {
    wire::Witness {
        name: e.name.clone(),
        organisation: e.organisation.clone(),
        role: e.role.clone(),
        independent: e.independent,
    }
}

fn lot_destroyed_to_wire(e: &LotDestroyed) -> wire::LotDestroyed {
    wire::LotDestroyed {
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        site_id: e.site_id.clone(),
        method: enum_to_wire(e.method),
        start_date: date_to_wire(e.start_date),
        end_date: date_to_wire(e.end_date),
        input_count: e.input_count,
        witnesses: e.witnesses.iter().map(witness_to_wire).collect(),
        standards: e.standards.clone(),
        end_product_sha256: e.end_product_sha256.iter().map(hash_to_wire).collect(),
        basis: enum_to_wire(e.basis),
        institution_id: optional_text_to_wire(&e.institution_id),
    }
}

fn destruction_certified_to_wire(e: &DestructionCertified) -> wire::DestructionCertified {
    wire::DestructionCertified {
        certificate_id: e.certificate_id.clone(),
        covered_event_ids: e.covered_event_ids.clone(),
        totals: e.totals.iter().map(type_quantity_to_wire).collect(),
        certifier: e.certifier.clone(),
        date: date_to_wire(e.date),
        findings: e.findings.clone(),
    }
}

fn lot_designated_for_korea_defense_to_wire(
    e: &LotDesignatedForKoreaDefense,
) -> wire::LotDesignatedForKoreaDefense {
    wire::LotDesignatedForKoreaDefense {
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        authority: e.authority.clone(),
        justification: e.justification.clone(),
        review_date: optional_date_to_wire(e.review_date),
        site_id: e.site_id.clone(),
    }
}

fn korea_designation_revoked_to_wire(e: &KoreaDesignationRevoked) -> wire::KoreaDesignationRevoked {
    wire::KoreaDesignationRevoked {
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        authority: e.authority.clone(),
        reason: e.reason.clone(),
        site_id: e.site_id.clone(),
    }
}

fn loss_reported_to_wire(e: &LossReported) -> wire::LossReported {
    wire::LossReported {
        lot_id: e.lot_id.clone(),
        quantity: e.quantity,
        site_id: e.site_id.clone(),
        circumstances: e.circumstances.clone(),
        investigation_reference: e.investigation_reference.clone(),
    }
}

fn transfer_requested_to_wire(e: &TransferRequested) -> wire::TransferRequested {
    wire::TransferRequested {
        request_id: e.request_id.clone(),
        requester: e.requester.clone(),
        direction: enum_to_wire(e.direction),
        items: e.items.iter().map(type_quantity_to_wire).collect(),
        stated_purpose: enum_to_wire(e.stated_purpose),
        counterparty: e.counterparty.clone(),
        destination: e.destination.clone(),
    }
}

fn transfer_refused_to_wire(e: &TransferRefused) -> wire::TransferRefused {
    wire::TransferRefused {
        request_id: e.request_id.clone(),
        authority: e.authority.clone(),
        date: date_to_wire(e.date),
        basis_cited: e.basis_cited.clone(),
        reasoning: e.reasoning.clone(),
    }
}

fn transfer_approved_to_wire(e: &TransferApproved) -> wire::TransferApproved {
    wire::TransferApproved {
        request_id: e.request_id.clone(),
        authority: e.authority.clone(),
        date: date_to_wire(e.date),
        legal_basis: e.legal_basis.clone(),
        purpose: enum_to_wire(e.purpose),
        institution_id: optional_text_to_wire(&e.institution_id),
        destruction_site_id: optional_text_to_wire(&e.destruction_site_id),
        quantities: e.quantities.iter().map(type_quantity_to_wire).collect(),
        title_passes_date: optional_date_to_wire(e.title_passes_date),
    }
}

fn lot_count_to_wire(e: &LotCount) -> wire::LotCount {
    wire::LotCount {
        lot_id: e.lot_id.clone(),
        counted: e.counted,
    }
}

fn seal_inspection_to_wire(e: &SealInspection) -> wire::SealInspection {
    wire::SealInspection {
        seal_id: e.seal_id.clone(),
        check: enum_to_wire(e.check),
    }
}

fn inventory_verified_to_wire(e: &InventoryVerified) -> wire::InventoryVerified {
    wire::InventoryVerified {
        site_id: e.site_id.clone(),
        date: date_to_wire(e.date),
        scope: enum_to_wire(e.scope),
        counts: e.counts.iter().map(lot_count_to_wire).collect(),
        seal_checks: e.seal_checks.iter().map(seal_inspection_to_wire).collect(),
        inspectors: e.inspectors.clone(),
    }
}

fn field_change_to_wire(e: &FieldChange) -> wire::FieldChange {
    wire::FieldChange {
        field: e.field.clone(),
        old_value: e.old_value.clone(),
        new_value: e.new_value.clone(),
    }
}

fn correction_issued_to_wire(e: &CorrectionIssued) -> wire::CorrectionIssued {
    wire::CorrectionIssued {
        corrected_event_id: e.corrected_event_id.clone(),
        changes: e.changes.iter().map(field_change_to_wire).collect(),
        reason: e.reason.clone(),
        authority: e.authority.clone(),
        affects_submitted_report: e.affects_submitted_report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;
    use proptest::sample::{Index, select};

    // -----------------------------------------------------------------------------------
    // Strategies: arbitrary valid domain events of every kind.

    fn arb_id() -> impl Strategy<Value = String> {
        prop_oneof!["[A-Za-z0-9._:/-]{1,24}", "\\PC{1,8}"]
    }

    fn arb_text() -> impl Strategy<Value = String> {
        "\\PC{0,24}"
    }

    fn arb_date() -> impl Strategy<Value = Date> {
        (1i32..=9999, 1u32..=12, 1u32..=31).prop_filter_map("a real date", |(year, month, day)| {
            Date::from_ymd(year, month, day)
        })
    }

    fn arb_timestamp() -> impl Strategy<Value = TimestampMs> {
        (1i64..=TIMESTAMP_MS_MAX).prop_map(TimestampMs)
    }

    fn arb_quantity() -> impl Strategy<Value = u64> {
        prop_oneof![0..=QUANTITY_MAX, Just(0), Just(QUANTITY_MAX)]
    }

    fn arb_hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    fn arb_list<S: Strategy>(item: S) -> impl Strategy<Value = Vec<S::Value>> {
        vec(item, 0..4)
    }

    fn arb_regime() -> impl Strategy<Value = Regime> {
        use Regime::*;
        select(vec![Apmbc, Us2014, Us2020, Us2022])
    }

    fn arb_role() -> impl Strategy<Value = Role> {
        use Role::*;
        select(vec![
            Registrar,
            Depot,
            Demil,
            Certifier,
            ExportControl,
            Inspector,
        ])
    }

    fn arb_purpose() -> impl Strategy<Value = Purpose> {
        use Purpose::*;
        select(vec![
            DetectionTraining,
            ClearanceTraining,
            DestructionTraining,
            Development,
            Destruction,
            OperationalUse,
            Other,
        ])
    }

    fn arb_site_kind() -> impl Strategy<Value = SiteKind> {
        use SiteKind::*;
        select(vec![
            Depot,
            DestructionFacility,
            TrainingInstitution,
            Transit,
        ])
    }

    fn arb_revocation_reason() -> impl Strategy<Value = RevocationReason> {
        select(vec![
            RevocationReason::Retired,
            RevocationReason::Compromised,
        ])
    }

    fn arb_lot_basis() -> impl Strategy<Value = LotBasis> {
        use LotBasis::*;
        select(vec![
            Initial,
            Discovered,
            Seized,
            ImportedUnderApproval,
            Acquired,
        ])
    }

    fn arb_seal_check() -> impl Strategy<Value = SealCheck> {
        select(vec![
            SealCheck::Intact,
            SealCheck::Broken,
            SealCheck::Missing,
        ])
    }

    fn arb_destruction_method() -> impl Strategy<Value = DestructionMethod> {
        use DestructionMethod::*;
        select(vec![
            OpenDetonation,
            OpenBurning,
            ContainedDetonation,
            ColdDetonationChamber,
            Thermal,
            Disassembly,
        ])
    }

    fn arb_destruction_basis() -> impl Strategy<Value = DestructionBasis> {
        use DestructionBasis::*;
        select(vec![Article4, Discovered, RetainedExcess])
    }

    fn arb_transfer_direction() -> impl Strategy<Value = TransferDirection> {
        select(vec![TransferDirection::Export, TransferDirection::Import])
    }

    fn arb_inventory_scope() -> impl Strategy<Value = InventoryScope> {
        select(vec![InventoryScope::Full, InventoryScope::Sample])
    }

    prop_compose! {
        fn arb_evidence()(kind in arb_text(), sha256 in arb_hash(), description in arb_text())
            -> Evidence {
            Evidence { kind, sha256, description }
        }
    }

    prop_compose! {
        fn arb_type_quantity()(type_id in arb_id(), quantity in arb_quantity()) -> TypeQuantity {
            TypeQuantity { type_id, quantity }
        }
    }

    prop_compose! {
        fn arb_regime_configured()(
            state_id in arb_id(),
            regime in arb_regime(),
            eif_date in arb_date(),
            policy_dates in arb_list(arb_date()),
            article4_deadline in option::of(arb_date()),
            initial_report_due in option::of(arb_date()),
        ) -> RegimeConfigured {
            RegimeConfigured {
                state_id, regime, eif_date, policy_dates, article4_deadline, initial_report_due,
            }
        }
    }

    prop_compose! {
        fn arb_site_registered()(
            site_id in arb_id(),
            name in arb_text(),
            kind in arb_site_kind(),
            country_code in arb_id(),
            in_korean_peninsula in any::<bool>(),
        ) -> SiteRegistered {
            SiteRegistered { site_id, name, kind, country_code, in_korean_peninsula }
        }
    }

    prop_compose! {
        fn arb_mine_type_registered()(
            type_id in arb_id(),
            designation in arb_text(),
            category in arb_text(),
            activation_modes in arb_list(arb_text()),
            self_destructing in any::<bool>(),
            counts_as_apm in any::<bool>(),
            dimensions_mm in arb_text(),
            fusing in arb_text(),
            explosive_type in arb_text(),
            explosive_mg in any::<u32>(),
            metal_mg in any::<u32>(),
            photo_sha256 in option::of(arb_hash()),
        ) -> MineTypeRegistered {
            MineTypeRegistered {
                type_id, designation, category, activation_modes, self_destructing,
                counts_as_apm, dimensions_mm, fusing, explosive_type, explosive_mg, metal_mg,
                photo_sha256,
            }
        }
    }

    prop_compose! {
        fn arb_institution_authorized()(
            institution_id in arb_id(),
            site_id in arb_id(),
            name in arb_text(),
            instrument in arb_text(),
            instrument_date in option::of(arb_date()),
            permitted_purposes in arb_list(arb_purpose()),
            ceiling in arb_quantity(),
            valid_from in option::of(arb_date()),
            valid_to in option::of(arb_date()),
        ) -> InstitutionAuthorized {
            InstitutionAuthorized {
                institution_id, site_id, name, instrument, instrument_date, permitted_purposes,
                ceiling, valid_from, valid_to,
            }
        }
    }

    prop_compose! {
        fn arb_signer_authorized()(
            key_id in arb_id(),
            public_key in any::<[u8; 32]>(),
            holder in arb_text(),
            role in arb_role(),
            valid_from in arb_timestamp(),
            site_scope in arb_list(arb_id()),
        ) -> SignerAuthorized {
            SignerAuthorized { key_id, public_key, holder, role, valid_from, site_scope }
        }
    }

    prop_compose! {
        fn arb_key_revoked()(
            key_id in arb_id(),
            revoked_at in arb_timestamp(),
            reason in arb_revocation_reason(),
            suspect_from in option::of(arb_timestamp()),
        ) -> KeyRevoked {
            KeyRevoked { key_id, revoked_at, reason, suspect_from }
        }
    }

    prop_compose! {
        fn arb_lot_declared()(
            lot_id in arb_id(),
            type_id in arb_id(),
            manufacturer_lot_number in option::of(arb_id()),
            lot_number_absent_reason in arb_text(),
            quantity in arb_quantity(),
            site_id in arb_id(),
            owner in arb_text(),
            custodian in arb_text(),
            basis in arb_lot_basis(),
            basis_date in option::of(arb_date()),
            request_id in option::of(arb_id()),
        ) -> LotDeclared {
            LotDeclared {
                lot_id, type_id, manufacturer_lot_number, lot_number_absent_reason, quantity,
                site_id, owner, custodian, basis, basis_date, request_id,
            }
        }
    }

    prop_compose! {
        fn arb_lot_retained()(
            lot_id in arb_id(),
            quantity in arb_quantity(),
            institution_id in arb_id(),
            purpose in arb_purpose(),
            justification in arb_text(),
            planned_annual_use in arb_quantity(),
            next_review_date in option::of(arb_date()),
            site_id in arb_id(),
        ) -> LotRetained {
            LotRetained {
                lot_id, quantity, institution_id, purpose, justification, planned_annual_use,
                next_review_date, site_id,
            }
        }
    }

    prop_compose! {
        fn arb_retained_mines_consumed()(
            lot_id in arb_id(),
            quantity in arb_quantity(),
            institution_id in arb_id(),
            activity in arb_text(),
            date in arb_date(),
        ) -> RetainedMinesConsumed {
            RetainedMinesConsumed { lot_id, quantity, institution_id, activity, date }
        }
    }

    prop_compose! {
        fn arb_lot_shipped()(
            shipment_id in arb_id(),
            lot_id in arb_id(),
            quantity in arb_quantity(),
            from_site_id in arb_id(),
            to_site_id in arb_id(),
            seal_ids in arb_list(arb_id()),
            date in arb_date(),
            request_id in option::of(arb_id()),
        ) -> LotShipped {
            LotShipped {
                shipment_id, lot_id, quantity, from_site_id, to_site_id, seal_ids, date,
                request_id,
            }
        }
    }

    prop_compose! {
        fn arb_lot_received()(
            shipment_id in arb_id(),
            lot_id in arb_id(),
            quantity_counted in arb_quantity(),
            seal_check in arb_seal_check(),
            date in arb_date(),
        ) -> LotReceived {
            LotReceived { shipment_id, lot_id, quantity_counted, seal_check, date }
        }
    }

    prop_compose! {
        fn arb_witness()(
            name in arb_text(),
            organisation in arb_text(),
            role in arb_text(),
            independent in any::<bool>(),
        ) -> Witness {
            Witness { name, organisation, role, independent }
        }
    }

    prop_compose! {
        fn arb_lot_destroyed()(
            lot_id in arb_id(),
            quantity in arb_quantity(),
            site_id in arb_id(),
            method in arb_destruction_method(),
            start_date in arb_date(),
            end_date in arb_date(),
            input_count in arb_quantity(),
            witnesses in arb_list(arb_witness()),
            standards in arb_list(arb_text()),
            end_product_sha256 in arb_list(arb_hash()),
            basis in arb_destruction_basis(),
            institution_id in option::of(arb_id()),
        ) -> LotDestroyed {
            LotDestroyed {
                lot_id, quantity, site_id, method, start_date, end_date, input_count, witnesses,
                standards, end_product_sha256, basis, institution_id,
            }
        }
    }

    prop_compose! {
        fn arb_destruction_certified()(
            certificate_id in arb_id(),
            covered_event_ids in arb_list(arb_id()),
            totals in arb_list(arb_type_quantity()),
            certifier in arb_text(),
            date in arb_date(),
            findings in arb_text(),
        ) -> DestructionCertified {
            DestructionCertified { certificate_id, covered_event_ids, totals, certifier, date, findings }
        }
    }

    prop_compose! {
        fn arb_lot_designated_for_korea_defense()(
            lot_id in arb_id(),
            quantity in arb_quantity(),
            authority in arb_text(),
            justification in arb_text(),
            review_date in option::of(arb_date()),
            site_id in arb_id(),
        ) -> LotDesignatedForKoreaDefense {
            LotDesignatedForKoreaDefense {
                lot_id, quantity, authority, justification, review_date, site_id,
            }
        }
    }

    prop_compose! {
        fn arb_korea_designation_revoked()(
            lot_id in arb_id(),
            quantity in arb_quantity(),
            authority in arb_text(),
            reason in arb_text(),
            site_id in arb_id(),
        ) -> KoreaDesignationRevoked {
            KoreaDesignationRevoked { lot_id, quantity, authority, reason, site_id }
        }
    }

    prop_compose! {
        fn arb_loss_reported()(
            lot_id in arb_id(),
            quantity in arb_quantity(),
            site_id in arb_id(),
            circumstances in arb_text(),
            investigation_reference in arb_text(),
        ) -> LossReported {
            LossReported { lot_id, quantity, site_id, circumstances, investigation_reference }
        }
    }

    prop_compose! {
        fn arb_transfer_requested()(
            request_id in arb_id(),
            requester in arb_text(),
            direction in arb_transfer_direction(),
            items in arb_list(arb_type_quantity()),
            stated_purpose in arb_purpose(),
            counterparty in arb_text(),
            destination in arb_text(),
        ) -> TransferRequested {
            TransferRequested {
                request_id, requester, direction, items, stated_purpose, counterparty, destination,
            }
        }
    }

    prop_compose! {
        fn arb_transfer_refused()(
            request_id in arb_id(),
            authority in arb_text(),
            date in arb_date(),
            basis_cited in arb_text(),
            reasoning in arb_text(),
        ) -> TransferRefused {
            TransferRefused { request_id, authority, date, basis_cited, reasoning }
        }
    }

    prop_compose! {
        fn arb_transfer_approved()(
            request_id in arb_id(),
            authority in arb_text(),
            date in arb_date(),
            legal_basis in arb_text(),
            purpose in arb_purpose(),
            institution_id in option::of(arb_id()),
            destruction_site_id in option::of(arb_id()),
            quantities in arb_list(arb_type_quantity()),
            title_passes_date in option::of(arb_date()),
        ) -> TransferApproved {
            TransferApproved {
                request_id, authority, date, legal_basis, purpose, institution_id,
                destruction_site_id, quantities, title_passes_date,
            }
        }
    }

    prop_compose! {
        fn arb_inventory_verified()(
            site_id in arb_id(),
            date in arb_date(),
            scope in arb_inventory_scope(),
            counts in arb_list((arb_id(), arb_quantity())
                .prop_map(|(lot_id, counted)| LotCount { lot_id, counted })),
            seal_checks in arb_list((arb_id(), arb_seal_check())
                .prop_map(|(seal_id, check)| SealInspection { seal_id, check })),
            inspectors in arb_list(arb_text()),
        ) -> InventoryVerified {
            InventoryVerified { site_id, date, scope, counts, seal_checks, inspectors }
        }
    }

    prop_compose! {
        fn arb_correction_issued()(
            corrected_event_id in arb_id(),
            changes in arb_list((arb_id(), arb_text(), arb_text())
                .prop_map(|(field, old_value, new_value)| FieldChange { field, old_value, new_value })),
            reason in arb_text(),
            authority in arb_text(),
            affects_submitted_report in any::<bool>(),
        ) -> CorrectionIssued {
            CorrectionIssued { corrected_event_id, changes, reason, authority, affects_submitted_report }
        }
    }

    fn arb_body() -> impl Strategy<Value = EventBody> {
        use EventBody as B;
        prop_oneof![
            arb_regime_configured().prop_map(B::RegimeConfigured),
            arb_site_registered().prop_map(B::SiteRegistered),
            arb_mine_type_registered().prop_map(B::MineTypeRegistered),
            arb_institution_authorized().prop_map(B::InstitutionAuthorized),
            arb_signer_authorized().prop_map(B::SignerAuthorized),
            arb_key_revoked().prop_map(B::KeyRevoked),
            arb_lot_declared().prop_map(B::LotDeclared),
            arb_lot_retained().prop_map(B::LotRetained),
            arb_retained_mines_consumed().prop_map(B::RetainedMinesConsumed),
            arb_lot_shipped().prop_map(B::LotShipped),
            arb_lot_received().prop_map(B::LotReceived),
            arb_lot_destroyed().prop_map(B::LotDestroyed),
            arb_destruction_certified().prop_map(B::DestructionCertified),
            arb_lot_designated_for_korea_defense().prop_map(B::LotDesignatedForKoreaDefense),
            arb_korea_designation_revoked().prop_map(B::KoreaDesignationRevoked),
            arb_loss_reported().prop_map(B::LossReported),
            arb_transfer_requested().prop_map(B::TransferRequested),
            arb_transfer_refused().prop_map(B::TransferRefused),
            arb_transfer_approved().prop_map(B::TransferApproved),
            arb_inventory_verified().prop_map(B::InventoryVerified),
            arb_correction_issued().prop_map(B::CorrectionIssued),
        ]
    }

    prop_compose! {
        fn arb_event()(
            event_id in arb_id(),
            origin in arb_id(),
            actor in arb_id(),
            emitter_sequence in any::<u64>(),
            occurred_at in arb_timestamp(),
            evidence in arb_list(arb_evidence()),
            body in arb_body(),
        ) -> Event {
            Event { event_id, origin, actor, emitter_sequence, occurred_at, evidence, body }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn every_valid_event_round_trips(event in arb_event()) {
            prop_assert_eq!(decode_event(&encode_event(&event)), Ok(event));
        }

        #[test]
        fn garbage_never_panics_and_what_decodes_round_trips(bytes in vec(any::<u8>(), 0..512)) {
            if let Ok(event) = decode_event(&bytes) {
                prop_assert_eq!(decode_event(&encode_event(&event)), Ok(event));
            }
        }

        #[test]
        fn corrupted_events_never_panic(
            event in arb_event(),
            position in any::<Index>(),
            byte in any::<u8>(),
            cut in any::<Index>(),
        ) {
            let mut bytes = encode_event(&event);
            let at = position.index(bytes.len());
            bytes[at] = byte;
            if let Ok(event) = decode_event(&bytes) {
                prop_assert_eq!(decode_event(&encode_event(&event)), Ok(event));
            }
            let _ = decode_event(&bytes[..cut.index(bytes.len())]);
        }
    }

    // -----------------------------------------------------------------------------------
    // Validation failures, one class per test, each naming the offending field.

    fn sample_lot_declared() -> LotDeclared {
        LotDeclared {
            lot_id: "FI-LOT-0001".into(),
            type_id: "APERS-1".into(),
            manufacturer_lot_number: Some("M-77-12".into()),
            lot_number_absent_reason: String::new(),
            quantity: 1200,
            site_id: "FI-DEPOT-1".into(),
            owner: "Finnish Defence Forces".into(),
            custodian: "Depot 1".into(),
            basis: LotBasis::Seized,
            basis_date: Date::from_ymd(2012, 6, 1),
            request_id: None,
        }
    }

    fn sample_lot_destroyed() -> LotDestroyed {
        LotDestroyed {
            lot_id: "FI-LOT-0001".into(),
            quantity: 1200,
            site_id: "FI-DEMIL-1".into(),
            method: DestructionMethod::OpenDetonation,
            start_date: Date::from_ymd(2015, 8, 10).unwrap_or(Date::from_days_since_epoch(0)),
            end_date: Date::from_ymd(2015, 8, 14).unwrap_or(Date::from_days_since_epoch(0)),
            input_count: 1200,
            witnesses: vec![witness("A"), witness("B"), witness("C")],
            standards: vec!["IMAS 11.20".into()],
            end_product_sha256: vec![Hash32::digest(b"scrap photo")],
            basis: DestructionBasis::Article4,
            institution_id: None,
        }
    }

    fn witness(name: &str) -> Witness {
        Witness {
            name: name.into(),
            organisation: "Ministry of Defence".into(),
            role: "observer".into(),
            independent: false,
        }
    }

    fn sample_event(body: EventBody) -> Event {
        Event {
            event_id: "evt-1".into(),
            origin: "stockpile.example/fi".into(),
            actor: "depot-service-1".into(),
            emitter_sequence: 7,
            occurred_at: TimestampMs(1_439_632_800_000),
            evidence: vec![Evidence {
                kind: "photo".into(),
                sha256: Hash32::digest(b"photo"),
                description: "pallet".into(),
            }],
            body,
        }
    }

    /// The wire form of a valid event, to break one field of.
    fn wire_event(body: EventBody) -> wire::Event {
        event_to_wire(&sample_event(body))
    }

    fn wire_lot_declared(edit: impl FnOnce(&mut wire::LotDeclared)) -> wire::Event {
        let mut event = wire_event(EventBody::LotDeclared(sample_lot_declared()));
        if let Some(wire::event::Body::LotDeclared(body)) = &mut event.body {
            edit(body);
        }
        event
    }

    fn wire_lot_destroyed(edit: impl FnOnce(&mut wire::LotDestroyed)) -> wire::Event {
        let mut event = wire_event(EventBody::LotDestroyed(sample_lot_destroyed()));
        if let Some(wire::event::Body::LotDestroyed(body)) = &mut event.body {
            edit(body);
        }
        event
    }

    fn decode_wire(event: &wire::Event) -> std::result::Result<Event, EventDecodeError> {
        decode_event(&event.encode_to_vec())
    }

    /// Decoding `event` fails at `field`, with a problem mentioning `problem`.
    #[track_caller]
    fn check_invalid(event: wire::Event, field: &str, problem: &str) {
        match decode_wire(&event) {
            Err(EventDecodeError::Invalid {
                field: actual_field,
                problem: actual_problem,
            }) => {
                assert_eq!(actual_field, field);
                assert!(
                    actual_problem.contains(problem),
                    "problem {actual_problem:?} should mention {problem:?}"
                );
            }
            other => panic!("expected {field} to be invalid, got {other:?}"),
        }
    }

    #[track_caller]
    fn check_valid(event: wire::Event) -> Event {
        match decode_wire(&event) {
            Ok(decoded) => decoded,
            Err(error) => panic!("expected a valid event, got: {error}"),
        }
    }

    #[test]
    fn samples_are_valid() {
        check_valid(wire_lot_declared(|_| {}));
        check_valid(wire_lot_destroyed(|_| {}));
    }

    #[test]
    fn bad_dates_are_refused() {
        let event = wire_lot_declared(|body| body.basis_date = "2012-13-01".into());
        assert_eq!(
            decode_wire(&event).map_err(|error| error.to_string()),
            Err(
                "lot_declared.basis_date: invalid date \"2012-13-01\": expected YYYY-MM-DD \
                 with a real month and day"
                    .to_owned()
            )
        );
        check_invalid(
            wire_lot_destroyed(|body| body.start_date = String::new()),
            "lot_destroyed.start_date",
            "required, but empty",
        );
        check_invalid(
            wire_lot_destroyed(|body| body.end_date = "15/08/2015".into()),
            "lot_destroyed.end_date",
            "invalid date",
        );
        let mut event = wire_event(EventBody::RegimeConfigured(RegimeConfigured {
            state_id: "FI".into(),
            regime: Regime::Apmbc,
            eif_date: Date::from_days_since_epoch(15_522),
            policy_dates: Vec::new(),
            article4_deadline: None,
            initial_report_due: None,
        }));
        if let Some(wire::event::Body::RegimeConfigured(body)) = &mut event.body {
            body.policy_dates = vec!["2014-06-27".into(), "2014-02-30".into()];
        }
        check_invalid(event, "regime_configured.policy_dates[1]", "2014-02-30");
    }

    #[test]
    fn absent_optional_dates_decode_as_none() {
        let event = check_valid(wire_lot_declared(|body| body.basis_date = String::new()));
        let EventBody::LotDeclared(body) = event.body else {
            panic!("expected a lot declaration");
        };
        assert_eq!(body.basis_date, None);
    }

    #[test]
    fn unspecified_and_unknown_enums_are_refused() {
        check_invalid(
            wire_lot_declared(|body| body.basis = 0),
            "lot_declared.basis",
            "unspecified",
        );
        check_invalid(
            wire_lot_destroyed(|body| body.method = 99),
            "lot_destroyed.method",
            "unknown value 99",
        );
        check_invalid(
            wire_lot_destroyed(|body| body.basis = -1),
            "lot_destroyed.basis",
            "unknown value -1",
        );
        let mut event = wire_event(EventBody::InstitutionAuthorized(InstitutionAuthorized {
            institution_id: "FI-EOD-SCHOOL".into(),
            site_id: "FI-SCHOOL-1".into(),
            name: "EOD school".into(),
            instrument: "Decree 12/2012".into(),
            instrument_date: None,
            permitted_purposes: vec![Purpose::DetectionTraining],
            ceiling: 500,
            valid_from: None,
            valid_to: None,
        }));
        if let Some(wire::event::Body::InstitutionAuthorized(body)) = &mut event.body {
            body.permitted_purposes.push(0);
        }
        check_invalid(
            event,
            "institution_authorized.permitted_purposes[1]",
            "unspecified",
        );
    }

    #[test]
    fn a_missing_body_is_refused() {
        let mut event = wire_lot_declared(|_| {});
        event.body = None;
        check_invalid(event, "body", "missing");
    }

    #[test]
    fn empty_required_ids_are_refused() {
        let mut event = wire_lot_declared(|_| {});
        event.event_id = String::new();
        check_invalid(event, "event_id", "required, but empty");
        check_invalid(
            wire_lot_declared(|body| body.site_id = String::new()),
            "lot_declared.site_id",
            "required, but empty",
        );
        let mut event = wire_event(EventBody::LotShipped(LotShipped {
            shipment_id: "SHP-1".into(),
            lot_id: "FI-LOT-0001".into(),
            quantity: 10,
            from_site_id: "FI-DEPOT-1".into(),
            to_site_id: "FI-DEMIL-1".into(),
            seal_ids: vec!["S-1".into()],
            date: Date::from_days_since_epoch(16_000),
            request_id: None,
        }));
        if let Some(wire::event::Body::LotShipped(body)) = &mut event.body {
            body.seal_ids.push(String::new());
        }
        check_invalid(event, "lot_shipped.seal_ids[1]", "required, but empty");
    }

    #[test]
    fn empty_optional_ids_decode_as_none() {
        let event = check_valid(wire_lot_declared(|body| {
            body.manufacturer_lot_number = String::new();
            body.request_id = String::new();
        }));
        let EventBody::LotDeclared(body) = event.body else {
            panic!("expected a lot declaration");
        };
        assert_eq!(
            (body.manufacturer_lot_number, body.request_id),
            (None, None)
        );
    }

    #[test]
    fn oversized_ids_and_texts_are_refused() {
        check_valid(wire_lot_declared(|body| {
            body.lot_id = "x".repeat(ID_BYTES_MAX)
        }));
        check_invalid(
            wire_lot_declared(|body| body.lot_id = "x".repeat(ID_BYTES_MAX + 1)),
            "lot_declared.lot_id",
            "129 bytes long; at most 128",
        );
        check_valid(wire_lot_destroyed(|body| {
            body.witnesses[2].name = "n".repeat(TEXT_BYTES_MAX);
        }));
        check_invalid(
            wire_lot_destroyed(|body| body.witnesses[2].name = "n".repeat(TEXT_BYTES_MAX + 1)),
            "lot_destroyed.witnesses[2].name",
            "4097 bytes long; at most 4096",
        );
        // Limits count bytes, not characters.
        check_invalid(
            wire_lot_declared(|body| body.owner = "ä".repeat(TEXT_BYTES_MAX / 2 + 1)),
            "lot_declared.owner",
            "bytes long",
        );
    }

    #[test]
    fn too_many_items_are_refused() {
        check_valid(wire_lot_destroyed(|body| {
            body.witnesses = vec![witness_to_wire(&witness("W")); WITNESSES_MAX];
        }));
        check_invalid(
            wire_lot_destroyed(|body| {
                body.witnesses = vec![witness_to_wire(&witness("W")); WITNESSES_MAX + 1];
            }),
            "lot_destroyed.witnesses",
            "65 items; at most 64",
        );
        check_invalid(
            wire_lot_destroyed(|body| body.standards = vec![String::new(); REPEATED_ITEMS_MAX + 1]),
            "lot_destroyed.standards",
            "4097 items; at most 4096",
        );
    }

    #[test]
    fn hashes_and_keys_must_be_32_bytes() {
        let mut event = wire_lot_declared(|_| {});
        event.evidence[0].sha256 = Bytes::from(vec![0; 31]);
        check_invalid(event, "evidence[0].sha256", "got 31 bytes");
        check_invalid(
            wire_lot_destroyed(|body| body.end_product_sha256.push(Bytes::from(vec![0; 33]))),
            "lot_destroyed.end_product_sha256[1]",
            "got 33 bytes",
        );
        let mut event = wire_event(EventBody::SignerAuthorized(SignerAuthorized {
            key_id: "depot-1".into(),
            public_key: [7; 32],
            holder: "Depot 1".into(),
            role: Role::Depot,
            valid_from: TimestampMs(1),
            site_scope: Vec::new(),
        }));
        if let Some(wire::event::Body::SignerAuthorized(body)) = &mut event.body {
            body.public_key = Bytes::from(vec![7; 31]);
        }
        check_invalid(
            event,
            "signer_authorized.public_key",
            "Ed25519 public key, got 31",
        );
    }

    #[test]
    fn optional_photo_hash_is_empty_or_32_bytes() {
        let mine_type = MineTypeRegistered {
            type_id: "PMN-2".into(),
            designation: "PMN-2".into(),
            category: "blast".into(),
            activation_modes: vec!["pressure".into()],
            self_destructing: false,
            counts_as_apm: true,
            dimensions_mm: "121x54".into(),
            fusing: "MVD".into(),
            explosive_type: "TG-40".into(),
            explosive_mg: 100_000,
            metal_mg: 5_000,
            photo_sha256: None,
        };
        let event = wire_event(EventBody::MineTypeRegistered(mine_type.clone()));
        assert_eq!(
            check_valid(event).body,
            EventBody::MineTypeRegistered(mine_type.clone())
        );
        let mut event = wire_event(EventBody::MineTypeRegistered(mine_type));
        if let Some(wire::event::Body::MineTypeRegistered(body)) = &mut event.body {
            body.photo_sha256 = Bytes::from(vec![1; 31]);
        }
        check_invalid(event, "mine_type_registered.photo_sha256", "got 31 bytes");
    }

    #[test]
    fn quantities_are_bounded_but_may_be_zero() {
        check_valid(wire_lot_declared(|body| body.quantity = 0));
        check_valid(wire_lot_declared(|body| body.quantity = QUANTITY_MAX));
        check_invalid(
            wire_lot_declared(|body| body.quantity = QUANTITY_MAX + 1),
            "lot_declared.quantity",
            "largest allowed quantity",
        );
    }

    #[test]
    fn timestamps_must_be_positive_and_optional_ones_may_be_zero() {
        let mut event = wire_lot_declared(|_| {});
        event.occurred_at_ms = 0;
        check_invalid(event.clone(), "occurred_at_ms", "positive Unix time");
        // Far beyond year 9999 the calendar arithmetic would overflow: refused here.
        event.occurred_at_ms = TIMESTAMP_MS_MAX + 1;
        check_invalid(event.clone(), "occurred_at_ms", "year 9999");
        event.occurred_at_ms = i64::MAX;
        check_invalid(event, "occurred_at_ms", "year 9999");
        let key_revoked = |suspect_from_ms| {
            let mut event = wire_event(EventBody::KeyRevoked(KeyRevoked {
                key_id: "depot-1".into(),
                revoked_at: TimestampMs(1_500_000_000_000),
                reason: RevocationReason::Compromised,
                suspect_from: None,
            }));
            if let Some(wire::event::Body::KeyRevoked(body)) = &mut event.body {
                body.suspect_from_ms = suspect_from_ms;
            }
            event
        };
        let EventBody::KeyRevoked(body) = check_valid(key_revoked(0)).body else {
            panic!("expected a key revocation");
        };
        assert_eq!(body.suspect_from, None);
        check_invalid(key_revoked(-5), "key_revoked.suspect_from_ms", "got -5");
    }

    #[test]
    fn garbage_bytes_are_malformed() {
        for bytes in [
            &[0xff_u8, 0xff, 0xff][..],
            &[0x0a, 0x05, b'a'],
            &[0x0a, 0x02, 0xc3, 0x28],
        ] {
            assert!(
                matches!(decode_event(bytes), Err(EventDecodeError::Malformed { .. })),
                "{bytes:?} should be malformed"
            );
        }
        // No bytes at all is a well-formed, empty message: its first missing field is named.
        check_invalid(wire::Event::default(), "event_id", "required, but empty");
    }
}
