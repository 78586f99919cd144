//! The emitter SDK: sign events with the right role's key, keep them in the durable
//! outbox, publish them, and learn their receipts.
//!
//! ```no_run
//! # async fn example(config: stockpile_emitter::EmitterConfig,
//! #                  body: stockpile_core::events::EventBody) -> anyhow::Result<()> {
//! use std::time::Duration;
//! use stockpile_emitter::{Emitter, EventDraft};
//!
//! let emitter = Emitter::open(config).await?;
//! let pending = emitter.emit(EventDraft::new("depot officer 7", body)).await?;
//! // The event is on disk now; the publisher sends it in the background.
//! match emitter
//!     .wait_for_receipt(&pending.key_id, pending.emitter_sequence, Duration::from_secs(30))
//!     .await?
//! {
//!     Some(receipt) if receipt.accepted => println!("ledger index {}", receipt.index),
//!     Some(receipt) => println!("rejected: {:?}", receipt.rejection_reason),
//!     None => println!("still pending; it will be sequenced later"),
//! }
//! emitter.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! One [`Emitter`] owns its outbox directory (sled locks it), so a service and
//! `stockpile emit` must not share one.
//!
//! If the ledger refuses a submission as out of order (a later sequence of its key was
//! stored first, after a publish failure), the emitter re-emits the same event under a
//! fresh sequence ([`crate::resubmit`]); [`Emitter::receipt`] and
//! [`Emitter::wait_for_receipt`] follow it there, so the `(key, sequence)` that
//! [`Emitter::emit`] returned keeps naming the event. The [`EventReceipt`] they return is
//! the receipt of the event's latest submission, with the refusals it was re-emitted from.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use futures::FutureExt as _;
use serde::Serialize;
use stockpile_core::events::{Event, EventBody, EventKind, Evidence, Role};
use stockpile_core::keys::SignerKey;
use stockpile_core::time::TimestampMs;
use stockpile_nats::NatsConfig;
use stockpile_nats::proofs::{ProofReply, request_inclusion_proof};
use stockpile_nats::receipts::{Receipt, get_receipt};
use stockpile_proto::envelope::{SubmissionError, decode_submission, sign_event};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::limits::{
    KEY_NAME_BYTES_MAX, NATS_LOOKUP_TIMEOUT, OCCURRED_AT_FUTURE_SKEW_MAX_MS,
    RECEIPT_WAIT_LOOKUP_INTERVAL, REPUBLISH_INTERVAL, SHUTDOWN_DRAIN_MAX,
};
use crate::outbox::{Outbox, OutboxEntry, OutboxError, OutboxLimits, Prepared};
use crate::poller::Unreceipted;
use crate::roles::{kind_name, kinds_of, role_name};

/// A signing key and the role it signs for. The ledger authorizes each key for one role
/// (`SignerAuthorized.role`), so one key cannot serve two roles.
#[derive(Debug, Clone)]
pub struct RoleKey {
    pub role: Role,
    pub key: SignerKey,
}

/// Everything an [`Emitter`] needs.
#[derive(Debug, Clone)]
pub struct EmitterConfig {
    /// Service name: the subject token (`stockpile.submit.<service>`) and the prefix of
    /// default event ids, e.g. `depot`.
    pub service: String,
    /// The ledger origin the events are signed for.
    pub origin: String,
    /// One key per role held; each event is signed by the key of the role owning its kind.
    pub keys: Vec<RoleKey>,
    /// The sled outbox directory; created if missing.
    pub outbox_dir: PathBuf,
    pub outbox_limits: OutboxLimits,
    pub nats: NatsConfig,
    /// How long an acknowledged submission may wait for its receipt before the publisher
    /// looks for it (and republishes it if it is gone from SUBMISSIONS).
    pub republish_interval: Duration,
}

impl EmitterConfig {
    /// A configuration with the default outbox limits and republish interval.
    pub fn new(
        service: impl Into<String>,
        origin: impl Into<String>,
        keys: Vec<RoleKey>,
        outbox_dir: impl Into<PathBuf>,
        nats: NatsConfig,
    ) -> EmitterConfig {
        EmitterConfig {
            service: service.into(),
            origin: origin.into(),
            keys,
            outbox_dir: outbox_dir.into(),
            outbox_limits: OutboxLimits::default(),
            nats,
            republish_interval: REPUBLISH_INTERVAL,
        }
    }
}

