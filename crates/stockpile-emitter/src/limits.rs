//! Every bound of the emitter and its services, with the reason for its value, and the
//! compile-time relations between them.

use std::time::Duration;

use stockpile_core::limits::{ID_BYTES_MAX, SUBMISSION_BYTES_MAX};
use stockpile_nats::topology::DUPLICATE_WINDOW;

/// Pending (not yet receipted) submissions the outbox holds before `emit` refuses new
/// events. Far above a day of a busy depot's events, so only a long NATS or sequencer
/// outage reaches it; then refusing is better than filling the disk.
pub const OUTBOX_ENTRIES_MAX: u64 = 100_000;

/// Bytes of pending submissions the outbox holds before `emit` refuses new events:
/// `OUTBOX_ENTRIES_MAX` submissions of the largest size would be 6.4 GB, more than a
/// service's disk should hold for a cache that NATS will drain.
pub const OUTBOX_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Publishes sent and not yet acknowledged, across all keys. Enough to hide the round trip
/// (JetStream with `sync_interval: always` acks in about 0.2 ms), small enough that a
/// failure resends little.
pub const PUBLISH_WINDOW: usize = 64;

/// Time to hand one publish to the client (the first stage of the two-stage ack). The
/// client buffers while reconnecting; beyond this the publisher backs off and retries.
pub const PUBLISH_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// First pause after a failed publish; it doubles on each further failure of the key.
pub const PUBLISH_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Longest pause between two publish attempts of a key.
pub const PUBLISH_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How long an acknowledged submission may wait for its receipt before the publisher
/// looks for it: receipt fetched directly, else the submission checked in SUBMISSIONS,
/// and republished (same bytes, same id) if it is not there.
pub const REPUBLISH_INTERVAL: Duration = Duration::from_secs(30);

/// Overdue submissions the publisher examines per tick (each costs up to two NATS round
/// trips), so a large backlog cannot stall publishing.
pub const OVERDUE_CHECKS_PER_TICK: usize = 64;

/// After a check of SUBMISSIONS failed for another reason than "not found" (typically:
/// the service's NATS user may not read that stream), how long to rely on receipts alone
/// before trying again. One failed check can cost a whole `NATS_LOOKUP_TIMEOUT`.
pub const STREAM_CHECK_PAUSE: Duration = Duration::from_secs(600);

/// How often the publisher looks for overdue submissions.
pub const PUBLISHER_TICK: Duration = Duration::from_secs(1);

/// Times one event may be re-emitted under a fresh emitter sequence after the ledger
/// refused a submission of it as out of order (`references.replayed_emitter_sequence`;
/// see [`crate::resubmit`]). That refusal needs a publish failure that let a later
/// sequence of the key overtake it, so one re-emission is the normal repair and a second
/// needs another failure at the wrong moment. Three refusals of one event in a row point
/// to something else (another emitter signing with the same key, say): the last
/// refusal then stands, logged as an error, for a human to look at.
pub const REEMISSIONS_MAX: u32 = 3;

/// Time a direct get of a SUBMISSIONS message or a receipt lookup may take.
pub const NATS_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the publisher, at start-up, waits for the receipt poller to retire entries
/// that were sequenced while the service was down, so that it does not resend them.
pub const STARTUP_RECONCILE_WAIT: Duration = Duration::from_secs(10);

/// Receipt gets (direct gets of one RECEIPTS key each) in flight at once, in a polling
/// round and in the start-up reconciliation. Enough to hide the round trip (a direct get
/// is answered in well under a millisecond on a LAN), few enough that one emitter never
/// holds many requests open on the server.
pub const RECEIPT_POLL_CONCURRENCY: usize = 32;

/// Receipt keys asked about per polling round, at most (and per step of the start-up
/// reconciliation). A round asks about twice as many of the oldest published submissions
/// as the last one found receipts for (at least `RECEIPT_POLL_CONCURRENCY`), plus the
/// sweep; so a backlog of `OUTBOX_ENTRIES_MAX` is asked about a slice at a time, never
/// all at once, while a sequencer working through it is followed within a few rounds.
pub const RECEIPT_POLL_KEYS_MAX: usize = 256;

/// Of the keys of one round, how many are taken beyond the oldest ones, from a position
/// that moves on each round and wraps around. The sequencer receipts in SUBMISSIONS
/// order, so the oldest published submissions are the ones whose receipts come next and
/// most of a round goes to them; but submissions lost from SUBMISSIONS can sit at the
/// front for good, and this sweep still reaches every later one (whose receipt is what
/// lets the publisher republish the lost ones when it cannot read SUBMISSIONS).
pub const RECEIPT_POLL_SWEEP: usize = 16;

/// Pause between polling rounds while receipts keep arriving, and the shortest pause
/// between two rounds at all (a burst of acknowledgements makes one round, not one each).
/// Short next to the sequencer's batch cycle, so a receipt is seen within about this
/// long of being written.
pub const RECEIPT_POLL_INTERVAL_MIN: Duration = Duration::from_millis(20);

/// Longest pause between polling rounds: after rounds that found no receipt the pause
/// doubles up to this. Published submissions waiting for a sequencer that is down then
/// cost the server one small round per this interval (`RECEIPT_POLL_CONCURRENCY` +
/// `RECEIPT_POLL_SWEEP` gets: a round that found nothing is followed by the smallest);
/// an acknowledged publish makes the next round come at once.
pub const RECEIPT_POLL_INTERVAL_MAX: Duration = Duration::from_secs(1);

