//! Event bodies from JSON, as the HTTP API and `stockpile emit` accept them.
//!
//! A body is the core's `EventBody` JSON: an object tagged by `"kind"` (snake_case), the
//! kind's fields beside the tag. One kind clashes with that: `site_registered` has a
//! field of its own named `kind` (the site's kind), which the tag hides from serde. In
//! JSON that field is therefore written [`SITE_KIND_FIELD`] (`"site_kind"`):
//!
//! ```
//! let body = stockpile_emitter::json::event_body_from_json(serde_json::json!({
//!     "kind": "site_registered", "site_id": "S1", "name": "Depot A",
//!     "site_kind": "depot", "country_code": "US", "in_korean_peninsula": false
//! })).unwrap();
//! assert_eq!(body.kind(), stockpile_core::events::EventKind::SiteRegistered);
//! ```

use serde::Deserialize;
use serde_json::Value;
use stockpile_core::events::{Event, EventBody, Evidence, Role, SiteRegistered};
use stockpile_core::time::TimestampMs;

use crate::sdk::EventDraft;

/// An event as a client asks for it, over HTTP (`POST /v1/events`) or from a file
/// (`stockpile emit`): the header fields the caller chooses and the body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    pub event_id: Option<String>,
    pub actor: String,
    pub occurred_at_ms: Option<i64>,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    pub role: Option<Role>,
    /// Read with [`event_body_from_json`], which handles `site_registered`'s `site_kind`.
    pub body: Value,
}

impl EventRequest {
    /// The draft to emit, or what is wrong with the body.
    pub fn into_draft(self) -> Result<EventDraft, String> {
        let body = event_body_from_json(self.body).map_err(|problem| format!("body: {problem}"))?;
        Ok(EventDraft {
            body,
            actor: self.actor,
            event_id: self.event_id,
            occurred_at: self.occurred_at_ms.map(TimestampMs),
            evidence: self.evidence,
            role: self.role,
        })
    }
}

/// The JSON name of `SiteRegistered::kind`, since `kind` is the body's tag.
pub const SITE_KIND_FIELD: &str = "site_kind";

/// Reads an event body; the error says which field or kind is wrong.
pub fn event_body_from_json(value: Value) -> Result<EventBody, String> {
    if let Value::Object(mut fields) = value {
        if fields.get("kind").and_then(Value::as_str) == Some("site_registered") {
            fields.remove("kind");
            if let Some(site_kind) = fields.remove(SITE_KIND_FIELD) {
                fields.insert("kind".into(), site_kind);
            } else {
                return Err(format!(
                    "site_registered: missing field `{SITE_KIND_FIELD}` (the site's kind; `kind` is the event kind)"
                ));
            }
            return serde_json::from_value::<SiteRegistered>(Value::Object(fields))
                .map(EventBody::SiteRegistered)
                .map_err(|error| format!("site_registered: {error}"));
        }
        return serde_json::from_value(Value::Object(fields)).map_err(|error| error.to_string());
    }
    Err(format!(
        "an event body is a JSON object with a \"kind\", not {}",
        json_type(&value)
    ))
}

/// The body as JSON the way [`event_body_from_json`] reads it back (`site_registered`'s
/// own kind written as `site_kind`).
pub fn event_body_to_json(body: &EventBody) -> Value {
    // Event bodies are plain data with string keys: serialization cannot fail.
    let mut value = serde_json::to_value(body).expect("event bodies serialize to JSON");
    if let (EventBody::SiteRegistered(site), Value::Object(fields)) = (body, &mut value) {
        let site_kind = serde_json::to_value(site.kind).expect("site kinds serialize");
        fields.insert(SITE_KIND_FIELD.into(), site_kind);
        fields.insert("kind".into(), Value::String("site_registered".into()));
    }
    value
}

/// The request that makes an emitting service emit `event` again — same id, actor,
/// occurrence time, evidence and body; the service numbers and signs it with its own
/// key for `role` (named in the request only for kinds no single role owns).
pub fn request_for_event(event: &Event, role: Role) -> Value {
    let mut request = serde_json::json!({
        "event_id": event.event_id,
        "actor": event.actor,
        "occurred_at_ms": event.occurred_at.0,
        "evidence": event.evidence,
        "body": event_body_to_json(&event.body),
    });
    if event.body.kind().owner().is_none() {
        request["role"] = serde_json::to_value(role).expect("roles serialize");
    }
    request
}

/// The emitting service that holds the key of `role` (`stockpile-<service>`).
pub fn service_for_role(role: Role) -> &'static str {
    match role {
        Role::Registrar | Role::Depot | Role::Inspector => "depot",
        Role::Demil | Role::Certifier => "demil",
        Role::ExportControl => "export-control",
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_site_kind_clash_is_real_and_handled() {
        let plain = json!({
            "kind": "site_registered", "site_id": "S1", "name": "A",
            "country_code": "US", "in_korean_peninsula": false
        });
        // serde alone cannot read it: the tag swallows the site's `kind`.
        assert!(serde_json::from_value::<EventBody>(plain.clone()).is_err());
        let error = event_body_from_json(plain).unwrap_err();
        assert!(error.contains("site_kind"), "{error}");

        let mut with_site_kind = json!({
            "kind": "site_registered", "site_id": "S1", "name": "A",
            "country_code": "US", "in_korean_peninsula": false
        });
        with_site_kind["site_kind"] = json!("destruction_facility");
        match event_body_from_json(with_site_kind).unwrap() {
            EventBody::SiteRegistered(site) => {
                assert_eq!(
                    site.kind,
                    stockpile_core::events::SiteKind::DestructionFacility
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_written_to_json_read_back_the_same() {
        let site = EventBody::SiteRegistered(SiteRegistered {
            site_id: "S1".into(),
            name: "Depot <A>".into(),
            kind: stockpile_core::events::SiteKind::Depot,
            country_code: "FI".into(),
            in_korean_peninsula: false,
        });
        let json = event_body_to_json(&site);
        assert_eq!(json["site_kind"], "depot");
        assert_eq!(event_body_from_json(json).unwrap(), site);
    }

    #[test]
    fn errors_name_the_problem() {
        let unknown = event_body_from_json(json!({"kind": "lot_teleported"})).unwrap_err();
        assert!(unknown.contains("lot_teleported"), "{unknown}");
        let missing =
            event_body_from_json(json!({"kind": "loss_reported", "lot_id": "L"})).unwrap_err();
        assert!(missing.contains("missing field"), "{missing}");
        assert!(
            event_body_from_json(json!([1]))
                .unwrap_err()
                .contains("array")
        );
    }
}
