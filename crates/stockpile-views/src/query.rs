//! One name per view, and the answer to a query by name: what the projector's API and the
//! `stockpile query` command both serve, so the two cannot drift apart.
//!
//! Views that count days use "today" = the date of the last entry folded
//! ([`crate::digest::views_today`]): an answer depends on the ledger alone, never on the
//! clock of the machine that computes it.

use serde::Serialize;
use serde_json::{Value, json};

use crate::digest::{views_digest, views_today};
use crate::fold::ViewFold;
use crate::views::{self, AsOf, HistoryPage, LOT_HISTORY_PAGE_MAX, Period};

/// A view, by the name the API path and the CLI use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewQuery {
    /// Entry counts, compliance summary, state and views digests.
    Summary,
    /// Stock by site × type × lot × pool.
    Stockpile,
    /// The ids of every lot.
    Lots,
    /// One lot and a page of its history.
    Lot {
        lot_id: String,
        history: HistoryPage,
    },
    /// Retained mines by institution.
    Retained,
    /// Destruction progress against the Article 4 deadline.
    DestructionProgress,
    /// Transfer register, refusals included.
    Transfers,
    /// Shipments not yet received.
    InTransit,
    /// Book against physical counts per site, over everything or one calendar year.
    MaterialBalance { year: Option<i32> },
    /// Flags raised by the compliance rules.
    Flags,
}

/// The names [`ViewQuery::parse`] accepts (the `lot` view takes a lot id as well).
pub const VIEW_NAMES: &[&str] = &[
    "summary",
    "stockpile",
    "lots",
    "lot",
    "retained",
    "destruction-progress",
    "transfers",
    "in-transit",
    "material-balance",
    "flags",
];

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("no view named {0:?}; views: {names}", names = VIEW_NAMES.join(", "))]
    UnknownView(String),
    #[error("the lot view needs a lot id")]
    MissingLotId,
    #[error("no lot {0:?} in the ledger")]
    UnknownLot(String),
    #[error("year {0} is out of range")]
    YearOutOfRange(i32),
    #[error("history_limit {0} is out of range: it must be 1 to {LOT_HISTORY_PAGE_MAX}")]
    HistoryLimitOutOfRange(u64),
    #[error("history_from and history_limit apply to the lot view only")]
    HistoryPageNotApplicable,
}

impl ViewQuery {
    /// The query for a view name (`lot` needs `lot_id`; `material-balance` takes `year`).
    pub fn parse(
        name: &str,
        lot_id: Option<&str>,
        year: Option<i32>,
    ) -> Result<ViewQuery, QueryError> {
        Ok(match name {
            "summary" => ViewQuery::Summary,
            "stockpile" => ViewQuery::Stockpile,
            "lots" => ViewQuery::Lots,
            "lot" => ViewQuery::Lot {
                lot_id: lot_id.ok_or(QueryError::MissingLotId)?.to_string(),
                history: HistoryPage::default(),
            },
            "retained" => ViewQuery::Retained,
            "destruction-progress" => ViewQuery::DestructionProgress,
            "transfers" => ViewQuery::Transfers,
            "in-transit" => ViewQuery::InTransit,
            "material-balance" => ViewQuery::MaterialBalance { year },
            "flags" => ViewQuery::Flags,
            other => return Err(QueryError::UnknownView(other.to_string())),
        })
    }

    /// The same query with the page `page` of the lot's history (the lot view only).
    pub fn with_history(self, page: HistoryPage) -> Result<ViewQuery, QueryError> {
        match self {
            ViewQuery::Lot { lot_id, .. } => Ok(ViewQuery::Lot {
                lot_id,
                history: page,
            }),
            _ => Err(QueryError::HistoryPageNotApplicable),
        }
    }
}

/// The summary view: position, counts, the compliance summary and both digests.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryView {
    pub as_of: AsOf,
    pub accepted_entries: u64,
    pub rejected_entries: usize,
    pub flags: usize,
    pub summary: stockpile_core::state::StockpileSummary,
    /// The compliance state digest (equal to the verifier's at the same position).
    pub state_digest: String,
    /// The digest of every view (see [`crate::digest`]).
    pub views_digest: String,
}

/// The summary of `fold`.
pub fn summary(fold: &ViewFold) -> SummaryView {
    SummaryView {
        as_of: AsOf::of(fold),
        accepted_entries: fold.accepted_entries(),
        rejected_entries: fold.rejected_entries().len(),
        flags: fold.flags().len(),
        summary: fold.compliance().summary(),
        state_digest: fold.compliance().digest().to_hex(),
        views_digest: views_digest(fold).to_hex(),
    }
}

