//! A canonical digest of all views at a ledger position, so that an incrementally built
//! read model, a rebuild from entry 0 and another implementation's fold can be compared
//! with one 32-byte value.
//!
//! # The canonical form
//! A value is first serialized with serde into JSON's data model, then written as:
//! - UTF-8 JSON with no whitespace between tokens;
//! - object members sorted by the UTF-8 bytes of their keys, each key once;
//! - strings quoted, with `"` and `\` escaped by a backslash, `\b \f \n \r \t` as
//!   themselves and every other character below U+0020 as `\u00xx` (lowercase hex); all
//!   other characters, non-ASCII included, as their UTF-8 bytes (no `\/`, no `\u`
//!   escapes of printable characters);
//! - numbers as integers in plain decimal, `-` only for negatives, no leading zeros, no
//!   fraction or exponent. A float is refused (a panic: the view types carry none, so one
//!   would be a bug here);
//! - `null`, `true`, `false` as themselves; an absent optional field is `null`, never
//!   omitted, so every object of a type has the same keys.
//!
//! The views digest is SHA-256 over [`VIEWS_DIGEST_TAG`] followed by the canonical form
//! of [`ViewSet`] at the position, with "today" (ages, days to the deadline) the date of
//! the last entry folded (1970-01-01 before entry 0). It includes the compliance state's
//! own digest (`ComplianceState::digest`, the verifier report's `state_digest`), so equal
//! view digests also mean equal states.
//!
//! [`views_digest`] streams the same bytes into the hash one lot at a time instead of
//! building the whole [`ViewSet`]: lot histories are the one part that grows with the
//! ledger.

use crate::fold::ViewFold;
use crate::views::{
    self, AsOf, DestructionProgress, FlagsView, HistoryPage, InTransitView, LotView,
    MaterialBalanceView, RetainedView, StockpileView, TransferRegister,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use stockpile_core::hash::Hash32;
use stockpile_core::time::Date;

/// Prefix of the views digest, so that it can never pass for an event, entry, Merkle or
/// state hash.
pub const VIEWS_DIGEST_TAG: &[u8] = b"stockpile-ledger/v1/views-digest\n";

/// Every view at one ledger position: what the digest covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewSet {
    pub as_of: AsOf,
    /// The compliance state's digest (`ComplianceState::digest`), as the verifier's report
    /// shows it (`state_digest`).
    pub compliance_state_digest: Hash32,
    /// The date the date-dependent views are computed for.
    pub today: Date,
    pub stockpile: StockpileView,
    /// Every lot, in id order, with its history.
    pub lots: Vec<LotView>,
    pub retained: RetainedView,
    pub destruction_progress: DestructionProgress,
    pub transfers: TransferRegister,
    pub in_transit: InTransitView,
    /// Over everything folded (opening at zero).
    pub material_balance: MaterialBalanceView,
    pub flags: FlagsView,
}

/// "Today" for the views of a fold: the date of its last entry.
pub fn views_today(fold: &ViewFold) -> Date {
    fold.today().unwrap_or(Date::from_days_since_epoch(0))
}

/// Every view of `fold`, as the digest covers them.
pub fn view_set(fold: &ViewFold) -> ViewSet {
    let today = views_today(fold);
    ViewSet {
        as_of: AsOf::of(fold),
        compliance_state_digest: fold.compliance().digest(),
        today,
        stockpile: views::stockpile(fold),
        lots: views::lot_ids(fold)
            .iter()
            .map(|lot_id| {
                views::lot(fold, lot_id, HistoryPage::whole()).expect("listed lots exist")
            })
            .collect(),
        retained: views::retained(fold),
        destruction_progress: views::destruction_progress(fold, today),
        transfers: views::transfers(fold),
        in_transit: views::in_transit(fold, today),
        material_balance: views::material_balance(fold, None),
        flags: views::flags(fold),
    }
}