/// First and longest pause between attempts to start receipt polling again after it
/// could not start (the RECEIPTS bucket does not exist yet: the sequencer creates it) or
/// the start-up reconciliation failed.
pub const RECEIPT_POLLER_BACKOFF_MIN: Duration = Duration::from_millis(200);
pub const RECEIPT_POLLER_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// While [`Emitter::wait_for_receipt`](crate::Emitter::wait_for_receipt) waits, how often
/// it asks the RECEIPTS bucket itself, for a submission the poller does not ask about
/// (not known as published: acknowledged before a crash that lost the record, say).
pub const RECEIPT_WAIT_LOOKUP_INTERVAL: Duration = Duration::from_secs(2);

/// How long shutdown waits for publishes in flight to be acknowledged. An unacknowledged
/// one stays in the outbox and is published again at the next start.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(5);

/// How far ahead of this host's clock an event's `occurred_at` may be. The sequencer
/// refuses `occurred_at > recorded_at`; refusing clear mistakes here gives the caller a
/// useful answer instead of a ledger rejection, while tolerating some clock skew.
pub const OCCURRED_AT_FUTURE_SKEW_MAX_MS: i64 = 5 * 60 * 1000;

/// Largest HTTP request body. A submission is at most 64 KiB of protobuf; the JSON of a
/// real event is a few KiB.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// Longest `?wait=true` wait for a receipt.
pub const RECEIPT_WAIT_MAX: Duration = Duration::from_secs(30);

/// HTTP requests a service handles at once (`--http-concurrency-max`); one more is
/// refused at once with 503, never queued. A `?wait=true` request holds its slot up to
/// `RECEIPT_WAIT_MAX`; a depot has a handful of clients, so 64 is far above need, and
/// 64 bodies of `REQUEST_BODY_BYTES_MAX` are 4 MiB.
pub const HTTP_CONCURRENCY_MAX: usize = 64;

/// HTTP requests a second a service takes on average (`--http-rate-per-second`), besides
/// `/health` and `/ready`; more get 429. Every accepted event is a signature and a
/// flushed sled write; 200 a second is above what any depot system sends (a bulk import
/// of 10,000 lots takes under a minute) and keeps a client that holds a token from
/// filling the outbox (`OUTBOX_ENTRIES_MAX`) in less than several minutes.
pub const HTTP_RATE_PER_SECOND: u32 = 200;

/// HTTP requests taken at once after a quiet spell (`--http-rate-burst`).
pub const HTTP_RATE_BURST: u32 = 400;

/// Longest time a request's body may take to arrive. A slow body holds one of the
/// `HTTP_CONCURRENCY_MAX` slots only this long; 64 KiB arrive in far less even on a
/// poor link.
pub const HTTP_BODY_READ_TIME_MAX: Duration = Duration::from_secs(10);

/// How long the HTTP server may take to finish requests in flight at shutdown.
pub const HTTP_DRAIN_MAX: Duration = Duration::from_secs(5);

/// In a streak of failures (publish, receipt polling), the first is logged as a warning and
/// then one in this many, so an outage of hours does not flood the log.
pub const FAILURE_LOG_EVERY: u32 = 50;

/// Longest key name: the submission's `key_id` field is bounded by the proto layer.
pub const KEY_NAME_BYTES_MAX: usize = ID_BYTES_MAX;

// A publish that timed out may have landed; its retry must fall inside the duplicate
// window so that JetStream drops the copy instead of storing it twice.
const _: () = assert!(
    PUBLISH_BACKOFF_MAX.as_millis() + PUBLISH_SEND_TIMEOUT.as_millis()
        < DUPLICATE_WINDOW.as_millis()
);
const _: () = assert!(PUBLISH_BACKOFF_MIN.as_millis() < PUBLISH_BACKOFF_MAX.as_millis());
const _: () =
    assert!(RECEIPT_POLLER_BACKOFF_MIN.as_millis() < RECEIPT_POLLER_BACKOFF_MAX.as_millis());
const _: () = assert!(
    RECEIPT_POLL_INTERVAL_MIN.as_millis() > 0
        && RECEIPT_POLL_INTERVAL_MIN.as_millis() < RECEIPT_POLL_INTERVAL_MAX.as_millis()
);
// A round holds at least one full wave of concurrent gets besides its sweep.
const _: () = assert!(
    RECEIPT_POLL_CONCURRENCY > 0
        && RECEIPT_POLL_SWEEP > 0
        && RECEIPT_POLL_CONCURRENCY + RECEIPT_POLL_SWEEP <= RECEIPT_POLL_KEYS_MAX
);
// The whole outbox must be able to hold at least one submission of the largest size.
const _: () = assert!(OUTBOX_BYTES_MAX >= SUBMISSION_BYTES_MAX as u64);
const _: () = assert!(PUBLISH_WINDOW > 0 && OVERDUE_CHECKS_PER_TICK > 0);
const _: () = assert!(REEMISSIONS_MAX > 0);
// A client holding a token, sending at the full rate, takes minutes to fill the outbox:
// time for an operator to notice (the outbox refuses beyond that anyway).
const _: () = assert!(OUTBOX_ENTRIES_MAX / HTTP_RATE_PER_SECOND as u64 >= 5 * 60);
const _: () = assert!(HTTP_RATE_BURST >= HTTP_RATE_PER_SECOND && HTTP_CONCURRENCY_MAX > 0);
// A slot held by a slow body is released well before a `?wait=true` one would be.
const _: () = assert!(HTTP_BODY_READ_TIME_MAX.as_millis() < RECEIPT_WAIT_MAX.as_millis());
// Outbox keys store the key name's length in two bytes.
const _: () = assert!(KEY_NAME_BYTES_MAX <= u16::MAX as usize);
