//! Which roles each emitting service holds, and which event kinds those roles emit.
//!
//! The kind → role map is the core's ([`EventKind::owner`]); this module only adds the
//! deployment's choice of roles per service and names for kinds and roles on the wire
//! (the same snake_case names as the JSON event bodies).

use std::fmt;

use stockpile_core::events::{EventKind, Role};

/// Every event kind, in catalogue order.
pub const ALL_KINDS: [EventKind; 21] = {
    use EventKind::*;
    [
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
    ]
};

/// The three emitting services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// Lots declared, retained, consumed, shipped, received and lost (Depot); sites, mine
    /// types, institutions, signers and Korea designations (Registrar); inventory counts
    /// (Inspector).
    Depot,
    /// Destruction (Demil) and its certification (Certifier).
    Demil,
    /// Transfer requests, refusals and approvals.
    ExportControl,
}

impl ServiceKind {
    /// The service name: its NATS subject token and the prefix of its default event ids.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Depot => "depot",
            ServiceKind::Demil => "demil",
            ServiceKind::ExportControl => "export-control",
        }
    }

    /// The name of the service's binary, e.g. `stockpile-depot`.
    pub fn binary_name(self) -> &'static str {
        match self {
            ServiceKind::Depot => "stockpile-depot",
            ServiceKind::Demil => "stockpile-demil",
            ServiceKind::ExportControl => "stockpile-export-control",
        }
    }

    /// The roles whose keys this service may hold.
    pub fn roles(self) -> &'static [Role] {
        match self {
            ServiceKind::Depot => &[Role::Depot, Role::Registrar, Role::Inspector],
            ServiceKind::Demil => &[Role::Demil, Role::Certifier],
            ServiceKind::ExportControl => &[Role::ExportControl],
        }
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds a set of roles emits: those each role owns, plus corrections (which belong to
/// the role of the event they correct) when any role is held.
pub fn kinds_of(roles: &[Role]) -> Vec<EventKind> {
    ALL_KINDS
        .into_iter()
        .filter(|kind| match kind.owner() {
            Some(owner) => roles.contains(&owner),
            None => !roles.is_empty(),
        })
        .collect()
}

/// The wire name of a kind, e.g. `lot_declared`.
pub fn kind_name(kind: EventKind) -> String {
    serde_name(&kind)
}

/// The wire name of a role, e.g. `export_control`.
pub fn role_name(role: Role) -> String {
    serde_name(&role)
}

fn serde_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        // Unit enum variants always serialize to strings.
        other => unreachable!("a unit variant serialized to {other:?}"),
    }
}

/// Parses a role name: `depot`, `registrar`, `inspector`, `demil`, `certifier`,
/// `export_control` (also `export-control`).
pub fn parse_role(text: &str) -> Result<Role, String> {
    let normalized = text.trim().to_ascii_lowercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(normalized)).map_err(|_| {
        let known: Vec<String> = ALL_ROLES.iter().map(|role| role_name(*role)).collect();
        format!("unknown role {text:?}; roles are {}", known.join(", "))
    })
}

/// Every role.
pub const ALL_ROLES: [Role; 6] = [
    Role::Registrar,
    Role::Depot,
    Role::Demil,
    Role::Certifier,
    Role::ExportControl,
    Role::Inspector,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails to compile when a kind is added to the core, so `ALL_KINDS` cannot fall behind.
    fn position(kind: EventKind) -> usize {
        use EventKind::*;
        match kind {
            RegimeConfigured => 0,
            SiteRegistered => 1,
            MineTypeRegistered => 2,
            InstitutionAuthorized => 3,
            SignerAuthorized => 4,
            KeyRevoked => 5,
            LotDeclared => 6,
            LotRetained => 7,
            RetainedMinesConsumed => 8,
            LotShipped => 9,
            LotReceived => 10,
            LotDestroyed => 11,
            DestructionCertified => 12,
            LotDesignatedForKoreaDefense => 13,
            KoreaDesignationRevoked => 14,
            LossReported => 15,
            TransferRequested => 16,
            TransferRefused => 17,
            TransferApproved => 18,
            InventoryVerified => 19,
            CorrectionIssued => 20,
        }
    }

    #[test]
    fn all_kinds_lists_each_kind_once() {
        for (index, kind) in ALL_KINDS.into_iter().enumerate() {
            assert_eq!(position(kind), index, "{kind:?}");
        }
    }

    #[test]
    fn every_owned_kind_is_emitted_by_exactly_one_service() {
        let services = [
            ServiceKind::Depot,
            ServiceKind::Demil,
            ServiceKind::ExportControl,
        ];
        for kind in ALL_KINDS {
            let emitters = services
                .iter()
                .filter(|service| kinds_of(service.roles()).contains(&kind))
                .count();
            let expected = if kind.owner().is_some() { 1 } else { 3 };
            assert_eq!(emitters, expected, "{kind:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(kind_name(EventKind::LotDeclared), "lot_declared");
        assert_eq!(role_name(Role::ExportControl), "export_control");
        for role in ALL_ROLES {
            assert_eq!(parse_role(&role_name(role)), Ok(role));
        }
        assert_eq!(parse_role("Export-Control"), Ok(Role::ExportControl));
        assert!(parse_role("janitor").unwrap_err().contains("registrar"));
    }
}