/// An event to emit: its body and the header fields the caller chooses. The emitter fills
/// in the origin, the emitter sequence and, when absent, the event id and time.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub body: EventBody,
    /// Who performed or recorded the event.
    pub actor: String,
    /// Default: `<service>-<key name>-<emitter sequence>`, unique for as long as the key's
    /// sequence rises.
    pub event_id: Option<String>,
    /// Default: now.
    pub occurred_at: Option<TimestampMs>,
    pub evidence: Vec<Evidence>,
    /// The role to sign as. Needed only for `CorrectionIssued` (which belongs to the role
    /// of the event it corrects) when the emitter holds several roles; for other kinds it
    /// must be the owner if given.
    pub role: Option<Role>,
}

impl EventDraft {
    pub fn new(actor: impl Into<String>, body: EventBody) -> EventDraft {
        EventDraft {
            body,
            actor: actor.into(),
            event_id: None,
            occurred_at: None,
            evidence: Vec::new(),
            role: None,
        }
    }

    pub fn event_id(mut self, event_id: impl Into<String>) -> Self {
        self.event_id = Some(event_id.into());
        self
    }

    pub fn occurred_at(mut self, occurred_at: TimestampMs) -> Self {
        self.occurred_at = Some(occurred_at);
        self
    }

    pub fn evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }

    pub fn role(mut self, role: Role) -> Self {
        self.role = Some(role);
        self
    }
}

/// What became of an emitted event: the receipt of its latest submission and, if the
/// ledger refused earlier submissions of it as out of order and the emitter re-emitted it
/// under a fresh sequence ([`crate::resubmit`]), the receipts of those refusals.
///
/// It dereferences to the [`Receipt`] of the latest submission, and serializes as that
/// receipt's fields plus `resubmitted_from` when that is not empty:
///
/// ```json
/// {"key_id": "depot-1", "emitter_sequence": 9, "event_id": "depot-depot-1-7", "index": 41,
///  "entry_hash": "…", "leaf_hash": "…", "accepted": true,
///  "resubmitted_from": [{"key_id": "depot-1", "emitter_sequence": 7, "event_id": "depot-depot-1-7",
///     "index": 39, "entry_hash": "…", "leaf_hash": "…", "accepted": false,
///     "rejection_code": "references.replayed_emitter_sequence", "rejection_reason": "…"}]}
/// ```
///
/// The refusals stay in the ledger (as rejection records); `emitter_sequence` differs
/// from the one asked about exactly when `resubmitted_from` is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventReceipt {
    /// The receipt of the event's latest submission.
    #[serde(flatten)]
    pub receipt: Receipt,
    /// The receipts of the earlier submissions of the same event, refused as out of
    /// order and re-emitted, oldest (the one asked about) first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resubmitted_from: Vec<Receipt>,
}

impl EventReceipt {
    /// Whether the event was re-emitted under another sequence.
    pub fn was_resubmitted(&self) -> bool {
        !self.resubmitted_from.is_empty()
    }

    pub fn into_receipt(self) -> Receipt {
        self.receipt
    }
}

impl From<Receipt> for EventReceipt {
    fn from(receipt: Receipt) -> Self {
        EventReceipt {
            receipt,
            resubmitted_from: Vec::new(),
        }
    }
}

impl std::ops::Deref for EventReceipt {
    type Target = Receipt;

    fn deref(&self) -> &Receipt {
        &self.receipt
    }
}

/// An emitted event, durable in the outbox and waiting for its receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub key_id: String,
    pub emitter_sequence: u64,
    pub event_id: String,
    pub kind: EventKind,
}

/// A key the emitter holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldKey {
    pub role: Role,
    pub key_id: String,
    /// The last emitter sequence allocated to it (0: none yet).
    pub last_sequence: u64,
}

