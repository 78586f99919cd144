//! A seeded, deterministic simulation of the write and read paths: emitters, two
//! sequencers and a projector over an in-memory model of JetStream that drops,
//! duplicates, delays and reorders messages and crashes components, checked at the end
//! against a reference model.
//!
//! Pure: no NATS, no threads of its own, no clock, no I/O. One seed gives one run; the
//! run's trace digest says so. The cores are the real ones: submissions are the
//! scenario's (signed with `sign_event`), the sequencers are `Appender`s (restarted with
//! `restore_batch` from the model LEDGER), the projector is a `ViewFold` over a model
//! store, and the end state is judged by `verify_export` and `views_digest`.
//!
//! What the bus model promises is what JetStream promises, and no more:
//! - SUBMISSIONS drops a publish whose `Nats-Msg-Id` (`<key id>/<emitter sequence>`) it
//!   stored less than [`DEDUP_WINDOW_STEPS`] ago; a later copy is stored again.
//! - LEDGER stores an entry only if its length and last message id are the ones the
//!   publisher expected (`Nats-Expected-Last-Sequence`, `Nats-Expected-Last-Msg-Id`).
//! - What a stream stored stays stored; publish acknowledgements can be lost.
//! - A consumer redelivers what was not acknowledged, after its ack wait or a
//!   reposition; deliveries may be lost, duplicated or reordered in transit.
//!
//! Cross-service order: the scenario's events depend on each other across keys (a receipt
//! follows its shipment), so, as the launcher's seeding does, the next submission is
//! handed to its emitter at once when its key is the previous one's, and otherwise only
//! once every earlier submission has a receipt.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use stockpile_core::checkpoint::open_checkpoint;
use stockpile_core::hash::Hash32;
use stockpile_core::time::TimestampMs;
use stockpile_ledger::appender::Appender;
use stockpile_ledger::export::ExportWriter;
use stockpile_ledger::trust::TrustRoot;
use stockpile_ledger::verifier::{VerifyOptions, verify_export};
use stockpile_proto::envelope::{EntryVerdict, decode_entry, decode_submission};
use stockpile_scenario::{Dataset, ScenarioConfig, ScenarioKeys};
use stockpile_views::digest::views_digest;
use stockpile_views::fold::ViewFold;

/// Steps during which SUBMISSIONS drops a re-published message id (JetStream's duplicate
/// window, in simulation steps).
pub const DEDUP_WINDOW_STEPS: u64 = 150;

/// Steps a consumer waits for an acknowledgement before redelivering.
const ACK_WAIT_STEPS: u64 = 40;

/// Steps an emitter waits for a publish acknowledgement before publishing again.
const PUBLISH_RETRY_STEPS: u64 = 30;

/// Most submissions a sequencer pulls at once (the service's 512, scaled down so that
/// batches split and interleave).
const SEQUENCER_BATCH_MAX: usize = 6;

/// Most entries the projector pulls at once.
const PROJECTOR_BATCH_MAX: usize = 8;

/// Entries between the sequencers' checkpoints.
const CHECKPOINT_EVERY: u64 = 16;

/// Sequencers running at once (an active one and a standby that both pull).
const SEQUENCERS: usize = 2;

/// The rejection a copy of an already sequenced submission gets.
const REPLAY_CODE: &str = "references.replayed_emitter_sequence";

/// Deliberate bugs, to show the checker catches a broken component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// The sequencers publish entries without the two-fold fence.
    pub no_fence: bool,
    /// A rebuilt sequencer starts from SUBMISSIONS sequence 0 instead of the high-water
    /// mark read from LEDGER.
    pub forget_high_water: bool,
}

/// One run: the seed decides everything else.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub seed: u64,
    pub bugs: Bugs,
}

/// What happened in a run, for coverage checks and the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub submissions: u64,
    pub ledger_entries: u64,
    pub steps: u64,
    pub messages_dropped: u64,
    pub messages_duplicated: u64,
    pub acks_lost: u64,
    pub publishes_deduplicated: u64,
    /// Copies stored in SUBMISSIONS after the duplicate window (refused as replays).
    pub late_duplicates: u64,
    pub emitter_crashes: u64,
    pub sequencer_crashes: u64,
    pub projector_crashes: u64,
    pub sequencer_rebuilds: u64,
    pub fence_refusals: u64,
    pub consumer_repositions: u64,
    pub projector_direct_gets: u64,
    pub projector_redeliveries_skipped: u64,
    pub checkpoints: u64,
}

/// A run that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOutcome {
    /// FNV-1a over every step taken and the final ledger head: equal for equal seeds.
    pub trace_digest: u64,
    pub stats: Stats,
}

/// The fault rates of a run, drawn from its seed (swarm testing: some seeds drop a lot,
/// some crash a lot, some do neither). Per mille.
#[derive(Debug, Clone, Copy)]
struct Faults {
    drop: u64,
    duplicate: u64,
    ack_loss: u64,
    delay_max_steps: u64,
    reorder: bool,
    crash: u64,
}

