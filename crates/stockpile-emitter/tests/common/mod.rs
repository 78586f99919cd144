//! Shared fixtures: keys, configurations and event bodies.
#![allow(dead_code)] // each test binary uses a different part

use std::path::Path;

use stockpile_core::events::{EventBody, Role};
use stockpile_core::keys::SignerKey;
use stockpile_emitter::{EmitterConfig, RoleKey};
use stockpile_nats::NatsConfig;

pub const ORIGIN: &str = "test.stockpile.example/ledger";

pub fn key(name: &str, seed: u8) -> SignerKey {
    SignerKey::from_seed(name, [seed; 32]).expect("valid key name")
}

/// The depot service's three keys.
pub fn depot_keys() -> Vec<RoleKey> {
    vec![
        RoleKey {
            role: Role::Depot,
            key: key("test-depot", 1),
        },
        RoleKey {
            role: Role::Registrar,
            key: key("test-registrar", 2),
        },
        RoleKey {
            role: Role::Inspector,
            key: key("test-inspector", 3),
        },
    ]
}

/// The bearer token the test services accept.
pub const API_TOKEN: &str = "test-token-0123456789abcdef0123456789";

/// The HTTP API's configuration in tests: [`API_TOKEN`] and the default limits.
pub fn api() -> stockpile_emitter::service::ApiConfig {
    stockpile_emitter::service::ApiConfig::new(
        stockpile_emitter::service::ApiTokens::parse(API_TOKEN, "the test token")
            .expect("a valid token"),
    )
}

pub fn config(dir: &Path, keys: Vec<RoleKey>) -> EmitterConfig {
    EmitterConfig::new(
        "depot",
        ORIGIN,
        keys,
        dir.join("outbox"),
        NatsConfig::new("nats://127.0.0.1:1"),
    )
}

/// A valid `lot_declared` body as JSON.
pub fn lot_declared_json(lot: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "lot_declared",
        "lot_id": lot,
        "type_id": "M14",
        "manufacturer_lot_number": "MLN-1",
        "lot_number_absent_reason": "",
        "quantity": 120,
        "site_id": "SITE-A",
        "owner": "Army",
        "custodian": "Depot A",
        "basis": "initial",
        "basis_date": "2024-01-02"
    })
}

pub fn lot_declared(lot: &str) -> EventBody {
    serde_json::from_value(lot_declared_json(lot)).expect("a lot_declared body")
}

pub fn transfer_requested() -> EventBody {
    serde_json::from_value(serde_json::json!({
        "kind": "transfer_requested",
        "request_id": "REQ-1",
        "requester": "Ministry",
        "direction": "export",
        "items": [{"type_id": "M14", "quantity": 5}],
        "stated_purpose": "destruction",
        "counterparty": "Someland",
        "destination": "Someland"
    }))
    .expect("a transfer_requested body")
}

pub fn correction() -> EventBody {
    serde_json::from_value(serde_json::json!({
        "kind": "correction_issued",
        "corrected_event_id": "depot-test-depot-1",
        "changes": [{"field": "quantity", "old_value": "120", "new_value": "121"}],
        "reason": "miscount",
        "authority": "Depot commander",
        "affects_submitted_report": false
    }))
    .expect("a correction_issued body")
}