/// Why [`Emitter::emit`] refused an event. Nothing was written, and no sequence used,
/// unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("this emitter does not emit {kind} events; it emits {emitted}", kind = kind_name(*.kind), emitted = names(.emitted))]
    KindNotEmitted {
        kind: EventKind,
        emitted: Vec<EventKind>,
    },
    #[error("this emitter holds no {role} key; it holds {held}", role = role_name(*.role), held = role_names(.held))]
    NoKeyForRole { role: Role, held: Vec<Role> },
    #[error("{kind} events belong to the role of the event they correct: say which role signs (one of {held})", kind = kind_name(*.kind), held = role_names(.held))]
    RoleRequired { kind: EventKind, held: Vec<Role> },
    #[error("{kind} events are signed by the {owner} role, not {role}", kind = kind_name(*.kind), owner = role_name(*.owner), role = role_name(*.role))]
    RoleMismatch {
        kind: EventKind,
        role: Role,
        owner: Role,
    },
    /// The event breaks the wire format's rules (empty id, text too long, …).
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("the signed event is {size_bytes} bytes; the limit is {limit_bytes}")]
    TooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// Retry later: the outbox drains as NATS and the sequencer take its events.
    #[error(transparent)]
    OutboxFull(OutboxError),
    #[error("the emitter is shutting down")]
    ShuttingDown,
    /// The outbox could not be written or flushed. If the flush failed after the write, the
    /// event may still be published by a later flush: check its receipt before re-emitting.
    #[error(transparent)]
    Storage(OutboxError),
}

impl From<OutboxError> for EmitError {
    fn from(error: OutboxError) -> Self {
        match error {
            OutboxError::Full { .. } => EmitError::OutboxFull(error),
            other => EmitError::Storage(other),
        }
    }
}

fn names(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|kind| kind_name(*kind))
        .collect::<Vec<_>>()
        .join(", ")
}

fn role_names(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "none".into();
    }
    roles
        .iter()
        .map(|role| role_name(*role))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The emitter: outbox, keys and, once connected, the background publisher and receipt
/// poller. Cheap to clone; all clones share one outbox. Call [`Emitter::shutdown`] before
/// dropping the last clone, or the background tasks keep the outbox open.
#[derive(Clone)]
pub struct Emitter {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("service", &self.inner.service)
            .field("keys", &self.inner.keys.len())
            .field("outbox", &self.inner.outbox)
            .finish_non_exhaustive()
    }
}

/// One held key and its publishing watermark.
pub(crate) struct KeySlot {
    pub(crate) role: Role,
    pub(crate) key: SignerKey,
    /// Highest sequence of this key known flushed to disk. The publisher sends nothing
    /// above it, so a crash can never leave a published sequence unrecorded (and then
    /// reused).
    pub(crate) durable_sequence: AtomicU64,
}

impl KeySlot {
    pub(crate) fn name(&self) -> &str {
        self.key.name()
    }
}

/// NATS handles, set once the connection is up.
#[derive(Clone)]
pub(crate) struct Nats {
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
}

