//! The registry: the regime in force, sites, mine types and authorised institutions.
//!
//! Registry events may come before the first `RegimeConfigured`; everything about lots
//! needs a regime (hard 4). A later `RegimeConfigured` replaces the regime from its entry
//! on (U.S. policy 2014 → 2020 → 2022), but never the State, the family of rules (a
//! ledger checks either the Convention or U.S. policy), or a State Party's EIF: every
//! Convention deadline runs from the EIF and Article 4 allows no extension.

use super::{
    ComplianceState, Ctx, Flag, Institution, MineType, RegimeChange, RegimeState, Site, refs,
};
use crate::events::{
    InstitutionAuthorized, MineTypeRegistered, Regime, RegimeConfigured, SiteRegistered,
};
use crate::limits::{ARTICLE4_YEARS, INITIAL_REPORT_DAYS};
use crate::time::Date;

/// EIF + 4 years under `APMBC`.
pub(super) fn article4_deadline(config: &RegimeConfigured) -> Option<Date> {
    (config.regime == Regime::Apmbc).then(|| config.eif_date.add_years(ARTICLE4_YEARS))
}

/// EIF + 180 days under `APMBC`.
fn initial_report_due(config: &RegimeConfigured) -> Option<Date> {
    (config.regime == Regime::Apmbc).then(|| config.eif_date.add_days(INITIAL_REPORT_DAYS))
}

impl ComplianceState {
    pub(super) fn on_regime_configured(
        &mut self,
        ctx: &Ctx<'_>,
        e: &RegimeConfigured,
    ) -> Result<Vec<Flag>, super::Violation> {
        let derived = [
            (
                "article4_deadline",
                e.article4_deadline,
                article4_deadline(e),
            ),
            (
                "initial_report_due",
                e.initial_report_due,
                initial_report_due(e),
            ),
        ];
        for (field, given, expected) in derived {
            match (given, expected) {
                (Some(given), None) => {
                    return Err(refs(
                        "regime.field_not_applicable",
                        format!(
                            "{field} {given} is given, but regime {:?} has no such date",
                            e.regime
                        ),
                    ));
                }
                (Some(given), Some(expected)) if given != expected => {
                    return Err(refs(
                        "regime.derived_date_differs",
                        format!("{field} is {given}; EIF {} makes it {expected}", e.eif_date),
                    ));
                }
                _ => {}
            }
        }
        if let Some(current) = &self.regime {
            let before = &current.config;
            if !before.state_id.eq_ignore_ascii_case(&e.state_id) {
                return Err(refs(
                    "regime.state_changed",
                    format!(
                        "this ledger is for State {:?}, not {:?}",
                        before.state_id, e.state_id
                    ),
                ));
            }
            if before.regime.is_us() != e.regime.is_us() {
                return Err(refs(
                    "regime.family_changed",
                    format!(
                        "a ledger checks one rule set: {:?} cannot become {:?}",
                        before.regime, e.regime
                    ),
                ));
            }
            if before.regime == Regime::Apmbc && before.eif_date != e.eif_date {
                return Err(refs(
                    "regime.eif_changed",
                    format!(
                        "EIF is {}; it cannot become {}: every deadline runs from it and Article 4 allows no \
                         extension",
                        before.eif_date, e.eif_date
                    ),
                ));
            }
        }
        let change = RegimeChange {
            event_id: ctx.event_id.to_string(),
            index: ctx.index,
            regime: e.regime,
            recorded_on: ctx.today,
        };
        let mut history = self
            .regime
            .take()
            .map(|state| state.history)
            .unwrap_or_default();
        history.push(change);
        self.regime = Some(RegimeState {
            config: e.clone(),
            event_id: ctx.event_id.to_string(),
            history,
        });
        Ok(Vec::new())
    }

    pub(super) fn on_site_registered(
        &mut self,
        ctx: &Ctx<'_>,
        e: &SiteRegistered,
    ) -> Result<Vec<Flag>, super::Violation> {
        if self.sites.contains(&e.site_id) {
            return Err(refs(
                "references.duplicate_id",
                format!("site {:?} is already registered", e.site_id),
            ));
        }
        self.sites.insert(
            &e.site_id,
            Site {
                event_id: ctx.event_id.to_string(),
                info: e.clone(),
            },
        );
        Ok(Vec::new())
    }

    pub(super) fn on_mine_type_registered(
        &mut self,
        ctx: &Ctx<'_>,
        e: &MineTypeRegistered,
    ) -> Result<Vec<Flag>, super::Violation> {
        if self.mine_types.contains_key(&e.type_id) {
            return Err(refs(
                "references.duplicate_id",
                format!("mine type {:?} is already registered", e.type_id),
            ));
        }
        self.mine_types.insert(
            e.type_id.clone(),
            MineType {
                event_id: ctx.event_id.to_string(),
                info: e.clone(),
            },
        );
        Ok(Vec::new())
    }

    pub(super) fn on_institution_authorized(
        &mut self,
        ctx: &Ctx<'_>,
        e: &InstitutionAuthorized,
    ) -> Result<Vec<Flag>, super::Violation> {
        if self.institutions.contains(&e.institution_id) {
            return Err(refs(
                "references.duplicate_id",
                format!("institution {:?} is already authorised", e.institution_id),
            ));
        }
        self.known_site(&e.site_id)?;
        if let (Some(from), Some(to)) = (e.valid_from, e.valid_to)
            && to < from
        {
            return Err(refs(
                "references.dates_reversed",
                format!(
                    "institution {:?} is valid from {from} to {to}",
                    e.institution_id
                ),
            ));
        }
        let institution = Institution {
            event_id: ctx.event_id.to_string(),
            info: e.clone(),
            retained_units: 0,
            last_change: None,
            unchanged_flagged: false,
        };
        self.institutions.insert(&e.institution_id, institution);
        Ok(Vec::new())
    }
}
