//! From planned events to signed submissions (the emitters' signing path) and from
//! submissions to ledger entries and checkpoints (the sequencer's appender).

use crate::config::ScenarioConfig;
use crate::keys::ScenarioKeys;
use crate::model::ReferenceTotals;
use crate::outcome::{
    ExpectedFlag, ExpectedRejection, Observed, ScenarioOutcome, UnexpectedRejection,
};
use crate::sim::{Planned, Signer, Sim};
use crate::{padding, story};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::ops::ControlFlow;
use stockpile_core::events::{EventKind, Role};
use stockpile_core::hash::event_signature_message;
use stockpile_core::keys::{BatchItem, verify_batch};
use stockpile_core::ledger::SignatureCheck;
use stockpile_core::time::TimestampMs;
use stockpile_ledger::appender::Appender;
use stockpile_ledger::export::ExportWriter;
use stockpile_proto::envelope::{EntryVerdict, decode_submission, sign_event};

/// Submissions planned and signed together, and signatures verified together, on all
/// cores (signing and verification are most of the cost of a ledger).
const SIGN_BATCH: usize = 512;

/// Most worker threads for signing and verifying.
const WORKERS_MAX: usize = 8;

/// `f` over `items` on all cores, results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(WORKERS_MAX);
    if workers <= 1 || items.len() < 2 * workers {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a signing worker never panics"))
            .collect()
    })
}

/// A signature to verify: the signed message, the signature, the public key.
type PreparedSignature = (Vec<u8>, [u8; 64], [u8; 32]);

/// Verifies the signatures of a batch against the scenario's keys, on all cores, so the
/// appender need not verify them one by one. A signature by a key the scenario does not
/// authorise is left for the appender to judge.
fn check_signatures(keys: &ScenarioKeys, batch: &[Submission]) -> Vec<SignatureCheck> {
    let prepared: Vec<Option<PreparedSignature>> = par_map(batch, |submission| {
        let decoded = decode_submission(&submission.bytes).ok()?;
        let public_key = keys.authorised_public_key(&decoded.key_id)?;
        let signature = <[u8; 64]>::try_from(&decoded.signature[..]).ok()?;
        Some((
            event_signature_message(&decoded.event_bytes),
            signature,
            public_key,
        ))
    });
    let items: Vec<BatchItem<'_>> = prepared
        .iter()
        .flatten()
        .map(|(message, signature, key)| (message.as_slice(), *signature, *key))
        .collect();
    let groups: Vec<&[BatchItem<'_>]> = items
        .chunks(items.len().div_ceil(WORKERS_MAX).max(64))
        .collect();
    let mut verdicts = par_map(&groups, |group| verify_batch(group))
        .into_iter()
        .flatten();
    prepared
        .iter()
        .map(|item| match item {
            Some((_, _, key)) if verdicts.next().expect("one verdict per item") => {
                SignatureCheck::Valid(*key)
            }
            Some((_, _, key)) => SignatureCheck::Invalid(*key),
            None => SignatureCheck::NotChecked,
        })
        .collect()
}

/// Unexpected rejections kept verbatim in the outcome; more are only counted.
const UNEXPECTED_KEPT_MAX: usize = 100;

/// One signed submission, as an emitter would publish it.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The serialized `stockpile.v1.Submission`, signed with [`sign_event`].
    pub bytes: Bytes,
    /// The simulated time the sequencer records it at (never before `occurred_at`,
    /// never earlier than the submission before).
    pub recorded_at: TimestampMs,
    pub occurred_at: TimestampMs,
    pub event_id: String,
    pub kind: EventKind,
    pub key_id: String,
    /// The signer's role; `None` for the never-authorised key.
    pub role: Option<Role>,
    /// Set for a hostile submission: the rejection the sequencer must give.
    pub expected_rejection: Option<ExpectedRejection>,
    /// A routine padding operation rather than a scripted story step.
    pub routine: bool,
}

