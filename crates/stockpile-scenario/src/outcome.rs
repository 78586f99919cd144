//! What a scenario expects and what the appender reported: the reference totals, the
//! flags the scripted incidents must raise, the rejections of the hostile submissions.

use crate::config::Dataset;
use crate::model::ReferenceTotals;
use serde::Serialize;
use std::collections::BTreeMap;
use stockpile_core::state::Flag;
use stockpile_core::time::TimestampMs;

/// A flag a scripted incident must raise (domain.md §4, flags 11–20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedFlag {
    /// The flag's number in domain.md §4.
    pub rule: u8,
    /// The state machine's stable code, e.g. `shipment.seal`.
    pub code: String,
    /// The event that raises it, when an event does; `None` for flags time raises (a
    /// deadline passing), which name the regime, lot or institution instead.
    pub event_id: Option<String>,
    /// The scripted incident, in words.
    pub incident: String,
}

impl ExpectedFlag {
    /// Whether `flag` is this expected flag.
    pub fn matches(&self, flag: &Flag) -> bool {
        flag.rule as u8 == self.rule
            && flag.code == self.code
            && self
                .event_id
                .as_ref()
                .is_none_or(|id| flag.event_ids.first() == Some(id))
    }
}

/// A hostile submission the sequencer must refuse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedRejection {
    pub event_id: String,
    /// The hard rule number of domain.md §4.
    pub rule: u8,
    /// The rejection code, e.g. `signature.unknown_key`.
    pub code: String,
    pub description: String,
}

/// A rejection no hostile submission explains: a generator or state-machine bug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnexpectedRejection {
    pub index: u64,
    pub event_id: Option<String>,
    pub code: String,
    pub reason: String,
}

/// What the appender reported while the scenario was sequenced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Flags raised, by rule number.
    pub flags_by_rule: BTreeMap<u8, u64>,
    /// Flags raised, by code.
    pub flags_by_code: BTreeMap<String, u64>,
    /// Expected flags that never appeared.
    pub missing_flags: Vec<ExpectedFlag>,
    /// Expected rejections that did not happen (accepted, or refused with another code).
    pub missing_rejections: Vec<ExpectedRejection>,
    /// Rejections no expected one explains (the first 100).
    pub unexpected_rejections: Vec<UnexpectedRejection>,
    pub unexpected_rejections_total: u64,
}

impl Observed {
    /// Every expected flag and rejection happened, and nothing else was refused.
    pub fn is_as_scripted(&self) -> bool {
        self.missing_flags.is_empty()
            && self.missing_rejections.is_empty()
            && self.unexpected_rejections_total == 0
    }
}

/// The result of generating a scenario ledger.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    pub dataset: Dataset,
    pub seed: u64,
    pub origin: String,
    /// The trust-root JSON file an inspector needs to verify the ledger.
    pub trust_root: String,
    pub entries: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub checkpoints: u64,
    pub first_recorded_at: Option<TimestampMs>,
    pub last_recorded_at: Option<TimestampMs>,
    /// Entries from the scripted story and from routine padding.
    pub story_entries: u64,
    pub padding_entries: u64,
    /// The generator's independent reference model of the end state.
    pub expected: ReferenceTotals,
    pub expected_flags: Vec<ExpectedFlag>,
    pub expected_rejections: Vec<ExpectedRejection>,
    /// What the appender actually reported (flags as raised, verdicts as given).
    pub observed: Observed,
}
