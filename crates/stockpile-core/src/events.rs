//! The domain event catalogue (shared/domain.md §3.1) as plain Rust types.
//!
//! These are what the state machine folds. `stockpile-proto` decodes the wire bytes into
//! them after checking shapes (ids present, dates real, enums known), so code here can rely
//! on: ids non-empty and within `limits::ID_BYTES_MAX`, quantities within
//! `limits::QUANTITY_MAX`, repeated fields within their limits. Quantities may still be
//! zero: that is a domain rule (hard failure 5), judged by `state`.

use crate::hash::Hash32;
use crate::time::{Date, TimestampMs};
use serde::{Deserialize, Serialize};

/// The header every event carries, plus its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    /// The ledger this event was signed for.
    pub origin: String,
    pub actor: String,
    /// Strictly increasing per signing key.
    pub emitter_sequence: u64,
    pub occurred_at: TimestampMs,
    pub evidence: Vec<Evidence>,
    pub body: EventBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub kind: String,
    pub sha256: Hash32,
    pub description: String,
}

/// One variant per event kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    RegimeConfigured(RegimeConfigured),
    SiteRegistered(SiteRegistered),
    MineTypeRegistered(MineTypeRegistered),
    InstitutionAuthorized(InstitutionAuthorized),
    SignerAuthorized(SignerAuthorized),
    KeyRevoked(KeyRevoked),
    LotDeclared(LotDeclared),
    LotRetained(LotRetained),
    RetainedMinesConsumed(RetainedMinesConsumed),
    LotShipped(LotShipped),
    LotReceived(LotReceived),
    LotDestroyed(LotDestroyed),
    DestructionCertified(DestructionCertified),
    LotDesignatedForKoreaDefense(LotDesignatedForKoreaDefense),
    KoreaDesignationRevoked(KoreaDesignationRevoked),
    LossReported(LossReported),
    TransferRequested(TransferRequested),
    TransferRefused(TransferRefused),
    TransferApproved(TransferApproved),
    InventoryVerified(InventoryVerified),
    CorrectionIssued(CorrectionIssued),
}

/// The kind of an event, without its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    RegimeConfigured,
    SiteRegistered,
    MineTypeRegistered,
    InstitutionAuthorized,
    SignerAuthorized,
    KeyRevoked,
    LotDeclared,
    LotRetained,
    RetainedMinesConsumed,
    LotShipped,
    LotReceived,
    LotDestroyed,
    DestructionCertified,
    LotDesignatedForKoreaDefense,
    KoreaDesignationRevoked,
    LossReported,
    TransferRequested,
    TransferRefused,
    TransferApproved,
    InventoryVerified,
    CorrectionIssued,
}

impl EventKind {
    /// The role that owns events of this kind (hard failure 3). A correction belongs to
    /// the role of the event it corrects, so it has no fixed owner.
    pub fn owner(self) -> Option<Role> {
        use EventKind::*;
        Some(match self {
            RegimeConfigured
            | SiteRegistered
            | MineTypeRegistered
            | InstitutionAuthorized
            | SignerAuthorized
            | KeyRevoked
            | LotDesignatedForKoreaDefense
            | KoreaDesignationRevoked => Role::Registrar,
            LotDeclared
            | LotRetained
            | RetainedMinesConsumed
            | LotShipped
            | LotReceived
            | LossReported => Role::Depot,
            LotDestroyed => Role::Demil,
            DestructionCertified => Role::Certifier,
            TransferRequested | TransferRefused | TransferApproved => Role::ExportControl,
            InventoryVerified => Role::Inspector,
            CorrectionIssued => return None,
        })
    }