/// Where canonical bytes go: a buffer or a running hash.
trait Sink {
    fn push(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn push(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn push(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// The canonical JSON form of `value` (see the module docs).
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&to_value(value), &mut out);
    out
}

/// SHA-256 over [`VIEWS_DIGEST_TAG`] and the canonical form of `views`.
pub fn digest_of(views: &ViewSet) -> Hash32 {
    let mut hasher = Sha256::new();
    hasher.push(VIEWS_DIGEST_TAG);
    write_value(&to_value(views), &mut hasher);
    Hash32(hasher.finalize().into())
}

/// The digest of every view of `fold`: equal to `digest_of(&view_set(fold))`, computed
/// one lot at a time.
pub fn views_digest(fold: &ViewFold) -> Hash32 {
    let today = views_today(fold);
    enum Part {
        Whole(Value),
        Lots,
    }
    // The members of `ViewSet`, each serialized on its own; the lots are streamed.
    let mut members: Vec<(&str, Part)> = vec![
        ("as_of", Part::Whole(to_value(&AsOf::of(fold)))),
        (
            "compliance_state_digest",
            Part::Whole(to_value(&fold.compliance().digest())),
        ),
        ("today", Part::Whole(to_value(&today))),
        ("stockpile", Part::Whole(to_value(&views::stockpile(fold)))),
        ("lots", Part::Lots),
        ("retained", Part::Whole(to_value(&views::retained(fold)))),
        (
            "destruction_progress",
            Part::Whole(to_value(&views::destruction_progress(fold, today))),
        ),
        ("transfers", Part::Whole(to_value(&views::transfers(fold)))),
        (
            "in_transit",
            Part::Whole(to_value(&views::in_transit(fold, today))),
        ),
        (
            "material_balance",
            Part::Whole(to_value(&views::material_balance(fold, None))),
        ),
        ("flags", Part::Whole(to_value(&views::flags(fold)))),
    ];
    members.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    let mut hasher = Sha256::new();
    hasher.push(VIEWS_DIGEST_TAG);
    hasher.push(b"{");
    for (number, (key, part)) in members.iter().enumerate() {
        if number > 0 {
            hasher.push(b",");
        }
        write_string(key, &mut hasher);
        hasher.push(b":");
        match part {
            Part::Whole(value) => write_value(value, &mut hasher),
            Part::Lots => {
                hasher.push(b"[");
                for (number, lot_id) in views::lot_ids(fold).iter().enumerate() {
                    if number > 0 {
                        hasher.push(b",");
                    }
                    let lot: LotView =
                        views::lot(fold, lot_id, HistoryPage::whole()).expect("listed lots exist");
                    write_value(&to_value(&lot), &mut hasher);
                }
                hasher.push(b"]");
            }
        }
    }
    hasher.push(b"}");
    Hash32(hasher.finalize().into())
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("view types serialize to JSON")
}

fn write_value(value: &Value, out: &mut impl Sink) {
    match value {
        Value::Null => out.push(b"null"),
        Value::Bool(true) => out.push(b"true"),
        Value::Bool(false) => out.push(b"false"),
        Value::Number(number) => {
            assert!(
                number.is_i64() || number.is_u64(),
                "the canonical form carries integers only, not {number}"
            );
            out.push(number.to_string().as_bytes());
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b"[");
            for (number, item) in items.iter().enumerate() {
                if number > 0 {
                    out.push(b",");
                }
                write_value(item, out);
            }
            out.push(b"]");
        }
        Value::Object(members) => {
            // Sorted here, whatever order the map keeps (serde_json's `preserve_order`
            // feature may be on anywhere in the build).
            let mut members: Vec<(&String, &Value)> = members.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push(b"{");
            for (number, (key, item)) in members.into_iter().enumerate() {
                if number > 0 {
                    out.push(b",");
                }
                write_string(key, out);
                out.push(b":");
                write_value(item, out);
            }
            out.push(b"}");
        }
    }
}

/// A JSON string as the module docs define it. Written out here rather than left to a
/// library, because the digest depends on every byte.
fn write_string(text: &str, out: &mut impl Sink) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b"\"");
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xf) as usize],
            ],
            _ => continue,
        };
        out.push(&bytes[start..at]);
        out.push(escape);
        start = at + 1;
    }
    out.push(&bytes[start..]);
    out.push(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_sorts_keys_and_escapes_exactly() {
        let value = serde_json::json!({
            "b": [1, -2, null, true],
            "a": "quote \" back \\ tab \t nul \u{0} é </script>",
            "ab": {"z": false, "y": 18446744073709551615u64},
        });
        let text = String::from_utf8(canonical_json(&value)).unwrap();
        assert_eq!(
            text,
            "{\"a\":\"quote \\\" back \\\\ tab \\t nul \\u0000 é </script>\",\"ab\":{\"y\":18446744073709551615,\"z\":false},\"b\":[1,-2,null,true]}"
        );
        // It is JSON, and reads back to the same value.
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    #[should_panic(expected = "integers only")]
    fn floats_are_refused() {
        canonical_json(&serde_json::json!({"share": 0.5}));
    }
}