pub(crate) struct Inner {
    pub(crate) service: String,
    pub(crate) origin: String,
    /// `stockpile.submit.<service>`.
    pub(crate) subject: String,
    pub(crate) republish_interval: Duration,
    pub(crate) keys: Vec<KeySlot>,
    pub(crate) outbox: Outbox,
    pub(crate) nats: OnceLock<Nats>,
    /// The RECEIPTS bucket once opened; the sequencer creates it, possibly after we start.
    /// A std mutex: held only to clone or replace the handle.
    pub(crate) bucket: Mutex<Option<kv::Store>>,
    /// Wakes the publisher when an emit made a new entry durable.
    pub(crate) wake_publisher: Notify,
    /// Published entries without a receipt yet, which the receipt poller asks about. A
    /// std mutex: held only for in-memory work, never across an `.await`.
    unreceipted: Mutex<Unreceipted>,
    /// Wakes the receipt poller when a publish was acknowledged.
    pub(crate) poll_receipts: Notify,
    /// Bumped on every stored receipt; receipt waiters watch it.
    pub(crate) receipts_changed: watch::Sender<u64>,
    /// Set once shutdown begins: emits are refused, waiters return, tasks drain and stop.
    pub(crate) shutdown: watch::Sender<bool>,
    /// Set once the receipt poller has tried to reconcile the outbox with RECEIPTS at
    /// start-up.
    pub(crate) reconciled: watch::Sender<bool>,
    /// Set when a background task ended unexpectedly (panic); the service then exits.
    pub(crate) failure: watch::Sender<Option<String>>,
    /// Background tasks, joined at shutdown. A std mutex: only pushed to and drained.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Emitter {
    /// Opens the outbox and connects to NATS as `config.nats` says, then starts the
    /// publisher and the receipt poller.
    ///
    /// Without `config.nats.wait` an unreachable server or refused credentials are an
    /// error. With it, this returns at once: events are accepted into the outbox while a
    /// background task keeps trying to connect, and publishing starts when it succeeds.
    pub async fn open(config: EmitterConfig) -> anyhow::Result<Emitter> {
        let nats_config = NatsConfig {
            client_name: config
                .nats
                .client_name
                .clone()
                .or_else(|| Some(format!("stockpile-{}", config.service))),
            ..config.nats.clone()
        };
        let emitter = Emitter::open_offline(config)?;
        if nats_config.wait {
            let background = emitter.clone();
            let mut shutdown = emitter.inner.shutdown.subscribe();
            emitter.spawn("nats-connect", async move {
                tokio::select! {
                    connected = stockpile_nats::connect(&nats_config) => match connected {
                        Ok(client) => background.attach(client),
                        Err(error) => background.fail(format!("connecting to NATS: {error:#}")),
                    },
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            });
        } else {
            let client = stockpile_nats::connect(&nats_config).await?;
            emitter.attach(client);
        }
        Ok(emitter)
    }

    /// Opens the outbox without NATS. Events are signed and kept, nothing is published
    /// until [`Emitter::attach`] (or a later [`Emitter::open`] of the same directory).
    pub fn open_offline(config: EmitterConfig) -> anyhow::Result<Emitter> {
        stockpile_nats::topology::check_service_name(&config.service)?;
        anyhow::ensure!(
            !config.origin.trim().is_empty(),
            "the ledger origin is empty"
        );
        anyhow::ensure!(
            !config.keys.is_empty(),
            "an emitter needs at least one signing key"
        );
        let mut keys: Vec<KeySlot> = Vec::with_capacity(config.keys.len());
        for RoleKey { role, key } in config.keys {
            anyhow::ensure!(
                key.name().len() <= KEY_NAME_BYTES_MAX,
                "key {:?} has a name longer than {KEY_NAME_BYTES_MAX} bytes",
                key.name()
            );
            if let Some(other) = keys.iter().find(|slot| slot.role == role) {
                anyhow::bail!(
                    "two keys for the {} role ({} and {}): give each role one key",
                    role_name(role),
                    other.name(),
                    key.name()
                );
            }
            if let Some(other) = keys.iter().find(|slot| slot.name() == key.name()) {
                anyhow::bail!(
                    "key {} is given for both the {} and the {} role: the ledger authorizes a key for one role",
                    key.name(),
                    role_name(other.role),
                    role_name(role)
                );
            }
            keys.push(KeySlot {
                role,
                key,
                durable_sequence: AtomicU64::new(0),
            });
        }
        let outbox = Outbox::open(&config.outbox_dir, config.outbox_limits)?;
        for slot in &keys {
            // Everything read back at open is on disk.
            slot.durable_sequence
                .store(outbox.last_sequence(slot.name())?, Ordering::SeqCst);
        }
        let inner = Inner {
            subject: stockpile_nats::topology::submit_subject(&config.service),
            republish_interval: config.republish_interval,
            service: config.service,
            origin: config.origin,
            keys,
            outbox,
            nats: OnceLock::new(),
            bucket: Mutex::new(None),
            wake_publisher: Notify::new(),
            unreceipted: Mutex::new(Unreceipted::default()),
            poll_receipts: Notify::new(),
            receipts_changed: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
            reconciled: watch::Sender::new(false),
            failure: watch::Sender::new(None),
            tasks: Mutex::new(Vec::new()),
        };
        Ok(Emitter {
            inner: Arc::new(inner),
        })
    }

    /// Starts publishing and polling for receipts over `client`. Ignored if already
    /// attached or shutting down.
    pub fn attach(&self, client: async_nats::Client) {
        if *self.inner.shutdown.borrow() {
            return;
        }
        let nats = Nats {
            js: jetstream::new(client.clone()),
            client,
        };
        if self.inner.nats.set(nats.clone()).is_err() {
            return;
        }
        tracing::info!(service = %self.inner.service, "connected to NATS; publishing the outbox");
        self.spawn(
            "publisher",
            crate::publisher::run(self.inner.clone(), nats.clone()),
        );
        self.spawn(
            "receipt-poller",
            crate::poller::run(self.inner.clone(), nats),
        );
    }

    /// Spawns a background task; if it panics, the failure is recorded for
    /// [`Emitter::failed`] instead of vanishing with the task.
    fn spawn(&self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let inner = self.inner.clone();
        let handle = tokio::spawn(async move {
            if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(task = name, "background task panicked: {message}");
                inner
                    .failure
                    .send_replace(Some(format!("the {name} task panicked: {message}")));
            }
        });
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(handle);
    }

