//! The Article 7 report for a calendar year (domain.md §1.1, §5): a cover page and Forms
//! B, D, F, G and H, computed from a fold at the ledger position of 31 December of that
//! year, and rendered as JSON, CSV and HTML.
//!
//! # The position
//! The report reflects the last entry recorded on or before 31 December. The caller
//! folds up to it ([`ViewFold::apply_through`] with [`year_end`] stops there) and hands
//! the fold in; a fold past that date is refused ([`Article7Error::BeyondYearEnd`]).
//! Stocks (Forms B, D §1) are as of that position; flows (Form D §2–3 and actual use,
//! the "in period" columns of F and G) are those dated within the year; Form G is
//! cumulative since EIF, as the Convention asks.
//!
//! # What each form takes
//! - **B**: per lot of an APM type, stockpiled + designated + in-transit units (all held
//!   units but the retained ones, which are on Form D, and units missing on receipt,
//!   mentioned in the supplementary text). Lots declared as *discovered* are listed in
//!   their own part (the 2007 part), with the date and place of discovery.
//! - **D**: §1 the retained units by institution × type × lot; §2 and §3 the movements
//!   under approved transfers dated in the year — §2 for approvals with an Article 3(1)
//!   purpose, §3 for approvals for destruction (Article 3(2), or a U.S. destruction
//!   basis); the optional part: purposes from `LotRetained` for what is still retained,
//!   and actual use from `RetainedMinesConsumed` dated in the year.
//! - **F**: the programme's status and every site where APMs were destroyed since EIF,
//!   with the methods and the standards cited in `LotDestroyed`. The events cite
//!   standards without saying which are safety and which environmental, so they are
//!   listed together.
//! - **G**: `LotDestroyed` ending on or after EIF, by type and lot, after corrections;
//!   discovered stock separately. Consumption of retained mines is on Form D.
//! - **H**: `MineTypeRegistered` for every APM type any lot was declared with.
//!
//! Types that do not count as APMs (`counts_as_apm` false: fuzes, anti-vehicle mines)
//! are left off every form, as they are left out of the Convention's totals.
//!
//! The form titles and column names are reconstructed (domain.md §1.1): check them
//! against the official UNODA template before relying on the labels.
//!
//! # Changed or unchanged
//! Given the previous year's report, each form is marked unchanged when its content is
//! equal to last year's, with the year it was last reported changed; otherwise changed.
//! A form with nothing to report is not applicable; Forms A, C, E, I and J are outside
//! the ledger.

use crate::fold::{ConsumptionRecord, RetentionRecord, ViewFold};
use crate::render::{csv_record, html_escape};
use crate::views::{AsOf, Period, Pools, apm_destructions};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use stockpile_core::events::{
    DestructionMethod, LotBasis, Purpose, Regime, SiteKind, TransferDirection, TypeQuantity,
};
use stockpile_core::hash::Hash32;
use stockpile_core::state::Lot;
use stockpile_core::time::Date;

/// Milligrams per gram, for Form H's explosive and metal content.
const MG_PER_GRAM: u32 = 1_000;

/// 31 December of `year`: the date whose ledger position the report reflects.
pub fn year_end(year: i32) -> Option<Date> {
    Date::from_ymd(year, 12, 31)
}

/// What the report needs that the ledger does not hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article7Config {
    /// The State's name as it appears on the cover page.
    pub state_name: String,
    pub contacts: Vec<Contact>,
    pub submission_date: Option<Date>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    pub organisation: String,
    pub role: String,
    pub email: String,
    pub phone: String,
}

/// Why a report cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Article7Error {
    /// No `RegimeConfigured` has been folded: there is no State, EIF or deadline.
    NoRegime,
    /// The year has no 31 December the core can represent.
    YearOutOfRange { year: i32 },
    /// The fold holds entries recorded after 31 December of the year.
    BeyondYearEnd { year: i32, last_recorded: Date },
    /// The previous report given is not for an earlier year.
    PreviousNotEarlier { year: i32, previous_year: i32 },
}

impl fmt::Display for Article7Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Article7Error::NoRegime => f.write_str("no RegimeConfigured in the ledger yet"),
            Article7Error::YearOutOfRange { year } => write!(f, "year {year} is out of range"),
            Article7Error::BeyondYearEnd {
                year,
                last_recorded,
            } => write!(
                f,
                "the fold reaches {last_recorded}, past 31 December {year}: fold only up to the year's end"
            ),
            Article7Error::PreviousNotEarlier {
                year,
                previous_year,
            } => write!(
                f,
                "the previous report is for {previous_year}, not a year before {year}"
            ),
        }
    }
}

impl std::error::Error for Article7Error {}