    /// The name used in the domain brief, e.g. `LotDestroyed`.
    pub fn name(self) -> &'static str {
        use EventKind::*;
        match self {
            RegimeConfigured => "RegimeConfigured",
            SiteRegistered => "SiteRegistered",
            MineTypeRegistered => "MineTypeRegistered",
            InstitutionAuthorized => "InstitutionAuthorized",
            SignerAuthorized => "SignerAuthorized",
            KeyRevoked => "KeyRevoked",
            LotDeclared => "LotDeclared",
            LotRetained => "LotRetained",
            RetainedMinesConsumed => "RetainedMinesConsumed",
            LotShipped => "LotShipped",
            LotReceived => "LotReceived",
            LotDestroyed => "LotDestroyed",
            DestructionCertified => "DestructionCertified",
            LotDesignatedForKoreaDefense => "LotDesignatedForKoreaDefense",
            KoreaDesignationRevoked => "KoreaDesignationRevoked",
            LossReported => "LossReported",
            TransferRequested => "TransferRequested",
            TransferRefused => "TransferRefused",
            TransferApproved => "TransferApproved",
            InventoryVerified => "InventoryVerified",
            CorrectionIssued => "CorrectionIssued",
        }
    }
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        use EventBody as B;
        use EventKind as K;
        match self {
            B::RegimeConfigured(_) => K::RegimeConfigured,
            B::SiteRegistered(_) => K::SiteRegistered,
            B::MineTypeRegistered(_) => K::MineTypeRegistered,
            B::InstitutionAuthorized(_) => K::InstitutionAuthorized,
            B::SignerAuthorized(_) => K::SignerAuthorized,
            B::KeyRevoked(_) => K::KeyRevoked,
            B::LotDeclared(_) => K::LotDeclared,
            B::LotRetained(_) => K::LotRetained,
            B::RetainedMinesConsumed(_) => K::RetainedMinesConsumed,
            B::LotShipped(_) => K::LotShipped,
            B::LotReceived(_) => K::LotReceived,
            B::LotDestroyed(_) => K::LotDestroyed,
            B::DestructionCertified(_) => K::DestructionCertified,
            B::LotDesignatedForKoreaDefense(_) => K::LotDesignatedForKoreaDefense,
            B::KoreaDesignationRevoked(_) => K::KoreaDesignationRevoked,
            B::LossReported(_) => K::LossReported,
            B::TransferRequested(_) => K::TransferRequested,
            B::TransferRefused(_) => K::TransferRefused,
            B::TransferApproved(_) => K::TransferApproved,
            B::InventoryVerified(_) => K::InventoryVerified,
            B::CorrectionIssued(_) => K::CorrectionIssued,
        }
    }

    /// The site an event acts at, for keys whose authorisation is scoped to sites.
    /// Events that span two sites (shipments) name both.
    pub fn sites(&self) -> Vec<&str> {
        use EventBody as B;
        match self {
            B::SiteRegistered(e) => vec![&e.site_id],
            B::InstitutionAuthorized(e) => vec![&e.site_id],
            B::LotDeclared(e) => vec![&e.site_id],
            B::LotRetained(e) => vec![&e.site_id],
            B::LotShipped(e) => vec![&e.from_site_id, &e.to_site_id],
            B::LotDestroyed(e) => vec![&e.site_id],
            B::LotDesignatedForKoreaDefense(e) => vec![&e.site_id],
            B::KoreaDesignationRevoked(e) => vec![&e.site_id],
            B::LossReported(e) => vec![&e.site_id],
            B::InventoryVerified(e) => vec![&e.site_id],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Regime {
    Apmbc,
    Us2014,
    Us2020,
    Us2022,
}

impl Regime {
    pub fn is_us(self) -> bool {
        !matches!(self, Regime::Apmbc)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Registrar,
    Depot,
    Demil,
    Certifier,
    ExportControl,
    Inspector,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    DetectionTraining,
    ClearanceTraining,
    DestructionTraining,
    Development,
    Destruction,
    OperationalUse,
    Other,
}

impl Purpose {
    /// Article 3(1): development of, and training in, detection, clearance or
    /// destruction techniques.
    pub fn is_article_3_1(self) -> bool {
        matches!(
            self,
            Purpose::DetectionTraining
                | Purpose::ClearanceTraining
                | Purpose::DestructionTraining
                | Purpose::Development
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeQuantity {
    pub type_id: String,
    pub quantity: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegimeConfigured {
    pub state_id: String,
    pub regime: Regime,
    pub eif_date: Date,
    pub policy_dates: Vec<Date>,
    pub article4_deadline: Option<Date>,
    pub initial_report_due: Option<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteKind {
    Depot,
    DestructionFacility,
    TrainingInstitution,
    Transit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRegistered {
    pub site_id: String,
    pub name: String,
    pub kind: SiteKind,
    pub country_code: String,
    pub in_korean_peninsula: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MineTypeRegistered {
    pub type_id: String,
    pub designation: String,
    pub category: String,
    pub activation_modes: Vec<String>,
    pub self_destructing: bool,
    pub counts_as_apm: bool,
    pub dimensions_mm: String,
    pub fusing: String,
    pub explosive_type: String,
    pub explosive_mg: u32,
    pub metal_mg: u32,
    pub photo_sha256: Option<Hash32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionAuthorized {
    pub institution_id: String,
    pub site_id: String,
    pub name: String,
    pub instrument: String,
    pub instrument_date: Option<Date>,
    pub permitted_purposes: Vec<Purpose>,
    pub ceiling: u64,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerAuthorized {
    pub key_id: String,
    pub public_key: [u8; 32],
    pub holder: String,
    pub role: Role,
    pub valid_from: TimestampMs,
    /// Empty means every site.
    pub site_scope: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    Retired,
    Compromised,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRevoked {
    pub key_id: String,
    pub revoked_at: TimestampMs,
    pub reason: RevocationReason,
    pub suspect_from: Option<TimestampMs>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LotBasis {
    Initial,
    Discovered,
    Seized,
    ImportedUnderApproval,
    Acquired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotDeclared {
    pub lot_id: String,
    pub type_id: String,
    /// `None` when the number is not known; then `lot_number_absent_reason` says why.
    pub manufacturer_lot_number: Option<String>,
    pub lot_number_absent_reason: String,
    pub quantity: u64,
    pub site_id: String,
    pub owner: String,
    pub custodian: String,
    pub basis: LotBasis,
    pub basis_date: Option<Date>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotRetained {
    pub lot_id: String,
    pub quantity: u64,
    pub institution_id: String,
    pub purpose: Purpose,
    pub justification: String,
    pub planned_annual_use: u64,
    pub next_review_date: Option<Date>,
    pub site_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedMinesConsumed {
    pub lot_id: String,
    pub quantity: u64,
    pub institution_id: String,
    pub activity: String,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotShipped {
    pub shipment_id: String,
    pub lot_id: String,
    pub quantity: u64,
    pub from_site_id: String,
    pub to_site_id: String,
    pub seal_ids: Vec<String>,
    pub date: Date,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealCheck {
    Intact,
    Broken,
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotReceived {
    pub shipment_id: String,
    pub lot_id: String,
    pub quantity_counted: u64,
    pub seal_check: SealCheck,
    pub date: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestructionMethod {
    OpenDetonation,
    OpenBurning,
    ContainedDetonation,
    ColdDetonationChamber,
    Thermal,
    Disassembly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestructionBasis {
    Article4,
    Discovered,
    RetainedExcess,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    pub name: String,
    pub organisation: String,
    pub role: String,
    pub independent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotDestroyed {
    pub lot_id: String,
    pub quantity: u64,
    pub site_id: String,
    pub method: DestructionMethod,
    pub start_date: Date,
    pub end_date: Date,
    pub input_count: u64,
    pub witnesses: Vec<Witness>,
    pub standards: Vec<String>,
    pub end_product_sha256: Vec<Hash32>,
    pub basis: DestructionBasis,
    /// Set for `RetainedExcess`: whose retained pool the units come from.
    pub institution_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestructionCertified {
    pub certificate_id: String,
    pub covered_event_ids: Vec<String>,
    pub totals: Vec<TypeQuantity>,
    pub certifier: String,
    pub date: Date,
    pub findings: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotDesignatedForKoreaDefense {
    pub lot_id: String,
    pub quantity: u64,
    pub authority: String,
    pub justification: String,
    pub review_date: Option<Date>,
    pub site_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KoreaDesignationRevoked {
    pub lot_id: String,
    pub quantity: u64,
    pub authority: String,
    pub reason: String,
    pub site_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossReported {
    pub lot_id: String,
    pub quantity: u64,
    pub site_id: String,
    pub circumstances: String,
    pub investigation_reference: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    Export,
    Import,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequested {
    pub request_id: String,
    pub requester: String,
    pub direction: TransferDirection,
    pub items: Vec<TypeQuantity>,
    pub stated_purpose: Purpose,
    pub counterparty: String,
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRefused {
    pub request_id: String,
    pub authority: String,
    pub date: Date,
    pub basis_cited: String,
    pub reasoning: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferApproved {
    pub request_id: String,
    pub authority: String,
    pub date: Date,
    pub legal_basis: String,
    pub purpose: Purpose,
    pub institution_id: Option<String>,
    pub destruction_site_id: Option<String>,
    pub quantities: Vec<TypeQuantity>,
    pub title_passes_date: Option<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryScope {
    Full,
    Sample,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotCount {
    pub lot_id: String,
    pub counted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealInspection {
    pub seal_id: String,
    pub check: SealCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryVerified {
    pub site_id: String,
    pub date: Date,
    pub scope: InventoryScope,
    pub counts: Vec<LotCount>,
    pub seal_checks: Vec<SealInspection>,
    pub inspectors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old_value: String,
    pub new_value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionIssued {
    pub corrected_event_id: String,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub authority: String,
    pub affects_submitted_report: bool,
}
