//! Export control: transfer requests, their one decision, and the Article 3 test of an
//! approval (hard 8).
//!
//! A request is always recorded, whatever it asks: a refused request is evidence of
//! compliance. An approval must cite Article 3 — 3(1) with an institution authorised for
//! the purpose, or 3(2) with a destruction facility — or, under the U.S. regimes, a `US-`
//! basis for destruction, detection, clearance or development. Shipments across the
//! border and imported lots then draw on the approved quantities per type.

use super::{
    ComplianceState, Ctx, Decision, Flag, HardRule, TransferRequest, Violation, positive, refs,
};
use crate::events::{
    Purpose, SiteKind, TransferApproved, TransferDirection, TransferRefused, TransferRequested,
    TypeQuantity,
};
use std::collections::BTreeMap;

/// The legal basis code of an Article 3(1) approval.
const APMBC_3_1: &str = "APMBC-3.1";
/// The legal basis code of an Article 3(2) approval.
const APMBC_3_2: &str = "APMBC-3.2";
/// Every U.S. legal basis code starts with this.
const US_BASIS_PREFIX: &str = "US-";

fn transfers(code: &str, message: String) -> Violation {
    Violation::new(HardRule::TransfersArticle3, code, message)
}

impl ComplianceState {
    /// Units per type of a request or approval: types registered, quantities positive,
    /// each type once.
    fn type_quantities(
        &self,
        what: &str,
        items: &[TypeQuantity],
    ) -> Result<BTreeMap<String, u64>, Violation> {
        if items.is_empty() {
            return Err(refs(
                "references.no_items",
                format!("{what} lists no types and quantities"),
            ));
        }
        let mut units = BTreeMap::new();
        for item in items {
            self.known_type(&item.type_id)?;
            positive(
                item.quantity,
                &format!("quantity of {} in {what}", item.type_id),
            )?;
            if units.insert(item.type_id.clone(), item.quantity).is_some() {
                return Err(refs(
                    "references.duplicate_entry",
                    format!("{what} lists type {} twice", item.type_id),
                ));
            }
        }
        Ok(units)
    }

    pub(super) fn on_transfer_requested(
        &mut self,
        ctx: &Ctx<'_>,
        e: &TransferRequested,
    ) -> Result<Vec<Flag>, Violation> {
        if self.requests.contains_key(&e.request_id) {
            return Err(refs(
                "references.duplicate_id",
                format!("transfer request {:?} already exists", e.request_id),
            ));
        }
        self.type_quantities(&format!("request {}", e.request_id), &e.items)?;
        let request = TransferRequest {
            event_id: ctx.event_id.to_string(),
            info: e.clone(),
            decision: None,
        };
        self.requests.insert(e.request_id.clone(), request);
        Ok(Vec::new())
    }

    /// The request exists and has no decision yet.
    fn undecided(&self, request_id: &str) -> Result<&TransferRequest, Violation> {
        let request = self.requests.get(request_id).ok_or_else(|| {
            refs(
                "references.unknown_request",
                format!("transfer request {request_id:?} does not exist"),
            )
        })?;
        if let Some(decision) = &request.decision {
            let (verdict, event_id) = match decision {
                Decision::Refused { event_id } => ("refused", event_id),
                Decision::Approved { event_id, .. } => ("approved", event_id),
            };
            return Err(transfers(
                "transfers.already_decided",
                format!(
                    "request {request_id} was already {verdict} by event {event_id}; a request gets one decision"
                ),
            ));
        }
        Ok(request)
    }

    pub(super) fn on_transfer_refused(
        &mut self,
        ctx: &Ctx<'_>,
        e: &TransferRefused,
    ) -> Result<Vec<Flag>, Violation> {
        self.undecided(&e.request_id)?;
        let request = self.requests.get_mut(&e.request_id).expect("checked above");
        request.decision = Some(Decision::Refused {
            event_id: ctx.event_id.to_string(),
        });
        Ok(Vec::new())
    }

    pub(super) fn on_transfer_approved(
        &mut self,
        ctx: &Ctx<'_>,
        e: &TransferApproved,
    ) -> Result<Vec<Flag>, Violation> {
        let request = self.undecided(&e.request_id)?;
        self.check_article3(e)?;
        let approved =
            self.type_quantities(&format!("approval of {}", e.request_id), &e.quantities)?;
        for (type_id, units) in &approved {
            let requested = request
                .info
                .items
                .iter()
                .find(|item| item.type_id == *type_id)
                .map_or(0, |item| item.quantity);
            if *units > requested {
                return Err(transfers(
                    "transfers.exceeds_request",
                    format!(
                        "approval of {} grants {units} {type_id}; the request asked for {requested}",
                        e.request_id
                    ),
                ));
            }
        }
        let request = self.requests.get_mut(&e.request_id).expect("checked above");
        request.decision = Some(Decision::Approved {
            event_id: ctx.event_id.to_string(),
            legal_basis: e.legal_basis.clone(),
            purpose: e.purpose,
            approved,
            used: BTreeMap::new(),
        });
        Ok(Vec::new())
    }