/// A form's mark on the cover page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FormStatus {
    Changed,
    /// Equal to the previous report's; last changed in `last_reported`.
    Unchanged {
        last_reported: i32,
    },
    /// Nothing to report.
    NotApplicable,
    /// Not computed from the ledger (Forms A, C, E, I, J).
    OutsideLedger,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormMark {
    pub form: String,
    pub title: String,
    #[serde(flatten)]
    pub status: FormStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverPage {
    pub state_id: String,
    pub state_name: String,
    pub regime: Regime,
    /// See [`ViewFold::reporting_eif`].
    pub eif_date: Date,
    pub article4_deadline: Option<Date>,
    pub year: i32,
    pub period_from: Date,
    pub period_to: Date,
    /// The ledger position of 31 December.
    pub as_of: AsOf,
    pub submission_date: Option<Date>,
    pub contacts: Vec<Contact>,
    pub forms: Vec<FormMark>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormBRow {
    pub type_id: String,
    pub designation: String,
    pub lot_id: String,
    pub manufacturer_lot_number: Option<String>,
    /// Stockpiled + designated + in transit.
    pub quantity: u64,
    pub stockpiled: u64,
    pub korea_designated: u64,
    pub in_transit: u64,
    /// Sites holding the lot's units (in-transit units at the site they left).
    pub sites: Vec<String>,
    pub supplementary: String,
}

/// The 2007 part: stockpiles discovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormBDiscoveredRow {
    pub type_id: String,
    pub designation: String,
    pub lot_id: String,
    /// Held now, as in the main part.
    pub quantity: u64,
    pub declared: u64,
    pub discovery_date: Option<Date>,
    pub place_site_id: String,
    pub place_name: String,
    pub destroyed: u64,
    pub supplementary: String,
}

/// Form B: stockpiled anti-personnel mines (Article 7(1)(b)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormB {
    pub rows: Vec<FormBRow>,
    pub totals_by_type: Vec<TypeQuantity>,
    pub total: u64,
    pub discovered: Vec<FormBDiscoveredRow>,
    pub discovered_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDRetainedRow {
    pub institution_id: String,
    pub institution_name: String,
    pub type_id: String,
    pub lot_id: String,
    pub manufacturer_lot_number: Option<String>,
    pub quantity: u64,
    pub supplementary: String,
}

/// A movement under an approved transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDTransferRow {
    pub request_id: String,
    pub legal_basis: String,
    pub purpose: Purpose,
    pub direction: TransferDirection,
    /// The authorised institution (3(1)) or destruction facility (3(2)) named by the
    /// approval, else the receiving site.
    pub recipient: String,
    pub counterparty: String,
    pub type_id: String,
    pub lot_id: String,
    pub quantity: u64,
    pub date: Date,
    /// `None` for a lot declared as imported.
    pub shipment_id: Option<String>,
}

/// The 2005 optional part: intended purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDPurposeRow {
    pub institution_id: String,
    pub type_id: String,
    pub lot_id: String,
    pub purpose: Purpose,
    pub justification: String,
    pub planned_annual_use: u64,
    pub next_review_date: Option<Date>,
    pub retained_on: Date,
    pub units: u64,
}

/// The 2005 optional part: actual use in the year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDUseRow {
    pub institution_id: String,
    pub type_id: String,
    pub activity: String,
    pub units: u64,
}

/// Form D: mines retained or transferred under Article 3 (Article 7(1)(d)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormD {
    pub retained: Vec<FormDRetainedRow>,
    pub retained_total: u64,
    pub transferred_for_training: Vec<FormDTransferRow>,
    pub transferred_for_destruction: Vec<FormDTransferRow>,
    pub purposes: Vec<FormDPurposeRow>,
    pub actual_use: Vec<FormDUseRow>,
    pub consumed_in_period: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgrammeStatus {
    /// Nothing held and nothing ever destroyed.
    NoStockpile,
    NotStarted,
    Ongoing,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormFFacility {
    pub site_id: String,
    pub name: String,
    pub country_code: String,
    pub kind: Option<SiteKind>,
    pub methods: Vec<DestructionMethod>,
    /// Safety and environmental standards cited, together (see the module docs).
    pub standards: Vec<String>,
    pub destructions: u64,
    pub destroyed_total: u64,
    pub destroyed_in_period: u64,
    pub first_start_date: Date,
    pub last_end_date: Date,
}

/// Form F: programmes for destruction (Article 7(1)(f)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormF {
    pub status: ProgrammeStatus,
    /// Held units Article 4 still wants destroyed (stockpiled, designated, in transit).
    pub remaining: u64,
    pub facilities: Vec<FormFFacility>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormGRow {
    pub type_id: String,
    pub designation: String,
    pub lot_id: String,
    pub manufacturer_lot_number: Option<String>,
    /// Destroyed since EIF, after corrections.
    pub quantity: u64,
    pub in_period: u64,
    pub destructions: u64,
    pub first_end_date: Date,
    pub last_end_date: Date,
    /// Units in destructions covered by a certificate.
    pub certified: u64,
    pub supplementary: String,
}

/// The 2007 part: destruction of discovered stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormGDiscoveredRow {
    pub type_id: String,
    pub lot_id: String,
    pub discovery_date: Option<Date>,
    pub place_site_id: String,
    pub quantity: u64,
    pub in_period: u64,
    pub last_end_date: Date,
}

/// Form G: mines destroyed since EIF (Article 7(1)(g)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormG {
    pub rows: Vec<FormGRow>,
    pub totals_by_type: Vec<TypeQuantity>,
    pub total: u64,
    pub in_period_total: u64,
    pub discovered: Vec<FormGDiscoveredRow>,
    pub discovered_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormHRow {
    pub type_id: String,
    pub designation: String,
    pub category: String,
    pub activation_modes: Vec<String>,
    pub self_destructing: bool,
    pub dimensions_mm: String,
    pub fusing: String,
    pub explosive_type: String,
    pub explosive_mg: u32,
    pub metal_mg: u32,
    pub photo_sha256: Option<Hash32>,
}

/// Form H: technical characteristics of every type held (Article 7(1)(h)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormH {
    pub rows: Vec<FormHRow>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article7Report {
    pub cover: CoverPage,
    pub form_b: FormB,
    pub form_d: FormD,
    pub form_f: FormF,
    pub form_g: FormG,
    pub form_h: FormH,
}

/// The forms on the cover page, in order: (letter, title, computed from the ledger).
const FORMS: [(&str, &str, bool); 10] = [
    ("A", "National implementation measures", false),
    ("B", "Stockpiled anti-personnel mines", true),
    ("C", "Location of mined areas", false),
    (
        "D",
        "Anti-personnel mines retained or transferred (Article 3)",
        true,
    ),
    (
        "E",
        "Conversion or decommissioning of production facilities",
        false,
    ),
    (
        "F",
        "Programmes for the destruction of anti-personnel mines",
        true,
    ),
    (
        "G",
        "Anti-personnel mines destroyed since entry into force",
        true,
    ),
    ("H", "Technical characteristics of each type held", true),
    ("I", "Measures to warn the population", false),
    ("J", "Other relevant matters", false),
];