impl Faults {
    const NONE: Faults = Faults {
        drop: 0,
        duplicate: 0,
        ack_loss: 0,
        delay_max_steps: 0,
        reorder: false,
        crash: 0,
    };
}

/// SplitMix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn permille(&mut self, rate: u64) -> bool {
        rate > 0 && self.below(1000) < rate
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// One scenario submission and what the reference model expects of it.
struct Sub {
    bytes: Bytes,
    key: String,
    msg_id: String,
    recorded_at: TimestampMs,
    /// The rejection code the scenario expects; `None`: accepted.
    expected_rejection: Option<String>,
}

/// A message in flight on the model network.
#[derive(Debug, Clone)]
enum Msg {
    /// Emitter → SUBMISSIONS.
    Publish { sub: usize },
    /// SUBMISSIONS → emitter: the publish of `sub` is stored (or was a duplicate).
    PubAck {
        emitter: usize,
        incarnation: u64,
        sub: usize,
    },
}

struct InFlight {
    deliver_at: u64,
    msg: Msg,
}

/// A message of the SUBMISSIONS stream (sequence = position + 1).
struct Stored {
    bytes: Bytes,
    sub: usize,
}

/// A message of the LEDGER stream (sequence = index + 1).
struct LedgerMsg {
    entry: Bytes,
    link: Hash32,
    /// The `Stockpile-Submission-Seq` header.
    submission_seq: u64,
}

/// A durable pull consumer with explicit acknowledgements (the sequencers').
#[derive(Default)]
struct ExplicitConsumer {
    acked: BTreeSet<u64>,
    /// Delivered and not acknowledged: redelivered from this step on.
    pending: BTreeMap<u64, u64>,
}

/// A durable pull consumer acknowledging all up to a sequence (the projector's).
#[derive(Default)]
struct AckAllConsumer {
    floor: u64,
    pending: BTreeMap<u64, u64>,
}

/// The emitter of one key: a durable outbox, a publisher that waits for each publish
/// acknowledgement before sending the next, and a receipt poller.
struct Emitter {
    key: String,
    /// Durable: submissions without a receipt, in emission order.
    outbox: VecDeque<usize>,
    up: bool,
    incarnation: u64,
    /// In memory: how many outbox items SUBMISSIONS acknowledged (a prefix).
    stream_acked: usize,
    /// In memory: the publish awaiting its acknowledgement, and when to try again.
    awaiting: Option<(usize, u64)>,
}

/// A sequencer's in-memory state; it keeps nothing else.
struct Live {
    appender: Appender,
    high_water: u64,
    /// CHECKPOINTS length it last saw (the fence of its next checkpoint).
    checkpoints_seen: usize,
}

struct Projector {
    /// Durable: the committed entries (their count is the tracking record).
    store: Vec<Bytes>,
    /// In memory.
    fold: Option<ViewFold>,
}

struct World {
    rng: Rng,
    now: u64,
    faults: Faults,
    bugs: Bugs,
    trace: u64,
    stats: Stats,
    keys: ScenarioKeys,
    trust: TrustRoot,
    subs: Vec<Sub>,
    /// Submissions handed to their emitters so far (a prefix of `subs`).
    emitted: usize,
    emitters: Vec<Emitter>,
    network: Vec<InFlight>,
    submissions: Vec<Stored>,
    /// `Nats-Msg-Id` → step it was stored at.
    dedup: BTreeMap<String, u64>,
    ledger: Vec<LedgerMsg>,
    checkpoints: Vec<String>,
    /// RECEIPTS: msg id → ledger index (create-if-absent).
    receipts: BTreeMap<String, u64>,
    consumers: Vec<ExplicitConsumer>,
    sequencers: Vec<Option<Live>>,
    projector_consumer: AckAllConsumer,
    projector: Projector,
}

/// The seed's scenario: a prefix of one of the three data sets' stories.
fn scenario(seed: u64) -> (ScenarioKeys, Vec<Sub>) {
    let dataset =
        [Dataset::UsLike, Dataset::FinlandLike, Dataset::BelarusLike][(seed % 3) as usize];
    let config = ScenarioConfig {
        seed,
        dataset,
        min_entries: 0,
        checkpoint_every: 0,
    };
    let count = 60 + (seed / 3 % 5) as usize * 20;
    let mut submissions = stockpile_scenario::submissions(&config);
    let keys = submissions.keys().clone();
    let subs = submissions
        .by_ref()
        .take(count)
        .map(|s| {
            let decoded = decode_submission(&s.bytes).expect("scenario submissions decode");
            Sub {
                msg_id: format!("{}/{}", decoded.key_id, decoded.event.emitter_sequence),
                key: s.key_id.clone(),
                bytes: s.bytes,
                recorded_at: s.recorded_at,
                expected_rejection: s.expected_rejection.map(|r| r.code),
            }
        })
        .collect();
    (keys, subs)
}

