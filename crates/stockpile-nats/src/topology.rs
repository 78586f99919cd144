//! The JetStream topology as code: stream, subject, bucket and header names and the
//! configurations the sequencer creates at start-up.
//!
//! | what | name | subjects | why |
//! |---|---|---|---|
//! | submissions | `SUBMISSIONS` | `stockpile.submit.<service>` | emitters publish signed submissions here, deduplicated by `Nats-Msg-Id` |
//! | ledger | `LEDGER` | `stockpile.ledger.entries` | one message per entry; stream sequence = index + 1; nothing ever leaves |
//! | checkpoints | `CHECKPOINTS` | `stockpile.ledger.checkpoints` | signed notes, sizes never decreasing |
//! | receipts | KV `RECEIPTS` | `$KV.RECEIPTS.<key>.<seq>` | the first outcome of each (signing key, emitter sequence) |
//! | projector views | consumer `projector-<replica>` on `LEDGER` | — | one durable pull consumer per projector replica, created by `admin` |
//! | proofs | core request/reply | `stockpile.proof.inclusion` | the sequencer answers with a tlog-proof |

use std::time::Duration;

use async_nats::jetstream::{
    self, consumer, kv,
    stream::{Config as StreamConfig, DiscardPolicy, RetentionPolicy, StorageType},
};

use anyhow::{Context as _, bail};

/// Stream of signed submissions, as emitters published them.
pub const SUBMISSIONS_STREAM: &str = "SUBMISSIONS";
/// Prefix of the submission subjects; each emitting service has its own subject below it.
pub const SUBMIT_SUBJECT_PREFIX: &str = "stockpile.submit";
/// Stream of ledger entries.
pub const LEDGER_STREAM: &str = "LEDGER";
/// The one subject of the ledger stream.
pub const LEDGER_SUBJECT: &str = "stockpile.ledger.entries";
/// Stream of signed checkpoints.
pub const CHECKPOINTS_STREAM: &str = "CHECKPOINTS";
/// The one subject of the checkpoint stream.
pub const CHECKPOINTS_SUBJECT: &str = "stockpile.ledger.checkpoints";
/// Key-value bucket of receipts.
pub const RECEIPTS_BUCKET: &str = "RECEIPTS";
/// Request subject of the sequencer's inclusion-proof service.
pub const PROOF_INCLUSION_SUBJECT: &str = "stockpile.proof.inclusion";
/// Queue group of the proof responders, so several sequencers share the requests.
pub const PROOF_QUEUE_GROUP: &str = "stockpile-proof";

/// Header on each ledger message naming the SUBMISSIONS stream sequence the entry came
/// from. Operational only (the sequencer resumes from it); it is not hashed, and the
/// verifier never relies on it.
pub const SUBMISSION_SEQUENCE_HEADER: &str = "Stockpile-Submission-Seq";

/// How long JetStream remembers a `Nats-Msg-Id`. Retries inside it are dropped by the
/// server; beyond it the ledger's per-key emitter sequence refuses the copy.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Largest message the submissions stream stores. Larger than a valid submission
/// (`limits::SUBMISSION_BYTES_MAX`) on purpose: an oversized submission must reach the
/// sequencer so that it becomes a rejection record, not vanish at the publisher.
pub const SUBMISSION_MESSAGE_BYTES_MAX: i32 = 1024 * 1024;

/// The subject an emitting service publishes on.
///
/// ```
/// assert_eq!(stockpile_nats::topology::submit_subject("depot"), "stockpile.submit.depot");
/// ```
pub fn submit_subject(service: &str) -> String {
    format!("{SUBMIT_SUBJECT_PREFIX}.{service}")
}

/// Checks that `service` can be one subject token: letters, digits, `-` and `_`.
pub fn check_service_name(service: &str) -> anyhow::Result<()> {
    if service.is_empty()
        || service.len() > 64
        || !service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        bail!(
            "service name {service:?} must be 1 to 64 letters, digits, '-' or '_' (it becomes a NATS subject token)"
        );
    }
    Ok(())
}

/// Replicas of every stream: 1 on a single server, 3 in a cluster.
#[derive(Debug, Clone, Copy)]
pub struct Replicas(pub usize);

pub fn submissions_config(replicas: Replicas) -> StreamConfig {
    StreamConfig {
        name: SUBMISSIONS_STREAM.into(),
        description: Some("signed submissions from emitting services".into()),
        subjects: vec![format!("{SUBMIT_SUBJECT_PREFIX}.*")],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        max_message_size: SUBMISSION_MESSAGE_BYTES_MAX,
        num_replicas: replicas.0,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..Default::default()
    }
}