/// What the generator expects of the ledger it produced, known once every submission
/// has been taken.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub totals: ReferenceTotals,
    pub flags: Vec<ExpectedFlag>,
    pub rejections: Vec<ExpectedRejection>,
    pub story_entries: u64,
    pub padding_entries: u64,
}

/// The scenario's submissions in ledger order, generated lazily: memory stays bounded
/// by the lots and the operations in flight, whatever the number of entries.
pub struct Submissions {
    sim: Sim,
    keys: ScenarioKeys,
    config: ScenarioConfig,
    /// Submissions signed ahead, at most `SIGN_BATCH`.
    signed: VecDeque<Submission>,
}

impl Submissions {
    pub fn new(config: &ScenarioConfig) -> Submissions {
        let keys = ScenarioKeys::new(config.dataset, config.seed);
        let mut sim = Sim::new(config.dataset, config.seed);
        story::build(&mut sim, &keys);
        if config.min_entries > 0 {
            // A dry run of the story alone tells how many entries padding must add.
            let mut dry = Sim::new(config.dataset, config.seed);
            story::build(&mut dry, &keys);
            while dry.next_planned().is_some() {}
            let from = sim.padding_from;
            padding::start(&mut sim, config.min_entries, dry.story_events, from);
        }
        Submissions {
            sim,
            keys,
            config: config.clone(),
            signed: VecDeque::new(),
        }
    }

    /// Plans up to `SIGN_BATCH` events and signs them on all cores, in order.
    fn fill(&mut self) {
        let planned: Vec<Planned> = std::iter::from_fn(|| self.sim.next_planned())
            .take(SIGN_BATCH)
            .collect();
        let keys = &self.keys;
        let signed = par_map(&planned, |planned| {
            let key = match planned.signer {
                Signer::Role(role) => keys.for_role(role),
                Signer::Rogue => &keys.rogue,
            };
            Bytes::from(sign_event(&planned.event, key))
        });
        for (planned, bytes) in planned.into_iter().zip(signed) {
            let (key, role) = match planned.signer {
                Signer::Role(role) => (self.keys.for_role(role), Some(role)),
                Signer::Rogue => (&self.keys.rogue, None),
            };
            let expected_rejection = planned
                .hostile
                .then(|| {
                    self.sim
                        .expected_rejections
                        .iter()
                        .rev()
                        .find(|r| r.event_id == planned.event.event_id)
                        .cloned()
                })
                .flatten();
            self.signed.push_back(Submission {
                bytes,
                recorded_at: planned.recorded_at,
                occurred_at: planned.event.occurred_at,
                kind: planned.event.body.kind(),
                event_id: planned.event.event_id,
                key_id: key.name().to_string(),
                role,
                expected_rejection,
                routine: planned.padding,
            });
        }
    }

    /// The next submissions, a batch at a time; empty at the end.
    pub fn next_batch(&mut self) -> Vec<Submission> {
        if self.signed.is_empty() {
            self.fill();
        }
        self.signed.drain(..).collect()
    }

    pub fn keys(&self) -> &ScenarioKeys {
        &self.keys
    }

    pub fn config(&self) -> &ScenarioConfig {
        &self.config
    }

    /// The simulated end of the story.
    pub fn story_end(&self) -> TimestampMs {
        TimestampMs(self.sim.story_end)
    }

    /// The expectations as of the submissions taken so far (complete once the iterator
    /// is exhausted).
    pub fn expectations(&self) -> Expectations {
        Expectations {
            totals: self.sim.model.totals(),
            flags: self.sim.expected_flags.clone(),
            rejections: self.sim.expected_rejections.clone(),
            story_entries: self.sim.story_events,
            padding_entries: self.sim.padding_events,
        }
    }

    fn expected_flags(&self) -> &[ExpectedFlag] {
        &self.sim.expected_flags
    }
}

impl Iterator for Submissions {
    type Item = Submission;

    fn next(&mut self) -> Option<Submission> {
        if self.signed.is_empty() {
            self.fill();
        }
        self.signed.pop_front()
    }
}