/// Runs one seed to the end and checks it. `Err` says what broke.
pub fn run(config: SimConfig) -> Result<SimOutcome, String> {
    let mut world = World::new(config);
    let fault_steps = 600 + world.rng.below(1200);
    let quiet_steps_max = 40 * world.subs.len() as u64 + 4000;
    while world.now < fault_steps {
        world.step()?;
    }
    world.faults = Faults::NONE;
    let deadline = world.now + quiet_steps_max;
    while !world.settled() {
        if world.now >= deadline {
            return Err(format!(
                "no progress after {quiet_steps_max} quiet steps: {}",
                world.progress()
            ));
        }
        world.step()?;
    }
    world.final_checkpoint()?;
    world.check()?;
    let head = world.ledger.last().map_or(Hash32::ZERO, |m| m.link);
    world.note(&head.to_hex());
    world.stats.steps = world.now;
    world.stats.submissions = world.subs.len() as u64;
    world.stats.ledger_entries = world.ledger.len() as u64;
    Ok(SimOutcome {
        trace_digest: world.trace,
        stats: world.stats,
    })
}

impl World {
    fn new(config: SimConfig) -> World {
        let mut rng = Rng(config.seed ^ 0x5354_4f43_4b50_494c);
        let faults = Faults {
            drop: rng.below(250),
            duplicate: rng.below(200),
            ack_loss: rng.below(250),
            delay_max_steps: 1 + rng.below(3 * DEDUP_WINDOW_STEPS / 2),
            reorder: rng.below(4) != 0,
            crash: rng.below(25),
        };
        let (keys, subs) = scenario(config.seed);
        let trust = keys.trust_root();
        let mut emitters: Vec<Emitter> = Vec::new();
        for sub in &subs {
            if !emitters.iter().any(|e| e.key == sub.key) {
                emitters.push(Emitter {
                    key: sub.key.clone(),
                    outbox: VecDeque::new(),
                    up: true,
                    incarnation: 0,
                    stream_acked: 0,
                    awaiting: None,
                });
            }
        }
        World {
            rng,
            now: 0,
            faults,
            bugs: config.bugs,
            trace: 0xcbf2_9ce4_8422_2325,
            stats: Stats::default(),
            keys,
            trust,
            subs,
            emitted: 0,
            emitters,
            network: Vec::new(),
            submissions: Vec::new(),
            dedup: BTreeMap::new(),
            ledger: Vec::new(),
            checkpoints: Vec::new(),
            receipts: BTreeMap::new(),
            consumers: (0..SEQUENCERS)
                .map(|_| ExplicitConsumer::default())
                .collect(),
            sequencers: (0..SEQUENCERS).map(|_| None).collect(),
            projector_consumer: AckAllConsumer::default(),
            projector: Projector {
                store: Vec::new(),
                fold: None,
            },
        }
    }