/// The answer to `query` over `fold`, as JSON.
pub fn answer(fold: &ViewFold, query: &ViewQuery) -> Result<Value, QueryError> {
    let today = views_today(fold);
    Ok(match query {
        ViewQuery::Summary => to_json(&summary(fold)),
        ViewQuery::Stockpile => to_json(&views::stockpile(fold)),
        ViewQuery::Lots => json!({
            "as_of": AsOf::of(fold),
            "lot_ids": views::lot_ids(fold),
        }),
        ViewQuery::Lot { lot_id, history } => to_json(
            &views::lot(fold, lot_id, *history)
                .ok_or_else(|| QueryError::UnknownLot(lot_id.clone()))?,
        ),
        ViewQuery::Retained => to_json(&views::retained(fold)),
        ViewQuery::DestructionProgress => to_json(&views::destruction_progress(fold, today)),
        ViewQuery::Transfers => to_json(&views::transfers(fold)),
        ViewQuery::InTransit => to_json(&views::in_transit(fold, today)),
        ViewQuery::MaterialBalance { year } => {
            let period = match year {
                None => None,
                Some(year) => Some(Period::year(*year).ok_or(QueryError::YearOutOfRange(*year))?),
            };
            to_json(&views::material_balance(fold, period))
        }
        ViewQuery::Flags => to_json(&views::flags(fold)),
    })
}

fn to_json<T: Serialize>(view: &T) -> Value {
    // The views are plain data with string keys: serialization cannot fail.
    serde_json::to_value(view).expect("views serialize to JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_pages_are_checked_and_cover_the_asked_range() {
        assert_eq!(
            HistoryPage::new(None, Some(0)),
            Err(QueryError::HistoryLimitOutOfRange(0))
        );
        assert_eq!(
            HistoryPage::new(Some(3), Some(LOT_HISTORY_PAGE_MAX + 1)),
            Err(QueryError::HistoryLimitOutOfRange(LOT_HISTORY_PAGE_MAX + 1))
        );
        let latest = HistoryPage::default();
        assert_eq!(latest.range(250), (150, 150..250));
        assert_eq!(latest.range(40), (0, 0..40));
        let page = HistoryPage::new(Some(10), Some(5)).unwrap();
        assert_eq!(page.range(12), (10, 10..12));
        assert_eq!(page.range(3), (10, 3..3));
        let far = HistoryPage::new(Some(u64::MAX), Some(LOT_HISTORY_PAGE_MAX)).unwrap();
        assert_eq!(far.range(7), (u64::MAX, 7..7));
        assert_eq!(HistoryPage::whole().range(9), (0, 0..9));
        assert_eq!(
            ViewQuery::Summary.with_history(page),
            Err(QueryError::HistoryPageNotApplicable)
        );
    }

    #[test]
    fn every_name_parses_and_unknown_ones_are_refused_by_name() {
        for name in VIEW_NAMES {
            let parsed = ViewQuery::parse(name, Some("L1"), None);
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
        assert_eq!(
            ViewQuery::parse("lot", None, None),
            Err(QueryError::MissingLotId)
        );
        let unknown = ViewQuery::parse("stock", None, None).unwrap_err();
        assert!(unknown.to_string().contains("\"stock\""), "{unknown}");
        assert!(unknown.to_string().contains("destruction-progress"));
    }

    #[test]
    fn an_empty_fold_answers_every_view_and_refuses_an_unknown_lot() {
        let fold = ViewFold::new("example.org/ledger", &[]);
        for name in VIEW_NAMES.iter().filter(|name| **name != "lot") {
            let query = ViewQuery::parse(name, None, Some(2020)).unwrap();
            let value = answer(&fold, &query).unwrap();
            assert!(value.is_object(), "{name}: {value}");
        }
        let missing = answer(
            &fold,
            &ViewQuery::Lot {
                lot_id: "L-404".into(),
                history: HistoryPage::default(),
            },
        )
        .unwrap_err();
        assert_eq!(missing, QueryError::UnknownLot("L-404".into()));
        assert_eq!(
            answer(
                &fold,
                &ViewQuery::MaterialBalance {
                    year: Some(i32::MAX)
                }
            ),
            Err(QueryError::YearOutOfRange(i32::MAX))
        );
    }
}