impl CoverPage {
    /// The fields the configuration gives (everything else comes from the ledger).
    fn set_config(&mut self, config: &Article7Config) {
        self.state_name = config.state_name.clone();
        self.submission_date = config.submission_date;
        self.contacts = config.contacts.clone();
    }
}

impl Article7Report {
    /// The same report with the cover's configured fields (State name, submission date,
    /// contacts) taken from `config`: `config` changes nothing else, so a report computed
    /// once with any configuration serves every other.
    pub fn with_config(&self, config: &Article7Config) -> Article7Report {
        let mut report = self.clone();
        report.cover.set_config(config);
        report
    }
}

/// Computes the report for `year` from a fold stopped at the position of 31 December of
/// that year, marking each form against `previous` (last year's report) when given.
pub fn article7_report(
    fold: &ViewFold,
    year: i32,
    config: &Article7Config,
    previous: Option<&Article7Report>,
) -> Result<Article7Report, Article7Error> {
    let period = Period::year(year).ok_or(Article7Error::YearOutOfRange { year })?;
    if let Some(last_recorded) = fold.today().filter(|date| *date > period.to) {
        return Err(Article7Error::BeyondYearEnd {
            year,
            last_recorded,
        });
    }
    if let Some(previous) = previous.filter(|p| p.cover.year >= year) {
        return Err(Article7Error::PreviousNotEarlier {
            year,
            previous_year: previous.cover.year,
        });
    }
    let regime = fold.compliance().regime().ok_or(Article7Error::NoRegime)?;
    let eif = fold.reporting_eif().ok_or(Article7Error::NoRegime)?;
    let context = Context::new(fold, period, eif);
    let form_b = context.form_b();
    let form_d = context.form_d();
    let form_f = context.form_f();
    let form_g = context.form_g();
    let form_h = context.form_h();

    let forms = FORMS
        .iter()
        .map(|(letter, title, from_ledger)| {
            let status = if !from_ledger {
                FormStatus::OutsideLedger
            } else {
                let (now, applicable, before) = match *letter {
                    "B" => (
                        to_value(&form_b),
                        !form_b.rows.is_empty() || !form_b.discovered.is_empty(),
                        previous.map(|p| to_value(&p.form_b)),
                    ),
                    "D" => (
                        to_value(&form_d),
                        !(form_d.retained.is_empty()
                            && form_d.transferred_for_training.is_empty()
                            && form_d.transferred_for_destruction.is_empty()
                            && form_d.purposes.is_empty()
                            && form_d.actual_use.is_empty()),
                        previous.map(|p| to_value(&p.form_d)),
                    ),
                    "F" => (
                        to_value(&form_f),
                        !form_f.facilities.is_empty(),
                        previous.map(|p| to_value(&p.form_f)),
                    ),
                    "G" => (
                        to_value(&form_g),
                        !form_g.rows.is_empty() || !form_g.discovered.is_empty(),
                        previous.map(|p| to_value(&p.form_g)),
                    ),
                    _ => (
                        to_value(&form_h),
                        !form_h.rows.is_empty(),
                        previous.map(|p| to_value(&p.form_h)),
                    ),
                };
                match (applicable, before) {
                    (false, _) => FormStatus::NotApplicable,
                    (true, Some(before)) if before == now => {
                        let previous = previous.expect("compared with it");
                        let last_reported = previous
                            .cover
                            .forms
                            .iter()
                            .find(|mark| mark.form == *letter)
                            .and_then(|mark| match mark.status {
                                FormStatus::Unchanged { last_reported } => Some(last_reported),
                                _ => None,
                            })
                            .unwrap_or(previous.cover.year);
                        FormStatus::Unchanged { last_reported }
                    }
                    (true, _) => FormStatus::Changed,
                }
            };
            FormMark {
                form: letter.to_string(),
                title: title.to_string(),
                status,
            }
        })
        .collect();

    let mut cover = CoverPage {
        state_id: regime.config.state_id.clone(),
        state_name: String::new(),
        regime: regime.regime(),
        eif_date: eif,
        article4_deadline: regime.article4_deadline(),
        year,
        period_from: period.from,
        period_to: period.to,
        as_of: AsOf::of(fold),
        submission_date: None,
        contacts: Vec::new(),
        forms,
    };
    cover.set_config(config);
    Ok(Article7Report {
        cover,
        form_b,
        form_d,
        form_f,
        form_g,
        form_h,
    })
}

fn to_value<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("report types serialize to JSON")
}

/// The fold, the period and what every form looks up.
struct Context<'a> {
    fold: &'a ViewFold,
    period: Period,
    eif: Date,
    /// Lots of APM types, in id order.
    lots: Vec<Lot>,
}