    fn fail(&self, message: String) {
        tracing::error!("{message}");
        self.inner.failure.send_replace(Some(message));
    }

    /// Resolves when a background task failed for good (a panic, or connecting in the
    /// background gave up); the emitter no longer publishes then, so a service should exit.
    pub async fn failed(&self) -> String {
        let mut failure = self.inner.failure.subscribe();
        // Copy the message out first: the borrowed value must not live across an await.
        let message = failure
            .wait_for(Option::is_some)
            .await
            .map(|message| message.clone().unwrap_or_default());
        match message {
            Ok(message) => message,
            // The sender lives in `inner`, which `self` keeps alive.
            Err(_) => std::future::pending().await,
        }
    }

    /// Signs the event with the key of the role owning its kind, allocates that key's
    /// next emitter sequence, and writes the submission and the counter to the outbox in
    /// one transaction, flushed before returning: an `Ok` event survives a crash and will
    /// be published.
    pub async fn emit(&self, draft: EventDraft) -> Result<Pending, EmitError> {
        if *self.inner.shutdown.borrow() {
            return Err(EmitError::ShuttingDown);
        }
        let kind = draft.body.kind();
        let slot_index = self.slot_for(kind, draft.role)?;
        let slot = &self.inner.keys[slot_index];
        let now = now();
        let occurred_at = draft.occurred_at.unwrap_or(now);
        if occurred_at.millis() > now.millis().saturating_add(OCCURRED_AT_FUTURE_SKEW_MAX_MS) {
            // Raw milliseconds: formatting an absurd timestamp as a date is not safe.
            return Err(EmitError::Invalid(format!(
                "occurred_at_ms {} is in the future (this host's clock says {}); the ledger refuses events recorded before they occur",
                occurred_at.millis(),
                now.millis()
            )));
        }
        let service = &self.inner.service;
        let entry = self.inner.outbox.append(slot.name(), |sequence| {
            let event = Event {
                event_id: draft
                    .event_id
                    .clone()
                    .unwrap_or_else(|| format!("{service}-{}-{sequence}", slot.name())),
                origin: self.inner.origin.clone(),
                actor: draft.actor.clone(),
                emitter_sequence: sequence,
                occurred_at,
                evidence: draft.evidence.clone(),
                body: draft.body.clone(),
            };
            let submission = sign_event(&event, &slot.key);
            check_submission(&event, &submission, slot)?;
            Ok::<_, EmitError>(Prepared {
                event_id: event.event_id,
                submission,
            })
        })?;
        self.inner.outbox.flush().await?;
        slot.durable_sequence
            .fetch_max(entry.emitter_sequence, Ordering::SeqCst);
        self.inner.wake_publisher.notify_one();
        tracing::debug!(
            key = entry.key_id,
            sequence = entry.emitter_sequence,
            event_id = entry.event_id,
            kind = kind_name(kind),
            "event in the outbox"
        );
        Ok(Pending {
            key_id: entry.key_id,
            emitter_sequence: entry.emitter_sequence,
            event_id: entry.event_id,
            kind,
        })
    }

    fn slot_for(&self, kind: EventKind, role: Option<Role>) -> Result<usize, EmitError> {
        let held: Vec<Role> = self.inner.keys.iter().map(|slot| slot.role).collect();
        let role = match (kind.owner(), role) {
            (Some(owner), Some(role)) if role != owner => {
                return Err(EmitError::RoleMismatch { kind, role, owner });
            }
            (Some(owner), _) => {
                if !held.contains(&owner) {
                    return Err(EmitError::KindNotEmitted {
                        kind,
                        emitted: kinds_of(&held),
                    });
                }
                owner
            }
            (None, Some(role)) => role,
            (None, None) if held.len() == 1 => held[0],
            (None, None) => return Err(EmitError::RoleRequired { kind, held }),
        };
        self.inner
            .keys
            .iter()
            .position(|slot| slot.role == role)
            .ok_or(EmitError::NoKeyForRole { role, held })
    }