/// The scenario's signed submissions in order, with their simulated `recorded_at`: what
/// drives real emitter services.
pub fn submissions(config: &ScenarioConfig) -> Submissions {
    Submissions::new(config)
}

/// The simulated end of the scenario's story.
pub fn story_end(config: &ScenarioConfig) -> TimestampMs {
    let keys = ScenarioKeys::new(config.dataset, config.seed);
    let mut sim = Sim::new(config.dataset, config.seed);
    story::build(&mut sim, &keys);
    TimestampMs(sim.story_end)
}

/// Hands every signed submission to `sink`, in order; returns what the ledger should
/// show once they are all sequenced.
pub fn generate_submissions(
    config: &ScenarioConfig,
    sink: &mut dyn FnMut(Submission),
) -> Expectations {
    let mut submissions = Submissions::new(config);
    for submission in submissions.by_ref() {
        sink(submission);
    }
    submissions.expectations()
}

/// A record of a ledger export, in export order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioRecord {
    /// A serialized ledger entry, verbatim.
    Entry(Bytes),
    /// A signed checkpoint note, right after the entry that completes its size.
    Checkpoint(String),
}

/// Tracks verdicts and flags against the expectations while entries are appended.
struct Tracker {
    accepted: u64,
    rejected: u64,
    observed: Observed,
    matched_flags: Vec<bool>,
    rejections_seen: BTreeMap<String, String>,
    first_recorded_at: Option<TimestampMs>,
    last_recorded_at: Option<TimestampMs>,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            accepted: 0,
            rejected: 0,
            observed: Observed::default(),
            matched_flags: Vec::new(),
            rejections_seen: BTreeMap::new(),
            first_recorded_at: None,
            last_recorded_at: None,
        }
    }

    fn note(
        &mut self,
        submission: &Submission,
        appended: &stockpile_ledger::appender::Appended,
        expected_flags: &[ExpectedFlag],
        recorded_at: TimestampMs,
    ) {
        self.first_recorded_at.get_or_insert(recorded_at);
        self.last_recorded_at = Some(recorded_at);
        match &appended.verdict {
            EntryVerdict::Accepted => self.accepted += 1,
            EntryVerdict::Rejected { code, reason } => {
                self.rejected += 1;
                match &submission.expected_rejection {
                    Some(expected) if expected.code == *code => {
                        self.rejections_seen
                            .insert(submission.event_id.clone(), code.clone());
                    }
                    _ => {
                        self.observed.unexpected_rejections_total += 1;
                        if self.observed.unexpected_rejections.len() < UNEXPECTED_KEPT_MAX {
                            self.observed
                                .unexpected_rejections
                                .push(UnexpectedRejection {
                                    index: appended.index,
                                    event_id: appended.event_id.clone(),
                                    code: code.clone(),
                                    reason: reason.clone(),
                                });
                        }
                    }
                }
            }
        }
        self.matched_flags.resize(expected_flags.len(), false);
        for flag in &appended.flags {
            *self
                .observed
                .flags_by_rule
                .entry(flag.rule as u8)
                .or_insert(0) += 1;
            *self
                .observed
                .flags_by_code
                .entry(flag.code.clone())
                .or_insert(0) += 1;
            for (expected, matched) in expected_flags.iter().zip(self.matched_flags.iter_mut()) {
                if !*matched && expected.matches(flag) {
                    *matched = true;
                    break;
                }
            }
        }
    }

    fn finish(
        mut self,
        expectations: &Expectations,
    ) -> (u64, u64, Option<TimestampMs>, Option<TimestampMs>, Observed) {
        self.matched_flags.resize(expectations.flags.len(), false);
        self.observed.missing_flags = expectations
            .flags
            .iter()
            .zip(&self.matched_flags)
            .filter(|(_, matched)| !**matched)
            .map(|(flag, _)| flag.clone())
            .collect();
        self.observed.missing_rejections = expectations
            .rejections
            .iter()
            .filter(|rejection| {
                self.rejections_seen.get(&rejection.event_id) != Some(&rejection.code)
            })
            .cloned()
            .collect();
        (
            self.accepted,
            self.rejected,
            self.first_recorded_at,
            self.last_recorded_at,
            self.observed,
        )
    }
}