    /// Adds a line to the trace digest.
    fn note(&mut self, line: &str) {
        for byte in self.now.to_le_bytes().iter().chain(line.as_bytes()) {
            self.trace ^= u64::from(*byte);
            self.trace = self.trace.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        match self.rng.below(100) {
            0..10 => self.emit(),
            10..25 => {
                let e = self.rng.below(self.emitters.len() as u64) as usize;
                self.emitter_step(e);
            }
            25..55 => self.deliver(),
            // The active sequencer pulls three times as often as the standby.
            55..70 => self.sequencer_step(0)?,
            70..75 => self.sequencer_step(1)?,
            75..95 => self.projector_step()?,
            _ => self.crash(),
        }
        Ok(())
    }

    /// Everything emitted, sequenced, received and projected; nothing in flight.
    fn settled(&self) -> bool {
        self.emitted == self.subs.len()
            && self.emitters.iter().all(|e| e.outbox.is_empty())
            && self.network.is_empty()
            && self.ledger.len() == self.submissions.len()
            && self.projector.fold.is_some()
            && self.projector.store.len() == self.ledger.len()
    }

    fn progress(&self) -> String {
        format!(
            "emitted {}/{}, outboxes {:?}, in flight {}, SUBMISSIONS {}, LEDGER {}, projector {}, sequencers up {:?}",
            self.emitted,
            self.subs.len(),
            self.emitters
                .iter()
                .map(|e| e.outbox.len())
                .collect::<Vec<_>>(),
            self.network.len(),
            self.submissions.len(),
            self.ledger.len(),
            self.projector.store.len(),
            self.sequencers
                .iter()
                .map(|s| s.is_some())
                .collect::<Vec<_>>()
        )
    }

    // ---- emitters -------------------------------------------------------------------

    /// Hands the next scenario submission to its emitter, when cross-service order allows.
    fn emit(&mut self) {
        let next = self.emitted;
        let Some(sub) = self.subs.get(next) else {
            return;
        };
        let same_key = next > 0 && self.subs[next - 1].key == sub.key;
        let all_received = self.subs[..next]
            .iter()
            .all(|s| self.receipts.contains_key(&s.msg_id));
        let e = self.emitter_of(&sub.key);
        // A service that is down accepts nothing.
        if !(same_key || all_received) || !self.emitters[e].up {
            return;
        }
        self.emitters[e].outbox.push_back(next);
        self.emitted += 1;
        self.note(&format!("emit {next}"));
    }

    fn emitter_of(&self, key: &str) -> usize {
        self.emitters
            .iter()
            .position(|e| e.key == key)
            .expect("an emitter per key")
    }

    /// Restarts a crashed emitter, or drops received submissions from its outbox and
    /// publishes the next unacknowledged one.
    fn emitter_step(&mut self, e: usize) {
        if !self.emitters[e].up {
            let emitter = &mut self.emitters[e];
            emitter.up = true;
            emitter.incarnation += 1;
            emitter.stream_acked = 0;
            emitter.awaiting = None;
            self.note(&format!("emitter {e} restarts"));
            return;
        }
        // The receipt poller.
        let mut received = 0;
        while let Some(&front) = self.emitters[e].outbox.front() {
            if !self.receipts.contains_key(&self.subs[front].msg_id) {
                break;
            }
            let emitter = &mut self.emitters[e];
            emitter.outbox.pop_front();
            emitter.stream_acked = emitter.stream_acked.saturating_sub(1);
            if emitter.awaiting.is_some_and(|(sub, _)| sub == front) {
                emitter.awaiting = None;
            }
            received += 1;
        }
        // The publisher: one publish at a time, in outbox order, the same bytes and id
        // again until acknowledged.
        let emitter = &self.emitters[e];
        let Some(&sub) = emitter.outbox.get(emitter.stream_acked) else {
            if received > 0 {
                self.note(&format!("emitter {e} received {received}"));
            }
            return;
        };
        if emitter
            .awaiting
            .is_some_and(|(waiting, retry_at)| waiting == sub && self.now < retry_at)
        {
            return;
        }
        self.emitters[e].awaiting = Some((sub, self.now + PUBLISH_RETRY_STEPS));
        self.send(Msg::Publish { sub });
        self.note(&format!("emitter {e} received {received} publishes {sub}"));
    }

    // ---- network --------------------------------------------------------------------

    fn send(&mut self, msg: Msg) {
        let delay = match self.faults.delay_max_steps {
            0 => 0,
            max => self.rng.below(max + 1),
        };
        self.network.push(InFlight {
            deliver_at: self.now + delay,
            msg,
        });
    }

    /// Delivers one message that is due (any of them when reordering, else the oldest),
    /// perhaps losing or duplicating it on the way.
    fn deliver(&mut self) {
        let due: Vec<usize> = (0..self.network.len())
            .filter(|&i| self.network[i].deliver_at <= self.now)
            .collect();
        if due.is_empty() {
            return;
        }
        let pick = if self.faults.reorder {
            due[self.rng.below(due.len() as u64) as usize]
        } else {
            due[0]
        };
        let InFlight { msg, .. } = self.network.remove(pick);
        if self.rng.permille(self.faults.drop) {
            self.stats.messages_dropped += 1;
            self.note(&format!("drop {msg:?}"));
            return;
        }
        if self.rng.permille(self.faults.duplicate) {
            self.stats.messages_duplicated += 1;
            self.send(msg.clone());
        }
        self.note(&format!("deliver {msg:?}"));
        match msg {
            Msg::Publish { sub } => self.submissions_receive(sub),
            Msg::PubAck {
                emitter,
                incarnation,
                sub,
            } => {
                let emitter = &mut self.emitters[emitter];
                if emitter.up
                    && emitter.incarnation == incarnation
                    && emitter.outbox.get(emitter.stream_acked) == Some(&sub)
                {
                    emitter.stream_acked += 1;
                    emitter.awaiting = None;
                }
            }
        }
    }

    /// SUBMISSIONS receives a publish: stored unless its id is inside the duplicate
    /// window; acknowledged either way.
    fn submissions_receive(&mut self, sub: usize) {
        let msg_id = self.subs[sub].msg_id.clone();
        match self.dedup.get(&msg_id) {
            Some(&stored_at) if self.now < stored_at + DEDUP_WINDOW_STEPS => {
                self.stats.publishes_deduplicated += 1;
            }
            earlier => {
                if earlier.is_some() {
                    self.stats.late_duplicates += 1;
                }
                self.dedup.insert(msg_id, self.now);
                self.submissions.push(Stored {
                    bytes: self.subs[sub].bytes.clone(),
                    sub,
                });
            }
        }
        let emitter = self.emitter_of(&self.subs[sub].key);
        let incarnation = self.emitters[emitter].incarnation;
        self.send(Msg::PubAck {
            emitter,
            incarnation,
            sub,
        });
    }

    /// Whether an acknowledgement (or publish acknowledgement) gets through.
    fn ack_arrives(&mut self) -> bool {
        if self.rng.permille(self.faults.ack_loss) {
            self.stats.acks_lost += 1;
            false
        } else {
            true
        }
    }

    /// What a fetch hands over after transit: some lost, some twice, maybe reordered.
    fn transit(&mut self, mut delivered: Vec<u64>) -> Vec<u64> {
        let mut arrived = Vec::with_capacity(delivered.len());
        for seq in delivered.drain(..) {
            if self.rng.permille(self.faults.drop) {
                self.stats.messages_dropped += 1;
                continue;
            }
            arrived.push(seq);
            if self.rng.permille(self.faults.duplicate) {
                self.stats.messages_duplicated += 1;
                arrived.push(seq);
            }
        }
        if self.faults.reorder {
            self.rng.shuffle(&mut arrived);
        }
        arrived
    }

    // ---- sequencers -----------------------------------------------------------------

    fn fetch_submissions(&mut self, s: usize) -> Vec<u64> {
        let now = self.now;
        let consumer = &mut self.consumers[s];
        let delivered: Vec<u64> = (1..=self.submissions.len() as u64)
            .filter(|seq| {
                !consumer.acked.contains(seq)
                    && consumer.pending.get(seq).is_none_or(|&at| at <= now)
            })
            .take(SEQUENCER_BATCH_MAX)
            .collect();
        for seq in &delivered {
            consumer.pending.insert(*seq, now + ACK_WAIT_STEPS);
        }
        self.transit(delivered)
    }

    fn ack_submission(&mut self, s: usize, seq: u64) {
        if self.ack_arrives() {
            self.consumers[s].acked.insert(seq);
            self.consumers[s].pending.remove(&seq);
        }
    }

    /// Repositions a sequencer's consumer to deliver from `high_water + 1` now.
    fn reposition(&mut self, s: usize, high_water: u64) {
        let consumer = &mut self.consumers[s];
        consumer.pending.retain(|&seq, _| seq <= high_water);
        consumer.acked.retain(|&seq| seq <= high_water);
    }

    /// Replays LEDGER into a fresh appender, re-records the last batch's receipts,
    /// adopts the latest checkpoint and repositions the consumer.
    fn rebuild(&mut self, s: usize) -> Result<(), String> {
        self.stats.sequencer_rebuilds += 1;
        let mut appender = Appender::new(
            &self.trust.origin,
            self.keys.log.clone(),
            &self.trust.ledger_authority_keys(),
        )
        .expect("scenario origins are valid");
        let mut done = 0;
        for (index, message) in self.ledger.iter().enumerate() {
            if message.submission_seq <= done {
                return Err(format!(
                    "sequencer {s} stops: ledger entry {index} comes from submission {}, not after {done}",
                    message.submission_seq
                ));
            }
            done = message.submission_seq;
        }
        let entries: Vec<Bytes> = self.ledger.iter().map(|m| m.entry.clone()).collect();
        appender
            .restore_batch(&entries)
            .map_err(|error| format!("sequencer {s} stops: LEDGER does not restore: {error}"))?;
        let tail_from = self.ledger.len().saturating_sub(SEQUENCER_BATCH_MAX);
        for index in tail_from..self.ledger.len() {
            self.record_receipt(index as u64);
        }
        if let Some(note) = self.checkpoints.last() {
            appender.adopt_checkpoint(note).map_err(|error| {
                format!("sequencer {s} stops: the latest checkpoint does not match: {error}")
            })?;
        }
        let high_water = if self.bugs.forget_high_water { 0 } else { done };
        self.reposition(s, high_water);
        self.sequencers[s] = Some(Live {
            appender,
            high_water,
            checkpoints_seen: self.checkpoints.len(),
        });
        self.note(&format!("sequencer {s} rebuilt at {high_water}"));
        Ok(())
    }

    fn record_receipt(&mut self, index: u64) {
        let entry = decode_entry(&self.ledger[index as usize].entry).expect("own entries decode");
        if let Ok(submission) = decode_submission(&entry.submission) {
            let msg_id = format!(
                "{}/{}",
                submission.key_id, submission.event.emitter_sequence
            );
            self.receipts.entry(msg_id).or_insert(index);
        }
    }

    /// Publishes one entry to LEDGER with the fence; `true`: stored and acknowledged.
    fn publish_entry(
        &mut self,
        index: u64,
        entry: Bytes,
        link: Hash32,
        prev: Hash32,
        seq: u64,
    ) -> bool {
        if self.rng.permille(self.faults.drop) {
            self.stats.messages_dropped += 1;
            return false;
        }
        let last_link = self.ledger.last().map_or(Hash32::ZERO, |m| m.link);
        let fenced = self.ledger.len() as u64 == index && last_link == prev;
        if !fenced && !self.bugs.no_fence {
            self.stats.fence_refusals += 1;
            return false;
        }
        // LEDGER's own duplicate check: `Nats-Msg-Id` is the link hash.
        if self.ledger.iter().any(|m| m.link == link) {
            return self.ack_arrives();
        }
        self.ledger.push(LedgerMsg {
            entry,
            link,
            submission_seq: seq,
        });
        self.ack_arrives()
    }

    fn sequencer_step(&mut self, s: usize) -> Result<(), String> {
        let Some(mut live) = self.sequencers[s].take() else {
            return self.rebuild(s);
        };
        let delivered = self.fetch_submissions(s);
        let mut next: BTreeSet<u64> = BTreeSet::new();
        for seq in delivered {
            if seq <= live.high_water {
                self.ack_submission(s, seq);
            } else {
                next.insert(seq);
            }
        }
        let take: Vec<u64> = next
            .iter()
            .copied()
            .zip(live.high_water + 1..)
            .take_while(|(seq, expected)| seq == expected)
            .map(|(seq, _)| seq)
            .collect();
        if take.is_empty() {
            if !next.is_empty() {
                self.stats.consumer_repositions += 1;
                self.reposition(s, live.high_water);
            }
            self.sequencers[s] = Some(live);
            return Ok(());
        }
        let bytes: Vec<Bytes> = take
            .iter()
            .map(|&seq| self.submissions[seq as usize - 1].bytes.clone())
            .collect();
        // The sequencer's clock: the scenario's time of the event (as with
        // `--demo-event-time`) plus the step and the sequencer, in milliseconds, so that
        // two sequencers sequencing the same submissions write different entries.
        let clock_ms = (self.now * SEQUENCERS as u64 + s as u64) as i64;
        let times: Vec<TimestampMs> = take
            .iter()
            .map(|&seq| {
                let scenario = self.subs[self.submissions[seq as usize - 1].sub].recorded_at;
                TimestampMs(scenario.0 + clock_ms)
            })
            .collect();
        let mut prev = live.appender.head_link();
        let appended = live.appender.append_batch_at(&bytes, &times);
        // A crash somewhere in the batch: after `crash_after` publishes, or none.
        let crash_after = self
            .rng
            .permille(self.faults.crash * 4)
            .then(|| self.rng.below(take.len() as u64 + 2) as usize);
        for (n, (entry, &seq)) in appended.iter().zip(&take).enumerate() {
            if crash_after == Some(n) {
                self.crash_sequencer(s);
                return Ok(());
            }
            if !self.publish_entry(entry.index, entry.entry.clone(), entry.link, prev, seq) {
                self.note(&format!("sequencer {s} append {} failed", entry.index));
                return self.rebuild(s);
            }
            prev = entry.link;
        }
        for entry in &appended {
            self.record_receipt(entry.index);
        }
        if crash_after == Some(take.len()) {
            self.crash_sequencer(s);
            return Ok(());
        }
        for &seq in &take {
            self.ack_submission(s, seq);
        }
        live.high_water = *take.last().expect("non-empty");
        self.note(&format!("sequencer {s} sequenced {take:?}"));
        let size = live.appender.size();
        let last_size = live
            .appender
            .last_checkpoint()
            .map_or(0, |checkpoint| checkpoint.size);
        if size >= last_size + CHECKPOINT_EVERY {
            self.publish_checkpoint(s, &mut live)?;
        }
        self.sequencers[s] = Some(live);
        Ok(())
    }

    /// Signs a checkpoint and publishes it fenced on the CHECKPOINTS sequence; a
    /// checkpoint another sequencer got in first must agree with this one's tree.
    fn publish_checkpoint(&mut self, s: usize, live: &mut Live) -> Result<(), String> {
        if self.checkpoints.len() != live.checkpoints_seen {
            for note in &self.checkpoints[live.checkpoints_seen..] {
                let (theirs, _) = open_checkpoint(
                    note.as_bytes(),
                    &self.trust.origin,
                    &[self.keys.log.verifier_key()],
                )
                .map_err(|error| format!("a stored checkpoint does not open: {error}"))?;
                if let Ok(ours) = live.appender.tree().root_at(theirs.size)
                    && ours != theirs.root
                {
                    return Err(format!(
                        "sequencer {s} stops: the checkpoint of size {} disagrees with its tree",
                        theirs.size
                    ));
                }
            }
            live.checkpoints_seen = self.checkpoints.len();
            return Ok(());
        }
        let signed = live.appender.checkpoint();
        if self.rng.permille(self.faults.drop) {
            self.stats.messages_dropped += 1;
            return Ok(());
        }
        self.checkpoints.push(signed.note);
        self.stats.checkpoints += 1;
        live.checkpoints_seen = self.checkpoints.len();
        self.note(&format!(
            "sequencer {s} checkpoint {}",
            signed.checkpoint.size
        ));
        Ok(())
    }

    fn crash_sequencer(&mut self, s: usize) {
        self.stats.sequencer_crashes += 1;
        self.sequencers[s] = None;
        self.note(&format!("sequencer {s} crashes"));
    }

    /// After the run: a sequencer signs a checkpoint of the whole ledger if none covers it.
    fn final_checkpoint(&mut self) -> Result<(), String> {
        let covered = self.checkpoints.last().map_or(0, |note| {
            open_checkpoint(
                note.as_bytes(),
                &self.trust.origin,
                &[self.keys.log.verifier_key()],
            )
            .map_or(0, |(checkpoint, _)| checkpoint.size)
        });
        if covered == self.ledger.len() as u64 {
            return Ok(());
        }
        if self.sequencers[0].is_none() {
            self.rebuild(0)?;
        }
        let mut live = self.sequencers[0].take().expect("rebuilt");
        if live.appender.size() != self.ledger.len() as u64 {
            self.sequencers[0] = None;
            self.rebuild(0)?;
            live = self.sequencers[0].take().expect("rebuilt");
        }
        live.checkpoints_seen = self.checkpoints.len();
        self.publish_checkpoint(0, &mut live)?;
        self.sequencers[0] = Some(live);
        Ok(())
    }

    // ---- projector ------------------------------------------------------------------

    fn projector_step(&mut self) -> Result<(), String> {
        let Some(mut fold) = self.projector.fold.take() else {
            // Restart: refold the committed store.
            let mut fold = ViewFold::new(
                self.trust.origin.clone(),
                &self.trust.ledger_authority_keys(),
            );
            for (index, entry) in self.projector.store.iter().enumerate() {
                fold.apply(entry)
                    .map_err(|error| format!("projector restart: stored entry {index}: {error}"))?;
            }
            self.projector.fold = Some(fold);
            self.note("projector restarts");
            return Ok(());
        };
        let now = self.now;
        let consumer = &mut self.projector_consumer;
        let delivered: Vec<u64> = (consumer.floor + 1..=self.ledger.len() as u64)
            .filter(|seq| consumer.pending.get(seq).is_none_or(|&at| at <= now))
            .take(PROJECTOR_BATCH_MAX)
            .collect();
        for seq in &delivered {
            consumer.pending.insert(*seq, now + ACK_WAIT_STEPS);
        }
        let arrived = self.transit(delivered);
        let Some(&last) = arrived.last() else {
            self.projector.fold = Some(fold);
            return Ok(());
        };
        let tracking = self.projector.store.len() as u64;
        let mut batch: Vec<Bytes> = Vec::new();
        for seq in arrived {
            let index = seq - 1;
            let next = tracking + batch.len() as u64;
            if index < next {
                self.stats.projector_redeliveries_skipped += 1;
                continue;
            }
            // Beyond the tracking record: read what is missing by direct get first.
            for missing in next..index {
                self.stats.projector_direct_gets += 1;
                batch.push(self.ledger[missing as usize].entry.clone());
            }
            batch.push(self.ledger[index as usize].entry.clone());
        }
        for (offset, entry) in batch.iter().enumerate() {
            fold.apply(entry).map_err(|error| {
                format!(
                    "projector refuses ledger entry {}: {error}",
                    tracking + offset as u64
                )
            })?;
        }
        let crash = self
            .rng
            .permille(self.faults.crash * 4)
            .then(|| self.rng.below(3));
        if crash == Some(0) {
            // Before the store transaction: the batch is lost with the fold.
            self.crash_projector();
            return Ok(());
        }
        self.projector.store.extend(batch);
        if crash == Some(1) {
            // Committed, not acknowledged: redelivered and skipped.
            self.crash_projector();
            return Ok(());
        }
        if self.ack_arrives() {
            let consumer = &mut self.projector_consumer;
            consumer.floor = consumer.floor.max(last);
            let floor = consumer.floor;
            consumer.pending.retain(|&seq, _| seq > floor);
        }
        self.projector.fold = Some(fold);
        self.note(&format!(
            "projector at {} acked {last}",
            self.projector.store.len()
        ));
        if crash == Some(2) {
            self.crash_projector();
        }
        Ok(())
    }

    fn crash_projector(&mut self) {
        self.stats.projector_crashes += 1;
        self.projector.fold = None;
        self.note("projector crashes");
    }

    // ---- crashes --------------------------------------------------------------------

    fn crash(&mut self) {
        if !self.rng.permille(self.faults.crash * 40) {
            return;
        }
        match self.rng.below(3) {
            0 => {
                let e = self.rng.below(self.emitters.len() as u64) as usize;
                if self.emitters[e].up {
                    self.emitters[e].up = false;
                    self.stats.emitter_crashes += 1;
                    self.note(&format!("emitter {e} crashes"));
                }
            }
            1 => {
                let s = self.rng.below(SEQUENCERS as u64) as usize;
                if self.sequencers[s].is_some() {
                    self.crash_sequencer(s);
                }
            }
            _ => {
                if self.projector.fold.is_some() {
                    self.crash_projector();
                }
            }
        }
    }

    // ---- the reference model --------------------------------------------------------

    fn check(&self) -> Result<(), String> {
        // Every SUBMISSIONS message became exactly one LEDGER entry, in SUBMISSIONS order.
        if self.ledger.len() != self.submissions.len() {
            return Err(format!(
                "LEDGER has {} entries for {} SUBMISSIONS messages",
                self.ledger.len(),
                self.submissions.len()
            ));
        }
        let mut first_index: Vec<Option<u64>> = vec![None; self.subs.len()];
        let mut last_first: Option<usize> = None;
        for (index, message) in self.ledger.iter().enumerate() {
            let entry = decode_entry(&message.entry)
                .map_err(|error| format!("entry {index} does not decode: {error}"))?;
            if entry.index != index as u64 || message.submission_seq != index as u64 + 1 {
                return Err(format!(
                    "entry {index} claims index {} and comes from submission {}",
                    entry.index, message.submission_seq
                ));
            }
            let stored = &self.submissions[index];
            if entry.submission != stored.bytes {
                return Err(format!(
                    "entry {index} does not hold SUBMISSIONS message {}",
                    index + 1
                ));
            }
            let sub = &self.subs[stored.sub];
            let verdict = match &entry.verdict {
                EntryVerdict::Accepted => None,
                EntryVerdict::Rejected { code, .. } => Some(code.as_str()),
            };
            match first_index[stored.sub] {
                None => {
                    if verdict != sub.expected_rejection.as_deref() {
                        return Err(format!(
                            "entry {index} (scenario submission {}, {}): verdict {verdict:?}, expected {:?}",
                            stored.sub, sub.msg_id, sub.expected_rejection
                        ));
                    }
                    // Every key's order, and the scenario's order across keys, holds.
                    if last_first.is_some_and(|last| last > stored.sub) {
                        return Err(format!(
                            "entry {index}: scenario submission {} sequenced after {}",
                            stored.sub,
                            last_first.expect("checked")
                        ));
                    }
                    last_first = Some(stored.sub);
                    first_index[stored.sub] = Some(index as u64);
                }
                Some(first) => {
                    if verdict != Some(REPLAY_CODE) {
                        return Err(format!(
                            "entry {index}: a copy of entry {first} ({}) got {verdict:?}, not {REPLAY_CODE}",
                            sub.msg_id
                        ));
                    }
                }
            }
        }
        for (sub, first) in self.subs.iter().zip(&first_index) {
            let Some(first) = first else {
                return Err(format!("submission {} never reached LEDGER", sub.msg_id));
            };
            if self.receipts.get(&sub.msg_id) != Some(first) {
                return Err(format!(
                    "the receipt of {} is {:?}, its entry is {first}",
                    sub.msg_id,
                    self.receipts.get(&sub.msg_id)
                ));
            }
        }
        if let Some(emitter) = self.emitters.iter().find(|e| !e.outbox.is_empty()) {
            return Err(format!("emitter {} kept {:?}", emitter.key, emitter.outbox));
        }

        // The chain and the checkpoints verify as an export.
        let report = verify_export(
            &self.export()[..],
            &self.trust,
            &VerifyOptions::default(),
            |_| {},
        )
        .map_err(|error| format!("the export does not read: {error}"))?;
        if !report.is_clean() {
            return Err(format!("the verifier finds: {:#?}", report.findings));
        }
        if report.entries != self.ledger.len() as u64
            || report.checkpoints_verified != self.checkpoints.len() as u64
            || report.latest_checkpoint.as_ref().map(|c| c.size) != Some(report.entries)
        {
            return Err(format!(
                "the verifier saw {} entries and {} checkpoints (latest {:?}) of {} and {}",
                report.entries,
                report.checkpoints_verified,
                report.latest_checkpoint.as_ref().map(|c| c.size),
                self.ledger.len(),
                self.checkpoints.len()
            ));
        }

        // The projector holds LEDGER and folds it as a fresh fold and the verifier do.
        let ledger_entries: Vec<&Bytes> = self.ledger.iter().map(|m| &m.entry).collect();
        if self.projector.store.iter().collect::<Vec<_>>() != ledger_entries {
            return Err("the projector's store is not LEDGER".into());
        }
        let mut fresh = ViewFold::new(
            self.trust.origin.clone(),
            &self.trust.ledger_authority_keys(),
        );
        for (index, entry) in ledger_entries.iter().enumerate() {
            fresh
                .apply(entry)
                .map_err(|error| format!("a fresh fold refuses entry {index}: {error}"))?;
        }
        let projected = self.projector.fold.as_ref().expect("settled");
        if views_digest(projected) != views_digest(&fresh) {
            return Err("the projector's views differ from a fresh fold of LEDGER".into());
        }
        if projected.compliance().summary() != report.summary
            || projected.compliance().digest() != report.state_digest
        {
            return Err("the projector's compliance state differs from the verifier's".into());
        }
        Ok(())
    }

    /// LEDGER and CHECKPOINTS as an export, each checkpoint after the entry completing it.
    fn export(&self) -> Vec<u8> {
        let mut writer =
            ExportWriter::new(Vec::new(), &self.trust.origin).expect("writing to memory");
        let mut notes = self.checkpoints.iter().peekable();
        let size_of = |note: &String| {
            open_checkpoint(
                note.as_bytes(),
                &self.trust.origin,
                &[self.keys.log.verifier_key()],
            )
            .map_or(0, |(checkpoint, _)| checkpoint.size)
        };
        for (written, message) in self.ledger.iter().enumerate() {
            while let Some(note) = notes.next_if(|note| size_of(note) <= written as u64) {
                writer.write_checkpoint(note.as_bytes()).expect("memory");
            }
            writer.write_entry(&message.entry).expect("memory");
        }
        for note in notes {
            writer.write_checkpoint(note.as_bytes()).expect("memory");
        }
        writer.finish().expect("writing to memory")
    }
}