    /// Hard 8: the approval's legal basis is one the regime allows, with what that basis
    /// requires.
    fn check_article3(&self, e: &TransferApproved) -> Result<(), Violation> {
        let regime = self.regime_state()?.regime();
        let refuse = |why: String| {
            Err(transfers(
                "transfers.not_article3",
                format!(
                    "approval of {} under {:?} cites {:?} for {:?}: {why}",
                    e.request_id, regime, e.legal_basis, e.purpose
                ),
            ))
        };
        if regime.is_us() {
            if !e.legal_basis.starts_with(US_BASIS_PREFIX) {
                return refuse(format!("a U.S. basis starts with {US_BASIS_PREFIX:?}"));
            }
            let allowed = [
                Purpose::Destruction,
                Purpose::DetectionTraining,
                Purpose::ClearanceTraining,
                Purpose::Development,
            ];
            if !allowed.contains(&e.purpose) {
                return refuse(
                    "U.S. policy allows only destruction, detection, clearance or development"
                        .to_string(),
                );
            }
            return Ok(());
        }
        match e.legal_basis.as_str() {
            APMBC_3_1 => {
                if !e.purpose.is_article_3_1() {
                    return refuse("not an Article 3(1) purpose".to_string());
                }
                let Some(institution_id) = &e.institution_id else {
                    return refuse(
                        "Article 3(1) needs the receiving authorised institution".to_string(),
                    );
                };
                let Some(institution) = self.institutions.get(institution_id) else {
                    return refuse(format!("institution {institution_id} is not authorised"));
                };
                if !institution.permits(e.purpose) {
                    return refuse(format!(
                        "institution {institution_id} is authorised for {:?} only",
                        institution.info.permitted_purposes
                    ));
                }
                if !institution.valid_on(e.date) {
                    return refuse(format!(
                        "institution {institution_id} is not authorised on {}",
                        e.date
                    ));
                }
                Ok(())
            }
            APMBC_3_2 => {
                if e.purpose != Purpose::Destruction {
                    return refuse("Article 3(2) allows transfer for destruction only".to_string());
                }
                let Some(site_id) = &e.destruction_site_id else {
                    return refuse("Article 3(2) needs the destruction facility".to_string());
                };
                match self.sites.get(site_id) {
                    Some(site) if site.info.kind == SiteKind::DestructionFacility => Ok(()),
                    Some(site) => refuse(format!(
                        "site {site_id} is a {:?}, not a destruction facility",
                        site.info.kind
                    )),
                    None => refuse(format!("site {site_id} is not registered")),
                }
            }
            _ => refuse(format!(
                "the Convention allows only {APMBC_3_1} or {APMBC_3_2}"
            )),
        }
    }

    /// Hard 8: `request_id` names an approved request in `direction` whose remaining
    /// quantity of `type_id` covers `units`.
    pub(super) fn check_approval(
        &self,
        request_id: Option<&str>,
        direction: TransferDirection,
        type_id: &str,
        units: u64,
    ) -> Result<(), Violation> {
        let what = match direction {
            TransferDirection::Export => "an export",
            TransferDirection::Import => "an import",
        };
        let Some(request_id) = request_id else {
            return Err(transfers(
                "transfers.no_approval",
                format!("{what} of {units} {type_id} cites no approved request"),
            ));
        };
        let Some(request) = self.requests.get(request_id) else {
            return Err(transfers(
                "transfers.no_approval",
                format!("{what} cites request {request_id:?}, which does not exist"),
            ));
        };
        let Some(Decision::Approved { approved, used, .. }) = &request.decision else {
            return Err(transfers(
                "transfers.no_approval",
                format!(
                    "{what} cites request {request_id}, which is {}",
                    if request.decision.is_some() {
                        "refused"
                    } else {
                        "undecided"
                    }
                ),
            ));
        };
        if request.info.direction != direction {
            return Err(transfers(
                "transfers.wrong_direction",
                format!(
                    "{what} cites request {request_id}, which is an {:?}",
                    request.info.direction
                ),
            ));
        }
        let granted = approved.get(type_id).copied().unwrap_or(0);
        let remaining = granted.saturating_sub(used.get(type_id).copied().unwrap_or(0));
        if units > remaining {
            return Err(transfers(
                "transfers.exceeds_approval",
                format!(
                    "{what} of {units} {type_id} under request {request_id}: approved {granted}, remaining {remaining}"
                ),
            ));
        }
        Ok(())
    }

    /// Records `change` units of `type_id` used under an approval that was checked
    /// (negative when a correction gives units back).
    pub(super) fn use_approval(&mut self, request_id: &str, type_id: &str, change: i128) {
        let request = self
            .requests
            .get_mut(request_id)
            .expect("an approval is checked before it is used");
        let Some(Decision::Approved { used, .. }) = &mut request.decision else {
            panic!("request {request_id} was checked to be approved");
        };
        let entry = used.entry(type_id.to_string()).or_insert(0);
        let after = *entry as i128 + change;
        assert!(
            after >= 0 && after <= u64::MAX as i128,
            "approval usage of {request_id} out of range"
        );
        *entry = after as u64;
    }
}