    /// The receipt of the event emitted as (key, sequence), following its re-emissions
    /// (see [`EventReceipt`]): from the outbox's store, else asked of the RECEIPTS bucket
    /// (and stored, retiring the entry, if the key is one of ours). `Ok(None)`: not
    /// sequenced yet (possibly re-emitted and pending under a new sequence, see
    /// [`Emitter::current_sequence`]), or unknown.
    pub async fn receipt(
        &self,
        key_id: &str,
        sequence: u64,
    ) -> anyhow::Result<Option<EventReceipt>> {
        let trail = self.inner.outbox.trail(key_id, sequence)?;
        if let Some(receipt) = trail.receipt {
            return Ok(Some(EventReceipt {
                receipt,
                resubmitted_from: trail.superseded,
            }));
        }
        if self.inner.nats.get().is_none() {
            return Ok(None);
        }
        let Some(bucket) = self.inner.receipts_bucket().await else {
            return Ok(None);
        };
        let receipt = tokio::time::timeout(
            NATS_LOOKUP_TIMEOUT,
            get_receipt(&bucket, key_id, trail.current),
        )
        .await
        .context("the RECEIPTS bucket did not answer in time")??;
        let Some(receipt) = receipt else {
            return Ok(None);
        };
        if self.inner.slot_by_name(key_id).is_none() {
            // Not one of our keys: nothing stored, nothing to follow.
            return Ok(Some(receipt.into()));
        }
        self.inner.store_receipt(receipt).await?;
        // Storing it may have re-emitted the event (an out-of-order refusal): the new
        // submission has no receipt yet then.
        let trail = self.inner.outbox.trail(key_id, sequence)?;
        Ok(trail.receipt.map(|receipt| EventReceipt {
            receipt,
            resubmitted_from: trail.superseded,
        }))
    }

    /// The sequence the event emitted as (key, sequence) is submitted under now:
    /// `sequence` itself, unless the ledger refused that submission as out of order and
    /// the emitter re-emitted the event under a fresh one ([`crate::resubmit`]).
    pub fn current_sequence(&self, key_id: &str, sequence: u64) -> anyhow::Result<u64> {
        Ok(self.inner.outbox.trail(key_id, sequence)?.current)
    }