pub fn ledger_config(replicas: Replicas) -> StreamConfig {
    StreamConfig {
        name: LEDGER_STREAM.into(),
        description: Some("the hash-chained ledger: one entry per message".into()),
        subjects: vec![LEDGER_SUBJECT.into()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas.0,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        ..Default::default()
    }
}

pub fn checkpoints_config(replicas: Replicas) -> StreamConfig {
    StreamConfig {
        name: CHECKPOINTS_STREAM.into(),
        description: Some("signed checkpoints of the ledger (C2SP tlog-checkpoint notes)".into()),
        subjects: vec![CHECKPOINTS_SUBJECT.into()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::New,
        num_replicas: replicas.0,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        ..Default::default()
    }
}

pub fn receipts_config(replicas: Replicas) -> kv::Config {
    kv::Config {
        bucket: RECEIPTS_BUCKET.into(),
        description: "first outcome of each (signing key, emitter sequence)".into(),
        history: 1,
        storage: StorageType::File,
        num_replicas: replicas.0,
        ..Default::default()
    }
}

/// Prefix of the durable consumers projectors read LEDGER through (`projector-<replica>`).
pub const PROJECTOR_CONSUMER_PREFIX: &str = "projector-";
/// How long a delivered ledger message may stay unacknowledged before redelivery. A
/// projector acknowledges a batch once it is committed and flushed to its store.
pub const PROJECTOR_ACK_WAIT: Duration = Duration::from_secs(60);
/// Most ledger messages delivered to one projector and not yet acknowledged: bounds what
/// is in flight to a replica.
pub const PROJECTOR_MAX_ACK_PENDING: i64 = 8_192;

/// The durable consumer of projector replica `replica`: pull, explicit acknowledgement
/// of everything up to a message (`AckPolicy::All`, one acknowledgement per batch), every
/// entry from the first. No deliver subject: nothing is pushed anywhere.
pub fn projector_consumer_config(replica: &str) -> anyhow::Result<consumer::pull::Config> {
    let name = projector_consumer_name(replica)?;
    Ok(consumer::pull::Config {
        durable_name: Some(name.clone()),
        name: Some(name),
        description: Some(format!("views of projector replica {replica}")),
        filter_subject: LEDGER_SUBJECT.into(),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::All,
        ack_wait: PROJECTOR_ACK_WAIT,
        max_ack_pending: PROJECTOR_MAX_ACK_PENDING,
        ..Default::default()
    })
}

/// `projector-<replica>`, if `replica` is a valid consumer-name fragment.
pub fn projector_consumer_name(replica: &str) -> anyhow::Result<String> {
    let valid = !replica.is_empty()
        && replica.len() <= 64
        && replica
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        bail!("projector replica name {replica:?} must be 1 to 64 letters, digits, '-' or '_'");
    }
    Ok(format!("{PROJECTOR_CONSUMER_PREFIX}{replica}"))
}

/// Creates the durable consumer of projector replica `replica` if it is missing (needs a
/// user that may create consumers: `admin`, see deploy/nats/README.md), and checks that
/// an existing one is a pull consumer of the ledger subject.
pub async fn ensure_projector_consumer(
    js: &jetstream::Context,
    replica: &str,
) -> anyhow::Result<consumer::Consumer<consumer::pull::Config>> {
    let config = projector_consumer_config(replica)?;
    let name = config.durable_name.clone().unwrap_or_default();
    let stream = js
        .get_stream(LEDGER_STREAM)
        .await
        .with_context(|| format!("opening stream {LEDGER_STREAM}"))?;
    let mut consumer = stream
        .get_or_create_consumer(&name, config)
        .await
        .with_context(|| format!("creating or opening consumer {name} on {LEDGER_STREAM}"))?;
    let info = consumer
        .info()
        .await
        .with_context(|| format!("reading consumer {name}"))?;
    check_projector_consumer(&name, &info.config)?;
    Ok(consumer)
}

/// An existing consumer that pushes, filters other subjects or acknowledges otherwise
/// is not one a projector may rely on.
pub fn check_projector_consumer(name: &str, config: &consumer::Config) -> anyhow::Result<()> {
    if config.deliver_subject.is_some() {
        bail!("consumer {name} is a push consumer; a projector needs a pull consumer");
    }
    if !(config.filter_subject.is_empty() || config.filter_subject == LEDGER_SUBJECT) {
        bail!(
            "consumer {name} filters {:?}, not {LEDGER_SUBJECT}",
            config.filter_subject
        );
    }
    if config.ack_policy == consumer::AckPolicy::None {
        bail!("consumer {name} does not take acknowledgements");
    }
    Ok(())
}

/// Creates the streams and the bucket, or checks that existing ones keep the properties
/// the ledger depends on. Idempotent; the sequencer runs it at start-up.
pub async fn ensure_topology(js: &jetstream::Context, replicas: Replicas) -> anyhow::Result<()> {
    for config in [
        submissions_config(replicas),
        ledger_config(replicas),
        checkpoints_config(replicas),
    ] {
        let name = config.name.clone();
        let mut stream = js
            .get_or_create_stream(config.clone())
            .await
            .with_context(|| format!("creating or opening stream {name}"))?;
        let info = stream
            .info()
            .await
            .with_context(|| format!("reading stream {name}"))?;
        check_stream_properties(&info.config, &config)?;
    }
    if js.get_key_value(RECEIPTS_BUCKET).await.is_err() {
        js.create_key_value(receipts_config(replicas))
            .await
            .with_context(|| format!("creating key-value bucket {RECEIPTS_BUCKET}"))?;
    }
    Ok(())
}

/// The properties without which a stream cannot carry the ledger: an existing stream
/// that lost them (edited by hand) is refused rather than used.
pub fn check_stream_properties(actual: &StreamConfig, wanted: &StreamConfig) -> anyhow::Result<()> {
    let name = &wanted.name;
    if actual.subjects != wanted.subjects {
        bail!(
            "stream {name} has subjects {:?}, expected {:?}",
            actual.subjects,
            wanted.subjects
        );
    }
    if actual.storage != StorageType::File {
        bail!("stream {name} must use file storage");
    }
    if wanted.deny_delete && !(actual.deny_delete && actual.deny_purge) {
        bail!("stream {name} must deny deletes and purges: nothing may leave it");
    }
    if actual.allow_rollup {
        bail!("stream {name} allows rollups, which discard history");
    }
    // The server reports "unlimited" as -1 (counts) or zero (age).
    if actual.max_messages > 0
        || actual.max_bytes > 0
        || !actual.max_age.is_zero()
        || actual.max_messages_per_subject > 0
    {
        bail!("stream {name} has retention limits; it must keep every message");
    }
    Ok(())
}