/// Generates the scenario ledger: every submission is sequenced by the real appender, and
/// entries and checkpoint notes are streamed to `sink` in export order. Nothing is kept
/// but the appender's own state.
pub fn generate(config: &ScenarioConfig, sink: &mut dyn FnMut(ScenarioRecord)) -> ScenarioOutcome {
    run(config, &mut |record| {
        sink(record);
        ControlFlow::Continue(())
    })
    .0
}

/// As [`generate`]; stops early when `sink` breaks.
/// Also hands back the appender, whose state tests compare with the reference model.
pub(crate) fn run(
    config: &ScenarioConfig,
    sink: &mut dyn FnMut(ScenarioRecord) -> ControlFlow<()>,
) -> (ScenarioOutcome, Appender) {
    let mut submissions = Submissions::new(config);
    let keys = submissions.keys().clone();
    let trust = keys.trust_root();
    let mut appender = Appender::new(
        &keys.origin,
        keys.log.clone(),
        &trust.ledger_authority_keys(),
    )
    .expect("scenario origins are valid checkpoint origins");
    let mut tracker = Tracker::new();
    let mut checkpoints = 0u64;
    let mut last_checkpoint_size = 0u64;
    let mut stopped = false;
    'batches: loop {
        let batch = submissions.next_batch();
        if batch.is_empty() {
            break;
        }
        let checks = check_signatures(&keys, &batch);
        for (submission, check) in batch.iter().zip(checks) {
            let appended =
                appender.append_checked(&submission.bytes, submission.recorded_at, check);
            tracker.note(
                submission,
                &appended,
                submissions.expected_flags(),
                submission.recorded_at,
            );
            if sink(ScenarioRecord::Entry(appended.entry)).is_break() {
                stopped = true;
                break 'batches;
            }
            let size = appender.size();
            if config.checkpoint_every > 0 && size.is_multiple_of(config.checkpoint_every) {
                checkpoints += 1;
                last_checkpoint_size = size;
                if sink(ScenarioRecord::Checkpoint(appender.checkpoint().note)).is_break() {
                    stopped = true;
                    break 'batches;
                }
            }
        }
    }
    if !stopped && (appender.size() != last_checkpoint_size || checkpoints == 0) {
        checkpoints += 1;
        let _ = sink(ScenarioRecord::Checkpoint(appender.checkpoint().note));
    }
    let expectations = submissions.expectations();
    let entries = appender.size();
    let (accepted, rejected, first_recorded_at, last_recorded_at, observed) =
        tracker.finish(&expectations);
    let outcome = ScenarioOutcome {
        dataset: config.dataset,
        seed: config.seed,
        origin: keys.origin.clone(),
        trust_root: trust.to_json(),
        entries,
        accepted,
        rejected,
        checkpoints,
        first_recorded_at,
        last_recorded_at,
        story_entries: expectations.story_entries,
        padding_entries: expectations.padding_entries,
        expected: expectations.totals,
        expected_flags: expectations.flags,
        expected_rejections: expectations.rejections,
        observed,
    };
    (outcome, appender)
}

/// Writes the scenario ledger as an export bundle (header, entries, checkpoints).
pub fn write_export<W: Write>(config: &ScenarioConfig, writer: W) -> io::Result<ScenarioOutcome> {
    let origin = config.dataset.origin();
    let mut export = ExportWriter::new(writer, origin)?;
    let mut failure: Option<io::Error> = None;
    let (outcome, _) = run(config, &mut |record| {
        let result = match &record {
            ScenarioRecord::Entry(entry) => export.write_entry(entry),
            ScenarioRecord::Checkpoint(note) => export.write_checkpoint(note.as_bytes()),
        };
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        }
    });
    if let Some(error) = failure {
        return Err(error);
    }
    export.finish()?;
    Ok(outcome)
}