    /// Waits up to `timeout` for the receipt of the event emitted as (key, sequence),
    /// following its re-emissions as [`Emitter::receipt`] does. `Ok(None)` when it did not
    /// come in time, or the emitter is shutting down; the event stays pending either way.
    pub async fn wait_for_receipt(
        &self,
        key_id: &str,
        sequence: u64,
        timeout: Duration,
    ) -> anyhow::Result<Option<EventReceipt>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = self.inner.receipts_changed.subscribe();
        let mut shutdown = self.inner.shutdown.subscribe();
        let mut next_poll = tokio::time::Instant::now();
        loop {
            let trail = self.inner.outbox.trail(key_id, sequence)?;
            if let Some(receipt) = trail.receipt {
                return Ok(Some(EventReceipt {
                    receipt,
                    resubmitted_from: trail.superseded,
                }));
            }
            let now = tokio::time::Instant::now();
            if now >= next_poll {
                // The poller may not ask about it: not known as published (the record of
                // its acknowledgement lost in a crash), or the bucket created late.
                next_poll = now + RECEIPT_WAIT_LOOKUP_INTERVAL;
                match self.receipt(key_id, sequence).await {
                    Ok(Some(receipt)) => return Ok(Some(receipt)),
                    Ok(None) => {}
                    Err(error) => tracing::debug!("asking RECEIPTS directly: {error:#}"),
                }
            }
            if now >= deadline || *shutdown.borrow() {
                return Ok(None);
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = tokio::time::sleep_until(next_poll.min(deadline)) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
    }

    /// Asks the sequencer for the inclusion proof of ledger entry `index` (see a receipt's
    /// `index`).
    pub async fn inclusion_proof(&self, index: u64) -> anyhow::Result<ProofReply> {
        let nats = self.inner.nats.get().context("not connected to NATS yet")?;
        request_inclusion_proof(&nats.client, index).await
    }

    /// Submissions in the outbox without a receipt.
    pub fn pending_count(&self) -> u64 {
        self.inner.outbox.pending_count()
    }

    /// Whether (key, sequence) is in the outbox, waiting for its receipt.
    pub fn is_pending(&self, key_id: &str, sequence: u64) -> anyhow::Result<bool> {
        Ok(self.inner.outbox.contains(key_id, sequence)?)
    }

    /// Whether the NATS connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.inner.nats.get().is_some_and(|nats| {
            nats.client.connection_state() == async_nats::connection::State::Connected
        })
    }

    /// Whether a NATS connection was ever established (publishing has started).
    pub fn is_attached(&self) -> bool {
        self.inner.nats.get().is_some()
    }

    /// The service name the emitter publishes under.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The held keys.
    pub fn keys(&self) -> Vec<HeldKey> {
        self.inner
            .keys
            .iter()
            .map(|slot| HeldKey {
                role: slot.role,
                key_id: slot.name().to_owned(),
                last_sequence: self.inner.outbox.last_sequence(slot.name()).unwrap_or(0),
            })
            .collect()
    }

    /// Whether `key_id` is one of the held keys.
    pub fn holds_key(&self, key_id: &str) -> bool {
        self.inner.slot_by_name(key_id).is_some()
    }

    /// The roles held.
    pub fn roles(&self) -> Vec<Role> {
        self.inner.keys.iter().map(|slot| slot.role).collect()
    }

    /// The kinds this emitter can sign.
    pub fn kinds(&self) -> Vec<EventKind> {
        kinds_of(&self.roles())
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Refuses new events and wakes receipt waiters, without waiting for anything; a
    /// service calls it first so its HTTP handlers finish quickly, then [`Self::shutdown`].
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Stops: refuses new events, lets publishes in flight be acknowledged (up to
    /// [`SHUTDOWN_DRAIN_MAX`]), stops the background tasks, flushes NATS and the outbox.
    /// Whatever was not acknowledged stays in the outbox for the next start.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.begin_shutdown();
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for mut task in tasks {
            // The publisher bounds its own drain; the margin covers its last sled write.
            match tokio::time::timeout(SHUTDOWN_DRAIN_MAX + Duration::from_secs(1), &mut task).await
            {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!("a background task did not stop in time; aborting it");
                    task.abort();
                }
            }
        }
        if let Some(nats) = self.inner.nats.get()
            && tokio::time::timeout(SHUTDOWN_DRAIN_MAX, nats.client.flush())
                .await
                .is_err()
        {
            tracing::warn!("NATS did not take the last writes in time");
        }
        self.inner
            .outbox
            .flush()
            .await
            .context("flushing the outbox")?;
        tracing::info!(
            pending = self.pending_count(),
            "emitter stopped; pending events stay in the outbox"
        );
        Ok(())
    }
}

impl Inner {
    pub(crate) fn slot_by_name(&self, key_id: &str) -> Option<&KeySlot> {
        self.keys.iter().find(|slot| slot.name() == key_id)
    }

    /// The index of the held key `key_id` in `keys`.
    pub(crate) fn slot_index(&self, key_id: &str) -> Option<usize> {
        self.keys.iter().position(|slot| slot.name() == key_id)
    }