impl<'a> Context<'a> {
    fn new(fold: &'a ViewFold, period: Period, eif: Date) -> Context<'a> {
        let lots = fold
            .compliance()
            .lots()
            .filter(|lot| is_apm(fold, lot.type_id()))
            .collect();
        Context {
            fold,
            period,
            eif,
            lots,
        }
    }

    fn designation(&self, type_id: &str) -> String {
        self.fold
            .compliance()
            .mine_types()
            .get(type_id)
            .map(|mine_type| mine_type.info.designation.clone())
            .unwrap_or_default()
    }

    fn site_name(&self, site_id: &str) -> String {
        self.fold
            .compliance()
            .site(site_id)
            .map(|site| site.info.name.clone())
            .unwrap_or_default()
    }

    fn form_b(&self) -> FormB {
        let mut rows = Vec::new();
        let mut discovered = Vec::new();
        for lot in &self.lots {
            let mut pools = Pools::default();
            let mut sites = BTreeSet::new();
            for ((site_id, bucket), units) in &lot.balances {
                let (pool, _) = crate::fold::Pool::of(bucket);
                pools.add(pool, *units);
                if matches!(
                    pool,
                    crate::fold::Pool::Stockpiled
                        | crate::fold::Pool::Korea
                        | crate::fold::Pool::InTransit
                ) {
                    sites.insert(site_id.clone());
                }
            }
            let quantity = pools.unretained_stock();
            let mut notes = Vec::new();
            if lot.info.manufacturer_lot_number.is_none() {
                notes.push(format!(
                    "no manufacturer lot number: {}",
                    lot.info.lot_number_absent_reason.trim()
                ));
            }
            if pools.korea > 0 {
                notes.push(format!(
                    "{} designated for the defense of the Republic of Korea",
                    pools.korea
                ));
            }
            if pools.unreceived > 0 {
                notes.push(format!(
                    "{} shipped but missing on receipt, not included",
                    pools.unreceived
                ));
            }
            if lot.info.basis == LotBasis::Discovered {
                let found_in_period = lot
                    .info
                    .basis_date
                    .is_some_and(|date| self.period.contains(date));
                if quantity > 0 || found_in_period {
                    discovered.push(FormBDiscoveredRow {
                        type_id: lot.type_id().to_string(),
                        designation: self.designation(lot.type_id()),
                        lot_id: lot.lot_id().to_string(),
                        quantity,
                        declared: lot.declared_units,
                        discovery_date: lot.info.basis_date,
                        place_site_id: lot.info.site_id.clone(),
                        place_name: self.site_name(&lot.info.site_id),
                        destroyed: pools.destroyed,
                        supplementary: notes.join("; "),
                    });
                }
                continue;
            }
            if quantity == 0 {
                continue;
            }
            rows.push(FormBRow {
                type_id: lot.type_id().to_string(),
                designation: self.designation(lot.type_id()),
                lot_id: lot.lot_id().to_string(),
                manufacturer_lot_number: lot.info.manufacturer_lot_number.clone(),
                quantity,
                stockpiled: pools.stockpiled,
                korea_designated: pools.korea,
                in_transit: pools.in_transit,
                sites: sites.into_iter().collect(),
                supplementary: notes.join("; "),
            });
        }
        rows.sort_by(|a, b| (&a.type_id, &a.lot_id).cmp(&(&b.type_id, &b.lot_id)));
        discovered.sort_by(|a, b| (&a.type_id, &a.lot_id).cmp(&(&b.type_id, &b.lot_id)));
        let totals_by_type = totals(rows.iter().map(|row| (&row.type_id, row.quantity)));
        FormB {
            total: sum(rows.iter().map(|row| row.quantity)),
            discovered_total: sum(discovered.iter().map(|row| row.quantity)),
            rows,
            totals_by_type,
            discovered,
        }
    }

    fn form_d(&self) -> FormD {
        let state = self.fold.compliance();
        let mut retained: BTreeMap<(String, String), FormDRetainedRow> = BTreeMap::new();
        for lot in &self.lots {
            for ((_, bucket), units) in &lot.balances {
                let stockpile_core::state::Bucket::Retained { institution_id } = bucket else {
                    continue;
                };
                let row = retained
                    .entry((institution_id.clone(), lot.lot_id().to_string()))
                    .or_insert_with(|| FormDRetainedRow {
                        institution_id: institution_id.clone(),
                        institution_name: state
                            .institutions()
                            .get(institution_id)
                            .map(|i| i.info.name.clone())
                            .unwrap_or_default(),
                        type_id: lot.type_id().to_string(),
                        lot_id: lot.lot_id().to_string(),
                        manufacturer_lot_number: lot.info.manufacturer_lot_number.clone(),
                        quantity: 0,
                        supplementary: String::new(),
                    });
                row.quantity = row.quantity.saturating_add(*units);
            }
        }
        let retained: Vec<FormDRetainedRow> = retained.into_values().collect();

        let (mut training, mut destruction) = (Vec::new(), Vec::new());
        for movement in self.fold.transfer_movements() {
            if !self.period.contains(movement.date) || !is_apm(self.fold, &movement.type_id) {
                continue;
            }
            let Some(approval) = self.fold.approvals().get(&movement.request_id) else {
                continue;
            };
            let request = state.transfer_requests().get(&movement.request_id);
            let row = FormDTransferRow {
                request_id: movement.request_id.clone(),
                legal_basis: approval.legal_basis.clone(),
                purpose: approval.purpose,
                direction: request.map_or(TransferDirection::Export, |r| r.info.direction),
                recipient: approval
                    .institution_id
                    .clone()
                    .or_else(|| approval.destruction_site_id.clone())
                    .unwrap_or_else(|| movement.to_site_id.clone()),
                counterparty: request
                    .map(|r| r.info.counterparty.clone())
                    .unwrap_or_default(),
                type_id: movement.type_id.clone(),
                lot_id: movement.lot_id.clone(),
                quantity: movement.units,
                date: movement.date,
                shipment_id: movement.shipment_id.clone(),
            };
            if approval.purpose.is_article_3_1() {
                training.push(row);
            } else if approval.purpose == Purpose::Destruction {
                destruction.push(row);
            }
        }

        // Purposes of what is still retained: the latest retention of each institution ×
        // lot pair still holding units.
        let still_held: BTreeSet<(&str, &str)> = retained
            .iter()
            .filter(|row| row.quantity > 0)
            .map(|row| (row.institution_id.as_str(), row.lot_id.as_str()))
            .collect();
        let mut purposes: Vec<FormDPurposeRow> = self
            .fold
            .retentions()
            .iter()
            .filter(|r| still_held.contains(&(r.institution_id.as_str(), r.lot_id.as_str())))
            .map(purpose_row)
            .collect();
        purposes.sort_by(|a, b| {
            (&a.institution_id, &a.lot_id, a.retained_on).cmp(&(
                &b.institution_id,
                &b.lot_id,
                b.retained_on,
            ))
        });

        let mut uses: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        for use_ in self
            .fold
            .consumptions()
            .iter()
            .filter(|c| self.used_in_period(c))
        {
            *uses
                .entry((&use_.institution_id, &use_.type_id, &use_.activity))
                .or_default() += use_.units;
        }
        let actual_use: Vec<FormDUseRow> = uses
            .into_iter()
            .map(|((institution_id, type_id, activity), units)| FormDUseRow {
                institution_id: institution_id.to_string(),
                type_id: type_id.to_string(),
                activity: activity.to_string(),
                units,
            })
            .collect();
        FormD {
            retained_total: sum(retained.iter().map(|row| row.quantity)),
            retained,
            transferred_for_training: training,
            transferred_for_destruction: destruction,
            purposes,
            consumed_in_period: sum(actual_use.iter().map(|row| row.units)),
            actual_use,
        }
    }

    fn used_in_period(&self, use_: &ConsumptionRecord) -> bool {
        use_.units > 0 && self.period.contains(use_.date) && is_apm(self.fold, &use_.type_id)
    }

    fn form_f(&self) -> FormF {
        let mut facilities: BTreeMap<String, FormFFacility> = BTreeMap::new();
        let state = self.fold.compliance();
        for destruction in apm_destructions(self.fold) {
            let record = destruction.record;
            if record.end_date < self.eif {
                continue;
            }
            let site = state.site(&record.site_id);
            let facility =
                facilities
                    .entry(record.site_id.clone())
                    .or_insert_with(|| FormFFacility {
                        site_id: record.site_id.clone(),
                        name: site.map(|s| s.info.name.clone()).unwrap_or_default(),
                        country_code: site
                            .map(|s| s.info.country_code.clone())
                            .unwrap_or_default(),
                        kind: site.map(|s| s.info.kind),
                        methods: Vec::new(),
                        standards: Vec::new(),
                        destructions: 0,
                        destroyed_total: 0,
                        destroyed_in_period: 0,
                        first_start_date: record.start_date,
                        last_end_date: record.end_date,
                    });
            if !facility.methods.contains(&record.method) {
                facility.methods.push(record.method);
            }
            for standard in &record.standards {
                if !facility.standards.contains(standard) {
                    facility.standards.push(standard.clone());
                }
            }
            facility.destructions += 1;
            facility.destroyed_total = facility.destroyed_total.saturating_add(destruction.units);
            if self.period.contains(record.end_date) {
                facility.destroyed_in_period = facility
                    .destroyed_in_period
                    .saturating_add(destruction.units);
            }
            facility.first_start_date = facility.first_start_date.min(record.start_date);
            facility.last_end_date = facility.last_end_date.max(record.end_date);
        }
        let mut facilities: Vec<FormFFacility> = facilities.into_values().collect();
        for facility in &mut facilities {
            facility.methods.sort();
            facility.standards.sort();
        }
        let remaining = sum(self.lots.iter().map(|lot| {
            let mut pools = Pools::default();
            for ((_, bucket), units) in &lot.balances {
                pools.add(crate::fold::Pool::of(bucket).0, *units);
            }
            pools.unretained_stock()
        }));
        let destroyed_ever = !apm_destructions(self.fold).is_empty();
        let status = match (remaining > 0, destroyed_ever) {
            (false, false) => ProgrammeStatus::NoStockpile,
            (true, false) => ProgrammeStatus::NotStarted,
            (true, true) => ProgrammeStatus::Ongoing,
            (false, true) => ProgrammeStatus::Completed,
        };
        FormF {
            status,
            remaining,
            facilities,
        }
    }

    fn form_g(&self) -> FormG {
        let mut rows: BTreeMap<(String, String), FormGRow> = BTreeMap::new();
        let mut discovered: BTreeMap<String, FormGDiscoveredRow> = BTreeMap::new();
        let state = self.fold.compliance();
        for destruction in apm_destructions(self.fold) {
            let record = destruction.record;
            if record.end_date < self.eif {
                continue;
            }
            let units = destruction.units;
            let in_period = if self.period.contains(record.end_date) {
                units
            } else {
                0
            };
            let lot = state.lot(&record.lot_id);
            if record.lot_basis == LotBasis::Discovered {
                let row =
                    discovered
                        .entry(record.lot_id.clone())
                        .or_insert_with(|| FormGDiscoveredRow {
                            type_id: record.type_id.clone(),
                            lot_id: record.lot_id.clone(),
                            discovery_date: lot.as_ref().and_then(|l| l.info.basis_date),
                            place_site_id: lot
                                .as_ref()
                                .map(|l| l.info.site_id.clone())
                                .unwrap_or_default(),
                            quantity: 0,
                            in_period: 0,
                            last_end_date: record.end_date,
                        });
                row.quantity = row.quantity.saturating_add(units);
                row.in_period = row.in_period.saturating_add(in_period);
                row.last_end_date = row.last_end_date.max(record.end_date);
                continue;
            }
            let row = rows
                .entry((record.type_id.clone(), record.lot_id.clone()))
                .or_insert_with(|| FormGRow {
                    type_id: record.type_id.clone(),
                    designation: self.designation(&record.type_id),
                    lot_id: record.lot_id.clone(),
                    manufacturer_lot_number: lot
                        .as_ref()
                        .and_then(|l| l.info.manufacturer_lot_number.clone()),
                    quantity: 0,
                    in_period: 0,
                    destructions: 0,
                    first_end_date: record.end_date,
                    last_end_date: record.end_date,
                    certified: 0,
                    supplementary: String::new(),
                });
            row.quantity = row.quantity.saturating_add(units);
            row.in_period = row.in_period.saturating_add(in_period);
            row.destructions += 1;
            row.first_end_date = row.first_end_date.min(record.end_date);
            row.last_end_date = row.last_end_date.max(record.end_date);
            if destruction.certified {
                row.certified = row.certified.saturating_add(units);
            }
        }
        let mut rows: Vec<FormGRow> = rows.into_values().collect();
        for row in &mut rows {
            if row.certified < row.quantity {
                row.supplementary = format!(
                    "{} of {} units not yet certified",
                    row.quantity - row.certified,
                    row.quantity
                );
            }
        }
        let discovered: Vec<FormGDiscoveredRow> = discovered.into_values().collect();
        FormG {
            totals_by_type: totals(rows.iter().map(|row| (&row.type_id, row.quantity))),
            total: sum(rows.iter().map(|row| row.quantity)),
            in_period_total: sum(rows.iter().map(|row| row.in_period)),
            discovered_total: sum(discovered.iter().map(|row| row.quantity)),
            rows,
            discovered,
        }
    }

    fn form_h(&self) -> FormH {
        let held: BTreeSet<&str> = self.lots.iter().map(|lot| lot.type_id()).collect();
        let rows = held
            .into_iter()
            .filter_map(|type_id| self.fold.compliance().mine_types().get(type_id))
            .map(|mine_type| {
                let info = &mine_type.info;
                FormHRow {
                    type_id: info.type_id.clone(),
                    designation: info.designation.clone(),
                    category: info.category.clone(),
                    activation_modes: info.activation_modes.clone(),
                    self_destructing: info.self_destructing,
                    dimensions_mm: info.dimensions_mm.clone(),
                    fusing: info.fusing.clone(),
                    explosive_type: info.explosive_type.clone(),
                    explosive_mg: info.explosive_mg,
                    metal_mg: info.metal_mg,
                    photo_sha256: info.photo_sha256,
                }
            })
            .collect();
        FormH { rows }
    }
}

fn purpose_row(record: &RetentionRecord) -> FormDPurposeRow {
    FormDPurposeRow {
        institution_id: record.institution_id.clone(),
        type_id: record.type_id.clone(),
        lot_id: record.lot_id.clone(),
        purpose: record.purpose,
        justification: record.justification.clone(),
        planned_annual_use: record.planned_annual_use,
        next_review_date: record.next_review_date,
        retained_on: record.date,
        units: record.units,
    }
}

fn is_apm(fold: &ViewFold, type_id: &str) -> bool {
    fold.compliance()
        .mine_types()
        .get(type_id)
        .is_some_and(|mine_type| mine_type.info.counts_as_apm)
}

fn sum(units: impl Iterator<Item = u64>) -> u64 {
    units.fold(0, u64::saturating_add)
}

fn totals<'a>(rows: impl Iterator<Item = (&'a String, u64)>) -> Vec<TypeQuantity> {
    let mut by_type: BTreeMap<&String, u64> = BTreeMap::new();
    for (type_id, units) in rows {
        let total = by_type.entry(type_id).or_default();
        *total = total.saturating_add(units);
    }
    by_type
        .into_iter()
        .map(|(type_id, quantity)| TypeQuantity {
            type_id: type_id.clone(),
            quantity,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Renderings

/// One table of a rendering: the same sections, headers and rows make the CSV and the
/// HTML, so the two can never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Stable id, e.g. `form_b` (the CSV section title is `#` and the id).
    pub id: &'static str,
    pub title: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

fn text<T: fmt::Display>(value: T) -> String {
    value.to_string()
}

fn opt<T: fmt::Display>(value: &Option<T>) -> String {
    value.as_ref().map(text).unwrap_or_default()
}

/// A serde enum's name as it appears in JSON, e.g. `detection_training`.
fn name<T: Serialize>(value: &T) -> String {
    match to_value(value) {
        serde_json::Value::String(name) => name,
        other => other.to_string(),
    }
}

fn list(items: &[String]) -> String {
    items.join("; ")
}

/// Milligrams as grams, without trailing zeros (37500 → "37.5").
fn grams(mg: u32) -> String {
    let (whole, rest) = (mg / MG_PER_GRAM, mg % MG_PER_GRAM);
    if rest == 0 {
        return whole.to_string();
    }
    let fraction = format!("{rest:03}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

fn transfer_rows(rows: &[FormDTransferRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| {
            vec![
                row.request_id.clone(),
                row.legal_basis.clone(),
                name(&row.purpose),
                name(&row.direction),
                row.recipient.clone(),
                row.counterparty.clone(),
                row.type_id.clone(),
                row.lot_id.clone(),
                text(row.quantity),
                text(row.date),
                opt(&row.shipment_id),
            ]
        })
        .collect()
}

const TRANSFER_HEADER: [&str; 11] = [
    "request_id",
    "legal_basis",
    "purpose",
    "direction",
    "recipient",
    "counterparty",
    "type_id",
    "lot_id",
    "quantity",
    "date",
    "shipment_id",
];

impl Article7Report {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report types serialize to JSON")
    }

    /// The tables of the CSV and HTML renderings, in order.
    pub fn sections(&self) -> Vec<Section> {
        let cover = &self.cover;
        let b = &self.form_b;
        let d = &self.form_d;
        let f = &self.form_f;
        let g = &self.form_g;
        let h = &self.form_h;
        let type_totals = |totals: &[TypeQuantity]| -> Vec<Vec<String>> {
            totals
                .iter()
                .map(|t| vec![t.type_id.clone(), text(t.quantity)])
                .collect()
        };
        vec![
            Section {
                id: "cover",
                title: "Cover page",
                header: vec!["field", "value"],
                rows: [
                    ("state_id", cover.state_id.clone()),
                    ("state_name", cover.state_name.clone()),
                    ("regime", name(&cover.regime)),
                    ("eif_date", text(cover.eif_date)),
                    ("article4_deadline", opt(&cover.article4_deadline)),
                    ("year", text(cover.year)),
                    ("period_from", text(cover.period_from)),
                    ("period_to", text(cover.period_to)),
                    ("as_of_index", opt(&cover.as_of.as_of_index)),
                    ("entries", text(cover.as_of.entries)),
                    ("last_recorded_at", opt(&cover.as_of.recorded_at)),
                    ("head_link", cover.as_of.head_link.to_hex()),
                    ("submission_date", opt(&cover.submission_date)),
                ]
                .into_iter()
                .map(|(field, value)| vec![field.to_string(), value])
                .collect(),
            },
            Section {
                id: "cover_contacts",
                title: "Contacts",
                header: vec!["name", "organisation", "role", "email", "phone"],
                rows: cover
                    .contacts
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.organisation.clone(),
                            c.role.clone(),
                            c.email.clone(),
                            c.phone.clone(),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "cover_forms",
                title: "Forms: changed or unchanged since the previous report",
                header: vec!["form", "title", "status", "last_reported"],
                rows: cover
                    .forms
                    .iter()
                    .map(|mark| {
                        let (status, last) = match &mark.status {
                            FormStatus::Changed => ("changed", String::new()),
                            FormStatus::Unchanged { last_reported } => {
                                ("unchanged", last_reported.to_string())
                            }
                            FormStatus::NotApplicable => ("not_applicable", String::new()),
                            FormStatus::OutsideLedger => ("outside_ledger", String::new()),
                        };
                        vec![
                            mark.form.clone(),
                            mark.title.clone(),
                            status.to_string(),
                            last,
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_b",
                title: "Form B: stockpiled anti-personnel mines",
                header: vec![
                    "type_id",
                    "designation",
                    "lot_id",
                    "manufacturer_lot_number",
                    "quantity",
                    "stockpiled",
                    "korea_designated",
                    "in_transit",
                    "sites",
                    "supplementary",
                ],
                rows: b
                    .rows
                    .iter()
                    .map(|row| {
                        vec![
                            row.type_id.clone(),
                            row.designation.clone(),
                            row.lot_id.clone(),
                            opt(&row.manufacturer_lot_number),
                            text(row.quantity),
                            text(row.stockpiled),
                            text(row.korea_designated),
                            text(row.in_transit),
                            list(&row.sites),
                            row.supplementary.clone(),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_b_totals",
                title: "Form B: totals by type",
                header: vec!["type_id", "quantity"],
                rows: type_totals(&b.totals_by_type),
            },
            Section {
                id: "form_b_discovered",
                title: "Form B: stockpiles discovered",
                header: vec![
                    "type_id",
                    "designation",
                    "lot_id",
                    "quantity",
                    "declared",
                    "discovery_date",
                    "place_site_id",
                    "place_name",
                    "destroyed",
                    "supplementary",
                ],
                rows: b
                    .discovered
                    .iter()
                    .map(|row| {
                        vec![
                            row.type_id.clone(),
                            row.designation.clone(),
                            row.lot_id.clone(),
                            text(row.quantity),
                            text(row.declared),
                            opt(&row.discovery_date),
                            row.place_site_id.clone(),
                            row.place_name.clone(),
                            text(row.destroyed),
                            row.supplementary.clone(),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_d_retained",
                title: "Form D section 1: retained (Article 3(1))",
                header: vec![
                    "institution_id",
                    "institution_name",
                    "type_id",
                    "lot_id",
                    "manufacturer_lot_number",
                    "quantity",
                    "supplementary",
                ],
                rows: d
                    .retained
                    .iter()
                    .map(|row| {
                        vec![
                            row.institution_id.clone(),
                            row.institution_name.clone(),
                            row.type_id.clone(),
                            row.lot_id.clone(),
                            opt(&row.manufacturer_lot_number),
                            text(row.quantity),
                            row.supplementary.clone(),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_d_transferred_training",
                title: "Form D section 2: transferred for training (Article 3(1))",
                header: TRANSFER_HEADER.to_vec(),
                rows: transfer_rows(&d.transferred_for_training),
            },
            Section {
                id: "form_d_transferred_destruction",
                title: "Form D section 3: transferred for destruction (Article 3(2))",
                header: TRANSFER_HEADER.to_vec(),
                rows: transfer_rows(&d.transferred_for_destruction),
            },
            Section {
                id: "form_d_purposes",
                title: "Form D optional part: intended purpose",
                header: vec![
                    "institution_id",
                    "type_id",
                    "lot_id",
                    "purpose",
                    "justification",
                    "planned_annual_use",
                    "next_review_date",
                    "retained_on",
                    "units",
                ],
                rows: d
                    .purposes
                    .iter()
                    .map(|row| {
                        vec![
                            row.institution_id.clone(),
                            row.type_id.clone(),
                            row.lot_id.clone(),
                            name(&row.purpose),
                            row.justification.clone(),
                            text(row.planned_annual_use),
                            opt(&row.next_review_date),
                            text(row.retained_on),
                            text(row.units),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_d_actual_use",
                title: "Form D optional part: actual use in the year",
                header: vec!["institution_id", "type_id", "activity", "units"],
                rows: d
                    .actual_use
                    .iter()
                    .map(|row| {
                        vec![
                            row.institution_id.clone(),
                            row.type_id.clone(),
                            row.activity.clone(),
                            text(row.units),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_f",
                title: "Form F: destruction programme",
                header: vec!["field", "value"],
                rows: vec![
                    vec!["status".to_string(), name(&f.status)],
                    vec!["remaining".to_string(), text(f.remaining)],
                ],
            },
            Section {
                id: "form_f_facilities",
                title: "Form F: destruction facilities",
                header: vec![
                    "site_id",
                    "name",
                    "country_code",
                    "methods",
                    "standards",
                    "destructions",
                    "destroyed_total",
                    "destroyed_in_period",
                    "first_start_date",
                    "last_end_date",
                ],
                rows: f
                    .facilities
                    .iter()
                    .map(|row| {
                        let methods: Vec<String> = row.methods.iter().map(name).collect();
                        vec![
                            row.site_id.clone(),
                            row.name.clone(),
                            row.country_code.clone(),
                            list(&methods),
                            list(&row.standards),
                            text(row.destructions),
                            text(row.destroyed_total),
                            text(row.destroyed_in_period),
                            text(row.first_start_date),
                            text(row.last_end_date),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_g",
                title: "Form G: destroyed since entry into force",
                header: vec![
                    "type_id",
                    "designation",
                    "lot_id",
                    "manufacturer_lot_number",
                    "quantity",
                    "in_period",
                    "destructions",
                    "first_end_date",
                    "last_end_date",
                    "certified",
                    "supplementary",
                ],
                rows: g
                    .rows
                    .iter()
                    .map(|row| {
                        vec![
                            row.type_id.clone(),
                            row.designation.clone(),
                            row.lot_id.clone(),
                            opt(&row.manufacturer_lot_number),
                            text(row.quantity),
                            text(row.in_period),
                            text(row.destructions),
                            text(row.first_end_date),
                            text(row.last_end_date),
                            text(row.certified),
                            row.supplementary.clone(),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_g_totals",
                title: "Form G: totals by type",
                header: vec!["type_id", "quantity"],
                rows: type_totals(&g.totals_by_type),
            },
            Section {
                id: "form_g_discovered",
                title: "Form G: destruction of discovered stockpiles",
                header: vec![
                    "type_id",
                    "lot_id",
                    "discovery_date",
                    "place_site_id",
                    "quantity",
                    "in_period",
                    "last_end_date",
                ],
                rows: g
                    .discovered
                    .iter()
                    .map(|row| {
                        vec![
                            row.type_id.clone(),
                            row.lot_id.clone(),
                            opt(&row.discovery_date),
                            row.place_site_id.clone(),
                            text(row.quantity),
                            text(row.in_period),
                            text(row.last_end_date),
                        ]
                    })
                    .collect(),
            },
            Section {
                id: "form_h",
                title: "Form H: technical characteristics",
                header: vec![
                    "type_id",
                    "designation",
                    "category",
                    "activation_modes",
                    "self_destructing",
                    "dimensions_mm",
                    "fusing",
                    "explosive_type",
                    "explosive_g",
                    "metal_g",
                    "photo_sha256",
                ],
                rows: h
                    .rows
                    .iter()
                    .map(|row| {
                        vec![
                            row.type_id.clone(),
                            row.designation.clone(),
                            row.category.clone(),
                            list(&row.activation_modes),
                            text(row.self_destructing),
                            row.dimensions_mm.clone(),
                            row.fusing.clone(),
                            row.explosive_type.clone(),
                            grams(row.explosive_mg),
                            grams(row.metal_mg),
                            row.photo_sha256.map(|h| h.to_hex()).unwrap_or_default(),
                        ]
                    })
                    .collect(),
            },
        ]
    }

    /// The report as CSV: one section per table, each a title record (`#` and the
    /// section id), a header record, the rows, and an empty line. Fields are quoted as
    /// RFC 4180 requires; records end in CRLF.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for section in self.sections() {
            csv_record(&mut out, &[format!("#{}", section.id)]);
            csv_record(&mut out, &section.header);
            for row in &section.rows {
                assert_eq!(
                    row.len(),
                    section.header.len(),
                    "section {} has a row of the wrong width",
                    section.id
                );
                csv_record(&mut out, row);
            }
            out.push_str(crate::render::CSV_LINE_END);
        }
        out
    }

    /// The report as one self-contained HTML page: no scripts, no external assets, every
    /// piece of data escaped.
    pub fn to_html(&self) -> String {
        let cover = &self.cover;
        let title = format!(
            "Article 7 report of {} ({}) for {}",
            cover.state_name, cover.state_id, cover.year
        );
        let mut out = String::new();
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str(&format!("<title>{}</title>\n", html_escape(&title)));
        out.push_str(STYLE);
        out.push_str("</head>\n<body>\n<main>\n");
        out.push_str(&format!("<h1>{}</h1>\n", html_escape(&title)));
        let position = match cover.as_of.as_of_index {
            Some(index) => format!(
                "Computed at ledger index {index} ({} entries, last recorded {}), head link {}.",
                cover.as_of.entries,
                opt(&cover.as_of.recorded_at),
                cover.as_of.head_link.to_hex()
            ),
            None => "Computed from an empty ledger.".to_string(),
        };
        out.push_str(&format!(
            "<p>Period {} to {}. {}</p>\n",
            cover.period_from,
            cover.period_to,
            html_escape(&position)
        ));
        for section in self.sections() {
            out.push_str(&format!(
                "<section id=\"{}\">\n<h2>{}</h2>\n<table>\n<thead>\n<tr>",
                html_escape(section.id),
                html_escape(section.title)
            ));
            for column in &section.header {
                out.push_str(&format!("<th>{}</th>", html_escape(column)));
            }
            out.push_str("</tr>\n</thead>\n<tbody>\n");
            if section.rows.is_empty() {
                out.push_str(&format!(
                    "<tr><td colspan=\"{}\">none</td></tr>\n",
                    section.header.len()
                ));
            }
            for row in &section.rows {
                out.push_str("<tr>");
                for cell in row {
                    out.push_str(&format!("<td>{}</td>", html_escape(cell)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table>\n</section>\n");
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

/// The page's only styling, inline: the report must open offline.
const STYLE: &str = "<style>\nbody{font-family:sans-serif;margin:2em;}\n\
table{border-collapse:collapse;margin-bottom:1.5em;}\n\
th,td{border:1px solid #999;padding:0.2em 0.5em;text-align:left;vertical-align:top;}\n\
th{background:#eee;}\n</style>\n";