    /// The published entries the receipt poller asks about.
    pub(crate) fn unreceipted(&self) -> MutexGuard<'_, Unreceipted> {
        self.unreceipted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The RECEIPTS bucket, opened on first use. `None` while it does not exist or NATS is
    /// not connected.
    pub(crate) async fn receipts_bucket(&self) -> Option<kv::Store> {
        if let Some(bucket) = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Some(bucket);
        }
        let nats = self.nats.get()?;
        match tokio::time::timeout(
            NATS_LOOKUP_TIMEOUT,
            stockpile_nats::receipts::receipts_bucket(&nats.js),
        )
        .await
        {
            Ok(Ok(bucket)) => {
                self.set_bucket(bucket.clone());
                Some(bucket)
            }
            Ok(Err(error)) => {
                tracing::debug!("{error:#}");
                None
            }
            Err(_) => None,
        }
    }

    pub(crate) fn set_bucket(&self, bucket: kv::Store) {
        *self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bucket);
    }

    /// Stores a receipt of one of our keys and retires its outbox entry (one transaction,
    /// flushed), then wakes receipt waiters. Receipts of other keys are ignored. An
    /// out-of-order refusal of a pending event re-emits it instead ([`crate::resubmit`]).
    pub(crate) async fn store_receipt(&self, receipt: Receipt) -> anyhow::Result<()> {
        self.store_receipts(vec![receipt]).await
    }

    /// [`Inner::store_receipt`] for several receipts: each receipt stored and its entry
    /// retired in one transaction, all flushed once, before receipt waiters are woken.
    /// A receipt that cannot be stored does not stop the others; the first such error is
    /// returned once the rest are stored and flushed.
    pub(crate) async fn store_receipts(&self, receipts: Vec<Receipt>) -> anyhow::Result<()> {
        let mut recorded: Vec<(Receipt, Option<OutboxEntry>)> = Vec::with_capacity(receipts.len());
        let mut reemitted = false;
        let mut first_error: Option<anyhow::Error> = None;
        for receipt in receipts {
            let Some(slot) = self.slot_index(&receipt.key_id) else {
                continue;
            };
            if crate::resubmit::is_out_of_order_refusal(&receipt) {
                match self.reemit(&self.keys[slot], &receipt).await {
                    Ok(true) => {
                        self.unreceipted().remove(slot, receipt.emitter_sequence);
                        reemitted = true;
                        continue;
                    }
                    Ok(false) => {}
                    Err(error) => {
                        first_error.get_or_insert(error);
                        continue;
                    }
                }
            }
            match self.outbox.record_receipt(&receipt) {
                Ok(retired) => recorded.push((receipt, retired)),
                Err(error) => {
                    first_error.get_or_insert(error.into());
                }
            }
        }
        if !recorded.is_empty() {
            self.outbox.flush().await?;
        }
        for (receipt, retired) in &recorded {
            if let Some(slot) = self.slot_index(&receipt.key_id) {
                self.unreceipted().remove(slot, receipt.emitter_sequence);
            }
            let Some(entry) = retired else {
                continue;
            };
            if entry.event_id != receipt.event_id {
                // Someone else signed this sequence with our key (a copy of the key, or an
                // outbox restored from an old backup): our event will be refused as a
                // replay and needs emitting again under a new sequence.
                tracing::error!(
                    key = receipt.key_id,
                    sequence = receipt.emitter_sequence,
                    ours = entry.event_id,
                    ledger = receipt.event_id,
                    "the ledger holds a different event under this key and sequence; ours was not sequenced"
                );
            } else {
                tracing::debug!(
                    key = receipt.key_id,
                    sequence = receipt.emitter_sequence,
                    index = receipt.index,
                    accepted = receipt.accepted,
                    "receipt stored"
                );
            }
        }
        if reemitted || !recorded.is_empty() {
            self.receipts_changed.send_modify(|count| *count += 1);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Checks what was signed by reading it back as the sequencer will: the proto layer's
/// shape rules (ids present, lengths, limits) and the exact event. An event refused here
/// costs no sequence and never reaches the ledger as a rejection.
pub(crate) fn check_submission(
    event: &Event,
    submission: &[u8],
    slot: &KeySlot,
) -> Result<(), EmitError> {
    let decoded = decode_submission(submission).map_err(|error| match error {
        SubmissionError::Oversized {
            size_bytes,
            limit_bytes,
        } => EmitError::TooLarge {
            size_bytes,
            limit_bytes,
        },
        SubmissionError::Event(error) => EmitError::Invalid(error.to_string()),
        other => EmitError::Invalid(other.to_string()),
    })?;
    if decoded.event != *event {
        return Err(EmitError::Invalid(
            "the event does not survive encoding (a value the wire format cannot carry)".into(),
        ));
    }
    // Our own signature over our own bytes: a failure is a bug, not bad input.
    assert_eq!(decoded.key_id, slot.name());
    assert!(
        slot.key
            .verifier_key()
            .verify(
                &stockpile_core::hash::event_signature_message(&decoded.event_bytes),
                &decoded.signature
            )
            .is_ok(),
        "a freshly signed submission does not verify"
    );
    Ok(())
}

/// This host's clock, the default `occurred_at`.
fn now() -> TimestampMs {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    TimestampMs(millis)
}
